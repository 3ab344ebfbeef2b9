/*
 * catalog.c — products and rate plans from request to row (catalog.h says the model).
 *
 * Three parts: decoding (every member checked, the field named on error), the writer-side
 * commands (references and versions checked in LMDB's entities records, the change put
 * whole into the event), and the projection (document rebuilt from the previous one plus
 * the event, in canonical order, then the derived rows: attributes, package components,
 * the search index, the prices per date).
 */
#include "catalog.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"
#include "price.h"
#include "banned.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const type_names[] = {NULL, "room_type", "facility", "ticket", "package"};

const char *catalog_type_name(int type)
{
	return type > 0 && type < (int)COUNT(type_names) ? type_names[type] : NULL;
}

int catalog_type_of(const char *name)
{
	for (int i = 1; i < (int)COUNT(type_names); i++)
		if (name && strcmp(name, type_names[i]) == 0)
			return i;
	return 0;
}

/* --- decoding --- */

static const struct json_field product_fields[] = {
	{"type", JSON_STRING, JSON_REQUIRED, 1, 16},
	{"resort_id", JSON_STRING, JSON_REQUIRED, 1, ENTITY_ID_BYTES_MAX},
	{"name", JSON_STRING, JSON_REQUIRED, 1, PRODUCT_NAME_CHARS_MAX},
	{"name_en", JSON_STRING, JSON_NULLABLE, 1, PRODUCT_NAME_CHARS_MAX},
	{"description", JSON_STRING, 0, 0, PRODUCT_DESCRIPTION_CHARS_MAX},
	{"status", JSON_STRING, 0, 1, 16},
	{"currency", JSON_STRING, 0, 3, 3},
	{"attributes", JSON_OBJECT, 0, 0, 0},
	{"capacity", JSON_OBJECT, JSON_NULLABLE, 0, 0},
	{"components", JSON_ARRAY, 0, 0, 0},
	{"media", JSON_ARRAY, 0, 0, 0},
};
static const struct json_field rate_plan_fields[] = {
	{"name", JSON_STRING, JSON_REQUIRED, 1, PRODUCT_NAME_CHARS_MAX},
	{"status", JSON_STRING, 0, 1, 16},
	{"rules", JSON_ARRAY, JSON_REQUIRED, 0, 0},
};
static const struct json_field capacity_fields[] = {
	{"unit", JSON_STRING, JSON_REQUIRED, 1, 16},
	{"count", JSON_INT, JSON_REQUIRED, 0, CAPACITY_COUNT_MAX},
};
static const struct json_field component_fields[] = {
	{"product_id", JSON_STRING, JSON_REQUIRED, 1, ENTITY_ID_BYTES_MAX},
	{"quantity", JSON_INT, JSON_REQUIRED, 1, 100},
};
static const struct json_field media_fields[] = {
	{"url", JSON_STRING, JSON_REQUIRED, 1, URL_BYTES_MAX},
	{"kind", JSON_STRING, JSON_REQUIRED, 1, 16},
	{"caption", JSON_STRING, JSON_NULLABLE, 0, PRODUCT_NAME_CHARS_MAX},
};

static bool one_of(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(s, *names) == 0)
			return true;
	return false;
}

/* Checks a string member against a closed set of names. */
static int check_enum(const cJSON *obj, const char *member, const char *path,
		      const char *const *names, const char *shown, struct rsd_fail *f)
{
	const char *s = json_get_string(obj, member);
	if (s == NULL || one_of(s, names))
		return RSD_OK;
	return rsd_failf(f, RSD_EINVAL, path, "'%s' must be one of %s", path, shown);
}

static bool attr_key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > ATTR_KEY_BYTES_MAX || !islower((unsigned char)k[0]))
		return false;
	for (const char *p = k; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
			return false;
	return true;
}

static int check_attr_scalar(const cJSON *v, const char *path, struct rsd_fail *f)
{
	if (cJSON_IsBool(v) || (cJSON_IsNumber(v) && isfinite(v->valuedouble)))
		return RSD_OK;
	if (cJSON_IsString(v)) {
		long chars = rsd_utf8_chars(v->valuestring, strlen(v->valuestring));
		if (chars >= 1 && chars <= ATTR_VALUE_CHARS_MAX)
			return RSD_OK;
		return rsd_failf(f, RSD_EINVAL, path, "'%s' must be 1 to %d characters long", path,
				 ATTR_VALUE_CHARS_MAX);
	}
	return rsd_failf(f, RSD_EINVAL, path,
			 "'%s' must be a string, a number, a boolean or an array of them", path);
}

/* Attributes: a flat object; in a patch a null value removes the key. */
static int check_attributes(const cJSON *attrs, bool patch, struct rsd_fail *f)
{
	int n = 0;
	char path[RSD_FIELD_BYTES_MAX];
	for (const cJSON *a = attrs->child; a; a = a->next) {
		if (++n > ATTR_KEYS_MAX)
			return rsd_failf(f, RSD_EINVAL, "attributes",
					 "'attributes' may have at most %d keys", ATTR_KEYS_MAX);
		snprintf(path, sizeof(path), "attributes.%.40s", a->string);
		if (!attr_key_ok(a->string))
			return rsd_failf(f, RSD_EINVAL, path,
					 "attribute keys are 1 to %d characters of a-z, 0-9 and _,"
					 " starting with a letter",
					 ATTR_KEY_BYTES_MAX);
		if (cJSON_IsNull(a) && patch)
			continue;
		if (!cJSON_IsArray(a)) {
			int err = check_attr_scalar(a, path, f);
			if (err)
				return err;
			continue;
		}
		int items = cJSON_GetArraySize(a);
		if (items < 1 || items > ATTR_ARRAY_ITEMS_MAX)
			return rsd_failf(f, RSD_EINVAL, path, "'%s' must have 1 to %d items", path,
					 ATTR_ARRAY_ITEMS_MAX);
		int i = 0;
		for (const cJSON *v = a->child; v; v = v->next, i++) {
			char item[RSD_FIELD_BYTES_MAX + 8];
			snprintf(item, sizeof(item), "%.60s[%d]", path, i);
			if (cJSON_IsArray(v))
				return rsd_failf(f, RSD_EINVAL, item,
						 "attribute arrays do not nest");
			int err = check_attr_scalar(v, item, f);
			if (err)
				return err;
		}
	}
	return RSD_OK;
}

/* Checks every item of an array member against spec; at most max items, at least min. */
static int check_items(const cJSON *arr, const char *name, int min, int max,
		       const struct json_field *spec, size_t n, struct rsd_fail *f)
{
	int count = cJSON_GetArraySize(arr);
	if (count < min || count > max)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' must have %d to %d items", name, min,
				 max);
	int i = 0;
	for (const cJSON *it = arr->child; it; it = it->next, i++) {
		char path[48];
		snprintf(path, sizeof(path), "%s[%d]", name, i);
		int err = json_check_nested(it, path, spec, n, f);
		if (err)
			return err;
	}
	return RSD_OK;
}

static int check_media(const cJSON *media, struct rsd_fail *f)
{
	static const char *const kinds[] = {"image", "video", "document", NULL};
	int err = check_items(media, "media", 0, MEDIA_ITEMS_MAX, media_fields, COUNT(media_fields),
			      f);
	int i = 0;
	for (const cJSON *m = media->child; m && !err; m = m->next, i++) {
		char path[48];
		const char *url = json_get_string(m, "url");
		snprintf(path, sizeof(path), "media[%d].url", i);
		if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
			return rsd_failf(f, RSD_EINVAL, path, "'%s' must be an http(s) URL", path);
		for (const char *p = url; *p; p++)
			if ((unsigned char)*p <= 0x20 || *p == 0x7f)
				return rsd_failf(f, RSD_EINVAL, path,
						 "'%s' must not contain spaces or control bytes",
						 path);
		snprintf(path, sizeof(path), "media[%d].kind", i);
		err = check_enum(m, "kind", path, kinds, "image, video, document", f);
	}
	return err;
}

static int check_components(const cJSON *comps, struct rsd_fail *f)
{
	int err = check_items(comps, "components", 1, PACKAGE_COMPONENTS_MAX, component_fields,
			      COUNT(component_fields), f);
	int i = 0;
	for (const cJSON *c = comps->child; c && !err; c = c->next, i++)
		for (const cJSON *d = comps->child; d != c; d = d->next)
			if (strcmp(json_get_string(c, "product_id"),
				   json_get_string(d, "product_id")) == 0) {
				char path[48];
				snprintf(path, sizeof(path), "components[%d].product_id", i);
				return rsd_failf(f, RSD_EINVAL, path,
						 "a product appears twice in 'components'");
			}
	return err;
}

static int check_product(const cJSON *obj, enum catalog_op op, struct rsd_fail *f)
{
	static const char *const types[] = {"room_type", "facility", "ticket", "package", NULL};
	static const char *const statuses[] = {"active", "inactive", NULL};
	static const char *const units[] = {"rooms", "seats", "units", NULL};
	int err;
	if (op == CATALOG_PATCH && cJSON_GetObjectItem(obj, "type"))
		return rsd_failf(f, RSD_EINVAL, "type",
				 "'type' never changes: create a new product instead");
	if (op == CATALOG_PATCH && cJSON_GetObjectItem(obj, "resort_id"))
		return rsd_failf(f, RSD_EINVAL, "resort_id",
				 "'resort_id' never changes: create a new product instead");
	if ((err = check_enum(obj, "type", "type", types, "room_type, facility, ticket, package",
			      f)) ||
	    (err = check_enum(obj, "status", "status", statuses, "active, inactive", f)))
		return err;
	const char *cur = json_get_string(obj, "currency");
	if (cur && !(isupper((unsigned char)cur[0]) && isupper((unsigned char)cur[1]) &&
		     isupper((unsigned char)cur[2])))
		return rsd_failf(f, RSD_EINVAL, "currency",
				 "'currency' must be an ISO 4217 code of three capital letters");
	const cJSON *v = cJSON_GetObjectItem(obj, "attributes");
	if (v && (err = check_attributes(v, op == CATALOG_PATCH, f)))
		return err;
	v = cJSON_GetObjectItem(obj, "capacity");
	if (v && !cJSON_IsNull(v) &&
	    ((err = json_check_nested(v, "capacity", capacity_fields, COUNT(capacity_fields), f)) ||
	     (err = check_enum(v, "unit", "capacity.unit", units, "rooms, seats, units", f))))
		return err;
	if ((v = cJSON_GetObjectItem(obj, "media")) && (err = check_media(v, f)))
		return err;
	if ((v = cJSON_GetObjectItem(obj, "components")) && (err = check_components(v, f)))
		return err;
	const char *type = json_get_string(obj, "type");
	if (type && (strcmp(type, "package") == 0) != (v != NULL))
		return rsd_failf(f, RSD_EINVAL, "components",
				 v ? "only a package has 'components'"
				   : "a package needs 'components': the products it bundles");
	return RSD_OK;
}

static int check_rate_plan(const cJSON *obj, struct rsd_fail *f)
{
	static const char *const statuses[] = {"active", "inactive", NULL};
	int err = check_enum(obj, "status", "status", statuses, "active, inactive", f);
	const cJSON *rules = cJSON_GetObjectItem(obj, "rules");
	if (err == RSD_OK && rules) {
		struct price_rule parsed[PRICE_RULES_MAX];
		size_t n;
		err = price_rules_decode(rules, parsed, &n, f);
	}
	return err;
}

static int check_name(const cJSON *obj, struct rsd_fail *f)
{
	const char *name = json_get_string(obj, "name");
	if (name == NULL)
		return RSD_OK;
	for (const char *p = name; *p; p++)
		if (!isspace((unsigned char)*p))
			return RSD_OK;
	return rsd_failf(f, RSD_EINVAL, "name", "'name' must not be blank");
}

int catalog_check(enum catalog_kind kind, enum catalog_op op, const cJSON *obj, struct rsd_fail *f)
{
	const struct json_field *spec = kind == CATALOG_PRODUCT ? product_fields : rate_plan_fields;
	size_t n = kind == CATALOG_PRODUCT ? COUNT(product_fields) : COUNT(rate_plan_fields);
	int err;
	if (op == CATALOG_PATCH) {
		/* A merge patch names any subset; required members may not be removed. */
		struct json_field relaxed[COUNT(product_fields)];
		for (size_t i = 0; i < n; i++) {
			relaxed[i] = spec[i];
			relaxed[i].flags &= ~(unsigned)JSON_REQUIRED;
		}
		err = json_check_object(obj, relaxed, n, f);
		if (err == RSD_OK && obj->child == NULL)
			err = rsd_failf(f, RSD_EINVAL, "",
					"the patch changes nothing: name at least one field");
	} else {
		err = json_check_object(obj, spec, n, f);
	}
	if (err == RSD_OK)
		err = check_name(obj, f);
	if (err == RSD_OK)
		err = kind == CATALOG_PRODUCT ? check_product(obj, op, f) : check_rate_plan(obj, f);
	return err;
}

int catalog_decode(enum catalog_kind kind, enum catalog_op op, const char *body, size_t len,
		   cJSON **out, struct rsd_fail *f)
{
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	if ((err = catalog_check(kind, op, obj, f))) {
		cJSON_Delete(obj);
		return err;
	}
	*out = obj;
	return RSD_OK;
}

/* --- commands (writer thread) --- */

static const char *kind_name(enum catalog_kind kind)
{
	return kind == CATALOG_PRODUCT ? "product" : "rate plan";
}

static uint8_t entity_kind_of(enum catalog_kind kind)
{
	return kind == CATALOG_PRODUCT ? ENTITY_PRODUCT : ENTITY_RATE_PLAN;
}

/* Reads a live (not deleted) entity of kind into rec; RSD_ENOTFOUND otherwise. */
static int live_entity(struct writer_txn *wt, const char *id, uint8_t kind, struct entity_rec *rec)
{
	int err = store_entity_get(wt->txn, wt->store, id, rec);
	if (err == RSD_OK && (rec->kind != kind || rec->deleted))
		err = RSD_ENOTFOUND;
	return err;
}

/* Loads the document the command changes and checks If-Match. */
static int load_target(struct writer_txn *wt, struct catalog_cmd *cc, struct entity_rec *rec)
{
	struct command *cmd = &cc->cmd;
	int err = live_entity(wt, cc->id, entity_kind_of(cc->kind), rec);
	if (err == RSD_ENOTFOUND)
		return rsd_failf(&cmd->fail, err, "", "no %s with id '%s'", kind_name(cc->kind),
				 cc->id);
	if (err)
		return rsd_failf(&cmd->fail, err, "", "reading the %s: %s", kind_name(cc->kind),
				 rsd_strerror(err));
	if (cc->if_match == UINT64_MAX)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "If-Match",
				 "If-Match compares strongly: a weak ETag matches no version");
	if (cc->if_match && cc->if_match != rec->version)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "If-Match",
				 "the %s is at version %llu, not %llu", kind_name(cc->kind),
				 (unsigned long long)rec->version,
				 (unsigned long long)cc->if_match);
	return RSD_OK;
}

/* A product's references: its resort, and a package's components (live products of the
 * same resort that are not packages themselves). */
static int check_references(struct writer_txn *wt, struct command *cmd, const char *resort_id,
			    const cJSON *components)
{
	struct entity_rec rec;
	if (resort_id && live_entity(wt, resort_id, ENTITY_RESORT, &rec) != RSD_OK)
		return rsd_failf(&cmd->fail, RSD_EINVAL, "resort_id", "no resort with id '%s'",
				 resort_id);
	int i = 0;
	for (const cJSON *c = components ? components->child : NULL; c; c = c->next, i++) {
		const char *pid = json_get_string(c, "product_id");
		char path[48];
		snprintf(path, sizeof(path), "components[%d].product_id", i);
		if (live_entity(wt, pid, ENTITY_PRODUCT, &rec) != RSD_OK)
			return rsd_failf(&cmd->fail, RSD_EINVAL, path, "no product with id '%s'",
					 pid);
		if (rec.sub == PRODUCT_PACKAGE)
			return rsd_failf(&cmd->fail, RSD_EINVAL, path,
					 "a package cannot contain another package");
		if (resort_id && strcmp(rec.owner, resort_id) != 0)
			return rsd_failf(&cmd->fail, RSD_EINVAL, path,
					 "product '%s' belongs to another resort", pid);
	}
	return RSD_OK;
}

static uint16_t event_type_of(enum catalog_kind kind, enum catalog_op op)
{
	static const uint16_t types[2][4] = {
		{EVENT_PRODUCT_CREATED, EVENT_PRODUCT_REPLACED, EVENT_PRODUCT_PATCHED,
		 EVENT_PRODUCT_DELETED},
		{EVENT_RATE_PLAN_CREATED, EVENT_RATE_PLAN_REPLACED, EVENT_RATE_PLAN_PATCHED,
		 EVENT_RATE_PLAN_DELETED},
	};
	return types[kind][op];
}

/*
 * Lists kept in LMDB's meta database for the checks a command cannot make from entities
 * records alone: "ak:<product>" the product's attribute keys (a merge patch must not grow
 * them past ATTR_KEYS_MAX), "pk:<package>" a live package's components (a product a live
 * package contains cannot be deleted). Items are NUL-separated.
 */
struct id_list {
	int n;
	char item[ATTR_KEYS_MAX + 1][ENTITY_ID_BYTES_MAX + 1];
};

static int list_get(struct writer_txn *wt, const char *key, struct id_list *l)
{
	MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key}, v;
	l->n = 0;
	int rc = mdb_get(wt->txn, wt->store->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc)
		return store_err(rc);
	const char *p = v.mv_data, *end = p + v.mv_size;
	while (p < end && l->n <= ATTR_KEYS_MAX) {
		size_t n = strnlen(p, (size_t)(end - p));
		snprintf(l->item[l->n++], ENTITY_ID_BYTES_MAX + 1, "%.*s", (int)n, p);
		p += n + 1;
	}
	return RSD_OK;
}

static int list_put(struct writer_txn *wt, const char *key, const struct id_list *l)
{
	char buf[(ATTR_KEYS_MAX + 1) * (ENTITY_ID_BYTES_MAX + 1)];
	size_t len = 0;
	for (int i = 0; i < l->n; i++) {
		size_t n = strlen(l->item[i]) + 1;
		memcpy(buf + len, l->item[i], n);
		len += n;
	}
	MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
	MDB_val v = {.mv_size = len, .mv_data = buf};
	int rc = l->n ? mdb_put(wt->txn, wt->store->meta, &k, &v, 0)
		      : mdb_del(wt->txn, wt->store->meta, &k, NULL);
	return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
}

static int list_find(const struct id_list *l, const char *item)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->item[i], item) == 0)
			return i;
	return -1;
}

/* Records the product's attribute keys after this command; refuses a patch that would
 * leave more than ATTR_KEYS_MAX. */
static int track_attributes(struct writer_txn *wt, struct catalog_cmd *cc)
{
	const cJSON *attrs = cJSON_GetObjectItem(cc->fields, "attributes");
	if (cc->op == CATALOG_PATCH && attrs == NULL)
		return RSD_OK;
	char key[ENTITY_ID_BYTES_MAX + 4];
	snprintf(key, sizeof(key), "ak:%s", cc->id);
	struct id_list l;
	int err = cc->op == CATALOG_PATCH ? list_get(wt, key, &l) : (l.n = 0, RSD_OK);
	for (const cJSON *a = attrs ? attrs->child : NULL; a && !err; a = a->next) {
		int i = list_find(&l, a->string);
		if (cJSON_IsNull(a) && i >= 0)
			memcpy(l.item[i], l.item[--l.n], sizeof(l.item[i]));
		else if (!cJSON_IsNull(a) && i < 0 && l.n == ATTR_KEYS_MAX)
			return rsd_failf(&cc->cmd.fail, RSD_EINVAL, "attributes",
					 "the product would have more than %d attribute keys",
					 ATTR_KEYS_MAX);
		else if (!cJSON_IsNull(a) && i < 0)
			snprintf(l.item[l.n++], ENTITY_ID_BYTES_MAX + 1, "%s", a->string);
	}
	return err ? err : list_put(wt, key, &l);
}

/* Records a package's components after this command (none once it is deleted). */
static int track_components(struct writer_txn *wt, struct catalog_cmd *cc)
{
	const cJSON *comps = cJSON_GetObjectItem(cc->fields, "components");
	if (cc->op != CATALOG_DELETE && comps == NULL)
		return RSD_OK;
	char key[ENTITY_ID_BYTES_MAX + 4];
	snprintf(key, sizeof(key), "pk:%s", cc->id);
	struct id_list l = {0};
	for (const cJSON *c = comps ? comps->child : NULL; c; c = c->next)
		snprintf(l.item[l.n++], ENTITY_ID_BYTES_MAX + 1, "%s",
			 json_get_string(c, "product_id"));
	return list_put(wt, key, &l);
}

/* RSD_ECONFLICT (cmd->fail filled) when a live package contains product id. */
static int check_not_a_component(struct writer_txn *wt, struct command *cmd, const char *id)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(wt->txn, wt->store->meta, &cur);
	if (rc)
		return store_err(rc);
	MDB_val k = {.mv_size = 3, .mv_data = "pk:"}, v;
	int err = RSD_OK;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > 3 && memcmp(k.mv_data, "pk:", 3) == 0 && !err;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *p = v.mv_data, *end = p + v.mv_size;
		for (; p < end && !err; p += strnlen(p, (size_t)(end - p)) + 1)
			if (strnlen(p, (size_t)(end - p)) == strlen(id) && strcmp(p, id) == 0)
				err = rsd_failf(&cmd->fail, RSD_ECONFLICT, "",
						"package '%.*s' contains this product: change or"
						" delete the package first",
						(int)(k.mv_size - 3), (const char *)k.mv_data + 3);
	}
	mdb_cursor_close(cur);
	return err;
}

/* The meta lists a product command keeps up to date, and the delete check. */
static int track_product(struct writer_txn *wt, struct catalog_cmd *cc)
{
	int err = RSD_OK;
	if (cc->op == CATALOG_DELETE)
		err = check_not_a_component(wt, &cc->cmd, cc->id);
	else
		err = track_attributes(wt, cc);
	if (err == RSD_ENOTFOUND || err == RSD_EFULL || err == RSD_EIO)
		return rsd_failf(&cc->cmd.fail, err, "", "storing the product: %s",
				 rsd_strerror(err));
	return err ? err : track_components(wt, cc);
}

static int create_apply(struct writer_txn *wt, struct catalog_cmd *cc)
{
	struct command *cmd = &cc->cmd;
	struct entity_rec rec = {.kind = entity_kind_of(cc->kind), .version = 1};
	int err = store_entity_get(wt->txn, wt->store, cc->id, &rec);
	if (err != RSD_ENOTFOUND)
		return rsd_failf(&cmd->fail, err ? err : RSD_ECONFLICT, "id",
				 err ? "reading the entities: %s" : "the id '%s' is taken",
				 err ? rsd_strerror(err) : cc->id);
	rec = (struct entity_rec){.kind = entity_kind_of(cc->kind), .version = 1};
	if (cc->kind == CATALOG_PRODUCT) {
		const char *resort_id = json_get_string(cc->fields, "resort_id");
		err = check_references(wt, cmd, resort_id,
				       cJSON_GetObjectItem(cc->fields, "components"));
		if (err)
			return err;
		rec.sub = (uint8_t)catalog_type_of(json_get_string(cc->fields, "type"));
		snprintf(rec.owner, sizeof(rec.owner), "%s", resort_id);
	} else {
		struct entity_rec product;
		if (live_entity(wt, cc->owner, ENTITY_PRODUCT, &product) != RSD_OK)
			return rsd_failf(&cmd->fail, RSD_ENOTFOUND, "", "no product with id '%s'",
					 cc->owner);
		snprintf(rec.owner, sizeof(rec.owner), "%s", cc->owner);
	}
	if ((err = store_entity_put(wt->txn, wt->store, cc->id, &rec)))
		return rsd_failf(&cmd->fail, err, "", "storing the %s: %s", kind_name(cc->kind),
				 rsd_strerror(err));
	if (cc->kind == CATALOG_PRODUCT && (err = track_product(wt, cc)))
		return err;
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *doc = cJSON_Duplicate(cc->fields, 1);
	cJSON_AddStringToObject(doc, "id", cc->id);
	if (cc->kind == CATALOG_RATE_PLAN)
		cJSON_AddStringToObject(doc, "product_id", cc->owner);
	cJSON_AddStringToObject(doc, "home_node", wt->store->node_id);
	cJSON_AddNumberToObject(doc, "version", 1);
	cJSON_AddStringToObject(doc, "created_at", now);
	cJSON_AddStringToObject(doc, "updated_at", now);
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddItemToObject(ev, "doc", doc);
	cc->version = 1;
	return writer_emit_json(wt, event_type_of(cc->kind, CATALOG_CREATE), ev);
}

/* Checks what a replace or patch of a product may not do given the stored record. */
static int check_product_change(struct writer_txn *wt, struct catalog_cmd *cc,
				const struct entity_rec *rec)
{
	struct command *cmd = &cc->cmd;
	const cJSON *comps = cJSON_GetObjectItem(cc->fields, "components");
	if (cc->op == CATALOG_REPLACE) {
		if (catalog_type_of(json_get_string(cc->fields, "type")) != rec->sub)
			return rsd_failf(&cmd->fail, RSD_ECONFLICT, "type",
					 "the product is a %s; 'type' never changes",
					 catalog_type_name(rec->sub));
		if (strcmp(json_get_string(cc->fields, "resort_id"), rec->owner) != 0)
			return rsd_failf(&cmd->fail, RSD_ECONFLICT, "resort_id",
					 "the product belongs to resort '%s'; 'resort_id' never"
					 " changes",
					 rec->owner);
	} else if (comps && rec->sub != PRODUCT_PACKAGE) {
		return rsd_failf(&cmd->fail, RSD_EINVAL, "components",
				 "only a package has 'components'");
	}
	return comps ? check_references(wt, cmd, rec->owner, comps) : RSD_OK;
}

static int change_apply(struct writer_txn *wt, struct catalog_cmd *cc)
{
	struct command *cmd = &cc->cmd;
	struct entity_rec rec;
	int err = load_target(wt, cc, &rec);
	if (err)
		return err;
	if (cc->kind == CATALOG_PRODUCT && cc->op != CATALOG_DELETE &&
	    (err = check_product_change(wt, cc, &rec)))
		return err;
	if (cc->kind == CATALOG_PRODUCT && (err = track_product(wt, cc)))
		return err;
	rec.version++;
	rec.deleted = cc->op == CATALOG_DELETE;
	if ((err = store_entity_put(wt->txn, wt->store, cc->id, &rec)))
		return rsd_failf(&cmd->fail, err, "", "storing the %s: %s", kind_name(cc->kind),
				 rsd_strerror(err));
	char now[32];
	rsd_time_format(rsd_now_ms(), now, sizeof(now));
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "id", cc->id);
	cJSON_AddNumberToObject(ev, "version", (double)rec.version);
	cJSON_AddStringToObject(ev, "updated_at", now);
	if (cc->fields)
		cJSON_AddItemToObject(ev, cc->op == CATALOG_PATCH ? "patch" : "fields",
				      cJSON_Duplicate(cc->fields, 1));
	cc->version = rec.version;
	return writer_emit_json(wt, event_type_of(cc->kind, cc->op), ev);
}

static int catalog_apply(struct writer_txn *wt, struct command *cmd)
{
	struct catalog_cmd *cc = (struct catalog_cmd *)cmd;
	return cc->op == CATALOG_CREATE ? create_apply(wt, cc) : change_apply(wt, cc);
}

void catalog_cmd_init(struct catalog_cmd *cc, enum catalog_kind kind, enum catalog_op op,
		      const char *id, const char *owner, cJSON *fields, uint64_t if_match)
{
	memset(cc, 0, sizeof(*cc));
	cc->kind = kind;
	cc->op = op;
	if (id)
		snprintf(cc->id, sizeof(cc->id), "%s", id);
	else
		rsd_id_new(kind == CATALOG_PRODUCT ? "pr_" : "rp_", cc->id, sizeof(cc->id));
	if (owner)
		snprintf(cc->owner, sizeof(cc->owner), "%s", owner);
	cc->fields = fields;
	cc->if_match = if_match;
	cc->cmd.apply = catalog_apply;
}

void catalog_cmd_release(struct catalog_cmd *cc)
{
	cJSON_Delete(cc->fields);
	cc->fields = NULL;
}

/* --- projection (projector thread) --- */

/* RFC 7396: members of patch replace those of target; null removes; objects merge. */
static void merge_patch(cJSON *target, const cJSON *patch)
{
	for (const cJSON *p = patch->child; p; p = p->next) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
		if (cJSON_IsNull(p))
			cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
		else if (cJSON_IsObject(p) && cJSON_IsObject(t))
			merge_patch(t, p);
		else if (t)
			cJSON_ReplaceItemInObjectCaseSensitive(target, p->string,
							       cJSON_Duplicate(p, 1));
		else
			cJSON_AddItemToObject(target, p->string, cJSON_Duplicate(p, 1));
	}
}

/* Moves member name of from into to (or the default when from lacks it). */
static void take(cJSON *to, cJSON *from, const char *name, cJSON *dflt)
{
	cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(from, name);
	cJSON_AddItemToObject(to, name, v ? v : dflt);
	if (v)
		cJSON_Delete(dflt);
}

/* The stored form of a document: canonical member order, defaults filled in. Frees in. */
static cJSON *canonical(enum catalog_kind kind, cJSON *in)
{
	cJSON *out = cJSON_CreateObject();
	take(out, in, "id", cJSON_CreateNull());
	if (kind == CATALOG_PRODUCT) {
		take(out, in, "type", cJSON_CreateNull());
		take(out, in, "resort_id", cJSON_CreateNull());
		take(out, in, "name", cJSON_CreateNull());
		take(out, in, "name_en", cJSON_CreateNull());
		take(out, in, "description", cJSON_CreateString(""));
		take(out, in, "status", cJSON_CreateString("active"));
		take(out, in, "currency", cJSON_CreateString("KRW"));
		take(out, in, "attributes", cJSON_CreateObject());
		take(out, in, "capacity", cJSON_CreateNull());
		take(out, in, "components", cJSON_CreateArray());
		take(out, in, "media", cJSON_CreateArray());
		cJSON *rating = cJSON_CreateObject();
		cJSON_AddNumberToObject(rating, "count", 0);
		cJSON_AddNullToObject(rating, "average");
		take(out, in, "rating", rating);
	} else {
		take(out, in, "product_id", cJSON_CreateNull());
		take(out, in, "name", cJSON_CreateNull());
		take(out, in, "status", cJSON_CreateString("active"));
		take(out, in, "rules", cJSON_CreateArray());
	}
	take(out, in, "home_node", cJSON_CreateNull());
	take(out, in, "version", cJSON_CreateNull());
	take(out, in, "created_at", cJSON_CreateNull());
	take(out, in, "updated_at", cJSON_CreateNull());
	cJSON_Delete(in);
	return out;
}

static int sql_fail(sqlite3 *db, struct rsd_fail *f)
{
	return rsd_failf(f, RSD_EIO, "", "projecting the catalog: %s", sqlite3_errmsg(db));
}

/* Runs a prepared statement to completion and finalizes it. */
static int run(sqlite3 *db, sqlite3_stmt *st, struct rsd_fail *f)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? RSD_OK : sql_fail(db, f);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct rsd_fail *f)
{
	return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? RSD_OK : sql_fail(db, f);
}

/* Reads the stored document of id; *doc NULL when there is none. */
static int load_doc(sqlite3 *db, enum catalog_kind kind, const char *id, cJSON **doc,
		    struct rsd_fail *f)
{
	sqlite3_stmt *st;
	int err = prepare(db,
			  kind == CATALOG_PRODUCT ? "SELECT doc FROM products WHERE id = ?"
						  : "SELECT doc FROM rate_plans WHERE id = ?",
			  &st, f);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	*doc = NULL;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*doc = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(db, f);
	return RSD_OK;
}

/* Adds one attribute row (and its text to the search text). */
static int add_attr(sqlite3_stmt *st, sqlite3_int64 rowid, const char *key, const cJSON *v)
{
	char num[32];
	const char *text = v->valuestring;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_null(st, 4);
	if (cJSON_IsBool(v)) {
		text = cJSON_IsTrue(v) ? "true" : "false";
	} else if (cJSON_IsNumber(v)) {
		/* The text form is what JSON writes: 2, not 2.0; 2.5 as 2.5. */
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 1e15) {
			snprintf(num, sizeof(num), "%lld", (long long)d);
		} else {
			/* The shortest text that reads back as d: 0.1, not 0.10000000000000001. */
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(num, sizeof(num), "%.*g", prec, d);
				if (strtod(num, NULL) == d)
					break;
			}
		}
		text = num;
		sqlite3_bind_double(st, 4, d);
	}
	sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	return sqlite3_step(st) == SQLITE_DONE ? RSD_OK : RSD_EIO;
}

/* Rewrites a product's attribute rows and returns the string values joined for search. */
static int project_attrs(sqlite3 *db, sqlite3_int64 rowid, const cJSON *attrs, bool live,
			 char **text, struct rsd_fail *f)
{
	sqlite3_stmt *st;
	int err = prepare(db, "DELETE FROM product_attrs WHERE product_rowid = ?", &st, f);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, rowid);
	if ((err = run(db, st, f)))
		return err;
	size_t cap = 64, len = 0;
	*text = rsd_malloc(cap);
	(*text)[0] = '\0';
	if (!live)
		return RSD_OK;
	if ((err = prepare(db, "INSERT OR IGNORE INTO product_attrs VALUES (?, ?, ?, ?)", &st, f)))
		return err;
	for (const cJSON *a = attrs ? attrs->child : NULL; a && !err; a = a->next) {
		const cJSON *first = cJSON_IsArray(a) ? a->child : a;
		for (const cJSON *v = first; v && !err; v = cJSON_IsArray(a) ? v->next : NULL) {
			err = add_attr(st, rowid, a->string, v);
			if (!cJSON_IsString(v))
				continue;
			size_t n = strlen(v->valuestring);
			if (len + n + 2 > cap) {
				cap = (len + n + 2) * 2;
				*text = rsd_realloc(*text, cap);
			}
			memcpy(*text + len, v->valuestring, n);
			len += n;
			(*text)[len++] = ' ';
			(*text)[len] = '\0';
		}
	}
	sqlite3_finalize(st);
	return err ? sql_fail(db, f) : RSD_OK;
}

static int project_components(sqlite3 *db, const char *id, const cJSON *comps, struct rsd_fail *f)
{
	sqlite3_stmt *st;
	int err = prepare(db, "DELETE FROM package_components WHERE package_id = ?", &st, f);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if ((err = run(db, st, f)))
		return err;
	for (const cJSON *c = comps ? comps->child : NULL; c && !err; c = c->next) {
		if ((err = prepare(db, "INSERT INTO package_components VALUES (?, ?, ?)", &st, f)))
			return err;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, json_get_string(c, "product_id"), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3,
				   (sqlite3_int64)cJSON_GetObjectItem(c, "quantity")->valuedouble);
		err = run(db, st, f);
	}
	return err;
}

static void bind_member(sqlite3_stmt *st, int i, const cJSON *doc, const char *name)
{
	const char *s = json_get_string(doc, name);
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* The derived rows of a product: attributes, components and its search entry. Only active,
 * live products are searchable. */
static int project_product_rows(sqlite3 *db, const cJSON *doc, bool deleted, struct rsd_fail *f)
{
	const char *id = json_get_string(doc, "id");
	sqlite3_stmt *st;
	int err = prepare(db, "SELECT rowid FROM products WHERE id = ?", &st, f);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return sql_fail(db, f);
	}
	sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	const char *status = json_get_string(doc, "status");
	bool live = !deleted && status && strcmp(status, "active") == 0;
	char *attr_text = NULL;
	err = project_attrs(db, rowid, cJSON_GetObjectItem(doc, "attributes"), live, &attr_text, f);
	if (!err)
		err = project_components(db, id, cJSON_GetObjectItem(doc, "components"), f);
	if (!err && !(err = prepare(db, "DELETE FROM product_fts WHERE rowid = ?", &st, f))) {
		sqlite3_bind_int64(st, 1, rowid);
		err = run(db, st, f);
	}
	if (!err && live &&
	    !(err = prepare(db,
			    "INSERT INTO product_fts(rowid, name, name_en, description, attrs)"
			    " VALUES (?, ?, ?, ?, ?)",
			    &st, f))) {
		sqlite3_bind_int64(st, 1, rowid);
		bind_member(st, 2, doc, "name");
		bind_member(st, 3, doc, "name_en");
		bind_member(st, 4, doc, "description");
		sqlite3_bind_text(st, 5, attr_text, -1, SQLITE_STATIC);
		err = run(db, st, f);
	}
	free(attr_text);
	return err;
}

/*
 * Recomputes day_prices of a product from its live, active rate plans: per date the lowest
 * amount; on a tie the plan that sorts first by id.
 */
static int project_day_prices(sqlite3 *db, const char *product_id, struct rsd_fail *f)
{
	sqlite3_stmt *st, *plans, *ins = NULL;
	int err = prepare(db, "DELETE FROM day_prices WHERE product_id = ?", &st, f);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	if ((err = run(db, st, f)) ||
	    (err = prepare(db,
			   "SELECT id, doc -> '$.rules' FROM rate_plans WHERE product_id = ?"
			   " AND deleted = 0 AND doc ->> '$.status' = 'active' ORDER BY id",
			   &plans, f)))
		return err;
	if ((err = prepare(db,
			   "INSERT INTO day_prices VALUES (?1, ?2, ?3, ?4)"
			   " ON CONFLICT (product_id, day) DO UPDATE SET amount = excluded.amount,"
			   " rate_plan_id = excluded.rate_plan_id WHERE excluded.amount < amount",
			   &ins, f))) {
		sqlite3_finalize(plans);
		return err;
	}
	sqlite3_bind_text(plans, 1, product_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 1, product_id, -1, SQLITE_STATIC);
	while (!err && sqlite3_step(plans) == SQLITE_ROW) {
		cJSON *rules_json = cJSON_Parse((const char *)sqlite3_column_text(plans, 1));
		struct price_rule rules[PRICE_RULES_MAX];
		size_t n = 0;
		struct rsd_fail ignored;
		if (rules_json == NULL || price_rules_decode(rules_json, rules, &n, &ignored)) {
			cJSON_Delete(rules_json);
			err = rsd_failf(f, RSD_EIO, "", "rate plan %s has unreadable rules",
					(const char *)sqlite3_column_text(plans, 0));
			break;
		}
		cJSON_Delete(rules_json);
		/* Resolve rule by rule over its own range: the dates any rule covers, never the
		 * empty years between two far-apart rules. */
		int64_t amounts[PRICE_RULE_DAYS_MAX + 1];
		sqlite3_bind_text(ins, 4, (const char *)sqlite3_column_text(plans, 0), -1,
				  SQLITE_TRANSIENT);
		for (size_t i = 0; i < n && !err; i++) {
			int32_t from = rules[i].from_day, to = rules[i].to_day;
			price_resolve(rules, n, from, to, amounts);
			for (int32_t d = from; d <= to && !err; d++) {
				if (amounts[d - from] < 0)
					continue; /* a weekday rule's range has days it skips */
				sqlite3_bind_int64(ins, 2, d);
				sqlite3_bind_int64(ins, 3, amounts[d - from]);
				if (sqlite3_step(ins) != SQLITE_DONE)
					err = sql_fail(db, f);
				sqlite3_reset(ins);
			}
		}
	}
	sqlite3_finalize(plans);
	sqlite3_finalize(ins);
	return err;
}

/* Writes the document row: insert for a create, update otherwise. */
static int store_doc(sqlite3 *db, enum catalog_kind kind, const cJSON *doc, bool created,
		     bool deleted, struct rsd_fail *f)
{
	static const char *const sql[2][2] = {
		{"UPDATE products SET doc = ?2, version = ?3, deleted = ?4 WHERE id = ?1",
		 "INSERT INTO products(id, doc, version, deleted) VALUES (?1, ?2, ?3, ?4)"},
		{"UPDATE rate_plans SET doc = ?2, version = ?3, deleted = ?4 WHERE id = ?1",
		 "INSERT INTO rate_plans(id, doc, version, deleted, product_id)"
		 " VALUES (?1, ?2, ?3, ?4, ?5)"},
	};
	sqlite3_stmt *st;
	int err = prepare(db, sql[kind][created], &st, f);
	if (err)
		return err;
	char *text = json_print(doc);
	bind_member(st, 1, doc, "id");
	sqlite3_bind_text(st, 2, text, -1, cJSON_free);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)cJSON_GetObjectItem(doc, "version")->valuedouble);
	sqlite3_bind_int(st, 4, deleted);
	if (kind == CATALOG_RATE_PLAN && created)
		bind_member(st, 5, doc, "product_id");
	return run(db, st, f);
}

/* The document after the event: from the previous one and the event's data. */
static cJSON *next_doc(enum catalog_kind kind, enum catalog_op op, cJSON *prev, cJSON *data)
{
	static const char *const kept[] = {"id",     "type",	  "resort_id", "product_id",
					   "rating", "home_node", "created_at"};
	cJSON *doc;
	if (op == CATALOG_CREATE)
		return canonical(kind, cJSON_DetachItemFromObject(data, "doc"));
	if (op == CATALOG_REPLACE) {
		doc = cJSON_DetachItemFromObject(data, "fields");
		for (size_t i = 0; i < COUNT(kept); i++) {
			cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(prev, kept[i]);
			if (v) {
				cJSON_DeleteItemFromObjectCaseSensitive(doc, kept[i]);
				cJSON_AddItemToObject(doc, kept[i], v);
			}
		}
		cJSON_Delete(prev);
	} else {
		doc = prev;
		if (op == CATALOG_PATCH)
			merge_patch(doc, cJSON_GetObjectItem(data, "patch"));
	}
	/* A replace's fields lack these members, so remove-then-add rather than replace. */
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "version");
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "updated_at");
	cJSON_AddItemToObject(doc, "version",
			      cJSON_Duplicate(cJSON_GetObjectItem(data, "version"), 1));
	cJSON_AddItemToObject(doc, "updated_at",
			      cJSON_Duplicate(cJSON_GetObjectItem(data, "updated_at"), 1));
	return canonical(kind, doc);
}

static int project_doc(sqlite3 *db, enum catalog_kind kind, enum catalog_op op, cJSON *data,
		       struct rsd_fail *f)
{
	cJSON *prev = NULL;
	int err;
	if (op != CATALOG_CREATE) {
		const char *id = json_get_string(data, "id");
		if ((err = load_doc(db, kind, id ? id : "", &prev, f)))
			return err;
		if (prev == NULL)
			return rsd_failf(f, RSD_EIO, "", "event for unknown %s '%s'",
					 kind_name(kind), id ? id : "");
	}
	cJSON *doc = next_doc(kind, op, prev, data);
	bool deleted = op == CATALOG_DELETE;
	err = store_doc(db, kind, doc, op == CATALOG_CREATE, deleted, f);
	if (!err && kind == CATALOG_PRODUCT)
		err = project_product_rows(db, doc, deleted, f);
	if (!err && kind == CATALOG_RATE_PLAN)
		err = project_day_prices(db, json_get_string(doc, "product_id"), f);
	cJSON_Delete(doc);
	return err;
}

int catalog_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		    struct rsd_fail *f)
{
	(void)stmts; /* rare events: preparing each time costs little */
	cJSON *data = cJSON_ParseWithLength(ev->data, ev->data_len);
	if (data == NULL)
		return rsd_failf(f, RSD_EIO, "", "event %llu is not JSON",
				 (unsigned long long)ev->seq);
	int t = ev->type - EVENT_PRODUCT_CREATED;
	enum catalog_kind kind = t < 4 ? CATALOG_PRODUCT : CATALOG_RATE_PLAN;
	int err = project_doc(db, kind, (enum catalog_op)(t % 4), data, f);
	cJSON_Delete(data);
	return err;
}

/* --- reads (worker threads) --- */

int catalog_get(struct readmodel_reader *r, enum catalog_kind kind, const char *id, char **json,
		uint64_t *version, char *etag, size_t etag_len)
{
	static const char product_sql[] = "SELECT doc, version, rating_count, rating_sum"
					  " FROM products WHERE id = ? AND deleted = 0";
	static const char plan_sql[] =
		"SELECT doc, version, 0, 0 FROM rate_plans WHERE id = ? AND deleted = 0";
	sqlite3_stmt *st = readmodel_stmt(r, kind == CATALOG_PRODUCT ? product_sql : plan_sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), err = RSD_OK;
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*json = rsd_malloc(n + 1);
		memcpy(*json, sqlite3_column_text(st, 0), n + 1);
		*version = (uint64_t)sqlite3_column_int64(st, 1);
		long long count = sqlite3_column_int64(st, 2), sum = sqlite3_column_int64(st, 3);
		/* Reviews change the document but not the version writers compare. */
		if (count)
			snprintf(etag, etag_len, "\"%llu.%lld.%lld\"", (unsigned long long)*version,
				 count, sum);
		else
			snprintf(etag, etag_len, "\"%llu\"", (unsigned long long)*version);
	} else {
		err = rc == SQLITE_DONE ? RSD_ENOTFOUND : RSD_EIO;
	}
	sqlite3_reset(st);
	return err;
}

/* The currency of a live product; RSD_ENOTFOUND when there is none. */
static int product_currency(struct readmodel_reader *r, const char *id, char out[4])
{
	static const char sql[] = "SELECT currency FROM products WHERE id = ? AND deleted = 0";
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out, 4, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? RSD_OK : rc == SQLITE_DONE ? RSD_ENOTFOUND : RSD_EIO;
}

int catalog_rate_plans(struct readmodel_reader *r, const char *product_id, cJSON **out)
{
	static const char sql[] =
		"SELECT doc FROM rate_plans WHERE product_id = ? AND deleted = 0 ORDER BY id";
	char currency[4];
	int err = product_currency(r, product_id, currency);
	if (err)
		return err;
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	cJSON *arr = cJSON_CreateArray();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cJSON_AddItemToArray(arr, cJSON_Parse((const char *)sqlite3_column_text(st, 0)));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return RSD_EIO;
	}
	*out = arr;
	return RSD_OK;
}

int catalog_prices(struct readmodel_reader *r, const char *product_id, int32_t from_day,
		   int32_t to_day, cJSON **out)
{
	static const char sql[] = "SELECT day, amount, rate_plan_id FROM day_prices"
				  " WHERE product_id = ? AND day >= ? AND day < ? ORDER BY day";
	char currency[4], date[11];
	int err = product_currency(r, product_id, currency);
	if (err)
		return err;
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, from_day);
	sqlite3_bind_int(st, 3, to_day);
	cJSON *obj = cJSON_CreateObject(), *days = cJSON_CreateArray();
	cJSON_AddStringToObject(obj, "product_id", product_id);
	cJSON_AddStringToObject(obj, "currency", currency);
	price_format_date(from_day, date);
	cJSON_AddStringToObject(obj, "from", date);
	price_format_date(to_day, date);
	cJSON_AddStringToObject(obj, "to", date);
	cJSON_AddItemToObject(obj, "days", days);
	int rc = sqlite3_step(st);
	for (int32_t d = from_day; d < to_day; d++) {
		cJSON *day = cJSON_CreateObject();
		price_format_date(d, date);
		cJSON_AddStringToObject(day, "date", date);
		if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == d) {
			cJSON_AddNumberToObject(day, "amount", (double)sqlite3_column_int64(st, 1));
			cJSON_AddStringToObject(day, "rate_plan_id",
						(const char *)sqlite3_column_text(st, 2));
			rc = sqlite3_step(st);
		} else {
			cJSON_AddNullToObject(day, "amount");
			cJSON_AddNullToObject(day, "rate_plan_id");
		}
		cJSON_AddItemToArray(days, day);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		cJSON_Delete(obj);
		return RSD_EIO;
	}
	*out = obj;
	return RSD_OK;
}

int catalog_quote(struct readmodel_reader *r, const char *product_id, int32_t from_day,
		  int32_t to_day, uint32_t qty, struct catalog_quote *out, struct rsd_fail *f)
{
	static const char product_sql[] =
		"SELECT currency, status, type, doc ->> '$.attributes.cancellation_free_days',"
		" doc ->> '$.attributes.cancellation_fee_percent'"
		" FROM products WHERE id = ? AND deleted = 0";
	static const char price_sql[] = "SELECT count(*), total(amount) FROM day_prices"
					" WHERE product_id = ? AND day >= ? AND day < ?";
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *st = readmodel_stmt(r, product_sql);
	if (st == NULL)
		return rsd_failf(f, RSD_EIO, "", "reading the catalog failed");
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rsd_failf(f, RSD_ENOTFOUND, "", "no product with id '%.48s'", product_id);
	}
	snprintf(out->currency, sizeof(out->currency), "%s", sqlite3_column_text(st, 0));
	bool active = strcmp((const char *)sqlite3_column_text(st, 1), "active") == 0;
	out->type = (enum product_type)catalog_type_of((const char *)sqlite3_column_text(st, 2));
	out->free_cancel_days =
		sqlite3_column_type(st, 3) == SQLITE_INTEGER ? (int)sqlite3_column_int(st, 3) : 0;
	out->cancel_fee_percent =
		sqlite3_column_type(st, 4) == SQLITE_INTEGER ? (int)sqlite3_column_int(st, 4) : 100;
	sqlite3_reset(st);
	if (out->free_cancel_days < 0 || out->free_cancel_days > ADVANCE_DAYS_MAX)
		out->free_cancel_days = 0;
	if (out->cancel_fee_percent < 0 || out->cancel_fee_percent > 100)
		out->cancel_fee_percent = 100;
	if (!active)
		return rsd_failf(f, RSD_ECONFLICT, "", "product '%.48s' is not for sale (inactive)",
				 product_id);
	if ((st = readmodel_stmt(r, price_sql)) == NULL)
		return rsd_failf(f, RSD_EIO, "", "reading the catalog failed");
	sqlite3_bind_text(st, 1, product_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, from_day);
	sqlite3_bind_int(st, 3, to_day);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->nights_priced = sqlite3_column_int64(st, 0);
		out->amount = (int64_t)sqlite3_column_double(st, 1) * (int64_t)qty;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rsd_failf(f, RSD_EIO, "", "reading the catalog failed");
	if (out->nights_priced != to_day - from_day)
		return rsd_failf(f, RSD_ECONFLICT, "",
				 "product '%.48s' has no price on some night of the stay",
				 product_id);
	return RSD_OK;
}
