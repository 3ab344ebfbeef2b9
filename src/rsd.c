/*
 * rsd.c — shared helpers: error strings, failure details, the allocation wrapper, fatal
 * exits, clocks, ids and big-endian key encoding. The only state: per-thread PRNGs for
 * rsd_id_new and one atomic counter for rsd_id_ordered.
 */
#include "rsd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "banned.h"

const char *rsd_strerror(int err)
{
	switch (err) {
	case RSD_OK: return "ok";
	case RSD_EINVAL: return "invalid input";
	case RSD_ENOTFOUND: return "not found";
	case RSD_ECONFLICT: return "conflict";
	case RSD_EPRECONDITION: return "precondition failed";
	case RSD_EFULL: return "storage full";
	case RSD_EIO: return "storage error";
	case RSD_EBUSY: return "busy";
	case RSD_ETIMEDOUT: return "timed out";
	case RSD_ESHUTDOWN: return "shutting down";
	case RSD_EINTERNAL: return "internal error";
	case RSD_EMISMATCH: return "idempotency key reused with a different request";
	case RSD_EPAYMENT: return "payment declined";
	case RSD_EAUTH: return "authentication required";
	case RSD_EFORBIDDEN: return "forbidden";
	case RSD_ETHROTTLED: return "too many attempts";
	case RSD_EUPSTREAM: return "upstream service failed";
	}
	return "unknown error";
}

int rsd_failf(struct rsd_fail *f, int err, const char *field, const char *fmt, ...)
{
	if (f == NULL)
		return err;
	snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
	return err;
}

static _Noreturn void out_of_memory(size_t n)
{
	fprintf(stderr, "resortd: out of memory allocating %zu bytes\n", n);
	abort();
}

void *rsd_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *rsd_calloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (p == NULL)
		out_of_memory(count * n);
	return p;
}

void *rsd_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		out_of_memory(n);
	return q;
}

char *rsd_strndup(const char *s, size_t n)
{
	char *p = rsd_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

_Noreturn void rsd_fatal(const char *fmt, ...)
{
	va_list ap;
	fputs("resortd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

_Noreturn void rsd_assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "resortd: assertion failed: %s at %s:%d\n", what, file, line);
	abort();
}

uint64_t rsd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rsd_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rsd_time_format(uint64_t ms, char *out, size_t outlen)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
}

void rsd_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rsd_fatal("getrandom: %s", strerror(errno));
		}
		p += got;
		n -= (size_t)got;
	}
}

/* xoshiro256** state per thread, seeded from the kernel on first use: ids need
 * uniqueness, not secrecy, and a syscall per request id costs more than the request. */
static _Thread_local uint64_t id_state[4];
static _Thread_local bool id_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t id_next(void)
{
	if (!id_seeded) {
		do
			rsd_random(id_state, sizeof(id_state));
		while ((id_state[0] | id_state[1] | id_state[2] | id_state[3]) == 0);
		id_seeded = true;
	}
	uint64_t *s = id_state;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

void rsd_id_new(const char *prefix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%016llx", prefix, (unsigned long long)id_next());
}

/* The time part of an ordered id: ms since the epoch shifted left by ID_SEQ_BITS, plus a
 * sequence within the ms. The last one handed out, shared by all threads, so that ids of this
 * process strictly increase even when the clock steps back or two threads ask in one ms. */
#define ID_SEQ_BITS 16
static _Atomic uint64_t id_last_tick;

void rsd_id_ordered(const char *prefix, char *out, size_t outlen)
{
	RSD_ASSERT(strlen(prefix) + 32 < outlen);
	uint64_t now = rsd_now_ms() << ID_SEQ_BITS;
	uint64_t last = atomic_load_explicit(&id_last_tick, memory_order_relaxed);
	uint64_t tick;
	do
		tick = now > last ? now : last + 1;
	while (!atomic_compare_exchange_weak_explicit(&id_last_tick, &last, tick,
						      memory_order_relaxed, memory_order_relaxed));
	/* From the kernel, not id_next(): these ids are shown to guests, and a PRNG's output
	 * would let one who has seen a few of them compute the others. */
	uint64_t secret;
	rsd_random(&secret, sizeof(secret));
	snprintf(out, outlen, "%s%016llx%016llx", prefix, (unsigned long long)tick,
		 (unsigned long long)secret);
}

void rsd_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t rsd_get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void rsd_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

uint32_t rsd_get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void rsd_put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

uint16_t rsd_get_be16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

long rsd_utf8_chars(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	long n = 0;
	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		size_t extra;
		uint32_t cp;
		if (c < 0x80) {
			extra = 0;
			cp = c;
		} else if ((c & 0xe0) == 0xc0) {
			extra = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (extra > len - i - 1)
			return -1;
		for (size_t k = 1; k <= extra; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += extra + 1;
		n++;
	}
	return n;
}
