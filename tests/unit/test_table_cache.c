/*
 * test_table_cache.c - the table cache over real files in a tmpdir: lookups
 * through it, the bound on open tables (counted from /proc/self/fd), reuse of
 * an open table, explicit eviction, iterators that keep an evicted table
 * open until destroyed, and failures (missing or damaged table) that leave
 * nothing cached.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "testutil.h"

#define NTABLES 100
#define PER_TABLE 50

struct fixture {
	char *dir;
	uint64_t sizes[NTABLES + 1];    /* by file number, 1-based */
};

/* User key j of table n. */
static size_t ukey(char *buf, uint64_t n, int j)
{
	return (size_t)sprintf(buf, "t%03llu-k%03d", (unsigned long long)n, j);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	lsm_options o;
	assert_non_null(fx);
	fx->dir = test_tmpdir("tcache");
	memset(&o, 0, sizeof(o));
	o.block_size = 1024;
	o.block_restart_interval = 16;
	o.bloom_bits_per_key = 10;
	o.compression = LSM_COMPRESS_LZ4;
	for (uint64_t n = 1; n <= NTABLES; n++) {
		char path[4096], u[32], v[32];
		uint8_t k[64];
		lsm_sst_builder *b;
		snprintf(path, sizeof(path), "%s/%06llu.sst", fx->dir, (unsigned long long)n);
		assert_int_equal(lsm_sst_builder_new(lsm_env_posix(), path, &o, &b), 0);
		for (int j = 0; j < PER_TABLE; j++) {
			size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, ukey(u, n, j)), 5, LSM_TYPE_VALUE);
			size_t vl = (size_t)sprintf(v, "v%llu.%d", (unsigned long long)n, j);
			assert_int_equal(lsm_sst_builder_add(b, lsm_slice_make(k, kl), lsm_slice_make(v, vl)), 0);
		}
		assert_int_equal(lsm_sst_builder_finish(b, &fx->sizes[n]), 0);
	}
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

/* Files under dir this process has open right now. */
static int open_tables(const char *dir)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char link[300], target[4096];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t l = readlink(link, target, sizeof(target) - 1);
		if (l <= 0)
			continue;
		target[l] = '\0';
		if (strncmp(target, dir, strlen(dir)) == 0 && strstr(target, ".sst"))
			n++;
	}
	closedir(d);
	return n;
}

struct hit {
	char val[64];
	size_t vlen;
	int calls;
};

static void on_found(void *arg, lsm_slice k, lsm_slice v)
{
	struct hit *h = arg;
	(void)k;
	memcpy(h->val, v.data, v.len);
	h->vlen = v.len;
	h->calls++;
}

/* Looks key j of table n up through tc and checks the answer. */
static void lookup(lsm_table_cache *tc, struct fixture *fx, uint64_t n, int j, bool present)
{
	char u[32], v[32];
	uint8_t k[64];
	struct hit h = { .calls = 0 };
	size_t kl = lsm_ikey_encode(k, lsm_slice_make(u, ukey(u, n, j)), LSM_MAX_SEQ, LSM_TYPE_SEEK);
	int r = lsm_table_cache_get(tc, n, fx->sizes[n], lsm_slice_make(k, kl), true, on_found, &h);
	assert_int_equal(r, present ? 1 : 0);
	if (present) {
		size_t vl = (size_t)sprintf(v, "v%llu.%d", (unsigned long long)n, j);
		assert_int_equal(h.calls, 1);
		assert_int_equal(h.vlen, vl);
		assert_memory_equal(h.val, v, vl);
	}
}

static void test_table_cache_get(void **state)
{
	struct fixture *fx = *state;
	lsm_cache *blocks;
	lsm_table_cache *tc;
	assert_int_equal(lsm_cache_new(1 << 20, &blocks), 0);
	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, 1000, blocks, &tc), 0);
	for (uint64_t n = 1; n <= NTABLES; n++) {
		lookup(tc, fx, n, 0, true);
		lookup(tc, fx, n, PER_TABLE - 1, true);
		lookup(tc, fx, n, PER_TABLE, false);
	}
	/* Room for all: each opened once and still open. */
	assert_int_equal(open_tables(fx->dir), NTABLES);
	lsm_table_cache_free(tc);
	assert_int_equal(open_tables(fx->dir), 0);
	lsm_cache_free(blocks);
}

static void test_table_cache_bound(void **state)
{
	struct fixture *fx = *state;
	lsm_table_cache *tc;
	/* A multiple of the cache's 16 shards makes the bound exact. */
	const int max_open = 32;
	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, max_open, NULL, &tc), 0);
	int peak = 0;
	for (int round = 0; round < 3; round++) {
		for (uint64_t n = 1; n <= NTABLES; n++) {
			lookup(tc, fx, n, (int)n % PER_TABLE, true);
			int now = open_tables(fx->dir);
			if (now > peak)
				peak = now;
		}
	}
	assert_true(peak <= max_open);
	assert_true(peak >= max_open / 2);   /* it does keep tables open */
	/* The table just used is still open: using it again opens nothing. */
	int before = open_tables(fx->dir);
	lookup(tc, fx, NTABLES, 1, true);
	assert_int_equal(open_tables(fx->dir), before);
	lsm_table_cache_free(tc);
	assert_int_equal(open_tables(fx->dir), 0);
}

static void test_table_cache_evict(void **state)
{
	struct fixture *fx = *state;
	lsm_table_cache *tc;
	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, 100, NULL, &tc), 0);
	lookup(tc, fx, 7, 3, true);
	assert_int_equal(open_tables(fx->dir), 1);
	lookup(tc, fx, 7, 4, true);
	assert_int_equal(open_tables(fx->dir), 1);
	lsm_table_cache_evict(tc, 7);
	assert_int_equal(open_tables(fx->dir), 0);
	lsm_table_cache_evict(tc, 7);           /* evicting an absent table is harmless */
	lsm_table_cache_evict(tc, 99999);
	lookup(tc, fx, 7, 5, true);
	assert_int_equal(open_tables(fx->dir), 1);
	lsm_table_cache_free(tc);
}

static void check_scan(lsm_iiter *it, uint64_t n)
{
	char u[32];
	int j = 0;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it), j++) {
		lsm_slice k = iiter_key(it);
		size_t ul = ukey(u, n, j);
		assert_true(lsm_slice_eq(lsm_ikey_user(k), lsm_slice_make(u, ul)));
	}
	assert_int_equal(j, PER_TABLE);
	assert_int_equal(iiter_status(it), 0);
}

static void test_table_cache_iter_keeps_table(void **state)
{
	struct fixture *fx = *state;
	lsm_table_cache *tc;
	lsm_iiter *it;
	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, 16, NULL, &tc), 0);
	assert_int_equal(lsm_table_cache_iter(tc, 1, fx->sizes[1], true, &it), 0);
	check_scan(it, 1);
	/* Evict table 1 explicitly and by pressure: the iterator still works,
	 * and the file stays open because of it. */
	lsm_table_cache_evict(tc, 1);
	for (uint64_t n = 2; n <= NTABLES; n++)
		lookup(tc, fx, n, 0, true);
	check_scan(it, 1);
	iiter_seek_to_last(it);
	assert_true(iiter_valid(it));
	int with = open_tables(fx->dir);
	iiter_destroy(it);
	assert_int_equal(open_tables(fx->dir), with - 1);

	/* Two iterators on one cached table, destroyed in either order. */
	lsm_iiter *a, *b;
	assert_int_equal(lsm_table_cache_iter(tc, 50, fx->sizes[50], false, &a), 0);
	assert_int_equal(lsm_table_cache_iter(tc, 50, fx->sizes[50], true, &b), 0);
	check_scan(a, 50);
	iiter_destroy(a);
	check_scan(b, 50);
	iiter_destroy(b);
	lsm_table_cache_free(tc);
	assert_int_equal(open_tables(fx->dir), 0);
}

static void test_table_cache_errors(void **state)
{
	struct fixture *fx = *state;
	lsm_table_cache *tc = NULL;
	lsm_iiter *it = NULL;
	uint8_t k[32];
	struct hit h = { .calls = 0 };
	size_t kl = lsm_ikey_encode(k, lsm_slice_make("x", 1), LSM_MAX_SEQ, LSM_TYPE_SEEK);

	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, 0, NULL, &tc), -EINVAL);
	assert_null(tc);
	assert_int_equal(lsm_table_cache_new(lsm_env_posix(), fx->dir, 16, NULL, &tc), 0);

	/* A missing table. */
	assert_int_equal(lsm_table_cache_get(tc, 4242, 1000, lsm_slice_make(k, kl), true, on_found, &h), -ENOENT);
	assert_non_null(strstr(lsm_last_error(), "004242.sst"));
	assert_int_equal(lsm_table_cache_iter(tc, 4242, 1000, true, &it), -ENOENT);
	assert_null(it);

	/* A damaged footer: the error comes back every time (nothing was
	 * cached), and the file is not left open. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/000003.sst", fx->dir);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0\0\0\0", 4, (off_t)fx->sizes[3] - 4), 4);
	close(fd);
	for (int i = 0; i < 2; i++) {
		int r = lsm_table_cache_get(tc, 3, fx->sizes[3], lsm_slice_make(k, kl), true, on_found, &h);
		assert_int_equal(r, -EUCLEAN);
		assert_non_null(strstr(lsm_last_error(), "000003.sst"));
		assert_int_equal(lsm_table_cache_iter(tc, 3, fx->sizes[3], true, &it), -EUCLEAN);
	}
	assert_int_equal(open_tables(fx->dir), 0);
	assert_int_equal(h.calls, 0);
	lsm_table_cache_free(tc);
	lsm_table_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_table_cache_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_cache_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_cache_evict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_cache_iter_keeps_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_cache_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
