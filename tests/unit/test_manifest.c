/*
 * test_manifest.c - unit tests for the version set's persistent side:
 * version-edit encoding (version.c) checked byte for byte against the grammar
 * in docs/FORMAT.md, decoding of malformed edits, lsm_version_apply (level
 * order, shared file metas and their counts), MANIFEST + CURRENT creation,
 * appends and recovery on the POSIX env in a tmpdir, every way recovery can
 * refuse a store (CURRENT missing, malformed or naming nothing; a damaged or
 * incomplete manifest), creation failures through the fault env, and store
 * file names (filename.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db_int.h"
#include "env_test.h"
#include "testutil.h"

struct fixture {
	char *dir;
	lsm_env *env;
	lsm_options opt;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->dir = test_tmpdir("test_manifest");
	fx->env = lsm_env_posix();
	lsm_options_init(&fx->opt);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	test_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

static void expect_msg(const char *want)
{
	if (!strstr(lsm_last_error(), want))
		fail_msg("message \"%s\" lacks \"%s\"", lsm_last_error(), want);
}

/* ---- building files, edits and versions -------------------------------- */

/* One table: level, number, size and its key range (user key @ sequence). */
struct fspec {
	int level;
	uint64_t number, size;
	const char *lo;
	uint64_t lo_seq;
	const char *hi;
	uint64_t hi_seq;
};

static lsm_file_meta *make_meta(const struct fspec *s)
{
	uint8_t lo[256], hi[256];
	size_t lol = lsm_ikey_encode(lo, lsm_slice_make(s->lo, strlen(s->lo)), s->lo_seq, LSM_TYPE_VALUE);
	size_t hil = lsm_ikey_encode(hi, lsm_slice_make(s->hi, strlen(s->hi)), s->hi_seq, LSM_TYPE_DELETE);
	lsm_file_meta *f;
	assert_int_equal(lsm_meta_new(s->number, s->size, lsm_slice_make(lo, lol), lsm_slice_make(hi, hil), &f), 0);
	return f;
}

static void add_files(lsm_version_edit *e, const struct fspec *specs, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(lsm_edit_add_file(e, specs[i].level, make_meta(&specs[i])), 0);
}

/* A version (refs 0) holding exactly specs. */
static lsm_version *make_version(const lsm_options *opt, const struct fspec *specs, int n)
{
	lsm_version_edit e;
	lsm_version *v;

	lsm_edit_init(&e);
	add_files(&e, specs, n);
	assert_int_equal(lsm_version_apply(NULL, &e, opt, &v), 0);
	lsm_edit_done(&e);
	return v;
}

static void free_version(lsm_version *v)
{
	if (v)
		lsm_version_free(v, NULL, NULL, NULL);
}

/* Asserts that f has the number, size and key range of s. */
static void expect_meta(const lsm_file_meta *f, const struct fspec *s)
{
	lsm_file_meta *want = make_meta(s);
	assert_int_equal(f->number, want->number);
	assert_int_equal(f->size, want->size);
	assert_int_equal(f->smallest_len, want->smallest_len);
	assert_memory_equal(f->smallest, want->smallest, want->smallest_len);
	assert_int_equal(f->largest_len, want->largest_len);
	assert_memory_equal(f->largest, want->largest, want->largest_len);
	lsm_meta_free(want);
}

/* Asserts that level of v lists the files numbered want[0..n) in that order. */
static void expect_level(const lsm_version *v, int level, const uint64_t *want, int n)
{
	if (v->files[level].n != n)
		fail_msg("level %d holds %d files, expected %d", level, v->files[level].n, n);
	for (int i = 0; i < n; i++)
		if (v->files[level].v[i]->number != want[i])
			fail_msg("level %d file %d is #%" PRIu64 ", expected #%" PRIu64, level, i,
			         v->files[level].v[i]->number, want[i]);
}

static const lsm_file_meta *find_meta(const lsm_version *v, int level, uint64_t number)
{
	for (int i = 0; i < v->files[level].n; i++)
		if (v->files[level].v[i]->number == number)
			return v->files[level].v[i];
	fail_msg("file #%" PRIu64 " not at level %d", number, level);
	return NULL;
}

/* Asserts that v holds exactly specs (any order within a level is checked
 * by expect_level separately). */
static void expect_version(const lsm_version *v, const struct fspec *specs, int n)
{
	int total = 0;
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		total += v->files[level].n;
	assert_int_equal(total, n);
	for (int i = 0; i < n; i++)
		expect_meta(find_meta(v, specs[i].level, specs[i].number), &specs[i]);
}

/* ---- a byte builder for hand-made records -------------------------------- */

struct bytes {
	uint8_t b[4096];
	size_t len;
	size_t cuts[64];    /* offsets where a field ends: valid prefixes */
	int ncuts;
};

static void put_byte(struct bytes *x, uint8_t v) { x->b[x->len++] = v; }
static void put_var(struct bytes *x, uint64_t v) { x->len = (size_t)(put_varint64(x->b + x->len, v) - x->b); }
static void put_raw(struct bytes *x, const void *p, size_t n) { memcpy(x->b + x->len, p, n); x->len += n; }
static void cut(struct bytes *x) { x->cuts[x->ncuts++] = x->len; }

static void put_ikey(struct bytes *x, const char *ukey, uint64_t seq, unsigned type)
{
	uint8_t k[300];
	size_t n = lsm_ikey_encode(k, lsm_slice_make(ukey, strlen(ukey)), seq, type);
	put_var(x, n);
	put_raw(x, k, n);
}

/* The encoding FORMAT.md gives for an added file. */
static void put_added(struct bytes *x, const struct fspec *s)
{
	put_byte(x, 6);
	put_var(x, (uint64_t)s->level);
	put_var(x, s->number);
	put_var(x, s->size);
	put_ikey(x, s->lo, s->lo_seq, LSM_TYPE_VALUE);
	put_ikey(x, s->hi, s->hi_seq, LSM_TYPE_DELETE);
	cut(x);
}

static int decode_bytes(const uint8_t *p, size_t n)
{
	lsm_version_edit e;
	lsm_edit_init(&e);
	int r = lsm_edit_decode(&e, lsm_slice_make(p, n));
	lsm_edit_done(&e);   /* frees whatever a failed decode had built */
	return r;
}

/* ---- version edits ------------------------------------------------------ */

static char long_key[200];

static const struct fspec edit_files[] = {
	{ 0, 12, 4096, "apple", 7, "melon", 3 },
	{ 3, 1ull << 40, 1, long_key, LSM_MAX_SEQ, long_key, 0 },
	{ 6, 99, UINT64_MAX, "", 0, "\xff\xff", 1 },
};

/* Every field set, round tripped, and compared byte for byte with the
 * grammar of FORMAT.md: the test that the document and the code agree. */
static void test_manifest_edit_roundtrip(void **state)
{
	lsm_version_edit e, d;
	struct bytes want = { .len = 0 };
	uint8_t *buf;
	size_t len;
	(void)state;

	memset(long_key, 'k', sizeof(long_key) - 1);
	lsm_edit_init(&e);
	e.has_log_number = e.has_next_file = e.has_last_seq = true;
	e.log_number = 300;
	e.next_file = UINT64_MAX;
	e.last_seq = LSM_MAX_SEQ;
	assert_int_equal(lsm_edit_delete_file(&e, 0, 5), 0);
	assert_int_equal(lsm_edit_delete_file(&e, LSM_MAX_LEVELS - 1, 1ull << 50), 0);
	add_files(&e, edit_files, 3);
	assert_int_equal(lsm_edit_encode(&e, &buf, &len), 0);

	put_byte(&want, 1); put_var(&want, 300); cut(&want);
	put_byte(&want, 2); put_var(&want, UINT64_MAX); cut(&want);
	put_byte(&want, 3); put_var(&want, LSM_MAX_SEQ); cut(&want);
	put_byte(&want, 5); put_var(&want, 0); put_var(&want, 5); cut(&want);
	put_byte(&want, 5); put_var(&want, LSM_MAX_LEVELS - 1); put_var(&want, 1ull << 50); cut(&want);
	for (int i = 0; i < 3; i++)
		put_added(&want, &edit_files[i]);
	assert_int_equal(len, want.len);
	assert_memory_equal(buf, want.b, len);

	lsm_edit_init(&d);
	assert_int_equal(lsm_edit_decode(&d, lsm_slice_make(buf, len)), 0);
	assert_true(d.has_log_number && d.has_next_file && d.has_last_seq);
	assert_int_equal(d.log_number, 300);
	assert_int_equal(d.next_file, UINT64_MAX);
	assert_int_equal(d.last_seq, LSM_MAX_SEQ);
	assert_int_equal(d.ndeleted, 2);
	assert_int_equal(d.deleted[0].level, 0);
	assert_int_equal(d.deleted[0].number, 5);
	assert_int_equal(d.deleted[1].level, LSM_MAX_LEVELS - 1);
	assert_int_equal(d.deleted[1].number, 1ull << 50);
	assert_int_equal(d.nadded, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d.added[i].level, edit_files[i].level);
		assert_int_equal(d.added[i].meta->refs, 0);
		expect_meta(d.added[i].meta, &edit_files[i]);
	}
	lsm_edit_done(&d);
	lsm_edit_done(&e);
	free(buf);
}

/* Absent fields stay absent; an empty edit is an empty record. */
static void test_manifest_edit_partial(void **state)
{
	lsm_version_edit e, d;
	uint8_t *buf;
	size_t len;
	(void)state;

	lsm_edit_init(&e);
	assert_int_equal(lsm_edit_encode(&e, &buf, &len), 0);
	assert_int_equal(len, 0);
	lsm_edit_init(&d);
	assert_int_equal(lsm_edit_decode(&d, lsm_slice_make(buf, len)), 0);
	assert_false(d.has_log_number || d.has_next_file || d.has_last_seq);
	assert_int_equal(d.nadded + d.ndeleted, 0);
	free(buf);

	e.has_last_seq = true;
	e.last_seq = 0;
	assert_int_equal(lsm_edit_encode(&e, &buf, &len), 0);
	assert_int_equal(len, 2);
	assert_int_equal(lsm_edit_decode(&d, lsm_slice_make(buf, len)), 0);
	assert_true(d.has_last_seq);
	assert_false(d.has_log_number || d.has_next_file);
	assert_int_equal(d.last_seq, 0);
	free(buf);
	lsm_edit_done(&d);
	lsm_edit_done(&e);
}

/* Every prefix of a record decodes only if it ends between fields. */
static void test_manifest_edit_truncated(void **state)
{
	struct bytes x = { .len = 0 };
	(void)state;

	memset(long_key, 'k', sizeof(long_key) - 1);
	cut(&x);
	put_byte(&x, 1); put_var(&x, 1ull << 35); cut(&x);
	put_byte(&x, 2); put_var(&x, 77); cut(&x);
	put_byte(&x, 3); put_var(&x, UINT64_MAX >> 8); cut(&x);
	put_byte(&x, 5); put_var(&x, 2); put_var(&x, 300); cut(&x);
	for (int i = 0; i < 3; i++)
		put_added(&x, &edit_files[i]);
	for (size_t n = 0; n <= x.len; n++) {
		bool boundary = false;
		for (int k = 0; k < x.ncuts; k++)
			boundary |= x.cuts[k] == n;
		int r = decode_bytes(x.b, n);
		if (r != (boundary ? 0 : -EUCLEAN))
			fail_msg("prefix of %zu bytes: decode returned %d", n, r);
	}
}

/* Bad tags, levels, keys and varints: -EUCLEAN, nothing leaked. */
static void test_manifest_edit_malformed(void **state)
{
	struct bytes x;
	uint8_t k[16];
	(void)state;

	/* unknown tags, alone and after a good field */
	static const uint8_t tags[] = { 0, 4, 9, 0x80, 0xff };   /* 7, 8: value-log garbage */
	for (size_t i = 0; i < sizeof(tags); i++) {
		uint8_t rec[] = { 3, 1, tags[i], 0 };
		assert_int_equal(decode_bytes(rec + 2, 2), -EUCLEAN);
		assert_int_equal(decode_bytes(rec, 4), -EUCLEAN);
	}
	/* an unknown tag after an added file: the built meta is freed */
	x.len = 0; x.ncuts = 0;
	put_added(&x, &edit_files[0]);
	put_byte(&x, 9);
	assert_int_equal(decode_bytes(x.b, x.len), -EUCLEAN);

	/* a varint64 with bits beyond 64, and one that never ends */
	uint8_t over[] = { 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	assert_int_equal(decode_bytes(over, sizeof(over)), -EUCLEAN);
	over[10] = 0x01;
	assert_int_equal(decode_bytes(over, sizeof(over)), 0);
	uint8_t endless[12] = { 2 };
	memset(endless + 1, 0x80, 11);
	assert_int_equal(decode_bytes(endless, sizeof(endless)), -EUCLEAN);

	/* levels out of range */
	uint8_t del[] = { 5, LSM_MAX_LEVELS, 1 };
	assert_int_equal(decode_bytes(del, sizeof(del)), -EUCLEAN);
	del[1] = LSM_MAX_LEVELS - 1;
	assert_int_equal(decode_bytes(del, sizeof(del)), 0);
	struct fspec bad = edit_files[0];
	bad.level = LSM_MAX_LEVELS;
	x.len = 0; x.ncuts = 0;
	put_added(&x, &bad);
	assert_int_equal(decode_bytes(x.b, x.len), -EUCLEAN);
	/* a level whose varint exceeds 32 bits */
	uint8_t del32[] = { 5, 0x80, 0x80, 0x80, 0x80, 0x10, 1 };
	assert_int_equal(decode_bytes(del32, sizeof(del32)), -EUCLEAN);

	/* keys shorter than an internal key's 8-byte trailer */
	memset(k, 'x', sizeof(k));
	for (size_t slen = 0; slen <= 9; slen++)
		for (int which = 0; which < 2; which++) {
			x.len = 0; x.ncuts = 0;
			put_byte(&x, 6); put_var(&x, 1); put_var(&x, 10); put_var(&x, 100);
			put_var(&x, which == 0 ? slen : 8); put_raw(&x, k, which == 0 ? slen : 8);
			put_var(&x, which == 1 ? slen : 8); put_raw(&x, k, which == 1 ? slen : 8);
			int r = decode_bytes(x.b, x.len);
			if (r != (slen >= 8 ? 0 : -EUCLEAN))
				fail_msg("%s key of %zu bytes: decode returned %d", which ? "largest" : "smallest",
				         slen, r);
		}
	/* a key length running past the record */
	x.len = 0; x.ncuts = 0;
	put_byte(&x, 6); put_var(&x, 1); put_var(&x, 10); put_var(&x, 100);
	put_var(&x, 40); put_raw(&x, k, 16);
	assert_int_equal(decode_bytes(x.b, x.len), -EUCLEAN);
}

/* ---- lsm_version_apply -------------------------------------------------- */

static const struct fspec base_files[] = {
	{ 0, 3, 100, "a", 1, "z", 1 },
	{ 0, 9, 100, "c", 5, "d", 5 },
	{ 0, 5, 100, "b", 3, "y", 3 },
	{ 1, 20, 1000, "m", 9, "p", 9 },
	{ 1, 21, 1000, "c", 9, "f", 9 },
	{ 1, 22, 1000, "x", 9, "zz", 9 },
	{ 1, 23, 1000, "g", 2, "h", 2 },
	{ 4, 30, 5000, "a", 1, "b", 1 },
};

static void test_manifest_version_apply(void **state)
{
	struct fixture *fx = *state;
	lsm_version_edit e;
	lsm_version *v1, *v2;
	uint64_t *obs = NULL;
	int nobs = 0, capobs = 0;

	/* The scores below are checked against these, not the defaults. */
	fx->opt.l0_compaction_trigger = 4;
	fx->opt.max_bytes_for_level_base = 10u << 20;
	v1 = make_version(&fx->opt, base_files, 8);
	expect_version(v1, base_files, 8);
	/* level 0 newest (highest number) first; others by smallest key */
	expect_level(v1, 0, (const uint64_t[]){ 9, 5, 3 }, 3);
	expect_level(v1, 1, (const uint64_t[]){ 21, 23, 20, 22 }, 4);
	expect_level(v1, 4, (const uint64_t[]){ 30 }, 1);
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		for (int i = 0; i < v1->files[l].n; i++)
			assert_int_equal(v1->files[l].v[i]->refs, 1);
	/* 3 level-0 files against a trigger of 4; level 1 at 4000 bytes of 10 MiB */
	assert_int_equal(v1->compaction_level, 0);
	assert_true(v1->compaction_score > 0.74 && v1->compaction_score < 0.76);

	/* Delete one file per level (one at the wrong level: ignored), move one
	 * file down sharing its meta, add new ones, and add-and-delete one. */
	const lsm_file_meta *moved = find_meta(v1, 1, 23);
	lsm_edit_init(&e);
	assert_int_equal(lsm_edit_delete_file(&e, 0, 5), 0);
	assert_int_equal(lsm_edit_delete_file(&e, 1, 20), 0);
	assert_int_equal(lsm_edit_delete_file(&e, 2, 30), 0);
	assert_int_equal(lsm_edit_delete_file(&e, 1, 23), 0);
	assert_int_equal(lsm_edit_add_file(&e, 2, (lsm_file_meta *)moved), 0);
	static const struct fspec added[] = {
		{ 0, 40, 10, "k", 50, "k", 40 },
		{ 1, 41, 10, "b", 50, "b", 50 },
		{ 1, 42, 10, "n", 50, "o", 50 },
		{ 3, 43, 10, "q", 50, "r", 50 },   /* deleted by the same edit */
	};
	add_files(&e, added, 4);
	assert_int_equal(lsm_edit_delete_file(&e, 3, 43), 0);
	assert_int_equal(lsm_version_apply(v1, &e, &fx->opt, &v2), 0);
	lsm_edit_done(&e);      /* frees #43, which no version took */

	expect_level(v2, 0, (const uint64_t[]){ 40, 9, 3 }, 3);
	expect_level(v2, 1, (const uint64_t[]){ 41, 21, 42, 22 }, 4);
	expect_level(v2, 2, (const uint64_t[]){ 23 }, 1);
	expect_level(v2, 3, NULL, 0);
	expect_level(v2, 4, (const uint64_t[]){ 30 }, 1);
	assert_ptr_equal(find_meta(v2, 2, 23), moved);
	assert_ptr_equal(find_meta(v2, 0, 9), find_meta(v1, 0, 9));
	assert_int_equal(find_meta(v2, 0, 9)->refs, 2);
	assert_int_equal(moved->refs, 2);
	assert_int_equal(find_meta(v2, 0, 40)->refs, 1);
	assert_int_equal(find_meta(v1, 0, 5)->refs, 1);
	assert_int_equal(find_meta(v1, 1, 20)->refs, 1);
	/* Level 1 now holds 4 files but 2020 bytes; level 0 still 3 of 4. */
	assert_int_equal(v2->compaction_level, 0);

	/* Freeing the older version makes only the files it alone held obsolete. */
	lsm_version_free(v1, &obs, &nobs, &capobs);
	assert_int_equal(nobs, 2);
	assert_true((obs[0] == 5 && obs[1] == 20) || (obs[0] == 20 && obs[1] == 5));
	assert_int_equal(moved->refs, 1);
	nobs = 0;
	lsm_version_free(v2, &obs, &nobs, &capobs);
	assert_int_equal(nobs, 11 - 2);
	free(obs);
}

/* Equal smallest user keys at a level: the higher sequence (the smaller
 * internal key) first. */
static void test_manifest_version_apply_ties(void **state)
{
	struct fixture *fx = *state;
	static const struct fspec files[] = {
		{ 2, 7, 1, "k", 3, "k", 1 },
		{ 2, 8, 1, "k", 9, "k", 8 },
		{ 2, 6, 1, "j", 1, "j", 1 },
		{ 0, 1, 1, "a", 1, "a", 1 },
	};
	lsm_version *v = make_version(&fx->opt, files, 4);
	expect_level(v, 2, (const uint64_t[]){ 6, 8, 7 }, 3);
	expect_level(v, 0, (const uint64_t[]){ 1 }, 1);
	free_version(v);
}

/* ---- MANIFEST and CURRENT ------------------------------------------------ */

static char *read_whole(struct fixture *fx, const char *name, size_t *ret_len)
{
	char path[PATH_MAX];
	void *buf;
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	int r = env_read_file(fx->env, path, &buf, ret_len);
	if (r < 0)
		fail_msg("%s: read: %d (%s)", path, r, lsm_last_error());
	return buf;
}

static void write_whole(struct fixture *fx, const char *name, const void *p, size_t n)
{
	char path[PATH_MAX];
	lsm_file *f;
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	assert_int_equal(env_open(fx->env, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f), 0);
	if (n)
		assert_int_equal(env_pwrite(fx->env, f, p, n, 0), 0);
	assert_int_equal(env_close(fx->env, f), 0);
}

static bool exists(struct fixture *fx, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	int r = env_file_exists(fx->env, path);
	assert_true(r >= 0);
	return r == 1;
}

static void expect_current(struct fixture *fx, const char *want)
{
	size_t len;
	char *c = read_whole(fx, "CURRENT", &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(c, want, len);
	free(c);
}

static lsm_log_writer *create(struct fixture *fx, uint64_t number, const lsm_version *v, uint64_t log,
                              uint64_t next, uint64_t seq)
{
	lsm_log_writer *w = NULL;
	int r = lsm_manifest_create(fx->env, fx->dir, number, v, log, next, seq, NULL, &w);
	if (r < 0)
		fail_msg("manifest_create: %d (%s)", r, lsm_last_error());
	return w;
}

static void recover_ok(struct fixture *fx, lsm_manifest_state *st)
{
	int r = lsm_manifest_recover(fx->env, fx->dir, &fx->opt, st);
	if (r < 0)
		fail_msg("recover: %d (%s)", r, lsm_last_error());
}

/* The files at several levels and the counters survive a round trip through
 * a new manifest and a few appended edits. */
static void test_manifest_create_recover(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	lsm_version_edit e;
	lsm_version *v = make_version(&fx->opt, base_files, 8);
	lsm_log_writer *w = create(fx, 7, v, 4, 50, 1000);

	expect_current(fx, "MANIFEST-000007\n");
	assert_true(exists(fx, "MANIFEST-000007"));
	assert_false(exists(fx, "CURRENT.tmp"));

	/* The snapshot alone recovers to the same version and counters. */
	recover_ok(fx, &st);
	expect_version(st.version, base_files, 8);
	expect_level(st.version, 0, (const uint64_t[]){ 9, 5, 3 }, 3);
	expect_level(st.version, 1, (const uint64_t[]){ 21, 23, 20, 22 }, 4);
	assert_int_equal(st.log_number, 4);
	assert_int_equal(st.next_file, 50);
	assert_int_equal(st.last_seq, 1000);
	assert_int_equal(st.manifest_number, 7);
	free_version(st.version);

	/* Edits: a compaction, then a flush with new counters. */
	static const struct fspec out[] = {
		{ 2, 51, 777, "c", 9, "h", 2 },
		{ 0, 53, 64, "e", 1200, "f", 1100 },
	};
	lsm_edit_init(&e);
	assert_int_equal(lsm_edit_delete_file(&e, 1, 21), 0);
	assert_int_equal(lsm_edit_delete_file(&e, 1, 23), 0);
	add_files(&e, out, 1);
	e.has_next_file = true;
	e.next_file = 52;
	assert_int_equal(lsm_manifest_append(w, &e), 0);
	lsm_edit_done(&e);
	lsm_edit_init(&e);
	add_files(&e, out + 1, 1);
	e.has_log_number = e.has_next_file = e.has_last_seq = true;
	e.log_number = 52;
	e.next_file = 54;
	e.last_seq = 1234;
	assert_int_equal(lsm_manifest_append(w, &e), 0);
	lsm_edit_done(&e);
	assert_int_equal(lsm_log_writer_close(w), 0);

	recover_ok(fx, &st);
	struct fspec want[8];
	int n = 0;
	for (int i = 0; i < 8; i++)
		if (base_files[i].number != 21 && base_files[i].number != 23)
			want[n++] = base_files[i];
	want[n++] = out[0];
	want[n++] = out[1];
	expect_version(st.version, want, n);
	expect_level(st.version, 0, (const uint64_t[]){ 53, 9, 5, 3 }, 4);
	expect_level(st.version, 1, (const uint64_t[]){ 20, 22 }, 2);
	expect_level(st.version, 2, (const uint64_t[]){ 51 }, 1);
	assert_int_equal(st.log_number, 52);
	assert_int_equal(st.next_file, 54);
	assert_int_equal(st.last_seq, 1234);
	assert_int_equal(st.manifest_number, 7);
	free_version(st.version);
	free_version(v);
}

/* next_file is raised past every recovered table and the manifest itself,
 * whatever the logged counter says. */
static void test_manifest_recover_bumps_next_file(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	lsm_version *v = make_version(&fx->opt, base_files, 8);   /* numbers up to 30 */

	lsm_log_writer_close(create(fx, 8, v, 2, 10, 5));
	recover_ok(fx, &st);
	assert_int_equal(st.next_file, 31);
	free_version(st.version);

	lsm_log_writer_close(create(fx, 40, v, 2, 10, 5));
	expect_current(fx, "MANIFEST-000040\n");
	recover_ok(fx, &st);
	assert_int_equal(st.manifest_number, 40);
	assert_int_equal(st.next_file, 41);
	free_version(st.version);

	/* An empty store: no files at all. */
	lsm_log_writer_close(create(fx, 1234567, NULL, 0, 2, 0));
	expect_current(fx, "MANIFEST-1234567\n");
	recover_ok(fx, &st);
	expect_version(st.version, NULL, 0);
	assert_int_equal(st.next_file, 1234568);
	assert_int_equal(st.last_seq, 0);
	free_version(st.version);

	/* A manifest whose own number would push next_file out of range is
	 * damage, not a store whose next manifest (numbered next_file) fails
	 * to recover (found by fuzz_manifest). */
	lsm_log_writer_close(create(fx, (UINT64_C(1) << 63) - 1, NULL, 0, 2, 0));
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "out of range"));
	lsm_log_writer_close(create(fx, (UINT64_C(1) << 63) - 2, NULL, 0, 2, 0));
	recover_ok(fx, &st);
	assert_int_equal(st.next_file, (UINT64_C(1) << 63) - 1);
	free_version(st.version);
	free_version(v);
}

/* A manifest whose levels break the invariants reads depend on (written
 * here directly; the library never writes one) fails recovery, naming it. */
static void test_manifest_recover_bad_levels(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	static const struct fspec overlap[] = {
		{ 1, 10, 100, "a", 5, "m", 4 },
		{ 1, 11, 100, "k", 3, "z", 2 },
	};
	static const struct fspec twice[] = {
		{ 0, 12, 100, "a", 5, "c", 4 },
		{ 2, 12, 100, "d", 3, "f", 2 },
	};
	static const struct fspec inverted[] = {
		{ 3, 13, 100, "q", 5, "b", 4 },
	};
	static const struct fspec fine[] = {
		{ 0, 14, 100, "a", 9, "z", 8 },
		{ 0, 15, 100, "b", 7, "y", 6 },   /* level 0 may overlap */
		{ 1, 16, 100, "a", 5, "k", 4 },
		{ 1, 17, 100, "k", 3, "z", 2 },   /* same user key, older: in order */
	};
	const struct { const struct fspec *specs; int n; const char *msg; } cases[] = {
		{ overlap, 2, "overlap" },
		{ twice, 2, "listed twice" },
		{ inverted, 1, "smallest key above its largest" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lsm_version *v = make_version(&fx->opt, cases[i].specs, cases[i].n);
		lsm_log_writer_close(create(fx, 30 + i, v, 2, 100, 5));
		assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
		expect_msg(cases[i].msg);
		expect_msg("MANIFEST-0000");
		free_version(v);
	}
	lsm_version *v = make_version(&fx->opt, fine, 4);
	lsm_log_writer_close(create(fx, 40, v, 2, 100, 5));
	recover_ok(fx, &st);
	expect_version(st.version, fine, 4);
	free_version(st.version);
	free_version(v);
}

static void test_manifest_recover_current_missing(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;

	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -ENOENT);
	/* A manifest without CURRENT is still no store. */
	lsm_log_writer_close(create(fx, 3, NULL, 0, 4, 0));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/CURRENT", fx->dir);
	assert_int_equal(env_unlink(fx->env, path), 0);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -ENOENT);
}

static void test_manifest_recover_current_malformed(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	static const char *bad[] = {
		"",
		"\n",
		"MANIFEST-000003",            /* no newline */
		"MANIFEST-000003\n\n",
		"MANIFEST-000003 \n",
		"MANIFEST-\n",
		"MANIFEST-00000x\n",
		"manifest-000003\n",
		"000003.sst\n",
		"CURRENT\n",
		"garbage that is much too long to be the name of any manifest at all\n",
	};

	char current[PATH_MAX];
	snprintf(current, sizeof(current), "%s/CURRENT:", fx->dir);
	lsm_log_writer_close(create(fx, 3, NULL, 0, 4, 0));
	recover_ok(fx, &st);
	free_version(st.version);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lsm_clear_error();
		write_whole(fx, "CURRENT", bad[i], strlen(bad[i]));
		int r = lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st);
		if (r != -EUCLEAN)
			fail_msg("CURRENT \"%s\": recover returned %d", bad[i], r);
		expect_msg(current);     /* the file's path, not just the word */
	}
	/* Put back, it works again: the manifest itself was never the problem. */
	write_whole(fx, "CURRENT", "MANIFEST-000003\n", 16);
	recover_ok(fx, &st);
	free_version(st.version);
}

static void test_manifest_recover_manifest_missing(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;

	lsm_log_writer_close(create(fx, 3, NULL, 0, 4, 0));
	write_whole(fx, "CURRENT", "MANIFEST-000009\n", 16);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
	expect_msg("MANIFEST-000009");
}

/* Appends n edits to a fresh manifest 5 and returns each record's offset
 * (offs[0] is the snapshot) and, in *ret_end, the file's size. */
static void write_history(struct fixture *fx, uint64_t *offs, int n, uint64_t *ret_end)
{
	lsm_version *v = make_version(&fx->opt, base_files, 3);
	lsm_log_writer *w = create(fx, 5, v, 1, 100, 10);
	lsm_version_edit e;

	offs[0] = 16;
	for (int i = 1; i <= n; i++) {
		struct fspec f = { 1, 100 + (uint64_t)i, 10, "k", (uint64_t)i, "l", (uint64_t)i };
		f.lo = i % 2 ? "k" : "m";
		f.hi = i % 2 ? "l" : "n";
		offs[i] = lsm_log_writer_size(w);
		lsm_edit_init(&e);
		e.has_last_seq = true;
		e.last_seq = 10 + (uint64_t)i;
		add_files(&e, &f, 1);
		if (i > 2)
			assert_int_equal(lsm_edit_delete_file(&e, 1, 100 + (uint64_t)i - 2), 0);
		assert_int_equal(lsm_manifest_append(w, &e), 0);
		lsm_edit_done(&e);
	}
	*ret_end = lsm_log_writer_size(w);
	assert_int_equal(lsm_log_writer_close(w), 0);
	free_version(v);
}

static void flip_byte(struct fixture *fx, const char *name, uint64_t off)
{
	size_t len;
	uint8_t *p = (uint8_t *)read_whole(fx, name, &len);
	assert_true(off < len);
	p[off] ^= 0x20;
	write_whole(fx, name, p, len);
	free(p);
}

/* A flipped byte in a record with good records after it is damage. */
static void test_manifest_recover_bad_checksum(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	uint64_t offs[5], end;

	write_history(fx, offs, 4, &end);
	recover_ok(fx, &st);
	assert_int_equal(st.last_seq, 14);
	expect_level(st.version, 1, (const uint64_t[]){ 103, 104 }, 2);
	free_version(st.version);

	/* In the payload of the middle record, then in its checksum. */
	flip_byte(fx, "MANIFEST-000005", offs[2] + 8 + 3);
	lsm_clear_error();
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EBADMSG);
	expect_msg("MANIFEST-000005");
	flip_byte(fx, "MANIFEST-000005", offs[2] + 8 + 3);
	flip_byte(fx, "MANIFEST-000005", offs[2]);      /* the checksum itself */
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EBADMSG);
	flip_byte(fx, "MANIFEST-000005", offs[2]);
	/* The snapshot record, first of all. */
	flip_byte(fx, "MANIFEST-000005", offs[0] + 9);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EBADMSG);
	expect_msg("MANIFEST-000005");
}

/* A damaged final record is taken for a crash's torn append (log.c): the
 * edit is dropped and recovery yields the state before it.  (See the note in
 * FORMAT.md section 4: the log cannot tell this from damage to a synced record.) */
static void test_manifest_recover_torn_last_edit(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	uint64_t offs[5], end;

	write_history(fx, offs, 4, &end);
	flip_byte(fx, "MANIFEST-000005", offs[4] + 9);
	recover_ok(fx, &st);
	assert_int_equal(st.last_seq, 13);
	expect_level(st.version, 1, (const uint64_t[]){ 103, 102 }, 2);   /* "k" before "m" */
	free_version(st.version);

	/* A truncated final record: the same. */
	char path[PATH_MAX];
	lsm_file *f;
	snprintf(path, sizeof(path), "%s/MANIFEST-000005", fx->dir);
	assert_int_equal(env_open(fx->env, path, LSM_ENV_WRITE, &f), 0);
	assert_int_equal(env_truncate(fx->env, f, offs[4] + 5), 0);
	assert_int_equal(env_close(fx->env, f), 0);
	recover_ok(fx, &st);
	assert_int_equal(st.last_seq, 13);
	free_version(st.version);
}

/* Well-framed records that are not valid edits, or a manifest that never
 * gives all three counters: -EUCLEAN naming the manifest. */
static void test_manifest_recover_bad_edit(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	lsm_log_writer *w;
	char path[PATH_MAX];
	static const uint8_t unknown_tag[] = { 3, 7, 4, 1 };
	static const uint8_t no_next[] = { 1, 1, 3, 9 };
	static const uint8_t next_only[] = { 2, 9 };

	snprintf(path, sizeof(path), "%s/MANIFEST-000006", fx->dir);
	write_whole(fx, "CURRENT", "MANIFEST-000006\n", 16);

	/* an unknown tag in the first edit */
	assert_int_equal(lsm_log_writer_open(fx->env, path, LSM_LOG_KIND_MANIFEST, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, unknown_tag, sizeof(unknown_tag)), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);
	lsm_clear_error();
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
	expect_msg("MANIFEST-000006");

	/* no counters at all: header only */
	assert_int_equal(lsm_log_writer_open(fx->env, path, LSM_LOG_KIND_MANIFEST, &w), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);
	lsm_clear_error();
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
	expect_msg("MANIFEST-000006");

	/* log number and sequence but never a next file number */
	assert_int_equal(lsm_log_writer_open(fx->env, path, LSM_LOG_KIND_MANIFEST, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, no_next, sizeof(no_next)), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);

	/* ... which a later edit may supply: the counters need not come together */
	assert_int_equal(lsm_log_writer_open(fx->env, path, LSM_LOG_KIND_MANIFEST, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, no_next, sizeof(no_next)), 0);
	assert_int_equal(lsm_log_writer_add(w, next_only, sizeof(next_only)), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);
	recover_ok(fx, &st);
	assert_int_equal(st.log_number, 1);
	assert_int_equal(st.next_file, 9);
	assert_int_equal(st.last_seq, 9);
	free_version(st.version);

	/* a WAL where a manifest should be: another kind of log */
	assert_int_equal(lsm_log_writer_open(fx->env, path, LSM_LOG_KIND_WAL, &w), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -ENOTSUP);
	/* not a log at all */
	write_whole(fx, "MANIFEST-000006", "this is not a log file", 22);
	assert_int_equal(lsm_manifest_recover(fx->env, fx->dir, &fx->opt, &st), -EUCLEAN);
}

/* A second manifest replaces the first in CURRENT; the first is untouched
 * (the caller deletes it). */
static void test_manifest_create_replaces(void **state)
{
	struct fixture *fx = *state;
	lsm_manifest_state st;
	lsm_version *v = make_version(&fx->opt, base_files, 8);

	lsm_log_writer_close(create(fx, 3, NULL, 0, 4, 0));
	lsm_log_writer_close(create(fx, 60, v, 2, 61, 77));
	expect_current(fx, "MANIFEST-000060\n");
	assert_true(exists(fx, "MANIFEST-000003"));
	recover_ok(fx, &st);
	expect_version(st.version, base_files, 8);
	assert_int_equal(st.last_seq, 77);
	free_version(st.version);
	free_version(v);
}

/* Failures while creating a manifest leave CURRENT naming the old one, and
 * remove the new file when it cannot be live.  Before the rename of CURRENT
 * the new file may stay behind (an orphan the next open's sweep removes);
 * after it, CURRENT may already name it, so it must stay. */
static void test_manifest_create_failures(void **state)
{
	struct fixture *fx = *state;
	lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
	lsm_version *v = make_version(&fx->opt, base_files, 8);
	lsm_manifest_state st;
	lsm_log_writer *w;
	char path[PATH_MAX];
	const char *dir = "/store";
	enum { GONE, ANY, KEPT };
	static const struct { enum env_fault_op op; uint64_t nth; int file; bool live; } cases[] = {
		{ FAULT_SYNC, 1, ANY, false },          /* the new manifest's header */
		{ FAULT_WRITE, 2, GONE, false },        /* its snapshot record */
		{ FAULT_SYNC, 2, GONE, false },         /* ... and that record's sync */
		{ FAULT_SYNC_DIR, 1, GONE, false },     /* its name */
		{ FAULT_WRITE, 3, ANY, false },         /* CURRENT.tmp */
		{ FAULT_SYNC, 3, ANY, false },          /* ... its sync */
		{ FAULT_RENAME, 1, ANY, false },        /* CURRENT.tmp -> CURRENT */
		{ FAULT_SYNC_DIR, 2, KEPT, true },      /* after the rename: live */
	};

	assert_int_equal(env_mkdir(fe, dir), 0);
	assert_int_equal(lsm_manifest_create(fe, dir, 2, NULL, 0, 3, 0, NULL, &w), 0);
	lsm_log_writer_close(w);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t number = 10 + i;
		env_fault_reset_counts(fe);
		env_fault_fail_nth(fe, cases[i].op, cases[i].nth, EIO);
		w = NULL;
		int r = lsm_manifest_create(fe, dir, number, v, 1, 100, 50, NULL, &w);
		if (r != -EIO)
			fail_msg("case %zu: create returned %d", i, r);
		assert_null(w);
		env_fault_clear(fe);
		snprintf(path, sizeof(path), "%s/MANIFEST-%06" PRIu64, dir, number);
		if (cases[i].file != ANY)
			assert_int_equal(env_file_exists(fe, path), cases[i].file == KEPT);
		snprintf(path, sizeof(path), "%s/CURRENT.tmp", dir);
		assert_int_equal(env_file_exists(fe, path), 0);
		assert_int_equal(lsm_manifest_recover(fe, dir, &fx->opt, &st), 0);
		if (cases[i].live) {
			/* The rename happened: the new manifest is complete and live. */
			assert_int_equal(st.manifest_number, number);
			expect_version(st.version, base_files, 8);
			assert_int_equal(st.last_seq, 50);
		} else {
			assert_int_equal(st.manifest_number, 2);
			expect_version(st.version, NULL, 0);
		}
		free_version(st.version);
		/* back to the old manifest for the next case */
		assert_int_equal(env_write_file_atomic(fe, dir, "CURRENT", "MANIFEST-000002\n", 16), 0);
	}
	free_version(v);
	env_fault_free(fe);
	env_mem_free(mem);
}

/* An append that fails leaves the writer failed and the manifest readable
 * up to the last good edit. */
static void test_manifest_append_failure(void **state)
{
	struct fixture *fx = *state;
	lsm_env *mem = env_mem_new(), *fe = env_fault_new(mem);
	lsm_manifest_state st;
	lsm_version_edit e;
	lsm_log_writer *w;

	assert_int_equal(env_mkdir(fe, "/s"), 0);
	assert_int_equal(lsm_manifest_create(fe, "/s", 2, NULL, 1, 3, 4, NULL, &w), 0);
	lsm_edit_init(&e);
	e.has_last_seq = true;
	e.last_seq = 9;
	env_fault_fail_nth(fe, FAULT_SYNC, 1, EIO);
	assert_int_equal(lsm_manifest_append(w, &e), -EIO);
	env_fault_clear(fe);
	e.last_seq = 10;
	assert_int_equal(lsm_manifest_append(w, &e), -EIO);   /* sticky */
	assert_int_equal(lsm_log_writer_close(w), -EIO);
	lsm_edit_done(&e);
	/* The record was written, only its sync failed: it is there until a
	 * power cut, which takes it away (it was never durable). */
	assert_int_equal(lsm_manifest_recover(fe, "/s", &fx->opt, &st), 0);
	assert_int_equal(st.last_seq, 9);
	free_version(st.version);
	assert_int_equal(env_fault_crash(fe), 0);
	assert_int_equal(lsm_manifest_recover(fe, "/s", &fx->opt, &st), 0);
	assert_int_equal(st.last_seq, 4);
	assert_int_equal(st.manifest_number, 2);
	free_version(st.version);
	env_fault_free(fe);
	env_mem_free(mem);
}

/* ---- file names --------------------------------------------------------- */

static void test_manifest_filename_roundtrip(void **state)
{
	static const enum lsm_file_type types[] = {
		LSM_FILE_WAL, LSM_FILE_SST, LSM_FILE_VLOG, LSM_FILE_MANIFEST,
	};
	static const uint64_t numbers[] = {
		0, 1, 7, 999999, 1000000, 123456789012ull, UINT64_MAX / 10, UINT64_MAX - 10,
	};
	char buf[PATH_MAX], want[64];
	uint64_t n;
	(void)state;

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
			lsm_filename(buf, sizeof(buf), "/d/x", types[t], numbers[i]);
			assert_memory_equal(buf, "/d/x/", 5);
			n = 0xdead;
			assert_int_equal(lsm_parse_filename(buf + 5, &n), types[t]);
			assert_int_equal(n, numbers[i]);
		}
	/* the exact spellings FORMAT.md gives */
	static const struct { enum lsm_file_type type; uint64_t n; const char *name; } names[] = {
		{ LSM_FILE_WAL, 5, "000005.wal" },
		{ LSM_FILE_SST, 1234567, "1234567.sst" },
		{ LSM_FILE_VLOG, 0, "000000.vlog" },
		{ LSM_FILE_MANIFEST, 42, "MANIFEST-000042" },
		{ LSM_FILE_CURRENT, 42, "CURRENT" },
		{ LSM_FILE_LOCK, 42, "LOCK" },
		{ LSM_FILE_TEMP, 42, "000042.tmp" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		lsm_filename(buf, sizeof(buf), "db", names[i].type, names[i].n);
		snprintf(want, sizeof(want), "db/%s", names[i].name);
		assert_string_equal(buf, want);
		assert_int_equal(lsm_parse_filename(names[i].name, &n), names[i].type);
	}
	/* leading zeros are allowed and ignored */
	assert_int_equal(lsm_parse_filename("0000000000000000000000000000012.sst", &n), LSM_FILE_SST);
	assert_int_equal(n, 12);
	/* any *.tmp is a temp file: CURRENT.tmp is the one the engine makes */
	assert_int_equal(lsm_parse_filename("CURRENT.tmp", &n), LSM_FILE_TEMP);
	assert_int_equal(lsm_parse_filename("x.tmp", &n), LSM_FILE_TEMP);
	/* a truncated buffer stays a terminated string */
	lsm_filename(buf, 8, "/d", LSM_FILE_SST, 5);
	assert_string_equal(buf, "/d/0000");
}

static void test_manifest_filename_rejects(void **state)
{
	static const char *bad[] = {
		"", "x", ".sst", ".wal", ".vlog", ".tmp", "12", "12.", "12.ss", "12.sstx", "12.sst.bak",
		"12.SST", "-1.sst", "+1.sst", " 12.sst", "12 .sst", "1a.sst", "0x10.sst", "12.log",
		"MANIFEST", "MANIFEST-", "MANIFEST-x", "MANIFEST-12a", "MANIFEST-12\n", "MANIFEST--1",
		"manifest-000001", "MANIFEST-000001.sst", "MANIFEST-000001.tmpx",
		"CURRENT\n", "CURRENTX", "current", "LOCK.", "LOCKS", "lock",
		"18446744073709551616.sst",     /* 2^64 */
		"99999999999999999999.wal",
		"MANIFEST-100000000000000000000",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t n = 0;
		enum lsm_file_type t = lsm_parse_filename(bad[i], &n);
		if (t != LSM_FILE_UNKNOWN)
			fail_msg("\"%s\" parsed as type %d", bad[i], (int)t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_edit_roundtrip),
		cmocka_unit_test(test_manifest_edit_partial),
		cmocka_unit_test(test_manifest_edit_truncated),
		cmocka_unit_test(test_manifest_edit_malformed),
		cmocka_unit_test_setup_teardown(test_manifest_version_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_version_apply_ties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_create_recover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_bumps_next_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_bad_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_current_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_current_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_manifest_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_bad_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_torn_last_edit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_recover_bad_edit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_create_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_create_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_append_failure, setup, teardown),
		cmocka_unit_test(test_manifest_filename_roundtrip),
		cmocka_unit_test(test_manifest_filename_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
