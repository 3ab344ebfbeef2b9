/*
 * json.c — strict parsing and schema checks for request bodies.
 * The depth check runs on the raw text before cJSON sees it, so a deeply nested body
 * costs one linear scan and never a deep recursion.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits_rsd.h"
#include "banned.h"

/* Largest integer a double holds exactly: beyond it "integral" means nothing. */
#define JSON_INT_EXACT_MAX 9007199254740991.0

/* Returns the nesting depth of text outside strings, stopping early past limit. */
static int scan_depth(const char *s, size_t len, int limit)
{
	int depth = 0, max = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
			if (max > limit)
				return max;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

static int compare_names(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	return strcmp(x, y);
}

/* Finds a duplicate key anywhere in the tree; returns it or NULL. */
static const char *find_duplicate(const cJSON *item)
{
	if (cJSON_IsObject(item)) {
		size_t n = 0;
		for (const cJSON *c = item->child; c; c = c->next)
			n++;
		if (n > 1) {
			const char **names = rsd_malloc(n * sizeof(*names));
			size_t i = 0;
			for (const cJSON *c = item->child; c; c = c->next)
				names[i++] = c->string;
			qsort(names, n, sizeof(*names), compare_names);
			const char *dup = NULL;
			for (i = 1; i < n && dup == NULL; i++)
				if (strcmp(names[i - 1], names[i]) == 0)
					dup = names[i];
			free(names);
			if (dup)
				return dup;
		}
	}
	for (const cJSON *c = item->child; c; c = c->next) {
		const char *dup = find_duplicate(c);
		if (dup)
			return dup;
	}
	return NULL;
}

int json_parse_strict(const char *body, size_t len, cJSON **out, struct rsd_fail *f)
{
	*out = NULL;
	if (len == 0)
		return rsd_failf(f, RSD_EINVAL, "",
				 "the request body is empty; a JSON object is expected");
	if (rsd_utf8_chars(body, len) < 0)
		return rsd_failf(f, RSD_EINVAL, "", "the request body is not valid UTF-8");
	if (memchr(body, '\0', len) != NULL)
		return rsd_failf(f, RSD_EINVAL, "", "the request body contains a NUL byte");
	if (scan_depth(body, len, JSON_DEPTH_MAX) > JSON_DEPTH_MAX)
		return rsd_failf(f, RSD_EINVAL, "", "JSON nesting is deeper than %d",
				 JSON_DEPTH_MAX);
	/* cJSON would cut a string at \u0000 and hand us a shorter value than was sent. */
	for (const char *p = body; (p = memchr(p, '\\', (size_t)(body + len - p))) != NULL;
	     p += 2) {
		if ((size_t)(body + len - p) >= 6 && memcmp(p, "\\u0000", 6) == 0)
			return rsd_failf(f, RSD_EINVAL, "", "strings must not contain \\u0000");
		if (p + 1 >= body + len)
			break;
	}
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root == NULL) {
		const char *at = cJSON_GetErrorPtr();
		long off = (at && at >= body && at <= body + len) ? (long)(at - body) : -1;
		return rsd_failf(f, RSD_EINVAL, "",
				 "the request body is not valid JSON (at byte %ld)", off);
	}
	for (const char *p = end; p && p < body + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			cJSON_Delete(root);
			return rsd_failf(f, RSD_EINVAL, "",
					 "text after the JSON value (at byte %ld)",
					 (long)(p - body));
		}
	}
	const char *dup = find_duplicate(root);
	if (dup) {
		int rc = rsd_failf(f, RSD_EINVAL, dup, "duplicate key '%s'", dup);
		cJSON_Delete(root);
		return rc;
	}
	*out = root;
	return RSD_OK;
}

int json_get_int(const cJSON *item, int64_t min, int64_t max, int64_t *out)
{
	if (!cJSON_IsNumber(item))
		return RSD_EINVAL;
	double d = item->valuedouble;
	if (!isfinite(d) || d != floor(d) || fabs(d) > JSON_INT_EXACT_MAX)
		return RSD_EINVAL;
	if (d < (double)min || d > (double)max)
		return RSD_EINVAL;
	*out = (int64_t)d;
	return RSD_OK;
}

const char *json_get_string(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *type_name(enum json_type t)
{
	switch (t) {
	case JSON_STRING: return "a string";
	case JSON_INT: return "an integer";
	case JSON_BOOL: return "a boolean";
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	}
	return "a value";
}

static int check_member(const cJSON *v, const struct json_field *spec, struct rsd_fail *f)
{
	if (cJSON_IsNull(v)) {
		if (spec->flags & JSON_NULLABLE)
			return RSD_OK;
		return rsd_failf(f, RSD_EINVAL, spec->name, "'%s' must not be null", spec->name);
	}
	int64_t iv;
	long chars;
	switch (spec->type) {
	case JSON_STRING:
		if (!cJSON_IsString(v))
			break;
		chars = rsd_utf8_chars(v->valuestring, strlen(v->valuestring));
		if (chars < spec->min || chars > spec->max)
			return rsd_failf(f, RSD_EINVAL, spec->name,
					 "'%s' must be %lld to %lld characters long, got %ld",
					 spec->name, (long long)spec->min, (long long)spec->max,
					 chars);
		return RSD_OK;
	case JSON_INT:
		if (!cJSON_IsNumber(v))
			break;
		if (json_get_int(v, spec->min, spec->max, &iv) != RSD_OK)
			return rsd_failf(f, RSD_EINVAL, spec->name,
					 "'%s' must be an integer from %lld to %lld", spec->name,
					 (long long)spec->min, (long long)spec->max);
		return RSD_OK;
	case JSON_BOOL:
		if (cJSON_IsBool(v))
			return RSD_OK;
		break;
	case JSON_OBJECT:
		if (cJSON_IsObject(v))
			return RSD_OK;
		break;
	case JSON_ARRAY:
		if (cJSON_IsArray(v))
			return RSD_OK;
		break;
	}
	return rsd_failf(f, RSD_EINVAL, spec->name, "'%s' must be %s", spec->name,
			 type_name(spec->type));
}

int json_check_object(const cJSON *obj, const struct json_field *spec, size_t n, struct rsd_fail *f)
{
	if (!cJSON_IsObject(obj))
		return rsd_failf(f, RSD_EINVAL, "", "the request body must be a JSON object");
	for (const cJSON *c = obj->child; c; c = c->next) {
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(spec[i].name, c->string) == 0)
				break;
		if (i == n)
			return rsd_failf(f, RSD_EINVAL, c->string, "unknown field '%.64s'",
					 c->string);
		int rc = check_member(c, &spec[i], f);
		if (rc != RSD_OK)
			return rc;
	}
	for (size_t i = 0; i < n; i++)
		if ((spec[i].flags & JSON_REQUIRED) &&
		    cJSON_GetObjectItemCaseSensitive(obj, spec[i].name) == NULL)
			return rsd_failf(f, RSD_EINVAL, spec[i].name, "'%s' is required",
					 spec[i].name);
	return RSD_OK;
}

int json_check_nested(const cJSON *obj, const char *path, const struct json_field *spec, size_t n,
		      struct rsd_fail *f)
{
	if (!cJSON_IsObject(obj))
		return rsd_failf(f, RSD_EINVAL, path, "'%s' must be an object", path);
	int err = json_check_object(obj, spec, n, f);
	if (err) {
		char inner[RSD_FIELD_BYTES_MAX];
		snprintf(inner, sizeof(inner), "%s", f->field);
		snprintf(f->field, sizeof(f->field), "%.40s.%.50s", path, inner);
	}
	return err;
}

char *json_print(const cJSON *item)
{
	char *s = cJSON_PrintUnformatted(item);
	RSD_ASSERT(s != NULL);
	return s;
}
