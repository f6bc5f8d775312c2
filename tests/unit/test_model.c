/*
 * test_model.c - a randomized model test of the whole engine through the
 * public API: a long seeded mix of puts, deletes, batches, gets, snapshots,
 * iterators with random seeks and walks in both directions, flushes, range
 * compactions and close+reopen, every result compared with an in-memory
 * reference.  Keys come from a small fixed set (with prefixes of each other,
 * the empty key and bytes 0x00/0xff) so overwrites and deletes keep hitting
 * live keys.  The reference is an array of values indexed by the position of
 * the key in the sorted set; values are refcounted so a frozen copy for a
 * snapshot or iterator is cheap.  A failure prints the seed and step; replay
 * with LSM_TEST_SEED=<seed>.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "env_test.h"
#include "testutil.h"

#define NKEYS_WANT 300
#define MAX_SNAPS 4
#define MAX_VALUE 20000

/* An immutable value shared between the live model and frozen copies. */
struct mval {
	int refs;
	size_t len;
	uint8_t data[];
};

struct mkey {
	uint8_t data[32];
	size_t len;
};

struct frozen_snap {
	const lsm_snapshot *snap;
	struct mval **vals;         /* nkeys entries, NULL = absent */
};

struct run {
	const char *name;
	uint64_t seed, rng;
	long step;
	lsm_env *env;
	lsm_options opt;
	lsm_db *db;
	struct mkey *keys;          /* sorted bytewise, unique */
	int nkeys;
	struct mval **cur;          /* the live model */
	struct frozen_snap snaps[MAX_SNAPS];
	int nsnaps;
	uint64_t flushes, compactions;  /* summed over the db handles so far */
	uint8_t vbuf[MAX_VALUE];
};

#define CHECK(R, cond, ...) do { \
		if (!(cond)) \
			report(R, __LINE__, __VA_ARGS__); \
	} while (0)

static void report(struct run *R, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("%s: seed=%llu step=%ld (line %d): %s [last error: %s]\n"
	         "replay with LSM_TEST_SEED=%llu", R->name, (unsigned long long)R->seed, R->step,
	         line, msg, lsm_last_error(), (unsigned long long)R->seed);
}

static uint64_t rnd(struct run *R, uint64_t n)
{
	return n ? test_rand(&R->rng) % n : 0;
}

static struct mval *mval_new(const void *p, size_t n)
{
	struct mval *v = malloc(sizeof(*v) + n);
	assert_non_null(v);
	v->refs = 1;
	v->len = n;
	if (n)
		memcpy(v->data, p, n);
	return v;
}

static struct mval *mval_ref(struct mval *v)
{
	if (v)
		v->refs++;
	return v;
}

static void mval_unref(struct mval *v)
{
	if (v && --v->refs == 0)
		free(v);
}

static struct mval **vals_copy(struct run *R, struct mval **src)
{
	struct mval **d = calloc((size_t)R->nkeys, sizeof(*d));
	assert_non_null(d);
	for (int i = 0; i < R->nkeys; i++)
		d[i] = mval_ref(src[i]);
	return d;
}

static void vals_free(struct run *R, struct mval **v)
{
	for (int i = 0; v && i < R->nkeys; i++)
		mval_unref(v[i]);
	free(v);
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;
	return r ? r : (al > bl) - (al < bl);
}

static int mkey_qsort_cmp(const void *a, const void *b)
{
	const struct mkey *x = a, *y = b;
	return key_cmp(x->data, x->len, y->data, y->len);
}

/* A random key: mostly from a small alphabet so that prefixes and shared
 * prefixes are common, sometimes an existing key extended by a byte or two. */
static void gen_key(struct run *R, struct mkey *k, const struct mkey *pool, int npool)
{
	static const uint8_t alpha[] = { 'a', 'b', 'c', 'k', 'z', 0x00, 0xff, '0' };
	if (npool && rnd(R, 3) == 0) {
		*k = pool[rnd(R, (uint64_t)npool)];
		size_t add = 1 + rnd(R, 2);
		while (add-- && k->len < sizeof(k->data))
			k->data[k->len++] = alpha[rnd(R, sizeof(alpha))];
		return;
	}
	k->len = rnd(R, 12);
	for (size_t i = 0; i < k->len; i++)
		k->data[i] = rnd(R, 4) ? (uint8_t)('a' + rnd(R, 6)) : alpha[rnd(R, sizeof(alpha))];
}

static void make_keys(struct run *R)
{
	struct mkey *k = calloc(NKEYS_WANT + 1, sizeof(*k));
	int n = 1, out = 1;
	assert_non_null(k);
	k[0].len = 0;                       /* the empty key is always in */
	for (; n < NKEYS_WANT + 1; n++)
		gen_key(R, &k[n], k + 1, n - 1);
	qsort(k, (size_t)n, sizeof(*k), mkey_qsort_cmp);
	for (int i = 1; i < n; i++)
		if (mkey_qsort_cmp(&k[i], &k[out - 1]) != 0)
			k[out++] = k[i];
	R->keys = k;
	R->nkeys = out;
}

/* Index of the first key >= probe (nkeys if none). */
static int lower_bound(struct run *R, const uint8_t *p, size_t n)
{
	int lo = 0, hi = R->nkeys;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (key_cmp(R->keys[mid].data, R->keys[mid].len, p, n) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t gen_value(struct run *R)
{
	uint64_t c = rnd(R, 100);
	size_t n = c < 70 ? rnd(R, 100) : c < 97 ? 100 + rnd(R, 1000) : 1000 + rnd(R, MAX_VALUE - 1000);
	uint64_t x = test_rand(&R->rng);
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = x * 6364136223846793005ull + (uint64_t)R->step;
		R->vbuf[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
	return n;
}

static void model_set(struct mval **vals, int id, struct mval *v)
{
	mval_unref(vals[id]);
	vals[id] = v;
}

static void check_get(struct run *R, const lsm_read_options *ro, struct mval **vals,
                      const uint8_t *k, size_t kl)
{
	void *v = NULL;
	size_t n = 0;
	int id = lower_bound(R, k, kl);
	struct mval *want = NULL;
	if (id < R->nkeys && key_cmp(R->keys[id].data, R->keys[id].len, k, kl) == 0)
		want = vals[id];
	int r = lsm_get(R->db, ro, k, kl, &v, &n);
	if (!want) {
		CHECK(R, r == -ENOENT, "get key#%d (len %zu): want -ENOENT, got %d (len %zu)", id, kl, r, n);
		if (r == 0)
			free(v);
		return;
	}
	CHECK(R, r == 0, "get key#%d: want a value of %zu bytes, got %d", id, want->len, r);
	CHECK(R, n == want->len && (n == 0 || memcmp(v, want->data, n) == 0),
	      "get key#%d: wrong value (len %zu, want %zu)", id, n, want->len);
	free(v);
}

/* Compares the iterator's position with model position pos (-1: invalid). */
static void check_pos(struct run *R, lsm_iter *it, struct mval **vals, int pos, const char *what)
{
	if (pos < 0) {
		if (lsm_iter_valid(it)) {
			size_t kl;
			lsm_iter_key(it, &kl);
			report(R, __LINE__, "%s: iterator valid (key len %zu) past the model's end", what, kl);
		}
		CHECK(R, lsm_iter_status(it) == 0, "%s: iterator status %d", what, lsm_iter_status(it));
		return;
	}
	CHECK(R, lsm_iter_valid(it), "%s: iterator invalid (status %d), model at key#%d", what,
	      lsm_iter_status(it), pos);
	size_t kl;
	const void *k = lsm_iter_key(it, &kl);
	CHECK(R, key_cmp(k, kl, R->keys[pos].data, R->keys[pos].len) == 0,
	      "%s: iterator at key#%d, model at key#%d", what, lower_bound(R, k, kl), pos);
	if (rnd(R, 4) == 0)
		return;                     /* values are fetched lazily: sometimes don't */
	const void *v;
	size_t vl;
	int r = lsm_iter_value(it, &v, &vl);
	CHECK(R, r == 0, "%s: iter value at key#%d: %d", what, pos, r);
	CHECK(R, vl == vals[pos]->len && (vl == 0 || memcmp(v, vals[pos]->data, vl) == 0),
	      "%s: iter value at key#%d wrong (len %zu, want %zu)", what, pos, vl, vals[pos]->len);
}

static int model_next(struct run *R, struct mval **vals, int from)
{
	for (int i = from; i < R->nkeys; i++)
		if (vals[i])
			return i;
	return -1;
}

static int model_prev(struct mval **vals, int from)
{
	for (int i = from; i >= 0; i--)
		if (vals[i])
			return i;
	return -1;
}

static void do_write(struct run *R, bool del)
{
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = rnd(R, 20) == 0;
	int id = (int)rnd(R, (uint64_t)R->nkeys);
	struct mkey *k = &R->keys[id];
	int r;
	if (del) {
		r = lsm_delete(R->db, &wo, k->data, k->len);
		CHECK(R, r == 0, "delete key#%d: %d", id, r);
		model_set(R->cur, id, NULL);
	} else {
		size_t n = gen_value(R);
		r = lsm_put(R->db, &wo, k->data, k->len, R->vbuf, n);
		CHECK(R, r == 0, "put key#%d: %d", id, r);
		model_set(R->cur, id, mval_new(R->vbuf, n));
	}
}

static void do_batch(struct run *R)
{
	lsm_batch *b;
	int n = 1 + (int)rnd(R, 30), r;
	int *ids = calloc((size_t)n, sizeof(int));
	struct mval **vs = calloc((size_t)n, sizeof(*vs));
	assert_true(ids && vs);
	assert_int_equal(lsm_batch_new(&b), 0);
	for (int i = 0; i < n; i++) {
		ids[i] = (int)rnd(R, (uint64_t)R->nkeys);
		struct mkey *k = &R->keys[ids[i]];
		if (rnd(R, 3) == 0) {
			r = lsm_batch_delete(b, k->data, k->len);
		} else {
			size_t vl = gen_value(R) % 2000;
			vs[i] = mval_new(R->vbuf, vl);
			r = lsm_batch_put(b, k->data, k->len, R->vbuf, vl);
		}
		CHECK(R, r == 0, "batch op %d: %d", i, r);
	}
	CHECK(R, lsm_batch_count(b) == (uint32_t)n, "batch count %u, want %d", lsm_batch_count(b), n);
	lsm_write_options wo;
	lsm_write_options_init(&wo);
	wo.sync = rnd(R, 10) == 0;
	r = lsm_write(R->db, &wo, b);
	CHECK(R, r == 0, "write batch of %d: %d", n, r);
	for (int i = 0; i < n; i++)
		model_set(R->cur, ids[i], vs[i]);   /* in order: the last op wins */
	lsm_batch_free(b);
	free(ids);
	free(vs);
}

/* A random probe key: usually one of the set, sometimes anything. */
static void probe_key(struct run *R, struct mkey *k)
{
	if (rnd(R, 3))
		*k = R->keys[rnd(R, (uint64_t)R->nkeys)];
	else
		gen_key(R, k, R->keys, R->nkeys);
}

/* An iterator over the live db or a kept snapshot: a random start, then a
 * random walk with direction changes, all compared with the frozen model.
 * For the live view, a few writes land after the iterator was made and must
 * stay invisible to it. */
static void do_iter(struct run *R)
{
	lsm_read_options ro;
	lsm_iter *it;
	struct mval **vals, **own = NULL;
	struct mkey pk;
	int pos, r;

	lsm_read_options_init(&ro);
	ro.fill_cache = (int)rnd(R, 2);
	if (R->nsnaps && rnd(R, 3) == 0) {
		struct frozen_snap *s = &R->snaps[rnd(R, (uint64_t)R->nsnaps)];
		ro.snapshot = s->snap;
		vals = s->vals;
	} else {
		vals = own = vals_copy(R, R->cur);
	}
	r = lsm_iter_new(R->db, &ro, &it);
	CHECK(R, r == 0, "iter_new: %d", r);
	CHECK(R, !lsm_iter_valid(it), "a new iterator is positioned");
	for (int w = (int)rnd(R, 4); w > 0; w--)
		do_write(R, rnd(R, 3) == 0);
	switch (rnd(R, 3)) {
	case 0:
		lsm_iter_seek_to_first(it);
		pos = model_next(R, vals, 0);
		check_pos(R, it, vals, pos, "seek_to_first");
		break;
	case 1:
		lsm_iter_seek_to_last(it);
		pos = model_prev(vals, R->nkeys - 1);
		check_pos(R, it, vals, pos, "seek_to_last");
		break;
	default:
		probe_key(R, &pk);
		lsm_iter_seek(it, pk.data, pk.len);
		pos = model_next(R, vals, lower_bound(R, pk.data, pk.len));
		check_pos(R, it, vals, pos, "seek");
		break;
	}
	int dir = rnd(R, 2) ? 1 : -1;
	for (int steps = (int)rnd(R, 60); steps > 0 && pos >= 0; steps--) {
		if (rnd(R, 5) == 0)
			dir = -dir;
		if (dir > 0) {
			lsm_iter_next(it);
			pos = model_next(R, vals, pos + 1);
			check_pos(R, it, vals, pos, "next");
		} else {
			lsm_iter_prev(it);
			pos = model_prev(vals, pos - 1);
			check_pos(R, it, vals, pos, "prev");
		}
	}
	lsm_iter_free(it);
	vals_free(R, own);
}

/* Every key, by a full scan each way and by get. */
static void verify_all(struct run *R, const lsm_read_options *ro, struct mval **vals)
{
	lsm_iter *it;
	int pos, r = lsm_iter_new(R->db, ro, &it);
	CHECK(R, r == 0, "iter_new: %d", r);
	lsm_iter_seek_to_first(it);
	for (pos = model_next(R, vals, 0); pos >= 0; pos = model_next(R, vals, pos + 1)) {
		check_pos(R, it, vals, pos, "full scan");
		lsm_iter_next(it);
	}
	check_pos(R, it, vals, -1, "full scan end");
	lsm_iter_seek_to_last(it);
	for (pos = model_prev(vals, R->nkeys - 1); pos >= 0; pos = model_prev(vals, pos - 1)) {
		check_pos(R, it, vals, pos, "reverse scan");
		lsm_iter_prev(it);
	}
	check_pos(R, it, vals, -1, "reverse scan end");
	lsm_iter_free(it);
	for (int i = 0; i < R->nkeys; i++)
		check_get(R, ro, vals, R->keys[i].data, R->keys[i].len);
}

static void snap_release(struct run *R, int i)
{
	lsm_snapshot_release(R->db, R->snaps[i].snap);
	vals_free(R, R->snaps[i].vals);
	R->snaps[i] = R->snaps[--R->nsnaps];
}

static void do_reopen(struct run *R)
{
	int r;
	if (R->nsnaps) {
		/* Close refuses while a snapshot is live and frees nothing. */
		r = lsm_close(R->db);
		CHECK(R, r == -EBUSY, "close with %d snapshots: %d", R->nsnaps, r);
		lsm_read_options ro;
		lsm_read_options_init(&ro);
		ro.snapshot = R->snaps[0].snap;
		verify_all(R, &ro, R->snaps[0].vals);
		while (R->nsnaps)
			snap_release(R, 0);
	}
	lsm_stats st;
	CHECK(R, lsm_get_stats(R->db, &st) == 0, "get_stats");
	R->flushes += st.flushes;
	R->compactions += st.compactions;
	r = lsm_close(R->db);
	R->db = NULL;
	CHECK(R, r == 0, "close: %d", r);
	r = lsm_open("/db", &R->opt, &R->db);
	CHECK(R, r == 0, "reopen: %d", r);
	verify_all(R, NULL, R->cur);
}

static void do_compact(struct run *R)
{
	struct mkey a, b;
	bool has_a = rnd(R, 4) != 0, has_b = rnd(R, 4) != 0;
	probe_key(R, &a);
	probe_key(R, &b);
	if (key_cmp(a.data, a.len, b.data, b.len) > 0) {
		struct mkey t = a;
		a = b;
		b = t;
	}
	int r = lsm_compact_range(R->db, has_a ? a.data : NULL, has_a ? a.len : 0,
	                          has_b ? b.data : NULL, has_b ? b.len : 0);
	CHECK(R, r == 0, "compact_range: %d", r);
}

static void step(struct run *R)
{
	uint64_t c = rnd(R, 1000);
	lsm_read_options ro;
	struct mkey pk;
	int r;

	if (c < 300) {
		do_write(R, false);
	} else if (c < 400) {
		do_write(R, true);
	} else if (c < 480) {
		do_batch(R);
	} else if (c < 680) {
		probe_key(R, &pk);
		check_get(R, NULL, R->cur, pk.data, pk.len);
	} else if (c < 750) {
		do_iter(R);
	} else if (c < 770) {
		if (R->nsnaps < MAX_SNAPS) {
			struct frozen_snap *s = &R->snaps[R->nsnaps];
			r = lsm_snapshot_new(R->db, &s->snap);
			CHECK(R, r == 0, "snapshot_new: %d", r);
			s->vals = vals_copy(R, R->cur);
			R->nsnaps++;
		}
	} else if (c < 830) {
		if (R->nsnaps) {
			struct frozen_snap *s = &R->snaps[rnd(R, (uint64_t)R->nsnaps)];
			lsm_read_options_init(&ro);
			ro.snapshot = s->snap;
			for (int i = 0; i < 10; i++) {
				probe_key(R, &pk);
				check_get(R, &ro, s->vals, pk.data, pk.len);
			}
		}
	} else if (c < 850) {
		if (R->nsnaps)
			snap_release(R, (int)rnd(R, (uint64_t)R->nsnaps));
	} else if (c < 858) {
		r = lsm_flush(R->db);
		CHECK(R, r == 0, "flush: %d", r);
	} else if (c < 864) {
		do_compact(R);
	} else if (c < 868) {
		do_reopen(R);
	} else if (c < 872) {
		verify_all(R, NULL, R->cur);
	} else if (c < 874) {
		r = lsm_wait_idle(R->db);
		CHECK(R, r == 0, "wait_idle: %d", r);
	} else {
		do_write(R, false);
	}
}

static void run_model(const char *name, void (*tune)(lsm_options *))
{
	struct run *R = calloc(1, sizeof(*R));
	long steps = test_long() ? 300000 : 25000;
	int r;

	assert_non_null(R);
	R->name = name;
	R->seed = R->rng = test_seed(name);
	if (R->rng == 0)
		R->rng = 1;                     /* xorshift needs a nonzero state */
	R->env = env_mem_new();
	assert_non_null(R->env);
	lsm_options_init(&R->opt);
	R->opt.env = R->env;
	R->opt.write_buffer_size = 64 * 1024;
	R->opt.target_file_size = 64 * 1024;
	R->opt.max_bytes_for_level_base = 256 * 1024;
	R->opt.block_cache_size = 128 * 1024;
	if (tune)
		tune(&R->opt);
	make_keys(R);
	R->cur = calloc((size_t)R->nkeys, sizeof(*R->cur));
	assert_non_null(R->cur);
	r = lsm_open("/db", &R->opt, &R->db);
	CHECK(R, r == 0, "open: %d", r);
	for (R->step = 0; R->step < steps; R->step++)
		step(R);
	verify_all(R, NULL, R->cur);
	while (R->nsnaps) {
		lsm_read_options ro;
		lsm_read_options_init(&ro);
		ro.snapshot = R->snaps[0].snap;
		verify_all(R, &ro, R->snaps[0].vals);
		snap_release(R, 0);
	}
	do_reopen(R);
	assert_int_equal(lsm_close(R->db), 0);
	print_message("# %s: %ld steps, %llu flushes, %llu compactions\n", name, steps,
	              (unsigned long long)R->flushes, (unsigned long long)R->compactions);
	assert_true(R->flushes > 0 && R->compactions > 0);
	vals_free(R, R->cur);
	free(R->keys);
	env_mem_free(R->env);
	free(R);
}

static void test_model_random(void **state)
{
	(void)state;
	run_model("test_model_random", NULL);
}

/* No compression, no bloom filter, tiny blocks and caches, few open tables,
 * eager level-0 compaction: other code paths, same answers. */
static void tune_small(lsm_options *o)
{
	o->compression = LSM_COMPRESS_NONE;
	o->bloom_bits_per_key = 0;
	o->block_size = 256;
	o->block_restart_interval = 2;
	o->block_cache_size = 4096;
	o->max_open_files = 20;
	o->l0_compaction_trigger = 2;
	o->write_buffer_size = 16 * 1024;
	o->target_file_size = 16 * 1024;
	o->max_bytes_for_level_base = 64 * 1024;
}

static void test_model_small_blocks(void **state)
{
	(void)state;
	run_model("test_model_small_blocks", tune_small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_random),
		cmocka_unit_test(test_model_small_blocks),
	};
	if (getenv("LSM_TEST_FILTER"))     /* run one case: LSM_TEST_FILTER=<name> */
		cmocka_set_test_filter(getenv("LSM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
