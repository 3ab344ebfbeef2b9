/*
 * http.c — the HTTP/1.1 server: workers, connections, request checks, replies, and the
 * bridge from the writer and projector threads back to a request's own event loop.
 *
 * Each worker runs one libevent loop and accepts on a listening socket of its own. A
 * connection is a socket, an input buffer that http_parse.c reads requests from in place,
 * and an output buffer; at most one of its requests is handled at a time (pipelined ones
 * wait in the input) and replies leave in order. resortd used libevent's evhttp until it
 * measured that evhttp alone, with no routing or storage, served only 0.75 of nginx's
 * requests/s: its per-request allocations, header lists and event toggling cost more than
 * everything resortd does for a read. Here a kept-alive GET costs one read, one write and no
 * event changes.
 *
 * What the server guarantees:
 * - caps on connections in all and per client address (over a cap: a 503, and nothing the
 *   connection sent is read), and a deadline for a whole request to arrive;
 * - problem documents for everything refused before a handler runs (400, 413, 414, 417,
 *   431, 501, 505), each with an X-Request-Id and an access line; a refused request's
 *   connection is closed, so nothing pipelined behind it runs;
 * - a closing connection first shuts its write side and reads what the client still sends
 *   for up to LINGER_MS, so the client reads the reply instead of a reset.
 *
 * Invariants: every struct http_req is freed exactly once, by req_finish, on its worker's
 * thread; a request whose connection closed first is "orphaned" (conn NULL) and finishes
 * without replying. The input bytes a request points into never move while it lives.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
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
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "http_parse.h"
#include "json.h"
#include "logger.h"
#include "metrics.h"
#include "readcache.h"
#include "price.h"
#include "router.h"
#include "banned.h"

#define DRAIN_POLL_MS	  20
#define IN_FIRST_BYTES	  4096	      /* a connection's input buffer to start with */
#define IN_KEEP_BYTES	  (16 * 1024) /* larger idle buffers are freed */
#define OUT_KEEP_BYTES	  (64 * 1024)
#define OUT_HIGH_BYTES	  (1024 * 1024) /* pipelined requests wait while this much is unsent */
#define LINGER_MS	  2000
#define REFUSED_LINGER_MS 200 /* a refused connection holds no place: let it go sooner */
#define ACCEPT_BATCH	  64
#define ACCEPT_RETRY_MS	  100 /* out of descriptors: try accepting again after this */
#define CHUNK_SLACK_BYTES (64 * 1024)
#define NS_PER_MS	  1000000ull
#define NS_PER_S	  1000000000ull

struct worker;

/* One client connection, from accept to close. */
struct conn {
	struct worker *w;
	int fd;
	struct event *rd, *wr, *timer;
	struct event *resume; /* goes on with pipelined input after a late reply; made on need */
	struct conn *prev, *next; /* the worker's open connections */
	struct http_req *current; /* the request being handled, if any */
	char addr[INET6_ADDRSTRLEN];
	char *in; /* received bytes; a request's head and body point into it */
	size_t in_len, in_cap;
	size_t scanned;		   /* where http_parse_head resumes */
	bool head_done;		   /* head parsed, its body still arriving */
	struct http_chunks chunks; /* how far a chunked body has been looked at */
	struct http_head head;	   /* the head of the request arriving or being handled */
	size_t req_bytes;	   /* input bytes of the current request, dropped when it ends */
	char *out;
	size_t out_len, out_off, out_cap;
	uint64_t wait_since_ns; /* since when the next request is awaited */
	uint64_t last_read_ns;
	uint64_t last_write_ns; /* the last progress sending, or when sending began to wait */
	uint64_t linger_until_ns;
	uint64_t timer_due_ns; /* when the timer fires; 0 when it is not armed */
	bool counted;	       /* holds a place under the connection caps */
	bool closing;	       /* a reply saying Connection: close is queued */
	bool lingering;	       /* write side shut: input is read and dropped until EOF */
	bool peer_done;	       /* the client has sent its end of file */
	bool read_paused;      /* input waits: a request points into it, or replies are unsent */
	bool refused;	       /* over a connection cap: told 503, nothing read */
	bool write_armed;
	bool in_loop;	    /* conn_process runs: it flushes replies when done */
	bool continue_sent; /* "100 Continue" was sent for the arriving request */
};

/* A query or form parameter, decoded. */
struct param {
	const char *name, *value;
};

/* A header a handler added to the reply; copied into the request's arena. */
struct out_header {
	const char *name, *value;
	struct out_header *next;
};

struct http_req {
	struct conn *conn;	      /* NULL once orphaned */
	const struct http_head *head; /* NULL once orphaned */
	const char *base;	      /* the bytes head's offsets point into */
	char *owned_input;	      /* the input buffer, when the connection closed first */
	struct worker *w;
	struct arena arena;
	struct param *query;
	int nquery;
	const char *path;
	const char *body;
	size_t body_len;
	unsigned method;
	int minor;	 /* HTTP/1.<minor> */
	bool keep_alive; /* what the client asked */
	bool close;	 /* reply with Connection: close and end the connection */
	struct out_header *out_first, *out_last;
	struct route_match match;
	struct principal who;
	bool authenticated; /* http_req_authenticate ran */
	struct param *form;
	int nform;
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
	int listen_fd;
	struct event *accept_ev;
	struct event *accept_retry; /* re-enables accepting after running out of descriptors */
	struct event *stop_ev;
	struct event *flush_ev; /* writes buffered access lines every ACCESS_LOG_FLUSH_MS */
	struct readmodel_reader reader;
	struct store_reader state; /* LMDB snapshots of this worker's handlers */
	struct readcache *cache;
	struct readcache *search_cache; /* NULL when search_cache_entries is 0 */
	struct auth_cache *auth_cache;	/* access tokens this worker has verified */
	struct conn *conns;		/* open connections */
	struct http_req *live;		/* requests not yet finished */
	struct http_req *pool;		/* finished requests kept for reuse: malloc'ing ~3 KiB per
					 * request made glibc consolidate its free lists every time */
	int pooled;
	time_t date_s; /* the second date[] shows */
	char date[40]; /* "Date: ...\r\n" */
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

static void conn_process(struct conn *c);
static bool conn_next_request(struct conn *c);

static uint64_t secs_ns(int s)
{
	return (uint64_t)s * NS_PER_S;
}

/* Makes the timer fire at due_ns, unless it already fires no later. */
static void conn_timer_at(struct conn *c, uint64_t due_ns)
{
	if (c->timer_due_ns && c->timer_due_ns <= due_ns)
		return;
	uint64_t now = rsd_mono_ns(), d = due_ns > now ? due_ns - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(d / NS_PER_S),
			     .tv_usec = (suseconds_t)(d % NS_PER_S / 1000)};
	c->timer_due_ns = due_ns;
	event_add(c->timer, &tv);
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;
	if (c->current) {
		/* Orphaned: it finishes without replying; what it points into stays. */
		c->current->conn = NULL;
		c->current->head = NULL;
		c->current->owned_input = c->in;
		c->in = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->counted)
		addr_release(c->addr);
	event_free(c->rd);
	event_free(c->wr);
	event_free(c->timer);
	if (c->resume)
		event_free(c->resume);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/*
 * The timer is re-armed lazily: serving a request only updates the times below, and the
 * timer, when it fires, finds out whether the connection is really late.
 */
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	const struct config *cfg = G.srv->config;
	uint64_t now = rsd_mono_ns(), due;
	c->timer_due_ns = 0;
	if (c->lingering) {
		due = c->linger_until_ns;
	} else if (c->current || (c->out_off < c->out_len && !c->write_armed)) {
		/* A handler at work, or its reply queued and about to be sent (a late reply is
		 * sent from the loop): our delay, not the client's. */
		due = now + secs_ns(cfg->header_deadline_s);
	} else if (c->out_off < c->out_len) {
		due = c->last_write_ns + secs_ns(cfg->idle_timeout_s); /* a slow reader */
	} else {
		due = c->wait_since_ns + secs_ns(cfg->header_deadline_s);
		uint64_t idle = c->last_read_ns + secs_ns(cfg->idle_timeout_s);
		due = idle < due ? idle : due;
	}
	if (now >= due) {
		conn_free(c);
		return;
	}
	conn_timer_at(c, due);
}

static void out_add(struct conn *c, const char *s, size_t n)
{
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		c->out = rsd_realloc(c->out, cap);
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* Ends the conversation: the client gets an end of file after the reply, and what it still
 * sends is read and dropped for a while, so that it is not reset before reading the reply.
 * Returns false when the connection was freed. */
static bool conn_linger(struct conn *c)
{
	c->lingering = true;
	if (c->peer_done) {
		conn_free(c);
		return false;
	}
	shutdown(c->fd, SHUT_WR);
	if (c->read_paused) {
		event_add(c->rd, NULL);
		c->read_paused = false;
	}
	c->linger_until_ns =
		rsd_mono_ns() + (c->refused ? REFUSED_LINGER_MS : LINGER_MS) * NS_PER_MS;
	conn_timer_at(c, c->linger_until_ns);
	return true;
}

/* Sends what is queued; returns false when the connection was freed. */
static bool conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->write_armed) {
				event_add(c->wr, NULL);
				c->write_armed = true;
				c->last_write_ns = rsd_mono_ns();
			}
			return true;
		}
		conn_free(c); /* the client is gone */
		return false;
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > OUT_KEEP_BYTES) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	if (c->write_armed) {
		/* The next request's deadline starts once a slow reply has left. */
		event_del(c->wr);
		c->write_armed = false;
		c->wait_since_ns = c->last_read_ns = rsd_mono_ns();
	}
	if (c->closing && !c->lingering && c->current == NULL)
		return conn_linger(c);
	return true;
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	c->last_write_ns = rsd_mono_ns();
	if (conn_flush(c) && !c->write_armed)
		conn_process(c); /* pipelined requests may have waited for the output to drain */
}

/* Reads and drops what a closing connection's client still sends. */
static void linger_read(struct conn *c)
{
	char sink[16384];
	ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		conn_free(c);
}

/* Makes room to read into; false when the input must wait (a request points into it). */
static bool in_room(struct conn *c)
{
	if (c->in_cap - c->in_len >= 1024)
		return true;
	if (c->current)
		return false;
	size_t want = c->in_cap ? c->in_cap * 2 : IN_FIRST_BYTES;
	if (c->head_done && c->head.has_length && c->head.len + c->head.content_length > want)
		want = c->head.len + (size_t)c->head.content_length +
		       1024; /* one grow for the body */
	c->in = rsd_realloc(c->in, want);
	c->in_cap = want;
	return true;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->lingering) {
		linger_read(c);
		return;
	}
	/* Input is not read while nothing would parse it (a closing reply or too many replies
	 * unsent: a client that does not read must not fill memory), nor while the request
	 * being handled points into a full buffer. */
	if (c->closing || c->out_len - c->out_off >= OUT_HIGH_BYTES || !in_room(c)) {
		event_del(c->rd);
		c->read_paused = true;
		return;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		conn_free(c);
		return;
	}
	if (n == 0) {
		c->peer_done = true;
		event_del(c->rd);
	}
	c->in_len += (size_t)n;
	c->last_read_ns = rsd_mono_ns();
	conn_process(c);
}

/* Handles the complete requests in the input, in order, then sends the replies at once. */
static void conn_process(struct conn *c)
{
	c->in_loop = true;
	while (c->current == NULL && !c->closing && !c->lingering && c->in_len > 0 &&
	       c->out_len - c->out_off < OUT_HIGH_BYTES && conn_next_request(c))
		;
	c->in_loop = false;
	if (!conn_flush(c) || c->lingering)
		return;
	if (c->peer_done && c->current == NULL && c->out_len == 0) {
		conn_free(c); /* whatever is left of the input can never be a whole request */
		return;
	}
	if (c->read_paused && c->current == NULL) {
		event_add(c->rd, NULL);
		c->read_paused = false;
	}
}

static void conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_process(arg);
}

/* After a request: drops its input bytes and, when it ended later than it arrived, goes on
 * with what the connection has sent since. */
static void conn_request_done(struct conn *c, uint64_t now)
{
	c->current = NULL;
	c->in_len -= c->req_bytes;
	memmove(c->in, c->in + c->req_bytes, c->in_len);
	c->req_bytes = 0;
	if (c->in_len == 0 && c->in_cap > IN_KEEP_BYTES) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	c->wait_since_ns = now;
	if (c->in_loop)
		return;
	/* A late reply (from the writer, a park): its caller is still on the stack and may touch
	 * its request after replying, so the next request starts from the loop, not here. */
	if (c->resume == NULL)
		c->resume = event_new(c->w->base, -1, 0, conn_resume_cb, c);
	event_active(c->resume, EV_TIMEOUT, 0);
}

static void conn_open(struct worker *w, int fd, const struct sockaddr_storage *ss)
{
	struct conn *c = rsd_calloc(1, sizeof(*c));
	c->w = w;
	c->fd = fd;
	/* A reply larger than one segment would otherwise wait for the client's delayed ACK
	 * (Nagle): 40 ms on every big search page over a kept-alive connection. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	const void *ip = ss->ss_family == AF_INET6
				 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
				 : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, ip, c->addr, sizeof(c->addr)) == NULL)
		snprintf(c->addr, sizeof(c->addr), "unknown");
	c->rd = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wr = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->timer = event_new(w->base, -1, 0, conn_timer_cb, c);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	c->wait_since_ns = c->last_read_ns = c->last_write_ns = rsd_mono_ns();
	event_add(c->rd, NULL);
	if (!addr_acquire(c->addr)) {
		/* Nothing this connection sent is ever parsed: a client told "refused" must not
		 * have its write done all the same. */
		static const char busy[] =
			"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
			"application/problem+json\r\n"
			"Connection: close\r\nContent-Length: 127\r\n\r\n"
			"{\"type\":\"about:blank\",\"title\":\"Service "
			"Unavailable\",\"status\":503,"
			"\"detail\":\"too many connections from this address or in all\"}";
		atomic_fetch_add(&G.conns_refused, 1);
		c->refused = true;
		out_add(c, busy, sizeof(busy) - 1);
		c->closing = true;
		conn_flush(c);
		return;
	}
	c->counted = true;
	conn_timer_at(c, c->wait_since_ns + secs_ns(G.srv->config->header_deadline_s));
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	if (w->accept_ev)
		event_add(w->accept_ev, NULL);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	(void)what;
	struct worker *w = arg;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_open(w, fd, &ss);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The pending connection stays queued; retrying at once would spin. */
			logger_log(LOGGER_WARN, "worker %d cannot accept: %s", w->index,
				   strerror(errno));
			event_del(w->accept_ev);
			struct timeval tv = {.tv_usec = ACCEPT_RETRY_MS * 1000};
			event_add(w->accept_retry, &tv);
			return;
		}
		/* EINVAL once http_stop_accepting has shut the socket: stop listening for it. */
		event_del(w->accept_ev);
		return;
	}
}

/* ---- requests ---- */

const char *http_req_method(struct http_req *req)
{
	static const char *const names[] = {"GET",   "HEAD",   "POST",	 "PUT",
					    "PATCH", "DELETE", "OPTIONS"};
	for (int i = 0; i < 7; i++)
		if (req->method == (1u << i))
			return names[i];
	return "OTHER";
}

static void set_request_id(struct http_req *req);

static struct http_req *req_new(struct worker *w, struct conn *c, const struct http_head *h)
{
	atomic_fetch_add(&w->in_flight, 1);
	struct http_req *req = w->pool;
	if (req) {
		w->pool = req->next;
		w->pooled--;
	} else {
		req = rsd_malloc(sizeof(*req));
	}
	memset(req, 0, offsetof(struct http_req, arena_space));
	req->w = w;
	req->conn = c;
	req->head = h;
	req->base = c->in;
	req->start_ns = rsd_mono_ns();
	req->method = h ? h->method : METHOD_OTHER;
	req->minor = h ? h->minor : 1;
	req->keep_alive = h && h->keep_alive;
	req->match.route_index = -1; /* "unmatched" until the router says otherwise */
	arena_init_with(&req->arena, req->arena_space, sizeof(req->arena_space));
	req->next = w->live;
	if (w->live)
		w->live->prev = req;
	w->live = req;
	c->current = req;
	set_request_id(req);
	return req;
}

static void req_finish(struct http_req *req, int status)
{
	struct worker *w = req->w;
	uint64_t now = rsd_mono_ns(), dur = now - req->start_ns;
	struct conn *c = req->conn;
	metrics_request(G.srv->metrics, w->index, req->match.route_index, req->method, status, dur);
	logger_access(req->request_id, http_req_method(req), req->path ? req->path : "-", status,
		      dur / 1000, c ? c->addr : "-");
	if (req->wake)
		event_free(req->wake);
	if (req->prev)
		req->prev->next = req->next;
	else
		w->live = req->next;
	if (req->next)
		req->next->prev = req->prev;
	arena_release(&req->arena);
	free(req->owned_input);
	if (w->pooled < REQUEST_POOL_MAX) {
		req->next = w->pool;
		w->pool = req;
		w->pooled++;
	} else {
		free(req);
	}
	atomic_fetch_sub(&w->in_flight, 1);
	if (c)
		conn_request_done(c, now);
}

/* "Date: <IMF-fixdate>\r\n", formatted once a second per worker. */
static const char *date_line(struct worker *w)
{
	time_t now = time(NULL);
	if (now != w->date_s) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		w->date_s = now;
	}
	return w->date;
}

static void out_header(struct conn *c, const char *name, const char *value)
{
	out_add(c, name, strlen(name));
	out_add(c, ": ", 2);
	out_add(c, value, strlen(value));
	out_add(c, "\r\n", 2);
}

static void send_reply(struct http_req *req, int status, const char *content_type, const char *data,
		       size_t len)
{
	struct conn *c = req->conn;
	if (c) {
		bool bodiless = status == 204 || status == 304 || status < 200;
		char line[160];
		int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status,
				 router_status_title(status));
		out_add(c, line, (size_t)n);
		const char *date = date_line(req->w);
		out_add(c, date, strlen(date));
		if (content_type)
			out_header(c, "Content-Type", content_type);
		out_header(c, "X-Request-Id", req->request_id);
		for (const struct out_header *h = req->out_first; h; h = h->next)
			out_header(c, h->name, h->value);
		if (!req->keep_alive || req->close) {
			c->closing = true;
			out_add(c, "Connection: close\r\n", 19);
		} else if (req->minor == 0) {
			out_add(c, "Connection: keep-alive\r\n", 24);
		}
		if (!bodiless) {
			n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", len);
			out_add(c, line, (size_t)n);
		}
		out_add(c, "\r\n", 2);
		if (len > 0 && !bodiless && req->method != METHOD_HEAD)
			out_add(c, data, len);
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
	char *text = json_print(body);
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
	char *text = json_print(p);
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
	char *text = json_print(p);
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

/* ---- query strings and form bodies ---- */

/* Percent-decodes s[0..n) into the arena ('+' is a space when plus); a malformed escape
 * stays as it is. */
static char *decode(struct arena *a, const char *s, size_t n, bool plus)
{
	char *out = arena_alloc(a, n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = http_hex_digit(s[i + 1])) >= 0 &&
		    (lo = http_hex_digit(s[i + 2])) >= 0) {
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*o++ = plus && s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return out;
}

/*
 * Splits "a=1&b=2" (s[0..n)) into decoded pairs in the arena. Empty pieces are skipped; a
 * piece without '=' or with an empty name is malformed (-1). Returns how many pairs.
 */
static int split_params(struct arena *a, const char *s, size_t n, struct param **out)
{
	int cap = 1;
	for (size_t i = 0; i < n; i++)
		cap += s[i] == '&';
	struct param *p = arena_alloc(a, (size_t)cap * sizeof(*p));
	int count = 0;
	for (size_t i = 0; i < n;) {
		const char *amp = memchr(s + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - s) : n;
		if (end > i) {
			const char *eq = memchr(s + i, '=', end - i);
			if (eq == NULL || eq == s + i)
				return -1;
			size_t k = (size_t)(eq - (s + i));
			p[count].name = decode(a, s + i, k, true);
			p[count].value = decode(a, eq + 1, end - i - k - 1, true);
			count++;
		}
		i = end + 1;
	}
	*out = p;
	return count;
}

static const char *param_get(const struct param *p, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return p[i].value;
	return NULL;
}

/* The first name that appears twice among p[0..n), or NULL. */
static const char *param_repeated(const struct param *p, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(p[i].name, p[j].name) == 0)
				return p[i].name;
	return NULL;
}

/* The form body's pairs, decoded once per request (an unparsable body has none). */
static void form_parse(struct http_req *req)
{
	if (req->form_parsed)
		return;
	req->form_parsed = true;
	req->nform =
		split_params(&req->arena, req->body ? req->body : "", req->body_len, &req->form);
	if (req->nform < 0)
		req->nform = 0;
}

const char *http_req_form(struct http_req *req, const char *name)
{
	form_parse(req);
	return param_get(req->form, req->nform, name);
}

const char *http_req_form_repeated(struct http_req *req)
{
	form_parse(req);
	return param_repeated(req->form, req->nform);
}

const char *http_req_query(struct http_req *req, const char *name)
{
	return param_get(req->query, req->nquery, name);
}

int http_req_query_only(struct http_req *req, const char *const *allowed, struct rsd_fail *f)
{
	for (int i = 0; i < req->nquery; i++) {
		const char *key = req->query[i].name;
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok)
			return rsd_failf(f, RSD_EINVAL, key, "unknown query parameter '%.64s'",
					 key);
	}
	return RSD_OK;
}

int http_req_query_list(struct http_req *req, const char **names, const char **values, int max)
{
	for (int i = 0; i < req->nquery && i < max; i++) {
		names[i] = req->query[i].name;
		values[i] = req->query[i].value;
	}
	return req->nquery;
}

void http_header_add(struct http_req *req, const char *name, const char *value)
{
	if (req->conn == NULL)
		return;
	if (strcasecmp(name, "Connection") == 0) {
		req->close = req->close || strcasecmp(value, "close") == 0;
		return;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		/* never let a value split the reply's head */
		logger_log(LOGGER_WARN, "request %s: header %s dropped: a line break in its value",
			   req->request_id, name);
		return;
	}
	struct out_header *h = arena_alloc(&req->arena, sizeof(*h));
	h->name = arena_strndup(&req->arena, name, strlen(name));
	h->value = arena_strndup(&req->arena, value, strlen(value));
	h->next = NULL;
	if (req->out_last)
		req->out_last->next = h;
	else
		req->out_first = h;
	req->out_last = h;
}

const char *http_req_header(struct http_req *req, const char *name)
{
	return req->head ? http_head_get(req->head, req->base, name) : NULL;
}

const char *http_req_body(struct http_req *req, size_t *len)
{
	*len = req->body_len;
	return req->body;
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

struct readcache *http_req_search_cache(struct http_req *req)
{
	return req->w->search_cache;
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

/* ---- checks before routing ---- */

/* Refuses raw control bytes, and percent-encoded NUL or control bytes, in the target. */
static const char *check_target(const char *uri)
{
	for (const char *p = uri; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f)
			return "the request target contains a control byte";
		if (ch == '%') {
			if (http_hex_digit(p[1]) < 0 || http_hex_digit(p[2]) < 0)
				return "the request target has a malformed percent escape";
			int v = http_hex_digit(p[1]) * 16 + http_hex_digit(p[2]);
			if (v < 0x20 || v == 0x7f)
				return "the request target encodes a NUL or control byte";
		}
	}
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

/* Replies a problem and ends the connection: what follows on it cannot be trusted. */
static void refuse(struct http_req *req, int status, const char *why, const char *field)
{
	req->close = true;
	http_reply_problem(req, status, why, field);
}

/* Parses path and query; on bad input replies 400 and returns false. */
static bool parse_target(struct http_req *req)
{
	const char *uri = req->base + req->head->target;
	const char *why = check_target(uri);
	if (why) {
		refuse(req, 400, why, NULL);
		return false;
	}
	/* The absolute form (RFC 9112 3.2.2) names the path after the authority. */
	if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
		uri += 8 - (uri[4] == ':');
		uri += strcspn(uri, "/?#");
	}
	if (uri[0] != '/') {
		refuse(req, 400, "the request target must be an absolute path", NULL);
		return false;
	}
	size_t path_len = strcspn(uri, "?#");
	req->path = decode(&req->arena, uri, path_len, false);
	if (uri[path_len] != '?')
		return true;
	const char *q = uri + path_len + 1;
	req->nquery = split_params(&req->arena, q, strcspn(q, "#"), &req->query);
	if (req->nquery < 0) {
		req->nquery = 0;
		refuse(req, 400, "the query string is malformed", NULL);
		return false;
	}
	if (req->nquery > QUERY_PARAMS_MAX) {
		refuse(req, 400, "too many query parameters", NULL);
		return false;
	}
	const char *twice = param_repeated(req->query, req->nquery);
	if (twice) {
		refuse(req, 400, "a query parameter is repeated", twice);
		return false;
	}
	return true;
}

/* Starts the request whose head is c->head and whose body is body[0..len). */
static void dispatch(struct conn *c, const char *body, size_t len)
{
	struct http_req *req = req_new(c->w, c, &c->head);
	req->body = len ? body : NULL;
	req->body_len = len;
	/* in_flight was raised above, so http_drain either waits for this request or it sees
	 * draining here: after the drain nothing reaches the writer or the projector. */
	if (atomic_load(&G.draining)) {
		refuse(req, 503, "the server is shutting down", NULL);
		return;
	}
	/* RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host header or
	 * with more than one (two would let a proxy and us disagree on where it goes). */
	if (c->head.minor >= 1 && c->head.hosts != 1) {
		refuse(req, 400, "an HTTP/1.1 request must carry exactly one Host header", NULL);
		return;
	}
	if (req->method == METHOD_OTHER) {
		/* CONNECT and TRACE too: resortd is no proxy. */
		refuse(req, 501, "the request method is not one this server implements", NULL);
		return;
	}
	if (!parse_target(req))
		return;
	router_dispatch(req, req->method, req->path, &req->match);
}

/* Refuses what arrived before it became a request (the head when it could be read). */
static void refuse_input(struct conn *c, int status, const char *why, bool head_read)
{
	c->req_bytes = c->in_len;
	c->head_done = false;
	struct http_req *req = req_new(c->w, c, head_read ? &c->head : NULL);
	refuse(req, status, why, NULL);
}

/* Tells a client that waits for it before sending its body to go on (RFC 9110 10.1.1). */
static void send_continue(struct conn *c)
{
	if (c->head.expect_continue && c->head.minor >= 1 && !c->continue_sent) {
		out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		c->continue_sent = true;
	}
}

/* Starts the next request if the input holds all of it; false when more bytes are needed
 * (or the input was refused). */
static bool conn_next_request(struct conn *c)
{
	struct http_head *h = &c->head;
	if (!c->head_done) {
		int rc = http_parse_head(c->in, c->in_len, HEADERS_BYTES_MAX, URI_BYTES_MAX,
					 &c->scanned, h);
		if (rc == HTTP_PARSE_MORE)
			return false;
		if (rc == HTTP_PARSE_ERROR) {
			refuse_input(c, h->status, h->why, false);
			return false;
		}
		c->head_done = true;
		c->continue_sent = false;
		c->chunks = (struct http_chunks){0};
	}
	uint64_t max = (uint64_t)G.srv->config->body_bytes_max;
	char *body = c->in + h->len;
	size_t have = c->in_len - h->len, used = 0, size = 0;
	if (h->chunked) {
		int status = 0;
		const char *why = NULL;
		int rc = http_parse_chunked(body, have, max, &c->chunks, &used, &status, &why);
		if (rc == HTTP_PARSE_MORE && have > 2 * max + CHUNK_SLACK_BYTES) {
			rc = HTTP_PARSE_ERROR;
			status = 413;
			why = "the request body exceeds the size limit";
		}
		if (rc == HTTP_PARSE_ERROR) {
			refuse_input(c, status, why, true);
			return false;
		}
		if (rc == HTTP_PARSE_MORE) {
			send_continue(c);
			return false;
		}
		size = http_decode_chunked(body, used);
	} else if (h->has_length) {
		if (h->content_length > max) {
			refuse_input(c, 413, "the request body exceeds the size limit", true);
			return false;
		}
		if (have < h->content_length) {
			send_continue(c);
			return false;
		}
		used = size = (size_t)h->content_length;
	}
	c->head_done = false;
	c->scanned = 0;
	c->req_bytes = h->len + used;
	dispatch(c, body, size);
	return true;
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
	if (w->accept_ev) {
		event_free(w->accept_ev);
		w->accept_ev = NULL;
		close(w->listen_fd);
	}
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
	w->index = index;
	w->base = event_base_new();
	if (w->base == NULL)
		return rsd_failf(f, RSD_EIO, "", "cannot create an event loop");
	/* Each worker accepts on a socket of its own (see listen_socket). */
	int fd = index == 0 ? G.listen_fd : listen_socket((struct sockaddr *)&G.bound, G.bound_len);
	if (fd < 0)
		return rsd_failf(f, RSD_EIO, "listen", "worker %d cannot listen: %s", index,
				 strerror(errno));
	w->listen_fd = fd;
	w->accept_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, accept_cb, w);
	w->accept_retry = event_new(w->base, -1, 0, accept_retry_cb, w);
	event_add(w->accept_ev, NULL);
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->flush_ev = event_new(w->base, -1, EV_PERSIST, flush_cb, w);
	w->cache = readcache_new(READCACHE_SLOTS);
	if (G.srv->config->search_cache_entries > 0)
		w->search_cache = readcache_new((size_t)G.srv->config->search_cache_entries);
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
	G.listen_fd = -1; /* worker 0 owns it now */
	for (int i = 0; i < n; i++) {
		if (pthread_create(&G.workers[i].thread, NULL, worker_main, &G.workers[i]) != 0)
			rsd_fatal("cannot start worker thread %d", i);
		char name[16]; /* the kernel's limit, with the NUL; i < WORKERS_MAX */
		snprintf(name, sizeof(name), "rsd-http-%u", (unsigned)i % 1000u);
		pthread_setname_np(G.workers[i].thread, name);
	}
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
		for (struct http_req *r = w->live; r; r = r->next) {
			if (r->conn)
				r->conn->current = NULL;
			r->conn = NULL;
		}
		while (w->live)
			req_finish(w->live, 503);
		while (w->conns)
			conn_free(w->conns);
		if (w->accept_ev) {
			event_free(w->accept_ev);
			close(w->listen_fd);
		}
		event_free(w->accept_retry);
		logger_flush(); /* lines of requests finished above, on this thread's buffer */
		event_free(w->stop_ev);
		event_free(w->flush_ev);
		readcache_free(w->cache);
		readcache_free(w->search_cache);
		auth_cache_free(w->auth_cache);
		while (w->pool) {
			struct http_req *next = w->pool->next;
			free(w->pool);
			w->pool = next;
		}
		readmodel_reader_close(&w->reader);
		store_reader_close(&w->state);
		event_base_free(w->base);
	}
	free(G.workers);
	G.workers = NULL;
	G.nworkers = 0;
	free(G.addrs);
	G.addrs = NULL;
	pthread_mutex_destroy(&G.addr_mu);
}
