/*
 * fsck_tool.c - builds and damages stores for the fsck tests (tests/fsck/
 * f_<name>/setup.sh).  Files are made through the filesystem core, so the
 * store is what lsmfs makes (but see mount_store); damage to keys goes through the
 * engine's public API (the store stays a valid engine store with a broken
 * filesystem in it); damage to bytes of files is done by the scripts.
 *
 *   fsck_tool STORE populate         a small tree (below), unmounted cleanly
 *   fsck_tool STORE many N [PER [SIZE]]  N files of SIZE bytes (0), PER (1000) per
 *                                    directory
 *   fsck_tool STORE flush            writes the memtable out to an SSTable
 *   fsck_tool STORE mkdir-flush NAME makes directory /NAME and flushes in the same
 *                                    session (the manifest gets a second record)
 *   fsck_tool STORE ino PATH         prints the inode number of PATH
 *   fsck_tool STORE orphan PATH      opens PATH, unlinks it, and "crashes"
 *                                    (exits without closing): an orphan
 *   fsck_tool STORE del KEY          deletes a key
 *   fsck_tool STORE put KEY [HEX]    puts a key (value in hex, default empty)
 *   fsck_tool STORE set INO FIELD N  sets a field of an inode record:
 *                                    nlink, size, nblocks, parent, flags, mode
 *   fsck_tool STORE dirent PARENT NAME INO [DTYPE]   puts a directory entry
 *   fsck_tool STORE churn N          N rounds of creates, writes (value-log sized),
 *                                    renames, links and unlinks of open files,
 *                                    never closing the store: for kill -9 tests
 *   fsck_tool STORE sb FIELD N       sets a superblock field: ino_limit,
 *                                    inode_count, flags, block_size
 *   fsck_tool STORE vlog-orphan N    writes value-log segment N holding one
 *                                    record no key points to
 *
 * KEY is I:ino, O:ino, B:ino:index, D:parent:name, X:ino:name or S.
 * The tree of populate (inode numbers in creation order from 2):
 *   /a (2)  /a/b (3)  /a/b/hello (4, "hello\n")  /a/big (5, 10000 bytes,
 *   xattr user.k=v)  /c (6, empty dir)  /link (7 -> a/b/hello)
 *   /empty (8)  /a/b/hard (hard link to 5)
 * Exit status 0 on success, 1 with a message otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "keys.h"
#include "vlog.h"

static int die(const char *what, int r)
{
	fprintf(stderr, "fsck_tool: %s: %s (%s)\n", what, strerror(-r), fs_last_error());
	exit(1);
}

/* The cases' damage is placed by kind of file: by default blocks go to the
 * value log as written, so that a WAL that was never flushed points into
 * the value log (f_vlog_flip_wal, f_vlog_truncate).  FSCK_TOOL_WAL_INLINE=1
 * keeps small writes' blocks in the WAL, as the daemon does. */
static struct fs *mount_store(const char *dir)
{
	struct fs_mount_options mo;
	struct fs *fs;
	int r;

	fs_mount_options_init(&mo);
	if (!getenv("FSCK_TOOL_WAL_INLINE"))
		mo.wal_inline_max = 0;
	r = fs_open_store(dir, &mo, &fs);

	if (r < 0)
		die("mount", r);
	return fs;
}

static void check(int r, const char *what)
{
	if (r < 0)
		die(what, r);
}

/* Resolves an absolute path one name at a time. */
static uint64_t resolve(struct fs *fs, const char *path)
{
	char buf[4096], *save = NULL, *name;
	uint64_t ino = FS_ROOT_INO;
	struct fs_entry e;

	snprintf(buf, sizeof(buf), "%s", path);
	for (name = strtok_r(buf, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		check(fs_lookup(fs, NULL, ino, name, &e), path);
		fs_forget(fs, e.ino, 1);
		ino = e.ino;
	}
	return ino;
}

static void make_file(struct fs *fs, uint64_t parent, const char *name, const void *data,
                      size_t len, struct fs_entry *ret)
{
	struct fs_file *fh;

	check(fs_create(fs, NULL, parent, name, S_IFREG | 0644, O_RDWR | O_EXCL, ret, &fh), name);
	if (len)
		check((int)fs_write(fs, NULL, fh, data, len, 0), "write");
	check(fs_release(fs, fh), "release");
	fs_forget(fs, ret->ino, 1);
}

static void populate(const char *dir)
{
	struct fs *fs = mount_store(dir);
	struct fs_entry a, b, e, big, c;
	uint8_t *data = malloc(10000);

	if (!data)
		die("populate", -ENOMEM);
	for (int i = 0; i < 10000; i++)
		data[i] = (uint8_t)('a' + i % 26);
	check(fs_mkdir(fs, NULL, FS_ROOT_INO, "a", 0755, &a), "mkdir a");
	check(fs_mkdir(fs, NULL, a.ino, "b", 0755, &b), "mkdir b");
	make_file(fs, b.ino, "hello", "hello\n", 6, &e);
	make_file(fs, a.ino, "big", data, 10000, &big);
	check(fs_setxattr(fs, NULL, big.ino, "user.k", "v", 1, 0), "setxattr");
	check(fs_mkdir(fs, NULL, FS_ROOT_INO, "c", 0755, &c), "mkdir c");
	check(fs_symlink(fs, NULL, "a/b/hello", FS_ROOT_INO, "link", &e), "symlink");
	fs_forget(fs, e.ino, 1);
	make_file(fs, FS_ROOT_INO, "empty", NULL, 0, &e);
	check(fs_link(fs, NULL, big.ino, b.ino, "hard", &e), "link");
	fs_forget(fs, e.ino, 2);
	fs_forget(fs, a.ino, 1);
	fs_forget(fs, b.ino, 1);
	fs_forget(fs, c.ino, 1);
	free(data);
	check(fs_close(fs), "unmount");
}

static void many(const char *dir, unsigned long n, unsigned long per, size_t size)
{
	struct fs *fs = mount_store(dir);
	uint8_t *data = calloc(1, size ? size : 1);
	struct fs_entry d, e;
	char name[64];

	if (!data)
		die("many", -ENOMEM);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 131 + 7);

	d.ino = FS_ROOT_INO;
	for (unsigned long i = 0; i < n; i++) {
		struct fs_file *fh;

		if (i % per == 0) {
			if (d.ino != FS_ROOT_INO)
				fs_forget(fs, d.ino, 1);
			snprintf(name, sizeof(name), "d%06lu", i / per);
			check(fs_mkdir(fs, NULL, FS_ROOT_INO, name, 0755, &d), "mkdir");
		}
		snprintf(name, sizeof(name), "f%07lu", i);
		check(fs_create(fs, NULL, d.ino, name, S_IFREG | 0644, O_WRONLY | O_EXCL, &e, &fh),
		      "create");
		if (size)
			check((int)fs_write(fs, NULL, fh, data, size, 0), "write");
		check(fs_release(fs, fh), "release");
		fs_forget(fs, e.ino, 1);
	}
	if (d.ino != FS_ROOT_INO)
		fs_forget(fs, d.ino, 1);
	free(data);
	check(fs_close(fs), "unmount");
}

/* Keeps up to 8 files open and unlinks some of them while open, so that a
 * kill -9 at any moment leaves orphans as well as half-done work. */
static void churn(const char *dir, unsigned long rounds)
{
	struct fs *fs = mount_store(dir);
	struct fs_file *open_fh[8] = { NULL };
	uint8_t *data = malloc(20000);
	struct fs_entry d, e;
	char name[64], name2[64];

	if (!data)
		die("churn", -ENOMEM);
	memset(data, 'x', 20000);
	/* a directory of its own: churn%d, the first free */
	for (int k = 0;; k++) {
		int r;

		snprintf(name, sizeof(name), "churn%d", k);
		r = fs_mkdir(fs, NULL, FS_ROOT_INO, name, 0755, &d);
		if (r == 0)
			break;
		if (r != -EEXIST)
			die("mkdir", r);
	}
	for (unsigned long i = 0; i < rounds; i++) {
		struct fs_file *fh;
		unsigned slot = (unsigned)(i % 8);

		snprintf(name, sizeof(name), "f%lu", i);
		check(fs_create(fs, NULL, d.ino, name, S_IFREG | 0644, O_RDWR | O_EXCL, &e, &fh), "create");
		check((int)fs_write(fs, NULL, fh, data, 1000 + (i * 997) % 19000, 0), "write");
		fs_forget(fs, e.ino, 1);
		if (open_fh[slot])
			check(fs_release(fs, open_fh[slot]), "release");
		open_fh[slot] = fh;
		if (i % 3 == 0)
			check(fs_unlink(fs, NULL, d.ino, name), "unlink open");
		else if (i % 5 == 1) {
			snprintf(name2, sizeof(name2), "r%lu.%llu", i, (unsigned long long)d.ino);
			check(fs_rename(fs, NULL, d.ino, name, FS_ROOT_INO, name2, 0), "rename");
		}
		else if (i % 7 == 2) {
			snprintf(name2, sizeof(name2), "l%lu", i);
			if (fs_link(fs, NULL, e.ino, d.ino, name2, &e) == 0)
				fs_forget(fs, e.ino, 1);
		}
	}
	for (unsigned i = 0; i < 8; i++)
		if (open_fh[i])
			check(fs_release(fs, open_fh[i]), "release");
	fs_forget(fs, d.ino, 1);
	free(data);
	check(fs_close(fs), "unmount");
}

static lsm_db *open_db(const char *dir)
{
	lsm_options opt;
	lsm_db *db;
	int r;

	lsm_options_init(&opt);
	opt.create_if_missing = 0;
	r = lsm_open(dir, &opt, &db);
	if (r < 0)
		die("open", r);
	return db;
}

/* Parses KEY into buf; returns its length. */
static size_t parse_key(const char *spec, uint8_t *buf)
{
	char name[512];
	unsigned long long a, b;

	if (strcmp(spec, "S") == 0)
		return fs_key_super(buf);
	if (sscanf(spec, "I:%llu", &a) == 1 && spec[0] == 'I')
		return fs_key_inode(buf, a);
	if (sscanf(spec, "O:%llu", &a) == 1 && spec[0] == 'O')
		return fs_key_orphan(buf, a);
	if (sscanf(spec, "B:%llu:%llu", &a, &b) == 2 && spec[0] == 'B')
		return fs_key_block(buf, a, b);
	if (sscanf(spec, "D:%llu:%511[^\n]", &a, name) == 2 && spec[0] == 'D')
		return fs_key_dirent(buf, a, name, strlen(name));
	if (sscanf(spec, "X:%llu:%511[^\n]", &a, name) == 2 && spec[0] == 'X')
		return fs_key_xattr(buf, a, name, strlen(name));
	/* Anything else: the bytes themselves (a key outside the schema). */
	memcpy(buf, spec, strlen(spec));
	return strlen(spec);
}

static void db_write(const char *dir, const char *key, const void *val, size_t vlen, bool del)
{
	uint8_t kbuf[1024];
	size_t klen = parse_key(key, kbuf);
	lsm_write_options wo;
	lsm_db *db = open_db(dir);
	int r;

	lsm_write_options_init(&wo);
	wo.sync = 1;
	r = del ? lsm_delete(db, &wo, kbuf, klen) : lsm_put(db, &wo, kbuf, klen, val, vlen);
	if (r < 0)
		die(key, r);
	check(lsm_close(db), "close");
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;

	for (; hex[0] && hex[1] && n < max; hex += 2) {
		unsigned v;

		if (sscanf(hex, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void set_field(const char *dir, uint64_t ino, const char *field, unsigned long long v)
{
	uint8_t key[FS_KEY_INO_LEN], out[FS_INODE_HDR_LEN + 8192];
	struct fs_inode_rec rec;
	const uint8_t *idata;
	lsm_write_options wo;
	lsm_db *db = open_db(dir);
	size_t len, ilen;
	void *val;

	check(lsm_get(db, NULL, key, fs_key_inode(key, ino), &val, &len), "get inode");
	check(fs_inode_decode(val, len, &rec, &idata, &ilen), "decode inode");
	if (strcmp(field, "nlink") == 0)
		rec.nlink = (uint32_t)v;
	else if (strcmp(field, "size") == 0)
		rec.size = v;
	else if (strcmp(field, "nblocks") == 0)
		rec.nblocks = v;
	else if (strcmp(field, "parent") == 0)
		rec.parent = v;
	else if (strcmp(field, "flags") == 0)
		rec.flags = (uint32_t)v;
	else if (strcmp(field, "mode") == 0)
		rec.mode = (uint32_t)v;
	else
		die(field, -EINVAL);
	if (ilen > sizeof(out) - FS_INODE_HDR_LEN)
		die("inline data", -E2BIG);
	len = fs_inode_encode(&rec, idata, ilen, out);
	lsm_write_options_init(&wo);
	wo.sync = 1;
	check(lsm_put(db, &wo, key, FS_KEY_INO_LEN, out, len), "put inode");
	free(val);
	check(lsm_close(db), "close");
}

static void set_super(const char *dir, const char *field, unsigned long long v)
{
	uint8_t key[1], out[FS_SUPER_LEN];
	struct fs_super sb;
	lsm_write_options wo;
	lsm_db *db = open_db(dir);
	size_t len;
	void *val;

	check(lsm_get(db, NULL, key, fs_key_super(key), &val, &len), "get superblock");
	check(fs_super_decode(val, len, &sb), "decode superblock");
	free(val);
	if (strcmp(field, "ino_limit") == 0)
		sb.ino_limit = v;
	else if (strcmp(field, "inode_count") == 0)
		sb.inode_count = v;
	else if (strcmp(field, "flags") == 0)
		sb.flags = (uint32_t)v;
	else if (strcmp(field, "block_size") == 0)
		sb.block_size = (uint32_t)v;
	else
		die(field, -EINVAL);
	fs_super_encode(&sb, out);
	lsm_write_options_init(&wo);
	wo.sync = 1;
	check(lsm_put(db, &wo, key, sizeof(key), out, sizeof(out)), "put superblock");
	check(lsm_close(db), "close");
}

static uint64_t segment_number;

static uint64_t next_segment(void *arg)
{
	(void)arg;
	return segment_number;
}

static void vlog_orphan(const char *dir, uint64_t number)
{
	static const char value[] = "a value nobody points to";
	struct vlog_ptr ptr;
	vlog *v;

	segment_number = number;
	check(vlog_open(NULL, dir, NULL, next_segment, NULL, &v), "vlog_open");
	check(vlog_append(v, "k", 1, value, sizeof(value), &ptr), "vlog_append");
	check(vlog_close(v), "vlog_close");
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : NULL, *cmd = argc > 2 ? argv[2] : "";

	if (!dir) {
		fprintf(stderr, "usage: fsck_tool STORE COMMAND ... (see fsck_tool.c)\n");
		return 1;
	}
	if (strcmp(cmd, "populate") == 0) {
		populate(dir);
	} else if (strcmp(cmd, "many") == 0 && argc >= 4) {
		many(dir, strtoul(argv[3], NULL, 10), argc > 4 ? strtoul(argv[4], NULL, 10) : 1000,
		     argc > 5 ? strtoul(argv[5], NULL, 10) : 0);
	} else if (strcmp(cmd, "flush") == 0) {
		lsm_db *db = open_db(dir);

		check(lsm_flush(db), "flush");
		check(lsm_close(db), "close");
	} else if (strcmp(cmd, "mkdir-flush") == 0 && argc == 4) {
		struct fs *fs = mount_store(dir);
		struct fs_entry e;

		check(fs_mkdir(fs, NULL, FS_ROOT_INO, argv[3], 0755, &e), "mkdir");
		fs_forget(fs, e.ino, 1);
		check(lsm_flush(fs_db(fs)), "flush");
		check(fs_close(fs), "unmount");
	} else if (strcmp(cmd, "ino") == 0 && argc == 4) {
		struct fs *fs = mount_store(dir);

		printf("%llu\n", (unsigned long long)resolve(fs, argv[3]));
		check(fs_close(fs), "unmount");
	} else if (strcmp(cmd, "orphan") == 0 && argc == 4) {
		struct fs *fs = mount_store(dir);
		const char *slash = strrchr(argv[3], '/');
		char parent[4096];
		struct fs_file *fh;
		uint64_t ino = resolve(fs, argv[3]);

		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - argv[3]), argv[3]);
		check(fs_open(fs, NULL, ino, O_RDONLY, &fh), "open");
		check(fs_unlink(fs, NULL, resolve(fs, parent), slash + 1), "unlink");
		check(fs_sync_all(fs), "sync");
		_exit(0);   /* a crash: the handle is never released */
	} else if (strcmp(cmd, "del") == 0 && argc == 4) {
		db_write(dir, argv[3], NULL, 0, true);
	} else if (strcmp(cmd, "put") == 0 && argc >= 4) {
		uint8_t val[4096];
		size_t n = argc > 4 ? parse_hex(argv[4], val, sizeof(val)) : 0;

		db_write(dir, argv[3], val, n, false);
	} else if (strcmp(cmd, "set") == 0 && argc == 6) {
		set_field(dir, strtoull(argv[3], NULL, 10), argv[4], strtoull(argv[5], NULL, 0));
	} else if (strcmp(cmd, "dirent") == 0 && (argc == 6 || argc == 7)) {
		uint8_t val[FS_DIRENT_LEN];
		char key[600];

		fs_dirent_encode(strtoull(argv[5], NULL, 10),
		                 (uint8_t)(argc == 7 ? strtoul(argv[6], NULL, 10) : DT_REG), val);
		snprintf(key, sizeof(key), "D:%s:%s", argv[3], argv[4]);
		db_write(dir, key, val, sizeof(val), false);
	} else if (strcmp(cmd, "churn") == 0 && argc == 4) {
		churn(dir, strtoul(argv[3], NULL, 10));
	} else if (strcmp(cmd, "sb") == 0 && argc == 5) {
		set_super(dir, argv[3], strtoull(argv[4], NULL, 0));
	} else if (strcmp(cmd, "vlog-orphan") == 0 && argc == 4) {
		vlog_orphan(dir, strtoull(argv[3], NULL, 10));
	} else {
		fprintf(stderr, "fsck_tool: unknown command (see fsck_tool.c)\n");
		return 1;
	}
	return 0;
}
