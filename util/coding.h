/*
 * coding.h - byte encodings shared by every on-disk format: fixed-width
 * little-endian integers, big-endian integers (for keys whose byte order must
 * be numeric order), LEB128 varints, and the xxhash checksum used everywhere.
 *
 * Encoders write into a caller's buffer and return the pointer past what they
 * wrote.  Decoders take [p, limit) and return the pointer past what they
 * read, or NULL if the input is truncated or malformed: callers turn NULL into
 * -EUCLEAN with a message naming the file.
 */
#ifndef LSM_UTIL_CODING_H
#define LSM_UTIL_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed byte range.  Never owns its memory. */
typedef struct lsm_slice {
	const uint8_t *data;
	size_t len;
} lsm_slice;

static inline lsm_slice lsm_slice_make(const void *p, size_t n)
{
	lsm_slice s = { (const uint8_t *)p, n };
	return s;
}

/* Bytewise comparison, shorter first on a common prefix (memcmp order). */
static inline int lsm_slice_cmp(lsm_slice a, lsm_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int r = n ? memcmp(a.data, b.data, n) : 0;
	if (r == 0)
		r = (a.len > b.len) - (a.len < b.len);
	return r;
}

static inline int lsm_slice_eq(lsm_slice a, lsm_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static inline uint8_t *put_fixed16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static inline uint8_t *put_fixed32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static inline uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static inline uint16_t get_fixed16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_fixed32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);   /* every supported target is little-endian */
	return v;
}

static inline uint64_t get_fixed64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint8_t *put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
	return p + 8;
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Maximum encoded sizes. */
#define VARINT32_MAX 5
#define VARINT64_MAX 10

static inline uint8_t *put_varint64(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *put_varint32(uint8_t *p, uint32_t v)
{
	return put_varint64(p, v);
}

static inline int varint_length(uint64_t v)
{
	int n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline const uint8_t *get_varint64(const uint8_t *p, const uint8_t *limit, uint64_t *ret)
{
	uint64_t v = 0;
	for (int shift = 0; shift <= 63 && p < limit; shift += 7) {
		uint64_t b = *p++;
		if (shift == 63 && b > 1)
			return NULL;   /* bits beyond 64: malformed, not silently dropped */
		v |= (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return p;
		}
	}
	return NULL;
}

static inline const uint8_t *get_varint32(const uint8_t *p, const uint8_t *limit, uint32_t *ret)
{
	if (p < limit && !(*p & 0x80)) {      /* fast path: one byte */
		*ret = *p;
		return p + 1;
	}
	uint64_t v;
	p = get_varint64(p, limit, &v);
	if (!p || v > UINT32_MAX)
		return NULL;
	*ret = (uint32_t)v;
	return p;
}

/* Reads a varint32 length then that many bytes into *ret. */
static inline const uint8_t *get_length_prefixed(const uint8_t *p, const uint8_t *limit, lsm_slice *ret)
{
	uint32_t n;
	p = get_varint32(p, limit, &n);
	if (!p || (size_t)(limit - p) < n)
		return NULL;
	*ret = lsm_slice_make(p, n);
	return p + n;
}

/* The checksum of every on-disk record and block: the low 32 bits of XXH3-64
 * (fast on short inputs, and a chained form lets a header and a body be
 * checked as one).  Seeded so that a run of zeros does not checksum to a
 * constant that zero-filled garbage could match. */
#define LSM_CHECKSUM_SEED 0x6c736d6673ULL   /* "lsmfs" */
uint32_t lsm_checksum(const void *p, size_t n);
/* Checksum of a followed by b, as if they were contiguous. */
uint32_t lsm_checksum2(const void *a, size_t an, const void *b, size_t bn);
/* 64-bit hash for bloom filters and cache sharding. */
uint64_t lsm_hash64(const void *p, size_t n);

#endif
