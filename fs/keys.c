/*
 * keys.c - builds and parses every key of the filesystem schema and encodes
 * the superblock, inode and dirent values (the layouts are in keys.h and
 * docs/FORMAT.md §9).  Integers inside keys are big-endian so that the
 * engine's bytewise order is numeric order; integers inside values are
 * little-endian like the engine's own formats.
 *
 * Superblock value (64 bytes):
 *   magic "LSMFS-SB" | version u32 | block_size u32 | inline_max u32 |
 *   flags u32 | ino_limit u64 | inode_count u64 | uuid[16] | created_ns i64
 * Inode value (100 bytes, then inline bytes):
 *   record_version u8 | 0 u8 | 0 u16 | mode u32 | uid u32 | gid u32 |
 *   nlink u32 | flags u32 | size u64 | nblocks u64 | rdev u64 |
 *   generation u64 | parent u64 | 3 x (sec i64 | nsec u32) for a/m/ctime |
 *   inline data (symlink target, or file data with FS_INODE_INLINE)
 * Dirent value (9 bytes): child ino be64 | DT_* type u8
 */
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "coding.h"
#include "fs.h"

static size_t key_ino(uint8_t *buf, char tag, uint64_t ino)
{
	buf[0] = (uint8_t)tag;
	put_be64(buf + 1, ino);
	return FS_KEY_INO_LEN;
}

size_t fs_key_super(uint8_t *buf)
{
	buf[0] = FS_KEY_SUPER;
	return 1;
}

size_t fs_key_inode(uint8_t *buf, uint64_t ino)
{
	return key_ino(buf, FS_KEY_INODE, ino);
}

size_t fs_key_orphan(uint8_t *buf, uint64_t ino)
{
	return key_ino(buf, FS_KEY_ORPHAN, ino);
}

size_t fs_key_prefix(uint8_t *buf, char tag, uint64_t ino)
{
	return key_ino(buf, tag, ino);
}

size_t fs_key_block(uint8_t *buf, uint64_t ino, uint64_t index)
{
	key_ino(buf, FS_KEY_BLOCK, ino);
	put_be64(buf + FS_KEY_INO_LEN, index);
	return FS_KEY_BLOCK_LEN;
}

static size_t key_named(uint8_t *buf, char tag, uint64_t ino, const char *name, size_t namelen)
{
	key_ino(buf, tag, ino);
	memcpy(buf + FS_KEY_INO_LEN, name, namelen);
	return FS_KEY_INO_LEN + namelen;
}

size_t fs_key_dirent(uint8_t *buf, uint64_t parent, const char *name, size_t namelen)
{
	return key_named(buf, FS_KEY_DIRENT, parent, name, namelen);
}

size_t fs_key_xattr(uint8_t *buf, uint64_t ino, const char *name, size_t namelen)
{
	return key_named(buf, FS_KEY_XATTR, ino, name, namelen);
}

int fs_key_parse_ino(const void *key, size_t klen, char tag, uint64_t *ret_ino)
{
	const uint8_t *k = key;

	if (klen != FS_KEY_INO_LEN || k[0] != (uint8_t)tag)
		return -EINVAL;
	*ret_ino = get_be64(k + 1);
	return 0;
}

int fs_key_parse_block(const void *key, size_t klen, uint64_t *ret_ino, uint64_t *ret_index)
{
	const uint8_t *k = key;

	if (klen != FS_KEY_BLOCK_LEN || k[0] != FS_KEY_BLOCK)
		return -EINVAL;
	*ret_ino = get_be64(k + 1);
	*ret_index = get_be64(k + FS_KEY_INO_LEN);
	return 0;
}

int fs_key_parse_named(const void *key, size_t klen, char tag, uint64_t *ret_ino,
                       const char **ret_name, size_t *ret_namelen)
{
	const uint8_t *k = key;

	if (klen <= FS_KEY_INO_LEN || klen > FS_KEY_INO_LEN + FS_NAME_MAX || k[0] != (uint8_t)tag)
		return -EINVAL;
	*ret_ino = get_be64(k + 1);
	*ret_name = (const char *)k + FS_KEY_INO_LEN;
	*ret_namelen = klen - FS_KEY_INO_LEN;
	return 0;
}

void fs_super_encode(const struct fs_super *sb, uint8_t out[FS_SUPER_LEN])
{
	uint8_t *p = out;

	memcpy(p, FS_SUPER_MAGIC, 8);
	p += 8;
	p = put_fixed32(p, sb->version);
	p = put_fixed32(p, sb->block_size);
	p = put_fixed32(p, sb->inline_max);
	p = put_fixed32(p, sb->flags);
	p = put_fixed64(p, sb->ino_limit);
	p = put_fixed64(p, sb->inode_count);
	memcpy(p, sb->uuid, 16);
	p += 16;
	put_fixed64(p, (uint64_t)sb->created_ns);
}

static bool power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

int fs_super_decode(const void *val, size_t len, struct fs_super *ret_sb)
{
	const uint8_t *p = val;
	struct fs_super sb;

	if (len < 12 || memcmp(p, FS_SUPER_MAGIC, 8) != 0)
		return -ENOTSUP;
	sb.version = get_fixed32(p + 8);
	if (sb.version != FS_FORMAT_VERSION) {
		memset(ret_sb, 0, sizeof(*ret_sb));
		ret_sb->version = sb.version;
		return -EPROTONOSUPPORT;
	}
	if (len < FS_SUPER_LEN)
		return -EUCLEAN;
	sb.block_size = get_fixed32(p + 12);
	sb.inline_max = get_fixed32(p + 16);
	sb.flags = get_fixed32(p + 20);
	sb.ino_limit = get_fixed64(p + 24);
	sb.inode_count = get_fixed64(p + 32);
	memcpy(sb.uuid, p + 40, 16);
	sb.created_ns = (int64_t)get_fixed64(p + 56);
	if (!power_of_two(sb.block_size) || sb.block_size < FS_BLOCK_SIZE_MIN ||
	    sb.block_size > FS_BLOCK_SIZE_MAX || sb.inline_max > sb.block_size / 2 ||
	    sb.inline_max > FS_INLINE_MAX_LIMIT ||
	    sb.ino_limit <= FS_ROOT_INO)
		return -EUCLEAN;
	*ret_sb = sb;
	return 0;
}

static uint8_t *put_time(uint8_t *p, const struct timespec *ts)
{
	p = put_fixed64(p, (uint64_t)(int64_t)ts->tv_sec);
	return put_fixed32(p, (uint32_t)ts->tv_nsec);
}

static const uint8_t *get_time(const uint8_t *p, struct timespec *ts)
{
	ts->tv_sec = (time_t)(int64_t)get_fixed64(p);
	ts->tv_nsec = (long)get_fixed32(p + 8);
	return p + 12;
}

size_t fs_inode_encode(const struct fs_inode_rec *rec, const void *idata, size_t ilen, uint8_t *out)
{
	uint8_t *p = out;

	*p++ = FS_INODE_VERSION;
	*p++ = 0;
	p = put_fixed16(p, 0);
	p = put_fixed32(p, rec->mode);
	p = put_fixed32(p, rec->uid);
	p = put_fixed32(p, rec->gid);
	p = put_fixed32(p, rec->nlink);
	p = put_fixed32(p, rec->flags);
	p = put_fixed64(p, rec->size);
	p = put_fixed64(p, rec->nblocks);
	p = put_fixed64(p, rec->rdev);
	p = put_fixed64(p, rec->generation);
	p = put_fixed64(p, rec->parent);
	p = put_time(p, &rec->atime);
	p = put_time(p, &rec->mtime);
	p = put_time(p, &rec->ctime);
	if (ilen)
		memcpy(p, idata, ilen);
	return FS_INODE_HDR_LEN + ilen;
}

int fs_inode_decode(const void *val, size_t len, struct fs_inode_rec *ret_rec,
                    const uint8_t **ret_idata, size_t *ret_ilen)
{
	const uint8_t *p = val;
	struct fs_inode_rec r;

	if (len < FS_INODE_HDR_LEN || p[0] != FS_INODE_VERSION)
		return -EUCLEAN;
	r.mode = get_fixed32(p + 4);
	r.uid = get_fixed32(p + 8);
	r.gid = get_fixed32(p + 12);
	r.nlink = get_fixed32(p + 16);
	r.flags = get_fixed32(p + 20);
	r.size = get_fixed64(p + 24);
	r.nblocks = get_fixed64(p + 32);
	r.rdev = get_fixed64(p + 40);
	r.generation = get_fixed64(p + 48);
	r.parent = get_fixed64(p + 56);
	p = get_time(p + 64, &r.atime);
	p = get_time(p, &r.mtime);
	get_time(p, &r.ctime);
	if (r.atime.tv_nsec >= 1000000000L || r.mtime.tv_nsec >= 1000000000L ||
	    r.ctime.tv_nsec >= 1000000000L)
		return -EUCLEAN;
	*ret_rec = r;
	*ret_idata = (const uint8_t *)val + FS_INODE_HDR_LEN;
	*ret_ilen = len - FS_INODE_HDR_LEN;
	return 0;
}

void fs_dirent_encode(uint64_t ino, uint8_t dtype, uint8_t out[FS_DIRENT_LEN])
{
	put_be64(out, ino);
	out[8] = dtype;
}

int fs_dirent_decode(const void *val, size_t len, uint64_t *ret_ino, uint8_t *ret_dtype)
{
	const uint8_t *p = val;

	if (len != FS_DIRENT_LEN)
		return -EUCLEAN;
	*ret_ino = get_be64(p);
	*ret_dtype = p[8];
	return 0;
}

uint8_t fs_mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}
