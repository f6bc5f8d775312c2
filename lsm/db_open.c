/*
 * db_open.c - opening a store (creating it, or recovering it from its
 * MANIFEST and WALs), closing it, and destroying it.
 *
 * Recovery: CURRENT names the manifest, which gives the live tables, the
 * oldest WAL still needed and the counters.  Every WAL from that number on is
 * replayed in order into memtables, which are written out as level-0 tables;
 * then a new WAL and a new manifest (holding the recovered state) are made
 * and CURRENT switched to it.  Only then are files that no version names
 * deleted: old WALs, old manifests, tables a crashed compaction left behind.
 */
#include "db_int.h"

#include "../vlog/vlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dir_entry {
	enum lsm_file_type type;
	uint64_t number;
	char name[64];
};

struct dir_listing {
	struct dir_entry *v;
	int n, cap;
};

static int collect_entry(void *arg, const char *name)
{
	struct dir_listing *l = arg;
	uint64_t number = 0;
	enum lsm_file_type type = lsm_parse_filename(name, &number);

	if (type == LSM_FILE_UNKNOWN || strlen(name) >= sizeof(l->v->name))
		return 0;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 32;
		struct dir_entry *v = realloc(l->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].type = type;
	l->v[l->n].number = number;
	strcpy(l->v[l->n].name, name);
	l->n++;
	return 0;
}

static int cmp_entry_number(const void *a, const void *b)
{
	const struct dir_entry *x = a, *y = b;
	return (x->number > y->number) - (x->number < y->number);
}

static int list_store(lsm_env *env, const char *dir, struct dir_listing *ret)
{
	memset(ret, 0, sizeof(*ret));
	int r = env_list_dir(env, dir, collect_entry, ret);
	if (r < 0) {
		free(ret->v);
		return lsm_errf(r, "%s: cannot list the store directory", dir);
	}
	if (ret->n > 1)
		qsort(ret->v, (size_t)ret->n, sizeof(*ret->v), cmp_entry_number);
	return 0;
}

struct replay {
	lsm_db *db;
	lsm_memtable *mem;
	lsm_version_edit *edit;
	uint64_t max_seq;
	uint64_t next_seq;      /* a record must start here or later: one past the last applied
	                           (0 before the first) */
	bool cut;               /* a group lost its values: nothing after it counts */
};

/* Writes the replay memtable out as a level-0 table and starts a new one. */
static int replay_flush(struct replay *rp)
{
	int r = lsm_build_level0(rp->db, rp->mem, rp->edit, 0);
	if (r < 0)
		return r;
	lsm_memtable_unref(rp->mem);
	rp->mem = NULL;
	return lsm_memtable_new(&rp->mem);
}

static int replay_wal(struct replay *rp, uint64_t number)
{
	lsm_db *db = rp->db;
	lsm_log_reader *rd;
	char path[PATH_MAX];
	lsm_slice rec;
	int r;

	lsm_filename(path, sizeof(path), db->dir, LSM_FILE_WAL, number);
	r = lsm_log_reader_open(db->env, path, LSM_LOG_KIND_WAL, db->opt.skip_corrupt_wal, &rd);
	if (r < 0) {
		/* A WAL created but never written (crash right after creating it,
		 * before its header was durable) holds nothing acknowledged. */
		uint64_t size = 0;
		lsm_file *f;
		if (r == -EUCLEAN && env_open(db->env, path, LSM_ENV_READ, &f) == 0) {
			env_size(db->env, f, &size);
			env_close(db->env, f);
			if (size < 16)
				return 0;
		}
		return r;
	}
	while ((r = lsm_log_reader_next(rd, &rec)) == 1) {
		unsigned long long off = (unsigned long long)lsm_log_reader_record_offset(rd);
		if (rec.len < LSM_BATCH_HEADER) {
			r = lsm_errf(-EUCLEAN, "%s: record at offset %llu: too short for a batch", path, off);
			break;
		}
		uint64_t seq = get_fixed64(rec.data);
		uint32_t count = get_fixed32(rec.data + 8);
		/* The writer hands out sequences in log order, each group after
		 * the last, so a record that does not start past the last one
		 * applied is a group logged twice or out of order: damage the
		 * checksum cannot see.  Applied, it would put entries with the
		 * same key and sequence into the memtable (whose skiplist cannot
		 * hold both) or let an older write shadow a newer one. */
		if (seq < rp->next_seq) {
			if (db->opt.skip_corrupt_wal) {
				db->rec_skipped++;
				continue;
			}
			r = lsm_errf(-EUCLEAN, "%s: record at offset %llu: sequence %llu does not follow the "
			             "last one replayed (%llu): a batch logged twice or out of order", path, off,
			             (unsigned long long)seq, (unsigned long long)(rp->next_seq - 1));
			break;
		}
		if (db->vlog) {
			/* A group whose value-log records did not survive was never
			 * synced, and so neither was any later group: stop here. */
			r = lsm_blob_verify_batch(db, rec);
			if (r < 0)
				break;
			if (r == 0) {
				rp->cut = true;
				db->rec_cut_wal = number;
				db->rec_cut_offset = off;
				break;
			}
		}
		r = lsm_batch_insert(rec.data, rec.len, rp->mem);
		if (r < 0) {
			r = lsm_errf(r, "%s: record at offset %llu: malformed batch", path, off);
			break;
		}
		if (count)
			rp->next_seq = seq + count;   /* no overflow: the batch parser checked LSM_MAX_SEQ */
		if (count && seq + count - 1 > rp->max_seq)
			rp->max_seq = seq + count - 1;
		if (lsm_memtable_usage(rp->mem) >= db->opt.write_buffer_size && (r = replay_flush(rp)) < 0)
			break;
	}
	db->rec_torn_bytes += lsm_log_reader_tail_dropped(rd);
	db->rec_skipped += lsm_log_reader_skipped(rd);
	lsm_log_reader_close(rd);
	return r < 0 ? r : 0;
}

/* Deletes what no version needs: run once at open, after the new manifest
 * is durable, so a crash in the middle of it loses nothing. */
static void sweep(lsm_db *db, const struct dir_listing *l)
{
	char path[PATH_MAX];

	for (int i = 0; i < l->n; i++) {
		const struct dir_entry *e = &l->v[i];
		bool del = false;
		switch (e->type) {
		case LSM_FILE_WAL:
			del = e->number < db->log_number;
			break;
		case LSM_FILE_MANIFEST:
			del = e->number != db->manifest_number;
			break;
		case LSM_FILE_TEMP:
			del = true;
			break;
		case LSM_FILE_SST:
			del = true;
			for (int level = 0; level < LSM_MAX_LEVELS && del; level++)
				for (int k = 0; k < db->current->files[level].n; k++)
					if (db->current->files[level].v[k]->number == e->number)
						del = false;
			break;
		default:
			break;
		}
		if (del) {
			snprintf(path, sizeof(path), "%s/%s", db->dir, e->name);
			env_unlink(db->env, path);
		}
	}
}

/* File numbers for new value-log segments.  Called from inside
 * vlog_append with the value log's lock held, so it must not take mu
 * (mu -> vlog lock is the order elsewhere): the counter is atomic. */
static uint64_t vlog_file_number(void *arg)
{
	return lsm_db_new_file_number(arg);
}

static int start_threads(lsm_db *db)
{
	int n = db->opt.background_threads + 1 + (db->vlog ? 1 : 0);
	db->threads = calloc((size_t)n, sizeof(pthread_t));
	if (!db->threads)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		void *(*fn)(void *) = i == 0 ? lsm_flush_thread
		                    : i <= db->opt.background_threads ? lsm_compaction_thread : lsm_gc_thread;
		int r = pthread_create(&db->threads[i], NULL, fn, db);
		if (r != 0)
			return -r;
		db->nthreads++;
	}
	return 0;
}

static int db_alloc(const char *dir, const lsm_options *opt, lsm_db **ret)
{
	lsm_db *db = calloc(1, sizeof(*db));

	if (!db)
		return -ENOMEM;
	*ret = db;
	if (opt)
		db->opt = *opt;
	else
		lsm_options_init(&db->opt);
	lsm_db_sanitize_options(&db->opt);
	db->env = db->opt.env ? db->opt.env : lsm_env_posix();
	db->dir = strdup(dir);
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->gc_mu, NULL);
	pthread_cond_init(&db->bg_cv, NULL);
	pthread_cond_init(&db->idle_cv, NULL);
	db->versions.next = db->versions.prev = &db->versions;
	db->snapshots.next = db->snapshots.prev = &db->snapshots;
	db->imm = calloc(LSM_MAX_IMM, sizeof(*db->imm));
	if (!db->dir || !db->imm)
		return -ENOMEM;
	int r = lsm_batch_new(&db->group_batch);
	if (r == 0)
		r = lsm_batch_new(&db->blob_batch);
	if (r == 0)
		r = lsm_cache_new(db->opt.block_cache_size, &db->block_cache);
	if (r == 0)
		r = lsm_table_cache_new(db->env, db->dir, db->opt.max_open_files, db->block_cache, &db->tables);
	if (r == 0)
		lsm_table_cache_set_mmap(db->tables, db->opt.mmap_reads != 0);
	return r;
}

/* Frees everything; the threads must have stopped. */
static void db_free(lsm_db *db)
{
	if (!db)
		return;
	vlog_close(db->vlog);   /* on a failed open; lsm_close has closed it */
	lsm_log_writer_close(db->wal);
	lsm_log_writer_close(db->manifest);
	pthread_mutex_lock(&db->mu);
	if (db->super) {
		lsm_super *sv = db->super;
		db->super = NULL;
		/* Readers are gone (close refuses while iterators live). */
		atomic_store(&sv->refs, 1);
		lsm_memtable_unref(sv->mem);
		for (int i = 0; i < sv->nimm; i++)
			lsm_memtable_unref(sv->imm[i]);
		lsm_version_unref(db, sv->version);
		free(sv);
	}
	if (db->current)
		lsm_version_unref(db, db->current);
	pthread_mutex_unlock(&db->mu);
	if (db->mem)
		lsm_memtable_unref(db->mem);
	for (int i = 0; db->imm && i < db->nimm; i++)
		lsm_memtable_unref(db->imm[i].mem);
	lsm_table_cache_free(db->tables);
	lsm_cache_free(db->block_cache);
	lsm_batch_free(db->group_batch);
	lsm_batch_free(db->blob_batch);
	env_unlock(db->env, db->lock);
	for (int i = 0; i < LSM_MAX_LEVELS; i++)
		free(db->compact_ptr[i]);
	free(db->pending_outputs);
	free(db->garbage.v);
	free(db->garbage_snapshot.v);
	free(db->gc_dropped.v);
	free(db->gc_pending);
	free(db->obsolete);
	free(db->threads);
	free(db->imm);
	free(db->dir);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->gc_mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_cond_destroy(&db->idle_cv);
	free(db);
}

/* Loads or creates the version and replays the WALs.  Fills edit with the
 * tables written from replayed memtables. */
static int recover(lsm_db *db, lsm_version_edit *edit, struct dir_listing *listing)
{
	char path[PATH_MAX];
	lsm_manifest_state st;
	int r;

	lsm_filename(path, sizeof(path), db->dir, LSM_FILE_CURRENT, 0);
	r = env_file_exists(db->env, path);
	if (r < 0)
		return r;
	if (r == 1 && db->opt.error_if_exists)
		return lsm_errf(-EEXIST, "%s: store exists", db->dir);
	if (r == 0) {
		if (!db->opt.create_if_missing)
			return lsm_errf(-ENOENT, "%s: no store (CURRENT missing)", db->dir);
		/* A crash while creating a store leaves at most an empty WAL and
		 * a manifest.  Tables or logged writes without CURRENT are a
		 * damaged store: creating afresh would sweep them away. */
		for (int i = 0; i < listing->n; i++) {
			const struct dir_entry *e = &listing->v[i];
			uint64_t size = 0;
			lsm_file *f;
			if (e->type == LSM_FILE_WAL) {
				snprintf(path, sizeof(path), "%s/%s", db->dir, e->name);
				if (env_open(db->env, path, LSM_ENV_READ, &f) == 0) {
					env_size(db->env, f, &size);
					env_close(db->env, f);
				}
			}
			if (e->type == LSM_FILE_SST || e->type == LSM_FILE_VLOG || size > 16)
				return lsm_errf(-EUCLEAN, "%s: CURRENT is missing but %s is there: the store is "
				                "damaged (restore CURRENT or run fsck.lsmfs), not created anew",
				                db->dir, e->name);
		}
		memset(&st, 0, sizeof(st));
		st.next_file = 1;
		r = lsm_version_apply(NULL, edit, &db->opt, &st.version);
		if (r < 0)
			return r;
	} else {
		r = lsm_manifest_recover(db->env, db->dir, &db->opt, &st);
		if (r < 0)
			return r;
	}
	st.version->refs = 1;
	st.version->next = st.version->prev = &db->versions;
	db->versions.next = db->versions.prev = st.version;
	db->current = st.version;
	db->log_number = st.log_number;
	db->next_file = st.next_file;
	db->manifest_number = st.manifest_number;
	db->garbage = st.garbage;
	atomic_store(&db->last_seq, st.last_seq);

	/* Every table the manifest names must exist: a missing one is damage
	 * that reading around would turn into silently lost keys. */
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < db->current->files[level].n; i++) {
			uint64_t n = db->current->files[level].v[i]->number;
			bool found = false;
			for (int k = 0; k < listing->n && !found; k++)
				found = listing->v[k].type == LSM_FILE_SST && listing->v[k].number == n;
			if (!found) {
				lsm_filename(path, sizeof(path), db->dir, LSM_FILE_SST, n);
				return lsm_errf(-EUCLEAN, "%s: named by MANIFEST-%06llu but missing", path,
				                (unsigned long long)db->manifest_number);
			}
		}

	/* Numbers handed out from here on (replay tables) must be above every
	 * file already in the directory, orphans included. */
	for (int i = 0; i < listing->n; i++)
		if (listing->v[i].number >= db->next_file)
			db->next_file = listing->v[i].number + 1;

	if (db->opt.value_threshold) {
		vlog_options vo;
		vlog_options_init(&vo);
		vo.segment_size = db->opt.vlog_segment_size;
		r = vlog_open(db->env, db->dir, &vo, vlog_file_number, db, &db->vlog);
		if (r < 0) {
			db->vlog = NULL;
			return r;
		}
	}

	struct replay rp = { .db = db, .edit = edit, .max_seq = st.last_seq };
	r = lsm_memtable_new(&rp.mem);
	for (int i = 0; r == 0 && !rp.cut && i < listing->n; i++) {
		const struct dir_entry *e = &listing->v[i];
		if (e->type == LSM_FILE_WAL && e->number >= db->log_number)
			r = replay_wal(&rp, e->number);
	}
	if (r == 0 && lsm_memtable_entries(rp.mem) > 0)
		r = replay_flush(&rp);
	lsm_memtable_unref(rp.mem);
	if (r == 0)
		atomic_store(&db->last_seq, rp.max_seq);
	return r;
}

int lsm_open(const char *dir, const lsm_options *opt, lsm_db **ret_db)
{
	struct dir_listing listing = { 0 };
	char path[PATH_MAX];
	lsm_version_edit edit;
	lsm_version *nv;
	lsm_super *sv;
	lsm_db *db = NULL;
	int r;

	if (!dir || !ret_db)
		return -EINVAL;
	lsm_edit_init(&edit);
	r = db_alloc(dir, opt, &db);
	if (r < 0)
		goto fail;
	if (db->opt.create_if_missing) {
		r = env_mkdir(db->env, dir);
		if (r < 0 && r != -EEXIST) {
			r = lsm_errf(r, "%s: cannot create the store directory", dir);
			goto fail;
		}
	}
	lsm_filename(path, sizeof(path), dir, LSM_FILE_LOCK, 0);
	r = env_lock(db->env, path, &db->lock);
	if (r < 0) {
		db->lock = NULL;
		if (r == -EBUSY)
			r = lsm_errf(-EBUSY, "%s: the store is in use by another process", dir);
		else if (r == -ENOENT)
			r = lsm_errf(-ENOENT, "%s: no store", dir);
		goto fail;
	}
	r = list_store(db->env, dir, &listing);
	if (r < 0)
		goto fail;
	r = recover(db, &edit, &listing);
	if (r < 0)
		goto fail;

	/* A fresh WAL for new writes, then a manifest holding the recovered
	 * state with this WAL as the oldest needed. */
	db->mem_log_number = lsm_db_new_file_number(db);
	r = lsm_memtable_new(&db->mem);
	if (r == 0)
		r = lsm_db_new_wal(db, db->mem_log_number, &db->wal);
	if (r < 0)
		goto fail;
	edit.has_log_number = true;
	edit.log_number = db->mem_log_number;
	r = lsm_version_apply(db->current, &edit, &db->opt, &nv);
	if (r < 0)
		goto fail;
	edit.applied = true;
	nv->refs = 1;
	nv->next = &db->versions;
	nv->prev = db->versions.prev;
	nv->prev->next = nv;
	db->versions.prev = nv;
	lsm_version_unref(db, db->current);
	db->current = nv;
	for (int i = 0; i < edit.nadded; i++)
		lsm_db_pending_remove(db, edit.added[i].meta->number);
	uint64_t old_manifest = db->manifest_number;
	db->manifest_number = lsm_db_new_file_number(db);
	r = lsm_manifest_create(db->env, db->dir, db->manifest_number, db->current, edit.log_number,
	                        db->next_file, atomic_load(&db->last_seq), &db->garbage, &db->manifest);
	if (r < 0) {
		db->manifest_number = old_manifest;
		goto fail;
	}
	db->log_number = edit.log_number;
	sv = lsm_db_super_alloc();
	if (!sv) {
		r = -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&db->mu);
	lsm_db_install_super(db, sv);
	pthread_mutex_unlock(&db->mu);
	sweep(db, &listing);
	free(db->obsolete);
	db->obsolete = NULL;
	db->nobsolete = db->cap_obsolete = 0;
	/* Before the threads start: after that a compaction may free the metas
	 * this edit points at. */
	lsm_edit_done(&edit);
	r = start_threads(db);
	if (r < 0)
		goto fail;
	free(listing.v);
	*ret_db = db;
	lsm_clear_error();   /* expected failures on the way (mkdir EEXIST) are not news */
	return 0;
fail:
	free(listing.v);
	lsm_edit_done(&edit);
	if (db) {
		pthread_mutex_lock(&db->mu);
		db->shutting_down = true;
		pthread_cond_broadcast(&db->bg_cv);
		pthread_mutex_unlock(&db->mu);
		for (int i = 0; i < db->nthreads; i++)
			pthread_join(db->threads[i], NULL);
		db_free(db);
	}
	return r;
}

int lsm_close(lsm_db *db)
{
	int r;

	if (!db)
		return 0;
	pthread_mutex_lock(&db->mu);
	if (db->open_iters > 0 || db->snapshots.next != &db->snapshots) {
		pthread_mutex_unlock(&db->mu);
		return lsm_errf(-EBUSY, "lsm_close: iterators or snapshots are still open");
	}
	/* Let a running GC pass finish its re-pointing: cut short, the copies
	 * it made would be garbage that nothing counts. */
	pthread_mutex_unlock(&db->mu);
	pthread_mutex_lock(&db->gc_mu);
	pthread_mutex_lock(&db->mu);
	db->shutting_down = true;
	pthread_mutex_unlock(&db->gc_mu);
	pthread_cond_broadcast(&db->bg_cv);
	pthread_cond_broadcast(&db->idle_cv);
	pthread_mutex_unlock(&db->mu);
	for (int i = 0; i < db->nthreads; i++)
		pthread_join(db->threads[i], NULL);
	pthread_mutex_lock(&db->mu);
	r = db->bg_error;
	pthread_mutex_unlock(&db->mu);
	if (db->vlog) {
		int vr = vlog_close(db->vlog);
		db->vlog = NULL;
		if (r == 0)
			r = vr;
	}
	if (r == 0 && db->wal)
		r = lsm_log_writer_sync(db->wal);
	pthread_mutex_lock(&db->mu);
	lsm_db_delete_obsolete(db);
	pthread_mutex_unlock(&db->mu);
	db_free(db);
	return r;
}

int lsm_destroy(const char *dir, const lsm_options *opt)
{
	lsm_env *env = opt && opt->env ? opt->env : lsm_env_posix();
	struct dir_listing listing;
	char path[PATH_MAX];
	lsm_lock *lock;
	int r;

	lsm_filename(path, sizeof(path), dir, LSM_FILE_LOCK, 0);
	r = env_lock(env, path, &lock);
	if (r < 0)
		return r == -EBUSY ? lsm_errf(r, "%s: the store is in use", dir) : r;
	r = list_store(env, dir, &listing);
	if (r < 0)
		listing.v = NULL;   /* list_store freed it */
	for (int i = 0; r == 0 && i < listing.n; i++) {
		if (listing.v[i].type == LSM_FILE_LOCK)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, listing.v[i].name);
		r = env_unlink(env, path);
	}
	free(listing.v);
	env_unlock(env, lock);
	if (r == 0) {
		lsm_filename(path, sizeof(path), dir, LSM_FILE_LOCK, 0);
		env_unlink(env, path);
		r = env_rmdir(env, dir);
		if (r == -ENOTEMPTY)
			r = lsm_errf(r, "%s: holds files that are not the store's; left in place", dir);
	}
	return r;
}
