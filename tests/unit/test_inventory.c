/*
 * Unit tests for inventory.c against a real LMDB in a temporary directory: takes (held and
 * sold, all or nothing, several items on one counter), restrictions, overbooking, moves and
 * their below-zero refusal, the staff command (If-Match, capacity under what is taken,
 * overbooking, unknown products), slots, the inventory document and availability.
 *
 * Every write runs through the writer (writer_run), as in the server: a command that fails
 * is rolled back, so "nothing changed" is checked by reading the counters afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "catalog.h"
#include "inventory.h"
#include "json.h"
#include "price.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

#define ROOM	"pr_room"
#define SPA	"pr_spa"
#define PACKAGE "pr_package"

struct fixture {
	char dir[64];
	struct store store;
	struct writer *writer;
	int32_t today;
	int32_t t; /* an arrival a month ahead */
};

/* --- a command that runs a function in the writer's transaction --- */

struct fn_cmd {
	struct command cmd;
	int (*fn)(struct writer_txn *wt, struct fn_cmd *fc);
	/* arguments and results of the functions below */
	const struct inv_item *items;
	int n;
	int32_t today;
	bool as_sold;
	enum inv_move move;
	cJSON *why;
	const char *id;
	struct entity_rec rec;
};

static int fn_apply(struct writer_txn *wt, struct command *cmd)
{
	struct fn_cmd *fc = (struct fn_cmd *)cmd;
	return fc->fn(wt, fc);
}

static int run_fn(struct fixture *fx, struct fn_cmd *fc)
{
	fc->cmd.apply = fn_apply;
	return writer_run(fx->writer, &fc->cmd);
}

static int entity_fn(struct writer_txn *wt, struct fn_cmd *fc)
{
	return store_entity_put(wt->txn, wt->store, fc->id, &fc->rec);
}

static void put_entity(struct fixture *fx, const char *id, uint8_t kind, uint8_t sub, bool deleted)
{
	struct fn_cmd fc = {.fn = entity_fn, .id = id};
	fc.rec.kind = kind;
	fc.rec.sub = sub;
	fc.rec.deleted = deleted;
	fc.rec.version = 1;
	assert_int_equal(run_fn(fx, &fc), RSD_OK);
}

static int take_fn(struct writer_txn *wt, struct fn_cmd *fc)
{
	return inventory_take(wt->txn, wt->store, fc->items, fc->n, fc->today, fc->as_sold,
			      &fc->why, &fc->cmd.fail);
}

/* Takes items through the writer; *why (may be NULL) receives the refusal's reasons. */
static int take(struct fixture *fx, const struct inv_item *items, int n, int32_t today,
		bool as_sold, cJSON **why, struct rsd_fail *f)
{
	struct fn_cmd fc = {.fn = take_fn, .items = items, .n = n, .today = today};
	fc.as_sold = as_sold;
	int err = run_fn(fx, &fc);
	if (f)
		*f = fc.cmd.fail;
	if (why)
		*why = fc.why;
	else
		cJSON_Delete(fc.why);
	return err;
}

static int move_fn(struct writer_txn *wt, struct fn_cmd *fc)
{
	return inventory_move(wt->txn, wt->store, fc->items, fc->n, fc->move, &fc->cmd.fail);
}

static int move(struct fixture *fx, const struct inv_item *items, int n, enum inv_move m)
{
	struct fn_cmd fc = {.fn = move_fn, .items = items, .n = n, .move = m};
	return run_fn(fx, &fc);
}

/* --- helpers --- */

static struct inv_item item(const char *product, int32_t from, int32_t to, uint32_t qty)
{
	struct inv_item it;
	memset(&it, 0, sizeof(it));
	snprintf(it.product_id, sizeof(it.product_id), "%s", product);
	it.from_day = from;
	it.to_day = to;
	it.qty = qty;
	return it;
}

static struct inventory_set range(const char *product, int32_t from, int32_t to)
{
	struct inventory_set s;
	memset(&s, 0, sizeof(s));
	snprintf(s.product_id, sizeof(s.product_id), "%s", product);
	s.from_day = from;
	s.to_day = to;
	return s;
}

static int run_set(struct fixture *fx, const struct inventory_set *set, uint64_t if_match,
		   uint64_t *version, struct rsd_fail *f)
{
	struct inventory_cmd ic;
	inventory_cmd_init(&ic, set, if_match);
	int err = writer_run(fx->writer, &ic.cmd);
	if (version)
		*version = ic.version;
	if (f)
		*f = ic.cmd.fail;
	if (!err)
		assert_true(ic.cmd.last_seq > 0); /* an inventory.set event */
	return err;
}

static void set_capacity(struct fixture *fx, const char *product, int32_t from, int32_t to,
			 uint16_t slot, uint32_t capacity)
{
	struct inventory_set s = range(product, from, to);
	s.slot = slot;
	s.has_capacity = true;
	s.capacity = capacity;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
}

static struct inv_day day_at(struct fixture *fx, const char *product, int32_t day, uint16_t slot)
{
	MDB_txn *txn;
	struct inv_day d;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(inventory_day_get(txn, &fx->store, product, day, slot, &d), RSD_OK);
	mdb_txn_abort(txn);
	return d;
}

static struct inv_product product_at(struct fixture *fx, const char *product)
{
	MDB_txn *txn;
	struct inv_product p;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(inventory_product_get(txn, &fx->store, product, &p), RSD_OK);
	mdb_txn_abort(txn);
	return p;
}

/* Asserts sold and held of product at slot 0 on every day of [from, to). */
static void expect_counts(struct fixture *fx, const char *product, int32_t from, int32_t to,
			  uint32_t sold, uint32_t held)
{
	for (int32_t d = from; d < to; d++) {
		struct inv_day c = day_at(fx, product, d, 0);
		if (c.sold != sold || c.held != held)
			fail_msg("%s day %+d: sold %u held %u, want sold %u held %u", product,
				 (int)(d - fx->t), c.sold, c.held, sold, held);
	}
}

static const char *why_reason(const cJSON *why)
{
	return json_get_string(why, "reason");
}

/* --- fixture --- */

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, 64u << 20, "w1", &f) != RSD_OK ||
	    writer_start(&fx->writer, &fx->store, NULL, NULL) != RSD_OK)
		return -1;
	fx->today = inventory_today();
	fx->t = fx->today + 30;
	put_entity(fx, ROOM, ENTITY_PRODUCT, PRODUCT_ROOM_TYPE, false);
	put_entity(fx, SPA, ENTITY_PRODUCT, PRODUCT_FACILITY, false);
	put_entity(fx, PACKAGE, ENTITY_PRODUCT, PRODUCT_PACKAGE, false);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	writer_free(fx->writer);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* --- takes --- */

static void test_take_held_and_sold(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 3, 0, 5);
	uint64_t v0 = day_at(fx, ROOM, t, 0).version;

	struct inv_item a = item(ROOM, t, t + 2, 2);
	assert_int_equal(take(fx, &a, 1, fx->today, false, NULL, NULL), RSD_OK);
	expect_counts(fx, ROOM, t, t + 2, 0, 2);
	expect_counts(fx, ROOM, t + 2, t + 3, 0, 0); /* the departure day is not a night */

	struct inv_item b = item(ROOM, t + 1, t + 3, 1);
	assert_int_equal(take(fx, &b, 1, fx->today, true, NULL, NULL), RSD_OK);
	struct inv_day d = day_at(fx, ROOM, t + 1, 0);
	assert_int_equal(d.capacity, 5);
	assert_int_equal(d.sold, 1);
	assert_int_equal(d.held, 2);
	assert_int_equal(inventory_free(&d, 0), 2);
	assert_int_equal(inventory_free(&d, 3), 5);
	assert_int_equal(day_at(fx, ROOM, t, 0).version, v0 + 1);
	assert_int_equal(day_at(fx, ROOM, t + 1, 0).version, v0 + 2);
	/* A guest's take never moves the product's inventory version (If-Match of staff). */
	assert_int_equal(product_at(fx, ROOM).version, 2);

	/* Exactly what is left can be taken; one more cannot. */
	struct inv_item rest = item(ROOM, t + 1, t + 2, 2);
	assert_int_equal(take(fx, &rest, 1, fx->today, false, NULL, NULL), RSD_OK);
	struct inv_item one = item(ROOM, t + 1, t + 2, 1);
	cJSON *why = NULL;
	struct rsd_fail f;
	assert_int_equal(take(fx, &one, 1, fx->today, false, &why, &f), RSD_ECONFLICT);
	assert_string_equal(why_reason(why), "sold_out");
	assert_string_equal(f.field, "items[0]");
	cJSON_Delete(why);
	assert_int_equal(inventory_free(&(struct inv_day){.capacity = 1, .sold = 3}, 1), 0);
}

static void test_take_never_set_counter_is_sold_out(void **state)
{
	struct fixture *fx = *state;
	struct inv_item a = item(ROOM, fx->t, fx->t + 1, 1);
	cJSON *why = NULL;
	assert_int_equal(take(fx, &a, 1, fx->today, false, &why, NULL), RSD_ECONFLICT);
	assert_string_equal(why_reason(why), "sold_out");
	cJSON_Delete(why);
	expect_counts(fx, ROOM, fx->t, fx->t + 1, 0, 0);
}

static void test_take_all_or_nothing(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 3, 0, 2);
	set_capacity(fx, ROOM, t + 2, t + 3, 0, 1);
	set_capacity(fx, SPA, t, t + 3, 0, 4);

	/* The last night is short: no night is taken. */
	struct inv_item a = item(ROOM, t, t + 3, 2);
	cJSON *why = NULL;
	struct rsd_fail f;
	assert_int_equal(take(fx, &a, 1, fx->today, false, &why, &f), RSD_ECONFLICT);
	assert_string_equal(why_reason(why), "sold_out");
	const cJSON *rem = cJSON_GetObjectItem(why, "remaining");
	assert_int_equal(cJSON_GetArraySize(rem), 1);
	char date[11];
	price_format_date(t + 2, date);
	assert_string_equal(json_get_string(cJSON_GetArrayItem(rem, 0), "date"), date);
	assert_string_equal(json_get_string(cJSON_GetArrayItem(rem, 0), "product_id"), ROOM);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rem, 0), "available")->valueint, 1);
	cJSON_Delete(why);
	expect_counts(fx, ROOM, t, t + 3, 0, 0);

	/* The first item fits, the second does not: neither is taken. */
	struct inv_item two[2] = {item(SPA, t, t + 3, 4), item(ROOM, t + 1, t + 3, 2)};
	assert_int_equal(take(fx, two, 2, fx->today, true, &why, &f), RSD_ECONFLICT);
	assert_string_equal(f.field, "items[1]");
	assert_non_null(strstr(f.detail, ROOM));
	cJSON_Delete(why);
	expect_counts(fx, SPA, t, t + 3, 0, 0);
	expect_counts(fx, ROOM, t, t + 3, 0, 0);

	/* Both fit: both are taken. */
	two[1] = item(ROOM, t, t + 2, 2);
	assert_int_equal(take(fx, two, 2, fx->today, true, NULL, NULL), RSD_OK);
	expect_counts(fx, SPA, t, t + 3, 4, 0);
	expect_counts(fx, ROOM, t, t + 2, 2, 0);

	/* why may be NULL. */
	assert_int_equal(take(fx, &a, 1, fx->today, false, NULL, &f), RSD_ECONFLICT);
}

static void test_take_counts_items_on_one_counter_together(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 3, 0, 3);

	/* 2 + 2 on the shared night t+1 is more than 3. */
	struct inv_item overlap[2] = {item(ROOM, t, t + 2, 2), item(ROOM, t + 1, t + 3, 2)};
	cJSON *why = NULL;
	struct rsd_fail f;
	assert_int_equal(take(fx, overlap, 2, fx->today, false, &why, &f), RSD_ECONFLICT);
	assert_string_equal(f.field, "items[1]");
	const cJSON *rem = cJSON_GetObjectItem(why, "remaining");
	assert_int_equal(cJSON_GetArraySize(rem), 1);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rem, 0), "available")->valueint, 1);
	cJSON_Delete(why);
	expect_counts(fx, ROOM, t, t + 3, 0, 0);

	/* Three single units on the same nights: exactly the capacity. */
	struct inv_item three[3] = {item(ROOM, t, t + 3, 1), item(ROOM, t, t + 3, 1),
				    item(ROOM, t, t + 3, 1)};
	assert_int_equal(take(fx, three, 3, fx->today, false, NULL, NULL), RSD_OK);
	expect_counts(fx, ROOM, t, t + 3, 0, 3);

	/* A different slot is a different counter: not counted with the whole day. */
	uint16_t ten;
	assert_int_equal(inventory_parse_slot("10:00", &ten), RSD_OK);
	set_capacity(fx, SPA, t, t + 1, 0, 1);
	set_capacity(fx, SPA, t, t + 1, ten, 1);
	struct inv_item slots[2] = {item(SPA, t, t + 1, 1), item(SPA, t, t + 1, 1)};
	slots[1].slot = ten;
	assert_int_equal(take(fx, slots, 2, fx->today, true, NULL, NULL), RSD_OK);
	assert_int_equal(day_at(fx, SPA, t, 0).sold, 1);
	assert_int_equal(day_at(fx, SPA, t, ten).sold, 1);
	slots[0].slot = ten;
	assert_int_equal(take(fx, slots, 1, fx->today, true, NULL, NULL), RSD_ECONFLICT);
}

/* Takes one item and returns the refusal's reason ("" when taken; then gives it back). */
static const char *try_reason(struct fixture *fx, struct inv_item it, int32_t today, char out[32])
{
	cJSON *why = NULL;
	struct rsd_fail f;
	int err = take(fx, &it, 1, today, false, &why, &f);
	if (err == RSD_OK) {
		assert_int_equal(move(fx, &it, 1, INV_RELEASE_HELD), RSD_OK);
		out[0] = '\0';
		return out;
	}
	assert_int_equal(err, RSD_ECONFLICT);
	snprintf(out, 32, "%s", why_reason(why));
	cJSON_Delete(why);
	return out;
}

static void test_take_restrictions(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t, today = fx->today;
	char r[32];
	set_capacity(fx, ROOM, t - 5, t + 20, 0, 5);
	struct inventory_set s;

	/* stop-sell on a middle night. */
	s = range(ROOM, t + 1, t + 2);
	s.has_stop_sell = s.stop_sell = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 3, 1), today, r), "stop_sell");
	assert_string_equal(try_reason(fx, item(ROOM, t + 2, t + 3, 1), today, r), "");
	/* Departing on the stop-sell day is fine: it is not a night of the stay. */
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), today, r), "");
	s.stop_sell = false;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 3, 1), today, r), "");

	/* closed to arrival: only the arrival day counts. */
	s = range(ROOM, t + 1, t + 2);
	s.has_cta = s.cta = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t + 1, t + 3, 1), today, r),
			    "closed_to_arrival");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 3, 1), today, r), "");
	s.cta = false;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);

	/* closed to departure: only the departure day counts. */
	s = range(ROOM, t + 3, t + 4);
	s.has_ctd = s.ctd = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 3, 1), today, r),
			    "closed_to_departure");
	assert_string_equal(try_reason(fx, item(ROOM, t + 3, t + 5, 1), today, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 4, 1), today, r), "");
	s.ctd = false;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);

	/* min and max stay, read on the arrival day. */
	s = range(ROOM, t, t + 1);
	s.has_min_stay = true;
	s.min_stay = 3;
	s.has_max_stay = true;
	s.max_stay = 4;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 2, 1), today, r), "min_stay");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 3, 1), today, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 4, 1), today, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 5, 1), today, r), "max_stay");
	/* A stay arriving the next day is not bound by t's rules. */
	assert_string_equal(try_reason(fx, item(ROOM, t + 1, t + 2, 1), today, r), "");
	s.min_stay = s.max_stay = 0; /* null clears */
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 10, 1), today, r), "");

	/* min and max advance, from today to the arrival. */
	s = range(ROOM, t, t + 1);
	s.has_min_advance = true;
	s.min_advance_days = 10;
	s.has_max_advance = true;
	s.max_advance_days = 20;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t - 9, r), "min_advance");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t - 10, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t - 20, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t - 21, r), "max_advance");
	s.min_advance_days = s.max_advance_days = 0;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);

	/* In the past: arriving today is fine, yesterday is not. */
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t, r), "");
	assert_string_equal(try_reason(fx, item(ROOM, t, t + 1, 1), t + 1, r), "in_the_past");

	/* A restriction refusal changed nothing. */
	expect_counts(fx, ROOM, t - 5, t + 20, 0, 0);
}

static void test_take_overbooking(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	struct inventory_set s = range(ROOM, t, t + 2);
	s.has_capacity = true;
	s.capacity = 2;
	s.has_overbooking = true;
	s.overbooking = 1;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_int_equal(product_at(fx, ROOM).overbooking, 1);

	struct inv_item three = item(ROOM, t, t + 2, 3);
	assert_int_equal(take(fx, &three, 1, fx->today, true, NULL, NULL), RSD_OK);
	expect_counts(fx, ROOM, t, t + 2, 3, 0);
	struct inv_item one = item(ROOM, t, t + 1, 1);
	assert_int_equal(take(fx, &one, 1, fx->today, false, NULL, NULL), RSD_ECONFLICT);
	struct inv_day d = day_at(fx, ROOM, t, 0);
	assert_int_equal(inventory_free(&d, 1), 0);
	assert_int_equal(inventory_free(&d, 0), 0); /* over capacity reads as none, not wrap */
}

/* --- moves --- */

static void test_move(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 3, 0, 5);
	set_capacity(fx, SPA, t, t + 3, 0, 5);
	struct inv_item items[2] = {item(ROOM, t, t + 3, 3), item(SPA, t + 1, t + 2, 2)};
	assert_int_equal(take(fx, items, 2, fx->today, false, NULL, NULL), RSD_OK);
	expect_counts(fx, ROOM, t, t + 3, 0, 3);
	expect_counts(fx, SPA, t + 1, t + 2, 0, 2);

	struct inv_item part[2] = {item(ROOM, t, t + 3, 1), item(SPA, t + 1, t + 2, 1)};
	assert_int_equal(move(fx, part, 2, INV_CONFIRM), RSD_OK);
	expect_counts(fx, ROOM, t, t + 3, 1, 2);
	expect_counts(fx, SPA, t + 1, t + 2, 1, 1);
	assert_int_equal(move(fx, part, 2, INV_RELEASE_HELD), RSD_OK);
	expect_counts(fx, ROOM, t, t + 3, 1, 1);
	expect_counts(fx, SPA, t + 1, t + 2, 1, 0);
	assert_int_equal(move(fx, part, 2, INV_RELEASE_SOLD), RSD_OK);
	expect_counts(fx, ROOM, t, t + 3, 0, 1);
	expect_counts(fx, SPA, t + 1, t + 2, 0, 0);

	/* Below zero on the second item's night: an internal error, and nothing moved (the
	 * first item's nights were written before the refusal; the writer undoes them). */
	struct fn_cmd fc = {.fn = move_fn, .items = part, .n = 2, .move = INV_RELEASE_HELD};
	assert_int_equal(run_fn(fx, &fc), RSD_EINTERNAL);
	assert_non_null(strstr(fc.cmd.fail.detail, SPA));
	expect_counts(fx, ROOM, t, t + 3, 0, 1);
	assert_int_equal(move(fx, part, 1, INV_RELEASE_SOLD), RSD_EINTERNAL);
	assert_int_equal(move(fx, part, 1, INV_CONFIRM), RSD_OK);
	assert_int_equal(move(fx, part, 1, INV_CONFIRM), RSD_EINTERNAL);
	expect_counts(fx, ROOM, t, t + 3, 1, 0);
	/* A counter never set is zero: any move below it is refused. */
	struct inv_item never = item(ROOM, t + 10, t + 11, 1);
	assert_int_equal(move(fx, &never, 1, INV_RELEASE_SOLD), RSD_EINTERNAL);
}

/* --- the staff command --- */

static void test_set_unknown_product(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	struct inventory_set s = range("pr_nothing", t, t + 1);
	s.has_capacity = true;
	s.capacity = 1;
	struct rsd_fail f;
	assert_int_equal(run_set(fx, &s, 0, NULL, &f), RSD_ENOTFOUND);
	assert_non_null(strstr(f.detail, "pr_nothing"));

	/* A deleted product, and an id of another kind, are not products. */
	put_entity(fx, "pr_gone", ENTITY_PRODUCT, PRODUCT_ROOM_TYPE, true);
	snprintf(s.product_id, sizeof(s.product_id), "pr_gone");
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_ENOTFOUND);
	put_entity(fx, "rs_resort", ENTITY_RESORT, 0, false);
	snprintf(s.product_id, sizeof(s.product_id), "rs_resort");
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_ENOTFOUND);

	/* A package has no counters of its own. */
	snprintf(s.product_id, sizeof(s.product_id), PACKAGE);
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_ECONFLICT);
	expect_counts(fx, PACKAGE, t, t + 1, 0, 0);
	assert_int_equal(day_at(fx, PACKAGE, t, 0).capacity, 0);
}

static void test_set_if_match(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	/* Versions start at 1, so that the ETag of an untouched product is usable. */
	assert_int_equal(product_at(fx, ROOM).version, 1);
	struct inventory_set s = range(ROOM, t, t + 2);
	s.has_capacity = true;
	s.capacity = 4;
	uint64_t v;
	assert_int_equal(run_set(fx, &s, 1, &v, NULL), RSD_OK);
	assert_int_equal(v, 2);

	s.capacity = 6;
	struct rsd_fail f;
	assert_int_equal(run_set(fx, &s, 7, NULL, &f), RSD_EPRECONDITION);
	assert_non_null(strstr(f.detail, "2"));
	assert_int_equal(run_set(fx, &s, UINT64_MAX, NULL, NULL), RSD_EPRECONDITION);
	assert_int_equal(day_at(fx, ROOM, t, 0).capacity, 4);
	assert_int_equal(run_set(fx, &s, 2, &v, NULL), RSD_OK);
	assert_int_equal(v, 3);
	assert_int_equal(day_at(fx, ROOM, t + 1, 0).capacity, 6);
	assert_int_equal(run_set(fx, &s, 2, NULL, NULL), RSD_EPRECONDITION);

	/* Guests' takes and moves leave the version where it is. */
	struct inv_item a = item(ROOM, t, t + 1, 1);
	assert_int_equal(take(fx, &a, 1, fx->today, false, NULL, NULL), RSD_OK);
	assert_int_equal(move(fx, &a, 1, INV_CONFIRM), RSD_OK);
	assert_int_equal(run_set(fx, &s, 3, &v, NULL), RSD_OK);
	assert_int_equal(v, 4);
}

static void test_set_keeps_what_it_does_not_name(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	struct inventory_set s = range(ROOM, t, t + 2);
	s.has_capacity = true;
	s.capacity = 4;
	s.has_min_stay = true;
	s.min_stay = 2;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	struct inv_item a = item(ROOM, t, t + 2, 1);
	assert_int_equal(take(fx, &a, 1, fx->today, true, NULL, NULL), RSD_OK);

	s = range(ROOM, t, t + 2);
	s.has_stop_sell = s.stop_sell = true;
	s.has_ctd = s.ctd = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	struct inv_day d = day_at(fx, ROOM, t, 0);
	assert_int_equal(d.capacity, 4);
	assert_int_equal(d.sold, 1);
	assert_int_equal(d.min_stay, 2);
	assert_int_equal(d.flags, INV_STOP_SELL | INV_CLOSED_TO_DEPARTURE);
	s = range(ROOM, t, t + 2);
	s.has_stop_sell = true; /* false */
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_int_equal(day_at(fx, ROOM, t, 0).flags, INV_CLOSED_TO_DEPARTURE);
}

static void test_set_capacity_below_taken(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 4, 0, 5);
	struct inv_item a = item(ROOM, t + 2, t + 3, 2), b = item(ROOM, t + 2, t + 3, 1);
	assert_int_equal(take(fx, &a, 1, fx->today, true, NULL, NULL), RSD_OK);
	assert_int_equal(take(fx, &b, 1, fx->today, false, NULL, NULL), RSD_OK);
	uint64_t v = product_at(fx, ROOM).version;

	/* 3 taken on t+2: capacity 2 over [t, t+4) is refused, and the days before t+2 that
	 * the command had already written are back as they were. */
	struct inventory_set s = range(ROOM, t, t + 4);
	s.has_capacity = true;
	s.capacity = 2;
	struct rsd_fail f;
	assert_int_equal(run_set(fx, &s, 0, NULL, &f), RSD_ECONFLICT);
	assert_string_equal(f.field, "capacity");
	char date[11];
	price_format_date(t + 2, date);
	assert_non_null(strstr(f.detail, date));
	for (int32_t d = t; d < t + 4; d++)
		assert_int_equal(day_at(fx, ROOM, d, 0).capacity, 5);
	assert_int_equal(product_at(fx, ROOM).version, v);

	/* Exactly what is taken is allowed; with overbooking, less. */
	s.capacity = 3;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	s.capacity = 1;
	s.has_overbooking = true;
	s.overbooking = 2;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_int_equal(day_at(fx, ROOM, t + 2, 0).capacity, 1);
	s.capacity = 0;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_ECONFLICT);
	assert_int_equal(day_at(fx, ROOM, t + 2, 0).capacity, 1);
	assert_int_equal(product_at(fx, ROOM).overbooking, 2);
}

static void test_set_overbooking_lowered(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	struct inventory_set s = range(ROOM, t, t + 3);
	s.has_capacity = true;
	s.capacity = 2;
	s.has_overbooking = true;
	s.overbooking = 1;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	struct inv_item a = item(ROOM, t + 1, t + 2, 3);
	assert_int_equal(take(fx, &a, 1, fx->today, false, NULL, NULL), RSD_OK);

	/* Removing the allowance over a range that does not include the busy day still has
	 * to cover it: overbooking is the product's, for every day. */
	struct inventory_set o = range(ROOM, t + 10, t + 11);
	o.has_overbooking = true;
	o.overbooking = 0;
	struct rsd_fail f;
	assert_int_equal(run_set(fx, &o, 0, NULL, &f), RSD_ECONFLICT);
	assert_string_equal(f.field, "capacity");
	assert_int_equal(product_at(fx, ROOM).overbooking, 1);

	/* With the capacity raised on that day in the same command, it fits. */
	o = range(ROOM, t + 1, t + 2);
	o.has_overbooking = true;
	o.overbooking = 0;
	o.has_capacity = true;
	o.capacity = 3;
	assert_int_equal(run_set(fx, &o, 0, NULL, NULL), RSD_OK);
	assert_int_equal(product_at(fx, ROOM).overbooking, 0);
	struct inv_day d = day_at(fx, ROOM, t + 1, 0);
	assert_int_equal(d.capacity, 3);
	assert_int_equal(d.held, 3);
}

/*
 * Regression: check_overbooking() once applied a PUT's new capacity to every counter in
 * the date range whatever its slot, so a whole-day PUT with a lower overbooking let an
 * hourly slot stay over-committed.
 */
static void test_set_overbooking_other_slot(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	uint16_t ten;
	assert_int_equal(inventory_parse_slot("10:00", &ten), RSD_OK);
	struct inventory_set s = range(SPA, t, t + 1);
	s.slot = ten;
	s.has_capacity = true;
	s.capacity = 1;
	s.has_overbooking = true;
	s.overbooking = 1;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	struct inv_item a = item(SPA, t, t + 1, 2);
	a.slot = ten;
	assert_int_equal(take(fx, &a, 1, fx->today, true, NULL, NULL), RSD_OK);

	/* Whole-day capacity 10 and overbooking 0: the 10:00 slot has 2 sold on capacity 1. */
	struct inventory_set w = range(SPA, t, t + 1);
	w.has_capacity = true;
	w.capacity = 10;
	w.has_overbooking = true;
	w.overbooking = 0;
	int err = run_set(fx, &w, 0, NULL, NULL);
	struct inv_day d = day_at(fx, SPA, t, ten);
	struct inv_product p = product_at(fx, SPA);
	assert_int_equal(err, RSD_ECONFLICT);
	assert_true((uint64_t)d.sold + d.held <= (uint64_t)d.capacity + p.overbooking);
}

/* The other side of the one above: a whole-day PUT is refused
 * because of an hourly slot's counter that it does not change. */
static void test_set_overbooking_other_slot_refused(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	uint16_t ten;
	assert_int_equal(inventory_parse_slot("10:00", &ten), RSD_OK);
	set_capacity(fx, SPA, t, t + 1, ten, 5);
	struct inv_item a = item(SPA, t, t + 1, 5);
	a.slot = ten;
	assert_int_equal(take(fx, &a, 1, fx->today, true, NULL, NULL), RSD_OK);

	struct inventory_set w = range(SPA, t, t + 1);
	w.has_capacity = true;
	w.capacity = 2;
	w.has_overbooking = true; /* 0, as it was */
	int err = run_set(fx, &w, 0, NULL, NULL);
	assert_int_equal(err, RSD_OK);
	assert_int_equal(day_at(fx, SPA, t, 0).capacity, 2);
	assert_int_equal(day_at(fx, SPA, t, ten).capacity, 5);
}

/* --- slots --- */

static void test_slots(void **state)
{
	(void)state;
	uint16_t slot = 99;
	assert_int_equal(inventory_parse_slot(NULL, &slot), RSD_OK);
	assert_int_equal(slot, 0);
	assert_int_equal(inventory_parse_slot("00:00", &slot), RSD_OK);
	assert_int_equal(slot, 1);
	assert_int_equal(inventory_parse_slot("10:30", &slot), RSD_OK);
	assert_int_equal(slot, 631);
	assert_int_equal(inventory_parse_slot("23:59", &slot), RSD_OK);
	assert_int_equal(slot, 1440);
	static const char *const bad[] = {"",	   "24:00", "12:60",  "1:00",	"12-00",
					  "ab:cd", "12:0",  "12:000", " 12:00", "12:00 ",
					  "-1:00", "99:99", "1a:00",  "12:5x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		slot = 77;
		if (inventory_parse_slot(bad[i], &slot) != RSD_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(slot, 77);
	}
	char out[6];
	inventory_format_slot(0, out);
	assert_string_equal(out, "");
	inventory_format_slot(1, out);
	assert_string_equal(out, "00:00");
	inventory_format_slot(631, out);
	assert_string_equal(out, "10:30");
	for (uint16_t s = 1; s <= 1440; s++) {
		inventory_format_slot(s, out);
		uint16_t back;
		assert_int_equal(inventory_parse_slot(out, &back), RSD_OK);
		assert_int_equal(back, s);
	}
}

/* --- reads --- */

static void test_doc(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	struct inventory_set s = range(ROOM, t, t + 2);
	s.has_capacity = true;
	s.capacity = 3;
	s.has_overbooking = true;
	s.overbooking = 1;
	s.has_min_stay = true;
	s.min_stay = 2;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	s = range(ROOM, t + 1, t + 2);
	s.has_stop_sell = s.stop_sell = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	struct inv_item a = item(ROOM, t, t + 2, 2), b = item(ROOM, t, t + 1, 1);
	/* One night is shorter than the minimum stay. */
	assert_int_equal(take(fx, &b, 1, fx->today, true, NULL, NULL), RSD_ECONFLICT);
	s = range(ROOM, t + 1, t + 2);
	s.has_stop_sell = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	assert_int_equal(take(fx, &a, 1, fx->today, false, NULL, NULL), RSD_OK);
	assert_int_equal(move(fx, &b, 1, INV_CONFIRM), RSD_OK);

	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	cJSON *doc = NULL;
	uint64_t version = 0;
	assert_int_equal(inventory_doc(txn, &fx->store, "pr_nothing", t, t + 1, 0, &doc, &version),
			 RSD_ENOTFOUND);
	assert_int_equal(inventory_doc(txn, &fx->store, ROOM, t, t + 3, 0, &doc, &version), RSD_OK);
	assert_int_equal(version, 4);
	assert_string_equal(json_get_string(doc, "product_id"), ROOM);
	assert_null(cJSON_GetObjectItem(doc, "slot"));
	assert_int_equal(cJSON_GetObjectItem(doc, "version")->valueint, 4);
	assert_int_equal(cJSON_GetObjectItem(doc, "overbooking")->valueint, 1);
	const cJSON *days = cJSON_GetObjectItem(doc, "days");
	assert_int_equal(cJSON_GetArraySize(days), 3);
	const cJSON *d0 = cJSON_GetArrayItem(days, 0), *d2 = cJSON_GetArrayItem(days, 2);
	char date[11];
	price_format_date(t, date);
	assert_string_equal(json_get_string(d0, "date"), date);
	assert_int_equal(cJSON_GetObjectItem(d0, "capacity")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(d0, "sold")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(d0, "held")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(d0, "available")->valueint, 2);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d0, "stop_sell")));
	assert_int_equal(cJSON_GetObjectItem(d0, "min_stay")->valueint, 2);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d0, "max_stay")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(d0, "min_advance_days")));
	/* A day never set reads as zeros; available counts the overbooking allowance. */
	assert_int_equal(cJSON_GetObjectItem(d2, "capacity")->valueint, 0);
	assert_int_equal(cJSON_GetObjectItem(d2, "available")->valueint, 1);
	cJSON_Delete(doc);

	/* A slot's document names the slot. */
	assert_int_equal(inventory_doc(txn, &fx->store, SPA, t, t + 1, 631, &doc, &version),
			 RSD_OK);
	assert_string_equal(json_get_string(doc, "slot"), "10:30");
	assert_int_equal(version, 1);
	cJSON_Delete(doc);
	mdb_txn_abort(txn);
}

static cJSON *availability(struct fixture *fx, struct inv_item it, int32_t today, int expect_err)
{
	MDB_txn *txn;
	cJSON *out = NULL;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(inventory_availability(txn, &fx->store, &it, today, &out), expect_err);
	mdb_txn_abort(txn);
	return out;
}

static void test_availability(void **state)
{
	struct fixture *fx = *state;
	int32_t t = fx->t;
	set_capacity(fx, ROOM, t, t + 3, 0, 2);
	struct inv_item a = item(ROOM, t + 1, t + 2, 1);
	assert_int_equal(take(fx, &a, 1, fx->today, true, NULL, NULL), RSD_OK);

	assert_null(availability(fx, item("pr_nothing", t, t + 1, 1), fx->today, RSD_ENOTFOUND));

	cJSON *doc = availability(fx, item(ROOM, t, t + 3, 1), fx->today, RSD_OK);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "available")));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "reason")));
	assert_string_equal(json_get_string(doc, "product_id"), ROOM);
	assert_int_equal(cJSON_GetObjectItem(doc, "qty")->valueint, 1);
	const cJSON *nights = cJSON_GetObjectItem(doc, "nights");
	assert_int_equal(cJSON_GetArraySize(nights), 3);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(nights, 0), "available")->valueint,
			 2);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(nights, 1), "available")->valueint,
			 1);
	cJSON_Delete(doc);

	doc = availability(fx, item(ROOM, t, t + 3, 2), fx->today, RSD_OK);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(doc, "available")));
	assert_string_equal(json_get_string(doc, "reason"), "sold_out");
	cJSON_Delete(doc);

	doc = availability(fx, item(ROOM, t, t + 1, 1), t + 1, RSD_OK);
	assert_string_equal(json_get_string(doc, "reason"), "in_the_past");
	cJSON_Delete(doc);

	struct inventory_set s = range(ROOM, t + 2, t + 3);
	s.has_stop_sell = s.stop_sell = true;
	assert_int_equal(run_set(fx, &s, 0, NULL, NULL), RSD_OK);
	doc = availability(fx, item(ROOM, t, t + 3, 1), fx->today, RSD_OK);
	assert_string_equal(json_get_string(doc, "reason"), "stop_sell");
	nights = cJSON_GetObjectItem(doc, "nights");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(nights, 2), "available")->valueint,
			 0);
	cJSON_Delete(doc);

	/* Availability answers what a take would: for a grid of stays and quantities. */
	for (int32_t from = t - 1; from < t + 3; from++)
		for (int32_t to = from + 1; to <= t + 4; to++)
			for (uint32_t qty = 1; qty <= 3; qty++) {
				struct inv_item it = item(ROOM, from, to, qty);
				doc = availability(fx, it, fx->today, RSD_OK);
				bool says = cJSON_IsTrue(cJSON_GetObjectItem(doc, "available"));
				cJSON_Delete(doc);
				int err = take(fx, &it, 1, fx->today, false, NULL, NULL);
				if (err == RSD_OK)
					assert_int_equal(move(fx, &it, 1, INV_RELEASE_HELD),
							 RSD_OK);
				if (says != (err == RSD_OK))
					fail_msg("[%+d, %+d) x%u: availability %d, take %d",
						 (int)(from - t), (int)(to - t), qty, says, err);
			}
	expect_counts(fx, ROOM, t, t + 1, 0, 0);
	expect_counts(fx, ROOM, t + 1, t + 2, 1, 0);
}

static void test_decode_set(void **state)
{
	(void)state;
	struct inventory_set s;
	struct rsd_fail f;
	const char *ok = "{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"slot\":\"09:00\","
			 "\"capacity\":4,\"stop_sell\":false,\"min_stay\":null}";
	assert_int_equal(inventory_decode_set(ROOM, ok, strlen(ok), &s, &f), RSD_OK);
	assert_string_equal(s.product_id, ROOM);
	assert_int_equal(s.to_day - s.from_day, 2);
	assert_int_equal(s.slot, 541);
	assert_true(s.has_capacity && s.capacity == 4);
	assert_true(s.has_stop_sell && !s.stop_sell);
	assert_true(s.has_min_stay && s.min_stay == 0);
	assert_false(s.has_max_stay || s.has_overbooking || s.has_cta);

	static const char *const bad[] = {
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\"}",
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"slot\":\"09:00\"}",
		"{\"from\":\"2030-01-03\",\"to\":\"2030-01-03\",\"capacity\":1}",
		"{\"from\":\"1999-12-31\",\"to\":\"2000-01-03\",\"capacity\":1}",
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"capacity\":-1}",
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"slot\":\"25:00\",\"capacity\":1}",
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"min_stay\":0}",
		"{\"from\":\"2030-01-01\",\"to\":\"2030-01-03\",\"capacity\":1,\"x\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (inventory_decode_set(ROOM, bad[i], strlen(bad[i]), &s, &f) != RSD_EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

/* An argument runs only the tests whose names match it ("test_saga_*"). */
int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_take_held_and_sold),
		T(test_take_never_set_counter_is_sold_out),
		T(test_take_all_or_nothing),
		T(test_take_counts_items_on_one_counter_together),
		T(test_take_restrictions),
		T(test_take_overbooking),
		T(test_move),
		T(test_set_unknown_product),
		T(test_set_if_match),
		T(test_set_keeps_what_it_does_not_name),
		T(test_set_capacity_below_taken),
		T(test_set_overbooking_lowered),
		T(test_set_overbooking_other_slot),
		T(test_set_overbooking_other_slot_refused),
		cmocka_unit_test(test_slots),
		T(test_doc),
		T(test_availability),
		cmocka_unit_test(test_decode_set),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
