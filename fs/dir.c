/*
 * dir.c - the namespace: lookup, making names (mknod, mkdir, symlink,
 * create), hard links, unlink, rmdir and readlink, and the helpers rename.c
 * shares (reading a dirent, dropping a link, touching a directory).
 *
 * A directory entry is the key 'D' parent name -> child ino + type, so
 * lookup is one point get and a new name is one put; the parent's record
 * counts its entries in size and its subdirectories in nlink, so rmdir knows
 * a directory is empty without a scan.  Each operation locks the stripes of
 * every inode it changes, in stripe order: it locks the parent, reads the
 * dirent, and then try-locks the child; if that would wait it starts over
 * with both in the set, so no two operations ever wait on each other in a
 * cycle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

int fs_dirent_get(struct fs *fs, uint64_t parent, const char *name, size_t namelen,
                  uint64_t *ret_ino, uint8_t *ret_dtype)
{
	uint8_t key[FS_KEY_NAME_MAX];
	size_t len;
	void *val;
	int r;

	r = lsm_get(fs->db, NULL, key, fs_key_dirent(key, parent, name, namelen), &val, &len);
	if (r < 0)
		return r;
	r = fs_dirent_decode(val, len, ret_ino, ret_dtype);
	free(val);
	if (r < 0)
		return lsm_errf(r, "directory %llu: damaged entry \"%.*s\" (run fsck.lsmfs)",
		                (unsigned long long)parent, (int)namelen, name);
	return 0;
}

void fs_dir_changed(struct txn *t, struct inode *dir, int delta_entries, int delta_nlink)
{
	struct fs_inode_rec *rec = fs_txn_rec(t, dir);

	rec->size += (uint64_t)(int64_t)delta_entries;
	rec->nlink += (uint32_t)delta_nlink;
	rec->mtime = t->now;
	rec->ctime = t->now;
}

int fs_drop_link(struct txn *t, struct inode *child)
{
	struct txn_inode *u = fs_txn_slot(t, child);
	uint64_t n, next;
	int r = 0;

	u->rec.ctime = t->now;
	if (!S_ISDIR(u->rec.mode) && u->rec.nlink > 1) {
		u->rec.nlink--;
		return 0;
	}
	u->rec.nlink = 0;
	if (!S_ISDIR(u->rec.mode) &&
	    (fs_inode_open_count(t->fs, child) > 0 || u->rec.nblocks > FS_RECLAIM_BATCH)) {
		/* Still open, or too big for one batch: keep the record as an
		 * orphan, reclaimed at the last release or by fs_finish_drop. */
		u->set_orphan = true;
		return 0;
	}
	u->del = true;
	if (u->rec.flags & FS_INODE_XATTRS)
		r = fs_txn_del_xattrs(t, child->ino);
	if (r == 0 && u->rec.nblocks > 0)
		r = fs_file_delete_blocks(t->fs, t->b, child->ino, 0, UINT64_MAX, UINT64_MAX,
		                          &n, &next);
	return r;
}

void fs_finish_drop(struct fs *fs, struct inode *child)
{
	if (child->orphan && child->rec.nlink == 0 && !child->deleted &&
	    fs_inode_open_count(fs, child) == 0)
		fs_inode_reclaim(fs, child);
}

/* Rejects the names no directory entry may have. */
static int check_new_name(const char *name, size_t *ret_len)
{
	int r = fs_check_name(name, ret_len);

	if (r == 0 && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
		return -EEXIST;
	return r;
}

/* Gets parent (pinned) and checks it is a directory the caller may change. */
static int get_dir(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int mask,
                   struct inode **ret_ip)
{
	struct inode *ip;
	int r = fs_inode_get(fs, ino, &ip);

	if (r < 0)
		return r;
	if (!S_ISDIR(ip->rec.mode))
		r = -ENOTDIR;
	else
		r = fs_perm(cred, &ip->rec, mask);
	if (r < 0) {
		fs_inode_put(fs, ip);
		return r;
	}
	*ret_ip = ip;
	return 0;
}

int fs_lookup(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              struct fs_entry *ret_entry)
{
	struct inode *dir, *ip;
	struct lockset ls;
	uint64_t ino;
	uint8_t dtype;
	size_t len;
	int r;

	r = fs_check_name(name, &len);
	if (r < 0)
		return r;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, parent);
	fs_lockset_lock(fs, &ls);
	r = get_dir(fs, cred, parent, FS_MAY_EXEC, &dir);
	if (r == 0) {
		if (strcmp(name, ".") == 0)
			ino = parent;
		else if (strcmp(name, "..") == 0)
			ino = dir->rec.parent;
		else
			r = fs_dirent_get(fs, parent, name, len, &ino, &dtype);
		fs_inode_put(fs, dir);
	}
	fs_lockset_unlock(fs, &ls);
	if (r < 0)
		return r;

	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r == 0) {
		fs_inode_add_lookup(fs, ip, 1);
		fs_inode_entry(fs, ip, ret_entry);
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	return r;
}

/* What make_node makes. */
struct node_args {
	mode_t mode;               /* type and permission bits, before umask */
	dev_t rdev;
	const char *target;        /* symlinks */
	size_t tlen;
	int open_flags;            /* create: open the new file with these */
	bool want_fh;
};

/* The new inode's record: owner from cred, group from cred or (S_ISGID
 * parent) the parent, as inode_init_owner does. */
static void init_rec(const struct fs_cred *cred, const struct fs_inode_rec *dir,
                     const struct node_args *a, struct timespec now, uint64_t parent,
                     struct fs_inode_rec *rec)
{
	mode_t type = a->mode & S_IFMT, perm = a->mode & 07777;

	memset(rec, 0, sizeof(*rec));
	if (type != S_IFLNK && cred)
		perm &= ~cred->umask;
	rec->uid = cred ? cred->uid : 0;
	rec->gid = cred ? cred->gid : 0;
	if (dir->mode & S_ISGID) {
		rec->gid = dir->gid;
		if (type == S_IFDIR)
			perm |= S_ISGID;
	}
	if (type != S_IFDIR && (perm & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	    !fs_cred_is_root(cred) && !fs_cred_in_group(cred, rec->gid))
		perm &= ~(mode_t)S_ISGID;
	rec->mode = type | perm;
	rec->nlink = type == S_IFDIR ? 2 : 1;
	rec->flags = type == S_IFREG ? FS_INODE_INLINE : 0;
	rec->size = type == S_IFLNK ? a->tlen : 0;
	rec->rdev = (type == S_IFCHR || type == S_IFBLK) ? a->rdev : 0;
	rec->generation = 1;
	rec->parent = type == S_IFDIR ? parent : 0;
	rec->atime = rec->mtime = rec->ctime = now;
}

/* Makes parent/name.  -EEXIST with *ret_existing set if the name exists. */
static int make_node(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
                     const struct node_args *a, struct fs_entry *ret_entry,
                     struct fs_file **ret_fh, uint64_t *ret_existing)
{
	uint8_t key[FS_KEY_NAME_MAX], dent[FS_DIRENT_LEN], *idata = NULL;
	struct inode *dir = NULL, *child;
	struct fs_inode_rec rec;
	struct fs_file *fh = NULL;
	struct fs_entry entry;
	struct lockset ls;
	struct txn t;
	uint64_t ino;
	uint8_t dtype;
	size_t len;
	int r;

	r = check_new_name(name, &len);
	if (r == 0)
		r = fs_check_rw(fs);
	if (r < 0)
		return r;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, parent);
	fs_lockset_lock(fs, &ls);
	r = get_dir(fs, cred, parent, FS_MAY_WRITE | FS_MAY_EXEC, &dir);
	if (r < 0)
		goto out;
	r = fs_dirent_get(fs, parent, name, len, &ino, &dtype);
	if (r == 0) {
		if (ret_existing)
			*ret_existing = ino;
		r = -EEXIST;
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	if (S_ISDIR(a->mode) && dir->rec.nlink >= FS_DIR_LINK_MAX) {
		r = -EMLINK;
		goto out;
	}
	init_rec(cred, &dir->rec, a, fs_now(), parent, &rec);
	if (a->tlen) {
		idata = malloc(a->tlen);
		if (!idata) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(idata, a->target, a->tlen);
	}
	if (a->want_fh) {
		fh = calloc(1, sizeof(*fh));
		if (!fh) {
			free(idata);
			r = -ENOMEM;
			goto out;
		}
	}
	r = fs_ino_alloc(fs, &ino);
	if (r < 0) {
		free(idata);
		goto out;
	}
	r = fs_inode_new(fs, ino, &rec, idata, a->tlen, &child);
	if (r < 0)
		goto out;
	r = fs_txn_begin(fs, &t);
	if (r < 0) {
		fs_inode_discard(fs, child);
		goto out;
	}
	fs_txn_slot(&t, child)->created = true;
	fs_dirent_encode(ino, fs_mode_to_dtype(rec.mode), dent);
	r = fs_txn_put(&t, key, fs_key_dirent(key, parent, name, len), dent, sizeof(dent));
	if (r < 0) {
		fs_txn_abort(&t);
		fs_inode_discard(fs, child);
		goto out;
	}
	fs_dir_changed(&t, dir, 1, S_ISDIR(rec.mode) ? 1 : 0);
	/* Nobody can reach the child before the commit: read it now. */
	fs_inode_entry(fs, child, &entry);
	r = fs_txn_commit(&t);
	if (r < 0) {
		fs_inode_discard(fs, child);
		goto out;
	}
	fs_inode_add_lookup(fs, child, 1);
	if (fh) {
		fs_file_handle_attach(fs, fh, child, a->open_flags);
		*ret_fh = fh;
		fh = NULL;
	}
	fs_inode_put(fs, child);
	*ret_entry = entry;
out:
	free(fh);
	fs_inode_put(fs, dir);
	fs_lockset_unlock(fs, &ls);
	return r;
}

int fs_mknod(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
             mode_t mode, dev_t rdev, struct fs_entry *ret_entry)
{
	struct node_args a = { .mode = mode, .rdev = rdev };

	switch (mode & S_IFMT) {
	case 0:
		a.mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (!fs_cred_is_root(cred))
			return -EPERM;
		break;
	default:
		return -EINVAL;
	}
	return make_node(fs, cred, parent, name, &a, ret_entry, NULL, NULL);
}

int fs_mkdir(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
             mode_t mode, struct fs_entry *ret_entry)
{
	struct node_args a = { .mode = S_IFDIR | (mode & 07777) };

	return make_node(fs, cred, parent, name, &a, ret_entry, NULL, NULL);
}

int fs_symlink(struct fs *fs, const struct fs_cred *cred, const char *target, uint64_t parent,
               const char *name, struct fs_entry *ret_entry)
{
	struct node_args a = { .mode = S_IFLNK | 0777, .target = target };

	a.tlen = strnlen(target, FS_SYMLINK_MAX + 1);
	if (a.tlen == 0)
		return -ENOENT;
	if (a.tlen > FS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	return make_node(fs, cred, parent, name, &a, ret_entry, NULL, NULL);
}

int fs_create(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              mode_t mode, int flags, struct fs_entry *ret_entry, struct fs_file **ret_fh)
{
	struct node_args a = { .mode = S_IFREG | (mode & 07777), .open_flags = flags, .want_fh = true };
	struct fs_entry e;
	uint64_t existing;
	int r;

	for (int tries = 0; tries < 16; tries++) {
		r = make_node(fs, cred, parent, name, &a, ret_entry, ret_fh, &existing);
		if (r != -EEXIST || (flags & O_EXCL))
			return r;
		/* open(O_CREAT) of an existing name opens it. */
		r = fs_lookup(fs, cred, parent, name, &e);
		if (r == -ENOENT)
			continue;  /* removed meanwhile: create again */
		if (r < 0)
			return r;
		if (S_ISDIR(e.attr.st_mode))
			r = -EISDIR;
		else
			r = fs_open(fs, cred, e.ino, flags & ~(O_CREAT | O_EXCL), ret_fh);
		if (r < 0) {
			fs_forget(fs, e.ino, 1);
			return r;
		}
		/* O_TRUNC may have changed the attributes since the lookup. */
		r = fs_getattr(fs, e.ino, &e.attr);
		if (r < 0) {
			fs_release(fs, *ret_fh);
			fs_forget(fs, e.ino, 1);
			return r;
		}
		*ret_entry = e;
		return 0;
	}
	return -EAGAIN;
}

int fs_link(struct fs *fs, const struct fs_cred *cred, uint64_t ino, uint64_t newparent,
            const char *newname, struct fs_entry *ret_entry)
{
	uint8_t key[FS_KEY_NAME_MAX], dent[FS_DIRENT_LEN];
	struct inode *dir = NULL, *ip = NULL;
	struct fs_inode_rec *rec;
	struct lockset ls;
	struct txn t;
	uint64_t other;
	uint8_t dtype;
	size_t len;
	int r;

	r = check_new_name(newname, &len);
	if (r == 0)
		r = fs_check_rw(fs);
	if (r < 0)
		return r;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, ino);
	fs_lockset_add(&ls, newparent);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r < 0)
		goto out;
	if (S_ISDIR(ip->rec.mode)) {
		r = -EPERM;
		goto out;
	}
	if (ip->rec.nlink == 0) {
		r = -ENOENT;
		goto out;
	}
	if (ip->rec.nlink >= FS_LINK_MAX) {
		r = -EMLINK;
		goto out;
	}
	r = get_dir(fs, cred, newparent, FS_MAY_WRITE | FS_MAY_EXEC, &dir);
	if (r < 0)
		goto out;
	r = fs_dirent_get(fs, newparent, newname, len, &other, &dtype);
	if (r == 0)
		r = -EEXIST;
	if (r != -ENOENT)
		goto out;
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		goto out;
	fs_dirent_encode(ino, fs_mode_to_dtype(ip->rec.mode), dent);
	r = fs_txn_put(&t, key, fs_key_dirent(key, newparent, newname, len), dent, sizeof(dent));
	if (r < 0) {
		fs_txn_abort(&t);
		goto out;
	}
	rec = fs_txn_rec(&t, ip);
	rec->nlink++;
	rec->ctime = t.now;
	fs_dir_changed(&t, dir, 1, 0);
	r = fs_txn_commit(&t);
	if (r == 0) {
		fs_inode_add_lookup(fs, ip, 1);
		fs_inode_entry(fs, ip, ret_entry);
	}
out:
	fs_inode_put(fs, dir);
	fs_inode_put(fs, ip);
	fs_lockset_unlock(fs, &ls);
	return r;
}

/* unlink and rmdir. */
static int remove_name(struct fs *fs, const struct fs_cred *cred, uint64_t parent,
                       const char *name, bool want_dir)
{
	uint8_t key[FS_KEY_NAME_MAX];
	struct inode *dir = NULL, *child = NULL;
	struct lockset ls;
	struct txn t;
	uint64_t ino;
	uint8_t dtype;
	size_t len;
	int r;

	r = fs_check_name(name, &len);
	if (r == 0)
		r = fs_check_rw(fs);
	if (r < 0)
		return r;
	if (want_dir && strcmp(name, ".") == 0)
		return -EINVAL;
	if (want_dir && strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, parent);
	for (;;) {
		fs_lockset_lock(fs, &ls);
		r = get_dir(fs, cred, parent, FS_MAY_WRITE | FS_MAY_EXEC, &dir);
		if (r < 0)
			goto out;
		r = fs_dirent_get(fs, parent, name, len, &ino, &dtype);
		if (r < 0)
			goto out;
		if (fs_lockset_try_add(fs, &ls, ino))
			break;
		fs_inode_put(fs, dir);
		dir = NULL;
		fs_lockset_unlock(fs, &ls);
		fs_lockset_add(&ls, ino);
	}
	r = fs_inode_get(fs, ino, &child);
	if (r < 0)
		goto out;
	if (want_dir && !S_ISDIR(child->rec.mode))
		r = -ENOTDIR;
	else if (!want_dir && S_ISDIR(child->rec.mode))
		r = -EISDIR;
	else if (want_dir && child->rec.size > 0)
		r = -ENOTEMPTY;
	else
		r = fs_sticky_ok(cred, &dir->rec, &child->rec);
	if (r < 0)
		goto out;
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		goto out;
	r = fs_txn_del(&t, key, fs_key_dirent(key, parent, name, len));
	if (r == 0)
		r = fs_drop_link(&t, child);
	if (r < 0) {
		fs_txn_abort(&t);
		goto out;
	}
	fs_dir_changed(&t, dir, -1, want_dir ? -1 : 0);
	r = fs_txn_commit(&t);
	if (r == 0)
		fs_finish_drop(fs, child);
out:
	fs_inode_put(fs, child);
	fs_inode_put(fs, dir);
	fs_lockset_unlock(fs, &ls);
	return r;
}

int fs_unlink(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name)
{
	return remove_name(fs, cred, parent, name, false);
}

int fs_rmdir(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name)
{
	return remove_name(fs, cred, parent, name, true);
}

int fs_readlink(struct fs *fs, uint64_t ino, char **ret_target)
{
	struct lockset ls;
	struct inode *ip;
	char *s = NULL;
	int r;

	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r == 0) {
		if (!S_ISLNK(ip->rec.mode))
			r = -EINVAL;
		else if (!(s = strndup(ip->idata ? (const char *)ip->idata : "", ip->ilen)))
			r = -ENOMEM;
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	if (r == 0)
		*ret_target = s;
	return r;
}
