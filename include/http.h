/*
 * http.h — the HTTP layer handlers see: a request, its route parameters, query, headers
 * and body, a per-request arena, the worker's read handles, and ways to reply.
 *
 * Threads: each worker runs one libevent loop with its own SO_REUSEPORT listening socket; a request
 * lives on its worker's thread from arrival to reply. http_submit hands a command to the writer and
 * resumes the request on its own loop when the command's events are visible, so no worker ever
 * blocks. Ownership: a struct http_req and everything in its arena are freed when the reply is
 * sent; pointers returned by the getters live that long.
 */
#ifndef RSD_HTTP_H
#define RSD_HTTP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "idempotency.h"
#include "projector.h"
#include "readmodel.h"
#include "session.h"
#include "rsd.h"
#include "store.h"
#include "writer.h"

struct http_req;
struct metrics;

/* What the whole server shares; owned by main. */
struct server {
	struct config *config;
	struct store *store;
	struct writer *writer;
	struct projector *projector;
	struct metrics *metrics;
	struct auth *auth;
	struct oidc *oidc; /* NULL when no IdP is configured */
	char catalog_path[4096];
};

/* Starts the workers on srv's listen address. Errors: RSD_EIO with f filled. */
int http_start(struct server *srv, struct rsd_fail *f);

/*
 * Shutdown, in this order (main.c): http_stop_accepting (every listening socket shut at
 * once; new requests on open connections answer 503); http_drain (wait up to grace_ms for
 * requests in flight, the loops still running so completions reach them); stop the writer
 * (its last completions still reach the running loops); http_stop_loops (end and join the
 * worker threads: from here nothing calls into the projector); stop the projector;
 * http_free (drop what is left unanswered, free the workers).
 */
void http_stop_accepting(void);
void http_drain(int grace_ms);
void http_stop_loops(void);
void http_free(void);

/* The port actually bound (useful with port 0). */
int http_bound_port(void);

/* Requests in flight and connections open, across workers (metrics). */
uint64_t http_in_flight(void);
uint64_t http_connections_open(void);
uint64_t http_connections_refused(void);

/* --- for handlers --- */
struct server *http_req_server(struct http_req *req);
struct arena *http_req_arena(struct http_req *req);
struct readmodel_reader *http_req_reader(struct http_req *req);
/* Who is asking: the namespace of Idempotency-Keys and the owner of holds and bookings
 * ("anonymous" before sign-in). */
const char *http_req_principal(struct http_req *req);
/* The signed-in principal (role ROLE_PUBLIC and sub "" when nobody is). */
const struct principal *http_req_who(struct http_req *req);
/*
 * Reads the request's credentials, once: a Bearer token, else the session cookie. No
 * credentials is not an error (the principal stays public). *cookie tells whether the
 * credentials were the session cookie (then unsafe methods need the CSRF token).
 * Errors: RSD_EAUTH (f says why) for credentials that do not hold, RSD_EIO.
 */
int http_req_authenticate(struct http_req *req, bool *cookie, struct rsd_fail *f);
/* The client's address as text. */
const char *http_req_client_addr(struct http_req *req);
/* The value of cookie name from the Cookie header, copied into the arena; NULL if absent. */
const char *http_req_cookie(struct http_req *req, const char *name);
/* The decoded value of name in an application/x-www-form-urlencoded body, or NULL. */
const char *http_req_form(struct http_req *req, const char *name);
/* The first name that appears more than once in the form body, or NULL. */
const char *http_req_form_repeated(struct http_req *req);
/* The worker's LMDB snapshot holder (store.h): begin, read, end within one handler call. */
struct store_reader *http_req_state(struct http_req *req);
/* The worker's cache of serialized replies (readcache.h). */
struct readcache *http_req_cache(struct http_req *req);
/* The worker's cache of search pages, or NULL when search_cache_entries is 0. */
struct readcache *http_req_search_cache(struct http_req *req);
const char *http_req_param(struct http_req *req, const char *name);
/* The {id} of the path; NULL, after replying 404 ("no <what> with id ..."), when it is too
 * long to be any entity's id. */
const char *http_req_id(struct http_req *req, const char *what);
/* The decoded value of query parameter name, or NULL. */
const char *http_req_query(struct http_req *req, const char *name);
/* Reads query parameter name as a date YYYY-MM-DD (price.h's day number). Errors:
 * RSD_EINVAL with f filled when it is missing or not a date. */
int http_req_query_date(struct http_req *req, const char *name, int32_t *day, struct rsd_fail *f);
/* Fails (RSD_EINVAL, field named) when the query holds a parameter not in allowed. */
int http_req_query_only(struct http_req *req, const char *const *allowed, struct rsd_fail *f);
const char *http_req_header(struct http_req *req, const char *name);
const char *http_req_body(struct http_req *req, size_t *len);
const char *http_req_method(struct http_req *req);
/* The decoded path, without the query. */
const char *http_req_path(struct http_req *req);

/* Copies the query's parameters in order into names/values (at most max); returns how many
 * the query has, which may exceed max. Duplicates are kept. */
int http_req_query_list(struct http_req *req, const char **names, const char **values, int max);

/* Formats version as a strong ETag: "7". */
void http_etag(uint64_t version, char *out, size_t len);

/*
 * Reads If-Match: *out is the version it names, 0 when absent or "*", UINT64_MAX for a weak
 * tag (If-Match compares strongly, RFC 9110 13.1.1, so it matches no version).
 * Errors: RSD_EINVAL with f filled for anything else.
 */
int http_req_if_match(struct http_req *req, uint64_t *out, struct rsd_fail *f);

/*
 * Replies an entity's JSON bytes with its ETag and cache_control; a 200 becomes a 304
 * without a body when If-None-Match names etag (weak comparison, lists and * too).
 */
void http_reply_entity(struct http_req *req, int status, const char *etag,
		       const char *cache_control, const char *body, size_t len);

void http_header_add(struct http_req *req, const char *name, const char *value);

/* Replies status with body serialized as application/json (body may be NULL: no body). */
void http_reply_json(struct http_req *req, int status, const cJSON *body);
void http_reply_text(struct http_req *req, int status, const char *content_type, const char *text,
		     size_t len);
/*
 * Replies 202: the write with id is durable at version but the read model has not caught up
 * within the wait. location (may be NULL) is where it will be readable.
 */
void http_reply_accepted(struct http_req *req, const char *id, uint64_t version,
			 const char *location);

/*
 * Replies what a command decided (idempotency.h): a success with its status, JSON body and
 * Location, or a problem document for its error with the body's members added. The same
 * outcome always gives the same bytes, which is what a replayed Idempotency-Key needs.
 */
void http_reply_outcome(struct http_req *req, const struct outcome *o);

/* Replies a problem document for err (status chosen by router_status). */
void http_reply_error(struct http_req *req, int err, const struct rsd_fail *f);
/* Replies a problem document with an explicit status. */
void http_reply_problem(struct http_req *req, int status, const char *detail, const char *field);

/*
 * Submits cmd to the writer. When it has committed and its events are visible to this
 * worker's reads (or it failed), calls then(req, cmd, result) on the request's own thread.
 * result is cmd->result, or RSD_ETIMEDOUT when the read model did not catch up in time.
 */
void http_submit(struct http_req *req, struct command *cmd,
		 void (*then)(struct http_req *req, struct command *cmd, int result));

/*
 * Parks the request: fn(req, arg, false) runs on its thread after timeout_ms, fn(.., true)
 * once http_req_unpark is called (from any thread), whichever comes first; after a
 * timeout an unpark still calls fn again. A negative timeout_ms waits for the unpark
 * only (for work that is bounded by its own timeouts). For waits on other threads.
 */
void http_req_park(struct http_req *req, int timeout_ms,
		   void (*fn)(struct http_req *req, void *arg, bool woken), void *arg);
void http_req_unpark(struct http_req *req);

/* http_submit for a command whose reply reads LMDB only: then runs once the commit is
 * durable, without waiting for the read model. */
void http_submit_durable(struct http_req *req, struct command *cmd,
			 void (*then)(struct http_req *req, struct command *cmd, int result));

#endif
