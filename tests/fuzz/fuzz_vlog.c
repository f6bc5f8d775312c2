/*
 * fuzz_vlog.c - libFuzzer target for the value log's readers (vlog/):
 * vlog_open over a directory holding one segment, vlog_scan of it, and
 * vlog_read / vlog_verify_ptr through the pointers the scan hands out and
 * through pointers near them that name no record.
 *
 * Input: the bytes of segment 000001.vlog (format at the top of vlog.c).
 * The custom mutator knows the record layout: it mostly mutates one
 * record's key or value and writes the segment back with the header, every
 * length and checksum and the seal right; or it drops, duplicates or cuts
 * records, adds or removes the seal, or mutates the raw bytes and repairs
 * the checksums.
 *
 * Beyond "no crash, no leak, no sanitizer report, only damaged-file
 * errnos", it checks:
 *   - a scan that succeeds accounts for every byte: its records, the
 *     dropped tail and the seal add up to the file's size;
 *   - every record the scan hands out reads back through its pointer with
 *     the same key and value, and verifies;
 *   - vlog_segments reports the one segment with the file's size, and a
 *     sealed one with the record count the scan found.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "vlog_int.h"

#define SEGMENT 1
#define MAX_READS 64            /* records read back through their pointers */

struct rec_seen {
	struct vlog_ptr ptr;
	uint64_t khash, vhash;
	size_t klen, vlen;
};

struct scan_state {
	size_t size;
	struct rec_seen v[MAX_READS];
	size_t n;
	uint64_t calls;
};

static int on_record(void *arg, const struct vlog_ptr *ptr, const void *key, size_t klen, const void *value,
                     size_t vlen)
{
	struct scan_state *s = arg;

	FUZZ_ASSERT(ptr->segment == SEGMENT && ptr->offset >= VLOG_HEADER_SIZE && ptr->length >= VLOG_REC_MIN &&
	            ptr->offset + ptr->length <= s->size,
	            "scan handed out pointer {%llu, %llu, %u} in a %zu-byte segment",
	            (unsigned long long)ptr->segment, (unsigned long long)ptr->offset, ptr->length, s->size);
	FUZZ_ASSERT(klen + vlen + VLOG_REC_MIN <= ptr->length, "record %llu: key %zu + value %zu exceed its length %u",
	            (unsigned long long)s->calls, klen, vlen, ptr->length);
	if (s->n < MAX_READS) {
		struct rec_seen *r = &s->v[s->n++];
		r->ptr = *ptr;
		r->khash = lsm_hash64(key, klen);
		r->vhash = lsm_hash64(value, vlen);
		r->klen = klen;
		r->vlen = vlen;
	}
	s->calls++;
	return 0;
}

static uint64_t no_new_files(void *arg)
{
	(void)arg;
	fuzz_fail("a read-only use of the value log asked for a file number");
}

/* Reads through a pointer that may name no record: any outcome but a crash
 * or an unexpected errno will do. */
static void read_bogus(vlog *v, struct vlog_ptr ptr)
{
	void *key = NULL, *val = NULL;
	size_t klen, vlen;
	int r;

	lsm_clear_error();
	r = fuzz_expect(vlog_read(v, &ptr, &key, &klen, &val, &vlen), "vlog_read (bogus pointer)");
	if (r == 0) {
		free(key);
		free(val);
	}
	lsm_clear_error();
	r = vlog_verify_ptr(v, &ptr);
	FUZZ_ASSERT(r == 0 || r == 1 || r == -ENOMEM || r == -EIO || r == -ENOTSUP,
	            "vlog_verify_ptr (bogus pointer) returned %d", r);
}

static void read_back(vlog *v, const struct rec_seen *s)
{
	void *key = NULL, *val = NULL;
	size_t klen = 0, vlen = 0;
	int r = vlog_read(v, &s->ptr, &key, &klen, &val, &vlen);

	if (r == -ENOMEM)
		return;
	FUZZ_ASSERT(r == 0, "vlog_read of a scanned record at %llu failed: %d (%s)",
	            (unsigned long long)s->ptr.offset, r, lsm_last_error());
	FUZZ_ASSERT(klen == s->klen && vlen == s->vlen && lsm_hash64(key, klen) == s->khash &&
	            lsm_hash64(val, vlen) == s->vhash, "vlog_read at %llu gave another record than the scan",
	            (unsigned long long)s->ptr.offset);
	free(key);
	free(val);
	r = vlog_verify_ptr(v, &s->ptr);
	FUZZ_ASSERT(r == 1 || r == -ENOMEM, "vlog_verify_ptr of a scanned record: %d", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lsm_env *env = fuzz_env_new("000001.vlog", data, size);
	struct scan_state *st = calloc(1, sizeof(*st));
	struct vlog_scan_result res;
	struct vlog_segment_info *segs = NULL;
	size_t nsegs = 0;
	vlog *v;
	int r;

	if (!st)
		fuzz_fail("harness: out of memory");
	st->size = size;
	lsm_clear_error();
	r = fuzz_expect(vlog_open(env, FUZZ_DIR, NULL, no_new_files, NULL, &v), "vlog_open");
	if (r < 0)
		goto out;
	r = vlog_segments(v, &segs, &nsegs);
	FUZZ_ASSERT(r == 0 || r == -ENOMEM, "vlog_segments: %d", r);
	if (r == 0)
		FUZZ_ASSERT(nsegs == 1 && segs[0].segment == SEGMENT && segs[0].size == size &&
		            !(segs[0].flags & VLOG_SEGMENT_ACTIVE), "vlog_segments does not list the one segment");

	lsm_clear_error();
	r = fuzz_expect(vlog_scan(v, SEGMENT, on_record, st, &res), "vlog_scan");
	if (r == 0) {
		uint64_t seal = res.sealed ? VLOG_SEAL_SIZE : 0;
		FUZZ_ASSERT(res.records == st->calls, "scan counts %llu records, handed out %llu",
		            (unsigned long long)res.records, (unsigned long long)st->calls);
		FUZZ_ASSERT(res.end + res.tail_dropped + seal == size,
		            "scan: end %llu + tail %llu + seal %llu is not the segment's %zu bytes",
		            (unsigned long long)res.end, (unsigned long long)res.tail_dropped,
		            (unsigned long long)seal, size);
		FUZZ_ASSERT(!res.sealed || res.tail_dropped == 0, "a sealed segment with a torn tail");
		if (segs && res.sealed)
			FUZZ_ASSERT((segs[0].flags & VLOG_SEGMENT_SEALED) && segs[0].records == res.records,
			            "sealed segment listed with %llu records, scan found %llu",
			            (unsigned long long)segs[0].records, (unsigned long long)res.records);
	}
	/* Records handed out before any error were checked whole: they must
	 * read back, even when the scan later failed. */
	for (size_t i = 0; i < st->n; i++)
		read_back(v, &st->v[i]);
	for (size_t i = 0; i < st->n && i < 8; i++) {
		struct vlog_ptr p = st->v[i].ptr;
		read_bogus(v, (struct vlog_ptr){ p.segment, p.offset + 1, p.length });
		read_bogus(v, (struct vlog_ptr){ p.segment, p.offset, p.length + 1 });
		read_bogus(v, (struct vlog_ptr){ p.segment, p.offset, p.length - 1 });
		read_bogus(v, (struct vlog_ptr){ p.segment, p.offset + p.length, p.length });
		read_bogus(v, (struct vlog_ptr){ p.segment + 1, p.offset, p.length });
	}
	read_bogus(v, (struct vlog_ptr){ SEGMENT, VLOG_HEADER_SIZE, (uint32_t)(size > 64 ? 64 : VLOG_REC_MIN) });
	r = vlog_close(v);
	FUZZ_ASSERT(r == 0, "vlog_close of a log nothing was appended to: %d", r);
out:
	free(segs);
	free(st);
	fuzz_env_free(env);
	return 0;
}

/* ---- the mutator --------------------------------------------------------- */

#define MAX_RECS 1024

struct vrec {
	unsigned type;
	const uint8_t *key, *value;
	uint32_t klen, vlen;
};

/* Splits data into the records that parse and fit (whatever follows them is
 * left out of a rewrite). */
static size_t vlog_split(const uint8_t *data, size_t size, struct vrec *recs)
{
	size_t off = VLOG_HEADER_SIZE, n = 0;
	struct vlog_rec rec;

	while (n < MAX_RECS && off < size && vlog_rec_parse(data + off, size - off, &rec) == VLOG_PARSE_OK &&
	       rec.len <= size - off) {
		recs[n].type = rec.type;
		recs[n].key = data + off + rec.hlen;
		recs[n].klen = rec.klen;
		recs[n].value = recs[n].key + rec.klen;
		recs[n].vlen = rec.vlen;
		n++;
		off += (size_t)rec.len;
	}
	return n;
}

/* Appends a record with a right checksum; false if it does not fit. */
static bool vlog_emit(uint8_t *out, size_t *pos, size_t cap, unsigned type, const uint8_t *key, uint32_t klen,
                      const uint8_t *value, uint32_t vlen)
{
	uint8_t h[VLOG_REC_HEADER_MAX];
	size_t hl = vlog_rec_header(h, type, klen, vlen);

	if (hl + (size_t)klen + vlen > cap - *pos)
		return false;
	uint8_t *p = out + *pos;
	memcpy(p, h, hl);
	if (klen)
		memmove(p + hl, key, klen);
	if (vlen)
		memmove(p + hl + klen, value, vlen);
	put_fixed32(p, lsm_checksum(p + 4, hl - 4 + klen + vlen));
	*pos += hl + klen + vlen;
	return true;
}

/* Appends a seal counting `records` value records. */
static bool vlog_emit_seal(uint8_t *out, size_t *pos, size_t cap, uint64_t records)
{
	uint8_t payload[VLOG_SEAL_PAYLOAD];

	put_fixed64(payload, records);
	put_fixed64(payload + 8, *pos);
	return vlog_emit(out, pos, cap, VLOG_TYPE_SEAL, NULL, 0, payload, sizeof(payload));
}

/* Repairs, in place, the header (number and checksum) and the checksum of
 * every record that parses and fits. */
static void vlog_fix_checksums(uint8_t *data, size_t size)
{
	size_t off = VLOG_HEADER_SIZE;
	struct vlog_rec rec;

	if (size < VLOG_HEADER_SIZE)
		return;
	vlog_header_encode(data, SEGMENT);
	while (off < size && vlog_rec_parse(data + off, size - off, &rec) == VLOG_PARSE_OK && rec.len <= size - off) {
		put_fixed32(data + off, lsm_checksum(data + off + 4, (size_t)rec.len - 4));
		off += (size_t)rec.len;
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static struct vrec recs[MAX_RECS];
	fuzz_rng g;
	unsigned mode;
	size_t n, pos = VLOG_HEADER_SIZE, values = 0;

	fuzz_rng_init(&g, seed);
	mode = (unsigned)fuzz_rng_below(&g, 16);
	if (size < VLOG_HEADER_SIZE || max_size < 2 * VLOG_HEADER_SIZE || mode < 4) {
		size = LLVMFuzzerMutate(data, size, max_size);
		if (mode >= 2)
			vlog_fix_checksums(data, size);
		return size;
	}
	n = vlog_split(data, size, recs);
	if (mode == 15) {
		/* A torn tail: cut inside the segment, or add zero fill. */
		if (fuzz_rng_below(&g, 2))
			return VLOG_HEADER_SIZE + (size_t)fuzz_rng_below(&g, size - VLOG_HEADER_SIZE + 1);
		size_t add = 1 + (size_t)fuzz_rng_below(&g, 64);
		if (add > max_size - size)
			add = max_size - size;
		memset(data + size, 0, add);
		return size + add;
	}
	bool sealed = n && recs[n - 1].type == VLOG_TYPE_SEAL;
	if (sealed)
		n--;
	if (mode == 14)
		sealed = !sealed;
	size_t pick = n ? (size_t)fuzz_rng_below(&g, n) : 0;
	uint8_t *out = malloc(max_size), *buf = malloc(max_size);
	if (!out || !buf) {
		free(out);
		free(buf);
		return size;
	}
	/* The picked record's new key or value goes in buf. */
	uint32_t blen = 0;
	bool mutate_key = fuzz_rng_below(&g, 4) == 0;
	if (n && mode < 12) {
		const uint8_t *src = mutate_key ? recs[pick].key : recs[pick].value;
		blen = mutate_key ? recs[pick].klen : recs[pick].vlen;
		size_t cap = max_size - (size - blen);
		memcpy(buf, src, blen);
		blen = (uint32_t)LLVMFuzzerMutate(buf, blen, cap > blen ? cap : blen);
	}
	memcpy(out, data, VLOG_HEADER_SIZE);
	vlog_header_encode(out, SEGMENT);
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		const struct vrec *r = &recs[i];
		unsigned copies = i == pick && mode == 12 ? 0 : i == pick && mode == 13 ? 2 : 1;
		for (unsigned c = 0; c < copies && ok; c++) {
			if (i == pick && mode < 12)
				ok = mutate_key ? vlog_emit(out, &pos, max_size, r->type, buf, blen, r->value, r->vlen)
				                : vlog_emit(out, &pos, max_size, r->type, r->key, r->klen, buf, blen);
			else
				ok = vlog_emit(out, &pos, max_size, r->type, r->key, r->klen, r->value, r->vlen);
			values += r->type == VLOG_TYPE_VALUE;
		}
	}
	if (ok && sealed)
		ok = vlog_emit_seal(out, &pos, max_size, values);
	if (ok) {
		memcpy(data, out, pos);
		size = pos;
	} else {
		size = LLVMFuzzerMutate(data, size, max_size);
		vlog_fix_checksums(data, size);
	}
	free(out);
	free(buf);
	return size;
}
