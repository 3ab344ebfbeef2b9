/*
 * price.c — calendar dates as day numbers, decoding of rate-plan rules, and their
 * resolution into one price per date.
 *
 * Dates are days since 1970-01-01 in the proleptic Gregorian calendar, converted with
 * Howard Hinnant's days_from_civil / civil_from_days, so no libc time function (and no
 * time zone) is involved. Invariants: every rule price_rules_decode accepts has
 * 1970 <= year <= 9999 at both ends, from_day <= to_day, to_day - from_day <=
 * PRICE_RULE_DAYS_MAX, weekdays != 0 and 0 <= amount <= PRICE_AMOUNT_MAX.
 */
#include "price.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "limits_rsd.h"
#include "banned.h"

#define PRICE_YEAR_MIN 1970
#define PRICE_YEAR_MAX 9999

/* The first and last days price_format_date can write with a four-digit year. */
#define DAY_0000_01_01 (-719528)
#define DAY_9999_12_31 2932896

/* Bytes of an unknown member's name kept in an error's field, so "rules[63].<name>" fits. */
#define MEMBER_NAME_BYTES_SHOWN 48

static const char *const weekday_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31); Hinnant's days_from_civil. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The civil date of z days since 1970-01-01; Hinnant's civil_from_days. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* Reads n decimal digits at s; returns -1 when one of them is not a digit. */
static int read_digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int price_parse_date(const char *s, int32_t *day)
{
	/* strnlen keeps a long string from being read past what the shape allows. */
	if (s == NULL || strnlen(s, 11) != 10 || s[4] != '-' || s[7] != '-')
		return RSD_EINVAL;
	int y = read_digits(s, 4), m = read_digits(s + 5, 2), d = read_digits(s + 8, 2);
	if (y < PRICE_YEAR_MIN || y > PRICE_YEAR_MAX || m < 1 || m > 12 || d < 1 ||
	    d > days_in_month(y, m))
		return RSD_EINVAL;
	*day = (int32_t)days_from_civil(y, m, d);
	return RSD_OK;
}

static void write_digits(char *out, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void price_format_date(int32_t day, char out[11])
{
	/* out holds a four-digit year only; a day beyond it saturates rather than abort a
	 * request or write a date that is not a date. No parsed date comes near the bounds. */
	int64_t z = day < DAY_0000_01_01   ? DAY_0000_01_01
		    : day > DAY_9999_12_31 ? DAY_9999_12_31
					   : day;
	int64_t y;
	int m, d;
	civil_from_days(z, &y, &m, &d);
	write_digits(out, y, 4);
	out[4] = '-';
	write_digits(out + 5, m, 2);
	out[7] = '-';
	write_digits(out + 8, d, 2);
	out[10] = '\0';
}

int price_weekday(int32_t day)
{
	/* 1970-01-01 was a Thursday (3); int64_t keeps day + 3 from overflowing. */
	int64_t w = ((int64_t)day + 3) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

/* Length of name cut to at most max bytes without splitting a UTF-8 character. */
static int shown_length(const char *name, size_t max)
{
	size_t len = strnlen(name, max + 1);
	if (len <= max)
		return (int)len;
	len = max;
	while (len > 0 && ((unsigned char)name[len] & 0xc0) == 0x80)
		len--;
	return (int)len;
}

/* Decodes rules[i].weekdays (v, named path) into a bit mask. */
static int decode_weekdays(const cJSON *v, int i, const char *path, uint8_t *mask,
			   struct rsd_fail *f)
{
	char item_path[RSD_FIELD_BYTES_MAX];
	if (!cJSON_IsArray(v) || v->child == NULL)
		return rsd_failf(f, RSD_EINVAL, path,
				 "'%s' must be a non-empty array of weekdays (mon ... sun)", path);
	*mask = 0;
	int j = 0;
	for (const cJSON *c = v->child; c; c = c->next, j++) {
		snprintf(item_path, sizeof(item_path), "rules[%d].weekdays[%d]", i, j);
		int w = 7;
		if (cJSON_IsString(c))
			for (w = 0; w < 7; w++)
				if (strcmp(c->valuestring, weekday_names[w]) == 0)
					break;
		if (w == 7)
			return rsd_failf(f, RSD_EINVAL, item_path,
					 "'%s' must be one of mon, tue, wed, thu, fri, sat, sun",
					 item_path);
		if (*mask & (1u << w))
			return rsd_failf(f, RSD_EINVAL, item_path, "'%s' repeats '%s'", item_path,
					 weekday_names[w]);
		*mask |= (uint8_t)(1u << w);
	}
	return RSD_OK;
}

static int decode_date(const cJSON *obj, const char *name, const char *path, int32_t *day,
		       struct rsd_fail *f)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (v == NULL)
		return rsd_failf(f, RSD_EINVAL, path, "'%s' is required", path);
	if (!cJSON_IsString(v) || price_parse_date(v->valuestring, day) != RSD_OK)
		return rsd_failf(f, RSD_EINVAL, path,
				 "'%s' must be a date YYYY-MM-DD from %d to %d", path,
				 PRICE_YEAR_MIN, PRICE_YEAR_MAX);
	return RSD_OK;
}

/* Decodes rules[i] into r. */
static int decode_rule(const cJSON *obj, int i, struct price_rule *r, struct rsd_fail *f)
{
	static const char *const members[] = {"from", "to", "amount", "weekdays"};
	char path[RSD_FIELD_BYTES_MAX];
	snprintf(path, sizeof(path), "rules[%d]", i);
	if (!cJSON_IsObject(obj))
		return rsd_failf(f, RSD_EINVAL, path, "'%s' must be an object", path);
	for (const cJSON *c = obj->child; c; c = c->next) {
		size_t k;
		for (k = 0; k < sizeof(members) / sizeof(members[0]); k++)
			if (strcmp(c->string, members[k]) == 0)
				break;
		if (k == sizeof(members) / sizeof(members[0])) {
			int len = shown_length(c->string, MEMBER_NAME_BYTES_SHOWN);
			snprintf(path, sizeof(path), "rules[%d].%.*s", i, len, c->string);
			return rsd_failf(f, RSD_EINVAL, path, "unknown field '%s'", path);
		}
	}

	snprintf(path, sizeof(path), "rules[%d].from", i);
	int err = decode_date(obj, "from", path, &r->from_day, f);
	if (err)
		return err;
	snprintf(path, sizeof(path), "rules[%d].to", i);
	if ((err = decode_date(obj, "to", path, &r->to_day, f)))
		return err;
	if (r->to_day < r->from_day)
		return rsd_failf(f, RSD_EINVAL, path, "'%s' must not be before 'rules[%d].from'",
				 path, i);
	if (r->to_day - r->from_day > PRICE_RULE_DAYS_MAX)
		return rsd_failf(f, RSD_EINVAL, path,
				 "'%s' must be at most %d days after 'rules[%d].from'", path,
				 PRICE_RULE_DAYS_MAX, i);

	snprintf(path, sizeof(path), "rules[%d].amount", i);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "amount");
	if (v == NULL)
		return rsd_failf(f, RSD_EINVAL, path, "'%s' is required", path);
	if (json_get_int(v, 0, PRICE_AMOUNT_MAX, &r->amount) != RSD_OK)
		return rsd_failf(f, RSD_EINVAL, path, "'%s' must be an integer from 0 to %lld",
				 path, (long long)PRICE_AMOUNT_MAX);

	r->weekdays = PRICE_ALL_WEEKDAYS;
	v = cJSON_GetObjectItemCaseSensitive(obj, "weekdays");
	if (v) {
		snprintf(path, sizeof(path), "rules[%d].weekdays", i);
		if ((err = decode_weekdays(v, i, path, &r->weekdays, f)))
			return err;
	}
	return RSD_OK;
}

int price_rules_decode(const cJSON *rules, struct price_rule *out, size_t *n, struct rsd_fail *f)
{
	*n = 0;
	int count = cJSON_IsArray(rules) ? cJSON_GetArraySize(rules) : 0;
	if (count < 1 || count > PRICE_RULES_MAX)
		return rsd_failf(f, RSD_EINVAL, "rules",
				 "'rules' must be an array of 1 to %d rules", PRICE_RULES_MAX);
	int i = 0;
	for (const cJSON *c = rules->child; c; c = c->next, i++) {
		int err = decode_rule(c, i, &out[i], f);
		if (err)
			return err;
	}
	*n = (size_t)count;
	return RSD_OK;
}

void price_resolve(const struct price_rule *rules, size_t n, int32_t from_day, int32_t to_day,
		   int64_t *out)
{
	RSD_ASSERT(to_day >= from_day);
	size_t days = (size_t)((int64_t)to_day - from_day) + 1;
	for (size_t k = 0; k < days; k++)
		out[k] = -1;
	/* Later rules overwrite earlier ones, which is what "the last rule wins" means. */
	for (size_t i = 0; i < n; i++) {
		const struct price_rule *r = &rules[i];
		int32_t lo = r->from_day > from_day ? r->from_day : from_day;
		int32_t hi = r->to_day < to_day ? r->to_day : to_day;
		int w = lo <= hi ? price_weekday(lo) : 0;
		/* int64_t so that hi == INT32_MAX still ends the loop. */
		for (int64_t d = lo; d <= hi; d++) {
			if (r->weekdays & (1u << w))
				out[d - from_day] = r->amount;
			w = w == 6 ? 0 : w + 1;
		}
	}
}

void price_rules_span(const struct price_rule *rules, size_t n, int32_t *from_day, int32_t *to_day)
{
	RSD_ASSERT(n >= 1);
	*from_day = rules[0].from_day;
	*to_day = rules[0].to_day;
	for (size_t i = 1; i < n; i++) {
		if (rules[i].from_day < *from_day)
			*from_day = rules[i].from_day;
		if (rules[i].to_day > *to_day)
			*to_day = rules[i].to_day;
	}
}
