/*
 * bench_net.h — what the closed-loop HTTP benchmark clients (bench/auth_client.c,
 * bench/booking_client.c) share: loopback connections on one epoll set, sending a request
 * without blocking, splitting a Content-Length response, clocks and percentiles.
 * Benchmark code only; never linked into resortd.
 */
#ifndef RSD_BENCH_NET_H
#define RSD_BENCH_NET_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void);

/* realloc, or exit(1) with a message. */
void *bench_xrealloc(void *p, size_t n);

/* A non-blocking TCP_NODELAY connection to 127.0.0.1:port, added to ep for reading with
 * ptr as its data. Returns the socket, or -1. */
int bench_connect(int ep, int port, void *ptr);
/* Removes fd from ep and closes it. */
void bench_disconnect(int ep, int fd);
/* Asks ep to report fd writable too (on) or not. */
void bench_want_write(int ep, int fd, void *ptr, int on);
/* Sends out[*off, len) as far as the socket takes it, advancing *off; when it would block,
 * asks for writability and returns 0. Returns -1 on a socket error. */
int bench_flush(int ep, int fd, void *ptr, const char *out, size_t len, size_t *off);

/* Splits one response at the start of in: 1 when it is whole (status, body, body_len and
 * total, its length with the head, set), 0 when more bytes are needed, -1 when malformed
 * (not HTTP/1.x, chunked, or a head over 64 KiB). */
int bench_parse_response(const char *in, size_t in_len, int *status, const char **body,
			 size_t *body_len, size_t *total);

/* qsort comparison of doubles, and the q-quantile (nearest rank) of n sorted values. */
int bench_cmp_double(const void *a, const void *b);
double bench_pct(const double *v, size_t n, double q);

#endif
