/*
 * arena.c — bump allocator for per-request memory. Invariant: head->size - used bytes
 * are free in the head block; older blocks are full and only wait for arena_release.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsd.h"
#include "banned.h"

#define ARENA_BLOCK_BYTES_MIN 2048

struct arena_block {
	struct arena_block *next;
	size_t size;
	_Alignas(max_align_t) unsigned char data[];
};

void arena_init(struct arena *a)
{
	arena_init_with(a, NULL, 0);
}

void arena_init_with(struct arena *a, void *buf, size_t size)
{
	a->head = NULL;
	a->used = 0;
	a->first = buf;
	a->first_size = size;
	a->first_used = 0;
}

void arena_release(struct arena *a)
{
	struct arena_block *b = a->head;
	while (b != NULL) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	arena_init_with(a, a->first, a->first_size);
}

void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	n = (n + align - 1) & ~(align - 1);
	if (a->first && a->first_size - a->first_used >= n) {
		void *p = a->first + a->first_used;
		a->first_used += n;
		return p;
	}
	if (a->head == NULL || a->head->size - a->used < n) {
		size_t size = a->head ? a->head->size * 2 : ARENA_BLOCK_BYTES_MIN;
		if (size < n)
			size = n;
		struct arena_block *b = rsd_malloc(sizeof(*b) + size);
		b->size = size;
		b->next = a->head;
		a->head = b;
		a->used = 0;
	}
	void *p = a->head->data + a->used;
	a->used += n;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	RSD_ASSERT(n >= 0);
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
