/*
 * scope.h — which resorts a signed-in principal may act for, and which resort a catalog
 * entity belongs to: the one rule behind "staff see and change only their own resort's
 * data". No HTTP here; handlers call scope_check and reply its error.
 *
 * The rule: an admin acts for every resort; staff and managers act for their resort
 * (principal.resort), or for every resort when they are tied to none (group-wide staff);
 * guests act for no resort (they reach their own holds and bookings by ownership, see
 * hold_access). The route's role is checked before (router.c); this only narrows it.
 *
 * Invariant that lets handlers check before they submit: what an entity belongs to never
 * changes. A product's resort_id, a rate plan's product and a review's product are fixed
 * when it is created (catalog.c answers 409 to a change), so a check against a worker's
 * LMDB snapshot still holds when the writer applies the command.
 */
#ifndef RSD_SCOPE_H
#define RSD_SCOPE_H

#include <lmdb.h>
#include <stdbool.h>

#include "limits_rsd.h"
#include "rsd.h"
#include "session.h"
#include "store.h"

/* What the principal wants to do with an entity; it decides how a refusal looks. */
enum scope_access {
	SCOPE_READ,  /* refused as RSD_ENOTFOUND: others do not learn that it exists */
	SCOPE_WRITE, /* refused as RSD_EFORBIDDEN */
};

/* True when who acts for every resort: an admin, or staff tied to no resort. */
bool scope_acts_for_all(const struct principal *who);

/*
 * Whether who may act for resort (an id, not NULL). Returns RSD_OK, or RSD_EFORBIDDEN with f (may
 * be NULL) saying whose it is and whom who acts for.
 */
int scope_acts_for(const struct principal *who, const char *resort, struct rsd_fail *f);

/*
 * The resort that entity id belongs to, following owners: a resort is its own, a product
 * its resort_id's, a rate plan's or review's that of its product. kind is what id must
 * be (ENTITY_RESORT, ENTITY_PRODUCT, ENTITY_RATE_PLAN or ENTITY_REVIEW); a deleted entity
 * still belongs to its resort. Fills out (ENTITY_ID_BYTES_MAX + 1 bytes).
 * Errors: RSD_ENOTFOUND when id is no entity of kind, RSD_EIO.
 */
int scope_resort_of(MDB_txn *txn, struct store *s, const char *id, enum entity_kind kind,
		    char *out);

/*
 * Checks that who may read or write entity id of kind (as scope_resort_of), reading a
 * snapshot through r (begun and ended here; r must not be in use). Principals who act
 * for every resort pass without a read. Returns RSD_OK; RSD_EFORBIDDEN (SCOPE_WRITE) or
 * RSD_ENOTFOUND (SCOPE_READ) when the entity belongs to another resort; RSD_ENOTFOUND
 * when there is no such entity; RSD_EIO. f says why, naming the entity as what
 * ("product", "rate plan", ...).
 */
int scope_check(struct store_reader *r, const struct principal *who, const char *id,
		enum entity_kind kind, const char *what, enum scope_access access,
		struct rsd_fail *f);

#endif
