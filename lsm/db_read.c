/*
 * db_read.c - the read path: point lookups (memtables newest first, then the
 * levels), snapshots, and the public iterator, which merges the memtables and
 * every table under one super version and reads at a sequence number.
 *
 * Readers take a reference on the current super version (memtables plus
 * version) under db->mu for an instant and then read without any lock, so
 * they never wait for writers, flushes or compactions.  Lookups and scans
 * also feed compaction: a table that reads keep passing through on their way
 * to a deeper one is charged a seek each time (allowed_seeks) and, once out
 * of them, is compacted down when nothing is due by size.
 */
#include "db_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- reads ------------------------------------------------------------- */

/* A file ran out of allowed_seeks: if it is still in the current version,
 * remember it there and wake a compaction thread, which compacts it when no
 * compaction by size is due. */
static void note_seek_file(lsm_db *db, lsm_version *v, lsm_file_meta *f, int level)
{
	pthread_mutex_lock(&db->mu);
	if (v == db->current && !v->seek_file && level < LSM_MAX_LEVELS - 1) {
		v->seek_file = f;
		v->seek_level = level;
		pthread_cond_broadcast(&db->bg_cv);
	}
	pthread_mutex_unlock(&db->mu);
}

int lsm_db_get_raw(lsm_db *db, const lsm_snapshot *snap, bool fill_cache, lsm_slice ukey,
                   unsigned *ret_type, void **ret_raw, size_t *ret_len)
{
	uint8_t stackbuf[256], *lk = stackbuf;
	lsm_slice value;
	unsigned type;
	lsm_super *sv;
	uint64_t seq;
	int r = 0;

	if (ukey.len + 8 > sizeof(stackbuf) && !(lk = malloc(ukey.len + 8)))
		return -ENOMEM;
	sv = lsm_db_super_get(db);
	seq = snap ? snap->seq : atomic_load(&db->last_seq);
	lsm_slice lookup = lsm_slice_make(lk, lsm_ikey_encode(lk, ukey, seq, LSM_TYPE_SEEK));

	int found = lsm_memtable_get(sv->mem, ukey, seq, &type, &value);
	for (int i = 0; !found && i < sv->nimm; i++)
		found = lsm_memtable_get(sv->imm[i], ukey, seq, &type, &value);
	if (found) {
		r = 0;
		if (type != LSM_TYPE_DELETE) {
			void *v = malloc(value.len ? value.len : 1);
			if (!v) {
				r = -ENOMEM;
			} else {
				if (value.len)
					memcpy(v, value.data, value.len);
				*ret_raw = v;
				*ret_len = value.len;
				*ret_type = type;
				r = 1;
			}
		}
	} else {
		void *v;
		size_t len;
		lsm_file_meta *seek_file;
		int seek_level;
		r = lsm_version_get(sv->version, db->tables, lookup, fill_cache, &type, &v, &len, &seek_file,
		                    &seek_level);
		if (seek_file)
			note_seek_file(db, sv->version, seek_file, seek_level);
		if (r == 1 && type == LSM_TYPE_DELETE) {
			r = 0;
		} else if (r == 1) {
			*ret_raw = v;
			*ret_len = len;
			*ret_type = type;
		}
	}
	lsm_db_super_unref(db, sv, false);
	if (lk != stackbuf)
		free(lk);
	return r;
}

int lsm_get(lsm_db *db, const lsm_read_options *ro, const void *key, size_t klen,
            void **ret_val, size_t *ret_len)
{
	lsm_slice ukey = lsm_slice_make(key, klen);
	unsigned type;
	void *raw;
	size_t len;
	int r;

	if (!db || !ret_val || !ret_len || klen > LSM_MAX_KEY)
		return -EINVAL;
	for (int attempt = 0;; attempt++) {
		uint64_t gen = atomic_load(&db->gc_removed_gen);
		r = lsm_db_get_raw(db, ro ? ro->snapshot : NULL, !ro || ro->fill_cache, ukey, &type, &raw, &len);
		if (r <= 0)
			return r < 0 ? r : -ENOENT;
		if (type == LSM_TYPE_VALUE) {
			*ret_val = raw;
			*ret_len = len;
			return 0;
		}
		r = lsm_blob_resolve(db, lsm_slice_make(raw, len), ret_val, ret_len);
		free(raw);
		/* A segment collected between reading the pointer and the value:
		 * the key has been re-pointed, so look again. */
		if (r < 0 && attempt < 3 && atomic_load(&db->gc_removed_gen) != gen)
			continue;
		return r;
	}
}

int lsm_snapshot_new(lsm_db *db, const lsm_snapshot **ret_snap)
{
	lsm_snapshot *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&db->mu);
	s->seq = atomic_load(&db->last_seq);
	s->next = &db->snapshots;
	s->prev = db->snapshots.prev;
	s->prev->next = s;
	db->snapshots.prev = s;
	pthread_mutex_unlock(&db->mu);
	*ret_snap = s;
	return 0;
}

void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap)
{
	lsm_snapshot *s = (lsm_snapshot *)snap;

	if (!s)
		return;
	pthread_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	pthread_mutex_unlock(&db->mu);
	free(s);
}

struct lsm_iter {
	lsm_db *db;
	lsm_iiter *it;
	lsm_super *sv;
	lsm_snapshot snap;          /* its sequence, in the snapshot list: GC keeps the
	                               value-log segments it may read */
	void *blob;                 /* the last value read from the value log */
};

/* Read sampling: scans charge the tables they read past as lookups do. */
static void iter_sample(void *arg, lsm_slice ikey)
{
	struct lsm_iter *pub = arg;
	int level;
	lsm_file_meta *f = lsm_version_record_sample(pub->sv->version, ikey, &level);

	if (f)
		note_seek_file(pub->db, pub->sv->version, f, level);
}

static void iter_cleanup(void *arg)
{
	struct lsm_iter *pub = arg;
	lsm_db *db = pub->db;

	pthread_mutex_lock(&db->mu);
	lsm_db_super_unref(db, pub->sv, true);
	pub->snap.prev->next = pub->snap.next;
	pub->snap.next->prev = pub->snap.prev;
	db->open_iters--;
	lsm_db_delete_obsolete(db);
	pthread_mutex_unlock(&db->mu);
}

int lsm_iter_new(lsm_db *db, const lsm_read_options *ro, lsm_iter **ret_iter)
{
	lsm_iter *pub = calloc(1, sizeof(*pub));
	lsm_iiter **its = NULL, *merged = NULL;
	bool fill = !ro || ro->fill_cache;
	uint64_t seq;
	int n = 0, r;

	if (!pub)
		return -ENOMEM;
	pub->db = db;
	pthread_mutex_lock(&db->mu);
	pub->sv = db->super;
	atomic_fetch_add(&pub->sv->refs, 1);
	db->open_iters++;
	seq = ro && ro->snapshot ? ro->snapshot->seq : atomic_load(&db->last_seq);
	/* Kept in sequence order: iterators may read at an old snapshot. */
	pub->snap.seq = seq;
	lsm_snapshot *at = db->snapshots.next;
	while (at != &db->snapshots && at->seq <= seq)
		at = at->next;
	pub->snap.next = at;
	pub->snap.prev = at->prev;
	at->prev->next = &pub->snap;
	at->prev = &pub->snap;
	pthread_mutex_unlock(&db->mu);

	lsm_super *sv = pub->sv;
	its = calloc((size_t)(1 + sv->nimm + sv->version->files[0].n + LSM_MAX_LEVELS), sizeof(*its));
	r = its ? lsm_memtable_iter_new(sv->mem, &its[n]) : -ENOMEM;
	if (r == 0)
		n++;
	for (int i = 0; r == 0 && i < sv->nimm; i++) {
		r = lsm_memtable_iter_new(sv->imm[i], &its[n]);
		if (r == 0)
			n++;
	}
	if (r == 0)
		r = lsm_version_add_iters(sv->version, db->tables, fill, its, &n);
	if (r == 0) {
		r = lsm_merge_iter_new(its, n, lsm_ikey_cmp, &merged);
		n = 0;   /* owned by the merge now, even on failure */
	}
	if (r < 0) {
		for (int i = 0; i < n; i++)
			iiter_destroy(its[i]);
		free(its);
		iter_cleanup(pub);
		free(pub);
		return r;
	}
	free(its);
	/* On failure this destroys merged and runs iter_cleanup itself. */
	r = lsm_db_iter_new(merged, seq, iter_cleanup, pub, &pub->it);
	if (r < 0) {
		free(pub);
		return r;
	}
	lsm_db_iter_set_sampler(pub->it, iter_sample, pub, atomic_fetch_add(&db->iter_seed, 1));
	*ret_iter = pub;
	return 0;
}

void lsm_iter_free(lsm_iter *it)
{
	if (!it)
		return;
	iiter_destroy(it->it);
	free(it->blob);
	free(it);
}

void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen) { iiter_seek(it->it, lsm_slice_make(key, klen)); }
void lsm_iter_seek_to_first(lsm_iter *it) { iiter_seek_to_first(it->it); }
void lsm_iter_seek_to_last(lsm_iter *it) { iiter_seek_to_last(it->it); }
void lsm_iter_next(lsm_iter *it) { iiter_next(it->it); }
void lsm_iter_prev(lsm_iter *it) { iiter_prev(it->it); }
int lsm_iter_valid(const lsm_iter *it) { return iiter_valid(it->it); }
int lsm_iter_status(const lsm_iter *it) { return iiter_status(it->it); }

const void *lsm_iter_key(const lsm_iter *it, size_t *ret_len)
{
	lsm_slice k = iiter_key(it->it);
	*ret_len = k.len;
	return k.data;
}

int lsm_iter_value(lsm_iter *it, const void **ret_val, size_t *ret_len)
{
	lsm_slice v = iiter_value(it->it);

	if (lsm_db_iter_value_type(it->it) == LSM_TYPE_VPTR) {
		void *val;
		size_t len;
		int r = lsm_blob_resolve(it->db, v, &val, &len);
		if (r < 0)
			return r;
		free(it->blob);
		it->blob = val;
		v = lsm_slice_make(val, len);
	}
	*ret_val = v.data;
	*ret_len = v.len;
	return 0;
}
