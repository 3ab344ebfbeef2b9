/*
 * projector.c — the read model's single writer. Invariants:
 * - only this file's connection writes catalog.db;
 * - rows and the cursor that covers them commit together (exactly once across crashes);
 * - applied_seq only grows, and a waiter is called only after its seq is committed.
 */
#include "projector.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits_rsd.h"
#include "logger.h"
#include "readmodel.h"
#include "booking.h"
#include "catalog.h"
#include "resort.h"
#include "review.h"
#include "banned.h"

/* Which module projects which event type. */
static const struct {
	uint16_t type;
	projector_apply_fn apply;
} appliers[] = {
	{EVENT_RESORT_CREATED, resort_project},	    {EVENT_RESORT_UPDATED, resort_project},
	{EVENT_PRODUCT_CREATED, catalog_project},   {EVENT_PRODUCT_REPLACED, catalog_project},
	{EVENT_PRODUCT_PATCHED, catalog_project},   {EVENT_PRODUCT_DELETED, catalog_project},
	{EVENT_RATE_PLAN_CREATED, catalog_project}, {EVENT_RATE_PLAN_REPLACED, catalog_project},
	{EVENT_RATE_PLAN_PATCHED, catalog_project}, {EVENT_RATE_PLAN_DELETED, catalog_project},
	{EVENT_INVENTORY_SET, booking_project},	    {EVENT_BOOKING_CHANGED, booking_project},
	{EVENT_REVIEW_CREATED, review_project},	    {EVENT_REVIEW_MODERATED, review_project},
};

struct projector {
	struct store *store;
	sqlite3 *db;
	struct readmodel_stmts stmts; /* prepared on db by the appliers; projector thread only */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;			       /* under mu */
	bool gathering;			       /* under mu: notify need not wake the thread */
	int gather_ms;			       /* set by projector_start */
	uint64_t notified_head;		       /* under mu */
	struct projector_waiter *waiters;      /* under mu */
	char last_error[RSD_DETAIL_BYTES_MAX]; /* under mu */
	bool failing;			       /* under mu */
	uint64_t last_error_log_ns;	       /* under mu */
	_Atomic uint64_t applied_seq, events_applied, batches, last_progress_ns;
	_Atomic uint64_t
		catalog_batches; /* batches that changed the catalog: projector_generation */
	_Atomic int fail_next_commit;
};

static projector_apply_fn applier_for(uint16_t type)
{
	for (size_t i = 0; i < sizeof(appliers) / sizeof(appliers[0]); i++)
		if (appliers[i].type == type)
			return appliers[i].apply;
	return NULL;
}

int projector_open(struct projector **out, struct store *s, const char *db_path, struct rsd_fail *f)
{
	struct projector *p = rsd_calloc(1, sizeof(*p));
	p->store = s;
	int err = readmodel_open_writer(db_path, &p->db, f);
	if (err) {
		free(p);
		return err;
	}
	uint64_t seq;
	if (readmodel_cursor_get(p->db, s->node_id, &seq) != RSD_OK) {
		sqlite3_close(p->db);
		free(p);
		return rsd_failf(f, RSD_EIO, "", "cannot read the projector cursor");
	}
	atomic_store(&p->applied_seq, seq);
	atomic_store(&p->last_progress_ns, rsd_mono_ns());
	pthread_mutex_init(&p->mu, NULL);
	/* Monotonic: a wall clock stepped back during a wait must not stretch it (a gather
	 * ignores notifications, so nothing else would end it). */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return RSD_OK;
}

/* State of one batch while walking the origins of the log. */
struct batch {
	struct projector *p;
	MDB_txn *txn;
	size_t budget, applied;
	bool catalog; /* an event of the batch changes what catalog reads return */
	int err;
	struct rsd_fail fail;
};

/* Does an event of this type change a resort, product, rate plan, price or review? Holds,
 * bookings, inventory and sign-in do not: catalog reads (GET by id, search) never look at
 * their tables. An unknown type counts as a change, to be safe. */
static bool changes_catalog(uint16_t type)
{
	return type <= EVENT_REVIEW_MODERATED || type > EVENT_PROFILE_UPDATED;
}

static int apply_origin(const char *origin, void *arg)
{
	struct batch *b = arg;
	uint64_t cursor;
	if (readmodel_cursor_get(b->p->db, origin, &cursor) != RSD_OK)
		return b->err = rsd_failf(&b->fail, RSD_EIO, "", "reading cursor of %s", origin);
	struct eventlog_iter it;
	if ((b->err = eventlog_iter_open(&it, b->txn, b->p->store, origin, cursor)))
		return b->err;
	uint64_t last = cursor;
	struct event ev;
	int rc;
	while (b->budget > 0 && (rc = eventlog_iter_next(&it, &ev)) == RSD_OK) {
		if (ev.seq != last + 1) {
			b->err = rsd_failf(&b->fail, RSD_EIO, "",
					   "gap in the log of %s after seq %llu", origin,
					   (unsigned long long)last);
			break;
		}
		projector_apply_fn apply = applier_for(ev.type);
		if (apply && (b->err = apply(b->p->db, &b->p->stmts, &ev, &b->fail)) != RSD_OK)
			break;
		last = ev.seq;
		b->budget--;
		b->applied++;
		b->catalog = b->catalog || changes_catalog(ev.type);
	}
	eventlog_iter_close(&it);
	if (b->err == RSD_OK && last != cursor && readmodel_cursor_set(b->p->db, origin, last))
		b->err = rsd_failf(&b->fail, RSD_EIO, "", "writing cursor: %s",
				   sqlite3_errmsg(b->p->db));
	return b->err;
}

static void set_error(struct projector *p, const char *msg)
{
	pthread_mutex_lock(&p->mu);
	p->failing = msg != NULL;
	snprintf(p->last_error, sizeof(p->last_error), "%s", msg ? msg : "");
	pthread_mutex_unlock(&p->mu);
}

/* Logs a failure when it differs from the last one or PROJECTOR_ERROR_LOG_S have passed,
 * so a failure that persists does not flood the log. */
static void log_failure(struct projector *p, const char *detail)
{
	uint64_t now = rsd_mono_ns();
	pthread_mutex_lock(&p->mu);
	bool same = p->failing && strcmp(p->last_error, detail) == 0;
	bool due = now - p->last_error_log_ns >= (uint64_t)PROJECTOR_ERROR_LOG_S * 1000000000u;
	if (!same || due)
		p->last_error_log_ns = now;
	pthread_mutex_unlock(&p->mu);
	if (!same || due)
		logger_log(LOGGER_ERROR, "projector: %s", detail);
}

int projector_run_once(struct projector *p, size_t max, size_t *applied)
{
	*applied = 0;
	struct batch b = {.p = p, .budget = max};
	int rc = mdb_txn_begin(p->store->env, NULL, MDB_RDONLY, &b.txn);
	if (rc)
		return store_err(rc);
	b.err = readmodel_exec(p->db, "BEGIN IMMEDIATE", &b.fail);
	if (b.err == RSD_OK) {
		int walk = eventlog_origins(b.txn, p->store, apply_origin, &b);
		if (b.err == RSD_OK && walk != RSD_OK)
			b.err = rsd_failf(&b.fail, walk, "", "walking the log failed");
		if (b.err == RSD_OK && atomic_exchange(&p->fail_next_commit, 0))
			b.err = rsd_failf(&b.fail, RSD_EIO, "", "injected failure before commit");
		if (b.err == RSD_OK)
			b.err = readmodel_exec(p->db, "COMMIT", &b.fail);
		if (b.err != RSD_OK)
			readmodel_exec(p->db, "ROLLBACK", NULL);
	}
	mdb_txn_abort(b.txn);
	if (b.err != RSD_OK) {
		log_failure(p, b.fail.detail);
		set_error(p, b.fail.detail);
		return b.err;
	}
	set_error(p, NULL);
	if (b.applied > 0) {
		/* The cache generation moves before applied_seq does: a request told its write is
		 * visible must never read a cache entry from before that write (readcache.h). */
		atomic_fetch_add(&p->batches, 1);
		if (b.catalog)
			atomic_fetch_add(&p->catalog_batches, 1);
		uint64_t seq;
		if (readmodel_cursor_get(p->db, p->store->node_id, &seq) == RSD_OK)
			atomic_store_explicit(&p->applied_seq, seq, memory_order_release);
		atomic_fetch_add(&p->events_applied, b.applied);
		atomic_store(&p->last_progress_ns, rsd_mono_ns());
	}
	*applied = b.applied;
	return RSD_OK;
}

/* Detaches the waiters that are satisfied (or timed out, or all when stopping). */
static struct projector_waiter *take_ready(struct projector *p, bool all)
{
	uint64_t applied = atomic_load_explicit(&p->applied_seq, memory_order_acquire);
	uint64_t now = rsd_mono_ns();
	struct projector_waiter *ready = NULL, **pp = &p->waiters;
	while (*pp) {
		struct projector_waiter *w = *pp;
		if (all || w->seq <= applied || now >= w->deadline_ns) {
			*pp = w->next;
			w->next = ready;
			ready = w;
		} else {
			pp = &w->next;
		}
	}
	return ready;
}

static void wake_waiters(struct projector *p, bool stopping)
{
	pthread_mutex_lock(&p->mu);
	struct projector_waiter *ready = take_ready(p, stopping);
	pthread_mutex_unlock(&p->mu);
	uint64_t applied = atomic_load_explicit(&p->applied_seq, memory_order_acquire);
	for (struct projector_waiter *w = ready, *next; w; w = next) {
		next = w->next;
		int result = w->seq <= applied ? RSD_OK : stopping ? RSD_ESHUTDOWN : RSD_ETIMEDOUT;
		w->fn(w, result);
	}
}

void projector_wait(struct projector *p, struct projector_waiter *w)
{
	pthread_mutex_lock(&p->mu);
	if (w->seq <= atomic_load_explicit(&p->applied_seq, memory_order_acquire)) {
		pthread_mutex_unlock(&p->mu);
		w->fn(w, RSD_OK);
		return;
	}
	w->next = p->waiters;
	p->waiters = w;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void projector_notify(struct projector *p, uint64_t head_seq)
{
	pthread_mutex_lock(&p->mu);
	if (head_seq > p->notified_head)
		p->notified_head = head_seq;
	if (!p->gathering)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Sleeps until notified or for ms, whichever is first; with force, even when behind. */
static void wait_for_work(struct projector *p, long ms, bool force)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	if (!p->stopping &&
	    (force ||
	     p->notified_head <= atomic_load_explicit(&p->applied_seq, memory_order_acquire)))
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	pthread_mutex_unlock(&p->mu);
}

/*
 * After a busy batch (PROJECTOR_GATHER_MIN events or more, but not a full one), lets further
 * commits gather for up to gather_ms before the next SQLite transaction. Each transaction
 * writes every page it touches into the WAL, so at peak (hundreds of writer commits a
 * second, bookings spread over many nights) projecting each commit on its own cost more CPU
 * and disk than the bookings' own LMDB commits. A request that waits to read its write
 * (projector_wait) or stopping ends the wait at once. A quiet log makes small batches and
 * is projected as soon as it is written.
 */
static void gather(struct projector *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)p->gather_ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&p->mu);
	p->gathering = true;
	int rc = 0;
	while (!p->stopping && p->waiters == NULL && rc == 0)
		rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	p->gathering = false;
	pthread_mutex_unlock(&p->mu);
}

static void *projector_main(void *arg)
{
	struct projector *p = arg;
	long backoff_ms = 0; /* after a failure: wait this long before trying again */
	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool stopping = p->stopping;
		pthread_mutex_unlock(&p->mu);
		size_t applied = 0;
		int err = projector_run_once(p, PROJECTOR_BATCH_MAX, &applied);
		wake_waiters(p, false);
		if (stopping && (applied == 0 || err))
			break; /* caught up (or failing): the writer stopped before us */
		if (err) {
			/* A failure that persists (disk full, a bad event) must not spin: back off.
			 */
			backoff_ms = backoff_ms ? backoff_ms * 2 : PROJECTOR_POLL_MS;
			if (backoff_ms > PROJECTOR_BACKOFF_MS_MAX)
				backoff_ms = PROJECTOR_BACKOFF_MS_MAX;
			wait_for_work(p, backoff_ms, true);
		} else {
			backoff_ms = 0;
			if (applied == 0)
				wait_for_work(p, PROJECTOR_POLL_MS, false);
			else if (applied >= PROJECTOR_GATHER_MIN && applied < PROJECTOR_BATCH_MAX &&
				 p->gather_ms > 0)
				gather(p);
		}
	}
	wake_waiters(p, true);
	return NULL;
}

void projector_start(struct projector *p, int gather_ms)
{
	p->gather_ms = gather_ms;
	if (pthread_create(&p->thread, NULL, projector_main, p) != 0)
		rsd_fatal("cannot start the projector thread");
	pthread_setname_np(p->thread, "rsd-projector");
	p->started = true;
}

void projector_stats_get(struct projector *p, struct projector_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->applied_seq = atomic_load_explicit(&p->applied_seq, memory_order_acquire);
	out->events_applied = atomic_load(&p->events_applied);
	out->batches = atomic_load(&p->batches);
	uint64_t idle_ns = rsd_mono_ns() - atomic_load(&p->last_progress_ns);
	pthread_mutex_lock(&p->mu);
	bool behind = p->notified_head > out->applied_seq;
	out->stuck = p->failing || (behind && idle_ns > (uint64_t)PROJECTOR_STUCK_S * 1000000000u);
	snprintf(out->last_error, sizeof(out->last_error), "%s", p->last_error);
	pthread_mutex_unlock(&p->mu);
}

uint64_t projector_generation(struct projector *p)
{
	return atomic_load(&p->catalog_batches);
}

void projector_fail_next_commit(struct projector *p)
{
	atomic_store(&p->fail_next_commit, 1);
}

void projector_free(struct projector *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stopping = true;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	} else {
		wake_waiters(p, true);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	readmodel_stmts_release(&p->stmts);
	sqlite3_close(p->db);
	free(p);
}
