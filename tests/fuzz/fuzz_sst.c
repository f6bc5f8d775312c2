/*
 * fuzz_sst.c - libFuzzer target for the SSTable reader (sst_read.c, and
 * block.c, bloom.c, compress.c and cache.c under it): open, verify, scan
 * both ways, seek and point lookups over one table file.
 *
 * Input: the bytes of one SSTable (format at the top of sst_build.c).  The
 * custom mutator knows the layout: it mostly takes one block (data, filter
 * or index) apart, decompressing it if need be, mutates its raw contents and
 * writes the table back with every handle, trailer and the footer right; or
 * it mutates the raw file and repairs the checksums it can find.
 *
 * Beyond "no crash, no leak, no sanitizer report, only damaged-file
 * errnos", a table that lsm_sst_verify accepts must also read consistently:
 * a forward scan yields the footer's entry count in strictly increasing key
 * order without error, a backward scan the same entries in reverse, and
 * seeking to or looking up any of its keys finds exactly that entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "fuzz_common.h"
#include "lsm_int.h"

#define SST_NAME "000009.sst"
#define SST_PATH FUZZ_DIR "/" SST_NAME
#define MAX_PROBES 48           /* keys sought and looked up per input */

/* ---- the checks --------------------------------------------------------- */

static bool restarts_consistent(const uint8_t *data, size_t size);

struct entry {
	uint8_t *key;
	size_t klen;
	uint64_t vhash;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static void entries_add(struct entries *e, lsm_slice key, lsm_slice value)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 64;
		struct entry *v = realloc(e->v, cap * sizeof(*v));
		if (!v)
			fuzz_fail("harness: out of memory");
		e->v = v;
		e->cap = cap;
	}
	struct entry *x = &e->v[e->n++];
	x->key = malloc(key.len ? key.len : 1);
	if (!x->key)
		fuzz_fail("harness: out of memory");
	memcpy(x->key, key.data, key.len);
	x->klen = key.len;
	x->vhash = lsm_hash64(value.data, value.len);
}

static void entries_done(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].key);
	free(e->v);
}

static lsm_slice entry_key(const struct entry *x)
{
	return lsm_slice_make(x->key, x->klen);
}

/* Scans the table forwards (or backwards) into *out; returns the status. */
static int scan(lsm_sst *t, bool forward, bool fill_cache, struct entries *out)
{
	lsm_iiter *it;
	int r = lsm_sst_iter_new(t, fill_cache, &it);

	if (r < 0)
		return fuzz_expect(r, "lsm_sst_iter_new");
	lsm_clear_error();
	if (forward)
		iiter_seek_to_first(it);
	else
		iiter_seek_to_last(it);
	while (iiter_valid(it)) {
		entries_add(out, iiter_key(it), iiter_value(it));
		lsm_clear_error();
		if (forward)
			iiter_next(it);
		else
			iiter_prev(it);
	}
	r = fuzz_expect(iiter_status(it), forward ? "sst forward scan" : "sst backward scan");
	iiter_destroy(it);
	return r;
}

struct found {
	lsm_slice want;
	uint64_t vhash;
	int calls;
	bool same;
};

static void on_found(void *arg, lsm_slice ikey, lsm_slice value)
{
	struct found *f = arg;

	f->calls++;
	f->same = lsm_slice_eq(ikey, f->want);
	f->vhash = lsm_hash64(value.data, value.len);
}

/* Seeks to and looks up key (an entry of the table when `present`). */
static void probe(lsm_sst *t, lsm_iiter *it, lsm_slice key, uint64_t vhash, bool present)
{
	struct found f = { .want = key };
	int r, before = iiter_status(it);

	/* An iterator's error is sticky: its message came with the move that
	 * met it. */
	lsm_clear_error();
	iiter_seek(it, key);
	r = before < 0 ? fuzz_expect_bare(iiter_status(it), "sst seek") : fuzz_expect(iiter_status(it), "sst seek");
	if (present) {
		FUZZ_ASSERT(r == 0 && iiter_valid(it), "seek to a key of a verified table found nothing (%d)", r);
		FUZZ_ASSERT(lsm_slice_eq(iiter_key(it), key), "seek to a key of a verified table landed elsewhere");
		lsm_slice v = iiter_value(it);
		FUZZ_ASSERT(lsm_hash64(v.data, v.len) == vhash, "seek found another value");
	}
	if (key.len < 8)
		return;         /* lsm_sst_get takes internal keys only (-EINVAL) */
	for (int pass = 0; pass < 2; pass++) {  /* the second one may hit the cache */
		lsm_clear_error();
		f.calls = 0;
		r = fuzz_expect(lsm_sst_get(t, key, true, on_found, &f), "lsm_sst_get");
		FUZZ_ASSERT(r < 0 || f.calls == r, "lsm_sst_get returned %d after %d calls", r, f.calls);
		if (present)
			FUZZ_ASSERT(r == 1 && f.same && f.vhash == vhash,
			            "lookup of a key of a verified table: %d, same key %d", r, f.same);
	}
}

static void check_table(lsm_sst *t, bool verified)
{
	struct entries fwd = { 0 }, bwd = { 0 };
	char why[512] = "";
	int rf = scan(t, true, false, &fwd);
	if (rf < 0)
		snprintf(why, sizeof(why), "%s", lsm_last_error());
	int rb = scan(t, false, false, &bwd);
	if (rb < 0 && rf == 0)
		snprintf(why, sizeof(why), "%s", lsm_last_error());

	if (verified) {
		FUZZ_ASSERT(rf == 0 && rb == 0, "scans of a verified table failed: %d %d: %s", rf, rb, why);
		FUZZ_ASSERT(fwd.n == lsm_sst_entries(t), "forward scan found %zu entries, the footer says %llu",
		            fwd.n, (unsigned long long)lsm_sst_entries(t));
		FUZZ_ASSERT(bwd.n == fwd.n, "backward scan found %zu entries, forward %zu", bwd.n, fwd.n);
		for (size_t i = 0; i < fwd.n; i++) {
			const struct entry *a = &fwd.v[i], *b = &bwd.v[fwd.n - 1 - i];
			FUZZ_ASSERT(a->klen >= 8, "entry %zu: short key surfaced", i);
			FUZZ_ASSERT(i == 0 || lsm_ikey_cmp(entry_key(&fwd.v[i - 1]), entry_key(a)) < 0,
			            "entry %zu out of order", i);
			FUZZ_ASSERT(lsm_slice_eq(entry_key(a), entry_key(b)) && a->vhash == b->vhash,
			            "entry %zu differs between the scans", i);
		}
	}

	lsm_iiter *it;
	if (fuzz_expect(lsm_sst_iter_new(t, true, &it), "lsm_sst_iter_new") == 0) {
		size_t step = fwd.n / MAX_PROBES + 1;
		for (size_t i = 0; i < fwd.n; i += step) {
			const struct entry *x = &fwd.v[i];
			probe(t, it, entry_key(x), x->vhash, verified);
			/* Nearby keys that are not in the table: a shorter one (the
			 * index's bytewise path below 8 bytes, or another user key),
			 * and the same user key with another type in its trailer. */
			probe(t, it, lsm_slice_make(x->key, x->klen / 2), 0, false);
			if (x->klen >= 8) {
				uint8_t k[72];
				size_t n = x->klen < sizeof(k) ? x->klen : sizeof(k);
				memcpy(k, x->key + x->klen - n, n);
				k[n - 8] ^= 1;
				probe(t, it, lsm_slice_make(k, n), 0, false);
			}
		}
		/* Walk both ways from the end: prev and next interleaved (on a
		 * fresh iterator, so that an error is this walk's own). */
		iiter_destroy(it);
		if (fuzz_expect(lsm_sst_iter_new(t, true, &it), "lsm_sst_iter_new") < 0)
			goto out;
		lsm_clear_error();
		iiter_seek_to_last(it);
		for (int i = 0; i < 8 && iiter_valid(it); i++) {
			iiter_prev(it);
			if (iiter_valid(it) && (i & 1)) {
				iiter_next(it);
				if (iiter_valid(it))
					iiter_prev(it);
			}
		}
		fuzz_expect(iiter_status(it), "sst mixed walk");
		iiter_destroy(it);
	}
out:
	entries_done(&fwd);
	entries_done(&bwd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lsm_env *env = fuzz_env_new(SST_NAME, data, size);
	lsm_cache *cache = NULL;
	lsm_sst *t;
	int r;

	/* Half the inputs read through a block cache (a small one, so that
	 * blocks get evicted too), half without. */
	if ((size & 1) && lsm_cache_new(16 << 10, &cache) < 0)
		fuzz_fail("harness: lsm_cache_new");
	lsm_clear_error();
	r = fuzz_expect(lsm_sst_open(env, SST_PATH, 0, cache, &t), "lsm_sst_open");
	if (r == 0) {
		lsm_clear_error();
		bool verified = fuzz_expect(lsm_sst_verify(t), "lsm_sst_verify") == 0;
		check_table(t, verified && restarts_consistent(data, size));
		lsm_sst_close(t);
	}
	lsm_cache_free(cache);
	fuzz_env_free(env);
	return 0;
}

/* ---- the mutator --------------------------------------------------------- */

#define TRAILER LSM_BLOCK_TRAILER
#define FOOTER LSM_SST_FOOTER
#define MAX_BLOCKS 4096

/* The table taken apart: data blocks as stored (or, for the one being
 * mutated, as raw bytes), the filter, and the index's keys. */
struct table {
	size_t nblocks;
	size_t boff[MAX_BLOCKS], bsize[MAX_BLOCKS];     /* stored body, no trailer */
	size_t koff[MAX_BLOCKS], klen[MAX_BLOCKS];      /* separators, in keys */
	uint8_t *keys;
	size_t filter_off, filter_size;                 /* size 0: none */
	size_t index_off, index_size;
	uint8_t *index_raw;                             /* decoded index block */
	size_t index_len;
	uint8_t footer[FOOTER];
};

static void fix_trailer(uint8_t *body, size_t n)
{
	put_fixed32(body + n + 1, lsm_checksum(body, n + 1));
}

static void fix_footer(uint8_t *f)
{
	put_fixed32(f + 28, lsm_checksum2(f, 28, f + 32, 16));
}

/* The raw bytes of the stored block [off, off + n) + trailer, malloc'd. */
static uint8_t *block_raw(const uint8_t *data, size_t off, size_t n, size_t *ret_len)
{
	uint8_t *raw;

	if (data[off + n] == 1) {
		uint32_t len;
		const uint8_t *p = get_varint32(data + off, data + off + n, &len);
		if (!p || len > (1u << 22) || n - (size_t)(p - (data + off)) > INT32_MAX)
			return NULL;
		raw = malloc(len ? len : 1);
		if (raw && LZ4_decompress_safe((const char *)p, (char *)raw, (int)(n - (size_t)(p - (data + off))),
		                               (int)len) != (int)len) {
			free(raw);
			return NULL;
		}
		*ret_len = len;
		return raw;
	}
	raw = malloc(n ? n : 1);
	if (raw && n)
		memcpy(raw, data + off, n);
	*ret_len = n;
	return raw;
}

/* Takes data apart.  Returns false if it is not laid out as a table. */
static bool table_parse(const uint8_t *data, size_t size, struct table *t)
{
	const uint8_t *f;

	memset(t, 0, sizeof(*t));
	if (size < FOOTER)
		return false;
	f = data + size - FOOTER;
	memcpy(t->footer, f, FOOTER);
	uint64_t filter_off = get_fixed64(f), filter_size = get_fixed32(f + 8);
	uint64_t index_size = get_fixed32(f + 12), index_off = get_fixed64(f + 16);
	uint64_t meta_end = size - FOOTER;
	if (index_off > meta_end || meta_end - index_off != index_size + TRAILER)
		return false;
	if (filter_size && (filter_off > index_off || index_off - filter_off != filter_size + TRAILER))
		return false;
	t->filter_off = filter_size ? (size_t)filter_off : 0;
	t->filter_size = (size_t)filter_size;
	t->index_off = (size_t)index_off;
	t->index_size = (size_t)index_size;
	size_t data_end = filter_size ? (size_t)filter_off : (size_t)index_off;

	t->index_raw = block_raw(data, t->index_off, t->index_size, &t->index_len);
	if (!t->index_raw || t->index_len < 4)
		return false;
	const uint8_t *b = t->index_raw;
	uint32_t nr = get_fixed32(b + t->index_len - 4);
	if (nr > (t->index_len - 4) / 4)
		return false;
	const uint8_t *p = b, *end = b + t->index_len - 4 - 4 * (size_t)nr;
	t->keys = malloc(t->index_len + 1);
	if (!t->keys)
		return false;
	size_t kpos = 0, prev = 0, prev_len = 0;
	while (p < end) {
		uint32_t shared, unshared, vlen;
		uint64_t off, bs;
		if (t->nblocks == MAX_BLOCKS || !(p = get_varint32(p, end, &shared)) ||
		    !(p = get_varint32(p, end, &unshared)) || !(p = get_varint32(p, end, &vlen)) ||
		    (size_t)(end - p) < (size_t)unshared + vlen || shared > prev_len)
			return false;
		/* Keys are rebuilt whole; they never take more room than the
		 * block itself unless they share, which the writer's index does
		 * not (restart interval 1). */
		if (kpos + shared + unshared > t->index_len)
			return false;
		memmove(t->keys + kpos, t->keys + prev, shared);
		memcpy(t->keys + kpos + shared, p, unshared);
		p += unshared;
		const uint8_t *v = p, *vend = p + vlen;
		p = vend;
		if (!(v = get_varint64(v, vend, &off)) || !(v = get_varint64(v, vend, &bs)) || v != vend ||
		    off > data_end || bs > data_end - off || data_end - off - bs < TRAILER)
			return false;
		t->koff[t->nblocks] = kpos;
		t->klen[t->nblocks] = shared + unshared;
		t->boff[t->nblocks] = (size_t)off;
		t->bsize[t->nblocks] = (size_t)bs;
		t->nblocks++;
		prev = kpos;
		prev_len = shared + unshared;
		kpos += prev_len;
	}
	return true;
}

static void table_done(struct table *t)
{
	free(t->index_raw);
	free(t->keys);
}

/* True if every restart point of block b is the start of one of its
 * entries, and of one that shares nothing with its predecessor. */
static bool block_restarts_ok(const uint8_t *b, size_t len)
{
	if (len < 4)
		return false;
	uint32_t n = get_fixed32(b + len - 4), i = 0;
	if (n > (len - 4) / 4)
		return false;
	const uint8_t *p = b, *end = b + len - 4 - 4 * (size_t)n, *restarts = end;
	while (p < end) {
		size_t off = (size_t)(p - b);
		uint32_t shared, unshared, vlen;
		if (!(p = get_varint32(p, end, &shared)) || !(p = get_varint32(p, end, &unshared)) ||
		    !(p = get_varint32(p, end, &vlen)) || (size_t)(end - p) < (size_t)unshared + vlen)
			return false;
		p += (size_t)unshared + vlen;
		if (i < n && get_fixed32(restarts + 4 * (size_t)i) < off)
			return false;   /* points into the previous entry */
		if (i < n && get_fixed32(restarts + 4 * (size_t)i) == off) {
			if (shared)
				return false;
			i++;
		}
	}
	return i == n;
}

/* True if every data block's restart points fall on entries that share
 * nothing with their predecessor.  lsm_sst_verify walks blocks forwards
 * only, from their first entry, and never looks at the restart points: a
 * block whose restart array points into the middle of an entry verifies,
 * and then backward scans and seeks in it fail with -EUCLEAN.  (That is a
 * gap in what fsck -f can see, reported separately; reads still fail
 * cleanly.)  The strict checks need both. */
static bool restarts_consistent(const uint8_t *data, size_t size)
{
	struct table *t = malloc(sizeof(*t));
	bool ok = t && table_parse(data, size, t);

	for (size_t i = 0; ok && i < t->nblocks; i++) {
		size_t len = 0;
		uint8_t *raw = block_raw(data, t->boff[i], t->bsize[i], &len);
		ok = raw && block_restarts_ok(raw, len);
		free(raw);
	}
	if (t)
		table_done(t);
	free(t);
	return ok;
}

/* Repairs, in place, the checksums of the footer, the filter, the index and
 * every data block the index names. */
static void fix_checksums(uint8_t *data, size_t size)
{
	struct table *t;

	if (size < FOOTER || !(t = malloc(sizeof(*t))))
		return;
	fix_footer(data + size - FOOTER);
	if (table_parse(data, size, t)) {
		fix_trailer(data + t->index_off, t->index_size);
		if (t->filter_size)
			fix_trailer(data + t->filter_off, t->filter_size);
		for (size_t i = 0; i < t->nblocks; i++)
			fix_trailer(data + t->boff[i], t->bsize[i]);
	}
	table_done(t);
	free(t);
}

/* Appends body (stored uncompressed) and its trailer at out + *pos, if it
 * fits in cap. */
static bool emit_block(uint8_t *out, size_t *pos, size_t cap, const uint8_t *body, size_t n, int type)
{
	if (n + TRAILER > cap - *pos)
		return false;
	memcpy(out + *pos, body, n);
	out[*pos + n] = (uint8_t)type;
	fix_trailer(out + *pos, n);
	*pos += n + TRAILER;
	return true;
}

/* Writes t back to out with block `which` (a data block index, or
 * MAX_BLOCKS for the filter) replaced by raw (stored uncompressed): new
 * handles, a new index, a right footer.  Returns the size or 0. */
static size_t table_write(const uint8_t *data, const struct table *t, size_t which, const uint8_t *raw,
                          size_t raw_len, uint8_t *out, size_t cap)
{
	size_t pos = 0, hoff[MAX_BLOCKS], hsize[MAX_BLOCKS];

	for (size_t i = 0; i < t->nblocks; i++) {
		hoff[i] = pos;
		if (i == which) {
			hsize[i] = raw_len;
			if (!emit_block(out, &pos, cap, raw, raw_len, 0))
				return 0;
		} else {
			/* Unchanged blocks keep their stored form (compressed or not). */
			hsize[i] = t->bsize[i];
			if (t->bsize[i] + TRAILER > cap - pos)
				return 0;
			memcpy(out + pos, data + t->boff[i], t->bsize[i] + TRAILER);
			pos += t->bsize[i] + TRAILER;
		}
	}
	size_t filter_off = 0, filter_size = 0;
	if (t->filter_size || which == MAX_BLOCKS) {
		filter_off = pos;
		filter_size = which == MAX_BLOCKS ? raw_len : t->filter_size;
		if (!emit_block(out, &pos, cap, which == MAX_BLOCKS ? raw : data + t->filter_off, filter_size, 0))
			return 0;
	}
	/* The index: restart interval 1, as the writer makes it. */
	size_t index_off = pos, need = 8;
	for (size_t i = 0; i < t->nblocks; i++)
		need += 3 * VARINT32_MAX + t->klen[i] + 2 * VARINT64_MAX + 4;
	if (need + TRAILER + FOOTER > cap - pos)
		return 0;
	uint8_t *p = out + pos, *restarts = malloc(4 * t->nblocks + 1);
	if (!restarts)
		return 0;
	for (size_t i = 0; i < t->nblocks; i++) {
		uint8_t h[2 * VARINT64_MAX];
		uint8_t *q = put_varint64(put_varint64(h, hoff[i]), hsize[i]);
		put_fixed32(restarts + 4 * i, (uint32_t)(p - (out + pos)));
		p = put_varint32(p, 0);
		p = put_varint32(p, (uint32_t)t->klen[i]);
		p = put_varint32(p, (uint32_t)(q - h));
		memcpy(p, t->keys + t->koff[i], t->klen[i]);
		p += t->klen[i];
		memcpy(p, h, (size_t)(q - h));
		p += q - h;
	}
	if (t->nblocks)
		memcpy(p, restarts, 4 * t->nblocks);
	p += 4 * t->nblocks;
	p = put_fixed32(p, (uint32_t)t->nblocks);
	free(restarts);
	size_t index_size = (size_t)(p - (out + pos));
	p[0] = 0;
	fix_trailer(out + pos, index_size);
	pos += index_size + TRAILER;

	uint8_t *f = out + pos;
	memcpy(f, t->footer, FOOTER);
	put_fixed64(f, filter_off);
	put_fixed32(f + 8, (uint32_t)filter_size);
	put_fixed32(f + 12, (uint32_t)index_size);
	put_fixed64(f + 16, index_off);
	fix_footer(f);
	return pos + FOOTER;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	fuzz_rng g;
	struct table *t;
	unsigned mode;

	fuzz_rng_init(&g, seed);
	mode = (unsigned)fuzz_rng_below(&g, 16);
	t = malloc(sizeof(*t));
	if (mode < 4 || !t || !table_parse(data, size, t) || (t->nblocks == 0 && !t->filter_size && mode < 12)) {
		if (t)
			table_done(t);
		free(t);
		size = LLVMFuzzerMutate(data, size, max_size);
		if (mode >= 2)
			fix_checksums(data, size);
		return size;
	}
	if (mode >= 14) {
		/* The footer's counts and fields, checksum repaired. */
		uint8_t f[FOOTER];
		memcpy(f, data + size - FOOTER, FOOTER);
		/* (A shrunk result leaves the rest of the footer as it was.) */
		memcpy(data + size - FOOTER, f, LLVMFuzzerMutate(f, FOOTER, FOOTER));
		fix_footer(data + size - FOOTER);
		table_done(t);
		free(t);
		return size;
	}
	/* One block's raw contents: a data block, or the filter. */
	size_t which = t->nblocks && (mode < 12 || !t->filter_size) ? (size_t)fuzz_rng_below(&g, t->nblocks)
	                                                            : MAX_BLOCKS;
	size_t raw_len = 0;
	uint8_t *raw = which == MAX_BLOCKS ? block_raw(data, t->filter_off, t->filter_size, &raw_len)
	                                   : block_raw(data, t->boff[which], t->bsize[which], &raw_len);
	uint8_t *out = malloc(max_size);
	size_t cap = max_size / 2, n = 0;
	if (raw && out) {
		uint8_t *grown = realloc(raw, cap > raw_len ? cap : raw_len + 1);
		if (grown) {
			raw = grown;
			if (raw_len > cap)
				raw_len = cap;
			raw_len = LLVMFuzzerMutate(raw, raw_len, cap);
			n = table_write(data, t, which, raw, raw_len, out, max_size);
		}
	}
	if (n) {
		memcpy(data, out, n);
		size = n;
	} else {
		size = LLVMFuzzerMutate(data, size, max_size);
		fix_checksums(data, size);
	}
	free(raw);
	free(out);
	table_done(t);
	free(t);
	return size;
}
