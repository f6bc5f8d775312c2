/*
 * problem.c - the table of every problem fsck.lsmfs knows, and
 * fix_problem(), through which every question goes (e2fsck's problem.c).
 *
 * A row gives the message, the question and flags: PR_PREEN_OK (-p may fix
 * it: a fix that loses nothing and that a crash or an interrupted background
 * job can make necessary), PR_INFO (a note, never an error), PR_VERBOSE
 * (shown only with -v).  A row without a question is damage fsck cannot
 * repair: it counts as left uncorrected.
 *
 * Messages expand these codes from a struct problem_ctx:
 *   %i %j  inode numbers ino, ino2        %p %q  their paths (ns.c)
 *   %n %N  numbers num, num2              %b     blk
 *   %l     level                          %s %S  str, str2
 *   %m     name, quoted and escaped       %K     key, decoded by the schema
 *   %f %F  store files (file/ftype, file2/ftype2)     %%  a percent sign
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck.h"

#define PROMPT_NONE      0
#define PROMPT_FIX       1
#define PROMPT_CLEAR     2
#define PROMPT_DELETE    3
#define PROMPT_CREATE    4
#define PROMPT_CONNECT   5
#define PROMPT_RECLAIM   6
#define PROMPT_DROP      7
#define PROMPT_REWRITE   8
#define PROMPT_SET       9

static const char *const prompts[] = {
	[PROMPT_NONE] = "",
	[PROMPT_FIX] = "Fix",
	[PROMPT_CLEAR] = "Clear",
	[PROMPT_DELETE] = "Delete",
	[PROMPT_CREATE] = "Create",
	[PROMPT_CONNECT] = "Connect to /lost+found",
	[PROMPT_RECLAIM] = "Reclaim",
	[PROMPT_DROP] = "Drop them",
	[PROMPT_REWRITE] = "Rewrite",
	[PROMPT_SET] = "Set it",
};

#define PR_PREEN_OK 0x1
#define PR_INFO     0x2
#define PR_VERBOSE  0x4

struct problem {
	int code;
	const char *msg;
	int prompt;
	int flags;
};

static const struct problem problems[] = {
	/* pass 1: store metadata */
	{ PR_1_LIST_FAILED, "Cannot list the store directory: %s.  ", PROMPT_NONE, 0 },
	{ PR_1_CURRENT_MISSING, "CURRENT is missing.  The newest usable manifest is %f.  ",
	  PROMPT_REWRITE, 0 },
	{ PR_1_CURRENT_BAD, "CURRENT is damaged (%s).  The newest usable manifest is %f.  ",
	  PROMPT_REWRITE, 0 },
	{ PR_1_MANIFEST_BAD, "%f is damaged: %s.  ", PROMPT_NONE, 0 },
	{ PR_1_NO_MANIFEST, "No usable manifest: the list of the store's tables is lost.  ",
	  PROMPT_NONE, 0 },
	{ PR_1_SST_MISSING, "SSTable %f (level %l) named by %F is missing.  ", PROMPT_NONE, 0 },
	{ PR_1_SST_SIZE, "SSTable %f (level %l) is %n bytes; %F says %N.  ", PROMPT_NONE, 0 },
	{ PR_1_WAL_BAD, "Write-ahead log %f is damaged: %s.\n"
	  "%n damaged record(s) would be dropped (the writes in them are lost).  ", PROMPT_DROP, 0 },
	{ PR_1_WAL_FATAL, "Write-ahead log %f: %s.  ", PROMPT_NONE, 0 },
	{ PR_1_WAL_CUT, "Write-ahead log %f: the write at offset %n lost its value-log record in "
	  "a crash; it and every later write were never synced, and are not replayed.  ",
	  PROMPT_NONE, PR_INFO },
	{ PR_1_WAL_VLOG_BAD, "Write-ahead log %f: the write at offset %n points to a damaged "
	  "record of %F (offset %N).\nThe engine replays nothing from there on: that write and "
	  "every later one are lost.  ", PROMPT_DROP, 0 },
	{ PR_1_WAL_TAIL, "Write-ahead log %f: %n bytes of a record cut short by a crash are "
	  "ignored.  ", PROMPT_NONE, PR_INFO | PR_VERBOSE },
	{ PR_1_WAL_MISSING, "%f, the oldest write-ahead log %F needs, is missing: the manifest "
	  "has lost its last records, and the writes of the tables and logs they named may be "
	  "lost.  ", PROMPT_NONE, 0 },
	{ PR_1_SUPER_MISSING, "The superblock is missing.  ", PROMPT_CREATE, 0 },
	{ PR_1_SUPER_BAD, "The superblock is damaged (%s).  ", PROMPT_REWRITE, 0 },
	{ PR_1_SUPER_VERSION, "The superblock is of format version %n; this fsck.lsmfs knows "
	  "version %N.  ", PROMPT_NONE, 0 },
	{ PR_1_SUPER_UNREADABLE, "Cannot read the superblock: %s.  ", PROMPT_NONE, 0 },
	{ PR_1_NOT_LSMFS, "The store holds no lsmfs filesystem (no superblock and no root "
	  "directory): not made by mkfs.lsmfs?  ", PROMPT_NONE, 0 },
	{ PR_1_FILE_UNREADABLE, "Cannot read the size of %f: %s.  ", PROMPT_NONE, 0 },

	/* pass 2: SSTables */
	{ PR_2_SST_BAD, "SSTable %f (level %l) is damaged: %s.  ", PROMPT_NONE, 0 },
	{ PR_2_SST_RANGE, "SSTable %f (level %l) holds keys %s the range %F gives it.  ",
	  PROMPT_NONE, 0 },
	{ PR_2_LEVEL_ORDER, "Level %l: SSTables %f and %F overlap or are out of order.  ",
	  PROMPT_NONE, 0 },
	{ PR_2_SST_ORPHAN, "SSTable %f is not in the manifest (left by a crash or an "
	  "interrupted compaction).  ", PROMPT_DELETE, PR_PREEN_OK },

	/* pass 3: value log */
	{ PR_3_SCAN_FAILED, "Cannot read every key of the tree: %s.  ", PROMPT_NONE, 0 },
	{ PR_3_ENTRY_TYPE, "%K has an entry of unknown type %n (a newer format?).  ",
	  PROMPT_NONE, 0 },
	{ PR_3_VPTR_MALFORMED, "%K holds a malformed value-log pointer (%s).  ", PROMPT_CLEAR, 0 },
	{ PR_3_VPTR_BAD, "%K points to %f offset %n, where %s.  Its value is lost.  ",
	  PROMPT_CLEAR, 0 },
	{ PR_3_VLOG_DAMAGE, "Value-log segment %f is damaged: %s.  ", PROMPT_NONE, PR_INFO },
	{ PR_3_VLOG_DAMAGE_DEAD, "Value-log segment %f is damaged (%s), but only in records no "
	  "key uses any more.  ", PROMPT_NONE, PR_INFO },
	{ PR_3_VLOG_ORPHAN, "Value-log segment %f holds no value any key points to.  ",
	  PROMPT_DELETE, PR_PREEN_OK },
	{ PR_3_NO_DELETE, "Not deleting %n orphaned file(s): %s.  ", PROMPT_NONE, 0 },
	{ PR_3_DELETE_FAILED, "Cannot delete %f: %s.  ", PROMPT_NONE, 0 },

	/* pass 4: namespace */
	{ PR_4_ROOT_MISSING, "The root directory (inode %i) is missing.  ", PROMPT_CREATE, 0 },
	{ PR_4_ROOT_NOT_DIR, "The root inode %i is not a directory.  ", PROMPT_REWRITE, 0 },
	{ PR_4_INODE_BAD, "Inode %i has a damaged record (%s).  ", PROMPT_CLEAR, 0 },
	{ PR_4_KEY_BAD, "%K is malformed.  ", PROMPT_DELETE, 0 },
	{ PR_4_KEY_UNKNOWN, "%K is not part of the lsmfs key schema.  ", PROMPT_DELETE, 0 },
	{ PR_4_DIRENT_BAD, "Entry %m in %p (%i) has a damaged value.  ", PROMPT_CLEAR, 0 },
	{ PR_4_DIRENT_NAME, "Entry %m in %p (%i) has an illegal name.  ", PROMPT_CLEAR, 0 },
	{ PR_4_DIRENT_DANGLING, "Entry %m in %p (%i) points to inode %j, which does not exist.  ",
	  PROMPT_CLEAR, 0 },
	{ PR_4_DIRENT_NOT_DIR, "Entry %m (to inode %j) is in inode %i, which is %s.  ",
	  PROMPT_CLEAR, 0 },
	{ PR_4_DIRENT_TYPE, "Entry %m in %p (%i) has the file type of a %s, but inode %j is a %S.  ",
	  PROMPT_FIX, PR_PREEN_OK },
	{ PR_4_DIRENT_ROOT, "Entry %m in %p (%i) is a link to the root directory.  ",
	  PROMPT_CLEAR, 0 },
	{ PR_4_DIR_MULTI, "Entry %m in %p (%i) is a second link to directory %q (%j).  ",
	  PROMPT_CLEAR, 0 },
	{ PR_4_UNATTACHED_DIR, "Directory inode %j is not in any directory.  ", PROMPT_CONNECT, 0 },
	{ PR_4_DIR_LOOP, "Directory %q (%j) is in a loop of directories cut off from the root.  ",
	  PROMPT_CONNECT, 0 },
	{ PR_4_UNATTACHED, "Inode %j (%s, %n bytes) is not in any directory.  ", PROMPT_CONNECT, 0 },
	{ PR_4_UNATTACHED_EMPTY, "Inode %j (%s, empty) is not in any directory.  ", PROMPT_CLEAR, 0 },
	{ PR_4_LPF_MISSING, "/lost+found not found.  ", PROMPT_CREATE, 0 },
	{ PR_4_LPF_NOT_DIR, "/lost+found is not a directory: cannot reconnect inode %j.  ",
	  PROMPT_NONE, 0 },
	{ PR_4_NO_LPF, "No /lost+found: inode %j stays unconnected.  ", PROMPT_NONE, 0 },
	{ PR_4_DIR_PARENT, "'..' of %p (%i) is inode %n, should be %N.  ", PROMPT_FIX, 0 },

	/* pass 5: counts */
	{ PR_5_NLINK, "Inode %i (%p) link count is %n, should be %N.  ", PROMPT_FIX, PR_PREEN_OK },
	{ PR_5_DIR_NLINK, "Directory %p (%i) link count is %n, should be %N.  ", PROMPT_FIX,
	  PR_PREEN_OK },
	{ PR_5_DIR_SIZE, "Directory %p (%i) entry count is %n, should be %N.  ", PROMPT_FIX,
	  PR_PREEN_OK },
	{ PR_5_NBLOCKS, "Inode %i (%p) block count is %n, should be %N.  ", PROMPT_FIX, PR_PREEN_OK },
	{ PR_5_SIZE, "Inode %i (%p) size is %n, but it has data up to byte %N.  ", PROMPT_FIX, 0 },
	{ PR_5_BLOCK_PAST_EOF, "Inode %i (%p) has %N empty block(s) past its end (size %n).  ",
	  PROMPT_DELETE, PR_PREEN_OK },
	{ PR_5_INLINE_SIZE, "Inode %i (%p) size is %n, but it holds %N bytes inline.  ", PROMPT_FIX,
	  0 },
	{ PR_5_INLINE_TOO_BIG, "Inode %i (%p) holds %n bytes inline, more than the limit of %N.  ",
	  PROMPT_FIX, 0 },
	{ PR_5_INLINE_BLOCKS, "Inode %i (%p) keeps its data inline but also has %N block(s).  ",
	  PROMPT_DELETE, 0 },
	{ PR_5_BLOCK_BIG, "Inode %i (%p) block %b holds more bytes than the block size %N.  ",
	  PROMPT_FIX, 0 },
	{ PR_5_BLOCK_NOT_FILE, "Inode %i (%p) is a %s but has %N data block(s).  ", PROMPT_DELETE,
	  0 },
	{ PR_5_BLOCKS_NO_INODE, "%N data block(s) of inode %i, which does not exist.  ",
	  PROMPT_DELETE, 0 },
	{ PR_5_XATTRS_NO_INODE, "%N extended attribute(s) of inode %i, which does not exist.  ",
	  PROMPT_DELETE, 0 },
	{ PR_5_XATTR_FLAG, "Inode %i (%p) has extended attributes but no flag saying so.  ",
	  PROMPT_FIX, PR_PREEN_OK },
	{ PR_5_ORPHAN, "Inode %i (%n bytes) was unlinked while open and never released.  ",
	  PROMPT_RECLAIM, PR_PREEN_OK },
	{ PR_5_ORPHAN_LINKED, "Inode %i (%p) has an orphan record but is still linked.  ",
	  PROMPT_CLEAR, PR_PREEN_OK },
	{ PR_5_ORPHAN_NO_INODE, "Orphan record for inode %i, which does not exist.  ", PROMPT_CLEAR,
	  PR_PREEN_OK },
	{ PR_5_INO_LIMIT, "Next inode number %n is not above inode %N, which is in use.  ",
	  PROMPT_FIX, PR_PREEN_OK },
	{ PR_5_INODE_COUNT, "Inode count in the superblock is %n, should be %N.  ", PROMPT_FIX,
	  PR_PREEN_OK },
	{ PR_5_SYMLINK_SIZE, "Symlink %p (%i) size is %n, but its target is %N bytes.  ",
	  PROMPT_FIX, 0 },
	{ PR_5_SYMLINK_EMPTY, "Symlink %p (%i) has no target.  ", PROMPT_CLEAR, 0 },
	{ PR_5_STRAY_INLINE, "Inode %i (%p) is a %s but holds %N bytes of inline data.  ",
	  PROMPT_CLEAR, 0 },
};

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

void fsck_cancel_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a question waiting on the terminal returns at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool fsck_cancelled(void)
{
	return cancel_flag != 0;
}

static const struct problem *find_problem(int code)
{
	for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++)
		if (problems[i].code == code)
			return &problems[i];
	return NULL;
}

const char *fsck_file_name(char *buf, enum lsm_file_type type, uint64_t number)
{
	unsigned long long n = (unsigned long long)number;

	switch (type) {
	case LSM_FILE_WAL:      snprintf(buf, 64, "%06llu.wal", n); break;
	case LSM_FILE_SST:      snprintf(buf, 64, "%06llu.sst", n); break;
	case LSM_FILE_VLOG:     snprintf(buf, 64, "%06llu.vlog", n); break;
	case LSM_FILE_MANIFEST: snprintf(buf, 64, "MANIFEST-%06llu", n); break;
	case LSM_FILE_CURRENT:  snprintf(buf, 64, "CURRENT"); break;
	case LSM_FILE_LOCK:     snprintf(buf, 64, "LOCK"); break;
	default:                snprintf(buf, 64, "file %llu", n); break;
	}
	return buf;
}

/* Bytes as a quoted string: printable ASCII as is, the rest as \xHH. */
static void put_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;

	fputc('\'', f);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'' || s[i] == '\\')
			fprintf(f, "\\%c", s[i]);
		else if (s[i] >= 0x20 && s[i] < 0x7f)
			fputc(s[i], f);
		else
			fprintf(f, "\\x%02x", s[i]);
	}
	fputc('\'', f);
}

/* An engine key in the words of the filesystem's schema. */
static void put_key(FILE *f, const void *key, size_t klen)
{
	const char *name;
	uint64_t ino, idx;
	size_t nlen;

	if (fs_key_parse_ino(key, klen, FS_KEY_INODE, &ino) == 0)
		fprintf(f, "The record of inode %llu", (unsigned long long)ino);
	else if (fs_key_parse_ino(key, klen, FS_KEY_ORPHAN, &ino) == 0)
		fprintf(f, "The orphan record of inode %llu", (unsigned long long)ino);
	else if (fs_key_parse_block(key, klen, &ino, &idx) == 0)
		fprintf(f, "Block %llu of inode %llu", (unsigned long long)idx,
		        (unsigned long long)ino);
	else if (fs_key_parse_named(key, klen, FS_KEY_DIRENT, &ino, &name, &nlen) == 0) {
		fputs("Entry ", f);
		put_escaped(f, name, nlen);
		fprintf(f, " of directory %llu", (unsigned long long)ino);
	} else if (fs_key_parse_named(key, klen, FS_KEY_XATTR, &ino, &name, &nlen) == 0) {
		fputs("Extended attribute ", f);
		put_escaped(f, name, nlen);
		fprintf(f, " of inode %llu", (unsigned long long)ino);
	} else if (klen == 1 && ((const uint8_t *)key)[0] == FS_KEY_SUPER) {
		fputs("The superblock", f);
	} else {
		fputs("Key ", f);
		put_escaped(f, key, klen > 64 ? 64 : klen);
		if (klen > 64)
			fputs("...", f);
	}
}

static void expand(struct fsck_ctx *ctx, FILE *f, const char *msg, const struct problem_ctx *p)
{
	char buf[64], path[4096];

	for (const char *s = msg; *s; s++) {
		if (*s != '%' || !s[1]) {
			fputc(*s, f);
			continue;
		}
		switch (*++s) {
		case 'i': fprintf(f, "%llu", (unsigned long long)p->ino); break;
		case 'j': fprintf(f, "%llu", (unsigned long long)p->ino2); break;
		case 'p': fputs(fsck_ns_path(ctx, p->ino, path, sizeof(path)), f); break;
		case 'q': fputs(fsck_ns_path(ctx, p->ino2, path, sizeof(path)), f); break;
		case 'n': fprintf(f, "%llu", (unsigned long long)p->num); break;
		case 'N': fprintf(f, "%llu", (unsigned long long)p->num2); break;
		case 'b': fprintf(f, "%llu", (unsigned long long)p->blk); break;
		case 'l': fprintf(f, "%d", p->level); break;
		case 's': fputs(p->str ? p->str : "", f); break;
		case 'S': fputs(p->str2 ? p->str2 : "", f); break;
		case 'm': put_escaped(f, p->name, p->namelen); break;
		case 'K': put_key(f, p->key, p->klen); break;
		case 'f': fputs(fsck_file_name(buf, p->ftype, p->file), f); break;
		case 'F': fputs(fsck_file_name(buf, p->ftype2, p->file2), f); break;
		case '%': fputc('%', f); break;
		default: fputc('%', f); fputc(*s, f); break;
		}
	}
}

/* Asks on the terminal.  Returns 1 yes, 0 no, -1 cancelled. */
static int ask(struct fsck_ctx *ctx, const char *prompt)
{
	char line[64];

	for (;;) {
		printf("%s<y>? ", prompt);
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin) || fsck_cancelled())
			return -1;
		if (line[0] == '\n' || line[0] == 'y' || line[0] == 'Y')
			return 1;
		if (line[0] == 'n' || line[0] == 'N')
			return 0;
		if (line[0] == 'a' || line[0] == 'A') {
			/* "yes to all", as e2fsck's 'a' */
			ctx->mode = FSCK_MODE_YES;
			return 1;
		}
		printf("Answer y (yes), n (no) or a (yes to all).\n");
	}
}

bool fix_problem(struct fsck_ctx *ctx, int code, const struct problem_ctx *pctx)
{
	const struct problem *pr = find_problem(code);
	char *msg = NULL;
	size_t mlen = 0;
	FILE *f;
	bool yes = false, blocked;
	int a;

	if (!pr) {
		fprintf(stderr, "fsck.lsmfs: internal error: unknown problem 0x%06x\n", code);
		ctx->op_error = true;
		return false;
	}
	if ((pr->flags & PR_VERBOSE) && !ctx->verbose)
		return false;
	if (ctx->preen_halt)
		return false;
	f = open_memstream(&msg, &mlen);
	if (!f) {
		ctx->op_error = true;
		return false;
	}
	expand(ctx, f, pr->msg, pctx);
	fclose(f);
	/* A question ends the message; without one the trailing blanks go. */
	while (pr->prompt == PROMPT_NONE && mlen > 0 && msg[mlen - 1] == ' ')
		msg[--mlen] = '\0';
	fsck_progress_clear(ctx);
	fflush(stdout);

	if (pr->flags & PR_INFO) {
		if (ctx->mode != FSCK_MODE_PREEN || ctx->verbose)
			printf("%s\n\n", msg);
		free(msg);
		return false;
	}
	ctx->found++;
	ctx->left++;
	blocked = pr->prompt != PROMPT_NONE && ctx->no_rw[0] && (code >> 16) >= 4;
	if (blocked && !ctx->told_no_rw) {
		/* Repairs need the engine opened read-write, which may not be. */
		printf("Not repairing the filesystem: %s.\n\n", ctx->no_rw);
		ctx->told_no_rw = true;
	}
	if (ctx->mode == FSCK_MODE_PREEN) {
		/* A question would end the message; here it ends the line. */
		while (mlen > 0 && msg[mlen - 1] == ' ')
			msg[--mlen] = '\0';
		if (pr->prompt != PROMPT_NONE && (pr->flags & PR_PREEN_OK) && !blocked) {
			printf("%s: %s  FIXED.\n", ctx->store, msg);
			yes = true;
		} else {
			printf("%s: %s\n\n%s: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n"
			       "\t(i.e., without -a or -p options)\n", ctx->store, msg, ctx->store);
			ctx->preen_halt = true;
		}
		free(msg);
		return yes;
	}
	if (pr->prompt == PROMPT_NONE) {
		printf("%s\n\n", msg);
		free(msg);
		return false;
	}
	fputs(msg, stdout);
	free(msg);
	switch (blocked ? FSCK_MODE_NO : ctx->mode) {
	case FSCK_MODE_NO:
		printf("%s? no\n\n", prompts[pr->prompt]);
		break;
	case FSCK_MODE_YES:
		printf("%s? yes\n\n", prompts[pr->prompt]);
		yes = true;
		break;
	default:
		a = ask(ctx, prompts[pr->prompt]);
		if (a < 0) {
			printf("\n");
			break;
		}
		printf("\n");
		yes = a == 1;
		break;
	}
	fflush(stdout);
	return yes;
}

void fsck_fixed(struct fsck_ctx *ctx, int r)
{
	if (r < 0) {
		fsck_op_error(ctx, r, "the repair failed");
		return;
	}
	if (ctx->left > 0)
		ctx->left--;
	ctx->fixed++;
}

void fsck_op_error(struct fsck_ctx *ctx, int r, const char *what)
{
	const char *detail = lsm_last_error();

	fflush(stdout);
	fprintf(stderr, "fsck.lsmfs: %s: %s%s%s\n", what, strerror(-r), detail[0] ? ": " : "",
	        detail);
	ctx->op_error = true;
}

const char *fsck_why(const struct fsck_ctx *ctx, int r, bool strip_file, char *buf, size_t n)
{
	static const int codes[] = { EBADMSG, EUCLEAN, ENOTSUP, EIO, ENOENT, ENOMEM, EINVAL };
	const char *msg = lsm_last_error();
	size_t dlen = strlen(ctx->dir), len;
	const char *colon;

	if (!msg[0]) {
		snprintf(buf, n, "%s", strerror(r < 0 ? -r : r));
		return buf;
	}
	/* "STORE/000012.sst: ..." -> "000012.sst: ..." (or "..." with strip_file) */
	if (strncmp(msg, ctx->dir, dlen) == 0 && msg[dlen] == '/') {
		msg += dlen + 1;
		colon = strstr(msg, ": ");
		if (strip_file && colon)
			msg = colon + 2;
	}
	snprintf(buf, n, "%s", msg);
	/* the " (strerror)" lsm_errf appends says nothing more to a person */
	len = strlen(buf);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char tail[96];
		size_t tl = (size_t)snprintf(tail, sizeof(tail), " (%s)", strerror(codes[i]));

		if (len > tl && strcmp(buf + len - tl, tail) == 0) {
			buf[len - tl] = '\0';
			break;
		}
	}
	return buf;
}

void fsck_forbid_delete(struct fsck_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->no_delete[0])
		return;
	va_start(ap, fmt);
	vsnprintf(ctx->no_delete, sizeof(ctx->no_delete), fmt, ap);
	va_end(ap);
	if (!ctx->no_delete[0])
		snprintf(ctx->no_delete, sizeof(ctx->no_delete), "a read failed");
}
