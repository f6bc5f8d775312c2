/*
 * pass5.c - pass 5, the counts.
 *
 * Checks:  every inode's link count against the entries naming it (a
 *          directory: 2 + its subdirectories) and a directory's entry count
 *          (its size); orphan records: an inode no entry names with an 'O'
 *          key was unlinked while open and is reclaimed (the mount would do
 *          the same), an 'O' key of a linked or missing inode goes; file
 *          sizes against their data: an inline file holds exactly size bytes
 *          within the superblock's inline limit and no blocks, a file in
 *          blocks stores nothing at or past its size and its block count is
 *          its number of block keys, no block holds more than the block
 *          size; symlinks' sizes are their targets' lengths; only regular
 *          files have blocks, only they and symlinks inline bytes; an inode
 *          with 'X' keys has its xattr flag; keys of inodes that do not
 *          exist go; the superblock's next inode number lies above every
 *          inode, and its inode count is exact when it says it is.
 * Relies on: pass 4's model (ctx->ns), with reconnections made.
 * Frees:   nothing (main.c frees the model).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

/* Field changes of one repair, applied by fsck_inode_update. */
struct rec_change {
	int what;
	uint64_t value;
	uint32_t bs;
};

enum { SET_NLINK, SET_SIZE, SET_NBLOCKS, SET_XATTR_FLAG, CLEAR_INLINE };

static void change_fn(struct fs_inode_rec *rec, uint8_t **idata, size_t *ilen, void *arg)
{
	const struct rec_change *c = arg;

	switch (c->what) {
	case SET_NLINK:
		rec->nlink = (uint32_t)c->value;
		break;
	case SET_SIZE:
		rec->size = c->value;
		break;
	case SET_NBLOCKS:
		rec->nblocks = c->value;
		break;
	case SET_XATTR_FLAG:
		rec->flags |= FS_INODE_XATTRS;
		break;
	case CLEAR_INLINE:
		free(*idata);
		*idata = NULL;
		*ilen = 0;
		break;
	}
}

static int change(struct fsck_ctx *ctx, uint64_t ino, int what, uint64_t value)
{
	struct rec_change c = { .what = what, .value = value };

	return fsck_inode_update(ctx, ino, change_fn, &c);
}

/* Asks code about ip and, if yes, makes one change of its record. */
static bool ask_change(struct fsck_ctx *ctx, int code, struct ns_inode *ip, uint64_t have,
                       uint64_t want, int what, uint64_t value)
{
	struct problem_ctx p = { .ino = ip->ino, .num = have, .num2 = want };
	int r;

	if (!fix_problem(ctx, code, &p))
		return false;
	r = change(ctx, ip->ino, what, value);
	fsck_fixed(ctx, r);
	return r == 0;
}

/* Reclaims an orphan: blocks and xattrs, then record and orphan key. */
static int reclaim(struct fsck_ctx *ctx, uint64_t ino)
{
	int r = fsck_delete_prefix(ctx, FS_KEY_XATTR, ino, false);

	return r < 0 ? r : fsck_delete_prefix(ctx, FS_KEY_BLOCK, ino, true);
}

/* Deletes the block keys of ino from index first on: all of them, or with
 * only_empty just those with an empty value (zeros past the end).  Returns
 * the number deleted or <0. */
static int64_t delete_blocks(struct fsck_ctx *ctx, uint64_t ino, uint64_t first, bool only_empty)
{
	uint8_t key[FS_KEY_BLOCK_LEN];
	struct fsck_kv_iter *it;
	lsm_batch *b;
	int64_t n = 0;
	int r;

	r = lsm_batch_new(&b);
	if (r < 0)
		return r;
	r = fsck_kv_iter_new(ctx, &it);
	if (r < 0) {
		lsm_batch_free(b);
		return r;
	}
	for (fsck_kv_seek(it, key, fs_key_block(key, ino, first)); fsck_kv_valid(it) && r == 0;
	     fsck_kv_next(it)) {
		uint64_t kino, idx;
		size_t kl, vl;
		const void *k = fsck_kv_key(it, &kl);

		if (fs_key_parse_block(k, kl, &kino, &idx) < 0 || kino != ino)
			break;
		if (only_empty && ((r = fsck_kv_value_len(it, &vl)) < 0 || vl > 0))
			continue;
		r = lsm_batch_delete(b, k, kl);
		n++;
	}
	if (r == 0)
		r = fsck_kv_status(it);
	fsck_kv_iter_free(it);
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r < 0 ? r : n;
}

/* Turns an inline file holding more than the inline limit into a file in
 * blocks (its bytes become block 0, as the core does when such a file
 * grows), in one batch.  Bytes past the block size cannot be kept. */
static int inline_to_block(struct fsck_ctx *ctx, uint64_t ino, uint32_t bs)
{
	uint8_t key[FS_KEY_BLOCK_LEN];
	struct fs_inode_rec rec;
	uint8_t *idata = NULL;
	size_t ilen = 0;
	lsm_batch *b;
	int r;

	r = fsck_inode_load(ctx, ino, &rec, &idata, &ilen);
	if (r < 0)
		return r;
	if (ilen > bs)
		ilen = bs;
	rec.size = ilen;
	rec.flags &= ~FS_INODE_INLINE;
	rec.nblocks = ilen ? 1 : 0;
	while (ilen > 0 && idata[ilen - 1] == 0)
		ilen--;
	r = lsm_batch_new(&b);
	if (r == 0) {
		if (rec.nblocks)
			r = lsm_batch_put(b, key, fs_key_block(key, ino, 0), idata, ilen);
		if (r == 0)
			r = fsck_inode_put(b, ino, &rec, NULL, 0);
		if (r == 0)
			r = fsck_kv_write(ctx, b);
		lsm_batch_free(b);
	}
	free(idata);
	return r;
}

/* Cuts every block of ino holding more than bs bytes down to bs. */
static int trim_big_blocks(struct fsck_ctx *ctx, uint64_t ino, uint32_t bs)
{
	uint8_t key[FS_KEY_BLOCK_LEN];
	struct fsck_kv_iter *it;
	lsm_batch *b;
	int r = lsm_batch_new(&b);

	if (r < 0)
		return r;
	r = fsck_kv_iter_new(ctx, &it);
	if (r < 0) {
		lsm_batch_free(b);
		return r;
	}
	for (fsck_kv_seek(it, key, fs_key_block(key, ino, 0)); fsck_kv_valid(it) && r == 0;
	     fsck_kv_next(it)) {
		uint64_t kino, idx;
		size_t kl, vl;
		const void *k = fsck_kv_key(it, &kl), *v;

		if (fs_key_parse_block(k, kl, &kino, &idx) < 0 || kino != ino)
			break;
		r = fsck_kv_value(it, &v, &vl);
		if (r == 0 && vl > bs) {
			vl = bs;
			while (vl > 0 && ((const uint8_t *)v)[vl - 1] == 0)
				vl--;
			r = lsm_batch_put(b, k, kl, v, vl);
		}
	}
	if (r == 0)
		r = fsck_kv_status(it);
	fsck_kv_iter_free(it);
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r;
}

static void check_regular(struct fsck_ctx *ctx, struct ns_inode *ip)
{
	uint32_t bs = ctx->sb.block_size, imax = ctx->sb.inline_max;
	struct problem_ctx p = { .ino = ip->ino };
	int64_t n;

	if (ip->flags & FS_INODE_INLINE) {
		if (ip->ilen > imax) {
			p.num = ip->ilen;
			p.num2 = imax;
			if (fix_problem(ctx, PR_5_INLINE_TOO_BIG, &p)) {
				int r = inline_to_block(ctx, ip->ino, bs);

				fsck_fixed(ctx, r);
				if (r == 0) {
					ip->size = ip->ilen < bs ? ip->ilen : bs;
					ip->flags &= ~FS_INODE_INLINE;
					ip->ilen = 0;
					ip->blocks += ip->size ? 1 : 0;
					ip->nblocks = ip->size ? 1 : 0;
					return;
				}
			}
		}
		if (ip->size != ip->ilen &&
		    ask_change(ctx, PR_5_INLINE_SIZE, ip, ip->size, ip->ilen, SET_SIZE, ip->ilen))
			ip->size = ip->ilen;
		if (ip->blocks > 0) {
			p.num2 = ip->blocks;
			if (fix_problem(ctx, PR_5_INLINE_BLOCKS, &p)) {
				n = delete_blocks(ctx, ip->ino, 0, false);
				fsck_fixed(ctx, n < 0 ? (int)n : 0);
				if (n >= 0)
					ip->blocks = 0;
			}
		}
		return;
	}
	if (ip->ilen > 0) {
		p.str = "file kept in blocks";
		p.num2 = ip->ilen;
		if (fix_problem(ctx, PR_5_STRAY_INLINE, &p)) {
			int r = change(ctx, ip->ino, CLEAR_INLINE, 0);

			fsck_fixed(ctx, r);
		}
	}
	if (ip->big_block) {
		p.blk = ip->big_idx;
		p.num2 = bs;
		if (fix_problem(ctx, PR_5_BLOCK_BIG, &p))
			fsck_fixed(ctx, trim_big_blocks(ctx, ip->ino, bs));
	}
	if (ip->past_eof > 0) {
		p.num = ip->size;
		p.num2 = ip->past_eof;
		if (fix_problem(ctx, PR_5_BLOCK_PAST_EOF, &p)) {
			n = delete_blocks(ctx, ip->ino, ip->size / bs, true);
			fsck_fixed(ctx, n < 0 ? (int)n : 0);
			if (n >= 0)
				ip->blocks -= (uint64_t)n < ip->blocks ? (uint64_t)n : ip->blocks;
		}
	}
	if (ip->data_end > ip->size &&
	    ask_change(ctx, PR_5_SIZE, ip, ip->size, ip->data_end, SET_SIZE, ip->data_end))
		ip->size = ip->data_end;
}

/* Anything but a regular file: no blocks; inline bytes only for symlinks. */
static void check_other(struct fsck_ctx *ctx, struct ns_inode *ip)
{
	struct problem_ctx p = { .ino = ip->ino, .str = fsck_type_name(ip->mode) };
	int64_t n;

	if (S_ISLNK(ip->mode)) {
		if (ip->size != ip->ilen &&
		    ask_change(ctx, PR_5_SYMLINK_SIZE, ip, ip->size, ip->ilen, SET_SIZE, ip->ilen))
			ip->size = ip->ilen;
	} else if (ip->ilen > 0) {
		p.num2 = ip->ilen;
		if (fix_problem(ctx, PR_5_STRAY_INLINE, &p))
			fsck_fixed(ctx, change(ctx, ip->ino, CLEAR_INLINE, 0));
	}
	if (ip->blocks > 0) {
		p.num2 = ip->blocks;
		if (fix_problem(ctx, PR_5_BLOCK_NOT_FILE, &p)) {
			n = delete_blocks(ctx, ip->ino, 0, false);
			fsck_fixed(ctx, n < 0 ? (int)n : 0);
			if (n >= 0)
				ip->blocks = 0;
		}
	}
}

static void check_inode(struct fsck_ctx *ctx, struct ns_inode *ip)
{
	struct problem_ctx p = { .ino = ip->ino, .num = ip->size };
	bool dir = S_ISDIR(ip->mode);
	int r;

	if (!dir && ip->links == 0 && ip->has_orphan) {
		/* Unlinked while open, and the last close never came. */
		if (fix_problem(ctx, PR_5_ORPHAN, &p)) {
			r = reclaim(ctx, ip->ino);
			fsck_fixed(ctx, r);
			if (r == 0)
				ip->state = NS_GONE;
		}
		return;
	}
	if (ip->has_orphan && (ip->links > 0 || dir)) {
		uint8_t key[FS_KEY_INO_LEN];

		if (fix_problem(ctx, PR_5_ORPHAN_LINKED, &p))
			fsck_fixed(ctx, fsck_delete_key(ctx, key, fs_key_orphan(key, ip->ino)));
	}
	if (S_ISREG(ip->mode))
		check_regular(ctx, ip);
	else
		check_other(ctx, ip);
	if (ip->nblocks != ip->blocks &&
	    ask_change(ctx, PR_5_NBLOCKS, ip, ip->nblocks, ip->blocks, SET_NBLOCKS, ip->blocks))
		ip->nblocks = ip->blocks;
	if (ip->has_xattrs && !(ip->flags & FS_INODE_XATTRS) &&
	    ask_change(ctx, PR_5_XATTR_FLAG, ip, 0, 0, SET_XATTR_FLAG, 0))
		ip->flags |= FS_INODE_XATTRS;
	if (dir) {
		uint64_t want = 2 + (uint64_t)ip->subdirs;

		if (ip->conn != NS_CONN_REACHABLE && ip->declined)
			return;
		if (ip->nlink != want && ask_change(ctx, PR_5_DIR_NLINK, ip, ip->nlink, want,
		                                    SET_NLINK, want))
			ip->nlink = (uint32_t)want;
		if (ip->size != ip->entries && ask_change(ctx, PR_5_DIR_SIZE, ip, ip->size,
		                                          ip->entries, SET_SIZE, ip->entries))
			ip->size = ip->entries;
		return;
	}
	if (ip->links == 0 && ip->declined)
		return;
	if (ip->nlink != ip->links &&
	    ask_change(ctx, PR_5_NLINK, ip, ip->nlink, ip->links, SET_NLINK, ip->links))
		ip->nlink = ip->links;
}

/* Keys of inodes that do not exist. */
static void check_strays(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = ctx->ns;

	for (size_t i = 0; i < ns->nstray && !ctx->preen_halt; i++) {
		const struct ns_stray *s = &ns->stray[i];
		struct problem_ctx p = { .ino = s->ino };
		uint8_t key[FS_KEY_INO_LEN];

		if (s->blocks) {
			p.num2 = s->blocks;
			if (fix_problem(ctx, PR_5_BLOCKS_NO_INODE, &p))
				fsck_fixed(ctx, fsck_delete_prefix(ctx, FS_KEY_BLOCK, s->ino, false));
		}
		if (s->xattrs) {
			p.num2 = s->xattrs;
			if (fix_problem(ctx, PR_5_XATTRS_NO_INODE, &p))
				fsck_fixed(ctx, fsck_delete_prefix(ctx, FS_KEY_XATTR, s->ino, false));
		}
		if (s->orphan && fix_problem(ctx, PR_5_ORPHAN_NO_INODE, &p))
			fsck_fixed(ctx, fsck_delete_key(ctx, key, fs_key_orphan(key, s->ino)));
	}
}

static void check_super_counts(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = ctx->ns;
	struct problem_ctx p = { 0 };
	uint64_t used = 0, max = 0;

	for (size_t i = 0; i < ns->n; i++)
		if (ns->v[i].state == NS_OK) {
			used++;
			max = ns->v[i].ino;
		}
	if (max >= ctx->sb.ino_limit) {
		p.num = ctx->sb.ino_limit;
		p.num2 = max;
		if (fix_problem(ctx, PR_5_INO_LIMIT, &p)) {
			ctx->sb.ino_limit = max + 1;
			fsck_fixed(ctx, fsck_super_write(ctx));
		}
	}
	if ((ctx->sb.flags & FS_SUPER_CLEAN) && ctx->sb.inode_count != used) {
		p.num = ctx->sb.inode_count;
		p.num2 = used;
		if (fix_problem(ctx, PR_5_INODE_COUNT, &p)) {
			ctx->sb.inode_count = used;
			fsck_fixed(ctx, fsck_super_write(ctx));
		}
	}
}

int fsck_pass5(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = ctx->ns;

	if (!ns)
		return 0;
	fsck_progress_start(ctx, ns->n);
	for (size_t i = 0; i < ns->n && !ctx->preen_halt && !fsck_cancelled(); i++) {
		if (ns->v[i].state == NS_OK)
			check_inode(ctx, &ns->v[i]);
		fsck_progress_add(ctx, 1);
	}
	fsck_progress_end(ctx);
	if (!ctx->preen_halt)
		check_strays(ctx);
	if (!ctx->preen_halt && ctx->have_sb)
		check_super_counts(ctx);
	return 0;
}
