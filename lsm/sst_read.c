/*
 * sst_read.c - the SSTable reader (format in sst_build.c): open, point
 * lookup, a two-level iterator, and a full verification pass.
 *
 * Open reads and checks the footer, the filter block (kept for the reader's
 * life) and the index block, which it decodes into arrays: per data block a
 * search prefix, the block's handle, and its separator key.  The prefix is 8
 * bytes of the separator's user key, taken after the bytes every separator
 * shares and read big-endian, so a binary search compares integers in one
 * small array (a few cache lines per table, hot across lookups) and looks at
 * a whole key only when two prefixes tie.  Handles are validated once, here,
 * along with the separators' order, so a damaged index fails the open.
 *
 * Data blocks go through the shared block cache under a 16-byte key (the
 * reader's cache id, the block offset), charged at their uncompressed size; a
 * miss reads block and trailer with one pread, verifies, decompresses and
 * inserts.  A lookup asks the bloom filter first, so a table that lacks the
 * key costs a hash and a few bit probes: no allocation, no lock, no I/O.
 *
 * Iterators read ahead.  Once an iterator has loaded two blocks in a row
 * going forwards, it reads the blocks after them with one pread into a buffer
 * of its own, 16 KiB the first time and twice as much each time after, up to
 * 256 KiB, and takes the following blocks from there: a scan costs a system
 * call per 256 KiB rather than per 4 KiB block.  Every block is still
 * verified as it is taken, and an uncompressed one is used in place.  Blocks
 * met this way are not put in the block cache: a scan would otherwise push
 * out the blocks point lookups keep coming back to, for blocks it will not
 * read again (the first blocks of every scan, and every block a seek lands
 * on, are cached as before).  With mmap_reads, blocks come from the mapping
 * and nothing is read ahead.
 *
 * Nothing read from disk is trusted.  Keys shorter than an internal key's
 * trailer sort bytewise (lsm_block_ikey_cmp) instead of crashing the
 * comparator, and are reported as corruption wherever an entry is surfaced;
 * every error names the file and the offset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

/* A data block's place: [off, off + size) plus its trailer. */
struct handle {
	uint64_t off;
	uint64_t size;
};

struct lsm_sst {
	lsm_env *env;
	lsm_file *file;
	char *path;
	lsm_cache *cache;           /* may be NULL */
	uint64_t cache_id;          /* namespaces this reader's blocks in cache */
	uint32_t n;                 /* index entries, one per data block */
	uint32_t m;                 /* entries with a prefix: n - 1, or n if n < 2 */
	uint64_t *prefix;           /* m search prefixes (see key_prefix); owns the
	                               allocation handles, koff and keys live in */
	struct handle *handles;     /* n */
	uint32_t *koff;             /* n + 1 offsets of the separators in keys */
	uint8_t *keys;              /* the separators (internal keys), back to back */
	size_t lcp;                 /* leading bytes the first m separators' user keys share */
	uint8_t *filter;            /* NULL: no filter, every key may match */
	size_t filter_len;
	uint64_t data_end;          /* data blocks occupy [0, data_end) */
	uint64_t index_off;         /* for messages */
	uint64_t entries;
	uint32_t nblocks;
	const uint8_t *map;         /* the whole file mapped, or NULL: blocks via pread */
	uint64_t map_size;
	_Atomic(struct sst_iter *) spare;  /* a destroyed iterator, kept for the next one */
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

static int short_key_err(const lsm_sst *t, uint64_t off)
{
	return lsm_errf(-EUCLEAN, "%s: block at offset %llu: key shorter than its trailer", t->path,
	                (unsigned long long)off);
}

/* Reads the block at [off, off + size) plus its trailer, verifies and
 * decodes it into a malloc'd *ret_raw. */
static int read_block(const lsm_sst *t, const char *kind, uint64_t off, uint64_t size, uint8_t **ret_raw,
                      size_t *ret_len)
{
	size_t n = (size_t)size + LSM_BLOCK_TRAILER;
	uint8_t *buf = lsm_block_buf_alloc(n);
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

/* ---- the decoded index ------------------------------------------------- */

static lsm_slice index_key(const lsm_sst *t, uint32_t i)
{
	return lsm_slice_make(t->keys + t->koff[i], t->koff[i + 1] - t->koff[i]);
}

/* 8 bytes of user key u from byte lcp on, zero-padded, as a big-endian
 * integer.  For keys that all begin with the same lcp bytes it never
 * decreases as the key grows, so comparing prefixes orders keys whenever the
 * prefixes differ. */
static inline uint64_t key_prefix(const uint8_t *u, size_t len, size_t lcp)
{
	uint8_t b[8] = { 0 };
	if (len > lcp)
		memcpy(b, u + lcp, len - lcp < 8 ? len - lcp : 8);
	return get_be64(b);
}

/* The first index entry whose separator is >= target, or n: the block that
 * holds the first key >= target, if any does.  The prefixes cover entries
 * [0, t->m); the last separator is usually a short successor of the table's
 * last key ("1" after "0999"), which shares nothing with the others, so it
 * stays out of the common prefix and is compared whole. */
static uint32_t index_search(const lsm_sst *t, lsm_slice target)
{
	uint32_t lo = 0, hi = t->m;
	if (target.len < 8) {
		/* Not an internal key: the comparator's bytewise order, plainly. */
		hi = t->n;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (lsm_block_ikey_cmp(index_key(t, mid), target) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}
	if (hi > 0) {
		lsm_slice u = lsm_ikey_user(target);
		size_t m = u.len < t->lcp ? u.len : t->lcp;
		int c = m ? memcmp(u.data, t->keys, m) : 0;   /* separator 0 starts with the shared bytes */
		if (c < 0 || (c == 0 && u.len < t->lcp))
			return 0;       /* below every prefixed separator */
		if (c > 0) {
			lo = hi;        /* above every one */
		} else {
			uint64_t p = key_prefix(u.data, u.len, t->lcp);
			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;
				uint64_t q = t->prefix[mid];
				if (q < p || (q == p && lsm_block_ikey_cmp(index_key(t, mid), target) < 0))
					lo = mid + 1;
				else
					hi = mid;
			}
		}
	}
	if (lo == t->m && lo < t->n && lsm_block_ikey_cmp(index_key(t, lo), target) < 0)
		lo++;           /* past the last separator too */
	return lo;
}

static int index_corrupt(const lsm_sst *t, const char *what)
{
	return lsm_errf(-EUCLEAN, "%s: index block at offset %llu: %s", t->path, (unsigned long long)t->index_off,
	                what);
}

/* Parses an index entry's value into a data block handle. */
static int decode_handle(const lsm_sst *t, lsm_slice v, struct handle *ret)
{
	const uint8_t *p = v.data, *end = v.data + v.len;
	uint64_t off, size;
	if (!(p = get_varint64(p, end, &off)) || !(p = get_varint64(p, end, &size)) || p != end ||
	    off > t->data_end || size > t->data_end - off || t->data_end - off - size < LSM_BLOCK_TRAILER)
		return index_corrupt(t, "bad block handle");
	ret->off = off;
	ret->size = size;
	return 0;
}

/* Fills the index arrays from the index block: one pass to size them, one
 * to fill and check them. */
static int decode_index(lsm_sst *t, const lsm_block *ib)
{
	lsm_iiter *it;
	size_t n = 0, bytes = 0;
	int r = lsm_block_iter_new(ib, lsm_block_ikey_cmp, &it);
	if (r < 0)
		return r;
	for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it)) {
		n++;
		bytes += iiter_key(it).len;
	}
	if ((r = iiter_status(it)) < 0) {
		r = lower_err(t, "index block", t->index_off, r);
		goto out;
	}
	if (n >= UINT32_MAX || bytes > UINT32_MAX) {
		r = index_corrupt(t, "too large");
		goto out;
	}
	size_t arrays = n * (sizeof(uint64_t) + sizeof(struct handle)) + (n + 1) * sizeof(uint32_t);
	uint8_t *mem = malloc(arrays + bytes);
	if (!mem) {
		r = -ENOMEM;
		goto out;
	}
	t->prefix = (uint64_t *)mem;
	t->handles = (struct handle *)(mem + n * sizeof(uint64_t));
	t->koff = (uint32_t *)(mem + n * (sizeof(uint64_t) + sizeof(struct handle)));
	t->keys = mem + arrays;
	t->n = (uint32_t)n;
	uint32_t i = 0, pos = 0;
	for (iiter_seek_to_first(it); iiter_valid(it) && i < n && r == 0; iiter_next(it), i++) {
		lsm_slice k = iiter_key(it);
		if (k.len < 8)
			r = index_corrupt(t, "key shorter than its trailer");
		else if (i > 0 && lsm_ikey_cmp(index_key(t, i - 1), k) >= 0)
			r = index_corrupt(t, "keys out of order");
		else if ((r = decode_handle(t, iiter_value(it), &t->handles[i])) == 0) {
			memcpy(t->keys + pos, k.data, k.len);
			t->koff[i] = pos;
			pos += (uint32_t)k.len;
			t->koff[i + 1] = pos;
		}
	}
	if (r < 0)
		goto out;
	if (n == 0)
		t->koff[0] = 0;
	/* Sorted keys all share what the first and the last share; the last
	 * separator is left out (see index_search). */
	t->m = t->n > 1 ? t->n - 1 : t->n;
	t->lcp = 0;
	if (t->m > 0) {
		lsm_slice a = lsm_ikey_user(index_key(t, 0)), b = lsm_ikey_user(index_key(t, t->m - 1));
		while (t->lcp < a.len && t->lcp < b.len && a.data[t->lcp] == b.data[t->lcp])
			t->lcp++;
	}
	for (i = 0; i < t->m; i++) {
		lsm_slice u = lsm_ikey_user(index_key(t, i));
		t->prefix[i] = key_prefix(u.data, u.len, t->lcp);
	}
out:
	iiter_destroy(it);
	return r;
}

/* ---- data blocks ------------------------------------------------------- */

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

static void cache_key(const lsm_sst *t, uint64_t off, uint8_t key[16])
{
	put_fixed64(key, t->cache_id);
	put_fixed64(key + 8, off);
}

/* The block from the cache, or NULL. */
static lsm_block *cache_find(const lsm_sst *t, uint64_t off, struct blockref *ret)
{
	uint8_t key[16];
	if (!t->cache)
		return NULL;
	cache_key(t, off, key);
	lsm_cache_handle *h = lsm_cache_lookup(t->cache, key, sizeof(key));
	if (!h)
		return NULL;
	ret->block = lsm_cache_value(h);
	ret->h = h;
	return ret->block;
}

/* Reads a block the cache does not have, caching it if fill_cache. */
static int read_data_block(const lsm_sst *t, const struct handle *hd, bool fill_cache, struct blockref *ret)
{
	lsm_block *blk;
	int r = load_block(t, "block", hd->off, hd->size, &blk);
	if (r < 0)
		return r;
	ret->block = blk;
	ret->h = NULL;
	if (t->cache && fill_cache) {
		uint8_t key[16];
		cache_key(t, hd->off, key);
		ret->h = lsm_cache_insert(t->cache, key, sizeof(key), blk, lsm_block_size(blk), cached_block_deleter);
		if (!ret->h) {
			ret->block = NULL;
			return -ENOMEM;     /* the deleter has freed blk */
		}
	}
	return 0;
}

static int get_block(const lsm_sst *t, const struct handle *hd, bool fill_cache, struct blockref *ret)
{
	if (cache_find(t, hd->off, ret))
		return 0;
	return read_data_block(t, hd, fill_cache, ret);
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
	lsm_block *index = NULL;
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
	if ((r = load_block(t, "index block", index_off, index_size, &index)) < 0 ||
	    (r = decode_index(t, index)) < 0)
		goto fail;
	lsm_block_free(index);
	index = NULL;
	if (filter_size &&
	    (r = read_block(t, "filter block", filter_off, filter_size, &t->filter, &t->filter_len)) < 0)
		goto fail;
	if (cache)
		t->cache_id = lsm_cache_new_id(cache);
	*ret_sst = t;
	return 0;

fail:
	lsm_block_free(index);
	lsm_sst_close(t);
	return r;
}

static void iter_free(struct sst_iter *it);

void lsm_sst_close(lsm_sst *t)
{
	if (!t)
		return;
	iter_free(atomic_load(&t->spare));
	if (t->map)
		env_munmap(t->env, t->map, t->map_size);
	env_close(t->env, t->file);
	free(t->prefix);
	free(t->filter);
	free(t->path);
	free(t);
}

uint64_t lsm_sst_entries(const lsm_sst *t)
{
	return t->entries;
}

/* ---- point lookup ------------------------------------------------------ */

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
	uint32_t i = index_search(t, lookup_ikey);
	if (i == t->n)
		return 0;
	const struct handle *hd = &t->handles[i];
	struct blockref br;
	int r = get_block(t, hd, fill_cache, &br);
	if (r < 0)
		return r;
	struct get_ctx g = { user, fn, arg, 0 };
	r = lsm_block_seek_get(br.block, lsm_block_ikey_cmp, lookup_ikey, on_data, &g);
	block_release(t, &br);
	if (r < 0)
		return block_err(t, hd->off, r);
	if (g.found < 0)
		return short_key_err(t, hd->off);
	return g.found;
}

/* ---- two-level iterator ------------------------------------------------ */

#define RA_FIRST (16u << 10)    /* the first read ahead */
#define RA_MAX   (256u << 10)   /* the largest */
#define RA_AFTER 2              /* sequential block loads before reading ahead */
#define TRAILER_TYPE_NONE 0     /* compress.c's type byte of an uncompressed block */

/* Blocks read ahead: buf holds the file's bytes [off, off + len). */
struct readahead {
	uint8_t *buf;
	size_t cap, len;
	uint64_t off;
	size_t window;          /* what the next read asks for */
	uint32_t next;          /* the block a forward scan loads next */
	int run;                /* blocks loaded in a row going forwards */
};

struct sst_iter {
	lsm_iiter base;
	lsm_sst *t;
	bool fill_cache;
	uint32_t idx;           /* the block under data, when blk.block is set */
	lsm_iiter *data;        /* over blk.block; allocated at the first block, then reset */
	struct blockref blk;    /* block NULL: not positioned */
	int status;             /* first error; sticky */
	struct readahead ra;
	lsm_cache *pin_cache;   /* pin (a handle in pin_cache) is released at destroy */
	lsm_cache_handle *pin;
};

static bool ra_holds(const struct readahead *ra, const struct handle *hd)
{
	return hd->off >= ra->off && hd->off - ra->off <= ra->len &&
	       hd->size + LSM_BLOCK_TRAILER <= ra->len - (hd->off - ra->off);
}

/* Reads ahead from block hd on.  A failed or short read only leaves the
 * buffer without the block: the plain read that follows reports it. */
static void ra_fill(struct sst_iter *it, const struct handle *hd)
{
	struct readahead *ra = &it->ra;
	size_t want = ra->window;
	if (want < hd->size + LSM_BLOCK_TRAILER)
		want = (size_t)hd->size + LSM_BLOCK_TRAILER;
	if (want > it->t->data_end - hd->off)
		want = (size_t)(it->t->data_end - hd->off);  /* not into the filter and index */
	ra->len = 0;
	if (want > ra->cap) {
		/* The largest window at once: the buffer is mapped lazily, and a
		 * recycled one (see lsm_block_buf_alloc) is already faulted in. */
		size_t cap = want > RA_MAX ? want : RA_MAX;
		uint8_t *p = lsm_block_buf_alloc(cap);
		if (!p)
			return;
		lsm_block_buf_free(ra->buf);
		ra->buf = p;
		ra->cap = cap;
	}
	ssize_t got = env_pread(it->t->env, it->t->file, ra->buf, want, hd->off);
	if (got < 0)
		return;
	ra->off = hd->off;
	ra->len = (size_t)got;
	if (ra->window < RA_MAX)
		ra->window *= 2;
}

/* Verifies and parses block hd from the read-ahead buffer, in place if it is
 * stored uncompressed. */
static int ra_block(struct sst_iter *it, const struct handle *hd, struct blockref *ret)
{
	const uint8_t *p = it->ra.buf + (hd->off - it->ra.off);
	size_t body = (size_t)hd->size, len;
	uint8_t *raw;
	bool owned = false;
	int r;
	if (p[body] == TRAILER_TYPE_NONE && get_fixed32(p + body + 1) == lsm_checksum(p, body + 1)) {
		raw = (uint8_t *)p;
		len = body;
	} else {
		/* Compressed or damaged: compress.c decodes or says what is wrong. */
		if ((r = lsm_block_decode(lsm_slice_make(p, body + LSM_BLOCK_TRAILER), &raw, &len)) < 0)
			return block_err(it->t, hd->off, r);
		owned = true;
	}
	if ((r = lsm_block_new(raw, len, owned, &ret->block)) < 0) {
		if (owned)
			free(raw);
		return block_err(it->t, hd->off, r);
	}
	ret->h = NULL;
	return 0;
}

/* Pins block idx: from the cache, the read-ahead buffer, or a plain read. */
static int iter_block(struct sst_iter *it, uint32_t idx, struct blockref *ret)
{
	const lsm_sst *t = it->t;
	const struct handle *hd = &t->handles[idx];
	struct readahead *ra = &it->ra;

	if (idx == ra->next) {
		if (ra->run < RA_AFTER)
			ra->run++;
	} else {
		ra->run = 0;
		ra->window = RA_FIRST;
	}
	ra->next = idx + 1;
	if (cache_find(t, hd->off, ret))
		return 0;
	if (!t->map && ra->run >= RA_AFTER) {
		if (!ra_holds(ra, hd))
			ra_fill(it, hd);
		if (ra_holds(ra, hd))
			return ra_block(it, hd, ret);
	}
	return read_data_block(t, hd, it->fill_cache, ret);
}

static void drop_data(struct sst_iter *it)
{
	if (it->blk.block)
		block_release(it->t, &it->blk);
}

/* Points data at block idx (keeping it if it already is). */
static void load_data(struct sst_iter *it, uint32_t idx)
{
	int r;
	if (it->blk.block && it->idx == idx)
		return;
	drop_data(it);
	if ((r = iter_block(it, idx, &it->blk)) < 0) {
		it->status = r;
		return;
	}
	if (!it->data) {
		if ((r = lsm_block_iter_new(it->blk.block, lsm_block_ikey_cmp, &it->data)) < 0) {
			block_release(it->t, &it->blk);
			it->status = r;
			return;
		}
	} else {
		lsm_block_iter_reset(it->data, it->blk.block);
	}
	it->idx = idx;
}

/* After a move of data: stops at an error, or moves on to the next (or
 * previous) block while data is exhausted; then checks the key it landed on. */
static void settle(struct sst_iter *it, bool forward)
{
	while (!it->status && it->blk.block && !iiter_valid(it->data)) {
		int r = iiter_status(it->data);
		if (r < 0) {
			it->status = block_err(it->t, it->t->handles[it->idx].off, r);
			break;
		}
		if (forward ? it->idx + 1 >= it->t->n : it->idx == 0) {
			drop_data(it);
			break;
		}
		load_data(it, forward ? it->idx + 1 : it->idx - 1);
		if (it->blk.block) {
			if (forward)
				iiter_seek_to_first(it->data);
			else
				iiter_seek_to_last(it->data);
		}
	}
	if (!it->status && it->blk.block && iiter_key(it->data).len < 8)
		it->status = short_key_err(it->t, it->t->handles[it->idx].off);
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
	return it->blk.block && iiter_valid(it->data);
}

static void si_seek(lsm_iiter *base, lsm_slice target)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	uint32_t i = index_search(it->t, target);
	if (i == it->t->n) {
		drop_data(it);
		return;
	}
	/* A target in the block already loaded costs no lookup at all, and the
	 * block iterator starts its search from where it stands. */
	load_data(it, i);
	if (it->blk.block)
		iiter_seek(it->data, target);
	settle(it, true);
}

static void si_seek_to_first(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	if (it->t->n == 0) {
		drop_data(it);
		return;
	}
	load_data(it, 0);
	if (it->blk.block)
		iiter_seek_to_first(it->data);
	settle(it, true);
}

static void si_seek_to_last(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	if (it->status)
		return;
	if (it->t->n == 0) {
		drop_data(it);
		return;
	}
	load_data(it, it->t->n - 1);
	if (it->blk.block)
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

static void iter_free(struct sst_iter *it)
{
	if (!it)
		return;
	iiter_destroy(it->data);
	lsm_block_buf_free(it->ra.buf);
	free(it);
}

static void si_destroy(lsm_iiter *base)
{
	struct sst_iter *it = SI(base);
	lsm_sst *t = it->t;
	lsm_cache *pin_cache = it->pin_cache;
	lsm_cache_handle *pin = it->pin;
	struct sst_iter *none = NULL;
	drop_data(it);
	/* A level iterator makes a new table iterator every time a seek lands
	 * in another file: the table keeps one, block iterator and all. */
	lsm_block_buf_free(it->ra.buf);
	it->ra.buf = NULL;
	it->ra.cap = 0;
	if (!atomic_compare_exchange_strong(&t->spare, &none, it))
		iter_free(it);
	if (pin)
		lsm_cache_release(pin_cache, pin);   /* last: it may close the table */
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

int lsm_sst_iter_new_pinned(lsm_sst *t, bool fill_cache, lsm_cache *pin_cache, lsm_cache_handle *pin,
                            lsm_iiter **ret_iter)
{
	struct sst_iter *it = atomic_exchange(&t->spare, NULL);
	lsm_iiter *data = NULL;
	if (it) {
		data = it->data;        /* reset when it gets a block */
	} else if (!(it = malloc(sizeof(*it)))) {
		if (pin)
			lsm_cache_release(pin_cache, pin);
		return -ENOMEM;
	}
	memset(it, 0, sizeof(*it));
	it->base.ops = &sst_iter_ops;
	it->t = t;
	it->fill_cache = fill_cache;
	it->data = data;
	it->ra.next = UINT32_MAX;
	it->ra.window = RA_FIRST;
	it->pin_cache = pin_cache;
	it->pin = pin;
	*ret_iter = &it->base;
	return 0;
}

int lsm_sst_iter_new(lsm_sst *t, bool fill_cache, lsm_iiter **ret_iter)
{
	return lsm_sst_iter_new_pinned(t, fill_cache, NULL, NULL, ret_iter);
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

/* Checks data block i (read from disk, bypassing the cache): keys well
 * formed and strictly increasing from *prev, above the previous block's index
 * key, at most this block's, and present in the filter. */
static int verify_block(lsm_sst *t, uint32_t i, struct keycopy *prev, uint64_t *count)
{
	const struct handle *hd = &t->handles[i];
	lsm_slice sep = index_key(t, i);
	lsm_block *blk;
	lsm_iiter *it;
	int r = load_block(t, "block", hd->off, hd->size, &blk);
	if (r < 0)
		return r;
	if ((r = lsm_block_verify_restarts(blk)) < 0) {
		lsm_block_free(blk);
		return block_err(t, hd->off, r);
	}
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
		else if (i > 0 && lsm_ikey_cmp(index_key(t, i - 1), k) >= 0)
			bad = "key not above the previous block's index key";
		else if (lsm_ikey_cmp(k, sep) > 0)
			bad = "key beyond the block's index key";
		else if (t->filter && !lsm_bloom_may_contain(t->filter, t->filter_len, lsm_ikey_user(k)))
			bad = "filter does not contain a key of the block";
		else if ((r = keycopy_set(prev, k)) == 0)
			(*count)++;
	}
	if (bad)
		r = lsm_errf(-EUCLEAN, "%s: block at offset %llu: %s", t->path, (unsigned long long)hd->off, bad);
	else if (r == 0 && (r = iiter_status(it)) < 0)
		r = block_err(t, hd->off, r);
	iiter_destroy(it);
	lsm_block_free(blk);
	return r;
}

int lsm_sst_verify(lsm_sst *t)
{
	struct keycopy prev = { NULL, 0, 0, false };
	uint64_t count = 0, expect = 0;
	int r = 0;
	/* Open checked the index keys' order and the handles' bounds; here the
	 * blocks must also follow one another exactly. */
	for (uint32_t i = 0; i < t->n && r == 0; i++) {
		const struct handle *hd = &t->handles[i];
		if (hd->off != expect) {
			r = lsm_errf(-EUCLEAN, "%s: block at offset %llu: expected the next block at offset %llu",
			             t->path, (unsigned long long)hd->off, (unsigned long long)expect);
			break;
		}
		r = verify_block(t, i, &prev, &count);
		expect = hd->off + hd->size + LSM_BLOCK_TRAILER;
	}
	if (r == 0 && (expect != t->data_end || t->n != t->nblocks || count != t->entries))
		r = lsm_errf(-EUCLEAN, "%s: index covers %u blocks, %llu entries and %llu bytes; footer says "
		             "%u, %llu and %llu", t->path, t->n, (unsigned long long)count,
		             (unsigned long long)expect, t->nblocks, (unsigned long long)t->entries,
		             (unsigned long long)t->data_end);
	free(prev.buf);
	return r;
}
