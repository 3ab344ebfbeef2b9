/*
 * status_http.c — /healthz (the process answers), /readyz (stores open and the projector
 * keeping up) and /metrics (Prometheus text).
 */
#include "status_http.h"

#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "http.h"
#include "idp_recheck.h"
#include "metrics.h"
#include "oidc.h"
#include "saga.h"
#include "banned.h"

/* The status routes take no query parameters; replies 400 and returns false on any. */
static bool no_query(struct http_req *req)
{
	static const char *const none[] = {NULL};
	struct rsd_fail f = {0};
	int err = http_req_query_only(req, none, &f);
	if (err)
		http_reply_error(req, err, &f);
	return err == RSD_OK;
}

void status_http_health(struct http_req *req)
{
	if (!no_query(req))
		return;
	static const char body[] = "{\"status\":\"ok\"}";
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_text(req, 200, "application/json", body, sizeof(body) - 1);
}

/* The IdP is shown but does not make the server unready: local sign-in and the sessions
 * already made go on without it. Why it failed is for admins only (details). */
static void add_idp(cJSON *checks, struct oidc *o, bool details)
{
	struct oidc_status os;
	oidc_status_get(o, &os);
	cJSON_AddStringToObject(checks, "idp",
				os.reachable > 0    ? "reachable"
				: os.reachable == 0 ? "unreachable"
						    : "unknown");
	if (os.checked_ms) {
		char at[32];
		rsd_time_format(os.checked_ms, at, sizeof(at));
		cJSON_AddStringToObject(checks, "idp_checked_at", at);
	}
	if (details && os.error[0])
		cJSON_AddStringToObject(checks, "idp_error", os.error);
}

void status_http_ready(struct http_req *req)
{
	if (!no_query(req))
		return;
	struct server *srv = http_req_server(req);
	struct projector_stats ps;
	projector_stats_get(srv->projector, &ps);
	bool lmdb_ok = false;
	MDB_txn *txn;
	if (mdb_txn_begin(srv->store->env, NULL, MDB_RDONLY, &txn) == MDB_SUCCESS) {
		lmdb_ok = true;
		mdb_txn_abort(txn);
	}
	sqlite3_stmt *st = readmodel_stmt(http_req_reader(req), "SELECT 1");
	bool sqlite_ok = st && sqlite3_step(st) == SQLITE_ROW;
	if (st)
		sqlite3_reset(st);
	bool ready = lmdb_ok && sqlite_ok && !ps.stuck;
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "status", ready ? "ready" : "not ready");
	cJSON *checks = cJSON_AddObjectToObject(body, "checks");
	cJSON_AddStringToObject(checks, "lmdb", lmdb_ok ? "ok" : "failing");
	cJSON_AddStringToObject(checks, "sqlite", sqlite_ok ? "ok" : "failing");
	cJSON_AddStringToObject(checks, "projector", ps.stuck ? "stuck" : "ok");
	/* Error texts name files, hosts and SQL: for a signed-in admin, not for anyone who can
	 * reach the port (load balancers and systemd need only the status). */
	bool details = http_req_who(req)->role >= ROLE_ADMIN;
	if (details && ps.last_error[0])
		cJSON_AddStringToObject(checks, "projector_error", ps.last_error);
	if (srv->oidc)
		add_idp(checks, srv->oidc, details);
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_json(req, ready ? 200 : 503, body);
	cJSON_Delete(body);
}

void status_http_metrics(struct http_req *req)
{
	if (!no_query(req))
		return;
	struct server *srv = http_req_server(req);
	struct writer_stats ws;
	struct projector_stats ps;
	writer_stats_get(srv->writer, &ws);
	projector_stats_get(srv->projector, &ps);
	struct booking_stats bs;
	struct saga_stats ss;
	booking_stats_get(&bs);
	saga_stats_get(&ss);
	struct metrics_gauges g = {
		.bookings = &bs,
		.saga = &ss,
		.in_flight = http_in_flight(),
		.connections_open = http_connections_open(),
		.connections_refused = http_connections_refused(),
		.map_used_bytes = store_map_used_bytes(srv->store),
		.map_size_bytes = srv->store->map_bytes,
		.writer = &ws,
		.projector = &ps,
	};
	if (srv->oidc) {
		struct oidc_status os;
		oidc_status_get(srv->oidc, &os);
		g.idp_configured = true;
		g.idp_reachable = os.reachable;
		g.idp_failures = os.failures;
		g.idp_checked_ms = os.checked_ms;
	}
	struct idp_recheck_stats rs;
	idp_recheck_stats_get(&rs);
	g.recheck = &rs;
	char *text;
	size_t len;
	metrics_render(srv->metrics, &g, &text, &len);
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_text(req, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}
