/*
 * conn.c - the end of pass 4: connectivity.  Every directory has at most
 * one entry naming it (pass4.c settled that), so following those entries
 * upwards from any directory ends at the root, at a directory no entry
 * names (unattached), or in a loop.  Unattached directories and one member
 * of each loop are offered a place in /lost+found, named "#ino" as e2fsck
 * does; then every other inode no entry names (and that is not an orphan
 * of an unlinked open file, which pass 5 reclaims), and finally each
 * directory's '..' is checked against the entry that names it.
 *
 * A reconnection is one batch: the new entry, /lost+found's record with
 * one more entry (and link, for a directory), the inode's '..' for a
 * directory, and for a loop the removal of the entry that closed it with
 * its directory's record updated.  /lost+found is made when first needed.
 * The root directory, made again if its record is gone, is here too: the
 * other directory fsck makes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsck.h"

enum { CAND_UNATTACHED, CAND_LOOP };

static void make_dir_rec(struct fs_inode_rec *rec, uint32_t perm, uint64_t parent)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	memset(rec, 0, sizeof(*rec));
	rec->mode = S_IFDIR | perm;
	rec->nlink = 2;
	rec->generation = 1;
	rec->parent = parent;
	rec->atime = rec->mtime = rec->ctime = now;
}

int fsck_check_root(struct fsck_ctx *ctx)
{
	struct ns_inode *root = fsck_ns_find(ctx->ns, FS_ROOT_INO);
	struct problem_ctx p = { .ino = FS_ROOT_INO };
	struct fs_inode_rec rec;
	lsm_batch *b;
	int r;

	if (root && root->state == NS_OK && S_ISDIR(root->mode))
		return 0;
	if (!fix_problem(ctx, root && root->state == NS_OK ? PR_4_ROOT_NOT_DIR : PR_4_ROOT_MISSING,
	                 &p))
		return -ENOENT;
	make_dir_rec(&rec, 0755, FS_ROOT_INO);
	r = lsm_batch_new(&b);
	if (r == 0) {
		r = fsck_inode_put(b, FS_ROOT_INO, &rec, NULL, 0);
		if (r == 0)
			r = fsck_kv_write(ctx, b);
		lsm_batch_free(b);
	}
	fsck_fixed(ctx, r);
	if (r < 0)
		return r;
	if (!root && (r = fsck_ns_add(ctx->ns, FS_ROOT_INO, &root)) < 0)
		return r;
	memset(root, 0, sizeof(*root));
	root->ino = FS_ROOT_INO;
	root->mode = rec.mode;
	root->nlink = 2;
	root->parent = FS_ROOT_INO;
	return 0;
}


/* Finds /lost+found, making it if asked.  Returns its inode, or 0. */
static uint64_t get_lpf(struct fsck_ctx *ctx, uint64_t for_ino)
{
	static const char lpf_name[] = "lost+found";
	uint8_t key[FS_KEY_NAME_MAX], val[FS_DIRENT_LEN], skey[1], sval[FS_SUPER_LEN];
	struct fsck_ns *ns = ctx->ns;
	struct problem_ctx p = { .ino2 = for_ino };
	struct fs_inode_rec rec, root;
	struct ns_inode *ip;
	uint8_t *idata = NULL, dtype;
	size_t len, ilen = 0;
	struct timespec now;
	uint64_t ino;
	lsm_batch *b;
	void *v;
	int r;

	if (ns->lpf || ns->lpf_unusable)
		return ns->lpf;
	size_t klen = fs_key_dirent(key, FS_ROOT_INO, lpf_name, sizeof(lpf_name) - 1);

	r = fsck_kv_get(ctx, key, klen, &v, &len);
	if (r == 0) {
		r = fs_dirent_decode(v, len, &ino, &dtype);
		free(v);
		ip = r == 0 ? fsck_ns_find(ns, ino) : NULL;
		if (ip && ip->state == NS_OK && S_ISDIR(ip->mode)) {
			ns->lpf = ino;
			return ino;
		}
		fix_problem(ctx, PR_4_LPF_NOT_DIR, &p);
		ns->lpf_unusable = true;
		return 0;
	}
	if (r != -ENOENT) {
		fsck_op_error(ctx, r, "looking up /lost+found");
		ns->lpf_unusable = true;
		return 0;
	}
	if (!fix_problem(ctx, PR_4_LPF_MISSING, &p)) {
		ns->lpf_unusable = true;
		return 0;
	}
	ino = fsck_new_ino(ctx);
	make_dir_rec(&rec, 0700, FS_ROOT_INO);
	now = rec.mtime;
	r = fsck_inode_load(ctx, FS_ROOT_INO, &root, &idata, &ilen);
	if (r == 0)
		r = lsm_batch_new(&b);
	if (r == 0) {
		root.size++;
		root.nlink++;
		root.mtime = root.ctime = now;
		r = fsck_inode_put(b, FS_ROOT_INO, &root, idata, ilen);
		if (r == 0)
			r = fsck_inode_put(b, ino, &rec, NULL, 0);
		fs_dirent_encode(ino, DT_DIR, val);
		if (r == 0)
			r = lsm_batch_put(b, key, klen, val, sizeof(val));
		ctx->sb.ino_limit = ino + 1;
		fs_super_encode(&ctx->sb, sval);
		if (r == 0)
			r = lsm_batch_put(b, skey, fs_key_super(skey), sval, sizeof(sval));
		if (r == 0)
			r = fsck_kv_write(ctx, b);
		lsm_batch_free(b);
	}
	free(idata);
	fsck_fixed(ctx, r);
	if (r < 0 || (r = fsck_ns_add(ns, ino, &ip)) < 0) {
		ns->lpf_unusable = true;
		return 0;
	}
	ip->mode = rec.mode;
	ip->nlink = 2;
	ip->parent = FS_ROOT_INO;
	ip->conn = NS_CONN_REACHABLE;
	ip->links = 1;
	fsck_ns_set_name(ns, ip, FS_ROOT_INO, lpf_name, sizeof(lpf_name) - 1);
	ip = fsck_ns_find(ns, FS_ROOT_INO);
	ip->size++;
	ip->nlink++;
	ip->entries++;
	ip->subdirs++;
	ns->lpf = ino;
	return ino;
}

/* Puts ino into /lost+found as "#ino" (a free variant if taken).  For a
 * directory in a loop, the entry that names it now goes in the same batch. */
static int reconnect(struct fsck_ctx *ctx, uint64_t ino, bool loop)
{
	uint8_t key[FS_KEY_NAME_MAX], val[FS_DIRENT_LEN];
	struct fsck_ns *ns = ctx->ns;
	struct fs_inode_rec lrec, crec, orec;
	uint8_t *lidata = NULL, *cidata = NULL, *oidata = NULL;
	size_t lilen = 0, cilen = 0, oilen = 0, nlen = 0;
	struct ns_inode *ip, *lpf, *old = NULL;
	uint64_t lpf_ino = get_lpf(ctx, ino);
	char name[64];
	lsm_batch *b = NULL;
	bool dir;
	void *v;
	int r;

	if (!lpf_ino) {
		struct problem_ctx p = { .ino2 = ino };

		if (!ctx->ns->lpf_unusable)
			fix_problem(ctx, PR_4_NO_LPF, &p);
		return -ENOENT;
	}
	ip = fsck_ns_find(ns, ino);
	dir = S_ISDIR(ip->mode);
	for (int i = 0; i < 100; i++) {
		nlen = (size_t)snprintf(name, sizeof(name), i ? "#%llu.%d" : "#%llu",
		                        (unsigned long long)ino, i);
		r = fsck_kv_get(ctx, key, fs_key_dirent(key, lpf_ino, name, nlen), &v, &lilen);
		if (r == 0)
			free(v);
		if (r != 0)
			break;
	}
	if (r != -ENOENT)
		return r < 0 ? r : -EEXIST;
	lilen = 0;
	r = fsck_inode_load(ctx, lpf_ino, &lrec, &lidata, &lilen);
	if (r == 0 && dir)
		r = fsck_inode_load(ctx, ino, &crec, &cidata, &cilen);
	if (r == 0 && loop && ip->dparent) {
		old = fsck_ns_find(ns, ip->dparent);
		r = fsck_inode_load(ctx, old->ino, &orec, &oidata, &oilen);
	}
	if (r == 0)
		r = lsm_batch_new(&b);
	if (r < 0)
		goto out;
	fs_dirent_encode(ino, fs_mode_to_dtype(ip->mode), val);
	r = lsm_batch_put(b, key, fs_key_dirent(key, lpf_ino, name, nlen), val, sizeof(val));
	lrec.size++;
	if (dir) {
		lrec.nlink++;
		crec.parent = lpf_ino;
		if (r == 0)
			r = fsck_inode_put(b, ino, &crec, cidata, cilen);
	}
	if (r == 0 && old) {
		r = lsm_batch_delete(b, key, fs_key_dirent(key, old->ino, ns->names + ip->name_off,
		                                            ip->name_len));
		if (orec.size > 0)
			orec.size--;
		if (orec.nlink > 2)
			orec.nlink--;
		if (r == 0)
			r = fsck_inode_put(b, old->ino, &orec, oidata, oilen);
	}
	if (r == 0)
		r = fsck_inode_put(b, lpf_ino, &lrec, lidata, lilen);
	if (r == 0)
		r = fsck_kv_write(ctx, b);
	if (r < 0)
		goto out;
	/* The model: stored fields as written, counts as they now are. */
	lpf = fsck_ns_find(ns, lpf_ino);
	lpf->size = lrec.size;
	lpf->nlink = lrec.nlink;
	lpf->entries++;
	if (old) {
		old->size = orec.size;
		old->nlink = orec.nlink;
		old->entries--;
		old->subdirs--;
	}
	if (dir) {
		lpf->subdirs++;
		ip->parent = lpf_ino;
	}
	ip->links++;
	r = fsck_ns_set_name(ns, ip, lpf_ino, name, nlen);
out:
	lsm_batch_free(b);
	free(lidata);
	free(cidata);
	free(oidata);
	return r;
}

struct cand {
	uint64_t ino;
	int kind;
};

/* Marks every directory reachable or cut off; collects the directories to
 * offer /lost+found (unattached tops and one member of each loop). */
static int mark_dirs(struct fsck_ctx *ctx, struct cand **ret, size_t *ret_n)
{
	struct fsck_ns *ns = ctx->ns;
	uint64_t *stack = NULL;
	size_t depth = 0, cap = 0, ncand = 0;
	struct cand *cand = NULL;
	int r = 0;

	for (size_t i = 0; i < ns->n; i++)
		if (ns->v[i].conn != NS_CONN_REACHABLE)
			ns->v[i].conn = NS_CONN_UNKNOWN;
	for (size_t i = 0; i < ns->n && r == 0; i++) {
		struct ns_inode *ip = &ns->v[i];
		uint8_t verdict;
		int kind = -1;
		uint64_t top = 0;

		if (ip->state != NS_OK || !S_ISDIR(ip->mode) || ip->conn != NS_CONN_UNKNOWN)
			continue;
		depth = 0;
		for (;;) {
			if (ip->ino == FS_ROOT_INO || ip->conn == NS_CONN_REACHABLE) {
				verdict = NS_CONN_REACHABLE;
				break;
			}
			if (ip->conn == NS_CONN_CUT) {
				verdict = NS_CONN_CUT;
				break;
			}
			if (ip->conn == NS_CONN_VISITING) {
				verdict = NS_CONN_CUT;
				kind = CAND_LOOP;
				top = ip->ino;
				break;
			}
			if (depth == cap) {
				size_t nc = cap ? cap * 2 : 64;
				uint64_t *ns2 = realloc(stack, nc * sizeof(*ns2));

				if (!ns2) {
					r = -ENOMEM;
					break;
				}
				stack = ns2;
				cap = nc;
			}
			stack[depth++] = ip->ino;
			ip->conn = NS_CONN_VISITING;
			if (!ip->links || !ip->dparent) {
				verdict = NS_CONN_CUT;
				kind = CAND_UNATTACHED;
				top = ip->ino;
				break;
			}
			ip = fsck_ns_find(ns, ip->dparent);
		}
		if (r < 0)
			break;
		for (size_t k = 0; k < depth; k++)
			fsck_ns_find(ns, stack[k])->conn = verdict;
		if (kind >= 0 && !fsck_ns_find(ns, top)->declined) {
			struct cand *nc = realloc(cand, (ncand + 1) * sizeof(*nc));

			if (!nc) {
				r = -ENOMEM;
				break;
			}
			cand = nc;
			cand[ncand].ino = top;
			cand[ncand++].kind = kind;
		}
	}
	free(stack);
	*ret = cand;
	*ret_n = ncand;
	return r;
}

static void connect_dirs(struct fsck_ctx *ctx)
{
	for (int round = 0; round < 64 && !ctx->preen_halt; round++) {
		struct cand *cand = NULL;
		size_t n = 0;
		int r = mark_dirs(ctx, &cand, &n);

		if (r < 0) {
			fsck_op_error(ctx, r, "following the directory tree");
			free(cand);
			return;
		}
		for (size_t i = 0; i < n && !ctx->preen_halt; i++) {
			struct problem_ctx p = { .ino2 = cand[i].ino };
			bool loop = cand[i].kind == CAND_LOOP;

			if (fix_problem(ctx, loop ? PR_4_DIR_LOOP : PR_4_UNATTACHED_DIR, &p)) {
				r = reconnect(ctx, cand[i].ino, loop);
				if (r != -ENOENT)
					fsck_fixed(ctx, r);
				if (r == 0)
					continue;
			}
			fsck_ns_find(ctx->ns, cand[i].ino)->declined = 1;
		}
		free(cand);
		if (n == 0)
			return;
	}
}

/* Inodes other than directories that no entry names. */
static void connect_files(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = ctx->ns;

	for (size_t i = 0; i < ns->n && !ctx->preen_halt; i++) {
		struct ns_inode *ip = &ns->v[i];
		struct problem_ctx p = { .ino2 = ip->ino, .num = ip->size };
		uint64_t ino = ip->ino;
		int r;

		if (ip->state != NS_OK || S_ISDIR(ip->mode) || ip->links || ip->has_orphan)
			continue;
		p.str = fsck_type_name(ip->mode);
		if (ip->size == 0 && ip->blocks == 0 && !ip->has_xattrs) {
			if (!fix_problem(ctx, PR_4_UNATTACHED_EMPTY, &p)) {
				ip->declined = 1;
				continue;
			}
			r = fsck_delete_prefix(ctx, FS_KEY_BLOCK, ino, true);
			fsck_fixed(ctx, r);
			if (r == 0)
				fsck_ns_find(ns, ino)->state = NS_GONE;
			continue;
		}
		if (!fix_problem(ctx, PR_4_UNATTACHED, &p)) {
			ip->declined = 1;
			continue;
		}
		r = reconnect(ctx, ino, false);
		if (r != -ENOENT)
			fsck_fixed(ctx, r);
		/* reconnect may have grown the array (a new /lost+found) */
		if (r < 0)
			fsck_ns_find(ns, ino)->declined = 1;
	}
}

struct set_parent {
	uint64_t parent;
};

static void set_parent_fn(struct fs_inode_rec *rec, uint8_t **idata, size_t *ilen, void *arg)
{
	(void)idata;
	(void)ilen;
	rec->parent = ((struct set_parent *)arg)->parent;
}

/* '..' of every reachable directory is the directory naming it. */
static void check_dotdot(struct fsck_ctx *ctx)
{
	struct fsck_ns *ns = ctx->ns;

	for (size_t i = 0; i < ns->n && !ctx->preen_halt; i++) {
		struct ns_inode *ip = &ns->v[i];
		struct set_parent sp;
		struct problem_ctx p;
		int r;

		if (ip->state != NS_OK || !S_ISDIR(ip->mode) || ip->conn != NS_CONN_REACHABLE)
			continue;
		sp.parent = ip->ino == FS_ROOT_INO ? FS_ROOT_INO : ip->dparent;
		if (ip->parent == sp.parent)
			continue;
		memset(&p, 0, sizeof(p));
		p.ino = ip->ino;
		p.num = ip->parent;
		p.num2 = sp.parent;
		if (!fix_problem(ctx, PR_4_DIR_PARENT, &p))
			continue;
		r = fsck_inode_update(ctx, ip->ino, set_parent_fn, &sp);
		fsck_fixed(ctx, r);
		if (r == 0)
			ip->parent = sp.parent;
	}
}

void fsck_connect(struct fsck_ctx *ctx)
{
	connect_dirs(ctx);
	connect_files(ctx);
	if (!ctx->preen_halt)
		check_dotdot(ctx);
}
