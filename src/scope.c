/*
 * scope.c — the resort a principal acts for and the resort an entity belongs to (see
 * scope.h). The owner chain is at most review or rate plan -> product -> resort, read from
 * LMDB's entities records, so a check costs two or three point reads.
 */
#include "scope.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

/* The longest owner chain: a review or rate plan, its product, the product's resort. */
#define CHAIN_STEPS_MAX 3

bool scope_acts_for_all(const struct principal *who)
{
	return who->role == ROLE_ADMIN || (who->role >= ROLE_STAFF && who->resort[0] == '\0');
}

int scope_acts_for(const struct principal *who, const char *resort, struct rsd_fail *f)
{
	if (scope_acts_for_all(who) ||
	    (who->role >= ROLE_STAFF && strcmp(who->resort, resort) == 0))
		return RSD_OK;
	if (who->role < ROLE_STAFF)
		return rsd_failf(f, RSD_EFORBIDDEN, "",
				 "this belongs to resort %.48s; you act for no resort", resort);
	return rsd_failf(f, RSD_EFORBIDDEN, "", "this belongs to resort %.48s; you act for %.48s",
			 resort, who->resort);
}

int scope_resort_of(MDB_txn *txn, struct store *s, const char *id, enum entity_kind kind, char *out)
{
	RSD_ASSERT(kind == ENTITY_RESORT || kind == ENTITY_PRODUCT || kind == ENTITY_RATE_PLAN ||
		   kind == ENTITY_REVIEW);
	char cur[ENTITY_ID_BYTES_MAX + 1];
	if (id[0] == '\0' || strlen(id) > ENTITY_ID_BYTES_MAX)
		return RSD_ENOTFOUND;
	snprintf(cur, sizeof(cur), "%s", id);
	for (int step = 0; step < CHAIN_STEPS_MAX; step++) {
		struct entity_rec rec;
		int err = store_entity_get(txn, s, cur, &rec);
		if (err == RSD_OK && rec.kind != kind)
			err = RSD_ENOTFOUND;
		/* Past the first step a missing owner is a broken record, not an unknown id:
		 * the writer stores an owner only after finding it live. */
		if (err)
			return err == RSD_ENOTFOUND && step > 0 ? RSD_EIO : err;
		if (kind == ENTITY_RESORT) {
			snprintf(out, ENTITY_ID_BYTES_MAX + 1, "%s", cur);
			return RSD_OK;
		}
		if (rec.owner[0] == '\0')
			return RSD_EIO;
		kind = kind == ENTITY_PRODUCT ? ENTITY_RESORT : ENTITY_PRODUCT;
		snprintf(cur, sizeof(cur), "%s", rec.owner);
	}
	return RSD_EIO;
}

int scope_check(struct store_reader *r, const struct principal *who, const char *id,
		enum entity_kind kind, const char *what, enum scope_access access,
		struct rsd_fail *f)
{
	if (scope_acts_for_all(who))
		return RSD_OK;
	MDB_txn *txn = store_reader_begin(r);
	char resort[ENTITY_ID_BYTES_MAX + 1];
	int err = txn ? scope_resort_of(txn, r->store, id, kind, resort) : RSD_EIO;
	store_reader_end(r);
	if (err == RSD_OK && (err = scope_acts_for(who, resort, f)) == RSD_OK)
		return RSD_OK;
	if (err == RSD_ENOTFOUND || (err == RSD_EFORBIDDEN && access == SCOPE_READ))
		return rsd_failf(f, RSD_ENOTFOUND, "", "no %s with id '%.64s'", what, id);
	if (err == RSD_EIO)
		return rsd_failf(f, err, "", "reading the owner of %s '%.64s' failed", what, id);
	return err;
}
