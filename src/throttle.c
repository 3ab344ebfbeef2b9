/*
 * throttle.c — fixed-window failure counters in a fixed table.
 */
#include "throttle.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "limits_rsd.h"
#include "rsd.h"
#include "banned.h"

struct slot {
	uint64_t key_hash; /* 0: free */
	uint64_t window_start_ms;
	int fails;
};

struct throttle {
	pthread_mutex_t mu;
	uint64_t seed; /* random: user names that share a slot cannot be picked offline */
	uint64_t window_ms;
	int max;
	struct slot slots[THROTTLE_SLOTS];
};

/* FNV-1a from a random basis, never 0. */
static uint64_t key_hash(const struct throttle *t, const char *key)
{
	uint64_t h = 1469598103934665603ull ^ t->seed;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ? h : 1;
}

struct throttle *throttle_new(int window_s, int max)
{
	struct throttle *t = rsd_calloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	t->window_ms = (uint64_t)window_s * 1000;
	t->max = max;
	rsd_random(&t->seed, sizeof(t->seed));
	return t;
}

void throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static struct slot *slot_of(struct throttle *t, uint64_t h)
{
	return &t->slots[h % THROTTLE_SLOTS];
}

int throttle_wait_s(struct throttle *t, const char *key, uint64_t now_ms)
{
	uint64_t h = key_hash(t, key);
	int wait = 0;
	pthread_mutex_lock(&t->mu);
	struct slot *s = slot_of(t, h);
	uint64_t end = s->window_start_ms + t->window_ms;
	if (s->key_hash == h && now_ms < end && s->fails >= t->max)
		wait = (int)((end - now_ms + 999) / 1000);
	pthread_mutex_unlock(&t->mu);
	return wait;
}

void throttle_fail(struct throttle *t, const char *key, uint64_t now_ms)
{
	uint64_t h = key_hash(t, key);
	pthread_mutex_lock(&t->mu);
	struct slot *s = slot_of(t, h);
	if (s->key_hash != h || now_ms >= s->window_start_ms + t->window_ms) {
		s->key_hash = h;
		s->window_start_ms = now_ms;
		s->fails = 0;
	}
	s->fails++;
	pthread_mutex_unlock(&t->mu);
}

void throttle_clear(struct throttle *t, const char *key)
{
	uint64_t h = key_hash(t, key);
	pthread_mutex_lock(&t->mu);
	struct slot *s = slot_of(t, h);
	if (s->key_hash == h)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&t->mu);
}
