/*
 * iter.c - the composite iterators built on the lsm_iiter interface: the
 * empty iterator (nothing, or only an error), the merging iterator that
 * interleaves memtables, level-0 tables and levels in key order in both
 * directions, and the db iterator that turns the merged stream of internal
 * keys into the user's view as of one sequence number (for each user key the
 * newest version with sequence <= seq, keys whose such version is a deletion
 * hidden).  Both composites sit on the hot path of every scan, so they cache
 * what they can (child keys, the current user key) instead of calling back
 * through the ops table, and allocate nothing per step.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

/* ---- empty iterator --------------------------------------------------- */

struct empty_iter {
	lsm_iiter base;
	int err;
};

static bool empty_valid(lsm_iiter *it) { (void)it; return false; }
static void empty_move(lsm_iiter *it) { (void)it; }
static void empty_seek(lsm_iiter *it, lsm_slice target) { (void)it; (void)target; }
/* Never valid, so never legitimately called: answer an empty slice rather
 * than crash if a caller breaks the REQUIRES. */
static lsm_slice empty_slice(lsm_iiter *it) { (void)it; return lsm_slice_make("", 0); }
static int empty_status(lsm_iiter *it) { return ((struct empty_iter *)it)->err; }
static void empty_destroy(lsm_iiter *it) { free(it); }

static const struct lsm_iiter_ops empty_ops = {
	.valid = empty_valid, .seek_to_first = empty_move, .seek_to_last = empty_move,
	.seek = empty_seek, .next = empty_move, .prev = empty_move, .key = empty_slice,
	.value = empty_slice, .status = empty_status, .destroy = empty_destroy,
};

lsm_iiter *lsm_empty_iter_new(int err)
{
	struct empty_iter *e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	e->base.ops = &empty_ops;
	e->err = err;
	return &e->base;
}

/* ---- merging iterator ------------------------------------------------- */

/*
 * Entries come out in (key, child index) order forwards and in the reverse of
 * that order backwards, so equal keys come out in child order and a backward
 * scan is exactly a forward scan reversed.
 *
 * The active children (valid ones) are kept in m->order: for n up to
 * MERGE_LINEAR_MAX a sorted array whose LAST element is the current child
 * (so dropping an exhausted child is k--, and re-placing the child that just
 * moved costs one comparison when it stays in front, the common case when one
 * level holds most of the data); above that a binary heap with the current
 * child at order[0].
 *
 * Direction invariant.  While moving forward, every non-current child sits on
 * its first entry after the current entry in merge order (invalid: it has
 * none); while moving backward, on its last entry before it (invalid: none).
 * Seeks establish the forward form (each child is at its first key >= the
 * target and the current child is the smallest of them), and next/prev keep
 * it.  So turning around needs no re-seek: stepping each non-current child
 * once the other way (prev, or seek_to_last if it was exhausted, and
 * symmetrically) puts it on its last entry before the current one (first
 * entry after), with ties between children resolved by child index exactly as
 * the merge order wants.  This also costs one step per child where a re-seek
 * (LevelDB) costs a search per child.
 *
 * A child that fails (becomes invalid with a non-zero status) ends the
 * merge: skipping it would silently return a scan with holes.
 */
#define MERGE_LINEAR_MAX 8

struct merge_child {
	lsm_slice key;       /* iiter_key(it), cached after every move while valid */
	lsm_iiter *it;
	bool valid;          /* iiter_valid(it), cached after every move */
};

struct merge_iter {
	lsm_iiter base;
	lsm_cmp_fn cmp;
	int n;               /* children */
	int k;               /* active children in order[] */
	int cur;             /* current child, -1 when the merge is not valid */
	bool forward;        /* direction of the last positioning */
	int *order;          /* n entries, after child[] in the same allocation */
	struct merge_child child[];
};
#define MERGE(it) ((struct merge_iter *)(it))

/* Reloads the cached state of c after it moved.  Returns false if c failed. */
static inline bool child_load(struct merge_child *c)
{
	c->valid = iiter_valid(c->it);
	if (c->valid) {
		c->key = iiter_key(c->it);
		return true;
	}
	return iiter_status(c->it) == 0;
}

/* True if child a's entry comes out before child b's in the current
 * direction.  REQUIRES: a != b, both valid. */
static inline bool merge_before(const struct merge_iter *m, int a, int b)
{
	int c = m->cmp(m->child[a].key, m->child[b].key);
	if (c == 0)
		c = a - b;
	return m->forward ? c < 0 : c > 0;
}

static void heap_sift_down(struct merge_iter *m, int pos)
{
	int *h = m->order, k = m->k, x = h[pos];

	for (;;) {
		int c = 2 * pos + 1;
		if (c >= k)
			break;
		if (c + 1 < k && merge_before(m, h[c + 1], h[c]))
			c++;
		if (!merge_before(m, h[c], x))
			break;
		h[pos] = h[c];
		pos = c;
	}
	h[pos] = x;
}

/* Small mode: inserts x into the sorted o[0..j) (latest first), filling o[0..j]. */
static inline void sorted_insert(struct merge_iter *m, int j, int x)
{
	int *o = m->order;

	while (j > 0 && merge_before(m, o[j - 1], x)) {
		o[j] = o[j - 1];
		j--;
	}
	o[j] = x;
}

/* Rebuilds order[] from every valid child and picks the current one. */
static void merge_build(struct merge_iter *m)
{
	int *o = m->order, k = 0;

	for (int i = 0; i < m->n; i++)
		if (m->child[i].valid)
			o[k++] = i;
	m->k = k;
	if (m->n <= MERGE_LINEAR_MAX) {
		for (int i = 1; i < k; i++)
			sorted_insert(m, i, o[i]);
		m->cur = k ? o[k - 1] : -1;
	} else {
		for (int i = k / 2 - 1; i >= 0; i--)
			heap_sift_down(m, i);
		m->cur = k ? o[0] : -1;
	}
}

/* After the current child moved one step in the current direction: drop it
 * if exhausted, else move it to its new place, and pick the next current. */
static void merge_fix_current(struct merge_iter *m)
{
	int *o = m->order, k = m->k;

	if (m->n <= MERGE_LINEAR_MAX) {
		if (m->child[o[k - 1]].valid)
			sorted_insert(m, k - 1, o[k - 1]);
		else
			k--;
		m->k = k;
		m->cur = k ? o[k - 1] : -1;
	} else {
		if (!m->child[o[0]].valid)
			o[0] = o[--k];
		m->k = k;
		if (k)
			heap_sift_down(m, 0);
		m->cur = k ? o[0] : -1;
	}
}

/* After repositioning children: rebuild, or end the merge if one failed. */
static void merge_settle(struct merge_iter *m, bool ok)
{
	if (ok) {
		merge_build(m);
	} else {
		m->k = 0;
		m->cur = -1;
	}
}

static bool merge_valid(lsm_iiter *it) { return MERGE(it)->cur >= 0; }

enum merge_how { MERGE_FIRST, MERGE_LAST, MERGE_SEEK };

static void merge_position(lsm_iiter *it, enum merge_how how, lsm_slice target)
{
	struct merge_iter *m = MERGE(it);
	bool ok = true;

	for (int i = 0; i < m->n; i++) {
		lsm_iiter *c = m->child[i].it;
		if (how == MERGE_FIRST)
			iiter_seek_to_first(c);
		else if (how == MERGE_LAST)
			iiter_seek_to_last(c);
		else
			iiter_seek(c, target);
		if (!child_load(&m->child[i]))
			ok = false;
	}
	m->forward = how != MERGE_LAST;
	merge_settle(m, ok);
}

static void merge_seek_to_first(lsm_iiter *it) { merge_position(it, MERGE_FIRST, lsm_slice_make("", 0)); }
static void merge_seek_to_last(lsm_iiter *it) { merge_position(it, MERGE_LAST, lsm_slice_make("", 0)); }
static void merge_seek(lsm_iiter *it, lsm_slice target) { merge_position(it, MERGE_SEEK, target); }

/* One step of child c in the given direction; false if it failed. */
static inline bool child_step(struct merge_child *c, bool forward)
{
	if (forward)
		iiter_next(c->it);
	else
		iiter_prev(c->it);
	return child_load(c);
}

static void merge_step(struct merge_iter *m, bool forward)
{
	if (m->forward == forward) {
		if (child_step(&m->child[m->cur], forward))
			merge_fix_current(m);
		else
			merge_settle(m, false);
		return;
	}
	/* Turning around: see the direction invariant above. */
	bool ok = true;
	for (int i = 0; i < m->n; i++) {
		struct merge_child *c = &m->child[i];
		if (i == m->cur)
			continue;
		if (c->valid) {
			ok &= child_step(c, forward);
			continue;
		}
		if (forward)
			iiter_seek_to_first(c->it);
		else
			iiter_seek_to_last(c->it);
		ok &= child_load(c);
	}
	ok &= child_step(&m->child[m->cur], forward);
	m->forward = forward;
	merge_settle(m, ok);
}

static void merge_next(lsm_iiter *it) { merge_step(MERGE(it), true); }
static void merge_prev(lsm_iiter *it) { merge_step(MERGE(it), false); }

static lsm_slice merge_key(lsm_iiter *it) { return MERGE(it)->child[MERGE(it)->cur].key; }
static lsm_slice merge_value(lsm_iiter *it) { return iiter_value(MERGE(it)->child[MERGE(it)->cur].it); }

static int merge_status(lsm_iiter *it)
{
	struct merge_iter *m = MERGE(it);

	for (int i = 0; i < m->n; i++) {
		int r = iiter_status(m->child[i].it);
		if (r != 0)
			return r;
	}
	return 0;
}

static void merge_destroy(lsm_iiter *it)
{
	struct merge_iter *m = MERGE(it);

	for (int i = 0; i < m->n; i++)
		iiter_destroy(m->child[i].it);
	free(m);
}

static const struct lsm_iiter_ops merge_ops = {
	.valid = merge_valid, .seek_to_first = merge_seek_to_first, .seek_to_last = merge_seek_to_last,
	.seek = merge_seek, .next = merge_next, .prev = merge_prev, .key = merge_key,
	.value = merge_value, .status = merge_status, .destroy = merge_destroy,
};

static void destroy_children(lsm_iiter **children, int n)
{
	for (int i = 0; children && i < n; i++)
		iiter_destroy(children[i]);
}

int lsm_merge_iter_new(lsm_iiter **children, int n, lsm_cmp_fn cmp, lsm_iiter **ret_iter)
{
	struct merge_iter *m;
	bool bad = n < 0 || !cmp || !ret_iter || (n > 0 && !children);

	for (int i = 0; !bad && i < n; i++)
		bad = !children[i];
	if (bad) {
		destroy_children(children, n);
		return -EINVAL;
	}
	if (n == 0) {
		lsm_iiter *e = lsm_empty_iter_new(0);
		if (!e)
			return -ENOMEM;
		*ret_iter = e;
		return 0;
	}
	if (n == 1) {
		/* Nothing to merge: hand the child back and save a layer of
		 * indirect calls on every step. */
		*ret_iter = children[0];
		return 0;
	}
	m = calloc(1, sizeof(*m) + (size_t)n * (sizeof(struct merge_child) + sizeof(int)));
	if (!m) {
		destroy_children(children, n);
		return -ENOMEM;
	}
	m->base.ops = &merge_ops;
	m->cmp = cmp;
	m->n = n;
	m->cur = -1;
	m->forward = true;
	m->order = (int *)(void *)(m->child + n);
	for (int i = 0; i < n; i++)
		m->child[i].it = children[i];
	*ret_iter = &m->base;
	return 0;
}

/* ---- db iterator ------------------------------------------------------ */

/*
 * Forward, the internal iterator sits on the entry being returned (the newest
 * visible version of key()), and key()/value() borrow from it; saved holds the
 * user key whose older versions the next step must skip.
 *
 * Reverse, the internal iterator sits just before every entry of key() (on
 * the previous user key's last entry, or invalid at the start), since finding
 * the newest visible version of a key while moving backward means reading
 * past it (versions come oldest first in that direction).  So key and value
 * are copies in saved and saved_val.
 *
 * A malformed internal key or an allocation failure makes the iterator
 * invalid for good with a sticky status: what a scan returns past corruption
 * cannot be trusted, and a caller that checks status only at the end must
 * still see it.
 */
struct db_buf {
	uint8_t *p;
	size_t len, cap;
};

struct db_iter {
	lsm_iiter base;
	lsm_iiter *in;       /* owned internal iterator */
	uint64_t seq;        /* versions with a larger sequence are invisible */
	lsm_slice key;       /* current user key: borrowed from in (forward) or saved (reverse) */
	bool valid;
	bool forward;
	int err;             /* sticky -EUCLEAN or -ENOMEM */
	struct db_buf saved;     /* user key (see above); also holds seek's lookup key */
	struct db_buf saved_val; /* reverse: current value */
	unsigned vtype;          /* LSM_TYPE_VALUE or LSM_TYPE_VPTR of the current entry */
	void (*cleanup)(void *arg);
	void *arg;
	/* Read sampling (lsm_db_iter_set_sampler): sample is called with the
	 * entry at which the bytes read since the last call exceed a random
	 * period averaging LSM_READ_SAMPLE_PERIOD. */
	void (*sample)(void *arg, lsm_slice ikey);
	void *sample_arg;
	int64_t sample_left;
	uint64_t rng;
};
#define DB(it) ((struct db_iter *)(it))

/* Makes room for n bytes, dropping the contents. */
static int buf_reserve(struct db_buf *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < n)
		cap = cap > SIZE_MAX / 2 ? n : cap * 2;
	/* malloc + free, not realloc: the old bytes are not needed. */
	uint8_t *p = malloc(cap);
	if (!p)
		return -ENOMEM;
	free(b->p);
	b->p = p;
	b->cap = cap;
	b->len = 0;
	return 0;
}

static inline int buf_set(struct db_buf *b, lsm_slice s)
{
	if (s.len > b->cap && buf_reserve(b, s.len) < 0)
		return -ENOMEM;
	if (s.len)
		memcpy(b->p, s.data, s.len);
	b->len = s.len;
	return 0;
}

/* Never a NULL pointer, even before the first allocation: an empty key or
 * value still reaches callers that memcpy/memcmp it. */
static inline lsm_slice buf_slice(const struct db_buf *b)
{
	return lsm_slice_make(b->p ? b->p : (const uint8_t *)"", b->len);
}

static void db_fail(struct db_iter *d, int err)
{
	d->err = err;
	d->valid = false;
}

/* Copies s into b; false (and fails the iterator) on ENOMEM. */
static inline bool db_save(struct db_iter *d, struct db_buf *b, lsm_slice s)
{
	if (buf_set(b, s) == 0)
		return true;
	db_fail(d, -ENOMEM);
	return false;
}

/* A period uniform in [0, 2 * LSM_READ_SAMPLE_PERIOD): random, so that a scan
 * with a regular stride cannot sample the same files every time. */
static int64_t next_sample_period(struct db_iter *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return (int64_t)(d->rng % (2 * LSM_READ_SAMPLE_PERIOD));
}

/* Splits the internal iterator's current key into user key and trailer.
 * Returns false (and fails the iterator) if it is malformed. */
static inline bool db_parse(struct db_iter *d, lsm_slice *ret_ukey, uint64_t *ret_trailer)
{
	lsm_slice ik = iiter_key(d->in);

	if (ik.len < 8) {
		db_fail(d, lsm_errf(-EUCLEAN, "db iterator: internal key of %zu bytes is shorter than its 8-byte trailer",
		                    ik.len));
		return false;
	}
	uint64_t t = get_fixed64(ik.data + ik.len - 8);
	if ((t & 0xff) > LSM_TYPE_VPTR) {
		db_fail(d, lsm_errf(-EUCLEAN, "db iterator: unknown entry type %u in internal key (sequence %llu, key length %zu)",
		                    (unsigned)(t & 0xff), (unsigned long long)(t >> 8), ik.len - 8));
		return false;
	}
	*ret_ukey = lsm_slice_make(ik.data, ik.len - 8);
	*ret_trailer = t;
	if (d->sample) {
		d->sample_left -= (int64_t)(ik.len + iiter_value(d->in).len);
		if (d->sample_left < 0) {
			d->sample_left += next_sample_period(d);
			d->sample(d->sample_arg, ik);
		}
	}
	return true;
}

/* Moving forward from the internal iterator's position, stops at the first
 * visible value whose user key is not hidden: with skipping, versions of the
 * key in saved are hidden (already returned or deleted).  Within a user key
 * versions come newest first, so the first visible one decides. */
static void db_find_next(struct db_iter *d, bool skipping)
{
	while (iiter_valid(d->in)) {
		lsm_slice ukey;
		uint64_t t;
		if (!db_parse(d, &ukey, &t))
			return;
		if ((t >> 8) <= d->seq) {
			/* Keys ascend, so "not after the skipped key" is equality. */
			if (skipping && lsm_slice_eq(ukey, buf_slice(&d->saved))) {
				/* an older version of a key passed or deleted */
			} else if ((t & 0xff) == LSM_TYPE_DELETE) {
				if (!db_save(d, &d->saved, ukey))
					return;
				skipping = true;
			} else {
				d->key = ukey;
				d->vtype = (unsigned)(t & 0xff);
				d->valid = true;
				return;
			}
		}
		iiter_next(d->in);
	}
	d->valid = false;
}

/* Moving backward from the internal iterator's position, collects the newest
 * visible version of the nearest user key that has a visible value, leaving
 * the internal iterator just before that key's entries. */
static void db_find_prev(struct db_iter *d)
{
	unsigned type = LSM_TYPE_DELETE;   /* of the newest visible version seen of saved; DELETE: none yet */

	while (iiter_valid(d->in)) {
		lsm_slice ukey;
		uint64_t t;
		if (!db_parse(d, &ukey, &t))
			return;
		if ((t >> 8) <= d->seq) {
			/* Keys descend here, so "before saved" is inequality. */
			if (type != LSM_TYPE_DELETE && !lsm_slice_eq(ukey, buf_slice(&d->saved)))
				break;
			/* Versions come oldest first: each visible one replaces
			 * the last (saved already holds ukey if type is VALUE). */
			if ((t & 0xff) != LSM_TYPE_DELETE &&
			    ((type == LSM_TYPE_DELETE && !db_save(d, &d->saved, ukey)) ||
			     !db_save(d, &d->saved_val, iiter_value(d->in))))
				return;
			type = (unsigned)(t & 0xff);
		}
		iiter_prev(d->in);
	}
	/* An internal failure (rather than the start of the data) may have cut
	 * off newer versions of saved: do not return a stale one. */
	if (type == LSM_TYPE_DELETE || (!iiter_valid(d->in) && iiter_status(d->in) != 0)) {
		d->valid = false;
		return;
	}
	d->key = buf_slice(&d->saved);
	d->vtype = type;
	d->valid = true;
}

static bool db_valid(lsm_iiter *it) { return DB(it)->valid; }

static void db_seek_to_first(lsm_iiter *it)
{
	struct db_iter *d = DB(it);

	if (d->err)
		return;
	d->forward = true;
	iiter_seek_to_first(d->in);
	db_find_next(d, false);
}

static void db_seek_to_last(lsm_iiter *it)
{
	struct db_iter *d = DB(it);

	if (d->err)
		return;
	d->forward = false;
	iiter_seek_to_last(d->in);
	db_find_prev(d);
}

static void db_seek(lsm_iiter *it, lsm_slice target)
{
	struct db_iter *d = DB(it);

	if (d->err)
		return;
	d->forward = true;
	/* target | pack(seq, SEEK) sorts before every version visible at seq
	 * and after every newer one, so those are skipped by the seek itself. */
	if (buf_reserve(&d->saved, target.len + 8) < 0) {
		db_fail(d, -ENOMEM);
		return;
	}
	d->saved.len = lsm_ikey_encode(d->saved.p, target, d->seq, LSM_TYPE_SEEK);
	iiter_seek(d->in, buf_slice(&d->saved));
	db_find_next(d, false);
}

static void db_next(lsm_iiter *it)
{
	struct db_iter *d = DB(it);

	if (d->err)
		return;
	if (!d->forward) {
		/* The internal iterator is just before key()'s entries (or
		 * invalid at the start); step onto them, then skip them: saved
		 * already holds key(). */
		d->forward = true;
		if (iiter_valid(d->in))
			iiter_next(d->in);
		else
			iiter_seek_to_first(d->in);
	} else {
		if (!db_save(d, &d->saved, d->key))
			return;
		iiter_next(d->in);
	}
	db_find_next(d, true);
}

static void db_prev(lsm_iiter *it)
{
	struct db_iter *d = DB(it);

	if (d->err)
		return;
	if (d->forward) {
		/* Step back over the newer (invisible) versions of key() so
		 * that the internal iterator is before all of its entries. */
		if (!db_save(d, &d->saved, d->key))
			return;
		for (;;) {
			lsm_slice ukey;
			uint64_t t;
			iiter_prev(d->in);
			if (!iiter_valid(d->in)) {
				d->valid = false;
				return;
			}
			if (!db_parse(d, &ukey, &t))
				return;
			if (!lsm_slice_eq(ukey, buf_slice(&d->saved)))
				break;
		}
		d->forward = false;
	}
	db_find_prev(d);
}

static lsm_slice db_key(lsm_iiter *it) { return DB(it)->key; }
static lsm_slice db_value(lsm_iiter *it)
{
	return DB(it)->forward ? iiter_value(DB(it)->in) : buf_slice(&DB(it)->saved_val);
}
static int db_status(lsm_iiter *it) { return DB(it)->err ? DB(it)->err : iiter_status(DB(it)->in); }

static void db_destroy(lsm_iiter *it)
{
	struct db_iter *d = DB(it);

	iiter_destroy(d->in);
	if (d->cleanup)
		d->cleanup(d->arg);
	free(d->saved.p);
	free(d->saved_val.p);
	free(d);
}

static const struct lsm_iiter_ops db_ops = {
	.valid = db_valid, .seek_to_first = db_seek_to_first, .seek_to_last = db_seek_to_last,
	.seek = db_seek, .next = db_next, .prev = db_prev, .key = db_key,
	.value = db_value, .status = db_status, .destroy = db_destroy,
};

/* On failure internal is destroyed and cleanup(arg) has run, as at destroy:
 * the caller is left with nothing to release either way. */
int lsm_db_iter_new(lsm_iiter *internal, uint64_t seq, void (*cleanup)(void *arg), void *arg,
                    lsm_iiter **ret_iter)
{
	struct db_iter *d = NULL;
	int r = -EINVAL;

	if (internal && ret_iter && seq <= LSM_MAX_SEQ) {
		d = calloc(1, sizeof(*d));
		r = d ? 0 : -ENOMEM;
	}
	if (r < 0) {
		iiter_destroy(internal);
		if (cleanup)
			cleanup(arg);
		return r;
	}
	d->base.ops = &db_ops;
	d->in = internal;
	d->seq = seq;
	d->forward = true;
	d->cleanup = cleanup;
	d->arg = arg;
	*ret_iter = &d->base;
	return 0;
}

void lsm_db_iter_set_sampler(lsm_iiter *it, void (*sample)(void *arg, lsm_slice ikey), void *arg, uint64_t seed)
{
	struct db_iter *d = DB(it);
	/* splitmix64's finalizer: consecutive seeds give unrelated states. */
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	d->sample = sample;
	d->sample_arg = arg;
	d->rng = (z ^ (z >> 31)) | 1;
	/* The first period is random too: a short scan samples with a
	 * probability in proportion to what it reads. */
	d->sample_left = next_sample_period(d);
}

unsigned lsm_db_iter_value_type(lsm_iiter *it)
{
	return DB(it)->vtype;
}
