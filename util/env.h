/*
 * env.h - the one door to the operating system.
 *
 * Every byte lsm/ and vlog/ read or write, every file they create, rename or
 * delete, goes through a struct lsm_env.  The default is the POSIX env
 * (env_posix.c); tests swap in an in-memory env (tests/lib/env_mem.c) or wrap
 * either in the fault-injecting env (tests/lib/env_fault.c), which can fail
 * the Nth operation of a kind, write short, or cut the power and forget
 * everything that was not synced.
 *
 * Conventions:
 *   1. Every op returns 0 (or a count >= 0) on success and -errno on failure.
 *   2. pwrite is all-or-error: a short write is retried inside the env; if the
 *      env cannot finish it returns -errno (the file may then hold a prefix).
 *   3. pread returns the number of bytes read, which is short only at end of
 *      file.
 *   4. Paths are full paths built by the caller (dir + "/" + name).
 *   5. An env is thread-safe and outlives every handle opened through it.
 */
#ifndef LSM_UTIL_ENV_H
#define LSM_UTIL_ENV_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct lsm_env lsm_env;
typedef struct lsm_file lsm_file;   /* opaque, owned by the env that made it */
typedef struct lsm_lock lsm_lock;   /* opaque, an flock held on a path */

/* Flags for open. */
#define LSM_ENV_READ    0x1     /* open an existing file for reading */
#define LSM_ENV_WRITE   0x2     /* open for writing (and reading) */
#define LSM_ENV_CREATE  0x4     /* create if missing (with WRITE) */
#define LSM_ENV_TRUNC   0x8     /* truncate to zero (with WRITE) */
#define LSM_ENV_EXCL    0x10    /* fail with -EEXIST if it exists (with CREATE) */

struct lsm_env_statfs {
	uint64_t total_bytes;
	uint64_t free_bytes;
	uint64_t avail_bytes;
	uint64_t total_files;
	uint64_t free_files;
};

/* Called once per directory entry by list_dir (not "." or ".."); a negative
 * return stops the listing and is returned by list_dir. */
typedef int (*lsm_env_dir_fn)(void *arg, const char *name);

struct lsm_env_ops {
	int (*open)(void *ctx, const char *path, int flags, lsm_file **ret_file);
	int (*close)(void *ctx, lsm_file *f);
	ssize_t (*pread)(void *ctx, lsm_file *f, void *buf, size_t n, uint64_t off);
	int (*pwrite)(void *ctx, lsm_file *f, const void *buf, size_t n, uint64_t off);
	int (*sync)(void *ctx, lsm_file *f);          /* fdatasync-strength: data + size */
	int (*truncate)(void *ctx, lsm_file *f, uint64_t size);
	int (*size)(void *ctx, lsm_file *f, uint64_t *ret_size);
	int (*rename)(void *ctx, const char *from, const char *to);
	int (*unlink)(void *ctx, const char *path);
	int (*mkdir)(void *ctx, const char *path);    /* -EEXIST if it exists */
	int (*rmdir)(void *ctx, const char *path);
	int (*sync_dir)(void *ctx, const char *path); /* makes creates/renames/unlinks in it durable */
	int (*list_dir)(void *ctx, const char *path, lsm_env_dir_fn fn, void *arg);
	int (*lock)(void *ctx, const char *path, lsm_lock **ret_lock); /* -EBUSY if held elsewhere */
	int (*unlock)(void *ctx, lsm_lock *l);
	int (*statfs)(void *ctx, const char *path, struct lsm_env_statfs *ret);
	int (*file_exists)(void *ctx, const char *path); /* 1 yes, 0 no, <0 error */
	/* Optional (NULL: not supported, callers fall back to pread): maps the
	 * first size bytes of f read-only.  The mapping outlives the handle's
	 * close until munmap.  Readers of immutable files (SSTables) use it to
	 * read blocks without a system call each. */
	int (*mmap)(void *ctx, lsm_file *f, uint64_t size, const void **ret_addr);
	int (*munmap)(void *ctx, const void *addr, uint64_t size);
};

struct lsm_env {
	const struct lsm_env_ops *ops;
	void *ctx;
};

/* The process-wide POSIX env (static storage, never freed). */
lsm_env *lsm_env_posix(void);

/* Thin wrappers so call sites read naturally. */
static inline int env_open(lsm_env *e, const char *p, int fl, lsm_file **r) { return e->ops->open(e->ctx, p, fl, r); }
static inline int env_close(lsm_env *e, lsm_file *f) { return f ? e->ops->close(e->ctx, f) : 0; }
static inline ssize_t env_pread(lsm_env *e, lsm_file *f, void *b, size_t n, uint64_t o) { return e->ops->pread(e->ctx, f, b, n, o); }
static inline int env_pwrite(lsm_env *e, lsm_file *f, const void *b, size_t n, uint64_t o) { return e->ops->pwrite(e->ctx, f, b, n, o); }
static inline int env_sync(lsm_env *e, lsm_file *f) { return e->ops->sync(e->ctx, f); }
static inline int env_truncate(lsm_env *e, lsm_file *f, uint64_t s) { return e->ops->truncate(e->ctx, f, s); }
static inline int env_size(lsm_env *e, lsm_file *f, uint64_t *r) { return e->ops->size(e->ctx, f, r); }
static inline int env_rename(lsm_env *e, const char *a, const char *b) { return e->ops->rename(e->ctx, a, b); }
static inline int env_unlink(lsm_env *e, const char *p) { return e->ops->unlink(e->ctx, p); }
static inline int env_mkdir(lsm_env *e, const char *p) { return e->ops->mkdir(e->ctx, p); }
static inline int env_rmdir(lsm_env *e, const char *p) { return e->ops->rmdir(e->ctx, p); }
static inline int env_sync_dir(lsm_env *e, const char *p) { return e->ops->sync_dir(e->ctx, p); }
static inline int env_list_dir(lsm_env *e, const char *p, lsm_env_dir_fn fn, void *a) { return e->ops->list_dir(e->ctx, p, fn, a); }
static inline int env_lock(lsm_env *e, const char *p, lsm_lock **r) { return e->ops->lock(e->ctx, p, r); }
static inline int env_unlock(lsm_env *e, lsm_lock *l) { return l ? e->ops->unlock(e->ctx, l) : 0; }
static inline int env_statfs(lsm_env *e, const char *p, struct lsm_env_statfs *r) { return e->ops->statfs(e->ctx, p, r); }
static inline int env_file_exists(lsm_env *e, const char *p) { return e->ops->file_exists(e->ctx, p); }
static inline int env_mmap(lsm_env *e, lsm_file *f, uint64_t n, const void **r) { return e->ops->mmap ? e->ops->mmap(e->ctx, f, n, r) : -ENOTSUP; }
static inline int env_munmap(lsm_env *e, const void *a, uint64_t n) { return e->ops->munmap ? e->ops->munmap(e->ctx, a, n) : -ENOTSUP; }

/* Reads exactly n bytes at off: -EUCLEAN (with a message naming path) if the
 * file ends first.  Defined in env_posix.c, works on any env. */
int env_read_exact(lsm_env *e, lsm_file *f, const char *path, void *buf, size_t n, uint64_t off);

/* Reads a whole (small) file into a malloc'd buffer the caller frees. */
int env_read_file(lsm_env *e, const char *path, void **ret_buf, size_t *ret_len);

/* Writes path atomically: temp file, sync, rename, sync of the directory,
 * so the new contents survive power loss and the old ones stay until then. */
int env_write_file_atomic(lsm_env *e, const char *dir, const char *name, const void *buf, size_t len);

#endif
