/*
 * batch.c - write batches: the public lsm_batch_* calls that build one, the
 * encoding that is also the WAL record payload, the strict parser that reads
 * it back, and the step that applies it to a memtable.
 *
 * Representation (little-endian):
 *     batch  := fixed64 sequence | fixed32 count | record{count}
 *     record := 0x01 varint32 klen key[klen] varint32 vlen value[vlen]   (put)
 *             | 0x00 varint32 klen key[klen]                             (delete)
 *             | 0x02 varint32 klen key[klen] varint32 plen pointer[plen] (put, value
 *               in the value log; made by the engine's write path, never by callers)
 * The tag is the entry type the record becomes.  Record i is applied with sequence + i.  A well-formed batch has exactly
 * count records and no byte after the last one, keys of at most LSM_MAX_KEY
 * bytes, values of at most LSM_MAX_VALUE bytes, and sequence + count - 1 <=
 * LSM_MAX_SEQ.  The whole representation stays under 1 GiB, the largest
 * record the WAL accepts.
 *
 * A batch read back from the log is checked completely before the first
 * record is handed out, so a damaged batch is never half applied.
 */
#include <errno.h>
#include <stdlib.h>

#include "lsm_int.h"

#define BATCH_INITIAL_CAP 256
#define BATCH_SHRINK_CAP  (1u << 20)      /* clear() gives back buffers above this */
#define BATCH_MAX_REP     (1u << 30)      /* the largest record the log accepts (log.c) */

#define TAG_DELETE 0x00
#define TAG_PUT    0x01
#define TAG_PUT_PTR 0x02    /* value is an encoded value-log pointer (engine-made only) */

static inline uint32_t rep_count(const uint8_t *rep)
{
	return get_fixed32(rep + 8);
}

int lsm_batch_new(lsm_batch **ret_batch)
{
	lsm_batch *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->rep = calloc(1, BATCH_INITIAL_CAP);
	if (!b->rep) {
		free(b);
		return -ENOMEM;
	}
	b->len = LSM_BATCH_HEADER;
	b->cap = BATCH_INITIAL_CAP;
	b->user_bytes = 0;
	b->max_vlen = 0;
	*ret_batch = b;
	return 0;
}

void lsm_batch_free(lsm_batch *b)
{
	if (!b)
		return;
	free(b->rep);
	free(b);
}

void lsm_batch_clear(lsm_batch *b)
{
	/* A batch reused after one huge write should not pin that buffer. */
	if (b->cap > BATCH_SHRINK_CAP) {
		uint8_t *p = realloc(b->rep, BATCH_INITIAL_CAP);
		if (p) {
			b->rep = p;
			b->cap = BATCH_INITIAL_CAP;
		}
	}
	memset(b->rep, 0, LSM_BATCH_HEADER);
	b->len = LSM_BATCH_HEADER;
	b->user_bytes = 0;
	b->max_vlen = 0;
}

uint32_t lsm_batch_count(const lsm_batch *b)
{
	return rep_count(b->rep);
}

uint64_t lsm_batch_seq(const lsm_batch *b)
{
	return get_fixed64(b->rep);
}

void lsm_batch_set_seq(lsm_batch *b, uint64_t seq)
{
	put_fixed64(b->rep, seq);
}

/* Makes room for extra more bytes.  -EINVAL past the size a WAL record can
 * carry, -ENOMEM. */
static int batch_reserve(lsm_batch *b, size_t extra)
{
	if (extra > BATCH_MAX_REP - b->len)
		return -EINVAL;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap * 2;
	if (cap < need)
		cap = need;
	if (cap > BATCH_MAX_REP)
		cap = BATCH_MAX_REP;
	uint8_t *p = realloc(b->rep, cap);
	if (!p)
		return -ENOMEM;
	b->rep = p;
	b->cap = cap;
	return 0;
}

/* Appends one record; vlen and val are ignored for a delete. */
static int batch_add(lsm_batch *b, unsigned tag, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (klen > LSM_MAX_KEY || (!key && klen))
		return lsm_errf(-EINVAL, "write batch: key of %zu bytes (limit %u)", klen, LSM_MAX_KEY);
	if (vlen > LSM_MAX_VALUE || (!val && vlen))
		return lsm_errf(-EINVAL, "write batch: value of %zu bytes (limit %u)", vlen, LSM_MAX_VALUE);
	uint32_t count = rep_count(b->rep);
	if (count == UINT32_MAX)
		return lsm_errf(-EINVAL, "write batch: too many records");

	size_t need = 1 + (size_t)varint_length(klen) + klen;
	if (tag == TAG_PUT)
		need += (size_t)varint_length(vlen) + vlen;
	int r = batch_reserve(b, need);
	if (r == -EINVAL)
		return lsm_errf(r, "write batch: over %u bytes", BATCH_MAX_REP);
	if (r < 0)
		return r;

	uint8_t *p = b->rep + b->len;
	*p++ = (uint8_t)tag;
	p = put_varint32(p, (uint32_t)klen);
	if (klen)
		memcpy(p, key, klen);
	p += klen;
	if (tag == TAG_PUT) {
		p = put_varint32(p, (uint32_t)vlen);
		if (vlen)
			memcpy(p, val, vlen);
		p += vlen;
	}
	b->len = (size_t)(p - b->rep);
	put_fixed32(b->rep + 8, count + 1);
	b->user_bytes += klen + (tag == TAG_PUT ? vlen : 0);
	if (tag == TAG_PUT && vlen > b->max_vlen)
		b->max_vlen = vlen;
	return 0;
}

int lsm_batch_put(lsm_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	return batch_add(b, TAG_PUT, key, klen, val, vlen);
}

int lsm_batch_delete(lsm_batch *b, const void *key, size_t klen)
{
	return batch_add(b, TAG_DELETE, key, klen, NULL, 0);
}

int lsm_batch_append(lsm_batch *dst, const lsm_batch *src)
{
	uint32_t dcount = rep_count(dst->rep), scount = rep_count(src->rep);
	if (scount > UINT32_MAX - dcount)
		return lsm_errf(-EINVAL, "write batch: too many records");
	size_t n = src->len - LSM_BATCH_HEADER;
	int r = batch_reserve(dst, n);
	if (r == -EINVAL)
		return lsm_errf(r, "write batch: over %u bytes", BATCH_MAX_REP);
	if (r < 0)
		return r;
	if (n)
		memcpy(dst->rep + dst->len, src->rep + LSM_BATCH_HEADER, n);
	dst->len += n;
	put_fixed32(dst->rep + 8, dcount + scount);
	dst->user_bytes += src->user_bytes;
	if (src->max_vlen > dst->max_vlen)
		dst->max_vlen = src->max_vlen;
	return 0;
}

/* Walks rep, calling fn (if not NULL) for each record.  Returns 0, fn's
 * negative return, or -EUCLEAN naming the record and byte offset. */
static int batch_walk(const uint8_t *rep, size_t len, lsm_batch_fn fn, void *arg)
{
	if (len < LSM_BATCH_HEADER)
		return lsm_errf(-EUCLEAN, "write batch: %zu bytes, shorter than its header", len);
	uint64_t seq = get_fixed64(rep);
	uint32_t count = rep_count(rep);
	if (count && seq > LSM_MAX_SEQ - (count - 1))
		return lsm_errf(-EUCLEAN, "write batch: sequence %llu + %u records overflows",
		                (unsigned long long)seq, count);

	const uint8_t *p = rep + LSM_BATCH_HEADER, *limit = rep + len;
	uint32_t i;
	for (i = 0; p < limit; i++) {
		size_t off = (size_t)(p - rep);
		if (i == count)
			return lsm_errf(-EUCLEAN, "write batch: bytes after the last of %u records at offset %zu",
			                count, off);
		unsigned tag = *p++;
		lsm_slice key, val = lsm_slice_make(NULL, 0);
		if (tag != TAG_PUT && tag != TAG_DELETE && tag != TAG_PUT_PTR)
			return lsm_errf(-EUCLEAN, "write batch: record %u at offset %zu: unknown tag 0x%02x",
			                i, off, tag);
		p = get_length_prefixed(p, limit, &key);
		if (p && tag != TAG_DELETE)
			p = get_length_prefixed(p, limit, &val);
		if (!p)
			return lsm_errf(-EUCLEAN, "write batch: record %u at offset %zu: truncated or bad length",
			                i, off);
		if (key.len > LSM_MAX_KEY || val.len > LSM_MAX_VALUE)
			return lsm_errf(-EUCLEAN, "write batch: record %u at offset %zu: key %zu or value %zu bytes over limit",
			                i, off, key.len, val.len);
		if (fn) {
			/* Tags are the entry types they become. */
			int r = fn(arg, seq + i, tag, key, val);
			if (r < 0)
				return r;
		}
	}
	if (i != count)
		return lsm_errf(-EUCLEAN, "write batch: header says %u records, found %u", count, i);
	return 0;
}

/* fn may be NULL, to validate only. */
int lsm_batch_iterate(const uint8_t *rep, size_t len, lsm_batch_fn fn, void *arg)
{
	/* check everything first: a caller must never see part of a bad batch */
	int r = batch_walk(rep, len, NULL, NULL);
	if (r < 0 || !fn)
		return r;
	return batch_walk(rep, len, fn, arg);
}

static int insert_one(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	return lsm_memtable_add(arg, seq, type, key, value);
}

int lsm_batch_insert(const uint8_t *rep, size_t len, lsm_memtable *m)
{
	return lsm_batch_iterate(rep, len, insert_one, m);
}
