/*
 * lsm_bench.c - a db_bench-style benchmark of liblsm, through lsm.h only.
 *
 *   lsm_bench --benchmarks=fillseq,fillrandom,overwrite,readrandom,...
 *             --num=N --value_size=V --db=DIR      (--help for the rest)
 *
 * Workloads and reports follow the shared kvbench driver, so figures from here
 * sit beside its LevelDB and RocksDB ones: 16-byte keys "%016llu"; values cut
 * from 100-byte pieces of 50 random printable bytes written twice (they
 * compress to about half); one splitmix64 stream from --seed; fills start from
 * an empty store, reads use what the last fill left; readmissing asks for
 * never-written keys inside the written range, so bloom filters, not file key
 * ranges, must turn them away.
 *
 * After each write benchmark (and compact), untimed: lsm_flush, lsm_wait_idle,
 * and a wait until the process has dirtied no page for 0.5 s.  Write
 * amplification is then given twice: the engine's own account (lsm_stats: WAL
 * + flush + compaction bytes over user bytes, as differences across the
 * benchmark) and the kernel's (/proc/self/io write_bytes over user bytes),
 * which also sees what the engine forgot to count.  Each benchmark ends with a
 * tab-separated RESULT line for scripts.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lsm.h"

#define KEY_LEN 16
#define MIB 1048576.0
#define BENCHMARKS " fillseq fillrandom overwrite fillsync fillbig overwritebig idlespace readrandom " \
	"readseq seekrandom readmissing compact stats "

/* Flag values (defaults here; what each means: the flags table below). */
static struct {
	const char *benchmarks, *db, *compression;
	long long num, reads, value_size, sync_num, big_value_size, big_total, idle_seconds;
	long long block_size, bloom_bits, cache_size, write_buffer_size, mmap_reads;
	long long histogram, use_existing_db, seed;
} F = {
	.benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom,"
	              "readmissing,compact,readrandom,readmissing,stats",
	.compression = "lz4",
	.num = 1000000, .reads = -1, .value_size = 100, .sync_num = 10000,
	.big_value_size = 16384, .big_total = 1LL << 30, .idle_seconds = 60,
	.block_size = 4096, .bloom_bits = 10, .cache_size = 8 << 20,
	.write_buffer_size = 4 << 20, .seed = 301,
};

/* Every flag, its help text; usage() prints the current values as defaults. */
static const struct flag {
	const char *name;
	long long *num;              /* a number flag (>= 0), or */
	const char **text;           /* a text flag */
	const char *help;
} flags[] = {
	{ "benchmarks", NULL, &F.benchmarks, "comma-separated, run in order, from" BENCHMARKS },
	{ "num", &F.num, NULL, "keys written by fillseq, fillrandom, overwrite" },
	{ "reads", &F.reads, NULL, "ops of readrandom, seekrandom, readmissing (-1 = num)" },
	{ "value_size", &F.value_size, NULL, "value bytes" },
	{ "sync_num", &F.sync_num, NULL, "synced puts in fillsync" },
	{ "big_value_size", &F.big_value_size, NULL, "value bytes in fillbig" },
	{ "big_total", &F.big_total, NULL, "value bytes written by fillbig" },
	{ "idle_seconds", &F.idle_seconds, NULL, "idlespace: longest wait for the store to shrink" },
	{ "db", NULL, &F.db, "store directory" },
	{ "use_existing_db", &F.use_existing_db, NULL, "1: keep the store in --db at start" },
	{ "block_size", &F.block_size, NULL, "data block bytes" },
	{ "bloom_bits", &F.bloom_bits, NULL, "bloom filter bits per key, 0 = none" },
	{ "cache_size", &F.cache_size, NULL, "block cache bytes" },
	{ "mmap_reads", &F.mmap_reads, NULL, "1: read tables through mmap (as LevelDB does)" },
	{ "write_buffer_size", &F.write_buffer_size, NULL, "memtable bytes" },
	{ "compression", NULL, &F.compression, "none or lz4" },
	{ "histogram", &F.histogram, NULL, "1: latency percentiles (always on in fillsync)" },
	{ "seed", &F.seed, NULL, "random seed" },
};
#define NFLAGS (sizeof flags / sizeof flags[0])

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("lsm_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Stops the run on any engine error: a figure measured past one is worthless. */
static void check(int r, const char *what)
{
	if (r < 0)
		die("%s: %s (%s)", what, strerror(-r), lsm_last_error());
}

static void usage(void)
{
	printf("usage: lsm_bench [--flag=value ...]\n");
	for (size_t j = 0; j < NFLAGS; j++) {
		if (flags[j].num != NULL)
			printf("  --%-18s %s [%lld]\n", flags[j].name, flags[j].help, *flags[j].num);
		else
			printf("  --%-18s %s [%s]\n", flags[j].name, flags[j].help, *flags[j].text);
	}
}

static void parse_flags(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t j = NFLAGS, nlen = eq != NULL ? (size_t)(eq - a) - 2 : 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage();
			exit(0);
		}
		if (strncmp(a, "--", 2) == 0 && eq != NULL)
			for (j = 0; j < NFLAGS; j++)
				if (strlen(flags[j].name) == nlen && strncmp(a + 2, flags[j].name, nlen) == 0)
					break;
		if (j == NFLAGS)
			die("unknown argument '%s' (want --flag=value; see --help)", a);
		if (flags[j].text != NULL) {
			*flags[j].text = eq + 1;
			continue;
		}
		char *end;
		errno = 0;
		long long v = strtoll(eq + 1, &end, 10);
		if (eq[1] == '\0' || *end != '\0' || errno != 0 || (v < 0 && flags[j].num != &F.reads))
			die("--%s wants a whole number >= 0, not '%s'", flags[j].name, eq + 1);
		*flags[j].num = v;
	}
	if (F.reads < 0)
		F.reads = F.num;
	if (strcmp(F.compression, "fast") == 0)   /* kvbench's name for it */
		F.compression = "lz4";
	if (strcmp(F.compression, "none") != 0 && strcmp(F.compression, "lz4") != 0)
		die("--compression wants none or lz4, not '%s'", F.compression);
	if (F.num < 1 || F.big_value_size < 1 || F.block_size < 1 || F.write_buffer_size < 1)
		die("--num, --big_value_size, --block_size and --write_buffer_size must be >= 1");
	/* Permutations are arrays of uint32_t. */
	if (F.num > UINT32_MAX || F.big_total / F.big_value_size > UINT32_MAX)
		die("--num and --big_total/--big_value_size must stay below 2^32");
	if (F.value_size > (long long)LSM_MAX_VALUE || F.big_value_size > (long long)LSM_MAX_VALUE)
		die("values may not exceed %u bytes", LSM_MAX_VALUE);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct procio {
	int ok;                  /* 0 when /proc/self/io is unreadable */
	uint64_t wchar;          /* bytes passed to write()-like calls */
	uint64_t write_bytes;    /* bytes of page cache this process dirtied */
};

static struct procio read_procio(void)
{
	struct procio p = { 0 };
	char line[128];
	unsigned long long v;
	FILE *f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return p;
	p.ok = 1;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "wchar: %llu", &v) == 1)
			p.wchar = v;
		else if (sscanf(line, "write_bytes: %llu", &v) == 1)
			p.write_bytes = v;
	}
	fclose(f);
	return p;
}

static uint64_t du_bytes;

static int du_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_bytes += (uint64_t)st->st_size;
	return 0;
}

/* Sum of the file sizes under dir. */
static uint64_t dir_bytes(const char *dir)
{
	du_bytes = 0;
	nftw(dir, du_add, 16, FTW_PHYS);
	return du_bytes;
}

static uint64_t rng;

static uint64_t rnd(void)   /* splitmix64 */
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), by the high half of a 128-bit product (no modulo bias
 * worth the name, no division). */
static uint64_t rnd_below(uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd() * n) >> 64);
}

/* 0..n-1 in random order (Fisher-Yates).  Caller frees. */
static uint32_t *shuffled(uint64_t n)
{
	uint32_t *p = malloc((n ? n : 1) * sizeof *p);

	if (p == NULL)
		die("out of memory for a %" PRIu64 "-key permutation", n);
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rnd_below(i);
		uint32_t t = p[i - 1];

		p[i - 1] = p[j];
		p[j] = t;
	}
	return p;
}

/* Writes n as width zero-padded decimal digits (snprintf costs more than the
 * engine's put at these sizes). */
static void put_digits(char *dst, int width, uint64_t n)
{
	for (int i = width - 1; i >= 0; i--, n /= 10)
		dst[i] = (char)('0' + n % 10);
}

static void make_key(char *k, uint64_t n)
{
	put_digits(k, KEY_LEN, n);
}

/* A key inside the written range that no fill writes: the 15-digit form of
 * n/10 then '.', which sorts just before key (n/10)*10 ('.' < '0'). */
static void make_missing_key(char *k, uint64_t n)
{
	put_digits(k, KEY_LEN - 1, n / 10);
	k[KEY_LEN - 1] = '.';
}

static char *vbuf;
static size_t vbuf_len, vbuf_pos;

static void values_init(size_t max_value)
{
	vbuf_len = 1 << 20;
	while (vbuf_len < 2 * max_value)
		vbuf_len *= 2;
	vbuf = malloc(vbuf_len);
	if (vbuf == NULL)
		die("out of memory for %zu bytes of values", vbuf_len);
	for (size_t off = 0; off < vbuf_len; off += 100) {
		char piece[50];

		for (int i = 0; i < 50; i++)
			piece[i] = (char)(' ' + rnd_below(95));
		for (size_t i = 0; i < 100 && off + i < vbuf_len; i++)
			vbuf[off + i] = piece[i % 50];
	}
}

static const char *next_value(size_t len)
{
	if (vbuf_pos + len > vbuf_len)
		vbuf_pos = 0;
	vbuf_pos += len;
	return vbuf + vbuf_pos - len;
}

/* Room for n latencies (microseconds) when on, else NULL: timing every op
 * costs two clock reads, so it is only done when asked for. */
static float *lat_new(uint64_t n, int on)
{
	float *us = on && n ? malloc(n * sizeof *us) : NULL;

	if (on && n && us == NULL)
		die("out of memory for %" PRIu64 " latencies", n);
	return us;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static lsm_options opt;
static lsm_db *db;
static uint64_t key_range;                 /* keys 0..key_range-1 were written */
static const char *db_state = "filled";    /* "compacted" after compact */

static void close_db(void)
{
	if (db != NULL)
		check(lsm_close(db), "close");
	db = NULL;
}

static void destroy_db(void)
{
	int r = lsm_destroy(F.db, &opt);

	if (r < 0 && r != -ENOENT)
		check(r, "destroy");
}

static void need_db(void)
{
	if (db == NULL)
		check(lsm_open(F.db, &opt, &db), "open");
	if (key_range == 0)
		key_range = (uint64_t)F.num;
}

/* Flush and wait for background work, then until the process has dirtied no
 * page for 0.5 s (a thread may still be closing a file).  Returns seconds. */
static double settle(void)
{
	double t0 = now();
	uint64_t last;
	int quiet = 0;

	check(lsm_flush(db), "flush");
	check(lsm_wait_idle(db), "wait_idle");
	last = read_procio().write_bytes;
	while (quiet < 5 && now() - t0 < 600) {
		uint64_t w;

		usleep(100 * 1000);
		w = read_procio().write_bytes;
		quiet = w == last ? quiet + 1 : 0;
		last = w;
	}
	return now() - t0;
}

enum kind { READ, WRITE, COMPACT };

struct result {
	const char *name;
	enum kind kind;
	uint64_t ops, found;
	double t0, secs;           /* start of the timed part; its length */
	double bytes;              /* user key + value bytes moved */
	double settle_secs;
	struct procio io0, io1;
	lsm_stats st0, st1;
	float *lat;                /* per-op latencies in us, or NULL */
	uint64_t nlat;
};

static void report(struct result *r);

/* The timed part of a benchmark runs between these two. */
static void measure_start(struct result *r)
{
	check(lsm_get_stats(db, &r->st0), "stats");
	r->io0 = read_procio();
	r->t0 = now();
}

/* Ends the timed part, settles after writes, and reports. */
static void measure_end(struct result *r)
{
	r->secs = now() - r->t0;
	if (r->kind != READ)
		r->settle_secs = settle();
	r->io1 = read_procio();
	check(lsm_get_stats(db, &r->st1), "stats");
	report(r);
}

static void report(struct result *r)
{
	const lsm_stats *a = &r->st0, *b = &r->st1;
	double us_op = r->secs * 1e6 / (double)(r->ops ? r->ops : 1);
	double wb = (double)(r->io1.write_bytes - r->io0.write_bytes);
	double wc = (double)(r->io1.wchar - r->io0.wchar);
	double user = (double)(b->user_bytes_written - a->user_bytes_written);
	double engine_w = (double)(b->wal_bytes_written - a->wal_bytes_written) +
	                  (double)(b->flush_bytes_written - a->flush_bytes_written) +
	                  (double)(b->compaction_bytes_written - a->compaction_bytes_written);
	double hits = (double)(b->cache_hits - a->cache_hits);
	double lookups = hits + (double)(b->cache_misses - a->cache_misses);
	double io_wa = r->bytes > 0 && r->io0.ok ? wb / r->bytes : 0;
	double engine_wa = user > 0 ? engine_w / user : 0;
	double pct[4] = { 0 };     /* p50 p99 p99.9 max */
	uint64_t disk = 0;
	char label[48];

	snprintf(label, sizeof label, "%s%s", r->name,
	         r->kind == READ && strcmp(db_state, "compacted") == 0 ? "[compacted]" : "");
	printf("%-24s: %10.3f micros/op %10.0f ops/sec %8.1f MB/s (%" PRIu64 " ops",
	       label, us_op, (double)r->ops / r->secs, r->bytes / MIB / r->secs, r->ops);
	if (r->kind == READ)
		printf(", %" PRIu64 " found", r->found);
	printf(", %.2f s)\n", r->secs);
	if (r->kind == READ) {
		printf("%-24s  block cache hit rate %.1f%%", "",
		       lookups > 0 ? 100.0 * hits / lookups : 0.0);
		if (wb >= MIB)
			printf("; background writes %.1f MB", wb / MIB);
		printf("\n");
	} else {
		disk = dir_bytes(F.db);
		printf("%-24s  settle %.2f s; disk %.1f MB; wrote %.1f MB (write() %.1f MB); "
		       "%" PRIu64 " flushes, %" PRIu64 " compactions, stalled %.1f ms\n", "",
		       r->settle_secs, (double)disk / MIB, wb / MIB, wc / MIB,
		       b->flushes - a->flushes, b->compactions - a->compactions,
		       (double)(b->stall_micros - a->stall_micros) / 1000.0);
	}
	if (r->kind == WRITE) {
		printf("%-24s  write-amp: engine %.2f (since open %.2f); /proc/self/io ", "",
		       engine_wa, b->write_amplification);
		if (r->io0.ok)
			printf("%.2f\n", io_wa);
		else
			printf("n/a\n");
	}
	if (r->nlat > 0) {
		static const double at[4] = { 0.5, 0.99, 0.999, 1.0 };

		qsort(r->lat, r->nlat, sizeof *r->lat, cmp_float);
		for (int i = 0; i < 4; i++)
			pct[i] = r->lat[(uint64_t)(at[i] * (double)(r->nlat - 1) + 0.5)];
		printf("%-24s  latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		       "", pct[0], pct[1], pct[2], pct[3]);
	}
	printf("RESULT\tbackend=liblsm\tbench=%s\tstate=%s\tops=%" PRIu64 "\tsecs=%.6f"
	       "\tmicros_op=%.4f\tops_sec=%.1f\tmb_s=%.3f\tfound=%" PRIu64 "\tsettle_s=%.3f"
	       "\tdisk_bytes=%" PRIu64 "\twrite_bytes=%.0f\twchar=%.0f\tuser_bytes=%.0f"
	       "\twa=%.4f\tengine_wa=%.4f\tp50=%.2f\tp99=%.2f\tp999=%.2f\tpmax=%.2f\n",
	       r->name, r->kind == READ ? db_state : "-", r->ops, r->secs, us_op,
	       (double)r->ops / r->secs, r->bytes / MIB / r->secs, r->found,
	       r->settle_secs, disk, wb, wc, r->bytes, io_wa, engine_wa, pct[0], pct[1], pct[2], pct[3]);
	fflush(stdout);
	free(r->lat);
}

enum order { SEQ, SHUFFLED, UNIFORM };

/* count puts of vsize-byte values; fresh: into an empty store, keys
 * 0..count-1; otherwise uniformly over the keys already written. */
static void bench_write(const char *name, int fresh, enum order order, uint64_t count,
                        size_t vsize, int synced)
{
	struct result r = { .name = name, .kind = WRITE, .ops = count };
	lsm_write_options wo;
	uint32_t *perm = NULL;
	char key[KEY_LEN];

	lsm_write_options_init(&wo);
	wo.sync = synced;
	if (fresh) {
		close_db();
		destroy_db();
		key_range = count;
	}
	need_db();
	if (order == SHUFFLED)
		perm = shuffled(count);
	r.lat = lat_new(count, F.histogram || synced);
	r.bytes = (double)count * (double)(KEY_LEN + vsize);
	db_state = "filled";
	measure_start(&r);
	for (uint64_t i = 0; i < count; i++) {
		double op0 = r.lat ? now() : 0;
		uint64_t k = order == SEQ ? i : order == SHUFFLED ? perm[i] : rnd_below(key_range);

		make_key(key, k);
		check(lsm_put(db, &wo, key, KEY_LEN, next_value(vsize), vsize), "put");
		if (r.lat)
			r.lat[r.nlat++] = (float)((now() - op0) * 1e6);
	}
	measure_end(&r);
	free(perm);
	/* Untimed: so this fill's dirty page cache is not written back while the
	 * next benchmark runs. */
	sync();
}

/* After overwrites, the store left idle must shrink by itself (value-log
 * GC, no API call): waits until it takes at most 1.5x the live data, or
 * idle_seconds, and reports the ratio and how long it took. */
static void bench_idle_space(void)
{
	uint64_t n = (uint64_t)(F.big_total / F.big_value_size);
	double live = (double)n * (double)(KEY_LEN + F.big_value_size), t0 = now(), bytes;

	for (;;) {
		bytes = (double)dir_bytes(F.db);
		if (bytes <= 1.5 * live || now() - t0 >= (double)F.idle_seconds)
			break;
		sleep(1);
	}
	printf("%-24s: after %.1f s idle the store takes %.1f MB for %.1f MB of live data: %.2fx\n",
	       "idlespace", now() - t0, bytes / MIB, live / MIB, bytes / live);
	printf("RESULT\tbackend=liblsm\tbench=idlespace\tidle_s=%.1f\tdisk_bytes=%.0f\tlive_bytes=%.0f\tspace_amp=%.3f\n",
	       now() - t0, bytes, live, bytes / live);
}

static void bench_read_seq(void)
{
	struct result r = { .name = "readseq", .kind = READ };
	lsm_iter *it;

	need_db();
	measure_start(&r);
	check(lsm_iter_new(db, NULL, &it), "iterator");
	for (lsm_iter_seek_to_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		const void *val;
		size_t klen, vlen;

		lsm_iter_key(it, &klen);
		check(lsm_iter_value(it, &val, &vlen), "iterator value");
		r.bytes += (double)(klen + vlen);
		r.ops++;
	}
	check(lsm_iter_status(it), "iteration");
	lsm_iter_free(it);
	r.found = r.ops;
	measure_end(&r);
}

enum probe { GET, GET_MISSING, SEEK };

/* --reads probes of uniformly random keys: gets of written keys, gets of
 * never-written keys inside the range, or seeks to written keys on one
 * iterator for the whole run (as RocksDB's db_bench), reading the entry. */
static void bench_random_reads(const char *name, enum probe how)
{
	struct result r = { .name = name, .kind = READ, .ops = (uint64_t)F.reads };
	lsm_iter *it = NULL;
	char key[KEY_LEN];

	need_db();
	r.lat = lat_new(r.ops, (int)F.histogram);
	if (how == SEEK)
		check(lsm_iter_new(db, NULL, &it), "iterator");
	measure_start(&r);
	for (uint64_t i = 0; i < r.ops; i++) {
		double op0 = r.lat ? now() : 0;
		const void *k, *cval;
		void *val;
		size_t klen, vlen;
		int rc;

		if (how == GET_MISSING)
			make_missing_key(key, rnd_below(key_range));
		else
			make_key(key, rnd_below(key_range));
		if (how == SEEK) {
			lsm_iter_seek(it, key, KEY_LEN);
			check(lsm_iter_status(it), "seek");
			if (lsm_iter_valid(it)) {
				k = lsm_iter_key(it, &klen);
				check(lsm_iter_value(it, &cval, &vlen), "iterator value");
				r.found += klen == KEY_LEN && memcmp(k, key, KEY_LEN) == 0;
				r.bytes += (double)(klen + vlen);
			}
		} else if ((rc = lsm_get(db, NULL, key, KEY_LEN, &val, &vlen)) == 0) {
			r.found++;
			r.bytes += (double)(KEY_LEN + vlen);
			free(val);
		} else if (rc != -ENOENT) {
			check(rc, "get");
		}
		if (r.lat)
			r.lat[r.nlat++] = (float)((now() - op0) * 1e6);
	}
	measure_end(&r);
	lsm_iter_free(it);
}

static void bench_compact(void)
{
	struct result r = { .name = "compact", .kind = COMPACT, .ops = 1 };

	need_db();
	measure_start(&r);
	check(lsm_compact_range(db, NULL, 0, NULL, 0), "compact");
	db_state = "compacted";
	measure_end(&r);
	sync();
}

static void bench_stats(void)
{
	char *text;

	need_db();
	check(lsm_property(db, "lsm.stats", &text), "lsm.stats");
	printf("---- lsm.stats ----\n%s\n", text);
	free(text);
}

static void print_header(void)
{
	char cpu[128] = "?", line[256];
	time_t t = time(NULL);
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f != NULL && fgets(line, sizeof line, f))
		if (sscanf(line, "model name : %127[^\n]", cpu) == 1)
			break;
	if (f != NULL)
		fclose(f);
	printf("lsm_bench:  liblsm %s\n", LSM_VERSION_STRING);
	printf("Date:       %s", ctime(&t));
	printf("CPU:        %ld x %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu);
	printf("Entries:    %lld x (%d-byte key, %lld-byte value compressible to ~50%%); "
	       "reads %lld; fillsync %lld; fillbig %lld x %lld B\n", F.num, KEY_LEN,
	       F.value_size, F.reads, F.sync_num, F.big_total / F.big_value_size, F.big_value_size);
	printf("Options:    block_size=%zu bloom_bits=%d cache=%zu write_buffer=%zu "
	       "compression=%s (rest: liblsm defaults)\n", opt.block_size,
	       opt.bloom_bits_per_key, opt.block_cache_size, opt.write_buffer_size,
	       F.compression);
	printf("Store:      %s\nBenchmarks: %s\n", F.db, F.benchmarks);
	printf("------------------------------------------------\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static char default_db[256];
	const char *tmp = getenv("TMPDIR");
	char *list, *save = NULL;

	snprintf(default_db, sizeof default_db, "%s/lsm_bench-%u",
	         tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (unsigned)getuid());
	F.db = default_db;
	parse_flags(argc, argv);

	lsm_options_init(&opt);
	opt.block_size = (size_t)F.block_size;
	opt.bloom_bits_per_key = (int)F.bloom_bits;
	opt.block_cache_size = (size_t)F.cache_size;
	opt.write_buffer_size = (size_t)F.write_buffer_size;
	opt.mmap_reads = (int)F.mmap_reads;
	opt.compression = strcmp(F.compression, "lz4") == 0 ? LSM_COMPRESS_LZ4 : LSM_COMPRESS_NONE;
	rng = (uint64_t)F.seed;
	values_init((size_t)(F.value_size > F.big_value_size ? F.value_size : F.big_value_size));

	/* Check every name before a long benchmark runs into a typo. */
	if ((list = strdup(F.benchmarks)) == NULL)
		die("out of memory");
	for (char *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
		char probe[32];

		if ((size_t)snprintf(probe, sizeof probe, " %s ", b) >= sizeof probe ||
		    strstr(BENCHMARKS, probe) == NULL)
			die("unknown benchmark '%s'; there are:%s", b, BENCHMARKS);
	}
	strcpy(list, F.benchmarks);
	print_header();
	if (!F.use_existing_db)
		destroy_db();
	for (char *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
		if (strcmp(b, "fillseq") == 0)
			bench_write(b, 1, SEQ, (uint64_t)F.num, (size_t)F.value_size, 0);
		else if (strcmp(b, "fillrandom") == 0)
			bench_write(b, 1, SHUFFLED, (uint64_t)F.num, (size_t)F.value_size, 0);
		else if (strcmp(b, "overwrite") == 0)
			bench_write(b, 0, UNIFORM, (uint64_t)F.num, (size_t)F.value_size, 0);
		else if (strcmp(b, "fillsync") == 0)
			bench_write(b, 1, SHUFFLED, (uint64_t)F.sync_num, (size_t)F.value_size, 1);
		else if (strcmp(b, "fillbig") == 0)
			bench_write(b, 1, SHUFFLED, (uint64_t)(F.big_total / F.big_value_size),
			            (size_t)F.big_value_size, 0);
		else if (strcmp(b, "overwritebig") == 0)
			bench_write(b, 0, SHUFFLED, (uint64_t)(F.big_total / F.big_value_size),
			            (size_t)F.big_value_size, 0);
		else if (strcmp(b, "idlespace") == 0)
			bench_idle_space();
		else if (strcmp(b, "readrandom") == 0)
			bench_random_reads(b, GET);
		else if (strcmp(b, "readmissing") == 0)
			bench_random_reads(b, GET_MISSING);
		else if (strcmp(b, "readseq") == 0)
			bench_read_seq();
		else if (strcmp(b, "seekrandom") == 0)
			bench_random_reads(b, SEEK);
		else if (strcmp(b, "compact") == 0)
			bench_compact();
		else   /* "stats", the only name left in BENCHMARKS */
			bench_stats();
	}
	free(list);
	close_db();
	free(vbuf);
	return 0;
}
