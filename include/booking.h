/*
 * booking.h — bookings: a hold taken over by a saga through payment, then the stay's
 * life (cancel, change dates, check-in, check-out, no-show). No HTTP here
 * (booking_http.c); payment calls are saga.c's, outside any transaction.
 *
 * A booking is a JSON document in LMDB's bookings database, the saga's stored state:
 *   {id, state, hold_id, principal, created_at, updated_at, items (as in its hold; an
 *    item's "to" moves when the stay is cut short or changed), total: {amount, currency},
 *    guest, payment: {method: desk | http, state, authorization_id}, cancellation_fee,
 *    failure, version}
 * States: payment_pending -> confirmed | failed; confirmed -> cancelled | checked_in |
 * no_show (and confirmed again by a change of dates); checked_in -> checked_out.
 * Inventory: a payment_pending booking's units are held (its hold's); a confirmed,
 * checked-in, checked-out or no-show booking's items' nights are sold (check-out and
 * no-show first cut the items' "to" to the nights actually used or charged); every other
 * state has none.
 * Payment states: desk: due | none. http: pending (authorize not yet answered),
 * authorized, captured, declined, void_pending, voided, refund_pending, refunded.
 * A booking whose payment has work left is listed in meta under "sg:<id>" so a restart
 * finds every unfinished saga without reading every booking.
 */
#ifndef RSD_BOOKING_H
#define RSD_BOOKING_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "eventlog.h"
#include "hold.h"
#include "idempotency.h"
#include "readmodel.h"
#include "store.h"
#include "writer.h"

enum payment_method { PAYMENT_DESK = 1, PAYMENT_HTTP = 2 };

/* POST /v1/bookings on its way through the writer. Caller-owned: booking_cmd_release. */
struct booking_cmd {
	struct command cmd;
	char hold_id[ENTITY_ID_BYTES_MAX + 1];
	enum payment_method method;
	char token[PAYMENT_TOKEN_BYTES_MAX + 1];
	cJSON *guest; /* owned; NULL: the hold's guest */
	struct idem_key idem;
	struct principal who;			  /* must be allowed the hold (hold_access) */
	struct outcome out;			  /* 201 confirmed, 202 pending, or a refusal */
	char booking_id[ENTITY_ID_BYTES_MAX + 1]; /* out */
	bool saga;				  /* out: the payment saga must run */
	struct booking_prep *prep;		  /* booking_cmd_prepare's, or NULL (owned) */
};

/* Decodes {hold_id, payment: {method, token?}, guest?}. Errors: RSD_EINVAL. */
int booking_decode(const char *body, size_t len, struct booking_cmd *bc, struct rsd_fail *f);
/* Prepares bc (already decoded) with the key; who is asking. */
void booking_cmd_init(struct booking_cmd *bc, const struct idem_key *idem,
		      const struct principal *who);
/* Optional, after init, on the submitter's thread: builds the booking from the hold as txn
 * (a read snapshot; NULL: skip) has it, so the writer only checks the hold is unchanged
 * and stores what was built. Nothing changes if the hold is missing or not held. */
void booking_cmd_prepare(struct booking_cmd *bc, struct store *s, MDB_txn *txn);
/* The id the prepared booking will have if the writer takes it; NULL: nothing prepared. */
const char *booking_cmd_prepared_id(const struct booking_cmd *bc);
void booking_cmd_release(struct booking_cmd *bc);

enum booking_action {
	BOOKING_CANCEL,
	BOOKING_CHECK_IN,
	BOOKING_CHECK_OUT,
	BOOKING_NO_SHOW,
	BOOKING_CHANGE_DATES,
};

/* POST /v1/bookings/{id}/<action>. */
struct booking_action_cmd {
	struct command cmd;
	char id[ENTITY_ID_BYTES_MAX + 1];
	enum booking_action action;
	int32_t today;
	int item;		 /* change-dates: which item */
	struct hold_item change; /* change-dates: the new stay, priced */
	struct idem_key idem;
	struct principal who; /* must be allowed the booking (hold_access) */
	struct outcome out;
	bool saga; /* out: a refund or void is due */
};
/* Decodes a change-dates body {from, to, item?} into ac. Errors: RSD_EINVAL. */
int booking_decode_change(const char *body, size_t len, struct booking_action_cmd *ac,
			  struct rsd_fail *f);
void booking_action_cmd_init(struct booking_action_cmd *ac, const char *id,
			     enum booking_action action, const struct idem_key *idem,
			     const struct principal *who);
void booking_action_cmd_release(struct booking_action_cmd *ac);

/* What the saga learned from the payment service; applied by booking_step_cmd. */
enum booking_step {
	STEP_AUTHORIZED, /* confirm: held -> sold */
	STEP_DECLINED,	 /* fail: release, nothing to undo */
	STEP_GAVE_UP,	 /* fail: release, void whatever authorize may have done */
	STEP_CAPTURED,
	STEP_VOIDED,
	STEP_REFUNDED,
};
struct booking_step_cmd {
	struct command cmd;
	char id[ENTITY_ID_BYTES_MAX + 1];
	enum booking_step step;
	char authorization_id[64];
	char reason[96];
	struct outcome out; /* when the step ends the booking request: its answer */
	bool answered;	    /* out: out is the request's final answer */
};
void booking_step_cmd_init(struct booking_step_cmd *sc, const char *id, enum booking_step step,
			   const char *authorization_id, const char *reason);
void booking_step_cmd_release(struct booking_step_cmd *sc);

/* Reads booking id's document (caller frees). Errors: RSD_ENOTFOUND, RSD_EIO. */
int booking_load(MDB_txn *txn, struct store *s, const char *id, cJSON **doc);
/* Reads a booking's JSON text for GET (malloc'd). Errors: RSD_ENOTFOUND, RSD_EIO. */
int booking_get(MDB_txn *txn, struct store *s, const char *id, char **json, size_t *len);
/* Copies the payment token of a booking still to be authorized into out (cap bytes).
 * Errors: RSD_ENOTFOUND (authorized or failed already: the token is gone), RSD_EIO. */
int booking_token(MDB_txn *txn, struct store *s, const char *id, char *out, size_t cap);
/* Calls fn for each booking with payment work left (the "sg:" list). */
int booking_pending_sagas(MDB_txn *txn, struct store *s, void (*fn)(const char *id, void *arg),
			  void *arg);
/* The outcome a booking request ends with, from the document: 201 when confirmed, 402
 * when declined or failed, 202 while payment is pending. */
void booking_outcome(const cJSON *doc, struct outcome *out);

/* What GET /v1/bookings and the occupancy report select; "" / false: no filter. */
struct booking_filter {
	char state[24];
	char product[ENTITY_ID_BYTES_MAX + 1];
	char resort[ENTITY_ID_BYTES_MAX + 1];
	char principal[PRINCIPAL_BYTES_MAX + 1];
	bool has_range;
	int32_t from_day, to_day; /* stays overlapping [from, to); the report's days */
	int32_t after_arrival;	  /* the cursor: after (arrival, id) */
	char after_id[ENTITY_ID_BYTES_MAX + 1];
};

/*
 * Lists bookings of the read model in (arrival, id) order, at most limit; next receives
 * the cursor of the next page ("" on the last). Errors: RSD_EIO.
 */
int booking_list(struct readmodel_reader *r, const struct booking_filter *flt, int limit,
		 cJSON **items, char *next, size_t next_len, struct rsd_fail *f);

/* The occupancy report over flt's days (product/resort filters apply):
 * {days: [{date, capacity, sold, occupancy, arrivals, departures}]}. Errors: RSD_EIO. */
int booking_occupancy(struct readmodel_reader *r, const struct booking_filter *flt, cJSON **out,
		      struct rsd_fail *f);

/* Counters of what the commands decided (any thread reads, the writer counts). */
struct booking_stats {
	uint64_t holds_created, holds_refused, holds_released;
	uint64_t confirmed, failed, cancelled, replays;
};
void booking_stats_get(struct booking_stats *out);
/* Counts for the writer-side modules (hold.c, booking.c). */
enum booking_counter {
	COUNT_HOLD_CREATED,
	COUNT_HOLD_REFUSED,
	COUNT_HOLD_RELEASED,
	COUNT_CONFIRMED,
	COUNT_FAILED,
	COUNT_CANCELLED,
	COUNT_MAX_,
};
void booking_count(enum booking_counter c);

/* Projects hold.* and booking.* events into catalog.db (projector thread). */
int booking_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		    struct rsd_fail *f);

#endif
