/*
 * idempotency.h — Idempotency-Key: a retried request gets the first request's answer.
 *
 * A record is keyed by (principal, key) and holds a fingerprint of the request (SHA-256
 * of method, path and body), a state (running or done) and, once done, the outcome:
 * the error code, the failure detail and the body, so that the HTTP layer can send the
 * same bytes again. The record is written by the command it guards, in the same LMDB
 * transaction, so a crash can never keep a booking and lose its key or the reverse.
 * Records live IDEMPOTENCY_TTL_S; the sweeper removes them (store_expiry_*).
 */
#ifndef RSD_IDEMPOTENCY_H
#define RSD_IDEMPOTENCY_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits_rsd.h"
#include "rsd.h"
#include "store.h"

/* What a request ended with, as the HTTP layer will send it. */
struct outcome {
	int err;	      /* RSD_OK, or the error (its status comes from router.c) */
	int status;	      /* when err is RSD_OK: 200, 201 or 202 */
	struct rsd_fail fail; /* when err is not RSD_OK */
	char *body;	      /* malloc'd JSON: the document, or for an error a JSON object
			       * of extra problem members (may be NULL) */
	size_t len;
	char location[96]; /* "" or the Location of a created thing */
};
/* Frees o's body and clears it. */
void outcome_release(struct outcome *o);
/* Sets o to a success with a copy of body[0..len). */
void outcome_set(struct outcome *o, int status, const char *body, size_t len);

/* A request's key; present is false when the request named none. */
struct idem_key {
	bool present;
	char principal[PRINCIPAL_BYTES_MAX + 1];
	char key[IDEMPOTENCY_KEY_BYTES_MAX + 1];
	unsigned char fingerprint[32];
};

/*
 * Fills k from the header value (NULL: absent) for principal and the request's method,
 * path and body. Errors: RSD_EINVAL (a key that is empty, too long or not printable
 * ASCII), with f filled.
 */
int idempotency_key_init(struct idem_key *k, const char *header, const char *principal,
			 const char *method, const char *path, const char *body, size_t len,
			 struct rsd_fail *f);

/*
 * Looks k up in txn (writer thread). RSD_OK with *replay = false: new (or expired), go
 * ahead; RSD_OK with *replay = true: done before, *out holds the first outcome (caller
 * releases). Errors: RSD_EMISMATCH (the key was used for a different request),
 * RSD_ECONFLICT (the first request is still running), RSD_EIO; f filled.
 */
int idempotency_check(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		      bool *replay, struct outcome *out, struct rsd_fail *f);

/*
 * What a guarded command does first: nothing when the request has no key (*replay false);
 * else idempotency_check into out (released first). Counts replays. Errors: those of
 * idempotency_check.
 */
int idempotency_begin(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		      bool *replay, struct outcome *out, struct rsd_fail *f);
/* Requests answered from a stored outcome since start (any thread). */
uint64_t idempotency_replays(void);

/* Records k as running (o NULL) or done with o, expiring IDEMPOTENCY_TTL_S after
 * first_ms (the time of its first use). Errors: RSD_EFULL, RSD_EIO. */
int idempotency_put(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t first_ms,
		    const struct outcome *o);

/* Records o under k when the request has a key (a no-op otherwise). */
int idempotency_remember(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
			 const struct outcome *o);

/* Makes a refusal the outcome o (err, f, and extra problem members, which it takes and may
 * be NULL) and records it under k: a refusal is the key's answer as much as a success. */
int idempotency_refuse(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		       struct outcome *o, int err, const struct rsd_fail *f, cJSON *extra);

/* Completes a running record of (principal, key) with o, keeping its fingerprint and first
 * use; a record that is gone (expired) is left gone. Errors: RSD_EFULL, RSD_EIO. */
int idempotency_finish(MDB_txn *txn, struct store *s, const char *principal, const char *key,
		       const struct outcome *o);

/* The sweeper: deletes the record whose expiry entry is id[0..len) if it expired at ms. */
int idempotency_expire(MDB_txn *txn, struct store *s, const void *id, size_t len, uint64_t ms);

#endif
