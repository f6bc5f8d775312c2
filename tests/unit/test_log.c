/*
 * test_log.c - unit tests for lsm/log.c, the WAL/MANIFEST record framing:
 * round trips of records from empty to several MiB, reopening to append,
 * torn tails cut at every byte of the last record, checksum damage (fatal,
 * or skipped with skip_corrupt, including a damaged length that forces a
 * byte-by-byte resync), bad headers, zero-filled tails, and writer failures
 * and power cuts through the fault env.  Files live in a tmpdir on the POSIX
 * env.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "lsm_int.h"
#include "env_test.h"
#include "testutil.h"

/* The version-1 framing (the manifest's) for most tests; the WAL's version
 * 2 has its own below. */
#define KIND LSM_LOG_KIND_MANIFEST

struct fixture {
	char *dir;
	char path[4096];
	lsm_env *env;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->dir = test_tmpdir("test_log");
	snprintf(fx->path, sizeof(fx->path), "%s/000003.wal", fx->dir);
	fx->env = lsm_env_posix();
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

/* Record i's contents: len bytes that depend on i and the position. */
static uint8_t *make_rec(unsigned i, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t s = 0x9e3779b97f4a7c15ull * (i + 1);
	assert_non_null(p);
	for (size_t k = 0; k < len; k++) {
		if (k % 8 == 0)
			s = test_rand(&s);
		p[k] = (uint8_t)(s >> (8 * (k % 8)));
	}
	return p;
}

/* Writes n records of sizes[i] to path; returns the writer's final size. */
static uint64_t write_log(struct fixture *fx, lsm_env *env, const size_t *sizes, unsigned n)
{
	lsm_log_writer *w = NULL;
	uint64_t size;

	assert_int_equal(lsm_log_writer_open(env, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_size(w), 16);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *rec = make_rec(i, sizes[i]);
		uint64_t before = lsm_log_writer_size(w);
		assert_int_equal(lsm_log_writer_add(w, rec, sizes[i]), 0);
		assert_int_equal(lsm_log_writer_size(w), before + 8 + sizes[i]);
		free(rec);
	}
	assert_int_equal(lsm_log_writer_sync(w), 0);
	size = lsm_log_writer_size(w);
	assert_int_equal(lsm_log_writer_close(w), 0);
	return size;
}

/* Offset of record i's header. */
static uint64_t rec_offset(const size_t *sizes, unsigned i)
{
	uint64_t off = 16;
	for (unsigned k = 0; k < i; k++)
		off += 8 + sizes[k];
	return off;
}

/* Asserts the next record is record i (contents from make_rec). */
static void expect_rec(lsm_log_reader *r, unsigned i, size_t len)
{
	lsm_slice rec;
	uint8_t *want = make_rec(i, len);
	int rc = lsm_log_reader_next(r, &rec);
	if (rc != 1)
		fail_msg("record %u: next returned %d (%s)", i, rc, lsm_last_error());
	assert_int_equal(rec.len, len);
	if (len)
		assert_memory_equal(rec.data, want, len);
	free(want);
}

static void slurp(struct fixture *fx, uint8_t **ret, size_t *ret_len)
{
	void *buf;
	assert_int_equal(env_read_file(fx->env, fx->path, &buf, ret_len), 0);
	*ret = buf;
}

static void spit(struct fixture *fx, const uint8_t *buf, size_t len)
{
	lsm_file *f;
	assert_int_equal(env_open(fx->env, fx->path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f), 0);
	if (len)
		assert_int_equal(env_pwrite(fx->env, f, buf, len, 0), 0);
	assert_int_equal(env_close(fx->env, f), 0);
}

static lsm_log_reader *open_reader_kind(struct fixture *fx, uint32_t kind, bool skip)
{
	lsm_log_reader *r = NULL;
	int rc = lsm_log_reader_open(fx->env, fx->path, kind, skip, &r);
	if (rc != 0)
		fail_msg("reader open: %d (%s)", rc, lsm_last_error());
	return r;
}

static lsm_log_reader *open_reader(struct fixture *fx, bool skip)
{
	return open_reader_kind(fx, KIND, skip);
}

/* Opens a reader and checks records [0, n) of sizes come out, except
 * record `except` (-1: none) which is expected to be skipped or damaged. */
static lsm_log_reader *read_upto(struct fixture *fx, bool skip, const size_t *sizes, unsigned n,
                                 int except)
{
	lsm_log_reader *r = open_reader(fx, skip);
	for (unsigned i = 0; i < n; i++)
		if ((int)i != except)
			expect_rec(r, i, sizes[i]);
	return r;
}

/* Asserts the log ends here with `tail` bytes dropped, then closes r. */
static void expect_end(lsm_log_reader *r, uint64_t tail)
{
	lsm_slice rec;
	int rc = lsm_log_reader_next(r, &rec);
	if (rc != 0)
		fail_msg("expected the end, got %d (%s)", rc, lsm_last_error());
	assert_int_equal(lsm_log_reader_tail_dropped(r), tail);
	lsm_log_reader_close(r);
}

/* Asserts the next read fails with err, then closes r. */
static void expect_err(lsm_log_reader *r, int err)
{
	lsm_slice rec;
	assert_int_equal(lsm_log_reader_next(r, &rec), err);
	lsm_log_reader_close(r);
}

/* Flips the bits of mask in the byte at off. */
static void flip(struct fixture *fx, uint64_t off, uint8_t mask)
{
	uint8_t *buf;
	size_t len;
	slurp(fx, &buf, &len);
	assert_true(off < len);
	buf[off] ^= mask;
	spit(fx, buf, len);
	free(buf);
}

static void test_log_round_trip(void **state)
{
	struct fixture *fx = *state;
	size_t sizes[260];
	unsigned n = 0;
	const size_t fixed[] = {
		0, 1, 7, 8, 9, 100, 4095, 4096, 4097, 65536,
		256 * 1024 - 16, 256 * 1024 - 8, 256 * 1024 - 7, 256 * 1024 + 1,  /* around the window */
		(1 << 20) - 8, (1 << 20) - 7, 1 << 20,                           /* around one pwrite */
		3 << 20, 0, 5,
	};
	uint64_t seed = test_seed("test_log_round_trip"), size;
	lsm_log_reader *r;
	lsm_slice rec;

	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		sizes[n++] = fixed[i];
	while (n < 260)
		sizes[n++] = test_rand(&seed) % (test_rand(&seed) % 2 ? 300 : 70000);
	size = write_log(fx, fx->env, sizes, n);
	assert_int_equal(size, rec_offset(sizes, n));
	/* The framing is exactly the documented one. */
	{
		uint8_t *buf;
		size_t len;
		slurp(fx, &buf, &len);
		assert_int_equal(len, size);
		assert_memory_equal(buf, "LSMLOG\0\0\1\0\0\0\2\0\0\0", 16);
		for (unsigned i = 0; i < 6; i++) {
			const uint8_t *h = buf + rec_offset(sizes, i);
			assert_int_equal(get_fixed32(h + 4), sizes[i]);
			assert_int_equal(get_fixed32(h), lsm_checksum2(h + 4, 4, h + 8, sizes[i]));
		}
		free(buf);
	}

	r = open_reader(fx, false);
	for (unsigned i = 0; i < n; i++) {
		expect_rec(r, i, sizes[i]);
		assert_int_equal(lsm_log_reader_offset(r), rec_offset(sizes, i + 1));
	}
	assert_int_equal(lsm_log_reader_next(r, &rec), 0);
	assert_int_equal(lsm_log_reader_next(r, &rec), 0);
	assert_int_equal(lsm_log_reader_offset(r), size);
	assert_int_equal(lsm_log_reader_tail_dropped(r), 0);
	assert_int_equal(lsm_log_reader_skipped(r), 0);
	lsm_log_reader_close(r);

	/* An empty log is just its header. */
	size = write_log(fx, fx->env, sizes, 0);
	assert_int_equal(size, 16);
	r = open_reader(fx, false);
	assert_int_equal(lsm_log_reader_next(r, &rec), 0);
	assert_int_equal(lsm_log_reader_offset(r), 16);
	lsm_log_reader_close(r);
	lsm_log_reader_close(NULL);
	assert_int_equal(lsm_log_writer_close(NULL), 0);
}

static void test_log_reopen_append(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[] = { 10, 0, 300, 5000, 20, 77, 1, 64 };
	lsm_log_writer *w = NULL;
	lsm_log_reader *r;
	uint8_t *buf, junk[300];
	size_t len;
	uint64_t end;

	write_log(fx, fx->env, sizes, 5);
	end = rec_offset(sizes, 5);

	/* A torn tail left behind by a crash is cut before appending, so the
	 * new records are not followed by its leftovers. */
	slurp(fx, &buf, &len);
	buf = realloc(buf, len + sizeof(junk));
	assert_non_null(buf);
	memset(junk, 0xab, sizeof(junk));
	memcpy(buf + len, junk, sizeof(junk));
	spit(fx, buf, len + sizeof(junk));
	free(buf);
	r = read_upto(fx, false, sizes, 5, -1);
	assert_int_equal(lsm_log_reader_offset(r), end);
	expect_end(r, sizeof(junk));

	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, KIND, end, &w), 0);
	assert_int_equal(lsm_log_writer_size(w), end);
	for (unsigned i = 5; i < 8; i++) {
		uint8_t *p = make_rec(i, sizes[i]);
		assert_int_equal(lsm_log_writer_add(w, p, sizes[i]), 0);
		free(p);
	}
	assert_int_equal(lsm_log_writer_sync(w), 0);
	assert_int_equal(lsm_log_writer_close(w), 0);

	r = read_upto(fx, false, sizes, 8, -1);
	assert_int_equal(lsm_log_reader_offset(r), rec_offset(sizes, 8));
	expect_end(r, 0);

	/* Misuse and foreign files are refused. */
	w = NULL;
	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, KIND, 15, &w), -EINVAL);
	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, KIND, rec_offset(sizes, 8) + 1, &w),
	                 -EINVAL);
	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, LSM_LOG_KIND_WAL, 16, &w),
	                 -ENOTSUP);
	assert_null(w);
	flip(fx, 0, 0x20);
	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, KIND, 16, &w), -EUCLEAN);
	assert_null(w);
}

/* Cuts the file at every byte of its last record: the reader must return
 * every earlier record, then report the end with the cut bytes dropped. */
static void torn_tail_cuts(struct fixture *fx, const size_t *sizes, unsigned n, size_t step)
{
	uint8_t *buf;
	size_t len;
	uint64_t last = rec_offset(sizes, n - 1);

	write_log(fx, fx->env, sizes, n);
	slurp(fx, &buf, &len);
	assert_int_equal(len, rec_offset(sizes, n));
	for (uint64_t cut = last; cut < len; cut += cut < last + 16 ? 1 : step) {
		lsm_log_reader *r;

		spit(fx, buf, (size_t)cut);
		r = read_upto(fx, false, sizes, n - 1, -1);
		assert_int_equal(lsm_log_reader_offset(r), last);
		assert_int_equal(lsm_log_reader_skipped(r), 0);
		expect_end(r, cut - last);
	}
	free(buf);
}

static void test_log_torn_tail_every_offset(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[] = { 100, 0, 2000, 33, 300 };
	const size_t big[] = { 100, 5, 700 * 1024 };    /* a last record longer than the window */

	torn_tail_cuts(fx, sizes, 5, 1);
	torn_tail_cuts(fx, big, 3, 16411);
}

/* Writes 10 records and flips one bit at offset `at`. */
static void write_damaged(struct fixture *fx, const size_t *sizes, uint64_t at)
{
	write_log(fx, fx->env, sizes, 10);
	flip(fx, at, 0x10);
}

static const size_t ten[10] = { 1000, 200, 3000, 1000, 40, 0, 500, 9000, 1, 100 };

static void test_log_checksum_mismatch(void **state)
{
	struct fixture *fx = *state;
	uint64_t bad = rec_offset(ten, 3);
	lsm_log_reader *r;
	lsm_slice rec;
	char want[4200];

	write_damaged(fx, ten, bad + 8 + 500);
	r = read_upto(fx, false, ten, 3, -1);
	assert_int_equal(lsm_log_reader_next(r, &rec), -EBADMSG);
	snprintf(want, sizeof(want), "%s: record at offset %" PRIu64 ": checksum mismatch", fx->path, bad);
	if (!strstr(lsm_last_error(), want))
		fail_msg("message \"%s\" lacks \"%s\"", lsm_last_error(), want);
	/* The error sticks; nothing past the damage is handed out. */
	assert_int_equal(lsm_log_reader_next(r, &rec), -EBADMSG);
	assert_int_equal(lsm_log_reader_offset(r), bad);
	assert_int_equal(lsm_log_reader_skipped(r), 0);
	lsm_log_reader_close(r);

	/* Damage in a checksum field is found the same way. */
	write_damaged(fx, ten, rec_offset(ten, 1) + 2);
	expect_err(read_upto(fx, false, ten, 1, -1), -EBADMSG);
	snprintf(want, sizeof(want), "record at offset %" PRIu64 ":", rec_offset(ten, 1));
	assert_non_null(strstr(lsm_last_error(), want));
}

static void test_log_skip_corrupt(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[] = { 100, 500, 300 * 1024, 50 };
	lsm_log_reader *r;

	write_damaged(fx, ten, rec_offset(ten, 3) + 8 + 999);
	r = read_upto(fx, true, ten, 10, 3);
	assert_int_equal(lsm_log_reader_skipped(r), 1);
	assert_int_equal(lsm_log_reader_offset(r), rec_offset(ten, 10));
	expect_end(r, 0);

	/* Behind the damaged record comes one longer than the reader's window:
	 * found through the damaged record's length, which was intact. */
	write_log(fx, fx->env, sizes, 4);
	flip(fx, rec_offset(sizes, 1) + 8 + 7, 4);
	r = read_upto(fx, true, sizes, 4, 1);
	assert_int_equal(lsm_log_reader_skipped(r), 1);
	expect_end(r, 0);
}

static void test_log_skip_corrupt_bad_length(void **state)
{
	struct fixture *fx = *state;
	lsm_log_reader *r;
	lsm_slice rec;

	/* Bit 4 of the length of record 2 (3000 -> 2984): the length cannot
	 * be trusted, so the reader has to hunt byte by byte for record 3. */
	write_damaged(fx, ten, rec_offset(ten, 2) + 4);
	expect_err(read_upto(fx, false, ten, 2, -1), -EBADMSG);
	r = read_upto(fx, true, ten, 10, 2);
	assert_int_equal(lsm_log_reader_skipped(r), 1);
	expect_end(r, 0);

	/* Two damaged records, the second the empty one: both skipped. */
	flip(fx, rec_offset(ten, 5), 1);
	r = read_upto(fx, true, ten, 5, 2);
	expect_rec(r, 6, ten[6]);
	assert_int_equal(lsm_log_reader_skipped(r), 2);
	while (lsm_log_reader_next(r, &rec) == 1)
		;
	expect_end(r, 0);
}

static void test_log_mismatch_at_eof(void **state)
{
	struct fixture *fx = *state;
	lsm_log_reader *r;

	/* Damage in the last record is a torn write, not corruption. */
	write_damaged(fx, ten, rec_offset(ten, 9) + 8 + 50);
	r = read_upto(fx, false, ten, 9, -1);
	assert_int_equal(lsm_log_reader_offset(r), rec_offset(ten, 9));
	expect_end(r, 8 + ten[9]);
}

static void test_log_zero_tail(void **state)
{
	struct fixture *fx = *state;
	uint8_t *buf;
	size_t len;
	lsm_log_reader *r;
	const size_t zeros = 64 * 1024 + 3;

	/* Space the filesystem extended but never wrote. */
	write_log(fx, fx->env, ten, 10);
	slurp(fx, &buf, &len);
	buf = realloc(buf, len + zeros);
	assert_non_null(buf);
	memset(buf + len, 0, zeros);
	spit(fx, buf, len + zeros);
	r = read_upto(fx, false, ten, 10, -1);
	assert_int_equal(lsm_log_reader_offset(r), len);
	expect_end(r, 0);   /* the end of the log, not a torn record */

	/* The last record half zeroed by the same crash, then zeros. */
	memset(buf + rec_offset(ten, 9) + 8 + 40, 0, 60);
	spit(fx, buf, len + zeros);
	expect_end(read_upto(fx, false, ten, 9, -1), 8 + ten[9] + zeros);

	/* But a zero header with data behind it is damage. */
	buf[len + zeros - 1] = 1;
	spit(fx, buf, len + zeros);
	expect_err(read_upto(fx, false, ten, 9, -1), -EBADMSG);
	memset(buf + rec_offset(ten, 4), 0, 8);
	spit(fx, buf, len);
	expect_err(read_upto(fx, false, ten, 4, -1), -EBADMSG);
	assert_non_null(strstr(lsm_last_error(), fx->path));
	free(buf);
}

static void test_log_bad_header(void **state)
{
	struct fixture *fx = *state;
	lsm_log_reader *r = NULL;
	uint8_t *buf;
	size_t len;

	write_log(fx, fx->env, ten, 3);
	slurp(fx, &buf, &len);

	buf[3] ^= 0x20;                             /* "LSMlOG" */
	spit(fx, buf, len);
	assert_int_equal(lsm_log_reader_open(fx->env, fx->path, KIND, false, &r), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "not a log file"));
	assert_non_null(strstr(lsm_last_error(), fx->path));
	assert_null(r);
	buf[3] ^= 0x20;

	put_fixed32(buf + 8, 3);                     /* a future version */
	spit(fx, buf, len);
	assert_int_equal(lsm_log_reader_open(fx->env, fx->path, KIND, true, &r), -ENOTSUP);
	assert_non_null(strstr(lsm_last_error(), "version 3"));
	put_fixed32(buf + 8, 1);

	spit(fx, buf, len);                          /* a MANIFEST read as a WAL */
	assert_int_equal(lsm_log_reader_open(fx->env, fx->path, LSM_LOG_KIND_WAL, false, &r),
	                 -ENOTSUP);
	assert_null(r);

	memset(buf, 0, 16);                          /* a zeroed header is not a log */
	spit(fx, buf, len);
	assert_int_equal(lsm_log_reader_open(fx->env, fx->path, KIND, false, &r), -EUCLEAN);

	assert_int_equal(lsm_log_reader_open(fx->env, "/nonexistent/dir/1.wal", KIND, false, &r), -ENOENT);
	assert_null(r);
	free(buf);
}

static void test_log_short_file(void **state)
{
	struct fixture *fx = *state;
	lsm_log_reader *r = NULL;
	uint8_t *buf;
	size_t len;

	/* A crash inside lsm_log_writer_open may leave a header cut short
	 * (or never written): that is an empty log. */
	write_log(fx, fx->env, ten, 0);
	slurp(fx, &buf, &len);
	for (size_t n = 0; n < 16; n++) {
		spit(fx, buf, n);
		r = open_reader(fx, false);
		assert_int_equal(lsm_log_reader_offset(r), 0);
		expect_end(r, n);
	}
	memset(buf, 0, 16);
	spit(fx, buf, 9);
	expect_end(open_reader(fx, false), 9);
	/* Anything else that short is not a log. */
	memcpy(buf, "hello", 5);
	spit(fx, buf, 5);
	r = NULL;
	assert_int_equal(lsm_log_reader_open(fx->env, fx->path, KIND, false, &r), -EUCLEAN);
	assert_null(r);
	free(buf);
}

static void test_log_length_over_limit(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[] = { 10, 20, 30 };
	lsm_log_writer *w = NULL;
	lsm_file *f;
	uint8_t hdr[8];
	uint64_t bad = rec_offset(sizes, 1);
	uint8_t one = 1;

	/* The writer refuses before touching the (here bogus) buffer. */
	assert_int_equal(lsm_log_writer_open(fx->env, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, &one, (size_t)(1u << 30) + 1), -EINVAL);
	assert_int_equal(lsm_log_writer_add(w, &one, 1), 0);    /* still usable */
	assert_int_equal(lsm_log_writer_close(w), 0);

	/* A length over the limit that still fits in the (sparse) file is
	 * damage, not a torn tail. */
	write_log(fx, fx->env, sizes, 3);
	assert_int_equal(env_open(fx->env, fx->path, LSM_ENV_WRITE, &f), 0);
	put_fixed32(hdr, 0x12345678);
	put_fixed32(hdr + 4, (1u << 30) + 100);
	assert_int_equal(env_pwrite(fx->env, f, hdr, 8, bad), 0);
	assert_int_equal(env_truncate(fx->env, f, (1ull << 30) + 4096), 0);
	assert_int_equal(env_close(fx->env, f), 0);
	expect_err(read_upto(fx, false, sizes, 1, -1), -EBADMSG);
	assert_non_null(strstr(lsm_last_error(), "over the limit"));
}

/* ---- failures through the fault env ------------------------------------ */

static void test_log_writer_failure_sticky(void **state)
{
	struct fixture *fx = *state;
	lsm_env *fe = env_fault_new(fx->env);
	lsm_log_writer *w = NULL;
	uint8_t *p = make_rec(0, 100), *b = make_rec(1, 2u << 20);
	const size_t one[] = { 100 };
	uint64_t writes;

	assert_non_null(fe);
	assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, p, 100), 0);
	env_fault_fail_nth(fe, FAULT_WRITE, 1, EIO);
	assert_int_equal(lsm_log_writer_add(w, p, 50), -EIO);
	assert_non_null(strstr(lsm_last_error(), fx->path));
	env_fault_clear(fe);
	/* The disk works again, but the writer does not try. */
	writes = env_fault_count(fe, FAULT_WRITE);
	assert_int_equal(lsm_log_writer_add(w, p, 50), -EIO);
	assert_int_equal(lsm_log_writer_sync(w), -EIO);
	assert_int_equal(env_fault_count(fe, FAULT_WRITE), writes);
	assert_int_equal(lsm_log_writer_size(w), 16 + 108);
	assert_int_equal(lsm_log_writer_close(w), -EIO);

	/* A short write tears the tail; the reader drops it. */
	assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, p, 100), 0);
	env_fault_short_write(fe, 1, 37);
	assert_int_equal(lsm_log_writer_add(w, p, 100), -EIO);
	env_fault_clear(fe);
	assert_int_equal(lsm_log_writer_add(w, p, 10), -EIO);
	assert_int_equal(lsm_log_writer_close(w), -EIO);
	expect_end(read_upto(fx, false, one, 1, -1), 37);

	/* A big record goes out in two writes; failing the second tears it. */
	assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, p, 100), 0);
	env_fault_disk_full_after(fe, 8 + 1000);
	assert_int_equal(lsm_log_writer_add(w, b, 2u << 20), -ENOSPC);
	assert_int_equal(lsm_log_writer_add(w, p, 1), -ENOSPC);
	assert_int_equal(lsm_log_writer_close(w), -ENOSPC);
	env_fault_clear(fe);
	expect_end(read_upto(fx, false, one, 1, -1), 8 + 1000);

	/* A failed sync fails the writer too. */
	assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), 0);
	assert_int_equal(lsm_log_writer_add(w, p, 100), 0);
	env_fault_fail_nth(fe, FAULT_SYNC, 1, EIO);
	assert_int_equal(lsm_log_writer_sync(w), -EIO);
	env_fault_clear(fe);
	assert_int_equal(lsm_log_writer_add(w, p, 100), -EIO);
	assert_int_equal(lsm_log_writer_sync(w), -EIO);
	assert_int_equal(lsm_log_writer_close(w), -EIO);

	free(p);
	free(b);
	env_fault_free(fe);
}

static void test_log_open_failures(void **state)
{
	struct fixture *fx = *state;
	lsm_env *fe = env_fault_new(fx->env);
	lsm_log_writer *w = NULL;
	lsm_log_reader *r = NULL;
	lsm_slice rec;
	const enum env_fault_op ops[] = { FAULT_OPEN, FAULT_WRITE, FAULT_SYNC };

	assert_non_null(fe);
	for (unsigned i = 0; i < 3; i++) {
		env_fault_fail_nth(fe, ops[i], 1, ENOSPC);
		assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), -ENOSPC);
		assert_null(w);
		env_fault_clear(fe);
	}
	write_log(fx, fe, ten, 10);
	env_fault_fail_nth(fe, FAULT_OPEN, 1, EACCES);
	assert_int_equal(lsm_log_reader_open(fe, fx->path, KIND, false, &r), -EACCES);
	assert_null(r);
	env_fault_fail_nth(fe, FAULT_READ, 1, EIO);
	assert_int_equal(lsm_log_reader_open(fe, fx->path, KIND, false, &r), -EIO);
	assert_null(r);
	env_fault_fail_nth(fe, FAULT_TRUNCATE, 1, EIO);
	assert_int_equal(lsm_log_writer_reopen(fe, fx->path, KIND, 16, &w), -EIO);
	assert_null(w);
	env_fault_clear(fe);

	/* A read error past the first window is reported, and sticks. */
	{
		size_t sizes[40];
		int rc;
		unsigned got = 0;
		for (unsigned i = 0; i < 40; i++)
			sizes[i] = 50000;
		write_log(fx, fe, sizes, 40);
		assert_int_equal(lsm_log_reader_open(fe, fx->path, KIND, false, &r), 0);
		env_fault_fail_nth(fe, FAULT_READ, 1, EIO);
		while ((rc = lsm_log_reader_next(r, &rec)) == 1)
			got++;
		assert_int_equal(rc, -EIO);
		assert_true(got > 0 && got < 40);
		assert_non_null(strstr(lsm_last_error(), fx->path));
		assert_int_equal(lsm_log_reader_next(r, &rec), -EIO);
		lsm_log_reader_close(r);
	}
	env_fault_free(fe);
}

static void test_log_crash_keeps_synced_prefix(void **state)
{
	struct fixture *fx = *state;
	lsm_env *fe = env_fault_new(fx->env);
	lsm_log_writer *w = NULL;
	uint64_t seed = test_seed("test_log_crash_keeps_synced_prefix");
	unsigned synced = 0, written = 0;
	size_t sizes[200];

	assert_non_null(fe);
	assert_int_equal(lsm_log_writer_open(fe, fx->path, KIND, &w), 0);
	assert_int_equal(env_sync_dir(fe, fx->dir), 0);
	for (unsigned i = 0; i < 200; i++) {
		size_t len = sizes[i] = test_rand(&seed) % 3000;
		uint8_t *p = make_rec(i, len);
		assert_int_equal(lsm_log_writer_add(w, p, len), 0);
		free(p);
		written++;
		if (test_rand(&seed) % 10 == 0) {
			assert_int_equal(lsm_log_writer_sync(w), 0);
			synced = written;
		}
	}
	assert_int_equal(lsm_log_writer_close(w), 0);
	assert_int_equal(env_fault_crash(fe), 0);

	/* Exactly the synced records survive, and nothing after them. */
	expect_end(read_upto(fx, false, sizes, synced, -1), 0);
	env_fault_free(fe);
}


/* ---- version 2: the WAL's framing, with zeros written ahead ---------------- */

#define MARKER 16   /* a sync marker: header and 8-byte payload */

static uint64_t test_file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Adds record i; returns the offset of its header (after the sync marker
 * the writer puts before the first record after a sync). */
static uint64_t v2_add(lsm_log_writer *w, const size_t *sizes, unsigned i, bool marker)
{
	uint8_t *rec = make_rec(i, sizes[i]);
	uint64_t before = lsm_log_writer_size(w);
	assert_int_equal(lsm_log_writer_add(w, rec, sizes[i]), 0);
	assert_int_equal(lsm_log_writer_size(w), before + (marker ? MARKER : 0) + 8 + sizes[i]);
	free(rec);
	return before + (marker ? MARKER : 0);
}

static lsm_log_reader *v2_reader(struct fixture *fx, bool skip)
{
	return open_reader_kind(fx, LSM_LOG_KIND_WAL, skip);
}

/* Records 0-2 synced (the second sync writes zeros ahead), 3-5 written over
 * the zeros and never synced.  Sets off[i] to record i's header offset and
 * returns the file's size. */
static uint64_t v2_write(struct fixture *fx, const size_t *sizes, uint64_t *off)
{
	lsm_log_writer *w = NULL;
	uint64_t size;

	assert_int_equal(lsm_log_writer_open(fx->env, fx->path, LSM_LOG_KIND_WAL, &w), 0);
	off[0] = v2_add(w, sizes, 0, false);
	assert_int_equal(lsm_log_writer_sync(w), 0);
	assert_int_equal(test_file_size(fx->path), off[0] + 8 + sizes[0]);   /* first sync: no zeros */
	off[1] = v2_add(w, sizes, 1, true);
	off[2] = v2_add(w, sizes, 2, false);
	assert_int_equal(lsm_log_writer_sync(w), 0);
	size = test_file_size(fx->path);
	assert_int_equal(size, off[2] + 8 + sizes[2] + (1u << 20));
	off[3] = v2_add(w, sizes, 3, true);
	for (unsigned i = 4; i < 6; i++)
		off[i] = v2_add(w, sizes, i, false);
	off[6] = off[5] + 8 + sizes[5];
	assert_int_equal(test_file_size(fx->path), size);   /* overwrites, no growth */
	assert_int_equal(lsm_log_writer_close(w), 0);
	return size;
}

static void test_log_v2_round_trip(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[6] = { 100, 4096 + 40, 0, 70000, 1, 5000 };
	uint64_t off[7];
	uint8_t *buf;
	size_t len;
	lsm_log_reader *r;

	v2_write(fx, sizes, off);
	slurp(fx, &buf, &len);
	assert_memory_equal(buf, "LSMLOG\0\0\2\0\0\0\1\0\0\0", 16);
	/* Records written over zeros (after the second sync) have bit 30 of
	 * their length set. */
	for (unsigned i = 0; i < 6; i++) {
		const uint8_t *h = buf + off[i];
		assert_int_equal(get_fixed32(h + 4), sizes[i] | (i >= 3 ? 1u << 30 : 0));
		assert_int_equal(get_fixed32(h), lsm_checksum2(h + 4, 4, h + 8, sizes[i]));
	}
	/* The first record after each sync has a marker before it (bit 31):
	 * how far the sync reached. */
	const uint8_t *m = buf + off[1] - MARKER;
	assert_int_equal(get_fixed32(m + 4), 8u | (1u << 31));
	assert_int_equal(get_fixed64(m + 8), off[0] + 8 + sizes[0]);
	assert_int_equal(get_fixed32(m), lsm_checksum(m + 4, 12));
	m = buf + off[3] - MARKER;
	assert_int_equal(get_fixed32(m + 4), 8u | (1u << 31) | (1u << 30));
	assert_int_equal(get_fixed64(m + 8), off[2] + 8 + sizes[2]);
	free(buf);

	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 6; i++)
		expect_rec(r, i, sizes[i]);
	assert_int_equal(lsm_log_reader_offset(r), off[6]);
	expect_end(r, 0);   /* the zeros ahead are not a torn tail */

	/* Reopened, it appends in version 2 where the records end, a marker
	 * first (the reopen synced). */
	lsm_log_writer *w = NULL;
	assert_int_equal(lsm_log_writer_reopen(fx->env, fx->path, LSM_LOG_KIND_WAL, off[6], &w), 0);
	assert_int_equal(test_file_size(fx->path), off[6]);
	const size_t more[7] = { 0, 0, 0, 0, 0, 0, 33 };
	v2_add(w, more, 6, true);
	assert_int_equal(lsm_log_writer_close(w), 0);
	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 6; i++)
		expect_rec(r, i, sizes[i]);
	expect_rec(r, 6, 33);
	expect_end(r, 0);
}

/* The pages of unsynced records may reach the disk in any order: an unsynced
 * record torn with later ones whole is a crash's tail, not damage. */
static void test_log_v2_unsynced_out_of_order(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[6] = { 300, 300, 300, 9000, 300, 300 };
	uint64_t off[7];
	uint8_t *buf, *copy;
	size_t len;
	lsm_log_reader *r;

	v2_write(fx, sizes, off);
	slurp(fx, &buf, &len);
	copy = malloc(len);
	assert_non_null(copy);

	/* Record 3's second page never written: zeros in its middle. */
	memcpy(copy, buf, len);
	memset(copy + off[3] + 4096, 0, 4096);
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 3; i++)
		expect_rec(r, i, sizes[i]);
	assert_int_equal(lsm_log_reader_offset(r), off[3] - MARKER);
	expect_end(r, len - off[3]);   /* its marker was whole */

	/* Its first page never written (marker and header): zeros with
	 * records behind. */
	memcpy(copy, buf, len);
	memset(copy + off[3] - MARKER, 0, 4096);
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 3; i++)
		expect_rec(r, i, sizes[i]);
	expect_end(r, len - (off[3] - MARKER));

	/* But record 1 was synced, as the marker before record 3 says:
	 * damaged, it is damage, named by file and offset, and skip_corrupt
	 * skips just it. */
	memcpy(copy, buf, len);
	copy[off[1] + 100] ^= 0x40;
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	expect_rec(r, 0, sizes[0]);
	expect_err(r, -EBADMSG);
	assert_non_null(strstr(lsm_last_error(), fx->path));
	char where[64];
	snprintf(where, sizeof(where), "offset %" PRIu64, off[1]);
	assert_non_null(strstr(lsm_last_error(), where));
	r = v2_reader(fx, true);
	expect_rec(r, 0, sizes[0]);
	for (unsigned i = 2; i < 6; i++)
		expect_rec(r, i, sizes[i]);
	assert_int_equal(lsm_log_reader_skipped(r), 1);
	expect_end(r, 0);

	/* Record 2 too, zeroed header and all. */
	memcpy(copy, buf, len);
	memset(copy + off[2], 0, 8);
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	expect_rec(r, 0, sizes[0]);
	expect_rec(r, 1, sizes[1]);
	expect_err(r, -EBADMSG);

	/* Record 4 damaged, with record 5 whole behind it: never synced, over
	 * zeros: a torn tail. */
	memcpy(copy, buf, len);
	copy[off[4] + 20] ^= 1;
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 4; i++)
		expect_rec(r, i, sizes[i]);
	expect_end(r, len - off[4]);

	/* Without zeros ahead (records 1 and 2 follow the first sync, which
	 * wrote none), records are appended as in version 1: a damaged one
	 * with a whole one behind it is damage even though never synced. */
	{
		lsm_log_writer *w = NULL;
		assert_int_equal(lsm_log_writer_open(fx->env, fx->path, LSM_LOG_KIND_WAL, &w), 0);
		off[0] = v2_add(w, sizes, 0, false);
		assert_int_equal(lsm_log_writer_sync(w), 0);
		off[1] = v2_add(w, sizes, 1, true);
		off[2] = v2_add(w, sizes, 2, false);
		assert_int_equal(lsm_log_writer_close(w), 0);
		flip(fx, off[1] + 50, 0x10);
		r = v2_reader(fx, false);
		expect_rec(r, 0, sizes[0]);
		expect_err(r, -EBADMSG);
		/* The same damage in the last record is a torn tail. */
		flip(fx, off[1] + 50, 0x10);
		flip(fx, off[2] + 50, 0x10);
		r = v2_reader(fx, false);
		expect_rec(r, 0, sizes[0]);
		expect_rec(r, 1, sizes[1]);
		expect_end(r, 8 + sizes[2]);
	}

	/* A version-1 WAL (an older store's) still reads. */
	free(copy);
	write_log(fx, fx->env, ten, 4);
	slurp(fx, &copy, &len);
	put_fixed32(copy + 12, LSM_LOG_KIND_WAL);
	spit(fx, copy, len);
	r = v2_reader(fx, false);
	for (unsigned i = 0; i < 4; i++)
		expect_rec(r, i, ten[i]);
	expect_end(r, 0);
	free(copy);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_reopen_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_torn_tail_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_checksum_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_skip_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_skip_corrupt_bad_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_mismatch_at_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_zero_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_bad_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_short_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_length_over_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_writer_failure_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_open_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_crash_keeps_synced_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_v2_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_v2_unsynced_out_of_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
