/*
 * append.c - the write side of the value log: the write buffer, appending
 * records, roll-over to a new segment with a seal on the old one, flush, and
 * sync.  Everything here runs under vlog->mu, except the fsyncs of
 * vlog_sync (see there).
 *
 * Why a user-space buffer: the engine's write leader appends every large
 * value of a write group and must hand them all to the OS before it writes
 * the WAL record that points at them.  Copying the group's small records
 * into one buffer and writing it with one pwrite (vlog_flush) costs one
 * system call per group instead of one per value.  Values of
 * VLOG_DIRECT_MIN bytes and up are not worth copying: they are written from
 * the caller's memory right away, header and key first, then the value (two
 * pwrites, no copy), after whatever was buffered.
 *
 * Why a rolled segment is not synced at the roll: that fsync would stall the
 * write leader on up to segment_size dirty bytes.  Its file stays open on a
 * list that the next vlog_sync makes durable (an engine syncs before it
 * relies on a value surviving power loss); only when more than
 * VLOG_MAX_UNSYNCED wait is the oldest synced at a roll, by which time the
 * kernel has written most of it back.  For the same reason vlog_sync does
 * not hold mu across its fsyncs.
 *
 * A failed write may leave a prefix of itself in the file; it is cut back
 * with truncate so the segment still ends at its last whole record.  If even
 * that fails, the segment is left unsealed and the next append starts a new
 * one: its tail then reads as a crash's torn tail.  A failed fsync is
 * sticky (-EROFS after it): the kernel may have dropped the dirty pages, so
 * nothing written since the last good sync can be trusted to reach the disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vlog_int.h"

static int read_only(vlog *v)
{
	return lsm_errf(-EROFS, "%s: value log is read-only after a failed sync", v->dir);
}

/* Grows the write buffer to hold n bytes. */
static int buf_reserve(vlog *v, size_t n)
{
	size_t cap = v->buf_cap ? v->buf_cap : 64u << 10;
	uint8_t *b;

	if (n <= v->buf_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (!(b = realloc(v->buf, cap)))
		return -ENOMEM;
	v->buf = b;
	v->buf_cap = cap;
	return 0;
}

/* Handles a failed write of n bytes at off: drops the buffer and cuts the
 * file back to end (see the top of the file).  Returns err. */
static int write_failed(vlog *v, int err, uint64_t n, uint64_t off)
{
	char path[VLOG_PATH_MAX];

	v->buf_len = 0;
	v->buf_records = 0;
	if (env_truncate(v->env, v->active, v->end) < 0)
		v->broken = true;
	vlog_segment_path(v->dir, v->active_number, path);
	return lsm_errf(err, "%s: writing %llu bytes at offset %llu%s", path, (unsigned long long)n,
	                (unsigned long long)off, v->broken ? " (segment abandoned)" : "");
}

static int flush_locked(vlog *v)
{
	int r;

	if (!v->buf_len)
		return 0;
	r = env_pwrite(v->env, v->active, v->buf, v->buf_len, v->end);
	if (r < 0)
		return write_failed(v, r, v->buf_len, v->end);
	v->end += v->buf_len;
	v->records += v->buf_records;
	v->buf_len = 0;
	v->buf_records = 0;
	return 0;
}

/* Appends the seal record, which is not a value record.
 * REQUIRES: the buffer is empty. */
static int write_seal(vlog *v)
{
	uint8_t *p;
	size_t h;
	int r = buf_reserve(v, VLOG_SEAL_SIZE);

	if (r < 0)
		return r;
	p = v->buf;
	h = vlog_rec_header(p, VLOG_TYPE_SEAL, 0, VLOG_SEAL_PAYLOAD);
	put_fixed64(p + h, v->records);
	put_fixed64(p + h + 8, v->end);
	put_fixed32(p, lsm_checksum(p + 4, VLOG_SEAL_SIZE - 4));
	v->buf_len = VLOG_SEAL_SIZE;
	return flush_locked(v);
}

/* Puts a rolled segment's file (in u, allocated with the segment so that a
 * roll never fails for memory) on the list vlog_sync will make durable.
 * When the list is long, the oldest is synced and closed here, unless a
 * vlog_sync is running: its fsync may be on any file it saw open. */
static int queue_unsynced(vlog *v, struct vlog_unsynced *u)
{
	int r = 0;

	u->next = NULL;
	*v->unsynced_tail = u;
	v->unsynced_tail = &u->next;
	v->nunsynced++;
	if (v->nunsynced > VLOG_MAX_UNSYNCED && !v->syncing) {
		struct vlog_unsynced *old = v->unsynced;
		r = env_sync(v->env, old->file);
		env_close(v->env, old->file);
		if (!(v->unsynced = old->next))
			v->unsynced_tail = &v->unsynced;
		v->nunsynced--;
		free(old);
		if (r < 0 && !v->err)
			v->err = r;
	}
	return r;
}

/* Flushes and seals (unless broken) the active segment and queues its file
 * for the next sync.  On a clean write failure the segment stays active.
 * REQUIRES: v->mu held, v->active set. */
static int retire(vlog *v, bool seal)
{
	struct vlog_seg *s = vlog_seg_find(v, v->active_number);
	struct vlog_unsynced *u = v->active_node;
	bool sealed = false;
	int r = flush_locked(v);

	if (r == 0 && seal && !v->broken) {
		r = write_seal(v);
		sealed = r == 0;
	}
	if (r < 0 && !v->broken)
		return r;           /* cut back cleanly: the segment stays active */
	if (s) {
		s->size = v->end;
		if (v->broken)
			env_size(v->env, v->active, &s->size);  /* space its tail takes */
		if (sealed) {
			s->flags |= VLOG_SEGMENT_SEALED;
			s->records = v->records;
		}
	}
	*u = (struct vlog_unsynced){ v->active_number, v->active, NULL };
	v->active = NULL;
	v->active_node = NULL;
	v->active_number = 0;
	v->end = 0;
	v->records = 0;
	v->broken = false;
	int rq = queue_unsynced(v, u);
	return r < 0 ? r : rq;
}

/* Starts a new segment: takes a number, creates the file, writes the
 * header.  The directory is synced by the next vlog_sync. */
static int create_segment(vlog *v)
{
	char path[VLOG_PATH_MAX];
	uint8_t hdr[VLOG_HEADER_SIZE];
	struct vlog_unsynced *u;
	uint64_t number;
	lsm_file *f;
	size_t i;
	int r = vlog_seg_reserve(v);

	if (r < 0)
		return r;
	if (!(u = malloc(sizeof(*u))))
		return -ENOMEM;
	number = v->new_file_number(v->arg);
	if (number == 0)
		r = lsm_errf(-EINVAL, "%s: new_file_number gave 0 for a value-log segment", v->dir);
	else if ((r = vlog_segment_path(v->dir, number, path)) == 0)
		r = env_open(v->env, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_EXCL, &f);
	if (r < 0) {
		free(u);
		return r;
	}
	vlog_header_encode(hdr, number);
	r = env_pwrite(v->env, f, hdr, sizeof(hdr), 0);
	if (r < 0) {
		env_close(v->env, f);
		env_unlink(v->env, path);
		free(u);
		return lsm_errf(r, "%s: writing the segment header", path);
	}
	for (i = v->nsegs; i > 0 && v->segs[i - 1].number > number; i--)
		v->segs[i] = v->segs[i - 1];
	v->segs[i] = (struct vlog_seg){ .number = number };
	v->nsegs++;
	v->active = f;
	v->active_node = u;
	v->active_number = number;
	v->end = VLOG_HEADER_SIZE;
	v->records = 0;
	v->broken = false;
	v->dir_dirty = true;
	return 0;
}

/* Makes sure the active segment can take a record of len bytes (and, after
 * it, a seal), rolling over if not.  A fresh segment takes any record. */
static int make_room(vlog *v, uint64_t len)
{
	int r;

	if (v->active && !v->broken) {
		uint64_t used = v->end + v->buf_len;
		if (used == VLOG_HEADER_SIZE || used + len + VLOG_SEAL_SIZE <= v->opt.segment_size)
			return 0;
	}
	if (v->active && (r = retire(v, true)) < 0)
		return r;
	return create_segment(v);
}

static int append_buffered(vlog *v, const uint8_t *hdr, size_t hlen, const void *key, size_t klen,
                           const void *value, size_t vlen)
{
	size_t len = hlen + klen + vlen;
	uint8_t *p;
	int r;

	if (v->buf_len && v->buf_len + len > VLOG_BUF_SIZE && (r = flush_locked(v)) < 0)
		return r;
	if ((r = buf_reserve(v, v->buf_len + len)) < 0)
		return r;
	p = v->buf + v->buf_len;
	memcpy(p, hdr, hlen);
	if (klen)
		memcpy(p + hlen, key, klen);
	if (vlen)
		memcpy(p + hlen + klen, value, vlen);
	put_fixed32(p, lsm_checksum(p + 4, len - 4));
	v->buf_len += len;
	v->buf_records++;
	return 0;
}

/* Writes a large record from the caller's memory: header and key through
 * the (emptied) buffer, then the value as it is. */
static int append_direct(vlog *v, const uint8_t *hdr, size_t hlen, const void *key, size_t klen,
                         const void *value, size_t vlen)
{
	int r = flush_locked(v);

	if (r < 0 || (r = buf_reserve(v, hlen + klen)) < 0)
		return r;
	memcpy(v->buf, hdr, hlen);
	if (klen)
		memcpy(v->buf + hlen, key, klen);
	put_fixed32(v->buf, lsm_checksum2(v->buf + 4, hlen - 4 + klen, value, vlen));
	r = env_pwrite(v->env, v->active, v->buf, hlen + klen, v->end);
	if (r == 0)
		r = env_pwrite(v->env, v->active, value, vlen, v->end + hlen + klen);
	if (r < 0)
		return write_failed(v, r, hlen + klen + vlen, v->end);
	v->end += hlen + klen + vlen;
	v->records++;
	return 0;
}

int vlog_append(vlog *v, const void *key, size_t klen, const void *value, size_t vlen,
                struct vlog_ptr *ret_ptr)
{
	uint8_t hdr[VLOG_REC_HEADER_MAX];
	uint64_t len, off = 0;
	size_t hlen;
	int r;

	if ((!key && klen) || (!value && vlen) || !ret_ptr || klen > UINT32_MAX || vlen > UINT32_MAX)
		return -EINVAL;
	hlen = vlog_rec_header(hdr, VLOG_TYPE_VALUE, (uint32_t)klen, (uint32_t)vlen);
	len = (uint64_t)hlen + klen + vlen;
	if (len > UINT32_MAX)
		return lsm_errf(-EINVAL, "value-log record of %llu bytes: over the 4 GiB limit",
		                (unsigned long long)len);
	pthread_mutex_lock(&v->mu);
	if (v->err)
		r = read_only(v);
	else if ((r = make_room(v, len)) == 0) {
		off = v->end + v->buf_len;  /* a flush inside the calls below keeps this sum */
		if (vlen >= VLOG_DIRECT_MIN)
			r = append_direct(v, hdr, hlen, key, klen, value, vlen);
		else
			r = append_buffered(v, hdr, hlen, key, klen, value, vlen);
	}
	if (r == 0)
		*ret_ptr = (struct vlog_ptr){ v->active_number, off, (uint32_t)len };
	pthread_mutex_unlock(&v->mu);
	return r;
}

int vlog_flush(vlog *v)
{
	int r;

	pthread_mutex_lock(&v->mu);
	r = v->err ? read_only(v) : flush_locked(v);
	pthread_mutex_unlock(&v->mu);
	return r;
}

/* Syncs and closes every file on list (oldest first; all are closed even
 * after a failure), then the active file, then the directory.
 * REQUIRES: v->sync_mu held; v->mu held or not (see vlog_sync). */
static int sync_files(vlog *v, struct vlog_unsynced *list, lsm_file *active, bool dir)
{
	int r = 0;

	while (list) {
		struct vlog_unsynced *u = list;
		if (r == 0)
			r = env_sync(v->env, u->file);
		env_close(v->env, u->file);
		list = u->next;
		free(u);
	}
	if (r == 0 && active)
		r = env_sync(v->env, active);
	/* A segment created since the last sync exists after a power cut only
	 * once its directory entry is durable. */
	if (r == 0 && dir)
		r = env_sync_dir(v->env, v->dir);
	return r;
}

/* Takes the unsynced list and the directory flag for a sync.
 * REQUIRES: v->mu held. */
static struct vlog_unsynced *take_unsynced(vlog *v, bool *ret_dir)
{
	struct vlog_unsynced *list = v->unsynced;

	v->unsynced = NULL;
	v->unsynced_tail = &v->unsynced;
	v->nunsynced = 0;
	*ret_dir = v->dir_dirty;
	v->dir_dirty = false;
	return list;
}

/* The fsyncs run with mu dropped, so the write leader keeps appending (and
 * rolling) meanwhile.  That is safe because nothing closes a file this
 * sync took: the list is ours alone once taken, a retired active file goes
 * on the new list, which a roll does not trim while v->syncing is set, and
 * removal and close take sync_mu.  Records appended meanwhile are not
 * covered: they were not flushed when the sync began. */
int vlog_sync(vlog *v)
{
	struct vlog_unsynced *list;
	lsm_file *active;
	bool dir;
	int r;

	pthread_mutex_lock(&v->sync_mu);
	pthread_mutex_lock(&v->mu);
	if (v->err)
		r = read_only(v);
	else if ((r = flush_locked(v)) == 0) {
		list = take_unsynced(v, &dir);
		active = v->active;
		v->syncing = true;
		pthread_mutex_unlock(&v->mu);
		r = sync_files(v, list, active, dir);
		pthread_mutex_lock(&v->mu);
		v->syncing = false;
		if (r < 0 && !v->err)
			v->err = r;
	}
	pthread_mutex_unlock(&v->mu);
	pthread_mutex_unlock(&v->sync_mu);
	return r;
}

int vlog_append_shutdown(vlog *v)
{
	struct vlog_unsynced *list;
	bool dir;
	int r = v->err, rc;

	if (r == 0 && v->active)
		r = retire(v, true);
	list = take_unsynced(v, &dir);
	if (r == 0) {
		r = sync_files(v, list, v->active, dir);
	} else {
		/* Whatever an error left open is closed unsynced: the process is
		 * letting go of the log and the error says so. */
		while (list) {
			struct vlog_unsynced *u = list;
			env_close(v->env, u->file);
			list = u->next;
			free(u);
		}
	}
	rc = env_close(v->env, v->active);
	free(v->active_node);
	v->active = NULL;
	v->active_node = NULL;
	return r < 0 ? r : rc;
}

void vlog_append_forget(vlog *v, uint64_t number)
{
	for (struct vlog_unsynced **pp = &v->unsynced; *pp; pp = &(*pp)->next) {
		struct vlog_unsynced *u = *pp;
		if (u->number != number)
			continue;
		/* Its unsynced tail no longer matters. */
		env_close(v->env, u->file);
		if (!(*pp = u->next))
			v->unsynced_tail = pp;
		v->nunsynced--;
		free(u);
		return;
	}
}

int vlog_roll(vlog *v)
{
	int r = 0;

	pthread_mutex_lock(&v->mu);
	if (v->err)
		r = read_only(v);
	else if (v->active)
		r = retire(v, true);
	pthread_mutex_unlock(&v->mu);
	return r;
}
