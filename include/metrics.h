/*
 * metrics.h — counters and histograms for /metrics, in Prometheus text format.
 *
 * Request counts and latencies are kept per worker (a shard each, relaxed atomics), by
 * route, method and status, and summed when scraped, so recording costs no shared lock.
 */
#ifndef RSD_METRICS_H
#define RSD_METRICS_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct metrics;
struct writer_stats;
struct projector_stats;
struct booking_stats;
struct saga_stats;

struct metrics *metrics_new(int workers);
void metrics_free(struct metrics *m);

/* Records one finished request. route_index: row of router_routes, or -1 (unmatched). */
void metrics_request(struct metrics *m, int worker, int route_index, unsigned method_bit,
		     int status, uint64_t duration_ns);

/* Gauges read at scrape time from the other modules. */
struct idp_recheck_stats;

struct metrics_gauges {
	uint64_t in_flight;
	uint64_t connections_open;
	uint64_t connections_refused;
	uint64_t map_used_bytes;
	uint64_t map_size_bytes;
	const struct writer_stats *writer;
	const struct projector_stats *projector;
	const struct booking_stats *bookings;
	const struct saga_stats *saga;
	/* The identity provider, when one is configured (oidc_status) */
	bool idp_configured;
	int idp_reachable; /* 1, 0, or -1: not known yet */
	uint64_t idp_failures;
	uint64_t idp_checked_ms;
	const struct idp_recheck_stats *recheck; /* NULL: SSO sessions are not checked again */
};

/* Renders everything as Prometheus text; *out is malloc'ed, the caller frees. */
void metrics_render(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len);

#endif
