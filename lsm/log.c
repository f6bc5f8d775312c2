/*
 * log.c - the record framing shared by the WAL and the MANIFEST: a writer
 * that appends checksummed records, and a reader that gives them back and
 * decides, at the end of the file, what is a crash's torn tail and what is
 * damage.  What the records mean is the business of db.c and manifest.c.
 *
 * Format (little-endian):
 *     log    := header record* zero-fill?
 *     header := "LSMLOG\0\0" | fixed32 version | fixed32 kind     (16 bytes)
 *     record := fixed32 checksum | fixed32 length | payload[length, flag bits cleared]
 *     checksum = lsm_checksum2(the 4 length bytes, payload)
 *
 * Version 1 (the MANIFEST, and WALs of older stores) appends every record at
 * the end of the file, so a crash can only damage the last record: the
 * file's size is metadata, which the filesystem makes durable only after the
 * data it covers.  The reader treats as a torn tail (dropped, counted in
 * tail_dropped, end of log): fewer than 8 bytes left; a length that runs
 * past the end of the file; a checksum mismatch on a record that ends at the
 * end of the file or is followed only by zero bytes.  Any other checksum
 * mismatch, or a length over LOG_MAX_RECORD, is damage: -EBADMSG naming the
 * file and the record's offset, unless the reader was opened with
 * skip_corrupt.
 *
 * Version 2 (WALs) lets a writer that syncs write zeros ahead of its records
 * (LOG_PREFILL at a time, in the same sync), so that the records which follow
 * overwrite blocks the file already has and a sync of them writes no
 * metadata: on ext4 an fdatasync after an overwrite costs half of one after
 * an append, which is what a small fsync'd write pays.  But then the pages of
 * records written since the last sync may reach the disk in any order, and a
 * crash can leave an unsynced record torn with a later one whole.  So the
 * first record after each sync is preceded by a sync marker (bit 31 of the
 * length; an 8-byte payload: how far the sync reached), which the reader
 * consumes, and every record written over zeros has bit 30 of its length
 * set.  A bad record with a marker behind it was covered by that sync:
 * damage.  A bad record whose next good record went over zeros, with no
 * marker between, is the torn tail of a crash (nothing from there on was
 * ever synced); otherwise the version-1 rules decide.  Markers cost 16 bytes
 * per sync that more records follow, and nothing in a log never synced.
 *
 * In both, a zero header followed only by zeros ends the log (space written
 * ahead, or extended by the filesystem and never written; not counted as
 * torn), and a file shorter than the header that holds a prefix of it (or
 * zeros) is an empty log: a crash inside lsm_log_writer_open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

#define LOG_MAGIC "LSMLOG\0\0"
#define LOG_VERSION_APPEND 1     /* records only appended */
#define LOG_VERSION_SYNCED 2     /* sync markers; zeros written ahead */
#define LOG_HEADER 16
#define LOG_REC_HEADER 8
/* Version 2: the length bits of a sync marker and of a record written over
 * zeros, the longest record that leaves them free, and a marker's size. */
#define LOG_MARKER_BIT (1u << 31)
#define LOG_ZEROS_BIT (1u << 30)
#define LOG_MAX_RECORD_V2 (LOG_ZEROS_BIT - 1)
#define LOG_MARKER_PAYLOAD 8
#define LOG_MARKER_SIZE (LOG_REC_HEADER + LOG_MARKER_PAYLOAD)
/* Zeros a version-2 writer writes ahead at a sync that finds less than half
 * of this left: at most one extra filesystem commit per LOG_PREFILL bytes
 * of records, and never for a log that is not synced. */
#define LOG_PREFILL (1u << 20)
/* The largest payload either side accepts: a write batch holding a maximal
 * value (LSM_MAX_VALUE) and then some.  A longer length is damage. */
#define LOG_MAX_RECORD (1u << 30)
/* Records up to this size are framed in the scratch buffer and written with
 * one pwrite; longer ones are written as header then payload (see add). */
#define LOG_SCRATCH_MAX (1u << 20)
/* The reader's window: the file is read in chunks of this size. */
#define LOG_WINDOW (256u * 1024)

struct lsm_log_writer {
	lsm_env *env;
	lsm_file *file;
	char *path;              /* for error messages */
	uint32_t version;        /* LOG_VERSION_* */
	uint64_t size;           /* end of the records: where the next one goes */
	uint64_t filled;         /* end of the file (records, then zeros) */
	uint64_t synced;         /* size at the last successful sync */
	uint64_t syncs;          /* successful syncs */
	bool over_zeros;         /* the last sync wrote zeros ahead */
	bool need_marker;        /* version 2: a sync since the last record */
	int err;                 /* first failure; sticky */
	uint8_t *scratch;        /* header + payload of small records */
	size_t scratch_cap;
};

struct lsm_log_reader {
	lsm_env *env;
	lsm_file *file;
	char *path;
	uint64_t file_size;
	uint32_t version;
	bool rec_marker;         /* the last record checked is a sync marker */
	bool rec_zeros;          /* ... went over zeros written ahead */
	uint64_t rec_synced;     /* a marker's payload */
	bool skip_corrupt;
	int err;                 /* a returned error; sticky */
	uint8_t *buf;            /* window over the file */
	size_t buf_cap;
	size_t buf_len;          /* valid bytes in buf */
	uint64_t buf_off;        /* file offset of buf[0] */
	uint8_t *big;            /* a record longer than the window; freed on next call */
	uint64_t pos;            /* file offset of the next record header */
	uint64_t good_end;       /* end of the last good record */
	uint64_t rec_start;      /* start of the last record handed out */
	uint64_t tail_dropped;
	uint64_t zero_fill;      /* zeros after the last record, not torn */
	uint64_t skipped;
};

/* WALs are written in version 2, manifests (never synced often enough to
 * gain from zeros written ahead) in version 1. */
static uint32_t version_for(uint32_t kind)
{
	return kind == LSM_LOG_KIND_WAL ? LOG_VERSION_SYNCED : LOG_VERSION_APPEND;
}

static void put_log_header(uint8_t *h, uint32_t version, uint32_t kind)
{
	memcpy(h, LOG_MAGIC, 8);
	put_fixed32(h + 8, version);
	put_fixed32(h + 12, kind);
}

/* ---- writer ------------------------------------------------------------ */

/* Allocates a writer and opens path with flags.  Returns 0 or -errno. */
static int writer_new(lsm_env *env, const char *path, int flags, lsm_log_writer **ret_w)
{
	lsm_log_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w || !(w->path = strdup(path))) {
		free(w);
		return -ENOMEM;
	}
	w->env = env;
	r = env_open(env, path, flags, &w->file);
	if (r < 0) {
		free(w->path);
		free(w);
		return lsm_errf(r, "%s: cannot open log for writing", path);
	}
	*ret_w = w;
	return 0;
}

/* Closes and frees w; returns the close's error. */
static int writer_free(lsm_log_writer *w)
{
	int r = env_close(w->env, w->file);

	free(w->scratch);
	free(w->path);
	free(w);
	return r;
}

int lsm_log_writer_open(lsm_env *env, const char *path, uint32_t kind, lsm_log_writer **ret_w)
{
	lsm_log_writer *w;
	uint8_t h[LOG_HEADER];
	int r;

	r = writer_new(env, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &w);
	if (r < 0)
		return r;
	w->version = version_for(kind);
	put_log_header(h, w->version, kind);
	r = env_pwrite(env, w->file, h, sizeof(h), 0);
	/* Synced now so that a log which exists at all has a readable header. */
	if (r >= 0)
		r = env_sync(env, w->file);
	if (r < 0) {
		writer_free(w);
		return lsm_errf(r, "%s: cannot write log header", path);
	}
	w->size = w->filled = w->synced = LOG_HEADER;
	*ret_w = w;
	return 0;
}

/* Reopens an existing log to append at offset, the end of its last good
 * record (lsm_log_reader_offset after reading it to the end).  Whatever lies
 * beyond offset (a torn tail, zero fill) is cut off and the cut synced before
 * anything is appended: new records written over part of an old torn tail
 * would otherwise be followed by its leftovers, which a reader would take for
 * damage in the middle of the log.  Appends go on in the file's version. */
int lsm_log_writer_reopen(lsm_env *env, const char *path, uint32_t kind, uint64_t offset,
                          lsm_log_writer **ret_w)
{
	lsm_log_writer *w;
	uint8_t h[LOG_HEADER], want[LOG_HEADER];
	uint64_t size;
	uint32_t version = LOG_VERSION_APPEND;
	int r;

	r = writer_new(env, path, LSM_ENV_WRITE, &w);
	if (r < 0)
		return r;
	r = env_size(env, w->file, &size);
	if (r < 0) {
		lsm_errf(r, "%s: cannot stat log", path);
	} else if (offset < LOG_HEADER || offset > size) {
		r = lsm_errf(-EINVAL, "%s: cannot append at offset %" PRIu64 " of a %" PRIu64 "-byte log",
		             path, offset, size);
	} else if ((r = env_read_exact(env, w->file, path, h, sizeof(h), 0)) >= 0) {
		if (get_fixed32(h + 8) == LOG_VERSION_SYNCED)
			version = LOG_VERSION_SYNCED;
		put_log_header(want, version, kind);
		if (memcmp(h, want, sizeof(h)) != 0)
			r = lsm_errf(memcmp(h, want, 8) ? -EUCLEAN : -ENOTSUP,
			             "%s: not a log of version 1 or 2 and kind %" PRIu32, path, kind);
	}
	if (r >= 0 && offset < size) {
		r = env_truncate(env, w->file, offset);
		if (r < 0)
			lsm_errf(r, "%s: cannot cut the log at offset %" PRIu64, path, offset);
	}
	/* Synced even if nothing was cut: the marker before the next record
	 * will say that everything up to offset is durable. */
	if (r >= 0 && (r = env_sync(env, w->file)) < 0)
		lsm_errf(r, "%s: cannot sync the log", path);
	if (r < 0) {
		writer_free(w);
		return r;
	}
	w->version = version;
	w->need_marker = version == LOG_VERSION_SYNCED;
	w->size = w->filled = w->synced = offset;
	*ret_w = w;
	return 0;
}

/* Makes sure the scratch buffer holds n bytes (n <= LOG_SCRATCH_MAX). */
static int writer_reserve(lsm_log_writer *w, size_t n)
{
	size_t cap = w->scratch_cap ? w->scratch_cap : 4096;
	uint8_t *p;

	if (n <= w->scratch_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	p = realloc(w->scratch, cap);
	if (!p)
		return -ENOMEM;
	w->scratch = p;
	w->scratch_cap = cap;
	return 0;
}

/* Appends one record.  A record up to LOG_SCRATCH_MAX goes out in one pwrite.
 * A longer one is written as two: the header, then the payload straight
 * from the caller's buffer (copying hundreds of MiB to save a syscall is a bad
 * trade).  A crash between the two leaves a header whose length runs past the
 * end of the file (or a record that fails its checksum, over zeros written
 * ahead), which the reader drops as a torn tail, the same as a crash inside a
 * single pwrite.  After any failed write the tail may be torn, and appending
 * behind it would hide every later record from the reader, so the writer
 * stays failed.  Returns 0, -EINVAL for an oversized record (nothing written,
 * writer still usable), -ENOMEM, or the write's error. */
int lsm_log_writer_add(lsm_log_writer *w, const void *rec, size_t len)
{
	uint8_t hdr[LOG_MARKER_SIZE + LOG_REC_HEADER];
	size_t mk = w->need_marker ? LOG_MARKER_SIZE : 0, total = mk + LOG_REC_HEADER + len;
	uint8_t *h;
	int r;

	if (w->err)
		return w->err;
	if (len > (w->version == LOG_VERSION_SYNCED ? LOG_MAX_RECORD_V2 : LOG_MAX_RECORD))
		return lsm_errf(-EINVAL, "%s: record of %zu bytes exceeds the log limit", w->path, len);
	/* (Everything from a sync that wrote zeros ahead to the next sync goes
	 * over them, or past them, which the reader need not tell apart.) */
	uint32_t zeros = w->over_zeros ? LOG_ZEROS_BIT : 0;

	if (total <= LOG_SCRATCH_MAX) {
		r = writer_reserve(w, total);
		if (r < 0)
			return r;
		h = w->scratch;
	} else {
		h = hdr;
	}
	if (mk) {
		/* The sync marker goes out with the record, in one write. */
		put_fixed32(h + 4, LOG_MARKER_PAYLOAD | LOG_MARKER_BIT | zeros);
		put_fixed64(h + 8, w->synced);
		put_fixed32(h, lsm_checksum(h + 4, 4 + LOG_MARKER_PAYLOAD));
		h += mk;
	}
	put_fixed32(h + 4, (uint32_t)len | zeros);
	if (total <= LOG_SCRATCH_MAX) {
		/* Length and payload are contiguous here, and the one-shot
		 * hash of them equals lsm_checksum2's chained one (cheaper on
		 * small records, which are most of them). */
		if (len)
			memcpy(h + LOG_REC_HEADER, rec, len);
		put_fixed32(h, lsm_checksum(h + 4, 4 + len));
		r = env_pwrite(w->env, w->file, w->scratch, total, w->size);
	} else {
		put_fixed32(h, lsm_checksum2(h + 4, 4, rec, len));
		r = env_pwrite(w->env, w->file, hdr, mk + LOG_REC_HEADER, w->size);
		if (r >= 0)
			r = env_pwrite(w->env, w->file, rec, len, w->size + mk + LOG_REC_HEADER);
	}
	if (r < 0) {
		w->err = r;
		return lsm_errf(r, "%s: append at offset %" PRIu64 " failed", w->path, w->size);
	}
	w->need_marker = false;
	w->size += total;
	if (w->filled < w->size)
		w->filled = w->size;
	return 0;
}

/* Version 2: writes zeros from the end of the file to LOG_PREFILL beyond the
 * records, if less than half of that is left, so that the records of the
 * syncs to come overwrite written blocks.  Part of the sync that follows.
 * Not at a log's first sync: a log synced once (at close, say) gains
 * nothing from it.
 * A failure here is the sync's failure (the zeros may be half written, which
 * the reader takes for a torn tail). */
static int writer_prefill(lsm_log_writer *w)
{
	static const uint8_t zeros[64 * 1024];
	uint64_t end = w->size + LOG_PREFILL;

	if (w->version != LOG_VERSION_SYNCED || w->syncs == 0 || w->filled >= w->size + LOG_PREFILL / 2)
		return 0;
	while (w->filled < end) {
		size_t n = end - w->filled < sizeof(zeros) ? (size_t)(end - w->filled) : sizeof(zeros);
		int r = env_pwrite(w->env, w->file, zeros, n, w->filled);
		if (r < 0)
			return r;
		w->filled += n;
	}
	return 0;
}

/* Syncs the file.  A failed sync is sticky too: after fsync fails the kernel
 * may have dropped the dirty pages, so nothing written so far is known to be
 * durable and a retry that succeeds would prove nothing. */
int lsm_log_writer_sync(lsm_log_writer *w)
{
	int r;

	if (w->err)
		return w->err;
	r = writer_prefill(w);
	if (r >= 0)
		r = env_sync(w->env, w->file);
	if (r < 0) {
		w->err = r;
		return lsm_errf(r, "%s: sync failed", w->path);
	}
	w->synced = w->size;
	w->over_zeros = w->filled > w->size;
	w->need_marker = w->version == LOG_VERSION_SYNCED;
	w->syncs++;
	return 0;
}

uint64_t lsm_log_writer_size(const lsm_log_writer *w)
{
	return w->size;
}

int lsm_log_writer_close(lsm_log_writer *w)
{
	int r, rc;

	if (!w)
		return 0;
	r = w->err;
	rc = writer_free(w);
	return r < 0 ? r : rc;
}

/* ---- reader ------------------------------------------------------------ */

/* Makes bytes [off, off + n) of the file available in the window and returns
 * a pointer to them.  REQUIRES: n <= buf_cap, off + n <= file_size. */
static int reader_fill(lsm_log_reader *r, uint64_t off, size_t n, const uint8_t **ret_p)
{
	size_t keep = 0, want;

	if (off >= r->buf_off && off + n <= r->buf_off + r->buf_len) {
		*ret_p = r->buf + (off - r->buf_off);
		return 0;
	}
	/* Slide forward: keep what we have from off onwards, read behind it.
	 * (Only resynchronisation ever goes backwards; it rereads.) */
	if (off >= r->buf_off && off < r->buf_off + r->buf_len)
		keep = (size_t)(r->buf_off + r->buf_len - off);
	if (keep)
		memmove(r->buf, r->buf + (off - r->buf_off), keep);
	r->buf_off = off;
	r->buf_len = keep;
	want = r->buf_cap - keep;
	if (want > r->file_size - (off + keep))
		want = (size_t)(r->file_size - (off + keep));
	while (r->buf_len < n) {
		ssize_t got = env_pread(r->env, r->file, r->buf + r->buf_len, want,
		                        r->buf_off + r->buf_len);
		if (got < 0)
			return lsm_errf((int)got, "%s: read at offset %" PRIu64 " failed", r->path,
			                r->buf_off + r->buf_len);
		if (got == 0)
			return lsm_errf(-EIO, "%s: file shrank to %" PRIu64 " bytes while being read",
			                r->path, r->buf_off + r->buf_len);
		r->buf_len += (size_t)got;
		want -= (size_t)got;
	}
	*ret_p = r->buf + (off - r->buf_off);
	return 0;
}

/* Reads the payload of a record too long for the window into r->big, taking
 * the part already in the window from there. */
static int reader_read_big(lsm_log_reader *r, uint64_t off, size_t len, const uint8_t **ret_p)
{
	size_t have = 0;

	r->big = malloc(len);
	if (!r->big)
		return -ENOMEM;
	if (off < r->buf_off + r->buf_len && off >= r->buf_off) {
		have = (size_t)(r->buf_off + r->buf_len - off);
		if (have > len)
			have = len;
		memcpy(r->big, r->buf + (off - r->buf_off), have);
	}
	while (have < len) {
		ssize_t got = env_pread(r->env, r->file, r->big + have, len - have, off + have);
		if (got < 0)
			return lsm_errf((int)got, "%s: read at offset %" PRIu64 " failed", r->path, off + have);
		if (got == 0)
			return lsm_errf(-EIO, "%s: file shrank while being read", r->path);
		have += (size_t)got;
	}
	*ret_p = r->big;
	return 0;
}

/* 1 if the file holds only zero bytes from off to its end, 0 if not, or a
 * negative errno. */
static int reader_zero_from(lsm_log_reader *r, uint64_t off)
{
	while (off < r->file_size) {
		uint64_t left = r->file_size - off;
		size_t n = left < r->buf_cap ? (size_t)left : r->buf_cap;
		const uint8_t *p;
		int rc = reader_fill(r, off, n, &p);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return 0;
		off += n;
	}
	return 1;
}

/* Checks the record at off and sets *ret_len to its length (without the
 * marker bit).  Returns 1 (and sets *ret_payload, r->rec_marker and for a
 * marker r->rec_synced) if its checksum verifies, 0 if not, 2 if its length
 * runs past the end of the file, 3 if its length is over the limit (or, in
 * version 2, a marker's is not 8), 4 if its header is all zeros, or a
 * negative errno.  REQUIRES: at least a record header left at off.
 * With window_only, a record longer than the window counts as not verifying
 * (used while resynchronising, where reading every plausible length found in
 * garbage would cost too much). */
static int reader_check(lsm_log_reader *r, uint64_t off, bool window_only,
                        const uint8_t **ret_payload, uint32_t *ret_len)
{
	const uint8_t *h = NULL, *payload = NULL;
	uint32_t sum, field, len;
	bool marker = false;
	int rc;

	rc = reader_fill(r, off, LOG_REC_HEADER, &h);
	if (rc < 0)
		return rc;
	sum = get_fixed32(h);
	field = len = get_fixed32(h + 4);
	if (r->version == LOG_VERSION_SYNCED) {
		marker = (field & LOG_MARKER_BIT) != 0;
		len = field & LOG_MAX_RECORD_V2;
	}
	*ret_len = len;
	if (sum == 0 && field == 0)
		return 4;
	if (len > r->file_size - off - LOG_REC_HEADER)
		return 2;
	if (len > LOG_MAX_RECORD || (marker && len != LOG_MARKER_PAYLOAD))
		return 3;
	if (LOG_REC_HEADER + (size_t)len <= r->buf_cap) {
		/* Contiguous in the window: hash length and payload in one go. */
		rc = reader_fill(r, off, LOG_REC_HEADER + (size_t)len, &h);
		if (rc < 0)
			return rc;
		payload = h + LOG_REC_HEADER;
		rc = lsm_checksum(h + 4, 4 + (size_t)len) == sum;
	} else if (window_only) {
		return 0;
	} else {
		rc = reader_read_big(r, off + LOG_REC_HEADER, len, &payload);
		if (rc < 0)
			return rc;
		/* h is still valid: a big read does not move the window. */
		rc = lsm_checksum2(h + 4, 4, payload, len) == sum;
	}
	if (!rc) {
		free(r->big);
		r->big = NULL;
		return 0;
	}
	r->rec_marker = marker;
	r->rec_zeros = (field & LOG_ZEROS_BIT) != 0;
	if (marker)
		r->rec_synced = get_fixed64(payload);
	*ret_payload = payload;
	return 1;
}

int lsm_log_reader_open(lsm_env *env, const char *path, uint32_t kind, bool skip_corrupt,
                        lsm_log_reader **ret_r)
{
	lsm_log_reader *r;
	uint8_t want[LOG_HEADER];
	const uint8_t *h;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return -ENOMEM;
	}
	r->env = env;
	r->skip_corrupt = skip_corrupt;
	rc = env_open(env, path, LSM_ENV_READ, &r->file);
	if (rc < 0) {
		lsm_errf(rc, "%s: cannot open log", path);
		goto fail;
	}
	rc = env_size(env, r->file, &r->file_size);
	if (rc < 0) {
		lsm_errf(rc, "%s: cannot stat log", path);
		goto fail;
	}
	/* A small log is read whole; a large one through a sliding window. */
	r->buf_cap = r->file_size < LOG_WINDOW ? (size_t)r->file_size : LOG_WINDOW;
	if (r->buf_cap < LOG_HEADER)
		r->buf_cap = LOG_HEADER;
	r->buf = malloc(r->buf_cap);
	if (!r->buf) {
		rc = -ENOMEM;
		goto fail;
	}

	put_log_header(want, version_for(kind), kind);
	if (r->file_size < LOG_HEADER) {
		/* Cut by a crash inside lsm_log_writer_open, before the header
		 * was synced: an empty log if what is there is a prefix of the
		 * header (or zeros, never written).  Its offset is 0: not even
		 * the header is good, so it cannot be appended to. */
		size_t n = (size_t)r->file_size;
		rc = reader_fill(r, 0, n, &h);
		if (rc < 0)
			goto fail;
		/* (A prefix of the header of either version: the 8th byte
		 * onwards differs between them.) */
		if (n && memcmp(h, want, n) != 0 &&
		    (put_log_header(want, LOG_VERSION_APPEND, kind), memcmp(h, want, n) != 0)) {
			rc = reader_zero_from(r, 0);
			if (rc == 0)
				rc = lsm_errf(-EUCLEAN, "%s: not a log file (truncated header)", path);
			if (rc < 0)
				goto fail;
		}
		r->pos = r->tail_dropped = r->file_size;
		*ret_r = r;
		return 0;
	}
	rc = reader_fill(r, 0, LOG_HEADER, &h);
	if (rc < 0)
		goto fail;
	if (memcmp(h, LOG_MAGIC, 8) != 0) {
		rc = lsm_errf(-EUCLEAN, "%s: not a log file (bad magic)", path);
		goto fail;
	}
	r->version = get_fixed32(h + 8);
	if ((r->version != LOG_VERSION_APPEND && r->version != LOG_VERSION_SYNCED) ||
	    get_fixed32(h + 12) != kind) {
		rc = lsm_errf(-ENOTSUP, "%s: log format version %" PRIu32 " kind %" PRIu32
		              " not supported (expected version 1 or 2, kind %" PRIu32 ")",
		              path, r->version, get_fixed32(h + 12), kind);
		goto fail;
	}
	r->pos = r->good_end = LOG_HEADER;
	*ret_r = r;
	return 0;

fail:
	lsm_log_reader_close(r);
	return rc;
}

/* Ends the log at r->pos: the rest of the file is a torn tail. */
static int reader_torn_tail(lsm_log_reader *r)
{
	r->tail_dropped += r->file_size - r->pos;
	r->pos = r->file_size;
	return 0;
}

/* After a damaged record at bad_off (claimed length bad_len), finds where
 * reading can go on: the record right behind it if the length was right and
 * that record verifies, else the next offset, byte by byte, where a record
 * verifies.  Sets r->pos (to the end of the file if nothing verifies). */
static int reader_resync(lsm_log_reader *r, uint64_t bad_off, uint32_t bad_len)
{
	const uint8_t *p;
	uint32_t len;
	uint64_t next = bad_off + LOG_REC_HEADER + (uint64_t)bad_len;
	int rc;

	if (bad_len <= LOG_MAX_RECORD && next < r->file_size &&
	    r->file_size - next >= LOG_REC_HEADER) {
		rc = reader_check(r, next, false, &p, &len);
		if (rc < 0)
			return rc;
		free(r->big);
		r->big = NULL;
		if (rc == 1) {
			r->pos = next;
			return 0;
		}
	}
	for (uint64_t off = bad_off + 1; r->file_size - off >= LOG_REC_HEADER; off++) {
		rc = reader_check(r, off, true, &p, &len);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			r->pos = off;
			return 0;
		}
	}
	r->pos = r->file_size;
	return 0;
}

/* Version 2: what the records that verify, anywhere after the bad one at
 * bad_off, say about it.  1 if one is a sync marker beyond it: a sync
 * covered the bad record, which was durable, and is damage.  Otherwise it
 * was never synced, and the first of them was written in its stretch
 * between syncs: 0 if that went over zeros, where a crash may leave any
 * subset of the pages, so that a torn record with whole ones behind it is a
 * crash's tail; 2 if not (appended, as in version 1), or if none verifies.
 * Or a negative errno.  Moves the reader's position. */
static int reader_synced_past(lsm_log_reader *r, uint64_t bad_off, uint32_t bad_len)
{
	int rc = reader_resync(r, bad_off, bad_len), verdict = 2;
	bool first = true;

	while (rc == 0 && r->file_size - r->pos >= LOG_REC_HEADER) {
		const uint8_t *p;
		uint32_t len;
		uint64_t off = r->pos;

		rc = reader_check(r, off, false, &p, &len);
		free(r->big);
		r->big = NULL;
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (r->rec_marker && r->rec_synced > bad_off)
				return 1;
			if (first)
				verdict = r->rec_zeros ? 0 : 2;
			first = false;
			r->pos = off + LOG_REC_HEADER + len;
			rc = 0;
		} else {
			rc = reader_resync(r, off, len);
		}
	}
	return rc < 0 ? rc : verdict;
}

int lsm_log_reader_next(lsm_log_reader *r, lsm_slice *ret_rec)
{
	const uint8_t *payload;
	uint32_t len;
	int rc;

	free(r->big);
	r->big = NULL;
	if (r->err)
		return r->err;

	while (r->pos < r->file_size) {
		uint64_t off = r->pos;
		uint64_t left = r->file_size - off;

		if (left < LOG_REC_HEADER)
			return reader_torn_tail(r);
		rc = reader_check(r, off, false, &payload, &len);
		if (rc < 0)
			goto fail;
		if (rc == 1 && r->rec_marker) {
			/* A sync marker: for the reader only. */
			r->pos = r->good_end = off + LOG_REC_HEADER + len;
			continue;
		}
		if (rc == 1) {
			r->rec_start = off;
			r->pos = r->good_end = off + LOG_REC_HEADER + len;
			*ret_rec = lsm_slice_make(payload, len);
			return 1;
		}
		/* A zero header followed only by zeros is space written ahead,
		 * or extended and never written: the end, nothing torn. */
		if (rc == 4) {
			int zero = reader_zero_from(r, off);
			if (zero < 0) {
				rc = zero;
				goto fail;
			}
			if (zero == 1) {
				r->zero_fill = r->file_size - off;
				r->pos = r->file_size;
				return 0;
			}
		}
		int verdict = 2;
		if (r->version == LOG_VERSION_SYNCED) {
			/* Records written over zeros since the last sync may
			 * have reached the disk in any order. */
			verdict = reader_synced_past(r, off, len);
			if (verdict < 0) {
				rc = verdict;
				goto fail;
			}
			r->pos = off;
			if (verdict == 0)
				return reader_torn_tail(r);
		}
		if (verdict == 2) {
			if (rc == 2)
				return reader_torn_tail(r);
			/* A damaged record followed only by zeros (or nothing)
			 * is the last one, cut by a crash. */
			if (rc == 0) {
				int zero = reader_zero_from(r, off + LOG_REC_HEADER + len);
				if (zero < 0) {
					rc = zero;
					goto fail;
				}
				if (zero == 1)
					return reader_torn_tail(r);
			}
		}
		if (!r->skip_corrupt) {
			if (rc == 3)
				rc = lsm_errf(-EBADMSG, "%s: record at offset %" PRIu64 ": length %" PRIu32
				              " over the limit", r->path, off, len);
			else if (rc == 2)
				rc = lsm_errf(-EBADMSG, "%s: record at offset %" PRIu64 ": length %" PRIu32
				              " runs past the end of the file", r->path, off, len);
			else if (rc == 4)
				rc = lsm_errf(-EBADMSG, "%s: record at offset %" PRIu64 ": zero header "
				              "before more records", r->path, off);
			else
				rc = lsm_errf(-EBADMSG, "%s: record at offset %" PRIu64 ": checksum mismatch",
				              r->path, off);
			goto fail;
		}
		r->skipped++;
		rc = reader_resync(r, off, len);
		if (rc < 0)
			goto fail;
	}
	return 0;

fail:
	r->err = rc;
	return rc;
}

uint64_t lsm_log_reader_offset(const lsm_log_reader *r)
{
	return r->good_end;
}

uint64_t lsm_log_reader_record_offset(const lsm_log_reader *r)
{
	return r->rec_start;
}

uint64_t lsm_log_reader_tail_dropped(const lsm_log_reader *r)
{
	return r->tail_dropped;
}

uint64_t lsm_log_reader_zero_fill(const lsm_log_reader *r)
{
	return r->zero_fill;
}

uint64_t lsm_log_reader_skipped(const lsm_log_reader *r)
{
	return r->skipped;
}

void lsm_log_reader_close(lsm_log_reader *r)
{
	if (!r)
		return;
	env_close(r->env, r->file);
	free(r->big);
	free(r->buf);
	free(r->path);
	free(r);
}
