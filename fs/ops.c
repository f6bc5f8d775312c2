/*
 * ops.c - the FUSE low-level adapter: the fuse_lowlevel_ops table.  Every
 * handler only translates: it builds the caller's credentials from the
 * request, calls the matching fs_*() of the core, and replies exactly once
 * (through reply.c's helpers, which map a damaged store's errors to EIO and
 * keep lookup counts right).  All filesystem logic lives in the core (fs.h).
 *
 * Caching is this file's own choice.  Every change to the filesystem comes
 * through this mount, so the kernel's caches stay correct as long as it sees
 * each change: entry, attribute and negative-entry timeouts can be generous
 * (the config's), file pages are kept across opens (keep_cache), and symlink
 * targets are cached.  Readdir results are not cached in the kernel: its
 * cache would resume a listing at a cookie another handle produced, which
 * the core's cursors do not accept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

static struct lsmfs_daemon *req_daemon(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- names and attributes ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_lookup(d->fs, &rc.cred, parent, name, &e);
	lsmfs_cred_done(&rc);
	if (r == -ENOENT && d->cfg->negative_timeout > 0) {
		/* A negative entry: the kernel remembers the miss, and a
		 * create through this mount replaces it. */
		struct fuse_entry_param fe;

		memset(&fe, 0, sizeof(fe));
		fe.entry_timeout = d->cfg->negative_timeout;
		fuse_reply_entry(req, &fe);
	} else if (r < 0) {
		lsmfs_reply_err(req, "lookup", parent, r);
	} else {
		lsmfs_reply_entry(req, &e);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(req_daemon(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct lsmfs_daemon *d = req_daemon(req);

	for (size_t i = 0; i < count; i++)
		fs_forget(d->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct stat st;
	int r;

	(void)fi;
	r = fs_getattr(d->fs, ino, &st);
	if (r < 0)
		lsmfs_reply_err(req, "getattr", ino, r);
	else
		fuse_reply_attr(req, &st, d->cfg->attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	const int known = FS_SET_ATTR_MODE | FS_SET_ATTR_UID | FS_SET_ATTR_GID | FS_SET_ATTR_SIZE |
	                  FS_SET_ATTR_ATIME | FS_SET_ATTR_MTIME | FS_SET_ATTR_ATIME_NOW |
	                  FS_SET_ATTR_MTIME_NOW | FS_SET_ATTR_CTIME | FS_SET_ATTR_KILL_SUIDGID;
	struct lsmfs_daemon *d = req_daemon(req);
	struct fs_file *fh = fi ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	struct req_cred rc;
	struct stat st;
	int r;

	/* Under FUSE_HANDLE_KILLPRIV_V2 (transport.c) the kernel asks to
	 * clear set-id bits (FUSE_SET_ATTR_KILL_SUID, its FATTR_KILL_SUIDGID)
	 * with a chown and with a truncate by a caller without CAP_FSETID;
	 * the core also clears them itself on chown and truncate, as its
	 * setattr documents. */
	lsmfs_cred_init(req, &rc, 1);
	r = fs_setattr(d->fs, &rc.cred, ino, attr, to_set & known, fh, &st);
	lsmfs_cred_done(&rc);
	if (r < 0)
		lsmfs_reply_err(req, "setattr", ino, r);
	else
		fuse_reply_attr(req, &st, d->cfg->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char *target;
	int r;

	r = fs_readlink(req_daemon(req)->fs, ino, &target);
	if (r < 0) {
		lsmfs_reply_err(req, "readlink", ino, r);
		return;
	}
	fuse_reply_readlink(req, target);
	free(target);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_mknod(req_daemon(req)->fs, &rc.cred, parent, name, mode, rdev, &e);
	lsmfs_cred_done(&rc);
	if (r < 0)
		lsmfs_reply_err(req, "mknod", parent, r);
	else
		lsmfs_reply_entry(req, &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_mkdir(req_daemon(req)->fs, &rc.cred, parent, name, mode, &e);
	lsmfs_cred_done(&rc);
	if (r < 0)
		lsmfs_reply_err(req, "mkdir", parent, r);
	else
		lsmfs_reply_entry(req, &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_symlink(req_daemon(req)->fs, &rc.cred, link, parent, name, &e);
	lsmfs_cred_done(&rc);
	if (r < 0)
		lsmfs_reply_err(req, "symlink", parent, r);
	else
		lsmfs_reply_entry(req, &e);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_link(req_daemon(req)->fs, &rc.cred, ino, newparent, newname, &e);
	lsmfs_cred_done(&rc);
	if (r < 0)
		lsmfs_reply_err(req, "link", ino, r);
	else
		lsmfs_reply_entry(req, &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_unlink(req_daemon(req)->fs, &rc.cred, parent, name);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "unlink", parent, r);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_rmdir(req_daemon(req)->fs, &rc.cred, parent, name);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "rmdir", parent, r);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_rename(req_daemon(req)->fs, &rc.cred, parent, name, newparent, newname, flags);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "rename", parent, r);
}

/* ---- files ---- */

static void set_open_flags(struct fuse_file_info *fi, struct fs_file *fh)
{
	fi->fh = (uint64_t)(uintptr_t)fh;
	/* Pages cached by an earlier open are still right: every write
	 * went through this mount and so through the page cache. */
	fi->keep_cache = 1;
	/* There is nothing to write back at close(2), and locks are the
	 * kernel's own, so the FLUSH round trip can be skipped. */
	fi->noflush = 1;
}

/* The open flags to give the core.  With the kernel's write-back cache the
 * kernel reads pages to fill partly written ones, also through handles
 * opened write-only, so those are opened for reading and writing; and it
 * places appends itself, at the end of file as it knows it (with writes
 * still in its cache), so O_APPEND is dropped. */
static int core_open_flags(const struct lsmfs_config *cfg, int flags)
{
	if (!cfg->writeback_cache)
		return flags;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~O_APPEND;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct fuse_entry_param fe;
	struct fs_file *fh;
	struct req_cred rc;
	struct fs_entry e;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_create(d->fs, &rc.cred, parent, name, mode, core_open_flags(d->cfg, fi->flags),
	              &e, &fh);
	/* An existing file the caller may write but not read: as asked. */
	if (r == -EACCES && core_open_flags(d->cfg, fi->flags) != fi->flags)
		r = fs_create(d->fs, &rc.cred, parent, name, mode, fi->flags, &e, &fh);
	lsmfs_cred_done(&rc);
	if (r < 0) {
		lsmfs_reply_err(req, "create", parent, r);
		return;
	}
	set_open_flags(fi, fh);
	lsmfs_fill_entry(&fe, &e, d->cfg);
	if (fuse_reply_create(req, &fe, fi) == -ENOENT) {
		/* Interrupted: no release and no forget will come. */
		fs_release(d->fs, fh);
		fs_forget(d->fs, e.ino, 1);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct fs_file *fh;
	struct req_cred rc;
	int flags, r;

	lsmfs_cred_init(req, &rc, 1);
	flags = core_open_flags(d->cfg, fi->flags);
	r = fs_open(d->fs, &rc.cred, ino, flags, &fh);
	if (r == -EACCES && (fi->flags & O_ACCMODE) == O_WRONLY && flags != fi->flags) {
		/* Write-only permission: the caller may open it as asked
		 * (checked here), and the kernel's own page reads through
		 * the handle need no permission of the caller's. */
		r = fs_access(d->fs, &rc.cred, ino, W_OK);
		if (r == 0)
			r = fs_open(d->fs, NULL, ino, flags, &fh);
	}
	lsmfs_cred_done(&rc);
	if (r < 0) {
		lsmfs_reply_err(req, "open", ino, r);
		return;
	}
	set_open_flags(fi, fh);
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_release(d->fs, fh);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	char *buf = lsmfs_thread_buf(size);
	ssize_t n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_read(d->fs, (struct fs_file *)(uintptr_t)fi->fh, buf, size, off);
	if (n < 0)
		lsmfs_reply_err(req, "read", ino, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* A write that cleared set-id bits leaves the kernel's cached mode stale:
 * it invalidates only size and times after a write, since without
 * FUSE_HANDLE_KILLPRIV_V2 it clears the bits itself beforehand, through a
 * SETATTR whose reply it caches.  So the attributes are dropped here, before
 * the reply (offset -1: attributes only, no pages, so nothing waits on the
 * write in progress). */
static void invalidate_if_setid_cleared(struct lsmfs_daemon *d, struct fs_file *fh)
{
	if (fs_file_take_setid_cleared(fh))
		fuse_lowlevel_notify_inval_inode(d->se, fs_file_ino(fh), -1, 0);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct req_cred rc;
	ssize_t n;

	/* The caller matters only for clearing set-id bits (root keeps them),
	 * so its groups are not needed.  A write-back of cached pages carries
	 * no caller at all: the kernel cleared the bits when it took the
	 * write. */
	lsmfs_cred_init(req, &rc, 0);
	n = fs_write(d->fs, fi->writepage ? NULL : &rc.cred, (struct fs_file *)(uintptr_t)fi->fh,
	             buf, size, off);
	lsmfs_cred_done(&rc);
	if (n < 0) {
		lsmfs_reply_err(req, "write", ino, (int)n);
		return;
	}
	invalidate_if_setid_cleared(d, (struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = fs_flush(req_daemon(req)->fs, (struct fs_file *)(uintptr_t)fi->fh);

	lsmfs_reply_err(req, "flush", ino, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = fs_release(req_daemon(req)->fs, (struct fs_file *)(uintptr_t)fi->fh);

	lsmfs_reply_err(req, "release", ino, r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int r;

	(void)fi;
	r = fs_fsync(req_daemon(req)->fs, ino, datasync);
	lsmfs_reply_err(req, "fsync", ino, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	struct fs_file *fh = (struct fs_file *)(uintptr_t)fi->fh;
	struct req_cred rc;
	int r;

	/* Linux clears set-id bits on fallocate (file_modified); under
	 * FUSE_HANDLE_KILLPRIV_V2 that is the daemon's job, as for write. */
	lsmfs_cred_init(req, &rc, 0);
	r = fs_fallocate(req_daemon(req)->fs, &rc.cred, fh, mode, offset, length);
	lsmfs_cred_done(&rc);
	if (r == 0)
		invalidate_if_setid_cleared(req_daemon(req), fh);
	lsmfs_reply_err(req, "fallocate", ino, r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
	off_t r = fs_lseek(req_daemon(req)->fs, (struct fs_file *)(uintptr_t)fi->fh, off, whence);

	if (r < 0)
		lsmfs_reply_err(req, "lseek", ino, (int)r);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct req_cred rc;
	ssize_t n;

	(void)ino_out;
	lsmfs_cred_init(req, &rc, 0);
	n = fs_copy_file_range(req_daemon(req)->fs, &rc.cred,
	                       (struct fs_file *)(uintptr_t)fi_in->fh, off_in,
	                       (struct fs_file *)(uintptr_t)fi_out->fh, off_out, len, flags);
	lsmfs_cred_done(&rc);
	if (n < 0) {
		lsmfs_reply_err(req, "copy_file_range", ino_in, (int)n);
		return;
	}
	invalidate_if_setid_cleared(req_daemon(req), (struct fs_file *)(uintptr_t)fi_out->fh);
	fuse_reply_write(req, (size_t)n);
}

/* ---- directories ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct fs_dir *dh;
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_opendir(d->fs, &rc.cred, ino, fi->flags, &dh);
	lsmfs_cred_done(&rc);
	if (r < 0) {
		lsmfs_reply_err(req, "opendir", ino, r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)dh;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fs_releasedir(d->fs, dh);
}

/* One readdir reply being filled. */
struct dir_fill {
	fuse_req_t req;
	const struct lsmfs_config *cfg;
	char *buf;
	size_t size, used;
	int plus;
	uint64_t *inos;            /* readdirplus: the lookups counted, to give back */
	size_t ninos, maxinos;     /* if the reply never reaches the kernel */
};

static int dir_fill_one(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct dir_fill *f = arg;
	size_t n;

	if (f->plus) {
		int dot = name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
		struct fuse_entry_param fe;

		if (!dot && f->ninos == f->maxinos)
			return 1;
		lsmfs_fill_entry(&fe, e, f->cfg);
		n = fuse_add_direntry_plus(f->req, f->buf + f->used, f->size - f->used, name, &fe,
		                           next_off);
		if (n > f->size - f->used)
			return 1;
		if (!dot)
			f->inos[f->ninos++] = e->ino;
	} else {
		n = fuse_add_direntry(f->req, f->buf + f->used, f->size - f->used, name, &e->attr,
		                      next_off);
		if (n > f->size - f->used)
			return 1;
	}
	f->used += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
	struct lsmfs_daemon *d = req_daemon(req);
	struct fs_dir *dh = (struct fs_dir *)(uintptr_t)fi->fh;
	struct dir_fill f = { .req = req, .cfg = d->cfg, .size = size, .plus = plus };
	int r;

	f.buf = malloc(size ? size : 1);
	if (plus) {
		/* Each entry takes at least a fuse_direntplus header (152
		 * bytes) plus its name, rounded to 8. */
		f.maxinos = size / 152 + 1;
		f.inos = malloc(f.maxinos * sizeof(*f.inos));
	}
	if (!f.buf || (plus && !f.inos)) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	if (plus)
		r = fs_readdirplus(d->fs, dh, off, dir_fill_one, &f);
	else
		r = fs_readdir(d->fs, dh, off, dir_fill_one, &f);
	/* Entries already taken are sent even after an error: their lookups
	 * are counted, and the error comes back at the next call. */
	if (r < 0 && f.used == 0) {
		lsmfs_reply_err(req, plus ? "readdirplus" : "readdir", ino, r);
		goto out;
	}
	if (fuse_reply_buf(req, f.buf, f.used) == -ENOENT) {
		for (size_t i = 0; i < f.ninos; i++)
			fs_forget(d->fs, f.inos[i], 1);
	}
out:
	free(f.inos);
	free(f.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = fs_releasedir(req_daemon(req)->fs, (struct fs_dir *)(uintptr_t)fi->fh);

	lsmfs_reply_err(req, "releasedir", ino, r);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int r;

	(void)fi;
	r = fs_fsyncdir(req_daemon(req)->fs, ino, datasync);
	lsmfs_reply_err(req, "fsyncdir", ino, r);
}

/* ---- the whole filesystem ---- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int r;

	r = fs_statfs(req_daemon(req)->fs, &st);
	if (r < 0)
		lsmfs_reply_err(req, "statfs", ino, r);
	else
		fuse_reply_statfs(req, &st);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_access(req_daemon(req)->fs, &rc.cred, ino, mask);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "access", ino, r);
}

/* ---- extended attributes ---- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_setxattr(req_daemon(req)->fs, &rc.cred, ino, name, value, size, flags);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "setxattr", ino, r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct req_cred rc;
	char *buf = NULL;
	ssize_t n;

	if (size > 0 && !(buf = lsmfs_thread_buf(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	lsmfs_cred_init(req, &rc, 1);
	n = fs_getxattr(req_daemon(req)->fs, &rc.cred, ino, name, buf, size);
	lsmfs_cred_done(&rc);
	if (n < 0)
		lsmfs_reply_err(req, "getxattr", ino, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct req_cred rc;
	char *buf = NULL;
	ssize_t n;

	if (size > 0 && !(buf = lsmfs_thread_buf(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	lsmfs_cred_init(req, &rc, 1);
	n = fs_listxattr(req_daemon(req)->fs, &rc.cred, ino, buf, size);
	lsmfs_cred_done(&rc);
	if (n < 0)
		lsmfs_reply_err(req, "listxattr", ino, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct req_cred rc;
	int r;

	lsmfs_cred_init(req, &rc, 1);
	r = fs_removexattr(req_daemon(req)->fs, &rc.cred, ino, name);
	lsmfs_cred_done(&rc);
	lsmfs_reply_err(req, "removexattr", ino, r);
}

/* ---- the connection ---- */

/* Negotiates the connection.  Runs before any request; options the user
 * gave through libfuse's own -o names (max_write=, readdirplus= ...) are
 * applied last so that they win. */
static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct lsmfs_daemon *d = userdata;
	const struct lsmfs_config *cfg = d->cfg;
	unsigned int want = FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC |
	                    FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
	                    FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS |
	                    FUSE_CAP_ASYNC_DIO;

	/* Data comes from and goes to the engine in memory, never from a
	 * file descriptor, so splicing /dev/fuse would only add a pipe to
	 * every request.  Privilege clearing on write: not libfuse's
	 * FUSE_CAP_HANDLE_KILLPRIV, which would make the kernel flag every
	 * write, but version 2, which transport.c asks for itself (libfuse
	 * 3.14 cannot) and under which the kernel stops asking for
	 * security.capability before each write.
	 * Automatic invalidation of file pages (which libfuse asks for by
	 * default) is for filesystems whose files change behind the kernel's
	 * back: it makes the kernel drop a file's whole page cache whenever it
	 * sees a new mtime, so after every write here.  Every change to lsmfs
	 * passes through the kernel, which keeps its pages right (and drops
	 * them itself around copy_file_range and hole punching); -o
	 * auto_inval_data still turns it on. */
	conn->want &= ~(unsigned int)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
	                              FUSE_CAP_SPLICE_MOVE | FUSE_CAP_HANDLE_KILLPRIV |
	                              FUSE_CAP_AUTO_INVAL_DATA);
	if (cfg->writeback_cache)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~(unsigned int)FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= want & conn->capable;

	/* Large requests: one round trip per MiB of sequential I/O. */
	conn->max_write = LSMFS_MAX_WRITE;
	conn->max_readahead = LSMFS_MAX_WRITE;
	/* More requests in flight (readahead, async direct I/O) than the
	 * default 12: the core serves them in parallel. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	if (cfg->conn_opts)
		fuse_apply_conn_info_opts(cfg->conn_opts, conn);
}

const struct fuse_lowlevel_ops lsmfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.access = op_access,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};
