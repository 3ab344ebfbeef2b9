/*
 * readmodel.c — opening catalog.db, migrations by PRAGMA user_version, reader connections.
 */
#include "readmodel.h"

#include <stdio.h>
#include <string.h>

#include "logger.h"
#include "tokenizer.h"
#include "banned.h"

int readmodel_exec(sqlite3 *db, const char *sql, struct rsd_fail *f)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = rsd_failf(f, RSD_EIO, "", "SQLite: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return rc;
	}
	return RSD_OK;
}

static int user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return RSD_EIO;
	int rc = sqlite3_step(st) == SQLITE_ROW ? RSD_OK : RSD_EIO;
	*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static int migrate(sqlite3 *db, struct rsd_fail *f)
{
	int have;
	if (user_version(db, &have))
		return rsd_failf(f, RSD_EIO, "", "reading user_version: %s", sqlite3_errmsg(db));
	for (int i = 0; i < readmodel_migrations_count; i++) {
		const struct readmodel_migration *m = &readmodel_migrations[i];
		if (m->version <= have)
			continue;
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
		int err;
		if ((err = readmodel_exec(db, "BEGIN IMMEDIATE", f)))
			return err;
		if ((err = readmodel_exec(db, m->sql, f)) ||
		    (err = readmodel_exec(db, pragma, f))) {
			readmodel_exec(db, "ROLLBACK", NULL);
			return rsd_failf(f, err, "", "migration %s: %s", m->name,
					 f ? f->detail : "");
		}
		if ((err = readmodel_exec(db, "COMMIT", f)))
			return err;
		logger_log(LOGGER_INFO, "applied schema migration %s", m->name);
	}
	return RSD_OK;
}

int readmodel_open_writer(const char *path, sqlite3 **out, struct rsd_fail *f)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		int rc = rsd_failf(f, RSD_EIO, "data_dir", "cannot open %s: %s", path,
				   db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, SQLITE_BUSY_TIMEOUT_MS);
	if (tokenizer_register(db) != RSD_OK) {
		sqlite3_close(db);
		return rsd_failf(f, RSD_EIO, "", "cannot register the FTS5 tokenizer on %s", path);
	}
	/* synchronous=NORMAL is safe here: the log in LMDB is the truth, and a projection lost
	 * to power failure is re-applied from the cursor, which rolls back with it. */
	int err = readmodel_exec(db,
				 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				 "PRAGMA foreign_keys=ON",
				 f);
	if (err == RSD_OK)
		err = migrate(db, f);
	if (err) {
		sqlite3_close(db);
		return err;
	}
	*out = db;
	return RSD_OK;
}

int readmodel_reader_open(struct readmodel_reader *r, const char *path, struct rsd_fail *f)
{
	memset(r, 0, sizeof(*r));
	int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &r->db, flags, NULL) != SQLITE_OK) {
		int rc = rsd_failf(f, RSD_EIO, "", "cannot open %s read-only: %s", path,
				   r->db ? sqlite3_errmsg(r->db) : "out of memory");
		sqlite3_close(r->db);
		r->db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(r->db, SQLITE_BUSY_TIMEOUT_MS);
	if (tokenizer_register(r->db) != RSD_OK) {
		sqlite3_close(r->db);
		r->db = NULL;
		return rsd_failf(f, RSD_EIO, "", "cannot register the FTS5 tokenizer on %s", path);
	}
	/* SQLite's default 2 MiB cache held too little of a search's pages (FTS doclists,
	 * documents, facet columns), so every search re-read most of them with pread: about a
	 * fifth of a facet search went to the kernel copying pages. The cache grows only with
	 * what is read (about 10 MiB for bench/search.sh's queries), and any commit of the
	 * projector resets it, so it never serves a stale page. */
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", READER_CACHE_KIB);
	int err = readmodel_exec(r->db, pragma, f);
	if (err) {
		sqlite3_close(r->db);
		r->db = NULL;
		return err;
	}
	return RSD_OK;
}

sqlite3_stmt *readmodel_stmts_get(struct readmodel_stmts *c, sqlite3 *db, const char *sql)
{
	for (int i = 0; i < c->count; i++) {
		if (c->cache[i].sql == sql) {
			sqlite3_reset(c->cache[i].stmt);
			sqlite3_clear_bindings(c->cache[i].stmt);
			return c->cache[i].stmt;
		}
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return NULL;
	RSD_ASSERT(c->count < STMT_CACHE_MAX);
	c->cache[c->count].sql = sql;
	c->cache[c->count].stmt = st;
	c->count++;
	return st;
}

void readmodel_stmts_release(struct readmodel_stmts *c)
{
	for (int i = 0; i < c->count; i++)
		sqlite3_finalize(c->cache[i].stmt);
	c->count = 0;
}

sqlite3_stmt *readmodel_stmt(struct readmodel_reader *r, const char *sql)
{
	sqlite3_stmt *st = readmodel_stmts_get(&r->stmts, r->db, sql);
	if (st == NULL)
		logger_log(LOGGER_ERROR, "SQL prepare failed: %s", sqlite3_errmsg(r->db));
	return st;
}

void readmodel_reader_close(struct readmodel_reader *r)
{
	readmodel_stmts_release(&r->stmts);
	sqlite3_close(r->db);
	r->db = NULL;
}

int readmodel_cursor_get(sqlite3 *db, const char *origin, uint64_t *seq)
{
	sqlite3_stmt *st;
	*seq = 0;
	if (sqlite3_prepare_v2(db, "SELECT seq FROM projector_cursor WHERE origin = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? RSD_OK : RSD_EIO;
}

int readmodel_cursor_set(sqlite3 *db, const char *origin, uint64_t seq)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO projector_cursor(origin, seq) VALUES (?, ?) "
			       "ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq",
			       -1, &st, NULL) != SQLITE_OK)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, origin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? RSD_OK : RSD_EIO;
}

int readmodel_compare(sqlite3 *db, const char *other_path, FILE *out, int *differences)
{
	/* Every table the projector writes; the search index by its visible columns. */
	static const char *const sources[] = {
		"resorts",
		"products",
		"product_attrs",
		"package_components",
		"rate_plans",
		"day_prices",
		"reviews",
		"projector_cursor",
		"bookings",
		"booking_nights",
		"inventory_capacity",
	};
	char sql[512];
	*differences = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "ATTACH ?1 AS other", -1, &st, NULL) != SQLITE_OK)
		return RSD_EIO;
	sqlite3_bind_text(st, 1, other_path, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return RSD_EIO;
	int err = RSD_OK;
	for (size_t i = 0; i <= sizeof(sources) / sizeof(sources[0]) && !err; i++) {
		const char *t =
			i < sizeof(sources) / sizeof(sources[0]) ? sources[i] : "product_fts";
		const char *cols = i < sizeof(sources) / sizeof(sources[0])
					   ? "*"
					   : "rowid, name, name_en, description, attrs";
		snprintf(
			sql, sizeof(sql),
			"SELECT (SELECT count(*) FROM (SELECT %s FROM main.%s EXCEPT SELECT %s FROM"
			" other.%s)), (SELECT count(*) FROM (SELECT %s FROM other.%s EXCEPT SELECT "
			"%s"
			" FROM main.%s)), (SELECT count(*) FROM main.%s)",
			cols, t, cols, t, cols, t, cols, t, t);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW) {
			fprintf(out, "rebuild: comparing %s failed: %s\n", t, sqlite3_errmsg(db));
			err = RSD_EIO;
		} else {
			long long only_live = sqlite3_column_int64(st, 0);
			long long only_new = sqlite3_column_int64(st, 1);
			fprintf(out,
				"rebuild: %-18s %lld rows, %lld only in catalog.db, %lld only in"
				" the rebuild\n",
				t, (long long)sqlite3_column_int64(st, 2), only_live, only_new);
			*differences += (only_live || only_new) ? 1 : 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_exec(db, "DETACH other", NULL, NULL, NULL);
	return err;
}
