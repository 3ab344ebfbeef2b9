/*
 * review.h — guests' reviews of products: one per guest per product, moderated by staff,
 * with each product's rating count and average kept by the projector (published reviews
 * only) in the product's document.
 *
 * A review: id, product_id, author_id, rating (1-5), title, body, state (published |
 * hidden), version, created_at, updated_at. A review is published when written; staff hide
 * or show it again.
 */
#ifndef RSD_REVIEW_H
#define RSD_REVIEW_H

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "eventlog.h"
#include "readmodel.h"
#include "writer.h"

#define REVIEW_AUTHOR_BYTES_MAX 64

struct review_cmd {
	struct command cmd;
	char id[ENTITY_ID_BYTES_MAX + 1];
	char product_id[ENTITY_ID_BYTES_MAX + 1];
	char author_id[REVIEW_AUTHOR_BYTES_MAX + 1];
	cJSON *fields;	   /* create: rating, title, body; moderate: state. Owned. */
	uint64_t if_match; /* moderate: 0, a version, or UINT64_MAX (weak: never matches) */
	uint64_t version;  /* out */
};

/* Decodes a new review's body. Errors: RSD_EINVAL with the field named. */
int review_decode_create(const char *body, size_t len, cJSON **out, struct rsd_fail *f);

/* Decodes a moderation body {"state": "published" | "hidden"}. */
int review_decode_moderate(const char *body, size_t len, cJSON **out, struct rsd_fail *f);

/* True when author is 1..REVIEW_AUTHOR_BYTES_MAX bytes of [A-Za-z0-9._@:-] (a principal). */
bool review_author_ok(const char *author);

/*
 * A new review of product_id by author_id (taking fields). Fails with RSD_ENOTFOUND (no
 * such product) or RSD_ECONFLICT (this author has reviewed this product already).
 */
void review_create_init(struct review_cmd *rc, const char *product_id, const char *author_id,
			cJSON *fields);

/* A moderation of review id. Fails with RSD_ENOTFOUND or RSD_EPRECONDITION. */
void review_moderate_init(struct review_cmd *rc, const char *id, cJSON *fields, uint64_t if_match);

void review_cmd_release(struct review_cmd *rc);

/* Projects review.* events (projector thread). */
int review_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		   struct rsd_fail *f);

/* Reads one review's document (caller frees) and version; published_only: a hidden review
 * is RSD_ENOTFOUND. Errors: RSD_ENOTFOUND, RSD_EIO. */
int review_get(struct readmodel_reader *r, const char *id, bool published_only, char **json,
	       uint64_t *version);

/*
 * Published reviews of a live product, newest first: up to limit after cursor (NULL: from
 * the newest) into an array (caller frees); next_cursor gets the following page's cursor or
 * "". Errors: RSD_ENOTFOUND (no product), RSD_EINVAL (bad cursor, f filled), RSD_EIO.
 */
int review_list(struct readmodel_reader *r, const char *product_id, const char *cursor, int limit,
		cJSON **items, char *next_cursor, size_t next_len, struct rsd_fail *f);

#endif
