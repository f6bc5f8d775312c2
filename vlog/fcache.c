/*
 * fcache.c - the bounded cache of open read handles on segment files, least
 * recently used first out.  A hash table (chained, power-of-two buckets)
 * finds a segment's entry and a circular list orders entries by use.  An
 * entry is refcounted: the cache holds one reference while the entry is
 * cached and each reader one while it reads, so an evicted or removed
 * segment's file closes only when its last reader lets go, and never under
 * a pread.  At most cap handles are cached; readers that miss at the same
 * time may hold a few more for the length of one read.
 *
 * A miss opens the file and checks its header with the lock dropped (I/O
 * never runs under the lock); if two readers miss on one segment, the
 * second insert finds the first and uses it.  Removal: vlog_remove_segment
 * unlinks the file, then calls vlog_fcache_evict, which drops the entry and
 * bumps a generation count.  A reader that opened the file before the
 * unlink and inserts after the eviction would keep a deleted file's space
 * pinned; it sees the generation changed and keeps its handle for its one
 * read only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vlog_int.h"

struct vlog_fentry {
	uint64_t number;
	lsm_file *file;
	unsigned refs;               /* cache's (while cached) + readers'; protected by fc->mu */
	bool cached;
	struct vlog_fentry *hnext;   /* hash chain */
	struct vlog_fentry *prev, *next; /* use order, most recent after the list head */
};

struct vlog_fcache {
	lsm_env *env;
	const char *dir;             /* borrowed from the vlog */
	pthread_mutex_t mu;          /* guards everything below and every entry's links/refs */
	size_t cap, n;
	struct vlog_fentry **table;
	size_t mask;                 /* buckets - 1 */
	struct vlog_fentry lru;      /* list head */
	uint64_t gen;                /* evictions so far */
};

int vlog_fcache_new(lsm_env *env, const char *dir, int cap, vlog_fcache **ret_fc)
{
	vlog_fcache *fc = calloc(1, sizeof(*fc));
	size_t buckets = 16;

	if (!fc)
		return -ENOMEM;
	while (buckets < 2 * (size_t)cap)
		buckets *= 2;
	if (!(fc->table = calloc(buckets, sizeof(*fc->table)))) {
		free(fc);
		return -ENOMEM;
	}
	fc->env = env;
	fc->dir = dir;
	fc->cap = (size_t)cap;
	fc->mask = buckets - 1;
	fc->lru.prev = fc->lru.next = &fc->lru;
	pthread_mutex_init(&fc->mu, NULL);
	*ret_fc = fc;
	return 0;
}

void vlog_fcache_free(vlog_fcache *fc)
{
	if (!fc)
		return;
	/* Every reader is done (REQUIRES of vlog_close): only cached entries remain. */
	for (struct vlog_fentry *e = fc->lru.next, *next; e != &fc->lru; e = next) {
		next = e->next;
		env_close(fc->env, e->file);
		free(e);
	}
	pthread_mutex_destroy(&fc->mu);
	free(fc->table);
	free(fc);
}

static struct vlog_fentry **bucket(vlog_fcache *fc, uint64_t number)
{
	return &fc->table[(number * 0x9e3779b97f4a7c15ull >> 32) & fc->mask];
}

static void lru_unlink(struct vlog_fentry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push(vlog_fcache *fc, struct vlog_fentry *e)
{
	e->next = fc->lru.next;
	e->prev = &fc->lru;
	e->next->prev = e;
	fc->lru.next = e;
}

/* Takes e out of the table and the list and drops the cache's reference.
 * Returns e if that was the last one (the caller closes it after
 * unlocking), else NULL.  REQUIRES: fc->mu held, e cached. */
static struct vlog_fentry *uncache(vlog_fcache *fc, struct vlog_fentry *e)
{
	struct vlog_fentry **pp = bucket(fc, e->number);

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	e->cached = false;
	fc->n--;
	return --e->refs == 0 ? e : NULL;
}

static void entry_free(vlog_fcache *fc, struct vlog_fentry *e)
{
	if (e) {
		env_close(fc->env, e->file);
		free(e);
	}
}

/* Finds number, pins it and marks it most recently used.
 * REQUIRES: fc->mu held. */
static struct vlog_fentry *lookup(vlog_fcache *fc, uint64_t number)
{
	struct vlog_fentry *e = *bucket(fc, number);

	while (e && e->number != number)
		e = e->hnext;
	if (e) {
		e->refs++;
		lru_unlink(e);
		lru_push(fc, e);
	}
	return e;
}

/* Opens segment number for reading and checks its header. */
static int open_segment(vlog_fcache *fc, uint64_t number, lsm_file **ret_f)
{
	char path[VLOG_PATH_MAX];
	uint8_t hdr[VLOG_HEADER_SIZE];
	lsm_file *f;
	ssize_t n;
	int r = vlog_segment_path(fc->dir, number, path);

	if (r < 0 || (r = env_open(fc->env, path, LSM_ENV_READ, &f)) < 0)
		return r;
	n = env_pread(fc->env, f, hdr, sizeof(hdr), 0);
	if (n < 0)
		r = (int)n;
	else if ((size_t)n < sizeof(hdr))
		r = lsm_errf(-EUCLEAN, "%s: %zd bytes, shorter than a segment header", path, n);
	else
		r = vlog_header_check(hdr, number, path);
	if (r < 0) {
		env_close(fc->env, f);
		return r;
	}
	*ret_f = f;
	return 0;
}

int vlog_fcache_get(vlog_fcache *fc, uint64_t number, struct vlog_fentry **ret_e)
{
	struct vlog_fentry *e, *victim = NULL, *old;
	uint64_t gen;
	int r;

	pthread_mutex_lock(&fc->mu);
	e = lookup(fc, number);
	gen = fc->gen;
	pthread_mutex_unlock(&fc->mu);
	if (e) {
		*ret_e = e;
		return 0;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	if ((r = open_segment(fc, number, &e->file)) < 0) {
		free(e);
		return r;
	}
	e->number = number;
	e->refs = 1;
	pthread_mutex_lock(&fc->mu);
	if ((old = lookup(fc, number))) {
		/* Another reader got there first: use its handle. */
		pthread_mutex_unlock(&fc->mu);
		entry_free(fc, e);
		*ret_e = old;
		return 0;
	}
	if (gen == fc->gen) {
		struct vlog_fentry **b = bucket(fc, number);
		e->hnext = *b;
		*b = e;
		lru_push(fc, e);
		e->cached = true;
		e->refs++;
		if (++fc->n > fc->cap)
			victim = uncache(fc, fc->lru.prev);
	}
	pthread_mutex_unlock(&fc->mu);
	entry_free(fc, victim);
	*ret_e = e;
	return 0;
}

lsm_file *vlog_fcache_file(const struct vlog_fentry *e)
{
	return e->file;
}

void vlog_fcache_put(vlog_fcache *fc, struct vlog_fentry *e)
{
	bool last;

	pthread_mutex_lock(&fc->mu);
	last = --e->refs == 0;
	pthread_mutex_unlock(&fc->mu);
	if (last)
		entry_free(fc, e);
}

void vlog_fcache_evict(vlog_fcache *fc, uint64_t number)
{
	struct vlog_fentry *e, *dead = NULL;

	pthread_mutex_lock(&fc->mu);
	fc->gen++;
	for (e = *bucket(fc, number); e && e->number != number; e = e->hnext)
		;
	if (e)
		dead = uncache(fc, e);
	pthread_mutex_unlock(&fc->mu);
	entry_free(fc, dead);
}
