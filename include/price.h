/*
 * price.h — prices by date: calendar dates as day numbers, rate-plan rules, and the
 * resolution of rules into one price per date.
 *
 * A rate plan's rules are layers: each rule covers a date range (inclusive at both ends)
 * and optionally some weekdays, and gives an amount in minor units of the product's
 * currency. For a date, the price is the amount of the LAST rule in list order that covers
 * it, so a manager writes the all-year base rate first, then seasons, then weekend or
 * holiday overrides. A date no rule covers has no price (the product cannot be sold then).
 *
 * Pure functions: no I/O, no allocation except where said; safe on any thread.
 */
#ifndef RSD_PRICE_H
#define RSD_PRICE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rsd.h"

/* Weekday bits of price_rule.weekdays: bit 0 is Monday ... bit 6 is Sunday. */
#define PRICE_ALL_WEEKDAYS 0x7f

struct price_rule {
	int32_t from_day; /* first date covered, days since 1970-01-01 */
	int32_t to_day;	  /* last date covered (inclusive), >= from_day */
	uint8_t weekdays; /* PRICE_ALL_WEEKDAYS or a subset; never 0 */
	int64_t amount;	  /* minor units, 0 .. PRICE_AMOUNT_MAX */
};

/*
 * Parses a calendar date "YYYY-MM-DD" (years 1970..9999, a real date: no 2027-02-30) into
 * days since 1970-01-01. Returns RSD_OK or RSD_EINVAL (nothing else is checked or set).
 */
int price_parse_date(const char *s, int32_t *day);

/* Writes day as "YYYY-MM-DD" with a terminating NUL into out. */
void price_format_date(int32_t day, char out[11]);

/* The weekday of day: 0 = Monday ... 6 = Sunday. */
int price_weekday(int32_t day);

/*
 * Decodes a rate plan's "rules" member: a JSON array of 1..PRICE_RULES_MAX objects
 * {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD", "amount": integer 0..PRICE_AMOUNT_MAX,
 *  "weekdays": ["mon", ...]} where weekdays is optional (all days when absent, never empty,
 * no repeats) and to - from spans at most PRICE_RULE_DAYS_MAX days. Unknown members are
 * refused. out has room for PRICE_RULES_MAX rules; *n receives the count.
 * Errors: RSD_EINVAL with f->field naming the exact place, e.g. "rules[2].to".
 */
int price_rules_decode(const cJSON *rules, struct price_rule *out, size_t *n, struct rsd_fail *f);

/*
 * Resolves rules[0..n) for each date of [from_day, to_day] (inclusive; to_day >= from_day):
 * out[d - from_day] receives the price of date d, or -1 when no rule covers it.
 */
void price_resolve(const struct price_rule *rules, size_t n, int32_t from_day, int32_t to_day,
		   int64_t *out);

/* The first and last dates any of rules[0..n) covers (n >= 1). */
void price_rules_span(const struct price_rule *rules, size_t n, int32_t *from_day, int32_t *to_day);

#endif
