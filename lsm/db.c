/*
 * db.c - the lsm_db handle: options, the write path (group commit into the
 * WAL, then the memtable), background flush and compaction threads, and the
 * version bookkeeping they share.  Open and recovery are in db_open.c, the
 * read path (gets, snapshots, iterators) in db_read.c.
 *
 * Write path.  Writers queue on db->mu; the writer at the head (the leader)
 * gathers the batches queued behind it into one, appends that as one WAL
 * record (and fsyncs once if any of them asked for sync), inserts it into the
 * memtable with mu released, then publishes the new last sequence and wakes
 * the writers it carried.  Only the leader touches the memtable, which is the
 * one-writer rule the skiplist needs; readers never wait for it.
 *
 * A full memtable becomes immutable and gets a new WAL; the old WAL is synced
 * first, so a synced write in the new WAL never survives a crash that an
 * earlier write in the old one did not (recovery yields a prefix).
 */
#include "db_int.h"

#include "../vlog/vlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP_MAX_BYTES (1u << 20)
#define MANIFEST_ROLL_BYTES (4u << 20)

uint64_t lsm_now_micros(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lsm_options_init(lsm_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->create_if_missing = 1;
	opt->write_buffer_size = 4u << 20;
	opt->max_immutable_memtables = 2;
	opt->block_size = 4096;
	opt->block_restart_interval = 16;
	opt->bloom_bits_per_key = 10;
	opt->compression = LSM_COMPRESS_LZ4;
	opt->block_cache_size = 8u << 20;
	opt->max_open_files = 1000;
	opt->target_file_size = 2u << 20;
	/* Level 0 compacts in batches of 8 memtables, and level 1 holds about
	 * one such batch (8 x 4 MiB): see lsm.h for why both. */
	opt->max_bytes_for_level_base = 32u << 20;
	opt->level_size_ratio = 10;
	opt->l0_compaction_trigger = 8;
	opt->l0_slowdown_trigger = 16;
	opt->l0_stop_trigger = 24;
	opt->background_threads = 2;
	opt->value_threshold = 4096;
	opt->wal_inline_max = 0;
	opt->vlog_segment_size = 64u << 20;
}

void lsm_read_options_init(lsm_read_options *ro)
{
	ro->snapshot = NULL;
	ro->fill_cache = 1;
}

void lsm_write_options_init(lsm_write_options *wo)
{
	wo->sync = 0;
}

/* Clamps options to workable values, so a zeroed field means "default". */
void lsm_db_sanitize_options(lsm_options *o)
{
	lsm_options d;
	lsm_options_init(&d);
	if (o->write_buffer_size < 4096) o->write_buffer_size = d.write_buffer_size;
	if (o->max_immutable_memtables < 1) o->max_immutable_memtables = 1;
	if (o->max_immutable_memtables > LSM_MAX_IMM) o->max_immutable_memtables = LSM_MAX_IMM;
	if (o->block_size < 256) o->block_size = d.block_size;
	if (o->block_restart_interval < 1) o->block_restart_interval = d.block_restart_interval;
	if (o->bloom_bits_per_key < 0) o->bloom_bits_per_key = 0;
	if (o->max_open_files < 16) o->max_open_files = 16;
	if (o->target_file_size < 4096) o->target_file_size = d.target_file_size;
	if (o->max_bytes_for_level_base < 4096) o->max_bytes_for_level_base = d.max_bytes_for_level_base;
	if (o->level_size_ratio < 2) o->level_size_ratio = d.level_size_ratio;
	if (o->l0_compaction_trigger < 1) o->l0_compaction_trigger = d.l0_compaction_trigger;
	if (o->l0_slowdown_trigger < o->l0_compaction_trigger) o->l0_slowdown_trigger = o->l0_compaction_trigger;
	if (o->l0_stop_trigger < o->l0_slowdown_trigger) o->l0_stop_trigger = o->l0_slowdown_trigger;
	if (o->background_threads < 1) o->background_threads = 1;
	if (o->background_threads > 8) o->background_threads = 8;
	if (o->vlog_segment_size < 4096) o->vlog_segment_size = d.vlog_segment_size;
}

/* ---- versions, pending outputs, obsolete files ------------------------- */

void lsm_version_ref(lsm_version *v)
{
	v->refs++;
}

void lsm_version_unref(lsm_db *db, lsm_version *v)
{
	if (--v->refs > 0)
		return;
	v->prev->next = v->next;
	v->next->prev = v->prev;
	lsm_version_free(v, &db->obsolete, &db->nobsolete, &db->cap_obsolete);
}

uint64_t lsm_db_new_file_number(lsm_db *db)
{
	return atomic_fetch_add(&db->next_file, 1);
}

void lsm_db_pending_add(lsm_db *db, uint64_t number)
{
	if (db->npending == db->cap_pending) {
		int cap = db->cap_pending ? db->cap_pending * 2 : 16;
		uint64_t *p = realloc(db->pending_outputs, (size_t)cap * sizeof(*p));
		if (!p)
			return;   /* only protects against the open-time sweep, which cannot run now */
		db->pending_outputs = p;
		db->cap_pending = cap;
	}
	db->pending_outputs[db->npending++] = number;
}

void lsm_db_pending_remove(lsm_db *db, uint64_t number)
{
	for (int i = 0; i < db->npending; i++)
		if (db->pending_outputs[i] == number) {
			db->pending_outputs[i] = db->pending_outputs[--db->npending];
			return;
		}
}

void lsm_db_obsolete_add(lsm_db *db, uint64_t number)
{
	if (db->nobsolete == db->cap_obsolete) {
		int cap = db->cap_obsolete ? db->cap_obsolete * 2 : 16;
		uint64_t *p = realloc(db->obsolete, (size_t)cap * sizeof(*p));
		if (!p)
			return;   /* left for the sweep at the next open */
		db->obsolete = p;
		db->cap_obsolete = cap;
	}
	db->obsolete[db->nobsolete++] = number;
}

/* Deletes the tables no version needs any more.  REQUIRES: mu, which is
 * dropped around the unlinks. */
void lsm_db_delete_obsolete(lsm_db *db)
{
	uint64_t *list = db->obsolete;
	int n = db->nobsolete;
	char path[PATH_MAX];

	if (n == 0)
		return;
	db->obsolete = NULL;
	db->nobsolete = db->cap_obsolete = 0;
	db->deleting++;
	pthread_mutex_unlock(&db->mu);
	for (int i = 0; i < n; i++) {
		lsm_table_cache_evict(db->tables, list[i]);
		lsm_filename(path, sizeof(path), db->dir, LSM_FILE_SST, list[i]);
		env_unlink(db->env, path);
	}
	free(list);
	pthread_mutex_lock(&db->mu);
	db->deleting--;
	pthread_cond_broadcast(&db->idle_cv);
}

uint64_t lsm_db_oldest_snapshot(lsm_db *db)
{
	if (db->snapshots.next != &db->snapshots)
		return db->snapshots.next->seq;
	return atomic_load(&db->last_seq);
}

/* ---- super versions: what readers reference ---------------------------- */

void lsm_db_super_unref(lsm_db *db, lsm_super *sv, bool locked)
{
	if (!sv || atomic_fetch_sub(&sv->refs, 1) != 1)
		return;
	lsm_memtable_unref(sv->mem);
	for (int i = 0; i < sv->nimm; i++)
		lsm_memtable_unref(sv->imm[i]);
	if (locked) {
		lsm_version_unref(db, sv->version);
	} else {
		/* A reader held the last reference to a replaced version: the
		 * tables only it needed go now, not at the next compaction. */
		pthread_mutex_lock(&db->mu);
		lsm_version_unref(db, sv->version);
		lsm_db_delete_obsolete(db);
		pthread_mutex_unlock(&db->mu);
	}
	free(sv);
}

/* Publishes the current memtables and version to readers.  REQUIRES: mu.
 * The super is preallocated with room for LSM_MAX_IMM, so this cannot fail
 * after a state change has been made. */
void lsm_db_install_super(lsm_db *db, lsm_super *sv)
{
	atomic_init(&sv->refs, 1);
	sv->mem = db->mem;
	lsm_memtable_ref(sv->mem);
	sv->nimm = db->nimm;
	sv->imm = (lsm_memtable **)(sv + 1);
	for (int i = 0; i < db->nimm; i++) {
		sv->imm[i] = db->imm[db->nimm - 1 - i].mem;
		lsm_memtable_ref(sv->imm[i]);
	}
	sv->version = db->current;
	lsm_version_ref(sv->version);
	lsm_super *old = db->super;
	db->super = sv;
	lsm_db_super_unref(db, old, true);
}

lsm_super *lsm_db_super_alloc(void)
{
	return malloc(sizeof(lsm_super) + LSM_MAX_IMM * sizeof(lsm_memtable *));
}

lsm_super *lsm_db_super_get(lsm_db *db)
{
	pthread_mutex_lock(&db->mu);
	lsm_super *sv = db->super;
	atomic_fetch_add(&sv->refs, 1);
	pthread_mutex_unlock(&db->mu);
	return sv;
}

/* ---- version changes --------------------------------------------------- */

static void set_bg_error(lsm_db *db, int err)
{
	if (db->bg_error == 0 && err < 0)
		db->bg_error = err;
	pthread_cond_broadcast(&db->idle_cv);
	pthread_cond_broadcast(&db->bg_cv);
}

/* Starts a fresh manifest holding v, for when the current one has grown. */
static int roll_manifest(lsm_db *db, const lsm_version *v, uint64_t log_number, uint64_t next_file,
                         uint64_t last_seq, uint64_t number)
{
	lsm_log_writer *w;
	char path[PATH_MAX];
	int r = lsm_manifest_create(db->env, db->dir, number, v, log_number, next_file, last_seq,
	                            &db->garbage_snapshot, &w);

	if (r < 0)
		return r;
	lsm_log_writer_close(db->manifest);
	lsm_filename(path, sizeof(path), db->dir, LSM_FILE_MANIFEST, db->manifest_number);
	env_unlink(db->env, path);
	db->manifest = w;
	db->manifest_number = number;
	return 0;
}

int lsm_db_log_and_apply(lsm_db *db, lsm_version_edit *e)
{
	lsm_version *nv;
	lsm_super *sv;
	int r;

	while (db->manifest_busy)
		pthread_cond_wait(&db->idle_cv, &db->mu);
	if (db->bg_error)
		return db->bg_error;
	sv = lsm_db_super_alloc();
	if (!sv)
		return -ENOMEM;
	db->manifest_busy = true;
	if (!e->has_log_number) {
		e->has_log_number = true;
		e->log_number = db->log_number;
	}
	e->has_next_file = true;
	e->has_last_seq = true;
	r = lsm_version_apply(db->current, e, &db->opt, &nv);
	if (r < 0) {
		db->manifest_busy = false;
		free(sv);
		return r;
	}
	/* The next file number is reserved before the manifest is written, so a
	 * roll can take one without racing other allocations. */
	uint64_t roll_number = 0;
	bool roll = lsm_log_writer_size(db->manifest) > MANIFEST_ROLL_BYTES;
	if (roll) {
		roll_number = lsm_db_new_file_number(db);
		/* The new manifest starts from the totals as they will be after
		 * this edit: a copy, since mu is dropped while it is written. */
		free(db->garbage_snapshot.v);
		db->garbage_snapshot = (lsm_garbage_list){ 0 };
		for (int i = 0; i < db->garbage.n; i++)
			lsm_garbage_add(&db->garbage_snapshot, db->garbage.v[i].segment, db->garbage.v[i].bytes);
		for (int i = 0; i < e->garbage.n; i++)
			lsm_garbage_add(&db->garbage_snapshot, e->garbage.v[i].segment, e->garbage.v[i].bytes);
		for (int i = 0; i < e->vlog_removed.n; i++)
			lsm_garbage_remove(&db->garbage_snapshot, e->vlog_removed.v[i].segment);
	}
	e->next_file = db->next_file;
	e->last_seq = atomic_load(&db->last_seq);
	pthread_mutex_unlock(&db->mu);
	/* New tables must be durable names before the manifest points at them:
	 * their data was synced by the builder, their directory entries not. */
	r = e->nadded ? env_sync_dir(db->env, db->dir) : 0;
	if (r < 0)
		r = lsm_errf(r, "%s: directory sync failed", db->dir);
	else if (roll)
		r = roll_manifest(db, nv, e->log_number, e->next_file, e->last_seq, roll_number);
	else
		r = lsm_manifest_append(db->manifest, e);
	pthread_mutex_lock(&db->mu);
	db->manifest_busy = false;
	pthread_cond_broadcast(&db->idle_cv);
	if (r < 0) {
		/* The edit's files must outlive this failed version: pin them
		 * across the free, which leaves each count as it was before. */
		for (int i = 0; i < e->nadded; i++)
			e->added[i].meta->refs++;
		lsm_version_free(nv, NULL, NULL, NULL);
		for (int i = 0; i < e->nadded; i++)
			e->added[i].meta->refs--;
		free(sv);
		set_bg_error(db, lsm_errf(r, "MANIFEST write failed; the store is read-only until reopened"));
		return r;
	}
	e->applied = true;
	for (int i = 0; i < e->garbage.n; i++)
		lsm_garbage_add(&db->garbage, e->garbage.v[i].segment, e->garbage.v[i].bytes);
	for (int i = 0; i < e->vlog_removed.n; i++)
		lsm_garbage_remove(&db->garbage, e->vlog_removed.v[i].segment);
	nv->refs = 1;
	nv->next = &db->versions;
	nv->prev = db->versions.prev;
	nv->prev->next = nv;
	db->versions.prev = nv;
	lsm_version *old = db->current;
	db->current = nv;
	db->log_number = e->log_number;
	lsm_db_install_super(db, sv);
	lsm_version_unref(db, old);
	return 0;
}

/* ---- background work --------------------------------------------------- */

/* Where a flushed table goes: level 0, or (as LevelDB does) as deep as
 * level 2 when nothing there or above overlaps it and it would not overlap
 * too much of the level below: sequential loads then skip the level-0
 * merge entirely.  Only while no compaction touches levels 0-2, whose
 * outputs could otherwise cover the gap the table falls into.
 * REQUIRES: mu. */
static int flush_level(lsm_db *db, const lsm_file_meta *f)
{
	lsm_slice lo = lsm_ikey_user(meta_smallest(f)), hi = lsm_ikey_user(meta_largest(f));
	lsm_file_list overlap = { 0 };
	int level = 0;

	if (db->busy_levels[0] || db->busy_levels[1] || db->busy_levels[2] || db->busy_levels[3])
		return 0;
	if (lsm_version_overlapping(db->current, 0, &lo, &hi, &overlap) < 0 || overlap.n > 0)
		goto out;
	while (level < 2) {
		overlap.n = 0;
		if (lsm_version_overlapping(db->current, level + 1, &lo, &hi, &overlap) < 0 || overlap.n > 0)
			break;
		overlap.n = 0;
		if (lsm_version_overlapping(db->current, level + 2, &lo, &hi, &overlap) < 0)
			break;
		uint64_t bytes = 0;
		for (int i = 0; i < overlap.n; i++)
			bytes += overlap.v[i]->size;
		if (bytes > 10 * (uint64_t)db->opt.target_file_size)
			break;
		level++;
	}
out:
	lsm_file_list_done(&overlap);
	return level;
}

/* Flushes the oldest immutable memtable.  REQUIRES: mu, nimm > 0. */
static void flush_one(lsm_db *db)
{
	lsm_imm imm = db->imm[0];
	lsm_version_edit edit;
	char path[PATH_MAX];
	int r;

	db->flush_running = true;
	pthread_mutex_unlock(&db->mu);
	lsm_edit_init(&edit);
	if (db->vlog) {
		/* The table may point at values the flush itself writes to the
		 * value log (those the WAL kept inline): until it is installed,
		 * GC would judge them garbage, so it leaves alone the segment
		 * active now and every newer one (all of them if none is). */
		uint64_t active = vlog_active_segment(db->vlog);
		pthread_mutex_lock(&db->mu);
		db->flush_vlog_floor = active ? active : 1;
		pthread_mutex_unlock(&db->mu);
	}
	r = lsm_build_level0(db, imm.mem, &edit, 0);
	/* The table may hold pointers whose values only the WAL's replay
	 * would otherwise vouch for: make them durable before the WAL retires. */
	if (r == 0)
		r = lsm_blob_sync(db);
	pthread_mutex_lock(&db->mu);
	bool pushed = false;
	if (r == 0) {
		if (edit.nadded == 1)
			edit.added[0].level = flush_level(db, edit.added[0].meta);
		if (edit.nadded == 1 && edit.added[0].level > 0) {
			/* The choice holds only while no compaction touches levels
			 * 0-3 before the table is installed: log_and_apply drops mu,
			 * so fence those levels off until then. */
			pushed = true;
			for (int l = 0; l <= 3; l++)
				db->busy_levels[l] = true;
		}
		edit.has_log_number = true;
		edit.log_number = db->nimm > 1 ? db->imm[1].log_number : db->mem_log_number;
		r = lsm_db_log_and_apply(db, &edit);
		if (pushed)
			for (int l = 0; l <= 3; l++)
				db->busy_levels[l] = false;
	}
	db->flush_vlog_floor = 0;
	/* On failure the table stays on disk: the manifest record naming it may
	 * have been written; the next open's sweep decides. */
	for (int i = 0; i < edit.nadded; i++)
		lsm_db_pending_remove(db, edit.added[i].meta->number);
	lsm_edit_done(&edit);
	if (r == 0) {
		lsm_super *sv = lsm_db_super_alloc();
		memmove(db->imm, db->imm + 1, (size_t)(db->nimm - 1) * sizeof(*db->imm));
		db->nimm--;
		if (sv)
			lsm_db_install_super(db, sv);
		else
			set_bg_error(db, -ENOMEM);
		lsm_memtable_unref(imm.mem);
		atomic_fetch_add(&db->st_flushes, 1);
		lsm_filename(path, sizeof(path), db->dir, LSM_FILE_WAL, imm.log_number);
		pthread_mutex_unlock(&db->mu);
		env_unlink(db->env, path);
		pthread_mutex_lock(&db->mu);
	} else {
		set_bg_error(db, r);
	}
	db->flush_running = false;
	lsm_db_delete_obsolete(db);
	pthread_cond_broadcast(&db->idle_cv);
	pthread_cond_broadcast(&db->bg_cv);
}

void *lsm_flush_thread(void *arg)
{
	lsm_db *db = arg;

	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		if (db->nimm == 0 || db->bg_error) {
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		flush_one(db);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

void *lsm_compaction_thread(void *arg)
{
	lsm_db *db = arg;

	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		lsm_compaction *c = db->bg_error ? NULL : lsm_compaction_pick(db);
		if (!c) {
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		pthread_mutex_unlock(&db->mu);
		int r = lsm_compaction_run(db, c);
		pthread_mutex_lock(&db->mu);
		if (r < 0)
			set_bg_error(db, r);
		lsm_db_delete_obsolete(db);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* ---- the write path ---------------------------------------------------- */

/* Syncs the WAL, after the value log: a durable WAL record must never
 * point at a value that is not. */
static int sync_wal(lsm_db *db, lsm_log_writer *wal)
{
	int r = lsm_blob_sync(db);
	if (r == 0)
		r = lsm_log_writer_sync(wal);
	atomic_fetch_add(&db->st_wal_syncs, 1);
	return r;
}

/* Creates a new WAL file and makes its creation durable. */
int lsm_db_new_wal(lsm_db *db, uint64_t number, lsm_log_writer **ret)
{
	char path[PATH_MAX];
	int r;

	lsm_log_writer *w;

	lsm_filename(path, sizeof(path), db->dir, LSM_FILE_WAL, number);
	r = lsm_log_writer_open(db->env, path, LSM_LOG_KIND_WAL, &w);
	if (r < 0)
		return r;
	r = env_sync_dir(db->env, db->dir);
	if (r < 0) {
		lsm_log_writer_close(w);
		env_unlink(db->env, path);
		return lsm_errf(r, "%s: directory sync failed", db->dir);
	}
	*ret = w;
	return 0;
}

/* Makes room in the memtable, switching to a new one if it is full (or if
 * force and it holds anything).  REQUIRES: mu, caller is the write leader. */
static int make_room(lsm_db *db, bool force)
{
	bool allow_delay = !force;

	for (;;) {
		if (db->bg_error)
			return -EROFS;
		if (db->shutting_down)
			return -ECANCELED;   /* the flush thread is gone: nothing would make room */
		int l0 = db->current->files[0].n;
		if (allow_delay && l0 >= db->opt.l0_slowdown_trigger) {
			/* Spread the wait over many writes instead of one long stop. */
			uint64_t t = lsm_now_micros();
			pthread_mutex_unlock(&db->mu);
			usleep(1000);
			pthread_mutex_lock(&db->mu);
			atomic_fetch_add(&db->st_stall_micros, lsm_now_micros() - t);
			allow_delay = false;
			continue;
		}
		/* A memtable of pointers is small, but the values behind it count
		 * too: garbage is only found by flushes and compactions, and replay
		 * reads every value the WAL points at. */
		if (!force && lsm_memtable_usage(db->mem) < db->opt.write_buffer_size &&
		    atomic_load(&db->mem_vlog_bytes) < 16 * (uint64_t)db->opt.write_buffer_size)
			return 0;
		if (force && lsm_memtable_entries(db->mem) == 0)
			return 0;
		if (db->nimm >= db->opt.max_immutable_memtables || l0 >= db->opt.l0_stop_trigger) {
			uint64_t t = lsm_now_micros();
			pthread_cond_wait(&db->idle_cv, &db->mu);
			atomic_fetch_add(&db->st_stall_micros, lsm_now_micros() - t);
			continue;
		}
		lsm_memtable *mem;
		lsm_log_writer *wal;
		lsm_super *sv = lsm_db_super_alloc();
		uint64_t number = lsm_db_new_file_number(db);
		int r = sv ? lsm_memtable_new(&mem) : -ENOMEM;
		if (r == 0) {
			r = lsm_db_new_wal(db, number, &wal);
			if (r < 0)
				lsm_memtable_unref(mem);
		}
		if (r == 0) {
			r = sync_wal(db, db->wal);
			if (r < 0) {
				lsm_log_writer_close(wal);
				lsm_memtable_unref(mem);
				set_bg_error(db, lsm_errf(r, "WAL sync failed"));
			}
		}
		if (r < 0) {
			free(sv);
			return r;
		}
		lsm_log_writer_close(db->wal);
		db->wal = wal;
		db->imm[db->nimm].mem = db->mem;
		db->imm[db->nimm].log_number = db->mem_log_number;
		db->nimm++;
		db->mem = mem;
		db->mem_log_number = number;
		atomic_store(&db->mem_vlog_bytes, 0);
		lsm_db_install_super(db, sv);
		pthread_cond_broadcast(&db->bg_cv);
		force = false;
	}
}

/* Builds the group the leader commits: its own batch plus queued ones, up
 * to a size bound, never putting a sync write behind a non-sync leader. */
static lsm_batch *build_group(lsm_db *db, lsm_writer **ret_last)
{
	lsm_writer *first = db->writers_head, *w;
	lsm_batch *result = first->batch;
	size_t max = GROUP_MAX_BYTES;

	*ret_last = first;
	if (first->batch->len <= (128u << 10))
		max = first->batch->len + (128u << 10);
	for (w = first->next; w; w = w->next) {
		if (!w->batch || w->gc_olds || first->gc_olds || (w->sync && !first->sync))
			break;
		if (result->len + w->batch->len - LSM_BATCH_HEADER > max)
			break;
		if (result == first->batch) {
			lsm_batch *g = db->group_batch;
			g->len = LSM_BATCH_HEADER;
			put_fixed32(g->rep + 8, 0);
			g->user_bytes = 0;
			g->max_vlen = 0;
			if (lsm_batch_append(g, first->batch) < 0)
				break;
			result = g;
		}
		if (lsm_batch_append(result, w->batch) < 0)
			break;
		*ret_last = w;
	}
	return result;
}

/* Commits batch; with batch NULL, either forces a memtable switch (force)
 * or only syncs the WAL. */
static int write_internal(lsm_db *db, const lsm_write_options *wo, lsm_batch *batch, bool force,
                          lsm_slice *gc_olds)
{
	lsm_writer w = { .batch = batch, .sync = wo && wo->sync, .gc_olds = gc_olds };
	lsm_writer *last, *p;
	int r;

	pthread_cond_init(&w.cv, NULL);
	pthread_mutex_lock(&db->mu);
	if (db->writers_tail)
		db->writers_tail->next = &w;
	else
		db->writers_head = &w;
	db->writers_tail = &w;
	while (!w.done && db->writers_head != &w)
		pthread_cond_wait(&w.cv, &db->mu);
	if (w.done) {
		pthread_mutex_unlock(&db->mu);
		pthread_cond_destroy(&w.cv);
		return w.status;
	}

	r = make_room(db, force);
	last = &w;
	if (r == 0 && batch) {
		lsm_batch *group = build_group(db, &last);
		uint64_t seq = atomic_load(&db->last_seq) + 1;
		bool sync = w.sync;

		lsm_batch_set_seq(group, seq);
		pthread_mutex_unlock(&db->mu);
		lsm_batch *rec = group;
		if (w.gc_olds) {
			/* As the only writer, the check and the write are atomic. */
			rec = db->blob_batch;
			r = lsm_gc_filter(db, group, w.gc_olds, rec);
		} else if (db->vlog && db->opt.value_threshold && group->max_vlen >= db->opt.value_threshold &&
		           group->len > db->opt.wal_inline_max) {
			/* (A smaller group keeps its values in the WAL: the flush
			 * moves them to the value log.) */
			rec = db->blob_batch;
			r = lsm_blob_separate(db, group, rec);
		}
		uint32_t count = get_fixed32(rec->rep + 8);
		if (r == 0 && count == 0)
			goto committed;
		if (r == 0)
			r = lsm_log_writer_add(db->wal, rec->rep, rec->len);
		if (r == 0 && sync)
			r = sync_wal(db, db->wal);
		if (r == 0)
			r = lsm_batch_insert(rec->rep, rec->len, db->mem);
	committed:
		pthread_mutex_lock(&db->mu);
		if (r == 0 && count == 0) {
			/* nothing left to write (a GC batch whose keys all moved on) */
		} else if (r == 0) {
			atomic_store(&db->last_seq, seq + count - 1);
			atomic_store(&db->last_write_micros, lsm_now_micros());
			atomic_fetch_add(&db->st_user_bytes, group->user_bytes);
			atomic_fetch_add(&db->st_wal_bytes, rec->len);
		} else {
			/* The WAL may hold a torn record now: nothing more may be
			 * appended behind it, and nothing after it acknowledged. */
			set_bg_error(db, lsm_errf(r, "WAL append failed; the store is read-only until reopened"));
		}
	} else if (r == 0 && !force && w.sync) {
		lsm_log_writer *wal = db->wal;
		pthread_mutex_unlock(&db->mu);
		r = sync_wal(db, wal);
		pthread_mutex_lock(&db->mu);
		if (r < 0)
			set_bg_error(db, lsm_errf(r, "WAL sync failed; the store is read-only until reopened"));
	}

	for (;;) {
		p = db->writers_head;
		db->writers_head = p->next;
		if (!db->writers_head)
			db->writers_tail = NULL;
		if (p != &w) {
			p->status = r;
			p->done = true;
			pthread_cond_signal(&p->cv);
		}
		if (p == last)
			break;
	}
	if (db->writers_head)
		pthread_cond_signal(&db->writers_head->cv);
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&w.cv);
	return r;
}

int lsm_db_write_barrier(lsm_db *db)
{
	/* An empty writer: it leads only once every writer queued before it
	 * has finished, and then writes nothing. */
	return write_internal(db, NULL, NULL, false, NULL);
}

int lsm_write(lsm_db *db, const lsm_write_options *wo, lsm_batch *batch)
{
	if (!db || !batch)
		return -EINVAL;
	if (get_fixed32(batch->rep + 8) == 0)
		return 0;
	return write_internal(db, wo, batch, false, NULL);
}

/* One put or delete, encoded as a one-record batch on the stack when small:
 * the common case costs no allocation. */
static int write_one(lsm_db *db, const lsm_write_options *wo, unsigned type,
                     const void *key, size_t klen, const void *val, size_t vlen)
{
	uint8_t stackbuf[512], *rep = stackbuf, *p;
	size_t need = LSM_BATCH_HEADER + 1 + VARINT32_MAX * 2 + klen + vlen;
	int r;

	if (!db || klen > LSM_MAX_KEY || (!key && klen))
		return lsm_errf(-EINVAL, "key of %zu bytes (limit %u)", klen, LSM_MAX_KEY);
	if (vlen > LSM_MAX_VALUE || (!val && vlen))
		return lsm_errf(-EINVAL, "value of %zu bytes (limit %u)", vlen, LSM_MAX_VALUE);
	if (need > sizeof(stackbuf) && !(rep = malloc(need)))
		return -ENOMEM;
	memset(rep, 0, LSM_BATCH_HEADER);
	put_fixed32(rep + 8, 1);
	p = rep + LSM_BATCH_HEADER;
	*p++ = (uint8_t)type;
	p = put_varint32(p, (uint32_t)klen);
	if (klen)
		memcpy(p, key, klen);
	p += klen;
	if (type == LSM_TYPE_VALUE) {
		p = put_varint32(p, (uint32_t)vlen);
		if (vlen)
			memcpy(p, val, vlen);
		p += vlen;
	}
	lsm_batch b = { .rep = rep, .len = (size_t)(p - rep), .cap = need, .user_bytes = klen + vlen,
	               .max_vlen = type == LSM_TYPE_VALUE ? vlen : 0 };
	r = write_internal(db, wo, &b, false, NULL);
	if (rep != stackbuf)
		free(rep);
	return r;
}

int lsm_put(lsm_db *db, const lsm_write_options *wo, const void *key, size_t klen, const void *val, size_t vlen)
{
	return write_one(db, wo, LSM_TYPE_VALUE, key, klen, val, vlen);
}

int lsm_delete(lsm_db *db, const lsm_write_options *wo, const void *key, size_t klen)
{
	return write_one(db, wo, LSM_TYPE_DELETE, key, klen, NULL, 0);
}

int lsm_sync(lsm_db *db)
{
	lsm_write_options wo = { .sync = 1 };

	/* Through the writer queue: the leader owns the WAL, and waiting in line
	 * orders this sync after every write acknowledged before it. */
	return write_internal(db, &wo, NULL, false, NULL);
}

/* ---- flush, compaction, idle ------------------------------------------- */

int lsm_flush(lsm_db *db)
{
	int r = write_internal(db, NULL, NULL, true, NULL);

	if (r < 0)
		return r;
	pthread_mutex_lock(&db->mu);
	while (!db->bg_error && !db->shutting_down && (db->nimm > 0 || db->flush_running))
		pthread_cond_wait(&db->idle_cv, &db->mu);
	r = db->bg_error;
	pthread_mutex_unlock(&db->mu);
	return r;
}

int lsm_compact_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen)
{
	lsm_slice b = lsm_slice_make(begin, blen), e = lsm_slice_make(end, elen);
	int r = lsm_flush(db), deepest = 0;

	if (r < 0)
		return r;
	pthread_mutex_lock(&db->mu);
	while (db->manual_compaction)
		pthread_cond_wait(&db->idle_cv, &db->mu);
	db->manual_compaction = true;
	while (db->running_compactions > 0)
		pthread_cond_wait(&db->idle_cv, &db->mu);
	for (int level = 1; level < LSM_MAX_LEVELS; level++)
		if (db->current->files[level].n)
			deepest = level;
	/* Down through the deepest level holding data, which is rewritten one
	 * level deeper too: otherwise versions and value-log pointers that only
	 * it holds would never be dropped. */
	for (int level = 0; r == 0 && level < LSM_MAX_LEVELS - 1 && level <= deepest; level++) {
		lsm_compaction *c = lsm_compaction_manual(db, level, begin ? &b : NULL, end ? &e : NULL);
		if (!c)
			continue;
		c->trivial_move = false;   /* a manual compaction rewrites, it does not just move */
		pthread_mutex_unlock(&db->mu);
		r = lsm_compaction_run(db, c);
		pthread_mutex_lock(&db->mu);
		lsm_db_delete_obsolete(db);
	}
	if (r < 0)
		set_bg_error(db, r);
	db->manual_compaction = false;
	pthread_cond_broadcast(&db->bg_cv);
	pthread_cond_broadcast(&db->idle_cv);
	pthread_mutex_unlock(&db->mu);
	return r;
}

int lsm_wait_idle(lsm_db *db)
{
	int r;

	pthread_mutex_lock(&db->mu);
	for (;;) {
		if (db->bg_error)
			break;
		if (db->nobsolete > 0) {
			lsm_db_delete_obsolete(db);
			continue;
		}
		/* Idle includes deletions: a caller counting files must see them gone. */
		bool busy = db->nimm > 0 || db->flush_running || db->running_compactions > 0 || db->deleting > 0 ||
		            db->gc_running;
		if (!busy) {
			lsm_compaction *c = lsm_compaction_pick(db);
			if (!c)
				break;
			/* Due but not yet started: run it here rather than wait. */
			pthread_mutex_unlock(&db->mu);
			r = lsm_compaction_run(db, c);
			pthread_mutex_lock(&db->mu);
			if (r < 0)
				set_bg_error(db, r);
			lsm_db_delete_obsolete(db);
			continue;
		}
		pthread_cond_wait(&db->idle_cv, &db->mu);
	}
	r = db->bg_error;
	pthread_mutex_unlock(&db->mu);
	return r;
}

int lsm_db_write_gc(lsm_db *db, lsm_batch *batch, lsm_slice *olds)
{
	lsm_write_options wo = { .sync = 1 };

	return write_internal(db, &wo, batch, false, olds);
}
