/* Unit tests for config.c: the key table, the three sources, their precedence and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "rsd.h"

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 8080);
	assert_string_equal(c.data_dir, "./data");
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.body_bytes_max, 1048576);
	assert_string_equal(config_origin(&c, "listen"), "default");
}

static void test_file_values_and_comments(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	config_defaults(&c);
	const char *text =
		"# a comment\n\n  listen = [::1]:9000  # trailing comment\n"
		"data_dir = \"/var/lib/x # not a comment\"\nworkers=3\r\nlog_level = debug\n";
	assert_int_equal(config_parse_text(&c, text, strlen(text), "f.conf", err, sizeof(err)),
			 RSD_OK);
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 9000);
	assert_string_equal(c.data_dir, "/var/lib/x # not a comment");
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.log_level, LOGGER_DEBUG);
	assert_string_equal(config_origin(&c, "workers"), "f.conf:5");
}

static void expect_file_error(const char *text, const char *want)
{
	struct config c;
	char err[512];
	config_defaults(&c);
	assert_int_equal(config_parse_text(&c, text, strlen(text), "/etc/r.conf", err, sizeof(err)),
			 RSD_EINVAL);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
	assert_null(strchr(err, '\n'));
}

static void test_file_errors_name_file_line_and_key(void **state)
{
	(void)state;
	expect_file_error("listen = 127.0.0.1:1\nbogus = 1\n",
			  "/etc/r.conf:2: unknown key 'bogus'");
	expect_file_error("\n\nworkers = abc\n",
			  "/etc/r.conf:3: key 'workers': expected an integer");
	expect_file_error("workers = 65\n", "key 'workers'");
	expect_file_error("listen = nocolon\n", "/etc/r.conf:1: key 'listen'");
	expect_file_error("listen 127.0.0.1:1\n", "/etc/r.conf:1: key 'listen': expected '='");
	expect_file_error("node_id = Upper\n", "key 'node_id'");
	expect_file_error("log_level = loud\n", "key 'log_level'");
	expect_file_error("data_dir = \"open\n", "unterminated");
}

static void test_precedence_flag_over_env_over_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/resortd-cfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/r.conf", dir);
	FILE *f = fopen(path, "w");
	fputs("workers = 1\nlisten = 127.0.0.1:1111\ndata_dir = /from/file\n", f);
	fclose(f);
	char *envp[] = {"RESORTD_WORKERS=2", "RESORTD_LISTEN=127.0.0.1:2222", "OTHER=x", NULL};
	char *argv[] = {"--config", path, "--workers=3", "--demo", NULL};
	static const char *const caller[] = {"--demo", NULL};
	struct config c;
	char err[512];
	assert_int_equal(config_load(&c, 4, argv, envp, caller, err, sizeof(err)), RSD_OK);
	assert_int_equal(c.workers, 3);		       /* flag */
	assert_int_equal(c.listen_port, 2222);	       /* environment */
	assert_string_equal(c.data_dir, "/from/file"); /* file */
	assert_string_equal(config_origin(&c, "workers"), "flag --workers");
	assert_string_equal(config_origin(&c, "listen"), "environment RESORTD_LISTEN");
	remove(path);
	rmdir(dir);
}

static void test_flag_and_env_errors(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	char *argv1[] = {"--data-dir", NULL};
	assert_int_equal(config_load(&c, 1, argv1, NULL, NULL, err, sizeof(err)), RSD_EINVAL);
	assert_non_null(strstr(err, "flag --data-dir: missing value"));
	char *argv2[] = {"--no-such-key=1", NULL};
	assert_int_equal(config_load(&c, 1, argv2, NULL, NULL, err, sizeof(err)), RSD_EINVAL);
	assert_non_null(strstr(err, "unknown key 'no_such_key'"));
	char *envp[] = {"RESORTD_WORKERS=many", NULL};
	assert_int_equal(config_load(&c, 0, NULL, envp, NULL, err, sizeof(err)), RSD_EINVAL);
	assert_non_null(strstr(err, "environment RESORTD_WORKERS: key 'workers'"));
	char *argv3[] = {"--config", "/nonexistent/r.conf", NULL};
	assert_int_equal(config_load(&c, 2, argv3, NULL, NULL, err, sizeof(err)), RSD_EINVAL);
	assert_non_null(strstr(err, "/nonexistent/r.conf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_values_and_comments),
		cmocka_unit_test(test_file_errors_name_file_line_and_key),
		cmocka_unit_test(test_precedence_flag_over_env_over_file),
		cmocka_unit_test(test_flag_and_env_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
