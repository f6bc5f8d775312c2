/*
 * test_fs_data.c - file contents in the fs core: inline small files and
 * their move to blocks, writes across block boundaries, reads past the end,
 * O_APPEND, truncate down and up (old bytes never come back), sparse files
 * and st_blocks, SEEK_DATA/SEEK_HOLE, fallocate (extend, keep size, punch
 * hole), a 2^40-byte file and EFBIG past the limit, copy_file_range, 64 KiB
 * blocks, and a randomized comparison against an in-memory model.
 */
#include "test_fs_common.h"

struct ofile {
	uint64_t ino;
	struct fs_file *fh;
};

static struct ofile ocreate(struct tfs *t, const char *name)
{
	struct ofile o;
	struct fs_entry e;

	assert_int_equal(fs_create(t->fs, NULL, ROOT, name, 0644, O_RDWR | O_CREAT, &e, &o.fh), 0);
	o.ino = e.ino;
	fs_forget(t->fs, e.ino, 1);
	return o;
}

static void owrite(struct tfs *t, struct ofile *o, const void *buf, size_t n, off_t off)
{
	assert_int_equal(fs_write(t->fs, NULL, o->fh, buf, n, off), (ssize_t)n);
}

static void otrunc(struct tfs *t, struct ofile *o, off_t size)
{
	assert_int_equal(fs_setattr(t->fs, NULL, o->ino, &(struct stat){ .st_size = size },
	                            FS_SET_ATTR_SIZE, NULL, NULL), 0);
}

static void check_bytes(struct tfs *t, struct ofile *o, off_t off, const uint8_t *want, size_t n)
{
	uint8_t *buf = malloc(n + 16);

	assert_non_null(buf);
	assert_int_equal(fs_read(t->fs, o->fh, buf, n, off), (ssize_t)n);
	assert_memory_equal(buf, want, n);
	free(buf);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_fs_data_inline_to_blocks(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "f");
	uint8_t buf[9000], want[9000];
	struct stat st;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7 + 1);
	owrite(t, &o, want, 100, 0);
	st = stat_of(t->fs, o.ino);
	assert_int_equal(st.st_size, 100);
	assert_int_equal(st.st_blocks, 1);   /* inline, yet never "all holes" */
	owrite(t, &o, want + 100, 400, 100);
	check_bytes(t, &o, 0, want, 500);
	/* past inline_max: the inline bytes become block 0 */
	owrite(t, &o, want + 500, 8500, 500);
	check_bytes(t, &o, 0, want, 9000);
	st = stat_of(t->fs, o.ino);
	assert_int_equal(st.st_size, 9000);
	assert_int_equal(st.st_blocks, 3 * 8);
	assert_int_equal(st.st_blksize, 4096);
	/* reading past the end is short, at the end empty */
	assert_int_equal(fs_read(t->fs, o.fh, buf, 100, 8950), 50);
	assert_int_equal(fs_read(t->fs, o.fh, buf, 100, 9000), 0);
	assert_int_equal(fs_read(t->fs, o.fh, buf, 100, 100000), 0);
	assert_int_equal(fs_read(t->fs, o.fh, buf, 100, -1), -EINVAL);
	assert_int_equal(fs_write(t->fs, NULL, o.fh, buf, 1, -5), -EINVAL);
	assert_int_equal(fs_write(t->fs, NULL, o.fh, buf, 0, 0), 0);
	/* the unmount frees the handle still open */
	tfs_remount(t);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 9000);
}

static void test_fs_data_inline_partial_convert(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "f");
	uint8_t want[6000] = { 0 };

	memset(want, 'a', 300);
	owrite(t, &o, want, 300, 0);
	/* a write that covers block 0 partly and goes past inline_max */
	memset(want + 200, 'b', 600);
	owrite(t, &o, want + 200, 600, 200);
	check_bytes(t, &o, 0, want, 800);
	/* a write that starts beyond block 0 keeps the inline bytes in block 0 */
	fs_release(t->fs, o.fh);
	o = ocreate(t, "g");
	memset(want, 0, sizeof(want));
	memset(want, 'c', 50);
	owrite(t, &o, want, 50, 0);
	memset(want + 5000, 'd', 1000);
	owrite(t, &o, want + 5000, 1000, 5000);
	check_bytes(t, &o, 0, want, 6000);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 2 * 8);
	fs_release(t->fs, o.fh);
}

static void test_fs_data_append(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "log");
	struct fs_file *ap;
	uint8_t want[5000];

	memset(want, 'x', sizeof(want));
	owrite(t, &o, want, 1000, 0);
	assert_int_equal(fs_open(t->fs, NULL, o.ino, O_WRONLY | O_APPEND, &ap), 0);
	memset(want + 1000, 'y', 4000);
	assert_int_equal(fs_write(t->fs, NULL, ap, want + 1000, 4000, 0), 4000);  /* off ignored */
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 5000);
	check_bytes(t, &o, 0, want, 5000);
	fs_release(t->fs, ap);
	fs_release(t->fs, o.fh);
}

static void test_fs_data_truncate(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "f");
	uint8_t buf[20000], zero[20000] = { 0 };

	memset(buf, 'z', sizeof(buf));
	owrite(t, &o, buf, sizeof(buf), 0);
	otrunc(t, &o, 5000);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 5000);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 2 * 8);
	/* grow again: the cut bytes read as zeros */
	otrunc(t, &o, 20000);
	check_bytes(t, &o, 0, buf, 5000);
	check_bytes(t, &o, 5000, zero, 15000);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 2 * 8);
	/* a write past the end leaves a hole, even over the old tail */
	otrunc(t, &o, 4097);
	owrite(t, &o, "E", 1, 12000);
	check_bytes(t, &o, 4097, zero, 12000 - 4097);
	/* to zero: back to inline */
	otrunc(t, &o, 0);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 0);
	owrite(t, &o, "tiny", 4, 0);
	check_bytes(t, &o, 0, (const uint8_t *)"tiny", 4);
	/* inline truncate up and down */
	otrunc(t, &o, 2);
	otrunc(t, &o, 10);
	check_bytes(t, &o, 0, (const uint8_t *)"ti\0\0\0\0\0\0\0\0", 10);
	/* from inline straight to a big size */
	otrunc(t, &o, 100000);
	check_bytes(t, &o, 0, (const uint8_t *)"ti\0\0", 4);
	check_bytes(t, &o, 4, zero, 20000);
	/* O_TRUNC through open */
	{
		struct fs_file *fh;

		assert_int_equal(fs_open(t->fs, NULL, o.ino, O_WRONLY | O_TRUNC, &fh), 0);
		assert_int_equal(stat_of(t->fs, o.ino).st_size, 0);
		fs_release(t->fs, fh);
	}
	fs_release(t->fs, o.fh);
}

static void test_fs_data_sparse_seek(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "sparse");
	struct stat st;
	uint8_t buf[4096];
	const off_t B = 4096;

	memset(buf, 'd', sizeof(buf));
	owrite(t, &o, buf, 100, 10 * B + 5);     /* data in block 10 */
	owrite(t, &o, buf, 4096, 20 * B);        /* block 20 */
	otrunc(t, &o, 30 * B);
	st = stat_of(t->fs, o.ino);
	assert_int_equal(st.st_size, 30 * B);
	assert_int_equal(st.st_blocks, 2 * 8);
	assert_int_equal(fs_lseek(t->fs, o.fh, 0, SEEK_DATA), 10 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 10 * B + 7, SEEK_DATA), 10 * B + 7);
	assert_int_equal(fs_lseek(t->fs, o.fh, 11 * B, SEEK_DATA), 20 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 21 * B, SEEK_DATA), -ENXIO);
	assert_int_equal(fs_lseek(t->fs, o.fh, 0, SEEK_HOLE), 0);
	assert_int_equal(fs_lseek(t->fs, o.fh, 10 * B, SEEK_HOLE), 11 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 20 * B + 1, SEEK_HOLE), 21 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 25 * B, SEEK_HOLE), 25 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 30 * B, SEEK_HOLE), -ENXIO);
	assert_int_equal(fs_lseek(t->fs, o.fh, -1, SEEK_DATA), -ENXIO);
	assert_int_equal(fs_lseek(t->fs, o.fh, 0, SEEK_SET), -EINVAL);
	/* a file ending in data: the end is the hole */
	owrite(t, &o, buf, 4096, 29 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 29 * B, SEEK_HOLE), 30 * B);
	/* holes read as zeros */
	assert_int_equal(fs_read(t->fs, o.fh, buf, sizeof(buf), 3 * B), (ssize_t)sizeof(buf));
	assert_true(all_zero(buf, sizeof(buf)));
	/* a block of zeros written is data, not a hole */
	memset(buf, 0, sizeof(buf));
	owrite(t, &o, buf, 4096, 2 * B);
	assert_int_equal(fs_lseek(t->fs, o.fh, 0, SEEK_DATA), 2 * B);
	/* inline files are all data */
	{
		struct ofile s = ocreate(t, "small");

		owrite(t, &s, "abc", 3, 0);
		assert_int_equal(fs_lseek(t->fs, s.fh, 1, SEEK_DATA), 1);
		assert_int_equal(fs_lseek(t->fs, s.fh, 1, SEEK_HOLE), 3);
		assert_int_equal(fs_lseek(t->fs, s.fh, 3, SEEK_DATA), -ENXIO);
		fs_release(t->fs, s.fh);
	}
	fs_release(t->fs, o.fh);
}

static void test_fs_data_fallocate(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "f");
	uint8_t buf[5 * 4096], zero[5 * 4096] = { 0 };
	const int PK = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, 0, 0, 100), 0);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 100);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, FALLOC_FL_KEEP_SIZE, 0, 100000), 0);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 100);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, 0, 0, 50), 0);        /* never shrinks */
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 100);
	check_bytes(t, &o, 0, zero, 100);
	memset(buf, 'p', sizeof(buf));
	owrite(t, &o, buf, sizeof(buf), 0);
	/* punch [1000, 3 * 4096 + 10): block 1 and 2 go, edges zeroed */
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, PK, 1000, 3 * 4096 + 10 - 1000), 0);
	memset(buf + 1000, 0, 3 * 4096 + 10 - 1000);
	check_bytes(t, &o, 0, buf, sizeof(buf));
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 5 * 4096);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 3 * 8);
	assert_int_equal(fs_lseek(t->fs, o.fh, 4096, SEEK_DATA), 3 * 4096);
	/* punch inside one block, and past the end (keeps the size) */
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, PK, 4 * 4096 + 5, 10), 0);
	memset(buf + 4 * 4096 + 5, 0, 10);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, PK, 4 * 4096 + 100, 1 << 20), 0);
	memset(buf + 4 * 4096 + 100, 0, 4096 - 100);
	check_bytes(t, &o, 0, buf, sizeof(buf));
	assert_int_equal(stat_of(t->fs, o.ino).st_size, 5 * 4096);
	/* punch on an inline file */
	{
		struct ofile s = ocreate(t, "s");

		owrite(t, &s, "abcdef", 6, 0);
		assert_int_equal(fs_fallocate(t->fs, NULL, s.fh, PK, 1, 2), 0);
		check_bytes(t, &s, 0, (const uint8_t *)"a\0\0def", 6);
		fs_release(t->fs, s.fh);
	}
	/* errors */
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, FALLOC_FL_PUNCH_HOLE, 0, 1), -EOPNOTSUPP);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, FALLOC_FL_ZERO_RANGE, 0, 1), -EOPNOTSUPP);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, 0, -1, 1), -EINVAL);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, 0, 0, 0), -EINVAL);
	assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, 0, (off_t)FS_MAX_FILE_SIZE, 1), -EFBIG);
	{
		struct fs_file *ro;

		assert_int_equal(fs_open(t->fs, NULL, o.ino, O_RDONLY, &ro), 0);
		assert_int_equal(fs_fallocate(t->fs, NULL, ro, 0, 0, 1), -EBADF);
		fs_release(t->fs, ro);
	}
	fs_release(t->fs, o.fh);
}

static void test_fs_data_huge_file(void **state)
{
	struct tfs *t = *state;
	struct ofile o = ocreate(t, "huge");
	const off_t T = (off_t)1 << 40;
	uint8_t buf[16];

	owrite(t, &o, "tail", 4, T - 4);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, T);
	assert_int_equal(stat_of(t->fs, o.ino).st_blocks, 8);
	assert_int_equal(fs_read(t->fs, o.fh, buf, 16, T - 4), 4);
	assert_memory_equal(buf, "tail", 4);
	assert_int_equal(fs_read(t->fs, o.fh, buf, 16, T / 2), 16);
	assert_true(all_zero(buf, 16));
	assert_int_equal(fs_lseek(t->fs, o.fh, 0, SEEK_DATA), T - 4096);
	/* up to the limit, and not a byte past it */
	owrite(t, &o, "x", 1, (off_t)FS_MAX_FILE_SIZE - 1);
	assert_int_equal(fs_write(t->fs, NULL, o.fh, "x", 1, (off_t)FS_MAX_FILE_SIZE), -EFBIG);
	assert_int_equal(fs_write(t->fs, NULL, o.fh, "xy", 2, (off_t)FS_MAX_FILE_SIZE - 1), -EFBIG);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, (off_t)FS_MAX_FILE_SIZE);
	tfs_remount(t);
	assert_int_equal(stat_of(t->fs, o.ino).st_size, (off_t)FS_MAX_FILE_SIZE);
	/* and it unlinks in one go */
	assert_int_equal(fs_unlink(t->fs, NULL, ROOT, "huge"), 0);
}

static void test_fs_data_copy_file_range(void **state)
{
	struct tfs *t = *state;
	struct ofile a = ocreate(t, "a"), b = ocreate(t, "b");
	uint8_t buf[10000], got[10000];
	struct fs_file *ro;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i % 251);
	owrite(t, &a, buf, sizeof(buf), 0);
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 100, b.fh, 50, 9000, 0), 9000);
	assert_int_equal(stat_of(t->fs, b.ino).st_size, 9050);
	assert_int_equal(fs_read(t->fs, b.fh, got, 9000, 50), 9000);
	assert_memory_equal(got, buf + 100, 9000);
	/* short at the end of the input, 0 past it */
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 9990, b.fh, 0, 100, 0), 10);
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 10000, b.fh, 0, 100, 0), 0);
	/* within one file, not overlapping */
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 0, a.fh, 20000, 100, 0), 100);
	assert_int_equal(fs_read(t->fs, a.fh, got, 100, 20000), 100);
	assert_memory_equal(got, buf, 100);
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 0, a.fh, 50, 100, 0), -EINVAL);
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 0, b.fh, 0, 10, 1), -EINVAL);
	assert_int_equal(fs_open(t->fs, NULL, b.ino, O_RDONLY, &ro), 0);
	assert_int_equal(fs_copy_file_range(t->fs, NULL, a.fh, 0, ro, 0, 10, 0), -EBADF);
	fs_release(t->fs, ro);
	fs_release(t->fs, a.fh);
	fs_release(t->fs, b.fh);
}

/* Random writes, truncates and punches against a model, in a small file
 * system with 64 KiB blocks or the default 4 KiB. */
static void model_run(struct tfs *t, uint64_t seed)
{
	enum { MAX = 300000 };
	uint8_t *model = calloc(1, MAX), *buf = malloc(MAX), *got = malloc(MAX);
	struct ofile o = ocreate(t, "m");
	uint64_t rng = seed;
	size_t size = 0;

	assert_non_null(model);
	assert_non_null(buf);
	assert_non_null(got);
	for (int step = 0; step < 400; step++) {
		int op = (int)(test_rand(&rng) % 10);
		size_t off = test_rand(&rng) % (MAX / 2), len = 1 + test_rand(&rng) % 20000;

		if (test_rand(&rng) % 4 == 0)
			len = 1 + test_rand(&rng) % 600;   /* stay small: inline territory */
		if (off + len > MAX)
			len = MAX - off;
		if (op < 6) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)(test_rand(&rng) % 3 ? test_rand(&rng) : 0);
			owrite(t, &o, buf, len, (off_t)off);
			memcpy(model + off, buf, len);
			if (off + len > size)
				size = off + len;
		} else if (op < 8) {
			size_t ns = test_rand(&rng) % 4 == 0 ? test_rand(&rng) % 700 : off;

			otrunc(t, &o, (off_t)ns);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else {
			assert_int_equal(fs_fallocate(t->fs, NULL, o.fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			                              (off_t)off, (off_t)len), 0);
			if (off < size)
				memset(model + off, 0, (off + len < size ? off + len : size) - off);
		}
		if (step % 50 == 49) {
			tfs_remount(t);   /* frees the handle */
			assert_int_equal(fs_open(t->fs, NULL, o.ino, O_RDWR, &o.fh), 0);
		}
		assert_int_equal(stat_of(t->fs, o.ino).st_size, (off_t)size);
		assert_int_equal(fs_read(t->fs, o.fh, got, MAX, 0), (ssize_t)size);
		if (memcmp(got, model, size) != 0)
			fail_msg("seed %llu step %d: contents differ", (unsigned long long)seed, step);
		{
			off_t d = size ? fs_lseek(t->fs, o.fh, 0, SEEK_DATA) : 0;

			assert_true(size == 0 || d >= 0 || d == -ENXIO);
			if (d > 0)
				assert_true(all_zero(model, (size_t)d));
		}
	}
	fs_release(t->fs, o.fh);
	free(model);
	free(buf);
	free(got);
}

static void test_fs_data_model_4k(void **state)
{
	model_run(*state, test_seed("test_fs_data_model_4k"));
}

static void test_fs_data_model_64k(void **state)
{
	struct tfs *t = *state;
	struct fs_mkfs_options mk;
	struct fs_info info;

	assert_int_equal(fs_close(t->fs), 0);
	t->fs = NULL;
	{
		lsm_options lo;

		lsm_options_init(&lo);
		lo.env = t->env;
		assert_int_equal(lsm_destroy(STORE, &lo), 0);
	}
	fs_mkfs_options_init(&mk);
	mk.env = t->env;
	mk.block_size = 65536;
	mk.inline_max = FS_INLINE_MAX_LIMIT;
	assert_int_equal(fs_mkfs(STORE, &mk), 0);
	tfs_mount(t);
	fs_get_info(t->fs, &info);
	assert_int_equal(info.block_size, 65536);
	assert_int_equal(info.inline_max, FS_INLINE_MAX_LIMIT);
	{
		uint8_t buf[FS_INLINE_MAX_LIMIT];
		struct ofile o = ocreate(t, "inl");

		memset(buf, 'i', sizeof(buf));
		owrite(t, &o, buf, sizeof(buf), 0);
		assert_int_equal(stat_of(t->fs, o.ino).st_blocks, FS_INLINE_MAX_LIMIT / 512);
		tfs_remount(t);
		assert_int_equal(fs_open(t->fs, NULL, o.ino, O_RDONLY, &o.fh), 0);
		check_bytes(t, &o, 0, buf, sizeof(buf));
		fs_release(t->fs, o.fh);
	}
	model_run(t, test_seed("test_fs_data_model_64k"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_data_inline_to_blocks, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_inline_partial_convert, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_append, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_truncate, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_sparse_seek, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_fallocate, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_huge_file, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_copy_file_range, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_model_4k, tfs_setup, tfs_teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_model_64k, tfs_setup, tfs_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
