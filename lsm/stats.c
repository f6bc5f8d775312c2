/*
 * stats.c - statistics and named properties: per-level file counts and
 * sizes, bytes written by the WAL, flushes and compactions, write
 * amplification, cache hit rates and stall time.
 */
#include "db_int.h"

#include "../vlog/vlog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lsm_get_stats(lsm_db *db, lsm_stats *s)
{
	size_t usage;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&db->mu);
	for (int level = 0; level < LSM_MAX_LEVELS; level++) {
		s->files_at_level[level] = (uint64_t)db->current->files[level].n;
		s->bytes_at_level[level] = lsm_level_bytes(db->current, level);
		s->compaction_read_at_level[level] = atomic_load(&db->st_level_read[level]);
		s->compaction_written_at_level[level] = atomic_load(&db->st_level_written[level]);
	}
	pthread_mutex_unlock(&db->mu);
	s->user_bytes_written = atomic_load(&db->st_user_bytes);
	s->wal_bytes_written = atomic_load(&db->st_wal_bytes);
	s->flush_bytes_written = atomic_load(&db->st_flush_bytes);
	s->flushes = atomic_load(&db->st_flushes);
	s->compaction_bytes_read = atomic_load(&db->st_compact_read);
	s->compaction_bytes_written = atomic_load(&db->st_compact_written);
	s->compactions = atomic_load(&db->st_compactions);
	s->seek_compactions = atomic_load(&db->st_seek_compactions);
	s->compaction_micros = atomic_load(&db->st_compact_micros);
	s->stall_micros = atomic_load(&db->st_stall_micros);
	s->wal_syncs = atomic_load(&db->st_wal_syncs);
	lsm_cache_stats(db->block_cache, &s->cache_hits, &s->cache_misses, &usage);
	s->cache_bytes = usage;
	s->vlog_bytes_written = atomic_load(&db->st_vlog_bytes);
	s->gc_passes = atomic_load(&db->st_gc_passes);
	s->gc_bytes_rewritten = atomic_load(&db->st_gc_rewritten);
	s->gc_segments_removed = atomic_load(&db->st_gc_removed);
	s->recovery_torn_bytes = db->rec_torn_bytes;
	s->recovery_skipped_records = db->rec_skipped;
	s->recovery_cut_wal = db->rec_cut_wal;
	s->recovery_cut_offset = db->rec_cut_offset;
	if (s->user_bytes_written)
		s->write_amplification = (double)(s->wal_bytes_written + s->vlog_bytes_written + s->gc_bytes_rewritten +
		                                  s->flush_bytes_written + s->compaction_bytes_written) /
		                         (double)s->user_bytes_written;
	if (db->vlog) {
		struct vlog_segment_info *segs = NULL;
		size_t n = 0;
		if (vlog_segments(db->vlog, &segs, &n) == 0) {
			pthread_mutex_lock(&db->mu);
			for (size_t i = 0; i < n; i++) {
				uint64_t g = lsm_garbage_get(&db->garbage, segs[i].segment);
				s->vlog_bytes += segs[i].size;
				s->vlog_garbage_bytes += g < segs[i].size ? g : segs[i].size;
			}
			pthread_mutex_unlock(&db->mu);
			s->vlog_segments = n;
			free(segs);
		}
	}
	uint64_t tables = 0;
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		tables += s->bytes_at_level[level];
	uint64_t disk = tables + s->vlog_bytes, live = disk - s->vlog_garbage_bytes;
	s->space_amplification = live ? (double)disk / (double)live : 1.0;
	return 0;
}

/* A growing malloc'd string. */
typedef struct strbuf {
	char *p;
	size_t len, cap;
	int err;
} strbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void print_key(strbuf *b, lsm_slice k)
{
	for (size_t i = 0; i < k.len; i++) {
		unsigned char c = k.data[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			sb_printf(b, "%c", c);
		else
			sb_printf(b, "\\x%02x", c);
	}
}

static void stats_text(lsm_db *db, strbuf *b)
{
	lsm_stats s;

	lsm_get_stats(db, &s);
	sb_printf(b, "level  files      bytes  compaction read    written\n");
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		sb_printf(b, "%5d %6llu %10llu %16llu %10llu\n", level, (unsigned long long)s.files_at_level[level],
		          (unsigned long long)s.bytes_at_level[level],
		          (unsigned long long)s.compaction_read_at_level[level],
		          (unsigned long long)s.compaction_written_at_level[level]);
	sb_printf(b, "user bytes written      %llu\n", (unsigned long long)s.user_bytes_written);
	sb_printf(b, "wal bytes written       %llu (%llu syncs)\n", (unsigned long long)s.wal_bytes_written,
	          (unsigned long long)s.wal_syncs);
	sb_printf(b, "flush bytes written     %llu (%llu flushes)\n", (unsigned long long)s.flush_bytes_written,
	          (unsigned long long)s.flushes);
	sb_printf(b, "compaction bytes        read %llu, written %llu (%llu compactions, %llu for seeks, %.3f s)\n",
	          (unsigned long long)s.compaction_bytes_read, (unsigned long long)s.compaction_bytes_written,
	          (unsigned long long)s.compactions, (unsigned long long)s.seek_compactions,
	          (double)s.compaction_micros / 1e6);
	sb_printf(b, "write amplification     %.2f\n", s.write_amplification);
	sb_printf(b, "block cache             %llu hits, %llu misses, %llu bytes\n",
	          (unsigned long long)s.cache_hits, (unsigned long long)s.cache_misses,
	          (unsigned long long)s.cache_bytes);
	sb_printf(b, "write stall             %.3f s\n", (double)s.stall_micros / 1e6);
	sb_printf(b, "value log               %llu bytes in %llu segments, %llu garbage; %llu bytes appended\n",
	          (unsigned long long)s.vlog_bytes, (unsigned long long)s.vlog_segments,
	          (unsigned long long)s.vlog_garbage_bytes, (unsigned long long)s.vlog_bytes_written);
	sb_printf(b, "value-log GC            %llu passes, %llu bytes rewritten, %llu segments removed\n",
	          (unsigned long long)s.gc_passes, (unsigned long long)s.gc_bytes_rewritten,
	          (unsigned long long)s.gc_segments_removed);
	sb_printf(b, "space amplification     %.2f\n", s.space_amplification);
	sb_printf(b, "recovery                %llu bytes of torn WAL tail dropped, %llu damaged records skipped",
	          (unsigned long long)s.recovery_torn_bytes, (unsigned long long)s.recovery_skipped_records);
	if (s.recovery_cut_wal)
		sb_printf(b, "; stopped at WAL %06llu offset %llu (its values never reached the value log)",
		          (unsigned long long)s.recovery_cut_wal, (unsigned long long)s.recovery_cut_offset);
	sb_printf(b, "\n");
}

static void sstables_text(lsm_db *db, strbuf *b)
{
	pthread_mutex_lock(&db->mu);
	for (int level = 0; level < LSM_MAX_LEVELS; level++)
		for (int i = 0; i < db->current->files[level].n; i++) {
			lsm_file_meta *f = db->current->files[level].v[i];
			sb_printf(b, "%d %06llu %llu ", level, (unsigned long long)f->number, (unsigned long long)f->size);
			print_key(b, lsm_ikey_user(meta_smallest(f)));
			sb_printf(b, " ");
			print_key(b, lsm_ikey_user(meta_largest(f)));
			sb_printf(b, "\n");
		}
	pthread_mutex_unlock(&db->mu);
}

int lsm_property(lsm_db *db, const char *name, char **ret_text)
{
	strbuf b = { 0 };
	lsm_stats s;
	int level;
	char tail;

	if (!db || !name || !ret_text)
		return -EINVAL;
	if (strcmp(name, "lsm.stats") == 0) {
		stats_text(db, &b);
	} else if (strcmp(name, "lsm.sstables") == 0) {
		sstables_text(db, &b);
	} else if (strcmp(name, "lsm.vlog") == 0) {
		struct vlog_segment_info *segs = NULL;
		size_t n = 0;
		if (db->vlog && vlog_segments(db->vlog, &segs, &n) == 0) {
			pthread_mutex_lock(&db->mu);
			for (size_t i = 0; i < n; i++)
				sb_printf(&b, "%06llu %llu %llu%s%s\n", (unsigned long long)segs[i].segment,
				          (unsigned long long)segs[i].size,
				          (unsigned long long)lsm_garbage_get(&db->garbage, segs[i].segment),
				          segs[i].flags & VLOG_SEGMENT_ACTIVE ? " active" : "",
				          segs[i].flags & VLOG_SEGMENT_SEALED ? " sealed" : "");
			pthread_mutex_unlock(&db->mu);
			free(segs);
		}
	} else if (strcmp(name, "lsm.write-amplification") == 0) {
		lsm_get_stats(db, &s);
		sb_printf(&b, "%.3f", s.write_amplification);
	} else if (sscanf(name, "lsm.num-files-at-level%d%c", &level, &tail) == 1 && level >= 0 &&
	           level < LSM_MAX_LEVELS) {
		lsm_get_stats(db, &s);
		sb_printf(&b, "%llu", (unsigned long long)s.files_at_level[level]);
	} else if (sscanf(name, "lsm.bytes-at-level%d%c", &level, &tail) == 1 && level >= 0 &&
	           level < LSM_MAX_LEVELS) {
		lsm_get_stats(db, &s);
		sb_printf(&b, "%llu", (unsigned long long)s.bytes_at_level[level]);
	} else {
		return lsm_errf(-ENOENT, "unknown property %s", name);
	}
	if (!b.err && !b.p)
		sb_printf(&b, "%s", "");
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*ret_text = b.p;
	return 0;
}
