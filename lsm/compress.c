/*
 * compress.c - how a block is stored on disk: optionally LZ4-compressed, then
 * a 5-byte trailer.
 *
 *     stored  := body | uint8 type | fixed32 checksum
 *     body    := raw                                   (type 0, none)
 *              | varint32 raw_len | lz4_block(raw)     (type 1, lz4)
 *     checksum = lsm_checksum(body | type)
 *
 * Compression is kept only when the body shrinks by at least 1/8: below that
 * the CPU spent decompressing on every cache miss costs more than the bytes
 * saved.  The decoder verifies the checksum before it looks at anything else,
 * then refuses a declared raw_len above LSM_BLOCK_MAX_RAW or above what LZ4
 * can produce from the compressed bytes (less than 256 output bytes per input
 * byte), so a damaged length cannot make it allocate gigabytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "lsm_int.h"

#define TYPE_NONE 0
#define TYPE_LZ4  1

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

int lsm_block_encode(lsm_slice raw, int compression, uint8_t **buf, size_t *len, size_t *cap)
{
	if (compression != LSM_COMPRESS_NONE && compression != LSM_COMPRESS_LZ4)
		return -EINVAL;
	size_t start = *len;
	uint8_t type = TYPE_NONE;
	size_t body = 0;

	if (compression == LSM_COMPRESS_LZ4 && raw.len >= 64 && raw.len <= LSM_BLOCK_MAX_RAW) {
		/* Compress straight into the output buffer; if it does not pay,
		 * the raw bytes overwrite the attempt. */
		size_t bound = (size_t)LZ4_compressBound((int)raw.len);
		if (reserve(buf, cap, start + VARINT32_MAX + bound + LSM_BLOCK_TRAILER) < 0)
			return -ENOMEM;
		uint8_t *p = put_varint32(*buf + start, (uint32_t)raw.len);
		size_t hdr = (size_t)(p - (*buf + start));
		int n = LZ4_compress_default((const char *)raw.data, (char *)p, (int)raw.len, (int)bound);
		if (n > 0 && hdr + (size_t)n <= raw.len - raw.len / 8) {
			type = TYPE_LZ4;
			body = hdr + (size_t)n;
		}
	}
	if (type == TYPE_NONE) {
		if (reserve(buf, cap, start + raw.len + LSM_BLOCK_TRAILER) < 0)
			return -ENOMEM;
		if (raw.len)
			memcpy(*buf + start, raw.data, raw.len);
		body = raw.len;
	}
	uint8_t *t = *buf + start + body;
	t[0] = type;
	put_fixed32(t + 1, lsm_checksum(*buf + start, body + 1));
	*len = start + body + LSM_BLOCK_TRAILER;
	return 0;
}

/* Checks the trailer of stored and finds the body.  Returns the type. */
static int check_trailer(lsm_slice stored, size_t *ret_body)
{
	if (stored.len < LSM_BLOCK_TRAILER)
		return lsm_errf(-EUCLEAN, "block of %zu bytes is shorter than its trailer", stored.len);
	size_t body = stored.len - LSM_BLOCK_TRAILER;
	uint32_t want = get_fixed32(stored.data + body + 1);
	uint32_t got = lsm_checksum(stored.data, body + 1);
	if (want != got)
		return lsm_errf(-EBADMSG, "checksum mismatch (stored %08x, computed %08x)", want, got);
	uint8_t type = stored.data[body];
	if (type != TYPE_NONE && type != TYPE_LZ4)
		return lsm_errf(-EUCLEAN, "unknown compression type %u", type);
	*ret_body = body;
	return type;
}

/* Decompresses an LZ4 body into a new buffer. */
static int lz4_decode(const uint8_t *body, size_t n, uint8_t **ret_raw, size_t *ret_len)
{
	uint32_t raw_len;
	const uint8_t *p = get_varint32(body, body + n, &raw_len);
	if (!p)
		return lsm_errf(-EUCLEAN, "truncated compressed block header");
	size_t clen = n - (size_t)(p - body);
	if (raw_len > LSM_BLOCK_MAX_RAW || (uint64_t)raw_len > (uint64_t)clen * 256 || clen > INT32_MAX)
		return lsm_errf(-EUCLEAN, "implausible uncompressed size %u for %zu compressed bytes",
		                raw_len, clen);
	uint8_t *raw = malloc(raw_len ? raw_len : 1);
	if (!raw)
		return -ENOMEM;
	int got = LZ4_decompress_safe((const char *)p, (char *)raw, (int)clen, (int)raw_len);
	if (got < 0 || (uint32_t)got != raw_len) {
		free(raw);
		return lsm_errf(-EUCLEAN, "LZ4 data does not decode to the declared %u bytes", raw_len);
	}
	*ret_raw = raw;
	*ret_len = raw_len;
	return 0;
}

int lsm_block_decode(lsm_slice stored, uint8_t **ret_raw, size_t *ret_len)
{
	size_t body = 0;
	int type = check_trailer(stored, &body);
	if (type < 0)
		return type;
	if (type == TYPE_LZ4)
		return lz4_decode(stored.data, body, ret_raw, ret_len);
	uint8_t *raw = malloc(body ? body : 1);
	if (!raw)
		return -ENOMEM;
	if (body)
		memcpy(raw, stored.data, body);
	*ret_raw = raw;
	*ret_len = body;
	return 0;
}

int lsm_block_decode_owned(uint8_t *stored, size_t len, uint8_t **ret_raw, size_t *ret_len)
{
	size_t body = 0;
	int r = check_trailer(lsm_slice_make(stored, len), &body);
	if (r == TYPE_NONE) {
		/* The body is already the raw block: hand over the buffer; the
		 * trailer bytes after it are just never looked at again. */
		*ret_raw = stored;
		*ret_len = body;
		return 0;
	}
	if (r == TYPE_LZ4)
		r = lz4_decode(stored, body, ret_raw, ret_len);
	free(stored);
	return r;
}
