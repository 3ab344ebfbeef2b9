/*
 * booking_client.c — HTTP load client of the booking benchmark (issue 4): each booking is
 * POST /v1/holds then POST /v1/bookings {"hold_id", "payment": {"method": "desk"}} on
 * one keep-alive connection, counted when the booking answers 201 (confirmed, durable).
 *
 * One thread, epoll, CONNS non-blocking keep-alive connections to 127.0.0.1:PORT, so the
 * client costs a few microseconds of CPU per booking on the cores it shares with the
 * server. Each booking picks a uniformly random line of TARGETS ("PRODUCT_ID FROM TO",
 * dates YYYY-MM-DD) and holds qty 1 of it.
 *  closed loop (RATE 0): every connection starts its next booking as soon as the last one
 *    is answered; bookings/s = bookings confirmed within SECONDS / SECONDS.
 *  open loop (RATE > 0): bookings arrive every 1/RATE s for SECONDS whatever the server
 *    does; an arrival waits for a free connection if none is idle. Latency is measured
 *    from the arrival, so queueing counts (no coordinated omission).
 * Latency of a booking: hold request written (closed) or arrival (open) to the booking's
 * last response byte (CLOCK_MONOTONIC). When SECONDS are over no booking is started; those
 * in flight finish (at most DRAIN_S) and count in the per-target tally, not in the rate.
 *
 * Usage: booking_client PORT TARGETS CONNS SECONDS RATE [COUNTS_OUT]
 * Output (times in ms), stdout:
 *   RESULT mode=closed|open conns=C secs=S offered_per_s=R bookings=B bookings_per_s=X
 *     p50_ms= p90_ms= p99_ms= max_ms= hold_p50_ms= confirm_p50_ms= errors=E socket_errors=
 *     reconnects= in_flight_done=D client_cpu_s=
 * (errors: non-201 answers; socket_errors: connections broken with a booking in flight;
 * reconnects: idle connections the server closed, reopened, not errors)
 * and ERROR lines (status and body) for the first few non-201 answers, on stderr.
 * COUNTS_OUT receives "PRODUCT_ID FROM CONFIRMED" per target: every 201 booking, also
 * those finished after SECONDS, for bench/booking.sh to compare with the sold counters.
 * With BOOKING_CLIENT_SERIES=S in the environment, SERIES lines on stderr give, per S seconds
 * of start times, the bookings started and their mean and worst latency (stalls show there).
 * Exit status 1 when the connection fails or no booking was confirmed.
 * With BENCH_AUTH=VALUE in the environment (e.g. "Bearer eyJ..."), every request carries
 * "Authorization: VALUE" (bench/booking.sh passes the bench admin's token).
 *
 * Build (bench/booking.sh does this): cc -O2 -std=c11 -D_GNU_SOURCE bench/booking_client.c -lm
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

#define CONNS_MAX	 4096
#define TARGETS_MAX	 100000
#define ID_BYTES_MAX	 48
#define REQ_BYTES_MAX	 4096 /* a request with its Authorization header */
#define AUTH_BYTES_MAX	 2048
#define RESP_BYTES_MAX	 (1024 * 1024)
#define DRAIN_S		 30
#define ERRORS_SHOWN_MAX 5

enum conn_state { C_IDLE, C_HOLD, C_BOOK };

struct target {
	char product_id[ID_BYTES_MAX + 1];
	char from[11], to[11];
	uint64_t confirmed;
};

struct conn {
	int fd;
	enum conn_state state;
	struct target *tg;
	double t_start, t_hold; /* s, monotonic */
	char out[REQ_BYTES_MAX];
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
};

static struct target *targets;
static int n_targets;
static struct conn conns[CONNS_MAX];
static int n_conns, port, ep;
static uint64_t rng = 0x2545f4914f6cdd1dULL;
static char auth_line[AUTH_BYTES_MAX + 32]; /* "Authorization: ...\r\n" or "" */

static double *lat_ms, *hold_ms, *confirm_ms; /* samples within the window */
static double *start_s;			      /* each sample's start, from t0 */
static size_t n_lat, cap_lat;
static uint64_t bookings_in_window, in_flight_done, errors, socket_errors, errors_shown;
static uint64_t reconnects; /* idle connections the server closed, reopened */

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int load_targets(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	targets = bench_xrealloc(NULL, sizeof(*targets) * TARGETS_MAX);
	char line[256];
	while (fgets(line, sizeof(line), f) && n_targets < TARGETS_MAX) {
		struct target *t = &targets[n_targets];
		memset(t, 0, sizeof(*t));
		if (sscanf(line, "%48s %10s %10s", t->product_id, t->from, t->to) == 3)
			n_targets++;
	}
	fclose(f);
	return n_targets > 0 ? 0 : -1;
}

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

static int send_post(struct conn *c, const char *path, const char *body, int body_len)
{
	int n = snprintf(c->out, sizeof(c->out),
			 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 path, auth_line, body_len, body);
	if (n < 0 || (size_t)n >= sizeof(c->out))
		return -1;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->in_len = 0;
	return flush_out(c);
}

static int start_booking(struct conn *c, double t_start)
{
	c->tg = &targets[xorshift() % (uint64_t)n_targets];
	c->t_start = t_start;
	c->state = C_HOLD;
	char body[REQ_BYTES_MAX];
	int len = snprintf(
		body, sizeof(body),
		"{\"items\":[{\"product_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"qty\":1}],"
		"\"guest\":{\"name\":\"Bench Guest\",\"email\":\"guest@example.com\"}}",
		c->tg->product_id, c->tg->from, c->tg->to);
	return send_post(c, "/v1/holds", body, len);
}

static void show_error(const char *what, int status, const char *body, size_t len)
{
	errors++;
	if (errors_shown++ < ERRORS_SHOWN_MAX)
		fprintf(stderr, "ERROR %s: HTTP %d: %.*s\n", what, status,
			(int)(len > 300 ? 300 : len), body);
}

/* Counts a booking confirmed within the window, with its latencies. */
static void record(struct conn *c, double t_end)
{
	c->tg->confirmed++;
	if (n_lat == cap_lat) {
		cap_lat = cap_lat ? cap_lat * 2 : 65536;
		lat_ms = bench_xrealloc(lat_ms, cap_lat * sizeof(*lat_ms));
		hold_ms = bench_xrealloc(hold_ms, cap_lat * sizeof(*hold_ms));
		confirm_ms = bench_xrealloc(confirm_ms, cap_lat * sizeof(*confirm_ms));
		start_s = bench_xrealloc(start_s, cap_lat * sizeof(*start_s));
	}
	start_s[n_lat] = c->t_start;
	lat_ms[n_lat] = (t_end - c->t_start) * 1e3;
	hold_ms[n_lat] = (c->t_hold - c->t_start) * 1e3;
	confirm_ms[n_lat] = (t_end - c->t_hold) * 1e3;
	n_lat++;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr,
			"usage: booking_client PORT TARGETS CONNS SECONDS RATE [COUNTS_OUT]\n");
		return 2;
	}
	port = atoi(argv[1]);
	n_conns = atoi(argv[3]);
	double secs = atof(argv[4]), rate = atof(argv[5]);
	const char *counts_out = argc > 6 ? argv[6] : NULL;
	if (port <= 0 || n_conns < 1 || n_conns > CONNS_MAX || secs <= 0 || rate < 0 ||
	    load_targets(argv[2]) != 0) {
		fprintf(stderr, "booking_client: bad arguments or empty targets file\n");
		return 2;
	}
	const char *auth = getenv("BENCH_AUTH");
	if (auth && auth[0]) {
		if (strlen(auth) > AUTH_BYTES_MAX || strpbrk(auth, "\r\n")) {
			fprintf(stderr, "booking_client: BENCH_AUTH: one line of at most %d bytes\n",
				AUTH_BYTES_MAX);
			return 2;
		}
		snprintf(auth_line, sizeof(auth_line), "Authorization: %s\r\n", auth);
	}
	rng ^= (uint64_t)getpid() << 20;
	ep = epoll_create1(0);
	for (int i = 0; i < n_conns; i++) {
		conns[i].in_cap = 16384;
		conns[i].in = bench_xrealloc(NULL, conns[i].in_cap);
		if (conn_open(&conns[i]) != 0) {
			fprintf(stderr, "booking_client: connect to port %d failed: %s\n", port,
				strerror(errno));
			return 1;
		}
	}

	/* idle: a FIFO of the connections with nothing in flight (open loop), so every
	 * connection keeps being used (the server cuts one idle for header_deadline_s);
	 * queue: open-loop arrival times not yet started. */
	struct conn **idle = bench_xrealloc(NULL, sizeof(*idle) * (size_t)n_conns);
	int n_idle = 0, idle_head = 0;
	size_t q_cap = 1024, q_head = 0, q_tail = 0;
	double *queue = bench_xrealloc(NULL, sizeof(*queue) * q_cap);
	double t0 = bench_now_s(), t_end = t0 + secs, next_arrival = t0;
	uint64_t offered = 0;
	struct epoll_event evs[256];
	int in_flight = 0;

	if (rate == 0) {
		for (int i = 0; i < n_conns; i++) {
			if (start_booking(&conns[i], bench_now_s()) != 0)
				socket_errors++;
			else
				in_flight++;
		}
	} else {
		for (int i = 0; i < n_conns; i++)
			idle[(idle_head + n_idle++) % n_conns] = &conns[i];
	}

	for (;;) {
		double now = bench_now_s();
		bool open_phase = now < t_end;
		if (!open_phase && in_flight == 0 && q_head == q_tail)
			break;
		if (now > t_end + DRAIN_S) {
			fprintf(stderr, "booking_client: %d bookings still in flight after %d s\n",
				in_flight, DRAIN_S);
			break;
		}
		if (rate > 0) {
			/* Queue every arrival that is due, then hand them to idle connections. */
			while (next_arrival <= now && next_arrival < t_end) {
				if (q_tail - q_head == q_cap) {
					size_t n = q_tail - q_head;
					double *nq = bench_xrealloc(NULL, sizeof(*nq) * q_cap * 2);
					for (size_t i = 0; i < n; i++)
						nq[i] = queue[(q_head + i) % q_cap];
					free(queue);
					queue = nq;
					q_cap *= 2;
					q_head = 0;
					q_tail = n;
				}
				queue[q_tail++ % q_cap] = next_arrival;
				offered++;
				next_arrival = t0 + (double)offered / rate;
			}
			while (n_idle > 0 && q_head != q_tail) {
				struct conn *c = idle[idle_head];
				idle_head = (idle_head + 1) % n_conns;
				n_idle--;
				double t = queue[q_head++ % q_cap];
				if (start_booking(c, t) != 0) {
					socket_errors++;
					conn_close(c);
					if (conn_open(c) == 0)
						idle[(idle_head + n_idle++) % n_conns] = c;
				} else {
					in_flight++;
				}
			}
		}
		int timeout_ms = 100;
		if (rate > 0 && next_arrival < t_end) {
			/* Rounded up: a zero timeout while the next arrival is under 1 ms away
			 * would spin, taking a core from the server. Arrivals due by the wake-up
			 * are queued together, their latency still counted from their own time. */
			double wait = next_arrival - bench_now_s();
			timeout_ms = wait <= 0 ? 0 : (int)(wait * 1e3) + 1;
		}
		int n = epoll_wait(ep, evs, 256, timeout_ms);
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
				goto broken; /* EOF or error */
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
			if (c->state == C_HOLD) {
				char hold_id[ID_BYTES_MAX + 1] = "";
				const char *p = status == 201
							? memmem(body, body_len, "\"id\":\"", 6)
							: NULL;
				if (p) {
					p += 6;
					size_t k = 0;
					while (k < ID_BYTES_MAX && p + k < body + body_len &&
					       p[k] != '"')
						k++;
					memcpy(hold_id, p, k);
					hold_id[k] = '\0';
				}
				if (!hold_id[0]) {
					show_error("POST /v1/holds", status, body, body_len);
					goto next;
				}
				c->t_hold = bench_now_s();
				c->state = C_BOOK;
				char req[REQ_BYTES_MAX];
				int len = snprintf(
					req, sizeof(req),
					"{\"hold_id\":\"%s\",\"payment\":{\"method\":\"desk\"}}",
					hold_id);
				if (send_post(c, "/v1/bookings", req, len) != 0)
					goto broken;
				continue;
			}
			if (status == 201) {
				double t = bench_now_s();
				/* Closed loop: the window is when bookings complete; open loop:
				 * when they arrive (every arrival of the window is waited for). */
				bool in_window = rate > 0 ? c->t_start < t_end : t <= t_end;
				if (in_window) {
					bookings_in_window++;
					record(c, t);
				} else {
					c->tg->confirmed++;
					in_flight_done++;
				}
			} else {
				show_error("POST /v1/bookings", status, body, body_len);
			}
		next:
			in_flight--;
			c->state = C_IDLE;
			c->in_len = 0;
			if (rate == 0) {
				if (bench_now_s() < t_end) {
					if (start_booking(c, bench_now_s()) != 0)
						goto broken;
					in_flight++;
				}
			} else {
				idle[(idle_head + n_idle++) % n_conns] = c;
			}
			continue;
		broken:
			/* A connection the server closed while it was idle (a keep-alive timeout)
			 * is only reopened, and stays where it is in the idle FIFO; one that breaks
			 * with a booking in flight loses that booking, an error. */
			if (c->state != C_IDLE) {
				socket_errors++;
				in_flight--;
			} else {
				reconnects++;
			}
			bool was_idle = c->state == C_IDLE;
			conn_close(c);
			if (conn_open(c) != 0) {
				fprintf(stderr, "booking_client: reconnect failed: %s\n",
					strerror(errno));
				return 1;
			}
			if (rate == 0 && bench_now_s() < t_end) {
				if (start_booking(c, bench_now_s()) == 0)
					in_flight++;
			} else if (rate > 0 && !was_idle) {
				idle[(idle_head + n_idle++) % n_conns] = c;
			}
		}
	}

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	if (getenv("BOOKING_CLIENT_SERIES")) {
		/* Per slice of S seconds of start times: bookings started, mean and worst latency.
		 */
		const double slice = atof(getenv("BOOKING_CLIENT_SERIES")) > 0
					     ? atof(getenv("BOOKING_CLIENT_SERIES"))
					     : 0.5;
		int n_slices = (int)(secs / slice) + 1;
		double *sum = calloc((size_t)n_slices, sizeof(double));
		double *worst = calloc((size_t)n_slices, sizeof(double));
		int *count = calloc((size_t)n_slices, sizeof(int));
		for (size_t i = 0; i < n_lat; i++) {
			int k = (int)((start_s[i] - t0) / slice);
			k = k < 0 ? 0 : k >= n_slices ? n_slices - 1 : k;
			sum[k] += lat_ms[i];
			count[k]++;
			if (lat_ms[i] > worst[k])
				worst[k] = lat_ms[i];
		}
		for (int k = 0; k < n_slices; k++)
			fprintf(stderr, "SERIES t=%.2f n=%d mean_ms=%.1f max_ms=%.1f\n", k * slice,
				count[k], count[k] ? sum[k] / count[k] : 0, worst[k]);
		free(sum);
		free(worst);
		free(count);
	}
	qsort(lat_ms, n_lat, sizeof(double), bench_cmp_double);
	qsort(hold_ms, n_lat, sizeof(double), bench_cmp_double);
	qsort(confirm_ms, n_lat, sizeof(double), bench_cmp_double);
	printf("RESULT mode=%s conns=%d secs=%.2f offered_per_s=%.0f bookings=%llu"
	       " bookings_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
	       " hold_p50_ms=%.3f confirm_p50_ms=%.3f errors=%llu socket_errors=%llu"
	       " reconnects=%llu in_flight_done=%llu client_cpu_s=%.2f\n",
	       rate > 0 ? "open" : "closed", n_conns, secs, rate > 0 ? (double)offered / secs : 0,
	       (unsigned long long)bookings_in_window, (double)bookings_in_window / secs,
	       bench_pct(lat_ms, n_lat, 0.50), bench_pct(lat_ms, n_lat, 0.90), bench_pct(lat_ms, n_lat, 0.99),
	       n_lat ? lat_ms[n_lat - 1] : 0, bench_pct(hold_ms, n_lat, 0.50),
	       bench_pct(confirm_ms, n_lat, 0.50), (unsigned long long)errors,
	       (unsigned long long)socket_errors, (unsigned long long)reconnects,
	       (unsigned long long)in_flight_done, cpu);
	if (counts_out) {
		FILE *f = fopen(counts_out, "w");
		if (!f) {
			fprintf(stderr, "booking_client: cannot write %s\n", counts_out);
			return 1;
		}
		for (int i = 0; i < n_targets; i++)
			fprintf(f, "%s %s %llu\n", targets[i].product_id, targets[i].from,
				(unsigned long long)targets[i].confirmed);
		fclose(f);
	}
	return bookings_in_window > 0 ? 0 : 1;
}
