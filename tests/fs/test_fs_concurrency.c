/*
 * test_fs_concurrency.c - the fs core under several threads: per-thread
 * create/write/stat/unlink in private and shared directories while another
 * thread lists, renames of files and directories between parents racing
 * each other (including moves that would make a loop if two ran
 * unchecked), links and unlinks of one inode from many threads, and
 * parallel writers and readers of one file.  The run must finish (no
 * deadlock) and leave a consistent tree (tfs_check_consistent).
 */
#include "test_fs_common.h"

#include <pthread.h>

#define NTHREADS 4

struct worker {
	struct tfs *t;
	int id;
	uint64_t seed;
	uint64_t dir, shared, a, b;
	int errors, ok;
	char msg[128];
};

static void *create_worker(void *arg)
{
	struct worker *w = arg;
	struct fs *fs = w->t->fs;
	char name[32], buf[3000];

	memset(buf, 'a' + w->id, sizeof(buf));
	for (int i = 0; i < 300; i++) {
		struct fs_entry e;
		struct fs_file *fh;
		struct stat st;
		uint64_t parent = i % 3 ? w->dir : w->shared;

		snprintf(name, sizeof(name), "t%d-%d", w->id, i);
		if (fs_create(fs, &cred_root, parent, name, 0644, O_RDWR | O_CREAT | O_EXCL, &e, &fh) < 0 ||
		    fs_write(fs, NULL, fh, buf, (size_t)(i * 10) % sizeof(buf), 0) < 0 ||
		    fs_release(fs, fh) < 0 || fs_getattr(fs, e.ino, &st) < 0 ||
		    st.st_size != (off_t)((size_t)(i * 10) % sizeof(buf))) {
			snprintf(w->msg, sizeof(w->msg), "create/write %s failed", name);
			w->errors++;
		}
		fs_forget(fs, e.ino, 1);
		if (i % 2 && fs_unlink(fs, NULL, parent, name) < 0) {
			snprintf(w->msg, sizeof(w->msg), "unlink %s failed", name);
			w->errors++;
		}
	}
	return NULL;
}

struct lister {
	struct tfs *t;
	uint64_t dir;
	int *stop;                 /* atomic */
	int errors, rounds;
};

struct dupcheck {
	char last[FS_NAME_MAX + 1];
	int bad;
};

static int order_fill(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct dupcheck *d = arg;

	(void)e;
	(void)next_off;
	if (strcmp(name, ".") && strcmp(name, "..")) {
		if (d->last[0] && strcmp(d->last, name) >= 0)
			d->bad++;   /* out of order or repeated */
		snprintf(d->last, sizeof(d->last), "%s", name);
	}
	return 0;
}

static void *list_worker(void *arg)
{
	struct lister *l = arg;

	while (!__atomic_load_n(l->stop, __ATOMIC_ACQUIRE)) {
		struct dupcheck d = { .bad = 0 };
		struct fs_dir *dh;

		if (fs_opendir(l->t->fs, NULL, l->dir, 0, &dh) < 0) {
			l->errors++;
			break;
		}
		if (fs_readdir(l->t->fs, dh, 0, order_fill, &d) < 0)
			l->errors++;
		l->errors += d.bad;
		fs_releasedir(l->t->fs, dh);
		l->rounds++;
	}
	return NULL;
}

static void test_fs_concurrent_creates(void **state)
{
	struct tfs *t = *state;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS], lt;
	int stop = 0;
	uint64_t shared = mkdir_(t->fs, ROOT, "shared", 0755);
	struct lister l = { .t = t, .dir = shared, .stop = &stop };

	pthread_create(&lt, NULL, list_worker, &l);
	for (int i = 0; i < NTHREADS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d%d", i);
		w[i] = (struct worker){ .t = t, .id = i, .dir = mkdir_(t->fs, ROOT, name, 0755),
		                        .shared = shared };
		pthread_create(&th[i], NULL, create_worker, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors)
			fail_msg("worker %d: %d errors, last: %s", i, w[i].errors, w[i].msg);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(lt, NULL);
	assert_int_equal(l.errors, 0);
	assert_true(l.rounds > 0);
	assert_int_equal(stat_of(t->fs, shared).st_size, NTHREADS * 50);
	tfs_check_consistent(t->fs);
	tfs_remount(t);
	tfs_check_consistent(t->fs);
}

/* Renames between a and b of files and directories, and directory moves
 * that race to nest x in y and y in x. */
static void *rename_worker(void *arg)
{
	struct worker *w = arg;
	struct fs *fs = w->t->fs;
	uint64_t rng = w->seed;
	const char *names[] = { "n0", "n1", "n2", "n3", "x", "y" };

	for (int i = 0; i < 2000; i++) {
		uint64_t from = test_rand(&rng) % 2 ? w->a : w->b;
		uint64_t to = test_rand(&rng) % 2 ? w->a : w->b;
		const char *n1 = names[test_rand(&rng) % 6], *n2 = names[test_rand(&rng) % 6];
		unsigned flags = (unsigned)(test_rand(&rng) % 3);
		int r;

		if (flags == 1)
			flags = RENAME_NOREPLACE;
		else if (flags == 2)
			flags = RENAME_EXCHANGE;
		if (test_rand(&rng) % 4 == 0) {
			/* move x or y into the other, wherever they are */
			int64_t xi = lookup_ino(fs, w->a, "x");
			int64_t yi = lookup_ino(fs, w->b, "y");

			if (xi > 0 && yi > 0)
				r = test_rand(&rng) % 2 ? fs_rename(fs, NULL, w->a, "x", (uint64_t)yi, "x", 0)
				                        : fs_rename(fs, NULL, w->b, "y", (uint64_t)xi, "y", 0);
			else
				r = 0;
		} else {
			r = fs_rename(fs, NULL, from, n1, to, n2, flags);
		}
		if (r == 0)
			w->ok++;
		if (r < 0 && r != -ENOENT && r != -EEXIST && r != -ENOTEMPTY && r != -EINVAL &&
		    r != -ENOTDIR && r != -EISDIR) {
			snprintf(w->msg, sizeof(w->msg), "rename: %d", r);
			w->errors++;
		}
		if (test_rand(&rng) % 8 == 0) {
			/* put moved-away x and y back at the top so the race repeats */
			int64_t xi = lookup_ino(fs, w->a, "x"), yi = lookup_ino(fs, w->b, "y");

			if (yi > 0)
				fs_rename(fs, NULL, (uint64_t)yi, "x", w->a, "x", RENAME_NOREPLACE);
			if (xi > 0)
				fs_rename(fs, NULL, (uint64_t)xi, "y", w->b, "y", RENAME_NOREPLACE);
		}
	}
	return NULL;
}

static void test_fs_concurrent_renames(void **state)
{
	struct tfs *t = *state;
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	uint64_t a = mkdir_(t->fs, ROOT, "a", 0755), b = mkdir_(t->fs, ROOT, "b", 0755);
	uint64_t seed = test_seed("test_fs_concurrent_renames");

	mkfile(t->fs, a, "n0", "0", 1);
	mkfile(t->fs, a, "n1", "1", 1);
	mkdir_(t->fs, b, "n2", 0755);
	mkfile(t->fs, b, "n3", "3", 1);
	mkdir_(t->fs, a, "x", 0755);
	mkdir_(t->fs, b, "y", 0755);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .t = t, .id = i, .a = a, .b = b, .seed = seed + (uint64_t)i };
		pthread_create(&th[i], NULL, rename_worker, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors)
			fail_msg("worker %d: %d errors, last: %s", i, w[i].errors, w[i].msg);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_true(w[i].ok > 100);   /* the race really ran */
	tfs_check_consistent(t->fs);
	tfs_remount(t);
	tfs_check_consistent(t->fs);
}

static void *link_worker(void *arg)
{
	struct worker *w = arg;
	struct fs *fs = w->t->fs;
	char name[32];

	for (int i = 0; i < 300; i++) {
		struct fs_entry e;

		snprintf(name, sizeof(name), "l%d-%d", w->id, i % 7);
		if (fs_link(fs, NULL, w->a, i % 2 ? w->dir : w->shared, name, &e) == 0)
			fs_forget(fs, e.ino, 1);
		if (i % 3 == 0)
			fs_unlink(fs, NULL, i % 2 ? w->dir : w->shared, name);
	}
	return NULL;
}

static void *rw_worker(void *arg)
{
	struct worker *w = arg;
	struct fs *fs = w->t->fs;
	struct fs_file *fh;
	uint8_t buf[8192], got[8192];

	if (fs_open(fs, NULL, w->b, O_RDWR, &fh) < 0) {
		w->errors++;
		return NULL;
	}
	memset(buf, 'A' + w->id, sizeof(buf));
	for (int i = 0; i < 200; i++) {
		off_t off = (off_t)w->id * 8192;   /* each thread owns a range */

		if (fs_write(fs, NULL, fh, buf, sizeof(buf), off) != (ssize_t)sizeof(buf) ||
		    fs_read(fs, fh, got, sizeof(got), off) != (ssize_t)sizeof(got) ||
		    memcmp(got, buf, sizeof(buf)) != 0) {
			snprintf(w->msg, sizeof(w->msg), "read back differs at %d", i);
			w->errors++;
			break;
		}
	}
	fs_release(fs, fh);
	return NULL;
}

static void test_fs_concurrent_links_and_one_file(void **state)
{
	struct tfs *t = *state;
	struct worker w[NTHREADS * 2];
	pthread_t th[NTHREADS * 2];
	uint64_t shared = mkdir_(t->fs, ROOT, "s", 0755);
	uint64_t f = mkfile(t->fs, ROOT, "target", "t", 1);
	uint64_t big = mkfile(t->fs, ROOT, "big", NULL, 0);

	for (int i = 0; i < NTHREADS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		w[i] = (struct worker){ .t = t, .id = i, .a = f, .shared = shared,
		                        .dir = mkdir_(t->fs, ROOT, name, 0755) };
		pthread_create(&th[i], NULL, link_worker, &w[i]);
		w[NTHREADS + i] = (struct worker){ .t = t, .id = i, .b = big };
		pthread_create(&th[NTHREADS + i], NULL, rw_worker, &w[NTHREADS + i]);
	}
	for (int i = 0; i < NTHREADS * 2; i++) {
		pthread_join(th[i], NULL);
		if (w[i].errors)
			fail_msg("worker %d: %d errors, last: %s", i, w[i].errors, w[i].msg);
	}
	assert_int_equal(stat_of(t->fs, big).st_size, NTHREADS * 8192);
	tfs_check_consistent(t->fs);
	tfs_remount(t);
	tfs_check_consistent(t->fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_concurrent_creates, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_concurrent_renames, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_concurrent_links_and_one_file, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
