/*
 * search_client.c — sequential request latency over one keep-alive connection.
 *
 * Reads a query file of lines "LABEL<TAB>PATH" (PATH already percent-encoded); lines with
 * the same label form a set, and a set's requests rotate over its paths. For each of ROUNDS
 * rounds, every set in file order sends REPS/ROUNDS requests one after the other (one in
 * flight), so rounds interleave the sets over time and the spread between rounds shows the
 * machine's noise. A set stops early in a round after SET_SECONDS/ROUNDS seconds (at least
 * 3 requests), which keeps a slow server from stretching the benchmark; n says how many
 * requests were measured. Latency is client-side: request written to last body byte read
 * (CLOCK_MONOTONIC), so it includes the loopback round trip (a /healthz set shows that floor).
 *
 * Usage: search_client PORT QUERY_FILE REPS ROUNDS SET_SECONDS
 * Output, one line per set (times in ms):
 *   SET label=L n=N p50=.. p90=.. p99=.. max=.. mean=.. round_p50=a,b round_p99=a,b
 *       bytes=B total=T errors=E
 * total: the "total" member of the set's last response (facet searches), or -1.
 * Exit status 1 when a request fails at the socket level; non-200 replies count as errors.
 * With BENCH_AUTH=VALUE in the environment (e.g. "Bearer eyJ..."), every request carries
 * "Authorization: VALUE"; without it (bench/search.sh) requests are anonymous, as before.
 *
 * Build (bench/search.sh does this): cc -O2 -std=c11 -D_GNU_SOURCE bench/search_client.c -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SETS_MAX      64
#define PATHS_MAX     32
#define ROUNDS_MAX    16
#define LINE_BYTES    4096
#define RESP_BYTES_MAX (64u * 1024 * 1024)
#define AUTH_BYTES_MAX 2048

struct set {
	char label[64];
	char *paths[PATHS_MAX];
	int npaths;
	double *ms;	/* every sample */
	int n;
	int round_start[ROUNDS_MAX + 1];
	long long bytes;
	long long total;
	int errors;
};

static struct set sets[SETS_MAX];
static int nsets;
static int port;
static int fd = -1;
static char *buf;
static size_t cap;
static char auth_line[AUTH_BYTES_MAX + 32]; /* "Authorization: ...\r\n" or "" */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int connect_server(void)
{
	if (fd >= 0)
		close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
		return -1;
	}
	return 0;
}

/* Reads more bytes into buf at *len; -1 on EOF or error. */
static int fill(size_t *len)
{
	if (*len + 65536 > cap) {
		if (cap >= RESP_BYTES_MAX)
			return -1;
		cap = cap ? cap * 2 : 1 << 20;
		buf = realloc(buf, cap + 1);
		if (buf == NULL)
			return -1;
	}
	ssize_t r;
	do
		r = read(fd, buf + *len, cap - *len);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	*len += (size_t)r;
	buf[*len] = '\0';
	return 0;
}

/* The value of header name in the head [buf, end), or NULL. */
static const char *header(const char *end, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			while (*v == ' ')
				v++;
			return v;
		}
	return NULL;
}

/*
 * One GET over the connection. Returns the HTTP status (body at *body, *body_len bytes,
 * chunked bodies decoded in place) or -1 when the connection failed.
 */
static int get(const char *path, const char **body, size_t *body_len, int *close_after)
{
	char req[LINE_BYTES + AUTH_BYTES_MAX + 160];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", path,
			 auth_line);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, req + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (int)w;
	}
	size_t len = 0;
	char *eoh;
	while ((eoh = len ? strstr(buf, "\r\n\r\n") : NULL) == NULL)
		if (fill(&len))
			return -1;
	int status = atoi(buf + 9);
	size_t head = (size_t)(eoh - buf) + 4;
	const char *conn = header(eoh, "Connection");
	*close_after = conn && strncasecmp(conn, "close", 5) == 0;
	const char *cl = header(eoh, "Content-Length");
	const char *te = header(eoh, "Transfer-Encoding");
	if (cl) {
		size_t want = head + strtoul(cl, NULL, 10);
		while (len < want)
			if (fill(&len))
				return -1;
		*body = buf + head;
		*body_len = want - head;
		return status;
	}
	if (te && strncasecmp(te, "chunked", 7) == 0) {
		size_t in = head, out = head;
		for (;;) {
			char *crlf;
			while ((crlf = strstr(buf + in, "\r\n")) == NULL)
				if (fill(&len))
					return -1;
			size_t sz = strtoul(buf + in, NULL, 16);
			size_t data = (size_t)(crlf - buf) + 2;
			while (len < data + sz + 2)
				if (fill(&len))
					return -1;
			memmove(buf + out, buf + data, sz);
			out += sz;
			in = data + sz + 2;
			if (sz == 0)
				break;
		}
		buf[out] = '\0';
		*body = buf + head;
		*body_len = out - head;
		return status;
	}
	/* No length: the body runs to the end of the connection. */
	while (fill(&len) == 0)
		;
	*close_after = 1;
	*body = buf + head;
	*body_len = len - head;
	return status;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, int n, double p)
{
	if (n == 0)
		return NAN;
	int k = (int)ceil(p * n) - 1;
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static double *sorted_copy(const double *v, int n)
{
	double *c = malloc(sizeof(*c) * (size_t)(n ? n : 1));
	memcpy(c, v, sizeof(*c) * (size_t)n);
	qsort(c, (size_t)n, sizeof(*c), cmp_double);
	return c;
}

static void load(const char *file)
{
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		perror(file);
		exit(2);
	}
	char line[LINE_BYTES];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *tab = strchr(line, '\t');
		if (line[0] == '#' || tab == NULL)
			continue;
		*tab = '\0';
		int i;
		for (i = 0; i < nsets && strcmp(sets[i].label, line) != 0; i++)
			;
		if (i == nsets) {
			if (nsets == SETS_MAX)
				continue;
			snprintf(sets[nsets++].label, sizeof(sets[i].label), "%.63s", line);
			sets[i].total = -1;
		}
		if (sets[i].npaths < PATHS_MAX)
			sets[i].paths[sets[i].npaths++] = strdup(tab + 1);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: search_client PORT QUERY_FILE REPS ROUNDS SET_SECONDS\n");
		return 2;
	}
	const char *auth = getenv("BENCH_AUTH");
	if (auth && auth[0]) {
		if (strlen(auth) > AUTH_BYTES_MAX || strpbrk(auth, "\r\n")) {
			fprintf(stderr, "search_client: BENCH_AUTH: one line of at most %d bytes\n",
				AUTH_BYTES_MAX);
			return 2;
		}
		snprintf(auth_line, sizeof(auth_line), "Authorization: %s\r\n", auth);
	}
	port = atoi(argv[1]);
	load(argv[2]);
	int reps = atoi(argv[3]), rounds = atoi(argv[4]);
	double set_s = atof(argv[5]);
	if (rounds < 1 || rounds > ROUNDS_MAX || reps < rounds || nsets == 0) {
		fprintf(stderr, "search_client: bad arguments or empty query file\n");
		return 2;
	}
	int per_round = reps / rounds;
	double budget_ms = set_s * 1000.0 / rounds;
	for (int i = 0; i < nsets; i++)
		sets[i].ms = malloc(sizeof(double) * (size_t)reps);
	if (connect_server())
		return perror("connect"), 1;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < nsets; i++) {
			struct set *s = &sets[i];
			s->round_start[r] = s->n;
			double t_set = now_ms();
			for (int k = 0; k < per_round; k++) {
				if (k >= 3 && now_ms() - t_set > budget_ms)
					break;
				const char *body;
				size_t blen;
				int close_after = 0;
				double t0 = now_ms();
				int status = get(s->paths[k % s->npaths], &body, &blen, &close_after);
				double t1 = now_ms();
				if (status < 0) {
					/* The server closed an idle keep-alive: reconnect once, retry. */
					if (connect_server() ||
					    (t0 = now_ms(),
					     status = get(s->paths[k % s->npaths], &body, &blen,
							  &close_after)) < 0) {
						fprintf(stderr, "search_client: %s: connection failed\n",
							s->paths[k % s->npaths]);
						return 1;
					}
					t1 = now_ms();
				}
				s->ms[s->n++] = t1 - t0;
				s->bytes += (long long)blen;
				if (status != 200) {
					if (s->errors++ == 0)
						fprintf(stderr, "search_client: %s: HTTP %d: %.300s\n",
							s->paths[k % s->npaths], status, body);
				} else {
					const char *t = strstr(body, "\"total\":");
					if (t)
						s->total = atoll(t + 8);
				}
				if (close_after && connect_server())
					return perror("connect"), 1;
			}
		}
	}
	for (int i = 0; i < nsets; i++) {
		struct set *s = &sets[i];
		s->round_start[rounds] = s->n;
		double *all = sorted_copy(s->ms, s->n), sum = 0;
		for (int k = 0; k < s->n; k++)
			sum += s->ms[k];
		printf("SET label=%s n=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f mean=%.3f", s->label, s->n,
		       pct(all, s->n, 0.50), pct(all, s->n, 0.90), pct(all, s->n, 0.99),
		       pct(all, s->n, 1.0), s->n ? sum / s->n : NAN);
		for (int which = 0; which < 2; which++) {
			printf(which ? " round_p99=" : " round_p50=");
			for (int r = 0; r < rounds; r++) {
				int a = s->round_start[r], b = s->round_start[r + 1];
				double *rs = sorted_copy(s->ms + a, b - a);
				printf("%s%.3f", r ? "," : "", pct(rs, b - a, which ? 0.99 : 0.50));
				free(rs);
			}
		}
		printf(" bytes=%lld total=%lld errors=%d\n", s->n ? s->bytes / s->n : 0, s->total,
		       s->errors);
		free(all);
	}
	return 0;
}
