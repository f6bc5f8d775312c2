/*
 * table_cache.c - keeps up to max_open SSTable readers open, least recently
 * used first out.  It is an lsm_cache keyed by the table's file number
 * (fixed64) whose values are lsm_sst readers, each charged 1; the cache's
 * deleter closes the reader, and a pinned handle keeps a reader alive past
 * eviction, so a lookup or iterator never sees its table closed under it
 * (an iterator holds its handle until destroyed).
 * (The cache is sharded, so the bound is max_open rounded up to a multiple of
 * the shard count.)
 *
 * Two threads missing on the same table both open it; the second insert
 * replaces the first, which closes when its user lets go.  That is rarer and
 * cheaper than holding a lock across the open's I/O.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

struct lsm_table_cache {
	lsm_env *env;
	char *dir;
	lsm_cache *cache;           /* number -> lsm_sst*, charge 1 */
	lsm_cache *block_cache;     /* handed to every reader; may be NULL */
	bool mmap_reads;            /* open tables through a read-only mapping */
};

void lsm_table_cache_set_mmap(lsm_table_cache *tc, bool mmap_reads)
{
	tc->mmap_reads = mmap_reads;
}

int lsm_table_cache_new(lsm_env *env, const char *dir, int max_open, lsm_cache *block_cache,
                        lsm_table_cache **ret_tc)
{
	if (max_open < 1)
		return -EINVAL;
	lsm_table_cache *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return -ENOMEM;
	tc->env = env;
	tc->block_cache = block_cache;
	int r = -ENOMEM;
	if (!(tc->dir = strdup(dir)) || (r = lsm_cache_new((size_t)max_open, &tc->cache)) < 0) {
		free(tc->dir);
		free(tc);
		return r;
	}
	*ret_tc = tc;
	return 0;
}

void lsm_table_cache_free(lsm_table_cache *tc)
{
	if (!tc)
		return;
	lsm_cache_free(tc->cache);
	free(tc->dir);
	free(tc);
}

static void close_table(const void *key, size_t klen, void *value)
{
	(void)key;
	(void)klen;
	lsm_sst_close(value);
}

/* Returns a pinned handle on table number, opening it on a miss. */
static int find_table(lsm_table_cache *tc, uint64_t number, uint64_t size, lsm_cache_handle **ret_h)
{
	uint8_t key[8];
	put_fixed64(key, number);
	lsm_cache_handle *h = lsm_cache_lookup(tc->cache, key, sizeof(key));
	if (!h) {
		char path[PATH_MAX];
		lsm_sst *t;
		if ((size_t)snprintf(path, sizeof(path), "%s/%06llu.sst", tc->dir,
		                     (unsigned long long)number) >= sizeof(path))
			return -ENAMETOOLONG;
		int r = lsm_sst_open_mapped(tc->env, path, size, tc->block_cache, tc->mmap_reads, &t);
		if (r < 0)
			return r;
		h = lsm_cache_insert(tc->cache, key, sizeof(key), t, 1, close_table);
		if (!h)
			return -ENOMEM;     /* the deleter has closed t */
	}
	*ret_h = h;
	return 0;
}

int lsm_table_cache_get(lsm_table_cache *tc, uint64_t number, uint64_t size, lsm_slice lookup_ikey,
                        bool fill_cache, lsm_sst_found_fn fn, void *arg)
{
	lsm_cache_handle *h;
	int r = find_table(tc, number, size, &h);
	if (r < 0)
		return r;
	r = lsm_sst_get(lsm_cache_value(h), lookup_ikey, fill_cache, fn, arg);
	lsm_cache_release(tc->cache, h);
	return r;
}

int lsm_table_cache_iter(lsm_table_cache *tc, uint64_t number, uint64_t size, bool fill_cache,
                         lsm_iiter **ret_iter)
{
	lsm_cache_handle *h;
	int r = find_table(tc, number, size, &h);
	if (r < 0)
		return r;
	/* The table iterator itself holds the handle that keeps its table open:
	 * no wrapper, so no extra indirect call on every step of a scan. */
	return lsm_sst_iter_new_pinned(lsm_cache_value(h), fill_cache, tc->cache, h, ret_iter);
}

void lsm_table_cache_evict(lsm_table_cache *tc, uint64_t number)
{
	uint8_t key[8];
	put_fixed64(key, number);
	lsm_cache_erase(tc->cache, key, sizeof(key));
}
