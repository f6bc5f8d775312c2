/*
 * test_crash.c - power-cut tests on the fault env over the in-memory env.
 *
 * Each cycle opens the store, arms a power cut after a random number of
 * syncs (env_fault_power_cut_after_sync), runs a random workload of synced
 * and unsynced puts, deletes and batches with flushes, syncs and range
 * compactions, closes the db (errors expected once the power is off), cuts
 * the power (env_fault_crash: unsynced bytes and undurable creates vanish)
 * and reopens, which must succeed.  The recovered state must equal the
 * model after some prefix of the cycle's operations (batches count as one
 * operation, so a batch is all there or not at all), and that prefix must
 * cover every operation acknowledged before the last acknowledged sync
 * point: a put/delete/batch with sync set, a successful lsm_sync or
 * lsm_flush, or a clean close.  Sometimes the cut is armed before the open,
 * so it lands inside recovery.  The recovered state is the next cycle's
 * starting model, so recovery of recovered stores is exercised too.
 * A failure prints the seed and cycle; replay with LSM_TEST_SEED=<seed>.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "env_test.h"
#include "testutil.h"

#define NKEYS 48
#define MAX_OPS 160
#define MAX_CHANGES 8
#define DIR "/db"

enum op_kind { OP_WRITE, OP_FLUSH, OP_SYNC, OP_COMPACT };

struct op {
	enum op_kind kind;
	int n;                          /* changes (OP_WRITE) */
	int key[MAX_CHANGES];
	int state[MAX_CHANGES];         /* 0 = deleted, else the version written */
	bool sync;
	int r;                          /* the call's result */
};

struct crash_run {
	const char *name;
	uint64_t seed, rng;
	int cycle;
	lsm_env *mem, *env;
	lsm_options opt;
	lsm_db *db;
	int model[NKEYS];               /* state at the start of the cycle */
	int ver;                        /* last version handed out */
	struct op ops[MAX_OPS];
	int nops;
	int cuts, clean;                /* cycles whose workload lost power, or closed cleanly */
};

static void crash_fail(struct crash_run *R, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("%s: seed=%llu cycle=%d: %s [last error: %s]\nreplay with LSM_TEST_SEED=%llu",
	         R->name, (unsigned long long)R->seed, R->cycle, msg, lsm_last_error(),
	         (unsigned long long)R->seed);
}

static uint64_t rnd(struct crash_run *R, uint64_t n)
{
	return test_rand(&R->rng) % n;
}

static size_t make_key(char *buf, int k)
{
	return (size_t)sprintf(buf, "k%02d", k);
}

static size_t make_value(char *buf, int k, int ver)
{
	int n = sprintf(buf, "k%02d=%07d|", k, ver);
	size_t len = 20 + (size_t)((unsigned)ver * 2654435761u % 1500);
	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + ((unsigned)ver + (unsigned)i * 7) % 26);
	return len;
}

/* Reads the whole store into state[]: a scan, cross-checked by gets. */
static void read_state(struct crash_run *R, int *state)
{
	char want[1600], key[16];
	lsm_iter *it;
	memset(state, 0, NKEYS * sizeof(int));
	int r = lsm_iter_new(R->db, NULL, &it);
	if (r < 0)
		crash_fail(R, "iter_new after recovery: %d", r);
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const void *v;
		char head[16];
		int kk = -1, ver = 0;
		if (kl == 3) {
			memcpy(head, k, 3);
			head[3] = '\0';
			if (sscanf(head, "k%02d", &kk) != 1)
				kk = -1;
		}
		if (kk < 0 || kk >= NKEYS || state[kk])
			crash_fail(R, "recovered an unexpected key of length %zu", kl);
		if ((r = lsm_iter_value(it, &v, &vl)) < 0)
			crash_fail(R, "value of k%02d: %d", kk, r);
		memcpy(head, v, vl < 12 ? vl : 12);
		head[vl < 12 ? vl : 12] = '\0';
		if (vl < 12 || sscanf(head, "k%02d=%07d|", &kk, &ver) != 2 || ver <= 0 ||
		    make_value(want, kk, ver) != vl || memcmp(want, v, vl) != 0)
			crash_fail(R, "k%02d: recovered value is garbage (len %zu)", kk, vl);
		state[kk] = ver;
	}
	if ((r = lsm_iter_status(it)) < 0)
		crash_fail(R, "scan after recovery: %d", r);
	lsm_iter_free(it);
	for (int k = 0; k < NKEYS; k += 5) {
		void *v;
		size_t vl;
		r = lsm_get(R->db, NULL, key, make_key(key, k), &v, &vl);
		if (r == 0)
			free(v);
		if ((r == 0) != (state[k] != 0) || (r < 0 && r != -ENOENT))
			crash_fail(R, "get k%02d: %d, but the scan says state %d", k, r, state[k]);
	}
}

static void run_write(struct crash_run *R, struct op *op)
{
	char key[16], val[1600];
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = op->sync;
	if (op->n == 1) {
		size_t kl = make_key(key, op->key[0]);
		if (op->state[0])
			op->r = lsm_put(R->db, &wo, key, kl, val, make_value(val, op->key[0], op->state[0]));
		else
			op->r = lsm_delete(R->db, &wo, key, kl);
		return;
	}
	lsm_batch *b;
	assert_int_equal(lsm_batch_new(&b), 0);
	for (int i = 0; i < op->n; i++) {
		size_t kl = make_key(key, op->key[i]);
		if (op->state[i])
			assert_int_equal(lsm_batch_put(b, key, kl, val,
			                               make_value(val, op->key[i], op->state[i])), 0);
		else
			assert_int_equal(lsm_batch_delete(b, key, kl), 0);
	}
	op->r = lsm_write(R->db, &wo, b);
	lsm_batch_free(b);
}

/* Runs one random operation and logs it. */
static void run_op(struct crash_run *R)
{
	struct op *op = &R->ops[R->nops++];
	uint64_t c = rnd(R, 100);
	memset(op, 0, sizeof(*op));
	if (c < 88) {
		op->kind = OP_WRITE;
		op->n = c < 70 ? 1 : 2 + (int)rnd(R, MAX_CHANGES - 1);
		op->sync = rnd(R, 4) == 0;
		for (int i = 0; i < op->n; i++) {
			op->key[i] = (int)rnd(R, NKEYS);
			op->state[i] = rnd(R, 5) ? ++R->ver : 0;
		}
		run_write(R, op);
	} else if (c < 93) {
		op->kind = OP_FLUSH;
		op->r = lsm_flush(R->db);
	} else if (c < 96) {
		op->kind = OP_SYNC;
		op->r = lsm_sync(R->db);
	} else {
		char a[16], b[16];
		int lo = (int)rnd(R, NKEYS), hi = lo + (int)rnd(R, (uint64_t)(NKEYS - lo));
		op->kind = OP_COMPACT;
		op->r = lsm_compact_range(R->db, a, make_key(a, lo), b, make_key(b, hi));
	}
}

/* Finds a prefix p in [pmin, nops] whose model equals rec. */
static void check_prefix(struct crash_run *R, const int *rec, int pmin)
{
	int cur[NKEYS], mismatch = 0, first_bad = -1;
	memcpy(cur, R->model, sizeof(cur));
	for (int k = 0; k < NKEYS; k++)
		mismatch += cur[k] != rec[k];
	for (int p = 0;; p++) {
		if (p >= pmin && mismatch == 0) {
			memcpy(R->model, rec, sizeof(cur));
			return;
		}
		if (p == pmin)
			for (int k = 0; k < NKEYS && first_bad < 0; k++)
				if (cur[k] != rec[k])
					first_bad = k;
		if (p == R->nops)
			break;
		const struct op *op = &R->ops[p];
		for (int i = 0; op->kind == OP_WRITE && i < op->n; i++) {
			int k = op->key[i];
			mismatch -= cur[k] != rec[k];
			cur[k] = op->state[i];
			mismatch += cur[k] != rec[k];
		}
	}
	int acked = 0, synced = 0;
	for (int i = 0; i < R->nops; i++) {
		acked += R->ops[i].r == 0;
		synced += R->ops[i].r == 0 && R->ops[i].sync;
	}
	crash_fail(R, "recovered state is no prefix of the %d operations (%d acknowledged, %d synced) "
	           "at or after %d; at that prefix k%02d should be %d, recovered %d",
	           R->nops, acked, synced, pmin, first_bad, first_bad >= 0 ? cur[first_bad] : 0,
	           first_bad >= 0 ? rec[first_bad] : 0);
}

static void open_after_crash(struct crash_run *R)
{
	int r = lsm_open(DIR, &R->opt, &R->db);
	if (r < 0)
		crash_fail(R, "open after the power cut: %d", r);
}

static void cycle(struct crash_run *R)
{
	int rec[NKEYS], pmin = 0, r;

	R->nops = 0;
	if (R->cycle > 0 && rnd(R, 6) == 0) {
		/* The power fails during open/recovery: nothing may be lost. */
		env_fault_power_cut_after_sync(R->env, 1 + rnd(R, 4));
		if (lsm_open(DIR, &R->opt, &R->db) == 0)
			lsm_close(R->db);           /* errors expected */
		R->db = NULL;
		assert_int_equal(env_fault_crash(R->env), 0);
		env_fault_clear(R->env);        /* disarms a cut that did not happen */
		open_after_crash(R);
		read_state(R, rec);
		check_prefix(R, rec, 0);        /* no operations: the model exactly */
	} else {
		open_after_crash(R);
	}

	env_fault_power_cut_after_sync(R->env, 1 + rnd(R, 50));
	int nops = 10 + (int)rnd(R, MAX_OPS - 10), errors = 0;
	while (R->nops < nops && errors < 5) {
		run_op(R);
		struct op *op = &R->ops[R->nops - 1];
		/* Once a call failed the power is off and nothing later is
		 * durable, even a call that needed no I/O to succeed. */
		if (op->r < 0)
			errors++;
		else if (!errors && (op->sync || op->kind == OP_FLUSH || op->kind == OP_SYNC))
			pmin = R->nops;
	}
	r = lsm_close(R->db);
	R->db = NULL;
	if (r == 0 && !errors)
		pmin = R->nops;     /* a clean close makes every write durable */
	if (env_fault_is_down(R->env))
		R->cuts++;
	else
		R->clean++;
	if (!env_fault_is_down(R->env) && errors)
		for (int i = 0; i < R->nops; i++)
			if (R->ops[i].r < 0)
				crash_fail(R, "operation %d (kind %d) failed with the power on: %d", i,
				           (int)R->ops[i].kind, R->ops[i].r);
	assert_int_equal(env_fault_crash(R->env), 0);
	env_fault_clear(R->env);
	open_after_crash(R);
	read_state(R, rec);
	check_prefix(R, rec, pmin);
	r = lsm_close(R->db);
	R->db = NULL;
	if (r < 0)
		crash_fail(R, "close after recovery: %d", r);
}

static void run_crash(const char *name, void (*tune)(lsm_options *))
{
	struct crash_run *R = calloc(1, sizeof(*R));
	int cycles = test_long() ? 3000 : 300;

	assert_non_null(R);
	R->name = name;
	R->seed = R->rng = test_seed(name);
	if (!R->rng)
		R->rng = 1;
	R->mem = env_mem_new();
	R->env = env_fault_new(R->mem);
	assert_non_null(R->env);
	lsm_options_init(&R->opt);
	R->opt.env = R->env;
	R->opt.write_buffer_size = 64 * 1024;
	R->opt.target_file_size = 64 * 1024;
	R->opt.max_bytes_for_level_base = 256 * 1024;
	R->opt.block_cache_size = 64 * 1024;
	if (tune)
		tune(&R->opt);
	for (R->cycle = 0; R->cycle < cycles; R->cycle++)
		cycle(R);
	print_message("# %s: %d cycles, %d with a power cut in the workload, %d closed first\n", name,
	              cycles, R->cuts, R->clean);
	assert_true(R->cuts > 0);
	env_fault_free(R->env);
	env_mem_free(R->mem);
	free(R);
}

static void test_crash_random(void **state)
{
	(void)state;
	run_crash("test_crash_random", NULL);
}

/* Tiny memtables and eager compaction: the cut often lands inside a flush
 * or a compaction (table writes, MANIFEST appends, file deletions). */
static void tune_busy(lsm_options *o)
{
	o->write_buffer_size = 16 * 1024;
	o->target_file_size = 16 * 1024;
	o->max_bytes_for_level_base = 64 * 1024;
	o->l0_compaction_trigger = 2;
	o->compression = LSM_COMPRESS_NONE;
}

static void test_crash_busy_background(void **state)
{
	(void)state;
	run_crash("test_crash_busy_background", tune_busy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_random),
		cmocka_unit_test(test_crash_busy_background),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
