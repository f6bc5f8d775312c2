/*
 * test_block.c - block builder and reader: round trips at several restart
 * intervals, seeks that hit, miss and run off either end, reverse iteration
 * across restart points, long keys (beyond the iterator's inline buffer), and
 * damaged blocks (bad restart arrays, truncated or overrunning entries,
 * random byte flips), which must give -EUCLEAN and never read out of bounds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lsm_int.h"
#include "testutil.h"

/* Key i of a test set: keys are spaced by 2 so odd numbers are misses. */
static size_t make_key(char *buf, int i, int pad)
{
	return (size_t)sprintf(buf, "%0*d", pad, 2 * i);
}

static size_t make_val(char *buf, int i)
{
	return (size_t)sprintf(buf, "value-%d-%.*s", i, i % 23, "abcdefghijklmnopqrstuvwxyz");
}

static int bytes_cmp(lsm_slice a, lsm_slice b)
{
	return lsm_slice_cmp(a, b);
}

/* Builds a block of n keys (width pad) and returns a malloc'd copy. */
static uint8_t *build(int n, int interval, int pad, size_t *ret_len)
{
	lsm_block_builder *b;
	char k[512], v[64];
	assert_int_equal(lsm_block_builder_new(interval, &b), 0);
	assert_true(lsm_block_builder_empty(b));
	for (int i = 0; i < n; i++) {
		size_t kl = make_key(k, i, pad), vl = make_val(v, i);
		assert_int_equal(lsm_block_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, vl)), 0);
	}
	size_t est = lsm_block_builder_estimate(b);
	lsm_slice s = lsm_block_builder_finish(b);
	assert_int_equal(s.len, est);
	uint8_t *copy = malloc(s.len);
	assert_non_null(copy);
	memcpy(copy, s.data, s.len);
	*ret_len = s.len;
	lsm_block_builder_free(b);
	return copy;
}

static void check_entry(lsm_iiter *it, int i, int pad)
{
	char k[512], v[64];
	size_t kl = make_key(k, i, pad), vl = make_val(v, i);
	assert_true(iiter_valid(it));
	lsm_slice key = iiter_key(it), val = iiter_value(it);
	assert_int_equal(key.len, kl);
	assert_memory_equal(key.data, k, kl);
	assert_int_equal(val.len, vl);
	assert_memory_equal(val.data, v, vl);
}

static void round_trip(int n, int interval, int pad)
{
	size_t len;
	uint8_t *data = build(n, interval, pad, &len);
	lsm_block *blk;
	lsm_iiter *it;
	assert_int_equal(lsm_block_new(data, len, true, &blk), 0);
	assert_int_equal(lsm_block_size(blk), len);
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
	assert_false(iiter_valid(it));

	iiter_seek_to_first(it);
	for (int i = 0; i < n; i++, iiter_next(it))
		check_entry(it, i, pad);
	assert_false(iiter_valid(it));

	iiter_seek_to_last(it);
	for (int i = n - 1; i >= 0; i--, iiter_prev(it))
		check_entry(it, i, pad);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);
	lsm_block_free(blk);
}

static void test_block_round_trip(void **state)
{
	(void)state;
	int intervals[] = { 1, 2, 3, 16, 1000 };
	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		round_trip(1, intervals[i], 8);
		round_trip(2000, intervals[i], 8);
	}
}

static void test_block_long_keys(void **state)
{
	(void)state;
	/* 300-byte keys sharing long prefixes outgrow the inline key buffer. */
	round_trip(500, 16, 300);
	round_trip(500, 1, 300);
}

static void test_block_empty(void **state)
{
	(void)state;
	lsm_block_builder *b;
	lsm_block *blk;
	lsm_iiter *it;
	assert_int_equal(lsm_block_builder_new(16, &b), 0);
	lsm_slice s = lsm_block_builder_finish(b);
	assert_int_equal(s.len, 8);
	assert_int_equal(lsm_block_new(s.data, s.len, false, &blk), 0);
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
	iiter_seek_to_first(it);
	assert_false(iiter_valid(it));
	iiter_seek_to_last(it);
	assert_false(iiter_valid(it));
	iiter_seek(it, lsm_slice_make("a", 1));
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);
	lsm_block_free(blk);

	/* reset makes the builder reusable. */
	lsm_block_builder_reset(b);
	assert_true(lsm_block_builder_empty(b));
	assert_int_equal(lsm_block_builder_add(b, lsm_slice_make("k", 1), lsm_slice_make("v", 1)), 0);
	assert_false(lsm_block_builder_empty(b));
	lsm_block_builder_free(b);
	assert_int_equal(lsm_block_builder_new(0, &b), -EINVAL);
}

static void test_block_seek(void **state)
{
	(void)state;
	const int n = 1000;
	size_t len;
	uint8_t *data = build(n, 16, 8, &len);
	lsm_block *blk;
	lsm_iiter *it;
	char k[64];
	assert_int_equal(lsm_block_new(data, len, true, &blk), 0);
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);

	/* Exact hits, in order (uses the positioned-iterator shortcut). */
	for (int i = 0; i < n; i++) {
		iiter_seek(it, lsm_slice_make(k, make_key(k, i, 8)));
		check_entry(it, i, 8);
	}
	/* Misses land on the next key; random order from a positioned iterator. */
	uint64_t seed = test_seed("test_block_seek");
	for (int j = 0; j < 3000; j++) {
		int i = (int)(test_rand(&seed) % (uint64_t)n);
		int kl = sprintf(k, "%08d", 2 * i - 1);
		iiter_seek(it, lsm_slice_make(k, (size_t)kl));
		check_entry(it, i, 8);
	}
	/* Before the first key, and past the last. */
	iiter_seek(it, lsm_slice_make("", 0));
	check_entry(it, 0, 8);
	iiter_seek(it, lsm_slice_make("99999999", 8));
	assert_false(iiter_valid(it));
	iiter_seek(it, lsm_slice_make(k, make_key(k, n - 1, 8)));
	check_entry(it, n - 1, 8);
	iiter_next(it);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);
	lsm_block_free(blk);
}

static void test_block_prev_across_restarts(void **state)
{
	(void)state;
	const int n = 100;
	size_t len;
	uint8_t *data = build(n, 4, 8, &len);
	lsm_block *blk;
	lsm_iiter *it;
	char k[64];
	assert_int_equal(lsm_block_new(data, len, true, &blk), 0);
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
	/* From every starting point walk back a few entries, crossing the
	 * restart points at multiples of 4, then forward again. */
	for (int start = 0; start < n; start++) {
		iiter_seek(it, lsm_slice_make(k, make_key(k, start, 8)));
		int i = start;
		for (int step = 0; step < 6 && i >= 0; step++, i--) {
			check_entry(it, i, 8);
			iiter_prev(it);
		}
		if (i < 0) {
			assert_false(iiter_valid(it));
			continue;
		}
		check_entry(it, i, 8);
		iiter_next(it);
		check_entry(it, i + 1, 8);
	}
	iiter_destroy(it);
	lsm_block_free(blk);
}

static struct found {
	char key[64];
	size_t klen;
	int calls;
} found;

static void on_entry(void *arg, lsm_slice key, lsm_slice value)
{
	struct found *f = arg;
	(void)value;
	memcpy(f->key, key.data, key.len);
	f->klen = key.len;
	f->calls++;
}

static void test_block_seek_get(void **state)
{
	(void)state;
	const int n = 300;
	size_t len;
	uint8_t *data = build(n, 16, 8, &len);
	lsm_block *blk;
	char k[64], want[64];
	assert_int_equal(lsm_block_new(data, len, true, &blk), 0);
	for (int i = 0; i < n; i++) {
		memset(&found, 0, sizeof(found));
		size_t kl = make_key(k, i, 8);
		assert_int_equal(lsm_block_seek_get(blk, bytes_cmp, lsm_slice_make(k, kl), on_entry, &found), 1);
		assert_int_equal(found.calls, 1);
		assert_int_equal(found.klen, kl);
		assert_memory_equal(found.key, k, kl);
		/* A miss finds the next key. */
		kl = (size_t)sprintf(k, "%08d", 2 * i - 1);
		assert_int_equal(lsm_block_seek_get(blk, bytes_cmp, lsm_slice_make(k, kl), on_entry, &found), 1);
		assert_int_equal(found.klen, make_key(want, i, 8));
		assert_memory_equal(found.key, want, found.klen);
	}
	found.calls = 0;
	assert_int_equal(lsm_block_seek_get(blk, bytes_cmp, lsm_slice_make("9", 1), on_entry, &found), 0);
	assert_int_equal(found.calls, 0);
	lsm_block_free(blk);
}

/* Assembles a block from an entry area and an explicit restart array. */
static size_t assemble(uint8_t *out, const uint8_t *entries, size_t elen, const uint32_t *r, uint32_t n)
{
	memcpy(out, entries, elen);
	uint8_t *p = out + elen;
	for (uint32_t i = 0; i < n; i++)
		p = put_fixed32(p, r[i]);
	p = put_fixed32(p, n);
	return (size_t)(p - out);
}

static void test_block_corrupt_restart_array(void **state)
{
	(void)state;
	size_t len;
	uint8_t *data = build(50, 8, 8, &len);
	uint32_t n = get_fixed32(data + len - 4);
	size_t elen = len - 4 - 4 * n;
	uint8_t buf[8192];
	lsm_block *blk;

	/* Count larger than the block can hold. */
	memcpy(buf, data, len);
	put_fixed32(buf + len - 4, 0x40000000u);
	assert_int_equal(lsm_block_new(buf, len, false, &blk), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "restart"));

	uint32_t bad_first[] = { 4, 40 };
	uint32_t not_increasing[] = { 0, 40, 40 };
	uint32_t past_end[] = { 0, (uint32_t)elen };
	uint32_t none[1];
	size_t l;
	l = assemble(buf, data, elen, bad_first, 2);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), -EUCLEAN);
	l = assemble(buf, data, elen, not_increasing, 3);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), -EUCLEAN);
	l = assemble(buf, data, elen, past_end, 2);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), -EUCLEAN);
	l = assemble(buf, data, elen, none, 0);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), -EUCLEAN);
	/* Shorter than the count itself. */
	assert_int_equal(lsm_block_new(buf, 3, false, &blk), -EUCLEAN);

	/* A restart point that is not an entry boundary: a seek that binary
	 * searches onto it must fail cleanly. */
	uint32_t mid_entry[] = { 0, 5 };
	l = assemble(buf, data, elen, mid_entry, 2);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), 0);
	lsm_iiter *it;
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
	iiter_seek(it, lsm_slice_make("00000050", 8));
	iiter_seek_to_last(it);
	while (iiter_valid(it))
		iiter_next(it);
	assert_int_equal(iiter_status(it), -EUCLEAN);
	iiter_destroy(it);
	lsm_block_free(blk);
	free(data);
}

static void test_block_truncated(void **state)
{
	(void)state;
	size_t len;
	uint8_t *data = build(50, 8, 8, &len);
	uint32_t n = get_fixed32(data + len - 4);
	size_t elen = len - 4 - 4 * n;
	uint32_t r[64];
	for (uint32_t i = 0; i < n; i++)
		r[i] = get_fixed32(data + elen + 4 * i);
	uint8_t buf[8192];

	/* Entry boundaries, walking the (valid) original. */
	bool boundary[8192] = { false };
	for (const uint8_t *q = data; q < data + elen;) {
		uint32_t sh = 0, un = 0, vl = 0;
		q = get_varint32(q, data + elen, &sh);
		q = get_varint32(q, data + elen, &un);
		q = get_varint32(q, data + elen, &vl);
		q += un + vl;
		boundary[q - data] = true;
	}
	/* Cut the entry area inside each entry after the last restart point:
	 * the walk hits the cut entry and must say so. */
	for (size_t cut = r[n - 1] + 1; cut < elen; cut++) {
		if (boundary[cut])
			continue;
		size_t l = assemble(buf, data, cut, r, n);
		lsm_block *blk;
		lsm_iiter *it;
		assert_int_equal(lsm_block_new(buf, l, false, &blk), 0);
		assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
		iiter_seek_to_last(it);
		assert_false(iiter_valid(it));
		assert_int_equal(iiter_status(it), -EUCLEAN);
		assert_non_null(strstr(lsm_last_error(), "block"));
		iiter_destroy(it);
		lsm_block_free(blk);
	}
	/* Plain truncation of the whole block must never crash. */
	for (size_t cut = 0; cut < len; cut++) {
		lsm_block *blk;
		lsm_iiter *it;
		memcpy(buf, data, cut);
		if (lsm_block_new(buf, cut, false, &blk) < 0)
			continue;
		assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
		for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
			;
		int st = iiter_status(it);
		assert_true(st == 0 || st == -EUCLEAN);
		iiter_destroy(it);
		lsm_block_free(blk);
	}
	free(data);
}

static void test_block_bad_entry_lengths(void **state)
{
	(void)state;
	uint8_t buf[64], *p = buf;
	lsm_block *blk;
	lsm_iiter *it;
	/* An entry whose value length runs past the entry area. */
	p = put_varint32(p, 0);
	p = put_varint32(p, 1);
	p = put_varint32(p, 200);
	*p++ = 'a';
	uint32_t r0 = 0;
	size_t l = assemble(buf, buf, (size_t)(p - buf), &r0, 1);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), 0);
	assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
	iiter_seek_to_first(it);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), -EUCLEAN);
	/* The error is sticky. */
	iiter_seek(it, lsm_slice_make("a", 1));
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), -EUCLEAN);
	iiter_destroy(it);
	lsm_block_free(blk);

	/* A restart entry claiming a shared prefix. */
	p = buf;
	p = put_varint32(p, 3);
	p = put_varint32(p, 1);
	p = put_varint32(p, 0);
	*p++ = 'a';
	l = assemble(buf, buf, (size_t)(p - buf), &r0, 1);
	assert_int_equal(lsm_block_new(buf, l, false, &blk), 0);
	assert_int_equal(lsm_block_seek_get(blk, bytes_cmp, lsm_slice_make("a", 1), on_entry, &found), -EUCLEAN);
	lsm_block_free(blk);
}

static void test_block_random_corruption(void **state)
{
	(void)state;
	size_t len;
	uint8_t *data = build(200, 16, 8, &len);
	uint8_t *buf = malloc(len);
	uint64_t seed = test_seed("test_block_random_corruption");
	int rounds = test_long() ? 20000 : 2000;
	assert_non_null(buf);
	for (int round = 0; round < rounds; round++) {
		memcpy(buf, data, len);
		int flips = 1 + (int)(test_rand(&seed) % 4);
		for (int f = 0; f < flips; f++)
			buf[test_rand(&seed) % len] ^= (uint8_t)(1 + test_rand(&seed) % 255);
		lsm_block *blk;
		lsm_iiter *it;
		int r = lsm_block_new(buf, len, false, &blk);
		if (r < 0) {
			assert_int_equal(r, -EUCLEAN);
			continue;
		}
		assert_int_equal(lsm_block_iter_new(blk, bytes_cmp, &it), 0);
		int steps = 0;
		for (iiter_seek_to_first(it); iiter_valid(it) && steps < 1000; iiter_next(it))
			steps++;
		for (iiter_seek_to_last(it); iiter_valid(it) && steps < 2000; iiter_prev(it))
			steps++;
		char k[16];
		int kl = sprintf(k, "%08d", (int)(test_rand(&seed) % 400));
		iiter_seek(it, lsm_slice_make(k, (size_t)kl));
		int st = iiter_status(it);
		assert_true(st == 0 || st == -EUCLEAN);
		iiter_destroy(it);
		lsm_block_free(blk);
	}
	free(buf);
	free(data);
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static void test_block_ikey_cmp(void **state)
{
	(void)state;
	/* The inlined comparator agrees with lsm_ikey_cmp on random internal
	 * keys: lengths around the 8-byte word size, few distinct bytes (so
	 * long common prefixes), equal user keys with different trailers. */
	uint64_t seed = test_seed("test_block_ikey_cmp");
	uint8_t ua[32], ub[32], a[64], b[64];
	const uint8_t alpha[] = { 0x00, 0x61, 0x80, 0xff };
	for (int i = 0; i < 200000; i++) {
		size_t al = test_rand(&seed) % 25, bl = test_rand(&seed) % 4 ? al : test_rand(&seed) % 25;
		for (size_t j = 0; j < al; j++)
			ua[j] = alpha[test_rand(&seed) % 4];
		memcpy(ub, ua, al);
		for (size_t j = 0; j < bl; j++)
			if (j >= al || test_rand(&seed) % 16 == 0)
				ub[j] = alpha[test_rand(&seed) % 4];
		size_t ka = lsm_ikey_encode(a, lsm_slice_make(ua, al), test_rand(&seed) % 4, LSM_TYPE_VALUE);
		size_t kb = lsm_ikey_encode(b, lsm_slice_make(ub, bl), test_rand(&seed) % 4, LSM_TYPE_VALUE);
		lsm_slice x = lsm_slice_make(a, ka), y = lsm_slice_make(b, kb);
		assert_int_equal(sign(lsm_block_ikey_cmp(x, y)), sign(lsm_ikey_cmp(x, y)));
		assert_int_equal(sign(lsm_block_ikey_cmp(y, x)), sign(lsm_ikey_cmp(y, x)));
	}
	/* Keys too short for a trailer compare bytewise instead of crashing. */
	assert_true(lsm_block_ikey_cmp(lsm_slice_make("ab", 2), lsm_slice_make("abcdefghij", 10)) < 0);
	assert_true(lsm_block_ikey_cmp(lsm_slice_make("b", 1), lsm_slice_make("abcdefghij", 10)) > 0);
	assert_int_equal(lsm_block_ikey_cmp(lsm_slice_make("", 0), lsm_slice_make("", 0)), 0);

	/* A block of internal keys seeks the same through the inlined path. */
	lsm_block_builder *bb;
	lsm_block *blk;
	lsm_iiter *it;
	uint8_t k[32];
	char u[16];
	assert_int_equal(lsm_block_builder_new(16, &bb), 0);
	for (int i = 0; i < 500; i++) {
		size_t ul = (size_t)sprintf(u, "u%05d", i / 5);
		size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, ul), (uint64_t)(100 - i % 5), LSM_TYPE_VALUE);
		assert_int_equal(lsm_block_builder_add(bb, lsm_slice_make(k, kl), lsm_slice_make(u, ul)), 0);
	}
	lsm_slice s = lsm_block_builder_finish(bb);
	assert_int_equal(lsm_block_new(s.data, s.len, false, &blk), 0);
	assert_int_equal(lsm_block_iter_new(blk, lsm_block_ikey_cmp, &it), 0);
	for (int i = 0; i < 100; i++) {
		/* As of sequence 97: the versions 100..98 are too new. */
		size_t ul = (size_t)sprintf(u, "u%05d", i);
		size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, ul), 97, LSM_TYPE_SEEK);
		iiter_seek(it, lsm_slice_make(k, kl));
		assert_true(iiter_valid(it));
		assert_int_equal(lsm_ikey_seq(iiter_key(it)), 97);
		assert_true(lsm_slice_eq(lsm_ikey_user(iiter_key(it)), lsm_slice_make(u, ul)));
	}
	iiter_destroy(it);
	lsm_block_free(blk);
	lsm_block_builder_free(bb);
}

/* Restart points that lsm_block_new accepts (in range, increasing) but that
 * do not start a self-contained entry: the full check must refuse them. */
static void test_block_verify_restarts(void **state)
{
	(void)state;
	size_t len;
	uint8_t *data = build(64, 16, 4, &len);
	lsm_block *b;
	uint32_t n = get_fixed32(data + len - 4);
	size_t arr = len - 4 - 4 * (size_t)n;
	assert_int_equal(n, 4);

	/* Intact: passes. */
	assert_int_equal(lsm_block_new(data, len, false, &b), 0);
	assert_int_equal(lsm_block_verify_restarts(b), 0);
	lsm_block_free(b);

	/* Restart 2 moved one byte into its entry. */
	uint32_t r2 = get_fixed32(data + arr + 8);
	put_fixed32(data + arr + 8, r2 + 1);
	assert_int_equal(lsm_block_new(data, len, false, &b), 0);
	assert_int_equal(lsm_block_verify_restarts(b), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "restart point 2"));
	lsm_block_free(b);

	/* Restart 2 moved back to the entry before it, which shares a prefix
	 * with its predecessor: found by walking the entries from restart 1. */
	uint32_t r1 = get_fixed32(data + arr + 4), off = r1, start = r1;
	put_fixed32(data + arr + 8, r2);
	while (off < r2) {
		uint32_t sh = 0, un = 0, vl = 0;
		const uint8_t *p = get_varint32(data + off, data + arr, &sh);
		assert_non_null(p = get_varint32(p, data + arr, &un));
		assert_non_null(p = get_varint32(p, data + arr, &vl));
		start = off;
		off = (uint32_t)(p - data) + un + vl;
	}
	assert_true(start > r1 && start < r2);
	put_fixed32(data + arr + 8, start);
	assert_int_equal(lsm_block_new(data, len, false, &b), 0);
	assert_int_equal(lsm_block_verify_restarts(b), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "shares"));
	lsm_block_free(b);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_round_trip),
		cmocka_unit_test(test_block_long_keys),
		cmocka_unit_test(test_block_empty),
		cmocka_unit_test(test_block_seek),
		cmocka_unit_test(test_block_prev_across_restarts),
		cmocka_unit_test(test_block_seek_get),
		cmocka_unit_test(test_block_corrupt_restart_array),
		cmocka_unit_test(test_block_truncated),
		cmocka_unit_test(test_block_bad_entry_lengths),
		cmocka_unit_test(test_block_random_corruption),
		cmocka_unit_test(test_block_ikey_cmp),
		cmocka_unit_test(test_block_verify_restarts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
