/*
 * vlog_int.h - what the files of vlog/ share: the on-disk constants (the
 * layout itself is documented in vlog.c), the record header codec, the vlog
 * struct, and prototypes grouped by the file that defines them.  Not part of
 * the public API (vlog.h).
 */
#ifndef VLOG_INT_H
#define VLOG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlog.h"
#include "../util/coding.h"
#include "../util/env.h"
#include "../util/errmsg.h"

/* ---- on-disk constants (see vlog.c) ------------------------------------ */

#define VLOG_MAGIC "LSMVLOG\0"
#define VLOG_VERSION 1
#define VLOG_HEADER_SIZE 24          /* magic 8 | version 4 | segment 8 | checksum 4 */
#define VLOG_TYPE_VALUE 1
#define VLOG_TYPE_SEAL 2
#define VLOG_REC_MIN 7               /* checksum 4 | type 1 | klen 1 | vlen 1 */
#define VLOG_REC_HEADER_MAX 15       /* checksum 4 | type 1 | two varint32 */
#define VLOG_SEAL_PAYLOAD 16         /* fixed64 records | fixed64 offset of the seal */
#define VLOG_SEAL_SIZE (VLOG_REC_MIN + VLOG_SEAL_PAYLOAD)

/* ---- tuning ------------------------------------------------------------ */

#define VLOG_BUF_SIZE (1u << 20)     /* the write buffer is flushed before it passes this */
#define VLOG_DIRECT_MIN (128u << 10) /* values this long skip the buffer (no copy) */
#define VLOG_MAX_UNSYNCED 8          /* rolled segments awaiting vlog_sync; beyond, a roll syncs the oldest */
#define VLOG_PATH_MAX 4096

/* A parsed record header. */
struct vlog_rec {
	unsigned type;
	uint32_t klen, vlen;
	size_t hlen;                 /* checksum + type + varints */
	uint64_t len;                /* hlen + klen + vlen */
};

/* Writes type and both varints at hdr + 4 (the checksum goes in hdr[0..4)
 * later).  Returns the header length.  hdr holds VLOG_REC_HEADER_MAX. */
static inline size_t vlog_rec_header(uint8_t *hdr, unsigned type, uint32_t klen, uint32_t vlen)
{
	uint8_t *p = hdr + 4;
	*p++ = (uint8_t)type;
	p = put_varint32(p, klen);
	p = put_varint32(p, vlen);
	return (size_t)(p - hdr);
}

#define VLOG_PARSE_OK 0
#define VLOG_PARSE_SHORT 1           /* the n bytes end inside the header */
#define VLOG_PARSE_BAD 2             /* not a record header */

/* Parses the record header in p[0..n).  Returns VLOG_PARSE_*. */
int vlog_rec_parse(const uint8_t *p, size_t n, struct vlog_rec *ret);

/* A segment the log knows of.  Protected by vlog->mu. */
struct vlog_seg {
	uint64_t number;
	uint64_t size;               /* bytes in the file, when not active */
	uint64_t records;            /* when sealed */
	unsigned flags;              /* VLOG_SEGMENT_SEALED; ACTIVE is derived */
};

/* A rolled-over segment whose tail vlog_sync still has to make durable;
 * its file stays open until then. */
struct vlog_unsynced {
	uint64_t number;
	lsm_file *file;
	struct vlog_unsynced *next;  /* the next younger one */
};

typedef struct vlog_fcache vlog_fcache;

struct vlog {
	lsm_env *env;
	char *dir;
	vlog_options opt;
	uint64_t (*new_file_number)(void *arg);
	void *arg;

	pthread_mutex_t sync_mu;     /* serializes vlog_sync, removal and close; taken before mu */
	pthread_mutex_t mu;          /* serializes appends, flushes, rolls; not held across fsync */
	/* The active segment; all protected by mu. */
	lsm_file *active;            /* NULL before the first append and after a failed roll */
	struct vlog_unsynced *active_node; /* its place on the unsynced list, for the roll */
	uint64_t active_number;      /* 0 when active is NULL */
	uint64_t end;                /* bytes of the active segment handed to the OS */
	uint64_t records;            /* value records below end */
	bool broken;                 /* a failed write could not be cut back: roll, do not seal */
	uint8_t *buf;                /* write buffer: records after end, not yet written */
	size_t buf_len, buf_cap;
	uint64_t buf_records;
	struct vlog_unsynced *unsynced, **unsynced_tail; /* oldest first */
	int nunsynced;
	bool syncing;                /* a vlog_sync is fsyncing with mu dropped: see append.c */
	bool dir_dirty;              /* a segment was created since the last vlog_sync */
	int err;                     /* first failed sync: later writes get -EROFS */
	struct vlog_seg *segs;       /* ascending by number */
	size_t nsegs, cap_segs;

	vlog_fcache *fc;             /* read handles; its own lock */
};

/* ---- from vlog.c ------------------------------------------------------- */

/* dir/NNNNNN.vlog into buf (VLOG_PATH_MAX).  Returns 0 or -ENAMETOOLONG. */
int vlog_segment_path(const char *dir, uint64_t number, char *buf);
/* Encodes a segment header into p (VLOG_HEADER_SIZE bytes). */
void vlog_header_encode(uint8_t *p, uint64_t number);
/* Checks a segment header read from path.  Returns 0, -EUCLEAN (bad magic
 * or wrong segment id), -EBADMSG (checksum), -ENOTSUP (version). */
int vlog_header_check(const uint8_t *p, uint64_t number, const char *path);
/* Whether file (size bytes) ends with a valid seal; sets *ret_records. */
int vlog_probe_seal(lsm_env *env, lsm_file *f, uint64_t size, uint64_t *ret_records);
/* The segment table.  REQUIRES: v->mu held. */
struct vlog_seg *vlog_seg_find(vlog *v, uint64_t number);
int vlog_seg_reserve(vlog *v);

/* ---- from append.c ----------------------------------------------------- */

/* Seals and syncs what the log holds (unless a sync failed before), then
 * closes every file the write side has open.  Returns the first error.
 * REQUIRES: v->sync_mu and v->mu held, no other thread using v. */
int vlog_append_shutdown(vlog *v);
/* Closes the unsynced file of removed segment number, if there is one and
 * no sync is using it.  REQUIRES: v->sync_mu and v->mu held. */
void vlog_append_forget(vlog *v, uint64_t number);

/* ---- from fcache.c ----------------------------------------------------- */

/* An open read handle on one segment, refcounted.  */
struct vlog_fentry;

int vlog_fcache_new(lsm_env *env, const char *dir, int cap, vlog_fcache **ret_fc);
void vlog_fcache_free(vlog_fcache *fc);
/* A pinned handle on segment number, opened (and its header checked) on a
 * miss.  Returns 0, -ENOENT (no such file), or the header's or open's error. */
int vlog_fcache_get(vlog_fcache *fc, uint64_t number, struct vlog_fentry **ret_e);
lsm_file *vlog_fcache_file(const struct vlog_fentry *e);
void vlog_fcache_put(vlog_fcache *fc, struct vlog_fentry *e);
/* Drops number from the cache (its file closes once no reader holds it) and
 * keeps a reader that opened it before the drop from caching it. */
void vlog_fcache_evict(vlog_fcache *fc, uint64_t number);

#endif
