/*
 * fsck.h - fsck.lsmfs's shared state: the check context that every pass
 * reads and fills, the problem codes and the fix_problem() interface
 * (problem.c), the read-only view of the store and the write path that
 * repairs go through (view.c, kv.c), the namespace model (ns.c), the
 * repair helpers (repair.c), reachability and /lost+found (conn.c), the
 * progress bar (progress.c) and the exit bits of fsck(8).
 *
 * How a check runs (main.c): the store's LOCK is taken so that nothing can
 * mount it meanwhile, then five passes run in order, each in its own file:
 *   1 store metadata   CURRENT, MANIFEST, the files it names, the WALs, and
 *                      the superblock key (pass1.c)
 *   2 SSTables         footers, indexes, filters, key ranges, level rules,
 *                      with -f every block; orphaned tables (pass2.c)
 *   3 value log        segments, every value pointer, orphaned segments,
 *                      and the deletion of orphaned files (pass3.c)
 *   4 namespace        dirents, reachability, loops, /lost+found (pass4.c)
 *   5 counts           link counts, sizes, blocks, orphan records, the
 *                      superblock's counters (pass5.c)
 * Everything is read through a read-only view of the store built from its
 * manifest, tables and WALs exactly as the engine's recovery would build it
 * (view.c), so that -n changes no byte.  The first repair that needs the
 * engine closes the view and opens the store read-write (kv.c); from then
 * on reads and repairs both go through the engine, and every repair is one
 * atomic engine batch.
 */
#ifndef LSMFS_FSCK_H
#define LSMFS_FSCK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db_int.h"
#include "fs.h"
#include "keys.h"
#include "vlog.h"

/* Exit status bits, as fsck(8) and e2fsck.h define them. */
#define FSCK_OK          0
#define FSCK_NONDESTRUCT 1    /* errors corrected */
#define FSCK_REBOOT      2    /* (never: lsmfs has no mounted root to reboot) */
#define FSCK_UNCORRECTED 4    /* errors left uncorrected */
#define FSCK_ERROR       8    /* operational error */
#define FSCK_USAGE       16   /* usage or syntax error */
#define FSCK_CANCELED    32   /* cancelled by the user */

enum fsck_mode {
	FSCK_MODE_ASK,            /* interactive: ask on the terminal */
	FSCK_MODE_NO,             /* -n: change nothing, answer no */
	FSCK_MODE_PREEN,          /* -p/-a: fix what is safe, else stop */
	FSCK_MODE_YES,            /* -y: fix everything fixable */
};

/* One file of the store directory that the engine names (lsm_parse_filename). */
struct fsck_file {
	enum lsm_file_type type;
	uint64_t number;
	uint64_t size;            /* bytes, from the env */
	bool referenced;          /* named by the version (tables), by a pointer (segments) */
	bool orphan;              /* known to be named by nothing (pass 3) */
	uint64_t record_bytes;    /* segments: bytes of value records (pass 3's scan) */
};

/* A value pointer found in the tree (pass 3), sorted by segment and offset. */
struct fsck_vptr {
	uint64_t segment;
	uint64_t offset;
	uint32_t length;          /* the whole record, as the pointer says */
	uint32_t vlen;            /* the value's length, once verified */
	uint8_t visible;          /* the newest version of its key */
	uint8_t state;            /* FSCK_VPTR_* */
};
#define FSCK_VPTR_UNCHECKED 0
#define FSCK_VPTR_OK        1
#define FSCK_VPTR_BAD       2

struct fsck_view;
struct fsck_ns;
struct fsck_kv_iter;

struct fsck_ctx {
	/* what was asked */
	const char *store;        /* the STORE argument, for messages */
	char *dir;                /* the same, used for file names */
	lsm_env *env;
	enum fsck_mode mode;
	bool force;               /* -f: verify every block; no preen shortcut */
	bool verbose;             /* -v */
	bool progress;            /* -C or a terminal: show progress bars */
	int progress_fd;

	/* state of the run */
	lsm_lock *lock;           /* the store's LOCK, held while checking */
	int pass;                 /* the pass running, 1..5 */
	unsigned long found, fixed, left;   /* problems found / fixed / left */
	bool op_error;            /* an operational error happened (exit 8) */
	bool preen_halt;          /* -p met a problem it may not fix */
	char no_delete[256];      /* why no file may be deleted ("" if none) */
	char no_rw[256];          /* why the store may not be opened read-write ("" if it may) */
	bool told_no_rw;
	bool engine_ok;           /* the tree can be read: passes 3-5 may scan it */
	bool ns_ok;               /* the superblock and root allow passes 4-5 */

	/* pass 1 */
	struct fsck_file *files;  /* the store directory, by number */
	size_t nfiles;
	lsm_manifest_state ms;    /* the live version (ms.version) and counters */
	bool have_version;
	bool ptrs_complete;       /* pass 3 read every value pointer: segments' references are known */
	int sb_err;               /* reading the superblock failed with this (pass 1 defers it) */
	bool skip_corrupt_wal;    /* drop damaged WAL records when opening read-write */
	uint64_t wal_records, wal_skipped, wal_cut;
	struct fs_super sb;       /* the superblock as read (and as repaired) */
	bool have_sb;
	bool sb_clean;            /* the superblock said "unmounted cleanly" */
	bool sb_rewrite;          /* pass 4 writes ctx->sb anew (pass 1 found it bad) */

	/* the store as read (view.c) or as opened for repairs (kv.c) */
	struct fsck_view *view;
	lsm_db *db;
	int open_iters;           /* kv iterators alive: none may be across a repair */

	/* pass 2/3 */
	uint64_t table_bytes, table_entries;
	struct fsck_vptr *vptrs;
	size_t nvptrs;

	/* pass 4/5 */
	struct fsck_ns *ns;

	/* progress bar (progress.c) */
	uint64_t prog_total, prog_done;
	double prog_last;         /* when it was last drawn, seconds */
	int prog_width;           /* characters drawn, to erase */
};

/* ---- problems (problem.c) ------------------------------------------- */

/* What a problem message is about.  Fields a message does not use are
 * ignored; see the expansion codes at the top of problem.c. */
struct problem_ctx {
	uint64_t ino, ino2;       /* %i %j (and %p %q: their paths) */
	uint64_t num, num2;       /* %n %N */
	uint64_t blk;             /* %b */
	int level;                /* %l */
	const char *str;          /* %s */
	const char *str2;         /* %S */
	const char *name;         /* %m: an entry name, shown quoted and escaped */
	size_t namelen;
	uint64_t file, file2;     /* %f %F: a store file's number ... */
	enum lsm_file_type ftype, ftype2; /* ... and kind */
	const void *key;          /* %K: an engine key, shown escaped */
	size_t klen;
};

/* Problem codes: 0xPPNNNN, PP the pass. */
#define PR_1_LIST_FAILED      0x010001
#define PR_1_CURRENT_MISSING  0x010002
#define PR_1_CURRENT_BAD      0x010003
#define PR_1_MANIFEST_BAD     0x010004
#define PR_1_NO_MANIFEST      0x010005
#define PR_1_SST_MISSING      0x010006
#define PR_1_SST_SIZE         0x010007
#define PR_1_WAL_BAD          0x010008
#define PR_1_WAL_FATAL        0x010009
#define PR_1_WAL_CUT          0x01000a
#define PR_1_SUPER_MISSING    0x01000b
#define PR_1_SUPER_BAD        0x01000c
#define PR_1_SUPER_VERSION    0x01000d
#define PR_1_SUPER_UNREADABLE 0x01000e
#define PR_1_NOT_LSMFS        0x01000f
#define PR_1_WAL_TAIL         0x010010
#define PR_1_FILE_UNREADABLE  0x010011
#define PR_1_WAL_VLOG_BAD     0x010012
#define PR_1_WAL_MISSING      0x010013

#define PR_2_SST_BAD          0x020001
#define PR_2_SST_RANGE        0x020002
#define PR_2_LEVEL_ORDER      0x020003
#define PR_2_SST_ORPHAN       0x020004

#define PR_3_SCAN_FAILED      0x030001
#define PR_3_ENTRY_TYPE       0x030002
#define PR_3_VPTR_MALFORMED   0x030003
#define PR_3_VPTR_BAD         0x030004
#define PR_3_VLOG_DAMAGE      0x030005
#define PR_3_VLOG_DAMAGE_DEAD 0x030006
#define PR_3_VLOG_ORPHAN      0x030007
#define PR_3_NO_DELETE        0x030008
#define PR_3_DELETE_FAILED    0x030009

#define PR_4_ROOT_MISSING     0x040001
#define PR_4_ROOT_NOT_DIR     0x040002
#define PR_4_INODE_BAD        0x040003
#define PR_4_KEY_BAD          0x040004
#define PR_4_KEY_UNKNOWN      0x040005
#define PR_4_DIRENT_BAD       0x040006
#define PR_4_DIRENT_NAME      0x040007
#define PR_4_DIRENT_DANGLING  0x040008
#define PR_4_DIRENT_NOT_DIR   0x040009
#define PR_4_DIRENT_TYPE      0x04000a
#define PR_4_DIRENT_ROOT      0x04000b
#define PR_4_DIR_MULTI        0x04000c
#define PR_4_UNATTACHED_DIR   0x04000d
#define PR_4_DIR_LOOP         0x04000e
#define PR_4_UNATTACHED       0x04000f
#define PR_4_UNATTACHED_EMPTY 0x040010
#define PR_4_LPF_MISSING      0x040011
#define PR_4_LPF_NOT_DIR      0x040012
#define PR_4_DIR_PARENT       0x040013
#define PR_4_NO_LPF           0x040014

#define PR_5_NLINK            0x050001
#define PR_5_DIR_NLINK        0x050002
#define PR_5_DIR_SIZE         0x050003
#define PR_5_NBLOCKS          0x050004
#define PR_5_SIZE             0x050005
#define PR_5_INLINE_SIZE      0x050006
#define PR_5_INLINE_BLOCKS    0x050007
#define PR_5_BLOCK_BIG        0x050008
#define PR_5_BLOCK_NOT_FILE   0x050009
#define PR_5_BLOCKS_NO_INODE  0x05000a
#define PR_5_XATTRS_NO_INODE  0x05000b
#define PR_5_XATTR_FLAG       0x05000c
#define PR_5_ORPHAN           0x05000d
#define PR_5_ORPHAN_LINKED    0x05000e
#define PR_5_ORPHAN_NO_INODE  0x05000f
#define PR_5_INO_LIMIT        0x050010
#define PR_5_INODE_COUNT      0x050011
#define PR_5_SYMLINK_SIZE     0x050012
#define PR_5_SYMLINK_EMPTY    0x050013
#define PR_5_STRAY_INLINE     0x050014
#define PR_5_INLINE_TOO_BIG   0x050015
#define PR_5_BLOCK_PAST_EOF   0x050016

/* Reports problem code and asks whether to fix it, as the mode says:
 * returns true when the caller should make the fix.  Counts the problem as
 * found, and as left unless the caller later calls fsck_fixed().  With -p a
 * problem that is not safe to fix stops the check (ctx->preen_halt, and the
 * caller sees false).  Informational problems count as nothing. */
bool fix_problem(struct fsck_ctx *ctx, int code, const struct problem_ctx *pctx);
/* The fix fix_problem asked for was made (or failed: r < 0, an operational
 * error with the engine's message). */
void fsck_fixed(struct fsck_ctx *ctx, int r);
/* An operational error (exit 8): prints what failed. */
void fsck_op_error(struct fsck_ctx *ctx, int r, const char *what);
/* Stops every deletion of store files for the rest of the run, and says why
 * once (the first reason wins). */
void fsck_forbid_delete(struct fsck_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* True once a signal asked to stop. */
bool fsck_cancelled(void);
void fsck_cancel_install(void);
/* The engine's last error message for r, fit for a problem's %s: without
 * the store directory, without the errno text, and with strip_file without
 * the file name either (when the problem names the file itself).  Returns
 * buf (n bytes). */
const char *fsck_why(const struct fsck_ctx *ctx, int r, bool strip_file, char *buf, size_t n);
/* Formats "000012.sst" etc. into buf (64 bytes). */
const char *fsck_file_name(char *buf, enum lsm_file_type type, uint64_t number);

/* ---- progress (progress.c) ------------------------------------------ */

void fsck_progress_start(struct fsck_ctx *ctx, uint64_t total);
void fsck_progress_add(struct fsck_ctx *ctx, uint64_t n);
void fsck_progress_end(struct fsck_ctx *ctx);
/* Erases the bar before a message is printed (the next update redraws it). */
void fsck_progress_clear(struct fsck_ctx *ctx);

/* ---- the read-only view (view.c) ------------------------------------ */

/* Opens the view's caches and the value log over ctx->ms.version; mem
 * (taken over, may be NULL) holds the replayed WALs, last_seq the last
 * sequence number. */
int fsck_view_open(struct fsck_ctx *ctx, lsm_memtable *mem, uint64_t last_seq);
/* Replaces the memtable (after pass 1's replay). */
void fsck_view_set_mem(struct fsck_ctx *ctx, lsm_memtable *mem, uint64_t last_seq);
void fsck_view_close(struct fsck_ctx *ctx);
/* An iterator over every internal entry (all versions), in internal-key
 * order: memtable and every table. */
int fsck_view_internal_iter(struct fsck_ctx *ctx, lsm_iiter **ret_iter);
/* The same as the user sees it: the newest version of each live key. */
int fsck_view_user_iter(struct fsck_ctx *ctx, lsm_iiter **ret_iter);
/* Reads the value a LSM_TYPE_VPTR entry names (malloc'd). */
int fsck_view_resolve(struct fsck_ctx *ctx, lsm_slice ptrbytes, void **ret_val, size_t *ret_len);
/* The view's value log (NULL once the view is closed). */
vlog *fsck_view_vlog(struct fsck_ctx *ctx);
/* Checks a WAL record's value pointers as the engine's replay does:
 * returns 1 (all intact: replay it), 0 (a value was lost in a crash: the
 * engine stops replaying here), 2 (a complete value record is damaged: the
 * engine refuses unless skipping damage; *ret_segment and *ret_offset name it),
 * or <0 (malformed, I/O). */
int fsck_view_check_record(struct fsck_ctx *ctx, lsm_slice rec, uint64_t *ret_segment,
                           uint64_t *ret_offset);

/* ---- reading and repairing the store (kv.c) ------------------------- */

/* Point lookup in the store as it is now.  Returns 0 with a malloc'd value,
 * -ENOENT, or an engine error. */
int fsck_kv_get(struct fsck_ctx *ctx, const void *key, size_t klen, void **ret_val, size_t *ret_len);
/* Iterators over the user-visible keys, as lsm_iter. */
int fsck_kv_iter_new(struct fsck_ctx *ctx, struct fsck_kv_iter **ret_it);
void fsck_kv_iter_free(struct fsck_kv_iter *it);
void fsck_kv_seek(struct fsck_kv_iter *it, const void *key, size_t klen);
bool fsck_kv_valid(struct fsck_kv_iter *it);
void fsck_kv_next(struct fsck_kv_iter *it);
const void *fsck_kv_key(struct fsck_kv_iter *it, size_t *ret_len);
/* The value, borrowed until the next move (value-log values are read). */
int fsck_kv_value(struct fsck_kv_iter *it, const void **ret_val, size_t *ret_len);
/* Only the value's length: for value-log values the length pass 3 verified,
 * without reading the value again. */
int fsck_kv_value_len(struct fsck_kv_iter *it, size_t *ret_len);
int fsck_kv_status(struct fsck_kv_iter *it);
/* Writes one repair batch (opening the store read-write first if needed,
 * which closes the view).  REQUIRES: no kv iterator alive. */
int fsck_kv_write(struct fsck_ctx *ctx, lsm_batch *b);
/* Opens the store read-write now (for repairs the engine makes at open,
 * such as dropping damaged WAL records). */
int fsck_kv_open_rw(struct fsck_ctx *ctx);
/* Closes whichever is open, syncing repairs.  Returns the close's error. */
int fsck_kv_close(struct fsck_ctx *ctx);

/* ---- the namespace model (ns.c) -------------------------------------- */

/* One inode as pass 4 found it, and what the check counted for it. */
struct ns_inode {
	uint64_t ino;
	uint64_t size;            /* stored */
	uint64_t nblocks;         /* stored */
	uint64_t parent;          /* stored ('..' of directories) */
	uint64_t dparent;         /* the directory whose entry names it (first / chosen) */
	uint64_t entries;         /* counted: entries in this directory */
	uint64_t blocks;          /* counted: block keys */
	uint64_t data_end;        /* counted: end of the last stored byte */
	uint32_t mode;            /* stored */
	uint32_t nlink;           /* stored */
	uint32_t flags;           /* stored FS_INODE_* */
	uint32_t ilen;            /* stored inline bytes */
	uint32_t links;           /* counted: valid entries naming it */
	uint32_t subdirs;         /* counted: subdirectory entries in it */
	uint32_t past_eof;        /* counted: empty block keys at or past the end */
	uint64_t big_idx;
	uint32_t name_off;        /* its name (from dparent's entry) in ns->names; 0: none */
	uint16_t name_len;
	uint8_t state;            /* NS_* */
	uint8_t conn;             /* reachability: NS_CONN_* */
	uint8_t has_orphan;       /* an 'O' key exists */
	uint8_t has_xattrs;       /* 'X' keys exist */
	uint8_t big_block;        /* a block value over the block size (the first: big_idx) */
	uint8_t declined;         /* a reconnect was declined: leave its counts */
};
#define NS_OK       0
#define NS_BAD      1         /* damaged record: treated as absent */
#define NS_GONE     2         /* cleared by a repair */

#define NS_CONN_UNKNOWN   0
#define NS_CONN_VISITING  1
#define NS_CONN_REACHABLE 2
#define NS_CONN_CUT       3   /* not reachable from the root */

/* Keys of an inode that does not exist. */
struct ns_stray {
	uint64_t ino;
	uint64_t blocks, xattrs;
	bool orphan;
};

struct fsck_ns {
	struct ns_inode *v;       /* sorted by ino */
	size_t n, cap;
	char *names;              /* entry names, back to back (offset 0 unused) */
	size_t names_len, names_cap;
	uint64_t max_ino;         /* the largest inode number in use */
	struct ns_stray *stray;
	size_t nstray, cap_stray;
	uint64_t lpf;             /* /lost+found's inode, 0 if none yet */
	bool lpf_checked;
	bool lpf_unusable;
};

int fsck_ns_new(struct fsck_ctx *ctx);
void fsck_ns_free(struct fsck_ctx *ctx);
/* Adds an inode (in increasing ino order, or anywhere for a new one). */
int fsck_ns_add(struct fsck_ns *ns, uint64_t ino, struct ns_inode **ret);
struct ns_inode *fsck_ns_find(struct fsck_ns *ns, uint64_t ino);
/* Records name as ip's name (in directory dparent). */
int fsck_ns_set_name(struct fsck_ns *ns, struct ns_inode *ip, uint64_t dparent, const char *name,
                     size_t len);
/* The path of ino as far as it is known ("/a/b", "/lost+found/#12",
 * "???/x" when cut off), into buf of size n. */
const char *fsck_ns_path(struct fsck_ctx *ctx, uint64_t ino, char *buf, size_t n);

/* "regular file", "directory" ... for a mode's type. */
const char *fsck_type_name(uint32_t mode);

/* ---- reachability and /lost+found (conn.c) --------------------------- */

/* Every directory reachable from the root (loops broken), every inode in
 * a directory (else reconnected under /lost+found or, empty, cleared), and
 * every directory's '..' its parent. */
void fsck_connect(struct fsck_ctx *ctx);
/* The root directory exists and is a directory, else (if allowed) is made
 * anew as an empty one.  Returns 0, or <0 when there is no root. */
int fsck_check_root(struct fsck_ctx *ctx);

/* ---- repairs on inodes (repair.c) ------------------------------------ */

/* Reads ino's record as it is now. */
int fsck_inode_load(struct fsck_ctx *ctx, uint64_t ino, struct fs_inode_rec *ret_rec,
                    uint8_t **ret_idata, size_t *ret_ilen);
/* Adds ino's record (with idata) to b. */
int fsck_inode_put(lsm_batch *b, uint64_t ino, const struct fs_inode_rec *rec,
                   const uint8_t *idata, size_t ilen);
/* Rewrites one field set of ino's record in one batch: fn changes rec (and
 * may replace the inline bytes through *idata and *ilen, malloc'd). */
typedef void (*fsck_rec_fn)(struct fs_inode_rec *rec, uint8_t **idata, size_t *ilen, void *arg);
int fsck_inode_update(struct fsck_ctx *ctx, uint64_t ino, fsck_rec_fn fn, void *arg);
/* Deletes every key of the tag's prefix of ino (blocks, xattrs), in batches; with
 * also_inode, the record and the orphan key go in the last batch. */
int fsck_delete_prefix(struct fsck_ctx *ctx, char tag, uint64_t ino, bool also_inode);
/* Deletes one key. */
int fsck_delete_key(struct fsck_ctx *ctx, const void *key, size_t klen);
/* Writes the superblock ctx->sb. */
int fsck_super_write(struct fsck_ctx *ctx);
/* Writes a new superblock (pass 1 found none or a damaged one): format
 * defaults, the block size pass 1 could read, the next inode number above
 * every inode in use, not clean.  Reports the repair's outcome. */
void fsck_super_rebuild(struct fsck_ctx *ctx);
/* A new inode number: above every one in use and the superblock's limit;
 * the caller writes ctx->sb with the limit raised in the same batch. */
uint64_t fsck_new_ino(struct fsck_ctx *ctx);

/* ---- the passes ------------------------------------------------------- */

typedef int (*fsck_pass_fn)(struct fsck_ctx *ctx);
int fsck_pass1(struct fsck_ctx *ctx);
int fsck_pass2(struct fsck_ctx *ctx);
int fsck_pass3(struct fsck_ctx *ctx);
int fsck_pass4(struct fsck_ctx *ctx);
int fsck_pass5(struct fsck_ctx *ctx);

#endif
