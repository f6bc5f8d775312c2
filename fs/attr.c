/*
 * attr.c - attributes and permissions: getattr, setattr (chmod, chown,
 * truncate, utimensat), access, and the permission rules every other
 * operation asks (owner/group/other bits with root's overrides, the sticky
 * directory rule, S_ISUID/S_ISGID clearing).  The rules are Linux's
 * (generic_permission, setattr_prepare, should_remove_suid) so that the core
 * agrees with the kernel's default_permissions checks it sits behind.
 */
#include <errno.h>
#include <string.h>

#include "fs_int.h"

bool fs_cred_is_root(const struct fs_cred *cred)
{
	return !cred || cred->uid == 0;
}

bool fs_cred_in_group(const struct fs_cred *cred, gid_t gid)
{
	if (!cred || cred->gid == gid)
		return true;
	for (int i = 0; i < cred->ngroups; i++)
		if (cred->groups[i] == gid)
			return true;
	return false;
}

int fs_perm(const struct fs_cred *cred, const struct fs_inode_rec *rec, int mask)
{
	uint32_t bits;

	if (!cred || !mask)
		return 0;
	if (cred->uid == 0) {
		/* CAP_DAC_OVERRIDE: anything but executing a file nobody may execute. */
		if ((mask & FS_MAY_EXEC) && !S_ISDIR(rec->mode) && !(rec->mode & 0111))
			return -EACCES;
		return 0;
	}
	if (cred->uid == rec->uid)
		bits = rec->mode >> 6;
	else if (fs_cred_in_group(cred, rec->gid))
		bits = rec->mode >> 3;
	else
		bits = rec->mode;
	return ((int)(bits & 7) & mask) == mask ? 0 : -EACCES;
}

int fs_sticky_ok(const struct fs_cred *cred, const struct fs_inode_rec *dir,
                 const struct fs_inode_rec *child)
{
	if (!(dir->mode & S_ISVTX) || fs_cred_is_root(cred))
		return 0;
	if (cred->uid == child->uid || cred->uid == dir->uid)
		return 0;
	return -EPERM;
}

int fs_check_name(const char *name, size_t *ret_len)
{
	size_t len = strnlen(name, FS_NAME_MAX + 1);

	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || memchr(name, '/', len))
		return -EINVAL;
	*ret_len = len;
	return 0;
}

/* Linux's rule for what a change of contents or owner clears: S_ISUID, and
 * S_ISGID only with group execute (without it, S_ISGID marks mandatory
 * locking, not privilege).  Directories keep theirs. */
static void clear_setid(struct fs_inode_rec *rec)
{
	if (S_ISDIR(rec->mode))
		return;
	rec->mode &= ~(uint32_t)S_ISUID;
	if ((rec->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		rec->mode &= ~(uint32_t)S_ISGID;
}

void fs_kill_suid(const struct fs_cred *cred, struct fs_inode_rec *rec)
{
	if (!fs_cred_is_root(cred))
		clear_setid(rec);
}

static bool ts_le(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

bool fs_atime_due(const struct fs *fs, const struct fs_inode_rec *rec)
{
	struct timespec now;

	if (fs->read_only || fs->atime == FS_ATIME_NOATIME)
		return false;
	if (fs->atime == FS_ATIME_STRICT)
		return true;
	if (ts_le(rec->atime, rec->mtime) || ts_le(rec->atime, rec->ctime))
		return true;
	now = fs_now();
	return now.tv_sec - rec->atime.tv_sec >= 24 * 3600;
}

void fs_touch_atime(struct fs *fs, uint64_t ino)
{
	struct lockset ls;
	struct inode *ip;
	struct txn t;

	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	if (fs_inode_get(fs, ino, &ip) == 0) {
		if (fs_atime_due(fs, &ip->rec) && fs_txn_begin(fs, &t) == 0) {
			fs_txn_rec(&t, ip)->atime = t.now;
			fs_txn_commit(&t);
		}
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
}

int fs_getattr(struct fs *fs, uint64_t ino, struct stat *ret_attr)
{
	struct lockset ls;
	struct inode *ip;
	int r;

	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get_any(fs, ino, &ip);
	if (r == 0) {
		fs_inode_stat(fs, ip, ret_attr);
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	return r;
}

int fs_access(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int mask)
{
	struct lockset ls;
	struct inode *ip;
	int r;

	if (mask & ~(R_OK | W_OK | X_OK))
		return -EINVAL;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r == 0) {
		int m = ((mask & R_OK) ? FS_MAY_READ : 0) | ((mask & W_OK) ? FS_MAY_WRITE : 0) |
		        ((mask & X_OK) ? FS_MAY_EXEC : 0);

		if ((mask & W_OK) && fs->read_only)
			r = -EROFS;
		else
			r = fs_perm(cred, &ip->rec, m);
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	return r;
}

static bool is_owner(const struct fs_cred *cred, const struct fs_inode_rec *rec)
{
	return fs_cred_is_root(cred) || cred->uid == rec->uid;
}

/* chown/chgrp rules (chown_ok, chgrp_ok) and their S_ISUID/S_ISGID clearing. */
static int set_owner(const struct fs_cred *cred, struct fs_inode_rec *rec, const struct stat *attr,
                     int to_set)
{
	bool root = fs_cred_is_root(cred);
	uid_t uid = (to_set & FS_SET_ATTR_UID) ? attr->st_uid : rec->uid;
	gid_t gid = (to_set & FS_SET_ATTR_GID) ? attr->st_gid : rec->gid;

	if (!root && uid != rec->uid)
		return -EPERM;
	if (!root && gid != rec->gid && (cred->uid != rec->uid || !fs_cred_in_group(cred, gid)))
		return -EPERM;
	if (!root && cred->uid != rec->uid)
		return -EPERM;   /* even "changing" to the same ids needs the owner */
	rec->uid = uid;
	rec->gid = gid;
	if (!(to_set & FS_SET_ATTR_MODE))
		clear_setid(rec);
	return 0;
}

/* One of atime/mtime: explicit values need the owner, "now" needs the owner
 * or write permission (utimensat(2)). */
static int set_time(const struct fs_cred *cred, const struct fs_inode_rec *old, struct timespec *dst,
                    const struct timespec *src, bool now_flag, struct timespec now)
{
	if (!now_flag && src->tv_nsec == UTIME_OMIT)
		return 0;
	if (now_flag || src->tv_nsec == UTIME_NOW) {
		if (!is_owner(cred, old) && fs_perm(cred, old, FS_MAY_WRITE) < 0)
			return -EACCES;
		*dst = now;
		return 0;
	}
	if (!is_owner(cred, old))
		return -EPERM;
	if (src->tv_nsec < 0 || src->tv_nsec >= 1000000000L)
		return -EINVAL;
	*dst = *src;
	return 0;
}

int fs_setattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const struct stat *attr,
               int to_set, struct fs_file *fh, struct stat *ret_attr)
{
	struct fs_inode_rec *rec, old;
	struct lockset ls;
	struct inode *ip;
	struct txn t;
	int r;

	if (to_set & (FS_SET_ATTR_MODE | FS_SET_ATTR_UID | FS_SET_ATTR_GID | FS_SET_ATTR_SIZE |
	              FS_SET_ATTR_ATIME | FS_SET_ATTR_MTIME | FS_SET_ATTR_ATIME_NOW |
	              FS_SET_ATTR_MTIME_NOW | FS_SET_ATTR_CTIME | FS_SET_ATTR_KILL_SUIDGID)) {
		r = fs_check_rw(fs);
		if (r < 0)
			return r;
	}
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r < 0)
		goto out_unlock;
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		goto out_put;
	old = ip->rec;
	rec = fs_txn_rec(&t, ip);

	if (to_set & (FS_SET_ATTR_UID | FS_SET_ATTR_GID)) {
		r = set_owner(cred, rec, attr, to_set);
		if (r == 0)
			r = fs_kill_caps(&t, ip);
		if (r < 0)
			goto out_abort;
	}
	if (to_set & FS_SET_ATTR_MODE) {
		if (!is_owner(cred, &old)) {
			r = -EPERM;
			goto out_abort;
		}
		rec->mode = (rec->mode & S_IFMT) | (attr->st_mode & 07777);
		if (!fs_cred_is_root(cred) && !fs_cred_in_group(cred, rec->gid))
			rec->mode &= ~(uint32_t)S_ISGID;
	}
	if (to_set & FS_SET_ATTR_SIZE) {
		if (S_ISDIR(rec->mode)) {
			r = -EISDIR;
			goto out_abort;
		}
		if (!S_ISREG(rec->mode) || attr->st_size < 0) {
			r = -EINVAL;
			goto out_abort;
		}
		if ((uint64_t)attr->st_size > FS_MAX_FILE_SIZE) {
			r = -EFBIG;
			goto out_abort;
		}
		if (fh)
			r = (fh->flags & O_ACCMODE) == O_RDONLY ? -EBADF : 0;
		else
			r = fs_perm(cred, &old, FS_MAY_WRITE);
		if (r < 0)
			goto out_abort;
		r = fs_file_truncate(&t, ip, (uint64_t)attr->st_size);
		if (r == 0)
			r = fs_kill_caps(&t, ip);
		if (r < 0)
			goto out_abort;
		if (!(to_set & FS_SET_ATTR_MODE))
			fs_kill_suid(cred, rec);
		rec->mtime = t.now;
	}
	if (to_set & FS_SET_ATTR_KILL_SUIDGID) {
		clear_setid(rec);
		r = fs_kill_caps(&t, ip);
		if (r < 0)
			goto out_abort;
	}
	if (to_set & (FS_SET_ATTR_ATIME | FS_SET_ATTR_ATIME_NOW)) {
		r = set_time(cred, &old, &rec->atime, &attr->st_atim,
		             to_set & FS_SET_ATTR_ATIME_NOW, t.now);
		if (r < 0)
			goto out_abort;
	}
	if (to_set & (FS_SET_ATTR_MTIME | FS_SET_ATTR_MTIME_NOW)) {
		r = set_time(cred, &old, &rec->mtime, &attr->st_mtim,
		             to_set & FS_SET_ATTR_MTIME_NOW, t.now);
		if (r < 0)
			goto out_abort;
	}
	if ((to_set & FS_SET_ATTR_CTIME) && attr->st_ctim.tv_nsec >= 0 &&
	    attr->st_ctim.tv_nsec < 1000000000L)
		rec->ctime = attr->st_ctim;
	else if (to_set)
		rec->ctime = t.now;
	r = fs_txn_commit(&t);
	if (r == 0 && ret_attr)
		fs_inode_stat(fs, ip, ret_attr);
	goto out_put;
out_abort:
	fs_txn_abort(&t);
out_put:
	fs_inode_put(fs, ip);
out_unlock:
	fs_lockset_unlock(fs, &ls);
	return r;
}
