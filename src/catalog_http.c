/*
 * catalog_http.c — /v1/products and /v1/rate-plans handlers: decode the request, call
 * catalog.c (or search.c), encode the reply. Public reads carry Cache-Control so a CDN can
 * cache them and an ETag so it can revalidate them.
 */
#include "catalog_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "http.h"
#include "json.h"
#include "price.h"
#include "readcache.h"
#include "review.h"
#include "scope.h"
#include "search.h"
#include "banned.h"

#define PUBLIC_CACHE  "public, max-age=60"
#define PRIVATE_CACHE "private, no-cache"

static const char *path_of(enum catalog_kind kind)
{
	return kind == CATALOG_PRODUCT ? "/v1/products/" : "/v1/rate-plans/";
}

static const char *name_of(enum catalog_kind kind)
{
	return kind == CATALOG_PRODUCT ? "product" : "rate plan";
}

/* The {id} of the path; NULL (after replying 404) when it cannot be an id. */
static const char *path_id(struct http_req *req, enum catalog_kind kind)
{
	return http_req_id(req, name_of(kind));
}

/*
 * True when the signed-in principal acts for the resort that entity id (of kind, named
 * what) belongs to; false after replying 403 for a write, or 404 for a read (staff of
 * another resort do not learn that it exists).
 */
static bool in_scope(struct http_req *req, const char *id, enum entity_kind kind, const char *what,
		     enum scope_access access)
{
	struct rsd_fail f = {0};
	int err = scope_check(http_req_state(req), http_req_who(req), id, kind, what, access, &f);
	if (err)
		http_reply_error(req, err, &f);
	return err == RSD_OK;
}

/*
 * Replies with the document as the read model has it. A plain product GET goes through the
 * worker's read cache; the generation is read before SQLite, as readcache.h says.
 */
static void reply_doc(struct http_req *req, int status, enum catalog_kind kind, const char *id,
		      bool use_cache)
{
	const char *cache_control = kind == CATALOG_PRODUCT ? PUBLIC_CACHE : PRIVATE_CACHE;
	struct readcache *cache = http_req_cache(req);
	uint64_t generation = use_cache ? projector_generation(http_req_server(req)->projector) : 0;
	const struct readcache_entry *hit = use_cache ? readcache_get(cache, id, generation) : NULL;
	if (hit) {
		http_reply_entity(req, status, hit->etag, cache_control, hit->body, hit->len);
		return;
	}
	char *text, etag[48];
	uint64_t version;
	int err = catalog_get(http_req_reader(req), kind, id, &text, &version, etag, sizeof(etag));
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "",
			  err == RSD_ENOTFOUND ? "no %s with id '%.64s'"
					       : "reading %s '%.64s' failed",
			  name_of(kind), id);
		http_reply_error(req, err, &f);
		return;
	}
	size_t len = strlen(text);
	if (use_cache)
		readcache_put(cache, id, generation, etag, text, len);
	http_reply_entity(req, status, etag, cache_control, text, len);
	free(text);
}

static void after_write(struct http_req *req, struct command *cmd, int result)
{
	struct catalog_cmd *cc = (struct catalog_cmd *)cmd;
	char *location = arena_printf(http_req_arena(req), "%s%s", path_of(cc->kind), cc->id);
	/* cc lives in the request's arena, which the reply frees: release what it owns first. */
	catalog_cmd_release(cc);
	if (result != RSD_OK && cmd->result == RSD_OK) {
		http_reply_accepted(req, cc->id, cc->version, location); /* durable; late */
	} else if (result != RSD_OK) {
		http_reply_error(req, result, &cmd->fail);
	} else if (cc->op == CATALOG_DELETE) {
		http_reply_json(req, 204, NULL);
	} else {
		if (cc->op == CATALOG_CREATE)
			http_header_add(req, "Location", location);
		reply_doc(req, cc->op == CATALOG_CREATE ? 201 : 200, cc->kind, cc->id, false);
	}
}

/* Decodes, builds and submits one write. id: the target (NULL for a create); owner: a new
 * rate plan's product. Staff tied to a resort write only its products and their rate plans:
 * the target's resort, a new rate plan's product's and a product body's resort_id must be
 * theirs (a replace cannot move a product, but the body is checked all the same). */
static void submit(struct http_req *req, enum catalog_kind kind, enum catalog_op op, const char *id,
		   const char *owner)
{
	struct rsd_fail f = {0};
	uint64_t if_match = 0;
	cJSON *fields = NULL;
	if (id && !in_scope(req, id, kind == CATALOG_PRODUCT ? ENTITY_PRODUCT : ENTITY_RATE_PLAN,
			    name_of(kind), SCOPE_WRITE))
		return;
	if (owner && !in_scope(req, owner, ENTITY_PRODUCT, "product", SCOPE_WRITE))
		return;
	if (op != CATALOG_CREATE && http_req_if_match(req, &if_match, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	if (op != CATALOG_DELETE) {
		size_t len;
		const char *body = http_req_body(req, &len);
		int err = catalog_decode(kind, op, body, len, &fields, &f);
		const char *resort = err || kind != CATALOG_PRODUCT
					     ? NULL
					     : json_get_string(fields, "resort_id");
		if (resort && (err = scope_acts_for(http_req_who(req), resort, &f))) {
			cJSON_Delete(fields);
			snprintf(f.field, sizeof(f.field), "resort_id");
		}
		if (err) {
			http_reply_error(req, err, &f);
			return;
		}
	}
	struct catalog_cmd *cc = arena_alloc(http_req_arena(req), sizeof(*cc));
	catalog_cmd_init(cc, kind, op, id, owner, fields, if_match);
	http_submit(req, &cc->cmd, after_write);
}

static bool no_query(struct http_req *req)
{
	static const char *const allowed[] = {NULL};
	struct rsd_fail f = {0};
	if (http_req_query_only(req, allowed, &f) == RSD_OK)
		return true;
	http_reply_error(req, RSD_EINVAL, &f);
	return false;
}

void catalog_http_product_create(struct http_req *req)
{
	submit(req, CATALOG_PRODUCT, CATALOG_CREATE, NULL, NULL);
}

void catalog_http_product_get(struct http_req *req)
{
	const char *id = path_id(req, CATALOG_PRODUCT);
	if (id && no_query(req))
		reply_doc(req, 200, CATALOG_PRODUCT, id, true);
}

static void write_product(struct http_req *req, enum catalog_op op)
{
	const char *id = path_id(req, CATALOG_PRODUCT);
	if (id)
		submit(req, CATALOG_PRODUCT, op, id, NULL);
}

void catalog_http_product_replace(struct http_req *req)
{
	write_product(req, CATALOG_REPLACE);
}

void catalog_http_product_patch(struct http_req *req)
{
	write_product(req, CATALOG_PATCH);
}

void catalog_http_product_delete(struct http_req *req)
{
	write_product(req, CATALOG_DELETE);
}

/* Reads a required date parameter. */
void catalog_http_prices(struct http_req *req)
{
	static const char *const allowed[] = {"from", "to", NULL};
	struct rsd_fail f = {0};
	int32_t from, to;
	const char *id = path_id(req, CATALOG_PRODUCT);
	if (id == NULL)
		return;
	int err = http_req_query_only(req, allowed, &f);
	if (!err && !(err = http_req_query_date(req, "from", &from, &f)) &&
	    !(err = http_req_query_date(req, "to", &to, &f)) &&
	    (to <= from || to - from > PRICE_QUERY_DAYS_MAX))
		err = rsd_failf(&f, RSD_EINVAL, "to",
				"'to' must come after 'from', at most %d days later",
				PRICE_QUERY_DAYS_MAX);
	cJSON *out = NULL;
	if (!err && (err = catalog_prices(http_req_reader(req), id, from, to, &out)))
		rsd_failf(&f, err, "", "no product with id '%.64s'", id);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	http_header_add(req, "Cache-Control", PUBLIC_CACHE);
	http_reply_json(req, 200, out);
	cJSON_Delete(out);
}

void catalog_http_rate_plan_list(struct http_req *req)
{
	const char *id = path_id(req, CATALOG_PRODUCT);
	if (id == NULL || !in_scope(req, id, ENTITY_PRODUCT, "product", SCOPE_READ) ||
	    !no_query(req))
		return;
	cJSON *items;
	int err = catalog_rate_plans(http_req_reader(req), id, &items);
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "", "no product with id '%.64s'", id);
		http_reply_error(req, err, &f);
		return;
	}
	cJSON *page = cJSON_CreateObject();
	cJSON_AddItemToObject(page, "items", items);
	http_header_add(req, "Cache-Control", PRIVATE_CACHE);
	http_reply_json(req, 200, page);
	cJSON_Delete(page);
}

void catalog_http_rate_plan_create(struct http_req *req)
{
	const char *product_id = path_id(req, CATALOG_PRODUCT);
	if (product_id)
		submit(req, CATALOG_RATE_PLAN, CATALOG_CREATE, NULL, product_id);
}

void catalog_http_rate_plan_get(struct http_req *req)
{
	const char *id = path_id(req, CATALOG_RATE_PLAN);
	if (id && in_scope(req, id, ENTITY_RATE_PLAN, "rate plan", SCOPE_READ) && no_query(req))
		reply_doc(req, 200, CATALOG_RATE_PLAN, id, false);
}

static void write_rate_plan(struct http_req *req, enum catalog_op op)
{
	const char *id = path_id(req, CATALOG_RATE_PLAN);
	if (id)
		submit(req, CATALOG_RATE_PLAN, op, id, NULL);
}

void catalog_http_rate_plan_replace(struct http_req *req)
{
	write_rate_plan(req, CATALOG_REPLACE);
}

void catalog_http_rate_plan_patch(struct http_req *req)
{
	write_rate_plan(req, CATALOG_PATCH);
}

void catalog_http_rate_plan_delete(struct http_req *req)
{
	write_rate_plan(req, CATALOG_DELETE);
}

void catalog_http_product_search(struct http_req *req)
{
	const char *names[QUERY_PARAMS_MAX], *values[QUERY_PARAMS_MAX];
	int n = http_req_query_list(req, names, values, QUERY_PARAMS_MAX);
	struct rsd_fail f = {0};
	struct search_params *p = arena_alloc(http_req_arena(req), sizeof(*p));
	int err = n > QUERY_PARAMS_MAX ? rsd_failf(&f, RSD_EINVAL, "",
						   "at most %d query parameters", QUERY_PARAMS_MAX)
				       : search_params_parse(names, values, n, p, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	/* The page depends on the parameters and the catalog only (not on who asks or the
	 * date), so a worker keeps it until the catalog changes; the generation is read before
	 * SQLite, as readcache.h says. Names and values cannot hold control bytes (http.c
	 * refuses them), so \1 and \2 separate them unambiguously. */
	struct readcache *cache = http_req_search_cache(req);
	char *key = NULL;
	uint64_t generation = 0;
	if (cache) {
		generation = projector_generation(http_req_server(req)->projector);
		key = arena_strndup(http_req_arena(req), "", 0);
		for (int i = 0; i < n; i++)
			key = arena_printf(http_req_arena(req), "%s%s\1%s\2", key, names[i],
					   values[i]);
		const struct readcache_entry *hit = readcache_get(cache, key, generation);
		if (hit) {
			http_header_add(req, "Cache-Control", PUBLIC_CACHE);
			http_reply_text(req, 200, "application/json", hit->body, hit->len);
			return;
		}
	}
	cJSON *page = NULL;
	err = search_run(http_req_reader(req), p, &page, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	char *text = json_print(page);
	size_t len = strlen(text);
	cJSON_Delete(page);
	if (cache)
		readcache_put(cache, key, generation, "", text, len);
	http_header_add(req, "Cache-Control", PUBLIC_CACHE);
	http_reply_text(req, 200, "application/json", text, len);
	cJSON_free(text);
}

/* --- reviews --- */

static void after_review(struct http_req *req, struct command *cmd, int result)
{
	struct review_cmd *rc = (struct review_cmd *)cmd;
	bool created = json_get_string(rc->fields, "state") == NULL;
	review_cmd_release(rc);
	if (result != RSD_OK && cmd->result == RSD_OK) {
		http_reply_accepted(req, rc->id, rc->version, NULL);
		return;
	}
	if (result != RSD_OK) {
		http_reply_error(req, result, &cmd->fail);
		return;
	}
	char *text, etag[32];
	uint64_t version;
	int err = review_get(http_req_reader(req), rc->id, false, &text, &version);
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "", "reading review '%s' failed", rc->id);
		http_reply_error(req, err, &f);
		return;
	}
	if (created)
		http_header_add(req, "Location",
				arena_printf(http_req_arena(req), "/v1/reviews/%s", rc->id));
	http_etag(version, etag, sizeof(etag));
	http_reply_entity(req, created ? 201 : 200, etag, PRIVATE_CACHE, text, strlen(text));
	free(text);
}

void catalog_http_review_create(struct http_req *req)
{
	const char *product_id = path_id(req, CATALOG_PRODUCT);
	if (product_id == NULL)
		return;
	/* The author is the signed-in principal (the route needs a guest at least). */
	const char *author = http_req_principal(req);
	if (!review_author_ok(author)) {
		http_reply_problem(req, 403, "this account cannot write reviews", NULL);
		return;
	}
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	cJSON *fields;
	int err = review_decode_create(body, len, &fields, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	struct review_cmd *rc = arena_alloc(http_req_arena(req), sizeof(*rc));
	review_create_init(rc, product_id, author, fields);
	http_submit(req, &rc->cmd, after_review);
}

void catalog_http_review_get(struct http_req *req)
{
	const char *id = http_req_param(req, "id");
	char *text, etag[32];
	uint64_t version;
	struct rsd_fail f = {0};
	if (!no_query(req))
		return;
	int err = strlen(id) > ENTITY_ID_BYTES_MAX
			  ? RSD_ENOTFOUND
			  : review_get(http_req_reader(req), id, true, &text, &version);
	if (err) {
		rsd_failf(&f, err, "", "no review with id '%.64s'", id);
		http_reply_error(req, err, &f);
		return;
	}
	http_etag(version, etag, sizeof(etag));
	http_reply_entity(req, 200, etag, PUBLIC_CACHE, text, strlen(text));
	free(text);
}

void catalog_http_review_moderate(struct http_req *req)
{
	const char *id = http_req_param(req, "id");
	struct rsd_fail f = {0};
	uint64_t if_match;
	cJSON *fields;
	size_t len;
	const char *body = http_req_body(req, &len);
	int err = strlen(id) > ENTITY_ID_BYTES_MAX
			  ? rsd_failf(&f, RSD_ENOTFOUND, "", "no review with id '%.64s'", id)
			  : scope_check(http_req_state(req), http_req_who(req), id, ENTITY_REVIEW,
					"review", SCOPE_WRITE, &f);
	if (!err)
		err = http_req_if_match(req, &if_match, &f);
	if (!err)
		err = review_decode_moderate(body, len, &fields, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	struct review_cmd *rc = arena_alloc(http_req_arena(req), sizeof(*rc));
	review_moderate_init(rc, id, fields, if_match);
	http_submit(req, &rc->cmd, after_review);
}

void catalog_http_review_list(struct http_req *req)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	const char *product_id = path_id(req, CATALOG_PRODUCT);
	if (product_id == NULL)
		return;
	struct rsd_fail f = {0};
	int err = http_req_query_only(req, allowed, &f);
	long limit = CATALOG_PAGE_DEFAULT;
	const char *ls = http_req_query(req, "limit");
	if (!err && ls) {
		char *end;
		limit = strtol(ls, &end, 10);
		if (end == ls || *end != '\0' || limit < 1 || limit > CATALOG_PAGE_MAX)
			err = rsd_failf(&f, RSD_EINVAL, "limit",
					"'limit' must be an integer from 1 to %d",
					CATALOG_PAGE_MAX);
	}
	cJSON *items = NULL;
	char next[64];
	if (!err &&
	    (err = review_list(http_req_reader(req), product_id, http_req_query(req, "cursor"),
			       (int)limit, &items, next, sizeof(next), &f)) == RSD_ENOTFOUND)
		rsd_failf(&f, err, "", "no product with id '%.64s'", product_id);
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
	http_header_add(req, "Cache-Control", PUBLIC_CACHE);
	http_reply_json(req, 200, page);
	cJSON_Delete(page);
}
