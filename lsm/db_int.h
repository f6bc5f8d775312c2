/*
 * db_int.h - the engine's core state: file metadata, versions, version edits,
 * the version set, compactions and the lsm_db handle itself.  Shared by
 * version.c, manifest.c, compact.c, db.c and stats.c.
 *
 * Locking: db->mu protects everything marked "mu" below.  Readers take
 * references (super versions) under mu and then read without it; the
 * memtable and table readers are safe for concurrent use.
 */
#ifndef LSM_DB_INT_H
#define LSM_DB_INT_H

#include "lsm_int.h"

#include <limits.h>

/* One SSTable in some level.  Shared by every version that contains it. */
typedef struct lsm_file_meta {
	int refs;                   /* versions holding it; mu */
	bool being_compacted;       /* mu */
	/* Point lookups that may pass through this file on their way to a
	 * deeper one before it is compacted down (LevelDB's allowed_seeks):
	 * each such lookup costs about what compacting 16 KiB of it would, so
	 * a file read past that often is cheaper merged into the next level. */
	_Atomic int64_t allowed_seeks;
	uint64_t number;
	uint64_t size;              /* bytes on disk */
	uint8_t *smallest;          /* internal keys, malloc'd together */
	size_t smallest_len;
	uint8_t *largest;
	size_t largest_len;
} lsm_file_meta;

static inline lsm_slice meta_smallest(const lsm_file_meta *f) { return lsm_slice_make(f->smallest, f->smallest_len); }
static inline lsm_slice meta_largest(const lsm_file_meta *f) { return lsm_slice_make(f->largest, f->largest_len); }

/* A growable array of file pointers. */
typedef struct lsm_file_list {
	lsm_file_meta **v;
	int n, cap;
} lsm_file_list;

/* An immutable snapshot of which files make up each level.  Level 0 files
 * may overlap and are kept newest (highest number) first; the other levels
 * are sorted by smallest key and never overlap. */
typedef struct lsm_version {
	int refs;                   /* mu */
	struct lsm_version *prev, *next;   /* the version set's live list; mu */
	lsm_file_list files[LSM_MAX_LEVELS];
	double compaction_score;    /* the best level's score, >= 1 means compaction is due */
	int compaction_level;
	lsm_file_meta *seek_file;   /* ran out of allowed_seeks: compact it when idle; mu */
	int seek_level;
} lsm_version;

/* A change from one version to the next, as logged in the MANIFEST. */
typedef struct lsm_edit_file {
	int level;
	lsm_file_meta *meta;        /* for additions; owned by the edit until applied */
	uint64_t number;            /* for deletions */
} lsm_edit_file;

/* Garbage bytes in one value-log segment: records no live pointer names. */
typedef struct lsm_seg_garbage {
	uint64_t segment;
	uint64_t bytes;
} lsm_seg_garbage;

typedef struct lsm_garbage_list {
	lsm_seg_garbage *v;
	int n, cap;
} lsm_garbage_list;

/* Adds bytes to segment's entry (creating it).  -ENOMEM. */
int lsm_garbage_add(lsm_garbage_list *l, uint64_t segment, uint64_t bytes);
void lsm_garbage_remove(lsm_garbage_list *l, uint64_t segment);
uint64_t lsm_garbage_get(const lsm_garbage_list *l, uint64_t segment);

typedef struct lsm_version_edit {
	bool has_log_number, has_next_file, has_last_seq;
	bool applied;               /* installed: its metas belong to versions */
	uint64_t log_number;        /* WALs older than this are no longer needed */
	uint64_t next_file;
	uint64_t last_seq;
	lsm_edit_file *added;
	int nadded, cap_added;
	lsm_edit_file *deleted;
	int ndeleted, cap_deleted;
	lsm_garbage_list garbage;   /* value-log garbage found (deltas, or totals in a snapshot) */
	lsm_garbage_list vlog_removed;  /* segments collected (bytes unused) */
} lsm_version_edit;

/* ---- from version.c ---------------------------------------------------- */

int lsm_meta_new(uint64_t number, uint64_t size, lsm_slice smallest, lsm_slice largest,
                 lsm_file_meta **ret_meta);
void lsm_meta_free(lsm_file_meta *f);
int lsm_file_list_push(lsm_file_list *l, lsm_file_meta *f);
void lsm_file_list_done(lsm_file_list *l);

void lsm_edit_init(lsm_version_edit *e);
/* Frees added metas no version took (refs 0).  REQUIRES: mu if the edit was
 * applied to the db's versions, since another thread may free them. */
void lsm_edit_done(lsm_version_edit *e);
/* Takes meta if it is new (refs 0); a meta already in a version (a trivial
 * move) is shared, never freed by the edit. */
int lsm_edit_add_file(lsm_version_edit *e, int level, lsm_file_meta *meta);
int lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number);
/* Serializes e (appending to a malloc'd buffer). */
int lsm_edit_encode(const lsm_version_edit *e, uint8_t **ret_buf, size_t *ret_len);
/* Parses a record into e (initialized by the caller).  -EUCLEAN if malformed. */
int lsm_edit_decode(lsm_version_edit *e, lsm_slice rec);

/* Builds base + edit into a new version (refs 0).  The edit's added metas
 * become shared with the new version (their refs are counted). */
int lsm_version_apply(const lsm_version *base, const lsm_version_edit *e, const lsm_options *opt,
                      lsm_version **ret_version);
/* Frees v, dropping its file references; files whose count drops to zero
 * have their numbers appended to *obsolete (grown with realloc). */
void lsm_version_free(lsm_version *v, uint64_t **obsolete, int *nobsolete, int *cap_obsolete);
uint64_t lsm_level_bytes(const lsm_version *v, int level);
uint64_t lsm_max_bytes_for_level(const lsm_options *opt, int level);
/* Sets compaction_score/level from file counts and sizes. */
void lsm_version_score(lsm_version *v, const lsm_options *opt);

/* Point lookup through the levels of v.  Returns 1 with *ret_type and a
 * malloc'd value (for VALUE), 0 if no level holds ukey at <= seq, <0 on error.
 * A lookup that had to consult a second file charges the first one a seek;
 * when that uses up the file's allowed_seeks, *ret_seek_file and
 * *ret_seek_level name it (otherwise *ret_seek_file is NULL). */
int lsm_version_get(lsm_version *v, lsm_table_cache *tc, lsm_slice lookup_ikey, bool fill_cache,
                    unsigned *ret_type, void **ret_val, size_t *ret_len, lsm_file_meta **ret_seek_file,
                    int *ret_seek_level);
/* An iterator's read sample at ikey: charges the first file a lookup there
 * would consult if it would consult a second.  Returns the file (and sets
 * *ret_level) when that used up its allowed_seeks, else NULL. */
lsm_file_meta *lsm_version_record_sample(lsm_version *v, lsm_slice ikey, int *ret_level);
/* Appends iterators for every file of v (level 0 one each, other levels one
 * concatenating iterator each) to its (an array with room for
 * nfiles(level 0) + LSM_MAX_LEVELS). */
int lsm_version_add_iters(lsm_version *v, lsm_table_cache *tc, bool fill_cache, lsm_iiter **its, int *n);
/* Files of level that overlap the user-key range [begin, end] (NULL = open). */
int lsm_version_overlapping(const lsm_version *v, int level, const lsm_slice *begin, const lsm_slice *end,
                            lsm_file_list *ret);
/* An iterator over a sorted, non-overlapping list of files. */
int lsm_level_iter_new(lsm_file_meta **files, int n, lsm_table_cache *tc, bool fill_cache, lsm_iiter **ret_iter);

/* ---- from manifest.c --------------------------------------------------- */

/* The persistent part of the version set. */
typedef struct lsm_manifest_state {
	lsm_version *version;       /* recovered version (refs 0) */
	lsm_garbage_list garbage;   /* value-log garbage per segment (caller frees .v) */
	uint64_t log_number, next_file, last_seq;
	uint64_t manifest_number;
} lsm_manifest_state;
/* Reads CURRENT and replays the manifest it names.  -ENOENT if CURRENT is
 * missing.  Corruption errors name the file. */
int lsm_manifest_recover(lsm_env *env, const char *dir, const lsm_options *opt, lsm_manifest_state *ret);
/* Starts manifest `number` holding a snapshot of v and the counters, and
 * points CURRENT at it atomically. */
int lsm_manifest_create(lsm_env *env, const char *dir, uint64_t number, const lsm_version *v,
                        uint64_t log_number, uint64_t next_file, uint64_t last_seq,
                        const lsm_garbage_list *garbage, lsm_log_writer **ret_writer);
/* Appends e and syncs. */
int lsm_manifest_append(lsm_log_writer *w, const lsm_version_edit *e);

/* ---- from compact.c ---------------------------------------------------- */

typedef struct lsm_compaction {
	int level;                  /* inputs from level and level + 1 */
	lsm_file_list inputs[2];
	lsm_file_list grandparents; /* level + 2 files overlapping, to cut outputs */
	lsm_version *input_version; /* referenced while running */
	bool trivial_move;
} lsm_compaction;

struct lsm_db;
/* Chooses a compaction from db's current version, skipping files being
 * compacted; marks its inputs.  NULL if nothing is due.  REQUIRES: mu held. */
lsm_compaction *lsm_compaction_pick(struct lsm_db *db);
/* A compaction of every file at level overlapping [begin, end] (NULL = all)
 * into level + 1, or NULL if there are none.  REQUIRES: mu held. */
lsm_compaction *lsm_compaction_manual(struct lsm_db *db, int level, const lsm_slice *begin, const lsm_slice *end);
/* Writes mem to a new table and adds it to edit at level (nothing for an
 * empty memtable).  Values of value_threshold bytes or more that the WAL
 * kept inline (wal_inline_max) go to the value log, synced before the
 * table is finished, and the table points at them.  Called without mu. */
int lsm_build_level0(struct lsm_db *db, lsm_memtable *mem, lsm_version_edit *edit, int level);
/* Runs c: merges, writes outputs, installs the edit.  Called without mu;
 * takes it to install.  Frees c. */
int lsm_compaction_run(struct lsm_db *db, lsm_compaction *c);

/* ---- the db (db.c) ----------------------------------------------------- */

/* What a reader needs: memtables and a version, referenced together. */
typedef struct lsm_super {
	atomic_int refs;
	lsm_memtable *mem;
	int nimm;
	lsm_memtable **imm;         /* newest first */
	lsm_version *version;
} lsm_super;

struct lsm_snapshot {
	uint64_t seq;
	struct lsm_snapshot *prev, *next;   /* mu */
};

typedef struct lsm_writer {
	lsm_batch *batch;
	bool sync;
	lsm_slice *gc_olds;         /* a GC batch: the old pointers its records replace */
	bool done;
	int status;
	pthread_cond_t cv;
	struct lsm_writer *next;
} lsm_writer;

typedef struct lsm_imm {
	lsm_memtable *mem;
	uint64_t log_number;        /* the WAL that holds its writes */
} lsm_imm;

struct vlog;

struct lsm_db {
	char *dir;
	lsm_options opt;
	lsm_env *env;
	lsm_lock *lock;
	lsm_cache *block_cache;
	lsm_table_cache *tables;

	pthread_mutex_t mu;
	pthread_cond_t bg_cv;       /* background work changed state */
	pthread_cond_t idle_cv;     /* a flush or compaction finished */

	/* mu: */
	lsm_memtable *mem;
	uint64_t mem_log_number;
	lsm_imm *imm;               /* oldest first */
	int nimm;
	lsm_log_writer *wal;
	lsm_super *super;
	lsm_version *current;
	lsm_version versions;       /* sentinel of the live list */
	lsm_log_writer *manifest;
	uint64_t manifest_number;
	bool manifest_busy;         /* an edit is being logged (mu dropped) */
	uint64_t log_number;        /* oldest WAL still needed */
	_Atomic uint64_t next_file;  /* atomic: the value log takes numbers without mu */
	lsm_writer *writers_head, *writers_tail;
	lsm_batch *group_batch;     /* scratch for group commit, leader only */
	struct lsm_snapshot snapshots;  /* sentinel, oldest first */
	uint64_t *pending_outputs;  /* file numbers being written */
	int npending, cap_pending;
	uint64_t *obsolete;         /* table numbers no version needs */
	int nobsolete, cap_obsolete;
	int deleting;               /* threads unlinking obsolete tables */
	int running_compactions;
	bool flush_running;
	bool manual_compaction;
	bool busy_levels[LSM_MAX_LEVELS];
	uint8_t *compact_ptr[LSM_MAX_LEVELS];  /* round-robin position per level */
	size_t compact_ptr_len[LSM_MAX_LEVELS];
	bool shutting_down;
	int bg_error;               /* sticky: the store stopped taking writes */
	int open_iters;
	pthread_t *threads;
	int nthreads;

	_Atomic uint64_t last_seq;  /* visible to readers; written under mu */

	struct vlog *vlog;          /* the value log (NULL if value_threshold is 0) */
	lsm_garbage_list garbage;   /* value-log garbage per segment; mu */
	lsm_garbage_list garbage_snapshot;  /* totals for a manifest being rolled */
	struct lsm_gc_pending *gc_pending;  /* collected segments awaiting removal; mu */
	int ngc_pending, cap_gc_pending;
	bool gc_running;            /* mu */
	pthread_mutex_t gc_mu;      /* one GC pass or collection at a time; taken before mu */
	lsm_garbage_list gc_dropped;  /* copies a GC batch did not re-point; gc_mu */
	_Atomic uint64_t gc_removed_gen;    /* bumped when a segment is removed */
	_Atomic uint64_t last_write_micros;
	_Atomic uint64_t st_gc_passes, st_gc_rewritten, st_gc_removed;
	lsm_batch *blob_batch;      /* write leader's scratch for separated groups */
	_Atomic uint64_t vlog_gen, vlog_synced_gen;  /* groups appended / covered by a vlog sync */
	_Atomic uint64_t mem_vlog_bytes;    /* value-log bytes the current memtable points at */
	uint64_t flush_vlog_floor;  /* while a flush runs: GC picks no segment numbered this or
	                               higher (0: none running); mu */

	/* statistics, atomics so readers need no lock */
	_Atomic uint64_t st_user_bytes, st_wal_bytes, st_flush_bytes, st_flushes;
	_Atomic uint64_t st_compact_read, st_compact_written, st_compactions, st_compact_micros;
	_Atomic uint64_t st_level_read[LSM_MAX_LEVELS], st_level_written[LSM_MAX_LEVELS];
	_Atomic uint64_t st_seek_compactions;
	_Atomic uint64_t iter_seed;     /* read sampling: a new seed per iterator */
	/* What the last open's WAL replay left out (set once, at open). */
	uint64_t rec_torn_bytes, rec_skipped, rec_cut_wal, rec_cut_offset;
	_Atomic uint64_t st_stall_micros, st_wal_syncs, st_vlog_bytes;
};

/* ---- from blob.c ------------------------------------------------------ */

/* Writes in's large values to the value log and builds out (the same
 * records with pointers for them), then flushes the log.  Leader only. */
int lsm_blob_separate(struct lsm_db *db, const lsm_batch *in, lsm_batch *out);
/* Reads the value a LSM_TYPE_VPTR entry points at (malloc'd). */
int lsm_blob_resolve(struct lsm_db *db, lsm_slice ptrbytes, void **ret_val, size_t *ret_len);
/* 1 if every pointer in the WAL record rec names an intact record, 0 if
 * one does not (the group's values were lost in a crash), <0 on error. */
int lsm_blob_verify_batch(struct lsm_db *db, lsm_slice rec);
/* Syncs the value log if anything was appended since its last sync: called
 * before every WAL sync and before a flush retires a WAL. */
int lsm_blob_sync(struct lsm_db *db);

/* ---- from blob_gc.c --------------------------------------------------- */

/* One garbage-collection step: collects the segment with the most garbage
 * above the ratio (any garbage with force): rewrites its live records and
 * re-points their keys; or seals the active segment when it is the one
 * holding garbage and writes have stopped.  Returns 1 if it did either
 * (*ret_rewritten: bytes copied), 0 if there was nothing to do, or a
 * negative errno. */
int lsm_gc_pass(struct lsm_db *db, bool force, uint64_t *ret_rewritten);
/* Removes collected segments whose old pointers no reader can meet.
 * REQUIRES: mu (dropped meanwhile). */
void lsm_gc_collect(struct lsm_db *db);
void *lsm_gc_thread(void *arg);

struct lsm_gc_pending {
	uint64_t segment;
	uint64_t seq;               /* last sequence when its keys were re-pointed */
	uint64_t wal;               /* the WAL holding the re-pointing */
};

#define LSM_MAX_IMM 16   /* bound on max_immutable_memtables */

/* From db.c, for compact.c and db_open.c: */
void lsm_db_sanitize_options(lsm_options *o);
lsm_super *lsm_db_super_alloc(void);                           /* room for LSM_MAX_IMM */
void lsm_db_install_super(struct lsm_db *db, lsm_super *sv);   /* REQUIRES: mu; takes sv */
/* A reference to the current super version, and its release (locked: the
 * caller holds mu; the last release of a replaced one frees its tables). */
lsm_super *lsm_db_super_get(struct lsm_db *db);
void lsm_db_super_unref(struct lsm_db *db, lsm_super *sv, bool locked);
int lsm_db_new_wal(struct lsm_db *db, uint64_t number, lsm_log_writer **ret);
void *lsm_flush_thread(void *arg);
void *lsm_compaction_thread(void *arg);
uint64_t lsm_db_new_file_number(struct lsm_db *db);            /* atomic; no lock needed */
void lsm_db_pending_add(struct lsm_db *db, uint64_t number);   /* REQUIRES: mu */
void lsm_db_pending_remove(struct lsm_db *db, uint64_t number);/* REQUIRES: mu */
void lsm_db_obsolete_add(struct lsm_db *db, uint64_t number);  /* REQUIRES: mu */
/* Unlinks the tables on the obsolete list.  REQUIRES: mu (dropped meanwhile). */
void lsm_db_delete_obsolete(struct lsm_db *db);
uint64_t lsm_db_oldest_snapshot(struct lsm_db *db);            /* REQUIRES: mu */
/* Logs e and makes base+e current.  REQUIRES: mu (dropped while writing). */
int lsm_db_log_and_apply(struct lsm_db *db, lsm_version_edit *e);
void lsm_version_ref(lsm_version *v);                          /* REQUIRES: mu */
void lsm_version_unref(struct lsm_db *db, lsm_version *v);     /* REQUIRES: mu */
uint64_t lsm_now_micros(void);
/* Newest entry of ukey visible at snap (NULL: now).  Returns 1 with its type
 * (VALUE or VPTR) and a malloc'd raw value, 0 if absent or deleted. */
int lsm_db_get_raw(struct lsm_db *db, const lsm_snapshot *snap, bool fill_cache, lsm_slice ukey,
                   unsigned *ret_type, void **ret_raw, size_t *ret_len);
/* Commits a GC batch: only records whose key still holds the old pointer
 * (olds[i], encoded) are applied, atomically with the check. */
int lsm_db_write_gc(struct lsm_db *db, lsm_batch *batch, lsm_slice *olds);
/* Returns once every write queued before the call has been applied to the
 * memtable (or has failed); writes nothing.  The error of a failed store. */
int lsm_db_write_barrier(struct lsm_db *db);
/* Builds out from in's records whose keys still point at olds[i]. */
int lsm_gc_filter(struct lsm_db *db, const lsm_batch *in, const lsm_slice *olds, lsm_batch *out);

#endif
