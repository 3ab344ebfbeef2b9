/*
 * metrics.c — request counters and latency histograms per worker shard, and the text
 * rendering of every metric resortd exports.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "idp_recheck.h"
#include "projector.h"
#include "router.h"
#include "saga.h"
#include "rsd.h"
#include "writer.h"
#include "banned.h"

#define ROUTES_TRACKED	64 /* routes + 1 for unmatched */
#define METHODS_TRACKED 8
static const int statuses[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409,
			       412, 413, 414, 415, 422, 429, 431, 500, 501, 503, 0 /* other */};
#define STATUSES_TRACKED ((int)(sizeof(statuses) / sizeof(statuses[0])))
static const double latency_bounds_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					  0.01,	  0.025,   0.05,   0.1,	  0.25,	  0.5,
					  1,	  2.5,	   5,	   10};
#define BUCKETS ((int)(sizeof(latency_bounds_s) / sizeof(latency_bounds_s[0])))
static const char *const method_names[METHODS_TRACKED] = {"GET",   "HEAD",   "POST",	"PUT",
							  "PATCH", "DELETE", "OPTIONS", "OTHER"};

struct cell {
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t buckets[BUCKETS]; /* non-cumulative; summed when rendered */
};

struct shard {
	struct cell cells[ROUTES_TRACKED][METHODS_TRACKED][STATUSES_TRACKED];
};

struct metrics {
	int nshards;
	struct shard *shards;
};

_Static_assert(ROUTES_TRACKED > 8, "room for the route table");

struct metrics *metrics_new(int workers)
{
	struct metrics *m = rsd_calloc(1, sizeof(*m));
	m->nshards = workers > 0 ? workers : 1;
	m->shards = rsd_calloc((size_t)m->nshards, sizeof(struct shard));
	return m;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	free(m->shards);
	free(m);
}

static int status_index(int status)
{
	for (int i = 0; i < STATUSES_TRACKED - 1; i++)
		if (statuses[i] == status)
			return i;
	return STATUSES_TRACKED - 1;
}

static int method_index(unsigned bit)
{
	for (int i = 0; i < METHODS_TRACKED; i++)
		if (bit == (1u << i))
			return i;
	return METHODS_TRACKED - 1;
}

void metrics_request(struct metrics *m, int worker, int route_index, unsigned method_bit,
		     int status, uint64_t duration_ns)
{
	RSD_ASSERT(router_routes_count < ROUTES_TRACKED);
	int r = route_index < 0 ? router_routes_count : route_index;
	struct shard *sh = &m->shards[worker % m->nshards];
	struct cell *c = &sh->cells[r][method_index(method_bit)][status_index(status)];
	atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->sum_ns, duration_ns, memory_order_relaxed);
	double s = (double)duration_ns / 1e9;
	int b = 0;
	while (b < BUCKETS && s > latency_bounds_s[b])
		b++;
	if (b < BUCKETS)
		atomic_fetch_add_explicit(&c->buckets[b], 1, memory_order_relaxed);
}

/* A growing text buffer for rendering. */
struct text {
	char *buf;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		RSD_ASSERT(n >= 0);
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		t->cap = t->cap * 2 + (size_t)n;
		t->buf = rsd_realloc(t->buf, t->cap);
	}
}

/* One cell summed across shards, in plain integers. */
struct cell_sum {
	uint64_t count, sum_ns;
	uint64_t buckets[BUCKETS];
};

static void sum_cell(struct metrics *m, int r, int me, int st, struct cell_sum *out)
{
	memset(out, 0, sizeof(*out));
	for (int s = 0; s < m->nshards; s++) {
		struct cell *c = &m->shards[s].cells[r][me][st];
		out->count += atomic_load_explicit(&c->count, memory_order_relaxed);
		out->sum_ns += atomic_load_explicit(&c->sum_ns, memory_order_relaxed);
		for (int b = 0; b < BUCKETS; b++)
			out->buckets[b] +=
				atomic_load_explicit(&c->buckets[b], memory_order_relaxed);
	}
}

static void render_requests(struct metrics *m, struct text *t)
{
	put(t, "# HELP resortd_http_requests_total HTTP requests by route, method and status.\n"
	       "# TYPE resortd_http_requests_total counter\n");
	struct text hist = {.buf = rsd_malloc(4096), .cap = 4096};
	hist.buf[0] = '\0';
	put(&hist, "# HELP resortd_http_request_duration_seconds Time from request to reply.\n"
		   "# TYPE resortd_http_request_duration_seconds histogram\n");
	for (int r = 0; r <= router_routes_count; r++) {
		const char *route =
			r < router_routes_count ? router_routes[r].pattern : "unmatched";
		for (int me = 0; me < METHODS_TRACKED; me++) {
			for (int st = 0; st < STATUSES_TRACKED; st++) {
				struct cell_sum total;
				sum_cell(m, r, me, st, &total);
				uint64_t count = total.count;
				if (count == 0)
					continue;
				char labels[256];
				char status[8];
				if (statuses[st])
					snprintf(status, sizeof(status), "%d", statuses[st]);
				else
					snprintf(status, sizeof(status), "other");
				snprintf(labels, sizeof(labels),
					 "route=\"%s\",method=\"%s\",status=\"%s\"", route,
					 method_names[me], status);
				put(t, "resortd_http_requests_total{%s} %llu\n", labels,
				    (unsigned long long)count);
				uint64_t cum = 0;
				for (int b = 0; b < BUCKETS; b++) {
					cum += total.buckets[b];
					put(&hist,
					    "resortd_http_request_duration_seconds_bucket{%s,le=\"%"
					    "g\"} %llu\n",
					    labels, latency_bounds_s[b], (unsigned long long)cum);
				}
				put(&hist,
				    "resortd_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} "
				    "%llu\n",
				    labels, (unsigned long long)count);
				put(&hist, "resortd_http_request_duration_seconds_sum{%s} %.6f\n",
				    labels, (double)total.sum_ns / 1e9);
				put(&hist, "resortd_http_request_duration_seconds_count{%s} %llu\n",
				    labels, (unsigned long long)count);
			}
		}
	}
	put(t, "%s", hist.buf);
	free(hist.buf);
}

static void gauge(struct text *t, const char *name, const char *type, const char *help, uint64_t v)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
	    (unsigned long long)v);
}

static void render_bookings(struct text *t, const struct booking_stats *b,
			    const struct saga_stats *s)
{
	gauge(t, "resortd_holds_total", "counter", "Holds created.", b->holds_created);
	gauge(t, "resortd_holds_refused_total", "counter",
	      "Holds refused: sold out or a restriction (409).", b->holds_refused);
	gauge(t, "resortd_holds_released_total", "counter", "Holds released by the guest.",
	      b->holds_released);
	gauge(t, "resortd_holds_expired_total", "counter", "Holds expired by the sweeper.",
	      s->holds_expired);
	gauge(t, "resortd_bookings_confirmed_total", "counter", "Bookings confirmed.",
	      b->confirmed);
	gauge(t, "resortd_bookings_failed_total", "counter",
	      "Bookings failed in payment (their hold released).", b->failed);
	gauge(t, "resortd_bookings_cancelled_total", "counter", "Bookings cancelled.",
	      b->cancelled);
	gauge(t, "resortd_idempotent_replays_total", "counter",
	      "Requests answered with the first answer of their Idempotency-Key.", b->replays);
	gauge(t, "resortd_saga_compensations_total", "counter",
	      "Payments voided or refunded to undo a booking.", s->voided + s->refunded);
	gauge(t, "resortd_payment_calls_total", "counter", "Calls to the payment service.",
	      s->payment_calls);
	gauge(t, "resortd_payment_unknown_total", "counter",
	      "Payment calls without an answer (timeout, 5xx, no connection).", s->payment_unknown);
	gauge(t, "resortd_sagas_active", "gauge", "Bookings with payment work in progress.",
	      s->active);
	put(t, "# HELP resortd_saga_duration_ms From a booking's request to its payment's answer.\n"
	       "# TYPE resortd_saga_duration_ms histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < 16; i++) {
		cum += s->duration_hist[i];
		put(t, "resortd_saga_duration_ms_bucket{le=\"%u\"} %llu\n", 1u << i,
		    (unsigned long long)cum);
	}
	put(t, "resortd_saga_duration_ms_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)s->duration_count);
	put(t, "resortd_saga_duration_ms_sum %llu\nresortd_saga_duration_ms_count %llu\n",
	    (unsigned long long)s->duration_ms_sum, (unsigned long long)s->duration_count);
}

/* resortd_idp_up is left out until the first call or probe has said. */
static void render_idp(struct text *t, const struct metrics_gauges *g)
{
	if (g->idp_reachable >= 0)
		gauge(t, "resortd_idp_up", "gauge",
		      "1 when the last call to the identity provider, or probe of it, worked.",
		      (uint64_t)g->idp_reachable);
	gauge(t, "resortd_idp_failures_total", "counter",
	      "Calls to the identity provider and probes of it that failed.", g->idp_failures);
	gauge(t, "resortd_idp_last_check_seconds", "gauge",
	      "Unix time the last call or probe ended (0: none yet).", g->idp_checked_ms / 1000);
	const struct idp_recheck_stats *r = g->recheck;
	if (r == NULL || !r->running)
		return;
	put(t, "# HELP resortd_idp_rechecks_total SSO sessions asked about again with the "
	       "identity provider, by outcome.\n# TYPE resortd_idp_rechecks_total counter\n");
	const struct {
		const char *outcome;
		uint64_t n;
	} rows[] = {{"confirmed", r->confirmed},
		    {"revoked", r->revoked},
		    {"dropped", r->dropped},
		    {"failed", r->failed}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		put(t, "resortd_idp_rechecks_total{outcome=\"%s\"} %llu\n", rows[i].outcome,
		    (unsigned long long)rows[i].n);
	gauge(t, "resortd_idp_recheck_bad_id_tokens_total", "counter",
	      "Refreshed id_tokens that did not hold (the session's role was left as it was).",
	      r->bad_id_tokens);
}

void metrics_render(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
	struct text t = {.buf = rsd_malloc(16384), .cap = 16384};
	t.buf[0] = '\0';
	render_requests(m, &t);
	gauge(&t, "resortd_http_requests_in_flight", "gauge", "Requests being handled.",
	      g->in_flight);
	gauge(&t, "resortd_http_connections_open", "gauge", "Open client connections.",
	      g->connections_open);
	gauge(&t, "resortd_http_connections_refused_total", "counter",
	      "Connections closed at once for exceeding a connection cap.", g->connections_refused);
	gauge(&t, "resortd_lmdb_map_used_bytes", "gauge", "Bytes of the LMDB map in use.",
	      g->map_used_bytes);
	gauge(&t, "resortd_lmdb_map_size_bytes", "gauge", "Size of the LMDB map.",
	      g->map_size_bytes);
	const struct writer_stats *w = g->writer;
	gauge(&t, "resortd_log_head_seq", "gauge", "Last committed event seq of this node.",
	      w->head_seq);
	gauge(&t, "resortd_writer_commits_total", "counter", "Durable LMDB commits.", w->commits);
	gauge(&t, "resortd_writer_commands_total", "counter", "Commands run by the writer.",
	      w->commands);
	gauge(&t, "resortd_writer_queue_depth", "gauge", "Commands waiting for the writer.",
	      w->queued);
	gauge(&t, "resortd_store_full_total", "counter",
	      "Commands refused because the LMDB map was full.", w->full_errors);
	put(&t, "# HELP resortd_writer_batch_size Commands per group commit.\n"
		"# TYPE resortd_writer_batch_size histogram\n");
	uint64_t cum = 0;
	for (int i = 0; i < 13; i++) {
		cum += w->batch_hist[i];
		put(&t, "resortd_writer_batch_size_bucket{le=\"%u\"} %llu\n", 1u << i,
		    (unsigned long long)cum);
	}
	put(&t, "resortd_writer_batch_size_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)w->commits);
	put(&t, "resortd_writer_batch_size_sum %llu\nresortd_writer_batch_size_count %llu\n",
	    (unsigned long long)w->batch_sum, (unsigned long long)w->commits);
	const struct projector_stats *p = g->projector;
	gauge(&t, "resortd_projector_applied_seq", "gauge",
	      "Last event seq of this node visible in the read model.", p->applied_seq);
	gauge(&t, "resortd_projector_lag_events", "gauge",
	      "Events committed but not yet visible in the read model.",
	      w->head_seq > p->applied_seq ? w->head_seq - p->applied_seq : 0);
	gauge(&t, "resortd_projector_events_total", "counter", "Events projected.",
	      p->events_applied);
	gauge(&t, "resortd_projector_stuck", "gauge", "1 when the projector is failing or stalled.",
	      p->stuck ? 1 : 0);
	if (g->bookings && g->saga)
		render_bookings(&t, g->bookings, g->saga);
	if (g->idp_configured)
		render_idp(&t, g);
	*out = t.buf;
	*len = t.len;
}
