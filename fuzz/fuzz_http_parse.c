/*
 * fuzz_http_parse.c — libFuzzer target for http_parse.c. Each input is parsed as a request
 * head twice, whole and as a slow client sends it (growing prefixes, the resume point
 * kept), and the two must agree; a head that parses keeps every offset inside its bytes,
 * with NUL-terminated names and values. What follows the head is read as a chunked body,
 * whole and in pieces: both must agree, and a whole body decodes to the size found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD_MAX   1024 /* small, so inputs reach the limits */
#define TARGET_MAX 256

static struct http_head whole, pieces;

static void check_head(const char *buf, size_t len, const struct http_head *h)
{
	if (h->len == 0 || h->len > len || h->len > HEAD_MAX || h->target >= h->len ||
	    strlen(buf + h->target) != h->target_len || h->target_len > TARGET_MAX)
		abort();
	for (int i = 0; i < h->nheaders; i++) {
		const struct http_header *x = &h->headers[i];
		if (x->name >= h->len || x->value >= h->len || buf[x->name] == '\0' ||
		    memchr(buf + x->name, '\0', h->len - x->name) == NULL ||
		    memchr(buf + x->value, '\0', h->len - x->value) == NULL)
			abort();
	}
	if (h->has_length && h->chunked)
		abort();
}

/* Looks at in[0..len) as a chunked body whole and in pieces (the state kept); decodes it. */
static void check_chunked(const char *in, size_t len, size_t step)
{
	size_t used_a = 0, used_b = 0;
	int st_a = 0, st_b = 0;
	const char *why;
	struct http_chunks a = {0}, b = {0};
	int ra = http_parse_chunked(in, len, 512, &a, &used_a, &st_a, &why);
	int rb = HTTP_PARSE_MORE;
	for (size_t k = 0; rb == HTTP_PARSE_MORE; k += step) {
		size_t n = k < len ? k : len;
		rb = http_parse_chunked(in, n, 512, &b, &used_b, &st_b, &why);
		if (n == len)
			break;
	}
	if (ra != rb || (ra == HTTP_PARSE_ERROR && st_a != st_b))
		abort();
	if (ra != HTTP_PARSE_DONE)
		return;
	if (used_a != used_b || a.total != b.total || a.total > used_a || used_a > len ||
	    a.total > 512)
		abort();
	char *copy = malloc(len);
	memcpy(copy, in, len);
	if (http_decode_chunked(copy, used_a) != a.total)
		abort();
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4 * HEAD_MAX)
		return 0;
	char *one = malloc(size + 1), *two = malloc(size + 1);
	memcpy(one, data, size);
	memcpy(two, data, size);
	size_t scanned = 0;
	int r1 = http_parse_head(one, size, HEAD_MAX, TARGET_MAX, &scanned, &whole);
	int r2 = HTTP_PARSE_MORE;
	scanned = 0;
	size_t step = size ? 1 + data[0] % 7 : 1;
	for (size_t k = 0; r2 == HTTP_PARSE_MORE; k += step) {
		size_t n = k < size ? k : size;
		r2 = http_parse_head(two, n, HEAD_MAX, TARGET_MAX, &scanned, &pieces);
		if (r2 == HTTP_PARSE_MORE && memcmp(two, data, size) != 0)
			abort(); /* needing more changes nothing */
		if (n == size)
			break;
	}
	/* A prefix may already be refused (too long) where the whole is too; otherwise the two
	 * ways agree. */
	if (r1 != r2 || (r1 == HTTP_PARSE_ERROR && whole.status != pieces.status))
		abort();
	if (r1 == HTTP_PARSE_DONE) {
		if (whole.len != pieces.len || whole.nheaders != pieces.nheaders ||
		    whole.method != pieces.method || memcmp(one, two, size) != 0)
			abort();
		check_head(one, size, &whole);
		check_chunked((const char *)data + whole.len, size - whole.len, step);
	} else {
		check_chunked((const char *)data, size, step);
	}
	free(one);
	free(two);
	return 0;
}
