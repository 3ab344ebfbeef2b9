/*
 * saga.h — the thread that drives bookings through payment, and sweeps expired holds.
 *
 * One thread with its own event loop. Every booking with payment work left is "kicked"
 * here (after the command that created the work, and for every unfinished saga at
 * start-up); the thread reads the booking's stored state, makes the one payment call the
 * state calls for (payment.h), outside any transaction, and submits the step it learned
 * as a writer command (booking_step_cmd). Then it reads the state again, until nothing
 * is left to do. A crash at any point leaves a stored state from which the same walk
 * continues on restart; every call carries an Idempotency-Key derived from the booking,
 * so repeating a call is harmless.
 *
 * A request waiting for its booking's answer registers a waiter (saga_wait); the step
 * that decides the booking hands the waiter the outcome the Idempotency-Key stored.
 */
#ifndef RSD_SAGA_H
#define RSD_SAGA_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "idempotency.h"
#include "store.h"
#include "writer.h"

struct saga_waiter {
	char id[ENTITY_ID_BYTES_MAX + 1];
	/* Called once, on the saga thread, with the booking's answer copied into out. It must
	 * only hand over to its own thread (event_active). */
	void (*fn)(struct saga_waiter *w);
	void *arg;
	struct outcome out;
	struct saga_waiter *next;
};

struct saga_stats {
	uint64_t holds_expired, keys_removed;
	uint64_t payment_calls, payment_unknown;
	uint64_t confirmed, declined, gave_up; /* gave_up: failed with compensation (void) */
	uint64_t voided, refunded, captured;
	uint64_t active;
	/* durations from the first kick to the deciding step: bucket i counts <= 2^i ms */
	uint64_t duration_hist[16];
	uint64_t duration_ms_sum, duration_count;
};

/* Starts the thread and kicks every unfinished saga. Errors: RSD_EINVAL (a payment_url
 * that cannot be used), RSD_EIO. */
int saga_start(struct store *s, struct writer *w, const struct config *cfg, struct rsd_fail *f);
/* True when payment method http is available (payment_url set). */
bool saga_http_enabled(void);
/* Asks the thread to advance booking id. Any thread. */
void saga_kick(const char *id);
/* Registers w; saga_unwait removes it and returns true when fn has not been called and
 * will not be. Any thread. */
void saga_wait(struct saga_waiter *w);
bool saga_unwait(struct saga_waiter *w);
void saga_stats_get(struct saga_stats *out);
/* Starts no new call from now on (retries waiting are dropped: the stored state keeps
 * them for the next start). Called when shutdown begins, so that calls in flight end
 * while requests drain. Main thread. */
void saga_quiesce(void);
/* Lets calls in flight finish (each is bounded by payment_timeout_ms) and their steps
 * commit, starts nothing new, then stops the thread. Before the writer stops. */
void saga_stop(void);

#endif
