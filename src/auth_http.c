/*
 * auth_http.c — handlers of the sign-in routes.
 *
 * POST /auth/token answers like an OAuth 2.0 token endpoint (RFC 6749 5.1/5.2): a JSON
 * pair on success; on failure a problem document that also carries OAuth's `error` and
 * `error_description`, so both kinds of client understand it. Passwords are checked on one
 * hashing thread; the request is parked meanwhile, so workers keep serving.
 */
#include "auth_http.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"
#include "json.h"
#include "logger.h"
#include "oidc.h"
#include "password.h"
#include "throttle.h"
#include "banned.h"

/* A password check handed to the hashing thread. */
struct pw_job {
	struct http_req *req;
	char user[USER_NAME_BYTES_MAX + 1];
	char password[PASSWORD_BYTES_MAX + 1];
	struct user_rec rec;
	bool known; /* the user exists, is enabled and is staff */
	bool ok;
	bool cookie; /* session=cookie was asked for */
	struct pw_job *next;
};

static struct {
	struct server *srv;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pw_job *head, *tail;
	int queued;
	bool stopping;
	struct throttle *per_user, *per_addr;
	char dummy_hash[PASSWORD_HASH_BYTES_MAX + 1]; /* checked for unknown users: same time */
} P;

static void *hasher_main(void *arg)
{
	(void)arg;
	/* Made here, not at start-up: at the default cost it takes a good fraction of a second,
	 * and no password can be checked before this thread runs anyway. */
	if (password_hash("not a password", P.srv->config->password_iterations, P.dummy_hash,
			  sizeof(P.dummy_hash)) != RSD_OK)
		rsd_assert_fail("the dummy password hash", __FILE__, __LINE__);
	pthread_mutex_lock(&P.mu);
	for (;;) {
		while (P.head == NULL && !P.stopping)
			pthread_cond_wait(&P.cv, &P.mu);
		if (P.head == NULL)
			break;
		struct pw_job *j = P.head;
		P.head = j->next;
		if (P.head == NULL)
			P.tail = NULL;
		P.queued--;
		pthread_mutex_unlock(&P.mu);
		bool ok = password_verify(j->password, j->known ? j->rec.hash : P.dummy_hash);
		j->ok = ok && j->known;
		OPENSSL_cleanse(j->password, sizeof(j->password));
		http_req_unpark(j->req);
		pthread_mutex_lock(&P.mu);
	}
	pthread_mutex_unlock(&P.mu);
	return NULL;
}

void auth_http_start(struct server *srv)
{
	P.srv = srv;
	pthread_mutex_init(&P.mu, NULL);
	pthread_cond_init(&P.cv, NULL);
	P.per_user = throttle_new(LOGIN_WINDOW_S, LOGIN_FAILS_PER_USER_MAX);
	P.per_addr = throttle_new(LOGIN_WINDOW_S, LOGIN_FAILS_PER_ADDR_MAX);
	if (pthread_create(&P.thread, NULL, hasher_main, NULL) != 0)
		rsd_fatal("cannot start the password thread");
	pthread_setname_np(P.thread, "rsd-password");
	P.started = true;
}

void auth_http_stop(void)
{
	if (!P.started)
		return;
	pthread_mutex_lock(&P.mu);
	P.stopping = true;
	pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
	pthread_join(P.thread, NULL);
	throttle_free(P.per_user);
	throttle_free(P.per_addr);
	pthread_mutex_destroy(&P.mu);
	pthread_cond_destroy(&P.cv);
	P.started = false;
}

/* --- replies --- */

/* An OAuth error (RFC 6749 5.2) as a problem document. */
static void oauth_error(struct http_req *req, int status, const char *error, const char *detail)
{
	struct outcome o = {.err = status == 400   ? RSD_EINVAL
				   : status == 401 ? RSD_EAUTH
				   : status == 429 ? RSD_ETHROTTLED
						   : RSD_EINTERNAL};
	rsd_failf(&o.fail, o.err, "", "%s", detail);
	cJSON *extra = cJSON_CreateObject();
	cJSON_AddStringToObject(extra, "error", error);
	cJSON_AddStringToObject(extra, "error_description", detail);
	char *text = json_print(extra);
	cJSON_Delete(extra);
	o.body = text;
	o.len = strlen(text);
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_outcome(req, &o);
	free(text);
}

static void set_cookie(struct http_req *req, const char *name, const char *value, bool http_only,
		       int max_age_s)
{
	char line[256];
	snprintf(line, sizeof(line), "%s=%s; Path=/; Max-Age=%d; Secure; SameSite=Strict%s", name,
		 value, max_age_s, http_only ? "; HttpOnly" : "");
	http_header_add(req, "Set-Cookie", line);
}

/* The browser's cookies for session sid: the HttpOnly session cookie and the CSRF token,
 * which the page reads and echoes in X-CSRF-Token. Writes the CSRF token into csrf. */
static void set_session_cookies(struct http_req *req, const char *sid, const char *cookie_secret,
				char csrf[AUTH_CSRF_BYTES + 1])
{
	struct auth *a = http_req_server(req)->auth;
	char value[AUTH_COOKIE_BYTES_MAX + 1];
	auth_csrf_token(a, sid, csrf);
	snprintf(value, sizeof(value), "%s.%s", sid, cookie_secret);
	int max_age = auth_config(a)->session_max_s;
	set_cookie(req, AUTH_COOKIE, value, true, max_age);
	set_cookie(req, AUTH_CSRF_COOKIE, csrf, false, max_age);
}

/* The token response; with cookie_secret, the browser's cookies too. */
static void reply_tokens(struct http_req *req, const char *access, int expires_in,
			 const char *refresh, const char *sid, const char *cookie_secret)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "access_token", access);
	cJSON_AddStringToObject(body, "token_type", "Bearer");
	cJSON_AddNumberToObject(body, "expires_in", expires_in);
	cJSON_AddStringToObject(body, "refresh_token", refresh);
	if (cookie_secret) {
		char csrf[AUTH_CSRF_BYTES + 1];
		set_session_cookies(req, sid, cookie_secret, csrf);
		cJSON_AddStringToObject(body, "csrf_token", csrf);
	}
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_json(req, 200, body);
	cJSON_Delete(body);
}

/* After a browser sign-in: the session cookies and a redirect to where it was going. */
static void redirect_signed_in(struct http_req *req, const char *return_to, const char *sid,
			       const char *cookie_secret)
{
	char csrf[AUTH_CSRF_BYTES + 1];
	set_session_cookies(req, sid, cookie_secret, csrf);
	http_header_add(req, "Location", return_to);
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_json(req, 303, NULL);
}

/* --- password grant --- */

struct login_ctx {
	struct session_cmd sc;
	char refresh[SESSION_TOKEN_BYTES + 1];
	char cookie[SESSION_TOKEN_BYTES + 1];
	bool want_cookie;
	bool oidc;	       /* a single sign-on callback: clear the login cookie */
	const char *return_to; /* in the request's arena; NULL: answer with the tokens */
	int expires_in;
};

static void login_done(struct http_req *req, struct command *cmd, int result)
{
	struct login_ctx *lc = (struct login_ctx *)cmd;
	if (lc->oidc)
		http_header_add(req, "Set-Cookie",
				OIDC_COOKIE "=; Path=/auth/callback; Max-Age=0; Secure; HttpOnly; "
					    "SameSite=Lax");
	if (result == RSD_EAUTH)
		oauth_error(req, 400, "invalid_grant", lc->sc.cmd.fail.detail);
	else if (result)
		http_reply_error(req, result, &lc->sc.cmd.fail);
	else if (lc->return_to)
		redirect_signed_in(req, lc->return_to, lc->sc.who.sid, lc->cookie);
	else
		reply_tokens(req, lc->sc.access, lc->expires_in, lc->refresh, lc->sc.who.sid,
			     lc->want_cookie ? lc->cookie : NULL);
	session_cmd_release(&lc->sc);
	OPENSSL_cleanse(lc->refresh, sizeof(lc->refresh));
	free(lc);
}

static void failed_done(struct http_req *req, struct command *cmd, int result)
{
	(void)result;
	struct session_cmd *sc = (struct session_cmd *)cmd;
	oauth_error(req, 400, "invalid_grant", "wrong user name or password");
	session_cmd_release(sc);
	free(sc);
}

/* A new session for lc->sc.who (sub, role, resort, name set): its id, tokens and cookie
 * secret, then the LOGIN command. Takes lc. */
static void start_session(struct http_req *req, struct login_ctx *lc, const char *via)
{
	struct auth *a = http_req_server(req)->auth;
	uint64_t now = lc->sc.now_ms;
	struct principal *p = &lc->sc.who;
	session_new_id(p->sid);
	snprintf(lc->sc.via, sizeof(lc->sc.via), "%s", via);
	snprintf(lc->sc.ip, sizeof(lc->sc.ip), "%s", http_req_client_addr(req));
	session_new_token(lc->refresh);
	session_hash(lc->refresh, lc->sc.token_hash);
	session_new_token(lc->cookie);
	session_hash(lc->cookie, lc->sc.cookie_hash);
	lc->expires_in = auth_access_ttl_s(a);
	if (auth_sign_access(a, p, now, &lc->sc.access) != RSD_OK) {
		session_cmd_release(&lc->sc);
		free(lc);
		http_reply_problem(req, 500, "cannot sign a token", NULL);
		return;
	}
	http_submit_durable(req, &lc->sc.cmd, login_done);
}

/* The throttle's keys of a sign-in attempt: the user name tried and the client address. */
struct attempt_keys {
	char user[8 + USER_NAME_BYTES_MAX];
	char addr[80];
};

static void attempt_keys(struct http_req *req, const char *user, struct attempt_keys *k)
{
	snprintf(k->user, sizeof(k->user), "user:%.32s", user);
	snprintf(k->addr, sizeof(k->addr), "addr:%s", http_req_client_addr(req));
}

static void password_checked(struct http_req *req, void *arg, bool woken)
{
	struct pw_job *j = arg;
	(void)woken; /* parked without a timeout: the hash always finishes */
	struct attempt_keys k;
	attempt_keys(req, j->user, &k);
	if (j->ok) {
		throttle_clear(P.per_user, k.user);
		struct login_ctx *lc = rsd_calloc(1, sizeof(*lc));
		session_cmd_init(&lc->sc, SESSION_LOGIN, rsd_now_ms());
		auth_limits(http_req_server(req)->auth, &lc->sc.lim);
		struct principal *p = &lc->sc.who;
		snprintf(p->sub, sizeof(p->sub), "staff:%s", j->rec.name);
		snprintf(p->resort, sizeof(p->resort), "%s", j->rec.resort);
		snprintf(p->name, sizeof(p->name), "%s", j->rec.name);
		p->role = j->rec.role;
		snprintf(lc->sc.user, sizeof(lc->sc.user), "%s", j->rec.name);
		lc->want_cookie = j->cookie;
		start_session(req, lc, "password");
		return;
	}
	uint64_t now = rsd_now_ms();
	throttle_fail(P.per_user, k.user, now);
	throttle_fail(P.per_addr, k.addr, now);
	struct session_cmd *sc = rsd_calloc(1, sizeof(*sc));
	session_cmd_init(sc, SESSION_LOGIN_FAILED, now);
	snprintf(sc->user, sizeof(sc->user), "%s", j->user);
	snprintf(sc->ip, sizeof(sc->ip), "%s", http_req_client_addr(req));
	snprintf(sc->reason, sizeof(sc->reason), "%s",
		 j->known ? "wrong password" : "unknown or disabled user");
	http_submit_durable(req, &sc->cmd, failed_done);
}

/* 429 with Retry-After when either counter is over its limit. */
static bool throttled(struct http_req *req, const char *user)
{
	struct attempt_keys k;
	attempt_keys(req, user, &k);
	uint64_t now = rsd_now_ms();
	int wait = throttle_wait_s(P.per_user, k.user, now);
	int wait_addr = throttle_wait_s(P.per_addr, k.addr, now);
	if (wait_addr > wait)
		wait = wait_addr;
	if (wait == 0)
		return false;
	char value[16];
	snprintf(value, sizeof(value), "%d", wait);
	http_header_add(req, "Retry-After", value);
	oauth_error(req, 429, "slow_down", "too many failed sign-ins; try again later");
	return true;
}

static void grant_password(struct http_req *req)
{
	const char *user = http_req_form(req, "username");
	const char *password = http_req_form(req, "password");
	const char *session = http_req_form(req, "session");
	if (user == NULL || password == NULL || !user[0]) {
		oauth_error(req, 400, "invalid_request", "username and password are required");
		return;
	}
	if (strlen(password) > PASSWORD_BYTES_MAX || strlen(user) > USER_NAME_BYTES_MAX) {
		oauth_error(req, 400, "invalid_request", "username or password is too long");
		return;
	}
	if (session && strcmp(session, "cookie") != 0) {
		oauth_error(req, 400, "invalid_request", "session must be 'cookie' when given");
		return;
	}
	if (throttled(req, user))
		return;
	/* Parked before the job is queued: the hashing thread may take it at once, and its
	 * wake-up must find the event. */
	struct pw_job *j = arena_alloc(http_req_arena(req), sizeof(*j));
	memset(j, 0, sizeof(*j));
	j->req = req;
	j->cookie = session != NULL;
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->password, sizeof(j->password), "%s", password);
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	/* Only staff sign in with a password; guests come through the IdP. */
	j->known = txn &&
		   session_user_get(txn, http_req_server(req)->store, user, &j->rec) == RSD_OK &&
		   !j->rec.disabled && j->rec.role >= ROLE_STAFF;
	store_reader_end(r);
	http_req_park(req, -1, password_checked, j);
	pthread_mutex_lock(&P.mu);
	bool full = P.queued >= PASSWORD_JOBS_MAX;
	if (!full) {
		if (P.tail)
			P.tail->next = j;
		else
			P.head = j;
		P.tail = j;
		P.queued++;
		pthread_cond_signal(&P.cv);
	}
	pthread_mutex_unlock(&P.mu);
	if (full) { /* the reply frees the parked wake-up */
		OPENSSL_cleanse(j->password, sizeof(j->password));
		http_header_add(req, "Retry-After", "1");
		http_reply_problem(req, 503, "too many sign-ins at once; try again", NULL);
	}
}

/* --- refresh grant --- */

struct refresh_ctx {
	struct session_cmd sc;
	char next[SESSION_TOKEN_BYTES + 1];
	int expires_in;
};

static void refresh_done(struct http_req *req, struct command *cmd, int result)
{
	struct refresh_ctx *rc = (struct refresh_ctx *)cmd;
	if (result == RSD_EAUTH)
		oauth_error(req, 400, "invalid_grant", rc->sc.cmd.fail.detail);
	else if (result)
		http_reply_error(req, result, &rc->sc.cmd.fail);
	else if (rc->sc.reuse)
		oauth_error(req, 400, "invalid_grant",
			    "this refresh token was already used: its session is revoked");
	else
		reply_tokens(req, rc->sc.replayed ? rc->sc.access_out : rc->sc.access,
			     rc->expires_in, rc->next, NULL, NULL);
	session_cmd_release(&rc->sc);
	OPENSSL_cleanse(rc->next, sizeof(rc->next));
	free(rc);
}

static void grant_refresh(struct http_req *req)
{
	struct auth *a = http_req_server(req)->auth;
	const char *token = http_req_form(req, "refresh_token");
	if (token == NULL || strlen(token) != SESSION_TOKEN_BYTES) {
		oauth_error(req, 400, token ? "invalid_grant" : "invalid_request",
			    token ? "the refresh token is not valid" : "refresh_token is required");
		return;
	}
	uint64_t now = rsd_now_ms();
	struct refresh_ctx *rc = rsd_calloc(1, sizeof(*rc));
	session_cmd_init(&rc->sc, SESSION_REFRESH, now);
	auth_limits(a, &rc->sc.lim);
	session_hash(token, rc->sc.token_hash);
	struct store_reader *r = http_req_state(req);
	MDB_txn *txn = store_reader_begin(r);
	int err = txn ? session_of_refresh(txn, http_req_server(req)->store, rc->sc.token_hash,
					   &rc->sc.lim, now, &rc->sc.who, &rc->sc.cmd.fail)
		      : RSD_EIO;
	store_reader_end(r);
	if (err == RSD_OK && auth_sign_access(a, &rc->sc.who, now, &rc->sc.access) != RSD_OK)
		err = rsd_failf(&rc->sc.cmd.fail, RSD_EINTERNAL, "", "cannot sign a token");
	if (err) {
		refresh_done(req, &rc->sc.cmd, err);
		return;
	}
	auth_refresh_successor(a, token, rc->next);
	session_hash(rc->next, rc->sc.next_hash);
	rc->expires_in = auth_access_ttl_s(a);
	http_submit_durable(req, &rc->sc.cmd, refresh_done);
}

void auth_http_token(struct http_req *req)
{
	const char *grant = http_req_form(req, "grant_type");
	const char *repeated = http_req_form_repeated(req);
	if (repeated) { /* RFC 6749 3.1: parameters must not be included more than once */
		char why[96];
		snprintf(why, sizeof(why), "%.48s is given more than once", repeated);
		oauth_error(req, 400, "invalid_request", why);
	} else if (grant && strcmp(grant, "password") == 0)
		grant_password(req);
	else if (grant && strcmp(grant, "refresh_token") == 0)
		grant_refresh(req);
	else
		oauth_error(req, 400, grant ? "unsupported_grant_type" : "invalid_request",
			    grant ? "grant_type must be password or refresh_token"
				  : "grant_type is required");
}

/* --- logout, session, revoke, keys --- */

static void logout_done(struct http_req *req, struct command *cmd, int result)
{
	struct session_cmd *sc = (struct session_cmd *)cmd;
	if (result) {
		http_reply_error(req, result, &sc->cmd.fail);
	} else {
		set_cookie(req, AUTH_COOKIE, "", true, 0);
		set_cookie(req, AUTH_CSRF_COOKIE, "", false, 0);
		http_reply_json(req, 204, NULL);
	}
	session_cmd_release(sc);
	free(sc);
}

void auth_http_logout(struct http_req *req)
{
	static const char *const allowed[] = {"all", NULL};
	struct rsd_fail f = {0};
	const char *all = http_req_query(req, "all");
	if (http_req_query_only(req, allowed, &f) != RSD_OK ||
	    (all && strcmp(all, "true") != 0 && strcmp(all, "false") != 0)) {
		if (f.detail[0] == '\0' || all)
			rsd_failf(&f, RSD_EINVAL, "all", "all must be true or false");
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	struct session_cmd *sc = rsd_calloc(1, sizeof(*sc));
	session_cmd_init(sc, SESSION_LOGOUT, rsd_now_ms());
	sc->who = *http_req_who(req);
	sc->all = all && strcmp(all, "true") == 0;
	snprintf(sc->ip, sizeof(sc->ip), "%s", http_req_client_addr(req));
	http_submit_durable(req, &sc->cmd, logout_done);
}

void auth_http_session(struct http_req *req)
{
	const struct principal *p = http_req_who(req);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "sub", p->sub);
	cJSON_AddStringToObject(body, "sid", p->sid);
	cJSON_AddStringToObject(body, "role", session_role_name(p->role));
	if (p->resort[0])
		cJSON_AddStringToObject(body, "resort", p->resort);
	if (p->name[0])
		cJSON_AddStringToObject(body, "name", p->name);
	http_header_add(req, "Cache-Control", "no-store");
	http_reply_json(req, 200, body);
	cJSON_Delete(body);
}

static void revoke_done(struct http_req *req, struct command *cmd, int result)
{
	struct session_cmd *sc = (struct session_cmd *)cmd;
	if (result) {
		http_reply_error(req, result, &sc->cmd.fail);
	} else {
		cJSON *body = cJSON_CreateObject();
		cJSON_AddNumberToObject(body, "revoked", sc->revoked_count);
		http_reply_json(req, 200, body);
		cJSON_Delete(body);
	}
	session_cmd_release(sc);
	free(sc);
}

void auth_http_revoke(struct http_req *req)
{
	static const struct json_field spec[] = {
		{"sid", JSON_STRING, 0, 1, SESSION_ID_BYTES},
		{"sub", JSON_STRING, 0, 1, PRINCIPAL_BYTES_MAX},
	};
	size_t len;
	const char *body = http_req_body(req, &len);
	struct rsd_fail f = {0};
	cJSON *doc = NULL;
	int err = json_parse_strict(body, len, &doc, &f);
	if (err == RSD_OK)
		err = json_check_object(doc, spec, sizeof(spec) / sizeof(spec[0]), &f);
	const char *sid = err ? NULL : json_get_string(doc, "sid");
	const char *sub = err ? NULL : json_get_string(doc, "sub");
	if (err == RSD_OK && (sid == NULL) == (sub == NULL))
		err = rsd_failf(&f, RSD_EINVAL, "sid", "name exactly one of sid and sub");
	if (err) {
		cJSON_Delete(doc);
		http_reply_error(req, err, &f);
		return;
	}
	struct session_cmd *sc = rsd_calloc(1, sizeof(*sc));
	session_cmd_init(sc, SESSION_REVOKE, rsd_now_ms());
	if (sid)
		snprintf(sc->who.sid, sizeof(sc->who.sid), "%s", sid);
	else
		snprintf(sc->who.sub, sizeof(sc->who.sub), "%s", sub);
	sc->all = sub != NULL;
	snprintf(sc->by, sizeof(sc->by), "%s", http_req_principal(req));
	snprintf(sc->ip, sizeof(sc->ip), "%s", http_req_client_addr(req));
	cJSON_Delete(doc);
	http_submit_durable(req, &sc->cmd, revoke_done);
}

void auth_http_jwks(struct http_req *req)
{
	cJSON *doc = auth_jwks(http_req_server(req)->auth);
	char *text = json_print(doc);
	cJSON_Delete(doc);
	/* Short: a rotated key must reach verifiers before its first token does. */
	http_header_add(req, "Cache-Control", "public, max-age=60");
	http_reply_text(req, 200, "application/json", text, strlen(text));
	cJSON_free(text);
}

/* --- OpenID Connect --- */

/* A login or callback waiting for the IdP threads. Lives in the request's arena. */
struct sso_job {
	struct http_req *req;
	char state[OIDC_STATE_BYTES + 1], nonce[OIDC_STATE_BYTES + 1];
	char verifier[OIDC_STATE_BYTES + 1], challenge[OIDC_STATE_BYTES + 1];
	const char *return_to;
	const char *code;
	char *url;	 /* login: where to send the browser (malloc'd) */
	cJSON *claims;	 /* callback: the verified id_token's claims */
	char *idp_token; /* callback: the IdP's refresh token or NULL (malloc'd) */
	int err;
	struct rsd_fail fail;
};

static void sso_unpark(void *arg)
{
	http_req_unpark(((struct sso_job *)arg)->req);
}

static void login_job(struct oidc *o, void *arg)
{
	struct sso_job *j = arg;
	j->err = oidc_auth_url(o, j->state, j->nonce, j->challenge, &j->url, &j->fail);
}

static void callback_job(struct oidc *o, void *arg)
{
	struct sso_job *j = arg;
	j->err = oidc_exchange(o, j->code, j->verifier, j->nonce, &j->claims, &j->idp_token,
			       &j->fail);
}

/* Hands j to the IdP threads with req parked until then runs. */
static void sso_start(struct http_req *req, struct sso_job *j, void (*fn)(struct oidc *, void *),
		      void (*then)(struct http_req *, void *, bool))
{
	j->req = req;
	http_req_park(req, -1, then, j);
	if (oidc_run(http_req_server(req)->oidc, fn, sso_unpark, j) != RSD_OK) {
		http_header_add(req, "Retry-After", "1");
		http_reply_problem(req, 503, "too many sign-ins at once; try again", NULL);
	}
}

static void login_ready(struct http_req *req, void *arg, bool woken)
{
	struct sso_job *j = arg;
	(void)woken; /* parked without a timeout: the IdP calls have their own */
	if (j->err) {
		free(j->url);
		http_reply_error(req, j->err, &j->fail);
		return;
	}
	struct oidc *o = http_req_server(req)->oidc;
	char *cookie = oidc_cookie_encode(o, j->state, j->nonce, j->verifier, j->return_to,
					  rsd_now_ms() + LOGIN_STATE_TTL_S * 1000ull);
	/* Lax, not Strict: the IdP's redirect back is a cross-site navigation. */
	char *line = arena_printf(http_req_arena(req),
				  OIDC_COOKIE "=%s; Path=/auth/callback; Max-Age=%d; Secure; "
					      "HttpOnly; SameSite=Lax",
				  cookie, LOGIN_STATE_TTL_S);
	free(cookie);
	http_header_add(req, "Set-Cookie", line);
	http_header_add(req, "Location", j->url);
	http_header_add(req, "Cache-Control", "no-store");
	free(j->url);
	http_reply_json(req, 302, NULL);
}

/* An SSO failure; a 401 carries its challenge, as every 401 must (RFC 9110 15.5.2). */
static void sso_fail(struct http_req *req, int err, const struct rsd_fail *f)
{
	if (err == RSD_EAUTH)
		http_header_add(req, "WWW-Authenticate", "Bearer realm=\"resortd\"");
	http_reply_error(req, err, f);
}

static bool sso_configured(struct http_req *req)
{
	if (http_req_server(req)->oidc)
		return true;
	http_reply_problem(req, 404,
			   "single sign-on is not configured here (no oidc_issuer): staff sign in"
			   " with POST /auth/token",
			   NULL);
	return false;
}

void auth_http_login(struct http_req *req)
{
	static const char *const allowed[] = {"return_to", NULL};
	struct rsd_fail f = {0};
	if (!sso_configured(req))
		return;
	if (http_req_query_only(req, allowed, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	const char *return_to = http_req_query(req, "return_to");
	if (return_to && !oidc_return_to_ok(http_req_server(req)->oidc, return_to)) {
		http_reply_problem(req, 400, "return_to must be a path or URL of this site",
				   "return_to");
		return;
	}
	struct sso_job *j = arena_alloc(http_req_arena(req), sizeof(*j));
	memset(j, 0, sizeof(*j));
	oidc_new_secret(j->state);
	oidc_new_secret(j->nonce);
	oidc_new_secret(j->verifier);
	oidc_challenge(j->verifier, j->challenge);
	j->return_to = return_to;
	sso_start(req, j, login_job, login_ready);
}

static void callback_ready(struct http_req *req, void *arg, bool woken)
{
	struct sso_job *j = arg;
	(void)woken; /* parked without a timeout, as login_ready */
	struct login_ctx *lc = rsd_calloc(1, sizeof(*lc));
	session_cmd_init(&lc->sc, SESSION_LOGIN, rsd_now_ms());
	auth_limits(http_req_server(req)->auth, &lc->sc.lim);
	if (j->err == RSD_OK)
		j->err = oidc_principal(http_req_server(req)->oidc, j->claims, &lc->sc.who,
					&lc->sc.profile, &j->fail);
	cJSON_Delete(j->claims);
	/* The session keeps it to ask the IdP again (idp_recheck.h), unless nobody will. */
	if (auth_config(http_req_server(req)->auth)->oidc_recheck_s > 0) {
		lc->sc.idp_token = j->idp_token;
	} else if (j->idp_token) {
		OPENSSL_cleanse(j->idp_token, strlen(j->idp_token));
		free(j->idp_token);
	}
	j->idp_token = NULL;
	if (j->err) {
		session_cmd_release(&lc->sc);
		free(lc);
		sso_fail(req, j->err, &j->fail);
		return;
	}
	lc->oidc = true;
	lc->want_cookie = true;
	lc->return_to = j->return_to && j->return_to[0] ? j->return_to : NULL;
	start_session(req, lc, "oidc");
}

void auth_http_callback(struct http_req *req)
{
	static const char *const allowed[] = {
		"code", "state", "iss", "error", "error_description", "session_state", NULL};
	struct rsd_fail f = {0};
	if (!sso_configured(req))
		return;
	if (http_req_query_only(req, allowed, &f) != RSD_OK) {
		http_reply_error(req, RSD_EINVAL, &f);
		return;
	}
	const char *error = http_req_query(req, "error");
	if (error) {
		rsd_failf(&f, RSD_EAUTH, "", "the identity provider refused the sign-in: %.64s",
			  error);
		sso_fail(req, RSD_EAUTH, &f);
		return;
	}
	const char *code = http_req_query(req, "code"), *state = http_req_query(req, "state");
	const char *iss = http_req_query(req, "iss");
	if (iss && strcmp(iss, auth_config(http_req_server(req)->auth)->oidc_issuer) != 0) {
		/* RFC 9207: an authorization response from another issuer is a mix-up. */
		http_reply_problem(req, 400, "the response names another issuer", "iss");
		return;
	}
	if (!code || !state || strlen(code) > 1024) {
		http_reply_problem(req, 400, "code and state are required",
				   code ? "state" : "code");
		return;
	}
	struct sso_job *j = arena_alloc(http_req_arena(req), sizeof(*j));
	memset(j, 0, sizeof(*j));
	struct oidc_login login;
	int err = oidc_cookie_decode(http_req_server(req)->oidc, http_req_cookie(req, OIDC_COOKIE),
				     rsd_now_ms(), &login, &f);
	if (err == RSD_OK && (strlen(state) != OIDC_STATE_BYTES ||
			      CRYPTO_memcmp(state, login.state, OIDC_STATE_BYTES) != 0))
		err = rsd_failf(&f, RSD_EAUTH, "state", "state is not this browser's login");
	if (err) {
		http_reply_problem(req, 400, f.detail, f.field);
		return;
	}
	memcpy(j->nonce, login.nonce, sizeof(j->nonce));
	memcpy(j->verifier, login.verifier, sizeof(j->verifier));
	j->return_to = arena_strndup(http_req_arena(req), login.return_to, strlen(login.return_to));
	j->code = code;
	sso_start(req, j, callback_job, callback_ready);
}
