/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets: small, valid
 * files made by the engine's own writers (log.c, sst_build.c, manifest.c,
 * vlog/, batch.c) in an in-memory env, then copied to
 * OUTDIR/<target>/<name>.  A few seeds are damaged on purpose in the ways a
 * crash damages files (a torn tail, zero fill), so the recovery paths have
 * a starting point too.  Deterministic: running it again gives the same
 * bytes, so regenerating the committed corpus shows up in git only when a
 * format changed.
 *
 * usage: gen_corpus OUTDIR        (scripts/fuzz.sh corpus runs it)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_int.h"
#include "env_test.h"
#include "vlog.h"

static const char *outdir;
static lsm_env *env;

static void die(const char *what, int r)
{
	fprintf(stderr, "gen_corpus: %s: %d (%s) %s\n", what, r, strerror(r < 0 ? -r : r), lsm_last_error());
	exit(1);
}

static void check(int r, const char *what)
{
	if (r < 0)
		die(what, r);
}

/* Writes bytes to OUTDIR/target/name. */
static void save(const char *target, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path, -errno);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		die(path, -EIO);
}

/* Copies the env's file path to the corpus, less its last `cut` bytes and
 * followed by `zeros` zero bytes. */
static void save_file(const char *target, const char *name, const char *path, size_t cut, size_t zeros)
{
	void *buf;
	size_t len;

	check(env_read_file(env, path, &buf, &len), path);
	if (cut && cut < len)
		len -= cut;
	uint8_t *out = calloc(1, len + zeros + 1);
	if (!out)
		die("calloc", -ENOMEM);
	memcpy(out, buf, len);
	save(target, name, out, len + zeros);
	free(out);
	free(buf);
}

/* ---- write batches --------------------------------------------------------- */

static lsm_batch *batch_small(uint64_t seq)
{
	lsm_batch *b;

	check(lsm_batch_new(&b), "lsm_batch_new");
	check(lsm_batch_put(b, "apple", 5, "red", 3), "put");
	check(lsm_batch_put(b, "banana", 6, "yellow", 6), "put");
	check(lsm_batch_delete(b, "cherry", 6), "delete");
	check(lsm_batch_put(b, "", 0, "empty key", 9), "put");
	check(lsm_batch_put(b, "apple", 5, "", 0), "put");
	lsm_batch_set_seq(b, seq);
	return b;
}

static lsm_batch *batch_big(uint64_t seq)
{
	lsm_batch *b;
	char key[32], val[700];

	check(lsm_batch_new(&b), "lsm_batch_new");
	for (int i = 0; i < 6; i++) {
		int kn = snprintf(key, sizeof(key), "key%04d", i * 7);
		memset(val, 'a' + i, sizeof(val));
		check(lsm_batch_put(b, key, (size_t)kn, val, (size_t)(100 * i + 1)), "put");
	}
	check(lsm_batch_delete(b, "key0007", 7), "delete");
	lsm_batch_set_seq(b, seq);
	return b;
}

/* A batch holding a value-pointer record (only the engine makes these). */
static size_t batch_vptr(uint8_t *rep, uint64_t seq)
{
	struct vlog_ptr ptr = { 3, 24, 1040 };
	uint8_t enc[VLOG_PTR_MAX_ENCODED];
	size_t n = vlog_ptr_encode(&ptr, enc);
	uint8_t *p = rep;

	p = put_fixed64(p, seq);
	p = put_fixed32(p, 2);
	*p++ = LSM_TYPE_VPTR;
	p = put_varint32(p, 5);
	memcpy(p, "large", 5);
	p += 5;
	p = put_varint32(p, (uint32_t)n);
	memcpy(p, enc, n);
	p += n;
	*p++ = LSM_TYPE_VALUE;
	p = put_varint32(p, 5);
	memcpy(p, "small", 5);
	p += 5;
	p = put_varint32(p, 2);
	memcpy(p, "ok", 2);
	p += 2;
	return (size_t)(p - rep);
}

static void gen_batches(void)
{
	lsm_batch *b = batch_small(100), *c = batch_big(200), *e;
	uint8_t rep[128];

	check(lsm_batch_new(&e), "lsm_batch_new");
	lsm_batch_set_seq(e, 7);
	save("batch", "small", b->rep, b->len);
	save("batch", "big", c->rep, c->len);
	save("batch", "empty", e->rep, e->len);
	save("batch", "vptr", rep, batch_vptr(rep, 300));
	lsm_batch_free(b);
	lsm_batch_free(c);
	lsm_batch_free(e);
}

/* ---- WAL ------------------------------------------------------------------- */

static void gen_wal(void)
{
	const char *path = "/db/000001.wal";
	lsm_log_writer *w;
	lsm_batch *b = batch_small(1), *c = batch_big(6);
	uint8_t rep[128];

	check(lsm_log_writer_open(env, path, LSM_LOG_KIND_WAL, &w), "wal open");
	check(lsm_log_writer_close(w), "wal close");
	save_file("wal", "empty", path, 0, 0);

	check(lsm_log_writer_open(env, path, LSM_LOG_KIND_WAL, &w), "wal open");
	check(lsm_log_writer_add(w, b->rep, b->len), "wal add");
	check(lsm_log_writer_add(w, c->rep, c->len), "wal add");
	check(lsm_log_writer_add(w, rep, batch_vptr(rep, 13)), "wal add");
	lsm_batch_set_seq(b, 15);
	check(lsm_log_writer_add(w, b->rep, b->len), "wal add");
	check(lsm_log_writer_close(w), "wal close");
	save_file("wal", "batches", path, 0, 0);
	save_file("wal", "torn", path, 9, 0);
	save_file("wal", "zerofill", path, 0, 40);

	/* The same batch logged twice: recovery must refuse it rather than
	 * apply the same sequence numbers again. */
	check(lsm_log_writer_open(env, path, LSM_LOG_KIND_WAL, &w), "wal open");
	check(lsm_log_writer_add(w, b->rep, b->len), "wal add");
	check(lsm_log_writer_add(w, b->rep, b->len), "wal add");
	check(lsm_log_writer_close(w), "wal close");
	save_file("wal", "replayed", path, 0, 0);
	lsm_batch_free(b);
	lsm_batch_free(c);
}

/* ---- SSTables -------------------------------------------------------------- */

/* Writes a table of n user keys, `versions` versions each (newest first),
 * every fifth version a deletion and every seventh a value pointer. */
static void gen_table(const char *name, int n, int versions, size_t block_size, int bloom, int compression,
                      int vlen)
{
	const char *path = "/db/000009.sst";
	lsm_sst_builder *b;
	lsm_options opt;
	uint64_t size;
	uint8_t ikey[64], val[256];

	lsm_options_init(&opt);
	opt.block_size = block_size;
	opt.block_restart_interval = 4;
	opt.bloom_bits_per_key = bloom;
	opt.compression = compression;
	check(lsm_sst_builder_new(env, path, &opt, &b), "sst builder");
	for (int i = 0; i < n; i++) {
		char user[32];
		int ul = snprintf(user, sizeof(user), "user%05d", i * 3);
		for (int v = 0; v < versions; v++) {
			uint64_t seq = (uint64_t)(1000 + i * 10 + versions - v);
			int k = i * versions + v;
			unsigned type = k % 5 == 4 ? LSM_TYPE_DELETE : k % 7 == 6 ? LSM_TYPE_VPTR : LSM_TYPE_VALUE;
			size_t kl = lsm_ikey_encode(ikey, lsm_slice_make(user, (size_t)ul), seq, type);
			size_t vl = 0;
			if (type == LSM_TYPE_VPTR) {
				struct vlog_ptr p = { 4, (uint64_t)(24 + 100 * k), 80 };
				vl = vlog_ptr_encode(&p, val);
			} else if (type == LSM_TYPE_VALUE) {
				vl = (size_t)(vlen + k % 5);
				for (size_t j = 0; j < vl; j++)
					val[j] = (uint8_t)("compressible"[j % 12] + (j / 64));
			}
			check(lsm_sst_builder_add(b, lsm_slice_make(ikey, kl), lsm_slice_make(val, vl)), "sst add");
		}
	}
	check(lsm_sst_builder_finish(b, &size), "sst finish");
	save_file("sst", name, path, 0, 0);
	check(env_unlink(env, path), "unlink");
}

static void gen_ssts(void)
{
	gen_table("plain", 60, 2, 256, 10, LSM_COMPRESS_NONE, 12);
	gen_table("lz4", 40, 1, 512, 10, LSM_COMPRESS_LZ4, 120);
	gen_table("nofilter", 30, 3, 200, 0, LSM_COMPRESS_NONE, 8);
	gen_table("one", 1, 1, 4096, 10, LSM_COMPRESS_NONE, 4);
	gen_table("oneblock", 12, 1, 4096, 10, LSM_COMPRESS_NONE, 6);
}

/* ---- MANIFEST -------------------------------------------------------------- */

static lsm_file_meta *meta(uint64_t number, const char *lo, const char *hi)
{
	uint8_t a[64], b[64];
	size_t al = lsm_ikey_encode(a, lsm_slice_make(lo, strlen(lo)), 90, LSM_TYPE_VALUE);
	size_t bl = lsm_ikey_encode(b, lsm_slice_make(hi, strlen(hi)), 10, LSM_TYPE_DELETE);
	lsm_file_meta *f;

	check(lsm_meta_new(number, 1000 * number, lsm_slice_make(a, al), lsm_slice_make(b, bl), &f), "meta");
	return f;
}

static void gen_manifests(void)
{
	lsm_version_edit e;
	lsm_version *v;
	lsm_log_writer *w;
	lsm_options opt;
	lsm_garbage_list g = { 0 };

	lsm_options_init(&opt);

	/* Just the starting edit of a new store. */
	check(lsm_manifest_create(env, "/db", 1, NULL, 0, 2, 0, NULL, &w), "manifest create");
	check(lsm_log_writer_close(w), "manifest close");
	save_file("manifest", "new", "/db/MANIFEST-000001", 0, 0);

	/* A snapshot of a version with files on three levels and garbage,
	 * then edits as flushes, compactions and value-log GC log them. */
	lsm_edit_init(&e);
	check(lsm_edit_add_file(&e, 0, meta(12, "a", "m")), "add");
	check(lsm_edit_add_file(&e, 0, meta(14, "c", "z")), "add");
	check(lsm_edit_add_file(&e, 1, meta(8, "a", "f")), "add");
	check(lsm_edit_add_file(&e, 1, meta(9, "g", "q")), "add");
	check(lsm_edit_add_file(&e, 2, meta(4, "b", "y")), "add");
	check(lsm_version_apply(NULL, &e, &opt, &v), "apply");
	check(lsm_garbage_add(&g, 3, 4096), "garbage");
	check(lsm_garbage_add(&g, 6, 100), "garbage");
	check(lsm_manifest_create(env, "/db", 5, v, 11, 16, 4242, &g, &w), "manifest create");
	lsm_edit_done(&e);

	lsm_edit_init(&e);      /* a flush */
	e.has_log_number = e.has_next_file = e.has_last_seq = true;
	e.log_number = 15;
	e.next_file = 18;
	e.last_seq = 5000;
	check(lsm_edit_add_file(&e, 0, meta(17, "d", "k")), "add");
	check(lsm_manifest_append(w, &e), "append");
	lsm_edit_done(&e);

	lsm_edit_init(&e);      /* a compaction of level 0 into level 1 */
	check(lsm_edit_delete_file(&e, 0, 12), "delete");
	check(lsm_edit_delete_file(&e, 1, 8), "delete");
	check(lsm_edit_add_file(&e, 1, meta(19, "a", "e")), "add");
	check(lsm_edit_add_file(&e, 1, meta(20, "e2", "f")), "add");
	check(lsm_garbage_add(&e.garbage, 6, 50), "garbage");
	check(lsm_manifest_append(w, &e), "append");
	lsm_edit_done(&e);

	lsm_edit_init(&e);      /* value-log GC removed a segment */
	check(lsm_garbage_add(&e.vlog_removed, 3, 0), "vlog removed");
	e.has_next_file = true;
	e.next_file = 22;
	check(lsm_manifest_append(w, &e), "append");
	lsm_edit_done(&e);
	check(lsm_log_writer_close(w), "manifest close");
	save_file("manifest", "edits", "/db/MANIFEST-000005", 0, 0);
	save_file("manifest", "torn", "/db/MANIFEST-000005", 7, 0);
	lsm_version_free(v, NULL, NULL, NULL);
	free(g.v);

	/* A file numbered 2^64 - 1: no number is left for the next file. */
	lsm_edit_init(&e);
	check(lsm_edit_add_file(&e, 1, meta(UINT64_MAX, "a", "b")), "add");
	check(lsm_version_apply(NULL, &e, &opt, &v), "apply");
	check(lsm_manifest_create(env, "/db", 5, v, 1, 7, 9, NULL, &w), "manifest create");
	check(lsm_log_writer_close(w), "manifest close");
	save_file("manifest", "filenum-max", "/db/MANIFEST-000005", 0, 0);
	lsm_edit_done(&e);
	lsm_version_free(v, NULL, NULL, NULL);
}

/* ---- value log ------------------------------------------------------------- */

static uint64_t segment_one(void *arg)
{
	(void)arg;
	return 1;
}

static void vlog_fill(vlog *v, int n)
{
	struct vlog_ptr p;
	char key[32], val[300];

	for (int i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "blob%03d", i);
		size_t vl = (size_t)(i * 37 % 300);
		memset(val, 'A' + i % 26, vl);
		check(vlog_append(v, key, (size_t)kl, val, vl, &p), "vlog append");
	}
	check(vlog_append(v, "", 0, "", 0, &p), "vlog append");
}

static void gen_vlogs(void)
{
	vlog *v;

	/* Sealed: closed cleanly. */
	check(vlog_open(env, "/vl", NULL, segment_one, NULL, &v), "vlog open");
	vlog_fill(v, 12);
	check(vlog_close(v), "vlog close");
	save_file("vlog", "sealed", "/vl/000001.vlog", 0, 0);
	check(env_unlink(env, "/vl/000001.vlog"), "unlink");

	/* Unsealed: the process died with the segment active. */
	check(vlog_open(env, "/vl", NULL, segment_one, NULL, &v), "vlog open");
	vlog_fill(v, 8);
	check(vlog_flush(v), "vlog flush");
	save_file("vlog", "active", "/vl/000001.vlog", 0, 0);
	save_file("vlog", "torn", "/vl/000001.vlog", 11, 0);
	save_file("vlog", "zerofill", "/vl/000001.vlog", 0, 64);
	check(vlog_close(v), "vlog close");
	check(env_unlink(env, "/vl/000001.vlog"), "unlink");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST)
		die(outdir, -errno);
	env = env_mem_new();
	if (!env)
		die("env_mem_new", -ENOMEM);
	check(env_mkdir(env, "/db"), "mkdir");
	check(env_mkdir(env, "/vl"), "mkdir");
	gen_batches();
	gen_wal();
	gen_ssts();
	gen_manifests();
	gen_vlogs();
	env_mem_free(env);
	return 0;
}
