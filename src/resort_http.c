/*
 * resort_http.c — /v1/resorts handlers: decode the request, call resort.c, encode the
 * reply. Writes answer only after the projector has made them readable (read-your-write).
 */
#include "resort_http.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "readcache.h"
#include "resort.h"
#include "scope.h"
#include "banned.h"

/*
 * Replies with the resort as it is now in the read model. A plain GET goes through the
 * worker's read cache; the cache's generation is read before SQLite, as readcache.h says.
 */
static void reply_resort(struct http_req *req, int status, const char *id, bool use_cache)
{
	struct readcache *cache = http_req_cache(req);
	uint64_t generation = use_cache ? projector_generation(http_req_server(req)->projector) : 0;
	const struct readcache_entry *hit = use_cache ? readcache_get(cache, id, generation) : NULL;
	if (hit) {
		http_reply_entity(req, status, hit->etag, "no-cache", hit->body, hit->len);
		return;
	}
	cJSON *obj;
	uint64_t version;
	int err = resort_get(http_req_reader(req), id, &obj, &version);
	if (err) {
		struct rsd_fail f;
		rsd_failf(&f, err, "",
			  err == RSD_ENOTFOUND ? "no resort with id '%.64s'"
					       : "reading resort '%.64s' failed",
			  id);
		http_reply_error(req, err, &f);
		return;
	}
	char etag[32];
	http_etag(version, etag, sizeof(etag));
	char *text = json_print(obj);
	cJSON_Delete(obj);
	size_t len = strlen(text);
	if (use_cache)
		readcache_put(cache, id, generation, etag, text, len);
	http_reply_entity(req, status, etag, "no-cache", text, len);
	cJSON_free(text);
}

static void after_write(struct http_req *req, struct command *cmd, int result, int status)
{
	struct resort_cmd *rc = (struct resort_cmd *)cmd;
	char *location = arena_printf(http_req_arena(req), "/v1/resorts/%s", rc->id);
	/* rc lives in the request's arena, which the reply frees: release what it owns first. */
	resort_cmd_release(rc);
	if (result != RSD_OK && cmd->result == RSD_OK)
		http_reply_accepted(req, rc->id, rc->version, location); /* durable; late */
	else if (result != RSD_OK)
		http_reply_error(req, result, &cmd->fail);
	else {
		if (status == 201)
			http_header_add(req, "Location", location);
		reply_resort(req, status, rc->id, false);
	}
}

static void after_create(struct http_req *req, struct command *cmd, int result)
{
	after_write(req, cmd, result, 201);
}

static void after_patch(struct http_req *req, struct command *cmd, int result)
{
	after_write(req, cmd, result, 200);
}

void resort_http_create(struct http_req *req)
{
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	cJSON *fields;
	int err = resort_decode_create(body, len, &fields, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	struct resort_cmd *rc = arena_alloc(http_req_arena(req), sizeof(*rc));
	resort_create_init(rc, fields);
	http_submit(req, &rc->cmd, after_create);
}

void resort_http_patch(struct http_req *req)
{
	uint64_t if_match;
	struct rsd_fail f = {0};
	if (http_req_if_match(req, &if_match, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	size_t len;
	const char *body = http_req_body(req, &len);
	cJSON *fields;
	int err = resort_decode_patch(body, len, &fields, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	const char *id = http_req_id(req, "resort");
	if (!id) {
		cJSON_Delete(fields);
		return;
	}
	/* Managers tied to a resort change only that one. */
	if ((err = scope_check(http_req_state(req), http_req_who(req), id, ENTITY_RESORT, "resort",
			       SCOPE_WRITE, &f))) {
		cJSON_Delete(fields);
		http_reply_error(req, err, &f);
		return;
	}
	struct resort_cmd *rc = arena_alloc(http_req_arena(req), sizeof(*rc));
	resort_patch_init(rc, id, fields, if_match);
	http_submit(req, &rc->cmd, after_patch);
}

void resort_http_get(struct http_req *req)
{
	static const char *const allowed[] = {NULL};
	struct rsd_fail f = {0};
	int err = http_req_query_only(req, allowed, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	reply_resort(req, 200, http_req_param(req, "id"), true);
}

void resort_http_list(struct http_req *req)
{
	static const char *const allowed[] = {"limit", "cursor", NULL};
	struct rsd_fail f = {0};
	int err = http_req_query_only(req, allowed, &f);
	if (err) {
		http_reply_error(req, err, &f);
		return;
	}
	long limit = RESORTS_PAGE_DEFAULT;
	const char *ls = http_req_query(req, "limit");
	if (ls) {
		char *end;
		limit = strtol(ls, &end, 10);
		if (end == ls || *end != '\0' || limit < 1 || limit > RESORTS_PAGE_MAX) {
			rsd_failf(&f, RSD_EINVAL, "limit",
				  "'limit' must be an integer from 1 to %d", RESORTS_PAGE_MAX);
			http_reply_error(req, RSD_EINVAL, &f);
			return;
		}
	}
	cJSON *items;
	char next[ENTITY_ID_BYTES_MAX + 8];
	err = resort_list(http_req_reader(req), http_req_query(req, "cursor"), (int)limit, &items,
			  next, sizeof(next), &f);
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
	http_header_add(req, "Cache-Control", "no-cache");
	http_reply_json(req, 200, page);
	cJSON_Delete(page);
}
