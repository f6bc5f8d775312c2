/*
 * file.c - file contents: open handles, read, write and truncate over block
 * keys, and the small-file inline form.
 *
 * A regular file is either inline (FS_INODE_INLINE: its bytes, exactly size
 * of them, live in the inode record; at most the superblock's inline_max)
 * or in blocks: key 'B' ino index holds bytes [index * block_size, ...) with
 * trailing zeros trimmed; an absent key is a hole and reads as zeros; an
 * empty value is a block of zeros that is data, not a hole (SEEK_DATA finds
 * it).  Two rules keep this exact: no byte at or past size is ever stored
 * (truncate trims the last block and deletes the ones after it), so growing
 * a file never exposes old bytes; and nblocks in the record counts the block
 * keys, so st_blocks is right without a scan.  A file grows out of inline
 * form when written or truncated past inline_max and goes back to it only
 * when truncated to zero.
 *
 * Every write, however many blocks it touches, is one batch with the new
 * inode record.  Writes need the old contents only for blocks they cover
 * partly, and need to know whether a fully covered block existed (for
 * nblocks) only when the file is sparse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

static uint64_t blocks_for(uint64_t size, uint32_t bs)
{
	return size / bs + (size % bs != 0);
}

static size_t trimmed_len(const uint8_t *p, size_t n)
{
	while (n > 0 && p[n - 1] == 0)
		n--;
	return n;
}

/* Reads block idx of ino into buf (bs bytes, the rest zero-filled). */
int fs_block_read(struct fs *fs, uint64_t ino, uint64_t idx, uint8_t *buf, bool *ret_present)
{
	uint32_t bs = fs->sb.block_size;
	uint8_t key[FS_KEY_BLOCK_LEN];
	size_t len;
	void *val;
	int r;

	r = lsm_get(fs->db, NULL, key, fs_key_block(key, ino, idx), &val, &len);
	if (r == -ENOENT) {
		memset(buf, 0, bs);
		*ret_present = false;
		return 0;
	}
	if (r < 0)
		return r;
	if (len > bs) {
		free(val);
		return lsm_errf(-EUCLEAN, "inode %llu block %llu: %zu bytes in a %u-byte block "
		                "(run fsck.lsmfs)", (unsigned long long)ino,
		                (unsigned long long)idx, len, bs);
	}
	if (len)
		memcpy(buf, val, len);
	memset(buf + len, 0, bs - len);
	free(val);
	*ret_present = true;
	return 0;
}

static int block_exists(struct fs *fs, uint64_t ino, uint64_t idx, bool *ret_present)
{
	uint8_t key[FS_KEY_BLOCK_LEN];
	size_t len;
	void *val;
	int r;

	r = lsm_get(fs->db, NULL, key, fs_key_block(key, ino, idx), &val, &len);
	if (r == -ENOENT) {
		*ret_present = false;
		return 0;
	}
	if (r < 0)
		return r;
	free(val);
	*ret_present = true;
	return 0;
}

int fs_block_put(struct txn *t, uint64_t ino, uint64_t idx, const uint8_t *data, size_t len)
{
	uint8_t key[FS_KEY_BLOCK_LEN];

	return fs_txn_put(t, key, fs_key_block(key, ino, idx), data, trimmed_len(data, len));
}

int fs_file_delete_blocks(struct fs *fs, lsm_batch *b, uint64_t ino, uint64_t from, uint64_t to,
                          uint64_t max, uint64_t *ret_deleted, uint64_t *ret_next)
{
	uint8_t key[FS_KEY_BLOCK_LEN];
	uint64_t n = 0, next = from;
	lsm_iter *it;
	int r;

	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		return r;
	for (lsm_iter_seek(it, key, fs_key_block(key, ino, from)); lsm_iter_valid(it) && n < max;
	     lsm_iter_next(it)) {
		size_t kl;
		const void *k = lsm_iter_key(it, &kl);
		uint64_t kino, idx;

		if (fs_key_parse_block(k, kl, &kino, &idx) < 0 || kino != ino || idx >= to)
			break;
		r = lsm_batch_delete(b, k, kl);
		if (r < 0)
			break;
		n++;
		next = idx + 1;
	}
	if (r == 0)
		r = lsm_iter_status(it);
	lsm_iter_free(it);
	if (r < 0)
		return r;
	*ret_deleted = n;
	*ret_next = next;
	return 0;
}

/* The inline bytes ip will have once t commits. */
const uint8_t *fs_txn_idata(struct txn *t, struct inode *ip, size_t *ret_len)
{
	struct txn_inode *u = fs_txn_slot(t, ip);

	*ret_len = u->set_idata ? u->ilen : ip->ilen;
	return u->set_idata ? u->idata : ip->idata;
}

/* Turns an inline file into block form: its bytes become block 0. */
static int inline_to_blocks(struct txn *t, struct inode *ip)
{
	struct fs_inode_rec *rec = fs_txn_rec(t, ip);
	size_t ilen;
	const uint8_t *idata = fs_txn_idata(t, ip, &ilen);
	int r;

	if (rec->size > 0) {
		r = fs_block_put(t, ip->ino, 0, idata, ilen);
		if (r < 0)
			return r;
		rec->nblocks = 1;
	}
	rec->flags &= ~FS_INODE_INLINE;
	fs_txn_set_idata(t, ip, NULL, 0);
	return 0;
}

/* Sets the inline bytes to [0, newlen) of the old ones, zero-extended. */
int fs_inline_resize(struct txn *t, struct inode *ip, size_t newlen, uint8_t **ret_buf)
{
	size_t ilen;
	const uint8_t *idata = fs_txn_idata(t, ip, &ilen);
	uint8_t *nb = NULL;

	if (newlen) {
		nb = malloc(newlen);
		if (!nb)
			return -ENOMEM;
		if (ilen)
			memcpy(nb, idata, ilen < newlen ? ilen : newlen);
		if (ilen < newlen)
			memset(nb + ilen, 0, newlen - ilen);
	}
	fs_txn_set_idata(t, ip, nb, newlen);
	fs_txn_rec(t, ip)->size = newlen;
	if (ret_buf)
		*ret_buf = nb;
	return 0;
}

int fs_file_truncate(struct txn *t, struct inode *ip, uint64_t size)
{
	struct fs *fs = t->fs;
	struct fs_inode_rec *rec = fs_txn_rec(t, ip);
	uint32_t bs = fs->sb.block_size;
	uint64_t n, next;
	int r;

	if (rec->flags & FS_INODE_INLINE) {
		if (size <= fs->sb.inline_max)
			return fs_inline_resize(t, ip, (size_t)size, NULL);
		r = inline_to_blocks(t, ip);
		if (r == 0)
			rec->size = size;
		return r;
	}
	if (size < rec->size) {
		uint64_t first_dead = blocks_for(size, bs);

		r = fs_file_delete_blocks(fs, t->b, ip->ino, first_dead, UINT64_MAX, UINT64_MAX,
		                          &n, &next);
		if (r < 0)
			return r;
		rec->nblocks -= n < rec->nblocks ? n : rec->nblocks;
		if (size % bs) {
			uint8_t *buf = malloc(bs);
			bool present;

			if (!buf)
				return -ENOMEM;
			r = fs_block_read(fs, ip->ino, size / bs, buf, &present);
			if (r == 0 && present) {
				memset(buf + size % bs, 0, bs - size % bs);
				r = fs_block_put(t, ip->ino, size / bs, buf, bs);
			}
			free(buf);
			if (r < 0)
				return r;
		}
	}
	rec->size = size;
	if (size == 0) {
		rec->flags |= FS_INODE_INLINE;
		rec->nblocks = 0;
		fs_txn_set_idata(t, ip, NULL, 0);
	}
	return 0;
}

/* Writes buf to blocks [off, off + size) within t.  old_size is the size
 * before this write (blocks at or past it hold nothing). */
static int write_blocks(struct txn *t, struct inode *ip, const uint8_t *buf, size_t size,
                        uint64_t off, uint64_t old_size)
{
	struct fs *fs = t->fs;
	struct fs_inode_rec *rec = fs_txn_rec(t, ip);
	uint32_t bs = fs->sb.block_size;
	bool dense = rec->nblocks >= blocks_for(old_size, bs);
	uint64_t end = off + size;
	uint8_t *tmp = NULL;
	int r = 0;

	for (uint64_t idx = off / bs; idx * bs < end && r == 0; idx++) {
		uint64_t bstart = idx * bs;
		size_t s = off > bstart ? (size_t)(off - bstart) : 0;
		size_t e = end - bstart < bs ? (size_t)(end - bstart) : bs;
		const uint8_t *src = buf + (bstart + s - off);
		bool existed = false, beyond = bstart >= old_size;

		if (s == 0 && e == bs) {
			if (!beyond)
				r = dense ? (existed = true, 0) : block_exists(fs, ip->ino, idx, &existed);
			if (r == 0)
				r = fs_block_put(t, ip->ino, idx, src, bs);
		} else {
			if (!tmp && !(tmp = malloc(bs))) {
				r = -ENOMEM;
				break;
			}
			if (beyond)
				memset(tmp, 0, bs);
			else
				r = fs_block_read(fs, ip->ino, idx, tmp, &existed);
			if (r == 0) {
				memcpy(tmp + s, src, e - s);
				r = fs_block_put(t, ip->ino, idx, tmp, bs);
			}
		}
		if (r == 0 && !existed)
			rec->nblocks++;
	}
	free(tmp);
	return r;
}

/* Writes within t, in whichever form the file is or becomes. */
static int write_txn(struct txn *t, struct inode *ip, const void *buf, size_t size, uint64_t off)
{
	struct fs_inode_rec *rec = fs_txn_rec(t, ip);
	uint64_t end = off + size, old_size = rec->size;
	uint8_t *nb;
	int r;

	if (rec->flags & FS_INODE_INLINE) {
		if (end <= t->fs->sb.inline_max) {
			r = fs_inline_resize(t, ip, (size_t)(end > old_size ? end : old_size), &nb);
			if (r == 0)
				memcpy(nb + off, buf, size);
			return r;
		}
		r = inline_to_blocks(t, ip);
		if (r < 0)
			return r;
		/* Block 0 now sits in the batch, not the store: a write that
		 * covers it partly must see the inline bytes. */
		if (off < t->fs->sb.block_size && old_size > 0) {
			uint32_t bs = t->fs->sb.block_size;
			size_t ilen;
			const uint8_t *idata = ip->idata;
			size_t e = end < bs ? (size_t)end : bs;

			ilen = ip->ilen;
			nb = calloc(1, bs);
			if (!nb)
				return -ENOMEM;
			memcpy(nb, idata, ilen);
			memcpy(nb + off, buf, e - (size_t)off);
			r = fs_block_put(t, ip->ino, 0, nb, bs);
			free(nb);
			if (r < 0 || e == end)
				goto done;
			r = write_blocks(t, ip, (const uint8_t *)buf + (bs - off), size - (bs - off), bs,
			                 old_size);
			goto done;
		}
	}
	r = write_blocks(t, ip, buf, size, off, old_size);
done:
	if (r == 0 && end > rec->size)
		rec->size = end;
	return r;
}

/* Reads [off, off + size) of ip (REQUIRES: stripe held, off < size). */
static int read_blocks(struct fs *fs, struct inode *ip, uint8_t *buf, size_t n, uint64_t off)
{
	uint32_t bs = fs->sb.block_size;
	uint64_t first = off / bs, last = (off + n - 1) / bs;
	uint8_t key[FS_KEY_BLOCK_LEN];
	lsm_iter *it;
	int r;

	memset(buf, 0, n);
	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		return r;
	for (lsm_iter_seek(it, key, fs_key_block(key, ip->ino, first)); lsm_iter_valid(it);
	     lsm_iter_next(it)) {
		size_t kl, vl;
		const void *k = lsm_iter_key(it, &kl), *v;
		uint64_t kino, idx, bstart, lo, hi;

		if (fs_key_parse_block(k, kl, &kino, &idx) < 0 || kino != ip->ino || idx > last)
			break;
		r = lsm_iter_value(it, &v, &vl);
		if (r < 0)
			break;
		if (vl > bs) {
			r = lsm_errf(-EUCLEAN, "inode %llu block %llu: %zu bytes in a %u-byte block "
			             "(run fsck.lsmfs)", (unsigned long long)ip->ino,
			             (unsigned long long)idx, vl, bs);
			break;
		}
		bstart = idx * bs;
		lo = off > bstart ? off : bstart;
		hi = off + n < bstart + vl ? off + n : bstart + vl;
		if (hi > lo)
			memcpy(buf + (lo - off), (const uint8_t *)v + (lo - bstart), hi - lo);
	}
	if (r == 0)
		r = lsm_iter_status(it);
	lsm_iter_free(it);
	return r;
}

/* Reads up to size bytes at off.  REQUIRES: stripe held. */
static ssize_t read_locked(struct fs *fs, struct inode *ip, void *buf, size_t size, uint64_t off)
{
	uint64_t fsize = ip->rec.size;
	size_t n;
	int r;

	if (off >= fsize || size == 0)
		return 0;
	n = fsize - off < size ? (size_t)(fsize - off) : size;
	if (ip->rec.flags & FS_INODE_INLINE) {
		size_t have = off < ip->ilen ? ip->ilen - (size_t)off : 0;

		if (have > n)
			have = n;
		if (have)
			memcpy(buf, ip->idata + off, have);
		memset((uint8_t *)buf + have, 0, n - have);
		return (ssize_t)n;
	}
	if (off / fs->sb.block_size == (off + n - 1) / fs->sb.block_size) {
		/* One block: a point get beats setting up an iterator. */
		uint32_t bs = fs->sb.block_size;
		uint8_t *tmp = malloc(bs);
		bool present;

		if (!tmp)
			return -ENOMEM;
		r = fs_block_read(fs, ip->ino, off / bs, tmp, &present);
		if (r == 0)
			memcpy(buf, tmp + off % bs, n);
		free(tmp);
	} else {
		r = read_blocks(fs, ip, buf, n, off);
	}
	return r < 0 ? r : (ssize_t)n;
}

/* ---- handles ----------------------------------------------------------- */

void fs_file_handle_attach(struct fs *fs, struct fs_file *fh, struct inode *ip, int flags)
{
	fh->ip = ip;
	fh->flags = flags;
	fs_inode_add_open(fs, ip);
	pthread_mutex_lock(&fs->handles_mu);
	fh->prev_h = NULL;
	fh->next_h = fs->files;
	if (fs->files)
		fs->files->prev_h = fh;
	fs->files = fh;
	pthread_mutex_unlock(&fs->handles_mu);
}

uint64_t fs_file_ino(const struct fs_file *fh)
{
	return fh->ip->ino;
}

bool fs_file_take_setid_cleared(struct fs_file *fh)
{
	return atomic_exchange(&fh->setid_cleared, false);
}

int fs_open(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int flags,
            struct fs_file **ret_fh)
{
	int acc = flags & O_ACCMODE, mask = 0;
	bool trunc = (flags & O_TRUNC) != 0, writes = acc != O_RDONLY || trunc;
	struct fs_file *fh;
	struct lockset ls;
	struct inode *ip;
	struct txn t;
	int r;

	if (acc != O_WRONLY)
		mask |= FS_MAY_READ;
	if (writes)
		mask |= FS_MAY_WRITE;
	if (writes && (r = fs_check_rw(fs)) < 0)
		return r;
	fh = calloc(1, sizeof(*fh));
	if (!fh)
		return -ENOMEM;
	fs_lockset_init(&ls, trunc);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get(fs, ino, &ip);
	if (r < 0)
		goto out;
	if (S_ISDIR(ip->rec.mode) && writes)
		r = -EISDIR;
	else
		r = fs_perm(cred, &ip->rec, mask);
	if (r == 0 && trunc && S_ISREG(ip->rec.mode)) {
		r = fs_txn_begin(fs, &t);
		if (r == 0) {
			struct fs_inode_rec *rec = fs_txn_rec(&t, ip);

			r = fs_file_truncate(&t, ip, 0);
			if (r == 0)
				r = fs_kill_caps(&t, ip);
			fs_kill_suid(cred, rec);
			rec->mtime = rec->ctime = t.now;
			if (r == 0)
				r = fs_txn_commit(&t);
			else
				fs_txn_abort(&t);
		}
	}
	if (r == 0) {
		fs_file_handle_attach(fs, fh, ip, flags);
		*ret_fh = fh;
		fh = NULL;
	}
	fs_inode_put(fs, ip);
out:
	fs_lockset_unlock(fs, &ls);
	free(fh);
	return r;
}

int fs_release(struct fs *fs, struct fs_file *fh)
{
	struct lockset ls;
	struct inode *ip;
	int r = 0;

	if (!fh)
		return 0;
	pthread_mutex_lock(&fs->handles_mu);
	if (fh->prev_h)
		fh->prev_h->next_h = fh->next_h;
	else
		fs->files = fh->next_h;
	if (fh->next_h)
		fh->next_h->prev_h = fh->prev_h;
	pthread_mutex_unlock(&fs->handles_mu);

	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, fh->ip->ino);
	fs_lockset_lock(fs, &ls);
	/* Pin it across the count change so it cannot be freed under us. */
	if (fs_inode_get_any(fs, fh->ip->ino, &ip) == 0) {
		if (fs_inode_drop_open(fs, ip) == 0 && ip->orphan && !ip->deleted &&
		    ip->rec.nlink == 0 && !fs->read_only)
			r = fs_inode_reclaim(fs, ip);
		fs_inode_put(fs, ip);
	}
	fs_lockset_unlock(fs, &ls);
	free(fh);
	return r;
}

void fs_file_free_all(struct fs *fs)
{
	while (fs->files) {
		struct fs_file *fh = fs->files;

		fs->files = fh->next_h;
		free(fh);
	}
}

int fs_flush(struct fs *fs, struct fs_file *fh)
{
	(void)fs;
	(void)fh;
	return 0;
}

int fs_fsync(struct fs *fs, uint64_t ino, int datasync)
{
	(void)ino;
	(void)datasync;
	return lsm_sync(fs->db);
}

/* ---- read and write ---------------------------------------------------- */

ssize_t fs_read(struct fs *fs, struct fs_file *fh, void *buf, size_t size, off_t off)
{
	struct lockset ls;
	bool due;
	ssize_t r;

	if ((fh->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	fs_lockset_init(&ls, false);
	fs_lockset_add(&ls, fh->ip->ino);
	fs_lockset_lock(fs, &ls);
	r = read_locked(fs, fh->ip, buf, size, (uint64_t)off);
	due = r >= 0 && !(fh->flags & O_NOATIME) && fs_atime_due(fs, &fh->ip->rec);
	fs_lockset_unlock(fs, &ls);
	if (due)
		fs_touch_atime(fs, fh->ip->ino);
	return r;
}

/* The write itself, with its side effects, for write and copy_file_range.
 * REQUIRES: ip's stripe exclusive. */
static ssize_t write_locked(struct fs *fs, const struct fs_cred *cred, struct fs_file *fh,
                            const void *buf, size_t size, uint64_t off)
{
	struct inode *ip = fh->ip;
	uint32_t setid;
	struct fs_inode_rec *rec;
	struct txn t;
	int r;

	if (off > FS_MAX_FILE_SIZE || size > FS_MAX_FILE_SIZE - off)
		return -EFBIG;
	if (size == 0)
		return 0;
	r = fs_txn_begin(fs, &t);
	if (r < 0)
		return r;
	rec = fs_txn_rec(&t, ip);
	r = write_txn(&t, ip, buf, size, off);
	if (r == 0)
		r = fs_kill_caps(&t, ip);
	if (r < 0) {
		fs_txn_abort(&t);
		return r;
	}
	fs_kill_suid(cred, rec);
	rec->mtime = rec->ctime = t.now;
	setid = (ip->rec.mode ^ rec->mode) & (S_ISUID | S_ISGID);
	r = fs_txn_commit(&t);
	if (r < 0)
		return r;
	if (setid)
		atomic_store(&fh->setid_cleared, true);
	return (ssize_t)size;
}

ssize_t fs_write(struct fs *fs, const struct fs_cred *cred, struct fs_file *fh,
                 const void *buf, size_t size, off_t off)
{
	struct lockset ls;
	ssize_t r;

	if ((fh->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	r = fs_check_rw(fs);
	if (r < 0)
		return r;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, fh->ip->ino);
	fs_lockset_lock(fs, &ls);
	if (fh->flags & O_APPEND)
		off = (off_t)fh->ip->rec.size;
	r = write_locked(fs, cred, fh, buf, size, (uint64_t)off);
	fs_lockset_unlock(fs, &ls);
	return r;
}

ssize_t fs_copy_file_range(struct fs *fs, const struct fs_cred *cred,
                           struct fs_file *fh_in, off_t off_in,
                           struct fs_file *fh_out, off_t off_out, size_t len, int flags)
{
	struct inode *in = fh_in->ip, *out = fh_out->ip;
	struct lockset ls;
	uint8_t *buf = NULL;
	ssize_t r;

	if (flags != 0 || off_in < 0 || off_out < 0)
		return -EINVAL;
	if ((fh_in->flags & O_ACCMODE) == O_WRONLY || (fh_out->flags & O_ACCMODE) == O_RDONLY ||
	    (fh_out->flags & O_APPEND))
		return -EBADF;
	r = fs_check_rw(fs);
	if (r < 0)
		return r;
	if (len > FS_COPY_MAX)
		len = FS_COPY_MAX;
	if (in == out && (uint64_t)off_in < (uint64_t)off_out + len &&
	    (uint64_t)off_out < (uint64_t)off_in + len)
		return -EINVAL;
	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, in->ino);
	fs_lockset_add(&ls, out->ino);
	fs_lockset_lock(fs, &ls);
	if (S_ISDIR(in->rec.mode) || S_ISDIR(out->rec.mode)) {
		r = -EISDIR;
		goto out;
	}
	if ((uint64_t)off_in >= in->rec.size || len == 0) {
		r = 0;
		goto out;
	}
	if (in->rec.size - (uint64_t)off_in < len)
		len = (size_t)(in->rec.size - (uint64_t)off_in);
	buf = malloc(len);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = read_locked(fs, in, buf, len, (uint64_t)off_in);
	if (r > 0)
		r = write_locked(fs, cred, fh_out, buf, (size_t)r, (uint64_t)off_out);
out:
	fs_lockset_unlock(fs, &ls);
	free(buf);
	return r;
}
