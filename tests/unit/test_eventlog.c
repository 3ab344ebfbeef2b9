/* Unit tests for eventlog.c over a real LMDB environment: append, read back, walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "eventlog.h"
#include "store.h"
#include "testutil.h"

struct fixture {
	char dir[64];
	struct store store;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, 64u << 20, "node-a", &f) != RSD_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

static void append(struct store *s, const char *origin, uint64_t seq, const char *data)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
	struct event ev = {.seq = seq,
			   .ts_ms = 1000 + seq,
			   .type = EVENT_RESORT_CREATED,
			   .data = data,
			   .data_len = strlen(data)};
	snprintf(ev.origin, sizeof(ev.origin), "%s", origin);
	assert_int_equal(eventlog_append(txn, s, &ev), RSD_OK);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_append_read_back(void **state)
{
	struct fixture *fx = *state;
	append(&fx->store, "node-a", 1, "{\"x\":1}");
	append(&fx->store, "node-a", 2, "{\"x\":2}");
	MDB_txn *txn;
	mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn);
	struct event ev;
	assert_int_equal(eventlog_read(txn, &fx->store, "node-a", 2, &ev), RSD_OK);
	assert_string_equal(ev.origin, "node-a");
	assert_int_equal(ev.seq, 2);
	assert_int_equal(ev.ts_ms, 1002);
	assert_int_equal(ev.type, EVENT_RESORT_CREATED);
	assert_int_equal(ev.data_len, 7);
	assert_memory_equal(ev.data, "{\"x\":2}", 7);
	assert_int_equal(eventlog_read(txn, &fx->store, "node-a", 3, &ev), RSD_ENOTFOUND);
	mdb_txn_abort(txn);
}

static void test_duplicate_seq_is_a_conflict(void **state)
{
	struct fixture *fx = *state;
	append(&fx->store, "node-a", 1, "{}");
	MDB_txn *txn;
	mdb_txn_begin(fx->store.env, NULL, 0, &txn);
	struct event ev = {.origin = "node-a", .seq = 1, .data = "{}", .data_len = 2};
	assert_int_equal(eventlog_append(txn, &fx->store, &ev), RSD_ECONFLICT);
	mdb_txn_abort(txn);
}

static int collect(const char *origin, void *arg)
{
	char *out = arg;
	strcat(out, origin);
	strcat(out, ";");
	return 0;
}

static void test_heads_iteration_and_origins(void **state)
{
	struct fixture *fx = *state;
	/* Origins that are prefixes of each other must not bleed into one another. */
	for (uint64_t i = 1; i <= 5; i++)
		append(&fx->store, "node-a", i, "{}");
	for (uint64_t i = 1; i <= 3; i++)
		append(&fx->store, "node-ab", i, "{}");
	append(&fx->store, "hub", 1, "{}");
	MDB_txn *txn;
	mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn);
	uint64_t head;
	assert_int_equal(eventlog_head(txn, &fx->store, "node-a", &head), RSD_OK);
	assert_int_equal(head, 5);
	assert_int_equal(eventlog_head(txn, &fx->store, "node-ab", &head), RSD_OK);
	assert_int_equal(head, 3);
	assert_int_equal(eventlog_head(txn, &fx->store, "nobody", &head), RSD_OK);
	assert_int_equal(head, 0);
	assert_int_equal(eventlog_head(txn, &fx->store, "zzz", &head), RSD_OK);
	assert_int_equal(head, 0);

	struct eventlog_iter it;
	struct event ev;
	assert_int_equal(eventlog_iter_open(&it, txn, &fx->store, "node-a", 2), RSD_OK);
	uint64_t want = 3;
	while (eventlog_iter_next(&it, &ev) == RSD_OK) {
		assert_string_equal(ev.origin, "node-a");
		assert_int_equal(ev.seq, want++);
	}
	assert_int_equal(want, 6);
	eventlog_iter_close(&it);

	char seen[128] = "";
	assert_int_equal(eventlog_origins(txn, &fx->store, collect, seen), RSD_OK);
	assert_string_equal(seen, "hub;node-a;node-ab;");
	mdb_txn_abort(txn);
}

static void test_store_is_durable_and_keeps_node_id(void **state)
{
	struct fixture *fx = *state;
	assert_true(store_flags_durable(&fx->store));
	store_close(&fx->store);
	struct rsd_fail f;
	/* A different configured id is refused; none keeps the stored one. */
	assert_int_equal(store_open(&fx->store, fx->dir, 64u << 20, "node-b", &f), RSD_EINVAL);
	assert_non_null(strstr(f.detail, "node-a"));
	assert_int_equal(store_open(&fx->store, fx->dir, 64u << 20, "", &f), RSD_OK);
	assert_string_equal(fx->store.node_id, "node-a");
}

static void test_entities(void **state)
{
	struct fixture *fx = *state;
	MDB_txn *txn;
	mdb_txn_begin(fx->store.env, NULL, 0, &txn);
	struct entity_rec rec = {.kind = ENTITY_RESORT, .version = 7}, got;
	assert_int_equal(store_entity_get(txn, &fx->store, "rs_1", &got), RSD_ENOTFOUND);
	assert_int_equal(store_entity_put(txn, &fx->store, "rs_1", &rec), RSD_OK);
	assert_int_equal(store_entity_get(txn, &fx->store, "rs_1", &got), RSD_OK);
	assert_int_equal(got.version, 7);
	assert_int_equal(got.kind, ENTITY_RESORT);
	assert_false(got.deleted);
	mdb_txn_abort(txn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_seq_is_a_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heads_iteration_and_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_is_durable_and_keeps_node_id, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_entities, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
