/*
 * json.h — strict JSON for request bodies, on top of cJSON.
 *
 * cJSON accepts duplicate keys, clamps big integers, turns 1e400 into infinity and nests
 * 1000 deep; it does not check UTF-8. json_parse_strict refuses all of that, and
 * json_check_object refuses unknown fields and wrong types, naming the field.
 */
#ifndef RSD_JSON_H
#define RSD_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsd.h"

/*
 * Parses body[0..len) as one JSON value: valid UTF-8, nesting at most JSON_DEPTH_MAX,
 * no duplicate keys, no \u0000, nothing but white space after it. On success *out is a
 * tree the caller frees with cJSON_Delete. Errors: RSD_EINVAL with f filled.
 */
int json_parse_strict(const char *body, size_t len, cJSON **out, struct rsd_fail *f);

enum json_type { JSON_STRING, JSON_INT, JSON_BOOL, JSON_OBJECT, JSON_ARRAY };

enum json_field_flags {
	JSON_REQUIRED = 1 << 0, /* must be present */
	JSON_NULLABLE = 1 << 1, /* null is accepted (it clears the field in a patch) */
};

/* One allowed member of an object. min/max: inclusive range for JSON_INT, length in
 * characters for JSON_STRING; ignored otherwise. */
struct json_field {
	const char *name;
	enum json_type type;
	unsigned flags;
	int64_t min, max;
};

/*
 * Checks that obj is an object whose members are all in spec[0..n), of the right type and
 * range, with every JSON_REQUIRED one present. Errors: RSD_EINVAL with the field named.
 */
int json_check_object(const cJSON *obj, const struct json_field *spec, size_t n,
		      struct rsd_fail *f);

/*
 * json_check_object for a member that is itself an object: path names it ("media[2]",
 * "capacity") and prefixes the field of any error ("media[2].url").
 */
int json_check_nested(const cJSON *obj, const char *path, const struct json_field *spec, size_t n,
		      struct rsd_fail *f);

/* Reads an integral number in [min, max] (from valuedouble, never valueint). */
int json_get_int(const cJSON *item, int64_t min, int64_t max, int64_t *out);

/* Returns the string member name of obj, or NULL when absent, null or not a string. */
const char *json_get_string(const cJSON *obj, const char *name);

/* Serializes item without white space; the caller frees with cJSON_free. Aborts on OOM. */
char *json_print(const cJSON *item);

#endif
