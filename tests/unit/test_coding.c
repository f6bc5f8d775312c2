/*
 * test_coding.c - unit tests for util/coding.h and coding.c: varint round
 * trips and their rejection of truncated or overlong input, the fixed-width
 * and big-endian layouts, the checksum's sensitivity and chaining, and slice
 * comparison.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"
#include "testutil.h"

static const uint64_t edge64[] = {
	0, 1, 127, 128, 255, 256, 16383, 16384, 2097151, 2097152,
	UINT32_MAX - 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
	(UINT64_C(1) << 56) - 1, UINT64_C(1) << 63, UINT64_MAX - 1, UINT64_MAX,
};

static void test_coding_varint64_roundtrip(void **state)
{
	uint64_t rng = test_seed("test_coding_varint64_roundtrip");
	uint8_t buf[VARINT64_MAX];

	(void)state;
	for (size_t i = 0; i < 2000; i++) {
		uint64_t v, got = ~UINT64_C(0) ^ 1;
		if (i < sizeof(edge64) / sizeof(edge64[0]))
			v = edge64[i];
		else    /* random values of every bit length */
			v = test_rand(&rng) >> (test_rand(&rng) % 64);
		uint8_t *end = put_varint64(buf, v);
		assert_int_equal(end - buf, varint_length(v));
		assert_true(end - buf <= VARINT64_MAX);
		const uint8_t *q = get_varint64(buf, end, &got);
		assert_ptr_equal(q, end);
		assert_true(got == v);
	}
}

static void test_coding_varint32_roundtrip(void **state)
{
	static const uint32_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, 1u << 21,
					 1u << 28, UINT32_MAX - 1, UINT32_MAX };
	uint8_t buf[VARINT32_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint32_t got = 12345;
		uint8_t *end = put_varint32(buf, vals[i]);
		assert_int_equal(end - buf, varint_length(vals[i]));
		assert_true(end - buf <= VARINT32_MAX);
		assert_ptr_equal(get_varint32(buf, end, &got), end);
		assert_int_equal(got, vals[i]);
	}
	/* Known encodings pin the format (LEB128, low group first). */
	assert_int_equal(put_varint32(buf, 300) - buf, 2);
	assert_int_equal(buf[0], 0xac);
	assert_int_equal(buf[1], 0x02);
}

/* Every strict prefix of an encoding is truncated and must be refused. */
static void test_coding_varint_truncated(void **state)
{
	uint8_t buf[VARINT64_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(edge64) / sizeof(edge64[0]); i++) {
		uint8_t *end = put_varint64(buf, edge64[i]);
		for (uint8_t *lim = buf; lim < end; lim++) {
			uint64_t v = 77;
			assert_null(get_varint64(buf, lim, &v));
			assert_true(v == 77);   /* ret untouched on failure */
			if (edge64[i] <= UINT32_MAX) {
				uint32_t v32 = 77;
				assert_null(get_varint32(buf, lim, &v32));
				assert_int_equal(v32, 77);
			}
		}
	}
}

static void test_coding_varint_overlong(void **state)
{
	uint8_t buf[16];
	uint64_t v;
	uint32_t v32;

	(void)state;
	/* Eleven bytes all with the continuation bit: longer than any uint64. */
	memset(buf, 0x80, sizeof(buf));
	assert_null(get_varint64(buf, buf + sizeof(buf), &v));
	assert_null(get_varint64(buf, buf + VARINT64_MAX, &v));
	assert_null(get_varint32(buf, buf + sizeof(buf), &v32));
	/* A well-formed value above UINT32_MAX is not a varint32. */
	uint8_t *end = put_varint64(buf, (uint64_t)UINT32_MAX + 1);
	assert_null(get_varint32(buf, end, &v32));
	end = put_varint64(buf, UINT64_MAX);
	assert_null(get_varint32(buf, end, &v32));
	/* An empty range holds nothing. */
	assert_null(get_varint64(buf, buf, &v));
	assert_null(get_varint32(buf, buf, &v32));
}

static void test_coding_length_prefixed(void **state)
{
	uint8_t buf[300];
	lsm_slice s = { NULL, 99 };

	(void)state;
	uint8_t *p = put_varint32(buf, 200);
	for (int i = 0; i < 200; i++)
		p[i] = (uint8_t)i;
	const uint8_t *q = get_length_prefixed(buf, p + 200, &s);
	assert_ptr_equal(q, p + 200);
	assert_ptr_equal(s.data, p);
	assert_int_equal(s.len, 200);
	/* One byte short of the declared length. */
	s.len = 99;
	assert_null(get_length_prefixed(buf, p + 199, &s));
	assert_int_equal(s.len, 99);
	/* A truncated length prefix. */
	assert_null(get_length_prefixed(buf, buf + 1, &s));
	/* Zero length is fine and points past the prefix. */
	buf[0] = 0;
	assert_ptr_equal(get_length_prefixed(buf, buf + 1, &s), buf + 1);
	assert_int_equal(s.len, 0);
}

static void test_coding_fixed_le(void **state)
{
	uint8_t buf[8];

	(void)state;
	assert_ptr_equal(put_fixed16(buf, 0x1234), buf + 2);
	assert_int_equal(buf[0], 0x34);
	assert_int_equal(buf[1], 0x12);
	assert_int_equal(get_fixed16(buf), 0x1234);
	assert_int_equal(get_fixed16((const uint8_t *)"\xff\xff"), 0xffff);

	assert_ptr_equal(put_fixed32(buf, 0x89abcdefu), buf + 4);
	assert_memory_equal(buf, "\xef\xcd\xab\x89", 4);
	assert_int_equal(get_fixed32(buf), 0x89abcdefu);

	assert_ptr_equal(put_fixed64(buf, UINT64_C(0x0123456789abcdef)), buf + 8);
	assert_memory_equal(buf, "\xef\xcd\xab\x89\x67\x45\x23\x01", 8);
	assert_true(get_fixed64(buf) == UINT64_C(0x0123456789abcdef));
	put_fixed64(buf, UINT64_MAX);
	assert_true(get_fixed64(buf) == UINT64_MAX);
}

static void test_coding_big_endian_order(void **state)
{
	uint64_t rng = test_seed("test_coding_big_endian_order");
	uint8_t a[8], b[8];

	(void)state;
	put_be64(a, UINT64_C(0x0123456789abcdef));
	assert_memory_equal(a, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
	assert_true(get_be64(a) == UINT64_C(0x0123456789abcdef));
	/* Byte order must be numeric order: that is what keys rely on. */
	for (int i = 0; i < 1000; i++) {
		uint64_t x = test_rand(&rng) >> (i % 64), y = test_rand(&rng) >> (i % 61);
		put_be64(a, x);
		put_be64(b, y);
		int c = memcmp(a, b, 8);
		assert_int_equal(c < 0, x < y);
		assert_int_equal(c == 0, x == y);
		assert_true(get_be64(a) == x);
	}
}

static void test_coding_checksum_bitflip(void **state)
{
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 1);
	uint32_t c = lsm_checksum(buf, sizeof(buf));
	assert_int_equal(lsm_checksum(buf, sizeof(buf)), c);    /* deterministic */
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(lsm_checksum(buf, sizeof(buf)), c);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Length matters: a trailing zero byte is not invisible. */
	assert_int_not_equal(lsm_checksum(buf, sizeof(buf) - 1), c);
	/* Zero-filled garbage does not checksum to zero. */
	memset(buf, 0, sizeof(buf));
	assert_int_not_equal(lsm_checksum(buf, sizeof(buf)), 0);
	assert_true(lsm_hash64("a", 1) != lsm_hash64("b", 1));
	assert_true(lsm_hash64("abc", 3) == lsm_hash64("abc", 3));
}

static void test_coding_checksum2_concat(void **state)
{
	uint8_t buf[100];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i ^ 0x5a);
	uint32_t whole = lsm_checksum(buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split++)
		assert_int_equal(lsm_checksum2(buf, split, buf + split, sizeof(buf) - split), whole);
	assert_int_equal(lsm_checksum2(buf, 0, buf, 0), lsm_checksum(buf, 0));
	/* Order matters. */
	assert_int_not_equal(lsm_checksum2(buf, 10, buf + 50, 10),
			     lsm_checksum2(buf + 50, 10, buf, 10));
}

static void test_coding_slice_compare(void **state)
{
	lsm_slice empty = lsm_slice_make(NULL, 0);
	lsm_slice abc = lsm_slice_make("abc", 3), abd = lsm_slice_make("abd", 3);
	lsm_slice ab = lsm_slice_make("abc", 2), hi = lsm_slice_make("\xff", 1);
	lsm_slice lo = lsm_slice_make("\x01", 1);

	(void)state;
	assert_int_equal(lsm_slice_cmp(abc, abc), 0);
	assert_true(lsm_slice_cmp(abc, abd) < 0);
	assert_true(lsm_slice_cmp(abd, abc) > 0);
	assert_true(lsm_slice_cmp(ab, abc) < 0);        /* prefix sorts first */
	assert_true(lsm_slice_cmp(abc, ab) > 0);
	assert_true(lsm_slice_cmp(empty, ab) < 0);
	assert_true(lsm_slice_cmp(ab, empty) > 0);
	assert_int_equal(lsm_slice_cmp(empty, empty), 0);
	assert_true(lsm_slice_cmp(lo, hi) < 0);         /* bytes are unsigned */
	assert_true(lsm_slice_eq(abc, lsm_slice_make("abc", 3)));
	assert_false(lsm_slice_eq(abc, abd));
	assert_false(lsm_slice_eq(abc, ab));
	assert_true(lsm_slice_eq(empty, lsm_slice_make("x", 0)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coding_varint64_roundtrip),
		cmocka_unit_test(test_coding_varint32_roundtrip),
		cmocka_unit_test(test_coding_varint_truncated),
		cmocka_unit_test(test_coding_varint_overlong),
		cmocka_unit_test(test_coding_length_prefixed),
		cmocka_unit_test(test_coding_fixed_le),
		cmocka_unit_test(test_coding_big_endian_order),
		cmocka_unit_test(test_coding_checksum_bitflip),
		cmocka_unit_test(test_coding_checksum2_concat),
		cmocka_unit_test(test_coding_slice_compare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
