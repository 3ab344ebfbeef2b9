/* Unit tests for json.c: what cJSON lets through and resortd refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"

static int parse(const char *text, struct rsd_fail *f)
{
	cJSON *root = NULL;
	memset(f, 0, sizeof(*f));
	int rc = json_parse_strict(text, strlen(text), &root, f);
	cJSON_Delete(root);
	return rc;
}

static void test_accepts_plain_objects(void **state)
{
	(void)state;
	struct rsd_fail f;
	assert_int_equal(parse("{\"a\":1,\"b\":[1,2,{\"c\":\"한국어\"}]}  \n", &f), RSD_OK);
}

static void test_refuses_duplicates_at_any_depth(void **state)
{
	(void)state;
	struct rsd_fail f;
	assert_int_equal(parse("{\"a\":1,\"a\":2}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "a");
	assert_int_equal(parse("{\"x\":[{\"k\":1,\"z\":2,\"k\":3}]}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "k");
}

static void test_depth_limit(void **state)
{
	(void)state;
	struct rsd_fail f;
	char deep[2 * (JSON_DEPTH_MAX + 1) + 1];
	for (int depth = JSON_DEPTH_MAX; depth <= JSON_DEPTH_MAX + 1; depth++) {
		memset(deep, 0, sizeof(deep));
		for (int i = 0; i < depth; i++) {
			deep[i] = '[';
			deep[2 * depth - 1 - i] = ']';
		}
		int rc = parse(deep, &f);
		assert_int_equal(rc, depth <= JSON_DEPTH_MAX ? RSD_OK : RSD_EINVAL);
	}
	/* Brackets inside strings do not count. */
	assert_int_equal(parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", &f), RSD_OK);
}

static void test_refuses_garbage(void **state)
{
	(void)state;
	struct rsd_fail f;
	const char *bad[] = {
		"",    "{",	     "{} {}",  "{\"a\":\"\\u0000\"}", "{\"a\":\"\xff\"}",
		"nul", "{\"a\":1,}", "{'a':1}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &f) != RSD_EINVAL)
			fail_msg("accepted %s", bad[i]);
}

static void test_integers_from_the_double(void **state)
{
	(void)state;
	struct rsd_fail f;
	cJSON *root;
	const char *text = "[5, 2.5, 1e400, 9007199254740993, -3, 1.0, 99999999999]";
	assert_int_equal(json_parse_strict(text, strlen(text), &root, &f), RSD_OK);
	int64_t v;
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 0), 1, 5, &v), RSD_OK);
	assert_int_equal(v, 5);
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 1), 0, 10, &v), RSD_EINVAL);
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 2), INT64_MIN, INT64_MAX, &v),
			 RSD_EINVAL);
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 3), INT64_MIN, INT64_MAX, &v),
			 RSD_EINVAL);
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 4), 0, 10, &v), RSD_EINVAL);
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 5), 0, 10, &v), RSD_OK);
	/* cJSON's valueint would clamp this to INT_MAX; the range check sees the real value. */
	assert_int_equal(json_get_int(cJSON_GetArrayItem(root, 6), 0, 2147483647, &v), RSD_EINVAL);
	cJSON_Delete(root);
}

static const struct json_field spec[] = {
	{"name", JSON_STRING, JSON_REQUIRED, 1, 5},
	{"n", JSON_INT, JSON_NULLABLE, 1, 5},
	{"flag", JSON_BOOL, 0, 0, 0},
};

static int check(const char *text, struct rsd_fail *f)
{
	cJSON *root;
	memset(f, 0, sizeof(*f));
	assert_int_equal(json_parse_strict(text, strlen(text), &root, f), RSD_OK);
	int rc = json_check_object(root, spec, 3, f);
	cJSON_Delete(root);
	return rc;
}

static void test_schema_checks_name_the_field(void **state)
{
	(void)state;
	struct rsd_fail f;
	assert_int_equal(check("{\"name\":\"오션\",\"n\":null,\"flag\":true}", &f), RSD_OK);
	assert_int_equal(check("{\"name\":\"x\",\"extra\":1}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "extra");
	assert_int_equal(check("{\"n\":1}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "name");
	assert_int_equal(check("{\"name\":7}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "name");
	assert_int_equal(check("{\"name\":\"toolong\"}", &f), RSD_EINVAL);
	assert_int_equal(check("{\"name\":\"x\",\"n\":6}", &f), RSD_EINVAL);
	assert_string_equal(f.field, "n");
	assert_int_equal(check("{\"name\":null}", &f), RSD_EINVAL);
	assert_int_equal(check("[1]", &f), RSD_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_plain_objects),
		cmocka_unit_test(test_refuses_duplicates_at_any_depth),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_refuses_garbage),
		cmocka_unit_test(test_integers_from_the_double),
		cmocka_unit_test(test_schema_checks_name_the_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
