/*
 * cache.c - the sharded cache behind lsm_cache_* (block cache and table
 * cache).  The key space is split over 16 shards by the top bits of
 * lsm_hash64(key); each shard has its own mutex, a chained hash table that
 * doubles when it fills up, and two LRU lists (a segmented LRU) holding only
 * the entries nobody has pinned, so eviction never has to skip over pinned
 * ones.  The byte budget is split evenly over the shards.
 *
 * Segments: an entry comes in on probation and moves to the protected segment
 * the first time it is looked up again; eviction takes the oldest entry on
 * probation, and only when none is left the oldest protected one.  When the
 * protected entries outgrow 4/5 of the budget, the oldest of them go back on
 * probation (as its newest).  So a block read once (by a scan, say) cannot
 * push out blocks that lookups keep coming back to, and under uniformly
 * random lookups over several levels the cache fills with the blocks of the
 * smallest level, each of which is read ten times as often as one of the
 * next level's: with plain LRU every block would get the same short stay.
 *
 * Reference counting (every count is protected by its shard's mutex): an
 * entry in the table holds one reference for the cache itself, and every
 * handle given out holds one more.  So refs == 1 && in_cache means "cached and
 * unpinned", which is exactly the set kept on the LRU list.  Erasing, replacing
 * or evicting an entry drops the cache's reference; whoever drops the last one
 * calls the deleter, always after unlocking, since deleters may be slow (the
 * table cache closes files in them).
 *
 * The hot path, lookup hit then release, takes the shard lock once per call
 * and never allocates: the handle is the entry itself, with the key copied
 * inline behind it at insert.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

#define CACHE_SHARD_BITS 4
#define CACHE_SHARDS (1u << CACHE_SHARD_BITS)
#define CACHE_MIN_BUCKETS 16u
#define CACHE_LINE 64

/* LRU links, kept apart from the entry so a shard can hold a bare list head. */
struct lru_link {
	struct lru_link *prev, *next;
};

struct lsm_cache_handle {
	struct lru_link lru;                 /* first: valid while on the LRU list */
	struct lsm_cache_handle *hash_next;  /* bucket chain; also the dead list after unlink */
	void *value;
	lsm_cache_deleter deleter;
	size_t charge;                       /* bytes counted against the budget */
	uint64_t hash;                       /* lsm_hash64(key) */
	uint32_t refs;                       /* protected by the shard's mu */
	bool in_cache;                       /* in the table; protected by the shard's mu */
	bool hot;                            /* in the protected segment; shard's mu */
	size_t klen;
	uint8_t key[];                       /* copied at insert */
};
_Static_assert(offsetof(struct lsm_cache_handle, lru) == 0, "an LRU link is its entry");

struct cache_shard {
	_Alignas(CACHE_LINE) pthread_mutex_t mu;  /* aligned: shards must not share a line */
	struct lsm_cache_handle **buckets;
	uint32_t mask;                       /* bucket count - 1 (a power of two) */
	uint32_t count;                      /* entries in the table */
	size_t capacity;                     /* this shard's byte budget */
	size_t usage;                        /* charge of the entries in the table */
	size_t hot_capacity;                 /* budget of the protected segment */
	size_t hot_usage;                    /* charge of the protected entries in the table */
	struct lru_link lru;                 /* probation, unpinned: lru.next is the oldest */
	struct lru_link hot;                 /* protected, unpinned: hot.next is the oldest */
	uint64_t hits, misses;
};

struct lsm_cache {
	struct cache_shard shards[CACHE_SHARDS];
	atomic_uint_fast64_t next_id;
};

static inline struct cache_shard *shard_of(lsm_cache *c, uint64_t hash)
{
	return &c->shards[hash >> (64 - CACHE_SHARD_BITS)];
}

static inline bool entry_matches(const struct lsm_cache_handle *e, uint64_t hash,
                                 const void *key, size_t klen)
{
	return e->hash == hash && e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0);
}

/* The link that points at key's entry (or at the NULL ending its chain).
 * REQUIRES: s->mu held. */
static struct lsm_cache_handle **table_find(struct cache_shard *s, uint64_t hash,
                                            const void *key, size_t klen)
{
	struct lsm_cache_handle **p = &s->buckets[hash & s->mask];
	while (*p && !entry_matches(*p, hash, key, klen))
		p = &(*p)->hash_next;
	return p;
}

/* Doubles the bucket array.  Failing to allocate is harmless (chains just get
 * longer), so there is nothing to report.  REQUIRES: s->mu held. */
static void table_grow(struct cache_shard *s)
{
	uint32_t n = (s->mask + 1) * 2;
	struct lsm_cache_handle **nb;

	if (n == 0)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (uint32_t i = 0; i <= s->mask; i++) {
		struct lsm_cache_handle *e = s->buckets[i];
		while (e) {
			struct lsm_cache_handle *next = e->hash_next;
			struct lsm_cache_handle **b = &nb[e->hash & (n - 1)];
			e->hash_next = *b;
			*b = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->mask = n - 1;
}

static inline void lru_remove(struct lsm_cache_handle *e)
{
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
}

/* Appends e as the most recently used entry of its segment. */
static inline void lru_append(struct cache_shard *s, struct lsm_cache_handle *e)
{
	struct lru_link *head = e->hot ? &s->hot : &s->lru;
	e->lru.next = head;
	e->lru.prev = head->prev;
	e->lru.prev->next = &e->lru;
	head->prev = &e->lru;
}

/* Moves the oldest unpinned protected entries back on probation while the
 * segment is over its budget.  REQUIRES: s->mu held. */
static void hot_shrink(struct cache_shard *s)
{
	while (s->hot_usage > s->hot_capacity && s->hot.next != &s->hot) {
		struct lsm_cache_handle *old = (struct lsm_cache_handle *)s->hot.next;  /* lru is first */
		lru_remove(old);
		old->hot = false;
		s->hot_usage -= old->charge;
		lru_append(s, old);
	}
}

/* Takes e, which *link points at, out of the table and drops the cache's
 * reference.  Returns e if that was the last reference (the caller chains
 * it for deletion after unlocking), else NULL: a pinned entry lives on until
 * its last release.  REQUIRES: s->mu held. */
static struct lsm_cache_handle *table_unlink(struct cache_shard *s, struct lsm_cache_handle **link)
{
	struct lsm_cache_handle *e = *link;

	*link = e->hash_next;
	s->count--;
	s->usage -= e->charge;
	if (e->hot)
		s->hot_usage -= e->charge;
	e->in_cache = false;
	if (e->refs == 1)         /* unpinned, hence on an LRU list */
		lru_remove(e);
	if (--e->refs == 0)
		return e;
	return NULL;
}

/* Entries whose last reference went while the lock was held, in the order
 * they went, waiting for their deleters to run after unlocking. */
struct dead_list {
	struct lsm_cache_handle *head;
	struct lsm_cache_handle **tail;
};

static inline void dead_push(struct dead_list *d, struct lsm_cache_handle *e)
{
	if (!e)
		return;
	e->hash_next = NULL;
	*d->tail = e;
	d->tail = &e->hash_next;
}

/* Evicts unpinned entries while s is over budget: the oldest on probation
 * first, then the oldest protected ones.  REQUIRES: s->mu held. */
static void shard_evict(struct cache_shard *s, struct dead_list *dead)
{
	while (s->usage > s->capacity) {
		struct lru_link *oldest = s->lru.next != &s->lru ? s->lru.next : s->hot.next;
		if (oldest == &s->hot)
			break;                      /* everything left is pinned */
		struct lsm_cache_handle *old = (struct lsm_cache_handle *)oldest;  /* lru is first */
		dead_push(dead, table_unlink(s, table_find(s, old->hash, old->key, old->klen)));
	}
}

static void entry_delete(struct lsm_cache_handle *e)
{
	if (e->deleter)
		e->deleter(e->key, e->klen, e->value);
	free(e);
}

/* Runs the deleters of a list built under the lock, after unlocking. */
static void delete_list(struct dead_list *dead)
{
	struct lsm_cache_handle *e = dead->head;
	while (e) {
		struct lsm_cache_handle *next = e->hash_next;
		entry_delete(e);
		e = next;
	}
}

int lsm_cache_new(size_t capacity, lsm_cache **ret_cache)
{
	lsm_cache *c;
	size_t per_shard = capacity / CACHE_SHARDS + (capacity % CACHE_SHARDS != 0);
	unsigned i;

	c = aligned_alloc(CACHE_LINE, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	for (i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		s->buckets = calloc(CACHE_MIN_BUCKETS, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail;
		if (pthread_mutex_init(&s->mu, NULL) != 0) {
			free(s->buckets);
			goto fail;
		}
		s->mask = CACHE_MIN_BUCKETS - 1;
		s->capacity = per_shard;
		s->hot_capacity = per_shard / 5 * 4 + per_shard % 5 * 4 / 5;
		s->lru.next = s->lru.prev = &s->lru;
		s->hot.next = s->hot.prev = &s->hot;
	}
	atomic_init(&c->next_id, 1);
	*ret_cache = c;
	return 0;

fail:
	while (i-- > 0) {
		pthread_mutex_destroy(&c->shards[i].mu);
		free(c->shards[i].buckets);
	}
	free(c);
	return -ENOMEM;
}

void lsm_cache_free(lsm_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		for (uint32_t b = 0; b <= s->mask; b++) {
			struct lsm_cache_handle *e = s->buckets[b];
			while (e) {
				struct lsm_cache_handle *next = e->hash_next;
				entry_delete(e);
				e = next;
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

lsm_cache_handle *lsm_cache_insert(lsm_cache *c, const void *key, size_t klen, void *value,
                                   size_t charge, lsm_cache_deleter deleter)
{
	uint64_t hash = lsm_hash64(key, klen);
	struct cache_shard *s = shard_of(c, hash);
	struct lsm_cache_handle *e, **link;
	struct dead_list dead = { NULL, &dead.head };

	/* Allocate before locking: the lock is held only for pointer work. */
	e = malloc(sizeof(*e) + klen);
	if (!e) {
		if (deleter)
			deleter(key, klen, value);
		return NULL;
	}
	e->value = value;
	e->deleter = deleter;
	e->charge = charge;
	e->hash = hash;
	e->refs = 2;              /* the cache's and the caller's */
	e->in_cache = true;
	e->hot = false;           /* on probation until looked up again */
	e->klen = klen;
	if (klen)
		memcpy(e->key, key, klen);

	pthread_mutex_lock(&s->mu);
	link = table_find(s, hash, key, klen);
	if (*link) {
		/* Replace in place: e takes the old entry's slot in the chain. */
		dead_push(&dead, table_unlink(s, link));
	}
	e->hash_next = *link;
	*link = e;
	s->count++;
	s->usage += charge;
	shard_evict(s, &dead);
	if (s->count > s->mask + 1)
		table_grow(s);
	pthread_mutex_unlock(&s->mu);

	delete_list(&dead);
	return e;
}

lsm_cache_handle *lsm_cache_lookup(lsm_cache *c, const void *key, size_t klen)
{
	uint64_t hash = lsm_hash64(key, klen);
	struct cache_shard *s = shard_of(c, hash);
	struct lsm_cache_handle *e;

	pthread_mutex_lock(&s->mu);
	e = *table_find(s, hash, key, klen);
	if (e) {
		if (e->refs == 1)     /* becoming pinned: off its LRU list */
			lru_remove(e);
		e->refs++;
		s->hits++;
		if (!e->hot) {
			/* A second use: protected from now on (joining the
			 * segment's list at its release). */
			e->hot = true;
			s->hot_usage += e->charge;
			hot_shrink(s);
		}
	} else {
		s->misses++;
	}
	pthread_mutex_unlock(&s->mu);
	return e;
}

void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h)
{
	struct cache_shard *s = shard_of(c, h->hash);
	struct dead_list dead = { NULL, &dead.head };

	pthread_mutex_lock(&s->mu);
	if (--h->refs == 0) {
		/* Erased, replaced or evicted while pinned: ours was the last use. */
		dead_push(&dead, h);
	} else if (h->refs == 1 && h->in_cache) {
		lru_append(s, h);
		/* Pinned entries may have pushed the shard over budget; now that
		 * one became evictable, settle the debt. */
		if (s->usage > s->capacity)
			shard_evict(s, &dead);
	}
	pthread_mutex_unlock(&s->mu);

	delete_list(&dead);
}

void *lsm_cache_value(lsm_cache_handle *h)
{
	return h->value;
}

void lsm_cache_erase(lsm_cache *c, const void *key, size_t klen)
{
	uint64_t hash = lsm_hash64(key, klen);
	struct cache_shard *s = shard_of(c, hash);
	struct lsm_cache_handle **link;
	struct dead_list dead = { NULL, &dead.head };

	pthread_mutex_lock(&s->mu);
	link = table_find(s, hash, key, klen);
	if (*link)
		dead_push(&dead, table_unlink(s, link));
	pthread_mutex_unlock(&s->mu);

	delete_list(&dead);
}

uint64_t lsm_cache_new_id(lsm_cache *c)
{
	return atomic_fetch_add_explicit(&c->next_id, 1, memory_order_relaxed);
}

void lsm_cache_stats(lsm_cache *c, uint64_t *ret_hits, uint64_t *ret_misses, size_t *ret_usage)
{
	uint64_t hits = 0, misses = 0;
	size_t usage = 0;

	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		hits += s->hits;
		misses += s->misses;
		usage += s->usage;
		pthread_mutex_unlock(&s->mu);
	}
	if (ret_hits)
		*ret_hits = hits;
	if (ret_misses)
		*ret_misses = misses;
	if (ret_usage)
		*ret_usage = usage;
}
