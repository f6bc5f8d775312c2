/*
 * test_skiplist.c - unit tests for lsm/skiplist.c (and the arena under it):
 * random inserts against a sorted reference, seek/prev/first/last at and
 * between entries, the append fast path mixed with middle inserts, entries
 * placed inside their nodes, and one writer inserting while two reader
 * threads walk the list and check what they see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "lsm_int.h"
#include "testutil.h"

/* Entries are uint64 keys in the arena, followed by a check word so that a
 * reader can tell a fully written entry from a torn one. */
struct kv {
	uint64_t key;
	uint64_t check;
};
#define CHECK(k) ((k) * UINT64_C(0x9e3779b97f4a7c15) ^ UINT64_C(0x5bd1e995))

static int cmp_kv(const void *a, const void *b)
{
	uint64_t x = ((const struct kv *)a)->key, y = ((const struct kv *)b)->key;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void insert_key(lsm_arena *a, lsm_skiplist *s, uint64_t k)
{
	struct kv *e = lsm_arena_alloc(a, sizeof(*e));
	assert_non_null(e);
	e->key = k;
	e->check = CHECK(k);
	assert_int_equal(lsm_skiplist_insert(s, e), 0);
}

static uint64_t entry_key(const lsm_skiplist_iter *it)
{
	return ((const struct kv *)lsm_skiplist_iter_entry(it))->key;
}

/* The keys 4, 8, ..., 4n sorted in *ret_sorted and shuffled in *ret_keys:
 * distinct by construction, with absent keys between any two. */
static void make_keys(uint64_t *rng, size_t n, uint64_t **ret_keys, uint64_t **ret_sorted)
{
	uint64_t *keys = malloc(n * sizeof(*keys)), *sorted = malloc(n * sizeof(*sorted));
	assert_non_null(keys);
	assert_non_null(sorted);
	for (size_t i = 0; i < n; i++)
		sorted[i] = keys[i] = (i + 1) * 4;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = test_rand(rng) % (i + 1);
		uint64_t t = keys[i];
		keys[i] = keys[j];
		keys[j] = t;
	}
	*ret_keys = keys;
	*ret_sorted = sorted;
}

static void test_skiplist_empty(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	assert_non_null(a);
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	assert_non_null(s);
	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	assert_false(lsm_skiplist_iter_valid(&it));
	lsm_skiplist_iter_seek_to_first(&it);
	assert_false(lsm_skiplist_iter_valid(&it));
	lsm_skiplist_iter_seek_to_last(&it);
	assert_false(lsm_skiplist_iter_valid(&it));
	struct kv t = { 5, 0 };
	lsm_skiplist_iter_seek(&it, &t);
	assert_false(lsm_skiplist_iter_valid(&it));
	lsm_arena_free(a);
}

static void test_skiplist_random_inserts(void **state)
{
	(void)state;
	uint64_t rng = test_seed("test_skiplist_random_inserts");
	size_t n = test_long() ? 200000 : 5000;
	uint64_t *keys, *sorted;
	make_keys(&rng, n, &keys, &sorted);
	size_t m = n;

	lsm_arena *a = lsm_arena_new();
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	assert_non_null(s);
	for (size_t i = 0; i < m; i++)
		insert_key(a, s, keys[i]);
	assert_true(lsm_arena_usage(a) >= m * sizeof(struct kv));

	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	size_t i = 0;
	for (lsm_skiplist_iter_seek_to_first(&it); lsm_skiplist_iter_valid(&it); lsm_skiplist_iter_next(&it)) {
		assert_true(i < m);
		assert_int_equal(entry_key(&it), sorted[i]);
		i++;
	}
	assert_int_equal(i, m);

	/* seek: present keys land on themselves, absent keys on the next
	 * larger one, keys past the end nowhere */
	for (size_t j = 0; j < 2000; j++) {
		uint64_t target = test_rand(&rng) % (n * 4 + 8);
		size_t lo = 0, hi = m;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (sorted[mid] < target)
				lo = mid + 1;
			else
				hi = mid;
		}
		struct kv t = { target, 0 };
		lsm_skiplist_iter_seek(&it, &t);
		if (lo == m) {
			assert_false(lsm_skiplist_iter_valid(&it));
		} else {
			assert_true(lsm_skiplist_iter_valid(&it));
			assert_int_equal(entry_key(&it), sorted[lo]);
		}
	}
	free(keys);
	free(sorted);
	lsm_arena_free(a);
}

static void test_skiplist_prev_first_last(void **state)
{
	(void)state;
	uint64_t rng = test_seed("test_skiplist_prev_first_last");
	uint64_t *keys, *sorted;
	size_t n = 3000, m = n;
	make_keys(&rng, n, &keys, &sorted);

	lsm_arena *a = lsm_arena_new();
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	for (size_t i = 0; i < m; i++)
		insert_key(a, s, keys[i]);

	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	lsm_skiplist_iter_seek_to_first(&it);
	assert_true(lsm_skiplist_iter_valid(&it));
	assert_int_equal(entry_key(&it), sorted[0]);
	lsm_skiplist_iter_prev(&it);
	assert_false(lsm_skiplist_iter_valid(&it));

	lsm_skiplist_iter_seek_to_last(&it);
	size_t i = m;
	while (lsm_skiplist_iter_valid(&it)) {
		assert_true(i > 0);
		i--;
		assert_int_equal(entry_key(&it), sorted[i]);
		lsm_skiplist_iter_prev(&it);
	}
	assert_int_equal(i, 0);

	/* from a seek in the middle, prev then next comes back */
	struct kv t = { sorted[m / 2] - 1, 0 };
	lsm_skiplist_iter_seek(&it, &t);
	assert_int_equal(entry_key(&it), sorted[m / 2]);
	lsm_skiplist_iter_prev(&it);
	assert_int_equal(entry_key(&it), sorted[m / 2 - 1]);
	lsm_skiplist_iter_next(&it);
	assert_int_equal(entry_key(&it), sorted[m / 2]);

	/* last has no next */
	lsm_skiplist_iter_seek_to_last(&it);
	lsm_skiplist_iter_next(&it);
	assert_false(lsm_skiplist_iter_valid(&it));
	free(keys);
	free(sorted);
	lsm_arena_free(a);
}

/* Ascending inserts take the append path; inserts before the end must keep
 * the per-level tails right for the appends that follow. */
static void test_skiplist_append_and_middle(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	for (uint64_t k = 100; k < 4100; k += 4)
		insert_key(a, s, k);
	for (uint64_t k = 4102; k > 2;) {         /* 4098 down to 2: before the end, a new first */
		k -= 4;
		insert_key(a, s, k);
	}
	for (uint64_t k = 4100; k < 8100; k += 2) /* appends again */
		insert_key(a, s, k);
	insert_key(a, s, 8099);                   /* just before the last */
	insert_key(a, s, 9000);

	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	uint64_t prev = 0;
	size_t count = 0;
	for (lsm_skiplist_iter_seek_to_first(&it); lsm_skiplist_iter_valid(&it); lsm_skiplist_iter_next(&it)) {
		assert_true(entry_key(&it) > prev);
		prev = entry_key(&it);
		count++;
	}
	assert_int_equal(count, 1000 + 1025 + 2000 + 2);
	lsm_skiplist_iter_seek_to_first(&it);
	assert_int_equal(entry_key(&it), 2);
	lsm_skiplist_iter_seek_to_last(&it);
	assert_int_equal(entry_key(&it), 9000);
	lsm_skiplist_iter_prev(&it);
	assert_int_equal(entry_key(&it), 8099);
	/* every key is reachable by seek (upper levels are consistent too) */
	for (uint64_t k = 4100; k < 8100; k += 2) {
		struct kv t = { k, 0 };
		lsm_skiplist_iter_seek(&it, &t);
		assert_true(lsm_skiplist_iter_valid(&it));
		assert_int_equal(entry_key(&it), k);
	}
	lsm_arena_free(a);
}

/* Entries allocated inside their node; a node allocated and then not used
 * (insert of another entry) costs arena space only. */
static void test_skiplist_alloc_entry(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	for (uint64_t k = 0; k < 500; k++) {
		uint64_t key = (k * 7919) % 500;
		struct kv *e = lsm_skiplist_alloc_entry(s, sizeof(*e));
		assert_non_null(e);
		assert_int_equal((uintptr_t)e % 8, 0);
		e->key = key;
		e->check = CHECK(key);
		assert_int_equal(lsm_skiplist_insert(s, e), 0);
	}
	assert_non_null(lsm_skiplist_alloc_entry(s, 64));   /* abandoned */
	insert_key(a, s, 1000);

	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	uint64_t want = 0;
	for (lsm_skiplist_iter_seek_to_first(&it); lsm_skiplist_iter_valid(&it); lsm_skiplist_iter_next(&it)) {
		const struct kv *e = lsm_skiplist_iter_entry(&it);
		assert_int_equal(e->key, want);
		assert_int_equal(e->check, CHECK(want));
		want = want == 499 ? 1000 : want + 1;
	}
	assert_int_equal(want, 1001);
	lsm_arena_free(a);
}

/* seek_by takes a target in another form than the stored entries. */
static int cmp_kv_u64(const void *entry, const void *target)
{
	uint64_t x = ((const struct kv *)entry)->key, y = *(const uint64_t *)target;
	return (x > y) - (x < y);
}

static void test_skiplist_seek_by(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	lsm_skiplist *s = lsm_skiplist_new(a, cmp_kv);
	for (uint64_t k = 10; k <= 100; k += 10)
		insert_key(a, s, k);
	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, s);
	uint64_t t = 35;
	lsm_skiplist_iter_seek_by(&it, &t, cmp_kv_u64);
	assert_int_equal(entry_key(&it), 40);
	t = 10;
	lsm_skiplist_iter_seek_by(&it, &t, cmp_kv_u64);
	assert_int_equal(entry_key(&it), 10);
	t = 101;
	lsm_skiplist_iter_seek_by(&it, &t, cmp_kv_u64);
	assert_false(lsm_skiplist_iter_valid(&it));
	lsm_arena_free(a);
}

static void test_skiplist_arena_large(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	size_t before = lsm_arena_usage(a);
	uint8_t *small = lsm_arena_alloc(a, 10);
	uint8_t *big = lsm_arena_alloc(a, 1 << 20);
	uint8_t *small2 = lsm_arena_alloc(a, 3);
	uint8_t *zero = lsm_arena_alloc(a, 0);
	assert_non_null(small);
	assert_non_null(big);
	assert_non_null(small2);
	assert_non_null(zero);
	/* the big request has its own block: the small ones stay together */
	assert_int_equal(small2 - small, 16);
	assert_true(zero != small2);
	assert_int_equal((uintptr_t)small2 % 8, 0);
	/* usage counts bytes handed out (rounded to 8), not blocks reserved */
	assert_true(lsm_arena_usage(a) >= before + (1 << 20) + 16 + 8 + 8);
	assert_true(lsm_arena_usage(a) < before + (1 << 20) + 64 * 1024);
	memset(big, 0xab, 1 << 20);
	memset(small, 1, 10);
	assert_int_equal(big[(1 << 20) - 1], 0xab);
	/* absurd sizes fail instead of wrapping */
	assert_null(lsm_arena_alloc(a, SIZE_MAX - 4));
	lsm_arena_free(a);
	lsm_arena_free(NULL);
}

/* ---- one writer, two readers ------------------------------------------- */

struct conc {
	lsm_skiplist *s;
	const uint64_t *sorted;     /* every key the writer will insert */
	size_t n;
	atomic_bool done;
	atomic_size_t inserted;     /* entries the writer has linked */
	atomic_int started;         /* readers running: the writer waits for both */
};

/* Readers count problems instead of asserting: cmocka's failure longjmp
 * must happen on the main thread. */
struct reader {
	struct conc *c;
	size_t errors, passes, last_count;
	uint64_t rng;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct conc *c = r->c;
	lsm_skiplist_iter it;
	lsm_skiplist_iter_init(&it, c->s);

	atomic_fetch_add(&c->started, 1);
	for (;;) {
		bool finished = atomic_load(&c->done);
		size_t floor = atomic_load(&c->inserted);
		size_t count = 0;
		uint64_t prev = 0;
		for (lsm_skiplist_iter_seek_to_first(&it); lsm_skiplist_iter_valid(&it); lsm_skiplist_iter_next(&it)) {
			const struct kv *e = lsm_skiplist_iter_entry(&it);
			if (e->check != CHECK(e->key) || (count && e->key <= prev) ||
			    !bsearch(&e->key, c->sorted, c->n, sizeof(uint64_t), cmp_u64))
				r->errors++;
			prev = e->key;
			count++;
		}
		/* every entry linked before the pass began must be seen */
		if (count < floor)
			r->errors++;
		/* a seek lands on an inserted key >= target */
		uint64_t target = test_rand(&r->rng) % (c->sorted[c->n - 1] + 1);
		struct kv t = { target, 0 };
		lsm_skiplist_iter_seek(&it, &t);
		if (lsm_skiplist_iter_valid(&it)) {
			const struct kv *e = lsm_skiplist_iter_entry(&it);
			if (e->key < target || e->check != CHECK(e->key))
				r->errors++;
			lsm_skiplist_iter_prev(&it);
			if (lsm_skiplist_iter_valid(&it) && entry_key(&it) >= target)
				r->errors++;
		}
		r->passes++;
		r->last_count = count;
		if (finished)
			break;
	}
	return NULL;
}

static void test_skiplist_concurrent_readers(void **state)
{
	(void)state;
	uint64_t rng = test_seed("test_skiplist_concurrent_readers");
	size_t n = test_long() ? 500000 : 30000, m = n;
	uint64_t *keys, *sorted;
	make_keys(&rng, n, &keys, &sorted);

	lsm_arena *a = lsm_arena_new();
	struct conc c = { .s = lsm_skiplist_new(a, cmp_kv), .sorted = sorted, .n = m };
	atomic_init(&c.done, false);
	atomic_init(&c.inserted, 0);
	atomic_init(&c.started, 0);
	struct reader rd[2] = { { .c = &c, .rng = rng ^ 1 }, { .c = &c, .rng = rng ^ 2 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	while (atomic_load(&c.started) < 2)
		sched_yield();

	for (size_t i = 0; i < m; i++) {
		struct kv *e = lsm_skiplist_alloc_entry(c.s, sizeof(*e));
		assert_non_null(e);
		e->key = keys[i];
		e->check = CHECK(keys[i]);
		assert_int_equal(lsm_skiplist_insert(c.s, e), 0);
		atomic_store(&c.inserted, i + 1);
	}
	atomic_store(&c.done, true);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(rd[i].errors, 0);
		assert_true(rd[i].passes >= 1);
		assert_int_equal(rd[i].last_count, m);   /* the pass after done saw all */
	}
	free(keys);
	free(sorted);
	lsm_arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skiplist_empty),
		cmocka_unit_test(test_skiplist_random_inserts),
		cmocka_unit_test(test_skiplist_prev_first_last),
		cmocka_unit_test(test_skiplist_append_and_middle),
		cmocka_unit_test(test_skiplist_alloc_entry),
		cmocka_unit_test(test_skiplist_seek_by),
		cmocka_unit_test(test_skiplist_arena_large),
		cmocka_unit_test(test_skiplist_concurrent_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
