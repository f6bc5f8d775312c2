/*
 * test_fs_readdir.c - directory listing in the fs core: order, "." and
 * "..", types, readdirplus attributes and its lookup counting, paging by
 * cookie, a cookie that is too old, the cursor's stability while entries
 * are added and removed between pages, and a directory removed while open.
 */
#include "test_fs_common.h"

struct rec_fill {
	int n, limit;
	char names[64][FS_NAME_MAX + 1];
	struct fs_entry e[64];
	off_t off[64];
};

static int rec_cb(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct rec_fill *r = arg;

	if (r->n == r->limit || r->n == 64)
		return 1;
	snprintf(r->names[r->n], sizeof(r->names[0]), "%s", name);
	r->e[r->n] = *e;
	r->off[r->n] = next_off;
	r->n++;
	return 0;
}

static int fail_cb(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	(void)arg;
	(void)name;
	(void)e;
	(void)next_off;
	return -EIO;
}

static void test_fs_readdir_basic(void **state)
{
	struct tfs *t = *state;
	struct rec_fill r = { .limit = 64 };
	struct fs_dir *dh;
	struct fs_entry en;
	uint64_t d = mkdir_(t->fs, ROOT, "d", 0755);
	uint64_t f;
	char names[512];

	f = mkfile(t->fs, d, "zeta", "12345", 5);
	mkdir_(t->fs, d, "alpha", 0755);
	assert_int_equal(fs_symlink(t->fs, NULL, "x", d, "mid", &en), 0);
	fs_forget(t->fs, en.ino, 1);
	assert_int_equal(fs_opendir(t->fs, NULL, d, 0, &dh), 0);
	assert_int_equal(fs_readdir(t->fs, dh, 0, rec_cb, &r), 5);
	assert_string_equal(r.names[0], ".");
	assert_int_equal(r.e[0].ino, d);
	assert_string_equal(r.names[1], "..");
	assert_int_equal(r.e[1].ino, ROOT);
	assert_string_equal(r.names[2], "alpha");
	assert_true(S_ISDIR(r.e[2].attr.st_mode));
	assert_string_equal(r.names[3], "mid");
	assert_true(S_ISLNK(r.e[3].attr.st_mode));
	assert_string_equal(r.names[4], "zeta");
	assert_true(S_ISREG(r.e[4].attr.st_mode));
	assert_int_equal(r.e[4].ino, f);
	assert_int_equal(r.e[4].attr.st_ino, f);
	assert_int_equal(r.e[4].attr.st_size, 0);   /* plain readdir: type and ino only */
	assert_int_equal(fs_readdir(t->fs, dh, r.off[4], rec_cb, &r), 0);
	/* plus: full attributes */
	r.n = 0;
	assert_int_equal(fs_readdirplus(t->fs, dh, 0, rec_cb, &r), 5);
	assert_int_equal(r.e[4].attr.st_size, 5);
	assert_int_equal(r.e[4].attr.st_nlink, 1);
	assert_int_equal(r.e[2].attr.st_nlink, 2);
	for (int i = 2; i < 5; i++)
		fs_forget(t->fs, r.e[i].ino, 1);
	/* a callback error stops the listing */
	assert_int_equal(fs_readdir(t->fs, dh, 0, fail_cb, NULL), -EIO);
	assert_int_equal(fs_releasedir(t->fs, dh), 0);
	list_dir(t->fs, ROOT, names, sizeof(names));
	assert_string_equal(names, "d");
	list_dir(t->fs, (uint64_t)lookup_ino(t->fs, d, "alpha"), names, sizeof(names));
	assert_string_equal(names, "");
	assert_int_equal(fs_releasedir(t->fs, NULL), 0);
}

static void test_fs_readdirplus_counts_lookups(void **state)
{
	struct tfs *t = *state;
	struct rec_fill r = { .limit = 64 };
	struct fs_dir *dh;
	uint64_t f = mkfile(t->fs, ROOT, "f", "x", 1);
	struct stat st;

	assert_int_equal(fs_opendir(t->fs, NULL, ROOT, 0, &dh), 0);
	assert_int_equal(fs_readdirplus(t->fs, dh, 0, rec_cb, &r), 3);
	assert_int_equal(r.e[2].ino, f);
	fs_releasedir(t->fs, dh);
	/* the kernel now holds one lookup: after unlink the inode still answers */
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), 0);
	assert_int_equal(fs_getattr(t->fs, f, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	fs_forget(t->fs, f, 1);
	assert_int_equal(fs_getattr(t->fs, f, &st), -ENOENT);
	/* an entry the callback refuses is not counted */
	f = mkfile(t->fs, ROOT, "g", "x", 1);
	r.n = 0;
	r.limit = 2;
	assert_int_equal(fs_opendir(t->fs, NULL, ROOT, 0, &dh), 0);
	assert_int_equal(fs_readdirplus(t->fs, dh, 0, rec_cb, &r), 2);
	fs_releasedir(t->fs, dh);
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "g"), 0);
	assert_int_equal(fs_getattr(t->fs, f, &st), -ENOENT);
}

static void test_fs_readdir_paging_cookies(void **state)
{
	struct tfs *t = *state;
	struct rec_fill r = { .limit = 3 };
	struct fs_dir *dh;
	char name[8];
	off_t first_page_end, second_page_end;

	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		mkfile(t->fs, ROOT, name, NULL, 0);
	}
	assert_int_equal(fs_opendir(t->fs, NULL, ROOT, 0, &dh), 0);
	assert_int_equal(fs_readdir(t->fs, dh, 0, rec_cb, &r), 3);     /* . .. n00 */
	first_page_end = r.off[2];
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, first_page_end, rec_cb, &r), 3);
	assert_string_equal(r.names[0], "n01");
	second_page_end = r.off[2];
	/* the kernel may resume inside the last page (after n01) ... */
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, second_page_end - 2, rec_cb, &r), 3);
	assert_string_equal(r.names[0], "n02");
	/* ... or the one before it (after n02, page two) */
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, second_page_end - 1, rec_cb, &r), 3);
	assert_string_equal(r.names[0], "n03");
	/* older cookies are gone */
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, first_page_end, rec_cb, &r), -EINVAL);
	assert_int_equal(fs_readdir(t->fs, dh, 1000000, rec_cb, &r), -EINVAL);
	assert_int_equal(fs_readdir(t->fs, dh, -5, rec_cb, &r), -EINVAL);
	/* 1 resumes after ".", 2 after ".." */
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, 1, rec_cb, &r), 3);
	assert_string_equal(r.names[0], "..");
	r.n = 0;
	assert_int_equal(fs_readdir(t->fs, dh, 2, rec_cb, &r), 3);
	assert_string_equal(r.names[0], "n00");
	/* a call whose first entry does not fit takes nothing and keeps the
	 * cookies of the last two calls */
	second_page_end = r.off[2];
	r.n = 0;
	r.limit = 0;
	assert_int_equal(fs_readdir(t->fs, dh, second_page_end, rec_cb, &r), 0);
	r.limit = 1;
	assert_int_equal(fs_readdir(t->fs, dh, second_page_end, rec_cb, &r), 1);
	assert_string_equal(r.names[0], "n03");
	fs_releasedir(t->fs, dh);
}

/* Entries added and removed between pages: every entry present throughout
 * is listed exactly once, removed ones never after their removal. */
static void test_fs_readdir_stable_under_changes(void **state)
{
	struct tfs *t = *state;
	const char *initial[] = { "b", "d", "f", "h", "j" };
	struct rec_fill r = { .limit = 2 };
	char seen[512] = "";
	struct fs_dir *dh;
	off_t off = 0;
	int pages = 0, got;

	for (size_t i = 0; i < 5; i++)
		mkfile(t->fs, ROOT, initial[i], NULL, 0);
	assert_int_equal(fs_opendir(t->fs, NULL, ROOT, 0, &dh), 0);
	while ((got = fs_readdir(t->fs, dh, off, rec_cb, &r)) > 0) {
		for (int i = 0; i < r.n; i++) {
			strcat(seen, r.names[i]);
			strcat(seen, ",");
		}
		off = r.off[r.n - 1];
		r.n = 0;
		if (++pages == 2) {
			/* the cursor is after "d": add before and after it, and
			 * remove one already listed and one not yet listed */
			mkfile(t->fs, ROOT, "a", NULL, 0);
			mkfile(t->fs, ROOT, "c", NULL, 0);
			mkfile(t->fs, ROOT, "e", NULL, 0);
			mkfile(t->fs, ROOT, "k", NULL, 0);
			assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "b"), 0);
			assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "f"), 0);
			/* "d" itself, the cursor's name, goes too */
			assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "d"), 0);
		}
	}
	assert_int_equal(got, 0);
	assert_string_equal(seen, ".,..,b,d,e,h,j,k,");
	fs_releasedir(t->fs, dh);
}

static void test_fs_readdir_removed_dir(void **state)
{
	struct tfs *t = *state;
	struct rec_fill r = { .limit = 64 };
	struct fs_dir *dh;
	uint64_t d = mkdir_(t->fs, ROOT, "d", 0755);

	assert_int_equal(fs_opendir(t->fs, NULL, d, 0, &dh), 0);
	assert_int_equal(fs_rmdir(t->fs, NULL, ROOT, "d"), 0);
	assert_int_equal(fs_readdir(t->fs, dh, 0, rec_cb, &r), 2);
	assert_int_equal(fs_readdirplus(t->fs, dh, 0, rec_cb, &r), 2);
	fs_releasedir(t->fs, dh);
	assert_int_equal(fs_opendir(t->fs, NULL, d, 0, &dh), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_readdir_basic, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_readdirplus_counts_lookups, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_readdir_paging_cookies, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_readdir_stable_under_changes, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_readdir_removed_dir, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
