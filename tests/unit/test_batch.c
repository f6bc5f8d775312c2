/*
 * test_batch.c - unit tests for lsm/batch.c: building a batch and reading it
 * back, count/clear/append/sequence, the size limits of put and delete, the
 * strict parser against truncated, miscounted, mistagged, oversized and
 * trailing-garbage representations, and applying a batch to a memtable
 * (all of it, or none of it when malformed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lsm_int.h"
#include "testutil.h"

struct rec {
	uint64_t seq;
	unsigned type;
	char key[32], val[32];
	size_t klen, vlen;
};

struct collect {
	struct rec recs[16];
	int n;
	int fail_at;      /* return -EIO at this record; -1 never */
};

static int collect_fn(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct collect *c = arg;
	if (c->n == c->fail_at)
		return -EIO;
	assert_true(c->n < 16);
	assert_true(key.len <= sizeof(c->recs[0].key) && value.len <= sizeof(c->recs[0].val));
	struct rec *r = &c->recs[c->n++];
	r->seq = seq;
	r->type = type;
	r->klen = key.len;
	r->vlen = value.len;
	if (key.len)
		memcpy(r->key, key.data, key.len);
	if (value.len)
		memcpy(r->val, value.data, value.len);
	return 0;
}

static void expect_rec(const struct rec *r, uint64_t seq, unsigned type, const char *k, const char *v)
{
	assert_int_equal(r->seq, seq);
	assert_int_equal(r->type, type);
	assert_int_equal(r->klen, strlen(k));
	assert_memory_equal(r->key, k, r->klen);
	assert_int_equal(r->vlen, strlen(v));
	assert_memory_equal(r->val, v, r->vlen);
}

/* put a=1, delete b, put "" = "", put c=333 at sequence 100 */
static lsm_batch *sample(void)
{
	lsm_batch *b;
	assert_int_equal(lsm_batch_new(&b), 0);
	assert_int_equal(lsm_batch_put(b, "a", 1, "1", 1), 0);
	assert_int_equal(lsm_batch_delete(b, "b", 1), 0);
	assert_int_equal(lsm_batch_put(b, NULL, 0, NULL, 0), 0);
	assert_int_equal(lsm_batch_put(b, "c", 1, "333", 3), 0);
	lsm_batch_set_seq(b, 100);
	return b;
}

static void test_batch_round_trip(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	assert_int_equal(lsm_batch_count(b), 4);
	assert_int_equal(lsm_batch_seq(b), 100);
	assert_int_equal(b->user_bytes, 1 + 1 + 1 + 0 + 1 + 3);
	/* the documented layout, byte for byte */
	static const uint8_t want[] = {
		100, 0, 0, 0, 0, 0, 0, 0,  4, 0, 0, 0,
		1, 1, 'a', 1, '1',
		0, 1, 'b',
		1, 0, 0,
		1, 1, 'c', 3, '3', '3', '3',
	};
	assert_int_equal(b->len, sizeof(want));
	assert_memory_equal(b->rep, want, sizeof(want));

	struct collect c = { .fail_at = -1 };
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, collect_fn, &c), 0);
	assert_int_equal(c.n, 4);
	expect_rec(&c.recs[0], 100, LSM_TYPE_VALUE, "a", "1");
	expect_rec(&c.recs[1], 101, LSM_TYPE_DELETE, "b", "");
	expect_rec(&c.recs[2], 102, LSM_TYPE_VALUE, "", "");
	expect_rec(&c.recs[3], 103, LSM_TYPE_VALUE, "c", "333");
	lsm_batch_free(b);
	lsm_batch_free(NULL);
}

static void test_batch_count_clear(void **state)
{
	(void)state;
	lsm_batch *b;
	assert_int_equal(lsm_batch_new(&b), 0);
	assert_int_equal(lsm_batch_count(b), 0);
	assert_int_equal(b->len, LSM_BATCH_HEADER);
	struct collect c = { .fail_at = -1 };
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);

	/* grow well past the first buffer */
	char val[1000];
	memset(val, 'v', sizeof(val));
	for (int i = 0; i < 3000; i++)
		assert_int_equal(lsm_batch_put(b, "key", 3, val, sizeof(val)), 0);
	assert_int_equal(lsm_batch_count(b), 3000);
	assert_true(b->cap > (1u << 20));
	lsm_batch_set_seq(b, 7);

	lsm_batch_clear(b);
	assert_int_equal(lsm_batch_count(b), 0);
	assert_int_equal(lsm_batch_seq(b), 0);
	assert_int_equal(b->len, LSM_BATCH_HEADER);
	assert_int_equal(b->user_bytes, 0);
	assert_true(b->cap <= (1u << 20));   /* the big buffer went back */

	assert_int_equal(lsm_batch_delete(b, "x", 1), 0);
	assert_int_equal(lsm_batch_count(b), 1);
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, collect_fn, &c), 0);
	assert_int_equal(c.n, 1);
	expect_rec(&c.recs[0], 0, LSM_TYPE_DELETE, "x", "");
	lsm_batch_free(b);
}

static void test_batch_append(void **state)
{
	(void)state;
	lsm_batch *dst = sample(), *src, *empty;
	assert_int_equal(lsm_batch_new(&src), 0);
	assert_int_equal(lsm_batch_new(&empty), 0);
	assert_int_equal(lsm_batch_put(src, "d", 1, "44", 2), 0);
	assert_int_equal(lsm_batch_delete(src, "a", 1), 0);
	lsm_batch_set_seq(src, 999);   /* ignored: records take dst's numbering */

	uint64_t bytes = dst->user_bytes + src->user_bytes;
	assert_int_equal(lsm_batch_append(dst, src), 0);
	assert_int_equal(lsm_batch_append(dst, empty), 0);
	assert_int_equal(lsm_batch_count(dst), 6);
	assert_int_equal(dst->user_bytes, bytes);
	assert_int_equal(lsm_batch_count(src), 2);   /* src unchanged */

	struct collect c = { .fail_at = -1 };
	assert_int_equal(lsm_batch_iterate(dst->rep, dst->len, collect_fn, &c), 0);
	assert_int_equal(c.n, 6);
	expect_rec(&c.recs[3], 103, LSM_TYPE_VALUE, "c", "333");
	expect_rec(&c.recs[4], 104, LSM_TYPE_VALUE, "d", "44");
	expect_rec(&c.recs[5], 105, LSM_TYPE_DELETE, "a", "");
	lsm_batch_free(dst);
	lsm_batch_free(src);
	lsm_batch_free(empty);
}

/* Adds each record's key length to *(size_t *)arg. */
static int count_fn(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	(void)seq;
	(void)type;
	(void)value;
	*(size_t *)arg += key.len;
	return 0;
}

static void test_batch_limits(void **state)
{
	(void)state;
	size_t n = 0;
	lsm_batch *b;
	assert_int_equal(lsm_batch_new(&b), 0);
	char *key = calloc(1, LSM_MAX_KEY + 1);
	assert_non_null(key);
	assert_int_equal(lsm_batch_put(b, key, LSM_MAX_KEY + 1, "v", 1), -EINVAL);
	assert_non_null(strstr(lsm_last_error(), "key"));
	assert_int_equal(lsm_batch_delete(b, key, LSM_MAX_KEY + 1), -EINVAL);
	/* the size is checked before anything is read */
	assert_int_equal(lsm_batch_put(b, "k", 1, key, (size_t)LSM_MAX_VALUE + 1), -EINVAL);
	assert_non_null(strstr(lsm_last_error(), "value"));
	assert_int_equal(lsm_batch_put(b, NULL, 3, "v", 1), -EINVAL);
	assert_int_equal(lsm_batch_put(b, "k", 1, NULL, 3), -EINVAL);
	assert_int_equal(lsm_batch_count(b), 0);
	assert_int_equal(b->len, LSM_BATCH_HEADER);
	assert_int_equal(b->user_bytes, 0);

	/* exactly at the limit is fine, and reads back */
	assert_int_equal(lsm_batch_put(b, key, LSM_MAX_KEY, "v", 1), 0);
	assert_int_equal(lsm_batch_count(b), 1);
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, count_fn, &n), 0);
	assert_int_equal(n, LSM_MAX_KEY);
	free(key);
	lsm_batch_free(b);
}

/* ---- malformed representations ----------------------------------------- */

/* Asserts that rep is rejected with -EUCLEAN before fn sees any record. */
static void expect_corrupt(const uint8_t *rep, size_t len, const char *what)
{
	struct collect c = { .fail_at = -1 };
	lsm_clear_error();
	assert_int_equal(lsm_batch_iterate(rep, len, collect_fn, &c), -EUCLEAN);
	assert_int_equal(c.n, 0);
	assert_non_null(strstr(lsm_last_error(), what));
}

static void test_batch_truncated(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	/* every proper prefix: a short header, or fewer records than counted,
	 * or a record cut inside */
	for (size_t len = 0; len < b->len; len++)
		expect_corrupt(b->rep, len, "write batch");
	expect_corrupt(b->rep, 5, "header");
	expect_corrupt(b->rep, b->len - 1, "truncated");
	expect_corrupt(b->rep, b->len - 7, "found 3");   /* cut between records */
	lsm_batch_free(b);
}

static void test_batch_wrong_count(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	put_fixed32(b->rep + 8, 5);
	expect_corrupt(b->rep, b->len, "says 5 records, found 4");
	put_fixed32(b->rep + 8, 3);
	expect_corrupt(b->rep, b->len, "after the last of 3");
	put_fixed32(b->rep + 8, 0);
	expect_corrupt(b->rep, b->len, "after the last of 0");
	put_fixed32(b->rep + 8, 4);
	size_t n = 0;
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, count_fn, &n), 0);
	assert_int_equal(n, 3);
	lsm_batch_free(b);
}

static void test_batch_bad_tag(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	b->rep[17] = 0x03;      /* the second record's tag (0x02 is a pointer put) */
	expect_corrupt(b->rep, b->len, "record 1 at offset 17: unknown tag 0x03");
	b->rep[17] = 0x81;
	expect_corrupt(b->rep, b->len, "unknown tag 0x81");
	lsm_batch_free(b);
}

static void test_batch_trailing_garbage(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	uint8_t *rep = malloc(b->len + 3);
	assert_non_null(rep);
	memcpy(rep, b->rep, b->len);
	rep[b->len] = 0x01;     /* looks like the start of a put */
	expect_corrupt(rep, b->len + 1, "bytes after the last");
	rep[b->len + 1] = 0x00;
	rep[b->len + 2] = 0x00;
	expect_corrupt(rep, b->len + 3, "bytes after the last");
	free(rep);
	lsm_batch_free(b);
}

static void test_batch_bad_lengths(void **state)
{
	(void)state;
	uint8_t rep[64] = { 0 };
	/* key length past the end */
	put_fixed32(rep + 8, 1);
	rep[12] = 0x00;
	rep[13] = 40;
	rep[14] = 'k';
	expect_corrupt(rep, 15, "truncated");
	/* an overlong varint (more than 5 bytes) */
	memset(rep + 13, 0xff, 6);
	rep[19] = 0x01;
	expect_corrupt(rep, 20, "truncated");
	/* a key over LSM_MAX_KEY claimed by a valid varint */
	size_t klen = LSM_MAX_KEY + 1;
	uint8_t *big = calloc(1, 12 + 1 + 5 + klen);
	assert_non_null(big);
	put_fixed32(big + 8, 1);
	big[12] = 0x00;
	uint8_t *p = put_varint32(big + 13, (uint32_t)klen);
	size_t len = (size_t)(p - big) + klen;
	expect_corrupt(big, len, "over limit");
	free(big);
	/* sequence numbers that would pass LSM_MAX_SEQ */
	lsm_batch *b = sample();
	lsm_batch_set_seq(b, LSM_MAX_SEQ - 2);
	expect_corrupt(b->rep, b->len, "overflows");
	lsm_batch_set_seq(b, LSM_MAX_SEQ - 3);   /* last record at LSM_MAX_SEQ */
	struct collect c = { .fail_at = -1 };
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, collect_fn, &c), 0);
	assert_int_equal(c.recs[3].seq, LSM_MAX_SEQ);
	lsm_batch_free(b);
}

static void test_batch_fn_error(void **state)
{
	(void)state;
	lsm_batch *b = sample();
	struct collect c = { .fail_at = 2 };
	assert_int_equal(lsm_batch_iterate(b->rep, b->len, collect_fn, &c), -EIO);
	assert_int_equal(c.n, 2);
	lsm_batch_free(b);
}

/* ---- applying to a memtable -------------------------------------------- */

static void test_batch_insert(void **state)
{
	(void)state;
	lsm_memtable *m;
	assert_int_equal(lsm_memtable_new(&m), 0);
	lsm_batch *b = sample();
	assert_int_equal(lsm_batch_put(b, "b", 1, "late", 4), 0);   /* seq 104, after the delete */
	assert_int_equal(lsm_batch_insert(b->rep, b->len, m), 0);
	assert_int_equal(lsm_memtable_entries(m), 5);

	unsigned t;
	lsm_slice v;
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("a", 1), 100, &t, &v), 1);
	assert_int_equal(t, LSM_TYPE_VALUE);
	assert_true(lsm_slice_eq(v, lsm_slice_make("1", 1)));
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("a", 1), 99, &t, &v), 0);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("b", 1), 103, &t, &v), 1);
	assert_int_equal(t, LSM_TYPE_DELETE);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("b", 1), 104, &t, &v), 1);
	assert_int_equal(t, LSM_TYPE_VALUE);
	assert_true(lsm_slice_eq(v, lsm_slice_make("late", 4)));
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make(NULL, 0), 102, &t, &v), 1);
	assert_int_equal(v.len, 0);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("c", 1), LSM_MAX_SEQ, &t, &v), 1);
	assert_true(lsm_slice_eq(v, lsm_slice_make("333", 3)));

	/* a damaged batch adds nothing at all, even its good first records */
	lsm_batch_set_seq(b, 200);
	put_fixed32(b->rep + 8, 6);
	assert_int_equal(lsm_batch_insert(b->rep, b->len, m), -EUCLEAN);
	assert_int_equal(lsm_memtable_entries(m), 5);
	assert_int_equal(lsm_memtable_get(m, lsm_slice_make("a", 1), 200, &t, &v), 1);
	assert_int_equal(t, LSM_TYPE_VALUE);   /* still the version from seq 100 */
	lsm_batch_free(b);
	lsm_memtable_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_round_trip),
		cmocka_unit_test(test_batch_count_clear),
		cmocka_unit_test(test_batch_append),
		cmocka_unit_test(test_batch_limits),
		cmocka_unit_test(test_batch_truncated),
		cmocka_unit_test(test_batch_wrong_count),
		cmocka_unit_test(test_batch_bad_tag),
		cmocka_unit_test(test_batch_trailing_garbage),
		cmocka_unit_test(test_batch_bad_lengths),
		cmocka_unit_test(test_batch_fn_error),
		cmocka_unit_test(test_batch_insert),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
