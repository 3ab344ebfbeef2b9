/*
 * throttle.h — failed sign-in attempts counted per key ("user:NAME", "addr:IP") over a
 * fixed window, so that guessing passwords gets a 429 long before it gets anywhere.
 *
 * Thread-safe (one mutex: sign-ins are rare next to reads). A fixed table of slots keyed
 * by a hash; when two keys share a slot the newer takes it, which can only forget
 * failures, never lock out a key that did not fail.
 */
#ifndef RSD_THROTTLE_H
#define RSD_THROTTLE_H

#include <stdint.h>

struct throttle;

/* window_s: how long failures count; max: failures allowed in a window. */
struct throttle *throttle_new(int window_s, int max);
void throttle_free(struct throttle *t);

/* Seconds until key may try again (0: it may now). */
int throttle_wait_s(struct throttle *t, const char *key, uint64_t now_ms);
/* Counts a failure of key. */
void throttle_fail(struct throttle *t, const char *key, uint64_t now_ms);
/* Forgets key's failures (after a success). */
void throttle_clear(struct throttle *t, const char *key);

#endif
