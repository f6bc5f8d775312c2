/*
 * fs_int.h - the core's internal types, shared by inode.c, dir.c, rename.c,
 * file.c, xattr.c and super.c: the struct fs handle, the cached inode, the
 * striped inode locks, and the per-operation transaction that gathers one
 * operation's changes into the single engine batch it commits.
 *
 * Locking, outermost first:
 *   fs->rename_mu      directory renames across parents (the ancestor walk
 *                      must not race another such rename), as Linux's
 *                      s_vfs_rename_mutex;
 *   stripe locks       rwlocks fs->stripes[ino_stripe(ino)]; an inode's
 *                      record (struct inode's rec, idata) is read under its
 *                      stripe shared and changed under it exclusive.  Several
 *                      are taken in increasing stripe order (struct lockset);
 *   cache shard mutex  fs->shards[].mu: the hash chains, LRU, and the counts
 *                      nlookup, nopen and pins of the shard's inodes;
 *   fs->alloc_mu       the inode number allocator and superblock writes;
 *   fs->handles_mu     the lists of open handles.
 */
#ifndef LSMFS_FS_INT_H
#define LSMFS_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "errmsg.h"
#include "fs.h"
#include "keys.h"

#define FS_STRIPES     1024u   /* inode lock stripes */
#define FS_SHARDS      64u     /* inode cache shards */
#define FS_LINK_MAX    65000u  /* hard links to a non-directory */
#define FS_DIR_LINK_MAX 0xfffffff0u
#define FS_INO_CHUNK   1024u   /* inode numbers reserved per superblock write */
#define FS_RECLAIM_BATCH 4096u /* block deletions per batch when reclaiming */
#define FS_COPY_MAX    (1u << 20) /* bytes per fs_copy_file_range call */

/* A cached inode.  rec/idata/ilen/orphan are guarded by the inode's stripe
 * lock; the counts and list links by its shard's mu; deleted is written
 * under both (fs_inode_mark_deleted) and so may be read under either. */
struct inode {
	uint64_t ino;
	struct fs_inode_rec rec;
	uint8_t *idata;            /* inline file data or symlink target, malloc'd; NULL if none */
	size_t ilen;
	bool orphan;               /* an 'O' key exists for it */
	bool deleted;              /* its keys are gone: a zombie kept for the kernel's lookups */
	uint64_t nlookup;          /* lookups the kernel holds */
	uint32_t nopen;            /* open handles */
	uint32_t pins;             /* operations using it right now */
	struct inode *hnext;       /* hash chain */
	struct inode *lru_prev, *lru_next; /* on the shard's LRU while all counts are 0 */
};

struct cache_shard {
	pthread_mutex_t mu;
	struct inode **buckets;
	size_t nbuckets, count;
	struct inode lru;          /* sentinel; lru.lru_next is the oldest */
	size_t lru_count;
};

struct fs {
	lsm_db *db;
	lsm_env *env;
	char *dir;                 /* store directory, for statfs */
	bool read_only;
	int atime;                 /* FS_ATIME_* */
	lsm_write_options wo;      /* sync per the sync_writes option */
	size_t lru_max_per_shard;

	pthread_mutex_t alloc_mu;
	struct fs_super sb;        /* alloc_mu (block_size/inline_max never change) */
	uint64_t next_ino;         /* alloc_mu; next number to hand out, < sb.ino_limit */
	int64_t inode_count;       /* atomic: inodes in use, for statfs */

	pthread_mutex_t rename_mu;
	pthread_rwlock_t stripes[FS_STRIPES];
	struct cache_shard shards[FS_SHARDS];

	pthread_mutex_t handles_mu;
	struct fs_file *files;     /* open file handles (list) */
	struct fs_dir *dirs;       /* open directory handles (list) */
};

struct fs_file {
	struct inode *ip;          /* pinned by nopen */
	int flags;                 /* open(2) flags */
	atomic_bool setid_cleared; /* a write through it cleared S_ISUID/S_ISGID */
	struct fs_file *prev_h, *next_h; /* fs->handles_mu */
};

/* The names taken by one readdir call, cookies first .. first + n - 1. */
struct dir_batch {
	off_t first;
	int n, cap;
	char **names;
};

struct fs_dir {
	uint64_t ino;
	pthread_mutex_t mu;        /* the cursor below */
	off_t next_cookie;         /* cookies 1 and 2 are "." and ".." */
	struct dir_batch cur, prev; /* the last two calls' entries, to resume after */
	struct fs_dir *prev_h, *next_h; /* fs->handles_mu */
};

/* ---- locks (inode.c) --------------------------------------------------- */

static inline unsigned ino_stripe(uint64_t ino)
{
	return (unsigned)((ino * 0x9E3779B97F4A7C15ull) >> 54) % FS_STRIPES;
}

/* A set of stripe locks held together, taken in increasing order. */
struct lockset {
	unsigned n;
	bool excl;
	bool held;
	unsigned idx[8];
};

void fs_lockset_init(struct lockset *ls, bool excl);
/* Adds ino's stripe to the set.  REQUIRES: the set is not held. */
void fs_lockset_add(struct lockset *ls, uint64_t ino);
void fs_lockset_lock(struct fs *fs, struct lockset *ls);
void fs_lockset_unlock(struct fs *fs, struct lockset *ls);
/* With the set held: adds ino's stripe if it can be taken without waiting
 * (or is already held).  false means: unlock, add, lock again, retry. */
bool fs_lockset_try_add(struct fs *fs, struct lockset *ls, uint64_t ino);

/* ---- the inode cache (inode.c) ----------------------------------------- */

int fs_inode_cache_init(struct fs *fs, size_t max);
void fs_inode_cache_done(struct fs *fs);

/* Finds ino in the cache or loads it from the engine, and pins it.
 * REQUIRES: ino's stripe lock held (shared or exclusive).  -ENOENT if it
 * does not exist or was deleted. */
int fs_inode_get(struct fs *fs, uint64_t ino, struct inode **ret_ip);
/* As fs_inode_get but also returns zombies (deleted, kept for lookups). */
int fs_inode_get_any(struct fs *fs, uint64_t ino, struct inode **ret_ip);
/* Unpins.  Accepts NULL. */
void fs_inode_put(struct fs *fs, struct inode *ip);
/* Makes a pinned cache entry for a new inode (its keys not yet written).
 * Takes ownership of idata. */
int fs_inode_new(struct fs *fs, uint64_t ino, const struct fs_inode_rec *rec,
                 uint8_t *idata, size_t ilen, struct inode **ret_ip);
/* Marks ip deleted (its keys are gone) and frees its inline bytes.
 * REQUIRES: its stripe exclusive. */
void fs_inode_mark_deleted(struct fs *fs, struct inode *ip);
/* Drops a new entry whose creation failed.  REQUIRES: pinned once, no counts. */
void fs_inode_discard(struct fs *fs, struct inode *ip);
/* Count changes under the shard lock. */
void fs_inode_add_lookup(struct fs *fs, struct inode *ip, uint64_t n);
void fs_inode_add_open(struct fs *fs, struct inode *ip);
/* Returns the open count left. */
uint32_t fs_inode_drop_open(struct fs *fs, struct inode *ip);
uint32_t fs_inode_open_count(struct fs *fs, struct inode *ip);
/* Cached inodes with an orphan key and no open handle (fs_close reclaims
 * them); pinned, malloc'd array. */
int fs_inode_collect_orphans(struct fs *fs, struct inode ***ret_v, size_t *ret_n);

/* Allocates a new inode number (reserving a chunk in the superblock when
 * needed).  -ENOSPC when numbers run out. */
int fs_ino_alloc(struct fs *fs, uint64_t *ret_ino);
/* Writes the superblock (under alloc_mu). */
int fs_super_write_locked(struct fs *fs, bool sync);

/* Fills st from a cached inode. */
void fs_inode_stat(const struct fs *fs, const struct inode *ip, struct stat *st);
void fs_inode_entry(const struct fs *fs, const struct inode *ip, struct fs_entry *e);

/* Removes every key of a dead inode (nlink 0, no handle): blocks in
 * batches, then the record, xattrs and orphan key in a last batch, and marks
 * it deleted.  REQUIRES: its stripe exclusive. */
int fs_inode_reclaim(struct fs *fs, struct inode *ip);
/* The same for an inode known only by number (mount-time orphan recovery). */
int fs_reclaim_ino(struct fs *fs, uint64_t ino);

/* ---- permissions (attr.c) -------------------------------------------- */

#define FS_MAY_EXEC  1
#define FS_MAY_WRITE 2
#define FS_MAY_READ  4

bool fs_cred_is_root(const struct fs_cred *cred);
bool fs_cred_in_group(const struct fs_cred *cred, gid_t gid);
/* 0 or -EACCES.  cred NULL passes. */
int fs_perm(const struct fs_cred *cred, const struct fs_inode_rec *rec, int mask);
/* Sticky-directory rule for removing/replacing child from dir: 0 or -EPERM. */
int fs_sticky_ok(const struct fs_cred *cred, const struct fs_inode_rec *dir,
                 const struct fs_inode_rec *child);
/* Clears S_ISUID/S_ISGID as a write by cred does (Linux should_remove_suid). */
void fs_kill_suid(const struct fs_cred *cred, struct fs_inode_rec *rec);
/* Should a read now update rec's atime (the atime mount option)? */
bool fs_atime_due(const struct fs *fs, const struct fs_inode_rec *rec);
/* Updates ino's atime if due, in a batch of its own; errors are dropped (a
 * read does not fail for its atime).  REQUIRES: no stripe lock held. */
void fs_touch_atime(struct fs *fs, uint64_t ino);
/* 0 or -ENAMETOOLONG / -EINVAL (empty, contains '/'). */
int fs_check_name(const char *name, size_t *ret_len);

/* ---- transactions (txn.c) ------------------------------------------- */

/* One operation's changes: key puts/deletes in a batch plus the new inode
 * records, encoded into the batch and copied into the cache only when the
 * batch has been written. */
#define TXN_MAX_INODES 6

struct txn_inode {
	struct inode *ip;
	struct fs_inode_rec rec;   /* the new record */
	uint8_t *idata;            /* new inline bytes if set_idata, owned by the txn */
	size_t ilen;
	bool set_idata;
	bool del;                  /* delete its record and mark it deleted */
	bool set_orphan;           /* put an 'O' key */
	bool created;              /* a new inode: counts one more in use */
};

struct txn {
	struct fs *fs;
	lsm_batch *b;
	struct timespec now;
	int n;
	struct txn_inode u[TXN_MAX_INODES];
};

int fs_txn_begin(struct fs *fs, struct txn *t);
/* The pending record for ip (copied from the cache the first time). */
struct fs_inode_rec *fs_txn_rec(struct txn *t, struct inode *ip);
struct txn_inode *fs_txn_slot(struct txn *t, struct inode *ip);
/* Replaces ip's inline bytes (takes ownership of data). */
void fs_txn_set_idata(struct txn *t, struct inode *ip, uint8_t *data, size_t len);
int fs_txn_put(struct txn *t, const void *k, size_t kl, const void *v, size_t vl);
int fs_txn_del(struct txn *t, const void *k, size_t kl);

/* Removes ip's security.capability in t, as Linux does whoever writes,
 * truncates or chowns a file: a capability granted to a program must not
 * outlive its contents or owner.  Nothing to look up for an inode without
 * xattrs.  REQUIRES: ip's stripe exclusive. */
int fs_kill_caps(struct txn *t, struct inode *ip);
/* Encodes the records, writes the batch, and on success updates the cache.
 * Ends the transaction either way. */
int fs_txn_commit(struct txn *t);
/* Ends a transaction without writing. */
void fs_txn_abort(struct txn *t);

/* Deletes ip's xattr keys into the txn (prefix scan). */
int fs_txn_del_xattrs(struct txn *t, uint64_t ino);

/* Time now (CLOCK_REALTIME). */
struct timespec fs_now(void);

/* Errors for a changing op on a read-only mount. */
static inline int fs_check_rw(const struct fs *fs)
{
	return fs->read_only ? -EROFS : 0;
}

/* ---- from file.c ------------------------------------------------------- */

/* Reads block idx of ino into buf (block_size bytes, zero-filled past the
 * stored ones); *ret_present says whether the key exists. */
int fs_block_read(struct fs *fs, uint64_t ino, uint64_t idx, uint8_t *buf, bool *ret_present);
/* Puts block idx with data's first len bytes, trailing zeros trimmed. */
int fs_block_put(struct txn *t, uint64_t ino, uint64_t idx, const uint8_t *data, size_t len);
/* The inline bytes ip will have once t commits. */
const uint8_t *fs_txn_idata(struct txn *t, struct inode *ip, size_t *ret_len);
/* Sets ip's inline bytes (and size) to the first newlen of them,
 * zero-extended; *ret_buf (may be NULL) is the new buffer. */
int fs_inline_resize(struct txn *t, struct inode *ip, size_t newlen, uint8_t **ret_buf);
/* Frees every file handle still open (unmount). */
void fs_file_free_all(struct fs *fs);
/* Fills a handle allocated by the caller and counts it open on ip. */
void fs_file_handle_attach(struct fs *fs, struct fs_file *fh, struct inode *ip, int flags);

/* Sets ip's size within t: trims or deletes blocks past the new end, turns
 * an emptied file inline, converts inline data to a block when growing past
 * inline_max.  REQUIRES: stripe exclusive, regular file. */
int fs_file_truncate(struct txn *t, struct inode *ip, uint64_t size);
/* Adds to b the deletion of up to max block keys of ino with index in
 * [from, to) (a prefix scan).  Returns 0 with the count in *ret_deleted and
 * the index after the last one deleted in *ret_next (from if none). */
int fs_file_delete_blocks(struct fs *fs, lsm_batch *b, uint64_t ino, uint64_t from, uint64_t to,
                          uint64_t max, uint64_t *ret_deleted, uint64_t *ret_next);

/* ---- from readdir.c ---------------------------------------------------- */

/* Frees every directory handle still open (unmount). */
void fs_dir_free_all(struct fs *fs);

/* ---- from dir.c -------------------------------------------------------- */

/* Reads the dirent parent/name.  -ENOENT if absent. */
int fs_dirent_get(struct fs *fs, uint64_t parent, const char *name, size_t namelen,
                  uint64_t *ret_ino, uint8_t *ret_dtype);
/* Drops one link of child (removed from a directory) within t: the record
 * goes, or becomes an orphan while open, or just loses a link.  Directories
 * go entirely.  Updates ctime. */
int fs_drop_link(struct txn *t, struct inode *child);
/* After a committed drop_link: reclaims a large file's blocks outside the
 * batch, if drop_link left it as an unopened orphan. */
void fs_finish_drop(struct fs *fs, struct inode *child);
/* Touches a directory's mtime/ctime within t; delta_entries and delta_nlink
 * adjust its entry count and link count. */
void fs_dir_changed(struct txn *t, struct inode *dir, int delta_entries, int delta_nlink);

#endif
