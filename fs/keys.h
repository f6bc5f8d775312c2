/*
 * keys.h - the filesystem's key schema and record encodings: the only code
 * that knows how superblock, inode, dirent, block, xattr and orphan keys and
 * values are laid out (keys.c; grammar in docs/FORMAT.md §9).  The core, mkfs
 * and fsck all build and parse keys through here.
 *
 * Keys (integers big-endian so byte order is numeric order; every key of one
 * inode shares a prefix, so its blocks or xattrs are one prefix scan):
 *   'S'                          superblock
 *   'I' ino                      inode record (inline data / symlink target)
 *   'D' parent name              dirent: child ino and type
 *   'B' ino index                one data block (trailing zeros trimmed)
 *   'X' ino name                 one extended attribute's value
 *   'O' ino                      orphan: unlinked while open, not reclaimed yet
 */
#ifndef LSMFS_KEYS_H
#define LSMFS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FS_KEY_SUPER  'S'
#define FS_KEY_INODE  'I'
#define FS_KEY_DIRENT 'D'
#define FS_KEY_BLOCK  'B'
#define FS_KEY_XATTR  'X'
#define FS_KEY_ORPHAN 'O'

#define FS_KEY_INO_LEN   9u                    /* tag + be64 */
#define FS_KEY_BLOCK_LEN 17u                   /* tag + be64 ino + be64 index */
#define FS_KEY_NAME_MAX  (FS_KEY_INO_LEN + 256u) /* tag + be64 + name up to 255 bytes */

/* ---- keys ---------------------------------------------------------- */

/* Each writes the key into buf (room for FS_KEY_NAME_MAX bytes, or the
 * fixed length) and returns its length. */
size_t fs_key_super(uint8_t *buf);
size_t fs_key_inode(uint8_t *buf, uint64_t ino);
size_t fs_key_orphan(uint8_t *buf, uint64_t ino);
size_t fs_key_block(uint8_t *buf, uint64_t ino, uint64_t index);
/* REQUIRES: namelen <= 255. */
size_t fs_key_dirent(uint8_t *buf, uint64_t parent, const char *name, size_t namelen);
size_t fs_key_xattr(uint8_t *buf, uint64_t ino, const char *name, size_t namelen);
/* The prefix shared by every key of kind tag ('D', 'B', 'X') of ino. */
size_t fs_key_prefix(uint8_t *buf, char tag, uint64_t ino);

/* Parse a key of the given shape.  Return 0, or -EINVAL when key is not one. */
int fs_key_parse_ino(const void *key, size_t klen, char tag, uint64_t *ret_ino);
int fs_key_parse_block(const void *key, size_t klen, uint64_t *ret_ino, uint64_t *ret_index);
/* *ret_name points into key (not NUL-terminated). */
int fs_key_parse_named(const void *key, size_t klen, char tag, uint64_t *ret_ino,
                       const char **ret_name, size_t *ret_namelen);

/* ---- superblock ------------------------------------------------------ */

#define FS_SUPER_MAGIC     "LSMFS-SB"   /* 8 bytes at the start of the value */
#define FS_SUPER_LEN       64u

struct fs_super {
	uint32_t version;          /* FS_FORMAT_VERSION */
	uint32_t block_size;
	uint32_t inline_max;
	uint32_t flags;            /* FS_SUPER_CLEAN */
	uint64_t ino_limit;        /* inode numbers below this may have been handed out */
	uint64_t inode_count;      /* inodes in use; exact only when FS_SUPER_CLEAN */
	uint8_t uuid[16];
	int64_t created_ns;
};
#define FS_SUPER_CLEAN 0x1u        /* unmounted cleanly: inode_count is exact */

void fs_super_encode(const struct fs_super *sb, uint8_t out[FS_SUPER_LEN]);
/* Returns 0; -ENOTSUP if the magic is wrong, -EPROTONOSUPPORT for another
 * version (ret_sb->version is still set), -EUCLEAN if the value is too short
 * or its fields impossible. */
int fs_super_decode(const void *val, size_t len, struct fs_super *ret_sb);

/* ---- inode record -------------------------------------------------- */

#define FS_INODE_VERSION    1u
#define FS_INODE_HDR_LEN    100u       /* fixed part; inline bytes follow */

#define FS_INODE_INLINE     0x01u      /* regular file data lives in the record */
#define FS_INODE_XATTRS     0x02u      /* may have 'X' keys */

struct fs_inode_rec {
	uint32_t mode;             /* type and permission bits */
	uint32_t uid, gid;
	uint32_t nlink;            /* directories: 2 + subdirectories */
	uint32_t flags;            /* FS_INODE_* */
	uint64_t size;             /* bytes; directories: number of entries */
	uint64_t nblocks;          /* 'B' keys present (st_blocks comes from it) */
	uint64_t rdev;
	uint64_t generation;
	uint64_t parent;           /* directories: the parent's ino (root: itself); else 0 */
	struct timespec atime, mtime, ctime;
};

/* Encodes rec and the inline bytes (symlink target or small file data) into
 * out, which has room for FS_INODE_HDR_LEN + ilen bytes.  Returns the length. */
size_t fs_inode_encode(const struct fs_inode_rec *rec, const void *idata, size_t ilen, uint8_t *out);
/* Decodes; *ret_idata points into val.  -EUCLEAN for a short record or an
 * unknown record version. */
int fs_inode_decode(const void *val, size_t len, struct fs_inode_rec *ret_rec,
                    const uint8_t **ret_idata, size_t *ret_ilen);

/* ---- dirent value ---------------------------------------------------- */

#define FS_DIRENT_LEN 9u               /* be64 child ino + u8 DT_* type */

void fs_dirent_encode(uint64_t ino, uint8_t dtype, uint8_t out[FS_DIRENT_LEN]);
int fs_dirent_decode(const void *val, size_t len, uint64_t *ret_ino, uint8_t *ret_dtype);

/* DT_* from a mode's type bits. */
uint8_t fs_mode_to_dtype(uint32_t mode);

#endif
