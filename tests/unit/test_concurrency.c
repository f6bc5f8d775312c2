/*
 * test_concurrency.c - the engine under concurrent use, through lsm.h only.
 *
 * Mixed workload: two writers, two readers and an iterator thread share one
 * db with small buffers, so flushes and compactions run all along.
 *   - Counter keys "cNNN": writer (N % 2) owns key N and writes values
 *     "cNNN:VVVVVVVV:" + filler, VVVVVVVV counting up per key.  A reader
 *     checks each value is well formed and belongs to its key, and that the
 *     version it sees for a key never goes backward (a key written once
 *     never reads as absent again).
 *   - Group keys "gGG:MM": a batch rewrites all GROUP_SIZE members of one
 *     group with one tag, or deletes them all.  Every view (a get at a
 *     snapshot, an iterator) must show each group whole with a single tag
 *     or not at all: batches are atomic and views are snapshots.
 *   - Iterators must return strictly increasing keys, the same entries
 *     backward as forward, and counter versions no older than an earlier
 *     iterator of the same thread saw.
 * Threads record the first failure in a shared message; the main thread
 * asserts after joining (cmocka's longjmp works only on the main thread).
 *
 * Group commit: many threads do puts (every 4th synced) at once; then the
 * power fails before anything more is synced.  Every synced put must be there,
 * and each thread's surviving puts must be a prefix of what it wrote.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "env_test.h"
#include "testutil.h"

#define NCOUNTERS 64
#define NGROUPS 16
#define GROUP_SIZE 12

struct shared {
	lsm_db *db;
	uint64_t seed;
	int ops;                        /* writes per writer */
	atomic_int writers_left;
	atomic_int failed;
	atomic_uint tag;                /* batch tags, increasing */
	pthread_mutex_t mu;
	char msg[512];                  /* first failure; mu */
	uint32_t final_ver[NCOUNTERS];  /* written by the owner, read after join */
	atomic_long iterations, reads;
};

struct thread_arg {
	struct shared *S;
	int id;
};

static void failf(struct shared *S, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&S->mu);
	if (!atomic_load(&S->failed)) {
		int n = snprintf(S->msg, sizeof(S->msg), "seed=%llu: ", (unsigned long long)S->seed);
		va_start(ap, fmt);
		vsnprintf(S->msg + n, sizeof(S->msg) - (size_t)n, fmt, ap);
		va_end(ap);
		atomic_store(&S->failed, 1);
	}
	pthread_mutex_unlock(&S->mu);
}

static size_t counter_value(char *buf, int k, uint32_t ver)
{
	int n = sprintf(buf, "c%03d:%08u:", k, ver);
	size_t len = 20 + (ver * 37u + (unsigned)k) % 300;
	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + (ver + (unsigned)k) % 26);
	return len;
}

/* Checks a counter value read for key k; returns its version or -1. */
static long parse_counter(struct shared *S, int k, const void *v, size_t len, const char *who)
{
	char want[512], head[16];
	unsigned ver;
	if (len < 14 || len > 400) {
		failf(S, "%s: counter c%03d: bad length %zu", who, k, len);
		return -1;
	}
	memcpy(head, v, 14);
	head[14] = '\0';
	int kk;
	if (sscanf(head, "c%03d:%08u:", &kk, &ver) != 2 || kk != k) {
		failf(S, "%s: counter c%03d holds \"%.14s\"", who, k, head);
		return -1;
	}
	size_t wl = counter_value(want, k, ver);
	if (wl != len || memcmp(want, v, len) != 0) {
		failf(S, "%s: counter c%03d version %u: value torn or wrong (len %zu)", who, k, ver, len);
		return -1;
	}
	return (long)ver;
}

static void *writer_main(void *arg_)
{
	struct thread_arg *arg = arg_;
	struct shared *S = arg->S;
	uint64_t rng = S->seed * 2 + (uint64_t)arg->id + 1;
	uint32_t ver[NCOUNTERS] = { 0 };
	lsm_write_options wo;
	lsm_batch *b = NULL;
	char key[32], val[512];
	int r;

	lsm_write_options_init(&wo);
	if (lsm_batch_new(&b) < 0) {
		failf(S, "batch_new");
		goto out;
	}
	for (int i = 0; i < S->ops && !atomic_load(&S->failed); i++) {
		int k = (int)(test_rand(&rng) % (NCOUNTERS / 2)) * 2 + arg->id;
		ver[k]++;
		size_t vl = counter_value(val, k, ver[k]);
		sprintf(key, "c%03d", k);
		wo.sync = test_rand(&rng) % 64 == 0;
		if ((r = lsm_put(S->db, &wo, key, 4, val, vl)) < 0) {
			failf(S, "writer %d: put %s: %d", arg->id, key, r);
			break;
		}
		S->final_ver[k] = ver[k];
		if (i % 8 == 0) {
			unsigned g = (unsigned)(test_rand(&rng) % NGROUPS);
			unsigned tag = atomic_fetch_add(&S->tag, 1) + 1;
			bool del = test_rand(&rng) % 5 == 0;
			lsm_batch_clear(b);
			for (int m = 0; m < GROUP_SIZE; m++) {
				sprintf(key, "g%02u:%02d", g, m);
				sprintf(val, "tag:%08u", tag);
				r = del ? lsm_batch_delete(b, key, 6) : lsm_batch_put(b, key, 6, val, 12);
				if (r < 0)
					failf(S, "writer %d: batch op: %d", arg->id, r);
			}
			wo.sync = 0;
			if ((r = lsm_write(S->db, &wo, b)) < 0)
				failf(S, "writer %d: write batch: %d", arg->id, r);
		}
		if (arg->id == 0 && i % 700 == 699 && (r = lsm_flush(S->db)) < 0)
			failf(S, "flush: %d", r);
		if (arg->id == 1 && i % 1500 == 1499) {
			char lo[8], hi[8];
			sprintf(lo, "c%03d", (int)(test_rand(&rng) % NCOUNTERS));
			sprintf(hi, "g%02d", (int)(test_rand(&rng) % NGROUPS));
			if ((r = lsm_compact_range(S->db, lo, 4, hi, 3)) < 0)
				failf(S, "compact_range: %d", r);
		}
	}
out:
	lsm_batch_free(b);
	atomic_fetch_sub(&S->writers_left, 1);
	return NULL;
}

/* Reads every member of group g at snap: all with one tag, or none. */
static void check_group_get(struct shared *S, const lsm_read_options *ro, unsigned g)
{
	char key[16], first[16] = "";
	int present = 0;
	for (int m = 0; m < GROUP_SIZE; m++) {
		void *v;
		size_t vl;
		sprintf(key, "g%02u:%02d", g, m);
		int r = lsm_get(S->db, ro, key, 6, &v, &vl);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			failf(S, "reader: get %s: %d", key, r);
			return;
		}
		if (vl != 12 || memcmp(v, "tag:", 4) != 0)
			failf(S, "reader: %s holds a bad value (len %zu)", key, vl);
		else if (present++ == 0)
			memcpy(first, v, 12);
		else if (memcmp(first, v, 12) != 0)
			failf(S, "reader: group %u mixes \"%.12s\" and \"%.12s\" at one snapshot", g, first,
			      (char *)v);
		free(v);
	}
	if (present != 0 && present != GROUP_SIZE)
		failf(S, "reader: group %u has %d of %d members at one snapshot", g, present, GROUP_SIZE);
}

static void *reader_main(void *arg_)
{
	struct thread_arg *arg = arg_;
	struct shared *S = arg->S;
	uint64_t rng = S->seed * 3 + (uint64_t)arg->id + 7;
	long seen[NCOUNTERS] = { 0 };
	char key[16];

	while (atomic_load(&S->writers_left) > 0 && !atomic_load(&S->failed)) {
		int k = (int)(test_rand(&rng) % NCOUNTERS);
		void *v;
		size_t vl;
		sprintf(key, "c%03d", k);
		int r = lsm_get(S->db, NULL, key, 4, &v, &vl);
		atomic_fetch_add(&S->reads, 1);
		if (r == -ENOENT) {
			if (seen[k])
				failf(S, "reader: %s absent after version %ld was seen", key, seen[k]);
			continue;
		}
		if (r < 0) {
			failf(S, "reader: get %s: %d", key, r);
			break;
		}
		long ver = parse_counter(S, k, v, vl, "reader");
		free(v);
		if (ver >= 0 && ver < seen[k])
			failf(S, "reader: %s went back from version %ld to %ld", key, seen[k], ver);
		if (ver > seen[k])
			seen[k] = ver;
		if (test_rand(&rng) % 16 == 0) {
			const lsm_snapshot *snap;
			lsm_read_options ro;
			if ((r = lsm_snapshot_new(S->db, &snap)) < 0) {
				failf(S, "reader: snapshot_new: %d", r);
				break;
			}
			lsm_read_options_init(&ro);
			ro.snapshot = snap;
			check_group_get(S, &ro, (unsigned)(test_rand(&rng) % NGROUPS));
			lsm_snapshot_release(S->db, snap);
		}
	}
	return NULL;
}

struct entry {
	char key[8];
	char val[16];                   /* a group's tag, or the counter version */
};

/* One full scan forward, checking order, groups and counters; then the same
 * entries backward.  Returns 0 or -1 (failure recorded). */
static int scan_once(struct shared *S, long *seen, struct entry *ents, int cap)
{
	lsm_iter *it;
	int n = 0, r = lsm_iter_new(S->db, NULL, &it);
	int group_count[NGROUPS] = { 0 };
	char group_tag[NGROUPS][16];

	if (r < 0) {
		failf(S, "iter_new: %d", r);
		return -1;
	}
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it) && n < cap; lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const void *v;
		if (kl > 7 || kl < 4) {
			failf(S, "iterator: unexpected key of length %zu", kl);
			goto fail;
		}
		struct entry *e = &ents[n];
		memset(e, 0, sizeof(*e));
		memcpy(e->key, k, kl);
		if (n && strcmp(ents[n - 1].key, e->key) >= 0) {
			failf(S, "iterator: %s after %s", e->key, ents[n - 1].key);
			goto fail;
		}
		if ((r = lsm_iter_value(it, &v, &vl)) < 0) {
			failf(S, "iterator: value of %s: %d", e->key, r);
			goto fail;
		}
		if (e->key[0] == 'c') {
			int c = atoi(e->key + 1);
			if (c < 0 || c >= NCOUNTERS || kl != 4) {
				failf(S, "iterator: unexpected key %s", e->key);
				goto fail;
			}
			long ver = parse_counter(S, c, v, vl, "iterator");
			if (ver < seen[c])
				failf(S, "iterator: %s went back from version %ld to %ld", e->key, seen[c], ver);
			seen[c] = ver;
			snprintf(e->val, sizeof(e->val), "%ld", ver);
		} else {
			int g = atoi(e->key + 1);
			if (e->key[0] != 'g' || kl != 6 || g < 0 || g >= NGROUPS || vl != 12) {
				failf(S, "iterator: bad group entry %s", e->key);
				goto fail;
			}
			memcpy(e->val, v, 12);
			if (group_count[g]++ == 0)
				memcpy(group_tag[g], v, 12);
			else if (memcmp(group_tag[g], v, 12) != 0)
				failf(S, "iterator: group %d mixes %.12s and %.12s", g, group_tag[g], e->val);
		}
		n++;
	}
	if ((r = lsm_iter_status(it)) < 0)
		failf(S, "iterator status %d", r);
	for (int g = 0; g < NGROUPS; g++)
		if (group_count[g] != 0 && group_count[g] != GROUP_SIZE)
			failf(S, "iterator: group %d has %d of %d members", g, group_count[g], GROUP_SIZE);
	/* Backward over the same snapshot: the same entries in reverse. */
	int i = n - 1;
	for (lsm_iter_seek_to_last(it); lsm_iter_valid(it); lsm_iter_prev(it), i--) {
		size_t kl;
		const char *k = lsm_iter_key(it, &kl);
		if (i < 0 || kl != strlen(ents[i].key) || memcmp(k, ents[i].key, kl) != 0) {
			failf(S, "iterator: backward scan differs at entry %d", i);
			goto fail;
		}
	}
	if (i != -1)
		failf(S, "iterator: backward scan ended at entry %d", i);
	lsm_iter_free(it);
	atomic_fetch_add(&S->iterations, 1);
	return 0;
fail:
	lsm_iter_free(it);
	return -1;
}

static void *iter_main(void *arg)
{
	struct shared *S = arg;
	long seen[NCOUNTERS] = { 0 };
	int cap = NCOUNTERS + NGROUPS * GROUP_SIZE;
	struct entry *ents = calloc((size_t)cap, sizeof(*ents));
	if (!ents) {
		failf(S, "out of memory");
		return NULL;
	}
	do {
		if (scan_once(S, seen, ents, cap) < 0)
			break;
	} while (atomic_load(&S->writers_left) > 0 && !atomic_load(&S->failed));
	free(ents);
	return NULL;
}

static void small_options(lsm_options *o, lsm_env *env)
{
	lsm_options_init(o);
	o->env = env;
	o->write_buffer_size = 64 * 1024;
	o->target_file_size = 64 * 1024;
	o->max_bytes_for_level_base = 256 * 1024;
	o->block_cache_size = 256 * 1024;
}

static void check_final(struct shared *S)
{
	long seen[NCOUNTERS] = { 0 };
	int cap = NCOUNTERS + NGROUPS * GROUP_SIZE;
	struct entry *ents = calloc((size_t)cap, sizeof(*ents));
	assert_non_null(ents);
	assert_int_equal(scan_once(S, seen, ents, cap), 0);
	if (atomic_load(&S->failed))
		fail_msg("%s", S->msg);
	for (int k = 0; k < NCOUNTERS; k++)
		if (seen[k] != (long)S->final_ver[k])
			fail_msg("seed=%llu: c%03d at version %ld, last written %u",
			         (unsigned long long)S->seed, k, seen[k], S->final_ver[k]);
	for (int g = 0; g < NGROUPS; g++)
		check_group_get(S, NULL, (unsigned)g);
	if (atomic_load(&S->failed))
		fail_msg("%s", S->msg);
	free(ents);
}

static void test_concurrency_mixed(void **state)
{
	(void)state;
	struct shared *S = calloc(1, sizeof(*S));
	lsm_env *env = env_mem_new();
	lsm_options opt;
	pthread_t th[5];
	struct thread_arg args[4];

	assert_non_null(S);
	assert_non_null(env);
	S->seed = test_seed("test_concurrency_mixed");
	S->ops = test_long() ? 200000 : 20000;
	pthread_mutex_init(&S->mu, NULL);
	atomic_store(&S->writers_left, 2);
	small_options(&opt, env);
	assert_int_equal(lsm_open("/db", &opt, &S->db), 0);
	for (int i = 0; i < 4; i++) {
		args[i].S = S;
		args[i].id = i % 2;
		assert_int_equal(pthread_create(&th[i], NULL, i < 2 ? writer_main : reader_main, &args[i]), 0);
	}
	assert_int_equal(pthread_create(&th[4], NULL, iter_main, S), 0);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&S->failed))
		fail_msg("%s", S->msg);
	print_message("# reads %ld, full scans %ld\n", atomic_load(&S->reads), atomic_load(&S->iterations));
	assert_true(atomic_load(&S->iterations) > 0);
	assert_int_equal(lsm_wait_idle(S->db), 0);
	lsm_stats st;
	assert_int_equal(lsm_get_stats(S->db, &st), 0);
	assert_true(st.flushes > 0);
	assert_true(st.compactions > 0);
	check_final(S);
	assert_int_equal(lsm_close(S->db), 0);
	assert_int_equal(lsm_open("/db", &opt, &S->db), 0);
	check_final(S);
	assert_int_equal(lsm_close(S->db), 0);
	pthread_mutex_destroy(&S->mu);
	free(S);
	env_mem_free(env);
}

#define GC_THREADS 8

struct gc_arg {
	lsm_db *db;
	int id, n;
	int result;                     /* first error, or 0 */
};

static void *gc_main(void *arg_)
{
	struct gc_arg *a = arg_;
	lsm_write_options wo;
	char key[32], val[64];
	lsm_write_options_init(&wo);
	for (int i = 0; i < a->n && a->result == 0; i++) {
		int kl = sprintf(key, "t%d:%05d", a->id, i);
		int vl = sprintf(val, "value of thread %d put %d", a->id, i);
		wo.sync = i % 4 == 3;
		a->result = lsm_put(a->db, &wo, key, (size_t)kl, val, (size_t)vl);
	}
	return NULL;
}

static void test_concurrency_group_commit(void **state)
{
	(void)state;
	lsm_env *mem = env_mem_new(), *env = env_fault_new(mem);
	lsm_options opt;
	lsm_db *db;
	pthread_t th[GC_THREADS];
	struct gc_arg args[GC_THREADS];
	int n = test_long() ? 2000 : 200;

	assert_non_null(env);
	small_options(&opt, env);
	assert_int_equal(lsm_open("/db", &opt, &db), 0);
	env_fault_reset_counts(env);
	for (int t = 0; t < GC_THREADS; t++) {
		args[t] = (struct gc_arg){ .db = db, .id = t, .n = n };
		assert_int_equal(pthread_create(&th[t], NULL, gc_main, &args[t]), 0);
	}
	for (int t = 0; t < GC_THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < GC_THREADS; t++)
		if (args[t].result != 0)
			fail_msg("thread %d: put failed: %d %s", t, args[t].result, lsm_last_error());
	print_message("# %d synced puts took %llu syncs\n", GC_THREADS * n / 4,
	              (unsigned long long)env_fault_count(env, FAULT_SYNC));

	/* Power cut now: arm it for the next sync and sync a scratch file
	 * (or the engine's own next sync comes first: equally fine). */
	lsm_file *scratch;
	env_fault_power_cut_after_sync(env, 1);
	assert_int_equal(env_open(env, "/scratch", LSM_ENV_WRITE | LSM_ENV_CREATE, &scratch), 0);
	env_sync(env, scratch);
	env_close(env, scratch);
	assert_true(env_fault_is_down(env));
	lsm_close(db);                      /* its sync fails: expected */
	assert_int_equal(env_fault_crash(env), 0);
	env_fault_clear(env);
	int r = lsm_open("/db", &opt, &db);
	if (r < 0)
		fail_msg("open after the power cut: %d %s", r, lsm_last_error());
	for (int t = 0; t < GC_THREADS; t++) {
		int present = 0;
		for (int i = 0; i < n; i++) {
			char key[32];
			void *v;
			size_t vl;
			int kl = sprintf(key, "t%d:%05d", t, i);
			int r = lsm_get(db, NULL, key, (size_t)kl, &v, &vl);
			if (r == 0) {
				free(v);
				if (present != i)
					fail_msg("thread %d: put %d survived but put %d did not", t, i, present);
				present++;
			} else if (r != -ENOENT) {
				fail_msg("get %s: %d %s", key, r, lsm_last_error());
			}
		}
		int last_synced = n / 4 * 4 - 1;  /* puts i % 4 == 3 were synced */
		if (present <= last_synced)
			fail_msg("thread %d: synced put %d lost (%d survived)", t, last_synced, present);
	}
	assert_int_equal(lsm_close(db), 0);
	env_fault_free(env);
	env_mem_free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrency_mixed),
		cmocka_unit_test(test_concurrency_group_commit),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
