/* Unit tests for http_parse.c: heads whole and in pieces, the refusals, chunked bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http_parse.h"
#include "router.h"

#define TARGET_MAX 4096
#define HEAD_MAX   8192

static struct http_head H;

/* Parses text (copied: parsing writes into it) in one go. */
static int parse(char *buf, const char *text)
{
	size_t scanned = 0;
	strcpy(buf, text);
	return http_parse_head(buf, strlen(buf), HEAD_MAX, TARGET_MAX, &scanned, &H);
}

static void test_a_simple_head(void **state)
{
	(void)state;
	char buf[256];
	assert_int_equal(parse(buf, "GET /v1/resorts?limit=2 HTTP/1.1\r\nHost: x\r\n"
				    "X-Empty:\r\nAccept:  a/b  \r\n\r\nrest"),
			 HTTP_PARSE_DONE);
	assert_int_equal(H.method, METHOD_GET);
	assert_string_equal(buf + H.target, "/v1/resorts?limit=2");
	assert_int_equal(H.minor, 1);
	assert_int_equal(H.nheaders, 3);
	assert_string_equal(http_head_get(&H, buf, "host"), "x");
	assert_string_equal(http_head_get(&H, buf, "X-EMPTY"), "");
	assert_string_equal(http_head_get(&H, buf, "Accept"), "a/b");
	assert_null(http_head_get(&H, buf, "Cookie"));
	assert_true(H.keep_alive);
	assert_false(H.has_length || H.chunked);
	assert_memory_equal(buf + H.len, "rest", 4); /* len ends at the blank line */
}

static void test_bare_lf_and_leading_blank_lines(void **state)
{
	(void)state;
	char buf[128];
	assert_int_equal(parse(buf, "\r\n\nPOST /a HTTP/1.0\nContent-Length: 3\n\nabc"),
			 HTTP_PARSE_DONE);
	assert_int_equal(H.method, METHOD_POST);
	assert_int_equal(H.minor, 0);
	assert_false(H.keep_alive); /* HTTP/1.0 without keep-alive */
	assert_true(H.has_length);
	assert_int_equal(H.content_length, 3);
	assert_string_equal(buf + H.len, "abc");
}

static void test_connection_tokens(void **state)
{
	(void)state;
	char buf[128];
	assert_int_equal(parse(buf, "GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n"),
			 HTTP_PARSE_DONE);
	assert_false(H.keep_alive);
	assert_int_equal(parse(buf, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
			 HTTP_PARSE_DONE);
	assert_true(H.keep_alive);
	assert_int_equal(parse(buf, "GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n"),
			 HTTP_PARSE_DONE);
	assert_false(H.keep_alive);
}

/* Every prefix of a head needs more and leaves the buffer as it was. */
static void test_every_prefix_needs_more(void **state)
{
	(void)state;
	const char *text = "PUT /x HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
	size_t n = strlen(text);
	for (size_t cut = 0; cut < n; cut++) {
		char buf[64];
		size_t scanned = 0;
		memcpy(buf, text, n);
		for (size_t k = 0; k <= cut; k++) /* byte by byte, as a slow client sends */
			assert_int_equal(
				http_parse_head(buf, k, HEAD_MAX, TARGET_MAX, &scanned, &H),
				HTTP_PARSE_MORE);
		assert_memory_equal(buf, text, n);
		assert_int_equal(http_parse_head(buf, n, HEAD_MAX, TARGET_MAX, &scanned, &H),
				 HTTP_PARSE_DONE);
		assert_int_equal(H.nheaders, 2);
		assert_int_equal(H.len, n);
	}
}

static void expect_error(const char *text, int status, const char *word)
{
	char buf[512];
	assert_int_equal(parse(buf, text), HTTP_PARSE_ERROR);
	assert_int_equal(H.status, status);
	assert_non_null(strstr(H.why, word));
}

static void test_refusals(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n", 400,
		     "Content-Length");
	expect_error("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "Content-Length");
	expect_error("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length");
	expect_error("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		     400, "both");
	expect_error("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
		     "chunked\r\n\r\n",
		     400, "Transfer-Encoding");
	expect_error("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "chunked");
	expect_error("GET / HTTP/1.1\r\nA : b\r\n\r\n", 400, "malformed");
	expect_error("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "folding");
	expect_error("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, "control");
	expect_error("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, "control");
	expect_error("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1");
	expect_error("GET / HTTX/1.1\r\n\r\n", 400, "request line");
	expect_error("GET  / HTTP/1.1\r\n\r\n", 400, "request line");
	expect_error("GET /\r\n\r\n", 400, "request line");
	expect_error("G(T / HTTP/1.1\r\n\r\n", 400, "request line");
	expect_error("GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417, "100-continue");
}

/* Control bytes are found wherever they sit in a long value (it is scanned eight bytes at a
 * time); tabs and bytes from 0x80 up are taken. */
static void test_control_bytes_anywhere_in_a_long_value(void **state)
{
	(void)state;
	static const unsigned char bad[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f};
	for (size_t pos = 0; pos < 40; pos++) {
		for (size_t k = 0; k < sizeof(bad); k++) {
			char buf[128] = "GET / HTTP/1.1\r\nA: ", *v = buf + 19;
			memset(v, 'x', 40);
			v[pos] = (char)bad[k];
			memcpy(v + 40, "\r\n\r\n", 4);
			size_t scanned = 0;
			assert_int_equal(
				http_parse_head(buf, 19 + 44, HEAD_MAX, TARGET_MAX, &scanned, &H),
				HTTP_PARSE_ERROR);
			assert_int_equal(H.status, 400);
		}
		char ok[128] = "GET / HTTP/1.1\r\nA: ", *v = ok + 19;
		memset(v, '\x80', 40);
		v[pos] = pos % 2 ? '\t' : '~';
		v[0] = 'x'; /* not trimmed away */
		v[39] = 'y';
		memcpy(v + 40, "\r\n\r\n", 4);
		size_t scanned = 0;
		assert_int_equal(http_parse_head(ok, 19 + 44, HEAD_MAX, TARGET_MAX, &scanned, &H),
				 HTTP_PARSE_DONE);
		assert_int_equal(strlen(http_head_get(&H, ok, "a")), 40);
	}
}

static void test_nul_is_refused(void **state)
{
	(void)state;
	char buf[64] = "GET /a\0b HTTP/1.1\r\n\r\n";
	size_t scanned = 0;
	assert_int_equal(http_parse_head(buf, 21, HEAD_MAX, TARGET_MAX, &scanned, &H),
			 HTTP_PARSE_ERROR);
	assert_int_equal(H.status, 400);
}

static void test_methods(void **state)
{
	(void)state;
	char buf[64];
	const char *names[] = {"GET",	 "HEAD",    "POST", "PUT",     "PATCH",
			       "DELETE", "OPTIONS", "BREW", "CONNECT", "get"};
	unsigned bits[] = {METHOD_GET,	  METHOD_HEAD,	  METHOD_POST,	METHOD_PUT,   METHOD_PATCH,
			   METHOD_DELETE, METHOD_OPTIONS, METHOD_OTHER, METHOD_OTHER, METHOD_OTHER};
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		char text[64];
		snprintf(text, sizeof(text), "%s / HTTP/1.1\r\n\r\n", names[i]);
		assert_int_equal(parse(buf, text), HTTP_PARSE_DONE);
		assert_int_equal(H.method, bits[i]);
	}
}

static void test_sizes(void **state)
{
	(void)state;
	static char buf[3 * HEAD_MAX];
	size_t scanned = 0;
	/* headers past the limit, with or without the blank line yet */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(http_parse_head(buf, HEAD_MAX + 1, HEAD_MAX, TARGET_MAX, &scanned, &H),
			 HTTP_PARSE_ERROR);
	assert_int_equal(H.status, 431);
	assert_int_equal(http_parse_head(buf, HEAD_MAX, HEAD_MAX, TARGET_MAX, &scanned, &H),
			 HTTP_PARSE_MORE);
	/* a target past the limit: 414 whether or not the head fits */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	memcpy(buf + 5 + TARGET_MAX, " HTTP/1.1\r\n\r\n", 13);
	scanned = 0;
	assert_int_equal(
		http_parse_head(buf, 5 + TARGET_MAX + 13, HEAD_MAX, TARGET_MAX, &scanned, &H),
		HTTP_PARSE_ERROR);
	assert_int_equal(H.status, 414);
	memcpy(buf, "GET /", 5);
	scanned = 0;
	assert_int_equal(http_parse_head(buf, HEAD_MAX + 100, HEAD_MAX, TARGET_MAX, &scanned, &H),
			 HTTP_PARSE_ERROR);
	assert_int_equal(H.status, 414);
	/* too many header lines, each short */
	size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
		n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
	n += (size_t)sprintf(buf + n, "\r\n");
	scanned = 0;
	assert_int_equal(http_parse_head(buf, n, HEAD_MAX, TARGET_MAX, &scanned, &H),
			 HTTP_PARSE_ERROR);
	assert_int_equal(H.status, 431);
}

/* Looks at text as a chunked body in one go; *total is its decoded size on DONE. */
static int chunked(const char *text, uint64_t limit, size_t *used, uint64_t *total, int *status)
{
	struct http_chunks st = {0};
	const char *why = NULL;
	int rc = http_parse_chunked(text, strlen(text), limit, &st, used, status, &why);
	*total = st.total;
	return rc;
}

static void test_chunked_bodies(void **state)
{
	(void)state;
	char buf[256];
	size_t used = 0;
	uint64_t total = 0;
	int status = 0;
	const char *body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	assert_int_equal(chunked(body, 100, &used, &total, &status), HTTP_PARSE_DONE);
	assert_int_equal(total, 11);
	assert_int_equal(used, strlen(body) - 4);
	strcpy(buf, body);
	assert_int_equal(http_decode_chunked(buf, used), 11);
	assert_memory_equal(buf, "hello world", 11);
	/* in pieces, going on from where the last look stopped */
	struct http_chunks st = {0};
	const char *why;
	for (size_t cut = 0; cut < used; cut++)
		assert_int_equal(http_parse_chunked(body, cut, 100, &st, &used, &status, &why),
				 HTTP_PARSE_MORE);
	assert_int_equal(http_parse_chunked(body, strlen(body), 100, &st, &used, &status, &why),
			 HTTP_PARSE_DONE);
	assert_int_equal(st.total, 11);
	assert_int_equal(used, strlen(body) - 4);
}

static void expect_chunked_error(const char *text, uint64_t limit, int want)
{
	size_t used;
	uint64_t total;
	int status = 0;
	assert_int_equal(chunked(text, limit, &used, &total, &status), HTTP_PARSE_ERROR);
	assert_int_equal(status, want);
}

static void test_chunked_refusals(void **state)
{
	(void)state;
	expect_chunked_error("5\r\nhello\r\n6\r\n", 10, 413); /* known from the size line */
	expect_chunked_error("ffffffffffffffff\r\n", 10, 413);
	expect_chunked_error("5\r\nhelloX\r\n", 10, 400);
	expect_chunked_error("x\r\n", 10, 400);
	expect_chunked_error("a\nxxxxxxxxxx\r\n0\r\n\r\n", 100, 400);	   /* bare LF */
	expect_chunked_error("5\rX\nhello\r\n", 100, 400);		   /* bare CR */
	expect_chunked_error("0;\nGET /admin HTTP/1.1\r\n\r\n", 100, 400); /* LF in an extension */
	expect_chunked_error("5;a\x01\r\nhello\r\n", 100, 400);
	expect_chunked_error("0\r\nno colon\r\n\r\n", 100, 400);
	expect_chunked_error("0\r\nX: a\nb\r\n\r\n", 100, 400);
	expect_chunked_error("5x\r\nhello\r\n", 100, 400);
}

static void test_transfer_encoding_needs_http11(void **state)
{
	(void)state;
	expect_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_simple_head),
		cmocka_unit_test(test_bare_lf_and_leading_blank_lines),
		cmocka_unit_test(test_connection_tokens),
		cmocka_unit_test(test_every_prefix_needs_more),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_control_bytes_anywhere_in_a_long_value),
		cmocka_unit_test(test_nul_is_refused),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_chunked_bodies),
		cmocka_unit_test(test_chunked_refusals),
		cmocka_unit_test(test_transfer_encoding_needs_http11),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
