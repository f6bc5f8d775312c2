/*
 * lsm_int.h - internal types shared by the files in lsm/, with prototypes grouped by the
 * file that defines them.  Nothing here is part of the public API (lsm.h).
 *
 * Internal keys.  Every entry in a memtable or SSTable is keyed by
 *     user_key | trailer
 * where trailer is a fixed64 (little-endian) holding (sequence << 8) | type.
 * Internal keys order by user key ascending, then trailer descending, so the
 * newest version of a key comes first.  A lookup key for "key as of sequence
 * S" is user_key | pack(S, LSM_TYPE_SEEK): it sorts before every version with
 * sequence <= S and after every newer one.
 */
#ifndef LSM_INT_H
#define LSM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lsm.h"
#include "../util/coding.h"
#include "../util/env.h"
#include "../util/errmsg.h"

/* ---- internal keys ---------------------------------------------------- */

#define LSM_TYPE_DELETE 0
#define LSM_TYPE_VALUE  1
#define LSM_TYPE_VPTR   2         /* value is an encoded vlog_ptr: the value lives in the value log */
#define LSM_TYPE_SEEK   0xff      /* highest type: used only in lookup keys */
#define LSM_MAX_SEQ     ((UINT64_C(1) << 56) - 1)

static inline uint64_t lsm_pack_trailer(uint64_t seq, unsigned type)
{
	return (seq << 8) | type;
}

/* Appends user_key|trailer to buf (which must hold ukey.len + 8). */
static inline size_t lsm_ikey_encode(uint8_t *buf, lsm_slice ukey, uint64_t seq, unsigned type)
{
	if (ukey.len)
		memcpy(buf, ukey.data, ukey.len);
	put_fixed64(buf + ukey.len, lsm_pack_trailer(seq, type));
	return ukey.len + 8;
}

/* REQUIRES: ikey.len >= 8 (callers validate keys read from disk first). */
static inline lsm_slice lsm_ikey_user(lsm_slice ikey)
{
	return lsm_slice_make(ikey.data, ikey.len - 8);
}

static inline uint64_t lsm_ikey_trailer(lsm_slice ikey)
{
	return get_fixed64(ikey.data + ikey.len - 8);
}

static inline uint64_t lsm_ikey_seq(lsm_slice ikey)
{
	return lsm_ikey_trailer(ikey) >> 8;
}

static inline unsigned lsm_ikey_type(lsm_slice ikey)
{
	return (unsigned)(lsm_ikey_trailer(ikey) & 0xff);
}

/* Internal key order: user key ascending, trailer descending. */
static inline int lsm_ikey_cmp(lsm_slice a, lsm_slice b)
{
	int r = lsm_slice_cmp(lsm_ikey_user(a), lsm_ikey_user(b));
	if (r == 0) {
		uint64_t ta = lsm_ikey_trailer(a), tb = lsm_ikey_trailer(b);
		r = (ta < tb) - (ta > tb);
	}
	return r;
}

/* A key comparator, for modules that work on any key order (blocks). */
typedef int (*lsm_cmp_fn)(lsm_slice a, lsm_slice b);

/* ---- internal iterators ----------------------------------------------- */

/* Every iterator inside the engine (memtable, block, table, level, merge)
 * implements this interface; the public lsm_iter wraps a merge of them.
 * key() and value() are borrowed until the next move.  An iterator that meets
 * an error becomes invalid and reports it through status(). */
typedef struct lsm_iiter lsm_iiter;
struct lsm_iiter_ops {
	bool (*valid)(lsm_iiter *it);
	void (*seek_to_first)(lsm_iiter *it);
	void (*seek_to_last)(lsm_iiter *it);
	void (*seek)(lsm_iiter *it, lsm_slice target);  /* first key >= target */
	void (*next)(lsm_iiter *it);                    /* REQUIRES: valid */
	void (*prev)(lsm_iiter *it);                    /* REQUIRES: valid */
	lsm_slice (*key)(lsm_iiter *it);                /* REQUIRES: valid */
	lsm_slice (*value)(lsm_iiter *it);              /* REQUIRES: valid */
	int (*status)(lsm_iiter *it);
	void (*destroy)(lsm_iiter *it);
};
struct lsm_iiter {
	const struct lsm_iiter_ops *ops;
};

static inline bool iiter_valid(lsm_iiter *it) { return it->ops->valid(it); }
static inline void iiter_seek_to_first(lsm_iiter *it) { it->ops->seek_to_first(it); }
static inline void iiter_seek_to_last(lsm_iiter *it) { it->ops->seek_to_last(it); }
static inline void iiter_seek(lsm_iiter *it, lsm_slice t) { it->ops->seek(it, t); }
static inline void iiter_next(lsm_iiter *it) { it->ops->next(it); }
static inline void iiter_prev(lsm_iiter *it) { it->ops->prev(it); }
static inline lsm_slice iiter_key(lsm_iiter *it) { return it->ops->key(it); }
static inline lsm_slice iiter_value(lsm_iiter *it) { return it->ops->value(it); }
static inline int iiter_status(lsm_iiter *it) { return it->ops->status(it); }
static inline void iiter_destroy(lsm_iiter *it) { if (it) it->ops->destroy(it); }

/* An iterator over nothing, or one that only reports err (err may be 0). */
lsm_iiter *lsm_empty_iter_new(int err);             /* from iter.c; NULL on ENOMEM */

/* ---- from arena.c ------------------------------------------------------ */

typedef struct lsm_arena lsm_arena;
lsm_arena *lsm_arena_new(void);                     /* NULL on ENOMEM */
void lsm_arena_free(lsm_arena *a);
/* 8-byte aligned memory that lives as long as the arena; NULL on ENOMEM. */
void *lsm_arena_alloc(lsm_arena *a, size_t n);
size_t lsm_arena_usage(const lsm_arena *a);         /* bytes reserved, safe from any thread */

/* ---- from skiplist.c --------------------------------------------------- */

/* A skiplist of opaque entries in an arena.  One writer at a time (the caller
 * serializes inserts); any number of readers concurrently with it, without
 * locks: a node is fully built before a release-store links it in. */
typedef struct lsm_skiplist lsm_skiplist;
/* cmp compares two entries (as stored). */
typedef int (*lsm_skiplist_cmp_fn)(const void *a, const void *b);
lsm_skiplist *lsm_skiplist_new(lsm_arena *arena, lsm_skiplist_cmp_fn cmp);  /* in the arena */
/* Inserts entry (a pointer the caller allocated in the arena).  REQUIRES: no
 * equal entry is present.  Returns 0 or -ENOMEM. */
int lsm_skiplist_insert(lsm_skiplist *s, const void *entry);
/* Allocates n bytes for an entry inside a new node, right after its links,
 * so that a search touches one place in memory per node instead of two.
 * Fill the entry in, then pass it to lsm_skiplist_insert (which then cannot
 * fail) before the next call.  NULL on ENOMEM. */
void *lsm_skiplist_alloc_entry(lsm_skiplist *s, size_t n);
typedef struct lsm_skiplist_iter {
	const lsm_skiplist *list;
	const void *node;
} lsm_skiplist_iter;
void lsm_skiplist_iter_init(lsm_skiplist_iter *it, const lsm_skiplist *s);
bool lsm_skiplist_iter_valid(const lsm_skiplist_iter *it);
const void *lsm_skiplist_iter_entry(const lsm_skiplist_iter *it);
void lsm_skiplist_iter_next(lsm_skiplist_iter *it);
void lsm_skiplist_iter_prev(lsm_skiplist_iter *it);   /* O(log n) search */
/* First entry >= target (target compared with cmp, like a stored entry). */
void lsm_skiplist_iter_seek(lsm_skiplist_iter *it, const void *target);
/* First entry e with cmp(e, target) >= 0, where target may be in any form
 * cmp understands (it is always the second argument): lets a caller seek by
 * a key it has not encoded as a stored entry, with no copy. */
void lsm_skiplist_iter_seek_by(lsm_skiplist_iter *it, const void *target, lsm_skiplist_cmp_fn cmp);
void lsm_skiplist_iter_seek_to_first(lsm_skiplist_iter *it);
void lsm_skiplist_iter_seek_to_last(lsm_skiplist_iter *it);

/* ---- from memtable.c --------------------------------------------------- */

/* A memtable: internal keys and values in a skiplist in an arena.
 * Refcounted (starts at 1); the db's mutex protects who holds references, the
 * count itself is atomic.  One writer at a time, readers lock-free. */
typedef struct lsm_memtable lsm_memtable;
int lsm_memtable_new(lsm_memtable **ret_mem);
void lsm_memtable_ref(lsm_memtable *m);
void lsm_memtable_unref(lsm_memtable *m);
/* Adds ukey at seq with type (VALUE or DELETE; value ignored for DELETE).
 * Returns 0 or -ENOMEM. */
int lsm_memtable_add(lsm_memtable *m, uint64_t seq, unsigned type, lsm_slice ukey, lsm_slice value);
/* Finds the newest version of ukey with sequence <= seq.  Returns 1 and sets
 * *ret_type and *ret_value (borrowed: valid while the caller holds a
 * reference), or 0 if the memtable holds no such version. */
int lsm_memtable_get(lsm_memtable *m, lsm_slice ukey, uint64_t seq, unsigned *ret_type, lsm_slice *ret_value);
/* Approximate bytes used (arena). */
size_t lsm_memtable_usage(const lsm_memtable *m);
uint64_t lsm_memtable_entries(const lsm_memtable *m);
/* An iterator over internal keys; it holds a reference on m. */
int lsm_memtable_iter_new(lsm_memtable *m, lsm_iiter **ret_iter);

/* ---- from batch.c ------------------------------------------------------ */

/* Write-batch representation (also the WAL record payload):
 *     fixed64 sequence | fixed32 count | record*
 *     record := 0x01 varint32 klen key varint32 vlen value   (put)
 *             | 0x00 varint32 klen key                       (delete)
 *             | 0x02 varint32 klen key varint32 plen vlog_ptr (put, value in the value log)
 * Record i gets sequence + i; the tag is the entry type it becomes. */
#define LSM_BATCH_HEADER 12
struct lsm_batch {
	uint8_t *rep;       /* malloc'd, starts with the 12-byte header */
	size_t len, cap;
	uint64_t user_bytes; /* sum of key and value lengths, for statistics */
	size_t max_vlen;     /* longest value: decides whether the value log is involved */
};
uint64_t lsm_batch_seq(const lsm_batch *b);
void lsm_batch_set_seq(lsm_batch *b, uint64_t seq);
/* Appends src's records to dst (for group commit).  -ENOMEM. */
int lsm_batch_append(lsm_batch *dst, const lsm_batch *src);
/* Walks a representation (from a batch or a WAL record), calling fn for each
 * record with its sequence.  Returns 0, fn's negative return, or -EUCLEAN if
 * rep is malformed (count mismatch, truncated record, unknown tag). */
typedef int (*lsm_batch_fn)(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value);
int lsm_batch_iterate(const uint8_t *rep, size_t len, lsm_batch_fn fn, void *arg);
/* Inserts every record of rep into m.  Returns 0, -EUCLEAN, -ENOMEM. */
int lsm_batch_insert(const uint8_t *rep, size_t len, lsm_memtable *m);

/* ---- from log.c (WAL and MANIFEST framing) ----------------------------- */

/* A log file: a 16-byte header (magic "LSMLOG\0\0", fixed32 format version,
 * fixed32 kind) followed by records:
 *     fixed32 checksum | fixed32 length | payload[length]
 * checksum = lsm_checksum2(length field, payload).  Writers append whole
 * records with one write each.  WALs are version 2: the length's top bits
 * flag sync markers and records written over zeros written ahead (log.c).
 * See docs/FORMAT.md. */
#define LSM_LOG_KIND_WAL      1
#define LSM_LOG_KIND_MANIFEST 2
typedef struct lsm_log_writer lsm_log_writer;
/* Creates path (truncating), writes and syncs the header. */
int lsm_log_writer_open(lsm_env *env, const char *path, uint32_t kind, lsm_log_writer **ret_w);
/* Reopens an existing log of that kind to append at offset (the reader's
 * lsm_log_reader_offset at the end), cutting off and syncing away anything
 * beyond it.  -EINVAL if offset is outside the file, -EUCLEAN/-ENOTSUP for a
 * bad header. */
int lsm_log_writer_reopen(lsm_env *env, const char *path, uint32_t kind, uint64_t offset,
                          lsm_log_writer **ret_w);
/* Appends one record (one pwrite; over 1 MiB, header and payload are two,
 * and a crash between them leaves a torn tail).  A failure leaves the writer
 * failed: later adds and syncs return the same error.  Not thread-safe. */
int lsm_log_writer_add(lsm_log_writer *w, const void *rec, size_t len);
int lsm_log_writer_sync(lsm_log_writer *w);
uint64_t lsm_log_writer_size(const lsm_log_writer *w);
/* Closes (without syncing); returns the first error the writer saw. */
int lsm_log_writer_close(lsm_log_writer *w);

typedef struct lsm_log_reader lsm_log_reader;
/* Opens path for reading and checks the header (-ENOTSUP for another
 * version or kind, -EUCLEAN for a bad magic).  skip_corrupt: damaged records
 * are counted and skipped instead of failing. */
int lsm_log_reader_open(lsm_env *env, const char *path, uint32_t kind, bool skip_corrupt, lsm_log_reader **ret_r);
/* Returns 1 and a record borrowed until the next call; 0 at the end of the
 * log (a torn final record, cut by a crash mid-append, is dropped and counted
 * in tail_dropped); or -EBADMSG/-EUCLEAN when a record before the tail is
 * damaged, with lsm_last_error() naming the file and offset. */
int lsm_log_reader_next(lsm_log_reader *r, lsm_slice *ret_rec);
uint64_t lsm_log_reader_offset(const lsm_log_reader *r);        /* end of the last good record */
/* Where the record the last lsm_log_reader_next returned starts (its
 * header): the offset that messages about that record name, as the
 * reader's own do. */
uint64_t lsm_log_reader_record_offset(const lsm_log_reader *r);
uint64_t lsm_log_reader_tail_dropped(const lsm_log_reader *r);  /* bytes of torn tail */
/* Zeros that end the log (written ahead, or never written): not a tear. */
uint64_t lsm_log_reader_zero_fill(const lsm_log_reader *r);
uint64_t lsm_log_reader_skipped(const lsm_log_reader *r);       /* damaged records skipped */
void lsm_log_reader_close(lsm_log_reader *r);

/* ---- from cache.c ------------------------------------------------------ */

/* A sharded LRU cache with a byte budget.  Entries are refcounted: a handle
 * from insert or lookup pins the entry until released, and an entry evicted or
 * erased while pinned is freed (through its deleter) at the last release.
 * Thread-safe. */
typedef struct lsm_cache lsm_cache;
typedef struct lsm_cache_handle lsm_cache_handle;
typedef void (*lsm_cache_deleter)(const void *key, size_t klen, void *value);
int lsm_cache_new(size_t capacity, lsm_cache **ret_cache);
void lsm_cache_free(lsm_cache *c);   /* REQUIRES: no handle outstanding */
/* Inserts key -> value (replacing an older entry) and returns a pinned
 * handle; never fails for lack of room (the cache may exceed its budget while
 * entries are pinned).  NULL on ENOMEM, in which case the deleter has been
 * called. */
lsm_cache_handle *lsm_cache_insert(lsm_cache *c, const void *key, size_t klen, void *value,
                                   size_t charge, lsm_cache_deleter deleter);
/* A pinned handle, or NULL if absent.  Counts a hit or a miss. */
lsm_cache_handle *lsm_cache_lookup(lsm_cache *c, const void *key, size_t klen);
void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h);
void *lsm_cache_value(lsm_cache_handle *h);
void lsm_cache_erase(lsm_cache *c, const void *key, size_t klen);
/* A fresh id for namespacing keys (each table reader takes one). */
uint64_t lsm_cache_new_id(lsm_cache *c);
void lsm_cache_stats(lsm_cache *c, uint64_t *ret_hits, uint64_t *ret_misses, size_t *ret_usage);

/* ---- from block.c ------------------------------------------------------ */

/* Data and index blocks: prefix-compressed entries with restart points.
 *     entry := varint32 shared | varint32 unshared | varint32 vlen | key_delta | value
 *     block := entry* | fixed32 restart[n] | fixed32 n
 * Keys at restart points have shared == 0. */
typedef struct lsm_block_builder lsm_block_builder;
int lsm_block_builder_new(int restart_interval, lsm_block_builder **ret_b);
void lsm_block_builder_free(lsm_block_builder *b);
/* REQUIRES: key > every key added since the last reset. */
int lsm_block_builder_add(lsm_block_builder *b, lsm_slice key, lsm_slice value);
/* Bytes the finished block would take. */
size_t lsm_block_builder_estimate(const lsm_block_builder *b);
bool lsm_block_builder_empty(const lsm_block_builder *b);
/* Appends the restart array and returns the whole block, borrowed until reset. */
lsm_slice lsm_block_builder_finish(lsm_block_builder *b);
void lsm_block_builder_reset(lsm_block_builder *b);

/* Buffers for blocks: malloc'd memory of at least n bytes (NULL on ENOMEM),
 * perhaps one recently given back.  Either free() or lsm_block_buf_free()
 * releases one; the latter keeps a few for reuse.  An owned block's bytes go
 * back through lsm_block_buf_free when it is freed.  Thread-safe. */
void *lsm_block_buf_alloc(size_t n);
void lsm_block_buf_free(void *p);

/* A parsed block over bytes the caller keeps alive (owned by a cache entry
 * or malloc'd: see lsm_block_new's `owned`). */
typedef struct lsm_block lsm_block;
/* Validates the restart array.  With owned, the block frees data when freed.
 * -EUCLEAN if malformed. */
int lsm_block_new(const uint8_t *data, size_t len, bool owned, lsm_block **ret_block);
/* Full check of the restart array against the entries (lsm_block_new only
 * checks its bounds and order): every restart point starts an entry that
 * shares no key bytes.  0 or -EUCLEAN. */
int lsm_block_verify_restarts(const lsm_block *b);
void lsm_block_free(lsm_block *b);
size_t lsm_block_size(const lsm_block *b);
/* An iterator over the block's entries in cmp order.  The block must outlive
 * it.  Malformed entries make it invalid with -EUCLEAN. */
int lsm_block_iter_new(const lsm_block *b, lsm_cmp_fn cmp, lsm_iiter **ret_iter);
/* Points an iterator from lsm_block_iter_new at another block (it is then
 * invalid until positioned), keeping its comparator and buffers: a table
 * iterator moving from block to block allocates nothing. */
void lsm_block_iter_reset(lsm_iiter *it, const lsm_block *b);
/* Point lookup without allocating an iterator: finds the first entry >=
 * target and calls fn(arg, key, value) on it (both borrowed for the call).
 * Returns 1 if there was one, 0 if every key is < target, -EUCLEAN if the
 * block is malformed, -ENOMEM. */
typedef void (*lsm_block_entry_fn)(void *arg, lsm_slice key, lsm_slice value);
/* lsm_ikey_cmp made safe for keys read from disk (one shorter than a trailer
 * compares bytewise: a wrong order, never a wild read).  Block iterators
 * given this comparator use an inlined copy of it. */
int lsm_block_ikey_cmp(lsm_slice a, lsm_slice b);
int lsm_block_seek_get(const lsm_block *b, lsm_cmp_fn cmp, lsm_slice target,
                       lsm_block_entry_fn fn, void *arg);

/* ---- from bloom.c ------------------------------------------------------ */

/* Bloom filters over user keys: bits_per_key bits per key, k = bits * ln2
 * probes by double hashing of lsm_hash64.  Layout: bit array | k (1 byte). */
typedef struct lsm_bloom_builder lsm_bloom_builder;
int lsm_bloom_builder_new(int bits_per_key, lsm_bloom_builder **ret_b);
void lsm_bloom_builder_free(lsm_bloom_builder *b);
int lsm_bloom_builder_add(lsm_bloom_builder *b, lsm_slice key);
/* A malloc'd filter the caller frees. */
int lsm_bloom_builder_finish(lsm_bloom_builder *b, uint8_t **ret_filter, size_t *ret_len);
/* false means key was certainly not added; a malformed filter answers true. */
bool lsm_bloom_may_contain(const uint8_t *filter, size_t len, lsm_slice key);

/* ---- from compress.c --------------------------------------------------- */

/* Every block on disk is followed by a 5-byte trailer:
 *     uint8 compression (0 none, 1 lz4) | fixed32 checksum
 * with checksum = lsm_checksum over the stored block bytes and the type byte.
 * A block compressed with LZ4 is stored as varint32 uncompressed_len | lz4 data,
 * and only when that saves at least 1/8 of its size. */
#define LSM_BLOCK_TRAILER 5
/* Appends the stored form of raw (compressed or not) plus trailer to *buf
 * (grown with realloc).  Returns 0 or -ENOMEM. */
int lsm_block_encode(lsm_slice raw, int compression, uint8_t **buf, size_t *len, size_t *cap);
/* Verifies the trailer of stored (which includes it) and returns the raw
 * block in a malloc'd *ret_raw.  -EBADMSG on checksum mismatch, -EUCLEAN on a
 * bad type or size; the caller adds file and offset to the message. */
int lsm_block_decode(lsm_slice stored, uint8_t **ret_raw, size_t *ret_len);
/* As lsm_block_decode, but consumes the malloc'd stored buffer (of len bytes,
 * trailer included): an uncompressed block comes back as that same buffer,
 * with no copy; otherwise it is freed.  On failure it is freed too. */
int lsm_block_decode_owned(uint8_t *stored, size_t len, uint8_t **ret_raw, size_t *ret_len);
/* Blocks larger than this are stored uncompressed, and a compressed block
 * claiming more is corrupt. */
#define LSM_BLOCK_MAX_RAW (64u << 20)

/* ---- from sst_build.c / sst_read.c ------------------------------------- */

/* SSTable: data blocks | filter block | index block | footer.
 * Index entries map a separator key >= every key of a block (and < every key
 * of the next) to the block's handle: varint64 offset | varint64 size (size
 * without the trailer).  The footer is 48 bytes:
 *     fixed64 filter offset | fixed32 filter size | fixed32 index size |
 *     fixed64 index offset | fixed32 data block count | fixed32 checksum |
 *     fixed64 entry count | fixed32 format version | fixed32 magic
 * (exact layout at the top of sst_build.c; see FORMAT.md). */
#define LSM_SST_FOOTER 48
#define LSM_SST_MAGIC  0x54534d4cu   /* "LMST" */
#define LSM_SST_VERSION 1

typedef struct lsm_sst_builder lsm_sst_builder;
/* Creates path and prepares to add entries (internal keys, ascending). */
int lsm_sst_builder_new(lsm_env *env, const char *path, const lsm_options *opt, lsm_sst_builder **ret_b);
int lsm_sst_builder_add(lsm_sst_builder *b, lsm_slice ikey, lsm_slice value);
uint64_t lsm_sst_builder_file_size(const lsm_sst_builder *b);  /* bytes so far */
uint64_t lsm_sst_builder_entries(const lsm_sst_builder *b);
/* Writes the filter, index and footer, syncs and closes.  Frees b always. */
int lsm_sst_builder_finish(lsm_sst_builder *b, uint64_t *ret_file_size);
/* Closes and frees without finishing; the caller removes the file. */
void lsm_sst_builder_abandon(lsm_sst_builder *b);

typedef struct lsm_sst lsm_sst;
/* Opens a table: reads and verifies footer, index and filter.  cache (may be
 * NULL) caches data blocks.  file_size 0 asks the env for the size.
 * -EBADMSG/-EUCLEAN/-ENOTSUP naming path. */
int lsm_sst_open(lsm_env *env, const char *path, uint64_t file_size, lsm_cache *cache, lsm_sst **ret_sst);
/* The same, reading blocks through a read-only mapping when mmap_reads and
 * the env supports it: no system call per block, but a file truncated or
 * failing under the mapping raises SIGBUS instead of an error. */
int lsm_sst_open_mapped(lsm_env *env, const char *path, uint64_t file_size, lsm_cache *cache, bool mmap_reads,
                        lsm_sst **ret_sst);
void lsm_sst_close(lsm_sst *t);
/* Point lookup of lookup_ikey (user key | seq trailer).  If the bloom filter
 * rules the user key out returns 0.  Otherwise finds the first entry >=
 * lookup_ikey; if its user key matches calls fn(arg, ikey, value) and returns
 * 1; else 0.  Negative errno on I/O or corruption. */
typedef void (*lsm_sst_found_fn)(void *arg, lsm_slice ikey, lsm_slice value);
int lsm_sst_get(lsm_sst *t, lsm_slice lookup_ikey, bool fill_cache, lsm_sst_found_fn fn, void *arg);
/* An iterator over the whole table.  The table must outlive it. */
int lsm_sst_iter_new(lsm_sst *t, bool fill_cache, lsm_iiter **ret_iter);
/* The same, holding pin (a handle of pin_cache that keeps t open), which it
 * releases when destroyed, also on failure here. */
int lsm_sst_iter_new_pinned(lsm_sst *t, bool fill_cache, lsm_cache *pin_cache, lsm_cache_handle *pin,
                            lsm_iiter **ret_iter);
uint64_t lsm_sst_entries(const lsm_sst *t);
/* Verifies every block checksum and the key order (for fsck / tests). */
int lsm_sst_verify(lsm_sst *t);

/* ---- from table_cache.c ------------------------------------------------ */

/* A bounded LRU of open SSTables keyed by file number (an lsm_cache with one
 * unit of charge per table). */
typedef struct lsm_table_cache lsm_table_cache;
int lsm_table_cache_new(lsm_env *env, const char *dir, int max_open, lsm_cache *block_cache,
                        lsm_table_cache **ret_tc);
void lsm_table_cache_free(lsm_table_cache *tc);
/* Tables opened from now on read through mmap (see lsm_sst_open_mapped). */
void lsm_table_cache_set_mmap(lsm_table_cache *tc, bool mmap_reads);
int lsm_table_cache_get(lsm_table_cache *tc, uint64_t number, uint64_t size, lsm_slice lookup_ikey,
                        bool fill_cache, lsm_sst_found_fn fn, void *arg);
/* The iterator keeps the table pinned until destroyed. */
int lsm_table_cache_iter(lsm_table_cache *tc, uint64_t number, uint64_t size, bool fill_cache,
                         lsm_iiter **ret_iter);
void lsm_table_cache_evict(lsm_table_cache *tc, uint64_t number);

/* ---- from iter.c ------------------------------------------------------- */

/* Merges n children (ownership passes to the merged iterator) in cmp order;
 * equal keys come out in child order.  Moves in both directions. */
int lsm_merge_iter_new(lsm_iiter **children, int n, lsm_cmp_fn cmp, lsm_iiter **ret_iter);

/* The user-visible view over a merged internal iterator: for each user key
 * the newest version with sequence <= seq, skipping keys whose newest such
 * version is a deletion.  key() returns the user key.  Takes ownership of
 * internal.  cleanup(arg) runs at destroy (releasing versions, memtables). */
int lsm_db_iter_new(lsm_iiter *internal, uint64_t seq, void (*cleanup)(void *arg), void *arg,
                    lsm_iiter **ret_iter);
/* REQUIRES: valid.  LSM_TYPE_VALUE, or LSM_TYPE_VPTR when value() is a
 * value-log pointer the caller must resolve. */
unsigned lsm_db_iter_value_type(lsm_iiter *it);
/* Read sampling, as LevelDB's: every LSM_READ_SAMPLE_PERIOD bytes of keys and
 * values read on average, sample(arg, internal key of the entry) is called,
 * so the caller can charge the tables that overlap there (see allowed_seeks).
 * seed must differ from iterator to iterator (a counter will do): with equal
 * seeds, short scans would all sample at the same place, or never. */
#define LSM_READ_SAMPLE_PERIOD (1 << 20)
void lsm_db_iter_set_sampler(lsm_iiter *it, void (*sample)(void *arg, lsm_slice ikey), void *arg, uint64_t seed);

/* ---- file names (from filename.c) -------------------------------------- */

enum lsm_file_type {
	LSM_FILE_UNKNOWN, LSM_FILE_WAL, LSM_FILE_SST, LSM_FILE_MANIFEST,
	LSM_FILE_CURRENT, LSM_FILE_LOCK, LSM_FILE_TEMP, LSM_FILE_VLOG,
};
/* Writes dir/NNNNNN.wal etc. into buf (PATH_MAX). */
void lsm_filename(char *buf, size_t n, const char *dir, enum lsm_file_type type, uint64_t number);
/* Parses a directory entry name. */
enum lsm_file_type lsm_parse_filename(const char *name, uint64_t *ret_number);

#endif
