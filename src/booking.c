/*
 * booking.c — the booking saga's state transitions, each one writer command (see
 * booking.h). Invariants every transition keeps, in one transaction with its event:
 * a booking's items are exactly what it holds (payment_pending) or has sold (confirmed,
 * checked_in, no_show) in the counters; a request's Idempotency-Key answer is written
 * with the transition that decides it.
 */
#include "booking.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "json.h"
#include "price.h"
#include "banned.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* --- counters --- */

static _Atomic uint64_t counters[COUNT_MAX_];

void booking_count(enum booking_counter c)
{
	atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

void booking_stats_get(struct booking_stats *out)
{
	out->holds_created = atomic_load(&counters[COUNT_HOLD_CREATED]);
	out->holds_refused = atomic_load(&counters[COUNT_HOLD_REFUSED]);
	out->holds_released = atomic_load(&counters[COUNT_HOLD_RELEASED]);
	out->confirmed = atomic_load(&counters[COUNT_CONFIRMED]);
	out->failed = atomic_load(&counters[COUNT_FAILED]);
	out->cancelled = atomic_load(&counters[COUNT_CANCELLED]);
	out->replays = idempotency_replays();
}

/* --- documents --- */

/* The stored document of booking id; borrowed until txn ends. */
static int booking_raw(MDB_txn *txn, struct store *s, const char *id, MDB_val *v)
{
	if (strlen(id) > ENTITY_ID_BYTES_MAX)
		return RSD_ENOTFOUND;
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
	return store_err(mdb_get(txn, s->bookings, &k, v));
}

int booking_load(MDB_txn *txn, struct store *s, const char *id, cJSON **doc)
{
	MDB_val v;
	int err = booking_raw(txn, s, id, &v);
	if (err)
		return err;
	*doc = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	return *doc ? RSD_OK : RSD_EIO;
}

int booking_get(MDB_txn *txn, struct store *s, const char *id, char **json, size_t *len)
{
	MDB_val v;
	int err = booking_raw(txn, s, id, &v);
	if (err)
		return err;
	*json = rsd_strndup(v.mv_data, v.mv_size);
	*len = v.mv_size;
	return RSD_OK;
}

static const char *get_state(const cJSON *doc)
{
	const char *s = json_get_string(doc, "state");
	return s ? s : "";
}

static const char *pay_state(const cJSON *doc)
{
	const char *s = json_get_string(cJSON_GetObjectItem(doc, "payment"), "state");
	return s ? s : "";
}

static void set_string(cJSON *obj, const char *name, const char *value)
{
	cJSON *v = value ? cJSON_CreateString(value) : cJSON_CreateNull();
	if (cJSON_GetObjectItem(obj, name))
		cJSON_ReplaceItemInObject(obj, name, v);
	else
		cJSON_AddItemToObject(obj, name, v);
}

static void set_number(cJSON *obj, const char *name, double value)
{
	cJSON *v = cJSON_CreateNumber(value);
	if (cJSON_GetObjectItem(obj, name))
		cJSON_ReplaceItemInObject(obj, name, v);
	else
		cJSON_AddItemToObject(obj, name, v);
}

/* The "sg:<id>" entry that lists a booking with payment work left. */
static int saga_mark(MDB_txn *txn, struct store *s, const char *id, bool pending)
{
	char key[ENTITY_ID_BYTES_MAX + 4];
	int n = snprintf(key, sizeof(key), "sg:%s", id);
	MDB_val k = {.mv_size = (size_t)n, .mv_data = key}, v = {.mv_size = 0, .mv_data = ""};
	if (pending)
		return store_err(mdb_put(txn, s->meta, &k, &v, 0));
	int rc = mdb_del(txn, s->meta, &k, NULL);
	return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
}

int booking_pending_sagas(MDB_txn *txn, struct store *s, void (*fn)(const char *id, void *arg),
			  void *arg)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->meta, &c);
	if (rc)
		return store_err(rc);
	MDB_val k = {.mv_size = 3, .mv_data = "sg:"}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > 3 && memcmp(k.mv_data, "sg:", 3) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char id[ENTITY_ID_BYTES_MAX + 1];
		size_t n =
			k.mv_size - 3 > ENTITY_ID_BYTES_MAX ? ENTITY_ID_BYTES_MAX : k.mv_size - 3;
		memcpy(id, (char *)k.mv_data + 3, n);
		id[n] = '\0';
		fn(id, arg);
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
}

/* The payment token of a booking whose authorize is still to come ("pt:<id>" in meta):
 * kept out of the document, which guests, staff, the log and the read model all see. */
static int token_put(MDB_txn *txn, struct store *s, const char *id, const char *token)
{
	char key[ENTITY_ID_BYTES_MAX + 4];
	int n = snprintf(key, sizeof(key), "pt:%s", id);
	MDB_val k = {.mv_size = (size_t)n, .mv_data = key};
	if (!token) {
		int rc = mdb_del(txn, s->meta, &k, NULL);
		return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
	}
	MDB_val v = {.mv_size = strlen(token), .mv_data = (void *)token};
	return store_err(mdb_put(txn, s->meta, &k, &v, 0));
}

int booking_token(MDB_txn *txn, struct store *s, const char *id, char *out, size_t cap)
{
	char key[ENTITY_ID_BYTES_MAX + 4];
	int n = snprintf(key, sizeof(key), "pt:%s", id);
	MDB_val k = {.mv_size = (size_t)n, .mv_data = key}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);
	if (rc)
		return store_err(rc);
	snprintf(out, cap, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
	return RSD_OK;
}

/* Bumps doc's version and updated_at; returns it printed (cJSON_free). */
static char *stamp(cJSON *doc, uint64_t now_ms)
{
	char now[32];
	rsd_time_format(now_ms, now, sizeof(now));
	set_string(doc, "updated_at", now);
	cJSON *version = cJSON_GetObjectItem(doc, "version");
	set_number(doc, "version", version ? version->valuedouble + 1 : 1);
	return json_print(doc);
}

static int put_booking(struct writer_txn *wt, const char *id, const char *text, size_t len)
{
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
	MDB_val v = {.mv_size = len, .mv_data = (void *)text};
	int err = store_err(mdb_put(wt->txn, wt->store->bookings, &k, &v, 0));
	return err ? err : writer_emit(wt, EVENT_BOOKING_CHANGED, text, len, NULL);
}

/* Stamps the booking, stores it and emits it as an event. *text (may be NULL) receives the
 * document as stored, for the caller's reply (cJSON_free): a booking is printed once per
 * transition. */
static int save(struct writer_txn *wt, cJSON *doc, uint64_t now_ms, char **text_out)
{
	char *text = stamp(doc, now_ms);
	int err = put_booking(wt, json_get_string(doc, "id"), text, strlen(text));
	if (text_out)
		*text_out = text;
	else
		cJSON_free(text);
	return err;
}

/* booking_outcome with the document already printed as text (NULL: print it here). */
static void outcome_of(const cJSON *doc, const char *text, struct outcome *out)
{
	const char *state = get_state(doc);
	outcome_release(out);
	memset(out, 0, sizeof(*out));
	if (strcmp(state, "failed") == 0) {
		const char *why = json_get_string(doc, "failure");
		out->err = RSD_EPAYMENT;
		rsd_failf(&out->fail, RSD_EPAYMENT, "payment", "%s",
			  why && strcmp(why, "declined") == 0
				  ? "the payment was declined; the hold is released"
				  : "the payment service did not answer in time; nothing is charged"
				    " and the hold is released");
		cJSON *extra = cJSON_CreateObject();
		cJSON_AddStringToObject(extra, "booking_id", json_get_string(doc, "id"));
		out->body = json_print(extra);
		out->len = strlen(out->body);
		cJSON_Delete(extra);
		return;
	}
	char *printed = text ? NULL : json_print(doc);
	const char *body = text ? text : printed;
	outcome_set(out, strcmp(state, "payment_pending") == 0 ? 202 : 201, body, strlen(body));
	cJSON_free(printed);
	snprintf(out->location, sizeof(out->location), "/v1/bookings/%s",
		 json_get_string(doc, "id"));
}

void booking_outcome(const cJSON *doc, struct outcome *out)
{
	outcome_of(doc, NULL, out);
}

/* --- POST /v1/bookings --- */

static const struct json_field booking_fields[] = {
	{"hold_id", JSON_STRING, JSON_REQUIRED, 1, ENTITY_ID_BYTES_MAX},
	{"payment", JSON_OBJECT, JSON_REQUIRED, 0, 0},
	{"guest", JSON_OBJECT, 0, 0, 0},
};
static const struct json_field payment_fields[] = {
	{"method", JSON_STRING, JSON_REQUIRED, 1, 8},
	{"token", JSON_STRING, 0, 1, PAYMENT_TOKEN_BYTES_MAX},
};

int booking_decode(const char *body, size_t len, struct booking_cmd *bc, struct rsd_fail *f)
{
	memset(bc, 0, sizeof(*bc));
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	const cJSON *pay = cJSON_GetObjectItem(obj, "payment");
	if ((err = json_check_object(obj, booking_fields, COUNT(booking_fields), f)) ||
	    (err = json_check_nested(pay, "payment", payment_fields, COUNT(payment_fields), f)))
		goto out;
	const char *method = json_get_string(pay, "method"), *token = json_get_string(pay, "token");
	if (strcmp(method, "desk") == 0)
		bc->method = PAYMENT_DESK;
	else if (strcmp(method, "http") == 0)
		bc->method = PAYMENT_HTTP;
	else {
		err = rsd_failf(f, RSD_EINVAL, "payment.method",
				"'payment.method' must be one of: desk, http");
		goto out;
	}
	if (bc->method == PAYMENT_HTTP && !token) {
		err = rsd_failf(f, RSD_EINVAL, "payment.token",
				"'payment.token' is required for method http");
		goto out;
	}
	snprintf(bc->token, sizeof(bc->token), "%s", token ? token : "");
	snprintf(bc->hold_id, sizeof(bc->hold_id), "%s", json_get_string(obj, "hold_id"));
	cJSON *guest = cJSON_GetObjectItem(obj, "guest");
	if (guest && (err = hold_check_guest(guest, "guest", f)))
		goto out;
	if (guest)
		bc->guest = cJSON_DetachItemViaPointer(obj, guest);
out:
	cJSON_Delete(obj);
	return err;
}

static cJSON *new_booking(const struct booking_cmd *bc, cJSON *hold, const char *id,
			  uint64_t now_ms)
{
	char now[32];
	rsd_time_format(now_ms, now, sizeof(now));
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "id", id);
	cJSON_AddStringToObject(d, "state",
				bc->method == PAYMENT_DESK ? "confirmed" : "payment_pending");
	cJSON_AddStringToObject(d, "hold_id", bc->hold_id);
	cJSON_AddStringToObject(d, "principal", bc->idem.principal);
	cJSON_AddStringToObject(d, "created_at", now);
	cJSON_AddStringToObject(d, "updated_at", now);
	cJSON_AddItemToObject(d, "items", cJSON_Duplicate(cJSON_GetObjectItem(hold, "items"), 1));
	cJSON_AddItemToObject(d, "total", cJSON_Duplicate(cJSON_GetObjectItem(hold, "total"), 1));
	cJSON_AddItemToObject(d, "guest",
			      bc->guest ? cJSON_Duplicate(bc->guest, 1)
					: cJSON_Duplicate(cJSON_GetObjectItem(hold, "guest"), 1));
	cJSON *pay = cJSON_AddObjectToObject(d, "payment");
	cJSON_AddStringToObject(pay, "method", bc->method == PAYMENT_DESK ? "desk" : "http");
	cJSON_AddStringToObject(pay, "state", bc->method == PAYMENT_DESK ? "due" : "pending");
	cJSON_AddNullToObject(pay, "authorization_id");
	cJSON_AddFalseToObject(pay, "captured");
	if (bc->idem.present)
		cJSON_AddStringToObject(d, "request_key", bc->idem.key);
	cJSON_AddNullToObject(d, "cancellation_fee");
	cJSON_AddNullToObject(d, "failure");
	cJSON_AddNumberToObject(d, "version", 0); /* save makes it 1 */
	return d;
}

/* Checks that the hold can become a booking now; a refusal fills f. */
static int check_hold(enum hold_state state, uint64_t expiry_ms, uint64_t now_ms,
		      struct rsd_fail *f)
{
	if (state != HOLD_HELD)
		return rsd_failf(f, RSD_ECONFLICT, "hold_id", "the hold is %s",
				 hold_state_name(state));
	if (expiry_ms <= now_ms)
		return rsd_failf(f, RSD_ECONFLICT, "hold_id", "the hold has expired");
	return RSD_OK;
}

/* The HOLD_ENDED event of a hold that became booking id (caller frees). */
static cJSON *hold_booked_event(const char *hold_id, const char *id)
{
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", hold_id);
	cJSON_AddStringToObject(ev, "state", "booked");
	cJSON_AddStringToObject(ev, "booking_id", id);
	return ev;
}

/* Turns the hold into booking id and moves its units on (held -> sold for desk). */
static int take_over_hold(struct writer_txn *wt, const struct booking_cmd *bc, cJSON *hold,
			  uint64_t expiry_ms, const char *id, struct rsd_fail *f)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(hold, items, HOLD_ITEMS_MAX);
	if (n < 0)
		return rsd_failf(f, RSD_EIO, "", "a stored hold is corrupt");
	int err;
	if (bc->method == PAYMENT_DESK &&
	    (err = inventory_move(wt->txn, wt->store, items, n, INV_CONFIRM, f)))
		return err;
	set_string(hold, "booking_id", id);
	if ((err = store_expiry_del(wt->txn, wt->store, expiry_ms, EXPIRY_HOLD, bc->hold_id,
				    strlen(bc->hold_id))) ||
	    (err = hold_store(wt->txn, wt->store, hold, HOLD_BOOKED, expiry_ms)))
		return err;
	return writer_emit_json(wt, EVENT_HOLD_ENDED, hold_booked_event(bc->hold_id, id));
}

/*
 * The booking built off the writer thread (booking_cmd_prepare) from the hold as a read
 * snapshot had it. The writer takes it when the hold's stored record is still those bytes;
 * otherwise (released, expired, booked meanwhile) it decides from the record it reads.
 */
struct booking_prep {
	char id[ENTITY_ID_BYTES_MAX + 1]; /* the booking's */
	unsigned char *seen;		  /* the hold's record as read */
	size_t seen_len;
	cJSON *hold; /* its document, now booked (it was held when read) */
	uint64_t expiry_ms;
	struct inv_item items[HOLD_ITEMS_MAX];
	int n;
	unsigned char *booked; /* the hold's record once booked */
	size_t booked_len;
	char *ended; /* the HOLD_ENDED event */
	cJSON *doc;  /* the booking, as stored */
	char *text;
};

static void prep_free(struct booking_prep *p)
{
	if (p == NULL)
		return;
	free(p->seen);
	cJSON_Delete(p->hold);
	free(p->booked);
	cJSON_free(p->ended);
	cJSON_Delete(p->doc);
	cJSON_free(p->text);
	free(p);
}

void booking_cmd_prepare(struct booking_cmd *bc, struct store *s, MDB_txn *txn)
{
	MDB_val v;
	if (txn == NULL || hold_raw(txn, s, bc->hold_id, &v) != RSD_OK)
		return;
	struct booking_prep *p = rsd_calloc(1, sizeof(*p));
	p->seen = rsd_malloc(v.mv_size);
	memcpy(p->seen, v.mv_data, v.mv_size);
	p->seen_len = v.mv_size;
	enum hold_state state;
	if (hold_decode_record(&v, &p->hold, &state, &p->expiry_ms) != RSD_OK ||
	    state != HOLD_HELD || (p->n = hold_items(p->hold, p->items, HOLD_ITEMS_MAX)) < 0) {
		prep_free(p);
		return;
	}
	uint64_t now_ms = rsd_now_ms();
	rsd_id_ordered("bk_", p->id, sizeof(p->id));
	p->doc = new_booking(bc, p->hold, p->id, now_ms);
	p->text = stamp(p->doc, now_ms);
	set_string(p->hold, "booking_id", p->id);
	p->booked = hold_record(p->hold, HOLD_BOOKED, p->expiry_ms, &p->booked_len);
	cJSON *ev = hold_booked_event(bc->hold_id, p->id);
	p->ended = json_print(ev);
	cJSON_Delete(ev);
	bc->prep = p;
}

/* booking_apply with bc->prep, the hold unchanged since it was read. */
static int apply_prepared(struct writer_txn *wt, struct booking_cmd *bc, uint64_t now_ms)
{
	struct booking_prep *p = bc->prep;
	struct rsd_fail f = {0};
	int err = RSD_OK;
	if (hold_access(wt->txn, wt->store, p->hold, &bc->who) != RSD_OK)
		err = rsd_failf(&f, RSD_ENOTFOUND, "hold_id", "no hold with id '%.48s'",
				bc->hold_id);
	else
		err = check_hold(HOLD_HELD, p->expiry_ms, now_ms, &f); /* the bytes say held */
	if (err)
		return idempotency_refuse(wt->txn, wt->store, &bc->idem, now_ms, &bc->out, err, &f,
					  NULL);
	memcpy(bc->booking_id, p->id, sizeof(bc->booking_id));
	bc->saga = bc->method == PAYMENT_HTTP;
	if ((bc->method == PAYMENT_DESK && (err = inventory_move(wt->txn, wt->store, p->items, p->n,
								 INV_CONFIRM, &bc->cmd.fail))) ||
	    (err = store_expiry_del(wt->txn, wt->store, p->expiry_ms, EXPIRY_HOLD, bc->hold_id,
				    strlen(bc->hold_id))) ||
	    (err = hold_record_put(wt->txn, wt->store, bc->hold_id, p->booked, p->booked_len)) ||
	    (err = writer_emit(wt, EVENT_HOLD_ENDED, p->ended, strlen(p->ended), NULL)) ||
	    (err = put_booking(wt, bc->booking_id, p->text, strlen(p->text))) ||
	    (bc->saga && (err = saga_mark(wt->txn, wt->store, bc->booking_id, true))) ||
	    (bc->saga && (err = token_put(wt->txn, wt->store, bc->booking_id, bc->token))))
		return err;
	outcome_of(p->doc, p->text, &bc->out);
	if (!bc->saga)
		booking_count(COUNT_CONFIRMED);
	if (bc->idem.present)
		err = idempotency_put(wt->txn, wt->store, &bc->idem, now_ms,
				      bc->saga ? NULL : &bc->out);
	return err;
}

/* Whether the prepared booking still holds: the hold's record is the one it was made from. */
static bool prepared_holds(struct writer_txn *wt, const struct booking_cmd *bc)
{
	MDB_val v;
	return bc->prep && hold_raw(wt->txn, wt->store, bc->hold_id, &v) == RSD_OK &&
	       v.mv_size == bc->prep->seen_len && memcmp(v.mv_data, bc->prep->seen, v.mv_size) == 0;
}

static int booking_apply(struct writer_txn *wt, struct command *cmd)
{
	struct booking_cmd *bc = (struct booking_cmd *)cmd;
	uint64_t now_ms = rsd_now_ms();
	int err;
	bool replay;
	if ((err = idempotency_begin(wt->txn, wt->store, &bc->idem, now_ms, &replay, &bc->out,
				     &cmd->fail)) ||
	    replay)
		return err;
	if (prepared_holds(wt, bc))
		return apply_prepared(wt, bc, now_ms);
	cJSON *hold = NULL;
	enum hold_state state;
	uint64_t expiry_ms;
	struct rsd_fail f = {0};
	err = hold_load(wt->txn, wt->store, bc->hold_id, &hold, &state, &expiry_ms);
	if (err == RSD_OK && hold_access(wt->txn, wt->store, hold, &bc->who) != RSD_OK) {
		cJSON_Delete(hold);
		hold = NULL;
		err = RSD_ENOTFOUND;
	}
	if (err == RSD_ENOTFOUND)
		rsd_failf(&f, RSD_ENOTFOUND, "hold_id", "no hold with id '%.48s'", bc->hold_id);
	else if (!err)
		err = check_hold(state, expiry_ms, now_ms, &f);
	if (err == RSD_ENOTFOUND || err == RSD_ECONFLICT) {
		cJSON_Delete(hold);
		return idempotency_refuse(wt->txn, wt->store, &bc->idem, now_ms, &bc->out, err, &f,
					  NULL);
	}
	if (err)
		return err;
	rsd_id_ordered("bk_", bc->booking_id, sizeof(bc->booking_id));
	cJSON *doc = new_booking(bc, hold, bc->booking_id, now_ms);
	bc->saga = bc->method == PAYMENT_HTTP;
	char *text = NULL;
	if ((err = take_over_hold(wt, bc, hold, expiry_ms, bc->booking_id, &cmd->fail)) ||
	    (err = save(wt, doc, now_ms, &text)) ||
	    (bc->saga && (err = saga_mark(wt->txn, wt->store, bc->booking_id, true))) ||
	    (bc->saga && (err = token_put(wt->txn, wt->store, bc->booking_id, bc->token))))
		goto out;
	outcome_of(doc, text, &bc->out);
	if (!bc->saga)
		booking_count(COUNT_CONFIRMED);
	/* A saga's key stays "running" until the saga decides; its answer is written then. */
	if (bc->idem.present)
		err = idempotency_put(wt->txn, wt->store, &bc->idem, now_ms,
				      bc->saga ? NULL : &bc->out);
out:
	cJSON_free(text);
	cJSON_Delete(hold);
	cJSON_Delete(doc);
	return err;
}

const char *booking_cmd_prepared_id(const struct booking_cmd *bc)
{
	return bc->prep ? bc->prep->id : NULL;
}

void booking_cmd_init(struct booking_cmd *bc, const struct idem_key *idem,
		      const struct principal *who)
{
	bc->prep = NULL;
	bc->cmd.apply = booking_apply;
	bc->idem = *idem;
	snprintf(bc->idem.principal, sizeof(bc->idem.principal), "%s", who->sub);
	bc->who = *who;
}

void booking_cmd_release(struct booking_cmd *bc)
{
	prep_free(bc->prep);
	bc->prep = NULL;
	cJSON_Delete(bc->guest);
	bc->guest = NULL;
	outcome_release(&bc->out);
}

/* --- the stay's life --- */

int booking_decode_change(const char *body, size_t len, struct booking_action_cmd *ac,
			  struct rsd_fail *f)
{
	static const struct json_field fields[] = {
		{"from", JSON_STRING, JSON_REQUIRED, 10, 10},
		{"to", JSON_STRING, JSON_REQUIRED, 10, 10},
		{"item", JSON_INT, 0, 0, HOLD_ITEMS_MAX - 1},
	};
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	if (!(err = json_check_object(obj, fields, COUNT(fields), f)) &&
	    !(err = inventory_decode_range(obj, &ac->change.inv.from_day, &ac->change.inv.to_day,
					   STAY_NIGHTS_MAX, f))) {
		const cJSON *item = cJSON_GetObjectItem(obj, "item");
		ac->item = item ? (int)item->valuedouble : 0;
	}
	cJSON_Delete(obj);
	return err;
}

/* The item's nights and units as a counter item. */
static int item_at(const cJSON *doc, int i, struct inv_item *out)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	if (n < 0 || i >= n)
		return RSD_EIO;
	*out = items[i];
	return RSD_OK;
}

/* Sets item i's "to" (the stay cut short), releasing the nights from new_to on. */
static int cut_item(struct writer_txn *wt, cJSON *doc, int i, int32_t new_to, struct rsd_fail *f)
{
	struct inv_item it;
	if (item_at(doc, i, &it))
		return rsd_failf(f, RSD_EIO, "", "a stored booking is corrupt");
	if (new_to >= it.to_day)
		return RSD_OK;
	struct inv_item gone = it;
	gone.from_day = new_to;
	int err = inventory_move(wt->txn, wt->store, &gone, 1, INV_RELEASE_SOLD, f);
	if (err)
		return err;
	char to[11];
	price_format_date(new_to, to);
	set_string(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), i), "to", to);
	return RSD_OK;
}

/* The fee cancelling item `it` today costs under its frozen terms. */
static int64_t item_fee(const cJSON *it, int32_t today)
{
	int32_t from;
	const cJSON *c = cJSON_GetObjectItem(it, "cancellation");
	if (price_parse_date(json_get_string(it, "from"), &from) != RSD_OK || !c)
		return 0;
	int free_days = (int)cJSON_GetObjectItem(c, "free_days")->valuedouble;
	int percent = (int)cJSON_GetObjectItem(c, "fee_percent")->valuedouble;
	if (free_days == 0 || from - today >= free_days)
		return 0;
	return (int64_t)cJSON_GetObjectItem(it, "amount")->valuedouble * percent / 100;
}

/* The fee a cancellation today costs, summed over the items. */
static int64_t cancellation_fee(const cJSON *doc, int32_t today)
{
	int64_t fee = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "items")) fee += item_fee(it, today);
	return fee;
}

static int do_cancel(struct writer_txn *wt, struct booking_action_cmd *ac, cJSON *doc,
		     struct rsd_fail *f)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	if (n < 0)
		return rsd_failf(f, RSD_EIO, "", "a stored booking is corrupt");
	int err = inventory_move(wt->txn, wt->store, items, n, INV_RELEASE_SOLD, f);
	if (err)
		return err;
	int64_t fee = cancellation_fee(doc, ac->today);
	cJSON *total = cJSON_GetObjectItem(doc, "total");
	cJSON *c = cJSON_CreateObject();
	cJSON_AddNumberToObject(c, "amount", (double)fee);
	cJSON_AddStringToObject(c, "currency", json_get_string(total, "currency"));
	cJSON_ReplaceItemInObject(doc, "cancellation_fee", c);
	cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	if (strcmp(json_get_string(pay, "method"), "desk") == 0) {
		set_string(pay, "state", fee > 0 ? "due" : "none");
		return RSD_OK;
	}
	/* http: give back what the guest paid beyond the fee (saga.c captures first when the
	 * capture has not happened yet). */
	set_number(pay, "refund_amount",
		   (double)(cJSON_GetObjectItem(total, "amount")->valuedouble - (double)fee));
	set_string(pay, "state", "refund_pending");
	ac->saga = true;
	return saga_mark(wt->txn, wt->store, ac->id, true);
}

/* Moves item ac->item to the new stay: release its nights, take the new ones as sold,
 * in a child transaction so that a refusal leaves the booking as it was. */
static int do_change(struct writer_txn *wt, struct booking_action_cmd *ac, cJSON *doc,
		     struct rsd_fail *f, cJSON **why)
{
	struct inv_item old;
	if (item_at(doc, ac->item, &old))
		return rsd_failf(f, RSD_ECONFLICT, "item", "the booking has no item %d", ac->item);
	if (strcmp(old.product_id, ac->change.inv.product_id) != 0)
		return rsd_failf(f, RSD_EINTERNAL, "", "the change was priced for another product");
	cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), ac->item);
	if (item_fee(item, ac->today) > 0)
		return rsd_failf(
			f, RSD_ECONFLICT, "",
			"the stay is inside its cancellation window: its dates can no longer"
			" change");
	const char *method = json_get_string(cJSON_GetObjectItem(doc, "payment"), "method");
	if (strcmp(method, "http") == 0 &&
	    (double)ac->change.amount != cJSON_GetObjectItem(item, "amount")->valuedouble)
		return rsd_failf(f, RSD_ECONFLICT, "",
				 "the new dates cost a different amount, and the payment was made"
				 " online for the old one: cancel and book again");
	MDB_txn *child;
	int rc = mdb_txn_begin(wt->store->env, wt->txn, 0, &child);
	if (rc)
		return store_err(rc);
	/* Release first, then take: for a stay that overlaps the old one, the guest's own
	 * room counts as free. Both happen in one transaction, so no other guest can take
	 * the released nights in between, and a refusal undoes the release. */
	int err = inventory_move(child, wt->store, &old, 1, INV_RELEASE_SOLD, f);
	if (!err)
		err = inventory_take(child, wt->store, &ac->change.inv, 1, ac->today, true, why, f);
	if (err) {
		mdb_txn_abort(child);
		return err;
	}
	if ((rc = mdb_txn_commit(child)))
		return store_err(rc);
	char from[11], to[11];
	price_format_date(ac->change.inv.from_day, from);
	price_format_date(ac->change.inv.to_day, to);
	set_string(item, "from", from);
	set_string(item, "to", to);
	double delta = (double)ac->change.amount - cJSON_GetObjectItem(item, "amount")->valuedouble;
	set_number(item, "amount", (double)ac->change.amount);
	/* The new dates are sold on the terms the catalog gives them now. */
	cJSON *terms = cJSON_CreateObject();
	cJSON_AddNumberToObject(terms, "free_days", ac->change.free_cancel_days);
	cJSON_AddNumberToObject(terms, "fee_percent", ac->change.cancel_fee_percent);
	cJSON_ReplaceItemInObject(item, "cancellation", terms);
	cJSON *total = cJSON_GetObjectItem(doc, "total");
	set_number(total, "amount", cJSON_GetObjectItem(total, "amount")->valuedouble + delta);
	return RSD_OK;
}

/* Where an item ends when the guest leaves today: nights before today were used; an item
 * that began today keeps that night (the guest checked in for it); later ones are unused. */
static int32_t checked_out_to(const struct inv_item *it, int32_t today)
{
	if (it->from_day < today)
		return today;
	return it->from_day == today ? it->from_day + 1 : it->from_day;
}

/* The stay's first arrival and last departure. */
static void stay_span(const cJSON *doc, int32_t *arrival, int32_t *departure)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	*arrival = INT32_MAX;
	*departure = 0;
	for (int i = 0; i < n; i++) {
		if (items[i].from_day < *arrival)
			*arrival = items[i].from_day;
		if (items[i].to_day > *departure)
			*departure = items[i].to_day;
	}
}

static int wrong_state(struct rsd_fail *f, const char *action, const char *state)
{
	return rsd_failf(f, RSD_ECONFLICT, "", "cannot %s a booking that is %s", action, state);
}

/* Applies ac's action to doc; a refusal returns RSD_ECONFLICT with f (and maybe why). */
static int act(struct writer_txn *wt, struct booking_action_cmd *ac, cJSON *doc, struct rsd_fail *f,
	       cJSON **why)
{
	const char *state = get_state(doc);
	int32_t arrival, departure;
	stay_span(doc, &arrival, &departure);
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "items")), err = RSD_OK;
	switch (ac->action) {
	case BOOKING_CANCEL:
		if (strcmp(state, "confirmed") != 0)
			return wrong_state(f, "cancel", state);
		if (ac->today >= arrival)
			return rsd_failf(
				f, RSD_ECONFLICT, "",
				"the stay has begun: check the guest in or mark a no-show");
		if ((err = do_cancel(wt, ac, doc, f)))
			return err;
		set_string(doc, "state", "cancelled");
		booking_count(COUNT_CANCELLED);
		return RSD_OK;
	case BOOKING_CHECK_IN:
		if (strcmp(state, "confirmed") != 0)
			return wrong_state(f, "check in", state);
		if (ac->today < arrival || ac->today >= departure)
			return rsd_failf(f, RSD_ECONFLICT, "",
					 "check-in is possible from the arrival day until the"
					 " last night");
		set_string(doc, "state", "checked_in");
		return RSD_OK;
	case BOOKING_CHECK_OUT:
		if (strcmp(state, "checked_in") != 0)
			return wrong_state(f, "check out", state);
		/* Leaving early gives the nights from today on back. */
		for (int i = 0; i < n && !err; i++) {
			struct inv_item it;
			if (item_at(doc, i, &it) == RSD_OK)
				err = cut_item(wt, doc, i, checked_out_to(&it, ac->today), f);
		}
		if (!err)
			set_string(doc, "state", "checked_out");
		return err;
	case BOOKING_NO_SHOW:
		if (strcmp(state, "confirmed") != 0)
			return wrong_state(f, "mark as no-show", state);
		if (ac->today < arrival)
			return rsd_failf(f, RSD_ECONFLICT, "",
					 "a guest can be a no-show only from the arrival day");
		/* The arrival night is charged; the rest, and items that start later, go back
		 * on sale. */
		for (int i = 0; i < n && !err; i++) {
			struct inv_item it;
			if (item_at(doc, i, &it) == RSD_OK)
				err = cut_item(
					wt, doc, i,
					it.from_day == arrival ? it.from_day + 1 : it.from_day, f);
		}
		if (!err)
			set_string(doc, "state", "no_show");
		return err;
	case BOOKING_CHANGE_DATES:
		if (strcmp(state, "confirmed") != 0)
			return wrong_state(f, "change the dates of", state);
		return do_change(wt, ac, doc, f, why);
	}
	return RSD_EINTERNAL;
}

static int action_apply(struct writer_txn *wt, struct command *cmd)
{
	struct booking_action_cmd *ac = (struct booking_action_cmd *)cmd;
	uint64_t now_ms = rsd_now_ms();
	int err;
	bool replay;
	if ((err = idempotency_begin(wt->txn, wt->store, &ac->idem, now_ms, &replay, &ac->out,
				     &cmd->fail)) ||
	    replay)
		return err;
	cJSON *doc = NULL, *why = NULL;
	struct rsd_fail f = {0};
	err = booking_load(wt->txn, wt->store, ac->id, &doc);
	bool desk = ac->action == BOOKING_CHECK_IN || ac->action == BOOKING_CHECK_OUT ||
		    ac->action == BOOKING_NO_SHOW;
	if (err == RSD_OK && (desk ? hold_staff_access(wt->txn, wt->store, doc, &ac->who)
				   : hold_access(wt->txn, wt->store, doc, &ac->who)) != RSD_OK) {
		cJSON_Delete(doc);
		doc = NULL;
		err = RSD_ENOTFOUND;
	}
	if (err == RSD_ENOTFOUND)
		rsd_failf(&f, err, "", "no booking with id '%.48s'", ac->id);
	else if (!err)
		err = act(wt, ac, doc, &f, &why);
	if (err == RSD_ENOTFOUND || err == RSD_ECONFLICT) {
		cJSON_Delete(doc);
		return idempotency_refuse(wt->txn, wt->store, &ac->idem, now_ms, &ac->out, err, &f,
					  why);
	}
	if (err) {
		cmd->fail = f;
		cJSON_Delete(doc);
		return err;
	}
	char *text = NULL;
	if ((err = save(wt, doc, now_ms, &text)) == RSD_OK) {
		outcome_set(&ac->out, 200, text, strlen(text));
		err = idempotency_remember(wt->txn, wt->store, &ac->idem, now_ms, &ac->out);
	}
	cJSON_free(text);
	cJSON_Delete(doc);
	return err;
}

void booking_action_cmd_init(struct booking_action_cmd *ac, const char *id,
			     enum booking_action action, const struct idem_key *idem,
			     const struct principal *who)
{
	ac->cmd.apply = action_apply;
	snprintf(ac->id, sizeof(ac->id), "%s", id);
	ac->action = action;
	ac->today = inventory_today();
	ac->idem = *idem;
	snprintf(ac->idem.principal, sizeof(ac->idem.principal), "%s", who->sub);
	ac->who = *who;
}

void booking_action_cmd_release(struct booking_action_cmd *ac)
{
	outcome_release(&ac->out);
}

/* --- the saga's steps --- */

/* Ends a pending booking as failed: its held units go back. */
static int fail_booking(struct writer_txn *wt, cJSON *doc, const char *failure, const char *pay_to,
			struct rsd_fail *f)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	if (n < 0)
		return rsd_failf(f, RSD_EIO, "", "a stored booking is corrupt");
	int err = inventory_move(wt->txn, wt->store, items, n, INV_RELEASE_HELD, f);
	booking_count(COUNT_FAILED);
	set_string(doc, "state", "failed");
	set_string(doc, "failure", failure);
	set_string(cJSON_GetObjectItem(doc, "payment"), "state", pay_to);
	return err;
}

/* Applies a step to doc. Sets *answered when it decides the booking request. */
static int step(struct writer_txn *wt, struct booking_step_cmd *sc, cJSON *doc, bool *answered,
		bool *saga_left)
{
	const char *state = get_state(doc), *ps = pay_state(doc);
	cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	bool pending = strcmp(state, "payment_pending") == 0;
	*saga_left = true;
	switch (sc->step) {
	case STEP_AUTHORIZED:
		if (!pending && strcmp(state, "failed") != 0)
			return RSD_OK; /* a repeated step: the booking has moved on already */
		set_string(pay, "authorization_id", sc->authorization_id);
		if (!pending) {
			/* The authorization came after we gave up (or after a decline): undo it. */
			if (strcmp(ps, "voided") != 0)
				set_string(pay, "state", "void_pending");
			return RSD_OK;
		}
		{
			struct inv_item items[HOLD_ITEMS_MAX];
			int n = hold_items(doc, items, HOLD_ITEMS_MAX);
			if (n < 0)
				return RSD_EIO;
			int err = inventory_move(wt->txn, wt->store, items, n, INV_CONFIRM,
						 &sc->cmd.fail);
			if (err)
				return err;
		}
		set_string(doc, "state", "confirmed");
		set_string(pay, "state", "authorized");
		booking_count(COUNT_CONFIRMED);
		*answered = true;
		return RSD_OK;
	case STEP_DECLINED:
		if (!pending)
			return RSD_OK;
		*answered = true;
		*saga_left = false;
		return fail_booking(wt, doc, "declined", "declined", &sc->cmd.fail);
	case STEP_GAVE_UP:
		if (!pending)
			return RSD_OK;
		*answered = true;
		return fail_booking(wt, doc, "payment_unavailable", "void_pending", &sc->cmd.fail);
	case STEP_CAPTURED:
		/* ps points into pay's "state", which set_string frees: decide first. */
		*saga_left = strcmp(ps, "refund_pending") == 0;
		cJSON_ReplaceItemInObject(pay, "captured", cJSON_CreateTrue());
		if (strcmp(ps, "authorized") == 0)
			set_string(pay, "state", "captured");
		return RSD_OK;
	case STEP_VOIDED:
		set_string(pay, "state", "voided");
		*saga_left = false;
		return RSD_OK;
	case STEP_REFUNDED:
		set_string(pay, "state", "refunded");
		*saga_left = false;
		return RSD_OK;
	}
	return RSD_EINTERNAL;
}

static int step_apply(struct writer_txn *wt, struct command *cmd)
{
	struct booking_step_cmd *sc = (struct booking_step_cmd *)cmd;
	uint64_t now_ms = rsd_now_ms();
	cJSON *doc = NULL;
	int err = booking_load(wt->txn, wt->store, sc->id, &doc);
	if (err)
		return rsd_failf(&cmd->fail, err, "", "booking '%.48s' cannot be read", sc->id);
	bool answered = false, saga_left = true;
	char *text = NULL;
	bool authorize_over = sc->step == STEP_AUTHORIZED || sc->step == STEP_DECLINED ||
			      sc->step == STEP_GAVE_UP;
	if ((err = step(wt, sc, doc, &answered, &saga_left)) ||
	    (authorize_over && (err = token_put(wt->txn, wt->store, sc->id, NULL))) ||
	    (err = save(wt, doc, now_ms, &text)) ||
	    (err = saga_mark(wt->txn, wt->store, sc->id, saga_left)))
		goto out;
	if (answered) {
		outcome_of(doc, text, &sc->out);
		sc->answered = true;
		const char *key = json_get_string(doc, "request_key");
		if (key)
			err = idempotency_finish(wt->txn, wt->store,
						 json_get_string(doc, "principal"), key, &sc->out);
	}
out:
	cJSON_free(text);
	cJSON_Delete(doc);
	return err;
}

void booking_step_cmd_init(struct booking_step_cmd *sc, const char *id, enum booking_step st,
			   const char *authorization_id, const char *reason)
{
	memset(sc, 0, sizeof(*sc));
	sc->cmd.apply = step_apply;
	snprintf(sc->id, sizeof(sc->id), "%s", id);
	sc->step = st;
	snprintf(sc->authorization_id, sizeof(sc->authorization_id), "%s",
		 authorization_id ? authorization_id : "");
	snprintf(sc->reason, sizeof(sc->reason), "%s", reason ? reason : "");
}

void booking_step_cmd_release(struct booking_step_cmd *sc)
{
	outcome_release(&sc->out);
}

/* --- the read model --- */

static int sql_fail(sqlite3 *db, struct rsd_fail *f)
{
	return rsd_failf(f, RSD_EIO, "", "projecting a booking: %s", sqlite3_errmsg(db));
}

/* Runs sql (a string literal, kept prepared in stmts) with text/integer binds given as a
 * format: 't' text, 'i' int64. The statement is reset before returning, so none stays active
 * across the projector's COMMIT or ROLLBACK, and text is bound without a copy. */
static int exec_binds(sqlite3 *db, struct readmodel_stmts *stmts, const char *sql,
		      struct rsd_fail *f, const char *types, ...)
{
	sqlite3_stmt *st = readmodel_stmts_get(stmts, db, sql);
	if (st == NULL)
		return sql_fail(db, f);
	va_list ap;
	va_start(ap, types);
	for (int i = 0; types[i]; i++) {
		if (types[i] == 't') {
			const char *v = va_arg(ap, const char *);
			sqlite3_bind_text(st, i + 1, v, -1, SQLITE_STATIC);
		} else {
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		}
	}
	va_end(ap);
	int rc = sqlite3_step(st);
	int err = rc == SQLITE_DONE ? RSD_OK : sql_fail(db, f);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err;
}

static bool sells_nights(const char *state)
{
	return strcmp(state, "confirmed") == 0 || strcmp(state, "checked_in") == 0 ||
	       strcmp(state, "checked_out") == 0 || strcmp(state, "no_show") == 0;
}

static int project_booking(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
			   struct rsd_fail *f)
{
	cJSON *doc = cJSON_ParseWithLength(ev->data, ev->data_len);
	if (!doc)
		return rsd_failf(f, RSD_EIO, "", "a booking event is not JSON");
	const char *id = json_get_string(doc, "id");
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	int32_t arrival = INT32_MAX, departure = 0;
	for (int i = 0; i < n; i++) {
		arrival = items[i].from_day < arrival ? items[i].from_day : arrival;
		departure = items[i].to_day > departure ? items[i].to_day : departure;
	}
	int err = RSD_OK;
	if (!id || n < 1) {
		err = rsd_failf(f, RSD_EIO, "", "a booking event has no id or items");
		goto out;
	}
	char *text = json_print(doc);
	const cJSON *version = cJSON_GetObjectItem(doc, "version");
	err = exec_binds(db, stmts,
			 "INSERT INTO bookings (id, doc, resort_id, arrival, departure, version)"
			 " VALUES (?1, ?2, (SELECT resort_id FROM products WHERE id = ?3), ?4, ?5,"
			 " ?6) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc,"
			 " arrival = excluded.arrival, departure = excluded.departure,"
			 " version = excluded.version",
			 f, "tttiii", id, text, items[0].product_id, (int64_t)arrival,
			 (int64_t)departure, (int64_t)(version ? version->valuedouble : 0));
	cJSON_free(text);
	if (!err)
		err = exec_binds(db, stmts, "DELETE FROM booking_nights WHERE booking_id = ?1", f,
				 "t", id);
	for (int i = 0; i < n && !err && sells_nights(get_state(doc)); i++)
		for (int32_t d = items[i].from_day; d < items[i].to_day && !err; d++)
			err = exec_binds(db, stmts,
					 "INSERT INTO booking_nights VALUES (?1, ?2, ?3, ?4)"
					 " ON CONFLICT DO UPDATE SET qty = qty + excluded.qty",
					 f, "ttii", id, items[i].product_id, (int64_t)d,
					 (int64_t)items[i].qty);
out:
	cJSON_Delete(doc);
	return err;
}

static int project_capacity(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
			    struct rsd_fail *f)
{
	cJSON *e = cJSON_ParseWithLength(ev->data, ev->data_len);
	if (!e)
		return rsd_failf(f, RSD_EIO, "", "an inventory event is not JSON");
	const cJSON *capacity = cJSON_GetObjectItem(e, "capacity");
	const char *product = json_get_string(e, "product_id");
	int32_t from, to;
	uint16_t slot;
	int err = RSD_OK;
	if (capacity && product && !price_parse_date(json_get_string(e, "from"), &from) &&
	    !price_parse_date(json_get_string(e, "to"), &to) &&
	    !inventory_parse_slot(json_get_string(e, "slot"), &slot))
		for (int32_t d = from; d < to && !err; d++)
			err = exec_binds(
				db, stmts,
				"INSERT OR REPLACE INTO inventory_capacity VALUES (?1, ?2, ?3,"
				" ?4)",
				f, "tiii", product, (int64_t)d, (int64_t)slot,
				(int64_t)capacity->valuedouble);
	cJSON_Delete(e);
	return err;
}

int booking_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		    struct rsd_fail *f)
{
	switch (ev->type) {
	case EVENT_BOOKING_CHANGED: return project_booking(db, stmts, ev, f);
	case EVENT_INVENTORY_SET: return project_capacity(db, stmts, ev, f);
	default: return RSD_OK; /* holds live in LMDB only */
	}
}

/* --- reads of the read model --- */

int booking_list(struct readmodel_reader *r, const struct booking_filter *flt, int limit,
		 cJSON **items, char *next, size_t next_len, struct rsd_fail *f)
{
	char sql[1024];
	int n = snprintf(sql, sizeof(sql), "SELECT doc, arrival, id FROM bookings WHERE 1");
	if (flt->state[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND state = ?1");
	if (flt->resort[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND resort_id = ?2");
	if (flt->product[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n,
			      " AND EXISTS (SELECT 1 FROM json_each(doc, '$.items') j"
			      " WHERE j.value ->> 'product_id' = ?3)");
	if (flt->has_range)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n,
			      " AND arrival < ?5 AND departure > ?4");
	if (flt->principal[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND principal = ?6");
	if (flt->after_id[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n,
			      " AND (arrival > ?7 OR (arrival = ?7 AND id > ?8))");
	snprintf(sql + n, sizeof(sql) - (size_t)n, " ORDER BY arrival, id LIMIT ?9");
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return rsd_failf(f, RSD_EIO, "", "listing bookings: %s", sqlite3_errmsg(r->db));
	sqlite3_bind_text(st, 1, flt->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, flt->resort, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, flt->product, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, flt->from_day);
	sqlite3_bind_int(st, 5, flt->to_day);
	sqlite3_bind_text(st, 6, flt->principal, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, flt->after_arrival);
	sqlite3_bind_text(st, 8, flt->after_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 9, limit + 1);
	cJSON *arr = cJSON_CreateArray();
	int rc, count = 0;
	next[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count++ == limit) {
			break;
		}
		cJSON_AddItemToArray(arr, cJSON_Parse((const char *)sqlite3_column_text(st, 0)));
		snprintf(next, next_len, "%d:%s", sqlite3_column_int(st, 1),
			 (const char *)sqlite3_column_text(st, 2));
	}
	if (rc != SQLITE_ROW)
		next[0] = '\0'; /* the last page */
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return rsd_failf(f, RSD_EIO, "", "listing bookings failed");
	}
	*items = arr;
	return RSD_OK;
}

int booking_occupancy(struct readmodel_reader *r, const struct booking_filter *flt, cJSON **out,
		      struct rsd_fail *f)
{
	/* One row per day: sold units and capacity of the chosen products, arrivals and
	 * departures of bookings that sell nights. */
	static const char sql[] =
		"WITH RECURSIVE days(d) AS (SELECT ?1 UNION ALL SELECT d + 1 FROM days WHERE d + 1 "
		"< ?2),"
		" chosen(id) AS (SELECT id FROM products WHERE deleted = 0"
		"   AND (?3 = '' OR id = ?3) AND (?4 = '' OR resort_id = ?4))"
		" SELECT d,"
		"  (SELECT total(capacity) FROM inventory_capacity c WHERE c.day = d AND c.slot = 0"
		"    AND c.product_id IN chosen),"
		"  (SELECT total(qty) FROM booking_nights n WHERE n.day = d"
		"    AND n.product_id IN chosen),"
		"  (SELECT count(*) FROM bookings b WHERE b.arrival = d"
		"    AND b.state IN ('confirmed', 'checked_in', 'checked_out', 'no_show')"
		"    AND EXISTS (SELECT 1 FROM booking_nights n WHERE n.booking_id = b.id"
		"      AND n.product_id IN chosen)),"
		"  (SELECT count(*) FROM bookings b WHERE b.departure = d"
		"    AND b.state IN ('confirmed', 'checked_in', 'checked_out', 'no_show')"
		"    AND EXISTS (SELECT 1 FROM booking_nights n WHERE n.booking_id = b.id"
		"      AND n.product_id IN chosen))"
		" FROM days";
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (!st)
		return rsd_failf(f, RSD_EIO, "", "the occupancy report failed");
	sqlite3_bind_int(st, 1, flt->from_day);
	sqlite3_bind_int(st, 2, flt->to_day);
	sqlite3_bind_text(st, 3, flt->product, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, flt->resort, -1, SQLITE_STATIC);
	cJSON *doc = cJSON_CreateObject(), *days = cJSON_AddArrayToObject(doc, "days");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char date[11];
		price_format_date(sqlite3_column_int(st, 0), date);
		double capacity = sqlite3_column_double(st, 1), sold = sqlite3_column_double(st, 2);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "date", date);
		cJSON_AddNumberToObject(o, "capacity", capacity);
		cJSON_AddNumberToObject(o, "sold", sold);
		if (capacity > 0)
			cJSON_AddNumberToObject(o, "occupancy", sold / capacity);
		else
			cJSON_AddNullToObject(o, "occupancy");
		cJSON_AddNumberToObject(o, "arrivals", sqlite3_column_int(st, 3));
		cJSON_AddNumberToObject(o, "departures", sqlite3_column_int(st, 4));
		cJSON_AddItemToArray(days, o);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(doc);
		return rsd_failf(f, RSD_EIO, "", "the occupancy report failed");
	}
	*out = doc;
	return RSD_OK;
}
