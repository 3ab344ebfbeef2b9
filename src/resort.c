/*
 * resort.c — resorts from request to row. The writer-side apply functions check existence
 * and versions in LMDB's entities database (the truth) and put the whole change into the
 * event; the projector only copies events into rows, so a rebuild gives the same rows.
 */
#include "resort.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"
#include "banned.h"

static const struct json_field create_fields[] = {
	{"name", JSON_STRING, JSON_REQUIRED, 1, RESORT_NAME_CHARS_MAX},
	{"name_en", JSON_STRING, JSON_NULLABLE, 1, RESORT_NAME_CHARS_MAX},
	{"timezone", JSON_STRING, 0, 1, 64},
	{"currency", JSON_STRING, 0, 3, 3},
	{"address", JSON_STRING, JSON_NULLABLE, 0, RESORT_ADDRESS_CHARS_MAX},
	{"stars", JSON_INT, JSON_NULLABLE, 1, 5},
};
static const struct json_field patch_fields[] = {
	{"name", JSON_STRING, 0, 1, RESORT_NAME_CHARS_MAX},
	{"name_en", JSON_STRING, JSON_NULLABLE, 1, RESORT_NAME_CHARS_MAX},
	{"timezone", JSON_STRING, 0, 1, 64},
	{"currency", JSON_STRING, 0, 3, 3},
	{"address", JSON_STRING, JSON_NULLABLE, 0, RESORT_ADDRESS_CHARS_MAX},
	{"stars", JSON_INT, JSON_NULLABLE, 1, 5},
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* An IANA zone name: letters, digits, '_', '-', '+', separated by single '/'. */
static int check_timezone(const char *tz, struct rsd_fail *f)
{
	bool ok = isalpha((unsigned char)tz[0]);
	for (const char *p = tz; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '+' ||
		     (*p == '/' && p[1] && p[1] != '/');
	if (!ok)
		return rsd_failf(f, RSD_EINVAL, "timezone",
				 "'timezone' must be an IANA time zone name such as Asia/Seoul");
	return RSD_OK;
}

static int check_values(const cJSON *obj, struct rsd_fail *f)
{
	const char *name = json_get_string(obj, "name");
	if (name) {
		bool blank = true;
		for (const char *p = name; *p && blank; p++)
			blank = isspace((unsigned char)*p) != 0;
		if (blank)
			return rsd_failf(f, RSD_EINVAL, "name", "'name' must not be blank");
	}
	const char *cur = json_get_string(obj, "currency");
	if (cur && !(isupper((unsigned char)cur[0]) && isupper((unsigned char)cur[1]) &&
		     isupper((unsigned char)cur[2])))
		return rsd_failf(f, RSD_EINVAL, "currency",
				 "'currency' must be an ISO 4217 code of three capital letters");
	const char *tz = json_get_string(obj, "timezone");
	if (tz)
		return check_timezone(tz, f);
	return RSD_OK;
}

static int decode(const char *body, size_t len, const struct json_field *spec, size_t n,
		  cJSON **out, struct rsd_fail *f)
{
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	if ((err = json_check_object(obj, spec, n, f)) || (err = check_values(obj, f))) {
		cJSON_Delete(obj);
		return err;
	}
	*out = obj;
	return RSD_OK;
}

int resort_check_create(const cJSON *obj, struct rsd_fail *f)
{
	int err = json_check_object(obj, create_fields, COUNT(create_fields), f);
	return err ? err : check_values(obj, f);
}

int resort_decode_create(const char *body, size_t len, cJSON **out, struct rsd_fail *f)
{
	return decode(body, len, create_fields, COUNT(create_fields), out, f);
}

int resort_decode_patch(const char *body, size_t len, cJSON **out, struct rsd_fail *f)
{
	int err = decode(body, len, patch_fields, COUNT(patch_fields), out, f);
	if (err == RSD_OK && (*out)->child == NULL) {
		cJSON_Delete(*out);
		*out = NULL;
		return rsd_failf(f, RSD_EINVAL, "",
				 "the patch changes nothing: name at least one field");
	}
	return err;
}

static int create_apply(struct writer_txn *wt, struct command *cmd)
{
	struct resort_cmd *rc = (struct resort_cmd *)cmd;
	struct entity_rec rec = {.kind = ENTITY_RESORT, .version = 1};
	int err = store_entity_get(wt->txn, wt->store, rc->id, &rec);
	if (err != RSD_ENOTFOUND)
		return rsd_failf(&cmd->fail, err ? err : RSD_ECONFLICT, "id",
				 err ? "reading the entities: %s" : "the id '%s' is taken",
				 err ? rsd_strerror(err) : rc->id);
	rec = (struct entity_rec){.kind = ENTITY_RESORT, .version = 1};
	err = store_entity_put(wt->txn, wt->store, rc->id, &rec);
	if (err)
		return rsd_failf(&cmd->fail, err, "", "storing the resort: %s", rsd_strerror(err));
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", rc->id);
	cJSON_AddItemToObject(ev, "name",
			      cJSON_Duplicate(cJSON_GetObjectItem(rc->fields, "name"), 1));
	const char *opt[] = {"name_en", "address", "stars"};
	for (size_t i = 0; i < COUNT(opt); i++) {
		cJSON *v = cJSON_GetObjectItem(rc->fields, opt[i]);
		cJSON_AddItemToObject(ev, opt[i], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
	}
	const char *tz = json_get_string(rc->fields, "timezone");
	const char *cur = json_get_string(rc->fields, "currency");
	cJSON_AddStringToObject(ev, "timezone", tz ? tz : "Asia/Seoul");
	cJSON_AddStringToObject(ev, "currency", cur ? cur : "KRW");
	cJSON_AddStringToObject(ev, "home_node", wt->store->node_id);
	cJSON_AddNumberToObject(ev, "version", 1);
	cJSON_AddStringToObject(ev, "created_at", now);
	rc->version = 1;
	return writer_emit_json(wt, EVENT_RESORT_CREATED, ev);
}

static int patch_apply(struct writer_txn *wt, struct command *cmd)
{
	struct resort_cmd *rc = (struct resort_cmd *)cmd;
	struct entity_rec rec;
	int err = store_entity_get(wt->txn, wt->store, rc->id, &rec);
	if (err == RSD_ENOTFOUND || (err == RSD_OK && (rec.kind != ENTITY_RESORT || rec.deleted)))
		return rsd_failf(&cmd->fail, RSD_ENOTFOUND, "", "no resort with id '%s'", rc->id);
	if (err)
		return rsd_failf(&cmd->fail, err, "", "reading the resort: %s", rsd_strerror(err));
	if (rc->if_match == UINT64_MAX)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "If-Match",
				 "If-Match compares strongly: a weak ETag matches no version");
	if (rc->if_match && rc->if_match != rec.version)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "",
				 "the resort is at version %llu, not %llu",
				 (unsigned long long)rec.version, (unsigned long long)rc->if_match);
	rec.version++;
	if ((err = store_entity_put(wt->txn, wt->store, rc->id, &rec)))
		return rsd_failf(&cmd->fail, err, "", "storing the resort: %s", rsd_strerror(err));
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", rc->id);
	cJSON_AddNumberToObject(ev, "version", (double)rec.version);
	cJSON_AddStringToObject(ev, "updated_at", now);
	cJSON_AddItemToObject(ev, "changes", cJSON_Duplicate(rc->fields, 1));
	rc->version = rec.version;
	return writer_emit_json(wt, EVENT_RESORT_UPDATED, ev);
}

void resort_create_init(struct resort_cmd *rc, cJSON *fields)
{
	memset(rc, 0, sizeof(*rc));
	rsd_id_new("rs_", rc->id, sizeof(rc->id));
	rc->fields = fields;
	rc->cmd.apply = create_apply;
}

void resort_patch_init(struct resort_cmd *rc, const char *id, cJSON *fields, uint64_t if_match)
{
	memset(rc, 0, sizeof(*rc));
	snprintf(rc->id, sizeof(rc->id), "%s", id);
	rc->fields = fields;
	rc->if_match = if_match;
	rc->cmd.apply = patch_apply;
}

void resort_cmd_release(struct resort_cmd *rc)
{
	cJSON_Delete(rc->fields);
	rc->fields = NULL;
}

/* Binds a JSON value (string, number or null) to parameter i. */
static void bind_json(sqlite3_stmt *st, int i, const cJSON *v)
{
	if (cJSON_IsString(v))
		sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_TRANSIENT);
	else if (cJSON_IsNumber(v))
		sqlite3_bind_int64(st, i, (sqlite3_int64)v->valuedouble);
	else
		sqlite3_bind_null(st, i);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, struct rsd_fail *f)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rsd_failf(f, RSD_EIO, "", "projecting resort: %s", sqlite3_errmsg(db));
	return RSD_OK;
}

static int project_created(sqlite3 *db, const cJSON *ev, struct rsd_fail *f)
{
	static const char *const cols[] = {"id",       "name",	    "name_en", "timezone",
					   "currency", "address",   "stars",   "home_node",
					   "version",  "created_at"};
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO resorts(id, name, name_en, timezone, currency, address,"
			       " stars, home_node, version, created_at, updated_at)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,?10)",
			       -1, &st, NULL) != SQLITE_OK)
		return rsd_failf(f, RSD_EIO, "", "projecting resort: %s", sqlite3_errmsg(db));
	for (int i = 0; i < (int)COUNT(cols); i++)
		bind_json(st, i + 1, cJSON_GetObjectItem(ev, cols[i]));
	return step_done(db, st, f);
}

static int project_updated(sqlite3 *db, const cJSON *ev, struct rsd_fail *f)
{
	static const char *const patchable[] = {"name",	    "name_en", "timezone",
						"currency", "address", "stars"};
	const cJSON *changes = cJSON_GetObjectItem(ev, "changes");
	char sql[512];
	size_t n = (size_t)snprintf(sql, sizeof(sql),
				    "UPDATE resorts SET version = ?1, updated_at = ?2");
	/* Column names come from our own list, never from the event text. */
	int params = 2;
	const cJSON *vals[COUNT(patchable)];
	for (size_t i = 0; i < COUNT(patchable); i++) {
		const cJSON *v = cJSON_GetObjectItem(changes, patchable[i]);
		if (v == NULL)
			continue;
		vals[params - 2] = v;
		params++;
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", %s = ?%d", patchable[i], params);
	}
	snprintf(sql + n, sizeof(sql) - n, " WHERE id = ?%d", params + 1);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return rsd_failf(f, RSD_EIO, "", "projecting resort: %s", sqlite3_errmsg(db));
	bind_json(st, 1, cJSON_GetObjectItem(ev, "version"));
	bind_json(st, 2, cJSON_GetObjectItem(ev, "updated_at"));
	for (int i = 3; i <= params; i++)
		bind_json(st, i, vals[i - 3]);
	bind_json(st, params + 1, cJSON_GetObjectItem(ev, "id"));
	return step_done(db, st, f);
}

int resort_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		   struct rsd_fail *f)
{
	(void)stmts; /* rare events: preparing each time costs little */
	cJSON *data = cJSON_ParseWithLength(ev->data, ev->data_len);
	if (data == NULL)
		return rsd_failf(f, RSD_EIO, "", "event %llu is not JSON",
				 (unsigned long long)ev->seq);
	int err = ev->type == EVENT_RESORT_CREATED ? project_created(db, data, f)
						   : project_updated(db, data, f);
	cJSON_Delete(data);
	return err;
}

#define RESORT_COLUMNS                                                                             \
	"id, name, name_en, timezone, currency, address, stars, home_node, version, created_at,"   \
	" updated_at"

static cJSON *row_to_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < sqlite3_column_count(st); i++) {
		const char *name = sqlite3_column_name(st, i);
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
			break;
		case SQLITE_NULL: cJSON_AddNullToObject(o, name); break;
		default: cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, i));
		}
	}
	return o;
}

int resort_get(struct readmodel_reader *r, const char *id, cJSON **out, uint64_t *version)
{
	static const char sql[] = "SELECT " RESORT_COLUMNS " FROM resorts WHERE id = ?";
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int err = RSD_OK;
	if (rc == SQLITE_ROW) {
		*out = row_to_json(st);
		*version = (uint64_t)sqlite3_column_int64(st, 8);
	} else {
		err = rc == SQLITE_DONE ? RSD_ENOTFOUND : RSD_EIO;
	}
	sqlite3_reset(st);
	return err;
}

#define CURSOR_PREFIX "r1."

int resort_list(struct readmodel_reader *r, const char *cursor, int limit, cJSON **items,
		char *next_cursor, size_t next_len, struct rsd_fail *f)
{
	static const char sql[] =
		"SELECT " RESORT_COLUMNS " FROM resorts WHERE id > ? ORDER BY id LIMIT ?";
	const char *after = "";
	if (cursor) {
		size_t pl = strlen(CURSOR_PREFIX);
		if (strncmp(cursor, CURSOR_PREFIX, pl) != 0 ||
		    strlen(cursor) - pl > ENTITY_ID_BYTES_MAX)
			return rsd_failf(f, RSD_EINVAL, "cursor",
					 "'cursor' is not one this server gave");
		after = cursor + pl;
	}
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit + 1);
	cJSON *arr = cJSON_CreateArray();
	int count = 0, rc;
	next_cursor[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == limit) {
			/* One row more than asked: there is a next page, starting after the last
			 * shown. */
			cJSON *last = cJSON_GetArrayItem(arr, count - 1);
			snprintf(next_cursor, next_len, CURSOR_PREFIX "%s",
				 json_get_string(last, "id"));
			break;
		}
		cJSON_AddItemToArray(arr, row_to_json(st));
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
