/*
 * block.c - the block format shared by SSTable data and index blocks: a run
 * of prefix-compressed entries followed by an array of restart points.
 *
 *     entry   := varint32 shared | varint32 unshared | varint32 vlen |
 *                key_delta[unshared] | value[vlen]
 *     block   := entry* | fixed32 restart[n] | fixed32 n
 *
 * An entry's key is the first `shared` bytes of the previous key followed by
 * key_delta.  Every restart_interval entries the builder starts a restart
 * point: an entry with shared == 0 whose offset goes into the restart array,
 * so a reader can binary-search the restart keys and then scan at most one
 * interval.  restart[0] is always 0 and the array is strictly increasing; an
 * empty block is just one restart (0) and the count.
 *
 * The reader trusts nothing: lsm_block_new checks the restart array once, and
 * the iterator checks every varint and length against the end of the entry
 * area, so a damaged block yields -EUCLEAN from status() instead of a read
 * out of bounds.  Keys are rebuilt into one buffer per iterator (an inline
 * one first, so short keys cost no allocation at all); an entry that shares
 * nothing with its predecessor is returned straight from the block.  Values
 * are always slices of the block.
 *
 * Block buffers are recycled.  A point read that misses the block cache
 * allocates a buffer and, as the cache makes room for it, frees another of
 * the same size; at 4 KiB that size is too big for the allocator's
 * per-thread caches, so each such pair costs a trip through its bins and
 * neighbouring chunks.  Instead the last few buffers freed wait in a handful
 * of slots for the next allocation of about their size (table iterators take
 * their read-ahead buffers from there too, so a scan moving from table to
 * table does not map and fault in a fresh one each time).
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

/* ---- builder ----------------------------------------------------------- */

struct lsm_block_builder {
	uint8_t *buf;           /* entries, then (after finish) the restart array */
	size_t len, cap;
	uint32_t *restarts;     /* offsets of restart entries; restarts[0] == 0 */
	size_t nrestarts, rcap;
	int interval;           /* entries per restart point */
	int counter;            /* entries since the last restart point */
	uint8_t *last;          /* the last key added, for prefix sharing */
	size_t last_len, last_cap;
	bool finished;
};

/* Grows *p (of *cap bytes) to hold at least need bytes, keeping contents. */
static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 256;
	while (n < need)
		n *= 2;
	uint8_t *q = realloc(*p, n);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int lsm_block_builder_new(int restart_interval, lsm_block_builder **ret_b)
{
	if (restart_interval < 1)
		return -EINVAL;
	lsm_block_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->interval = restart_interval;
	b->rcap = 16;
	b->restarts = malloc(b->rcap * sizeof(*b->restarts));
	if (!b->restarts) {
		free(b);
		return -ENOMEM;
	}
	lsm_block_builder_reset(b);
	*ret_b = b;
	return 0;
}

void lsm_block_builder_free(lsm_block_builder *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->restarts);
	free(b->last);
	free(b);
}

void lsm_block_builder_reset(lsm_block_builder *b)
{
	b->len = 0;
	b->restarts[0] = 0;
	b->nrestarts = 1;
	b->counter = 0;
	b->last_len = 0;
	b->finished = false;
}

bool lsm_block_builder_empty(const lsm_block_builder *b)
{
	return b->len == 0;
}

size_t lsm_block_builder_estimate(const lsm_block_builder *b)
{
	return b->len + b->nrestarts * 4 + 4;
}

int lsm_block_builder_add(lsm_block_builder *b, lsm_slice key, lsm_slice value)
{
	size_t shared = 0;

	if (b->finished)
		return -EINVAL;
	if (b->counter < b->interval) {
		size_t n = key.len < b->last_len ? key.len : b->last_len;
		while (shared < n && key.data[shared] == b->last[shared])
			shared++;
	} else {
		if (b->nrestarts == b->rcap) {
			uint32_t *r = realloc(b->restarts, 2 * b->rcap * sizeof(*r));
			if (!r)
				return -ENOMEM;
			b->restarts = r;
			b->rcap *= 2;
		}
		b->restarts[b->nrestarts++] = (uint32_t)b->len;
		b->counter = 0;
	}

	size_t unshared = key.len - shared;
	/* Offsets are fixed32 on disk: refuse to grow a block past 4 GiB. */
	if (unshared > UINT32_MAX || value.len > UINT32_MAX ||
	    b->len + 3 * VARINT32_MAX + unshared + value.len + 4 * (b->nrestarts + 1) > UINT32_MAX)
		return -EFBIG;
	if (grow(&b->buf, &b->cap, b->len + 3 * VARINT32_MAX + unshared + value.len) < 0 ||
	    grow(&b->last, &b->last_cap, key.len) < 0)
		return -ENOMEM;

	uint8_t *p = b->buf + b->len;
	p = put_varint32(p, (uint32_t)shared);
	p = put_varint32(p, (uint32_t)unshared);
	p = put_varint32(p, (uint32_t)value.len);
	if (unshared)
		memcpy(p, key.data + shared, unshared);
	p += unshared;
	if (value.len)
		memcpy(p, value.data, value.len);
	p += value.len;
	b->len = (size_t)(p - b->buf);

	if (unshared)
		memcpy(b->last + shared, key.data + shared, unshared);
	b->last_len = key.len;
	b->counter++;
	return 0;
}

lsm_slice lsm_block_builder_finish(lsm_block_builder *b)
{
	if (!b->finished) {
		/* The restart array was accounted for in add's size check, but the
		 * buffer may still need to grow: on ENOMEM return an empty slice,
		 * which no caller can mistake for a block (a block is >= 8 bytes). */
		if (grow(&b->buf, &b->cap, b->len + 4 * b->nrestarts + 4) < 0)
			return lsm_slice_make(NULL, 0);
		uint8_t *p = b->buf + b->len;
		for (size_t i = 0; i < b->nrestarts; i++)
			p = put_fixed32(p, b->restarts[i]);
		p = put_fixed32(p, (uint32_t)b->nrestarts);
		b->len = (size_t)(p - b->buf);
		b->finished = true;
	}
	return lsm_slice_make(b->buf, b->len);
}

/* ---- buffer recycling -------------------------------------------------- */

#define SPARE_SLOTS 16
#define SPARE_MIN 512u              /* smaller buffers are cheap to allocate anyway */
#define SPARE_MAX (256u << 10)
#define SPARE_ROUND 256u

static struct {
	pthread_mutex_t mu;
	void *buf[SPARE_SLOTS];         /* NULL: empty */
	size_t cap[SPARE_SLOTS];        /* malloc_usable_size of buf */
	unsigned victim;                /* the slot a put into a full pool replaces */
} spare = { .mu = PTHREAD_MUTEX_INITIALIZER };

void *lsm_block_buf_alloc(size_t n)
{
	if (n < SPARE_MIN || n > SPARE_MAX)
		return malloc(n);
	/* Blocks are cut a little past the block size, each at its own
	 * length: rounding up makes most of them one size class. */
	n = (n + SPARE_ROUND - 1) & ~(size_t)(SPARE_ROUND - 1);
	void *p = NULL;
	pthread_mutex_lock(&spare.mu);
	for (int i = 0; i < SPARE_SLOTS; i++) {
		/* A spare fits when it wastes at most 1/8 of itself. */
		if (spare.buf[i] && spare.cap[i] >= n && spare.cap[i] - n <= n / 8) {
			p = spare.buf[i];
			spare.buf[i] = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&spare.mu);
	return p ? p : malloc(n);
}

void lsm_block_buf_free(void *p)
{
	if (!p)
		return;
	size_t cap = malloc_usable_size(p);
	if (cap < SPARE_MIN || cap > SPARE_MAX + SPARE_MAX / 8) {
		free(p);
		return;
	}
	void *old = NULL;
	pthread_mutex_lock(&spare.mu);
	int i = 0;
	while (i < SPARE_SLOTS && spare.buf[i])
		i++;
	if (i == SPARE_SLOTS) {
		/* Full: the newest buffer is the likeliest to be asked for. */
		i = (int)(spare.victim++ % SPARE_SLOTS);
		old = spare.buf[i];
	}
	spare.buf[i] = p;
	spare.cap[i] = cap;
	pthread_mutex_unlock(&spare.mu);
	free(old);
}

/* The spares are freed when the library is unloaded or the process ends, so
 * that nothing is left behind for leak checkers. */
__attribute__((destructor)) static void spare_drain(void)
{
	pthread_mutex_lock(&spare.mu);
	for (int i = 0; i < SPARE_SLOTS; i++) {
		free(spare.buf[i]);
		spare.buf[i] = NULL;
	}
	pthread_mutex_unlock(&spare.mu);
}

/* ---- parsed block ------------------------------------------------------ */

struct lsm_block {
	const uint8_t *data;
	size_t len;
	uint32_t restarts;      /* offset of the restart array = end of entries */
	uint32_t nrestarts;
	bool owned;
};

int lsm_block_new(const uint8_t *data, size_t len, bool owned, lsm_block **ret_block)
{
	if (len < 4 || len > UINT32_MAX)
		return lsm_errf(-EUCLEAN, "bad block size %zu", len);
	uint32_t n = get_fixed32(data + len - 4);
	if (n > (len - 4) / 4)
		return lsm_errf(-EUCLEAN, "restart count %u does not fit in a %zu-byte block", n, len);
	uint32_t restarts = (uint32_t)(len - 4 - 4 * (size_t)n);
	if (restarts > 0) {
		/* Entries exist: the array must start at 0 and climb strictly
		 * inside the entry area, which is what lets seek and prev jump to
		 * any restart without further range checks. */
		if (n == 0)
			return lsm_errf(-EUCLEAN, "%u bytes of entries but no restart point", restarts);
		uint32_t prev = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t r = get_fixed32(data + restarts + 4 * (size_t)i);
			if ((i == 0 && r != 0) || (i > 0 && r <= prev) || r >= restarts)
				return lsm_errf(-EUCLEAN, "restart point %u (offset %u) out of order", i, r);
			prev = r;
		}
	}
	lsm_block *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->data = data;
	b->len = len;
	b->restarts = restarts;
	b->nrestarts = n;
	b->owned = owned;
	*ret_block = b;
	return 0;
}

void lsm_block_free(lsm_block *b)
{
	if (!b)
		return;
	if (b->owned)
		lsm_block_buf_free((void *)b->data);
	free(b);
}

size_t lsm_block_size(const lsm_block *b)
{
	return b->len;
}

/* ---- iterator ---------------------------------------------------------- */

#define INLINE_KEY 128

struct block_iter {
	lsm_iiter base;
	const uint8_t *data;
	uint32_t restarts;      /* end of the entry area */
	uint32_t nrestarts;
	lsm_cmp_fn cmp;
	uint32_t cur;           /* offset of the current entry; restarts when invalid */
	uint32_t next;          /* offset just past the current entry */
	uint32_t ridx;          /* index of the restart point at or before cur */
	const uint8_t *key;     /* the current key: in the block or in kbuf */
	size_t klen;
	lsm_slice value;
	uint8_t *kbuf;          /* inline_key, or a heap buffer once a key outgrows it */
	size_t kcap;
	int status;
	uint8_t inline_key[INLINE_KEY];
};

static inline uint32_t restart_at(const struct block_iter *it, uint32_t i)
{
	return get_fixed32(it->data + it->restarts + 4 * (size_t)i);
}

static void bi_init(struct block_iter *it, const lsm_block *b, lsm_cmp_fn cmp)
{
	it->data = b->data;
	it->restarts = b->restarts;
	it->nrestarts = b->nrestarts;
	it->cmp = cmp;
	it->cur = it->next = b->restarts;
	it->ridx = 0;
	it->key = NULL;
	it->klen = 0;
	it->value = lsm_slice_make(NULL, 0);
	it->kbuf = it->inline_key;
	it->kcap = INLINE_KEY;
	it->status = 0;
}

static void bi_done(struct block_iter *it)
{
	if (it->kbuf != it->inline_key)
		free(it->kbuf);
}

static void bi_invalidate(struct block_iter *it)
{
	it->cur = it->next = it->restarts;
	it->klen = 0;
}

static void bi_corrupt(struct block_iter *it, uint32_t off, const char *what)
{
	it->status = lsm_errf(-EUCLEAN, "%s at block offset %u", what, off);
	bi_invalidate(it);
}

/* Decodes the three varints of an entry; the common case is one byte each. */
static inline __attribute__((always_inline)) const uint8_t *
decode_header(const uint8_t *p, const uint8_t *limit, uint32_t *shared, uint32_t *unshared, uint32_t *vlen)
{
	if (limit - p >= 3 && ((p[0] | p[1] | p[2]) & 0x80) == 0) {
		*shared = p[0];
		*unshared = p[1];
		*vlen = p[2];
		return p + 3;
	}
	if (!(p = get_varint32(p, limit, shared)) ||
	    !(p = get_varint32(p, limit, unshared)) ||
	    !(p = get_varint32(p, limit, vlen)))
		return NULL;
	return p;
}

/* Copies a key delta in whole words, so short deltas (the usual case) cost
 * no library call.  Reads and writes up to 7 bytes past n: the source is an
 * entry, which the restart array (at least 8 bytes) follows in the block,
 * and the key buffer keeps 7 spare bytes. */
static inline void copy_delta(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i += 8)
		memcpy(dst + i, src + i, 8);
}

/* Positions before restart point i: the next parse reads its entry. */
static void bi_to_restart(struct block_iter *it, uint32_t i)
{
	it->ridx = i;
	it->klen = 0;
	it->next = restart_at(it, i);
}

/* Parses the entry at it->next and makes it current, leaving ridx alone.
 * Returns false at the end of the entries (invalid, no error) or on
 * corruption (status set).  Inlined: it is the inner loop of every seek. */
static inline __attribute__((always_inline)) bool bi_parse_entry(struct block_iter *it)
{
	uint32_t off = it->next;
	if (off >= it->restarts) {
		bi_invalidate(it);
		return false;
	}
	const uint8_t *limit = it->data + it->restarts;
	uint32_t shared, unshared, vlen;
	const uint8_t *p = decode_header(it->data + off, limit, &shared, &unshared, &vlen);
	if (!p || shared > it->klen || (uint64_t)unshared + vlen > (uint64_t)(limit - p)) {
		bi_corrupt(it, off, p ? "entry overruns the block" : "truncated entry header");
		return false;
	}
	if (shared == 0) {
		it->key = p;            /* nothing to rebuild: point into the block */
		it->klen = unshared;
	} else {
		size_t n = (size_t)shared + unshared;
		if (n + 7 > it->kcap) { /* room for copy_delta's last word */
			size_t cap = it->kcap * 2 > n + 7 ? it->kcap * 2 : n + 7;
			uint8_t *nb = malloc(cap);
			if (!nb) {
				it->status = -ENOMEM;
				bi_invalidate(it);
				return false;
			}
			memcpy(nb, it->key, shared);
			if (it->kbuf != it->inline_key)
				free(it->kbuf);
			it->kbuf = nb;
			it->kcap = cap;
		} else if (it->key != it->kbuf) {
			memcpy(it->kbuf, it->key, shared);
		}
		copy_delta(it->kbuf + shared, p, unshared);
		it->key = it->kbuf;
		it->klen = n;
	}
	it->value = lsm_slice_make(p + unshared, vlen);
	it->cur = off;
	it->next = (uint32_t)(p + unshared + vlen - it->data);
	return true;
}

int lsm_block_verify_restarts(const lsm_block *b)
{
	const uint8_t *limit = b->data + b->restarts;
	uint32_t off = 0, j = 0, prefix = 0;

	/* A sequential scan starts at offset 0 and never looks at the other
	 * restart points; a seek jumps to them.  So each must be the start of
	 * an entry that shares nothing with the one before it. */
	while (off < b->restarts) {
		uint32_t shared, unshared, vlen;
		uint32_t r = j < b->nrestarts ? get_fixed32(limit + 4 * (size_t)j) : b->restarts;
		const uint8_t *p = decode_header(b->data + off, limit, &shared, &unshared, &vlen);
		if (!p || shared > prefix || (uint64_t)unshared + vlen > (uint64_t)(limit - p))
			return lsm_errf(-EUCLEAN, "%s at block offset %u", p ? "entry overruns the block" : "truncated entry header",
			                off);
		if (r < off)
			return lsm_errf(-EUCLEAN, "restart point %u (offset %u) is inside an entry", j, r);
		if (r == off) {
			if (shared != 0)
				return lsm_errf(-EUCLEAN, "restart point %u (offset %u) names an entry that shares %u key bytes",
				                j, r, shared);
			j++;
		}
		prefix = shared + unshared;
		off = (uint32_t)(p + unshared + vlen - b->data);
	}
	return 0;
}

/* bi_parse_entry, keeping ridx on the restart point at or before cur. */
static bool bi_parse_next(struct block_iter *it)
{
	if (!bi_parse_entry(it))
		return false;
	while (it->ridx + 1 < it->nrestarts && restart_at(it, it->ridx + 1) <= it->cur)
		it->ridx++;
	return true;
}

static void bi_seek_to_first(struct block_iter *it)
{
	if (it->status)
		return;
	if (it->restarts == 0) {
		bi_invalidate(it);
		return;
	}
	bi_to_restart(it, 0);
	bi_parse_next(it);
}

static void bi_seek_to_last(struct block_iter *it)
{
	if (it->status)
		return;
	if (it->restarts == 0) {
		bi_invalidate(it);
		return;
	}
	bi_to_restart(it, it->nrestarts - 1);
	while (bi_parse_next(it) && it->next < it->restarts)
		;
}

static inline __attribute__((always_inline)) void
bi_seek_with(struct block_iter *it, lsm_slice target, lsm_cmp_fn cmp)
{
	if (it->status)
		return;
	if (it->restarts == 0) {
		bi_invalidate(it);
		return;
	}
	/* Invariants: the key at restart point right + 1 (if any) is >= target,
	 * and, once left_lt is set, the key at restart point left is < target. */
	uint32_t left = 0, right = it->nrestarts - 1;
	bool left_lt = false;
	if (it->cur < it->restarts) {
		/* Already positioned: the current key narrows the search, which
		 * makes forward seeks within a block cheap. */
		int c = cmp(lsm_slice_make(it->key, it->klen), target);
		if (c == 0)
			return;
		if (c < 0) {
			left = it->ridx;
			left_lt = true;
		} else {
			right = it->ridx;
		}
	}
	/* Find the last restart point whose key is < target. */
	const uint8_t *limit = it->data + it->restarts;
	while (left < right) {
		uint32_t mid = left + (right - left + 1) / 2;
		uint32_t off = restart_at(it, mid);
		uint32_t shared, unshared, vlen;
		const uint8_t *p = decode_header(it->data + off, limit, &shared, &unshared, &vlen);
		if (!p || shared != 0 || unshared > (size_t)(limit - p)) {
			bi_corrupt(it, off, "bad restart entry");
			return;
		}
		if (cmp(lsm_slice_make(p, unshared), target) < 0) {
			left = mid;
			left_lt = true;
		} else {
			right = mid - 1;
		}
	}
	/* Scan the interval; the invariants spare comparing its first key and
	 * the next interval's first key (with restart interval 1, as in index
	 * blocks, nothing is compared here at all). */
	uint32_t first = restart_at(it, left);
	uint32_t stop = left + 1 < it->nrestarts ? restart_at(it, left + 1) : it->restarts;
	bi_to_restart(it, left);
	while (bi_parse_entry(it)) {
		if (it->cur == stop) {
			it->ridx = left + 1;
			return;
		}
		if (left_lt && it->cur == first)
			continue;
		if (cmp(lsm_slice_make(it->key, it->klen), target) >= 0)
			return;
	}
}

static inline int word_cmp(const uint8_t *a, const uint8_t *b)
{
	uint64_t x, y;
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	if (x == y)
		return 0;
	x = __builtin_bswap64(x);       /* big-endian value order is byte order */
	y = __builtin_bswap64(y);
	return x < y ? -1 : 1;
}

/* memcmp for the short keys of a block, without a library call: 8 bytes at
 * a time, the last word overlapping the one before (its leading bytes are
 * already known equal, so the first difference still decides). */
static inline int bytes_cmp(const uint8_t *a, const uint8_t *b, size_t n)
{
	int r;
	if (n >= 8) {
		size_t i;
		for (i = 0; i + 8 <= n; i += 8)
			if ((r = word_cmp(a + i, b + i)) != 0)
				return r;
		return i < n ? word_cmp(a + n - 8, b + n - 8) : 0;
	}
	for (; n; a++, b++, n--)
		if (*a != *b)
			return *a < *b ? -1 : 1;
	return 0;
}

/* Internal key order with a bytewise fallback for keys too short to carry a
 * trailer (possible only in damaged blocks: a wrong order, never a read out
 * of bounds; the table layer reports such keys).  Inlined into a dedicated
 * copy of seek: comparisons are most of the cost of a point lookup. */
static inline int ikey_cmp_inline(lsm_slice a, lsm_slice b)
{
	size_t al = a.len - 8, bl = b.len - 8;
	if (__builtin_expect(a.len < 8 || b.len < 8, 0))
		return lsm_slice_cmp(a, b);
	int r = bytes_cmp(a.data, b.data, al < bl ? al : bl);
	if (r == 0)
		r = (al > bl) - (al < bl);
	if (r == 0) {
		uint64_t ta = get_fixed64(a.data + al), tb = get_fixed64(b.data + bl);
		r = (ta < tb) - (ta > tb);
	}
	return r;
}

int lsm_block_ikey_cmp(lsm_slice a, lsm_slice b)
{
	return ikey_cmp_inline(a, b);
}

static void bi_seek(struct block_iter *it, lsm_slice target)
{
	if (it->cmp == lsm_block_ikey_cmp)
		bi_seek_with(it, target, ikey_cmp_inline);
	else
		bi_seek_with(it, target, it->cmp);
}

static void bi_next(struct block_iter *it)
{
	bi_parse_next(it);
}

static void bi_prev(struct block_iter *it)
{
	uint32_t orig = it->cur;
	uint32_t i = it->ridx;
	while (restart_at(it, i) >= orig) {
		if (i == 0) {
			bi_invalidate(it);      /* before the first entry */
			return;
		}
		i--;
	}
	bi_to_restart(it, i);
	while (bi_parse_next(it)) {
		if (it->next == orig)
			return;
		if (it->next > orig) {
			/* The entries from the restart point do not land on orig:
			 * lengths disagree with the forward walk. */
			bi_corrupt(it, it->cur, "entry boundaries disagree");
			return;
		}
	}
}

/* ---- lsm_iiter glue ---------------------------------------------------- */

static struct block_iter *BI(lsm_iiter *it)
{
	return (struct block_iter *)it;
}

static bool op_valid(lsm_iiter *it) { return BI(it)->cur < BI(it)->restarts; }
static void op_seek_to_first(lsm_iiter *it) { bi_seek_to_first(BI(it)); }
static void op_seek_to_last(lsm_iiter *it) { bi_seek_to_last(BI(it)); }
static void op_seek(lsm_iiter *it, lsm_slice t) { bi_seek(BI(it), t); }
static void op_next(lsm_iiter *it) { bi_next(BI(it)); }
static void op_prev(lsm_iiter *it) { bi_prev(BI(it)); }
static lsm_slice op_key(lsm_iiter *it) { return lsm_slice_make(BI(it)->key, BI(it)->klen); }
static lsm_slice op_value(lsm_iiter *it) { return BI(it)->value; }
static int op_status(lsm_iiter *it) { return BI(it)->status; }

static void op_destroy(lsm_iiter *it)
{
	bi_done(BI(it));
	free(it);
}

static const struct lsm_iiter_ops block_iter_ops = {
	.valid = op_valid,
	.seek_to_first = op_seek_to_first,
	.seek_to_last = op_seek_to_last,
	.seek = op_seek,
	.next = op_next,
	.prev = op_prev,
	.key = op_key,
	.value = op_value,
	.status = op_status,
	.destroy = op_destroy,
};

int lsm_block_iter_new(const lsm_block *b, lsm_cmp_fn cmp, lsm_iiter **ret_iter)
{
	struct block_iter *it = malloc(sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->base.ops = &block_iter_ops;
	bi_init(it, b, cmp);
	*ret_iter = &it->base;
	return 0;
}

void lsm_block_iter_reset(lsm_iiter *base, const lsm_block *b)
{
	struct block_iter *it = BI(base);
	/* Only the position and the block change: the key buffer, grown or
	 * not, stays for the next block's keys. */
	it->data = b->data;
	it->restarts = b->restarts;
	it->nrestarts = b->nrestarts;
	it->cur = it->next = b->restarts;
	it->ridx = 0;
	it->key = NULL;
	it->klen = 0;
	it->value = lsm_slice_make(NULL, 0);
	it->status = 0;
}

int lsm_block_seek_get(const lsm_block *b, lsm_cmp_fn cmp, lsm_slice target,
                       lsm_block_entry_fn fn, void *arg)
{
	/* The iterator lives on the stack: a point lookup allocates nothing
	 * unless a key outgrows the inline buffer. */
	struct block_iter it;
	bi_init(&it, b, cmp);
	bi_seek(&it, target);
	int r = it.status;
	if (r == 0 && it.cur < it.restarts) {
		fn(arg, lsm_slice_make(it.key, it.klen), it.value);
		r = 1;
	}
	bi_done(&it);
	return r;
}
