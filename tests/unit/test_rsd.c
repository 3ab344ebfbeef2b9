/* Unit tests for rsd.c: UTF-8 validation, big-endian keys, ids (random and time-ordered),
 * time formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "limits_rsd.h"
#include "rsd.h"

static void test_utf8(void **state)
{
	(void)state;
	assert_int_equal(rsd_utf8_chars("", 0), 0);
	assert_int_equal(rsd_utf8_chars("abc", 3), 3);
	assert_int_equal(rsd_utf8_chars("오션뷰", strlen("오션뷰")), 3);
	assert_int_equal(rsd_utf8_chars("\xf0\x9f\x8f\x96", 4), 1); /* U+1F3D6 */
	const char *bad[] = {
		"\x80",		    /* lone continuation */
		"\xc3",		    /* truncated */
		"\xe2\x82",	    /* truncated */
		"\xc0\xaf",	    /* overlong '/' */
		"\xed\xa0\x80",	    /* surrogate U+D800 */
		"\xf4\x90\x80\x80", /* past U+10FFFF */
		"\xff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rsd_utf8_chars(bad[i], strlen(bad[i])), -1);
}

static void test_big_endian_sorts_as_numbers(void **state)
{
	(void)state;
	unsigned char a[8], b[8];
	rsd_put_be64(a, 255);
	rsd_put_be64(b, 256);
	assert_true(memcmp(a, b, 8) < 0);
	assert_int_equal(rsd_get_be64(b), 256);
	rsd_put_be64(a, UINT64_MAX);
	assert_int_equal(rsd_get_be64(a), UINT64_MAX);
	unsigned char c[4], d[2];
	rsd_put_be32(c, 0x01020304);
	assert_int_equal(c[0], 1);
	assert_int_equal(rsd_get_be32(c), 0x01020304);
	rsd_put_be16(d, 0xbeef);
	assert_int_equal(rsd_get_be16(d), 0xbeef);
}

static void test_ids_are_well_formed_and_distinct(void **state)
{
	(void)state;
	char prev[32] = "", id[32];
	for (int i = 0; i < 1000; i++) {
		rsd_id_new("rs_", id, sizeof(id));
		assert_int_equal(strlen(id), 3 + 16);
		assert_int_equal(strspn(id + 3, "0123456789abcdef"), 16);
		assert_string_not_equal(id, prev);
		memcpy(prev, id, sizeof(id));
	}
}

/* "bk_" + 16 hex digits of (ms << 16 | sequence) + 16 hex digits of randomness. */
#define ORDERED_ID_BYTES (3 + 32)

static uint64_t hex64(const char *s)
{
	char buf[17];
	memcpy(buf, s, 16);
	buf[16] = '\0';
	return strtoull(buf, NULL, 16);
}

static void test_ordered_ids_are_well_formed(void **state)
{
	(void)state;
	char id[ENTITY_ID_BYTES_MAX + 1];
	uint64_t before = rsd_now_ms();
	rsd_id_ordered("bk_", id, sizeof(id));
	uint64_t after = rsd_now_ms();
	assert_int_equal(strlen(id), ORDERED_ID_BYTES);
	assert_true(strlen(id) <= ENTITY_ID_BYTES_MAX);
	assert_memory_equal(id, "bk_", 3);
	assert_int_equal(strspn(id + 3, "0123456789abcdef"), 32);
	/* The time part is the creation time in ms (this test makes far fewer than 65,536 ids
	 * per ms, so the sequence never borrows from the next ms). */
	uint64_t ms = hex64(id + 3) >> 16;
	assert_true(ms >= before && ms <= after);
	/* The smallest buffer that fits. */
	char tight[ORDERED_ID_BYTES + 1];
	rsd_id_ordered("bk_", tight, sizeof(tight));
	assert_int_equal(strlen(tight), ORDERED_ID_BYTES);
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_ordered_ids_increase_and_differ(void **state)
{
	(void)state;
	enum { N = 100000 };
	char(*ids)[ORDERED_ID_BYTES + 1] = malloc(N * sizeof(*ids));
	for (int i = 0; i < N; i++) {
		rsd_id_ordered("ho_", ids[i], sizeof(ids[i]));
		/* Strictly increasing in byte order, as LMDB and SQLite compare them, even when
		 * many fall in one ms. */
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
	/* The random parts differ: 64 bits each, so a repeat among 100,000 would be a bug. */
	qsort(ids, N, sizeof(*ids), cmp_ids);
	for (int i = 0; i < N; i++)
		memmove(ids[i], ids[i] + 3 + 16, 17);
	qsort(ids, N, sizeof(*ids), cmp_ids);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

enum { ID_THREADS = 4, IDS_PER_THREAD = 20000 };

static void *make_ids(void *arg)
{
	char(*ids)[ORDERED_ID_BYTES + 1] = arg;
	for (int i = 0; i < IDS_PER_THREAD; i++)
		rsd_id_ordered("bk_", ids[i], sizeof(ids[i]));
	return NULL;
}

static void test_ordered_ids_across_threads(void **state)
{
	(void)state;
	enum { N = ID_THREADS * IDS_PER_THREAD };
	char(*ids)[ORDERED_ID_BYTES + 1] = malloc(N * sizeof(*ids));
	pthread_t t[ID_THREADS];
	for (int i = 0; i < ID_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_ids, ids + i * IDS_PER_THREAD),
				 0);
	for (int i = 0; i < ID_THREADS; i++)
		pthread_join(t[i], NULL);
	/* Each thread's ids increase ... */
	for (int i = 0; i < N; i++)
		if (i % IDS_PER_THREAD != 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	/* ... and no two threads got the same time part: the sequence is shared. */
	for (int i = 0; i < N; i++)
		ids[i][3 + 16] = '\0';
	qsort(ids, N, sizeof(*ids), cmp_ids);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

static void test_time_format(void **state)
{
	(void)state;
	char out[32];
	rsd_time_format(1764072000123ULL, out, sizeof(out)); /* 2025-11-25T12:00:00.123Z */
	assert_string_equal(out, "2025-11-25T12:00:00.123Z");
	struct rsd_fail f;
	assert_int_equal(rsd_failf(&f, RSD_EINVAL, "name", "bad %d", 7), RSD_EINVAL);
	assert_string_equal(f.field, "name");
	assert_string_equal(f.detail, "bad 7");
	assert_int_equal(rsd_failf(NULL, RSD_EIO, "", "x"), RSD_EIO);
	assert_string_equal(rsd_strerror(RSD_EFULL), "storage full");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_big_endian_sorts_as_numbers),
		cmocka_unit_test(test_ids_are_well_formed_and_distinct),
		cmocka_unit_test(test_ordered_ids_are_well_formed),
		cmocka_unit_test(test_ordered_ids_increase_and_differ),
		cmocka_unit_test(test_ordered_ids_across_threads),
		cmocka_unit_test(test_time_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
