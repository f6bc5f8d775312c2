/*
 * test_fs_ops.c - the fs core's namespace operations, one by one, with
 * their error cases: mkfs and mount checks, lookup, mknod, mkdir, rmdir,
 * unlink, symlink, readlink, link, create/open, statfs, read-only mounts,
 * and unlinked-but-open files reclaimed at release or at the next mount.
 * (Attributes and permissions: test_fs_attr.c.)
 */
#include "test_fs_common.h"

#include <sys/sysmacros.h>
#include <unistd.h>

static bool key_exists(struct fs *fs, const uint8_t *key, size_t klen)
{
	void *v;
	size_t len;
	int r = lsm_get(fs_db(fs), NULL, key, klen, &v, &len);

	assert_true(r == 0 || r == -ENOENT);
	if (r == 0)
		free(v);
	return r == 0;
}

static bool inode_key_exists(struct fs *fs, uint64_t ino)
{
	uint8_t k[FS_KEY_INO_LEN];

	return key_exists(fs, k, fs_key_inode(k, ino));
}

static bool orphan_key_exists(struct fs *fs, uint64_t ino)
{
	uint8_t k[FS_KEY_INO_LEN];

	return key_exists(fs, k, fs_key_orphan(k, ino));
}

static void test_fs_mkfs_root_and_statfs(void **state)
{
	struct tfs *t = *state;
	struct stat st = stat_of(t->fs, ROOT);
	struct statvfs sv;
	struct fs_info info;

	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0777);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, ROOT);
	fs_get_info(t->fs, &info);
	assert_int_equal(info.block_size, 4096);
	assert_int_equal(info.format_version, FS_FORMAT_VERSION);
	assert_int_equal(info.uuid[6] >> 4, 4);

	assert_int_equal(fs_statfs(t->fs, &sv), 0);
	assert_int_equal(sv.f_namemax, 255);
	assert_int_equal(sv.f_bsize, 4096);
	assert_true(sv.f_blocks > 0 && sv.f_bfree <= sv.f_blocks);
	assert_int_equal(sv.f_files - sv.f_ffree, 1);
	mkfile(t->fs, ROOT, "a", "x", 1);
	mkdir_(t->fs, ROOT, "d", 0755);
	assert_int_equal(fs_statfs(t->fs, &sv), 0);
	assert_int_equal(sv.f_files - sv.f_ffree, 3);
	/* the count survives a clean remount */
	tfs_remount(t);
	assert_int_equal(fs_statfs(t->fs, &sv), 0);
	assert_int_equal(sv.f_files - sv.f_ffree, 3);
}

static void test_fs_mkfs_errors(void **state)
{
	struct tfs *t = *state;
	struct fs_mkfs_options mk;
	struct fs *fs2;

	fs_mkfs_options_init(&mk);
	mk.env = t->env;
	mk.block_size = 3000;
	assert_int_equal(fs_mkfs("/other", &mk), -EINVAL);
	mk.block_size = 131072;
	assert_int_equal(fs_mkfs("/other", &mk), -EINVAL);
	mk.block_size = 4096;
	mk.inline_max = 4096;
	assert_int_equal(fs_mkfs("/other", &mk), -EINVAL);
	mk.block_size = 65536;
	mk.inline_max = 4097;
	assert_int_equal(fs_mkfs("/other", &mk), -EINVAL);
	mk.block_size = 4096;
	mk.inline_max = 512;
	/* mounted store: the engine's lock refuses */
	assert_int_equal(fs_mkfs(STORE, &mk), -EBUSY);
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -EBUSY);
	assert_non_null(strstr(fs_last_error(), "in use"));
	assert_int_equal(fs_close(t->fs), 0);
	t->fs = NULL;
	/* a store that holds a filesystem already */
	assert_int_equal(fs_mkfs(STORE, &mk), -EEXIST);
	/* no store at all */
	assert_int_equal(fs_open_store("/nothing", &t->mo, &fs2), -ENOENT);
	assert_non_null(strstr(fs_last_error(), "mkfs.lsmfs"));
	tfs_mount(t);
}

/* Rewrites the superblock key's value with raw bytes. */
static void poke_super(struct tfs *t, const void *val, size_t len)
{
	lsm_options lo;
	lsm_db *db;
	uint8_t k[1];

	lsm_options_init(&lo);
	lo.env = t->env;
	assert_int_equal(lsm_open(STORE, &lo, &db), 0);
	if (val)
		assert_int_equal(lsm_put(db, NULL, k, fs_key_super(k), val, len), 0);
	else
		assert_int_equal(lsm_delete(db, NULL, k, fs_key_super(k)), 0);
	assert_int_equal(lsm_close(db), 0);
}

static void test_fs_mount_refuses_bad_superblock(void **state)
{
	struct tfs *t = *state;
	struct fs_super sb = { .version = FS_FORMAT_VERSION + 1, .block_size = 4096,
		.inline_max = 512, .ino_limit = 10 };
	uint8_t val[FS_SUPER_LEN];
	struct fs *fs2;

	assert_int_equal(fs_close(t->fs), 0);
	t->fs = NULL;
	fs_super_encode(&sb, val);
	poke_super(t, val, sizeof(val));
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -EPROTONOSUPPORT);
	assert_non_null(strstr(fs_last_error(), "version"));
	poke_super(t, val, 20);
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -EPROTONOSUPPORT);
	sb.version = FS_FORMAT_VERSION;
	sb.block_size = 1000;
	fs_super_encode(&sb, val);
	poke_super(t, val, sizeof(val));
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -EUCLEAN);
	assert_non_null(strstr(fs_last_error(), "fsck.lsmfs"));
	poke_super(t, "garbage-garbage", 15);
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -ENOTSUP);
	poke_super(t, NULL, 0);
	assert_int_equal(fs_open_store(STORE, &t->mo, &fs2), -ENOTSUP);
	assert_non_null(strstr(fs_last_error(), "superblock"));
}

static void test_fs_lookup(void **state)
{
	struct tfs *t = *state;
	char name255[256], name256[257];
	struct fs_entry e;
	uint64_t f, d;

	f = mkfile(t->fs, ROOT, "file", "hello", 5);
	d = mkdir_(t->fs, ROOT, "dir", 0755);
	assert_int_equal(fs_lookup(t->fs, NULL, ROOT, "file", &e), 0);
	assert_int_equal(e.ino, f);
	assert_int_equal(e.attr.st_size, 5);
	assert_true(S_ISREG(e.attr.st_mode));
	assert_int_equal(e.generation, 1);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_lookup(t->fs, NULL, ROOT, "missing", &e), -ENOENT);
	assert_int_equal(fs_lookup(t->fs, NULL, f, "x", &e), -ENOTDIR);
	assert_int_equal(fs_lookup(t->fs, NULL, 999999, "x", &e), -ENOENT);
	assert_int_equal(lookup_ino(t->fs, d, "."), (int64_t)d);
	assert_int_equal(lookup_ino(t->fs, d, ".."), ROOT);
	assert_int_equal(lookup_ino(t->fs, ROOT, ".."), ROOT);

	memset(name255, 'n', 255);
	name255[255] = '\0';
	memset(name256, 'n', 256);
	name256[256] = '\0';
	mkfile(t->fs, d, name255, NULL, 0);
	assert_true(lookup_ino(t->fs, d, name255) > 0);
	assert_int_equal(fs_lookup(t->fs, NULL, d, name256, &e), -ENAMETOOLONG);
	assert_int_equal(fs_mknod(t->fs, NULL, d, name256, S_IFREG | 0644, 0, &e), -ENAMETOOLONG);
	assert_int_equal(fs_mkdir(t->fs, NULL, d, name256, 0755, &e), -ENAMETOOLONG);
	assert_int_equal(fs_mknod(t->fs, NULL, d, "a/b", S_IFREG | 0644, 0, &e), -EINVAL);
	assert_int_equal(fs_mknod(t->fs, NULL, d, "", S_IFREG | 0644, 0, &e), -EINVAL);
	assert_int_equal(fs_mknod(t->fs, NULL, d, ".", S_IFREG | 0644, 0, &e), -EEXIST);
	assert_int_equal(fs_mkdir(t->fs, NULL, d, "..", 0755, &e), -EEXIST);
	/* lookup needs search permission on the directory */
	assert_int_equal(fs_mkdir(t->fs, &cred_root, ROOT, "private", 0700, &e), 0);
	fs_forget(t->fs, e.ino, 1);
	mkfile(t->fs, e.ino, "secret", "s", 1);
	assert_int_equal(fs_lookup(t->fs, &cred_alice, e.ino, "secret", &e), -EACCES);
}

static void test_fs_mknod_types(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	char buf[8];

	assert_int_equal(fs_mknod(t->fs, &cred_alice, ROOT, "fifo", S_IFIFO | 0666, 0, &e), 0);
	assert_true(S_ISFIFO(e.attr.st_mode));
	assert_int_equal(e.attr.st_mode & 0777, 0644);   /* umask 022 */
	assert_int_equal(e.attr.st_uid, 1000);
	assert_int_equal(e.attr.st_gid, 1000);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_mknod(t->fs, &cred_alice, ROOT, "sock", S_IFSOCK | 0600, 0, &e), 0);
	assert_true(S_ISSOCK(e.attr.st_mode));
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_mknod(t->fs, &cred_alice, ROOT, "plain", 0644, 0, &e), 0);
	assert_true(S_ISREG(e.attr.st_mode));
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_mknod(t->fs, &cred_alice, ROOT, "chr", S_IFCHR | 0600, makedev(1, 3), &e),
	                 -EPERM);
	assert_int_equal(fs_mknod(t->fs, &cred_root, ROOT, "chr", S_IFCHR | 0600, makedev(1, 3), &e), 0);
	assert_true(S_ISCHR(e.attr.st_mode));
	assert_int_equal(e.attr.st_rdev, makedev(1, 3));
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_mknod(t->fs, &cred_root, ROOT, "blk", S_IFBLK | 0600, makedev(8, 1), &e), 0);
	fs_forget(t->fs, e.ino, 1);
	tfs_remount(t);
	assert_int_equal(stat_of(t->fs, (uint64_t)lookup_ino(t->fs, ROOT, "blk")).st_rdev, makedev(8, 1));
	assert_int_equal(fs_mknod(t->fs, &cred_root, ROOT, "dir", S_IFDIR | 0755, 0, &e), -EINVAL);
	assert_int_equal(fs_mknod(t->fs, &cred_root, ROOT, "fifo", S_IFIFO | 0666, 0, &e), -EEXIST);
	/* reading a non-file */
	{
		struct fs_file *fh;

		assert_int_equal(fs_open(t->fs, NULL, (uint64_t)lookup_ino(t->fs, ROOT, "fifo"),
		                         O_RDONLY, &fh), 0);
		assert_int_equal(fs_read(t->fs, fh, buf, sizeof(buf), 0), 0);
		fs_release(t->fs, fh);
	}
}

static void test_fs_mkdir_rmdir_nlink(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	uint64_t a, b;

	a = mkdir_(t->fs, ROOT, "a", 0755);
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, a).st_nlink, 2);
	b = mkdir_(t->fs, a, "b", 0755);
	mkdir_(t->fs, a, "c", 0755);
	assert_int_equal(stat_of(t->fs, a).st_nlink, 4);
	assert_int_equal(fs_mkdir(t->fs, NULL, a, "b", 0755, &e), -EEXIST);
	mkfile(t->fs, b, "f", "x", 1);
	assert_int_equal(fs_rmdir(t->fs, NULL, a, "b"), -ENOTEMPTY);
	assert_int_equal(fs_rmdir(t->fs, NULL, ROOT, "a"), -ENOTEMPTY);
	assert_int_equal(fs_rmdir(t->fs, NULL, b, "f"), -ENOTDIR);
	assert_int_equal(fs_unlink(t->fs, NULL, a, "b"), -EISDIR);
	assert_int_equal(fs_rmdir(t->fs, NULL, a, "."), -EINVAL);
	assert_int_equal(fs_rmdir(t->fs, NULL, a, ".."), -ENOTEMPTY);
	assert_int_equal(fs_rmdir(t->fs, NULL, a, "zz"), -ENOENT);
	assert_int_equal(fs_mkdir(t->fs, NULL, (uint64_t)lookup_ino(t->fs, b, "f"), "x", 0755, &e),
	                 -ENOTDIR);
	assert_int_equal(fs_unlink(t->fs, NULL, b, "f"), 0);
	assert_int_equal(fs_rmdir(t->fs, NULL, a, "b"), 0);
	assert_int_equal(stat_of(t->fs, a).st_nlink, 3);
	assert_int_equal(fs_lookup(t->fs, NULL, a, "b", &e), -ENOENT);
	/* the removed directory is gone from the store, not just unlinked */
	assert_false(inode_key_exists(t->fs, b));
	assert_int_equal(fs_mkdir(t->fs, NULL, b, "x", 0755, &e), -ENOENT);
	/* mkdir's mode: umask, and S_ISGID inherited */
	assert_int_equal(fs_setattr(t->fs, NULL, a, &(struct stat){ .st_mode = 02775 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_setattr(t->fs, NULL, a, &(struct stat){ .st_gid = 100 },
	                            FS_SET_ATTR_GID, NULL, NULL), 0);
	assert_int_equal(fs_mkdir(t->fs, &cred_alice, a, "g", 0777, &e), 0);
	assert_int_equal(e.attr.st_mode & 07777, 02755);
	assert_int_equal(e.attr.st_gid, 100);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_mknod(t->fs, &cred_alice, a, "gf", S_IFREG | 0666, 0, &e), 0);
	assert_int_equal(e.attr.st_mode & 07777, 0644);
	assert_int_equal(e.attr.st_gid, 100);
	fs_forget(t->fs, e.ino, 1);
	tfs_remount(t);
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, a).st_nlink, 4);
}

static void test_fs_symlink_readlink(void **state)
{
	struct tfs *t = *state;
	char longt[FS_SYMLINK_MAX + 2], *s;
	struct fs_entry e;
	uint64_t f;

	assert_int_equal(fs_symlink(t->fs, &cred_alice, "../some/where", ROOT, "ln", &e), 0);
	assert_true(S_ISLNK(e.attr.st_mode));
	assert_int_equal(e.attr.st_mode & 0777, 0777);
	assert_int_equal(e.attr.st_size, 13);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_readlink(t->fs, e.ino, &s), 0);
	assert_string_equal(s, "../some/where");
	free(s);
	memset(longt, 'x', FS_SYMLINK_MAX);
	longt[FS_SYMLINK_MAX] = '\0';
	assert_int_equal(fs_symlink(t->fs, NULL, longt, ROOT, "long", &e), 0);
	fs_forget(t->fs, e.ino, 1);
	tfs_remount(t);
	assert_int_equal(fs_readlink(t->fs, e.ino, &s), 0);
	assert_int_equal(strlen(s), FS_SYMLINK_MAX);
	free(s);
	longt[FS_SYMLINK_MAX] = 'x';
	longt[FS_SYMLINK_MAX + 1] = '\0';
	assert_int_equal(fs_symlink(t->fs, NULL, longt, ROOT, "toolong", &e), -ENAMETOOLONG);
	assert_int_equal(fs_symlink(t->fs, NULL, "", ROOT, "empty", &e), -ENOENT);
	assert_int_equal(fs_symlink(t->fs, NULL, "x", ROOT, "ln", &e), -EEXIST);
	f = mkfile(t->fs, ROOT, "f", NULL, 0);
	assert_int_equal(fs_readlink(t->fs, f, &s), -EINVAL);
	assert_int_equal(fs_readlink(t->fs, 424242, &s), -ENOENT);
}

static void test_fs_link(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	uint64_t f, d1, d2;
	struct stat before;

	d1 = mkdir_(t->fs, ROOT, "d1", 0755);
	d2 = mkdir_(t->fs, ROOT, "d2", 0755);
	f = mkfile(t->fs, d1, "f", "data", 4);
	before = stat_of(t->fs, f);
	assert_int_equal(fs_link(t->fs, NULL, f, d2, "g", &e), 0);
	assert_int_equal(e.ino, f);
	assert_int_equal(e.attr.st_nlink, 2);
	assert_true(ts_after(e.attr.st_ctim, before.st_ctim));
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_link(t->fs, NULL, f, d1, "h", &e), 0);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(stat_of(t->fs, f).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, d2).st_nlink, 2);   /* files do not count */
	assert_int_equal(fs_link(t->fs, NULL, f, d2, "g", &e), -EEXIST);
	assert_int_equal(fs_link(t->fs, NULL, d1, d2, "dirlink", &e), -EPERM);
	assert_int_equal(fs_link(t->fs, NULL, f, f, "x", &e), -ENOTDIR);
	assert_int_equal(fs_link(t->fs, NULL, 777777, d2, "x", &e), -ENOENT);
	assert_int_equal(fs_link(t->fs, &cred_alice, f, d2, "x", &e), -EACCES);
	assert_int_equal(fs_unlink(t->fs, NULL, d1, "f"), 0);
	assert_int_equal(stat_of(t->fs, f).st_nlink, 2);
	{
		size_t len;
		uint8_t *buf = read_all(t->fs, (uint64_t)lookup_ino(t->fs, d2, "g"), &len);

		assert_int_equal(len, 4);
		assert_memory_equal(buf, "data", 4);
		free(buf);
	}
	assert_int_equal(fs_unlink(t->fs, NULL, d2, "g"), 0);
	assert_int_equal(fs_unlink(t->fs, NULL, d1, "h"), 0);
	assert_false(inode_key_exists(t->fs, f));
	assert_int_equal(fs_unlink(t->fs, NULL, d1, "h"), -ENOENT);
}

static void test_fs_create_open(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	struct fs_file *fh;
	uint64_t f, d;

	f = mkfile(t->fs, ROOT, "f", "0123456789", 10);
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_RDWR | O_CREAT | O_EXCL, &e, &fh),
	                 -EEXIST);
	/* O_CREAT without O_EXCL opens the existing file, O_TRUNC empties it */
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_RDWR | O_CREAT, &e, &fh), 0);
	assert_int_equal(e.ino, f);
	assert_int_equal(e.attr.st_size, 10);
	fs_release(t->fs, fh);
	fs_forget(t->fs, f, 1);
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_WRONLY | O_CREAT | O_TRUNC, &e, &fh),
	                 0);
	assert_int_equal(e.attr.st_size, 0);
	fs_release(t->fs, fh);
	fs_forget(t->fs, f, 1);
	d = mkdir_(t->fs, ROOT, "d", 0755);
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "d", 0644, O_RDWR | O_CREAT, &e, &fh), -EISDIR);
	assert_int_equal(fs_open(t->fs, NULL, d, O_RDWR, &fh), -EISDIR);
	assert_int_equal(fs_open(t->fs, NULL, d, O_RDONLY, &fh), 0);
	fs_release(t->fs, fh);
	assert_int_equal(fs_open(t->fs, NULL, 55555, O_RDONLY, &fh), -ENOENT);
	assert_int_equal(fs_create(t->fs, NULL, f, "x", 0644, O_RDWR | O_CREAT, &e, &fh), -ENOTDIR);
	/* handles check their access mode */
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh), 0);
	assert_int_equal(fs_write(t->fs, NULL, fh, "x", 1, 0), -EBADF);
	fs_release(t->fs, fh);
	assert_int_equal(fs_open(t->fs, NULL, f, O_WRONLY, &fh), 0);
	{
		char c;

		assert_int_equal(fs_read(t->fs, fh, &c, 1, 0), -EBADF);
	}
	assert_int_equal(fs_flush(t->fs, fh), 0);
	assert_int_equal(fs_fsync(t->fs, f, 0), 0);
	assert_int_equal(fs_fsync(t->fs, f, 1), 0);
	assert_int_equal(fs_fsyncdir(t->fs, ROOT, 0), 0);
	assert_int_equal(fs_file_ino(fh), f);
	fs_release(t->fs, fh);
}

static void test_fs_unlink_open_file_then_release(void **state)
{
	struct tfs *t = *state;
	char big[10000], buf[10000];
	struct fs_entry e;
	struct fs_file *fh, *fh2;
	uint64_t f;

	memset(big, 'q', sizeof(big));
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_RDWR | O_CREAT, &e, &fh), 0);
	f = e.ino;
	assert_int_equal(fs_write(t->fs, NULL, fh, big, sizeof(big), 0), (ssize_t)sizeof(big));
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh2), 0);
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), 0);
	assert_int_equal(fs_lookup(t->fs, NULL, ROOT, "f", &e), -ENOENT);
	assert_true(orphan_key_exists(t->fs, f));
	assert_int_equal(stat_of(t->fs, f).st_nlink, 0);
	/* still readable and writable through the handles */
	assert_int_equal(fs_write(t->fs, NULL, fh, "Z", 1, 5), 1);
	assert_int_equal(fs_read(t->fs, fh2, buf, sizeof(buf), 0), (ssize_t)sizeof(big));
	assert_int_equal(buf[5], 'Z');
	assert_int_equal(buf[9999], 'q');
	assert_int_equal(fs_release(t->fs, fh), 0);
	assert_true(inode_key_exists(t->fs, f));      /* one handle left */
	assert_int_equal(fs_release(t->fs, fh2), 0);
	assert_false(inode_key_exists(t->fs, f));
	assert_false(orphan_key_exists(t->fs, f));
	{
		uint8_t k[FS_KEY_BLOCK_LEN];

		assert_false(key_exists(t->fs, k, fs_key_block(k, f, 0)));
		assert_false(key_exists(t->fs, k, fs_key_block(k, f, 2)));
	}
	/* the kernel's lookup still answers getattr with nlink 0 */
	assert_int_equal(stat_of(t->fs, f).st_nlink, 0);
	fs_forget(t->fs, f, 1);
	assert_int_equal(fs_getattr(t->fs, f, &(struct stat){ 0 }), -ENOENT);
	/* a new file never reuses the number */
	assert_true(mkfile(t->fs, ROOT, "g", NULL, 0) > f);
}

static void test_fs_orphan_reclaimed_at_remount(void **state)
{
	struct tfs *t = tfs_new(true);
	char big[9000];
	struct fs_entry e;
	struct fs_file *fh;
	uint64_t f, keep;

	(void)state;
	memset(big, 'o', sizeof(big));
	keep = mkfile(t->fs, ROOT, "keep", "k", 1);
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_RDWR | O_CREAT, &e, &fh), 0);
	f = e.ino;
	assert_int_equal(fs_write(t->fs, NULL, fh, big, sizeof(big), 0), (ssize_t)sizeof(big));
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), 0);
	assert_true(orphan_key_exists(t->fs, f));
	/* the unlink is made durable, then the power fails with f still open */
	assert_int_equal(fs_sync_all(t->fs), 0);
	env_fault_power_cut_after_sync(t->env, 1);
	fs_sync_all(t->fs);   /* this sync, or a background one, is the last */
	assert_true(env_fault_is_down(t->env));
	assert_true(fs_close(t->fs) < 0);    /* the reclaim at unmount cannot be written */
	t->fs = NULL;
	assert_int_equal(env_fault_crash(t->env), 0);
	tfs_mount(t);
	assert_false(orphan_key_exists(t->fs, f));
	assert_false(inode_key_exists(t->fs, f));
	assert_int_equal(lookup_ino(t->fs, ROOT, "keep"), (int64_t)keep);
	{
		struct statvfs sv;

		assert_int_equal(fs_statfs(t->fs, &sv), 0);
		assert_int_equal(sv.f_files - sv.f_ffree, 2);   /* recounted after the crash */
	}
	assert_true(mkfile(t->fs, ROOT, "new", NULL, 0) > f);
	tfs_free(t);
}

static void test_fs_read_only_mount(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	struct fs_file *fh;
	uint64_t f = mkfile(t->fs, ROOT, "f", "abc", 3);

	assert_int_equal(fs_close(t->fs), 0);
	t->mo.read_only = 1;
	tfs_mount(t);
	assert_int_equal(fs_mkdir(t->fs, NULL, ROOT, "d", 0755, &e), -EROFS);
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), -EROFS);
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDWR, &fh), -EROFS);
	assert_int_equal(fs_access(t->fs, NULL, f, W_OK), -EROFS);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.a", "b", 1, 0), -EROFS);
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh), 0);
	{
		char buf[4];
		struct statvfs sv;

		assert_int_equal(fs_read(t->fs, fh, buf, 4, 0), 3);
		assert_int_equal(fs_statfs(t->fs, &sv), 0);
		assert_true(sv.f_flag & ST_RDONLY);
	}
	fs_release(t->fs, fh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_mkfs_root_and_statfs, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_mkfs_errors, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_mount_refuses_bad_superblock, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_lookup, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_mknod_types, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_mkdir_rmdir_nlink, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_symlink_readlink, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_link, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_create_open, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_unlink_open_file_then_release, tfs_setup, tfs_teardown),
		cmocka_unit_test(test_fs_orphan_reclaimed_at_remount),
		cmocka_unit_test_setup_teardown(test_fs_read_only_mount, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
