/*
 * fuzz_common.h - what the libFuzzer targets in tests/fuzz/ share: a fresh
 * in-memory env per input that holds the input as a file (no disk I/O, no
 * state carried from one input to the next), the check that a reader
 * returned success or an errno that a damaged file may cause, a small
 * deterministic generator for the custom mutators, and the log framing's
 * structure-aware mutator (the WAL and the MANIFEST share log.c's format).
 *
 * Why custom mutators: every record and block on disk is checksummed, so a
 * byte flip almost always ends at "checksum mismatch" and the parsers behind
 * the checksums (write batches, version edits, blocks, value records) would
 * see next to nothing.  Each target's mutator therefore usually repairs the
 * checksums (and, where the format makes it possible, the lengths) after
 * mutating, and now and then leaves them broken so the checksum paths stay
 * covered too.  The input is always exactly the file the reader sees, so a
 * crash file from build-fuzz/crashes/ reproduces by running the target on it.
 */
#ifndef LSM_FUZZ_COMMON_H
#define LSM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../util/env.h"
#include "../../util/coding.h"

/* libFuzzer's entry points (defined by the targets) and its mutator. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* The directory every target puts its file in. */
#define FUZZ_DIR "/db"

/* A new in-memory env holding directory FUZZ_DIR and, if name is not NULL,
 * FUZZ_DIR/name with the given contents.  Aborts if the env itself fails
 * (that is a harness failure, not a finding). */
lsm_env *fuzz_env_new(const char *name, const void *data, size_t len);
/* Creates or replaces path with the given contents; aborts on failure. */
void fuzz_env_put(lsm_env *env, const char *path, const void *data, size_t len);
/* Frees an env made by fuzz_env_new. */
void fuzz_env_free(lsm_env *env);

/* Aborts (a finding) unless r >= 0 or r is one of the errnos a reader may
 * return for a damaged or unreadable file: -EBADMSG, -EUCLEAN, -ENOTSUP,
 * -ENOMEM, -EIO.  For -EBADMSG and -EUCLEAN it also requires a message from
 * lsm_last_error() (STYLE.md: corruption names what and where); callers
 * clear the message with lsm_clear_error() before the call they check.
 * Returns r. */
int fuzz_expect(int r, const char *what);
/* The same, without the message requirement (for internal calls such as
 * lsm_edit_decode that return a bare -EUCLEAN and let their caller word it). */
int fuzz_expect_bare(int r, const char *what);

/* Aborts with a formatted message: a broken invariant is a finding. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
void fuzz_fail(const char *fmt, ...);

#define FUZZ_ASSERT(cond, ...) do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

/* xorshift64* over a state seeded from libFuzzer's seed. */
typedef struct fuzz_rng {
	uint64_t s;
} fuzz_rng;
void fuzz_rng_init(fuzz_rng *g, unsigned int seed);
uint64_t fuzz_rng_next(fuzz_rng *g);
/* Uniform in [0, n); n > 0. */
uint64_t fuzz_rng_below(fuzz_rng *g, uint64_t n);

/* log.c's framing: 16-byte header, then fixed32 checksum | fixed32 length |
 * payload per record; in version 2 (WALs) the length's top two bits are
 * flags (a sync marker, written over zeros). */
#define FUZZ_LOG_HEADER 16
#define FUZZ_LOG_REC_HEADER 8
#define FUZZ_LOG_V2_LEN_MASK 0x3fffffffu

/* The mask that leaves a record's length of the log in data (by its
 * header's version). */
uint32_t fuzz_log_len_mask(const uint8_t *data, size_t size);

/* Recomputes the checksum of every record whose length fits in the file,
 * walking from the header on, and stops at the first that does not. */
void fuzz_log_fix_checksums(uint8_t *data, size_t size);

/* The log mutator: mostly picks one record, mutates its payload with
 * libFuzzer's mutator and reframes the file (lengths and checksums right);
 * sometimes adds, drops or duplicates a record; sometimes mutates the raw
 * bytes and only repairs the checksums, or nothing.  Returns the new size
 * (<= max_size). */
size_t fuzz_log_mutate(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#endif
