/*
 * fuzz_wal.c - libFuzzer target for the write-ahead log as recovery reads
 * it: log.c's reader over a WAL file, every record it hands out parsed by
 * batch.c and applied to a memtable, as lsm_open's replay does.
 *
 * Input: the bytes of one WAL file (log.c's format, kind WAL, write batches
 * as payloads).  The custom mutator is fuzz_log_mutate, so most inputs have
 * correct framing and checksums and reach the batch parser.
 *
 * Both reader modes run on every input.  Beyond "no crash, no leak, no
 * sanitizer report, only damaged-file errnos", it checks:
 *   - strict mode, clean end: the good records and the dropped tail account
 *     for every byte (offset + tail_dropped + zero_fill == size); the end and an error
 *     are sticky;
 *   - skip_corrupt mode never fails on a checksum, and its records are the
 *     strict mode's records plus maybe more;
 *   - a batch the parser accepts yields exactly its count of records, with
 *     consecutive sequences and legal types, and each one is then in the
 *     memtable;
 *   - reopening the log for append at the reader's offset (what lsm_open
 *     does) and adding a record gives a log that reads back as the same
 *     records plus the new one, with nothing dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "lsm_int.h"

#define WAL_NAME "000007.wal"
#define WAL_PATH FUZZ_DIR "/" WAL_NAME

/* What a pass saw: a hash and length per record. */
struct seen {
	uint64_t *hash;
	size_t *len;
	size_t n, cap;
};

static void seen_add(struct seen *s, lsm_slice rec)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		uint64_t *h = realloc(s->hash, cap * sizeof(*h));
		if (h)
			s->hash = h;
		size_t *l = realloc(s->len, cap * sizeof(*l));
		if (l)
			s->len = l;
		if (!h || !l)
			fuzz_fail("harness: out of memory");
		s->cap = cap;
	}
	s->hash[s->n] = lsm_hash64(rec.data, rec.len);
	s->len[s->n++] = rec.len;
}

static void seen_done(struct seen *s)
{
	free(s->hash);
	free(s->len);
}

struct batch_check {
	uint64_t first_seq;
	uint32_t count, calls;
};

static int on_record(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct batch_check *c = arg;

	FUZZ_ASSERT(seq == c->first_seq + c->calls, "batch record %u: sequence %llu, expected %llu", c->calls,
	            (unsigned long long)seq, (unsigned long long)(c->first_seq + c->calls));
	FUZZ_ASSERT(type == LSM_TYPE_VALUE || type == LSM_TYPE_DELETE || type == LSM_TYPE_VPTR,
	            "batch record %u: type %u", c->calls, type);
	FUZZ_ASSERT(key.len <= LSM_MAX_KEY && value.len <= LSM_MAX_VALUE, "batch record %u: sizes", c->calls);
	FUZZ_ASSERT(type != LSM_TYPE_DELETE || value.len == 0, "batch record %u: a delete with a value",
	            c->calls);
	c->calls++;
	return 0;
}

/* Parses rec as a batch and, if it is one, applies it to the memtable and
 * looks every record up again. */
static void check_batch(lsm_slice rec, lsm_memtable *mem, uint64_t *next_seq)
{
	struct batch_check c = { 0 };
	int r;

	lsm_clear_error();
	r = fuzz_expect(lsm_batch_iterate(rec.data, rec.len, NULL, NULL), "lsm_batch_iterate (validate)");
	if (r < 0)
		return;
	c.first_seq = get_fixed64(rec.data);
	c.count = get_fixed32(rec.data + 8);
	r = lsm_batch_iterate(rec.data, rec.len, on_record, &c);
	FUZZ_ASSERT(r == 0, "a batch that validated failed to iterate: %d", r);
	FUZZ_ASSERT(c.calls == c.count, "batch of %u records gave %u", c.count, c.calls);
	/* Batches are applied in log order.  One whose sequences do not
	 * follow its predecessor's may repeat an entry (same key, same
	 * sequence: a record logged twice), which a memtable must never be
	 * given; it is lsm_open's replay (db_open.c) that has to refuse such
	 * a log, so it is not applied here. */
	if (c.count == 0 || c.first_seq < *next_seq)
		return;
	*next_seq = c.first_seq + c.count;
	lsm_clear_error();
	r = fuzz_expect(lsm_batch_insert(rec.data, rec.len, mem), "lsm_batch_insert");
	FUZZ_ASSERT(r == 0 || r == -ENOMEM, "lsm_batch_insert failed on a valid batch: %d", r);
}

/* Reads the whole log in one mode.  Returns the reader's final status (0 or
 * the error), fills *seen, and sets *ret_offset to the reader's offset. */
static int read_log(lsm_env *env, bool skip, size_t size, struct seen *seen, uint64_t *ret_offset)
{
	lsm_log_reader *rd = NULL;
	lsm_memtable *mem = NULL;
	uint64_t next_seq = 0;
	lsm_slice rec;
	int r;

	lsm_clear_error();
	r = fuzz_expect(lsm_log_reader_open(env, WAL_PATH, LSM_LOG_KIND_WAL, skip, &rd), "lsm_log_reader_open");
	if (r < 0)
		return r;
	if (lsm_memtable_new(&mem) < 0)
		fuzz_fail("harness: lsm_memtable_new");
	for (;;) {
		lsm_clear_error();
		r = fuzz_expect(lsm_log_reader_next(rd, &rec), "lsm_log_reader_next");
		if (r != 1)
			break;
		seen_add(seen, rec);
		check_batch(rec, mem, &next_seq);
	}
	/* An end or an error is sticky. */
	int again = lsm_log_reader_next(rd, &rec);
	FUZZ_ASSERT(again == r, "lsm_log_reader_next after %d returned %d", r, again);
	uint64_t off = lsm_log_reader_offset(rd), tail = lsm_log_reader_tail_dropped(rd);
	uint64_t zeros = lsm_log_reader_zero_fill(rd);
	FUZZ_ASSERT(off <= size && tail <= size - off && zeros <= size - off - tail,
	            "offset %llu + tail %llu + zero fill %llu beyond a %zu-byte log",
	            (unsigned long long)off, (unsigned long long)tail, (unsigned long long)zeros, size);
	if (r == 0 && !skip)
		FUZZ_ASSERT(off + tail + zeros == size,
		            "strict read ended at %llu with %llu dropped and %llu zeros of %zu bytes",
		            (unsigned long long)off, (unsigned long long)tail, (unsigned long long)zeros, size);
	if (r == -EBADMSG && skip)
		fuzz_fail("skip_corrupt reader failed with -EBADMSG");
	*ret_offset = off;
	lsm_log_reader_close(rd);
	lsm_memtable_unref(mem);
	return r;
}

/* Appends one record at the strict reader's offset and reads the log again:
 * the old records, then the new one, then a clean end with nothing dropped. */
static void check_reopen(lsm_env *env, const struct seen *before, uint64_t offset)
{
	static const char extra[] = "appended after recovery";
	lsm_log_writer *w;
	lsm_log_reader *rd;
	lsm_slice rec;
	size_t i = 0;
	int r;

	lsm_clear_error();
	r = fuzz_expect(lsm_log_writer_reopen(env, WAL_PATH, LSM_LOG_KIND_WAL, offset, &w), "lsm_log_writer_reopen");
	if (r < 0)
		return;
	r = lsm_log_writer_add(w, extra, sizeof(extra));
	FUZZ_ASSERT(r == 0, "lsm_log_writer_add after reopen: %d", r);
	FUZZ_ASSERT(lsm_log_writer_close(w) == 0, "lsm_log_writer_close after reopen failed");

	r = lsm_log_reader_open(env, WAL_PATH, LSM_LOG_KIND_WAL, false, &rd);
	FUZZ_ASSERT(r == 0, "reopened log does not open: %d (%s)", r, lsm_last_error());
	while ((r = lsm_log_reader_next(rd, &rec)) == 1) {
		if (i < before->n)
			FUZZ_ASSERT(rec.len == before->len[i] && lsm_hash64(rec.data, rec.len) == before->hash[i],
			            "record %zu differs after reopen", i);
		else
			FUZZ_ASSERT(i == before->n && rec.len == sizeof(extra) && memcmp(rec.data, extra, rec.len) == 0,
			            "record %zu after reopen is not the appended one", i);
		i++;
	}
	FUZZ_ASSERT(r == 0, "reading the reopened log failed: %d (%s)", r, lsm_last_error());
	FUZZ_ASSERT(i == before->n + 1, "reopened log holds %zu records, expected %zu", i, before->n + 1);
	FUZZ_ASSERT(lsm_log_reader_tail_dropped(rd) == 0, "reopened log has a torn tail");
	lsm_log_reader_close(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lsm_env *env = fuzz_env_new(WAL_NAME, data, size);
	struct seen strict = { 0 }, lax = { 0 };
	uint64_t off_strict = 0, off_lax = 0;
	int r_strict, r_lax;

	r_strict = read_log(env, false, size, &strict, &off_strict);
	r_lax = read_log(env, true, size, &lax, &off_lax);
	if (r_strict >= 0 || r_strict == -EBADMSG) {
		/* Skipping only ever adds records: up to the first damaged one
		 * both modes read the same. */
		FUZZ_ASSERT(r_lax >= 0 || r_lax == -ENOMEM || r_lax == -EIO,
		            "skip_corrupt failed (%d) where the strict reader opened the log", r_lax);
		FUZZ_ASSERT(lax.n >= strict.n, "skip_corrupt read %zu records, strict %zu", lax.n, strict.n);
		/* With no damage met, skipping had nothing to do. */
		FUZZ_ASSERT(r_strict != 0 || lax.n == strict.n, "skip_corrupt read %zu records from an undamaged "
		            "log where strict read %zu", lax.n, strict.n);
		for (size_t i = 0; i < strict.n; i++)
			FUZZ_ASSERT(lax.hash[i] == strict.hash[i] && lax.len[i] == strict.len[i],
			            "record %zu differs between the modes", i);
	}
	if (r_strict == 0 && off_strict >= FUZZ_LOG_HEADER)
		check_reopen(env, &strict, off_strict);
	seen_done(&strict);
	seen_done(&lax);
	fuzz_env_free(env);
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	return fuzz_log_mutate(data, size, max_size, seed);
}
