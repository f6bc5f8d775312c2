/*
 * falloc.c - space and holes: fallocate (extend, keep size, punch hole)
 * and lseek's SEEK_DATA / SEEK_HOLE, over the block layout file.c keeps
 * (an absent block key is a hole; see file.c).  The engine allocates on
 * write, so fallocate never reserves space: mode 0 only extends the size
 * (the new range reads as zeros, as after a real fallocate); punching a
 * hole deletes the whole blocks inside the range (a prefix scan) and zeroes
 * the partial blocks at its edges, in one batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

/* Zeroes [s, e) of block idx if it exists. */
static int zero_in_block(struct txn *t, struct inode *ip, uint64_t idx, size_t s, size_t e)
{
	uint32_t bs = t->fs->sb.block_size;
	uint8_t *buf = malloc(bs);
	bool present;
	int r;

	if (!buf)
		return -ENOMEM;
	r = fs_block_read(t->fs, ip->ino, idx, buf, &present);
	if (r == 0 && present) {
		memset(buf + s, 0, e - s);
		r = fs_block_put(t, ip->ino, idx, buf, bs);
	}
	free(buf);
	return r;
}

static int punch(struct txn *t, struct inode *ip, uint64_t start, uint64_t end)
{
	struct fs_inode_rec *rec = fs_txn_rec(t, ip);
	uint32_t bs = t->fs->sb.block_size;
	uint64_t first_full, end_full, n, next;
	uint8_t *nb;
	int r;

	if (end > rec->size)
		end = rec->size;
	if (start >= end)
		return 0;
	if (rec->flags & FS_INODE_INLINE) {
		r = fs_inline_resize(t, ip, (size_t)rec->size, &nb);
		if (r == 0)
			memset(nb + start, 0, end - start);
		return r;
	}
	first_full = start / bs + (start % bs != 0);
	/* Past the end of file everything is zero: the last block counts as whole. */
	end_full = end == rec->size ? end / bs + (end % bs != 0) : end / bs;
	if (first_full < end_full) {
		r = fs_file_delete_blocks(t->fs, t->b, ip->ino, first_full, end_full, UINT64_MAX,
		                          &n, &next);
		if (r < 0)
			return r;
		rec->nblocks -= n < rec->nblocks ? n : rec->nblocks;
	}
	if (start % bs) {
		uint64_t idx = start / bs;
		uint64_t e = end - idx * bs < bs ? end - idx * bs : bs;

		r = zero_in_block(t, ip, idx, start % bs, (size_t)e);
		if (r < 0)
			return r;
	}
	if (end % bs && end != rec->size && end / bs >= first_full)
		return zero_in_block(t, ip, end / bs, 0, end % bs);
	return 0;
}

int fs_fallocate(struct fs *fs, const struct fs_cred *cred, struct fs_file *fh, int mode, off_t off,
                 off_t len)
{
	struct inode *ip = fh->ip;
	struct fs_inode_rec *rec;
	struct lockset ls;
	uint32_t setid;
	uint64_t end;
	struct txn t;
	int r;

	if ((fh->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE &&
	    mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	r = fs_check_rw(fs);
	if (r < 0)
		return r;
	if ((uint64_t)off > FS_MAX_FILE_SIZE || (uint64_t)len > FS_MAX_FILE_SIZE - (uint64_t)off)
		return -EFBIG;
	end = (uint64_t)off + (uint64_t)len;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, ip->ino);
	fs_lockset_lock(fs, &ls);
	if (S_ISDIR(ip->rec.mode)) {
		r = -EISDIR;
		goto out;
	}
	if (!S_ISREG(ip->rec.mode)) {
		r = -ENODEV;
		goto out;
	}
	if (mode == FALLOC_FL_KEEP_SIZE || (mode == 0 && end <= ip->rec.size))
		goto out;   /* nothing to reserve: the engine allocates on write */
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		goto out;
	rec = fs_txn_rec(&t, ip);
	if (mode == 0)
		r = fs_file_truncate(&t, ip, end);
	else
		r = punch(&t, ip, (uint64_t)off, end);
	if (r == 0)
		r = fs_kill_caps(&t, ip);
	if (r < 0) {
		fs_txn_abort(&t);
		goto out;
	}
	if (cred)
		fs_kill_suid(cred, rec);
	setid = (ip->rec.mode ^ rec->mode) & (S_ISUID | S_ISGID);
	rec->mtime = rec->ctime = t.now;
	r = fs_txn_commit(&t);
	if (r == 0 && setid)
		atomic_store(&fh->setid_cleared, true);
out:
	fs_lockset_unlock(fs, &ls);
	return r;
}

off_t fs_lseek(struct fs *fs, struct fs_file *fh, off_t off, int whence)
{
	struct inode *ip = fh->ip;
	uint32_t bs = fs->sb.block_size;
	uint8_t key[FS_KEY_BLOCK_LEN];
	struct lockset ls;
	uint64_t size, idx, pos;
	lsm_iter *it = NULL;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, ip->ino);
	fs_lockset_lock(fs, &ls);
	size = ip->rec.size;
	if (off < 0 || (uint64_t)off >= size) {
		r = -ENXIO;
		goto out;
	}
	if (!S_ISREG(ip->rec.mode) || (ip->rec.flags & FS_INODE_INLINE)) {
		r = whence == SEEK_DATA ? off : (off_t)size;
		goto out;
	}
	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		goto out;
	idx = (uint64_t)off / bs;
	lsm_iter_seek(it, key, fs_key_block(key, ip->ino, idx));
	if (whence == SEEK_DATA) {
		uint64_t kino, kidx;
		size_t kl;
		const void *k;

		r = -ENXIO;
		if (lsm_iter_valid(it)) {
			k = lsm_iter_key(it, &kl);
			if (fs_key_parse_block(k, kl, &kino, &kidx) == 0 && kino == ip->ino) {
				pos = kidx * bs > (uint64_t)off ? kidx * bs : (uint64_t)off;
				if (pos < size)
					r = (off_t)pos;
			}
		}
	} else {
		for (; lsm_iter_valid(it); lsm_iter_next(it)) {
			uint64_t kino, kidx;
			size_t kl;
			const void *k = lsm_iter_key(it, &kl);

			if (fs_key_parse_block(k, kl, &kino, &kidx) < 0 || kino != ip->ino ||
			    kidx != idx)
				break;
			idx++;
		}
		pos = idx * bs > (uint64_t)off ? idx * bs : (uint64_t)off;
		r = (off_t)(pos < size ? pos : size);
	}
	if (lsm_iter_status(it) < 0)
		r = lsm_iter_status(it);
out:
	lsm_iter_free(it);
	fs_lockset_unlock(fs, &ls);
	return r;
}
