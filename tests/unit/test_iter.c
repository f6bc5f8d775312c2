/*
 * test_iter.c - unit tests for lsm/iter.c: the empty iterator, the merging
 * iterator (interleaved and duplicate keys, both directions and every turn,
 * seeks, empty and failing children, the sorted-array and heap code paths)
 * and the db iterator (versions, deletions, sequences above the snapshot,
 * corruption, internal failures, cleanup order).  Children are vector
 * iterators defined here: a sorted array of (key, value) that can be told to
 * fail at its Nth move.  Scenarios are written as scripts (see run()); two
 * randomized tests compare the merge and the db iterator with brute-force
 * models, print their seed and replay with LSM_TEST_SEED.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"
#include "testutil.h"

/* ---- vector-backed test iterator -------------------------------------- */

struct vent {
	uint8_t *key, *val;
	size_t klen, vlen;
	int tag;                /* the child it came from, for the models */
};

struct vec_iter {
	lsm_iiter base;
	struct vent *e;
	int n, cap;
	int pos;                /* current entry; -1 or n when not valid */
	lsm_cmp_fn cmp;
	int moves;              /* positioning calls so far */
	int fail_at;            /* this move fails and the iterator stays failed; 0 never */
	int fail_err;
	int err;
};

static int destroy_count;       /* vec iterators destroyed so far */

#define VEC(it) ((struct vec_iter *)(it))
static bool vec_valid(lsm_iiter *it) { return VEC(it)->pos >= 0 && VEC(it)->pos < VEC(it)->n; }
static int vec_status(lsm_iiter *it) { return VEC(it)->err; }

/* Counts a move and positions at pos unless this move fails. */
static void vec_move(struct vec_iter *v, int pos)
{
	if (++v->moves == v->fail_at && v->err == 0)
		v->err = v->fail_err;
	v->pos = v->err ? -1 : pos;
}

static void vec_seek_to_first(lsm_iiter *it) { vec_move(VEC(it), 0); }
static void vec_seek_to_last(lsm_iiter *it) { vec_move(VEC(it), VEC(it)->n - 1); }
static void vec_next(lsm_iiter *it) { assert_true(vec_valid(it)); vec_move(VEC(it), VEC(it)->pos + 1); }
static void vec_prev(lsm_iiter *it) { assert_true(vec_valid(it)); vec_move(VEC(it), VEC(it)->pos - 1); }

static lsm_slice vent_key(const struct vent *e) { return lsm_slice_make(e->key, e->klen); }

static void vec_seek(lsm_iiter *it, lsm_slice target)
{
	struct vec_iter *v = VEC(it);
	int lo = 0, hi = v->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (v->cmp(vent_key(&v->e[mid]), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	vec_move(v, lo);
}

static lsm_slice vec_key(lsm_iiter *it)
{
	assert_true(vec_valid(it));
	return vent_key(&VEC(it)->e[VEC(it)->pos]);
}

static lsm_slice vec_value(lsm_iiter *it)
{
	assert_true(vec_valid(it));
	struct vent *e = &VEC(it)->e[VEC(it)->pos];
	return lsm_slice_make(e->val, e->vlen);
}

static void vec_destroy(lsm_iiter *it)
{
	for (int i = 0; i < VEC(it)->n; i++) {
		free(VEC(it)->e[i].key);
		free(VEC(it)->e[i].val);
	}
	free(VEC(it)->e);
	free(it);
	destroy_count++;
}

static const struct lsm_iiter_ops vec_ops = {
	vec_valid, vec_seek_to_first, vec_seek_to_last, vec_seek, vec_next, vec_prev,
	vec_key, vec_value, vec_status, vec_destroy,
};

static int bytes_cmp(lsm_slice a, lsm_slice b) { return lsm_slice_cmp(a, b); }
static int ikey_cmp(lsm_slice a, lsm_slice b) { return lsm_ikey_cmp(a, b); }

/* Internal key order where both keys are well formed, bytewise otherwise:
 * lets the corruption tests put keys shorter than a trailer in a child. */
static int loose_cmp(lsm_slice a, lsm_slice b)
{
	return a.len >= 8 && b.len >= 8 ? lsm_ikey_cmp(a, b) : lsm_slice_cmp(a, b);
}

static struct vec_iter *vec_new(lsm_cmp_fn cmp)
{
	struct vec_iter *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	v->base.ops = &vec_ops;
	v->cmp = cmp;
	v->pos = -1;
	return v;
}

/* Appends an entry; entries must come in cmp order (checked). */
static void vec_add(struct vec_iter *v, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 8;
		v->e = realloc(v->e, (size_t)v->cap * sizeof(*v->e));
		assert_non_null(v->e);
	}
	struct vent *e = &v->e[v->n];
	e->key = malloc(klen + 1);
	e->val = malloc(vlen + 1);
	assert_true(e->key && e->val);
	memcpy(e->key, key, klen);
	memcpy(e->val, val, vlen);
	e->klen = klen;
	e->vlen = vlen;
	if (v->n > 0)
		assert_true(v->cmp(vent_key(&v->e[v->n - 1]), vent_key(e)) < 0);
	v->n++;
}

static void vec_add_ikey(struct vec_iter *v, const char *ukey, uint64_t seq, unsigned type, const char *val)
{
	uint8_t buf[256];
	assert_true(strlen(ukey) + 8 <= sizeof(buf));
	size_t n = lsm_ikey_encode(buf, lsm_slice_make(ukey, strlen(ukey)), seq, type);
	vec_add(v, buf, n, val, strlen(val));
}

/* A child from a space-separated list.  Plain keys ("a c") get values
 * "<key><id>"; with ikeys, "a@10" is a value "a10" and "b@11-" a deletion. */
static lsm_iiter *child_of(int id, bool ikeys, const char *list)
{
	struct vec_iter *v = vec_new(ikeys ? ikey_cmp : bytes_cmp);
	char tok[64], val[80];
	for (const char *p = list; *p; p += *p == ' ') {
		size_t n = strcspn(p, " ");
		assert_true(n < sizeof(tok));
		memcpy(tok, p, n);
		tok[n] = 0;
		p += n;
		if (!n)
			continue;
		if (!ikeys) {
			snprintf(val, sizeof(val), "%s%d", tok, id);
			vec_add(v, tok, n, val, strlen(val));
			continue;
		}
		char *at = strchr(tok, '@');
		assert_non_null(at);
		*at = 0;
		unsigned long long seq = strtoull(at + 1, NULL, 10);
		snprintf(val, sizeof(val), "%s%llu", tok, seq);
		vec_add_ikey(v, tok, seq, tok[n - 1] == '-' ? LSM_TYPE_DELETE : LSM_TYPE_VALUE, val);
	}
	return &v->base;
}

static lsm_iiter *merge_of(lsm_iiter **ch, int n, lsm_cmp_fn cmp)
{
	lsm_iiter *m = NULL;
	assert_int_equal(lsm_merge_iter_new(ch, n, cmp, &m), 0);
	assert_non_null(m);
	return m;
}

static lsm_iiter *db_over(lsm_iiter *internal, uint64_t seq)
{
	lsm_iiter *d = NULL;
	assert_int_equal(lsm_db_iter_new(internal, seq, NULL, NULL, &d), 0);
	assert_non_null(d);
	return d;
}

/*
 * Runs a script of space-separated steps on it:
 *   F L N P   seek_to_first, seek_to_last, next, prev
 *   S<key>    seek to key (S alone: the empty key)
 *   =k:v =k   expect valid at key k (with value v)
 *   $         expect not valid and status 0
 */
#define run(it, script) run_at((it), (script), __LINE__)

static void run_at(lsm_iiter *it, const char *script, int line)
{
	char tok[64];
	for (const char *p = script; *p; p += *p == ' ') {
		size_t n = strcspn(p, " ");
		assert_true(n < sizeof(tok));
		memcpy(tok, p, n);
		tok[n] = 0;
		p += n;
		if (tok[0] == 'F') {
			iiter_seek_to_first(it);
		} else if (tok[0] == 'L') {
			iiter_seek_to_last(it);
		} else if (tok[0] == 'N') {
			iiter_next(it);
		} else if (tok[0] == 'P') {
			iiter_prev(it);
		} else if (tok[0] == 'S') {
			iiter_seek(it, lsm_slice_make(tok + 1, n - 1));
		} else if (tok[0] == '$') {
			if (iiter_valid(it) || iiter_status(it) != 0)
				fail_msg("line %d step '%s' of \"%s\": valid %d status %d, expected the end", line,
				         tok, script, iiter_valid(it), iiter_status(it));
		} else {
			assert_int_equal(tok[0], '=');
			char *colon = strchr(tok, ':');
			size_t klen = colon ? (size_t)(colon - tok - 1) : n - 1;
			if (!iiter_valid(it))
				fail_msg("line %d step '%s' of \"%s\": not valid (status %d)", line, tok, script,
				         iiter_status(it));
			lsm_slice k = iiter_key(it), v = iiter_value(it);
			if (!lsm_slice_eq(k, lsm_slice_make(tok + 1, klen)) ||
			    (colon && !lsm_slice_eq(v, lsm_slice_make(colon + 1, strlen(colon + 1)))))
				fail_msg("line %d step '%s' of \"%s\": at %.*s:%.*s", line, tok, script, (int)k.len,
				         (const char *)k.data, (int)v.len, (const char *)v.data);
		}
	}
}

/* ---- empty iterator --------------------------------------------------- */

static void test_iter_empty(void **state)
{
	(void)state;
	lsm_iiter *e = lsm_empty_iter_new(0);
	assert_non_null(e);
	run(e, "F $ L $ Sa $");
	iiter_destroy(e);

	e = lsm_empty_iter_new(-EIO);
	assert_non_null(e);
	iiter_seek_to_first(e);
	assert_false(iiter_valid(e));
	assert_int_equal(iiter_status(e), -EIO);
	iiter_destroy(e);
	iiter_destroy(NULL);
}

/* ---- merging iterator ------------------------------------------------- */

static lsm_iiter *merge3(void)
{
	lsm_iiter *ch[3] = { child_of(0, false, "a c e g"), child_of(1, false, "b c f"),
	                     child_of(2, false, "a d g h") };
	return merge_of(ch, 3, bytes_cmp);
}

/* merge3's order: by key, equal keys by child */
static const char *const m3[] = { "=a:a0", "=a:a2", "=b:b1", "=c:c0", "=c:c1", "=d:d2",
                                  "=e:e0", "=f:f1", "=g:g0", "=g:g2", "=h:h2" };
#define M3_N 11

static void test_iter_merge_forward(void **state)
{
	(void)state;
	lsm_iiter *m = merge3();
	assert_false(iiter_valid(m));   /* not positioned until a seek */
	run(m, "F =a:a0 N =a:a2 N =b:b1 N =c:c0 N =c:c1 N =d:d2 N =e:e0 N =f:f1 N =g:g0 N =g:g2 N =h:h2 N $");
	run(m, "F =a:a0");              /* again after the end */
	iiter_destroy(m);
}

static void test_iter_merge_backward(void **state)
{
	(void)state;
	lsm_iiter *m = merge3();
	run(m, "L =h:h2 P =g:g2 P =g:g0 P =f:f1 P =e:e0 P =d:d2 P =c:c1 P =c:c0 P =b:b1 P =a:a2 P =a:a0 P $");
	iiter_destroy(m);
}

static void test_iter_merge_direction_changes(void **state)
{
	(void)state;
	lsm_iiter *m = merge3();

	/* Turn at every position, both ways: the neighbour must be exact,
	 * also between duplicates of a key in different children. */
	for (int i = 0; i < M3_N; i++) {
		iiter_seek_to_first(m);
		for (int j = 0; j < i; j++)
			iiter_next(m);
		run(m, m3[i]);
		iiter_prev(m);
		if (i == 0) {
			run(m, "$");
			continue;
		}
		run(m, m3[i - 1]);
		iiter_next(m);
		run(m, m3[i]);
		iiter_next(m);
		run(m, i + 1 < M3_N ? m3[i + 1] : "$");
	}
	for (int i = M3_N - 1; i >= 0; i--) {
		iiter_seek_to_last(m);
		for (int j = M3_N - 1; j > i; j--)
			iiter_prev(m);
		iiter_next(m);
		run(m, i + 1 < M3_N ? m3[i + 1] : "$");
		if (i + 1 < M3_N) {
			iiter_prev(m);
			run(m, m3[i]);
		}
	}
	/* zig-zag across the duplicates */
	run(m, "Sc =c:c0 N =c:c1 P =c:c0 P =b:b1 N =c:c0 N =c:c1 N =d:d2 P =c:c1 P =c:c0");
	run(m, "Sg N =g:g2 P =g:g0 N =g:g2 N =h:h2 P =g:g2 P =g:g0 P =f:f1 N =g:g0 N =g:g2 N =h:h2 N $");
	run(m, "L P =g:g2 N =h:h2 P =g:g2 P =g:g0 N =g:g2");
	iiter_destroy(m);
}

static void test_iter_merge_seek(void **state)
{
	(void)state;
	lsm_iiter *m = merge3();
	run(m, "Sc =c:c0 Sbb =c:c0 S =a:a0 Sg =g:g0 Sgz =h:h2 P =g:g2 Si $");
	run(m, "L P Se =e:e0 N =f:f1");   /* a seek while moving backward turns forward */
	iiter_destroy(m);
}

static void test_iter_merge_empty_children(void **state)
{
	(void)state;
	lsm_iiter *ch[4] = { child_of(0, false, ""), child_of(1, false, "b d"), lsm_empty_iter_new(0),
	                     child_of(3, false, "") };
	assert_non_null(ch[2]);
	lsm_iiter *m = merge_of(ch, 4, bytes_cmp);
	run(m, "F =b:b1 N =d:d1 P =b:b1 N =d:d1 N $ L =d:d1 P =b:b1 P $ Sc =d:d1 P =b:b1 N =d:d1");
	iiter_destroy(m);

	lsm_iiter *ch2[3] = { child_of(0, false, ""), child_of(1, false, ""), child_of(2, false, "") };
	m = merge_of(ch2, 3, bytes_cmp);
	run(m, "F $ L $ Sa $");
	iiter_destroy(m);

	m = merge_of(NULL, 0, bytes_cmp);   /* no children at all */
	run(m, "F $ L $ Sa $");
	iiter_destroy(m);
}

static void test_iter_merge_single_child(void **state)
{
	(void)state;
	lsm_iiter *ch[1] = { child_of(0, false, "x y") };
	lsm_iiter *m = merge_of(ch, 1, bytes_cmp);
	run(m, "L =y:y0 P =x:x0 N =y:y0 N $");
	destroy_count = 0;
	iiter_destroy(m);
	assert_int_equal(destroy_count, 1);
}

static void test_iter_merge_destroys_children(void **state)
{
	(void)state;
	lsm_iiter *ch[3] = { child_of(0, false, "a"), child_of(1, false, "b"), child_of(2, false, "c") };
	lsm_iiter *m = merge_of(ch, 3, bytes_cmp);
	destroy_count = 0;
	iiter_destroy(m);
	assert_int_equal(destroy_count, 3);

	/* a failing lsm_merge_iter_new destroys them as well */
	lsm_iiter *ch2[2] = { child_of(0, false, "a"), child_of(1, false, "b") };
	destroy_count = 0;
	m = NULL;
	assert_int_equal(lsm_merge_iter_new(ch2, 2, NULL, &m), -EINVAL);
	assert_null(m);
	assert_int_equal(destroy_count, 2);
	lsm_iiter *ch3[3] = { child_of(0, false, "a"), NULL, child_of(2, false, "b") };
	destroy_count = 0;
	assert_int_equal(lsm_merge_iter_new(ch3, 3, bytes_cmp, &m), -EINVAL);
	assert_int_equal(destroy_count, 2);
	assert_int_equal(lsm_merge_iter_new(NULL, -1, bytes_cmp, &m), -EINVAL);
	assert_int_equal(lsm_merge_iter_new(NULL, 2, bytes_cmp, &m), -EINVAL);
	assert_null(m);
}

static void fail_child(lsm_iiter *it, int at, int err)
{
	VEC(it)->fail_at = at;
	VEC(it)->fail_err = err;
}

static void expect_failed(lsm_iiter *it, int err)
{
	assert_false(iiter_valid(it));
	assert_int_equal(iiter_status(it), err);
}

static void test_iter_merge_error_status(void **state)
{
	(void)state;
	/* A child failing mid-scan ends the merge with its status: child 1
	 * fails at its third move (seek, b->e, then e->h). */
	lsm_iiter *ch[3] = { child_of(0, false, "a d g"), child_of(1, false, "b e h"),
	                     child_of(2, false, "c f i") };
	fail_child(ch[1], 3, -EIO);
	lsm_iiter *m = merge_of(ch, 3, bytes_cmp);
	run(m, "F =a N =b N =c N =d N =e");
	iiter_next(m);
	expect_failed(m, -EIO);
	iiter_seek_to_first(m);         /* the child stays failed */
	expect_failed(m, -EIO);
	iiter_destroy(m);

	/* The first failing child in child order gives the status. */
	lsm_iiter *ch2[3] = { child_of(0, false, "a"), child_of(1, false, "b"), child_of(2, false, "c") };
	fail_child(ch2[1], 1, -ENOSPC);
	fail_child(ch2[2], 1, -EIO);
	m = merge_of(ch2, 3, bytes_cmp);
	iiter_seek(m, lsm_slice_make("a", 1));
	expect_failed(m, -ENOSPC);
	iiter_destroy(m);

	/* Failures while turning around, in the current child (child 1's
	 * second move) and in a non-current one (child 0's third). */
	for (int c = 0; c < 2; c++) {
		lsm_iiter *ch3[2] = { child_of(0, false, "a c"), child_of(1, false, "b d") };
		fail_child(ch3[c], c == 0 ? 3 : 2, -EIO);
		m = merge_of(ch3, 2, bytes_cmp);
		run(m, "F N =b:b1");
		iiter_prev(m);
		expect_failed(m, -EIO);
		iiter_destroy(m);
	}

	/* An empty iterator that carries an error fails the merge too. */
	lsm_iiter *ch5[2] = { child_of(0, false, "a"), lsm_empty_iter_new(-EUCLEAN) };
	assert_non_null(ch5[1]);
	m = merge_of(ch5, 2, bytes_cmp);
	iiter_seek_to_last(m);
	expect_failed(m, -EUCLEAN);
	iiter_destroy(m);
}

/* ---- brute-force model for the randomized tests ------------------------ */

struct model {
	struct vent *e;     /* expected entries in order; borrowed */
	int n;
	int pos;            /* -1 or n: not valid */
};

static int model_order(const void *a, const void *b)
{
	const struct vent *x = a, *y = b;
	int c = lsm_slice_cmp(vent_key(x), vent_key(y));
	return c ? c : x->tag - y->tag;
}

static void model_check(const struct model *r, lsm_iiter *it, int step, uint64_t seed)
{
	bool valid = r->pos >= 0 && r->pos < r->n;
	if (iiter_valid(it) != valid || iiter_status(it) != 0)
		fail_msg("seed %llu step %d: valid %d status %d, model valid %d", (unsigned long long)seed, step,
		         iiter_valid(it), iiter_status(it), valid);
	if (!valid)
		return;
	lsm_slice k = iiter_key(it), v = iiter_value(it);
	const struct vent *e = &r->e[r->pos];
	assert_non_null(k.data);   /* even for the empty key: callers memcpy it */
	assert_non_null(v.data);
	if (!lsm_slice_eq(k, vent_key(e)) || !lsm_slice_eq(v, lsm_slice_make(e->val, e->vlen)))
		fail_msg("seed %llu step %d: differs from model entry %d", (unsigned long long)seed, step, r->pos);
}

/* Probes "<prefix><0..range-1>" with suffixes, to land on and between keys,
 * and sometimes the empty key. */
static lsm_slice probe(uint64_t *rng, char *buf, const char *prefix, int range)
{
	static const char *const suffix[] = { "", "", "", "\x01", "0", "z" };
	int n = snprintf(buf, 32, "%s%d%s", prefix, (int)(test_rand(rng) % (uint64_t)range),
	                 suffix[test_rand(rng) % 6]);
	return lsm_slice_make(buf, test_rand(rng) % 20 ? (size_t)n : 0);
}

/* Runs random operations on it and the model, checking after each. */
static void model_run(struct model *r, lsm_iiter *it, uint64_t *rng, uint64_t seed, int steps,
                      const char *prefix, int range)
{
	char buf[32];
	r->pos = -1;
	for (int step = 0; step < steps; step++) {
		bool valid = r->pos >= 0 && r->pos < r->n;
		unsigned op = (unsigned)(test_rand(rng) % 10);
		if (op <= 1 || (!valid && op >= 4)) {
			lsm_slice t = probe(rng, buf, prefix, range);
			iiter_seek(it, t);
			for (r->pos = 0; r->pos < r->n && lsm_slice_cmp(vent_key(&r->e[r->pos]), t) < 0; r->pos++)
				;
		} else if (op == 2) {
			iiter_seek_to_first(it);
			r->pos = 0;
		} else if (op == 3) {
			iiter_seek_to_last(it);
			r->pos = r->n - 1;
		} else if (op <= 6) {
			iiter_next(it);
			r->pos++;
		} else {
			iiter_prev(it);
			r->pos--;
		}
		model_check(r, it, step, seed);
	}
}

static int str_order(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_iter_merge_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("test_iter_merge_random"), rng = seed ? seed : 1;
	int rounds = test_long() ? 3000 : 300;

	for (int round = 0; round < rounds; round++) {
		/* 1 child (handed back as is), up to 8 (sorted array), more (heap) */
		int nch = 1 + (int)(test_rand(&rng) % 16), total = 0;
		lsm_iiter *ch[16];
		for (int c = 0; c < nch; c++) {
			/* a random subset of "k0".."k39", added in byte order */
			char keys[40][16];
			int nk = 0, density = (int)(test_rand(&rng) % 34);
			for (int i = 0; i < 40; i++)
				if ((int)(test_rand(&rng) % 100) < density)
					snprintf(keys[nk++], sizeof(keys[0]), "k%u", (unsigned)i % 64);
			qsort(keys, (size_t)nk, sizeof(keys[0]), str_order);
			ch[c] = child_of(c, false, "");
			for (int i = 0; i < nk; i++) {
				char val[40];
				snprintf(val, sizeof(val), "%.15s/%d", keys[i], c);
				vec_add(VEC(ch[c]), keys[i], strlen(keys[i]), val, strlen(val));
			}
			total += VEC(ch[c])->n;
		}
		struct model r = { .e = malloc(sizeof(struct vent) * (size_t)(total + 1)) };
		assert_non_null(r.e);
		for (int c = 0; c < nch; c++)
			for (int i = 0; i < VEC(ch[c])->n; i++) {
				r.e[r.n] = VEC(ch[c])->e[i];
				r.e[r.n++].tag = c;
			}
		qsort(r.e, (size_t)r.n, sizeof(*r.e), model_order);
		lsm_iiter *m = merge_of(ch, nch, bytes_cmp);
		model_run(&r, m, &rng, seed, 100, "k", 40);
		iiter_destroy(m);
		free(r.e);
	}
}

/* ---- db iterator ------------------------------------------------------ */

/* Like a memtable and two levels. */
static lsm_iiter *db_at(uint64_t seq)
{
	lsm_iiter *ch[3] = {
		child_of(0, true, "a@10 b@11- d@12 e@20"),
		child_of(1, true, "a@5 b@4 c@6- c@3 e@7- f@8"),
		child_of(2, true, "b@1 c@2 e@1 g@16- g@2"),
	};
	return db_over(merge_of(ch, 3, ikey_cmp), seq);
}

static void test_iter_db_versions_and_deletions(void **state)
{
	(void)state;
	static const struct { uint64_t seq; const char *fwd, *bwd; } cases[] = {
		{ 15, "F =a:a10 N =d:d12 N =f:f8 N =g:g2 N $", "L =g:g2 P =f:f8 P =d:d12 P =a:a10 P $" },
		{ 5, "F =a:a5 N =b:b4 N =c:c3 N =e:e1 N =g:g2 N $", "L =g:g2 P =e:e1 P =c:c3 P =b:b4 P =a:a5 P $" },
		{ 100, "F =a:a10 N =d:d12 N =e:e20 N =f:f8 N $", "L =f:f8 P =e:e20 P =d:d12 P =a:a10 P $" },
		{ LSM_MAX_SEQ, "F =a:a10 N =d:d12 N =e:e20 N =f:f8 N $", "L =f:f8 P =e:e20 P =d:d12 P =a:a10 P $" },
		{ 1, "F =b:b1 N =e:e1 N $", "L =e:e1 P =b:b1 P $" },
		{ 0, "F $", "L $" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lsm_iiter *d = db_at(cases[i].seq);
		run(d, cases[i].fwd);
		run(d, cases[i].bwd);
		iiter_destroy(d);
	}
}

static void test_iter_db_mixed_directions(void **state)
{
	(void)state;
	lsm_iiter *d = db_at(15);
	run(d, "F =a:a10 N =d:d12 P =a:a10 N =d:d12 N =f:f8 P =d:d12 P =a:a10 P $");
	run(d, "L =g:g2 P =f:f8 N =g:g2 N $ L P P =d:d12 N =f:f8 P =d:d12");
	iiter_destroy(d);
	d = db_at(5);
	run(d, "L =g:g2 P =e:e1 P =c:c3 N =e:e1 P =c:c3 P =b:b4 N =c:c3 P P =a:a5 N =b:b4 N =c:c3 N =e:e1");
	iiter_destroy(d);
}

static void test_iter_db_seek(void **state)
{
	(void)state;
	lsm_iiter *d = db_at(15);
	run(d, "S =a:a10 Sa =a Sa\x01 =d Sb =d Sc =d Sd =d Se =f Sf =f Sg =g:g2 Sg\x01 $ Sz $");
	run(d, "Se =f:f8 P =d:d12 Sb P =a:a10 N =d:d12 N =f:f8");
	iiter_destroy(d);
	d = db_at(5);   /* the snapshot applies to seeks too */
	run(d, "Sd =e:e1 Sc =c:c3 Sb =b:b4 P =a:a5");
	iiter_destroy(d);

	/* the empty key with an empty value, first met backward (before any
	 * buffer exists): still non-NULL pointers, since callers memcpy them */
	struct vec_iter *v = vec_new(ikey_cmp);
	vec_add_ikey(v, "", 1, LSM_TYPE_VALUE, "");
	d = db_over(&v->base, 1);
	run(d, "L =: P $ S =: P $ F =:");
	iiter_seek_to_last(d);
	assert_non_null(iiter_key(d).data);
	assert_non_null(iiter_value(d).data);
	iiter_destroy(d);
}

static void test_iter_db_long_keys(void **state)
{
	(void)state;
	/* keys and values longer than the initial buffers, met backward,
	 * three versions each of which seq 2 is visible */
	struct vec_iter *v = vec_new(ikey_cmp);
	size_t klen[3] = { 100, 3000, 20000 };
	uint8_t *key = malloc(20000 + 8), *ik = malloc(20000 + 8);
	assert_true(key && ik);
	for (int i = 0; i < 3; i++) {
		memset(key, 'a' + i, klen[i]);
		for (int s = 3; s >= 1; s--) {
			size_t n = lsm_ikey_encode(ik, lsm_slice_make(key, klen[i]), (uint64_t)s, LSM_TYPE_VALUE);
			key[0] = (uint8_t)('0' + s);    /* the value tells the version */
			vec_add(v, ik, n, key, klen[i]);
			key[0] = (uint8_t)('a' + i);
		}
	}
	lsm_iiter *d = db_over(&v->base, 2);
	iiter_seek_to_last(d);
	for (int i = 2; i >= 0; i--) {
		assert_true(iiter_valid(d));
		lsm_slice k = iiter_key(d), val = iiter_value(d);
		assert_int_equal(k.len, klen[i]);
		assert_int_equal(k.data[0], 'a' + i);
		assert_int_equal(k.data[klen[i] - 1], 'a' + i);
		assert_int_equal(val.len, klen[i]);
		assert_int_equal(val.data[0], '2');
		iiter_prev(d);
	}
	run(d, "$");
	memset(key, 'c', klen[2]);
	iiter_seek(d, lsm_slice_make(key, klen[2]));
	assert_true(iiter_valid(d));
	assert_int_equal(iiter_key(d).len, klen[2]);
	iiter_destroy(d);
	free(key);
	free(ik);
}

static void test_iter_db_corrupt_short_key(void **state)
{
	(void)state;
	/* forward */
	struct vec_iter *v = vec_new(loose_cmp);
	vec_add_ikey(v, "a", 1, LSM_TYPE_VALUE, "a1");
	vec_add(v, "bad", 3, "x", 1);
	vec_add_ikey(v, "c", 1, LSM_TYPE_VALUE, "c1");
	lsm_iiter *d = db_over(&v->base, 10);
	lsm_clear_error();
	run(d, "F =a:a1 N");
	expect_failed(d, -EUCLEAN);
	assert_non_null(strstr(lsm_last_error(), "shorter"));
	run(d, "F");                    /* sticky: later positioning stays failed */
	expect_failed(d, -EUCLEAN);
	run(d, "Sc");
	expect_failed(d, -EUCLEAN);
	iiter_destroy(d);

	/* backward, from the end */
	v = vec_new(loose_cmp);
	vec_add_ikey(v, "a", 1, LSM_TYPE_VALUE, "a1");
	vec_add(v, "z", 1, "x", 1);
	d = db_over(&v->base, 10);
	run(d, "L");
	expect_failed(d, -EUCLEAN);
	iiter_destroy(d);

	/* while turning from forward to backward */
	v = vec_new(loose_cmp);
	vec_add(v, "", 0, "x", 1);
	vec_add_ikey(v, "b", 1, LSM_TYPE_VALUE, "b1");
	d = db_over(&v->base, 10);
	run(d, "Sb =b:b1 P");
	expect_failed(d, -EUCLEAN);
	iiter_destroy(d);
}

static void test_iter_db_corrupt_type(void **state)
{
	(void)state;
	const unsigned bad[] = { 3, 0x7f, LSM_TYPE_SEEK };   /* 2 is LSM_TYPE_VPTR */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vec_iter *v = vec_new(ikey_cmp);
		vec_add_ikey(v, "a", 1, LSM_TYPE_VALUE, "a1");
		vec_add_ikey(v, "b", 50, bad[i], "b");   /* above the snapshot: still checked */
		vec_add_ikey(v, "c", 1, LSM_TYPE_VALUE, "c1");
		lsm_iiter *d = db_over(&v->base, 10);
		lsm_clear_error();
		run(d, "F =a:a1 N");
		expect_failed(d, -EUCLEAN);
		assert_non_null(strstr(lsm_last_error(), "type"));
		iiter_destroy(d);

		v = vec_new(ikey_cmp);
		vec_add_ikey(v, "a", 1, LSM_TYPE_VALUE, "a1");
		vec_add_ikey(v, "b", 5, bad[i], "b");
		d = db_over(&v->base, 10);
		run(d, "L");
		expect_failed(d, -EUCLEAN);
		iiter_destroy(d);
	}
}

static void test_iter_db_internal_error(void **state)
{
	(void)state;
	/* forward: the failure ends the scan with the internal status */
	lsm_iiter *in = child_of(0, true, "a@1 b@1 c@1");
	fail_child(in, 3, -EIO);
	lsm_iiter *d = db_over(in, 10);
	run(d, "F =a:a1 N =b:b1 N");
	expect_failed(d, -EIO);
	iiter_destroy(d);

	/* backward b@3 comes before b@5: failing in between must not return
	 * the stale b3 */
	in = child_of(0, true, "b@5 b@3");
	fail_child(in, 2, -EIO);
	d = db_over(in, 10);
	run(d, "L");
	expect_failed(d, -EIO);
	iiter_destroy(d);

	/* a failed seek, through a merge */
	lsm_iiter *ch[2] = { child_of(0, true, "a@2"), child_of(1, true, "b@5") };
	fail_child(ch[1], 1, -ENOMEM);
	d = db_over(merge_of(ch, 2, ikey_cmp), 10);
	run(d, "Sa");
	expect_failed(d, -ENOMEM);
	iiter_destroy(d);
}

static int cleanup_calls, cleanup_saw_destroyed;

static void count_cleanup(void *arg)
{
	cleanup_calls++;
	cleanup_saw_destroyed = destroy_count;
	*(int *)arg += 1;
}

static void test_iter_db_cleanup(void **state)
{
	(void)state;
	int token = 0;
	lsm_iiter *d = NULL;

	cleanup_calls = destroy_count = 0;
	assert_int_equal(lsm_db_iter_new(child_of(0, true, "a@1"), 1, count_cleanup, &token, &d), 0);
	run(d, "F =a:a1");
	assert_int_equal(cleanup_calls, 0);
	iiter_destroy(d);
	assert_int_equal(cleanup_calls, 1);
	assert_int_equal(token, 1);
	assert_int_equal(cleanup_saw_destroyed, 1);   /* the internal iterator went first */

	/* a failing lsm_db_iter_new disposes of both as well */
	cleanup_calls = destroy_count = 0;
	d = NULL;
	assert_int_equal(lsm_db_iter_new(child_of(0, true, ""), LSM_MAX_SEQ + 1, count_cleanup, &token, &d),
	                 -EINVAL);
	assert_null(d);
	assert_int_equal(destroy_count, 1);
	assert_int_equal(cleanup_calls, 1);
	assert_int_equal(cleanup_saw_destroyed, 1);
	assert_int_equal(lsm_db_iter_new(NULL, 1, NULL, NULL, &d), -EINVAL);
}

struct ver {
	char ukey[8];
	uint64_t seq;
	unsigned type;
	int child;
};

static int ver_order(const void *a, const void *b)
{
	const struct ver *x = a, *y = b;
	int c = strcmp(x->ukey, y->ukey);
	return c ? c : (x->seq < y->seq) - (x->seq > y->seq);
}

static void test_iter_db_random(void **state)
{
	(void)state;
	uint64_t seed = test_seed("test_iter_db_random"), rng = seed ? seed : 1;
	int rounds = test_long() ? 2000 : 200;

	for (int round = 0; round < rounds; round++) {
		int nver = (int)(test_rand(&rng) % 150), nch = 1 + (int)(test_rand(&rng) % 12);
		int nkeys = 1 + (int)(test_rand(&rng) % 25);
		struct ver *vs = calloc((size_t)nver + 1, sizeof(*vs));
		char (*vals)[24] = calloc((size_t)nver + 1, 24);
		struct model r = { .e = calloc((size_t)nver + 1, sizeof(struct vent)) };
		assert_true(vs && vals && r.e);
		/* user keys "u0".."u24" (byte order) and the empty key; each
		 * version its own sequence, in a random child */
		for (int i = 0; i < nver; i++) {
			int k = (int)(test_rand(&rng) % (uint64_t)(nkeys + 1));
			if (k < nkeys)
				snprintf(vs[i].ukey, sizeof(vs[i].ukey), "u%d", k);
			vs[i].seq = (uint64_t)i + 1;
			vs[i].type = test_rand(&rng) % 4 == 0 ? LSM_TYPE_DELETE : LSM_TYPE_VALUE;
			vs[i].child = (int)(test_rand(&rng) % (uint64_t)nch);
		}
		qsort(vs, (size_t)nver, sizeof(*vs), ver_order);
		uint64_t snap = test_rand(&rng) % (uint64_t)(nver + 3);
		lsm_iiter *ch[12];
		for (int c = 0; c < nch; c++)
			ch[c] = child_of(c, true, "");
		for (int i = 0; i < nver; i++) {
			snprintf(vals[i], 24, "%s@%llu", vs[i].ukey, (unsigned long long)vs[i].seq);
			vec_add_ikey(VEC(ch[vs[i].child]), vs[i].ukey, vs[i].seq, vs[i].type, vals[i]);
		}
		/* the model: for each user key its newest version <= snap, if a value */
		for (int i = 0; i < nver; i++) {
			bool decided = i > 0 && !strcmp(vs[i].ukey, vs[i - 1].ukey) && vs[i - 1].seq <= snap;
			if (vs[i].seq > snap || decided || vs[i].type != LSM_TYPE_VALUE)
				continue;
			r.e[r.n++] = (struct vent){ .key = (uint8_t *)vs[i].ukey, .klen = strlen(vs[i].ukey),
			                            .val = (uint8_t *)vals[i], .vlen = strlen(vals[i]) };
		}
		lsm_iiter *d = db_over(merge_of(ch, nch, ikey_cmp), snap);
		model_run(&r, d, &rng, seed, 120, "u", 25);
		iiter_destroy(d);
		free(vals);
		free(r.e);
		free(vs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iter_empty),
		cmocka_unit_test(test_iter_merge_forward),
		cmocka_unit_test(test_iter_merge_backward),
		cmocka_unit_test(test_iter_merge_direction_changes),
		cmocka_unit_test(test_iter_merge_seek),
		cmocka_unit_test(test_iter_merge_empty_children),
		cmocka_unit_test(test_iter_merge_single_child),
		cmocka_unit_test(test_iter_merge_destroys_children),
		cmocka_unit_test(test_iter_merge_error_status),
		cmocka_unit_test(test_iter_merge_random),
		cmocka_unit_test(test_iter_db_versions_and_deletions),
		cmocka_unit_test(test_iter_db_mixed_directions),
		cmocka_unit_test(test_iter_db_seek),
		cmocka_unit_test(test_iter_db_long_keys),
		cmocka_unit_test(test_iter_db_corrupt_short_key),
		cmocka_unit_test(test_iter_db_corrupt_type),
		cmocka_unit_test(test_iter_db_internal_error),
		cmocka_unit_test(test_iter_db_cleanup),
		cmocka_unit_test(test_iter_db_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
