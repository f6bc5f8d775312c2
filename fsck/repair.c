/*
 * repair.c - the building blocks of repairs: rewriting an inode record,
 * deleting keys and whole key ranges of an inode, writing the superblock,
 * handing out a new inode number.  Each call is one engine batch (a range
 * too big for one batch goes in several, with the record and the orphan
 * key in the last one, as the core's reclaim does, so that an interrupted
 * repair leaves an orphan the next check or mount finishes).  Records are
 * read from the store as it is now (kv.c), so a repair always builds on
 * the ones before it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fsck.h"

#define DELETE_BATCH 4096u    /* keys per batch when deleting a range */

int fsck_inode_load(struct fsck_ctx *ctx, uint64_t ino, struct fs_inode_rec *ret_rec,
                    uint8_t **ret_idata, size_t *ret_ilen)
{
	uint8_t key[FS_KEY_INO_LEN];
	const uint8_t *idata;
	size_t len, ilen;
	void *val;
	uint8_t *copy = NULL;
	int r;

	r = fsck_kv_get(ctx, key, fs_key_inode(key, ino), &val, &len);
	if (r < 0)
		return r;
	r = fs_inode_decode(val, len, ret_rec, &idata, &ilen);
	if (r == 0 && ilen) {
		copy = malloc(ilen);
		if (copy)
			memcpy(copy, idata, ilen);
		else
			r = -ENOMEM;
	}
	free(val);
	if (r < 0)
		return r;
	*ret_idata = copy;
	*ret_ilen = ilen;
	return 0;
}

int fsck_inode_put(lsm_batch *b, uint64_t ino, const struct fs_inode_rec *rec,
                   const uint8_t *idata, size_t ilen)
{
	uint8_t key[FS_KEY_INO_LEN];
	uint8_t *val = malloc(FS_INODE_HDR_LEN + ilen);
	size_t len;
	int r;

	if (!val)
		return -ENOMEM;
	len = fs_inode_encode(rec, idata, ilen, val);
	r = lsm_batch_put(b, key, fs_key_inode(key, ino), val, len);
	free(val);
	return r;
}

int fsck_inode_update(struct fsck_ctx *ctx, uint64_t ino, fsck_rec_fn fn, void *arg)
{
	struct fs_inode_rec rec;
	uint8_t *idata = NULL;
	size_t ilen = 0;
	lsm_batch *b;
	int r;

	r = fsck_inode_load(ctx, ino, &rec, &idata, &ilen);
	if (r < 0)
		return r;
	fn(&rec, &idata, &ilen, arg);
	r = lsm_batch_new(&b);
	if (r == 0) {
		r = fsck_inode_put(b, ino, &rec, idata, ilen);
		if (r == 0)
			r = fsck_kv_write(ctx, b);
		lsm_batch_free(b);
	}
	free(idata);
	return r;
}

int fsck_delete_key(struct fsck_ctx *ctx, const void *key, size_t klen)
{
	lsm_batch *b;
	int r = lsm_batch_new(&b);

	if (r < 0)
		return r;
	r = lsm_batch_delete(b, key, klen);
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r;
}

/* Adds to b the deletion of up to max keys starting with prefix.  Returns
 * the number added, or <0. */
static int64_t delete_some(struct fsck_ctx *ctx, lsm_batch *b, const uint8_t *prefix, size_t plen,
                           uint64_t max)
{
	struct fsck_kv_iter *it;
	int64_t n = 0;
	int r;

	r = fsck_kv_iter_new(ctx, &it);
	if (r < 0)
		return r;
	for (fsck_kv_seek(it, prefix, plen); fsck_kv_valid(it) && (uint64_t)n < max;
	     fsck_kv_next(it)) {
		size_t kl;
		const uint8_t *k = fsck_kv_key(it, &kl);

		if (kl < plen || memcmp(k, prefix, plen) != 0)
			break;
		r = lsm_batch_delete(b, k, kl);
		if (r < 0)
			break;
		n++;
	}
	if (r == 0)
		r = fsck_kv_status(it);
	fsck_kv_iter_free(it);
	return r < 0 ? r : n;
}

int fsck_delete_prefix(struct fsck_ctx *ctx, char tag, uint64_t ino, bool also_inode)
{
	uint8_t prefix[FS_KEY_INO_LEN], key[FS_KEY_INO_LEN];
	size_t plen = fs_key_prefix(prefix, tag, ino);
	lsm_batch *b;
	int64_t n;
	int r;

	for (;;) {
		r = lsm_batch_new(&b);
		if (r < 0)
			return r;
		n = delete_some(ctx, b, prefix, plen, DELETE_BATCH);
		if (n < 0) {
			lsm_batch_free(b);
			return (int)n;
		}
		if ((uint64_t)n < DELETE_BATCH)
			break;
		r = fsck_kv_write(ctx, b);
		lsm_batch_free(b);
		if (r < 0)
			return r;
	}
	if (also_inode) {
		r = lsm_batch_delete(b, key, fs_key_inode(key, ino));
		if (r == 0)
			r = lsm_batch_delete(b, key, fs_key_orphan(key, ino));
		if (r < 0) {
			lsm_batch_free(b);
			return r;
		}
	}
	r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r;
}

int fsck_super_write(struct fsck_ctx *ctx)
{
	uint8_t key[1], val[FS_SUPER_LEN];
	lsm_batch *b;
	int r;

	fs_super_encode(&ctx->sb, val);
	r = lsm_batch_new(&b);
	if (r < 0)
		return r;
	r = lsm_batch_put(b, key, fs_key_super(key), val, sizeof(val));
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r;
}

void fsck_super_rebuild(struct fsck_ctx *ctx)
{
	struct fs_super *sb = &ctx->sb;
	struct timespec now;
	int r;

	clock_gettime(CLOCK_REALTIME, &now);
	sb->version = FS_FORMAT_VERSION;
	if (!sb->block_size)
		sb->block_size = FS_BLOCK_SIZE_DEFAULT;
	sb->inline_max = FS_INLINE_MAX_DEFAULT <= sb->block_size / 2 ? FS_INLINE_MAX_DEFAULT
	                                                             : sb->block_size / 2;
	sb->flags = 0;
	sb->ino_limit = ctx->ns->max_ino + 1 > FS_ROOT_INO + 1 ? ctx->ns->max_ino + 1
	                                                        : FS_ROOT_INO + 1;
	sb->inode_count = 0;
	if (getrandom(sb->uuid, sizeof(sb->uuid), 0) != (ssize_t)sizeof(sb->uuid))
		memset(sb->uuid, 0, sizeof(sb->uuid));
	sb->uuid[6] = (uint8_t)((sb->uuid[6] & 0x0f) | 0x40);
	sb->uuid[8] = (uint8_t)((sb->uuid[8] & 0x3f) | 0x80);
	sb->created_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	r = fsck_super_write(ctx);
	fsck_fixed(ctx, r);
	if (r == 0)
		ctx->have_sb = true;
}

uint64_t fsck_new_ino(struct fsck_ctx *ctx)
{
	uint64_t ino = ctx->sb.ino_limit;

	if (ctx->ns && ctx->ns->max_ino >= ino)
		ino = ctx->ns->max_ino + 1;
	return ino;
}
