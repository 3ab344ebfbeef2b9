/*
 * Unit tests for hold.c, booking.c and idempotency.c against a real LMDB in a temporary
 * directory, every write through the writer: holds (take, release, expiry by the sweeper),
 * bookings (desk and http), Idempotency-Key replays, the stay's actions and the payment
 * saga's steps.
 *
 * After every transition assert_ledger() recomputes the counters from the documents (what
 * held holds hold, what each booking holds or has sold, per its state) and compares them
 * with the inventory, day by day: "the counters match what the bookings hold".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "booking.h"
#include "catalog.h"
#include "hold.h"
#include "idempotency.h"
#include "inventory.h"
#include "json.h"
#include "price.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

#define ROOM	  "pr_room"
#define SPA	  "pr_spa"
#define PRINCIPAL "alice"
/* The guest who owns the holds and bookings these tests make. */
static const struct principal ALICE = {.sub = PRINCIPAL, .role = ROLE_GUEST};
/* The front desk (staff of every resort): check-in, check-out and no-show are theirs only. */
static const struct principal DESK = {.sub = "staff:desk", .role = ROLE_STAFF};
#define CAPACITY 3
#define DAYS	 40 /* counters are set and checked over [t - 10, t + DAYS) */
#define TTL_MS	 600000

struct fixture {
	char dir[64];
	struct store store;
	struct writer *writer;
	int32_t today;
	int32_t t; /* an arrival 20 days ahead */
};

/* --- plumbing --- */

struct entity_cmd {
	struct command cmd;
	const char *id;
	struct entity_rec rec;
};

static int entity_apply(struct writer_txn *wt, struct command *cmd)
{
	struct entity_cmd *ec = (struct entity_cmd *)cmd;
	return store_entity_put(wt->txn, wt->store, ec->id, &ec->rec);
}

static void put_product(struct fixture *fx, const char *id, uint8_t type)
{
	struct entity_cmd ec = {.cmd.apply = entity_apply, .id = id};
	ec.rec.kind = ENTITY_PRODUCT;
	ec.rec.sub = type;
	ec.rec.version = 1;
	assert_int_equal(writer_run(fx->writer, &ec.cmd), RSD_OK);
}

static void set_capacity(struct fixture *fx, const char *product, int32_t from, int32_t to,
			 uint32_t capacity)
{
	struct inventory_set s;
	memset(&s, 0, sizeof(s));
	snprintf(s.product_id, sizeof(s.product_id), "%s", product);
	s.from_day = from;
	s.to_day = to;
	s.has_capacity = true;
	s.capacity = capacity;
	struct inventory_cmd ic;
	inventory_cmd_init(&ic, &s, 0);
	assert_int_equal(writer_run(fx->writer, &ic.cmd), RSD_OK);
}

static MDB_txn *rd(struct fixture *fx)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	return txn;
}

static struct inv_day counter(struct fixture *fx, const char *product, int32_t day)
{
	MDB_txn *txn = rd(fx);
	struct inv_day d;
	assert_int_equal(inventory_day_get(txn, &fx->store, product, day, 0, &d), RSD_OK);
	mdb_txn_abort(txn);
	return d;
}

/* --- the ledger: counters recomputed from holds and bookings --- */

static const char *const products[] = {ROOM, SPA};
#define NPRODUCTS 2

struct ledger {
	int32_t base;
	uint32_t sold[NPRODUCTS][DAYS + 10], held[NPRODUCTS][DAYS + 10];
};

static void ledger_add(struct ledger *l, const struct inv_item *items, int n, bool sold)
{
	for (int i = 0; i < n; i++) {
		int p = strcmp(items[i].product_id, ROOM) == 0 ? 0 : 1;
		assert_int_equal(items[i].slot, 0);
		for (int32_t d = items[i].from_day; d < items[i].to_day; d++) {
			assert_true(d >= l->base && d < l->base + DAYS + 10);
			(sold ? l->sold : l->held)[p][d - l->base] += items[i].qty;
		}
	}
}

/* Where a booking's units are, by state (booking.h): held, sold or nowhere. */
static int booking_units(const char *state)
{
	if (strcmp(state, "payment_pending") == 0)
		return 1;
	if (strcmp(state, "confirmed") == 0 || strcmp(state, "checked_in") == 0 ||
	    strcmp(state, "no_show") == 0 || strcmp(state, "checked_out") == 0)
		return 2; /* checked_out: the nights stayed stay sold; the rest were cut off */
	assert_true(strcmp(state, "cancelled") == 0 || strcmp(state, "failed") == 0);
	return 0;
}

static void assert_ledger_at(struct fixture *fx, int line)
{
	struct ledger *l = calloc(1, sizeof(*l));
	l->base = fx->t - 10;
	MDB_txn *txn = rd(fx);
	MDB_cursor *c;
	MDB_val k, v;
	struct inv_item items[HOLD_ITEMS_MAX];

	assert_int_equal(mdb_cursor_open(txn, fx->store.holds, &c), 0);
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *p = v.mv_data;
		if (p[8] != HOLD_HELD)
			continue;
		cJSON *doc = cJSON_ParseWithLength((const char *)p + 9, v.mv_size - 9);
		assert_non_null(doc);
		assert_string_equal(json_get_string(doc, "state"), "held");
		int n = hold_items(doc, items, HOLD_ITEMS_MAX);
		assert_true(n > 0);
		ledger_add(l, items, n, false);
		cJSON_Delete(doc);
	}
	mdb_cursor_close(c);

	assert_int_equal(mdb_cursor_open(txn, fx->store.bookings, &c), 0);
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		cJSON *doc = cJSON_ParseWithLength(v.mv_data, v.mv_size);
		assert_non_null(doc);
		int where = booking_units(json_get_string(doc, "state"));
		int n = hold_items(doc, items, HOLD_ITEMS_MAX);
		assert_true(n > 0);
		if (where)
			ledger_add(l, items, n, where == 2);
		cJSON_Delete(doc);
	}
	mdb_cursor_close(c);

	for (int p = 0; p < NPRODUCTS; p++)
		for (int i = 0; i < DAYS + 10; i++) {
			struct inv_day d;
			assert_int_equal(
				inventory_day_get(txn, &fx->store, products[p], l->base + i, 0, &d),
				RSD_OK);
			if (d.sold != l->sold[p][i] || d.held != l->held[p][i])
				fail_msg("line %d: %s day %+d: counters sold %u held %u, documents "
					 "sold %u held %u",
					 line, products[p], l->base + i - fx->t, d.sold, d.held,
					 l->sold[p][i], l->held[p][i]);
			if (d.sold + d.held > d.capacity)
				fail_msg("line %d: %s day %+d over capacity", line, products[p],
					 l->base + i - fx->t);
		}
	mdb_txn_abort(txn);
	free(l);
}
#define assert_ledger(fx) assert_ledger_at(fx, __LINE__)

/* --- holds --- */

struct spec {
	const char *product;
	int32_t from, to; /* relative to fx->t */
	uint32_t qty;
	int64_t amount;
	int free_days, fee_percent;
};

static struct hold_request request(struct fixture *fx, const struct spec *s, int n)
{
	struct hold_request r;
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < n; i++) {
		struct hold_item *it = &r.items[i];
		snprintf(it->inv.product_id, sizeof(it->inv.product_id), "%s", s[i].product);
		it->inv.from_day = fx->t + s[i].from;
		it->inv.to_day = fx->t + s[i].to;
		it->inv.qty = s[i].qty;
		it->amount = s[i].amount;
		it->free_cancel_days = s[i].free_days;
		it->cancel_fee_percent = s[i].fee_percent;
		r.total += s[i].amount;
	}
	r.n = n;
	memcpy(r.currency, "EUR", 4);
	r.guest = cJSON_Parse("{\"name\":\"Ann Guest\",\"email\":\"ann@example.com\"}");
	return r;
}

static const struct idem_key no_key;

static struct idem_key key(const char *k, const char *principal, const char *path, const char *body)
{
	struct idem_key ik;
	struct rsd_fail f;
	assert_int_equal(
		idempotency_key_init(&ik, k, principal, "POST", path, body, strlen(body), &f),
		RSD_OK);
	return ik;
}

/* Runs a hold command; returns the command's result and fills the outcome's id (or ""). */
static int hold_run(struct fixture *fx, const struct spec *s, int n, uint64_t ttl_ms,
		    const struct idem_key *ik, struct outcome *out,
		    char id[ENTITY_ID_BYTES_MAX + 1])
{
	struct hold_request req = request(fx, s, n);
	struct hold_cmd hc;
	hold_cmd_init(&hc, &req, ik, PRINCIPAL, ttl_ms);
	assert_null(req.guest); /* moved into the command */
	hc.today = fx->today;
	int err = writer_run(fx->writer, &hc.cmd);
	id[0] = '\0';
	if (!err && hc.out.err == RSD_OK) {
		cJSON *doc = cJSON_ParseWithLength(hc.out.body, hc.out.len);
		assert_non_null(doc);
		snprintf(id, ENTITY_ID_BYTES_MAX + 1, "%s", json_get_string(doc, "id"));
		cJSON_Delete(doc);
	}
	if (out) {
		*out = hc.out;
		if (err)
			out->fail = hc.cmd.fail;
		hc.out.body = NULL;
	}
	hold_cmd_release(&hc);
	return err;
}

/* Takes a hold that must succeed; returns its id in id. */
static void hold_ok(struct fixture *fx, const struct spec *s, int n, uint64_t ttl_ms, char *id)
{
	struct outcome o = {0};
	assert_int_equal(hold_run(fx, s, n, ttl_ms, &no_key, &o, id), RSD_OK);
	if (o.err)
		fail_msg("hold refused: %s", o.fail.detail);
	assert_int_equal(o.status, 201);
	outcome_release(&o);
	assert_true(strncmp(id, "ho_", 3) == 0);
}

static enum hold_state hold_state_of(struct fixture *fx, const char *id, cJSON **doc)
{
	MDB_txn *txn = rd(fx);
	enum hold_state st;
	uint64_t expiry;
	assert_int_equal(hold_load(txn, &fx->store, id, doc, &st, &expiry), RSD_OK);
	mdb_txn_abort(txn);
	return st;
}

static int release_run(struct fixture *fx, const char *id, struct outcome *out)
{
	struct hold_release_cmd rc;
	hold_release_cmd_init(&rc, id, &ALICE);
	int err = writer_run(fx->writer, &rc.cmd);
	if (out) {
		*out = rc.out;
		out->fail = rc.cmd.fail;
	} else
		outcome_release(&rc.out);
	return err;
}

static struct sweep_cmd sweep_run(struct fixture *fx, uint64_t now_ms)
{
	struct sweep_cmd sc;
	sweep_cmd_init(&sc, now_ms);
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	return sc;
}

/* --- bookings --- */

/* Set by setup_prepared: book_run prepares each booking from a read snapshot first, as
 * POST /v1/bookings does, so the booking tests run through both of booking_apply's paths. */
static bool prepare_bookings;

static void booking_cmd_for(struct fixture *fx, struct booking_cmd *bc, const char *hold_id,
			    enum payment_method method, const struct idem_key *ik, bool prepare)
{
	memset(bc, 0, sizeof(*bc));
	snprintf(bc->hold_id, sizeof(bc->hold_id), "%s", hold_id);
	bc->method = method;
	if (method == PAYMENT_HTTP)
		snprintf(bc->token, sizeof(bc->token), "tok_visa");
	booking_cmd_init(bc, ik, &ALICE);
	if (prepare) {
		MDB_txn *txn = rd(fx);
		booking_cmd_prepare(bc, &fx->store, txn);
		mdb_txn_abort(txn);
	}
}

static int book_run(struct fixture *fx, const char *hold_id, enum payment_method method,
		    const struct idem_key *ik, struct outcome *out, char *booking_id)
{
	struct booking_cmd bc;
	booking_cmd_for(fx, &bc, hold_id, method, ik, prepare_bookings);
	char prepared[ENTITY_ID_BYTES_MAX + 1] = "";
	if (booking_cmd_prepared_id(&bc))
		snprintf(prepared, sizeof(prepared), "%s", booking_cmd_prepared_id(&bc));
	int err = writer_run(fx->writer, &bc.cmd);
	/* A booking made from a prepared hold is the prepared one (the fallback makes another
	 * id), and no answer but a booking carries an id. */
	if (!err && bc.out.err == RSD_OK && prepared[0] && !ik->present)
		assert_string_equal(bc.booking_id, prepared);
	if (!err && bc.out.err != RSD_OK)
		assert_string_equal(bc.booking_id, "");
	if (booking_id)
		snprintf(booking_id, ENTITY_ID_BYTES_MAX + 1, "%s", bc.booking_id);
	if (out) {
		*out = bc.out;
		if (err)
			out->fail = bc.cmd.fail;
		bc.out.body = NULL;
	}
	if (!err)
		assert_int_equal(bc.saga, method == PAYMENT_HTTP && bc.out.err == RSD_OK &&
						  bc.booking_id[0] != '\0');
	booking_cmd_release(&bc);
	return err;
}

/* Books hold_id; the booking must be made (201 desk, 202 http). */
static void book_ok(struct fixture *fx, const char *hold_id, enum payment_method method,
		    char *booking_id)
{
	struct outcome o = {0};
	assert_int_equal(book_run(fx, hold_id, method, &no_key, &o, booking_id), RSD_OK);
	if (o.err)
		fail_msg("booking refused: %s", o.fail.detail);
	assert_int_equal(o.status, method == PAYMENT_DESK ? 201 : 202);
	assert_true(strncmp(booking_id, "bk_", 3) == 0);
	char loc[96];
	snprintf(loc, sizeof(loc), "/v1/bookings/%s", booking_id);
	assert_string_equal(o.location, loc);
	outcome_release(&o);
}

static cJSON *booking_doc(struct fixture *fx, const char *id)
{
	MDB_txn *txn = rd(fx);
	cJSON *doc = NULL;
	assert_int_equal(booking_load(txn, &fx->store, id, &doc), RSD_OK);
	mdb_txn_abort(txn);
	return doc;
}

static void expect_booking(struct fixture *fx, const char *id, const char *state,
			   const char *pay_state)
{
	cJSON *doc = booking_doc(fx, id);
	char got[32], got_pay[32];
	snprintf(got, sizeof(got), "%s", json_get_string(doc, "state"));
	snprintf(got_pay, sizeof(got_pay), "%s",
		 json_get_string(cJSON_GetObjectItem(doc, "payment"), "state"));
	cJSON_Delete(doc);
	assert_string_equal(got, state);
	assert_string_equal(got_pay, pay_state);
}

static int version_of(const cJSON *doc)
{
	return cJSON_GetObjectItem(doc, "version")->valueint;
}

struct action {
	int err; /* the command's result */
	struct outcome out;
	bool saga;
};

static struct action act_run(struct fixture *fx, const char *id, enum booking_action a,
			     int32_t today, const struct idem_key *ik,
			     const struct booking_action_cmd *change)
{
	struct booking_action_cmd ac;
	memset(&ac, 0, sizeof(ac));
	if (change) {
		ac.item = change->item;
		ac.change = change->change;
	}
	bool desk = a == BOOKING_CHECK_IN || a == BOOKING_CHECK_OUT || a == BOOKING_NO_SHOW;
	booking_action_cmd_init(&ac, id, a, ik ? ik : &no_key, desk ? &DESK : &ALICE);
	ac.today = today;
	struct action r = {.err = writer_run(fx->writer, &ac.cmd), .saga = ac.saga};
	r.out = ac.out;
	if (r.err)
		r.out.fail = ac.cmd.fail;
	ac.out.body = NULL;
	booking_action_cmd_release(&ac);
	return r;
}

/* Runs an action that must succeed (200) and releases its outcome. */
static bool act_ok(struct fixture *fx, const char *id, enum booking_action a, int32_t today)
{
	struct action r = act_run(fx, id, a, today, NULL, NULL);
	assert_int_equal(r.err, RSD_OK);
	if (r.out.err)
		fail_msg("action %d refused: %s", a, r.out.fail.detail);
	assert_int_equal(r.out.status, 200);
	outcome_release(&r.out);
	return r.saga;
}

/* Runs an action that must be refused with err as the outcome (not the command's). */
static void act_refused(struct fixture *fx, const char *id, enum booking_action a, int32_t today,
			int err)
{
	struct action r = act_run(fx, id, a, today, NULL, NULL);
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, err);
	assert_false(r.saga);
	outcome_release(&r.out);
}

struct step_result {
	int err;
	bool answered;
	struct outcome out;
};

static struct step_result step_run(struct fixture *fx, const char *id, enum booking_step st,
				   const char *auth)
{
	struct booking_step_cmd sc;
	booking_step_cmd_init(&sc, id, st, auth, NULL);
	struct step_result r = {.err = writer_run(fx->writer, &sc.cmd), .answered = sc.answered};
	r.out = sc.out;
	sc.out.body = NULL;
	booking_step_cmd_release(&sc);
	return r;
}

static void step_ok(struct fixture *fx, const char *id, enum booking_step st, bool answered)
{
	struct step_result r = step_run(fx, id, st, "au_1");
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.answered, answered);
	outcome_release(&r.out);
}

static bool has_token(struct fixture *fx, const char *id)
{
	MDB_txn *txn = rd(fx);
	char tok[PAYMENT_TOKEN_BYTES_MAX + 1] = "";
	int err = booking_token(txn, &fx->store, id, tok, sizeof(tok));
	mdb_txn_abort(txn);
	assert_true(err == RSD_OK || err == RSD_ENOTFOUND);
	if (err == RSD_OK)
		assert_string_equal(tok, "tok_visa");
	return err == RSD_OK;
}

/* The "sg:" list: whether id is on it and how long it is. */
struct sagas {
	const char *want;
	int n, found;
};
static void saga_seen(const char *id, void *arg)
{
	struct sagas *s = arg;
	s->n++;
	s->found += strcmp(id, s->want) == 0;
}
static bool saga_listed(struct fixture *fx, const char *id)
{
	struct sagas s = {.want = id};
	MDB_txn *txn = rd(fx);
	assert_int_equal(booking_pending_sagas(txn, &fx->store, saga_seen, &s), RSD_OK);
	mdb_txn_abort(txn);
	assert_true(s.found <= 1);
	return s.found == 1;
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
	fx->t = fx->today + 20;
	put_product(fx, ROOM, PRODUCT_ROOM_TYPE);
	put_product(fx, SPA, PRODUCT_FACILITY);
	set_capacity(fx, ROOM, fx->t - 10, fx->t + DAYS, CAPACITY);
	set_capacity(fx, SPA, fx->t - 10, fx->t + DAYS, CAPACITY);
	*state = fx;
	return 0;
}

static int setup_prepared(void **state)
{
	prepare_bookings = true;
	return setup(state);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	prepare_bookings = false;
	writer_free(fx->writer);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

static const struct spec two_rooms[] = {{ROOM, 0, 3, 2, 60000, 7, 20}};
static const struct spec room_and_spa[] = {{ROOM, 0, 3, 1, 30000, 7, 20},
					   {SPA, 1, 2, 2, 8000, 0, 100}};

/* --- holds --- */

static void test_hold_take_and_release(void **state)
{
	struct fixture *fx = *state;
	char id[ENTITY_ID_BYTES_MAX + 1];
	struct booking_stats st0, st1;
	booking_stats_get(&st0);
	hold_ok(fx, room_and_spa, 2, TTL_MS, id);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 1);
	assert_int_equal(counter(fx, SPA, fx->t + 1).held, 2);
	assert_ledger(fx);

	cJSON *doc = NULL;
	assert_int_equal(hold_state_of(fx, id, &doc), HOLD_HELD);
	assert_string_equal(json_get_string(doc, "state"), "held");
	assert_string_equal(json_get_string(doc, "principal"), PRINCIPAL);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "booking_id")));
	assert_int_equal(version_of(doc), 1);
	const cJSON *total = cJSON_GetObjectItem(doc, "total");
	assert_int_equal(cJSON_GetObjectItem(total, "amount")->valueint, 38000);
	assert_string_equal(json_get_string(total, "currency"), "EUR");
	const cJSON *items = cJSON_GetObjectItem(doc, "items");
	assert_int_equal(cJSON_GetArraySize(items), 2);
	const cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "cancellation");
	assert_int_equal(cJSON_GetObjectItem(c, "free_days")->valueint, 7);
	assert_int_equal(cJSON_GetObjectItem(c, "fee_percent")->valueint, 20);
	assert_string_equal(json_get_string(cJSON_GetObjectItem(doc, "guest"), "email"),
			    "ann@example.com");
	cJSON_Delete(doc);

	/* hold_get returns the stored JSON. */
	MDB_txn *txn = rd(fx);
	char *json = NULL;
	size_t len = 0;
	assert_int_equal(hold_get(txn, &fx->store, id, &json, &len), RSD_OK);
	assert_non_null(strstr(json, id));
	free(json);
	assert_int_equal(hold_get(txn, &fx->store, "ho_nothing", &json, &len), RSD_ENOTFOUND);
	mdb_txn_abort(txn);

	struct outcome o = {0};
	assert_int_equal(release_run(fx, id, &o), RSD_OK);
	assert_int_equal(o.status, 200);
	assert_non_null(strstr(o.body, "\"released\""));
	outcome_release(&o);
	assert_int_equal(hold_state_of(fx, id, NULL), HOLD_RELEASED);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);
	assert_int_equal(counter(fx, SPA, fx->t + 1).held, 0);
	assert_ledger(fx);

	/* Not held any more; no such hold. */
	assert_int_equal(release_run(fx, id, &o), RSD_ECONFLICT);
	assert_non_null(strstr(o.fail.detail, "released"));
	outcome_release(&o);
	assert_int_equal(release_run(fx, "ho_nothing", NULL), RSD_ENOTFOUND);
	assert_ledger(fx);
	booking_stats_get(&st1);
	assert_int_equal(st1.holds_created - st0.holds_created, 1);
	assert_int_equal(st1.holds_released - st0.holds_released, 1);
}

/* A hold built long before the writer took it (a long queue) is built again there, so its
 * time to live counts from when its units were taken. */
static void test_hold_prepared_long_ago_is_built_again(void **state)
{
	struct fixture *fx = *state;
	struct hold_request req = request(fx, room_and_spa, 2);
	struct hold_cmd hc;
	hold_cmd_init(&hc, &req, &no_key, PRINCIPAL, TTL_MS);
	hc.today = fx->today;
	char stale[ENTITY_ID_BYTES_MAX + 1];
	snprintf(stale, sizeof(stale), "%s", hc.id);
	uint64_t stale_expiry = hc.expiry_ms;
	hc.prepared_ms -= 10 * 60 * 1000; /* as if it had waited ten minutes in the queue */
	nanosleep(&(struct timespec){.tv_nsec = 2 * 1000000L}, NULL);
	assert_int_equal(writer_run(fx->writer, &hc.cmd), RSD_OK);
	assert_int_equal(hc.out.status, 201);
	assert_string_not_equal(hc.id, stale);
	assert_true(hc.expiry_ms > stale_expiry);
	assert_int_equal(hold_state_of(fx, hc.id, NULL), HOLD_HELD);
	MDB_txn *txn = rd(fx);
	enum hold_state st;
	uint64_t expiry;
	assert_int_equal(hold_load(txn, &fx->store, stale, NULL, &st, &expiry), RSD_ENOTFOUND);
	mdb_txn_abort(txn);
	hold_cmd_release(&hc);
}

static void test_hold_refused_is_an_outcome(void **state)
{
	struct fixture *fx = *state;
	char id[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, two_rooms, 1, TTL_MS, id);

	/* 2 of 3 held: two more on the same nights are refused, with what is left. */
	struct outcome o = {0};
	assert_int_equal(hold_run(fx, two_rooms, 1, TTL_MS, &no_key, &o, id), RSD_OK);
	assert_int_equal(o.err, RSD_ECONFLICT);
	assert_string_equal(o.fail.field, "items[0]");
	cJSON *why = cJSON_ParseWithLength(o.body, o.len);
	assert_string_equal(json_get_string(why, "reason"), "sold_out");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(why, "remaining")), 3);
	cJSON_Delete(why);
	outcome_release(&o);
	assert_string_equal(id, "");
	assert_ledger(fx);

	/* All items or none: the spa fits, the room does not. */
	static const struct spec mixed[] = {{SPA, 0, 1, 1, 100, 0, 100},
					    {ROOM, 2, 3, 2, 100, 0, 100}};
	assert_int_equal(hold_run(fx, mixed, 2, TTL_MS, &no_key, &o, id), RSD_OK);
	assert_int_equal(o.err, RSD_ECONFLICT);
	assert_string_equal(o.fail.field, "items[1]");
	outcome_release(&o);
	assert_int_equal(counter(fx, SPA, fx->t).held, 0);
	assert_ledger(fx);

	/* A restriction: arrival in the past. */
	struct hold_request req = request(fx, two_rooms, 1);
	req.items[0].inv.qty = 1;
	struct hold_cmd hc;
	hold_cmd_init(&hc, &req, &no_key, PRINCIPAL, TTL_MS);
	hc.today = fx->t + 1;
	assert_int_equal(writer_run(fx->writer, &hc.cmd), RSD_OK);
	assert_int_equal(hc.out.err, RSD_ECONFLICT);
	assert_non_null(strstr(hc.out.body, "in_the_past"));
	hold_cmd_release(&hc);
	assert_ledger(fx);
}

static void test_hold_refused_before_the_writer(void **state)
{
	struct fixture *fx = *state;
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};
	struct idem_key k = key("r-1", PRINCIPAL, "/v1/holds", "{\"unpriced\":1}");
	struct hold_request req = request(fx, one, 1);
	struct hold_cmd hc;
	hold_cmd_init(&hc, &req, &k, PRINCIPAL, TTL_MS);
	hc.refuse_err = RSD_ENOTFOUND;
	rsd_failf(&hc.refuse_fail, RSD_ENOTFOUND, "items[0].product_id", "no price");
	assert_int_equal(writer_run(fx->writer, &hc.cmd), RSD_OK);
	assert_int_equal(hc.out.err, RSD_ENOTFOUND);
	assert_string_equal(hc.out.fail.field, "items[0].product_id");
	hold_cmd_release(&hc);
	assert_ledger(fx);
	/* The retry gets the refusal even though it could now be priced and held. */
	struct outcome o = {0};
	char id[ENTITY_ID_BYTES_MAX + 1];
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k, &o, id), RSD_OK);
	assert_int_equal(o.err, RSD_ENOTFOUND);
	assert_string_equal(o.fail.detail, "no price");
	outcome_release(&o);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);

	/* A key that already has an answer keeps it. */
	struct idem_key k2 = key("r-2", PRINCIPAL, "/v1/holds", "{}");
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k2, &o, id), RSD_OK);
	assert_int_equal(o.status, 201);
	outcome_release(&o);
	req = request(fx, one, 1);
	hold_cmd_init(&hc, &req, &k2, PRINCIPAL, TTL_MS);
	hc.refuse_err = RSD_ENOTFOUND;
	assert_int_equal(writer_run(fx->writer, &hc.cmd), RSD_OK);
	assert_int_equal(hc.out.err, RSD_OK);
	assert_int_equal(hc.out.status, 201);
	assert_non_null(strstr(hc.out.body, id));
	hold_cmd_release(&hc);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 1);
	assert_ledger(fx);
}

static void test_sweep_expires_holds(void **state)
{
	struct fixture *fx = *state;
	char short_id[ENTITY_ID_BYTES_MAX + 1], long_id[ENTITY_ID_BYTES_MAX + 1];
	char booked_id[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};
	hold_ok(fx, one, 1, 1, short_id);
	hold_ok(fx, one, 1, TTL_MS, long_id);
	hold_ok(fx, one, 1, 5000, booked_id);
	book_ok(fx, booked_id, PAYMENT_HTTP, bk);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 3);
	assert_ledger(fx);

	/* Nothing is due now minus a minute. */
	struct sweep_cmd sc = sweep_run(fx, rsd_now_ms() - 60000);
	assert_int_equal(sc.holds_expired, 0);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 3);

	/* A minute on: the 1 ms hold expires; the 10-minute one does not; the booked one has
	 * left the expiry index, so the pending booking keeps its units. */
	sc = sweep_run(fx, rsd_now_ms() + 60000);
	assert_int_equal(sc.holds_expired, 1);
	assert_int_equal(sc.keys_removed, 0);
	assert_false(sc.more);
	assert_int_equal(hold_state_of(fx, short_id, NULL), HOLD_EXPIRED);
	assert_int_equal(hold_state_of(fx, long_id, NULL), HOLD_HELD);
	assert_int_equal(hold_state_of(fx, booked_id, NULL), HOLD_BOOKED);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 2);
	assert_ledger(fx);

	/* Once expired, a hold is not expired again, nor released. */
	sc = sweep_run(fx, rsd_now_ms() + 60000);
	assert_int_equal(sc.holds_expired, 0);
	assert_int_equal(release_run(fx, short_id, NULL), RSD_ECONFLICT);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 2);
	/* A released hold's expiry entry is gone too. */
	assert_int_equal(release_run(fx, long_id, NULL), RSD_OK);
	sc = sweep_run(fx, rsd_now_ms() + 2 * TTL_MS);
	assert_int_equal(sc.holds_expired, 0);
	assert_int_equal(hold_state_of(fx, long_id, NULL), HOLD_RELEASED);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 1);
	assert_ledger(fx);
}

/* --- bookings --- */

static void test_booking_desk(void **state)
{
	struct fixture *fx = *state;
	char hold_id[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, room_and_spa, 2, TTL_MS, hold_id);
	book_ok(fx, hold_id, PAYMENT_DESK, bk);
	assert_int_equal(counter(fx, ROOM, fx->t).sold, 1);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);
	assert_int_equal(counter(fx, SPA, fx->t + 1).sold, 2);
	assert_ledger(fx);

	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "confirmed");
	assert_string_equal(json_get_string(doc, "hold_id"), hold_id);
	const cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	assert_string_equal(json_get_string(pay, "method"), "desk");
	assert_string_equal(json_get_string(pay, "state"), "due");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "total"), "amount")->valueint,
			 38000);
	assert_int_equal(version_of(doc), 1);
	cJSON_Delete(doc);
	assert_false(saga_listed(fx, bk));

	cJSON *hold = NULL;
	assert_int_equal(hold_state_of(fx, hold_id, &hold), HOLD_BOOKED);
	assert_string_equal(json_get_string(hold, "booking_id"), bk);
	assert_string_equal(json_get_string(hold, "state"), "booked");
	cJSON_Delete(hold);

	/* booking_get returns the stored JSON. */
	MDB_txn *txn = rd(fx);
	char *json = NULL;
	size_t len = 0;
	assert_int_equal(booking_get(txn, &fx->store, bk, &json, &len), RSD_OK);
	assert_int_equal(strlen(json), len);
	free(json);
	assert_int_equal(booking_get(txn, &fx->store, "bk_nothing", &json, &len), RSD_ENOTFOUND);
	mdb_txn_abort(txn);

	/* The same hold cannot be booked twice, nor released once booked. */
	struct outcome o = {0};
	assert_int_equal(book_run(fx, hold_id, PAYMENT_DESK, &no_key, &o, NULL), RSD_OK);
	assert_int_equal(o.err, RSD_ECONFLICT);
	assert_string_equal(o.fail.field, "hold_id");
	assert_non_null(strstr(o.fail.detail, "booked"));
	outcome_release(&o);
	assert_int_equal(release_run(fx, hold_id, NULL), RSD_ECONFLICT);
	assert_ledger(fx);
}

/* A booking prepared from a hold that then changed is decided on the hold as the writer
 * reads it: released, or booked by another request meanwhile. */
static void test_prepared_booking_of_a_changed_hold(void **state)
{
	struct fixture *fx = *state;
	char a[ENTITY_ID_BYTES_MAX + 1], b[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, room_and_spa, 2, TTL_MS, a);
	struct booking_cmd gone, first, second;
	booking_cmd_for(fx, &gone, a, PAYMENT_DESK, &no_key, true);
	assert_non_null(gone.prep);
	assert_int_equal(release_run(fx, a, NULL), RSD_OK);
	assert_int_equal(writer_run(fx->writer, &gone.cmd), RSD_OK);
	assert_int_equal(gone.out.err, RSD_ECONFLICT);
	assert_non_null(strstr(gone.out.fail.detail, "released"));

	hold_ok(fx, room_and_spa, 2, TTL_MS, b);
	booking_cmd_for(fx, &first, b, PAYMENT_DESK, &no_key, true);
	booking_cmd_for(fx, &second, b, PAYMENT_DESK, &no_key, true);
	char want[ENTITY_ID_BYTES_MAX + 1];
	snprintf(want, sizeof(want), "%s", booking_cmd_prepared_id(&first));
	assert_int_equal(writer_run(fx->writer, &first.cmd), RSD_OK);
	assert_int_equal(first.out.status, 201);
	assert_string_equal(first.booking_id, want); /* the prepared booking, not a rebuilt one */
	assert_int_equal(writer_run(fx->writer, &second.cmd), RSD_OK);
	assert_int_equal(second.out.err, RSD_ECONFLICT);
	assert_non_null(strstr(second.out.fail.detail, "booked"));
	/* One sale; the refused commands' prepared bookings were never stored. */
	assert_int_equal(counter(fx, ROOM, fx->t).sold, 1);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);
	assert_int_equal(counter(fx, SPA, fx->t + 1).sold, 2);
	MDB_txn *txn = rd(fx);
	cJSON *doc = NULL;
	assert_string_equal(gone.booking_id, "");
	assert_string_equal(second.booking_id, "");
	assert_int_equal(booking_load(txn, &fx->store, booking_cmd_prepared_id(&gone), &doc),
			 RSD_ENOTFOUND);
	assert_int_equal(booking_load(txn, &fx->store, booking_cmd_prepared_id(&second), &doc),
			 RSD_ENOTFOUND);
	assert_int_equal(booking_load(txn, &fx->store, first.booking_id, &doc), RSD_OK);
	mdb_txn_abort(txn);
	assert_string_equal(json_get_string(doc, "hold_id"), b);
	cJSON_Delete(doc);
	booking_cmd_release(&gone);
	booking_cmd_release(&first);
	booking_cmd_release(&second);
}

static void test_booking_refused_holds(void **state)
{
	struct fixture *fx = *state;
	char released[ENTITY_ID_BYTES_MAX + 1], swept[ENTITY_ID_BYTES_MAX + 1];
	char lapsed[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};
	hold_ok(fx, one, 1, TTL_MS, released);
	hold_ok(fx, one, 1, 1, swept);
	hold_ok(fx, one, 1, 1, lapsed);
	assert_int_equal(release_run(fx, released, NULL), RSD_OK);
	usleep(5000);
	struct sweep_cmd sc;
	sweep_cmd_init(&sc, rsd_now_ms() + 1000);
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	assert_int_equal(sc.holds_expired, 2);
	assert_ledger(fx);

	const char *ids[] = {released, swept};
	const char *why[] = {"released", "expired"};
	for (int i = 0; i < 2; i++)
		for (int m = PAYMENT_DESK; m <= PAYMENT_HTTP; m++) {
			struct outcome o = {0};
			assert_int_equal(book_run(fx, ids[i], m, &no_key, &o, bk), RSD_OK);
			assert_int_equal(o.err, RSD_ECONFLICT);
			assert_string_equal(o.fail.field, "hold_id");
			assert_non_null(strstr(o.fail.detail, why[i]));
			outcome_release(&o);
			assert_ledger(fx);
		}

	/* A hold past its expiry that the sweeper has not reached yet is refused as well. */
	hold_ok(fx, one, 1, 1, lapsed);
	usleep(5000);
	struct outcome o = {0};
	assert_int_equal(book_run(fx, lapsed, PAYMENT_DESK, &no_key, &o, bk), RSD_OK);
	assert_int_equal(o.err, RSD_ECONFLICT);
	assert_non_null(strstr(o.fail.detail, "expired"));
	outcome_release(&o);
	assert_int_equal(hold_state_of(fx, lapsed, NULL), HOLD_HELD);
	assert_ledger(fx);

	/* No such hold. */
	assert_int_equal(book_run(fx, "ho_nothing", PAYMENT_DESK, &no_key, &o, bk), RSD_OK);
	assert_int_equal(o.err, RSD_ENOTFOUND);
	outcome_release(&o);

	/* No booking was written by any of these. */
	MDB_txn *txn = rd(fx);
	MDB_stat st;
	assert_int_equal(mdb_stat(txn, fx->store.bookings, &st), 0);
	assert_int_equal(st.ms_entries, 0);
	mdb_txn_abort(txn);
}

/* --- Idempotency-Key --- */

static void test_idempotent_hold(void **state)
{
	struct fixture *fx = *state;
	char id1[ENTITY_ID_BYTES_MAX + 1], id2[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};
	struct idem_key k = key("k-1", PRINCIPAL, "/v1/holds", "{\"body\":1}");
	struct outcome a = {0}, b = {0};
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k, &a, id1), RSD_OK);
	assert_int_equal(a.status, 201);
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k, &b, id2), RSD_OK);
	assert_int_equal(b.status, 201);
	assert_string_equal(id1, id2);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.body, b.body, a.len);
	assert_string_equal(a.location, b.location);
	outcome_release(&a);
	outcome_release(&b);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 1); /* taken once */
	assert_ledger(fx);

	/* The same key for another request. */
	struct idem_key other = key("k-1", PRINCIPAL, "/v1/holds", "{\"body\":2}");
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &other, &a, id2), RSD_EMISMATCH);
	assert_string_equal(a.fail.field, "Idempotency-Key");
	outcome_release(&a);
	/* Keys are per principal: bob's "k-1" is his own. */
	struct idem_key bobs = key("k-1", "bob", "/v1/holds", "{\"body\":2}");
	struct hold_request req = request(fx, one, 1);
	struct hold_cmd hc;
	hold_cmd_init(&hc, &req, &bobs, "bob", TTL_MS);
	assert_int_equal(writer_run(fx->writer, &hc.cmd), RSD_OK);
	assert_int_equal(hc.out.status, 201);
	hold_cmd_release(&hc);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 2);

	/* A refusal is the key's answer too, even once there is room again. */
	static const struct spec many[] = {{ROOM, 0, 2, 2, 100, 0, 100}};
	struct idem_key k2 = key("k-2", PRINCIPAL, "/v1/holds", "{\"body\":3}");
	assert_int_equal(hold_run(fx, many, 1, TTL_MS, &k2, &a, id2), RSD_OK);
	assert_int_equal(a.err, RSD_ECONFLICT);
	assert_int_equal(release_run(fx, id1, NULL), RSD_OK);
	assert_int_equal(hold_run(fx, many, 1, TTL_MS, &k2, &b, id2), RSD_OK);
	assert_int_equal(b.err, RSD_ECONFLICT);
	assert_string_equal(a.fail.detail, b.fail.detail);
	assert_string_equal(a.fail.field, b.fail.field);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.body, b.body, a.len);
	outcome_release(&a);
	outcome_release(&b);
	assert_ledger(fx);
}

static void test_idempotency_records_expire(void **state)
{
	struct fixture *fx = *state;
	char id[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};
	struct idem_key k = key("k-exp", PRINCIPAL, "/v1/holds", "{}");
	struct outcome o = {0};
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k, &o, id), RSD_OK);
	outcome_release(&o);
	uint64_t later = rsd_now_ms() + (uint64_t)IDEMPOTENCY_TTL_S * 1000 + 60000;

	/* Past its time the record reads as new, even before the sweeper removes it. */
	MDB_txn *txn = rd(fx);
	bool replay = true;
	struct rsd_fail f;
	assert_int_equal(idempotency_check(txn, &fx->store, &k, rsd_now_ms(), &replay, &o, &f),
			 RSD_OK);
	assert_true(replay);
	outcome_release(&o);
	assert_int_equal(idempotency_check(txn, &fx->store, &k, later, &replay, &o, &f), RSD_OK);
	assert_false(replay);
	mdb_txn_abort(txn);

	/* The sweeper removes it (and expires the hold, whose time has come as well). */
	struct sweep_cmd sc = sweep_run(fx, later);
	assert_int_equal(sc.keys_removed, 1);
	assert_int_equal(sc.holds_expired, 1);
	txn = rd(fx);
	MDB_stat st;
	assert_int_equal(mdb_stat(txn, fx->store.idempotency, &st), 0);
	assert_int_equal(st.ms_entries, 0);
	assert_int_equal(mdb_stat(txn, fx->store.expiry, &st), 0);
	assert_int_equal(st.ms_entries, 0);
	mdb_txn_abort(txn);
	assert_ledger(fx);

	/* The key is new again. */
	char id2[ENTITY_ID_BYTES_MAX + 1];
	assert_int_equal(hold_run(fx, one, 1, TTL_MS, &k, &o, id2), RSD_OK);
	assert_int_equal(o.status, 201);
	assert_string_not_equal(id, id2);
	outcome_release(&o);
	assert_ledger(fx);
}

static void test_idempotent_booking(void **state)
{
	struct fixture *fx = *state;
	char h1[ENTITY_ID_BYTES_MAX + 1], h2[ENTITY_ID_BYTES_MAX + 1];
	char bk1[ENTITY_ID_BYTES_MAX + 1], bk2[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec one[] = {{ROOM, 0, 2, 1, 100, 0, 100}};

	/* desk: the replay is the first answer, and nothing is booked twice. */
	hold_ok(fx, one, 1, TTL_MS, h1);
	struct idem_key k = key("bk-1", PRINCIPAL, "/v1/bookings", h1);
	struct outcome a = {0}, b = {0};
	assert_int_equal(book_run(fx, h1, PAYMENT_DESK, &k, &a, bk1), RSD_OK);
	assert_int_equal(a.status, 201);
	assert_int_equal(book_run(fx, h1, PAYMENT_DESK, &k, &b, bk2), RSD_OK);
	assert_int_equal(b.status, 201);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.body, b.body, a.len);
	assert_string_equal(a.location, b.location);
	outcome_release(&a);
	outcome_release(&b);
	assert_ledger(fx);
	struct idem_key wrong = key("bk-1", PRINCIPAL, "/v1/bookings", "another body");
	assert_int_equal(book_run(fx, h1, PAYMENT_DESK, &wrong, &a, NULL), RSD_EMISMATCH);
	outcome_release(&a);

	/* http: the key is "running" until the saga decides; then it answers 201. */
	hold_ok(fx, one, 1, TTL_MS, h2);
	struct idem_key k2 = key("bk-2", PRINCIPAL, "/v1/bookings", h2);
	assert_int_equal(book_run(fx, h2, PAYMENT_HTTP, &k2, &a, bk1), RSD_OK);
	assert_int_equal(a.status, 202);
	outcome_release(&a);
	assert_int_equal(book_run(fx, h2, PAYMENT_HTTP, &k2, &a, NULL), RSD_ECONFLICT);
	assert_string_equal(a.fail.field, "Idempotency-Key");
	outcome_release(&a);
	assert_ledger(fx);

	struct step_result r = step_run(fx, bk1, STEP_AUTHORIZED, "au_9");
	assert_int_equal(r.err, RSD_OK);
	assert_true(r.answered);
	assert_int_equal(r.out.status, 201);
	assert_ledger(fx);
	assert_int_equal(book_run(fx, h2, PAYMENT_HTTP, &k2, &b, bk2), RSD_OK);
	assert_int_equal(b.err, RSD_OK);
	assert_int_equal(b.status, 201);
	assert_int_equal(r.out.len, b.len);
	assert_memory_equal(r.out.body, b.body, b.len);
	char loc[96];
	snprintf(loc, sizeof(loc), "/v1/bookings/%s", bk1);
	assert_string_equal(b.location, loc);
	outcome_release(&r.out);
	outcome_release(&b);
	assert_ledger(fx);
}

static void test_idempotent_action(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, two_rooms, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	struct idem_key k = key("c-1", PRINCIPAL, "/v1/bookings/x/cancel", "");
	struct action a = act_run(fx, bk, BOOKING_CANCEL, fx->t - 3, &k, NULL);
	assert_int_equal(a.err, RSD_OK);
	assert_int_equal(a.out.status, 200);
	struct action b = act_run(fx, bk, BOOKING_CANCEL, fx->t - 3, &k, NULL);
	assert_int_equal(b.err, RSD_OK);
	assert_int_equal(b.out.err, RSD_OK); /* the replay, not "cannot cancel" */
	assert_int_equal(b.out.status, 200);
	assert_int_equal(a.out.len, b.out.len);
	assert_memory_equal(a.out.body, b.out.body, a.out.len);
	outcome_release(&a.out);
	outcome_release(&b.out);
	/* Without the key, a second cancel is refused. */
	act_refused(fx, bk, BOOKING_CANCEL, fx->t - 3, RSD_ECONFLICT);
	/* No such booking: a refusal recorded under its key. */
	struct idem_key k2 = key("c-2", PRINCIPAL, "/v1/bookings/bk_none/cancel", "");
	a = act_run(fx, "bk_none", BOOKING_CANCEL, fx->t, &k2, NULL);
	assert_int_equal(a.err, RSD_OK);
	assert_int_equal(a.out.err, RSD_ENOTFOUND);
	outcome_release(&a.out);
	b = act_run(fx, "bk_none", BOOKING_CANCEL, fx->t, &k2, NULL);
	assert_int_equal(b.out.err, RSD_ENOTFOUND);
	outcome_release(&b.out);
	assert_ledger(fx);
}

/* --- the stay's life (desk) --- */

static int64_t fee_of(struct fixture *fx, const char *bk)
{
	cJSON *doc = booking_doc(fx, bk);
	const cJSON *fee = cJSON_GetObjectItem(doc, "cancellation_fee");
	assert_string_equal(json_get_string(fee, "currency"), "EUR");
	int64_t amount = (int64_t)cJSON_GetObjectItem(fee, "amount")->valuedouble;
	cJSON_Delete(doc);
	return amount;
}

static void test_cancel_fee(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	/* room: free until 7 days before, then 20% of 30000; spa: 0 free days means always
	 * free. */
	static const struct spec terms[] = {{ROOM, 0, 3, 1, 30000, 7, 20},
					    {SPA, 1, 2, 1, 8000, 0, 100}};
	struct {
		int32_t today;
		int64_t fee;
	} cases[] = {{t - 8, 0}, {t - 7, 0}, {t - 6, 6000}, {t - 1, 6000}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hold_ok(fx, terms, 2, TTL_MS, h);
		book_ok(fx, h, PAYMENT_DESK, bk);
		assert_ledger(fx);
		assert_false(act_ok(fx, bk, BOOKING_CANCEL, cases[i].today));
		assert_int_equal(fee_of(fx, bk), cases[i].fee);
		expect_booking(fx, bk, "cancelled", cases[i].fee ? "due" : "none");
		assert_ledger(fx);
		assert_int_equal(counter(fx, ROOM, t).sold, 0);
		/* Cancelled is final. */
		act_refused(fx, bk, BOOKING_CANCEL, cases[i].today, RSD_ECONFLICT);
		act_refused(fx, bk, BOOKING_CHECK_IN, t, RSD_ECONFLICT);
		act_refused(fx, bk, BOOKING_NO_SHOW, t, RSD_ECONFLICT);
	}
	/* Two items inside their windows: the fees add up. */
	static const struct spec both[] = {{ROOM, 0, 3, 1, 30000, 7, 20},
					   {SPA, 1, 2, 1, 8000, 3, 50}};
	hold_ok(fx, both, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_ok(fx, bk, BOOKING_CANCEL, t - 1);
	assert_int_equal(fee_of(fx, bk), 6000 + 4000);
	assert_ledger(fx);

	/* Once the stay has begun it is a check-in or a no-show, not a cancellation. */
	hold_ok(fx, terms, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_refused(fx, bk, BOOKING_CANCEL, t, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CANCEL, t + 2, RSD_ECONFLICT);
	expect_booking(fx, bk, "confirmed", "due");
	assert_ledger(fx);

	/* Not found is a refusal. */
	act_refused(fx, "bk_nothing", BOOKING_CANCEL, t, RSD_ENOTFOUND);
}

static void test_check_in_window_and_check_out(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	static const struct spec stay[] = {{ROOM, 0, 4, 1, 40000, 0, 100},
					   {SPA, 1, 3, 1, 2000, 0, 100}};
	hold_ok(fx, stay, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_refused(fx, bk, BOOKING_CHECK_OUT, t, RSD_ECONFLICT); /* not checked in */
	act_refused(fx, bk, BOOKING_CHECK_IN, t - 1, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CHECK_IN, t + 4, RSD_ECONFLICT); /* departure day */
	expect_booking(fx, bk, "confirmed", "due");
	act_ok(fx, bk, BOOKING_CHECK_IN, t + 3); /* the last night */
	expect_booking(fx, bk, "checked_in", "due");
	assert_ledger(fx);
	act_refused(fx, bk, BOOKING_CHECK_IN, t + 3, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CANCEL, t + 3, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_NO_SHOW, t + 3, RSD_ECONFLICT);

	/* Leaving on t+2: the room's nights t+2 and t+3 go back, the spa's t+2. */
	act_ok(fx, bk, BOOKING_CHECK_OUT, t + 2);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "checked_out");
	char date[11];
	price_format_date(t + 2, date);
	const cJSON *items = cJSON_GetObjectItem(doc, "items");
	assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 0), "to"), date);
	assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 1), "to"), date);
	cJSON_Delete(doc);
	assert_int_equal(counter(fx, ROOM, t + 1).sold, 1);
	assert_int_equal(counter(fx, ROOM, t + 2).sold, 0);
	assert_int_equal(counter(fx, ROOM, t + 3).sold, 0);
	assert_int_equal(counter(fx, SPA, t + 1).sold, 1);
	assert_int_equal(counter(fx, SPA, t + 2).sold, 0);
	assert_ledger(fx);
	act_refused(fx, bk, BOOKING_CHECK_OUT, t + 2, RSD_ECONFLICT);

	/* Checking out on the arrival day keeps the first night; after departure, all. */
	static const struct spec one[] = {{ROOM, 0, 3, 1, 100, 0, 100}};
	hold_ok(fx, one, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_ok(fx, bk, BOOKING_CHECK_IN, t);
	act_ok(fx, bk, BOOKING_CHECK_OUT, t);
	assert_int_equal(counter(fx, ROOM, t).sold, 2);
	assert_int_equal(counter(fx, ROOM, t + 1).sold, 1); /* the first booking's */
	assert_ledger(fx);
	hold_ok(fx, one, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_ok(fx, bk, BOOKING_CHECK_IN, t + 2);
	act_ok(fx, bk, BOOKING_CHECK_OUT, t + 9);
	assert_int_equal(counter(fx, ROOM, t + 2).sold, 1);
	assert_ledger(fx);
}

static void test_no_show_keeps_first_night(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	static const struct spec stay[] = {{ROOM, 0, 4, 2, 40000, 0, 100},
					   {SPA, 2, 3, 1, 2000, 0, 100}};
	hold_ok(fx, stay, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	act_refused(fx, bk, BOOKING_NO_SHOW, t - 1, RSD_ECONFLICT);
	act_ok(fx, bk, BOOKING_NO_SHOW, t + 1);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "no_show");
	char date[11];
	price_format_date(t + 1, date);
	const cJSON *items = cJSON_GetObjectItem(doc, "items");
	assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 0), "to"), date);
	price_format_date(t + 2, date);
	assert_string_equal(json_get_string(cJSON_GetArrayItem(items, 1), "to"), date);
	cJSON_Delete(doc);
	assert_int_equal(counter(fx, ROOM, t).sold, 2);
	assert_int_equal(counter(fx, ROOM, t + 1).sold, 0);
	assert_int_equal(counter(fx, SPA, t + 2).sold, 0); /* it starts later: back on sale */
	assert_ledger(fx);
	act_refused(fx, bk, BOOKING_NO_SHOW, t + 1, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CHECK_IN, t, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CANCEL, t, RSD_ECONFLICT);
	assert_ledger(fx);
}

static struct action change_at(struct fixture *fx, int32_t today, const char *bk, int item,
			       const char *product, int32_t from, int32_t to, uint32_t qty,
			       int64_t amount)
{
	struct booking_action_cmd c;
	memset(&c, 0, sizeof(c));
	c.item = item;
	snprintf(c.change.inv.product_id, sizeof(c.change.inv.product_id), "%s", product);
	c.change.inv.from_day = fx->t + from;
	c.change.inv.to_day = fx->t + to;
	c.change.inv.qty = qty;
	c.change.amount = amount;
	return act_run(fx, bk, BOOKING_CHANGE_DATES, today, NULL, &c);
}

static struct action change_run(struct fixture *fx, const char *bk, int item, const char *product,
				int32_t from, int32_t to, uint32_t qty, int64_t amount)
{
	return change_at(fx, fx->today, bk, item, product, from, to, qty, amount);
}

static void test_change_dates(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1],
		other[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	static const struct spec stay[] = {{ROOM, 0, 3, 2, 30000, 7, 20},
					   {SPA, 0, 1, 1, 1000, 0, 100}};
	hold_ok(fx, stay, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_DESK, bk);
	/* One room left on t+1..t+4: the guest's own two count as free when moving. */
	static const struct spec fill[] = {{ROOM, 3, 4, 2, 100, 0, 100}};
	hold_ok(fx, fill, 1, TTL_MS, other);
	assert_ledger(fx);

	struct action r = change_run(fx, bk, 0, ROOM, 1, 4, 2, 36000);
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, RSD_ECONFLICT); /* t+3 has 2 held by another: 1 left */
	assert_non_null(strstr(r.out.body, "sold_out"));
	outcome_release(&r.out);
	cJSON *before = booking_doc(fx, bk);
	assert_int_equal(release_run(fx, other, NULL), RSD_OK);

	/* Overlapping move: [t, t+3) -> [t+1, t+4) with the price of the new stay. */
	r = change_run(fx, bk, 0, ROOM, 1, 4, 2, 36000);
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, RSD_OK);
	assert_int_equal(r.out.status, 200);
	outcome_release(&r.out);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "confirmed");
	const cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), 0);
	char date[11];
	price_format_date(t + 1, date);
	assert_string_equal(json_get_string(it, "from"), date);
	assert_int_equal(cJSON_GetObjectItem(it, "amount")->valueint, 36000);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "total"), "amount")->valueint,
			 37000);
	assert_int_equal(version_of(doc), version_of(before) + 1);
	cJSON_Delete(doc);
	cJSON_Delete(before);
	assert_int_equal(counter(fx, ROOM, t).sold, 0);
	assert_int_equal(counter(fx, ROOM, t + 3).sold, 2);
	assert_ledger(fx);

	/* A refusal leaves the booking and the counters as they were. */
	set_capacity(fx, SPA, t + 5, t + 6, 0);
	before = booking_doc(fx, bk);
	struct inv_day spa0 = counter(fx, SPA, t), room1 = counter(fx, ROOM, t + 1);
	r = change_run(fx, bk, 1, SPA, 5, 6, 1, 1000);
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, RSD_ECONFLICT);
	outcome_release(&r.out);
	r = change_at(fx, t + 1, bk, 0, ROOM, 0, 2, 2, 1000); /* arrives in the past */
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, RSD_ECONFLICT);
	assert_non_null(strstr(r.out.body, "in_the_past"));
	outcome_release(&r.out);
	r = change_run(fx, bk, 5, ROOM, 1, 4, 2, 36000); /* no item 5 */
	assert_int_equal(r.err, RSD_OK);
	assert_int_equal(r.out.err, RSD_ECONFLICT);
	outcome_release(&r.out);
	r = change_run(fx, bk, 0, SPA, 1, 4, 2, 36000); /* priced for another product */
	assert_int_equal(r.err, RSD_EINTERNAL);
	outcome_release(&r.out);
	doc = booking_doc(fx, bk);
	assert_true(cJSON_Compare(doc, before, true)); /* not even its version moved */
	cJSON_Delete(doc);
	cJSON_Delete(before);
	assert_int_equal(counter(fx, SPA, t).sold, spa0.sold);
	assert_int_equal(counter(fx, ROOM, t + 1).sold, room1.sold);
	assert_ledger(fx);

	/* Only a confirmed booking's dates can change. */
	act_ok(fx, bk, BOOKING_CANCEL, t - 10);
	r = change_run(fx, bk, 0, ROOM, 2, 4, 2, 1000);
	assert_int_equal(r.out.err, RSD_ECONFLICT);
	outcome_release(&r.out);
	assert_ledger(fx);
}

/* --- the payment saga --- */

static void test_saga_authorized(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	hold_ok(fx, room_and_spa, 2, TTL_MS, h);
	struct idem_key k = key("s-1", PRINCIPAL, "/v1/bookings", h);
	struct outcome o = {0};
	assert_int_equal(book_run(fx, h, PAYMENT_HTTP, &k, &o, bk), RSD_OK);
	assert_int_equal(o.status, 202);
	assert_null(strstr(o.body, "tok_visa")); /* the token stays out of the document */
	outcome_release(&o);
	expect_booking(fx, bk, "payment_pending", "pending");
	assert_int_equal(counter(fx, ROOM, t).held, 1);
	assert_int_equal(counter(fx, SPA, t + 1).held, 2);
	assert_true(saga_listed(fx, bk));
	assert_true(has_token(fx, bk));
	assert_ledger(fx);
	/* Pending: nothing the guest can do yet. */
	act_refused(fx, bk, BOOKING_CANCEL, t - 10, RSD_ECONFLICT);
	act_refused(fx, bk, BOOKING_CHECK_IN, t, RSD_ECONFLICT);
	assert_ledger(fx);

	struct step_result r = step_run(fx, bk, STEP_AUTHORIZED, "au_42");
	assert_int_equal(r.err, RSD_OK);
	assert_true(r.answered);
	assert_int_equal(r.out.err, RSD_OK);
	assert_int_equal(r.out.status, 201);
	outcome_release(&r.out);
	expect_booking(fx, bk, "confirmed", "authorized");
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(
		json_get_string(cJSON_GetObjectItem(doc, "payment"), "authorization_id"), "au_42");
	cJSON_Delete(doc);
	assert_int_equal(counter(fx, ROOM, t).held, 0);
	assert_int_equal(counter(fx, ROOM, t).sold, 1);
	assert_int_equal(counter(fx, SPA, t + 1).sold, 2);
	assert_true(saga_listed(fx, bk)); /* the capture is left */
	assert_false(has_token(fx, bk));
	assert_ledger(fx);
	/* The key is finished: a retry gets 201 with the booking. */
	assert_int_equal(book_run(fx, h, PAYMENT_HTTP, &k, &o, NULL), RSD_OK);
	assert_int_equal(o.err, RSD_OK);
	assert_int_equal(o.status, 201);
	assert_non_null(strstr(o.body, bk));
	outcome_release(&o);

	/* Late failures of a decided booking change nothing. */
	step_ok(fx, bk, STEP_DECLINED, false);
	step_ok(fx, bk, STEP_GAVE_UP, false);
	expect_booking(fx, bk, "confirmed", "authorized");
	assert_true(saga_listed(fx, bk));
	assert_ledger(fx);
}

/*
 * Regression: STEP_CAPTURED on an authorized booking once read the payment state after
 * set_string() freed it (a heap use-after-free on every captured http booking).
 */
static void test_saga_captured_then_cancelled(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	int32_t t = fx->t;
	hold_ok(fx, room_and_spa, 2, TTL_MS, h);
	book_ok(fx, h, PAYMENT_HTTP, bk);
	step_ok(fx, bk, STEP_AUTHORIZED, true);
	assert_ledger(fx);

	step_ok(fx, bk, STEP_CAPTURED, false);
	expect_booking(fx, bk, "confirmed", "captured");
	assert_false(saga_listed(fx, bk));
	assert_ledger(fx);

	/* Cancel inside the room's window: 20% of 30000 kept; the spa is free. */
	struct action a = act_run(fx, bk, BOOKING_CANCEL, t - 2, NULL, NULL);
	assert_int_equal(a.err, RSD_OK);
	assert_int_equal(a.out.status, 200);
	assert_true(a.saga);
	outcome_release(&a.out);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "cancelled");
	const cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	assert_string_equal(json_get_string(pay, "state"), "refund_pending");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(pay, "captured")));
	assert_int_equal(cJSON_GetObjectItem(pay, "refund_amount")->valueint, 38000 - 6000);
	cJSON_Delete(doc);
	assert_int_equal(fee_of(fx, bk), 6000);
	assert_true(saga_listed(fx, bk));
	assert_ledger(fx);

	step_ok(fx, bk, STEP_REFUNDED, false);
	expect_booking(fx, bk, "cancelled", "refunded");
	assert_false(saga_listed(fx, bk));
	assert_ledger(fx);
}

static void test_saga_cancel_before_capture(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, two_rooms, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_HTTP, bk);
	step_ok(fx, bk, STEP_AUTHORIZED, true);
	assert_true(act_ok(fx, bk, BOOKING_CANCEL, fx->t - 30)); /* free */
	cJSON *doc = booking_doc(fx, bk);
	const cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	assert_string_equal(json_get_string(pay, "state"), "refund_pending");
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(pay, "captured")));
	assert_int_equal(cJSON_GetObjectItem(pay, "refund_amount")->valueint, 60000);
	cJSON_Delete(doc);
	assert_ledger(fx);
	/* The saga captures first: the refund is still due, and the saga still listed. */
	step_ok(fx, bk, STEP_CAPTURED, false);
	doc = booking_doc(fx, bk);
	pay = cJSON_GetObjectItem(doc, "payment");
	assert_string_equal(json_get_string(pay, "state"), "refund_pending");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(pay, "captured")));
	cJSON_Delete(doc);
	assert_true(saga_listed(fx, bk));
	step_ok(fx, bk, STEP_REFUNDED, false);
	expect_booking(fx, bk, "cancelled", "refunded");
	assert_false(saga_listed(fx, bk));
	assert_ledger(fx);

	/* Fee of 100%: nothing to give back. */
	static const struct spec strict[] = {{ROOM, 0, 1, 1, 5000, 30, 100}};
	hold_ok(fx, strict, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_HTTP, bk);
	step_ok(fx, bk, STEP_AUTHORIZED, true);
	assert_true(act_ok(fx, bk, BOOKING_CANCEL, fx->today));
	doc = booking_doc(fx, bk);
	assert_int_equal(
		cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "payment"), "refund_amount")->valueint,
		0);
	cJSON_Delete(doc);
	assert_ledger(fx);
}

static void test_saga_declined(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, room_and_spa, 2, TTL_MS, h);
	struct idem_key k = key("d-1", PRINCIPAL, "/v1/bookings", h);
	struct outcome o = {0};
	assert_int_equal(book_run(fx, h, PAYMENT_HTTP, &k, &o, bk), RSD_OK);
	outcome_release(&o);
	assert_ledger(fx);

	struct step_result r = step_run(fx, bk, STEP_DECLINED, NULL);
	assert_int_equal(r.err, RSD_OK);
	assert_true(r.answered);
	assert_int_equal(r.out.err, RSD_EPAYMENT);
	assert_string_equal(r.out.fail.field, "payment");
	assert_non_null(strstr(r.out.fail.detail, "declined"));
	assert_non_null(strstr(r.out.body, bk));
	outcome_release(&r.out);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "failed");
	assert_string_equal(json_get_string(doc, "failure"), "declined");
	assert_string_equal(json_get_string(cJSON_GetObjectItem(doc, "payment"), "state"),
			    "declined");
	cJSON_Delete(doc);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);
	assert_int_equal(counter(fx, ROOM, fx->t).sold, 0);
	assert_false(saga_listed(fx, bk));
	assert_ledger(fx);

	/* The key answers 402 from now on. */
	assert_int_equal(book_run(fx, h, PAYMENT_HTTP, &k, &o, NULL), RSD_OK);
	assert_int_equal(o.err, RSD_EPAYMENT);
	assert_non_null(strstr(o.body, bk));
	outcome_release(&o);

	/* A repeated decline changes nothing; a failed booking cannot be acted on. */
	step_ok(fx, bk, STEP_DECLINED, false);
	act_refused(fx, bk, BOOKING_CANCEL, fx->t, RSD_ECONFLICT);
	expect_booking(fx, bk, "failed", "declined");
	assert_ledger(fx);
}

static void test_saga_gave_up_then_late_authorization(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, two_rooms, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_HTTP, bk);
	assert_int_equal(counter(fx, ROOM, fx->t).held, 2);

	struct step_result r = step_run(fx, bk, STEP_GAVE_UP, NULL);
	assert_int_equal(r.err, RSD_OK);
	assert_true(r.answered);
	assert_int_equal(r.out.err, RSD_EPAYMENT);
	assert_non_null(strstr(r.out.fail.detail, "did not answer"));
	outcome_release(&r.out);
	cJSON *doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "failed");
	assert_string_equal(json_get_string(doc, "failure"), "payment_unavailable");
	cJSON_Delete(doc);
	expect_booking(fx, bk, "failed", "void_pending");
	assert_int_equal(counter(fx, ROOM, fx->t).held, 0);
	assert_true(saga_listed(fx, bk)); /* the void is left */
	assert_ledger(fx);

	/* The authorization arrives after all: the booking stays failed, the payment is to be
	 * voided, and no unit is taken. */
	r = step_run(fx, bk, STEP_AUTHORIZED, "au_late");
	assert_int_equal(r.err, RSD_OK);
	assert_false(r.answered);
	outcome_release(&r.out);
	doc = booking_doc(fx, bk);
	assert_string_equal(json_get_string(doc, "state"), "failed");
	const cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	assert_string_equal(json_get_string(pay, "state"), "void_pending");
	assert_string_equal(json_get_string(pay, "authorization_id"), "au_late");
	cJSON_Delete(doc);
	assert_int_equal(counter(fx, ROOM, fx->t).sold, 0);
	assert_true(saga_listed(fx, bk));
	assert_ledger(fx);

	step_ok(fx, bk, STEP_VOIDED, false);
	expect_booking(fx, bk, "failed", "voided");
	assert_false(saga_listed(fx, bk));
	assert_ledger(fx);
	/* Once voided, a straggling authorization does not reopen the void. */
	step_ok(fx, bk, STEP_AUTHORIZED, false);
	expect_booking(fx, bk, "failed", "voided");
	assert_ledger(fx);

	/* The units went back: another guest can have them. */
	char h2[ENTITY_ID_BYTES_MAX + 1];
	static const struct spec three[] = {{ROOM, 0, 3, 3, 100, 0, 100}};
	hold_ok(fx, three, 1, TTL_MS, h2);
	assert_ledger(fx);
}

static void test_saga_step_on_missing_booking(void **state)
{
	struct fixture *fx = *state;
	struct step_result r = step_run(fx, "bk_nothing", STEP_AUTHORIZED, "au");
	assert_int_equal(r.err, RSD_ENOTFOUND);
	assert_false(r.answered);
	outcome_release(&r.out);
}

/*
 * Regression: a second STEP_AUTHORIZED on a booking that is already confirmed (a duplicate
 * delivery) once marked its payment void_pending, so the saga would have voided the
 * guest's authorization while the booking stayed confirmed. A step is idempotent.
 */
static void test_saga_duplicate_authorized(void **state)
{
	struct fixture *fx = *state;
	char h[ENTITY_ID_BYTES_MAX + 1], bk[ENTITY_ID_BYTES_MAX + 1];
	hold_ok(fx, two_rooms, 1, TTL_MS, h);
	book_ok(fx, h, PAYMENT_HTTP, bk);
	step_ok(fx, bk, STEP_AUTHORIZED, true);
	step_ok(fx, bk, STEP_AUTHORIZED, false);
	assert_ledger(fx);
	expect_booking(fx, bk, "confirmed", "authorized");
}

/* An argument runs only the tests whose names match it ("test_saga_*"). */
int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define P(fn)                                                                                      \
	{                                                                                          \
#fn " (prepared)", fn, setup_prepared, teardown, NULL                              \
	}
	const struct CMUnitTest tests[] = {
		T(test_hold_take_and_release),
		T(test_hold_prepared_long_ago_is_built_again),
		T(test_hold_refused_is_an_outcome),
		T(test_hold_refused_before_the_writer),
		T(test_sweep_expires_holds),
		T(test_booking_desk),
		T(test_booking_refused_holds),
		T(test_idempotent_hold),
		T(test_idempotency_records_expire),
		T(test_idempotent_booking),
		T(test_idempotent_action),
		T(test_cancel_fee),
		T(test_check_in_window_and_check_out),
		T(test_no_show_keeps_first_night),
		T(test_change_dates),
		T(test_saga_authorized),
		T(test_saga_captured_then_cancelled),
		T(test_saga_cancel_before_capture),
		T(test_saga_declined),
		T(test_saga_gave_up_then_late_authorization),
		T(test_saga_step_on_missing_booking),
		T(test_saga_duplicate_authorized),
		T(test_prepared_booking_of_a_changed_hold),
		P(test_booking_desk),
		P(test_booking_refused_holds),
		P(test_idempotent_booking),
		P(test_idempotent_action),
		P(test_cancel_fee),
		P(test_check_in_window_and_check_out),
		P(test_no_show_keeps_first_night),
		P(test_change_dates),
		P(test_saga_authorized),
		P(test_saga_captured_then_cancelled),
		P(test_saga_cancel_before_capture),
		P(test_saga_declined),
		P(test_saga_gave_up_then_late_authorization),
		P(test_saga_step_on_missing_booking),
		P(test_saga_duplicate_authorized),
	};
#undef T
#undef P
	return cmocka_run_group_tests(tests, NULL, NULL);
}
