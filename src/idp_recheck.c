/*
 * idp_recheck.c — the thread that asks the IdP again about SSO sessions (idp_recheck.h).
 * One thread, blocking calls: a round is at most IDP_RECHECK_BATCH calls, each bounded by
 * OIDC_CALL_TIMEOUT_MS, and the sessions it did not reach are due again at the next round.
 */
#include "idp_recheck.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "limits_rsd.h"
#include "logger.h"
#include "session.h"
#include "banned.h"

static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping; /* under mu */
	struct store *store;
	struct writer *writer;
	struct oidc *oidc;
	struct auth *auth;
	uint64_t every_ms;
	char last_sid[SESSION_ID_BYTES + 1]; /* where the last round stopped (round robin) */
	_Atomic bool running;		     /* the thread was started and not yet stopped */
	_Atomic uint64_t confirmed, revoked, dropped, failed, bad_id_tokens;
} recheck = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* writer_run, again a few times while the queue is full: a rotated IdP token that is not
 * stored is lost, and the IdP would read the spent one at the next round as theft. */
static int run(struct command *cmd)
{
	int err = RSD_EBUSY;
	for (int i = 0; i < 5 && err == RSD_EBUSY; i++) {
		if (i)
			usleep(100000);
		err = writer_run(recheck.writer, cmd);
	}
	return err;
}

/* Revokes who.sid: the IdP ended the sign-in it came from. True when committed. */
static bool end_session(const struct principal *who, const char *why)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_REVOKE, rsd_now_ms());
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", who->sid);
	snprintf(sc.by, sizeof(sc.by), "idp");
	int err = run(&sc.cmd);
	if (err)
		logger_log(LOGGER_ERROR, "idp recheck: cannot revoke session %s: %s", who->sid,
			   sc.cmd.fail.detail);
	else
		logger_log(LOGGER_WARN, "idp recheck: session %s of %s revoked: %s", who->sid,
			   who->sub, why);
	session_cmd_release(&sc);
	return err == RSD_OK;
}

/* Drops the IdP's part of who.sid: it is no longer asked about. True when committed. */
static bool forget_session(const struct principal *who, const char *why)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_IDP_CHECKED, rsd_now_ms());
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", who->sid);
	sc.idp_forget = true;
	int err = run(&sc.cmd);
	if (err)
		logger_log(LOGGER_ERROR, "idp recheck: session %s: %s", who->sid,
			   sc.cmd.fail.detail);
	else if (why)
		logger_log(LOGGER_INFO, "idp recheck: session %s no longer checked: %s", who->sid,
			   why);
	session_cmd_release(&sc);
	return err == RSD_OK;
}

/* Records what the IdP said of who.sid: claims (NULL: none came back) and its next token
 * (taken). True when committed; a failure loses a rotated token, and the next round's
 * invalid_grant then ends the session (logged here). */
static bool confirm_session(const struct principal *who, cJSON *claims, char *next)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_IDP_CHECKED, rsd_now_ms());
	sc.who = *who;
	sc.idp_token = next;
	struct rsd_fail f = {0};
	if (claims) {
		struct principal now;
		if (oidc_principal(recheck.oidc, claims, &now, &sc.profile, &f) != RSD_OK ||
		    strcmp(now.sub, who->sub) != 0) {
			/* OpenID Connect Core 12.2: a refreshed id_token names the same user. */
			session_cmd_release(&sc);
			return end_session(who, "the IdP's new id_token names another user");
		}
		sc.who.role = now.role;
		memcpy(sc.who.resort, now.resort, sizeof(sc.who.resort));
		memcpy(sc.who.name, now.name, sizeof(sc.who.name));
	}
	int err = run(&sc.cmd);
	if (err)
		logger_log(LOGGER_ERROR, "idp recheck: session %s: the IdP's answer is lost: %s",
			   who->sid, sc.cmd.fail.detail);
	session_cmd_release(&sc);
	return err == RSD_OK;
}

/* Asks the IdP about one session; true when its answer was recorded, false when it could
 * not be asked or the answer could not be stored (it stays due). */
static bool check_one(struct session_idp_check *c)
{
	if (c->ended)
		return forget_session(&c->who, NULL);
	cJSON *claims = NULL;
	char *next = NULL;
	struct rsd_fail f = {0};
	int err = oidc_refresh(recheck.oidc, c->token, &claims, &next, &f);
	OPENSSL_cleanse(c->token, sizeof(c->token));
	bool done = false;
	if (err == RSD_OK && f.detail[0]) { /* the grant holds; its id_token does not */
		logger_log(LOGGER_WARN,
			   "idp recheck: session %s: the IdP's id_token does not hold,"
			   " its role is left as it is: %s",
			   c->who.sid, f.detail);
		atomic_fetch_add(&recheck.bad_id_tokens, 1);
	}
	if (err == RSD_OK)
		done = confirm_session(&c->who, claims, next); /* takes next */
	else if ((err == RSD_EAUTH || err == RSD_EINVAL) && c->who.role >= ROLE_STAFF)
		/* Staff fail closed: the grant ended, or can no longer be followed. */
		done = end_session(&c->who, f.detail);
	else if (err == RSD_EAUTH || err == RSD_EINVAL)
		/* A guest's sign-in running out at the IdP (its own session's lifetime) is no
		 * reason to end the booking app's session here. */
		done = forget_session(&c->who, f.detail);
	else /* unreachable or passing: asked again next round */
		logger_log(LOGGER_INFO, "idp recheck: session %s not checked: %s", c->who.sid,
			   f.detail);
	cJSON_Delete(claims);
	_Atomic uint64_t *count = !done			      ? &recheck.failed
				  : err == RSD_OK	      ? &recheck.confirmed
				  : c->who.role >= ROLE_STAFF ? &recheck.revoked
							      : &recheck.dropped;
	atomic_fetch_add(count, 1);
	return done;
}

static bool stopping(void)
{
	pthread_mutex_lock(&recheck.mu);
	bool stop = recheck.stopping;
	pthread_mutex_unlock(&recheck.mu);
	return stop;
}

/* One round: the due sessions, read in one snapshot from where the last round stopped,
 * then asked about one by one. True when it took a whole batch and recorded answers: more
 * may be due at once. */
static bool round_once(void)
{
	struct session_limits lim;
	auth_limits(recheck.auth, &lim);
	struct session_idp_check *due = rsd_calloc(IDP_RECHECK_BATCH, sizeof(*due));
	MDB_txn *txn;
	int n = -1, done = 0;
	if (mdb_txn_begin(recheck.store->env, NULL, MDB_RDONLY, &txn) == MDB_SUCCESS) {
		n = session_idp_due(txn, recheck.store, &lim, rsd_now_ms(), recheck.every_ms,
				    recheck.last_sid, due, IDP_RECHECK_BATCH);
		mdb_txn_abort(txn);
	}
	if (n < 0)
		logger_log(LOGGER_ERROR, "idp recheck: cannot read the sessions");
	for (int i = 0; i < n && !stopping(); i++) {
		done += check_one(&due[i]);
		memcpy(recheck.last_sid, due[i].who.sid, sizeof(recheck.last_sid));
	}
	OPENSSL_cleanse(due, IDP_RECHECK_BATCH * sizeof(*due));
	free(due);
	return n == IDP_RECHECK_BATCH && done > 0;
}

/* Waits pause_ms or until stopping; returns whether stopping. */
static bool pause_or_stop(uint64_t pause_ms)
{
	struct timespec at;
	clock_gettime(CLOCK_MONOTONIC, &at);
	uint64_t ns = (uint64_t)at.tv_nsec + pause_ms % 1000 * 1000000;
	at.tv_sec += (time_t)(pause_ms / 1000 + ns / 1000000000);
	at.tv_nsec = (long)(ns % 1000000000);
	pthread_mutex_lock(&recheck.mu);
	while (!recheck.stopping && pthread_cond_timedwait(&recheck.cv, &recheck.mu, &at) == 0)
		;
	bool stop = recheck.stopping;
	pthread_mutex_unlock(&recheck.mu);
	return stop;
}

static void *recheck_main(void *arg)
{
	(void)arg;
	/* A round every period, but at least once a minute: a session is asked about at most a
	 * minute (or a period, when shorter) after it is due; at once again after a full batch. */
	uint64_t pause_ms = recheck.every_ms < 60000 ? recheck.every_ms : 60000;
	bool more = false;
	while (more ? !stopping() : !pause_or_stop(pause_ms))
		more = round_once();
	return NULL;
}

void idp_recheck_start(struct store *s, struct writer *w, struct oidc *o, struct auth *a,
		       const struct config *c)
{
	if (o == NULL || c->oidc_recheck_s <= 0)
		return;
	recheck.store = s;
	recheck.writer = w;
	recheck.oidc = o;
	recheck.auth = a;
	recheck.every_ms = (uint64_t)c->oidc_recheck_s * 1000;
	recheck.stopping = false;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&recheck.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&recheck.thread, NULL, recheck_main, NULL) != 0)
		rsd_fatal("cannot start the IdP recheck thread");
	pthread_setname_np(recheck.thread, "rsd-idp-recheck");
	atomic_store(&recheck.running, true);
}

void idp_recheck_stop(void)
{
	if (!atomic_load(&recheck.running))
		return;
	pthread_mutex_lock(&recheck.mu);
	recheck.stopping = true;
	pthread_cond_signal(&recheck.cv);
	pthread_mutex_unlock(&recheck.mu);
	pthread_join(recheck.thread, NULL);
	pthread_cond_destroy(&recheck.cv);
	atomic_store(&recheck.running, false);
}

void idp_recheck_stats_get(struct idp_recheck_stats *out)
{
	out->running = atomic_load(&recheck.running);
	out->confirmed = atomic_load(&recheck.confirmed);
	out->revoked = atomic_load(&recheck.revoked);
	out->dropped = atomic_load(&recheck.dropped);
	out->failed = atomic_load(&recheck.failed);
	out->bad_id_tokens = atomic_load(&recheck.bad_id_tokens);
}
