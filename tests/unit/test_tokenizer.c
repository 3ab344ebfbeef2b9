/*
 * Unit tests for tokenizer.c: the exact tokens and offsets of the "rsd" tokenizer, and what
 * MATCH, phrases, prefixes and highlight() give on a real in-memory FTS5 table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "rsd.h"
#include "tokenizer.h"

/* rowid, name, description: the rowids the MATCH tests expect refer to this list. */
static const char *const catalog[][2] = {
	{"오션뷰 디럭스", "Ocean view room with a balcony"},   /* 1 */
	{"프리미엄스파 패키지", "마사지 2회와 조식 포함"},     /* 2 */
	{"Déluxe Ocean View", "King bed, sea-facing balcony"}, /* 3 */
	{"객실 업그레이드", "체크인 시 상위 객실로 변경"},     /* 4 */
	{"설악 마운틴 스파", "노천탕과 사우나"},	       /* 5 */
	{"키즈 풀 빌라", "Private pool villa for families"},   /* 6 */
	{"오션 Deluxe Twin", "트윈 베드 두 개"},	       /* 7 */
	{"Standard Twin", "Garden side, no view"},	       /* 8 */
	{"Café Crème Lounge", "라운지 이용권"},		       /* 9 */
	{"東京ホテル スイート", "露天風呂付き客室"},	       /* 10 */
	{"海景豪华套房", "Sea view suite"},		       /* 11 */
	{"Résidence Suite", "뷰티 트리트먼트 포함"},	       /* 12 */
	{"스키 리프트권", "하루 종일 이용"},		       /* 13 */
};

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

static int setup_db(void **state)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(tokenizer_register(db), RSD_OK);
	exec_ok(db, "CREATE VIRTUAL TABLE t USING fts5(name, description, tokenize='rsd')");
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO t(rowid, name, description) "
					    "VALUES (?1, ?2, ?3)",
					    -1, &st, NULL),
			 SQLITE_OK);
	for (size_t i = 0; i < sizeof(catalog) / sizeof(catalog[0]); i++) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i + 1);
		sqlite3_bind_text(st, 2, catalog[i][0], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, catalog[i][1], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	*state = db;
	return 0;
}

static int teardown_db(void **state)
{
	assert_int_equal(sqlite3_close(*state), SQLITE_OK);
	return 0;
}

/* The rowids `t MATCH q` returns, in order, as "1,7" ("" for none). */
static void match_rows(sqlite3 *db, const char *q, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	size_t used = 0;
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY rowid",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		used += (size_t)snprintf(out + used, outlen - used, "%s%lld", used ? "," : "",
					 (long long)sqlite3_column_int64(st, 0));
		assert_true(used < outlen);
	}
	if (rc != SQLITE_DONE)
		fail_msg("MATCH %s: %s", q, sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

static void expect_rows(sqlite3 *db, const char *q, const char *want)
{
	char got[256];
	match_rows(db, q, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("MATCH '%s': got {%s}, want {%s}", q, got, want);
}

static void test_korean_bigrams_match_inside_words(void **state)
{
	sqlite3 *db = *state;
	expect_rows(db, "오션", "1,7");
	expect_rows(db, "스파", "2,5");
	expect_rows(db, "객실", "4");
	expect_rows(db, "객실 업그레이드", "4");
	expect_rows(db, "레이드", "4");
	expect_rows(db, "name:객실", "4");
	/* Bigrams that no document has. */
	expect_rows(db, "뷰디", "");
	expect_rows(db, "럭스디", "");
	expect_rows(db, "오션뷰디럭스", "");
}

static void test_one_character_terms(void **state)
{
	sqlite3 *db = *state;
	/* With `*` (what the search layer sends) a syllable matches wherever it stands. */
	expect_rows(db, "뷰*", "1,12");
	expect_rows(db, "스*", "1,2,5,13");
	expect_rows(db, "션*", "1,7");
	/* Without it, only runs that end with the syllable or are just that syllable. */
	expect_rows(db, "션", "7");
	expect_rows(db, "뷰", "1");
	expect_rows(db, "풀", "6");
	expect_rows(db, "개", "7");
	expect_rows(db, "오", "");
}

static void test_latin_folds_case_and_diacritics(void **state)
{
	sqlite3 *db = *state;
	expect_rows(db, "deluxe", "3,7");
	expect_rows(db, "DELUXE", "3,7");
	expect_rows(db, "Déluxe", "3,7");
	expect_rows(db, "Deluxe ocean", "3");
	expect_rows(db, "cafe creme", "9");
	expect_rows(db, "view", "1,3,8,11");
	expect_rows(db, "resid*", "12");
	expect_rows(db, "delux", "");
}

static void test_phrases_across_runs(void **state)
{
	sqlite3 *db = *state;
	expect_rows(db, "\"오션뷰\"", "1");
	expect_rows(db, "\"오션뷰 디럭스\"", "1");
	expect_rows(db, "\"스파 패키지\"", "2");
	expect_rows(db, "\"오션 deluxe\"", "7");
	expect_rows(db, "\"오션 deluxe twin\"", "7");
	expect_rows(db, "오션 deluxe", "7");
	expect_rows(db, "오션Deluxe", "7");
	/* The phrase needs the run to end after 션; in 오션뷰 it does not. */
	expect_rows(db, "\"오션 뷰\"", "");
	expect_rows(db, "\"디럭스 오션뷰\"", "");
	expect_rows(db, "NEAR(오션 twin, 2)", "7");
	expect_rows(db, "NEAR(오션 트윈, 5)", "");
}

static void test_chinese_and_japanese(void **state)
{
	sqlite3 *db = *state;
	expect_rows(db, "ホテル", "10");
	expect_rows(db, "東京", "10");
	expect_rows(db, "露天風呂", "10");
	expect_rows(db, "客室", "10");
	expect_rows(db, "海景", "11");
	expect_rows(db, "套房", "11");
	expect_rows(db, "海景 suite", "11");
	expect_rows(db, "京*", "10");
	expect_rows(db, "景房", "");
}

/* highlight(t, col, '[', ']') for the single row rowid. */
static void expect_highlight(sqlite3 *db, const char *q, int rowid, int col, const char *want)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT highlight(t, ?3, '[', ']') FROM t "
					    "WHERE t MATCH ?1 AND rowid = ?2",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, rowid);
	sqlite3_bind_int(st, 3, col);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *got = (const char *)sqlite3_column_text(st, 0);
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("highlight '%s' row %d: got '%s', want '%s'", q, rowid, got, want);
	sqlite3_finalize(st);
}

static void test_highlight_offsets(void **state)
{
	sqlite3 *db = *state;
	expect_highlight(db, "오션", 1, 0, "[오션]뷰 디럭스");
	expect_highlight(db, "스파", 2, 0, "프리미엄[스파] 패키지");
	expect_highlight(db, "뷰*", 1, 0, "오션[뷰] 디럭스");
	expect_highlight(db, "\"오션뷰\"", 1, 0, "[오션뷰] 디럭스");
	expect_highlight(db, "객실", 4, 1, "체크인 시 상위 [객실]로 변경");
	expect_highlight(db, "deluxe", 3, 0, "[Déluxe] Ocean View");
	/* The Latin run starts after a Korean one: unicode61's offsets must be shifted. */
	expect_highlight(db, "deluxe", 7, 0, "오션 [Deluxe] Twin");
	expect_highlight(db, "twin 오션", 7, 0, "[오션] Deluxe [Twin]");
	expect_highlight(db, "ホテル", 10, 0, "東京[ホテル] スイート");
}

/* Collects tokens as "tok@start-end" separated by spaces; stops with SQLITE_ABORT after
 * limit tokens so that error propagation can be tested. */
struct collect {
	char out[512];
	size_t used;
	int count, limit;
};

static int collect_token(void *ctx, int tflags, const char *tok, int len, int start, int end)
{
	struct collect *c = ctx;
	assert_int_equal(tflags, 0);
	if (c->limit > 0 && c->count == c->limit)
		return SQLITE_ABORT;
	c->count++;
	c->used += (size_t)snprintf(c->out + c->used, sizeof(c->out) - c->used, "%s%.*s@%d-%d",
				    c->used ? " " : "", len, tok, start, end);
	assert_true(c->used < sizeof(c->out));
	return SQLITE_OK;
}

/* Runs the registered tokenizer on text (n bytes) with flags, as FTS5 would. */
static int tokenize(sqlite3 *db, int flags, const char *text, int n, struct collect *c)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	fts5_tokenizer m;
	Fts5Tokenizer *tok = NULL;
	void *ud = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	assert_non_null(api);
	assert_int_equal(api->xFindTokenizer(api, TOKENIZER_NAME, &ud, &m), SQLITE_OK);
	assert_int_equal(m.xCreate(ud, NULL, 0, &tok), SQLITE_OK);
	c->out[0] = '\0';
	c->used = 0;
	c->count = 0;
	int rc = m.xTokenize(tok, c, flags, text, n, collect_token);
	m.xDelete(tok);
	return rc;
}

static void expect_tokens(sqlite3 *db, int flags, const char *text, int n, const char *want)
{
	struct collect c = {.limit = 0};
	assert_int_equal(tokenize(db, flags, text, n < 0 ? (int)strlen(text) : n, &c), SQLITE_OK);
	if (strcmp(c.out, want) != 0)
		fail_msg("tokens of '%s' (flags %d): got '%s', want '%s'", text, flags, c.out,
			 want);
}

static void test_tokens_document(void **state)
{
	sqlite3 *db = *state;
	const int doc = FTS5_TOKENIZE_DOCUMENT;
	expect_tokens(db, doc, "오션뷰", -1, "오션@0-6 션뷰@3-9 뷰@6-9");
	expect_tokens(db, doc, "Déluxe Ocean", -1, "deluxe@0-7 ocean@8-13");
	expect_tokens(db, doc, "뷰", -1, "뷰@0-3");
	expect_tokens(db, doc, "오션 Deluxe", -1, "오션@0-6 션@3-6 deluxe@7-13");
	expect_tokens(db, doc, "Ab오션cd", -1, "ab@0-2 오션@2-8 션@5-8 cd@8-10");
	expect_tokens(db, doc, "ㅋㅋ", -1, "ㅋㅋ@0-6 ㅋ@3-6");
	/* U+30FB, the katakana middle dot, separates words. */
	expect_tokens(db, doc, "ホテ・ル", -1, "ホテ@0-6 テ@3-6 ル@9-12");
	expect_tokens(db, FTS5_TOKENIZE_AUX, "오션뷰 x", -1, "오션@0-6 션뷰@3-9 뷰@6-9 x@10-11");
	expect_tokens(db, doc, "", 0, "");
	expect_tokens(db, doc, " .,!  ", -1, "");
}

static void test_tokens_query(void **state)
{
	sqlite3 *db = *state;
	const int q = FTS5_TOKENIZE_QUERY;
	expect_tokens(db, q, "오션뷰", -1, "오션@0-6 션뷰@3-9");
	expect_tokens(db, q, "오션", -1, "오션@0-6");
	expect_tokens(db, q, "오션 ", -1, "오션@0-6");
	expect_tokens(db, q | FTS5_TOKENIZE_PREFIX, "뷰", -1, "뷰@0-3");
	expect_tokens(db, q, "Déluxe Ocean", -1, "deluxe@0-7 ocean@8-13");
	/* The trailing unigram comes back when another token proves the run ended. */
	expect_tokens(db, q, "오션 deluxe", -1, "오션@0-6 션@3-6 deluxe@7-13");
	expect_tokens(db, q, "오션뷰 디럭스", -1, "오션@0-6 션뷰@3-9 뷰@6-9 디럭@10-16 럭스@13-19");
	expect_tokens(db, q, "오션 뷰", -1, "오션@0-6 션@3-6 뷰@7-10");
	expect_tokens(db, q, "오션 !!", -1, "오션@0-6");
}

static void test_invalid_utf8_separates(void **state)
{
	sqlite3 *db = *state;
	const int doc = FTS5_TOKENIZE_DOCUMENT;
	/* A stray continuation byte, a surrogate, an overlong '/', a truncated 가. */
	expect_tokens(db, doc,
		      "ab\xbf"
		      "cd",
		      -1, "ab@0-2 cd@3-5");
	expect_tokens(db, doc, "오\xed\xa0\x80션", -1, "오@0-3 션@6-9");
	expect_tokens(db, doc, "x\xc0\xafy", -1, "x@0-1 y@3-4");
	expect_tokens(db, doc, "오션\xea\xb0", -1, "오션@0-6 션@3-6");
	expect_tokens(db, doc, "\xff\xfe\xf8\x80", -1, "");
	/* An embedded NUL is a character like any separator. */
	expect_tokens(db, doc, "ab\0오", 6, "ab@0-2 오@3-6");
}

static void test_callback_error_stops_tokenizing(void **state)
{
	sqlite3 *db = *state;
	struct collect c = {.limit = 1};
	assert_int_equal(tokenize(db, FTS5_TOKENIZE_DOCUMENT, "오션뷰", 9, &c), SQLITE_ABORT);
	assert_int_equal(c.count, 1);
	c.limit = 2;
	assert_int_equal(tokenize(db, FTS5_TOKENIZE_DOCUMENT, "a b c", 5, &c), SQLITE_ABORT);
	assert_int_equal(c.count, 2);
	/* A failure while flushing the pending unigram stops tokenizing too. */
	c.limit = 1;
	assert_int_equal(tokenize(db, FTS5_TOKENIZE_QUERY, "오션 x", 8, &c), SQLITE_ABORT);
	assert_int_equal(c.count, 1);
}

static void test_vocabulary_and_integrity(void **state)
{
	(void)state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char terms[256] = "";
	size_t used = 0;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(tokenizer_register(db), RSD_OK);
	exec_ok(db, "CREATE VIRTUAL TABLE s USING fts5(name, tokenize='rsd');"
		    "CREATE VIRTUAL TABLE v USING fts5vocab(s, 'row');"
		    "INSERT INTO s(name) VALUES ('오션뷰'), ('Déluxe Ocean');");
	assert_int_equal(
		sqlite3_prepare_v2(db, "SELECT term, doc FROM v ORDER BY term", -1, &st, NULL),
		SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		used += (size_t)snprintf(terms + used, sizeof(terms) - used, "%s%s:%d",
					 used ? " " : "", sqlite3_column_text(st, 0),
					 sqlite3_column_int(st, 1));
	sqlite3_finalize(st);
	assert_string_equal(terms, "deluxe:1 ocean:1 뷰:1 션뷰:1 오션:1");
	exec_ok(db, "INSERT INTO s(s) VALUES ('integrity-check')");
	/* Arguments are refused: they would change what is indexed under the same name. */
	assert_int_not_equal(sqlite3_exec(db,
					  "CREATE VIRTUAL TABLE x USING fts5(a, tokenize='rsd x')",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	/* Registering again replaces the tokenizer; existing tables keep working. */
	assert_int_equal(tokenizer_register(db), RSD_OK);
	exec_ok(db, "INSERT INTO s(name) VALUES ('오션')");
	exec_ok(db, "INSERT INTO s(s) VALUES ('integrity-check')");
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_invalid_utf8_documents_index(void **state)
{
	sqlite3 *db = *state;
	sqlite3_stmt *st = NULL;
	unsigned char junk[4096];
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < sizeof(junk); i++) {
		/* xorshift32: deterministic bytes, Hangul lead bytes among them. */
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		junk[i] = (unsigned char)x;
	}
	memcpy(junk + 100, " 오션 \xff deluxe ", 17);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO t(rowid, name, description) "
					    "VALUES (100, ?1, 'x')",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, (const char *)junk, (int)sizeof(junk), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
	expect_rows(db, "deluxe", "3,7,100");
	exec_ok(db, "DELETE FROM t WHERE rowid = 100");
	exec_ok(db, "INSERT INTO t(t) VALUES ('integrity-check')");
	expect_rows(db, "deluxe", "3,7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_korean_bigrams_match_inside_words, setup_db,
						teardown_db),
		cmocka_unit_test_setup_teardown(test_one_character_terms, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_latin_folds_case_and_diacritics, setup_db,
						teardown_db),
		cmocka_unit_test_setup_teardown(test_phrases_across_runs, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_chinese_and_japanese, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_highlight_offsets, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_tokens_document, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_tokens_query, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_separates, setup_db, teardown_db),
		cmocka_unit_test_setup_teardown(test_callback_error_stops_tokenizing, setup_db,
						teardown_db),
		cmocka_unit_test(test_vocabulary_and_integrity),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_documents_index, setup_db,
						teardown_db),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
