/*
 * bench_writer.c — in-process group-commit benchmark for the LMDB writer.
 *
 * Opens a fresh, durable store (fsync on: store_open never sets NOSYNC/NOMETASYNC/
 * MAPASYNC/WRITEMAP, checked with store_flags_durable) in a temp directory, starts the
 * writer without a projector, and for each submitter count N runs N threads for a fixed
 * time, each looping writer_run() of a command that emits one ~150-byte event. Every
 * writer_run returns only after its batch's commit is durable, so completed calls are
 * durable writes.
 *
 * Usage: bench_writer [SECONDS_PER_RUN] [N ...]     (default: 5 s, N = 1 64)
 * Output: a human table on stdout, plus one machine line per N:
 *   RESULT n=<N> writes_per_s=<x> commits_per_s=<y> mean_batch=<z> errors=<e>
 * and at the end: RATIO <last N>/<first N> = <r>
 *
 * Build (bench/run.sh does this):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/bench_writer.c
 *      (every build/release object except main.o) $(pkg-config --libs lmdb libevent ...) -lpthread -lm
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
#include <time.h>
#include <unistd.h>

#include "eventlog.h"
#include "rsd.h"
#include "store.h"
#include "writer.h"

#define THREADS_MAX 1024
#define PAYLOAD_BYTES 150

static atomic_bool stop_flag;
static char payload[PAYLOAD_BYTES + 1];
static size_t payload_len;

struct worker {
	pthread_t tid;
	struct writer *w;
	int index;
	uint64_t ok;
	uint64_t errors;
	int last_error;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int apply_one(struct writer_txn *wt, struct command *cmd)
{
	(void)cmd;
	return writer_emit(wt, EVENT_RESORT_CREATED, payload, payload_len, NULL);
}

static void *submitter(void *arg)
{
	struct worker *wk = arg;
	struct command cmd;
	while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.apply = apply_one;
		int rc = writer_run(wk->w, &cmd);
		if (rc == RSD_OK) {
			wk->ok++;
		} else {
			wk->errors++;
			wk->last_error = rc;
			if (rc == RSD_EBUSY)
				usleep(100);
			else if (rc == RSD_EFULL || rc == RSD_EIO || rc == RSD_ESHUTDOWN)
				break;
		}
	}
	return NULL;
}

struct result {
	int n;
	double secs, writes_s, commits_s, mean_batch;
	uint64_t writes, commits, errors;
};

static int run_phase(struct writer *w, int n, double secs, struct result *r)
{
	static struct worker wk[THREADS_MAX];
	struct writer_stats before, after;
	atomic_store(&stop_flag, false);
	writer_stats_get(w, &before);
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		wk[i] = (struct worker){.w = w, .index = i};
		if (pthread_create(&wk[i].tid, NULL, submitter, &wk[i]) != 0) {
			fprintf(stderr, "bench_writer: pthread_create failed\n");
			atomic_store(&stop_flag, true);
			for (int j = 0; j < i; j++)
				pthread_join(wk[j].tid, NULL);
			return -1;
		}
	}
	/* Sleep in small steps so a stuck writer cannot hold us much past the deadline. */
	while (now_s() - t0 < secs)
		usleep(20000);
	atomic_store(&stop_flag, true);
	for (int i = 0; i < n; i++)
		pthread_join(wk[i].tid, NULL);
	double t1 = now_s();
	writer_stats_get(w, &after);
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->secs = t1 - t0;
	for (int i = 0; i < n; i++) {
		r->writes += wk[i].ok;
		r->errors += wk[i].errors;
		if (wk[i].errors)
			fprintf(stderr, "bench_writer: thread %d: %llu errors, last %s\n", i,
				(unsigned long long)wk[i].errors, rsd_strerror(wk[i].last_error));
	}
	r->commits = after.commits - before.commits;
	uint64_t commands = after.batch_sum - before.batch_sum;
	r->writes_s = (double)r->writes / r->secs;
	r->commits_s = (double)r->commits / r->secs;
	r->mean_batch = r->commits ? (double)commands / (double)r->commits : 0.0;
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
	double secs = 5.0;
	int ns[32];
	int nn = 0;
	if (argc > 1) {
		secs = atof(argv[1]);
		if (secs <= 0 || secs > 120) {
			fprintf(stderr, "usage: %s [SECONDS (0..120]] [N ...]\n", argv[0]);
			return 2;
		}
	}
	for (int i = 2; i < argc && nn < 32; i++) {
		int v = atoi(argv[i]);
		if (v < 1 || v > THREADS_MAX) {
			fprintf(stderr, "bench_writer: N must be 1..%d\n", THREADS_MAX);
			return 2;
		}
		ns[nn++] = v;
	}
	if (nn == 0) {
		ns[0] = 1;
		ns[1] = 64;
		nn = 2;
	}

	/* 150 bytes of JSON, the size of a small resort.created event: a fixed prefix padded
	 * with 'x' inside the last string so the text stays valid JSON. */
	static const char prefix[] = "{\"id\":\"rs_bench0000000000000000\",\"name\":\"Bench Resort\","
				     "\"timezone\":\"Asia/Seoul\",\"currency\":\"KRW\",\"stars\":4,"
				     "\"pad\":\"";
	size_t plen = sizeof(prefix) - 1;
	memcpy(payload, prefix, plen);
	memset(payload + plen, 'x', PAYLOAD_BYTES - plen - 2);
	memcpy(payload + PAYLOAD_BYTES - 2, "\"}", 2);
	payload[PAYLOAD_BYTES] = '\0';
	payload_len = PAYLOAD_BYTES;

	const char *tmp = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/bench_writer.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_writer: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	struct store s;
	struct rsd_fail f = {0};
	int rc = 1;
	if (store_open(&s, dir, 1024ULL * 1024 * 1024, "", &f) != RSD_OK) {
		fprintf(stderr, "bench_writer: store_open: %s\n", f.detail);
		goto out_dir;
	}
	if (!store_flags_durable(&s)) {
		fprintf(stderr, "bench_writer: store is not durable; refusing to benchmark\n");
		goto out_store;
	}
	struct writer *w = NULL;
	if (writer_start(&w, &s, NULL, NULL) != RSD_OK) {
		fprintf(stderr, "bench_writer: writer_start failed\n");
		goto out_store;
	}

	printf("bench_writer: dir %s, event payload %zu bytes, %.1f s per run, fsync on\n", dir,
	       payload_len, secs);
	/* Warm-up: grow the data file and fault in the map before measuring. */
	struct result warm;
	run_phase(w, 8, secs < 1 ? secs : 1.0, &warm);

	struct result res[32];
	printf("%-11s %12s %12s %11s %9s %7s\n", "submitters", "writes/s", "commits/s",
	       "mean batch", "writes", "errors");
	for (int i = 0; i < nn; i++) {
		if (run_phase(w, ns[i], secs, &res[i]) != 0)
			goto out_writer;
		printf("%-11d %12.0f %12.0f %11.2f %9llu %7llu\n", res[i].n, res[i].writes_s,
		       res[i].commits_s, res[i].mean_batch, (unsigned long long)res[i].writes,
		       (unsigned long long)res[i].errors);
		fflush(stdout);
	}
	for (int i = 0; i < nn; i++)
		printf("RESULT n=%d writes_per_s=%.0f commits_per_s=%.0f mean_batch=%.2f errors=%llu\n",
		       res[i].n, res[i].writes_s, res[i].commits_s, res[i].mean_batch,
		       (unsigned long long)res[i].errors);
	if (nn >= 2 && res[0].writes_s > 0)
		printf("RATIO %d/%d = %.1f\n", res[nn - 1].n, res[0].n,
		       res[nn - 1].writes_s / res[0].writes_s);
	rc = 0;
out_writer:
	writer_free(w);
out_store:
	store_close(&s);
out_dir:
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
