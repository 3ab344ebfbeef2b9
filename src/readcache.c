/*
 * readcache.c — direct-mapped cache of reply bytes, keyed by an entity id or a search's
 * parameters. Invariant: a slot's key, generation, etag and body always belong to one fill.
 */
#include "readcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsd.h"
#include "banned.h"

struct readcache {
	size_t mask;
	struct readcache_entry *slots;
};

static size_t key_slot(const struct readcache *c, const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return (size_t)h & c->mask;
}

struct readcache *readcache_new(size_t slots)
{
	size_t n = 1;
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
	const struct readcache_entry *e = &c->slots[key_slot(c, key)];
	if (e->body == NULL || e->generation != generation || strcmp(e->key, key) != 0)
		return NULL;
	return e;
}

void readcache_put(struct readcache *c, const char *key, uint64_t generation, const char *etag,
		   const char *body, size_t len)
{
	if (len > READCACHE_BODY_BYTES_MAX)
		return;
	struct readcache_entry *e = &c->slots[key_slot(c, key)];
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
