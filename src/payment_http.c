/*
 * payment_http.c — the http payment provider: one short-lived evhttp client connection
 * per call on the saga's loop, a hard timeout per call, and the call's Idempotency-Key
 * on every request so that the service can answer a retry with its first result.
 *
 * Answers: 200 is done; 402 is a decline; 409 on a void that says "voided" is done (it
 * already was); other 4xx are refusals; no answer, a timeout or 5xx leave the outcome
 * unknown, and the saga retries with the same key.
 */
#include "payment.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "logger.h"
#include "rsd.h"
#include "banned.h"

struct http_provider {
	struct payment_provider base;
	struct event_base *ev_base;
	char host[256];
	int port;
	char prefix[256]; /* path before /authorize etc., without a trailing slash */
	int timeout_ms;
	/* Connections whose call has ended. evhttp cannot free a connection inside its own
	 * request's callback (and free_on_completion leaks one whose connect failed), so they
	 * are freed at the next call and when the provider is freed. */
	struct evhttp_connection *dead[64];
	int ndead;
};

struct call_ctx {
	struct http_provider *hp;
	struct payment_call *call;
	struct evhttp_connection *conn;
};

static void free_dead(struct http_provider *hp)
{
	for (int i = 0; i < hp->ndead; i++)
		evhttp_connection_free(hp->dead[i]);
	hp->ndead = 0;
}

static const char *op_path(enum payment_op op)
{
	switch (op) {
	case PAYMENT_AUTHORIZE: return "/authorize";
	case PAYMENT_CAPTURE: return "/capture";
	case PAYMENT_VOID: return "/void";
	case PAYMENT_REFUND: return "/refund";
	}
	return "/";
}

static char *request_body(const struct payment_call *c)
{
	cJSON *b = cJSON_CreateObject();
	switch (c->op) {
	case PAYMENT_AUTHORIZE:
		cJSON_AddNumberToObject(b, "amount", (double)c->amount);
		cJSON_AddStringToObject(b, "currency", c->currency);
		cJSON_AddStringToObject(b, "token", c->token);
		cJSON_AddStringToObject(b, "reference", c->reference);
		break;
	case PAYMENT_CAPTURE:
	case PAYMENT_REFUND:
		cJSON_AddStringToObject(b, "authorization_id", c->authorization_id);
		cJSON_AddNumberToObject(b, "amount", (double)c->amount);
		break;
	case PAYMENT_VOID:
		if (c->authorization_id[0])
			cJSON_AddStringToObject(b, "authorization_id", c->authorization_id);
		else
			cJSON_AddStringToObject(b, "authorize_key", c->authorize_key);
		break;
	}
	char *text = json_print(b);
	cJSON_Delete(b);
	return text;
}

/* Reads the response's JSON body (NULL when there is none or it is not JSON). */
static cJSON *response_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0 || len > 65536)
		return NULL;
	return cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), len);
}

static enum payment_answer classify(struct payment_call *c, int code, const cJSON *body)
{
	const char *status = json_get_string(body, "status");
	if (code == 200) {
		const char *id = json_get_string(body, "id");
		if (c->op == PAYMENT_AUTHORIZE) {
			if (!id)
				return PAYMENT_UNKNOWN;
			snprintf(c->authorization_id, sizeof(c->authorization_id), "%s", id);
		}
		return PAYMENT_OK;
	}
	if (code == 402 && c->op == PAYMENT_AUTHORIZE)
		return PAYMENT_DECLINED;
	if (code == 409 && c->op == PAYMENT_VOID && status && strcmp(status, "voided") == 0)
		return PAYMENT_OK;
	if (code >= 400 && code < 500)
		return PAYMENT_REFUSED;
	return PAYMENT_UNKNOWN;
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct call_ctx *ctx = arg;
	struct payment_call *c = ctx->call;
	struct http_provider *hp = ctx->hp;
	if (hp->ndead == (int)(sizeof(hp->dead) / sizeof(hp->dead[0])))
		RSD_ASSERT(!"more payment calls in flight than connections kept");
	hp->dead[hp->ndead++] = ctx->conn;
	free(ctx);
	int code = req ? evhttp_request_get_response_code(req) : 0;
	cJSON *body = req && code ? response_json(req) : NULL;
	enum payment_answer answer = code ? classify(c, code, body) : PAYMENT_UNKNOWN;
	snprintf(c->detail, sizeof(c->detail), code ? "HTTP %d" : "no answer in time", code);
	cJSON_Delete(body);
	c->done(c, answer);
}

static void http_start(struct payment_provider *p, struct payment_call *c)
{
	struct http_provider *hp = (struct http_provider *)p;
	free_dead(hp);
	struct evhttp_connection *conn =
		evhttp_connection_base_new(hp->ev_base, NULL, hp->host, (unsigned short)hp->port);
	struct call_ctx *ctx = rsd_calloc(1, sizeof(*ctx));
	ctx->hp = hp;
	ctx->call = c;
	ctx->conn = conn;
	struct evhttp_request *req = conn ? evhttp_request_new(on_response, ctx) : NULL;
	if (!req) {
		free(ctx);
		if (conn)
			evhttp_connection_free(conn);
		snprintf(c->detail, sizeof(c->detail), "cannot open a connection");
		c->done(c, PAYMENT_UNKNOWN);
		return;
	}
	struct timeval tv = {.tv_sec = hp->timeout_ms / 1000,
			     .tv_usec = (hp->timeout_ms % 1000) * 1000};
	evhttp_connection_set_timeout_tv(conn, &tv);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", hp->host);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Idempotency-Key", c->key);
	char *body = request_body(c);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	cJSON_free(body);
	char path[320];
	snprintf(path, sizeof(path), "%s%s", hp->prefix, op_path(c->op));
	/* On failure evhttp has already called on_response (with NULL) and freed req. */
	evhttp_make_request(conn, req, EVHTTP_REQ_POST, path);
}

static void http_free(struct payment_provider *p)
{
	free_dead((struct http_provider *)p);
	free(p);
}

struct payment_provider *payment_http_new(struct event_base *base, const char *url, int timeout_ms)
{
	if (strncmp(url, "http://", 7) != 0)
		return NULL;
	const char *host = url + 7, *slash = strchr(host, '/'), *colon = strchr(host, ':');
	size_t host_len = slash ? (size_t)(slash - host) : strlen(host);
	int port = 80;
	if (colon && (!slash || colon < slash)) {
		char *end;
		long v = strtol(colon + 1, &end, 10);
		if (v < 1 || v > 65535 || (slash ? end != slash : *end != '\0'))
			return NULL;
		port = (int)v;
		host_len = (size_t)(colon - host);
	}
	struct http_provider *hp = rsd_calloc(1, sizeof(*hp));
	if (host_len == 0 || host_len >= sizeof(hp->host) ||
	    (slash && strlen(slash) >= sizeof(hp->prefix))) {
		free(hp);
		return NULL;
	}
	hp->base.name = "http";
	hp->base.start = http_start;
	hp->base.free = http_free;
	hp->ev_base = base;
	memcpy(hp->host, host, host_len);
	hp->port = port;
	snprintf(hp->prefix, sizeof(hp->prefix), "%s", slash ? slash : "");
	size_t n = strlen(hp->prefix);
	if (n && hp->prefix[n - 1] == '/')
		hp->prefix[n - 1] = '\0';
	hp->timeout_ms = timeout_ms;
	return &hp->base;
}
