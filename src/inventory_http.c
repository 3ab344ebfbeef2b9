/*
 * inventory_http.c — /v1/inventory/{product} (staff) and /v1/availability (public):
 * decode, call inventory.c, encode. Reads come from the worker's LMDB snapshot, so they
 * never wait for the writer; a PUT replies from a snapshot taken after its commit.
 */
#include "inventory_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "inventory.h"
#include "price.h"
#include "scope.h"
#include "banned.h"

/* Reads from/to (and slot) of the query as a range of at most max_days. */
static int query_range(struct http_req *req, int32_t *from, int32_t *to, uint16_t *slot,
		       int32_t max_days, struct rsd_fail *f)
{
	int err;
	if ((err = http_req_query_date(req, "from", from, f)) ||
	    (err = http_req_query_date(req, "to", to, f)))
		return err;
	if (*from < INVENTORY_FIRST_DAY)
		return rsd_failf(f, RSD_EINVAL, "from", "'from' must be 2000-01-01 or later");
	if (*to <= *from || *to - *from > max_days)
		return rsd_failf(f, RSD_EINVAL, "to",
				 "'to' must come after 'from', at most %d days later",
				 (int)max_days);
	if (inventory_parse_slot(http_req_query(req, "slot"), slot) != RSD_OK)
		return rsd_failf(f, RSD_EINVAL, "slot", "'slot' must be a time HH:MM");
	return RSD_OK;
}

/* Replies the inventory document of product over the range, read now. */
static void reply_doc(struct http_req *req, const char *product, int32_t from, int32_t to,
		      uint16_t slot)
{
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	cJSON *doc = NULL;
	uint64_t version = 0;
	int err = txn ? inventory_doc(txn, r->store, product, from, to, slot, &doc, &version)
		      : RSD_EIO;
	store_reader_end(r);
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "",
			  err == RSD_ENOTFOUND ? "no product with id '%.48s'"
					       : "reading the inventory of '%.48s' failed",
			  product);
		http_reply_error(req, err, &f);
		return;
	}
	char etag[32];
	http_etag(version, etag, sizeof(etag));
	http_header_add(req, "ETag", etag);
	http_header_add(req, "Cache-Control", "private, no-cache");
	http_reply_json(req, 200, doc);
	cJSON_Delete(doc);
}

static void after_put(struct http_req *req, struct command *cmd, int result)
{
	struct inventory_cmd *ic = (struct inventory_cmd *)cmd;
	if (result != RSD_OK) {
		http_reply_error(req, result, &cmd->fail);
		return;
	}
	reply_doc(req, ic->set.product_id, ic->set.from_day, ic->set.to_day, ic->set.slot);
}

void inventory_http_put(struct http_req *req)
{
	struct rsd_fail f = {0};
	uint64_t if_match;
	if (http_req_if_match(req, &if_match, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	const char *product = http_req_id(req, "product");
	if (!product)
		return;
	/* Staff tied to a resort set only its products' inventory. */
	int err = scope_check(http_req_state(req), http_req_who(req), product, ENTITY_PRODUCT,
			      "product", SCOPE_WRITE, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	size_t len;
	const char *body = http_req_body(req, &len);
	struct inventory_set set;
	err = inventory_decode_set(product, body, len, &set, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	struct inventory_cmd *ic = arena_alloc(http_req_arena(req), sizeof(*ic));
	inventory_cmd_init(ic, &set, if_match);
	http_submit_durable(req, &ic->cmd, after_put);
}

void inventory_http_get(struct http_req *req)
{
	static const char *const allowed[] = {"from", "to", "slot", NULL};
	struct rsd_fail f = {0};
	int32_t from, to;
	uint16_t slot;
	const char *product = http_req_param(req, "id");
	int err = http_req_query_only(req, allowed, &f);
	if (!err)
		err = query_range(req, &from, &to, &slot, INVENTORY_RANGE_DAYS_MAX, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	if (!http_req_id(req, "product"))
		return;
	/* Staff of another resort are told there is no such product, not that it is not
	 * theirs. */
	if ((err = scope_check(http_req_state(req), http_req_who(req), product, ENTITY_PRODUCT,
			       "product", SCOPE_READ, &f))) {
		http_reply_error(req, err, &f);
		return;
	}
	reply_doc(req, product, from, to, slot);
}

void inventory_http_availability(struct http_req *req)
{
	static const char *const allowed[] = {"product", "from", "to", "qty", "slot", NULL};
	struct rsd_fail f = {0};
	struct inv_item it = {0};
	int err = http_req_query_only(req, allowed, &f);
	if (!err)
		err = query_range(req, &it.from_day, &it.to_day, &it.slot, STAY_NIGHTS_MAX, &f);
	const char *product = http_req_query(req, "product"), *qty = http_req_query(req, "qty");
	if (!err && (!product || !product[0] || strlen(product) > ENTITY_ID_BYTES_MAX))
		err = rsd_failf(&f, RSD_EINVAL, "product", "'product' must name a product id");
	it.qty = 1;
	if (!err && qty) {
		char *end;
		long n = strtol(qty, &end, 10);
		if (end == qty || *end || n < 1 || n > HOLD_QTY_MAX)
			err = rsd_failf(&f, RSD_EINVAL, "qty",
					"'qty' must be an integer from 1 to %d", HOLD_QTY_MAX);
		it.qty = (uint32_t)n;
	}
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	snprintf(it.product_id, sizeof(it.product_id), "%s", product);
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	cJSON *doc = NULL;
	err = txn ? inventory_availability(txn, r->store, &it, inventory_today(), &doc) : RSD_EIO;
	store_reader_end(r);
	if (err) {
		rsd_failf(&f, err, err == RSD_ENOTFOUND ? "product" : "",
			  err == RSD_ENOTFOUND ? "no product with id '%.48s'"
					       : "reading the inventory of '%.48s' failed",
			  product);
		http_reply_error(req, err, &f);
		return;
	}
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_json(req, 200, doc);
	cJSON_Delete(doc);
}
