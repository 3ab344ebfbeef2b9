/*
 * eventlog.h — the log of events, the only source of truth.
 *
 * Key: origin node id, zero-padded to NODE_ID_BYTES_MAX + 1 bytes, then seq as big-endian
 * u64, so keys sort by origin, then seq. Value: format byte (1), type (be16), wall-clock
 * ms (be64), then the event's data as JSON text. Seqs of one origin start at 1 and have
 * no gaps.
 */
#ifndef RSD_EVENTLOG_H
#define RSD_EVENTLOG_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "store.h"

#define EVENTLOG_ORIGIN_BYTES (NODE_ID_BYTES_MAX + 1)
#define EVENTLOG_KEY_BYTES    (EVENTLOG_ORIGIN_BYTES + 8)
#define EVENTLOG_HEADER_BYTES 11

enum event_type {
	EVENT_RESORT_CREATED = 1,
	EVENT_RESORT_UPDATED = 2,
	EVENT_PRODUCT_CREATED = 3,
	EVENT_PRODUCT_REPLACED = 4,
	EVENT_PRODUCT_PATCHED = 5,
	EVENT_PRODUCT_DELETED = 6,
	EVENT_RATE_PLAN_CREATED = 7,
	EVENT_RATE_PLAN_REPLACED = 8,
	EVENT_RATE_PLAN_PATCHED = 9,
	EVENT_RATE_PLAN_DELETED = 10,
	EVENT_REVIEW_CREATED = 11,
	EVENT_REVIEW_MODERATED = 12,
	EVENT_INVENTORY_SET = 13,      /* staff changed capacity or restrictions */
	EVENT_HOLD_CREATED = 14,       /* the hold document */
	EVENT_HOLD_ENDED = 15,	       /* {id, state: released | expired | booked, booking_id} */
	EVENT_BOOKING_CHANGED = 16,    /* the whole booking document after each transition */
	EVENT_AUTH_LOGIN = 17,	       /* {sub, sid, via, role, resort, ip} */
	EVENT_AUTH_LOGIN_FAILED = 18,  /* {user, ip, reason} */
	EVENT_AUTH_LOGOUT = 19,	       /* {sub, sid | all} */
	EVENT_AUTH_REVOKED = 20,       /* {sub, sid | all, by, reason} */
	EVENT_AUTH_REFRESH_REUSE = 21, /* {sub, sid}: the family was revoked */
	EVENT_USER_CHANGED = 22,       /* a local staff user {name, role, resort, disabled} */
	EVENT_PROFILE_UPDATED = 23,    /* an IdP user's profile {sub, name, email, groups} */
};

struct event {
	char origin[NODE_ID_BYTES_MAX + 1];
	uint64_t seq;
	uint64_t ts_ms;
	uint16_t type;
	const char *data; /* JSON text; points into the LMDB map (valid until the txn ends) */
	size_t data_len;
};

/* Builds the key of (origin, seq). */
void eventlog_key(unsigned char key[EVENTLOG_KEY_BYTES], const char *origin, uint64_t seq);

/* Decodes a stored key and value into ev (data borrowed from val). Errors: RSD_EIO. */
int eventlog_decode(const MDB_val *key, const MDB_val *val, struct event *ev);

/*
 * Appends ev (origin, seq, ts_ms, type, data all set by the caller) in txn. Writer thread
 * only. Errors: RSD_ECONFLICT when (origin, seq) exists, RSD_EFULL, RSD_EIO.
 */
int eventlog_append(MDB_txn *txn, struct store *s, const struct event *ev);

/* Sets *seq to the highest seq of origin in the log, 0 when it has none. */
int eventlog_head(MDB_txn *txn, struct store *s, const char *origin, uint64_t *seq);

/* Reads one event. Errors: RSD_ENOTFOUND, RSD_EIO. */
int eventlog_read(MDB_txn *txn, struct store *s, const char *origin, uint64_t seq,
		  struct event *ev);

/* Walks events of one origin with seq > after, in order. */
struct eventlog_iter {
	MDB_cursor *cursor;
	char origin[NODE_ID_BYTES_MAX + 1];
	uint64_t after;
	int started;
};

int eventlog_iter_open(struct eventlog_iter *it, MDB_txn *txn, struct store *s, const char *origin,
		       uint64_t after);
/* Returns RSD_OK with ev filled, RSD_ENOTFOUND at the end, or RSD_EIO. */
int eventlog_iter_next(struct eventlog_iter *it, struct event *ev);
void eventlog_iter_close(struct eventlog_iter *it);

/*
 * Calls fn(origin, arg) for each origin present in the log, in order, stopping early when fn
 * returns non-zero (that value is returned). Cost: one seek per origin.
 */
int eventlog_origins(MDB_txn *txn, struct store *s, int (*fn)(const char *origin, void *arg),
		     void *arg);

#endif
