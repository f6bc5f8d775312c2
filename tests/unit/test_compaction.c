/*
 * test_compaction.c - compaction choices seen from the public API: point
 * lookups that keep reading past a file get it compacted down (allowed
 * seeks, as in LevelDB) and leave every value readable; lookups that find
 * their key in the first file they consult charge nothing; scans charge
 * through read sampling.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lsm.h"
#include "testutil.h"

struct fixture {
	char *tmp;
	char dir[4096];
	lsm_options opt;
	lsm_db *db;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->tmp = test_tmpdir("test_compaction");
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->tmp);
	lsm_options_init(&f->opt);
	f->opt.write_buffer_size = 64 * 1024;
	f->opt.target_file_size = 64 * 1024;
	f->opt.max_bytes_for_level_base = 1024 * 1024;
	if (lsm_open(f->dir, &f->opt, &f->db) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->db)
		lsm_close(f->db);
	test_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static void put_num(lsm_db *db, int i, int version)
{
	char k[32], v[64];
	int kl = snprintf(k, sizeof(k), "key%06d", i);
	int vl = snprintf(v, sizeof(v), "value %d of key %d", version, i);
	assert_int_equal(lsm_put(db, NULL, k, (size_t)kl, v, (size_t)vl), 0);
}

static void expect_num(lsm_db *db, int i, int version)
{
	char k[32], want[64];
	int kl = snprintf(k, sizeof(k), "key%06d", i);
	int wl = snprintf(want, sizeof(want), "value %d of key %d", version, i);
	void *v = NULL;
	size_t n = 0;
	assert_int_equal(lsm_get(db, NULL, k, (size_t)kl, &v, &n), 0);
	assert_int_equal(n, (size_t)wl);
	assert_memory_equal(v, want, n);
	free(v);
}

static lsm_stats stats(lsm_db *db)
{
	lsm_stats s;
	assert_int_equal(lsm_get_stats(db, &s), 0);
	return s;
}

/* Waits (up to 20 s) for a compaction chosen for seeks to have run. */
static bool wait_seek_compaction(lsm_db *db)
{
	for (int i = 0; i < 2000; i++) {
		if (stats(db).seek_compactions > 0) {
			assert_int_equal(lsm_wait_idle(db), 0);
			return true;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* A store of 2000 keys at the deepest level, then one table above it
 * (level 0, or lower where a flush may place it) with every tenth key
 * rewritten: a lookup of any other key consults that table (its range
 * covers the key) and then the one below.  Returns the upper table's level. */
static int make_two_layers(lsm_db *db)
{
	for (int i = 0; i < 2000; i++)
		put_num(db, i, 1);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 2000; i += 10)
		put_num(db, i, 2);
	assert_int_equal(lsm_flush(db), 0);
	assert_int_equal(lsm_wait_idle(db), 0);
	lsm_stats s = stats(db);
	int top = 0, tables = 0;
	while (top < LSM_MAX_LEVELS && s.files_at_level[top] == 0)
		top++;
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		tables += (int)s.files_at_level[l];
	assert_true(top < LSM_MAX_LEVELS);
	assert_int_equal(s.files_at_level[top], 1);
	assert_true(tables >= 2);
	assert_int_equal(s.seek_compactions, 0);
	return top;
}

static void test_compaction_seek_triggered(void **state)
{
	struct fixture *f = *state;
	int top = make_two_layers(f->db);

	/* 100 lookups passing through the level-0 table use up its allowed
	 * seeks (the floor for a small table); a few more to be past it. */
	for (int round = 0; round < 2; round++)
		for (int i = 1; i < 2000; i += 10)
			expect_num(f->db, i, 1);
	assert_true(wait_seek_compaction(f->db));
	lsm_stats s = stats(f->db);
	assert_int_equal(s.files_at_level[top], 0);
	assert_true(s.compactions >= 1);

	/* Nothing lost, newest versions win. */
	for (int i = 0; i < 2000; i++)
		expect_num(f->db, i, i % 10 == 0 ? 2 : 1);
}

static void test_compaction_seek_found_first_not_charged(void **state)
{
	struct fixture *f = *state;
	int top = make_two_layers(f->db);

	/* Every lookup finds its key in the level-0 table: no second file is
	 * consulted, so no seek is charged however many there are. */
	for (int round = 0; round < 5; round++)
		for (int i = 0; i < 2000; i += 10)
			expect_num(f->db, i, 2);
	assert_int_equal(lsm_wait_idle(f->db), 0);
	lsm_stats s = stats(f->db);
	assert_int_equal(s.seek_compactions, 0);
	assert_int_equal(s.files_at_level[top], 1);
}

/* Scans charge too: an iterator samples what it reads (on average once per
 * MiB) and charges the upper table at each sample, so scanning the store
 * over and over eventually compacts it down, as lookups do. */
static void test_compaction_seek_by_scans(void **state)
{
	struct fixture *f = *state;
	int top = make_two_layers(f->db);
	int scans = 0, entries = 0;

	/* ~40 KB per scan: 100 samples take about 2,500 scans. */
	while (stats(f->db).seek_compactions == 0 && scans < 20000) {
		lsm_iter *it;
		assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
			entries++;
		assert_int_equal(lsm_iter_status(it), 0);
		lsm_iter_free(it);
		scans++;
	}
	assert_int_equal(entries, scans * 2000);
	assert_true(wait_seek_compaction(f->db));
	assert_int_equal(stats(f->db).files_at_level[top], 0);
	for (int i = 0; i < 2000; i++)
		expect_num(f->db, i, i % 10 == 0 ? 2 : 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compaction_seek_triggered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_seek_found_first_not_charged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_seek_by_scans, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
