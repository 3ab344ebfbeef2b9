/* Unit tests for metrics.c: counters by route/method/status, cumulative buckets, gauges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "projector.h"
#include "router.h"
#include "writer.h"

static void test_render(void **state)
{
	(void)state;
	struct metrics *m = metrics_new(2);
	/* Route 0 is /healthz in the table. */
	metrics_request(m, 0, 0, METHOD_GET, 200, 50 * 1000);	    /* 50 us */
	metrics_request(m, 1, 0, METHOD_GET, 200, 3 * 1000 * 1000); /* 3 ms, other shard */
	metrics_request(m, 1, -1, METHOD_POST, 404, 1000);
	struct writer_stats ws = {.head_seq = 42, .commits = 3, .batch_sum = 7};
	ws.batch_hist[0] = 1;
	ws.batch_hist[2] = 2;
	struct projector_stats ps = {.applied_seq = 40};
	struct metrics_gauges g = {
		.in_flight = 1, .map_used_bytes = 4096, .writer = &ws, .projector = &ps};
	char *text;
	size_t len;
	metrics_render(m, &g, &text, &len);
	assert_int_equal(strlen(text), len);
	const char *want[] = {
		"resortd_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2\n",
		"resortd_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"404\"} "
		"1\n",
		"resortd_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\","
		"status=\"200\",le=\"0.0001\"} 1\n",
		"resortd_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\","
		"status=\"200\",le=\"0.005\"} 2\n",
		"resortd_log_head_seq 42\n",
		"resortd_projector_lag_events 2\n",
		"resortd_writer_batch_size_bucket{le=\"1\"} 1\n",
		"resortd_writer_batch_size_bucket{le=\"4\"} 3\n",
		"resortd_writer_batch_size_count 3\n",
		"resortd_lmdb_map_used_bytes 4096\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(text, want[i]) == NULL)
			fail_msg("missing: %s", want[i]);
	free(text);
	metrics_free(m);
	metrics_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
