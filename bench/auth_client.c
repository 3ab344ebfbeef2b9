/*
 * auth_client.c — HTTP load client of the sign-in benchmark (issue 5, bench/auth.sh):
 * POST /auth/token, closed loop, CONNS keep-alive connections on one epoll thread.
 *
 *  refresh: each connection first signs in once (grant_type=password as USER, not counted),
 *    so each has a session of its own, then chains grant_type=refresh_token: every request
 *    presents the refresh token of the previous answer (used once, rotated by the server's
 *    writer in a durable commit; an access token is signed for each).
 *  login:   each request is grant_type=password as USER: a PBKDF2 check of the stored hash
 *    on the server's password thread, then a new session (a durable commit) and a signed
 *    access token.
 * Counted: 200 answers with an access_token completed within SECONDS; latency = request
 * written to the last byte of its answer (CLOCK_MONOTONIC). A failed refresh breaks that
 * connection's chain: it is an error, and the connection signs in again (not counted).
 * When SECONDS are over no request starts; those in flight finish (at most DRAIN_S).
 *
 * Usage: auth_client PORT refresh|login CONNS SECONDS USER PASSWORD
 *   (USER and PASSWORD as they go in the form: [A-Za-z0-9._-] needs no encoding)
 * Output, stdout (times in ms):
 *   RESULT mode=<m> conns=<c> secs=<s> ok=<n> ok_per_s=<x> ok_all=<with those finished after
 *     SECONDS> p50_ms= p90_ms= p99_ms= max_ms= errors=<non-200>
 *     socket_errors=<broken in flight> setup_logins=<n> client_cpu_s=<>
 * and ERROR lines (status and body) for the first few failures, on stderr.
 * Exit status 1 when a connection fails or nothing succeeded.
 *
 * Build (bench/auth.sh does this): cc -O2 -std=c11 -D_GNU_SOURCE bench/auth_client.c -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"

#define CONNS_MAX	 1024
#define REQ_BYTES_MAX	 1024
#define RESP_BYTES_MAX	 (256 * 1024)
#define TOKEN_BYTES_MAX	 64
#define DRAIN_S		 60
#define ERRORS_SHOWN_MAX 5

enum conn_state { C_IDLE, C_LOGIN, C_REFRESH };

struct conn {
	int fd;
	enum conn_state state;
	bool counted; /* the request in flight is a measured one */
	double t_start;
	char refresh[TOKEN_BYTES_MAX + 1];
	char out[REQ_BYTES_MAX];
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
};

static struct conn conns[CONNS_MAX];
static int n_conns, port, ep;
static bool mode_refresh;
static const char *user, *password;
static double *lat_ms;
static size_t n_lat, cap_lat;
static uint64_t ok_in_window, ok_all, errors, socket_errors, errors_shown, setup_logins;

static int conn_open(struct conn *c)
{
	c->fd = bench_connect(ep, port, c);
	c->state = C_IDLE;
	c->in_len = 0;
	return c->fd < 0 ? -1 : 0;
}

static void conn_close(struct conn *c)
{
	bench_disconnect(ep, c->fd);
	c->fd = -1;
	c->state = C_IDLE;
}

/* Sends what is left of c->out; -1 on a socket error. */
static int flush_out(struct conn *c)
{
	return bench_flush(ep, c->fd, c, c->out, c->out_len, &c->out_off);
}

/* Starts the connection's next POST /auth/token: a login when it has no refresh token
 * (or in login mode), else the refresh of the token it holds. */
static int start_request(struct conn *c, bool counted)
{
	char form[512];
	int len;
	if (mode_refresh && c->refresh[0]) {
		c->state = C_REFRESH;
		len = snprintf(form, sizeof(form), "grant_type=refresh_token&refresh_token=%s",
			       c->refresh);
	} else {
		c->state = C_LOGIN;
		len = snprintf(form, sizeof(form), "grant_type=password&username=%s&password=%s",
			       user, password);
	}
	c->counted = counted && (!mode_refresh || c->state == C_REFRESH);
	int n = snprintf(c->out, sizeof(c->out),
			 "POST /auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			 "Content-Type: application/x-www-form-urlencoded\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 len, form);
	if (len < 0 || (size_t)len >= sizeof(form) || n < 0 || (size_t)n >= sizeof(c->out))
		return -1;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->in_len = 0;
	c->t_start = bench_now_s();
	return flush_out(c);
}

static void show_error(const char *what, int status, const char *body, size_t len)
{
	errors++;
	if (errors_shown++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "ERROR %s: HTTP %d: %.*s\n", what, status,
			(int)(len > 300 ? 300 : len), body);
}

/* Copies the string member name of the JSON body into out; false when absent. */
static bool member(const char *body, size_t len, const char *name, char *out, size_t cap)
{
	char key[64];
	int k = snprintf(key, sizeof(key), "\"%s\":\"", name);
	const char *p = memmem(body, len, key, (size_t)k);
	if (!p)
		return false;
	p += k;
	size_t n = 0;
	while (p + n < body + len && p[n] != '"' && n + 1 < cap)
		n++;
	if (p + n >= body + len || p[n] != '"')
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return n > 0;
}

static void record(double ms)
{
	if (n_lat == cap_lat) {
		cap_lat = cap_lat ? cap_lat * 2 : 65536;
		lat_ms = bench_xrealloc(lat_ms, cap_lat * sizeof(*lat_ms));
	}
	lat_ms[n_lat++] = ms;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr,
			"usage: auth_client PORT refresh|login CONNS SECONDS USER PASSWORD\n");
		return 2;
	}
	port = atoi(argv[1]);
	mode_refresh = strcmp(argv[2], "refresh") == 0;
	n_conns = atoi(argv[3]);
	double secs = atof(argv[4]);
	user = argv[5];
	password = argv[6];
	if (port <= 0 || (!mode_refresh && strcmp(argv[2], "login") != 0) || n_conns < 1 ||
	    n_conns > CONNS_MAX || secs <= 0 || strpbrk(user, "&=%+ ") ||
	    strpbrk(password, "&=%+ ")) {
		fprintf(stderr, "auth_client: bad arguments\n");
		return 2;
	}
	ep = epoll_create1(0);
	for (int i = 0; i < n_conns; i++) {
		conns[i].in_cap = 16384;
		conns[i].in = bench_xrealloc(NULL, conns[i].in_cap);
		if (conn_open(&conns[i]) != 0) {
			fprintf(stderr, "auth_client: connect to port %d failed: %s\n", port,
				strerror(errno));
			return 1;
		}
	}
	struct epoll_event evs[256];
	int in_flight = 0;

	/* Refresh mode: every connection signs in first, before the clock starts. */
	if (mode_refresh) {
		for (int i = 0; i < n_conns; i++) {
			if (start_request(&conns[i], false) != 0) {
				fprintf(stderr, "auth_client: send failed\n");
				return 1;
			}
			in_flight++;
		}
	}
	double t0 = bench_now_s(), t_end = t0 + secs;
	bool setup = mode_refresh;
	if (!mode_refresh) {
		for (int i = 0; i < n_conns; i++) {
			if (start_request(&conns[i], true) != 0)
				socket_errors++;
			else
				in_flight++;
		}
	}

	for (;;) {
		double now = bench_now_s();
		if (!setup && now >= t_end && in_flight == 0)
			break;
		if (now > t_end + DRAIN_S) {
			fprintf(stderr, "auth_client: %d requests still in flight after %d s\n",
				in_flight, DRAIN_S);
			break;
		}
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT) {
				if (flush_out(c) != 0)
					goto broken;
				if (c->out_off == c->out_len)
					bench_want_write(ep, c->fd, c, 0);
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				continue;
			for (;;) {
				if (c->in_cap - c->in_len < 4096) {
					if (c->in_cap >= RESP_BYTES_MAX)
						goto broken;
					c->in_cap *= 2;
					c->in = bench_xrealloc(c->in, c->in_cap);
				}
				ssize_t r =
					recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
				if (r > 0) {
					c->in_len += (size_t)r;
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (r < 0 && errno == EINTR)
					continue;
				goto broken;
			}
			int status;
			const char *body;
			size_t body_len, total;
			int pr = bench_parse_response(c->in, c->in_len, &status, &body, &body_len,
						      &total);
			if (pr < 0)
				goto broken;
			if (pr == 0)
				continue;
			double t = bench_now_s();
			char access[4096];
			bool ok = status == 200 &&
				  member(body, body_len, "access_token", access, sizeof(access)) &&
				  member(body, body_len, "refresh_token", c->refresh,
					 sizeof(c->refresh));
			if (!ok) {
				show_error(c->state == C_REFRESH ? "refresh" : "login", status,
					   body, body_len);
				c->refresh[0] = '\0'; /* sign in again */
			} else if (c->state == C_LOGIN && mode_refresh) {
				setup_logins++;
			} else if (c->counted) {
				ok_all++;
				if (t <= t_end) {
					ok_in_window++;
					record((t - c->t_start) * 1e3);
				}
			}
			in_flight--;
			c->state = C_IDLE;
			c->in_len = 0;
			if (setup) {
				if (in_flight == 0) { /* every connection is signed in: go */
					setup = false;
					t0 = bench_now_s();
					t_end = t0 + secs;
					for (int k = 0; k < n_conns; k++) {
						if (conns[k].fd < 0 ||
						    start_request(&conns[k], true))
							socket_errors++;
						else
							in_flight++;
					}
				}
				continue;
			}
			if (bench_now_s() < t_end) {
				if (start_request(c, true) != 0)
					goto broken;
				in_flight++;
			}
			continue;
		broken:
			if (c->state != C_IDLE) {
				socket_errors++;
				in_flight--;
			}
			conn_close(c);
			if (conn_open(c) != 0) {
				fprintf(stderr, "auth_client: reconnect failed: %s\n",
					strerror(errno));
				return 1;
			}
			c->refresh[0] = '\0';
			if (!setup && bench_now_s() < t_end && start_request(c, true) == 0)
				in_flight++;
		}
	}

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	qsort(lat_ms, n_lat, sizeof(double), bench_cmp_double);
	printf("RESULT mode=%s conns=%d secs=%.2f ok=%llu ok_per_s=%.1f ok_all=%llu p50_ms=%.3f"
	       " p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%llu socket_errors=%llu"
	       " setup_logins=%llu client_cpu_s=%.2f\n",
	       mode_refresh ? "refresh" : "login", n_conns, secs, (unsigned long long)ok_in_window,
	       (double)ok_in_window / secs, (unsigned long long)ok_all, bench_pct(lat_ms, n_lat, 0.50),
	       bench_pct(lat_ms, n_lat, 0.90), bench_pct(lat_ms, n_lat, 0.99), n_lat ? lat_ms[n_lat - 1] : 0,
	       (unsigned long long)errors, (unsigned long long)socket_errors,
	       (unsigned long long)setup_logins, cpu);
	return ok_in_window > 0 ? 0 : 1;
}
