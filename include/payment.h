/*
 * payment.h — payment providers behind one small interface.
 *
 * desk: the guest pays at the front desk; no call leaves the appliance, so it works
 *   while the WAN is down; every operation succeeds at once.
 * http: an external payment service (payment_url): POST /authorize, /capture, /void,
 *   /refund with JSON bodies, each with our Idempotency-Key, so that a retry after a
 *   timeout can never charge twice (payment_http.c).
 * Calls are asynchronous on the caller's event loop (saga.c's thread) and never run
 * inside an LMDB transaction.
 */
#ifndef RSD_PAYMENT_H
#define RSD_PAYMENT_H

#include <stdint.h>

#include "limits_rsd.h"

struct event_base;

enum payment_op { PAYMENT_AUTHORIZE, PAYMENT_CAPTURE, PAYMENT_VOID, PAYMENT_REFUND };

enum payment_answer {
	PAYMENT_OK,	  /* done (authorize: authorization_id filled) */
	PAYMENT_DECLINED, /* authorize refused for good (402) */
	PAYMENT_REFUSED,  /* the service says the operation cannot happen (4xx) */
	PAYMENT_UNKNOWN,  /* timeout, 5xx, or no connection: the outcome is unknown */
};

struct payment_call {
	enum payment_op op;
	char key[ENTITY_ID_BYTES_MAX + 16];	      /* Idempotency-Key: "<booking>:<op>" */
	char authorize_key[ENTITY_ID_BYTES_MAX + 16]; /* void without an authorization id */
	char reference[ENTITY_ID_BYTES_MAX + 1];      /* the booking id */
	int64_t amount;
	char currency[4];
	char token[PAYMENT_TOKEN_BYTES_MAX + 1];
	char authorization_id[64]; /* in for capture/void/refund; out for authorize */
	char detail[128];	   /* out: why, for the log */
	void (*done)(struct payment_call *call, enum payment_answer answer);
	void *arg;
};

struct payment_provider {
	const char *name;
	/* Starts call; call->done runs later on the same loop, exactly once. */
	void (*start)(struct payment_provider *p, struct payment_call *call);
	void (*free)(struct payment_provider *p);
};

/* The desk provider (a static object; free is a no-op). */
struct payment_provider *payment_desk(void);

/* The http provider on base for url ("http://host:port[/path]"), each call limited to
 * timeout_ms. NULL when url cannot be parsed. */
struct payment_provider *payment_http_new(struct event_base *base, const char *url, int timeout_ms);

#endif
