/*
 * arena.h — per-request memory: many small allocations, one free when the request ends
 * (after h2o's pool). Blocks grow geometrically; nothing is freed individually.
 */
#ifndef RSD_ARENA_H
#define RSD_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t used;	      /* bytes used in head */
	unsigned char *first; /* caller's buffer used before any block; may be NULL */
	size_t first_size, first_used;
};

/* Prepares an empty arena; allocates nothing yet. */
void arena_init(struct arena *a);

/* Like arena_init, but serves allocations from buf[0..size) (caller-owned, aligned for
 * max_align_t) before allocating blocks: a request that fits allocates nothing. */
void arena_init_with(struct arena *a, void *buf, size_t size);

/* Frees every block; the arena is empty and reusable afterwards (the caller's buffer too). */
void arena_release(struct arena *a);

/* Returns n bytes aligned for any type, valid until arena_release. Aborts on OOM. */
void *arena_alloc(struct arena *a, size_t n);

/* Copies s[0..n) into the arena and terminates it. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* snprintf into the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
