/*
 * testutil.c - helpers shared by the test binaries (testutil.h): temporary
 * directories that are removed afterwards, seeds that are printed so a
 * failing randomized run can be replayed, a small fast PRNG, and the
 * LSM_TEST_LONG switch for long runs.
 */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

char *test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&path, "%s/lsm-%s-XXXXXX", base, tag ? tag : "test") < 0)
		fail_msg("test_tmpdir: out of memory");
	if (!mkdtemp(path)) {
		int err = errno;
		free(path);
		fail_msg("test_tmpdir: mkdtemp under %s: %s", base, strerror(err));
	}
	return path;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;       /* keep going: remove as much as possible */
}

void test_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t test_seed(const char *test_name)
{
	const char *env = getenv("LSM_TEST_SEED");
	uint64_t seed;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* Mix in the pid so tests started in the same nanosecond by
		 * parallel meson jobs still differ. */
		seed = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
		       ((uint64_t)getpid() << 32);
	}
	fprintf(stderr, "%s: seed=%" PRIu64 " (replay with LSM_TEST_SEED=%" PRIu64 ")\n",
		test_name ? test_name : "test", seed, seed);
	return seed;
}

uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	if (x == 0)             /* xorshift's one fixed point */
		x = 0x9e3779b97f4a7c15ULL;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

bool test_long(void)
{
	const char *v = getenv("LSM_TEST_LONG");

	return v && *v && strcmp(v, "0") != 0;
}
