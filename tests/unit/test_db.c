/*
 * test_db.c - engine-level unit tests of the public API (lsm.h) on the POSIX
 * env in a temporary directory: open flags and locking, put/get/delete,
 * batches, snapshots, iterators over memtable + level-0 + deeper levels,
 * reopen, close with live handles, destroy, properties and statistics, and
 * the deletion of table files that no version references any more.  Options
 * are small (64 KiB memtable and tables) so flushes and compactions happen.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lsm.h"
#include "testutil.h"

struct fixture {
	char *tmp;          /* the tmpdir (removed at teardown) */
	char dir[4096];     /* the store: tmp/store, created by lsm_open */
	lsm_options opt;
	lsm_db *db;         /* closed at teardown if still open */
};

static void small_options(lsm_options *o)
{
	lsm_options_init(o);
	o->write_buffer_size = 64 * 1024;
	o->target_file_size = 64 * 1024;
	o->max_bytes_for_level_base = 256 * 1024;
	o->block_cache_size = 256 * 1024;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->tmp = test_tmpdir("test_db");
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->tmp);
	small_options(&f->opt);
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

static void db_open(struct fixture *f)
{
	int r = lsm_open(f->dir, &f->opt, &f->db);
	if (r < 0)
		fail_msg("lsm_open(%s): %d %s", f->dir, r, lsm_last_error());
}

static void db_close(struct fixture *f)
{
	assert_int_equal(lsm_close(f->db), 0);
	f->db = NULL;
}

static void db_reopen(struct fixture *f)
{
	db_close(f);
	db_open(f);
}

static void put_str(lsm_db *db, const char *k, const char *v)
{
	assert_int_equal(lsm_put(db, NULL, k, strlen(k), v, strlen(v)), 0);
}

/* Asserts that key reads as want at ro (want NULL: absent). */
static void expect_get(lsm_db *db, const lsm_read_options *ro, const char *k, const char *want)
{
	void *v = (void *)0x1;
	size_t n = 12345;
	int r = lsm_get(db, ro, k, strlen(k), &v, &n);
	if (!want) {
		if (r != -ENOENT)
			fail_msg("get %s: want -ENOENT, got %d", k, r);
		assert_ptr_equal(v, (void *)0x1);   /* ret_* untouched on failure */
		return;
	}
	if (r != 0)
		fail_msg("get %s: want \"%s\", got %d %s", k, want, r, lsm_last_error());
	if (n != strlen(want) || (n && memcmp(v, want, n) != 0))
		fail_msg("get %s: want \"%s\", got \"%.*s\"", k, want, (int)n, (char *)v);
	free(v);
}

/* Deterministic keys and values for the bigger tests. */
static int key_of(char *buf, size_t n, int i)
{
	return snprintf(buf, n, "key%06d", i);
}

static size_t val_of(char *buf, size_t n, int i, int ver)
{
	int len = snprintf(buf, n, "v%d.%d:", i, ver);
	size_t want = 40 + (size_t)((i * 7 + ver * 13) % 120);
	while ((size_t)len < want && (size_t)len < n - 1) {
		buf[len] = (char)('a' + (i + ver + len) % 26);
		len++;
	}
	buf[len] = '\0';
	return (size_t)len;
}

static uint64_t sum_files(lsm_db *db)
{
	lsm_stats st;
	uint64_t s = 0;
	assert_int_equal(lsm_get_stats(db, &st), 0);
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		s += st.files_at_level[l];
	return s;
}

/* Counts the files in dir ending in suffix; their names go to names (if
 * not NULL), space-separated. */
static int count_suffix(const char *dir, const char *suffix, char *names, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	size_t sl = strlen(suffix);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
			continue;
		n++;
		if (names && strlen(names) + l + 2 < size)
			strcat(strcat(names, " "), e->d_name);
	}
	closedir(d);
	return n;
}

/* Every .sst in the directory belongs to the current version, and back. */
static void expect_no_orphans(struct fixture *f)
{
	static char names[2048], msg[4096];
	char *tables = NULL;
	names[0] = '\0';
	int on_disk = count_suffix(f->dir, ".sst", names, sizeof(names));
	if ((uint64_t)on_disk == sum_files(f->db))
		return;
	lsm_property(f->db, "lsm.sstables", &tables);
	snprintf(msg, sizeof(msg), "%d .sst files on disk (%s), the current version has:\n%s",
	         on_disk, names, tables ? tables : "?");
	free(tables);
	fail_msg("%s", msg);
}

static long prop_long(lsm_db *db, const char *name)
{
	char *text = NULL;
	int r = lsm_property(db, name, &text);
	if (r != 0)
		fail_msg("property %s: %d", name, r);
	assert_non_null(text);
	char *end;
	long v = strtol(text, &end, 10);
	if (end == text)
		fail_msg("property %s: not a number: \"%s\"", name, text);
	free(text);
	return v;
}

static void test_db_open_flags(void **state)
{
	struct fixture *f = *state;
	lsm_db *db = (lsm_db *)0x1;

	f->opt.create_if_missing = 0;
	assert_int_equal(lsm_open(f->dir, &f->opt, &db), -ENOENT);
	assert_ptr_equal(db, (lsm_db *)0x1);
	f->opt.create_if_missing = 1;
	db_open(f);
	put_str(f->db, "a", "1");
	db_close(f);

	f->opt.error_if_exists = 1;
	assert_int_equal(lsm_open(f->dir, &f->opt, &db), -EEXIST);
	assert_ptr_equal(db, (lsm_db *)0x1);
	f->opt.error_if_exists = 0;
	f->opt.create_if_missing = 0;
	db_open(f);
	expect_get(f->db, NULL, "a", "1");
	/* NULL options are the defaults. */
	db_close(f);
	assert_int_equal(lsm_open(f->dir, NULL, &f->db), 0);
	expect_get(f->db, NULL, "a", "1");
	db_close(f);
}

static void test_db_open_twice_busy(void **state)
{
	struct fixture *f = *state;
	lsm_db *db2 = NULL;

	db_open(f);
	assert_int_equal(lsm_open(f->dir, &f->opt, &db2), -EBUSY);
	assert_null(db2);
	put_str(f->db, "k", "v");
	db_close(f);
	/* The lock is released at close. */
	assert_int_equal(lsm_open(f->dir, &f->opt, &db2), 0);
	expect_get(db2, NULL, "k", "v");
	assert_int_equal(lsm_close(db2), 0);
	assert_int_equal(lsm_close(NULL), 0);
}

static void test_db_put_get_delete(void **state)
{
	struct fixture *f = *state;

	db_open(f);
	expect_get(f->db, NULL, "x", NULL);
	put_str(f->db, "x", "one");
	put_str(f->db, "y", "why");
	expect_get(f->db, NULL, "x", "one");
	put_str(f->db, "x", "two");
	expect_get(f->db, NULL, "x", "two");
	assert_int_equal(lsm_delete(f->db, NULL, "x", 1), 0);
	expect_get(f->db, NULL, "x", NULL);
	assert_int_equal(lsm_delete(f->db, NULL, "nothere", 7), 0);
	expect_get(f->db, NULL, "y", "why");
	/* A key that is a prefix of another is a different key. */
	put_str(f->db, "yy", "double");
	expect_get(f->db, NULL, "y", "why");
	expect_get(f->db, NULL, "yy", "double");
	/* The same through a flushed table. */
	assert_int_equal(lsm_flush(f->db), 0);
	expect_get(f->db, NULL, "x", NULL);
	expect_get(f->db, NULL, "y", "why");
	expect_get(f->db, NULL, "yy", "double");
	expect_get(f->db, NULL, "y0", NULL);
	put_str(f->db, "x", "three");
	expect_get(f->db, NULL, "x", "three");
}

static void test_db_key_too_large(void **state)
{
	struct fixture *f = *state;
	size_t big = LSM_MAX_KEY + 1;
	char *k = malloc(big);
	lsm_batch *b;
	int r;

	assert_non_null(k);
	memset(k, 'q', big);
	db_open(f);
	assert_int_equal(lsm_put(f->db, NULL, k, big, "v", 1), -EINVAL);
	assert_int_equal(lsm_delete(f->db, NULL, k, big), -EINVAL);
	assert_int_equal(lsm_batch_new(&b), 0);
	r = lsm_batch_put(b, k, big, "v", 1);
	if (r == 0)
		assert_int_equal(lsm_write(f->db, NULL, b), -EINVAL);
	else
		assert_int_equal(r, -EINVAL);
	lsm_batch_free(b);
	/* Exactly the limit is fine. */
	assert_int_equal(lsm_put(f->db, NULL, k, LSM_MAX_KEY, "v", 1), 0);
	void *v;
	size_t n;
	assert_int_equal(lsm_get(f->db, NULL, k, LSM_MAX_KEY, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	/* Nothing of the rejected writes is visible. */
	assert_int_equal(lsm_get(f->db, NULL, k, LSM_MAX_KEY - 1, &v, &n), -ENOENT);
	free(k);
}

static void test_db_batch(void **state)
{
	struct fixture *f = *state;
	lsm_batch *b;
	const lsm_snapshot *snap;
	lsm_read_options ro;

	db_open(f);
	put_str(f->db, "c", "old");
	put_str(f->db, "d", "keep");
	assert_int_equal(lsm_snapshot_new(f->db, &snap), 0);
	assert_int_equal(lsm_batch_new(&b), 0);
	assert_int_equal(lsm_batch_count(b), 0);
	assert_int_equal(lsm_write(f->db, NULL, b), 0);    /* empty batch */
	assert_int_equal(lsm_batch_put(b, "a", 1, "1", 1), 0);
	assert_int_equal(lsm_batch_delete(b, "a", 1), 0);  /* in order: a ends deleted */
	assert_int_equal(lsm_batch_put(b, "b", 1, "1", 1), 0);
	assert_int_equal(lsm_batch_put(b, "b", 1, "2", 1), 0);
	assert_int_equal(lsm_batch_delete(b, "c", 1), 0);
	assert_int_equal(lsm_batch_put(b, "c", 1, "new", 3), 0);
	assert_int_equal(lsm_batch_delete(b, "d", 1), 0);
	assert_int_equal(lsm_batch_count(b), 7);
	assert_int_equal(lsm_write(f->db, NULL, b), 0);
	assert_int_equal(lsm_batch_count(b), 7);            /* unchanged */
	expect_get(f->db, NULL, "a", NULL);
	expect_get(f->db, NULL, "b", "2");
	expect_get(f->db, NULL, "c", "new");
	expect_get(f->db, NULL, "d", NULL);
	lsm_read_options_init(&ro);
	ro.snapshot = snap;
	expect_get(f->db, &ro, "b", NULL);
	expect_get(f->db, &ro, "c", "old");
	expect_get(f->db, &ro, "d", "keep");
	lsm_snapshot_release(f->db, snap);

	/* Reuse after clear; a synced batch survives reopen. */
	lsm_batch_clear(b);
	assert_int_equal(lsm_batch_count(b), 0);
	assert_int_equal(lsm_batch_put(b, "e", 1, "5", 1), 0);
	assert_int_equal(lsm_batch_delete(b, "b", 1), 0);
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = 1;
	assert_int_equal(lsm_write(f->db, &wo, b), 0);
	lsm_batch_free(b);
	lsm_batch_free(NULL);
	db_reopen(f);
	expect_get(f->db, NULL, "a", NULL);
	expect_get(f->db, NULL, "b", NULL);
	expect_get(f->db, NULL, "c", "new");
	expect_get(f->db, NULL, "e", "5");
}

static void test_db_snapshot_reads(void **state)
{
	struct fixture *f = *state;
	const lsm_snapshot *s1, *s2;
	lsm_read_options r1, r2;

	db_open(f);
	put_str(f->db, "k1", "v1");
	put_str(f->db, "k2", "v2");
	assert_int_equal(lsm_flush(f->db), 0);
	assert_int_equal(lsm_snapshot_new(f->db, &s1), 0);
	put_str(f->db, "k1", "v1b");
	assert_int_equal(lsm_delete(f->db, NULL, "k2", 2), 0);
	put_str(f->db, "k3", "v3");
	assert_int_equal(lsm_snapshot_new(f->db, &s2), 0);
	put_str(f->db, "k3", "v3b");
	lsm_read_options_init(&r1);
	lsm_read_options_init(&r2);
	r1.snapshot = s1;
	r2.snapshot = s2;
	/* Memtable over a table; then two overlapping tables; then their
	 * merge by compaction, twice: the versions a live snapshot needs must
	 * survive every one of them. */
	for (int round = 0; round < 4; round++) {
		expect_get(f->db, &r1, "k1", "v1");
		expect_get(f->db, &r1, "k2", "v2");
		expect_get(f->db, &r1, "k3", NULL);
		expect_get(f->db, &r2, "k1", "v1b");
		expect_get(f->db, &r2, "k2", NULL);
		expect_get(f->db, &r2, "k3", "v3");
		expect_get(f->db, NULL, "k2", NULL);
		expect_get(f->db, NULL, "k3", "v3b");
		if (round == 0)
			assert_int_equal(lsm_flush(f->db), 0);
		else
			assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
		if (round == 1) {
			put_str(f->db, "k15", "new");   /* inside k1..k3: the next round merges */
			assert_int_equal(lsm_flush(f->db), 0);
		}
	}
	lsm_snapshot_release(f->db, s1);
	lsm_snapshot_release(f->db, s2);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	expect_get(f->db, NULL, "k1", "v1b");
	expect_get(f->db, NULL, "k2", NULL);
	expect_get(f->db, NULL, "k3", "v3b");
}

static void expect_iter_at(lsm_iter *it, const char *k, const char *v)
{
	size_t kl, vl;
	const void *key, *val;
	if (!k) {
		assert_false(lsm_iter_valid(it));
		assert_int_equal(lsm_iter_status(it), 0);
		return;
	}
	if (!lsm_iter_valid(it))
		fail_msg("iterator invalid, want %s (status %d)", k, lsm_iter_status(it));
	key = lsm_iter_key(it, &kl);
	if (kl != strlen(k) || (kl && memcmp(key, k, kl) != 0))
		fail_msg("iterator at \"%.*s\", want \"%s\"", (int)kl, (const char *)key, k);
	assert_int_equal(lsm_iter_value(it, &val, &vl), 0);
	if (vl != strlen(v) || (vl && memcmp(val, v, vl) != 0))
		fail_msg("value at %s: \"%.*s\", want \"%s\"", k, (int)vl, (const char *)val, v);
}

/* Checks the entries from the current position moving in direction dir
 * (+1 next, -1 prev): key/value pairs given as varargs ending in NULL, then
 * the end of the iteration. */
static void expect_walk(lsm_iter *it, int dir, ...)
{
	va_list ap;
	const char *k;

	va_start(ap, dir);
	while ((k = va_arg(ap, const char *)) != NULL) {
		expect_iter_at(it, k, va_arg(ap, const char *));
		if (dir > 0)
			lsm_iter_next(it);
		else
			lsm_iter_prev(it);
	}
	va_end(ap);
	expect_iter_at(it, NULL, NULL);
}

static void test_db_empty_key_and_value(void **state)
{
	struct fixture *f = *state;
	lsm_iter *it;

	db_open(f);
	assert_int_equal(lsm_put(f->db, NULL, NULL, 0, "ev", 2), 0);
	assert_int_equal(lsm_put(f->db, NULL, "k", 1, NULL, 0), 0);
	for (int round = 0; round < 3; round++) {
		expect_get(f->db, NULL, "", "ev");
		expect_get(f->db, NULL, "k", "");
		assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
		lsm_iter_seek_to_first(it);
		expect_walk(it, 1, "", "ev", "k", "", NULL);
		lsm_iter_seek_to_last(it);
		expect_walk(it, -1, "k", "", "", "ev", NULL);
		lsm_iter_free(it);
		if (round == 0)
			db_reopen(f);   /* recovered from the log */
		else if (round == 1)
			assert_int_equal(lsm_flush(f->db), 0);
	}
	assert_int_equal(lsm_delete(f->db, NULL, NULL, 0), 0);
	expect_get(f->db, NULL, "", NULL);
	expect_get(f->db, NULL, "k", "");
}

static void test_db_iter_moves(void **state)
{
	struct fixture *f = *state;
	lsm_iter *it;

	db_open(f);
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	assert_false(lsm_iter_valid(it));      /* new: unpositioned */
	lsm_iter_seek_to_first(it);
	expect_iter_at(it, NULL, NULL);        /* empty store */
	lsm_iter_seek_to_last(it);
	expect_iter_at(it, NULL, NULL);
	lsm_iter_free(it);

	put_str(f->db, "b", "B");
	put_str(f->db, "d", "D");
	put_str(f->db, "f", "F");
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	/* Later writes are invisible to it. */
	put_str(f->db, "c", "C");
	put_str(f->db, "d", "D2");
	assert_int_equal(lsm_delete(f->db, NULL, "f", 1), 0);
	lsm_iter_seek_to_first(it);
	expect_walk(it, 1, "b", "B", "d", "D", "f", "F", NULL);
	lsm_iter_seek_to_last(it);
	expect_walk(it, -1, "f", "F", "d", "D", "b", "B", NULL);
	lsm_iter_seek(it, "c", 1);
	expect_iter_at(it, "d", "D");
	lsm_iter_prev(it);                     /* direction changes */
	expect_iter_at(it, "b", "B");
	lsm_iter_next(it);
	expect_walk(it, 1, "d", "D", "f", "F", NULL);
	lsm_iter_seek(it, "d", 1);
	expect_walk(it, -1, "d", "D", "b", "B", NULL);
	lsm_iter_seek(it, "", 0);
	expect_iter_at(it, "b", "B");
	lsm_iter_seek(it, "g", 1);
	expect_iter_at(it, NULL, NULL);
	lsm_iter_free(it);
	lsm_iter_free(NULL);

	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	lsm_iter_seek_to_first(it);
	expect_walk(it, 1, "b", "B", "c", "C", "d", "D2", NULL);
	assert_int_equal(lsm_flush(f->db), 0);  /* the iterator's memtable is now a table */
	lsm_iter_seek_to_last(it);
	expect_walk(it, -1, "d", "D2", "c", "C", "b", "B", NULL);
	lsm_iter_free(it);
}

/* Expects the iterator at key i with version ver. */
static void expect_iter_ver(lsm_iter *it, int i, int ver)
{
	char k[32], v[256];
	key_of(k, sizeof(k), i);
	val_of(v, sizeof(v), i, ver);
	expect_iter_at(it, k, v);
}

/* Compares a full scan both ways, seeks to every 97th key and gets of every
 * 13th with ver[0..n-1] (the version of key i, 0 = absent). */
static void check_keys(lsm_db *db, lsm_iter *given, const int *ver, int n)
{
	lsm_iter *it = given;
	char k[32], v[256];
	int i;

	if (!it)
		assert_int_equal(lsm_iter_new(db, NULL, &it), 0);
	lsm_iter_seek_to_first(it);
	for (i = 0; i < n; i++)
		if (ver[i]) {
			expect_iter_ver(it, i, ver[i]);
			lsm_iter_next(it);
		}
	expect_iter_at(it, NULL, NULL);
	lsm_iter_seek_to_last(it);
	for (i = n - 1; i >= 0; i--)
		if (ver[i]) {
			expect_iter_ver(it, i, ver[i]);
			lsm_iter_prev(it);
		}
	expect_iter_at(it, NULL, NULL);
	for (int s = 0; s < n; s += 97) {
		key_of(k, sizeof(k), s);
		lsm_iter_seek(it, k, strlen(k));
		for (i = s; i < n && !ver[i]; i++)
			;
		if (i < n)
			expect_iter_ver(it, i, ver[i]);
		else
			expect_iter_at(it, NULL, NULL);
	}
	if (!given)
		lsm_iter_free(it);
	for (i = 0; i < n && given == NULL; i += 13) {
		key_of(k, sizeof(k), i);
		val_of(v, sizeof(v), i, ver[i]);
		expect_get(db, NULL, k, ver[i] ? v : NULL);
	}
}

/* Writes version v of key i (v == 0: deletes it) and records it in ver
 * (if not NULL). */
static void set_ver(lsm_db *db, const lsm_write_options *wo, int *ver, int i, int v)
{
	char k[32], val[256];
	size_t kl = (size_t)key_of(k, sizeof(k), i);
	size_t vl = val_of(val, sizeof(val), i, v);
	if (v)
		assert_int_equal(lsm_put(db, wo, k, kl, val, vl), 0);
	else
		assert_int_equal(lsm_delete(db, wo, k, kl), 0);
	if (ver)
		ver[i] = v;
}

static void test_db_iter_across_levels(void **state)
{
	struct fixture *f = *state;
	enum { N = 3000, ALL = N + 60 };
	int *ver = calloc(ALL, sizeof(int)), *frozen = calloc(ALL, sizeof(int));
	lsm_stats st;
	lsm_iter *old;

	assert_true(ver && frozen);
	db_open(f);
	for (int i = 0; i < N; i++)
		set_ver(f->db, NULL, ver, i, 1);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_get_stats(f->db, &st), 0);
	assert_int_equal(st.files_at_level[0], 0);
	/* Level-0 table over the deeper levels, memtable over both. */
	for (int i = 0; i < N; i++)
		if (i % 3 == 0 || i % 7 == 0)
			set_ver(f->db, NULL, ver, i, i % 7 ? 2 : 0);
	assert_int_equal(lsm_flush(f->db), 0);
	for (int i = 0; i < ALL; i++)
		if (i % 5 == 0 || i % 11 == 0 || i >= N)
			set_ver(f->db, NULL, ver, i, i % 11 ? 3 : 0);
	check_keys(f->db, NULL, ver, ALL);

	/* An iterator opened now keeps its view through later writes and a
	 * compaction (the tables it reads must not vanish under it). */
	memcpy(frozen, ver, ALL * sizeof(int));
	assert_int_equal(lsm_iter_new(f->db, NULL, &old), 0);
	for (int i = 1; i < N; i += 2)
		set_ver(f->db, NULL, ver, i, 0);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	check_keys(f->db, NULL, ver, ALL);
	check_keys(f->db, old, frozen, ALL);
	lsm_iter_free(old);
	db_reopen(f);
	check_keys(f->db, NULL, ver, ALL);
	free(ver);
	free(frozen);
}

static void test_db_reopen_preserves(void **state)
{
	struct fixture *f = *state;
	enum { N = 1500 };
	int ver[N] = { 0 };
	lsm_write_options sync;

	lsm_write_options_init(&sync);
	sync.sync = 1;
	db_open(f);
	for (int i = 0; i < N; i++)
		set_ver(f->db, i % 10 == 0 ? &sync : NULL, ver, i, 1);
	for (int i = 0; i < N; i += 4)
		set_ver(f->db, i % 3 ? NULL : &sync, ver, i, 0);
	db_reopen(f);
	check_keys(f->db, NULL, ver, N);
	for (int i = 0; i < N; i += 3)
		set_ver(f->db, NULL, ver, i, 2);
	db_reopen(f);
	check_keys(f->db, NULL, ver, N);
	db_reopen(f);           /* a reopen right after recovery loses nothing */
	check_keys(f->db, NULL, ver, N);
}

static void test_db_close_busy(void **state)
{
	struct fixture *f = *state;
	lsm_iter *it;
	const lsm_snapshot *snap;
	lsm_read_options ro;

	db_open(f);
	put_str(f->db, "a", "1");
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	assert_int_equal(lsm_close(f->db), -EBUSY);
	/* Nothing was freed: the db and the iterator still work. */
	put_str(f->db, "b", "2");
	lsm_iter_seek_to_first(it);
	expect_iter_at(it, "a", "1");
	lsm_iter_next(it);
	expect_iter_at(it, NULL, NULL);
	lsm_iter_free(it);

	assert_int_equal(lsm_snapshot_new(f->db, &snap), 0);
	put_str(f->db, "a", "3");
	assert_int_equal(lsm_close(f->db), -EBUSY);
	lsm_read_options_init(&ro);
	ro.snapshot = snap;
	expect_get(f->db, &ro, "a", "1");
	expect_get(f->db, NULL, "a", "3");
	lsm_snapshot_release(f->db, snap);
	db_reopen(f);
	expect_get(f->db, NULL, "a", "3");
	expect_get(f->db, NULL, "b", "2");
}

static void test_db_destroy(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	lsm_db *db = NULL;

	db_open(f);
	for (int i = 0; i < 500; i++)
		set_ver(f->db, NULL, NULL, i, 1);
	assert_int_equal(lsm_flush(f->db), 0);
	assert_int_equal(lsm_destroy(f->dir, &f->opt), -EBUSY);
	char v1[256];
	val_of(v1, sizeof(v1), 1, 1);
	expect_get(f->db, NULL, "key000001", v1);    /* the refused destroy removed nothing */
	db_close(f);
	assert_int_equal(lsm_destroy(f->dir, &f->opt), 0);
	assert_int_equal(stat(f->dir, &sb), -1);
	assert_int_equal(errno, ENOENT);
	f->opt.create_if_missing = 0;
	assert_int_equal(lsm_open(f->dir, &f->opt, &db), -ENOENT);
	f->opt.create_if_missing = 1;
	db_open(f);
	expect_get(f->db, NULL, "key000001", NULL);
}

static void test_db_stats_and_properties(void **state)
{
	struct fixture *f = *state;
	char *text = (char *)0x1;
	lsm_stats st;

	db_open(f);
	assert_int_equal(lsm_get_stats(f->db, &st), 0);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(st.compactions, 0);
	for (int i = 0; i < 100; i++)
		set_ver(f->db, NULL, NULL, i, 1);
	assert_int_equal(lsm_flush(f->db), 0);
	assert_int_equal(lsm_get_stats(f->db, &st), 0);
	assert_int_equal(st.flushes, 1);
	/* One table, at level 0 or pushed deeper (a flush that overlaps
	 * nothing may go straight to level 2). */
	int flushed_level = -1;
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		if (st.files_at_level[l] == 1 && flushed_level < 0)
			flushed_level = l;
	assert_true(flushed_level >= 0 && flushed_level <= 2);
	assert_int_equal(sum_files(f->db), 1);
	assert_true(st.bytes_at_level[flushed_level] > 0);
	assert_true(st.flush_bytes_written > 0);
	assert_true(st.user_bytes_written >= 100 * 49);
	assert_true(st.wal_bytes_written > 0);
	char pname[64];
	snprintf(pname, sizeof(pname), "lsm.num-files-at-level%d", flushed_level);
	assert_int_equal(prop_long(f->db, pname), 1);
	snprintf(pname, sizeof(pname), "lsm.bytes-at-level%d", flushed_level);
	assert_int_equal(prop_long(f->db, pname), (long)st.bytes_at_level[flushed_level]);
	snprintf(pname, sizeof(pname), "lsm.num-files-at-level%d", flushed_level + 1);
	assert_int_equal(prop_long(f->db, pname), 0);

	assert_int_equal(lsm_property(f->db, "lsm.stats", &text), 0);
	assert_true(text && strlen(text) > 0);
	free(text);
	text = (char *)0x1;
	assert_int_equal(lsm_property(f->db, "lsm.no-such-property", &text), -ENOENT);
	assert_int_equal(lsm_property(f->db, "", &text), -ENOENT);
	assert_true(lsm_property(f->db, "lsm.num-files-at-level99", &text) < 0);
	assert_ptr_equal(text, (char *)0x1);   /* untouched on failure */

	/* A second overlapping table, so the compaction must merge. */
	for (int i = 0; i < 100; i++)
		set_ver(f->db, NULL, NULL, i, 2);
	assert_int_equal(lsm_flush(f->db), 0);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_get_stats(f->db, &st), 0);
	assert_int_equal(st.flushes, 2);
	assert_true(st.compactions >= 1);
	assert_true(st.compaction_bytes_read > 0);
	assert_true(st.compaction_bytes_written > 0);
	assert_int_equal(st.files_at_level[0], 0);
	assert_true(st.write_amplification > 0.0);
	/* The per-level split adds up to the totals; nothing lands in level 0. */
	uint64_t rsum = 0, wsum = 0;
	for (int l = 0; l < LSM_MAX_LEVELS; l++) {
		rsum += st.compaction_read_at_level[l];
		wsum += st.compaction_written_at_level[l];
	}
	assert_true(st.compaction_read_at_level[0] == 0 && st.compaction_written_at_level[0] == 0);
	assert_true(rsum == st.compaction_bytes_read);
	assert_true(wsum == st.compaction_bytes_written);

	/* lsm.sstables: one line per table; the per-level counts agree. */
	long sum = 0, lines = 0;
	for (int l = 0; l < LSM_MAX_LEVELS; l++) {
		char name[64];
		snprintf(name, sizeof(name), "lsm.num-files-at-level%d", l);
		sum += prop_long(f->db, name);
	}
	assert_int_equal(sum, (long)sum_files(f->db));
	assert_int_equal(lsm_property(f->db, "lsm.sstables", &text), 0);
	for (const char *p = text; *p; p++)
		lines += *p == '\n' || p[1] == '\0';
	assert_int_equal(lines, sum);
	free(text);
	assert_int_equal(lsm_property(f->db, "lsm.write-amplification", &text), 0);
	free(text);

	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = 1;
	assert_int_equal(lsm_put(f->db, &wo, "s", 1, "y", 1), 0);
	assert_int_equal(lsm_sync(f->db), 0);
	assert_int_equal(lsm_get_stats(f->db, &st), 0);
	assert_true(st.wal_syncs >= 1);
}

static void test_db_obsolete_files_deleted(void **state)
{
	struct fixture *f = *state;
	lsm_iter *it;
	int round;

	db_open(f);
	for (round = 1; round <= 4; round++) {
		for (int i = 0; i < 2000; i++)
			set_ver(f->db, NULL, NULL, (i * 7919) % 4000, round);
		assert_int_equal(lsm_flush(f->db), 0);
		assert_int_equal(lsm_wait_idle(f->db), 0);
		expect_no_orphans(f);
	}
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_wait_idle(f->db), 0);
	expect_no_orphans(f);
	assert_true(count_suffix(f->dir, ".wal", NULL, 0) <= 2);

	/* Tables an iterator still reads stay on disk until it is freed. */
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	for (int i = 0; i < 4000; i += 2)
		set_ver(f->db, NULL, NULL, i, 9);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_wait_idle(f->db), 0);
	int n = 0;
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		const void *v;
		size_t vl;
		assert_int_equal(lsm_iter_value(it, &v, &vl), 0);
		n++;
	}
	assert_int_equal(lsm_iter_status(it), 0);
	assert_true(n > 0);
	lsm_iter_free(it);
	set_ver(f->db, NULL, NULL, 1, 10);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_wait_idle(f->db), 0);
	expect_no_orphans(f);
	db_reopen(f);
	expect_no_orphans(f);
}

static void test_db_large_value(void **state)
{
	struct fixture *f = *state;
	size_t n = 1 << 20;
	char *big = malloc(n);
	void *v;
	size_t vl;

	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 31 + (i >> 9));
	db_open(f);
	assert_int_equal(lsm_put(f->db, NULL, "big", 3, big, n), 0);
	put_str(f->db, "small", "s");
	for (int round = 0; round < 3; round++) {
		assert_int_equal(lsm_get(f->db, NULL, "big", 3, &v, &vl), 0);
		assert_int_equal(vl, n);
		assert_memory_equal(v, big, n);
		free(v);
		expect_get(f->db, NULL, "small", "s");
		if (round == 0)
			assert_int_equal(lsm_flush(f->db), 0);
		else
			db_reopen(f);
	}
	free(big);
}

/* The one WAL in dir: its name into name and its bytes (malloc'd). */
static uint8_t *read_only_wal(const char *dir, char *name, size_t namesz, size_t *ret_len)
{
	char names[256] = "", path[4400];
	assert_int_equal(count_suffix(dir, ".wal", names, sizeof(names)), 1);
	snprintf(name, namesz, "%s", names + 1);           /* after the leading space */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	uint8_t *buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*ret_len = (size_t)n;
	return buf;
}

/* A WAL whose records, after its own, repeat an earlier batch with the same
 * sequence numbers (a batch logged twice, the fuzzer's find, or an older
 * one logged again after newer ones) is damaged: open fails with -EUCLEAN
 * naming the WAL and the record's offset, and changes nothing; with
 * skip_corrupt_wal the repeat is dropped and every write is there once. */
static void test_db_wal_sequence_repeated(void **state)
{
	struct fixture *f = *state;
	enum { WAL_HEADER = 16, REC_HEADER = 8 };   /* log.c's framing (no syncs: no flags) */

	for (int repeat = 1; repeat >= 0; repeat--) {   /* the last record, then the first */
		char name[256], path[4400], want[384];
		size_t len, off[3], n = 0;

		test_rmtree(f->dir);
		f->opt.skip_corrupt_wal = 0;
		db_open(f);
		put_str(f->db, "a", "1");
		put_str(f->db, "b", "2");
		db_close(f);                /* no flush: both batches stay in the WAL */

		uint8_t *wal = read_only_wal(f->dir, name, sizeof(name), &len);
		for (size_t p = WAL_HEADER; p < len; n++) {
			assert_true(n < 2 && len - p >= REC_HEADER);
			off[n] = p;
			p += REC_HEADER + (wal[p + 4] | wal[p + 5] << 8 | (size_t)wal[p + 6] << 16 |
			                   (size_t)wal[p + 7] << 24);
			assert_true(p <= len);
		}
		assert_int_equal(n, 2);
		size_t rlen = (repeat == 1 ? len : off[1]) - off[repeat];
		uint8_t *bad = malloc(len + rlen);
		assert_non_null(bad);
		memcpy(bad, wal, len);
		memcpy(bad + len, wal + off[repeat], rlen);
		snprintf(path, sizeof(path), "%s/%s", f->dir, name);
		FILE *fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(bad, 1, len + rlen, fp), len + rlen);
		assert_int_equal(fclose(fp), 0);
		free(bad);
		free(wal);

		snprintf(want, sizeof(want), "%s: record at offset %zu: sequence", name, len);
		for (int k = 0; k < 2; k++) {      /* the failed open changed nothing */
			lsm_db *db = NULL;
			int r = lsm_open(f->dir, &f->opt, &db);
			if (r != -EUCLEAN)
				fail_msg("open of a WAL repeating a batch: %d, want -EUCLEAN (%s)", r,
				         lsm_last_error());
			assert_null(db);
			if (!strstr(lsm_last_error(), want))
				fail_msg("message \"%s\" does not say \"%s\"", lsm_last_error(), want);
		}

		f->opt.skip_corrupt_wal = 1;
		db_open(f);
		expect_get(f->db, NULL, "a", "1");
		expect_get(f->db, NULL, "b", "2");
		put_str(f->db, "c", "3");
		lsm_iter *it;
		int keys = 0;
		assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
		for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it))
			keys++;
		assert_int_equal(lsm_iter_status(it), 0);
		lsm_iter_free(it);
		assert_int_equal(keys, 3);
		db_close(f);
		/* What was salvaged is the store now: a normal open works. */
		f->opt.skip_corrupt_wal = 0;
		db_open(f);
		expect_get(f->db, NULL, "a", "1");
		expect_get(f->db, NULL, "b", "2");
		expect_get(f->db, NULL, "c", "3");
		db_close(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_db_open_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_open_twice_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_put_get_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_empty_key_and_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_key_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_snapshot_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_iter_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_iter_across_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_reopen_preserves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_close_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_stats_and_properties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_obsolete_files_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_large_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_wal_sequence_repeated, setup, teardown),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
