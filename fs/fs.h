/*
 * fs.h - the FUSE-free filesystem core, libfscore.
 *
 * The core holds all of lsmfs's filesystem logic on top of liblsm: the key
 * schema (keys.h), an inode cache with lookup and open counts, directories,
 * file data in blocks, extended attributes, the superblock and mkfs.  It knows
 * nothing of FUSE: every operation is a plain function returning 0 (or a
 * count) or a negative errno, so mkfs.lsmfs, fsck.lsmfs, the FUSE adapter
 * (fs/ops.c) and the tests all link the same code.  The operations follow
 * libfuse's low-level API: inodes are named by number, lookups are counted
 * and forgotten, open files and directories are handles.
 *
 * Thread safety: a struct fs may be used from any number of threads at once.
 * Operations on different inodes never wait for each other (inodes are
 * guarded by a striped lock table); operations touching several inodes
 * (rename, link, unlink, create) lock them in a fixed order.  A struct
 * fs_file or struct fs_dir may be used by several threads at once except
 * fs_release/fs_releasedir, which must be the last call on it.
 *
 * Conventions:
 *   1. Errors: 0 or a count >= 0 on success, a negative errno on failure:
 *      -ENOENT, -EEXIST, -ENOTEMPTY, -ENOTDIR, -EISDIR, -ENAMETOOLONG (a name
 *      over FS_NAME_MAX bytes), -EINVAL (e.g. a rename into the source's own
 *      descendant), -EPERM/-EACCES (permissions), -EFBIG (past
 *      FS_MAX_FILE_SIZE), -ELOOP, -ERANGE (xattr buffer too small), -ENODATA
 *      (no such xattr), -ENXIO (SEEK_DATA/SEEK_HOLE past the end), -EROFS
 *      (read-only mount, or the engine stopped after a failed sync), -EBADF
 *      (handle not open for that), -EIO, -ENOSPC, -ENOMEM; -EBADMSG/-EUCLEAN
 *      when the store is corrupt (fs_last_error() names what and where; the
 *      adapter turns those two into EIO).
 *   2. Credentials: operations that check permissions take a const struct
 *      fs_cred *.  NULL means a trusted internal caller (mkfs, fsck, the
 *      adapter when the kernel already checked): no checks at all.  uid 0
 *      has root's overrides (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN,
 *      CAP_FSETID).
 *   3. Inode numbers are uint64_t and never reused; FS_ROOT_INO is the root.
 *      Every call that returns a struct fs_entry (lookup, mknod, mkdir,
 *      symlink, link, create, and each entry of readdirplus except "." and
 *      "..") counts one lookup of that inode, which the caller gives back
 *      with fs_forget (libfuse's nlookup rule).  An unlinked inode's data is
 *      reclaimed when no handle is open on it (at the last fs_release), or at
 *      the next mount after a crash.
 *   4. Durability: every operation is one atomic engine batch, written to
 *      the engine's log before the call returns (it survives kill -9).
 *      fs_fsync, fs_fsyncdir and fs_sync_all sync the log (it survives power
 *      loss).  With fs_mount_options.sync_writes every operation is synced.
 *   5. Attributes are reported as struct stat; st_ino is the inode number,
 *      st_blocks counts 512-byte units actually stored, st_blksize is the
 *      filesystem block size.
 *   6. Outputs are written only on success.  Strings passed in are
 *      NUL-terminated; names must not contain '/' and must not be "." or ".."
 *      where a new name is made (-EINVAL, -EEXIST as POSIX says).
 */
#ifndef LSMFS_FS_H
#define LSMFS_FS_H

#include <fcntl.h>          /* O_*, FALLOC_FL_* (with _GNU_SOURCE) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>          /* RENAME_NOREPLACE, RENAME_EXCHANGE (glibc, _GNU_SOURCE) */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/xattr.h>      /* XATTR_CREATE, XATTR_REPLACE */
#include <unistd.h>         /* SEEK_DATA, SEEK_HOLE, R_OK ... */

#include "lsm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FS_FORMAT_VERSION   1u          /* superblock format this code reads and writes */
#define FS_ROOT_INO         1u
#define FS_NAME_MAX         255         /* bytes in one name */
#define FS_SYMLINK_MAX      4095        /* bytes in a symlink target */
#define FS_XATTR_NAME_MAX   255
#define FS_XATTR_SIZE_MAX   65536       /* bytes in one xattr value, as Linux's XATTR_SIZE_MAX */
#define FS_MAX_FILE_SIZE    (1ull << 44) /* 16 TiB: writes or truncates past it give -EFBIG */
#define FS_BLOCK_SIZE_MIN   4096u
#define FS_BLOCK_SIZE_MAX   65536u
#define FS_BLOCK_SIZE_DEFAULT 4096u
#define FS_INLINE_MAX_DEFAULT 512u      /* file data kept in the inode record up to this size */
#define FS_INLINE_MAX_LIMIT 4096u       /* the most mkfs allows (and at most block_size / 2) */
#define FS_WAL_INLINE_DEFAULT (64u << 10) /* fs_mount_options.wal_inline_max */

struct fs;       /* a mounted filesystem; opaque */
struct fs_file;  /* an open file handle; opaque */
struct fs_dir;   /* an open directory handle with its readdir cursor; opaque */

/* Who is asking, for permission checks (the FUSE request's context). */
struct fs_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;              /* applied to the mode of new inodes */
	int ngroups;               /* entries in groups[] */
	const gid_t *groups;       /* supplementary groups; may be NULL with ngroups 0 */
};

/* One directory entry's result: what fuse_entry_param carries. */
struct fs_entry {
	uint64_t ino;
	uint64_t generation;       /* with ino, names the inode forever */
	struct stat attr;
};

/* Mount-time choices.  Fill with fs_mount_options_init, then change. */
struct fs_mount_options {
	lsm_env *env;              /* I/O environment.  Default: NULL, the POSIX env */
	int read_only;             /* refuse every change with -EROFS.  Default: 0 */
	int sync_writes;           /* sync the engine log after every change (mount -o sync).  Default: 0 */
	size_t cache_size;         /* engine block cache bytes.  Default: 0, the engine's default */
	size_t write_buffer_size;  /* engine memtable bytes.  Default: 0, the engine's default */
	size_t inode_cache_max;    /* inodes kept cached when the kernel holds no
	                              reference to them.  Default: 65536 */
	int create_store;          /* open only: create a missing store (mkfs uses fs_mkfs
	                              instead).  Default: 0 */
	int atime;                 /* when reads update atime: FS_ATIME_*.  Default:
	                              FS_ATIME_RELATIME */
	size_t wal_inline_max;     /* a change of at most this many bytes (a write of a few
	                              blocks) keeps its blocks in the engine's log, and they
	                              reach the value log when the engine flushes: one log
	                              append, and one sync for an fsync, per small write
	                              (lsm_options.wal_inline_max).  0: blocks go to the value
	                              log as written.  Default: FS_WAL_INLINE_DEFAULT */
};

#define FS_ATIME_RELATIME 0        /* as Linux's default: when atime <= mtime or ctime,
                                      or older than a day (one small batch) */
#define FS_ATIME_NOATIME  1        /* never */
#define FS_ATIME_STRICT   2        /* on every read (a batch per read) */

/* What fs_mkfs makes.  Fill with fs_mkfs_options_init, then change. */
struct fs_mkfs_options {
	lsm_env *env;              /* Default: NULL, the POSIX env */
	uint32_t block_size;       /* FS_BLOCK_SIZE_MIN..MAX, a power of two.  Default: 4096 */
	uint32_t inline_max;       /* file bytes kept inline, 0..min(block_size/2,
	                              FS_INLINE_MAX_LIMIT).  Default: 512 */
	uid_t root_uid;            /* owner of the root directory.  Default: getuid() */
	gid_t root_gid;            /* Default: getgid() */
	mode_t root_mode;          /* permission bits of the root.  Default: 0755 */
};

/* Superblock facts, for mkfs's summary, fsck and statfs. */
struct fs_info {
	uint32_t format_version;
	uint32_t block_size;
	uint32_t inline_max;
	uint8_t uuid[16];
	uint64_t next_ino;         /* inode numbers below this may have been used */
	int64_t created_ns;        /* creation time, ns since the epoch */
};

/* setattr's to_set bits.  The values equal libfuse's FUSE_SET_ATTR_* so the
 * adapter passes its mask through unchanged. */
#define FS_SET_ATTR_MODE      (1 << 0)
#define FS_SET_ATTR_UID       (1 << 1)
#define FS_SET_ATTR_GID       (1 << 2)
#define FS_SET_ATTR_SIZE      (1 << 3)
#define FS_SET_ATTR_ATIME     (1 << 4)   /* to attr->st_atim (tv_nsec may be UTIME_NOW/UTIME_OMIT) */
#define FS_SET_ATTR_MTIME     (1 << 5)   /* to attr->st_mtim (ditto) */
#define FS_SET_ATTR_ATIME_NOW (1 << 7)   /* atime to now */
#define FS_SET_ATTR_MTIME_NOW (1 << 8)   /* mtime to now */
#define FS_SET_ATTR_CTIME     (1 << 10)  /* ctime to attr->st_ctim */
/* Clear S_ISUID, S_ISGID with group execute, and security.capability,
 * whoever asks: the kernel's FATTR_KILL_SUIDGID (libfuse's
 * FUSE_SET_ATTR_KILL_SUID), which under FUSE_HANDLE_KILLPRIV_V2 comes with
 * a chown of a non-directory and a truncate by a caller without
 * CAP_FSETID.  (Writes carry their own flag, which libfuse 3.14 drops: the
 * core decides those by the caller, fs_write.)  Never sent together with
 * FS_SET_ATTR_MODE, whose explicit mode would otherwise be cut. */
#define FS_SET_ATTR_KILL_SUIDGID (1 << 11)

/* ---- the store ------------------------------------------------------- */

void fs_mount_options_init(struct fs_mount_options *opt);
void fs_mkfs_options_init(struct fs_mkfs_options *opt);

/* Makes an empty filesystem (superblock and root directory, synced) in the
 * store directory dir, creating the store (and dir) if missing.  opt may be
 * NULL for the defaults.  Returns 0, -EEXIST if the store already holds any
 * key (mkfs -f removes the old store first with lsm_destroy), -EINVAL for a
 * bad block size or inline_max, -EBUSY if the store is open elsewhere, or an
 * engine error. */
int fs_mkfs(const char *dir, const struct fs_mkfs_options *opt);

/* Opens (mounts) the filesystem in store directory dir.  opt may be NULL.
 * Reads and checks the superblock, then reclaims orphans (inodes unlinked
 * while open when the last mount ended without closing them) unless
 * read_only.  Returns 0 and *ret_fs, or -ENOENT (no store there),
 * -EBUSY (another process holds the store), -EPROTONOSUPPORT (a superblock of
 * another format version), -ENOTSUP (a store without an lsmfs superblock, or
 * an unknown engine format), -EBADMSG/-EUCLEAN (damaged superblock or
 * manifest: run fsck.lsmfs), -EIO, -ENOMEM.  fs_last_error() says which, in
 * words fit for the user. */
int fs_open_store(const char *dir, const struct fs_mount_options *opt, struct fs **ret_fs);

/* Unmounts: reclaims orphans no longer open, syncs, closes the engine and
 * frees fs, whatever handles remain (they are freed too).  Returns the
 * first error met (the store is still closed), or 0.  Accepts NULL. */
int fs_close(struct fs *fs);

/* Syncs the engine log: everything acknowledged so far survives power loss.
 * The adapter calls it on its commit timer (sync(2) never reaches FUSE). */
int fs_sync_all(struct fs *fs);

/* Superblock facts.  Never fails. */
void fs_get_info(const struct fs *fs, struct fs_info *ret_info);

/* The engine under fs, for fsck and tests that inspect keys.  Borrowed. */
lsm_db *fs_db(struct fs *fs);

/* The calling thread's text for the last error ("" if none). */
const char *fs_last_error(void);

/* ---- names and attributes ------------------------------------------- */

/* Finds name in directory parent (search permission needed).  Counts a
 * lookup.  -ENOENT, -ENOTDIR, -ENAMETOOLONG, -EACCES. */
int fs_lookup(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              struct fs_entry *ret_entry);

/* Gives back nlookup lookups of ino.  At zero the inode may leave the cache,
 * and an unlinked one with no open handle is reclaimed.  Never fails. */
void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup);

/* Attributes of ino.  -ENOENT. */
int fs_getattr(struct fs *fs, uint64_t ino, struct stat *ret_attr);

/* Changes the attributes selected by to_set (FS_SET_ATTR_*) to those in
 * attr, as chmod/chown/truncate/utimensat do, with their permission rules:
 * chmod by the owner (non-members lose S_ISGID), chown by root (or the owner
 * to a group it belongs to), both clearing S_ISUID/S_ISGID of non-directories
 * for non-root callers (chown: always for non-root, S_ISGID only with group
 * execute); times to explicit values by the owner, to now by whoever may
 * write.  Size changes need write permission; -EISDIR for a directory,
 * -EINVAL for other non-regular files, -EFBIG past FS_MAX_FILE_SIZE.  fh may
 * be NULL; with it (ftruncate) the write check is the handle's.  Updates
 * ctime.  On success *ret_attr holds the new attributes (ret_attr may be
 * NULL). */
int fs_setattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const struct stat *attr,
               int to_set, struct fs_file *fh, struct stat *ret_attr);

/* Access check as access(2): mask is F_OK or an OR of R_OK, W_OK, X_OK.
 * -EACCES, -ENOENT. */
int fs_access(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int mask);

/* ---- making and removing names --------------------------------------- */

/* Makes a regular file, FIFO, socket, or character or block device (mode's
 * type bits; 0 means regular) named name in parent.  Devices need root
 * (-EPERM).  The cred's umask applies.  A new inode gets the parent's group
 * when the parent has S_ISGID (and a directory inherits S_ISGID).  Updates
 * the parent's mtime and ctime.  -EEXIST, -ENOENT, -ENOTDIR, -EACCES,
 * -ENAMETOOLONG, -EINVAL (bad type). */
int fs_mknod(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
             mode_t mode, dev_t rdev, struct fs_entry *ret_entry);

/* Makes a directory (nlink 2; the parent's nlink grows by one).  Errors as
 * fs_mknod, plus -EMLINK when the parent has too many subdirectories. */
int fs_mkdir(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
             mode_t mode, struct fs_entry *ret_entry);

/* Makes a symlink named name in parent pointing to target (1..FS_SYMLINK_MAX
 * bytes, else -ENAMETOOLONG or -ENOENT for an empty target). */
int fs_symlink(struct fs *fs, const struct fs_cred *cred, const char *target, uint64_t parent,
               const char *name, struct fs_entry *ret_entry);

/* The target of symlink ino, as a malloc'd NUL-terminated string the caller
 * frees.  -EINVAL if ino is not a symlink. */
int fs_readlink(struct fs *fs, uint64_t ino, char **ret_target);

/* Removes the non-directory name from parent.  The sticky bit limits who may
 * (owner of the file or the directory, or root: else -EPERM).  When the last
 * link goes and a handle is open the inode lives on as an orphan until the
 * last fs_release.  -ENOENT, -EISDIR, -ENOTDIR, -EACCES. */
int fs_unlink(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name);

/* Removes the empty directory name from parent.  -ENOTEMPTY, -ENOTDIR,
 * -EBUSY for the root, -EINVAL for ".", -ENOTEMPTY for "..". */
int fs_rmdir(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name);

/* Renames parent/name to newparent/newname as rename(2) and renameat2(2):
 * flags 0, RENAME_NOREPLACE (-EEXIST if the target exists) or
 * RENAME_EXCHANGE (swap the two; -ENOENT if the target is missing).  A
 * replaced file loses a link; a replaced directory must be empty
 * (-ENOTEMPTY); a directory over a non-directory gives -ENOTDIR, the
 * reverse -EISDIR; moving a directory into its own subtree gives -EINVAL.
 * Renaming a name onto another link of the same inode does nothing. */
int fs_rename(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              uint64_t newparent, const char *newname, unsigned int flags);

/* Makes a hard link newparent/newname to ino (not a directory: -EPERM).
 * -EMLINK past 65000 links.  Updates ino's ctime. */
int fs_link(struct fs *fs, const struct fs_cred *cred, uint64_t ino, uint64_t newparent,
            const char *newname, struct fs_entry *ret_entry);

/* ---- open files -------------------------------------------------------- */

/* Creates and opens a regular file: fs_mknod then fs_open in one batch.
 * With O_EXCL in flags an existing name gives -EEXIST; without it an
 * existing file is opened (honouring O_TRUNC).  Returns the entry (a
 * counted lookup) and the handle. */
int fs_create(struct fs *fs, const struct fs_cred *cred, uint64_t parent, const char *name,
              mode_t mode, int flags, struct fs_entry *ret_entry, struct fs_file **ret_fh);

/* Opens ino with open(2) flags: the access mode is checked against the
 * permissions, O_TRUNC truncates (and clears S_ISUID/S_ISGID for non-root),
 * O_APPEND makes every fs_write go to the end of file.  -EISDIR for a
 * directory opened for writing, -EACCES.  The handle pins the inode. */
int fs_open(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int flags,
            struct fs_file **ret_fh);

/* The inode a handle is open on. */
uint64_t fs_file_ino(const struct fs_file *fh);

/* Whether a write or copy_file_range through fh cleared S_ISUID/S_ISGID
 * since the last call: the daemon then tells the kernel that its cached
 * mode is stale.  Resets the answer. */
bool fs_file_take_setid_cleared(struct fs_file *fh);

/* Reads up to size bytes at off into buf; holes read as zeros.  Updates
 * atime per the atime mount option.  Returns the count (short only at end
 * of file), or -EBADF if fh is write-only. */
ssize_t fs_read(struct fs *fs, struct fs_file *fh, void *buf, size_t size, off_t off);

/* Writes size bytes from buf at off (at the end of file for an O_APPEND
 * handle).  Clears S_ISUID (and S_ISGID with group execute) unless cred is
 * root (cred NULL: the kernel cleared them already), and removes the
 * security.capability xattr whoever writes, as truncation and chown also do
 * (the daemon asks the kernel to leave both to it).  Updates mtime and
 * ctime.  Returns size, or -EBADF (read-only handle), -EFBIG, -EINVAL (off
 * negative). */
ssize_t fs_write(struct fs *fs, const struct fs_cred *cred, struct fs_file *fh,
                 const void *buf, size_t size, off_t off);

/* close(2) of one descriptor.  Nothing to write back: returns 0. */
int fs_flush(struct fs *fs, struct fs_file *fh);

/* Last close of the handle: frees fh.  If ino was unlinked and this was its
 * last handle (and the kernel holds no lookup), its data is reclaimed.
 * Returns 0 or the error of the reclaim (fh is freed anyway; the orphan is
 * then reclaimed at the next mount). */
int fs_release(struct fs *fs, struct fs_file *fh);

/* Makes everything written so far survive power loss (the engine log is
 * one, so datasync changes nothing). */
int fs_fsync(struct fs *fs, uint64_t ino, int datasync);

/* fallocate(2): mode 0 extends the size to off+len if larger (holes read as
 * zeros; the engine allocates on write), FALLOC_FL_KEEP_SIZE alone does
 * nothing visible, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE turns the range
 * into a hole.  A change clears set-id bits as a write by cred does (cred
 * NULL: left alone) and removes security.capability.  Other modes:
 * -EOPNOTSUPP.  -EBADF if fh is not open for writing, -EFBIG, -EINVAL for a
 * negative off or non-positive len. */
int fs_fallocate(struct fs *fs, const struct fs_cred *cred, struct fs_file *fh, int mode, off_t off,
                 off_t len);

/* lseek(2) SEEK_DATA / SEEK_HOLE (others: -EINVAL): the next data or hole
 * at or after off.  The end of file counts as a hole.  Returns the offset,
 * or -ENXIO when off is at or past the end of file. */
off_t fs_lseek(struct fs *fs, struct fs_file *fh, off_t off, int whence);

/* Copies len bytes from fh_in at off_in to fh_out at off_out (which may be
 * the same file: overlapping ranges give -EINVAL) in one batch of up to
 * 1 MiB per call (callers loop, as copy_file_range(2) allows).  Returns the
 * bytes copied (0 at end of the input).  flags must be 0 (-EINVAL); -EBADF
 * unless fh_in is readable and fh_out writable. */
ssize_t fs_copy_file_range(struct fs *fs, const struct fs_cred *cred,
                           struct fs_file *fh_in, off_t off_in,
                           struct fs_file *fh_out, off_t off_out, size_t len, int flags);

/* ---- directories ------------------------------------------------------ */

/* Opens directory ino for listing (read permission).  -ENOTDIR. */
int fs_opendir(struct fs *fs, const struct fs_cred *cred, uint64_t ino, int flags,
               struct fs_dir **ret_dh);

/* Called once per entry by fs_readdir/fs_readdirplus.  e->attr holds at
 * least st_ino and st_mode's type bits (all attributes for readdirplus).
 * next_off is the cookie to pass as off to resume after this entry.
 * Return 0 to take the entry, 1 when it does not fit (it is not taken and
 * the listing stops), or a negative errno to stop with that error. */
typedef int (*fs_fill_fn)(void *arg, const char *name, const struct fs_entry *e, off_t next_off);

/* Lists the directory from cookie off (0: from the start, with "." and
 * "..", and the directory's atime is updated per the atime option), calling
 * fill per entry in name order until it says 1 or the directory ends.  The
 * cursor resumes by name after the entry the cookie names, so entries added
 * or removed during the listing never make it repeat or skip the others.
 * off must be 0, 1 (after "."), 2 (after "..") or a cookie handed out by
 * one of the last two calls on this handle that took entries (the kernel
 * resumes inside its last reply); another gives -EINVAL.  Returns the
 * number of entries taken (0 at the end).  An error met after some entries
 * were taken is returned by the next call. */
int fs_readdir(struct fs *fs, struct fs_dir *dh, off_t off, fs_fill_fn fill, void *arg);

/* As fs_readdir with full attributes; each entry taken, except "." and "..",
 * counts a lookup. */
int fs_readdirplus(struct fs *fs, struct fs_dir *dh, off_t off, fs_fill_fn fill, void *arg);

/* Frees dh.  Returns 0. */
int fs_releasedir(struct fs *fs, struct fs_dir *dh);

/* As fs_fsync, for a directory. */
int fs_fsyncdir(struct fs *fs, uint64_t ino, int datasync);

/* ---- the whole filesystem -------------------------------------------- */

/* statvfs figures: space and files of the filesystem holding the store,
 * file counts, block size, FS_NAME_MAX. */
int fs_statfs(struct fs *fs, struct statvfs *ret_stat);

/* ---- extended attributes --------------------------------------------- */

/* Sets xattr name on ino (flags 0, XATTR_CREATE: -EEXIST if present,
 * XATTR_REPLACE: -ENODATA if absent).  Namespaces "user." (regular files and
 * directories, write permission; else -EPERM), "trusted." (root),
 * "security."; "system." and unknown prefixes give -EOPNOTSUPP.  -ERANGE for
 * a name over FS_XATTR_NAME_MAX or empty, -E2BIG for a value over
 * FS_XATTR_SIZE_MAX.  Updates ctime. */
int fs_setxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name,
                const void *value, size_t size, int flags);

/* Reads xattr name as getxattr(2): size 0 returns the value's length, a
 * too small size gives -ERANGE, else the value is copied to buf and its
 * length returned.  -ENODATA if absent. */
ssize_t fs_getxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name,
                    void *buf, size_t size);

/* Lists names as listxattr(2): NUL-terminated names back to back; size 0
 * returns the length needed, a too small size gives -ERANGE.  Names the
 * caller may not read ("trusted." for non-root) are left out. */
ssize_t fs_listxattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, char *buf, size_t size);

/* Removes xattr name.  -ENODATA if absent.  Updates ctime. */
int fs_removexattr(struct fs *fs, const struct fs_cred *cred, uint64_t ino, const char *name);

#ifdef __cplusplus
}
#endif
#endif
