/*
 * test_fs_crash.c - power cuts under a filesystem workload.
 *
 * Each cycle runs random operations (create, write, truncate, mkdir, rmdir,
 * unlink, rename with its flags, link, symlink, setxattr, chmod, fsync, and
 * unlinking files that are still open) on the fault env with a small
 * memtable, so flushes and compactions run in between, and with a power cut
 * armed after a random number of syncs.  After every operation the whole
 * tree is hashed (names, inode numbers, attributes, contents, xattrs).  When
 * the power is gone the fs is closed (errors expected), the env forgets
 * everything unsynced, and the store is mounted again.  The recovered tree
 * must hash to the state after some prefix of the acknowledged operations,
 * at least up to the last successful fsync: each operation is all or
 * nothing, and fsync'd work survives.  Orphans of the open files must have
 * been reclaimed at mount, and tfs_check_consistent must pass.  A failed
 * operation must change nothing.  Replay with LSM_TEST_SEED=<seed>.
 */
#include "test_fs_common.h"

#define MAX_OPS 120
#define MAX_OPEN 4

struct crun {
	struct tfs *t;
	uint64_t seed, rng;
	int cycle;
	uint64_t hashes[2 * MAX_OPS + 2];
	int nh, synced;
	struct fs_file *open[MAX_OPEN];
	int cuts, acked;
	int kind;                  /* the last op's kind, for messages */
};

static uint64_t rnd(struct crun *c, uint64_t n)
{
	return test_rand(&c->rng) % n;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

struct names {
	char v[64][FS_NAME_MAX + 1];
	int n;
	off_t last;
};

static int names_fill(void *arg, const char *name, const struct fs_entry *e, off_t off)
{
	struct names *ns = arg;

	(void)e;
	ns->last = off;
	if (strcmp(name, ".") && strcmp(name, "..") && ns->n < 64)
		snprintf(ns->v[ns->n++], sizeof(ns->v[0]), "%s", name);
	return 0;
}

/* Hashes the subtree under dir.  Returns 0 or the first error. */
static int dump_dir(struct fs *fs, uint64_t dir, uint64_t *h)
{
	struct names *ns = calloc(1, sizeof(*ns));
	struct fs_dir *dh;
	int r;

	assert_non_null(ns);
	r = fs_opendir(fs, NULL, dir, 0, &dh);
	if (r == 0) {
		/* to the end: an error after some entries shows on the next call */
		while ((r = fs_readdir(fs, dh, ns->last, names_fill, ns)) > 0)
			;
		fs_releasedir(fs, dh);
	}
	for (int i = 0; i < ns->n && r >= 0; i++) {
		struct fs_entry e;
		char xl[512];
		ssize_t xn;

		r = fs_lookup(fs, NULL, dir, ns->v[i], &e);
		if (r < 0)
			break;
		fs_forget(fs, e.ino, 1);
		*h = fnv(*h, ns->v[i], strlen(ns->v[i]) + 1);
		*h = fnv(*h, &e.ino, sizeof(e.ino));
		*h = fnv(*h, &e.attr.st_mode, sizeof(e.attr.st_mode));
		*h = fnv(*h, &e.attr.st_nlink, sizeof(e.attr.st_nlink));
		*h = fnv(*h, &e.attr.st_size, sizeof(e.attr.st_size));
		*h = fnv(*h, &e.attr.st_mtim, sizeof(e.attr.st_mtim));
		*h = fnv(*h, &e.attr.st_ctim, sizeof(e.attr.st_ctim));
		xn = fs_listxattr(fs, NULL, e.ino, xl, sizeof(xl));
		if (xn < 0) {
			r = (int)xn;
			break;
		}
		*h = fnv(*h, xl, (size_t)xn);
		for (char *p = xl; p < xl + xn; p += strlen(p) + 1) {
			char v[64];
			ssize_t vn = fs_getxattr(fs, NULL, e.ino, p, v, sizeof(v));

			if (vn < 0) {
				r = (int)vn;
				break;
			}
			*h = fnv(*h, v, (size_t)vn);
		}
		if (r < 0)
			break;
		if (S_ISREG(e.attr.st_mode) && e.attr.st_size > 0) {
			struct fs_file *fh;
			uint8_t *buf = malloc((size_t)e.attr.st_size);

			assert_non_null(buf);
			r = fs_open(fs, NULL, e.ino, O_RDONLY, &fh);
			if (r == 0) {
				ssize_t n = fs_read(fs, fh, buf, (size_t)e.attr.st_size, 0);

				r = n < 0 ? (int)n : 0;
				if (n == e.attr.st_size)
					*h = fnv(*h, buf, (size_t)n);
				fs_release(fs, fh);
			}
			free(buf);
		} else if (S_ISLNK(e.attr.st_mode)) {
			char *target;

			r = fs_readlink(fs, e.ino, &target);
			if (r == 0) {
				*h = fnv(*h, target, strlen(target));
				free(target);
			}
		} else if (S_ISDIR(e.attr.st_mode)) {
			r = dump_dir(fs, e.ino, h);
		}
	}
	free(ns);
	return r < 0 ? r : 0;
}

/* Hashes the whole tree into *ret_h.  Reads may fail once the power is
 * gone (blocks not in the cache), so errors are returned, not fatal. */
static int dump_try(struct crun *c, uint64_t *ret_h)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int r = dump_dir(c->t->fs, ROOT, &h);

	if (r == 0)
		*ret_h = h;
	return r;
}

static uint64_t dump(struct crun *c)
{
	uint64_t h = 0;
	int r = dump_try(c, &h);

	if (r < 0)
		fail_msg("seed=%llu cycle %d: dump failed: %d %s", (unsigned long long)c->seed,
		         c->cycle, r, fs_last_error());
	return h;
}

/* A directory of the small fixed tree: root, d0, d1, d0/d2 (if present). */
static uint64_t pick_dir(struct crun *c)
{
	int64_t d;

	switch (rnd(c, 4)) {
	case 1:
		d = lookup_ino(c->t->fs, ROOT, "d0");
		break;
	case 2:
		d = lookup_ino(c->t->fs, ROOT, "d1");
		break;
	case 3:
		d = lookup_ino(c->t->fs, ROOT, "d0");
		d = d > 0 ? lookup_ino(c->t->fs, (uint64_t)d, "d2") : d;
		break;
	default:
		d = ROOT;
	}
	return d > 0 ? (uint64_t)d : ROOT;
}

static const char *pick_name(struct crun *c)
{
	static const char *names[] = { "f0", "f1", "f2", "f3", "f4", "d0", "d1", "d2", "s0" };

	return names[rnd(c, sizeof(names) / sizeof(names[0]))];
}

/* One random operation.  Returns its result; *ret_changes says whether a
 * success changes the tree (open/release/fsync do not). */
static int one_op(struct crun *c, bool *ret_changes, bool *ret_sync)
{
	struct fs *fs = c->t->fs;
	uint64_t d = pick_dir(c), d2 = pick_dir(c);
	const char *n = pick_name(c), *n2 = pick_name(c);
	uint8_t buf[12000];
	struct fs_entry e;
	struct fs_file *fh;
	int64_t ino = lookup_ino(fs, d, n);
	int r, slot = (int)rnd(c, MAX_OPEN);

	*ret_changes = true;
	*ret_sync = false;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(c->rng >> (i % 56)) ^ (uint8_t)i;
	c->kind = (int)rnd(c, 15);
	switch (c->kind) {
	case 0:
		r = fs_create(fs, NULL, d, n, 0644, O_RDWR | O_CREAT | O_EXCL, &e, &fh);
		if (r == 0) {
			fs_forget(fs, e.ino, 1);
			fs_release(fs, fh);
		}
		return r;
	case 1:
	case 2:
		if (ino < 0)
			return (int)ino;
		r = fs_open(fs, NULL, (uint64_t)ino, O_WRONLY, &fh);
		if (r < 0)
			return r;
		r = (int)fs_write(fs, NULL, fh, buf, 1 + rnd(c, sizeof(buf)), (off_t)rnd(c, 20000));
		fs_release(fs, fh);
		return r < 0 ? r : 0;
	case 3:
		if (ino < 0)
			return (int)ino;
		return fs_setattr(fs, NULL, (uint64_t)ino,
		                  &(struct stat){ .st_size = (off_t)rnd(c, 15000) },
		                  FS_SET_ATTR_SIZE, NULL, NULL);
	case 4:
		r = fs_mkdir(fs, NULL, d, n, 0755, &e);
		if (r == 0)
			fs_forget(fs, e.ino, 1);
		return r;
	case 5:
		return fs_rmdir(fs, NULL, d, n);
	case 6:
		return fs_unlink(fs, NULL, d, n);
	case 7:
		return fs_rename(fs, NULL, d, n, d2, n2,
		                 rnd(c, 3) == 0 ? RENAME_EXCHANGE : rnd(c, 2) ? RENAME_NOREPLACE : 0);
	case 8:
		if (ino < 0)
			return (int)ino;
		r = fs_link(fs, NULL, (uint64_t)ino, d2, n2, &e);
		if (r == 0)
			fs_forget(fs, e.ino, 1);
		return r;
	case 9:
		r = fs_symlink(fs, NULL, "some/target", d, n, &e);
		if (r == 0)
			fs_forget(fs, e.ino, 1);
		return r;
	case 10:
		if (ino < 0)
			return (int)ino;
		return fs_setxattr(fs, NULL, (uint64_t)ino, rnd(c, 2) ? "user.a" : "user.b", buf,
		                   1 + rnd(c, 40), 0);
	case 11:
		if (ino < 0)
			return (int)ino;
		return fs_setattr(fs, NULL, (uint64_t)ino, &(struct stat){ .st_mode = (mode_t)rnd(c, 0777) },
		                  FS_SET_ATTR_MODE, NULL, NULL);
	case 12:
		*ret_changes = false;
		*ret_sync = true;
		return fs_fsync(fs, ROOT, 0);
	case 13:
		/* keep a file open, to be unlinked while open */
		*ret_changes = false;
		if (ino < 0 || c->open[slot])
			return -EBUSY;
		return fs_open(fs, NULL, (uint64_t)ino, O_RDWR, &c->open[slot]);
	default:
		*ret_changes = false;
		if (!c->open[slot])
			return -EBADF;
		if (rnd(c, 2)) {
			r = (int)fs_write(fs, NULL, c->open[slot], buf, 100, 0);
			*ret_changes = true;
			return r < 0 ? r : 0;
		}
		r = fs_release(fs, c->open[slot]);
		c->open[slot] = NULL;
		return r;
	}
}

static void crash_cycle(struct crun *c)
{
	struct tfs *t = c->t;
	bool unknown_last = false;
	uint64_t h = 0;
	int i;

	c->nh = 0;
	c->hashes[c->nh++] = dump(c);
	c->synced = 0;
	memset(c->open, 0, sizeof(c->open));
	env_fault_power_cut_after_sync(t->env, 1 + rnd(c, 10));
	for (i = 0; i < MAX_OPS; i++) {
		bool changes, sync, down;
		int r = one_op(c, &changes, &sync), dr = dump_try(c, &h);

		/* Flushes run in the background, so the power may go at any
		 * moment: during the op, or during the dump after it. */
		down = env_fault_is_down(t->env);
		if (dr < 0) {
			if (!down)
				fail_msg("seed=%llu cycle %d op %d: dump failed: %d %s",
				         (unsigned long long)c->seed, c->cycle, i, dr, fs_last_error());
			/* the state after an acknowledged change is unknown */
			unknown_last = r == 0 && changes;
			break;
		}
		if (r < 0 || !changes) {
			if (h != c->hashes[c->nh - 1])
				fail_msg("seed=%llu cycle %d op %d (kind %d): an operation that changes "
				         "nothing (result %d) changed the tree (power %s)",
				         (unsigned long long)c->seed, c->cycle, i, c->kind, r,
				         down ? "off" : "on");
		} else {
			c->hashes[c->nh++] = h;
			c->acked++;
		}
		if (sync && r == 0)
			c->synced = c->nh - 1;
		if (down)
			break;
	}
	if (env_fault_is_down(t->env))
		c->cuts++;
	/* the power is gone (or the workload ended without a cut: then cut now) */
	fs_close(t->fs);
	t->fs = NULL;
	assert_int_equal(env_fault_crash(t->env), 0);
	env_fault_clear(t->env);
	tfs_mount(t);
	h = dump(c);
	for (i = c->synced; i < c->nh; i++)
		if (c->hashes[i] == h)
			break;
	if (i == c->nh) {
		for (int j = 0; j < c->synced; j++)
			if (c->hashes[j] == h)
				fail_msg("seed=%llu cycle %d: recovered the state after op %d of %d, "
				         "but ops up to %d were fsync'd", (unsigned long long)c->seed,
				         c->cycle, j, c->nh - 1, c->synced);
		/* Else it must be the state after the last op, if that one
		 * could not be hashed; its consistency is checked below. */
		if (!unknown_last)
			fail_msg("seed=%llu cycle %d: the recovered tree is no prefix of the %d "
			         "operations (replay with LSM_TEST_SEED=%llu)",
			         (unsigned long long)c->seed, c->cycle, c->nh - 1,
			         (unsigned long long)c->seed);
	}
	tfs_check_consistent(t->fs);
}

static void test_fs_crash_atomic_ops(void **state)
{
	struct crun c = { .seed = test_seed("test_fs_crash_atomic_ops") };
	int cycles = test_long() ? 200 : 25;

	(void)state;
	c.rng = c.seed;
	c.t = tfs_new(true);
	assert_int_equal(fs_close(c.t->fs), 0);
	c.t->mo.write_buffer_size = 32 << 10;   /* flushes and compactions mid-workload */
	tfs_mount(c.t);
	for (c.cycle = 0; c.cycle < cycles; c.cycle++)
		crash_cycle(&c);
	fprintf(stderr, "%d cycles, %d power cuts mid-workload, %d ops acknowledged in all\n",
	        cycles, c.cuts, c.acked);
	assert_true(c.cuts > 0);
	tfs_free(c.t);
}

/* A write synced with sync_writes survives without any fsync. */
static void test_fs_crash_sync_writes(void **state)
{
	struct tfs *t = tfs_new(true);
	struct fs_entry e;
	struct fs_file *fh;
	uint8_t buf[5000];
	size_t len;
	uint8_t *got;

	(void)state;
	assert_int_equal(fs_close(t->fs), 0);
	t->mo.sync_writes = 1;
	tfs_mount(t);
	memset(buf, 's', sizeof(buf));
	assert_int_equal(fs_create(t->fs, NULL, ROOT, "f", 0644, O_RDWR | O_CREAT, &e, &fh), 0);
	assert_int_equal(fs_write(t->fs, NULL, fh, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	env_fault_power_cut_after_sync(t->env, 1);
	assert_int_equal(fs_write(t->fs, NULL, fh, "end", 3, 5000), 3);   /* its own sync */
	assert_true(env_fault_is_down(t->env));
	fs_close(t->fs);
	t->fs = NULL;
	assert_int_equal(env_fault_crash(t->env), 0);
	env_fault_clear(t->env);
	t->mo.sync_writes = 0;
	tfs_mount(t);
	got = read_all(t->fs, (uint64_t)lookup_ino(t->fs, ROOT, "f"), &len);
	assert_int_equal(len, 5003);
	assert_memory_equal(got + 5000, "end", 3);
	free(got);
	tfs_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs_crash_atomic_ops),
		cmocka_unit_test(test_fs_crash_sync_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
