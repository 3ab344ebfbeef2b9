/*
 * readcache.c — a cache of reply bytes, keyed by an entity id or a search's parameters:
 * 4-way set associative, the least recently used entry of a set replaced. (Direct-mapped,
 * 33 search keys in 256 slots collided about one in eight, and each pair then evicted the
 * other for ever.) Invariant: a slot's key, generation, etag and body belong to one fill.
 */
#include "readcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsd.h"
#include "banned.h"

#define WAYS 4

struct readcache {
	size_t mask; /* slots - 1 */
	uint64_t tick;
	struct readcache_entry *slots;
};

/* The first slot of key's set of WAYS slots. */
static size_t key_set(const struct readcache *c, const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return (size_t)h & c->mask & ~(size_t)(WAYS - 1);
}

struct readcache *readcache_new(size_t slots)
{
	size_t n = WAYS;
	while (n < slots)
		n <<= 1;
	struct readcache *c = rsd_calloc(1, sizeof(*c));
	c->mask = n - 1;
	c->slots = rsd_calloc(n, sizeof(*c->slots));
	return c;
}

void readcache_free(struct readcache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i <= c->mask; i++) {
		free(c->slots[i].key);
		free(c->slots[i].body);
	}
	free(c->slots);
	free(c);
}

const struct readcache_entry *readcache_get(struct readcache *c, const char *key,
					    uint64_t generation)
{
	struct readcache_entry *set = &c->slots[key_set(c, key)];
	for (int i = 0; i < WAYS; i++) {
		struct readcache_entry *e = &set[i];
		if (e->body && e->generation == generation && strcmp(e->key, key) == 0) {
			e->used = ++c->tick;
			return e;
		}
	}
	return NULL;
}

/* Where key goes in its set: its own slot, else an empty one, else the least recently used. */
static struct readcache_entry *victim(struct readcache *c, const char *key)
{
	struct readcache_entry *set = &c->slots[key_set(c, key)], *v = &set[0];
	for (int i = 0; i < WAYS; i++) {
		if (set[i].key && strcmp(set[i].key, key) == 0)
			return &set[i];
		if (v->key && (set[i].key == NULL || set[i].used < v->used))
			v = &set[i];
	}
	return v;
}

void readcache_put(struct readcache *c, const char *key, uint64_t generation, const char *etag,
		   const char *body, size_t len)
{
	if (len > READCACHE_BODY_BYTES_MAX)
		return;
	struct readcache_entry *e = victim(c, key);
	e->used = ++c->tick;
	free(e->body);
	free(e->key);
	size_t klen = strlen(key);
	e->key = rsd_malloc(klen + 1);
	memcpy(e->key, key, klen + 1);
	snprintf(e->etag, sizeof(e->etag), "%s", etag);
	e->generation = generation;
	e->body = rsd_malloc(len);
	memcpy(e->body, body, len);
	e->len = len;
}
