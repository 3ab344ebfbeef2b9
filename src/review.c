/*
 * review.c — reviews from request to row. One review per guest per product is enforced in
 * the writer with an entities record keyed "rk:<product>:<author>", so two racing posts
 * cannot both win. The projector recounts a product's published reviews after each change,
 * so the aggregates are a function of the rows, never a drifting running total.
 */
#include "review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"
#include "banned.h"

static const struct json_field create_fields[] = {
	{"rating", JSON_INT, JSON_REQUIRED, 1, 5},
	{"title", JSON_STRING, 0, 0, REVIEW_TITLE_CHARS_MAX},
	{"body", JSON_STRING, 0, 0, REVIEW_BODY_CHARS_MAX},
};
static const struct json_field moderate_fields[] = {
	{"state", JSON_STRING, JSON_REQUIRED, 1, 16},
};

static int decode(const char *body, size_t len, const struct json_field *spec, size_t n,
		  cJSON **out, struct rsd_fail *f)
{
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err == RSD_OK && (err = json_check_object(obj, spec, n, f)))
		cJSON_Delete(obj);
	if (err == RSD_OK)
		*out = obj;
	return err;
}

int review_decode_create(const char *body, size_t len, cJSON **out, struct rsd_fail *f)
{
	return decode(body, len, create_fields, sizeof(create_fields) / sizeof(create_fields[0]),
		      out, f);
}

int review_decode_moderate(const char *body, size_t len, cJSON **out, struct rsd_fail *f)
{
	int err = decode(body, len, moderate_fields,
			 sizeof(moderate_fields) / sizeof(moderate_fields[0]), out, f);
	if (err)
		return err;
	const char *state = json_get_string(*out, "state");
	if (strcmp(state, "published") == 0 || strcmp(state, "hidden") == 0)
		return RSD_OK;
	cJSON_Delete(*out);
	*out = NULL;
	return rsd_failf(f, RSD_EINVAL, "state", "'state' must be published or hidden");
}

bool review_author_ok(const char *a)
{
	size_t n = strlen(a);
	if (n == 0 || n > REVIEW_AUTHOR_BYTES_MAX)
		return false;
	for (; *a; a++)
		if (!((*a >= 'a' && *a <= 'z') || (*a >= 'A' && *a <= 'Z') ||
		      (*a >= '0' && *a <= '9') || *a == '.' || *a == '_' || *a == '@' ||
		      *a == '-' || *a == ':'))
			return false;
	return true;
}

/* --- commands (writer thread) --- */

static int create_apply(struct writer_txn *wt, struct command *cmd)
{
	struct review_cmd *rc = (struct review_cmd *)cmd;
	struct entity_rec rec;
	int err = store_entity_get(wt->txn, wt->store, rc->product_id, &rec);
	if (err == RSD_ENOTFOUND || (!err && (rec.kind != ENTITY_PRODUCT || rec.deleted)))
		return rsd_failf(&cmd->fail, RSD_ENOTFOUND, "", "no product with id '%s'",
				 rc->product_id);
	char key[ENTITY_ID_BYTES_MAX + REVIEW_AUTHOR_BYTES_MAX + 8];
	snprintf(key, sizeof(key), "rk:%s:%s", rc->product_id, rc->author_id);
	if (!err && (err = store_entity_get(wt->txn, wt->store, key, &rec)) == RSD_OK)
		return rsd_failf(&cmd->fail, RSD_ECONFLICT, "",
				 "guest '%s' has reviewed this product already (review %s)",
				 rc->author_id, rec.owner);
	if (err != RSD_ENOTFOUND)
		return rsd_failf(&cmd->fail, err, "", "reading the entities: %s",
				 rsd_strerror(err));
	struct entity_rec keyrec = {.kind = ENTITY_REVIEW_KEY, .version = 1};
	struct entity_rec review = {.kind = ENTITY_REVIEW, .sub = 1, .version = 1};
	snprintf(keyrec.owner, sizeof(keyrec.owner), "%s", rc->id);
	snprintf(review.owner, sizeof(review.owner), "%s", rc->product_id);
	if ((err = store_entity_put(wt->txn, wt->store, key, &keyrec)) ||
	    (err = store_entity_put(wt->txn, wt->store, rc->id, &review)))
		return rsd_failf(&cmd->fail, err, "", "storing the review: %s", rsd_strerror(err));
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "id", rc->id);
	cJSON_AddStringToObject(doc, "product_id", rc->product_id);
	cJSON_AddStringToObject(doc, "author_id", rc->author_id);
	cJSON_AddItemToObject(doc, "rating",
			      cJSON_Duplicate(cJSON_GetObjectItem(rc->fields, "rating"), 1));
	const char *title = json_get_string(rc->fields, "title");
	const char *body = json_get_string(rc->fields, "body");
	cJSON_AddStringToObject(doc, "title", title ? title : "");
	cJSON_AddStringToObject(doc, "body", body ? body : "");
	cJSON_AddStringToObject(doc, "state", "published");
	cJSON_AddNumberToObject(doc, "version", 1);
	cJSON_AddStringToObject(doc, "created_at", now);
	cJSON_AddStringToObject(doc, "updated_at", now);
	rc->version = 1;
	return writer_emit_json(wt, EVENT_REVIEW_CREATED, doc);
}

static int moderate_apply(struct writer_txn *wt, struct command *cmd)
{
	struct review_cmd *rc = (struct review_cmd *)cmd;
	struct entity_rec rec;
	int err = store_entity_get(wt->txn, wt->store, rc->id, &rec);
	if (err == RSD_ENOTFOUND || (!err && rec.kind != ENTITY_REVIEW))
		return rsd_failf(&cmd->fail, RSD_ENOTFOUND, "", "no review with id '%s'", rc->id);
	if (err)
		return rsd_failf(&cmd->fail, err, "", "reading the review: %s", rsd_strerror(err));
	if (rc->if_match && rc->if_match != rec.version)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "If-Match",
				 "the review is at version %llu", (unsigned long long)rec.version);
	const char *state = json_get_string(rc->fields, "state");
	rec.version++;
	rec.sub = strcmp(state, "published") == 0;
	if ((err = store_entity_put(wt->txn, wt->store, rc->id, &rec)))
		return rsd_failf(&cmd->fail, err, "", "storing the review: %s", rsd_strerror(err));
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", rc->id);
	cJSON_AddStringToObject(ev, "product_id", rec.owner);
	cJSON_AddStringToObject(ev, "state", state);
	cJSON_AddNumberToObject(ev, "version", (double)rec.version);
	cJSON_AddStringToObject(ev, "updated_at", now);
	snprintf(rc->product_id, sizeof(rc->product_id), "%s", rec.owner);
	rc->version = rec.version;
	return writer_emit_json(wt, EVENT_REVIEW_MODERATED, ev);
}

void review_create_init(struct review_cmd *rc, const char *product_id, const char *author_id,
			cJSON *fields)
{
	memset(rc, 0, sizeof(*rc));
	rsd_id_new("rv_", rc->id, sizeof(rc->id));
	snprintf(rc->product_id, sizeof(rc->product_id), "%s", product_id);
	snprintf(rc->author_id, sizeof(rc->author_id), "%s", author_id);
	rc->fields = fields;
	rc->cmd.apply = create_apply;
}

void review_moderate_init(struct review_cmd *rc, const char *id, cJSON *fields, uint64_t if_match)
{
	memset(rc, 0, sizeof(*rc));
	snprintf(rc->id, sizeof(rc->id), "%s", id);
	rc->fields = fields;
	rc->if_match = if_match;
	rc->cmd.apply = moderate_apply;
}

void review_cmd_release(struct review_cmd *rc)
{
	cJSON_Delete(rc->fields);
	rc->fields = NULL;
}

/* --- projection (projector thread) --- */

static int exec_bound(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
		      struct rsd_fail *f)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return rsd_failf(f, RSD_EIO, "", "projecting a review: %s", sqlite3_errmsg(db));
	const char *vals[] = {a, b, c};
	for (int i = 0; i < 3 && vals[i]; i++)
		sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rsd_failf(f, RSD_EIO, "", "projecting a review: %s", sqlite3_errmsg(db));
	return RSD_OK;
}

/* Recounts the product's published reviews into its columns and its document. */
static int refresh_rating(sqlite3 *db, const char *product_id, struct rsd_fail *f)
{
	int err = exec_bound(db,
			     "UPDATE products SET"
			     " rating_count = (SELECT count(*) FROM reviews WHERE product_id = ?1"
			     " AND visible = 1),"
			     " rating_sum = (SELECT coalesce(sum(rating), 0) FROM reviews"
			     " WHERE product_id = ?1 AND visible = 1) WHERE id = ?1",
			     product_id, NULL, NULL, f);
	if (err)
		return err;
	return exec_bound(
		db,
		"UPDATE products SET doc = json_set(doc, '$.rating',"
		" json_object('count', rating_count, 'average', rating_avg)) WHERE id = ?1",
		product_id, NULL, NULL, f);
}

static int project_created(sqlite3 *db, const cJSON *doc, const char *text, struct rsd_fail *f)
{
	int err = exec_bound(db,
			     "INSERT INTO reviews(id, product_id, author_id, doc, rating, visible,"
			     " version) VALUES (?1 ->> '$.id', ?1 ->> '$.product_id',"
			     " ?1 ->> '$.author_id', ?1, ?1 ->> '$.rating', 1, 1)",
			     text, NULL, NULL, f);
	return err ? err : refresh_rating(db, json_get_string(doc, "product_id"), f);
}

static int project_moderated(sqlite3 *db, const char *text, const cJSON *ev, struct rsd_fail *f)
{
	int err = exec_bound(
		db,
		"UPDATE reviews SET doc = json_set(doc, '$.state', ?1 ->> '$.state',"
		" '$.version', ?1 -> '$.version', '$.updated_at', ?1 ->> '$.updated_at'),"
		" visible = (?1 ->> '$.state' = 'published'), version = ?1 -> '$.version'"
		" WHERE id = ?1 ->> '$.id'",
		text, NULL, NULL, f);
	return err ? err : refresh_rating(db, json_get_string(ev, "product_id"), f);
}

int review_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		   struct rsd_fail *f)
{
	(void)stmts; /* rare events: preparing each time costs little */
	char *text = rsd_malloc(ev->data_len + 1);
	memcpy(text, ev->data, ev->data_len);
	text[ev->data_len] = '\0';
	cJSON *data = cJSON_Parse(text);
	int err = data == NULL ? rsd_failf(f, RSD_EIO, "", "event %llu is not JSON",
					   (unsigned long long)ev->seq)
		  : ev->type == EVENT_REVIEW_CREATED ? project_created(db, data, text, f)
						     : project_moderated(db, text, data, f);
	cJSON_Delete(data);
	free(text);
	return err;
}

/* --- reads --- */

int review_get(struct readmodel_reader *r, const char *id, bool published_only, char **json,
	       uint64_t *version)
{
	static const char sql[] = "SELECT doc, version FROM reviews WHERE id = ? AND visible >= ?";
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, published_only);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*json = rsd_malloc(n + 1);
		memcpy(*json, sqlite3_column_text(st, 0), n + 1);
		*version = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RSD_OK : rc == SQLITE_DONE ? RSD_ENOTFOUND : RSD_EIO;
}

#define CURSOR_PREFIX "v1."

int review_list(struct readmodel_reader *r, const char *product_id, const char *cursor, int limit,
		cJSON **items, char *next_cursor, size_t next_len, struct rsd_fail *f)
{
	static const char exists[] = "SELECT 1 FROM products WHERE id = ? AND deleted = 0";
	static const char sql[] = "SELECT rowid, doc FROM reviews WHERE product_id = ?"
				  " AND visible = 1 AND rowid < ? ORDER BY rowid DESC LIMIT ?";
	long long before = INT64_MAX;
	if (cursor) {
		size_t pl = strlen(CURSOR_PREFIX), n = strlen(cursor);
		bool ok = n > pl && n - pl <= 18 && strncmp(cursor, CURSOR_PREFIX, pl) == 0;
		for (size_t i = pl; ok && i < n; i++)
			ok = cursor[i] >= '0' && cursor[i] <= '9';
		before = ok ? strtoll(cursor + pl, NULL, 10) : 0;
		if (before <= 0)
			return rsd_failf(f, RSD_EINVAL, "cursor",
					 "'cursor' is not one this server gave");
	}
	sqlite3_stmt *st = readmodel_stmt(r, exists);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? RSD_ENOTFOUND : RSD_EIO;
	if ((st = readmodel_stmt(r, sql)) == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before);
	sqlite3_bind_int(st, 3, limit + 1);
	cJSON *arr = cJSON_CreateArray();
	int count = 0;
	long long last = 0;
	next_cursor[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == limit) {
			snprintf(next_cursor, next_len, CURSOR_PREFIX "%lld", last);
			break;
		}
		last = sqlite3_column_int64(st, 0);
		cJSON_AddItemToArray(arr, cJSON_Parse((const char *)sqlite3_column_text(st, 1)));
		count++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return RSD_EIO;
	}
	*items = arr;
	return RSD_OK;
}
