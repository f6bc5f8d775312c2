/*
 * test_env.c - unit tests for the envs: one battery run against the POSIX
 * env in a tmpdir and against the in-memory env (file I/O, truncate, rename,
 * unlink, directories, locks, statfs, and the env_* helpers), then the
 * fault-injecting env over both: fail_nth per kind, short writes, a full
 * disk, and power cuts replayed by env_fault_crash.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env.h"
#include "env_test.h"
#include "errmsg.h"
#include "testutil.h"

struct fx {
	lsm_env *env;               /* the env under test */
	lsm_env *mem;               /* owned, if the base is the mem env */
	bool fault;                 /* env is a fault env over the base */
	char *tmp;                  /* owned tmpdir, if the base is POSIX */
	char dir[256];              /* directory the test works in */
	char paths[8][512];         /* rotating buffers for P() */
	unsigned next;
};

static int setup_base(void **state, bool posix, bool fault)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	if (posix) {
		x->tmp = test_tmpdir("env");
		x->env = lsm_env_posix();
		snprintf(x->dir, sizeof(x->dir), "%s", x->tmp);
	} else {
		x->mem = x->env = env_mem_new();
		assert_non_null(x->env);
		snprintf(x->dir, sizeof(x->dir), "/t");
		assert_int_equal(env_mkdir(x->env, x->dir), 0);
	}
	if (fault) {
		x->env = env_fault_new(x->env);
		assert_non_null(x->env);
		x->fault = true;
	}
	*state = x;
	return 0;
}

static int setup_posix(void **s) { return setup_base(s, true, false); }
static int setup_mem(void **s) { return setup_base(s, false, false); }
static int setup_fault_posix(void **s) { return setup_base(s, true, true); }
static int setup_fault_mem(void **s) { return setup_base(s, false, true); }

static int teardown(void **state)
{
	struct fx *x = *state;

	if (x->fault)
		env_fault_free(x->env);
	env_mem_free(x->mem);
	if (x->tmp) {
		test_rmtree(x->tmp);
		free(x->tmp);
	}
	free(x);
	return 0;
}

/* dir/name in one of eight rotating buffers (enough for any one call). */
static const char *P(struct fx *x, const char *name)
{
	char *b = x->paths[x->next++ % 8];

	snprintf(b, sizeof(x->paths[0]), "%s/%s", x->dir, name);
	return b;
}

static void put_file(lsm_env *e, const char *path, const void *data, size_t n)
{
	lsm_file *f;

	assert_int_equal(env_open(e, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f), 0);
	assert_int_equal(env_pwrite(e, f, data, n, 0), 0);
	assert_int_equal(env_close(e, f), 0);
}

/* The file's length, or a negative errno. */
static long file_len(lsm_env *e, const char *path)
{
	lsm_file *f;
	uint64_t n;
	int r = env_open(e, path, LSM_ENV_READ, &f);

	if (r < 0)
		return r;
	assert_int_equal(env_size(e, f, &n), 0);
	assert_int_equal(env_close(e, f), 0);
	return (long)n;
}

static void expect_contents(lsm_env *e, const char *path, const void *data, size_t n)
{
	void *buf = NULL;
	size_t len = 0;

	assert_int_equal(env_read_file(e, path, &buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, data, n);
	free(buf);
}

/* ---- the battery, for every env -------------------------------------- */

static void test_env_read_write(void **state)
{
	struct fx *x = *state;
	uint8_t buf[64];
	uint64_t size;
	lsm_file *f;

	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_WRITE | LSM_ENV_CREATE, &f), 0);
	assert_int_equal(env_pwrite(x->env, f, "hello", 5, 0), 0);
	assert_int_equal(env_pwrite(x->env, f, "world", 5, 5), 0);
	assert_int_equal(env_size(x->env, f, &size), 0);
	assert_int_equal(size, 10);
	assert_int_equal(env_pread(x->env, f, buf, 10, 0), 10);
	assert_memory_equal(buf, "helloworld", 10);
	/* Short only at end of file. */
	assert_int_equal(env_pread(x->env, f, buf, sizeof(buf), 3), 7);
	assert_memory_equal(buf, "loworld", 7);
	assert_int_equal(env_pread(x->env, f, buf, 4, 10), 0);
	assert_int_equal(env_pread(x->env, f, buf, 4, 1000), 0);
	/* Writing past the end leaves a zero-filled hole. */
	assert_int_equal(env_pwrite(x->env, f, "!", 1, 20), 0);
	assert_int_equal(env_size(x->env, f, &size), 0);
	assert_int_equal(size, 21);
	assert_int_equal(env_pread(x->env, f, buf, 11, 10), 11);
	assert_memory_equal(buf, "\0\0\0\0\0\0\0\0\0\0!", 11);
	assert_int_equal(env_sync(x->env, f), 0);
	assert_int_equal(env_close(x->env, f), 0);
	expect_contents(x->env, P(x, "f"), "helloworld\0\0\0\0\0\0\0\0\0\0!", 21);
	assert_int_equal(env_file_exists(x->env, P(x, "f")), 1);
	assert_int_equal(env_file_exists(x->env, P(x, "nope")), 0);
}

static void test_env_open_errors(void **state)
{
	struct fx *x = *state;
	lsm_file *f = NULL;

	assert_int_equal(env_open(x->env, P(x, "missing"), LSM_ENV_READ, &f), -ENOENT);
	assert_non_null(strstr(lsm_last_error(), "missing"));
	assert_null(f);
	assert_int_equal(env_open(x->env, P(x, "nodir/f"), LSM_ENV_WRITE | LSM_ENV_CREATE, &f), -ENOENT);
	assert_int_equal(env_open(x->env, P(x, "f"), 0, &f), -EINVAL);
	put_file(x->env, P(x, "f"), "abc", 3);
	assert_int_equal(env_open(x->env, P(x, "f"),
				  LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_EXCL, &f), -EEXIST);
	assert_int_equal(file_len(x->env, P(x, "f")), 3);
	/* A read-only handle refuses writes. */
	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_READ, &f), 0);
	assert_true(env_pwrite(x->env, f, "x", 1, 0) < 0);
	assert_int_equal(env_close(x->env, f), 0);
	expect_contents(x->env, P(x, "f"), "abc", 3);
	/* TRUNC empties an existing file. */
	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_WRITE | LSM_ENV_TRUNC, &f), 0);
	assert_int_equal(env_close(x->env, f), 0);
	assert_int_equal(file_len(x->env, P(x, "f")), 0);
}

static void test_env_truncate(void **state)
{
	struct fx *x = *state;
	uint8_t buf[8];
	uint64_t size;
	lsm_file *f;

	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_WRITE | LSM_ENV_CREATE, &f), 0);
	assert_int_equal(env_pwrite(x->env, f, "abcdefgh", 8, 0), 0);
	assert_int_equal(env_truncate(x->env, f, 3), 0);
	assert_int_equal(env_size(x->env, f, &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(env_truncate(x->env, f, 6), 0);
	assert_int_equal(env_pread(x->env, f, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "abc\0\0\0", 6);
	assert_int_equal(env_close(x->env, f), 0);
}

static void test_env_rename(void **state)
{
	struct fx *x = *state;
	uint8_t buf[4];
	lsm_file *f;

	put_file(x->env, P(x, "a"), "new", 3);
	put_file(x->env, P(x, "b"), "old!", 4);
	assert_int_equal(env_open(x->env, P(x, "a"), LSM_ENV_READ, &f), 0);
	assert_int_equal(env_rename(x->env, P(x, "a"), P(x, "b")), 0);
	assert_int_equal(env_file_exists(x->env, P(x, "a")), 0);
	expect_contents(x->env, P(x, "b"), "new", 3);
	/* The open handle follows the file, not the name. */
	assert_int_equal(env_pread(x->env, f, buf, 4, 0), 3);
	assert_memory_equal(buf, "new", 3);
	assert_int_equal(env_close(x->env, f), 0);
	assert_int_equal(env_rename(x->env, P(x, "a"), P(x, "c")), -ENOENT);
	assert_int_equal(env_file_exists(x->env, P(x, "c")), 0);
	assert_int_equal(env_rename(x->env, P(x, "b"), P(x, "nodir/b")), -ENOENT);
	expect_contents(x->env, P(x, "b"), "new", 3);
}

static void test_env_unlink(void **state)
{
	struct fx *x = *state;
	uint8_t buf[8];
	lsm_file *f;

	put_file(x->env, P(x, "f"), "data", 4);
	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_WRITE, &f), 0);
	assert_int_equal(env_unlink(x->env, P(x, "f")), 0);
	assert_int_equal(env_file_exists(x->env, P(x, "f")), 0);
	assert_int_equal(env_unlink(x->env, P(x, "f")), -ENOENT);
	/* POSIX: the handle still reaches the unlinked file. */
	assert_int_equal(env_pwrite(x->env, f, "++", 2, 4), 0);
	assert_int_equal(env_pread(x->env, f, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "data++", 6);
	assert_int_equal(env_close(x->env, f), 0);
	/* A new file of that name starts empty. */
	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_WRITE | LSM_ENV_CREATE, &f), 0);
	assert_int_equal(env_pread(x->env, f, buf, sizeof(buf), 0), 0);
	assert_int_equal(env_close(x->env, f), 0);
}

struct names {
	char seen[8][16];
	int n, stop_after;
};

static int collect(void *arg, const char *name)
{
	struct names *nm = arg;

	if (nm->n == 8)
		return -E2BIG;
	snprintf(nm->seen[nm->n++], sizeof(nm->seen[0]), "%s", name);
	return nm->n == nm->stop_after ? -ECANCELED : 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_env_dirs(void **state)
{
	struct fx *x = *state;
	struct names nm = { .n = 0 };

	assert_int_equal(env_mkdir(x->env, P(x, "sub")), 0);
	assert_int_equal(env_mkdir(x->env, P(x, "sub")), -EEXIST);
	assert_int_equal(env_file_exists(x->env, P(x, "sub")), 1);
	put_file(x->env, P(x, "sub/x"), "1", 1);
	put_file(x->env, P(x, "sub/y"), "2", 1);
	assert_int_equal(env_mkdir(x->env, P(x, "sub/z")), 0);
	put_file(x->env, P(x, "sub/z/deep"), "3", 1);
	assert_int_equal(env_list_dir(x->env, P(x, "sub"), collect, &nm), 0);
	assert_int_equal(nm.n, 3);      /* no ".", "..", nor what z holds */
	qsort(nm.seen, 3, sizeof(nm.seen[0]), cmp_names);
	assert_string_equal(nm.seen[0], "x");
	assert_string_equal(nm.seen[1], "y");
	assert_string_equal(nm.seen[2], "z");
	/* A negative return from the callback stops the listing. */
	memset(&nm, 0, sizeof(nm));
	nm.stop_after = 1;
	assert_int_equal(env_list_dir(x->env, P(x, "sub"), collect, &nm), -ECANCELED);
	assert_int_equal(nm.n, 1);
	assert_int_equal(env_sync_dir(x->env, P(x, "sub")), 0);
	assert_int_equal(env_rmdir(x->env, P(x, "sub")), -ENOTEMPTY);
	assert_int_equal(env_unlink(x->env, P(x, "sub/z/deep")), 0);
	assert_int_equal(env_rmdir(x->env, P(x, "sub/z")), 0);
	assert_int_equal(env_unlink(x->env, P(x, "sub/x")), 0);
	assert_int_equal(env_unlink(x->env, P(x, "sub/y")), 0);
	assert_int_equal(env_rmdir(x->env, P(x, "sub")), 0);
	assert_int_equal(env_file_exists(x->env, P(x, "sub")), 0);
	assert_int_equal(env_rmdir(x->env, P(x, "sub")), -ENOENT);
	assert_int_equal(env_list_dir(x->env, P(x, "sub"), collect, &nm), -ENOENT);
	assert_int_equal(env_sync_dir(x->env, P(x, "sub")), -ENOENT);
	assert_int_equal(env_sync_dir(x->env, x->dir), 0);
}

static void test_env_lock_busy(void **state)
{
	struct fx *x = *state;
	lsm_lock *l, *l2 = NULL;
	char alias[600];

	assert_int_equal(env_lock(x->env, P(x, "LOCK"), &l), 0);
	assert_int_equal(env_file_exists(x->env, P(x, "LOCK")), 1);
	/* Held in this very process: still busy, every time. */
	assert_int_equal(env_lock(x->env, P(x, "LOCK"), &l2), -EBUSY);
	assert_int_equal(env_lock(x->env, P(x, "LOCK"), &l2), -EBUSY);
	snprintf(alias, sizeof(alias), "%s//LOCK", x->dir);
	assert_int_equal(env_lock(x->env, alias, &l2), -EBUSY);
	assert_null(l2);
	assert_int_equal(env_unlock(x->env, l), 0);
	assert_int_equal(env_lock(x->env, P(x, "LOCK"), &l2), 0);
	assert_int_equal(env_unlock(x->env, l2), 0);
	assert_int_equal(env_lock(x->env, P(x, "nodir/LOCK"), &l), -ENOENT);
}

static void test_env_statfs(void **state)
{
	struct fx *x = *state;
	struct lsm_env_statfs st;

	assert_int_equal(env_statfs(x->env, x->dir, &st), 0);
	assert_true(st.total_bytes > 0);
	assert_true(st.free_bytes <= st.total_bytes);
	assert_true(st.avail_bytes <= st.free_bytes);
	assert_true(st.free_files <= st.total_files);
	assert_int_equal(env_statfs(x->env, P(x, "missing"), &st), -ENOENT);
}

static void test_env_read_exact_short(void **state)
{
	struct fx *x = *state;
	uint8_t buf[16];
	lsm_file *f;

	put_file(x->env, P(x, "f"), "0123456789", 10);
	assert_int_equal(env_open(x->env, P(x, "f"), LSM_ENV_READ, &f), 0);
	assert_int_equal(env_read_exact(x->env, f, P(x, "f"), buf, 10, 0), 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(env_read_exact(x->env, f, P(x, "f"), buf, 4, 6), 0);
	assert_memory_equal(buf, "6789", 4);
	lsm_clear_error();
	assert_int_equal(env_read_exact(x->env, f, P(x, "f"), buf, 11, 0), -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), P(x, "f")));
	assert_int_equal(env_read_exact(x->env, f, P(x, "f"), buf, 1, 10), -EUCLEAN);
	assert_int_equal(env_close(x->env, f), 0);
}

static void test_env_write_file_atomic(void **state)
{
	struct fx *x = *state;
	struct names nm = { .n = 0 };
	void *buf = NULL;
	size_t len = 7;

	assert_int_equal(env_write_file_atomic(x->env, x->dir, "CURRENT", "v1\n", 3), 0);
	expect_contents(x->env, P(x, "CURRENT"), "v1\n", 3);
	assert_int_equal(env_write_file_atomic(x->env, x->dir, "CURRENT", "version2\n", 9), 0);
	expect_contents(x->env, P(x, "CURRENT"), "version2\n", 9);
	assert_int_equal(env_list_dir(x->env, x->dir, collect, &nm), 0);
	assert_int_equal(nm.n, 1);      /* no CURRENT.tmp left behind */
	assert_string_equal(nm.seen[0], "CURRENT");
	/* An empty file reads back as a non-NULL zero-length buffer. */
	assert_int_equal(env_write_file_atomic(x->env, x->dir, "E", "", 0), 0);
	assert_int_equal(env_read_file(x->env, P(x, "E"), &buf, &len), 0);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	free(buf);
	buf = NULL;
	assert_int_equal(env_read_file(x->env, P(x, "missing"), &buf, &len), -ENOENT);
	assert_null(buf);
	assert_int_equal(env_write_file_atomic(x->env, P(x, "nodir"), "C", "x", 1), -ENOENT);
	assert_int_equal(env_file_exists(x->env, P(x, "nodir")), 0);
}

/* What only the mem env promises: mkdir makes missing ancestors, paths are
 * normalized, and whole directories rename. */
static void test_env_mem_namespace(void **state)
{
	struct fx *x = *state;
	struct names nm = { .n = 0 };
	lsm_file *f;

	assert_int_equal(env_mkdir(x->env, "/a/b/c"), 0);
	assert_int_equal(env_file_exists(x->env, "/a/b"), 1);
	put_file(x->env, "/a//b/c/f/", "xy", 2);
	expect_contents(x->env, "/a/b/c/f", "xy", 2);
	assert_int_equal(env_open(x->env, "/a/b", LSM_ENV_READ, &f), -EISDIR);
	assert_int_equal(env_mkdir(x->env, "/a/b/c/f/g"), -ENOTDIR);
	assert_int_equal(env_rename(x->env, "/a/b", "/a/b/c/d"), -EINVAL);
	assert_int_equal(env_rename(x->env, "/a/b/c/f", "/a"), -EISDIR);
	assert_int_equal(env_rename(x->env, "/a/b", "/z"), 0);
	expect_contents(x->env, "/z/c/f", "xy", 2);
	assert_int_equal(env_file_exists(x->env, "/a/b"), 0);
	assert_int_equal(env_file_exists(x->env, "/a/b/c/f"), 0);
	assert_int_equal(env_list_dir(x->env, "/", collect, &nm), 0);
	assert_int_equal(nm.n, 3);      /* a, t (the fixture's) and z */
	assert_int_equal(env_mkdir(x->env, "/a/e"), 0);
	put_file(x->env, "/a/e/g", "1", 1);
	assert_int_equal(env_rename(x->env, "/z", "/a/e"), -ENOTEMPTY);
	assert_int_equal(env_unlink(x->env, "/a/e/g"), 0);
	assert_int_equal(env_rename(x->env, "/z", "/a/e"), 0);
	expect_contents(x->env, "/a/e/c/f", "xy", 2);
	assert_int_equal(env_unlink(x->env, "/a"), -EISDIR);
}

#define NTHREADS 4
#define NROUNDS 200

struct worker {
	lsm_env *env;
	lsm_file *shared;
	char path[600];
	int id, failures;
};

/* Each thread appends to its own file and fills its own stripe of a
 * shared one, reading everything back as it goes. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t rec[32], got[32];
	lsm_file *f;

	if (env_open(w->env, w->path, LSM_ENV_WRITE | LSM_ENV_CREATE, &f) < 0) {
		w->failures++;
		return NULL;
	}
	for (int i = 0; i < NROUNDS; i++) {
		memset(rec, (uint8_t)(w->id * NROUNDS + i), sizeof(rec));
		uint64_t off = (uint64_t)i * sizeof(rec);
		uint64_t soff = ((uint64_t)i * NTHREADS + (uint64_t)w->id) * sizeof(rec);
		if (env_pwrite(w->env, f, rec, sizeof(rec), off) < 0 ||
		    env_pwrite(w->env, w->shared, rec, sizeof(rec), soff) < 0 ||
		    env_pread(w->env, f, got, sizeof(got), off) != (ssize_t)sizeof(got) ||
		    memcmp(got, rec, sizeof(rec)) != 0 ||
		    env_pread(w->env, w->shared, got, sizeof(got), soff) != (ssize_t)sizeof(got) ||
		    memcmp(got, rec, sizeof(rec)) != 0)
			w->failures++;
	}
	if (env_close(w->env, f) < 0)
		w->failures++;
	return NULL;
}

static void test_env_threads(void **state)
{
	struct fx *x = *state;
	struct worker w[NTHREADS];
	pthread_t tid[NTHREADS];
	lsm_file *shared;
	uint64_t size;

	assert_int_equal(env_open(x->env, P(x, "shared"), LSM_ENV_WRITE | LSM_ENV_CREATE, &shared), 0);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .env = x->env, .shared = shared, .id = i };
		snprintf(w[i].path, sizeof(w[i].path), "%s/t%d", x->dir, i);
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		assert_int_equal(file_len(x->env, w[i].path), NROUNDS * 32);
	}
	assert_int_equal(env_size(x->env, shared, &size), 0);
	assert_int_equal(size, NTHREADS * NROUNDS * 32);
	assert_int_equal(env_close(x->env, shared), 0);
}

/* ---- the fault env ---------------------------------------------------- */

static lsm_env *base_of(struct fx *x)
{
	return x->mem ? x->mem : lsm_env_posix();
}

static lsm_file *open_new(struct fx *x, const char *name)
{
	lsm_file *f;

	assert_int_equal(env_open(x->env, P(x, name), LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f), 0);
	return f;
}

static void fill(lsm_env *e, lsm_file *f, int c, size_t n, uint64_t off)
{
	uint8_t buf[256];

	assert_true(n <= sizeof(buf));
	memset(buf, c, n);
	assert_int_equal(env_pwrite(e, f, buf, n, off), 0);
}

/* Each kind fails on its nth operation with the chosen errno, changes
 * nothing, and fires once. */
static void test_env_fault_fail_nth(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	lsm_file *f = open_new(x, "f"), *g = NULL;
	uint8_t buf[8];
	uint64_t size;

	assert_int_equal(env_pwrite(e, f, "abcd", 4, 0), 0);

	env_fault_fail_nth(e, FAULT_OPEN, 2, EMFILE);
	assert_int_equal(env_open(e, P(x, "f"), LSM_ENV_READ, &g), 0);
	assert_int_equal(env_close(e, g), 0);
	g = NULL;
	assert_int_equal(env_open(e, P(x, "g"), LSM_ENV_WRITE | LSM_ENV_CREATE, &g), -EMFILE);
	assert_null(g);
	assert_int_equal(env_file_exists(e, P(x, "g")), 0);
	assert_int_equal(env_open(e, P(x, "g"), LSM_ENV_WRITE | LSM_ENV_CREATE, &g), 0);
	assert_int_equal(env_close(e, g), 0);

	env_fault_fail_nth(e, FAULT_READ, 1, EIO);
	assert_int_equal(env_pread(e, f, buf, 4, 0), -EIO);
	assert_int_equal(env_pread(e, f, buf, 4, 0), 4);

	env_fault_fail_nth(e, FAULT_WRITE, 1, ENOSPC);
	assert_int_equal(env_pwrite(e, f, "xyz", 3, 4), -ENOSPC);
	assert_int_equal(env_pwrite(e, f, "XY", 2, 0), 0);
	assert_int_equal(env_size(e, f, &size), 0);
	assert_int_equal(size, 4);

	env_fault_fail_nth(e, FAULT_SYNC, 1, EIO);
	assert_int_equal(env_sync(e, f), -EIO);
	assert_int_equal(env_sync(e, f), 0);

	env_fault_fail_nth(e, FAULT_TRUNCATE, 1, EPERM);
	assert_int_equal(env_truncate(e, f, 1), -EPERM);
	assert_int_equal(env_size(e, f, &size), 0);
	assert_int_equal(size, 4);
	assert_int_equal(env_close(e, f), 0);

	env_fault_fail_nth(e, FAULT_RENAME, 1, EXDEV);
	assert_int_equal(env_rename(e, P(x, "f"), P(x, "h")), -EXDEV);
	assert_int_equal(env_file_exists(e, P(x, "h")), 0);
	expect_contents(e, P(x, "f"), "XYcd", 4);

	env_fault_fail_nth(e, FAULT_UNLINK, 1, EACCES);
	assert_int_equal(env_unlink(e, P(x, "g")), -EACCES);
	assert_int_equal(env_file_exists(e, P(x, "g")), 1);
	assert_int_equal(env_unlink(e, P(x, "g")), 0);

	env_fault_fail_nth(e, FAULT_SYNC_DIR, 1, EIO);
	assert_int_equal(env_sync_dir(e, x->dir), -EIO);
	assert_non_null(strstr(lsm_last_error(), "injected"));
	assert_int_equal(env_sync_dir(e, x->dir), 0);

	/* n == 0 disarms a rule. */
	env_fault_fail_nth(e, FAULT_RENAME, 1, EIO);
	env_fault_fail_nth(e, FAULT_RENAME, 0, EIO);
	assert_int_equal(env_rename(e, P(x, "f"), P(x, "h")), 0);
}

/* A failed sync or sync_dir makes nothing durable. */
static void test_env_fault_failed_sync_not_durable(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	lsm_file *s = open_new(x, "s"), *n;

	assert_int_equal(env_sync_dir(e, x->dir), 0);
	fill(e, s, 's', 40, 0);
	env_fault_fail_nth(e, FAULT_SYNC, 1, EIO);
	assert_int_equal(env_sync(e, s), -EIO);
	assert_int_equal(env_close(e, s), 0);
	n = open_new(x, "n");
	fill(e, n, 'n', 10, 0);
	assert_int_equal(env_sync(e, n), 0);
	assert_int_equal(env_close(e, n), 0);
	env_fault_fail_nth(e, FAULT_SYNC_DIR, 1, EIO);
	assert_int_equal(env_sync_dir(e, x->dir), -EIO);
	assert_int_equal(env_fault_crash(e), 0);
	assert_int_equal(file_len(e, P(x, "s")), 0);
	assert_int_equal(env_file_exists(e, P(x, "n")), 0);
}

static void test_env_fault_counts_and_any(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	uint8_t buf[4];
	lsm_file *f;

	env_fault_reset_counts(e);
	f = open_new(x, "f");
	fill(e, f, 'f', 4, 0);
	assert_int_equal(env_sync(e, f), 0);
	assert_int_equal(env_pread(e, f, buf, 4, 0), 4);
	assert_int_equal(env_truncate(e, f, 2), 0);
	assert_int_equal(env_close(e, f), 0);
	assert_int_equal(env_rename(e, P(x, "f"), P(x, "g")), 0);
	assert_int_equal(env_sync_dir(e, x->dir), 0);
	assert_int_equal(env_unlink(e, P(x, "g")), 0);
	for (int op = 0; op < FAULT_OP_COUNT; op++)
		assert_int_equal(env_fault_count(e, (enum env_fault_op)op), 1);
	assert_int_equal(env_fault_count(e, FAULT_ANY), FAULT_OP_COUNT);
	env_fault_reset_counts(e);
	assert_int_equal(env_fault_count(e, FAULT_ANY), 0);

	/* env_write_file_atomic: temp, write, sync, rename, sync_dir. */
	assert_int_equal(env_write_file_atomic(e, x->dir, "C", "1", 1), 0);
	assert_int_equal(env_fault_count(e, FAULT_OPEN), 1);
	assert_int_equal(env_fault_count(e, FAULT_WRITE), 1);
	assert_int_equal(env_fault_count(e, FAULT_SYNC), 1);
	assert_int_equal(env_fault_count(e, FAULT_RENAME), 1);
	assert_int_equal(env_fault_count(e, FAULT_SYNC_DIR), 1);
	assert_int_equal(env_fault_count(e, FAULT_ANY), 5);
	env_fault_reset_counts(e);

	/* The third operation of any kind fails, whatever it is. */
	env_fault_fail_nth(e, FAULT_ANY, 3, EIO);
	f = open_new(x, "f");
	fill(e, f, 'f', 4, 0);
	assert_int_equal(env_pread(e, f, buf, 4, 0), -EIO);
	assert_int_equal(env_pread(e, f, buf, 4, 0), 4);
	assert_int_equal(env_close(e, f), 0);
	assert_int_equal(env_fault_count(e, FAULT_READ), 2);
}

/* A failed step of env_write_file_atomic leaves the old file and no temp. */
static void test_env_fault_atomic_write_fails(void **state)
{
	static const enum env_fault_op steps[] = { FAULT_OPEN, FAULT_WRITE, FAULT_SYNC, FAULT_RENAME };
	struct fx *x = *state;
	lsm_env *e = x->env;

	assert_int_equal(env_write_file_atomic(e, x->dir, "C", "old", 3), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		env_fault_fail_nth(e, steps[i], 1, EIO);
		assert_int_equal(env_write_file_atomic(e, x->dir, "C", "new!", 4), -EIO);
		expect_contents(e, P(x, "C"), "old", 3);
		assert_int_equal(env_file_exists(e, P(x, "C.tmp")), 0);
	}
	/* A failed sync_dir comes after the rename: the new contents are in. */
	env_fault_fail_nth(e, FAULT_SYNC_DIR, 1, EIO);
	assert_int_equal(env_write_file_atomic(e, x->dir, "C", "new!", 4), -EIO);
	expect_contents(e, P(x, "C"), "new!", 4);
}

static void test_env_fault_short_write(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	lsm_file *f = open_new(x, "f");

	env_fault_short_write(e, 2, 3);
	assert_int_equal(env_pwrite(e, f, "aaaa", 4, 0), 0);
	assert_int_equal(env_pwrite(e, f, "0123456789", 10, 4), -EIO);
	assert_int_equal(env_pwrite(e, f, "zz", 2, 7), 0);
	assert_int_equal(env_close(e, f), 0);
	expect_contents(e, P(x, "f"), "aaaa012zz", 9);
}

static void test_env_fault_disk_full(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	lsm_file *f = open_new(x, "f");
	uint64_t size;

	env_fault_disk_full_after(e, 10);
	fill(e, f, 'a', 6, 0);
	uint8_t six[6] = "bbbbbb";
	assert_int_equal(env_pwrite(e, f, six, 6, 6), -ENOSPC);
	assert_int_equal(env_pwrite(e, f, "c", 1, 10), -ENOSPC);
	assert_int_equal(env_size(e, f, &size), 0);
	assert_int_equal(size, 10);     /* the part that fitted landed */
	env_fault_clear(e);
	fill(e, f, 'd', 100, 10);
	env_fault_disk_full_after(e, 5);
	env_fault_disk_full_after(e, 0);
	fill(e, f, 'e', 100, 110);
	assert_int_equal(env_size(e, f, &size), 0);
	assert_int_equal(size, 210);
	assert_int_equal(env_close(e, f), 0);
}

/* Power cut after the second sync, then crash: synced data stays, the
 * unsynced tail goes, and so do files whose creation no sync_dir covered. */
static void test_env_fault_power_cut(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	struct lsm_env_statfs st;
	lsm_file *a, *b, *c, *old, *t, *g = NULL;
	lsm_lock *l = NULL;
	uint8_t buf[200];
	struct names nm = { .n = 0 };

	put_file(base_of(x), P(x, "old"), "orig", 4);       /* never seen by e */
	assert_int_equal(env_mkdir(e, P(x, "sub")), 0);
	a = open_new(x, "a");
	assert_int_equal(env_sync_dir(e, x->dir), 0);
	fill(e, a, 'A', 100, 0);
	assert_int_equal(env_sync(e, a), 0);
	fill(e, a, 'a', 50, 100);
	b = open_new(x, "sub/b");                           /* sub is never synced */
	fill(e, b, 'B', 20, 0);
	assert_int_equal(env_sync(e, b), 0);
	c = open_new(x, "c");
	fill(e, c, 'C', 30, 0);
	assert_int_equal(env_sync(e, c), 0);
	assert_int_equal(env_sync_dir(e, x->dir), 0);
	fill(e, c, 'c', 5, 30);
	assert_int_equal(env_write_file_atomic(e, x->dir, "d", "durable", 7), 0);
	assert_int_equal(env_open(e, P(x, "old"), LSM_ENV_WRITE, &old), 0);
	fill(e, old, '+', 2, 4);
	t = open_new(x, "tmp");
	fill(e, t, 'T', 10, 0);
	assert_int_equal(env_sync(e, t), 0);
	assert_int_equal(env_rename(e, P(x, "tmp"), P(x, "r")), 0);   /* durable once done */
	fill(e, t, 't', 5, 10);

	env_fault_power_cut_after_sync(e, 2);
	fill(e, a, 'x', 1, 150);
	assert_int_equal(env_sync(e, a), 0);
	assert_false(env_fault_is_down(e));
	fill(e, a, 'y', 1, 151);
	assert_int_equal(env_sync(e, a), 0);                /* completes, then the cut */
	assert_true(env_fault_is_down(e));

	assert_int_equal(env_pwrite(e, a, "z", 1, 152), -EIO);
	assert_int_equal(env_pread(e, a, buf, 1, 0), -EIO);
	assert_int_equal(env_sync(e, a), -EIO);
	assert_int_equal(env_truncate(e, a, 0), -EIO);
	assert_int_equal(env_open(e, P(x, "new"), LSM_ENV_WRITE | LSM_ENV_CREATE, &g), -EIO);
	assert_int_equal(env_rename(e, P(x, "a"), P(x, "z")), -EIO);
	assert_int_equal(env_unlink(e, P(x, "a")), -EIO);
	assert_int_equal(env_sync_dir(e, x->dir), -EIO);
	assert_int_equal(env_mkdir(e, P(x, "dir2")), -EIO);
	assert_int_equal(env_file_exists(e, P(x, "a")), -EIO);
	assert_int_equal(env_list_dir(e, x->dir, collect, &nm), -EIO);
	assert_int_equal(env_statfs(e, x->dir, &st), -EIO);
	assert_int_equal(env_lock(e, P(x, "LOCK"), &l), -EIO);
	assert_null(g);
	assert_null(l);
	assert_int_equal(env_close(e, a), -EIO);            /* still released */
	assert_int_equal(env_close(e, b), -EIO);
	assert_int_equal(env_close(e, c), -EIO);
	assert_int_equal(env_close(e, old), -EIO);
	assert_int_equal(env_close(e, t), -EIO);

	assert_int_equal(env_fault_crash(e), 0);
	assert_false(env_fault_is_down(e));
	assert_int_equal(file_len(e, P(x, "a")), 152);
	assert_int_equal(env_open(e, P(x, "a"), LSM_ENV_READ, &a), 0);
	assert_int_equal(env_pread(e, a, buf, sizeof(buf), 0), 152);
	assert_int_equal(env_close(e, a), 0);
	for (int i = 0; i < 152; i++)
		assert_int_equal(buf[i], i < 100 ? 'A' : i < 150 ? 'a' : i == 150 ? 'x' : 'y');
	assert_int_equal(env_file_exists(e, P(x, "sub/b")), 0);
	assert_int_equal(env_file_exists(e, P(x, "sub")), 1);
	expect_contents(e, P(x, "c"), "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", 30);
	expect_contents(e, P(x, "d"), "durable", 7);
	expect_contents(e, P(x, "old"), "orig", 4);
	expect_contents(e, P(x, "r"), "TTTTTTTTTT", 10);
	assert_int_equal(env_file_exists(e, P(x, "tmp")), 0);
	/* Usable again, as after a reboot. */
	put_file(e, P(x, "after"), "ok", 2);
	expect_contents(e, P(x, "after"), "ok", 2);
}

/* Crash with no power cut: unsynced creations vanish, unlinks stay done,
 * and a truncate lowers what survives. */
static void test_env_fault_crash_model(void **state)
{
	struct fx *x = *state;
	lsm_env *e = x->env;
	lsm_file *k = open_new(x, "k"), *t2 = open_new(x, "t2"), *u;

	assert_int_equal(env_sync_dir(e, x->dir), 0);
	u = open_new(x, "u");           /* created after the last sync_dir */
	fill(e, u, 'u', 10, 0);
	assert_int_equal(env_sync(e, u), 0);
	assert_int_equal(env_close(e, u), 0);
	assert_int_equal(env_sync(e, k), 0);
	assert_int_equal(env_close(e, k), 0);
	assert_int_equal(env_unlink(e, P(x, "k")), 0);
	fill(e, t2, '1', 100, 0);
	assert_int_equal(env_sync(e, t2), 0);
	assert_int_equal(env_truncate(e, t2, 40), 0);
	fill(e, t2, '2', 10, 40);
	assert_int_equal(env_close(e, t2), 0);
	/* Renaming over a tracked file forgets the old one's state. */
	put_file(e, P(x, "v"), "vvvv", 4);
	assert_int_equal(env_rename(e, P(x, "t2"), P(x, "v")), 0);

	assert_int_equal(env_fault_crash(e), 0);
	assert_int_equal(env_file_exists(e, P(x, "u")), 0);
	assert_int_equal(env_file_exists(e, P(x, "k")), 0);
	assert_int_equal(env_file_exists(e, P(x, "t2")), 0);
	assert_int_equal(file_len(e, P(x, "v")), 40);
	/* A second crash with nothing new to forget changes nothing. */
	assert_int_equal(env_fault_crash(e), 0);
	assert_int_equal(file_len(e, P(x, "v")), 40);
}

#define FAULT_TESTS \
	FAULT(fault_fail_nth), FAULT(fault_failed_sync_not_durable), \
	FAULT(fault_counts_and_any), FAULT(fault_atomic_write_fails), FAULT(fault_short_write), FAULT(fault_disk_full), \
	FAULT(fault_power_cut), FAULT(fault_crash_model)

#define BOTH(fn) \
	{ "test_env_" #fn "_posix", test_env_##fn, setup_posix, teardown, NULL }, \
	{ "test_env_" #fn "_mem", test_env_##fn, setup_mem, teardown, NULL }
#define FAULT(fn) \
	{ "test_env_" #fn "_posix", test_env_##fn, setup_fault_posix, teardown, NULL }, \
	{ "test_env_" #fn "_mem", test_env_##fn, setup_fault_mem, teardown, NULL }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(read_write), BOTH(open_errors), BOTH(truncate), BOTH(rename),
		BOTH(unlink), BOTH(dirs), BOTH(lock_busy), BOTH(statfs),
		BOTH(read_exact_short), BOTH(write_file_atomic), BOTH(threads),
		{ "test_env_mem_namespace", test_env_mem_namespace, setup_mem, teardown, NULL },
		/* The fault env passes the whole battery through unchanged. */
		FAULT(read_write), FAULT(rename), FAULT(unlink), FAULT(dirs),
		FAULT(lock_busy), FAULT(write_file_atomic), FAULT(threads),
		FAULT_TESTS
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
