/*
 * bare_evhttp.c — the evhttp ceiling: a minimal libevent evhttp server with the same
 * threading as resortd (N threads, each its own event_base and evhttp on a dup of one
 * shared listening socket) that answers every request with a fixed body read from a file
 * (Content-Type: application/json). No routing, no JSON, no storage, no logging.
 *
 * Usage: bare_evhttp PORT THREADS BODY_FILE [reuseport]   (127.0.0.1 only; SIGTERM stops it)
 * With "reuseport" each thread gets its own SO_REUSEPORT socket instead of a dup of one
 * shared socket, so the kernel spreads connections over the threads.
 * Build: cc -O2 -std=c11 -D_GNU_SOURCE bench/bare_evhttp.c -levent -lpthread
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char body[65536];
static size_t body_len;

static void handle(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	evbuffer_add_reference(out, body, body_len, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void *run(void *arg)
{
	int fd = *(int *)arg;
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	if (!base || !http || !evhttp_accept_socket_with_handle(http, fd)) {
		fprintf(stderr, "bare_evhttp: set-up failed\n");
		exit(1);
	}
	evhttp_set_gencb(http, handle, NULL);
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s PORT THREADS BODY_FILE [reuseport]\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	if (port <= 0 || port > 65535 || n < 1 || n > 64) {
		fprintf(stderr, "bare_evhttp: bad port or thread count\n");
		return 2;
	}
	FILE *f = fopen(argv[3], "rb");
	if (!f) {
		perror(argv[3]);
		return 1;
	}
	body_len = fread(body, 1, sizeof(body), f);
	fclose(f);
	signal(SIGPIPE, SIG_IGN);
	bool reuseport = argc == 5 && strcmp(argv[4], "reuseport") == 0;
	static int fds[64];
	pthread_t th[64];
	int lfd = -1;
	for (int i = 0; i < n; i++) {
		if (i > 0 && !reuseport) {
			fds[i] = dup(lfd);
			continue;
		}
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (reuseport)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    listen(fd, 4096) != 0) {
			perror("bare_evhttp: listen");
			return 1;
		}
		lfd = fd;
		fds[i] = fd;
	}
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, run, &fds[i]);
	fprintf(stderr, "bare_evhttp: listening on 127.0.0.1 port %d, %d threads, %zu-byte body\n",
		port, n, body_len);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}
