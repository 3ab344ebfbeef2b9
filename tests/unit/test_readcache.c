/* Unit tests for readcache.c: hits only at the generation an entry was filled at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "readcache.h"

static void test_hit_miss_and_generation(void **state)
{
	(void)state;
	struct readcache *c = readcache_new(4);
	assert_null(readcache_get(c, "rs_1", 1));
	readcache_put(c, "rs_1", 1, "\"1\"", "{\"a\":1}", 7);
	const struct readcache_entry *e = readcache_get(c, "rs_1", 1);
	assert_non_null(e);
	assert_int_equal(e->len, 7);
	assert_memory_equal(e->body, "{\"a\":1}", 7);
	assert_string_equal(e->etag, "\"1\"");
	/* Any later projection makes it stale. */
	assert_null(readcache_get(c, "rs_1", 2));
	assert_null(readcache_get(c, "rs_2", 1));
	readcache_free(c);
}

static void test_collisions_replace_never_confuse(void **state)
{
	(void)state;
	struct readcache *c = readcache_new(2);
	char key[16];
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		readcache_put(c, key, 7, "\"1\"", key, strlen(key));
	}
	int hits = 0;
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		const struct readcache_entry *e = readcache_get(c, key, 7);
		if (e) {
			hits++;
			assert_int_equal(e->len, strlen(key));
			assert_memory_equal(e->body, key, e->len);
		}
	}
	assert_true(hits >= 1 && hits <= 4);
	readcache_free(c);
	readcache_free(NULL);
}

/* Keys that share a set all stay while they fit in its ways; past that the least recently
 * used one goes, not the one just asked for. */
static void test_a_set_keeps_its_recently_used_keys(void **state)
{
	(void)state;
	struct readcache *c = readcache_new(4); /* one set of 4 */
	char key[16];
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		readcache_put(c, key, 1, "", key, strlen(key));
	}
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_non_null(readcache_get(c, key, 1));
	}
	assert_non_null(readcache_get(c, "k0", 1)); /* k1 is now the least recently used */
	readcache_put(c, "k4", 1, "", "k4", 2);
	assert_null(readcache_get(c, "k1", 1));
	assert_non_null(readcache_get(c, "k0", 1));
	assert_non_null(readcache_get(c, "k4", 1));
	readcache_put(c, "k4", 2, "", "k4b", 3); /* the same key replaces itself */
	assert_non_null(readcache_get(c, "k2", 1));
	assert_non_null(readcache_get(c, "k3", 1));
	assert_non_null(readcache_get(c, "k0", 1));
	const struct readcache_entry *e = readcache_get(c, "k4", 2);
	assert_non_null(e);
	assert_memory_equal(e->body, "k4b", 3);
	readcache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss_and_generation),
		cmocka_unit_test(test_collisions_replace_never_confuse),
		cmocka_unit_test(test_a_set_keeps_its_recently_used_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
