/*
 * mkfs.c - mkfs.lsmfs: makes an empty lsmfs filesystem (superblock and root
 * directory, synced) in a store directory, creating the directory if it is
 * missing.  The work itself is the core's fs_mkfs(); this file is the
 * command around it: the checks that keep it from destroying something by
 * accident, and the summary.
 *
 *   - A directory that holds anything needs -f.  With -f the old store's
 *     files go (lsm_destroy, which takes the store's lock first, so a
 *     mounted store is refused even then); files that are not the store's
 *     (say lost+found, when STORE is the root of a disk) stay where they are.
 *   - A store that is in use (mounted) is refused with a message saying so,
 *     with or without -f.  Without -f the check is a probe of the store's
 *     LOCK file, the flock every opener of a store holds (the store
 *     directory's documented convention); with -f lsm_destroy makes it.
 *   - If lsm_destroy removed the directory itself, it is made again with
 *     its old owner and permissions.
 *
 * Exit status: 0 made, 1 not made (the message says why).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

struct mkfs_args {
	const char *store;
	int force;
	int quiet;
	uint32_t block_size;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: mkfs.lsmfs [-f] [-q] [-b BLOCKSIZE] STORE\n"
	        "Makes an empty lsmfs filesystem in the store directory STORE (created if\n"
	        "missing).  Mount it with: lsmfs STORE MOUNTPOINT\n"
	        "\n"
	        "  -b, --block-size=SIZE  file data block size, a power of two from %u to %u\n"
	        "                         (4096, 16k, 64K ...; default %u)\n"
	        "  -f, --force            make it even if STORE is not empty: an lsmfs store\n"
	        "                         there is destroyed, other files are left in place\n"
	        "  -q, --quiet            print nothing but errors\n"
	        "  -h, --help             show this help\n"
	        "  -V, --version          show the version\n",
	        FS_BLOCK_SIZE_MIN, FS_BLOCK_SIZE_MAX, FS_BLOCK_SIZE_DEFAULT);
}

/* "4096", "16k", "64K": a block size.  Returns 0 and *ret, or -EINVAL. */
static int parse_block_size(const char *s, uint32_t *ret)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == 'k' || *end == 'K') {
		v *= 1024;
		end++;
	}
	if (*end != '\0' || v < FS_BLOCK_SIZE_MIN || v > FS_BLOCK_SIZE_MAX || (v & (v - 1)))
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/* Returns 0 with *a filled, 1 after --help or --version, -EINVAL after a
 * message. */
static int parse_args(int argc, char *argv[], struct mkfs_args *a)
{
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "force", no_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->block_size = FS_BLOCK_SIZE_DEFAULT;
	while ((c = getopt_long(argc, argv, "b:fqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_block_size(optarg, &a->block_size) < 0) {
				fprintf(stderr, "mkfs.lsmfs: bad block size '%s': a power of two from "
				        "%u to %u is needed\n", optarg, FS_BLOCK_SIZE_MIN, FS_BLOCK_SIZE_MAX);
				return -EINVAL;
			}
			break;
		case 'f':
			a->force = 1;
			break;
		case 'q':
			a->quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("mkfs.lsmfs %s (filesystem format %u, liblsm %s)\n", LSMFS_VERSION,
			       FS_FORMAT_VERSION, LSM_VERSION_STRING);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mkfs.lsmfs: %s\n", optind == argc ? "no STORE given" : "too many arguments");
		usage(stderr);
		return -EINVAL;
	}
	a->store = argv[optind];
	return 0;
}

/* Returns 1 if dir holds any entry, 0 if empty, or a negative errno.  An
 * empty LOCK file alone does not count: opening a directory that holds no
 * store (lsmfs on the wrong directory) leaves one behind. */
static int dir_has_entries(const char *dir)
{
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int found = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, "LOCK") == 0 &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_size == 0)
			continue;
		found = 1;
		break;
	}
	closedir(d);
	return found;
}

/* Returns 1 if some process holds the store's lock (it is mounted, being
 * checked, or open in some other program), else 0.  Probing takes the lock
 * for an instant and gives it back. */
static int store_in_use(const char *dir)
{
	char path[4096];
	int fd, busy = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/LOCK", dir) >= sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		busy = errno == EWOULDBLOCK;
	close(fd);   /* releases the probe's lock, if it got it */
	return busy;
}

static void say_in_use(const char *store)
{
	fprintf(stderr, "mkfs.lsmfs: %s is in use (mounted, or open in fsck.lsmfs or another "
	        "program); unmount it first\n", store);
}

/* Clears the way in an existing directory: refuses what it must, and with
 * -f destroys an old store.  *ret_removed tells whether the directory itself
 * went (its old attributes are in *ret_st).  Returns 0 or -1 after a
 * message. */
static int prepare_dir(const struct mkfs_args *a, struct stat *ret_st, int *ret_removed)
{
	struct stat st;
	int r;

	*ret_removed = 0;
	if (stat(a->store, &st) < 0) {
		char *copy;
		int err = errno;

		if (err != ENOENT) {
			fprintf(stderr, "mkfs.lsmfs: %s: %s\n", a->store, strerror(err));
			return -1;
		}
		/* Made by fs_mkfs, one level only, as mkdir(1) without -p. */
		copy = strdup(a->store);
		if (!copy) {
			fprintf(stderr, "mkfs.lsmfs: out of memory\n");
			return -1;
		}
		r = stat(dirname(copy), &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
		if (r < 0)
			fprintf(stderr, "mkfs.lsmfs: cannot make %s: %s: %s\n", a->store, copy,
			        strerror(-r));
		free(copy);
		return r < 0 ? -1 : 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mkfs.lsmfs: %s exists and is not a directory\n", a->store);
		return -1;
	}
	r = dir_has_entries(a->store);
	if (r < 0) {
		fprintf(stderr, "mkfs.lsmfs: %s: %s\n", a->store, strerror(-r));
		return -1;
	}
	if (r == 0)
		return 0;
	if (store_in_use(a->store)) {
		say_in_use(a->store);
		return -1;
	}
	if (!a->force) {
		fprintf(stderr, "mkfs.lsmfs: %s is not empty; use -f to make a filesystem there "
		        "anyway (an old store in it is destroyed)\n", a->store);
		return -1;
	}
	r = lsm_destroy(a->store, NULL);
	if (r == -EBUSY) {
		say_in_use(a->store);
		return -1;
	}
	if (r < 0 && r != -ENOTEMPTY) {
		fprintf(stderr, "mkfs.lsmfs: %s: cannot remove the old store: %s\n", a->store,
		        lsm_last_error()[0] ? lsm_last_error() : strerror(-r));
		return -1;
	}
	*ret_st = st;
	*ret_removed = r == 0;
	return 0;
}

static void print_summary(const char *store, const struct fs_mkfs_options *mo)
{
	struct fs_mount_options opt;
	struct fs_info info;
	struct fs *fs;
	const uint8_t *u;
	int r;

	fs_mount_options_init(&opt);
	opt.read_only = 1;
	r = fs_open_store(store, &opt, &fs);
	if (r < 0) {
		fprintf(stderr, "mkfs.lsmfs: warning: made %s, but cannot read it back: %s\n", store,
		        fs_last_error());
		return;
	}
	fs_get_info(fs, &info);
	fs_close(fs);
	u = info.uuid;
	printf("Made an lsmfs filesystem in %s\n"
	       "  format version:   %u\n"
	       "  UUID:             %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n"
	       "  block size:       %u bytes\n"
	       "  inline data:      files up to %u bytes kept in the inode\n"
	       "  root directory:   owner %u:%u, mode %04o\n"
	       "Mount it with: lsmfs %s MOUNTPOINT\n",
	       store, info.format_version,
	       u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
	       u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15],
	       info.block_size, info.inline_max,
	       (unsigned)mo->root_uid, (unsigned)mo->root_gid, (unsigned)mo->root_mode,
	       store);
}

int main(int argc, char *argv[])
{
	struct fs_mkfs_options mo;
	struct mkfs_args a;
	struct stat old;
	int removed, r;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r > 0 ? 0 : 1;
	if (prepare_dir(&a, &old, &removed) < 0)
		return 1;
	fs_mkfs_options_init(&mo);
	mo.block_size = a.block_size;
	r = fs_mkfs(a.store, &mo);
	if (r < 0) {
		if (r == -EBUSY)
			say_in_use(a.store);
		else
			fprintf(stderr, "mkfs.lsmfs: %s: cannot make the filesystem: %s\n", a.store,
			        fs_last_error()[0] ? fs_last_error() : strerror(-r));
		return 1;
	}
	if (removed && (chmod(a.store, old.st_mode & 07777) < 0 ||
	                chown(a.store, old.st_uid, old.st_gid) < 0))
		fprintf(stderr, "mkfs.lsmfs: warning: %s: cannot restore its owner and mode: %s\n",
		        a.store, strerror(errno));
	if (!a.quiet)
		print_summary(a.store, &mo);
	return 0;
}
