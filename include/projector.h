/*
 * projector.h — turns events of the log into rows of catalog.db, exactly once.
 *
 * A batch of events and the cursor that says how far they go are written in one SQLite
 * transaction, so after any crash the projector resumes at the first event whose rows
 * are not there. Waiters (read-your-write) are told when this node's events up to a seq
 * are visible to readers.
 */
#ifndef RSD_PROJECTOR_H
#define RSD_PROJECTOR_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "eventlog.h"
#include "readmodel.h"
#include "store.h"

struct projector;

/* Applies one event to SQLite inside the projector's transaction. stmts belongs to db: an
 * applier may keep statements prepared there (readmodel_stmts_get) for as long as the
 * projector lives; the projector finalizes them before it closes db. */
typedef int (*projector_apply_fn)(sqlite3 *db, struct readmodel_stmts *stmts,
				  const struct event *ev, struct rsd_fail *f);

/* A read-your-write wait: fn(w, RSD_OK) once this node's seq is visible, or
 * fn(w, RSD_ETIMEDOUT / RSD_ESHUTDOWN). fn is called exactly once, on any thread. */
struct projector_waiter {
	uint64_t seq;
	uint64_t deadline_ns;
	void (*fn)(struct projector_waiter *w, int result);
	void *arg;
	struct projector_waiter *next;
};

struct projector_stats {
	uint64_t applied_seq; /* this node's events visible up to here */
	uint64_t events_applied;
	uint64_t batches;
	bool stuck; /* behind and no progress for PROJECTOR_STUCK_S, or failing */
	char last_error[RSD_DETAIL_BYTES_MAX];
};

/* Opens db_path for writing (migrating it) over store s. Errors: RSD_EIO with f filled. */
int projector_open(struct projector **out, struct store *s, const char *db_path,
		   struct rsd_fail *f);

/* Starts the projector thread. After a busy batch it lets commits gather for up to
 * gather_ms (0: never) before the next one, unless a waiter needs them sooner
 * (projector.c gather). */
void projector_start(struct projector *p, int gather_ms);

/* Tells the projector the log has grown to head_seq (writer thread). */
void projector_notify(struct projector *p, uint64_t head_seq);

/*
 * Applies up to max events in one transaction, synchronously (tests, `check`, and the
 * thread's loop). Sets *applied. Errors: RSD_EIO with the reason kept in the stats.
 */
int projector_run_once(struct projector *p, size_t max, size_t *applied);

/* Registers w; calls w->fn at once when w->seq is already visible. */
void projector_wait(struct projector *p, struct projector_waiter *w);

void projector_stats_get(struct projector *p, struct projector_stats *out);

/* A number that changes after every commit that changed the catalog in the read model
 * (resorts, products, rate plans, prices, reviews; any thread): what the caches of catalog
 * reads compare against (readcache.h). Bookings and holds leave it alone, so a booking
 * load does not empty those caches. */
uint64_t projector_generation(struct projector *p);

/* Test hook: the next batch rolls back instead of committing, as if the process died
 * between the LMDB commit and the SQLite commit. */
void projector_fail_next_commit(struct projector *p);

/* Stops the thread after it has caught up with the log, fails remaining waiters with
 * RSD_ESHUTDOWN, closes SQLite and frees p. NULL is fine. */
void projector_free(struct projector *p);

#endif
