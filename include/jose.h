/*
 * jose.h — the one way resortd signs and verifies JSON Web Tokens, and turns JWKs into keys.
 *
 * libjwt 1.10 verifies a signature and nothing else: it decodes `alg: none` when given no
 * key, accepts an HS256 token keyed with an RSA public key PEM, and checks no claim. So
 * every verification goes through jose_verify, which always passes the key registered for
 * the token's `kid`, requires the algorithm registered with that key (before and after
 * libjwt decodes), and checks exp, nbf, iat, iss, aud, azp and nonce itself.
 */
#ifndef RSD_JOSE_H
#define RSD_JOSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rsd.h"

#define JOSE_KID_BYTES_MAX 64
#define JOSE_KEYS_MAX	   16
#define JOSE_BYTES_MAX	   8192 /* a longer token is refused before any decoding */

/* Algorithms a key may be registered for; nothing else is ever accepted. */
enum jose_alg { JOSE_RS256 = 1, JOSE_RS384, JOSE_RS512, JOSE_ES256, JOSE_ES384 };

struct evp_pkey_st; /* OpenSSL's EVP_PKEY */

/* One key: public PEM for verification, private PEM (may be NULL) for signing, and both
 * parsed once (OpenSSL lets threads use a parsed key at the same time). */
struct jose_key {
	char kid[JOSE_KID_BYTES_MAX + 1];
	enum jose_alg alg;
	char *pub_pem;
	char *priv_pem;
	struct evp_pkey_st *pub, *priv;
};

/* A set of keys by kid; caller-owned (jose_ring_release frees the PEMs). */
struct jose_ring {
	struct jose_key keys[JOSE_KEYS_MAX];
	int n;
};

/* Adds a copy of the key. Errors: RSD_EINVAL when the kid is empty, too long or taken, or
 * a PEM does not parse into a key of alg's kind (RSA of 2048 bits or more; EC on alg's
 * curve), RSD_EFULL when the ring holds JOSE_KEYS_MAX keys. */
int jose_ring_add(struct jose_ring *r, const char *kid, enum jose_alg alg, const char *pub_pem,
		  const char *priv_pem);
/* The key named kid, or NULL. The pointer lives as long as the ring. */
const struct jose_key *jose_ring_find(const struct jose_ring *r, const char *kid);
void jose_ring_release(struct jose_ring *r);

/* "ES256" etc.; NULL for an unknown value. And back: 0 for an unknown name. */
const char *jose_alg_name(enum jose_alg alg);
enum jose_alg jose_alg_parse(const char *name);

/* What a verified token must say. NULL members are not checked. */
struct jose_expect {
	const char *iss;   /* must equal `iss` */
	const char *aud;   /* must equal `aud`, or be in it when it is an array */
	const char *azp;   /* when aud is an array of several, or azp is present: must equal */
	const char *nonce; /* must equal `nonce` */
	uint64_t now_s;	   /* the clock the times are checked against */
	int leeway_s;	   /* allowed clock skew for exp, nbf and iat */
};

/*
 * Verifies token against the key of ring named by its header's kid. On success *claims is
 * the payload (caller frees with cJSON_Delete). Errors, with f's detail saying which check
 * failed (never echoing the token): RSD_EINVAL for a malformed token, a wrong algorithm, a
 * bad signature or a failed claim; RSD_ENOTFOUND when the kid is not in ring (an IdP may
 * have rotated its keys: refetch the JWKS and try again).
 */
int jose_verify(const char *token, const struct jose_ring *ring, const struct jose_expect *e,
		cJSON **claims, struct rsd_fail *f);

/* Signs claims (not consumed) with key (which must have a private PEM) and a `kid` header.
 * *out is the compact token (caller frees). Errors: RSD_EINVAL, RSD_EINTERNAL. */
int jose_sign(const struct jose_key *key, const cJSON *claims, char **out);

/* Makes a new P-256 key pair as PEMs (caller frees both). Errors: RSD_EINTERNAL. */
int jose_es256_generate(char **priv_pem, char **pub_pem);

/* The public JWK ({kty, crv, x, y, kid, alg, use}) of an EC or RSA key. Caller frees.
 * Errors: RSD_EINVAL for a PEM that is not a supported public key. */
int jose_key_to_jwk(const struct jose_key *key, cJSON **out);

/*
 * Adds to ring every signing key of a JWKS document ({"keys":[...]}) that resortd can use:
 * RSA (n, e) and EC P-256/P-384 (x, y), `use` absent or "sig". A key's algorithm is its
 * `alg` when present (and allowed for its type), else RS256 or ES256/ES384 by type. Keys
 * without a kid, of other types, or malformed are skipped and counted in *skipped.
 * Errors: RSD_EINVAL when the document is not a JWKS.
 */
int jose_ring_add_jwks(struct jose_ring *r, const cJSON *jwks, int *skipped);

/* base64url without padding, as JWTs and PKCE use it. out must hold
 * jose_b64url_len(n) + 1 bytes; returns the length written. */
size_t jose_b64url_len(size_t n);
size_t jose_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Decodes base64url (no padding, no other characters) into out (>= 3 * len / 4 + 3 bytes).
 * Returns the decoded length or -1 when in is not base64url. */
long jose_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
