/*
 * test_compress.c - stored block form: LZ4 and plain round trips, the 1/8
 * rule that keeps incompressible data plain, appending after earlier blocks,
 * and every way a stored block can be damaged (checksum, type, declared
 * size, LZ4 stream, truncation).
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

static uint8_t *compressible(size_t n)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)("the quick brown fox "[i % 20]);
	return p;
}

static uint8_t *random_bytes(size_t n, uint64_t *seed)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)test_rand(seed);
	return p;
}

/* Encodes raw alone and returns the stored buffer. */
static uint8_t *encode(const uint8_t *raw, size_t n, int comp, size_t *ret_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(lsm_block_encode(lsm_slice_make(raw, n), comp, &buf, &len, &cap), 0);
	assert_true(len <= cap);
	*ret_len = len;
	return buf;
}

static void check_decode(const uint8_t *stored, size_t len, const uint8_t *raw, size_t n)
{
	uint8_t *out;
	size_t olen;
	assert_int_equal(lsm_block_decode(lsm_slice_make(stored, len), &out, &olen), 0);
	assert_int_equal(olen, n);
	if (n)
		assert_memory_equal(out, raw, n);
	free(out);

	/* The consuming form gives the same bytes. */
	uint8_t *copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, stored, len);
	assert_int_equal(lsm_block_decode_owned(copy, len, &out, &olen), 0);
	assert_int_equal(olen, n);
	if (n)
		assert_memory_equal(out, raw, n);
	free(out);
}

static void test_compress_round_trip_compressible(void **state)
{
	(void)state;
	size_t sizes[] = { 64, 100, 4096, 1 << 20 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint8_t *raw = compressible(sizes[s]);
		size_t len;
		uint8_t *st = encode(raw, sizes[s], LSM_COMPRESS_LZ4, &len);
		assert_int_equal(st[len - LSM_BLOCK_TRAILER], 1);     /* lz4 */
		assert_true(len <= sizes[s] - sizes[s] / 8 + LSM_BLOCK_TRAILER);
		if (sizes[s] >= 4096)
			assert_true(len < sizes[s] / 4);
		check_decode(st, len, raw, sizes[s]);
		free(st);
		/* Asked for none, stored plain with the same bytes. */
		st = encode(raw, sizes[s], LSM_COMPRESS_NONE, &len);
		assert_int_equal(len, sizes[s] + LSM_BLOCK_TRAILER);
		assert_int_equal(st[len - LSM_BLOCK_TRAILER], 0);
		assert_memory_equal(st, raw, sizes[s]);
		check_decode(st, len, raw, sizes[s]);
		free(st);
		free(raw);
	}
}

static void test_compress_round_trip_incompressible(void **state)
{
	(void)state;
	uint64_t seed = test_seed("test_compress_round_trip_incompressible");
	size_t n = 8192;
	uint8_t *raw = random_bytes(n, &seed);
	size_t len;
	uint8_t *st = encode(raw, n, LSM_COMPRESS_LZ4, &len);
	/* LZ4 cannot save 1/8 of random bytes: kept plain. */
	assert_int_equal(st[len - LSM_BLOCK_TRAILER], 0);
	assert_int_equal(len, n + LSM_BLOCK_TRAILER);
	check_decode(st, len, raw, n);
	free(st);

	/* Mostly random with a compressible head: whichever form is chosen
	 * obeys the 1/8 rule and decodes. */
	memset(raw, 'x', n / 16);
	st = encode(raw, n, LSM_COMPRESS_LZ4, &len);
	assert_true(st[len - LSM_BLOCK_TRAILER] == 0 || len <= n - n / 8 + LSM_BLOCK_TRAILER);
	check_decode(st, len, raw, n);
	free(st);

	/* Empty and tiny blocks. */
	st = encode(raw, 0, LSM_COMPRESS_LZ4, &len);
	assert_int_equal(len, LSM_BLOCK_TRAILER);
	check_decode(st, len, raw, 0);
	free(st);
	st = encode(raw, 10, LSM_COMPRESS_LZ4, &len);
	check_decode(st, len, raw, 10);
	free(st);
	free(raw);
}

static void test_compress_append(void **state)
{
	(void)state;
	/* Several blocks appended to one buffer decode independently. */
	uint8_t *a = compressible(5000), *b = compressible(300);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(lsm_block_encode(lsm_slice_make(a, 5000), LSM_COMPRESS_LZ4, &buf, &len, &cap), 0);
	size_t first = len;
	assert_int_equal(lsm_block_encode(lsm_slice_make(b, 300), LSM_COMPRESS_NONE, &buf, &len, &cap), 0);
	size_t second = len;
	assert_int_equal(lsm_block_encode(lsm_slice_make(a, 5000), LSM_COMPRESS_LZ4, &buf, &len, &cap), 0);
	check_decode(buf, first, a, 5000);
	check_decode(buf + first, second - first, b, 300);
	check_decode(buf + second, len - second, a, 5000);
	assert_int_equal(lsm_block_encode(lsm_slice_make(a, 10), 7, &buf, &len, &cap), -EINVAL);
	free(buf);
	free(a);
	free(b);
}

static int decode_err(const uint8_t *st, size_t len)
{
	uint8_t *out = (uint8_t *)0x1;
	size_t olen;
	int r = lsm_block_decode(lsm_slice_make(st, len), &out, &olen);
	assert_true(r < 0);
	assert_ptr_equal(out, (uint8_t *)0x1);   /* ret_* untouched on failure */
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, st, len);
	assert_int_equal(lsm_block_decode_owned(copy, len, &out, &olen), r);
	return r;
}

/* Rewrites the trailer checksum so a change gets past it. */
static void reseal(uint8_t *st, size_t len)
{
	put_fixed32(st + len - 4, lsm_checksum(st, len - 4));
}

static void test_compress_flipped_byte(void **state)
{
	(void)state;
	uint8_t *raw = compressible(4096);
	size_t len;
	uint8_t *st = encode(raw, 4096, LSM_COMPRESS_LZ4, &len);
	for (size_t i = 0; i < len; i++) {
		st[i] ^= 0x10;
		assert_int_equal(decode_err(st, len), -EBADMSG);
		assert_non_null(strstr(lsm_last_error(), "checksum"));
		st[i] ^= 0x10;
	}
	free(st);
	st = encode(raw, 4096, LSM_COMPRESS_NONE, &len);
	st[100] ^= 1;
	assert_int_equal(decode_err(st, len), -EBADMSG);
	free(st);
	free(raw);
}

static void test_compress_bad_type(void **state)
{
	(void)state;
	uint8_t *raw = compressible(4096);
	size_t len;
	uint8_t *st = encode(raw, 4096, LSM_COMPRESS_LZ4, &len);
	st[len - LSM_BLOCK_TRAILER] = 2;
	reseal(st, len);
	assert_int_equal(decode_err(st, len), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "compression type"));
	st[len - LSM_BLOCK_TRAILER] = 0xff;
	reseal(st, len);
	assert_int_equal(decode_err(st, len), -EUCLEAN);
	free(st);
	free(raw);
}

static void test_compress_bad_sizes(void **state)
{
	(void)state;
	uint8_t *raw = compressible(4096);
	size_t len;
	uint8_t *st = encode(raw, 4096, LSM_COMPRESS_LZ4, &len);
	uint8_t *buf = malloc(len + 256);
	assert_non_null(buf);

	/* Shorter than a trailer. */
	assert_int_equal(decode_err(st, 4), -EUCLEAN);
	assert_int_equal(decode_err(st, 0), -EUCLEAN);

	/* Declared size wrong by one either way: LZ4 must not decode to it. */
	uint32_t sizes[] = { 4095, 4097, 1, 0 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint8_t *p = put_varint32(buf, sizes[s]);
		size_t hdr = (size_t)(p - buf);
		size_t body = len - LSM_BLOCK_TRAILER - 2;      /* 4096 takes 2 varint bytes */
		memcpy(p, st + 2, body);
		p[body] = 1;
		size_t l = hdr + body + LSM_BLOCK_TRAILER;
		reseal(buf, l);
		assert_int_equal(decode_err(buf, l), -EUCLEAN);
	}
	/* A huge declared size is refused before any allocation. */
	uint8_t *p = put_varint32(buf, 0xfffffff0u);
	size_t hdr = (size_t)(p - buf);
	memcpy(p, st + 2, len - LSM_BLOCK_TRAILER - 2);
	size_t l = hdr + len - LSM_BLOCK_TRAILER - 2 + LSM_BLOCK_TRAILER;
	buf[l - LSM_BLOCK_TRAILER] = 1;
	reseal(buf, l);
	assert_int_equal(decode_err(buf, l), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "implausible"));
	/* More than LZ4 could expand to, though under the cap. */
	p = put_varint32(buf, 1u << 20);
	memset(p, 0, 16);
	p[16] = 1;
	l = (size_t)(p - buf) + 16 + LSM_BLOCK_TRAILER;
	reseal(buf, l);
	assert_int_equal(decode_err(buf, l), -EUCLEAN);
	/* A truncated varint header. */
	buf[0] = 0x80;
	buf[1] = 1;
	reseal(buf, 1 + LSM_BLOCK_TRAILER);
	assert_int_equal(decode_err(buf, 1 + LSM_BLOCK_TRAILER), -EUCLEAN);

	/* Garbage LZ4 stream with a plausible size. */
	p = put_varint32(buf, 200);
	memset(p, 0xf0, 64);
	p[64] = 1;
	l = (size_t)(p - buf) + 64 + LSM_BLOCK_TRAILER;
	reseal(buf, l);
	assert_int_equal(decode_err(buf, l), -EUCLEAN);
	free(buf);
	free(st);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compress_round_trip_compressible),
		cmocka_unit_test(test_compress_round_trip_incompressible),
		cmocka_unit_test(test_compress_append),
		cmocka_unit_test(test_compress_flipped_byte),
		cmocka_unit_test(test_compress_bad_type),
		cmocka_unit_test(test_compress_bad_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
