/*
 * view.c - a read-only view of the store: the version the manifest gives,
 * its tables through a table cache, a memtable holding the WALs' records
 * replayed as the engine's recovery replays them, and the value log.  It is
 * what lsm_open would present, built without lsm_open, which would write a
 * new WAL and manifest and sweep files: fsck -n must change nothing, and
 * fsck -y must not let the engine delete anything before the check has
 * decided it may.
 *
 * Pass 1 replays the WALs into the view's memtable, checking each record
 * with fsck_view_check_record as lsm/db_open.c and lsm/blob.c do: a record
 * whose value-log pointers do not all name intact records ends the replay
 * (a crash lost its values, so it and everything after it were never
 * synced), except that a complete value record failing its checksum is
 * damage, which the engine refuses unless told to skip damaged records.
 *
 * Relies on: pass 1 filled ctx->ms (the version) and ctx->files.
 * Frees: everything at fsck_view_close; the version stays ctx's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

struct fsck_view {
	lsm_cache *block_cache;
	lsm_table_cache *tables;
	lsm_memtable *mem;
	uint64_t seq;             /* the last sequence number: everything is visible */
	vlog *vlog;
};

static uint64_t no_new_segments(void *arg)
{
	(void)arg;
	return 0;   /* the view never appends: vlog_append would fail with -EINVAL */
}

int fsck_view_open(struct fsck_ctx *ctx, lsm_memtable *mem, uint64_t last_seq)
{
	struct fsck_view *v = calloc(1, sizeof(*v));
	int max_open = 64, r;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (ctx->files[i].type == LSM_FILE_SST)
			max_open++;
	r = lsm_cache_new(8u << 20, &v->block_cache);
	if (r == 0)
		r = lsm_table_cache_new(ctx->env, ctx->dir, max_open, v->block_cache, &v->tables);
	if (r == 0)
		r = vlog_open(ctx->env, ctx->dir, NULL, no_new_segments, NULL, &v->vlog);
	if (r < 0) {
		if (v->tables)
			lsm_table_cache_free(v->tables);
		if (v->block_cache)
			lsm_cache_free(v->block_cache);
		free(v);
		return r;
	}
	v->mem = mem;
	v->seq = last_seq;
	ctx->view = v;
	return 0;
}

void fsck_view_set_mem(struct fsck_ctx *ctx, lsm_memtable *mem, uint64_t last_seq)
{
	struct fsck_view *v = ctx->view;

	if (v->mem)
		lsm_memtable_unref(v->mem);
	v->mem = mem;
	v->seq = last_seq;
}

void fsck_view_close(struct fsck_ctx *ctx)
{
	struct fsck_view *v = ctx->view;

	if (!v)
		return;
	if (v->mem)
		lsm_memtable_unref(v->mem);
	vlog_close(v->vlog);
	lsm_table_cache_free(v->tables);
	lsm_cache_free(v->block_cache);
	free(v);
	ctx->view = NULL;
}

vlog *fsck_view_vlog(struct fsck_ctx *ctx)
{
	return ctx->view ? ctx->view->vlog : NULL;
}

int fsck_view_internal_iter(struct fsck_ctx *ctx, lsm_iiter **ret_iter)
{
	struct fsck_view *v = ctx->view;
	lsm_version *ver = ctx->ms.version;
	lsm_iiter **its;
	int n = 0, r;

	if (!v || !ver)
		return -EINVAL;
	its = calloc((size_t)(1 + ver->files[0].n + LSM_MAX_LEVELS), sizeof(*its));
	if (!its)
		return -ENOMEM;
	r = v->mem ? lsm_memtable_iter_new(v->mem, &its[n]) : 0;
	if (r == 0 && v->mem)
		n++;
	if (r == 0)
		r = lsm_version_add_iters(ver, v->tables, false, its, &n);
	if (r == 0) {
		r = lsm_merge_iter_new(its, n, lsm_ikey_cmp, ret_iter);
		n = 0;   /* the merge owns them now, even on failure */
	}
	for (int i = 0; i < n; i++)
		iiter_destroy(its[i]);
	free(its);
	return r;
}

int fsck_view_user_iter(struct fsck_ctx *ctx, lsm_iiter **ret_iter)
{
	lsm_iiter *in;
	int r = fsck_view_internal_iter(ctx, &in);

	if (r < 0)
		return r;
	return lsm_db_iter_new(in, ctx->view->seq, NULL, NULL, ret_iter);
}

int fsck_view_resolve(struct fsck_ctx *ctx, lsm_slice ptrbytes, void **ret_val, size_t *ret_len)
{
	struct vlog_ptr ptr;
	int r = vlog_ptr_decode(ptrbytes.data, ptrbytes.len, &ptr);

	if (r < 0)
		return r;
	return vlog_read(ctx->view->vlog, &ptr, NULL, NULL, ret_val, ret_len);
}

struct verify_ctx {
	struct fsck_ctx *ctx;
	vlog *vl;
	int state;                /* 1 intact, 0 lost in a crash, 2 damaged */
	uint64_t bad_segment, bad_offset;
};

/* As lsm/blob.c's verify_one. */
static int verify_one(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct verify_ctx *c = arg;
	struct vlog_ptr ptr;
	char path[PATH_MAX];
	uint64_t size = 0;
	lsm_file *f;
	int r;

	(void)seq;
	(void)key;
	if (type != LSM_TYPE_VPTR || c->state != 1)
		return 0;
	if (!c->vl || vlog_ptr_decode(value.data, value.len, &ptr) < 0) {
		c->state = 0;
		return 0;
	}
	r = vlog_verify_ptr(c->vl, &ptr);
	if (r != 0)
		return r < 0 ? r : 0;
	c->state = 0;
	lsm_filename(path, sizeof(path), c->ctx->dir, LSM_FILE_VLOG, ptr.segment);
	if (env_open(c->ctx->env, path, LSM_ENV_READ, &f) == 0) {
		r = env_size(c->ctx->env, f, &size);
		env_close(c->ctx->env, f);
		if (r < 0)
			return r;
		if (ptr.offset + ptr.length <= size) {
			c->state = 2;
			c->bad_segment = ptr.segment;
			c->bad_offset = ptr.offset;
		}
	}
	return 0;
}

int fsck_view_check_record(struct fsck_ctx *ctx, lsm_slice rec, uint64_t *ret_segment,
                           uint64_t *ret_offset)
{
	struct verify_ctx c = { .ctx = ctx, .vl = fsck_view_vlog(ctx), .state = 1 };
	int r;

	if (rec.len < LSM_BATCH_HEADER)
		return lsm_errf(-EUCLEAN, "a record too short for a batch");
	r = lsm_batch_iterate(rec.data, rec.len, verify_one, &c);
	if (r < 0)
		return r;
	if (c.state == 2) {
		*ret_segment = c.bad_segment;
		*ret_offset = c.bad_offset;
	}
	return c.state;
}
