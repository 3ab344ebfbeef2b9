/*
 * resort.h — resorts, the first entity: decoding requests, the commands that change them,
 * their projection into SQLite and their reads. No HTTP here (resort_http.c does that).
 *
 * A resort: id, name, name_en, timezone (IANA name), currency (ISO 4217), address,
 * stars (1-5), home_node, version, created_at, updated_at.
 */
#ifndef RSD_RESORT_H
#define RSD_RESORT_H

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdint.h>

#include "eventlog.h"
#include "readmodel.h"
#include "writer.h"

/* A create or patch on its way through the writer. Caller-owned: resort_cmd_release. */
struct resort_cmd {
	struct command cmd;
	char id[ENTITY_ID_BYTES_MAX + 1];
	cJSON *fields;	   /* validated body, owned */
	uint64_t if_match; /* 0: no precondition */
	uint64_t version;  /* out: the version written */
};

/* Decodes and validates a POST body. *out: a cJSON object to pass to resort_create_init.
 * Errors: RSD_EINVAL with the field named. */
int resort_decode_create(const char *body, size_t len, cJSON **out, struct rsd_fail *f);

/* resort_decode_create's checks on an already parsed object (bulk import). */
int resort_check_create(const cJSON *obj, struct rsd_fail *f);

/* Decodes and validates a PATCH body (JSON merge patch: null clears an optional field). */
int resort_decode_patch(const char *body, size_t len, cJSON **out, struct rsd_fail *f);

/* Prepares a create command taking ownership of fields; the id is made here. */
void resort_create_init(struct resort_cmd *rc, cJSON *fields);

/* Prepares a patch of id taking ownership of fields. if_match: required version or 0.
 * The command fails with RSD_ENOTFOUND or RSD_EPRECONDITION. */
void resort_patch_init(struct resort_cmd *rc, const char *id, cJSON *fields, uint64_t if_match);

/* Frees what the command owns. */
void resort_cmd_release(struct resort_cmd *rc);

/* Projects resort.created and resort.updated events (projector thread). */
int resort_project(sqlite3 *db, struct readmodel_stmts *stmts, const struct event *ev,
		   struct rsd_fail *f);

/* Reads one resort as a JSON object (caller frees) and its version. Errors: RSD_ENOTFOUND,
 * RSD_EIO. */
int resort_get(struct readmodel_reader *r, const char *id, cJSON **out, uint64_t *version);

/*
 * Reads up to limit resorts after cursor (NULL: from the start) in id order into an array
 * (caller frees). next_cursor receives the cursor of the following page, or "" at the end.
 * Errors: RSD_EINVAL for a malformed cursor, RSD_EIO.
 */
int resort_list(struct readmodel_reader *r, const char *cursor, int limit, cJSON **items,
		char *next_cursor, size_t next_len, struct rsd_fail *f);

#endif
