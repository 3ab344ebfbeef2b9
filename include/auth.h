/*
 * auth.h — resortd's own tokens: the signing keys (in LMDB meta), access JWTs (ES256),
 * the per-worker cache of verified tokens, browser cookies and CSRF tokens.
 *
 * An authenticated request costs, once per token and worker, an ES256 verification, and
 * on every request a SHA-256 of the token, a cache probe and the session's LMDB read (so
 * a revocation applies at once). Keys: meta "sk:KID" -> JSON {alg, created_ms,
 * retired_ms, priv, pub}, "skc" -> the current kid, "auth_secret" -> 32 random bytes
 * from which the refresh-token successor and CSRF keys derive.
 */
#ifndef RSD_AUTH_H
#define RSD_AUTH_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "session.h"
#include "store.h"
#include "writer.h"

#define AUTH_AUDIENCE	      "resortd"
#define AUTH_CSRF_BYTES	      43
#define AUTH_COOKIE	      "rsd_session"
#define AUTH_CSRF_COOKIE      "rsd_csrf"
#define AUTH_COOKIE_BYTES_MAX (SESSION_ID_BYTES + 1 + SESSION_TOKEN_BYTES)

struct auth;
struct auth_cache;

/*
 * Opens the auth state over s: loads the signing keys, creating the first key and the
 * secret through w when the store has none. c must outlive the auth state.
 * Errors: RSD_EIO with f filled.
 */
int auth_open(struct auth **out, const struct config *c, struct store *s, struct writer *w,
	      struct rsd_fail *f);
void auth_free(struct auth *a);

/* One per worker thread; not shared. */
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);

/* The session lifetimes from the config. */
void auth_limits(const struct auth *a, struct session_limits *out);
int auth_access_ttl_s(const struct auth *a);
const struct config *auth_config(const struct auth *a);
/* 32 bytes that MAC the OpenID login cookie (derived from the auth secret). */
const unsigned char *auth_login_key(const struct auth *a);

/*
 * Authenticates an access token: verified (signature, alg, iss, aud, exp, iat) once and
 * then cached until its exp. Its session is read through r (begun and ended here) unless
 * nothing at all was committed since this worker last found it live and it has not run out
 * of time since, so a revocation or logout applies to the next request. Fills out.
 * Errors: RSD_EAUTH with f saying why (never echoing the token), RSD_EIO.
 */
int auth_bearer(struct auth *a, struct auth_cache *c, struct store_reader *r, const char *token,
		uint64_t now_ms, struct principal *out, struct rsd_fail *f);

/* The token cache slot token takes (for benchmarks that pick colliding tokens). */
unsigned auth_cache_slot(const char *token);

/* Authenticates the session cookie's value "SID.SECRET". Errors: as auth_bearer. */
int auth_cookie(struct auth *a, struct store_reader *r, const char *value, uint64_t now_ms,
		struct principal *out, struct rsd_fail *f);

/* Signs claims (not consumed) for a verifier that caches /.well-known/jwks.json (the IdP,
 * checking the OpenID client's private_key_jwt assertions): with the newest key made at least
 * KEY_PUBLISH_LEAD_S ago, so that a `keys rotate` does not fail sign-in until the IdP looks
 * again; with the oldest key while none is that old. *out: caller frees.
 * Errors: RSD_EINTERNAL. */
int auth_sign_published(struct auth *a, const cJSON *claims, uint64_t now_ms, char **out);

/* Signs an access token for p, valid from now for access_ttl_s. *out: caller frees.
 * Errors: RSD_EINTERNAL. */
int auth_sign_access(struct auth *a, const struct principal *p, uint64_t now_ms, char **out);

/* The successor of a refresh token: HMAC(secret, token), so that a retry within the
 * grace period gets the same new token without it being stored anywhere in clear. */
void auth_refresh_successor(struct auth *a, const char *token, char out[SESSION_TOKEN_BYTES + 1]);

/* The CSRF token of session sid (HMAC of it), and its check (constant time). */
void auth_csrf_token(struct auth *a, const char *sid, char out[AUTH_CSRF_BYTES + 1]);
bool auth_csrf_ok(struct auth *a, const char *sid, const char *token);

/* The public keys as a JWKS document. Caller frees. */
cJSON *auth_jwks(struct auth *a);

/*
 * `resortd keys rotate`: adds a new signing key and makes it current; the previous one is
 * kept for verification for KEY_RETIRED_KEEP_S (longer than any access token lives) and
 * keys retired longer ago are removed. Works while the server runs: servers look for a
 * new current key every KEY_CHECK_INTERVAL_MS. Writes the new kid into kid (>= 65 bytes).
 * Errors: RSD_EIO, RSD_EFULL, RSD_EINTERNAL.
 */
int auth_keys_rotate(struct writer *w, uint64_t now_ms, char *kid);

#endif
