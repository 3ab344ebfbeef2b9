/* Unit tests for router.c: matching, parameters, 405 sets and error-to-status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "router.h"
#include "rsd.h"

static void test_static_and_param_routes(void **state)
{
	(void)state;
	struct route_match m;
	assert_int_equal(router_match(METHOD_GET, "/healthz", &m), RSD_OK);
	assert_string_equal(m.route->pattern, "/healthz");
	assert_int_equal(m.nparams, 0);
	assert_int_equal(router_match(METHOD_GET, "/v1/resorts/rs_abc", &m), RSD_OK);
	assert_string_equal(m.route->pattern, "/v1/resorts/{id}");
	assert_int_equal(m.nparams, 1);
	assert_int_equal(m.params[0].name_len, 2);
	assert_memory_equal(m.params[0].name, "id", 2);
	assert_string_equal(m.params[0].value, "rs_abc");
	assert_int_equal(router_match(METHOD_POST, "/v1/resorts", &m), RSD_OK);
	assert_string_equal(m.route->pattern, "/v1/resorts");
}

static void test_not_found(void **state)
{
	(void)state;
	struct route_match m;
	const char *paths[] = {"/",	    "/v1/resorts/", "/v1/resorts/a/b", "/v1/resort",
			       "/healthz/", "/v1//resorts", "/v1/resortsx"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		assert_int_equal(router_match(METHOD_GET, paths[i], &m), RSD_ENOTFOUND);
}

static void test_method_not_allowed_lists_allowed(void **state)
{
	(void)state;
	struct route_match m;
	assert_int_equal(router_match(METHOD_DELETE, "/v1/resorts", &m), RSD_ECONFLICT);
	char allow[128];
	router_allow_header(m.allowed, allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD, POST");
	assert_int_equal(router_match(METHOD_POST, "/v1/resorts/x", &m), RSD_ECONFLICT);
	router_allow_header(m.allowed, allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD, PATCH");
}

static void test_param_too_long_does_not_match(void **state)
{
	(void)state;
	struct route_match m;
	char path[ROUTE_PARAM_BYTES_MAX + 32];
	memset(path, 'a', sizeof(path));
	memcpy(path, "/v1/resorts/", 12);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(router_match(METHOD_GET, path, &m), RSD_ENOTFOUND);
}

static void test_status_mapping(void **state)
{
	(void)state;
	assert_int_equal(router_status(RSD_EINVAL), 400);
	assert_int_equal(router_status(RSD_ENOTFOUND), 404);
	assert_int_equal(router_status(RSD_ECONFLICT), 409);
	assert_int_equal(router_status(RSD_EPRECONDITION), 412);
	assert_int_equal(router_status(RSD_EFULL), 503);
	assert_int_equal(router_status(RSD_EIO), 500);
	assert_string_equal(router_status_title(405), "Method Not Allowed");
}

static void test_every_route_has_a_handler_and_pattern(void **state)
{
	(void)state;
	for (int i = 0; i < router_routes_count; i++) {
		assert_non_null(router_routes[i].handler);
		assert_true(router_routes[i].pattern[0] == '/');
		assert_true(router_routes[i].methods != 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_and_param_routes),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method_not_allowed_lists_allowed),
		cmocka_unit_test(test_param_too_long_does_not_match),
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_every_route_has_a_handler_and_pattern),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
