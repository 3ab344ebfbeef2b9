/*
 * hold.h — holds: capacity taken for a stay, all items and nights or none, that expires
 * by itself unless a booking takes it over. No HTTP here (booking_http.c).
 *
 * A hold is a document in LMDB's holds database behind a small binary prefix (its expiry
 * and state, so the sweeper need not parse JSON):
 *   {id, state: held | released | expired | booked, created_at, expires_at, items:
 *    [{product_id, from, to, slot?, qty, amount, currency, cancellation: {free_days,
 *    fee_percent}}], total: {amount, currency}, guest: {name, email, phone?},
 *    principal, booking_id, version}
 * Prices and cancellation terms are read from the catalog when the hold is made and are
 * frozen in it: a booking pays what the guest was shown.
 */
#ifndef RSD_HOLD_H
#define RSD_HOLD_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdint.h>

#include "idempotency.h"
#include "inventory.h"
#include "readmodel.h"
#include "session.h"
#include "store.h"
#include "writer.h"

enum hold_state { HOLD_HELD = 1, HOLD_RELEASED, HOLD_EXPIRED, HOLD_BOOKED };

/* One item as priced when the hold is made. */
struct hold_item {
	struct inv_item inv;
	int64_t amount; /* the whole item: every night, every unit */
	int free_cancel_days, cancel_fee_percent;
};

struct hold_request {
	struct hold_item items[HOLD_ITEMS_MAX];
	int n;
	char currency[4];
	int64_t total;
	cJSON *guest; /* owned; {name, email, phone?} */
};

/* Decodes POST /v1/holds. Errors: RSD_EINVAL naming the field ("items[1].to"). */
int hold_decode(const char *body, size_t len, struct hold_request *out, struct rsd_fail *f);

/* Checks a guest object {name, email, phone?}. Errors: RSD_EINVAL with path in the field. */
int hold_check_guest(const cJSON *guest, const char *path, struct rsd_fail *f);

/* Prices every item from the catalog read model (catalog_quote) and fills the total.
 * Errors: those of catalog_quote, and RSD_ECONFLICT when items' currencies differ. */
int hold_price(struct readmodel_reader *r, struct hold_request *req, struct rsd_fail *f);

/* Frees what req owns. */
void hold_request_release(struct hold_request *req);

/* POST /v1/holds on its way through the writer. Caller-owned: hold_cmd_release. */
struct hold_cmd {
	struct command cmd;
	struct hold_request req;
	struct idem_key idem;
	uint64_t ttl_ms;
	int32_t today;
	/* A refusal decided before the writer (the catalog cannot price the stay): recorded
	 * under the key like any other, unless the key already has an answer. */
	int refuse_err;
	struct rsd_fail refuse_fail;
	struct outcome out; /* 201 with the hold, or the refusal (409 with reason, remaining) */
	/* The hold it would create, built by hold_cmd_init off the writer thread (its id, and
	 * times from then): the writer only stores it once the units are taken. */
	char id[ENTITY_ID_BYTES_MAX + 1];
	uint64_t prepared_ms, expiry_ms;
	unsigned char *record; /* as stored: expiry, state, document (owned) */
	size_t record_len;
};
void hold_cmd_init(struct hold_cmd *hc, struct hold_request *req, const struct idem_key *idem,
		   const char *principal, uint64_t ttl_ms);
void hold_cmd_release(struct hold_cmd *hc);

/* DELETE /v1/holds/{id}: releases a held hold (200 with it), or 409 when it is not held. */
struct hold_release_cmd {
	struct command cmd;
	char id[ENTITY_ID_BYTES_MAX + 1];
	struct principal who; /* must be allowed the hold (hold_access) */
	struct outcome out;
};
void hold_release_cmd_init(struct hold_release_cmd *rc, const char *id,
			   const struct principal *who);

/*
 * Whether who may see and act on doc, a hold or booking document: whoever made it (its
 * principal, whatever their role), and staff who act for the resort of every item's
 * product (scope_acts_for: admins and group-wide staff for all). Returns RSD_OK or
 * RSD_ENOTFOUND: to anyone else the document does not exist.
 */
int hold_access(MDB_txn *txn, struct store *s, const cJSON *doc, const struct principal *who);
/* The staff part alone: for the desk's actions (check-in, check-out, no-show), which having
 * made the booking does not allow (staff of another resort booking a room here). */
int hold_staff_access(MDB_txn *txn, struct store *s, const cJSON *doc, const struct principal *who);

/* The sweeper's command: expires holds and removes idempotency records whose time has
 * come, at most SWEEP_BATCH_MAX. */
struct sweep_cmd {
	struct command cmd;
	uint64_t now_ms;
	int holds_expired, keys_removed;
	int sign_in_removed; /* sessions and refresh records past their end */
	int more;	     /* out: 1 when the batch was full */
};
void sweep_cmd_init(struct sweep_cmd *sc, uint64_t now_ms);

/* --- for booking.c and reads --- */

/* Reads hold id: its document (caller frees with cJSON_Delete), state and expiry.
 * Errors: RSD_ENOTFOUND, RSD_EIO. */
int hold_load(MDB_txn *txn, struct store *s, const char *id, cJSON **doc, enum hold_state *state,
	      uint64_t *expiry_ms);
/* Writes a hold back with a new state (bumping its version). Writer thread. */
int hold_store(MDB_txn *txn, struct store *s, cJSON *doc, enum hold_state state,
	       uint64_t expiry_ms);
/* The stored form of hold_store, for a writer that stores it later (malloc'd, *len bytes):
 * sets doc's state and bumps its version as hold_store does. */
unsigned char *hold_record(cJSON *doc, enum hold_state state, uint64_t expiry_ms, size_t *len);
/* Stores a record made by hold_record under id. Writer thread. */
int hold_record_put(MDB_txn *txn, struct store *s, const char *id, const void *rec, size_t len);
/* Hold id's stored record, borrowed until txn ends. Errors: RSD_ENOTFOUND, RSD_EIO. */
int hold_raw(MDB_txn *txn, struct store *s, const char *id, MDB_val *v);
/* hold_load of a record hold_raw found. */
int hold_decode_record(const MDB_val *v, cJSON **doc, enum hold_state *state, uint64_t *expiry_ms);
/* Turns a document's items back into counters' items; returns how many (-1: corrupt). */
int hold_items(const cJSON *doc, struct inv_item *items, int max);
/* The state's name. */
const char *hold_state_name(enum hold_state state);

/* Reads a hold's JSON text for GET (malloc'd in *json). Errors: RSD_ENOTFOUND, RSD_EIO. */
int hold_get(MDB_txn *txn, struct store *s, const char *id, char **json, size_t *len);

#endif
