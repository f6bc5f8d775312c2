/*
 * xattr.c - extended attributes: key 'X' ino name -> value, so get is one
 * point get and list is one prefix scan.  The inode record's
 * FS_INODE_XATTRS flag says an inode may have any, so unlink of the common
 * inode without xattrs needs no scan.  Namespaces follow Linux's
 * xattr_permission: "user." only on regular files and directories, with
 * read/write permission; "trusted." for root only; "security." with the
 * file's permissions; "system." (POSIX ACLs) is not supported, so tools
 * fall back to the mode bits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

enum xns { XNS_USER, XNS_TRUSTED, XNS_SECURITY };

static int xattr_ns(const char *name, size_t *ret_len, enum xns *ret_ns)
{
	size_t len = strnlen(name, FS_XATTR_NAME_MAX + 1);

	if (len == 0 || len > FS_XATTR_NAME_MAX)
		return -ERANGE;
	if (!strncmp(name, "user.", 5) && len > 5)
		*ret_ns = XNS_USER;
	else if (!strncmp(name, "trusted.", 8) && len > 8)
		*ret_ns = XNS_TRUSTED;
	else if (!strncmp(name, "security.", 9) && len > 9)
		*ret_ns = XNS_SECURITY;
	else
		return -EOPNOTSUPP;
	*ret_len = len;
	return 0;
}

/* May cred read (write) attributes of namespace ns on rec? */
static int xattr_perm(const struct fs_cred *cred, const struct fs_inode_rec *rec, enum xns ns,
                      bool write)
{
	if (ns == XNS_TRUSTED)
		return fs_cred_is_root(cred) ? 0 : -EPERM;
	if (ns == XNS_USER && !S_ISREG(rec->mode) && !S_ISDIR(rec->mode))
		return write ? -EPERM : -ENODATA;
	if (ns == XNS_USER && write && S_ISDIR(rec->mode) && (rec->mode & S_ISVTX) &&
	    !fs_cred_is_root(cred) && cred->uid != rec->uid)
		return -EPERM;
	return fs_perm(cred, rec, write ? FS_MAY_WRITE : FS_MAY_READ);
}

/* Locks ino's stripe and gets it, for the calls below. */
static int xattr_begin(struct fs *fs, uint64_t ino, bool excl, struct lockset *ls,
                       struct inode **ret_ip)
{
	int r;

	fs_lockset_init(ls, excl);
	fs_lockset_add(ls, ino);
	fs_lockset_lock(fs, ls);
	r = fs_inode_get(fs, ino, ret_ip);
	if (r < 0)
		fs_lockset_unlock(fs, ls);
	return r;
}

static void xattr_end(struct fs *fs, struct lockset *ls, struct inode *ip)
{
	fs_inode_put(fs, ip);
	fs_lockset_unlock(fs, ls);
}

static int xattr_change(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name,
                        const void *value, size_t size, int flags, bool remove)
{
	uint8_t key[FS_KEY_NAME_MAX];
	struct fs_inode_rec *rec;
	struct lockset ls;
	struct inode *ip;
	struct txn t;
	enum xns ns;
	size_t len, klen, vlen;
	void *old;
	int r;

	r = xattr_ns(name, &len, &ns);
	if (r < 0)
		return r;
	if (!remove && size > FS_XATTR_SIZE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	r = fs_check_rw(fs);
	if (r < 0)
		return r;
	r = xattr_begin(fs, ino, true, &ls, &ip);
	if (r < 0)
		return r;
	r = xattr_perm(cred, &ip->rec, ns, true);
	if (r < 0)
		goto out;
	klen = fs_key_xattr(key, ino, name, len);
	if (remove || flags) {
		r = (ip->rec.flags & FS_INODE_XATTRS) ? lsm_get(fs->db, NULL, key, klen, &old, &vlen)
		                                      : -ENOENT;
		if (r == 0)
			free(old);
		if (r == -ENOENT && (remove || (flags & XATTR_REPLACE))) {
			r = -ENODATA;
			goto out;
		}
		if (r == 0 && (flags & XATTR_CREATE)) {
			r = -EEXIST;
			goto out;
		}
		if (r < 0 && r != -ENOENT)
			goto out;
	}
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		goto out;
	r = remove ? fs_txn_del(&t, key, klen) : fs_txn_put(&t, key, klen, value, size);
	if (r < 0) {
		fs_txn_abort(&t);
		goto out;
	}
	rec = fs_txn_rec(&t, ip);
	if (!remove)
		rec->flags |= FS_INODE_XATTRS;
	rec->ctime = t.now;
	r = fs_txn_commit(&t);
out:
	xattr_end(fs, &ls, ip);
	return r;
}

int fs_kill_caps(struct txn *t, struct inode *ip)
{
	static const char name[] = "security.capability";
	uint8_t key[FS_KEY_NAME_MAX];
	size_t klen, vlen;
	void *old;
	int r;

	if (!(ip->rec.flags & FS_INODE_XATTRS) || S_ISDIR(ip->rec.mode))
		return 0;
	klen = fs_key_xattr(key, ip->ino, name, sizeof(name) - 1);
	r = lsm_get(t->fs->db, NULL, key, klen, &old, &vlen);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	free(old);
	return fs_txn_del(t, key, klen);
}

int fs_setxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name,
                const void *value, size_t size, int flags)
{
	if ((flags & XATTR_CREATE) && (flags & XATTR_REPLACE))
		return -EINVAL;
	return xattr_change(fs, cred, ino, name, value, size, flags, false);
}

int fs_removexattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name)
{
	return xattr_change(fs, cred, ino, name, NULL, 0, 0, true);
}

ssize_t fs_getxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name,
                    void *buf, size_t size)
{
	uint8_t key[FS_KEY_NAME_MAX];
	struct lockset ls;
	struct inode *ip;
	enum xns ns;
	size_t len, vlen;
	void *val;
	ssize_t r;

	r = xattr_ns(name, &len, &ns);
	if (r < 0)
		return r == -EOPNOTSUPP ? -ENODATA : r;
	r = xattr_begin(fs, ino, false, &ls, &ip);
	if (r < 0)
		return r;
	r = xattr_perm(cred, &ip->rec, ns, false);
	if (r == 0 && !(ip->rec.flags & FS_INODE_XATTRS))
		r = -ENODATA;
	if (r == 0) {
		r = lsm_get(fs->db, NULL, key, fs_key_xattr(key, ino, name, len), &val, &vlen);
		if (r == -ENOENT)
			r = -ENODATA;
	}
	xattr_end(fs, &ls, ip);
	if (r < 0)
		return r;
	if (size == 0)
		r = (ssize_t)vlen;
	else if (size < vlen)
		r = -ERANGE;
	else {
		if (vlen)
			memcpy(buf, val, vlen);
		r = (ssize_t)vlen;
	}
	free(val);
	return r;
}

ssize_t fs_listxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, char *buf, size_t size)
{
	uint8_t prefix[FS_KEY_INO_LEN];
	size_t plen = fs_key_prefix(prefix, FS_KEY_XATTR, ino), total = 0;
	struct lockset ls;
	struct inode *ip;
	lsm_iter *it = NULL;
	ssize_t r;

	r = xattr_begin(fs, ino, false, &ls, &ip);
	if (r < 0)
		return r;
	if (!(ip->rec.flags & FS_INODE_XATTRS))
		goto out;
	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		goto out;
	for (lsm_iter_seek(it, prefix, plen); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, nlen;
		const void *k = lsm_iter_key(it, &kl);
		const char *name;
		uint64_t kino;

		if (fs_key_parse_named(k, kl, FS_KEY_XATTR, &kino, &name, &nlen) < 0 || kino != ino)
			break;
		if (nlen > 8 && !memcmp(name, "trusted.", 8) && !fs_cred_is_root(cred))
			continue;
		if (size) {
			if (total + nlen + 1 > size) {
				r = -ERANGE;
				goto out;
			}
			memcpy(buf + total, name, nlen);
			buf[total + nlen] = '\0';
		}
		total += nlen + 1;
	}
	r = lsm_iter_status(it);
out:
	lsm_iter_free(it);
	xattr_end(fs, &ls, ip);
	return r < 0 ? r : (ssize_t)total;
}
