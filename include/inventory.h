/*
 * inventory.h — capacity counters in LMDB, one per (product, day, slot), and the
 * restrictions a PMS puts on them. No HTTP here (inventory_http.c).
 *
 * A counter says how many units of a product exist on a day (capacity), how many are
 * sold and how many are held. Units free = capacity + the product's overbooking
 * allowance - sold - held; the writer never lets it go below zero, which is the whole of
 * "never double-book": every change happens in the single writer's transaction, so a
 * check and its change can never interleave with another's (compare-and-swap without a
 * retry loop). Counters that were never set read as all zeros (capacity 0).
 *
 * Each counter has a version that moves on every change; the product has an inventory
 * version that moves only when staff change capacity or restrictions, so that If-Match
 * on an admin write is not defeated by the guests' holds on the same days.
 *
 * Days are days since 1970-01-01 (price.h); a stay's nights are [from_day, to_day).
 * Slot 0 is the whole day; slots 1..1440 are start times (minute of day + 1) for things
 * sold by the hour, like a spa slot.
 */
#ifndef RSD_INVENTORY_H
#define RSD_INVENTORY_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "store.h"
#include "writer.h"

enum inv_flags {
	INV_STOP_SELL = 1 << 0,
	INV_CLOSED_TO_ARRIVAL = 1 << 1,
	INV_CLOSED_TO_DEPARTURE = 1 << 2,
};

/* One counter. Restriction values of 0 mean "none". */
struct inv_day {
	uint64_t version;
	uint32_t capacity, sold, held;
	uint16_t min_stay, max_stay;		     /* nights, checked on the arrival day */
	uint16_t min_advance_days, max_advance_days; /* from today to arrival */
	uint8_t flags;				     /* enum inv_flags */
};

/* A product's inventory settings. */
struct inv_product {
	uint64_t version; /* moves on every staff change of this product's inventory */
	uint32_t overbooking;
};

/* One line of a stay: qty units of product on each day of [from_day, to_day) at slot. */
struct inv_item {
	char product_id[ENTITY_ID_BYTES_MAX + 1];
	int32_t from_day, to_day;
	uint16_t slot;
	uint32_t qty;
};

/* Reads a counter; a missing one reads as zeros. Errors: RSD_EIO. */
int inventory_day_get(MDB_txn *txn, struct store *s, const char *product, int32_t day,
		      uint16_t slot, struct inv_day *out);
/* Reads a product's settings; missing reads as zeros. Errors: RSD_EIO. */
int inventory_product_get(MDB_txn *txn, struct store *s, const char *product,
			  struct inv_product *out);

/* Units of d still free under overbooking ob (0 when none or over). */
uint32_t inventory_free(const struct inv_day *d, uint32_t overbooking);

/*
 * Takes items[0..n) as held (as_sold: as sold) for every day, all or nothing, checking
 * stop-sell, closed-to-arrival/departure, length of stay and advance booking against
 * today. Writer thread. Every check runs before any write, so on RSD_ECONFLICT nothing
 * has changed (the caller may go on to record the refusal); on other errors the caller
 * aborts. On
 * RSD_ECONFLICT, f says why and *why (may be NULL) receives a JSON object
 * {"reason": "sold_out" | "stop_sell" | ..., "remaining": [{"product_id","date",
 * "available"}]} that the caller owns. Errors: RSD_ECONFLICT, RSD_EFULL, RSD_EIO.
 */
int inventory_take(MDB_txn *txn, struct store *s, const struct inv_item *items, int n,
		   int32_t today, bool as_sold, cJSON **why, struct rsd_fail *f);

/* Moves of units already taken, all days of items[0..n). RSD_EINTERNAL when a counter
 * would go below zero (the log and the counters disagree). */
enum inv_move {
	INV_RELEASE_HELD, /* held -= qty: a hold released or expired */
	INV_CONFIRM,	  /* held -= qty, sold += qty: a booking confirmed */
	INV_RELEASE_SOLD, /* sold -= qty: a booking cancelled */
};
int inventory_move(MDB_txn *txn, struct store *s, const struct inv_item *items, int n,
		   enum inv_move move, struct rsd_fail *f);

/* --- staff changes: PUT /v1/inventory/{product} --- */

/* What a PUT sets over [from_day, to_day); a field is applied when its has_ bit is set. */
struct inventory_set {
	char product_id[ENTITY_ID_BYTES_MAX + 1];
	int32_t from_day, to_day;
	uint16_t slot;
	bool has_capacity, has_overbooking, has_stop_sell, has_cta, has_ctd;
	bool has_min_stay, has_max_stay, has_min_advance, has_max_advance;
	uint32_t capacity, overbooking;
	bool stop_sell, cta, ctd;
	uint16_t min_stay, max_stay, min_advance_days, max_advance_days;
};

/* Reads members "from" and "to" of obj as [from, to) of at most max_days days, in this
 * century. Errors: RSD_EINVAL naming the member. */
int inventory_decode_range(const cJSON *obj, int32_t *from, int32_t *to, int32_t max_days,
			   struct rsd_fail *f);

/* Decodes a PUT body for product. Errors: RSD_EINVAL naming the field. */
int inventory_decode_set(const char *product, const char *body, size_t len,
			 struct inventory_set *out, struct rsd_fail *f);

struct inventory_cmd {
	struct command cmd;
	struct inventory_set set;
	uint64_t if_match; /* 0: none; UINT64_MAX: a weak tag (never matches) */
	uint64_t version;  /* out: the product's new inventory version */
};

/* Prepares the command. It fails with RSD_ENOTFOUND (no such live product),
 * RSD_EPRECONDITION (If-Match) or RSD_ECONFLICT (capacity below what is sold and held). */
void inventory_cmd_init(struct inventory_cmd *ic, const struct inventory_set *set,
			uint64_t if_match);

/*
 * The inventory document of product over [from_day, to_day) at slot, read in txn:
 * {product_id, version, overbooking, days: [...]}. *version receives the inventory
 * version. Errors: RSD_ENOTFOUND (no such live product), RSD_EIO.
 */
int inventory_doc(MDB_txn *txn, struct store *s, const char *product, int32_t from_day,
		  int32_t to_day, uint16_t slot, cJSON **out, uint64_t *version);

/*
 * Availability of qty units of product for [from_day, to_day) at slot as a guest asks
 * it: the same checks inventory_take makes, without taking. Errors: RSD_ENOTFOUND (no
 * such live product), RSD_EIO.
 */
int inventory_availability(MDB_txn *txn, struct store *s, const struct inv_item *item,
			   int32_t today, cJSON **out);

/* Parses "HH:MM" (or NULL: the whole day) into a slot. Errors: RSD_EINVAL. */
int inventory_parse_slot(const char *s, uint16_t *slot);
/* Writes slot as "HH:MM" (out >= 6 bytes), or "" for the whole day. */
void inventory_format_slot(uint16_t slot, char out[6]);

/* The first bookable day (2000-01-01); day 0 keys a product's settings. */
#define INVENTORY_FIRST_DAY 10957

/* Today in days since 1970-01-01 in the appliance's time zone (its resort's). */
int32_t inventory_today(void);

#endif
