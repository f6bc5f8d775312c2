/*
 * vlog.h - the value log: append-only segment files that hold large values
 * out of line (WiscKey), so that compaction moves a small pointer instead of
 * the value.  This module is a leaf below lsm/: keys are opaque bytes stored
 * next to each value so that garbage collection and fsck can tell whose value
 * a record is, but liveness, garbage accounting and GC policy belong to the
 * engine.  A segment is dir/NNNNNN.vlog, numbered from the engine's file
 * number space through a callback; the byte layout is at the top of vlog.c.
 *
 * Thread safety: a vlog may be used from any number of threads at once
 * (except vlog_close).  Appends, flushes and roll-overs serialize on one
 * internal mutex (the engine's write leader is normally the only appender,
 * so it is uncontended).  vlog_sync serializes with other syncs and with
 * removals, but not with appends: it does its fsyncs with the append mutex
 * released.  Reads take neither, and scans the append mutex only for a
 * moment, so both run concurrently with everything.
 *
 * Conventions:
 *   1. Errors: functions returning int return 0 (or a count >= 0) on success
 *      and a negative errno on failure: -EINVAL misuse, -ENOENT no such
 *      segment, -EBUSY the active segment cannot be removed, -EBADMSG a
 *      checksum mismatch, -EUCLEAN structural damage (a truncated record, a
 *      pointer that does not match its record, a segment named by a pointer
 *      that is missing), -ENOTSUP an unknown segment format version, -EROFS
 *      after a failed sync (see vlog_sync), -EIO, -ENOSPC, -ENOMEM.
 *      lsm_last_error() (util/errmsg.h) gives the text, which names the
 *      segment file and the record's offset for every corruption.
 *   2. Keys and values are pointer + length pairs; NULL is allowed with
 *      length 0.  The log copies what it keeps.
 *   3. Ownership: vlog_read's outputs are malloc'd and the caller free()s
 *      them; vlog_scan's key and value are borrowed for the duration of one
 *      callback.  vlog_open has one vlog_close, which accepts NULL.
 *   4. Visibility and durability: vlog_append copies small records into a
 *      write buffer and returns their pointers at once.  vlog_flush hands
 *      the buffer to the OS with one pwrite: a pointer may be read (and
 *      stored where another thread can find it) only after a vlog_flush or
 *      vlog_sync that follows its append has returned 0, and the record then
 *      survives a crash of the process.  vlog_sync also fsyncs, so the
 *      record survives power loss.  An engine appends a group's values,
 *      calls vlog_flush once, then writes its WAL; with a synced write it
 *      calls vlog_sync before syncing the WAL, so a durable WAL record never
 *      points at a lost value; and it calls vlog_sync before it deletes a
 *      WAL whose pointers now live in an SSTable (rolled-over segments wait
 *      for that sync with their files open).
 *   5. If vlog_append, vlog_flush or vlog_sync fails, every pointer returned
 *      since the last successful vlog_flush/vlog_sync is void: its record
 *      may or may not be in the file, and must not be used.
 *   6. The env outlives the vlog.
 */
#ifndef VLOG_H
#define VLOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lsm_env lsm_env;   /* util/env.h */
typedef struct vlog vlog;

/* Where one record lives: segment file number, byte offset of the record,
 * and the length of the whole record on disk (header, key and value), so
 * that a read is a single pread. */
struct vlog_ptr {
	uint64_t segment;
	uint64_t offset;
	uint32_t length;
};

/* The longest encoded pointer: three varints. */
#define VLOG_PTR_MAX_ENCODED 25

/* Encodes ptr as varint64 segment | varint64 offset | varint32 length into
 * buf (which must hold VLOG_PTR_MAX_ENCODED bytes).  Returns the bytes
 * written (typically 8 to 11). */
size_t vlog_ptr_encode(const struct vlog_ptr *ptr, uint8_t *buf);

/* Decodes exactly len bytes of buf into *ret.  Returns 0, or -EUCLEAN (with
 * a message) if the bytes are truncated, run on past the pointer, or name an
 * impossible record (segment 0, an offset inside the segment header, a
 * length shorter than the smallest record). */
int vlog_ptr_decode(const void *buf, size_t len, struct vlog_ptr *ret);

typedef struct vlog_options {
	uint64_t segment_size;       /* a segment rolls over before a record would take it past
	                                this many bytes (a record larger than this gets a segment
	                                of its own).  At least 4096.  Default: 64 MiB */
	int max_open_segments;       /* read handles kept open, least recently used first out.
	                                At least 1.  Default: 64 */
} vlog_options;

/* Fills opt with the defaults documented above. */
void vlog_options_init(vlog_options *opt);

/* Opens the value log in directory dir (which must exist), listing the
 * segments already there.  Existing segments are read-only: the first
 * append starts a new segment, numbered by new_file_number(arg), which must
 * return a number that no file in dir uses (never 0).  It is called with the
 * append mutex held, from inside vlog_append, so it must not call into this
 * vlog.  env may be NULL for the POSIX env; opt may be NULL for the defaults.
 * Returns 0 and *ret_v, or -EINVAL (bad option), -ENOENT (no dir), -EIO,
 * -ENOMEM. */
int vlog_open(lsm_env *env, const char *dir, const vlog_options *opt,
              uint64_t (*new_file_number)(void *arg), void *arg, vlog **ret_v);

/* Seals the active segment (see vlog.c), syncs everything appended, closes
 * every file and frees v, even on error.  Returns the first error of that
 * sync, or of an earlier failed sync, or 0.  REQUIRES: no other thread is
 * using v. */
int vlog_close(vlog *v);

/* Appends the record {key, value} and sets *ret_ptr to it.  Values shorter
 * than 128 KiB are copied into the write buffer (which vlog_append flushes
 * by itself when it reaches 1 MiB); longer ones are written at once from the
 * caller's memory, after the buffer, with no copy.  Rolls to a new segment
 * first when the record would take the active one past segment_size.
 * Returns 0, or -EINVAL (record over 4 GiB, or new_file_number gave 0),
 * -EEXIST (a file already has the new segment's number), -EROFS (after a
 * failed sync), -EIO, -ENOSPC, -ENOMEM.  See conventions 4 and 5: the pointer becomes
 * readable at the next successful vlog_flush or vlog_sync. */
int vlog_append(vlog *v, const void *key, size_t klen, const void *value, size_t vlen,
                struct vlog_ptr *ret_ptr);

/* Hands buffered records to the OS with one pwrite.  Cheap when there is
 * nothing buffered.  A failed write is cut back off the file (or, if that
 * fails too, the segment is left behind and the next append starts a new
 * one), so the log stays usable.  Returns 0, -EROFS, -EIO, -ENOSPC. */
int vlog_flush(vlog *v);

/* Flushes, then makes every record appended so far durable: fsyncs the
 * active segment and any segment rolled over since the last sync, and the
 * directory if a segment was created since then.  Appends made by other
 * threads while it runs proceed, and are not covered.  A failed sync leaves the
 * OS's copy of the data in doubt, so from then on appends, flushes and syncs
 * fail with -EROFS (reads still work).  Returns 0, the sync's error, or
 * -EROFS. */
int vlog_sync(vlog *v);

/* Reads the record ptr names with one pread and verifies its checksum and
 * that it is the whole record the pointer describes.  Returns 0 with the
 * value in *ret_val (malloc'd, never NULL, even for an empty value) and its
 * length in *ret_vlen; if ret_key is not NULL, the key likewise in *ret_key
 * and *ret_klen.  Errors: -EBADMSG (checksum mismatch), -EUCLEAN (record
 * truncated, pointer does not match the record, segment missing), -ENOTSUP
 * (segment header of an unknown version), -EINVAL (NULL ptr or output),
 * -EIO, -ENOMEM.  Messages name the segment file and the offset. */
int vlog_read(vlog *v, const struct vlog_ptr *ptr, void **ret_key, size_t *ret_klen,
              void **ret_val, size_t *ret_vlen);

/* Tells whether the record ptr names is there, whole and intact: 1 if so, 0
 * if not (segment missing, record cut short or past the end of the file, or
 * failing its checksum; lsm_last_error() says which), or a negative errno
 * when it cannot tell (-EIO, -ENOMEM, -ENOTSUP).  An engine calls it while
 * replaying its WAL after a crash, to drop writes whose values did not
 * survive.  It reads the whole record, so it costs as much as vlog_read. */
int vlog_verify_ptr(vlog *v, const struct vlog_ptr *ptr);

/* Called by vlog_scan once per value record.  key, value and ptr are
 * borrowed until it returns.  Return 0 to go on, > 0 to stop the scan
 * cleanly, < 0 to stop it with that error. */
typedef int (*vlog_scan_fn)(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen,
                            const void *value, size_t vlen);

struct vlog_scan_result {
	uint64_t records;            /* value records passed to fn */
	uint64_t end;                /* offset past the last whole record (or the header) */
	uint64_t tail_dropped;       /* bytes after end taken for the torn tail of a crash */
	int sealed;                  /* 1 if the segment ends with a seal record */
};

/* Reads segment record by record, in order, calling fn for each, and
 * verifying each checksum.  A sealed segment (rolled over or closed
 * cleanly) and the active one must be whole: any bad record is -EBADMSG or
 * -EUCLEAN naming the offset.  In an unsealed one (it was being appended to
 * when the process died) a bad last record, or one followed only by zero
 * bytes, is the torn tail of a crash: the scan ends cleanly there and says
 * how much it dropped; a bad record with good data after it is damage.  The
 * active segment is scanned up to what was flushed when the scan began.
 * ret_result may be NULL.  Returns 0, fn's negative return, -ENOENT (no such
 * segment file), -EBADMSG, -EUCLEAN, -ENOTSUP, -EIO, -ENOMEM. */
int vlog_scan(vlog *v, uint64_t segment, vlog_scan_fn fn, void *arg,
              struct vlog_scan_result *ret_result);

/* Deletes segment's file and syncs the directory.  Readers that already
 * hold the file open finish their reads; later reads through a pointer into
 * it fail with -EUCLEAN.  Returns 0, -EBUSY (the active segment), -ENOENT
 * (not a segment of this log), or the unlink/sync_dir error (after a failed
 * sync_dir the segment is gone from the listing but may come back after a
 * crash). */
int vlog_remove_segment(vlog *v, uint64_t segment);

#define VLOG_SEGMENT_ACTIVE 0x1      /* being appended to */
#define VLOG_SEGMENT_SEALED 0x2      /* ends with a seal record: complete */

struct vlog_segment_info {
	uint64_t segment;            /* file number */
	uint64_t size;               /* bytes in the file (for the active one: flushed bytes) */
	uint64_t records;            /* value records, for active and sealed segments; else 0 */
	unsigned flags;              /* VLOG_SEGMENT_* */
};

/* Lists the segments in ascending number order as a malloc'd array the
 * caller frees (NULL when there are none) and its length.  Returns 0 or
 * -ENOMEM. */
int vlog_segments(vlog *v, struct vlog_segment_info **ret_segs, size_t *ret_n);

/* The number of the segment appends go to, or 0 before the first append
 * (and after a failed roll). */
uint64_t vlog_active_segment(vlog *v);

/* Seals the active segment now (if there is one), so that the next append
 * starts a new segment and the sealed one can be collected.  Returns 0, or
 * the errors of vlog_flush. */
int vlog_roll(vlog *v);

#ifdef __cplusplus
}
#endif

#endif
