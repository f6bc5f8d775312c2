/*
 * test_vlog.c - unit tests for vlog/, the value log: the pointer codec;
 * round trips from empty to 16 MiB values (buffered and direct writes);
 * roll-over, seals and reopening; scans; segment removal; corruption of
 * values, headers and pointers (errors name the segment and offset); torn
 * tails cut at every byte and zero-filled; write, sync and create failures
 * and power cuts through the fault env; concurrent readers and scanners
 * while appending; and the bound on cached open files.  Files live in a
 * tmpdir on the POSIX env, wrapped in the fault env where a test says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vlog.h"
#include "../../util/coding.h"
#include "../../util/env.h"
#include "../../util/errmsg.h"
#include "env_test.h"
#include "testutil.h"

struct fixture {
	char *dir;
	lsm_env *env;                /* posix, or a fault env over it */
	lsm_env *fault;              /* the fault env when env is one, else NULL */
	atomic_uint_fast64_t next;   /* file numbers handed to the vlog */
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->dir = test_tmpdir("test_vlog");
	fx->env = lsm_env_posix();
	atomic_init(&fx->next, 2);
	*state = fx;
	return 0;
}

static int setup_fault(void **state)
{
	setup(state);
	struct fixture *fx = *state;
	fx->fault = fx->env = env_fault_new(lsm_env_posix());
	assert_non_null(fx->env);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	if (fx->fault)
		env_fault_free(fx->fault);
	test_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

static uint64_t next_number(void *arg)
{
	struct fixture *fx = arg;
	return atomic_fetch_add(&fx->next, 1);
}

static vlog *open_log(struct fixture *fx, uint64_t segment_size, int max_open)
{
	vlog_options opt;
	vlog *v = NULL;
	vlog_options_init(&opt);
	if (segment_size)
		opt.segment_size = segment_size;
	if (max_open)
		opt.max_open_segments = max_open;
	int r = vlog_open(fx->env, fx->dir, &opt, next_number, fx, &v);
	if (r < 0)
		fail_msg("vlog_open: %d %s", r, lsm_last_error());
	return v;
}

/* Record i: key "key-%08u", a value of len_of(i) bytes depending on i. */
static size_t make_key(unsigned i, char *buf)
{
	return (size_t)sprintf(buf, "key-%08u", i);
}

/* The inverse of make_key (keys are not NUL-terminated). */
static bool parse_key(const void *key, size_t klen, unsigned *ret)
{
	char buf[16];
	if (klen != 12)
		return false;
	memcpy(buf, key, 12);
	buf[12] = '\0';
	return sscanf(buf, "key-%8u", ret) == 1;
}

static uint8_t *make_val(unsigned i, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(i * 131 + k * 7 + (k >> 9));
	return p;
}

static bool val_ok(unsigned i, const uint8_t *p, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if (p[k] != (uint8_t)(i * 131 + k * 7 + (k >> 9)))
			return false;
	return true;
}

static void append_rec(vlog *v, unsigned i, size_t len, struct vlog_ptr *ret)
{
	char key[32];
	size_t klen = make_key(i, key);
	uint8_t *val = make_val(i, len);
	int r = vlog_append(v, key, klen, val, len, ret);
	free(val);
	if (r < 0)
		fail_msg("vlog_append %u: %d %s", i, r, lsm_last_error());
}

static void check_rec(vlog *v, unsigned i, size_t len, const struct vlog_ptr *p)
{
	char key[32];
	size_t klen = make_key(i, key), rklen, rvlen;
	void *rkey, *rval;
	int r = vlog_read(v, p, &rkey, &rklen, &rval, &rvlen);
	if (r < 0)
		fail_msg("vlog_read %u: %d %s", i, r, lsm_last_error());
	assert_int_equal(rklen, klen);
	assert_memory_equal(rkey, key, klen);
	assert_int_equal(rvlen, len);
	assert_true(val_ok(i, rval, len));
	free(rkey);
	free(rval);
}

static void seg_path(struct fixture *fx, uint64_t seg, char *buf)
{
	snprintf(buf, 4096, "%s/%06llu.vlog", fx->dir, (unsigned long long)seg);
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void xor_byte(const char *path, uint64_t off, uint8_t x)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= x;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static void cut_file(const char *path, uint64_t size)
{
	assert_int_equal(truncate(path, (off_t)size), 0);
}

static void append_zeros(const char *path, size_t n)
{
	uint64_t size = file_size(path);
	cut_file(path, size + n);
}

static void expect_error(const char *a, const char *b)
{
	const char *m = lsm_last_error();
	if (!strstr(m, a) || (b && !strstr(m, b)))
		fail_msg("error text \"%s\" lacks \"%s\" / \"%s\"", m, a, b ? b : "");
}

/* Counts scanned records and checks each against make_key/make_val. */
struct scan_check {
	unsigned n;
	unsigned stop_at;            /* return 1 at this record; 0 = never */
	int fail_with;               /* return this at stop_at instead */
	struct vlog_ptr last;
};

static int scan_cb(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen,
                   const void *value, size_t vlen)
{
	struct scan_check *sc = arg;
	unsigned i;
	char kbuf[32];
	assert_true(parse_key(key, klen, &i));
	assert_int_equal(make_key(i, kbuf), klen);
	assert_true(val_ok(i, value, vlen));
	sc->n++;
	sc->last = *ptr;
	if (sc->stop_at && sc->n == sc->stop_at)
		return sc->fail_with ? sc->fail_with : 1;
	return 0;
}

/* The power fails now: after one more sync, which the test makes itself on
 * a directory of its own, so that it makes nothing of the log's durable. */
static void cut_power_now(struct fixture *fx)
{
	char aside[4096];
	snprintf(aside, sizeof(aside), "%s/aside", fx->dir);
	int r = env_mkdir(fx->env, aside);
	assert_true(r == 0 || r == -EEXIST);
	env_fault_power_cut_after_sync(fx->env, 1);
	assert_int_equal(env_sync_dir(fx->env, aside), 0);
	assert_true(env_fault_is_down(fx->env));
}

/* ---- codec and round trips --------------------------------------------- */

static void test_vlog_ptr_codec(void **state)
{
	(void)state;
	const struct vlog_ptr cases[] = {
		{ 1, 24, 7 }, { 7, 64u << 20, 65563 }, { UINT64_MAX, UINT64_MAX, UINT32_MAX },
		{ 123456, 1ull << 40, 300 },
	};
	uint8_t buf[VLOG_PTR_MAX_ENCODED + 4];
	struct vlog_ptr p;
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = vlog_ptr_encode(&cases[i], buf);
		assert_true(n >= 3 && n <= VLOG_PTR_MAX_ENCODED);
		assert_int_equal(vlog_ptr_decode(buf, n, &p), 0);
		assert_true(p.segment == cases[i].segment && p.offset == cases[i].offset &&
		            p.length == cases[i].length);
		for (size_t k = 0; k < n; k++)    /* every prefix is truncated */
			assert_int_equal(vlog_ptr_decode(buf, k, &p), -EUCLEAN);
		buf[n] = 0;
		assert_int_equal(vlog_ptr_decode(buf, n + 1, &p), -EUCLEAN);
	}
	n = vlog_ptr_encode(&(struct vlog_ptr){ 5, 1000, 300 }, buf);
	assert_int_equal(n, 5);          /* a typical pointer is small */
	const struct vlog_ptr bad[] = { { 0, 100, 10 }, { 3, 23, 10 }, { 3, 100, 6 } };
	for (size_t i = 0; i < 3; i++) {
		n = vlog_ptr_encode(&bad[i], buf);
		assert_int_equal(vlog_ptr_decode(buf, n, &p), -EUCLEAN);
	}
	memset(buf, 0xff, 11);           /* a varint64 running past 64 bits */
	assert_int_equal(vlog_ptr_decode(buf, 11, &p), -EUCLEAN);
}

static void test_vlog_roundtrip_small(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[200], pe;
	void *k, *val;
	size_t kl, vl;

	assert_int_equal(vlog_active_segment(v), 0);
	for (unsigned i = 0; i < 200; i++)
		append_rec(v, i, (i * 37) % 1000, &p[i]);
	assert_int_equal(vlog_append(v, NULL, 0, NULL, 0, &pe), 0);
	assert_int_equal(vlog_flush(v), 0);
	assert_int_equal(vlog_active_segment(v), 2);
	for (unsigned i = 0; i < 200; i++) {
		assert_int_equal(p[i].segment, 2);
		assert_int_equal(p[i].offset, i ? p[i - 1].offset + p[i - 1].length : 24);
		check_rec(v, i, (i * 37) % 1000, &p[i]);
	}
	/* Value only; and the empty record. */
	assert_int_equal(vlog_read(v, &p[5], NULL, NULL, &val, &vl), 0);
	assert_true(vl == 185 && val_ok(5, val, vl));
	free(val);
	assert_int_equal(vlog_read(v, &pe, &k, &kl, &val, &vl), 0);
	assert_true(kl == 0 && vl == 0 && k && val);
	free(k);
	free(val);
	assert_int_equal(vlog_verify_ptr(v, &p[199]), 1);
	assert_int_equal(vlog_read(v, NULL, NULL, NULL, &val, &vl), -EINVAL);
	assert_int_equal(vlog_read(v, &p[0], &k, NULL, &val, &vl), -EINVAL);
	assert_int_equal(vlog_append(v, NULL, 3, "x", 1, &pe), -EINVAL);
	assert_int_equal(vlog_append(v, "k", 1, NULL, 1, &pe), -EINVAL);
	assert_int_equal(vlog_append(v, "k", 1, "x", 1, NULL), -EINVAL);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_roundtrip_large(void **state)
{
	struct fixture *fx = *state;
	const size_t sizes[] = { 0, 1, (128u << 10) - 1, 128u << 10, (1u << 20) + 3, 5000, 16u << 20, 77 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct vlog_ptr p[N];
	vlog *v = open_log(fx, 0, 0);

	for (unsigned i = 0; i < N; i++)
		append_rec(v, i, sizes[i], &p[i]);
	assert_int_equal(vlog_sync(v), 0);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(p[i].segment, 2);
		check_rec(v, i, sizes[i], &p[i]);
	}
	/* Records are laid end to end whichever way they were written. */
	for (unsigned i = 1; i < N; i++)
		assert_int_equal(p[i].offset, p[i - 1].offset + p[i - 1].length);
	assert_int_equal(vlog_close(v), 0);
	v = open_log(fx, 0, 0);
	for (unsigned i = 0; i < N; i++)
		check_rec(v, i, sizes[i], &p[i]);
	assert_int_equal(vlog_close(v), 0);
}

/* A pointer is readable after the flush that follows its append. */
static void test_vlog_flush_makes_readable(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr a, b;

	append_rec(v, 1, 100, &a);
	append_rec(v, 2, 100, &b);
	assert_int_equal(vlog_verify_ptr(v, &b), 0);
	assert_int_equal(vlog_flush(v), 0);
	assert_int_equal(vlog_verify_ptr(v, &a), 1);
	assert_int_equal(vlog_verify_ptr(v, &b), 1);
	assert_int_equal(vlog_flush(v), 0);      /* nothing buffered */
	assert_int_equal(vlog_close(v), 0);
}

/* ---- segments ----------------------------------------------------------- */

static void test_vlog_rollover(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 4096, 0);
	struct vlog_ptr p[100], big;
	struct vlog_segment_info *segs;
	size_t n;
	char path[4096];

	for (unsigned i = 0; i < 100; i++)
		append_rec(v, i, 250 + i, &p[i]);
	append_rec(v, 100, 10000, &big);        /* larger than a segment */
	assert_int_equal(vlog_flush(v), 0);
	for (unsigned i = 0; i < 100; i++) {
		check_rec(v, i, 250 + i, &p[i]);
		assert_true(p[i].offset + p[i].length + 23 <= 4096);
		if (i)
			assert_true(p[i].segment == p[i - 1].segment ||
			            (p[i].segment == p[i - 1].segment + 1 && p[i].offset == 24));
	}
	assert_true(p[99].segment >= 2 + 6);
	assert_int_equal(big.segment, p[99].segment + 1);
	assert_int_equal(big.offset, 24);
	check_rec(v, 100, 10000, &big);
	assert_int_equal(vlog_active_segment(v), big.segment);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(n, big.segment - 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(segs[i].segment, 2 + i);
		bool last = i == n - 1;
		assert_int_equal(segs[i].flags, last ? VLOG_SEGMENT_ACTIVE : VLOG_SEGMENT_SEALED);
		seg_path(fx, segs[i].segment, path);
		assert_int_equal(segs[i].size, file_size(path));
		assert_true(last || segs[i].size <= 4096);
		assert_true(segs[i].records >= 1);
	}
	free(segs);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_reopen(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 4096, 0);
	struct vlog_ptr p[40], q;
	struct vlog_segment_info *segs;
	size_t n;
	char path[4096];

	for (unsigned i = 0; i < 40; i++)
		append_rec(v, i, 300, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	assert_int_equal(vlog_close(NULL), 0);
	v = open_log(fx, 4096, 0);
	assert_int_equal(vlog_active_segment(v), 0);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(n, p[39].segment - 1);
	for (size_t i = 0; i < n; i++) {
		seg_path(fx, segs[i].segment, path);
		assert_int_equal(segs[i].size, file_size(path));
		assert_int_equal(segs[i].flags, VLOG_SEGMENT_SEALED);   /* closing sealed the last one */
	}
	free(segs);
	for (unsigned i = 0; i < 40; i++)
		check_rec(v, i, 300, &p[i]);
	append_rec(v, 40, 10, &q);
	assert_int_equal(q.segment, p[39].segment + 1);             /* old segments stay read-only */
	assert_int_equal(vlog_flush(v), 0);
	check_rec(v, 40, 10, &q);
	assert_int_equal(vlog_close(v), 0);
	/* Stray files are not segments. */
	snprintf(path, sizeof(path), "%s/000099.sst", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	v = open_log(fx, 4096, 0);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(segs[n - 1].segment, q.segment);
	free(segs);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_scan(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 1u << 20, 0);
	struct vlog_ptr p[50];
	struct vlog_scan_result res;
	struct scan_check sc = { 0 };

	for (unsigned i = 0; i < 50; i++)
		append_rec(v, i, i * 100, &p[i]);
	assert_int_equal(vlog_flush(v), 0);
	append_rec(v, 50, 10, &(struct vlog_ptr){ 0 });   /* buffered: not scanned */
	/* The active segment, up to what was flushed. */
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_int_equal(sc.n, 50);
	assert_true(res.records == 50 && res.tail_dropped == 0 && !res.sealed);
	assert_int_equal(res.end, p[49].offset + p[49].length);
	assert_true(sc.last.offset == p[49].offset && sc.last.length == p[49].length);
	assert_int_equal(vlog_close(v), 0);

	v = open_log(fx, 1u << 20, 0);
	sc = (struct scan_check){ 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_true(sc.n == 51 && res.records == 51 && res.sealed && res.tail_dropped == 0);
	/* Stopping early, cleanly and with an error. */
	sc = (struct scan_check){ .stop_at = 7 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_int_equal(sc.n, 7);
	assert_int_equal(res.records, 7);
	assert_int_equal(res.end, p[6].offset + p[6].length);
	sc = (struct scan_check){ .stop_at = 3, .fail_with = -ECANCELED };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, NULL), -ECANCELED);
	assert_int_equal(vlog_scan(v, 77, scan_cb, &sc, NULL), -ENOENT);
	expect_error("000077.vlog", NULL);
	assert_int_equal(vlog_scan(v, 2, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_remove(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 4096, 0);
	struct vlog_ptr p[30];
	struct vlog_segment_info *segs;
	size_t n, vl;
	void *val;
	char path[4096];

	for (unsigned i = 0; i < 30; i++)
		append_rec(v, i, 500, &p[i]);
	assert_int_equal(vlog_flush(v), 0);
	check_rec(v, 0, 500, &p[0]);             /* segment 2 is now in the cache */
	assert_int_equal(vlog_remove_segment(v, vlog_active_segment(v)), -EBUSY);
	assert_int_equal(vlog_remove_segment(v, 1000), -ENOENT);
	assert_int_equal(vlog_remove_segment(v, 2), 0);
	seg_path(fx, 2, path);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(vlog_read(v, &p[0], NULL, NULL, &val, &vl), -EUCLEAN);
	expect_error("000002.vlog", "offset 24");
	assert_int_equal(vlog_verify_ptr(v, &p[0]), 0);
	assert_int_equal(vlog_remove_segment(v, 2), -ENOENT);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(segs[0].segment, 3);
	free(segs);
	for (unsigned i = 0; i < 30; i++)
		if (p[i].segment != 2)
			check_rec(v, i, 500, &p[i]);
	/* A rolled segment whose sync is still pending can go too. */
	uint64_t s3 = 3;
	assert_int_equal(vlog_remove_segment(v, s3), 0);
	assert_int_equal(vlog_sync(v), 0);
	assert_int_equal(vlog_close(v), 0);
	v = open_log(fx, 4096, 0);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(segs[0].segment, 4);
	free(segs);
	assert_int_equal(vlog_close(v), 0);
}

/* ---- corruption --------------------------------------------------------- */

static void test_vlog_corrupt_value(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[10];
	struct scan_check sc = { 0 };
	void *val;
	size_t vl;
	char path[4096], off[64];

	for (unsigned i = 0; i < 10; i++)
		append_rec(v, i, 1000, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	seg_path(fx, 2, path);
	xor_byte(path, p[4].offset + p[4].length - 10, 0x40);
	v = open_log(fx, 0, 0);
	assert_int_equal(vlog_read(v, &p[4], NULL, NULL, &val, &vl), -EBADMSG);
	snprintf(off, sizeof(off), "offset %llu", (unsigned long long)p[4].offset);
	expect_error("000002.vlog", off);
	expect_error("checksum", NULL);
	assert_int_equal(vlog_verify_ptr(v, &p[4]), 0);
	check_rec(v, 3, 1000, &p[3]);
	check_rec(v, 5, 1000, &p[5]);
	/* A sealed segment must be whole: the scan stops with the error. */
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, NULL), -EBADMSG);
	expect_error("000002.vlog", off);
	assert_int_equal(sc.n, 4);
	assert_int_equal(vlog_close(v), 0);
	/* A damaged length in the middle is damage, not a torn tail. */
	xor_byte(path, p[4].offset + p[4].length - 10, 0x40);
	xor_byte(path, p[6].offset + 6, 0x7f);     /* the vlen varint */
	v = open_log(fx, 0, 0);
	sc = (struct scan_check){ 0 };
	int r = vlog_scan(v, 2, scan_cb, &sc, NULL);
	assert_true(r == -EBADMSG || r == -EUCLEAN);
	assert_int_equal(sc.n, 6);
	assert_int_equal(vlog_close(v), 0);
}

/* Two records replaced by one valid record of the same total length: every
 * checksum holds, but the seal's record count does not. */
static void test_vlog_seal_count_mismatch(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[4];
	struct vlog_scan_result res;
	uint8_t rec[600];
	char path[4096], key[32];

	for (unsigned i = 0; i < 4; i++)
		append_rec(v, i, 200, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	size_t total = p[1].length + p[2].length, klen = make_key(777, key);
	size_t vlen = total - 4 - 1 - 1 - 2 - klen;   /* a 2-byte vlen varint */
	uint8_t *val = make_val(777, vlen);
	uint8_t *q = rec + 4;
	*q++ = 1;
	*q++ = (uint8_t)klen;
	*q++ = (uint8_t)(vlen | 0x80);
	*q++ = (uint8_t)(vlen >> 7);
	memcpy(q, key, klen);
	memcpy(q + klen, val, vlen);
	free(val);
	put_fixed32(rec, lsm_checksum(rec + 4, total - 4));
	seg_path(fx, 2, path);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, rec, total, (off_t)p[1].offset), (ssize_t)total);
	close(fd);
	v = open_log(fx, 0, 0);
	struct scan_check sc = { 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), -EUCLEAN);
	expect_error("000002.vlog", "seal counts 4");
	assert_int_equal(sc.n, 3);
	check_rec(v, 777, vlen, &(struct vlog_ptr){ 2, p[1].offset, (uint32_t)total });
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_corrupt_header(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p;
	void *val;
	size_t vl;
	char path[4096], other[4096];
	uint8_t h[24];

	append_rec(v, 1, 100, &p);
	assert_int_equal(vlog_close(v), 0);
	seg_path(fx, 2, path);
	const struct { uint64_t off; uint8_t x; int err; const char *what; } cases[] = {
		{ 0, 0x01, -EUCLEAN, "magic" }, { 14, 0x01, -EBADMSG, "checksum" },
	};
	for (size_t i = 0; i < 2; i++) {
		xor_byte(path, cases[i].off, cases[i].x);
		v = open_log(fx, 0, 0);
		assert_int_equal(vlog_read(v, &p, NULL, NULL, &val, &vl), cases[i].err);
		expect_error("000002.vlog", cases[i].what);
		assert_int_equal(vlog_verify_ptr(v, &p), 0);
		assert_int_equal(vlog_scan(v, 2, scan_cb, &(struct scan_check){ 0 }, NULL), cases[i].err);
		assert_int_equal(vlog_close(v), 0);
		xor_byte(path, cases[i].off, cases[i].x);
	}
	/* A newer format version, with a valid checksum. */
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, 24, 0), 24);
	uint8_t save[24];
	memcpy(save, h, 24);
	put_fixed32(h + 8, 2);
	put_fixed32(h + 20, lsm_checksum(h, 20));
	assert_int_equal(pwrite(fd, h, 24, 0), 24);
	v = open_log(fx, 0, 0);
	assert_int_equal(vlog_read(v, &p, NULL, NULL, &val, &vl), -ENOTSUP);
	assert_true(vlog_verify_ptr(v, &p) == -ENOTSUP);
	assert_int_equal(vlog_close(v), 0);
	assert_int_equal(pwrite(fd, save, 24, 0), 24);
	close(fd);
	/* A segment renamed to another number. */
	seg_path(fx, 9, other);
	assert_int_equal(rename(path, other), 0);
	v = open_log(fx, 0, 0);
	p.segment = 9;
	assert_int_equal(vlog_read(v, &p, NULL, NULL, &val, &vl), -EUCLEAN);
	expect_error("000009.vlog", "segment 2");
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_pointer_mismatch(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[3], q;
	void *val;
	size_t vl;
	char path[4096];

	for (unsigned i = 0; i < 3; i++)
		append_rec(v, i, 200, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	v = open_log(fx, 0, 0);
	const struct vlog_ptr bad[] = {
		{ 2, p[1].offset, p[1].length - 1 }, { 2, p[1].offset, p[1].length + 1 },
		{ 2, p[1].offset + 1, p[1].length }, { 2, p[2].offset + p[2].length, 23 },  /* the seal */
		{ 2, p[2].offset + 100, 5000 }, { 2, 10, 100 }, { 3, 24, 100 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q = bad[i];
		assert_int_equal(vlog_read(v, &q, NULL, NULL, &val, &vl), -EUCLEAN);
		assert_true(strstr(lsm_last_error(), i == 6 ? "000003.vlog" : "000002.vlog"));
		assert_int_equal(vlog_verify_ptr(v, &q), 0);
	}
	check_rec(v, 1, 200, &p[1]);
	assert_int_equal(vlog_close(v), 0);
	seg_path(fx, 2, path);
	assert_true(file_size(path) == p[2].offset + p[2].length + 23);
}

/* Cuts the last record at every byte: reads say truncated, verify says
 * not there, the scan of the (now unsealed) segment ends cleanly. */
static void test_vlog_torn_tail_every_offset(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[5];
	struct vlog_scan_result res;
	void *val;
	size_t vl;
	char path[4096];

	for (unsigned i = 0; i < 5; i++)
		append_rec(v, i, 40, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	seg_path(fx, 2, path);
	v = open_log(fx, 0, 0);
	for (uint64_t cut = p[4].offset + p[4].length; cut >= p[4].offset; cut--) {
		cut_file(path, cut);
		bool whole = cut == p[4].offset + p[4].length;
		struct scan_check sc = { 0 };
		assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
		assert_int_equal(sc.n, whole ? 5 : 4);
		assert_true(!res.sealed && res.records == sc.n);
		assert_int_equal(res.end, whole ? cut : p[4].offset);
		assert_int_equal(res.tail_dropped, whole ? 0 : cut - p[4].offset);
		assert_int_equal(vlog_verify_ptr(v, &p[4]), whole ? 1 : 0);
		if (!whole) {
			assert_int_equal(vlog_read(v, &p[4], NULL, NULL, &val, &vl), -EUCLEAN);
			expect_error("000002.vlog", "cut short");
		}
		check_rec(v, 3, 40, &p[3]);
	}
	/* Down to the header and below: an empty segment. */
	for (uint64_t cut = 24; cut != (uint64_t)-1; cut -= 8) {
		struct scan_check sc = { 0 };
		cut_file(path, cut);
		assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
		assert_true(sc.n == 0 && res.records == 0);
		if (cut < 24)
			assert_int_equal(res.tail_dropped, cut);
		if (cut == 0)
			break;
	}
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_torn_tail_zeros_and_damage(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[6];
	struct vlog_scan_result res;
	char path[4096];

	for (unsigned i = 0; i < 6; i++)
		append_rec(v, i, 500, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	seg_path(fx, 2, path);
	uint64_t end = p[5].offset + p[5].length;
	cut_file(path, end);                      /* no seal: a crashed segment */
	append_zeros(path, 8192);
	v = open_log(fx, 0, 0);
	struct scan_check sc = { 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_true(sc.n == 6 && res.end == end && res.tail_dropped == 8192);
	/* A bad last record followed by zeros is torn too. */
	xor_byte(path, p[5].offset + 30, 0x10);
	sc = (struct scan_check){ 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_true(sc.n == 5 && res.tail_dropped == 8192 + p[5].length);
	/* A bad record with good data after it is damage, even unsealed. */
	xor_byte(path, p[5].offset + 30, 0x10);
	xor_byte(path, p[2].offset + 30, 0x10);
	sc = (struct scan_check){ 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), -EBADMSG);
	assert_int_equal(sc.n, 2);
	char off[64];
	snprintf(off, sizeof(off), "offset %llu", (unsigned long long)p[2].offset);
	expect_error("000002.vlog", off);
	/* Garbage (not zeros) after a good record is damage. */
	xor_byte(path, p[2].offset + 30, 0x10);
	xor_byte(path, end + 100, 0x55);
	assert_int_equal(vlog_scan(v, 2, scan_cb, &(struct scan_check){ 0 }, &res), -EUCLEAN);
	assert_int_equal(vlog_close(v), 0);
}

/* ---- failures and power cuts (fault env) -------------------------------- */

static void test_vlog_write_failures(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p[8], lost;
	struct vlog_scan_result res;
	char path[4096];

	append_rec(v, 0, 100, &p[0]);
	assert_int_equal(vlog_flush(v), 0);
	/* A failed buffered write is cut back off the file. */
	append_rec(v, 90, 100, &lost);
	env_fault_fail_nth(fx->env, FAULT_WRITE, 1, -ENOSPC);
	assert_int_equal(vlog_flush(v), -ENOSPC);
	expect_error("000002.vlog", "offset");
	append_rec(v, 1, 100, &p[1]);
	assert_int_equal(vlog_flush(v), 0);
	assert_int_equal(p[1].offset, p[0].offset + p[0].length);
	/* A short write, then a direct write whose value fails. */
	append_rec(v, 91, 100, &lost);
	env_fault_short_write(fx->env, 1, 10);
	assert_int_equal(vlog_flush(v), -EIO);
	env_fault_fail_nth(fx->env, FAULT_WRITE, 2, -EIO);
	char key[32];
	uint8_t *big = make_val(92, 200000);
	assert_int_equal(vlog_append(v, key, make_key(92, key), big, 200000, &lost), -EIO);
	free(big);
	append_rec(v, 2, 200000, &p[2]);
	append_rec(v, 3, 100, &p[3]);
	assert_int_equal(vlog_sync(v), 0);
	for (unsigned i = 0; i < 4; i++)
		check_rec(v, i, i == 2 ? 200000 : 100, &p[i]);
	seg_path(fx, 2, path);
	assert_int_equal(file_size(path), p[3].offset + p[3].length);
	/* Write and cut-back both fail: the segment is abandoned unsealed and
	 * the next append starts a new one. */
	append_rec(v, 93, 100, &lost);
	env_fault_short_write(fx->env, 1, 10);
	env_fault_fail_nth(fx->env, FAULT_TRUNCATE, 1, -EIO);
	assert_int_equal(vlog_flush(v), -EIO);
	expect_error("abandoned", NULL);
	append_rec(v, 4, 100, &p[4]);
	assert_int_equal(p[4].segment, 3);
	assert_int_equal(vlog_sync(v), 0);
	check_rec(v, 4, 100, &p[4]);
	struct scan_check sc = { 0 };
	assert_int_equal(vlog_scan(v, 2, scan_cb, &sc, &res), 0);
	assert_true(sc.n == 4 && !res.sealed && res.tail_dropped == 10);
	assert_int_equal(vlog_remove_segment(v, 2), 0);
	assert_int_equal(vlog_close(v), 0);
	/* Creating a segment fails (the open, then the header write): the next
	 * append tries again, and no half-made file stays behind. */
	v = open_log(fx, 0, 0);
	uint64_t before = atomic_load(&fx->next);
	struct vlog_ptr fill;
	env_fault_fail_nth(fx->env, FAULT_OPEN, 1, -EMFILE);
	assert_int_equal(vlog_append(v, "k", 1, "v", 1, &fill), -EMFILE);
	assert_int_equal(vlog_active_segment(v), 0);
	env_fault_fail_nth(fx->env, FAULT_WRITE, 1, -EIO);
	assert_int_equal(vlog_append(v, "k", 1, "v", 1, &fill), -EIO);
	for (uint64_t s = before; s < before + 2; s++) {
		seg_path(fx, s, path);
		assert_int_equal(access(path, F_OK), -1);
	}
	append_rec(v, 5, 100, &p[5]);
	assert_int_equal(p[5].segment, before + 2);
	assert_int_equal(vlog_flush(v), 0);
	check_rec(v, 5, 100, &p[5]);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_sync_failure_sticky(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p, q;

	append_rec(v, 1, 100, &p);
	env_fault_fail_nth(fx->env, FAULT_SYNC, 1, -EIO);
	assert_int_equal(vlog_sync(v), -EIO);
	assert_int_equal(vlog_sync(v), -EROFS);
	assert_int_equal(vlog_flush(v), -EROFS);
	assert_int_equal(vlog_append(v, "k", 1, "v", 1, &q), -EROFS);
	expect_error("read-only", NULL);
	check_rec(v, 1, 100, &p);                 /* reads still work */
	assert_int_equal(vlog_close(v), -EIO);
}

/* Appends in batches, each flushed or synced, while the power fails after
 * the nth sync; after the reboot every synced record reads back, and every
 * other one is either whole or reported missing, never garbage. */
static void power_cut_run(struct fixture *fx, uint64_t n, uint64_t *seed)
{
	enum { MAXREC = 300 };
	struct vlog_ptr p[MAXREC];
	size_t len[MAXREC];
	unsigned nrec = 0, acked = 0;
	vlog *v = open_log(fx, 4096, 2);
	bool cut = false;

	env_fault_power_cut_after_sync(fx->env, n);
	for (int batch = 0; batch < 40 && !cut; batch++) {
		unsigned k = 1 + (unsigned)(test_rand(seed) % 6);
		for (unsigned j = 0; j < k && !cut; j++) {
			char key[32];
			len[nrec] = test_rand(seed) % 3 == 0 ? 1500 : 60;
			uint8_t *val = make_val(nrec, len[nrec]);
			cut = vlog_append(v, key, make_key(nrec, key), val, len[nrec], &p[nrec]) < 0;
			free(val);
			if (!cut)
				nrec++;
		}
		if (!cut && batch % 3 == 2)
			cut = vlog_flush(v) < 0;
		else if (!cut) {
			cut = vlog_sync(v) < 0;
			if (!cut)
				acked = nrec;
		}
	}
	assert_true(!cut || env_fault_is_down(fx->env));
	vlog_close(v);
	assert_int_equal(env_fault_crash(fx->env), 0);
	v = open_log(fx, 4096, 2);
	for (unsigned i = 0; i < nrec; i++) {
		if (i < acked) {
			check_rec(v, i, len[i], &p[i]);
			continue;
		}
		int r = vlog_verify_ptr(v, &p[i]);
		assert_true(r == 0 || r == 1);
		if (r == 1)
			check_rec(v, i, len[i], &p[i]);
	}
	struct vlog_segment_info *segs;
	size_t ns;
	unsigned total = 0;
	assert_int_equal(vlog_segments(v, &segs, &ns), 0);
	for (size_t i = 0; i < ns; i++) {
		struct scan_check sc = { 0 };
		struct vlog_scan_result res;
		if (vlog_scan(v, segs[i].segment, scan_cb, &sc, &res) < 0)
			fail_msg("n=%llu: scan %llu: %s", (unsigned long long)n,
			         (unsigned long long)segs[i].segment, lsm_last_error());
		total += sc.n;
	}
	free(segs);
	assert_true(total >= acked);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_power_cut_every_sync(void **state)
{
	struct fixture *fx = *state;
	uint64_t seed = test_seed("test_vlog_power_cut_every_sync");
	unsigned runs = test_long() ? 120 : 40;

	for (uint64_t n = 1; n <= runs; n++) {
		uint64_t s = seed + n;
		power_cut_run(fx, n, &s);
		test_rmtree(fx->dir);
		assert_int_equal(mkdir(fx->dir, 0700), 0);
	}
}

/* Segments rolled over since the last sync are made durable by vlog_sync,
 * new ones included (their directory entries too); what follows is lost. */
static void test_vlog_power_cut_rolled_segments(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 4096, 0);
	struct vlog_ptr p[100], after;
	struct vlog_segment_info *segs;
	size_t n;

	for (unsigned i = 0; i < 100; i++)  /* 15 segments: more than wait for a sync */
		append_rec(v, i, 500, &p[i]);
	assert_true(p[99].segment >= 2 + 14);
	assert_int_equal(vlog_sync(v), 0);
	append_rec(v, 100, 500, &after);
	assert_int_equal(vlog_flush(v), 0);
	cut_power_now(fx);
	assert_true(vlog_close(v) < 0);
	assert_int_equal(env_fault_crash(fx->env), 0);
	v = open_log(fx, 4096, 0);
	for (unsigned i = 0; i < 100; i++)
		check_rec(v, i, 500, &p[i]);
	assert_int_equal(vlog_verify_ptr(v, &after), 0);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_int_equal(n, p[99].segment - 1);
	assert_true(segs[n - 1].flags == 0);      /* the active one was never sealed */
	for (size_t i = 0; i + 1 < n; i++)
		assert_int_equal(segs[i].flags, VLOG_SEGMENT_SEALED);
	free(segs);
	assert_int_equal(vlog_close(v), 0);
}

/* A segment whose directory entry became durable (someone else synced the
 * directory) but whose data did not comes back empty. */
static void test_vlog_empty_segment_after_crash(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 0, 0);
	struct vlog_ptr p;
	struct vlog_segment_info *segs;
	struct vlog_scan_result res;
	size_t n, vl;
	void *val;

	append_rec(v, 1, 100, &p);
	assert_int_equal(vlog_flush(v), 0);
	assert_int_equal(env_sync_dir(fx->env, fx->dir), 0);   /* the file's name is durable */
	cut_power_now(fx);
	vlog_close(v);
	assert_int_equal(env_fault_crash(fx->env), 0);
	v = open_log(fx, 0, 0);
	assert_int_equal(vlog_segments(v, &segs, &n), 0);
	assert_true(n == 1 && segs[0].segment == 2 && segs[0].size == 0 && segs[0].flags == 0);
	free(segs);
	assert_int_equal(vlog_verify_ptr(v, &p), 0);
	assert_int_equal(vlog_read(v, &p, NULL, NULL, &val, &vl), -EUCLEAN);
	assert_int_equal(vlog_scan(v, 2, scan_cb, &(struct scan_check){ 0 }, &res), 0);
	assert_true(res.records == 0 && res.tail_dropped == 0);
	assert_int_equal(vlog_remove_segment(v, 2), 0);
	assert_int_equal(vlog_close(v), 0);
}

/* ---- concurrency and the file cache ------------------------------------- */

struct shared {
	vlog *v;
	struct vlog_ptr *p;
	size_t *len;
	atomic_uint published;       /* p[0..published) are flushed */
	atomic_bool done;
	atomic_uint reads, scans, syncs, errors;
};

/* Syncs over and over while the main thread appends and rolls. */
static void *syncer_main(void *arg)
{
	struct shared *sh = arg;

	while (!atomic_load(&sh->done)) {
		if (vlog_sync(sh->v) < 0) {
			fprintf(stderr, "sync: %s\n", lsm_last_error());
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		atomic_fetch_add(&sh->syncs, 1);
	}
	return NULL;
}

static size_t conc_len(unsigned i)
{
	return i % 97 == 0 ? 140000 : 1 + (i * 2654435761u) % 3000;
}

/* Checks a record against its key, counting mismatches (no cmocka asserts
 * off the main thread). */
static int count_cb(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen,
                    const void *value, size_t vlen)
{
	struct shared *sh = arg;
	unsigned i;
	(void)ptr;
	if (!parse_key(key, klen, &i) || i >= 3000 || vlen != sh->len[i] || !val_ok(i, value, vlen))
		atomic_fetch_add(&sh->errors, 1);
	return 0;
}

static void *reader_main(void *arg)
{
	struct shared *sh = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed;

	while (!atomic_load(&sh->done) || atomic_load(&sh->reads) < 2000) {
		unsigned n = atomic_load_explicit(&sh->published, memory_order_acquire);
		if (n == 0)
			continue;
		unsigned i = (unsigned)(test_rand(&seed) % n);
		void *val;
		size_t vl;
		int r = vlog_read(sh->v, &sh->p[i], NULL, NULL, &val, &vl);
		/* cmocka's failures longjmp: not from this thread. */
		if (r < 0) {
			fprintf(stderr, "read %u: %s\n", i, lsm_last_error());
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		if (vl != sh->len[i] || !val_ok(i, val, vl)) {
			fprintf(stderr, "read %u: wrong value\n", i);
			atomic_fetch_add(&sh->errors, 1);
		}
		free(val);
		atomic_fetch_add(&sh->reads, 1);
		if (test_rand(&seed) % 64 == 0) {
			struct vlog_scan_result res;
			if (vlog_scan(sh->v, sh->p[i].segment, count_cb, sh, &res) < 0 ||
			    res.tail_dropped != 0) {
				fprintf(stderr, "scan %llu: %s\n", (unsigned long long)sh->p[i].segment,
				        lsm_last_error());
				atomic_fetch_add(&sh->errors, 1);
			}
			atomic_fetch_add(&sh->scans, 1);
		}
	}
	return NULL;
}

static void test_vlog_concurrent_readers(void **state)
{
	struct fixture *fx = *state;
	enum { N = 3000, READERS = 3 };
	pthread_t syncer;
	struct shared sh = { .v = open_log(fx, 256u << 10, 2) };
	pthread_t t[READERS];
	uint64_t seed = test_seed("test_vlog_concurrent_readers");

	sh.p = calloc(N, sizeof(*sh.p));
	sh.len = calloc(N, sizeof(*sh.len));
	assert_true(sh.p && sh.len);
	for (int k = 0; k < READERS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, reader_main, &sh), 0);
	assert_int_equal(pthread_create(&syncer, NULL, syncer_main, &sh), 0);
	for (unsigned i = 0; i < N;) {
		unsigned group = 1 + (unsigned)(test_rand(&seed) % 8);
		for (unsigned j = 0; j < group && i < N; j++, i++) {
			sh.len[i] = conc_len(i);
			append_rec(sh.v, i, sh.len[i], &sh.p[i]);
		}
		assert_int_equal(test_rand(&seed) % 4 ? vlog_flush(sh.v) : vlog_sync(sh.v), 0);
		atomic_store_explicit(&sh.published, i, memory_order_release);
	}
	atomic_store(&sh.done, true);
	for (int k = 0; k < READERS; k++)
		pthread_join(t[k], NULL);
	pthread_join(syncer, NULL);
	assert_int_equal(atomic_load(&sh.errors), 0);
	assert_true(atomic_load(&sh.reads) >= 2000 && atomic_load(&sh.scans) > 0 &&
	            atomic_load(&sh.syncs) > 0);
	assert_true(sh.p[N - 1].segment > 10);
	assert_int_equal(vlog_close(sh.v), 0);
	free(sh.p);
	free(sh.len);
}

static void test_vlog_file_cache_bound(void **state)
{
	struct fixture *fx = *state;
	vlog *v = open_log(fx, 4096, 0);
	struct vlog_ptr p[6];

	for (unsigned i = 0; i < 6; i++) {
		append_rec(v, i, 3000, &p[i]);    /* one record per segment */
		assert_int_equal(p[i].segment, 2 + i);
	}
	assert_int_equal(vlog_close(v), 0);
	v = open_log(fx, 4096, 2);
	env_fault_reset_counts(fx->env);
	const struct { unsigned seg; uint64_t opens; } steps[] = {
		{ 0, 1 }, { 1, 2 }, { 0, 2 }, { 1, 2 }, { 0, 2 },   /* both cached */
		{ 2, 3 }, { 0, 3 }, { 1, 4 }, { 2, 5 }, { 0, 6 },   /* LRU order decides */
	};
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		check_rec(v, steps[k].seg, 3000, &p[steps[k].seg]);
		assert_int_equal(env_fault_count(fx->env, FAULT_OPEN), steps[k].opens);
	}
	for (unsigned round = 0; round < 2; round++)
		for (unsigned i = 0; i < 6; i++)
			check_rec(v, i, 3000, &p[i]);
	/* Cached then: 0 and 2.  Round one hits 0 and misses 1..5; round two,
	 * cycling through more segments than the cache holds, misses all 6. */
	assert_int_equal(env_fault_count(fx->env, FAULT_OPEN), 6 + 5 + 6);
	assert_int_equal(vlog_close(v), 0);
}

static void test_vlog_open_errors(void **state)
{
	struct fixture *fx = *state;
	vlog_options opt;
	vlog *v = NULL;
	char path[4096];

	vlog_options_init(&opt);
	assert_int_equal(opt.segment_size, 64u << 20);
	assert_int_equal(opt.max_open_segments, 64);
	opt.segment_size = 100;
	assert_int_equal(vlog_open(fx->env, fx->dir, &opt, next_number, fx, &v), -EINVAL);
	vlog_options_init(&opt);
	opt.max_open_segments = 0;
	assert_int_equal(vlog_open(fx->env, fx->dir, &opt, next_number, fx, &v), -EINVAL);
	assert_int_equal(vlog_open(fx->env, fx->dir, NULL, NULL, fx, &v), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing", fx->dir);
	assert_int_equal(vlog_open(fx->env, path, NULL, next_number, fx, &v), -ENOENT);
	assert_null(v);
	/* NULL env and options: the POSIX env and the defaults. */
	assert_int_equal(vlog_open(NULL, fx->dir, NULL, next_number, fx, &v), 0);
	assert_int_equal(vlog_close(v), 0);
	/* A file number already taken is refused, and the next one used. */
	seg_path(fx, 2, path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	v = open_log(fx, 0, 0);
	struct vlog_ptr p;
	assert_int_equal(vlog_append(v, "k", 1, "v", 1, &p), -EEXIST);
	append_rec(v, 1, 10, &p);
	assert_int_equal(p.segment, 3);
	assert_int_equal(vlog_close(v), 0);
}

/* The in-memory env works the same (vlog only talks to an env). */
static void test_vlog_mem_env(void **state)
{
	struct fixture *fx = *state;
	lsm_env *mem = env_mem_new();
	vlog *v;
	struct vlog_ptr p[20];

	assert_int_equal(env_mkdir(mem, "/db"), 0);
	assert_int_equal(vlog_open(mem, "/db", NULL, next_number, fx, &v), 0);
	for (unsigned i = 0; i < 20; i++)
		append_rec(v, i, i * 20000, &p[i]);
	assert_int_equal(vlog_sync(v), 0);
	for (unsigned i = 0; i < 20; i++)
		check_rec(v, i, i * 20000, &p[i]);
	assert_int_equal(vlog_close(v), 0);
	assert_int_equal(vlog_open(mem, "/db", NULL, next_number, fx, &v), 0);
	struct scan_check sc = { 0 };
	assert_int_equal(vlog_scan(v, p[0].segment, scan_cb, &sc, NULL), 0);
	assert_int_equal(sc.n, 20);
	assert_int_equal(vlog_close(v), 0);
	env_mem_free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vlog_ptr_codec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_roundtrip_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_roundtrip_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_flush_makes_readable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_corrupt_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_seal_count_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_corrupt_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_pointer_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_torn_tail_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_torn_tail_zeros_and_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_write_failures, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_sync_failure_sticky, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_power_cut_every_sync, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_power_cut_rolled_segments, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_empty_segment_after_crash, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_file_cache_bound, setup_fault, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlog_mem_env, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
