/*
 * kvbench_liblsm.c - the liblsm adapter for the shared kvbench harness
 * (shared/bench/kvbench: kvbench.h is the contract).  Only the harness
 * compiles it, as be_liblsm.c in a copy of its directory
 * (bench/run_kvbench.sh does that), never meson.
 *
 * Settings mapped from kvb_options: block_size, bloom_bits (a whole-table
 * bloom filter), cache_size (block cache of uncompressed blocks),
 * write_buffer_size and compression (KVB_COMPRESS_FAST = LZ4).  liblsm
 * verifies the checksum of every block it reads, whatever verify_checksums
 * says, and has no value-separation threshold in this version, so
 * value_threshold is ignored; describe() says both.  Everything else stays at
 * liblsm's defaults (lsm_options_init), listed by describe().
 *
 * flush is lsm_flush then lsm_sync, so the settle leaves the WAL on disk too;
 * compact is lsm_compact_range over everything; wait_idle is lsm_wait_idle;
 * stats is the "lsm.stats" property.  kvbench's void calls (batch_put,
 * iter_value ...) cannot return an error: a failed batch_put is remembered and
 * fails the batch_write, and an iterator or batch_new error stops the process,
 * since a benchmark that went on would report figures for a broken engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvbench.h"
#include "lsm.h"

static const lsm_write_options wo_nosync = { .sync = 0 };
static const lsm_write_options wo_sync = { .sync = 1 };

/* Prints liblsm's error for op and returns -1 (kvbench's failure). */
static int fail(const char *op, int r)
{
	fprintf(stderr, "liblsm %s: %s (%s)\n", op, strerror(-r), lsm_last_error());
	return -1;
}

static int check(const char *op, int r)
{
	return r < 0 ? fail(op, r) : 0;
}

/* Ends the process on an error where kvbench takes none: its iterator calls
 * are void, and it silently falls back to single puts when batch_new fails. */
static void must(const char *op, int r)
{
	if (r < 0) {
		fail(op, r);
		exit(1);
	}
}

static void options_from(const kvb_options *o, lsm_options *opt)
{
	lsm_options_init(opt);
	opt->block_size = o->block_size;
	opt->bloom_bits_per_key = o->bloom_bits;
	opt->block_cache_size = o->cache_size;
	opt->write_buffer_size = o->write_buffer_size;
	opt->compression = o->compression == KVB_COMPRESS_FAST ? LSM_COMPRESS_LZ4
	                                                       : LSM_COMPRESS_NONE;
	/* LevelDB reads tables through mmap by default; LSM_MMAP_READS=1 gives
	 * liblsm the same read path (its default is pread). */
	if (o->value_threshold)
		opt->value_threshold = o->value_threshold;
	const char *m = getenv("LSM_MMAP_READS");
	opt->mmap_reads = m && strcmp(m, "1") == 0;
}

static const char *l_version(void)
{
	return LSM_VERSION_STRING;
}

static const char *l_describe(const kvb_options *o)
{
	static char buf[640];
	lsm_options opt;

	options_from(o, &opt);
	snprintf(buf, sizeof buf,
	         "block_size=%zu bloom=%d bits/key (whole-table filter) lru_cache=%zu "
	         "write_buffer_size=%zu compression=%s checksums=always verified "
	         "value_threshold=%zu (values this large go to the value log) max_immutable_memtables=%d(default) "
	         "target_file_size=%zu(default) level_base=%llu x%d(default) "
	         "L0 trigger/slowdown/stop=%d/%d/%d(default) background_threads=%d(default) "
	         "max_open_files=%d(default) mmap_reads=%d",
	         opt.block_size, opt.bloom_bits_per_key, opt.block_cache_size,
	         opt.write_buffer_size, opt.compression == LSM_COMPRESS_LZ4 ? "lz4" : "none",
	         opt.value_threshold, opt.max_immutable_memtables, opt.target_file_size,
	         (unsigned long long)opt.max_bytes_for_level_base, opt.level_size_ratio,
	         opt.l0_compaction_trigger, opt.l0_slowdown_trigger, opt.l0_stop_trigger,
	         opt.background_threads, opt.max_open_files, opt.mmap_reads);
	return buf;
}

static void *l_open(const char *dir, const kvb_options *o)
{
	lsm_options opt;
	lsm_db *db;
	int r;

	options_from(o, &opt);
	r = lsm_open(dir, &opt, &db);
	if (r < 0) {
		fail("open", r);
		return NULL;
	}
	return db;
}

static void l_close(void *db)
{
	check("close", lsm_close(db));
}

static int l_put(void *db, const char *k, size_t kl, const char *v, size_t vl, int sync)
{
	return check("put", lsm_put(db, sync ? &wo_sync : &wo_nosync, k, kl, v, vl));
}

static int l_del(void *db, const char *k, size_t kl, int sync)
{
	return check("delete", lsm_delete(db, sync ? &wo_sync : &wo_nosync, k, kl));
}

static int l_get(void *db, const char *k, size_t kl, char **v, size_t *vl)
{
	void *val;
	int r = lsm_get(db, NULL, k, kl, &val, vl);

	if (r == -ENOENT)
		return 1;
	if (r < 0)
		return fail("get", r);
	*v = val;
	return 0;
}

static void l_free_value(char *v)
{
	free(v);
}

/* A batch and the first error met while filling it. */
struct batch {
	lsm_batch *b;
	int err;
};

static void *l_batch_new(void)
{
	struct batch *b = calloc(1, sizeof *b);

	must("batch", b != NULL ? lsm_batch_new(&b->b) : -ENOMEM);
	return b;
}

static void l_batch_put(void *bp, const char *k, size_t kl, const char *v, size_t vl)
{
	struct batch *b = bp;
	int r = lsm_batch_put(b->b, k, kl, v, vl);

	if (r < 0 && b->err == 0)
		b->err = r;
}

static void l_batch_del(void *bp, const char *k, size_t kl)
{
	struct batch *b = bp;
	int r = lsm_batch_delete(b->b, k, kl);

	if (r < 0 && b->err == 0)
		b->err = r;
}

static void l_batch_clear(void *bp)
{
	struct batch *b = bp;

	lsm_batch_clear(b->b);
	b->err = 0;
}

static int l_batch_write(void *db, void *bp, int sync)
{
	struct batch *b = bp;

	if (b->err < 0)
		return fail("batch put", b->err);
	return check("write", lsm_write(db, sync ? &wo_sync : &wo_nosync, b->b));
}

static void l_batch_free(void *bp)
{
	struct batch *b = bp;

	if (b != NULL)
		lsm_batch_free(b->b);
	free(b);
}

static void *l_iter_new(void *db)
{
	lsm_iter *it = NULL;

	must("iterator", lsm_iter_new(db, NULL, &it));
	return it;
}

static void l_iter_seek_first(void *it)
{
	lsm_iter_seek_to_first(it);
}

static void l_iter_seek(void *it, const char *k, size_t kl)
{
	lsm_iter_seek(it, k, kl);
}

/* An iterator that stops early because of an error is not "at the end". */
static int l_iter_valid(void *it)
{
	if (lsm_iter_valid(it))
		return 1;
	must("iteration", lsm_iter_status(it));
	return 0;
}

static void l_iter_next(void *it)
{
	lsm_iter_next(it);
}

static const char *l_iter_key(void *it, size_t *kl)
{
	return lsm_iter_key(it, kl);
}

static const char *l_iter_value(void *it, size_t *vl)
{
	const void *v;

	must("iterator value", lsm_iter_value(it, &v, vl));
	return v;
}

static void l_iter_free(void *it)
{
	lsm_iter_free(it);
}

static int l_flush(void *db)
{
	if (check("flush", lsm_flush(db)) < 0)
		return -1;
	return check("sync", lsm_sync(db));
}

static int l_compact(void *db)
{
	return check("compact", lsm_compact_range(db, NULL, 0, NULL, 0));
}

static int l_wait_idle(void *db)
{
	return check("wait_idle", lsm_wait_idle(db));
}

static char *l_stats(void *db)
{
	char *text = NULL;

	if (check("lsm.stats", lsm_property(db, "lsm.stats", &text)) < 0)
		return NULL;
	return text;
}

static int l_destroy(const char *dir)
{
	return check("destroy", lsm_destroy(dir, NULL));
}

const kvb_backend kvb_backend_liblsm = {
	.name = "liblsm",
	.version = l_version,
	.describe = l_describe,
	.open = l_open,
	.close = l_close,
	.put = l_put,
	.del = l_del,
	.get = l_get,
	.free_value = l_free_value,
	.batch_new = l_batch_new,
	.batch_put = l_batch_put,
	.batch_del = l_batch_del,
	.batch_clear = l_batch_clear,
	.batch_write = l_batch_write,
	.batch_free = l_batch_free,
	.iter_new = l_iter_new,
	.iter_seek_first = l_iter_seek_first,
	.iter_seek = l_iter_seek,
	.iter_valid = l_iter_valid,
	.iter_next = l_iter_next,
	.iter_key = l_iter_key,
	.iter_value = l_iter_value,
	.iter_free = l_iter_free,
	.flush = l_flush,
	.compact = l_compact,
	.wait_idle = l_wait_idle,
	.stats = l_stats,
	.destroy = l_destroy,
};
