/*
 * http_parse.h — HTTP/1.1 request heads and chunked bodies, parsed in place (RFC 9112).
 *
 * No I/O and no allocation: http.c reads bytes into a connection's buffer and calls these
 * until a request is whole. A head is parsed once, when its blank line has arrived; the
 * header names and values it finds are NUL-terminated inside the buffer and given as
 * offsets, so the buffer may be moved (grown) while the body arrives.
 *
 * Strict where leniency is what request smuggling is made of: one Content-Length, no
 * Transfer-Encoding next to it, "chunked" the only coding, no space before a colon, no
 * obsolete line folding, no control bytes in a header value. Bare LF line ends are taken.
 */
#ifndef RSD_HTTP_PARSE_H
#define RSD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADERS_MAX 100 /* header lines of one request; more is a 431 */

enum http_parse_result {
	HTTP_PARSE_ERROR = -1, /* status and why say what is wrong */
	HTTP_PARSE_MORE = 0,   /* not whole yet: read more and call again */
	HTTP_PARSE_DONE = 1,
};

struct http_header {
	uint32_t name, value; /* offsets of NUL-terminated strings in the buffer */
	uint32_t name_len;    /* so that a lookup compares lengths before bytes */
};

struct http_head {
	unsigned method; /* router.h's METHOD_* bit; METHOD_OTHER for any other token */
	uint32_t target; /* offset of the NUL-terminated request target */
	size_t target_len;
	int minor; /* HTTP/1.<minor> */
	int nheaders;
	size_t len; /* bytes of the head: leading blank lines, request line, headers, blank line */
	bool chunked;
	bool has_length;
	uint64_t content_length;
	bool keep_alive; /* by the version and the Connection header */
	int hosts;	 /* Host header lines (HTTP/1.1 needs exactly one: http.c checks) */
	bool expect_continue;
	/* on HTTP_PARSE_ERROR */
	int status;
	const char *why;
	/* last, so that a new parse clears only what comes before it */
	struct http_header headers[HTTP_HEADERS_MAX];
};

/*
 * Parses the head at buf[0..len). *scanned is where the search for the blank line resumes
 * (0 for a new request; kept between calls). On DONE, h is filled and buf is changed
 * in place; on MORE nothing is changed. A head longer than max_len, or a request line longer
 * than target_max plus its method and version, is an ERROR (431, 414) as soon as it is seen.
 */
int http_parse_head(char *buf, size_t len, size_t max_len, size_t target_max, size_t *scanned,
		    struct http_head *h);

/* The value of hex digit c, or -1 when it is none. */
int http_hex_digit(char c);

/* The value of header name (case-insensitive) in h, whose offsets are into base; NULL if none. */
const char *http_head_get(const struct http_head *h, const char *base, const char *name);

/* Where the look at a chunked body got to; zeroed for a new body. */
struct http_chunks {
	size_t pos;	/* where the next chunk's size line starts */
	uint64_t total; /* decoded bytes of the chunks before pos */
};

/*
 * Looks at a chunked body at buf[0..len) whose decoded size may not exceed limit, going on
 * from where st says the last look stopped (each byte is looked at once). On DONE, *used is
 * how many bytes the body takes (trailers and the last CRLF included) and st->total its
 * decoded size. ERROR: 400 for bad framing (chunked framing takes CRLF line ends only), 413
 * past limit, known as soon as a chunk's size line says so.
 */
int http_parse_chunked(const char *buf, size_t len, uint64_t limit, struct http_chunks *st,
		       size_t *used, int *status, const char **why);

/* Decodes, in place, a body http_parse_chunked found whole in buf[0..used); returns its
 * size (its data is then buf[0..size)). */
size_t http_decode_chunked(char *buf, size_t used);

#endif
