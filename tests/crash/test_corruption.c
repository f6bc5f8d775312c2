/*
 * test_corruption.c - damaged store files on the POSIX env in a tmpdir.
 * Each case builds a store with data in SSTables (flushed and compacted), a
 * WAL tail and a MANIFEST with several edits, closes it, damages one file
 * with ordinary file I/O and reopens:
 *   - a flipped byte inside a WAL record before the tail: open fails with
 *     -EBADMSG/-EUCLEAN naming the WAL; skip_corrupt_wal drops just that
 *     record, and the store then opens normally again;
 *   - a WAL cut mid-record (torn tail): open succeeds without that record,
 *     and later writes survive the next reopen;
 *   - a flipped byte in an SSTable data block: reads of that block give
 *     -EBADMSG naming the table, never a wrong value; other blocks still
 *     read, and a compaction over it fails instead of dropping data;
 *   - a damaged footer, index or filter block, a truncated table: errors
 *     naming the table (or, for the filter, right answers);
 *   - a flipped or truncated MANIFEST, a garbage CURRENT, a CURRENT naming
 *     a missing MANIFEST, a missing SSTable: open fails naming the file.
 * Values carry text markers so the test finds their bytes on disk (WAL
 * records and uncompressed tables store values verbatim).
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
#include <unistd.h>

#include "lsm.h"
#include "testutil.h"

#define NSST 1500
#define NWAL 20
#define PATHLEN 4400    /* store dir (4096) + "/" + a file name (255) */

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
	f->tmp = test_tmpdir("test_corruption");
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->tmp);
	lsm_options_init(&f->opt);
	f->opt.write_buffer_size = 64 * 1024;
	f->opt.target_file_size = 64 * 1024;
	f->opt.max_bytes_for_level_base = 256 * 1024;
	f->opt.compression = LSM_COMPRESS_NONE;   /* so values are findable on disk */
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

static size_t sst_value(char *buf, int i)
{
	int n = sprintf(buf, "SSTVALUE-%05d-", i);
	for (int j = n; j < 170; j++)
		buf[j] = (char)('a' + (i + j) % 26);
	return 170;
}

static size_t wal_value(char *buf, int i)
{
	int n = sprintf(buf, "WALVALUE-%03d-", i);
	for (int j = n; j < 120; j++)
		buf[j] = (char)('A' + (i * 3 + j) % 26);
	return 120;
}

static void build_store(struct fixture *f)
{
	char k[16], v[256];
	lsm_write_options sync;
	lsm_write_options_init(&sync);
	sync.sync = 1;
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	for (int i = 0; i < NSST; i++)
		assert_int_equal(lsm_put(f->db, NULL, k, (size_t)sprintf(k, "s%05d", i), v, sst_value(v, i)), 0);
	assert_int_equal(lsm_flush(f->db), 0);
	assert_int_equal(lsm_compact_range(f->db, NULL, 0, NULL, 0), 0);
	for (int i = 0; i < NWAL; i++)
		assert_int_equal(lsm_put(f->db, i == NWAL - 1 ? &sync : NULL, k, (size_t)sprintf(k, "w%03d", i),
		                         v, wal_value(v, i)), 0);
	assert_int_equal(lsm_close(f->db), 0);
	f->db = NULL;
}

static void *read_file(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	buf[n] = '\0';
	*ret_len = (size_t)n;
	return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void flip_byte(const char *path, size_t off)
{
	size_t n;
	unsigned char *b = read_file(path, &n);
	assert_true(off < n);
	b[off] ^= 0x5a;
	write_file(path, b, n);
	free(b);
}

/* Finds the one file with the given suffix holding marker; its name goes to
 * name (basename) and path, the marker's offset is returned. */
static size_t find_marker(struct fixture *f, const char *suffix, const char *marker,
                          char *name, char *path)
{
	DIR *d = opendir(f->dir);
	struct dirent *e;
	int hits = 0;
	size_t off = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), n;
		if (l < strlen(suffix) || strcmp(e->d_name + l - strlen(suffix), suffix) != 0)
			continue;
		char p[PATHLEN];
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		char *buf = read_file(p, &n);
		char *at = memmem(buf, n, marker, strlen(marker));
		if (at) {
			hits++;
			off = (size_t)(at - buf);
			strcpy(name, e->d_name);
			strcpy(path, p);
			assert_null(memmem(at + 1, n - off - 1, marker, strlen(marker)));
		}
		free(buf);
	}
	closedir(d);
	if (hits != 1)
		fail_msg("marker \"%s\" found in %d %s files, want 1", marker, hits, suffix);
	return off;
}

/* Opens and expects failure naming `name`. */
static void expect_open_fails(struct fixture *f, const char *name, int want1, int want2)
{
	lsm_db *db = NULL;
	int r = lsm_open(f->dir, &f->opt, &db);
	if (r >= 0) {
		lsm_close(db);
		fail_msg("open succeeded with %s damaged", name);
	}
	if (want1 && r != want1 && r != want2)
		fail_msg("open with %s damaged: %d, want %d or %d (%s)", name, r, want1, want2, lsm_last_error());
	if (!strstr(lsm_last_error(), name))
		fail_msg("open failed (%d) but the message does not name %s: \"%s\"", r, name, lsm_last_error());
	assert_null(db);
}

/* get of key: want_val (NULL: -ENOENT) */
static void expect_get(lsm_db *db, const char *k, const char *want, size_t wl)
{
	void *v;
	size_t vl;
	int r = lsm_get(db, NULL, k, strlen(k), &v, &vl);
	if (!want) {
		if (r != -ENOENT)
			fail_msg("get %s: %d, want -ENOENT", k, r);
		return;
	}
	if (r != 0)
		fail_msg("get %s: %d %s", k, r, lsm_last_error());
	if (vl != wl || memcmp(v, want, wl) != 0)
		fail_msg("get %s: wrong value", k);
	free(v);
}

static void expect_sst_key(lsm_db *db, int i)
{
	char k[16], v[256];
	sprintf(k, "s%05d", i);
	expect_get(db, k, v, sst_value(v, i));
}

static void expect_wal_key(lsm_db *db, int i, int present)
{
	char k[16], v[256];
	sprintf(k, "w%03d", i);
	size_t vl = wal_value(v, i);
	expect_get(db, k, present ? v : NULL, vl);
}

static void test_corruption_wal_bitflip(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];

	build_store(f);
	size_t off = find_marker(f, ".wal", "WALVALUE-010-", name, path);
	flip_byte(path, off + 40);
	expect_open_fails(f, name, -EBADMSG, -EUCLEAN);
	expect_open_fails(f, name, -EBADMSG, -EUCLEAN);   /* the failed open changed nothing */

	f->opt.skip_corrupt_wal = 1;
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	for (int i = 0; i < NWAL; i++)
		expect_wal_key(f->db, i, i != 10);
	for (int i = 0; i < NSST; i += 37)
		expect_sst_key(f->db, i);
	assert_int_equal(lsm_put(f->db, NULL, "new", 3, "after", 5), 0);
	assert_int_equal(lsm_close(f->db), 0);
	/* What was salvaged is the store now: a normal open works. */
	f->opt.skip_corrupt_wal = 0;
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	expect_wal_key(f->db, 9, 1);
	expect_wal_key(f->db, 10, 0);
	expect_wal_key(f->db, 11, 1);
	expect_get(f->db, "new", "after", 5);
}

static void test_corruption_wal_torn_tail(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];

	build_store(f);
	size_t off = find_marker(f, ".wal", "WALVALUE-019-", name, path);
	assert_int_equal(truncate(path, (off_t)off + 5), 0);
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	for (int i = 0; i < NWAL; i++)
		expect_wal_key(f->db, i, i < NWAL - 1);
	for (int i = 0; i < NSST; i += 41)
		expect_sst_key(f->db, i);
	/* Writes after the torn tail must not land behind garbage. */
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = 1;
	assert_int_equal(lsm_put(f->db, &wo, "later", 5, "value", 5), 0);
	assert_int_equal(lsm_close(f->db), 0);
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	expect_get(f->db, "later", "value", 5);
	expect_wal_key(f->db, NWAL - 2, 1);
	expect_wal_key(f->db, NWAL - 1, 0);
}

static void test_corruption_sst_block(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];
	lsm_iter *it;
	int r, seen = 0;

	build_store(f);
	size_t off = find_marker(f, ".sst", "SSTVALUE-00700-", name, path);
	flip_byte(path, off + 30);
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	void *v = NULL;
	size_t vl;
	r = lsm_get(f->db, NULL, "s00700", 6, &v, &vl);
	if (r != -EBADMSG)
		fail_msg("get of a key in a damaged block: %d, want -EBADMSG", r);
	if (!strstr(lsm_last_error(), name))
		fail_msg("message does not name %s: \"%s\"", name, lsm_last_error());
	for (int i = 0; i < NSST; i++)
		if (i < 600 || i > 800)
			expect_sst_key(f->db, i);
	for (int i = 0; i < NWAL; i++)
		expect_wal_key(f->db, i, 1);

	/* A scan yields correct entries in order, then stops with the error. */
	int err = 0;
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it), seen++) {
		size_t kl;
		const void *val;
		char want_k[16], want_v[256];
		const void *key = lsm_iter_key(it, &kl);
		sprintf(want_k, "s%05d", seen);
		if (kl != 6 || memcmp(key, want_k, 6) != 0)
			fail_msg("scan: entry %d is not %s", seen, want_k);
		if ((err = lsm_iter_value(it, &val, &vl)) < 0)
			break;
		if (vl != sst_value(want_v, seen) || memcmp(val, want_v, vl) != 0)
			fail_msg("scan: wrong value for %s", want_k);
	}
	assert_true(seen <= 700);
	if (!err)
		err = lsm_iter_status(it);
	if (err != -EBADMSG)
		fail_msg("scan over a damaged block ended with %d, want -EBADMSG", err);
	if (!strstr(lsm_last_error(), name))
		fail_msg("message does not name %s: \"%s\"", name, lsm_last_error());
	lsm_iter_free(it);
	/* A seek past the damaged block reads on. */
	assert_int_equal(lsm_iter_new(f->db, NULL, &it), 0);
	lsm_iter_seek(it, "s00850", 6);
	assert_true(lsm_iter_valid(it));
	size_t kl;
	assert_memory_equal(lsm_iter_key(it, &kl), "s00850", 6);
	lsm_iter_free(it);

	/* Compaction must not paper over the damage by dropping the block: it
	 * either fails reading it, or (a trivial move, which reads nothing)
	 * moves the table intact, so the damaged key still reports it. */
	r = lsm_compact_range(f->db, NULL, 0, NULL, 0);
	if (r >= 0) {
		int g = lsm_get(f->db, NULL, "s00700", 6, &v, &vl);
		if (g != -EBADMSG)
			fail_msg("compaction succeeded and the damaged key now gives %d, want -EBADMSG", g);
	}
	lsm_close(f->db);
	f->db = NULL;
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	r = lsm_get(f->db, NULL, "s00700", 6, &v, &vl);
	if (r != -EBADMSG)
		fail_msg("after the failed compaction, get of the damaged key: %d", r);
	expect_sst_key(f->db, 1000);
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Damage to a table's footer, index or filter block, or its length: the
 * table gives an error naming it, at open or at the first read that needs
 * it, never a wrong answer or a key silently missing.  (A damaged filter
 * may also be ignored, so long as every answer stays right.)  Block offsets
 * come from the 48-byte footer of docs/FORMAT.md 7.6: filter offset at 0,
 * index offset at 16. */
static void test_corruption_sst_damaged_tail(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];
	static const char *const what[] = {
		"magic", "footer", "half the file", "empty file", "filter block", "index block",
	};

	for (int kind = 0; kind < 6; kind++) {
		size_t n;
		build_store(f);
		find_marker(f, ".sst", "SSTVALUE-00300-", name, path);
		unsigned char *orig = read_file(path, &n);
		uint64_t filter_off = le64(orig + n - 48), index_off = le64(orig + n - 32);
		free(orig);
		if (!(filter_off > 0 && filter_off < index_off && index_off < n - 48))
			fail_msg("%s: footer (filter at %llu, index at %llu, size %zu) is not the "
			         "layout of docs/FORMAT.md 7.6", name, (unsigned long long)filter_off,
			         (unsigned long long)index_off, n);
		if (kind == 0)
			flip_byte(path, n - 1);
		else if (kind == 1)
			flip_byte(path, n - 40);
		else if (kind == 2)
			assert_int_equal(truncate(path, (off_t)n / 2), 0);
		else if (kind == 3)
			assert_int_equal(truncate(path, 0), 0);
		else if (kind == 4)
			flip_byte(path, (size_t)(filter_off + index_off) / 2);
		else
			flip_byte(path, (size_t)(index_off + n - 48) / 2);
		int r = lsm_open(f->dir, &f->opt, &f->db);
		if (r < 0) {
			if (!strstr(lsm_last_error(), name))
				fail_msg("%s damaged: open failed (%d) without naming %s: \"%s\"", what[kind], r,
				         name, lsm_last_error());
		} else {
			int errors = 0;
			for (int i = 0; i < NSST; i++) {
				char k[16], v[256];
				void *got;
				size_t gl, vl = sst_value(v, i);
				sprintf(k, "s%05d", i);
				r = lsm_get(f->db, NULL, k, 6, &got, &gl);
				if (r == 0) {
					if (gl != vl || memcmp(got, v, vl) != 0)
						fail_msg("%s damaged: %s has a wrong value", what[kind], k);
					free(got);
				} else if (r == -ENOENT) {
					fail_msg("%s damaged: %s silently missing", what[kind], k);
				} else if (errors++ == 0 && !strstr(lsm_last_error(), name)) {
					fail_msg("%s damaged: get %s: %d without naming %s: \"%s\"", what[kind], k, r,
					         name, lsm_last_error());
				}
			}
			if (!errors && kind != 4)
				fail_msg("%s damaged: every key of the table read fine", what[kind]);
			assert_true(errors < NSST);
			lsm_close(f->db);
			f->db = NULL;
		}
		assert_int_equal(lsm_destroy(f->dir, &f->opt), 0);
	}
}

static void current_manifest(struct fixture *f, char *name, char *path)
{
	char cur[PATHLEN];
	size_t n;
	snprintf(cur, sizeof(cur), "%s/CURRENT", f->dir);
	char *c = read_file(cur, &n);
	c[strcspn(c, "\n")] = '\0';
	assert_true(strncmp(c, "MANIFEST-", 9) == 0);
	strcpy(name, c);
	snprintf(path, PATHLEN, "%s/%s", f->dir, c);
	free(c);
}

static void test_corruption_manifest(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];
	size_t n;

	build_store(f);
	current_manifest(f, name, path);
	char *orig = read_file(path, &n);
	/* Log framing (docs/FORMAT.md): 16-byte header, then records of
	 * fixed32 checksum | fixed32 length | payload.  Damage the first
	 * record, which must not be the last one. */
	assert_true(n > 24);
	uint32_t len = (uint32_t)(unsigned char)orig[20] | (uint32_t)(unsigned char)orig[21] << 8 |
	               (uint32_t)(unsigned char)orig[22] << 16 | (uint32_t)(unsigned char)orig[23] << 24;
	if (24 + (size_t)len >= n)
		fail_msg("MANIFEST of %zu bytes: first record of %u bytes is the only one", n, len);
	flip_byte(path, 24 + len / 2);
	expect_open_fails(f, name, -EBADMSG, -EUCLEAN);
	f->opt.skip_corrupt_wal = 1;                 /* applies to the WAL only */
	expect_open_fails(f, name, -EBADMSG, -EUCLEAN);
	f->opt.skip_corrupt_wal = 0;

	write_file(path, orig, 10);                  /* inside the header */
	expect_open_fails(f, name, -EUCLEAN, -EBADMSG);
	write_file(path, orig, 20);                  /* a torn first record: no state at all */
	expect_open_fails(f, name, 0, 0);
	write_file(path, "", 0);
	expect_open_fails(f, name, -EUCLEAN, -EBADMSG);

	write_file(path, orig, n);                   /* the damage was all that failed */
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	expect_sst_key(f->db, 5);
	expect_wal_key(f->db, 5, 1);
	free(orig);
}

static void test_corruption_current(void **state)
{
	struct fixture *f = *state;
	char cur[PATHLEN], mname[256], mpath[PATHLEN];
	size_t n;

	build_store(f);
	current_manifest(f, mname, mpath);
	snprintf(cur, sizeof(cur), "%s/CURRENT", f->dir);
	char *orig = read_file(cur, &n);
	write_file(cur, "garbage\n", 8);
	expect_open_fails(f, "CURRENT", -EUCLEAN, -EUCLEAN);
	write_file(cur, "", 0);
	expect_open_fails(f, "CURRENT", -EUCLEAN, -EUCLEAN);
	write_file(cur, "MANIFEST-999999\n", 16);
	expect_open_fails(f, "MANIFEST-999999", 0, 0);
	/* CURRENT names its manifest, which is gone. */
	write_file(cur, orig, n);
	char *m = read_file(mpath, &n);
	assert_int_equal(unlink(mpath), 0);
	expect_open_fails(f, mname, 0, 0);
	write_file(mpath, m, n);
	free(m);
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	expect_sst_key(f->db, 1);
	free(orig);
}

static void test_corruption_missing_sst(void **state)
{
	struct fixture *f = *state;
	char name[256], path[PATHLEN];
	size_t n;

	build_store(f);
	find_marker(f, ".sst", "SSTVALUE-01000-", name, path);
	char *orig = read_file(path, &n);
	assert_int_equal(unlink(path), 0);
	expect_open_fails(f, name, 0, 0);
	f->opt.skip_corrupt_wal = 1;
	expect_open_fails(f, name, 0, 0);
	f->opt.skip_corrupt_wal = 0;
	write_file(path, orig, n);
	free(orig);
	assert_int_equal(lsm_open(f->dir, &f->opt, &f->db), 0);
	expect_sst_key(f->db, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corruption_wal_bitflip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_wal_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_sst_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_sst_damaged_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_current, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corruption_missing_sst, setup, teardown),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
