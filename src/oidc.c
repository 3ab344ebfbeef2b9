/*
 * oidc.c — the relying party: an HTTPS client, discovery and JWKS caches, the code
 * exchange, id_token checks, login cookies and claim mapping.
 *
 * Threads: OIDC_THREADS threads take jobs from one queue. The caches (discovery, ring)
 * are guarded by o->mu; a call to the IdP is made without holding it.
 */
#include "oidc.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jose.h"
#include "json.h"
#include "logger.h"
#include "banned.h"

struct job {
	void (*fn)(struct oidc *o, void *arg);
	void (*done)(void *arg);
	void *arg;
	struct job *next;
};

struct oidc {
	const struct config *c;
	unsigned char mac_key[32];
	struct auth *signer;
	SSL_CTX *ssl;
	pthread_t threads[OIDC_THREADS];
	int nthreads;
	pthread_mutex_t mu; /* the queue and the caches below */
	pthread_cond_t cv;
	struct job *head, *tail;
	int queued;
	bool stopping;
	/* caches */
	char auth_endpoint[1024], token_endpoint[1024], jwks_uri[1024];
	uint64_t discovered_ms;
	struct jose_ring ring;
	uint64_t jwks_fetched_ms;
	/* what /readyz and /metrics show (under mu) */
	int reachable;	     /* -1 unknown, 0 no, 1 yes: the last call or probe */
	uint64_t failures;   /* calls and probes that failed */
	uint64_t checked_ms; /* when the last one ended */
	char error[OIDC_ERROR_BYTES];
	uint64_t next_probe_ms; /* 0: no probe (oidc_probe_s = 0) */
};

/* The redirect URI registered at the IdP: PUBLIC_URL/auth/callback (public_url is final
 * before any request: http.c fills the default in once it has bound its port). */
static void redirect_uri(const struct oidc *o, char *out, size_t cap)
{
	snprintf(out, cap, "%.600s/auth/callback", o->c->public_url);
}

/* --- a blocking HTTPS client --- */

struct https_resp {
	int status;
	char *body; /* NUL-terminated; caller frees */
	size_t len;
};

/* Splits https://host[:port]/path into its parts. */
static bool split_url(const char *url, char *host, size_t hostcap, char *port, char *path,
		      size_t pathcap)
{
	if (strncmp(url, "https://", 8) != 0)
		return false;
	const char *h = url + 8, *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	const char *colon = memchr(h, ':', hl);
	size_t name_len = colon ? (size_t)(colon - h) : hl;
	if (name_len == 0 || name_len >= hostcap)
		return false;
	memcpy(host, h, name_len);
	host[name_len] = '\0';
	size_t pl = colon ? hl - name_len - 1 : 3;
	if (pl == 0 || pl > 5)
		return false;
	memcpy(port, colon ? colon + 1 : "443", pl);
	port[pl] = '\0';
	snprintf(path, pathcap, "%s", slash ? slash : "/");
	return true;
}

static int connect_to(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int err = 0;
			socklen_t el = sizeof(err);
			rc = poll(&p, 1, timeout_ms) == 1 &&
					     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
					     err == 0
				     ? 0
				     : -1;
		}
		if (rc != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0) { /* blocking from here on, bounded by the socket timeouts */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
				     .tv_usec = (timeout_ms % 1000) * 1000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* Verifies the peer as host (a name, or an IP address literal). */
static bool set_peer_name(SSL *ssl, const char *host)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	unsigned char ip[16];
	bool literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	if (literal)
		return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1;
	return SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
}

/* Records how a call to the IdP (or a probe) ended; f says why when it failed. Returns
 * RSD_OK or RSD_EUPSTREAM, for `return note_reach(o, false, f)`. */
static int note_reach(struct oidc *o, bool ok, const struct rsd_fail *f)
{
	pthread_mutex_lock(&o->mu);
	o->reachable = ok;
	o->failures += !ok;
	o->checked_ms = rsd_now_ms();
	snprintf(o->error, sizeof(o->error), "%s", ok ? "" : f->detail);
	pthread_mutex_unlock(&o->mu);
	return ok ? RSD_OK : RSD_EUPSTREAM;
}

/* Reads the whole response (the server closes: HTTP/1.0) and splits status and body. */
static int read_response(SSL *ssl, struct https_resp *out, struct rsd_fail *f)
{
	size_t cap = 8192, n = 0;
	char *buf = rsd_malloc(cap);
	for (;;) {
		if (n + 4096 > cap) {
			if (cap >= OIDC_BODY_BYTES_MAX) {
				OPENSSL_cleanse(buf, n);
				free(buf);
				return rsd_failf(f, RSD_EUPSTREAM, "",
						 "the IdP's answer is too large");
			}
			buf = rsd_realloc(buf, cap *= 2);
		}
		int got = SSL_read(ssl, buf + n, (int)(cap - n - 1));
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	char *end = strstr(buf, "\r\n\r\n");
	int status = 0;
	if (end == NULL || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		OPENSSL_cleanse(buf, n);
		free(buf);
		return rsd_failf(f, RSD_EUPSTREAM, "", "the IdP's answer is not HTTP");
	}
	out->status = status;
	out->len = n - (size_t)(end + 4 - buf);
	out->body = rsd_malloc(out->len + 1);
	memcpy(out->body, end + 4, out->len);
	out->body[out->len] = '\0';
	OPENSSL_cleanse(buf, n); /* token answers hold refresh tokens */
	free(buf);
	return RSD_OK;
}

/* One HTTPS call: method url, an optional form body and Basic credentials. */
static int https_call(struct oidc *o, const char *method, const char *url, const char *form,
		      const char *basic, struct https_resp *out, struct rsd_fail *f)
{
	char host[256], port[8], path[1024];
	memset(out, 0, sizeof(*out));
	if (!split_url(url, host, sizeof(host), port, path, sizeof(path)))
		return rsd_failf(f, RSD_EUPSTREAM, "", "the IdP named a URL that is not https");
	int fd = connect_to(host, port, OIDC_CALL_TIMEOUT_MS);
	if (fd < 0) {
		rsd_failf(f, RSD_EUPSTREAM, "", "the identity provider cannot be reached");
		return note_reach(o, false, f);
	}
	SSL *ssl = SSL_new(o->ssl);
	int err = RSD_OK;
	if (ssl == NULL || !set_peer_name(ssl, host) || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1) {
		unsigned long e = ERR_get_error();
		err = rsd_failf(f, RSD_EUPSTREAM, "", "TLS with the identity provider failed: %s",
				e ? ERR_reason_error_string(e) : "handshake");
		goto out;
	}
	char head[2048];
	int hn = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: application/json\r\n"
			  "User-Agent: resortd\r\n%s%s%s",
			  method, path, host, port, basic ? "Authorization: Basic " : "",
			  basic ? basic : "", basic ? "\r\n" : "");
	if (form)
		hn += snprintf(head + hn, sizeof(head) - (size_t)hn,
			       "Content-Type: application/x-www-form-urlencoded\r\n"
			       "Content-Length: %zu\r\n",
			       strlen(form));
	hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "\r\n");
	if (hn >= (int)sizeof(head) || SSL_write(ssl, head, hn) != hn ||
	    (form && SSL_write(ssl, form, (int)strlen(form)) != (int)strlen(form))) {
		err = rsd_failf(f, RSD_EUPSTREAM, "", "cannot send to the identity provider");
		goto out;
	}
	err = read_response(ssl, out, f);
out:
	note_reach(o, err == RSD_OK, f);
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return err;
}

/* GETs url and parses a JSON object. */
static int get_json(struct oidc *o, const char *url, cJSON **doc, struct rsd_fail *f)
{
	struct https_resp r;
	int err = https_call(o, "GET", url, NULL, NULL, &r, f);
	if (err)
		return err;
	*doc = r.status == 200 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
	free(r.body);
	if (!cJSON_IsObject(*doc)) {
		cJSON_Delete(*doc);
		*doc = NULL;
		rsd_failf(f, RSD_EUPSTREAM, "", "the IdP answered %d without a JSON object",
			  r.status);
		return note_reach(o, false, f); /* it answers, but does not work */
	}
	return RSD_OK;
}

/* --- discovery and keys --- */

static bool copy_url(const cJSON *doc, const char *name, char *out, size_t cap)
{
	const char *v = json_get_string(doc, name);
	if (v == NULL || strncmp(v, "https://", 8) != 0 || strlen(v) >= cap)
		return false;
	snprintf(out, cap, "%s", v);
	return true;
}

/* Fetches the discovery document and caches its endpoints. */
static int fetch_discovery(struct oidc *o, struct rsd_fail *f)
{
	uint64_t now = rsd_now_ms();
	char url[700];
	snprintf(url, sizeof(url), "%s/.well-known/openid-configuration", o->c->oidc_issuer);
	cJSON *doc;
	int err = get_json(o, url, &doc, f);
	if (err)
		return err;
	char a[1024], t[1024], j[1024];
	const char *iss = json_get_string(doc, "issuer");
	bool ok = iss && strcmp(iss, o->c->oidc_issuer) == 0 &&
		  copy_url(doc, "authorization_endpoint", a, sizeof(a)) &&
		  copy_url(doc, "token_endpoint", t, sizeof(t)) &&
		  copy_url(doc, "jwks_uri", j, sizeof(j));
	cJSON_Delete(doc);
	if (!ok) {
		rsd_failf(f, RSD_EUPSTREAM, "",
			  "the IdP's discovery document is not for issuer %s or lacks an https "
			  "endpoint",
			  o->c->oidc_issuer);
		return note_reach(o, false, f);
	}
	pthread_mutex_lock(&o->mu);
	memcpy(o->auth_endpoint, a, sizeof(a));
	memcpy(o->token_endpoint, t, sizeof(t));
	memcpy(o->jwks_uri, j, sizeof(j));
	o->discovered_ms = now;
	pthread_mutex_unlock(&o->mu);
	return RSD_OK;
}

/* Makes sure the discovery document is cached. */
static int discover(struct oidc *o, struct rsd_fail *f)
{
	uint64_t now = rsd_now_ms();
	pthread_mutex_lock(&o->mu);
	bool fresh = o->discovered_ms && now < o->discovered_ms + OIDC_DISCOVERY_TTL_S * 1000ull;
	pthread_mutex_unlock(&o->mu);
	return fresh ? RSD_OK : fetch_discovery(o, f);
}

/* The periodic probe: the discovery document, fetched afresh, must be the IdP's own (an
 * IdP that answers with an error page is not working either; note_reach has the verdict). */
static void probe(struct oidc *o)
{
	pthread_mutex_lock(&o->mu);
	int before = o->reachable;
	pthread_mutex_unlock(&o->mu);
	struct rsd_fail f = {0};
	int err = fetch_discovery(o, &f);
	if (err && before != 0) /* the log says when it changes, not every probe */
		logger_log(LOGGER_WARN, "the IdP does not answer: %s", f.detail);
	else if (!err && before == 0)
		logger_log(LOGGER_INFO, "the IdP answers again");
}

/* Fetches the JWKS when none is cached or the cache is older than OIDC_DISCOVERY_TTL_S;
 * for an unknown kid, when the cache is older than OIDC_JWKS_REFETCH_S. */
static int fetch_jwks(struct oidc *o, bool unknown_kid, struct rsd_fail *f)
{
	uint64_t now = rsd_now_ms();
	char url[1024];
	pthread_mutex_lock(&o->mu);
	uint64_t ttl_ms = (unknown_kid ? OIDC_JWKS_REFETCH_S : OIDC_DISCOVERY_TTL_S) * 1000ull;
	uint64_t next_ms = o->jwks_fetched_ms + ttl_ms;
	bool recent = o->ring.n && now < next_ms;
	snprintf(url, sizeof(url), "%s", o->jwks_uri);
	pthread_mutex_unlock(&o->mu);
	if (recent && !unknown_kid)
		return RSD_OK;
	if (recent) /* rate-limited: this IdP thread waits its turn instead of failing */
		usleep((useconds_t)((next_ms - now) * 1000));
	cJSON *doc;
	int err = get_json(o, url, &doc, f);
	if (err)
		return err;
	struct jose_ring ring = {0};
	int skipped;
	err = jose_ring_add_jwks(&ring, doc, &skipped);
	cJSON_Delete(doc);
	if (err || ring.n == 0) {
		jose_ring_release(&ring);
		rsd_failf(f, RSD_EUPSTREAM, "", "the IdP's JWKS holds no usable key");
		return note_reach(o, false, f); /* it answers, but sign-in cannot work */
	}
	pthread_mutex_lock(&o->mu);
	jose_ring_release(&o->ring);
	o->ring = ring;
	o->jwks_fetched_ms = now;
	pthread_mutex_unlock(&o->mu);
	logger_log(LOGGER_INFO, "IdP keys fetched: %d usable, %d skipped", ring.n, skipped);
	return RSD_OK;
}

/* Appends value percent-encoded (RFC 3986 unreserved characters stay) to out. */
static void append_encoded(char *out, size_t cap, const char *value)
{
	size_t n = strlen(out);
	for (const unsigned char *p = (const unsigned char *)value; *p && n + 4 < cap; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
			     *p == '~';
		n += (size_t)(plain ? snprintf(out + n, cap - n, "%c", *p)
				    : snprintf(out + n, cap - n, "%%%02X", *p));
	}
}

/* Appends name=value (value percent-encoded) to a query or form. */
static void add_param(char *out, size_t cap, const char *name, const char *value)
{
	size_t n = strlen(out);
	snprintf(out + n, cap - n, "%s%s=", n && out[n - 1] != '?' ? "&" : "", name);
	append_encoded(out, cap, value);
}

int oidc_auth_url(struct oidc *o, const char *state, const char *nonce, const char *challenge,
		  char **url, struct rsd_fail *f)
{
	int err = discover(o, f);
	if (err)
		return err;
	size_t cap = 4096;
	char *u = rsd_malloc(cap);
	pthread_mutex_lock(&o->mu);
	snprintf(u, cap, "%s%s", o->auth_endpoint, strchr(o->auth_endpoint, '?') ? "&" : "?");
	pthread_mutex_unlock(&o->mu);
	add_param(u, cap, "response_type", "code");
	add_param(u, cap, "client_id", o->c->oidc_client_id);
	char back[640];
	redirect_uri(o, back, sizeof(back));
	add_param(u, cap, "redirect_uri", back);
	add_param(u, cap, "scope", o->c->oidc_scopes);
	add_param(u, cap, "state", state);
	add_param(u, cap, "nonce", nonce);
	add_param(u, cap, "code_challenge", challenge);
	add_param(u, cap, "code_challenge_method", "S256");
	*url = u;
	return RSD_OK;
}

static int verify_id_token(struct oidc *o, const char *id_token, const char *nonce, cJSON **claims,
			   struct rsd_fail *f)
{
	struct jose_expect e = {.iss = o->c->oidc_issuer,
				.aud = o->c->oidc_client_id,
				.azp = o->c->oidc_client_id,
				.nonce = nonce,
				.now_s = rsd_now_ms() / 1000,
				.leeway_s = o->c->oidc_leeway_s};
	int err = fetch_jwks(o, false, f); /* a no-op when the keys are cached */
	for (int attempt = 0; err == RSD_OK && attempt < 2; attempt++) {
		pthread_mutex_lock(&o->mu);
		err = jose_verify(id_token, &o->ring, &e, claims, f);
		pthread_mutex_unlock(&o->mu);
		if (err != RSD_ENOTFOUND || attempt == 1)
			break;
		/* An unknown kid: the IdP may have rotated its keys. fetch_jwks refetches at
		 * most once per OIDC_JWKS_REFETCH_S, so forged kids cannot flood the IdP. */
		err = fetch_jwks(o, true, f);
	}
	if (err == RSD_ENOTFOUND || err == RSD_EINVAL) {
		char why[RSD_DETAIL_BYTES_MAX];
		snprintf(why, sizeof(why), "%s", f->detail);
		return rsd_failf(f, RSD_EAUTH, "", "the IdP's id_token does not hold: %s", why);
	}
	return err;
}

/* client_secret_basic: RFC 6749 2.3.1 form-encodes id and secret before Base64. */
static void basic_credentials(const struct oidc *o, char out[820])
{
	char pair[600] = "";
	append_encoded(pair, sizeof(pair), o->c->oidc_client_id);
	snprintf(pair + strlen(pair), sizeof(pair) - strlen(pair), ":");
	append_encoded(pair, sizeof(pair), o->c->oidc_client_secret);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)pair, (int)strlen(pair));
	OPENSSL_cleanse(pair, sizeof(pair));
}

/* private_key_jwt (OpenID Connect Core 9, RFC 7523): a short-lived JWT naming resortd as
 * issuer and subject and the token endpoint as audience, signed with a key of resortd's
 * that the IdP finds in PUBLIC_URL/.well-known/jwks.json (auth_sign_published). */
static int add_client_assertion(struct oidc *o, const char *token_url, char *form, size_t cap,
				struct rsd_fail *f)
{
	uint64_t now_ms = rsd_now_ms();
	char jti[OIDC_STATE_BYTES + 1];
	oidc_new_secret(jti);
	cJSON *claims = cJSON_CreateObject();
	cJSON_AddStringToObject(claims, "iss", o->c->oidc_client_id);
	cJSON_AddStringToObject(claims, "sub", o->c->oidc_client_id);
	cJSON_AddStringToObject(claims, "aud", token_url);
	cJSON_AddStringToObject(claims, "jti", jti);
	cJSON_AddNumberToObject(claims, "iat", (double)(now_ms / 1000));
	cJSON_AddNumberToObject(claims, "exp", (double)(now_ms / 1000 + OIDC_ASSERTION_TTL_S));
	char *jwt = NULL;
	int err = auth_sign_published(o->signer, claims, now_ms, &jwt);
	cJSON_Delete(claims);
	if (err)
		return rsd_failf(f, RSD_EINTERNAL, "", "cannot sign the client assertion");
	add_param(form, cap, "client_id", o->c->oidc_client_id);
	add_param(form, cap, "client_assertion_type",
		  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	add_param(form, cap, "client_assertion", jwt);
	free(jwt);
	return RSD_OK;
}

/* POSTs form (grant_type and its parameters) to the IdP's token endpoint with resortd's
 * client authentication; *doc: the answer's JSON (caller frees), *status its HTTP status.
 * Errors: RSD_EUPSTREAM (unreachable, or the IdP refuses resortd's own credentials). */
static int token_call(struct oidc *o, char *form, size_t cap, cJSON **doc, int *status,
		      struct rsd_fail *f)
{
	*doc = NULL;
	int err = discover(o, f);
	if (err) {
		OPENSSL_cleanse(form, cap);
		return err;
	}
	char token_url[1024], basic[820] = "";
	pthread_mutex_lock(&o->mu);
	snprintf(token_url, sizeof(token_url), "%s", o->token_endpoint);
	pthread_mutex_unlock(&o->mu);
	if (o->c->oidc_private_key_jwt)
		err = add_client_assertion(o, token_url, form, cap, f);
	else
		basic_credentials(o, basic);
	struct https_resp r;
	if (err == RSD_OK)
		err = https_call(o, "POST", token_url, form, basic[0] ? basic : NULL, &r, f);
	OPENSSL_cleanse(basic, sizeof(basic));
	OPENSSL_cleanse(form, cap);
	if (err)
		return err;
	*doc = cJSON_ParseWithLength(r.body, r.len);
	OPENSSL_cleanse(r.body, r.len);
	free(r.body);
	*status = r.status;
	if (*doc == NULL) /* cut short by a timeout, or an HTML error page */
		return rsd_failf(f, RSD_EUPSTREAM, "",
				 "the IdP's token endpoint answered %d, not with JSON", r.status);
	const char *why = json_get_string(*doc, "error");
	if (r.status != 200 && why &&
	    (strcmp(why, "invalid_client") == 0 || strcmp(why, "unauthorized_client") == 0)) {
		rsd_failf(f, RSD_EUPSTREAM, "",
			  "the IdP refuses resortd's client credentials (%s): check oidc_client_id "
			  "and %s",
			  why,
			  o->c->oidc_private_key_jwt
				  ? "that the IdP has resortd's keys (/.well-known/jwks.json)"
				  : "oidc_client_secret");
		cJSON_Delete(*doc);
		*doc = NULL;
		return RSD_EUPSTREAM;
	}
	return RSD_OK;
}

static void drop_token(char **token)
{
	if (*token)
		OPENSSL_cleanse(*token, strlen(*token));
	free(*token);
	*token = NULL;
}

/* Takes the refresh token out of a token answer: *out is a copy (malloc'd), NULL when there
 * is none; the answer's own copy is wiped. Returns false when there is one too long to keep. */
static bool take_refresh_token(cJSON *doc, char **out)
{
	*out = NULL;
	cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, "refresh_token");
	if (!cJSON_IsString(item) || item->valuestring[0] == '\0')
		return true;
	size_t n = strlen(item->valuestring);
	if (n <= IDP_REFRESH_TOKEN_BYTES_MAX) {
		*out = rsd_malloc(n + 1);
		memcpy(*out, item->valuestring, n + 1);
	}
	OPENSSL_cleanse(item->valuestring, n);
	return n <= IDP_REFRESH_TOKEN_BYTES_MAX;
}

int oidc_exchange(struct oidc *o, const char *code, const char *verifier, const char *nonce,
		  cJSON **claims, char **refresh_token, struct rsd_fail *f)
{
	*claims = NULL;
	*refresh_token = NULL;
	char form[8192] = "";
	add_param(form, sizeof(form), "grant_type", "authorization_code");
	add_param(form, sizeof(form), "code", code);
	char back[640];
	redirect_uri(o, back, sizeof(back));
	add_param(form, sizeof(form), "redirect_uri", back);
	add_param(form, sizeof(form), "code_verifier", verifier);
	cJSON *doc;
	int status;
	int err = token_call(o, form, sizeof(form), &doc, &status, f);
	if (err)
		return err;
	const char *id_token = json_get_string(doc, "id_token");
	if (status != 200 || id_token == NULL) {
		const char *why = json_get_string(doc, "error");
		err = status >= 400 && status < 500
			      ? rsd_failf(f, RSD_EAUTH, "", "the IdP refused the code: %.64s",
					  why ? why : "no reason")
			      : rsd_failf(f, RSD_EUPSTREAM, "",
					  "the IdP's token endpoint answered %d", status);
		cJSON_Delete(doc);
		return err;
	}
	err = verify_id_token(o, id_token, nonce, claims, f);
	take_refresh_token(doc, refresh_token); /* one too long to keep: none */
	if (err)
		drop_token(refresh_token);
	cJSON_Delete(doc);
	return err;
}

int oidc_refresh(struct oidc *o, const char *refresh_token, cJSON **claims, char **next,
		 struct rsd_fail *f)
{
	*claims = NULL;
	*next = NULL;
	char form[8192] = "";
	add_param(form, sizeof(form), "grant_type", "refresh_token");
	add_param(form, sizeof(form), "refresh_token", refresh_token);
	cJSON *doc;
	int status;
	int err = token_call(o, form, sizeof(form), &doc, &status, f);
	if (err)
		return err;
	const char *why = json_get_string(doc, "error");
	if (status != 200) {
		/* RFC 6749 5.2: invalid_grant is the IdP saying the grant is gone (revoked,
		 * expired, the user disabled); 400 by the RFC, other 4xx from some IdPs. Anything
		 * else may be passing. */
		const char *text = json_get_string(doc, "error_description");
		err = status >= 400 && status < 500 && why && strcmp(why, "invalid_grant") == 0
			      ? rsd_failf(f, RSD_EAUTH, "", "the IdP ended the grant: %.64s",
					  text ? text : why)
			      : rsd_failf(f, RSD_EUPSTREAM, "",
					  "the IdP's token endpoint answered %d (%.64s)", status,
					  why ? why : "no error code");
		cJSON_Delete(doc);
		return err;
	}
	/* The grant holds. Its next refresh token is kept whatever the id_token says: the old
	 * one is spent now, and presenting it again would read as theft to the IdP. */
	if (!take_refresh_token(doc, next))
		err = rsd_failf(f, RSD_EINVAL, "",
				"the IdP's new refresh token is too long to keep");
	const char *id_token = json_get_string(doc, "id_token");
	/* OpenID Connect Core 12.2: an id_token may come back (its nonce, if any, is the first
	 * login's); without one the grant holding is all we learn. One that does not hold
	 * teaches nothing either: a clock or key problem here is no reason to end a session. */
	if (err == RSD_OK && id_token && verify_id_token(o, id_token, NULL, claims, f)) {
		cJSON_Delete(*claims); /* f says why; the answer stays RSD_OK */
		*claims = NULL;
	}
	cJSON_Delete(doc);
	return err;
}

/* --- threads --- */

/* Whether the probe is due; if so, the caller (holding mu) takes it. */
static bool take_probe(struct oidc *o)
{
	uint64_t now = rsd_mono_ns() / 1000000;
	if (o->next_probe_ms == 0 || now < o->next_probe_ms)
		return false;
	o->next_probe_ms = now + (uint64_t)o->c->oidc_probe_s * 1000;
	return true;
}

/* Waits on cv (holding mu) until signalled or the probe is due. */
static void wait_for_work(struct oidc *o)
{
	if (o->next_probe_ms == 0) {
		pthread_cond_wait(&o->cv, &o->mu);
		return;
	}
	struct timespec at = {.tv_sec = (time_t)(o->next_probe_ms / 1000),
			      .tv_nsec = (long)(o->next_probe_ms % 1000) * 1000000};
	pthread_cond_timedwait(&o->cv, &o->mu, &at);
}

static void *worker_main(void *arg)
{
	struct oidc *o = arg;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		bool probe_now = false;
		while (o->head == NULL && !o->stopping && !(probe_now = take_probe(o)))
			wait_for_work(o);
		if (probe_now) {
			pthread_mutex_unlock(&o->mu);
			probe(o);
			pthread_mutex_lock(&o->mu);
			continue;
		}
		if (o->head == NULL)
			break;
		struct job *j = o->head;
		o->head = j->next;
		if (o->head == NULL)
			o->tail = NULL;
		o->queued--;
		pthread_mutex_unlock(&o->mu);
		j->fn(o, j->arg);
		j->done(j->arg);
		free(j);
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

int oidc_run(struct oidc *o, void (*fn)(struct oidc *o, void *arg), void (*done)(void *arg),
	     void *arg)
{
	struct job *j = rsd_calloc(1, sizeof(*j));
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&o->mu);
	bool full = o->queued >= OIDC_JOBS_MAX || o->stopping;
	if (!full) {
		if (o->tail)
			o->tail->next = j;
		else
			o->head = j;
		o->tail = j;
		o->queued++;
		pthread_cond_signal(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
	if (full)
		free(j);
	return full ? RSD_EBUSY : RSD_OK;
}

int oidc_open(struct oidc **out, const struct config *c, const unsigned char mac_key[32],
	      struct auth *signer, struct rsd_fail *f)
{
	*out = NULL;
	if (c->oidc_issuer[0] == '\0')
		return RSD_OK;
	if (!c->oidc_client_id[0])
		return rsd_failf(f, RSD_EINVAL, "oidc_client_id",
				 "oidc_issuer needs oidc_client_id");
	if (c->oidc_private_key_jwt && signer == NULL)
		return rsd_failf(f, RSD_EINTERNAL, "oidc_client_auth",
				 "private_key_jwt needs resortd's signing keys");
	if (!c->oidc_private_key_jwt && !c->oidc_client_secret[0])
		return rsd_failf(f, RSD_EINVAL, "oidc_client_secret",
				 "oidc_client_auth client_secret_basic needs oidc_client_secret");
	struct oidc *o = rsd_calloc(1, sizeof(*o));
	o->c = c;
	o->signer = signer;
	memcpy(o->mac_key, mac_key, 32);
	o->reachable = -1;
	o->ssl = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(o->ssl, TLS1_2_VERSION);
	SSL_CTX_set_verify(o->ssl, SSL_VERIFY_PEER, NULL);
	/* Our HTTP/1.0 reads end at the peer's close; a missing close_notify is no error. */
	SSL_CTX_set_options(o->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	int ok = c->oidc_ca_file[0] ? SSL_CTX_load_verify_locations(o->ssl, c->oidc_ca_file, NULL)
				    : SSL_CTX_set_default_verify_paths(o->ssl);
	if (ok != 1) {
		SSL_CTX_free(o->ssl);
		free(o);
		return rsd_failf(f, RSD_EINVAL, "oidc_ca_file",
				 "cannot load CA certificates from %s",
				 c->oidc_ca_file[0] ? c->oidc_ca_file : "the system");
	}
	pthread_mutex_init(&o->mu, NULL);
	/* Probe deadlines are on the monotonic clock, so the wall clock may step. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (c->oidc_probe_s > 0) /* the first probe at once: /readyz knows soon after start */
		o->next_probe_ms = rsd_mono_ns() / 1000000;
	for (int i = 0; i < OIDC_THREADS; i++)
		if (pthread_create(&o->threads[o->nthreads], NULL, worker_main, o) == 0)
			pthread_setname_np(o->threads[o->nthreads++], "rsd-idp");
	if (o->nthreads == 0)
		rsd_fatal("cannot start the IdP threads");
	*out = o;
	return RSD_OK;
}

void oidc_free(struct oidc *o)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (int i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	jose_ring_release(&o->ring);
	SSL_CTX_free(o->ssl);
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	OPENSSL_cleanse(o->mac_key, sizeof(o->mac_key));
	free(o);
}

void oidc_status_get(struct oidc *o, struct oidc_status *out)
{
	pthread_mutex_lock(&o->mu);
	out->reachable = o->reachable;
	out->failures = o->failures;
	out->checked_ms = o->checked_ms;
	snprintf(out->error, sizeof(out->error), "%s", o->error);
	pthread_mutex_unlock(&o->mu);
}

/* --- secrets, cookies, return_to --- */

void oidc_new_secret(char out[OIDC_STATE_BYTES + 1])
{
	unsigned char raw[32];
	rsd_random(raw, sizeof(raw));
	jose_b64url_encode(raw, sizeof(raw), out);
}

void oidc_challenge(const char *verifier, char out[OIDC_STATE_BYTES + 1])
{
	unsigned char h[32];
	SHA256((const unsigned char *)verifier, strlen(verifier), h);
	jose_b64url_encode(h, sizeof(h), out);
}

static void cookie_mac(const struct oidc *o, const char *payload, size_t n, char out[44])
{
	unsigned char mac[32];
	unsigned int ml = sizeof(mac);
	HMAC(EVP_sha256(), o->mac_key, 32, (const unsigned char *)payload, n, mac, &ml);
	jose_b64url_encode(mac, sizeof(mac), out);
}

char *oidc_cookie_encode(const struct oidc *o, const char *state, const char *nonce,
			 const char *verifier, const char *return_to, uint64_t expires_ms)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "s", state);
	cJSON_AddStringToObject(j, "n", nonce);
	cJSON_AddStringToObject(j, "v", verifier);
	cJSON_AddStringToObject(j, "r", return_to ? return_to : "");
	cJSON_AddNumberToObject(j, "e", (double)expires_ms);
	char *text = json_print(j);
	cJSON_Delete(j);
	size_t n = strlen(text);
	char *out = rsd_malloc(jose_b64url_len(n) + 46);
	size_t m = jose_b64url_encode((const unsigned char *)text, n, out);
	free(text);
	out[m] = '.';
	cookie_mac(o, out, m, out + m + 1);
	return out;
}

static bool copy_field(const cJSON *j, const char *name, char *out, size_t cap)
{
	const char *v = json_get_string(j, name);
	if (v == NULL || strlen(v) >= cap)
		return false;
	snprintf(out, cap, "%s", v);
	return true;
}

int oidc_cookie_decode(const struct oidc *o, const char *cookie, uint64_t now_ms,
		       struct oidc_login *out, struct rsd_fail *f)
{
	const char *dot = cookie ? strrchr(cookie, '.') : NULL;
	if (dot == NULL || strlen(dot + 1) != 43 || dot - cookie > 4096)
		return rsd_failf(f, RSD_EAUTH, "", "no login in progress in this browser");
	char want[44];
	cookie_mac(o, cookie, (size_t)(dot - cookie), want);
	if (CRYPTO_memcmp(want, dot + 1, 43) != 0)
		return rsd_failf(f, RSD_EAUTH, "", "the login cookie was not made here");
	unsigned char raw[3200];
	long n = jose_b64url_decode(cookie, (size_t)(dot - cookie), raw);
	cJSON *j = n > 0 ? cJSON_ParseWithLength((const char *)raw, (size_t)n) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "e");
	bool ok = cJSON_IsNumber(e) && copy_field(j, "s", out->state, sizeof(out->state)) &&
		  copy_field(j, "n", out->nonce, sizeof(out->nonce)) &&
		  copy_field(j, "v", out->verifier, sizeof(out->verifier)) &&
		  copy_field(j, "r", out->return_to, sizeof(out->return_to));
	bool expired = ok && (double)now_ms > e->valuedouble;
	cJSON_Delete(j);
	if (!ok)
		return rsd_failf(f, RSD_EAUTH, "", "the login cookie is malformed");
	if (expired)
		return rsd_failf(f, RSD_EAUTH, "", "the login took too long; start again");
	return RSD_OK;
}

bool oidc_return_to_ok(const struct oidc *o, const char *r)
{
	if (r == NULL || r[0] == '\0' || strlen(r) >= 1024)
		return false;
	for (const char *p = r; *p; p++)
		if ((unsigned char)*p < 0x21 || *p == '\\' || (unsigned char)*p == 0x7f)
			return false;
	if (r[0] == '/')
		return r[1] != '/';
	size_t n = strlen(o->c->public_url);
	return strncmp(r, o->c->public_url, n) == 0 && (r[n] == '/' || r[n] == '\0');
}

/* --- claims --- */

enum role oidc_map_role(const char *role_map, const cJSON *groups)
{
	enum role best = ROLE_GUEST;
	const cJSON *g;
	cJSON_ArrayForEach(g, groups)
	{
		if (!cJSON_IsString(g))
			continue;
		size_t gl = strlen(g->valuestring);
		for (const char *p = role_map; p && *p;) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			const char *eq = memchr(p, '=', len);
			if (eq && (size_t)(eq - p) == gl && strncmp(p, g->valuestring, gl) == 0) {
				char role[16];
				size_t rl = len - gl - 1;
				if (rl < sizeof(role)) {
					memcpy(role, eq + 1, rl);
					role[rl] = '\0';
					enum role r = session_role_parse(role);
					if (r > best)
						best = r;
				}
			}
			p = comma ? comma + 1 : NULL;
		}
	}
	return best;
}

int oidc_principal(const struct oidc *o, const cJSON *claims, struct principal *who,
		   cJSON **profile, struct rsd_fail *f)
{
	const char *sub = json_get_string(claims, "sub");
	if (sub == NULL || sub[0] == '\0' || strlen(sub) > 255)
		return rsd_failf(f, RSD_EAUTH, "", "the id_token has no usable sub");
	/* A local id from the pair (iss, sub), which OIDC says is unique and stable. */
	unsigned char h[32];
	size_t il = strlen(o->c->oidc_issuer) + 1, sl = strlen(sub);
	unsigned char *pair = rsd_malloc(il + sl);
	memcpy(pair, o->c->oidc_issuer, il);
	memcpy(pair + il, sub, sl);
	SHA256(pair, il + sl, h);
	free(pair);
	char id[48];
	jose_b64url_encode(h, 18, id);
	memset(who, 0, sizeof(*who));
	snprintf(who->sub, sizeof(who->sub), "u_%s", id);
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(claims, "groups");
	who->role = oidc_map_role(o->c->oidc_role_map, groups);
	const char *resort = json_get_string(claims, "resort");
	if (who->role >= ROLE_STAFF && resort && strlen(resort) <= ENTITY_ID_BYTES_MAX)
		snprintf(who->resort, sizeof(who->resort), "%s", resort);
	const char *name = json_get_string(claims, "name");
	const char *email = json_get_string(claims, "email");
	snprintf(who->name, sizeof(who->name), "%s", name ? name : email ? email : "");
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "sub", who->sub);
	cJSON_AddStringToObject(p, "iss", o->c->oidc_issuer);
	cJSON_AddStringToObject(p, "idp_sub", sub);
	cJSON_AddStringToObject(p, "name", who->name);
	if (email)
		cJSON_AddStringToObject(p, "email", email);
	if (cJSON_IsArray(groups))
		cJSON_AddItemToObject(p, "groups", cJSON_Duplicate(groups, 1));
	cJSON_AddStringToObject(p, "role", session_role_name(who->role));
	*profile = p;
	return RSD_OK;
}
