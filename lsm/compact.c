/*
 * compact.c - leveled compaction: choosing what to merge, merging it into new
 * tables one level down, and installing the result; also the table writer
 * that memtable flushes share.
 *
 * Choice: level 0 compacts when it holds l0_compaction_trigger files, level
 * n >= 1 when its bytes exceed max_bytes_for_level(n); the level with the
 * highest score goes first.  Level-0 compactions take every level-0 file
 * (they overlap one another, and leaving an older one behind would let it
 * shadow the newer versions moved down).  Level n takes one file, round robin
 * by key, plus the files of level n + 1 it overlaps.  A compaction of level n
 * busies levels n and n + 1, so compactions of disjoint level pairs run in
 * parallel on the background threads.  Since a level-0 compaction rewrites
 * all of level 1 it overlaps (with scattered keys, all of it), the defaults
 * take level 0 in batches of 8 files and size level 1 to about one batch
 * (lsm.h says why): fewer rewrites of level 1 per byte brought down, and
 * denser level-1 files pushed to level 2.
 *
 * Merge rules (the newest version visible to any reader must survive): for
 * each user key the versions arrive newest first; a version is dropped when a
 * newer version of the same key is itself at or below the oldest live
 * snapshot (no reader can see past it), and a tombstone is dropped when it is
 * at or below the oldest snapshot and no deeper level holds the key.  Output
 * files are cut only between user keys, so one key's versions never span two
 * files of a level.
 */
#include "db_int.h"

#include "../vlog/vlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable copy of a key. */
typedef struct keybuf {
	uint8_t *p;
	size_t len, cap;
} keybuf;

static int keybuf_set(keybuf *k, lsm_slice s)
{
	if (s.len > k->cap) {
		size_t cap = s.len * 2 + 16;
		uint8_t *p = realloc(k->p, cap);
		if (!p)
			return -ENOMEM;
		k->p = p;
		k->cap = cap;
	}
	if (s.len)
		memcpy(k->p, s.data, s.len);
	k->len = s.len;
	return 0;
}

static lsm_slice keybuf_slice(const keybuf *k)
{
	return lsm_slice_make(k->p, k->len);
}

/* The table being written by a flush or a compaction. */
typedef struct table_out {
	lsm_db *db;
	lsm_sst_builder *b;
	uint64_t number;
	keybuf smallest, largest;
	char path[PATH_MAX];
} table_out;

static int out_open(table_out *o)
{
	lsm_db *db = o->db;
	int r;

	pthread_mutex_lock(&db->mu);
	o->number = lsm_db_new_file_number(db);
	lsm_db_pending_add(db, o->number);
	pthread_mutex_unlock(&db->mu);
	lsm_filename(o->path, sizeof(o->path), db->dir, LSM_FILE_SST, o->number);
	r = lsm_sst_builder_new(db->env, o->path, &db->opt, &o->b);
	if (r < 0) {
		o->b = NULL;
		pthread_mutex_lock(&db->mu);
		lsm_db_pending_remove(db, o->number);
		pthread_mutex_unlock(&db->mu);
	}
	return r;
}

static int out_add(table_out *o, lsm_slice ikey, lsm_slice value)
{
	int r;

	if (lsm_sst_builder_entries(o->b) == 0 && (r = keybuf_set(&o->smallest, ikey)) < 0)
		return r;
	if ((r = keybuf_set(&o->largest, ikey)) < 0)
		return r;
	return lsm_sst_builder_add(o->b, ikey, value);
}

/* Finishes the open table into a meta appended to edit at level.  The file
 * number stays pending until the caller has installed the edit. */
static int out_finish(table_out *o, lsm_version_edit *edit, int level, uint64_t *bytes)
{
	lsm_file_meta *meta;
	uint64_t size;
	int r = lsm_sst_builder_finish(o->b, &size);

	o->b = NULL;
	if (r < 0)
		return r;
	r = lsm_meta_new(o->number, size, keybuf_slice(&o->smallest), keybuf_slice(&o->largest), &meta);
	if (r < 0)
		return r;
	*bytes += size;
	return lsm_edit_add_file(edit, level, meta);
}

/* Undoes a failed flush or compaction: the partial table and every finished
 * output are removed, and their numbers released.  REQUIRES: mu not held. */
static void out_cleanup(table_out *o, lsm_version_edit *edit)
{
	lsm_db *db = o->db;
	char path[PATH_MAX];

	if (o->b) {
		lsm_sst_builder_abandon(o->b);
		o->b = NULL;
		env_unlink(db->env, o->path);
		pthread_mutex_lock(&db->mu);
		lsm_db_pending_remove(db, o->number);
		pthread_mutex_unlock(&db->mu);
	}
	for (int i = 0; i < edit->nadded; i++) {
		lsm_filename(path, sizeof(path), db->dir, LSM_FILE_SST, edit->added[i].meta->number);
		env_unlink(db->env, path);
		pthread_mutex_lock(&db->mu);
		lsm_db_pending_remove(db, edit->added[i].meta->number);
		pthread_mutex_unlock(&db->mu);
	}
	free(o->smallest.p);
	free(o->largest.p);
}

static void release_outputs(lsm_db *db, lsm_version_edit *edit)
{
	for (int i = 0; i < edit->nadded; i++)
		lsm_db_pending_remove(db, edit->added[i].meta->number);
}

/* Adds a large value that the WAL kept inline (see wal_inline_max, and
 * replay of a WAL written with it) as a pointer: the value goes to the value
 * log, and the entry keeps ikey's sequence with the pointer type.  kb is
 * scratch for the rewritten key. */
static int out_add_separated(table_out *o, keybuf *kb, lsm_slice ikey, lsm_slice value)
{
	lsm_db *db = o->db;
	lsm_slice ukey = lsm_ikey_user(ikey);
	uint8_t enc[VLOG_PTR_MAX_ENCODED];
	struct vlog_ptr ptr;
	int r = vlog_append(db->vlog, ukey.data, ukey.len, value.data, value.len, &ptr);

	if (r < 0)
		return r;
	atomic_fetch_add(&db->st_vlog_bytes, ptr.length);
	if ((r = keybuf_set(kb, ikey)) < 0)
		return r;
	put_fixed64(kb->p + ukey.len, lsm_pack_trailer(lsm_ikey_seq(ikey), LSM_TYPE_VPTR));
	return out_add(o, keybuf_slice(kb), lsm_slice_make(enc, vlog_ptr_encode(&ptr, enc)));
}

int lsm_build_level0(lsm_db *db, lsm_memtable *mem, lsm_version_edit *edit, int level)
{
	table_out o = { .db = db };
	lsm_iiter *it;
	uint64_t bytes = 0;
	int r = lsm_memtable_iter_new(mem, &it);

	if (r < 0)
		return r;
	iiter_seek_to_first(it);
	if (!iiter_valid(it)) {
		iiter_destroy(it);
		return 0;
	}
	/* Versions no snapshot can see are dropped here already (as in a
	 * compaction, but tombstones stay: deeper levels may hold the key), so
	 * overwritten value-log records are counted as garbage at the first
	 * flush rather than at some later compaction. */
	pthread_mutex_lock(&db->mu);
	uint64_t smallest_snapshot = lsm_db_oldest_snapshot(db);
	pthread_mutex_unlock(&db->mu);
	keybuf cur = { 0 }, sep = { 0 };
	bool has_cur = false;
	uint64_t last_seq_for_key = UINT64_MAX, separated = 0;
	r = out_open(&o);
	for (; r == 0 && iiter_valid(it); iiter_next(it)) {
		lsm_slice ikey = iiter_key(it), ukey = lsm_ikey_user(ikey);
		if (!has_cur || !lsm_slice_eq(ukey, keybuf_slice(&cur))) {
			if ((r = keybuf_set(&cur, ukey)) < 0)
				break;
			has_cur = true;
			last_seq_for_key = UINT64_MAX;
		}
		bool drop = last_seq_for_key <= smallest_snapshot;
		last_seq_for_key = lsm_ikey_seq(ikey);
		if (!drop) {
			lsm_slice v = iiter_value(it);
			if (lsm_ikey_type(ikey) == LSM_TYPE_VALUE && db->vlog && db->opt.value_threshold &&
			    v.len >= db->opt.value_threshold) {
				r = out_add_separated(&o, &sep, ikey, v);
				separated++;
			} else {
				r = out_add(&o, ikey, v);
			}
			continue;
		}
		if (lsm_ikey_type(ikey) == LSM_TYPE_VPTR) {
			struct vlog_ptr ptr;
			lsm_slice pv = iiter_value(it);
			if (vlog_ptr_decode(pv.data, pv.len, &ptr) == 0)
				r = lsm_garbage_add(&edit->garbage, ptr.segment, ptr.length);
		}
	}
	free(cur.p);
	free(sep.p);
	if (r == 0)
		r = iiter_status(it);
	iiter_destroy(it);
	if (r == 0 && separated) {
		/* The WAL that vouched for those values retires once the table
		 * is installed: they must be durable before it is. */
		r = vlog_flush(db->vlog);
		if (r == 0) {
			atomic_fetch_add(&db->vlog_gen, 1);
			r = lsm_blob_sync(db);
		}
	}
	if (r == 0)
		r = out_finish(&o, edit, level, &bytes);
	if (r < 0) {
		out_cleanup(&o, edit);
		return r;
	}
	free(o.smallest.p);
	free(o.largest.p);
	atomic_fetch_add(&db->st_flush_bytes, bytes);
	return 0;
}

/* ---- choosing ---------------------------------------------------------- */

static void user_range(lsm_file_list *a, lsm_file_list *b, lsm_slice *ret_lo, lsm_slice *ret_hi)
{
	bool first = true;
	lsm_file_list *lists[2] = { a, b };

	for (int k = 0; k < 2; k++)
		for (int i = 0; lists[k] && i < lists[k]->n; i++) {
			lsm_slice lo = lsm_ikey_user(meta_smallest(lists[k]->v[i]));
			lsm_slice hi = lsm_ikey_user(meta_largest(lists[k]->v[i]));
			if (first || lsm_slice_cmp(lo, *ret_lo) < 0)
				*ret_lo = lo;
			if (first || lsm_slice_cmp(hi, *ret_hi) > 0)
				*ret_hi = hi;
			first = false;
		}
}

static uint64_t list_bytes(const lsm_file_list *l)
{
	uint64_t sum = 0;
	for (int i = 0; i < l->n; i++)
		sum += l->v[i]->size;
	return sum;
}

static void compaction_free(lsm_compaction *c)
{
	lsm_file_list_done(&c->inputs[0]);
	lsm_file_list_done(&c->inputs[1]);
	lsm_file_list_done(&c->grandparents);
	free(c);
}

static int cmp_smallest(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a, *y = *(lsm_file_meta *const *)b;

	return lsm_slice_cmp(lsm_ikey_user(meta_smallest(x)), lsm_ikey_user(meta_smallest(y)));
}

/* Whether no two files of l share a user key, so that, with nothing of the
 * next level in their range, all of them can move down as they are: level-0
 * tables of keys written in order (fillseq, a log, a bulk load) go down
 * without a rewrite, as LevelDB moves a single table.  False on ENOMEM. */
static bool disjoint(const lsm_file_list *l)
{
	lsm_file_meta **v;
	bool ok = true;

	if (l->n <= 1)
		return true;
	v = malloc((size_t)l->n * sizeof(*v));
	if (!v)
		return false;
	memcpy(v, l->v, (size_t)l->n * sizeof(*v));
	qsort(v, (size_t)l->n, sizeof(*v), cmp_smallest);
	for (int i = 0; ok && i + 1 < l->n; i++)
		ok = lsm_slice_cmp(lsm_ikey_user(meta_largest(v[i])), lsm_ikey_user(meta_smallest(v[i + 1]))) < 0;
	free(v);
	return ok;
}

/* Fills inputs[1] and grandparents from inputs[0], checks nothing involved
 * is busy, and marks everything.  REQUIRES: mu. */
static lsm_compaction *setup(lsm_db *db, lsm_compaction *c)
{
	lsm_version *v = db->current;
	lsm_slice lo, hi;
	int r;

	user_range(&c->inputs[0], NULL, &lo, &hi);
	r = lsm_version_overlapping(v, c->level + 1, &lo, &hi, &c->inputs[1]);
	user_range(&c->inputs[0], &c->inputs[1], &lo, &hi);
	if (r == 0 && c->level + 2 < LSM_MAX_LEVELS)
		r = lsm_version_overlapping(v, c->level + 2, &lo, &hi, &c->grandparents);
	for (int k = 0; r == 0 && k < 2; k++)
		for (int i = 0; i < c->inputs[k].n; i++)
			if (c->inputs[k].v[i]->being_compacted)
				r = -EBUSY;
	if (r < 0) {
		compaction_free(c);
		return NULL;
	}
	c->trivial_move = c->inputs[1].n == 0 && disjoint(&c->inputs[0]) &&
	                  list_bytes(&c->grandparents) <= 10 * (uint64_t)db->opt.target_file_size;
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < c->inputs[k].n; i++)
			c->inputs[k].v[i]->being_compacted = true;
	db->busy_levels[c->level] = db->busy_levels[c->level + 1] = true;
	c->input_version = v;
	lsm_version_ref(v);
	db->running_compactions++;
	return c;
}

/* Round robin by key: the first file of level after the largest key of the
 * last compaction there (kept in memory only), or -1 if the level is empty.
 * (The file whose overlap below is smallest for its size, RocksDB's
 * kMinOverlappingRatio, was measured too and wrote more under random
 * overwrites: scattered picks leave level + 1 cut into partly overlapped
 * files, where a sweep in key order keeps its boundaries in step.) */
static int pick_round_robin(const lsm_db *db, const lsm_version *v, int level)
{
	const lsm_file_list *l = &v->files[level];
	lsm_slice ptr = lsm_slice_make(db->compact_ptr[level], db->compact_ptr_len[level]);
	int pick = 0;

	if (l->n == 0)
		return -1;
	if (ptr.len) {
		while (pick < l->n && lsm_ikey_cmp(meta_largest(l->v[pick]), ptr) <= 0)
			pick++;
		if (pick == l->n)
			pick = 0;
	}
	return pick;
}

/* LevelDB's widening of a level-n compaction: once inputs[0] (of level) and
 * the files of level + 1 it overlaps are known, every other file of level
 * inside the range they cover together joins inputs[0], as long as that
 * brings in no further file of level + 1 and the whole stays under 25 target
 * file sizes.  Those files are merged into level + 1 files that are being
 * rewritten anyway, where a later compaction would rewrite them again.
 * Failing to widen (ENOMEM included) leaves inputs[0] as it was.
 * REQUIRES: mu. */
static void widen_inputs(const lsm_db *db, const lsm_version *v, int level, lsm_file_list *in0)
{
	lsm_file_list in1 = { 0 }, wide0 = { 0 }, wide1 = { 0 };
	uint64_t limit = 25 * (uint64_t)db->opt.target_file_size;
	lsm_slice lo, hi;

	user_range(in0, NULL, &lo, &hi);
	if (lsm_version_overlapping(v, level + 1, &lo, &hi, &in1) < 0 || in1.n == 0)
		goto out;
	user_range(in0, &in1, &lo, &hi);
	if (lsm_version_overlapping(v, level, &lo, &hi, &wide0) < 0 || wide0.n <= in0->n ||
	    list_bytes(&wide0) + list_bytes(&in1) >= limit)
		goto out;
	for (int i = 0; i < wide0.n; i++)
		if (wide0.v[i]->being_compacted)
			goto out;
	user_range(&wide0, NULL, &lo, &hi);
	if (lsm_version_overlapping(v, level + 1, &lo, &hi, &wide1) < 0 || wide1.n != in1.n)
		goto out;
	lsm_file_list t = *in0;
	*in0 = wide0;
	wide0 = t;
out:
	lsm_file_list_done(&in1);
	lsm_file_list_done(&wide0);
	lsm_file_list_done(&wide1);
}

/* Nothing is due by size: compact the file point lookups keep reading past,
 * if any (level 0 as a whole, since its files overlap).  REQUIRES: mu. */
static lsm_compaction *pick_seek_file(lsm_db *db, lsm_version *v)
{
	lsm_file_meta *f = v->seek_file;
	int level = v->seek_level;
	lsm_compaction *c;
	int r = 0;

	if (!f || f->being_compacted || db->busy_levels[level] || db->busy_levels[level + 1])
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->level = level;
	if (level == 0)
		for (int i = 0; i < v->files[0].n && r == 0; i++)
			r = lsm_file_list_push(&c->inputs[0], v->files[0].v[i]);
	else
		r = lsm_file_list_push(&c->inputs[0], f);
	if (r < 0) {
		compaction_free(c);
		return NULL;
	}
	if ((c = setup(db, c))) {
		v->seek_file = NULL;
		atomic_fetch_add(&db->st_seek_compactions, 1);
	}
	return c;
}

lsm_compaction *lsm_compaction_pick(lsm_db *db)
{
	lsm_version *v = db->current;
	int order[LSM_MAX_LEVELS - 1];
	double score[LSM_MAX_LEVELS - 1];
	int n = 0;

	if (db->manual_compaction)
		return NULL;
	for (int level = 0; level < LSM_MAX_LEVELS - 1; level++) {
		double s = level == 0 ? (double)v->files[0].n / db->opt.l0_compaction_trigger
		                      : (double)lsm_level_bytes(v, level) / (double)lsm_max_bytes_for_level(&db->opt, level);
		if (s < 1.0 || db->busy_levels[level] || db->busy_levels[level + 1])
			continue;
		int i = n++;
		while (i > 0 && score[i - 1] < s) {
			score[i] = score[i - 1];
			order[i] = order[i - 1];
			i--;
		}
		score[i] = s;
		order[i] = level;
	}
	for (int k = 0; k < n; k++) {
		int level = order[k];
		lsm_compaction *c = calloc(1, sizeof(*c));
		lsm_file_list *l = &v->files[level];
		int r = 0;

		if (!c)
			return NULL;
		c->level = level;
		if (level == 0) {
			for (int i = 0; i < l->n && r == 0; i++)
				r = lsm_file_list_push(&c->inputs[0], l->v[i]);
		} else {
			int pick = pick_round_robin(db, v, level);
			if (pick < 0) {
				compaction_free(c);
				continue;
			}
			r = lsm_file_list_push(&c->inputs[0], l->v[pick]);
			if (r == 0) {
				widen_inputs(db, v, level, &c->inputs[0]);
				/* Round robin resumes after the (widened) inputs. */
				lsm_slice largest = meta_largest(c->inputs[0].v[c->inputs[0].n - 1]);
				uint8_t *p = realloc(db->compact_ptr[level], largest.len);
				if (p) {
					memcpy(p, largest.data, largest.len);
					db->compact_ptr[level] = p;
					db->compact_ptr_len[level] = largest.len;
				}
			}
		}
		if (r < 0) {
			compaction_free(c);
			return NULL;
		}
		c = setup(db, c);
		if (c)
			return c;
	}
	return pick_seek_file(db, v);
}

lsm_compaction *lsm_compaction_manual(lsm_db *db, int level, const lsm_slice *begin, const lsm_slice *end)
{
	lsm_compaction *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	c->level = level;
	if (level == 0)
		r = lsm_version_overlapping(db->current, 0, NULL, NULL, &c->inputs[0]);
	else
		r = lsm_version_overlapping(db->current, level, begin, end, &c->inputs[0]);
	if (r < 0 || c->inputs[0].n == 0) {
		compaction_free(c);
		return NULL;
	}
	return setup(db, c);
}

/* ---- running ----------------------------------------------------------- */

/* Tracks, for keys in increasing order, whether any level below the output
 * holds the key (then a tombstone must be kept to shadow it). */
typedef struct base_check {
	lsm_version *v;
	int from_level;
	int ptr[LSM_MAX_LEVELS];
} base_check;

static bool is_base_level(base_check *b, lsm_slice ukey)
{
	for (int level = b->from_level; level < LSM_MAX_LEVELS; level++) {
		lsm_file_list *l = &b->v->files[level];
		while (b->ptr[level] < l->n) {
			lsm_file_meta *f = l->v[b->ptr[level]];
			if (lsm_slice_cmp(ukey, lsm_ikey_user(meta_largest(f))) <= 0) {
				if (lsm_slice_cmp(ukey, lsm_ikey_user(meta_smallest(f))) >= 0)
					return false;
				break;
			}
			b->ptr[level]++;
		}
	}
	return true;
}

/* LevelDB's rule against outputs that overlap too much of level + 2, which
 * would make the next compaction of that output expensive. */
typedef struct gp_check {
	lsm_file_list *gp;
	int index;
	uint64_t overlap;
	bool seen_key;
} gp_check;

static bool gp_should_stop(gp_check *g, lsm_slice ikey, uint64_t limit)
{
	while (g->index < g->gp->n && lsm_ikey_cmp(ikey, meta_largest(g->gp->v[g->index])) > 0) {
		if (g->seen_key)
			g->overlap += g->gp->v[g->index]->size;
		g->index++;
	}
	g->seen_key = true;
	if (g->overlap > limit) {
		g->overlap = 0;
		return true;
	}
	return false;
}

static int install(lsm_db *db, lsm_compaction *c, lsm_version_edit *edit)
{
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < c->inputs[k].n; i++) {
			int r = lsm_edit_delete_file(edit, c->level + k, c->inputs[k].v[i]->number);
			if (r < 0)
				return r;
		}
	return lsm_db_log_and_apply(db, edit);
}

static void finish(lsm_db *db, lsm_compaction *c)
{
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < c->inputs[k].n; i++)
			c->inputs[k].v[i]->being_compacted = false;
	db->busy_levels[c->level] = db->busy_levels[c->level + 1] = false;
	db->running_compactions--;
	lsm_version_unref(db, c->input_version);
	compaction_free(c);
	pthread_cond_broadcast(&db->bg_cv);
	pthread_cond_broadcast(&db->idle_cv);
}

static int trivial_move(lsm_db *db, lsm_compaction *c)
{
	lsm_version_edit edit;
	int r = 0;

	/* The same metas move down: one meta per file number keeps the
	 * per-file reference count (and so obsolete-file deletion) exact. */
	lsm_edit_init(&edit);
	for (int i = 0; r == 0 && i < c->inputs[0].n; i++)
		r = lsm_edit_add_file(&edit, c->level + 1, c->inputs[0].v[i]);
	pthread_mutex_lock(&db->mu);
	if (r == 0)
		r = install(db, c, &edit);
	finish(db, c);
	/* Under mu: once it is dropped, another thread may free the version
	 * (and the metas) this edit points at. */
	lsm_edit_done(&edit);
	pthread_mutex_unlock(&db->mu);
	return r;
}

static int merge_inputs(lsm_db *db, lsm_compaction *c, lsm_iiter **ret)
{
	int n = c->inputs[0].n + 1, k = 0, r = 0;
	lsm_iiter **its = calloc((size_t)n + 1, sizeof(*its));

	if (!its)
		return -ENOMEM;
	if (c->level == 0) {
		for (int i = 0; i < c->inputs[0].n && r == 0; i++) {
			lsm_file_meta *f = c->inputs[0].v[i];
			r = lsm_table_cache_iter(db->tables, f->number, f->size, false, &its[k]);
			if (r == 0)
				k++;
		}
	} else {
		r = lsm_level_iter_new(c->inputs[0].v, c->inputs[0].n, db->tables, false, &its[k]);
		if (r == 0)
			k++;
	}
	if (r == 0 && c->inputs[1].n) {
		r = lsm_level_iter_new(c->inputs[1].v, c->inputs[1].n, db->tables, false, &its[k]);
		if (r == 0)
			k++;
	}
	if (r == 0)
		r = lsm_merge_iter_new(its, k, lsm_ikey_cmp, ret);
	else
		for (int i = 0; i < k; i++)
			iiter_destroy(its[i]);
	free(its);
	return r;
}

int lsm_compaction_run(lsm_db *db, lsm_compaction *c)
{
	uint64_t start = lsm_now_micros(), written = 0, smallest_snapshot;
	uint64_t last_seq_for_key = UINT64_MAX, limit = 10 * (uint64_t)db->opt.target_file_size;
	base_check base = { .v = c->input_version, .from_level = c->level + 2 };
	gp_check gp = { .gp = &c->grandparents };
	table_out o = { .db = db };
	keybuf cur = { 0 };
	bool has_cur = false;
	lsm_version_edit edit;
	lsm_iiter *it = NULL;
	int r;

	if (c->trivial_move)
		return trivial_move(db, c);
	lsm_edit_init(&edit);
	pthread_mutex_lock(&db->mu);
	smallest_snapshot = lsm_db_oldest_snapshot(db);
	pthread_mutex_unlock(&db->mu);

	r = merge_inputs(db, c, &it);
	if (r == 0)
		iiter_seek_to_first(it);
	while (r == 0 && iiter_valid(it)) {
		lsm_slice ikey = iiter_key(it);
		if (ikey.len < 8) {
			r = lsm_errf(-EUCLEAN, "compaction input: internal key too short");
			break;
		}
		lsm_slice ukey = lsm_ikey_user(ikey);
		uint64_t seq = lsm_ikey_seq(ikey);
		unsigned type = lsm_ikey_type(ikey);
		bool drop = false;

		if (!has_cur || !lsm_slice_eq(ukey, keybuf_slice(&cur))) {
			/* A new user key: the only place an output may end. */
			if (o.b && (lsm_sst_builder_file_size(o.b) >= db->opt.target_file_size ||
			            gp_should_stop(&gp, ikey, limit))) {
				r = out_finish(&o, &edit, c->level + 1, &written);
				if (r < 0)
					break;
			} else if (o.b) {
				gp_should_stop(&gp, ikey, UINT64_MAX);
			}
			if ((r = keybuf_set(&cur, ukey)) < 0)
				break;
			has_cur = true;
			last_seq_for_key = UINT64_MAX;
		}
		if (last_seq_for_key <= smallest_snapshot)
			drop = true;
		else if (type == LSM_TYPE_DELETE && seq <= smallest_snapshot && is_base_level(&base, ukey))
			drop = true;
		last_seq_for_key = seq;
		if (drop && type == LSM_TYPE_VPTR) {
			/* The value this pointer names is garbage now: count it
			 * against its segment (persisted with the edit). */
			struct vlog_ptr ptr;
			lsm_slice pv = iiter_value(it);
			if (vlog_ptr_decode(pv.data, pv.len, &ptr) == 0 &&
			    (r = lsm_garbage_add(&edit.garbage, ptr.segment, ptr.length)) < 0)
				break;
		}
		if (!drop) {
			if (!o.b && (r = out_open(&o)) < 0)
				break;
			if ((r = out_add(&o, ikey, iiter_value(it))) < 0)
				break;
		}
		iiter_next(it);
	}
	if (r == 0 && it)
		r = iiter_status(it);
	iiter_destroy(it);
	if (r == 0 && o.b)
		r = out_finish(&o, &edit, c->level + 1, &written);
	free(cur.p);
	if (r < 0) {
		out_cleanup(&o, &edit);
		pthread_mutex_lock(&db->mu);
		finish(db, c);
		lsm_edit_done(&edit);
		pthread_mutex_unlock(&db->mu);
		return r;
	}
	free(o.smallest.p);
	free(o.largest.p);

	uint64_t read = list_bytes(&c->inputs[0]) + list_bytes(&c->inputs[1]);
	int out_level = c->level + 1;
	pthread_mutex_lock(&db->mu);
	r = install(db, c, &edit);
	/* If the install failed, the manifest record may still have reached the
	 * disk, so the outputs stay; the sweep at the next open removes them if
	 * the recovered manifest does not name them. */
	release_outputs(db, &edit);
	finish(db, c);
	lsm_edit_done(&edit);
	pthread_mutex_unlock(&db->mu);
	atomic_fetch_add(&db->st_compact_read, read);
	atomic_fetch_add(&db->st_compact_written, written);
	atomic_fetch_add(&db->st_level_read[out_level], read);
	atomic_fetch_add(&db->st_level_written[out_level], written);
	atomic_fetch_add(&db->st_compactions, 1);
	atomic_fetch_add(&db->st_compact_micros, lsm_now_micros() - start);
	return r;
}
