/*
 * test_fs_ace.c - bounded exhaustive crash tests of the fs core in the
 * manner of ACE/CrashMonkey: every workload of one and of two operations
 * drawn from a fixed list of parameterized operations over a small tree,
 * each operation followed by a persistence point, run on the fault env and
 * cut off by a power failure right after the last persistence point.
 *
 * The tree every workload starts from is synced, and the workloads rotate
 * over three variants: the tree only in the log, the tree flushed into an
 * SSTable (recovery merges a table with the log), and the fs mounted with
 * sync_writes (mount -o sync: every operation synced by itself):
 *
 *     /A     6000 bytes (a full block, which goes to the value log, and a
 *            partial one), xattr user.x; /d/H is a hard link to it
 *     /B     100 bytes, inline in its inode
 *     /d/    a directory holding C (4096 bytes) and H
 *     /e/    an empty directory
 *
 * The operations (creat, mkdir, write, append, truncate, fallocate, link,
 * unlink, rename of files and directories over existing ones, exchange,
 * symlink, setxattr, removexattr, rmdir, unlink of a file kept open, and
 * the engine's own flush and compaction with value-log GC) name their
 * files by path; those that touch /N or /M depend on an earlier creat or
 * mkdir, so two-operation workloads cover dependent pairs too.  A
 * persistence point is fsync of the files the operation changed (and of
 * the directories, for operations on names), fdatasync of them, or
 * fs_sync_all.  The power is cut by syncing a directory outside the store
 * with env_fault_power_cut_after_sync(1) armed, so that nothing the fs
 * does after the persistence point (fs_close syncs) can become durable.
 *
 * After the power cut the fs is closed (errors expected), the env forgets
 * all that was not synced, and the store is mounted again.  Checks, each
 * failure naming the workload:
 *   (a) POSIX: every object a persistence point covered is there as it was
 *       then or later: an fsync'd file's data, size and metadata, an
 *       fdatasync'd file's data and size, an fsync'd directory's entries,
 *       after sync everything;
 *   (b) the tree is consistent (tfs_check_consistent: dirents, types, link
 *       counts, sizes, no stray keys), and a file made after recovery gets
 *       an inode number never used before;
 *   (c) lsmfs's own contract, stronger than POSIX: fs_fsync syncs the whole
 *       engine log, so the tree recovered is exactly the tree before the
 *       cut; and each operation is atomic: the sync sweep runs a workload
 *       again with the power cut after its k-th sync, for every k (syncs of
 *       the value log and the log within a persistence point, of each
 *       operation under mount -o sync, of tables, manifest and directory
 *       in a flush), and the tree recovered must be the state after some
 *       prefix of the operations, at least those that a persistence point
 *       that returned (or mount -o sync) made durable.
 * The sweep runs for every one-operation workload and half of the
 * two-operation ones.  A third of the one-operation workloads are also
 * run with a second power cut during the recovery from the first (after
 * each of its syncs; the mount may fail then): recovery must be able to
 * start over and reach the same tree.  LSM_TEST_LONG adds every combination of persistence
 * kinds (and none after the first) for two-operation workloads, the sweep
 * over all of them, and all three-operation workloads over a subset of
 * the operations (every 53rd by default).
 */
#include "test_fs_common.h"

#define MAX_ENTS 48
#define MAX_STEPS 3
#define CUT_DIR "/cutdir"      /* outside the store: syncing it cuts the power */

enum op_kind {
	OP_CREAT, OP_MKDIR, OP_WRITE, OP_APPEND, OP_TRUNC, OP_FALLOC, OP_LINK, OP_UNLINK,
	OP_RENAME, OP_XCHG, OP_SYMLINK, OP_SETXATTR, OP_RMXATTR, OP_RMDIR, OP_UNLINK_OPEN,
	OP_FLUSH, OP_GC,
};

static const char *const kind_names[] = {
	"creat", "mkdir", "write", "append", "truncate", "fallocate", "link", "unlink",
	"rename", "exchange", "symlink", "setxattr", "removexattr", "rmdir", "unlink-open",
	"flush", "compact+gc",
};

struct op {
	enum op_kind kind;
	const char *a, *b;         /* paths; b: second path, symlink target or xattr name */
	long off, len;             /* offset and length (len: bytes appended, written after
	                              unlink-open, or of the xattr value); off: a new size */
	int mode;                  /* fallocate mode */
};

#define PH (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

static const struct op ops[] = {
	{ OP_CREAT, "/N", NULL, 0, 0, 0 }, { OP_CREAT, "/d/N", NULL, 0, 0, 0 },
	{ OP_MKDIR, "/M", NULL, 0, 0, 0 }, { OP_MKDIR, "/d/M", NULL, 0, 0, 0 },
	{ OP_WRITE, "/A", NULL, 0, 100, 0 }, { OP_WRITE, "/A", NULL, 0, 4096, 0 },
	{ OP_WRITE, "/A", NULL, 4000, 200, 0 }, { OP_WRITE, "/d/C", NULL, 10000, 100, 0 },
	{ OP_WRITE, "/N", NULL, 0, 4096, 0 }, { OP_APPEND, "/A", NULL, 0, 100, 0 },
	{ OP_APPEND, "/B", NULL, 0, 100, 0 }, { OP_APPEND, "/B", NULL, 0, 4096, 0 },
	{ OP_APPEND, "/N", NULL, 0, 100, 0 }, { OP_TRUNC, "/A", NULL, 1000, 0, 0 },
	{ OP_TRUNC, "/A", NULL, 0, 0, 0 }, { OP_TRUNC, "/B", NULL, 10000, 0, 0 },
	{ OP_TRUNC, "/d/C", NULL, 5000, 0, 0 }, { OP_TRUNC, "/N", NULL, 3000, 0, 0 },
	{ OP_FALLOC, "/A", NULL, 0, 20000, 0 }, { OP_FALLOC, "/A", NULL, 0, 4096, PH },
	{ OP_FALLOC, "/A", NULL, 100, 200, PH },
	{ OP_FALLOC, "/d/C", NULL, 0, 16384, FALLOC_FL_KEEP_SIZE },
	{ OP_FALLOC, "/B", NULL, 100, 5000, 0 }, { OP_LINK, "/A", "/d/L", 0, 0, 0 },
	{ OP_LINK, "/d/C", "/L", 0, 0, 0 }, { OP_LINK, "/N", "/d/NL", 0, 0, 0 },
	{ OP_UNLINK, "/B", NULL, 0, 0, 0 }, { OP_UNLINK, "/A", NULL, 0, 0, 0 },
	{ OP_UNLINK, "/d/H", NULL, 0, 0, 0 }, { OP_UNLINK, "/N", NULL, 0, 0, 0 },
	{ OP_RENAME, "/B", "/d/B2", 0, 0, 0 }, { OP_RENAME, "/A", "/B", 0, 0, 0 },
	{ OP_RENAME, "/d/C", "/d/C2", 0, 0, 0 }, { OP_RENAME, "/d/H", "/A", 0, 0, 0 },
	{ OP_RENAME, "/N", "/d/C", 0, 0, 0 }, { OP_RENAME, "/d", "/e", 0, 0, 0 },
	{ OP_RENAME, "/e", "/d/E", 0, 0, 0 }, { OP_RENAME, "/d", "/D", 0, 0, 0 },
	{ OP_XCHG, "/A", "/d/C", 0, 0, 0 }, { OP_SYMLINK, "/S", "A", 0, 0, 0 },
	{ OP_SYMLINK, "/d/S", "../B", 0, 0, 0 }, { OP_SETXATTR, "/A", "user.x", 0, 9, 0 },
	{ OP_SETXATTR, "/B", "user.y", 0, 100, 0 }, { OP_SETXATTR, "/d", "user.z", 0, 10, 0 },
	{ OP_SETXATTR, "/N", "user.n", 0, 5, 0 }, { OP_RMXATTR, "/A", "user.x", 0, 0, 0 },
	{ OP_RMDIR, "/e", NULL, 0, 0, 0 }, { OP_RMDIR, "/M", NULL, 0, 0, 0 },
	{ OP_UNLINK_OPEN, "/B", NULL, 0, 4096, 0 }, { OP_UNLINK_OPEN, "/N", NULL, 0, 100, 0 },
	{ OP_FLUSH, "/", NULL, 0, 0, 0 }, { OP_GC, "/", NULL, 0, 0, 0 },
};
#define NOPS ((int)(sizeof(ops) / sizeof(ops[0])))

enum persist { P_NONE, P_FSYNC, P_FDATASYNC, P_SYNC };
static const char *const persist_names[] = { "-", "fsync", "fdatasync", "sync" };

struct workload {
	int n;
	int op[MAX_STEPS];
	enum persist p[MAX_STEPS];
	int variant;               /* V_*: where the starting tree lives, how the fs is mounted */
};

enum { V_LOG, V_FLUSHED, V_SYNC_MOUNT, V_COUNT };
static const char *const variant_names[] = { "in-log", "flushed", "mount -o sync" };

/* One object as seen by getattr, read, readlink, readdir and listxattr.
 * data hashes a file's bytes, a symlink's target or a directory's
 * (name, ino, type) list; atime is left out (the test mounts noatime). */
struct ent {
	char path[64];
	uint64_t ino, data, xattrs;
	mode_t mode;
	nlink_t nlink;
	off_t size;
	blkcnt_t blocks;
	uid_t uid;
	gid_t gid;
	struct timespec mtime, ctime;
};

struct snap {
	struct ent e[MAX_ENTS];
	int n;
	bool no_times;             /* taken from the run without a cut: times differ */
};

/* What a persistence point promised, in POSIX terms. */
struct cover {
	uint64_t ino;
	bool meta;                 /* all of it (fsync); else data and size (fdatasync) */
	int state;                 /* the snapshot it was promised at */
};

struct involved {
	uint64_t ino[4];
	bool dir[4];
	int n;
};

/* The test's state, for teardown to report and free after a failure. */
struct ace {
	struct tfs *t;
	char wl[256];              /* the workload running, "" when none */
	uint64_t remount_cut;       /* k > 0: a second power cut after the k-th sync of recovery */
	uint64_t mount_syncs;      /* syncs the last recovery made */
	uint64_t cases, cuts_mid, unread, recoveries_cut;
};

static struct ace *cur;

#define ACE_FAIL(...) do { \
	char msg_[512]; \
	snprintf(msg_, sizeof(msg_), __VA_ARGS__); \
	fail_msg("workload [%s]: %s", cur->wl, msg_); \
} while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void describe(const struct workload *w, char *buf, size_t len)
{
	int o = snprintf(buf, len, "%s", variant_names[w->variant]);

	for (int i = 0; i < w->n && o > 0 && (size_t)o < len; i++) {
		const struct op *op = &ops[w->op[i]];

		o += snprintf(buf + o, len - (size_t)o, "; %s(%s%s%s", kind_names[op->kind], op->a,
		              op->b ? ", " : "", op->b ? op->b : "");
		if (op->kind == OP_WRITE || op->kind == OP_FALLOC)
			o += snprintf(buf + o, len - (size_t)o, ", %ld, %ld", op->off, op->len);
		else if (op->kind == OP_APPEND || op->kind == OP_SETXATTR)
			o += snprintf(buf + o, len - (size_t)o, ", %ld", op->len);
		else if (op->kind == OP_TRUNC)
			o += snprintf(buf + o, len - (size_t)o, ", %ld", op->off);
		if (op->kind == OP_FALLOC)
			o += snprintf(buf + o, len - (size_t)o, ", mode %d", op->mode);
		o += snprintf(buf + o, len - (size_t)o, "); %s", persist_names[w->p[i]]);
	}
}

/* ---- reading the tree ------------------------------------------------- */

struct dir_list {
	char names[MAX_ENTS][16];
	int n;
	uint64_t h;
	off_t last;
};

static int list_fill(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct dir_list *l = arg;
	mode_t type = e->attr.st_mode & S_IFMT;

	l->last = next_off;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (l->n == MAX_ENTS || strlen(name) >= sizeof(l->names[0]))
		return -ENAMETOOLONG;
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
	l->h = fnv(l->h, name, strlen(name) + 1);
	l->h = fnv(l->h, &e->ino, sizeof(e->ino));
	l->h = fnv(l->h, &type, sizeof(type));
	return 0;
}

/* Loads inode ino into *e (and, for a directory, its names into *l if l
 * is not NULL).  Returns 0 or an error (a missing inode gives -ENOENT). */
static int ent_load(struct fs *fs, uint64_t ino, struct ent *e, struct dir_list *l)
{
	struct dir_list local;
	struct stat st;
	char xl[256], v[128];
	ssize_t xn;
	int r = fs_getattr(fs, ino, &st);

	if (r < 0)
		return r;
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->mode = st.st_mode;
	e->nlink = st.st_nlink;
	e->size = st.st_size;
	e->blocks = st.st_blocks;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->mtime = st.st_mtim;
	e->ctime = st.st_ctim;
	e->data = e->xattrs = 0xcbf29ce484222325ull;
	xn = fs_listxattr(fs, NULL, ino, xl, sizeof(xl));
	if (xn < 0)
		return (int)xn;
	for (char *p = xl; p < xl + xn; p += strlen(p) + 1) {
		ssize_t vn = fs_getxattr(fs, NULL, ino, p, v, sizeof(v));

		if (vn < 0)
			return (int)vn;
		e->xattrs = fnv(fnv(e->xattrs, p, strlen(p) + 1), v, (size_t)vn);
	}
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		uint8_t *buf = malloc((size_t)st.st_size + 1);
		struct fs_file *fh;
		ssize_t n = -ENOMEM;

		if (buf && (r = fs_open(fs, NULL, ino, O_RDONLY, &fh)) == 0) {
			n = fs_read(fs, fh, buf, (size_t)st.st_size + 1, 0);
			fs_release(fs, fh);
		} else if (buf) {
			n = r;
		}
		if (n >= 0 && n != st.st_size)
			n = -EIO;
		if (n > 0)
			e->data = fnv(e->data, buf, (size_t)n);
		free(buf);
		if (n < 0)
			return (int)n;
	} else if (S_ISLNK(st.st_mode)) {
		char *target;

		r = fs_readlink(fs, ino, &target);
		if (r < 0)
			return r;
		e->data = fnv(e->data, target, strlen(target));
		free(target);
	} else if (S_ISDIR(st.st_mode)) {
		struct fs_dir *dh;

		if (!l)
			l = &local;
		memset(l, 0, sizeof(*l));
		l->h = e->data;
		r = fs_opendir(fs, NULL, ino, 0, &dh);
		if (r < 0)
			return r;
		while ((r = fs_readdir(fs, dh, l->last, list_fill, l)) > 0)
			;
		fs_releasedir(fs, dh);
		if (r < 0)
			return r;
		e->data = l->h;
	}
	return 0;
}

static char snap_err[128];        /* where the last failed walk stopped */

/* Notes where a walk failed (the first place only) and returns r. */
static int snap_fail(const char *path, int r)
{
	if (r < 0 && !snap_err[0])
		snprintf(snap_err, sizeof(snap_err), "%s: %s", path, strerror(-r));
	return r;
}

/* Walks the tree depth-first in name order from "/" into *s. */
static int snap_dir(struct fs *fs, uint64_t dir, const char *path, struct snap *s)
{
	struct dir_list *l = malloc(sizeof(*l));
	struct ent *de;
	int r;

	if (!l)
		return -ENOMEM;
	if (s->n == MAX_ENTS) {
		free(l);
		return -ENOSPC;
	}
	de = &s->e[s->n++];
	r = snap_fail(path, ent_load(fs, dir, de, l));
	snprintf(de->path, sizeof(de->path), "%s", path);
	for (int i = 0; i < l->n && r == 0; i++) {
		char child[64];
		int64_t ino = lookup_ino(fs, dir, l->names[i]);

		snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "", l->names[i]);
		if (ino < 0) {
			r = snap_fail(child, (int)ino);
		} else if (s->n == MAX_ENTS) {
			r = -ENOSPC;
		} else {
			struct ent tmp;

			r = snap_fail(child, ent_load(fs, (uint64_t)ino, &tmp, NULL));
			if (r == 0 && S_ISDIR(tmp.mode)) {
				r = snap_dir(fs, (uint64_t)ino, child, s);
			} else if (r == 0) {
				s->e[s->n] = tmp;
				snprintf(s->e[s->n++].path, sizeof(tmp.path), "%s", child);
			}
		}
	}
	free(l);
	return r;
}

static int snap_take(struct fs *fs, struct snap *s)
{
	s->n = 0;
	snap_err[0] = '\0';
	return snap_dir(fs, ROOT, "/", s);
}

static const struct ent *snap_find(const struct snap *s, uint64_t ino)
{
	for (int i = 0; i < s->n; i++)
		if (s->e[i].ino == ino)
			return &s->e[i];
	return NULL;
}

static bool ent_same(const struct ent *a, const struct ent *b, bool meta, bool times)
{
	if (a->size != b->size || a->data != b->data || (a->mode & S_IFMT) != (b->mode & S_IFMT))
		return false;
	if (!meta)
		return true;
	if (a->mode != b->mode || a->nlink != b->nlink || a->blocks != b->blocks ||
	    a->uid != b->uid || a->gid != b->gid || a->xattrs != b->xattrs)
		return false;
	return !times || (a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	                  a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec);
}

/* Whole trees: the same paths naming the same inodes in the same state.
 * On a difference, *why says where. */
static bool snap_same(const struct snap *a, const struct snap *b, char *why, size_t len)
{
	for (int i = 0; i < a->n || i < b->n; i++) {
		const struct ent *x = i < a->n ? &a->e[i] : NULL, *y = i < b->n ? &b->e[i] : NULL;

		if (!x || !y || strcmp(x->path, y->path) || x->ino != y->ino) {
			snprintf(why, len, "%s (ino %llu) where %s (ino %llu) was expected",
			         x ? x->path : "nothing", x ? (unsigned long long)x->ino : 0ull,
			         y ? y->path : "nothing", y ? (unsigned long long)y->ino : 0ull);
			return false;
		}
		if (!ent_same(x, y, true, !b->no_times)) {
			snprintf(why, len, "%s: mode %o nlink %lu size %lld blocks %lld%s%s%s, expected "
			         "mode %o nlink %lu size %lld blocks %lld", x->path, (unsigned)x->mode,
			         (unsigned long)x->nlink, (long long)x->size, (long long)x->blocks,
			         x->data != y->data ? ", other contents" : "",
			         x->xattrs != y->xattrs ? ", other xattrs" : "",
			         memcmp(&x->mtime, &y->mtime, sizeof(x->mtime)) ||
			         memcmp(&x->ctime, &y->ctime, sizeof(x->ctime)) ? ", other times" : "",
			         (unsigned)y->mode, (unsigned long)y->nlink, (long long)y->size,
			         (long long)y->blocks);
			return false;
		}
	}
	return true;
}

/* ---- running operations ----------------------------------------------- */

/* Resolves an absolute path: returns its inode or -ENOENT etc.; when its
 * directory exists, *ret_parent and *ret_leaf (else they stay NULL). */
static int64_t resolve(struct fs *fs, const char *path, uint64_t *ret_parent, const char **ret_leaf)
{
	const char *p = path + 1, *slash;
	uint64_t dir = ROOT;
	char name[32];

	*ret_leaf = NULL;
	while ((slash = strchr(p, '/'))) {
		int64_t d;

		snprintf(name, sizeof(name), "%.*s", (int)(slash - p), p);
		d = lookup_ino(fs, dir, name);
		if (d < 0)
			return d;
		dir = (uint64_t)d;
		p = slash + 1;
	}
	*ret_parent = dir;
	*ret_leaf = p;
	return lookup_ino(fs, dir, p);
}

static void involve(struct involved *inv, struct fs *fs, uint64_t ino)
{
	struct stat st;

	for (int i = 0; i < inv->n; i++)
		if (inv->ino[i] == ino)
			return;
	if (inv->n < 4 && fs_getattr(fs, ino, &st) == 0) {
		inv->dir[inv->n] = S_ISDIR(st.st_mode);
		inv->ino[inv->n++] = ino;
	}
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)('a' + (seed * 7 + i) % 26);
}

/* Writes, truncates or fallocates file ino as op says. */
static int file_op(struct fs *fs, const struct op *op, uint64_t ino, uint64_t seed)
{
	static uint8_t buf[8192];
	struct fs_file *fh;
	ssize_t n = 0;
	int r;

	if (op->kind == OP_TRUNC)
		return fs_setattr(fs, NULL, ino, &(struct stat){ .st_size = op->off }, FS_SET_ATTR_SIZE,
		                  NULL, NULL);
	r = fs_open(fs, NULL, ino, op->kind == OP_APPEND ? O_WRONLY | O_APPEND : O_WRONLY, &fh);
	if (r < 0)
		return r;
	if (op->kind == OP_FALLOC) {
		r = fs_fallocate(fs, NULL, fh, op->mode, op->off, op->len);
	} else {
		fill(buf, (size_t)op->len, seed);
		n = fs_write(fs, NULL, fh, buf, (size_t)op->len, op->off);
		r = n < 0 ? (int)n : n == op->len ? 0 : -EIO;
	}
	fs_release(fs, fh);
	return r;
}

/* Unlinks a file while a handle is open on it and, if that was its last
 * link, writes through the handle, which stays open: fs_close at the power
 * cut frees it, so the orphan must be reclaimed at the next mount.
 * Returns the unlink's result: the write changes no file anyone can reach
 * (so the operation stays one step of the tree). */
static int unlink_open(struct fs *fs, uint64_t dir, const char *name, uint64_t ino, long len)
{
	static uint8_t buf[4096];
	struct fs_file *fh;
	struct stat st;
	ssize_t n;
	int r = fs_open(fs, NULL, ino, O_RDWR, &fh);

	if (r < 0)
		return r;
	r = fs_unlink(fs, NULL, dir, name);
	if (r < 0) {
		fs_release(fs, fh);
		return r;
	}
	if (fs_getattr(fs, ino, &st) < 0 || st.st_nlink > 0)
		return 0;
	fill(buf, (size_t)len, 5);
	n = fs_write(fs, NULL, fh, buf, (size_t)len, 0);
	if (n != len && !env_fault_is_down(cur->t->env))
		ACE_FAIL("writing to an unlinked open file: %zd %s", n, fs_last_error());
	return 0;
}

/* The engine's own work, which changes no file: a flush of the memtable
 * (and a new log), or a full compaction and value-log GC. */
static int maintain(struct fs *fs, enum op_kind kind)
{
	lsm_db *db = fs_db(fs);
	int64_t g;
	int r;

	if (kind == OP_FLUSH) {
		r = lsm_flush(db);
		return r < 0 ? r : lsm_wait_idle(db);
	}
	r = lsm_compact_range(db, NULL, 0, NULL, 0);
	g = r < 0 ? r : lsm_gc(db);
	return g < 0 ? (int)g : 0;
}

/* Runs operation op (the workload's step-th): returns its result, and in
 * *inv the inodes it involved: the files it changed, and for operations on
 * names (and failed ones) the directories too, as ACE fsyncs them. */
static int op_run(struct fs *fs, const struct op *op, int step, struct involved *inv)
{
	uint64_t pa = ROOT, pb = ROOT;
	const char *la, *lb = NULL;
	int64_t a = resolve(fs, op->a, &pa, &la), b = -ENOENT;
	bool second = op->b && op->b[0] == '/', made;
	struct fs_entry e;
	struct fs_file *fh;
	uint8_t val[128];
	int r;

	inv->n = 0;
	if (second)
		b = resolve(fs, op->b, &pb, &lb);
	if (op->kind == OP_FLUSH || op->kind == OP_GC)
		r = maintain(fs, op->kind);
	else if (!la || (second && !lb))
		r = -ENOENT;   /* a directory on the way is missing */
	else if (op->kind == OP_CREAT)
		r = fs_create(fs, NULL, pa, la, 0644, O_CREAT | O_WRONLY | O_TRUNC, &e, &fh);
	else if (op->kind == OP_MKDIR)
		r = fs_mkdir(fs, NULL, pa, la, 0755, &e);
	else if (op->kind == OP_SYMLINK)
		r = fs_symlink(fs, NULL, op->b, pa, la, &e);
	else if (op->kind == OP_UNLINK)
		r = fs_unlink(fs, NULL, pa, la);
	else if (op->kind == OP_RMDIR)
		r = fs_rmdir(fs, NULL, pa, la);
	else if (op->kind == OP_RENAME || op->kind == OP_XCHG)
		r = fs_rename(fs, NULL, pa, la, pb, lb, op->kind == OP_XCHG ? RENAME_EXCHANGE : 0);
	else if (a < 0)
		r = (int)a;
	else if (op->kind == OP_LINK)
		r = fs_link(fs, NULL, (uint64_t)a, pb, lb, &e);
	else if (op->kind == OP_SETXATTR)
		r = (fill(val, (size_t)op->len, (uint64_t)step + 3),
		     fs_setxattr(fs, NULL, (uint64_t)a, op->b, val, (size_t)op->len, 0));
	else if (op->kind == OP_RMXATTR)
		r = fs_removexattr(fs, NULL, (uint64_t)a, op->b);
	else if (op->kind == OP_UNLINK_OPEN)
		r = unlink_open(fs, pa, la, (uint64_t)a, op->len);
	else
		r = file_op(fs, op, (uint64_t)a, (uint64_t)step * 131 + (uint64_t)op->len);
	made = r == 0 && (op->kind == OP_CREAT || op->kind == OP_MKDIR || op->kind == OP_SYMLINK ||
	                  op->kind == OP_LINK);
	if (made) {
		if (op->kind == OP_CREAT)
			fs_release(fs, fh);
		fs_forget(fs, e.ino, 1);
		involve(inv, fs, e.ino);
	}
	if (a > 0)
		involve(inv, fs, (uint64_t)a);   /* gone after unlink, unless it has other links */
	if (b > 0 && op->kind == OP_XCHG)
		involve(inv, fs, (uint64_t)b);
	if (lb)
		involve(inv, fs, pb);
	if (inv->n == 0 || (op->kind != OP_WRITE && op->kind != OP_APPEND && op->kind != OP_TRUNC &&
	                    op->kind != OP_FALLOC && op->kind != OP_SETXATTR &&
	                    op->kind != OP_RMXATTR))
		involve(inv, fs, pa);
	return r;
}

/* The persistence point: returns 0 or the first error, and records in
 * cov[] what POSIX says it made durable. */
static int persist(struct fs *fs, enum persist p, const struct involved *inv, int state,
                   struct cover *cov, int *ncov, const struct snap *s)
{
	int r = 0;

	if (p == P_SYNC) {
		r = fs_sync_all(fs);
		for (int i = 0; r == 0 && i < s->n; i++)
			cov[(*ncov)++] = (struct cover){ s->e[i].ino, true, state };
		return r;
	}
	for (int i = 0; p != P_NONE && i < inv->n && r == 0; i++) {
		int ds = p == P_FDATASYNC;

		r = inv->dir[i] ? fs_fsyncdir(fs, inv->ino[i], ds) : fs_fsync(fs, inv->ino[i], ds);
		if (r == 0)
			cov[(*ncov)++] = (struct cover){ inv->ino[i], !ds, state };
	}
	return r;
}

/* ---- one case ---------------------------------------------------------- */

static void ace_mount(struct tfs *t, const char *when)
{
	int r = fs_open_store(STORE, &t->mo, &t->fs);

	if (r < 0)
		ACE_FAIL("mount %s: %d %s", when, r, fs_last_error());
}

/* A fresh store on the fault env holding the starting tree, synced. */
static struct tfs *ace_new(int variant)
{
	struct tfs *t = calloc(1, sizeof(*t));
	struct fs_mkfs_options mk;
	uint8_t buf[6000];
	struct fs_entry e;
	uint64_t a, d;

	assert_non_null(t);
	t->mem = env_mem_new();
	t->env = env_fault_new(t->mem);
	assert_int_equal(env_mkdir(t->env, CUT_DIR), 0);
	fs_mkfs_options_init(&mk);
	mk.env = t->env;
	mk.root_uid = mk.root_gid = 0;
	if (fs_mkfs(STORE, &mk) < 0)
		fail_msg("fs_mkfs: %s", fs_last_error());
	fs_mount_options_init(&t->mo);
	t->mo.env = t->env;
	t->mo.atime = FS_ATIME_NOATIME;   /* reading a snapshot must write nothing */
	t->mo.sync_writes = variant == V_SYNC_MOUNT;
	cur->t = t;
	ace_mount(t, "the new store");
	fill(buf, sizeof(buf), 1);
	a = mkfile(t->fs, ROOT, "A", buf, 6000);
	assert_int_equal(fs_setxattr(t->fs, NULL, a, "user.x", "ax", 2, 0), 0);
	fill(buf, sizeof(buf), 2);
	mkfile(t->fs, ROOT, "B", buf, 100);
	d = mkdir_(t->fs, ROOT, "d", 0755);
	fill(buf, sizeof(buf), 3);
	mkfile(t->fs, d, "C", buf, 4096);
	assert_int_equal(fs_link(t->fs, NULL, a, d, "H", &e), 0);
	fs_forget(t->fs, e.ino, 1);
	mkdir_(t->fs, ROOT, "e", 0755);
	assert_int_equal(fs_sync_all(t->fs), 0);
	if (variant == V_FLUSHED) {
		assert_int_equal(lsm_flush(fs_db(t->fs)), 0);
		assert_int_equal(lsm_wait_idle(fs_db(t->fs)), 0);
	}
	return t;
}

static void ace_free(struct tfs *t)
{
	if (!t)
		return;
	fs_close(t->fs);
	env_fault_free(t->env);
	env_mem_free(t->mem);
	free(t);
	cur->t = NULL;
}

/* Cuts the power now: the next completed sync (of a directory outside the
 * store) brings it down, so nothing after this point becomes durable. */
static void power_cut_now(struct tfs *t)
{
	env_fault_power_cut_after_sync(t->env, 1);
	env_sync_dir(t->env, CUT_DIR);
	assert_true(env_fault_is_down(t->env));
}

/* Power cut: close (errors expected), forget what was not synced, mount.
 * With cur->remount_cut, the power fails again during that recovery (the
 * mount may fail then), and the store is recovered once more. */
static void crash_and_remount(struct tfs *t)
{
	fs_close(t->fs);
	t->fs = NULL;
	assert_int_equal(env_fault_crash(t->env), 0);
	env_fault_clear(t->env);
	if (cur->remount_cut) {
		env_fault_power_cut_after_sync(t->env, cur->remount_cut);
		if (fs_open_store(STORE, &t->mo, &t->fs) < 0)
			t->fs = NULL;
		if (!env_fault_is_down(t->env))
			power_cut_now(t);
		else
			cur->recoveries_cut++;
		fs_close(t->fs);
		t->fs = NULL;
		assert_int_equal(env_fault_crash(t->env), 0);
		env_fault_clear(t->env);
	}
	env_fault_reset_counts(t->env);
	ace_mount(t, "after the power cut");
	cur->mount_syncs = env_fault_count(t->env, FAULT_SYNC) + env_fault_count(t->env, FAULT_SYNC_DIR);
}

/* POSIX's promise: each covered object is as it was at its persistence
 * point or in a later state (or gone, if a later operation removed it). */
static void check_covered(struct fs *fs, const struct cover *cov, int ncov,
                          const struct snap *states, int nstates)
{
	for (int c = 0; c < ncov; c++) {
		const struct ent *want = snap_find(&states[cov[c].state], cov[c].ino);
		bool gone_ok = false, ok = false;
		struct ent got;
		int r;

		if (!want)
			continue;      /* not reachable then (e.g. the unlinked file) */
		for (int j = cov[c].state; j < nstates; j++) {
			const struct ent *w = snap_find(&states[j], cov[c].ino);

			gone_ok |= !w;
		}
		r = ent_load(fs, cov[c].ino, &got, NULL);
		if (r == -ENOENT && gone_ok)
			continue;
		if (r == -ENOENT)
			ACE_FAIL("POSIX: %s (ino %llu) was made durable by %s after operation %d, but "
			         "it is gone after the crash", want->path, (unsigned long long)cov[c].ino,
			         cov[c].meta ? "fsync" : "fdatasync", cov[c].state);
		if (r < 0)
			ACE_FAIL("%s (ino %llu), made durable by %s, is unreadable: %d %s", want->path,
			         (unsigned long long)cov[c].ino, cov[c].meta ? "fsync" : "fdatasync", r,
			         fs_last_error());
		for (int j = cov[c].state; j < nstates && !ok; j++) {
			const struct ent *w = snap_find(&states[j], cov[c].ino);

			ok = w && ent_same(&got, w, cov[c].meta, !states[j].no_times);
		}
		if (!ok)
			ACE_FAIL("POSIX: %s (ino %llu) was made durable by %s after operation %d, but after "
			         "the crash it has size %lld%s (expected size %lld)", want->path,
			         (unsigned long long)cov[c].ino, cov[c].meta ? "fsync" : "fdatasync",
			         cov[c].state, (long long)got.size,
			         got.data != want->data ? " and other contents" : " and other metadata",
			         (long long)want->size);
	}
}

/* After recovery a new file must get an inode number never seen before. */
static void check_new_ino(struct fs *fs, const struct snap *states, int nstates)
{
	struct fs_entry e;
	struct fs_file *fh;
	int r = fs_create(fs, NULL, ROOT, "post-crash", 0644, O_CREAT | O_RDWR | O_EXCL, &e, &fh);

	if (r < 0)
		ACE_FAIL("creating a file after recovery: %d %s", r, fs_last_error());
	assert_int_equal(fs_write(fs, NULL, fh, "x", 1, 0), 1);
	assert_int_equal(fs_release(fs, fh), 0);
	fs_forget(fs, e.ino, 1);
	for (int j = 0; j < nstates; j++)
		if (snap_find(&states[j], e.ino))
			ACE_FAIL("a file made after recovery got inode %llu, which was in use before",
			         (unsigned long long)e.ino);
}

/* Runs workload w.  cut_after 0: the power goes right after the last
 * persistence point, and ref[] gets the states the workload went through;
 * k > 0: after the k-th sync of the workload, and ref[] holds the states of
 * the run without a cut (for the state after an operation the power cut
 * short before it could be read: the same but for times).  Returns the
 * number of syncs the workload made before the cut. */
static uint64_t run_case(const struct workload *w, uint64_t cut_after, struct snap *ref)
{
	struct snap *states = calloc(MAX_STEPS + 2, sizeof(*states)), *got = calloc(1, sizeof(*got));
	struct cover cov[4 * MAX_STEPS + MAX_ENTS * MAX_STEPS];
	int ncov = 0, nstates = 1, durable = 0;
	struct tfs *t;
	uint64_t syncs;
	char why[256];

	assert_non_null(states);
	assert_non_null(got);
	describe(w, cur->wl, sizeof(cur->wl));
	if (cut_after)
		snprintf(cur->wl + strlen(cur->wl), sizeof(cur->wl) - strlen(cur->wl),
		         "; power cut after sync %llu", (unsigned long long)cut_after);
	if (cur->remount_cut)
		snprintf(cur->wl + strlen(cur->wl), sizeof(cur->wl) - strlen(cur->wl),
		         "; again after sync %llu of recovery", (unsigned long long)cur->remount_cut);
	t = ace_new(w->variant);
	if (snap_take(t->fs, &states[0]) < 0)
		ACE_FAIL("reading the starting tree: %s", snap_err);
	env_fault_reset_counts(t->env);
	if (cut_after)
		env_fault_power_cut_after_sync(t->env, cut_after);
	for (int i = 0; i < w->n && !env_fault_is_down(t->env); i++) {
		struct involved inv;
		int r = op_run(t->fs, &ops[w->op[i]], i, &inv);

		if (r < 0 && env_fault_is_down(t->env))
			break;         /* refused: the power went during it, it changed nothing */
		if (snap_take(t->fs, &states[nstates]) < 0) {
			if (!env_fault_is_down(t->env) || !cut_after)
				ACE_FAIL("reading the tree after operation %d: %s", i + 1, snap_err);
			/* It returned, but the tree after it can no longer be read. */
			states[nstates] = ref[nstates];
			cur->unread++;
			states[nstates++].no_times = true;
			if (r == 0 && w->variant == V_SYNC_MOUNT)
				durable = nstates - 1;
			break;
		}
		nstates++;
		if (r == 0 && w->variant == V_SYNC_MOUNT)
			durable = nstates - 1;     /* each operation synced before it returned */
		r = persist(t->fs, w->p[i], &inv, nstates - 1, cov, &ncov, &states[nstates - 1]);
		if (r < 0 && !env_fault_is_down(t->env))
			ACE_FAIL("%s after operation %d: %d %s", persist_names[w->p[i]], i + 1, r,
			         fs_last_error());
		if (r == 0 && w->p[i] != P_NONE)
			durable = nstates - 1;
	}
	syncs = env_fault_count(t->env, FAULT_SYNC) + env_fault_count(t->env, FAULT_SYNC_DIR);
	if (!env_fault_is_down(t->env))
		power_cut_now(t);
	else
		cur->cuts_mid++;
	crash_and_remount(t);
	if (snap_take(t->fs, got) < 0)
		ACE_FAIL("reading the recovered tree: %s %s", snap_err, fs_last_error());
	check_covered(t->fs, cov, ncov, states, nstates);
	if (!snap_same(got, &states[nstates - 1], why, sizeof(why))) {
		int j;

		for (j = nstates - 2; j >= 0; j--)
			if (snap_same(got, &states[j], why, sizeof(why)))
				break;
		if (j >= 0 && j < durable)
			ACE_FAIL("recovered the tree after operation %d, but operations up to %d were "
			         "made durable (fs_fsync syncs the whole log)", j, durable);
		if (j < 0) {
			snap_same(got, &states[nstates - 1], why, sizeof(why));
			ACE_FAIL("the recovered tree is no state the workload went through: %s", why);
		}
	}
	tfs_check_consistent(t->fs);
	check_new_ino(t->fs, states, nstates);
	if (fs_close(t->fs) < 0)
		ACE_FAIL("unmount after recovery: %s", fs_last_error());
	t->fs = NULL;
	ace_free(t);
	if (!cut_after)
		memcpy(ref, states, (MAX_STEPS + 1) * sizeof(*states));
	free(states);
	free(got);
	cur->wl[0] = '\0';
	cur->cases++;
	return syncs;
}

/* Runs w cut at its end; then (sweep) cut after each of its syncs; then
 * (twice) cut at its end and again after each sync of the recovery. */
static void run_workload(const struct workload *w, bool sweep, bool twice)
{
	struct snap *ref = calloc(MAX_STEPS + 1, sizeof(*ref));
	uint64_t syncs, mount_syncs;

	assert_non_null(ref);
	syncs = run_case(w, 0, ref);
	mount_syncs = cur->mount_syncs;
	for (uint64_t k = 1; sweep && k < syncs; k++)
		run_case(w, k, ref);
	for (uint64_t k = 1; twice && k <= mount_syncs; k++) {
		cur->remount_cut = k;
		run_case(w, 0, ref);
		cur->remount_cut = 0;
	}
	free(ref);
}

/* ---- the tests ---------------------------------------------------------- */

static int ace_setup(void **state)
{
	cur = calloc(1, sizeof(*cur));
	*state = cur;
	return cur ? 0 : -1;
}

static int ace_teardown(void **state)
{
	struct ace *a = *state;

	if (a->wl[0])
		fprintf(stderr, "# failing workload: %s\n", a->wl);
	ace_free(a->t);
	fprintf(stderr, "# %llu cases: %llu cut between syncs, %llu of them before the state "
	        "after an operation could be read; %llu recoveries cut\n",
	        (unsigned long long)a->cases, (unsigned long long)a->cuts_mid,
	        (unsigned long long)a->unread, (unsigned long long)a->recoveries_cut);
	free(a);
	cur = NULL;
	return 0;
}

/* Every operation, with each persistence kind; the sync sweep; and for
 * one of the kinds, a second power cut after each sync of the recovery. */
static void test_ace_one_op(void **state)
{
	(void)state;
	for (int i = 0; i < NOPS; i++)
		for (int p = P_FSYNC; p <= P_SYNC; p++) {
			struct workload w = { 1, { i }, { (enum persist)p }, (i + p) % V_COUNT };

			/* the second cut during recovery for one kind per operation */
			run_workload(&w, true, p == P_FSYNC + i % 3);
		}
}

/* Every ordered pair of operations; the persistence kinds rotate so that
 * all nine combinations occur (LSM_TEST_LONG: every combination for every
 * pair, with none after the first step too, the sync sweep, and for a
 * twelfth of them the second cut during recovery). */
static void test_ace_two_op(void **state)
{
	(void)state;
	for (int i = 0; i < NOPS; i++)
		for (int j = 0; j < NOPS; j++) {
			int n = (i * NOPS + j);
			struct workload w = { 2, { i, j },
				{ (enum persist)(P_FSYNC + n % 3), (enum persist)(P_FSYNC + (n / 3) % 3) },
				(n / 9 + n) % V_COUNT };

			if (!test_long()) {
				/* every seventh pair: nothing after the first step;
				 * the sync sweep for half of them */
				if (n % 7 == 3)
					w.p[0] = P_NONE;
				run_workload(&w, (n / 9) % 2 == 0, false);
				continue;
			}
			for (int p0 = P_NONE; p0 <= P_SYNC; p0++)
				for (int p1 = P_FSYNC; p1 <= P_SYNC; p1++) {
					w.p[0] = (enum persist)p0;
					w.p[1] = (enum persist)p1;
					run_workload(&w, true, (p0 * 3 + p1 + n) % 12 == 0);
				}
		}
}

/* Three steps (every 53rd workload; all with LSM_TEST_LONG) over a subset
 * of the operations that keeps the dependent ones: creat /N, mkdir /M,
 * block-sized write to /A and /N, block-sized append to /B, truncate /A to
 * 0, punch a block of /A, link /A and /N, unlink /A, rename /A over /B, /N
 * over /d/C and /d over /e, exchange, symlink, setxattr on /A and /N,
 * removexattr, rmdir /M, unlink-open /B, flush, compact+gc. */
static void test_ace_three_op(void **state)
{
	static const int sub[] = { 0, 2, 5, 8, 11, 14, 19, 23, 25, 27, 31, 34, 35, 38, 39, 41, 44,
	                           45, 47, 48, 50, 51 };
	int ns = (int)(sizeof(sub) / sizeof(sub[0]));

	(void)state;
	for (int i = 0; i < ns; i++)
		for (int j = 0; j < ns; j++)
			for (int k = 0; k < ns; k++) {
				int n = (i * ns + j) * ns + k;
				struct workload w = { 3, { sub[i], sub[j], sub[k] },
					{ (enum persist)(n % 4), (enum persist)((n / 4) % 4),
					  (enum persist)(P_FSYNC + n % 3) }, (n / 48) % V_COUNT };

				if (test_long() || n % 53 == 0)
					run_workload(&w, n % 3 == 0, false);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ace_one_op, ace_setup, ace_teardown),
		cmocka_unit_test_setup_teardown(test_ace_two_op, ace_setup, ace_teardown),
		cmocka_unit_test_setup_teardown(test_ace_three_op, ace_setup, ace_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
