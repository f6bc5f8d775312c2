/*
 * skiplist.c - the ordered index of a memtable: a skiplist (at most 12
 * levels, each node promoted with probability 1/4) over opaque entry
 * pointers, with nodes in the memtable's arena.
 *
 * Concurrency: one writer (the caller serializes inserts) and any number of
 * readers, without locks.  A node is never removed, and the writer fills in a
 * new node completely, including its own next pointers, before a
 * release-store links it into each level bottom up; readers follow links with
 * acquire-loads, so a reader that reaches a node sees it fully built.  A
 * reader may see a node at level 0 and not yet at a higher level, which only
 * costs it a longer walk.  The list height is read relaxed: a reader that
 * sees the new height before the new node's links finds NULL at the head's
 * top levels and simply drops a level.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

#include "lsm_int.h"

#define SL_MAX_HEIGHT 12
#define SL_BRANCH_BITS 2   /* a node reaches the next level with p = 1/4 */

struct sl_node {
	const void *entry;                     /* immutable once linked */
	_Atomic(struct sl_node *) next[];      /* one per level of the node */
};

struct lsm_skiplist {
	lsm_skiplist_cmp_fn cmp;
	lsm_arena *arena;
	struct sl_node *head;                  /* SL_MAX_HEIGHT levels, no entry */
	_Atomic int height;                    /* levels in use; written by the writer */
	uint64_t rnd;                          /* height generator; writer only */
	struct sl_node *pending;               /* from lsm_skiplist_alloc_entry, not yet inserted */
	int pending_height;
	struct sl_node *tail[SL_MAX_HEIGHT];   /* last node of each level (head if none); writer only */
};

static struct sl_node *node_new(lsm_arena *arena, const void *entry, int height)
{
	struct sl_node *n = lsm_arena_alloc(arena, sizeof(*n) + (size_t)height * sizeof(n->next[0]));
	if (!n)
		return NULL;
	n->entry = entry;
	for (int i = 0; i < height; i++)
		atomic_init(&n->next[i], NULL);
	return n;
}

static inline struct sl_node *node_next(const struct sl_node *n, int level)
{
	/* acquire: pairs with the writer's release in lsm_skiplist_insert */
	return atomic_load_explicit((_Atomic(struct sl_node *) *)&n->next[level], memory_order_acquire);
}

static inline int list_height(const lsm_skiplist *s)
{
	return atomic_load_explicit((_Atomic int *)&s->height, memory_order_relaxed);
}

lsm_skiplist *lsm_skiplist_new(lsm_arena *arena, lsm_skiplist_cmp_fn cmp)
{
	lsm_skiplist *s = lsm_arena_alloc(arena, sizeof(*s));
	if (!s)
		return NULL;
	s->head = node_new(arena, NULL, SL_MAX_HEIGHT);
	if (!s->head)
		return NULL;   /* the arena reclaims s when it is freed */
	s->cmp = cmp;
	s->arena = arena;
	atomic_init(&s->height, 1);
	s->rnd = 0x9e3779b97f4a7c15ull;   /* fixed: a reproducible shape aids debugging */
	s->pending = NULL;
	s->pending_height = 0;
	for (int i = 0; i < SL_MAX_HEIGHT; i++)
		s->tail[i] = s->head;
	return s;
}

/* A height in [1, SL_MAX_HEIGHT], each extra level with probability 1/4. */
static int random_height(lsm_skiplist *s)
{
	/* xorshift64: enough bits for 11 coin pairs per draw */
	uint64_t x = s->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	s->rnd = x;

	int h = 1;
	while (h < SL_MAX_HEIGHT && (x & ((1u << SL_BRANCH_BITS) - 1)) == 0) {
		h++;
		x >>= SL_BRANCH_BITS;
	}
	return h;
}

/* The first node with cmp(entry, target) >= 0, or NULL.  If prev is not
 * NULL, fills prev[level] with the last node before that position at each
 * level in use. */
static struct sl_node *find_ge(const lsm_skiplist *s, const void *target, lsm_skiplist_cmp_fn cmp,
                               struct sl_node **prev)
{
	struct sl_node *x = s->head;
	struct sl_node *known_ge = NULL;   /* already compared >= target: skip it at lower levels */
	int level = list_height(s) - 1;

	for (;;) {
		struct sl_node *next = node_next(x, level);
		if (next && next != known_ge && cmp(next->entry, target) < 0) {
			x = next;
			continue;
		}
		known_ge = next;
		if (prev)
			prev[level] = x;
		if (level == 0)
			return next;
		level--;
	}
}

/* The last node whose entry is < target, or the head if there is none. */
static struct sl_node *find_lt(const lsm_skiplist *s, const void *target)
{
	struct sl_node *x = s->head;
	struct sl_node *known_ge = NULL;
	int level = list_height(s) - 1;

	for (;;) {
		struct sl_node *next = node_next(x, level);
		if (next && next != known_ge && s->cmp(next->entry, target) < 0) {
			x = next;
			continue;
		}
		known_ge = next;
		if (level == 0)
			return x;
		level--;
	}
}

/* The last node, or the head if the list is empty. */
static struct sl_node *find_last(const lsm_skiplist *s)
{
	struct sl_node *x = s->head;
	int level = list_height(s) - 1;

	for (;;) {
		struct sl_node *next = node_next(x, level);
		if (next) {
			x = next;
			continue;
		}
		if (level == 0)
			return x;
		level--;
	}
}

void *lsm_skiplist_alloc_entry(lsm_skiplist *s, size_t n)
{
	int h = random_height(s);
	size_t links = sizeof(struct sl_node) + (size_t)h * sizeof(s->head->next[0]);
	if (n > SIZE_MAX - links)
		return NULL;
	struct sl_node *node = lsm_arena_alloc(s->arena, links + n);
	if (!node)
		return NULL;
	void *entry = (uint8_t *)node + links;
	node->entry = entry;
	for (int i = 0; i < h; i++)
		atomic_init(&node->next[i], NULL);
	s->pending = node;
	s->pending_height = h;
	return entry;
}

int lsm_skiplist_insert(lsm_skiplist *s, const void *entry)
{
	struct sl_node *prev[SL_MAX_HEIGHT];
	struct sl_node *n;
	int h;

	/* get the node first, so that a failure changes nothing */
	if (s->pending && s->pending->entry == entry) {
		n = s->pending;
		h = s->pending_height;
		s->pending = NULL;
	} else {
		h = random_height(s);
		n = node_new(s->arena, entry, h);
		if (!n)
			return -ENOMEM;
	}

	int cur = list_height(s);
	struct sl_node *last = s->tail[0];
	if (last != s->head && s->cmp(last->entry, entry) < 0) {
		/* Appending, as ascending writes and log replay do: the last node
		 * of each level is the predecessor there, so skip the search.  A
		 * level the list does not use yet has the head as its tail. */
		for (int i = 0; i < h; i++)
			prev[i] = s->tail[i];
	} else {
		struct sl_node *at = find_ge(s, entry, s->cmp, prev);
		(void)at;
		assert(at == NULL || s->cmp(at->entry, entry) != 0);
		for (int i = cur; i < h; i++)
			prev[i] = s->head;
	}
	if (h > cur) {
		/* relaxed: see the file comment for why readers cope with a
		 * height that runs ahead of the links */
		atomic_store_explicit(&s->height, h, memory_order_relaxed);
	}

	for (int i = 0; i < h; i++) {
		/* the writer is alone in changing links: a relaxed read of its own
		 * earlier stores is enough; the node is not yet visible */
		struct sl_node *succ = atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed);
		atomic_store_explicit(&n->next[i], succ, memory_order_relaxed);
		/* release: publishes the node's entry and links to readers */
		atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
		if (!succ)
			s->tail[i] = n;
	}
	return 0;
}

void lsm_skiplist_iter_init(lsm_skiplist_iter *it, const lsm_skiplist *s)
{
	it->list = s;
	it->node = NULL;
}

bool lsm_skiplist_iter_valid(const lsm_skiplist_iter *it)
{
	return it->node != NULL;
}

const void *lsm_skiplist_iter_entry(const lsm_skiplist_iter *it)
{
	return ((const struct sl_node *)it->node)->entry;
}

void lsm_skiplist_iter_next(lsm_skiplist_iter *it)
{
	it->node = node_next(it->node, 0);
}

void lsm_skiplist_iter_prev(lsm_skiplist_iter *it)
{
	/* no back links: search for the entry's predecessor instead */
	const struct sl_node *n = find_lt(it->list, lsm_skiplist_iter_entry(it));
	it->node = n == it->list->head ? NULL : n;
}

void lsm_skiplist_iter_seek(lsm_skiplist_iter *it, const void *target)
{
	it->node = find_ge(it->list, target, it->list->cmp, NULL);
}

void lsm_skiplist_iter_seek_by(lsm_skiplist_iter *it, const void *target, lsm_skiplist_cmp_fn cmp)
{
	it->node = find_ge(it->list, target, cmp, NULL);
}

void lsm_skiplist_iter_seek_to_first(lsm_skiplist_iter *it)
{
	it->node = node_next(it->list->head, 0);
}

void lsm_skiplist_iter_seek_to_last(lsm_skiplist_iter *it)
{
	const struct sl_node *n = find_last(it->list);
	it->node = n == it->list->head ? NULL : n;
}
