/*
 * policy/arena.c - per-message arena: many small allocations, one free.
 *
 * Blocks are chained; an allocation larger than a block gets a block of
 * its own.  Not thread-safe: an arena belongs to one message.
 * Licence: BSD-2-Clause.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ARENA_BLOCK 4096

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[]; /* aligned storage */
};

struct pol_arena {
    struct arena_block *head;
};

struct pol_arena *
pol_arena_new(void)
{
    return calloc(1, sizeof(struct pol_arena));
}

void
pol_arena_free(struct pol_arena *a)
{
    struct arena_block *b, *next;

    if (a == NULL)
        return;
    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

/* block_new - a block with room for at least n bytes */
static struct arena_block *
block_new(size_t n)
{
    size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    struct arena_block *b;

    if (size > SIZE_MAX - sizeof(*b))
        return NULL;
    b = malloc(sizeof(*b) + size);
    if (b == NULL)
        return NULL;
    b->used = 0;
    b->size = size;
    return b;
}

void *
pol_arena_alloc(struct pol_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    struct arena_block *b = a->head;
    void *p;

    if (n > SIZE_MAX - align)
        return NULL;
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    if (b == NULL || b->size - b->used < n) {
        if ((b = block_new(n)) == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *
pol_arena_strndup(struct pol_arena *a, const char *s, size_t n)
{
    char *p = pol_arena_alloc(a, n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *
pol_arena_strdup(struct pol_arena *a, const char *s)
{
    return pol_arena_strndup(a, s, strlen(s));
}
