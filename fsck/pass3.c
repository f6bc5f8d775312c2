/*
 * pass3.c - pass 3, the value log, and the orphaned files of the store.
 *
 * Checks:  every entry of the tree (every version of every key, in the
 *          memtable the WALs replay into and in every table) has a known
 *          type, and every value pointer decodes; every segment scans
 *          clean (a torn tail in an unsealed segment is what a crash
 *          leaves); every pointer of a key's newest version names a record
 *          there, whole and with a good checksum (older versions may point
 *          into segments the engine has already collected); damage in
 *          records no key uses any more is a note, not an error.
 * Repairs: a key whose value is lost is deleted (a file block becomes a
 *          hole, which pass 5 accounts for); SSTables no version names and
 *          segments no pointer of any version names are deleted -- but
 *          only if every read and listing of passes 1 to 3 succeeded, and
 *          before the engine is opened read-write (its recovery would
 *          delete orphaned tables by itself).
 * Collects: ctx->vptrs, every pointer sorted by segment and offset with the
 *          value's length, for kv.c (value lengths without reading values)
 *          and the space summary.
 * Relies on: pass 1's view and listing, pass 2's verdict (ctx->engine_ok).
 * Frees:   its scratch; ctx->vptrs lives until the end (main.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

/* Why a pointer is bad (fsck_vptr.state beyond FSCK_VPTR_BAD). */
enum {
	BAD_NO_SEGMENT = FSCK_VPTR_BAD,
	BAD_NO_RECORD,
	BAD_LENGTH,
	BAD_DAMAGED,
};

static const char *bad_reason(uint8_t state)
{
	switch (state) {
	case BAD_NO_SEGMENT: return "the segment does not exist";
	case BAD_NO_RECORD: return "no record starts";
	case BAD_LENGTH: return "the record is of another length";
	default: return "the record is damaged";
	}
}

struct keyent {
	uint8_t *key;
	size_t len;
	size_t vptr;              /* index in ctx->vptrs, for bad pointers */
};

struct keylist {
	struct keyent *v;
	size_t n, cap;
};

static int keylist_add(struct keylist *l, lsm_slice k, size_t vptr)
{
	uint8_t *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct keyent *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	copy = malloc(k.len ? k.len : 1);
	if (!copy)
		return -ENOMEM;
	if (k.len)
		memcpy(copy, k.data, k.len);
	l->v[l->n].key = copy;
	l->v[l->n].len = k.len;
	l->v[l->n++].vptr = vptr;
	return 0;
}

static void keylist_free(struct keylist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
}

static int push_vptr(struct fsck_ctx *ctx, size_t *cap, const struct vlog_ptr *ptr, bool visible)
{
	struct fsck_vptr *p;

	if (ctx->nvptrs == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		struct fsck_vptr *v = realloc(ctx->vptrs, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ctx->vptrs = v;
		*cap = nc;
	}
	p = &ctx->vptrs[ctx->nvptrs++];
	memset(p, 0, sizeof(*p));
	p->segment = ptr->segment;
	p->offset = ptr->offset;
	p->length = ptr->length;
	p->visible = visible;
	return 0;
}

static int cmp_vptr(const void *a, const void *b)
{
	const struct fsck_vptr *x = a, *y = b;

	if (x->segment != y->segment)
		return (x->segment > y->segment) - (x->segment < y->segment);
	if (x->offset != y->offset)
		return (x->offset > y->offset) - (x->offset < y->offset);
	return (int)y->visible - (int)x->visible;
}

/* The scan of every entry.  With bad (second scan), collects instead the
 * keys whose newest version is a bad pointer. */
struct entry_scan {
	uint8_t *prev;            /* the previous entry's user key */
	size_t prev_len, prev_cap;
	bool prev_set;
};

static bool same_as_prev(struct entry_scan *s, lsm_slice ukey)
{
	return s->prev_set && s->prev_len == ukey.len && memcmp(s->prev, ukey.data, ukey.len) == 0;
}

static int remember(struct entry_scan *s, lsm_slice ukey)
{
	if (ukey.len > s->prev_cap) {
		uint8_t *p = realloc(s->prev, ukey.len);

		if (!p)
			return -ENOMEM;
		s->prev = p;
		s->prev_cap = ukey.len;
	}
	if (ukey.len)
		memcpy(s->prev, ukey.data, ukey.len);
	s->prev_len = ukey.len;
	s->prev_set = true;
	return 0;
}

static const struct fsck_vptr *find_vptr(const struct fsck_ctx *ctx, const struct vlog_ptr *ptr)
{
	size_t lo = 0, hi = ctx->nvptrs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fsck_vptr *p = &ctx->vptrs[mid];

		if (p->segment < ptr->segment || (p->segment == ptr->segment && p->offset < ptr->offset))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ctx->nvptrs && ctx->vptrs[lo].segment == ptr->segment &&
	       ctx->vptrs[lo].offset == ptr->offset ? &ctx->vptrs[lo] : NULL;
}

/* Walks every internal entry.  First scan (bad == NULL): type checks and
 * pointer collection.  Second scan: the keys to clear into bad. */
static int scan_entries(struct fsck_ctx *ctx, struct keylist *bad, struct keylist *malformed)
{
	struct entry_scan s = { 0 };
	size_t cap = ctx->nvptrs;
	lsm_iiter *it;
	int r;

	r = fsck_view_internal_iter(ctx, &it);
	if (r < 0)
		return r;
	if (!bad)
		fsck_progress_start(ctx, ctx->table_entries + ctx->wal_records);
	for (iiter_seek_to_first(it); iiter_valid(it) && r == 0; iiter_next(it)) {
		lsm_slice ik = iiter_key(it), uk, v;
		unsigned type;
		bool visible;
		struct vlog_ptr ptr;

		if (ik.len < 8) {
			r = lsm_errf(-EUCLEAN, "an entry shorter than its trailer");
			break;
		}
		uk = lsm_ikey_user(ik);
		type = lsm_ikey_type(ik);
		visible = !same_as_prev(&s, uk);
		if (visible && (r = remember(&s, uk)) < 0)
			break;
		if (!bad)
			fsck_progress_add(ctx, 1);
		if (fsck_cancelled()) {
			r = -ECANCELED;
			break;
		}
		if (type != LSM_TYPE_VPTR) {
			if (!bad && type != LSM_TYPE_VALUE && type != LSM_TYPE_DELETE) {
				struct problem_ctx p = { .key = uk.data, .klen = uk.len, .num = type };

				/* A format this fsck does not know: reading on through
				 * the user's view would fail, and nothing is an orphan. */
				fix_problem(ctx, PR_3_ENTRY_TYPE, &p);
				ctx->engine_ok = false;
				fsck_forbid_delete(ctx, "the tree holds entries of an unknown type");
			}
			continue;
		}
		v = iiter_value(it);
		if (vlog_ptr_decode(v.data, v.len, &ptr) < 0) {
			if (!bad && visible)
				r = keylist_add(malformed, uk, 0);
			continue;
		}
		if (!bad) {
			r = push_vptr(ctx, &cap, &ptr, visible);
		} else if (visible) {
			const struct fsck_vptr *p = find_vptr(ctx, &ptr);

			if (p && p->state >= FSCK_VPTR_BAD)
				r = keylist_add(bad, uk, (size_t)(p - ctx->vptrs));
		}
	}
	if (r == 0)
		r = iiter_status(it);
	iiter_destroy(it);
	free(s.prev);
	if (!bad)
		fsck_progress_end(ctx);
	return r;
}

/* Matching one segment's records against the sorted pointers into it. */
struct seg_match {
	struct fsck_ctx *ctx;
	size_t i, end;            /* the segment's pointers: ctx->vptrs[i .. end) */
	uint64_t records, bytes;
};

static int on_record(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen,
                     const void *value, size_t vlen)
{
	struct seg_match *m = arg;
	struct fsck_vptr *v = m->ctx->vptrs;

	(void)key;
	(void)klen;
	(void)value;
	m->records++;
	m->bytes += ptr->length;
	while (m->i < m->end && v[m->i].offset < ptr->offset)
		v[m->i++].state = BAD_NO_RECORD;
	while (m->i < m->end && v[m->i].offset == ptr->offset) {
		if (v[m->i].length == ptr->length) {
			v[m->i].state = FSCK_VPTR_OK;
			v[m->i].vlen = (uint32_t)vlen;
		} else {
			v[m->i].state = BAD_LENGTH;
		}
		m->i++;
	}
	return 0;
}

/* Pointers a damaged segment's scan did not reach: read each one. */
static int verify_rest(struct fsck_ctx *ctx, vlog *vl, struct seg_match *m)
{
	for (; m->i < m->end; m->i++) {
		struct fsck_vptr *p = &ctx->vptrs[m->i];
		struct vlog_ptr ptr = { p->segment, p->offset, p->length };
		size_t vlen;
		void *val;
		int r = vlog_read(vl, &ptr, NULL, NULL, &val, &vlen);

		if (r == 0) {
			free(val);
			p->state = FSCK_VPTR_OK;
			p->vlen = (uint32_t)vlen;
		} else if (r == -EBADMSG || r == -EUCLEAN) {
			p->state = BAD_DAMAGED;
		} else {
			return r;
		}
	}
	return 0;
}

/* -v: a segment's bytes, the live ones, and its garbage as the manifest
 * counts it (the bytes of pointers compaction dropped) and as recounted
 * here (the bytes of records no pointer of any version names). */
static void report_garbage(struct fsck_ctx *ctx, const struct fsck_file *f, size_t from, size_t to)
{
	uint64_t live = 0, named = 0, prev = UINT64_MAX;
	char name[64];

	for (size_t k = from; k < to; k++) {
		const struct fsck_vptr *v = &ctx->vptrs[k];

		if (v->state != FSCK_VPTR_OK)
			continue;
		if (v->visible)
			live += v->length;
		if (v->offset != prev)
			named += v->length;
		prev = v->offset;
	}
	printf("%s: %llu bytes of values, %llu live; garbage %llu (the manifest counts %llu)\n",
	       fsck_file_name(name, f->type, f->number), (unsigned long long)f->record_bytes,
	       (unsigned long long)live, (unsigned long long)(f->record_bytes - named),
	       (unsigned long long)lsm_garbage_get(&ctx->ms.garbage, f->number));
}

/* Scans every segment and matches the pointers; notes damage.  Returns 0,
 * or 1 when a segment could not be read (its references are unknown). */
static int check_segments(struct fsck_ctx *ctx, uint64_t *ret_live, uint64_t *ret_total)
{
	vlog *vl = fsck_view_vlog(ctx);
	size_t i = 0;
	int failed = 0;

	for (size_t f = 0; f < ctx->nfiles; f++) {
		struct fsck_file *file = &ctx->files[f];
		struct seg_match m = { .ctx = ctx };
		struct vlog_scan_result res;
		bool live_bad = false;
		char why[512];
		int r;

		if (file->type != LSM_FILE_VLOG)
			continue;
		*ret_total += file->size;
		/* Pointers into segments before this one name missing segments. */
		while (i < ctx->nvptrs && ctx->vptrs[i].segment < file->number)
			ctx->vptrs[i++].state = BAD_NO_SEGMENT;
		m.i = i;
		m.end = i;
		while (m.end < ctx->nvptrs && ctx->vptrs[m.end].segment == file->number)
			m.end++;
		file->referenced = m.end > i;
		lsm_clear_error();
		r = vlog_scan(vl, file->number, on_record, &m, &res);
		if (r == -EBADMSG || r == -EUCLEAN) {
			fsck_why(ctx, r, true, why, sizeof(why));
			r = verify_rest(ctx, vl, &m);
			if (r == 0) {
				struct problem_ctx p = { .ftype = LSM_FILE_VLOG, .file = file->number,
				                         .str = why };

				for (size_t k = i; k < m.end; k++)
					live_bad |= ctx->vptrs[k].visible &&
					            ctx->vptrs[k].state >= FSCK_VPTR_BAD;
				fix_problem(ctx, live_bad ? PR_3_VLOG_DAMAGE : PR_3_VLOG_DAMAGE_DEAD, &p);
			}
		} else if (r == 0) {
			for (; m.i < m.end; m.i++)
				ctx->vptrs[m.i].state = BAD_NO_RECORD;
		}
		if (r < 0) {
			failed = 1;
			fsck_forbid_delete(ctx, "a value-log segment could not be read");
			if (r == -ENOTSUP || r == -ENOENT || r == -EIO || r == -ENOMEM)
				fsck_op_error(ctx, r, "reading the value log");
			for (; m.i < m.end; m.i++)
				ctx->vptrs[m.i].state = FSCK_VPTR_OK;   /* unknown: leave them be */
		}
		file->record_bytes = m.bytes;
		for (size_t k = i; k < m.end; k++)
			if (ctx->vptrs[k].visible && ctx->vptrs[k].state == FSCK_VPTR_OK)
				*ret_live += ctx->vptrs[k].length;
		if (ctx->verbose)
			report_garbage(ctx, file, i, m.end);
		i = m.end;
	}
	for (; i < ctx->nvptrs; i++)
		ctx->vptrs[i].state = BAD_NO_SEGMENT;
	return failed;
}

/* Offers to clear the keys whose newest version lost its value; the
 * deletions wait in clear until the orphans are dealt with. */
static void report_bad_keys(struct fsck_ctx *ctx, struct keylist *bad, struct keylist *malformed,
                            struct keylist *clear)
{
	for (size_t i = 0; i < malformed->n && !ctx->preen_halt; i++) {
		struct problem_ctx p = { .key = malformed->v[i].key, .klen = malformed->v[i].len,
		                         .str = "it does not decode" };

		if (fix_problem(ctx, PR_3_VPTR_MALFORMED, &p) &&
		    keylist_add(clear, lsm_slice_make(p.key, p.klen), 0) < 0)
			fsck_op_error(ctx, -ENOMEM, "remembering a repair");
	}
	for (size_t i = 0; i < bad->n && !ctx->preen_halt; i++) {
		const struct fsck_vptr *v = &ctx->vptrs[bad->v[i].vptr];
		struct problem_ctx p = { .key = bad->v[i].key, .klen = bad->v[i].len,
		                         .ftype = LSM_FILE_VLOG, .file = v->segment,
		                         .num = v->offset, .str = bad_reason(v->state) };

		if (fix_problem(ctx, PR_3_VPTR_BAD, &p) &&
		    keylist_add(clear, lsm_slice_make(p.key, p.klen), 0) < 0)
			fsck_op_error(ctx, -ENOMEM, "remembering a repair");
	}
}

static int delete_file(struct fsck_ctx *ctx, const struct fsck_file *f)
{
	char name[64], path[PATH_MAX];
	int r;

	snprintf(path, sizeof(path), "%s/%s", ctx->dir, fsck_file_name(name, f->type, f->number));
	r = env_unlink(ctx->env, path);
	if (r < 0) {
		struct problem_ctx p = { .ftype = f->type, .file = f->number, .str = strerror(-r) };

		fix_problem(ctx, PR_3_DELETE_FAILED, &p);
	}
	return r;
}

/* Orphaned tables and segments: deleted only when nothing failed to read. */
static void collect_orphans(struct fsck_ctx *ctx)
{
	size_t n = 0, deleted = 0;
	bool tables_left = false;

	/* A table is an orphan when the version does not name it, a segment
	 * when no pointer does: each is known only once that was read whole.
	 * A segment the manifest already counts as all garbage is no orphan:
	 * the engine's collector removes it (the manifest tracks it). */
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct fsck_file *f = &ctx->files[i];

		f->orphan = !f->referenced &&
		            ((f->type == LSM_FILE_SST && ctx->have_version) ||
		             (f->type == LSM_FILE_VLOG && ctx->ptrs_complete &&
		              (f->record_bytes == 0 ||
		               lsm_garbage_get(&ctx->ms.garbage, f->number) < f->record_bytes)));
	}
	for (size_t i = 0; i < ctx->nfiles; i++)
		n += ctx->files[i].orphan;
	if (n == 0)
		return;
	if (ctx->no_delete[0]) {
		struct problem_ctx p = { .num = n, .str = ctx->no_delete };

		fix_problem(ctx, PR_3_NO_DELETE, &p);
		for (size_t i = 0; i < ctx->nfiles; i++)
			tables_left |= ctx->files[i].type == LSM_FILE_SST && ctx->files[i].orphan;
	} else {
		for (size_t i = 0; i < ctx->nfiles && !ctx->preen_halt; i++) {
			struct fsck_file *f = &ctx->files[i];
			struct problem_ctx p = { .ftype = f->type, .file = f->number, .num = f->size };
			int r;

			if (!f->orphan)
				continue;
			if (!fix_problem(ctx, f->type == LSM_FILE_SST ? PR_2_SST_ORPHAN : PR_3_VLOG_ORPHAN,
			                 &p)) {
				tables_left |= f->type == LSM_FILE_SST;
				continue;
			}
			r = delete_file(ctx, f);
			if (r == 0) {
				f->orphan = false;   /* gone */
				deleted++;
			}
			fsck_fixed(ctx, r);
		}
		if (deleted) {
			int r = env_sync_dir(ctx->env, ctx->dir);

			if (r < 0)
				fsck_op_error(ctx, r, "syncing the store directory");
		}
	}
	/* The engine's recovery deletes every table no version names: opening
	 * the store for repairs would undo the answer (or the caution). */
	if (tables_left)
		snprintf(ctx->no_rw, sizeof(ctx->no_rw), "orphaned tables are kept, and opening the "
		         "store for repairs would delete them");
}

/* Applies the key deletions decided above, one batch each. */
static void clear_keys(struct fsck_ctx *ctx, struct keylist *clear)
{
	for (size_t i = 0; i < clear->n; i++)
		fsck_fixed(ctx, fsck_delete_key(ctx, clear->v[i].key, clear->v[i].len));
}

int fsck_pass3(struct fsck_ctx *ctx)
{
	struct keylist bad = { 0 }, malformed = { 0 }, clear = { 0 };
	uint64_t live = 0, total = 0;
	size_t nseg = 0;
	int r;

	if (!ctx->engine_ok) {
		collect_orphans(ctx);
		return 0;
	}
	r = scan_entries(ctx, NULL, &malformed);
	if (r == -ECANCELED) {
		fsck_forbid_delete(ctx, "the check was interrupted");
		keylist_free(&malformed);
		return 0;
	}
	if (r < 0) {
		char why[512];
		struct problem_ctx p = { .str = fsck_why(ctx, r, false, why, sizeof(why)) };

		if (r == -ENOMEM) {
			fsck_op_error(ctx, r, "scanning the tree");
			keylist_free(&malformed);
			return r;
		}
		fix_problem(ctx, PR_3_SCAN_FAILED, &p);
		fsck_forbid_delete(ctx, "the tree could not be read whole");
		ctx->engine_ok = false;
		keylist_free(&malformed);
		collect_orphans(ctx);
		return 0;
	}
	if (ctx->nvptrs > 1)
		qsort(ctx->vptrs, ctx->nvptrs, sizeof(*ctx->vptrs), cmp_vptr);
	ctx->ptrs_complete = check_segments(ctx, &live, &total) == 0;
	for (size_t i = 0; i < ctx->nvptrs; i++)
		if (ctx->vptrs[i].visible && ctx->vptrs[i].state >= FSCK_VPTR_BAD) {
			r = scan_entries(ctx, &bad, NULL);
			break;
		}
	if (r < 0 && r != -ECANCELED)
		fsck_op_error(ctx, r, "scanning the tree again");
	if (fsck_cancelled()) {
		keylist_free(&bad);
		keylist_free(&malformed);
		return 0;
	}
	report_bad_keys(ctx, &bad, &malformed, &clear);
	collect_orphans(ctx);
	if (ctx->skip_corrupt_wal && !ctx->preen_halt) {
		/* The engine drops the damaged records when it opens the store. */
		r = fsck_kv_open_rw(ctx);
		if (r < 0)
			fsck_op_error(ctx, r, "opening the store to drop the damaged log records");
	}
	if (!ctx->preen_halt)
		clear_keys(ctx, &clear);
	for (size_t i = 0; i < ctx->nfiles; i++)
		nseg += ctx->files[i].type == LSM_FILE_VLOG;
	if (ctx->verbose && nseg)
		printf("Value log: %zu segment(s), %llu bytes, %llu of them live (%.1f%%)\n", nseg,
		       (unsigned long long)total, (unsigned long long)live,
		       total ? 100.0 * (double)live / (double)total : 0.0);
	keylist_free(&bad);
	keylist_free(&malformed);
	keylist_free(&clear);
	return 0;
}
