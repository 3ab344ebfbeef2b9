/*
 * search_params.c — the parameters of GET /v1/products, parsed and checked before any SQL.
 *
 * Invariants of a struct search_params this file fills: every string pointer points into
 * p->buf or at a string literal (never at the caller's values), so the struct must not be
 * copied by value; p->fts holds only quoted FTS5 phrases; the cursor, when present, was
 * made for this very search (same query_hash) and its key kind fits the sort.
 *
 * A cursor is base64url (no padding) of a small binary record, version 1, big-endian:
 *   version (1 byte) | query_hash (8) | phase (1) | key_kind (1) | rowid (8) | key
 * where key is nothing (NONE), 8 bytes (INT, or the bits of a REAL) or a 2-byte length and
 * that many bytes of UTF-8 (TEXT). Decoding accepts exactly what encoding produces.
 */
#include "search_params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price.h"
#include "banned.h"

#define CURSOR_VERSION	      1
#define CURSOR_HEAD_BYTES     19 /* version, query_hash, phase, key_kind, rowid */
#define CURSOR_TEXT_BYTES_MAX (sizeof(((struct search_cursor *)0)->key_text) - 1)
#define CURSOR_RAW_BYTES_MAX  (CURSOR_HEAD_BYTES + 2 + CURSOR_TEXT_BYTES_MAX)
/* base64 without padding of the longest record, plus the NUL. */
#define CURSOR_ENCODED_BYTES_MAX ((CURSOR_RAW_BYTES_MAX * 4 + 2) / 3 + 1)

/* ---- UTF-8 and the terms of q ---- */

/* Decodes the character at s[0..n) of a string already known to be valid UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
	RSD_ASSERT(len <= n);
	if (len > 1)
		c &= 0x7F >> len;
	for (size_t i = 1; i < len; i++)
		c = (c << 6) | (s[i] & 0x3F);
	*cp = c;
	return len;
}

/*
 * The characters the "rsd" tokenizer indexes as CJK (tokenizer.c's table): a term of one
 * of them alone is a unigram query that would match only at the end of a run without `*`.
 */
static bool is_cjk(uint32_t c)
{
	static const struct {
		uint32_t lo, hi;
	} ranges[] = {
		{0x1100, 0x11FF}, {0x3040, 0x30FA}, {0x30FC, 0x30FF}, {0x3130, 0x318F},
		{0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xF900, 0xFAFF},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (c >= ranges[i].lo && c <= ranges[i].hi)
			return true;
	return false;
}

/* ASCII white space and the ideographic space that Korean and Japanese keyboards type. */
static bool is_space(uint32_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x3000;
}

/*
 * Whether the tokenizer would index code point c beyond ASCII: not Latin-1 punctuation,
 * general punctuation, symbols, arrows, dingbats, CJK punctuation, full-width punctuation or
 * emoji (a query of only those finds nothing and is refused).
 */
static bool is_word_char(uint32_t c)
{
	static const uint32_t not_words[][2] = {
		{0x80, 0xBF},	  {0xD7, 0xD7},	    {0xF7, 0xF7},	{0x2000, 0x2BFF},
		{0x3000, 0x303F}, {0xFE30, 0xFE4F}, {0xFF01, 0xFF0F},	{0xFF1A, 0xFF20},
		{0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0x1F000, 0x1FAFF}, {0x30FB, 0x30FB},
	};
	for (size_t i = 0; i < sizeof(not_words) / sizeof(not_words[0]); i++)
		if (c >= not_words[i][0] && c <= not_words[i][1])
			return false;
	return c >= 0x80;
}

static bool is_alnum_ascii(uint32_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Appends s[0..n) to out if it fits with a NUL after it. */
static bool put(char *out, size_t len, size_t *used, const char *s, size_t n)
{
	if (len - *used <= n)
		return false;
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
	return true;
}

/* Appends the term s[0..n) as a quoted phrase, with `*` when asked. */
static bool put_phrase(char *out, size_t len, size_t *used, const char *s, size_t n, bool prefix)
{
	if ((*used > 0 && !put(out, len, used, " ", 1)) || !put(out, len, used, "\"", 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		/* Inside an FTS5 string a double quote is written twice; nothing else is special.
		 */
		if (!put(out, len, used, s + i, 1) ||
		    (s[i] == '"' && !put(out, len, used, "\"", 1)))
			return false;
	}
	return put(out, len, used, prefix ? "\"*" : "\"", prefix ? 2 : 1);
}

/* search_params_fts, leaving out with whatever it had appended when it fails. */
static int build_fts(const char *q, char *out, size_t len, struct rsd_fail *f)
{
	size_t qlen = strlen(q);
	long chars = rsd_utf8_chars(q, qlen);
	if (chars < 0)
		return rsd_failf(f, RSD_EINVAL, "q", "'q' is not valid UTF-8");
	if (chars > SEARCH_Q_CHARS_MAX)
		return rsd_failf(f, RSD_EINVAL, "q", "'q' is longer than %d characters",
				 SEARCH_Q_CHARS_MAX);
	const unsigned char *s = (const unsigned char *)q;
	size_t used = 0, i = 0;
	int terms = 0;
	while (i < qlen) {
		uint32_t cp;
		size_t start = i, clen = utf8_next(s + i, qlen - i, &cp);
		if (is_space(cp)) {
			i += clen;
			continue;
		}
		bool searchable = false;
		uint32_t first = cp;
		size_t nchars = 0;
		while (i < qlen && !is_space(cp)) {
			searchable = searchable || is_word_char(cp) || is_alnum_ascii(cp);
			nchars++;
			i += clen;
			if (i < qlen)
				clen = utf8_next(s + i, qlen - i, &cp);
		}
		if (!searchable)
			continue;
		if (++terms > SEARCH_TERMS_MAX)
			return rsd_failf(f, RSD_EINVAL, "q", "'q' has more than %d search terms",
					 SEARCH_TERMS_MAX);
		bool prefix = nchars == 1 && is_cjk(first);
		if (!put_phrase(out, len, &used, q + start, i - start, prefix))
			return rsd_failf(f, RSD_EINVAL, "q", "'q' makes too long a search");
	}
	if (terms == 0)
		return rsd_failf(f, RSD_EINVAL, "q", "'q' has no letter or digit to search for");
	return RSD_OK;
}

int search_params_fts(const char *q, char *out, size_t len, struct rsd_fail *f)
{
	if (len == 0)
		return rsd_failf(f, RSD_EINVAL, "q", "'q' makes too long a search");
	out[0] = '\0';
	int err = build_fts(q, out, len, f);
	if (err)
		out[0] = '\0'; /* never half an expression */
	return err;
}

/* ---- values ---- */

/* A decimal integer in [min, max] (min >= 0): digits only, nothing before or after. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (*s == '\0')
		return false;
	int64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = v;
	return true;
}

/* A finite decimal number. strtod alone would also take " 1", "+1", "0x1p4", "inf" and
 * "nan", so the characters are checked first. */
static bool parse_real(const char *s, double *out)
{
	if (!(*s == '-' || *s == '.' || (*s >= '0' && *s <= '9')))
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' ||
		      *c == '+' || *c == '-'))
			return false;
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(d))
		return false;
	/* -0 and 0 are the same bound; one spelling keeps query_hash canonical. */
	*out = d == 0 ? 0 : d;
	return true;
}

/* An attribute key: 1..ATTR_KEY_BYTES_MAX bytes of [a-z0-9_], starting with a letter. */
static bool attr_key_ok(const char *s, size_t n)
{
	if (n < 1 || n > ATTR_KEY_BYTES_MAX || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool resort_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > ENTITY_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum_ascii((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static bool facet_ok(const char *s)
{
	if (strcmp(s, "type") == 0 || strcmp(s, "resort") == 0)
		return true;
	return strncmp(s, "attr.", 5) == 0 && attr_key_ok(s + 5, strlen(s + 5));
}

static const char *const type_names[] = {"room_type", "facility", "ticket", "package"};

/* Copies s (n bytes) with a NUL into p->buf; returns the copy or NULL when full. */
static char *buf_copy(struct search_params *p, const char *s, size_t n)
{
	if (sizeof(p->buf) - p->buf_used <= n)
		return NULL;
	char *copy = p->buf + p->buf_used;
	memcpy(copy, s, n);
	copy[n] = '\0';
	p->buf_used += n + 1;
	return copy;
}

/*
 * Splits the comma list value of parameter name into p->buf: items[0..*n) receive at most
 * max non-empty, distinct items.
 */
static int split_list(struct search_params *p, const char *name, const char *value,
		      const char **items, int *n, int max, struct rsd_fail *f)
{
	int count = 1;
	for (const char *c = value; *c; c++)
		count += *c == ',';
	if (count > max)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' lists more than %d values", name, max);
	char *copy = buf_copy(p, value, strlen(value));
	if (copy == NULL)
		return rsd_failf(f, RSD_EINVAL, name,
				 "the search parameters are too long (at '%s')", name);
	*n = 0;
	for (char *item = copy;;) {
		char *comma = strchr(item, ',');
		if (comma)
			*comma = '\0';
		if (*item == '\0')
			return rsd_failf(f, RSD_EINVAL, name, "'%s' has an empty value", name);
		for (int k = 0; k < *n; k++)
			if (strcmp(items[k], item) == 0)
				return rsd_failf(f, RSD_EINVAL, name, "'%s' lists a value twice",
						 name);
		items[(*n)++] = item;
		if (comma == NULL)
			break;
		item = comma + 1;
	}
	return RSD_OK;
}

/* ---- the parameters ---- */

enum param {
	PARAM_Q,
	PARAM_TYPE,
	PARAM_RESORT,
	PARAM_FROM,
	PARAM_TO,
	PARAM_PRICE_MIN,
	PARAM_PRICE_MAX,
	PARAM_CURRENCY,
	PARAM_SORT,
	PARAM_LIMIT,
	PARAM_CURSOR,
	PARAM_FACETS,
	PARAM_COUNT
};

static const char *const param_names[PARAM_COUNT] = {
	[PARAM_Q] = "q",
	[PARAM_TYPE] = "type",
	[PARAM_RESORT] = "resort",
	[PARAM_FROM] = "from",
	[PARAM_TO] = "to",
	[PARAM_PRICE_MIN] = "price_min",
	[PARAM_PRICE_MAX] = "price_max",
	[PARAM_CURRENCY] = "currency",
	[PARAM_SORT] = "sort",
	[PARAM_LIMIT] = "limit",
	[PARAM_CURSOR] = "cursor",
	[PARAM_FACETS] = "facets",
};

static const char *const sort_names[] = {
	[SORT_RELEVANCE] = "relevance", [SORT_PRICE] = "price", [SORT_PRICE_DESC] = "-price",
	[SORT_RATING] = "rating",	[SORT_NAME] = "name",
};

/* What the loop over the parameters leaves for the checks that span several of them. */
struct seen {
	unsigned params; /* bit (1 << enum param) for each one given */
	const char *cursor;
};

/* attr.KEY, attr.KEY.min or attr.KEY.max. */
static int parse_attr(struct search_params *p, const char *name, const char *value,
		      struct rsd_fail *f)
{
	const char *key = name + 5;
	const char *dot = strchr(key, '.');
	size_t klen = dot ? (size_t)(dot - key) : strlen(key);
	if (!attr_key_ok(key, klen))
		return rsd_failf(f, RSD_EINVAL, name,
				 "an attribute key is 1 to %d characters of a-z, 0-9 and _, "
				 "starting with a letter",
				 ATTR_KEY_BYTES_MAX);
	const char *suffix = dot ? dot + 1 : "";
	if (dot && strcmp(suffix, "min") != 0 && strcmp(suffix, "max") != 0)
		return rsd_failf(f, RSD_EINVAL, name, "unknown query parameter '%.64s'", name);
	struct search_attr_filter *a = NULL;
	for (int i = 0; i < p->nattrs && a == NULL; i++)
		if (strlen(p->attrs[i].key) == klen && memcmp(p->attrs[i].key, key, klen) == 0)
			a = &p->attrs[i];
	if (a == NULL) {
		if (p->nattrs == SEARCH_ATTR_FILTERS_MAX)
			return rsd_failf(f, RSD_EINVAL, name,
					 "at most %d attributes can be filtered on",
					 SEARCH_ATTR_FILTERS_MAX);
		a = &p->attrs[p->nattrs++];
		memcpy(a->key, key, klen);
		a->key[klen] = '\0';
	}
	if (*suffix == '\0') {
		if (a->nvalues > 0)
			return rsd_failf(f, RSD_EINVAL, name, "'%s' is given twice", name);
		int err = split_list(p, name, value, a->values, &a->nvalues, SEARCH_VALUES_MAX, f);
		if (err)
			return err;
		for (int i = 0; i < a->nvalues; i++) {
			long chars = rsd_utf8_chars(a->values[i], strlen(a->values[i]));
			if (chars < 0 || chars > ATTR_VALUE_CHARS_MAX)
				return rsd_failf(f, RSD_EINVAL, name,
						 "a value of '%s' must be 1 to %d characters of "
						 "UTF-8",
						 name, ATTR_VALUE_CHARS_MAX);
		}
		return RSD_OK;
	}
	bool is_min = strcmp(suffix, "min") == 0;
	if (is_min ? a->has_min : a->has_max)
		return rsd_failf(f, RSD_EINVAL, name, "'%s' is given twice", name);
	double d;
	if (!parse_real(value, &d))
		return rsd_failf(f, RSD_EINVAL, name, "'%s' must be a finite decimal number", name);
	if (is_min) {
		a->has_min = true;
		a->min = d;
	} else {
		a->has_max = true;
		a->max = d;
	}
	return RSD_OK;
}

/* One parameter other than attr.*: checks its value alone and stores it in p. */
static int parse_one(struct search_params *p, enum param which, const char *value, struct seen *s,
		     struct rsd_fail *f)
{
	const char *name = param_names[which];
	const char *items[SEARCH_VALUES_MAX];
	int n = 0, err;
	int32_t day;
	int64_t v;
	switch (which) {
	case PARAM_Q: return search_params_fts(value, p->fts, sizeof(p->fts), f);
	case PARAM_TYPE:
		err = split_list(p, name, value, items, &n, SEARCH_VALUES_MAX, f);
		for (int i = 0; i < n && !err; i++) {
			size_t t = 0;
			while (t < 4 && strcmp(items[i], type_names[t]) != 0)
				t++;
			if (t == 4)
				return rsd_failf(f, RSD_EINVAL, name,
						 "'type' takes room_type, facility, ticket or "
						 "package");
			p->types[p->ntypes++] = type_names[t];
		}
		return err;
	case PARAM_RESORT:
		err = split_list(p, name, value, p->resorts, &p->nresorts, SEARCH_VALUES_MAX, f);
		for (int i = 0; i < p->nresorts && !err; i++)
			if (!resort_id_ok(p->resorts[i]))
				return rsd_failf(f, RSD_EINVAL, name,
						 "a resort id is 1 to %d characters of A-Z, a-z, "
						 "0-9, _ and -",
						 ENTITY_ID_BYTES_MAX);
		return err;
	case PARAM_FROM:
	case PARAM_TO:
		if (price_parse_date(value, &day) != RSD_OK)
			return rsd_failf(f, RSD_EINVAL, name, "'%s' must be a date YYYY-MM-DD",
					 name);
		*(which == PARAM_FROM ? &p->from_day : &p->to_day) = day;
		return RSD_OK;
	case PARAM_PRICE_MIN:
	case PARAM_PRICE_MAX:
		if (!parse_int(value, 0, PRICE_AMOUNT_MAX, &v))
			return rsd_failf(f, RSD_EINVAL, name,
					 "'%s' must be an integer from 0 to %lld", name,
					 (long long)PRICE_AMOUNT_MAX);
		if (which == PARAM_PRICE_MIN) {
			p->has_price_min = true;
			p->price_min = v;
		} else {
			p->has_price_max = true;
			p->price_max = v;
		}
		return RSD_OK;
	case PARAM_CURRENCY:
		if (strlen(value) != 3 || value[0] < 'A' || value[0] > 'Z' || value[1] < 'A' ||
		    value[1] > 'Z' || value[2] < 'A' || value[2] > 'Z')
			return rsd_failf(f, RSD_EINVAL, name,
					 "'currency' must be three capital letters (ISO 4217)");
		p->currency = buf_copy(p, value, 3);
		if (p->currency == NULL)
			return rsd_failf(f, RSD_EINVAL, name,
					 "the search parameters are too long (at 'currency')");
		return RSD_OK;
	case PARAM_SORT:
		for (size_t i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++) {
			if (strcmp(value, sort_names[i]) == 0) {
				p->sort = (enum search_sort)i;
				return RSD_OK;
			}
		}
		return rsd_failf(f, RSD_EINVAL, name,
				 "'sort' takes relevance, price, -price, rating or name");
	case PARAM_LIMIT:
		if (!parse_int(value, 1, CATALOG_PAGE_MAX, &v))
			return rsd_failf(f, RSD_EINVAL, name,
					 "'limit' must be an integer from 1 to %d",
					 CATALOG_PAGE_MAX);
		p->limit = (int)v;
		return RSD_OK;
	case PARAM_CURSOR: s->cursor = value; return RSD_OK;
	case PARAM_FACETS:
		err = split_list(p, name, value, p->facets, &p->nfacets, SEARCH_FACETS_MAX, f);
		for (int i = 0; i < p->nfacets && !err; i++)
			if (!facet_ok(p->facets[i]))
				return rsd_failf(f, RSD_EINVAL, name,
						 "'facets' takes type, resort and attr.KEY");
		return err;
	case PARAM_COUNT: break;
	}
	return rsd_failf(f, RSD_EINTERNAL, name, "no parser for '%s'", name);
}

static bool given(const struct seen *s, enum param which)
{
	return (s->params & (1u << which)) != 0;
}

/* The rules that tie parameters together, once each has been read alone. */
static int check_together(struct search_params *p, const struct seen *s, struct rsd_fail *f)
{
	if (given(s, PARAM_FROM) != given(s, PARAM_TO)) {
		const char *missing = given(s, PARAM_FROM) ? "to" : "from";
		return rsd_failf(f, RSD_EINVAL, missing,
				 "'from' and 'to' go together; '%s' is missing", missing);
	}
	p->has_stay = given(s, PARAM_FROM);
	if (p->has_stay && p->from_day >= p->to_day)
		return rsd_failf(f, RSD_EINVAL, "to", "'to' must be after 'from'");
	if (p->has_stay && p->to_day - p->from_day > PRICE_QUERY_DAYS_MAX)
		return rsd_failf(f, RSD_EINVAL, "to", "a stay is at most %d days long",
				 PRICE_QUERY_DAYS_MAX);
	for (enum param w = PARAM_PRICE_MIN; w <= PARAM_PRICE_MAX; w++)
		if (given(s, w) && !p->has_stay)
			return rsd_failf(f, RSD_EINVAL, param_names[w],
					 "'%s' needs a stay: 'from' and 'to'", param_names[w]);
	if (p->has_price_min && p->has_price_max && p->price_min > p->price_max)
		return rsd_failf(f, RSD_EINVAL, "price_min", "'price_min' is above 'price_max'");
	for (int i = 0; i < p->nattrs; i++) {
		const struct search_attr_filter *a = &p->attrs[i];
		if (a->has_min && a->has_max && a->min > a->max) {
			char field[RSD_FIELD_BYTES_MAX];
			snprintf(field, sizeof(field), "attr.%s.min", a->key);
			return rsd_failf(f, RSD_EINVAL, field, "'%s' is above 'attr.%s.max'", field,
					 a->key);
		}
	}
	if (!given(s, PARAM_SORT))
		p->sort = p->fts[0] ? SORT_RELEVANCE : SORT_NAME;
	if (p->sort == SORT_RELEVANCE && p->fts[0] == '\0')
		return rsd_failf(f, RSD_EINVAL, "sort", "sort=relevance needs 'q'");
	if ((p->sort == SORT_PRICE || p->sort == SORT_PRICE_DESC) && !p->has_stay)
		return rsd_failf(f, RSD_EINVAL, "sort", "sort=%s needs a stay: 'from' and 'to'",
				 sort_names[p->sort]);
	return RSD_OK;
}

/* ---- query_hash ---- */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME  1099511628211ULL

static void hash_bytes(uint64_t *h, const void *data, size_t n)
{
	const unsigned char *b = data;
	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * FNV_PRIME;
}

/* Strings never hold a NUL, so hashing the terminator separates them unambiguously. */
static void hash_str(uint64_t *h, const char *s)
{
	hash_bytes(h, s, strlen(s) + 1);
}

static void hash_u64(uint64_t *h, uint64_t v)
{
	unsigned char b[8];
	rsd_put_be64(b, v);
	hash_bytes(h, b, sizeof(b));
}

static void hash_real(uint64_t *h, double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	hash_u64(h, bits);
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A value list in sorted order, so that type=a,b and type=b,a are the same search. */
static void hash_list(uint64_t *h, char tag, const char *const *items, int n)
{
	const char *sorted[SEARCH_VALUES_MAX];
	RSD_ASSERT(n >= 0 && n <= SEARCH_VALUES_MAX);
	memcpy(sorted, items, (size_t)n * sizeof(*items));
	qsort(sorted, (size_t)n, sizeof(*sorted), compare_str);
	hash_bytes(h, &tag, 1);
	hash_u64(h, (uint64_t)n);
	for (int i = 0; i < n; i++)
		hash_str(h, sorted[i]);
}

static int compare_attr(const void *a, const void *b)
{
	return strcmp((*(const struct search_attr_filter *const *)a)->key,
		      (*(const struct search_attr_filter *const *)b)->key);
}

/* Hashes what decides which rows come in which order: not limit, cursor nor facets. */
static uint64_t query_hash(const struct search_params *p)
{
	uint64_t h = FNV_OFFSET;
	hash_str(&h, "search/1");
	hash_str(&h, p->fts);
	hash_list(&h, 't', p->types, p->ntypes);
	hash_list(&h, 'r', p->resorts, p->nresorts);
	const struct search_attr_filter *attrs[SEARCH_ATTR_FILTERS_MAX];
	for (int i = 0; i < p->nattrs; i++)
		attrs[i] = &p->attrs[i];
	qsort(attrs, (size_t)p->nattrs, sizeof(*attrs), compare_attr);
	hash_u64(&h, (uint64_t)p->nattrs);
	for (int i = 0; i < p->nattrs; i++) {
		const struct search_attr_filter *a = attrs[i];
		hash_str(&h, a->key);
		hash_list(&h, 'v', a->values, a->nvalues);
		hash_u64(&h, (uint64_t)a->has_min << 1 | (uint64_t)a->has_max);
		hash_real(&h, a->has_min ? a->min : 0);
		hash_real(&h, a->has_max ? a->max : 0);
	}
	hash_u64(&h, p->has_stay);
	hash_u64(&h, p->has_stay ? (uint64_t)(uint32_t)p->from_day : 0);
	hash_u64(&h, p->has_stay ? (uint64_t)(uint32_t)p->to_day : 0);
	hash_u64(&h, (uint64_t)p->has_price_min << 1 | (uint64_t)p->has_price_max);
	hash_u64(&h, p->has_price_min ? (uint64_t)p->price_min : 0);
	hash_u64(&h, p->has_price_max ? (uint64_t)p->price_max : 0);
	hash_str(&h, p->currency ? p->currency : "");
	hash_u64(&h, (uint64_t)p->sort);
	return h;
}

/* Whether a cursor with this key can continue a search in this order. */
static bool cursor_fits(const struct search_cursor *c, enum search_sort sort)
{
	if (c->phase != 0 && sort != SORT_RELEVANCE)
		return false;
	switch (sort) {
	case SORT_RELEVANCE: return c->key_kind == SEARCH_KEY_REAL;
	case SORT_PRICE:
	case SORT_PRICE_DESC: return c->key_kind == SEARCH_KEY_INT;
	case SORT_RATING: return c->key_kind == SEARCH_KEY_REAL || c->key_kind == SEARCH_KEY_NONE;
	case SORT_NAME: return c->key_kind == SEARCH_KEY_TEXT;
	}
	return false;
}

int search_params_parse(const char *const *names, const char *const *values, int n,
			struct search_params *p, struct rsd_fail *f)
{
	RSD_ASSERT(n >= 0);
	memset(p, 0, sizeof(*p));
	p->limit = CATALOG_PAGE_DEFAULT;
	struct seen s = {0};
	for (int i = 0; i < n; i++) {
		const char *name = names[i], *value = values[i];
		RSD_ASSERT(name != NULL && value != NULL);
		int err;
		if (strncmp(name, "attr.", 5) == 0) {
			err = parse_attr(p, name, value, f);
		} else {
			enum param w = 0;
			while (w < PARAM_COUNT && strcmp(name, param_names[w]) != 0)
				w++;
			if (w == PARAM_COUNT)
				return rsd_failf(f, RSD_EINVAL, name,
						 "unknown query parameter '%.64s'", name);
			if (given(&s, w))
				return rsd_failf(f, RSD_EINVAL, name, "'%s' is given twice", name);
			s.params |= 1u << w;
			err = parse_one(p, w, value, &s, f);
		}
		if (err)
			return err;
	}
	int err = check_together(p, &s, f);
	if (err)
		return err;
	p->query_hash = query_hash(p);
	if (s.cursor == NULL)
		return RSD_OK;
	/* Last, so that a cursor is judged against the search as the other parameters say. */
	if (search_cursor_decode(s.cursor, &p->cursor) != RSD_OK)
		return rsd_failf(f, RSD_EINVAL, "cursor",
				 "'cursor' is not a cursor of this server");
	if (p->cursor.query_hash != p->query_hash)
		return rsd_failf(f, RSD_EINVAL, "cursor",
				 "'cursor' belongs to another search: keep every parameter but "
				 "limit as it was");
	if (!cursor_fits(&p->cursor, p->sort))
		return rsd_failf(f, RSD_EINVAL, "cursor", "'cursor' does not fit sort=%s",
				 sort_names[p->sort]);
	p->has_cursor = true;
	return RSD_OK;
}

/* ---- cursors ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* What encoding writes and decoding accepts, apart from the bytes' layout. */
static bool cursor_valid(const struct search_cursor *c)
{
	if (c->phase != 0 && c->phase != 1)
		return false;
	switch (c->key_kind) {
	case SEARCH_KEY_NONE:
	case SEARCH_KEY_INT: return true;
	case SEARCH_KEY_REAL: return isfinite(c->key_real);
	case SEARCH_KEY_TEXT: {
		size_t n = strnlen(c->key_text, sizeof(c->key_text));
		return n <= CURSOR_TEXT_BYTES_MAX && rsd_utf8_chars(c->key_text, n) >= 0;
	}
	}
	return false;
}

void search_cursor_encode(const struct search_cursor *c, char *out, size_t len)
{
	RSD_ASSERT(cursor_valid(c));
	unsigned char raw[CURSOR_RAW_BYTES_MAX];
	size_t n = 0;
	raw[n++] = CURSOR_VERSION;
	rsd_put_be64(raw + n, c->query_hash);
	n += 8;
	raw[n++] = (unsigned char)c->phase;
	raw[n++] = (unsigned char)c->key_kind;
	rsd_put_be64(raw + n, (uint64_t)c->rowid);
	n += 8;
	uint64_t bits;
	size_t tlen;
	switch (c->key_kind) {
	case SEARCH_KEY_NONE: break;
	case SEARCH_KEY_INT:
		rsd_put_be64(raw + n, (uint64_t)c->key_int);
		n += 8;
		break;
	case SEARCH_KEY_REAL:
		memcpy(&bits, &c->key_real, sizeof(bits));
		rsd_put_be64(raw + n, bits);
		n += 8;
		break;
	case SEARCH_KEY_TEXT:
		tlen = strlen(c->key_text);
		rsd_put_be16(raw + n, (uint16_t)tlen);
		memcpy(raw + n + 2, c->key_text, tlen);
		n += 2 + tlen;
		break;
	}
	size_t need = (n * 4 + 2) / 3 + 1;
	RSD_ASSERT(len >= need);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)raw[i + 1] << 8;
		if (i + 2 < n)
			v |= raw[i + 2];
		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64url[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	RSD_ASSERT(o + 1 == need);
}

static int b64url_value(unsigned char ch)
{
	const char *at = ch ? strchr(b64url, ch) : NULL;
	return at ? (int)(at - b64url) : -1;
}

/* Decodes unpadded base64url s[0..n) into raw; refuses stray characters and stray bits. */
static bool b64url_decode(const char *s, size_t n, unsigned char *raw, size_t *rawlen)
{
	if (n % 4 == 1)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		size_t k = n - i < 4 ? n - i : 4;
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			int d = j < k ? b64url_value((unsigned char)s[i + j]) : 0;
			if (d < 0)
				return false;
			v = v << 6 | (uint32_t)d;
		}
		raw[o++] = (unsigned char)(v >> 16);
		if (k > 2)
			raw[o++] = (unsigned char)(v >> 8);
		if (k > 3)
			raw[o++] = (unsigned char)v;
		/* Bits past the last whole byte must be zero, or two strings would be one cursor.
		 */
		if ((k == 2 && (v & 0xFFFF) != 0) || (k == 3 && (v & 0xFF) != 0))
			return false;
	}
	*rawlen = o;
	return true;
}

int search_cursor_decode(const char *s, struct search_cursor *c)
{
	unsigned char raw[CURSOR_RAW_BYTES_MAX + 2];
	size_t n, at = CURSOR_HEAD_BYTES, tlen;
	uint64_t bits;
	memset(c, 0, sizeof(*c));
	if (s == NULL)
		return RSD_EINVAL;
	size_t slen = strnlen(s, CURSOR_ENCODED_BYTES_MAX);
	if (slen >= CURSOR_ENCODED_BYTES_MAX || !b64url_decode(s, slen, raw, &n))
		return RSD_EINVAL;
	if (n < CURSOR_HEAD_BYTES || raw[0] != CURSOR_VERSION || raw[9] > 1 ||
	    raw[10] > SEARCH_KEY_TEXT)
		goto bad;
	c->query_hash = rsd_get_be64(raw + 1);
	c->phase = raw[9];
	c->key_kind = (enum search_key_kind)raw[10];
	c->rowid = (int64_t)rsd_get_be64(raw + 11);
	switch (c->key_kind) {
	case SEARCH_KEY_NONE: break;
	case SEARCH_KEY_INT:
		if (n - at < 8)
			goto bad;
		c->key_int = (int64_t)rsd_get_be64(raw + at);
		at += 8;
		break;
	case SEARCH_KEY_REAL:
		if (n - at < 8)
			goto bad;
		bits = rsd_get_be64(raw + at);
		memcpy(&c->key_real, &bits, sizeof(bits));
		at += 8;
		break;
	case SEARCH_KEY_TEXT:
		if (n - at < 2)
			goto bad;
		tlen = rsd_get_be16(raw + at);
		at += 2;
		if (tlen > CURSOR_TEXT_BYTES_MAX || n - at < tlen ||
		    memchr(raw + at, '\0', tlen) != NULL)
			goto bad;
		memcpy(c->key_text, raw + at, tlen);
		c->key_text[tlen] = '\0';
		at += tlen;
		break;
	}
	if (at != n || !cursor_valid(c))
		goto bad;
	return RSD_OK;
bad:
	memset(c, 0, sizeof(*c));
	return RSD_EINVAL;
}
