/*
 * test_blob.c - value separation through the public API: large values go
 * to the value log and come back through gets, iterators and snapshots,
 * across flush, compaction and reopen; keys-only iteration never reads the
 * log; damage in the log is reported naming the segment; and after power
 * cuts no key ever shows a value that did not survive.  Likewise with
 * wal_inline_max, where small writes keep their values in the WAL until
 * the flush moves them.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "env_test.h"
#include "lsm.h"
#include "testutil.h"

#define BIG 5000            /* above the default 4096 threshold */

/* Value of key i at version ver: size varies around the threshold. */
static size_t make_value(char *buf, int i, int ver)
{
	size_t n = (size_t)(i % 3 == 0 ? 100 : BIG + (i * 37) % 3000);
	for (size_t k = 0; k < n; k++)
		buf[k] = (char)('a' + (i * 7 + ver * 13 + (int)k) % 26);
	return n;
}

static void key_of(char *k, int i)
{
	sprintf(k, "key%06d", i);
}

static void check_value(lsm_db *db, const lsm_read_options *ro, int i, int ver)
{
	char k[16], want[9000];
	void *v;
	size_t vl, wl = make_value(want, i, ver);

	key_of(k, i);
	int r = lsm_get(db, ro, k, strlen(k), &v, &vl);
	if (r != 0)
		fail_msg("get %s: %d (%s)", k, r, lsm_last_error());
	assert_int_equal(vl, wl);
	assert_memory_equal(v, want, wl);
	free(v);
}

static void put_all(lsm_db *db, int n, int ver, int sync)
{
	lsm_write_options wo = { .sync = sync };
	char k[16], v[9000];
	for (int i = 0; i < n; i++) {
		key_of(k, i);
		size_t vl = make_value(v, i, ver);
		assert_int_equal(lsm_put(db, &wo, k, strlen(k), v, vl), 0);
	}
}

static int count_vlog(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".vlog") != NULL;
	closedir(d);
	return n;
}

/* Puts, snapshots, flush, compaction, iteration and reopen; with
 * wal_inline_max the values start in the WAL and the flushes move them. */
static void round_trip(size_t wal_inline_max)
{
	char *dir = test_tmpdir("blob");
	lsm_options o;
	lsm_db *db;
	const lsm_snapshot *snap;
	lsm_read_options ro = { .fill_cache = 1 };

	lsm_options_init(&o);
	o.wal_inline_max = wal_inline_max;
	o.write_buffer_size = 256 << 10;
	o.target_file_size = 64 << 10;
	o.max_bytes_for_level_base = 256 << 10;
	o.vlog_segment_size = 1 << 20;
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	put_all(db, 600, 1, 0);
	assert_true(count_vlog(dir) >= 1);
	assert_int_equal(lsm_snapshot_new(db, &snap), 0);
	put_all(db, 300, 2, 0);
	for (int i = 0; i < 600; i++)
		check_value(db, NULL, i, i < 300 ? 2 : 1);
	ro.snapshot = snap;
	for (int i = 0; i < 600; i += 7)
		check_value(db, &ro, i, 1);
	assert_int_equal(lsm_flush(db), 0);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < 600; i += 5)
		check_value(db, &ro, i, 1);
	lsm_snapshot_release(db, snap);

	/* Iterator values resolve, forwards and backwards. */
	lsm_iter *it;
	int n = 0;
	assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
	for (lsm_iter_seek_to_last(it); lsm_iter_valid(it); lsm_iter_prev(it), n++) {
		const void *v;
		size_t vl, kl;
		char want[9000];
		int i = atoi((const char *)lsm_iter_key(it, &kl) + 3);
		assert_int_equal(lsm_iter_value(it, &v, &vl), 0);
		size_t wl = make_value(want, i, i < 300 ? 2 : 1);
		assert_int_equal(vl, wl);
		assert_memory_equal(v, want, wl);
	}
	assert_int_equal(lsm_iter_status(it), 0);
	assert_int_equal(n, 600);
	lsm_iter_free(it);
	assert_int_equal(lsm_close(db), 0);

	assert_int_equal(lsm_open(dir, &o, &db), 0);
	for (int i = 0; i < 600; i++)
		check_value(db, NULL, i, i < 300 ? 2 : 1);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

static void test_blob_round_trip(void **state)
{
	(void)state;
	round_trip(0);
}

static void test_blob_round_trip_wal_inline(void **state)
{
	(void)state;
	round_trip(64 << 10);
}

static uint64_t vlog_written(lsm_db *db)
{
	lsm_stats st;
	assert_int_equal(lsm_get_stats(db, &st), 0);
	return st.vlog_bytes_written;
}

/* With wal_inline_max, a small write's large value stays in the WAL and
 * the memtable, a big batch's go to the value log as written, and the
 * values a WAL kept are moved by the flush, or by the replay of a store
 * closed before its memtable was flushed. */
static void test_blob_wal_inline(void **state)
{
	(void)state;
	char *dir = test_tmpdir("blob");
	lsm_options o;
	lsm_batch *b;
	lsm_db *db;
	char k[16], v[9000];

	lsm_options_init(&o);
	o.wal_inline_max = 64 << 10;
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	put_all(db, 30, 1, 1);
	assert_int_equal(vlog_written(db), 0);
	for (int i = 0; i < 30; i++)
		check_value(db, NULL, i, 1);
	assert_int_equal(lsm_flush(db), 0);
	uint64_t flushed = vlog_written(db);
	assert_true(flushed > 20 * BIG);
	for (int i = 0; i < 30; i++)
		check_value(db, NULL, i, 1);

	/* 30 values of 5000 bytes and more in one batch: over 64 KiB. */
	assert_int_equal(lsm_batch_new(&b), 0);
	for (int i = 0; i < 30; i++) {
		key_of(k, i);
		size_t vl = make_value(v, i, 2);
		assert_int_equal(lsm_batch_put(b, k, strlen(k), v, vl), 0);
	}
	assert_int_equal(lsm_write(db, NULL, b), 0);
	lsm_batch_free(b);
	assert_true(vlog_written(db) > flushed + 20 * BIG);
	for (int i = 0; i < 30; i++)
		check_value(db, NULL, i, 2);

	put_all(db, 10, 3, 0);
	assert_int_equal(lsm_close(db), 0);     /* round 3 stays in the WAL */
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	for (int i = 0; i < 30; i++)
		check_value(db, NULL, i, i < 10 ? 3 : 2);
	assert_int_equal(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	assert_true(lsm_gc(db) >= 0);
	assert_int_equal(lsm_close(db), 0);
	/* And the moved values are the engine's like any other. */
	o.wal_inline_max = 0;
	assert_int_equal(lsm_open(dir, &o, &db), 0);
	for (int i = 0; i < 30; i++)
		check_value(db, NULL, i, i < 10 ? 3 : 2);
	assert_int_equal(lsm_close(db), 0);
	test_rmtree(dir);
	free(dir);
}

/* Keys-only iteration does not read the value log: it works with every
 * segment gone, and asking for a value names the missing segment. */
static void test_blob_keys_only(void **state)
{
	(void)state;
	char *dir = test_tmpdir("blob");
	char path[4200];
	lsm_db *db;
	DIR *d;
	struct dirent *e;

	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	put_all(db, 200, 1, 1);
	assert_int_equal(lsm_flush(db), 0);
	assert_int_equal(lsm_close(db), 0);
	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".vlog")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			assert_int_equal(unlink(path), 0);
		}
	closedir(d);

	lsm_iter *it;
	int n = 0;
	assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
		n++;
	assert_int_equal(lsm_iter_status(it), 0);
	assert_int_equal(n, 200);
	lsm_iter_seek(it, "key000001", 9);
	assert_true(lsm_iter_valid(it));
	const void *v;
	size_t vl;
	errno = 0;
	assert_true(lsm_iter_value(it, &v, &vl) < 0);
	assert_non_null(strstr(lsm_last_error(), ".vlog"));
	lsm_iter_free(it);
	/* Small values stay inline and still read fine. */
	check_value(db, NULL, 0, 1);
	lsm_close(db);
	test_rmtree(dir);
	free(dir);
}

/* A flipped byte in a value-log record: that key reports -EBADMSG naming
 * the segment; the others read fine. */
static void corrupt_record(bool flushed)
{
	char *dir = test_tmpdir("blob");
	char path[4200] = "";
	lsm_db *db;
	DIR *d;
	struct dirent *e;

	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	put_all(db, 50, 1, 1);
	if (flushed)
		assert_int_equal(lsm_flush(db), 0);
	assert_int_equal(lsm_close(db), 0);
	d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".vlog"))
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
	closedir(d);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	/* Key 1 is the first big value: its record starts after the segment
	 * header; a byte 200 in is inside its value. */
	fseek(f, 300, SEEK_SET);
	int c = fgetc(f);
	fseek(f, 300, SEEK_SET);
	fputc(c ^ 0x40, f);
	fclose(f);

	if (!flushed) {
		/* The WAL still points at it: replay refuses rather than drop an
		 * acknowledged write as if a crash had lost it. */
		assert_int_equal(lsm_open(dir, NULL, &db), -EBADMSG);
		assert_non_null(strstr(lsm_last_error(), ".vlog"));
		test_rmtree(dir);
		free(dir);
		return;
	}
	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	void *v;
	size_t vl;
	errno = 0;
	int r = lsm_get(db, NULL, "key000001", 9, &v, &vl);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(lsm_last_error(), ".vlog"));
	for (int i = 2; i < 50; i++)
		check_value(db, NULL, i, 1);
	lsm_close(db);
	test_rmtree(dir);
	free(dir);
}

static void test_blob_corrupt_record(void **state)
{
	(void)state;
	corrupt_record(true);
}

static void test_blob_corrupt_record_in_wal(void **state)
{
	(void)state;
	corrupt_record(false);
}

/* Power cuts at random sync points: reopening works, every synced write is
 * there, and no key shows anything but one of its written values. */
static void test_blob_power_cuts(void **state)
{
	(void)state;
	uint64_t seed = test_seed("test_blob_power_cuts"), rng = seed;
	int cycles = test_long() ? 200 : 25;

	for (int cyc = 0; cyc < cycles; cyc++) {
		lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
		lsm_options o;
		lsm_db *db;
		lsm_write_options wo = { .sync = 1 };
		char k[16], v[9000];
		int synced_ver = 0;

		lsm_options_init(&o);
		o.env = fe;
		o.write_buffer_size = 64 << 10;
		o.vlog_segment_size = 64 << 10;
		/* Every other cycle the values start in the WAL (and the flushes
		 * and the replay move them). */
		o.wal_inline_max = cyc % 2 ? 64 << 10 : 0;
		assert_int_equal(lsm_open("/db", &o, &db), 0);
		env_fault_power_cut_after_sync(fe, 1 + test_rand(&rng) % 40);
		for (int ver = 1; ver <= 20; ver++) {
			int ok = 1;
			for (int i = 0; i < 10 && ok; i++) {
				key_of(k, i);
				size_t vl = make_value(v, i, ver);
				wo.sync = i == 9;
				ok = lsm_put(db, &wo, k, strlen(k), v, vl) == 0;
			}
			if (!ok)
				break;
			synced_ver = ver;
		}
		lsm_close(db);
		assert_int_equal(env_fault_crash(fe), 0);
		int r = lsm_open("/db", &o, &db);
		if (r != 0)
			fail_msg("seed=%llu cycle %d: reopen %d (%s)", (unsigned long long)seed, cyc, r,
			         lsm_last_error());
		for (int i = 0; i < 10; i++) {
			void *got;
			size_t gl;
			key_of(k, i);
			r = lsm_get(db, NULL, k, strlen(k), &got, &gl);
			if (synced_ver == 0 && r == -ENOENT)
				continue;
			if (r != 0)
				fail_msg("seed=%llu cycle %d: key %d: %d (%s)", (unsigned long long)seed, cyc, i, r,
				         lsm_last_error());
			int match = 0;
			for (int ver = synced_ver; ver <= 20 && !match; ver++) {
				if (ver == 0)
					continue;
				size_t wl = make_value(v, i, ver);
				match = wl == gl && memcmp(v, got, gl) == 0;
			}
			if (!match)
				fail_msg("seed=%llu cycle %d: key %d holds no version >= synced %d",
				         (unsigned long long)seed, cyc, i, synced_ver);
			free(got);
		}
		lsm_close(db);
		env_fault_free(fe);
		env_mem_free(mem);
	}
}

/* A value log that lost its tail (as after a power cut that kept the WAL's
 * later writes but not the log's): replay stops at the first group whose
 * values are gone, keeps everything before it, and lsm_stats says where. */
static void test_blob_replay_cut_reported(void **state)
{
	(void)state;
	char *dir = test_tmpdir("blob");
	char path[4200] = "";
	lsm_db *db;
	lsm_stats st;
	struct dirent *e;
	struct stat sb;

	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	put_all(db, 50, 1, 0);
	assert_int_equal(lsm_close(db), 0);     /* the memtable stays in the WAL */
	DIR *d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".vlog"))
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
	closedir(d);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size / 2), 0);

	assert_int_equal(lsm_open(dir, NULL, &db), 0);
	assert_int_equal(lsm_get_stats(db, &st), 0);
	assert_true(st.recovery_cut_wal > 0);
	assert_true(st.recovery_cut_offset > 0);
	assert_int_equal(st.recovery_torn_bytes, 0);
	/* A prefix survives: every key before the first missing one. */
	int first_missing = -1;
	for (int i = 0; i < 50; i++) {
		char k[16];
		void *v;
		size_t vl;
		key_of(k, i);
		int r = lsm_get(db, NULL, k, strlen(k), &v, &vl);
		if (r == -ENOENT) {
			if (first_missing < 0)
				first_missing = i;
			continue;
		}
		assert_int_equal(r, 0);
		free(v);
		assert_true(first_missing < 0);
		check_value(db, NULL, i, 1);
	}
	assert_true(first_missing > 0 && first_missing < 50);
	char *text;
	assert_int_equal(lsm_property(db, "lsm.stats", &text), 0);
	assert_non_null(strstr(text, "stopped at WAL"));
	free(text);
	lsm_close(db);
	test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blob_round_trip),
		cmocka_unit_test(test_blob_round_trip_wal_inline),
		cmocka_unit_test(test_blob_wal_inline),
		cmocka_unit_test(test_blob_keys_only),
		cmocka_unit_test(test_blob_corrupt_record),
		cmocka_unit_test(test_blob_corrupt_record_in_wal),
		cmocka_unit_test(test_blob_power_cuts),
		cmocka_unit_test(test_blob_replay_cut_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
