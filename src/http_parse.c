/*
 * http_parse.c — HTTP/1.1 request heads and chunked bodies (see http_parse.h).
 *
 * Invariant: nothing is written into the buffer until the whole head is known to be there,
 * so a head that needs more bytes can be looked at again from the start.
 */
#include "http_parse.h"

#include <string.h>
#include <strings.h>

#include "router.h"

#define CHUNK_LINE_BYTES_MAX	1024 /* a chunk's size line, extensions included */
#define CHUNK_TRAILER_BYTES_MAX 8192

static int fail(struct http_head *h, int status, const char *why)
{
	h->status = status;
	h->why = why;
	return HTTP_PARSE_ERROR;
}

/* RFC 9110 5.6.2: the characters of a token (a method, a header name). */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned method_of(const char *m, size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} known[] = {{"GET", METHOD_GET},	 {"HEAD", METHOD_HEAD},	  {"POST", METHOD_POST},
		     {"PUT", METHOD_PUT},	 {"PATCH", METHOD_PATCH}, {"DELETE", METHOD_DELETE},
		     {"OPTIONS", METHOD_OPTIONS}};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == n && memcmp(known[i].name, m, n) == 0)
			return known[i].bit;
	return METHOD_OTHER;
}

/* Skips the blank lines a client may send before a request (RFC 9112 2.2). */
static size_t skip_blank_lines(const char *buf, size_t len)
{
	size_t p = 0;
	for (;;) {
		if (p < len && buf[p] == '\n')
			p++;
		else if (p + 1 < len && buf[p] == '\r' && buf[p + 1] == '\n')
			p += 2;
		else
			return p;
	}
}

/* Finds the end of the head (just past its blank line) from *scanned on; 0 if not there yet. */
static size_t head_end(const char *buf, size_t len, size_t start, size_t *scanned)
{
	size_t i = *scanned > start ? *scanned : start;
	const char *p;
	while (i < len && (p = memchr(buf + i, '\n', len - i)) != NULL) {
		size_t nl = (size_t)(p - buf);
		if (nl + 1 < len && buf[nl + 1] == '\n')
			return nl + 2;
		if (nl + 2 < len && buf[nl + 1] == '\r' && buf[nl + 2] == '\n')
			return nl + 3;
		if (nl + 1 >= len || (nl + 2 >= len && buf[nl + 1] == '\r')) {
			*scanned = nl; /* the blank line may be arriving: look here again */
			return 0;
		}
		i = nl + 1;
	}
	*scanned = len;
	return 0;
}

/* The end of the line starting at p (its '\n'), and its length without a trailing '\r'. */
static size_t line_at(const char *buf, size_t p, size_t head_end, size_t *n)
{
	const char *nl = memchr(buf + p, '\n', head_end - p); /* found: the head ends in one */
	size_t end = (size_t)(nl - buf);
	*n = end - p - (end > p && buf[end - 1] == '\r');
	return end;
}

static int parse_request_line(char *buf, size_t p, size_t n, size_t target_max, struct http_head *h)
{
	size_t m = 0;
	while (m < n && is_tchar((unsigned char)buf[p + m]))
		m++;
	if (m == 0 || m >= n || buf[p + m] != ' ')
		return fail(h, 400, "the request line is malformed");
	h->method = method_of(buf + p, m);
	size_t t = p + m + 1, te = t;
	while (te < p + n && buf[te] != ' ')
		te++;
	if (te == t || te == p + n)
		return fail(h, 400, "the request line is malformed");
	h->target = (uint32_t)t;
	h->target_len = te - t;
	if (h->target_len > target_max)
		return fail(h, 414, "the request target is too long");
	const char *v = buf + te + 1;
	size_t vn = p + n - (te + 1);
	if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return fail(h, 400, "the request line is malformed");
	if (v[5] != '1')
		return fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	h->minor = v[7] - '0';
	buf[te] = '\0';
	return HTTP_PARSE_DONE;
}

static bool token_in_list(const char *list, const char *token)
{
	size_t n = strlen(token);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		p = e;
	}
	return false;
}

/* A byte below 0x20 but tab, or 0x7f, in s[0..n)? Eight bytes at a time (a bearer token is
 * hundreds of bytes, on every signed-in request): a word with no byte below 0x20 and none equal
 * to 0x7f is skipped whole; a word with a tab is looked at byte by byte. */
static bool has_control_byte(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		uint64_t y = x ^ (0x7f * ones);		       /* a 0x7f byte becomes 0 */
		uint64_t low = (x - 0x20 * ones) & ~x & highs; /* some byte < 0x20 */
		uint64_t del = (y - ones) & ~y & highs;	       /* some byte == 0x7f */
		if (low | del)
			break;
	}
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return true;
	}
	return false;
}

/* The name of header i is name (of length len, known to the caller), case-insensitively. */
static bool name_is(const char *buf, const struct http_header *hd, const char *name, size_t len)
{
	return hd->name_len == len && strncasecmp(buf + hd->name, name, len) == 0;
}

/* Reads one header line at buf[p..p+n) into h->headers; the name and value end in NUL. */
static int parse_header_line(char *buf, size_t p, size_t n, struct http_head *h)
{
	if (buf[p] == ' ' || buf[p] == '\t')
		return fail(h, 400, "obsolete line folding in a header is not accepted");
	size_t c = p;
	while (c < p + n && is_tchar((unsigned char)buf[c]))
		c++;
	if (c == p || c == p + n || buf[c] != ':')
		return fail(h, 400, "a header line is malformed");
	if (h->nheaders == HTTP_HEADERS_MAX)
		return fail(h, 431, "the request has too many header lines");
	size_t v = c + 1, e = p + n;
	while (v < e && (buf[v] == ' ' || buf[v] == '\t'))
		v++;
	while (e > v && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;
	if (has_control_byte(buf + v, e - v))
		return fail(h, 400, "a header value contains a control byte");
	buf[c] = '\0';
	buf[e] = '\0'; /* a space, a tab, '\r' or '\n' of this line */
	h->headers[h->nheaders].name = (uint32_t)p;
	h->headers[h->nheaders].value = (uint32_t)v;
	h->headers[h->nheaders].name_len = (uint32_t)(c - p);
	h->nheaders++;
	return HTTP_PARSE_DONE;
}

static int parse_length(const char *v, uint64_t *out)
{
	size_t n = strlen(v);
	if (n == 0 || n > 18 || strspn(v, "0123456789") != n)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	*out = x;
	return 0;
}

/* The headers that decide framing and the connection's fate. */
static int read_semantics(const char *buf, struct http_head *h)
{
	int cl = 0, te = 0;
	bool close = false, keep = false;
	for (int i = 0; i < h->nheaders; i++) {
		const struct http_header *hd = &h->headers[i];
		const char *value = buf + hd->value;
		if (name_is(buf, hd, "Content-Length", 14)) {
			if (++cl > 1)
				return fail(h, 400, "more than one Content-Length header");
			if (parse_length(value, &h->content_length) != 0)
				return fail(h, 400, "the Content-Length header is not a number");
			h->has_length = true;
		} else if (name_is(buf, hd, "Transfer-Encoding", 17)) {
			if (++te > 1)
				return fail(h, 400, "more than one Transfer-Encoding header");
			if (strcasecmp(value, "chunked") != 0)
				return fail(h, 501,
					    "only the chunked transfer coding is implemented");
			h->chunked = true;
		} else if (name_is(buf, hd, "Connection", 10)) {
			close = close || token_in_list(value, "close");
			keep = keep || token_in_list(value, "keep-alive");
		} else if (name_is(buf, hd, "Host", 4)) {
			h->hosts++;
		} else if (name_is(buf, hd, "Expect", 6)) {
			if (strcasecmp(value, "100-continue") != 0)
				return fail(h, 417, "the only expectation met is 100-continue");
			h->expect_continue = true;
		}
	}
	if (cl && te)
		return fail(h, 400, "both Transfer-Encoding and Content-Length");
	if (te && h->minor == 0) /* RFC 9112 6.1: an HTTP/1.0 peer cannot mean it */
		return fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
	h->keep_alive = !close && (h->minor >= 1 || keep);
	return HTTP_PARSE_DONE;
}

/* Is the first line longer than any request line with a target of target_max bytes? */
static bool request_line_too_long(const char *buf, size_t start, size_t len, size_t target_max)
{
	const char *nl = memchr(buf + start, '\n', len - start);
	size_t line = nl ? (size_t)(nl - (buf + start)) : len - start;
	return line > target_max + 32; /* a method, two spaces, "HTTP/1.1", "\r" */
}

int http_parse_head(char *buf, size_t len, size_t max_len, size_t target_max, size_t *scanned,
		    struct http_head *h)
{
	memset(h, 0, offsetof(struct http_head, headers));
	size_t start = skip_blank_lines(buf, len);
	size_t end = head_end(buf, len, start, scanned);
	if (end == 0 || end > max_len) {
		if (len <= max_len && end == 0)
			return HTTP_PARSE_MORE;
		/* Judged on the first max_len + 1 bytes only, so that the answer does not
		 * depend on how much more had arrived. */
		size_t seen = len < max_len + 1 ? len : max_len + 1;
		if (start < seen && request_line_too_long(buf, start, seen, target_max))
			return fail(h, 414, "the request target is too long");
		return fail(h, 431, "the request's headers exceed 8 KiB");
	}
	if (memchr(buf + start, '\0', end - start))
		return fail(h, 400, "the request's head contains a NUL byte");
	size_t n, p = start;
	size_t nl = line_at(buf, p, end, &n);
	int rc = parse_request_line(buf, p, n, target_max, h);
	if (rc != HTTP_PARSE_DONE)
		return rc;
	for (p = nl + 1;; p = nl + 1) {
		nl = line_at(buf, p, end, &n);
		if (n == 0)
			break;
		if ((rc = parse_header_line(buf, p, n, h)) != HTTP_PARSE_DONE)
			return rc;
	}
	h->len = end;
	return read_semantics(buf, h);
}

const char *http_head_get(const struct http_head *h, const char *base, const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < h->nheaders; i++)
		if (name_is(base, &h->headers[i], name, len))
			return base + h->headers[i].value;
	return NULL;
}

int http_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int chunk_fail(int *status, const char **why, int s, const char *w)
{
	*status = s;
	*why = w;
	return HTTP_PARSE_ERROR;
}

/*
 * The end of the CRLF-terminated line at buf[p..): just past its LF; 0 when it has not all
 * arrived. Chunked framing takes no bare LF and no CR but the one before LF, so that no
 * proxy in front can see other line ends than this server does. *bad is set for those,
 * for a byte that is not visible ASCII, space, tab or (when text) obs-text, and for a line
 * of max bytes or more.
 */
static size_t crlf_line(const char *buf, size_t len, size_t p, size_t max, bool text, bool *bad)
{
	*bad = false;
	for (size_t i = p; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (i - p >= max || ch == '\n') {
			*bad = true;
			return 0;
		}
		if (ch == '\r') {
			if (i + 1 == len)
				return 0;
			*bad = buf[i + 1] != '\n';
			return *bad ? 0 : i + 2;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (ch >= 0x80 && !text)) {
			*bad = true;
			return 0;
		}
	}
	return 0;
}

/* The trailer section after the last chunk: field lines up to an empty one (unused). */
static int chunk_trailers(const char *buf, size_t len, size_t p, size_t *used, int *status,
			  const char **why)
{
	size_t start = p;
	for (;;) {
		bool bad;
		size_t next = crlf_line(buf, len, p, CHUNK_TRAILER_BYTES_MAX, true, &bad);
		if (bad || (next && next - start > CHUNK_TRAILER_BYTES_MAX))
			return chunk_fail(status, why, 400,
					  "a trailer of the chunked body is malformed");
		if (next == 0)
			return HTTP_PARSE_MORE;
		if (next - p == 2) {
			*used = next;
			return HTTP_PARSE_DONE;
		}
		size_t c = p;
		while (is_tchar((unsigned char)buf[c]))
			c++;
		if (c == p || buf[c] != ':')
			return chunk_fail(status, why, 400,
					  "a trailer of the chunked body is malformed");
		p = next;
	}
}

/* A chunk's size line at buf[p..): its size and where its data starts (0: not arrived). */
static int chunk_size_line(const char *buf, size_t len, size_t p, uint64_t *n, size_t *data,
			   int *status, const char **why)
{
	size_t d = 0;
	*n = 0;
	for (; p + d < len && http_hex_digit(buf[p + d]) >= 0; d++) {
		if (d == 15)
			return chunk_fail(status, why, 413, "a chunk is larger than the limit");
		*n = *n * 16 + (uint64_t)http_hex_digit(buf[p + d]);
	}
	*data = 0;
	if (p + d == len)
		return HTTP_PARSE_MORE;
	char after = buf[p + d];
	if (d == 0)
		return chunk_fail(status, why, 400, "a chunk size is not hexadecimal");
	if (after != ';' && after != ' ' && after != '\t' && after != '\r')
		return chunk_fail(status, why, 400, "a chunk size line is malformed");
	bool bad;
	*data = crlf_line(buf, len, p, CHUNK_LINE_BYTES_MAX, false, &bad);
	if (bad)
		return chunk_fail(status, why, 400, "a chunk size line is malformed");
	return *data ? HTTP_PARSE_DONE : HTTP_PARSE_MORE;
}

int http_parse_chunked(const char *buf, size_t len, uint64_t limit, struct http_chunks *st,
		       size_t *used, int *status, const char **why)
{
	for (;;) {
		uint64_t n;
		size_t data;
		int rc = chunk_size_line(buf, len, st->pos, &n, &data, status, why);
		if (rc != HTTP_PARSE_DONE)
			return rc;
		if (n > limit - st->total)
			return chunk_fail(status, why, 413,
					  "the request body exceeds the size limit");
		if (n == 0)
			return chunk_trailers(buf, len, data, used, status, why);
		if (len - data < n + 2)
			return HTTP_PARSE_MORE;
		if (buf[data + n] != '\r' || buf[data + n + 1] != '\n')
			return chunk_fail(status, why, 400, "a chunk is not followed by CRLF");
		st->total += n;
		st->pos = data + (size_t)n + 2; /* the next look starts here */
	}
}

size_t http_decode_chunked(char *buf, size_t used)
{
	size_t p = 0, out = 0;
	for (;;) {
		size_t n = 0;
		for (; http_hex_digit(buf[p]) >= 0; p++)
			n = n * 16 + (size_t)http_hex_digit(buf[p]);
		const char *lf = memchr(buf + p, '\n', used - p);
		p = (size_t)(lf - buf) + 1;
		if (n == 0)
			return out;
		memmove(buf + out, buf + p, n);
		out += n;
		p += n + 2;
	}
}
