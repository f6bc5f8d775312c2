/*
 * sst_build.c - the SSTable writer.  A table is written front to back, once:
 *
 *     table  := data_block* | filter_block? | index_block | footer
 *
 * Every block is stored as compress.c describes (body | type | checksum).
 * Data blocks hold the entries (internal key -> value) in key order and are
 * cut once their uncompressed size reaches opt->block_size.  The filter
 * block is the bloom filter (bloom.c) over the distinct user keys, never
 * compressed; it is absent when bloom_bits_per_key is 0.  The index block
 * (restart interval 1, so every index key is binary-searchable in place) has
 * one entry per data block:
 *
 *     key   = an internal key >= every key of the block and < every key of
 *             the next: the shortest user key strictly between the block's
 *             last user key and the next block's first, with trailer
 *             pack(LSM_MAX_SEQ, LSM_TYPE_SEEK); or the block's last key when
 *             no shorter user key fits (the last block gets a short successor
 *             of its last user key the same way)
 *     value = varint64 offset | varint64 size   (size excludes the trailer)
 *
 * The footer is the last 48 bytes of the file, little-endian:
 *
 *      0  fixed64  filter block offset    (0 when there is no filter)
 *      8  fixed32  filter block size      (0 when there is no filter)
 *     12  fixed32  index block size
 *     16  fixed64  index block offset
 *     24  fixed32  number of data blocks
 *     28  fixed32  checksum: lsm_checksum2(bytes 0..27, bytes 32..47)
 *     32  fixed64  number of entries
 *     40  fixed32  format version (LSM_SST_VERSION)
 *     44  fixed32  magic (LSM_SST_MAGIC, "LMST")
 *
 * Sizes are block sizes without their 5-byte trailer.  The blocks are
 * contiguous: data blocks from offset 0, then the filter, then the index,
 * which ends where the footer starts; readers check this.
 *
 * Output is staged in one buffer that blocks are encoded straight into, and
 * written with one pwrite per 64 KiB or so, not one per block.  finish syncs
 * the file before closing it, so a table named in a MANIFEST is durable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

#define WRITE_CHUNK (64u * 1024)

struct lsm_sst_builder {
	lsm_env *env;
	lsm_file *file;
	char *path;
	size_t block_size;          /* cut data blocks at this uncompressed size */
	int compression;
	lsm_block_builder *data;
	lsm_block_builder *index;
	lsm_bloom_builder *bloom;   /* NULL: no filter */
	uint8_t *out;               /* stored blocks not yet written */
	size_t out_len, out_cap;
	uint64_t flushed;           /* bytes already written to the file */
	uint8_t *last;              /* the last key added */
	size_t last_len, last_cap;
	uint8_t *sep;               /* scratch for index keys */
	size_t sep_cap;
	bool pending;               /* a data block was cut; its index entry waits
	                               for the next key, to pick a separator */
	uint64_t pending_off, pending_size;
	uint64_t entries;
	uint64_t nblocks;
	int status;                 /* first error; every later call returns it */
};

static int set_buf(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	uint8_t *q = realloc(*p, n);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int lsm_sst_builder_new(lsm_env *env, const char *path, const lsm_options *opt, lsm_sst_builder **ret_b)
{
	if (!opt || opt->block_size == 0 || opt->block_restart_interval < 1 || opt->bloom_bits_per_key < 0 ||
	    (opt->compression != LSM_COMPRESS_NONE && opt->compression != LSM_COMPRESS_LZ4))
		return -EINVAL;
	lsm_sst_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->env = env;
	b->block_size = opt->block_size;
	b->compression = opt->compression;
	int r = -ENOMEM;
	b->path = strdup(path);
	if (!b->path)
		goto fail;
	if ((r = lsm_block_builder_new(opt->block_restart_interval, &b->data)) < 0 ||
	    (r = lsm_block_builder_new(1, &b->index)) < 0)
		goto fail;
	if (opt->bloom_bits_per_key > 0 && (r = lsm_bloom_builder_new(opt->bloom_bits_per_key, &b->bloom)) < 0)
		goto fail;
	r = -ENOMEM;
	if (set_buf(&b->out, &b->out_cap, 2 * WRITE_CHUNK) < 0)
		goto fail;
	r = env_open(env, path, LSM_ENV_WRITE | LSM_ENV_CREATE | LSM_ENV_TRUNC, &b->file);
	if (r < 0) {
		r = lsm_errf(r, "%s: cannot create table", path);
		goto fail;
	}
	*ret_b = b;
	return 0;

fail:
	lsm_sst_builder_abandon(b);
	return r;
}

void lsm_sst_builder_abandon(lsm_sst_builder *b)
{
	if (!b)
		return;
	if (b->file)
		env_close(b->env, b->file);
	lsm_block_builder_free(b->data);
	lsm_block_builder_free(b->index);
	lsm_bloom_builder_free(b->bloom);
	free(b->out);
	free(b->last);
	free(b->sep);
	free(b->path);
	free(b);
}

uint64_t lsm_sst_builder_file_size(const lsm_sst_builder *b)
{
	return b->flushed + b->out_len;
}

uint64_t lsm_sst_builder_entries(const lsm_sst_builder *b)
{
	return b->entries;
}

/* Writes the staged bytes to the file. */
static int write_out(lsm_sst_builder *b)
{
	if (b->out_len == 0)
		return 0;
	int r = env_pwrite(b->env, b->file, b->out, b->out_len, b->flushed);
	if (r < 0)
		return lsm_errf(r, "%s: writing %zu bytes at offset %llu", b->path, b->out_len,
		                (unsigned long long)b->flushed);
	b->flushed += b->out_len;
	b->out_len = 0;
	return 0;
}

/* Encodes raw as the next block of the file; returns its handle. */
static int emit_block(lsm_sst_builder *b, lsm_slice raw, int compression, uint64_t *ret_off,
                      uint64_t *ret_size)
{
	if (!raw.data)
		return -ENOMEM;         /* the block builder could not append its restarts */
	size_t before = b->out_len;
	int r = lsm_block_encode(raw, compression, &b->out, &b->out_len, &b->out_cap);
	if (r < 0)
		return r;
	*ret_off = b->flushed + before;
	*ret_size = b->out_len - before - LSM_BLOCK_TRAILER;
	if (b->out_len >= WRITE_CHUNK)
		return write_out(b);
	return 0;
}

/* Puts user key u[0..j] with its byte j incremented, plus the maximal
 * trailer, into b->sep.  REQUIRES: u[j] != 0xff. */
static lsm_slice make_bumped(lsm_sst_builder *b, lsm_slice u, size_t j)
{
	memcpy(b->sep, u.data, j);
	b->sep[j] = (uint8_t)(u.data[j] + 1);
	put_fixed64(b->sep + j + 1, lsm_pack_trailer(LSM_MAX_SEQ, LSM_TYPE_SEEK));
	return lsm_slice_make(b->sep, j + 9);
}

/* The index key for the block ending at last: a short internal key k with
 * last <= k < next, or (next.data == NULL, the final block) last <= k.
 * Borrowed until the next call. */
static lsm_slice index_key(lsm_sst_builder *b, lsm_slice last, lsm_slice next)
{
	lsm_slice ua = lsm_ikey_user(last);
	size_t i = 0, j;

	if (next.data) {
		lsm_slice ub = lsm_ikey_user(next);
		size_t n = ua.len < ub.len ? ua.len : ub.len;
		while (i < n && ua.data[i] == ub.data[i])
			i++;
		if (i == n)
			return last;        /* one user key is a prefix of the other */
		/* Here ua[i] < ub[i].  Bumping byte i works if that stays below
		 * ub[i]; bumping any later byte of ua works too, since the
		 * result keeps ua's prefix, which already sorts below ub. */
		if (ua.data[i] + 1 < ub.data[i])
			j = i;
		else
			for (j = i + 1; j < ua.len && ua.data[j] == 0xff; j++)
				;
	} else {
		for (j = 0; j < ua.len && ua.data[j] == 0xff; j++)
			;
	}
	/* Only worth it if the user key gets shorter. */
	if (j + 1 >= ua.len)
		return last;
	return make_bumped(b, ua, j);
}

static int add_index_entry(lsm_sst_builder *b, lsm_slice next)
{
	uint8_t handle[2 * VARINT64_MAX];
	uint8_t *p = put_varint64(handle, b->pending_off);
	p = put_varint64(p, b->pending_size);
	lsm_slice key = index_key(b, lsm_slice_make(b->last, b->last_len), next);
	b->pending = false;
	return lsm_block_builder_add(b->index, key, lsm_slice_make(handle, (size_t)(p - handle)));
}

static int flush_data_block(lsm_sst_builder *b)
{
	int r = emit_block(b, lsm_block_builder_finish(b->data), b->compression, &b->pending_off,
	                   &b->pending_size);
	if (r < 0)
		return r;
	lsm_block_builder_reset(b->data);
	b->pending = true;
	b->nblocks++;
	return 0;
}

int lsm_sst_builder_add(lsm_sst_builder *b, lsm_slice ikey, lsm_slice value)
{
	if (b->status)
		return b->status;
	if (ikey.len < 8)
		return lsm_errf(-EINVAL, "%s: internal key of %zu bytes", b->path, ikey.len);
	lsm_slice last = lsm_slice_make(b->last, b->last_len);
	if (b->entries > 0 && lsm_ikey_cmp(last, ikey) >= 0)
		return lsm_errf(-EINVAL, "%s: keys added out of order (entry %llu)", b->path,
		                (unsigned long long)b->entries);
	/* The scratch separator is never longer than the key it shortens. */
	if (set_buf(&b->last, &b->last_cap, ikey.len) < 0 || set_buf(&b->sep, &b->sep_cap, ikey.len) < 0)
		return -ENOMEM;
	last = lsm_slice_make(b->last, b->last_len);

	int r = 0;
	if (b->pending)
		r = add_index_entry(b, ikey);
	if (r == 0 && b->bloom &&
	    (b->entries == 0 || !lsm_slice_eq(lsm_ikey_user(ikey), lsm_ikey_user(last))))
		r = lsm_bloom_builder_add(b->bloom, lsm_ikey_user(ikey));
	if (r == 0)
		r = lsm_block_builder_add(b->data, ikey, value);
	if (r < 0)
		return b->status = r;   /* the table is now inconsistent: stop here */
	memcpy(b->last, ikey.data, ikey.len);
	b->last_len = ikey.len;
	b->entries++;
	if (lsm_block_builder_estimate(b->data) >= b->block_size && (r = flush_data_block(b)) < 0)
		return b->status = r;
	return 0;
}

/* Writes everything after the data blocks. */
static int write_tail(lsm_sst_builder *b)
{
	uint64_t filter_off = 0, filter_size = 0, index_off, index_size;
	int r;

	if (!lsm_block_builder_empty(b->data) && (r = flush_data_block(b)) < 0)
		return r;
	if (b->pending && (r = add_index_entry(b, lsm_slice_make(NULL, 0))) < 0)
		return r;
	if (b->bloom) {
		uint8_t *f;
		size_t flen;
		if ((r = lsm_bloom_builder_finish(b->bloom, &f, &flen)) < 0)
			return r;
		r = emit_block(b, lsm_slice_make(f, flen), LSM_COMPRESS_NONE, &filter_off, &filter_size);
		free(f);
		if (r < 0)
			return r;
	}
	r = emit_block(b, lsm_block_builder_finish(b->index), b->compression, &index_off, &index_size);
	if (r < 0)
		return r;
	if (filter_size > UINT32_MAX || index_size > UINT32_MAX || b->nblocks > UINT32_MAX)
		return lsm_errf(-EFBIG, "%s: table too large for the footer", b->path);

	if (set_buf(&b->out, &b->out_cap, b->out_len + LSM_SST_FOOTER) < 0)
		return -ENOMEM;
	uint8_t *f = b->out + b->out_len;
	put_fixed64(f, filter_off);
	put_fixed32(f + 8, (uint32_t)filter_size);
	put_fixed32(f + 12, (uint32_t)index_size);
	put_fixed64(f + 16, index_off);
	put_fixed32(f + 24, (uint32_t)b->nblocks);
	put_fixed64(f + 32, b->entries);
	put_fixed32(f + 40, LSM_SST_VERSION);
	put_fixed32(f + 44, LSM_SST_MAGIC);
	put_fixed32(f + 28, lsm_checksum2(f, 28, f + 32, 16));
	b->out_len += LSM_SST_FOOTER;

	if ((r = write_out(b)) < 0)
		return r;
	if ((r = env_sync(b->env, b->file)) < 0)
		return lsm_errf(r, "%s: sync failed", b->path);
	return 0;
}

int lsm_sst_builder_finish(lsm_sst_builder *b, uint64_t *ret_file_size)
{
	int r = b->status ? b->status : write_tail(b);
	if (r == 0) {
		lsm_file *f = b->file;
		b->file = NULL;
		r = env_close(b->env, f);
		if (r < 0)
			r = lsm_errf(r, "%s: close failed", b->path);
		else
			*ret_file_size = b->flushed;
	}
	lsm_sst_builder_abandon(b);
	return r;
}
