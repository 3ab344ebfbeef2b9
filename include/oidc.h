/*
 * oidc.h — resortd as an OpenID Connect relying party of the group IdP: discovery, the
 * IdP's keys (JWKS), the authorization-code flow with PKCE S256, id_token validation, and
 * the mapping of IdP claims to a local principal.
 *
 * Calls to the IdP block (HTTPS over OpenSSL, one connection per call, HTTP/1.0 so no
 * chunked bodies), so they run on a few threads of their own (oidc_run); a request waits
 * parked meanwhile. Discovery is cached for OIDC_DISCOVERY_TTL_S; the JWKS is refetched
 * when an id_token names an unknown kid, at most once per OIDC_JWKS_REFETCH_S (a login
 * that needs it sooner waits on its IdP thread; id_tokens come from the IdP's token
 * endpoint over TLS, never from the browser, so only the IdP can name new kids).
 * The browser's login state (state, nonce, PKCE verifier, return_to) travels in a cookie
 * MAC'd with a key derived from the auth secret, so any worker (or a restarted server)
 * can finish the login, and the callback checks it belongs to this browser.
 */
#ifndef RSD_OIDC_H
#define RSD_OIDC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "rsd.h"
#include "session.h"

#define OIDC_DISCOVERY_TTL_S 3600
#define OIDC_JWKS_REFETCH_S  2 /* an unknown kid refetches at most this often */
#define OIDC_CALL_TIMEOUT_MS 5000
#define OIDC_THREADS	     4
#define OIDC_JOBS_MAX	     256
#define OIDC_BODY_BYTES_MAX  (256 * 1024)
#define OIDC_COOKIE	     "rsd_oidc"
#define OIDC_STATE_BYTES     43
#define OIDC_ERROR_BYTES     RSD_DETAIL_BYTES_MAX
#define OIDC_ASSERTION_TTL_S 60 /* a private_key_jwt client assertion's lifetime */

struct oidc;

/* Starts the IdP threads when c names an issuer; *out is NULL (and RSD_OK) when it does
 * not. mac_key: 32 bytes for the login cookie. signer signs the client assertions of
 * private_key_jwt (may be NULL with client_secret_basic). Errors: RSD_EINVAL (bad CA file,
 * missing client credentials) with f. */
int oidc_open(struct oidc **out, const struct config *c, const unsigned char mac_key[32],
	      struct auth *signer, struct rsd_fail *f);
/* Stops the threads (running calls finish first). NULL is fine. */
void oidc_free(struct oidc *o);

/* Runs fn(o, arg) on an IdP thread, then done(arg) there. Errors: RSD_EBUSY (queue full). */
int oidc_run(struct oidc *o, void (*fn)(struct oidc *o, void *arg), void (*done)(void *arg),
	     void *arg);

/* --- on IdP threads --- */

/* The login URL to send the browser to, for state, nonce and PKCE challenge (fetches
 * the discovery document when it is not cached). *url: caller frees.
 * Errors: RSD_EUPSTREAM with f (the IdP cannot be reached or answers nonsense). */
int oidc_auth_url(struct oidc *o, const char *state, const char *nonce, const char *challenge,
		  char **url, struct rsd_fail *f);

/* Exchanges code (with the PKCE verifier) for tokens and validates the id_token against
 * nonce: signature by a key of the IdP's JWKS with its own algorithm, iss, aud, azp, exp,
 * iat and nonce. *claims: the id_token's claims (caller frees). *refresh_token: the IdP's
 * refresh token (malloc'd) or NULL when it gave none (idp_recheck.h uses it).
 * Errors: RSD_EAUTH (the IdP refused the code, or the id_token does not hold),
 * RSD_EUPSTREAM (unreachable or nonsense). */
int oidc_exchange(struct oidc *o, const char *code, const char *verifier, const char *nonce,
		  cJSON **claims, char **refresh_token, struct rsd_fail *f);

/* Asks the IdP whether a sign-in still holds: the refresh_token grant. *claims: a new
 * id_token's verified claims, or NULL when the IdP sent none or one that does not hold
 * (then f says why, and the answer is RSD_OK all the same: the grant holds). *next: the IdP's next
 * refresh token (malloc'd), NULL when it keeps the old. Errors: RSD_EAUTH (invalid_grant: the IdP
 * ended the grant), RSD_EINVAL (the grant holds but its next refresh token is too long to keep),
 * RSD_EUPSTREAM (unreachable, not JSON, another refusal, resortd's credentials refused). */
int oidc_refresh(struct oidc *o, const char *refresh_token, cJSON **claims, char **next,
		 struct rsd_fail *f);

/* --- anywhere --- */

/* How the IdP answered lately: every call to it, and a probe (a fresh fetch of its discovery
 * document) every oidc_probe_s seconds, from start, by an idle IdP thread. */
struct oidc_status {
	int reachable;		      /* the last call or probe: 1 worked, 0 failed, -1 none yet */
	uint64_t failures;	      /* calls and probes that failed since start */
	uint64_t checked_ms;	      /* when the last one ended (0: none yet) */
	char error[OIDC_ERROR_BYTES]; /* why the last one failed ("" when it worked) */
};
void oidc_status_get(struct oidc *o, struct oidc_status *out);

/* Fresh random state, nonce and verifier, and the verifier's S256 challenge. */
void oidc_new_secret(char out[OIDC_STATE_BYTES + 1]);
void oidc_challenge(const char *verifier, char out[OIDC_STATE_BYTES + 1]);

/* The login cookie: encodes {state, nonce, verifier, return_to, expiry}; *out caller frees. */
char *oidc_cookie_encode(const struct oidc *o, const char *state, const char *nonce,
			 const char *verifier, const char *return_to, uint64_t expires_ms);
/* Decodes and checks (MAC, expiry) a login cookie. Errors: RSD_EAUTH with f. */
struct oidc_login {
	char state[OIDC_STATE_BYTES + 1];
	char nonce[OIDC_STATE_BYTES + 1];
	char verifier[OIDC_STATE_BYTES + 1];
	char return_to[1024];
};
int oidc_cookie_decode(const struct oidc *o, const char *cookie, uint64_t now_ms,
		       struct oidc_login *out, struct rsd_fail *f);

/* Whether return_to stays on our own origin: a path ("/x", not "//x" or "/\x") or an
 * absolute URL under public_url. */
bool oidc_return_to_ok(const struct oidc *o, const char *return_to);

/* The principal an id_token's verified claims make: sub "u_" + a hash of (iss, sub), the
 * role from the groups claim through oidc_role_map (guest when no group maps), resort
 * from a "resort" claim, the display name. *profile: the profile event's data.
 * Errors: RSD_EAUTH when the claims lack sub. */
int oidc_principal(const struct oidc *o, const cJSON *claims, struct principal *who,
		   cJSON **profile, struct rsd_fail *f);

/* Parses a role map "group=role,group=role" (roles staff, manager, admin) and returns the
 * highest role any of groups maps to (ROLE_GUEST when none). Errors are ignored entries. */
enum role oidc_map_role(const char *role_map, const cJSON *groups);

#endif
