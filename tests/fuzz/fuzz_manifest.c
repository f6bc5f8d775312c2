/*
 * fuzz_manifest.c - libFuzzer target for the MANIFEST as lsm_open reads it:
 * lsm_manifest_recover over a directory holding CURRENT and the MANIFEST it
 * names (manifest.c, with log.c's reader and version.c's edit decoder and
 * version builder under it).
 *
 * Input: the bytes of the MANIFEST file (log.c's format, kind MANIFEST,
 * version edits as payloads); CURRENT is fixed and names it.  The custom
 * mutator is fuzz_log_mutate, so most inputs have correct framing and
 * checksums and reach the edit decoder.
 *
 * Beyond "no crash, no leak, no sanitizer report, only damaged-file
 * errnos", it checks:
 *   - every record that decodes as an edit re-encodes to a fixed point
 *     (decode, encode, decode, encode gives the same bytes);
 *   - a recovered state has next_file above the manifest's number and above
 *     every file it lists;
 *   - a recovered state written out as a new manifest (what lsm_open does
 *     next) recovers to the same state: same counters, the same files with
 *     the same sizes and keys at the same levels, the same value-log
 *     garbage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "db_int.h"

#define MANIFEST_NUMBER 5
#define MANIFEST_NAME "MANIFEST-000005"
#define MANIFEST_PATH FUZZ_DIR "/" MANIFEST_NAME

/* decode(encode(decode(rec))) encodes to the same bytes as decode(rec). */
static void check_edit(lsm_slice rec)
{
	lsm_version_edit e, e2;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	int r;

	lsm_edit_init(&e);
	lsm_edit_init(&e2);
	r = fuzz_expect_bare(lsm_edit_decode(&e, rec), "lsm_edit_decode");
	if (r == 0 && lsm_edit_encode(&e, &b1, &l1) == 0) {
		r = lsm_edit_decode(&e2, lsm_slice_make(b1, l1));
		FUZZ_ASSERT(r == 0, "an encoded edit does not decode: %d", r);
		if (lsm_edit_encode(&e2, &b2, &l2) == 0)
			FUZZ_ASSERT(l1 == l2 && memcmp(b1, b2, l1) == 0, "edit encoding is not a fixed point");
	}
	free(b1);
	free(b2);
	lsm_edit_done(&e);
	lsm_edit_done(&e2);
}

static void check_edits(lsm_env *env)
{
	lsm_log_reader *rd;
	lsm_slice rec;

	if (lsm_log_reader_open(env, MANIFEST_PATH, LSM_LOG_KIND_MANIFEST, true, &rd) < 0)
		return;
	for (int n = 0; n < 4096 && lsm_log_reader_next(rd, &rec) == 1; n++)
		check_edit(rec);
	lsm_log_reader_close(rd);
}

static int cmp_meta(const void *a, const void *b)
{
	const lsm_file_meta *x = *(lsm_file_meta *const *)a, *y = *(lsm_file_meta *const *)b;
	int r;

	if (x->number != y->number)
		return x->number < y->number ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	if ((r = lsm_slice_cmp(meta_smallest(x), meta_smallest(y))) != 0)
		return r;
	return lsm_slice_cmp(meta_largest(x), meta_largest(y));
}

/* The files of a level in a canonical order (a malloc'd copy). */
static lsm_file_meta **sorted_level(const lsm_version *v, int level)
{
	const lsm_file_list *l = &v->files[level];
	lsm_file_meta **a = malloc((size_t)(l->n ? l->n : 1) * sizeof(*a));

	if (!a)
		fuzz_fail("harness: out of memory");
	if (l->n)
		memcpy(a, l->v, (size_t)l->n * sizeof(*a));
	qsort(a, (size_t)l->n, sizeof(*a), cmp_meta);
	return a;
}

static void same_state(const lsm_manifest_state *a, const lsm_manifest_state *b)
{
	FUZZ_ASSERT(a->log_number == b->log_number && a->last_seq == b->last_seq,
	            "counters differ after rewriting the manifest");
	for (int level = 0; level < LSM_MAX_LEVELS; level++) {
		int n = a->version->files[level].n;
		FUZZ_ASSERT(n == b->version->files[level].n, "level %d: %d files, %d after rewriting", level, n,
		            b->version->files[level].n);
		lsm_file_meta **x = sorted_level(a->version, level), **y = sorted_level(b->version, level);
		for (int i = 0; i < n; i++)
			FUZZ_ASSERT(cmp_meta(&x[i], &y[i]) == 0, "level %d file %d differs after rewriting", level, i);
		free(x);
		free(y);
	}
	FUZZ_ASSERT(a->garbage.n == b->garbage.n, "%d garbage entries, %d after rewriting", a->garbage.n,
	            b->garbage.n);
	for (int i = 0; i < a->garbage.n; i++)
		FUZZ_ASSERT(lsm_garbage_get(&b->garbage, a->garbage.v[i].segment) == a->garbage.v[i].bytes,
		            "garbage of segment %llu differs after rewriting",
		            (unsigned long long)a->garbage.v[i].segment);
}

static void state_done(lsm_manifest_state *st)
{
	if (st->version)
		lsm_version_free(st->version, NULL, NULL, NULL);
	free(st->garbage.v);
}

/* Writes st out as manifest `number`, as lsm_open does after recovery, and
 * recovers it again. */
static void check_rewrite(lsm_env *env, const lsm_options *opt, const lsm_manifest_state *st)
{
	lsm_manifest_state st2;
	lsm_log_writer *w;
	uint64_t number = st->next_file;
	int r;

	if (number == UINT64_MAX)
		return;
	r = lsm_manifest_create(env, FUZZ_DIR, number, st->version, st->log_number, st->next_file,
	                        st->last_seq, &st->garbage, &w);
	if (r == -ENOMEM)
		return;
	FUZZ_ASSERT(r == 0, "lsm_manifest_create from a recovered state: %d (%s)", r, lsm_last_error());
	FUZZ_ASSERT(lsm_log_writer_close(w) == 0, "closing the new manifest failed");
	r = lsm_manifest_recover(env, FUZZ_DIR, opt, &st2);
	if (r == -ENOMEM)
		return;
	FUZZ_ASSERT(r == 0, "a rewritten manifest does not recover: %d (%s)", r, lsm_last_error());
	FUZZ_ASSERT(st2.manifest_number == number && st2.next_file == number + 1,
	            "rewritten manifest: number %llu next_file %llu", (unsigned long long)st2.manifest_number,
	            (unsigned long long)st2.next_file);
	same_state(st, &st2);
	state_done(&st2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char current[] = MANIFEST_NAME "\n";
	lsm_env *env = fuzz_env_new(MANIFEST_NAME, data, size);
	lsm_manifest_state st;
	lsm_options opt;
	int r;

	fuzz_env_put(env, FUZZ_DIR "/CURRENT", current, sizeof(current) - 1);
	lsm_options_init(&opt);
	check_edits(env);
	lsm_clear_error();
	r = fuzz_expect(lsm_manifest_recover(env, FUZZ_DIR, &opt, &st), "lsm_manifest_recover");
	if (r == 0) {
		FUZZ_ASSERT(st.manifest_number == MANIFEST_NUMBER, "recovered manifest number %llu",
		            (unsigned long long)st.manifest_number);
		FUZZ_ASSERT(st.next_file > MANIFEST_NUMBER, "next_file %llu is not above the manifest's number",
		            (unsigned long long)st.next_file);
		for (int level = 0; level < LSM_MAX_LEVELS; level++)
			for (int i = 0; i < st.version->files[level].n; i++)
				FUZZ_ASSERT(st.version->files[level].v[i]->number < st.next_file,
				            "file %llu at level %d is not below next_file %llu",
				            (unsigned long long)st.version->files[level].v[i]->number, level,
				            (unsigned long long)st.next_file);
		check_rewrite(env, &opt, &st);
		state_done(&st);
	}
	fuzz_env_free(env);
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	return fuzz_log_mutate(data, size, max_size, seed);
}
