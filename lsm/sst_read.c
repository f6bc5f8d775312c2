/*
 * sst_read.c - the SSTable reader (format in sst_build.c): open, point
 * lookup, a two-level iterator, and a full verification pass.
 *
 * Open reads and checks the footer, then reads, verifies and keeps the index
 * and filter blocks in memory for the reader's life, so a lookup touches the
 * disk at most once: for its data block.  Data blocks go through the shared
 * block cache under a 16-byte key (the reader's cache id, the block offset),
 * charged at their uncompressed size; a miss reads block and trailer with one
 * pread, verifies, decompresses and inserts.
 *
 * A lookup asks the bloom filter first, so a table that lacks the key costs a
 * hash and a few bit probes: no allocation, no lock, no I/O.
 *
 * Nothing read from disk is trusted.  Keys shorter than an internal key's
 * trailer sort bytewise (lsm_block_ikey_cmp) instead of crashing the
 * comparator, and are reported as corruption wherever an entry is surfaced;
 * handles are checked against the data area; every error names the file and
 * the offset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

struct lsm_sst {
	lsm_env *env;
	lsm_file *file;
	char *path;
	lsm_cache *cache;           /* may be NULL */
	uint64_t cache_id;          /* namespaces this reader's blocks in cache */
	lsm_block *index;           /* owns its bytes */
	uint8_t *filter;            /* NULL: no filter, every key may match */
	size_t filter_len;
	uint64_t data_end;          /* data blocks occupy [0, data_end) */
	uint64_t index_off;         /* for messages */
	uint64_t entries;
	uint32_t nblocks;
	const uint8_t *map;         /* the whole file mapped, or NULL: blocks via pread */
	uint64_t map_size;
};

/* Re-reports the error just recorded by a lower layer (block.c, compress.c)
 * with the table's path and the block's kind and offset in front. */
static int lower_err(const lsm_sst *t, const char *kind, uint64_t off, int err)
{
	if (err == -ENOMEM)
		return err;
	char why[256], suffix[96];
	snprintf(why, sizeof(why), "%s", lsm_last_error());
	snprintf(suffix, sizeof(suffix), " (%s)", strerror(-err));
	size_t wl = strlen(why), sl = strlen(suffix);
	if (wl >= sl && strcmp(why + wl - sl, suffix) == 0)
		why[wl - sl] = '\0';    /* lsm_errf will append it again */
	return lsm_errf(err, "%s: %s at offset %llu: %s", t->path, kind, (unsigned long long)off,
	                why[0] ? why : "malformed");
}

static int block_err(const lsm_sst *t, uint64_t off, int err)
{
	return lower_err(t, "block", off, err);
}

static int index_err(const lsm_sst *t, int err)
{
	return lower_err(t, "index block", t->index_off, err);
}

/* Reads the block at [off, off + size) plus its trailer, verifies and
 * decodes it into a malloc'd *ret_raw. */
static int read_block(const lsm_sst *t, const char *kind, uint64_t off, uint64_t size, uint8_t **ret_raw,
                      size_t *ret_len)
{
	size_t n = (size_t)size + LSM_BLOCK_TRAILER;
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	ssize_t got;
	if (t->map && off <= t->map_size && n <= t->map_size - off) {
		/* A copy from the mapping: no system call per block. */
		memcpy(buf, t->map + off, n);
		got = (ssize_t)n;
	} else {
		got = env_pread(t->env, t->file, buf, n, off);
	}
	if (got < 0 || (size_t)got < n) {
		free(buf);
		if (got < 0)
			return lsm_errf((int)got, "%s: %s at offset %llu: read failed", t->path, kind,
			                (unsigned long long)off);
		return lsm_errf(-EUCLEAN, "%s: %s at offset %llu: file ends after %zd of %zu bytes",
		                t->path, kind, (unsigned long long)off, got, n);
	}
	int r = lsm_block_decode_owned(buf, n, ret_raw, ret_len);
	return r < 0 ? lower_err(t, kind, off, r) : 0;
}

/* Reads a block and parses it (the lsm_block owns the bytes). */
static int load_block(const lsm_sst *t, const char *kind, uint64_t off, uint64_t size,
                      lsm_block **ret_block)
{
	uint8_t *raw;
	size_t len;
	int r = read_block(t, kind, off, size, &raw, &len);
	if (r < 0)
		return r;
	r = lsm_block_new(raw, len, true, ret_block);
	if (r < 0) {
		free(raw);
		return lower_err(t, kind, off, r);
	}
	return 0;
}

/* Parses an index entry's value into a data block handle. */
static int decode_handle(const lsm_sst *t, lsm_slice v, uint64_t *ret_off, uint64_t *ret_size)
{
	const uint8_t *p = v.data, *end = v.data + v.len;
	uint64_t off, size;
	if (!(p = get_varint64(p, end, &off)) || !(p = get_varint64(p, end, &size)) || p != end ||
	    off > t->data_end || size > t->data_end - off || t->data_end - off - size < LSM_BLOCK_TRAILER)
		return lsm_errf(-EUCLEAN, "%s: index block at offset %llu: bad block handle", t->path,
		                (unsigned long long)t->index_off);
	*ret_off = off;
	*ret_size = size;
	return 0;
}

/* A data block pinned for use: either a cache handle or a private copy. */
struct blockref {
	lsm_block *block;
	lsm_cache_handle *h;
};

static void block_release(const lsm_sst *t, struct blockref *br)
{
	if (br->h)
		lsm_cache_release(t->cache, br->h);
	else
		lsm_block_free(br->block);
	br->block = NULL;
	br->h = NULL;
}

static void cached_block_deleter(const void *key, size_t klen, void *value)
{
	(void)key;
	(void)klen;
	lsm_block_free(value);
}

static int get_block(const lsm_sst *t, uint64_t off, uint64_t size, bool fill_cache, struct blockref *ret)
{
	uint8_t key[16];
	lsm_block *blk;
	if (t->cache) {
		put_fixed64(key, t->cache_id);
		put_fixed64(key + 8, off);
		lsm_cache_handle *h = lsm_cache_lookup(t->cache, key, sizeof(key));
		if (h) {
			ret->block = lsm_cache_value(h);
			ret->h = h;
			return 0;
		}
	}
	int r = load_block(t, "block", off, size, &blk);
	if (r < 0)
		return r;
	ret->block = blk;
	ret->h = NULL;
	if (t->cache && fill_cache) {
		ret->h = lsm_cache_insert(t->cache, key, sizeof(key), blk, lsm_block_size(blk),
		                          cached_block_deleter);
		if (!ret->h)
			return -ENOMEM;     /* the deleter has freed blk */
	}
	return 0;
}

/* ---- open / close ------------------------------------------------------ */

int lsm_sst_open(lsm_env *env, const char *path, uint64_t file_size, lsm_cache *cache, lsm_sst **ret_sst)
{
	return lsm_sst_open_mapped(env, path, file_size, cache, false, ret_sst);
}

int lsm_sst_open_mapped(lsm_env *env, const char *path, uint64_t file_size, lsm_cache *cache, bool mmap_reads,
                        lsm_sst **ret_sst)
{
	uint8_t f[LSM_SST_FOOTER];
	lsm_sst *t = calloc(1, sizeof(*t));
	int r = -ENOMEM;
	if (!t)
		return -ENOMEM;
	t->env = env;
	t->cache = cache;
	if (!(t->path = strdup(path)))
		goto fail;
	if ((r = env_open(env, path, LSM_ENV_READ, &t->file)) < 0) {
		r = lsm_errf(r, "%s: cannot open table", path);
		goto fail;
	}
	if (file_size == 0 && (r = env_size(env, t->file, &file_size)) < 0)
		goto fail;
	if (file_size < LSM_SST_FOOTER) {
		r = lsm_errf(-EUCLEAN, "%s: %llu bytes is too short for an SSTable", path,
		             (unsigned long long)file_size);
		goto fail;
	}
	uint64_t meta_end = file_size - LSM_SST_FOOTER;
	if ((r = env_read_exact(env, t->file, path, f, sizeof(f), meta_end)) < 0)
		goto fail;
	if (get_fixed32(f + 44) != LSM_SST_MAGIC) {
		r = lsm_errf(-EUCLEAN, "%s: not an SSTable (bad magic at offset %llu)", path,
		             (unsigned long long)meta_end + 44);
		goto fail;
	}
	if (get_fixed32(f + 40) != LSM_SST_VERSION) {
		r = lsm_errf(-ENOTSUP, "%s: SSTable format version %u is not supported", path, get_fixed32(f + 40));
		goto fail;
	}
	if (get_fixed32(f + 28) != lsm_checksum2(f, 28, f + 32, 16)) {
		r = lsm_errf(-EBADMSG, "%s: footer at offset %llu: checksum mismatch", path,
		             (unsigned long long)meta_end);
		goto fail;
	}
	uint64_t filter_off = get_fixed64(f), filter_size = get_fixed32(f + 8);
	uint64_t index_size = get_fixed32(f + 12), index_off = get_fixed64(f + 16);
	t->nblocks = get_fixed32(f + 24);
	t->entries = get_fixed64(f + 32);
	/* The layout is fixed: index right before the footer, filter (if any)
	 * right before the index, data blocks before that. */
	if (index_off > meta_end || meta_end - index_off != index_size + LSM_BLOCK_TRAILER ||
	    (filter_size && (filter_off > index_off ||
	                     index_off - filter_off != filter_size + LSM_BLOCK_TRAILER))) {
		r = lsm_errf(-EUCLEAN, "%s: footer at offset %llu: block handles out of place", path,
		             (unsigned long long)meta_end);
		goto fail;
	}
	/* Map the file when the env can and the file really is that long
	 * (touching a mapping past the end of a file is SIGBUS, not an error). */
	uint64_t actual;
	if (mmap_reads && env->ops->mmap && env_size(env, t->file, &actual) == 0 && actual >= file_size &&
	    env_mmap(env, t->file, file_size, (const void **)&t->map) == 0)
		t->map_size = file_size;
	else
		t->map = NULL;
	t->data_end = filter_size ? filter_off : index_off;
	t->index_off = index_off;
	if ((r = load_block(t, "index block", index_off, index_size, &t->index)) < 0)
		goto fail;
	if (filter_size &&
	    (r = read_block(t, "filter block", filter_off, filter_size, &t->filter, &t->filter_len)) < 0)
		goto fail;
	if (cache)
		t->cache_id = lsm_cache_new_id(cache);
	*ret_sst = t;
	return 0;

fail:
	lsm_sst_close(t);
	return r;
}

void lsm_sst_close(lsm_sst *t)
{
	if (!t)
		return;
	if (t->map)
		env_munmap(t->env, t->map, t->map_size);
	env_close(t->env, t->file);
	lsm_block_free(t->index);
	free(t->filter);
	free(t->path);
	free(t);
}

uint64_t lsm_sst_entries(const lsm_sst *t)
{
	return t->entries;
}

/* ---- point lookup ------------------------------------------------------ */

struct index_hit {
	lsm_slice value;
};

static void on_index(void *arg, lsm_slice key, lsm_slice value)
{
	(void)key;
	((struct index_hit *)arg)->value = value;   /* the index lives as long as t */
}

struct get_ctx {
	lsm_slice user;
	lsm_sst_found_fn fn;
	void *arg;
	int found;              /* 1 found, 0 not, -EUCLEAN a short key */
};

static void on_data(void *arg, lsm_slice key, lsm_slice value)
{
	struct get_ctx *g = arg;
	if (key.len < 8) {
		g->found = -EUCLEAN;
	} else if (lsm_slice_eq(lsm_ikey_user(key), g->user)) {
		g->fn(g->arg, key, value);
		g->found = 1;
	}
}

int lsm_sst_get(lsm_sst *t, lsm_slice lookup_ikey, bool fill_cache, lsm_sst_found_fn fn, void *arg)
{
	if (lookup_ikey.len < 8)
		return -EINVAL;
	lsm_slice user = lsm_ikey_user(lookup_ikey);
	if (t->filter && !lsm_bloom_may_contain(t->filter, t->filter_len, user))
		return 0;

	struct index_hit hit;
	int r = lsm_block_seek_get(t->index, lsm_block_ikey_cmp, lookup_ikey, on_index, &hit);
	if (r <= 0)
		return r == 0 ? 0 : index_err(t, r);
	uint64_t off, size;
	if ((r = decode_handle(t, hit.value, &off, &size)) < 0)
		return r;

	struct blockref br;
	if ((r = get_block(t, off, size, fill_cache, &br)) < 0)
		return r;
	struct get_ctx g = { user, fn, arg, 0 };
	r = lsm_block_seek_get(br.block, lsm_block_ikey_cmp, lookup_ikey, on_data, &g);
	block_release(t, &br);
	if (r < 0)
		return block_err(t, off, r);
	if (g.found < 0)
		return lsm_errf(-EUCLEAN, "%s: block at offset %llu: key shorter than its trailer", t->path,
		                (unsigned long long)off);
	return g.found;
}

/* ---- two-level iterator ------------------------------------------------ */

struct sst_iter {
	lsm_iiter base;
	lsm_sst *t;
	bool fill_cache;
	lsm_iiter *index;       /* over t->index */
	lsm_iiter *data;        /* over blk.block, or NULL */
	struct blockref blk;
	uint64_t data_off;      /* offset of the block under data */
	int status;             /* first error; sticky */
};

static void drop_data(struct sst_iter *it)
{
	iiter_destroy(it->data);
	it->data = NULL;
	if (it->blk.block)
		block_release(it->t, &it->blk);
}

/* Points data at the block the index is on (keeping it if it already is). */
static void load_data(struct sst_iter *it)
{
	uint64_t off, size;
	int r;
	if (!iiter_valid(it->index)) {
		if ((r = iiter_status(it->index)) < 0)
			it->status = index_err(it->t, r);
		drop_data(it);
		return;
	}
	if ((r = decode_handle(it->t, iiter_value(it->index), &off, &size)) < 0) {
		it->status = r;
		drop_data(it);
		return;
	}
	if (it->data && off == it->data_off)
		return;
	drop_data(it);
	if ((r = get_block(it->t, off, size, it->fill_cache, &it->blk)) < 0) {
		it->status = r;
		return;
	}
	if ((r = lsm_block_iter_new(it->blk.block, lsm_block_ikey_cmp, &it->data)) < 0) {
		block_release(it->t, &it->blk);
		it->status = r;
		return;
	}
	it->data_off = off;
}

/* After a move of data: stops at an error, or moves on to the next (or
 * previous) block while data is exhausted; then checks the key it landed on. */
static void settle(struct sst_iter *it, bool forward)
{
	while (!it->status && it->data && !iiter_valid(it->data)) {
		int r = iiter_status(it->data);
		if (r < 0) {
			it->status = block_err(it->t, it->data_off, r);
			break;
		}
		if (forward)
			iiter_next(it->index);
		else
			iiter_prev(it->index);
		load_data(it);
		if (it->data) {
			if (forward)
				iiter_seek_to_first(it->data);
			else
				iiter_seek_to_last(it->data);
		}
	}
	if (!it->status && it->data && iiter_key(it->data).len < 8)
		it->status = lsm_errf(-EUCLEAN, "%s: block at offset %llu: key shorter than its trailer",
		                      it->t->path, (unsigned long long)it->data_off);
	if (it->status)
		drop_data(it);
}

static struct sst_iter *SI(lsm_iiter *it)
{
	return (struct sst_iter *)it;
}

static bool si_valid(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	return it->data && iiter_valid(it->data);
}

static void si_seek(lsm_iiter *base, lsm_slice target)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	iiter_seek(it->index, target);
	load_data(it);
	if (it->data)
		iiter_seek(it->data, target);
	settle(it, true);
}

static void si_seek_to_first(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	iiter_seek_to_first(it->index);
	load_data(it);
	if (it->data)
		iiter_seek_to_first(it->data);
	settle(it, true);
}

static void si_seek_to_last(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	iiter_seek_to_last(it->index);
	load_data(it);
	if (it->data)
		iiter_seek_to_last(it->data);
	settle(it, false);
}

static void si_next(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	iiter_next(it->data);
	settle(it, true);
}

static void si_prev(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	iiter_prev(it->data);
	settle(it, false);
}

static lsm_slice si_key(lsm_iiter *base) { return iiter_key(SI(base)->data); }
static lsm_slice si_value(lsm_iiter *base) { return iiter_value(SI(base)->data); }
static int si_status(lsm_iiter *base) { return SI(base)->status; }

static void si_destroy(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	drop_data(it);
	iiter_destroy(it->index);
	free(it);
}

static const struct lsm_iiter_ops sst_iter_ops = {
	.valid = si_valid,
	.seek_to_first = si_seek_to_first,
	.seek_to_last = si_seek_to_last,
	.seek = si_seek,
	.next = si_next,
	.prev = si_prev,
	.key = si_key,
	.value = si_value,
	.status = si_status,
	.destroy = si_destroy,
};

int lsm_sst_iter_new(lsm_sst *t, bool fill_cache, lsm_iiter **ret_iter)
{
	struct sst_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	int r = lsm_block_iter_new(t->index, lsm_block_ikey_cmp, &it->index);
	if (r < 0) {
		free(it);
		return r;
	}
	it->base.ops = &sst_iter_ops;
	it->t = t;
	it->fill_cache = fill_cache;
	*ret_iter = &it->base;
	return 0;
}

/* ---- verification ------------------------------------------------------ */

/* A growable copy of a key. */
struct keycopy {
	uint8_t *buf;
	size_t len, cap;
	bool set;
};

static int keycopy_set(struct keycopy *c, lsm_slice k)
{
	if (k.len > c->cap) {
		uint8_t *p = realloc(c->buf, k.len);
		if (!p)
			return -ENOMEM;
		c->buf = p;
		c->cap = k.len;
	}
	memcpy(c->buf, k.data, k.len);
	c->len = k.len;
	c->set = true;
	return 0;
}

static lsm_slice keycopy_get(const struct keycopy *c)
{
	return lsm_slice_make(c->buf, c->len);
}

/* Checks one data block (read from disk, bypassing the cache): keys well
 * formed and strictly increasing from *prev, above the previous block's index
 * key, at most this block's index key sep, and present in the filter. */
static int verify_block(lsm_sst *t, uint64_t off, uint64_t size, lsm_slice sep,
                        const struct keycopy *prev_sep, struct keycopy *prev, uint64_t *count)
{
	lsm_block *blk;
	lsm_iiter *it;
	int r = load_block(t, "block", off, size, &blk);
	if (r < 0)
		return r;
	if ((r = lsm_block_iter_new(blk, lsm_block_ikey_cmp, &it)) < 0) {
		lsm_block_free(blk);
		return r;
	}
	const char *bad = NULL;
	for (iiter_seek_to_first(it); iiter_valid(it) && !bad && r == 0; iiter_next(it)) {
		lsm_slice k = iiter_key(it);
		if (k.len < 8)
			bad = "key shorter than its trailer";
		else if (prev->set && lsm_ikey_cmp(keycopy_get(prev), k) >= 0)
			bad = "keys out of order";
		else if (prev_sep->set && lsm_ikey_cmp(keycopy_get(prev_sep), k) >= 0)
			bad = "key not above the previous block's index key";
		else if (lsm_ikey_cmp(k, sep) > 0)
			bad = "key beyond the block's index key";
		else if (t->filter && !lsm_bloom_may_contain(t->filter, t->filter_len, lsm_ikey_user(k)))
			bad = "filter does not contain a key of the block";
		else if ((r = keycopy_set(prev, k)) == 0)
			(*count)++;
	}
	if (bad)
		r = lsm_errf(-EUCLEAN, "%s: block at offset %llu: %s", t->path, (unsigned long long)off, bad);
	else if (r == 0 && (r = iiter_status(it)) < 0)
		r = block_err(t, off, r);
	iiter_destroy(it);
	lsm_block_free(blk);
	return r;
}

int lsm_sst_verify(lsm_sst *t)
{
	lsm_iiter *ix;
	struct keycopy prev = { NULL, 0, 0, false }, prev_sep = { NULL, 0, 0, false };
	uint64_t count = 0, expect = 0, nblocks = 0;
	int r = lsm_block_iter_new(t->index, lsm_block_ikey_cmp, &ix);
	if (r < 0)
		return r;
	for (iiter_seek_to_first(ix); iiter_valid(ix) && r == 0; iiter_next(ix)) {
		uint64_t off, size;
		lsm_slice sep = iiter_key(ix);
		if (sep.len < 8) {
			r = lsm_errf(-EUCLEAN, "%s: index block at offset %llu: key shorter than its trailer",
			             t->path, (unsigned long long)t->index_off);
			break;
		}
		if ((r = decode_handle(t, iiter_value(ix), &off, &size)) < 0)
			break;
		if (off != expect) {
			r = lsm_errf(-EUCLEAN, "%s: block at offset %llu: expected the next block at offset %llu",
			             t->path, (unsigned long long)off, (unsigned long long)expect);
			break;
		}
		if ((r = verify_block(t, off, size, sep, &prev_sep, &prev, &count)) == 0)
			r = keycopy_set(&prev_sep, sep);
		expect = off + size + LSM_BLOCK_TRAILER;
		nblocks++;
	}
	if (r == 0 && (r = iiter_status(ix)) < 0)
		r = index_err(t, r);
	if (r == 0 && (expect != t->data_end || nblocks != t->nblocks || count != t->entries))
		r = lsm_errf(-EUCLEAN, "%s: index covers %llu blocks, %llu entries and %llu bytes; footer says "
		             "%u, %llu and %llu", t->path, (unsigned long long)nblocks,
		             (unsigned long long)count, (unsigned long long)expect, t->nblocks,
		             (unsigned long long)t->entries, (unsigned long long)t->data_end);
	iiter_destroy(ix);
	free(prev.buf);
	free(prev_sep.buf);
	return r;
}
