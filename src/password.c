/*
 * password.c — PBKDF2-HMAC-SHA256 password hashes with their parameters recorded.
 */
#include "password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "limits_rsd.h"
#include "banned.h"

#define SALT_BYTES 16
#define HASH_BYTES 32
#define SCHEME	   "pbkdf2-sha256$i="

static bool derive(const char *password, const unsigned char *salt, size_t salt_len,
		   long iterations, unsigned char out[HASH_BYTES])
{
	return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
				 (int)iterations, EVP_sha256(), HASH_BYTES, out) == 1;
}

int password_hash(const char *password, int iterations, char *out, size_t outlen)
{
	if (iterations < PASSWORD_ITERATIONS_MIN || iterations > PASSWORD_ITERATIONS_MAX)
		return RSD_EINVAL;
	unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
	char salt_b64[32], hash_b64[48];
	rsd_random(salt, sizeof(salt));
	if (!derive(password, salt, sizeof(salt), iterations, hash))
		return RSD_EINTERNAL;
	jose_b64url_encode(salt, sizeof(salt), salt_b64);
	jose_b64url_encode(hash, sizeof(hash), hash_b64);
	OPENSSL_cleanse(hash, sizeof(hash));
	int n = snprintf(out, outlen, SCHEME "%d$%s$%s", iterations, salt_b64, hash_b64);
	return n > 0 && (size_t)n < outlen ? RSD_OK : RSD_EINVAL;
}

bool password_verify(const char *password, const char *encoded)
{
	size_t pre = strlen(SCHEME);
	if (strncmp(encoded, SCHEME, pre) != 0)
		return false;
	const char *digits = encoded + pre;
	if (*digits < '1' || *digits > '9') /* one spelling per hash: no sign, space or 0 */
		return false;
	char *end;
	long iterations = strtol(digits, &end, 10);
	if (*end != '$' || iterations < PASSWORD_ITERATIONS_MIN ||
	    iterations > PASSWORD_ITERATIONS_MAX)
		return false;
	const char *salt_b64 = end + 1, *dollar = strchr(salt_b64, '$');
	if (dollar == NULL || dollar - salt_b64 > 64 || strlen(dollar + 1) > 64)
		return false;
	unsigned char salt[64], want[64], got[HASH_BYTES];
	long salt_len = jose_b64url_decode(salt_b64, (size_t)(dollar - salt_b64), salt);
	long want_len = jose_b64url_decode(dollar + 1, strlen(dollar + 1), want);
	if (salt_len < 8 || want_len != HASH_BYTES)
		return false;
	bool ok = derive(password, salt, (size_t)salt_len, iterations, got) &&
		  CRYPTO_memcmp(got, want, HASH_BYTES) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

int password_acceptable(const char *password, struct rsd_fail *f)
{
	size_t n = strlen(password);
	long chars = rsd_utf8_chars(password, n);
	if (n > PASSWORD_BYTES_MAX)
		return rsd_failf(f, RSD_EINVAL, "password", "a password is at most %d bytes",
				 PASSWORD_BYTES_MAX);
	if (chars < 0)
		return rsd_failf(f, RSD_EINVAL, "password", "a password must be UTF-8");
	if (chars < PASSWORD_CHARS_MIN)
		return rsd_failf(f, RSD_EINVAL, "password", "a password has at least %d characters",
				 PASSWORD_CHARS_MIN);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)password[i];
		/* C0, DEL, and C1 (U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8) */
		bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)password[i + 1] >= 0x80 &&
			  (unsigned char)password[i + 1] <= 0x9f;
		if (c < 0x20 || c == 0x7f || c1)
			return rsd_failf(f, RSD_EINVAL, "password",
					 "a password holds no control characters");
	}
	return RSD_OK;
}
