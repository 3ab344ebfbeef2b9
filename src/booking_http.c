/*
 * booking_http.c — /v1/holds and /v1/bookings handlers: decode, price from the catalog
 * read model, submit the command, reply its outcome. Replies come from LMDB (the
 * command's own outcome or a snapshot), never from the read model, so they do not wait
 * for the projector. A booking paid through the http provider waits (parked, the worker
 * free) up to booking_wait_ms for its saga's answer, else answers 202.
 */
#include "booking_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "catalog.h"
#include "hold.h"
#include "http.h"
#include "saga.h"
#include "scope.h"
#include "banned.h"

/* The request's Idempotency-Key; false (after replying 400) when it is malformed. The key
 * stands for this method, path (a cancel of A is not a cancel of B) and body. */
static bool idem_of(struct http_req *req, struct idem_key *k)
{
	struct rsd_fail f = {0};
	size_t len;
	const char *body = http_req_body(req, &len);
	if (idempotency_key_init(k, http_req_header(req, "Idempotency-Key"),
				 http_req_principal(req), http_req_method(req), http_req_path(req),
				 body, len, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return false;
	}
	return true;
}

static void reply_failed(struct http_req *req, struct command *cmd, int result)
{
	http_reply_error(req, result, &cmd->fail);
}

/* --- holds --- */

/* Replies o and frees its body. The reply frees the request's arena, and with it the
 * command that o came from, so callers move o out of the command and release the
 * command first. */
static void reply_owned(struct http_req *req, struct outcome *o)
{
	http_reply_outcome(req, o);
	outcome_release(o);
}

/* Takes the outcome out of a command (which then owns nothing of it). */
static struct outcome take_outcome(struct outcome *from)
{
	struct outcome o = *from;
	from->body = NULL;
	from->len = 0;
	return o;
}

static void after_hold(struct http_req *req, struct command *cmd, int result)
{
	struct hold_cmd *hc = (struct hold_cmd *)cmd;
	struct outcome o = take_outcome(&hc->out);
	hold_cmd_release(hc);
	if (result != RSD_OK) {
		outcome_release(&o);
		reply_failed(req, cmd, result); /* reads cmd->fail before the reply frees it */
	} else {
		reply_owned(req, &o);
	}
}

void booking_http_hold_create(struct http_req *req)
{
	struct idem_key idem;
	if (!idem_of(req, &idem))
		return;
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	struct hold_request hr;
	int err = hold_decode(body, len, &hr, &f), price_err = RSD_OK;
	if (!err)
		price_err = hold_price(http_req_reader(req), &hr, &f);
	/* A stay the catalog refuses is the key's answer too (a retry must not see a price
	 * that changed since); a malformed body or a failing read is not. */
	bool refusal = price_err == RSD_ENOTFOUND || price_err == RSD_ECONFLICT;
	if (err || (price_err && (!refusal || !idem.present))) {
		hold_request_release(&hr);
		http_reply_error(req, err ? err : price_err, &f);
		return;
	}
	struct hold_cmd *hc = arena_alloc(http_req_arena(req), sizeof(*hc));
	hold_cmd_init(hc, &hr, &idem, http_req_principal(req),
		      (uint64_t)http_req_server(req)->config->hold_ttl_s * 1000);
	hc->refuse_err = price_err;
	hc->refuse_fail = f;
	http_submit_durable(req, &hc->cmd, after_hold);
}

/* Replies a hold or booking as LMDB has it now. */
static void reply_stored(struct http_req *req, const char *id, bool booking)
{
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	char *json = NULL;
	size_t len = 0;
	int err = !txn	    ? RSD_EIO
		  : booking ? booking_get(txn, r->store, id, &json, &len)
			    : hold_get(txn, r->store, id, &json, &len);
	if (err == RSD_OK) {
		cJSON *doc = cJSON_ParseWithLength(json, len);
		if (doc == NULL || hold_access(txn, r->store, doc, http_req_who(req)) != RSD_OK) {
			free(json);
			json = NULL;
			err = RSD_ENOTFOUND;
		}
		cJSON_Delete(doc);
	}
	store_reader_end(r);
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "",
			  err == RSD_ENOTFOUND ? "no %s with id '%.48s'"
					       : "reading %s '%.48s' failed",
			  booking ? "booking" : "hold", id);
		http_reply_error(req, err, &f);
		return;
	}
	http_header_add(req, "Cache-Control", "private, no-store");
	http_reply_text(req, 200, "application/json", json, len);
	free(json);
}

void booking_http_hold_get(struct http_req *req)
{
	const char *id = http_req_id(req, "hold");
	if (id)
		reply_stored(req, id, false);
}

static void after_release(struct http_req *req, struct command *cmd, int result)
{
	struct hold_release_cmd *rc = (struct hold_release_cmd *)cmd;
	struct outcome o = take_outcome(&rc->out);
	if (result != RSD_OK) {
		outcome_release(&o);
		reply_failed(req, cmd, result);
	} else {
		reply_owned(req, &o);
	}
}

void booking_http_hold_release(struct http_req *req)
{
	const char *id = http_req_id(req, "hold");
	if (!id)
		return;
	struct hold_release_cmd *rc = arena_alloc(http_req_arena(req), sizeof(*rc));
	hold_release_cmd_init(rc, id, http_req_who(req));
	http_submit_durable(req, &rc->cmd, after_release);
}

/* --- bookings --- */

/* A booking request parked until its saga answers. Lives in the request's arena. */
struct booking_wait {
	struct saga_waiter waiter;
	struct http_req *req;
	struct booking_cmd *bc;
	bool answered;
};

static void saga_answered(struct saga_waiter *w)
{
	struct booking_wait *bw = w->arg;
	bw->answered = true;
	http_req_unpark(bw->req);
}

static void wait_over(struct http_req *req, void *arg, bool woken)
{
	struct booking_wait *bw = arg;
	struct booking_cmd *bc = bw->bc;
	if (!woken && !saga_unwait(&bw->waiter))
		return; /* the answer is on its way: its unpark calls again */
	/* Still pending: 202 with the booking. */
	struct outcome o = take_outcome(bw->answered ? &bw->waiter.out : &bc->out);
	outcome_release(&bw->waiter.out);
	booking_cmd_release(bc);
	reply_owned(req, &o);
}

static void after_booking(struct http_req *req, struct command *cmd, int result)
{
	struct booking_cmd *bc = (struct booking_cmd *)cmd;
	if (result != RSD_OK || !bc->saga) {
		struct outcome o = take_outcome(&bc->out);
		booking_cmd_release(bc);
		if (result != RSD_OK) {
			outcome_release(&o);
			reply_failed(req, cmd, result);
		} else {
			reply_owned(req, &o);
		}
		return;
	}
	int wait_ms = http_req_server(req)->config->booking_wait_ms;
	struct booking_wait *bw = arena_alloc(http_req_arena(req), sizeof(*bw));
	memset(bw, 0, sizeof(*bw));
	bw->req = req;
	bw->bc = bc;
	snprintf(bw->waiter.id, sizeof(bw->waiter.id), "%s", bc->booking_id);
	bw->waiter.fn = saga_answered;
	bw->waiter.arg = bw;
	/* Registered before the kick, so the answer cannot come before the waiter. */
	saga_wait(&bw->waiter);
	http_req_park(req, wait_ms, wait_over, bw);
	saga_kick(bc->booking_id);
}

void booking_http_create(struct http_req *req)
{
	struct idem_key idem;
	if (!idem_of(req, &idem))
		return;
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	struct booking_cmd *bc = arena_alloc(http_req_arena(req), sizeof(*bc));
	int err = booking_decode(body, len, bc, &f);
	if (!err && bc->method == PAYMENT_HTTP && !saga_http_enabled())
		err = rsd_failf(&f, RSD_EINVAL, "payment.method",
				"this resort takes no online payment (no payment_url): use desk");
	if (err) {
		booking_cmd_release(bc);
		http_reply_error(req, err, &f);
		return;
	}
	booking_cmd_init(bc, &idem, http_req_who(req));
	struct store_reader *r = http_req_state(req);
	booking_cmd_prepare(bc, r->store, store_reader_begin(r));
	store_reader_end(r);
	http_submit_durable(req, &bc->cmd, after_booking);
}

void booking_http_get(struct http_req *req)
{
	const char *id = http_req_id(req, "booking");
	if (id)
		reply_stored(req, id, true);
}

static void after_action(struct http_req *req, struct command *cmd, int result)
{
	struct booking_action_cmd *ac = (struct booking_action_cmd *)cmd;
	if (result == RSD_OK && ac->saga)
		saga_kick(ac->id);
	struct outcome o = take_outcome(&ac->out);
	booking_action_cmd_release(ac);
	if (result != RSD_OK) {
		outcome_release(&o);
		reply_failed(req, cmd, result);
	} else {
		reply_owned(req, &o);
	}
}

static struct booking_action_cmd *action_new(struct http_req *req, enum booking_action action)
{
	struct idem_key idem;
	const char *id = http_req_id(req, "booking");
	if (!id || !idem_of(req, &idem))
		return NULL;
	struct booking_action_cmd *ac = arena_alloc(http_req_arena(req), sizeof(*ac));
	memset(ac, 0, sizeof(*ac));
	booking_action_cmd_init(ac, id, action, &idem, http_req_who(req));
	return ac;
}

static void simple_action(struct http_req *req, enum booking_action action)
{
	size_t len;
	http_req_body(req, &len);
	if (len > 0) {
		http_reply_problem(req, 400, "this action takes no body", "");
		return;
	}
	struct booking_action_cmd *ac = action_new(req, action);
	if (ac)
		http_submit_durable(req, &ac->cmd, after_action);
}

void booking_http_cancel(struct http_req *req)
{
	simple_action(req, BOOKING_CANCEL);
}

void booking_http_check_in(struct http_req *req)
{
	simple_action(req, BOOKING_CHECK_IN);
}

void booking_http_check_out(struct http_req *req)
{
	simple_action(req, BOOKING_CHECK_OUT);
}

void booking_http_no_show(struct http_req *req)
{
	simple_action(req, BOOKING_NO_SHOW);
}

/* Prices the new stay of the booking's item from the catalog, as a hold would. */
static int price_change(struct http_req *req, struct booking_action_cmd *ac, struct rsd_fail *f)
{
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	cJSON *doc = NULL;
	int err = txn ? booking_load(txn, r->store, ac->id, &doc) : RSD_EIO;
	/* The writer checks again; this keeps the item count and the catalog's answers
	 * below from telling others that the booking exists. */
	if (err == RSD_OK && hold_access(txn, r->store, doc, http_req_who(req)) != RSD_OK) {
		cJSON_Delete(doc);
		doc = NULL;
		err = RSD_ENOTFOUND;
	}
	store_reader_end(r);
	if (err)
		return rsd_failf(f, err, "",
				 err == RSD_ENOTFOUND ? "no booking with id '%.48s'"
						      : "reading booking '%.48s' failed",
				 ac->id);
	struct inv_item items[HOLD_ITEMS_MAX];
	int n = hold_items(doc, items, HOLD_ITEMS_MAX);
	cJSON_Delete(doc);
	if (ac->item >= n)
		return rsd_failf(f, RSD_EINVAL, "item", "the booking has %d items", n);
	struct inv_item *it = &ac->change.inv;
	snprintf(it->product_id, sizeof(it->product_id), "%s", items[ac->item].product_id);
	it->slot = items[ac->item].slot;
	it->qty = items[ac->item].qty;
	struct catalog_quote q;
	if ((err = catalog_quote(http_req_reader(req), it->product_id, it->from_day, it->to_day,
				 it->qty, &q, f)))
		return err;
	ac->change.amount = q.amount;
	ac->change.free_cancel_days = q.free_cancel_days;
	ac->change.cancel_fee_percent = q.cancel_fee_percent;
	return RSD_OK;
}

void booking_http_change_dates(struct http_req *req)
{
	struct booking_action_cmd *ac = action_new(req, BOOKING_CHANGE_DATES);
	if (!ac)
		return;
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	int err = booking_decode_change(body, len, ac, &f);
	if (!err)
		err = price_change(req, ac, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	http_submit_durable(req, &ac->cmd, after_action);
}

/* --- the read model: lists and reports --- */

/* Copies query parameter name (at most cap - 1 bytes) into out; "" when absent. */
static int query_text(struct http_req *req, const char *name, char *out, size_t cap,
		      struct rsd_fail *f)
{
	const char *v = http_req_query(req, name);
	out[0] = '\0';
	if (!v)
		return RSD_OK;
	if (!v[0] || strlen(v) >= cap)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' must have 1 to %d characters", name,
				 (int)cap - 1);
	memcpy(out, v, strlen(v) + 1);
	return RSD_OK;
}

/* Guests list only their own bookings; staff of a resort only that resort's. */
static int scope_filter(struct http_req *req, struct booking_filter *flt, struct rsd_fail *f)
{
	const struct principal *who = http_req_who(req);
	if (who->role < ROLE_STAFF) {
		snprintf(flt->principal, sizeof(flt->principal), "%s", who->sub);
		return RSD_OK;
	}
	if (scope_acts_for_all(who))
		return RSD_OK;
	int err;
	if (flt->resort[0] && (err = scope_acts_for(who, flt->resort, f))) {
		snprintf(f->field, sizeof(f->field), "resort");
		return err;
	}
	snprintf(flt->resort, sizeof(flt->resort), "%s", who->resort);
	return RSD_OK;
}

static int decode_filter(struct http_req *req, struct booking_filter *flt, bool range_required,
			 struct rsd_fail *f)
{
	static const char *const states[] = {"payment_pending", "confirmed",  "failed",
					     "cancelled",	"checked_in", "checked_out",
					     "no_show",		NULL};
	memset(flt, 0, sizeof(*flt));
	int err;
	if ((err = query_text(req, "product", flt->product, sizeof(flt->product), f)) ||
	    (err = query_text(req, "resort", flt->resort, sizeof(flt->resort), f)))
		return err;
	if (!range_required && (err = query_text(req, "state", flt->state, sizeof(flt->state), f)))
		return err;
	bool known = !flt->state[0];
	for (int i = 0; states[i] && !known; i++)
		known = strcmp(states[i], flt->state) == 0;
	if (!known)
		return rsd_failf(f, RSD_EINVAL, "state", "'state' must be a booking state");
	if (range_required || http_req_query(req, "from") || http_req_query(req, "to")) {
		if ((err = http_req_query_date(req, "from", &flt->from_day, f)) ||
		    (err = http_req_query_date(req, "to", &flt->to_day, f)))
			return err;
		if (flt->to_day <= flt->from_day || flt->to_day - flt->from_day > 366)
			return rsd_failf(f, RSD_EINVAL, "to",
					 "'to' must come after 'from', at most 366 days later");
		flt->has_range = true;
	}
	return scope_filter(req, flt, f);
}

void booking_http_list(struct http_req *req)
{
	static const char *const allowed[] = {"state", "product", "resort", "from",
					      "to",    "limit",	  "cursor", NULL};
	struct rsd_fail f = {0};
	struct booking_filter flt;
	long limit = BOOKINGS_PAGE_DEFAULT;
	int err = http_req_query_only(req, allowed, &f);
	if (!err)
		err = decode_filter(req, &flt, false, &f);
	const char *ls = http_req_query(req, "limit"), *cursor = http_req_query(req, "cursor");
	if (!err && ls) {
		char *end;
		limit = strtol(ls, &end, 10);
		if (end == ls || *end || limit < 1 || limit > BOOKINGS_PAGE_MAX)
			err = rsd_failf(&f, RSD_EINVAL, "limit",
					"'limit' must be an integer from 1 to %d",
					BOOKINGS_PAGE_MAX);
	}
	if (!err && cursor) {
		char *colon;
		long arrival = strtol(cursor, &colon, 10);
		if (colon == cursor || *colon != ':' || !colon[1] ||
		    strlen(colon + 1) > ENTITY_ID_BYTES_MAX || arrival < 0 || arrival > INT32_MAX)
			err = rsd_failf(&f, RSD_EINVAL, "cursor",
					"'cursor' is not one this server"
					" gave");
		else {
			flt.after_arrival = (int32_t)arrival;
			snprintf(flt.after_id, sizeof(flt.after_id), "%s", colon + 1);
		}
	}
	cJSON *items = NULL;
	char next[ENTITY_ID_BYTES_MAX + 16];
	if (!err)
		err = booking_list(http_req_reader(req), &flt, (int)limit, &items, next,
				   sizeof(next), &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	cJSON *page = cJSON_CreateObject();
	cJSON_AddItemToObject(page, "items", items);
	if (next[0])
		cJSON_AddStringToObject(page, "next_cursor", next);
	else
		cJSON_AddNullToObject(page, "next_cursor");
	http_header_add(req, "Cache-Control", "private, no-store");
	http_reply_json(req, 200, page);
	cJSON_Delete(page);
}

void booking_http_occupancy(struct http_req *req)
{
	static const char *const allowed[] = {"product", "resort", "from", "to", NULL};
	struct rsd_fail f = {0};
	struct booking_filter flt;
	cJSON *doc = NULL;
	int err = http_req_query_only(req, allowed, &f);
	if (!err)
		err = decode_filter(req, &flt, true, &f);
	if (!err)
		err = booking_occupancy(http_req_reader(req), &flt, &doc, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	http_header_add(req, "Cache-Control", "private, no-store");
	http_reply_json(req, 200, doc);
	cJSON_Delete(doc);
}
