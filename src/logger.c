/*
 * logger.c — JSON-lines logging to stderr. The level is a relaxed atomic so any thread
 * may log; each line is built in a stack buffer and written whole, so lines never mix.
 */
#include "logger.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rsd.h"
#include "banned.h"

#define LOG_LINE_BYTES_MAX 2048

static _Atomic int min_level = LOGGER_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void logger_set_level(enum logger_level level)
{
	atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

int logger_parse_level(const char *s, enum logger_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum logger_level)i;
			return RSD_OK;
		}
	}
	return RSD_EINVAL;
}

/* Appends s as the inside of a JSON string, escaping what JSON requires. */
static size_t put_escaped(char *buf, size_t pos, size_t cap, const char *s)
{
	for (; *s && pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[pos++] = '\\';
			buf[pos++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
		} else {
			buf[pos++] = (char)c;
		}
	}
	return pos;
}

static size_t put_raw(char *buf, size_t pos, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (pos + n >= cap)
		n = cap - pos - 1;
	memcpy(buf + pos, s, n);
	return pos + n;
}

/* Formats now as RFC 3339 with milliseconds; the date and time to the second are
 * formatted once a second per thread, since gmtime_r per access line showed in profiles. */
static void timestamp(char *out, size_t len)
{
	static _Thread_local uint64_t cached_s = UINT64_MAX;
	static _Thread_local char cached[32];
	uint64_t ms = rsd_now_ms();
	if (ms / 1000 != cached_s) {
		cached_s = ms / 1000;
		rsd_time_format(cached_s * 1000, cached, sizeof(cached));
		cached[19] = '\0'; /* keep "YYYY-MM-DDTHH:MM:SS" */
	}
	snprintf(out, len, "%.19s.%03uZ", cached, (unsigned)(ms % 1000));
}

static size_t line_start(char *buf, size_t cap, enum logger_level level)
{
	char ts[32];
	timestamp(ts, sizeof(ts));
	return (size_t)snprintf(buf, cap, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
				level_names[level]);
}

static size_t line_close(char *buf, size_t pos, size_t cap)
{
	if (pos > cap - 3)
		pos = cap - 3;
	buf[pos++] = '}';
	buf[pos++] = '\n';
	return pos;
}

static void write_all(const char *buf, size_t len)
{
	/* A short write to stderr is not worth retrying: logging must never block serving. */
	ssize_t ignored = write(STDERR_FILENO, buf, len);
	(void)ignored;
}

static void line_finish(char *buf, size_t pos, size_t cap)
{
	write_all(buf, line_close(buf, pos, cap));
}

#define ACCESS_BUFFER_BYTES (32 * 1024)
static _Thread_local char access_buf[ACCESS_BUFFER_BYTES];
static _Thread_local size_t access_len;

void logger_flush(void)
{
	if (access_len > 0)
		write_all(access_buf, access_len);
	access_len = 0;
}

void logger_log(enum logger_level level, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	char msg[LOG_LINE_BYTES_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	char buf[LOG_LINE_BYTES_MAX];
	size_t pos = line_start(buf, sizeof(buf), level);
	pos = put_raw(buf, pos, sizeof(buf), ",\"msg\":\"");
	pos = put_escaped(buf, pos, sizeof(buf), msg);
	pos = put_raw(buf, pos, sizeof(buf), "\"");
	line_finish(buf, pos, sizeof(buf));
}

void logger_access(const char *request_id, const char *method, const char *path, int status,
		   uint64_t duration_us, const char *peer)
{
	if (LOGGER_INFO < atomic_load_explicit(&min_level, memory_order_relaxed))
		return;
	char buf[LOG_LINE_BYTES_MAX];
	size_t pos = line_start(buf, sizeof(buf), LOGGER_INFO);
	pos = put_raw(buf, pos, sizeof(buf), ",\"msg\":\"request\",\"request_id\":\"");
	pos = put_escaped(buf, pos, sizeof(buf), request_id);
	pos = put_raw(buf, pos, sizeof(buf), "\",\"method\":\"");
	pos = put_escaped(buf, pos, sizeof(buf), method);
	pos = put_raw(buf, pos, sizeof(buf), "\",\"path\":\"");
	pos = put_escaped(buf, pos, sizeof(buf), path);
	pos = put_raw(buf, pos, sizeof(buf), "\",\"peer\":\"");
	pos = put_escaped(buf, pos, sizeof(buf), peer);
	char tail[64];
	snprintf(tail, sizeof(tail), "\",\"status\":%d,\"duration_us\":%llu", status,
		 (unsigned long long)duration_us);
	pos = put_raw(buf, pos, sizeof(buf), tail);
	pos = line_close(buf, pos, sizeof(buf));
	if (access_len + pos > sizeof(access_buf))
		logger_flush();
	memcpy(access_buf + access_len, buf, pos);
	access_len += pos;
}
