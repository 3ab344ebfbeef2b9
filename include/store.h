/*
 * store.h — the LMDB environment `state/` and its named databases.
 *
 * The environment is always durable: it is opened with MDB_NOTLS only, never with
 * MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC or MDB_WRITEMAP (store_flags_durable checks).
 * Write transactions belong to writer.c; store_open's start-up transaction that creates
 * the databases and the node id is the one exception, before any thread exists.
 */
#ifndef RSD_STORE_H
#define RSD_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "rsd.h"

struct store {
	MDB_env *env;
	MDB_dbi log;	     /* (origin, seq) -> event; eventlog.c */
	MDB_dbi entities;    /* entity id -> kind, version, deleted: existence and ETags */
	MDB_dbi cursors;     /* peer or origin -> last seq applied or shipped */
	MDB_dbi meta;	     /* name -> value: node id, schema version */
	MDB_dbi inventory;   /* (product, day, slot) -> counter; inventory.c */
	MDB_dbi holds;	     /* hold id -> hold document; hold.c */
	MDB_dbi bookings;    /* booking id -> booking document (the saga's state); booking.c */
	MDB_dbi idempotency; /* (principal, key) -> fingerprint and first outcome; idempotency.c */
	MDB_dbi expiry;	     /* (expiry ms, kind, id) -> nothing: what the sweeper walks */
	MDB_dbi sessions; /* 's' sid -> session; 'u' sub NUL sid -> nothing; 'i' sid -> IdP part */
	MDB_dbi refresh;  /* SHA-256 of a refresh token -> its family and state; session.c */
	MDB_dbi users;	  /* local staff name -> role, resort, password hash; session.c */
	char node_id[NODE_ID_BYTES_MAX + 1];
	uint64_t map_bytes;
};

/*
 * Opens (creating when missing) dir/state with a map of map_bytes, clears readers left by
 * a crashed process and opens every database. node_id: the configured id or "" to use the
 * stored one (or make and store one on first open); a configured id that differs from the
 * stored one is refused, since events already carry the stored one.
 * Errors: RSD_EIO (with f) when the directory or environment cannot be opened,
 * RSD_EINVAL when node ids disagree.
 */
int store_open(struct store *s, const char *dir, uint64_t map_bytes, const char *node_id,
	       struct rsd_fail *f);

/* Closes the environment. Safe on a store that failed to open or was closed. */
void store_close(struct store *s);

/* True when the environment's flags promise durability (none of the unsafe flags). */
bool store_flags_durable(struct store *s);

/* Maps an LMDB return code to enum rsd_err. */
int store_err(int mdb_rc);

/* Bytes of the map in use (last page number times page size). */
uint64_t store_map_used_bytes(struct store *s);

/*
 * The entities record: what kind of thing an id is, its version and whether it is deleted,
 * and for things that belong to another (a product to its resort, a rate plan to its
 * product) that owner's id and a sub-kind (a product's type), so a command can check
 * references without the read model.
 */
struct entity_rec {
	uint8_t kind;
	uint8_t sub; /* kind-specific: enum product_type for products; 0 otherwise */
	bool deleted;
	uint64_t version;
	char owner[ENTITY_ID_BYTES_MAX + 1]; /* "" when none */
};
enum entity_kind {
	ENTITY_RESORT = 1,
	ENTITY_PRODUCT = 2,
	ENTITY_RATE_PLAN = 3,
	ENTITY_REVIEW = 4,
	ENTITY_REVIEW_KEY = 5, /* "rk:<product>:<author>" -> the review id in owner */
};
/*
 * A worker's read-only transaction, kept reset between uses (MDB_NOTLS lets any thread
 * renew it). begin renews (or first creates) it: a snapshot as of the latest commit;
 * end resets it, releasing the snapshot so LMDB can reuse pages. Never held across an
 * event-loop turn, so writers are never kept from reclaiming space.
 */
struct store_reader {
	struct store *store;
	MDB_txn *txn; /* NULL until first use */
	int active;
};
/* Returns the snapshot's transaction, or NULL when LMDB refuses (logged). */
MDB_txn *store_reader_begin(struct store_reader *r);
void store_reader_end(struct store_reader *r);
/* Aborts the transaction for good (worker exit). */
void store_reader_close(struct store_reader *r);

/* The id of the latest committed write transaction, by any process: read from LMDB's meta
 * pages without a transaction or a lock. Equal ids mean nothing was committed between. */
uint64_t store_last_txnid(struct store *s);

/*
 * The expiry index: (ms, kind, id) keys the sweeper walks in time order. Writer thread.
 * Errors: RSD_EFULL, RSD_EIO (a missing entry is not an error for del).
 */
enum expiry_kind {
	EXPIRY_HOLD = 1,
	EXPIRY_IDEMPOTENCY = 2,
	EXPIRY_SESSION = 3,
	EXPIRY_REFRESH = 4
};
#define EXPIRY_ID_BYTES_MAX 256
int store_expiry_add(MDB_txn *txn, struct store *s, uint64_t ms, uint8_t kind, const void *id,
		     size_t len);
int store_expiry_del(MDB_txn *txn, struct store *s, uint64_t ms, uint8_t kind, const void *id,
		     size_t len);

/* Reads id's record. Errors: RSD_ENOTFOUND, RSD_EIO. */
int store_entity_get(MDB_txn *txn, struct store *s, const char *id, struct entity_rec *out);

/* Writes id's record (writer thread only). Errors: RSD_EFULL, RSD_EIO. */
int store_entity_put(MDB_txn *txn, struct store *s, const char *id, const struct entity_rec *rec);

#endif
