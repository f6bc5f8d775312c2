/*
 * sb_tool.c - a helper for tests/mount/lsmfs_cmd.sh: damages a store's
 * superblock on purpose, to check that lsmfs refuses such a store with the
 * right message.  It goes through the engine's public API and the core's
 * superblock encoding (keys.h), so the store stays a valid engine store.
 *
 *   sb_tool STORE version N   rewrite the superblock with format version N
 *   sb_tool STORE garbage     cut the superblock short after its magic and version
 *
 * Exit status 0 on success, 1 with a message otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "keys.h"

int main(int argc, char *argv[])
{
	uint8_t key[FS_KEY_NAME_MAX], out[FS_SUPER_LEN];
	lsm_write_options wo;
	struct fs_super sb;
	lsm_options opt;
	size_t klen, len;
	lsm_db *db;
	void *val;
	int r;

	if (argc < 3 || (strcmp(argv[2], "version") == 0 && argc != 4)) {
		fprintf(stderr, "usage: sb_tool STORE version N | sb_tool STORE garbage\n");
		return 1;
	}
	lsm_options_init(&opt);
	opt.create_if_missing = 0;
	r = lsm_open(argv[1], &opt, &db);
	if (r < 0) {
		fprintf(stderr, "sb_tool: %s: %s\n", argv[1], lsm_last_error());
		return 1;
	}
	lsm_write_options_init(&wo);
	wo.sync = 1;
	klen = fs_key_super(key);
	r = lsm_get(db, NULL, key, klen, &val, &len);
	if (r == 0 && strcmp(argv[2], "garbage") == 0) {
		/* The right magic and version, then cut short. */
		r = lsm_put(db, &wo, key, klen, val, len < 20 ? len / 2 : 20);
		free(val);
	} else {
		if (r == 0) {
			r = fs_super_decode(val, len, &sb);
			free(val);
			if (r == -EPROTONOSUPPORT)
				r = 0;
		}
		if (r == 0) {
			sb.version = (uint32_t)strtoul(argv[3], NULL, 10);
			fs_super_encode(&sb, out);
			r = lsm_put(db, &wo, key, klen, out, sizeof(out));
		}
	}
	if (r < 0)
		fprintf(stderr, "sb_tool: %s: %s\n", argv[1], strerror(-r));
	if (lsm_close(db) < 0 && r == 0)
		r = -EIO;
	return r < 0;
}
