/*
 * fuzz_http_parse.c — libFuzzer target for http_parse.c. Each input is parsed as a request
 * head twice, whole and as a slow client sends it (growing prefixes, the resume point
 * kept), and the two must agree; a head that parses keeps every offset inside its bytes,
 * with NUL-terminated names and values. What follows the head is read as a chunked body,
 * looked at and then decoded: both must agree, and the decoded bytes fit where they were.
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

static void check_chunked(const char *in, size_t len)
{
	char *a = malloc(len + 1), *b = malloc(len + 1);
	memcpy(a, in, len);
	memcpy(b, in, len);
	size_t used_a = 0, size_a = 0, used_b = 0, size_b = 0;
	int st_a = 0, st_b = 0;
	const char *why;
	int ra = http_parse_chunked(a, len, 512, false, &used_a, &size_a, &st_a, &why);
	if (memcmp(a, in, len) != 0)
		abort(); /* looking must not change anything */
	int rb = http_parse_chunked(b, len, 512, true, &used_b, &size_b, &st_b, &why);
	if (ra != rb ||
	    (ra == HTTP_PARSE_DONE && (used_a != used_b || size_a != size_b || size_a > used_a ||
				       used_a > len || size_a > 512)))
		abort();
	if (ra == HTTP_PARSE_ERROR && st_a != st_b)
		abort();
	free(a);
	free(b);
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
		check_chunked((const char *)data + whole.len, size - whole.len);
	} else {
		check_chunked((const char *)data, size);
	}
	free(one);
	free(two);
	return 0;
}
