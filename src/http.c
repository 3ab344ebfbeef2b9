/*
 * http.c — evhttp workers, connection limits, request checks, replies, and the bridge from
 * the writer and projector threads back to a request's own event loop.
 *
 * What libevent 2.1 does not do and this file does:
 * - caps on connections in all and per client address, and a deadline for a whole
 *   request to arrive (evhttp's timeouts are reset by every byte, so a slow client would
 *   never time out). A connection is "adopted" right after evhttp accepts it: a
 *   highest-priority event finds its evhttp_connection (the callback argument of the
 *   bufferevent we made in bevcb) and registers a close callback for the accounting;
 * - 400 for two Content-Length headers, Transfer-Encoding with Content-Length, and %00 or
 *   control bytes in the path or query;
 * - problem documents instead of the HTML pages evhttp writes for its own 400 and 413:
 *   the output buffer's callback replaces such a page before it is sent.
 *
 * Invariants: every struct http_req is freed exactly once, by req_finish, on its worker's
 * thread; a request whose connection evhttp freed first is "orphaned" and finishes
 * without replying.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "logger.h"
#include "metrics.h"
#include "readcache.h"
#include "price.h"
#include "router.h"
#include "banned.h"

#define PRIORITY_ADOPT	0 /* before any I/O of the new connection */
#define PRIORITY_NORMAL 1
#define CONN_MAP_MIN	1024
#define DRAIN_POLL_MS	20

struct worker;

/* One client connection, from adoption to evhttp's close callback. */
struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	struct event *timer;		 /* adoption, then the request deadline */
	struct http_req *current;	 /* request being handled, if any */
	char addr[INET6_ADDRSTRLEN];
	bool adopted, counted, refused;
	size_t bytes_in; /* received since the last complete request: tells oversized headers */
	bool close_after_flush; /* an error page of evhttp's was replaced: end after sending */
	bool rewriting;		/* output_cb is changing the buffer: ignore its own changes */
	bool arm_on_drain;	/* arm the request deadline once the output buffer empties */
};

struct http_req {
	struct evhttp_request *ev; /* NULL once orphaned */
	struct worker *w;
	struct conn *conn;
	struct arena arena;
	struct evkeyvalq query;
	bool query_parsed;
	const char *path;
	const char *body;
	size_t body_len;
	unsigned method;
	struct route_match match;
	struct principal who;
	bool authenticated; /* http_req_authenticate ran */
	struct evkeyvalq form;
	bool form_parsed;
	char request_id[REQUEST_ID_BYTES_MAX + 1];
	uint64_t start_ns;
	/* http_submit's state */
	struct event *wake;
	struct command *cmd;
	void (*then)(struct http_req *, struct command *, int);
	struct projector_waiter waiter;
	_Atomic int stage; /* 0 submitted, 1 committed, 2 visible */
	bool durable_only; /* reply once committed: the reply reads LMDB, not the read model */
	void (*park_fn)(struct http_req *, void *, bool); /* http_req_park's */
	void *park_arg;
	int wait_result;
	struct http_req *prev, *next; /* the worker's list of live requests, or its pool */
	/* The arena's first block, last so that reuse clears only what comes before it. */
	_Alignas(max_align_t) unsigned char arena_space[REQUEST_ARENA_BYTES];
};

struct worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int listen_fd; /* bound's socket, owned by evhttp */
	struct event *stop_ev;
	struct event *flush_ev; /* writes buffered access lines every ACCESS_LOG_FLUSH_MS */
	struct readmodel_reader reader;
	struct store_reader state; /* LMDB snapshots of this worker's handlers */
	struct readcache *cache;
	struct auth_cache *auth_cache; /* access tokens this worker has verified */
	/* evcon -> conn, open addressing with tombstones; worker thread only */
	struct conn **map;
	size_t map_cap, map_used;
	struct http_req *live; /* requests not yet finished */
	struct http_req *pool; /* finished requests kept for reuse: malloc'ing ~3 KiB per
				* request made glibc consolidate its free lists every time */
	int pooled;
	_Atomic uint64_t in_flight;
};

/* An address's open connections; slots with count 0 are free for reuse. */
struct addr_slot {
	char addr[INET6_ADDRSTRLEN];
	int count;
};

static struct {
	struct server *srv;
	int listen_fd;
	struct sockaddr_storage bound; /* the listening address, with the real port */
	socklen_t bound_len;
	int port;
	int nworkers;
	struct worker *workers;
	_Atomic uint64_t conns_open, conns_refused;
	_Atomic bool draining; /* set on SIGTERM/SIGINT: no new work reaches the writer */
	pthread_mutex_t addr_mu;
	struct addr_slot *addrs; /* CONN_ADDR_SLOTS, under addr_mu */
	size_t addr_names;	 /* slots holding a name (live or not), under addr_mu */
} G = {.listen_fd = -1};

static struct conn *const TOMBSTONE = (struct conn *)&G;

/* ---- the evcon -> conn map ---- */

static size_t ptr_hash(const void *p, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static void map_put(struct worker *w, struct conn *c);

static void map_grow(struct worker *w)
{
	struct conn **old = w->map;
	size_t oldcap = w->map_cap;
	w->map_cap = oldcap ? oldcap * 2 : CONN_MAP_MIN;
	w->map = rsd_calloc(w->map_cap, sizeof(*w->map));
	w->map_used = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] && old[i] != TOMBSTONE)
			map_put(w, old[i]);
	free(old);
}

static void map_put(struct worker *w, struct conn *c)
{
	if ((w->map_used + 1) * 2 > w->map_cap)
		map_grow(w);
	size_t i = ptr_hash(c->evcon, w->map_cap);
	while (w->map[i] && w->map[i] != TOMBSTONE)
		i = (i + 1) & (w->map_cap - 1);
	if (w->map[i] == NULL)
		w->map_used++;
	w->map[i] = c;
}

static struct conn **map_find(struct worker *w, const struct evhttp_connection *evcon)
{
	if (w->map_cap == 0)
		return NULL;
	size_t i = ptr_hash(evcon, w->map_cap);
	for (size_t n = 0; n < w->map_cap && w->map[i]; n++) {
		if (w->map[i] != TOMBSTONE && w->map[i]->evcon == evcon)
			return &w->map[i];
		i = (i + 1) & (w->map_cap - 1);
	}
	return NULL;
}

/* ---- per-address accounting ---- */

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Takes one of conns_max places, or returns false when none is left. */
static bool total_acquire(void)
{
	uint64_t open = atomic_load(&G.conns_open);
	do {
		if (open >= (uint64_t)G.srv->config->conns_max)
			return false;
	} while (!atomic_compare_exchange_weak(&G.conns_open, &open, open + 1));
	return true;
}

/* Rehashes the addresses that still have connections into a fresh table, dropping the
 * names of those that have none: otherwise, once CONN_ADDR_SLOTS distinct addresses had
 * ever connected, every probe would walk the whole table. Under addr_mu. */
static void addr_rebuild(void)
{
	struct addr_slot *old = G.addrs;
	G.addrs = rsd_calloc(CONN_ADDR_SLOTS, sizeof(struct addr_slot));
	G.addr_names = 0;
	for (size_t i = 0; i < CONN_ADDR_SLOTS; i++) {
		if (old[i].count == 0)
			continue;
		size_t j = str_hash(old[i].addr) % CONN_ADDR_SLOTS;
		while (G.addrs[j].addr[0])
			j = (j + 1) % CONN_ADDR_SLOTS;
		G.addrs[j] = old[i];
		G.addr_names++;
	}
	free(old);
}

/* Counts one more connection from addr unless a cap is reached; returns whether it may stay. */
static bool addr_acquire(const char *addr)
{
	if (!total_acquire())
		return false;
	pthread_mutex_lock(&G.addr_mu);
	if (G.addr_names >= CONN_ADDR_SLOTS * 3 / 4)
		addr_rebuild();
	size_t i = str_hash(addr) % CONN_ADDR_SLOTS, free_slot = SIZE_MAX;
	struct addr_slot *found = NULL;
	for (size_t n = 0; n < CONN_ADDR_SLOTS; n++, i = (i + 1) % CONN_ADDR_SLOTS) {
		struct addr_slot *s = &G.addrs[i];
		if (s->addr[0] == '\0') {
			if (free_slot == SIZE_MAX)
				free_slot = i;
			break; /* never used: addr is not further along */
		}
		if (strcmp(s->addr, addr) == 0) {
			found = s;
			break;
		}
		if (s->count == 0 && free_slot == SIZE_MAX)
			free_slot = i;
	}
	bool ok = false;
	if (found == NULL && free_slot != SIZE_MAX) {
		found = &G.addrs[free_slot];
		if (found->addr[0] == '\0')
			G.addr_names++;
		snprintf(found->addr, sizeof(found->addr), "%s", addr);
		found->count = 0;
	}
	if (found && found->count < G.srv->config->conns_per_addr_max) {
		found->count++;
		ok = true;
	}
	pthread_mutex_unlock(&G.addr_mu);
	if (!ok)
		atomic_fetch_sub(&G.conns_open, 1);
	return ok;
}

static void addr_release(const char *addr)
{
	pthread_mutex_lock(&G.addr_mu);
	size_t i = str_hash(addr) % CONN_ADDR_SLOTS;
	for (size_t n = 0; n < CONN_ADDR_SLOTS && G.addrs[i].addr[0]; n++) {
		if (strcmp(G.addrs[i].addr, addr) == 0) {
			G.addrs[i].count--;
			break;
		}
		i = (i + 1) % CONN_ADDR_SLOTS;
	}
	pthread_mutex_unlock(&G.addr_mu);
	atomic_fetch_sub(&G.conns_open, 1);
}

/* ---- connections ---- */

static void arm_deadline(struct conn *c)
{
	struct timeval tv = {.tv_sec = G.srv->config->header_deadline_s};
	event_add(c->timer, &tv);
}

/* Ends a connection from our side; evhttp sees end of file and frees it, calling closecb. */
static void conn_cut(struct conn *c)
{
	int fd = bufferevent_getfd(c->bev);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct conn **slot = map_find(c->w, evcon);
	if (slot)
		*slot = TOMBSTONE;
	if (c->current) {
		c->current->ev = NULL; /* evhttp frees the request next */
		c->current->conn = NULL;
	}
	if (c->counted)
		addr_release(c->addr);
	event_free(c->timer);
	free(c);
}

static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* Counts bytes received toward the current request. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	struct conn *c = arg;
	c->bytes_in += info->n_added;
}

static void conn_adopt(struct conn *c)
{
	if (c->adopted)
		return;
	c->adopted = true;
	bufferevent_data_cb rcb, wcb;
	bufferevent_event_cb ecb;
	void *cbarg;
	bufferevent_getcb(c->bev, &rcb, &wcb, &ecb, &cbarg);
	c->evcon = cbarg;
	evhttp_connection_set_closecb(c->evcon, conn_closed, c);
	map_put(c->w, c);
	evbuffer_add_cb(bufferevent_get_output(c->bev), output_cb, c);
	evbuffer_add_cb(bufferevent_get_input(c->bev), input_cb, c);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = bufferevent_getfd(c->bev);
	/* A reply larger than one 16 KiB write would otherwise wait for the client's delayed
	 * ACK (Nagle): 40 ms on every big search page over a kept-alive connection. */
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(c->addr, sizeof(c->addr), "unknown");
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, c->addr, sizeof(c->addr), NULL, 0,
			    NI_NUMERICHOST);
	if (!addr_acquire(c->addr)) {
		static const char busy[] =
			"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
			"application/problem+json\r\n"
			"Connection: close\r\nContent-Length: 127\r\n\r\n"
			"{\"type\":\"about:blank\",\"title\":\"Service "
			"Unavailable\",\"status\":503,"
			"\"detail\":\"too many connections from this address or in all\"}";
		c->refused = true;
		atomic_fetch_add(&G.conns_refused, 1);
		ssize_t ignored = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)ignored;
		conn_cut(c);
		return;
	}
	c->counted = true;
	event_priority_set(c->timer, PRIORITY_NORMAL);
	arm_deadline(c);
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (!c->adopted) {
		conn_adopt(c);
		return;
	}
	if (c->current) /* a handler is working on it: not the client's delay */
		return;
	conn_cut(c);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	struct conn *c = rsd_calloc(1, sizeof(*c));
	c->w = w;
	c->bev = bev;
	c->timer = event_new(base, -1, 0, conn_timer, c);
	event_priority_set(c->timer, PRIORITY_ADOPT);
	event_active(c->timer, EV_TIMEOUT, 0);
	return bev;
}

/* ---- evhttp's own error pages become problem documents ---- */

static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	static const char marker[] = "</BODY></HTML>\n";
	static const char html[] = "Content-Type: text/html";
	if (c->rewriting)
		return;
	if (c->arm_on_drain && evbuffer_get_length(buf) == 0) {
		c->arm_on_drain = false;
		if (c->current == NULL)
			arm_deadline(c);
	}
	if (c->close_after_flush && info->n_deleted > 0 && evbuffer_get_length(buf) == 0) {
		/* evhttp keeps some connections open after its own errors (CONNECT): end it. */
		conn_cut(c);
		return;
	}
	if (info->n_added == 0 || evbuffer_get_length(buf) < sizeof(marker))
		return;
	struct evbuffer_ptr end = evbuffer_search(buf, marker, sizeof(marker) - 1, NULL);
	if (end.pos < 0)
		return;
	struct evbuffer_ptr ct = evbuffer_search(buf, html, sizeof(html) - 1, NULL);
	if (ct.pos < 0)
		return; /* every reply of ours is JSON or text/plain: this page is evhttp's */
	/* The page's status line is the last "HTTP/1." before its Content-Type. */
	ssize_t start = -1;
	struct evbuffer_ptr p = evbuffer_search(buf, "HTTP/1.", 7, NULL);
	while (p.pos >= 0 && p.pos < ct.pos) {
		start = p.pos;
		evbuffer_ptr_set(buf, &p, 1, EVBUFFER_PTR_ADD);
		p = evbuffer_search(buf, "HTTP/1.", 7, &p);
	}
	if (start < 0)
		return;
	char line[16] = {0};
	struct evbuffer_ptr sp;
	evbuffer_ptr_set(buf, &sp, (size_t)start, EVBUFFER_PTR_SET);
	evbuffer_copyout_from(buf, &sp, line, sizeof(line) - 1);
	int status = (int)strtol(line + 9, NULL, 10);
	if (status < 400 || status > 599)
		status = 400;
	const char *detail = "the request is not valid HTTP/1.1";
	if (status == 413) {
		detail = "the request body exceeds the size limit";
	} else if (status == 501) {
		detail = "the request method is not one this server implements";
	} else if (status == 400 && c->bytes_in > HEADERS_BYTES_MAX) {
		/* evhttp reports headers past its limit as a bad request; say what it was. */
		status = 431;
		detail = "the request's headers exceed 8 KiB";
	}
	char body[256];
	int blen = snprintf(
		body, sizeof(body),
		"{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}",
		router_status_title(status), status, detail);
	char *prefix = rsd_malloc((size_t)start + 1);
	c->rewriting = true;
	c->close_after_flush = true;
	evbuffer_remove(buf, prefix, (size_t)start);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	evbuffer_add(buf, prefix, (size_t)start);
	char request_id[REQUEST_ID_BYTES_MAX + 1];
	rsd_id_new("req_", request_id, sizeof(request_id));
	evbuffer_add_printf(buf,
			    "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
			    "X-Request-Id: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			    status, router_status_title(status), request_id, blen, body);
	c->rewriting = false;
	logger_access(request_id, "-", "-", status, 0, c->addr);
	free(prefix);
}

/* ---- requests ---- */

static unsigned method_bit(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return METHOD_GET;
	case EVHTTP_REQ_HEAD: return METHOD_HEAD;
	case EVHTTP_REQ_POST: return METHOD_POST;
	case EVHTTP_REQ_PUT: return METHOD_PUT;
	case EVHTTP_REQ_PATCH: return METHOD_PATCH;
	case EVHTTP_REQ_DELETE: return METHOD_DELETE;
	case EVHTTP_REQ_OPTIONS: return METHOD_OPTIONS;
	default: return METHOD_OTHER;
	}
}

const char *http_req_method(struct http_req *req)
{
	static const char *const names[] = {"GET",   "HEAD",   "POST",	 "PUT",
					    "PATCH", "DELETE", "OPTIONS"};
	for (int i = 0; i < 7; i++)
		if (req->method == (1u << i))
			return names[i];
	return "OTHER";
}

static void req_finish(struct http_req *req, int status)
{
	struct worker *w = req->w;
	uint64_t dur = rsd_mono_ns() - req->start_ns;
	metrics_request(G.srv->metrics, w->index, req->match.route_index, req->method, status, dur);
	logger_access(req->request_id, http_req_method(req), req->path ? req->path : "-", status,
		      dur / 1000, req->conn ? req->conn->addr : "-");
	if (req->conn) {
		struct conn *c = req->conn;
		c->current = NULL;
		/* The next request's deadline starts once this reply has left: a slow reader of a
		 * large reply is bounded by the write timeout, not cut by the request deadline. */
		if (c->counted && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			arm_deadline(c);
		else
			c->arm_on_drain = c->counted;
	}
	if (req->query_parsed)
		evhttp_clear_headers(&req->query);
	if (req->form_parsed)
		evhttp_clear_headers(&req->form);
	if (req->wake)
		event_free(req->wake);
	if (req->prev)
		req->prev->next = req->next;
	else
		w->live = req->next;
	if (req->next)
		req->next->prev = req->prev;
	arena_release(&req->arena);
	if (w->pooled < REQUEST_POOL_MAX) {
		req->next = w->pool;
		w->pool = req;
		w->pooled++;
	} else {
		free(req);
	}
	atomic_fetch_sub(&w->in_flight, 1);
}

static void send_reply(struct http_req *req, int status, const char *content_type, const char *data,
		       size_t len)
{
	if (req->ev) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
		if (content_type)
			evhttp_add_header(h, "Content-Type", content_type);
		evhttp_add_header(h, "X-Request-Id", req->request_id);
		struct evbuffer *out = evbuffer_new();
		if (len > 0 && req->method != METHOD_HEAD)
			evbuffer_add(out, data, len);
		evhttp_send_reply(req->ev, status, router_status_title(status), out);
		evbuffer_free(out);
	}
	req_finish(req, status);
}

void http_reply_text(struct http_req *req, int status, const char *content_type, const char *text,
		     size_t len)
{
	send_reply(req, status, content_type, text, len);
}

void http_reply_json(struct http_req *req, int status, const cJSON *body)
{
	if (body == NULL) {
		send_reply(req, status, NULL, NULL, 0);
		return;
	}
	char *text = cJSON_PrintUnformatted(body);
	RSD_ASSERT(text != NULL);
	send_reply(req, status, "application/json", text, strlen(text));
	cJSON_free(text);
}

void http_reply_problem(struct http_req *req, int status, const char *detail, const char *field)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "type", "about:blank");
	cJSON_AddStringToObject(p, "title", router_status_title(status));
	cJSON_AddNumberToObject(p, "status", status);
	cJSON_AddStringToObject(p, "detail", detail ? detail : router_status_title(status));
	if (field && field[0])
		cJSON_AddStringToObject(p, "field", field);
	char *text = cJSON_PrintUnformatted(p);
	send_reply(req, status, "application/problem+json", text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(p);
}

void http_reply_accepted(struct http_req *req, const char *id, uint64_t version,
			 const char *location)
{
	if (location)
		http_header_add(req, "Location", location);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "id", id);
	cJSON_AddNumberToObject(body, "version", (double)version);
	cJSON_AddStringToObject(body, "detail",
				location ? "the change is durable but not yet readable; GET the"
					   " Location shortly"
					 : "the change is durable but not yet readable");
	http_reply_json(req, 202, body);
	cJSON_Delete(body);
}

void http_reply_error(struct http_req *req, int err, const struct rsd_fail *f)
{
	int status = router_status(err);
	if (status >= 500)
		logger_log(LOGGER_ERROR, "request %s: %s: %s", req->request_id, rsd_strerror(err),
			   f && f->detail[0] ? f->detail : "-");
	if (err == RSD_EBUSY || err == RSD_EFULL || err == RSD_ETIMEDOUT)
		http_header_add(req, "Retry-After", "1");
	http_reply_problem(req, status, f && f->detail[0] ? f->detail : rsd_strerror(err),
			   f ? f->field : NULL);
}

void http_reply_outcome(struct http_req *req, const struct outcome *o)
{
	if (o->err == RSD_OK) {
		if (o->location[0])
			http_header_add(req, "Location", o->location);
		http_header_add(req, "Cache-Control", "no-store");
		send_reply(req, o->status, "application/json", o->body, o->len);
		return;
	}
	int status = router_status(o->err);
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "type", "about:blank");
	cJSON_AddStringToObject(p, "title", router_status_title(status));
	cJSON_AddNumberToObject(p, "status", status);
	cJSON_AddStringToObject(p, "detail",
				o->fail.detail[0] ? o->fail.detail : rsd_strerror(o->err));
	if (o->fail.field[0])
		cJSON_AddStringToObject(p, "field", o->fail.field);
	cJSON *extra = o->len ? cJSON_ParseWithLength(o->body, o->len) : NULL, *member;
	cJSON_ArrayForEach(member, extra)
	{
		if (!cJSON_GetObjectItem(p, member->string))
			cJSON_AddItemToObject(p, member->string, cJSON_Duplicate(member, 1));
	}
	cJSON_Delete(extra);
	char *text = cJSON_PrintUnformatted(p);
	send_reply(req, status, "application/problem+json", text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(p);
}

int http_req_query_date(struct http_req *req, const char *name, int32_t *day, struct rsd_fail *f)
{
	const char *v = http_req_query(req, name);
	if (v == NULL)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' is required (YYYY-MM-DD)", name);
	if (price_parse_date(v, day) != RSD_OK)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' must be a date YYYY-MM-DD", name);
	return RSD_OK;
}

const char *http_req_principal(struct http_req *req)
{
	return req->who.sub[0] ? req->who.sub : "anonymous";
}

const struct principal *http_req_who(struct http_req *req)
{
	return &req->who;
}

const char *http_req_client_addr(struct http_req *req)
{
	return req->conn ? req->conn->addr : "-";
}

const char *http_req_cookie(struct http_req *req, const char *name)
{
	const char *h = http_req_header(req, "Cookie");
	size_t n = strlen(name);
	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		const char *end = strchr(h, ';');
		size_t len = end ? (size_t)(end - h) : strlen(h);
		if (len > n && strncmp(h, name, n) == 0 && h[n] == '=')
			return arena_strndup(&req->arena, h + n + 1, len - n - 1);
		h = end;
	}
	return NULL;
}

/* The form body's pairs, decoded once per request (an unparsable body has none). */
static struct evkeyvalq *form(struct http_req *req)
{
	if (!req->form_parsed) {
		TAILQ_INIT(&req->form);
		req->form_parsed = true;
		char *text = arena_strndup(&req->arena, req->body ? req->body : "", req->body_len);
		if (evhttp_parse_query_str(text, &req->form) != 0)
			evhttp_clear_headers(&req->form);
	}
	return &req->form;
}

const char *http_req_form(struct http_req *req, const char *name)
{
	return evhttp_find_header(form(req), name);
}

const char *http_req_form_repeated(struct http_req *req)
{
	struct evkeyval *a, *b;
	TAILQ_FOREACH (a, form(req), next) {
		for (b = TAILQ_NEXT(a, next); b; b = TAILQ_NEXT(b, next))
			if (strcmp(a->key, b->key) == 0)
				return a->key;
	}
	return NULL;
}

int http_req_authenticate(struct http_req *req, bool *cookie, struct rsd_fail *f)
{
	*cookie = false;
	if (req->authenticated)
		return RSD_OK;
	req->authenticated = true;
	struct auth *a = G.srv->auth;
	const char *authz = http_req_header(req, "Authorization");
	const char *session = authz ? NULL : http_req_cookie(req, AUTH_COOKIE);
	if (authz == NULL && session == NULL)
		return RSD_OK;
	if (authz && strncasecmp(authz, "Bearer ", 7) != 0)
		return rsd_failf(f, RSD_EAUTH, "", "only Bearer credentials are accepted");
	int err = authz ? auth_bearer(a, req->w->auth_cache, &req->w->state, authz + 7,
				      rsd_now_ms(), &req->who, f)
			: auth_cookie(a, &req->w->state, session, rsd_now_ms(), &req->who, f);
	if (err)
		memset(&req->who, 0, sizeof(req->who));
	*cookie = authz == NULL;
	return err;
}

const char *http_req_id(struct http_req *req, const char *what)
{
	const char *id = http_req_param(req, "id");
	if (strlen(id) <= ENTITY_ID_BYTES_MAX)
		return id;
	struct rsd_fail f;
	rsd_failf(&f, RSD_ENOTFOUND, "", "no %s with id '%.64s'", what, id);
	http_reply_error(req, RSD_ENOTFOUND, &f);
	return NULL;
}

const char *http_req_path(struct http_req *req)
{
	return req->path;
}

struct store_reader *http_req_state(struct http_req *req)
{
	return &req->w->state;
}

void http_header_add(struct http_req *req, const char *name, const char *value)
{
	if (req->ev)
		evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

struct server *http_req_server(struct http_req *req)
{
	(void)req;
	return G.srv;
}
struct arena *http_req_arena(struct http_req *req)
{
	return &req->arena;
}
struct readmodel_reader *http_req_reader(struct http_req *req)
{
	return &req->w->reader;
}

struct readcache *http_req_cache(struct http_req *req)
{
	return req->w->cache;
}

const char *http_req_param(struct http_req *req, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < req->match.nparams; i++)
		if (req->match.params[i].name_len == n &&
		    memcmp(req->match.params[i].name, name, n) == 0)
			return req->match.params[i].value;
	return NULL;
}

const char *http_req_query(struct http_req *req, const char *name)
{
	return req->query_parsed ? evhttp_find_header(&req->query, name) : NULL;
}

int http_req_query_only(struct http_req *req, const char *const *allowed, struct rsd_fail *f)
{
	if (!req->query_parsed)
		return RSD_OK;
	struct evkeyval *kv;
	TAILQ_FOREACH (kv, &req->query, next) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, kv->key) == 0;
		if (!ok)
			return rsd_failf(f, RSD_EINVAL, kv->key, "unknown query parameter '%.64s'",
					 kv->key);
	}
	return RSD_OK;
}

int http_req_query_list(struct http_req *req, const char **names, const char **values, int max)
{
	int n = 0;
	struct evkeyval *kv;
	if (!req->query_parsed)
		return 0;
	TAILQ_FOREACH (kv, &req->query, next) {
		if (n < max) {
			names[n] = kv->key;
			values[n] = kv->value;
		}
		n++;
	}
	return n;
}

void http_etag(uint64_t version, char *out, size_t len)
{
	snprintf(out, len, "\"%" PRIu64 "\"", version);
}

int http_req_if_match(struct http_req *req, uint64_t *out, struct rsd_fail *f)
{
	const char *v = http_req_header(req, "If-Match");
	*out = 0;
	if (v == NULL || strcmp(v, "*") == 0)
		return RSD_OK;
	bool weak = strncmp(v, "W/", 2) == 0;
	if (weak)
		v += 2;
	char *end;
	unsigned long long n = 0;
	if (v[0] == '"' && v[1] >= '0' && v[1] <= '9')
		n = strtoull(v + 1, &end, 10);
	/* "7" or, for a product with reviews, "7.COUNT.SUM": the first part is the version. */
	while (n && *end == '.' && end[1] >= '0' && end[1] <= '9')
		strtoull(end + 1, &end, 10);
	if (n == 0 || *end != '"' || end[1] != '\0')
		return rsd_failf(f, RSD_EINVAL, "If-Match",
				 "If-Match must be an ETag such as \"3\", or *");
	*out = weak ? UINT64_MAX : n;
	return RSD_OK;
}

/* If-None-Match matches etag: "*", or a comma-separated list holding it, W/ ignored. */
static bool none_match_hit(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	while (inm && *inm) {
		while (*inm == ' ' || *inm == ',')
			inm++;
		if (*inm == '*')
			return true;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;
		if (strncmp(inm, etag, n) == 0 &&
		    (inm[n] == '\0' || inm[n] == ',' || inm[n] == ' '))
			return true;
		inm = strchr(inm, ',');
	}
	return false;
}

void http_reply_entity(struct http_req *req, int status, const char *etag,
		       const char *cache_control, const char *body, size_t len)
{
	http_header_add(req, "ETag", etag);
	http_header_add(req, "Cache-Control", cache_control);
	const char *m = http_req_method(req);
	bool read = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	if (status == 200 && read && none_match_hit(http_req_header(req, "If-None-Match"), etag))
		http_reply_json(req, 304, NULL);
	else
		http_reply_text(req, status, "application/json", body, len);
}

const char *http_req_header(struct http_req *req, const char *name)
{
	return req->ev ? evhttp_find_header(evhttp_request_get_input_headers(req->ev), name) : NULL;
}

const char *http_req_body(struct http_req *req, size_t *len)
{
	*len = req->body_len;
	return req->body;
}

/* ---- checks before routing ---- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Refuses raw control bytes, and percent-encoded NUL or control bytes, in the target. */
static const char *check_target(const char *uri)
{
	for (const char *p = uri; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f)
			return "the request target contains a control byte";
		if (ch == '%') {
			if (!is_hex(p[1]) || !is_hex(p[2]))
				return "the request target has a malformed percent escape";
			int v = (int)strtol((char[]){p[1], p[2], 0}, NULL, 16);
			if (v < 0x20 || v == 0x7f)
				return "the request target encodes a NUL or control byte";
		}
	}
	return NULL;
}

/* Refuses the header shapes request smuggling is made of. */
static const char *check_framing(struct evhttp_request *ev)
{
	int cl = 0, te = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH (kv, evhttp_request_get_input_headers(ev), next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			cl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0)
			te++;
	}
	if (cl > 1)
		return "more than one Content-Length header";
	if (cl && te)
		return "both Transfer-Encoding and Content-Length";
	if (te > 1)
		return "more than one Transfer-Encoding header";
	return NULL;
}

static void set_request_id(struct http_req *req)
{
	const char *given = http_req_header(req, "X-Request-Id");
	bool ok = given && given[0] && strlen(given) <= REQUEST_ID_BYTES_MAX;
	for (const char *p = given; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
	if (ok)
		snprintf(req->request_id, sizeof(req->request_id), "%s", given);
	else
		rsd_id_new("req_", req->request_id, sizeof(req->request_id));
}

/* Parses path and query; on bad input replies 400 and closes the connection (what follows
 * on it cannot be trusted), and returns false. */
static bool parse_target(struct http_req *req)
{
	const char *uri = evhttp_request_get_uri(req->ev);
	if (strlen(uri) > URI_BYTES_MAX) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 414, "the request target is too long", NULL);
		return false;
	}
	const char *why = check_target(uri);
	if (why) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 400, why, NULL);
		return false;
	}
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req->ev);
	const char *raw_path = u ? evhttp_uri_get_path(u) : NULL;
	if (raw_path == NULL || raw_path[0] != '/') {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 400, "the request target must be an absolute path", NULL);
		return false;
	}
	size_t n;
	char *decoded = evhttp_uridecode(raw_path, 0, &n);
	req->path = arena_strndup(&req->arena, decoded, n);
	free(decoded);
	const char *q = evhttp_uri_get_query(u);
	TAILQ_INIT(&req->query);
	req->query_parsed = true;
	if (q && evhttp_parse_query_str(q, &req->query) != 0) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 400, "the query string is malformed", NULL);
		return false;
	}
	int count = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH (kv, &req->query, next) {
		if (++count > QUERY_PARAMS_MAX) {
			http_header_add(req, "Connection", "close");
			http_reply_problem(req, 400, "too many query parameters", NULL);
			return false;
		}
		for (struct evkeyval *o = TAILQ_NEXT(kv, next); o; o = TAILQ_NEXT(o, next)) {
			if (strcmp(o->key, kv->key) == 0) {
				http_header_add(req, "Connection", "close");
				http_reply_problem(req, 400, "a query parameter is repeated",
						   kv->key);
				return false;
			}
		}
	}
	return true;
}

static void handle_request(struct evhttp_request *ev, void *arg)
{
	struct worker *w = arg;
	atomic_fetch_add(&w->in_flight, 1);
	struct http_req *req = w->pool;
	if (req) {
		w->pool = req->next;
		w->pooled--;
	} else {
		req = rsd_malloc(sizeof(*req));
	}
	memset(req, 0, offsetof(struct http_req, arena_space));
	req->ev = ev;
	req->w = w;
	req->start_ns = rsd_mono_ns();
	req->method = method_bit(evhttp_request_get_command(ev));
	req->match.route_index = -1; /* "unmatched" until the router says otherwise */
	arena_init_with(&req->arena, req->arena_space, sizeof(req->arena_space));
	req->next = w->live;
	if (w->live)
		w->live->prev = req;
	w->live = req;

	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct conn **slot = map_find(w, evcon);
	/* The adoption event runs before any I/O of a new connection, so slot is found. */
	req->conn = slot ? *slot : NULL;
	if (req->conn) {
		req->conn->current = req;
		req->conn->bytes_in = 0;
		event_del(req->conn->timer);
	}
	set_request_id(req);

	/* A connection over a cap was told 503 and cut, but bytes it had already sent are
	 * parsed all the same: they must not act, or a client told "refused" has its write. */
	if (req->conn == NULL || req->conn->refused) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 503, "too many connections from this address or in all",
				   NULL);
		return;
	}
	/* in_flight was raised above, so http_drain either waits for this request or it sees
	 * draining here: after the drain nothing reaches the writer or the projector. */
	if (atomic_load(&G.draining)) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 503, "the server is shutting down", NULL);
		return;
	}
	const char *why = check_framing(ev);
	if (why) {
		http_header_add(req, "Connection", "close");
		http_reply_problem(req, 400, why, NULL);
		return;
	}
	if (!parse_target(req))
		return;
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	req->body_len = evbuffer_get_length(in);
	req->body = req->body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
	router_dispatch(req, req->method, req->path, &req->match);
}

/* ---- http_submit: writer and projector back to the worker ---- */

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_req *req = arg;
	struct command *cmd = req->cmd;
	int stage = atomic_load(&req->stage);
	if (stage == 1) {
		if (cmd->result != RSD_OK || cmd->last_seq == 0 || req->durable_only) {
			req->then(req, cmd, cmd->result);
			return;
		}
		req->waiter.seq = cmd->last_seq;
		req->waiter.deadline_ns =
			rsd_mono_ns() + (uint64_t)G.srv->config->projector_wait_ms * 1000000u;
		projector_wait(G.srv->projector, &req->waiter);
		return;
	}
	req->then(req, cmd, req->wait_result);
}

static void submit_done(struct command *cmd)
{
	struct http_req *req = cmd->arg;
	atomic_store(&req->stage, 1);
	event_active(req->wake, EV_TIMEOUT, 0);
}

static void visible_cb(struct projector_waiter *wt, int result)
{
	struct http_req *req = wt->arg;
	req->wait_result = result;
	atomic_store(&req->stage, 2);
	event_active(req->wake, EV_TIMEOUT, 0);
}

static void park_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct http_req *req = arg;
	req->park_fn(req, req->park_arg, (what & EV_READ) != 0);
}

void http_req_park(struct http_req *req, int timeout_ms,
		   void (*fn)(struct http_req *req, void *arg, bool woken), void *arg)
{
	req->park_arg = arg;
	if (req->wake)
		event_free(req->wake);
	req->park_fn = fn;
	req->wake = event_new(req->w->base, -1, 0, park_cb, req);
	event_priority_set(req->wake, PRIORITY_NORMAL);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	event_add(req->wake, timeout_ms < 0 ? NULL : &tv);
}

void http_req_unpark(struct http_req *req)
{
	event_active(req->wake, EV_READ, 0);
}

void http_submit_durable(struct http_req *req, struct command *cmd,
			 void (*then)(struct http_req *req, struct command *cmd, int result))
{
	req->durable_only = true;
	http_submit(req, cmd, then);
}

void http_submit(struct http_req *req, struct command *cmd,
		 void (*then)(struct http_req *req, struct command *cmd, int result))
{
	req->cmd = cmd;
	req->then = then;
	if (req->wake)
		event_free(req->wake);
	req->wake = event_new(req->w->base, -1, 0, wake_cb, req);
	event_priority_set(req->wake, PRIORITY_NORMAL);
	req->waiter.fn = visible_cb;
	req->waiter.arg = req;
	atomic_store(&req->stage, 0);
	cmd->done = submit_done;
	cmd->arg = req;
	int rc = writer_submit(G.srv->writer, cmd);
	if (rc != RSD_OK) {
		cmd->result = rc;
		rsd_failf(&cmd->fail, rc, "", "%s",
			  rc == RSD_EBUSY ? "the writer's queue is full"
					  : "the server is shutting down");
		then(req, cmd, rc);
	}
}

/* ---- workers ---- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	if (w->bound) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
	}
}

/* accept() fails once http_stop_accepting has shut the socket down: stop listening for it
 * instead of letting libevent retry (and warn) until stop_cb frees the listener. */
static void listener_error(struct evconnlistener *listener, void *arg)
{
	(void)arg;
	evconnlistener_disable(listener);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	logger_flush();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct timeval every = {.tv_sec = 0, .tv_usec = ACCESS_LOG_FLUSH_MS * 1000};
	event_add(w->flush_ev, &every);
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	logger_flush();
	return NULL;
}

static int listen_socket(const struct sockaddr *addr, socklen_t len);

static int worker_init(struct worker *w, int index, struct rsd_fail *f)
{
	struct config *cfg = G.srv->config;
	w->index = index;
	w->base = event_base_new();
	if (w->base == NULL || event_base_priority_init(w->base, 2) != 0)
		return rsd_failf(f, RSD_EIO, "", "cannot create an event loop");
	w->http = evhttp_new(w->base);
	evhttp_set_bevcb(w->http, make_bev, w);
	evhttp_set_gencb(w->http, handle_request, w);
	evhttp_set_max_headers_size(w->http, HEADERS_BYTES_MAX);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->body_bytes_max);
	evhttp_set_timeout(w->http, cfg->idle_timeout_s);
	/* CONNECT and TRACE are refused by evhttp itself (501): resortd is no proxy, and
	 * evhttp's replies to CONNECT carry no length, leaving the client waiting. */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	/* Each worker accepts on a socket of its own (see listen_socket); evhttp owns it and
	 * closes it when the worker stops accepting. */
	int fd = index == 0 ? G.listen_fd : listen_socket((struct sockaddr *)&G.bound, G.bound_len);
	w->bound = fd >= 0 ? evhttp_accept_socket_with_handle(w->http, fd) : NULL;
	if (w->bound == NULL)
		return rsd_failf(f, RSD_EIO, "listen", "worker %d cannot listen: %s", index,
				 strerror(errno));
	w->listen_fd = fd;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(w->bound), listener_error);
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->flush_ev = event_new(w->base, -1, EV_PERSIST, flush_cb, w);
	w->cache = readcache_new(READCACHE_SLOTS);
	w->auth_cache = auth_cache_new();
	w->state.store = G.srv->store;
	int err = readmodel_reader_open(&w->reader, G.srv->catalog_path, f);
	if (err)
		return err;
	return RSD_OK;
}

/* Makes a listening socket on addr. SO_REUSEPORT lets every worker have its own socket on
 * the same port, and the kernel spreads new connections across them; with one shared
 * socket, whichever worker wakes first took a whole burst (measured: all 64 benchmark
 * connections on one worker about one run in five). */
static int listen_socket(const struct sockaddr *addr, socklen_t len)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, addr, len) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Opens worker 0's socket and keeps its address (with the real port when port 0 was
 * asked) for the other workers' sockets. */
static int open_listener(struct config *cfg, struct rsd_fail *f)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	char port[16];
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	int rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
	if (rc != 0)
		return rsd_failf(f, RSD_EIO, "listen", "cannot resolve %s: %s", cfg->listen,
				 gai_strerror(rc));
	int fd = listen_socket(ai->ai_addr, ai->ai_addrlen);
	int e = errno;
	freeaddrinfo(ai);
	if (fd < 0)
		return rsd_failf(f, RSD_EIO, "listen", "cannot listen on %s: %s", cfg->listen,
				 strerror(e));
	G.bound_len = sizeof(G.bound);
	getsockname(fd, (struct sockaddr *)&G.bound, &G.bound_len);
	G.port = ntohs(G.bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&G.bound)->sin6_port
						     : ((struct sockaddr_in *)&G.bound)->sin_port);
	G.listen_fd = fd;
	/* The default public URL names the port actually bound (listen may say port 0): it is
	 * the issuer of our tokens and the base of the IdP's redirect URI. Set before any
	 * worker starts, so they read it without a lock. */
	if (cfg->public_url[0] == '\0')
		snprintf(cfg->public_url, sizeof(cfg->public_url), "http://%s%.200s%s:%d",
			 strchr(cfg->listen_host, ':') ? "[" : "", cfg->listen_host,
			 strchr(cfg->listen_host, ':') ? "]" : "", G.port);
	return RSD_OK;
}

int http_start(struct server *srv, struct rsd_fail *f)
{
	G.srv = srv;
	pthread_mutex_init(&G.addr_mu, NULL);
	G.addrs = rsd_calloc(CONN_ADDR_SLOTS, sizeof(struct addr_slot));
	int err = open_listener(srv->config, f);
	if (err)
		return err;
	int n = srv->config->workers > 0 ? srv->config->workers
					 : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	G.nworkers = n;
	G.workers = rsd_calloc((size_t)n, sizeof(struct worker));
	for (int i = 0; i < n; i++)
		if ((err = worker_init(&G.workers[i], i, f)))
			return err;
	G.listen_fd = -1; /* worker 0's evhttp owns it now */
	for (int i = 0; i < n; i++)
		if (pthread_create(&G.workers[i].thread, NULL, worker_main, &G.workers[i]) != 0)
			rsd_fatal("cannot start worker thread %d", i);
	return RSD_OK;
}

int http_bound_port(void)
{
	return G.port;
}

uint64_t http_in_flight(void)
{
	uint64_t n = 0;
	for (int i = 0; i < G.nworkers; i++)
		n += atomic_load(&G.workers[i].in_flight);
	return n;
}

uint64_t http_connections_open(void)
{
	return atomic_load(&G.conns_open);
}
uint64_t http_connections_refused(void)
{
	return atomic_load(&G.conns_refused);
}

void http_stop_accepting(void)
{
	atomic_store(&G.draining, true);
	/* Shut every worker's listening socket in one quick loop here, so the port refuses at
	 * once: had each worker closed its own on its loop, a connection could be refused by
	 * one closing socket and then accepted by another still open. */
	for (int i = 0; i < G.nworkers; i++)
		shutdown(G.workers[i].listen_fd, SHUT_RD);
	for (int i = 0; i < G.nworkers; i++)
		event_active(G.workers[i].stop_ev, EV_TIMEOUT, 0);
}

void http_drain(int grace_ms)
{
	for (int waited = 0; waited < grace_ms && http_in_flight() > 0; waited += DRAIN_POLL_MS)
		usleep(DRAIN_POLL_MS * 1000);
}

void http_stop_loops(void)
{
	for (int i = 0; i < G.nworkers; i++)
		event_base_loopexit(G.workers[i].base, NULL);
	for (int i = 0; i < G.nworkers; i++)
		pthread_join(G.workers[i].thread, NULL);
}

void http_free(void)
{
	for (int i = 0; i < G.nworkers; i++) {
		struct worker *w = &G.workers[i];
		/* Requests still waiting (past the grace period) are dropped unanswered. */
		while (w->live) {
			w->live->ev = NULL;
			req_finish(w->live, 503);
		}
		evhttp_free(w->http);
		logger_flush(); /* lines of requests finished above, on this thread's buffer */
		event_free(w->stop_ev);
		event_free(w->flush_ev);
		readcache_free(w->cache);
		auth_cache_free(w->auth_cache);
		while (w->pool) {
			struct http_req *next = w->pool->next;
			free(w->pool);
			w->pool = next;
		}
		readmodel_reader_close(&w->reader);
		store_reader_close(&w->state);
		free(w->map);
		event_base_free(w->base);
	}
	free(G.workers);
	G.workers = NULL;
	G.nworkers = 0;
	free(G.addrs);
	G.addrs = NULL;
	pthread_mutex_destroy(&G.addr_mu);
}
