/*
 * fuzz_oidc_callback.c — libFuzzer target for what GET /auth/callback decodes from the
 * browser: the rsd_oidc login cookie (oidc_cookie_decode), the return_to it carries
 * (oidc_return_to_ok), and the role map over an IdP's groups claim (oidc_map_role).
 *
 * The input is used three ways:
 *   1. as the cookie itself, with whatever MAC it brings: the MAC key is made afresh when
 *      the process starts, so no input can carry a valid one, and any RSD_OK is a forgery;
 *   2. as the cookie's payload, MAC'd here with that key (the fuzzer holds it, as the
 *      server does), so mutations reach the JSON decoding behind the MAC: a decoded login
 *      must have NUL-terminated fields that fit, and one the server could have made
 *      (see server_could_make) encodes back to a cookie that decodes to the same login;
 *   3. as a JSON groups claim for oidc_map_role: the role is always a known one.
 * The query string itself is parsed by evhttp and checked by http_req_query_only, which
 * the API tests cover (unknown, repeated and missing parameters).
 */
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "jose.h"
#include "oidc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS 1700000000000ull

static struct config config;
static struct oidc *oidc;
static unsigned char mac_key[32];

static void setup(void)
{
	config_defaults(&config);
	snprintf(config.oidc_issuer, sizeof(config.oidc_issuer), "%s", "https://idp.test");
	snprintf(config.oidc_client_id, sizeof(config.oidc_client_id), "%s", "resortd");
	snprintf(config.public_url, sizeof(config.public_url), "%s", "https://resort.test");
	snprintf(config.oidc_role_map, sizeof(config.oidc_role_map), "%s",
		 "staff=staff,managers=manager,admins=admin");
	snprintf(config.oidc_client_secret, sizeof(config.oidc_client_secret), "%s", "secret");
	config.oidc_probe_s = 0; /* no network */
	rsd_random(mac_key, sizeof(mac_key));
	struct rsd_fail f;
	if (oidc_open(&oidc, &config, mac_key, NULL, &f) != RSD_OK || oidc == NULL)
		abort();
}

static void check_login(const struct oidc_login *l)
{
	if (!memchr(l->state, '\0', sizeof(l->state)) ||
	    !memchr(l->nonce, '\0', sizeof(l->nonce)) ||
	    !memchr(l->verifier, '\0', sizeof(l->verifier)) ||
	    !memchr(l->return_to, '\0', sizeof(l->return_to)))
		abort();
	(void)oidc_return_to_ok(oidc, l->return_to);
}

/* The cookie as the server would have made it for this payload: b64url(payload).MAC */
static char *maced(const uint8_t *data, size_t size)
{
	char *c = malloc(jose_b64url_len(size) + 46);
	size_t m = jose_b64url_encode(data, size, c);
	unsigned char mac[32];
	unsigned int ml = sizeof(mac);
	HMAC(EVP_sha256(), mac_key, 32, (const unsigned char *)c, m, mac, &ml);
	c[m] = '.';
	jose_b64url_encode(mac, sizeof(mac), c + m + 1);
	return c;
}

/* Fields as the server writes them: state, nonce and verifier are base64url it drew, and
 * return_to passed oidc_return_to_ok (or is empty). Only such a login must survive being
 * encoded again: a MACed payload of raw control bytes (which the JSON printer escapes to six
 * bytes each) cannot come from this server, and may not fit the cookie once escaped. */
static bool b64url_only(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static bool server_could_make(const struct oidc_login *l)
{
	return b64url_only(l->state) && b64url_only(l->nonce) && b64url_only(l->verifier) &&
	       (l->return_to[0] == '\0' || oidc_return_to_ok(oidc, l->return_to));
}

static void round_trip(const struct oidc_login *l)
{
	char *again = oidc_cookie_encode(oidc, l->state, l->nonce, l->verifier, l->return_to,
					 NOW_MS + 1000);
	struct oidc_login l2;
	struct rsd_fail f;
	if (oidc_cookie_decode(oidc, again, NOW_MS, &l2, &f) != RSD_OK ||
	    strcmp(l->state, l2.state) != 0 || strcmp(l->nonce, l2.nonce) != 0 ||
	    strcmp(l->verifier, l2.verifier) != 0 || strcmp(l->return_to, l2.return_to) != 0)
		abort();
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (oidc == NULL)
		setup();
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct oidc_login l;
	struct rsd_fail f;
	memset(&f, 0, sizeof(f));
	if (oidc_cookie_decode(oidc, text, NOW_MS, &l, &f) != RSD_EAUTH || f.detail[0] == '\0')
		abort();

	char *cookie = maced(data, size);
	int rc = oidc_cookie_decode(oidc, cookie, NOW_MS, &l, &f);
	if (rc != RSD_OK && rc != RSD_EAUTH)
		abort();
	if (rc == RSD_OK) {
		check_login(&l);
		if (server_could_make(&l))
			round_trip(&l);
	}
	free(cookie);

	cJSON *groups = cJSON_ParseWithLength(text, size);
	enum role r = oidc_map_role(config.oidc_role_map, groups);
	if (r < ROLE_GUEST || r > ROLE_ADMIN)
		abort();
	cJSON_Delete(groups);
	free(text);
	return 0;
}
