/*
 * env_posix.c - the default env: every op of struct lsm_env_ops on top of
 * POSIX system calls, plus the env-generic helpers declared at the bottom of
 * env.h (env_read_exact, env_read_file, env_write_file_atomic).  This is the
 * only file in the project that calls open/pread/pwrite/fsync/rename and
 * friends; everything else goes through an lsm_env so that tests can swap in
 * the in-memory or fault-injecting env.  Reads and writes loop over EINTR and
 * short transfers so callers see all-or-error I/O (env.h conventions 2, 3).
 * Every failure records a message naming the path through lsm_errf.
 */
#include "env.h"
#include "errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct lsm_file {
	int fd;
	char path[];                /* kept only for error messages */
};

/*
 * Every held lock is also kept in this process-wide list, checked before
 * flock().  On local filesystems flock() alone already refuses a second lock
 * taken through another open() in the same process (locks belong to open
 * file descriptions), but on NFS Linux emulates flock() with POSIX record
 * locks, which are per process, so a second lsm_db in this process would be
 * granted the lock.  Entries are keyed by (device, inode) rather than by the
 * path string so that "db/LOCK" and "./db/LOCK" are the same lock.
 */
struct lsm_lock {
	int fd;
	dev_t dev;
	ino_t ino;
	struct lsm_lock *next;      /* protected by held_locks_mu */
	char path[];
};

static pthread_mutex_t held_locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lsm_lock *held_locks;   /* protected by held_locks_mu */

static int posix_open(void *ctx, const char *path, int flags, lsm_file **ret_file)
{
	int oflags = O_CLOEXEC;
	size_t plen;
	lsm_file *f;
	int fd;

	(void)ctx;
	if (flags & ~(LSM_ENV_READ | LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC | LSM_ENV_EXCL))
		return lsm_errf(-EINVAL, "%s: unknown open flags 0x%x", path, flags);
	if (flags & LSM_ENV_WRITE)
		oflags |= O_RDWR;
	else if (flags & LSM_ENV_READ)
		oflags |= O_RDONLY;
	else
		return lsm_errf(-EINVAL, "%s: open needs LSM_ENV_READ or LSM_ENV_WRITE", path);
	if (flags & LSM_ENV_CREATE)
		oflags |= O_CREAT;
	if (flags & LSM_ENV_TRUNC)
		oflags |= O_TRUNC;
	if (flags & LSM_ENV_EXCL)
		oflags |= O_EXCL;

	plen = strlen(path);
	f = malloc(sizeof(*f) + plen + 1);
	if (!f)
		return -ENOMEM;
	memcpy(f->path, path, plen + 1);
	do
		fd = open(path, oflags, 0644);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int err = -errno;
		free(f);
		return lsm_errf(err, "%s: open", path);
	}
	f->fd = fd;
	*ret_file = f;
	return 0;
}

static int posix_close(void *ctx, lsm_file *f)
{
	int r = 0;

	(void)ctx;
	/* No retry on EINTR: Linux has released the descriptor either way, and a
	 * second close could hit a descriptor another thread just opened. */
	if (close(f->fd) < 0 && errno != EINTR)
		r = lsm_errf(-errno, "%s: close", f->path);
	free(f);
	return r;
}

static ssize_t posix_pread(void *ctx, lsm_file *f, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	(void)ctx;
	while (done < n) {
		ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return lsm_errf(-errno, "%s: read of %zu bytes at offset %llu",
					f->path, n, (unsigned long long)off);
		}
		if (r == 0)
			break;          /* end of file */
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int posix_pwrite(void *ctx, lsm_file *f, const void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	(void)ctx;
	while (done < n) {
		ssize_t r = pwrite(f->fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return lsm_errf(-errno, "%s: write of %zu bytes at offset %llu",
					f->path, n, (unsigned long long)(off + done));
		}
		/* pwrite returning 0 for a non-empty buffer would loop forever. */
		if (r == 0)
			return lsm_errf(-EIO, "%s: write made no progress at offset %llu",
					f->path, (unsigned long long)(off + done));
		done += (size_t)r;
	}
	return 0;
}

static int posix_sync(void *ctx, lsm_file *f)
{
	int r;

	(void)ctx;
	do
		r = fdatasync(f->fd);
	while (r < 0 && errno == EINTR);
	return r < 0 ? lsm_errf(-errno, "%s: fdatasync", f->path) : 0;
}

static int posix_truncate(void *ctx, lsm_file *f, uint64_t size)
{
	int r;

	(void)ctx;
	do
		r = ftruncate(f->fd, (off_t)size);
	while (r < 0 && errno == EINTR);
	return r < 0 ? lsm_errf(-errno, "%s: truncate to %llu", f->path, (unsigned long long)size) : 0;
}

static int posix_size(void *ctx, lsm_file *f, uint64_t *ret_size)
{
	struct stat st;

	(void)ctx;
	if (fstat(f->fd, &st) < 0)
		return lsm_errf(-errno, "%s: fstat", f->path);
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

static int posix_rename(void *ctx, const char *from, const char *to)
{
	(void)ctx;
	if (rename(from, to) < 0)
		return lsm_errf(-errno, "rename %s to %s", from, to);
	return 0;
}

static int posix_unlink(void *ctx, const char *path)
{
	(void)ctx;
	if (unlink(path) < 0)
		return lsm_errf(-errno, "%s: unlink", path);
	return 0;
}

static int posix_mkdir(void *ctx, const char *path)
{
	(void)ctx;
	if (mkdir(path, 0755) < 0)
		return lsm_errf(-errno, "%s: mkdir", path);
	return 0;
}

static int posix_rmdir(void *ctx, const char *path)
{
	(void)ctx;
	if (rmdir(path) < 0)
		return lsm_errf(-errno, "%s: rmdir", path);
	return 0;
}

/* fsync of the directory itself is what makes the entries created, renamed
 * or removed in it survive a power cut; fdatasync of the files does not. */
static int posix_sync_dir(void *ctx, const char *path)
{
	int fd, r;

	(void)ctx;
	do
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return lsm_errf(-errno, "%s: open directory", path);
	do
		r = fsync(fd);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		r = lsm_errf(-errno, "%s: fsync directory", path);
	close(fd);
	return r;
}

static int posix_list_dir(void *ctx, const char *path, lsm_env_dir_fn fn, void *arg)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	(void)ctx;
	d = opendir(path);
	if (!d)
		return lsm_errf(-errno, "%s: opendir", path);
	for (;;) {
		errno = 0;    /* readdir reports errors only through errno */
		de = readdir(d);
		if (!de) {
			if (errno)
				r = lsm_errf(-errno, "%s: readdir", path);
			break;
		}
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
					     (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		r = fn(arg, de->d_name);
		if (r < 0)
			break;
		r = 0;
	}
	closedir(d);
	return r;
}

static int posix_lock(void *ctx, const char *path, lsm_lock **ret_lock)
{
	size_t plen = strlen(path);
	struct lsm_lock *l, *it;
	struct stat st;
	int r;

	(void)ctx;
	l = malloc(sizeof(*l) + plen + 1);
	if (!l)
		return -ENOMEM;
	memcpy(l->path, path, plen + 1);
	do
		l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	while (l->fd < 0 && errno == EINTR);
	if (l->fd < 0) {
		r = lsm_errf(-errno, "%s: open lock file", path);
		free(l);
		return r;
	}
	if (fstat(l->fd, &st) < 0) {
		r = lsm_errf(-errno, "%s: fstat lock file", path);
		goto fail;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;

	/* The list check and flock happen under one mutex hold so two threads
	 * racing for the same lock cannot both pass the check. */
	pthread_mutex_lock(&held_locks_mu);
	for (it = held_locks; it; it = it->next) {
		if (it->dev == l->dev && it->ino == l->ino) {
			pthread_mutex_unlock(&held_locks_mu);
			r = lsm_errf(-EBUSY, "%s: already locked by this process", path);
			goto fail;
		}
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		pthread_mutex_unlock(&held_locks_mu);
		if (err == EWOULDBLOCK)
			r = lsm_errf(-EBUSY, "%s: locked by another process", path);
		else
			r = lsm_errf(-err, "%s: flock", path);
		goto fail;
	}
	l->next = held_locks;
	held_locks = l;
	pthread_mutex_unlock(&held_locks_mu);
	*ret_lock = l;
	return 0;

fail:
	close(l->fd);
	free(l);
	return r;
}

static int posix_unlock(void *ctx, lsm_lock *l)
{
	struct lsm_lock **pp;
	int r = 0;

	(void)ctx;
	/* close() releases the flock.  It happens under the mutex so that a
	 * thread which no longer finds the entry in the list also finds the
	 * flock gone, rather than failing with a spurious -EBUSY. */
	pthread_mutex_lock(&held_locks_mu);
	for (pp = &held_locks; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	if (close(l->fd) < 0 && errno != EINTR)
		r = lsm_errf(-errno, "%s: close lock file", l->path);
	pthread_mutex_unlock(&held_locks_mu);
	free(l);
	return r;
}

static int posix_statfs(void *ctx, const char *path, struct lsm_env_statfs *ret)
{
	struct statvfs sv;

	(void)ctx;
	if (statvfs(path, &sv) < 0)
		return lsm_errf(-errno, "%s: statvfs", path);
	ret->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	ret->free_bytes = (uint64_t)sv.f_bfree * sv.f_frsize;
	ret->avail_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	ret->total_files = sv.f_files;
	ret->free_files = sv.f_ffree;
	return 0;
}

static int posix_file_exists(void *ctx, const char *path)
{
	struct stat st;

	(void)ctx;
	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	return lsm_errf(-errno, "%s: stat", path);
}

static int posix_mmap(void *ctx, lsm_file *f, uint64_t size, const void **ret_addr)
{
	(void)ctx;
	if (size == 0 || size > (uint64_t)SIZE_MAX)
		return -EINVAL;
	void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED)
		return lsm_errf(-errno, "%s: mmap", f->path);
	*ret_addr = p;
	return 0;
}

static int posix_munmap(void *ctx, const void *addr, uint64_t size)
{
	(void)ctx;
	return munmap((void *)addr, (size_t)size) < 0 ? -errno : 0;
}

static const struct lsm_env_ops posix_ops = {
	.open = posix_open,
	.close = posix_close,
	.pread = posix_pread,
	.pwrite = posix_pwrite,
	.sync = posix_sync,
	.truncate = posix_truncate,
	.size = posix_size,
	.rename = posix_rename,
	.unlink = posix_unlink,
	.mkdir = posix_mkdir,
	.rmdir = posix_rmdir,
	.sync_dir = posix_sync_dir,
	.list_dir = posix_list_dir,
	.lock = posix_lock,
	.unlock = posix_unlock,
	.statfs = posix_statfs,
	.file_exists = posix_file_exists,
	.mmap = posix_mmap,
	.munmap = posix_munmap,
};

static lsm_env posix_env = { &posix_ops, NULL };

lsm_env *lsm_env_posix(void)
{
	return &posix_env;
}

/* ---- helpers that work on any env ------------------------------------- */

int env_read_exact(lsm_env *e, lsm_file *f, const char *path, void *buf, size_t n, uint64_t off)
{
	ssize_t r = env_pread(e, f, buf, n, off);

	if (r < 0)
		return (int)r;
	if ((size_t)r < n)
		return lsm_errf(-EUCLEAN, "%s: file ends %zd bytes into a %zu-byte read at offset %llu",
				path, r, n, (unsigned long long)off);
	return 0;
}

int env_read_file(lsm_env *e, const char *path, void **ret_buf, size_t *ret_len)
{
	lsm_file *f;
	uint64_t size;
	void *buf = NULL;
	int r, rc;

	r = env_open(e, path, LSM_ENV_READ, &f);
	if (r < 0)
		return r;
	r = env_size(e, f, &size);
	if (r == 0 && size > SIZE_MAX - 1)
		r = lsm_errf(-EFBIG, "%s: %llu bytes is too large to read whole",
			     path, (unsigned long long)size);
	if (r == 0) {
		buf = malloc(size ? (size_t)size : 1);    /* malloc(0) may return NULL */
		if (!buf)
			r = -ENOMEM;
	}
	if (r == 0)
		r = env_read_exact(e, f, path, buf, (size_t)size, 0);
	rc = env_close(e, f);
	if (r == 0)
		r = rc;
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_len = (size_t)size;
	return 0;
}

static char *path_join(const char *dir, const char *name, const char *suffix)
{
	size_t dl = strlen(dir), nl = strlen(name), sl = strlen(suffix);
	char *p = malloc(dl + 1 + nl + sl + 1);

	if (p) {
		memcpy(p, dir, dl);
		p[dl] = '/';
		memcpy(p + dl + 1, name, nl);
		memcpy(p + dl + 1 + nl, suffix, sl + 1);
	}
	return p;
}

int env_write_file_atomic(lsm_env *e, const char *dir, const char *name, const void *buf, size_t len)
{
	char *tmp = path_join(dir, name, ".tmp");
	char *dst = path_join(dir, name, "");
	lsm_file *f = NULL;
	int r;

	if (!tmp || !dst) {
		r = -ENOMEM;
		goto out;
	}
	r = env_open(e, tmp, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f);
	if (r < 0)
		goto out;
	r = env_pwrite(e, f, buf, len, 0);
	if (r == 0)
		r = env_sync(e, f);
	{
		int rc = env_close(e, f);
		if (r == 0)
			r = rc;
	}
	if (r == 0)
		r = env_rename(e, tmp, dst);
	if (r < 0) {
		/* Leave no half-written temp behind; the old dst is untouched. */
		env_unlink(e, tmp);
		goto out;
	}
	/* The rename is in place; syncing the directory makes it durable. */
	r = env_sync_dir(e, dir);
out:
	free(tmp);
	free(dst);
	return r;
}
