/*
 * fuzz_search_params.c — libFuzzer target for search_params.c. Each input is read three
 * ways: as a parameter list (pairs split on '&' or NUL, name and value on the first '='),
 * as a cursor and as q. Checks: a search that parses keeps its pointers inside p->buf and
 * its cross-parameter rules, accepts a cursor made for it with any limit, and gives an FTS5
 * expression SQLite runs without error; a cursor that decodes encodes back to the same
 * text and decodes to the same struct; q never yields a cut or overlong expression.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limits_rsd.h"
#include "rsd.h"
#include "search_params.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_BYTES_MAX	 (2 * URI_BYTES_MAX)
#define CURSOR_BUF_BYTES 2048 /* the longest cursor, whatever SEARCH_CURSOR_BYTES_MAX says */

/* One FTS5 table for the life of the process, to run every expression built. */
static sqlite3 *db;
static sqlite3_stmt *match;

static void db_open(void)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK || tokenizer_register(db) != RSD_OK)
		abort();
	if (sqlite3_exec(db,
			 "CREATE VIRTUAL TABLE t USING fts5(name, tokenize='rsd');"
			 "INSERT INTO t(rowid, name) VALUES (1, '오션뷰 디럭스 Ocean View'),"
			 "(2, '프리미엄스파 패키지'), (3, '東京ホテル スイート'), (4, 'NEAR \"a\" "
			 "OR b');",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?1", -1, &match, NULL) !=
		    SQLITE_OK)
		abort();
}

/* The expression must be valid FTS5 whatever the user typed. */
static void run_fts(const char *fts)
{
	sqlite3_bind_text(match, 1, fts, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(match)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		abort();
	sqlite3_reset(match);
	sqlite3_clear_bindings(match);
}

static bool same_cursor(const struct search_cursor *a, const struct search_cursor *b)
{
	if (a->query_hash != b->query_hash || a->phase != b->phase || a->key_kind != b->key_kind ||
	    a->rowid != b->rowid)
		return false;
	switch (a->key_kind) {
	case SEARCH_KEY_NONE: return true;
	case SEARCH_KEY_INT: return a->key_int == b->key_int;
	case SEARCH_KEY_REAL: return memcmp(&a->key_real, &b->key_real, sizeof(double)) == 0;
	case SEARCH_KEY_TEXT: return strcmp(a->key_text, b->key_text) == 0;
	}
	return false;
}

static void check_cursor(const char *s)
{
	struct search_cursor c, d;
	if (search_cursor_decode(s, &c) != RSD_OK)
		return;
	static char enc[CURSOR_BUF_BYTES];
	search_cursor_encode(&c, enc, sizeof(enc));
	if (strcmp(enc, s) != 0 || search_cursor_decode(enc, &d) != RSD_OK || !same_cursor(&c, &d))
		abort();
	if (c.phase < 0 || c.phase > 1 || (c.key_kind == SEARCH_KEY_REAL && !isfinite(c.key_real)))
		abort();
}

static void check_fts(const char *q, size_t len)
{
	char out[SEARCH_FTS_BYTES_MAX];
	struct rsd_fail f;
	int rc = search_params_fts(q, out, len, &f);
	if (rc == RSD_OK) {
		if (out[0] != '"' || strlen(out) >= len)
			abort();
		run_fts(out);
	} else if (rc != RSD_EINVAL || strcmp(f.field, "q") != 0 || (len > 0 && out[0] != '\0')) {
		abort();
	}
}

static bool inside(const struct search_params *p, const char *s)
{
	return s >= p->buf && s + strlen(s) < p->buf + p->buf_used;
}

static struct search_params params, again;

/* What a successful parse promises. */
static void check_params(const struct search_params *p)
{
	if (p->buf_used > sizeof(p->buf) || p->limit < 1 || p->limit > CATALOG_PAGE_MAX)
		abort();
	if (p->ntypes < 0 || p->ntypes > 4 || p->nresorts < 0 || p->nresorts > SEARCH_VALUES_MAX ||
	    p->nattrs < 0 || p->nattrs > SEARCH_ATTR_FILTERS_MAX || p->nfacets < 0 ||
	    p->nfacets > SEARCH_FACETS_MAX)
		abort();
	for (int i = 0; i < p->nresorts; i++)
		if (!inside(p, p->resorts[i]))
			abort();
	for (int i = 0; i < p->nfacets; i++)
		if (!inside(p, p->facets[i]))
			abort();
	for (int i = 0; i < p->nattrs; i++) {
		const struct search_attr_filter *a = &p->attrs[i];
		if (a->nvalues == 0 && !a->has_min && !a->has_max)
			abort();
		if ((a->has_min && !isfinite(a->min)) || (a->has_max && !isfinite(a->max)))
			abort();
		for (int k = 0; k < a->nvalues; k++)
			if (!inside(p, a->values[k]))
				abort();
	}
	if (p->currency && (!inside(p, p->currency) || strlen(p->currency) != 3))
		abort();
	if ((p->has_price_min || p->has_price_max || p->sort == SORT_PRICE ||
	     p->sort == SORT_PRICE_DESC) &&
	    !p->has_stay)
		abort();
	if (p->has_stay &&
	    (p->from_day >= p->to_day || p->to_day - p->from_day > PRICE_QUERY_DAYS_MAX))
		abort();
	if (p->sort == SORT_RELEVANCE && p->fts[0] == '\0')
		abort();
	if (p->has_cursor && p->cursor.query_hash != p->query_hash)
		abort();
	if (p->fts[0])
		run_fts(p->fts);
}

/* A cursor this search could have made: what search.c puts in one for the sort. */
static void cursor_for(const struct search_params *p, char *out)
{
	struct search_cursor c = {.query_hash = p->query_hash, .rowid = 17};
	switch (p->sort) {
	case SORT_RELEVANCE:
		c.key_kind = SEARCH_KEY_REAL;
		c.key_real = -3.5;
		c.phase = 1;
		break;
	case SORT_PRICE:
	case SORT_PRICE_DESC:
		c.key_kind = SEARCH_KEY_INT;
		c.key_int = 120000;
		break;
	case SORT_RATING: c.key_kind = SEARCH_KEY_NONE; break;
	case SORT_NAME:
		c.key_kind = SEARCH_KEY_TEXT;
		memcpy(c.key_text, "오션뷰", sizeof("오션뷰"));
		break;
	}
	search_cursor_encode(&c, out, CURSOR_BUF_BYTES);
}

static void check_pairs(char *text, size_t size)
{
	const char *names[QUERY_PARAMS_MAX + 2], *values[QUERY_PARAMS_MAX + 2];
	int n = 0;
	for (size_t i = 0; i <= size;) {
		size_t end = i;
		while (end < size && text[end] != '&' && text[end] != '\0')
			end++;
		if (n == QUERY_PARAMS_MAX)
			return; /* the HTTP layer refuses more */
		text[end] = '\0';
		char *eq = strchr(text + i, '=');
		if (eq)
			*eq = '\0';
		names[n] = text + i;
		values[n++] = eq ? eq + 1 : "";
		i = end + 1;
	}
	struct rsd_fail f;
	int rc = search_params_parse(names, values, n, &params, &f);
	if (rc != RSD_OK) {
		if (rc != RSD_EINVAL || f.detail[0] == '\0')
			abort();
		return;
	}
	check_params(&params);
	if (params.has_cursor)
		return;
	/* A cursor made for this search is accepted, with any page size, and changes nothing. */
	static char cursor[CURSOR_BUF_BYTES];
	cursor_for(&params, cursor);
	int limit_at = -1;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], "limit") == 0)
			limit_at = i;
	names[n] = "cursor";
	values[n] = cursor;
	if (limit_at < 0) {
		names[n + 1] = "limit";
		limit_at = n + 1;
	}
	values[limit_at] = "7";
	rc = search_params_parse(names, values, limit_at == n + 1 ? n + 2 : n + 1, &again, &f);
	if (rc != RSD_OK || !again.has_cursor || again.query_hash != params.query_hash ||
	    again.limit != 7)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (db == NULL)
		db_open();
	if (size > INPUT_BYTES_MAX)
		return 0;
	static char text[INPUT_BYTES_MAX + 1];
	memcpy(text, data, size);
	text[size] = '\0';
	check_cursor(text);
	check_fts(text, SEARCH_FTS_BYTES_MAX);
	check_fts(text, size > 0 ? data[0] % 64 : 0);
	check_pairs(text, size);
	return 0;
}
