/*
 * test_blob_gc.c - value-log garbage collection: space stays bounded under
 * overwrites with no call from the application, snapshots and iterators
 * keep what they can read, writers racing a GC pass win, power cuts
 * during a pass lose nothing, and a pass waits for a write whose value is
 * in the segment it collects but not yet in the memtable, and leaves alone
 * a segment a running flush is moving values into.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "env_test.h"
#include "lsm.h"
#include "testutil.h"

#define NKEYS 64
#define VSIZE 8000

static size_t make_value(char *buf, int i, int ver)
{
	for (size_t k = 0; k < VSIZE; k++)
		buf[k] = (char)('a' + (i * 7 + ver * 13 + (int)k) % 26);
	return VSIZE;
}

static void key_of(char *k, int i)
{
	sprintf(k, "gc%05d", i);
}

static void small_options(lsm_options *o)
{
	lsm_options_init(o);
	o->write_buffer_size = 128 << 10;
	o->target_file_size = 64 << 10;
	o->max_bytes_for_level_base = 256 << 10;
	o->vlog_segment_size = 128 << 10;
}

static void put_round(lsm_db *db, int ver)
{
	char k[16], v[VSIZE];
	for (int i = 0; i < NKEYS; i++) {
		key_of(k, i);
		make_value(v, i, ver);
		assert_int_equal(lsm_put(db, NULL, k, strlen(k), v, VSIZE), 0);
	}
}

static void check_round(lsm_db *db, const lsm_read_options *ro, int ver)
{
	char k[16], want[VSIZE];
	for (int i = 0; i < NKEYS; i++) {
		void *v;
		size_t vl;
		key_of(k, i);
		make_value(want, i, ver);
		int r = lsm_get(db, ro, k, strlen(k), &v, &vl);
		if (r != 0)
			fail_msg("get %s (version %d): %d (%s)", k, ver, r, lsm_last_error());
		assert_int_equal(vl, VSIZE);
		assert_memory_equal(v, want, VSIZE);
		free(v);
	}
}

static uint64_t vlog_bytes(lsm_db *db)
{
	lsm_stats st;
	assert_int_equal(lsm_get_stats(db, &st), 0);
	return st.vlog_bytes;
}

/* Overwrites leave garbage; the background thread reclaims it with no
 * call: the log shrinks to about the live data plus one segment. */
static void test_gc_automatic_bound(void **state)
{
	(void)state;
	char *dir = test_tmpdir("gc");
	lsm_options o;
	lsm_db *db;
	uint64_t live = (uint64_t)NKEYS * VSIZE;

	small_options(&o);
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	for (int ver = 1; ver <= 8; ver++)
		put_round(db, ver);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	assert_true(vlog_bytes(db) > 4 * live);
	/* Idle: within 20 s the store must be down to live + 1.5 segments. */
	uint64_t bound = live * 3 / 2 + (192u << 10);
	for (int i = 0; i < 200 && vlog_bytes(db) > bound; i++)
		usleep(100000);
	lsm_stats st;
	lsm_get_stats(db, &st);
	if (st.vlog_bytes > bound)
		fail_msg("value log %llu bytes after idling, bound %llu (garbage %llu, %llu passes)",
		         (unsigned long long)st.vlog_bytes, (unsigned long long)bound,
		         (unsigned long long)st.vlog_garbage_bytes, (unsigned long long)st.gc_passes);
	assert_true(st.gc_passes > 0);
	assert_true(st.gc_segments_removed > 0);
	check_round(db, NULL, 8);
	assert_int_equal(lsm_close(db), 0);
	/* Counts and values survive a reopen. */
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	check_round(db, NULL, 8);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* A snapshot and an iterator opened before a GC pass still read the old
 * values; the segments go once they are released. */
static void test_gc_snapshot_and_iterator(void **state)
{
	(void)state;
	char *dir = test_tmpdir("gc");
	lsm_options o;
	lsm_db *db;
	const lsm_snapshot *snap;
	lsm_read_options ro = { .fill_cache = 1 };
	lsm_iter *it;

	small_options(&o);
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	put_round(db, 1);
	assert_int_equal(lsm_snapshot_new(db, &snap), 0);
	assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
	for (int ver = 2; ver <= 5; ver++)
		put_round(db, ver);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	assert_true(lsm_gc(db) >= 0);
	ro.snapshot = snap;
	check_round(db, &ro, 1);
	check_round(db, NULL, 5);
	int n = 0;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it), n++) {
		const void *v;
		size_t vl, kl;
		char want[VSIZE];
		int i = atoi((const char *)lsm_iter_key(it, &kl) + 2);
		assert_int_equal(lsm_iter_value(it, &v, &vl), 0);
		make_value(want, i, 1);
		assert_memory_equal(v, want, VSIZE);
	}
	assert_int_equal(n, NKEYS);
	lsm_iter_free(it);
	lsm_snapshot_release(db, snap);
	/* Only now can compaction drop the version-1 pointers (counting their
	 * records as garbage) and GC reclaim their segments. */
	uint64_t before = vlog_bytes(db);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	assert_true(lsm_gc(db) >= 0);
	if (vlog_bytes(db) >= before) {
		char *t = NULL, *t2 = NULL;
		lsm_property(db, "lsm.stats", &t);
		lsm_property(db, "lsm.vlog", &t2);
		fail_msg("value log did not shrink (%llu -> %llu):\n%s%s", (unsigned long long)before,
		         (unsigned long long)vlog_bytes(db), t ? t : "", t2 ? t2 : "");
	}
	check_round(db, NULL, 5);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

struct writer_arg {
	lsm_db *db;
	int ver;
};

static void *overwrite_thread(void *p)
{
	struct writer_arg *a = p;
	for (int ver = 100; ver < 100 + a->ver; ver++)
		put_round(a->db, ver);
	return NULL;
}

/* Writers racing GC passes: the newest write always wins. */
static void test_gc_concurrent_writers(void **state)
{
	(void)state;
	char *dir = test_tmpdir("gc");
	lsm_options o;
	lsm_db *db;
	pthread_t t;
	struct writer_arg a;

	small_options(&o);
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	for (int ver = 1; ver <= 4; ver++)
		put_round(db, ver);
	a = (struct writer_arg){ db, 6 };
	assert_int_equal(pthread_create(&t, NULL, overwrite_thread, &a), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
		assert_true(lsm_gc(db) >= 0);
	}
	pthread_join(t, NULL);
	check_round(db, NULL, 105);
	assert_int_equal(lsm_close(db), 0);
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	check_round(db, NULL, 105);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* A power cut after every sync of a forced GC pass: reopening works and
 * every key still has its newest value. */
static void test_gc_power_cuts(void **state)
{
	(void)state;
	int cuts = 0;

	for (uint64_t n = 1; n < 200; n++) {
		lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
		lsm_options o;
		lsm_db *db;

		small_options(&o);
		o.env = fe;
		assert_int_equal(lsm_open("/db", &o, &db), 0);
		for (int ver = 1; ver <= 4; ver++)
			put_round(db, ver);
		assert_int_equal(lsm_sync(db), 0);
		assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
		env_fault_power_cut_after_sync(fe, n);
		int64_t g = lsm_gc(db);
		bool cut = env_fault_is_down(fe);
		lsm_close(db);
		assert_int_equal(env_fault_crash(fe), 0);
		int r = lsm_open("/db", &o, &db);
		if (r != 0)
			fail_msg("cut after sync %llu: reopen %d (%s)", (unsigned long long)n, r, lsm_last_error());
		check_round(db, NULL, 4);
		assert_true(lsm_gc(db) >= 0);
		check_round(db, NULL, 4);
		assert_int_equal(lsm_close(db), 0);
		env_fault_free(fe);
		env_mem_free(mem);
		if (!cut) {
			assert_true(g >= 0);
			break;          /* the pass finished before the n-th sync */
		}
		cuts++;
	}
	assert_true(cuts > 0);
}

/* A write stalled between its value-log append and its memtable insert (in
 * its WAL write, by a hook of the fault env) while lsm_gc seals and collects
 * the segment holding its value.  The pass must wait for the write: judged
 * by its key's newest pointer before the write lands, the value is garbage,
 * and the segment would be removed under a pointer about to be published. */
/* A write hook of the fault env that stalls the first write, once armed,
 * to a file whose name ends in suffix (only from thread writer, if
 * one_thread), and tells the test it has. */
struct stall {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *suffix;
	bool one_thread;
	pthread_t writer;
	bool armed, entered;
};

static void stall_init(struct stall *s, const char *suffix, bool one_thread)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->suffix = suffix;
	s->one_thread = one_thread;
}

static void stall_wait_entered(struct stall *s)
{
	pthread_mutex_lock(&s->mu);
	while (!s->entered)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

static void stall_done(struct stall *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

static void stall_hook(void *arg, const char *path)
{
	struct stall *s = arg;
	size_t n = strlen(path), m = strlen(s->suffix);

	if (n < m || strcmp(path + n - m, s->suffix) != 0)
		return;
	pthread_mutex_lock(&s->mu);
	bool mine = s->armed && (!s->one_thread || pthread_equal(s->writer, pthread_self()));
	if (mine) {
		s->armed = false;
		s->entered = true;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (mine)
		usleep(300 * 1000);     /* long enough for the pass to run ahead */
}

struct late_write {
	lsm_db *db;
	struct stall *stall;
	int r;
};

static void *late_writer(void *arg)
{
	struct late_write *w = arg;
	char v[VSIZE];

	pthread_mutex_lock(&w->stall->mu);
	w->stall->writer = pthread_self();
	w->stall->armed = true;
	pthread_mutex_unlock(&w->stall->mu);
	make_value(v, 999, 1);
	w->r = lsm_put(w->db, NULL, "late", 4, v, VSIZE);
	return NULL;
}

static void check_late(lsm_db *db)
{
	char want[VSIZE];
	void *v;
	size_t vl;
	int r = lsm_get(db, NULL, "late", 4, &v, &vl);

	if (r != 0)
		fail_msg("get late: %d (%s)", r, lsm_last_error());
	make_value(want, 999, 1);
	assert_int_equal(vl, VSIZE);
	assert_memory_equal(v, want, VSIZE);
	free(v);
}

static void test_gc_write_in_flight(void **state)
{
	(void)state;
	lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
	struct stall st;
	struct late_write w = { .stall = &st };
	pthread_t t;
	lsm_options o;
	char k[16], v[VSIZE];

	stall_init(&st, ".wal", true);
	small_options(&o);
	o.env = fe;
	/* One segment holds everything: the active one, with garbage (round 1,
	 * counted by the flush), which lsm_gc seals and collects. */
	o.vlog_segment_size = 4 << 20;
	assert_int_equal(lsm_open("/db", &o, &w.db), 0);
	put_round(w.db, 1);
	put_round(w.db, 2);
	for (int i = NKEYS - 4; i < NKEYS; i++) {
		key_of(k, i);
		make_value(v, i, 3);
		assert_int_equal(lsm_put(w.db, NULL, k, strlen(k), v, VSIZE), 0);
	}
	assert_int_equal(lsm_flush(w.db), 0);
	lsm_stats before;
	assert_int_equal(lsm_get_stats(w.db, &before), 0);
	assert_int_equal(before.vlog_segments, 1);
	assert_true(before.vlog_garbage_bytes > 0);

	env_fault_set_write_hook(fe, stall_hook, &st);
	assert_int_equal(pthread_create(&t, NULL, late_writer, &w), 0);
	stall_wait_entered(&st);
	/* The late value is in the active segment; its WAL record is not yet
	 * written.  Seal, collect, flush and remove what is unreachable. */
	assert_true(lsm_gc(w.db) > 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.r, 0);
	env_fault_set_write_hook(fe, NULL, NULL);
	assert_true(lsm_gc(w.db) >= 0);
	check_late(w.db);

	assert_int_equal(lsm_close(w.db), 0);
	assert_int_equal(lsm_open("/db", &o, &w.db), 0);
	check_late(w.db);
	for (int i = 0; i < NKEYS; i++) {
		void *got;
		size_t gl;
		key_of(k, i);
		make_value(v, i, i >= NKEYS - 4 ? 3 : 2);
		assert_int_equal(lsm_get(w.db, NULL, k, strlen(k), &got, &gl), 0);
		assert_int_equal(gl, VSIZE);
		assert_memory_equal(got, v, VSIZE);
		free(got);
	}
	assert_int_equal(lsm_close(w.db), 0);
	env_fault_free(fe);
	env_mem_free(mem);
	stall_done(&st);
}

/* A flush that moves values the WAL kept inline (wal_inline_max) to the
 * value log, stalled in its table write while lsm_gc seals and collects the
 * segment holding those values.  Until the table is installed nothing points
 * at them, so a pass would take them for garbage: GC must leave the segment
 * to a later pass. */
struct flusher {
	lsm_db *db;
	int r;
};

static void *flusher_main(void *arg)
{
	struct flusher *f = arg;

	f->r = lsm_flush(f->db);
	return NULL;
}

static void check_inline_keys(lsm_db *db)
{
	char k[16], want[VSIZE];
	for (int i = 0; i < 4; i++) {
		void *v;
		size_t vl;
		sprintf(k, "late%d", i);
		make_value(want, 1000 + i, 1);
		int r = lsm_get(db, NULL, k, strlen(k), &v, &vl);
		if (r != 0)
			fail_msg("get %s: %d (%s)", k, r, lsm_last_error());
		assert_int_equal(vl, VSIZE);
		assert_memory_equal(v, want, VSIZE);
		free(v);
	}
}

static void test_gc_flush_in_flight(void **state)
{
	(void)state;
	lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
	struct stall st;
	struct flusher f;
	lsm_batch *b;
	pthread_t t;
	lsm_options o;
	char k[16], v[VSIZE];

	stall_init(&st, ".sst", false);
	small_options(&o);
	o.env = fe;
	o.write_buffer_size = 4 << 20;
	o.vlog_segment_size = 4 << 20;
	o.wal_inline_max = 64 << 10;
	assert_int_equal(lsm_open("/db", &o, &f.db), 0);
	/* Two rounds in batches too big to stay in the WAL: one segment, half
	 * garbage once the flush drops round 1. */
	assert_int_equal(lsm_batch_new(&b), 0);
	for (int ver = 1; ver <= 2; ver++) {
		lsm_batch_clear(b);
		for (int i = 0; i < NKEYS; i++) {
			key_of(k, i);
			make_value(v, i, ver);
			assert_int_equal(lsm_batch_put(b, k, strlen(k), v, VSIZE), 0);
		}
		assert_int_equal(lsm_write(f.db, NULL, b), 0);
	}
	lsm_batch_free(b);
	assert_int_equal(lsm_flush(f.db), 0);
	assert_int_equal(lsm_wait_idle(f.db), 0);
	/* Small writes: their values stay in the WAL and the memtable. */
	lsm_stats before, after;
	assert_int_equal(lsm_get_stats(f.db, &before), 0);
	assert_true(before.vlog_garbage_bytes > 0);
	for (int i = 0; i < 4; i++) {
		sprintf(k, "late%d", i);
		make_value(v, 1000 + i, 1);
		assert_int_equal(lsm_put(f.db, NULL, k, strlen(k), v, VSIZE), 0);
	}
	assert_int_equal(lsm_get_stats(f.db, &after), 0);
	assert_int_equal(after.vlog_bytes_written, before.vlog_bytes_written);

	env_fault_set_write_hook(fe, stall_hook, &st);
	pthread_mutex_lock(&st.mu);
	st.armed = true;
	pthread_mutex_unlock(&st.mu);
	assert_int_equal(pthread_create(&t, NULL, flusher_main, &f), 0);
	stall_wait_entered(&st);
	/* The flush has put the late values in the active segment; its table
	 * is not installed.  Seal, collect, flush and remove what is
	 * unreachable. */
	assert_true(lsm_gc(f.db) >= 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(f.r, 0);
	env_fault_set_write_hook(fe, NULL, NULL);
	assert_int_equal(lsm_get_stats(f.db, &after), 0);
	assert_true(after.vlog_bytes_written > before.vlog_bytes_written);
	check_inline_keys(f.db);
	assert_true(lsm_gc(f.db) >= 0);
	check_inline_keys(f.db);
	check_round(f.db, NULL, 2);

	assert_int_equal(lsm_close(f.db), 0);
	assert_int_equal(lsm_open("/db", &o, &f.db), 0);
	check_inline_keys(f.db);
	check_round(f.db, NULL, 2);
	assert_int_equal(lsm_close(f.db), 0);
	env_fault_free(fe);
	env_mem_free(mem);
	stall_done(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc_automatic_bound),
		cmocka_unit_test(test_gc_snapshot_and_iterator),
		cmocka_unit_test(test_gc_concurrent_writers),
		cmocka_unit_test(test_gc_power_cuts),
		cmocka_unit_test(test_gc_write_in_flight),
		cmocka_unit_test(test_gc_flush_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
