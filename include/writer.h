/*
 * writer.h — the single LMDB writer: a command queue drained in batches, one write
 * transaction and one durable commit per batch (group commit).
 *
 * Each command runs in a nested transaction of its own, so a command that fails leaves
 * no trace while the rest of its batch commits. A command's `done` runs on the writer
 * thread after the batch's commit is durable (or failed); it must only hand the result
 * to its submitter (event_active, a condition variable), never block.
 */
#ifndef RSD_WRITER_H
#define RSD_WRITER_H

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <stdint.h>

#include "rsd.h"
#include "store.h"

struct writer;
struct command;

/* What a command's apply sees: the nested transaction and the events it appended. */
struct writer_txn {
	MDB_txn *txn;
	struct store *store;
	struct writer *writer;
	uint64_t seq; /* last seq handed out in this command; the writer's next_seq until emit */
};

struct command {
	/* Runs inside the write transaction; appends events with writer_emit. Returns RSD_OK
	 * or an error with cmd->fail filled; on error everything it did is undone. */
	int (*apply)(struct writer_txn *wt, struct command *cmd);
	/* Runs on the writer thread once the outcome is final. May free cmd. */
	void (*done)(struct command *cmd);
	void *arg;
	/* Outputs, valid in done: */
	int result;
	struct rsd_fail fail;
	uint64_t last_seq; /* seq of the last event appended, 0 if none */
	/* The writer's queue link. */
	struct command *next;
};

struct writer_stats {
	uint64_t commits;
	uint64_t commands;
	uint64_t full_errors; /* commands refused because the map was full */
	uint64_t head_seq;    /* last committed seq of this node */
	uint64_t queued;
	/* batch sizes: bucket i counts batches of size <= 2^i (last bucket: larger) */
	uint64_t batch_hist[14];
	uint64_t batch_sum;
};

/* Called on the writer thread after each durable commit, with the new head seq. */
typedef void (*writer_commit_fn)(void *arg, uint64_t head_seq);

/*
 * Starts the writer thread over s. on_commit (may be NULL) is told of every new head.
 * Errors: RSD_EIO when the log head cannot be read.
 */
int writer_start(struct writer **out, struct store *s, writer_commit_fn on_commit, void *arg);

/*
 * Queues cmd. Returns RSD_OK (done will be called exactly once), RSD_EBUSY when the queue
 * is full, RSD_ESHUTDOWN when the writer is stopping (done is not called).
 */
int writer_submit(struct writer *w, struct command *cmd);

/* Submits cmd and waits for its outcome; for the CLI, tests and benchmarks. cmd->done
 * must be NULL. Returns cmd->result or the submit error. */
int writer_run(struct writer *w, struct command *cmd);

/*
 * Appends one event of type with data (JSON text) as this node's next seq, inside apply.
 * Sets *seq_out (may be NULL). Errors: RSD_EFULL, RSD_EIO.
 */
int writer_emit(struct writer_txn *wt, uint16_t type, const char *data, size_t len,
		uint64_t *seq_out);

/* writer_emit of data serialized as JSON; frees data (whatever the outcome). */
int writer_emit_json(struct writer_txn *wt, uint16_t type, cJSON *data);

/* Copies the counters. Any thread. */
void writer_stats_get(struct writer *w, struct writer_stats *out);

/* Runs every queued command, then stops and joins the thread, and frees w. NULL is fine. */
void writer_free(struct writer *w);

#endif
