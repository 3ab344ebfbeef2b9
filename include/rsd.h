/*
 * rsd.h — what every module shares: the error enum, the failure detail that travels with
 * an error to the HTTP layer, the three ways to fail hard, clocks and ids.
 *
 * Errors: 0 is success, negative values are enum rsd_err. Functions return them and put
 * results in out-parameters. Only router.c turns an error into an HTTP status.
 */
#ifndef RSD_H
#define RSD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum rsd_err {
	RSD_OK = 0,
	RSD_EINVAL = -1,	/* the caller's input is malformed or out of range */
	RSD_ENOTFOUND = -2,	/* no such thing */
	RSD_ECONFLICT = -3,	/* the state forbids it now */
	RSD_EPRECONDITION = -4, /* a version the caller named is stale */
	RSD_EFULL = -5,		/* the LMDB map is full */
	RSD_EIO = -6,		/* storage failed */
	RSD_EBUSY = -7,		/* a queue is full; try again */
	RSD_ETIMEDOUT = -8,	/* a wait ran out (write is durable, not yet visible) */
	RSD_ESHUTDOWN = -9,	/* the server is stopping */
	RSD_EINTERNAL = -10,	/* a bug or an impossible state */
	RSD_EMISMATCH = -11,	/* an idempotency key reused with a different request */
	RSD_EPAYMENT = -12,	/* the payment was declined */
	RSD_EAUTH = -13,	/* no credentials, or credentials that do not hold (401) */
	RSD_EFORBIDDEN = -14,	/* authenticated, but not allowed (403) */
	RSD_ETHROTTLED = -15,	/* too many attempts; try again later (429) */
	RSD_EUPSTREAM = -16,	/* a service we depend on (the IdP) failed or is unreachable */
};

/* Returns a short English phrase for err; never NULL. */
const char *rsd_strerror(int err);

#define RSD_FIELD_BYTES_MAX  96
#define RSD_DETAIL_BYTES_MAX 320

/* Why something failed, for the problem document: which field (may be empty) and why. */
struct rsd_fail {
	char field[RSD_FIELD_BYTES_MAX];
	char detail[RSD_DETAIL_BYTES_MAX];
};

/* Fills f (when not NULL) and returns err, so callers can write `return rsd_failf(...)`. */
int rsd_failf(struct rsd_fail *f, int err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Allocation that aborts on out-of-memory: the only way resortd handles OOM. */
void *rsd_malloc(size_t n);
void *rsd_calloc(size_t count, size_t n);
void *rsd_realloc(void *p, size_t n);
char *rsd_strndup(const char *s, size_t n);

/* Prints "resortd: <message>" to stderr and exits with status 1. Start-up only. */
_Noreturn void rsd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An invariant that stays checked in release builds. */
#define RSD_ASSERT(cond) ((cond) ? (void)0 : rsd_assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void rsd_assert_fail(const char *what, const char *file, int line);

/* Wall clock in milliseconds since the epoch, and a monotonic clock in nanoseconds. */
uint64_t rsd_now_ms(void);
uint64_t rsd_mono_ns(void);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
void rsd_time_format(uint64_t ms, char *out, size_t outlen);

/* Writes prefix + 16 pseudo-random lowercase hex digits into out (NUL-terminated): unique,
 * not secret (a per-thread PRNG seeded by the kernel). Secrets use rsd_random. */
void rsd_id_new(const char *prefix, char *out, size_t outlen);

/*
 * Writes prefix + 32 lowercase hex digits into out (NUL-terminated), for ids that key B-trees
 * (holds, bookings): 16 digits of time (ms since the epoch << 16 | a sequence within the ms),
 * so that new ids land at the right edge of an index instead of on a random page, then 16
 * digits (64 bits) from the kernel's random source, so that an id cannot be guessed from
 * others. Ids of one process strictly increase in byte order, from any thread, even if the
 * clock steps back (more than 65,536 ids in a ms borrow from the next ms); ids of different
 * processes sort by creation time as far as their clocks agree. outlen must exceed
 * strlen(prefix) + 32 (asserted). Thread-safe.
 */
void rsd_id_ordered(const char *prefix, char *out, size_t outlen);

/* Fills buf with n random bytes from the kernel; aborts if the kernel cannot. */
void rsd_random(void *buf, size_t n);

/* Big-endian encoding for LMDB keys, so that keys sort as numbers. */
void rsd_put_be64(unsigned char *p, uint64_t v);
uint64_t rsd_get_be64(const unsigned char *p);
void rsd_put_be32(unsigned char *p, uint32_t v);
uint32_t rsd_get_be32(const unsigned char *p);
void rsd_put_be16(unsigned char *p, uint16_t v);
uint16_t rsd_get_be16(const unsigned char *p);

/* Counts UTF-8 code points in s[0..len); returns -1 when s is not valid UTF-8. */
long rsd_utf8_chars(const char *s, size_t len);

#endif
