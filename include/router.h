/*
 * router.h — the one route table and the checks common to every route.
 */
#ifndef RSD_ROUTER_H
#define RSD_ROUTER_H

#include <stddef.h>

#include "limits_rsd.h"
#include "session.h" /* enum role: the least role a route requires */

struct http_req;

enum http_method {
	METHOD_GET = 1 << 0,
	METHOD_HEAD = 1 << 1,
	METHOD_POST = 1 << 2,
	METHOD_PUT = 1 << 3,
	METHOD_PATCH = 1 << 4,
	METHOD_DELETE = 1 << 5,
	METHOD_OPTIONS = 1 << 6,
	METHOD_OTHER = 1 << 7,
};

/*
 * Route flags:
 * ROUTE_JSON_BODY  the route takes a JSON body: Content-Type must be application/json
 *                  (or application/merge-patch+json), else 415; an empty body is a 400
 *                  from the decoder.
 * ROUTE_NO_BODY    a body is refused with 400 (GET-like routes).
 * ROUTE_WRITES     the route changes state (counted, refused while shutting down).
 * ROUTE_FORM_BODY  the body is application/x-www-form-urlencoded (OAuth's token endpoint),
 *                  else 415.
 *
 * Every route names the least role it needs. Credentials (a Bearer token, else the
 * session cookie) are checked on every route that gets any, public ones included: bad
 * credentials are a 401, never silently anonymous. A route above ROLE_PUBLIC answers 401
 * with a WWW-Authenticate challenge to a request without credentials, and 403 to one
 * whose role is too low. A cookie session must send the CSRF token (X-CSRF-Token) with
 * every method that is not GET or HEAD.
 */
enum route_flags {
	ROUTE_JSON_BODY = 1 << 0,
	ROUTE_NO_BODY = 1 << 1,
	ROUTE_WRITES = 1 << 2,
	ROUTE_FORM_BODY = 1 << 3,
};

typedef void (*route_handler)(struct http_req *req);

struct route {
	unsigned methods;    /* enum http_method bits */
	const char *pattern; /* "/v1/resorts/{id}" */
	route_handler handler;
	enum role role;
	unsigned flags;
};

struct route_match {
	const struct route *route;
	int route_index; /* row of router_routes; on a 405 the row whose path matched; -1 */
	int nparams;
	struct {
		const char *name; /* points into the pattern */
		size_t name_len;
		char value[ROUTE_PARAM_BYTES_MAX];
	} params[ROUTE_PARAMS_MAX];
	unsigned allowed; /* when the path matched but not the method: the methods that would */
};

/* The table, for metrics labels. */
extern const struct route router_routes[];
extern const int router_routes_count;

/*
 * Finds the route for method (one enum http_method bit) and path (decoded, no query).
 * Returns RSD_OK with m filled, RSD_ENOTFOUND when no pattern matches the path, or
 * RSD_ECONFLICT when patterns match but none allows method (m->allowed says which do).
 */
int router_match(unsigned method, const char *path, struct route_match *m);

/* Writes the Allow header value for allowed methods into out. */
void router_allow_header(unsigned allowed, char *out, size_t len);

/* The HTTP status for an rsd_err. The only place errors become statuses. */
int router_status(int err);

/* The reason phrase for status, for problem titles. */
const char *router_status_title(int status);

/*
 * Matches the request, runs the checks every route shares (404, 405 with Allow, 415 for a
 * body that is not JSON, 400 for a body where none belongs) and calls the handler, or
 * replies with the problem. m is the request's own match (params live there).
 */
void router_dispatch(struct http_req *req, unsigned method, const char *path,
		     struct route_match *m);

#endif
