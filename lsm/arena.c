/*
 * arena.c - the bump allocator behind one memtable.  Memory comes from
 * 64 KiB blocks carved front to back; a request larger than a quarter block
 * gets a block of its own, so a big value never wastes the tail of the
 * current block.  Nothing is freed until the whole arena is: a memtable only
 * grows, then is dropped in one piece after its flush.
 *
 * Only the memtable's single writer allocates, so allocation takes no lock.
 * The usage counter is atomic because the write path of other threads reads
 * it to decide when the memtable is full.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "lsm_int.h"

#define ARENA_BLOCK      (64u * 1024)
#define ARENA_BIG        (ARENA_BLOCK / 4)   /* larger requests get their own block */
#define ARENA_ALIGN      8

/* Blocks are chained through a header so the arena can free them all.  The
 * header is padded to max_align_t so the data after it is aligned. */
struct arena_block {
	struct arena_block *next;
	alignas(max_align_t) uint8_t data[];
};

struct lsm_arena {
	uint8_t *ptr;                 /* next free byte of the current block */
	size_t left;                  /* bytes left in the current block */
	struct arena_block *blocks;   /* every block, newest first */
	_Atomic size_t usage;         /* bytes handed out; written by the owner, read by anyone */
};

lsm_arena *lsm_arena_new(void)
{
	lsm_arena *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	atomic_init(&a->usage, sizeof(*a));
	return a;
}

void lsm_arena_free(lsm_arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->blocks;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(a);
}

/* Mallocs a block with room for n bytes and links it in.  NULL on ENOMEM. */
static uint8_t *arena_new_block(lsm_arena *a, size_t n)
{
	struct arena_block *b = malloc(sizeof(*b) + n);
	if (!b)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	return b->data;
}

void *lsm_arena_alloc(lsm_arena *a, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct arena_block) - ARENA_ALIGN)
		return NULL;
	/* Round up so the next allocation stays aligned; 0 still gets a
	 * distinct pointer. */
	n = n ? (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
	/* Usage counts bytes handed out, not blocks reserved, so that a small
	 * write buffer is not "full" after its first block.  One writer: a plain
	 * load and store suffice. */
	atomic_store_explicit(&a->usage, atomic_load_explicit(&a->usage, memory_order_relaxed) + n,
	                      memory_order_relaxed);

	if (n <= a->left) {
		uint8_t *p = a->ptr;
		a->ptr += n;
		a->left -= n;
		return p;
	}
	if (n > ARENA_BIG)
		return arena_new_block(a, n);   /* the current block keeps its tail */

	uint8_t *p = arena_new_block(a, ARENA_BLOCK);
	if (!p)
		return NULL;
	a->ptr = p + n;
	a->left = ARENA_BLOCK - n;
	return p;
}

size_t lsm_arena_usage(const lsm_arena *a)
{
	return atomic_load_explicit(&a->usage, memory_order_relaxed);
}
