/*
 * tokenizer.c — the FTS5 tokenizer "rsd": CJK runs become bigrams, everything else goes to
 * FTS5's own unicode61 tokenizer (remove_diacritics 2), one run at a time.
 *
 * Invariants: every token handed to FTS5 is non-empty, well-formed UTF-8, and its offsets
 * satisfy 0 <= start < end <= nText with starts never decreasing. CJK tokens point into the
 * caller's text (no copy, no allocation per token). Document and aux tokenization are
 * identical, so highlight() sees the positions that were indexed.
 */
#include "tokenizer.h"

#include <stdint.h>
#include <stdlib.h>

#include "banned.h"

/* What unicode61 is given for the non-CJK runs; fixed so the index never depends on a table's
 * tokenize= arguments. */
#define BASE_TOKENIZER "unicode61"

enum char_class {
	CHAR_INVALID, /* a byte that does not start a well-formed UTF-8 character */
	CHAR_CJK,
	CHAR_OTHER,
};

/* One tokenizer instance: our handle on an instance of unicode61. */
struct rsd_tokenizer {
	fts5_tokenizer base;
	Fts5Tokenizer *base_tok;
};

typedef int (*token_fn)(void *ctx, int tflags, const char *tok, int len, int start, int end);

/* The state of one xTokenize call. */
struct tok_call {
	void *ctx;
	token_fn emit;
	const char *text;
	int shift; /* start of the run unicode61 is reading, added to the offsets it reports */
	/* Query mode: the last character of a CJK run, emitted only if another token follows. */
	int pending_start;
	int pending_end; /* 0 when nothing is pending */
};

/* Hangul syllables and jamo, kana and CJK ideographs (all three-byte UTF-8). */
static const struct {
	uint32_t lo, hi;
} cjk_ranges[] = {
	{0x1100, 0x11FF}, /* Hangul jamo */
	{0x3040, 0x30FA}, /* hiragana, katakana: U+30FB is the middle dot, a separator */
	{0x30FC, 0x30FF}, /* prolonged sound mark, iteration marks */
	{0x3130, 0x318F}, /* Hangul compatibility jamo */
	{0x3400, 0x4DBF}, /* CJK extension A */
	{0x4E00, 0x9FFF}, /* CJK unified ideographs */
	{0xAC00, 0xD7A3}, /* Hangul syllables */
	{0xF900, 0xFAFF}, /* CJK compatibility ideographs */
};

static int is_cjk(uint32_t c)
{
	for (size_t i = 0; i < sizeof(cjk_ranges) / sizeof(cjk_ranges[0]); i++)
		if (c >= cjk_ranges[i].lo && c <= cjk_ranges[i].hi)
			return 1;
	return 0;
}

/*
 * Decodes the character at s (n > 0 bytes available) into *cp and returns its length, or 0
 * when the bytes there are not a well-formed character: unicode61 would otherwise fold stray
 * bytes into tokens, and overlong forms would give one character two spellings.
 */
static int utf8_decode(const unsigned char *s, int n, uint32_t *cp)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	uint32_t c = s[0];
	int len;
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0)
		len = 2, c &= 0x1F;
	else if ((c & 0xF0) == 0xE0)
		len = 3, c &= 0x0F;
	else if ((c & 0xF8) == 0xF0)
		len = 4, c &= 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Classifies the character at text[i] and stores its length (1 for an invalid byte). */
static enum char_class char_at(const char *text, int n, int i, int *len)
{
	uint32_t c;
	*len = utf8_decode((const unsigned char *)text + i, n - i, &c);
	if (*len == 0) {
		*len = 1;
		return CHAR_INVALID;
	}
	return is_cjk(c) ? CHAR_CJK : CHAR_OTHER;
}

/* Returns the class of the run starting at i and stores its end in *end. Invalid bytes are
 * runs of one byte, so they separate the runs around them. */
static enum char_class run_at(const char *text, int n, int i, int *end)
{
	int len;
	enum char_class cls = char_at(text, n, i, &len);
	i += len;
	while (cls != CHAR_INVALID && i < n && char_at(text, n, i, &len) == cls)
		i += len;
	*end = i;
	return cls;
}

/* Hands one token to FTS5, after the pending trailing unigram, which another token following
 * it has just proved necessary. */
static int emit(struct tok_call *c, int tflags, const char *tok, int len, int start, int end)
{
	if (c->pending_end > 0) {
		int ps = c->pending_start, pe = c->pending_end;
		c->pending_end = 0;
		int rc = c->emit(c->ctx, 0, c->text + ps, pe - ps, ps, pe);
		if (rc != SQLITE_OK)
			return rc;
	}
	return c->emit(c->ctx, tflags, tok, len, start, end);
}

static int emit_span(struct tok_call *c, int start, int end)
{
	return emit(c, 0, c->text + start, end - start, start, end);
}

/* unicode61's callback: its offsets are relative to the run it was given. */
static int base_token(void *ctx, int tflags, const char *tok, int len, int start, int end)
{
	struct tok_call *c = ctx;
	return emit(c, tflags, tok, len, start + c->shift, end + c->shift);
}

static int other_run(struct rsd_tokenizer *t, struct tok_call *c, int flags, int start, int end)
{
	c->shift = start;
	return t->base.xTokenize(t->base_tok, c, flags, c->text + start, end - start, base_token);
}

/* Emits the bigrams of the CJK run [start, end), then its last character: at once in a
 * document, in a query only if another token follows (see tokenizer.h). */
static int cjk_run(struct tok_call *c, int query, int start, int end)
{
	int len, prev = start;
	int rc = SQLITE_OK;
	char_at(c->text, end, start, &len);
	int i = start + len;
	while (i < end && rc == SQLITE_OK) {
		char_at(c->text, end, i, &len);
		rc = emit_span(c, prev, i + len);
		prev = i;
		i += len;
	}
	if (rc != SQLITE_OK)
		return rc;
	if (!query || prev == start)
		return emit_span(c, prev, end);
	c->pending_start = prev;
	c->pending_end = end;
	return SQLITE_OK;
}

static int rsd_tokenize(Fts5Tokenizer *tok, void *ctx, int flags, const char *text, int n,
			token_fn xToken)
{
	struct rsd_tokenizer *t = (struct rsd_tokenizer *)tok;
	struct tok_call c = {.ctx = ctx, .emit = xToken, .text = text};
	int query = (flags & FTS5_TOKENIZE_QUERY) != 0;
	int rc = SQLITE_OK;
	for (int i = 0, end; i < n && rc == SQLITE_OK; i = end) {
		enum char_class cls = run_at(text, n, i, &end);
		if (cls == CHAR_CJK)
			rc = cjk_run(&c, query, i, end);
		else if (cls == CHAR_OTHER)
			rc = other_run(t, &c, flags, i, end);
	}
	return rc;
}

static int rsd_create(void *api_ptr, const char **args, int nargs, Fts5Tokenizer **out)
{
	fts5_api *api = api_ptr;
	const char *base_args[] = {"remove_diacritics", "2"};
	void *base_ctx = NULL;
	(void)args;
	*out = NULL;
	/* Arguments would change what is indexed without changing the tokenizer's name. */
	if (nargs != 0)
		return SQLITE_ERROR;
	struct rsd_tokenizer *t = rsd_calloc(1, sizeof(*t));
	int rc = api->xFindTokenizer(api, BASE_TOKENIZER, &base_ctx, &t->base);
	if (rc == SQLITE_OK)
		rc = t->base.xCreate(base_ctx, base_args, 2, &t->base_tok);
	if (rc != SQLITE_OK) {
		free(t);
		return rc;
	}
	*out = (Fts5Tokenizer *)t;
	return SQLITE_OK;
}

static void rsd_delete(Fts5Tokenizer *tok)
{
	struct rsd_tokenizer *t = (struct rsd_tokenizer *)tok;
	if (t == NULL)
		return;
	t->base.xDelete(t->base_tok);
	free(t);
}

/* Returns db's fts5_api, which lives as long as db, or NULL without FTS5. */
static fts5_api *fts5_api_of(sqlite3 *db)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	/* Version 2 is the first with xFindTokenizer; later versions keep these members. */
	return api != NULL && api->iVersion >= 2 ? api : NULL;
}

/*
 * rsd_rank(table, w0, w1, ...): BM25's term-frequency part with fixed length norms and no
 * IDF, so a row's score depends on the row and the query only, never on the rest of the
 * table. Scores stay put when rows are added, which keeps (score, rowid) cursors stable.
 */
static void rsd_rank(const Fts5ExtensionApi *api, Fts5Context *ctx, sqlite3_context *out, int nval,
		     sqlite3_value **vals)
{
	enum { COLS_MAX = 16, PHRASES_MAX = 16 };
	const double k1 = 1.2, b = 0.75, avg_tokens = 8.0;
	int ncol = api->xColumnCount(ctx), nphrase = api->xPhraseCount(ctx), ninst = 0;
	if (ncol > COLS_MAX)
		ncol = COLS_MAX;
	if (nphrase > PHRASES_MAX)
		nphrase = PHRASES_MAX;
	int counts[PHRASES_MAX][COLS_MAX] = {{0}};
	if (api->xInstCount(ctx, &ninst) != SQLITE_OK) {
		sqlite3_result_error(out, "rsd_rank: cannot read matches", -1);
		return;
	}
	for (int i = 0; i < ninst; i++) {
		int phrase, col, off;
		if (api->xInst(ctx, i, &phrase, &col, &off) == SQLITE_OK && phrase < nphrase &&
		    col < ncol)
			counts[phrase][col]++;
	}
	double score = 0;
	for (int c = 0; c < ncol; c++) {
		int len = 0;
		double w = c < nval ? sqlite3_value_double(vals[c]) : 1.0;
		api->xColumnSize(ctx, c, &len);
		double norm = k1 * (1 - b + b * len / avg_tokens);
		for (int p = 0; p < nphrase; p++)
			if (counts[p][c])
				score += w * counts[p][c] * (k1 + 1) / (counts[p][c] + norm);
	}
	sqlite3_result_double(out, score);
}

int tokenizer_register(sqlite3 *db)
{
	fts5_api *api = fts5_api_of(db);
	fts5_tokenizer methods = {rsd_create, rsd_delete, rsd_tokenize};
	if (api == NULL)
		return RSD_EIO;
	/* The api pointer is the tokenizer's context: xCreate needs it to find unicode61. */
	if (api->xCreateTokenizer(api, TOKENIZER_NAME, api, &methods, NULL) != SQLITE_OK ||
	    api->xCreateFunction(api, "rsd_rank", NULL, rsd_rank, NULL) != SQLITE_OK)
		return RSD_EIO;
	return RSD_OK;
}
