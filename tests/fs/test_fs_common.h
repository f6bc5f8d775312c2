/*
 * test_fs_common.h - fixtures shared by the fs-core tests: a fresh
 * filesystem on the in-memory env per test (mkfs + mount), remounting,
 * credentials for root and two unprivileged users, and small helpers that
 * make, read and list files.  Included by each tests/fs/test_fs_*.c (static
 * functions, so each binary carries its own copy).
 */
#ifndef LSMFS_TEST_FS_COMMON_H
#define LSMFS_TEST_FS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env_test.h"
#include "fs.h"
#include "keys.h"
#include "testutil.h"

#define STORE "/store"
#define ROOT FS_ROOT_INO

struct tfs {
	lsm_env *mem;              /* the in-memory env */
	lsm_env *env;              /* what the fs uses: mem, or a fault env over it */
	struct fs *fs;
	struct fs_mount_options mo;
};

static const struct fs_cred cred_root = { .uid = 0, .gid = 0, .umask = 022 };
static const gid_t alice_groups[] = { 100 };
static const struct fs_cred cred_alice = { .uid = 1000, .gid = 1000, .umask = 022,
	.ngroups = 1, .groups = alice_groups };
static const struct fs_cred cred_bob = { .uid = 1001, .gid = 1001, .umask = 022 };

static inline void tfs_mount(struct tfs *t)
{
	int r = fs_open_store(STORE, &t->mo, &t->fs);

	if (r < 0)
		fail_msg("fs_open_store: %d %s", r, fs_last_error());
}

static inline void tfs_remount(struct tfs *t)
{
	assert_int_equal(fs_close(t->fs), 0);
	t->fs = NULL;
	tfs_mount(t);
}

static inline struct tfs *tfs_new(bool fault)
{
	struct tfs *t = calloc(1, sizeof(*t));
	struct fs_mkfs_options mk;

	assert_non_null(t);
	t->mem = env_mem_new();
	t->env = fault ? env_fault_new(t->mem) : t->mem;
	fs_mkfs_options_init(&mk);
	mk.env = t->env;
	mk.root_uid = 0;
	mk.root_gid = 0;
	mk.root_mode = 0777;
	if (fs_mkfs(STORE, &mk) < 0)
		fail_msg("fs_mkfs: %s", fs_last_error());
	fs_mount_options_init(&t->mo);
	t->mo.env = t->env;
	tfs_mount(t);
	return t;
}

static inline int tfs_setup(void **state)
{
	*state = tfs_new(false);
	return 0;
}

static inline void tfs_free(struct tfs *t)
{
	if (t->fs)
		fs_close(t->fs);
	if (t->env != t->mem)
		env_fault_free(t->env);
	env_mem_free(t->mem);
	free(t);
}

static inline int tfs_teardown(void **state)
{
	tfs_free(*state);
	return 0;
}

static inline bool ts_after(struct timespec a, struct timespec b)   /* a >= b */
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec >= b.tv_nsec);
}

/* Creates parent/name holding data (len bytes) as root; returns its ino. */
static inline uint64_t mkfile(struct fs *fs, uint64_t parent, const char *name, const void *data,
                       size_t len)
{
	struct fs_entry e;
	struct fs_file *fh;
	int r = fs_create(fs, &cred_root, parent, name, 0644, O_RDWR | O_CREAT, &e, &fh);

	if (r < 0)
		fail_msg("create %s: %d", name, r);
	if (len)
		assert_int_equal(fs_write(fs, &cred_root, fh, data, len, 0), (ssize_t)len);
	assert_int_equal(fs_release(fs, fh), 0);
	fs_forget(fs, e.ino, 1);
	return e.ino;
}

static inline uint64_t mkdir_(struct fs *fs, uint64_t parent, const char *name, mode_t mode)
{
	struct fs_entry e;
	int r = fs_mkdir(fs, &cred_root, parent, name, mode, &e);

	if (r < 0)
		fail_msg("mkdir %s: %d", name, r);
	fs_forget(fs, e.ino, 1);
	return e.ino;
}

/* The ino of parent/name, or a negative errno. */
static inline int64_t lookup_ino(struct fs *fs, uint64_t parent, const char *name)
{
	struct fs_entry e;
	int r = fs_lookup(fs, NULL, parent, name, &e);

	if (r < 0)
		return r;
	fs_forget(fs, e.ino, 1);
	return (int64_t)e.ino;
}

static inline struct stat stat_of(struct fs *fs, uint64_t ino)
{
	struct stat st;
	int r = fs_getattr(fs, ino, &st);

	if (r < 0)
		fail_msg("getattr %llu: %d", (unsigned long long)ino, r);
	return st;
}

/* Reads the whole file ino (size bytes) into a malloc'd buffer. */
static inline uint8_t *read_all(struct fs *fs, uint64_t ino, size_t *ret_len)
{
	struct stat st = stat_of(fs, ino);
	struct fs_file *fh;
	uint8_t *buf = malloc((size_t)st.st_size + 1);

	assert_non_null(buf);
	assert_int_equal(fs_open(fs, NULL, ino, O_RDONLY, &fh), 0);
	assert_int_equal(fs_read(fs, fh, buf, (size_t)st.st_size + 1, 0), st.st_size);
	assert_int_equal(fs_release(fs, fh), 0);
	*ret_len = (size_t)st.st_size;
	return buf;
}

/* readdir collector: names joined by ',' in listing order. */
struct listing {
	char names[8192];
	int n, limit;              /* limit: take at most this many (0: all) */
	off_t last_off;
	bool plus;
	struct fs *fs;
};

static inline int collect_fill(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct listing *l = arg;

	(void)e;
	if (l->limit && l->n == l->limit)
		return 1;
	if (l->names[0])
		strcat(l->names, ",");
	strcat(l->names, name);
	l->n++;
	l->last_off = next_off;
	return 0;
}

/* Lists directory ino fully ("." and ".." left out of the names). */
static inline void list_dir(struct fs *fs, uint64_t ino, char *out, size_t outlen)
{
	struct listing l = { .fs = fs };
	struct fs_dir *dh;
	int r;

	assert_int_equal(fs_opendir(fs, NULL, ino, 0, &dh), 0);
	r = fs_readdir(fs, dh, 0, collect_fill, &l);
	assert_true(r >= 2);
	assert_int_equal(fs_readdir(fs, dh, l.last_off, collect_fill, &l), 0);
	assert_int_equal(fs_releasedir(fs, dh), 0);
	/* drop the leading ".,.." */
	assert_true(strncmp(l.names, ".,..", 4) == 0);
	{
		const char *rest = l.names[4] == ',' ? l.names + 5 : l.names + 4;
		size_t n = strlen(rest);

		assert_true(n < outlen);
		memcpy(out, rest, n + 1);
	}
}

/* ---- a whole-filesystem consistency check (fsck in miniature) ---------- */

struct chk_ino {
	uint64_t ino;
	uint32_t refs;             /* dirents naming it */
	uint32_t nlink;            /* as getattr says */
	bool dir;
};

struct chk {
	struct fs *fs;
	struct chk_ino *v;
	size_t n, cap;
	uint64_t queue[4096];
	size_t qhead, qtail;
	char err[256];
};

static inline struct chk_ino *chk_find(struct chk *c, uint64_t ino)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].ino == ino)
			return &c->v[i];
	return NULL;
}

static inline struct chk_ino *chk_add(struct chk *c, uint64_t ino)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		assert_non_null(c->v);
	}
	memset(&c->v[c->n], 0, sizeof(c->v[0]));
	c->v[c->n].ino = ino;
	return &c->v[c->n++];
}

struct chk_dir {
	struct chk *c;
	uint64_t dir;
	uint64_t entries, subdirs;
};

static inline int chk_fill(void *arg, const char *name, const struct fs_entry *e, off_t next_off)
{
	struct chk_dir *d = arg;
	struct chk *c = d->c;
	struct chk_ino *ci;
	struct fs_entry le;
	int r;

	(void)next_off;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	d->entries++;
	r = fs_lookup(c->fs, NULL, d->dir, name, &le);
	if (r < 0 || le.ino != e->ino) {
		snprintf(c->err, sizeof(c->err), "dir %llu: entry %s: lookup %d",
		         (unsigned long long)d->dir, name, r);
		return -EIO;
	}
	fs_forget(c->fs, le.ino, 1);
	if ((le.attr.st_mode & S_IFMT) != (e->attr.st_mode & S_IFMT)) {
		snprintf(c->err, sizeof(c->err), "%s: dirent type differs from inode", name);
		return -EIO;
	}
	ci = chk_find(c, le.ino);
	if (S_ISDIR(le.attr.st_mode)) {
		d->subdirs++;
		if (ci) {
			snprintf(c->err, sizeof(c->err), "directory %llu reached twice",
			         (unsigned long long)le.ino);
			return -EIO;
		}
		if (lookup_ino(c->fs, le.ino, "..") != (int64_t)d->dir) {
			snprintf(c->err, sizeof(c->err), "directory %s: \"..\" is not its parent", name);
			return -EIO;
		}
		assert_true(c->qtail < sizeof(c->queue) / sizeof(c->queue[0]));
		c->queue[c->qtail++] = le.ino;
	}
	if (!ci) {
		ci = chk_add(c, le.ino);
		ci->dir = S_ISDIR(le.attr.st_mode);
		ci->nlink = (uint32_t)le.attr.st_nlink;
	}
	ci->refs++;
	return 0;
}

static inline size_t chk_count_keys(struct fs *fs, char tag, uint64_t *ret_bad_blocks,
                                    struct chk *c)
{
	uint8_t k0[1] = { (uint8_t)tag };
	size_t n = 0;
	lsm_iter *it;

	*ret_bad_blocks = 0;
	assert_int_equal(lsm_iter_new(fs_db(fs), NULL, &it), 0);
	for (lsm_iter_seek(it, k0, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const uint8_t *k = lsm_iter_key(it, &kl);
		uint64_t ino = 0, idx;

		if (k[0] != (uint8_t)tag)
			break;
		n++;
		if (tag == FS_KEY_BLOCK && fs_key_parse_block(k, kl, &ino, &idx) == 0 &&
		    !chk_find(c, ino))
			(*ret_bad_blocks)++;
	}
	assert_int_equal(lsm_iter_status(it), 0);
	lsm_iter_free(it);
	return n;
}

/* Walks the whole tree and checks every invariant the core keeps: each
 * dirent names a live inode of its type, no directory is reached twice,
 * directory sizes count entries and nlink = 2 + subdirectories, ".."
 * points to the parent, file link counts match their dirents, no stray
 * inode records, blocks or orphan keys, statfs's file count is exact.
 * Fails the test with a message naming the problem. */
static inline void tfs_check_consistent(struct fs *fs)
{
	struct chk c = { .fs = fs };
	struct statvfs sv;
	uint64_t bad;
	size_t inodes;

	chk_add(&c, ROOT)->dir = true;
	c.v[0].refs = 1;
	c.v[0].nlink = (uint32_t)stat_of(fs, ROOT).st_nlink;
	c.queue[c.qtail++] = ROOT;
	while (c.qhead < c.qtail) {
		uint64_t dir = c.queue[c.qhead++];
		struct chk_dir d = { .c = &c, .dir = dir };
		struct fs_dir *dh;
		struct stat st = stat_of(fs, dir);
		int r;

		assert_int_equal(fs_opendir(fs, NULL, dir, 0, &dh), 0);
		r = fs_readdir(fs, dh, 0, chk_fill, &d);
		assert_int_equal(fs_releasedir(fs, dh), 0);
		if (r < 0)
			fail_msg("consistency: %s", c.err[0] ? c.err : "readdir failed");
		if ((uint64_t)st.st_size != d.entries || st.st_nlink != 2 + d.subdirs)
			fail_msg("consistency: dir %llu: size %lld nlink %lu, but %llu entries, "
			         "%llu subdirs", (unsigned long long)dir, (long long)st.st_size,
			         (unsigned long)st.st_nlink, (unsigned long long)d.entries,
			         (unsigned long long)d.subdirs);
	}
	for (size_t i = 1; i < c.n; i++) {
		if (!c.v[i].dir && c.v[i].refs != c.v[i].nlink)
			fail_msg("consistency: inode %llu: nlink %u but %u dirents",
			         (unsigned long long)c.v[i].ino, c.v[i].nlink, c.v[i].refs);
		if (c.v[i].dir && c.v[i].refs != 1)
			fail_msg("consistency: directory %llu has %u names",
			         (unsigned long long)c.v[i].ino, c.v[i].refs);
	}
	inodes = chk_count_keys(fs, FS_KEY_INODE, &bad, &c);
	if (inodes != c.n)
		fail_msg("consistency: %zu inode records, %zu reachable", inodes, c.n);
	chk_count_keys(fs, FS_KEY_BLOCK, &bad, &c);
	if (bad)
		fail_msg("consistency: %llu blocks of dead inodes", (unsigned long long)bad);
	if (chk_count_keys(fs, FS_KEY_ORPHAN, &bad, &c) != 0)
		fail_msg("consistency: orphan keys left");
	assert_int_equal(fs_statfs(fs, &sv), 0);
	if (sv.f_files - sv.f_ffree != c.n)
		fail_msg("consistency: statfs says %llu files, %zu exist",
		         (unsigned long long)(sv.f_files - sv.f_ffree), c.n);
	free(c.v);
}

#endif
