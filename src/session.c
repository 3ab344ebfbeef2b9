/*
 * session.c — sessions, refresh-token families and local staff users in LMDB.
 *
 * The session record starts with a fixed binary header, so the check that every
 * authenticated request makes reads a few integers and never parses JSON. Invariants: a
 * revoked session never becomes live again; a refresh token is stored only as its
 * SHA-256; a family's current token is the one whose gen equals the session's gen, and
 * only the writer thread moves it.
 */
#include "session.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "jose.h"
#include "json.h"
#include "logger.h"
#include "banned.h"

#define SESSION_HDR_BYTES 64
#define SESSION_VERSION	  1

/* The fixed part of a session record, in this order, big-endian integers. */
struct session_hdr {
	uint8_t version;
	uint8_t revoked;
	uint8_t role;
	uint32_t mark; /* session_principal_mark of its role and resort; 0: not recorded */
	uint64_t created_ms;
	uint64_t last_ms; /* the login or the last refresh: idle time counts from here */
	uint64_t gen;	  /* the current refresh token's generation */
	unsigned char cookie_hash[32];
};

/* A string member or "", and a number member or 0: records are ours, so a missing member
 * only happens on a corrupt record, which the checks then refuse. */
static const char *jstr(const cJSON *obj, const char *name)
{
	const char *v = json_get_string(obj, name);
	return v ? v : "";
}

static double jnum(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : 0;
}

static const char *const role_names[] = {"public", "guest", "staff", "manager", "admin"};

const char *session_role_name(enum role r)
{
	return r <= ROLE_ADMIN ? role_names[r] : "public";
}

enum role session_role_parse(const char *name)
{
	for (int r = ROLE_GUEST; name && r <= ROLE_ADMIN; r++)
		if (strcmp(role_names[r], name) == 0)
			return (enum role)r;
	return ROLE_PUBLIC;
}

static void random_b64(size_t bytes, char *out)
{
	unsigned char buf[32];
	rsd_random(buf, bytes);
	jose_b64url_encode(buf, bytes, out);
}

void session_new_id(char out[SESSION_ID_BYTES + 1])
{
	random_b64(16, out);
}

void session_new_token(char out[SESSION_TOKEN_BYTES + 1])
{
	random_b64(32, out);
}

void session_hash(const char *text, unsigned char out[32])
{
	SHA256((const unsigned char *)text, strlen(text), out);
}

uint32_t session_principal_mark(const struct principal *who)
{
	uint32_t h = 2166136261u ^ (uint32_t)who->role; /* FNV-1a */
	h *= 16777619u;
	for (const unsigned char *c = (const unsigned char *)who->resort; *c; c++)
		h = (h ^ *c) * 16777619u;
	return h | 1; /* never 0, which old records have */
}

/* --- records --- */

static void hdr_encode(const struct session_hdr *h, unsigned char *p)
{
	memset(p, 0, SESSION_HDR_BYTES);
	p[0] = h->version;
	p[1] = h->revoked;
	p[2] = h->role;
	rsd_put_be32(p + 4, h->mark);
	rsd_put_be64(p + 8, h->created_ms);
	rsd_put_be64(p + 16, h->last_ms);
	rsd_put_be64(p + 24, h->gen);
	memcpy(p + 32, h->cookie_hash, 32);
}

static int hdr_decode(const MDB_val *v, struct session_hdr *h)
{
	const unsigned char *p = v->mv_data;
	if (v->mv_size < SESSION_HDR_BYTES || p[0] != SESSION_VERSION)
		return RSD_EIO;
	h->version = p[0];
	h->revoked = p[1];
	h->role = p[2];
	h->mark = rsd_get_be32(p + 4);
	h->created_ms = rsd_get_be64(p + 8);
	h->last_ms = rsd_get_be64(p + 16);
	h->gen = rsd_get_be64(p + 24);
	memcpy(h->cookie_hash, p + 32, 32);
	return RSD_OK;
}

static MDB_val session_key(char *buf, const char *sid)
{
	size_t n = strnlen(sid, SESSION_ID_BYTES + 1);
	buf[0] = 's';
	memcpy(buf + 1, sid, n);
	return (MDB_val){.mv_size = n + 1, .mv_data = buf};
}

static int session_get(MDB_txn *txn, struct store *s, const char *sid, MDB_val *v)
{
	char kb[SESSION_ID_BYTES + 2];
	if (strlen(sid) != SESSION_ID_BYTES)
		return RSD_ENOTFOUND;
	MDB_val k = session_key(kb, sid);
	return store_err(mdb_get(txn, s->sessions, &k, v));
}

/* Fills who from a session record's JSON part. */
static int record_principal(const MDB_val *v, const char *sid, struct principal *who)
{
	struct session_hdr h;
	if (hdr_decode(v, &h))
		return RSD_EIO;
	cJSON *j = cJSON_ParseWithLength((const char *)v->mv_data + SESSION_HDR_BYTES,
					 v->mv_size - SESSION_HDR_BYTES);
	if (j == NULL)
		return RSD_EIO;
	memset(who, 0, sizeof(*who));
	snprintf(who->sub, sizeof(who->sub), "%s", jstr(j, "sub"));
	snprintf(who->sid, sizeof(who->sid), "%s", sid);
	snprintf(who->resort, sizeof(who->resort), "%s", jstr(j, "resort"));
	snprintf(who->name, sizeof(who->name), "%s", jstr(j, "name"));
	who->role = h.role <= ROLE_ADMIN ? (enum role)h.role : ROLE_PUBLIC;
	cJSON_Delete(j);
	return RSD_OK;
}

static int live(const struct session_hdr *h, const struct session_limits *lim, uint64_t now_ms,
		struct rsd_fail *f)
{
	if (h->revoked)
		return rsd_failf(f, RSD_EAUTH, "", "the session has been revoked");
	if (now_ms >= h->created_ms + lim->max_ms)
		return rsd_failf(f, RSD_EAUTH, "", "the session has expired");
	if (now_ms >= h->last_ms + lim->idle_ms)
		return rsd_failf(f, RSD_EAUTH, "", "the session has expired after being idle");
	return RSD_OK;
}

int session_check(MDB_txn *txn, struct store *s, const char *sid, const char *cookie_secret,
		  const struct session_limits *lim, uint64_t now_ms, struct principal *who,
		  struct session_times *times, struct rsd_fail *f)
{
	MDB_val v;
	int err = session_get(txn, s, sid, &v);
	if (err == RSD_ENOTFOUND)
		return rsd_failf(f, RSD_EAUTH, "", "no such session");
	struct session_hdr h;
	if (err || (err = hdr_decode(&v, &h)))
		return rsd_failf(f, RSD_EIO, "", "cannot read the session");
	if ((err = live(&h, lim, now_ms, f)))
		return err;
	if (cookie_secret) {
		unsigned char hash[32];
		session_hash(cookie_secret, hash);
		if (CRYPTO_memcmp(hash, h.cookie_hash, 32) != 0)
			return rsd_failf(f, RSD_EAUTH, "", "the session cookie does not hold");
	}
	if (who && record_principal(&v, sid, who))
		return rsd_failf(f, RSD_EIO, "", "cannot read the session");
	if (times) {
		uint64_t max_end = h.created_ms + lim->max_ms, idle_end = h.last_ms + lim->idle_ms;
		times->until_ms = max_end < idle_end ? max_end : idle_end;
		times->last_ms = h.last_ms;
		times->mark = h.mark;
	}
	return RSD_OK;
}

/* The refresh record of hash as JSON (caller frees). */
static int refresh_get(MDB_txn *txn, struct store *s, const unsigned char hash[32], cJSON **out)
{
	MDB_val k = {.mv_size = 32, .mv_data = (void *)hash}, v;
	int err = store_err(mdb_get(txn, s->refresh, &k, &v));
	if (err)
		return err;
	*out = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	return *out ? RSD_OK : RSD_EIO;
}

int session_of_refresh(MDB_txn *txn, struct store *s, const unsigned char hash[32],
		       const struct session_limits *lim, uint64_t now_ms, struct principal *who,
		       struct rsd_fail *f)
{
	cJSON *rec;
	int err = refresh_get(txn, s, hash, &rec);
	if (err == RSD_ENOTFOUND)
		return rsd_failf(f, RSD_EAUTH, "refresh_token", "the refresh token is not valid");
	if (err)
		return rsd_failf(f, RSD_EIO, "", "cannot read the refresh token");
	char sid[SESSION_ID_BYTES + 1];
	snprintf(sid, sizeof(sid), "%s", jstr(rec, "sid"));
	cJSON_Delete(rec);
	return session_check(txn, s, sid, NULL, lim, now_ms, who, NULL, f);
}

/* --- users --- */

bool session_user_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > USER_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

int session_user_get(MDB_txn *txn, struct store *s, const char *name, struct user_rec *out)
{
	if (!session_user_name_ok(name))
		return RSD_ENOTFOUND;
	MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name}, v;
	int err = store_err(mdb_get(txn, s->users, &k, &v));
	if (err)
		return err;
	cJSON *j = cJSON_ParseWithLength(v.mv_data, v.mv_size);
	if (j == NULL)
		return RSD_EIO;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->role = session_role_parse(jstr(j, "role"));
	snprintf(out->resort, sizeof(out->resort), "%s", jstr(j, "resort"));
	snprintf(out->hash, sizeof(out->hash), "%s", jstr(j, "hash"));
	out->disabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "disabled"));
	out->created_ms = (uint64_t)jnum(j, "created_ms");
	out->changed_ms = (uint64_t)jnum(j, "changed_ms");
	cJSON_Delete(j);
	return RSD_OK;
}

static int user_put(MDB_txn *txn, struct store *s, const struct user_rec *u)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "role", session_role_name(u->role));
	cJSON_AddStringToObject(j, "resort", u->resort);
	cJSON_AddStringToObject(j, "hash", u->hash);
	cJSON_AddBoolToObject(j, "disabled", u->disabled);
	cJSON_AddNumberToObject(j, "created_ms", (double)u->created_ms);
	cJSON_AddNumberToObject(j, "changed_ms", (double)u->changed_ms);
	char *text = json_print(j);
	cJSON_Delete(j);
	MDB_val k = {.mv_size = strlen(u->name), .mv_data = (void *)u->name};
	MDB_val v = {.mv_size = strlen(text), .mv_data = text};
	int err = store_err(mdb_put(txn, s->users, &k, &v, 0));
	free(text);
	return err;
}

/* --- commands --- */

/* The JSON part of a session record. */
static cJSON *session_json(const char *sub, const char *name, const char *resort, const char *via)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "sub", sub);
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddStringToObject(j, "resort", resort);
	cJSON_AddStringToObject(j, "via", via);
	return j;
}

static int put_session(MDB_txn *txn, struct store *s, const char *sid, const struct session_hdr *h,
		       const char *json, size_t json_len)
{
	char kb[SESSION_ID_BYTES + 2];
	MDB_val k = session_key(kb, sid);
	MDB_val v = {.mv_size = SESSION_HDR_BYTES + json_len};
	int rc = mdb_put(txn, s->sessions, &k, &v, MDB_RESERVE);
	if (rc)
		return store_err(rc);
	hdr_encode(h, v.mv_data);
	memcpy((unsigned char *)v.mv_data + SESSION_HDR_BYTES, json, json_len);
	return RSD_OK;
}

/* --- the IdP's part of an SSO session: 'i' sid -> checked_ms (8 bytes), IdP refresh token --- */

static MDB_val idp_key(char *buf, const char *sid)
{
	MDB_val k = session_key(buf, sid);
	buf[0] = 'i';
	return k;
}

static int idp_put(MDB_txn *txn, struct store *s, const char *sid, uint64_t checked_ms,
		   const char *token)
{
	char kb[SESSION_ID_BYTES + 2];
	MDB_val k = idp_key(kb, sid);
	size_t n = strlen(token);
	MDB_val v = {.mv_size = 8 + n};
	int rc = mdb_put(txn, s->sessions, &k, &v, MDB_RESERVE);
	if (rc)
		return store_err(rc);
	rsd_put_be64(v.mv_data, checked_ms);
	memcpy((unsigned char *)v.mv_data + 8, token, n);
	return RSD_OK;
}

/* Drops the IdP's refresh token of sid: the session ended, nothing is checked for it. */
static int idp_del(MDB_txn *txn, struct store *s, const char *sid)
{
	char kb[SESSION_ID_BYTES + 2];
	MDB_val k = idp_key(kb, sid);
	int rc = mdb_del(txn, s->sessions, &k, NULL);
	return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
}

/* Fills o from the 'i' record k/v when it is due at now_ms; false when it is not. */
static bool idp_entry_due(MDB_txn *txn, struct store *s, const MDB_val *k, const MDB_val *v,
			  const struct session_limits *lim, uint64_t now_ms, uint64_t every_ms,
			  struct session_idp_check *o)
{
	if (k->mv_size != 1 + SESSION_ID_BYTES || v->mv_size <= 8 ||
	    v->mv_size > 8 + IDP_REFRESH_TOKEN_BYTES_MAX)
		return false;
	char sid[SESSION_ID_BYTES + 1];
	memcpy(sid, (const char *)k->mv_data + 1, SESSION_ID_BYTES);
	sid[SESSION_ID_BYTES] = '\0';
	MDB_val sv;
	struct session_hdr h;
	memset(o, 0, sizeof(*o));
	if (session_get(txn, s, sid, &sv) || hdr_decode(&sv, &h) ||
	    live(&h, lim, now_ms, NULL) != RSD_OK) {
		o->ended = true; /* ran out of time (or unreadable): its IdP part can go */
		memcpy(o->who.sid, sid, sizeof(o->who.sid));
		return true;
	}
	if (rsd_get_be64(v->mv_data) + every_ms > now_ms ||
	    record_principal(&sv, sid, &o->who) != RSD_OK)
		return false;
	memcpy(o->token, (const char *)v->mv_data + 8, v->mv_size - 8);
	o->token[v->mv_size - 8] = '\0';
	return true;
}

/* Adds the due 'i' entries from key `from` on, below `stop` (NULL: to the last), to out. */
static int walk_due(MDB_txn *txn, struct store *s, MDB_cursor *c, MDB_val from, const MDB_val *stop,
		    const struct session_limits *lim, uint64_t now_ms, uint64_t every_ms,
		    struct session_idp_check *out, int *n, int max)
{
	MDB_val k = from, v;
	int rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && *n < max && ((const char *)k.mv_data)[0] == 'i' &&
	     (stop == NULL || mdb_cmp(txn, s->sessions, &k, stop) < 0);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (idp_entry_due(txn, s, &k, &v, lim, now_ms, every_ms, &out[*n]))
			(*n)++;
	return rc == 0 || rc == MDB_NOTFOUND ? RSD_OK : RSD_EIO;
}

int session_idp_due(MDB_txn *txn, struct store *s, const struct session_limits *lim,
		    uint64_t now_ms, uint64_t every_ms, const char *after,
		    struct session_idp_check *out, int max)
{
	MDB_cursor *c;
	if (mdb_cursor_open(txn, s->sessions, &c))
		return -1;
	/* Round robin: from just past `after` to the last, then from the first up to it, so
	 * sessions the IdP cannot answer for never keep the others waiting. */
	char past[SESSION_ID_BYTES + 2];
	MDB_val first = {.mv_size = 1, .mv_data = "i"}, from = first;
	bool round = after && strlen(after) == SESSION_ID_BYTES;
	if (round) {
		past[0] = 'i';
		memcpy(past + 1, after, SESSION_ID_BYTES);
		past[1 + SESSION_ID_BYTES] = '\0'; /* "i" sid NUL sorts just after "i" sid */
		from = (MDB_val){.mv_size = sizeof(past), .mv_data = past};
	}
	int n = 0;
	int err = walk_due(txn, s, c, from, NULL, lim, now_ms, every_ms, out, &n, max);
	if (err == RSD_OK && round)
		err = walk_due(txn, s, c, first, &from, lim, now_ms, every_ms, out, &n, max);
	mdb_cursor_close(c);
	return err ? -1 : n;
}

/* What the IdP said of session who.sid (SESSION_IDP_CHECKED): its role, resort and name as
 * the IdP's claims now make them (unless no id_token came back), and its next IdP refresh
 * token. A session that ended meanwhile only loses its IdP part. */
static int apply_idp_checked(struct writer_txn *wt, struct session_cmd *sc)
{
	MDB_val v;
	struct session_hdr h;
	struct principal old;
	if (sc->idp_forget) /* the session is no longer checked: it ended, or cannot be */
		return idp_del(wt->txn, wt->store, sc->who.sid);
	int err = session_get(wt->txn, wt->store, sc->who.sid, &v);
	if (err == RSD_ENOTFOUND)
		return idp_del(wt->txn, wt->store, sc->who.sid);
	if (err || (err = hdr_decode(&v, &h)) || (err = record_principal(&v, sc->who.sid, &old)))
		return err ? err : RSD_EIO;
	if (h.revoked)
		return idp_del(wt->txn, wt->store, sc->who.sid);
	char kb[SESSION_ID_BYTES + 2];
	MDB_val k = idp_key(kb, sc->who.sid), iv;
	if ((err = store_err(mdb_get(wt->txn, wt->store->sessions, &k, &iv))))
		return err == RSD_ENOTFOUND ? RSD_OK : err;
	if (sc->profile && (old.role != sc->who.role || strcmp(old.resort, sc->who.resort) != 0 ||
			    strcmp(old.name, sc->who.name) != 0)) {
		h.role = (uint8_t)sc->who.role;
		h.mark = session_principal_mark(&sc->who);
		cJSON *j = session_json(old.sub, sc->who.name, sc->who.resort, "oidc");
		char *text = json_print(j);
		cJSON_Delete(j);
		err = put_session(wt->txn, wt->store, sc->who.sid, &h, text, strlen(text));
		free(text);
		if (err)
			return err;
		logger_log(LOGGER_INFO, "session %s of %s: the IdP now makes it %s (was %s)",
			   sc->who.sid, old.sub, session_role_name(sc->who.role),
			   session_role_name(old.role));
		cJSON *p = sc->profile;
		sc->profile = NULL;
		if ((err = writer_emit_json(wt, EVENT_PROFILE_UPDATED, p)))
			return err;
	}
	if (sc->idp_token)
		return idp_put(wt->txn, wt->store, sc->who.sid, sc->now_ms, sc->idp_token);
	/* The IdP keeps the token it had: copied out first (iv points into the map, which the
	 * put may change). The session's put above leaves the 'i' record where it is. */
	if ((err = store_err(mdb_get(wt->txn, wt->store->sessions, &k, &iv))))
		return err;
	char token[IDP_REFRESH_TOKEN_BYTES_MAX + 1];
	size_t n = iv.mv_size - 8 < IDP_REFRESH_TOKEN_BYTES_MAX ? iv.mv_size - 8
								: IDP_REFRESH_TOKEN_BYTES_MAX;
	memcpy(token, (const char *)iv.mv_data + 8, n);
	token[n] = '\0';
	err = idp_put(wt->txn, wt->store, sc->who.sid, sc->now_ms, token);
	OPENSSL_cleanse(token, sizeof(token));
	return err;
}

/* Writes session sid back with header h and the JSON part of its current record v (copied
 * first: v points into the map, which the put may change). */
static int rewrite_header(MDB_txn *txn, struct store *s, const char *sid, const MDB_val *v,
			  const struct session_hdr *h)
{
	size_t json_len = v->mv_size - SESSION_HDR_BYTES;
	char *json = rsd_malloc(json_len + 1);
	memcpy(json, (const char *)v->mv_data + SESSION_HDR_BYTES, json_len);
	int err = put_session(txn, s, sid, h, json, json_len);
	free(json);
	return err;
}

/* The per-user index entry of a session: 'u' sub NUL sid. */
#define USER_INDEX_KEY_BYTES (1 + PRINCIPAL_BYTES_MAX + 1 + SESSION_ID_BYTES)
static MDB_val user_index_key(char *kb, const char *sub, const char *sid)
{
	size_t n = strlen(sub);
	kb[0] = 'u';
	memcpy(kb + 1, sub, n);
	kb[1 + n] = '\0';
	memcpy(kb + 2 + n, sid, SESSION_ID_BYTES);
	return (MDB_val){.mv_size = 2 + n + SESSION_ID_BYTES, .mv_data = kb};
}

static int put_refresh(MDB_txn *txn, struct store *s, const unsigned char hash[32], cJSON *rec)
{
	char *text = json_print(rec);
	MDB_val k = {.mv_size = 32, .mv_data = (void *)hash};
	MDB_val v = {.mv_size = strlen(text), .mv_data = text};
	int err = store_err(mdb_put(txn, s->refresh, &k, &v, 0));
	free(text);
	return err;
}

static cJSON *audit(const struct session_cmd *sc, const char *sid)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "sub", sc->who.sub);
	if (sid)
		cJSON_AddStringToObject(d, "sid", sid);
	if (sc->ip[0])
		cJSON_AddStringToObject(d, "ip", sc->ip);
	return d;
}

static int apply_login(struct writer_txn *wt, struct session_cmd *sc)
{
	struct store *s = wt->store;
	RSD_ASSERT(sc->lim.max_ms > 0); /* the session's end is fixed now: the caller's limits */
	if (sc->user[0]) { /* a password login: the user may have been disabled meanwhile */
		struct user_rec u;
		if (session_user_get(wt->txn, s, sc->user, &u) || u.disabled)
			return rsd_failf(&sc->cmd.fail, RSD_EAUTH, "", "the account is disabled");
	}
	struct session_hdr h = {.version = SESSION_VERSION,
				.role = (uint8_t)sc->who.role,
				.mark = session_principal_mark(&sc->who),
				.created_ms = sc->now_ms,
				.last_ms = sc->now_ms};
	memcpy(h.cookie_hash, sc->cookie_hash, 32);
	cJSON *j = session_json(sc->who.sub, sc->who.name, sc->who.resort, sc->via);
	char *text = json_print(j);
	cJSON_Delete(j);
	int err = put_session(wt->txn, s, sc->who.sid, &h, text, strlen(text));
	free(text);
	if (err == RSD_OK && sc->idp_token)
		err = idp_put(wt->txn, s, sc->who.sid, sc->now_ms, sc->idp_token);
	if (err)
		return err;
	char kb[USER_INDEX_KEY_BYTES];
	MDB_val k = user_index_key(kb, sc->who.sub, sc->who.sid), empty = {0, (void *)""};
	if ((err = store_err(mdb_put(wt->txn, s->sessions, &k, &empty, 0))))
		return err;
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddStringToObject(rec, "sid", sc->who.sid);
	cJSON_AddNumberToObject(rec, "gen", 0);
	cJSON_AddNumberToObject(rec, "used_ms", 0);
	err = put_refresh(wt->txn, s, sc->token_hash, rec);
	cJSON_Delete(rec);
	/* Both go for good at the session's absolute end (session_expire). */
	uint64_t end = sc->now_ms + sc->lim.max_ms;
	if (err ||
	    (err = store_expiry_add(wt->txn, s, end, EXPIRY_SESSION, sc->who.sid,
				    SESSION_ID_BYTES)) ||
	    (err = store_expiry_add(wt->txn, s, end, EXPIRY_REFRESH, sc->token_hash, 32)))
		return err;
	cJSON *ev = audit(sc, sc->who.sid);
	cJSON_AddStringToObject(ev, "via", sc->via);
	cJSON_AddStringToObject(ev, "role", session_role_name(sc->who.role));
	cJSON_AddStringToObject(ev, "resort", sc->who.resort);
	if ((err = writer_emit_json(wt, EVENT_AUTH_LOGIN, ev)))
		return err;
	if (sc->profile) {
		cJSON *p = sc->profile;
		sc->profile = NULL;
		return writer_emit_json(wt, EVENT_PROFILE_UPDATED, p);
	}
	return RSD_OK;
}

/* Marks session sid revoked; *count grows when it was live. */
static int revoke_one(MDB_txn *txn, struct store *s, const char *sid, int *count)
{
	MDB_val v;
	int err = session_get(txn, s, sid, &v);
	if (err == RSD_ENOTFOUND)
		return RSD_OK;
	struct session_hdr h;
	if (err || (err = hdr_decode(&v, &h)))
		return err ? err : RSD_EIO;
	if (h.revoked)
		return RSD_OK;
	h.revoked = 1;
	err = rewrite_header(txn, s, sid, &v, &h);
	if (err == RSD_OK)
		err = idp_del(txn, s, sid);
	if (err == RSD_OK)
		(*count)++;
	return err;
}

/* Revokes every session of sub (walks the 'u' index). */
static int revoke_all(MDB_txn *txn, struct store *s, const char *sub, int *count)
{
	char prefix[2 + PRINCIPAL_BYTES_MAX];
	size_t n = strlen(sub);
	prefix[0] = 'u';
	memcpy(prefix + 1, sub, n);
	prefix[1 + n] = '\0';
	size_t plen = n + 2;
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->sessions, &c);
	if (rc)
		return store_err(rc);
	/* Collect first: revoking writes to the same database the cursor walks. */
	char(*sids)[SESSION_ID_BYTES + 1] = NULL;
	size_t nsids = 0, cap = 0;
	MDB_val k = {.mv_size = plen, .mv_data = prefix}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size == plen + SESSION_ID_BYTES &&
	     memcmp(k.mv_data, prefix, plen) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (nsids == cap) {
			cap = cap ? cap * 2 : 8;
			sids = rsd_realloc(sids, cap * sizeof(*sids));
		}
		memcpy(sids[nsids], (const char *)k.mv_data + plen, SESSION_ID_BYTES);
		sids[nsids++][SESSION_ID_BYTES] = '\0';
	}
	mdb_cursor_close(c);
	int err = rc == 0 || rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
	for (size_t i = 0; err == RSD_OK && i < nsids; i++)
		err = revoke_one(txn, s, sids[i], count);
	free(sids);
	return err;
}

static int apply_logout(struct writer_txn *wt, struct session_cmd *sc)
{
	MDB_val v;
	struct principal owner;
	/* By sid alone (an admin's revocation): the audit names whose session it was. */
	if (!sc->all && !sc->who.sub[0] && session_get(wt->txn, wt->store, sc->who.sid, &v) == 0 &&
	    record_principal(&v, sc->who.sid, &owner) == RSD_OK)
		snprintf(sc->who.sub, sizeof(sc->who.sub), "%s", owner.sub);
	int err = sc->all ? revoke_all(wt->txn, wt->store, sc->who.sub, &sc->revoked_count)
			  : revoke_one(wt->txn, wt->store, sc->who.sid, &sc->revoked_count);
	if (err)
		return err;
	cJSON *ev = audit(sc, sc->all ? NULL : sc->who.sid);
	cJSON_AddBoolToObject(ev, "all", sc->all);
	cJSON_AddNumberToObject(ev, "sessions", sc->revoked_count);
	if (sc->op == SESSION_REVOKE)
		cJSON_AddStringToObject(ev, "by", sc->by);
	return writer_emit_json(
		wt, sc->op == SESSION_REVOKE ? EVENT_AUTH_REVOKED : EVENT_AUTH_LOGOUT, ev);
}

/* The presented token is current: it becomes used and its successor current. */
static int rotate(struct writer_txn *wt, struct session_cmd *sc, cJSON *rec, MDB_val *sv,
		  struct session_hdr *h)
{
	cJSON_ReplaceItemInObject(rec, "used_ms", cJSON_CreateNumber((double)sc->now_ms));
	cJSON_AddStringToObject(rec, "access", sc->access);
	int err = put_refresh(wt->txn, wt->store, sc->token_hash, rec);
	/* A used token is kept a day, so that presenting it again revokes the family; then it
	 * is merely unknown. Its entry at the session's end finds it gone, which is fine. */
	if (err ||
	    (err = store_expiry_add(wt->txn, wt->store, sc->now_ms + REFRESH_USED_KEEP_S * 1000ull,
				    EXPIRY_REFRESH, sc->token_hash, 32)))
		return err;
	cJSON *next = cJSON_CreateObject();
	cJSON_AddStringToObject(next, "sid", sc->who.sid);
	cJSON_AddNumberToObject(next, "gen", (double)(h->gen + 1));
	cJSON_AddNumberToObject(next, "used_ms", 0);
	err = put_refresh(wt->txn, wt->store, sc->next_hash, next);
	cJSON_Delete(next);
	if (err || (err = store_expiry_add(wt->txn, wt->store, h->created_ms + sc->lim.max_ms,
					   EXPIRY_REFRESH, sc->next_hash, 32)))
		return err;
	h->gen++;
	h->last_ms = sc->now_ms;
	return rewrite_header(wt->txn, wt->store, sc->who.sid, sv, h);
}

static int apply_refresh(struct writer_txn *wt, struct session_cmd *sc)
{
	struct rsd_fail *f = &sc->cmd.fail;
	cJSON *rec;
	int err = refresh_get(wt->txn, wt->store, sc->token_hash, &rec);
	if (err == RSD_ENOTFOUND)
		return rsd_failf(f, RSD_EAUTH, "refresh_token", "the refresh token is not valid");
	if (err)
		return err;
	snprintf(sc->who.sid, sizeof(sc->who.sid), "%s", jstr(rec, "sid"));
	MDB_val sv;
	struct session_hdr h;
	if ((err = session_get(wt->txn, wt->store, sc->who.sid, &sv)) ||
	    (err = hdr_decode(&sv, &h)) || (err = live(&h, &sc->lim, sc->now_ms, f))) {
		cJSON_Delete(rec);
		return err == RSD_ENOTFOUND ? rsd_failf(f, RSD_EAUTH, "", "no such session") : err;
	}
	uint64_t gen = (uint64_t)jnum(rec, "gen");
	uint64_t used_ms = (uint64_t)jnum(rec, "used_ms");
	if (used_ms == 0 && gen == h.gen) {
		err = rotate(wt, sc, rec, &sv, &h);
	} else if (used_ms && gen + 1 == h.gen && sc->now_ms <= used_ms + sc->lim.grace_ms) {
		/* A retry of a refresh whose answer was lost: the same pair again. */
		sc->replayed = true;
		const char *a = jstr(rec, "access");
		sc->access_out = rsd_strndup(a, strlen(a));
	} else {
		/* Presented again after its successor was issued: stolen or replayed. The
		 * whole family goes (OAuth 2.0 Security BCP 4.14.2). */
		sc->reuse = true;
		struct principal who; /* for the audit: whose family it was */
		if (record_principal(&sv, sc->who.sid, &who) == RSD_OK)
			snprintf(sc->who.sub, sizeof(sc->who.sub), "%s", who.sub);
		err = revoke_one(wt->txn, wt->store, sc->who.sid, &sc->revoked_count);
		if (err == RSD_OK)
			err = writer_emit_json(wt, EVENT_AUTH_REFRESH_REUSE,
					       audit(sc, sc->who.sid));
	}
	cJSON_Delete(rec);
	return err;
}

static int apply_login_failed(struct writer_txn *wt, struct session_cmd *sc)
{
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "user", sc->user);
	cJSON_AddStringToObject(ev, "ip", sc->ip);
	cJSON_AddStringToObject(ev, "reason", sc->reason);
	return writer_emit_json(wt, EVENT_AUTH_LOGIN_FAILED, ev);
}

static int apply_user(struct writer_txn *wt, struct session_cmd *sc)
{
	if (!session_user_name_ok(sc->rec.name))
		return rsd_failf(&sc->cmd.fail, RSD_EINVAL, "name", "not a user name");
	struct user_rec old;
	int err = session_user_get(wt->txn, wt->store, sc->rec.name, &old);
	if (sc->op == SESSION_USER_ADD && err == RSD_OK)
		return rsd_failf(&sc->cmd.fail, RSD_ECONFLICT, "name", "user %s exists",
				 sc->rec.name);
	if (sc->op == SESSION_USER_UPDATE && err == RSD_ENOTFOUND)
		return rsd_failf(&sc->cmd.fail, RSD_ENOTFOUND, "name", "no user %s", sc->rec.name);
	if (err && err != RSD_ENOTFOUND)
		return err;
	if (sc->op == SESSION_USER_UPDATE) {
		struct user_rec u = old;
		if (sc->user_set & USER_SET_PASSWORD) {
			memcpy(u.hash, sc->rec.hash, sizeof(u.hash));
			u.disabled = false;
		}
		if (sc->user_set & USER_SET_DISABLED)
			u.disabled = sc->rec.disabled;
		if (sc->user_set & USER_SET_ROLE)
			u.role = sc->rec.role;
		if (sc->user_set & USER_SET_RESORT)
			memcpy(u.resort, sc->rec.resort, sizeof(u.resort));
		sc->rec = u;
	}
	sc->rec.created_ms = err == RSD_OK ? old.created_ms : sc->now_ms;
	sc->rec.changed_ms = sc->now_ms;
	if ((err = user_put(wt->txn, wt->store, &sc->rec)))
		return err;
	if (sc->op == SESSION_USER_UPDATE) {
		char sub[PRINCIPAL_BYTES_MAX + 1];
		snprintf(sub, sizeof(sub), "staff:%s", sc->rec.name);
		if ((err = revoke_all(wt->txn, wt->store, sub, &sc->revoked_count)))
			return err;
	}
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "name", sc->rec.name);
	cJSON_AddStringToObject(ev, "role", session_role_name(sc->rec.role));
	cJSON_AddStringToObject(ev, "resort", sc->rec.resort);
	cJSON_AddBoolToObject(ev, "disabled", sc->rec.disabled);
	cJSON_AddNumberToObject(ev, "sessions_revoked", sc->revoked_count);
	return writer_emit_json(wt, EVENT_USER_CHANGED, ev);
}

int session_expire(MDB_txn *txn, struct store *s, uint8_t kind, const void *id, size_t len)
{
	int rc;
	if (kind == EXPIRY_REFRESH) {
		MDB_val k = {.mv_size = len, .mv_data = (void *)id};
		rc = mdb_del(txn, s->refresh, &k, NULL);
		return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
	}
	char sid[SESSION_ID_BYTES + 1];
	if (kind != EXPIRY_SESSION || len != SESSION_ID_BYTES)
		return RSD_EINTERNAL;
	memcpy(sid, id, SESSION_ID_BYTES);
	sid[SESSION_ID_BYTES] = '\0';
	MDB_val v;
	struct principal who;
	int err = session_get(txn, s, sid, &v);
	if (err == RSD_ENOTFOUND)
		return RSD_OK;
	if (err)
		return err;
	char kb[USER_INDEX_KEY_BYTES], sb[1 + SESSION_ID_BYTES];
	MDB_val sk = session_key(sb, sid);
	if (record_principal(&v, sid, &who) != RSD_OK) {
		/* Unreadable: it goes all the same (its index entry, unfindable, stays), or the
		 * sweeper would stop at it for good. */
		logger_log(LOGGER_WARN, "session %s: unreadable record removed at its end", sid);
		rc = mdb_del(txn, s->sessions, &sk, NULL);
		return rc ? store_err(rc) : idp_del(txn, s, sid);
	}
	MDB_val uk = user_index_key(kb, who.sub, sid);
	rc = mdb_del(txn, s->sessions, &uk, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, s->sessions, &sk, NULL);
	return rc ? store_err(rc) : idp_del(txn, s, sid);
}

/* A browser session was used (apps refresh instead): idle time counts from now. A session
 * that is gone or no longer live stays as it is; no event, as for a refresh. */
static int apply_touch(struct writer_txn *wt, struct session_cmd *sc)
{
	MDB_val v;
	struct session_hdr h;
	int err = session_get(wt->txn, wt->store, sc->who.sid, &v);
	if (err == RSD_ENOTFOUND)
		return RSD_OK;
	if (err || (err = hdr_decode(&v, &h)))
		return err ? err : RSD_EIO;
	if (live(&h, &sc->lim, sc->now_ms, NULL) != RSD_OK || sc->now_ms <= h.last_ms)
		return RSD_OK;
	h.last_ms = sc->now_ms;
	return rewrite_header(wt->txn, wt->store, sc->who.sid, &v, &h);
}

static int session_apply(struct writer_txn *wt, struct command *cmd)
{
	struct session_cmd *sc = (struct session_cmd *)cmd;
	switch (sc->op) {
	case SESSION_LOGIN: return apply_login(wt, sc);
	case SESSION_REFRESH: return apply_refresh(wt, sc);
	case SESSION_LOGOUT:
	case SESSION_REVOKE: return apply_logout(wt, sc);
	case SESSION_LOGIN_FAILED: return apply_login_failed(wt, sc);
	case SESSION_USER_ADD:
	case SESSION_USER_UPDATE: return apply_user(wt, sc);
	case SESSION_TOUCH: return apply_touch(wt, sc);
	case SESSION_IDP_CHECKED: return apply_idp_checked(wt, sc);
	}
	return RSD_EINTERNAL;
}

void session_cmd_init(struct session_cmd *sc, enum session_op op, uint64_t now_ms)
{
	memset(sc, 0, sizeof(*sc));
	sc->op = op;
	sc->now_ms = now_ms;
	sc->cmd.apply = session_apply;
	sc->cmd.arg = sc;
}

void session_cmd_release(struct session_cmd *sc)
{
	free(sc->access);
	free(sc->access_out);
	cJSON_Delete(sc->profile);
	if (sc->idp_token)
		OPENSSL_cleanse(sc->idp_token, strlen(sc->idp_token));
	free(sc->idp_token);
	sc->access = sc->access_out = sc->idp_token = NULL;
	sc->profile = NULL;
}
