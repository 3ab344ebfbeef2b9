/*
 * Unit tests for search_params.c: the FTS5 expression built from q (checked against a real
 * FTS5 table with the "rsd" tokenizer), every parameter rule valid and invalid, the rules
 * that tie parameters together, query_hash, and cursors: round trips and tampering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "price.h"
#include "rsd.h"
#include "search_params.h"
#include "tokenizer.h"

#define PAIRS_MAX 40

/* Room for any cursor, whatever SEARCH_CURSOR_BYTES_MAX says (see test_cursor_sizes). */
#define CURSOR_BUF_BYTES 2048

static struct search_params params; /* 8 KiB: not on the stack of every test */

/* Parses the NULL-terminated list of name, value pairs into params. */
static int parse(struct rsd_fail *f, ...)
{
	const char *names[PAIRS_MAX], *values[PAIRS_MAX];
	int n = 0;
	va_list ap;
	va_start(ap, f);
	const char *name;
	while ((name = va_arg(ap, const char *)) != NULL) {
		assert_true(n < PAIRS_MAX);
		names[n] = name;
		values[n++] = va_arg(ap, const char *);
	}
	va_end(ap);
	memset(f, 0, sizeof(*f));
	return search_params_parse(names, values, n, &params, f);
}

/* Expects parse(...) to fail with RSD_EINVAL naming field. */
#define REFUSED(want, ...)                                                                         \
	do {                                                                                       \
		struct rsd_fail f_;                                                                \
		int rc_ = parse(&f_, __VA_ARGS__, NULL);                                           \
		if (rc_ != RSD_EINVAL)                                                             \
			fail_msg("line %d: accepted (rc %d)", __LINE__, rc_);                      \
		if (strcmp(f_.field, want) != 0)                                                   \
			fail_msg("line %d: field '%s', expected '%s' (%s)", __LINE__, f_.field,    \
				 want, f_.detail);                                                 \
		assert_true(f_.detail[0] != '\0');                                                 \
	} while (0)

#define ACCEPTED(...)                                                                              \
	do {                                                                                       \
		struct rsd_fail f_;                                                                \
		if (parse(&f_, __VA_ARGS__, NULL) != RSD_OK)                                       \
			fail_msg("line %d: refused: %s: %s", __LINE__, f_.field, f_.detail);       \
	} while (0)

static const char *fts_of(const char *q)
{
	static char out[SEARCH_FTS_BYTES_MAX];
	struct rsd_fail f = {0};
	int rc = search_params_fts(q, out, sizeof(out), &f);
	if (rc != RSD_OK)
		fail_msg("'%s' refused: %s", q, f.detail);
	return out;
}

static void fts_refused(const char *q)
{
	char out[SEARCH_FTS_BYTES_MAX];
	struct rsd_fail f = {0};
	if (search_params_fts(q, out, sizeof(out), &f) != RSD_EINVAL)
		fail_msg("'%s' accepted as %s", q, out);
	assert_string_equal(f.field, "q");
	assert_string_equal(out, "");
}

/* ---- q ---- */

static void test_fts_quotes_every_term(void **state)
{
	(void)state;
	assert_string_equal(fts_of("ocean view"), "\"ocean\" \"view\"");
	assert_string_equal(fts_of("  ocean\t\r\nview  "), "\"ocean\" \"view\"");
	/* FTS5 syntax in q is only text. */
	assert_string_equal(fts_of("a OR b"), "\"a\" \"OR\" \"b\"");
	assert_string_equal(fts_of("NEAR(a b)"), "\"NEAR(a\" \"b)\"");
	assert_string_equal(fts_of("name:spa -x ^y z*"), "\"name:spa\" \"-x\" \"^y\" \"z*\"");
	assert_string_equal(fts_of("say\"hi\""), "\"say\"\"hi\"\"\"");
	assert_string_equal(fts_of("\"ocean\""), "\"\"\"ocean\"\"\"");
	assert_string_equal(fts_of("오션뷰 디럭스"), "\"오션뷰\" \"디럭스\"");
	/* The ideographic space separates terms as a space does. */
	assert_string_equal(fts_of("東京\xE3\x80\x80ホテル"), "\"東京\" \"ホテル\"");
}

static void test_fts_one_cjk_character_is_a_prefix(void **state)
{
	(void)state;
	assert_string_equal(fts_of("스"), "\"스\"*");
	assert_string_equal(fts_of("오션 뷰"), "\"오션\" \"뷰\"*");
	assert_string_equal(fts_of("東"), "\"東\"*");			  /* CJK ideograph */
	assert_string_equal(fts_of("\xE3\x90\x80"), "\"\xE3\x90\x80\"*"); /* U+3400, ext. A */
	assert_string_equal(fts_of("あ ア"), "\"あ\"* \"ア\"*");	  /* kana */
	assert_string_equal(fts_of("ㅅ"), "\"ㅅ\"*");			  /* compatibility jamo */
	assert_string_equal(fts_of("\xE1\x84\x80"), "\"\xE1\x84\x80\"*"); /* U+1100 jamo */
	assert_string_equal(fts_of("\xEA\xB0\x80 \xED\x9E\xA3"),	  /* 가 and 힣 */
			    "\"\xEA\xB0\x80\"* \"\xED\x9E\xA3\"*");
	/* Not one CJK character: no prefix. */
	assert_string_equal(fts_of("a"), "\"a\"");
	assert_string_equal(fts_of("é"), "\"é\"");
	assert_string_equal(fts_of("스파"), "\"스파\"");
	assert_string_equal(fts_of("스."), "\"스.\"");
	assert_string_equal(fts_of("Ω"), "\"Ω\"");
	/* U+30FB, the katakana middle dot, separates words for the tokenizer: no term. */
	fts_refused("\xE3\x83\xBB");
}

static void test_fts_drops_terms_without_letters(void **state)
{
	(void)state;
	assert_string_equal(fts_of("- ocean ! ??? \"\" view"), "\"ocean\" \"view\"");
	assert_string_equal(fts_of("!!a"), "\"!!a\"");
	assert_string_equal(fts_of("1"), "\"1\"");
	fts_refused("");
	fts_refused("   \t ");
	fts_refused("--- !!! \"\" * ( )");
	fts_refused("\xE3\x80\x80"); /* only an ideographic space */
}

static void test_fts_refuses_invalid_utf8(void **state)
{
	(void)state;
	fts_refused("caf\xC3");
	fts_refused("\xFF");
	fts_refused("\xC0\xAF");	    /* overlong '/' */
	fts_refused("\xED\xA0\x80");	    /* a surrogate */
	fts_refused("ok \xF4\x90\x80\x80"); /* past U+10FFFF */
	REFUSED("q", "q", "\x80");
}

static void test_fts_limits(void **state)
{
	(void)state;
	char q[4 * SEARCH_Q_CHARS_MAX + 8];
	/* Characters, not bytes: 200 Hangul syllables are 600 bytes and fit. */
	q[0] = '\0';
	for (int i = 0; i < SEARCH_Q_CHARS_MAX; i++)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%s", i % 25 == 24 ? " " : "가");
	(void)fts_of(q);
	memset(q, 'a', SEARCH_Q_CHARS_MAX);
	q[SEARCH_Q_CHARS_MAX] = '\0';
	(void)fts_of(q);
	q[SEARCH_Q_CHARS_MAX] = 'a';
	q[SEARCH_Q_CHARS_MAX + 1] = '\0';
	fts_refused(q);
	/* The longest expression still fits SEARCH_FTS_BYTES_MAX: 200 characters of 4 bytes. */
	q[0] = '\0';
	for (int i = 0; i < SEARCH_Q_CHARS_MAX; i++)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%s",
			 i % 25 == 24 ? " " : "\xF0\xA0\x80\x80" /* U+20000 */);
	(void)fts_of(q);
	/* As does a term made mostly of double quotes. */
	memset(q, '"', SEARCH_Q_CHARS_MAX);
	q[0] = 'a';
	q[SEARCH_Q_CHARS_MAX] = '\0';
	assert_int_equal(strlen(fts_of(q)), 2 * SEARCH_Q_CHARS_MAX + 1);

	assert_string_equal(fts_of("a b c d e f g h"),
			    "\"a\" \"b\" \"c\" \"d\" \"e\" \"f\" \"g\" \"h\"");
	fts_refused("a b c d e f g h i");
	/* Dropped terms do not count. */
	(void)fts_of("a b c d e f g h - ! ?");

	/* A buffer too small is a refusal, never an overflow or a cut phrase. */
	char small[8];
	struct rsd_fail f;
	assert_int_equal(search_params_fts("ab", small, sizeof(small), &f), RSD_OK);
	assert_string_equal(small, "\"ab\"");
	assert_int_equal(search_params_fts("ab cd", small, sizeof(small), &f), RSD_EINVAL);
	assert_string_equal(small, "");
	assert_int_equal(search_params_fts("abcdef", small, 8, &f), RSD_EINVAL);
	assert_int_equal(search_params_fts("abcde", small, 8, &f), RSD_OK);
	assert_int_equal(search_params_fts("a", small, 0, &f), RSD_EINVAL);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

/* Runs the expression built from q on a small table; returns the matching rowids as bits. */
static unsigned match(sqlite3 *db, const char *q)
{
	sqlite3_stmt *st;
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?1", -1, &st, NULL),
		SQLITE_OK);
	sqlite3_bind_text(st, 1, fts_of(q), -1, SQLITE_TRANSIENT);
	unsigned rows = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		rows |= 1u << sqlite3_column_int(st, 0);
	if (rc != SQLITE_DONE)
		fail_msg("q %s -> %s: %s", q, fts_of(q), sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rows;
}

static void test_fts_runs_in_fts5(void **state)
{
	(void)state;
	sqlite3 *db;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(tokenizer_register(db), RSD_OK);
	exec_ok(db, "CREATE VIRTUAL TABLE t USING fts5(name, tokenize='rsd');"
		    "INSERT INTO t(rowid, name) VALUES (1, '오션뷰 디럭스'), (2, '프리미엄스파'),"
		    "(3, 'Ocean \"View\" OR Suite'), (4, '뷰티 라운지'), (5, 'NEAR a b');");
	assert_int_equal(match(db, "뷰"), 1u << 1 | 1u << 4); /* inside and at a run's start */
	assert_int_equal(match(db, "스파"), 1u << 2);
	assert_int_equal(match(db, "ocean view"), 1u << 3);
	assert_int_equal(match(db, "\"view\""), 1u << 3);
	assert_int_equal(match(db, "OR"), 1u << 3);
	assert_int_equal(match(db, "NEAR(a b)"), 1u << 5);
	/* None of these is an FTS5 syntax error. */
	const char *hostile[] = {"AND",	      "NOT x",	"a:b",	 "(", ")",	 "*x",	 "x^",
				 "{name}: x", "\"\"\"", "NEAR(", "+", "a\"b\"c", "— ・", "x\x01y"};
	char out[SEARCH_FTS_BYTES_MAX];
	struct rsd_fail f;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		if (search_params_fts(hostile[i], out, sizeof(out), &f) == RSD_OK)
			(void)match(db, hostile[i]);
	sqlite3_close(db);
}

/* ---- single parameters ---- */

static void test_defaults(void **state)
{
	(void)state;
	ACCEPTED("limit", "5");
	assert_string_equal(params.fts, "");
	assert_int_equal(params.sort, SORT_NAME);
	assert_int_equal(params.limit, 5);
	assert_false(params.has_stay);
	assert_false(params.has_cursor);
	assert_null(params.currency);
	assert_int_equal(params.ntypes + params.nresorts + params.nattrs + params.nfacets, 0);
	struct rsd_fail f;
	assert_int_equal(search_params_parse(NULL, NULL, 0, &params, &f), RSD_OK);
	assert_int_equal(params.limit, CATALOG_PAGE_DEFAULT);
	assert_int_equal(params.sort, SORT_NAME);
	ACCEPTED("q", "스파");
	assert_int_equal(params.sort, SORT_RELEVANCE);
	assert_string_equal(params.fts, "\"스파\"");
}

static void test_each_parameter_once(void **state)
{
	(void)state;
	REFUSED("q", "q", "a", "q", "b");
	REFUSED("limit", "limit", "5", "limit", "5");
	REFUSED("cursor", "cursor", "x", "cursor", "x");
	REFUSED("type", "type", "ticket", "q", "a", "type", "facility");
	REFUSED("attr.view", "attr.view", "ocean", "attr.view", "garden");
	REFUSED("attr.size.min", "attr.size.min", "1", "attr.size.max", "5", "attr.size.min", "2");
	REFUSED("attr.size.max", "attr.size.max", "1", "attr.size.max", "1");
	/* attr.KEY, attr.KEY.min and attr.KEY.max are three parameters. */
	ACCEPTED("attr.size", "30", "attr.size.min", "1", "attr.size.max", "50");
}

static void test_unknown_parameters(void **state)
{
	(void)state;
	REFUSED("foo", "foo", "1");
	REFUSED("Q", "Q", "spa");
	REFUSED("", "", "x");
	REFUSED("attr", "attr", "x");
	REFUSED("attr.", "attr.", "x");
	REFUSED("attr.view.avg", "attr.view.avg", "1");
	REFUSED("attr.view.min.max", "attr.view.min.max", "1");
	REFUSED("attr.View", "attr.View", "x");
	REFUSED("attr.1view", "attr.1view", "x");
	REFUSED("attr._view", "attr._view", "x");
	REFUSED("attr.vi-ew", "attr.vi-ew", "x");
	REFUSED("attr..min", "attr..min", "1");
	REFUSED("attr.abcdefghijklmnopqrstuvwxyz0123456", "attr.abcdefghijklmnopqrstuvwxyz0123456",
		"x");
	ACCEPTED("attr.abcdefghijklmnopqrstuvwxyz012345", "x");
	ACCEPTED("attr.min", "x", "attr.max.min", "1"); /* keys named min and max */
	assert_int_equal(params.nattrs, 2);
	assert_string_equal(params.attrs[1].key, "max");
}

static void test_lists(void **state)
{
	(void)state;
	REFUSED("resort", "resort", "");
	REFUSED("resort", "resort", "a,");
	REFUSED("resort", "resort", ",a");
	REFUSED("resort", "resort", "a,,b");
	REFUSED("resort", "resort", ",");
	REFUSED("resort", "resort", "a,b,a");
	REFUSED("attr.view", "attr.view", "ocean,ocean");
	REFUSED("facets", "facets", "type,type");
	char list[4 * SEARCH_VALUES_MAX + 8] = "";
	for (int i = 0; i < SEARCH_VALUES_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%sr%d", i ? "," : "",
			 i);
	ACCEPTED("resort", list, "attr.view", list);
	assert_int_equal(params.nresorts, SEARCH_VALUES_MAX);
	assert_int_equal(params.attrs[0].nvalues, SEARCH_VALUES_MAX);
	assert_string_equal(params.resorts[0], "r0");
	assert_string_equal(params.resorts[15], "r15");
	assert_string_equal(params.attrs[0].values[3], "r3");
	assert_true(params.resorts[0] >= params.buf && params.resorts[0] < params.buf + 4096);
	snprintf(list + strlen(list), sizeof(list) - strlen(list), ",r99");
	REFUSED("resort", "resort", list);
	REFUSED("attr.view", "attr.view", list);
}

static void test_buffer_overflow_is_refused(void **state)
{
	(void)state;
	/* Two keys of 16 values of 200 characters need more than the 4096 bytes of buf. */
	static char list[SEARCH_VALUES_MAX * (ATTR_VALUE_CHARS_MAX + 1)];
	size_t at = 0;
	for (int i = 0; i < SEARCH_VALUES_MAX; i++) {
		memset(list + at, 'a', ATTR_VALUE_CHARS_MAX);
		list[at] = (char)('a' + i);
		at += ATTR_VALUE_CHARS_MAX;
		list[at++] = i + 1 < SEARCH_VALUES_MAX ? ',' : '\0';
	}
	ACCEPTED("attr.a", list);
	assert_true(params.buf_used <= sizeof(params.buf));
	REFUSED("attr.b", "attr.a", list, "attr.b", list);
}

static void test_type(void **state)
{
	(void)state;
	ACCEPTED("type", "package,room_type,facility,ticket");
	assert_int_equal(params.ntypes, 4);
	assert_string_equal(params.types[0], "package");
	assert_string_equal(params.types[3], "ticket");
	ACCEPTED("type", "ticket");
	assert_int_equal(params.ntypes, 1);
	REFUSED("type", "type", "hotel");
	REFUSED("type", "type", "Ticket");
	REFUSED("type", "type", "ticket,ticket");
	REFUSED("type", "type", "ticket,package,room_type,facility,ticket");
	REFUSED("type", "type", "ticket ");
}

static void test_resort_ids(void **state)
{
	(void)state;
	char id[ENTITY_ID_BYTES_MAX + 2];
	memset(id, 'r', sizeof(id) - 1);
	id[ENTITY_ID_BYTES_MAX] = '\0';
	ACCEPTED("resort", id);
	ACCEPTED("resort", "res_01-Seoul,X");
	assert_int_equal(params.nresorts, 2);
	assert_string_equal(params.resorts[1], "X");
	id[ENTITY_ID_BYTES_MAX] = 'r';
	id[ENTITY_ID_BYTES_MAX + 1] = '\0';
	REFUSED("resort", "resort", id);
	REFUSED("resort", "resort", "a.b");
	REFUSED("resort", "resort", "a b");
	REFUSED("resort", "resort", "설악");
	REFUSED("resort", "resort", "ok,a/b");
}

static void test_attr_filters(void **state)
{
	(void)state;
	ACCEPTED("attr.view", "ocean,오션", "attr.size.min", "-1.5", "attr.pool", "true",
		 "attr.size.max", "1e3", "attr.view.min", ".5");
	assert_int_equal(params.nattrs, 3);
	const struct search_attr_filter *v = &params.attrs[0], *s = &params.attrs[1];
	assert_string_equal(v->key, "view");
	assert_int_equal(v->nvalues, 2);
	assert_string_equal(v->values[1], "오션");
	assert_true(v->has_min && !v->has_max);
	assert_true(v->min == 0.5);
	assert_string_equal(s->key, "size");
	assert_int_equal(s->nvalues, 0);
	assert_true(s->has_min && s->has_max && s->min == -1.5 && s->max == 1000);
	assert_string_equal(params.attrs[2].key, "pool");

	/* At most SEARCH_ATTR_FILTERS_MAX keys; more parameters on the same key are fine. */
	ACCEPTED("attr.a", "1", "attr.b", "1", "attr.c", "1", "attr.d", "1", "attr.e", "1",
		 "attr.f", "1", "attr.g", "1", "attr.h.min", "1", "attr.h.max", "2", "attr.a.max",
		 "3");
	assert_int_equal(params.nattrs, SEARCH_ATTR_FILTERS_MAX);
	REFUSED("attr.i", "attr.a", "1", "attr.b", "1", "attr.c", "1", "attr.d", "1", "attr.e", "1",
		"attr.f", "1", "attr.g", "1", "attr.h", "1", "attr.i", "1");

	/* Bounds are strict finite decimal numbers. */
	const char *good[] = {"0", "-0", "1", "-1.5", "1e3", "1E-3", ".5", "5.", "007", "1e-400"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ACCEPTED("attr.size.min", good[i]);
	const char *bad[] = {"",      "+1",	  " 1",	 "1 ",	"1,2", "0x10",	   "inf", "-inf",
			     "nan",   "1e999",	  "-",	 ".",	"e5",  "1e",	   "--1", "1-",
			     "1.5.2", "Infinity", "1e+", "\t1", "１",  "1\xC2\xA0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REFUSED("attr.size.min", "attr.size.min", bad[i]);
		REFUSED("attr.size.max", "attr.size.max", bad[i]);
	}
	REFUSED("attr.size.min", "attr.size.min", "5", "attr.size.max", "4");
	ACCEPTED("attr.size.min", "5", "attr.size.max", "5");

	/* Values: 1..ATTR_VALUE_CHARS_MAX characters of UTF-8. */
	char value[4 * ATTR_VALUE_CHARS_MAX + 8] = "";
	for (int i = 0; i < ATTR_VALUE_CHARS_MAX; i++)
		snprintf(value + strlen(value), sizeof(value) - strlen(value), "뷰");
	ACCEPTED("attr.view", value);
	snprintf(value + strlen(value), sizeof(value) - strlen(value), "x");
	REFUSED("attr.view", "attr.view", value);
	REFUSED("attr.view", "attr.view", "ocean,\xFF");
	REFUSED("attr.view", "attr.view", "");
}

static void test_stay(void **state)
{
	(void)state;
	ACCEPTED("from", "2027-01-30", "to", "2027-02-02");
	assert_true(params.has_stay);
	assert_int_equal(params.to_day - params.from_day, 3);
	int32_t day;
	assert_int_equal(price_parse_date("2027-01-30", &day), RSD_OK);
	assert_int_equal(params.from_day, day);
	ACCEPTED("to", "2028-01-01", "from", "2027-01-01"); /* 365 days */
	ACCEPTED("from", "2028-01-01", "to", "2029-01-01"); /* 366 days, a leap year */
	REFUSED("to", "from", "2027-01-01", "to", "2028-01-03");
	REFUSED("to", "from", "2027-01-01", "to", "2027-01-01");
	REFUSED("to", "from", "2027-01-02", "to", "2027-01-01");
	REFUSED("to", "from", "2027-01-01");
	REFUSED("from", "to", "2027-01-01");
	REFUSED("from", "from", "2027-02-30", "to", "2027-03-02");
	REFUSED("to", "from", "2027-02-01", "to", "2027-2-3");
	REFUSED("from", "from", "", "to", "2027-01-01");
	REFUSED("from", "from", "2027-01-01T00:00", "to", "2027-01-02");
	REFUSED("to", "from", "2027-01-01", "to", "2027-01-02 ");
}

static void test_prices(void **state)
{
	(void)state;
	char max[32], over[32];
	snprintf(max, sizeof(max), "%lld", (long long)PRICE_AMOUNT_MAX);
	snprintf(over, sizeof(over), "%lld", (long long)PRICE_AMOUNT_MAX + 1);
	ACCEPTED("from", "2027-01-01", "to", "2027-01-03", "price_min", "0", "price_max", max);
	assert_true(params.has_price_min && params.has_price_max);
	assert_int_equal(params.price_min, 0);
	assert_int_equal(params.price_max, PRICE_AMOUNT_MAX);
	ACCEPTED("from", "2027-01-01", "to", "2027-01-03", "price_max", "150000");
	assert_false(params.has_price_min);
	ACCEPTED("from", "2027-01-01", "to", "2027-01-03", "price_min", "5", "price_max", "5");
	REFUSED("price_min", "from", "2027-01-01", "to", "2027-01-03", "price_min", "6",
		"price_max", "5");
	REFUSED("price_min", "price_min", "100");
	REFUSED("price_max", "price_max", "100", "sort", "name");
	REFUSED("to", "price_max", "100", "from", "2027-01-01"); /* the stay is checked first */
	const char *bad[] = {"",    "-1",  "+1",   " 1", "1 ",
			     "1.0", "1e3", "0x10", over, "99999999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		REFUSED("price_min", "from", "2027-01-01", "to", "2027-01-03", "price_min", bad[i]);
		REFUSED("price_max", "from", "2027-01-01", "to", "2027-01-03", "price_max", bad[i]);
	}
}

static void test_currency(void **state)
{
	(void)state;
	ACCEPTED("currency", "KRW");
	assert_string_equal(params.currency, "KRW");
	const char *bad[] = {"", "krw", "KR", "KRWX", "K1W", "KR ", "ＫＲＷ"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REFUSED("currency", "currency", bad[i]);
}

static void test_sort(void **state)
{
	(void)state;
	ACCEPTED("sort", "name", "q", "spa");
	assert_int_equal(params.sort, SORT_NAME);
	ACCEPTED("sort", "rating");
	assert_int_equal(params.sort, SORT_RATING);
	ACCEPTED("q", "spa", "sort", "relevance");
	assert_int_equal(params.sort, SORT_RELEVANCE);
	ACCEPTED("sort", "price", "from", "2027-01-01", "to", "2027-01-03");
	assert_int_equal(params.sort, SORT_PRICE);
	ACCEPTED("sort", "-price", "from", "2027-01-01", "to", "2027-01-03");
	assert_int_equal(params.sort, SORT_PRICE_DESC);
	REFUSED("sort", "sort", "relevance");
	REFUSED("sort", "sort", "price");
	REFUSED("sort", "sort", "-price", "q", "spa");
	REFUSED("sort", "sort", "Price");
	REFUSED("sort", "sort", "");
	REFUSED("sort", "sort", "+price");
}

static void test_limit(void **state)
{
	(void)state;
	ACCEPTED("limit", "1");
	assert_int_equal(params.limit, 1);
	ACCEPTED("limit", "100");
	assert_int_equal(params.limit, CATALOG_PAGE_MAX);
	const char *bad[] = {
		"0", "101", "-1", "+5", " 5", "5 ", "5x", "", "1e1", "5.0", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		REFUSED("limit", "limit", bad[i]);
}

static void test_facets(void **state)
{
	(void)state;
	ACCEPTED("facets", "type,resort,attr.view");
	assert_int_equal(params.nfacets, 3);
	assert_string_equal(params.facets[2], "attr.view");
	ACCEPTED("facets", "attr.a,attr.b,attr.c,attr.d,attr.e,attr.f,type,resort");
	assert_int_equal(params.nfacets, SEARCH_FACETS_MAX);
	REFUSED("facets", "facets", "attr.a,attr.b,attr.c,attr.d,attr.e,attr.f,attr.g,type,resort");
	REFUSED("facets", "facets", "price");
	REFUSED("facets", "facets", "attr.");
	REFUSED("facets", "facets", "attr.View");
	REFUSED("facets", "facets", "attr.view.min");
	REFUSED("facets", "facets", "type,");
	REFUSED("facets", "facets", "resort,resort");
}

/* The first parameter at fault is the one named. */
static void test_first_error_wins(void **state)
{
	(void)state;
	REFUSED("limit", "q", "spa", "limit", "0", "sort", "bogus");
	REFUSED("bogus", "bogus", "1", "limit", "0");
}

/* ---- query_hash ---- */

static uint64_t hash_of(const char *n1, const char *v1, const char *n2, const char *v2,
			const char *n3, const char *v3)
{
	struct rsd_fail f;
	if (parse(&f, n1, v1, n2, v2, n3, v3, NULL) != RSD_OK)
		fail_msg("refused: %s: %s", f.field, f.detail);
	return params.query_hash;
}

static void test_query_hash(void **state)
{
	(void)state;
	uint64_t base = hash_of("q", "ocean view", "type", "ticket,package", "limit", "5");
	/* limit, facets and spacing in q do not change the search. */
	assert_true(hash_of("q", "ocean   view", "type", "ticket,package", NULL, NULL) == base);
	assert_true(hash_of("type", "package,ticket", "q", "ocean view", "facets", "type") == base);
	assert_true(hash_of("q", "ocean view !", "type", "ticket,package", "sort", "relevance") ==
		    base);
	/* Everything else does. */
	assert_true(hash_of("q", "ocean", "type", "ticket,package", NULL, NULL) != base);
	assert_true(hash_of("q", "ocean view", "type", "ticket", NULL, NULL) != base);
	assert_true(hash_of("q", "ocean view", "type", "ticket,package", "sort", "name") != base);
	assert_true(hash_of("q", "ocean view", "type", "ticket,package", "resort", "r1") != base);
	assert_true(hash_of("q", "ocean view", "type", "ticket,package", "currency", "KRW") !=
		    base);
	assert_true(hash_of("q", "ocean view", "type", "ticket,package", "attr.view", "sea") !=
		    base);

	/* Filters in any order are the same search; distinct filters differ. */
	uint64_t a = hash_of("attr.a", "1,2", "attr.b.min", "3", NULL, NULL);
	assert_true(hash_of("attr.b.min", "3", "attr.a", "2,1", NULL, NULL) == a);
	assert_true(hash_of("attr.b.min", "-0", "attr.a", "2,1", NULL, NULL) != a);
	assert_true(hash_of("attr.b.max", "3", "attr.a", "2,1", NULL, NULL) != a);
	assert_true(hash_of("attr.a.min", "3", "attr.b", "2,1", NULL, NULL) != a);
	assert_true(hash_of("attr.a", "1,2,3", "attr.b.min", "3", NULL, NULL) != a);
	assert_true(hash_of("attr.a", "1", "attr.a.min", "0", NULL, NULL) ==
		    hash_of("attr.a.min", "-0", "attr.a", "1", NULL, NULL));
	assert_true(hash_of("resort", "a,b", NULL, NULL, NULL, NULL) !=
		    hash_of("resort", "ab", NULL, NULL, NULL, NULL));
	assert_true(hash_of("resort", "a", "attr.x", "b", NULL, NULL) !=
		    hash_of("resort", "b", "attr.x", "a", NULL, NULL));

	uint64_t stay = hash_of("from", "2027-01-01", "to", "2027-01-03", "price_max", "100");
	assert_true(hash_of("from", "2027-01-01", "to", "2027-01-04", "price_max", "100") != stay);
	assert_true(hash_of("from", "2027-01-02", "to", "2027-01-03", "price_max", "100") != stay);
	assert_true(hash_of("from", "2027-01-01", "to", "2027-01-03", "price_max", "101") != stay);
	assert_true(hash_of("from", "2027-01-01", "to", "2027-01-03", "price_min", "100") != stay);
	assert_true(hash_of("from", "2027-01-01", "to", "2027-01-03", NULL, NULL) != stay);
	assert_true(hash_of("sort", "price", "from", "2027-01-01", "to", "2027-01-03") !=
		    hash_of("sort", "-price", "from", "2027-01-01", "to", "2027-01-03"));
}

/* ---- cursors ---- */

static void cursor_equal(const struct search_cursor *a, const struct search_cursor *b)
{
	assert_true(a->query_hash == b->query_hash);
	assert_int_equal(a->phase, b->phase);
	assert_int_equal(a->key_kind, b->key_kind);
	assert_true(a->rowid == b->rowid);
	if (a->key_kind == SEARCH_KEY_INT)
		assert_true(a->key_int == b->key_int);
	if (a->key_kind == SEARCH_KEY_REAL)
		assert_memory_equal(&a->key_real, &b->key_real, sizeof(double));
	if (a->key_kind == SEARCH_KEY_TEXT)
		assert_string_equal(a->key_text, b->key_text);
}

static void round_trip(const struct search_cursor *c, char *enc)
{
	struct search_cursor d;
	search_cursor_encode(c, enc, CURSOR_BUF_BYTES);
	for (const char *s = enc; *s; s++)
		assert_true((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
			    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_');
	if (search_cursor_decode(enc, &d) != RSD_OK)
		fail_msg("%s does not decode", enc);
	cursor_equal(c, &d);
	/* The encoding is canonical: the decoded cursor encodes to the same text. */
	char again[CURSOR_BUF_BYTES];
	search_cursor_encode(&d, again, sizeof(again));
	assert_string_equal(again, enc);
}

static struct search_cursor sample_cursor(enum search_key_kind kind)
{
	struct search_cursor c = {
		.query_hash = 0x0123456789abcdefULL, .phase = 0, .key_kind = kind, .rowid = 4242};
	c.key_int = 150000;
	c.key_real = -7.25;
	snprintf(c.key_text, sizeof(c.key_text), "오션뷰 디럭스 Twin");
	return c;
}

static void test_cursor_round_trips(void **state)
{
	(void)state;
	char enc[CURSOR_BUF_BYTES];
	for (int kind = SEARCH_KEY_NONE; kind <= SEARCH_KEY_TEXT; kind++) {
		struct search_cursor c = sample_cursor(kind);
		round_trip(&c, enc);
		c.phase = 1;
		round_trip(&c, enc);
	}
	struct search_cursor c = sample_cursor(SEARCH_KEY_REAL);
	const double reals[] = {0.0, -0.0, 5e-324, -1.7976931348623157e308, 0.1, 1.0 / 3};
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
		c.key_real = reals[i];
		round_trip(&c, enc);
	}
	c = sample_cursor(SEARCH_KEY_INT);
	const int64_t ints[] = {0, -1, INT64_MIN, INT64_MAX};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		c.key_int = c.rowid = ints[i];
		c.query_hash = (uint64_t)ints[i];
		round_trip(&c, enc);
	}
	/* Text keys of every length from empty to the longest name. */
	c = sample_cursor(SEARCH_KEY_TEXT);
	for (size_t n = 0; n <= PRODUCT_NAME_CHARS_MAX; n++) {
		c.key_text[0] = '\0';
		for (size_t i = 0; i < n; i++)
			snprintf(c.key_text + 3 * i, sizeof(c.key_text) - 3 * i, "뷰");
		round_trip(&c, enc);
	}
	memset(c.key_text, 'a', sizeof(c.key_text) - 1);
	c.key_text[sizeof(c.key_text) - 1] = '\0';
	round_trip(&c, enc);
	snprintf(c.key_text, sizeof(c.key_text), "\xF0\x9F\x8F\x96 é");
	round_trip(&c, enc);
}

/* Base64url without padding of raw, for crafting cursors the server would never make. */
static void b64(const unsigned char *raw, size_t n, char *out)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0) |
			     (i + 2 < n ? raw[i + 2] : 0);
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = abc[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = abc[v & 63];
	}
	out[o] = '\0';
}

/* A raw record: version, hash, phase, kind, rowid, then key bytes. */
static size_t raw_cursor(unsigned char *raw, int version, int phase, int kind, const void *key,
			 size_t keylen)
{
	raw[0] = (unsigned char)version;
	rsd_put_be64(raw + 1, 99);
	raw[9] = (unsigned char)phase;
	raw[10] = (unsigned char)kind;
	rsd_put_be64(raw + 11, 7);
	memcpy(raw + 19, key, keylen);
	return 19 + keylen;
}

static bool decodes_raw(const unsigned char *raw, size_t n)
{
	char enc[CURSOR_BUF_BYTES * 2];
	struct search_cursor c;
	b64(raw, n, enc);
	return search_cursor_decode(enc, &c) == RSD_OK;
}

static void test_cursor_refuses_malformed(void **state)
{
	(void)state;
	unsigned char raw[1200], key[1000];
	memset(key, 0, sizeof(key));
	/* The crafting itself is right: these decode. */
	assert_true(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_NONE, key, 0)));
	assert_true(decodes_raw(raw, raw_cursor(raw, 1, 1, SEARCH_KEY_INT, key, 8)));
	assert_true(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT,
						"\0\x02"
						"ab",
						4)));

	assert_false(decodes_raw(raw, raw_cursor(raw, 0, 0, SEARCH_KEY_NONE, key, 0)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 2, 0, SEARCH_KEY_NONE, key, 0)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 2, SEARCH_KEY_NONE, key, 0)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 255, SEARCH_KEY_NONE, key, 0)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT + 1, key, 0)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, 255, key, 8)));
	/* Truncated or with bytes left over. */
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_NONE, key, 1)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_INT, key, 7)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_INT, key, 9)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_REAL, key, 7)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT, key, 1)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT,
						 "\0\x02"
						 "a",
						 3)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT,
						 "\0\x02"
						 "abc",
						 5)));
	assert_false(decodes_raw(raw, 18));
	assert_false(decodes_raw(raw, 0));
	/* A real that is not finite. */
	uint64_t bits;
	unsigned char be[8];
	const double nonfinite[] = {NAN, -NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < sizeof(nonfinite) / sizeof(nonfinite[0]); i++) {
		memcpy(&bits, &nonfinite[i], sizeof(bits));
		rsd_put_be64(be, bits);
		assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_REAL, be, 8)));
	}
	/* Text that is not UTF-8, holds a NUL or is longer than key_text holds. */
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT, "\0\x02\xC3(", 4)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT,
						 "\0\x02"
						 "a\0",
						 4)));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT, "\0\x01\xFF", 3)));
	size_t textmax = sizeof(((struct search_cursor *)0)->key_text) - 1;
	memset(key + 2, 'a', textmax + 1);
	rsd_put_be16(key, (uint16_t)textmax);
	assert_true(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT, key, 2 + textmax)));
	rsd_put_be16(key, (uint16_t)(textmax + 1));
	assert_false(decodes_raw(raw, raw_cursor(raw, 1, 0, SEARCH_KEY_TEXT, key, 3 + textmax)));

	/* Not base64url, or not canonical base64url. */
	struct search_cursor c;
	const char *bad[] = {"", "A", "AQ==", "AQ", "AR", "a+b/", "AQ AQ", "AQ.", "%41"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(search_cursor_decode(bad[i], &c), RSD_EINVAL);
	assert_int_equal(search_cursor_decode(NULL, &c), RSD_EINVAL);
	char enc[CURSOR_BUF_BYTES];
	struct search_cursor ok = sample_cursor(SEARCH_KEY_INT);
	search_cursor_encode(&ok, enc, sizeof(enc));
	size_t n = strlen(enc);
	/* An INT record is 27 bytes: 36 characters, no spare bits. */
	assert_int_equal(n % 4, 0);
	ok.key_kind = SEARCH_KEY_NONE; /* 19 bytes: 26 characters, the last with 4 unused bits */
	search_cursor_encode(&ok, enc, sizeof(enc));
	n = strlen(enc);
	assert_int_equal(n, 26);
	/* Its last character is A, Q, g or w; the next one sets a spare bit. */
	enc[n - 1] = (char)(enc[n - 1] + 1);
	assert_int_equal(search_cursor_decode(enc, &c), RSD_EINVAL);
	/* Very long input. */
	static char huge[100000];
	memset(huge, 'A', sizeof(huge) - 1);
	assert_int_equal(search_cursor_decode(huge, &c), RSD_EINVAL);
}

/* Tampered cursors: every truncation and extension is refused; any change either is
 * refused or gives another well-formed cursor, never one that encodes differently. */
static void test_cursor_tampering(void **state)
{
	(void)state;
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.~ ";
	for (int kind = SEARCH_KEY_NONE; kind <= SEARCH_KEY_TEXT; kind++) {
		struct search_cursor c = sample_cursor(kind), d;
		char enc[CURSOR_BUF_BYTES], t[CURSOR_BUF_BYTES + 8], again[CURSOR_BUF_BYTES];
		search_cursor_encode(&c, enc, sizeof(enc));
		size_t n = strlen(enc);
		for (size_t cut = 0; cut < n; cut++) {
			memcpy(t, enc, cut);
			t[cut] = '\0';
			assert_int_equal(search_cursor_decode(t, &d), RSD_EINVAL);
		}
		for (size_t extra = 1; extra <= 4; extra++) {
			for (const char *ch = abc; *ch; ch++) {
				memcpy(t, enc, n);
				memset(t + n, *ch, extra);
				t[n + extra] = '\0';
				assert_int_equal(search_cursor_decode(t, &d), RSD_EINVAL);
			}
		}
		for (size_t i = 0; i < n; i++) {
			for (const char *ch = abc; *ch; ch++) {
				if (*ch == enc[i])
					continue;
				memcpy(t, enc, n + 1);
				t[i] = *ch;
				if (search_cursor_decode(t, &d) != RSD_OK)
					continue;
				search_cursor_encode(&d, again, sizeof(again));
				assert_string_equal(again, t);
			}
		}
	}
}

/* A cursor made for params' search, with a key fitting its sort. */
static void cursor_for(enum search_key_kind kind, int phase, char *out)
{
	struct search_cursor c = sample_cursor(kind);
	c.phase = phase;
	c.query_hash = params.query_hash;
	search_cursor_encode(&c, out, CURSOR_BUF_BYTES);
}

static void test_cursor_in_a_search(void **state)
{
	(void)state;
	char cur[CURSOR_BUF_BYTES];
	ACCEPTED("q", "스파", "limit", "10");
	cursor_for(SEARCH_KEY_REAL, 1, cur);
	/* The same search with another page size and facets keeps the cursor. */
	ACCEPTED("cursor", cur, "q", "스파", "limit", "50", "facets", "type");
	assert_true(params.has_cursor);
	assert_int_equal(params.cursor.phase, 1);
	assert_true(params.cursor.rowid == 4242);
	REFUSED("cursor", "cursor", cur, "q", "스파 x");
	REFUSED("cursor", "cursor", cur, "q", "스파", "type", "ticket");
	REFUSED("cursor", "cursor", cur, "q", "스파", "sort", "name");
	REFUSED("cursor", "cursor", "garbage!", "q", "스파");
	REFUSED("cursor", "cursor", "", "q", "스파");
	ACCEPTED("q", "스파", "cursor", cur);
	cursor_for(SEARCH_KEY_INT, 0, cur);
	REFUSED("cursor", "q", "스파", "cursor", cur);
	cursor_for(SEARCH_KEY_NONE, 0, cur);
	REFUSED("cursor", "q", "스파", "cursor", cur);

	/* Key kinds by sort: name TEXT; rating REAL or NONE; price INT; phase 1 only for
	 * relevance. */
	struct {
		const char *sort;
		enum search_key_kind kind;
		int phase;
		bool ok;
	} cases[] = {
		{"name", SEARCH_KEY_TEXT, 0, true},    {"name", SEARCH_KEY_TEXT, 1, false},
		{"name", SEARCH_KEY_REAL, 0, false},   {"name", SEARCH_KEY_NONE, 0, false},
		{"rating", SEARCH_KEY_REAL, 0, true},  {"rating", SEARCH_KEY_NONE, 0, true},
		{"rating", SEARCH_KEY_INT, 0, false},  {"rating", SEARCH_KEY_TEXT, 0, false},
		{"rating", SEARCH_KEY_REAL, 1, false}, {"price", SEARCH_KEY_INT, 0, true},
		{"price", SEARCH_KEY_REAL, 0, false},  {"-price", SEARCH_KEY_INT, 0, true},
		{"-price", SEARCH_KEY_NONE, 0, false}, {"-price", SEARCH_KEY_INT, 1, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ACCEPTED("sort", cases[i].sort, "from", "2027-01-01", "to", "2027-01-05");
		cursor_for(cases[i].kind, cases[i].phase, cur);
		struct rsd_fail f;
		int rc = parse(&f, "sort", cases[i].sort, "from", "2027-01-01", "to", "2027-01-05",
			       "cursor", cur, NULL);
		if (rc != (cases[i].ok ? RSD_OK : RSD_EINVAL))
			fail_msg("sort %s kind %d phase %d: rc %d", cases[i].sort, cases[i].kind,
				 cases[i].phase, rc);
		if (!cases[i].ok)
			assert_string_equal(f.field, "cursor");
	}
	/* Without sort, the default is name (no q) and the cursor is judged against it. */
	ACCEPTED("resort", "r1");
	cursor_for(SEARCH_KEY_TEXT, 0, cur);
	ACCEPTED("resort", "r1", "cursor", cur, "sort", "name");
	assert_string_equal(params.cursor.key_text, "오션뷰 디럭스 Twin");
}

/*
 * SEARCH_CURSOR_BYTES_MAX is what search.c gives search_cursor_encode: the longest key a
 * name sort can carry (PRODUCT_NAME_CHARS_MAX four-byte characters) must fit it.
 */
static void test_cursor_sizes(void **state)
{
	(void)state;
	char enc[CURSOR_BUF_BYTES];
	struct search_cursor c = sample_cursor(SEARCH_KEY_REAL);
	search_cursor_encode(&c, enc, SEARCH_CURSOR_BYTES_MAX);
	assert_true(strlen(enc) < 40);
	c = sample_cursor(SEARCH_KEY_TEXT);
	memset(c.key_text, 'n', sizeof(c.key_text) - 1);
	c.key_text[sizeof(c.key_text) - 1] = '\0';
	search_cursor_encode(&c, enc, SEARCH_CURSOR_BYTES_MAX);
	assert_true(strlen(enc) < SEARCH_CURSOR_BYTES_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fts_quotes_every_term),
		cmocka_unit_test(test_fts_one_cjk_character_is_a_prefix),
		cmocka_unit_test(test_fts_drops_terms_without_letters),
		cmocka_unit_test(test_fts_refuses_invalid_utf8),
		cmocka_unit_test(test_fts_limits),
		cmocka_unit_test(test_fts_runs_in_fts5),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_each_parameter_once),
		cmocka_unit_test(test_unknown_parameters),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_buffer_overflow_is_refused),
		cmocka_unit_test(test_type),
		cmocka_unit_test(test_resort_ids),
		cmocka_unit_test(test_attr_filters),
		cmocka_unit_test(test_stay),
		cmocka_unit_test(test_prices),
		cmocka_unit_test(test_currency),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_facets),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_query_hash),
		cmocka_unit_test(test_cursor_round_trips),
		cmocka_unit_test(test_cursor_refuses_malformed),
		cmocka_unit_test(test_cursor_tampering),
		cmocka_unit_test(test_cursor_in_a_search),
		cmocka_unit_test(test_cursor_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
