/* Unit tests for rsd.c: UTF-8 validation, big-endian keys, ids, time formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

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
		cmocka_unit_test(test_time_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
