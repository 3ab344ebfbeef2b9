/*
 * search.h — runs a parsed product search (search_params.h) against catalog.db.
 *
 * Only active, live products are found. Ordering, always ending in the product's rowid
 * (log order) so that a cursor is a position, not an offset, and inserts between pages
 * neither skip nor repeat a product:
 *   relevance  the first SEARCH_RANKED_MAX matches in log order are ranked by rsd_rank
 *              (tokenizer.h: name and English name weigh 4, attributes 2, description 1),
 *              and any further matches follow in log order. Bounding the ranked set keeps
 *              a term found in most products as fast as a rare one; rsd_rank has no IDF,
 *              so a product's score does not move when others are added.
 *   name       case-folded (ASCII) name; rating: average, unrated last; price / -price: the
 *              stay's total.
 * Facets count the products the search finds (not only the page), per value, most frequent
 * first, at most SEARCH_FACET_VALUES_MAX values each, with the total counted: every match
 * when there are at most SEARCH_FACET_ROWS_MAX (facets_complete: true), else the first
 * SEARCH_FACET_ROWS_MAX in log order, which bounds the cost of a term found everywhere.
 */
#ifndef RSD_SEARCH_H
#define RSD_SEARCH_H

#include <cjson/cJSON.h>

#include "readmodel.h"
#include "search_params.h"

/*
 * Runs p on r. *page receives {items: [product...], next_cursor: string|null} plus, when
 * facets were asked for, {total, facets_complete, facets: {name: [{value, count}]}}; with a
 * stay each item
 * has stay_total. Caller frees *page. Errors: RSD_EIO (with f).
 */
int search_run(struct readmodel_reader *r, const struct search_params *p, cJSON **page,
	       struct rsd_fail *f);

#endif
