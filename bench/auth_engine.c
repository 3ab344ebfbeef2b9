/*
 * auth_engine.c — in-process cost of a signed-in request (issue 5): the session check every
 * authenticated request pays, and the whole bearer path, without HTTP.
 *
 * Opens a fresh, durable store in a temp directory (as bench/booking_engine.c), starts the
 * writer without a projector and creates N sessions through it: session_cmd_init
 * (SESSION_LOGIN) + writer_run, from 64 threads so the writer batches them, each a guest
 * signed in through the IdP (via "oidc": no local user record is read) with a refresh token
 * and a cookie secret, as the OpenID callback makes. Then for
 * each case and each thread count T, T threads loop for SECONDS, each request the way a
 * worker does it (http.c http_req_authenticate): store_reader_begin (renews the thread's
 * reset read transaction: a fresh snapshot), the check, store_reader_end (resets it);
 * AUTH_ENGINE_BATCH > 1 puts that many checks in one snapshot instead. Random sessions
 * (xorshift over the N ids). Cases:
 *   check:       session_check(txn, store, sid, NULL, &lim, now_ms, NULL, NULL, &f), what
 *                auth_bearer does after its cache hit;
 *   bearer:      auth_bearer with an ES256 access token signed by auth_sign_access for the
 *                session (auth_open over the store: config_defaults + data_dir + public_url),
 *                one auth_cache per thread (as per worker), tokens chosen so each has a
 *                cache slot of its own (auth_cache_slot) and the cache warmed first: SHA-256,
 *                probe, and no session read, as nothing is committed meanwhile (a worker
 *                between writes; the check case is what a write in between adds);
 *   bearer_miss: auth_bearer on pairs of tokens sharing a slot, alternately, so every call
 *                misses: the ES256 verification (once per token and worker in the server)
 *                + the check;
 *   sign:        auth_sign_access for a session's principal (what every login and refresh
 *                pays once), no read transaction.
 * Latency: every LAT_EVERY-th request is timed alone (CLOCK_MONOTONIC around begin, check
 * and end); ops/s counts all of them over the wall time.
 *
 * Usage: auth_engine SECONDS N CASE... -- THREADS...
 *   e.g. auth_engine 10 10000 check bearer -- 1 2  (bearer_miss, sign: SECONDS / 3, at least 1)
 * Output, stdout:
 *   SETUP sessions=N secs=S commits=C session_bytes=B tokens=K token_bytes=J hit_tokens=H
 *     miss_pairs=P
 *   RESULT case=<c> threads=<t> secs=<s> ops=<n> ops_per_s=<x> per_thread_ops_per_s=<y>
 *     p50_us=<> p99_us=<> p999_us=<> max_us=<> sampled=<m> slow_over_20us=<k> errors=<e>
 *     cpu_us_per_op=<>
 * Exit status 0 when no check failed.
 *
 * Build (bench/auth.sh does this, as bench/booking.sh builds booking_engine):
 *   cc -O2 -g -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson)
 *      bench/auth_engine.c (every build/release object except main.o)
 *      $(pkg-config --libs lmdb libevent ... libcrypto libcjson libjwt sqlite3) -lpthread -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>


#include "auth.h"
#include "config.h"
#include "limits_rsd.h"
#include "rsd.h"
#include "session.h"
#include "store.h"
#include "writer.h"

#define THREADS_MAX   64
#define SETUP_THREADS 64
#define MAP_BYTES     (1ULL << 30)
#define LAT_EVERY     8 /* time one request in LAT_EVERY */
#define SLOW_NS	      20000
#define PUBLIC_URL    "http://127.0.0.1:8080"

enum bench_case { CASE_CHECK, CASE_BEARER, CASE_BEARER_MISS, CASE_SIGN, CASES };
static const char *const case_names[] = {"check", "bearer", "bearer_miss", "sign"};

static struct store store;
static struct writer *writer;
static struct auth *auth;
static struct session_limits lim;
static int n_sessions;
static char (*sids)[SESSION_ID_BYTES + 1];
static char **tokens; /* access token of session i */
static int *hit_idx;  /* sessions whose tokens have a cache slot each */
static int n_hit;
static int (*miss_pairs)[2]; /* sessions whose tokens share a slot */
static int n_miss;
static int batch = 1;
static atomic_bool stop_flag, go_flag;
static atomic_int ready_count; /* threads done warming, waiting for go_flag */
static atomic_int next_setup;
static atomic_int setup_errors;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* --- setup: N sessions through the writer --- */

static void principal_of(int i, struct principal *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->sub, sizeof(p->sub), "u_bench%015d", i);
	snprintf(p->name, sizeof(p->name), "Bench Guest %05d", i);
	p->role = ROLE_GUEST;
	snprintf(p->sid, sizeof(p->sid), "%s", sids[i]);
}

static void *setup_main(void *arg)
{
	(void)arg;
	for (int i; (i = atomic_fetch_add(&next_setup, 1)) < n_sessions;) {
		struct session_cmd sc;
		session_cmd_init(&sc, SESSION_LOGIN, rsd_now_ms());
		sc.lim = lim;
		session_new_id(sids[i]);
		principal_of(i, &sc.who);
		snprintf(sc.via, sizeof(sc.via), "oidc");
		snprintf(sc.ip, sizeof(sc.ip), "127.0.0.1");
		char refresh[SESSION_TOKEN_BYTES + 1], cookie[SESSION_TOKEN_BYTES + 1];
		session_new_token(refresh);
		session_new_token(cookie);
		session_hash(refresh, sc.token_hash);
		session_hash(cookie, sc.cookie_hash);
		sc.access = strdup("access");
		int err = writer_run(writer, &sc.cmd);
		if (err) {
			if (atomic_fetch_add(&setup_errors, 1) < 3)
				fprintf(stderr, "auth_engine: login %d: %s: %s\n", i,
					rsd_strerror(err), sc.cmd.fail.detail);
		}
		session_cmd_release(&sc);
	}
	return NULL;
}

/* Signs a token per session; picks one token per cache slot (hits) and colliding pairs. */
static int make_tokens(size_t *token_bytes)
{
	tokens = rsd_calloc((size_t)n_sessions, sizeof(*tokens));
	hit_idx = rsd_calloc(TOKEN_CACHE_SLOTS, sizeof(*hit_idx));
	miss_pairs = rsd_calloc((size_t)n_sessions, sizeof(*miss_pairs));
	int *owner = rsd_malloc(TOKEN_CACHE_SLOTS * sizeof(*owner));
	bool *paired = rsd_calloc(TOKEN_CACHE_SLOTS, sizeof(*paired));
	for (int s = 0; s < TOKEN_CACHE_SLOTS; s++)
		owner[s] = -1;
	uint64_t now = rsd_now_ms();
	size_t bytes = 0;
	for (int i = 0; i < n_sessions; i++) {
		struct principal p;
		principal_of(i, &p);
		if (auth_sign_access(auth, &p, now, &tokens[i]) != RSD_OK) {
			fprintf(stderr, "auth_engine: auth_sign_access failed\n");
			return -1;
		}
		bytes += strlen(tokens[i]);
		unsigned s = auth_cache_slot(tokens[i]);
		if (owner[s] < 0) {
			owner[s] = i;
			hit_idx[n_hit++] = i;
		} else if (!paired[s]) {
			paired[s] = true;
			miss_pairs[n_miss][0] = owner[s];
			miss_pairs[n_miss][1] = i;
			n_miss++;
		}
	}
	free(owner);
	free(paired);
	*token_bytes = n_sessions ? bytes / (size_t)n_sessions : 0;
	return 0;
}

/* --- the load --- */

struct worker {
	pthread_t tid;
	enum bench_case which;
	uint64_t rng;
	uint64_t ops, errors, slow;
	int last_error;
	char last_detail[RSD_DETAIL_BYTES_MAX];
	uint32_t *lat_ns;
	size_t n_lat, cap_lat;
};

static void lat_push(struct worker *wk, uint64_t ns)
{
	if (wk->n_lat == wk->cap_lat) {
		wk->cap_lat = wk->cap_lat ? wk->cap_lat * 2 : 65536;
		wk->lat_ns = rsd_realloc(wk->lat_ns, wk->cap_lat * sizeof(*wk->lat_ns));
	}
	wk->lat_ns[wk->n_lat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	if (ns > SLOW_NS)
		wk->slow++;
}

/* One check of session i (or of token i) in txn; for sign, a token for session i. */
static int one(struct worker *wk, struct auth_cache *cache, struct store_reader *r, MDB_txn *txn,
	       int i, uint64_t now)
{
	struct rsd_fail f = {0};
	int err;
	if (wk->which == CASE_SIGN) {
		struct principal p;
		char *tok = NULL;
		principal_of(i, &p);
		if ((err = auth_sign_access(auth, &p, now, &tok)) != RSD_OK)
			snprintf(f.detail, sizeof(f.detail), "auth_sign_access failed");
		free(tok);
	} else if (wk->which == CASE_CHECK) {
		err = session_check(txn, &store, sids[i], NULL, &lim, now, NULL, NULL, &f);
	} else {
		struct principal who;
		err = auth_bearer(auth, cache, r, tokens[i], now, &who, &f);
	}
	if (err) {
		wk->errors++;
		wk->last_error = err;
		snprintf(wk->last_detail, sizeof(wk->last_detail), "%s", f.detail);
	}
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct store_reader r = {.store = &store};
	struct auth_cache *cache = wk->which == CASE_CHECK ? NULL : auth_cache_new();
	uint64_t pair_k = xorshift(&wk->rng) % (uint64_t)(n_miss ? n_miss : 1);
	int pair_side = 0;
	if (wk->which == CASE_BEARER) { /* warm this thread's cache: every hit token once */
		for (int k = 0; k < n_hit; k++)
			one(wk, cache, &r, NULL, hit_idx[k], rsd_now_ms());
		wk->errors = 0;
	}
	atomic_fetch_add(&ready_count, 1);
	while (!atomic_load(&go_flag))
		usleep(100);
	uint64_t n = 0;
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
		bool timed = n % LAT_EVERY == 0;
		uint64_t t0 = timed ? rsd_mono_ns() : 0;
		/* auth_bearer begins and ends its own snapshot, when it needs one */
		MDB_txn *txn = wk->which == CASE_CHECK ? store_reader_begin(&r) : NULL;
		if (txn == NULL && wk->which == CASE_CHECK) {
			wk->errors++;
			break;
		}
		uint64_t now = rsd_now_ms();
		for (int b = 0; b < batch; b++) {
			int i;
			if (wk->which == CASE_CHECK || wk->which == CASE_SIGN)
				i = (int)(xorshift(&wk->rng) % (uint64_t)n_sessions);
			else if (wk->which == CASE_BEARER)
				i = hit_idx[xorshift(&wk->rng) % (uint64_t)n_hit];
			else {
				/* A then B of one pair: each evicts the other, so both miss. */
				i = miss_pairs[pair_k][pair_side];
				if ((pair_side ^= 1) == 0)
					pair_k = (pair_k + 1) % (uint64_t)n_miss;
			}
			one(wk, cache, &r, txn, i, now);
		}
		store_reader_end(&r);
		if (timed)
			lat_push(wk, rsd_mono_ns() - t0);
		n++;
	}
	wk->ops = n * (uint64_t)batch;
	store_reader_close(&r);
	auth_cache_free(cache);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double rank_us(const uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(q * (double)n + 0.999999);
	return v[(i < 1 ? 1 : i > n ? n : i) - 1] / 1e3;
}

static int run_case(enum bench_case which, int n, double secs, uint64_t *errors)
{
	static struct worker wk[THREADS_MAX];
	atomic_store(&stop_flag, false);
	atomic_store(&go_flag, false);
	atomic_store(&ready_count, 0);
	for (int i = 0; i < n; i++) {
		wk[i] = (struct worker){.which = which,
					.rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) ^
					       (uint64_t)rsd_mono_ns()};
		if (pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]) != 0) {
			fprintf(stderr, "auth_engine: pthread_create failed\n");
			atomic_store(&stop_flag, true);
			atomic_store(&go_flag, true);
			for (int j = 0; j < i; j++)
				pthread_join(wk[j].tid, NULL);
			return -1;
		}
	}
	/* The bearer case first warms each thread's cache (an ES256 verification per token):
	 * the clock starts when every thread is ready. */
	while (atomic_load(&ready_count) < n)
		usleep(1000);
	double cpu0 = cpu_s();
	uint64_t t0 = rsd_mono_ns();
	atomic_store(&go_flag, true);
	while ((double)(rsd_mono_ns() - t0) / 1e9 < secs)
		usleep(10000);
	atomic_store(&stop_flag, true);
	for (int i = 0; i < n; i++)
		pthread_join(wk[i].tid, NULL);
	double elapsed = (double)(rsd_mono_ns() - t0) / 1e9, cpu = cpu_s() - cpu0;
	uint64_t ops = 0, errs = 0, slow = 0;
	size_t n_lat = 0;
	for (int i = 0; i < n; i++) {
		ops += wk[i].ops;
		errs += wk[i].errors;
		slow += wk[i].slow;
		n_lat += wk[i].n_lat;
		if (wk[i].errors)
			fprintf(stderr, "auth_engine: thread %d: %llu errors, last %s: %s\n", i,
				(unsigned long long)wk[i].errors, rsd_strerror(wk[i].last_error),
				wk[i].last_detail);
	}
	uint32_t *all = rsd_malloc((n_lat ? n_lat : 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		memcpy(all + k, wk[i].lat_ns, wk[i].n_lat * sizeof(*all));
		k += wk[i].n_lat;
		free(wk[i].lat_ns);
	}
	qsort(all, n_lat, sizeof(*all), cmp_u32);
	double rate = (double)ops / elapsed;
	fprintf(stderr,
		"auth_engine: %-11s %d thread(s): %.0f ops/s (%.0f per thread), p50 %.2f us, p99 "
		"%.2f us, max %.1f us, %.2f us CPU/op, %llu errors\n",
		case_names[which], n, rate, rate / n, rank_us(all, n_lat, 0.50),
		rank_us(all, n_lat, 0.99), rank_us(all, n_lat, 1.0),
		ops ? cpu * 1e6 / (double)ops : 0, (unsigned long long)errs);
	printf("RESULT case=%s threads=%d secs=%.2f ops=%llu ops_per_s=%.0f "
	       "per_thread_ops_per_s=%.0f"
	       " p50_us=%.3f p99_us=%.3f p999_us=%.3f max_us=%.1f sampled=%zu slow_over_20us=%llu"
	       " errors=%llu cpu_us_per_op=%.3f batch=%d\n",
	       case_names[which], n, elapsed, (unsigned long long)ops, rate, rate / n,
	       rank_us(all, n_lat, 0.50), rank_us(all, n_lat, 0.99), rank_us(all, n_lat, 0.999),
	       rank_us(all, n_lat, 1.0), n_lat, (unsigned long long)slow, (unsigned long long)errs,
	       ops ? cpu * 1e6 / (double)ops : 0, batch);
	fflush(stdout);
	free(all);
	*errors += errs;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0;
	n_sessions = argc > 2 ? atoi(argv[2]) : 0;
	enum bench_case cases[8];
	int nc = 0, threads[8], nt = 0, i = 3;
	for (; i < argc && strcmp(argv[i], "--") != 0 && nc < 8; i++) {
		int c;
		for (c = 0; c < CASES && strcmp(argv[i], case_names[c]) != 0; c++)
			;
		if (c == CASES) {
			fprintf(stderr, "auth_engine: unknown case '%s'\n", argv[i]);
			return 2;
		}
		cases[nc++] = (enum bench_case)c;
	}
	for (i++; i < argc && nt < 8; i++)
		threads[nt++] = atoi(argv[i]);
	bool ok = secs > 0 && secs <= 600 && n_sessions >= 2 && n_sessions <= 1000000 && nc > 0 &&
		  nt > 0;
	for (int k = 0; k < nt; k++)
		ok = ok && threads[k] >= 1 && threads[k] <= THREADS_MAX;
	if (!ok) {
		fprintf(stderr,
			"usage: %s SECONDS(0..600] N(2..) check|bearer|bearer_miss... -- "
			"THREADS(1..%d)...\n",
			argv[0], THREADS_MAX);
		return 2;
	}
	if (getenv("AUTH_ENGINE_BATCH") && atoi(getenv("AUTH_ENGINE_BATCH")) > 0)
		batch = atoi(getenv("AUTH_ENGINE_BATCH"));

	const char *tmp = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/auth_engine.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "auth_engine: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	struct config c;
	config_defaults(&c);
	char why[512];
	snprintf(c.data_dir, sizeof(c.data_dir), "%s", dir);
	if (config_set(&c, "public_url", PUBLIC_URL, "auth_engine", why, sizeof(why)) != RSD_OK) {
		fprintf(stderr, "auth_engine: %s\n", why);
		return 1;
	}
	struct rsd_fail f = {0};
	int rc = 1;
	uint64_t errors = 0;
	if (store_open(&store, dir, MAP_BYTES, "", &f) != RSD_OK) {
		fprintf(stderr, "auth_engine: store_open: %s\n", f.detail);
		goto out_dir;
	}
	if (!store_flags_durable(&store)) {
		fprintf(stderr, "auth_engine: store is not durable; refusing to benchmark\n");
		goto out_store;
	}
	if (writer_start(&writer, &store, NULL, NULL) != RSD_OK) {
		fprintf(stderr, "auth_engine: writer_start failed\n");
		goto out_store;
	}
	if (auth_open(&auth, &c, &store, writer, &f) != RSD_OK) {
		fprintf(stderr, "auth_engine: auth_open: %s\n", f.detail);
		goto out_writer;
	}
	auth_limits(auth, &lim);

	sids = rsd_calloc((size_t)n_sessions, sizeof(*sids));
	struct writer_stats w0, w1;
	writer_stats_get(writer, &w0);
	uint64_t t0 = rsd_mono_ns();
	pthread_t setup[SETUP_THREADS];
	for (int k = 0; k < SETUP_THREADS; k++)
		pthread_create(&setup[k], NULL, setup_main, NULL);
	for (int k = 0; k < SETUP_THREADS; k++)
		pthread_join(setup[k], NULL);
	double setup_s = (double)(rsd_mono_ns() - t0) / 1e9;
	writer_stats_get(writer, &w1);
	if (atomic_load(&setup_errors)) {
		fprintf(stderr, "auth_engine: %d logins failed\n", atomic_load(&setup_errors));
		goto out_auth;
	}
	/* The stored size of a session (for the Redis peer's values). */
	size_t rec_bytes = 0;
	MDB_txn *txn;
	if (mdb_txn_begin(store.env, NULL, MDB_RDONLY, &txn) == 0) {
		char kb[SESSION_ID_BYTES + 2] = "s";
		memcpy(kb + 1, sids[0], SESSION_ID_BYTES);
		MDB_val k = {.mv_size = SESSION_ID_BYTES + 1, .mv_data = kb}, v;
		if (mdb_get(txn, store.sessions, &k, &v) == 0)
			rec_bytes = v.mv_size;
		mdb_txn_abort(txn);
	}
	size_t token_bytes = 0;
	bool need_tokens = false;
	for (int k = 0; k < nc; k++)
		need_tokens =
			need_tokens || cases[k] == CASE_BEARER || cases[k] == CASE_BEARER_MISS;
	if (need_tokens && make_tokens(&token_bytes))
		goto out_auth;
	printf("SETUP sessions=%d secs=%.2f commits=%llu session_bytes=%zu tokens=%d "
	       "token_bytes=%zu"
	       " hit_tokens=%d miss_pairs=%d\n",
	       n_sessions, setup_s, (unsigned long long)(w1.commits - w0.commits), rec_bytes,
	       need_tokens ? n_sessions : 0, token_bytes, n_hit, n_miss);
	fprintf(stderr,
		"auth_engine: dir %s: %d sessions in %.2f s (%llu commits), session record %zu B,"
		" access token %zu B; %.1f s per case\n",
		dir, n_sessions, setup_s, (unsigned long long)(w1.commits - w0.commits), rec_bytes,
		token_bytes, secs);
	fflush(stdout);
	for (int k = 0; k < nc; k++)
		for (int t = 0; t < nt; t++) {
			double s =
				cases[k] >= CASE_BEARER_MISS ? (secs / 3 < 1 ? 1 : secs / 3) : secs;
			if (cases[k] == CASE_BEARER_MISS && n_miss == 0) {
				fprintf(stderr, "auth_engine: no two tokens share a slot\n");
				goto out_auth;
			}
			if (run_case(cases[k], threads[t], s, &errors))
				goto out_auth;
		}
	rc = errors ? 1 : 0;
out_auth:
	auth_free(auth);
out_writer:
	writer_free(writer);
out_store:
	store_close(&store);
out_dir:
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
