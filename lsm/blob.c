/*
 * blob.c - value separation (WiscKey): the engine's side of the value log.
 *
 * The write leader moves every put value of at least value_threshold bytes
 * into the value log and puts a LSM_TYPE_VPTR record (the encoded pointer)
 * into the WAL and the memtable in its place.  Reads resolve pointers with
 * one vlog read; iterating keys never touches the log.
 *
 * Durability order: the value-log records of a group are handed to the OS
 * (vlog_flush) before its WAL record is written, and synced (vlog_sync)
 * before any WAL sync, so a WAL record that survives a crash or power cut
 * never points at a value that did not.  Replay still checks every pointer
 * (lsm_blob_verify_batch): a group whose value was lost was never
 * acknowledged as synced, and neither was anything after it.
 */
#include "db_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../vlog/vlog.h"

struct separate_ctx {
	lsm_db *db;
	lsm_batch *out;
	size_t threshold;
	int err;
};

static int out_reserve(lsm_batch *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return 0;
	size_t cap = b->cap * 2 > b->len + extra ? b->cap * 2 : b->len + extra;
	uint8_t *p = realloc(b->rep, cap);
	if (!p)
		return -ENOMEM;
	b->rep = p;
	b->cap = cap;
	return 0;
}

static int separate_one(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct separate_ctx *c = arg;
	uint8_t ptrbuf[VLOG_PTR_MAX_ENCODED];
	lsm_slice stored = value;
	unsigned tag = type;
	int r;

	(void)seq;
	if (type == LSM_TYPE_VALUE && value.len >= c->threshold) {
		struct vlog_ptr ptr;
		r = vlog_append(c->db->vlog, key.data, key.len, value.data, value.len, &ptr);
		if (r < 0)
			return r;
		stored = lsm_slice_make(ptrbuf, vlog_ptr_encode(&ptr, ptrbuf));
		tag = LSM_TYPE_VPTR;
		atomic_fetch_add(&c->db->st_vlog_bytes, ptr.length);
		atomic_fetch_add(&c->db->mem_vlog_bytes, ptr.length);
	}
	r = out_reserve(c->out, 1 + 2 * VARINT32_MAX + key.len + stored.len);
	if (r < 0)
		return r;
	uint8_t *p = c->out->rep + c->out->len;
	*p++ = (uint8_t)tag;
	p = put_varint32(p, (uint32_t)key.len);
	if (key.len)
		memcpy(p, key.data, key.len);
	p += key.len;
	if (tag != LSM_TYPE_DELETE) {
		p = put_varint32(p, (uint32_t)stored.len);
		if (stored.len)
			memcpy(p, stored.data, stored.len);
		p += stored.len;
	}
	c->out->len = (size_t)(p - c->out->rep);
	return 0;
}

int lsm_blob_separate(lsm_db *db, const lsm_batch *in, lsm_batch *out)
{
	struct separate_ctx c = { .db = db, .out = out, .threshold = db->opt.value_threshold };
	int r;

	out->len = 0;
	r = out_reserve(out, in->len);
	if (r < 0)
		return r;
	memcpy(out->rep, in->rep, LSM_BATCH_HEADER);   /* sequence and count */
	out->len = LSM_BATCH_HEADER;
	out->user_bytes = in->user_bytes;
	r = lsm_batch_iterate(in->rep, in->len, separate_one, &c);
	if (r == 0)
		r = vlog_flush(db->vlog);
	if (r == 0)
		atomic_fetch_add(&db->vlog_gen, 1);
	return r;
}

int lsm_blob_resolve(lsm_db *db, lsm_slice ptrbytes, void **ret_val, size_t *ret_len)
{
	struct vlog_ptr ptr;
	int r;

	if (!db->vlog)
		return lsm_errf(-EUCLEAN, "%s: a value-log pointer, but the store has no value log", db->dir);
	r = vlog_ptr_decode(ptrbytes.data, ptrbytes.len, &ptr);
	if (r < 0)
		return r;
	return vlog_read(db->vlog, &ptr, NULL, NULL, ret_val, ret_len);
}

struct verify_ctx {
	lsm_db *db;
	int intact;
};

static int verify_one(void *arg, uint64_t seq, unsigned type, lsm_slice key, lsm_slice value)
{
	struct verify_ctx *c = arg;
	struct vlog_ptr ptr;
	int r;

	(void)seq;
	(void)key;
	if (type != LSM_TYPE_VPTR || !c->intact)
		return 0;
	if (!c->db->vlog || vlog_ptr_decode(value.data, value.len, &ptr) < 0) {
		c->intact = 0;
		return 0;
	}
	r = vlog_verify_ptr(c->db->vlog, &ptr);
	if (r != 0)
		return r < 0 ? r : 0;
	/* Not intact.  A crash loses only what runs past the durable end of a
	 * segment (or a whole segment whose creation never became durable); a
	 * complete record that fails its checksum is damage, and dropping the
	 * group would silently lose a write that was acknowledged. */
	char path[PATH_MAX];
	uint64_t size = 0;
	lsm_file *f;
	lsm_filename(path, sizeof(path), c->db->dir, LSM_FILE_VLOG, ptr.segment);
	if (env_open(c->db->env, path, LSM_ENV_READ, &f) == 0) {
		r = env_size(c->db->env, f, &size);
		env_close(c->db->env, f);
		if (r < 0)
			return r;
		if (ptr.offset + ptr.length <= size && !c->db->opt.skip_corrupt_wal)
			return lsm_errf(-EBADMSG, "%s: record at offset %llu is damaged; a logged write points at "
			                "it (run fsck.lsmfs, or open with skip_corrupt_wal)", path,
			                (unsigned long long)ptr.offset);
	}
	c->intact = 0;
	return 0;
}

int lsm_blob_verify_batch(lsm_db *db, lsm_slice rec)
{
	struct verify_ctx c = { .db = db, .intact = 1 };
	int r = lsm_batch_iterate(rec.data, rec.len, verify_one, &c);

	return r < 0 ? r : c.intact;
}

int lsm_blob_sync(lsm_db *db)
{
	if (!db->vlog)
		return 0;
	/* Generations, not a flag: an append racing this sync must leave the
	 * log marked unsynced. */
	uint64_t gen = atomic_load(&db->vlog_gen);
	if (gen == atomic_load(&db->vlog_synced_gen))
		return 0;
	int r = vlog_sync(db->vlog);
	if (r < 0)
		return r;
	uint64_t cur = atomic_load(&db->vlog_synced_gen);
	while (cur < gen && !atomic_compare_exchange_weak(&db->vlog_synced_gen, &cur, gen))
		;
	return 0;
}
