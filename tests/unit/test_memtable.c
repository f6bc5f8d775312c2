/*
 * test_memtable.c - unit tests for lsm/memtable.c: point lookups across
 * versions and deletions of a key at every sequence, keys that are prefixes
 * of each other, the internal-key iterator (order, seek, prev, bare-key
 * seek), references held by iterators, large and empty values, rejected
 * arguments, and lookups racing one writer.
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
#include <pthread.h>

#include "lsm_int.h"
#include "testutil.h"

static lsm_slice S(const char *s)
{
	return lsm_slice_make(s, strlen(s));
}

static void add(lsm_memtable *m, uint64_t seq, unsigned type, const char *k, const char *v)
{
	assert_int_equal(lsm_memtable_add(m, seq, type, S(k), S(v)), 0);
}

/* Asserts that get(k, seq) finds type/value, or nothing when want is NULL. */
static void expect_get(lsm_memtable *m, const char *k, uint64_t seq, unsigned type, const char *want)
{
	unsigned got_type = 0xdead;
	lsm_slice got = lsm_slice_make(NULL, 12345);
	int r = lsm_memtable_get(m, S(k), seq, &got_type, &got);
	if (!want) {
		assert_int_equal(r, 0);
		return;
	}
	assert_int_equal(r, 1);
	assert_int_equal(got_type, type);
	assert_int_equal(got.len, strlen(want));
	assert_memory_equal(got.data, want, got.len);
}

static void test_memtable_versions(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	add(m, 1, LSM_TYPE_VALUE, "k", "v1");
	add(m, 7, LSM_TYPE_VALUE, "k", "v7");
	add(m, 3, LSM_TYPE_VALUE, "k", "v3");
	add(m, 5, LSM_TYPE_DELETE, "k", "ignored");
	add(m, 4, LSM_TYPE_VALUE, "j", "j4");
	add(m, 2, LSM_TYPE_VALUE, "ka", "ka2");   /* "k" is a prefix of it */
	add(m, 6, LSM_TYPE_VALUE, "", "empty-key");
	assert_int_equal(lsm_memtable_entries(m), 7);

	expect_get(m, "k", 0, 0, NULL);            /* older than every version */
	expect_get(m, "k", 1, LSM_TYPE_VALUE, "v1");
	expect_get(m, "k", 2, LSM_TYPE_VALUE, "v1");
	expect_get(m, "k", 3, LSM_TYPE_VALUE, "v3");
	expect_get(m, "k", 4, LSM_TYPE_VALUE, "v3");
	expect_get(m, "k", 5, LSM_TYPE_DELETE, "");
	expect_get(m, "k", 6, LSM_TYPE_DELETE, "");
	expect_get(m, "k", 7, LSM_TYPE_VALUE, "v7");
	expect_get(m, "k", LSM_MAX_SEQ, LSM_TYPE_VALUE, "v7");
	expect_get(m, "k", UINT64_MAX, LSM_TYPE_VALUE, "v7");
	expect_get(m, "ka", 1, 0, NULL);
	expect_get(m, "ka", 2, LSM_TYPE_VALUE, "ka2");
	expect_get(m, "j", 9, LSM_TYPE_VALUE, "j4");
	expect_get(m, "", 9, LSM_TYPE_VALUE, "empty-key");
	expect_get(m, "", 5, 0, NULL);
	expect_get(m, "a", 9, 0, NULL);            /* before every key */
	expect_get(m, "kb", 9, 0, NULL);           /* between keys */
	expect_get(m, "z", 9, 0, NULL);            /* after every key */
	unsigned t;
	lsm_slice v;
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("k\0", 2), 9, &t, &v), 0);  /* "k" is not "k\0" */
	lsm_memtable_unref(m);
}

static void expect_key(lsm_iiter *it, const char *ukey, uint64_t seq, unsigned type, const char *val)
{
	assert_true(iiter_valid(it));
	lsm_slice k = iiter_key(it);
	assert_int_equal(k.len, strlen(ukey) + 8);
	assert_memory_equal(k.data, ukey, strlen(ukey));
	assert_int_equal(lsm_ikey_seq(k), seq);
	assert_int_equal(lsm_ikey_type(k), type);
	lsm_slice v = iiter_value(it);
	assert_int_equal(v.len, strlen(val));
	assert_memory_equal(v.data, val, v.len);
}

static void test_memtable_iter_order(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	add(m, 10, LSM_TYPE_VALUE, "b", "b10");
	add(m, 12, LSM_TYPE_DELETE, "b", "");
	add(m, 11, LSM_TYPE_VALUE, "b", "b11");
	add(m, 13, LSM_TYPE_VALUE, "a", "a13");
	add(m, 14, LSM_TYPE_VALUE, "c", "c14");
	add(m, 9, LSM_TYPE_VALUE, "c", "c9");

	lsm_iiter *it;
	assert_int_equal(lsm_memtable_iter_new(m, &it), 0);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);

	iiter_seek_to_first(it);
	expect_key(it, "a", 13, LSM_TYPE_VALUE, "a13");
	iiter_next(it);
	expect_key(it, "b", 12, LSM_TYPE_DELETE, "");
	iiter_next(it);
	expect_key(it, "b", 11, LSM_TYPE_VALUE, "b11");
	iiter_next(it);
	expect_key(it, "b", 10, LSM_TYPE_VALUE, "b10");
	iiter_next(it);
	expect_key(it, "c", 14, LSM_TYPE_VALUE, "c14");
	iiter_next(it);
	expect_key(it, "c", 9, LSM_TYPE_VALUE, "c9");
	iiter_next(it);
	assert_false(iiter_valid(it));

	iiter_seek_to_last(it);
	expect_key(it, "c", 9, LSM_TYPE_VALUE, "c9");
	iiter_prev(it);
	expect_key(it, "c", 14, LSM_TYPE_VALUE, "c14");
	iiter_prev(it);
	expect_key(it, "b", 10, LSM_TYPE_VALUE, "b10");

	/* seek with lookup keys: "b as of 11" lands on b@11, "as of 12" on the
	 * deletion, "as of 9" past every b */
	uint8_t buf[16];
	size_t n = lsm_ikey_encode(buf, S("b"), 11, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(buf, n));
	expect_key(it, "b", 11, LSM_TYPE_VALUE, "b11");
	n = lsm_ikey_encode(buf, S("b"), 12, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(buf, n));
	expect_key(it, "b", 12, LSM_TYPE_DELETE, "");
	n = lsm_ikey_encode(buf, S("b"), 9, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(buf, n));
	expect_key(it, "c", 14, LSM_TYPE_VALUE, "c14");
	/* an exact internal key finds itself */
	n = lsm_ikey_encode(buf, S("c"), 9, LSM_TYPE_VALUE);
	iiter_seek(it, lsm_slice_make(buf, n));
	expect_key(it, "c", 9, LSM_TYPE_VALUE, "c9");
	n = lsm_ikey_encode(buf, S("c"), 8, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(buf, n));
	assert_false(iiter_valid(it));
	/* a target shorter than a trailer is taken as a bare user key */
	iiter_seek(it, S("b"));
	expect_key(it, "b", 12, LSM_TYPE_DELETE, "");
	iiter_seek(it, S("bb"));
	expect_key(it, "c", 14, LSM_TYPE_VALUE, "c14");
	iiter_seek(it, lsm_slice_make(NULL, 0));
	expect_key(it, "a", 13, LSM_TYPE_VALUE, "a13");
	iiter_prev(it);
	assert_false(iiter_valid(it));

	iiter_destroy(it);
	iiter_destroy(NULL);
	lsm_memtable_unref(m);
}

/* Many versions of many keys in random order come out sorted. */
static void test_memtable_iter_random(void **state)
{
	(void)state;
	uint64_t rng = test_seed("test_memtable_iter_random");
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	size_t n = test_long() ? 100000 : 5000;
	for (uint64_t seq = 1; seq <= n; seq++) {
		char k[16];
		snprintf(k, sizeof(k), "key%05u", (unsigned)(test_rand(&rng) % 500));
		unsigned type = test_rand(&rng) % 4 ? LSM_TYPE_VALUE : LSM_TYPE_DELETE;
		add(m, seq, type, k, k);
	}
	assert_int_equal(lsm_memtable_entries(m), n);
	lsm_iiter *it;
	assert_int_equal(lsm_memtable_iter_new(m, &it), 0);
	size_t count = 0;
	uint8_t prev[32];
	size_t prev_len = 0;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it)) {
		lsm_slice k = iiter_key(it);
		assert_true(k.len < sizeof(prev));
		if (count)
			assert_true(lsm_ikey_cmp(lsm_slice_make(prev, prev_len), k) < 0);
		memcpy(prev, k.data, k.len);
		prev_len = k.len;
		count++;
	}
	assert_int_equal(count, n);
	iiter_destroy(it);
	lsm_memtable_unref(m);
}

static void test_memtable_ref_unref(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	add(m, 1, LSM_TYPE_VALUE, "x", "1");
	lsm_memtable_ref(m);
	lsm_memtable_unref(m);            /* back to 1: still usable */
	expect_get(m, "x", 1, LSM_TYPE_VALUE, "1");

	lsm_iiter *it;
	assert_int_equal(lsm_memtable_iter_new(m, &it), 0);
	lsm_memtable_unref(m);            /* the iterator's reference keeps it alive */
	iiter_seek_to_first(it);
	expect_key(it, "x", 1, LSM_TYPE_VALUE, "1");
	iiter_destroy(it);                /* frees the memtable (ASan: no leak) */
	lsm_memtable_unref(NULL);
}

static void test_memtable_large_and_empty_values(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	size_t before = lsm_memtable_usage(m);
	size_t big = 1 << 20;
	uint8_t *val = malloc(big);
	assert_non_null(val);
	for (size_t i = 0; i < big; i++)
		val[i] = (uint8_t)(i * 31);
	assert_int_equal(lsm_memtable_add(m, 1, LSM_TYPE_VALUE, S("big"), lsm_slice_make(val, big)), 0);
	assert_int_equal(lsm_memtable_add(m, 2, LSM_TYPE_VALUE, S("e"), lsm_slice_make(NULL, 0)), 0);
	assert_true(lsm_memtable_usage(m) >= before + big);

	unsigned t;
	lsm_slice v;
	assert_int_equal(lsm_memtable_get(m, S("big"), 5, &t, &v), 1);
	assert_int_equal(v.len, big);
	assert_memory_equal(v.data, val, big);
	assert_int_equal(lsm_memtable_get(m, S("e"), 5, &t, &v), 1);
	assert_int_equal(t, LSM_TYPE_VALUE);
	assert_int_equal(v.len, 0);

	/* a key long enough for a multi-byte length prefix */
	char key[300];
	memset(key, 'q', sizeof(key));
	assert_int_equal(lsm_memtable_add(m, 3, LSM_TYPE_VALUE, lsm_slice_make(key, sizeof(key)), S("long")), 0);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make(key, sizeof(key)), 3, &t, &v), 1);
	assert_int_equal(v.len, 4);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make(key, sizeof(key) - 1), 3, &t, &v), 0);
	free(val);
	lsm_memtable_unref(m);
}

static void test_memtable_add_invalid(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	assert_int_equal(lsm_memtable_add(m, 1, LSM_TYPE_SEEK, S("k"), S("v")), -EINVAL);
	assert_int_equal(lsm_memtable_add(m, 1, 7, S("k"), S("v")), -EINVAL);
	assert_int_equal(lsm_memtable_add(m, LSM_MAX_SEQ + 1, LSM_TYPE_VALUE, S("k"), S("v")), -EINVAL);
	assert_int_equal(lsm_memtable_entries(m), 0);
	unsigned t;
	lsm_slice v;
	assert_int_equal(lsm_memtable_get(m, S("k"), LSM_MAX_SEQ, &t, &v), 0);
	assert_int_equal(lsm_memtable_add(m, LSM_MAX_SEQ, LSM_TYPE_VALUE, S("k"), S("v")), 0);
	expect_get(m, "k", LSM_MAX_SEQ, LSM_TYPE_VALUE, "v");
	lsm_memtable_unref(m);
}

/* ---- gets racing the writer -------------------------------------------- */

struct race {
	lsm_memtable *m;
	atomic_uint_fast64_t published;   /* highest sequence fully added */
	atomic_bool done;
	size_t errors;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	uint64_t rng = 42;
	while (!atomic_load(&r->done)) {
		uint64_t pub = atomic_load(&r->published);
		if (!pub)
			continue;
		/* key i%100 was last written at the largest seq <= pub with
		 * seq % 100 == i, and its value is that seq */
		uint64_t seq = 1 + test_rand(&rng) % pub;
		char k[8], want[24];
		snprintf(k, sizeof(k), "%02u", (unsigned)(seq % 100));
		snprintf(want, sizeof(want), "%llu", (unsigned long long)seq);
		unsigned t;
		lsm_slice v;
		if (lsm_memtable_get(r->m, S(k), seq, &t, &v) != 1 || t != LSM_TYPE_VALUE ||
		    !lsm_slice_eq(v, S(want)))
			r->errors++;
	}
	return NULL;
}

static void test_memtable_concurrent_get(void **state)
{
	(void)state;
	struct race r = { .errors = 0 };
	assert_int_equal(lsm_memtable_new(&r.m), 0);
	atomic_init(&r.published, 0);
	atomic_init(&r.done, false);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, race_reader, &r), 0);
	for (uint64_t seq = 1; seq <= 20000; seq++) {
		char k[8], v[24];
		snprintf(k, sizeof(k), "%02u", (unsigned)(seq % 100));
		snprintf(v, sizeof(v), "%llu", (unsigned long long)seq);
		add(r.m, seq, LSM_TYPE_VALUE, k, v);
		atomic_store(&r.published, seq);
	}
	atomic_store(&r.done, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.errors, 0);
	lsm_memtable_unref(r.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memtable_versions),
		cmocka_unit_test(test_memtable_iter_order),
		cmocka_unit_test(test_memtable_iter_random),
		cmocka_unit_test(test_memtable_ref_unref),
		cmocka_unit_test(test_memtable_large_and_empty_values),
		cmocka_unit_test(test_memtable_add_invalid),
		cmocka_unit_test(test_memtable_concurrent_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
