/*
 * Unit tests for session.c against a real LMDB in a temporary directory: logins, the
 * refresh-token family (rotation, the grace replay, reuse revoking the family), idle and
 * absolute lifetimes, logout and revocation (one session, or every session of a sub, and
 * never another sub's), local users (add, conflict, an update that disables and revokes)
 * and the audit events each command leaves in the log.
 *
 * Every command runs through the writer (writer_run), as in the server; the checks read
 * through a read-only transaction, as the workers do. Time is whatever now_ms says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "hold.h"
#include "json.h"
#include "session.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

#define T0	 1700000000000ull /* ms: the first login of every test */
#define IDLE_MS	 (30 * 60 * 1000ull)
#define MAX_MS	 (2 * 60 * 60 * 1000ull)
#define GRACE_MS (30 * 1000ull)

static const struct session_limits LIM = {
	.idle_ms = IDLE_MS, .max_ms = MAX_MS, .grace_ms = GRACE_MS};

struct fixture {
	struct session_limits lim; /* what logins and refreshes are given (LIM) */
	char dir[64];
	struct store store;
	struct writer *writer;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	tmpdir_make(fx->dir, sizeof(fx->dir));
	fx->lim = LIM;
	struct rsd_fail f;
	if (store_open(&fx->store, fx->dir, 64u << 20, "w1", &f) != RSD_OK ||
	    writer_start(&fx->writer, &fx->store, NULL, NULL) != RSD_OK)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	writer_free(fx->writer);
	store_close(&fx->store);
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

/* --- commands --- */

/* What a login hands back: the session id and its first refresh token. */
struct login {
	char sid[SESSION_ID_BYTES + 1];
	char token[SESSION_TOKEN_BYTES + 1];
	char cookie[SESSION_TOKEN_BYTES + 1];
};

/* Logs sub in at now_ms; user names the local user of a password login ("" for OIDC);
 * idp_token: the IdP's refresh token the session keeps, or NULL. */
static int login_with(struct fixture *fx, const char *sub, enum role role, const char *user,
		      const char *idp_token, uint64_t now_ms, struct login *out)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_LOGIN, now_ms);
	sc.lim = fx->lim;
	snprintf(sc.who.sub, sizeof(sc.who.sub), "%s", sub);
	session_new_id(sc.who.sid);
	sc.who.role = role;
	snprintf(sc.who.resort, sizeof(sc.who.resort), "%s", "rs_alpine");
	snprintf(sc.who.name, sizeof(sc.who.name), "Name of %s", sub);
	snprintf(sc.via, sizeof(sc.via), "%s", user[0] ? "password" : "oidc");
	snprintf(sc.user, sizeof(sc.user), "%s", user);
	snprintf(sc.ip, sizeof(sc.ip), "%s", "192.0.2.7");
	session_new_token(out->token);
	session_new_token(out->cookie);
	session_hash(out->token, sc.token_hash);
	session_hash(out->cookie, sc.cookie_hash);
	sc.access = strdup("access-login");
	sc.idp_token = idp_token ? strdup(idp_token) : NULL;
	snprintf(out->sid, sizeof(out->sid), "%s", sc.who.sid);
	int err = writer_run(fx->writer, &sc.cmd);
	session_cmd_release(&sc);
	return err;
}

static int login_as(struct fixture *fx, const char *sub, enum role role, const char *user,
		    uint64_t now_ms, struct login *out)
{
	return login_with(fx, sub, role, user, NULL, now_ms, out);
}

static struct login login(struct fixture *fx, const char *sub, uint64_t now_ms)
{
	struct login l;
	assert_int_equal(login_as(fx, sub, ROLE_GUEST, "", now_ms, &l), RSD_OK);
	return l;
}

/* The outcome of one refresh. */
struct refreshed {
	int result;
	bool reuse, replayed;
	char access[64]; /* the access token the client gets back */
	char sid[SESSION_ID_BYTES + 1];
	int revoked_count;
};

/* Presents token at now_ms, offering next as its successor (with access token access). */
static struct refreshed refresh(struct fixture *fx, const char *token, const char *next,
				const char *access, uint64_t now_ms)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_REFRESH, now_ms);
	sc.lim = fx->lim;
	session_hash(token, sc.token_hash);
	session_hash(next, sc.next_hash);
	sc.access = strdup(access);
	struct refreshed r = {0};
	r.result = writer_run(fx->writer, &sc.cmd);
	r.reuse = sc.reuse;
	r.replayed = sc.replayed;
	r.revoked_count = sc.revoked_count;
	snprintf(r.sid, sizeof(r.sid), "%s", sc.who.sid);
	snprintf(r.access, sizeof(r.access), "%s",
		 sc.replayed && sc.access_out ? sc.access_out : access);
	if (r.replayed)
		assert_non_null(sc.access_out);
	else
		assert_null(sc.access_out);
	session_cmd_release(&sc);
	return r;
}

/* Logs out (or, with by, revokes) sid or every session of sub. Returns the count. */
static int logout(struct fixture *fx, const char *sub, const char *sid, bool all, const char *by)
{
	struct session_cmd sc;
	session_cmd_init(&sc, by ? SESSION_REVOKE : SESSION_LOGOUT, T0);
	snprintf(sc.who.sub, sizeof(sc.who.sub), "%s", sub);
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", sid ? sid : "");
	snprintf(sc.by, sizeof(sc.by), "%s", by ? by : "");
	sc.all = all;
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	int n = sc.revoked_count;
	session_cmd_release(&sc);
	return n;
}

static int user_cmd(struct fixture *fx, enum session_op op, const char *name, enum role role,
		    bool disabled, uint64_t now_ms, struct rsd_fail *f)
{
	struct session_cmd sc;
	session_cmd_init(&sc, op, now_ms);
	snprintf(sc.rec.name, sizeof(sc.rec.name), "%s", name);
	sc.rec.role = role;
	snprintf(sc.rec.resort, sizeof(sc.rec.resort), "%s", "rs_alpine");
	snprintf(sc.rec.hash, sizeof(sc.rec.hash), "%s", "pbkdf2-sha256$i=1000$c2FsdHNhbHQ$x");
	sc.rec.disabled = disabled;
	/* An update writes every field here: disabled after the password. */
	sc.user_set = USER_SET_PASSWORD | USER_SET_DISABLED | USER_SET_ROLE | USER_SET_RESORT;
	int err = writer_run(fx->writer, &sc.cmd);
	if (f)
		*f = sc.cmd.fail;
	int n = sc.revoked_count;
	session_cmd_release(&sc);
	return err ? err : n;
}

/* --- reads --- */

static int check(struct fixture *fx, const char *sid, const char *cookie, uint64_t now_ms,
		 struct principal *who)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	struct rsd_fail f;
	memset(&f, 0, sizeof(f));
	int err = session_check(txn, &fx->store, sid, cookie, &LIM, now_ms, who, NULL, &f);
	if (err)
		assert_true(f.detail[0] != '\0');
	mdb_txn_abort(txn);
	return err;
}

static int of_refresh(struct fixture *fx, const char *token, uint64_t now_ms, struct principal *who)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	unsigned char hash[32];
	session_hash(token, hash);
	struct rsd_fail f;
	int err = session_of_refresh(txn, &fx->store, hash, &LIM, now_ms, who, &f);
	mdb_txn_abort(txn);
	return err;
}

/* The stored record of refresh token token as JSON (caller frees), or NULL. */
static cJSON *refresh_record(struct fixture *fx, const char *token)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	unsigned char hash[32];
	session_hash(token, hash);
	MDB_val k = {.mv_size = 32, .mv_data = hash}, v;
	cJSON *out = NULL;
	if (mdb_get(txn, fx->store.refresh, &k, &v) == 0)
		out = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	return out;
}

static double num(const cJSON *j, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* Events of the log, in order: their types and data. */
struct events {
	int n;
	uint16_t type[64];
	cJSON *data[64];
};

static void events_read(struct fixture *fx, struct events *ev)
{
	memset(ev, 0, sizeof(*ev));
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	struct eventlog_iter it;
	assert_int_equal(eventlog_iter_open(&it, txn, &fx->store, "w1", 0), RSD_OK);
	struct event e;
	while (eventlog_iter_next(&it, &e) == RSD_OK && ev->n < 64) {
		ev->type[ev->n] = e.type;
		ev->data[ev->n] = cJSON_ParseWithLength(e.data, e.data_len);
		assert_non_null(ev->data[ev->n]);
		ev->n++;
	}
	eventlog_iter_close(&it);
	mdb_txn_abort(txn);
}

static void events_free(struct events *ev)
{
	for (int i = 0; i < ev->n; i++)
		cJSON_Delete(ev->data[i]);
}

static int events_count(const struct events *ev, uint16_t type)
{
	int n = 0;
	for (int i = 0; i < ev->n; i++)
		n += ev->type[i] == type;
	return n;
}

/* The last event of type; fails the test when there is none. */
static const cJSON *event_last(const struct events *ev, uint16_t type)
{
	for (int i = ev->n - 1; i >= 0; i--)
		if (ev->type[i] == type)
			return ev->data[i];
	fail_msg("no event of type %u", type);
	return NULL;
}

static const char *str(const cJSON *j, const char *name)
{
	const char *s = json_get_string(j, name);
	assert_non_null(s);
	return s;
}

static char *token_new(void)
{
	char *t = malloc(SESSION_TOKEN_BYTES + 1);
	session_new_token(t);
	return t;
}

/* --- tests --- */

static void test_ids_and_hashes(void **state)
{
	(void)state;
	char a[SESSION_ID_BYTES + 1], b[SESSION_ID_BYTES + 1];
	char t[SESSION_TOKEN_BYTES + 1];
	session_new_id(a);
	session_new_id(b);
	session_new_token(t);
	assert_int_equal(strlen(a), SESSION_ID_BYTES);
	assert_int_equal(strlen(t), SESSION_TOKEN_BYTES);
	assert_string_not_equal(a, b);
	unsigned char h1[32], h2[32];
	session_hash("x", h1);
	session_hash("y", h2);
	assert_memory_not_equal(h1, h2, 32);
	for (enum role r = ROLE_GUEST; r <= ROLE_ADMIN; r++)
		assert_int_equal(session_role_parse(session_role_name(r)), r);
	assert_int_equal(session_role_parse("root"), ROLE_PUBLIC);
	assert_int_equal(session_role_parse("public"), ROLE_PUBLIC);
	assert_int_equal(session_role_parse(NULL), ROLE_PUBLIC);
	assert_string_equal(session_role_name(ROLE_PUBLIC), "public");
}

static void test_login_creates_live_session(void **state)
{
	struct fixture *fx = *state;
	struct login l;
	assert_int_equal(login_as(fx, "u_alice", ROLE_MANAGER, "", T0, &l), RSD_OK);
	struct principal who;
	memset(&who, 0xa5, sizeof(who));
	assert_int_equal(check(fx, l.sid, NULL, T0 + 1, &who), RSD_OK);
	assert_string_equal(who.sub, "u_alice");
	assert_string_equal(who.sid, l.sid);
	assert_int_equal(who.role, ROLE_MANAGER);
	assert_string_equal(who.resort, "rs_alpine");
	assert_string_equal(who.name, "Name of u_alice");
	/* who may be NULL; the cookie must be the session's when given. */
	assert_int_equal(check(fx, l.sid, NULL, T0 + 1, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, l.cookie, T0 + 1, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, l.token, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, l.sid, "", T0 + 1, NULL), RSD_EAUTH);
	/* Unknown and malformed session ids. */
	char other[SESSION_ID_BYTES + 1];
	session_new_id(other);
	assert_int_equal(check(fx, other, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, "", NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, "short", NULL, T0 + 1, NULL), RSD_EAUTH);
	char longer[SESSION_ID_BYTES + 2];
	snprintf(longer, sizeof(longer), "%sx", l.sid);
	assert_int_equal(check(fx, longer, NULL, T0 + 1, NULL), RSD_EAUTH);
	/* The first refresh token names the session. */
	memset(&who, 0, sizeof(who));
	assert_int_equal(of_refresh(fx, l.token, T0 + 1, &who), RSD_OK);
	assert_string_equal(who.sid, l.sid);
	assert_string_equal(who.sub, "u_alice");
	assert_int_equal(of_refresh(fx, l.cookie, T0 + 1, &who), RSD_EAUTH);
	/* Stored as a hash only: the token text is not a key. */
	cJSON *rec = refresh_record(fx, l.token);
	assert_non_null(rec);
	assert_string_equal(str(rec, "sid"), l.sid);
	assert_int_equal(num(rec, "gen"), 0);
	assert_int_equal(num(rec, "used_ms"), 0);
	cJSON_Delete(rec);
	/* The audit trail. */
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(ev.n, 1);
	const cJSON *d = event_last(&ev, EVENT_AUTH_LOGIN);
	assert_string_equal(str(d, "sub"), "u_alice");
	assert_string_equal(str(d, "sid"), l.sid);
	assert_string_equal(str(d, "via"), "oidc");
	assert_string_equal(str(d, "role"), "manager");
	assert_string_equal(str(d, "ip"), "192.0.2.7");
	events_free(&ev);
}

static void test_login_with_profile_event(void **state)
{
	struct fixture *fx = *state;
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_LOGIN, T0);
	sc.lim = fx->lim;
	snprintf(sc.who.sub, sizeof(sc.who.sub), "%s", "u_bob");
	session_new_id(sc.who.sid);
	sc.who.role = ROLE_GUEST;
	snprintf(sc.via, sizeof(sc.via), "%s", "oidc");
	sc.profile = cJSON_CreateObject();
	cJSON_AddStringToObject(sc.profile, "sub", "u_bob");
	cJSON_AddStringToObject(sc.profile, "email", "bob@example.test");
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	session_cmd_release(&sc);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.type[0], EVENT_AUTH_LOGIN);
	assert_int_equal(ev.type[1], EVENT_PROFILE_UPDATED);
	assert_string_equal(str(ev.data[1], "email"), "bob@example.test");
	events_free(&ev);
}

static void test_refresh_rotation(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	char *t1 = token_new(), *t2 = token_new();
	struct refreshed r = refresh(fx, l.token, t1, "access-1", T0 + 1000);
	assert_int_equal(r.result, RSD_OK);
	assert_false(r.reuse);
	assert_false(r.replayed);
	assert_string_equal(r.sid, l.sid);
	/* T0 is used (and remembers the answer it got), T1 is current. */
	cJSON *rec = refresh_record(fx, l.token);
	assert_int_equal(num(rec, "gen"), 0);
	assert_int_equal(num(rec, "used_ms"), T0 + 1000);
	assert_string_equal(str(rec, "access"), "access-1");
	cJSON_Delete(rec);
	rec = refresh_record(fx, t1);
	assert_non_null(rec);
	assert_string_equal(str(rec, "sid"), l.sid);
	assert_int_equal(num(rec, "gen"), 1);
	assert_int_equal(num(rec, "used_ms"), 0);
	cJSON_Delete(rec);
	struct principal who;
	assert_int_equal(of_refresh(fx, t1, T0 + 1000, &who), RSD_OK);
	assert_string_equal(who.sid, l.sid);
	assert_string_equal(who.sub, "u_alice");
	/* T1 rotates in turn, and the session stays live. */
	r = refresh(fx, t1, t2, "access-2", T0 + 2000);
	assert_int_equal(r.result, RSD_OK);
	assert_false(r.reuse || r.replayed);
	assert_int_equal(of_refresh(fx, t2, T0 + 2000, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, NULL, T0 + 2000, NULL), RSD_OK);
	/* A token that was never issued. */
	char *t9 = token_new();
	r = refresh(fx, t9, t1, "access-x", T0 + 3000);
	assert_int_equal(r.result, RSD_EAUTH);
	assert_int_equal(of_refresh(fx, t9, T0 + 3000, NULL), RSD_EAUTH);
	/* Rotation writes no event (only logins, revocations and reuse do). */
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(ev.n, 1);
	events_free(&ev);
	free(t1);
	free(t2);
	free(t9);
}

/* Entries of a database (sessions: two per session, its record and its index entry). */
static size_t entries(struct fixture *fx, MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat st;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	return st.ms_entries;
}

static int sweep(struct fixture *fx, uint64_t now_ms)
{
	struct sweep_cmd sc;
	sweep_cmd_init(&sc, now_ms);
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	assert_false(sc.more);
	return sc.sign_in_removed;
}

static bool has_refresh(struct fixture *fx, const char *token)
{
	cJSON *rec = refresh_record(fx, token);
	cJSON_Delete(rec);
	return rec != NULL;
}

/* Nothing sign-in keeps outlives its use: a session and all its refresh records go at its
 * absolute end, a used refresh token a day after its use when the session lasts longer. */
static void test_the_sweeper_removes_what_has_run_out(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0), other = login(fx, "u_bob", T0 + MAX_MS / 2);
	char *t1 = token_new(), *t2 = token_new();
	assert_int_equal(refresh(fx, l.token, t1, "access-1", T0 + 1000).result, RSD_OK);
	assert_int_equal(refresh(fx, t1, t2, "access-2", T0 + 2000).result, RSD_OK);
	assert_int_equal(entries(fx, fx->store.sessions), 4);
	assert_int_equal(entries(fx, fx->store.refresh), 4);
	assert_int_equal(sweep(fx, T0 + MAX_MS - 1), 0); /* nothing due yet */
	assert_int_equal(check(fx, l.sid, NULL, T0 + 3000, NULL), RSD_OK);

	sweep(fx, T0 + MAX_MS); /* alice's session ends: it and its 3 records go */
	assert_int_equal(check(fx, l.sid, NULL, T0 + 3000, NULL), RSD_EAUTH);
	assert_int_equal(of_refresh(fx, t2, T0 + 3000, NULL), RSD_EAUTH);
	assert_false(has_refresh(fx, l.token));
	assert_false(has_refresh(fx, t2));
	assert_int_equal(entries(fx, fx->store.sessions), 2); /* bob's */
	assert_int_equal(entries(fx, fx->store.refresh), 1);
	assert_int_equal(logout(fx, "u_alice", NULL, true, NULL), 0); /* no index entry left */
	assert_int_equal(check(fx, other.sid, NULL, T0 + MAX_MS / 2 + 1000, NULL), RSD_OK);
	sweep(fx, T0 + MAX_MS / 2 + MAX_MS);
	assert_int_equal(entries(fx, fx->store.sessions), 0);
	assert_int_equal(entries(fx, fx->store.refresh), 0);

	/* A session of a week: a used token goes a day after its use, the live one stays. */
	const uint64_t day = REFRESH_USED_KEEP_S * 1000ull, t3 = T0 + MAX_MS * 2;
	fx->lim.max_ms = 7 * day;
	fx->lim.idle_ms = 7 * day;
	struct login w = login(fx, "u_carol", t3);
	char *t4 = token_new();
	assert_int_equal(refresh(fx, w.token, t4, "access-3", t3 + 1000).result, RSD_OK);
	sweep(fx, t3 + 1000 + day - 1);
	assert_true(has_refresh(fx, w.token));
	sweep(fx, t3 + 1000 + day);
	assert_false(has_refresh(fx, w.token));
	assert_true(has_refresh(fx, t4));
	assert_int_equal(entries(fx, fx->store.sessions), 2);
	sweep(fx, t3 + 7 * day);
	assert_int_equal(entries(fx, fx->store.sessions), 0);
	assert_int_equal(entries(fx, fx->store.refresh), 0);
	free(t1);
	free(t2);
	free(t4);
}

static void test_grace_replay(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	char *t1 = token_new(), *t1b = token_new(), *t2 = token_new();
	assert_int_equal(refresh(fx, l.token, t1, "access-1", T0 + 1000).result, RSD_OK);
	/* The answer was lost; the client retries T0 at the end of the grace period. The
	 * server derives the same successor T1 from T0 (auth_refresh_successor). */
	struct refreshed r = refresh(fx, l.token, t1, "access-1b", T0 + 1000 + GRACE_MS);
	assert_int_equal(r.result, RSD_OK);
	assert_true(r.replayed);
	assert_false(r.reuse);
	assert_string_equal(r.access, "access-1"); /* the first answer's access token */
	/* No new generation: T1 is still the current, unused token. */
	cJSON *rec = refresh_record(fx, t1);
	assert_int_equal(num(rec, "gen"), 1);
	assert_int_equal(num(rec, "used_ms"), 0);
	cJSON_Delete(rec);
	rec = refresh_record(fx, l.token);
	assert_int_equal(num(rec, "used_ms"), T0 + 1000); /* the grace still counts from here */
	cJSON_Delete(rec);
	assert_int_equal(check(fx, l.sid, NULL, T0 + 2000, NULL), RSD_OK);
	/* A retry offering some other successor stores nothing either. */
	r = refresh(fx, l.token, t1b, "access-1c", T0 + 5000);
	assert_true(r.replayed);
	assert_string_equal(r.access, "access-1");
	assert_null(refresh_record(fx, t1b));
	assert_int_equal(of_refresh(fx, t1b, T0 + 5000, NULL), RSD_EAUTH);
	/* And T1 rotates normally afterwards. */
	r = refresh(fx, t1, t2, "access-2", T0 + 6000);
	assert_int_equal(r.result, RSD_OK);
	assert_false(r.replayed || r.reuse);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_AUTH_REFRESH_REUSE), 0);
	events_free(&ev);
	free(t1);
	free(t1b);
	free(t2);
}

static void test_reuse_after_grace_revokes_family(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	struct login other = login(fx, "u_alice", T0); /* the same user on another device */
	char *t1 = token_new(), *t1b = token_new(), *t2 = token_new();
	assert_int_equal(refresh(fx, l.token, t1, "access-1", T0 + 1000).result, RSD_OK);
	struct refreshed r = refresh(fx, l.token, t1b, "access-1b", T0 + 1000 + GRACE_MS + 1);
	assert_int_equal(r.result, RSD_OK); /* committed: the revocation must persist */
	assert_true(r.reuse);
	assert_false(r.replayed);
	assert_int_equal(r.revoked_count, 1);
	assert_int_equal(check(fx, l.sid, NULL, T0 + 2000 + GRACE_MS, NULL), RSD_EAUTH);
	/* The whole family: the current token T1 no longer works either. */
	assert_int_equal(of_refresh(fx, t1, T0 + 2000 + GRACE_MS, NULL), RSD_EAUTH);
	r = refresh(fx, t1, t2, "access-2", T0 + 2000 + GRACE_MS);
	assert_int_equal(r.result, RSD_EAUTH);
	assert_false(r.reuse);
	assert_null(refresh_record(fx, t2));
	/* The other session of the same user is another family. */
	assert_int_equal(check(fx, other.sid, NULL, T0 + 2000 + GRACE_MS, NULL), RSD_OK);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_AUTH_REFRESH_REUSE), 1);
	const cJSON *d = event_last(&ev, EVENT_AUTH_REFRESH_REUSE);
	assert_string_equal(str(d, "sub"), "u_alice");
	assert_string_equal(str(d, "sid"), l.sid);
	events_free(&ev);
	free(t1);
	free(t1b);
	free(t2);
}

static void test_reuse_of_older_generation_within_grace(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	char *t1 = token_new(), *t2 = token_new(), *t3 = token_new(), *tx = token_new();
	assert_int_equal(refresh(fx, l.token, t1, "access-1", T0 + 1000).result, RSD_OK);
	assert_int_equal(refresh(fx, t1, t2, "access-2", T0 + 2000).result, RSD_OK);
	/* T1 again, right after T2 was issued: a lost answer, replayed. */
	struct refreshed r = refresh(fx, t1, tx, "access-2b", T0 + 2500);
	assert_true(r.replayed);
	assert_string_equal(r.access, "access-2");
	/* T0 again, well within T0's grace period, but its successor T1 was itself rotated:
	 * nobody honest holds T0 any more. */
	r = refresh(fx, l.token, tx, "access-x", T0 + 3000);
	assert_int_equal(r.result, RSD_OK);
	assert_true(r.reuse);
	assert_false(r.replayed);
	assert_int_equal(check(fx, l.sid, NULL, T0 + 3000, NULL), RSD_EAUTH);
	assert_int_equal(refresh(fx, t2, t3, "access-3", T0 + 4000).result, RSD_EAUTH);
	/* Presenting a token of a revoked family again is refused, not counted again. */
	r = refresh(fx, l.token, tx, "access-y", T0 + 5000);
	assert_int_equal(r.result, RSD_EAUTH);
	assert_false(r.reuse);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_AUTH_REFRESH_REUSE), 1);
	events_free(&ev);
	free(t1);
	free(t2);
	free(t3);
	free(tx);
}

static void test_idle_expiry(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	assert_int_equal(check(fx, l.sid, NULL, T0 + IDLE_MS - 1, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, NULL, T0 + IDLE_MS, NULL), RSD_EAUTH);
	assert_int_equal(of_refresh(fx, l.token, T0 + IDLE_MS, NULL), RSD_EAUTH);
	/* A refresh restarts the idle clock. */
	char *t1 = token_new(), *t2 = token_new();
	uint64_t at = T0 + IDLE_MS / 2;
	assert_int_equal(refresh(fx, l.token, t1, "a1", at).result, RSD_OK);
	assert_int_equal(check(fx, l.sid, NULL, at + IDLE_MS - 1, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, NULL, at + IDLE_MS, NULL), RSD_EAUTH);
	/* An idle session cannot be refreshed back to life. */
	struct refreshed r = refresh(fx, t1, t2, "a2", at + IDLE_MS);
	assert_int_equal(r.result, RSD_EAUTH);
	assert_false(r.reuse);
	assert_null(refresh_record(fx, t2));
	free(t1);
	free(t2);
}

static void test_absolute_expiry(void **state)
{
	struct fixture *fx = *state;
	struct login l = login(fx, "u_alice", T0);
	char *cur = strdup(l.token);
	/* Refreshing every 20 minutes keeps it from going idle, but not past MAX_MS. */
	uint64_t at = T0;
	while (at + 20 * 60 * 1000 < T0 + MAX_MS) {
		at += 20 * 60 * 1000;
		char *next = token_new();
		assert_int_equal(refresh(fx, cur, next, "a", at).result, RSD_OK);
		free(cur);
		cur = next;
	}
	assert_int_equal(check(fx, l.sid, NULL, T0 + MAX_MS - 1, NULL), RSD_OK);
	assert_int_equal(check(fx, l.sid, NULL, T0 + MAX_MS, NULL), RSD_EAUTH);
	char *next = token_new();
	assert_int_equal(refresh(fx, cur, next, "a", T0 + MAX_MS).result, RSD_EAUTH);
	free(next);
	free(cur);
}

static void test_logout_one(void **state)
{
	struct fixture *fx = *state;
	struct login a = login(fx, "u_alice", T0), b = login(fx, "u_alice", T0);
	assert_int_equal(logout(fx, "u_alice", a.sid, false, NULL), 1);
	assert_int_equal(check(fx, a.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(of_refresh(fx, a.token, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, b.sid, NULL, T0 + 1, NULL), RSD_OK);
	/* Again: nothing left to revoke, still fine. An unknown sid too. */
	assert_int_equal(logout(fx, "u_alice", a.sid, false, NULL), 0);
	char unknown[SESSION_ID_BYTES + 1];
	session_new_id(unknown);
	assert_int_equal(logout(fx, "u_alice", unknown, false, NULL), 0);
	/* A refresh of the logged-out session is refused, and is not "reuse". */
	char *t1 = token_new();
	struct refreshed r = refresh(fx, a.token, t1, "x", T0 + 2);
	assert_int_equal(r.result, RSD_EAUTH);
	assert_false(r.reuse);
	free(t1);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_AUTH_LOGOUT), 3);
	const cJSON *d = ev.data[2]; /* the first logout */
	assert_int_equal(ev.type[2], EVENT_AUTH_LOGOUT);
	assert_string_equal(str(d, "sub"), "u_alice");
	assert_string_equal(str(d, "sid"), a.sid);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "all")));
	assert_int_equal(num(d, "sessions"), 1);
	events_free(&ev);
}

static void test_logout_all(void **state)
{
	struct fixture *fx = *state;
	struct login a1 = login(fx, "u_alice", T0), a2 = login(fx, "u_alice", T0);
	/* A sub that extends alice's, and one that is a prefix of it: neither is alice. */
	struct login longer = login(fx, "u_alice2", T0), shorter = login(fx, "u_alic", T0);
	struct login bob = login(fx, "u_bob", T0);
	assert_int_equal(logout(fx, "u_alice", NULL, true, NULL), 2);
	assert_int_equal(check(fx, a1.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, a2.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, longer.sid, NULL, T0 + 1, NULL), RSD_OK);
	assert_int_equal(check(fx, shorter.sid, NULL, T0 + 1, NULL), RSD_OK);
	assert_int_equal(check(fx, bob.sid, NULL, T0 + 1, NULL), RSD_OK);
	/* A new login after "log out everywhere" is a new, live session. */
	struct login a3 = login(fx, "u_alice", T0 + 10);
	assert_int_equal(check(fx, a3.sid, NULL, T0 + 11, NULL), RSD_OK);
	assert_int_equal(logout(fx, "u_alice", NULL, true, NULL), 1);
	assert_int_equal(logout(fx, "u_nobody", NULL, true, NULL), 0);
	struct events ev;
	events_read(fx, &ev);
	const cJSON *d = event_last(&ev, EVENT_AUTH_LOGOUT);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "all")));
	assert_null(cJSON_GetObjectItem(d, "sid"));
	events_free(&ev);
}

static void test_revoke_by_admin(void **state)
{
	struct fixture *fx = *state;
	struct login a = login(fx, "u_alice", T0), b = login(fx, "u_alice", T0);
	struct login c = login(fx, "u_carol", T0);
	assert_int_equal(logout(fx, "u_alice", a.sid, false, "staff:root"), 1);
	assert_int_equal(check(fx, a.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, b.sid, NULL, T0 + 1, NULL), RSD_OK);
	assert_int_equal(logout(fx, "u_alice", NULL, true, "staff:root"), 1);
	assert_int_equal(check(fx, b.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, c.sid, NULL, T0 + 1, NULL), RSD_OK);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_AUTH_REVOKED), 2);
	assert_int_equal(events_count(&ev, EVENT_AUTH_LOGOUT), 0);
	const cJSON *d = event_last(&ev, EVENT_AUTH_REVOKED);
	assert_string_equal(str(d, "sub"), "u_alice");
	assert_string_equal(str(d, "by"), "staff:root");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "all")));
	assert_int_equal(num(d, "sessions"), 1);
	events_free(&ev);
}

static void test_user_add_conflict(void **state)
{
	struct fixture *fx = *state;
	struct rsd_fail f;
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "alice", ROLE_STAFF, false, T0, &f), 0);
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	struct user_rec u;
	assert_int_equal(session_user_get(txn, &fx->store, "alice", &u), RSD_OK);
	assert_string_equal(u.name, "alice");
	assert_int_equal(u.role, ROLE_STAFF);
	assert_string_equal(u.resort, "rs_alpine");
	assert_false(u.disabled);
	assert_string_equal(u.hash, "pbkdf2-sha256$i=1000$c2FsdHNhbHQ$x");
	assert_int_equal(u.created_ms, T0);
	assert_int_equal(u.changed_ms, T0);
	assert_int_equal(session_user_get(txn, &fx->store, "bob", &u), RSD_ENOTFOUND);
	assert_int_equal(session_user_get(txn, &fx->store, "Bad Name", &u), RSD_ENOTFOUND);
	mdb_txn_abort(txn);
	/* The same name again. */
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "alice", ROLE_ADMIN, false, T0 + 5, &f),
			 RSD_ECONFLICT);
	assert_string_equal(f.field, "name");
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(session_user_get(txn, &fx->store, "alice", &u), RSD_OK);
	assert_int_equal(u.role, ROLE_STAFF); /* untouched */
	mdb_txn_abort(txn);
	/* An update of a user that does not exist. */
	assert_int_equal(user_cmd(fx, SESSION_USER_UPDATE, "nobody", ROLE_STAFF, false, T0, &f),
			 RSD_ENOTFOUND);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(ev.n, 1);
	const cJSON *d = event_last(&ev, EVENT_USER_CHANGED);
	assert_string_equal(str(d, "name"), "alice");
	assert_string_equal(str(d, "role"), "staff");
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "disabled")));
	/* The password hash never goes to the log. */
	assert_null(cJSON_GetObjectItem(d, "hash"));
	events_free(&ev);
}

/* An update changes only the fields it names, merged into the record as the writer's own
 * transaction reads it: a role change prepared before a password change (the CLI of two
 * admins at once) never brings the old hash back. */
static void test_user_update_merges_only_its_fields(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "dan", ROLE_STAFF, false, T0, NULL), 0);
	struct session_cmd pw, role;
	session_cmd_init(&pw, SESSION_USER_UPDATE, T0 + 10);
	snprintf(pw.rec.name, sizeof(pw.rec.name), "%s", "dan");
	snprintf(pw.rec.hash, sizeof(pw.rec.hash), "%s", "pbkdf2-sha256$i=1000$bmV3$new");
	pw.user_set = USER_SET_PASSWORD;
	session_cmd_init(&role, SESSION_USER_UPDATE, T0 + 20);
	snprintf(role.rec.name, sizeof(role.rec.name), "%s", "dan");
	snprintf(role.rec.hash, sizeof(role.rec.hash), "%s", "stale, never written");
	role.rec.disabled = true; /* not named: ignored */
	role.rec.role = ROLE_MANAGER;
	role.user_set = USER_SET_ROLE;
	assert_int_equal(writer_run(fx->writer, &pw.cmd), RSD_OK);
	assert_int_equal(writer_run(fx->writer, &role.cmd), RSD_OK);
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	struct user_rec u;
	assert_int_equal(session_user_get(txn, &fx->store, "dan", &u), RSD_OK);
	mdb_txn_abort(txn);
	assert_string_equal(u.hash, "pbkdf2-sha256$i=1000$bmV3$new");
	assert_int_equal(u.role, ROLE_MANAGER);
	assert_string_equal(u.resort, "rs_alpine"); /* kept */
	assert_false(u.disabled);
	assert_int_equal(u.created_ms, T0);
	/* The command hands back the record it wrote. */
	assert_string_equal(role.rec.hash, u.hash);
	assert_string_equal(role.rec.resort, "rs_alpine");
	session_cmd_release(&pw);
	session_cmd_release(&role);
}

static void test_user_update_disables_and_revokes(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "bob", ROLE_STAFF, false, T0, NULL), 0);
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "bobby", ROLE_STAFF, false, T0, NULL), 0);
	struct login s1, s2, other;
	assert_int_equal(login_as(fx, "staff:bob", ROLE_STAFF, "bob", T0, &s1), RSD_OK);
	assert_int_equal(login_as(fx, "staff:bob", ROLE_STAFF, "bob", T0, &s2), RSD_OK);
	assert_int_equal(login_as(fx, "staff:bobby", ROLE_STAFF, "bobby", T0, &other), RSD_OK);
	/* A password login of an unknown user fails. */
	struct login x;
	assert_int_equal(login_as(fx, "staff:eve", ROLE_STAFF, "eve", T0, &x), RSD_EAUTH);
	assert_int_equal(check(fx, x.sid, NULL, T0 + 1, NULL), RSD_EAUTH);
	/* Disable bob: both his sessions go, bobby's stays. */
	assert_int_equal(user_cmd(fx, SESSION_USER_UPDATE, "bob", ROLE_STAFF, true, T0 + 100, NULL),
			 2);
	assert_int_equal(check(fx, s1.sid, NULL, T0 + 101, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, s2.sid, NULL, T0 + 101, NULL), RSD_EAUTH);
	assert_int_equal(of_refresh(fx, s1.token, T0 + 101, NULL), RSD_EAUTH);
	assert_int_equal(check(fx, other.sid, NULL, T0 + 101, NULL), RSD_OK);
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	struct user_rec u;
	assert_int_equal(session_user_get(txn, &fx->store, "bob", &u), RSD_OK);
	assert_true(u.disabled);
	assert_int_equal(u.created_ms, T0);
	assert_int_equal(u.changed_ms, T0 + 100);
	mdb_txn_abort(txn);
	/* A disabled user cannot log in, even with a password checked before the update. */
	assert_int_equal(login_as(fx, "staff:bob", ROLE_STAFF, "bob", T0 + 200, &x), RSD_EAUTH);
	assert_int_equal(check(fx, x.sid, NULL, T0 + 201, NULL), RSD_EAUTH);
	/* Enabled again: a new login works; old sessions stay revoked. */
	assert_int_equal(
		user_cmd(fx, SESSION_USER_UPDATE, "bob", ROLE_MANAGER, false, T0 + 300, NULL), 0);
	assert_int_equal(login_as(fx, "staff:bob", ROLE_MANAGER, "bob", T0 + 400, &x), RSD_OK);
	assert_int_equal(check(fx, x.sid, NULL, T0 + 401, NULL), RSD_OK);
	assert_int_equal(check(fx, s1.sid, NULL, T0 + 401, NULL), RSD_EAUTH);
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_USER_CHANGED), 4);
	const cJSON *d = ev.data[5]; /* add bob, add bobby, 3 logins, then the update */
	assert_int_equal(ev.type[5], EVENT_USER_CHANGED);
	assert_string_equal(str(d, "name"), "bob");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "disabled")));
	assert_int_equal(num(d, "sessions_revoked"), 2);
	events_free(&ev);
}

static void test_login_failed_audit(void **state)
{
	struct fixture *fx = *state;
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_LOGIN_FAILED, T0);
	snprintf(sc.user, sizeof(sc.user), "%s", "mallory");
	snprintf(sc.ip, sizeof(sc.ip), "%s", "198.51.100.9");
	snprintf(sc.reason, sizeof(sc.reason), "%s", "bad password");
	assert_int_equal(writer_run(fx->writer, &sc.cmd), RSD_OK);
	session_cmd_release(&sc);
	struct events ev;
	events_read(fx, &ev);
	const cJSON *d = event_last(&ev, EVENT_AUTH_LOGIN_FAILED);
	assert_string_equal(str(d, "user"), "mallory");
	assert_string_equal(str(d, "ip"), "198.51.100.9");
	assert_string_equal(str(d, "reason"), "bad password");
	events_free(&ev);
}

/* One story, then the whole audit trail in order. */
static void test_audit_trail(void **state)
{
	struct fixture *fx = *state;
	assert_int_equal(user_cmd(fx, SESSION_USER_ADD, "carol", ROLE_STAFF, false, T0, NULL), 0);
	struct login a = login(fx, "u_alice", T0), c;
	assert_int_equal(login_as(fx, "staff:carol", ROLE_STAFF, "carol", T0, &c), RSD_OK);
	char *t1 = token_new(), *t2 = token_new();
	assert_int_equal(refresh(fx, a.token, t1, "a1", T0 + 1).result, RSD_OK);
	assert_true(refresh(fx, a.token, t2, "a2", T0 + 2 + GRACE_MS).reuse);
	struct login a2 = login(fx, "u_alice", T0 + 3 + GRACE_MS);
	logout(fx, "u_alice", a2.sid, false, NULL);
	logout(fx, "u_bob", NULL, true, "staff:root");
	assert_int_equal(user_cmd(fx, SESSION_USER_UPDATE, "carol", ROLE_STAFF, true, T0, NULL), 1);
	const uint16_t want[] = {EVENT_USER_CHANGED,	   EVENT_AUTH_LOGIN,  EVENT_AUTH_LOGIN,
				 EVENT_AUTH_REFRESH_REUSE, EVENT_AUTH_LOGIN,  EVENT_AUTH_LOGOUT,
				 EVENT_AUTH_REVOKED,	   EVENT_USER_CHANGED};
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(ev.n, sizeof(want) / sizeof(want[0]));
	for (int i = 0; i < ev.n; i++)
		assert_int_equal(ev.type[i], want[i]);
	events_free(&ev);
	free(t1);
	free(t2);
}

static void test_user_name_ok(void **state)
{
	(void)state;
	const char *good[] = {"a",    "alice", "a.b", "a_b",  "a-b",
			      "0day", "9",     "a-",  "a..b", "abcdefghijklmnopqrstuvwxyz012345"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!session_user_name_ok(good[i]))
			fail_msg("refused '%s'", good[i]);
	const char *bad[] = {"",     "Alice", "al ice",
			     ".a",   "_a",    "-a",
			     "a/b",  "a:b",   "a@b",
			     "é",    "a\tb",  "staff:x",
			     "a\nb", "a+b",   "abcdefghijklmnopqrstuvwxyz0123456"}; /* 33 bytes */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (session_user_name_ok(bad[i]))
			fail_msg("accepted '%s'", bad[i]);
}

/* --- the IdP's part of SSO sessions (idp_recheck.h) --- */

#define EVERY_MS (5 * 60 * 1000ull) /* within IDLE_MS: a check is no use of the session */

/* An SSO login of a staff member that kept the IdP's refresh token idp_token. */
static struct login login_idp(struct fixture *fx, const char *sub, const char *idp_token,
			      uint64_t now_ms)
{
	struct login l;
	assert_int_equal(login_with(fx, sub, ROLE_STAFF, "", idp_token, now_ms, &l), RSD_OK);
	return l;
}

/* The sessions due a check at now_ms: up to max (at most 8), the walk starting after after. */
static int due_from(struct fixture *fx, uint64_t now_ms, const char *after, int max,
		    struct session_idp_check out[8])
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->store.env, NULL, MDB_RDONLY, &txn), 0);
	int n = session_idp_due(txn, &fx->store, &fx->lim, now_ms, EVERY_MS, after, out, max);
	mdb_txn_abort(txn);
	return n;
}

static int due(struct fixture *fx, uint64_t now_ms, struct session_idp_check out[8])
{
	return due_from(fx, now_ms, NULL, 8, out);
}

/* The IdP answered for sid at now_ms: role etc. when it sent claims, next when it rotated. */
static int idp_checked(struct fixture *fx, const char *sid, bool claims, enum role role,
		       const char *resort, const char *next, uint64_t now_ms)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_IDP_CHECKED, now_ms);
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", sid);
	sc.who.role = role;
	snprintf(sc.who.resort, sizeof(sc.who.resort), "%s", resort);
	snprintf(sc.who.name, sizeof(sc.who.name), "%s", "Renamed");
	if (claims) {
		sc.profile = cJSON_CreateObject();
		cJSON_AddStringToObject(sc.profile, "role", session_role_name(role));
	}
	sc.idp_token = next ? strdup(next) : NULL;
	int err = writer_run(fx->writer, &sc.cmd);
	session_cmd_release(&sc);
	return err;
}

/* The recheck gave up on sid (it ended, or the IdP's grant cannot be followed). */
static int idp_forget(struct fixture *fx, const char *sid, uint64_t now_ms)
{
	struct session_cmd sc;
	session_cmd_init(&sc, SESSION_IDP_CHECKED, now_ms);
	snprintf(sc.who.sid, sizeof(sc.who.sid), "%s", sid);
	sc.idp_forget = true;
	int err = writer_run(fx->writer, &sc.cmd);
	session_cmd_release(&sc);
	return err;
}

static void test_idp_part_of_sso_sessions(void **state)
{
	struct fixture *fx = *state;
	struct login a = login_idp(fx, "u_alice", "idp-rt-1", T0);
	struct login p;
	assert_int_equal(login_as(fx, "staff:desk", ROLE_STAFF, "", T0, &p), RSD_OK);
	assert_int_equal(entries(fx, fx->store.sessions), 5); /* 2 's', 2 'u', alice's 'i' */
	struct session_idp_check out[8];
	assert_int_equal(due(fx, T0 + EVERY_MS - 1, out), 0);
	assert_int_equal(due(fx, T0 + EVERY_MS, out), 1); /* the SSO one only */
	assert_string_equal(out[0].who.sid, a.sid);
	assert_string_equal(out[0].who.sub, "u_alice");
	assert_int_equal(out[0].who.role, ROLE_STAFF);
	assert_string_equal(out[0].token, "idp-rt-1");

	/* New claims: the role, resort and name follow at once; the rotated token is kept. */
	uint64_t t1 = T0 + EVERY_MS + 5;
	assert_int_equal(idp_checked(fx, a.sid, true, ROLE_MANAGER, "rs_beach", "idp-rt-2", t1),
			 RSD_OK);
	struct principal who;
	assert_int_equal(check(fx, a.sid, NULL, t1 + 1, &who), RSD_OK);
	assert_int_equal(who.role, ROLE_MANAGER);
	assert_string_equal(who.resort, "rs_beach");
	assert_string_equal(who.name, "Renamed");
	assert_string_equal(who.sub, "u_alice");
	assert_int_equal(check(fx, a.sid, a.cookie, t1 + 1, NULL), RSD_OK); /* cookie kept */
	assert_int_equal(due(fx, t1 + EVERY_MS - 1, out), 0);
	assert_int_equal(due(fx, t1 + EVERY_MS, out), 1);
	assert_string_equal(out[0].token, "idp-rt-2");
	struct events ev;
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_PROFILE_UPDATED), 1);
	events_free(&ev);

	/* No id_token and no new refresh token: the session stays as it is, checked again. */
	uint64_t t2 = t1 + EVERY_MS;
	assert_int_equal(idp_checked(fx, a.sid, false, ROLE_GUEST, "", NULL, t2), RSD_OK);
	assert_int_equal(check(fx, a.sid, NULL, t2 + 1, &who), RSD_OK);
	assert_int_equal(who.role, ROLE_MANAGER);
	assert_int_equal(due(fx, t2 + EVERY_MS - 1, out), 0);
	assert_int_equal(due(fx, t2 + EVERY_MS, out), 1);
	assert_string_equal(out[0].token, "idp-rt-2");
	events_read(fx, &ev);
	assert_int_equal(events_count(&ev, EVENT_PROFILE_UPDATED), 1); /* nothing changed */
	events_free(&ev);

	/* Revoked: the IdP's token goes with it, and a late answer does not bring it back. */
	assert_int_equal(logout(fx, "u_alice", a.sid, false, NULL), 1);
	assert_int_equal(due(fx, t2 + EVERY_MS, out), 0);
	assert_int_equal(entries(fx, fx->store.sessions), 4);
	assert_int_equal(idp_checked(fx, a.sid, true, ROLE_ADMIN, "", "idp-rt-3", t2 + 2), RSD_OK);
	assert_int_equal(entries(fx, fx->store.sessions), 4);
	assert_int_equal(check(fx, a.sid, NULL, t2 + 3, NULL), RSD_EAUTH);

	/* A session that runs out is due as ended, and the sweeper removes its IdP part. */
	struct login b = login_idp(fx, "u_bob", "idp-rt-b", t2);
	assert_int_equal(entries(fx, fx->store.sessions), 7);
	assert_int_equal(due(fx, t2 + MAX_MS, out), 1); /* past its end */
	assert_true(out[0].ended);
	assert_string_equal(out[0].who.sid, b.sid);
	sweep(fx, t2 + MAX_MS); /* every session here has ended: nothing of them stays */
	assert_int_equal(check(fx, b.sid, NULL, t2 + 1, NULL), RSD_EAUTH);
	assert_int_equal(entries(fx, fx->store.sessions), 0);
}

static int cmp_sid(const void *a, const void *b)
{
	return strcmp(((const struct login *)a)->sid, ((const struct login *)b)->sid);
}

/* The walk goes round from where the last one stopped, so sessions the IdP cannot answer
 * for never keep the others waiting; one that ran out of time comes back as ended. */
static void test_idp_due_goes_round_and_names_ended_sessions(void **state)
{
	struct fixture *fx = *state;
	struct login l[3] = {login_idp(fx, "u_a", "rt-a", T0), login_idp(fx, "u_b", "rt-b", T0),
			     login_idp(fx, "u_c", "rt-c", T0)};
	qsort(l, 3, sizeof(l[0]), cmp_sid); /* the walk's order */
	struct session_idp_check out[8];
	uint64_t t = T0 + EVERY_MS;
	assert_int_equal(due_from(fx, t, NULL, 2, out), 2);
	assert_string_equal(out[0].who.sid, l[0].sid);
	assert_string_equal(out[1].who.sid, l[1].sid);
	assert_int_equal(due_from(fx, t, l[1].sid, 2, out), 2); /* the third, then round */
	assert_string_equal(out[0].who.sid, l[2].sid);
	assert_string_equal(out[1].who.sid, l[0].sid);
	assert_int_equal(due_from(fx, t, l[2].sid, 8, out), 3); /* each once */
	assert_string_equal(out[0].who.sid, l[0].sid);
	assert_string_equal(out[2].who.sid, l[2].sid);
	assert_false(out[0].ended);

	/* Idle past its limit: ended, and what the recheck then drops goes for good. */
	uint64_t idle = T0 + IDLE_MS;
	assert_int_equal(due(fx, idle, out), 3);
	assert_true(out[0].ended && out[1].ended && out[2].ended);
	assert_string_equal(out[0].token, ""); /* an ended session's token is not handed out */
	size_t before = entries(fx, fx->store.sessions);
	assert_int_equal(idp_forget(fx, l[0].sid, idle), RSD_OK);
	assert_int_equal(entries(fx, fx->store.sessions), before - 1);
	assert_int_equal(due(fx, idle, out), 2);
	assert_int_equal(idp_forget(fx, l[0].sid, idle), RSD_OK); /* again: nothing to drop */
	assert_int_equal(entries(fx, fx->store.sessions), before - 1);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_and_hashes),
		T(test_login_creates_live_session),
		T(test_login_with_profile_event),
		T(test_the_sweeper_removes_what_has_run_out),
		T(test_refresh_rotation),
		T(test_grace_replay),
		T(test_reuse_after_grace_revokes_family),
		T(test_reuse_of_older_generation_within_grace),
		T(test_idle_expiry),
		T(test_absolute_expiry),
		T(test_logout_one),
		T(test_logout_all),
		T(test_revoke_by_admin),
		T(test_user_add_conflict),
		T(test_user_update_merges_only_its_fields),
		T(test_user_update_disables_and_revokes),
		T(test_login_failed_audit),
		T(test_audit_trail),
		T(test_idp_part_of_sso_sessions),
		T(test_idp_due_goes_round_and_names_ended_sessions),
		cmocka_unit_test(test_user_name_ok),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
