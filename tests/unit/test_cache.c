/*
 * test_cache.c - unit tests for lsm/cache.c: insert/lookup/release, LRU
 * eviction order within the byte budget, pinning (pinned entries are never
 * evicted, and an entry dropped while pinned is deleted at its last release),
 * erase and replace, statistics, ids, the two segments (entries looked up
 * again outlive a stream of entries used once; the protected segment gives
 * its oldest back when it outgrows 4/5 of the budget), and a multi-threaded
 * stress run meant for ASan/TSan builds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lsm_int.h"
#include "testutil.h"

/* Deleter bookkeeping: the values are small ints cast to pointers, and each
 * deletion is logged in order. */
#define LOG_MAX 4096
static int deleted[LOG_MAX];
static int ndeleted;
static char last_deleted_key[64];

static void record_deleter(const void *key, size_t klen, void *value)
{
	assert_true(ndeleted < LOG_MAX);
	deleted[ndeleted++] = (int)(intptr_t)value;
	assert_true(klen < sizeof(last_deleted_key));
	memcpy(last_deleted_key, key, klen);
	last_deleted_key[klen] = '\0';
}

static int reset_log(void **state)
{
	(void)state;
	ndeleted = 0;
	last_deleted_key[0] = '\0';
	return 0;
}

static void *V(int i)
{
	return (void *)(intptr_t)i;
}

static int value_of(lsm_cache_handle *h)
{
	return (int)(intptr_t)lsm_cache_value(h);
}

static lsm_cache *new_cache(size_t cap)
{
	lsm_cache *c = NULL;
	assert_int_equal(lsm_cache_new(cap, &c), 0);
	assert_non_null(c);
	return c;
}

static void put(lsm_cache *c, const char *key, int value, size_t charge)
{
	lsm_cache_handle *h = lsm_cache_insert(c, key, strlen(key), V(value), charge, record_deleter);
	assert_non_null(h);
	assert_int_equal(value_of(h), value);
	lsm_cache_release(c, h);
}

/* Looks key up: its value, or -1 if absent. */
static int get(lsm_cache *c, const char *key)
{
	lsm_cache_handle *h = lsm_cache_lookup(c, key, strlen(key));
	int v;
	if (!h)
		return -1;
	v = value_of(h);
	lsm_cache_release(c, h);
	return v;
}

/* Fills keys[0..n) with distinct keys "kN" that all land in the same shard
 * (the top 4 bits of the hash), so that LRU order across them is exact. */
static void same_shard_keys(char keys[][16], int n)
{
	int found = 0;
	for (int i = 0; found < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		if ((lsm_hash64(k, strlen(k)) >> 60) == 3)
			memcpy(keys[found++], k, sizeof(k));
	}
}

static void test_cache_insert_lookup_release(void **state)
{
	lsm_cache *c = new_cache(1 << 20);
	lsm_cache_handle *h;
	(void)state;

	put(c, "alpha", 1, 10);
	put(c, "beta", 2, 10);
	assert_int_equal(get(c, "alpha"), 1);
	assert_int_equal(get(c, "beta"), 2);
	assert_int_equal(get(c, "gamma"), -1);
	/* A key that is a prefix of another is a different key. */
	assert_int_equal(get(c, "alph"), -1);
	assert_int_equal(ndeleted, 0);

	/* Two handles on one entry at once. */
	h = lsm_cache_lookup(c, "alpha", 5);
	assert_non_null(h);
	assert_int_equal(get(c, "alpha"), 1);
	lsm_cache_release(c, h);
	assert_int_equal(ndeleted, 0);

	lsm_cache_erase(c, "alpha", 5);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(deleted[0], 1);
	assert_string_equal(last_deleted_key, "alpha");
	assert_int_equal(get(c, "alpha"), -1);
	lsm_cache_erase(c, "alpha", 5);      /* erasing a missing key is a no-op */
	assert_int_equal(ndeleted, 1);

	/* The empty key is a key like any other. */
	h = lsm_cache_insert(c, NULL, 0, V(7), 1, record_deleter);
	assert_non_null(h);
	lsm_cache_release(c, h);
	h = lsm_cache_lookup(c, "", 0);
	assert_non_null(h);
	assert_int_equal(value_of(h), 7);
	lsm_cache_release(c, h);

	lsm_cache_free(c);
	/* Free runs the deleters of everything still cached. */
	assert_int_equal(ndeleted, 3);
	lsm_cache_free(NULL);
}

static void test_cache_lru_eviction_order(void **state)
{
	/* 16 shards of 100 bytes each. */
	lsm_cache *c = new_cache(16 * 100);
	char keys[12][16];
	size_t usage;
	(void)state;

	same_shard_keys(keys, 12);
	for (int i = 0; i < 10; i++)
		put(c, keys[i], i, 10);
	assert_int_equal(ndeleted, 0);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_int_equal(usage, 100);

	/* Touch keys[0]: now keys[1] is the least recently used. */
	assert_int_equal(get(c, keys[0]), 0);
	put(c, keys[10], 10, 10);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(deleted[0], 1);
	assert_string_equal(last_deleted_key, keys[1]);

	/* A charge of 25 pushes out the next three in LRU order: 2, 3, 4. */
	put(c, keys[11], 11, 25);
	assert_int_equal(ndeleted, 4);
	assert_int_equal(deleted[1], 2);
	assert_int_equal(deleted[2], 3);
	assert_int_equal(deleted[3], 4);
	assert_int_equal(get(c, keys[0]), 0);
	assert_int_equal(get(c, keys[1]), -1);
	assert_int_equal(get(c, keys[4]), -1);
	for (int i = 5; i < 12; i++)
		assert_int_equal(get(c, keys[i]), i);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_int_equal(usage, 95);
	lsm_cache_free(c);
}

static void test_cache_scan_resistance(void **state)
{
	/* 16 shards of 100 bytes: 80 of them for protected entries. */
	lsm_cache *c = new_cache(16 * 100);
	char keys[60][16];
	(void)state;

	same_shard_keys(keys, 60);
	/* Five entries used twice: protected. */
	for (int i = 0; i < 5; i++) {
		put(c, keys[i], i, 10);
		assert_int_equal(get(c, keys[i]), i);
	}
	/* A scan: forty entries used once.  Only scan entries are evicted,
	 * oldest first, where plain LRU would have dropped the first five. */
	for (int i = 5; i < 45; i++)
		put(c, keys[i], i, 10);
	assert_int_equal(ndeleted, 35);
	for (int i = 0; i < 35; i++)
		assert_int_equal(deleted[i], 5 + i);
	for (int i = 0; i < 5; i++)
		assert_int_equal(get(c, keys[i]), i);
	for (int i = 40; i < 45; i++)
		assert_int_equal(get(c, keys[i]), i);    /* now protected too */

	/* Ten protected entries of 10 are over the 80-byte segment: the two
	 * used least recently (keys 0 and 1, looked up first above) went back
	 * on probation, so they are the next to go. */
	put(c, keys[45], 45, 10);
	put(c, keys[46], 46, 10);
	assert_int_equal(ndeleted, 37);
	assert_int_equal(deleted[35], 0);
	assert_int_equal(deleted[36], 1);
	for (int i = 2; i < 5; i++)
		assert_int_equal(get(c, keys[i]), i);
	for (int i = 40; i < 47; i++)
		assert_int_equal(get(c, keys[i]), i);
	size_t usage;
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_true(usage <= 100);
	lsm_cache_free(c);
}

static void test_cache_pinned_survives_eviction(void **state)
{
	lsm_cache *c = new_cache(16 * 100);
	char keys[30][16];
	lsm_cache_handle *pinned, *big;
	size_t usage;
	(void)state;

	same_shard_keys(keys, 30);
	pinned = lsm_cache_insert(c, keys[0], strlen(keys[0]), V(0), 10, record_deleter);
	assert_non_null(pinned);
	/* Churn far past the budget: everything but the pinned entry goes. */
	for (int i = 1; i < 30; i++)
		put(c, keys[i], i, 10);
	assert_int_equal(ndeleted, 29 - 9);
	for (int i = 0; i < ndeleted; i++)
		assert_int_not_equal(deleted[i], 0);
	assert_int_equal(get(c, keys[0]), 0);
	assert_int_equal(value_of(pinned), 0);
	lsm_cache_release(c, pinned);
	assert_int_equal(ndeleted, 20);

	/* An entry bigger than the whole shard is kept while pinned, and
	 * goes when its last pin does: the cache may overshoot only then. */
	big = lsm_cache_insert(c, "big", 3, V(99), 1000, record_deleter);
	assert_non_null(big);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_true(usage >= 1000);
	assert_int_equal(value_of(big), 99);
	lsm_cache_release(c, big);
	assert_int_equal(deleted[ndeleted - 1], 99);
	assert_int_equal(get(c, "big"), -1);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_true(usage <= 16 * 100);
	lsm_cache_free(c);
}

static void test_cache_erase_while_pinned(void **state)
{
	lsm_cache *c = new_cache(1 << 20);
	lsm_cache_handle *h1, *h2;
	size_t usage;
	(void)state;

	h1 = lsm_cache_insert(c, "k", 1, V(5), 10, record_deleter);
	h2 = lsm_cache_lookup(c, "k", 1);
	assert_non_null(h1);
	assert_ptr_equal(h1, h2);
	lsm_cache_erase(c, "k", 1);
	assert_int_equal(ndeleted, 0);
	assert_int_equal(get(c, "k"), -1);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_int_equal(usage, 0);
	assert_int_equal(value_of(h1), 5);
	lsm_cache_release(c, h1);
	assert_int_equal(ndeleted, 0);
	lsm_cache_release(c, h2);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(deleted[0], 5);

	/* A new entry under the same key is independent of the old handle. */
	h1 = lsm_cache_insert(c, "k", 1, V(6), 10, record_deleter);
	lsm_cache_erase(c, "k", 1);
	put(c, "k", 7, 10);
	lsm_cache_release(c, h1);
	assert_int_equal(deleted[ndeleted - 1], 6);
	assert_int_equal(get(c, "k"), 7);
	lsm_cache_free(c);
	assert_int_equal(ndeleted, 3);
}

static void test_cache_replace(void **state)
{
	lsm_cache *c = new_cache(1 << 20);
	lsm_cache_handle *old;
	size_t usage;
	(void)state;

	put(c, "k", 1, 10);
	put(c, "k", 2, 30);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(deleted[0], 1);
	assert_int_equal(get(c, "k"), 2);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_int_equal(usage, 30);

	/* Replaced while pinned: the old value lives until released. */
	old = lsm_cache_lookup(c, "k", 1);
	assert_non_null(old);
	put(c, "k", 3, 5);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(get(c, "k"), 3);
	assert_int_equal(value_of(old), 2);
	lsm_cache_stats(c, NULL, NULL, &usage);
	assert_int_equal(usage, 5);
	lsm_cache_release(c, old);
	assert_int_equal(ndeleted, 2);
	assert_int_equal(deleted[1], 2);
	assert_int_equal(get(c, "k"), 3);
	lsm_cache_free(c);
	assert_int_equal(ndeleted, 3);
	assert_int_equal(deleted[2], 3);
}

static void test_cache_stats_hits_misses(void **state)
{
	lsm_cache *c = new_cache(1 << 20);
	uint64_t hits = 99, misses = 99;
	size_t usage = 99;
	(void)state;

	lsm_cache_stats(c, &hits, &misses, &usage);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 0);
	assert_int_equal(usage, 0);
	put(c, "a", 1, 100);
	put(c, "b", 2, 23);
	get(c, "a");
	get(c, "a");
	get(c, "b");
	get(c, "nope");
	lsm_cache_stats(c, &hits, &misses, &usage);
	assert_int_equal(hits, 3);
	assert_int_equal(misses, 1);
	assert_int_equal(usage, 123);
	/* Inserts count as neither. */
	put(c, "c", 3, 1);
	lsm_cache_stats(c, &hits, &misses, NULL);
	assert_int_equal(hits, 3);
	assert_int_equal(misses, 1);
	lsm_cache_free(c);
}

static void test_cache_zero_capacity(void **state)
{
	lsm_cache *c = new_cache(0);
	lsm_cache_handle *h;
	(void)state;

	/* Nothing is kept, but a handle stays usable while held. */
	h = lsm_cache_insert(c, "k", 1, V(4), 1, record_deleter);
	assert_non_null(h);
	assert_int_equal(get(c, "k"), 4);
	assert_int_equal(ndeleted, 0);
	lsm_cache_release(c, h);
	assert_int_equal(ndeleted, 1);
	assert_int_equal(get(c, "k"), -1);
	lsm_cache_free(c);
	assert_int_equal(ndeleted, 1);
}

static void test_cache_many_entries(void **state)
{
	/* Enough entries to make every shard's table grow several times. */
	lsm_cache *c = new_cache(SIZE_MAX / 2);
	char k[16];
	(void)state;

	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		put(c, k, i, 1);
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(get(c, k), i);
	}
	for (int i = 0; i < 3000; i += 2) {
		snprintf(k, sizeof(k), "key%d", i);
		lsm_cache_erase(c, k, strlen(k));
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(get(c, k), i % 2 ? i : -1);
	}
	assert_int_equal(ndeleted, 1500);
	lsm_cache_free(c);
	assert_int_equal(ndeleted, 3000);
}

static void test_cache_new_id(void **state)
{
	lsm_cache *c = new_cache(10);
	uint64_t a, b, d;
	(void)state;

	a = lsm_cache_new_id(c);
	b = lsm_cache_new_id(c);
	d = lsm_cache_new_id(c);
	assert_true(a != 0);
	assert_true(b > a);
	assert_true(d > b);
	lsm_cache_free(c);
}

/* ---- multi-threaded stress -------------------------------------------- */

#define STRESS_THREADS 4
#define STRESS_KEYS 200

/* Values are heap objects that remember their key, so a lookup can check it
 * got the right one, and a double delete or a use after free trips ASan. */
struct stress_val {
	uint32_t key;
	uint32_t magic;
};

static atomic_ulong stress_inserts, stress_deletes, stress_bad;

/* Runs on worker threads, where cmocka's assertions must not be used: it
 * counts what is wrong for the main thread to assert on. */
static void stress_deleter(const void *key, size_t klen, void *value)
{
	struct stress_val *v = value;
	uint32_t k = UINT32_MAX;
	if (klen == sizeof(k))
		memcpy(&k, key, sizeof(k));
	if (v->key != k || v->magic != 0x5eed)
		atomic_fetch_add(&stress_bad, 1);
	v->magic = 0;
	free(v);
	atomic_fetch_add(&stress_deletes, 1);
}

struct stress_arg {
	lsm_cache *cache;
	uint64_t seed;
	int iters;
	int failures;
};

static void *stress_thread(void *p)
{
	struct stress_arg *a = p;
	uint64_t rng = a->seed;
	lsm_cache_handle *held[8] = { 0 };

	for (int i = 0; i < a->iters; i++) {
		uint64_t x = test_rand(&rng);
		uint32_t k = (uint32_t)(x % STRESS_KEYS);
		unsigned slot = (unsigned)(x >> 32) % 8;
		lsm_cache_handle *h = NULL;

		switch ((x >> 40) % 4) {
		case 0: {
			struct stress_val *v = malloc(sizeof(*v));
			if (!v)
				abort();
			v->key = k;
			v->magic = 0x5eed;
			atomic_fetch_add(&stress_inserts, 1);
			h = lsm_cache_insert(a->cache, &k, sizeof(k), v, 1 + (x >> 48) % 64, stress_deleter);
			break;
		}
		case 1:
		case 2:
			h = lsm_cache_lookup(a->cache, &k, sizeof(k));
			break;
		default:
			lsm_cache_erase(a->cache, &k, sizeof(k));
			break;
		}
		if (h) {
			struct stress_val *v = lsm_cache_value(h);
			if (v->key != k || v->magic != 0x5eed)
				a->failures++;
			/* Keep some handles a while, so entries are pinned while
			 * other threads erase, replace and evict them. */
			if (held[slot])
				lsm_cache_release(a->cache, held[slot]);
			held[slot] = h;
		}
	}
	for (unsigned s = 0; s < 8; s++)
		if (held[s])
			lsm_cache_release(a->cache, held[s]);
	return NULL;
}

static void test_cache_stress_threads(void **state)
{
	/* A budget of about 1/4 of the key space keeps eviction busy. */
	lsm_cache *c = new_cache(STRESS_KEYS * 32 / 4);
	pthread_t th[STRESS_THREADS];
	struct stress_arg args[STRESS_THREADS];
	uint64_t seed = test_seed("test_cache_stress_threads");
	uint64_t hits, misses;
	size_t usage;
	(void)state;

	atomic_store(&stress_inserts, 0);
	atomic_store(&stress_deletes, 0);
	atomic_store(&stress_bad, 0);
	for (int i = 0; i < STRESS_THREADS; i++) {
		args[i].cache = c;
		args[i].seed = seed + (uint64_t)i * 7919 + 1;
		args[i].iters = test_long() ? 2000000 : 100000;
		args[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
	}
	for (int i = 0; i < STRESS_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	lsm_cache_stats(c, &hits, &misses, &usage);
	assert_true(hits > 0);
	assert_true(misses > 0);
	/* No pins are left, so every shard is back within its budget. */
	assert_true(usage <= STRESS_KEYS * 32 / 4);
	lsm_cache_free(c);
	/* Every value ever inserted was deleted exactly once. */
	assert_int_equal(atomic_load(&stress_deletes), atomic_load(&stress_inserts));
	assert_int_equal(atomic_load(&stress_bad), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_cache_insert_lookup_release, reset_log),
		cmocka_unit_test_setup(test_cache_lru_eviction_order, reset_log),
		cmocka_unit_test_setup(test_cache_scan_resistance, reset_log),
		cmocka_unit_test_setup(test_cache_pinned_survives_eviction, reset_log),
		cmocka_unit_test_setup(test_cache_erase_while_pinned, reset_log),
		cmocka_unit_test_setup(test_cache_replace, reset_log),
		cmocka_unit_test_setup(test_cache_stats_hits_misses, reset_log),
		cmocka_unit_test_setup(test_cache_zero_capacity, reset_log),
		cmocka_unit_test_setup(test_cache_many_entries, reset_log),
		cmocka_unit_test_setup(test_cache_new_id, reset_log),
		cmocka_unit_test_setup(test_cache_stress_threads, reset_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
