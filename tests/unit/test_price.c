/*
 * Unit tests for price.c: dates as day numbers (checked against a calendar walked one day at
 * a time), the decoding of rate-plan rules with the exact field of every error, and the
 * resolution of layered rules into one price per date.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"
#include "price.h"

enum { MON, TUE, WED, THU, FRI, SAT, SUN };

static int32_t day_of(const char *date)
{
	int32_t day = INT32_MIN;
	if (price_parse_date(date, &day) != RSD_OK)
		fail_msg("could not parse %s", date);
	return day;
}

static void test_parse_known_dates(void **state)
{
	(void)state;
	assert_int_equal(day_of("1970-01-01"), 0);
	assert_int_equal(day_of("1970-01-02"), 1);
	assert_int_equal(day_of("1970-12-31"), 364);
	assert_int_equal(day_of("1971-01-01"), 365);
	assert_int_equal(day_of("2000-03-01"), 11017);
	assert_int_equal(day_of("2026-11-25"), 20782);
	assert_int_equal(day_of("2027-01-01"), 20819);
	assert_int_equal(day_of("9999-12-31"), 2932896);
}

static void test_leap_years(void **state)
{
	(void)state;
	int32_t day = 7;
	assert_int_equal(day_of("2028-02-29"), 21243);
	assert_int_equal(day_of("2028-03-01") - day_of("2028-02-28"), 2);
	assert_int_equal(day_of("2000-02-29"), 11016);
	assert_int_equal(day_of("2400-02-29") + 1, day_of("2400-03-01"));
	assert_int_equal(day_of("2027-03-01") - day_of("2027-02-28"), 1);
	const char *bad[] = {"2027-02-29", "2100-02-29", "1900-02-29", "2028-02-30",
			     "2027-04-31", "2027-06-31", "2027-09-31", "2027-11-31"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (price_parse_date(bad[i], &day) != RSD_EINVAL)
			fail_msg("accepted %s", bad[i]);
	/* A refused date leaves the output alone. */
	assert_int_equal(day, 7);
}

static void test_refuses_bad_shapes(void **state)
{
	(void)state;
	const char *bad[] = {"2027-1-01",   "2027-01-1",   "2027-01-01x", "",
			     " 2027-01-01", "2027-01-01 ", "2027/01/01",  "20270101",
			     "2027-01",	    "27-01-01",	   "+2027-01-01", "2027-+1-01",
			     "2027-01--1",  "2027-0a-01",  "1969-12-31",  "0000-01-01",
			     "10000-01-01", "2027-13-01",  "2027-00-10",  "2027-01-00",
			     "2027-01-32",  "2027-12-32",  "-027-01-01",  "2027-01-01\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int32_t day = 7;
		if (price_parse_date(bad[i], &day) != RSD_EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(day, 7);
	}
	int32_t day;
	assert_int_equal(price_parse_date(NULL, &day), RSD_EINVAL);
	assert_int_equal(price_parse_date("1970-01-01", &day), RSD_OK);
	assert_int_equal(price_parse_date("9999-12-31", &day), RSD_OK);
}

/*
 * Walks the calendar one day at a time from 1970-01-01 to 9999-12-31 with its own month
 * lengths and checks that every day formats to the walked date, parses back to the same
 * number, and falls on the next weekday.
 */
static void test_round_trip_every_day(void **state)
{
	(void)state;
	int y = 1970, m = 1, d = 1, weekday = THU;
	char expect[48], got[11];
	int32_t last = day_of("9999-12-31");
	for (int32_t day = 0; day <= last; day++) {
		snprintf(expect, sizeof(expect), "%04d-%02d-%02d", y, m, d);
		price_format_date(day, got);
		if (strcmp(got, expect) != 0)
			fail_msg("day %d formats as %s, not %s", day, got, expect);
		int32_t back = -1;
		if (price_parse_date(got, &back) != RSD_OK || back != day)
			fail_msg("%s parses as %d, not %d", got, back, day);
		if (price_weekday(day) != weekday)
			fail_msg("%s is weekday %d, not %d", got, price_weekday(day), weekday);

		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		int month_days = m == 2					   ? 28 + leap
				 : (m == 4 || m == 6 || m == 9 || m == 11) ? 30
									   : 31;
		weekday = (weekday + 1) % 7;
		if (++d > month_days) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	assert_int_equal(y, 10000);
}

static void test_format_outside_four_digit_years(void **state)
{
	(void)state;
	char out[11];
	price_format_date(-1, out);
	assert_string_equal(out, "1969-12-31");
	price_format_date(-719528, out);
	assert_string_equal(out, "0000-01-01");
	/* Beyond what fits in out, the date saturates instead of overflowing. */
	price_format_date(2932897, out);
	assert_string_equal(out, "9999-12-31");
	price_format_date(INT32_MAX, out);
	assert_string_equal(out, "9999-12-31");
	price_format_date(INT32_MIN, out);
	assert_string_equal(out, "0000-01-01");
}

static void test_weekdays_of_known_dates(void **state)
{
	(void)state;
	assert_int_equal(price_weekday(0), THU);
	assert_int_equal(price_weekday(day_of("2026-11-25")), WED);
	assert_int_equal(price_weekday(day_of("2000-01-01")), SAT);
	assert_int_equal(price_weekday(day_of("2027-03-06")), SAT);
	assert_int_equal(price_weekday(day_of("9999-12-31")), FRI);
	assert_int_equal(price_weekday(-1), WED);
	assert_int_equal(price_weekday(-3), MON);
	assert_int_equal(price_weekday(-4), SUN);
	assert_int_equal(price_weekday(INT32_MIN), (int)(((int64_t)INT32_MIN + 3) % 7 + 7) % 7);
	assert_int_equal(price_weekday(INT32_MAX), (int)(((int64_t)INT32_MAX + 3) % 7));
}

/* Parses text strictly and decodes it as a rules array; f->field is "" on success. */
static int decode(const char *text, struct price_rule *rules, size_t *n, struct rsd_fail *f)
{
	cJSON *root = NULL;
	memset(f, 0, sizeof(*f));
	if (json_parse_strict(text, strlen(text), &root, f) != RSD_OK)
		fail_msg("test input is not JSON: %s", text);
	int rc = price_rules_decode(root, rules, n, f);
	cJSON_Delete(root);
	return rc;
}

/* Expects text to be refused with exactly field. */
static void refused(const char *text, const char *field)
{
	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n = 99;
	if (decode(text, rules, &n, &f) != RSD_EINVAL)
		fail_msg("accepted %s", text);
	if (strcmp(f.field, field) != 0)
		fail_msg("%s: field '%s', expected '%s' (%s)", text, f.field, field, f.detail);
	assert_true(f.detail[0] != '\0');
	assert_int_equal(n, 0);
}

static void test_decode_valid_rules(void **state)
{
	(void)state;
	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	assert_int_equal(
		decode("[{\"from\":\"2027-01-01\",\"to\":\"2027-12-31\",\"amount\":100000},"
		       " {\"amount\":0,\"weekdays\":[\"sun\",\"sat\"],"
		       "  \"to\":\"2027-01-01\",\"from\":\"2027-01-01\"},"
		       " {\"from\":\"2027-01-01\",\"to\":\"2027-02-01\",\"amount\":1000000000000,"
		       "  \"weekdays\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\",\"sat\",\"sun\"]},"
		       " {\"from\":\"2027-01-01\",\"to\":\"2027-02-01\",\"amount\":5.0,"
		       "  \"weekdays\":[\"wed\"]}]",
		       rules, &n, &f),
		RSD_OK);
	assert_int_equal(n, 4);
	assert_int_equal(rules[0].from_day, day_of("2027-01-01"));
	assert_int_equal(rules[0].to_day, day_of("2027-12-31"));
	assert_int_equal(rules[0].weekdays, PRICE_ALL_WEEKDAYS);
	assert_int_equal(rules[0].amount, 100000);
	assert_int_equal(rules[1].from_day, rules[1].to_day);
	assert_int_equal(rules[1].weekdays, (1 << SAT) | (1 << SUN));
	assert_int_equal(rules[1].amount, 0);
	assert_int_equal(rules[2].weekdays, PRICE_ALL_WEEKDAYS);
	assert_int_equal(rules[2].amount, PRICE_AMOUNT_MAX);
	assert_int_equal(rules[3].weekdays, 1 << WED);
	assert_int_equal(rules[3].amount, 5);
}

/* Returns a rules array of count copies of one rule; the caller frees it. */
static char *rules_text(int count)
{
	static const char rule[] = "{\"from\":\"2027-01-01\",\"to\":\"2027-01-02\",\"amount\":1}";
	size_t cap = (size_t)count * sizeof(rule) + 3;
	char *buf = malloc(cap), *p = buf;
	assert_non_null(buf);
	*p++ = '[';
	for (int i = 0; i < count; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, rule, sizeof(rule) - 1);
		p += sizeof(rule) - 1;
	}
	*p++ = ']';
	*p = '\0';
	return buf;
}

static void test_decode_rules_array(void **state)
{
	(void)state;
	refused("{}", "rules");
	refused("null", "rules");
	refused("\"2027-01-01\"", "rules");
	refused("[]", "rules");
	char *text = rules_text(PRICE_RULES_MAX + 1);
	refused(text, "rules");
	free(text);

	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	text = rules_text(PRICE_RULES_MAX);
	assert_int_equal(decode(text, rules, &n, &f), RSD_OK);
	assert_int_equal(n, PRICE_RULES_MAX);
	assert_int_equal(rules[PRICE_RULES_MAX - 1].to_day, day_of("2027-01-02"));
	free(text);

	assert_int_equal(price_rules_decode(NULL, rules, &n, NULL), RSD_EINVAL);
	refused("[{\"from\":\"2027-01-01\",\"to\":\"2027-01-02\",\"amount\":1}, 5]", "rules[1]");
	refused("[[]]", "rules[0]");
	refused("[null]", "rules[0]");
}

#define R0 "\"from\":\"2027-01-01\",\"to\":\"2027-01-31\",\"amount\":1"

static void test_decode_members(void **state)
{
	(void)state;
	refused("[{" R0 ",\"price\":5}]", "rules[0].price");
	refused("[{" R0 "},{" R0 "},{" R0 ",\"From\":\"2027-01-01\"}]", "rules[2].From");
	refused("[{" R0 ",\"weekday\":[\"mon\"]}]", "rules[0].weekday");
	refused("[{\"to\":\"2027-01-31\",\"amount\":1}]", "rules[0].from");
	refused("[{\"from\":\"2027-01-31\",\"amount\":1}]", "rules[0].to");
	refused("[{" R0 "},{\"from\":\"2027-01-01\",\"to\":\"2027-01-31\"}]", "rules[1].amount");
	/* An unknown member is named before a missing one. */
	refused("[{\"x\":1}]", "rules[0].x");

	/* A very long unknown name is cut to at most 48 bytes on a character boundary: after
	 * "x", 15 three-byte characters fit and the 16th would be split. */
	char text[512], name[128] = "x", field[RSD_FIELD_BYTES_MAX];
	size_t len = 1;
	for (int i = 0; i < 30; i++, len += 3)
		memcpy(name + len, "한", 4);
	snprintf(text, sizeof(text), "[{" R0 ",\"%s\":1}]", name);
	snprintf(field, sizeof(field), "rules[0].%.46s", name);
	refused(text, field);
	assert_int_equal(rsd_utf8_chars(field, strlen(field)), 9 + 1 + 15);
}

static void test_decode_dates(void **state)
{
	(void)state;
	refused("[{\"from\":\"2027-02-29\",\"to\":\"2027-03-31\",\"amount\":1}]", "rules[0].from");
	refused("[{\"from\":20270101,\"to\":\"2027-03-31\",\"amount\":1}]", "rules[0].from");
	refused("[{\"from\":null,\"to\":\"2027-03-31\",\"amount\":1}]", "rules[0].from");
	refused("[{\"from\":\"1969-12-31\",\"to\":\"2027-03-31\",\"amount\":1}]", "rules[0].from");
	refused("[{" R0 "},{" R0 "},{\"from\":\"2027-01-01\",\"to\":\"2027-1-31\",\"amount\":1}]",
		"rules[2].to");
	refused("[{\"from\":\"2027-01-01\",\"to\":[\"2027-01-31\"],\"amount\":1}]", "rules[0].to");
	/* The end must not come before the start. */
	refused("[{" R0 "},{\"from\":\"2027-01-02\",\"to\":\"2027-01-01\",\"amount\":1}]",
		"rules[1].to");

	/* to - from may be PRICE_RULE_DAYS_MAX days, not one more. */
	char text[256], to[11];
	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	price_format_date(day_of("2027-01-01") + PRICE_RULE_DAYS_MAX, to);
	snprintf(text, sizeof(text), "[{\"from\":\"2027-01-01\",\"to\":\"%s\",\"amount\":1}]", to);
	assert_int_equal(decode(text, rules, &n, &f), RSD_OK);
	assert_int_equal(rules[0].to_day - rules[0].from_day, PRICE_RULE_DAYS_MAX);
	price_format_date(day_of("2027-01-01") + PRICE_RULE_DAYS_MAX + 1, to);
	snprintf(text, sizeof(text), "[{\"from\":\"2027-01-01\",\"to\":\"%s\",\"amount\":1}]", to);
	refused(text, "rules[0].to");
	refused("[{\"from\":\"1970-01-01\",\"to\":\"9999-12-31\",\"amount\":1}]", "rules[0].to");
	assert_int_equal(decode("[{\"from\":\"2027-01-01\",\"to\":\"2027-01-01\",\"amount\":1}]",
				rules, &n, &f),
			 RSD_OK);
}

#define D0 "\"from\":\"2027-01-01\",\"to\":\"2027-01-31\""

static void test_decode_amounts(void **state)
{
	(void)state;
	refused("[{" D0 ",\"amount\":1.5}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":1e300}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":-1}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":1000000000001}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":\"5\"}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":null}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":true}]", "rules[0].amount");
	refused("[{" D0 ",\"amount\":1},{" D0 ",\"amount\":9007199254740993}]", "rules[1].amount");

	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	assert_int_equal(decode("[{" D0 ",\"amount\":0},{" D0 ",\"amount\":1e12},{" D0
				",\"amount\":-0}]",
				rules, &n, &f),
			 RSD_OK);
	assert_int_equal(rules[0].amount, 0);
	assert_int_equal(rules[1].amount, PRICE_AMOUNT_MAX);
	assert_int_equal(rules[2].amount, 0);
}

#define A0 "\"from\":\"2027-01-01\",\"to\":\"2027-01-31\",\"amount\":1"

static void test_decode_weekdays(void **state)
{
	(void)state;
	refused("[{" A0 ",\"weekdays\":[]}]", "rules[0].weekdays");
	refused("[{" A0 ",\"weekdays\":\"mon\"}]", "rules[0].weekdays");
	refused("[{" A0 ",\"weekdays\":null}]", "rules[0].weekdays");
	refused("[{" A0 ",\"weekdays\":{\"mon\":true}}]", "rules[0].weekdays");
	refused("[{" A0 ",\"weekdays\":[\"mon\",\"Tue\"]}]", "rules[0].weekdays[1]");
	refused("[{" A0 ",\"weekdays\":[\"MON\"]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[\"monday\"]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[\"mo\"]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[\"\"]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[0]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[null]}]", "rules[0].weekdays[0]");
	refused("[{" A0 ",\"weekdays\":[\"sat\",\"sun\",\"sat\"]}]", "rules[0].weekdays[2]");
	refused("[{" A0 "},{" A0 ",\"weekdays\":[\"fri\",\"fri\"]}]", "rules[1].weekdays[1]");

	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	for (int w = 0; w < 7; w++) {
		char text[128];
		snprintf(text, sizeof(text), "[{" A0 ",\"weekdays\":[\"%s\"]}]", names[w]);
		assert_int_equal(decode(text, rules, &n, &f), RSD_OK);
		assert_int_equal(rules[0].weekdays, 1 << w);
	}
	assert_int_equal(decode("[{" A0 ",\"weekdays\":[\"fri\",\"mon\",\"wed\"]}]", rules, &n, &f),
			 RSD_OK);
	assert_int_equal(rules[0].weekdays, (1 << MON) | (1 << WED) | (1 << FRI));
}

static struct price_rule rule(const char *from, const char *to, uint8_t weekdays, int64_t amount)
{
	struct price_rule r = {day_of(from), day_of(to), weekdays, amount};
	return r;
}

/* The price price_resolve gives date within [from, to]. */
static int64_t price_on(const struct price_rule *rules, size_t n, const char *from, const char *to,
			const char *date)
{
	int32_t lo = day_of(from), hi = day_of(to);
	int64_t *out = malloc(sizeof(int64_t) * (size_t)(hi - lo + 1));
	assert_non_null(out);
	price_resolve(rules, n, lo, hi, out);
	int64_t v = out[day_of(date) - lo];
	free(out);
	return v;
}

#define WEEKEND ((1 << SAT) | (1 << SUN))

static void test_last_rule_wins(void **state)
{
	(void)state;
	const struct price_rule layered[] = {
		rule("2027-01-01", "2027-12-31", PRICE_ALL_WEEKDAYS, 10000),
		rule("2027-07-01", "2027-08-31", PRICE_ALL_WEEKDAYS, 15000),
		rule("2027-01-01", "2027-12-31", WEEKEND, 12000),
	};
	const char *from = "2027-01-01", *to = "2027-12-31";
	assert_int_equal(price_on(layered, 3, from, to, "2027-03-03"), 10000); /* Wednesday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-03-06"), 12000); /* Saturday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-03-07"), 12000); /* Sunday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-03-08"), 10000); /* Monday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-07-01"), 15000); /* Thursday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-07-10"), 12000); /* Saturday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-08-31"), 15000); /* Tuesday */
	assert_int_equal(price_on(layered, 3, from, to, "2027-09-01"), 10000);
	assert_int_equal(price_on(layered, 3, from, to, "2027-12-31"), 10000); /* Friday */

	/* A season listed after the weekend rule overrides it, weekends included. */
	const struct price_rule season_last[] = {layered[0], layered[2], layered[1]};
	assert_int_equal(price_on(season_last, 3, from, to, "2027-07-10"), 15000);
	assert_int_equal(price_on(season_last, 3, from, to, "2027-07-07"), 15000);
	assert_int_equal(price_on(season_last, 3, from, to, "2027-06-26"), 12000); /* Saturday */
	assert_int_equal(price_on(season_last, 3, from, to, "2027-09-04"), 12000); /* Saturday */
	assert_int_equal(price_on(season_last, 3, from, to, "2027-09-06"), 10000);

	/* A base rate listed last hides everything before it. */
	const struct price_rule base_last[] = {layered[1], layered[2], layered[0]};
	for (int32_t d = day_of(from); d <= day_of(to); d++) {
		int64_t v;
		price_resolve(base_last, 3, d, d, &v);
		assert_int_equal(v, 10000);
	}
}

static void test_weekday_masks(void **state)
{
	(void)state;
	/* 2027-03-01 is a Monday. */
	const struct price_rule rules[] = {
		rule("2027-03-01", "2027-03-14", 1 << MON, 100),
		rule("2027-03-01", "2027-03-14", (1 << WED) | (1 << SUN), 300),
	};
	int64_t out[14];
	price_resolve(rules, 2, day_of("2027-03-01"), day_of("2027-03-14"), out);
	const int64_t expect[14] = {100, -1, 300, -1, -1, -1, 300, 100, -1, 300, -1, -1, -1, 300};
	for (int i = 0; i < 14; i++)
		if (out[i] != expect[i])
			fail_msg("day %d: %lld, expected %lld", i, (long long)out[i],
				 (long long)expect[i]);

	/* The mask is read from each date's own weekday when the range starts mid-week. */
	price_resolve(rules, 2, day_of("2027-03-09"), day_of("2027-03-14"), out);
	assert_int_equal(out[0], -1);
	assert_int_equal(out[1], 300);
	assert_int_equal(out[5], 300);
}

static void test_uncovered_dates_and_ranges(void **state)
{
	(void)state;
	const struct price_rule rules[] = {
		rule("2027-01-10", "2027-01-12", PRICE_ALL_WEEKDAYS, 500),
		rule("2027-01-15", "2027-01-16", PRICE_ALL_WEEKDAYS, 700),
	};
	/* A range that starts before and ends after every rule, with a gap between them. */
	int64_t out[11];
	price_resolve(rules, 2, day_of("2027-01-08"), day_of("2027-01-18"), out);
	const int64_t expect[11] = {-1, -1, 500, 500, 500, -1, -1, 700, 700, -1, -1};
	for (int i = 0; i < 11; i++)
		assert_int_equal(out[i], expect[i]);

	/* A single day: covered, uncovered, on each edge of a rule. */
	int64_t v = 0;
	price_resolve(rules, 2, day_of("2027-01-11"), day_of("2027-01-11"), &v);
	assert_int_equal(v, 500);
	price_resolve(rules, 2, day_of("2027-01-10"), day_of("2027-01-10"), &v);
	assert_int_equal(v, 500);
	price_resolve(rules, 2, day_of("2027-01-16"), day_of("2027-01-16"), &v);
	assert_int_equal(v, 700);
	price_resolve(rules, 2, day_of("2027-01-13"), day_of("2027-01-13"), &v);
	assert_int_equal(v, -1);

	/* A range no rule touches, and no rules at all. */
	price_resolve(rules, 2, day_of("2026-01-01"), day_of("2026-01-11"), out);
	for (int i = 0; i < 11; i++)
		assert_int_equal(out[i], -1);
	price_resolve(rules, 0, day_of("2027-01-08"), day_of("2027-01-18"), out);
	for (int i = 0; i < 11; i++)
		assert_int_equal(out[i], -1);

	/* Amount 0 is a price (free), not "no price". */
	const struct price_rule free_day[] = {rule("2027-01-10", "2027-01-10", 1 << SUN, 0)};
	price_resolve(free_day, 1, day_of("2027-01-10"), day_of("2027-01-10"), &v);
	assert_int_equal(v, 0);
}

static void test_rules_span(void **state)
{
	(void)state;
	const struct price_rule rules[] = {
		rule("2027-05-01", "2027-05-31", PRICE_ALL_WEEKDAYS, 1),
		rule("2027-01-10", "2027-02-01", 1 << MON, 2),
		rule("2027-03-01", "2028-02-29", PRICE_ALL_WEEKDAYS, 3),
		rule("2027-04-01", "2027-04-02", PRICE_ALL_WEEKDAYS, 4),
	};
	int32_t from, to;
	price_rules_span(rules, 4, &from, &to);
	assert_int_equal(from, day_of("2027-01-10"));
	assert_int_equal(to, day_of("2028-02-29"));
	price_rules_span(rules, 1, &from, &to);
	assert_int_equal(from, day_of("2027-05-01"));
	assert_int_equal(to, day_of("2027-05-31"));
	price_rules_span(&rules[3], 1, &from, &to);
	assert_int_equal(from, to - 1);
}

/* Decoded JSON through to prices, the way the catalog projection uses it. */
static void test_decode_then_resolve(void **state)
{
	(void)state;
	struct price_rule rules[PRICE_RULES_MAX];
	struct rsd_fail f;
	size_t n;
	assert_int_equal(decode("[{\"from\":\"2027-12-20\",\"to\":\"2028-01-10\",\"amount\":200},"
				" {\"from\":\"2027-12-24\",\"to\":\"2027-12-26\",\"amount\":900},"
				" {\"from\":\"2027-12-20\",\"to\":\"2028-01-10\",\"amount\":250,"
				"  \"weekdays\":[\"fri\",\"sat\"]}]",
				rules, &n, &f),
			 RSD_OK);
	int32_t from, to;
	price_rules_span(rules, n, &from, &to);
	assert_int_equal(to - from + 1, 22);
	int64_t out[22];
	price_resolve(rules, n, from, to, out);
	assert_int_equal(out[day_of("2027-12-20") - from], 200); /* Monday */
	assert_int_equal(out[day_of("2027-12-24") - from], 250); /* Friday */
	assert_int_equal(out[day_of("2027-12-25") - from], 250); /* Saturday */
	assert_int_equal(out[day_of("2027-12-26") - from], 900); /* Sunday */
	assert_int_equal(out[day_of("2028-01-01") - from], 250); /* Saturday */
	assert_int_equal(out[day_of("2028-01-10") - from], 200); /* Monday */
}

/* Random layered rules against the definition: the last covering rule, date by date. */
static void test_resolve_matches_definition(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	struct price_rule rules[PRICE_RULES_MAX];
	int64_t out[200];
	for (int round = 0; round < 300; round++) {
		size_t n = 1 + (seed = seed * 1103515245u + 12345u) % PRICE_RULES_MAX;
		int32_t base = day_of("2027-01-01");
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			int32_t a = base + (int32_t)(seed >> 8) % 180;
			seed = seed * 1103515245u + 12345u;
			int32_t len = (int32_t)(seed >> 8) % 40;
			seed = seed * 1103515245u + 12345u;
			uint8_t mask = (uint8_t)(1 + (seed >> 8) % PRICE_ALL_WEEKDAYS);
			struct price_rule r = {a, a + len, mask, (int64_t)i * 10};
			rules[i] = r;
		}
		int32_t from = base + 10 + round % 20, to = from + 150;
		price_resolve(rules, n, from, to, out);
		for (int32_t d = from; d <= to; d++) {
			int64_t want = -1;
			for (size_t i = 0; i < n; i++)
				if (d >= rules[i].from_day && d <= rules[i].to_day &&
				    (rules[i].weekdays & (1 << price_weekday(d))))
					want = rules[i].amount;
			if (out[d - from] != want)
				fail_msg("round %d day %d: %lld, expected %lld", round, d,
					 (long long)out[d - from], (long long)want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_known_dates),
		cmocka_unit_test(test_leap_years),
		cmocka_unit_test(test_refuses_bad_shapes),
		cmocka_unit_test(test_round_trip_every_day),
		cmocka_unit_test(test_format_outside_four_digit_years),
		cmocka_unit_test(test_weekdays_of_known_dates),
		cmocka_unit_test(test_decode_valid_rules),
		cmocka_unit_test(test_decode_rules_array),
		cmocka_unit_test(test_decode_members),
		cmocka_unit_test(test_decode_dates),
		cmocka_unit_test(test_decode_amounts),
		cmocka_unit_test(test_decode_weekdays),
		cmocka_unit_test(test_last_rule_wins),
		cmocka_unit_test(test_weekday_masks),
		cmocka_unit_test(test_uncovered_dates_and_ranges),
		cmocka_unit_test(test_rules_span),
		cmocka_unit_test(test_decode_then_resolve),
		cmocka_unit_test(test_resolve_matches_definition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
