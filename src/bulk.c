/*
 * bulk.c — import and export of the catalog as one JSON document (bulk.h says the format).
 *
 * Import checks every record before anything is written, then runs every record's own
 * create command inside one writer command: the writer gives each command one nested
 * transaction, so the first failing record undoes all the others.
 */
#include "bulk.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "json.h"
#include "resort.h"
#include "banned.h"

struct bulk_import {
	struct command cmd;
	int nresorts, nproducts, nplans;
	struct resort_cmd *resorts;
	struct catalog_cmd *products, *plans;
};

/* Rewrites f's field as "<list>[i].<field>". */
static int prefix_fail(struct rsd_fail *f, const char *list, int i, int err)
{
	char inner[RSD_FIELD_BYTES_MAX];
	snprintf(inner, sizeof(inner), "%s", f->field);
	if (inner[0])
		snprintf(f->field, sizeof(f->field), "%.12s[%d].%.60s", list, i, inner);
	else
		snprintf(f->field, sizeof(f->field), "%.12s[%d]", list, i);
	return err;
}

/* Takes the optional "id" member out of rec; it must carry prefix. */
static int take_id(cJSON *rec, const char *prefix, char *out, struct rsd_fail *f)
{
	out[0] = '\0';
	cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(rec, "id");
	if (id == NULL)
		return RSD_OK;
	const char *s = cJSON_IsString(id) ? id->valuestring : "";
	size_t n = strlen(s), plen = strlen(prefix);
	bool ok = n > plen && n <= ENTITY_ID_BYTES_MAX && strncmp(s, prefix, plen) == 0;
	for (size_t i = plen; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
	if (ok)
		snprintf(out, ENTITY_ID_BYTES_MAX + 1, "%s", s);
	cJSON_Delete(id);
	return ok ? RSD_OK
		  : rsd_failf(f, RSD_EINVAL, "id",
			      "'id' must be '%s' and up to %d letters, digits, _ or -", prefix,
			      ENTITY_ID_BYTES_MAX);
}

static int decode_resort(struct bulk_import *b, cJSON *rec, struct rsd_fail *f)
{
	char id[ENTITY_ID_BYTES_MAX + 1];
	int err = take_id(rec, "rs_", id, f);
	if (err == RSD_OK && (err = resort_check_create(rec, f)) == RSD_OK) {
		struct resort_cmd *rc = &b->resorts[b->nresorts++];
		resort_create_init(rc, rec);
		if (id[0])
			snprintf(rc->id, sizeof(rc->id), "%s", id);
		return RSD_OK;
	}
	cJSON_Delete(rec);
	return err;
}

static int decode_product(struct bulk_import *b, cJSON *rec, struct rsd_fail *f)
{
	char id[ENTITY_ID_BYTES_MAX + 1];
	int err = take_id(rec, "pr_", id, f);
	if (err == RSD_OK && (err = catalog_check(CATALOG_PRODUCT, CATALOG_CREATE, rec, f)) == 0) {
		catalog_cmd_init(&b->products[b->nproducts++], CATALOG_PRODUCT, CATALOG_CREATE,
				 id[0] ? id : NULL, NULL, rec, 0);
		return RSD_OK;
	}
	cJSON_Delete(rec);
	return err;
}

static int decode_plan(struct bulk_import *b, cJSON *rec, struct rsd_fail *f)
{
	char id[ENTITY_ID_BYTES_MAX + 1], product[ENTITY_ID_BYTES_MAX + 1];
	int err = take_id(rec, "rp_", id, f);
	cJSON *pid = cJSON_DetachItemFromObjectCaseSensitive(rec, "product_id");
	if (err == RSD_OK && !(cJSON_IsString(pid) && strlen(pid->valuestring) > 0 &&
			       strlen(pid->valuestring) <= ENTITY_ID_BYTES_MAX))
		err = rsd_failf(f, RSD_EINVAL, "product_id",
				"'product_id' is required: the product the plan prices");
	if (err == RSD_OK)
		snprintf(product, sizeof(product), "%s", pid->valuestring);
	cJSON_Delete(pid);
	if (err == RSD_OK &&
	    (err = catalog_check(CATALOG_RATE_PLAN, CATALOG_CREATE, rec, f)) == 0) {
		catalog_cmd_init(&b->plans[b->nplans++], CATALOG_RATE_PLAN, CATALOG_CREATE,
				 id[0] ? id : NULL, product, rec, 0);
		return RSD_OK;
	}
	cJSON_Delete(rec);
	return err;
}

/* Decodes every record of the array member name with one decoder. */
static int decode_list(struct bulk_import *b, cJSON *doc, const char *name,
		       int (*decode)(struct bulk_import *, cJSON *, struct rsd_fail *),
		       struct rsd_fail *f)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, name);
	int i = 0;
	while (list && list->child) {
		cJSON *rec = cJSON_DetachItemViaPointer(list, list->child);
		if (!cJSON_IsObject(rec)) {
			cJSON_Delete(rec);
			return prefix_fail(
				f, name, i,
				rsd_failf(f, RSD_EINVAL, "", "a record must be an object"));
		}
		int err = decode(b, rec, f);
		if (err)
			return prefix_fail(f, name, i, err);
		i++;
	}
	return RSD_OK;
}

/* Runs one record's own command; its failure becomes the import's, naming the record. */
static int apply_one(struct writer_txn *wt, struct command *all, struct command *one,
		     const char *list, int i)
{
	int err = one->apply(wt, one);
	if (err) {
		all->fail = one->fail;
		prefix_fail(&all->fail, list, i, err);
	}
	return err;
}

static int import_apply(struct writer_txn *wt, struct command *cmd)
{
	struct bulk_import *b = (struct bulk_import *)cmd;
	int err = RSD_OK;
	for (int i = 0; i < b->nresorts && !err; i++)
		err = apply_one(wt, cmd, &b->resorts[i].cmd, "resorts", i);
	for (int i = 0; i < b->nproducts && !err; i++)
		err = apply_one(wt, cmd, &b->products[i].cmd, "products", i);
	for (int i = 0; i < b->nplans && !err; i++)
		err = apply_one(wt, cmd, &b->plans[i].cmd, "rate_plans", i);
	return err;
}

int bulk_import_decode(const char *text, size_t len, struct bulk_import **out, struct rsd_fail *f)
{
	static const struct json_field top[] = {
		{"resorts", JSON_ARRAY, 0, 0, 0},
		{"products", JSON_ARRAY, 0, 0, 0},
		{"rate_plans", JSON_ARRAY, 0, 0, 0},
	};
	cJSON *doc;
	int err = json_parse_strict(text, len, &doc, f);
	if (err)
		return err;
	if ((err = json_check_object(doc, top, sizeof(top) / sizeof(top[0]), f))) {
		cJSON_Delete(doc);
		return err;
	}
	struct bulk_import *b = rsd_calloc(1, sizeof(*b));
	b->resorts = rsd_calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(doc, "resorts")) + 1,
				sizeof(*b->resorts));
	b->products =
		rsd_calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(doc, "products")) + 1,
			   sizeof(*b->products));
	b->plans =
		rsd_calloc((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(doc, "rate_plans")) + 1,
			   sizeof(*b->plans));
	b->cmd.apply = import_apply;
	if (!(err = decode_list(b, doc, "resorts", decode_resort, f)) &&
	    !(err = decode_list(b, doc, "products", decode_product, f)))
		err = decode_list(b, doc, "rate_plans", decode_plan, f);
	cJSON_Delete(doc);
	if (err) {
		bulk_import_free(b);
		return err;
	}
	*out = b;
	return RSD_OK;
}

int bulk_import_run(struct bulk_import *b, struct writer *w, uint64_t *last_seq, struct rsd_fail *f)
{
	int err = writer_run(w, &b->cmd);
	*last_seq = b->cmd.last_seq;
	if (err)
		*f = b->cmd.fail;
	return err;
}

void bulk_import_counts(const struct bulk_import *b, int *resorts, int *products, int *rate_plans)
{
	*resorts = b->nresorts;
	*products = b->nproducts;
	*rate_plans = b->nplans;
}

void bulk_import_free(struct bulk_import *b)
{
	if (b == NULL)
		return;
	for (int i = 0; i < b->nresorts; i++)
		resort_cmd_release(&b->resorts[i]);
	for (int i = 0; i < b->nproducts; i++)
		catalog_cmd_release(&b->products[i]);
	for (int i = 0; i < b->nplans; i++)
		catalog_cmd_release(&b->plans[i]);
	free(b->resorts);
	free(b->products);
	free(b->plans);
	free(b);
}

/* --- export --- */

/* Prints each row's document (column 0, JSON text) without the members an import makes. */
static int export_list(struct readmodel_reader *r, FILE *out, const char *name, const char *sql,
		       bool last)
{
	static const char *const made[] = {"rating",	 "home_node",  "version",
					   "created_at", "updated_at", NULL};
	sqlite3_stmt *st = readmodel_stmt(r, sql);
	if (st == NULL)
		return RSD_EIO;
	fprintf(out, "\"%s\": [", name);
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *doc = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
		for (const char *const *m = made; doc && *m; m++)
			cJSON_DeleteItemFromObjectCaseSensitive(doc, *m);
		/* Only a package names components; an empty list is how the others store none. */
		cJSON *comps = cJSON_GetObjectItemCaseSensitive(doc, "components");
		if (comps && cJSON_GetArraySize(comps) == 0)
			cJSON_DeleteItemFromObjectCaseSensitive(doc, "components");
		char *text = doc ? json_print(doc) : NULL;
		fprintf(out, "%s\n  %s", n++ ? "," : "", text ? text : "null");
		cJSON_free(text);
		cJSON_Delete(doc);
	}
	sqlite3_reset(st);
	fprintf(out, "\n]%s\n", last ? "" : ",");
	return rc == SQLITE_DONE ? RSD_OK : RSD_EIO;
}

int bulk_export(struct readmodel_reader *r, FILE *out, struct rsd_fail *f)
{
	/* Resorts: the columns an import takes, nulls left out; in creation order, so every
	 * reference points back to a record already written. */
	static const char resorts[] =
		"SELECT json_object('id', id, 'name', name, 'name_en', name_en, 'timezone', "
		"timezone,"
		" 'currency', currency, 'address', address, 'stars', stars) FROM resorts"
		" ORDER BY rowid";
	/* Packages last: a package may have been patched to contain a product made after it. */
	static const char products[] = "SELECT doc FROM products WHERE deleted = 0"
				       " ORDER BY type = 'package', rowid";
	static const char plans[] =
		"SELECT r.doc FROM rate_plans r JOIN products p ON p.id = r.product_id"
		" AND p.deleted = 0 WHERE r.deleted = 0 ORDER BY r.rowid";
	fprintf(out, "{");
	int err = export_list(r, out, "resorts", resorts, false);
	if (!err)
		err = export_list(r, out, "products", products, false);
	if (!err)
		err = export_list(r, out, "rate_plans", plans, true);
	fprintf(out, "}\n");
	if (err || fflush(out) != 0)
		return rsd_failf(f, RSD_EIO, "", "export failed: %s", sqlite3_errmsg(r->db));
	return RSD_OK;
}
