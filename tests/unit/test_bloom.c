/*
 * test_bloom.c - bloom filter build and probe: no false negatives, a measured
 * false-positive rate under 2% at 10 bits per key, the small-filter floor,
 * rejection of bits_per_key 0, and malformed filters (which must answer
 * "may contain" rather than read past the buffer or drop keys).
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

static lsm_slice key_of(char *buf, uint64_t i)
{
	return lsm_slice_make(buf, (size_t)sprintf(buf, "user-key-%llu", (unsigned long long)i));
}

static uint8_t *build(int bits, uint64_t n, size_t *ret_len)
{
	lsm_bloom_builder *b;
	uint8_t *f;
	char k[64];
	assert_int_equal(lsm_bloom_builder_new(bits, &b), 0);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(lsm_bloom_builder_add(b, key_of(k, i)), 0);
	assert_int_equal(lsm_bloom_builder_finish(b, &f, ret_len), 0);
	lsm_bloom_builder_free(b);
	return f;
}

static void test_bloom_no_false_negatives(void **state)
{
	(void)state;
	uint64_t sizes[] = { 1, 10, 1000, 100000 };
	char k[64];
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t len;
		uint8_t *f = build(10, sizes[s], &len);
		for (uint64_t i = 0; i < sizes[s]; i++)
			assert_true(lsm_bloom_may_contain(f, len, key_of(k, i)));
		free(f);
	}
}

static double fp_rate(int bits, uint64_t n)
{
	size_t len;
	uint8_t *f = build(bits, n, &len);
	char k[64];
	uint64_t fp = 0, probes = 100000;
	for (uint64_t i = 0; i < probes; i++)
		fp += lsm_bloom_may_contain(f, len, key_of(k, n + 1000000 + i));
	free(f);
	return (double)fp / (double)probes;
}

static void test_bloom_false_positive_rate(void **state)
{
	(void)state;
	double r = fp_rate(10, 100000);
	fprintf(stderr, "fp rate at 10 bits/key: %.4f\n", r);
	assert_true(r < 0.02);
	/* Fewer bits must cost accuracy (so the rate above is no accident),
	 * but stay a filter. */
	double r4 = fp_rate(4, 100000);
	assert_true(r4 > r);
	assert_true(r4 < 0.3);
	/* Many more bits give far fewer false positives. */
	assert_true(fp_rate(20, 100000) < 0.001);
}

static void test_bloom_small_filters(void **state)
{
	(void)state;
	/* An empty filter rejects everything and still has the 64-bit floor. */
	size_t len;
	char k[64];
	uint8_t *f = build(10, 0, &len);
	assert_int_equal(len, 9);
	int hits = 0;
	for (uint64_t i = 0; i < 1000; i++)
		hits += lsm_bloom_may_contain(f, len, key_of(k, i));
	assert_int_equal(hits, 0);
	free(f);

	/* Two keys: both found, and most others rejected despite the tiny size. */
	f = build(10, 2, &len);
	assert_int_equal(len, 9);
	assert_true(lsm_bloom_may_contain(f, len, key_of(k, 0)));
	assert_true(lsm_bloom_may_contain(f, len, key_of(k, 1)));
	hits = 0;
	for (uint64_t i = 2; i < 1002; i++)
		hits += lsm_bloom_may_contain(f, len, key_of(k, i));
	assert_true(hits < 100);
	free(f);

	/* The empty key is a key like any other. */
	lsm_bloom_builder *b;
	assert_int_equal(lsm_bloom_builder_new(10, &b), 0);
	assert_int_equal(lsm_bloom_builder_add(b, lsm_slice_make(NULL, 0)), 0);
	assert_int_equal(lsm_bloom_builder_finish(b, &f, &len), 0);
	assert_true(lsm_bloom_may_contain(f, len, lsm_slice_make("", 0)));
	free(f);
	lsm_bloom_builder_free(b);
}

static void test_bloom_bad_bits(void **state)
{
	(void)state;
	lsm_bloom_builder *b = NULL;
	assert_int_equal(lsm_bloom_builder_new(0, &b), -EINVAL);
	assert_int_equal(lsm_bloom_builder_new(-3, &b), -EINVAL);
	assert_int_equal(lsm_bloom_builder_new(1000, &b), -EINVAL);
	assert_null(b);
	lsm_bloom_builder_free(NULL);
	/* One bit per key still works (k is at least 1). */
	size_t len;
	char k[64];
	uint8_t *f = build(1, 1000, &len);
	assert_int_equal(f[len - 1], 1);
	for (uint64_t i = 0; i < 1000; i++)
		assert_true(lsm_bloom_may_contain(f, len, key_of(k, i)));
	free(f);
}

static void test_bloom_malformed(void **state)
{
	(void)state;
	char k[64];
	size_t len;
	uint8_t *f = build(10, 1000, &len);
	/* Too short to hold a bit: may contain. */
	assert_true(lsm_bloom_may_contain(f, 0, key_of(k, 5000)));
	assert_true(lsm_bloom_may_contain(f, 1, key_of(k, 5000)));
	assert_true(lsm_bloom_may_contain(NULL, 0, key_of(k, 5000)));

	/* k out of range: may contain, for every key. */
	uint8_t saved = f[len - 1];
	f[len - 1] = 0;
	assert_true(lsm_bloom_may_contain(f, len, key_of(k, 5000)));
	f[len - 1] = 31;
	for (uint64_t i = 5000; i < 5100; i++)
		assert_true(lsm_bloom_may_contain(f, len, key_of(k, i)));
	f[len - 1] = saved;

	/* Intact, the filter rejects most absent keys. */
	int hits = 0;
	for (uint64_t i = 5000; i < 6000; i++)
		hits += lsm_bloom_may_contain(f, len, key_of(k, i));
	assert_true(hits < 50);

	/* A truncated filter (other k byte) never reads past its length: run
	 * every prefix under ASan. */
	for (size_t l = 0; l < 64; l++) {
		uint8_t *g = malloc(l ? l : 1);
		assert_non_null(g);
		memcpy(g, f, l);
		if (l)
			g[l - 1] = 6;
		(void)lsm_bloom_may_contain(g, l, key_of(k, l));
		free(g);
	}
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bloom_no_false_negatives),
		cmocka_unit_test(test_bloom_false_positive_rate),
		cmocka_unit_test(test_bloom_small_filters),
		cmocka_unit_test(test_bloom_bad_bits),
		cmocka_unit_test(test_bloom_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
