/*
 * memtable.c - the in-memory table of recent writes: internal keys and their
 * values in a skiplist, everything in one arena.  Each entry is one arena
 * allocation:
 *     varint32 ikey_len | user_key | fixed64 (seq << 8 | type) | varint32 vlen | value
 * and the skiplist orders entries by internal key (lsm_ikey_cmp), so the
 * newest version of a user key comes first.  A deletion is an entry of type
 * LSM_TYPE_DELETE with an empty value.
 *
 * Lookups never copy the key they search for: they seek the skiplist with a
 * comparator that takes the target as a (user key, trailer) pair.
 *
 * The memtable is refcounted (the count is atomic; the db's mutex decides who
 * may take references) and its arena goes away with the last reference.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lsm_int.h"

struct lsm_memtable {
	_Atomic int refs;
	lsm_arena *arena;
	lsm_skiplist *list;
	_Atomic uint64_t entries;   /* written by the single writer, read by anyone */
};

/* A seek target in split form, so it needs no encoding. */
struct mem_target {
	lsm_slice ukey;
	uint64_t trailer;
};

/* Decodes a varint32 length that memtable_add wrote (so it is well formed
 * and needs no bounds) and advances *p past it. */
static inline uint32_t entry_len(const uint8_t **p)
{
	const uint8_t *q = *p;
	uint32_t n = *q & 0x7f;
	for (int shift = 7; *q++ & 0x80; shift += 7)
		n |= (uint32_t)(*q & 0x7f) << shift;
	*p = q;
	return n;
}

/* The internal key of a stored entry; *ret_end points past it. */
static inline lsm_slice entry_ikey(const uint8_t *e, const uint8_t **ret_end)
{
	uint32_t n = entry_len(&e);
	*ret_end = e + n;
	return lsm_slice_make(e, n);
}

static inline lsm_slice entry_value(const uint8_t *p)
{
	uint32_t n = entry_len(&p);
	return lsm_slice_make(p, n);
}

/* Bytewise order of user keys, as lsm_slice_cmp, but 8 bytes at a time
 * inline: a skiplist search makes ~30 comparisons of mostly short keys, and
 * a call into libc's memcmp for each cost up to a third of the insert time in a
 * cache-resident memtable. */
static inline int ukey_cmp(lsm_slice a, lsm_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a.data + i, 8);
		memcpy(&y, b.data + i, 8);
		if (x != y) {
			/* big-endian view: numeric order is byte order */
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
			return x < y ? -1 : 1;
		}
	}
	for (; i < n; i++) {
		if (a.data[i] != b.data[i])
			return a.data[i] < b.data[i] ? -1 : 1;
	}
	return (a.len > b.len) - (a.len < b.len);
}

/* Internal key order (lsm_ikey_cmp) of an entry against a split key. */
static inline int entry_cmp(const void *entry, lsm_slice ukey, uint64_t trailer)
{
	const uint8_t *end;
	lsm_slice ikey = entry_ikey(entry, &end);
	int r = ukey_cmp(lsm_ikey_user(ikey), ukey);
	if (r == 0) {
		uint64_t t = lsm_ikey_trailer(ikey);
		r = (t < trailer) - (t > trailer);   /* newer (larger) trailers first */
	}
	return r;
}

static int cmp_entries(const void *a, const void *b)
{
	const uint8_t *end;
	lsm_slice kb = entry_ikey(b, &end);
	return entry_cmp(a, lsm_ikey_user(kb), lsm_ikey_trailer(kb));
}

/* cmp(stored entry, struct mem_target) for lsm_skiplist_iter_seek_by. */
static int cmp_target(const void *entry, const void *target)
{
	const struct mem_target *t = target;
	return entry_cmp(entry, t->ukey, t->trailer);
}

int lsm_memtable_new(lsm_memtable **ret_mem)
{
	lsm_memtable *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->arena = lsm_arena_new();
	if (!m->arena)
		goto fail;
	m->list = lsm_skiplist_new(m->arena, cmp_entries);
	if (!m->list)
		goto fail;
	atomic_init(&m->refs, 1);
	atomic_init(&m->entries, 0);
	*ret_mem = m;
	return 0;

fail:
	lsm_arena_free(m->arena);
	free(m);
	return -ENOMEM;
}

void lsm_memtable_ref(lsm_memtable *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void lsm_memtable_unref(lsm_memtable *m)
{
	if (!m)
		return;
	/* acq_rel: the thread that frees must see every other holder's use */
	int old = atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	if (old == 1) {
		lsm_arena_free(m->arena);
		free(m);
	}
}

/* Also returns -EINVAL for a key, value, type or sequence that no caller
 * should pass (batch.c has checked sizes), rather than store a bad entry. */
int lsm_memtable_add(lsm_memtable *m, uint64_t seq, unsigned type, lsm_slice ukey, lsm_slice value)
{
	if (type == LSM_TYPE_DELETE)
		value.len = 0;
	else if (type != LSM_TYPE_VALUE && type != LSM_TYPE_VPTR)
		return -EINVAL;
	if (seq > LSM_MAX_SEQ || ukey.len > UINT32_MAX - 8 || value.len > UINT32_MAX)
		return -EINVAL;

	uint32_t klen = (uint32_t)ukey.len + 8;
	uint32_t vlen = (uint32_t)value.len;
	size_t size = (size_t)varint_length(klen) + klen + (size_t)varint_length(vlen) + vlen;
	uint8_t *e = lsm_skiplist_alloc_entry(m->list, size);
	if (!e)
		return -ENOMEM;

	uint8_t *p = put_varint32(e, klen);
	p += lsm_ikey_encode(p, ukey, seq, type);
	p = put_varint32(p, vlen);
	if (vlen)
		memcpy(p, value.data, vlen);

	int r = lsm_skiplist_insert(m->list, e);
	if (r < 0)
		return r;
	atomic_store_explicit(&m->entries, atomic_load_explicit(&m->entries, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	return 0;
}

int lsm_memtable_get(lsm_memtable *m, lsm_slice ukey, uint64_t seq, unsigned *ret_type, lsm_slice *ret_value)
{
	if (seq > LSM_MAX_SEQ)
		seq = LSM_MAX_SEQ;   /* "latest": would otherwise shift off the top */
	struct mem_target t = { ukey, lsm_pack_trailer(seq, LSM_TYPE_SEEK) };
	lsm_skiplist_iter it;

	lsm_skiplist_iter_init(&it, m->list);
	lsm_skiplist_iter_seek_by(&it, &t, cmp_target);
	if (!lsm_skiplist_iter_valid(&it))
		return 0;

	const uint8_t *end;
	lsm_slice ikey = entry_ikey(lsm_skiplist_iter_entry(&it), &end);
	if (!lsm_slice_eq(lsm_ikey_user(ikey), ukey))
		return 0;
	*ret_type = lsm_ikey_type(ikey);
	*ret_value = entry_value(end);
	return 1;
}

size_t lsm_memtable_usage(const lsm_memtable *m)
{
	return lsm_arena_usage(m->arena);
}

uint64_t lsm_memtable_entries(const lsm_memtable *m)
{
	return atomic_load_explicit((_Atomic uint64_t *)&m->entries, memory_order_relaxed);
}

/* ---- iterator ----------------------------------------------------------- */

struct mem_iter {
	lsm_iiter base;
	lsm_memtable *mem;            /* a reference, dropped at destroy */
	lsm_skiplist_iter it;
};

static bool mi_valid(lsm_iiter *base)
{
	struct mem_iter *mi = (struct mem_iter *)base;
	return lsm_skiplist_iter_valid(&mi->it);
}

static void mi_seek_to_first(lsm_iiter *base)
{
	lsm_skiplist_iter_seek_to_first(&((struct mem_iter *)base)->it);
}

static void mi_seek_to_last(lsm_iiter *base)
{
	lsm_skiplist_iter_seek_to_last(&((struct mem_iter *)base)->it);
}

static void mi_seek(lsm_iiter *base, lsm_slice target)
{
	struct mem_target t;
	if (target.len >= 8) {
		t.ukey = lsm_ikey_user(target);
		t.trailer = lsm_ikey_trailer(target);
	} else {
		/* not an internal key: treat it as a bare user key and land on
		 * its newest version */
		t.ukey = target;
		t.trailer = UINT64_MAX;
	}
	lsm_skiplist_iter_seek_by(&((struct mem_iter *)base)->it, &t, cmp_target);
}

static void mi_next(lsm_iiter *base)
{
	lsm_skiplist_iter_next(&((struct mem_iter *)base)->it);
}

static void mi_prev(lsm_iiter *base)
{
	lsm_skiplist_iter_prev(&((struct mem_iter *)base)->it);
}

static lsm_slice mi_key(lsm_iiter *base)
{
	const uint8_t *end;
	return entry_ikey(lsm_skiplist_iter_entry(&((struct mem_iter *)base)->it), &end);
}

static lsm_slice mi_value(lsm_iiter *base)
{
	const uint8_t *end;
	entry_ikey(lsm_skiplist_iter_entry(&((struct mem_iter *)base)->it), &end);
	return entry_value(end);
}

static int mi_status(lsm_iiter *base)
{
	(void)base;
	return 0;   /* memory cannot be corrupt in a way we could detect */
}

static void mi_destroy(lsm_iiter *base)
{
	struct mem_iter *mi = (struct mem_iter *)base;
	lsm_memtable_unref(mi->mem);
	free(mi);
}

static const struct lsm_iiter_ops mem_iter_ops = {
	.valid = mi_valid,
	.seek_to_first = mi_seek_to_first,
	.seek_to_last = mi_seek_to_last,
	.seek = mi_seek,
	.next = mi_next,
	.prev = mi_prev,
	.key = mi_key,
	.value = mi_value,
	.status = mi_status,
	.destroy = mi_destroy,
};

int lsm_memtable_iter_new(lsm_memtable *m, lsm_iiter **ret_iter)
{
	struct mem_iter *mi = malloc(sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	mi->base.ops = &mem_iter_ops;
	mi->mem = m;
	lsm_skiplist_iter_init(&mi->it, m->list);
	lsm_memtable_ref(m);
	*ret_iter = &mi->base;
	return 0;
}
