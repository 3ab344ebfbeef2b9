/*
 * idp_recheck.h — SSO sessions checked again with the IdP while they live.
 *
 * A session made by an IdP sign-in keeps the IdP's refresh token (when the IdP gives one and
 * oidc_recheck_s is not 0). Every oidc_recheck_s a thread of its own asks the IdP about each
 * live one (the refresh_token grant), keeps the IdP's next refresh token whatever else the
 * answer says, and acts on it:
 *   - new id_token claims: the session's role, resort and name follow them at once (a staff
 *     member taken out of a group loses the role within one period, not at the next login);
 *     an id_token that does not hold changes nothing (logged);
 *   - invalid_grant (the IdP ended the grant: the user was disabled or signed out there, or
 *     the IdP's own session ran out): a staff session is revoked; a guest's is no longer
 *     checked and stays;
 *   - the IdP cannot be reached or answers anything else: nothing changes, and the session is
 *     asked about again at the next round (sessions keep working while the IdP is down).
 * Rounds take up to IDP_RECHECK_BATCH sessions, round-robin, one IdP call at a time.
 */
#ifndef RSD_IDP_RECHECK_H
#define RSD_IDP_RECHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "oidc.h"
#include "store.h"
#include "writer.h"

/* Starts the thread when o is not NULL and c->oidc_recheck_s > 0 (else does nothing). */
void idp_recheck_start(struct store *s, struct writer *w, struct oidc *o, struct auth *a,
		       const struct config *c);
/* Stops it (a call to the IdP in flight ends first: its own timeout). Safe when not started. */
void idp_recheck_stop(void);

/* What the checks came to since start (/metrics). running: the thread runs. */
struct idp_recheck_stats {
	bool running;
	uint64_t confirmed; /* the IdP answered for the grant; claims, if any, applied */
	uint64_t revoked;   /* staff sessions ended: the grant ended or cannot be followed */
	uint64_t dropped;   /* guest sessions no longer checked, for the same reasons */
	uint64_t failed;    /* not asked (unreachable, other answers) or not stored */
	uint64_t
		bad_id_tokens; /* refreshed id_tokens that did not hold (roles left as they were) */
};
void idp_recheck_stats_get(struct idp_recheck_stats *out);

#endif
