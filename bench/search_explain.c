/*
 * search_explain.c — where a product search spends its time, in-process, on a catalog.db.
 *
 * The sqlite3 CLI cannot run the search SQL: FTS5 MATCH needs the "rsd" tokenizer, which
 * only resortd registers. This tool opens the database with resortd's own reader (tokenizer
 * and rsd_rank registered), runs search_run() exactly as GET /v1/products does, and with
 * an SQLITE_TRACE_PROFILE hook reports for every statement search.c prepared: its SQL, its
 * median time over the runs, and its EXPLAIN QUERY PLAN.
 *
 * Usage:
 *   search_explain DB RUNS NAME=VALUE...     a search; parameters already decoded
 *                                            (q=오션뷰 facets=type,resort,attr.view)
 *   search_explain DB RUNS --sql 'SQL'       any SQL on a reader connection: median time,
 *                                            rows, and its query plan (to try a rewrite)
 * Output is plain text for a human; bench/search.sh keeps it in its report's diagnosis.
 *
 * Build (bench/search.sh does this):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson)
 *      bench/search_explain.c (every build/release object except main.o) $(pkg-config --libs
 *      lmdb libevent ... sqlite3) -lpthread -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "readmodel.h"
#include "rsd.h"
#include "search.h"
#include "search_params.h"

#define STMTS_MAX 8
#define RUNS_MAX  1000

/* One distinct SQL text seen by the profile hook, with its time in each run. */
static struct {
	char *sql;
	double ms[RUNS_MAX];
	int n;
} stmts[STMTS_MAX];
static int nstmts;

static int on_profile(unsigned type, void *ctx, void *p, void *x)
{
	(void)ctx;
	if (type != SQLITE_TRACE_PROFILE)
		return 0;
	const char *sql = sqlite3_sql((sqlite3_stmt *)p);
	double ms = (double)*(sqlite3_int64 *)x / 1e6;
	int i;
	for (i = 0; i < nstmts && strcmp(stmts[i].sql, sql) != 0; i++)
		;
	if (i == nstmts) {
		if (nstmts == STMTS_MAX)
			return 0;
		stmts[nstmts++].sql = strdup(sql);
	}
	if (stmts[i].n < RUNS_MAX)
		stmts[i].ms[stmts[i].n++] = ms;
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Prints EXPLAIN QUERY PLAN of sql as an indented tree. */
static void explain(sqlite3 *db, const char *sql)
{
	char *eqp = NULL;
	if (asprintf(&eqp, "EXPLAIN QUERY PLAN %s", sql) < 0)
		return;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, eqp, -1, &st, NULL) != SQLITE_OK) {
		printf("    (EXPLAIN failed: %s)\n", sqlite3_errmsg(db));
		free(eqp);
		return;
	}
	int ids[256], depth[256], n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int id = sqlite3_column_int(st, 0), parent = sqlite3_column_int(st, 1), d = 0;
		for (int i = 0; i < n; i++)
			if (ids[i] == parent)
				d = depth[i] + 1;
		if (n < 256) {
			ids[n] = id;
			depth[n++] = d;
		}
		printf("    %*s%s\n", d * 2, "", (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	free(eqp);
}

static int run_sql(struct readmodel_reader *r, const char *sql, int runs)
{
	double t[RUNS_MAX];
	long rows = 0;
	for (int k = 0; k < runs; k++) {
		sqlite3_stmt *st;
		double t0 = now_ms();
		if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
			fprintf(stderr, "search_explain: %s\n", sqlite3_errmsg(r->db));
			return 1;
		}
		rows = 0;
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			rows++;
		sqlite3_finalize(st);
		t[k] = now_ms() - t0;
		if (rc != SQLITE_DONE) {
			fprintf(stderr, "search_explain: %s\n", sqlite3_errmsg(r->db));
			return 1;
		}
	}
	printf("  %.2f ms median of %d runs, %ld rows\n  %s\n", median(t, runs), runs, rows, sql);
	explain(r->db, sql);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: search_explain DB RUNS NAME=VALUE... | --sql SQL\n");
		return 2;
	}
	int runs = atoi(argv[2]);
	if (runs < 1 || runs > RUNS_MAX)
		runs = 1;
	struct readmodel_reader r;
	struct rsd_fail f = {0};
	if (readmodel_reader_open(&r, argv[1], &f) != RSD_OK) {
		fprintf(stderr, "search_explain: %s: %s\n", argv[1], f.detail);
		return 1;
	}
	if (strcmp(argv[3], "--sql") == 0) {
		int rc = argc > 4 ? run_sql(&r, argv[4], runs) : 2;
		readmodel_reader_close(&r);
		return rc;
	}
	const char *names[QUERY_PARAMS_MAX], *values[QUERY_PARAMS_MAX];
	int n = 0;
	for (int i = 3; i < argc && n < QUERY_PARAMS_MAX; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL) {
			fprintf(stderr, "search_explain: '%s' is not NAME=VALUE\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		names[n] = argv[i];
		values[n++] = eq + 1;
	}
	static struct search_params p;
	if (search_params_parse(names, values, n, &p, &f) != RSD_OK) {
		fprintf(stderr, "search_explain: %s: %s\n", f.field, f.detail);
		return 2;
	}
	sqlite3_trace_v2(r.db, SQLITE_TRACE_PROFILE, on_profile, NULL);
	double total[RUNS_MAX];
	int items = 0;
	double matches = -1;
	for (int k = 0; k < runs; k++) {
		cJSON *page = NULL;
		double t0 = now_ms();
		if (search_run(&r, &p, &page, &f) != RSD_OK) {
			fprintf(stderr, "search_explain: search failed: %s\n", f.detail);
			return 1;
		}
		char *text = cJSON_PrintUnformatted(page); /* as the reply does */
		total[k] = now_ms() - t0;
		free(text);
		items = cJSON_GetArraySize(cJSON_GetObjectItem(page, "items"));
		cJSON *t = cJSON_GetObjectItem(page, "total");
		if (t)
			matches = t->valuedouble;
		cJSON_Delete(page);
	}
	sqlite3_trace_v2(r.db, 0, NULL, NULL);
	printf("search");
	for (int i = 0; i < n; i++)
		printf(" %s=%s", names[i], values[i]);
	printf(": %.2f ms median of %d runs (search_run + JSON), %d items", median(total, runs),
	       runs, items);
	if (matches >= 0)
		printf(", total %.0f", matches);
	printf("\n");
	for (int i = 0; i < nstmts; i++) {
		printf("  statement %d: %.2f ms median (%d runs)\n  %s\n", i + 1,
		       median(stmts[i].ms, stmts[i].n), stmts[i].n, stmts[i].sql);
		explain(r.db, stmts[i].sql);
	}
	readmodel_reader_close(&r);
	return 0;
}
