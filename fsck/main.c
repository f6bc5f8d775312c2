/*
 * main.c - fsck.lsmfs: option parsing, the store's lock, the pass loop,
 * the summary and the exit status (fsck(8): 0 clean, 1 errors corrected,
 * 4 errors left, 8 operational error, 16 usage, 32 cancelled; ORed, with
 * 1 cleared when errors remain).
 *
 *   fsck.lsmfs [-n | -p | -a | -y] [-f] [-v] [-C [FD]] STORE
 *
 * -n, -p (and its old name -a) and -y are mutually exclusive; without any
 * the questions are asked on the terminal, and without a terminal fsck
 * refuses (exit 8), as e2fsck does.  The store's LOCK is taken first: a
 * mounted store (or one another fsck is checking) is refused with exit 8.
 * With -n and no LOCK file at all the check runs without one, so that -n
 * creates nothing.  With -p and without -f, a store whose superblock says
 * it was unmounted cleanly is not checked past pass 1 ("clean"), as e2fsck
 * -p skips a clean filesystem; -n and -y always check everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck.h"

#ifndef LSMFS_VERSION
#define LSMFS_VERSION "unknown"
#endif

static const struct {
	fsck_pass_fn fn;
	const char *title;
} passes[] = {
	{ fsck_pass1, "Checking store metadata (CURRENT, MANIFEST, write-ahead logs, superblock)" },
	{ fsck_pass2, "Checking SSTables" },
	{ fsck_pass3, "Checking the value log and orphaned files" },
	{ fsck_pass4, "Checking the namespace" },
	{ fsck_pass5, "Checking link counts, sizes and orphan records" },
	{ NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: fsck.lsmfs [-n | -p | -y] [-f] [-v] [-C [FD]] STORE\n"
	        "Checks the lsmfs filesystem in the store directory STORE, and repairs it.\n"
	        "\n"
	        "  -n          change nothing: answer no to every question\n"
	        "  -p, -a      repair what is safe without asking; stop at anything else\n"
	        "  -y          answer yes to every question\n"
	        "  -f          check every block of every table, and check a clean store with -p\n"
	        "  -v          say more\n"
	        "  -C [FD]     show progress bars (on FD, default standard output)\n"
	        "  -h, --help  show this help\n"
	        "  -V, --version  show the version\n"
	        "\n"
	        "Exit status: 0 no errors, 1 errors corrected, 4 errors left uncorrected,\n"
	        "8 operational error, 16 usage error, 32 cancelled (ORed together).\n");
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Returns 0, or an exit status (after --help: 0 with *done). */
static int parse_args(int argc, char **argv, struct fsck_ctx *ctx, bool *done)
{
	int modes = 0;
	bool c_flag = false;

	ctx->mode = FSCK_MODE_ASK;
	ctx->progress_fd = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			*done = true;
			return 0;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("fsck.lsmfs %s (liblsm %s)\n", LSMFS_VERSION, LSM_VERSION_STRING);
			*done = true;
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (ctx->store) {
				fprintf(stderr, "fsck.lsmfs: one STORE only\n");
				return FSCK_USAGE;
			}
			ctx->store = a;
			continue;
		}
		for (const char *o = a + 1; *o; o++) {
			switch (*o) {
			case 'n': ctx->mode = FSCK_MODE_NO; modes |= 1; break;
			case 'p': case 'a': ctx->mode = FSCK_MODE_PREEN; modes |= 2; break;
			case 'y': ctx->mode = FSCK_MODE_YES; modes |= 4; break;
			case 'f': ctx->force = true; break;
			case 'v': ctx->verbose = true; break;
			case 'r': break;   /* "interactive", e2fsck's compatibility flag */
			case 'C':
				c_flag = true;
				/* -C0, or -C 0 when a STORE follows (as fsck(8) passes it) */
				if (o[1]) {
					if (!all_digits(o + 1)) {
						fprintf(stderr, "fsck.lsmfs: -C takes a file descriptor\n");
						return FSCK_USAGE;
					}
					ctx->progress_fd = atoi(o + 1);
					o += strlen(o) - 1;
				} else if (i + 2 < argc && all_digits(argv[i + 1])) {
					ctx->progress_fd = atoi(argv[++i]);
				}
				break;
			default:
				fprintf(stderr, "fsck.lsmfs: unknown option -%c\n", *o);
				usage(stderr);
				return FSCK_USAGE;
			}
		}
	}
	if (modes & (modes - 1)) {
		fprintf(stderr, "fsck.lsmfs: -n, -p and -y are mutually exclusive\n");
		return FSCK_USAGE;
	}
	if (!ctx->store) {
		usage(stderr);
		return FSCK_USAGE;
	}
	if (ctx->progress_fd < 0)
		ctx->progress_fd = 1;
	ctx->progress = c_flag || (ctx->mode != FSCK_MODE_PREEN && isatty(1));
	return 0;
}

/* Takes the store's LOCK: a store open elsewhere (mounted) is refused. */
static int take_lock(struct fsck_ctx *ctx)
{
	char path[PATH_MAX];
	struct stat st;
	int r;

	if (stat(ctx->dir, &st) < 0) {
		fprintf(stderr, "fsck.lsmfs: %s: %s\n", ctx->store, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "fsck.lsmfs: %s: not a directory (an lsmfs store is a directory)\n",
		        ctx->store);
		return -ENOTDIR;
	}
	lsm_filename(path, sizeof(path), ctx->dir, LSM_FILE_LOCK, 0);
	if (ctx->mode == FSCK_MODE_NO && stat(path, &st) < 0 && errno == ENOENT)
		return 0;   /* no LOCK: nothing has it open, and -n creates nothing */
	r = env_lock(ctx->env, path, &ctx->lock);
	if (r == -EBUSY) {
		fprintf(stderr, "fsck.lsmfs: %s is in use (mounted, or being checked): refusing to "
		        "check it.\nUnmount it first (fusermount3 -u MOUNTPOINT).\n", ctx->store);
		ctx->lock = NULL;
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "fsck.lsmfs: %s: cannot lock the store: %s\n", ctx->store,
		        lsm_last_error()[0] ? lsm_last_error() : strerror(-r));
		ctx->lock = NULL;
		return r;
	}
	return 0;
}

static void summary(struct fsck_ctx *ctx)
{
	uint64_t files = 0, dirs = 0, links = 0, other = 0;

	if (!ctx->ns) {
		if (ctx->mode != FSCK_MODE_PREEN || ctx->left)
			printf("%s: the filesystem could not be checked whole\n", ctx->store);
		return;
	}
	for (size_t i = 0; i < ctx->ns->n; i++) {
		const struct ns_inode *ip = &ctx->ns->v[i];

		if (ip->state != NS_OK)
			continue;
		if (S_ISREG(ip->mode))
			files++;
		else if (S_ISDIR(ip->mode))
			dirs++;
		else if (S_ISLNK(ip->mode))
			links++;
		else
			other++;
	}
	printf("%s: %llu inodes: %llu files, %llu directories, %llu symlinks, %llu others\n",
	       ctx->store, (unsigned long long)(files + dirs + links + other),
	       (unsigned long long)files, (unsigned long long)dirs, (unsigned long long)links,
	       (unsigned long long)other);
	if (ctx->verbose)
		printf("%s: %llu table entries in %llu bytes of tables, %llu logged writes, "
		       "%zu value pointers\n", ctx->store, (unsigned long long)ctx->table_entries,
		       (unsigned long long)ctx->table_bytes, (unsigned long long)ctx->wal_records,
		       ctx->nvptrs);
}

/* Closes the store (syncing the repairs) and gives the lock back. */
static void ctx_close(struct fsck_ctx *ctx)
{
	int r = fsck_kv_close(ctx);

	if (r < 0)
		fsck_op_error(ctx, r, "closing the store");
	env_unlock(ctx->env, ctx->lock);
	ctx->lock = NULL;
}

static void ctx_free(struct fsck_ctx *ctx)
{
	if (ctx->ms.version)
		lsm_version_free(ctx->ms.version, NULL, NULL, NULL);
	free(ctx->ms.garbage.v);
	fsck_ns_free(ctx);
	free(ctx->vptrs);
	free(ctx->files);
	free(ctx->dir);
}

int main(int argc, char **argv)
{
	struct fsck_ctx ctx;
	bool done = false, clean = false;
	int status, r;

	memset(&ctx, 0, sizeof(ctx));
	setvbuf(stdout, NULL, _IOLBF, 0);
	status = parse_args(argc, argv, &ctx, &done);
	if (status || done)
		return status;
	if (ctx.mode == FSCK_MODE_ASK && !isatty(0)) {
		fprintf(stderr, "fsck.lsmfs: need a terminal for interactive repairs: use -n, -p "
		        "or -y\n");
		return FSCK_ERROR;
	}
	ctx.env = lsm_env_posix();
	ctx.dir = strdup(ctx.store);
	if (!ctx.dir)
		return FSCK_ERROR;
	fsck_cancel_install();
	if (take_lock(&ctx) < 0) {
		free(ctx.dir);
		return FSCK_ERROR;
	}
	if (ctx.verbose)
		printf("fsck.lsmfs %s (liblsm %s)\n", LSMFS_VERSION, LSM_VERSION_STRING);
	for (int i = 0; passes[i].fn; i++) {
		ctx.pass = i + 1;
		if (ctx.mode != FSCK_MODE_PREEN)
			printf("Pass %d: %s\n", i + 1, passes[i].title);
		r = passes[i].fn(&ctx);
		if (r == 1) {
			clean = true;
			break;
		}
		if (ctx.preen_halt || fsck_cancelled() || (r < 0 && ctx.op_error))
			break;
	}
	ctx_close(&ctx);
	if (fsck_cancelled()) {
		printf("\n%s: interrupted\n", ctx.store);
	} else if (clean) {
		printf("%s: clean, %llu inodes\n", ctx.store, (unsigned long long)ctx.sb.inode_count);
	} else if (!ctx.preen_halt) {
		if (ctx.fixed && ctx.mode != FSCK_MODE_PREEN)
			printf("\n%s: ***** FILESYSTEM WAS MODIFIED *****\n", ctx.store);
		summary(&ctx);
		if (ctx.left && ctx.mode != FSCK_MODE_PREEN)
			printf("\n%s: ********** WARNING: Filesystem still has errors **********\n",
			       ctx.store);
	}
	ctx_free(&ctx);
	status = FSCK_OK;
	if (ctx.op_error)
		status |= FSCK_ERROR;
	if (fsck_cancelled())
		status |= FSCK_CANCELED;
	if (ctx.left || ctx.preen_halt)
		status |= FSCK_UNCORRECTED;
	else if (ctx.fixed)
		status |= FSCK_NONDESTRUCT;
	return status;
}
