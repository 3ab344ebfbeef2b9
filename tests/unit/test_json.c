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

/* json_print must give cJSON_PrintUnformatted's bytes: stored documents are compared
 * byte for byte with what a rebuild from the log prints. */
static void expect_same_print(const cJSON *item)
{
	char *ours = json_print(item), *theirs = cJSON_PrintUnformatted(item);
	assert_non_null(theirs);
	assert_string_equal(ours, theirs);
	cJSON_free(ours);
	cJSON_free(theirs);
}

static void test_print_matches_cjson(void **state)
{
	(void)state;
	static const double fixed[] = {0.0,
				       -0.0,
				       1.0,
				       -1.0,
				       0.1,
				       1e15,
				       1e15 - 1,
				       -1e15 + 1,
				       1e16,
				       2147483647.0,
				       2147483648.0,
				       -2147483649.0,
				       1764000000000.0,
				       9007199254740993.0,
				       1.5e-7,
				       123456.789,
				       1.0 / 3.0,
				       -2.5e300,
				       5e-324};
	cJSON *doc = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		expect_same_print(cJSON_AddNumberToObject(doc, "n", fixed[i]));
	srand(7);
	for (int i = 0; i < 200000; i++) {
		double d;
		switch (i % 4) {
		case 0: d = (double)(rand() % 2000001 - 1000000); break;
		case 1: d = (double)rand() * (double)rand() * (i % 8 == 1 ? -1 : 1); break;
		case 2: d = (double)rand() / (double)(rand() % 1000 + 1); break;
		default: {
			uint64_t bits = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^
					(uint64_t)rand();
			memcpy(&d, &bits, sizeof(d));
		}
		}
		cJSON *n = cJSON_CreateNumber(d);
		expect_same_print(n);
		cJSON_Delete(n);
	}
	char text[64];
	for (int c = 1; c < 256; c++) {
		snprintf(text, sizeof(text), "a%cb\"\\/\xc3\xa9", c);
		cJSON *str = cJSON_CreateString(text);
		expect_same_print(str);
		cJSON_Delete(str);
	}
	cJSON *nested = cJSON_Parse("{\"a\":[1,2.5,{\"b\":null,\"c\":[]}],\"d\":{},\"e\":true,"
				    "\"f\":false,\"g\":\"\\u0001x\\n\",\"\\t\":[[[\"deep\"]]]}");
	assert_non_null(nested);
	cJSON_AddItemToObject(nested, "raw", cJSON_CreateRaw("{\"kept\":1}"));
	expect_same_print(nested);
	cJSON_Delete(nested);
	cJSON *empty = cJSON_CreateString("");
	expect_same_print(empty);
	cJSON_Delete(empty);
	cJSON_Delete(doc);
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
		cmocka_unit_test(test_print_matches_cjson),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
