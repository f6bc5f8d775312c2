/*
 * kv.c - the store as passes 3 to 5 read and repair it: through the
 * read-only view (view.c) until the first repair, then through the engine
 * opened read-write.  Opening it read-write closes the view first (the
 * engine's recovery writes new files and deletes the WALs it replayed, and
 * compactions may start), and needs the store's lock, which fsck holds
 * until then: it passes to the engine, which holds it until the end.
 *
 * Iterators hide which one is underneath.  A value-log value is read (and
 * its checksum verified) only when asked for; fsck_kv_value_len answers
 * from the pointers pass 3 verified instead, so that pass 4 never reads
 * file data it needs only the length of.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

struct fsck_kv_iter {
	struct fsck_ctx *ctx;
	lsm_iiter *vi;            /* view mode */
	lsm_iter *li;             /* engine mode */
	void *vbuf;               /* a value read from the value log, until the next move */
	size_t vbuf_len;
};

int fsck_kv_iter_new(struct fsck_ctx *ctx, struct fsck_kv_iter **ret_it)
{
	struct fsck_kv_iter *it = calloc(1, sizeof(*it));
	lsm_read_options ro;
	int r;

	if (!it)
		return -ENOMEM;
	it->ctx = ctx;
	if (ctx->db) {
		lsm_read_options_init(&ro);
		ro.fill_cache = 0;
		r = lsm_iter_new(ctx->db, &ro, &it->li);
	} else if (ctx->view) {
		r = fsck_view_user_iter(ctx, &it->vi);
	} else {
		r = -EINVAL;
	}
	if (r < 0) {
		free(it);
		return r;
	}
	ctx->open_iters++;
	*ret_it = it;
	return 0;
}

void fsck_kv_iter_free(struct fsck_kv_iter *it)
{
	if (!it)
		return;
	it->ctx->open_iters--;
	iiter_destroy(it->vi);
	lsm_iter_free(it->li);
	free(it->vbuf);
	free(it);
}

static void drop_vbuf(struct fsck_kv_iter *it)
{
	free(it->vbuf);
	it->vbuf = NULL;
}

void fsck_kv_seek(struct fsck_kv_iter *it, const void *key, size_t klen)
{
	drop_vbuf(it);
	if (it->li)
		lsm_iter_seek(it->li, key, klen);
	else
		iiter_seek(it->vi, lsm_slice_make(key, klen));
}

bool fsck_kv_valid(struct fsck_kv_iter *it)
{
	return it->li ? lsm_iter_valid(it->li) != 0 : iiter_valid(it->vi);
}

void fsck_kv_next(struct fsck_kv_iter *it)
{
	drop_vbuf(it);
	if (it->li)
		lsm_iter_next(it->li);
	else
		iiter_next(it->vi);
}

const void *fsck_kv_key(struct fsck_kv_iter *it, size_t *ret_len)
{
	lsm_slice k;

	if (it->li)
		return lsm_iter_key(it->li, ret_len);
	k = iiter_key(it->vi);
	*ret_len = k.len;
	return k.data;
}

int fsck_kv_value(struct fsck_kv_iter *it, const void **ret_val, size_t *ret_len)
{
	lsm_slice v;
	int r;

	if (it->li)
		return lsm_iter_value(it->li, ret_val, ret_len);
	v = iiter_value(it->vi);
	if (lsm_db_iter_value_type(it->vi) != LSM_TYPE_VPTR) {
		*ret_val = v.data;
		*ret_len = v.len;
		return 0;
	}
	if (!it->vbuf) {
		r = fsck_view_resolve(it->ctx, v, &it->vbuf, &it->vbuf_len);
		if (r < 0) {
			it->vbuf = NULL;
			return r;
		}
	}
	*ret_val = it->vbuf;
	*ret_len = it->vbuf_len;
	return 0;
}

/* The pointer pass 3 verified at (segment, offset), or NULL. */
static const struct fsck_vptr *find_vptr(const struct fsck_ctx *ctx, uint64_t segment,
                                         uint64_t offset)
{
	size_t lo = 0, hi = ctx->nvptrs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fsck_vptr *p = &ctx->vptrs[mid];

		if (p->segment < segment || (p->segment == segment && p->offset < offset))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ctx->nvptrs && ctx->vptrs[lo].segment == segment &&
	    ctx->vptrs[lo].offset == offset)
		return &ctx->vptrs[lo];
	return NULL;
}

int fsck_kv_value_len(struct fsck_kv_iter *it, size_t *ret_len)
{
	const struct fsck_vptr *p;
	const void *val;
	struct vlog_ptr ptr;
	lsm_slice v;

	if (it->vi && lsm_db_iter_value_type(it->vi) == LSM_TYPE_VPTR) {
		v = iiter_value(it->vi);
		if (vlog_ptr_decode(v.data, v.len, &ptr) == 0 &&
		    (p = find_vptr(it->ctx, ptr.segment, ptr.offset)) && p->state == FSCK_VPTR_OK) {
			*ret_len = p->vlen;
			return 0;
		}
	}
	return fsck_kv_value(it, &val, ret_len);
}

int fsck_kv_status(struct fsck_kv_iter *it)
{
	return it->li ? lsm_iter_status(it->li) : iiter_status(it->vi);
}

int fsck_kv_get(struct fsck_ctx *ctx, const void *key, size_t klen, void **ret_val, size_t *ret_len)
{
	struct fsck_kv_iter *it;
	const void *k, *v;
	size_t kl, vl;
	void *copy;
	int r;

	if (ctx->db)
		return lsm_get(ctx->db, NULL, key, klen, ret_val, ret_len);
	r = fsck_kv_iter_new(ctx, &it);
	if (r < 0)
		return r;
	fsck_kv_seek(it, key, klen);
	if (!fsck_kv_valid(it)) {
		r = fsck_kv_status(it);
		fsck_kv_iter_free(it);
		return r < 0 ? r : -ENOENT;
	}
	k = fsck_kv_key(it, &kl);
	if (kl != klen || memcmp(k, key, klen) != 0) {
		fsck_kv_iter_free(it);
		return -ENOENT;
	}
	r = fsck_kv_value(it, &v, &vl);
	if (r == 0) {
		copy = malloc(vl ? vl : 1);
		if (!copy) {
			r = -ENOMEM;
		} else {
			if (vl)
				memcpy(copy, v, vl);
			*ret_val = copy;
			*ret_len = vl;
		}
	}
	fsck_kv_iter_free(it);
	return r;
}

int fsck_kv_open_rw(struct fsck_ctx *ctx)
{
	lsm_options opt;
	char path[PATH_MAX];
	int r;

	if (ctx->db)
		return 0;
	if (ctx->no_rw[0])
		return lsm_errf(-EPERM, "not opening the store for repairs: %s", ctx->no_rw);
	if (ctx->open_iters)
		return lsm_errf(-EBUSY, "internal error: a repair while iterators are open");
	fsck_view_close(ctx);
	/* lsm_open takes the lock itself, and fsck's own hold would make it
	 * fail (a lock belongs to one open file): fsck lets go just before.
	 * A mount starting in that instant wins, and lsm_open says -EBUSY. */
	env_unlock(ctx->env, ctx->lock);
	ctx->lock = NULL;
	lsm_options_init(&opt);
	opt.env = ctx->env;
	opt.create_if_missing = 0;
	opt.skip_corrupt_wal = ctx->skip_corrupt_wal;
	r = lsm_open(ctx->dir, &opt, &ctx->db);
	if (r < 0) {
		ctx->db = NULL;
		if (r == -EBUSY)
			lsm_errf(r, "%s: another process opened the store during the check", ctx->store);
		/* Take the lock back so that the run ends as it began. */
		lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_LOCK, 0);
		if (env_lock(ctx->env, path, &ctx->lock) < 0)
			ctx->lock = NULL;
		return r;
	}
	return 0;
}

int fsck_kv_write(struct fsck_ctx *ctx, lsm_batch *b)
{
	int r;

	if (lsm_batch_count(b) == 0)
		return 0;
	r = fsck_kv_open_rw(ctx);
	if (r < 0)
		return r;
	return lsm_write(ctx->db, NULL, b);
}

int fsck_kv_close(struct fsck_ctx *ctx)
{
	int r = 0;

	if (ctx->db) {
		/* Background work the session started (flushes, compactions, a
		 * value-log GC pass) finishes first: a GC pass cut short by the
		 * close would leave its copies behind as uncounted garbage. */
		r = lsm_sync(ctx->db);
		if (r == 0)
			r = lsm_wait_idle(ctx->db);
		if (r == 0)
			r = lsm_close(ctx->db);
		else
			lsm_close(ctx->db);
		ctx->db = NULL;
	}
	fsck_view_close(ctx);
	return r;
}
