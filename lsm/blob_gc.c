/*
 * blob_gc.c - value-log garbage collection, with no call needed from the
 * application.
 *
 * Compaction counts the bytes of every pointer it drops against the
 * pointer's segment (compact.c, persisted in MANIFEST edits).  The GC thread
 * picks the sealed segment with the most garbage, once that is at least
 * GC_RATIO of it, scans it, and copies each record still named by its key's
 * newest pointer to the head of the log; the re-pointing batch is applied
 * only for keys that still hold the old pointer, checked by the write leader
 * atomically with the write.  The segment is removed once no reader can
 * meet an old pointer into it: no snapshot or iterator older than the
 * re-pointing, and the WAL holding the re-pointing retired (so replay never
 * meets an older pointer into a removed segment).
 *
 * Nothing stays stuck: a segment is never removed while active, so when the
 * writes stop with the active segment holding garbage, the thread seals it
 * after a quiet second and collects it like any other.  Rewrites are
 * paced at GC_RATE bytes per second so foreground writes keep most of the
 * disk.
 */
#include "db_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vlog/vlog.h"

#define GC_RATIO      0.25          /* garbage share that makes a segment worth collecting */
#define GC_RATE       (64u << 20)   /* bytes rewritten per second, at most */
#define GC_QUIET_US   1000000       /* idle time before the active segment is sealed */

int lsm_gc_filter(lsm_db *db, const lsm_batch *in, const lsm_slice *olds, lsm_batch *out)
{
	const uint8_t *p = in->rep + LSM_BATCH_HEADER, *end = in->rep + in->len;
	uint32_t kept = 0;
	int i = 0, r;

	if (out->cap < in->len) {
		uint8_t *n = realloc(out->rep, in->len);
		if (!n)
			return -ENOMEM;
		out->rep = n;
		out->cap = in->len;
	}
	memcpy(out->rep, in->rep, LSM_BATCH_HEADER);
	out->len = LSM_BATCH_HEADER;
	while (p < end) {
		const uint8_t *rec = p;
		lsm_slice key, val;
		p++;   /* tag: always LSM_TYPE_VPTR in a GC batch */
		p = get_length_prefixed(p, end, &key);
		if (p)
			p = get_length_prefixed(p, end, &val);
		if (!p)
			return lsm_errf(-EUCLEAN, "GC batch: malformed");
		unsigned type;
		void *raw;
		size_t len;
		r = lsm_db_get_raw(db, NULL, false, key, &type, &raw, &len);
		if (r < 0)
			return r;
		bool same = false;
		if (r == 1) {
			same = type == LSM_TYPE_VPTR && lsm_slice_eq(lsm_slice_make(raw, len), olds[i]);
			free(raw);
		}
		if (same) {
			memcpy(out->rep + out->len, rec, (size_t)(p - rec));
			out->len += (size_t)(p - rec);
			kept++;
		} else {
			/* The key moved on since the copy: the copy is garbage from
			 * birth, and must be counted or its segment never empties. */
			struct vlog_ptr np;
			if (vlog_ptr_decode(val.data, val.len, &np) == 0 &&
			    (r = lsm_garbage_add(&db->gc_dropped, np.segment, np.length)) < 0)
				return r;
		}
		i++;
	}
	put_fixed32(out->rep + 8, kept);
	return 0;
}

/* ---- one pass ---------------------------------------------------------- */

struct gc_scan {
	lsm_db *db;
	lsm_batch *batch;
	uint8_t *olds;              /* encoded old pointers, back to back */
	size_t olds_len, olds_cap;
	size_t *old_lens;
	int n, cap;
	uint64_t rewritten;
};

static int gc_record(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen,
                     const void *value, size_t vlen)
{
	struct gc_scan *g = arg;
	uint8_t enc[VLOG_PTR_MAX_ENCODED], newenc[VLOG_PTR_MAX_ENCODED];
	size_t elen = vlog_ptr_encode(ptr, enc);
	unsigned type;
	void *raw;
	size_t len;
	int r = lsm_db_get_raw(g->db, NULL, false, lsm_slice_make(key, klen), &type, &raw, &len);

	if (r <= 0)
		return r;       /* deleted: garbage */
	bool live = type == LSM_TYPE_VPTR && len == elen && memcmp(raw, enc, elen) == 0;
	free(raw);
	if (!live)
		return 0;

	struct vlog_ptr np;
	r = vlog_append(g->db->vlog, key, klen, value, vlen, &np);
	if (r < 0)
		return r;
	size_t nlen = vlog_ptr_encode(&np, newenc);
	g->rewritten += np.length;

	/* The record: tag VPTR, key, new pointer. */
	lsm_batch *b = g->batch;
	size_t need = 1 + 2 * VARINT32_MAX + klen + nlen;
	if (b->len + need > b->cap) {
		size_t cap = (b->len + need) * 2;
		uint8_t *p = realloc(b->rep, cap);
		if (!p)
			return -ENOMEM;
		b->rep = p;
		b->cap = cap;
	}
	uint8_t *p = b->rep + b->len;
	*p++ = LSM_TYPE_VPTR;
	p = put_varint32(p, (uint32_t)klen);
	if (klen)
		memcpy(p, key, klen);
	p += klen;
	p = put_varint32(p, (uint32_t)nlen);
	memcpy(p, newenc, nlen);
	p += nlen;
	b->len = (size_t)(p - b->rep);
	put_fixed32(b->rep + 8, get_fixed32(b->rep + 8) + 1);

	if (g->n == g->cap) {
		int cap = g->cap ? g->cap * 2 : 64;
		size_t *l = realloc(g->old_lens, (size_t)cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		g->old_lens = l;
		g->cap = cap;
	}
	if (g->olds_len + elen > g->olds_cap) {
		size_t cap = (g->olds_len + elen) * 2;
		uint8_t *o = realloc(g->olds, cap);
		if (!o)
			return -ENOMEM;
		g->olds = o;
		g->olds_cap = cap;
	}
	memcpy(g->olds + g->olds_len, enc, elen);
	g->olds_len += elen;
	g->old_lens[g->n++] = elen;
	return 0;
}

/* Chooses the segment to collect.  REQUIRES: mu. */
static uint64_t gc_pick(lsm_db *db, const struct vlog_segment_info *segs, size_t n, bool force)
{
	uint64_t best = 0;
	double best_ratio = 0;

	for (size_t i = 0; i < n; i++) {
		bool pending = false;
		for (int k = 0; k < db->ngc_pending; k++)
			pending |= db->gc_pending[k].segment == segs[i].segment;
		/* A running flush may be writing values into the segment
		 * active when it began and newer ones, which only its table,
		 * not yet installed, will point at (see flush_one). */
		if (pending || (segs[i].flags & VLOG_SEGMENT_ACTIVE) || segs[i].size == 0 ||
		    (db->flush_vlog_floor && segs[i].segment >= db->flush_vlog_floor))
			continue;
		double ratio = (double)lsm_garbage_get(&db->garbage, segs[i].segment) / (double)segs[i].size;
		if (ratio > best_ratio && (force || ratio >= GC_RATIO)) {
			best = segs[i].segment;
			best_ratio = ratio;
		}
	}
	return best;
}

static int gc_pass_locked(lsm_db *db, bool force, uint64_t *ret_rewritten);

int lsm_gc_pass(lsm_db *db, bool force, uint64_t *ret_rewritten)
{
	/* One pass at a time: the thread and lsm_gc() must not pick (and
	 * remove) the same segment under each other. */
	pthread_mutex_lock(&db->gc_mu);
	int r = gc_pass_locked(db, force, ret_rewritten);
	pthread_mutex_unlock(&db->gc_mu);
	return r;
}

static int gc_pass_locked(lsm_db *db, bool force, uint64_t *ret_rewritten)
{
	struct vlog_segment_info *segs = NULL;
	struct gc_scan g = { .db = db };
	struct vlog_scan_result res;
	size_t n = 0;
	uint64_t victim;
	int r;

	*ret_rewritten = 0;
	if (!db->vlog)
		return 0;
	r = vlog_segments(db->vlog, &segs, &n);
	if (r < 0)
		return r;
	/* Before mu: the vlog's lock is taken inside vlog_append with the
	 * file-number callback taking mu, so mu must never be held around a
	 * vlog call. */
	uint64_t active = vlog_active_segment(db->vlog);
	pthread_mutex_lock(&db->mu);
	victim = gc_pick(db, segs, n, force);
	if (!victim) {
		/* The active segment is never collected while active: if it holds
		 * the garbage and writes have stopped, seal it for the next pass. */
		for (size_t i = 0; i < n; i++)
			if (segs[i].segment == active && segs[i].size > 0 &&
			    lsm_garbage_get(&db->garbage, active) > 0 &&
			    (force || lsm_now_micros() - atomic_load(&db->last_write_micros) > GC_QUIET_US)) {
				pthread_mutex_unlock(&db->mu);
				free(segs);
				r = vlog_roll(db->vlog);
				return r < 0 ? r : 1;
			}
	}
	pthread_mutex_unlock(&db->mu);
	free(segs);
	if (!victim)
		return 0;

	/* A write leader appends its values to the log before it inserts the
	 * group into the memtable, so a write can still be between the two
	 * with its value in the victim (sealed by a roll in the middle of its
	 * group, or by the quiet-second seal above).  The scan judges a record
	 * live by its key's newest pointer: it must not start before every
	 * write that could have appended to the victim is visible, or it would
	 * leave that write's value behind in a segment it then removes.  All
	 * such writes led before the seal, so they are all queued ahead of an
	 * empty write made now. */
	r = lsm_db_write_barrier(db);
	if (r == 0)
		r = lsm_batch_new(&g.batch);
	if (r == 0)
		r = vlog_scan(db->vlog, victim, gc_record, &g, &res);
	if (r == 0)
		r = vlog_flush(db->vlog);
	if (r == 0 && g.n > 0) {
		lsm_slice *olds = malloc((size_t)g.n * sizeof(*olds));
		if (!olds) {
			r = -ENOMEM;
		} else {
			size_t off = 0;
			for (int i = 0; i < g.n; i++) {
				olds[i] = lsm_slice_make(g.olds + off, g.old_lens[i]);
				off += g.old_lens[i];
			}
			atomic_fetch_add(&db->vlog_gen, 1);   /* the new copies need a sync */
			db->gc_dropped.n = 0;
			r = lsm_db_write_gc(db, g.batch, olds);
			free(olds);
			if (r == 0 && db->gc_dropped.n > 0) {
				lsm_version_edit e;
				lsm_edit_init(&e);
				e.garbage = db->gc_dropped;     /* borrowed for the edit */
				pthread_mutex_lock(&db->mu);
				r = lsm_db_log_and_apply(db, &e);
				pthread_mutex_unlock(&db->mu);
				e.garbage = (lsm_garbage_list){ 0 };
				lsm_edit_done(&e);
			}
		}
	}
	if (r == 0) {
		pthread_mutex_lock(&db->mu);
		if (db->ngc_pending == db->cap_gc_pending) {
			int cap = db->cap_gc_pending ? db->cap_gc_pending * 2 : 8;
			struct lsm_gc_pending *p = realloc(db->gc_pending, (size_t)cap * sizeof(*p));
			if (p) {
				db->gc_pending = p;
				db->cap_gc_pending = cap;
			}
		}
		if (db->ngc_pending < db->cap_gc_pending)
			db->gc_pending[db->ngc_pending++] = (struct lsm_gc_pending){
				victim, atomic_load(&db->last_seq), db->mem_log_number };
		pthread_mutex_unlock(&db->mu);
		atomic_fetch_add(&db->st_gc_passes, 1);
		atomic_fetch_add(&db->st_gc_rewritten, g.rewritten);
	}
	lsm_batch_free(g.batch);
	free(g.olds);
	free(g.old_lens);
	if (r < 0)
		return lsm_errf(r, "value-log GC of segment %06llu failed", (unsigned long long)victim);
	*ret_rewritten = g.rewritten;
	return 1;
}

/* True when no reader can meet an old pointer into p's segment.
 * REQUIRES: mu. */
static bool gc_unreachable(lsm_db *db, const struct lsm_gc_pending *p)
{
	/* Replay must never meet a pointer into a removed segment: the WAL
	 * holding the re-pointing (and everything older) must have retired,
	 * unless it is the current WAL and still empty. */
	bool wal_empty = p->wal == db->mem_log_number && db->nimm == 0 && lsm_memtable_entries(db->mem) == 0;
	if (db->log_number <= p->wal && !wal_empty)
		return false;
	if (db->snapshots.next != &db->snapshots && db->snapshots.next->seq <= p->seq)
		return false;
	return true;
}

/* REQUIRES: gc_mu and mu (mu dropped meanwhile). */
static void gc_collect_locked(lsm_db *db)
{
	for (int i = 0; i < db->ngc_pending;) {
		struct lsm_gc_pending p = db->gc_pending[i];
		if (!gc_unreachable(db, &p)) {
			i++;
			continue;
		}
		db->gc_pending[i] = db->gc_pending[--db->ngc_pending];
		pthread_mutex_unlock(&db->mu);
		/* File first, then the edit: a crash between leaves a garbage
		 * count for a missing segment (ignored), never an unnamed file. */
		int r = vlog_remove_segment(db->vlog, p.segment);
		atomic_fetch_add(&db->gc_removed_gen, 1);
		pthread_mutex_lock(&db->mu);
		if (r < 0 && r != -ENOENT)
			continue;
		lsm_version_edit e;
		lsm_edit_init(&e);
		if (lsm_garbage_add(&e.vlog_removed, p.segment, 0) == 0)
			lsm_db_log_and_apply(db, &e);
		lsm_edit_done(&e);
		atomic_fetch_add(&db->st_gc_removed, 1);
	}
}

void lsm_gc_collect(lsm_db *db)
{
	/* Not while a pass runs (it may be scanning); the thread retries. */
	if (pthread_mutex_trylock(&db->gc_mu) != 0)
		return;
	gc_collect_locked(db);
	pthread_mutex_unlock(&db->gc_mu);
}

/* True if a collected segment waits only for the WAL holding its
 * re-pointing to retire.  REQUIRES: mu. */
static bool gc_waits_for_wal(lsm_db *db)
{
	for (int i = 0; i < db->ngc_pending; i++)
		if (!gc_unreachable(db, &db->gc_pending[i]) &&
		    (db->snapshots.next == &db->snapshots || db->snapshots.next->seq > db->gc_pending[i].seq))
			return true;
	return false;
}

void *lsm_gc_thread(void *arg)
{
	lsm_db *db = arg;
	uint64_t next_at = 0;

	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		if (db->bg_error || db->manual_compaction) {
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		lsm_gc_collect(db);
		uint64_t now = lsm_now_micros();
		if (now >= next_at) {
			db->gc_running = true;
			pthread_mutex_unlock(&db->mu);
			uint64_t done = 0;
			lsm_gc_pass(db, false, &done);
			pthread_mutex_lock(&db->mu);
			db->gc_running = false;
			pthread_cond_broadcast(&db->idle_cv);
			/* Pace rewrites; with nothing to do, look again soon.  A
			 * failed pass is retried the same way (the error is the
			 * thread's last_error; writes are unaffected). */
			next_at = now + (done > 0 ? done * 1000000u / GC_RATE : 200000u);
			continue;
		}
		if (gc_waits_for_wal(db) && now - atomic_load(&db->last_write_micros) > GC_QUIET_US &&
		    db->nimm == 0 && !db->flush_running) {
			/* Writes have stopped, so no flush would retire that WAL:
			 * flush now, or the space would stay taken while idle. */
			pthread_mutex_unlock(&db->mu);
			lsm_flush(db);
			pthread_mutex_lock(&db->mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait_us = next_at > now ? next_at - now : 200000u;
		if (wait_us > 200000u)
			wait_us = 200000u;
		ts.tv_sec += (time_t)(wait_us / 1000000u);
		ts.tv_nsec += (long)(wait_us % 1000000u) * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&db->bg_cv, &db->mu, &ts);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

int64_t lsm_gc(lsm_db *db)
{
	int64_t total = 0;
	uint64_t done;
	int r;

	if (!db)
		return -EINVAL;
	while ((r = lsm_gc_pass(db, true, &done)) > 0)
		total += (int64_t)done;
	if (r < 0)
		return r;
	/* Retire the WAL holding the re-pointing, then remove what no
	 * reader can reach any more. */
	r = lsm_flush(db);
	if (r < 0)
		return r;
	pthread_mutex_lock(&db->gc_mu);
	pthread_mutex_lock(&db->mu);
	gc_collect_locked(db);
	pthread_mutex_unlock(&db->mu);
	pthread_mutex_unlock(&db->gc_mu);
	return total;
}
