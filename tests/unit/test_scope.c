/*
 * Unit tests for scope.c: whom each kind of principal acts for, the owner chain from a
 * review, rate plan or product up to its resort (in a real LMDB whose entities records
 * are written directly, as the writer would), and scope_check's answers for reads and
 * writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"
#include "store.h"
#include "testutil.h"

struct fixture {
	char dir[64];
	struct store store;
};

static void put(struct store *s, MDB_txn *txn, const char *id, uint8_t kind, const char *owner,
		bool deleted)
{
	struct entity_rec rec = {.kind = kind, .version = 1, .deleted = deleted};
	snprintf(rec.owner, sizeof(rec.owner), "%s", owner);
	assert_int_equal(store_entity_put(txn, s, id, &rec), RSD_OK);
}

/* Resorts rs_a and rs_b; A's product, rate plan, review and a deleted product; B's
 * product; and a rate plan whose product record is missing (a broken chain). */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, 16u << 20, "w1", &f) != RSD_OK)
		return -1;
	MDB_txn *txn;
	if (mdb_txn_begin(fx->store.env, NULL, 0, &txn))
		return -1;
	put(&fx->store, txn, "rs_a", ENTITY_RESORT, "", false);
	put(&fx->store, txn, "rs_b", ENTITY_RESORT, "", false);
	put(&fx->store, txn, "pr_a", ENTITY_PRODUCT, "rs_a", false);
	put(&fx->store, txn, "pr_gone", ENTITY_PRODUCT, "rs_a", true);
	put(&fx->store, txn, "pr_b", ENTITY_PRODUCT, "rs_b", false);
	put(&fx->store, txn, "rp_a", ENTITY_RATE_PLAN, "pr_a", false);
	put(&fx->store, txn, "rv_a", ENTITY_REVIEW, "pr_a", false);
	put(&fx->store, txn, "rp_broken", ENTITY_RATE_PLAN, "pr_missing", false);
	if (mdb_txn_commit(txn))
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

static struct principal who_of(enum role role, const char *resort)
{
	struct principal p = {.role = role};
	snprintf(p.sub, sizeof(p.sub), "staff:test");
	snprintf(p.resort, sizeof(p.resort), "%s", resort);
	return p;
}

static void test_acts_for(void **state)
{
	(void)state;
	static const struct {
		enum role role;
		const char *resort;
		bool all, a, b;
	} cases[] = {
		{ROLE_GUEST, "", false, false, false},
		{ROLE_GUEST, "rs_a", false, false, false},
		{ROLE_STAFF, "rs_a", false, true, false},
		{ROLE_MANAGER, "rs_a", false, true, false},
		{ROLE_STAFF, "", true, true, true},
		{ROLE_MANAGER, "", true, true, true},
		{ROLE_ADMIN, "", true, true, true},
		{ROLE_ADMIN, "rs_b", true, true, true},
		{ROLE_PUBLIC, "", false, false, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct principal p = who_of(cases[i].role, cases[i].resort);
		struct rsd_fail f = {0};
		assert_int_equal(scope_acts_for_all(&p), cases[i].all);
		assert_int_equal(scope_acts_for(&p, "rs_a", NULL) == RSD_OK, cases[i].a);
		int err = scope_acts_for(&p, "rs_b", &f);
		assert_int_equal(err == RSD_OK, cases[i].b);
		if (err) {
			assert_int_equal(err, RSD_EFORBIDDEN);
			assert_non_null(strstr(f.detail, "belongs to resort rs_b"));
		}
	}
	struct principal p = who_of(ROLE_MANAGER, "rs_a");
	struct rsd_fail f = {0};
	scope_acts_for(&p, "rs_b", &f);
	assert_string_equal(f.detail, "this belongs to resort rs_b; you act for rs_a");
}

static void test_resort_of(void **state)
{
	struct fixture *fx = *state;
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	static const struct {
		const char *id;
		enum entity_kind kind;
		int err;
		const char *resort;
	} cases[] = {
		{"rs_a", ENTITY_RESORT, RSD_OK, "rs_a"},
		{"pr_a", ENTITY_PRODUCT, RSD_OK, "rs_a"},
		{"pr_b", ENTITY_PRODUCT, RSD_OK, "rs_b"},
		{"pr_gone", ENTITY_PRODUCT, RSD_OK, "rs_a"}, /* deleted: still A's */
		{"rp_a", ENTITY_RATE_PLAN, RSD_OK, "rs_a"},
		{"rv_a", ENTITY_REVIEW, RSD_OK, "rs_a"},
		{"pr_a", ENTITY_RATE_PLAN, RSD_ENOTFOUND, NULL}, /* another kind */
		{"rp_a", ENTITY_PRODUCT, RSD_ENOTFOUND, NULL},
		{"rs_a", ENTITY_PRODUCT, RSD_ENOTFOUND, NULL},
		{"pr_nowhere", ENTITY_PRODUCT, RSD_ENOTFOUND, NULL},
		{"", ENTITY_PRODUCT, RSD_ENOTFOUND, NULL},
		{"pr_0123456789012345678901234567890123456789012345678", ENTITY_PRODUCT,
		 RSD_ENOTFOUND, NULL},
		{"rp_broken", ENTITY_RATE_PLAN, RSD_EIO, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[ENTITY_ID_BYTES_MAX + 1] = "";
		int err = scope_resort_of(txn, &fx->store, cases[i].id, cases[i].kind, out);
		assert_int_equal(err, cases[i].err);
		if (cases[i].resort)
			assert_string_equal(out, cases[i].resort);
	}
	mdb_txn_abort(txn);
}

static void test_check(void **state)
{
	struct fixture *fx = *state;
	struct store_reader r = {.store = &fx->store};
	struct principal staff_b = who_of(ROLE_STAFF, "rs_b"), staff_a = who_of(ROLE_STAFF, "rs_a");
	struct principal admin = who_of(ROLE_ADMIN, ""), group = who_of(ROLE_MANAGER, "");
	struct rsd_fail f = {0};

	/* Another resort's data: a read does not learn it exists, a write is forbidden. */
	assert_int_equal(
		scope_check(&r, &staff_b, "rp_a", ENTITY_RATE_PLAN, "rate plan", SCOPE_READ, &f),
		RSD_ENOTFOUND);
	assert_string_equal(f.detail, "no rate plan with id 'rp_a'");
	assert_int_equal(
		scope_check(&r, &staff_b, "pr_a", ENTITY_PRODUCT, "product", SCOPE_WRITE, &f),
		RSD_EFORBIDDEN);
	assert_string_equal(f.detail, "this belongs to resort rs_a; you act for rs_b");
	/* An unknown id is not found, for reads and writes alike. */
	assert_int_equal(
		scope_check(&r, &staff_a, "pr_nowhere", ENTITY_PRODUCT, "product", SCOPE_WRITE, &f),
		RSD_ENOTFOUND);
	assert_string_equal(f.detail, "no product with id 'pr_nowhere'");
	/* Their own resort's, and everyone's for those who act for all (without a read:
	 * an unknown id passes, and the command answers for it). */
	assert_int_equal(
		scope_check(&r, &staff_a, "rv_a", ENTITY_REVIEW, "review", SCOPE_WRITE, &f),
		RSD_OK);
	assert_int_equal(
		scope_check(&r, &staff_a, "rs_a", ENTITY_RESORT, "resort", SCOPE_WRITE, &f),
		RSD_OK);
	assert_int_equal(
		scope_check(&r, &staff_a, "rs_b", ENTITY_RESORT, "resort", SCOPE_WRITE, &f),
		RSD_EFORBIDDEN);
	for (int i = 0; i < 2; i++) {
		const struct principal *p = i ? &admin : &group;
		assert_int_equal(
			scope_check(&r, p, "pr_a", ENTITY_PRODUCT, "product", SCOPE_WRITE, &f),
			RSD_OK);
		assert_int_equal(
			scope_check(&r, p, "pr_b", ENTITY_PRODUCT, "product", SCOPE_READ, &f),
			RSD_OK);
		assert_int_equal(
			scope_check(&r, p, "pr_nowhere", ENTITY_PRODUCT, "product", SCOPE_READ, &f),
			RSD_OK);
	}
	/* A broken chain is a storage error, not a refusal. */
	assert_int_equal(scope_check(&r, &staff_a, "rp_broken", ENTITY_RATE_PLAN, "rate plan",
				     SCOPE_READ, &f),
			 RSD_EIO);
	store_reader_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acts_for),
		cmocka_unit_test_setup_teardown(test_resort_of, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
