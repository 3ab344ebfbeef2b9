/*
 * json.c — strict parsing and schema checks for request bodies.
 * The depth check runs on the raw text before cJSON sees it, so a deeply nested body
 * costs one linear scan and never a deep recursion.
 */
#include "json.h"

#include <float.h>
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

/* ---- printing: cJSON_PrintUnformatted's bytes, without its sprintf/sscanf per number ---- */

struct jbuf {
	char *p;
	size_t len, cap;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n) {
		while (b->cap - b->len < n)
			b->cap *= 2;
		b->p = rsd_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* cJSON's test that a number printed with 15 digits reads back as itself. */
static bool close_enough(double a, double b)
{
	double max = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
	return fabs(a - b) <= max * DBL_EPSILON;
}

/* Prints v in decimal into out (at least 21 bytes); returns the length. */
static int print_int(long long v, char *out)
{
	char tmp[24];
	int n = 0, len = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	return len;
}

/*
 * What Debian's cJSON 1.7.15 prints: "null" for NaN and infinities, else %1.15g, or %1.17g
 * when 15 digits do not read back. An integral value below 1e15 prints the same under
 * %1.15g as in decimal, so it takes the decimal path (most of our numbers: versions,
 * amounts in minor units, millisecond times); -0 stays "-0", as %g prints it.
 */
static void print_number(struct jbuf *b, const cJSON *item)
{
	double d = item->valuedouble;
	char num[32];
	int n;
	if (isnan(d) || isinf(d)) {
		n = snprintf(num, sizeof(num), "null");
	} else if (d == 0 && signbit(d)) {
		n = snprintf(num, sizeof(num), "-0");
	} else if (d == floor(d) && fabs(d) < 1e15) {
		n = print_int((long long)d, num);
	} else {
		n = snprintf(num, sizeof(num), "%1.15g", d);
		if (!close_enough(strtod(num, NULL), d))
			n = snprintf(num, sizeof(num), "%1.17g", d);
	}
	jb_put(b, num, (size_t)n);
}

static void print_string(struct jbuf *b, const char *s)
{
	jb_put(b, "\"", 1);
	const char *run = s;
	for (const char *p = s ? s : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 32 && c != '"' && c != '\\')
			continue;
		jb_put(b, run, (size_t)(p - run));
		run = p + 1;
		char esc[8];
		int n = 2;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default: n = snprintf(esc, sizeof(esc), "\\u%04x", c); break;
		}
		jb_put(b, esc, (size_t)n);
	}
	if (s)
		jb_put(b, run, strlen(run));
	jb_put(b, "\"", 1);
}

static void print_value(struct jbuf *b, const cJSON *item)
{
	switch (item->type & 0xFF) {
	case cJSON_False: jb_put(b, "false", 5); break;
	case cJSON_True: jb_put(b, "true", 4); break;
	case cJSON_NULL: jb_put(b, "null", 4); break;
	case cJSON_Number: print_number(b, item); break;
	case cJSON_String: print_string(b, item->valuestring); break;
	case cJSON_Raw:
		RSD_ASSERT(item->valuestring != NULL);
		jb_put(b, item->valuestring, strlen(item->valuestring));
		break;
	case cJSON_Array:
	case cJSON_Object: {
		bool object = (item->type & 0xFF) == cJSON_Object;
		jb_put(b, object ? "{" : "[", 1);
		for (const cJSON *c = item->child; c; c = c->next) {
			if (object) {
				print_string(b, c->string);
				jb_put(b, ":", 1);
			}
			print_value(b, c);
			if (c->next)
				jb_put(b, ",", 1);
		}
		jb_put(b, object ? "}" : "]", 1);
		break;
	}
	default: RSD_ASSERT(!"a cJSON item of no known type");
	}
}

char *json_print(const cJSON *item)
{
	struct jbuf b = {.p = rsd_malloc(512), .cap = 512};
	print_value(&b, item);
	jb_put(&b, "", 1);
	return b.p;
}
