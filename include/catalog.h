/*
 * catalog.h — products and their rate plans: decoding requests, the commands that change
 * them, their projection into catalog.db and their reads. No HTTP here (catalog_http.c).
 *
 * Products and rate plans are documents. A create stores the whole document in its event;
 * a replace stores the new fields, a patch an RFC 7396 merge patch, a delete only the
 * version. The projector rebuilds the stored document from the previous one and the event,
 * in a canonical member order with defaults filled in, so a rebuild from the log gives the
 * same bytes. The writer-side checks (existence, version, references, immutable members)
 * use LMDB's entities records only, never the read model.
 *
 * A product:  id, type (room_type | facility | ticket | package), resort_id, name, name_en,
 *   description, status (active | inactive), currency, attributes (flat object of strings,
 *   numbers, booleans or arrays of them), capacity ({unit: rooms | seats | units, count} or
 *   null), components (packages only: [{product_id, quantity}]), media ([{url, kind,
 *   caption}]), rating ({count, average}), home_node, version, created_at, updated_at.
 *   type and resort_id never change.
 * A rate plan: id, product_id, name, status, rules (price.h), home_node, version,
 *   created_at, updated_at. Its prices are in the product's currency.
 */
#ifndef RSD_CATALOG_H
#define RSD_CATALOG_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdint.h>

#include "eventlog.h"
#include "readmodel.h"
#include "writer.h"

enum product_type { PRODUCT_ROOM_TYPE = 1, PRODUCT_FACILITY, PRODUCT_TICKET, PRODUCT_PACKAGE };

enum catalog_kind { CATALOG_PRODUCT, CATALOG_RATE_PLAN };
enum catalog_op { CATALOG_CREATE, CATALOG_REPLACE, CATALOG_PATCH, CATALOG_DELETE };

/* A write on its way through the writer. Caller-owned: catalog_cmd_release. */
struct catalog_cmd {
	struct command cmd;
	enum catalog_kind kind;
	enum catalog_op op;
	char id[ENTITY_ID_BYTES_MAX + 1];
	char owner[ENTITY_ID_BYTES_MAX + 1]; /* a new rate plan's product */
	cJSON *fields;			     /* validated body, owned; NULL for a delete */
	uint64_t if_match;		     /* 0: none; UINT64_MAX: a weak tag (never matches) */
	uint64_t version;		     /* out: the version written */
};

/*
 * Decodes and validates a request body for kind and op (create, replace: the whole
 * document; patch: a merge patch). *out receives the fields to pass to catalog_cmd_init.
 * Errors: RSD_EINVAL with the field named ("attributes.view", "rules[1].from").
 */
int catalog_decode(enum catalog_kind kind, enum catalog_op op, const char *body, size_t len,
		   cJSON **out, struct rsd_fail *f);

/* catalog_decode's checks on an already parsed object (bulk import). */
int catalog_check(enum catalog_kind kind, enum catalog_op op, const cJSON *obj, struct rsd_fail *f);

/*
 * Prepares a command taking ownership of fields (NULL for a delete). id: the document's
 * id, or for a create NULL (one is made here) or an id to create it under (bulk import;
 * the command fails with RSD_ECONFLICT when it is taken); owner: a new rate plan's product id, else
 * NULL. The command fails with RSD_ENOTFOUND (no such document, or a reference to a
 * missing one), RSD_EPRECONDITION (If-Match) or RSD_ECONFLICT (an immutable member).
 */
void catalog_cmd_init(struct catalog_cmd *cc, enum catalog_kind kind, enum catalog_op op,
		      const char *id, const char *owner, cJSON *fields, uint64_t if_match);

/* Frees what the command owns. */
void catalog_cmd_release(struct catalog_cmd *cc);

/* Projects product.* and rate_plan.* events (projector thread). */
int catalog_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		    struct rsd_fail *f);

/*
 * Reads the stored document of a live product or rate plan: *json receives its text
 * (caller frees with free()), *version its version, etag its entity tag: "VERSION", or
 * for a product with published reviews "VERSION.COUNT.SUM", since reviews change the
 * document without changing the version (If-Match compares the VERSION part).
 * Errors: RSD_ENOTFOUND, RSD_EIO.
 */
int catalog_get(struct readmodel_reader *r, enum catalog_kind kind, const char *id, char **json,
		uint64_t *version, char *etag, size_t etag_len);

/* The live rate plans of a product as a JSON array (caller frees). Errors: RSD_ENOTFOUND
 * when the product does not exist, RSD_EIO. */
int catalog_rate_plans(struct readmodel_reader *r, const char *product_id, cJSON **out);

/*
 * The price of product_id on each date of [from_day, to_day) as an object
 * {product_id, currency, from, to, days: [{date, amount, rate_plan_id} | {date, amount:
 * null}]}. Errors: RSD_ENOTFOUND, RSD_EIO.
 */
int catalog_prices(struct readmodel_reader *r, const char *product_id, int32_t from_day,
		   int32_t to_day, cJSON **out);

/* The name of a product type, or NULL; and back (0 when unknown). */
const char *catalog_type_name(int type);
int catalog_type_of(const char *name);

/* What a stay of a product costs and on what terms, as the catalog says now. */
struct catalog_quote {
	char currency[4];
	enum product_type type;
	int64_t amount; /* sum of the nights' prices times qty, minor units */
	int64_t nights_priced;
	/* Cancellation terms from the product's attributes "cancellation_free_days" (free
	 * until that many days before arrival; 0: always free) and "cancellation_fee_percent"
	 * (of the item's amount after that; 100 when absent). */
	int free_cancel_days;
	int cancel_fee_percent;
};

/*
 * Prices qty units of a live, active product for the nights [from_day, to_day).
 * Errors: RSD_ENOTFOUND (no such live product), RSD_ECONFLICT (inactive, or a night has
 * no price: it cannot be sold), RSD_EIO; f filled.
 */
int catalog_quote(struct readmodel_reader *r, const char *product_id, int32_t from_day,
		  int32_t to_day, uint32_t qty, struct catalog_quote *out, struct rsd_fail *f);

#endif
