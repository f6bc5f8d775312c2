/*
 * test_fs_xattr.c - extended attributes in the fs core: set/get/list/
 * remove, XATTR_CREATE and XATTR_REPLACE, the size protocol (size 0 asks
 * the length, too small gives ERANGE), namespaces and their permissions,
 * values up to 64 KiB, binary values, ctime, persistence, that unlink
 * removes an inode's xattrs from the store, and that writing, truncating
 * or chowning a file removes its security.capability (and nothing else).
 */
#include "test_fs_common.h"

static size_t count_xattr_keys(struct fs *fs, uint64_t ino)
{
	uint8_t prefix[FS_KEY_INO_LEN];
	size_t plen = fs_key_prefix(prefix, FS_KEY_XATTR, ino), n = 0;
	lsm_iter *it;

	assert_int_equal(lsm_iter_new(fs_db(fs), NULL, &it), 0);
	for (lsm_iter_seek(it, prefix, plen); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const void *k = lsm_iter_key(it, &kl);

		if (kl < plen || memcmp(k, prefix, plen) != 0)
			break;
		n++;
	}
	lsm_iter_free(it);
	return n;
}

static void test_fs_xattr_basic(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", NULL, 0);
	char buf[256];
	struct stat before;

	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(fs_listxattr(t->fs, NULL, f, buf, sizeof(buf)), 0);
	before = stat_of(t->fs, f);
	usleep(1000);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.a", "alpha", 5, 0), 0);
	assert_true(stat_of(t->fs, f).st_ctim.tv_nsec != before.st_ctim.tv_nsec ||
	            stat_of(t->fs, f).st_ctim.tv_sec != before.st_ctim.tv_sec);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.b", "\0\1\2", 3, 0), 0);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.empty", "", 0, 0), 0);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", NULL, 0), 5);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", buf, 4), -ERANGE);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "alpha", 5);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.b", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "\0\1\2", 3);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.empty", buf, sizeof(buf)), 0);
	/* list: names NUL-terminated, in order */
	assert_int_equal(fs_listxattr(t->fs, NULL, f, NULL, 0), 25);
	assert_int_equal(fs_listxattr(t->fs, NULL, f, buf, 10), -ERANGE);
	assert_int_equal(fs_listxattr(t->fs, NULL, f, buf, sizeof(buf)), 25);
	assert_memory_equal(buf, "user.a\0user.b\0user.empty\0", 25);
	/* replace a value */
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.a", "A", 1, 0), 0);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", buf, sizeof(buf)), 1);
	tfs_remount(t);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.a", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'A');
	/* remove */
	assert_int_equal(fs_removexattr(t->fs, NULL, f, "user.b"), 0);
	assert_int_equal(fs_removexattr(t->fs, NULL, f, "user.b"), -ENODATA);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.b", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(fs_listxattr(t->fs, NULL, f, buf, sizeof(buf)), 18);
	assert_int_equal(fs_getxattr(t->fs, NULL, 4242, "user.a", buf, sizeof(buf)), -ENOENT);
	assert_int_equal(fs_setxattr(t->fs, NULL, 4242, "user.a", "x", 1, 0), -ENOENT);
}

static void test_fs_xattr_flags(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", NULL, 0);
	char buf[16];

	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "1", 1, XATTR_REPLACE), -ENODATA);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "1", 1, XATTR_CREATE), 0);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "2", 1, XATTR_CREATE), -EEXIST);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "3", 1, XATTR_REPLACE), 0);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.k", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], '3');
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "4", 1, XATTR_CREATE | XATTR_REPLACE),
	                 -EINVAL);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.k", "4", 1, 0x10), -EINVAL);
}

static void test_fs_xattr_names_and_sizes(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", NULL, 0);
	char name[300], *big = malloc(FS_XATTR_SIZE_MAX + 1), *got = malloc(FS_XATTR_SIZE_MAX);

	assert_non_null(big);
	assert_non_null(got);
	memset(big, 'v', FS_XATTR_SIZE_MAX + 1);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.big", big, FS_XATTR_SIZE_MAX, 0), 0);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.big", got, FS_XATTR_SIZE_MAX),
	                 FS_XATTR_SIZE_MAX);
	assert_memory_equal(got, big, FS_XATTR_SIZE_MAX);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.big", big, FS_XATTR_SIZE_MAX + 1, 0), -E2BIG);
	memcpy(name, "user.", 5);
	memset(name + 5, 'n', 250);
	name[255] = '\0';
	assert_int_equal(fs_setxattr(t->fs, NULL, f, name, "x", 1, 0), 0);
	name[255] = 'n';
	name[256] = '\0';
	assert_int_equal(fs_setxattr(t->fs, NULL, f, name, "x", 1, 0), -ERANGE);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "", "x", 1, 0), -ERANGE);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "system.posix_acl_access", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "bogus.name", "x", 1, 0), -EOPNOTSUPP);
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "system.posix_acl_access", got, 10), -ENODATA);
	free(big);
	free(got);
}

static void test_fs_xattr_permissions(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", NULL, 0);   /* root's, 0644 */
	struct fs_entry e;
	char buf[64];

	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.pub", "p", 1, 0), 0);
	assert_int_equal(fs_setxattr(t->fs, &cred_alice, f, "user.x", "x", 1, 0), -EACCES);
	assert_int_equal(fs_removexattr(t->fs, &cred_alice, f, "user.pub"), -EACCES);
	assert_int_equal(fs_getxattr(t->fs, &cred_alice, f, "user.pub", buf, sizeof(buf)), 1);
	/* trusted.*: root only, and hidden from others' listings */
	assert_int_equal(fs_setxattr(t->fs, &cred_root, f, "trusted.t", "t", 1, 0), 0);
	assert_int_equal(fs_setxattr(t->fs, &cred_alice, f, "trusted.t", "t", 1, 0), -EPERM);
	assert_int_equal(fs_getxattr(t->fs, &cred_alice, f, "trusted.t", buf, sizeof(buf)), -EPERM);
	assert_int_equal(fs_listxattr(t->fs, &cred_alice, f, buf, sizeof(buf)), 9);
	assert_int_equal(fs_listxattr(t->fs, &cred_root, f, buf, sizeof(buf)), 19);
	/* security.*: the file's permissions */
	assert_int_equal(fs_setxattr(t->fs, &cred_root, f, "security.s", "s", 1, 0), 0);
	assert_int_equal(fs_getxattr(t->fs, &cred_alice, f, "security.s", buf, sizeof(buf)), 1);
	/* user.* only on files and directories */
	assert_int_equal(fs_symlink(t->fs, NULL, "target", ROOT, "ln", &e), 0);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_setxattr(t->fs, NULL, e.ino, "user.x", "x", 1, 0), -EPERM);
	assert_int_equal(fs_getxattr(t->fs, NULL, e.ino, "user.x", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(fs_setxattr(t->fs, NULL, e.ino, "trusted.x", "x", 1, 0), 0);
	/* on a directory */
	assert_int_equal(fs_setxattr(t->fs, NULL, ROOT, "user.dir", "d", 1, 0), 0);
	assert_int_equal(fs_getxattr(t->fs, &cred_bob, ROOT, "user.dir", buf, sizeof(buf)), 1);
}

static void test_fs_xattr_removed_with_inode(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", NULL, 0);
	uint64_t d = mkdir_(t->fs, ROOT, "d", 0755);

	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.a", "1", 1, 0), 0);
	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.b", "2", 1, 0), 0);
	assert_int_equal(fs_setxattr(t->fs, NULL, d, "user.c", "3", 1, 0), 0);
	assert_int_equal(count_xattr_keys(t->fs, f), 2);
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), 0);
	assert_int_equal(count_xattr_keys(t->fs, f), 0);
	assert_int_equal(fs_rmdir(t->fs, NULL, ROOT, "d"), 0);
	assert_int_equal(count_xattr_keys(t->fs, d), 0);
}

/* A file-capability value as setcap writes it: revision 2, no bits. */
static const char caps[20] = { 0, 0, 0, 2 };

static void set_caps(struct fs *fs, uint64_t f)
{
	char buf[32];

	assert_int_equal(fs_setxattr(fs, &cred_root, f, "security.capability", caps, sizeof(caps), 0), 0);
	assert_int_equal(fs_getxattr(fs, &cred_root, f, "security.capability", buf, sizeof(buf)),
	                 (ssize_t)sizeof(caps));
}

static bool has_caps(struct fs *fs, uint64_t f)
{
	char buf[32];
	ssize_t n = fs_getxattr(fs, &cred_root, f, "security.capability", buf, sizeof(buf));

	assert_true(n == (ssize_t)sizeof(caps) || n == -ENODATA);
	return n > 0;
}

static void test_fs_xattr_caps_killed(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", "data", 4);
	struct fs_file *fh;
	struct stat st = { 0 };
	char buf[8];

	assert_int_equal(fs_setxattr(t->fs, NULL, f, "user.keep", "1", 1, 0), 0);
	/* a write, even root's */
	set_caps(t->fs, f);
	assert_int_equal(fs_open(t->fs, &cred_root, f, O_WRONLY, &fh), 0);
	assert_int_equal(fs_write(t->fs, &cred_root, fh, "x", 1, 0), 1);
	assert_false(has_caps(t->fs, f));
	/* a write that fails takes nothing away */
	set_caps(t->fs, f);
	assert_int_equal(fs_write(t->fs, &cred_root, fh, "x", 1, -1), -EINVAL);
	assert_true(has_caps(t->fs, f));
	/* fallocate that extends the file */
	assert_int_equal(fs_fallocate(t->fs, NULL, fh, 0, 0, 8192), 0);
	assert_false(has_caps(t->fs, f));
	assert_int_equal(fs_release(t->fs, fh), 0);
	/* truncate, and open with O_TRUNC */
	set_caps(t->fs, f);
	st.st_size = 1;
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &st, FS_SET_ATTR_SIZE, NULL, NULL), 0);
	assert_false(has_caps(t->fs, f));
	set_caps(t->fs, f);
	assert_int_equal(fs_open(t->fs, &cred_root, f, O_WRONLY | O_TRUNC, &fh), 0);
	assert_int_equal(fs_release(t->fs, fh), 0);
	assert_false(has_caps(t->fs, f));
	/* chown; a chmod or a utimes leaves it */
	set_caps(t->fs, f);
	st.st_mode = 0755;
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &st, FS_SET_ATTR_MODE | FS_SET_ATTR_MTIME_NOW,
	                            NULL, NULL), 0);
	assert_true(has_caps(t->fs, f));
	st.st_uid = 1000;
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &st, FS_SET_ATTR_UID, NULL, NULL), 0);
	assert_false(has_caps(t->fs, f));
	/* the other attributes stay, and the removal is durable */
	tfs_remount(t);
	assert_false(has_caps(t->fs, f));
	assert_int_equal(fs_getxattr(t->fs, NULL, f, "user.keep", buf, sizeof(buf)), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_xattr_basic, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_xattr_flags, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_xattr_names_and_sizes, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_xattr_permissions, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_xattr_removed_with_inode, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_xattr_caps_killed, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
