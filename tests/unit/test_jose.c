/*
 * Unit tests for jose.c: the attack matrix jose_verify must refuse (alg none, algorithm
 * confusion, a key used for another algorithm, every claim check, tampering, malformed
 * compact serializations), the tokens it must accept (jose_sign, libjwt RS256 against a
 * key imported from a JWKS, an EC key through jose_key_to_jwk and back), the JWKS entries
 * it must skip, the ring, and base64url.
 *
 * Tokens under attack are built by hand with OpenSSL (token_make), so that the header and
 * payload bytes are exactly what a test says; positives also go through libjwt, so that
 * what libjwt produces is what jose_verify accepts. One ES256 key ("es1") and one RSA-2048
 * key ("rs1") are made once for the whole group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"

#define NOW    1700000000ull
#define LEEWAY 60
#define ISS    "https://idp.test"
#define AUD    "resortd"

/* Keys made once per run: a P-256 key and an RSA-2048 key, as PEMs. */
static char *es_priv, *es_pub, *rsa_priv, *rsa_pub;
static EVP_PKEY *rsa_pk;
static struct jose_ring ring;

static char *pem_of(EVP_PKEY *pk, bool private_key)
{
	BIO *b = BIO_new(BIO_s_mem());
	int ok = private_key ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
			     : PEM_write_bio_PUBKEY(b, pk);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *out = ok == 1 && n > 0 ? strndup(data, (size_t)n) : NULL;
	BIO_free(b);
	return out;
}

static int group_setup(void **state)
{
	(void)state;
	if (jose_es256_generate(&es_priv, &es_pub) != RSD_OK)
		return -1;
	rsa_pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (rsa_pk == NULL)
		return -1;
	rsa_priv = pem_of(rsa_pk, true);
	rsa_pub = pem_of(rsa_pk, false);
	if (rsa_priv == NULL || rsa_pub == NULL)
		return -1;
	memset(&ring, 0, sizeof(ring));
	if (jose_ring_add(&ring, "es1", JOSE_ES256, es_pub, es_priv) != RSD_OK ||
	    jose_ring_add(&ring, "rs1", JOSE_RS256, rsa_pub, rsa_priv) != RSD_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	jose_ring_release(&ring);
	free(es_priv);
	free(es_pub);
	free(rsa_priv);
	free(rsa_pub);
	EVP_PKEY_free(rsa_pk);
	return 0;
}

/* --- building tokens by hand --- */

static char *b64(const void *p, size_t n)
{
	char *out = malloc(jose_b64url_len(n) + 1);
	jose_b64url_encode(p, n, out);
	return out;
}

static char *b64s(const char *s)
{
	return b64(s, strlen(s));
}

enum how { SIG_NONE, SIG_ES256, SIG_RS256, SIG_HS256 };

/* The JWS signature of input by how with key (a private PEM, or the HMAC secret), as
 * base64url; "" for SIG_NONE. */
static char *signature(const char *input, enum how how, const char *key)
{
	unsigned char sig[512];
	size_t n = 0;
	if (how == SIG_NONE)
		return strdup("");
	if (how == SIG_HS256) {
		unsigned int len = 0;
		HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)input,
		     strlen(input), sig, &len);
		return b64(sig, len);
	}
	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(pk);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[512];
	size_t der_len = sizeof(der);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(
		EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	if (how == SIG_RS256) {
		memcpy(sig, der, der_len);
		n = der_len;
	} else {
		/* JWS wants R || S, each 32 bytes, not OpenSSL's DER. */
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		assert_non_null(es);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
		ECDSA_SIG_free(es);
		n = 64;
	}
	return b64(sig, n);
}

/* Joins three segments with dots (caller frees). */
static char *join3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
	char *out = malloc(n);
	snprintf(out, n, "%s.%s.%s", a, b, c);
	return out;
}

/* A compact token of header and payload (JSON texts, used byte for byte), signed. */
static char *token_make(const char *header, const char *payload, enum how how, const char *key)
{
	char *h = b64s(header), *p = b64s(payload);
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);
	snprintf(input, n, "%s.%s", h, p);
	char *sig = signature(input, how, key);
	char *out = join3(h, p, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return out;
}

/* A token whose segments are given as already encoded text; the signature is computed over
 * them as they are. */
static char *token_make_raw(const char *h, const char *p, enum how how, const char *key)
{
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);
	snprintf(input, n, "%s.%s", h, p);
	char *sig = signature(input, how, key);
	char *out = join3(h, p, sig);
	free(input);
	free(sig);
	return out;
}

#define ES_HEADER "{\"alg\":\"ES256\",\"kid\":\"es1\",\"typ\":\"JWT\"}"
#define RS_HEADER "{\"alg\":\"RS256\",\"kid\":\"rs1\",\"typ\":\"JWT\"}"

/* A payload with the usual claims; extra (may be "") is appended inside the object. */
static char *payload_with(long long exp_off, long long iat_off, const char *extra)
{
	size_t cap = strlen(extra) + 256;
	char *out = malloc(cap);
	snprintf(out, cap,
		 "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u_1\",\"iat\":%lld,"
		 "\"exp\":%lld%s}",
		 (long long)NOW + iat_off, (long long)NOW + exp_off, extra);
	return out;
}

static char *es_token(const char *payload)
{
	return token_make(ES_HEADER, payload, SIG_ES256, es_priv);
}

static struct jose_expect expect(void)
{
	struct jose_expect e = {.iss = ISS, .aud = AUD, .now_s = NOW, .leeway_s = LEEWAY};
	return e;
}

/* jose_verify's result; claims must be set exactly on success. */
static int verify_with(const char *token, const struct jose_ring *r, const struct jose_expect *e)
{
	cJSON *claims = (cJSON *)1;
	struct rsd_fail f;
	memset(&f, 0, sizeof(f));
	int err = jose_verify(token, r, e, &claims, &f);
	if (err == RSD_OK) {
		assert_non_null(claims);
		assert_true(cJSON_IsObject(claims));
	} else {
		assert_null(claims);
		assert_true(f.detail[0] != '\0');
		/* The detail never echoes the token. */
		if (strlen(token) > 20)
			assert_null(strstr(f.detail, token));
	}
	cJSON_Delete(claims);
	return err;
}

static int verify(const char *token)
{
	struct jose_expect e = expect();
	return verify_with(token, &ring, &e);
}

/* Verifies payload signed by es1 against e; frees what it makes. */
static int verify_payload(char *payload, const struct jose_expect *e)
{
	char *t = es_token(payload);
	int err = verify_with(t, &ring, e);
	free(t);
	free(payload);
	return err;
}

/* --- the good path first, so that the refusals below refuse for their own reason --- */

static void test_hand_made_tokens_verify(void **state)
{
	(void)state;
	char *p = payload_with(300, -10, "");
	char *t = es_token(p);
	assert_int_equal(verify(t), RSD_OK);
	free(t);
	t = token_make(RS_HEADER, p, SIG_RS256, rsa_priv);
	assert_int_equal(verify(t), RSD_OK);
	free(t);
	/* No typ is fine too. */
	t = token_make("{\"kid\":\"es1\",\"alg\":\"ES256\"}", p, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_OK);
	free(t);
	free(p);
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	const char *kids[] = {"es1", "rs1"};
	for (size_t i = 0; i < 2; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "iss", ISS);
		cJSON_AddStringToObject(c, "aud", AUD);
		cJSON_AddStringToObject(c, "sub", "staff:alice");
		cJSON_AddNumberToObject(c, "iat", (double)NOW);
		cJSON_AddNumberToObject(c, "exp", (double)NOW + 600);
		char *tok;
		assert_int_equal(jose_sign(jose_ring_find(&ring, kids[i]), c, &tok), RSD_OK);
		cJSON_Delete(c);
		cJSON *claims = NULL;
		struct jose_expect e = expect();
		assert_int_equal(jose_verify(tok, &ring, &e, &claims, NULL), RSD_OK);
		assert_string_equal(cJSON_GetObjectItem(claims, "sub")->valuestring, "staff:alice");
		cJSON_Delete(claims);
		/* The header names the key and its algorithm. */
		char *dot = strchr(tok, '.');
		unsigned char hdr[256];
		long n = jose_b64url_decode(tok, (size_t)(dot - tok), hdr);
		assert_true(n > 0);
		cJSON *h = cJSON_ParseWithLength((const char *)hdr, (size_t)n);
		assert_string_equal(cJSON_GetObjectItem(h, "kid")->valuestring, kids[i]);
		assert_string_equal(cJSON_GetObjectItem(h, "alg")->valuestring,
				    i == 0 ? "ES256" : "RS256");
		cJSON_Delete(h);
		free(tok);
	}
	/* A key without a private PEM cannot sign. */
	struct jose_key pub = {.kid = "x", .alg = JOSE_ES256, .pub_pem = es_pub};
	cJSON *c = cJSON_CreateObject();
	char *tok = (char *)1;
	assert_int_equal(jose_sign(&pub, c, &tok), RSD_EINVAL);
	assert_null(tok);
	cJSON_Delete(c);
}

/* --- the attack matrix --- */

static void test_alg_none(void **state)
{
	(void)state;
	char *p = payload_with(300, -10, "");
	const char *headers[] = {
		"{\"alg\":\"none\",\"kid\":\"es1\"}",
		"{\"alg\":\"none\"}",
		"{\"alg\":\"None\",\"kid\":\"es1\"}",
		"{\"alg\":\"NONE\",\"kid\":\"rs1\"}",
		"{\"kid\":\"es1\"}", /* no alg at all */
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		/* Without a signature part: "h.p." and "h.p". */
		char *t = token_make(headers[i], p, SIG_NONE, NULL);
		assert_int_equal(verify(t), RSD_EINVAL);
		t[strlen(t) - 1] = '\0';
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
		/* With a signature part: a real ES256 signature over the same input. */
		t = token_make(headers[i], p, SIG_ES256, es_priv);
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
	}
	free(p);
}

static void test_hs256_keyed_with_public_pem(void **state)
{
	(void)state;
	const struct {
		const char *kid;
		const char *pem;
	} keys[] = {{"es1", es_pub}, {"rs1", rsa_pub}};
	for (size_t i = 0; i < 2; i++) {
		/* Through libjwt, as an attacker holding the published key would. */
		jwt_t *jwt = NULL;
		assert_int_equal(jwt_new(&jwt), 0);
		assert_int_equal(jwt_add_grant(jwt, "iss", ISS), 0);
		assert_int_equal(jwt_add_grant(jwt, "aud", AUD), 0);
		assert_int_equal(jwt_add_grant(jwt, "sub", "u_admin"), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "iat", (long)NOW), 0);
		assert_int_equal(jwt_add_grant_int(jwt, "exp", (long)NOW + 300), 0);
		assert_int_equal(jwt_add_header(jwt, "kid", keys[i].kid), 0);
		assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)keys[i].pem,
					     (int)strlen(keys[i].pem)),
				 0);
		char *t = jwt_encode_str(jwt);
		jwt_free(jwt);
		assert_non_null(t);
		/* The attack is real: libjwt alone accepts it with the public PEM. */
		jwt_t *dec = NULL;
		assert_int_equal(jwt_decode(&dec, t, (const unsigned char *)keys[i].pem,
					    (int)strlen(keys[i].pem)),
				 0);
		jwt_free(dec);
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
		/* And by hand, claiming the key's own algorithm in the header. */
		char hdr[128];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\"}",
			 i == 0 ? "ES256" : "RS256", keys[i].kid);
		char *p = payload_with(300, -10, "");
		t = token_make(hdr, p, SIG_HS256, keys[i].pem);
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
		/* And with a duplicate alg: cJSON reads the first, jansson the last. */
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"alg\":\"HS256\"}",
			 i == 0 ? "ES256" : "RS256", keys[i].kid);
		t = token_make(hdr, p, SIG_HS256, keys[i].pem);
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
		free(p);
	}
}

static void test_rsa_signature_for_es256_kid(void **state)
{
	(void)state;
	char *p = payload_with(300, -10, "");
	/* Honest header: RS256, but the kid names the ES256 key. */
	char *t = token_make("{\"alg\":\"RS256\",\"kid\":\"es1\"}", p, SIG_RS256, rsa_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	/* Lying header: ES256 for es1, but an RSA signature. */
	t = token_make("{\"alg\":\"ES256\",\"kid\":\"es1\"}", p, SIG_RS256, rsa_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	/* And the other way: an ES256 signature under the RSA key's kid. */
	t = token_make("{\"alg\":\"ES256\",\"kid\":\"rs1\"}", p, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	t = token_make("{\"alg\":\"RS256\",\"kid\":\"rs1\"}", p, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	/* RS512 is a valid algorithm, but not the one rs1 was registered for. */
	t = token_make("{\"alg\":\"RS512\",\"kid\":\"rs1\"}", p, SIG_RS256, rsa_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	free(p);
}

static void test_expiry_and_leeway(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	/* RFC 7519 4.1.4: not accepted on or after exp (plus the leeway). */
	assert_int_equal(verify_payload(payload_with(-LEEWAY - 1, -1000, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(-LEEWAY, -1000, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(-100000, -200000, ""), &e), RSD_EINVAL);
	/* Just inside the leeway: expired by the clock, accepted for the skew. */
	assert_int_equal(verify_payload(payload_with(-LEEWAY + 1, -1000, ""), &e), RSD_OK);
	assert_int_equal(verify_payload(payload_with(-1, -1000, ""), &e), RSD_OK);
	e.leeway_s = 0;
	assert_int_equal(verify_payload(payload_with(-1, -1000, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(0, -1000, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(1, -1000, ""), &e), RSD_OK);
}

static void test_nbf_in_future(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	char extra[64];
	snprintf(extra, sizeof(extra), ",\"nbf\":%llu", NOW + LEEWAY + 1);
	assert_int_equal(verify_payload(payload_with(600, -10, extra), &e), RSD_EINVAL);
	snprintf(extra, sizeof(extra), ",\"nbf\":%llu", NOW + 3600);
	assert_int_equal(verify_payload(payload_with(7200, -10, extra), &e), RSD_EINVAL);
	snprintf(extra, sizeof(extra), ",\"nbf\":%llu", NOW + LEEWAY);
	assert_int_equal(verify_payload(payload_with(600, -10, extra), &e), RSD_OK);
	assert_int_equal(verify_payload(payload_with(600, -10, ",\"nbf\":\"0\""), &e), RSD_EINVAL);
}

static void test_iat_in_future(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	assert_int_equal(verify_payload(payload_with(600, LEEWAY + 1, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(7200, 3600, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(600, LEEWAY, ""), &e), RSD_OK);
}

static void test_missing_or_odd_times(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	char p[256];
	const char *bad[] = {
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%llu}",		/* no exp */
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%llu}",		/* no iat */
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,\"exp\":\"%llu\"}", /* text */
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":\"1\",\"exp\":%llu}", /* text */
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,\"exp\":1e400,\"x\":%llu}",
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,\"exp\":null,\"x\":%llu}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(p, sizeof(p), bad[i], NOW + 600);
		char *t = es_token(p);
		if (verify_with(t, &ring, &e) != RSD_EINVAL)
			fail_msg("accepted: %s", p);
		free(t);
	}
}

static void test_wrong_issuer(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	char p[256];
	const char *iss[] = {"\"https://evil.test\"", "\"https://idp.test/\"", "\"\"", "1", "null"};
	for (size_t i = 0; i < sizeof(iss) / sizeof(iss[0]); i++) {
		snprintf(p, sizeof(p), "{\"iss\":%s,\"aud\":\"" AUD "\",\"iat\":%llu,\"exp\":%llu}",
			 iss[i], NOW, NOW + 600);
		char *t = es_token(p);
		assert_int_equal(verify_with(t, &ring, &e), RSD_EINVAL);
		free(t);
	}
	snprintf(p, sizeof(p), "{\"aud\":\"" AUD "\",\"iat\":%llu,\"exp\":%llu}", NOW, NOW + 600);
	char *t = es_token(p);
	assert_int_equal(verify_with(t, &ring, &e), RSD_EINVAL);
	e.iss = NULL; /* not checked */
	assert_int_equal(verify_with(t, &ring, &e), RSD_OK);
	free(t);
}

/* A payload with aud (JSON text) and extra members. */
static char *aud_payload(const char *aud, const char *extra)
{
	char *out = malloc(512);
	snprintf(out, 512, "{\"iss\":\"" ISS "\",\"aud\":%s,\"iat\":%llu,\"exp\":%llu%s}", aud, NOW,
		 NOW + 600, extra);
	return out;
}

static void test_wrong_audience(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	const char *bad[] = {
		"\"other\"", "\"resortd \"", "\"RESORTD\"", "[\"other\"]", "[\"a\",\"b\"]",
		"[]",	     "null",	     "1",	    "{}",	   "[\"resortd\",1]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (verify_payload(aud_payload(bad[i], ""), &e) != RSD_EINVAL)
			fail_msg("accepted aud %s", bad[i]);
	/* No aud at all. */
	char p[256];
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"iat\":%llu,\"exp\":%llu}", NOW, NOW + 600);
	char *t = es_token(p);
	assert_int_equal(verify_with(t, &ring, &e), RSD_EINVAL);
	free(t);
	/* Ours, as a string or alone in an array. */
	assert_int_equal(verify_payload(aud_payload("\"resortd\"", ""), &e), RSD_OK);
	assert_int_equal(verify_payload(aud_payload("[\"resortd\"]", ""), &e), RSD_OK);
}

static void test_azp_with_several_audiences(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	e.azp = AUD;
	const char *several = "[\"other\",\"resortd\"]";
	assert_int_equal(verify_payload(aud_payload(several, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(aud_payload(several, ",\"azp\":\"other\""), &e),
			 RSD_EINVAL);
	assert_int_equal(verify_payload(aud_payload(several, ",\"azp\":1"), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(aud_payload(several, ",\"azp\":\"resortd\""), &e), RSD_OK);
	/* One audience: azp may be absent, but when present it must be ours. */
	assert_int_equal(verify_payload(aud_payload("\"resortd\"", ""), &e), RSD_OK);
	assert_int_equal(verify_payload(aud_payload("[\"resortd\"]", ""), &e), RSD_OK);
	assert_int_equal(verify_payload(aud_payload("\"resortd\"", ",\"azp\":\"other\""), &e),
			 RSD_EINVAL);
	assert_int_equal(verify_payload(aud_payload("\"resortd\"", ",\"azp\":\"resortd\""), &e),
			 RSD_OK);
}

static void test_nonce(void **state)
{
	(void)state;
	struct jose_expect e = expect();
	e.nonce = "n-0S6_WzA2Mj";
	assert_int_equal(verify_payload(payload_with(600, -10, ",\"nonce\":\"n-0S6_WzA2Mk\""), &e),
			 RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(600, -10, ""), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(600, -10, ",\"nonce\":null"), &e), RSD_EINVAL);
	assert_int_equal(verify_payload(payload_with(600, -10, ",\"nonce\":\"n-0S6_WzA2Mj\""), &e),
			 RSD_OK);
}

static void test_unknown_kid(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	char *t = token_make("{\"alg\":\"ES256\",\"kid\":\"es2\"}", p, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_ENOTFOUND);
	free(t);
	/* A kid that is not a string, or none, is malformed rather than unknown. */
	const char *bad[] = {"{\"alg\":\"ES256\"}", "{\"alg\":\"ES256\",\"kid\":1}",
			     "{\"alg\":\"ES256\",\"kid\":null}",
			     "{\"alg\":\"ES256\",\"kid\":[\"es1\"]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = token_make(bad[i], p, SIG_ES256, es_priv);
		assert_int_equal(verify(t), RSD_EINVAL);
		free(t);
	}
	/* An empty ring knows no kid. */
	struct jose_ring empty;
	memset(&empty, 0, sizeof(empty));
	struct jose_expect e = expect();
	t = es_token(p);
	assert_int_equal(verify_with(t, &empty, &e), RSD_ENOTFOUND);
	free(t);
	free(p);
}

static void test_tampered_payload(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	char *t = es_token(p);
	assert_int_equal(verify(t), RSD_OK);
	/* Same header and signature, sub changed. */
	char *h_end = strchr(t, '.'), *sig = strrchr(t, '.') + 1;
	char *p2 = b64s("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u_2\",\"iat\":1,"
			"\"exp\":9999999999}");
	char *hdr = strndup(t, (size_t)(h_end - t));
	char *forged = join3(hdr, p2, sig);
	assert_int_equal(verify(forged), RSD_EINVAL);
	free(forged);
	/* One character of the payload changed. */
	char *flip = strdup(t);
	char *c = h_end - t + flip + 5;
	*c = *c == 'A' ? 'B' : 'A';
	assert_int_equal(verify(flip), RSD_EINVAL);
	free(flip);
	/* The header swapped for another one that names the same key. */
	char *h2 = b64s("{\"alg\":\"ES256\",\"kid\":\"es1\"}");
	char *body = strndup(h_end + 1, (size_t)(sig - 1 - (h_end + 1)));
	forged = join3(h2, body, sig);
	assert_int_equal(verify(forged), RSD_EINVAL);
	free(forged);
	free(body);
	free(h2);
	free(hdr);
	free(p2);
	free(t);
	free(p);
}

static void test_tampered_signature(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	const char *keys[] = {"es1", "rs1"};
	for (size_t k = 0; k < 2; k++) {
		char *t = k == 0 ? es_token(p) : token_make(RS_HEADER, p, SIG_RS256, rsa_priv);
		assert_int_equal(verify(t), RSD_OK);
		char *sig = strrchr(t, '.') + 1;
		size_t sig_len = strlen(sig);
		/* Flip a character at a few places (never the last, whose low bits are slack). */
		size_t at[] = {0, 1, sig_len / 2, sig_len - 3};
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			char *x = strdup(t);
			char *c = x + (sig - t) + at[i];
			*c = *c == 'A' ? 'B' : 'A';
			if (verify(x) != RSD_EINVAL)
				fail_msg("%s: flipped signature byte %zu accepted", keys[k], at[i]);
			free(x);
		}
		/* Truncated, and empty. */
		char *x = strdup(t);
		x[strlen(x) - 4] = '\0';
		assert_int_equal(verify(x), RSD_EINVAL);
		x[sig - t] = '\0';
		assert_int_equal(verify(x), RSD_EINVAL);
		free(x);
		/* Another token's signature. */
		char *p2 = payload_with(601, -10, "");
		char *t2 = k == 0 ? es_token(p2) : token_make(RS_HEADER, p2, SIG_RS256, rsa_priv);
		size_t n = (size_t)(sig - t) + strlen(strrchr(t2, '.') + 1) + 1;
		x = malloc(n);
		snprintf(x, n, "%.*s%s", (int)(sig - t), t, strrchr(t2, '.') + 1);
		assert_int_equal(verify(x), RSD_EINVAL);
		free(x);
		free(t2);
		free(p2);
		free(t);
	}
	free(p);
}

static void test_crit_header(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	const char *headers[] = {
		"{\"alg\":\"ES256\",\"kid\":\"es1\",\"crit\":[\"exp\"],\"exp\":1}",
		"{\"alg\":\"ES256\",\"kid\":\"es1\",\"crit\":[]}",
		"{\"alg\":\"ES256\",\"kid\":\"es1\",\"crit\":null}",
		"{\"alg\":\"ES256\",\"kid\":\"es1\",\"crit\":[\"b64\"],\"b64\":false}",
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *t = token_make(headers[i], p, SIG_ES256, es_priv);
		if (verify(t) != RSD_EINVAL)
			fail_msg("accepted header %s", headers[i]);
		free(t);
	}
	free(p);
}

static void test_segment_count(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	char *t = es_token(p);
	size_t n = strlen(t) + 16;
	char *x = malloc(n);
	const char *forms[] = {"%s.", "%s.e30", "%s..", ".%s", "%s.e30.e30"};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(x, n, forms[i], t);
		if (verify(x) != RSD_EINVAL)
			fail_msg("accepted form %s", forms[i]);
	}
	/* Two segments: the signature dropped. */
	snprintf(x, n, "%.*s", (int)(strrchr(t, '.') - t), t);
	assert_int_equal(verify(x), RSD_EINVAL);
	const char *junk[] = {"",    ".",     "..",	     "...",	      "a",
			      "a.b", "a.b.c", "e30.e30.e30", "\x01.\x02.\x03"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (verify(junk[i]) != RSD_EINVAL)
			fail_msg("accepted junk %zu", i);
	free(x);
	free(t);
	free(p);
}

static void test_over_long_token(void **state)
{
	(void)state;
	/* The longest signed token that fits is accepted; the shortest that does not fit is
	 * refused, signature and all. */
	char *pad = malloc(JOSE_BYTES_MAX + 64);
	char *fits = NULL, *too_long = NULL;
	for (size_t k = JOSE_BYTES_MAX / 2; k < JOSE_BYTES_MAX; k++) {
		snprintf(pad, JOSE_BYTES_MAX + 64, ",\"pad\":\"%0*d\"", (int)k, 0);
		char *pl = payload_with(600, -10, pad);
		char *t = es_token(pl);
		free(pl);
		if (strlen(t) <= JOSE_BYTES_MAX) {
			free(fits);
			fits = t;
		} else {
			too_long = t;
			break;
		}
	}
	assert_non_null(fits);
	assert_non_null(too_long);
	assert_true(strlen(fits) > JOSE_BYTES_MAX - 4);
	assert_int_equal(verify(fits), RSD_OK);
	assert_int_equal(verify(too_long), RSD_EINVAL);
	free(fits);
	free(too_long);
	/* Megabytes of dots are refused without being read past the cap. */
	size_t big = 1 << 20;
	char *dots = malloc(big + 1);
	memset(dots, 'A', big);
	dots[100] = dots[200] = '.';
	dots[big] = '\0';
	assert_int_equal(verify(dots), RSD_EINVAL);
	free(dots);
	free(pad);
}

static void test_base64_refusals(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	char *h = b64s(ES_HEADER), *pb = b64s(p);
	size_t hn = strlen(h), pn = strlen(pb);
	/* The correct token, for reference. */
	char *t = token_make_raw(h, pb, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_OK);
	free(t);
	/* Padding in the header or the payload, with a signature over the padded text. */
	char seg[2048];
	snprintf(seg, sizeof(seg), "%s%s", h, hn % 4 == 2 ? "==" : hn % 4 == 3 ? "=" : "====");
	t = token_make_raw(seg, pb, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	snprintf(seg, sizeof(seg), "%s%s", pb, pn % 4 == 2 ? "==" : pn % 4 == 3 ? "=" : "====");
	t = token_make_raw(h, seg, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	/* Invalid characters: standard base64's + and /, a space, a NUL-free control. */
	const char bad_chars[] = {'+', '/', ' ', '\t', '\n', '=', '*', '\x7f'};
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		snprintf(seg, sizeof(seg), "%s", h);
		seg[hn / 2] = bad_chars[i];
		t = token_make_raw(seg, pb, SIG_ES256, es_priv);
		if (verify(t) != RSD_EINVAL)
			fail_msg("header with 0x%02x accepted", bad_chars[i]);
		free(t);
		snprintf(seg, sizeof(seg), "%s", pb);
		seg[pn / 2] = bad_chars[i];
		t = token_make_raw(h, seg, SIG_ES256, es_priv);
		if (verify(t) != RSD_EINVAL)
			fail_msg("payload with 0x%02x accepted", bad_chars[i]);
		free(t);
	}
	/* A length of 4k+1 is never base64url. */
	snprintf(seg, sizeof(seg), "%sA", pn % 4 == 0 ? pb : "AAAA");
	t = token_make_raw(h, seg, SIG_ES256, es_priv);
	assert_int_equal(verify(t), RSD_EINVAL);
	free(t);
	free(h);
	free(pb);
	free(p);
}

/* Sets the lowest slack bit of a base64url text whose length is 4k+2 or 4k+3: the same
 * bytes, spelled a second way. */
static void set_slack_bit(char *text)
{
	char *c = &text[strlen(text) - 1];
	*c = *c == 'z' ? '0' : *c == 'Z' ? 'a' : *c == '9' ? '-' : (char)(*c + 1);
}

/* A segment with slack bits set must be refused, even under a valid signature over it. */
static void test_base64_non_canonical_segments(void **state)
{
	(void)state;
	int tried = 0;
	for (int pad = 0; pad < 4; pad++) {
		char hdr[128], extra[64];
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"es1\",\"x\":\"%.*s\"}",
			 pad, "xxxx");
		snprintf(extra, sizeof(extra), ",\"x\":\"%.*s\"", pad, "xxxx");
		char *p = payload_with(600, -10, extra);
		char *h = b64s(hdr), *pb = b64s(p);
		char *t = token_make_raw(h, pb, SIG_ES256, es_priv);
		assert_int_equal(verify(t), RSD_OK);
		free(t);
		if (strlen(h) % 4) {
			set_slack_bit(h);
			t = token_make_raw(h, pb, SIG_ES256, es_priv);
			assert_int_equal(verify(t), RSD_EINVAL);
			free(t);
			tried++;
			free(h);
			h = b64s(hdr);
		}
		if (strlen(pb) % 4) {
			set_slack_bit(pb);
			t = token_make_raw(h, pb, SIG_ES256, es_priv);
			assert_int_equal(verify(t), RSD_EINVAL);
			free(t);
			tried++;
		}
		free(h);
		free(pb);
		free(p);
	}
	assert_true(tried >= 4);
}

static void test_non_object_segments(void **state)
{
	(void)state;
	char *p = payload_with(600, -10, "");
	const char *headers[] = {"[]",
				 "\"ES256\"",
				 "null",
				 "1",
				 "[{\"alg\":\"ES256\",\"kid\":\"es1\"}]",
				 "",
				 "not json",
				 "{\"alg\":\"ES256\",\"kid\":\"es1\""};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *t = token_make(headers[i], p, SIG_ES256, es_priv);
		if (verify(t) != RSD_EINVAL)
			fail_msg("accepted header '%s'", headers[i]);
		free(t);
	}
	char inner[512];
	snprintf(inner, sizeof(inner), "[%s]", p);
	const char *payloads[] = {"[]", "\"x\"", "null", "1", inner, "", "{\"exp\":"};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		char *t = token_make(ES_HEADER, payloads[i], SIG_ES256, es_priv);
		if (verify(t) != RSD_EINVAL)
			fail_msg("accepted payload '%s'", payloads[i]);
		free(t);
	}
	free(p);
}

/* --- JWKS --- */

/* base64url of an RSA parameter of rsa_pk. */
static char *rsa_param_b64(const char *param)
{
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(rsa_pk, param, &bn), 1);
	int n = BN_num_bytes(bn);
	unsigned char *buf = malloc((size_t)n);
	BN_bn2bin(bn, buf);
	char *out = b64(buf, (size_t)n);
	free(buf);
	BN_free(bn);
	return out;
}

static void test_jwks_rsa_key_verifies_libjwt_rs256(void **state)
{
	(void)state;
	char *n = rsa_param_b64(OSSL_PKEY_PARAM_RSA_N), *e = rsa_param_b64(OSSL_PKEY_PARAM_RSA_E);
	assert_string_equal(e, "AQAB");
	char doc[2048];
	snprintf(doc, sizeof(doc),
		 "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"idp-1\",\"use\":\"sig\",\"alg\":\"RS256\","
		 "\"n\":\"%s\",\"e\":\"%s\"},{\"kty\":\"RSA\",\"kid\":\"idp-2\",\"n\":\"%s\","
		 "\"e\":\"%s\"}]}",
		 n, e, n, e);
	cJSON *jwks = cJSON_Parse(doc);
	struct jose_ring r;
	memset(&r, 0, sizeof(r));
	int skipped = -1;
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	cJSON_Delete(jwks);
	assert_int_equal(skipped, 0);
	assert_int_equal(r.n, 2);
	const struct jose_key *k = jose_ring_find(&r, "idp-1");
	assert_non_null(k);
	assert_int_equal(k->alg, JOSE_RS256);
	assert_null(k->priv_pem);
	/* The imported public key is the same key. */
	assert_string_equal(k->pub_pem, rsa_pub);
	assert_int_equal(jose_ring_find(&r, "idp-2")->alg, JOSE_RS256); /* by type */
	/* A token as an IdP would sign it, with libjwt. */
	jwt_t *jwt = NULL;
	assert_int_equal(jwt_new(&jwt), 0);
	char claims[256];
	snprintf(claims, sizeof(claims),
		 "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u_42\",\"iat\":%llu,"
		 "\"exp\":%llu,\"nonce\":\"abc\"}",
		 NOW, NOW + 300);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	assert_int_equal(jwt_add_header(jwt, "kid", "idp-1"), 0);
	assert_int_equal(jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)rsa_priv,
				     (int)strlen(rsa_priv)),
			 0);
	char *t = jwt_encode_str(jwt);
	jwt_free(jwt);
	assert_non_null(t);
	struct jose_expect ex = expect();
	ex.nonce = "abc";
	ex.azp = AUD;
	assert_int_equal(verify_with(t, &r, &ex), RSD_OK);
	/* Its kid is not in our own ring. */
	assert_int_equal(verify(t), RSD_ENOTFOUND);
	free(t);
	jose_ring_release(&r);
	free(n);
	free(e);
}

static void test_jwks_ec_round_trip(void **state)
{
	(void)state;
	cJSON *jwk;
	assert_int_equal(jose_key_to_jwk(jose_ring_find(&ring, "es1"), &jwk), RSD_OK);
	assert_string_equal(cJSON_GetObjectItem(jwk, "kty")->valuestring, "EC");
	assert_string_equal(cJSON_GetObjectItem(jwk, "crv")->valuestring, "P-256");
	assert_string_equal(cJSON_GetObjectItem(jwk, "kid")->valuestring, "es1");
	assert_string_equal(cJSON_GetObjectItem(jwk, "alg")->valuestring, "ES256");
	assert_string_equal(cJSON_GetObjectItem(jwk, "use")->valuestring, "sig");
	assert_int_equal(strlen(cJSON_GetObjectItem(jwk, "x")->valuestring), 43);
	assert_int_equal(strlen(cJSON_GetObjectItem(jwk, "y")->valuestring), 43);
	assert_null(cJSON_GetObjectItem(jwk, "d")); /* never the private part */
	cJSON *jwks = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(jwks, "keys"), jwk);
	struct jose_ring r;
	memset(&r, 0, sizeof(r));
	int skipped = -1;
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	assert_int_equal(skipped, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.keys[0].alg, JOSE_ES256);
	assert_string_equal(r.keys[0].pub_pem, es_pub);
	/* A token signed with the original key verifies against the imported one. */
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "iss", ISS);
	cJSON_AddStringToObject(c, "aud", AUD);
	cJSON_AddNumberToObject(c, "iat", (double)NOW);
	cJSON_AddNumberToObject(c, "exp", (double)NOW + 60);
	char *t;
	assert_int_equal(jose_sign(jose_ring_find(&ring, "es1"), c, &t), RSD_OK);
	cJSON_Delete(c);
	struct jose_expect e = expect();
	assert_int_equal(verify_with(t, &r, &e), RSD_OK);
	free(t);
	/* Adding the same document again: the kid is taken, so every key is skipped. */
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	assert_int_equal(skipped, 1);
	assert_int_equal(r.n, 1);
	cJSON_Delete(jwks);
	jose_ring_release(&r);
	/* The RSA key has a JWK too, and it imports as the same key. */
	assert_int_equal(jose_key_to_jwk(jose_ring_find(&ring, "rs1"), &jwk), RSD_OK);
	assert_string_equal(cJSON_GetObjectItem(jwk, "kty")->valuestring, "RSA");
	assert_string_equal(cJSON_GetObjectItem(jwk, "e")->valuestring, "AQAB");
	jwks = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(jwks, "keys"), jwk);
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	assert_int_equal(skipped, 0);
	assert_string_equal(r.keys[0].pub_pem, rsa_pub);
	cJSON_Delete(jwks);
	jose_ring_release(&r);
	/* Not a public key PEM. */
	struct jose_key junk = {.kid = "j", .alg = JOSE_ES256, .pub_pem = "-----BEGIN nothing"};
	jwk = (cJSON *)1;
	assert_int_equal(jose_key_to_jwk(&junk, &jwk), RSD_EINVAL);
	assert_null(jwk);
}

/* An RSA JWK with n of bits bits (a fresh key) and e, as JSON members. */
static char *rsa_members(int bits)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	assert_non_null(pk);
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	unsigned char buf[512];
	int n = BN_bn2bin(bn, buf);
	char *nb = b64(buf, (size_t)n);
	char *out = malloc(strlen(nb) + 64);
	snprintf(out, strlen(nb) + 64, "\"n\":\"%s\",\"e\":\"AQAB\"", nb);
	free(nb);
	BN_free(bn);
	EVP_PKEY_free(pk);
	return out;
}

/* Copies tmpl into out, replacing each "@K" by vals[K - 'A'] (K a capital letter). */
static void subst(const char *tmpl, const char *const *vals, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = tmpl; *p; p++) {
		const char *v = NULL;
		if (p[0] == '@' && p[1] >= 'A' && p[1] <= 'Z')
			v = vals[p[1] - 'A'];
		size_t n = v ? strlen(v) : 1;
		assert_true(o + n < cap);
		memcpy(out + o, v ? v : p, n);
		o += n;
		p += v ? 1 : 0;
	}
	out[o] = '\0';
}

static void test_jwks_skips(void **state)
{
	(void)state;
	cJSON *jwk;
	assert_int_equal(jose_key_to_jwk(jose_ring_find(&ring, "es1"), &jwk), RSD_OK);
	char x[64], y[64];
	snprintf(x, sizeof(x), "%s", cJSON_GetObjectItem(jwk, "x")->valuestring);
	snprintf(y, sizeof(y), "%s", cJSON_GetObjectItem(jwk, "y")->valuestring);
	cJSON_Delete(jwk);
	char *n = rsa_param_b64(OSSL_PKEY_PARAM_RSA_N);
	char *rsa1024 = rsa_members(1024);
	/* x with one byte too few (31 bytes) and too many (33 bytes). */
	unsigned char raw[40], raw33[33] = {0};
	assert_int_equal(jose_b64url_decode(x, strlen(x), raw), 32);
	memcpy(raw33 + 1, raw, 32);
	char *x31 = b64(raw, 31), *x33 = b64(raw33, 33);
	/* A point off the curve: one character of y changed. */
	char yoff[64];
	snprintf(yoff, sizeof(yoff), "%s", y);
	yoff[10] = yoff[10] == 'A' ? 'B' : 'A';
	char long_kid[JOSE_KID_BYTES_MAX + 2];
	memset(long_kid, 'k', JOSE_KID_BYTES_MAX + 1);
	long_kid[JOSE_KID_BYTES_MAX + 1] = '\0';
	/* @A n of our RSA-2048 key, @B n and e of an RSA-1024 key, @C x of 31 bytes, @D x of
	 * 33 bytes, @E y, @F x, @G y off the curve, @H a kid one byte too long. */
	const char *const vals[] = {n, rsa1024, x31, x33, y, x, yoff, long_kid};
	const char *tmpl[] = {
		/* use enc */
		"{\"kty\":\"RSA\",\"kid\":\"a\",\"use\":\"enc\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"EC\",\"kid\":\"a2\",\"use\":\"enc\",\"crv\":\"P-256\",\"x\":\"@F\","
		"\"y\":\"@E\"}",
		/* symmetric */
		"{\"kty\":\"oct\",\"kid\":\"b\",\"k\":\"c2VjcmV0\"}",
		"{\"kty\":\"oct\",\"kid\":\"b2\",\"alg\":\"HS256\",\"k\":\"c2VjcmV0\"}",
		/* RSA 1024 */
		"{\"kty\":\"RSA\",\"kid\":\"c\",@B}",
		"{\"kty\":\"RSA\",\"kid\":\"c2\",\"alg\":\"RS256\",@B}",
		/* EC coordinates of the wrong length */
		"{\"kty\":\"EC\",\"kid\":\"d\",\"crv\":\"P-256\",\"x\":\"@C\",\"y\":\"@E\"}",
		"{\"kty\":\"EC\",\"kid\":\"d2\",\"crv\":\"P-256\",\"x\":\"@D\",\"y\":\"@E\"}",
		"{\"kty\":\"EC\",\"kid\":\"d3\",\"crv\":\"P-384\",\"x\":\"@F\",\"y\":\"@E\"}",
		/* alg that does not go with kty */
		"{\"kty\":\"RSA\",\"kid\":\"e\",\"alg\":\"ES256\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"EC\",\"kid\":\"f\",\"alg\":\"RS256\",\"crv\":\"P-256\",\"x\":\"@F\","
		"\"y\":\"@E\"}",
		"{\"kty\":\"EC\",\"kid\":\"g\",\"alg\":\"ES384\",\"crv\":\"P-256\",\"x\":\"@F\","
		"\"y\":\"@E\"}",
		"{\"kty\":\"RSA\",\"kid\":\"h\",\"alg\":\"PS256\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":\"h2\",\"alg\":\"none\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":\"h3\",\"alg\":7,\"n\":\"@A\",\"e\":\"AQAB\"}",
		/* no kid, or one that is not a string, empty or too long */
		"{\"kty\":\"RSA\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":7,\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":\"\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":\"@H\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		/* other types and curves */
		"{\"kty\":\"OKP\",\"kid\":\"i\",\"crv\":\"Ed25519\",\"x\":\"@F\"}",
		"{\"kty\":\"EC\",\"kid\":\"j\",\"crv\":\"P-521\",\"x\":\"@F\",\"y\":\"@E\"}",
		"{\"kty\":\"EC\",\"kid\":\"j2\",\"crv\":\"secp256k1\",\"x\":\"@F\",\"y\":\"@E\"}",
		"{\"kty\":\"EC\",\"kid\":\"j3\",\"x\":\"@F\",\"y\":\"@E\"}",
		"{\"kid\":\"j4\",\"n\":\"@A\",\"e\":\"AQAB\"}",
		/* an EC point that is not on the curve */
		"{\"kty\":\"EC\",\"kid\":\"k\",\"crv\":\"P-256\",\"x\":\"@F\",\"y\":\"@G\"}",
		/* malformed parameters */
		"{\"kty\":\"RSA\",\"kid\":\"l\",\"n\":\"@A=\",\"e\":\"AQAB\"}",
		"{\"kty\":\"RSA\",\"kid\":\"l2\",\"n\":\"@A\"}",
		"{\"kty\":\"RSA\",\"kid\":\"l3\",\"n\":\"@A\",\"e\":\"\"}",
		"{\"kty\":\"RSA\",\"kid\":\"l4\",\"n\":1,\"e\":\"AQAB\"}",
		"{\"kty\":\"EC\",\"kid\":\"l5\",\"crv\":\"P-256\",\"x\":\"@F\"}",
		/* use present but not a string */
		"{\"kty\":\"RSA\",\"kid\":\"m\",\"use\":1,\"n\":\"@A\",\"e\":\"AQAB\"}",
		/* not an object */
		"\"@F\"",
		"[]",
	};
	size_t ntmpl = sizeof(tmpl) / sizeof(tmpl[0]);
	size_t cap = 64 * 1024, used = 0;
	char *doc = malloc(cap), *entry = malloc(4096), *one = malloc(4200);
	used += (size_t)snprintf(doc, cap, "{\"keys\":[");
	for (size_t i = 0; i < ntmpl; i++) {
		subst(tmpl[i], vals, entry, 4096);
		used += (size_t)snprintf(doc + used, cap - used, "%s,", entry);
		/* Each one alone is skipped, too. */
		snprintf(one, 4200, "{\"keys\":[%s]}", entry);
		cJSON *j = cJSON_Parse(one);
		assert_non_null(j);
		struct jose_ring r;
		memset(&r, 0, sizeof(r));
		int skipped = -1;
		assert_int_equal(jose_ring_add_jwks(&r, j, &skipped), RSD_OK);
		if (skipped != 1 || r.n != 0)
			fail_msg("not skipped: %s", entry);
		cJSON_Delete(j);
		jose_ring_release(&r);
	}
	/* One good key at the end. */
	snprintf(doc + used, cap - used,
		 "{\"kty\":\"EC\",\"kid\":\"good\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
		 x, y);
	cJSON *jwks = cJSON_Parse(doc);
	assert_non_null(jwks);
	struct jose_ring r;
	memset(&r, 0, sizeof(r));
	int skipped = -1;
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	assert_int_equal(skipped, (int)ntmpl);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.keys[0].kid, "good");
	assert_int_equal(r.keys[0].alg, JOSE_ES256);
	cJSON_Delete(jwks);
	jose_ring_release(&r);
	/* Not a JWKS at all. */
	const char *not_jwks[] = {"{}", "{\"keys\":{}}", "[]", "{\"Keys\":[]}", "{\"keys\":null}"};
	for (size_t i = 0; i < sizeof(not_jwks) / sizeof(not_jwks[0]); i++) {
		cJSON *j = cJSON_Parse(not_jwks[i]);
		assert_int_equal(jose_ring_add_jwks(&r, j, &skipped), RSD_EINVAL);
		cJSON_Delete(j);
	}
	/* An empty one is fine. */
	cJSON *j = cJSON_Parse("{\"keys\":[]}");
	assert_int_equal(jose_ring_add_jwks(&r, j, &skipped), RSD_OK);
	assert_int_equal(skipped, 0);
	cJSON_Delete(j);
	free(one);
	free(entry);
	free(doc);
	free(x31);
	free(x33);
	free(rsa1024);
	free(n);
}

static void test_jwks_ring_full(void **state)
{
	(void)state;
	cJSON *jwk;
	assert_int_equal(jose_key_to_jwk(jose_ring_find(&ring, "es1"), &jwk), RSD_OK);
	cJSON *jwks = cJSON_CreateObject();
	cJSON *keys = cJSON_AddArrayToObject(jwks, "keys");
	for (int i = 0; i < JOSE_KEYS_MAX + 3; i++) {
		cJSON *k = cJSON_Duplicate(jwk, 1);
		char kid[16];
		snprintf(kid, sizeof(kid), "k%d", i);
		cJSON_ReplaceItemInObject(k, "kid", cJSON_CreateString(kid));
		cJSON_AddItemToArray(keys, k);
	}
	cJSON_Delete(jwk);
	struct jose_ring r;
	memset(&r, 0, sizeof(r));
	int skipped = -1;
	assert_int_equal(jose_ring_add_jwks(&r, jwks, &skipped), RSD_OK);
	assert_int_equal(r.n, JOSE_KEYS_MAX);
	assert_int_equal(skipped, 3);
	cJSON_Delete(jwks);
	jose_ring_release(&r);
}

/* --- the ring and names --- */

static void test_ring(void **state)
{
	(void)state;
	struct jose_ring r;
	memset(&r, 0, sizeof(r));
	char kid[JOSE_KID_BYTES_MAX + 2];
	memset(kid, 'k', sizeof(kid) - 1);
	kid[sizeof(kid) - 1] = '\0';
	assert_int_equal(jose_ring_add(&r, kid, JOSE_ES256, es_pub, NULL), RSD_EINVAL);
	kid[JOSE_KID_BYTES_MAX] = '\0';
	assert_int_equal(jose_ring_add(&r, kid, JOSE_ES256, es_pub, NULL), RSD_OK);
	assert_int_equal(jose_ring_add(&r, "", JOSE_ES256, es_pub, NULL), RSD_EINVAL);
	assert_int_equal(jose_ring_add(&r, NULL, JOSE_ES256, es_pub, NULL), RSD_EINVAL);
	assert_int_equal(jose_ring_add(&r, "a", 0, es_pub, NULL), RSD_EINVAL);
	assert_int_equal(jose_ring_add(&r, "a", JOSE_ES256, NULL, NULL), RSD_EINVAL);
	assert_int_equal(jose_ring_add(&r, kid, JOSE_ES256, es_pub, NULL), RSD_EINVAL); /* taken */
	for (int i = 1; i < JOSE_KEYS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "k%d", i);
		assert_int_equal(jose_ring_add(&r, name, JOSE_ES256, es_pub, es_priv), RSD_OK);
	}
	assert_int_equal(jose_ring_add(&r, "one-more", JOSE_ES256, es_pub, NULL), RSD_EFULL);
	assert_non_null(jose_ring_find(&r, "k3"));
	assert_null(jose_ring_find(&r, "k"));
	assert_null(jose_ring_find(&r, NULL));
	jose_ring_release(&r);
	assert_int_equal(r.n, 0);
	jose_ring_release(&r);

	assert_string_equal(jose_alg_name(JOSE_RS384), "RS384");
	assert_null(jose_alg_name(0));
	assert_int_equal(jose_alg_parse("ES384"), JOSE_ES384);
	assert_int_equal(jose_alg_parse("HS256"), 0);
	assert_int_equal(jose_alg_parse("es256"), 0);
	assert_int_equal(jose_alg_parse("none"), 0);
	assert_int_equal(jose_alg_parse(NULL), 0);
}

/* --- base64url --- */

static void test_b64url_round_trips(void **state)
{
	(void)state;
	unsigned char in[64], out[64 * 3 / 4 + 64];
	char text[128];
	for (size_t n = 0; n <= 64; n++) {
		for (int trial = 0; trial < 8; trial++) {
			for (size_t i = 0; i < n; i++)
				in[i] = trial == 0 ? 0xff : trial == 1 ? 0 : (unsigned char)rand();
			size_t len = jose_b64url_encode(in, n, text);
			assert_int_equal(len, jose_b64url_len(n));
			assert_int_equal(strlen(text), len);
			assert_int_equal(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
						      "stuvwxyz0123456789-_"),
					 len);
			assert_int_equal(jose_b64url_decode(text, len, out), (long)n);
			assert_memory_equal(in, out, n);
		}
	}
	/* RFC 4648's vectors, unpadded, and the two URL-safe characters. */
	const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		jose_b64url_encode((const unsigned char *)plain[i], strlen(plain[i]), text);
		assert_string_equal(text, enc[i]);
	}
	const unsigned char odd[] = {0xfb, 0xff, 0xbf};
	jose_b64url_encode(odd, 3, text);
	assert_string_equal(text, "-_-_");
	assert_int_equal(jose_b64url_decode("-_-_", 4, out), 3);
	assert_memory_equal(out, odd, 3);
}

static void test_b64url_refusals(void **state)
{
	(void)state;
	unsigned char out[64];
	const char *bad[] = {
		"Zg==",
		"Zm8=",
		"Zg=", /* padding */
		"+/+/",
		"Zm9v+A",
		"a/b", /* standard base64's characters */
		"Zm9 v",
		"Zm9\nv",
		"Zm9.",
		"Zm9*",
		"A",
		"AAAAA", /* 4k+1 */
		"Zh",
		"Zm9",
		"Zm9=",
		"AB",
		"AAB", /* slack bits set: a second spelling */
		"\xc3\xa9\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (jose_b64url_decode(bad[i], strlen(bad[i]), out) != -1)
			fail_msg("decoded '%s'", bad[i]);
	/* Only len bytes are read: a bad character past len is not seen. */
	assert_int_equal(jose_b64url_decode("Zm9v!!", 4, out), 3);
	assert_int_equal(jose_b64url_decode("", 0, out), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_made_tokens_verify),
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_hs256_keyed_with_public_pem),
		cmocka_unit_test(test_rsa_signature_for_es256_kid),
		cmocka_unit_test(test_expiry_and_leeway),
		cmocka_unit_test(test_nbf_in_future),
		cmocka_unit_test(test_iat_in_future),
		cmocka_unit_test(test_missing_or_odd_times),
		cmocka_unit_test(test_wrong_issuer),
		cmocka_unit_test(test_wrong_audience),
		cmocka_unit_test(test_azp_with_several_audiences),
		cmocka_unit_test(test_nonce),
		cmocka_unit_test(test_unknown_kid),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_tampered_signature),
		cmocka_unit_test(test_crit_header),
		cmocka_unit_test(test_segment_count),
		cmocka_unit_test(test_over_long_token),
		cmocka_unit_test(test_base64_refusals),
		cmocka_unit_test(test_base64_non_canonical_segments),
		cmocka_unit_test(test_non_object_segments),
		cmocka_unit_test(test_jwks_rsa_key_verifies_libjwt_rs256),
		cmocka_unit_test(test_jwks_ec_round_trip),
		cmocka_unit_test(test_jwks_skips),
		cmocka_unit_test(test_jwks_ring_full),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_b64url_round_trips),
		cmocka_unit_test(test_b64url_refusals),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
