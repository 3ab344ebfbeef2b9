/*
 * readmodel.h — the SQLite database catalog.db: the read model projected from the log.
 *
 * One writer connection belongs to the projector (WAL, migrations applied at open);
 * each worker has its own read-only connection. Each connection keeps a small cache of
 * prepared statements (struct readmodel_stmts), finalized before it closes.
 * Every connection has the FTS5 tokenizer "rsd" registered (tokenizer.h).
 * The projector's cursor per origin lives in the table projector_cursor, written in the
 * same transaction as the rows it produced.
 */
#ifndef RSD_READMODEL_H
#define RSD_READMODEL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "limits_rsd.h"
#include "rsd.h"

/* One migration, embedded from schema/NNN_name.sql at build time. */
struct readmodel_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct readmodel_migration readmodel_migrations[];
extern const int readmodel_migrations_count;

/*
 * Opens path for writing (creating it), in WAL mode, and applies the migrations newer than
 * its user_version, each in a transaction. Errors: RSD_EIO with f filled.
 */
int readmodel_open_writer(const char *path, sqlite3 **out, struct rsd_fail *f);

/* Statements prepared once on one connection and kept until released: a worker's reads and
 * the projector's writes. */
struct readmodel_stmts {
	int count;
	struct {
		const char *sql; /* compared by address: callers pass string literals */
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE_MAX];
};

/*
 * Returns the statement for sql (a string literal) prepared on db, reset and with bindings
 * cleared; prepares it on first use. c must only ever be used with the same db. The statement
 * stays owned by c. Returns NULL when SQLite refuses the SQL (sqlite3_errmsg(db) says why).
 * More than STMT_CACHE_MAX distinct statements is a bug (asserted).
 */
sqlite3_stmt *readmodel_stmts_get(struct readmodel_stmts *c, sqlite3 *db, const char *sql);

/* Finalizes every statement of c, which is then empty; call it before closing their db. */
void readmodel_stmts_release(struct readmodel_stmts *c);

/* A worker's read-only connection and its statement cache. */
struct readmodel_reader {
	sqlite3 *db;
	struct readmodel_stmts stmts;
};

/* Opens path read-only. Errors: RSD_EIO with f filled. */
int readmodel_reader_open(struct readmodel_reader *r, const char *path, struct rsd_fail *f);

/*
 * Returns the prepared statement for sql (a string literal), reset and with bindings
 * cleared, or NULL on an SQL error (logged). The statement stays owned by r.
 */
sqlite3_stmt *readmodel_stmt(struct readmodel_reader *r, const char *sql);

/* Finalizes every cached statement and closes the connection. */
void readmodel_reader_close(struct readmodel_reader *r);

/* The projector's cursor for origin: 0 when it has applied nothing of it. */
int readmodel_cursor_get(sqlite3 *db, const char *origin, uint64_t *seq);
int readmodel_cursor_set(sqlite3 *db, const char *origin, uint64_t seq);

/* Runs sql (no results) on db; Errors: RSD_EIO with f filled. */
int readmodel_exec(sqlite3 *db, const char *sql, struct rsd_fail *f);

/*
 * Compares the content of every projected table of db with the database at other_path,
 * row by row, printing one line per table to out. *differences: tables that differ.
 * Errors: RSD_EIO (attach or query failed).
 */
int readmodel_compare(sqlite3 *db, const char *other_path, FILE *out, int *differences);

#endif
