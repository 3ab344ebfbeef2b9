/*
 * main.c — subcommands (serve, init, check, version, help), start-up and shutdown.
 *
 * Start-up order: config, data directory, LMDB, SQLite (migrations), writer, projector,
 * demo data, HTTP workers. Shutdown (SIGTERM/SIGINT) runs it backwards: stop accepting,
 * let requests finish, drain the writer, let the projector catch up, close the stores.
 */
#include <errno.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "auth_http.h"
#include "bulk.h"
#include "cli_auth.h"
#include "oidc.h"
#include "config.h"
#include "eventlog.h"
#include "http.h"
#include "idp_recheck.h"
#include "logger.h"
#include "metrics.h"
#include "projector.h"
#include "readmodel.h"
#include "saga.h"
#include "store.h"
#include "writer.h"
#include "banned.h"

#define RESORTD_VERSION "0.1.0"
#define EXIT_USAGE	2

static void usage(FILE *out)
{
	fprintf(out,
		"usage: resortd COMMAND [--config FILE] [--key value ...]\n\n"
		"commands:\n"
		"  serve [--demo]   run the server (--demo: load demo resorts into an empty "
		"store)\n"
		"  init             create the data directory and stores, print the node id\n"
		"  check [--rebuild-catalog]\n"
		"                   verify the stores: durability flags, log, read model;\n"
		"                   rebuild catalog.db from the log and compare the two\n"
		"  import FILE      add the resorts, products and rate plans of FILE "
		"(all or nothing)\n"
		"  export           write the catalog to standard output as an import file\n"
		"  user add NAME --role staff|manager|admin [--resort ID] --password-stdin\n"
		"  user passwd NAME --password-stdin\n"
		"  user role NAME --role staff|manager|admin [--resort ID | --all-resorts]\n"
		"  user disable NAME\n"
		"                   manage local staff sign-in (works while the server runs;\n"
		"                   passwd, role and disable end the user's sessions)\n"
		"  keys rotate      add a new token signing key (the old one keeps verifying)\n"
		"  version          print the version\n"
		"  help             this text\n\n");
	config_print_help(out);
}

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

/* Makes sure data_dir exists and is writable; a one-line error names the key's origin. */
static int check_data_dir(const struct config *c)
{
	if (mkdir(c->data_dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "resortd: %s: key 'data_dir': cannot create %s: %s\n",
			config_origin(c, "data_dir"), c->data_dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (access(c->data_dir, W_OK | X_OK) != 0) {
		fprintf(stderr, "resortd: %s: key 'data_dir': cannot write %s: %s\n",
			config_origin(c, "data_dir"), c->data_dir, strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

/* Everything the stores need, opened together and closed together. */
struct stores {
	int lock_fd; /* flock'd: one process at a time owns data_dir (each writer keeps its seq) */
	struct store store;
	struct projector *projector;
	char catalog_path[4096];
};

static int stores_open(struct stores *s, const struct config *c)
{
	struct rsd_fail f = {0};
	uint64_t map = (uint64_t)c->map_size_mb * 1024 * 1024;
	char lock[4200];
	snprintf(lock, sizeof(lock), "%.4000s/resortd.lock", c->data_dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "resortd: %s is in use by another resortd process: stop it first\n",
			c->data_dir);
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		return 1;
	}
	if (store_open(&s->store, c->data_dir, map, c->node_id, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		close(s->lock_fd);
		return 1;
	}
	snprintf(s->catalog_path, sizeof(s->catalog_path), "%.4000s/catalog.db", c->data_dir);
	if (projector_open(&s->projector, &s->store, s->catalog_path, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		store_close(&s->store);
		close(s->lock_fd);
		return 1;
	}
	return 0;
}

static void stores_close(struct stores *s)
{
	projector_free(s->projector);
	store_close(&s->store);
	close(s->lock_fd);
}

static int cmd_init(const struct config *c)
{
	struct stores s;
	if (stores_open(&s, c))
		return 1;
	printf("initialized %s (node id %s)\n", c->data_dir, s.store.node_id);
	stores_close(&s);
	return 0;
}

/* Counts events of origin and checks their seqs run 1..head without gaps. */
struct check_walk {
	struct store *store;
	MDB_txn *txn;
	sqlite3 *db;
	int problems;
};

static int check_origin(const char *origin, void *arg)
{
	struct check_walk *cw = arg;
	struct eventlog_iter it;
	if (eventlog_iter_open(&it, cw->txn, cw->store, origin, 0) != RSD_OK)
		return RSD_EIO;
	struct event ev;
	uint64_t expect = 1;
	while (eventlog_iter_next(&it, &ev) == RSD_OK) {
		if (ev.seq != expect) {
			printf("log %s: gap: expected seq %llu, found %llu\n", origin,
			       (unsigned long long)expect, (unsigned long long)ev.seq);
			cw->problems++;
		}
		expect = ev.seq + 1;
	}
	eventlog_iter_close(&it);
	uint64_t cursor = 0;
	readmodel_cursor_get(cw->db, origin, &cursor);
	printf("log %s: %llu events, projected up to %llu\n", origin,
	       (unsigned long long)(expect - 1), (unsigned long long)cursor);
	if (cursor > expect - 1) {
		printf("log %s: the read model is ahead of the log\n", origin);
		cw->problems++;
	}
	return 0;
}

/* Applies every event the projector has not applied yet. */
static int catch_up(struct projector *p)
{
	size_t n;
	do {
		if (projector_run_once(p, PROJECTOR_BATCH_MAX, &n) != RSD_OK)
			return 1;
	} while (n > 0);
	return 0;
}

/* Removes an SQLite database and its WAL files, if there. */
static void remove_db(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[4300];
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
}

/*
 * Rebuilds the read model from the log into data_dir/catalog.rebuild.db and compares it
 * with catalog.db (brought up to the log first). Returns the problems found. The rebuild is
 * deleted when identical and kept for inspection when not.
 */
static int rebuild_catalog(struct stores *s, const struct config *c, sqlite3 *live)
{
	char path[4200];
	snprintf(path, sizeof(path), "%.4000s/catalog.rebuild.db", c->data_dir);
	remove_db(path);
	struct projector *fresh;
	struct rsd_fail f = {0};
	if (catch_up(s->projector)) {
		printf("rebuild: cannot bring catalog.db up to the log\n");
		return 1;
	}
	if (projector_open(&fresh, &s->store, path, &f) != RSD_OK) {
		printf("rebuild: %s\n", f.detail);
		return 1;
	}
	uint64_t t0 = rsd_now_ms();
	int failed = catch_up(fresh);
	struct projector_stats ps;
	projector_stats_get(fresh, &ps);
	projector_free(fresh);
	if (failed) {
		printf("rebuild: projecting the log failed\n");
		return 1;
	}
	printf("rebuild: %llu events projected into %s in %llu ms\n",
	       (unsigned long long)ps.events_applied, path,
	       (unsigned long long)(rsd_now_ms() - t0));
	int differences = 0;
	if (readmodel_compare(live, path, stdout, &differences) != RSD_OK)
		return 1;
	if (differences == 0) {
		printf("rebuild: identical in content\n");
		remove_db(path);
	} else {
		printf("rebuild: %d tables differ; the rebuild is kept at %s\n", differences, path);
	}
	return differences;
}

static int cmd_check(const struct config *c, bool rebuild)
{
	struct stores s;
	if (stores_open(&s, c))
		return 1;
	struct check_walk cw = {.store = &s.store};
	if (!store_flags_durable(&s.store)) {
		printf("lmdb: environment flags trade durability away\n");
		cw.problems++;
	} else {
		printf("lmdb: durable (no NOSYNC, NOMETASYNC, MAPASYNC or WRITEMAP)\n");
	}
	struct rsd_fail f;
	if (readmodel_open_writer(s.catalog_path, &cw.db, &f) != RSD_OK) {
		printf("sqlite: %s\n", f.detail);
		stores_close(&s);
		return 1;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(cw.db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		printf("sqlite: integrity %s\n", r);
		if (strcmp(r, "ok") != 0)
			cw.problems++;
	}
	sqlite3_finalize(st);
	mdb_txn_begin(s.store.env, NULL, MDB_RDONLY, &cw.txn);
	if (eventlog_origins(cw.txn, &s.store, check_origin, &cw) != RSD_OK)
		cw.problems++;
	mdb_txn_abort(cw.txn);
	if (rebuild)
		cw.problems += rebuild_catalog(&s, c, cw.db);
	sqlite3_close(cw.db);
	stores_close(&s);
	printf("%s\n", cw.problems ? "check: problems found" : "check: ok");
	return cw.problems ? 1 : 0;
}

static void on_commit(void *arg, uint64_t head)
{
	projector_notify(arg, head);
}

/* Waits (up to 60 s) until the projector has applied seq; false when it did not. */
static bool wait_projected(struct projector *p, uint64_t seq)
{
	struct projector_stats ps;
	for (int i = 0; i < 6000; i++) {
		projector_stats_get(p, &ps);
		if (ps.applied_seq >= seq)
			return true;
		usleep(10000);
	}
	return false;
}

/* Reads all of path into a NUL-terminated buffer (caller frees). */
static char *read_file(const char *path, size_t *len)
{
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (in == NULL)
		return NULL;
	size_t cap = 1 << 16, n = 0, got;
	char *buf = rsd_malloc(cap);
	while ((got = fread(buf + n, 1, cap - n - 1, in)) > 0) {
		n += got;
		if (cap - n - 1 == 0)
			buf = rsd_realloc(buf, cap *= 2);
	}
	bool failed = ferror(in) != 0;
	if (in != stdin)
		fclose(in);
	if (failed) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int cmd_import(const struct config *c, const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	if (text == NULL) {
		fprintf(stderr, "resortd: import: cannot read %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	struct rsd_fail f = {0};
	struct bulk_import *b;
	uint64_t t0 = rsd_now_ms();
	int err = bulk_import_decode(text, len, &b, &f);
	free(text);
	if (err) {
		fprintf(stderr, "resortd: import: %s: %s: %s\n", path, f.field, f.detail);
		return EXIT_USAGE;
	}
	struct stores s;
	struct writer *w = NULL;
	if (stores_open(&s, c)) {
		bulk_import_free(b);
		return 1;
	}
	int rc = 1;
	uint64_t last = 0;
	if (writer_start(&w, &s.store, on_commit, s.projector) != RSD_OK) {
		fprintf(stderr, "resortd: cannot read the event log\n");
		goto out;
	}
	projector_start(s.projector, c->projector_gather_ms);
	if ((err = bulk_import_run(b, w, &last, &f))) {
		fprintf(stderr, "resortd: import: %s: nothing imported: %s%s%s\n", path, f.field,
			f.field[0] ? ": " : "", f.detail);
		goto out;
	}
	if (!wait_projected(s.projector, last)) {
		fprintf(stderr, "resortd: import: durable, but the read model has not caught up\n");
		goto out;
	}
	int nr, np, nrp;
	bulk_import_counts(b, &nr, &np, &nrp);
	uint64_t ms = rsd_now_ms() - t0;
	printf("imported %d resorts, %d products, %d rate plans in %llu ms (%.0f products/s)\n", nr,
	       np, nrp, (unsigned long long)ms, ms ? np * 1000.0 / (double)ms : 0.0);
	rc = 0;
out:
	writer_free(w);
	bulk_import_free(b);
	stores_close(&s);
	return rc;
}

static int cmd_export(const struct config *c)
{
	struct stores s;
	if (stores_open(&s, c))
		return 1;
	struct readmodel_reader r;
	struct rsd_fail f = {0};
	int rc = readmodel_reader_open(&r, s.catalog_path, &f) == RSD_OK &&
				 bulk_export(&r, stdout, &f) == RSD_OK
			 ? 0
			 : 1;
	if (rc)
		fprintf(stderr, "resortd: export: %s\n", f.detail);
	readmodel_reader_close(&r);
	stores_close(&s);
	return rc;
}

/* The demo catalog (demo/catalog.json, embedded at build time). */
extern const char demo_catalog_json[];

/* True when the store holds no catalog entity yet (sign-in records do not count: a user
 * may be added before the first start). */
static bool catalog_empty(struct store *st)
{
	MDB_txn *txn;
	MDB_stat stat = {0};
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
		return false;
	int rc = mdb_stat(txn, st->entities, &stat);
	mdb_txn_abort(txn);
	return rc == 0 && stat.ms_entries == 0;
}

/* Loads the demo catalog when this node has no catalog yet. */
static int load_demo(struct writer *w, struct projector *p, struct store *st)
{
	if (!catalog_empty(st)) {
		logger_log(LOGGER_INFO, "demo data skipped: the store is not empty");
		return 0;
	}
	struct rsd_fail f = {0};
	struct bulk_import *b;
	uint64_t last = 0;
	if (bulk_import_decode(demo_catalog_json, strlen(demo_catalog_json), &b, &f) != RSD_OK)
		rsd_fatal("demo catalog: %s: %s", f.field, f.detail);
	int err = bulk_import_run(b, w, &last, &f);
	int nr, np, nrp;
	bulk_import_counts(b, &nr, &np, &nrp);
	bulk_import_free(b);
	if (err) {
		fprintf(stderr, "resortd: demo data: %s: %s\n", f.field, f.detail);
		return 1;
	}
	/* Serve only once the demo catalog is readable. */
	wait_projected(p, last);
	logger_log(LOGGER_INFO,
		   "loaded the demo catalog (%d resorts, %d products, %d rate plans)"
		   " on node %s",
		   nr, np, nrp, st->node_id);
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cmd_serve(struct config *c, bool demo)
{
	evthread_use_pthreads();
	raise_fd_limit();
	/* Signals go to sigwait in this thread only; every thread started below inherits the mask.
	 */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct stores s;
	if (stores_open(&s, c))
		return 1;
	struct server srv = {.config = c, .store = &s.store, .projector = s.projector};
	snprintf(srv.catalog_path, sizeof(srv.catalog_path), "%s", s.catalog_path);
	if (writer_start(&srv.writer, &s.store, on_commit, s.projector) != RSD_OK) {
		fprintf(stderr, "resortd: cannot read the event log\n");
		stores_close(&s);
		return 1;
	}
	projector_start(s.projector, c->projector_gather_ms);
	int rc = demo ? load_demo(srv.writer, s.projector, &s.store) : 0;
	struct rsd_fail f = {0};
	if (rc == 0 && auth_open(&srv.auth, c, &s.store, srv.writer, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		rc = 1;
	}
	if (rc == 0 && oidc_open(&srv.oidc, c, auth_login_key(srv.auth), srv.auth, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s: %s\n", f.field, f.detail);
		rc = 2;
	}
	if (rc == 0) {
		auth_http_start(&srv);
		idp_recheck_start(&s.store, srv.writer, srv.oidc, srv.auth, c);
	}
	srv.metrics = metrics_new(c->workers > 0 ? c->workers : (int)sysconf(_SC_NPROCESSORS_ONLN));
	bool saga_running = false;
	if (rc == 0 && saga_start(&s.store, srv.writer, c, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		rc = 2;
	}
	saga_running = rc == 0;
	if (rc == 0 && http_start(&srv, &f) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", f.detail);
		rc = 1;
	}
	if (rc == 0) {
		logger_log(LOGGER_INFO, "listening on %s port %d, node %s, data %s", c->listen_host,
			   http_bound_port(), s.store.node_id, c->data_dir);
		int sig = 0;
		sigwait(&sigs, &sig);
		logger_log(LOGGER_INFO, "signal %d: shutting down", sig);
		http_stop_accepting();
		saga_quiesce(); /* calls in flight end while requests drain */
		http_drain(SHUTDOWN_GRACE_MS);
	}
	idp_recheck_stop(); /* before the writer: its commands go through it */
	if (saga_running)
		saga_stop();	 /* its calls in flight end and their steps commit first */
	writer_free(srv.writer); /* its last completions still reach the running loops */
	srv.writer = NULL;
	if (rc == 0)
		http_stop_loops(); /* from here no request touches the projector */
	auth_http_stop();	   /* before http_free: its jobs point at requests */
	oidc_free(srv.oidc);	   /* the same */
	srv.oidc = NULL;
	projector_free(s.projector); /* catches up with the log first */
	s.projector = NULL;
	if (rc == 0)
		http_free();
	metrics_free(srv.metrics);
	auth_free(srv.auth);
	store_close(&s.store);
	close(s.lock_fd);
	logger_log(LOGGER_INFO, "stopped");
	return rc;
}

/* `user ...` and `keys ...`: their own options are taken out before the config's. */
static int admin_command(int argc, char **argv, char **envp)
{
	struct cli_user_opts o = {0};
	char **rest = rsd_calloc((size_t)argc + 1, sizeof(char *));
	int n = 0;
	for (int i = 2; i < argc; i++) {
		bool valued = strcmp(argv[i], "--role") == 0 || strcmp(argv[i], "--resort") == 0;
		if (valued && i + 1 >= argc) {
			fprintf(stderr, "resortd: %s needs a value\n", argv[i]);
			free(rest);
			return EXIT_USAGE;
		}
		if (strcmp(argv[i], "--role") == 0)
			o.role = argv[++i];
		else if (strcmp(argv[i], "--resort") == 0)
			o.resort = argv[++i];
		else if (strcmp(argv[i], "--password-stdin") == 0)
			o.password_stdin = true;
		else if (strcmp(argv[i], "--all-resorts") == 0)
			o.all_resorts = true;
		else
			rest[n++] = argv[i];
	}
	/* The positional words (verb, name) come first; the rest are config flags. */
	int words = 0;
	while (words < n && words < 2 && rest[words][0] != '-')
		words++;
	struct config c;
	char err[1024];
	int rc;
	if (config_load(&c, n - words, rest + words, envp, NULL, err, sizeof(err)) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", err);
		rc = EXIT_USAGE;
	} else if ((rc = check_data_dir(&c)) == 0) {
		logger_set_level(c.log_level);
		rc = strcmp(argv[1], "user") == 0 ? cli_auth_user(&c, words, rest, &o)
						  : cli_auth_keys(&c, words, rest);
	}
	free(rest);
	return rc;
}

int main(int argc, char **argv, char **envp)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("resortd %s\n", RESORTD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "user") == 0 || strcmp(cmd, "keys") == 0)
		return admin_command(argc, argv, envp);
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "init") != 0 && strcmp(cmd, "check") != 0 &&
	    strcmp(cmd, "import") != 0 && strcmp(cmd, "export") != 0) {
		fprintf(stderr, "resortd: unknown command '%s' (try 'resortd help')\n", cmd);
		return EXIT_USAGE;
	}
	static const char *const serve_flags[] = {"--demo", NULL};
	static const char *const check_flags[] = {"--rebuild-catalog", NULL};
	bool import = strcmp(cmd, "import") == 0;
	if (import && (argc < 3 || (argv[2][0] == '-' && argv[2][1] != '\0'))) {
		fprintf(stderr, "resortd: import needs a FILE (or - for standard input)\n");
		return EXIT_USAGE;
	}
	int first = import ? 3 : 2;
	struct config c;
	char err[1024];
	if (config_load(&c, argc - first, argv + first, envp,
			strcmp(cmd, "serve") == 0   ? serve_flags
			: strcmp(cmd, "check") == 0 ? check_flags
						    : NULL,
			err, sizeof(err)) != RSD_OK) {
		fprintf(stderr, "resortd: %s\n", err);
		return EXIT_USAGE;
	}
	logger_set_level(c.log_level);
	int bad = check_data_dir(&c);
	if (bad)
		return bad;
	if (strcmp(cmd, "init") == 0)
		return cmd_init(&c);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(&c, has_flag(argc - 2, argv + 2, "--rebuild-catalog"));
	if (import)
		return cmd_import(&c, argv[2]);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(&c);
	return cmd_serve(&c, has_flag(argc - 2, argv + 2, "--demo"));
}
