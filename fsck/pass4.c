/*
 * pass4.c - pass 4, the namespace.
 *
 * Checks:  every inode record decodes, with a known file type (a symlink
 *          needs a target); the root directory exists and is a directory;
 *          every key belongs to the schema and is well formed; every
 *          directory entry has a legal name and a value that decodes, sits
 *          in a directory, names an existing inode other than the root,
 *          with the inode's file type; a directory has one entry naming it;
 *          then (conn.c) every directory is reachable from the root, loops
 *          included, every inode is in some directory (or reconnected under
 *          /lost+found), and each directory's '..' is its parent.
 * Collects: the namespace model (ns.c): per inode its stored fields and the
 *          counts pass 5 compares them with (entries, subdirectories, links,
 *          block keys, the end of its data), 'O' and 'X' keys, and keys of
 *          inodes that do not exist (struct ns_stray, for pass 5).
 * Relies on: passes 1 to 3 having found the tree readable (engine_ok) and
 *          a superblock (ns_ok); reads through kv.c.
 * Frees:   its issue lists; the model lives until main.c frees it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsck.h"

/* An entry that needs a question, kept until every name is known. */
enum { ISSUE_VALUE, ISSUE_NAME, ISSUE_DANGLING, ISSUE_NOT_DIR, ISSUE_TYPE, ISSUE_ROOT,
       ISSUE_EXTRA, ISSUE_SETTLED };

struct issue {
	uint64_t parent, child;
	uint8_t dtype;
	uint8_t kind;
	uint16_t namelen;
	char *name;
	const char *why;          /* ISSUE_NOT_DIR: what the parent is */
};

struct bad_rec {
	uint64_t ino;
	const char *why;
};

struct badkey {
	uint8_t *key;
	size_t len;
	int code;
};

struct pass4 {
	struct issue *v;          /* entries to ask about, in key order */
	size_t n, cap;
	struct bad_rec *badrec;   /* damaged inode records */
	size_t nbadrec;
	struct badkey *bad;       /* keys outside the schema or malformed */
	size_t nbad, cap_bad;
	struct fsck_kv_iter *it;
	struct ns_inode *last;    /* the block/xattr scans' last lookup */
};

static int add_issue(struct pass4 *s, int kind, uint64_t parent, const char *name, size_t len,
                     uint64_t child, uint8_t dtype, const char *why)
{
	struct issue *is;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct issue *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	is = &s->v[s->n];
	is->name = malloc(len ? len : 1);
	if (!is->name)
		return -ENOMEM;
	memcpy(is->name, name, len);
	is->namelen = (uint16_t)len;
	is->parent = parent;
	is->child = child;
	is->dtype = dtype;
	is->kind = (uint8_t)kind;
	is->why = why;
	s->n++;
	return 0;
}

static void pass4_free(struct pass4 *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	for (size_t i = 0; i < s->nbad; i++)
		free(s->bad[i].key);
	free(s->bad);
	free(s->badrec);
	fsck_kv_iter_free(s->it);
}

/* ---- the record scan --------------------------------------------------- */

static const char *record_problem(const struct fs_inode_rec *rec, size_t ilen)
{
	switch (rec->mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return NULL;
	case S_IFLNK:
		if (ilen == 0)
			return "a symlink without a target";
		if (ilen > FS_SYMLINK_MAX)
			return "a symlink target over 4095 bytes";
		return NULL;
	default:
		return "an unknown file type";
	}
}

/* Records of damaged inodes are cleared at once, before the entries are
 * looked at, so that entries naming them are found dangling. */
static int clear_bad_inode(struct fsck_ctx *ctx, struct ns_inode *ip, const char *why)
{
	struct problem_ctx p = { .ino = ip->ino, .str = why };
	int r;

	ip->state = NS_BAD;
	if (!fix_problem(ctx, PR_4_INODE_BAD, &p))
		return 0;
	r = fsck_delete_prefix(ctx, FS_KEY_XATTR, ip->ino, false);
	if (r == 0)
		r = fsck_delete_prefix(ctx, FS_KEY_BLOCK, ip->ino, true);
	fsck_fixed(ctx, r);
	return 0;
}

static int add_badkey(struct pass4 *s, const void *k, size_t kl, int code)
{
	struct badkey *nb;

	if (s->nbad == s->cap_bad) {
		size_t cap = s->cap_bad ? s->cap_bad * 2 : 16;

		nb = realloc(s->bad, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		s->bad = nb;
		s->cap_bad = cap;
	}
	nb = &s->bad[s->nbad];
	nb->key = malloc(kl ? kl : 1);
	if (!nb->key)
		return -ENOMEM;
	memcpy(nb->key, k, kl);
	nb->len = kl;
	nb->code = code;
	s->nbad++;
	return 0;
}

/* The first scan: every inode record into the model.  Damaged ones are
 * marked NS_BAD with their reason in s->badrec, cleared by the caller. */
static int scan_inodes(struct fsck_ctx *ctx, struct pass4 *s)
{
	uint8_t start = FS_KEY_INODE;
	struct fsck_kv_iter *it = s->it;
	int r = 0;

	for (fsck_kv_seek(it, &start, 1); fsck_kv_valid(it) && r == 0; fsck_kv_next(it)) {
		struct fs_inode_rec rec;
		struct ns_inode *ip;
		const uint8_t *idata;
		const char *why = NULL;
		const void *k, *v;
		size_t kl, vl, ilen = 0;
		uint64_t ino;

		k = fsck_kv_key(it, &kl);
		if (kl == 0 || ((const uint8_t *)k)[0] != FS_KEY_INODE)
			break;
		fsck_progress_add(ctx, 1);
		if (fs_key_parse_ino(k, kl, FS_KEY_INODE, &ino) < 0) {
			r = add_badkey(s, k, kl, PR_4_KEY_BAD);
			continue;
		}
		r = fsck_kv_value(it, &v, &vl);
		if (r == 0)
			r = fsck_ns_add(ctx->ns, ino, &ip);
		if (r < 0)
			break;
		if (ino == 0)
			why = "inode number 0";
		else if (fs_inode_decode(v, vl, &rec, &idata, &ilen) < 0)
			why = "it does not decode";
		else
			why = record_problem(&rec, ilen);
		if (why) {
			struct bad_rec *nb = realloc(s->badrec, (s->nbadrec + 1) * sizeof(*nb));

			if (!nb) {
				r = -ENOMEM;
				break;
			}
			s->badrec = nb;
			nb[s->nbadrec].ino = ino;
			nb[s->nbadrec++].why = why;
			ip->state = NS_BAD;
			continue;
		}
		ip->mode = rec.mode;
		ip->nlink = rec.nlink;
		ip->size = rec.size;
		ip->nblocks = rec.nblocks;
		ip->parent = rec.parent;
		ip->flags = rec.flags;
		ip->ilen = (uint32_t)ilen;
	}
	if (r == 0)
		r = fsck_kv_status(it);
	return r;
}

/* ---- the scan of every other key ------------------------------------- */

struct stray_list {
	struct ns_stray *v;
	size_t n, cap;
};

static struct ns_stray *stray_get(struct fsck_ns *ns, uint64_t ino)
{
	struct ns_stray *s;

	for (size_t i = ns->nstray; i-- > 0;)
		if (ns->stray[i].ino == ino)
			return &ns->stray[i];
	if (ns->nstray == ns->cap_stray) {
		size_t cap = ns->cap_stray ? ns->cap_stray * 2 : 16;
		struct ns_stray *v = realloc(ns->stray, cap * sizeof(*v));

		if (!v)
			return NULL;
		ns->stray = v;
		ns->cap_stray = cap;
	}
	s = &ns->stray[ns->nstray++];
	memset(s, 0, sizeof(*s));
	s->ino = ino;
	return s;
}

static struct ns_inode *live_inode(struct fsck_ctx *ctx, struct pass4 *s, uint64_t ino)
{
	struct ns_inode *ip = s->last && s->last->ino == ino ? s->last : fsck_ns_find(ctx->ns, ino);

	s->last = ip;
	return ip && ip->state == NS_OK ? ip : NULL;
}

static bool legal_name(const char *name, size_t len)
{
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

/* A valid entry: counts it for its directory and its inode. */
static int count_entry(struct fsck_ctx *ctx, struct ns_inode *dir, struct ns_inode *child,
                       const char *name, size_t len)
{
	dir->entries++;
	child->links++;
	if (S_ISDIR(child->mode))
		dir->subdirs++;
	if (!child->name_off)
		return fsck_ns_set_name(ctx->ns, child, dir->ino, name, len);
	return 0;
}

static int scan_dirent(struct fsck_ctx *ctx, struct pass4 *s, const void *k, size_t kl)
{
	struct ns_inode *dir, *child;
	const char *name;
	const void *v;
	size_t len, vl;
	uint64_t parent, ino;
	uint8_t dtype;
	int r;

	if (fs_key_parse_named(k, kl, FS_KEY_DIRENT, &parent, &name, &len) < 0)
		return 1;
	r = fsck_kv_value(s->it, &v, &vl);
	if (r < 0)
		return r;
	if (fs_dirent_decode(v, vl, &ino, &dtype) < 0)
		return add_issue(s, ISSUE_VALUE, parent, name, len, 0, 0, NULL);
	dir = fsck_ns_find(ctx->ns, parent);
	if (!dir || dir->state != NS_OK || !S_ISDIR(dir->mode))
		return add_issue(s, ISSUE_NOT_DIR, parent, name, len, ino, dtype,
		                 !dir ? "missing" : dir->state != NS_OK ? "damaged" : "not a directory");
	if (!legal_name(name, len))
		return add_issue(s, ISSUE_NAME, parent, name, len, ino, dtype, NULL);
	child = fsck_ns_find(ctx->ns, ino);
	if (!child || child->state != NS_OK)
		return add_issue(s, ISSUE_DANGLING, parent, name, len, ino, dtype, NULL);
	if (ino == FS_ROOT_INO)
		return add_issue(s, ISSUE_ROOT, parent, name, len, ino, dtype, NULL);
	if (S_ISDIR(child->mode) && child->links > 0)
		return add_issue(s, ISSUE_EXTRA, parent, name, len, ino, dtype, NULL);
	if (dtype != fs_mode_to_dtype(child->mode) &&
	    (r = add_issue(s, ISSUE_TYPE, parent, name, len, ino, dtype, NULL)) < 0)
		return r;
	return count_entry(ctx, dir, child, name, len);
}

static int scan_block(struct fsck_ctx *ctx, struct pass4 *s, const void *k, size_t kl)
{
	uint32_t bs = ctx->sb.block_size ? ctx->sb.block_size : FS_BLOCK_SIZE_DEFAULT;
	struct ns_inode *ip;
	struct ns_stray *st;
	uint64_t ino, idx, start;
	size_t vl;
	int r;

	if (fs_key_parse_block(k, kl, &ino, &idx) < 0)
		return 1;
	ip = live_inode(ctx, s, ino);
	if (!ip) {
		st = stray_get(ctx->ns, ino);
		if (!st)
			return -ENOMEM;
		st->blocks++;
		return 0;
	}
	ip->blocks++;
	if (!S_ISREG(ip->mode) || (ip->flags & FS_INODE_INLINE))
		return 0;
	r = fsck_kv_value_len(s->it, &vl);
	if (r < 0)
		return r;
	if (vl > bs) {
		if (!ip->big_block) {
			ip->big_block = 1;
			ip->big_idx = idx;
		}
		vl = bs;
	}
	start = idx * bs;
	if (idx > UINT64_MAX / bs)
		start = UINT64_MAX - bs;
	if (vl == 0 && start >= ip->size)
		ip->past_eof++;
	else if (start + vl > ip->data_end)
		ip->data_end = start + vl;
	return 0;
}

/* One key of the second scan; returns 1 for a malformed key. */
static int scan_key(struct fsck_ctx *ctx, struct pass4 *s, const uint8_t *k, size_t kl)
{
	const char *name;
	struct ns_inode *ip;
	struct ns_stray *st;
	uint64_t ino;
	size_t len;

	switch (k[0]) {
	case FS_KEY_SUPER:
		return kl == 1 ? 0 : 1;
	case FS_KEY_DIRENT:
		return scan_dirent(ctx, s, k, kl);
	case FS_KEY_BLOCK:
		return scan_block(ctx, s, k, kl);
	case FS_KEY_ORPHAN:
		if (fs_key_parse_ino(k, kl, FS_KEY_ORPHAN, &ino) < 0)
			return 1;
		if ((ip = live_inode(ctx, s, ino))) {
			ip->has_orphan = 1;
		} else {
			if (!(st = stray_get(ctx->ns, ino)))
				return -ENOMEM;
			st->orphan = 1;
		}
		return 0;
	case FS_KEY_XATTR:
		if (fs_key_parse_named(k, kl, FS_KEY_XATTR, &ino, &name, &len) < 0)
			return 1;
		if ((ip = live_inode(ctx, s, ino))) {
			ip->has_xattrs = 1;
		} else {
			if (!(st = stray_get(ctx->ns, ino)))
				return -ENOMEM;
			st->xattrs++;
		}
		return 0;
	default:
		return 2;
	}
}

static int scan_rest(struct fsck_ctx *ctx, struct pass4 *s)
{
	uint8_t skip_to = FS_KEY_INODE + 1;
	int r = 0;

	for (fsck_kv_seek(s->it, "", 0); fsck_kv_valid(s->it) && r >= 0;) {
		size_t kl;
		const uint8_t *k = fsck_kv_key(s->it, &kl);

		/* Inode records were the first scan: jump over them. */
		if (kl > 0 && k[0] == FS_KEY_INODE) {
			fsck_kv_seek(s->it, &skip_to, 1);
			continue;
		}
		fsck_progress_add(ctx, 1);
		r = kl == 0 ? 2 : scan_key(ctx, s, k, kl);
		if (r > 0)
			r = add_badkey(s, k, kl, r == 1 ? PR_4_KEY_BAD : PR_4_KEY_UNKNOWN);
		if (fsck_cancelled())
			break;
		fsck_kv_next(s->it);
	}
	if (r >= 0)
		r = fsck_kv_status(s->it);
	return r;
}

/* ---- the questions ----------------------------------------------------- */

static const char *dtype_name(uint8_t dtype)
{
	switch (dtype) {
	case DT_REG: return "regular file";
	case DT_DIR: return "directory";
	case DT_LNK: return "symlink";
	case DT_CHR: return "character device";
	case DT_BLK: return "block device";
	case DT_FIFO: return "fifo";
	case DT_SOCK: return "socket";
	default: return "file of unknown type";
	}
}

const char *fsck_type_name(uint32_t mode)
{
	return dtype_name(fs_mode_to_dtype(mode));
}

/* Removes an entry, and its count from its directory's record, in one
 * batch.  The model's stored fields follow. */
static int clear_entry(struct fsck_ctx *ctx, const struct issue *is)
{
	uint8_t key[FS_KEY_NAME_MAX];
	struct ns_inode *dir = fsck_ns_find(ctx->ns, is->parent);
	struct fs_inode_rec rec;
	uint8_t *idata = NULL;
	size_t ilen = 0;
	lsm_batch *b;
	int r;

	r = lsm_batch_new(&b);
	if (r < 0)
		return r;
	r = lsm_batch_delete(b, key, fs_key_dirent(key, is->parent, is->name, is->namelen));
	if (r == 0 && dir && dir->state == NS_OK && S_ISDIR(dir->mode)) {
		r = fsck_inode_load(ctx, dir->ino, &rec, &idata, &ilen);
		if (r == 0) {
			if (rec.size > 0)
				rec.size--;
			if (is->dtype == DT_DIR && rec.nlink > 2)
				rec.nlink--;
			r = fsck_inode_put(b, dir->ino, &rec, idata, ilen);
		}
		if (r == 0) {
			dir->size = rec.size;
			dir->nlink = rec.nlink;
		}
	}
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	free(idata);
	return r;
}

static int fix_entry_type(struct fsck_ctx *ctx, const struct issue *is, uint8_t dtype)
{
	uint8_t key[FS_KEY_NAME_MAX], val[FS_DIRENT_LEN];
	lsm_batch *b;
	int r = lsm_batch_new(&b);

	if (r < 0)
		return r;
	fs_dirent_encode(is->child, dtype, val);
	r = lsm_batch_put(b, key, fs_key_dirent(key, is->parent, is->name, is->namelen), val,
	                  sizeof(val));
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	lsm_batch_free(b);
	return r;
}

/* Of several entries naming one directory, keeps the one its '..' agrees
 * with (the first found if none does); the others become the issues. */
static int choose_dir_links(struct fsck_ctx *ctx, struct pass4 *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct issue *is = &s->v[i];
		struct ns_inode *child = fsck_ns_find(ctx->ns, is->child), *old, *dir;
		char name[FS_NAME_MAX];
		size_t len;
		int r;

		if (is->kind != ISSUE_EXTRA || is->parent != child->parent ||
		    child->dparent == child->parent)
			continue;
		old = fsck_ns_find(ctx->ns, child->dparent);
		dir = fsck_ns_find(ctx->ns, is->parent);
		len = child->name_len;
		memcpy(name, ctx->ns->names + child->name_off, len);
		old->entries--;
		old->subdirs--;
		dir->entries++;
		dir->subdirs++;
		r = fsck_ns_set_name(ctx->ns, child, is->parent, is->name, is->namelen);
		if (r == 0)
			r = add_issue(s, ISSUE_EXTRA, old->ino, name, len, child->ino, DT_DIR, NULL);
		if (r < 0)
			return r;
		s->v[i].kind = ISSUE_SETTLED;   /* no question: the entry is the one kept */
	}
	return 0;
}

static const int issue_code[] = {
	[ISSUE_VALUE] = PR_4_DIRENT_BAD, [ISSUE_NAME] = PR_4_DIRENT_NAME,
	[ISSUE_DANGLING] = PR_4_DIRENT_DANGLING, [ISSUE_NOT_DIR] = PR_4_DIRENT_NOT_DIR,
	[ISSUE_TYPE] = PR_4_DIRENT_TYPE, [ISSUE_ROOT] = PR_4_DIRENT_ROOT,
	[ISSUE_EXTRA] = PR_4_DIR_MULTI,
};

static void ask_issue(struct fsck_ctx *ctx, const struct issue *is)
{
	struct ns_inode *dir = fsck_ns_find(ctx->ns, is->parent);
	struct ns_inode *child = fsck_ns_find(ctx->ns, is->child);
	struct problem_ctx p = { .ino = is->parent, .ino2 = is->child, .name = is->name,
	                         .namelen = is->namelen, .str = is->why };
	bool dir_ok = dir && dir->state == NS_OK && S_ISDIR(dir->mode);
	bool child_ok = child && child->state == NS_OK;
	int r;

	if (is->kind == ISSUE_TYPE) {
		p.str = dtype_name(is->dtype);
		p.str2 = fsck_type_name(child->mode);
		if (fix_problem(ctx, PR_4_DIRENT_TYPE, &p))
			fsck_fixed(ctx, fix_entry_type(ctx, is, fs_mode_to_dtype(child->mode)));
		return;
	}
	if (fix_problem(ctx, issue_code[is->kind], &p)) {
		r = clear_entry(ctx, is);
		fsck_fixed(ctx, r);
		if (r == 0)
			return;
	}
	/* The entry stays: it counts for its directory as it is. */
	if (!dir_ok)
		return;
	dir->entries++;
	if (is->dtype == DT_DIR || (child_ok && S_ISDIR(child->mode)))
		dir->subdirs++;
	if (child_ok && !S_ISDIR(child->mode) && is->kind != ISSUE_ROOT)
		child->links++;
}

static void ask_bad_keys(struct fsck_ctx *ctx, struct pass4 *s)
{
	for (size_t i = 0; i < s->nbad && !ctx->preen_halt; i++) {
		struct problem_ctx p = { .key = s->bad[i].key, .klen = s->bad[i].len };

		if (fix_problem(ctx, s->bad[i].code, &p))
			fsck_fixed(ctx, fsck_delete_key(ctx, s->bad[i].key, s->bad[i].len));
	}
}

int fsck_pass4(struct fsck_ctx *ctx)
{
	struct pass4 s = { 0 };
	int r;

	if (ctx->engine_ok && ctx->sb_err) {
		char why[512];
		struct problem_ctx p = { .str = why };
		uint8_t key[1];
		size_t len;
		void *val;

		/* Pass 1 could not read it, yet the tree read whole since. */
		r = fsck_kv_get(ctx, key, fs_key_super(key), &val, &len);
		if (r == 0)
			free(val);
		fsck_why(ctx, r, false, why, sizeof(why));
		fix_problem(ctx, PR_1_SUPER_UNREADABLE, &p);
	}
	if (!ctx->engine_ok || !ctx->ns_ok)
		return 0;
	r = fsck_ns_new(ctx);
	if (r == 0)
		r = fsck_kv_iter_new(ctx, &s.it);
	if (r < 0)
		goto fail;
	fsck_progress_start(ctx, ctx->table_entries + ctx->wal_records);
	r = scan_inodes(ctx, &s);
	fsck_kv_iter_free(s.it);
	s.it = NULL;
	if (r < 0)
		goto fail;
	/* Repairs that must precede the entry scan: damaged records (so that
	 * entries naming them are dangling), the superblock, the root. */
	for (size_t i = 0; i < s.nbadrec && !ctx->preen_halt; i++)
		clear_bad_inode(ctx, fsck_ns_find(ctx->ns, s.badrec[i].ino), s.badrec[i].why);
	if (ctx->sb_rewrite && !ctx->preen_halt)
		fsck_super_rebuild(ctx);
	if (ctx->preen_halt || fsck_check_root(ctx) < 0) {
		fsck_progress_end(ctx);
		pass4_free(&s);
		return 0;
	}
	r = fsck_kv_iter_new(ctx, &s.it);
	if (r == 0)
		r = scan_rest(ctx, &s);
	fsck_kv_iter_free(s.it);
	s.it = NULL;
	fsck_progress_end(ctx);
	if (r < 0)
		goto fail;
	if (fsck_cancelled()) {
		pass4_free(&s);
		return 0;
	}
	ask_bad_keys(ctx, &s);
	r = choose_dir_links(ctx, &s);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < s.n && !ctx->preen_halt; i++)
		if (s.v[i].kind <= ISSUE_EXTRA)
			ask_issue(ctx, &s.v[i]);
	pass4_free(&s);
	if (!ctx->preen_halt)
		fsck_connect(ctx);
	return 0;
fail:
	fsck_progress_end(ctx);
	pass4_free(&s);
	if (r == -ENOMEM || r == -EIO) {
		fsck_op_error(ctx, r, "checking the namespace");
	} else {
		char why[512];
		struct problem_ctx p = { .str = fsck_why(ctx, r, false, why, sizeof(why)) };

		fix_problem(ctx, PR_3_SCAN_FAILED, &p);
	}
	fsck_ns_free(ctx);
	return r;
}
