/*
 * opts.c - the lsmfs command line: our own -o options, libfuse's, the two
 * positional arguments, --help and --version.
 *
 * Parsing runs in three rounds over one fuse_args vector, each taking out
 * what it knows and leaving the rest:
 *   1. our table (opt_spec below): cache_size=, sync=, commit=,
 *      writeback_cache, the cache timeouts, and STORE, the first
 *      positional argument wherever it stands (mount.fuse3 runs
 *      "lsmfs STORE MOUNTPOINT -o OPTS", people type the options first);
 *      ro, rw and sync are noted and left in for the kernel's mount flags;
 *   2. fuse_parse_cmdline: -f, -d, -s, -h, -V, clone_fd, max_threads= and
 *      the mount point;
 *   3. fuse_parse_conn_info_opts: max_write=, readdirplus= ... applied when
 *      the connection starts (ops.c's init).
 * What remains (allow_other, default_permissions, ro ...) goes to
 * fuse_session_new, with fsname=STORE and subtype=lsmfs added so that
 * mount(8) and df name the store and the type fuse.lsmfs, and
 * default_permissions (so that the kernel checks permissions before the
 * core checks them again) unless only root can use the mount (see
 * want_kernel_permissions).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

enum {
	KEY_ALLOW,
	KEY_DEFAULT_PERMISSIONS,
	KEY_MAX_THREADS,
	KEY_RO,
	KEY_RW,
	KEY_SYNC,
	KEY_SYNC_MODE,
	KEY_COMMIT,
	KEY_CACHE_SIZE,
	KEY_TIMEOUT,
	KEY_SPIN,
};

/* fuse_opt_parse's data; the templates with an offset (writeback_cache,
 * the timeouts) store into its cfg. */
struct parse_state {
	struct lsmfs_config cfg;
	const char *store_arg;     /* STORE as given */
	int nonopts;               /* positional arguments seen */
	int allow_others;          /* allow_other or allow_root given */
	int default_permissions;   /* default_permissions given */
	int max_threads;           /* max_threads= given */
	int bad;                   /* an error was printed */
};

#define CFG_OPT(t, field, v) { t, offsetof(struct parse_state, cfg.field), v }

static const struct fuse_opt opt_spec[] = {
	FUSE_OPT_KEY("allow_other", KEY_ALLOW),
	FUSE_OPT_KEY("allow_root", KEY_ALLOW),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("max_threads=", KEY_MAX_THREADS),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("sync", KEY_SYNC),
	FUSE_OPT_KEY("sync=", KEY_SYNC_MODE),
	FUSE_OPT_KEY("commit=", KEY_COMMIT),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("spin_us=", KEY_SPIN),
	CFG_OPT("io_uring", io_uring, 1),
	CFG_OPT("no_io_uring", io_uring, 0),
	CFG_OPT("writeback_cache", writeback_cache, 1),
	CFG_OPT("no_writeback_cache", writeback_cache, 0),
	CFG_OPT("entry_timeout=%lf", entry_timeout, 0),
	CFG_OPT("attr_timeout=%lf", attr_timeout, 0),
	CFG_OPT("negative_timeout=%lf", negative_timeout, 0),
	FUSE_OPT_KEY("entry_timeout=", KEY_TIMEOUT),
	FUSE_OPT_KEY("attr_timeout=", KEY_TIMEOUT),
	FUSE_OPT_KEY("negative_timeout=", KEY_TIMEOUT),
	FUSE_OPT_END
};

/* A decimal number from 0 to max, digits only.  Returns 0 and *ret, or
 * -EINVAL. */
static int parse_uint(const char *s, unsigned int max, unsigned int *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno || v > max)
		return -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

/* "64M", "1g", "4096": bytes with an optional binary suffix.  Returns 0 and
 * *ret, or -EINVAL. */
static int parse_size(const char *s, size_t *ret)
{
	unsigned long long v, mult = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mult = 1ull << 10; end++; break;
	case 'm': case 'M': mult = 1ull << 20; end++; break;
	case 'g': case 'G': mult = 1ull << 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > SIZE_MAX / mult)
		return -EINVAL;
	*ret = (size_t)(v * mult);
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_state *ps = data;
	struct lsmfs_config *cfg = &ps->cfg;
	const char *val = strchr(arg, '=');
	char *end;

	(void)outargs;
	val = val ? val + 1 : "";
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		/* The first is STORE (taken out); the second, MOUNTPOINT,
		 * stays for fuse_parse_cmdline. */
		if (ps->nonopts++ == 0) {
			ps->store_arg = arg;
			return 0;
		}
		if (ps->nonopts == 2)
			return 1;
		fprintf(stderr, "lsmfs: too many arguments: '%s' (expected STORE MOUNTPOINT)\n", arg);
		ps->bad = 1;
		return -1;
	case KEY_ALLOW:
		ps->allow_others = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		ps->default_permissions = 1;
		return 1;
	case KEY_MAX_THREADS:
		ps->max_threads = 1;
		return 1;
	case KEY_RO:
		cfg->read_only = 1;
		return 1;
	case KEY_RW:
		cfg->read_only = 0;
		return 1;
	case KEY_SYNC:
		cfg->sync_always = 1;
		return 1;
	case KEY_SYNC_MODE:
		if (strcmp(val, "always") == 0) {
			cfg->sync_always = 1;
		} else if (strcmp(val, "commit") == 0) {
			cfg->sync_always = 0;
		} else {
			fprintf(stderr, "lsmfs: -o sync=%s: expected sync=always or sync=commit\n", val);
			ps->bad = 1;
			return -1;
		}
		return 0;
	case KEY_COMMIT:
		if (parse_uint(val, 86400, &cfg->commit_secs) < 0) {
			fprintf(stderr, "lsmfs: -o commit=%s: expected a number of seconds "
			        "(0..86400, 0 for the default %d)\n", val, LSMFS_COMMIT_DEFAULT);
			ps->bad = 1;
			return -1;
		}
		if (cfg->commit_secs == 0)
			cfg->commit_secs = LSMFS_COMMIT_DEFAULT;
		return 0;
	case KEY_SPIN:
		if (parse_uint(val, 100000, &cfg->spin_us) < 0) {
			fprintf(stderr, "lsmfs: -o spin_us=%s: expected microseconds (0..100000)\n", val);
			ps->bad = 1;
			return -1;
		}
		return 0;
	case KEY_CACHE_SIZE:
		if (parse_size(val, &cfg->cache_size) < 0) {
			fprintf(stderr, "lsmfs: -o cache_size=%s: expected a size such as 64M\n", val);
			ps->bad = 1;
			return -1;
		}
		return 0;
	case KEY_TIMEOUT:
		/* The %lf template above already stored the value; this key
		 * only checks that it was a number. */
		strtod(val, &end);
		if (*val == '\0' || *end != '\0' || strtod(val, NULL) < 0) {
			fprintf(stderr, "lsmfs: -o %s: expected a number of seconds\n", arg);
			ps->bad = 1;
			return -1;
		}
		return 0;
	default:
		return 1;
	}
}

/* 1 if the kernel should check permissions itself (default_permissions).
 *
 * The core checks every operation against the caller's credentials, so the
 * kernel's check only repeats it, at a price: the kernel forgets a
 * directory's attributes after every change in it, and then asks for them
 * (a GETATTR round trip) before its next check, so every unlink or create
 * in a directory costs one more round trip.  But with the kernel's check
 * off, names it has cached are walked without asking the daemon, so search
 * permission on the directories along a cached path goes unchecked.  That
 * matters only if someone other than root can reach the mount.  Without
 * allow_other or allow_root the kernel lets only processes with the mount
 * owner's uids and gids in; when that owner is root those are root's, whom
 * the core and the kernel both let pass every check but execute, which the
 * kernel still makes for regular files.  So the check is left out exactly
 * then, and stays for every other mount (and whenever default_permissions
 * is given). */
static int want_kernel_permissions(const struct parse_state *ps)
{
	if (ps->default_permissions || ps->allow_others)
		return 1;
	return getuid() != 0 || geteuid() != 0;
}

/* Adds "-o [default_permissions,]fsname=STORE,subtype=lsmfs" (fsname
 * escaped: a store path may hold commas). */
static int add_mount_names(struct fuse_args *args, const char *store, int kernel_permissions)
{
	char *opts = NULL, *fsname = NULL;
	int r = -ENOMEM;

	if (asprintf(&fsname, "fsname=%s", store) < 0) {
		fsname = NULL;
		goto out;
	}
	if ((kernel_permissions && fuse_opt_add_opt(&opts, "default_permissions") < 0) ||
	    fuse_opt_add_opt_escaped(&opts, fsname) < 0 ||
	    fuse_opt_add_opt(&opts, "subtype=lsmfs") < 0 ||
	    fuse_opt_add_arg(args, "-o") < 0 || fuse_opt_add_arg(args, opts) < 0)
		goto out;
	r = 0;
out:
	free(opts);
	free(fsname);
	return r;
}

/* Worker threads when max_threads= is not given: one per CPU, at least 2
 * (one can wait for the disk, in an fsync, while the other serves) and at
 * most libfuse's own default of 10.  More cost memory: each worker keeps a
 * request buffer and a reply buffer of up to max_write, 1 MiB, each.  (With
 * libfuse's loop they also cost time, each request waking a different, cold
 * thread; fs/loop.c lets one thread take requests while the others wait.) */
static unsigned int default_max_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		return 2;
	return n > 10 ? 10 : (unsigned int)n;
}

int lsmfs_parse_args(struct fuse_args *args, struct lsmfs_config *cfg)
{
	struct parse_state ps;
	struct fuse_cmdline_opts co;

	memset(&ps, 0, sizeof(ps));
	ps.cfg.commit_secs = LSMFS_COMMIT_DEFAULT;
	ps.cfg.spin_us = LSMFS_SPIN_US_DEFAULT;
	ps.cfg.io_uring = 1;
	ps.cfg.entry_timeout = LSMFS_TIMEOUT_DEFAULT;
	ps.cfg.attr_timeout = LSMFS_TIMEOUT_DEFAULT;
	ps.cfg.negative_timeout = LSMFS_TIMEOUT_DEFAULT;
	memset(cfg, 0, sizeof(*cfg));
	if (fuse_opt_parse(args, &ps, opt_spec, opt_proc) < 0) {
		if (!ps.bad)
			fprintf(stderr, "lsmfs: cannot parse the command line; see lsmfs --help\n");
		return -EINVAL;
	}
	*cfg = ps.cfg;
	memset(&co, 0, sizeof(co));
	if (fuse_parse_cmdline(args, &co) < 0)
		return -EINVAL;   /* libfuse said why */
	cfg->mountpoint = co.mountpoint;
	cfg->foreground = co.foreground;
	cfg->debug = co.debug;
	cfg->singlethread = co.singlethread;
	cfg->clone_fd = co.clone_fd;
	cfg->max_idle_threads = co.max_idle_threads;
	cfg->max_threads = ps.max_threads ? co.max_threads : default_max_threads();
	cfg->show_help = co.show_help;
	cfg->show_version = co.show_version;
	if (cfg->show_help || cfg->show_version)
		return 0;

	if (!ps.store_arg || !cfg->mountpoint) {
		fprintf(stderr, "lsmfs: %s\nUsage: lsmfs [-f] [-d] [-o OPTIONS] STORE MOUNTPOINT "
		        "(see lsmfs --help)\n",
		        ps.store_arg ? "no mount point given" : "no store and mount point given");
		return -EINVAL;
	}
	cfg->store = realpath(ps.store_arg, NULL);
	if (!cfg->store) {
		int err = errno;

		if (err == ENOENT)
			fprintf(stderr, "lsmfs: %s: no such store; make one with: mkfs.lsmfs %s\n",
			        ps.store_arg, ps.store_arg);
		else
			fprintf(stderr, "lsmfs: %s: %s\n", ps.store_arg, strerror(err));
		return -err;
	}
	cfg->conn_opts = fuse_parse_conn_info_opts(args);
	if (!cfg->conn_opts) {
		fprintf(stderr, "lsmfs: bad connection options; see lsmfs --help\n");
		return -EINVAL;
	}
	/* An explicit default_permissions stays in args as given. */
	cfg->kernel_permissions = want_kernel_permissions(&ps);
	if (add_mount_names(args, cfg->store,
	                    cfg->kernel_permissions && !ps.default_permissions) < 0) {
		fprintf(stderr, "lsmfs: out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

void lsmfs_config_done(struct lsmfs_config *cfg)
{
	free(cfg->store);
	free(cfg->mountpoint);
	free(cfg->conn_opts);
	memset(cfg, 0, sizeof(*cfg));
}

void lsmfs_usage(const char *progname)
{
	printf("Usage: %s [-f] [-d] [-o OPTIONS] STORE MOUNTPOINT\n"
	       "Mounts the lsmfs filesystem in store directory STORE (made by mkfs.lsmfs)\n"
	       "on MOUNTPOINT.  Unmount with: fusermount3 -u MOUNTPOINT (or umount).\n"
	       "\n"
	       "Options:\n"
	       "  -f                     stay in the foreground\n"
	       "  -d                     trace every request (implies -f)\n"
	       "  -s                     serve requests in one thread\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n"
	       "  -o OPT[,OPT...]        mount options:\n"
	       "\n"
	       "lsmfs options:\n"
	       "  -o sync=commit         sync the store every commit= seconds (the default)\n"
	       "  -o sync=always, -o sync  sync every change before it is acknowledged\n"
	       "  -o commit=SECONDS      interval of the periodic sync (default %d)\n"
	       "  -o cache_size=SIZE     engine block cache, e.g. 64M (default: the engine's)\n"
	       "  -o writeback_cache     let the kernel cache writes (faster small writes;\n"
	       "                         a crash of the daemon may lose acknowledged writes)\n"
	       "  -o entry_timeout=S     seconds the kernel caches names (default %g)\n"
	       "  -o attr_timeout=S      seconds the kernel caches attributes (default %g)\n"
	       "  -o negative_timeout=S  seconds the kernel caches missing names (default %g)\n"
	       "  -o spin_us=N           microseconds a worker watches for the next request\n"
	       "                         after answering one (default %u, 0 = sleep at once)\n"
	       "  -o no_io_uring         take requests through /dev/fuse even when the kernel\n"
	       "                         allows FUSE over io_uring (by default used when\n"
	       "                         /sys/module/fuse/parameters/enable_uring is Y)\n"
	       "  -o ro                  mount read-only\n"
	       "\n"
	       "FUSE options (allow_other, default_permissions ... see below) are passed on.\n"
	       "The kernel checks permissions too (default_permissions) unless only root can\n"
	       "use the mount: mounted by root without allow_other or allow_root.  Worker\n"
	       "threads: max_threads=N (default %u here, one per CPU).  -o auto_inval_data\n"
	       "drops a file's cached pages when its mtime changes (off: every change passes\n"
	       "through the kernel).\n"
	       "\n",
	       progname, LSMFS_COMMIT_DEFAULT, LSMFS_TIMEOUT_DEFAULT, LSMFS_TIMEOUT_DEFAULT,
	       LSMFS_TIMEOUT_DEFAULT, LSMFS_SPIN_US_DEFAULT, default_max_threads());
	fflush(stdout);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

void lsmfs_version(void)
{
	printf("lsmfs %s (filesystem format %u, liblsm %s)\n", LSMFS_VERSION, FS_FORMAT_VERSION,
	       LSM_VERSION_STRING);
	fflush(stdout);
	fuse_lowlevel_version();
}
