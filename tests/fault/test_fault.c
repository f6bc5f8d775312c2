/*
 * test_fault.c - fault injection: for every kind of I/O operation (open,
 * read, write, sync, rename, unlink, sync_dir, truncate, and short writes)
 * and for N = 1, 2, 3 ..., fail the Nth operation of that kind during a
 * workload of create + writes + close + reopen (recovery) + writes + flushes
 * + compaction + reads + close, until the workload completes without
 * meeting the fault.  The engine must return errors or succeed, never crash
 * or leak (ASan), and once the fault is cleared a reopen must succeed and
 * show, for every key, either the last acknowledged write or one of the
 * writes after it that returned an error (those may or may not have
 * landed).  The same with the Nth operation of any kind while tiny
 * memtables keep flushes and compactions busy in the background.  Also: a
 * failed WAL sync makes the store read-only (-EROFS) and a full disk gives
 * -ENOSPC, both without losing acknowledged data.
 * Everything runs on the fault env over the in-memory env.
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

#define NKEYS 40
#define MAX_MAYBE 16
#define DIR "/db"

/* Per key: the state of the last acknowledged write (0 = absent, else the
 * version written) and the states of failed writes after it. */
struct kstate {
	int acked;
	int maybe[MAX_MAYBE];
	int nmaybe;
};

struct wl {
	lsm_env *mem, *env;
	lsm_options opt;
	lsm_db *db;
	struct kstate st[NKEYS];
	int ver;                    /* last version handed out */
	int errors;                 /* calls that returned an error */
	int enospc;                 /* of which -ENOSPC */
	const char *what;           /* the fault, for messages */
	uint64_t n;
};

static size_t make_key(char *buf, int k)
{
	return (size_t)sprintf(buf, "f%03d", k);
}

static size_t make_value(char *buf, int k, int ver)
{
	int n = sprintf(buf, "f%03d:%06d:", k, ver);
	size_t len = 300 + (size_t)(ver * 131 % 600);
	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('A' + (ver + (int)i) % 23);
	return len;
}

/* busy: tiny memtables and eager compaction, so that much of the
 * workload's I/O happens in background flushes and compactions. */
static void wl_init(struct wl *w, const char *what, uint64_t n, bool busy)
{
	memset(w, 0, sizeof(*w));
	w->mem = env_mem_new();
	w->env = env_fault_new(w->mem);
	assert_non_null(w->env);
	lsm_options_init(&w->opt);
	w->opt.env = w->env;
	w->opt.write_buffer_size = 64 * 1024;
	w->opt.target_file_size = 16 * 1024;
	w->opt.max_bytes_for_level_base = 64 * 1024;
	w->opt.block_cache_size = 64 * 1024;
	w->opt.background_threads = 1;
	if (busy) {
		w->opt.write_buffer_size = 8 * 1024;
		w->opt.target_file_size = 8 * 1024;
		w->opt.max_bytes_for_level_base = 32 * 1024;
		w->opt.l0_compaction_trigger = 2;
		w->opt.background_threads = 2;
	}
	w->what = what;
	w->n = n;
}

static void wl_done(struct wl *w)
{
	env_fault_free(w->env);
	env_mem_free(w->mem);
}

static void note_error(struct wl *w, int r)
{
	w->errors++;
	if (r == -ENOSPC)
		w->enospc++;
}

/* Records the outcome of a write that set key k to state s. */
static void record(struct wl *w, int k, int s, int r)
{
	struct kstate *ks = &w->st[k];
	if (r == 0) {
		ks->acked = s;
		ks->nmaybe = 0;
	} else if (ks->nmaybe < MAX_MAYBE) {
		ks->maybe[ks->nmaybe++] = s;
	} else {
		fail_msg("%s N=%llu: too many failed writes to one key", w->what, (unsigned long long)w->n);
	}
}

static bool allowed(const struct kstate *ks, int s)
{
	if (ks->acked == s)
		return true;
	for (int i = 0; i < ks->nmaybe; i++)
		if (ks->maybe[i] == s)
			return true;
	return false;
}

static void do_put(struct wl *w, int k, bool sync)
{
	char key[16], val[1024];
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = sync;
	int v = ++w->ver;
	size_t vl = make_value(val, k, v);
	int r = lsm_put(w->db, &wo, key, make_key(key, k), val, vl);
	if (r < 0)
		note_error(w, r);
	record(w, k, v, r);
}

static void do_delete(struct wl *w, int k)
{
	char key[16];
	int r = lsm_delete(w->db, NULL, key, make_key(key, k));
	if (r < 0)
		note_error(w, r);
	record(w, k, 0, r);
}

/* Puts keys lo..hi-1 and deletes two of them, in one batch. */
static void do_batch(struct wl *w, int lo, int hi)
{
	char key[16], val[1024];
	lsm_batch *b;
	int state[NKEYS];
	assert_int_equal(lsm_batch_new(&b), 0);
	for (int k = lo; k < hi; k++) {
		state[k] = ++w->ver;
		assert_int_equal(lsm_batch_put(b, key, make_key(key, k), val, make_value(val, k, state[k])), 0);
	}
	for (int k = lo; k < hi; k += (hi - lo) / 2) {
		state[k] = 0;
		assert_int_equal(lsm_batch_delete(b, key, make_key(key, k)), 0);
	}
	int r = lsm_write(w->db, NULL, b);
	if (r < 0)
		note_error(w, r);
	for (int k = lo; k < hi; k++)
		record(w, k, state[k], r);
	lsm_batch_free(b);
}

/* Parses a value read for key k into its version, failing on garbage. */
static int value_version(struct wl *w, int k, const void *v, size_t vl)
{
	char want[1024], head[16];
	int kk, ver = 0;
	memcpy(head, v, vl < 12 ? vl : 12);
	head[vl < 12 ? vl : 12] = '\0';
	if (vl < 12 || sscanf(head, "f%03d:%06d:", &kk, &ver) != 2 || kk != k)
		fail_msg("%s N=%llu: key %d holds garbage", w->what, (unsigned long long)w->n, k);
	if (make_value(want, k, ver) != vl || memcmp(want, v, vl) != 0)
		fail_msg("%s N=%llu: key %d version %d: wrong bytes", w->what, (unsigned long long)w->n, k, ver);
	return ver;
}

/* Reads every key; with strict, any error fails the test (no fault is
 * active), otherwise errors are counted. */
static void check_all(struct wl *w, bool strict)
{
	for (int k = 0; k < NKEYS; k++) {
		char key[16];
		void *v;
		size_t vl;
		int s, r = lsm_get(w->db, NULL, key, make_key(key, k), &v, &vl);
		if (r == 0) {
			s = value_version(w, k, v, vl);
			free(v);
		} else if (r == -ENOENT) {
			s = 0;
		} else {
			if (strict)
				fail_msg("%s N=%llu: get key %d after recovery: %d %s", w->what,
				         (unsigned long long)w->n, k, r, lsm_last_error());
			note_error(w, r);
			continue;
		}
		if (!allowed(&w->st[k], s))
			fail_msg("%s N=%llu: key %d reads state %d, acknowledged %d (+%d unacknowledged)",
			         w->what, (unsigned long long)w->n, k, s, w->st[k].acked, w->st[k].nmaybe);
	}
}

/* The scan must agree with the model: every key it shows is in an allowed
 * state, and every key certainly present is shown. */
static void check_scan(struct wl *w, bool strict)
{
	lsm_iter *it;
	bool seen[NKEYS] = { false };
	int r = lsm_iter_new(w->db, NULL, &it);
	if (r < 0 && !strict) {
		note_error(w, r);
		return;
	}
	assert_int_equal(r, 0);
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *key = lsm_iter_key(it, &kl);
		const void *v;
		char kbuf[8] = "";
		if (kl == 4)
			memcpy(kbuf, key, 4);
		int k = kl == 4 && kbuf[0] == 'f' ? atoi(kbuf + 1) : -1;
		assert_true(k >= 0 && k < NKEYS && !seen[k]);
		if ((r = lsm_iter_value(it, &v, &vl)) < 0 && !strict) {
			note_error(w, r);
			break;
		}
		assert_int_equal(r, 0);
		if (!allowed(&w->st[k], value_version(w, k, v, vl)))
			fail_msg("%s N=%llu: scan shows key %d in a state never written", w->what,
			         (unsigned long long)w->n, k);
		seen[k] = true;
	}
	r = r < 0 ? r : lsm_iter_status(it);
	lsm_iter_free(it);
	if (r < 0 && !strict) {
		note_error(w, r);
		return;
	}
	assert_int_equal(r, 0);
	for (int k = 0; k < NKEYS; k++)
		if (w->st[k].acked && w->st[k].nmaybe == 0 && !seen[k])
			fail_msg("%s N=%llu: scan misses key %d", w->what, (unsigned long long)w->n, k);
}

static int wl_open(struct wl *w)
{
	int r = lsm_open(DIR, &w->opt, &w->db);
	if (r < 0) {
		note_error(w, r);
		w->db = NULL;
	}
	return r;
}

static void wl_close(struct wl *w)
{
	int r = lsm_close(w->db);
	if (r < 0)
		note_error(w, r);
	w->db = NULL;
}

/* The workload: every call may fail while a fault is armed. */
static void workload(struct wl *w)
{
	int r;
	if (wl_open(w) < 0)
		return;
	for (int i = 0; i < 30; i++)
		do_put(w, i % NKEYS, i % 5 == 4);
	do_batch(w, 30, 40);
	for (int k = 0; k < 5; k++)
		do_delete(w, k * 3);
	wl_close(w);
	if (wl_open(w) < 0)
		return;                         /* recovery met the fault */
	/* Four level-0 tables: the background compaction starts on its own. */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 20; i++)
			do_put(w, (i * (3 + 2 * round)) % NKEYS, i == 19);
		if ((r = lsm_flush(w->db)) < 0)
			note_error(w, r);
	}
	if ((r = lsm_compact_range(w->db, NULL, 0, NULL, 0)) < 0)
		note_error(w, r);
	check_all(w, false);
	check_scan(w, false);
	for (int i = 0; i < 10; i++)
		do_put(w, (i * 11) % NKEYS, false);
	do_delete(w, 7);
	wl_close(w);
}

/* After the fault: clear it, reopen, check, close. */
static void verify_after(struct wl *w)
{
	env_fault_clear(w->env);
	w->opt.create_if_missing = 1;
	int r = lsm_open(DIR, &w->opt, &w->db);
	if (r < 0)
		fail_msg("%s N=%llu: reopen after the fault: %d %s", w->what, (unsigned long long)w->n, r,
		         lsm_last_error());
	check_all(w, true);
	check_scan(w, true);
	/* The store takes writes again. */
	do_put(w, 1, true);
	assert_int_equal(w->st[1].nmaybe, 0);
	r = lsm_close(w->db);
	if (r < 0)
		fail_msg("%s N=%llu: close after recovery: %d %s", w->what, (unsigned long long)w->n, r,
		         lsm_last_error());
}

/* Fails the Nth op of kind op (or makes the Nth write short: 7 bytes land,
 * then -EIO) for N = 1, 2, ... until the workload no longer meets it. */
static void fault_loop(enum env_fault_op op, int err, bool short_write, bool busy, const char *what)
{
	uint64_t n, hits = 0, limit = test_long() ? 100000 : 5000;
	for (n = 1; n < limit; n++) {
		struct wl w;
		wl_init(&w, what, n, busy);
		env_fault_reset_counts(w.env);
		if (short_write)
			env_fault_short_write(w.env, n, 7);
		else
			env_fault_fail_nth(w.env, op, n, err);
		workload(&w);
		bool hit = env_fault_count(w.env, op) >= n;
		if (!hit && w.errors)
			fail_msg("%s N=%llu: %d errors without meeting the fault (last: %s)", what,
			         (unsigned long long)n, w.errors, lsm_last_error());
		verify_after(&w);
		wl_done(&w);
		if (!hit)
			break;
		hits++;
	}
	if (n >= limit)
		fail_msg("%s: still meeting the fault at N=%llu", what, (unsigned long long)n);
	assert_true(hits > 0 || op == FAULT_TRUNCATE);   /* the engine need not truncate */
	print_message("# %s: faults injected at N = 1..%llu\n", what, (unsigned long long)hits);
}

static void test_fault_write(void **state) { (void)state; fault_loop(FAULT_WRITE, EIO, false, false, "write EIO"); }
static void test_fault_write_enospc(void **state) { (void)state; fault_loop(FAULT_WRITE, ENOSPC, false, false, "write ENOSPC"); }
static void test_fault_short_write(void **state) { (void)state; fault_loop(FAULT_WRITE, 0, true, false, "short write"); }
static void test_fault_sync(void **state) { (void)state; fault_loop(FAULT_SYNC, EIO, false, false, "sync"); }
static void test_fault_open(void **state) { (void)state; fault_loop(FAULT_OPEN, EIO, false, false, "open"); }
static void test_fault_read(void **state) { (void)state; fault_loop(FAULT_READ, EIO, false, false, "read"); }
static void test_fault_rename(void **state) { (void)state; fault_loop(FAULT_RENAME, EIO, false, false, "rename"); }
static void test_fault_unlink(void **state) { (void)state; fault_loop(FAULT_UNLINK, EIO, false, false, "unlink"); }
static void test_fault_sync_dir(void **state) { (void)state; fault_loop(FAULT_SYNC_DIR, EIO, false, false, "sync_dir"); }
static void test_fault_truncate(void **state) { (void)state; fault_loop(FAULT_TRUNCATE, EIO, false, false, "truncate"); }
/* The Nth operation of any kind, with the background busy. */
static void test_fault_any_busy(void **state) { (void)state; fault_loop(FAULT_ANY, EIO, false, true, "any op, busy"); }
static void test_fault_sync_busy(void **state) { (void)state; fault_loop(FAULT_SYNC, EIO, false, true, "sync, busy"); }

/* A failed WAL sync: the put reports it, the store turns read-only, reads
 * still work, close reports the error, and a reopen has what was acked. */
static void test_fault_sync_error_read_only(void **state)
{
	(void)state;
	struct wl w;
	void *v;
	size_t vl;
	char key[16];

	wl_init(&w, "sync read-only", 1, false);
	assert_int_equal(wl_open(&w), 0);
	for (int k = 0; k < 10; k++)
		do_put(&w, k, k == 9);
	assert_int_equal(w.errors, 0);
	env_fault_fail_nth(w.env, FAULT_SYNC, 1, EIO);
	do_put(&w, 10, true);
	assert_int_equal(w.errors, 1);
	int r = lsm_put(w.db, NULL, "x", 1, "y", 1);
	assert_int_equal(r, -EROFS);
	r = lsm_delete(w.db, NULL, "x", 1);
	assert_int_equal(r, -EROFS);
	assert_true(lsm_flush(w.db) < 0);
	assert_int_equal(lsm_get(w.db, NULL, key, make_key(key, 3), &v, &vl), 0);
	value_version(&w, 3, v, vl);
	free(v);
	assert_true(lsm_close(w.db) < 0);   /* the first sync error */
	w.db = NULL;
	verify_after(&w);
	wl_done(&w);
}

/* A disk that fills up after B bytes: writes fail with -ENOSPC (or -EROFS
 * once the store stopped), acknowledged data survives, and after space
 * comes back the store opens and takes writes. */
static void test_fault_disk_full(void **state)
{
	(void)state;
	static const uint64_t budgets[] = { 1, 100, 4096, 20000, 70000, 150000, 400000 };
	for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		struct wl w;
		wl_init(&w, "disk full", budgets[i], false);
		assert_int_equal(wl_open(&w), 0);
		env_fault_disk_full_after(w.env, budgets[i]);
		for (int j = 0; j < 2000 && w.errors < 5; j++) {
			do_put(&w, j % NKEYS, j % 16 == 0);
			if (j % 100 == 99) {
				int r = lsm_flush(w.db);
				if (r < 0)
					note_error(&w, r);
			}
		}
		if (!w.errors)
			fail_msg("budget %llu: 2000 puts never filled the disk", (unsigned long long)budgets[i]);
		int r = lsm_put(w.db, NULL, "x", 1, "y", 1);
		if (r != -ENOSPC && r != -EROFS)
			fail_msg("budget %llu: put on a full disk: %d", (unsigned long long)budgets[i], r);
		note_error(&w, r);
		wl_close(&w);
		if (!w.enospc)
			fail_msg("budget %llu: no call reported -ENOSPC", (unsigned long long)budgets[i]);
		verify_after(&w);
		wl_done(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_sync_error_read_only),
		cmocka_unit_test(test_fault_disk_full),
		cmocka_unit_test(test_fault_write),
		cmocka_unit_test(test_fault_write_enospc),
		cmocka_unit_test(test_fault_short_write),
		cmocka_unit_test(test_fault_sync),
		cmocka_unit_test(test_fault_open),
		cmocka_unit_test(test_fault_read),
		cmocka_unit_test(test_fault_rename),
		cmocka_unit_test(test_fault_unlink),
		cmocka_unit_test(test_fault_sync_dir),
		cmocka_unit_test(test_fault_truncate),
		cmocka_unit_test(test_fault_any_busy),
		cmocka_unit_test(test_fault_sync_busy),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
