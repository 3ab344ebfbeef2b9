/*
 * saga.c — the payment saga's driver and the sweeper (see saga.h).
 *
 * Threads: everything in struct saga and the active list belongs to the saga thread.
 * Other threads reach it through the kick queue and the finished-steps list (both under
 * S.mu, followed by event_active on S.wake) and through the waiters list (under S.mu).
 */
#include "saga.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "booking.h"
#include "hold.h"
#include "json.h"
#include "logger.h"
#include "payment.h"
#include "banned.h"

#define RETRY_MS_FIRST 100
#define RETRY_MS_MAX   30000 /* capture, void and refund are retried forever, this far apart */

struct saga {
	char id[ENTITY_ID_BYTES_MAX + 1];
	int attempts;	     /* of the current authorize */
	uint64_t started_ns; /* first kick, for the duration metric */
	struct payment_call call;
	struct booking_step_cmd step;
	struct event *retry;
	bool busy; /* a call or a step is in flight */
	struct saga *next, *next_done;
};

struct kick {
	char id[ENTITY_ID_BYTES_MAX + 1];
	struct kick *next;
};

static struct {
	struct store *store;
	struct writer *writer;
	const struct config *cfg;
	struct store_reader reader;
	struct payment_provider *http;
	pthread_t thread;
	struct event_base *base;
	struct event *wake, *sweep_timer, *stop_ev;
	pthread_mutex_t mu;
	struct kick *kicks;	     /* under mu */
	struct saga *done;	     /* steps committed, under mu */
	struct saga_waiter *waiters; /* under mu */
	bool sweep_done;	     /* under mu */
	struct saga *active;	     /* saga thread */
	struct sweep_cmd sweep;	     /* saga thread, or the writer while sweeping */
	bool sweeping, stopping, started;
	bool closed;   /* under mu: the loop is gone; kicks are dropped */
	int in_flight; /* calls and commands not yet back; saga thread */
	struct {
		_Atomic uint64_t holds_expired, keys_removed, payment_calls, payment_unknown;
		_Atomic uint64_t confirmed, declined, gave_up, voided, refunded, captured, active;
		_Atomic uint64_t duration_hist[16], duration_ms_sum, duration_count;
	} st;
} S;

static void advance(struct saga *sg);
static void retry_later(struct saga *sg);

/* --- waiters --- */

void saga_wait(struct saga_waiter *w)
{
	pthread_mutex_lock(&S.mu);
	w->next = S.waiters;
	S.waiters = w;
	pthread_mutex_unlock(&S.mu);
}

bool saga_unwait(struct saga_waiter *w)
{
	bool found = false;
	pthread_mutex_lock(&S.mu);
	for (struct saga_waiter **p = &S.waiters; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			found = true;
			break;
		}
	pthread_mutex_unlock(&S.mu);
	return found;
}

static void notify(const char *id, const struct outcome *o)
{
	pthread_mutex_lock(&S.mu);
	for (struct saga_waiter **p = &S.waiters; *p;) {
		struct saga_waiter *w = *p;
		if (strcmp(w->id, id) != 0) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		w->out = *o;
		w->out.body = o->body ? rsd_strndup(o->body, o->len) : NULL;
		w->fn(w);
	}
	pthread_mutex_unlock(&S.mu);
}

/* --- kicks and completions --- */

void saga_kick(const char *id)
{
	struct kick *k = rsd_calloc(1, sizeof(*k));
	snprintf(k->id, sizeof(k->id), "%s", id);
	pthread_mutex_lock(&S.mu);
	if (S.closed) {
		/* Shutdown: the booking's stored state is where the next start picks it up. */
		pthread_mutex_unlock(&S.mu);
		free(k);
		return;
	}
	k->next = S.kicks;
	S.kicks = k;
	event_active(S.wake, EV_READ, 0);
	pthread_mutex_unlock(&S.mu);
}

static struct saga *find(const char *id)
{
	for (struct saga *sg = S.active; sg; sg = sg->next)
		if (strcmp(sg->id, id) == 0)
			return sg;
	return NULL;
}

static void finish(struct saga *sg)
{
	for (struct saga **p = &S.active; *p; p = &(*p)->next)
		if (*p == sg) {
			*p = sg->next;
			break;
		}
	if (sg->retry)
		event_free(sg->retry);
	booking_step_cmd_release(&sg->step);
	free(sg);
	atomic_fetch_sub(&S.st.active, 1);
}

static void record_duration(struct saga *sg)
{
	uint64_t ms = (rsd_mono_ns() - sg->started_ns) / 1000000u;
	int b = 0;
	while (b < 15 && ((uint64_t)1 << b) < ms)
		b++;
	atomic_fetch_add(&S.st.duration_hist[b], 1);
	atomic_fetch_add(&S.st.duration_ms_sum, ms);
	atomic_fetch_add(&S.st.duration_count, 1);
}

static void count_step(const struct booking_step_cmd *sc)
{
	switch (sc->step) {
	case STEP_AUTHORIZED: atomic_fetch_add(&S.st.confirmed, sc->answered); break;
	case STEP_DECLINED: atomic_fetch_add(&S.st.declined, sc->answered); break;
	case STEP_GAVE_UP: atomic_fetch_add(&S.st.gave_up, sc->answered); break;
	case STEP_CAPTURED: atomic_fetch_add(&S.st.captured, 1); break;
	case STEP_VOIDED: atomic_fetch_add(&S.st.voided, 1); break;
	case STEP_REFUNDED: atomic_fetch_add(&S.st.refunded, 1); break;
	}
}

/* A step came back from the writer: answer waiters, then look at the state again. */
static void step_finished(struct saga *sg)
{
	S.in_flight--;
	sg->busy = false;
	if (sg->step.cmd.result != RSD_OK)
		logger_log(LOGGER_ERROR, "booking %s: saga step failed: %s", sg->id,
			   sg->step.cmd.fail.detail[0] ? sg->step.cmd.fail.detail
						       : rsd_strerror(sg->step.cmd.result));
	else
		count_step(&sg->step);
	if (sg->step.cmd.result == RSD_OK && sg->step.answered) {
		record_duration(sg);
		notify(sg->id, &sg->step.out);
	}
	booking_step_cmd_release(&sg->step);
	if (sg->step.cmd.result != RSD_OK && !S.stopping) {
		/* Nothing changed: after a pause the same call (same key) and step again. */
		sg->attempts++;
		retry_later(sg);
		return;
	}
	advance(sg);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&S.mu);
	struct kick *kicks = S.kicks;
	struct saga *done = S.done;
	bool swept = S.sweep_done;
	S.kicks = NULL;
	S.done = NULL;
	S.sweep_done = false;
	pthread_mutex_unlock(&S.mu);
	while (done) {
		struct saga *next = done->next_done;
		step_finished(done);
		done = next;
	}
	while (kicks) {
		struct kick *next = kicks->next;
		struct saga *sg = find(kicks->id);
		/* A busy saga reads its state again once its call or step is back. */
		if (!sg && !S.stopping) {
			sg = rsd_calloc(1, sizeof(*sg));
			snprintf(sg->id, sizeof(sg->id), "%s", kicks->id);
			sg->started_ns = rsd_mono_ns();
			sg->next = S.active;
			S.active = sg;
			atomic_fetch_add(&S.st.active, 1);
			advance(sg);
		}
		free(kicks);
		kicks = next;
	}
	if (swept) {
		S.in_flight--;
		S.sweeping = false;
		atomic_fetch_add(&S.st.holds_expired, (uint64_t)S.sweep.holds_expired);
		atomic_fetch_add(&S.st.keys_removed, (uint64_t)S.sweep.keys_removed);
		if (S.sweep.cmd.result == RSD_OK && S.sweep.more && !S.stopping)
			event_active(S.sweep_timer, EV_TIMEOUT, 0);
	}
	if (S.stopping && S.in_flight == 0)
		event_base_loopexit(S.base, NULL);
}

static void step_done(struct command *cmd)
{
	struct saga *sg = cmd->arg;
	pthread_mutex_lock(&S.mu);
	sg->next_done = S.done;
	S.done = sg;
	pthread_mutex_unlock(&S.mu);
	event_active(S.wake, EV_READ, 0);
}

static void submit_step(struct saga *sg, enum booking_step step)
{
	booking_step_cmd_init(&sg->step, sg->id, step, sg->call.authorization_id, sg->call.detail);
	sg->step.cmd.done = step_done;
	sg->step.cmd.arg = sg;
	sg->busy = true;
	S.in_flight++;
	if (writer_submit(S.writer, &sg->step.cmd) != RSD_OK) {
		/* The writer's queue is full (or it is stopping): the stored state is unchanged,
		 * so the same call and step after a pause are safe. */
		S.in_flight--;
		sg->busy = false;
		sg->attempts++;
		retry_later(sg);
	}
}

/* --- payment calls --- */

static int retry_delay_ms(int attempts)
{
	int ms = RETRY_MS_FIRST;
	for (int i = 1; i < attempts && ms < RETRY_MS_MAX; i++)
		ms *= 2;
	return ms < RETRY_MS_MAX ? ms : RETRY_MS_MAX;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct saga *sg = arg;
	S.in_flight--;
	sg->busy = false;
	if (S.stopping) {
		finish(sg);
		if (S.in_flight == 0)
			event_base_loopexit(S.base, NULL);
		return;
	}
	advance(sg);
}

static void retry_later(struct saga *sg)
{
	if (S.stopping) {
		finish(sg); /* the stored state resumes at the next start */
		return;
	}
	if (!sg->retry)
		sg->retry = evtimer_new(S.base, retry_cb, sg);
	int ms = retry_delay_ms(sg->attempts);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	sg->busy = true;
	S.in_flight++;
	evtimer_add(sg->retry, &tv);
}

static void call_done(struct payment_call *call, enum payment_answer answer)
{
	struct saga *sg = call->arg;
	S.in_flight--;
	sg->busy = false;
	if (answer == PAYMENT_UNKNOWN)
		atomic_fetch_add(&S.st.payment_unknown, 1);
	switch (call->op) {
	case PAYMENT_AUTHORIZE:
		if (answer == PAYMENT_OK)
			submit_step(sg, STEP_AUTHORIZED);
		else if (answer == PAYMENT_DECLINED)
			submit_step(sg, STEP_DECLINED);
		else if (answer == PAYMENT_REFUSED || ++sg->attempts >= S.cfg->payment_attempts)
			submit_step(sg, STEP_GAVE_UP);
		else
			retry_later(sg);
		break;
	case PAYMENT_CAPTURE:
	case PAYMENT_REFUND:
		if (answer == PAYMENT_OK)
			submit_step(sg,
				    call->op == PAYMENT_CAPTURE ? STEP_CAPTURED : STEP_REFUNDED);
		else {
			logger_log(LOGGER_WARN, "booking %s: payment %s: %s; retrying", sg->id,
				   call->op == PAYMENT_CAPTURE ? "capture" : "refund",
				   call->detail);
			sg->attempts++;
			retry_later(sg);
		}
		break;
	case PAYMENT_VOID:
		if (answer == PAYMENT_UNKNOWN) {
			sg->attempts++;
			retry_later(sg);
			break;
		}
		if (answer == PAYMENT_REFUSED)
			logger_log(LOGGER_ERROR,
				   "booking %s: the payment service refused a void (%s)", sg->id,
				   call->detail);
		submit_step(sg, STEP_VOIDED);
		break;
	}
	if (S.stopping && S.in_flight == 0)
		event_base_loopexit(S.base, NULL);
}

static void start_call(struct saga *sg, enum payment_op op, const cJSON *doc, int64_t amount)
{
	struct payment_call *c = &sg->call;
	const cJSON *pay = cJSON_GetObjectItem(doc, "payment");
	const cJSON *total = cJSON_GetObjectItem(doc, "total");
	const char *auth = json_get_string(pay, "authorization_id");
	static const char *const names[] = {"authorize", "capture", "void", "refund"};
	memset(c, 0, sizeof(*c));
	c->op = op;
	snprintf(c->key, sizeof(c->key), "%s:%s", sg->id, names[op]);
	snprintf(c->authorize_key, sizeof(c->authorize_key), "%s:authorize", sg->id);
	snprintf(c->reference, sizeof(c->reference), "%s", sg->id);
	snprintf(c->currency, sizeof(c->currency), "%s", json_get_string(total, "currency"));
	snprintf(c->authorization_id, sizeof(c->authorization_id), "%s", auth ? auth : "");
	c->amount = amount;
	c->done = call_done;
	c->arg = sg;
	if (op == PAYMENT_AUTHORIZE) {
		MDB_txn *txn = store_reader_begin(&S.reader);
		if (txn)
			booking_token(txn, S.store, sg->id, c->token, sizeof(c->token));
		store_reader_end(&S.reader);
	}
	sg->busy = true;
	S.in_flight++;
	atomic_fetch_add(&S.st.payment_calls, 1);
	S.http->start(S.http, c);
}

/* Reads the booking and makes the one call its state asks for, or ends the saga. */
static void advance(struct saga *sg)
{
	if (S.stopping) {
		finish(sg);
		return;
	}
	MDB_txn *txn = store_reader_begin(&S.reader);
	cJSON *doc = NULL;
	int err = txn ? booking_load(txn, S.store, sg->id, &doc) : RSD_EIO;
	store_reader_end(&S.reader);
	const cJSON *pay = doc ? cJSON_GetObjectItem(doc, "payment") : NULL;
	const char *method = json_get_string(pay, "method"), *ps = json_get_string(pay, "state");
	const char *state = doc ? json_get_string(doc, "state") : NULL;
	if (err || !method || !ps || !state || strcmp(method, "http") != 0 || !S.http) {
		if (err || (method && strcmp(method, "http") == 0))
			logger_log(LOGGER_ERROR, "booking %s: saga cannot go on (%s)", sg->id,
				   err ? rsd_strerror(err) : "no payment_url configured");
		cJSON_Delete(doc);
		finish(sg);
		return;
	}
	int64_t total = (int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "total"), "amount")
				->valuedouble;
	bool captured = cJSON_IsTrue(cJSON_GetObjectItem(pay, "captured"));
	const cJSON *refund = cJSON_GetObjectItem(pay, "refund_amount");
	if (strcmp(ps, "pending") == 0 && strcmp(state, "payment_pending") == 0) {
		start_call(sg, PAYMENT_AUTHORIZE, doc, total);
	} else if (strcmp(ps, "authorized") == 0 ||
		   (strcmp(ps, "refund_pending") == 0 && !captured))
		start_call(sg, PAYMENT_CAPTURE, doc, total);
	else if (strcmp(ps, "refund_pending") == 0 && refund && refund->valuedouble > 0)
		start_call(sg, PAYMENT_REFUND, doc, (int64_t)refund->valuedouble);
	else if (strcmp(ps, "refund_pending") == 0)
		submit_step(sg, STEP_REFUNDED); /* the fee is everything: nothing to give back */
	else if (strcmp(ps, "void_pending") == 0)
		start_call(sg, PAYMENT_VOID, doc, 0);
	else
		finish(sg);
	cJSON_Delete(doc);
}

/* --- the sweeper --- */

static void sweep_done(struct command *cmd)
{
	(void)cmd;
	pthread_mutex_lock(&S.mu);
	S.sweep_done = true;
	pthread_mutex_unlock(&S.mu);
	event_active(S.wake, EV_READ, 0);
}

/* True when the expiry index holds something due: most sweeps find nothing, and then no
 * command (no write transaction) is needed. */
static bool sweep_due(uint64_t now_ms)
{
	MDB_txn *txn = store_reader_begin(&S.reader);
	MDB_cursor *c = NULL;
	MDB_val k, v;
	bool due = txn && mdb_cursor_open(txn, S.store->expiry, &c) == 0 &&
		   mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size >= 8 &&
		   rsd_get_be64(k.mv_data) <= now_ms;
	if (c)
		mdb_cursor_close(c);
	store_reader_end(&S.reader);
	return due;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	uint64_t now_ms = rsd_now_ms();
	if (S.sweeping || S.stopping || !sweep_due(now_ms))
		return;
	sweep_cmd_init(&S.sweep, now_ms);
	S.sweep.cmd.done = sweep_done;
	S.sweeping = true;
	S.in_flight++;
	if (writer_submit(S.writer, &S.sweep.cmd) != RSD_OK) {
		S.sweeping = false;
		S.in_flight--;
	}
}

/* --- the thread --- */

static void *saga_main(void *arg)
{
	(void)arg;
	event_base_dispatch(S.base);
	return NULL;
}

static void kick_pending(const char *id, void *arg)
{
	(void)arg;
	saga_kick(id);
}

bool saga_http_enabled(void)
{
	return S.http != NULL;
}

static void init_mutex(void)
{
	pthread_mutex_init(&S.mu, NULL);
}

int saga_start(struct store *s, struct writer *w, const struct config *cfg, struct rsd_fail *f)
{
	/* S.mu outlives every start: late kicks from workers lock it after saga_stop. */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_mutex);
	pthread_mutex_lock(&S.mu);
	S.closed = false;
	S.kicks = NULL;
	S.done = NULL;
	S.waiters = NULL;
	S.sweep_done = false;
	pthread_mutex_unlock(&S.mu);
	S.active = NULL;
	S.http = NULL;
	S.stop_ev = NULL;
	S.sweeping = S.stopping = false;
	S.in_flight = 0;
	memset(&S.reader, 0, sizeof(S.reader));
	S.store = s;
	S.writer = w;
	S.cfg = cfg;
	S.reader.store = s;
	S.base = event_base_new();
	if (!S.base)
		return rsd_failf(f, RSD_EIO, "", "cannot make the saga's event loop");
	if (cfg->payment_url[0] &&
	    !(S.http = payment_http_new(S.base, cfg->payment_url, cfg->payment_timeout_ms))) {
		event_base_free(S.base);
		return rsd_failf(f, RSD_EINVAL, "payment_url", "payment_url '%.64s' cannot be used",
				 cfg->payment_url);
	}
	S.wake = event_new(S.base, -1, EV_PERSIST, wake_cb, NULL);
	S.sweep_timer = event_new(S.base, -1, EV_PERSIST, sweep_cb, NULL);
	struct timeval tv = {.tv_sec = 0, .tv_usec = SWEEP_INTERVAL_MS * 1000};
	event_add(S.sweep_timer, &tv);
	/* Kicks queue until the loop runs; the kicks of every unfinished saga go first. */
	MDB_txn *txn = store_reader_begin(&S.reader);
	int err = txn ? booking_pending_sagas(txn, s, kick_pending, NULL) : RSD_EIO;
	store_reader_end(&S.reader);
	if (err)
		logger_log(LOGGER_ERROR, "listing unfinished sagas failed: %s", rsd_strerror(err));
	if (pthread_create(&S.thread, NULL, saga_main, NULL) != 0)
		return rsd_failf(f, RSD_EIO, "", "cannot start the saga thread");
	pthread_setname_np(S.thread, "rsd-saga");
	S.started = true;
	return RSD_OK;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	S.stopping = true;
	event_del(S.sweep_timer);
	/* Sagas waiting for a retry give up their timers now; calls and steps in flight
	 * come back by themselves (each call is bounded by payment_timeout_ms). */
	for (struct saga *sg = S.active, *next; sg; sg = next) {
		next = sg->next;
		if (sg->retry && evtimer_pending(sg->retry, NULL)) {
			evtimer_del(sg->retry);
			S.in_flight--;
			finish(sg);
		} else if (!sg->busy) {
			finish(sg);
		}
	}
	if (S.in_flight == 0)
		event_base_loopexit(S.base, NULL);
}

void saga_quiesce(void)
{
	if (!S.started || S.stop_ev)
		return;
	S.stop_ev = event_new(S.base, -1, 0, stop_cb, NULL);
	event_active(S.stop_ev, EV_TIMEOUT, 0);
}

void saga_stop(void)
{
	if (!S.started)
		return;
	saga_quiesce();
	pthread_join(S.thread, NULL);
	pthread_mutex_lock(&S.mu);
	S.closed = true; /* workers may still finish a booking command and kick */
	pthread_mutex_unlock(&S.mu);
	event_free(S.stop_ev);
	S.stop_ev = NULL;
	while (S.active)
		finish(S.active);
	while (S.kicks) {
		struct kick *next = S.kicks->next;
		free(S.kicks);
		S.kicks = next;
	}
	store_reader_close(&S.reader);
	if (S.http)
		S.http->free(S.http);
	event_free(S.wake);
	event_free(S.sweep_timer);
	event_base_free(S.base);
	S.base = NULL;
	S.started = false;
}

void saga_stats_get(struct saga_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->holds_expired = atomic_load(&S.st.holds_expired);
	out->keys_removed = atomic_load(&S.st.keys_removed);
	out->payment_calls = atomic_load(&S.st.payment_calls);
	out->payment_unknown = atomic_load(&S.st.payment_unknown);
	out->confirmed = atomic_load(&S.st.confirmed);
	out->declined = atomic_load(&S.st.declined);
	out->gave_up = atomic_load(&S.st.gave_up);
	out->voided = atomic_load(&S.st.voided);
	out->refunded = atomic_load(&S.st.refunded);
	out->captured = atomic_load(&S.st.captured);
	out->active = atomic_load(&S.st.active);
	for (int i = 0; i < 16; i++)
		out->duration_hist[i] = atomic_load(&S.st.duration_hist[i]);
	out->duration_ms_sum = atomic_load(&S.st.duration_ms_sum);
	out->duration_count = atomic_load(&S.st.duration_count);
}
