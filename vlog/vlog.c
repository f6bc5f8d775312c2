/*
 * vlog.c - the value log's on-disk format, its lifetime (open, close), the
 * table of segments it knows of, segment removal, and the value-pointer
 * codec.  Appending lives in append.c, reading and scanning in read.c, the
 * cache of open read handles in fcache.c.
 *
 * Format (little-endian; one file per segment, dir/NNNNNN.vlog):
 *     segment := header record* [seal]
 *     header  := "LSMVLOG\0" | fixed32 version (1) | fixed64 segment number
 *                | fixed32 checksum                               (24 bytes)
 *                checksum = lsm_checksum(the first 20 bytes)
 *     record  := fixed32 checksum | byte type | varint32 klen | varint32 vlen
 *                | key[klen] | value[vlen]
 *                checksum = lsm_checksum(type .. the end of value)
 *     type    := 1 (a value record) | 2 (seal)
 *     seal    := a record of type 2 with klen 0, vlen 16 and the value
 *                fixed64 value records in the segment | fixed64 offset of the
 *                seal itself                                      (23 bytes)
 *     pointer := varint64 segment | varint64 offset | varint32 length
 *                (the record's file, its first byte, its whole length)
 *
 * A segment is appended to by one vlog and only at its end, so a crash can
 * leave only a torn tail, and only in the segment that was active then.
 * When a segment is rolled over, and when the vlog is closed, a seal record
 * ends it: a sealed segment must then be whole, so a damaged length in the
 * middle can never pass for a torn tail and silently hide the records after
 * it (vlog_scan, read.c).  The type byte exists for the seal (an empty key is
 * a valid key, so no key/value shape could mark it).  A reopened vlog never
 * appends to an old segment: its first append starts a new one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vlog_int.h"

void vlog_options_init(vlog_options *opt)
{
	opt->segment_size = 64u << 20;
	opt->max_open_segments = 64;
}

int vlog_segment_path(const char *dir, uint64_t number, char *buf)
{
	int n = snprintf(buf, VLOG_PATH_MAX, "%s/%06llu.vlog", dir, (unsigned long long)number);

	return n < 0 || n >= VLOG_PATH_MAX ? -ENAMETOOLONG : 0;
}

void vlog_header_encode(uint8_t *p, uint64_t number)
{
	memcpy(p, VLOG_MAGIC, 8);
	put_fixed32(p + 8, VLOG_VERSION);
	put_fixed64(p + 12, number);
	put_fixed32(p + 20, lsm_checksum(p, 20));
}

int vlog_header_check(const uint8_t *p, uint64_t number, const char *path)
{
	if (memcmp(p, VLOG_MAGIC, 8) != 0)
		return lsm_errf(-EUCLEAN, "%s: not a value-log segment (bad magic)", path);
	if (get_fixed32(p + 20) != lsm_checksum(p, 20))
		return lsm_errf(-EBADMSG, "%s: segment header checksum mismatch", path);
	if (get_fixed32(p + 8) != VLOG_VERSION)
		return lsm_errf(-ENOTSUP, "%s: segment format version %u, this library knows %u",
		                path, get_fixed32(p + 8), VLOG_VERSION);
	if (get_fixed64(p + 12) != number)
		return lsm_errf(-EUCLEAN, "%s: header names segment %llu", path,
		                (unsigned long long)get_fixed64(p + 12));
	return 0;
}

/* Parses a varint32 from [*pp, limit): VLOG_PARSE_SHORT if the bytes end
 * inside it, VLOG_PARSE_BAD if it runs past 5 bytes or 32 bits. */
static int parse_varint32(const uint8_t **pp, const uint8_t *limit, uint32_t *ret)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	for (int shift = 0; shift < 35; shift += 7) {
		if (p >= limit)
			return VLOG_PARSE_SHORT;
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (v > UINT32_MAX)
				return VLOG_PARSE_BAD;
			*ret = (uint32_t)v;
			*pp = p;
			return VLOG_PARSE_OK;
		}
	}
	return VLOG_PARSE_BAD;
}

int vlog_rec_parse(const uint8_t *p, size_t n, struct vlog_rec *ret)
{
	const uint8_t *q = p + 5, *limit = p + n;
	int r;

	if (n < 5)
		return VLOG_PARSE_SHORT;
	if (p[4] != VLOG_TYPE_VALUE && p[4] != VLOG_TYPE_SEAL)
		return VLOG_PARSE_BAD;
	ret->type = p[4];
	if ((r = parse_varint32(&q, limit, &ret->klen)) != VLOG_PARSE_OK ||
	    (r = parse_varint32(&q, limit, &ret->vlen)) != VLOG_PARSE_OK)
		return r;
	ret->hlen = (size_t)(q - p);
	ret->len = (uint64_t)ret->hlen + ret->klen + ret->vlen;
	return VLOG_PARSE_OK;
}

int vlog_probe_seal(lsm_env *env, lsm_file *f, uint64_t size, uint64_t *ret_records)
{
	uint8_t b[VLOG_SEAL_SIZE];
	struct vlog_rec rec;
	ssize_t n;

	if (size < VLOG_HEADER_SIZE + VLOG_SEAL_SIZE)
		return 0;
	n = env_pread(env, f, b, sizeof(b), size - VLOG_SEAL_SIZE);
	if (n < 0)
		return (int)n;
	if ((size_t)n != sizeof(b) || vlog_rec_parse(b, sizeof(b), &rec) != VLOG_PARSE_OK ||
	    rec.type != VLOG_TYPE_SEAL || rec.klen != 0 || rec.vlen != VLOG_SEAL_PAYLOAD ||
	    rec.len != VLOG_SEAL_SIZE || get_fixed32(b) != lsm_checksum(b + 4, sizeof(b) - 4) ||
	    get_fixed64(b + VLOG_REC_MIN + 8) != size - VLOG_SEAL_SIZE)
		return 0;
	*ret_records = get_fixed64(b + VLOG_REC_MIN);
	return 1;
}

struct vlog_seg *vlog_seg_find(vlog *v, uint64_t number)
{
	size_t lo = 0, hi = v->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->segs[mid].number < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->nsegs && v->segs[lo].number == number ? &v->segs[lo] : NULL;
}

int vlog_seg_reserve(vlog *v)
{
	if (v->nsegs < v->cap_segs)
		return 0;
	size_t cap = v->cap_segs ? v->cap_segs * 2 : 16;
	struct vlog_seg *s = realloc(v->segs, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	v->segs = s;
	v->cap_segs = cap;
	return 0;
}

/* Collects the numbers of the dir's NNNNNN.vlog files into v->segs. */
static int list_one(void *arg, const char *name)
{
	vlog *v = arg;
	uint64_t num = 0;
	const char *p = name;

	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (num > (UINT64_MAX - 9) / 10)
			return 0;
		num = num * 10 + (uint64_t)(*p - '0');
	}
	if (strcmp(p, ".vlog") != 0 || num == 0)
		return 0;
	if (vlog_seg_reserve(v) < 0)
		return -ENOMEM;
	v->segs[v->nsegs++] = (struct vlog_seg){ .number = num };
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct vlog_seg *)a)->number, y = ((const struct vlog_seg *)b)->number;

	return (x > y) - (x < y);
}

/* Fills in a listed segment's size and whether it is sealed. */
static int probe_segment(vlog *v, struct vlog_seg *s)
{
	char path[VLOG_PATH_MAX];
	lsm_file *f;
	int r = vlog_segment_path(v->dir, s->number, path);

	if (r == 0)
		r = env_open(v->env, path, LSM_ENV_READ, &f);
	if (r < 0)
		return r;
	r = env_size(v->env, f, &s->size);
	if (r == 0)
		r = vlog_probe_seal(v->env, f, s->size, &s->records);
	if (r > 0)
		s->flags |= VLOG_SEGMENT_SEALED;
	env_close(v->env, f);
	return r < 0 ? r : 0;
}

int vlog_open(lsm_env *env, const char *dir, const vlog_options *opt,
              uint64_t (*new_file_number)(void *arg), void *arg, vlog **ret_v)
{
	vlog *v;
	int r;

	if (!dir || !new_file_number || !ret_v)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (opt)
		v->opt = *opt;
	else
		vlog_options_init(&v->opt);
	if (v->opt.segment_size < 4096 || v->opt.max_open_segments < 1) {
		r = lsm_errf(-EINVAL, "%s: vlog segment_size %llu or max_open_segments %d too small",
		             dir, (unsigned long long)v->opt.segment_size, v->opt.max_open_segments);
		free(v);
		return r;
	}
	v->env = env ? env : lsm_env_posix();
	v->new_file_number = new_file_number;
	v->arg = arg;
	if (!(v->dir = strdup(dir))) {
		free(v);
		return -ENOMEM;
	}
	pthread_mutex_init(&v->sync_mu, NULL);
	pthread_mutex_init(&v->mu, NULL);
	v->unsynced_tail = &v->unsynced;
	r = vlog_fcache_new(v->env, v->dir, v->opt.max_open_segments, &v->fc);
	if (r == 0)
		r = env_list_dir(v->env, dir, list_one, v);
	if (r == 0 && v->nsegs > 1)
		qsort(v->segs, v->nsegs, sizeof(*v->segs), seg_cmp);
	for (size_t i = 0; r == 0 && i < v->nsegs; i++)
		r = probe_segment(v, &v->segs[i]);
	if (r < 0) {
		vlog_close(v);
		return r;
	}
	*ret_v = v;
	return 0;
}

int vlog_close(vlog *v)
{
	int r;

	if (!v)
		return 0;
	pthread_mutex_lock(&v->sync_mu);
	pthread_mutex_lock(&v->mu);
	r = vlog_append_shutdown(v);
	pthread_mutex_unlock(&v->mu);
	pthread_mutex_unlock(&v->sync_mu);
	pthread_mutex_destroy(&v->mu);
	pthread_mutex_destroy(&v->sync_mu);
	vlog_fcache_free(v->fc);
	free(v->buf);
	free(v->segs);
	free(v->dir);
	free(v);
	return r;
}

uint64_t vlog_active_segment(vlog *v)
{
	uint64_t n;

	pthread_mutex_lock(&v->mu);
	n = v->active ? v->active_number : 0;
	pthread_mutex_unlock(&v->mu);
	return n;
}

int vlog_segments(vlog *v, struct vlog_segment_info **ret_segs, size_t *ret_n)
{
	struct vlog_segment_info *a = NULL;
	size_t n;

	pthread_mutex_lock(&v->mu);
	n = v->nsegs;
	if (n && !(a = malloc(n * sizeof(*a)))) {
		pthread_mutex_unlock(&v->mu);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vlog_seg *s = &v->segs[i];
		a[i] = (struct vlog_segment_info){ s->number, s->size, s->records, s->flags };
		if (v->active && s->number == v->active_number) {
			a[i].size = v->end;
			a[i].records = v->records;
			a[i].flags |= VLOG_SEGMENT_ACTIVE;
		}
	}
	pthread_mutex_unlock(&v->mu);
	*ret_segs = a;
	*ret_n = n;
	return 0;
}

int vlog_remove_segment(vlog *v, uint64_t segment)
{
	char path[VLOG_PATH_MAX];
	struct vlog_seg *s;
	int r = vlog_segment_path(v->dir, segment, path);

	if (r < 0)
		return r;
	pthread_mutex_lock(&v->mu);
	if (v->active && segment == v->active_number)
		r = lsm_errf(-EBUSY, "%s: the active segment cannot be removed", path);
	else if (!vlog_seg_find(v, segment))
		r = lsm_errf(-ENOENT, "%s: not a segment of this value log", path);
	pthread_mutex_unlock(&v->mu);
	if (r < 0)
		return r;
	/* Unlink before the cache drops its handle: a reader that opens the
	 * file after the drop then finds it gone (see vlog_fcache_evict). */
	r = env_unlink(v->env, path);
	if (r < 0)
		return r;
	pthread_mutex_lock(&v->sync_mu);
	pthread_mutex_lock(&v->mu);
	if ((s = vlog_seg_find(v, segment))) {
		size_t i = (size_t)(s - v->segs);
		memmove(s, s + 1, (v->nsegs - i - 1) * sizeof(*s));
		v->nsegs--;
	}
	vlog_append_forget(v, segment);
	pthread_mutex_unlock(&v->mu);
	pthread_mutex_unlock(&v->sync_mu);
	vlog_fcache_evict(v->fc, segment);
	/* Sync the directory so the unlink survives power loss. */
	return env_sync_dir(v->env, v->dir);
}

size_t vlog_ptr_encode(const struct vlog_ptr *ptr, uint8_t *buf)
{
	uint8_t *p = put_varint64(buf, ptr->segment);

	p = put_varint64(p, ptr->offset);
	p = put_varint32(p, ptr->length);
	return (size_t)(p - buf);
}

int vlog_ptr_decode(const void *buf, size_t len, struct vlog_ptr *ret)
{
	const uint8_t *p = buf, *limit = p + len;
	struct vlog_ptr ptr;

	if (!buf ||
	    !(p = get_varint64(p, limit, &ptr.segment)) ||
	    !(p = get_varint64(p, limit, &ptr.offset)) ||
	    !(p = get_varint32(p, limit, &ptr.length)))
		return lsm_errf(-EUCLEAN, "value pointer of %zu bytes: truncated or malformed", len);
	if (p != limit)
		return lsm_errf(-EUCLEAN, "value pointer: %zu bytes left over", (size_t)(limit - p));
	if (ptr.segment == 0 || ptr.offset < VLOG_HEADER_SIZE || ptr.length < VLOG_REC_MIN)
		return lsm_errf(-EUCLEAN, "value pointer names an impossible record "
		                "(segment %llu, offset %llu, length %u)",
		                (unsigned long long)ptr.segment, (unsigned long long)ptr.offset, ptr.length);
	*ret = ptr;
	return 0;
}
