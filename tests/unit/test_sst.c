/*
 * test_sst.c - SSTable writer and reader on the POSIX env in a tmpdir:
 * 100k-entry tables with and without LZ4, bloom filter and block cache;
 * every key found and absent keys not; full scans both ways and seeks;
 * several versions of a key read at different sequences; adversarial user
 * keys for the index separators; keys sharing a long prefix, as numeric keys
 * do (the index search skips it); iterators reading ahead (few reads per
 * scan, no cache churn, damage and truncation still reported); the cache and
 * write-batching behaviour; and
 * damage: flipped bytes in data, filter, index and footer, truncation, a
 * wrong magic or version, structural damage under a valid checksum, random
 * corruption, and I/O failures injected through the fault env.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lsm_int.h"
#include "env_test.h"
#include "testutil.h"

struct fixture {
	char *dir;
	char path[4096];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->dir = test_tmpdir("sst");
	snprintf(fx->path, sizeof(fx->path), "%s/000012.sst", fx->dir);
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

static void default_opts(lsm_options *o)
{
	memset(o, 0, sizeof(*o));
	o->block_size = 4096;
	o->block_restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compression = LSM_COMPRESS_LZ4;
}

/* Entry i: user key "key%08d" of 2*i (odd numbers are absent), sequence
 * 1000 + i, a value that LZ4 can squeeze a little. */
static size_t ukey(char *buf, uint64_t i)
{
	return (size_t)sprintf(buf, "key%08llu", (unsigned long long)(2 * i));
}

static size_t ikey(uint8_t *buf, uint64_t i, uint64_t seq, unsigned type)
{
	char u[32];
	size_t n = ukey(u, i);
	return lsm_ikey_encode(buf, lsm_slice_make(u, n), seq, type);
}

static size_t val(char *buf, uint64_t i)
{
	return (size_t)sprintf(buf, "value %llu %.*s", (unsigned long long)i, (int)(i % 40),
	                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static uint64_t build(lsm_env *env, const char *path, const lsm_options *o, uint64_t n)
{
	lsm_sst_builder *b;
	uint8_t k[64];
	char v[128];
	assert_int_equal(lsm_sst_builder_new(env, path, o, &b), 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t kl = ikey(k, i, 1000 + i, LSM_TYPE_VALUE), vl = val(v, i);
		assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, vl)), 0);
	}
	assert_int_equal(lsm_sst_builder_entries(b), n);
	uint64_t size = 0, est = lsm_sst_builder_file_size(b);
	assert_int_equal(lsm_sst_builder_finish(b, &size), 0);
	assert_true(size > est);
	return size;
}

struct hit {
	uint8_t key[128];
	size_t klen;
	char val[256];
	size_t vlen;
	int calls;
};

static void on_found(void *arg, lsm_slice k, lsm_slice v)
{
	struct hit *h = arg;
	assert_true(k.len <= sizeof(h->key) && v.len <= sizeof(h->val));
	memcpy(h->key, k.data, k.len);
	h->klen = k.len;
	memcpy(h->val, v.data, v.len);
	h->vlen = v.len;
	h->calls++;
}

/* Looks up user key of entry i (or the absent key between entries when
 * absent) at sequence seq. */
static int get(lsm_sst *t, uint64_t i, bool absent, uint64_t seq, struct hit *h)
{
	char u[32];
	uint8_t k[64];
	size_t n = absent ? (size_t)sprintf(u, "key%08llu", (unsigned long long)(2 * i + 1)) : ukey(u, i);
	size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, n), seq, LSM_TYPE_SEEK);
	memset(h, 0, sizeof(*h));
	return lsm_sst_get(t, lsm_slice_make(k, kl), true, on_found, h);
}

static void check_hit(const struct hit *h, uint64_t i)
{
	uint8_t k[64];
	char v[128];
	size_t kl = ikey(k, i, 1000 + i, LSM_TYPE_VALUE), vl = val(v, i);
	assert_int_equal(h->calls, 1);
	assert_int_equal(h->klen, kl);
	assert_memory_equal(h->key, k, kl);
	assert_int_equal(h->vlen, vl);
	assert_memory_equal(h->val, v, vl);
}

static void check_iter_entry(lsm_iiter *it, uint64_t i)
{
	uint8_t k[64];
	char v[128];
	size_t kl = ikey(k, i, 1000 + i, LSM_TYPE_VALUE), vl = val(v, i);
	assert_true(iiter_valid(it));
	lsm_slice key = iiter_key(it), value = iiter_value(it);
	assert_int_equal(key.len, kl);
	assert_memory_equal(key.data, k, kl);
	assert_int_equal(value.len, vl);
	assert_memory_equal(value.data, v, vl);
}

static void get_everything(struct fixture *fx, int compression, int bloom, bool with_cache)
{
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_cache *cache = NULL;
	lsm_sst *t;
	struct hit h;
	const uint64_t n = 100000;

	default_opts(&o);
	o.compression = compression;
	o.bloom_bits_per_key = bloom;
	uint64_t size = build(env, fx->path, &o, n);
	if (with_cache)
		assert_int_equal(lsm_cache_new(64 << 20, &cache), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, cache, &t), 0);
	assert_int_equal(lsm_sst_entries(t), n);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(get(t, i, false, LSM_MAX_SEQ, &h), 1);
		check_hit(&h, i);
		assert_int_equal(get(t, i, true, LSM_MAX_SEQ, &h), 0);
		assert_int_equal(h.calls, 0);
	}
	/* Before the first key and after the last. */
	assert_int_equal(get(t, n + 5, false, LSM_MAX_SEQ, &h), 0);
	uint8_t k[16];
	size_t kl = lsm_ikey_encode(k, lsm_slice_make("a", 1), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), true, on_found, &h), 0);
	kl = lsm_ikey_encode(k, lsm_slice_make("zzz", 3), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), true, on_found, &h), 0);
	/* A key that is not an internal key. */
	assert_int_equal(lsm_sst_get(t, lsm_slice_make("short", 5), true, on_found, &h), -EINVAL);
	assert_int_equal(lsm_sst_verify(t), 0);
	lsm_sst_close(t);
	lsm_cache_free(cache);
	if (compression == LSM_COMPRESS_LZ4) {
		/* The same table uncompressed is clearly bigger. */
		o.compression = LSM_COMPRESS_NONE;
		uint64_t plain = build(env, fx->path, &o, n);
		assert_true(size < plain - plain / 8);
	}
}

static void test_sst_get_lz4_bloom_cache(void **state)
{
	get_everything(*state, LSM_COMPRESS_LZ4, 10, true);
}

static void test_sst_get_plain_no_bloom_no_cache(void **state)
{
	get_everything(*state, LSM_COMPRESS_NONE, 0, false);
}

static void test_sst_iterate(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_cache *cache;
	lsm_sst *t;
	lsm_iiter *it;
	const uint64_t n = 100000;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, n);
	assert_int_equal(lsm_cache_new(1 << 20, &cache), 0);   /* smaller than the table */
	assert_int_equal(lsm_sst_open(env, fx->path, size, cache, &t), 0);
	assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
	assert_false(iiter_valid(it));

	uint64_t i = 0;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		check_iter_entry(it, i++);
	assert_int_equal(i, n);
	for (iiter_seek_to_last(it); iiter_valid(it); iiter_prev(it))
		check_iter_entry(it, --i);
	assert_int_equal(i, 0);
	assert_int_equal(iiter_status(it), 0);

	/* Seeks: hits, misses (land on the next key), then walk both ways
	 * across block boundaries. */
	uint64_t seed = test_seed("test_sst_iterate");
	uint8_t k[64];
	for (int round = 0; round < 2000; round++) {
		uint64_t j = test_rand(&seed) % n;
		bool miss = round & 1;
		char u[32];
		size_t un = miss ? (size_t)sprintf(u, "key%08llu", (unsigned long long)(2 * j - 1)) : ukey(u, j);
		size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, un), LSM_MAX_SEQ, LSM_TYPE_SEEK);
		iiter_seek(it, lsm_slice_make(k, kl));
		check_iter_entry(it, j);
		for (int s = 0; s < 40 && j > 0; s++) {
			iiter_prev(it);
			check_iter_entry(it, --j);
		}
		for (int s = 0; s < 80 && j + 1 < n; s++) {
			iiter_next(it);
			check_iter_entry(it, ++j);
		}
	}
	/* Past either end. */
	size_t kl = lsm_ikey_encode(k, lsm_slice_make("zzz", 3), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(k, kl));
	assert_false(iiter_valid(it));
	kl = lsm_ikey_encode(k, lsm_slice_make("", 0), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(k, kl));
	check_iter_entry(it, 0);
	iiter_prev(it);
	assert_false(iiter_valid(it));
	iiter_seek_to_last(it);
	check_iter_entry(it, n - 1);
	iiter_next(it);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);

	/* Without filling the cache, a scan leaves it as it was. */
	size_t before, after;
	uint64_t hits, misses;
	lsm_cache_stats(cache, &hits, &misses, &before);
	assert_int_equal(lsm_sst_iter_new(t, false, &it), 0);
	for (i = 0, iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		i++;
	assert_int_equal(i, n);
	iiter_destroy(it);
	lsm_cache_stats(cache, &hits, &misses, &after);
	assert_int_equal(before, after);
	lsm_sst_close(t);
	lsm_cache_free(cache);
}

static void test_sst_cache_hits(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_cache *cache;
	lsm_sst *t;
	struct hit h;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 1000);
	assert_int_equal(lsm_cache_new(1 << 20, &cache), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, cache, &t), 0);
	uint64_t h0, m0, h1, m1;
	size_t u0, u1;
	lsm_cache_stats(cache, &h0, &m0, &u0);
	assert_int_equal(get(t, 10, false, LSM_MAX_SEQ, &h), 1);
	lsm_cache_stats(cache, &h1, &m1, &u1);
	assert_int_equal(m1, m0 + 1);
	assert_true(u1 > u0 && u1 - u0 <= o.block_size + 1024);   /* charged one block */
	assert_int_equal(get(t, 11, false, LSM_MAX_SEQ, &h), 1);   /* same block */
	check_hit(&h, 11);
	lsm_cache_stats(cache, &h0, &m0, &u0);
	assert_int_equal(h0, h1 + 1);
	assert_int_equal(m0, m1);
	/* A bloom-rejected lookup does not touch the cache at all. */
	assert_int_equal(get(t, 500, true, LSM_MAX_SEQ, &h), 0);
	lsm_cache_stats(cache, &h1, &m1, &u1);
	assert_true(h1 + m1 <= h0 + m0 + 1);    /* at most a false positive */
	lsm_sst_close(t);
	lsm_cache_free(cache);
}

/* Many versions of a few user keys, with deletions, spanning blocks. */
static void test_sst_versions(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst_builder *b;
	lsm_sst *t;
	uint8_t k[64];
	struct hit h;
	const char *users[] = { "apple", "banana", "cherry" };
	default_opts(&o);
	o.block_size = 256;     /* versions of one key cross block boundaries */
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
	for (int u = 0; u < 3; u++) {
		/* Sequences 400 down to 4 in steps of 4; every 5th is a delete. */
		for (uint64_t s = 400; s >= 4; s -= 4) {
			char v[32];
			unsigned type = (s % 20 == 0) ? LSM_TYPE_DELETE : LSM_TYPE_VALUE;
			size_t vl = type == LSM_TYPE_VALUE ? (size_t)sprintf(v, "%s@%llu", users[u], (unsigned long long)s) : 0;
			size_t kl = lsm_ikey_encode(k, lsm_slice_make(users[u], strlen(users[u])), s, type);
			assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, vl)), 0);
		}
	}
	uint64_t size;
	assert_int_equal(lsm_sst_builder_finish(b, &size), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(lsm_sst_verify(t), 0);
	for (int u = 0; u < 3; u++) {
		lsm_slice user = lsm_slice_make(users[u], strlen(users[u]));
		for (uint64_t seq = 0; seq <= 410; seq++) {
			size_t kl = lsm_ikey_encode(k, user, seq, LSM_TYPE_SEEK);
			memset(&h, 0, sizeof(h));
			int r = lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h);
			if (seq < 4) {
				assert_int_equal(r, 0);     /* older than every version */
				continue;
			}
			uint64_t want = seq > 400 ? 400 : seq - seq % 4;
			assert_int_equal(r, 1);
			lsm_slice got = lsm_slice_make(h.key, h.klen);
			assert_true(lsm_slice_eq(lsm_ikey_user(got), user));
			assert_int_equal(lsm_ikey_seq(got), want);
			if (want % 20 == 0) {
				assert_int_equal(lsm_ikey_type(got), LSM_TYPE_DELETE);
			} else {
				char v[32];
				size_t vl = (size_t)sprintf(v, "%s@%llu", users[u], (unsigned long long)want);
				assert_int_equal(lsm_ikey_type(got), LSM_TYPE_VALUE);
				assert_int_equal(h.vlen, vl);
				assert_memory_equal(h.val, v, vl);
			}
		}
	}
	/* A user key between the stored ones, and a prefix of one. */
	size_t kl = lsm_ikey_encode(k, lsm_slice_make("apples", 6), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h), 0);
	kl = lsm_ikey_encode(k, lsm_slice_make("app", 3), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h), 0);
	lsm_sst_close(t);
}

/* Adversarial user keys: 0xff runs, prefixes of each other, empty key. */
struct ekey {
	uint8_t b[24];
	size_t len;
};

static int ekey_cmp(const void *a, const void *b)
{
	const struct ekey *x = a, *y = b;
	return lsm_slice_cmp(lsm_slice_make(x->b, x->len), lsm_slice_make(y->b, y->len));
}

static void test_sst_separator_edge_keys(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst_builder *b;
	lsm_sst *t;
	uint64_t seed = test_seed("test_sst_separator_edge_keys");
	enum { N = 3000 };
	static struct ekey keys[N];
	/* Random keys over a tiny alphabet so neighbours share long prefixes;
	 * sorted, duplicates dropped. */
	const uint8_t alpha[] = { 0x00, 0x01, 0x7f, 0xfe, 0xff };
	for (int i = 0; i < N; i++) {
		keys[i].len = test_rand(&seed) % 16;
		for (size_t j = 0; j < keys[i].len; j++)
			keys[i].b[j] = alpha[test_rand(&seed) % sizeof(alpha)];
	}
	qsort(keys, N, sizeof(keys[0]), ekey_cmp);
	int n = 1;
	for (int i = 1; i < N; i++)
		if (ekey_cmp(&keys[i], &keys[n - 1]) != 0)
			keys[n++] = keys[i];
	default_opts(&o);
	o.block_size = 64;
	o.block_restart_interval = 3;
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
	uint8_t k[64];
	for (int i = 0; i < n; i++) {
		size_t kl = lsm_ikey_encode(k, lsm_slice_make(keys[i].b, keys[i].len), 7, LSM_TYPE_VALUE);
		assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(&i, sizeof(i))), 0);
	}
	uint64_t size;
	assert_int_equal(lsm_sst_builder_finish(b, &size), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	/* verify checks every key lies at or below its block's index key and
	 * above the previous block's. */
	assert_int_equal(lsm_sst_verify(t), 0);
	struct hit h;
	for (int i = 0; i < n; i++) {
		size_t kl = lsm_ikey_encode(k, lsm_slice_make(keys[i].b, keys[i].len), LSM_MAX_SEQ, LSM_TYPE_SEEK);
		memset(&h, 0, sizeof(h));
		assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h), 1);
		assert_int_equal(h.vlen, sizeof(int));
		assert_memory_equal(h.val, &i, sizeof(i));
		/* The same user key one byte longer is absent. */
		uint8_t u[24];
		memcpy(u, keys[i].b, keys[i].len);
		u[keys[i].len] = 0x80;
		kl = lsm_ikey_encode(k, lsm_slice_make(u, keys[i].len + 1), LSM_MAX_SEQ, LSM_TYPE_SEEK);
		memset(&h, 0, sizeof(h));
		assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h), 0);
	}
	lsm_sst_close(t);
}

static void test_sst_empty_table(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	lsm_iiter *it;
	struct hit h;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 0);
	assert_int_equal(size, LSM_SST_FOOTER + 8 + LSM_BLOCK_TRAILER + 9 + LSM_BLOCK_TRAILER);
	assert_int_equal(lsm_sst_open(env, fx->path, 0, NULL, &t), 0);    /* 0: ask the env */
	assert_int_equal(lsm_sst_entries(t), 0);
	assert_int_equal(get(t, 1, false, LSM_MAX_SEQ, &h), 0);
	assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
	iiter_seek_to_first(it);
	assert_false(iiter_valid(it));
	iiter_seek_to_last(it);
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);
	assert_int_equal(lsm_sst_verify(t), 0);
	lsm_sst_close(t);
}

/* Keys that agree on their first 10 bytes, like kvbench's 16-digit numbers:
 * the index search compares the bytes after the shared ones, and the last
 * separator (a short successor such as "1") shares none. */
static size_t num_key(uint8_t *buf, uint64_t n, uint64_t seq)
{
	char u[32];
	snprintf(u, sizeof(u), "%016llu", (unsigned long long)n);
	return lsm_ikey_encode(buf, lsm_slice_make(u, 16), seq, seq == LSM_MAX_SEQ ? LSM_TYPE_SEEK : LSM_TYPE_VALUE);
}

static void common_prefix_table(struct fixture *fx, uint64_t n)
{
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst_builder *b;
	lsm_sst *t;
	lsm_iiter *it;
	uint8_t k[64];
	default_opts(&o);
	o.block_size = 256;
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t kl = num_key(k, 1000 + 3 * i, 5);
		assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(&i, sizeof(i))), 0);
	}
	uint64_t size;
	assert_int_equal(lsm_sst_builder_finish(b, &size), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(lsm_sst_verify(t), 0);
	assert_int_equal(lsm_sst_iter_new(t, false, &it), 0);
	for (uint64_t i = 0; i < n; i++) {
		for (uint64_t d = 0; d < 3; d++) {
			/* 1000 + 3i is present; +1 and +2 land on the next key. */
			size_t kl = num_key(k, 1000 + 3 * i + d, LSM_MAX_SEQ);
			iiter_seek(it, lsm_slice_make(k, kl));
			uint64_t want = d == 0 ? i : i + 1;
			if (want == n) {
				assert_false(iiter_valid(it));
				continue;
			}
			assert_true(iiter_valid(it));
			assert_int_equal(iiter_value(it).len, sizeof(want));
			assert_memory_equal(iiter_value(it).data, &want, sizeof(want));
			struct hit h;
			memset(&h, 0, sizeof(h));
			assert_int_equal(lsm_sst_get(t, lsm_slice_make(k, kl), false, on_found, &h), d == 0);
		}
	}
	/* Below every key, in and out of the shared prefix; above them all. */
	size_t kl = num_key(k, 0, LSM_MAX_SEQ);
	iiter_seek(it, lsm_slice_make(k, kl));
	assert_true(iiter_valid(it));
	uint64_t first;
	memcpy(&first, iiter_value(it).data, sizeof(first));
	assert_int_equal(first, 0);
	kl = lsm_ikey_encode(k, lsm_slice_make("000", 3), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(k, kl));
	assert_true(iiter_valid(it));
	kl = lsm_ikey_encode(k, lsm_slice_make("1", 1), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	iiter_seek(it, lsm_slice_make(k, kl));
	assert_false(iiter_valid(it));
	kl = num_key(k, 99999999, LSM_MAX_SEQ);
	iiter_seek(it, lsm_slice_make(k, kl));
	assert_false(iiter_valid(it));
	/* Not an internal key at all: ordered bytewise, still no crash. */
	iiter_seek(it, lsm_slice_make("0", 1));
	assert_true(iiter_valid(it));
	assert_int_equal(iiter_status(it), 0);
	iiter_destroy(it);
	lsm_sst_close(t);
}

static void test_sst_common_prefix_keys(void **state)
{
	common_prefix_table(*state, 5000);   /* hundreds of blocks */
	common_prefix_table(*state, 3);      /* one block */
	common_prefix_table(*state, 20);     /* two or three */
}

static void flip(const char *path, uint64_t off);
static void expect_error(int r, int err, const char *path, const char *what);

/* Counts reads through the fault env while scanning a table. */
static uint64_t scan_reads(lsm_env *env, lsm_sst *t, bool fill_cache, uint64_t n)
{
	lsm_iiter *it;
	uint64_t i = 0;
	env_fault_reset_counts(env);
	assert_int_equal(lsm_sst_iter_new(t, fill_cache, &it), 0);
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		check_iter_entry(it, i++);
	assert_int_equal(iiter_status(it), 0);
	assert_int_equal(i, n);
	iiter_destroy(it);
	return env_fault_count(env, FAULT_READ);
}

static void test_sst_readahead(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = env_fault_new(lsm_env_posix());
	lsm_cache *cache;
	lsm_sst *t;
	lsm_iiter *it;
	const uint64_t n = 50000;
	default_opts(&o);
	for (int comp = 0; comp < 2; comp++) {
		o.compression = comp ? LSM_COMPRESS_LZ4 : LSM_COMPRESS_NONE;
		uint64_t size = build(env, fx->path, &o, n);
		uint64_t blocks = size / o.block_size;
		assert_int_equal(lsm_cache_new(1 << 20, &cache), 0);
		assert_int_equal(lsm_sst_open(env, fx->path, size, cache, &t), 0);
		/* One read per block would be hundreds; reading ahead up to 256
		 * KiB at a time takes a few. */
		uint64_t reads = scan_reads(env, t, true, n);
		assert_true(comp || blocks > 500);
		assert_true(reads <= 8 + size / (200 << 10));
		/* A scan does not fill the cache with what it read ahead. */
		size_t usage;
		lsm_cache_stats(cache, NULL, NULL, &usage);
		assert_true(usage <= 4 * o.block_size);
		/* Seeks far apart read single blocks, which are cached. */
		assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
		uint8_t k[64];
		for (int round = 0; round < 2; round++) {
			env_fault_reset_counts(env);
			for (uint64_t j = n / 20; j < n; j += n / 10) {
				size_t kl = ikey(k, j, LSM_MAX_SEQ, LSM_TYPE_SEEK);
				iiter_seek(it, lsm_slice_make(k, kl));
				check_iter_entry(it, j);
			}
			assert_int_equal(env_fault_count(env, FAULT_READ), round == 0 ? 10 : 0);
		}
		iiter_destroy(it);
		/* A failed read ahead falls back to reading the block alone. */
		env_fault_fail_nth(env, FAULT_READ, 3, EIO);
		scan_reads(env, t, false, n);
		env_fault_clear(env);
		lsm_sst_close(t);
		lsm_cache_free(cache);
	}

	/* A block damaged in the middle of a scan is reported, by offset. */
	o.compression = LSM_COMPRESS_NONE;
	uint64_t size = build(env, fx->path, &o, n);
	flip(fx->path, size / 2);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(lsm_sst_iter_new(t, false, &it), 0);
	uint64_t seen = 0;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		seen++;
	assert_true(seen > n / 3 && seen < n);
	expect_error(iiter_status(it), -EBADMSG, fx->path, "block at offset");
	assert_non_null(strstr(lsm_last_error(), "checksum"));
	iiter_destroy(it);
	lsm_sst_close(t);

	/* Cut short under an open table: the scan ends in an error. */
	size = build(env, fx->path, &o, n);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(truncate(fx->path, (off_t)(size / 2)), 0);
	assert_int_equal(lsm_sst_iter_new(t, false, &it), 0);
	for (seen = 0, iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		seen++;
	assert_true(seen > n / 3 && seen < n);
	expect_error(iiter_status(it), -EUCLEAN, fx->path, "file ends");
	iiter_destroy(it);
	lsm_sst_close(t);
	env_fault_free(env);
}

/* Readers share a table and a block cache too small for it, so blocks are
 * evicted and reloaded under their feet (run under ASan). */
struct reader_arg {
	lsm_sst *t;
	uint64_t seed;
	int failures;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	struct hit h;
	char v[128];
	for (int i = 0; i < 20000; i++) {
		uint64_t j = test_rand(&a->seed) % 20000;
		size_t vl = val(v, j);
		if (get(a->t, j, false, LSM_MAX_SEQ, &h) != 1 || h.calls != 1 || h.vlen != vl ||
		    memcmp(h.val, v, vl) != 0)
			a->failures++;
	}
	lsm_iiter *it;
	if (lsm_sst_iter_new(a->t, true, &it) < 0)
		return NULL;
	uint64_t n = 0;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		n++;
	a->failures += n != 20000 || iiter_status(it) != 0;
	iiter_destroy(it);
	return NULL;
}

static void test_sst_concurrent_readers(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_cache *cache;
	lsm_sst *t;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 20000);
	assert_int_equal(lsm_cache_new(64 * 1024, &cache), 0);
	assert_int_equal(lsm_sst_open(env, fx->path, size, cache, &t), 0);
	pthread_t th[3];
	struct reader_arg args[3];
	uint64_t seed = test_seed("test_sst_concurrent_readers");
	for (int i = 0; i < 3; i++) {
		args[i] = (struct reader_arg){ t, seed + (uint64_t)i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	lsm_sst_close(t);
	lsm_cache_free(cache);
}

/* ---- damage ------------------------------------------------------------ */

static void patch(const char *path, uint64_t off, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void peek(const char *path, uint64_t off, void *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void flip(const char *path, uint64_t off)
{
	uint8_t c;
	peek(path, off, &c, 1);
	c ^= 0x20;
	patch(path, off, &c, 1);
}

struct footer {
	uint64_t filter_off, filter_size, index_off, index_size;
};

static struct footer read_footer(const char *path, uint64_t size)
{
	uint8_t f[LSM_SST_FOOTER];
	struct footer ft;
	peek(path, size - LSM_SST_FOOTER, f, sizeof(f));
	ft.filter_off = get_fixed64(f);
	ft.filter_size = get_fixed32(f + 8);
	ft.index_size = get_fixed32(f + 12);
	ft.index_off = get_fixed64(f + 16);
	return ft;
}

static void expect_error(int r, int err, const char *path, const char *what)
{
	assert_int_equal(r, err);
	assert_non_null(strstr(lsm_last_error(), path));
	assert_non_null(strstr(lsm_last_error(), what));
}

static void test_sst_corrupt_data_block(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	lsm_iiter *it;
	struct hit h;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 2000);
	flip(fx->path, 10);                     /* inside the first data block */
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	expect_error(get(t, 0, false, LSM_MAX_SEQ, &h), -EBADMSG, fx->path, "block at offset 0: checksum");
	assert_int_equal(get(t, 1999, false, LSM_MAX_SEQ, &h), 1);   /* other blocks are fine */
	check_hit(&h, 1999);
	assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
	iiter_seek_to_first(it);
	assert_false(iiter_valid(it));
	expect_error(iiter_status(it), -EBADMSG, fx->path, "block at offset 0");
	iiter_destroy(it);
	/* Backwards, the scan gets as far as the damaged block. */
	assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
	uint64_t seen = 0;
	for (iiter_seek_to_last(it); iiter_valid(it); iiter_prev(it))
		seen++;
	assert_true(seen > 0 && seen < 2000);
	assert_int_equal(iiter_status(it), -EBADMSG);
	iiter_destroy(it);
	expect_error(lsm_sst_verify(t), -EBADMSG, fx->path, "block at offset 0");
	lsm_sst_close(t);
}

static void test_sst_corrupt_index_and_filter(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t = NULL;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 2000);
	struct footer ft = read_footer(fx->path, size);
	assert_true(ft.filter_size > 0 && ft.index_size > 0);

	flip(fx->path, ft.index_off + ft.index_size / 2);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -EBADMSG, fx->path, "index block at offset");
	assert_null(t);
	flip(fx->path, ft.index_off + ft.index_size / 2);
	/* The trailer's type byte is covered by the checksum too. */
	flip(fx->path, ft.index_off + ft.index_size);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), -EBADMSG);
	flip(fx->path, ft.index_off + ft.index_size);

	flip(fx->path, ft.filter_off + 3);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -EBADMSG, fx->path, "checksum");
	flip(fx->path, ft.filter_off + 3);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	lsm_sst_close(t);
}

static void test_sst_corrupt_footer(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 500);
	for (uint64_t i = 0; i < LSM_SST_FOOTER; i++) {
		flip(fx->path, size - LSM_SST_FOOTER + i);
		int r = lsm_sst_open(env, fx->path, size, NULL, &t);
		if (i >= 44)
			expect_error(r, -EUCLEAN, fx->path, "not an SSTable");
		else if (i >= 40)
			expect_error(r, -ENOTSUP, fx->path, "version");
		else
			expect_error(r, -EBADMSG, fx->path, "footer");
		flip(fx->path, size - LSM_SST_FOOTER + i);
	}
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	lsm_sst_close(t);
}

static void reseal_footer(const char *path, uint64_t size, void (*edit)(uint8_t *f))
{
	uint8_t f[LSM_SST_FOOTER];
	peek(path, size - LSM_SST_FOOTER, f, sizeof(f));
	edit(f);
	put_fixed32(f + 28, lsm_checksum2(f, 28, f + 32, 16));
	patch(path, size - LSM_SST_FOOTER, f, sizeof(f));
}

static void bump_version(uint8_t *f) { put_fixed32(f + 40, LSM_SST_VERSION + 1); }
static void move_index(uint8_t *f) { put_fixed64(f + 16, get_fixed64(f + 16) - 1); }
static void grow_filter(uint8_t *f) { put_fixed32(f + 8, get_fixed32(f + 8) + 1); }

static void test_sst_wrong_magic_and_version(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	char junk[200];
	memset(junk, 'x', sizeof(junk));
	int fd = open(fx->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_error(lsm_sst_open(env, fx->path, sizeof(junk), NULL, &t), -EUCLEAN, fx->path, "not an SSTable");

	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 500);
	reseal_footer(fx->path, size, bump_version);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -ENOTSUP, fx->path, "version");

	/* Valid checksums, impossible layouts. */
	size = build(env, fx->path, &o, 500);
	reseal_footer(fx->path, size, move_index);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -EUCLEAN, fx->path, "out of place");
	size = build(env, fx->path, &o, 500);
	reseal_footer(fx->path, size, grow_filter);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -EUCLEAN, fx->path, "out of place");
}

static void test_sst_truncated(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	struct hit h;
	default_opts(&o);
	uint64_t size = build(env, fx->path, &o, 5000);
	/* Truncated after it was opened: a block read comes up short. */
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(truncate(fx->path, (off_t)(size / 2)), 0);
	expect_error(get(t, 4990, false, LSM_MAX_SEQ, &h), -EUCLEAN, fx->path, "file ends");
	assert_int_equal(get(t, 0, false, LSM_MAX_SEQ, &h), 1);
	lsm_sst_close(t);

	uint64_t cuts[] = { size - 1, size / 2, LSM_SST_FOOTER, 10, 0 };
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		build(env, fx->path, &o, 5000);
		assert_int_equal(truncate(fx->path, (off_t)cuts[c]), 0);
		/* With the size the MANIFEST would give, the footer read fails. */
		expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -EUCLEAN, fx->path, "");
		/* Asking the env for the size finds no footer there. */
		expect_error(lsm_sst_open(env, fx->path, 0, NULL, &t), -EUCLEAN, fx->path, "");
	}
	/* A missing file. */
	unlink(fx->path);
	expect_error(lsm_sst_open(env, fx->path, size, NULL, &t), -ENOENT, fx->path, "");
}

/* Structural damage under valid checksums: the block decodes but its entries
 * or handles are wrong. */
static void test_sst_structural_damage(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst *t;
	lsm_iiter *it;
	struct hit h;
	default_opts(&o);
	o.compression = LSM_COMPRESS_NONE;
	uint64_t size = build(env, fx->path, &o, 2000);
	struct footer ft = read_footer(fx->path, size);

	/* Find the first data block's size from the index. */
	uint8_t *raw = malloc(ft.index_size + LSM_BLOCK_TRAILER), *ib;
	size_t iblen;
	assert_non_null(raw);
	peek(fx->path, ft.index_off, raw, ft.index_size + LSM_BLOCK_TRAILER);
	assert_int_equal(lsm_block_decode_owned(raw, ft.index_size + LSM_BLOCK_TRAILER, &ib, &iblen), 0);
	uint64_t off0 = 1, size0 = 0;
	const uint8_t *p = ib + 3 + (ib[1]);        /* entry 0: shared 0, unshared, vlen (1 byte each) */
	assert_int_equal(ib[0], 0);
	p = get_varint64(p, ib + iblen, &off0);
	p = get_varint64(p, ib + iblen, &size0);
	assert_non_null(p);
	assert_int_equal(off0, 0);
	free(ib);

	/* A restart count far too large, resealed. */
	uint8_t *blk = malloc(size0 + LSM_BLOCK_TRAILER);
	assert_non_null(blk);
	peek(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	put_fixed32(blk + size0 - 4, 0x10000000u);
	put_fixed32(blk + size0 + 1, lsm_checksum(blk, size0 + 1));
	patch(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	expect_error(get(t, 0, false, LSM_MAX_SEQ, &h), -EUCLEAN, fx->path, "block at offset 0: restart");
	expect_error(lsm_sst_verify(t), -EUCLEAN, fx->path, "block at offset 0");
	lsm_sst_close(t);

	/* An entry whose value runs off the end of the entries, resealed. */
	size = build(env, fx->path, &o, 2000);
	peek(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	blk[2] = 0x7f;                           /* vlen of entry 0 */
	put_fixed32(blk + size0 + 1, lsm_checksum(blk, size0 + 1));
	patch(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	assert_int_equal(lsm_sst_iter_new(t, true, &it), 0);
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
		;
	expect_error(iiter_status(it), -EUCLEAN, fx->path, "block at offset 0");
	iiter_destroy(it);
	expect_error(lsm_sst_verify(t), -EUCLEAN, fx->path, "block at offset 0");
	lsm_sst_close(t);

	/* Entry 0's user key "key00000000" made "key00000009": now above entry
	 * 1 ("key00000002", sharing its first 10 bytes), resealed.  No filter,
	 * which would reject the new key first. */
	o.bloom_bits_per_key = 0;
	size = build(env, fx->path, &o, 2000);
	peek(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	assert_int_equal(blk[0], 0);
	assert_memory_equal(blk + 3, "key00000000", 11);
	blk[3 + 10] = '9';
	put_fixed32(blk + size0 + 1, lsm_checksum(blk, size0 + 1));
	patch(fx->path, 0, blk, size0 + LSM_BLOCK_TRAILER);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	expect_error(lsm_sst_verify(t), -EUCLEAN, fx->path, "out of order");
	lsm_sst_close(t);
	free(blk);
}

static void test_sst_random_corruption(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	uint64_t seed = test_seed("test_sst_random_corruption");
	int rounds = test_long() ? 3000 : 300;
	default_opts(&o);
	o.block_size = 512;
	uint64_t size = build(env, fx->path, &o, 2000);
	uint8_t *orig = malloc(size);
	assert_non_null(orig);
	peek(fx->path, 0, orig, size);
	for (int round = 0; round < rounds; round++) {
		patch(fx->path, 0, orig, size);
		int flips = 1 + (int)(test_rand(&seed) % 3);
		for (int f = 0; f < flips; f++)
			flip(fx->path, test_rand(&seed) % size);
		lsm_sst *t;
		int r = lsm_sst_open(env, fx->path, size, NULL, &t);
		if (r < 0) {
			assert_true(r == -EBADMSG || r == -EUCLEAN || r == -ENOTSUP);
			continue;
		}
		struct hit h;
		for (int g = 0; g < 20; g++) {
			r = get(t, test_rand(&seed) % 2100, g & 1, LSM_MAX_SEQ, &h);
			assert_true(r == 0 || r == 1 || r == -EBADMSG || r == -EUCLEAN);
		}
		lsm_iiter *it;
		assert_int_equal(lsm_sst_iter_new(t, false, &it), 0);
		for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it))
			;
		r = iiter_status(it);
		assert_true(r == 0 || r == -EBADMSG || r == -EUCLEAN);
		iiter_destroy(it);
		r = lsm_sst_verify(t);
		assert_true(r == 0 || r == -EBADMSG || r == -EUCLEAN);
		lsm_sst_close(t);
	}
	free(orig);
}

static void test_sst_builder_misuse(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = lsm_env_posix();
	lsm_sst_builder *b;
	uint8_t k1[64], k2[64];
	default_opts(&o);
	o.block_size = 0;
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), -EINVAL);
	default_opts(&o);
	o.compression = 9;
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), -EINVAL);
	assert_int_equal(lsm_sst_builder_new(env, fx->path, NULL, &b), -EINVAL);
	default_opts(&o);
	char bad[4096];
	snprintf(bad, sizeof(bad), "%s/no/such/dir/1.sst", fx->dir);
	expect_error(lsm_sst_builder_new(env, bad, &o, &b), -ENOENT, bad, "");

	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
	size_t l1 = ikey(k1, 5, 10, LSM_TYPE_VALUE), l2 = ikey(k2, 4, 10, LSM_TYPE_VALUE);
	assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k1, l1), lsm_slice_make("v", 1)), 0);
	expect_error(lsm_sst_builder_add(b, lsm_slice_make(k2, l2), lsm_slice_make("v", 1)), -EINVAL,
	             fx->path, "order");
	expect_error(lsm_sst_builder_add(b, lsm_slice_make(k1, l1), lsm_slice_make("v", 1)), -EINVAL,
	             fx->path, "order");
	assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make("abc", 3), lsm_slice_make("v", 1)), -EINVAL);
	/* Same user key, older sequence: in order. */
	l1 = ikey(k1, 5, 9, LSM_TYPE_DELETE);
	assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k1, l1), lsm_slice_make("", 0)), 0);
	assert_int_equal(lsm_sst_builder_entries(b), 2);
	lsm_sst_builder_abandon(b);
	lsm_sst_builder_abandon(NULL);
}

static void test_sst_write_batching(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = env_fault_new(lsm_env_posix());
	default_opts(&o);
	o.compression = LSM_COMPRESS_NONE;
	env_fault_reset_counts(env);
	uint64_t size = build(env, fx->path, &o, 100000);
	uint64_t writes = env_fault_count(env, FAULT_WRITE);
	/* About one write per 64 KiB, not one per 4 KiB block. */
	assert_true(writes >= size / (128 * 1024));
	assert_true(writes <= size / (60 * 1024) + 2);
	assert_int_equal(env_fault_count(env, FAULT_SYNC), 1);
	env_fault_free(env);
}

static void test_sst_io_errors(void **state)
{
	struct fixture *fx = *state;
	lsm_options o;
	lsm_env *env = env_fault_new(lsm_env_posix());
	lsm_sst_builder *b;
	lsm_sst *t;
	uint8_t k[64];
	char v[128];
	default_opts(&o);

	/* A failed write surfaces from add (sticky after) or finish. */
	for (uint64_t nth = 1; nth <= 3; nth++) {
		env_fault_fail_nth(env, FAULT_WRITE, nth, EIO);
		assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
		int r = 0;
		uint64_t i;
		for (i = 0; i < 20000 && r == 0; i++) {
			size_t kl = ikey(k, i, 1, LSM_TYPE_VALUE), vl = val(v, i);
			r = lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, vl));
		}
		if (r == 0) {
			uint64_t size;
			r = lsm_sst_builder_finish(b, &size);
		} else {
			size_t kl = ikey(k, i + 1, 1, LSM_TYPE_VALUE);
			assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, 1)), -EIO);
			uint64_t size = 77;
			assert_int_equal(lsm_sst_builder_finish(b, &size), -EIO);
			assert_int_equal(size, 77);
		}
		expect_error(r, -EIO, fx->path, "offset");
	}
	env_fault_clear(env);

	/* A failed sync fails finish. */
	env_fault_fail_nth(env, FAULT_SYNC, 1, EIO);
	assert_int_equal(lsm_sst_builder_new(env, fx->path, &o, &b), 0);
	uint64_t size;
	expect_error(lsm_sst_builder_finish(b, &size), -EIO, fx->path, "sync");
	env_fault_clear(env);

	/* Reads: the footer at open, then a data block at get. */
	size = build(env, fx->path, &o, 3000);
	env_fault_fail_nth(env, FAULT_READ, 1, EIO);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), -EIO);
	env_fault_fail_nth(env, FAULT_READ, 3, EIO);      /* footer, index, filter, ... */
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), -EIO);
	env_fault_clear(env);
	assert_int_equal(lsm_sst_open(env, fx->path, size, NULL, &t), 0);
	env_fault_fail_nth(env, FAULT_READ, 1, EIO);
	struct hit h;
	expect_error(get(t, 7, false, LSM_MAX_SEQ, &h), -EIO, fx->path, "block at offset");
	assert_int_equal(get(t, 7, false, LSM_MAX_SEQ, &h), 1);
	lsm_sst_close(t);
	env_fault_free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sst_get_lz4_bloom_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_get_plain_no_bloom_no_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_iterate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_cache_hits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_separator_edge_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_common_prefix_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_readahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_empty_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_data_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_index_and_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_corrupt_footer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_wrong_magic_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_structural_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_random_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_builder_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_write_batching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sst_io_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
