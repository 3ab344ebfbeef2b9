/*
 * router.c — the route table (every route of resortd is a row here), matching, and the
 * mapping from rsd_err to HTTP status.
 *
 * Matching: a pattern is '/'-separated segments; "{name}" matches one non-empty segment
 * and captures it. Patterns are few, so a linear scan is the clearest fast enough choice.
 */
#include "router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "auth_http.h"
#include "booking_http.h"
#include "catalog_http.h"
#include "http.h"
#include "inventory_http.h"
#include "resort_http.h"
#include "rsd.h"
#include "status_http.h"
#include "banned.h"

const struct route router_routes[] = {
	{METHOD_GET | METHOD_HEAD, "/healthz", status_http_health, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/.well-known/jwks.json", auth_http_jwks, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_POST, "/auth/token", auth_http_token, ROLE_PUBLIC, ROUTE_FORM_BODY | ROUTE_WRITES},
	{METHOD_POST, "/auth/logout", auth_http_logout, ROLE_GUEST, ROUTE_NO_BODY | ROUTE_WRITES},
	{METHOD_GET, "/auth/session", auth_http_session, ROLE_GUEST, ROUTE_NO_BODY},
	{METHOD_GET, "/auth/login", auth_http_login, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_GET, "/auth/callback", auth_http_callback, ROLE_PUBLIC,
	 ROUTE_NO_BODY | ROUTE_WRITES},
	{METHOD_POST, "/auth/revoke", auth_http_revoke, ROLE_ADMIN, ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/readyz", status_http_ready, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_GET, "/metrics", status_http_metrics, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/v1/resorts", resort_http_list, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_POST, "/v1/resorts", resort_http_create, ROLE_ADMIN,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/resorts/{id}", resort_http_get, ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_PATCH, "/v1/resorts/{id}", resort_http_patch, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/products", catalog_http_product_search, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_POST, "/v1/products", catalog_http_product_create, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/products/{id}", catalog_http_product_get, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_PUT, "/v1/products/{id}", catalog_http_product_replace, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_PATCH, "/v1/products/{id}", catalog_http_product_patch, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_DELETE, "/v1/products/{id}", catalog_http_product_delete, ROLE_MANAGER,
	 ROUTE_NO_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/products/{id}/prices", catalog_http_prices, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/v1/products/{id}/rate-plans", catalog_http_rate_plan_list,
	 ROLE_STAFF, ROUTE_NO_BODY},
	{METHOD_POST, "/v1/products/{id}/rate-plans", catalog_http_rate_plan_create, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/rate-plans/{id}", catalog_http_rate_plan_get, ROLE_STAFF,
	 ROUTE_NO_BODY},
	{METHOD_PUT, "/v1/rate-plans/{id}", catalog_http_rate_plan_replace, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_PATCH, "/v1/rate-plans/{id}", catalog_http_rate_plan_patch, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_DELETE, "/v1/rate-plans/{id}", catalog_http_rate_plan_delete, ROLE_MANAGER,
	 ROUTE_NO_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/products/{id}/reviews", catalog_http_review_list,
	 ROLE_PUBLIC, ROUTE_NO_BODY},
	{METHOD_POST, "/v1/products/{id}/reviews", catalog_http_review_create, ROLE_GUEST,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/reviews/{id}", catalog_http_review_get, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_PATCH, "/v1/reviews/{id}", catalog_http_review_moderate, ROLE_STAFF,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_PUT, "/v1/inventory/{id}", inventory_http_put, ROLE_MANAGER,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/inventory/{id}", inventory_http_get, ROLE_STAFF,
	 ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/v1/availability", inventory_http_availability, ROLE_PUBLIC,
	 ROUTE_NO_BODY},
	{METHOD_POST, "/v1/holds", booking_http_hold_create, ROLE_GUEST,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/holds/{id}", booking_http_hold_get, ROLE_GUEST,
	 ROUTE_NO_BODY},
	{METHOD_DELETE, "/v1/holds/{id}", booking_http_hold_release, ROLE_GUEST,
	 ROUTE_NO_BODY | ROUTE_WRITES},
	{METHOD_POST, "/v1/bookings", booking_http_create, ROLE_GUEST,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_GET | METHOD_HEAD, "/v1/bookings", booking_http_list, ROLE_GUEST, ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/v1/reports/occupancy", booking_http_occupancy, ROLE_STAFF,
	 ROUTE_NO_BODY},
	{METHOD_GET | METHOD_HEAD, "/v1/bookings/{id}", booking_http_get, ROLE_GUEST,
	 ROUTE_NO_BODY},
	{METHOD_POST, "/v1/bookings/{id}/cancel", booking_http_cancel, ROLE_GUEST, ROUTE_WRITES},
	{METHOD_POST, "/v1/bookings/{id}/change-dates", booking_http_change_dates, ROLE_GUEST,
	 ROUTE_JSON_BODY | ROUTE_WRITES},
	{METHOD_POST, "/v1/bookings/{id}/check-in", booking_http_check_in, ROLE_STAFF,
	 ROUTE_WRITES},
	{METHOD_POST, "/v1/bookings/{id}/check-out", booking_http_check_out, ROLE_STAFF,
	 ROUTE_WRITES},
	{METHOD_POST, "/v1/bookings/{id}/no-show", booking_http_no_show, ROLE_STAFF, ROUTE_WRITES},
};
const int router_routes_count = (int)(sizeof(router_routes) / sizeof(router_routes[0]));

/* Matches path against pattern, capturing {params} into m. */
static bool match_pattern(const char *pattern, const char *path, struct route_match *m)
{
	const char *p = pattern, *s = path;
	m->nparams = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *close = strchr(p, '}');
			const char *seg_end = strchr(s, '/');
			size_t n = seg_end ? (size_t)(seg_end - s) : strlen(s);
			if (n == 0 || n >= ROUTE_PARAM_BYTES_MAX || m->nparams == ROUTE_PARAMS_MAX)
				return false;
			m->params[m->nparams].name = p + 1;
			m->params[m->nparams].name_len = (size_t)(close - p - 1);
			memcpy(m->params[m->nparams].value, s, n);
			m->params[m->nparams].value[n] = '\0';
			m->nparams++;
			p = close + 1;
			s += n;
		} else if (*p == *s) {
			p++;
			s++;
		} else {
			return false;
		}
	}
	return *p == '\0' && *s == '\0';
}

int router_match(unsigned method, const char *path, struct route_match *m)
{
	memset(m, 0, sizeof(*m));
	m->route_index = -1; /* for metrics: the first route whose path matched, if any */
	struct route_match tmp;
	bool path_known = false;
	for (int i = 0; i < router_routes_count; i++) {
		const struct route *r = &router_routes[i];
		if (!match_pattern(r->pattern, path, &tmp))
			continue;
		if (!path_known)
			m->route_index = i;
		path_known = true;
		m->allowed |= r->methods;
		if (r->methods & method) {
			unsigned allowed = m->allowed;
			*m = tmp;
			m->allowed = allowed;
			m->route = r;
			m->route_index = i;
			return RSD_OK;
		}
	}
	return path_known ? RSD_ECONFLICT : RSD_ENOTFOUND;
}

void router_allow_header(unsigned allowed, char *out, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{METHOD_GET, "GET"}, {METHOD_HEAD, "HEAD"},   {METHOD_POST, "POST"},
		     {METHOD_PUT, "PUT"}, {METHOD_PATCH, "PATCH"}, {METHOD_DELETE, "DELETE"}};
	size_t pos = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(allowed & names[i].bit))
			continue;
		int n = snprintf(out + pos, len - pos, "%s%s", pos ? ", " : "", names[i].name);
		if (n < 0 || (size_t)n >= len - pos)
			break;
		pos += (size_t)n;
	}
}

int router_status(int err)
{
	switch (err) {
	case RSD_OK: return 200;
	case RSD_EINVAL: return 400;
	case RSD_ENOTFOUND: return 404;
	case RSD_ECONFLICT: return 409;
	case RSD_EPRECONDITION: return 412;
	case RSD_EMISMATCH: return 422;
	case RSD_EPAYMENT: return 402;
	case RSD_EAUTH: return 401;
	case RSD_EFORBIDDEN: return 403;
	case RSD_ETHROTTLED: return 429;
	case RSD_EUPSTREAM: return 502;
	case RSD_EFULL: return 503;
	case RSD_EBUSY: return 503;
	case RSD_ETIMEDOUT: return 503;
	case RSD_ESHUTDOWN: return 503;
	default: return 500;
	}
}

const char *router_status_title(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* True when the Content-Type names JSON (parameters such as charset are allowed). */
static bool is_json_type(const char *ct)
{
	if (ct == NULL)
		return false;
	static const char *const types[] = {"application/json", "application/merge-patch+json"};
	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(types[i]);
		if (strncasecmp(ct, types[i], n) == 0 &&
		    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
			return true;
	}
	return false;
}

/* Adds the RFC 6750 challenge; error may be NULL (no credentials were sent). */
static void challenge(struct http_req *req, const char *error)
{
	char value[128];
	snprintf(value, sizeof(value), "Bearer realm=\"resortd\"%s%s%s", error ? ", error=\"" : "",
		 error ? error : "", error ? "\"" : "");
	http_header_add(req, "WWW-Authenticate", value);
}

/* Authenticates the request and checks the route's role; replies and returns false when
 * it may not go on. */
static bool authorize(struct http_req *req, unsigned method, const struct route *r)
{
	struct rsd_fail f = {0};
	bool cookie;
	int err = http_req_authenticate(req, &cookie, &f);
	if (err == RSD_EAUTH && cookie) {
		/* A dead session cookie is cleared, or the browser could never sign in again
		 * (it is HttpOnly); on a public route the request goes on anonymous. */
		http_header_add(req, "Set-Cookie",
				AUTH_COOKIE
				"=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
		http_header_add(req, "Set-Cookie",
				AUTH_CSRF_COOKIE "=; Path=/; Max-Age=0; Secure; SameSite=Strict");
		if (r->role == ROLE_PUBLIC)
			return true;
	}
	if (err == RSD_EAUTH) {
		challenge(req, "invalid_token");
		http_reply_error(req, err, &f);
		return false;
	}
	if (err) {
		http_reply_error(req, err, &f);
		return false;
	}
	const struct principal *who = http_req_who(req);
	if (r->role > ROLE_PUBLIC && who->role == ROLE_PUBLIC) {
		challenge(req, NULL);
		http_reply_problem(req, 401, "sign in first: send Authorization: Bearer TOKEN",
				   NULL);
		return false;
	}
	if (who->role < r->role) {
		challenge(req, "insufficient_scope");
		char detail[96];
		snprintf(detail, sizeof(detail), "this needs the %s role",
			 session_role_name(r->role));
		http_reply_problem(req, 403, detail, NULL);
		return false;
	}
	if (cookie && who->sid[0] && !(method & (METHOD_GET | METHOD_HEAD)) &&
	    !auth_csrf_ok(http_req_server(req)->auth, who->sid,
			  http_req_header(req, "X-CSRF-Token"))) {
		http_reply_problem(req, 403,
				   "a cookie session must send its CSRF token in X-CSRF-Token",
				   "X-CSRF-Token");
		return false;
	}
	return true;
}

static bool is_form_type(const char *ct)
{
	const char *t = "application/x-www-form-urlencoded";
	size_t n = strlen(t);
	return ct && strncasecmp(ct, t, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void router_dispatch(struct http_req *req, unsigned method, const char *path, struct route_match *m)
{
	int rc = router_match(method, path, m);
	if (rc == RSD_ENOTFOUND) {
		http_reply_problem(req, 404, "no resource at this path", NULL);
		return;
	}
	if (rc == RSD_ECONFLICT) {
		char allow[128];
		router_allow_header(m->allowed, allow, sizeof(allow));
		http_header_add(req, "Allow", allow);
		http_reply_problem(req, 405,
				   "this method is not allowed here; see the Allow header", NULL);
		return;
	}
	if (!authorize(req, method, m->route))
		return;
	size_t body_len;
	http_req_body(req, &body_len);
	unsigned flags = m->route->flags;
	if ((flags & ROUTE_FORM_BODY) && !is_form_type(http_req_header(req, "Content-Type"))) {
		http_reply_problem(req, 415,
				   "the body must be a form: send Content-Type: "
				   "application/x-www-form-urlencoded",
				   NULL);
		return;
	}
	if ((flags & ROUTE_JSON_BODY) && !is_json_type(http_req_header(req, "Content-Type"))) {
		http_reply_problem(req, 415,
				   "the body must be JSON: send Content-Type: application/json",
				   NULL);
		return;
	}
	if ((flags & ROUTE_NO_BODY) && body_len > 0) {
		http_reply_problem(req, 400, "this request takes no body", NULL);
		return;
	}
	m->route->handler(req);
}
