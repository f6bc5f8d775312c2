/*
 * test_fs_rename.c - rename(2)/renameat2(2) in the fs core: within and
 * across directories, replacing files and empty directories, the errors
 * (ENOENT, EEXIST with RENAME_NOREPLACE, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL
 * into a descendant, EBUSY for "." and ".."), RENAME_EXCHANGE of files,
 * directories and one of each, renaming onto another link of the same file,
 * link counts and parent pointers after moves, and the orphaning of a
 * replaced file that is still open.
 */
#include "test_fs_common.h"

static void test_fs_rename_same_dir(void **state)
{
	struct tfs *t = *state;
	char names[256];
	uint64_t f = mkfile(t->fs, ROOT, "a", "A", 1);
	struct stat before = stat_of(t->fs, ROOT);

	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", 0), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "a"), -ENOENT);
	assert_int_equal(lookup_ino(t->fs, ROOT, "b"), (int64_t)f);
	list_dir(t->fs, ROOT, names, sizeof(names));
	assert_string_equal(names, "b");
	assert_int_equal(stat_of(t->fs, ROOT).st_size, before.st_size);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "c", 0), -ENOENT);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", ROOT, "b", 0), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "b"), (int64_t)f);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", ROOT, ".", 0), -EBUSY);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "..", ROOT, "x", 0), -EBUSY);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", ROOT, "x", 0x100), -EINVAL);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", ROOT, "x",
	                           RENAME_NOREPLACE | RENAME_EXCHANGE), -EINVAL);
	assert_int_equal(fs_rename(t->fs, NULL, f, "b", ROOT, "x", 0), -ENOTDIR);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", f, "x", 0), -ENOTDIR);
	{
		char n256[257];

		memset(n256, 'r', 256);
		n256[256] = '\0';
		assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", ROOT, n256, 0), -ENAMETOOLONG);
	}
	tfs_remount(t);
	assert_int_equal(lookup_ino(t->fs, ROOT, "b"), (int64_t)f);
}

static void test_fs_rename_replace_file(void **state)
{
	struct tfs *t = *state;
	uint64_t a = mkfile(t->fs, ROOT, "a", "AAA", 3);
	uint64_t b = mkfile(t->fs, ROOT, "b", "BBBB", 4);
	size_t len;
	uint8_t *buf;

	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", 0), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "b"), (int64_t)a);
	assert_int_equal(fs_getattr(t->fs, b, &(struct stat){ 0 }), -ENOENT);
	buf = read_all(t->fs, a, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "AAA", 3);
	free(buf);
	assert_int_equal(stat_of(t->fs, ROOT).st_size, 1);   /* one entry left */
}

static void test_fs_rename_replaced_file_open(void **state)
{
	struct tfs *t = *state;
	struct fs_file *fh;
	char buf[8];
	uint64_t b;

	mkfile(t->fs, ROOT, "a", "new", 3);
	b = mkfile(t->fs, ROOT, "b", "old", 3);
	assert_int_equal(fs_open(t->fs, NULL, b, O_RDONLY, &fh), 0);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", 0), 0);
	assert_int_equal(fs_read(t->fs, fh, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "old", 3);
	assert_int_equal(stat_of(t->fs, b).st_nlink, 0);
	assert_int_equal(fs_release(t->fs, fh), 0);
	assert_int_equal(fs_getattr(t->fs, b, &(struct stat){ 0 }), -ENOENT);
}

static void test_fs_rename_across_dirs(void **state)
{
	struct tfs *t = *state;
	uint64_t d1 = mkdir_(t->fs, ROOT, "d1", 0755);
	uint64_t d2 = mkdir_(t->fs, ROOT, "d2", 0755);
	uint64_t sub = mkdir_(t->fs, d1, "sub", 0755);
	uint64_t f = mkfile(t->fs, sub, "f", "x", 1);

	assert_int_equal(stat_of(t->fs, d1).st_nlink, 3);
	assert_int_equal(fs_rename(t->fs, NULL, d1, "sub", d2, "moved", 0), 0);
	assert_int_equal(stat_of(t->fs, d1).st_nlink, 2);
	assert_int_equal(stat_of(t->fs, d2).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, d1).st_size, 0);
	assert_int_equal(stat_of(t->fs, d2).st_size, 1);
	assert_int_equal(lookup_ino(t->fs, sub, ".."), (int64_t)d2);
	assert_int_equal(lookup_ino(t->fs, sub, "f"), (int64_t)f);
	/* a file across directories */
	assert_int_equal(fs_rename(t->fs, NULL, sub, "f", d1, "f2", 0), 0);
	assert_int_equal(lookup_ino(t->fs, d1, "f2"), (int64_t)f);
	assert_int_equal(stat_of(t->fs, d1).st_nlink, 2);
	tfs_remount(t);
	assert_int_equal(lookup_ino(t->fs, sub, ".."), (int64_t)d2);
	assert_int_equal(stat_of(t->fs, d2).st_nlink, 3);
	/* permission on both parents */
	assert_int_equal(fs_rename(t->fs, &cred_alice, d1, "f2", d2, "f3", 0), -EACCES);
}

static void test_fs_rename_directories(void **state)
{
	struct tfs *t = *state;
	uint64_t a = mkdir_(t->fs, ROOT, "a", 0755);
	uint64_t b = mkdir_(t->fs, ROOT, "b", 0755);
	uint64_t c = mkdir_(t->fs, b, "c", 0755);
	uint64_t e = mkdir_(t->fs, ROOT, "empty", 0755);
	uint64_t f = mkfile(t->fs, ROOT, "file", NULL, 0);

	(void)c;
	/* over a non-empty directory */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", 0), -ENOTEMPTY);
	/* directory over file, file over directory */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "file", 0), -ENOTDIR);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "file", ROOT, "a", 0), -EISDIR);
	/* into itself or a descendant */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", b, "x", 0), -EINVAL);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "b", c, "x", 0), -EINVAL);
	/* onto an ancestor: it is not empty */
	assert_int_equal(fs_rename(t->fs, NULL, b, "c", ROOT, "b", 0), -ENOTEMPTY);
	/* over an empty directory: it goes, link counts follow */
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 5);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "empty", 0), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "empty"), (int64_t)a);
	assert_int_equal(fs_getattr(t->fs, e, &(struct stat){ 0 }), -ENOENT);
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 4);
	/* over an empty directory in another parent */
	mkdir_(t->fs, b, "gone", 0755);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "empty", b, "gone", 0), 0);
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, b).st_nlink, 4);
	assert_int_equal(lookup_ino(t->fs, a, ".."), (int64_t)b);
	/* moving a directory needs write permission on it, for its ".." */
	{
		uint64_t pub = mkdir_(t->fs, ROOT, "pub", 0777);
		struct fs_entry en;

		assert_int_equal(fs_setattr(t->fs, NULL, pub, &(struct stat){ .st_mode = 0777 },
		                            FS_SET_ATTR_MODE, NULL, NULL), 0);
		assert_int_equal(fs_mkdir(t->fs, &cred_root, pub, "rootdir", 0755, &en), 0);
		fs_forget(t->fs, en.ino, 1);
		assert_int_equal(fs_setattr(t->fs, NULL, ROOT, &(struct stat){ .st_mode = 0777 },
		                            FS_SET_ATTR_MODE, NULL, NULL), 0);
		assert_int_equal(fs_rename(t->fs, &cred_alice, pub, "rootdir", ROOT, "r2", 0), -EACCES);
		assert_int_equal(fs_rename(t->fs, &cred_alice, pub, "rootdir", pub, "r2", 0), 0);
	}
	(void)f;
}

static void test_fs_rename_exchange(void **state)
{
	struct tfs *t = *state;
	uint64_t d1 = mkdir_(t->fs, ROOT, "d1", 0755);
	uint64_t d2 = mkdir_(t->fs, ROOT, "d2", 0755);
	uint64_t f = mkfile(t->fs, d1, "f", "F", 1);
	uint64_t sub = mkdir_(t->fs, d2, "sub", 0755);
	uint64_t g = mkfile(t->fs, d1, "g", "G", 1);

	assert_int_equal(fs_rename(t->fs, NULL, d1, "f", d2, "none", RENAME_EXCHANGE), -ENOENT);
	/* two files in one directory */
	assert_int_equal(fs_rename(t->fs, NULL, d1, "f", d1, "g", RENAME_EXCHANGE), 0);
	assert_int_equal(lookup_ino(t->fs, d1, "f"), (int64_t)g);
	assert_int_equal(lookup_ino(t->fs, d1, "g"), (int64_t)f);
	/* a file and a directory across parents: link counts move */
	assert_int_equal(fs_rename(t->fs, NULL, d1, "f", d2, "sub", RENAME_EXCHANGE), 0);
	assert_int_equal(lookup_ino(t->fs, d1, "f"), (int64_t)sub);
	assert_int_equal(lookup_ino(t->fs, d2, "sub"), (int64_t)g);
	assert_int_equal(stat_of(t->fs, d1).st_nlink, 3);
	assert_int_equal(stat_of(t->fs, d2).st_nlink, 2);
	assert_int_equal(lookup_ino(t->fs, sub, ".."), (int64_t)d1);
	assert_int_equal(stat_of(t->fs, d1).st_size, 2);
	assert_int_equal(stat_of(t->fs, d2).st_size, 1);
	/* a directory with its own ancestor: EINVAL */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "d1", sub, "x", 0), -EINVAL);
	mkfile(t->fs, sub, "x", NULL, 0);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "d1", sub, "x", RENAME_EXCHANGE), -EINVAL);
	assert_int_equal(fs_rename(t->fs, NULL, sub, "x", ROOT, "d1", RENAME_EXCHANGE), -EINVAL);
	/* two directories: non-empty is fine for an exchange */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "d1", ROOT, "d2", RENAME_EXCHANGE), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "d1"), (int64_t)d2);
	assert_int_equal(stat_of(t->fs, ROOT).st_nlink, 4);
	tfs_remount(t);
	assert_int_equal(lookup_ino(t->fs, ROOT, "d2"), (int64_t)d1);
	assert_int_equal(lookup_ino(t->fs, d1, "f"), (int64_t)sub);
}

static void test_fs_rename_hard_links(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	uint64_t f = mkfile(t->fs, ROOT, "a", "x", 1);

	assert_int_equal(fs_link(t->fs, NULL, f, ROOT, "b", &e), 0);
	fs_forget(t->fs, f, 1);
	/* two names of one inode: nothing happens, both stay */
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", 0), 0);
	assert_int_equal(lookup_ino(t->fs, ROOT, "a"), (int64_t)f);
	assert_int_equal(lookup_ino(t->fs, ROOT, "b"), (int64_t)f);
	assert_int_equal(stat_of(t->fs, f).st_nlink, 2);
	assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "b", RENAME_NOREPLACE), -EEXIST);
	/* replacing a different file that has another link: it keeps that link */
	{
		uint64_t g = mkfile(t->fs, ROOT, "g", "y", 1);

		assert_int_equal(fs_link(t->fs, NULL, g, ROOT, "g2", &e), 0);
		fs_forget(t->fs, g, 1);
		assert_int_equal(fs_rename(t->fs, NULL, ROOT, "a", ROOT, "g", 0), 0);
		assert_int_equal(stat_of(t->fs, g).st_nlink, 1);
		assert_int_equal(stat_of(t->fs, f).st_nlink, 2);
		assert_int_equal(lookup_ino(t->fs, ROOT, "g2"), (int64_t)g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_rename_same_dir, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_replace_file, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_replaced_file_open, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_across_dirs, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_directories, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_exchange, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_rename_hard_links, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
