/*
 * password.h — local staff passwords, hashed with PBKDF2-HMAC-SHA256.
 *
 * The encoded form records its own parameters, "pbkdf2-sha256$i=ITERATIONS$SALT$HASH"
 * (salt and hash base64url), so the configured cost can rise without invalidating old
 * hashes: each is checked with the iterations it was made with.
 */
#ifndef RSD_PASSWORD_H
#define RSD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "rsd.h"

#define PASSWORD_ITERATIONS_MIN 1000
#define PASSWORD_ITERATIONS_MAX 10000000

/* Hashes password with a fresh random salt into out (PASSWORD_HASH_BYTES_MAX + 1).
 * Errors: RSD_EINVAL for iterations out of range, RSD_EINTERNAL when OpenSSL fails. */
int password_hash(const char *password, int iterations, char *out, size_t outlen);

/* True when password matches encoded (constant-time comparison); false for a malformed
 * encoding too. Costs what the encoding's iterations cost: call it off the event loops. */
bool password_verify(const char *password, const char *encoded);

/* Checks a new password: PASSWORD_CHARS_MIN..PASSWORD_BYTES_MAX, valid UTF-8, no control
 * characters. Errors: RSD_EINVAL with f naming why. */
int password_acceptable(const char *password, struct rsd_fail *f);

#endif
