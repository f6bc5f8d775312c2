/*
 * super.c - the filesystem as a whole: mkfs (superblock and root directory
 * in one synced batch), mount (open the engine, check the superblock,
 * recover), unmount, sync and statfs.
 *
 * The superblock key 'S' carries the format version, the block size and
 * inline limit chosen at mkfs, the inode number reservation (inode.c) and a
 * clean flag.  Mounting read-write clears the flag and unmounting sets it
 * again with the exact count of inodes in use; a mount that finds it clear
 * (the last one crashed) counts the inode records once.  Mount-time
 * recovery is the engine's WAL replay plus reclaiming orphans: inodes
 * unlinked while open whose last close never came ('O' keys).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "env.h"
#include "fs_int.h"

void fs_mount_options_init(struct fs_mount_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->inode_cache_max = 65536;
	opt->wal_inline_max = FS_WAL_INLINE_DEFAULT;
}

void fs_mkfs_options_init(struct fs_mkfs_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->block_size = FS_BLOCK_SIZE_DEFAULT;
	opt->inline_max = FS_INLINE_MAX_DEFAULT;
	opt->root_uid = getuid();
	opt->root_gid = getgid();
	opt->root_mode = 0755;
}

const char *fs_last_error(void)
{
	return lsm_last_error();
}

lsm_db *fs_db(struct fs *fs)
{
	return fs->db;
}

void fs_get_info(const struct fs *fs, struct fs_info *ret_info)
{
	ret_info->format_version = fs->sb.version;
	ret_info->block_size = fs->sb.block_size;
	ret_info->inline_max = fs->sb.inline_max;
	memcpy(ret_info->uuid, fs->sb.uuid, sizeof(ret_info->uuid));
	ret_info->next_ino = fs->sb.ino_limit;
	ret_info->created_ns = fs->sb.created_ns;
}

static void make_uuid(uint8_t uuid[16])
{
	if (getrandom(uuid, 16, 0) != 16) {
		struct timespec ts = fs_now();
		uint64_t a = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		uint64_t b = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ a;

		memcpy(uuid, &a, 8);
		memcpy(uuid + 8, &b, 8);
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
}

/* Says why lsm_open failed, in words for the user. */
static int explain_open_error(const char *dir, int r)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", lsm_last_error());
	switch (r) {
	case -ENOENT:
		return lsm_errf(r, "%s: no lsmfs store here (make one with mkfs.lsmfs)", dir);
	case -EBUSY:
		return lsm_errf(r, "%s: the store is in use by another process (mounted, or being "
		                "checked)", dir);
	case -EBADMSG:
	case -EUCLEAN:
		return lsm_errf(r, "%s: the store is damaged (%s); run fsck.lsmfs", dir, detail);
	case -ENOTSUP:
		return lsm_errf(r, "%s: unknown store format (%s)", dir, detail);
	default:
		return lsm_errf(r, "%s: cannot open the store: %s%s%s", dir, strerror(-r),
		                detail[0] ? ": " : "", detail);
	}
}

int fs_mkfs(const char *dir, const struct fs_mkfs_options *opt)
{
	uint8_t skey[1], sval[FS_SUPER_LEN], ikey[FS_KEY_INO_LEN], ival[FS_INODE_HDR_LEN];
	struct fs_mkfs_options defaults;
	lsm_write_options wo;
	struct fs_inode_rec root;
	struct fs_super sb;
	lsm_options lo;
	lsm_batch *b = NULL;
	lsm_iter *it = NULL;
	lsm_db *db;
	int r;

	if (!opt) {
		fs_mkfs_options_init(&defaults);
		opt = &defaults;
	}
	if (opt->block_size < FS_BLOCK_SIZE_MIN || opt->block_size > FS_BLOCK_SIZE_MAX ||
	    (opt->block_size & (opt->block_size - 1)))
		return lsm_errf(-EINVAL, "block size %u: must be a power of two from %u to %u",
		                opt->block_size, FS_BLOCK_SIZE_MIN, FS_BLOCK_SIZE_MAX);
	if (opt->inline_max > opt->block_size / 2 || opt->inline_max > FS_INLINE_MAX_LIMIT)
		return lsm_errf(-EINVAL, "inline size %u: at most half the block size and %u",
		                opt->inline_max, FS_INLINE_MAX_LIMIT);
	lsm_options_init(&lo);
	lo.env = opt->env;
	lo.create_if_missing = 1;
	r = lsm_open(dir, &lo, &db);
	if (r < 0)
		return explain_open_error(dir, r);
	r = lsm_iter_new(db, NULL, &it);
	if (r < 0)
		goto out;
	lsm_iter_seek_to_first(it);
	if (lsm_iter_valid(it))
		r = lsm_errf(-EEXIST, "%s: the store already holds data", dir);
	else
		r = lsm_iter_status(it);
	lsm_iter_free(it);
	if (r < 0)
		goto out;

	memset(&sb, 0, sizeof(sb));
	sb.version = FS_FORMAT_VERSION;
	sb.block_size = opt->block_size;
	sb.inline_max = opt->inline_max;
	sb.flags = FS_SUPER_CLEAN;
	sb.ino_limit = FS_ROOT_INO + 1;
	sb.inode_count = 1;
	make_uuid(sb.uuid);
	{
		struct timespec now = fs_now();

		sb.created_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		memset(&root, 0, sizeof(root));
		root.mode = S_IFDIR | (opt->root_mode & 07777);
		root.uid = opt->root_uid;
		root.gid = opt->root_gid;
		root.nlink = 2;
		root.generation = 1;
		root.parent = FS_ROOT_INO;
		root.atime = root.mtime = root.ctime = now;
	}
	fs_super_encode(&sb, sval);
	r = lsm_batch_new(&b);
	if (r == 0)
		r = lsm_batch_put(b, skey, fs_key_super(skey), sval, sizeof(sval));
	if (r == 0)
		r = lsm_batch_put(b, ikey, fs_key_inode(ikey, FS_ROOT_INO), ival,
		                  fs_inode_encode(&root, NULL, 0, ival));
	if (r == 0) {
		lsm_write_options_init(&wo);
		wo.sync = 1;
		r = lsm_write(db, &wo, b);
	}
	lsm_batch_free(b);
out:
	{
		int rc = lsm_close(db);

		return r < 0 ? r : rc;
	}
}

/* Inodes in use, by counting records (after an unclean unmount). */
static int count_inodes(lsm_db *db, int64_t *ret_count)
{
	uint8_t key[1] = { FS_KEY_INODE };
	int64_t n = 0;
	lsm_iter *it;
	int r;

	r = lsm_iter_new(db, NULL, &it);
	if (r < 0)
		return r;
	for (lsm_iter_seek(it, key, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const uint8_t *k = lsm_iter_key(it, &kl);

		if (kl == 0 || k[0] != FS_KEY_INODE)
			break;
		n++;
	}
	r = lsm_iter_status(it);
	lsm_iter_free(it);
	if (r == 0)
		*ret_count = n;
	return r;
}

/* Reclaims every inode with an 'O' key (mount-time recovery). */
static int reclaim_orphans(struct fs *fs)
{
	uint8_t key[1] = { FS_KEY_ORPHAN };
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	lsm_iter *it;
	int r;

	r = lsm_iter_new(fs->db, NULL, &it);
	if (r < 0)
		return r;
	for (lsm_iter_seek(it, key, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const void *k = lsm_iter_key(it, &kl);
		uint64_t ino;

		if (fs_key_parse_ino(k, kl, FS_KEY_ORPHAN, &ino) < 0)
			break;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			uint64_t *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = ino;
	}
	if (r == 0)
		r = lsm_iter_status(it);
	lsm_iter_free(it);
	for (size_t i = 0; i < n && r == 0; i++)
		r = fs_reclaim_ino(fs, v[i]);
	free(v);
	return r;
}

static int read_super(const char *dir, lsm_db *db, struct fs_super *ret_sb)
{
	uint8_t key[FS_KEY_INO_LEN];
	size_t len;
	void *val;
	int r;

	r = lsm_get(db, NULL, key, fs_key_super(key), &val, &len);
	if (r == -ENOENT)
		return lsm_errf(-ENOTSUP, "%s: no lsmfs superblock in this store (not made by "
		                "mkfs.lsmfs?)", dir);
	if (r < 0)
		return explain_open_error(dir, r);
	r = fs_super_decode(val, len, ret_sb);
	free(val);
	if (r == -EPROTONOSUPPORT)
		return lsm_errf(r, "%s: filesystem format version %u; this lsmfs reads version %u",
		                dir, ret_sb->version, FS_FORMAT_VERSION);
	if (r == -ENOTSUP)
		return lsm_errf(r, "%s: not an lsmfs superblock", dir);
	if (r < 0)
		return lsm_errf(r, "%s: the superblock is damaged; run fsck.lsmfs", dir);
	r = lsm_get(db, NULL, key, fs_key_inode(key, FS_ROOT_INO), &val, &len);
	if (r == 0)
		free(val);
	if (r == -ENOENT)
		return lsm_errf(-EUCLEAN, "%s: the root directory is missing; run fsck.lsmfs", dir);
	return r < 0 ? explain_open_error(dir, r) : 0;
}

static void fs_free(struct fs *fs)
{
	fs_file_free_all(fs);
	fs_dir_free_all(fs);
	fs_inode_cache_done(fs);
	for (unsigned i = 0; i < FS_STRIPES; i++)
		pthread_rwlock_destroy(&fs->stripes[i]);
	pthread_mutex_destroy(&fs->alloc_mu);
	pthread_mutex_destroy(&fs->rename_mu);
	pthread_mutex_destroy(&fs->handles_mu);
	free(fs->dir);
	free(fs);
}

int fs_open_store(const char *dir, const struct fs_mount_options *opt, struct fs **ret_fs)
{
	struct fs_mount_options defaults;
	lsm_options lo;
	struct fs *fs;
	int r;

	if (!opt) {
		fs_mount_options_init(&defaults);
		opt = &defaults;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->dir = strdup(dir);
	if (!fs->dir) {
		free(fs);
		return -ENOMEM;
	}
	fs->env = opt->env ? opt->env : lsm_env_posix();
	fs->read_only = opt->read_only != 0;
	fs->atime = opt->atime;
	lsm_write_options_init(&fs->wo);
	fs->wo.sync = opt->sync_writes != 0;
	pthread_mutex_init(&fs->alloc_mu, NULL);
	pthread_mutex_init(&fs->rename_mu, NULL);
	pthread_mutex_init(&fs->handles_mu, NULL);
	for (unsigned i = 0; i < FS_STRIPES; i++)
		pthread_rwlock_init(&fs->stripes[i], NULL);
	r = fs_inode_cache_init(fs, opt->inode_cache_max ? opt->inode_cache_max : 65536);
	if (r < 0) {
		for (unsigned i = 0; i < FS_STRIPES; i++)
			pthread_rwlock_destroy(&fs->stripes[i]);
		free(fs->dir);
		free(fs);
		return r;
	}

	lsm_options_init(&lo);
	lo.env = opt->env;
	lo.create_if_missing = opt->create_store != 0;
	if (opt->cache_size)
		lo.block_cache_size = opt->cache_size;
	if (opt->write_buffer_size)
		lo.write_buffer_size = opt->write_buffer_size;
	/* A block is as large as the engine's value threshold, so each one
	 * written would go to the value log, and an fsync after a small write
	 * would cost a sync of the value log and one of the WAL.  Small
	 * changes (a program's log record, a database page, a small file) are
	 * logged whole instead, one append and one sync, and their blocks
	 * reach the value log when the memtable is flushed; larger ones (a
	 * sequential writer's 1 MiB requests) are not written twice. */
	lo.wal_inline_max = opt->wal_inline_max;
	r = lsm_open(dir, &lo, &fs->db);
	if (r < 0) {
		r = explain_open_error(dir, r);
		fs->db = NULL;
		goto fail;
	}
	r = read_super(dir, fs->db, &fs->sb);
	if (r < 0)
		goto fail;
	fs->next_ino = fs->sb.ino_limit;
	if (fs->sb.flags & FS_SUPER_CLEAN)
		fs->inode_count = (int64_t)fs->sb.inode_count;
	else if ((r = count_inodes(fs->db, &fs->inode_count)) < 0)
		goto fail;
	if (!fs->read_only) {
		fs->sb.flags &= ~FS_SUPER_CLEAN;
		r = fs_super_write_locked(fs, false);
		if (r == 0)
			r = reclaim_orphans(fs);
		if (r < 0) {
			lsm_errf(r, "%s: recovery failed: %s", dir, strerror(-r));
			goto fail;
		}
	}
	*ret_fs = fs;
	return 0;
fail:
	if (fs->db)
		lsm_close(fs->db);
	fs_free(fs);
	return r;
}

int fs_sync_all(struct fs *fs)
{
	return lsm_sync(fs->db);
}

int fs_close(struct fs *fs)
{
	struct inode **v = NULL;
	size_t n = 0;
	int r = 0, rc;

	if (!fs)
		return 0;
	if (!fs->read_only) {
		/* Orphans still open at unmount: their handles die with it. */
		r = fs_inode_collect_orphans(fs, &v, &n);
		for (size_t i = 0; i < n; i++) {
			struct lockset ls;

			fs_lockset_init(&ls, true);
			fs_lockset_add(&ls, v[i]->ino);
			fs_lockset_lock(fs, &ls);
			if (!v[i]->deleted && v[i]->rec.nlink == 0) {
				rc = fs_inode_reclaim(fs, v[i]);
				if (r == 0)
					r = rc;
			}
			fs_inode_put(fs, v[i]);
			fs_lockset_unlock(fs, &ls);
		}
		free(v);
		pthread_mutex_lock(&fs->alloc_mu);
		fs->sb.inode_count = (uint64_t)__atomic_load_n(&fs->inode_count, __ATOMIC_RELAXED);
		if (r == 0)
			fs->sb.flags |= FS_SUPER_CLEAN;
		rc = fs_super_write_locked(fs, true);
		pthread_mutex_unlock(&fs->alloc_mu);
		if (r == 0)
			r = rc;
	}
	rc = lsm_close(fs->db);
	if (r == 0)
		r = rc;
	fs_free(fs);
	return r;
}

int fs_statfs(struct fs *fs, struct statvfs *ret_stat)
{
	struct lsm_env_statfs s;
	uint32_t bs = fs->sb.block_size;
	int64_t used = __atomic_load_n(&fs->inode_count, __ATOMIC_RELAXED);
	int r;

	r = env_statfs(fs->env, fs->dir, &s);
	if (r < 0)
		return r;
	memset(ret_stat, 0, sizeof(*ret_stat));
	ret_stat->f_bsize = bs;
	ret_stat->f_frsize = bs;
	ret_stat->f_blocks = s.total_bytes / bs;
	ret_stat->f_bfree = s.free_bytes / bs;
	ret_stat->f_bavail = s.avail_bytes / bs;
	/* Every inode is a few small keys: the host's free inodes, or if it
	 * has no such limit (btrfs), its free space, bound how many more fit. */
	ret_stat->f_ffree = s.free_files ? s.free_files : s.avail_bytes / bs;
	ret_stat->f_favail = ret_stat->f_ffree;
	ret_stat->f_files = ret_stat->f_ffree + (used > 0 ? (uint64_t)used : 0);
	memcpy(&ret_stat->f_fsid, fs->sb.uuid, sizeof(ret_stat->f_fsid));
	ret_stat->f_flag = fs->read_only ? ST_RDONLY : 0;
	ret_stat->f_namemax = FS_NAME_MAX;
	return 0;
}
