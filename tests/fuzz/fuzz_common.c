/*
 * fuzz_common.c - the pieces the libFuzzer targets share (see
 * fuzz_common.h): the per-input in-memory env, the errno check, the
 * generator, and the structure-aware mutator for log.c's framing.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_test.h"
#include "../../util/errmsg.h"

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FUZZ FINDING: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

/* block.c keeps freed block buffers for reuse, which would hide a use after
 * free from ASan; the fuzz build compiles block.c with malloc_usable_size
 * renamed to this (see scripts/fuzz.sh), so every buffer is really freed. */
size_t fuzz_no_usable_size(void *p);
size_t fuzz_no_usable_size(void *p)
{
	(void)p;
	return 0;
}

/* And allocates exactly what is asked (the recycler rounds up to 256
 * bytes, and a read into the rounding would go unseen): the fuzz build
 * links with --wrap=lsm_block_buf_alloc. */
void *__wrap_lsm_block_buf_alloc(size_t n);
void *__wrap_lsm_block_buf_alloc(size_t n)
{
	return malloc(n);
}

void fuzz_env_put(lsm_env *env, const char *path, const void *data, size_t len)
{
	lsm_file *f;
	int r = env_open(env, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &f);

	if (r < 0)
		fuzz_fail("harness: cannot create %s: %d", path, r);
	if (len && (r = env_pwrite(env, f, data, len, 0)) < 0)
		fuzz_fail("harness: cannot write %s: %d", path, r);
	env_close(env, f);
}

lsm_env *fuzz_env_new(const char *name, const void *data, size_t len)
{
	lsm_env *env = env_mem_new();
	char path[256];

	if (!env)
		fuzz_fail("harness: env_mem_new failed");
	if (env_mkdir(env, FUZZ_DIR) < 0)
		fuzz_fail("harness: mkdir %s failed", FUZZ_DIR);
	if (name) {
		snprintf(path, sizeof(path), "%s/%s", FUZZ_DIR, name);
		fuzz_env_put(env, path, data, len);
	}
	return env;
}

void fuzz_env_free(lsm_env *env)
{
	env_mem_free(env);
}

static int expect(int r, const char *what, bool need_msg)
{
	if (r >= 0)
		return r;
	switch (-r) {
	case EBADMSG:
	case EUCLEAN:
		if (need_msg && !lsm_last_error()[0])
			fuzz_fail("%s returned %d (%s) without an error message", what, r, strerror(-r));
		return r;
	case ENOTSUP:
	case ENOMEM:
	case EIO:
		return r;
	default:
		fuzz_fail("%s returned %d (%s), not an errno for a damaged file; last error: %s", what, r,
		          strerror(-r), lsm_last_error());
	}
}

int fuzz_expect(int r, const char *what)
{
	return expect(r, what, true);
}

int fuzz_expect_bare(int r, const char *what)
{
	return expect(r, what, false);
}

void fuzz_rng_init(fuzz_rng *g, unsigned int seed)
{
	g->s = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed * 0xbf58476d1ce4e5b9ULL);
	if (!g->s)
		g->s = 1;
}

uint64_t fuzz_rng_next(fuzz_rng *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545f4914f6cdd1dULL;
}

uint64_t fuzz_rng_below(fuzz_rng *g, uint64_t n)
{
	return fuzz_rng_next(g) % n;
}

/* ---- log framing -------------------------------------------------------- */

uint32_t fuzz_log_len_mask(const uint8_t *data, size_t size)
{
	return size >= FUZZ_LOG_HEADER && get_fixed32(data + 8) == 2 ? FUZZ_LOG_V2_LEN_MASK : UINT32_MAX;
}

void fuzz_log_fix_checksums(uint8_t *data, size_t size)
{
	size_t off = FUZZ_LOG_HEADER;
	uint32_t mask = fuzz_log_len_mask(data, size);

	while (size >= off && size - off >= FUZZ_LOG_REC_HEADER) {
		uint32_t len = get_fixed32(data + off + 4) & mask;
		if (len > size - off - FUZZ_LOG_REC_HEADER)
			break;
		put_fixed32(data + off, lsm_checksum(data + off + 4, 4 + (size_t)len));
		off += FUZZ_LOG_REC_HEADER + len;
	}
}

/* A record found in the input: its payload's place, and (version 2) the
 * flag bits of its length field. */
struct log_rec {
	size_t off, len;
	uint32_t flags;
};

#define MAX_RECS 1024

/* Splits data into header, whole records (as the lengths say, checksums not
 * looked at) and the bytes after them.  Returns the record count; *ret_tail
 * is where the bytes no record claims start. */
static size_t log_split(const uint8_t *data, size_t size, uint32_t mask, struct log_rec *recs,
                        size_t *ret_tail)
{
	size_t off = FUZZ_LOG_HEADER, n = 0;

	while (n < MAX_RECS && size - off >= FUZZ_LOG_REC_HEADER) {
		uint32_t field = get_fixed32(data + off + 4), len = field & mask;
		if (len > size - off - FUZZ_LOG_REC_HEADER)
			break;
		recs[n].off = off + FUZZ_LOG_REC_HEADER;
		recs[n].len = len;
		recs[n].flags = field & ~mask;
		n++;
		off += FUZZ_LOG_REC_HEADER + len;
	}
	*ret_tail = off;
	return n;
}

/* Appends a framed record to out (room checked by the caller). */
static size_t log_emit(uint8_t *out, size_t pos, uint32_t flags, const uint8_t *payload, size_t len)
{
	put_fixed32(out + pos + 4, (uint32_t)len | flags);
	if (len)
		memcpy(out + pos + FUZZ_LOG_REC_HEADER, payload, len);
	put_fixed32(out + pos, lsm_checksum(out + pos + 4, 4 + len));
	return pos + FUZZ_LOG_REC_HEADER + len;
}

size_t fuzz_log_mutate(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static struct log_rec recs[MAX_RECS];
	fuzz_rng g;
	size_t tail, n, pick, pos, cap;
	uint8_t *out, *payload;
	size_t plen = 0, rh = FUZZ_LOG_REC_HEADER;
	uint32_t mask = fuzz_log_len_mask(data, size), flags = 0;
	unsigned mode, copies = 1;

	fuzz_rng_init(&g, seed);
	mode = (unsigned)fuzz_rng_below(&g, 16);
	if (size < FUZZ_LOG_HEADER || max_size < FUZZ_LOG_HEADER + rh || mode < 4) {
		/* Raw bytes: the header and the framing itself get mutated too. */
		size = LLVMFuzzerMutate(data, size, max_size);
		if (mode >= 2)
			fuzz_log_fix_checksums(data, size);
		return size;
	}
	n = log_split(data, size, mask, recs, &tail);
	if (mode == 15) {
		/* A torn tail: cut inside the last record, or add zero fill. */
		if (n && fuzz_rng_below(&g, 2)) {
			size_t start = recs[n - 1].off - rh;
			return start + (size_t)fuzz_rng_below(&g, size - start);
		}
		size_t add = 1 + (size_t)fuzz_rng_below(&g, 64);
		if (add > max_size - size)
			add = max_size - size;
		memset(data + size, 0, add);
		return size + add;
	}
	out = malloc(max_size);
	payload = malloc(max_size);
	if (!out || !payload) {
		free(out);
		free(payload);
		return size;
	}
	/* Which record changes (n: a new one at the end), and how. */
	pick = n ? (size_t)fuzz_rng_below(&g, n + 1) : 0;
	if (pick < n) {
		plen = recs[pick].len;
		flags = recs[pick].flags;
		memcpy(payload, data + recs[pick].off, plen);
	}
	/* Everything but the picked payload must still fit. */
	size_t rest = tail + (size - tail) + (pick == n ? rh : 0) - plen;
	if (rest > max_size) {
		/* No room for a new record's header: mutate the raw bytes. */
		free(out);
		free(payload);
		return LLVMFuzzerMutate(data, size, max_size);
	}
	cap = max_size - rest;
	if (plen > cap)
		plen = cap;
	if (mode == 13 && pick < n) {
		copies = 0;             /* drop it */
	} else if (mode == 14 && pick < n && rh + plen <= cap - plen) {
		copies = 2;             /* replay it: a duplicated record */
	} else if (cap) {
		plen = LLVMFuzzerMutate(payload, plen, cap);
	}
	memcpy(out, data, FUZZ_LOG_HEADER);
	pos = FUZZ_LOG_HEADER;
	for (size_t i = 0; i <= n; i++) {
		if (i == pick)
			for (unsigned c = 0; c < copies; c++)
				pos = log_emit(out, pos, flags, payload, plen);
		else if (i < n)
			pos = log_emit(out, pos, recs[i].flags, data + recs[i].off, recs[i].len);
	}
	if (size > tail && pos + (size - tail) <= max_size) {
		memmove(out + pos, data + tail, size - tail);
		pos += size - tail;
	}
	memcpy(data, out, pos);
	free(out);
	free(payload);
	return pos;
}
