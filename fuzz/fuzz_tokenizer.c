/*
 * fuzz_tokenizer.c — libFuzzer target for the "rsd" FTS5 tokenizer. Each input is tokenized
 * as a document, for highlight (aux), as a query and as a prefix query. Every token must be
 * non-empty, well-formed UTF-8, lie inside the input with starts never decreasing, and the
 * document and aux tokenizations must be identical (highlight relies on it).
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>

#include "rsd.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
	int n_text;
	int last_start;
	int count;
	uint64_t hash; /* of every token's bytes and offsets, to compare two tokenizations */
};

static int check_token(void *ctx, int tflags, const char *tok, int len, int start, int end)
{
	struct check *c = ctx;
	if (tflags != 0 || len <= 0 || start < c->last_start || start >= end || end > c->n_text)
		abort();
	if (rsd_utf8_chars(tok, (size_t)len) < 0)
		abort();
	c->last_start = start;
	c->count++;
	for (int i = 0; i < len; i++)
		c->hash = (c->hash ^ (unsigned char)tok[i]) * 1099511628211ULL;
	c->hash = (c->hash ^ (uint64_t)start << 32 ^ (uint64_t)end) * 1099511628211ULL;
	return SQLITE_OK;
}

/* The tokenizer is created once: the connection and instance live until the process exits. */
static sqlite3 *db;
static fts5_tokenizer methods;
static Fts5Tokenizer *instance;

static void tokenizer_open(void)
{
	sqlite3_stmt *st = NULL;
	fts5_api *api = NULL;
	void *ud = NULL;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK || tokenizer_register(db) != RSD_OK)
		abort();
	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		abort();
	sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (api == NULL || api->xFindTokenizer(api, TOKENIZER_NAME, &ud, &methods) != SQLITE_OK ||
	    methods.xCreate(ud, NULL, 0, &instance) != SQLITE_OK)
		abort();
}

static struct check run(const char *text, int n, int flags)
{
	struct check c = {.n_text = n, .hash = 1469598103934665603ULL};
	if (methods.xTokenize(instance, &c, flags, text, n, check_token) != SQLITE_OK)
		abort();
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (instance == NULL)
		tokenizer_open();
	if (size > 1 << 20)
		return 0;
	const char *text = (const char *)data;
	int n = (int)size;
	struct check doc = run(text, n, FTS5_TOKENIZE_DOCUMENT);
	struct check aux = run(text, n, FTS5_TOKENIZE_AUX);
	struct check query = run(text, n, FTS5_TOKENIZE_QUERY);
	run(text, n, FTS5_TOKENIZE_QUERY | FTS5_TOKENIZE_PREFIX);
	/* A query drops at most one trailing unigram per run; it never adds tokens. */
	if (doc.count != aux.count || doc.hash != aux.hash || query.count > doc.count)
		abort();
	return 0;
}
