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

#endif
