/*
 * test_fs_attr.c - attributes and permissions in the fs core: permission
 * checks as unprivileged users (owner, group through a supplementary
 * group, other; root's overrides), access(2), the sticky bit, setattr
 * (chmod, chown/chgrp rules and S_ISUID/S_ISGID clearing, truncate,
 * explicit and UTIME_NOW/UTIME_OMIT times with nanoseconds), POSIX
 * timestamp updates, and atime under relatime, noatime and strictatime.
 */
#include "test_fs_common.h"

static void test_fs_permissions(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	struct fs_file *fh;
	uint64_t d, f, af;

	d = mkdir_(t->fs, ROOT, "rootdir", 0755);
	f = mkfile(t->fs, d, "secret", "s", 1);
	assert_int_equal(fs_setattr(t->fs, NULL, f, &(struct stat){ .st_mode = 0600 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	/* no write permission on the directory */
	assert_int_equal(fs_create(t->fs, &cred_alice, d, "x", 0644, O_RDWR | O_CREAT, &e, &fh),
	                 -EACCES);
	assert_int_equal(fs_mkdir(t->fs, &cred_alice, d, "x", 0755, &e), -EACCES);
	assert_int_equal(fs_symlink(t->fs, &cred_alice, "t", d, "x", &e), -EACCES);
	assert_int_equal(fs_unlink(t->fs, &cred_alice, d, "secret"), -EACCES);
	/* no read permission on the file */
	assert_int_equal(fs_open(t->fs, &cred_alice, f, O_RDONLY, &fh), -EACCES);
	assert_int_equal(fs_open(t->fs, &cred_alice, f, O_WRONLY, &fh), -EACCES);
	assert_int_equal(fs_open(t->fs, &cred_root, f, O_RDWR, &fh), 0);
	fs_release(t->fs, fh);
	{
		struct fs_dir *dh;
		uint64_t p = mkdir_(t->fs, ROOT, "noread", 0311);

		assert_int_equal(fs_opendir(t->fs, &cred_alice, d, 0, &dh), 0);
		assert_int_equal(fs_releasedir(t->fs, dh), 0);
		assert_int_equal(fs_opendir(t->fs, &cred_alice, p, 0, &dh), -EACCES);
		assert_int_equal(fs_opendir(t->fs, &cred_alice, f, 0, &dh), -ENOTDIR);
	}
	/* access(2) */
	assert_int_equal(fs_access(t->fs, &cred_alice, f, R_OK), -EACCES);
	assert_int_equal(fs_access(t->fs, &cred_alice, f, F_OK), 0);
	assert_int_equal(fs_access(t->fs, &cred_alice, d, R_OK | X_OK), 0);
	assert_int_equal(fs_access(t->fs, &cred_alice, d, W_OK), -EACCES);
	assert_int_equal(fs_access(t->fs, &cred_root, f, R_OK | W_OK), 0);
	assert_int_equal(fs_access(t->fs, &cred_root, f, X_OK), -EACCES); /* no x bit anywhere */
	assert_int_equal(fs_access(t->fs, &cred_root, d, X_OK), 0);
	assert_int_equal(fs_access(t->fs, &cred_alice, 31337, F_OK), -ENOENT);
	assert_int_equal(fs_access(t->fs, &cred_alice, f, 0x40), -EINVAL);
	/* group permission through a supplementary group */
	assert_int_equal(fs_setattr(t->fs, NULL, f, &(struct stat){ .st_gid = 100, .st_mode = 0640 },
	                            FS_SET_ATTR_GID | FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_access(t->fs, &cred_alice, f, R_OK), 0);
	assert_int_equal(fs_access(t->fs, &cred_alice, f, W_OK), -EACCES);
	assert_int_equal(fs_access(t->fs, &cred_bob, f, R_OK), -EACCES);
	/* alice's own file in a world-writable directory */
	assert_int_equal(fs_create(t->fs, &cred_alice, ROOT, "mine", 0600, O_RDWR | O_CREAT, &e, &fh), 0);
	af = e.ino;
	assert_int_equal(e.attr.st_uid, 1000);
	fs_release(t->fs, fh);
	fs_forget(t->fs, af, 1);
	assert_int_equal(fs_open(t->fs, &cred_bob, af, O_RDONLY, &fh), -EACCES);
	assert_int_equal(fs_open(t->fs, &cred_alice, af, O_RDWR | O_TRUNC, &fh), 0);
	fs_release(t->fs, fh);
}


static void test_fs_sticky(void **state)
{
	struct tfs *t = *state;
	struct fs_entry e;
	struct fs_file *fh;
	uint64_t tmp;

	tmp = mkdir_(t->fs, ROOT, "tmp", 01777);
	assert_int_equal(stat_of(t->fs, tmp).st_mode & 07777, 01755);
	assert_int_equal(fs_setattr(t->fs, NULL, tmp, &(struct stat){ .st_mode = 01777 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_create(t->fs, &cred_alice, tmp, "a", 0666, O_RDWR | O_CREAT, &e, &fh), 0);
	fs_release(t->fs, fh);
	fs_forget(t->fs, e.ino, 1);
	assert_int_equal(fs_unlink(t->fs, &cred_bob, tmp, "a"), -EPERM);
	assert_int_equal(fs_rename(t->fs, &cred_bob, tmp, "a", tmp, "b", 0), -EPERM);
	assert_int_equal(fs_create(t->fs, &cred_bob, tmp, "b", 0666, O_RDWR | O_CREAT, &e, &fh), 0);
	fs_release(t->fs, fh);
	fs_forget(t->fs, e.ino, 1);
	/* replacing bob's file is removing it */
	assert_int_equal(fs_rename(t->fs, &cred_alice, tmp, "a", tmp, "b", 0), -EPERM);
	assert_int_equal(fs_unlink(t->fs, &cred_alice, tmp, "a"), 0);
	assert_int_equal(fs_unlink(t->fs, &cred_root, tmp, "b"), 0);
}


static void test_fs_setattr(void **state)
{
	struct tfs *t = *state;
	struct stat st, in;
	struct fs_file *fh;
	uint64_t f;

	f = mkfile(t->fs, ROOT, "f", "abcdef", 6);
	assert_int_equal(fs_setattr(t->fs, NULL, f, &(struct stat){ .st_uid = 1000, .st_gid = 1000 },
	                            FS_SET_ATTR_UID | FS_SET_ATTR_GID, NULL, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	/* chmod: owner only; non-members lose S_ISGID */
	assert_int_equal(fs_setattr(t->fs, &cred_bob, f, &(struct stat){ .st_mode = 0777 },
	                            FS_SET_ATTR_MODE, NULL, NULL), -EPERM);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_mode = 06755 },
	                            FS_SET_ATTR_MODE, NULL, &st), 0);
	assert_int_equal(st.st_mode & 07777, 06755);
	assert_true(S_ISREG(st.st_mode));
	/* chown: only root; chgrp: the owner, to a group it is in */
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_uid = 1001 },
	                            FS_SET_ATTR_UID, NULL, NULL), -EPERM);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_gid = 5 },
	                            FS_SET_ATTR_GID, NULL, NULL), -EPERM);
	assert_int_equal(fs_setattr(t->fs, &cred_bob, f, &(struct stat){ .st_gid = 1000 },
	                            FS_SET_ATTR_GID, NULL, NULL), -EPERM);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_gid = 100 },
	                            FS_SET_ATTR_GID, NULL, &st), 0);
	assert_int_equal(st.st_gid, 100);
	/* chown cleared S_ISUID, and S_ISGID because group execute is set */
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_mode = 06745 },
	                            FS_SET_ATTR_MODE, NULL, &st), 0);
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &(struct stat){ .st_uid = 1001 },
	                            FS_SET_ATTR_UID, NULL, &st), 0);
	assert_int_equal(st.st_mode & 07777, 02745);   /* no group x: S_ISGID stays */
	/* writing as a non-root user clears S_ISUID/S_ISGID */
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &(struct stat){ .st_mode = 06777 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_open(t->fs, &cred_alice, f, O_WRONLY, &fh), 0);
	assert_int_equal(fs_write(t->fs, &cred_alice, fh, "z", 1, 0), 1);
	assert_int_equal(stat_of(t->fs, f).st_mode & 07777, 0777);
	assert_int_equal(fs_setattr(t->fs, &cred_root, f, &(struct stat){ .st_mode = 06777 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_write(t->fs, &cred_root, fh, "z", 1, 0), 1);  /* root keeps them */
	assert_int_equal(stat_of(t->fs, f).st_mode & 07777, 06777);
	/* ftruncate through the handle */
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_size = 3 },
	                            FS_SET_ATTR_SIZE, fh, &st), 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0777);
	fs_release(t->fs, fh);
	assert_int_equal(fs_open(t->fs, &cred_alice, f, O_RDONLY, &fh), 0);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_size = 3 },
	                            FS_SET_ATTR_SIZE, fh, NULL), -EBADF);
	fs_release(t->fs, fh);
	/* truncate needs write permission; only files */
	assert_int_equal(fs_setattr(t->fs, NULL, f, &(struct stat){ .st_mode = 0644 },
	                            FS_SET_ATTR_MODE, NULL, NULL), 0);
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &(struct stat){ .st_size = 0 },
	                            FS_SET_ATTR_SIZE, NULL, NULL), -EACCES);
	assert_int_equal(fs_setattr(t->fs, NULL, ROOT, &(struct stat){ .st_size = 0 },
	                            FS_SET_ATTR_SIZE, NULL, NULL), -EISDIR);
	assert_int_equal(fs_setattr(t->fs, NULL, f, &(struct stat){ .st_size = -1 },
	                            FS_SET_ATTR_SIZE, NULL, NULL), -EINVAL);
	assert_int_equal(fs_setattr(t->fs, NULL, f,
	                            &(struct stat){ .st_size = (off_t)FS_MAX_FILE_SIZE + 1 },
	                            FS_SET_ATTR_SIZE, NULL, NULL), -EFBIG);
	{
		struct fs_entry e;

		assert_int_equal(fs_symlink(t->fs, NULL, "x", ROOT, "l", &e), 0);
		fs_forget(t->fs, e.ino, 1);
		assert_int_equal(fs_setattr(t->fs, NULL, e.ino, &(struct stat){ .st_size = 0 },
		                            FS_SET_ATTR_SIZE, NULL, NULL), -EINVAL);
	}
	assert_int_equal(fs_setattr(t->fs, NULL, 99999, &(struct stat){ .st_size = 0 },
	                            FS_SET_ATTR_SIZE, NULL, NULL), -ENOENT);

	/* times: explicit values with nanoseconds by the owner only */
	memset(&in, 0, sizeof(in));
	in.st_atim = (struct timespec){ 1000000000, 123456789 };
	in.st_mtim = (struct timespec){ 1200000000, 987654321 };
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &in, FS_SET_ATTR_ATIME | FS_SET_ATTR_MTIME,
	                            NULL, NULL), -EPERM);
	assert_int_equal(fs_setattr(t->fs, &cred_bob, f, &in, FS_SET_ATTR_ATIME | FS_SET_ATTR_MTIME,
	                            NULL, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_int_equal(st.st_mtim.tv_nsec, 987654321);
	/* UTIME_OMIT leaves one alone; UTIME_NOW sets now */
	in.st_atim.tv_nsec = UTIME_OMIT;
	in.st_mtim.tv_nsec = UTIME_NOW;
	assert_int_equal(fs_setattr(t->fs, &cred_bob, f, &in, FS_SET_ATTR_ATIME | FS_SET_ATTR_MTIME,
	                            NULL, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_true(st.st_mtim.tv_sec > 1600000000);
	/* "now" needs write permission if not the owner */
	assert_int_equal(fs_setattr(t->fs, &cred_alice, f, &in, FS_SET_ATTR_ATIME_NOW, NULL, NULL),
	                 -EACCES);
	in.st_atim.tv_nsec = 2000000000;
	assert_int_equal(fs_setattr(t->fs, &cred_bob, f, &in, FS_SET_ATTR_ATIME, NULL, NULL), -EINVAL);
	tfs_remount(t);
	st = stat_of(t->fs, f);
	assert_int_equal(st.st_atim.tv_nsec, 123456789);
	assert_int_equal(st.st_uid, 1001);
}


static void test_fs_timestamps(void **state)
{
	struct tfs *t = *state;
	struct stat d0, d1, f0, f1;
	struct fs_file *fh;
	uint64_t d, f;

	d = mkdir_(t->fs, ROOT, "d", 0755);
	d0 = stat_of(t->fs, d);
	usleep(2000);
	f = mkfile(t->fs, d, "f", NULL, 0);
	d1 = stat_of(t->fs, d);
	f0 = stat_of(t->fs, f);
	assert_true(ts_after(d1.st_mtim, f0.st_mtim) && ts_after(d1.st_ctim, f0.st_ctim));
	assert_false(ts_after(d0.st_mtim, d1.st_mtim));
	usleep(2000);
	assert_int_equal(fs_open(t->fs, NULL, f, O_WRONLY, &fh), 0);
	assert_int_equal(fs_write(t->fs, NULL, fh, "x", 1, 0), 1);
	f1 = stat_of(t->fs, f);
	assert_false(ts_after(f0.st_mtim, f1.st_mtim));
	assert_false(ts_after(f0.st_ctim, f1.st_ctim));
	assert_int_equal(stat_of(t->fs, d).st_mtim.tv_nsec, d1.st_mtim.tv_nsec);  /* dir untouched */
	fs_release(t->fs, fh);
	usleep(2000);
	assert_int_equal(fs_unlink(t->fs, NULL, d, "f"), 0);
	assert_false(ts_after(d1.st_mtim, stat_of(t->fs, d).st_mtim));
	/* chmod changes ctime, not mtime */
	d0 = stat_of(t->fs, d);
	usleep(2000);
	assert_int_equal(fs_setattr(t->fs, NULL, d, &(struct stat){ .st_mode = 0700 },
	                            FS_SET_ATTR_MODE, NULL, &d1), 0);
	assert_int_equal(d1.st_mtim.tv_nsec, d0.st_mtim.tv_nsec);
	assert_false(ts_after(d0.st_ctim, d1.st_ctim));
}


static void test_fs_atime(void **state)
{
	struct tfs *t = *state;
	uint64_t f = mkfile(t->fs, ROOT, "f", "abc", 3), d = mkdir_(t->fs, ROOT, "d", 0755);
	struct stat old = { 0 }, st;
	struct fs_file *fh;
	char buf[4];

	/* put atime in the past, before mtime */
	old.st_atim = (struct timespec){ 1000, 0 };
	assert_int_equal(fs_setattr(t->fs, NULL, f, &old, FS_SET_ATTR_ATIME, NULL, NULL), 0);
	assert_int_equal(fs_setattr(t->fs, NULL, d, &old, FS_SET_ATTR_ATIME, NULL, NULL), 0);
	/* O_NOATIME reads leave it */
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY | O_NOATIME, &fh), 0);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	fs_release(t->fs, fh);
	assert_int_equal(stat_of(t->fs, f).st_atim.tv_sec, 1000);
	/* relatime: the first read updates it, the next does not */
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh), 0);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	st = stat_of(t->fs, f);
	assert_true(st.st_atim.tv_sec > 1600000000);
	usleep(2000);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	assert_int_equal(stat_of(t->fs, f).st_atim.tv_nsec, st.st_atim.tv_nsec);
	fs_release(t->fs, fh);
	/* listing a directory from the start reads it */
	{
		char names[64];

		list_dir(t->fs, d, names, sizeof(names));
		assert_true(stat_of(t->fs, d).st_atim.tv_sec > 1600000000);
	}
	/* noatime and strictatime mounts */
	assert_int_equal(fs_setattr(t->fs, NULL, f, &old, FS_SET_ATTR_ATIME, NULL, NULL), 0);
	assert_int_equal(fs_close(t->fs), 0);
	t->mo.atime = FS_ATIME_NOATIME;
	tfs_mount(t);
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh), 0);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	assert_int_equal(stat_of(t->fs, f).st_atim.tv_sec, 1000);
	fs_release(t->fs, fh);
	assert_int_equal(fs_close(t->fs), 0);
	t->mo.atime = FS_ATIME_STRICT;
	tfs_mount(t);
	assert_int_equal(fs_open(t->fs, NULL, f, O_RDONLY, &fh), 0);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	st = stat_of(t->fs, f);
	usleep(2000);
	assert_int_equal(fs_read(t->fs, fh, buf, 3, 0), 3);
	assert_true(stat_of(t->fs, f).st_atim.tv_nsec != st.st_atim.tv_nsec ||
	            stat_of(t->fs, f).st_atim.tv_sec != st.st_atim.tv_sec);
	fs_release(t->fs, fh);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_permissions, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_sticky, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_setattr, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_timestamps, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_atime, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
