/*
 * version.c - versions (which SSTables make up each level), the edits that
 * move from one version to the next, and reads through a version: point
 * lookups level by level and iterators over every file.
 *
 * Version edit record (one MANIFEST record), a sequence of tagged fields:
 *     1 varint64 log_number
 *     2 varint64 next_file
 *     3 varint64 last_seq
 *     5 varint32 level | varint64 number                      (deleted file)
 *     6 varint32 level | varint64 number | varint64 size |
 *       varint32 len smallest | varint32 len largest          (added file)
 *     7 varint64 segment | varint64 bytes                      (value-log garbage found:
 *       added to the segment's count; a manifest's first edit carries totals)
 *     8 varint64 segment                                       (value-log segment removed)
 * Unknown tags make the record malformed: a newer format is refused by the
 * manifest's version number before any record is read.
 */
#include "db_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_LOG = 1, TAG_NEXT_FILE = 2, TAG_LAST_SEQ = 3, TAG_DELETED = 5, TAG_ADDED = 6,
       TAG_GARBAGE = 7, TAG_VLOG_REMOVED = 8 };

int lsm_garbage_add(lsm_garbage_list *l, uint64_t segment, uint64_t bytes)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].segment == segment) {
			l->v[i].bytes += bytes;
			return 0;
		}
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 8;
		lsm_seg_garbage *v = realloc(l->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (lsm_seg_garbage){ segment, bytes };
	return 0;
}

void lsm_garbage_remove(lsm_garbage_list *l, uint64_t segment)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].segment == segment) {
			l->v[i] = l->v[--l->n];
			return;
		}
}

uint64_t lsm_garbage_get(const lsm_garbage_list *l, uint64_t segment)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].segment == segment)
			return l->v[i].bytes;
	return 0;
}

int lsm_meta_new(uint64_t number, uint64_t size, lsm_slice smallest, lsm_slice largest,
                 lsm_file_meta **ret_meta)
{
	lsm_file_meta *f = calloc(1, sizeof(*f) + smallest.len + largest.len);

	if (!f)
		return -ENOMEM;
	f->number = number;
	f->size = size;
	/* LevelDB's measure: a seek costs about what compacting 16 KiB does,
	 * with a floor so that small files are not compacted for a handful. */
	f->allowed_seeks = size / 16384 < 100 ? 100 : (int64_t)(size / 16384);
	f->smallest = (uint8_t *)(f + 1);
	f->smallest_len = smallest.len;
	f->largest = f->smallest + smallest.len;
	f->largest_len = largest.len;
	if (smallest.len)
		memcpy(f->smallest, smallest.data, smallest.len);
	if (largest.len)
		memcpy(f->largest, largest.data, largest.len);
	*ret_meta = f;
	return 0;
}

void lsm_meta_free(lsm_file_meta *f)
{
	free(f);
}

int lsm_file_list_push(lsm_file_list *l, lsm_file_meta *f)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 8;
		lsm_file_meta **v = realloc(l->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = f;
	return 0;
}

void lsm_file_list_done(lsm_file_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- edits ------------------------------------------------------------- */

void lsm_edit_init(lsm_version_edit *e)
{
	memset(e, 0, sizeof(*e));
}

void lsm_edit_done(lsm_version_edit *e)
{
	/* An applied edit's metas belong to versions now (and may already be
	 * freed with them): never look at them again. */
	for (int i = 0; !e->applied && i < e->nadded; i++)
		if (e->added[i].meta && e->added[i].meta->refs == 0)
			lsm_meta_free(e->added[i].meta);
	free(e->added);
	free(e->deleted);
	free(e->garbage.v);
	free(e->vlog_removed.v);
	lsm_edit_init(e);
}

static int edit_push(lsm_edit_file **arr, int *n, int *cap, lsm_edit_file item)
{
	if (*n == *cap) {
		int c = *cap ? *cap * 2 : 8;
		lsm_edit_file *v = realloc(*arr, (size_t)c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*arr = v;
		*cap = c;
	}
	(*arr)[(*n)++] = item;
	return 0;
}

int lsm_edit_add_file(lsm_version_edit *e, int level, lsm_file_meta *meta)
{
	lsm_edit_file item = { .level = level, .meta = meta, .number = meta->number };
	int r = edit_push(&e->added, &e->nadded, &e->cap_added, item);
	if (r < 0 && meta->refs == 0)
		lsm_meta_free(meta);
	return r;
}

int lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number)
{
	lsm_edit_file item = { .level = level, .meta = NULL, .number = number };
	return edit_push(&e->deleted, &e->ndeleted, &e->cap_deleted, item);
}

int lsm_edit_encode(const lsm_version_edit *e, uint8_t **ret_buf, size_t *ret_len)
{
	size_t cap = 64;
	uint8_t *buf, *p;

	for (int i = 0; i < e->nadded; i++)
		cap += 48 + e->added[i].meta->smallest_len + e->added[i].meta->largest_len;
	cap += (size_t)e->ndeleted * 16 + (size_t)(e->garbage.n + e->vlog_removed.n) * 24;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	p = buf;
	if (e->has_log_number) {
		*p++ = TAG_LOG;
		p = put_varint64(p, e->log_number);
	}
	if (e->has_next_file) {
		*p++ = TAG_NEXT_FILE;
		p = put_varint64(p, e->next_file);
	}
	if (e->has_last_seq) {
		*p++ = TAG_LAST_SEQ;
		p = put_varint64(p, e->last_seq);
	}
	for (int i = 0; i < e->ndeleted; i++) {
		*p++ = TAG_DELETED;
		p = put_varint32(p, (uint32_t)e->deleted[i].level);
		p = put_varint64(p, e->deleted[i].number);
	}
	for (int i = 0; i < e->nadded; i++) {
		const lsm_file_meta *f = e->added[i].meta;
		*p++ = TAG_ADDED;
		p = put_varint32(p, (uint32_t)e->added[i].level);
		p = put_varint64(p, f->number);
		p = put_varint64(p, f->size);
		p = put_varint32(p, (uint32_t)f->smallest_len);
		memcpy(p, f->smallest, f->smallest_len);
		p += f->smallest_len;
		p = put_varint32(p, (uint32_t)f->largest_len);
		memcpy(p, f->largest, f->largest_len);
		p += f->largest_len;
	}
	for (int i = 0; i < e->garbage.n; i++) {
		*p++ = TAG_GARBAGE;
		p = put_varint64(p, e->garbage.v[i].segment);
		p = put_varint64(p, e->garbage.v[i].bytes);
	}
	for (int i = 0; i < e->vlog_removed.n; i++) {
		*p++ = TAG_VLOG_REMOVED;
		p = put_varint64(p, e->vlog_removed.v[i].segment);
	}
	*ret_buf = buf;
	*ret_len = (size_t)(p - buf);
	return 0;
}

int lsm_edit_decode(lsm_version_edit *e, lsm_slice rec)
{
	const uint8_t *p = rec.data, *end = rec.data + rec.len;

	while (p < end) {
		uint8_t tag = *p++;
		uint32_t level;
		uint64_t number, size;
		lsm_slice smallest, largest;
		lsm_file_meta *meta;
		int r;

		switch (tag) {
		case TAG_LOG:
			p = get_varint64(p, end, &e->log_number);
			e->has_log_number = true;
			break;
		case TAG_NEXT_FILE:
			p = get_varint64(p, end, &e->next_file);
			e->has_next_file = true;
			break;
		case TAG_LAST_SEQ:
			p = get_varint64(p, end, &e->last_seq);
			e->has_last_seq = true;
			break;
		case TAG_DELETED:
			p = get_varint32(p, end, &level);
			if (p)
				p = get_varint64(p, end, &number);
			if (!p || level >= LSM_MAX_LEVELS)
				return -EUCLEAN;
			r = lsm_edit_delete_file(e, (int)level, number);
			if (r < 0)
				return r;
			break;
		case TAG_ADDED:
			p = get_varint32(p, end, &level);
			if (p)
				p = get_varint64(p, end, &number);
			if (p)
				p = get_varint64(p, end, &size);
			if (p)
				p = get_length_prefixed(p, end, &smallest);
			if (p)
				p = get_length_prefixed(p, end, &largest);
			if (!p || level >= LSM_MAX_LEVELS || smallest.len < 8 || largest.len < 8)
				return -EUCLEAN;
			r = lsm_meta_new(number, size, smallest, largest, &meta);
			if (r < 0)
				return r;
			r = lsm_edit_add_file(e, (int)level, meta);
			if (r < 0)
				return r;
			break;
		case TAG_GARBAGE:
			p = get_varint64(p, end, &number);
			if (p)
				p = get_varint64(p, end, &size);
			if (!p)
				return -EUCLEAN;
			if ((r = lsm_garbage_add(&e->garbage, number, size)) < 0)
				return r;
			break;
		case TAG_VLOG_REMOVED:
			p = get_varint64(p, end, &number);
			if (!p)
				return -EUCLEAN;
			if ((r = lsm_garbage_add(&e->vlog_removed, number, 0)) < 0)
				return r;
			break;
		default:
			return -EUCLEAN;
		}
		if (!p)
			return -EUCLEAN;
	}
	return 0;
}

/* ---- versions ---------------------------------------------------------- */

static int cmp_newest_first(const void *a, const void *b)
{
	const lsm_file_meta *fa = *(lsm_file_meta *const *)a, *fb = *(lsm_file_meta *const *)b;
	return (fa->number < fb->number) - (fa->number > fb->number);
}

static int cmp_smallest(const void *a, const void *b)
{
	const lsm_file_meta *fa = *(lsm_file_meta *const *)a, *fb = *(lsm_file_meta *const *)b;
	int r = lsm_ikey_cmp(meta_smallest(fa), meta_smallest(fb));
	return r ? r : (fa->number > fb->number) - (fa->number < fb->number);
}

static bool edit_deletes(const lsm_version_edit *e, int level, uint64_t number)
{
	for (int i = 0; i < e->ndeleted; i++)
		if (e->deleted[i].level == level && e->deleted[i].number == number)
			return true;
	return false;
}

int lsm_version_apply(const lsm_version *base, const lsm_version_edit *e, const lsm_options *opt,
                      lsm_version **ret_version)
{
	lsm_version *v = calloc(1, sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (int level = 0; level < LSM_MAX_LEVELS && r == 0; level++) {
		if (base)
			for (int i = 0; i < base->files[level].n && r == 0; i++) {
				lsm_file_meta *f = base->files[level].v[i];
				if (!edit_deletes(e, level, f->number))
					r = lsm_file_list_push(&v->files[level], f);
			}
		for (int i = 0; i < e->nadded && r == 0; i++)
			if (e->added[i].level == level && !edit_deletes(e, level, e->added[i].meta->number))
				r = lsm_file_list_push(&v->files[level], e->added[i].meta);
	}
	if (r < 0) {
		for (int level = 0; level < LSM_MAX_LEVELS; level++)
			lsm_file_list_done(&v->files[level]);
		free(v);
		return r;
	}
	for (int level = 0; level < LSM_MAX_LEVELS; level++) {
		lsm_file_list *l = &v->files[level];
		if (l->n > 1)
			qsort(l->v, (size_t)l->n, sizeof(*l->v), level == 0 ? cmp_newest_first : cmp_smallest);
		for (int i = 0; i < l->n; i++)
			l->v[i]->refs++;
	}
	lsm_version_score(v, opt);
	*ret_version = v;
	return 0;
}

void lsm_version_free(lsm_version *v, uint64_t **obsolete, int *nobsolete, int *cap_obsolete)
{
	for (int level = 0; level < LSM_MAX_LEVELS; level++) {
		lsm_file_list *l = &v->files[level];
		for (int i = 0; i < l->n; i++) {
			lsm_file_meta *f = l->v[i];
			if (--f->refs > 0)
				continue;
			if (obsolete) {
				if (*nobsolete == *cap_obsolete) {
					int cap = *cap_obsolete ? *cap_obsolete * 2 : 16;
					uint64_t *n = realloc(*obsolete, (size_t)cap * sizeof(*n));
					if (n) {
						*obsolete = n;
						*cap_obsolete = cap;
					}
				}
				/* Without room the file is left for the next open's sweep. */
				if (*nobsolete < *cap_obsolete)
					(*obsolete)[(*nobsolete)++] = f->number;
			}
			lsm_meta_free(f);
		}
		lsm_file_list_done(l);
	}
	free(v);
}

uint64_t lsm_level_bytes(const lsm_version *v, int level)
{
	uint64_t sum = 0;
	for (int i = 0; i < v->files[level].n; i++)
		sum += v->files[level].v[i]->size;
	return sum;
}

uint64_t lsm_max_bytes_for_level(const lsm_options *opt, int level)
{
	uint64_t b = opt->max_bytes_for_level_base;
	for (int i = 1; i < level; i++)
		b *= (uint64_t)opt->level_size_ratio;
	return b;
}

void lsm_version_score(lsm_version *v, const lsm_options *opt)
{
	double best = -1;
	int best_level = 0;

	for (int level = 0; level < LSM_MAX_LEVELS - 1; level++) {
		double s;
		if (level == 0)
			s = (double)v->files[0].n / opt->l0_compaction_trigger;
		else
			s = (double)lsm_level_bytes(v, level) / (double)lsm_max_bytes_for_level(opt, level);
		if (s > best) {
			best = s;
			best_level = level;
		}
	}
	v->compaction_score = best;
	v->compaction_level = best_level;
}

/* ---- reads ------------------------------------------------------------- */

struct get_state {
	lsm_slice ukey;
	bool found;
	unsigned type;
	void *val;
	size_t len;
	int err;
	lsm_file_meta *first;       /* the first file consulted */
	int first_level;
	bool charged;
	lsm_file_meta **ret_seek_file;
	int *ret_seek_level;
};

static void get_found(void *arg, lsm_slice ikey, lsm_slice value)
{
	struct get_state *s = arg;

	if (ikey.len < 8 || !lsm_slice_eq(lsm_ikey_user(ikey), s->ukey))
		return;
	s->found = true;
	s->type = lsm_ikey_type(ikey);
	if (s->type == LSM_TYPE_VALUE || s->type == LSM_TYPE_VPTR) {
		s->val = malloc(value.len ? value.len : 1);
		if (!s->val) {
			s->err = -ENOMEM;
			return;
		}
		if (value.len)
			memcpy(s->val, value.data, value.len);
		s->len = value.len;
	} else if (s->type != LSM_TYPE_DELETE) {
		s->err = lsm_errf(-EUCLEAN, "entry of unknown type %u", s->type);
	}
}

/* Index of the first file in a sorted level whose largest key >= ikey. */
static int find_file(const lsm_file_list *l, lsm_slice ikey)
{
	int lo = 0, hi = l->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (lsm_ikey_cmp(meta_largest(l->v[mid]), ikey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int probe(lsm_table_cache *tc, lsm_file_meta *f, lsm_slice lookup, bool fill, struct get_state *s)
{
	int r = lsm_table_cache_get(tc, f->number, f->size, lookup, fill, get_found, s);
	if (r < 0)
		return r;
	if (s->err < 0)
		return s->err;
	return s->found;
}

/* Charges the first file a lookup consulted once it consults a second. */
static void charge_seek(struct get_state *s, lsm_file_meta *f, int level)
{
	if (!s->first) {
		s->first = f;
		s->first_level = level;
	} else if (!s->charged) {
		s->charged = true;
		if (atomic_fetch_sub(&s->first->allowed_seeks, 1) <= 1) {
			*s->ret_seek_file = s->first;
			*s->ret_seek_level = s->first_level;
		}
	}
}

lsm_file_meta *lsm_version_record_sample(lsm_version *v, lsm_slice ikey, int *ret_level)
{
	struct get_state s = { .ret_seek_file = &(lsm_file_meta *){ NULL }, .ret_seek_level = ret_level };
	lsm_slice ukey = lsm_ikey_user(ikey);

	/* The files a lookup of ukey would consult, as lsm_version_get finds
	 * them; the charge falls once a second one is found. */
	for (int i = 0; i < v->files[0].n && !s.charged; i++) {
		lsm_file_meta *f = v->files[0].v[i];
		if (lsm_slice_cmp(ukey, lsm_ikey_user(meta_smallest(f))) >= 0 &&
		    lsm_slice_cmp(ukey, lsm_ikey_user(meta_largest(f))) <= 0)
			charge_seek(&s, f, 0);
	}
	for (int level = 1; level < LSM_MAX_LEVELS && !s.charged; level++) {
		const lsm_file_list *l = &v->files[level];
		int i = l->n ? find_file(l, ikey) : 0;
		if (i < l->n && lsm_slice_cmp(ukey, lsm_ikey_user(meta_smallest(l->v[i]))) >= 0)
			charge_seek(&s, l->v[i], level);
	}
	return *s.ret_seek_file;
}

int lsm_version_get(lsm_version *v, lsm_table_cache *tc, lsm_slice lookup_ikey, bool fill_cache,
                    unsigned *ret_type, void **ret_val, size_t *ret_len, lsm_file_meta **ret_seek_file,
                    int *ret_seek_level)
{
	struct get_state s = { .ukey = lsm_ikey_user(lookup_ikey), .ret_seek_file = ret_seek_file,
	                       .ret_seek_level = ret_seek_level };
	int r;

	*ret_seek_file = NULL;
	for (int i = 0; i < v->files[0].n; i++) {
		lsm_file_meta *f = v->files[0].v[i];
		if (lsm_slice_cmp(s.ukey, lsm_ikey_user(meta_smallest(f))) < 0 ||
		    lsm_slice_cmp(s.ukey, lsm_ikey_user(meta_largest(f))) > 0)
			continue;
		charge_seek(&s, f, 0);
		r = probe(tc, f, lookup_ikey, fill_cache, &s);
		if (r != 0)
			goto out;
	}
	for (int level = 1; level < LSM_MAX_LEVELS; level++) {
		const lsm_file_list *l = &v->files[level];
		int i;
		if (l->n == 0)
			continue;
		i = find_file(l, lookup_ikey);
		if (i >= l->n || lsm_slice_cmp(s.ukey, lsm_ikey_user(meta_smallest(l->v[i]))) < 0)
			continue;
		charge_seek(&s, l->v[i], level);
		r = probe(tc, l->v[i], lookup_ikey, fill_cache, &s);
		if (r != 0)
			goto out;
	}
	return 0;
out:
	if (r < 0) {
		free(s.val);
		return r;
	}
	*ret_type = s.type;
	*ret_val = s.val;
	*ret_len = s.len;
	return 1;
}

int lsm_version_overlapping(const lsm_version *v, int level, const lsm_slice *begin, const lsm_slice *end,
                            lsm_file_list *ret)
{
	const lsm_file_list *l = &v->files[level];

	for (int i = 0; i < l->n; i++) {
		lsm_file_meta *f = l->v[i];
		if (begin && lsm_slice_cmp(lsm_ikey_user(meta_largest(f)), *begin) < 0)
			continue;
		if (end && lsm_slice_cmp(lsm_ikey_user(meta_smallest(f)), *end) > 0)
			continue;
		int r = lsm_file_list_push(ret, f);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the level iterator: files of one sorted level, opened on demand ---- */

struct level_iter {
	lsm_iiter base;
	lsm_file_meta **files;      /* a private copy of the pointers */
	int n;
	int index;                  /* file under cur, n when none */
	lsm_iiter *cur;
	lsm_table_cache *tc;
	bool fill;
	int err;
};

static void level_open(struct level_iter *it, int index)
{
	if (it->cur && it->index == index)
		return;
	iiter_destroy(it->cur);
	it->cur = NULL;
	it->index = index;
	if (index < 0 || index >= it->n)
		return;
	int r = lsm_table_cache_iter(it->tc, it->files[index]->number, it->files[index]->size, it->fill, &it->cur);
	if (r < 0) {
		it->err = r;
		it->cur = NULL;
	}
}

static void level_skip_forward(struct level_iter *it)
{
	while (it->err == 0 && (!it->cur || !iiter_valid(it->cur))) {
		if (it->cur && iiter_status(it->cur) < 0) {
			it->err = iiter_status(it->cur);
			return;
		}
		if (it->index + 1 >= it->n) {
			iiter_destroy(it->cur);
			it->cur = NULL;
			it->index = it->n;
			return;
		}
		level_open(it, it->index + 1);
		if (it->cur)
			iiter_seek_to_first(it->cur);
	}
}

static void level_skip_backward(struct level_iter *it)
{
	while (it->err == 0 && (!it->cur || !iiter_valid(it->cur))) {
		if (it->cur && iiter_status(it->cur) < 0) {
			it->err = iiter_status(it->cur);
			return;
		}
		if (it->index <= 0) {
			iiter_destroy(it->cur);
			it->cur = NULL;
			it->index = it->n;
			return;
		}
		level_open(it, it->index - 1);
		if (it->cur)
			iiter_seek_to_last(it->cur);
	}
}

static bool level_valid(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	return it->err == 0 && it->cur && iiter_valid(it->cur);
}

static void level_seek_to_first(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	if (it->err)
		return;
	level_open(it, 0);
	if (it->cur)
		iiter_seek_to_first(it->cur);
	level_skip_forward(it);
}

static void level_seek_to_last(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	if (it->err)
		return;
	level_open(it, it->n - 1);
	if (it->cur)
		iiter_seek_to_last(it->cur);
	level_skip_backward(it);
}

static void level_seek(lsm_iiter *b, lsm_slice target)
{
	struct level_iter *it = (struct level_iter *)b;
	lsm_file_list l = { it->files, it->n, it->n };
	int i;

	if (it->err)
		return;
	i = find_file(&l, target);
	if (i >= it->n) {
		iiter_destroy(it->cur);
		it->cur = NULL;
		it->index = it->n;
		return;
	}
	level_open(it, i);
	if (it->cur)
		iiter_seek(it->cur, target);
	level_skip_forward(it);
}

static void level_next(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	iiter_next(it->cur);
	level_skip_forward(it);
}

static void level_prev(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	iiter_prev(it->cur);
	level_skip_backward(it);
}

static lsm_slice level_key(lsm_iiter *b)
{
	return iiter_key(((struct level_iter *)b)->cur);
}

static lsm_slice level_value(lsm_iiter *b)
{
	return iiter_value(((struct level_iter *)b)->cur);
}

static int level_status(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	if (it->err)
		return it->err;
	return it->cur ? iiter_status(it->cur) : 0;
}

static void level_destroy(lsm_iiter *b)
{
	struct level_iter *it = (struct level_iter *)b;
	iiter_destroy(it->cur);
	free(it->files);
	free(it);
}

static const struct lsm_iiter_ops level_ops = {
	level_valid, level_seek_to_first, level_seek_to_last, level_seek, level_next, level_prev,
	level_key, level_value, level_status, level_destroy,
};

int lsm_level_iter_new(lsm_file_meta **files, int n, lsm_table_cache *tc, bool fill_cache, lsm_iiter **ret_iter)
{
	struct level_iter *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->files = malloc((size_t)(n ? n : 1) * sizeof(*files));
	if (!it->files) {
		free(it);
		return -ENOMEM;
	}
	if (n)
		memcpy(it->files, files, (size_t)n * sizeof(*files));
	it->base.ops = &level_ops;
	it->n = n;
	it->index = n;
	it->tc = tc;
	it->fill = fill_cache;
	*ret_iter = &it->base;
	return 0;
}

int lsm_version_add_iters(lsm_version *v, lsm_table_cache *tc, bool fill_cache, lsm_iiter **its, int *n)
{
	int r;

	for (int i = 0; i < v->files[0].n; i++) {
		lsm_file_meta *f = v->files[0].v[i];
		r = lsm_table_cache_iter(tc, f->number, f->size, fill_cache, &its[*n]);
		if (r < 0)
			return r;
		(*n)++;
	}
	for (int level = 1; level < LSM_MAX_LEVELS; level++) {
		if (v->files[level].n == 0)
			continue;
		r = lsm_level_iter_new(v->files[level].v, v->files[level].n, tc, fill_cache, &its[*n]);
		if (r < 0)
			return r;
		(*n)++;
	}
	return 0;
}
