/*
 * logger.h — JSON lines on stderr, one object a line, for journald.
 * Every line has ts, level and msg; access lines add the request's fields.
 * Thread-safe: a line is formatted in a local buffer and written with one write(2).
 */
#ifndef RSD_LOGGER_H
#define RSD_LOGGER_H

#include <stdint.h>

enum logger_level { LOGGER_DEBUG = 0, LOGGER_INFO = 1, LOGGER_WARN = 2, LOGGER_ERROR = 3 };

/* Lines below level are dropped. Default: LOGGER_INFO. */
void logger_set_level(enum logger_level level);

/* Parses "debug", "info", "warn" or "error"; returns RSD_OK or RSD_EINVAL. */
int logger_parse_level(const char *s, enum logger_level *out);

/* Logs one line whose msg is the formatted text. */
void logger_log(enum logger_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs one access line for a finished request. Access lines are buffered per thread and
 * written when the buffer fills or at logger_flush: a write(2) per request would cost more
 * than many requests. A thread that logs access lines must call logger_flush periodically
 * (the HTTP workers do every ACCESS_LOG_FLUSH_MS) and before it exits. */
void logger_access(const char *request_id, const char *method, const char *path, int status,
		   uint64_t duration_us, const char *peer);

/* Writes this thread's buffered access lines. */
void logger_flush(void);

#endif
