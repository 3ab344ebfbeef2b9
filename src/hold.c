/*
 * hold.c — holds and the sweeper (see hold.h).
 *
 * Value in the holds database: expiry ms (be64), state (u8), then the JSON document.
 * A held hold has an entry in the expiry index at its expiry; every other state has
 * none. The sweeper walks the index in time order, so its cost is what expired, never
 * the number of holds.
 */
#include "hold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "catalog.h"
#include "eventlog.h"
#include "json.h"
#include "price.h"
#include "scope.h"
#include "session.h"
#include "banned.h"

#define PREFIX_BYTES 9
#define COUNT(a)     (sizeof(a) / sizeof((a)[0]))

const char *hold_state_name(enum hold_state state)
{
	switch (state) {
	case HOLD_HELD: return "held";
	case HOLD_RELEASED: return "released";
	case HOLD_EXPIRED: return "expired";
	case HOLD_BOOKED: return "booked";
	}
	return "unknown";
}

/* --- decoding --- */

static const struct json_field request_fields[] = {
	{"items", JSON_ARRAY, JSON_REQUIRED, 0, 0},
	{"guest", JSON_OBJECT, JSON_REQUIRED, 0, 0},
};
static const struct json_field item_fields[] = {
	{"product_id", JSON_STRING, JSON_REQUIRED, 1, ENTITY_ID_BYTES_MAX},
	{"from", JSON_STRING, JSON_REQUIRED, 10, 10},
	{"to", JSON_STRING, JSON_REQUIRED, 10, 10},
	{"slot", JSON_STRING, JSON_NULLABLE, 5, 5},
	{"qty", JSON_INT, JSON_REQUIRED, 1, HOLD_QTY_MAX},
};
static const struct json_field guest_fields[] = {
	{"name", JSON_STRING, JSON_REQUIRED, 1, GUEST_NAME_CHARS_MAX},
	{"email", JSON_STRING, JSON_REQUIRED, 3, GUEST_EMAIL_BYTES_MAX},
	{"phone", JSON_STRING, JSON_NULLABLE, 3, GUEST_PHONE_BYTES_MAX},
};

int hold_check_guest(const cJSON *guest, const char *path, struct rsd_fail *f)
{
	int err = json_check_nested(guest, path, guest_fields, COUNT(guest_fields), f);
	if (err)
		return err;
	const char *email = json_get_string(guest, "email");
	const char *at = strchr(email, '@');
	if (!at || at == email || !strchr(at, '.') || strchr(email, ' '))
		return rsd_failf(f, RSD_EINVAL, "guest.email",
				 "'guest.email' must be an e-mail address");
	return RSD_OK;
}

/* Decodes items[i] (already checked to be an object) into it. */
static int decode_item(const cJSON *obj, int i, struct hold_item *it, struct rsd_fail *f)
{
	char path[24];
	snprintf(path, sizeof(path), "items[%d]", i);
	int err = json_check_nested(obj, path, item_fields, COUNT(item_fields), f);
	if (err)
		return err;
	memset(it, 0, sizeof(*it));
	snprintf(it->inv.product_id, sizeof(it->inv.product_id), "%s",
		 json_get_string(obj, "product_id"));
	it->inv.qty = (uint32_t)cJSON_GetObjectItem(obj, "qty")->valuedouble;
	if ((err = inventory_decode_range(obj, &it->inv.from_day, &it->inv.to_day, STAY_NIGHTS_MAX,
					  f))) {
		char member[16];
		snprintf(member, sizeof(member), "%.15s", f->field);
		snprintf(f->field, sizeof(f->field), "%.23s.%.15s", path, member);
		return err;
	}
	if (inventory_parse_slot(json_get_string(obj, "slot"), &it->inv.slot) != RSD_OK) {
		rsd_failf(f, RSD_EINVAL, "", "'%s.slot' must be a time HH:MM", path);
		snprintf(f->field, sizeof(f->field), "%.23s.slot", path);
		return RSD_EINVAL;
	}
	return RSD_OK;
}

int hold_decode(const char *body, size_t len, struct hold_request *out, struct rsd_fail *f)
{
	memset(out, 0, sizeof(*out));
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	if ((err = json_check_object(obj, request_fields, COUNT(request_fields), f)))
		goto out;
	const cJSON *items = cJSON_GetObjectItem(obj, "items");
	int n = cJSON_GetArraySize(items);
	if (n < 1 || n > HOLD_ITEMS_MAX) {
		err = rsd_failf(f, RSD_EINVAL, "items", "'items' must hold 1 to %d items",
				HOLD_ITEMS_MAX);
		goto out;
	}
	for (int i = 0; i < n && !err; i++)
		err = decode_item(cJSON_GetArrayItem(items, i), i, &out->items[i], f);
	if (err)
		goto out;
	out->n = n;
	cJSON *guest = cJSON_GetObjectItem(obj, "guest");
	if ((err = hold_check_guest(guest, "guest", f)))
		goto out;
	out->guest = cJSON_DetachItemViaPointer(obj, guest);
out:
	cJSON_Delete(obj);
	return err;
}

int hold_price(struct readmodel_reader *r, struct hold_request *req, struct rsd_fail *f)
{
	req->total = 0;
	for (int i = 0; i < req->n; i++) {
		struct hold_item *it = &req->items[i];
		struct catalog_quote q;
		int err = catalog_quote(r, it->inv.product_id, it->inv.from_day, it->inv.to_day,
					it->inv.qty, &q, f);
		if (err) {
			snprintf(f->field, sizeof(f->field), "items[%d].product_id", i);
			return err;
		}
		if (q.type == PRODUCT_PACKAGE)
			return rsd_failf(f, RSD_ECONFLICT, "",
					 "'items[%d]' is a package: hold"
					 " its components",
					 i);
		if (i == 0)
			memcpy(req->currency, q.currency, sizeof(req->currency));
		else if (strcmp(req->currency, q.currency) != 0)
			return rsd_failf(f, RSD_ECONFLICT, "",
					 "'items[%d]' is priced in %s, the"
					 " first item in %s: one hold has one currency",
					 i, q.currency, req->currency);
		it->amount = q.amount;
		it->free_cancel_days = q.free_cancel_days;
		it->cancel_fee_percent = q.cancel_fee_percent;
		req->total += q.amount;
	}
	return RSD_OK;
}

void hold_request_release(struct hold_request *req)
{
	cJSON_Delete(req->guest);
	req->guest = NULL;
}

/* --- storage --- */

/* The stored value of hold id (prefix and document); borrowed until txn ends. */
int hold_raw(MDB_txn *txn, struct store *s, const char *id, MDB_val *v)
{
	if (strlen(id) > ENTITY_ID_BYTES_MAX)
		return RSD_ENOTFOUND;
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
	int rc = mdb_get(txn, s->holds, &k, v);
	if (rc)
		return store_err(rc);
	return v->mv_size <= PREFIX_BYTES ? RSD_EIO : RSD_OK;
}

/* A record's JSON document (inside rec): the one place that knows the prefix's size. */
static const char *record_json(const void *rec, size_t len, size_t *json_len)
{
	*json_len = len - PREFIX_BYTES;
	return (const char *)rec + PREFIX_BYTES;
}

int hold_decode_record(const MDB_val *v, cJSON **doc, enum hold_state *state, uint64_t *expiry_ms)
{
	const unsigned char *p = v->mv_data;
	*expiry_ms = rsd_get_be64(p);
	*state = (enum hold_state)p[8];
	size_t len;
	const char *json = record_json(v->mv_data, v->mv_size, &len);
	if (doc && !(*doc = cJSON_ParseWithLength(json, len)))
		return RSD_EIO;
	return RSD_OK;
}

int hold_load(MDB_txn *txn, struct store *s, const char *id, cJSON **doc, enum hold_state *state,
	      uint64_t *expiry_ms)
{
	MDB_val v;
	int err = hold_raw(txn, s, id, &v);
	return err ? err : hold_decode_record(&v, doc, state, expiry_ms);
}

int hold_record_put(MDB_txn *txn, struct store *s, const char *id, const void *rec, size_t len)
{
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
	MDB_val v = {.mv_size = len, .mv_data = (void *)rec};
	return store_err(mdb_put(txn, s->holds, &k, &v, 0));
}

unsigned char *hold_record(cJSON *doc, enum hold_state state, uint64_t expiry_ms, size_t *len)
{
	cJSON_ReplaceItemInObject(doc, "state", cJSON_CreateString(hold_state_name(state)));
	cJSON *version = cJSON_GetObjectItem(doc, "version");
	cJSON_SetNumberValue(version, version->valuedouble + 1);
	char *text = json_print(doc);
	size_t n = strlen(text);
	unsigned char *buf = rsd_malloc(PREFIX_BYTES + n);
	rsd_put_be64(buf, expiry_ms);
	buf[8] = (unsigned char)state;
	memcpy(buf + PREFIX_BYTES, text, n);
	cJSON_free(text);
	*len = PREFIX_BYTES + n;
	return buf;
}

int hold_store(MDB_txn *txn, struct store *s, cJSON *doc, enum hold_state state, uint64_t expiry_ms)
{
	size_t len;
	unsigned char *buf = hold_record(doc, state, expiry_ms, &len);
	int err = hold_record_put(txn, s, json_get_string(doc, "id"), buf, len);
	free(buf);
	return err;
}

int hold_get(MDB_txn *txn, struct store *s, const char *id, char **json, size_t *len)
{
	MDB_val v;
	int err = hold_raw(txn, s, id, &v);
	if (err)
		return err;
	const char *text = record_json(v.mv_data, v.mv_size, len);
	*json = rsd_strndup(text, *len);
	return RSD_OK;
}

int hold_items(const cJSON *doc, struct inv_item *items, int max)
{
	const cJSON *arr = cJSON_GetObjectItem(doc, "items"), *it;
	int n = 0;
	cJSON_ArrayForEach(it, arr)
	{
		if (n == max)
			return -1;
		struct inv_item *out = &items[n++];
		memset(out, 0, sizeof(*out));
		const char *product = json_get_string(it, "product_id");
		const char *from = json_get_string(it, "from"), *to = json_get_string(it, "to");
		const cJSON *qty = cJSON_GetObjectItem(it, "qty");
		if (!product || !from || !to || !cJSON_IsNumber(qty) ||
		    strlen(product) > ENTITY_ID_BYTES_MAX ||
		    price_parse_date(from, &out->from_day) || price_parse_date(to, &out->to_day) ||
		    inventory_parse_slot(json_get_string(it, "slot"), &out->slot))
			return -1;
		snprintf(out->product_id, sizeof(out->product_id), "%s", product);
		out->qty = (uint32_t)qty->valuedouble;
	}
	return n;
}

/* --- POST /v1/holds --- */

static cJSON *item_json(const struct hold_item *it, const char *currency)
{
	char from[11], to[11], slot[6];
	price_format_date(it->inv.from_day, from);
	price_format_date(it->inv.to_day, to);
	inventory_format_slot(it->inv.slot, slot);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "product_id", it->inv.product_id);
	cJSON_AddStringToObject(o, "from", from);
	cJSON_AddStringToObject(o, "to", to);
	if (slot[0])
		cJSON_AddStringToObject(o, "slot", slot);
	cJSON_AddNumberToObject(o, "qty", it->inv.qty);
	cJSON_AddNumberToObject(o, "amount", (double)it->amount);
	cJSON_AddStringToObject(o, "currency", currency);
	cJSON *c = cJSON_AddObjectToObject(o, "cancellation");
	cJSON_AddNumberToObject(c, "free_days", it->free_cancel_days);
	cJSON_AddNumberToObject(c, "fee_percent", it->cancel_fee_percent);
	return o;
}

static cJSON *hold_doc(const struct hold_cmd *hc, const char *id, uint64_t now_ms,
		       uint64_t expiry_ms, const char *principal)
{
	char created[32], expires[32];
	rsd_time_format(now_ms, created, sizeof(created));
	rsd_time_format(expiry_ms, expires, sizeof(expires));
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "id", id);
	cJSON_AddStringToObject(d, "state", "held");
	cJSON_AddStringToObject(d, "created_at", created);
	cJSON_AddStringToObject(d, "expires_at", expires);
	cJSON *items = cJSON_AddArrayToObject(d, "items");
	for (int i = 0; i < hc->req.n; i++)
		cJSON_AddItemToArray(items, item_json(&hc->req.items[i], hc->req.currency));
	cJSON *total = cJSON_AddObjectToObject(d, "total");
	cJSON_AddNumberToObject(total, "amount", (double)hc->req.total);
	cJSON_AddStringToObject(total, "currency", hc->req.currency);
	cJSON_AddItemToObject(d, "guest", cJSON_Duplicate(hc->req.guest, 1));
	cJSON_AddStringToObject(d, "principal", principal);
	cJSON_AddNullToObject(d, "booking_id");
	cJSON_AddNumberToObject(d, "version", 0); /* hold_store makes it 1 */
	return d;
}

static void hold_prepare(struct hold_cmd *hc);

/* A hold built longer ago than this (a long wait in the writer's queue) is built again at
 * commit time, so that its TTL counts from when its units are taken. */
#define HOLD_PREPARED_FRESH_MS 1000

static int hold_apply(struct writer_txn *wt, struct command *cmd)
{
	struct hold_cmd *hc = (struct hold_cmd *)cmd;
	uint64_t now_ms = rsd_now_ms();
	int err;
	bool replay;
	if ((err = idempotency_begin(wt->txn, wt->store, &hc->idem, now_ms, &replay, &hc->out,
				     &cmd->fail)) ||
	    replay)
		return err;
	if (hc->refuse_err)
		return idempotency_refuse(wt->txn, wt->store, &hc->idem, now_ms, &hc->out,
					  hc->refuse_err, &hc->refuse_fail, NULL);
	struct inv_item items[HOLD_ITEMS_MAX];
	for (int i = 0; i < hc->req.n; i++)
		items[i] = hc->req.items[i].inv;
	cJSON *why = NULL;
	struct rsd_fail f = {0};
	err = inventory_take(wt->txn, wt->store, items, hc->req.n, hc->today, false, &why, &f);
	if (err == RSD_ECONFLICT) {
		booking_count(COUNT_HOLD_REFUSED);
		return idempotency_refuse(wt->txn, wt->store, &hc->idem, now_ms, &hc->out, err, &f,
					  why);
	}
	if (err)
		return err;
	if (now_ms > hc->prepared_ms + HOLD_PREPARED_FRESH_MS) {
		free(hc->record);
		hold_prepare(hc);
	}
	size_t len;
	const char *text = record_json(hc->record, hc->record_len, &len);
	if ((err = hold_record_put(wt->txn, wt->store, hc->id, hc->record, hc->record_len)) ||
	    (err = store_expiry_add(wt->txn, wt->store, hc->expiry_ms, EXPIRY_HOLD, hc->id,
				    strlen(hc->id))))
		return err;
	booking_count(COUNT_HOLD_CREATED);
	outcome_set(&hc->out, 201, text, len);
	snprintf(hc->out.location, sizeof(hc->out.location), "/v1/holds/%s", hc->id);
	if ((err = idempotency_remember(wt->txn, wt->store, &hc->idem, now_ms, &hc->out)) == RSD_OK)
		err = writer_emit(wt, EVENT_HOLD_CREATED, text, len, NULL);
	return err;
}

/* Builds the record of the hold hc would create (hold_cmd). JSON building and printing were
 * a tenth of the writer's time in the booking benchmark; here they run on the submitter's
 * thread, in parallel with the writer. */
static void hold_prepare(struct hold_cmd *hc)
{
	uint64_t now_ms = rsd_now_ms();
	hc->prepared_ms = now_ms;
	rsd_id_ordered("ho_", hc->id, sizeof(hc->id));
	hc->expiry_ms = now_ms + hc->ttl_ms;
	cJSON *doc = hold_doc(hc, hc->id, now_ms, hc->expiry_ms, hc->idem.principal);
	hc->record = hold_record(doc, HOLD_HELD, hc->expiry_ms, &hc->record_len);
	cJSON_Delete(doc);
}

void hold_cmd_init(struct hold_cmd *hc, struct hold_request *req, const struct idem_key *idem,
		   const char *principal, uint64_t ttl_ms)
{
	memset(hc, 0, sizeof(*hc));
	hc->cmd.apply = hold_apply;
	hc->req = *req;
	req->guest = NULL; /* moved */
	hc->idem = *idem;
	snprintf(hc->idem.principal, sizeof(hc->idem.principal), "%s", principal);
	hc->ttl_ms = ttl_ms;
	hc->today = inventory_today();
	hold_prepare(hc);
}

void hold_cmd_release(struct hold_cmd *hc)
{
	hold_request_release(&hc->req);
	outcome_release(&hc->out);
	free(hc->record);
	hc->record = NULL;
}

/* --- release and expiry --- */

/* Ends a held hold: gives its units back and records why. */
static int end_hold(struct writer_txn *wt, cJSON *doc, uint64_t expiry_ms, enum hold_state to,
		    struct rsd_fail *f)
{
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	if (n < 0)
		return rsd_failf(f, RSD_EIO, "", "a stored hold is corrupt");
	const char *id = json_get_string(doc, "id");
	int err;
	if ((err = inventory_move(wt->txn, wt->store, items, n, INV_RELEASE_HELD, f)) ||
	    (err = store_expiry_del(wt->txn, wt->store, expiry_ms, EXPIRY_HOLD, id, strlen(id))) ||
	    (err = hold_store(wt->txn, wt->store, doc, to, expiry_ms)))
		return err;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", id);
	cJSON_AddStringToObject(ev, "state", hold_state_name(to));
	return writer_emit_json(wt, EVENT_HOLD_ENDED, ev);
}

static int release_apply(struct writer_txn *wt, struct command *cmd)
{
	struct hold_release_cmd *rc = (struct hold_release_cmd *)cmd;
	cJSON *doc = NULL;
	enum hold_state state;
	uint64_t expiry_ms;
	int err = hold_load(wt->txn, wt->store, rc->id, &doc, &state, &expiry_ms);
	if (err == RSD_OK && hold_access(wt->txn, wt->store, doc, &rc->who) != RSD_OK) {
		cJSON_Delete(doc);
		err = RSD_ENOTFOUND;
	}
	if (err == RSD_ENOTFOUND)
		return rsd_failf(&cmd->fail, err, "", "no hold with id '%.48s'", rc->id);
	if (err)
		return err;
	if (state != HOLD_HELD) {
		cJSON_Delete(doc);
		return rsd_failf(&cmd->fail, RSD_ECONFLICT, "", "the hold is %s, not held",
				 hold_state_name(state));
	}
	if ((err = end_hold(wt, doc, expiry_ms, HOLD_RELEASED, &cmd->fail)) == RSD_OK) {
		booking_count(COUNT_HOLD_RELEASED);
		char *text = json_print(doc);
		outcome_set(&rc->out, 200, text, strlen(text));
		cJSON_free(text);
	}
	cJSON_Delete(doc);
	return err;
}

void hold_release_cmd_init(struct hold_release_cmd *rc, const char *id, const struct principal *who)
{
	memset(rc, 0, sizeof(*rc));
	rc->cmd.apply = release_apply;
	snprintf(rc->id, sizeof(rc->id), "%s", id);
	rc->who = *who;
}

int hold_access(MDB_txn *txn, struct store *s, const cJSON *doc, const struct principal *who)
{
	const char *owner = json_get_string(doc, "principal");
	if (who->sub[0] && owner && strcmp(owner, who->sub) == 0)
		return RSD_OK;
	return hold_staff_access(txn, s, doc, who);
}

int hold_staff_access(MDB_txn *txn, struct store *s, const cJSON *doc, const struct principal *who)
{
	if (who->role < ROLE_STAFF)
		return RSD_ENOTFOUND;
	if (scope_acts_for_all(who))
		return RSD_OK;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items"), *it;
	int n = 0;
	cJSON_ArrayForEach(it, items)
	{
		const char *product = json_get_string(it, "product_id");
		char resort[ENTITY_ID_BYTES_MAX + 1];
		if (!product ||
		    scope_resort_of(txn, s, product, ENTITY_PRODUCT, resort) != RSD_OK ||
		    scope_acts_for(who, resort, NULL) != RSD_OK)
			return RSD_ENOTFOUND;
		n++;
	}
	return n ? RSD_OK : RSD_ENOTFOUND;
}

/* Expires hold id if it is still held with this expiry (a booked hold has moved on). */
static int expire_hold(struct writer_txn *wt, const char *id, uint64_t ms, struct rsd_fail *f)
{
	cJSON *doc = NULL;
	enum hold_state state;
	uint64_t expiry_ms;
	int err = hold_load(wt->txn, wt->store, id, &doc, &state, &expiry_ms);
	if (err == RSD_ENOTFOUND)
		return RSD_OK;
	if (err)
		return err;
	if (state == HOLD_HELD && expiry_ms == ms)
		err = end_hold(wt, doc, expiry_ms, HOLD_EXPIRED, f);
	cJSON_Delete(doc);
	return err;
}

static int sweep_apply(struct writer_txn *wt, struct command *cmd)
{
	struct sweep_cmd *sc = (struct sweep_cmd *)cmd;
	MDB_cursor *c;
	int rc = mdb_cursor_open(wt->txn, wt->store->expiry, &c);
	if (rc)
		return store_err(rc);
	/* Collect first: the handlers below change the index the cursor walks. */
	struct {
		uint64_t ms;
		uint8_t kind;
		size_t len;
		char id[EXPIRY_ID_BYTES_MAX + 1];
	} *due = rsd_malloc(sizeof(*due) * SWEEP_BATCH_MAX);
	int n = 0;
	MDB_val k, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < SWEEP_BATCH_MAX;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;
		if (k.mv_size < 9 || k.mv_size > 9 + EXPIRY_ID_BYTES_MAX ||
		    rsd_get_be64(p) > sc->now_ms)
			break;
		due[n].ms = rsd_get_be64(p);
		due[n].kind = p[8];
		due[n].len = k.mv_size - 9;
		memcpy(due[n].id, p + 9, due[n].len);
		due[n].id[due[n].len] = '\0';
		n++;
	}
	mdb_cursor_close(c);
	sc->more = n == SWEEP_BATCH_MAX;
	int err = RSD_OK;
	for (int i = 0; i < n && !err; i++) {
		if (due[i].kind == EXPIRY_HOLD) {
			err = expire_hold(wt, due[i].id, due[i].ms, &cmd->fail);
			sc->holds_expired += !err;
		} else if (due[i].kind == EXPIRY_SESSION || due[i].kind == EXPIRY_REFRESH) {
			err = session_expire(wt->txn, wt->store, due[i].kind, due[i].id,
					     due[i].len);
			sc->sign_in_removed += !err;
		} else {
			err = idempotency_expire(wt->txn, wt->store, due[i].id, due[i].len,
						 due[i].ms);
			sc->keys_removed += !err;
		}
		if (!err)
			err = store_expiry_del(wt->txn, wt->store, due[i].ms, due[i].kind,
					       due[i].id, due[i].len);
	}
	free(due);
	return err;
}

void sweep_cmd_init(struct sweep_cmd *sc, uint64_t now_ms)
{
	memset(sc, 0, sizeof(*sc));
	sc->cmd.apply = sweep_apply;
	sc->now_ms = now_ms;
}
