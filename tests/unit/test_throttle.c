/*
 * Unit tests for throttle.c: failures counted per key over a fixed window, the wait they
 * impose, the window running out, clearing after a success, keys kept apart, and many
 * threads counting at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "limits_rsd.h"
#include "throttle.h"

#define T0     1700000000000ull
#define WINDOW 900 /* s */
#define MAX    5

static void test_limit_reached(void **state)
{
	(void)state;
	struct throttle *t = throttle_new(WINDOW, MAX);
	assert_int_equal(throttle_wait_s(t, "user:alice", T0), 0);
	for (int i = 0; i < MAX - 1; i++) {
		throttle_fail(t, "user:alice", T0 + (uint64_t)i * 1000);
		assert_int_equal(throttle_wait_s(t, "user:alice", T0 + (uint64_t)i * 1000), 0);
	}
	/* The MAXth failure: now it must wait until the window (from the first failure) ends. */
	throttle_fail(t, "user:alice", T0 + 10000);
	assert_int_equal(throttle_wait_s(t, "user:alice", T0 + 10000), WINDOW - 10);
	assert_int_equal(throttle_wait_s(t, "user:alice", T0 + 60000), WINDOW - 60);
	/* Rounded up: 1 ms left is a second to wait, never 0. */
	assert_int_equal(throttle_wait_s(t, "user:alice", T0 + WINDOW * 1000ull - 1), 1);
	assert_int_equal(throttle_wait_s(t, "user:alice", T0 + WINDOW * 1000ull - 1001), 2);
	/* More failures while blocked keep it blocked. */
	throttle_fail(t, "user:alice", T0 + 20000);
	assert_true(throttle_wait_s(t, "user:alice", T0 + 20000) > 0);
	/* Other keys are not affected. */
	assert_int_equal(throttle_wait_s(t, "user:bob", T0 + 20000), 0);
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0 + 20000), 0);
	assert_int_equal(throttle_wait_s(t, "user:alic", T0 + 20000), 0);
	assert_int_equal(throttle_wait_s(t, "", T0 + 20000), 0);
	throttle_free(t);
}

static void test_window_expiry_resets(void **state)
{
	(void)state;
	struct throttle *t = throttle_new(WINDOW, MAX);
	for (int i = 0; i < MAX; i++)
		throttle_fail(t, "addr:192.0.2.1", T0);
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0), WINDOW);
	/* At the end of the window it may try again. */
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull), 0);
	/* A failure after the window starts a new count at 1. */
	throttle_fail(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull);
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull), 0);
	for (int i = 1; i < MAX - 1; i++)
		throttle_fail(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull + 5);
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull + 5), 0);
	throttle_fail(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull + 5);
	assert_int_equal(throttle_wait_s(t, "addr:192.0.2.1", T0 + WINDOW * 1000ull + 5), WINDOW);
	/* Failures spread thinner than the window never add up. */
	struct throttle *u = throttle_new(1, 2);
	for (int i = 0; i < 10; i++) {
		throttle_fail(u, "k", T0 + (uint64_t)i * 1000);
		assert_int_equal(throttle_wait_s(u, "k", T0 + (uint64_t)i * 1000), 0);
	}
	throttle_free(u);
	throttle_free(t);
}

static void test_clear(void **state)
{
	(void)state;
	struct throttle *t = throttle_new(WINDOW, MAX);
	for (int i = 0; i < MAX; i++) {
		throttle_fail(t, "user:alice", T0);
		throttle_fail(t, "user:bob", T0);
	}
	assert_true(throttle_wait_s(t, "user:alice", T0) > 0);
	throttle_clear(t, "user:alice");
	assert_int_equal(throttle_wait_s(t, "user:alice", T0), 0);
	/* Clearing one key leaves the others, and a key never seen is fine. */
	assert_true(throttle_wait_s(t, "user:bob", T0) > 0);
	throttle_clear(t, "user:carol");
	assert_true(throttle_wait_s(t, "user:bob", T0) > 0);
	/* After a clear, the count starts again from zero. */
	for (int i = 0; i < MAX - 1; i++)
		throttle_fail(t, "user:alice", T0 + 1);
	assert_int_equal(throttle_wait_s(t, "user:alice", T0 + 1), 0);
	throttle_free(t);
	throttle_free(NULL);
}

/* Many keys at once: each key's count is its own unless two share a slot, and sharing can
 * only forget failures, never block a key that did not fail. */
static void test_many_keys(void **state)
{
	(void)state;
	struct throttle *t = throttle_new(WINDOW, 3);
	char key[32];
	int blocked = 0;
	for (int k = 0; k < 2 * THROTTLE_SLOTS; k++) {
		snprintf(key, sizeof(key), "addr:10.0.%d.%d", k / 256, k % 256);
		for (int i = 0; i < 3; i++)
			throttle_fail(t, key, T0);
	}
	for (int k = 0; k < 2 * THROTTLE_SLOTS; k++) {
		snprintf(key, sizeof(key), "addr:10.0.%d.%d", k / 256, k % 256);
		blocked += throttle_wait_s(t, key, T0) > 0;
	}
	/* Every slot ends up held by some key that failed 3 times, the newest to take it. */
	assert_true(blocked > 0 && blocked <= THROTTLE_SLOTS);
	for (int k = 0; k < 2 * THROTTLE_SLOTS; k++) {
		snprintf(key, sizeof(key), "user:never-%d", k);
		if (throttle_wait_s(t, key, T0) != 0)
			fail_msg("%s blocked without failing", key);
	}
	throttle_free(t);
}

struct worker_arg {
	struct throttle *t;
	int id;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	char key[32];
	snprintf(key, sizeof(key), "user:w%d", a->id);
	for (int i = 0; i < 1000; i++) {
		throttle_fail(a->t, "addr:shared", T0);
		throttle_fail(a->t, key, T0);
		(void)throttle_wait_s(a->t, key, T0);
		if (i % 100 == 0)
			throttle_clear(a->t, key);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct throttle *t = throttle_new(WINDOW, 4000);
	pthread_t th[4];
	struct worker_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){.t = t, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* 4000 failures of the shared key, none lost to a race: exactly at the limit. */
	assert_int_equal(throttle_wait_s(t, "addr:shared", T0), WINDOW);
	throttle_free(t);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_reached), cmocka_unit_test(test_window_expiry_resets),
		cmocka_unit_test(test_clear),	      cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
