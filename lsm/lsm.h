/*
 * lsm.h - liblsm, an embeddable log-structured merge-tree key-value store.
 *
 * A store is one directory holding a write-ahead log, sorted table files
 * (SSTables) in levels, a MANIFEST that names the live tables, and a LOCK
 * file.  Keys and values are arbitrary byte strings ordered bytewise.
 *
 * Thread safety: an lsm_db may be used from any number of threads at once
 * without external locking.  An lsm_iter or lsm_batch must not be used from
 * two threads at the same time.  Snapshots may be shared between threads.
 *
 * Conventions:
 *   1. Errors: every function returning int returns 0 (or a count >= 0) on
 *      success and a negative errno on failure: -ENOENT not found, -EEXIST
 *      store exists (error_if_exists), -EINVAL misuse, -EBUSY store locked by
 *      another process (or handles still open at close), -EBADMSG checksum
 *      mismatch, -EUCLEAN structural corruption, -ENOTSUP unknown format
 *      version, -EIO, -ENOSPC, -ENOMEM, -EROFS after a failed sync (the store
 *      stops accepting writes rather than risk acknowledging lost ones).
 *      lsm_last_error() gives the calling thread's text for the last error,
 *      naming the file and offset of any corruption.
 *   2. Keys and values are passed as pointer + length; the library copies
 *      what it keeps.  A NULL pointer is allowed with length 0.
 *   3. Ownership: lsm_get's value is malloc'd and the caller free()s it.
 *      Iterator keys and values are borrowed: valid until the iterator's next
 *      move or its free.  Every _open/_new has one _close/_free/_release, and
 *      those accept NULL.
 *   4. Durability: a write returns after it is in the write-ahead log (it
 *      survives a crash of the process).  With sync set, the log is also
 *      fsync'd (it survives power loss).  Concurrent writers share one log
 *      append and one fsync (group commit).
 */
#ifndef LSM_H
#define LSM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LSM_VERSION_MAJOR 0
#define LSM_VERSION_MINOR 1
#define LSM_VERSION_STRING "0.1.0"

typedef struct lsm_db lsm_db;
typedef struct lsm_iter lsm_iter;
typedef struct lsm_batch lsm_batch;
typedef struct lsm_snapshot lsm_snapshot;
typedef struct lsm_env lsm_env;   /* the I/O environment, util/env.h */

#define LSM_COMPRESS_NONE 0
#define LSM_COMPRESS_LZ4  1

#define LSM_MAX_LEVELS 7

typedef struct lsm_options {
	lsm_env *env;                /* I/O environment.  Default: NULL, the POSIX env */
	int create_if_missing;       /* Default: 1 */
	int error_if_exists;         /* open fails with -EEXIST if the store exists.  Default: 0 */
	int skip_corrupt_wal;        /* drop damaged log records (and report them) instead
	                                of failing open.  Default: 0 */
	size_t write_buffer_size;    /* memtable bytes before it is flushed.  Default: 4 MiB */
	int max_immutable_memtables; /* memtables waiting for flush before writers stall.  Default: 2 */
	size_t block_size;           /* uncompressed data block target.  Default: 4096 */
	int block_restart_interval;  /* keys between restart points.  Default: 16 */
	int bloom_bits_per_key;      /* bloom filter bits per key, 0 = no filter.  Default: 10 */
	int compression;             /* LSM_COMPRESS_*.  Default: LSM_COMPRESS_LZ4 */
	size_t block_cache_size;     /* bytes of uncompressed blocks cached.  Default: 8 MiB */
	int max_open_files;          /* table files kept open.  Default: 1000 */
	size_t target_file_size;     /* SSTable size compaction aims for.  Default: 2 MiB */
	/* Level 0 and level 1 are sized together.  Level-0 files each span
	 * (nearly) the whole key space, so a level-0 compaction rewrites all of
	 * level 1 it overlaps, usually all of it: it writes about
	 * 1 + L1 / (level-0 bytes taken) per byte it brings down, and taking
	 * more files at once makes that cheaper.  A level-1 file pushed to
	 * level 2 rewrites the level-2 bytes under its key range, about
	 * 1 + L2 / L1 per byte, and a bigger level 1 makes that cheaper.  So
	 * level 0 compacts in batches of 8 memtables rather than LevelDB's 4
	 * (half as many full rewrites of level 1), and level 1 is about the
	 * size of one such batch, l0_compaction_trigger x write_buffer_size
	 * (RocksDB's rule for its base level), rather than LevelDB's 10 MiB:
	 * a level-0 compaction then writes about twice what it brings down, and
	 * a level-1 push rewrites a third as many level-2 bytes per byte.  With
	 * 4 files into 10 MiB, liblsm wrote more than LevelDB, whose single
	 * compaction thread lags and so gets bigger batches by accident.
	 * Raise max_bytes_for_level_base with write_buffer_size or
	 * l0_compaction_trigger.  The price: reads consult up to 7 level-0
	 * files at rest (bloom filters in memory screen them), level-0
	 * compactions are twice as large, and up to 8 memtables of overwritten
	 * versions wait in level 0 to be dropped. */
	uint64_t max_bytes_for_level_base; /* level 1 size limit.  Default: 32 MiB */
	int level_size_ratio;        /* each level is this many times the one above.  Default: 10 */
	int l0_compaction_trigger;   /* level-0 files that start a compaction.  Default: 8 */
	int l0_slowdown_trigger;     /* level-0 files at which each write is delayed 1 ms.  Default: 16 */
	int l0_stop_trigger;         /* level-0 files at which writes wait for compaction.  Default: 24 */
	int background_threads;      /* compaction threads (flushes have their own).  Default: 2 */
	size_t value_threshold;      /* values of at least this many bytes are stored in the value
	                                log and only a pointer in the tree (WiscKey), so compaction
	                                never rewrites them; 0 = never.  Default: 4096 */
	size_t wal_inline_max;       /* a write batch of at most this many bytes keeps its large
	                                values inline in the WAL and the memtable, and they move to
	                                the value log when the memtable is flushed: one log append
	                                per small write, and one fsync (the WAL's) for lsm_sync
	                                after it, at the price of writing such values twice.
	                                Larger batches have theirs separated as they are written.
	                                0 = always as written.  Default: 0 */
	uint64_t vlog_segment_size;  /* value-log segment files roll over at this size.
	                                Default: 64 MiB */
	int mmap_reads;              /* read SSTables through read-only mappings: no system
	                                call per block read, but a table file truncated or
	                                unreadable under the mapping kills the process with
	                                SIGBUS instead of returning an error.  Default: 0 */
} lsm_options;

typedef struct lsm_read_options {
	const lsm_snapshot *snapshot; /* read at this snapshot.  Default: NULL = now */
	int fill_cache;               /* keep blocks read in the block cache.  Default: 1 */
} lsm_read_options;

typedef struct lsm_write_options {
	int sync;                     /* fsync the log before returning.  Default: 0 */
} lsm_write_options;

/* Fills opt with the defaults documented above. */
void lsm_options_init(lsm_options *opt);
void lsm_read_options_init(lsm_read_options *ro);
void lsm_write_options_init(lsm_write_options *wo);

/* Opens the store in directory dir (created if missing and create_if_missing),
 * replaying its log.  opt may be NULL for the defaults.
 * Returns 0 and *ret_db, or -ENOENT (missing, create_if_missing off), -EEXIST
 * (error_if_exists), -EBUSY (another process has it open), -EBADMSG/-EUCLEAN
 * (corruption: lsm_last_error() names the file and offset), -ENOTSUP (a
 * format this library does not know), -EIO, -ENOMEM.
 * The env in opt must outlive the db. */
int lsm_open(const char *dir, const lsm_options *opt, lsm_db **ret_db);

/* Waits for background work, syncs the log, and frees the db.  Returns -EBUSY
 * and frees nothing while iterators or snapshots are open; otherwise frees
 * everything and returns the first sync or background error seen, or 0. */
int lsm_close(lsm_db *db);

/* Deletes the store in dir and the directory itself.  -EBUSY if it is open. */
int lsm_destroy(const char *dir, const lsm_options *opt);

/* Stores key -> value (replacing any value).  wo may be NULL (no sync).
 * Errors: -EINVAL (key over 1 MiB... see LSM_MAX_KEY), -EROFS, -EIO, -ENOSPC, -ENOMEM. */
#define LSM_MAX_KEY   (64u * 1024)
#define LSM_MAX_VALUE (256u * 1024 * 1024)
int lsm_put(lsm_db *db, const lsm_write_options *wo,
            const void *key, size_t klen, const void *val, size_t vlen);

/* Removes key (no error if absent).  Errors as lsm_put. */
int lsm_delete(lsm_db *db, const lsm_write_options *wo, const void *key, size_t klen);

/* Applies every operation in batch atomically, in order.  The batch is not
 * changed and may be reused.  Errors as lsm_put. */
int lsm_write(lsm_db *db, const lsm_write_options *wo, lsm_batch *batch);

/* Looks key up.  ro may be NULL.  Returns 0 with a malloc'd *ret_val (free()
 * it) and *ret_len, -ENOENT if absent, or -EBADMSG/-EUCLEAN/-EIO/-ENOMEM. */
int lsm_get(lsm_db *db, const lsm_read_options *ro, const void *key, size_t klen,
            void **ret_val, size_t *ret_len);

/* Write batches: a list of puts and deletes applied as one. */
int lsm_batch_new(lsm_batch **ret_batch);
void lsm_batch_free(lsm_batch *b);
int lsm_batch_put(lsm_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int lsm_batch_delete(lsm_batch *b, const void *key, size_t klen);
void lsm_batch_clear(lsm_batch *b);
/* Number of operations in the batch. */
uint32_t lsm_batch_count(const lsm_batch *b);

/* Snapshots: a consistent read-only view as of now.  Release with
 * lsm_snapshot_release on the same db. */
int lsm_snapshot_new(lsm_db *db, const lsm_snapshot **ret_snap);
void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap);

/* Iterators read a snapshot (ro->snapshot, or one taken now) and never block
 * writers.  A new iterator is not positioned (lsm_iter_valid is 0). */
int lsm_iter_new(lsm_db *db, const lsm_read_options *ro, lsm_iter **ret_iter);
void lsm_iter_free(lsm_iter *it);
/* Positions at the first key >= key. */
void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen);
void lsm_iter_seek_to_first(lsm_iter *it);
void lsm_iter_seek_to_last(lsm_iter *it);
/* REQUIRES: lsm_iter_valid(it). */
void lsm_iter_next(lsm_iter *it);
void lsm_iter_prev(lsm_iter *it);
/* 1 if positioned at an entry; 0 at either end or after an error. */
int lsm_iter_valid(const lsm_iter *it);
/* REQUIRES: lsm_iter_valid(it).  Borrowed until the next move. */
const void *lsm_iter_key(const lsm_iter *it, size_t *ret_len);
/* REQUIRES: lsm_iter_valid(it).  The value is read only when asked for.
 * Returns 0 and a borrowed *ret_val, or a negative errno. */
int lsm_iter_value(lsm_iter *it, const void **ret_val, size_t *ret_len);
/* 0, or the error that ended the iteration early. */
int lsm_iter_status(const lsm_iter *it);

/* Writes the memtable to a level-0 table and waits for it. */
int lsm_flush(lsm_db *db);
/* Compacts the key range [begin, end] (NULL = unbounded) down through every
 * level, and waits. */
int lsm_compact_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen);
/* Waits until no flush or compaction is running or needed. */
int lsm_wait_idle(lsm_db *db);
/* fsyncs the log: everything written so far survives power loss. */
int lsm_sync(lsm_db *db);

/* Collects the value log now, instead of waiting for the background thread:
 * every segment holding garbage (the active one is sealed first) has its
 * live values copied forward, and segments no snapshot or iterator can
 * still reach are deleted.  Returns the bytes rewritten, or a negative
 * errno.  Never needed for correctness or space: the engine does this by
 * itself. */
int64_t lsm_gc(lsm_db *db);

/* Properties, as malloc'd text the caller frees:
 *   "lsm.stats"                 a human-readable table of everything below
 *   "lsm.num-files-at-level<N>" file count at level N
 *   "lsm.bytes-at-level<N>"     bytes at level N
 *   "lsm.write-amplification"   (flush + compaction bytes) / user bytes written
 *   "lsm.sstables"              one line per table: level number size smallest largest
 *   "lsm.vlog"                  one line per value-log segment: number bytes garbage flags
 * Returns 0, or -ENOENT for an unknown name, -ENOMEM. */
int lsm_property(lsm_db *db, const char *name, char **ret_text);

/* Counters behind lsm.stats, for programs that want numbers. */
typedef struct lsm_stats {
	uint64_t files_at_level[LSM_MAX_LEVELS];
	uint64_t bytes_at_level[LSM_MAX_LEVELS];
	/* Compactions by output level: the bytes of input tables read and
	 * of output tables written (level 0 has none; flushes are apart). */
	uint64_t compaction_read_at_level[LSM_MAX_LEVELS];
	uint64_t compaction_written_at_level[LSM_MAX_LEVELS];
	uint64_t user_bytes_written;    /* keys + values given to put/write */
	uint64_t wal_bytes_written;
	uint64_t flush_bytes_written;
	uint64_t compaction_bytes_read;
	uint64_t compaction_bytes_written;
	uint64_t compactions;
	uint64_t seek_compactions;      /* of those, of a file lookups kept reading past */
	uint64_t compaction_micros;
	uint64_t flushes;
	uint64_t stall_micros;          /* time writers waited for flush/compaction */
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t cache_bytes;
	uint64_t wal_syncs;
	double write_amplification;     /* (wal + vlog + flush + compaction bytes) / user bytes */
	uint64_t vlog_bytes;            /* value-log segment bytes on disk */
	uint64_t vlog_garbage_bytes;    /* of those, records no live pointer names (as counted) */
	uint64_t vlog_segments;
	uint64_t vlog_bytes_written;    /* value records appended by writes (and by flushes, for
	                                   values the WAL kept: wal_inline_max) */
	uint64_t gc_passes;
	uint64_t gc_bytes_rewritten;
	uint64_t gc_segments_removed;
	double space_amplification;     /* bytes on disk (tables + value log) / live bytes */
	/* What the WAL replay at open left out: a torn tail (what a crash in
	 * the middle of an append leaves), damaged records skipped (only with
	 * skip_corrupt_wal), and where replay stopped because a group's values
	 * were missing from the value log (never synced, so neither was any
	 * later group): the WAL's number and the record's offset, 0 if not. */
	uint64_t recovery_torn_bytes;
	uint64_t recovery_skipped_records;
	uint64_t recovery_cut_wal;
	uint64_t recovery_cut_offset;
} lsm_stats;
int lsm_get_stats(lsm_db *db, lsm_stats *ret_stats);

/* Text for the calling thread's last error ("" if none recorded). */
const char *lsm_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
