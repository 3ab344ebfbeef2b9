/*
 * Unit tests for password.c: PBKDF2-SHA256 hashes that record their own iterations and
 * salt, verification against them (and against every way an encoding can be damaged),
 * and the rules for a new password.
 *
 * Hashes use PASSWORD_ITERATIONS_MIN and a few times that, so that ASan builds stay fast.
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

#include "limits_rsd.h"
#include "password.h"

#define PW "correct horse battery staple"

static void hash_ok(const char *pw, int iterations, char out[PASSWORD_HASH_BYTES_MAX + 1])
{
	assert_int_equal(password_hash(pw, iterations, out, PASSWORD_HASH_BYTES_MAX + 1), RSD_OK);
}

static void test_round_trip(void **state)
{
	(void)state;
	char enc[PASSWORD_HASH_BYTES_MAX + 1];
	hash_ok(PW, PASSWORD_ITERATIONS_MIN, enc);
	assert_true(password_verify(PW, enc));
	/* "pbkdf2-sha256$i=1000$" + 16 bytes of salt + "$" + 32 bytes of hash, base64url. */
	assert_int_equal(strncmp(enc, "pbkdf2-sha256$i=1000$", 21), 0);
	const char *salt = enc + 21, *dollar = strchr(salt, '$');
	assert_non_null(dollar);
	assert_int_equal(dollar - salt, 22);
	assert_int_equal(strlen(dollar + 1), 43);
	assert_null(strchr(salt, '=')); /* no padding */
	/* A fresh salt each time: the same password never hashes the same twice. */
	char again[PASSWORD_HASH_BYTES_MAX + 1];
	hash_ok(PW, PASSWORD_ITERATIONS_MIN, again);
	assert_string_not_equal(enc, again);
	assert_true(password_verify(PW, again));
	/* Any bytes, including multi-byte UTF-8, and the empty password. */
	hash_ok("pässwörd-密码-🔑", PASSWORD_ITERATIONS_MIN, enc);
	assert_true(password_verify("pässwörd-密码-🔑", enc));
	assert_false(password_verify("passwörd-密码-🔑", enc));
	hash_ok("", PASSWORD_ITERATIONS_MIN, enc);
	assert_true(password_verify("", enc));
	assert_false(password_verify(" ", enc));
}

static void test_wrong_password(void **state)
{
	(void)state;
	char enc[PASSWORD_HASH_BYTES_MAX + 1];
	hash_ok(PW, PASSWORD_ITERATIONS_MIN, enc);
	const char *wrong[] = {"",
			       "correct horse battery stapl",
			       "correct horse battery staple ",
			       "Correct horse battery staple",
			       "correct horse battery staple\n",
			       "correct horse battery stapleX"};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		if (password_verify(wrong[i], enc))
			fail_msg("accepted '%s'", wrong[i]);
	/* The encoding is not the password. */
	assert_false(password_verify(enc, enc));
}

static void test_iterations_recorded(void **state)
{
	(void)state;
	char a[PASSWORD_HASH_BYTES_MAX + 1], b[PASSWORD_HASH_BYTES_MAX + 1];
	hash_ok(PW, 1000, a);
	hash_ok(PW, 2000, b);
	assert_non_null(strstr(a, "$i=1000$"));
	assert_non_null(strstr(b, "$i=2000$"));
	/* Each verifies with its own cost, whatever cost is configured now. */
	assert_true(password_verify(PW, a));
	assert_true(password_verify(PW, b));
	/* The cost is part of what is checked: another count gives another hash. */
	char c[PASSWORD_HASH_BYTES_MAX + 1];
	snprintf(c, sizeof(c), "pbkdf2-sha256$i=1000$%s", strstr(b, "$i=2000$") + 8);
	assert_false(password_verify(PW, c));
	snprintf(c, sizeof(c), "pbkdf2-sha256$i=2000$%s", strstr(a, "$i=1000$") + 8);
	assert_false(password_verify(PW, c));
	snprintf(c, sizeof(c), "pbkdf2-sha256$i=1001$%s", strstr(a, "$i=1000$") + 8);
	assert_false(password_verify(PW, c));
	/* Out of range. */
	assert_int_equal(password_hash(PW, PASSWORD_ITERATIONS_MIN - 1, c, sizeof(c)), RSD_EINVAL);
	assert_int_equal(password_hash(PW, 0, c, sizeof(c)), RSD_EINVAL);
	assert_int_equal(password_hash(PW, -1000, c, sizeof(c)), RSD_EINVAL);
	assert_int_equal(password_hash(PW, PASSWORD_ITERATIONS_MAX + 1, c, sizeof(c)), RSD_EINVAL);
	/* An output buffer too small for the encoding. */
	assert_int_equal(password_hash(PW, 1000, c, 40), RSD_EINVAL);
}

static void test_tampered_encodings(void **state)
{
	(void)state;
	char enc[PASSWORD_HASH_BYTES_MAX + 1];
	hash_ok(PW, PASSWORD_ITERATIONS_MIN, enc);
	const char *rest = enc + strlen("pbkdf2-sha256$i=1000$"); /* "SALT$HASH" */
	const char *hash = strchr(rest, '$') + 1;
	char salt[64];
	snprintf(salt, sizeof(salt), "%.*s", (int)(hash - 1 - rest), rest);
	char bad[32][256];
	int n = 0;
	/* Scheme and parameters. */
	snprintf(bad[n++], 256, "pbkdf2-sha512$i=1000$%s", rest);
	snprintf(bad[n++], 256, "PBKDF2-SHA256$i=1000$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$n=1000$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=abc$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000x$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=-1000$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=999$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=99999999999999999999999$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=10000001$%s", rest);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000%s", rest);
	/* Salt. */
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$$%s", hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$AAAAAAA$%s", hash); /* 5 bytes */
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s==$%s", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%.21s$%s", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%c%s$%s", salt[0] == 'A' ? 'B' : 'A',
		 salt + 1, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s", hash); /* no salt part */
	/* Hash. */
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$", salt);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%.42s", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%sA", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%s=", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%s$", salt, hash);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%c%s", salt, hash[0] == 'A' ? 'B' : 'A',
		 hash + 1);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%.21s%c%s", salt, hash,
		 hash[21] == 'A' ? 'B' : 'A', hash + 22);
	snprintf(bad[n++], 256, "pbkdf2-sha256$i=1000$%s$%sAAAA", salt, hash);
	/* Whole. */
	snprintf(bad[n++], 256, "%s", "");
	snprintf(bad[n++], 256, "%s", "pbkdf2-sha256$i=1000");
	snprintf(bad[n++], 256, "%s", "$");
	snprintf(bad[n++], 256, "%s", PW);
	snprintf(bad[n++], 256, " %s", enc);
	for (int i = 0; i < n; i++)
		if (password_verify(PW, bad[i]))
			fail_msg("accepted encoding '%s'", bad[i]);
	/* A hash of the same length but its last character's slack bits set: a second spelling
	 * of the same bytes, refused like any other damage. */
	char c[256];
	snprintf(c, sizeof(c), "%s", enc);
	char *last = c + strlen(c) - 1;
	*last = *last == 'z' ? '0' : *last == 'Z' ? 'a' : *last == '9' ? '-' : (char)(*last + 1);
	assert_false(password_verify(PW, c));
	/* The untouched encoding still verifies. */
	assert_true(password_verify(PW, enc));
}

static void test_acceptable(void **state)
{
	(void)state;
	struct rsd_fail f;
	char long_ok[PASSWORD_BYTES_MAX + 1], too_long[PASSWORD_BYTES_MAX + 2];
	memset(long_ok, 'a', PASSWORD_BYTES_MAX);
	long_ok[PASSWORD_BYTES_MAX] = '\0';
	memset(too_long, 'a', PASSWORD_BYTES_MAX + 1);
	too_long[PASSWORD_BYTES_MAX + 1] = '\0';
	const char *good[] = {
		"12345678",
		PW,
		"éééééééé",	    /* 8 characters, 16 bytes */
		"密码密码密码密码", /* 8 characters */
		"🔑🔑🔑🔑🔑🔑🔑🔑",
		"with spaces inside",
		"~!@#$%^&*()_+{}|:\"<>?",
		long_ok,
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&f, 0, sizeof(f));
		if (password_acceptable(good[i], &f) != RSD_OK)
			fail_msg("refused #%zu: %s", i, f.detail);
	}
	const char *bad[] = {
		"",
		"1234567",	  /* too short */
		"ééééééé",	  /* 7 characters in 14 bytes: still too short */
		"密码密码密码密", /* 7 characters in 21 bytes */
		"password\n",	  /* control characters */
		"pass\tword",
		"\x1b[31mpassword",
		"password\x7f",
		"\x01\x02\x03\x04\x05\x06\x07\x08",
		"password\xff",		    /* not UTF-8 */
		"password\xc3",		    /* truncated sequence */
		"\xc0\xafpassword",	    /* overlong '/' */
		"password\xed\xa0\x80",	    /* a UTF-16 surrogate */
		"password\xf4\x90\x80\x80", /* beyond U+10FFFF */
		"\x80\x80\x80\x80\x80\x80\x80\x80",
		too_long,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&f, 0, sizeof(f));
		if (password_acceptable(bad[i], &f) != RSD_EINVAL)
			fail_msg("accepted #%zu", i);
		assert_string_equal(f.field, "password");
		assert_true(f.detail[0] != '\0');
	}
	/* f may be NULL. */
	assert_int_equal(password_acceptable("short", NULL), RSD_EINVAL);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_iterations_recorded),
		cmocka_unit_test(test_tampered_encodings),
		cmocka_unit_test(test_acceptable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
