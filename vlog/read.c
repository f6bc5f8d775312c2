/*
 * read.c - the read side of the value log: reading one record by pointer
 * (one pread through the open-file cache), telling whether a pointer's
 * record survived a crash, and scanning a segment record by record for GC
 * and fsck.
 *
 * Torn tails.  Only the segment that was active when the process died can
 * end in a partial record, and that segment has no seal.  In an unsealed
 * segment a bad record is taken for the torn tail of a crash when it runs
 * to or past the end of the file, or when nothing but zero bytes follows it
 * (a filesystem may extend a file with zeros it never got to write); a bad
 * header of zeros counts too.  Any other bad record is damage.  A sealed
 * segment, and the active one below its flushed end, must be whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vlog_int.h"

#define SCAN_WINDOW (1u << 20)

/* Reads and checks the record ptr names.  Returns 0 with the malloc'd
 * record in *ret_buf and its header in *ret_rec, or -EUCLEAN, -EBADMSG,
 * -ENOTSUP, -EIO, -ENOMEM with a message naming the segment and offset. */
static int read_record(vlog *v, const struct vlog_ptr *ptr, uint8_t **ret_buf, struct vlog_rec *ret_rec)
{
	char path[VLOG_PATH_MAX];
	unsigned long long off = (unsigned long long)ptr->offset;
	struct vlog_fentry *e;
	struct vlog_rec rec;
	uint8_t *buf;
	ssize_t n;
	int r = vlog_segment_path(v->dir, ptr->segment, path);

	if (r < 0)
		return r;
	if (ptr->segment == 0 || ptr->offset < VLOG_HEADER_SIZE || ptr->length < VLOG_REC_MIN)
		return lsm_errf(-EUCLEAN, "%s: value pointer to offset %llu, length %u: impossible record",
		                path, off, ptr->length);
	r = vlog_fcache_get(v->fc, ptr->segment, &e);
	if (r == -ENOENT)
		return lsm_errf(-EUCLEAN, "%s: missing, but a value pointer names offset %llu in it", path, off);
	if (r < 0)
		return r;
	if (!(buf = malloc(ptr->length))) {
		vlog_fcache_put(v->fc, e);
		return -ENOMEM;
	}
	n = env_pread(v->env, vlog_fcache_file(e), buf, ptr->length, ptr->offset);
	vlog_fcache_put(v->fc, e);
	int pr = n == (ssize_t)ptr->length ? vlog_rec_parse(buf, ptr->length, &rec) : VLOG_PARSE_BAD;
	bool fits = pr == VLOG_PARSE_OK && rec.type == VLOG_TYPE_VALUE && rec.len == ptr->length;
	if (n < 0)
		r = (int)n;
	else if ((size_t)n < ptr->length)
		r = lsm_errf(-EUCLEAN, "%s: value record at offset %llu, length %u: cut short, the file "
		             "ends at %llu", path, off, ptr->length, off + (unsigned long long)n);
	else if (get_fixed32(buf) != lsm_checksum(buf + 4, ptr->length - 4))
		r = fits ? lsm_errf(-EBADMSG, "%s: value record at offset %llu, length %u: checksum mismatch",
		                    path, off, ptr->length)
		         : lsm_errf(-EUCLEAN, "%s: value record at offset %llu: its header does not match "
		                    "the pointer's length %u", path, off, ptr->length);
	else if (!fits)
		r = lsm_errf(-EUCLEAN, "%s: record at offset %llu, length %u: not the value record the "
		             "pointer describes", path, off, ptr->length);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret_buf = buf;
	*ret_rec = rec;
	return 0;
}

int vlog_read(vlog *v, const struct vlog_ptr *ptr, void **ret_key, size_t *ret_klen,
              void **ret_val, size_t *ret_vlen)
{
	struct vlog_rec rec;
	uint8_t *buf, *key = NULL;
	int r;

	if (!ptr || !ret_val || !ret_vlen || (ret_key && !ret_klen))
		return -EINVAL;
	if ((r = read_record(v, ptr, &buf, &rec)) < 0)
		return r;
	if (ret_key) {
		if (!(key = malloc(rec.klen ? rec.klen : 1))) {
			free(buf);
			return -ENOMEM;
		}
		memcpy(key, buf + rec.hlen, rec.klen);
	}
	/* Hand out the record's own buffer with the value moved to its start:
	 * cheaper than a second allocation and copy of a large value. */
	memmove(buf, buf + rec.hlen + rec.klen, rec.vlen);
	if (rec.len - rec.vlen > 4096 && rec.vlen > 0) {
		uint8_t *shrunk = realloc(buf, rec.vlen);
		if (shrunk)
			buf = shrunk;
	}
	if (ret_key) {
		*ret_key = key;
		*ret_klen = rec.klen;
	}
	*ret_val = buf;
	*ret_vlen = rec.vlen;
	return 0;
}

int vlog_verify_ptr(vlog *v, const struct vlog_ptr *ptr)
{
	struct vlog_rec rec;
	uint8_t *buf;
	int r;

	if (!ptr)
		return -EINVAL;
	r = read_record(v, ptr, &buf, &rec);
	if (r == -EUCLEAN || r == -EBADMSG)
		return 0;
	if (r < 0)
		return r;
	free(buf);
	return 1;
}

/* A sequential reader over one segment, through a window buffer. */
struct scanner {
	lsm_env *env;
	lsm_file *f;
	char path[VLOG_PATH_MAX];
	uint64_t limit;              /* scan ends here: the end of the file, the seal, or the flushed end */
	bool strict;                 /* sealed or active: every record must be good */
	uint8_t *w;
	size_t cap, wlen;
	uint64_t wstart;             /* file offset of w[0] */
};

/* Points *ret at bytes [off, off + n) of the file, reading a window from
 * off if they are not in the current one.  REQUIRES: off + n <= limit. */
static int window(struct scanner *s, uint64_t off, size_t n, const uint8_t **ret)
{
	size_t want = n > SCAN_WINDOW ? n : SCAN_WINDOW;
	ssize_t got;

	if (off >= s->wstart && off + n <= s->wstart + s->wlen) {
		*ret = s->w + (off - s->wstart);
		return 0;
	}
	if (want > s->limit - off)
		want = (size_t)(s->limit - off);
	if (want > s->cap) {
		uint8_t *w = realloc(s->w, want);
		if (!w)
			return -ENOMEM;
		s->w = w;
		s->cap = want;
	}
	s->wlen = 0;
	got = env_pread(s->env, s->f, s->w, want, off);
	if (got < 0)
		return (int)got;
	s->wstart = off;
	s->wlen = (size_t)got;
	if ((size_t)got < n)
		return lsm_errf(-EUCLEAN, "%s: the file shrank to %llu bytes while being scanned", s->path,
		                (unsigned long long)(off + (uint64_t)got));
	*ret = s->w;
	return 0;
}

/* 1 if bytes [from, limit) are all zero, 0 if not, or a negative errno. */
static int zeros_to_end(struct scanner *s, uint64_t from)
{
	while (from < s->limit) {
		size_t n = s->limit - from < SCAN_WINDOW ? (size_t)(s->limit - from) : SCAN_WINDOW;
		const uint8_t *p = NULL;
		int r = window(s, from, n, &p);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return 0;
		from += n;
	}
	return 1;
}

/* Judges a bad record at off whose claimed extent ends at claimed_end (off
 * when its header is not even that): 1 for a torn tail, where the scan ends
 * cleanly, else the error err describing what. */
static int bad_record(struct scanner *s, uint64_t off, uint64_t claimed_end, int err, const char *what)
{
	if (!s->strict) {
		if (claimed_end >= s->limit)
			return 1;
		int z = zeros_to_end(s, claimed_end);
		if (z != 0)
			return z;
	}
	return lsm_errf(err, "%s: record at offset %llu: %s", s->path, (unsigned long long)off, what);
}

/* Checks the header of a segment; 1 if the segment is an empty one that a
 * crash left shorter than (or a zeroed) header, 0 if good. */
static int scan_header(struct scanner *s, uint64_t segment)
{
	const uint8_t *p = NULL;
	int r;

	if (s->limit < VLOG_HEADER_SIZE) {
		size_t n = (size_t)s->limit, m = n < 8 ? n : 8;
		if (n == 0)
			return 1;
		if ((r = window(s, 0, n, &p)) < 0)
			return r;
		if (memcmp(p, VLOG_MAGIC, m) == 0 || zeros_to_end(s, 0) == 1)
			return 1;
		return lsm_errf(-EUCLEAN, "%s: %zu bytes, not a segment header", s->path, n);
	}
	if ((r = window(s, 0, VLOG_HEADER_SIZE, &p)) < 0)
		return r;
	r = vlog_header_check(p, segment, s->path);
	if (r < 0 && !s->strict && zeros_to_end(s, 0) == 1)
		return 1;
	return r;
}

static int scan_records(struct scanner *s, uint64_t segment, vlog_scan_fn fn, void *arg,
                        struct vlog_scan_result *res)
{
	uint64_t off = VLOG_HEADER_SIZE;
	int r = 0;

	while (off < s->limit) {
		uint64_t left = s->limit - off;
		size_t hn = left < VLOG_REC_HEADER_MAX ? (size_t)left : VLOG_REC_HEADER_MAX;
		struct vlog_rec rec;
		const uint8_t *p = NULL;

		if ((r = window(s, off, hn, &p)) < 0)
			break;
		int pr = vlog_rec_parse(p, hn, &rec);
		if (pr == VLOG_PARSE_SHORT)
			r = bad_record(s, off, s->limit, -EUCLEAN, "header cut short by the end of the file");
		else if (pr == VLOG_PARSE_BAD || rec.type != VLOG_TYPE_VALUE)
			r = bad_record(s, off, off, -EUCLEAN, "not a value record header");
		else if (rec.len > left)
			r = bad_record(s, off, off + rec.len, -EUCLEAN, "length runs past the end");
		else if ((r = window(s, off, (size_t)rec.len, &p)) == 0 &&
		         get_fixed32(p) != lsm_checksum(p + 4, (size_t)rec.len - 4))
			r = bad_record(s, off, off + rec.len, -EBADMSG, "checksum mismatch");
		if (r == 1) {
			res->tail_dropped = s->limit - off;
			r = 0;
			break;
		}
		if (r < 0)
			break;
		struct vlog_ptr ptr = { segment, off, (uint32_t)rec.len };
		const uint8_t *key = p + rec.hlen;
		if ((r = fn(arg, &ptr, key, rec.klen, key + rec.klen, rec.vlen)) < 0)
			break;
		off += rec.len;
		res->records++;
		res->end = off;
		if (r > 0)
			break;
	}
	return r;
}

int vlog_scan(vlog *v, uint64_t segment, vlog_scan_fn fn, void *arg,
              struct vlog_scan_result *ret_result)
{
	struct scanner s = { .env = v->env };
	struct vlog_scan_result res = { 0 };
	uint64_t size, seal_records = 0, active_end = 0;
	bool active;
	int r;

	if (!fn)
		return -EINVAL;
	if ((r = vlog_segment_path(v->dir, segment, s.path)) < 0)
		return r;
	pthread_mutex_lock(&v->mu);
	active = v->active && v->active_number == segment;
	if (active)
		active_end = v->end;
	pthread_mutex_unlock(&v->mu);
	r = env_open(v->env, s.path, LSM_ENV_READ, &s.f);
	if (r == -ENOENT)
		return lsm_errf(-ENOENT, "%s: no such segment", s.path);
	if (r < 0)
		return r;
	if ((r = env_size(v->env, s.f, &size)) < 0)
		goto out;
	s.limit = active ? active_end : size;
	s.strict = active;
	if (!active && (r = vlog_probe_seal(v->env, s.f, size, &seal_records)) > 0) {
		s.strict = true;
		s.limit = size - VLOG_SEAL_SIZE;
		res.sealed = 1;
	}
	if (r < 0 || (r = scan_header(&s, segment)) < 0)
		goto out;
	if (r == 1) {
		res.tail_dropped = s.limit;
		r = 0;
		goto out;
	}
	res.end = VLOG_HEADER_SIZE;
	r = scan_records(&s, segment, fn, arg, &res);
	if (r == 0 && res.sealed && res.records != seal_records)
		r = lsm_errf(-EUCLEAN, "%s: the seal counts %llu records, the segment holds %llu", s.path,
		             (unsigned long long)seal_records, (unsigned long long)res.records);
	if (r > 0)
		r = 0;              /* fn stopped the scan */
out:
	env_close(v->env, s.f);
	free(s.w);
	if (r == 0 && ret_result)
		*ret_result = res;
	return r;
}
