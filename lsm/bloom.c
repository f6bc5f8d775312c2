/*
 * bloom.c - the whole-table bloom filter over user keys.
 *
 *     filter := bit[nbits] (nbits = 8 * (len - 1), little-endian bit order
 *               within each byte) | uint8 k
 *
 * Each key is hashed once with lsm_hash64.  The low 32 bits are the first
 * probe h1, the high 32 bits are the step h2 (forced odd: a step of 0 would
 * probe one bit k times), and probe i looks at bit
 * reduce(h1 + i * h2) where reduce maps a 32-bit value onto [0, nbits) with a
 * multiply and a shift rather than a division: the probe loop is the whole
 * cost of a negative lookup, and k divisions would dominate it.
 *
 * A reader accepts any filter: one too short to hold a bit, or with k outside
 * [1, 30] (room left for other encodings), answers "may contain", which is
 * always safe.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

#define BLOOM_MAX_K 30

struct lsm_bloom_builder {
	int bits_per_key;
	uint64_t *hashes;       /* one per key added; the bits are set at finish */
	size_t n, cap;
};

int lsm_bloom_builder_new(int bits_per_key, lsm_bloom_builder **ret_b)
{
	/* Above ~100 bits per key the false-positive rate no longer improves
	 * in any useful way; a larger value is almost surely a mistake. */
	if (bits_per_key < 1 || bits_per_key > 100)
		return -EINVAL;
	lsm_bloom_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->bits_per_key = bits_per_key;
	*ret_b = b;
	return 0;
}

void lsm_bloom_builder_free(lsm_bloom_builder *b)
{
	if (!b)
		return;
	free(b->hashes);
	free(b);
}

int lsm_bloom_builder_add(lsm_bloom_builder *b, lsm_slice key)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		uint64_t *h = realloc(b->hashes, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		b->hashes = h;
		b->cap = cap;
	}
	b->hashes[b->n++] = lsm_hash64(key.data, key.len);
	return 0;
}

static inline uint32_t reduce(uint32_t x, uint64_t nbits)
{
	return (uint32_t)(((uint64_t)x * nbits) >> 32);
}

int lsm_bloom_builder_finish(lsm_bloom_builder *b, uint8_t **ret_filter, size_t *ret_len)
{
	/* k = bits_per_key * ln 2 minimises the false-positive rate. */
	int k = (int)(b->bits_per_key * 0.69);
	if (k < 1)
		k = 1;
	if (k > BLOOM_MAX_K)
		k = BLOOM_MAX_K;

	/* At least 64 bits, so a filter of a handful of keys is not all ones;
	 * at most 2^32 bits, the range reduce() covers. */
	uint64_t nbits = (uint64_t)b->n * (uint64_t)b->bits_per_key;
	if (nbits < 64)
		nbits = 64;
	if (nbits > ((uint64_t)1 << 32))
		return -EFBIG;
	size_t nbytes = (size_t)((nbits + 7) / 8);
	nbits = (uint64_t)nbytes * 8;

	uint8_t *f = calloc(nbytes + 1, 1);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		uint32_t h = (uint32_t)b->hashes[i];
		uint32_t step = (uint32_t)(b->hashes[i] >> 32) | 1;
		for (int j = 0; j < k; j++) {
			uint32_t bit = reduce(h, nbits);
			f[bit >> 3] |= (uint8_t)(1u << (bit & 7));
			h += step;
		}
	}
	f[nbytes] = (uint8_t)k;
	*ret_filter = f;
	*ret_len = nbytes + 1;
	return 0;
}

bool lsm_bloom_may_contain(const uint8_t *filter, size_t len, lsm_slice key)
{
	if (len < 2 || len - 1 > ((size_t)1 << 29))
		return true;
	unsigned k = filter[len - 1];
	if (k < 1 || k > BLOOM_MAX_K)
		return true;
	uint64_t nbits = (uint64_t)(len - 1) * 8;
	uint64_t hv = lsm_hash64(key.data, key.len);
	uint32_t h = (uint32_t)hv;
	uint32_t step = (uint32_t)(hv >> 32) | 1;
	for (unsigned j = 0; j < k; j++) {
		uint32_t bit = reduce(h, nbits);
		if (!(filter[bit >> 3] & (1u << (bit & 7))))
			return false;
		h += step;
	}
	return true;
}
