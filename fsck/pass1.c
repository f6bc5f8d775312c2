/*
 * pass1.c - pass 1, the store's metadata.
 *
 * Checks:  the store directory can be listed; CURRENT names a manifest
 *          (else offers to point it at the newest manifest that replays
 *          whole and whose tables all exist); the manifest replays
 *          (lsm_manifest_recover, the engine's own code); every table it
 *          names exists with the size it records; every WAL the engine
 *          would replay verifies record by record, with sequences that
 *          advance (a torn tail is what a crash leaves and is no error;
 *          damage before it is, and the repair is to drop the damaged
 *          records, which the engine does when opened with
 *          skip_corrupt_wal); the superblock key.
 * Collects: ctx->files (the directory), ctx->ms (the live version and
 *          counters), the view (view.c) with the WALs' records replayed into
 *          its memtable as the engine would, ctx->sb.
 * Relies on: nothing; it runs first.  If the version cannot be read, the
 *          later passes have nothing to check: ctx->engine_ok stays false.
 * Frees:   nothing; ctx owns what it collected (main.c frees it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

static int add_file(void *arg, const char *name)
{
	struct fsck_ctx *ctx = arg;
	struct fsck_file *f;
	uint64_t number = 0;
	enum lsm_file_type type = lsm_parse_filename(name, &number);

	if (type == LSM_FILE_UNKNOWN || type == LSM_FILE_TEMP)
		return 0;
	if ((ctx->nfiles & (ctx->nfiles + 1)) == 0 || ctx->nfiles == 0) {
		size_t cap = ctx->nfiles ? (ctx->nfiles + 1) * 2 : 32;
		struct fsck_file *v = realloc(ctx->files, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ctx->files = v;
	}
	f = &ctx->files[ctx->nfiles++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->number = number;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	const struct fsck_file *x = a, *y = b;

	if (x->number != y->number)
		return (x->number > y->number) - (x->number < y->number);
	return (x->type > y->type) - (x->type < y->type);
}

static int file_size(struct fsck_ctx *ctx, struct fsck_file *f)
{
	char name[64], path[PATH_MAX];
	lsm_file *fh;
	int r;

	snprintf(path, sizeof(path), "%s/%s", ctx->dir, fsck_file_name(name, f->type, f->number));
	r = env_open(ctx->env, path, LSM_ENV_READ, &fh);
	if (r < 0)
		return r;
	r = env_size(ctx->env, fh, &f->size);
	env_close(ctx->env, fh);
	return r;
}

static int list_store(struct fsck_ctx *ctx)
{
	struct problem_ctx p = { 0 };
	int r = env_list_dir(ctx->env, ctx->dir, add_file, ctx);

	if (r < 0) {
		p.str = strerror(-r);
		fix_problem(ctx, PR_1_LIST_FAILED, &p);
		fsck_forbid_delete(ctx, "the store directory could not be listed");
		return r;
	}
	if (ctx->nfiles > 1)
		qsort(ctx->files, ctx->nfiles, sizeof(*ctx->files), cmp_file);
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct fsck_file *f = &ctx->files[i];

		if (f->type != LSM_FILE_SST && f->type != LSM_FILE_VLOG && f->type != LSM_FILE_WAL)
			continue;
		r = file_size(ctx, f);
		if (r < 0) {
			memset(&p, 0, sizeof(p));
			p.ftype = f->type;
			p.file = f->number;
			p.str = strerror(-r);
			fix_problem(ctx, PR_1_FILE_UNREADABLE, &p);
			fsck_forbid_delete(ctx, "the size of a store file could not be read");
		}
	}
	return 0;
}

static struct fsck_file *find_file(struct fsck_ctx *ctx, enum lsm_file_type type, uint64_t number)
{
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (ctx->files[i].type == type && ctx->files[i].number == number)
			return &ctx->files[i];
	return NULL;
}

/* Replays MANIFEST-number as lsm_manifest_recover does, without CURRENT,
 * and checks that every table it names exists.  Returns 0 with *ret. */
static int try_manifest(struct fsck_ctx *ctx, uint64_t number, lsm_manifest_state *ret)
{
	bool have_log = false, have_next = false, have_seq = false;
	char path[PATH_MAX];
	lsm_log_reader *rd;
	lsm_version *v = NULL;
	lsm_options opt;
	lsm_slice rec;
	int r;

	lsm_options_init(&opt);
	memset(ret, 0, sizeof(*ret));
	lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_MANIFEST, number);
	r = lsm_log_reader_open(ctx->env, path, LSM_LOG_KIND_MANIFEST, false, &rd);
	if (r < 0)
		return r;
	r = lsm_version_apply(NULL, &(lsm_version_edit){ 0 }, &opt, &v);
	while (r == 0 && (r = lsm_log_reader_next(rd, &rec)) == 1) {
		lsm_version_edit e;
		lsm_version *nv;

		lsm_edit_init(&e);
		r = lsm_edit_decode(&e, rec);
		if (r == 0) {
			have_log |= e.has_log_number;
			have_next |= e.has_next_file;
			have_seq |= e.has_last_seq;
			r = lsm_version_apply(v, &e, &opt, &nv);
		}
		lsm_edit_done(&e);
		if (r < 0)
			break;
		lsm_version_free(v, NULL, NULL, NULL);
		v = nv;
	}
	lsm_log_reader_close(rd);
	if (r == 0 && (!have_log || !have_next || !have_seq))
		r = -EUCLEAN;
	for (int level = 0; r == 0 && level < LSM_MAX_LEVELS; level++)
		for (int i = 0; r == 0 && i < v->files[level].n; i++)
			if (!find_file(ctx, LSM_FILE_SST, v->files[level].v[i]->number))
				r = -EUCLEAN;
	if (v)
		lsm_version_free(v, NULL, NULL, NULL);
	return r;
}

/* The newest manifest that replays whole, or 0. */
static uint64_t best_manifest(struct fsck_ctx *ctx)
{
	lsm_manifest_state st;

	for (size_t i = ctx->nfiles; i-- > 0;)
		if (ctx->files[i].type == LSM_FILE_MANIFEST &&
		    try_manifest(ctx, ctx->files[i].number, &st) == 0)
			return ctx->files[i].number;
	return 0;
}

/* Reads CURRENT as the engine does: "MANIFEST-<digits>\n".  Returns 0,
 * -ENOENT, or -EUCLEAN with *ret_why. */
static int check_current(struct fsck_ctx *ctx, const char **ret_why, uint64_t *ret_number)
{
	char path[PATH_MAX], name[64];
	uint64_t number = 0;
	size_t len;
	void *buf;
	int r;

	lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_CURRENT, 0);
	r = env_read_file(ctx->env, path, &buf, &len);
	if (r < 0) {
		*ret_why = strerror(-r);
		return r;
	}
	r = -EUCLEAN;
	if (len < 11 || len >= sizeof(name) || ((char *)buf)[len - 1] != '\n') {
		*ret_why = "not a manifest name and a newline";
	} else {
		memcpy(name, buf, len - 1);
		name[len - 1] = '\0';
		if (lsm_parse_filename(name, &number) != LSM_FILE_MANIFEST)
			*ret_why = "does not name a manifest";
		else if (!find_file(ctx, LSM_FILE_MANIFEST, number))
			*ret_why = "names a manifest that does not exist";
		else
			r = 0;
	}
	free(buf);
	*ret_number = number;
	return r;
}

static int write_current(struct fsck_ctx *ctx, uint64_t number)
{
	char name[64];
	int n = snprintf(name, sizeof(name), "MANIFEST-%06llu\n", (unsigned long long)number);

	return env_write_file_atomic(ctx->env, ctx->dir, "CURRENT", name, (size_t)n);
}

/* CURRENT, then the manifest it names. */
static int read_version(struct fsck_ctx *ctx)
{
	struct problem_ctx p = { 0 };
	const char *why = NULL;
	char msg[512];
	lsm_options opt;
	uint64_t best, named = 0;
	int r;

	/* Until the version is read, nothing is known to be an orphan. */
	fsck_forbid_delete(ctx, "the manifest could not be read");
	r = check_current(ctx, &why, &named);
	if (r < 0 && r != -ENOENT && r != -EUCLEAN) {
		fsck_op_error(ctx, r, "cannot read CURRENT");
		return r;
	}
	if (r < 0) {
		best = best_manifest(ctx);
		if (!best) {
			bool any = false;

			for (size_t i = 0; i < ctx->nfiles; i++)
				any |= ctx->files[i].type != LSM_FILE_LOCK;
			if (r == -ENOENT && !any) {
				fprintf(stderr, "fsck.lsmfs: %s: no lsmfs store here (no CURRENT, no "
				        "store files)\n", ctx->store);
				ctx->op_error = true;
				return r;
			}
			fix_problem(ctx, PR_1_NO_MANIFEST, &p);
			return -EUCLEAN;
		}
		p.str = why;
		p.ftype = LSM_FILE_MANIFEST;
		p.file = best;
		if (!fix_problem(ctx, r == -ENOENT ? PR_1_CURRENT_MISSING : PR_1_CURRENT_BAD, &p))
			return -EUCLEAN;
		r = write_current(ctx, best);
		fsck_fixed(ctx, r);
		if (r < 0)
			return r;
	}
	lsm_options_init(&opt);
	r = lsm_manifest_recover(ctx->env, ctx->dir, &opt, &ctx->ms);
	if (r == -ENOTSUP) {
		fsck_op_error(ctx, r, "the manifest is of a format this fsck.lsmfs does not know");
		return r;
	}
	if (r == -EBADMSG || r == -EUCLEAN) {
		memset(&p, 0, sizeof(p));
		p.ftype = LSM_FILE_MANIFEST;
		p.str = fsck_why(ctx, r, true, msg, sizeof(msg));
		check_current(ctx, &why, &named);
		p.file = named;
		fix_problem(ctx, PR_1_MANIFEST_BAD, &p);
		return r;
	}
	if (r < 0) {
		fsck_op_error(ctx, r, "cannot read the manifest");
		return r;
	}
	ctx->have_version = true;
	ctx->no_delete[0] = '\0';
	return 0;
}

/* Every table the version names exists, with the size it records. */
static int check_tables_exist(struct fsck_ctx *ctx)
{
	lsm_version *v = ctx->ms.version;
	int bad = 0;

	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < v->files[level].n; i++) {
			lsm_file_meta *m = v->files[level].v[i];
			struct fsck_file *f = find_file(ctx, LSM_FILE_SST, m->number);
			struct problem_ctx p = { .ftype = LSM_FILE_SST, .file = m->number,
			                         .level = level, .ftype2 = LSM_FILE_MANIFEST,
			                         .file2 = ctx->ms.manifest_number };

			if (!f) {
				fix_problem(ctx, PR_1_SST_MISSING, &p);
				bad++;
				continue;
			}
			f->referenced = true;
			if (f->size != m->size) {
				p.num = f->size;
				p.num2 = m->size;
				fix_problem(ctx, PR_1_SST_SIZE, &p);
				bad++;
			}
		}
	return bad ? -EUCLEAN : 0;
}

/* The WAL the manifest's log number names exists: the engine creates it
 * before any manifest record names it and deletes it only after a later
 * record moved the log number past it.  Missing, the manifest has lost
 * records (its tail was cut), and a table it no longer names may hold the
 * only copy of writes: nothing may be deleted as an orphan. */
static void check_log_number(struct fsck_ctx *ctx)
{
	struct problem_ctx p = { .ftype = LSM_FILE_WAL, .file = ctx->ms.log_number,
	                         .ftype2 = LSM_FILE_MANIFEST, .file2 = ctx->ms.manifest_number };

	if (ctx->ms.log_number == 0 || find_file(ctx, LSM_FILE_WAL, ctx->ms.log_number))
		return;
	fix_problem(ctx, PR_1_WAL_MISSING, &p);
	fsck_forbid_delete(ctx, "the manifest has lost records, and tables it does not name may "
	                   "hold live data");
}

struct replay {
	lsm_memtable *mem;
	uint64_t last_seq;
	uint64_t next_seq;        /* a record must start here or later (0 before the first) */
	uint64_t seq_bad;         /* records of this WAL whose sequence does not follow */
	char seq_why[160];        /* what the first of them is */
	bool cut;                 /* the engine stops replaying here */
	bool fatal;               /* the engine can not replay the WALs */
};

/* Replays one record; returns 0, or <0 when the WAL can go no further
 * (the engine could not replay it either). */
static int replay_record(struct fsck_ctx *ctx, struct replay *rp, const struct fsck_file *f,
                         lsm_slice rec, uint64_t offset)
{
	struct problem_ctx p = { .ftype = LSM_FILE_WAL, .file = f->number, .num = offset };
	uint64_t seg = 0, off = 0;
	char why[512];
	int r;

	/* As lsm/db_open.c, and before the value-log check as there: a batch
	 * logged twice or out of order is damage (the engine refuses the log,
	 * or drops the record with skip_corrupt_wal), and applying it would
	 * put one key and sequence into the memtable twice. */
	if (rec.len >= LSM_BATCH_HEADER && get_fixed64(rec.data) < rp->next_seq) {
		if (rp->seq_bad++ == 0)
			snprintf(rp->seq_why, sizeof(rp->seq_why), "record at offset %llu: sequence %llu "
			         "does not follow the last one replayed (%llu)", (unsigned long long)offset,
			         (unsigned long long)get_fixed64(rec.data),
			         (unsigned long long)(rp->next_seq - 1));
		return 0;
	}
	r = fsck_view_check_record(ctx, rec, &seg, &off);
	if (r == 1) {
		uint64_t seq = get_fixed64(rec.data);
		uint32_t count = get_fixed32(rec.data + 8);

		r = lsm_batch_insert(rec.data, rec.len, rp->mem);
		if (r == 0) {
			if (count)
				rp->next_seq = seq + count;
			if (count && seq + count - 1 > rp->last_seq)
				rp->last_seq = seq + count - 1;
			ctx->wal_records++;
			return 0;
		}
	}
	if (r == 0) {
		/* A crash lost the value: the engine silently stops here. */
		rp->cut = true;
		ctx->wal_cut++;
		fix_problem(ctx, PR_1_WAL_CUT, &p);
		return 0;
	}
	if (r == 2) {
		rp->cut = true;
		p.ftype2 = LSM_FILE_VLOG;
		p.file2 = seg;
		p.num2 = off;
		if (fix_problem(ctx, PR_1_WAL_VLOG_BAD, &p)) {
			ctx->skip_corrupt_wal = true;
			fsck_fixed(ctx, 0);
		}
		return 0;
	}
	if (r == -ENOMEM)
		return r;
	p.str = fsck_why(ctx, r, true, why, sizeof(why));
	fix_problem(ctx, PR_1_WAL_FATAL, &p);
	rp->fatal = true;
	return r;
}

/* Replays one WAL.  Damage before its tail makes the engine refuse the
 * store unless it skips damaged records: the log is then read again in
 * that mode (the records before the damage come out the same). */
static int replay_wal(struct fsck_ctx *ctx, struct replay *rp, const struct fsck_file *f)
{
	struct problem_ctx p = { .ftype = LSM_FILE_WAL, .file = f->number };
	char path[PATH_MAX], damage[512] = "";
	uint64_t done = 0, skip = 0;
	bool skipping = false;
	lsm_log_reader *rd;
	lsm_slice rec;
	int r, rr = 0;

	lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_WAL, f->number);
	rp->seq_bad = 0;
again:
	r = lsm_log_reader_open(ctx->env, path, LSM_LOG_KIND_WAL, skipping, &rd);
	if (r < 0) {
		/* A WAL created but never written holds nothing (db_open.c). */
		if (r == -EUCLEAN && f->size < 16)
			return 0;
		if (r == -ENOTSUP) {
			fsck_op_error(ctx, r, "a write-ahead log of a format this fsck.lsmfs does not "
			              "know");
			rp->fatal = true;
			return r;
		}
		p.str = fsck_why(ctx, r, true, damage, sizeof(damage));
		fix_problem(ctx, PR_1_WAL_FATAL, &p);
		rp->fatal = true;
		return r;
	}
	while (!rp->cut && (r = lsm_log_reader_next(rd, &rec)) == 1) {
		uint64_t end = lsm_log_reader_offset(rd);

		if (skip > 0) {
			skip--;
			continue;
		}
		rr = replay_record(ctx, rp, f, rec, end - rec.len - 8);
		if (rr < 0)
			break;
		done++;
	}
	if (rr == 0 && !skipping && (r == -EBADMSG || r == -EUCLEAN)) {
		fsck_why(ctx, r, true, damage, sizeof(damage));
		lsm_log_reader_close(rd);
		skipping = true;
		skip = done;
		goto again;
	}
	if (rr == 0 && r < 0) {
		p.str = fsck_why(ctx, r, true, damage, sizeof(damage));
		fix_problem(ctx, PR_1_WAL_FATAL, &p);
		rp->fatal = true;
		rr = r;
	}
	if (rr == 0 && (skipping || rp->seq_bad)) {
		p.str = skipping ? damage : rp->seq_why;
		p.num = lsm_log_reader_skipped(rd) + rp->seq_bad;
		ctx->wal_skipped += p.num;
		if (fix_problem(ctx, PR_1_WAL_BAD, &p)) {
			ctx->skip_corrupt_wal = true;
			fsck_fixed(ctx, 0);
		}
	}
	if (rr == 0 && lsm_log_reader_tail_dropped(rd) > 0) {
		p.num = lsm_log_reader_tail_dropped(rd);
		fix_problem(ctx, PR_1_WAL_TAIL, &p);
	}
	lsm_log_reader_close(rd);
	return rr;
}

/* Replays every WAL the engine would (numbers from log_number on). */
static int replay_wals(struct fsck_ctx *ctx, lsm_memtable **ret_mem, uint64_t *ret_seq)
{
	struct replay rp = { .last_seq = ctx->ms.last_seq };
	uint64_t total = 0;
	int r;

	r = lsm_memtable_new(&rp.mem);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (ctx->files[i].type == LSM_FILE_WAL && ctx->files[i].number >= ctx->ms.log_number)
			total += ctx->files[i].size;
	fsck_progress_start(ctx, total);
	for (size_t i = 0; i < ctx->nfiles && !rp.cut && !rp.fatal; i++) {
		const struct fsck_file *f = &ctx->files[i];

		if (f->type != LSM_FILE_WAL || f->number < ctx->ms.log_number)
			continue;
		r = replay_wal(ctx, &rp, f);
		if (r == -ENOMEM) {
			lsm_memtable_unref(rp.mem);
			fsck_progress_end(ctx);
			return r;
		}
		fsck_progress_add(ctx, f->size);
	}
	fsck_progress_end(ctx);
	if (rp.fatal) {
		lsm_memtable_unref(rp.mem);
		fsck_forbid_delete(ctx, "a write-ahead log could not be replayed");
		return -EUCLEAN;
	}
	*ret_mem = rp.mem;
	*ret_seq = rp.last_seq;
	return 0;
}

/* The superblock key; a missing or damaged one is rewritten at the start
 * of pass 4, once the engine-level checks have decided what may change. */
static void check_super(struct fsck_ctx *ctx)
{
	uint8_t key[FS_KEY_INO_LEN];
	struct problem_ctx p = { 0 };
	struct fs_super sb;
	size_t len;
	void *val;
	int r;

	r = fsck_kv_get(ctx, key, fs_key_super(key), &val, &len);
	if (r == -ENOENT) {
		r = fsck_kv_get(ctx, key, fs_key_inode(key, FS_ROOT_INO), &val, &len);
		if (r == -ENOENT) {
			fix_problem(ctx, PR_1_NOT_LSMFS, &p);
			ctx->op_error = true;
			return;
		}
		if (r == 0)
			free(val);
		if (r < 0 && r != -EBADMSG && r != -EUCLEAN) {
			fsck_op_error(ctx, r, "cannot read the root inode");
			return;
		}
		if (!fix_problem(ctx, PR_1_SUPER_MISSING, &p))
			return;
		ctx->sb_rewrite = true;
		ctx->ns_ok = true;
		return;
	}
	if (r == -EBADMSG || r == -EUCLEAN) {
		/* Damage in the tree: pass 2 or 3 names the table; pass 4
		 * reports the superblock only if they find nothing. */
		ctx->sb_err = r;
		return;
	}
	if (r < 0) {
		fsck_op_error(ctx, r, "cannot read the superblock");
		return;
	}
	r = fs_super_decode(val, len, &sb);
	if (r == -EPROTONOSUPPORT) {
		free(val);
		p.num = sb.version;
		p.num2 = FS_FORMAT_VERSION;
		fix_problem(ctx, PR_1_SUPER_VERSION, &p);
		ctx->op_error = true;
		return;
	}
	if (r < 0) {
		/* Keep what can be read: the block size decides where file data is. */
		if (len >= 16 && memcmp(val, FS_SUPER_MAGIC, 8) == 0) {
			uint32_t bs = get_fixed32((const uint8_t *)val + 12);

			if (bs >= FS_BLOCK_SIZE_MIN && bs <= FS_BLOCK_SIZE_MAX && !(bs & (bs - 1)))
				ctx->sb.block_size = bs;
		}
		free(val);
		p.str = r == -ENOTSUP ? "not an lsmfs superblock" : "fields out of range";
		if (!fix_problem(ctx, PR_1_SUPER_BAD, &p))
			return;
		ctx->sb_rewrite = true;
		ctx->ns_ok = true;
		return;
	}
	free(val);
	ctx->sb = sb;
	ctx->have_sb = true;
	ctx->sb_clean = (sb.flags & FS_SUPER_CLEAN) != 0;
	ctx->ns_ok = true;
}

int fsck_pass1(struct fsck_ctx *ctx)
{
	lsm_memtable *mem = NULL;
	uint64_t seq = 0;
	bool tables_ok;
	int r;

	if (list_store(ctx) < 0 || read_version(ctx) < 0)
		return 0;
	tables_ok = check_tables_exist(ctx) == 0;
	check_log_number(ctx);
	r = fsck_view_open(ctx, NULL, ctx->ms.last_seq);
	if (r < 0) {
		fsck_op_error(ctx, r, "cannot open the store for reading");
		return r;
	}
	r = replay_wals(ctx, &mem, &seq);
	if (r == -ENOMEM) {
		fsck_op_error(ctx, r, "replaying the write-ahead logs");
		return r;
	}
	if (r < 0)
		return 0;
	fsck_view_set_mem(ctx, mem, seq);
	if (!tables_ok) {
		fsck_forbid_delete(ctx, "tables the manifest names are missing or cut short");
		return 0;
	}
	ctx->engine_ok = true;
	check_super(ctx);
	if (ctx->mode == FSCK_MODE_PREEN && !ctx->force && ctx->sb_clean && ctx->found == 0)
		return 1;
	return 0;
}
