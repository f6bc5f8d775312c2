/*
 * coding.c - the checksum and hash functions behind coding.h, kept out of
 * line so that only this file includes xxhash.h.
 */
#include "coding.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint32_t lsm_checksum(const void *p, size_t n)
{
	return (uint32_t)XXH3_64bits_withSeed(p, n, LSM_CHECKSUM_SEED);
}

uint32_t lsm_checksum2(const void *a, size_t an, const void *b, size_t bn)
{
	XXH3_state_t st;

	XXH3_INITSTATE(&st);
	XXH3_64bits_reset_withSeed(&st, LSM_CHECKSUM_SEED);
	XXH3_64bits_update(&st, a, an);
	XXH3_64bits_update(&st, b, bn);
	return (uint32_t)XXH3_64bits_digest(&st);
}

uint64_t lsm_hash64(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}
