/*
 * rename.c - rename(2) and renameat2(2) with RENAME_NOREPLACE and
 * RENAME_EXCHANGE, as one batch: the old dirent goes, the new one comes (or
 * both swap), a replaced inode loses its link, moved directories get their
 * new parent, and both parents' entry counts, link counts and times change.
 *
 * Up to four inodes take part (two parents, source, target); they are
 * locked together in stripe order, and when a dirent read under the
 * parents' locks names an inode whose stripe is busy the whole set is
 * dropped and taken again with it.  A directory moving to another parent
 * must not end up inside itself: the walk from the new parent up to the
 * root that proves it reads parent pointers that only such moves change, so
 * those moves also hold fs->rename_mu, as Linux holds s_vfs_rename_mutex.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

/* Is dir (a directory) anc itself or below anc?  Walks parent pointers
 * from the store (REQUIRES: fs->rename_mu, which keeps them still). */
static int is_within(struct fs *fs, uint64_t dir, uint64_t anc)
{
	for (unsigned depth = 0; depth < 1u << 20; depth++) {
		uint8_t key[FS_KEY_INO_LEN];
		struct fs_inode_rec rec;
		const uint8_t *idata;
		size_t len, ilen;
		void *val;
		int r;

		if (dir == anc)
			return 1;
		if (dir == FS_ROOT_INO)
			return 0;
		r = lsm_get(fs->db, NULL, key, fs_key_inode(key, dir), &val, &len);
		if (r < 0)
			return r;
		r = fs_inode_decode(val, len, &rec, &idata, &ilen);
		free(val);
		if (r < 0)
			return r;
		if (rec.parent == dir || rec.parent == 0)
			return lsm_errf(-EUCLEAN, "directory %llu: bad parent pointer (run fsck.lsmfs)",
			                (unsigned long long)dir);
		dir = rec.parent;
	}
	return lsm_errf(-ELOOP, "directory tree loop above %llu (run fsck.lsmfs)",
	                (unsigned long long)dir);
}

struct rename_ctx {
	struct inode *p1, *p2, *src, *dst;
	uint64_t src_ino, dst_ino;
	uint8_t src_type, dst_type;
	bool have_dst;
};

static void ctx_put(struct fs *fs, struct rename_ctx *c)
{
	fs_inode_put(fs, c->dst);
	fs_inode_put(fs, c->src);
	fs_inode_put(fs, c->p2);
	fs_inode_put(fs, c->p1);
	memset(c, 0, sizeof(*c));
}

/* The checks rename(2) makes once everything is locked and loaded. */
static int rename_check(struct fs *fs, const struct fs_cred *cred, struct rename_ctx *c,
                        unsigned int flags)
{
	bool sdir = S_ISDIR(c->src->rec.mode), ddir = c->dst && S_ISDIR(c->dst->rec.mode);
	bool moved = c->p1 != c->p2;
	int r;

	r = fs_sticky_ok(cred, &c->p1->rec, &c->src->rec);
	if (r == 0 && c->dst)
		r = fs_sticky_ok(cred, &c->p2->rec, &c->dst->rec);
	if (r < 0)
		return r;
	if (!(flags & RENAME_EXCHANGE) && c->dst) {
		if (sdir && !ddir)
			return -ENOTDIR;
		if (!sdir && ddir)
			return -EISDIR;
		if (ddir && c->dst->rec.size > 0)
			return -ENOTEMPTY;
	}
	/* A directory changing parents has its ".." rewritten: it needs write
	 * permission on itself (Linux's may_delete/may_create rule). */
	if (moved && sdir && (r = fs_perm(cred, &c->src->rec, FS_MAY_WRITE)) < 0)
		return r;
	if (moved && (flags & RENAME_EXCHANGE) && ddir &&
	    (r = fs_perm(cred, &c->dst->rec, FS_MAY_WRITE)) < 0)
		return r;
	if (moved && sdir) {
		r = is_within(fs, c->p2->ino, c->src->ino);
		if (r != 0)
			return r < 0 ? r : -EINVAL;
	}
	if (moved && (flags & RENAME_EXCHANGE) && ddir) {
		r = is_within(fs, c->p1->ino, c->dst->ino);
		if (r != 0)
			return r < 0 ? r : -EINVAL;
	}
	if (!sdir && c->p2->rec.size >= UINT64_MAX - 1)
		return -ENOSPC;
	if (moved && sdir && !ddir && c->p2->rec.nlink >= FS_DIR_LINK_MAX)
		return -EMLINK;
	return 0;
}

static int put_dirent(struct txn *t, uint64_t parent, const char *name, size_t len,
                      const struct inode *child)
{
	uint8_t key[FS_KEY_NAME_MAX], dent[FS_DIRENT_LEN];

	fs_dirent_encode(child->ino, fs_mode_to_dtype(child->rec.mode), dent);
	return fs_txn_put(t, key, fs_key_dirent(key, parent, name, len), dent, sizeof(dent));
}

static int rename_txn(struct fs *fs, struct rename_ctx *c, const char *n1, size_t l1,
                      const char *n2, size_t l2, unsigned int flags)
{
	uint8_t key[FS_KEY_NAME_MAX];
	bool sdir = S_ISDIR(c->src->rec.mode), ddir = c->dst && S_ISDIR(c->dst->rec.mode);
	bool moved = c->p1 != c->p2;
	struct txn t;
	int r;

	r = fs_txn_begin(fs, &t);
	if (r < 0)
		return r;
	fs_txn_rec(&t, c->src)->ctime = t.now;
	if (flags & RENAME_EXCHANGE) {
		r = put_dirent(&t, c->p1->ino, n1, l1, c->dst);
		if (r == 0)
			r = put_dirent(&t, c->p2->ino, n2, l2, c->src);
		fs_txn_rec(&t, c->dst)->ctime = t.now;
		if (moved) {
			if (sdir)
				fs_txn_rec(&t, c->src)->parent = c->p2->ino;
			if (ddir)
				fs_txn_rec(&t, c->dst)->parent = c->p1->ino;
			fs_dir_changed(&t, c->p1, 0, (int)ddir - (int)sdir);
			fs_dir_changed(&t, c->p2, 0, (int)sdir - (int)ddir);
		} else {
			fs_dir_changed(&t, c->p1, 0, 0);
		}
	} else {
		r = fs_txn_del(&t, key, fs_key_dirent(key, c->p1->ino, n1, l1));
		if (r == 0)
			r = put_dirent(&t, c->p2->ino, n2, l2, c->src);
		if (r == 0 && c->dst)
			r = fs_drop_link(&t, c->dst);
		if (moved && sdir)
			fs_txn_rec(&t, c->src)->parent = c->p2->ino;
		fs_dir_changed(&t, c->p1, -1, sdir ? -1 : 0);
		fs_dir_changed(&t, c->p2, c->dst ? 0 : 1, (sdir ? 1 : 0) - (ddir ? 1 : 0));
	}
	if (r < 0) {
		fs_txn_abort(&t);
		return r;
	}
	r = fs_txn_commit(&t);
	if (r == 0 && c->dst && !(flags & RENAME_EXCHANGE))
		fs_finish_drop(fs, c->dst);
	return r;
}

/* Reads both dirents under the locks in ls.  Returns 0, 1 if ls must be
 * retaken with the stripes of c->src_ino and c->dst_ino added, or -errno. */
static int rename_lookup(struct fs *fs, const struct fs_cred *cred, struct lockset *ls,
                         uint64_t parent, const char *n1, size_t l1, uint64_t newparent,
                         const char *n2, size_t l2, struct rename_ctx *c)
{
	int r;

	r = fs_inode_get(fs, parent, &c->p1);
	if (r == 0)
		r = fs_inode_get(fs, newparent, &c->p2);
	if (r < 0)
		return r;
	if (!S_ISDIR(c->p1->rec.mode) || !S_ISDIR(c->p2->rec.mode))
		return -ENOTDIR;
	r = fs_perm(cred, &c->p1->rec, FS_MAY_WRITE | FS_MAY_EXEC);
	if (r == 0)
		r = fs_perm(cred, &c->p2->rec, FS_MAY_WRITE | FS_MAY_EXEC);
	if (r == 0)
		r = fs_dirent_get(fs, parent, n1, l1, &c->src_ino, &c->src_type);
	if (r < 0)
		return r;
	r = fs_dirent_get(fs, newparent, n2, l2, &c->dst_ino, &c->dst_type);
	if (r < 0 && r != -ENOENT)
		return r;
	c->have_dst = r == 0;
	if (!fs_lockset_try_add(fs, ls, c->src_ino) ||
	    (c->have_dst && !fs_lockset_try_add(fs, ls, c->dst_ino)))
		return 1;
	r = fs_inode_get(fs, c->src_ino, &c->src);
	if (r == 0 && c->have_dst)
		r = fs_inode_get(fs, c->dst_ino, &c->dst);
	return r;
}

int fs_rename(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              uint64_t newparent, const char *newname, unsigned int flags)
{
	struct rename_ctx c = { 0 };
	struct lockset ls;
	bool global = false;
	size_t l1, l2;
	int r;

	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)))
		return -EINVAL;
	r = fs_check_name(name, &l1);
	if (r == 0)
		r = fs_check_name(newname, &l2);
	if (r < 0)
		return r;
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(newname, ".") ||
	    !strcmp(newname, ".."))
		return -EBUSY;
	r = fs_check_rw(fs);
	if (r < 0)
		return r;

	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, parent);
	fs_lockset_add(&ls, newparent);
	for (;;) {
		fs_lockset_lock(fs, &ls);
		r = rename_lookup(fs, cred, &ls, parent, name, l1, newparent, newname, l2, &c);
		if (r == 0 && parent != newparent && !global &&
		    (c.src_type == DT_DIR || (c.have_dst && c.dst_type == DT_DIR)))
			r = 2;   /* a directory changes parents: retry under rename_mu */
		if (r <= 0)
			break;
		fs_lockset_unlock(fs, &ls);
		/* Only now, with nothing held, may the set grow: unlock must
		 * never release a stripe that was not taken. */
		if (r == 1) {
			fs_lockset_add(&ls, c.src_ino);
			if (c.have_dst)
				fs_lockset_add(&ls, c.dst_ino);
		}
		ctx_put(fs, &c);
		if (r == 2) {
			pthread_mutex_lock(&fs->rename_mu);
			global = true;
		}
	}
	if (r < 0)
		goto out;
	if (!c.have_dst && (flags & RENAME_EXCHANGE)) {
		r = -ENOENT;
		goto out;
	}
	if (c.have_dst && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
		goto out;
	}
	if (c.dst == c.src)
		goto out;   /* two links of one inode: rename does nothing */
	r = rename_check(fs, cred, &c, flags);
	if (r == 0)
		r = rename_txn(fs, &c, name, l1, newname, l2, flags);
out:
	ctx_put(fs, &c);
	fs_lockset_unlock(fs, &ls);
	if (global)
		pthread_mutex_unlock(&fs->rename_mu);
	return r;
}
