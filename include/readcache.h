/*
 * readcache.h — a worker's cache of serialized replies: single entities (GET by id) and
 * search pages (keyed by the search's parameters).
 *
 * An entry is valid only while the read model is at the generation it was filled at (the
 * projector's count of committed batches), so a read never returns data older than the
 * last projected event. Fill protocol: read the generation BEFORE querying SQLite, then put
 * with that generation; a commit in between only makes the entry stale at once, never wrong.
 * Not thread-safe: one cache per worker.
 */
#ifndef RSD_READCACHE_H
#define RSD_READCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "limits_rsd.h"

struct readcache_entry {
	char *key; /* owned by the cache */
	uint64_t generation;
	char etag[64];
	char *body;    /* owned by the cache; valid until the next put */
	uint64_t used; /* the cache's tick when last filled or hit: the least recent goes first */
	size_t len;
};

struct readcache;

/* A cache of slots entries (rounded up to a power of two, at least 4), 4-way set associative. */
struct readcache *readcache_new(size_t slots);
void readcache_free(struct readcache *c);

/* Returns key's entry if it was filled at generation, else NULL. */
const struct readcache_entry *readcache_get(struct readcache *c, const char *key,
					    uint64_t generation);

/* Stores a copy of body under key, replacing whatever held its slot; a body over
 * READCACHE_BODY_BYTES_MAX is not kept. */
void readcache_put(struct readcache *c, const char *key, uint64_t generation, const char *etag,
		   const char *body, size_t len);

#endif
