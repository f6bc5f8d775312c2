/*
 * pass2.c - pass 2, the SSTables.
 *
 * Checks:  every table the version names opens: footer (magic, version,
 *          checksum, layout), index block and filter block checksums
 *          (lsm_sst_open); with -f every data block's checksum, the key
 *          order inside and across blocks, the index tiling the data, the
 *          entry count and the filter holding every key (lsm_sst_verify);
 *          the table's first and last keys lie inside the range the
 *          manifest records for it; in levels 1 and up, tables are sorted
 *          and their user-key ranges disjoint (FORMAT.md §6).
 * Collects: the total of table entries and bytes (for pass 3's progress).
 *          Tables no version names are noted here (ctx->files[].referenced
 *          is false) and offered for deletion in pass 3, once every read
 *          has been made.
 * Relies on: pass 1's version and listing (each named table exists).
 * Frees:   each table it opened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

/* Opens and checks one table.  Returns 0, or <0 when it is damaged. */
static int check_table(struct fsck_ctx *ctx, int level, const lsm_file_meta *m)
{
	struct problem_ctx p = { .ftype = LSM_FILE_SST, .file = m->number, .level = level,
	                         .ftype2 = LSM_FILE_MANIFEST, .file2 = ctx->ms.manifest_number };
	char path[PATH_MAX];
	lsm_iiter *it = NULL;
	lsm_sst *t = NULL;
	int r;

	lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_SST, m->number);
	lsm_clear_error();
	r = lsm_sst_open(ctx->env, path, m->size, NULL, &t);
	if (r == 0 && ctx->force)
		r = lsm_sst_verify(t);
	if (r == 0)
		r = lsm_sst_iter_new(t, false, &it);
	if (r == 0) {
		iiter_seek_to_first(it);
		if (iiter_valid(it) && lsm_ikey_cmp(iiter_key(it), meta_smallest(m)) < 0)
			p.str = "below";
		iiter_seek_to_last(it);
		if (iiter_valid(it) && lsm_ikey_cmp(iiter_key(it), meta_largest(m)) > 0)
			p.str = "above";
		r = iiter_status(it);
		iiter_destroy(it);
	}
	if (r == 0) {
		ctx->table_entries += lsm_sst_entries(t);
		ctx->table_bytes += m->size;
	}
	lsm_sst_close(t);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		char why[512];

		p.str = fsck_why(ctx, r, true, why, sizeof(why));
		fix_problem(ctx, PR_2_SST_BAD, &p);
		return r;
	}
	if (p.str) {
		fix_problem(ctx, PR_2_SST_RANGE, &p);
		return -EUCLEAN;
	}
	return 0;
}

/* Levels 1 and up: sorted by smallest key, user-key ranges disjoint. */
static int check_level_order(struct fsck_ctx *ctx, int level)
{
	const lsm_file_list *l = &ctx->ms.version->files[level];
	int bad = 0;

	for (int i = 0; i < l->n; i++) {
		const lsm_file_meta *a = l->v[i];
		struct problem_ctx p = { .ftype = LSM_FILE_SST, .ftype2 = LSM_FILE_SST,
		                         .level = level, .file = a->number, .file2 = a->number };

		if (a->smallest_len < 8 || a->largest_len < 8 ||
		    lsm_ikey_cmp(meta_smallest(a), meta_largest(a)) > 0) {
			fix_problem(ctx, PR_2_LEVEL_ORDER, &p);
			bad++;
			continue;
		}
		if (level == 0 || i + 1 == l->n)
			continue;
		const lsm_file_meta *b = l->v[i + 1];

		if (b->smallest_len < 8 ||
		    lsm_slice_cmp(lsm_ikey_user(meta_largest(a)), lsm_ikey_user(meta_smallest(b))) >= 0) {
			p.file2 = b->number;
			fix_problem(ctx, PR_2_LEVEL_ORDER, &p);
			bad++;
		}
	}
	return bad ? -EUCLEAN : 0;
}

int fsck_pass2(struct fsck_ctx *ctx)
{
	lsm_version *v = ctx->ms.version;
	uint64_t total = 0;
	int bad = 0, r;

	if (!ctx->have_version)
		return 0;
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < v->files[level].n; i++)
			total += v->files[level].v[i]->size;
	fsck_progress_start(ctx, total);
	for (int level = 0; level < LSM_MAX_LEVELS && !ctx->preen_halt; level++) {
		if (check_level_order(ctx, level) < 0)
			bad++;
		for (int i = 0; i < v->files[level].n && !ctx->preen_halt; i++) {
			const lsm_file_meta *m = v->files[level].v[i];
			bool exists = false;

			if (fsck_cancelled())
				break;
			for (size_t k = 0; k < ctx->nfiles && !exists; k++)
				exists = ctx->files[k].type == LSM_FILE_SST &&
				         ctx->files[k].number == m->number;
			if (!exists)
				continue;   /* pass 1 reported it */
			r = check_table(ctx, level, m);
			if (r == -ENOMEM) {
				fsck_progress_end(ctx);
				fsck_op_error(ctx, r, "checking the tables");
				return r;
			}
			if (r < 0)
				bad++;
			fsck_progress_add(ctx, m->size);
		}
	}
	fsck_progress_end(ctx);
	if (bad) {
		ctx->engine_ok = false;
		fsck_forbid_delete(ctx, "tables of the store are damaged");
	}
	return 0;
}
