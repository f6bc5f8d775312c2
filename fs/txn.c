/*
 * txn.c - one operation, one batch.  A transaction gathers everything an
 * operation changes: key puts and deletes go straight into one engine batch,
 * and the new inode records are kept aside (at most TXN_MAX_INODES) so that
 * several changes to one inode within the operation (a rename inside one
 * directory, a write that also clears S_ISUID) merge into one record.  At
 * commit the records are encoded into the batch, the batch is written with
 * one lsm_write, and only then are the records copied into the inode cache,
 * so a failed operation leaves both the store and the cache as they were.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_int.h"

struct timespec fs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

int fs_txn_begin(struct fs *fs, struct txn *t)
{
	int r;

	t->fs = fs;
	t->n = 0;
	t->now = fs_now();
	r = lsm_batch_new(&t->b);
	if (r < 0)
		t->b = NULL;
	return r;
}

struct txn_inode *fs_txn_slot(struct txn *t, struct inode *ip)
{
	struct txn_inode *u;

	for (int i = 0; i < t->n; i++)
		if (t->u[i].ip == ip)
			return &t->u[i];
	if (t->n == TXN_MAX_INODES)
		abort();  /* no operation changes more inodes: a bug */
	u = &t->u[t->n++];
	memset(u, 0, sizeof(*u));
	u->ip = ip;
	u->rec = ip->rec;
	return u;
}

struct fs_inode_rec *fs_txn_rec(struct txn *t, struct inode *ip)
{
	return &fs_txn_slot(t, ip)->rec;
}

void fs_txn_set_idata(struct txn *t, struct inode *ip, uint8_t *data, size_t len)
{
	struct txn_inode *u = fs_txn_slot(t, ip);

	if (u->set_idata)
		free(u->idata);
	u->idata = data;
	u->ilen = len;
	u->set_idata = true;
}

int fs_txn_put(struct txn *t, const void *k, size_t kl, const void *v, size_t vl)
{
	return lsm_batch_put(t->b, k, kl, v, vl);
}

int fs_txn_del(struct txn *t, const void *k, size_t kl)
{
	return lsm_batch_delete(t->b, k, kl);
}

int fs_txn_del_xattrs(struct txn *t, uint64_t ino)
{
	uint8_t prefix[FS_KEY_INO_LEN];
	size_t plen = fs_key_prefix(prefix, FS_KEY_XATTR, ino);
	lsm_iter *it;
	int r;

	r = lsm_iter_new(t->fs->db, NULL, &it);
	if (r < 0)
		return r;
	for (lsm_iter_seek(it, prefix, plen); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const void *k = lsm_iter_key(it, &kl);

		if (kl < plen || memcmp(k, prefix, plen) != 0)
			break;
		r = lsm_batch_delete(t->b, k, kl);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = lsm_iter_status(it);
	lsm_iter_free(it);
	return r;
}

static void txn_free_pending(struct txn *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->u[i].set_idata)
			free(t->u[i].idata);
	t->n = 0;
}

void fs_txn_abort(struct txn *t)
{
	txn_free_pending(t);
	lsm_batch_free(t->b);
	t->b = NULL;
}

/* Adds each pending record (or its deletion) to the batch. */
static int txn_encode(struct txn *t)
{
	/* inline bytes: a symlink target (< 4096) or file data (<= 4096) */
	uint8_t key[FS_KEY_INO_LEN], buf[FS_INODE_HDR_LEN + FS_INLINE_MAX_LIMIT];
	int r = 0;

	for (int i = 0; i < t->n && r == 0; i++) {
		struct txn_inode *u = &t->u[i];
		uint64_t ino = u->ip->ino;
		const uint8_t *idata = u->set_idata ? u->idata : u->ip->idata;
		size_t ilen = u->set_idata ? u->ilen : u->ip->ilen, len;

		if (u->del) {
			r = lsm_batch_delete(t->b, key, fs_key_inode(key, ino));
			if (r == 0 && u->ip->orphan)
				r = lsm_batch_delete(t->b, key, fs_key_orphan(key, ino));
			continue;
		}
		if (ilen > sizeof(buf) - FS_INODE_HDR_LEN)
			return -EINVAL;
		len = fs_inode_encode(&u->rec, idata, ilen, buf);
		r = lsm_batch_put(t->b, key, fs_key_inode(key, ino), buf, len);
		if (r == 0 && u->set_orphan)
			r = lsm_batch_put(t->b, key, fs_key_orphan(key, ino), NULL, 0);
	}
	return r;
}

int fs_txn_commit(struct txn *t)
{
	struct fs *fs = t->fs;
	int r, delta = 0;

	r = txn_encode(t);
	if (r == 0 && lsm_batch_count(t->b) > 0)
		r = lsm_write(fs->db, &fs->wo, t->b);
	if (r < 0) {
		fs_txn_abort(t);
		return r;
	}
	for (int i = 0; i < t->n; i++) {
		struct txn_inode *u = &t->u[i];
		struct inode *ip = u->ip;

		ip->rec = u->rec;
		if (u->set_idata) {
			free(ip->idata);
			ip->idata = u->idata;
			ip->ilen = u->ilen;
			u->set_idata = false;
		}
		if (u->set_orphan)
			ip->orphan = true;
		if (u->del) {
			fs_inode_mark_deleted(fs, ip);
			delta--;
		}
		if (u->created)
			delta++;
	}
	if (delta)
		__atomic_add_fetch(&fs->inode_count, delta, __ATOMIC_RELAXED);
	t->n = 0;
	lsm_batch_free(t->b);
	t->b = NULL;
	return 0;
}
