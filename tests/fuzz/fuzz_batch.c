/*
 * fuzz_batch.c - libFuzzer target for the write-batch parser (batch.c),
 * which reads every WAL record at recovery, and the steps behind it: the
 * memtable a batch is applied to and the value pointers some records hold.
 *
 * Input: one batch representation (fixed64 sequence | fixed32 count |
 * records, grammar at the top of batch.c), as a WAL record carries it.  No
 * checksums are involved, so libFuzzer's own mutator is used.
 *
 * Beyond "no crash, no leak, no sanitizer report, only -EUCLEAN with a
 * message", it checks that a batch the parser accepts
 *   - yields exactly its count of records, with consecutive sequences, legal
 *     types, sizes within the limits and no value on a delete;
 *   - applies to a memtable that then holds exactly those entries in
 *     internal-key order, each found again by lookup;
 *   - rebuilt through the public calls (lsm_batch_put/delete) and appended
 *     to another batch, gives the same records again;
 *   - and that a value pointer record's value decodes or is refused with
 *     -EUCLEAN.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "lsm_int.h"
#include "vlog.h"

struct rec {
	uint64_t seq;
	unsigned type;
	lsm_slice key, value;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	bool has_ptr;
};

static int collect(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct recs *rs = arg;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 16;
		struct rec *v = realloc(rs->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = (struct rec){ seq, type, key, value };
	rs->has_ptr |= type == LSM_TYPE_VPTR;
	return 0;
}

/* The records of rep, which must be a valid batch. */
static void must_collect(const uint8_t *rep, size_t len, struct recs *rs, const char *what)
{
	int r = lsm_batch_iterate(rep, len, collect, rs);

	if (r == -ENOMEM)
		fuzz_fail("harness: out of memory");
	FUZZ_ASSERT(r == 0, "%s does not parse: %d (%s)", what, r, lsm_last_error());
}

static bool same_rec(const struct rec *a, const struct rec *b)
{
	return a->seq == b->seq && a->type == b->type && lsm_slice_eq(a->key, b->key) &&
	       lsm_slice_eq(a->value, b->value);
}

/* Applies the batch to a memtable and reads it back. */
static void check_memtable(const uint8_t *rep, size_t len, const struct recs *rs)
{
	lsm_memtable *m;
	lsm_iiter *it;
	size_t n = 0;
	int r;

	if (lsm_memtable_new(&m) < 0)
		fuzz_fail("harness: lsm_memtable_new");
	r = lsm_batch_insert(rep, len, m);
	FUZZ_ASSERT(r == 0 || r == -ENOMEM, "lsm_batch_insert of a valid batch: %d", r);
	if (r == 0 && lsm_memtable_iter_new(m, &it) == 0) {
		uint8_t *prev = NULL;
		size_t prev_len = 0;
		for (iiter_seek_to_first(it); iiter_valid(it); iiter_next(it), n++) {
			lsm_slice k = iiter_key(it);
			FUZZ_ASSERT(k.len >= 8, "memtable entry %zu: short internal key", n);
			FUZZ_ASSERT(!prev || lsm_ikey_cmp(lsm_slice_make(prev, prev_len), k) < 0,
			            "memtable entry %zu out of order", n);
			free(prev);
			prev = malloc(k.len);
			if (!prev)
				fuzz_fail("harness: out of memory");
			memcpy(prev, k.data, k.len);
			prev_len = k.len;
		}
		free(prev);
		FUZZ_ASSERT(n == rs->n, "memtable holds %zu entries after a batch of %zu", n, rs->n);
		iiter_destroy(it);
		/* The last record of each key is what a lookup at the batch's
		 * last sequence sees. */
		for (size_t i = 0; i < rs->n && i < 64; i++) {
			const struct rec *x = &rs->v[i];
			bool last = true;
			for (size_t j = i + 1; j < rs->n && last; j++)
				last = !lsm_slice_eq(rs->v[j].key, x->key);
			if (!last)
				continue;
			unsigned type = 0;
			lsm_slice v;
			r = lsm_memtable_get(m, x->key, rs->v[rs->n - 1].seq, &type, &v);
			FUZZ_ASSERT(r == 1 && type == x->type && (type == LSM_TYPE_DELETE || lsm_slice_eq(v, x->value)),
			            "memtable lookup of record %zu: %d, type %u", i, r, type);
		}
	}
	lsm_memtable_unref(m);
}

/* Builds the batch again with the public calls, then appends it to an
 * empty batch: both must parse to the same records. */
static void check_rebuild(const struct recs *rs, uint64_t seq)
{
	lsm_batch *b = NULL, *c = NULL;
	struct recs r1 = { 0 }, r2 = { 0 };

	if (lsm_batch_new(&b) < 0 || lsm_batch_new(&c) < 0)
		fuzz_fail("harness: lsm_batch_new");
	for (size_t i = 0; i < rs->n; i++) {
		const struct rec *x = &rs->v[i];
		int r = x->type == LSM_TYPE_DELETE ? lsm_batch_delete(b, x->key.data, x->key.len)
		                                   : lsm_batch_put(b, x->key.data, x->key.len, x->value.data, x->value.len);
		if (r == -ENOMEM)
			goto out;
		FUZZ_ASSERT(r == 0, "rebuilding record %zu: %d", i, r);
	}
	lsm_batch_set_seq(b, seq);
	FUZZ_ASSERT(lsm_batch_count(b) == rs->n, "rebuilt batch counts %u records", lsm_batch_count(b));
	must_collect(b->rep, b->len, &r1, "the rebuilt batch");
	FUZZ_ASSERT(r1.n == rs->n, "rebuilt batch has %zu records, not %zu", r1.n, rs->n);
	for (size_t i = 0; i < rs->n; i++)
		FUZZ_ASSERT(same_rec(&r1.v[i], &rs->v[i]), "rebuilt record %zu differs", i);
	if (lsm_batch_append(c, b) == 0) {
		lsm_batch_set_seq(c, seq);
		must_collect(c->rep, c->len, &r2, "the appended batch");
		FUZZ_ASSERT(r2.n == rs->n, "appended batch has %zu records, not %zu", r2.n, rs->n);
		for (size_t i = 0; i < rs->n; i++)
			FUZZ_ASSERT(same_rec(&r2.v[i], &rs->v[i]), "appended record %zu differs", i);
	}
out:
	free(r1.v);
	free(r2.v);
	lsm_batch_free(b);
	lsm_batch_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recs rs = { 0 };
	int r;

	lsm_clear_error();
	r = fuzz_expect(lsm_batch_iterate(data, size, NULL, NULL), "lsm_batch_iterate (validate)");
	FUZZ_ASSERT(r == 0 || r == -EUCLEAN, "lsm_batch_iterate: %d", r);
	if (r < 0)
		return 0;
	must_collect(data, size, &rs, "a validated batch");
	uint64_t seq = get_fixed64(data);
	uint32_t count = get_fixed32(data + 8);
	FUZZ_ASSERT(rs.n == count, "batch of %u records yielded %zu", count, rs.n);
	for (size_t i = 0; i < rs.n; i++) {
		const struct rec *x = &rs.v[i];
		FUZZ_ASSERT(x->seq == seq + i && x->seq <= LSM_MAX_SEQ, "record %zu: sequence %llu", i,
		            (unsigned long long)x->seq);
		FUZZ_ASSERT(x->type == LSM_TYPE_VALUE || x->type == LSM_TYPE_DELETE || x->type == LSM_TYPE_VPTR,
		            "record %zu: type %u", i, x->type);
		FUZZ_ASSERT(x->key.len <= LSM_MAX_KEY && x->value.len <= LSM_MAX_VALUE, "record %zu: sizes", i);
		FUZZ_ASSERT(x->type != LSM_TYPE_DELETE || x->value.len == 0, "record %zu: a delete with a value", i);
		if (x->type == LSM_TYPE_VPTR) {
			struct vlog_ptr p;
			lsm_clear_error();
			fuzz_expect(vlog_ptr_decode(x->value.data, x->value.len, &p), "vlog_ptr_decode");
		}
	}
	if (rs.n)
		check_memtable(data, size, &rs);
	if (!rs.has_ptr)
		check_rebuild(&rs, seq);
	free(rs.v);
	return 0;
}
