/*
 * writer.c — group commit. Invariants:
 * - only the writer thread opens LMDB write transactions (after store_open's start-up one);
 * - next_seq is the last seq this node committed, advanced only when a batch commits;
 * - every command submitted with RSD_OK gets exactly one done call, after its fate is durable.
 */
#include "writer.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eventlog.h"
#include "limits_rsd.h"
#include "logger.h"
#include "json.h"
#include "banned.h"

struct writer {
	struct store *store;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct command *head, *tail; /* queue, under mu */
	size_t queued;		     /* under mu */
	bool stopping;		     /* under mu */
	uint64_t next_seq;	     /* writer thread only */
	writer_commit_fn on_commit;
	void *on_commit_arg;
	_Atomic uint64_t head_seq, commits, commands, full_errors, batch_sum;
	_Atomic uint64_t batch_hist[14];
};

int writer_submit(struct writer *w, struct command *cmd)
{
	cmd->next = NULL;
	cmd->result = RSD_OK;
	cmd->last_seq = 0;
	memset(&cmd->fail, 0, sizeof(cmd->fail));
	pthread_mutex_lock(&w->mu);
	int rc = RSD_OK;
	if (w->stopping)
		rc = RSD_ESHUTDOWN;
	else if (w->queued >= WRITER_QUEUE_MAX)
		rc = RSD_EBUSY;
	if (rc == RSD_OK) {
		if (w->tail)
			w->tail->next = cmd;
		else
			w->head = cmd;
		w->tail = cmd;
		w->queued++;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int writer_emit(struct writer_txn *wt, uint16_t type, const char *data, size_t len,
		uint64_t *seq_out)
{
	struct event ev = {.seq = wt->seq + 1,
			   .ts_ms = rsd_now_ms(),
			   .type = type,
			   .data = data,
			   .data_len = len};
	/* The same array size: a copy, not a formatted print (snprintf per event showed in
	 * the writer's profile). */
	_Static_assert(sizeof(ev.origin) == sizeof(wt->store->node_id), "node id sizes");
	memcpy(ev.origin, wt->store->node_id, sizeof(ev.origin));
	int rc = eventlog_append(wt->txn, wt->store, &ev);
	if (rc)
		return rc;
	wt->seq = ev.seq;
	if (seq_out)
		*seq_out = ev.seq;
	return RSD_OK;
}

/* Takes up to WRITER_BATCH_MAX commands off the queue; NULL when stopping and empty. */
static struct command *take_batch(struct writer *w, size_t *count)
{
	pthread_mutex_lock(&w->mu);
	while (w->head == NULL && !w->stopping)
		pthread_cond_wait(&w->cv, &w->mu);
	struct command *batch = w->head, *last = NULL;
	size_t n = 0;
	for (struct command *c = w->head; c && n < WRITER_BATCH_MAX; c = c->next) {
		last = c;
		n++;
	}
	if (last) {
		w->head = last->next;
		if (w->head == NULL)
			w->tail = NULL;
		last->next = NULL;
		w->queued -= n;
	}
	pthread_mutex_unlock(&w->mu);
	*count = n;
	return batch;
}

/* Runs one command in a nested transaction; returns its result. */
static int run_one(struct writer *w, MDB_txn *parent, struct command *cmd)
{
	MDB_txn *child;
	int rc = mdb_txn_begin(w->store->env, parent, 0, &child);
	if (rc)
		return rsd_failf(&cmd->fail, store_err(rc), "", "begin: %s", mdb_strerror(rc));
	struct writer_txn wt = {.txn = child, .store = w->store, .writer = w, .seq = w->next_seq};
	int err = cmd->apply(&wt, cmd);
	if (err == RSD_OK) {
		rc = mdb_txn_commit(child);
		if (rc)
			return rsd_failf(&cmd->fail, store_err(rc), "", "storage: %s",
					 mdb_strerror(rc));
		if (wt.seq != w->next_seq)
			cmd->last_seq = wt.seq;
		w->next_seq = wt.seq;
		return RSD_OK;
	}
	mdb_txn_abort(child);
	if (err == RSD_EFULL && cmd->fail.detail[0] == '\0')
		rsd_failf(&cmd->fail, RSD_EFULL, "", "the store is full");
	return err;
}

static void record_batch(struct writer *w, size_t n)
{
	int bucket = 0;
	while (bucket < 13 && ((size_t)1 << bucket) < n)
		bucket++;
	atomic_fetch_add_explicit(&w->batch_hist[bucket], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->batch_sum, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->commands, n, memory_order_relaxed);
}

static void run_batch(struct writer *w, struct command *batch, size_t n)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(w->store->env, NULL, 0, &txn);
	/* Another process (`resortd user add` while the server runs) may have appended to
	 * this node's log since our last batch; the write lock we now hold makes the head
	 * read here final. One cursor seek per batch. */
	if (rc == MDB_SUCCESS && eventlog_head(txn, w->store, w->store->node_id, &w->next_seq))
		logger_log(LOGGER_ERROR, "writer: cannot read the log head");
	uint64_t seq_before = w->next_seq;
	for (struct command *c = batch; c; c = c->next) {
		if (rc)
			c->result = rsd_failf(&c->fail, store_err(rc), "", "begin: %s",
					      mdb_strerror(rc));
		else
			c->result = run_one(w, txn, c);
	}
	if (rc == MDB_SUCCESS) {
		rc = mdb_txn_commit(txn); /* the one durable flush for the whole batch */
		if (rc) {
			logger_log(LOGGER_ERROR, "writer commit failed: %s", mdb_strerror(rc));
			w->next_seq = seq_before;
			for (struct command *c = batch; c; c = c->next)
				if (c->result == RSD_OK)
					c->result = rsd_failf(&c->fail, store_err(rc), "",
							      "commit: %s", mdb_strerror(rc));
		}
	}
	record_batch(w, n);
	atomic_store_explicit(&w->head_seq, w->next_seq, memory_order_release);
	if (w->on_commit && w->next_seq != seq_before)
		w->on_commit(w->on_commit_arg, w->next_seq);
	for (struct command *c = batch, *next; c; c = next) {
		next = c->next; /* done may free c */
		if (c->result == RSD_EFULL)
			atomic_fetch_add_explicit(&w->full_errors, 1, memory_order_relaxed);
		c->done(c);
	}
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (;;) {
		size_t n;
		struct command *batch = take_batch(w, &n);
		if (batch == NULL)
			break;
		run_batch(w, batch, n);
	}
	return NULL;
}

int writer_start(struct writer **out, struct store *s, writer_commit_fn on_commit, void *arg)
{
	struct writer *w = rsd_calloc(1, sizeof(*w));
	w->store = s;
	w->on_commit = on_commit;
	w->on_commit_arg = arg;
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		free(w);
		return store_err(rc);
	}
	int err = eventlog_head(txn, s, s->node_id, &w->next_seq);
	mdb_txn_abort(txn);
	if (err) {
		free(w);
		return err;
	}
	atomic_store(&w->head_seq, w->next_seq);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		rsd_fatal("cannot start the writer thread");
	pthread_setname_np(w->thread, "rsd-writer");
	*out = w;
	return RSD_OK;
}

/*
 * writer_run's rendezvous: a futex word the writer sets to 1 and wakes. With a condition
 * variable the writer signalled while holding its mutex, so the woken submitter blocked
 * again on that mutex and was woken a second time: two context switches per command, most
 * of a batch's cost with 64 submitters. A wake that arrives after the waiter has gone is
 * harmless: futex waiters re-check their word.
 */
static void run_done(struct command *cmd)
{
	_Atomic uint32_t *word = cmd->arg;
	atomic_store_explicit(word, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int writer_run(struct writer *w, struct command *cmd)
{
	RSD_ASSERT(cmd->done == NULL);
	_Atomic uint32_t finished = 0;
	void *saved_arg = cmd->arg;
	cmd->done = run_done;
	cmd->arg = (void *)&finished;
	int rc = writer_submit(w, cmd);
	if (rc == RSD_OK) {
		while (atomic_load_explicit(&finished, memory_order_acquire) == 0)
			syscall(SYS_futex, (uint32_t *)&finished, FUTEX_WAIT_PRIVATE, 0, NULL, NULL,
				0);
		rc = cmd->result;
	}
	cmd->done = NULL;
	cmd->arg = saved_arg;
	return rc;
}

int writer_emit_json(struct writer_txn *wt, uint16_t type, cJSON *data)
{
	char *text = json_print(data);
	int err = writer_emit(wt, type, text, strlen(text), NULL);
	cJSON_free(text);
	cJSON_Delete(data);
	return err;
}

void writer_stats_get(struct writer *w, struct writer_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->commits = atomic_load_explicit(&w->commits, memory_order_relaxed);
	out->commands = atomic_load_explicit(&w->commands, memory_order_relaxed);
	out->full_errors = atomic_load_explicit(&w->full_errors, memory_order_relaxed);
	out->head_seq = atomic_load_explicit(&w->head_seq, memory_order_acquire);
	out->batch_sum = atomic_load_explicit(&w->batch_sum, memory_order_relaxed);
	for (int i = 0; i < 14; i++)
		out->batch_hist[i] = atomic_load_explicit(&w->batch_hist[i], memory_order_relaxed);
	pthread_mutex_lock(&w->mu);
	out->queued = w->queued;
	pthread_mutex_unlock(&w->mu);
}

void writer_free(struct writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
