/* Unit tests for projector.c: exactly-once projection across a crash between the LMDB
 * commit and the SQLite commit, statements kept prepared across batches, and read-your-write
 * waiters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eventlog.h"
#include "limits_rsd.h"
#include "projector.h"
#include "readmodel.h"
#include "resort.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

struct fixture {
	char dir[64];
	char db_path[128];
	struct store store;
	struct writer *writer;
	struct projector *projector;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	snprintf(fx->db_path, sizeof(fx->db_path), "%s/catalog.db", fx->dir);
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, 64u << 20, "p1", &f) ||
	    writer_start(&fx->writer, &fx->store, NULL, NULL) ||
	    projector_open(&fx->projector, &fx->store, fx->db_path, &f))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	writer_free(fx->writer);
	projector_free(fx->projector);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* Creates a resort named name; returns the seq of its event. */
static uint64_t create_resort(struct fixture *fx, const char *name)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"stars\":4}", name);
	cJSON *fields;
	struct rsd_fail f;
	assert_int_equal(resort_decode_create(body, strlen(body), &fields, &f), RSD_OK);
	struct resort_cmd rc;
	resort_create_init(&rc, fields);
	assert_int_equal(writer_run(fx->writer, &rc.cmd), RSD_OK);
	resort_cmd_release(&rc);
	return rc.cmd.last_seq;
}

/* Every row of resorts plus the cursor, as one string, read by a separate connection. */
static void dump(struct fixture *fx, char *out, size_t len)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(fx->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(
				 db,
				 "SELECT coalesce(group_concat(id || ':' || name || ':' || "
				 "version, ','), '') || '|' || (SELECT coalesce(max(seq), 0) "
				 "FROM projector_cursor) FROM (SELECT * FROM resorts ORDER BY id)",
				 -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_exactly_once_across_a_crash(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof(name), "resort %d", i);
		create_resort(fx, name);
	}
	char before[8192], after[8192], again[8192];
	dump(fx, before, sizeof(before));
	assert_string_equal(before, "|0");

	/* The "crash": rows were written in SQLite's transaction, then it never committed. */
	size_t applied;
	projector_fail_next_commit(fx->projector);
	assert_int_equal(projector_run_once(fx->projector, 1000, &applied), RSD_EIO);
	dump(fx, after, sizeof(after));
	assert_string_equal(after, "|0");
	struct projector_stats ps;
	projector_stats_get(fx->projector, &ps);
	assert_true(ps.stuck);

	/* Restart: a new projector over the same files applies each event once. */
	projector_free(fx->projector);
	struct rsd_fail f;
	assert_int_equal(projector_open(&fx->projector, &fx->store, fx->db_path, &f), RSD_OK);
	assert_int_equal(projector_run_once(fx->projector, 1000, &applied), RSD_OK);
	assert_int_equal(applied, 20);
	dump(fx, after, sizeof(after));
	assert_non_null(strstr(after, "|20"));
	assert_non_null(strstr(after, ":resort 19:1"));

	/* And again: nothing left to apply, the same rows. */
	projector_free(fx->projector);
	assert_int_equal(projector_open(&fx->projector, &fx->store, fx->db_path, &f), RSD_OK);
	assert_int_equal(projector_run_once(fx->projector, 1000, &applied), RSD_OK);
	assert_int_equal(applied, 0);
	dump(fx, again, sizeof(again));
	assert_string_equal(again, after);
	projector_stats_get(fx->projector, &ps);
	assert_false(ps.stuck);
	assert_int_equal(ps.applied_seq, 20);
}

static void test_batches_are_bounded(void **state)
{
	struct fixture *fx = *state;
	for (int i = 0; i < 7; i++)
		create_resort(fx, "r");
	size_t applied;
	assert_int_equal(projector_run_once(fx->projector, 3, &applied), RSD_OK);
	assert_int_equal(applied, 3);
	char out[8192];
	dump(fx, out, sizeof(out));
	assert_non_null(strstr(out, "|3"));
	assert_int_equal(projector_run_once(fx->projector, 100, &applied), RSD_OK);
	assert_int_equal(applied, 4);
}

/* A command that appends booking.changed events with the given JSON texts, as booking.c
 * would, so the booking projection runs without a catalog, a hold or a payment. */
struct booking_events_cmd {
	struct command cmd;
	const char *const *docs;
	int n;
};

static int booking_events_apply(struct writer_txn *wt, struct command *cmd)
{
	struct booking_events_cmd *bc = (struct booking_events_cmd *)cmd;
	int err = RSD_OK;
	for (int i = 0; i < bc->n && !err; i++)
		err = writer_emit(wt, EVENT_BOOKING_CHANGED, bc->docs[i], strlen(bc->docs[i]),
				  NULL);
	return err;
}

/* The rows of bookings and booking_nights, as one string, read by a separate connection. */
static void dump_bookings(struct fixture *fx, char *out, size_t len)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(fx->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(
				 db,
				 "SELECT (SELECT coalesce(group_concat(id || ':' || state || ':' ||"
				 " version, ','), '') FROM (SELECT * FROM bookings ORDER BY id))"
				 " || '|' || (SELECT coalesce(group_concat(booking_id || ':' ||"
				 " day || ':' || qty, ','), '') FROM (SELECT * FROM"
				 " booking_nights ORDER BY booking_id, day))",
				 -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_booking_statements_outlive_batches(void **state)
{
	struct fixture *fx = *state;
	static const char *const docs[] = {
		"{\"id\":\"bk_1\",\"state\":\"confirmed\",\"version\":1,\"items\":[{\"product_id\""
		":\"pr_1\",\"from\":\"2027-01-01\",\"to\":\"2027-01-03\",\"qty\":2}]}",
		"{\"id\":\"bk_2\",\"state\":\"confirmed\",\"version\":1,\"items\":[{\"product_id\""
		":\"pr_1\",\"from\":\"2027-01-02\",\"to\":\"2027-01-03\",\"qty\":1}]}",
		"{\"id\":\"bk_1\",\"state\":\"cancelled\",\"version\":2,\"items\":[{\"product_id\""
		":\"pr_1\",\"from\":\"2027-01-01\",\"to\":\"2027-01-03\",\"qty\":2}]}",
	};
	struct booking_events_cmd bc = {.cmd = {.apply = booking_events_apply}, .docs = docs};
	/* Two bookings, projected in a batch that rolls back: the cached statements must come
	 * out of it reset, ready for the retry in the same projector. */
	bc.n = 2;
	assert_int_equal(writer_run(fx->writer, &bc.cmd), RSD_OK);
	size_t applied;
	char out[1024];
	projector_fail_next_commit(fx->projector);
	assert_int_equal(projector_run_once(fx->projector, 100, &applied), RSD_EIO);
	dump_bookings(fx, out, sizeof(out));
	assert_string_equal(out, "|");
	assert_int_equal(projector_run_once(fx->projector, 100, &applied), RSD_OK);
	assert_int_equal(applied, 2);
	dump_bookings(fx, out, sizeof(out));
	assert_string_equal(out, "bk_1:confirmed:1,bk_2:confirmed:1|bk_1:20819:2,bk_1:20820:2,"
				 "bk_2:20820:1");
	/* The cancellation, in a later batch, reuses the statements: its nights are gone. */
	bc.docs = docs + 2;
	bc.n = 1;
	assert_int_equal(writer_run(fx->writer, &bc.cmd), RSD_OK);
	assert_int_equal(projector_run_once(fx->projector, 100, &applied), RSD_OK);
	assert_int_equal(applied, 1);
	dump_bookings(fx, out, sizeof(out));
	assert_string_equal(out, "bk_1:cancelled:2,bk_2:confirmed:1|bk_2:20820:1");
	/* teardown's projector_free finalizes them; ASan reports the connection if it cannot
	 * close. */
}

struct wait_box {
	struct projector_waiter w;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int result;
	bool called;
};

static void wait_fn(struct projector_waiter *w, int result)
{
	struct wait_box *b = w->arg;
	pthread_mutex_lock(&b->mu);
	b->result = result;
	b->called = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static int wait_for(struct projector *p, uint64_t seq, uint64_t timeout_ms)
{
	struct wait_box b = {.w = {.seq = seq,
				   .deadline_ns = rsd_mono_ns() + timeout_ms * 1000000u,
				   .fn = wait_fn}};
	b.w.arg = &b;
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	projector_wait(p, &b.w);
	pthread_mutex_lock(&b.mu);
	while (!b.called)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	return b.result;
}

static void test_read_your_write_waiters(void **state)
{
	struct fixture *fx = *state;
	projector_start(fx->projector, 0);
	uint64_t seq = create_resort(fx, "visible");
	projector_notify(fx->projector, seq);
	assert_int_equal(wait_for(fx->projector, seq, 5000), RSD_OK);
	char out[8192];
	dump(fx, out, sizeof(out));
	assert_non_null(strstr(out, ":visible:1"));
	/* A seq nobody wrote times out instead of hanging. */
	assert_int_equal(wait_for(fx->projector, seq + 100, 200), RSD_ETIMEDOUT);
}

/* With a gathering time far longer than the test, commits after a busy batch wait for it,
 * but a reader waiting for one of them does not: its wait ends the gathering. A small
 * batch (a quiet log) starts no gathering at all. */
static void test_gathering_never_delays_a_waiting_reader(void **state)
{
	struct fixture *fx = *state;
	uint64_t first = 0;
	for (int i = 0; i < PROJECTOR_GATHER_MIN; i++) /* a busy log: a batch this big */
		first = create_resort(fx, "first");
	projector_start(fx->projector, 60000);
	projector_notify(fx->projector, first);
	assert_int_equal(wait_for(fx->projector, first, 5000), RSD_OK);
	uint64_t second = create_resort(fx, "second");
	projector_notify(fx->projector, second);
	struct timespec pause = {.tv_nsec = 300 * 1000000L};
	nanosleep(&pause, NULL);
	struct projector_stats st;
	projector_stats_get(fx->projector, &st);
	assert_int_equal(st.applied_seq, first); /* gathering */
	uint64_t t0 = rsd_mono_ns();
	assert_int_equal(wait_for(fx->projector, second, 5000), RSD_OK);
	/* Not a speed claim: had the wait not ended the gathering, it would take a minute. */
	assert_true(rsd_mono_ns() - t0 < 10ull * 1000000000u);
	projector_stats_get(fx->projector, &st);
	assert_int_equal(st.applied_seq, second);
	/* A batch of one event is not busy: the next commit is projected without a reader
	 * asking for it. */
	uint64_t third = create_resort(fx, "third");
	projector_notify(fx->projector, third);
	for (int i = 0; i < 500 && st.applied_seq < third; i++) {
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
		projector_stats_get(fx->projector, &st);
	}
	assert_int_equal(st.applied_seq, third);
	/* Stopping ends a gathering too: another busy batch, then free while it gathers. */
	uint64_t last = 0;
	for (int i = 0; i < PROJECTOR_GATHER_MIN; i++)
		last = create_resort(fx, "busy");
	projector_notify(fx->projector, last);
	assert_int_equal(wait_for(fx->projector, last, 5000), RSD_OK);
	t0 = rsd_mono_ns();
	projector_free(fx->projector);
	fx->projector = NULL;				       /* teardown frees nothing twice */
	assert_true(rsd_mono_ns() - t0 < 10ull * 1000000000u); /* not a minute */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exactly_once_across_a_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_booking_statements_outlive_batches, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_your_write_waiters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gathering_never_delays_a_waiting_reader, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
