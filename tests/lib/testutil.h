/*
 * testutil.h - helpers shared by the test binaries: temporary directories,
 * seeds that are printed and can be replayed, and the long-run switch.
 */
#ifndef LSM_TEST_TESTUTIL_H
#define LSM_TEST_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>

/* mkdtemp under $TMPDIR (or /tmp); a malloc'd path the caller frees after
 * test_rmtree.  Aborts the test on failure. */
char *test_tmpdir(const char *tag);
/* rm -rf path (ignores a missing path). */
void test_rmtree(const char *path);
/* The seed for a randomized test: $LSM_TEST_SEED if set, else from the clock;
 * printed to stderr as "seed=N (replay with LSM_TEST_SEED=N)". */
uint64_t test_seed(const char *test_name);
/* xorshift64* generator. */
uint64_t test_rand(uint64_t *state);
/* True when $LSM_TEST_LONG is set: run many more iterations. */
bool test_long(void);

#endif
