/*
 * readdir.c - directory handles and listing: opendir, readdir,
 * readdirplus, releasedir, fsyncdir.
 *
 * A listing is a prefix scan of 'D' dir-ino, in name order, on an engine
 * iterator taken at each call (a snapshot: it never blocks writers).  The
 * cursor is a name: each call resumes at the first name after the last one
 * the caller took, so entries added or removed while a listing runs never
 * make it repeat or skip another entry (POSIX lets the new or removed ones
 * themselves appear or not).  The kernel hands back an opaque 64-bit offset,
 * not a name, so each handle numbers the entries it hands out (cookies, 3
 * and up; 1 and 2 are "." and "..") and remembers the names behind the
 * cookies of its last two calls: the kernel always resumes after an entry
 * of the last reply (or the one before, if that reply was lost), so memory
 * stays bounded by two replies whatever the directory's size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

static void batch_free(struct dir_batch *b)
{
	for (int i = 0; i < b->n; i++)
		free(b->names[i]);
	free(b->names);
	memset(b, 0, sizeof(*b));
}

static int batch_add(struct dir_batch *b, const char *name)
{
	if (b->n == b->cap) {
		int nc = b->cap ? b->cap * 2 : 32;
		char **nv = realloc(b->names, (size_t)nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		b->names = nv;
		b->cap = nc;
	}
	b->names[b->n] = strdup(name);
	if (!b->names[b->n])
		return -ENOMEM;
	b->n++;
	return 0;
}

static const char *batch_find(const struct dir_batch *b, off_t cookie)
{
	if (b->n && cookie >= b->first && cookie < b->first + b->n)
		return b->names[cookie - b->first];
	return NULL;
}

int fs_opendir(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int flags,
               struct fs_dir **ret_dh)
{
	struct fs_dir *dh;
	struct lockset ls;
	struct inode *ip;
	int r;

	(void)flags;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r == 0) {
		if (!S_ISDIR(ip->rec.mode))
			r = -ENOTDIR;
		else
			r = fs_perm(cred, &ip->rec, FS_MAY_READ);
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	if (r < 0)
		return r;
	dh = calloc(1, sizeof(*dh));
	if (!dh)
		return -ENOMEM;
	dh->ino = ino;
	dh->next_cookie = 3;
	pthread_mutex_init(&dh->mu, NULL);
	pthread_mutex_lock(&fs->handles_mu);
	dh->next_h = fs->dirs;
	if (fs->dirs)
		fs->dirs->prev_h = dh;
	fs->dirs = dh;
	pthread_mutex_unlock(&fs->handles_mu);
	*ret_dh = dh;
	return 0;
}

static void dir_free(struct fs_dir *dh)
{
	batch_free(&dh->cur);
	batch_free(&dh->prev);
	pthread_mutex_destroy(&dh->mu);
	free(dh);
}

int fs_releasedir(struct fs *fs, struct fs_dir *dh)
{
	if (!dh)
		return 0;
	pthread_mutex_lock(&fs->handles_mu);
	if (dh->prev_h)
		dh->prev_h->next_h = dh->next_h;
	else
		fs->dirs = dh->next_h;
	if (dh->next_h)
		dh->next_h->prev_h = dh->prev_h;
	pthread_mutex_unlock(&fs->handles_mu);
	dir_free(dh);
	return 0;
}

void fs_dir_free_all(struct fs *fs)
{
	while (fs->dirs) {
		struct fs_dir *dh = fs->dirs;

		fs->dirs = dh->next_h;
		dir_free(dh);
	}
}

int fs_fsyncdir(struct fs *fs, uint64_t ino, int datasync)
{
	(void)ino;
	(void)datasync;
	return lsm_sync(fs->db);
}

/* The entry for ino: full attributes for readdirplus (then a counted
 * lookup, undone by the caller if the entry is not taken), else ino and
 * type.  -ENOENT if it vanished meanwhile. */
static int entry_for(struct fs *fs, uint64_t ino, uint32_t mode, bool plus, struct fs_entry *e,
                     struct inode **ret_ip)
{
	struct lockset ls;
	struct inode *ip;
	int r;

	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr.st_ino = ino;
	e->attr.st_mode = mode;
	*ret_ip = NULL;
	if (!plus)
		return 0;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r == 0) {
		fs_inode_entry(fs, ip, e);
		*ret_ip = ip;
	}
	fs_lockset_unlock(fs, &ls);
	return r;
}

/* Emits "." or ".." (cookie 1 or 2).  Returns 0 taken, 1 full, -errno. */
static int emit_dot(struct fs *fs, struct fs_dir *dh, bool dotdot, bool plus, fs_fill_fn fill,
                    void *arg)
{
	struct fs_entry e;
	struct inode *ip;
	uint64_t ino = dh->ino;
	int r;

	if (dotdot) {
		struct lockset ls;

		fs_lockset_init(&ls, false);
		fs_lockset_add(&ls, dh->ino);
		fs_lockset_lock(fs, &ls);
		r = fs_inode_get_any(fs, dh->ino, &ip);
		if (r == 0) {
			ino = ip->rec.parent ? ip->rec.parent : dh->ino;
			fs_inode_put(fs, ip);
		}
		fs_lockset_unlock(fs, &ls);
	}
	r = entry_for(fs, ino, S_IFDIR, plus, &e, &ip);
	if (r == -ENOENT) {
		/* A removed directory still lists "." and "..". */
		r = entry_for(fs, ino, S_IFDIR, false, &e, &ip);
	}
	if (r < 0)
		return r;
	r = fill(arg, dotdot ? ".." : ".", &e, dotdot ? 2 : 1);
	fs_inode_put(fs, ip);  /* "." and ".." are never counted lookups */
	return r;
}

static int do_readdir(struct fs *fs, struct fs_dir *dh, off_t off, fs_fill_fn fill, void *arg,
                      bool plus)
{
	uint8_t key[FS_KEY_NAME_MAX];
	struct dir_batch nb = { 0 };
	char *after = NULL, name[FS_NAME_MAX + 1];
	lsm_iter *it = NULL;
	size_t plen, klen;
	int r = 0, taken = 0;

	if (off == 0)
		fs_touch_atime(fs, dh->ino);
	pthread_mutex_lock(&dh->mu);
	if (off < 0) {
		r = -EINVAL;
		goto out;
	}
	if (off > 2) {
		const char *n = batch_find(&dh->cur, off);

		if (!n)
			n = batch_find(&dh->prev, off);
		if (!n) {
			r = -EINVAL;
			goto out;
		}
		after = strdup(n);
		if (!after) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (off < 1) {
		r = emit_dot(fs, dh, false, plus, fill, arg);
		if (r != 0)
			goto out;
		taken++;
	}
	if (off < 2) {
		r = emit_dot(fs, dh, true, plus, fill, arg);
		if (r != 0)
			goto out;
		taken++;
	}

	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		goto out;
	plen = fs_key_prefix(key, FS_KEY_DIRENT, dh->ino);
	if (after) {
		klen = fs_key_dirent(key, dh->ino, after, strlen(after));
		lsm_iter_seek(it, key, klen);
		if (lsm_iter_valid(it)) {
			size_t kl;
			const void *k = lsm_iter_key(it, &kl);

			if (kl == klen && memcmp(k, key, klen) == 0)
				lsm_iter_next(it);
		}
	} else {
		lsm_iter_seek(it, key, plen);
	}
	nb.first = dh->next_cookie;
	for (; lsm_iter_valid(it); lsm_iter_next(it)) {
		const char *nm;
		const void *k = lsm_iter_key(it, &klen), *v;
		size_t nlen, vlen;
		uint64_t parent, ino;
		uint8_t dtype;
		struct fs_entry e;
		struct inode *ip;

		if (klen < plen || memcmp(k, key, plen) != 0)
			break;
		r = fs_key_parse_named(k, klen, FS_KEY_DIRENT, &parent, &nm, &nlen);
		if (r == 0)
			r = lsm_iter_value(it, &v, &vlen);
		if (r == 0)
			r = fs_dirent_decode(v, vlen, &ino, &dtype);
		if (r < 0) {
			r = lsm_errf(-EUCLEAN, "directory %llu: damaged entry (run fsck.lsmfs)",
			             (unsigned long long)dh->ino);
			break;
		}
		memcpy(name, nm, nlen);
		name[nlen] = '\0';
		r = entry_for(fs, ino, (uint32_t)dtype << 12, plus, &e, &ip);
		if (r == -ENOENT) {
			r = 0;   /* removed since the iterator's snapshot */
			continue;
		}
		if (r < 0)
			break;
		r = fill(arg, name, &e, dh->next_cookie);
		if (r == 0) {
			if (ip)
				fs_inode_add_lookup(fs, ip, 1);
			r = batch_add(&nb, name);
			if (r == 0) {
				dh->next_cookie++;
				taken++;
			}
		}
		fs_inode_put(fs, ip);
		if (r != 0)
			break;
	}
	if (r == 0)
		r = lsm_iter_status(it);
out:
	if (nb.n > 0) {
		batch_free(&dh->prev);
		dh->prev = dh->cur;
		dh->cur = nb;
	} else {
		batch_free(&nb);
	}
	pthread_mutex_unlock(&dh->mu);
	lsm_iter_free(it);
	free(after);
	/* An error after some entries were taken is reported by the next call:
	 * the taken ones (and their lookups) must reach the caller. */
	if (r < 0 && taken == 0)
		return r;
	return taken;
}

int fs_readdir(struct fs *fs, struct fs_dir *dh, off_t off, fs_fill_fn fill, void *arg)
{
	return do_readdir(fs, dh, off, fill, arg, false);
}

int fs_readdirplus(struct fs *fs, struct fs_dir *dh, off_t off, fs_fill_fn fill, void *arg)
{
	return do_readdir(fs, dh, off, fill, arg, true);
}
