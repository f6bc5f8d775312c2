/*
 * manifest.c - the MANIFEST (a log of version edits, in log.c's framing) and
 * CURRENT (the name of the live manifest, one line).
 *
 * A new manifest starts with one edit that lists every live file and the
 * counters; later edits are appended and synced one at a time.  CURRENT is
 * replaced atomically (temp file, fsync, rename, fsync of the directory), so
 * after a crash it names either the old manifest or the complete new one.
 * The manifest is never allowed a torn tail to be silently dropped when that
 * tail was synced: log.c drops only an incomplete final record, which was
 * never acknowledged because its sync had not returned.
 */
#include "db_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* File numbers stay below this (a store would need 2^63 files to get
 * there); see lsm_manifest_recover. */
#define MANIFEST_MAX_FILE_NUMBER (UINT64_C(1) << 63)

static int read_current(lsm_env *env, const char *dir, uint64_t *ret_number)
{
	char path[PATH_MAX];
	void *buf;
	size_t len;
	uint64_t number;
	int r;

	lsm_filename(path, sizeof(path), dir, LSM_FILE_CURRENT, 0);
	r = env_read_file(env, path, &buf, &len);
	if (r < 0)
		return r == -ENOENT ? r : lsm_errf(r, "%s: cannot read", path);
	/* Exactly "MANIFEST-<digits>\n". */
	char name[64];
	if (len < 11 || len >= sizeof(name) || ((char *)buf)[len - 1] != '\n') {
		free(buf);
		return lsm_errf(-EUCLEAN, "%s: malformed (expected a MANIFEST name and a newline)", path);
	}
	memcpy(name, buf, len - 1);
	name[len - 1] = '\0';
	free(buf);
	if (lsm_parse_filename(name, &number) != LSM_FILE_MANIFEST)
		return lsm_errf(-EUCLEAN, "%s: malformed (does not name a MANIFEST)", path);
	*ret_number = number;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The invariants every read relies on, which no sequence of edits written
 * by this library breaks but a damaged MANIFEST can: each table's smallest
 * key is not above its largest, the tables of a level below 0 are in key
 * order without overlap (a lookup binary-searches them and reads one), and
 * no table is listed twice.  -EUCLEAN naming the first breach. */
static int check_levels(const lsm_version *v, const char *path)
{
	size_t total = 0, k = 0;
	uint64_t *numbers;
	int r = 0;

	for (int level = 0; level < LSM_MAX_LEVELS; level++) {
		const lsm_file_list *l = &v->files[level];
		total += (size_t)l->n;
		for (int i = 0; i < l->n; i++) {
			const lsm_file_meta *f = l->v[i];
			if (lsm_ikey_cmp(meta_smallest(f), meta_largest(f)) > 0)
				return lsm_errf(-EUCLEAN, "%s: table %06llu at level %d: smallest key above its largest",
				                path, (unsigned long long)f->number, level);
			if (level > 0 && i > 0 && lsm_ikey_cmp(meta_largest(l->v[i - 1]), meta_smallest(f)) >= 0)
				return lsm_errf(-EUCLEAN, "%s: tables %06llu and %06llu at level %d overlap", path,
				                (unsigned long long)l->v[i - 1]->number, (unsigned long long)f->number,
				                level);
		}
	}
	if (total < 2)
		return 0;
	if (!(numbers = malloc(total * sizeof(*numbers))))
		return -ENOMEM;
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < v->files[level].n; i++)
			numbers[k++] = v->files[level].v[i]->number;
	qsort(numbers, total, sizeof(*numbers), cmp_u64);
	for (k = 1; k < total && r == 0; k++)
		if (numbers[k] == numbers[k - 1])
			r = lsm_errf(-EUCLEAN, "%s: table %06llu listed twice", path, (unsigned long long)numbers[k]);
	free(numbers);
	return r;
}

int lsm_manifest_recover(lsm_env *env, const char *dir, const lsm_options *opt, lsm_manifest_state *ret)
{
	char path[PATH_MAX];
	lsm_log_reader *rd = NULL;
	lsm_version *v = NULL;
	bool have_log = false, have_next = false, have_seq = false;
	lsm_slice rec;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = read_current(env, dir, &ret->manifest_number);
	if (r < 0)
		return r;
	lsm_filename(path, sizeof(path), dir, LSM_FILE_MANIFEST, ret->manifest_number);
	r = lsm_log_reader_open(env, path, LSM_LOG_KIND_MANIFEST, false, &rd);
	if (r < 0)
		return r == -ENOENT ? lsm_errf(-EUCLEAN, "%s: named by CURRENT but missing", path) : r;
	r = lsm_version_apply(NULL, &(lsm_version_edit){ 0 }, opt, &v);
	while (r == 0 && (r = lsm_log_reader_next(rd, &rec)) == 1) {
		lsm_version_edit e;
		lsm_version *nv;

		lsm_edit_init(&e);
		r = lsm_edit_decode(&e, rec);
		if (r < 0) {
			r = lsm_errf(r, "%s: malformed edit at offset %llu", path,
			             (unsigned long long)lsm_log_reader_offset(rd));
			lsm_edit_done(&e);
			break;
		}
		if (e.has_log_number) {
			ret->log_number = e.log_number;
			have_log = true;
		}
		if (e.has_next_file) {
			ret->next_file = e.next_file;
			have_next = true;
		}
		if (e.has_last_seq) {
			ret->last_seq = e.last_seq;
			have_seq = true;
		}
		for (int i = 0; r == 0 && i < e.garbage.n; i++)
			r = lsm_garbage_add(&ret->garbage, e.garbage.v[i].segment, e.garbage.v[i].bytes);
		for (int i = 0; i < e.vlog_removed.n; i++)
			lsm_garbage_remove(&ret->garbage, e.vlog_removed.v[i].segment);
		if (r == 0)
			r = lsm_version_apply(v, &e, opt, &nv);
		lsm_edit_done(&e);
		if (r < 0)
			break;
		lsm_version_free(v, NULL, NULL, NULL);
		v = nv;
	}
	lsm_log_reader_close(rd);
	if (r == 0 && (!have_log || !have_next || !have_seq))
		r = lsm_errf(-EUCLEAN, "%s: no complete starting edit (log number, next file, sequence)", path);
	/* next_file is past every number in use (the tables listed, this
	 * manifest), whatever the edits said. */
	for (int level = 0; r == 0 && v && level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < v->files[level].n; i++)
			if (v->files[level].v[i]->number >= ret->next_file &&
			    v->files[level].v[i]->number < UINT64_MAX)
				ret->next_file = v->files[level].v[i]->number + 1;
	if (r == 0 && ret->manifest_number >= ret->next_file && ret->manifest_number < UINT64_MAX)
		ret->next_file = ret->manifest_number + 1;
	/* Counters no store can reach are damage.  A file number near 2^64
	 * would make next_file wrap (new files taking live files' numbers) or
	 * name a manifest that CURRENT's parser refuses; a sequence above
	 * LSM_MAX_SEQ does not fit in an internal key's trailer.  Checked
	 * after the adjustment above: the next manifest takes next_file's
	 * number, and must recover too. */
	if (r == 0 && (ret->next_file >= MANIFEST_MAX_FILE_NUMBER || ret->last_seq > LSM_MAX_SEQ))
		r = lsm_errf(-EUCLEAN, "%s: next file number %llu or last sequence %llu out of range", path,
		             (unsigned long long)ret->next_file, (unsigned long long)ret->last_seq);
	for (int level = 0; r == 0 && level < LSM_MAX_LEVELS; level++)
		for (int i = 0; r == 0 && i < v->files[level].n; i++)
			if (v->files[level].v[i]->number >= MANIFEST_MAX_FILE_NUMBER)
				r = lsm_errf(-EUCLEAN, "%s: level %d lists file number %llu, out of range", path, level,
				             (unsigned long long)v->files[level].v[i]->number);
	if (r == 0)
		r = check_levels(v, path);
	if (r < 0) {
		if (v)
			lsm_version_free(v, NULL, NULL, NULL);
		free(ret->garbage.v);
		ret->garbage.v = NULL;
		return r;
	}
	ret->version = v;
	return 0;
}

int lsm_manifest_append(lsm_log_writer *w, const lsm_version_edit *e)
{
	uint8_t *buf;
	size_t len;
	int r = lsm_edit_encode(e, &buf, &len);

	if (r < 0)
		return r;
	r = lsm_log_writer_add(w, buf, len);
	free(buf);
	if (r == 0)
		r = lsm_log_writer_sync(w);
	return r;
}

int lsm_manifest_create(lsm_env *env, const char *dir, uint64_t number, const lsm_version *v,
                        uint64_t log_number, uint64_t next_file, uint64_t last_seq,
                        const lsm_garbage_list *garbage, lsm_log_writer **ret_writer)
{
	char path[PATH_MAX], name[64];
	lsm_log_writer *w = NULL;
	lsm_version_edit e;
	int r;

	lsm_filename(path, sizeof(path), dir, LSM_FILE_MANIFEST, number);
	r = lsm_log_writer_open(env, path, LSM_LOG_KIND_MANIFEST, &w);
	if (r < 0)
		return r;
	lsm_edit_init(&e);
	e.has_log_number = e.has_next_file = e.has_last_seq = true;
	e.log_number = log_number;
	e.next_file = next_file;
	e.last_seq = last_seq;
	/* The snapshot edit borrows the version's metas (it never frees them). */
	int total = 0;
	for (int level = 0; v && level < LSM_MAX_LEVELS; level++)
		total += v->files[level].n;
	e.added = calloc((size_t)(total ? total : 1), sizeof(*e.added));
	if (!e.added)
		r = -ENOMEM;
	for (int level = 0; v && level < LSM_MAX_LEVELS && r == 0; level++)
		for (int i = 0; i < v->files[level].n; i++) {
			lsm_edit_file *a = &e.added[e.nadded++];
			a->level = level;
			a->meta = v->files[level].v[i];
			a->number = a->meta->number;
		}
	if (garbage)
		e.garbage = *garbage;   /* borrowed */
	if (r == 0)
		r = lsm_manifest_append(w, &e);
	free(e.added);
	free(e.deleted);
	/* The manifest's name must be durable before CURRENT points at it. */
	if (r == 0 && (r = env_sync_dir(env, dir)) < 0)
		r = lsm_errf(r, "%s: directory sync failed", dir);
	if (r == 0) {
		int n = snprintf(name, sizeof(name), "MANIFEST-%06llu\n", (unsigned long long)number);
		r = env_write_file_atomic(env, dir, "CURRENT", name, (size_t)n);
		if (r < 0) {
			/* The rename may have happened (only its directory sync
			 * failed): CURRENT might name this manifest, so it stays.
			 * The next open's sweep removes whichever is not named. */
			lsm_log_writer_close(w);
			return r;
		}
	}
	if (r < 0) {
		lsm_log_writer_close(w);
		env_unlink(env, path);
		return r;
	}
	*ret_writer = w;
	return 0;
}
