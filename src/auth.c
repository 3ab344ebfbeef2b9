/*
 * auth.c — signing keys, access tokens, the verified-token cache, cookies and CSRF.
 *
 * Threads: the ring of keys is shared by the workers and replaced when a rotation is
 * seen, under a read-write lock (verification holds it for reading). The token cache is
 * per worker and needs no lock. Invariant: a cache entry was verified by jose_verify with
 * the claims checked at insertion and is used only before its exp; its session's verdict
 * is reused only while LMDB's last committed transaction id is the one it was read at
 * (any commit, by any process, may have revoked it) and before the session runs out of time.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "json.h"
#include "logger.h"
#include "banned.h"

#define SECRET_BYTES 32

struct key_age {
	char kid[JOSE_KID_BYTES_MAX + 1];
	uint64_t created_ms;
};

struct auth {
	const struct config *config;
	struct store *store;
	struct writer *writer;
	pthread_rwlock_t lock; /* ring and current */
	struct jose_ring ring;
	char current[JOSE_KID_BYTES_MAX + 1];
	struct key_age ages[JOSE_KEYS_MAX]; /* when each key of the ring was made */
	int n_ages;
	unsigned char refresh_key[32], csrf_key[32], login_key[32];
	_Atomic uint64_t checked_ms; /* when meta's current kid was last compared */
};

/* A verified token, by its SHA-256 (a worker's memory holds no usable credential), and
 * the last time its session was found live. */
struct cache_slot {
	unsigned char hash[32];
	uint64_t exp_s;		/* the token's exp; 0: empty */
	uint64_t checked_txnid; /* LMDB's last commit when the session was last read */
	uint64_t live_until_ms; /* ... and when that reading runs out of time */
	struct principal who;
};

struct auth_cache {
	/* SHA-256 fetched once: OpenSSL 3's one-shot SHA256() fetches it on every call,
	 * which doubled the cost of hashing a token (~510 ns against ~260 ns). */
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	struct cache_slot slots[TOKEN_CACHE_SLOTS];
};

/* --- keys in meta --- */

static int meta_get(MDB_txn *txn, struct store *s, const char *name, MDB_val *v)
{
	MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
	return store_err(mdb_get(txn, s->meta, &k, v));
}

static int meta_put(MDB_txn *txn, struct store *s, const char *name, const void *data, size_t n)
{
	MDB_val k = {.mv_size = strlen(name), .mv_data = (void *)name};
	MDB_val v = {.mv_size = n, .mv_data = (void *)data};
	return store_err(mdb_put(txn, s->meta, &k, &v, 0));
}

/* Calls fn for every stored key record ("sk:" prefix), after the walk, so that fn may
 * change meta. */
static int each_key(MDB_txn *txn, struct store *s,
		    int (*fn)(const char *kid, cJSON *rec, void *arg), void *arg)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->meta, &c);
	if (rc)
		return store_err(rc);
	char kids[JOSE_KEYS_MAX][JOSE_KID_BYTES_MAX + 1];
	cJSON *recs[JOSE_KEYS_MAX];
	int n = 0;
	MDB_val k = {.mv_size = 3, .mv_data = "sk:"}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && n < JOSE_KEYS_MAX && k.mv_size > 3 && k.mv_size <= 3 + JOSE_KID_BYTES_MAX &&
	     memcmp(k.mv_data, "sk:", 3) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		memcpy(kids[n], (const char *)k.mv_data + 3, k.mv_size - 3);
		kids[n][k.mv_size - 3] = '\0';
		if ((recs[n] = cJSON_ParseWithLength(v.mv_data, v.mv_size)) != NULL)
			n++;
	}
	mdb_cursor_close(c);
	int err = RSD_OK;
	for (int i = 0; i < n; i++) {
		if (err == RSD_OK)
			err = fn(kids[i], recs[i], arg);
		cJSON_Delete(recs[i]);
	}
	return err;
}

static uint64_t rec_ms(const cJSON *rec, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, name);
	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

/* What load_keys gathers. */
struct loading {
	struct jose_ring ring;
	struct key_age ages[JOSE_KEYS_MAX];
	int n_ages;
};

static int load_one(const char *kid, cJSON *rec, void *arg)
{
	struct loading *l = arg;
	const char *pub = json_get_string(rec, "pub"), *priv = json_get_string(rec, "priv");
	enum jose_alg alg = jose_alg_parse(json_get_string(rec, "alg"));
	if (!pub || !alg || jose_ring_add(&l->ring, kid, alg, pub, priv) != RSD_OK) {
		logger_log(LOGGER_WARN, "signing key %s not loaded", kid);
		return RSD_OK;
	}
	snprintf(l->ages[l->n_ages].kid, sizeof(l->ages[0].kid), "%s", kid);
	l->ages[l->n_ages++].created_ms = rec_ms(rec, "created_ms");
	return RSD_OK;
}

/* Rebuilds the ring from meta; the caller holds the write lock. */
static int load_keys(struct auth *a)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(a->store->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return store_err(rc);
	struct loading *l = rsd_calloc(1, sizeof(*l));
	MDB_val v;
	int err = meta_get(txn, a->store, "skc", &v);
	if (err == RSD_OK && v.mv_size <= JOSE_KID_BYTES_MAX) {
		memcpy(a->current, v.mv_data, v.mv_size);
		a->current[v.mv_size] = '\0';
		err = each_key(txn, a->store, load_one, l);
	}
	if (err == RSD_OK && (err = meta_get(txn, a->store, "auth_secret", &v)) == RSD_OK &&
	    v.mv_size == SECRET_BYTES) {
		/* Two keys from one secret, so that neither use can forge the other. */
		unsigned int n = 32;
		HMAC(EVP_sha256(), v.mv_data, SECRET_BYTES, (const unsigned char *)"refresh", 7,
		     a->refresh_key, &n);
		HMAC(EVP_sha256(), v.mv_data, SECRET_BYTES, (const unsigned char *)"csrf", 4,
		     a->csrf_key, &n);
		HMAC(EVP_sha256(), v.mv_data, SECRET_BYTES, (const unsigned char *)"oidc-login", 10,
		     a->login_key, &n);
	}
	mdb_txn_abort(txn);
	if (err == RSD_OK && jose_ring_find(&l->ring, a->current) == NULL)
		err = RSD_EIO;
	if (err) {
		jose_ring_release(&l->ring);
	} else {
		jose_ring_release(&a->ring);
		a->ring = l->ring;
		memcpy(a->ages, l->ages, sizeof(a->ages));
		a->n_ages = l->n_ages;
	}
	free(l);
	return err;
}

/* The rotation command: the new key's PEMs are made by the caller, off the writer. */
struct rotate_cmd {
	struct command cmd;
	uint64_t now_ms;
	char kid[JOSE_KID_BYTES_MAX + 1];
	char *priv, *pub;
	bool only_if_none; /* the first key at start-up: skip when one exists */
};

static int retire(const char *kid, cJSON *rec, void *arg)
{
	struct writer_txn *wt = ((void **)arg)[0];
	struct rotate_cmd *rc = ((void **)arg)[1];
	uint64_t retired = rec_ms(rec, "retired_ms");
	char name[3 + JOSE_KID_BYTES_MAX + 1];
	snprintf(name, sizeof(name), "sk:%s", kid);
	if (retired && retired + KEY_RETIRED_KEEP_S * 1000ull < rc->now_ms) {
		MDB_val k = {.mv_size = strlen(name), .mv_data = name};
		return store_err(mdb_del(wt->txn, wt->store->meta, &k, NULL));
	}
	if (retired)
		return RSD_OK;
	cJSON_AddNumberToObject(rec, "retired_ms", (double)rc->now_ms);
	char *text = json_print(rec);
	int err = meta_put(wt->txn, wt->store, name, text, strlen(text));
	free(text);
	return err;
}

static int rotate_apply(struct writer_txn *wt, struct command *cmd)
{
	struct rotate_cmd *rc = (struct rotate_cmd *)cmd;
	MDB_val v;
	if (rc->only_if_none && meta_get(wt->txn, wt->store, "skc", &v) == RSD_OK)
		return RSD_OK;
	if (meta_get(wt->txn, wt->store, "auth_secret", &v) == RSD_ENOTFOUND) {
		unsigned char secret[SECRET_BYTES];
		rsd_random(secret, sizeof(secret));
		int err = meta_put(wt->txn, wt->store, "auth_secret", secret, sizeof(secret));
		OPENSSL_cleanse(secret, sizeof(secret));
		if (err)
			return err;
	}
	void *args[2] = {wt, rc};
	int err = each_key(wt->txn, wt->store, retire, args);
	if (err)
		return err;
	cJSON *rec = cJSON_CreateObject();
	cJSON_AddStringToObject(rec, "alg", "ES256");
	cJSON_AddNumberToObject(rec, "created_ms", (double)rc->now_ms);
	cJSON_AddStringToObject(rec, "priv", rc->priv);
	cJSON_AddStringToObject(rec, "pub", rc->pub);
	char *text = json_print(rec);
	cJSON_Delete(rec);
	char name[3 + JOSE_KID_BYTES_MAX + 1];
	snprintf(name, sizeof(name), "sk:%s", rc->kid);
	err = meta_put(wt->txn, wt->store, name, text, strlen(text));
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return err ? err : meta_put(wt->txn, wt->store, "skc", rc->kid, strlen(rc->kid));
}

static int add_key(struct writer *w, uint64_t now_ms, bool only_if_none, char *kid)
{
	struct rotate_cmd rc = {
		.cmd.apply = rotate_apply, .now_ms = now_ms, .only_if_none = only_if_none};
	unsigned char raw[9];
	rsd_random(raw, sizeof(raw));
	jose_b64url_encode(raw, sizeof(raw), rc.kid);
	if (jose_es256_generate(&rc.priv, &rc.pub))
		return RSD_EINTERNAL;
	int err = writer_run(w, &rc.cmd);
	OPENSSL_cleanse(rc.priv, strlen(rc.priv));
	free(rc.priv);
	free(rc.pub);
	if (kid)
		snprintf(kid, JOSE_KID_BYTES_MAX + 1, "%s", rc.kid);
	return err;
}

int auth_keys_rotate(struct writer *w, uint64_t now_ms, char *kid)
{
	return add_key(w, now_ms, false, kid);
}

int auth_open(struct auth **out, const struct config *c, struct store *s, struct writer *w,
	      struct rsd_fail *f)
{
	struct auth *a = rsd_calloc(1, sizeof(*a));
	a->config = c;
	a->store = s;
	a->writer = w;
	pthread_rwlock_init(&a->lock, NULL);
	int err = add_key(w, rsd_now_ms(), true, NULL);
	if (err == RSD_OK)
		err = load_keys(a);
	if (err) {
		auth_free(a);
		return rsd_failf(f, RSD_EIO, "", "cannot load the signing keys: %s",
				 rsd_strerror(err));
	}
	atomic_store(&a->checked_ms, rsd_now_ms());
	*out = a;
	return RSD_OK;
}

void auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	jose_ring_release(&a->ring);
	pthread_rwlock_destroy(&a->lock);
	OPENSSL_cleanse(a->refresh_key, sizeof(a->refresh_key));
	OPENSSL_cleanse(a->csrf_key, sizeof(a->csrf_key));
	OPENSSL_cleanse(a->login_key, sizeof(a->login_key));
	free(a);
}

/* Reloads the ring when another process rotated the key (checked at most once per
 * KEY_CHECK_INTERVAL_MS, or at once when force is set and the interval has passed). */
static void refresh_keys(struct auth *a, uint64_t now_ms)
{
	uint64_t last = atomic_load(&a->checked_ms);
	if (now_ms < last + KEY_CHECK_INTERVAL_MS ||
	    !atomic_compare_exchange_strong(&a->checked_ms, &last, now_ms))
		return;
	MDB_txn *txn;
	if (mdb_txn_begin(a->store->env, NULL, MDB_RDONLY, &txn))
		return;
	MDB_val v;
	bool changed = false;
	pthread_rwlock_rdlock(&a->lock);
	if (meta_get(txn, a->store, "skc", &v) == RSD_OK)
		changed = v.mv_size != strlen(a->current) ||
			  memcmp(v.mv_data, a->current, v.mv_size) != 0;
	pthread_rwlock_unlock(&a->lock);
	mdb_txn_abort(txn);
	if (!changed)
		return;
	pthread_rwlock_wrlock(&a->lock);
	if (load_keys(a) == RSD_OK)
		logger_log(LOGGER_INFO, "signing key rotated: now %s", a->current);
	pthread_rwlock_unlock(&a->lock);
}

/* --- tokens --- */

void auth_limits(const struct auth *a, struct session_limits *out)
{
	out->idle_ms = (uint64_t)a->config->session_idle_s * 1000;
	out->max_ms = (uint64_t)a->config->session_max_s * 1000;
	out->grace_ms = (uint64_t)a->config->refresh_grace_s * 1000;
}

int auth_access_ttl_s(const struct auth *a)
{
	return a->config->access_ttl_s;
}

const unsigned char *auth_login_key(const struct auth *a)
{
	return a->login_key;
}

const struct config *auth_config(const struct auth *a)
{
	return a->config;
}

/* The newest key made at least KEY_PUBLISH_LEAD_S ago, else the oldest; under the lock. */
static const char *published_kid(const struct auth *a, uint64_t now_ms)
{
	const char *newest_settled = NULL, *oldest = a->current;
	uint64_t settled_ms = 0, oldest_ms = UINT64_MAX;
	for (int i = 0; i < a->n_ages; i++) {
		const struct key_age *k = &a->ages[i];
		if (k->created_ms + KEY_PUBLISH_LEAD_S * 1000ull <= now_ms &&
		    (!newest_settled || k->created_ms > settled_ms)) {
			newest_settled = k->kid;
			settled_ms = k->created_ms;
		}
		if (k->created_ms < oldest_ms) {
			oldest = k->kid;
			oldest_ms = k->created_ms;
		}
	}
	return newest_settled ? newest_settled : oldest;
}

/* Signs claims with the current key, or with published_kid's when published. */
static int sign_claims(struct auth *a, const cJSON *claims, bool published, uint64_t now_ms,
		       char **out)
{
	pthread_rwlock_rdlock(&a->lock);
	const char *kid = published ? published_kid(a, now_ms) : a->current;
	const struct jose_key *k = jose_ring_find(&a->ring, kid);
	int err = k ? jose_sign(k, claims, out) : RSD_EINTERNAL;
	pthread_rwlock_unlock(&a->lock);
	return err == RSD_OK ? RSD_OK : RSD_EINTERNAL;
}

int auth_sign_access(struct auth *a, const struct principal *p, uint64_t now_ms, char **out)
{
	refresh_keys(a, now_ms);
	uint64_t now_s = now_ms / 1000;
	cJSON *claims = cJSON_CreateObject();
	cJSON_AddStringToObject(claims, "iss", a->config->public_url);
	cJSON_AddStringToObject(claims, "aud", AUTH_AUDIENCE);
	cJSON_AddStringToObject(claims, "sub", p->sub);
	cJSON_AddStringToObject(claims, "sid", p->sid);
	cJSON *roles = cJSON_AddArrayToObject(claims, "roles");
	cJSON_AddItemToArray(roles, cJSON_CreateString(session_role_name(p->role)));
	if (p->resort[0])
		cJSON_AddStringToObject(claims, "resort", p->resort);
	if (p->name[0])
		cJSON_AddStringToObject(claims, "name", p->name);
	cJSON_AddNumberToObject(claims, "iat", (double)now_s);
	cJSON_AddNumberToObject(claims, "exp", (double)(now_s + (uint64_t)a->config->access_ttl_s));
	int err = sign_claims(a, claims, false, now_ms, out);
	cJSON_Delete(claims);
	return err;
}

int auth_sign_published(struct auth *a, const cJSON *claims, uint64_t now_ms, char **out)
{
	refresh_keys(a, now_ms);
	return sign_claims(a, claims, true, now_ms, out);
}

/* The principal an access token's verified claims name. */
static int claims_principal(const cJSON *claims, struct principal *p, struct rsd_fail *f)
{
	const char *sub = json_get_string(claims, "sub"), *sid = json_get_string(claims, "sid");
	const char *resort = json_get_string(claims, "resort"),
		   *name = json_get_string(claims, "name");
	const cJSON *roles = cJSON_GetObjectItemCaseSensitive(claims, "roles"), *r;
	if (!sub || !sub[0] || strlen(sub) > PRINCIPAL_BYTES_MAX || !sid ||
	    strlen(sid) != SESSION_ID_BYTES || !cJSON_IsArray(roles) ||
	    (resort && strlen(resort) > ENTITY_ID_BYTES_MAX))
		return rsd_failf(f, RSD_EAUTH, "", "the token's claims are incomplete");
	memset(p, 0, sizeof(*p));
	snprintf(p->sub, sizeof(p->sub), "%s", sub);
	snprintf(p->sid, sizeof(p->sid), "%s", sid);
	snprintf(p->resort, sizeof(p->resort), "%s", resort ? resort : "");
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "");
	cJSON_ArrayForEach(r, roles)
	{
		enum role role = session_role_parse(cJSON_IsString(r) ? r->valuestring : "");
		if (role > p->role)
			p->role = role;
	}
	return RSD_OK;
}

static int verify(struct auth *a, const char *token, uint64_t now_ms, cJSON **claims,
		  struct rsd_fail *f)
{
	struct jose_expect e = {
		.iss = a->config->public_url, .aud = AUTH_AUDIENCE, .now_s = now_ms / 1000};
	pthread_rwlock_rdlock(&a->lock);
	int err = jose_verify(token, &a->ring, &e, claims, f);
	pthread_rwlock_unlock(&a->lock);
	if (err == RSD_ENOTFOUND) { /* maybe a key rotated in by another process */
		refresh_keys(a, now_ms);
		pthread_rwlock_rdlock(&a->lock);
		err = jose_verify(token, &a->ring, &e, claims, f);
		pthread_rwlock_unlock(&a->lock);
	}
	return err;
}

static bool token_hash(struct auth_cache *c, const char *token, unsigned char out[32])
{
	unsigned int n;
	return EVP_DigestInit_ex(c->md, c->sha256, NULL) == 1 &&
	       EVP_DigestUpdate(c->md, token, strnlen(token, JOSE_BYTES_MAX + 1)) == 1 &&
	       EVP_DigestFinal_ex(c->md, out, &n) == 1;
}

static unsigned slot_index(const unsigned char hash[32])
{
	return (hash[0] | (unsigned)hash[1] << 8 | (unsigned)hash[2] << 16) % TOKEN_CACHE_SLOTS;
}

unsigned auth_cache_slot(const char *token)
{
	unsigned char hash[32];
	unsigned int n;
	EVP_Digest(token, strnlen(token, JOSE_BYTES_MAX + 1), hash, &n, EVP_sha256(), NULL);
	return slot_index(hash);
}

/* Verifies token and fills slot with its principal. */
static int admit(struct auth *a, struct cache_slot *slot, const char *token,
		 const unsigned char hash[32], uint64_t now_ms, struct rsd_fail *f)
{
	cJSON *claims;
	int err = verify(a, token, now_ms, &claims, f);
	if (err) { /* any verification failure is a 401; the detail says which */
		f->field[0] = '\0';
		return err == RSD_EIO ? err : RSD_EAUTH;
	}
	slot->exp_s = 0; /* empty until filled */
	err = claims_principal(claims, &slot->who, f);
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
	uint64_t exp_s = (uint64_t)exp->valuedouble;
	cJSON_Delete(claims);
	if (err)
		return err;
	memcpy(slot->hash, hash, 32);
	slot->exp_s = exp_s;
	slot->checked_txnid = 0;
	slot->live_until_ms = 0;
	return RSD_OK;
}

int auth_bearer(struct auth *a, struct auth_cache *c, struct store_reader *r, const char *token,
		uint64_t now_ms, struct principal *out, struct rsd_fail *f)
{
	unsigned char hash[32];
	if (!token_hash(c, token, hash))
		return rsd_failf(f, RSD_EINTERNAL, "", "cannot hash the token");
	struct cache_slot *slot = &c->slots[slot_index(hash)];
	if (!(slot->exp_s > now_ms / 1000 && CRYPTO_memcmp(slot->hash, hash, 32) == 0)) {
		int err = admit(a, slot, token, hash, now_ms, f);
		if (err)
			return err;
	}
	uint64_t last = store_last_txnid(a->store);
	if (last == 0 || slot->checked_txnid != last || now_ms >= slot->live_until_ms) {
		MDB_txn *txn = store_reader_begin(r);
		if (txn == NULL)
			return rsd_failf(f, RSD_EIO, "", "cannot read the sessions");
		struct session_limits lim;
		auth_limits(a, &lim);
		struct session_times t;
		int err = session_check(txn, a->store, slot->who.sid, NULL, &lim, now_ms, NULL, &t,
					f);
		/* The snapshot's own id, never the meta page's: LMDB writes the meta page before
		 * it lets new readers see that commit, so the two differ for a moment, and a
		 * verdict read at N but filed under N+1 would outlive a revocation at N+1. */
		uint64_t seen = mdb_txn_id(txn);
		store_reader_end(r);
		if (err)
			return err;
		/* The token carries the role and resort it was made with; the IdP may have
		 * changed them since (idp_recheck.h): the client must refresh for a new one. */
		if (t.mark && t.mark != session_principal_mark(&slot->who))
			return rsd_failf(f, RSD_EAUTH, "",
					 "the session's role or resort has changed: refresh the "
					 "token");
		slot->checked_txnid = seen;
		slot->live_until_ms = t.until_ms;
	}
	*out = slot->who;
	return RSD_OK;
}

static void touch_done(struct command *cmd)
{
	free(cmd->arg); /* the session_cmd, which owns nothing else */
}

/* Submits a SESSION_TOUCH and forgets it: when the queue is full, a later request tries
 * again; two at once are harmless (the later time wins). */
static void touch(struct auth *a, const char *sid, uint64_t now_ms,
		  const struct session_limits *lim)
{
	struct session_cmd *sc = rsd_malloc(sizeof(*sc));
	session_cmd_init(sc, SESSION_TOUCH, now_ms);
	sc->lim = *lim;
	snprintf(sc->who.sid, sizeof(sc->who.sid), "%s", sid);
	sc->cmd.done = touch_done;
	if (writer_submit(a->writer, &sc->cmd) != RSD_OK)
		free(sc);
}

int auth_cookie(struct auth *a, struct store_reader *r, const char *value, uint64_t now_ms,
		struct principal *out, struct rsd_fail *f)
{
	const char *dot = strchr(value, '.');
	if (dot == NULL || dot - value != SESSION_ID_BYTES ||
	    strlen(dot + 1) != SESSION_TOKEN_BYTES)
		return rsd_failf(f, RSD_EAUTH, "", "the session cookie is malformed");
	char sid[SESSION_ID_BYTES + 1];
	memcpy(sid, value, SESSION_ID_BYTES);
	sid[SESSION_ID_BYTES] = '\0';
	struct session_limits lim;
	auth_limits(a, &lim);
	MDB_txn *txn = store_reader_begin(r);
	if (txn == NULL)
		return rsd_failf(f, RSD_EIO, "", "cannot read the sessions");
	struct session_times t;
	int err = session_check(txn, a->store, sid, dot + 1, &lim, now_ms, out, &t, f);
	store_reader_end(r);
	/* A browser never refreshes: its use restarts the idle clock, with one write per
	 * 1/SESSION_TOUCH_EVERY of the idle time, and none once the absolute end is nearer. */
	if (err == RSD_OK && t.until_ms == t.last_ms + lim.idle_ms &&
	    now_ms >= t.last_ms + lim.idle_ms / SESSION_TOUCH_EVERY)
		touch(a, sid, now_ms, &lim);
	return err;
}

static void mac_b64(const unsigned char key[32], const char *text, char out[44])
{
	unsigned char mac[32];
	unsigned int n = sizeof(mac);
	HMAC(EVP_sha256(), key, 32, (const unsigned char *)text, strlen(text), mac, &n);
	jose_b64url_encode(mac, sizeof(mac), out);
}

void auth_refresh_successor(struct auth *a, const char *token, char out[SESSION_TOKEN_BYTES + 1])
{
	mac_b64(a->refresh_key, token, out);
}

void auth_csrf_token(struct auth *a, const char *sid, char out[AUTH_CSRF_BYTES + 1])
{
	mac_b64(a->csrf_key, sid, out);
}

bool auth_csrf_ok(struct auth *a, const char *sid, const char *token)
{
	char want[AUTH_CSRF_BYTES + 1];
	auth_csrf_token(a, sid, want);
	return token && strlen(token) == AUTH_CSRF_BYTES &&
	       CRYPTO_memcmp(want, token, AUTH_CSRF_BYTES) == 0;
}

cJSON *auth_jwks(struct auth *a)
{
	refresh_keys(a, rsd_now_ms()); /* a rotated key is published before it signs */
	cJSON *doc = cJSON_CreateObject(), *keys = cJSON_AddArrayToObject(doc, "keys");
	pthread_rwlock_rdlock(&a->lock);
	for (int i = 0; i < a->ring.n; i++) {
		cJSON *jwk;
		if (jose_key_to_jwk(&a->ring.keys[i], &jwk) == RSD_OK)
			cJSON_AddItemToArray(keys, jwk);
	}
	pthread_rwlock_unlock(&a->lock);
	return doc;
}

struct auth_cache *auth_cache_new(void)
{
	struct auth_cache *c = rsd_calloc(1, sizeof(struct auth_cache));
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->md = EVP_MD_CTX_new();
	if (c->sha256 == NULL || c->md == NULL)
		rsd_fatal("cannot set up SHA-256");
	return c;
}

void auth_cache_free(struct auth_cache *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	free(c);
}
