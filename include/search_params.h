/*
 * search_params.h — the parameters of GET /v1/products, parsed and checked before any SQL
 * runs: the full-text expression built from q, the filters, the sort, the page cursor and
 * the facets asked for. No SQLite, no libevent here: search.c runs what this produces, and
 * a fuzz target feeds it arbitrary parameter lists.
 *
 * Parameters (each at most once; a value list is comma-separated and means "any of"):
 *   q            free text, at most SEARCH_Q_CHARS_MAX characters and SEARCH_TERMS_MAX
 *                terms (white-space separated). Each term becomes one quoted FTS5 phrase,
 *                so no user text is ever read as FTS5 syntax; terms are ANDed. A term of
 *                one CJK character becomes a prefix phrase ("스"*), see tokenizer.h. Terms
 *                with no letter or digit are dropped; q with no term left is a 400.
 *   type         room_type | facility | ticket | package (a list)
 *   resort       resort ids (a list)
 *   attr.KEY     attribute KEY equals one of the values (a list). Values compare with the
 *                attribute's text form: strings as they are, numbers as JSON writes them,
 *                booleans as true / false.
 *   attr.KEY.min / attr.KEY.max
 *                numeric attribute KEY within the bound (inclusive); a finite number.
 *   from, to     a stay: dates YYYY-MM-DD, from < to, at most PRICE_QUERY_DAYS_MAX days;
 *                the product must have a price on every date of [from, to).
 *   price_min, price_max
 *                bounds (inclusive, minor units) on the stay's total price; they need
 *                from and to.
 *   currency     ISO 4217 code: only products priced in it.
 *   sort         relevance (the default with q; needs q) | price | -price | rating | name
 *                (the default without q). price and -price need from and to.
 *   limit        1 .. CATALOG_PAGE_MAX, default CATALOG_PAGE_DEFAULT.
 *   cursor       a next_cursor from an earlier page of the same search.
 *   facets       a list of type, resort, attr.KEY (at most SEARCH_FACETS_MAX).
 * KEY is 1..ATTR_KEY_BYTES_MAX bytes of [a-z0-9_] starting with a letter.
 * Any other parameter is a 400 naming it.
 */
#ifndef RSD_SEARCH_PARAMS_H
#define RSD_SEARCH_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "rsd.h"

enum search_sort { SORT_RELEVANCE, SORT_PRICE, SORT_PRICE_DESC, SORT_RATING, SORT_NAME };

/* One attr.KEY filter: values (equality, any of), and/or a numeric range. */
struct search_attr_filter {
	char key[ATTR_KEY_BYTES_MAX + 1];
	const char *values[SEARCH_VALUES_MAX];
	int nvalues;
	bool has_min, has_max;
	double min, max;
};

/*
 * Where the previous page stopped: the sort key of its last row and that row's rowid.
 * phase: for relevance, 0 while inside the ranked candidates, 1 in the unranked rest
 * (search.c). query_hash ties the cursor to the search that made it.
 */
enum search_key_kind { SEARCH_KEY_NONE, SEARCH_KEY_INT, SEARCH_KEY_REAL, SEARCH_KEY_TEXT };
struct search_cursor {
	uint64_t query_hash;
	int phase;
	enum search_key_kind key_kind;
	int64_t key_int;
	double key_real;
	char key_text[PRODUCT_NAME_CHARS_MAX * 4 + 1];
	int64_t rowid;
};

/* The parsed parameters. String pointers borrow from the caller's values and live as long. */
struct search_params {
	char fts[SEARCH_FTS_BYTES_MAX]; /* FTS5 MATCH expression; "" when there is no q */
	const char *types[4];
	int ntypes;
	const char *resorts[SEARCH_VALUES_MAX];
	int nresorts;
	struct search_attr_filter attrs[SEARCH_ATTR_FILTERS_MAX];
	int nattrs;
	bool has_stay;
	int32_t from_day, to_day; /* the stay is [from_day, to_day) */
	bool has_price_min, has_price_max;
	int64_t price_min, price_max;
	const char *currency;
	enum search_sort sort;
	int limit;
	bool has_cursor;
	struct search_cursor cursor;
	const char *facets[SEARCH_FACETS_MAX]; /* "type", "resort" or "attr.KEY" */
	int nfacets;
	uint64_t query_hash; /* of everything but limit, cursor and facets */
	/* Storage for the comma-split values the pointers above refer to. */
	char buf[4096];
	size_t buf_used;
};

/*
 * Parses n query parameters (names[i] = values[i], already percent-decoded) into p.
 * Errors: RSD_EINVAL with f->field the parameter at fault ("attr.view.min", "cursor")
 * and f->detail saying why; a cursor from a different search is refused too.
 */
int search_params_parse(const char *const *names, const char *const *values, int n,
			struct search_params *p, struct rsd_fail *f);

/*
 * Builds the FTS5 expression for q into out (see above). Returns RSD_OK, or RSD_EINVAL
 * with f filled (field "q") when q is too long, has too many terms or no term at all.
 */
int search_params_fts(const char *q, char *out, size_t len, struct rsd_fail *f);

/* Encodes c as an opaque URL-safe string into out (at most SEARCH_CURSOR_BYTES_MAX
 * bytes with the NUL). */
void search_cursor_encode(const struct search_cursor *c, char *out, size_t len);

/* Decodes s. Errors: RSD_EINVAL when s is not a cursor this server made. */
int search_cursor_decode(const char *s, struct search_cursor *c);

#endif
