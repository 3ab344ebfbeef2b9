/*
 * bench_net.c — the benchmark clients' shared connection, response and statistics helpers
 * (see bench_net.h).
 */
#include "bench_net.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void *bench_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fprintf(stderr, "bench: out of memory\n");
		exit(1);
	}
	return q;
}

int bench_connect(int ep, int port, void *ptr)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void bench_disconnect(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

void bench_want_write(int ep, int fd, void *ptr, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = ptr};
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

int bench_flush(int ep, int fd, void *ptr, const char *out, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, out + *off, len - *off, MSG_NOSIGNAL);
		if (n > 0) {
			*off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			bench_want_write(ep, fd, ptr, 1);
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
	return 0;
}

int bench_parse_response(const char *in, size_t in_len, int *status, const char **body,
			 size_t *body_len, size_t *total)
{
	if (in_len < 12)
		return 0;
	const char *eoh = memmem(in, in_len, "\r\n\r\n", 4);
	if (!eoh)
		return in_len > 65536 ? -1 : 0;
	if (strncmp(in, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(in + 9);
	size_t cl = 0;
	for (const char *p = in; p && p < eoh; p = memchr(p, '\n', (size_t)(eoh - p))) {
		if (*p == '\n')
			p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			cl = strtoul(p + 15, NULL, 10);
		if (strncasecmp(p, "Transfer-Encoding:", 18) == 0)
			return -1; /* resortd sends Content-Length; chunked is not expected */
	}
	size_t head = (size_t)(eoh + 4 - in);
	if (in_len < head + cl)
		return 0;
	*body = in + head;
	*body_len = cl;
	*total = head + cl;
	return 1;
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_pct(const double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(q * (double)n + 0.999999);
	return v[(i < 1 ? 1 : i > n ? n : i) - 1];
}
