/* Unit tests for writer.c: group commit, per-command rollback, a full map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "eventlog.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

struct fixture {
	char dir[64];
	struct store store;
	struct writer *writer;
};

static int open_with_map(void **state, uint64_t map_bytes)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, map_bytes, "w1", &f) != RSD_OK ||
	    writer_start(&fx->writer, &fx->store, NULL, NULL) != RSD_OK)
		return -1;
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return open_with_map(state, 256u << 20);
}
static int setup_small(void **state)
{
	return open_with_map(state, 1u << 20);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	writer_free(fx->writer);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* A command that emits one event of `size` bytes, and fails after emitting when asked. */
struct test_cmd {
	struct command cmd;
	size_t size;
	bool fail_after_emit;
	char id[32];
};

static int test_apply(struct writer_txn *wt, struct command *cmd)
{
	struct test_cmd *tc = (struct test_cmd *)cmd;
	char *data = malloc(tc->size);
	memset(data, 'x', tc->size);
	int err = writer_emit(wt, EVENT_RESORT_CREATED, data, tc->size, NULL);
	free(data);
	if (err)
		return err;
	if (tc->id[0]) {
		struct entity_rec rec = {.kind = ENTITY_RESORT, .version = 1};
		if ((err = store_entity_put(wt->txn, wt->store, tc->id, &rec)))
			return err;
	}
	return tc->fail_after_emit ? rsd_failf(&cmd->fail, RSD_EINVAL, "x", "asked to fail")
				   : RSD_OK;
}

#define THREADS	   32
#define PER_THREAD 150

static void *submitter(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct test_cmd tc = {.cmd.apply = test_apply, .size = 64};
		if (writer_run(w, &tc.cmd) != RSD_OK || tc.cmd.last_seq == 0)
			abort();
	}
	return NULL;
}

/* Reads the log of "w1" and checks its seqs run 1..n without gaps. */
static void assert_log_contiguous(struct store *s, uint64_t n)
{
	MDB_txn *txn;
	mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	struct eventlog_iter it;
	eventlog_iter_open(&it, txn, s, "w1", 0);
	struct event ev;
	uint64_t want = 1;
	while (eventlog_iter_next(&it, &ev) == RSD_OK)
		assert_int_equal(ev.seq, want++);
	eventlog_iter_close(&it);
	mdb_txn_abort(txn);
	assert_int_equal(want - 1, n);
}

static void test_group_commit_of_many_submitters(void **state)
{
	struct fixture *fx = *state;
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, submitter, fx->writer);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	struct writer_stats st;
	writer_stats_get(fx->writer, &st);
	assert_int_equal(st.commands, THREADS * PER_THREAD);
	assert_int_equal(st.head_seq, THREADS * PER_THREAD);
	/* With 32 submitters waiting on fsync, batches must form: far fewer commits than commands.
	 */
	assert_true(st.commits * 2 < st.commands);
	assert_int_equal(st.batch_sum, st.commands);
	assert_log_contiguous(&fx->store, THREADS * PER_THREAD);
}

static _Atomic int done_count;

static void count_done(struct command *cmd)
{
	(void)cmd;
	atomic_fetch_add(&done_count, 1);
}

static void test_failing_command_leaves_no_trace(void **state)
{
	struct fixture *fx = *state;
	enum { N = 300 };
	struct test_cmd *cmds = calloc(N, sizeof(*cmds));
	atomic_store(&done_count, 0);
	for (int i = 0; i < N; i++) {
		cmds[i].cmd.apply = test_apply;
		cmds[i].cmd.done = count_done;
		cmds[i].size = 32;
		cmds[i].fail_after_emit = i % 3 == 0;
		snprintf(cmds[i].id, sizeof(cmds[i].id), "e%d", i);
		assert_int_equal(writer_submit(fx->writer, &cmds[i].cmd), RSD_OK);
	}
	while (atomic_load(&done_count) < N)
		usleep(1000);
	int ok = 0;
	MDB_txn *txn;
	mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn);
	for (int i = 0; i < N; i++) {
		struct entity_rec rec;
		int found = store_entity_get(txn, &fx->store, cmds[i].id, &rec);
		if (cmds[i].fail_after_emit) {
			assert_int_equal(cmds[i].cmd.result, RSD_EINVAL);
			assert_string_equal(cmds[i].cmd.fail.field, "x");
			assert_int_equal(found, RSD_ENOTFOUND);
		} else {
			assert_int_equal(cmds[i].cmd.result, RSD_OK);
			assert_int_equal(found, RSD_OK);
			ok++;
		}
	}
	mdb_txn_abort(txn);
	assert_int_equal(ok, N - N / 3);
	assert_log_contiguous(&fx->store, (uint64_t)ok);
	free(cmds);
}

static void test_full_map_is_an_error_not_a_crash(void **state)
{
	struct fixture *fx = *state;
	int successes = 0, rc = RSD_OK;
	for (int i = 0; i < 10000 && rc == RSD_OK; i++) {
		struct test_cmd tc = {.cmd.apply = test_apply, .size = 8192};
		rc = writer_run(fx->writer, &tc.cmd);
		if (rc == RSD_OK)
			successes++;
	}
	assert_int_equal(rc, RSD_EFULL);
	assert_true(successes > 10);
	struct writer_stats st;
	writer_stats_get(fx->writer, &st);
	assert_int_equal(st.full_errors, 1);
	assert_int_equal(st.head_seq, (uint64_t)successes);
	assert_log_contiguous(&fx->store, (uint64_t)successes);
	/* The writer keeps working for what fits. */
	struct test_cmd small = {.cmd.apply = test_apply, .size = 16};
	int again = writer_run(fx->writer, &small.cmd);
	assert_true(again == RSD_OK || again == RSD_EFULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_commit_of_many_submitters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failing_command_leaves_no_trace, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_map_is_an_error_not_a_crash, setup_small,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
