/*
 * inode.c - the in-memory inode cache, the striped inode locks, inode number
 * allocation and the reclaiming of dead inodes.
 *
 * The cache is write-through: every operation commits its engine batch
 * first and only then copies the new records into the cache (txn.c), so a
 * cached record is never newer than the store, and one that was evicted is
 * simply read back.  It is split into shards, each with its own mutex, hash
 * table and LRU, so that operations on different inodes do not meet on one
 * lock.  An entry carries three counts: nlookup (lookups the kernel holds,
 * libfuse's rule), nopen (open handles) and pins (operations using it right
 * now).  While any is non-zero the entry stays; when all are zero it goes on
 * the LRU, bounded by inode_cache_max, or is freed at once if its inode was
 * deleted.  Deleted inodes the kernel still knows ("zombies") answer getattr
 * with nlink 0 until the kernel forgets them.
 *
 * Inode numbers are handed out from memory, from a range reserved in the
 * superblock FS_INO_CHUNK at a time: the superblock write that reserves a
 * range reaches the engine log before any create that uses a number from it,
 * so after a crash the next mount starts above every number ever handed out
 * and no number is used twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

/* ---- stripe locks ------------------------------------------------------ */

void fs_lockset_init(struct lockset *ls, bool excl)
{
	ls->n = 0;
	ls->excl = excl;
	ls->held = false;
}

static bool lockset_has(const struct lockset *ls, unsigned s)
{
	for (unsigned i = 0; i < ls->n; i++)
		if (ls->idx[i] == s)
			return true;
	return false;
}

static void lockset_insert(struct lockset *ls, unsigned s)
{
	unsigned i;

	if (lockset_has(ls, s))
		return;
	if (ls->n == sizeof(ls->idx) / sizeof(ls->idx[0]))
		abort();  /* no operation touches more than 8 inodes: a bug */
	for (i = ls->n; i > 0 && ls->idx[i - 1] > s; i--)
		ls->idx[i] = ls->idx[i - 1];
	ls->idx[i] = s;
	ls->n++;
}

void fs_lockset_add(struct lockset *ls, uint64_t ino)
{
	if (ls->held)
		abort();  /* fs_lockset_unlock would release a stripe never taken */
	lockset_insert(ls, ino_stripe(ino));
}

static void stripe_lock(struct fs *fs, unsigned s, bool excl)
{
	if (excl)
		pthread_rwlock_wrlock(&fs->stripes[s]);
	else
		pthread_rwlock_rdlock(&fs->stripes[s]);
}

void fs_lockset_lock(struct fs *fs, struct lockset *ls)
{
	for (unsigned i = 0; i < ls->n; i++)
		stripe_lock(fs, ls->idx[i], ls->excl);
	ls->held = true;
}

void fs_lockset_unlock(struct fs *fs, struct lockset *ls)
{
	if (!ls->held)
		return;
	for (unsigned i = ls->n; i > 0; i--)
		pthread_rwlock_unlock(&fs->stripes[ls->idx[i - 1]]);
	ls->held = false;
}

bool fs_lockset_try_add(struct fs *fs, struct lockset *ls, uint64_t ino)
{
	unsigned s = ino_stripe(ino);
	int r;

	if (lockset_has(ls, s))
		return true;
	r = ls->excl ? pthread_rwlock_trywrlock(&fs->stripes[s])
	             : pthread_rwlock_tryrdlock(&fs->stripes[s]);
	if (r != 0)
		return false;
	lockset_insert(ls, s);
	return true;
}

/* ---- cache shards ------------------------------------------------------ */

static struct cache_shard *shard_of(struct fs *fs, uint64_t ino)
{
	return &fs->shards[ino % FS_SHARDS];
}

static size_t bucket_of(const struct cache_shard *sh, uint64_t ino)
{
	return (size_t)(((ino / FS_SHARDS) * 0x9E3779B97F4A7C15ull) >> 20) & (sh->nbuckets - 1);
}

static struct inode *shard_find(struct cache_shard *sh, uint64_t ino)
{
	struct inode *ip;

	for (ip = sh->buckets[bucket_of(sh, ino)]; ip; ip = ip->hnext)
		if (ip->ino == ino)
			return ip;
	return NULL;
}

/* Doubles the table; on allocation failure the chains just grow longer. */
static void shard_grow(struct cache_shard *sh)
{
	size_t n = sh->nbuckets * 2, old = sh->nbuckets;
	struct inode **nb = calloc(n, sizeof(*nb)), **ob = sh->buckets;

	if (!nb)
		return;
	sh->buckets = nb;
	sh->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		struct inode *ip = ob[i], *next;

		for (; ip; ip = next) {
			size_t b = bucket_of(sh, ip->ino);

			next = ip->hnext;
			ip->hnext = nb[b];
			nb[b] = ip;
		}
	}
	free(ob);
}

static void shard_insert(struct cache_shard *sh, struct inode *ip)
{
	size_t b;

	if (sh->count >= sh->nbuckets * 2)
		shard_grow(sh);
	b = bucket_of(sh, ip->ino);
	ip->hnext = sh->buckets[b];
	sh->buckets[b] = ip;
	sh->count++;
}

static void shard_remove(struct cache_shard *sh, struct inode *ip)
{
	struct inode **pp = &sh->buckets[bucket_of(sh, ip->ino)];

	while (*pp && *pp != ip)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = ip->hnext;
		sh->count--;
	}
}

static void lru_unlink(struct cache_shard *sh, struct inode *ip)
{
	if (!ip->lru_next)
		return;
	ip->lru_prev->lru_next = ip->lru_next;
	ip->lru_next->lru_prev = ip->lru_prev;
	ip->lru_next = ip->lru_prev = NULL;
	sh->lru_count--;
}

static void lru_push(struct cache_shard *sh, struct inode *ip)
{
	ip->lru_prev = sh->lru.lru_prev;
	ip->lru_next = &sh->lru;
	sh->lru.lru_prev->lru_next = ip;
	sh->lru.lru_prev = ip;
	sh->lru_count++;
}

static void inode_free(struct inode *ip)
{
	if (!ip)
		return;
	free(ip->idata);
	free(ip);
}

static bool inode_idle(const struct inode *ip)
{
	return ip->pins == 0 && ip->nlookup == 0 && ip->nopen == 0;
}

/* An entry's counts reached zero: free it if dead, else park it on the LRU
 * and trim the LRU.  REQUIRES: sh->mu. */
static void shard_settle(struct fs *fs, struct cache_shard *sh, struct inode *ip)
{
	if (!inode_idle(ip))
		return;
	if (ip->deleted) {
		shard_remove(sh, ip);
		inode_free(ip);
		return;
	}
	if (!ip->lru_next)
		lru_push(sh, ip);
	while (sh->lru_count > fs->lru_max_per_shard) {
		struct inode *old = sh->lru.lru_next;

		lru_unlink(sh, old);
		shard_remove(sh, old);
		inode_free(old);
	}
}

int fs_inode_cache_init(struct fs *fs, size_t max)
{
	fs->lru_max_per_shard = max / FS_SHARDS;
	for (unsigned i = 0; i < FS_SHARDS; i++) {
		struct cache_shard *sh = &fs->shards[i];

		sh->nbuckets = 64;
		sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
		if (!sh->buckets) {
			while (i-- > 0) {
				free(fs->shards[i].buckets);
				pthread_mutex_destroy(&fs->shards[i].mu);
			}
			return -ENOMEM;
		}
		pthread_mutex_init(&sh->mu, NULL);
		sh->count = 0;
		sh->lru.lru_next = sh->lru.lru_prev = &sh->lru;
		sh->lru_count = 0;
	}
	return 0;
}

void fs_inode_cache_done(struct fs *fs)
{
	for (unsigned i = 0; i < FS_SHARDS; i++) {
		struct cache_shard *sh = &fs->shards[i];

		for (size_t b = 0; b < sh->nbuckets; b++) {
			struct inode *ip = sh->buckets[b], *next;

			for (; ip; ip = next) {
				next = ip->hnext;
				inode_free(ip);
			}
		}
		free(sh->buckets);
		pthread_mutex_destroy(&sh->mu);
	}
}

/* Reads ino's record from the engine into a new, unlinked entry. */
static int inode_load(struct fs *fs, uint64_t ino, struct inode **ret_ip)
{
	uint8_t key[FS_KEY_INO_LEN];
	const uint8_t *idata;
	struct inode *ip;
	size_t len, ilen;
	void *val;
	int r;

	r = lsm_get(fs->db, NULL, key, fs_key_inode(key, ino), &val, &len);
	if (r < 0)
		return r;
	ip = calloc(1, sizeof(*ip));
	if (!ip) {
		free(val);
		return -ENOMEM;
	}
	ip->ino = ino;
	r = fs_inode_decode(val, len, &ip->rec, &idata, &ilen);
	if (r < 0) {
		lsm_errf(r, "inode %llu: damaged record (run fsck.lsmfs)", (unsigned long long)ino);
		goto fail;
	}
	if (ilen) {
		ip->idata = malloc(ilen);
		if (!ip->idata) {
			r = -ENOMEM;
			goto fail;
		}
		memcpy(ip->idata, idata, ilen);
		ip->ilen = ilen;
	}
	free(val);
	*ret_ip = ip;
	return 0;
fail:
	free(val);
	free(ip);
	return r;
}

static int inode_get(struct fs *fs, uint64_t ino, bool any, struct inode **ret_ip)
{
	struct cache_shard *sh = shard_of(fs, ino);
	struct inode *ip, *loaded;
	int r;

	pthread_mutex_lock(&sh->mu);
	ip = shard_find(sh, ino);
	if (ip) {
		if (ip->deleted && !any) {
			pthread_mutex_unlock(&sh->mu);
			return -ENOENT;
		}
		ip->pins++;
		lru_unlink(sh, ip);
		pthread_mutex_unlock(&sh->mu);
		*ret_ip = ip;
		return 0;
	}
	pthread_mutex_unlock(&sh->mu);

	r = inode_load(fs, ino, &loaded);
	if (r < 0)
		return r;
	pthread_mutex_lock(&sh->mu);
	ip = shard_find(sh, ino);
	if (ip) {
		/* Another reader under the same shared stripe lock got here
		 * first; its copy is as new as ours. */
		inode_free(loaded);
		lru_unlink(sh, ip);
	} else {
		ip = loaded;
		shard_insert(sh, ip);
	}
	ip->pins++;
	pthread_mutex_unlock(&sh->mu);
	*ret_ip = ip;
	return 0;
}

int fs_inode_get(struct fs *fs, uint64_t ino, struct inode **ret_ip)
{
	return inode_get(fs, ino, false, ret_ip);
}

int fs_inode_get_any(struct fs *fs, uint64_t ino, struct inode **ret_ip)
{
	return inode_get(fs, ino, true, ret_ip);
}

void fs_inode_put(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh;

	if (!ip)
		return;
	sh = shard_of(fs, ip->ino);
	pthread_mutex_lock(&sh->mu);
	ip->pins--;
	shard_settle(fs, sh, ip);
	pthread_mutex_unlock(&sh->mu);
}

int fs_inode_new(struct fs *fs, uint64_t ino, const struct fs_inode_rec *rec,
                 uint8_t *idata, size_t ilen, struct inode **ret_ip)
{
	struct cache_shard *sh = shard_of(fs, ino);
	struct inode *ip = calloc(1, sizeof(*ip));

	if (!ip) {
		free(idata);
		return -ENOMEM;
	}
	ip->ino = ino;
	ip->rec = *rec;
	ip->idata = idata;
	ip->ilen = ilen;
	ip->pins = 1;
	pthread_mutex_lock(&sh->mu);
	if (shard_find(sh, ino)) {
		pthread_mutex_unlock(&sh->mu);
		inode_free(ip);
		return lsm_errf(-EUCLEAN, "inode %llu allocated twice", (unsigned long long)ino);
	}
	shard_insert(sh, ip);
	pthread_mutex_unlock(&sh->mu);
	*ret_ip = ip;
	return 0;
}

void fs_inode_mark_deleted(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);

	pthread_mutex_lock(&sh->mu);
	ip->deleted = true;
	pthread_mutex_unlock(&sh->mu);
	ip->orphan = false;
	ip->rec.nlink = 0;
	free(ip->idata);
	ip->idata = NULL;
	ip->ilen = 0;
}

void fs_inode_discard(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);

	pthread_mutex_lock(&sh->mu);
	shard_remove(sh, ip);
	pthread_mutex_unlock(&sh->mu);
	inode_free(ip);
}

void fs_inode_add_lookup(struct fs *fs, struct inode *ip, uint64_t n)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);

	pthread_mutex_lock(&sh->mu);
	ip->nlookup += n;
	pthread_mutex_unlock(&sh->mu);
}

void fs_inode_add_open(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);

	pthread_mutex_lock(&sh->mu);
	ip->nopen++;
	pthread_mutex_unlock(&sh->mu);
}

uint32_t fs_inode_drop_open(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);
	uint32_t left;

	pthread_mutex_lock(&sh->mu);
	left = --ip->nopen;
	pthread_mutex_unlock(&sh->mu);
	return left;
}

uint32_t fs_inode_open_count(struct fs *fs, struct inode *ip)
{
	struct cache_shard *sh = shard_of(fs, ip->ino);
	uint32_t n;

	pthread_mutex_lock(&sh->mu);
	n = ip->nopen;
	pthread_mutex_unlock(&sh->mu);
	return n;
}

void fs_forget(struct fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct cache_shard *sh = shard_of(fs, ino);
	struct inode *ip;

	pthread_mutex_lock(&sh->mu);
	ip = shard_find(sh, ino);
	if (ip) {
		ip->nlookup -= nlookup < ip->nlookup ? nlookup : ip->nlookup;
		shard_settle(fs, sh, ip);
	}
	pthread_mutex_unlock(&sh->mu);
}

int fs_inode_collect_orphans(struct fs *fs, struct inode ***ret_v, size_t *ret_n)
{
	struct inode **v = NULL;
	size_t n = 0, cap = 0;

	for (unsigned i = 0; i < FS_SHARDS; i++) {
		struct cache_shard *sh = &fs->shards[i];

		pthread_mutex_lock(&sh->mu);
		for (size_t b = 0; b < sh->nbuckets; b++) {
			for (struct inode *ip = sh->buckets[b]; ip; ip = ip->hnext) {
				if (!ip->orphan || ip->deleted)
					continue;
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 16;
					struct inode **nv = realloc(v, nc * sizeof(*nv));

					if (!nv) {
						pthread_mutex_unlock(&sh->mu);
						for (size_t j = 0; j < n; j++)
							fs_inode_put(fs, v[j]);
						free(v);
						return -ENOMEM;
					}
					v = nv;
					cap = nc;
				}
				ip->pins++;
				lru_unlink(sh, ip);
				v[n++] = ip;
			}
		}
		pthread_mutex_unlock(&sh->mu);
	}
	*ret_v = v;
	*ret_n = n;
	return 0;
}

/* ---- inode numbers ----------------------------------------------------- */

int fs_super_write_locked(struct fs *fs, bool sync)
{
	uint8_t key[1], val[FS_SUPER_LEN];
	lsm_write_options wo = fs->wo;

	if (sync)
		wo.sync = 1;
	fs_super_encode(&fs->sb, val);
	return lsm_put(fs->db, &wo, key, fs_key_super(key), val, sizeof(val));
}

int fs_ino_alloc(struct fs *fs, uint64_t *ret_ino)
{
	int r = 0;

	pthread_mutex_lock(&fs->alloc_mu);
	if (fs->next_ino >= fs->sb.ino_limit) {
		uint64_t old = fs->sb.ino_limit;

		if (fs->next_ino > UINT64_MAX - FS_INO_CHUNK) {
			pthread_mutex_unlock(&fs->alloc_mu);
			return -ENOSPC;
		}
		fs->sb.ino_limit = fs->next_ino + FS_INO_CHUNK;
		r = fs_super_write_locked(fs, false);
		if (r < 0) {
			fs->sb.ino_limit = old;
			pthread_mutex_unlock(&fs->alloc_mu);
			return r;
		}
	}
	*ret_ino = fs->next_ino++;
	pthread_mutex_unlock(&fs->alloc_mu);
	return 0;
}

/* ---- attributes ------------------------------------------------------- */

void fs_inode_stat(const struct fs *fs, const struct inode *ip, struct stat *st)
{
	const struct fs_inode_rec *r = &ip->rec;
	uint32_t bs = fs->sb.block_size;

	memset(st, 0, sizeof(*st));
	st->st_ino = ip->ino;
	st->st_mode = r->mode;
	st->st_nlink = ip->deleted ? 0 : r->nlink;
	st->st_uid = r->uid;
	st->st_gid = r->gid;
	st->st_rdev = r->rdev;
	st->st_size = (off_t)r->size;
	st->st_blksize = bs;
	if (S_ISREG(r->mode) && (r->flags & FS_INODE_INLINE))
		st->st_blocks = (blkcnt_t)((r->size + 511) / 512);
	else
		st->st_blocks = (blkcnt_t)(r->nblocks * (bs / 512));
	st->st_atim = r->atime;
	st->st_mtim = r->mtime;
	st->st_ctim = r->ctime;
}

void fs_inode_entry(const struct fs *fs, const struct inode *ip, struct fs_entry *e)
{
	e->ino = ip->ino;
	e->generation = ip->rec.generation;
	fs_inode_stat(fs, ip, &e->attr);
}

/* ---- reclaiming dead inodes ------------------------------------------ */

/* Deletes every key of ino: blocks FS_RECLAIM_BATCH at a time, then the
 * xattrs, record and orphan key in the last batch, so a crash part way
 * leaves the orphan key and the next mount finishes the job. */
static int reclaim_keys(struct fs *fs, uint64_t ino)
{
	uint8_t key[FS_KEY_INO_LEN];
	uint64_t from = 0, n;
	struct txn t;
	int r;

	for (;;) {
		r = fs_txn_begin(fs, &t);
		if (r < 0)
			return r;
		r = fs_file_delete_blocks(fs, t.b, ino, from, UINT64_MAX, FS_RECLAIM_BATCH, &n, &from);
		if (r < 0)
			goto fail;
		if (n < FS_RECLAIM_BATCH)
			break;
		r = fs_txn_commit(&t);
		if (r < 0)
			return r;
	}
	r = fs_txn_del_xattrs(&t, ino);
	if (r < 0)
		goto fail;
	r = fs_txn_del(&t, key, fs_key_inode(key, ino));
	if (r < 0)
		goto fail;
	r = fs_txn_del(&t, key, fs_key_orphan(key, ino));
	if (r < 0)
		goto fail;
	return fs_txn_commit(&t);
fail:
	fs_txn_abort(&t);
	return r;
}

int fs_inode_reclaim(struct fs *fs, struct inode *ip)
{
	int r = reclaim_keys(fs, ip->ino);

	if (r < 0) {
		fprintf(stderr, "lsmfs: reclaiming inode %llu failed: %s (it stays an orphan "
		        "until the next mount)\n", (unsigned long long)ip->ino, strerror(-r));
		return r;
	}
	fs_inode_mark_deleted(fs, ip);
	__atomic_sub_fetch(&fs->inode_count, 1, __ATOMIC_RELAXED);
	return 0;
}

int fs_reclaim_ino(struct fs *fs, uint64_t ino)
{
	struct lockset ls;
	struct inode *ip = NULL;
	int r;

	fs_lockset_init(&ls, true);
	fs_lockset_add(&ls, ino);
	fs_lockset_lock(fs, &ls);
	r = fs_inode_get_any(fs, ino, &ip);
	if (r == -ENOENT) {
		/* The record went but the orphan key stayed: finish. */
		r = reclaim_keys(fs, ino);
	} else if (r == 0 && !ip->deleted && ip->rec.nlink == 0 &&
	           fs_inode_open_count(fs, ip) == 0) {
		r = fs_inode_reclaim(fs, ip);
	} else if (r == 0 && !ip->deleted && ip->rec.nlink > 0) {
		/* A stale orphan key on a linked inode: drop just the key. */
		uint8_t key[FS_KEY_INO_LEN];

		r = lsm_delete(fs->db, &fs->wo, key, fs_key_orphan(key, ino));
		if (r == 0)
			ip->orphan = false;
	}
	fs_inode_put(fs, ip);
	fs_lockset_unlock(fs, &ls);
	return r;
}
