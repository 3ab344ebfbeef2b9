/*
 * jose.c — JWT signing and verification with OpenSSL 3 on keys parsed once, with every
 * check a JWT library may leave out, and JWK <-> PEM conversion.
 *
 * Invariant: a token is trusted only when (1) its header names a kid present in the ring,
 * (2) its header's alg is exactly the algorithm that key was registered for (and the key is
 * of that algorithm's kind: RSA of 2048 bits or more, or EC on its curve), (3) its signature,
 * spelled in strict base64url with the algorithm's exact length, verifies with that key
 * and that algorithm's digest, and (4) every claim the caller expects checks out. There is
 * no code path for `none` or HMAC at all.
 *
 * libjwt 1.10 did the signing and signature checks until it showed up as most of a refresh's
 * cost: it re-parses the key's PEM on every call (~430 us per ES256 operation here against
 * ~70 us with a parsed key). The unit tests still use it, as an independent producer.
 */
#include "jose.h"

#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "banned.h"

static const struct {
	enum jose_alg alg;
	const char *name;
	const char *digest;
	int ec_bytes; /* an ECDSA algorithm's r and s size; 0 for RSA */
	const char *curve;
} algs[] = {
	{JOSE_RS256, "RS256", "SHA256", 0, NULL},
	{JOSE_RS384, "RS384", "SHA384", 0, NULL},
	{JOSE_RS512, "RS512", "SHA512", 0, NULL},
	{JOSE_ES256, "ES256", "SHA256", 32, "prime256v1"},
	{JOSE_ES384, "ES384", "SHA384", 48, "secp384r1"},
};

const char *jose_alg_name(enum jose_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return algs[i].name;
	return NULL;
}

enum jose_alg jose_alg_parse(const char *name)
{
	for (size_t i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].alg;
	return 0;
}

static int alg_index(enum jose_alg alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return (int)i;
	return -1;
}

/* --- base64url --- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jose_b64url_len(size_t n)
{
	return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t jose_b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
		out[o++] = B64URL[v >> 6 & 63];
		out[o++] = B64URL[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
		out[o++] = B64URL[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long jose_b64url_decode(const char *in, size_t len, unsigned char *out)
{
	if (len % 4 == 1)
		return -1;
	uint32_t acc = 0;
	int bits = 0;
	long o = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	/* Leftover bits must be zero, so that one token has one spelling. */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return o;
}

/* Decodes one base64url JSON object segment; NULL when it is not one. */
static cJSON *segment_json(const char *s, size_t len)
{
	unsigned char *buf = rsd_malloc(len * 3 / 4 + 3);
	long n = jose_b64url_decode(s, len, buf);
	cJSON *j = n > 0 ? cJSON_ParseWithLength((const char *)buf, (size_t)n) : NULL;
	free(buf);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		j = NULL;
	}
	return j;
}

/* --- the ring --- */

/* A PEM's public or private key, or NULL. */
static EVP_PKEY *pem_key(const char *pem, bool private)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = NULL;
	if (b)
		k = private ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
			    : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	return k;
}

/* Whether k is of the kind alg needs: RSA of >= 2048 bits, or EC on alg's curve. */
static bool key_fits(EVP_PKEY *k, enum jose_alg alg)
{
	int i = alg_index(alg);
	if (k == NULL || i < 0)
		return false;
	if (algs[i].ec_bytes == 0)
		return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048;
	char group[32];
	size_t n;
	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					      &n) == 1 &&
	       strcmp(group, algs[i].curve) == 0;
}

int jose_ring_add(struct jose_ring *r, const char *kid, enum jose_alg alg, const char *pub_pem,
		  const char *priv_pem)
{
	if (kid == NULL || kid[0] == '\0' || strlen(kid) > JOSE_KID_BYTES_MAX ||
	    !jose_alg_name(alg) || pub_pem == NULL || jose_ring_find(r, kid))
		return RSD_EINVAL;
	if (r->n == JOSE_KEYS_MAX)
		return RSD_EFULL;
	EVP_PKEY *pub = pem_key(pub_pem, false), *priv = priv_pem ? pem_key(priv_pem, true) : NULL;
	if (!key_fits(pub, alg) || (priv_pem && !key_fits(priv, alg))) {
		EVP_PKEY_free(pub);
		EVP_PKEY_free(priv);
		return RSD_EINVAL;
	}
	struct jose_key *k = &r->keys[r->n++];
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	k->alg = alg;
	k->pub_pem = rsd_strndup(pub_pem, strlen(pub_pem));
	k->priv_pem = priv_pem ? rsd_strndup(priv_pem, strlen(priv_pem)) : NULL;
	k->pub = pub;
	k->priv = priv;
	return RSD_OK;
}

const struct jose_key *jose_ring_find(const struct jose_ring *r, const char *kid)
{
	for (int i = 0; kid && i < r->n; i++)
		if (strcmp(r->keys[i].kid, kid) == 0)
			return &r->keys[i];
	return NULL;
}

void jose_ring_release(struct jose_ring *r)
{
	for (int i = 0; i < r->n; i++) {
		EVP_PKEY_free(r->keys[i].pub);
		EVP_PKEY_free(r->keys[i].priv);
		free(r->keys[i].pub_pem);
		if (r->keys[i].priv_pem) {
			OPENSSL_cleanse(r->keys[i].priv_pem, strlen(r->keys[i].priv_pem));
			free(r->keys[i].priv_pem);
		}
	}
	r->n = 0;
}

/* --- verification --- */

static bool claim_number(const cJSON *claims, const char *name, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return false;
	*out = v->valuedouble;
	return true;
}

static bool claim_equals(const cJSON *claims, const char *name, const char *want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
	return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

/* aud is a string or an array of strings; want must be one of them. */
static int check_audience(const cJSON *claims, const struct jose_expect *e, struct rsd_fail *f)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
	int count = 0;
	bool found = false;
	if (cJSON_IsString(aud)) {
		count = 1;
		found = strcmp(aud->valuestring, e->aud) == 0;
	} else if (cJSON_IsArray(aud)) {
		const cJSON *a;
		cJSON_ArrayForEach(a, aud)
		{
			if (!cJSON_IsString(a))
				return rsd_failf(f, RSD_EINVAL, "", "aud holds a non-string");
			count++;
			found = found || strcmp(a->valuestring, e->aud) == 0;
		}
	}
	if (!found)
		return rsd_failf(f, RSD_EINVAL, "", "the token is not meant for this audience");
	/* OpenID Connect Core 3.1.3.7: several audiences need an azp naming us. */
	const cJSON *azp = cJSON_GetObjectItemCaseSensitive(claims, "azp");
	if (e->azp && (count > 1 || azp) && !claim_equals(claims, "azp", e->azp))
		return rsd_failf(f, RSD_EINVAL, "", "azp is not this client");
	return RSD_OK;
}

static int check_claims(const cJSON *claims, const struct jose_expect *e, struct rsd_fail *f)
{
	double exp, nbf, iat;
	double now = (double)e->now_s, leeway = e->leeway_s;
	if (!claim_number(claims, "exp", &exp))
		return rsd_failf(f, RSD_EINVAL, "", "the token has no exp");
	if (now >= exp + leeway) /* RFC 7519 4.1.4: not on or after exp */
		return rsd_failf(f, RSD_EINVAL, "", "the token has expired");
	if (cJSON_GetObjectItemCaseSensitive(claims, "nbf")) {
		if (!claim_number(claims, "nbf", &nbf))
			return rsd_failf(f, RSD_EINVAL, "", "nbf is not a number");
		if (nbf > now + leeway)
			return rsd_failf(f, RSD_EINVAL, "", "the token is not valid yet (nbf)");
	}
	if (!claim_number(claims, "iat", &iat))
		return rsd_failf(f, RSD_EINVAL, "", "the token has no iat");
	if (iat > now + leeway)
		return rsd_failf(f, RSD_EINVAL, "", "the token was issued in the future (iat)");
	if (e->iss && !claim_equals(claims, "iss", e->iss))
		return rsd_failf(f, RSD_EINVAL, "", "the token's issuer is not the expected one");
	if (e->aud) {
		int err = check_audience(claims, e, f);
		if (err)
			return err;
	}
	if (e->nonce && !claim_equals(claims, "nonce", e->nonce))
		return rsd_failf(f, RSD_EINVAL, "", "the token's nonce is not this login's");
	return RSD_OK;
}

/* ECDSA signatures are r||s of the curve's size; RSA ones the modulus size (>= 2048 bits). */
static bool sig_length_ok(enum jose_alg alg, long n)
{
	switch (alg) {
	case JOSE_ES256: return n == 64;
	case JOSE_ES384: return n == 96;
	default: return n >= 256 && n <= 1024;
	}
}

/* The key the header names, with the header's alg checked against it. */
static int header_key(const char *token, size_t len, const struct jose_ring *ring,
		      const struct jose_key **key, struct rsd_fail *f)
{
	cJSON *h = segment_json(token, len);
	if (h == NULL)
		return rsd_failf(f, RSD_EINVAL, "", "the token's header is not a JSON object");
	int err = RSD_OK;
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
	if (!cJSON_IsString(alg))
		err = rsd_failf(f, RSD_EINVAL, "", "the token's header has no alg");
	else if (cJSON_GetObjectItemCaseSensitive(h, "crit"))
		err = rsd_failf(f, RSD_EINVAL, "", "critical header extensions are not supported");
	else if (!cJSON_IsString(kid))
		err = rsd_failf(f, RSD_EINVAL, "", "the token's header has no kid");
	else if ((*key = jose_ring_find(ring, kid->valuestring)) == NULL)
		err = rsd_failf(f, RSD_ENOTFOUND, "", "the token's signing key is unknown");
	else if (strcmp(alg->valuestring, jose_alg_name((*key)->alg)) != 0)
		err = rsd_failf(f, RSD_EINVAL, "", "algorithm %.16s is not allowed for this key",
				alg->valuestring);
	cJSON_Delete(h);
	return err;
}

/* A JWS signature of ECDSA is r||s; OpenSSL's is DER. NULL when r or s is out of range. */
static unsigned char *ecdsa_der(const unsigned char *raw, size_t n, int *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)(n / 2), NULL),
	       *ss = BN_bin2bn(raw + n / 2, (int)(n / 2), NULL);
	unsigned char *der = NULL;
	if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL; /* owned by s */
		*der_len = i2d_ECDSA_SIG(s, &der);
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return *der_len > 0 ? der : NULL;
}

/* Whether sig (decoded, of the algorithm's length) signs input[0, n) with key. */
static bool signature_verifies(const struct jose_key *key, const char *input, size_t n,
			       const unsigned char *sig, size_t sig_n)
{
	int i = alg_index(key->alg);
	unsigned char *der = NULL;
	int der_len = 0;
	if (algs[i].ec_bytes && (der = ecdsa_der(sig, sig_n, &der_len)) == NULL)
		return false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx &&
		  EVP_DigestVerifyInit_ex(ctx, NULL, algs[i].digest, NULL, NULL, key->pub, NULL) ==
			  1 &&
		  EVP_DigestVerify(ctx, der ? der : sig, der ? (size_t)der_len : sig_n,
				   (const unsigned char *)input, n) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

int jose_verify(const char *token, const struct jose_ring *ring, const struct jose_expect *e,
		cJSON **claims, struct rsd_fail *f)
{
	*claims = NULL;
	size_t len = strnlen(token, JOSE_BYTES_MAX + 1);
	if (len > JOSE_BYTES_MAX)
		return rsd_failf(f, RSD_EINVAL, "", "the token is longer than %d bytes",
				 JOSE_BYTES_MAX);
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) ||
	    d2 + 1 == token + len)
		return rsd_failf(f, RSD_EINVAL, "", "not a signed compact JWT");
	const struct jose_key *key = NULL;
	int err = header_key(token, (size_t)(d1 - token), ring, &key, f);
	if (err)
		return err;
	/* Strict base64url (one spelling of the signature's bytes) and the algorithm's exact
	 * length. ECDSA's s and n - s both verify, so a holder can respell a token; that gains
	 * nothing, as revocation and the cache's checks go by the session, not the text. */
	size_t sig_len = len - (size_t)(d2 + 1 - token);
	unsigned char *sig = rsd_malloc(sig_len * 3 / 4 + 3);
	long sig_bytes = jose_b64url_decode(d2 + 1, sig_len, sig);
	bool good = sig_bytes >= 0 && sig_length_ok(key->alg, sig_bytes);
	if (good && !signature_verifies(key, token, (size_t)(d2 - token), sig, (size_t)sig_bytes))
		err = rsd_failf(f, RSD_EINVAL, "", "the token's signature does not verify");
	free(sig);
	if (!good)
		return rsd_failf(f, RSD_EINVAL, "", "the token's signature is malformed");
	if (err)
		return err;
	cJSON *payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (payload == NULL)
		return rsd_failf(f, RSD_EINVAL, "", "the token's payload is not a JSON object");
	err = check_claims(payload, e, f);
	if (err) {
		cJSON_Delete(payload);
		return err;
	}
	*claims = payload;
	return RSD_OK;
}

/* --- signing --- */

/* OpenSSL's DER ECDSA signature as JWS r||s of width bytes each; false when it is not one. */
static bool ecdsa_raw(const unsigned char *der, size_t n, int width, unsigned char *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
	const BIGNUM *r, *ss;
	bool ok = false;
	if (s) {
		ECDSA_SIG_get0(s, &r, &ss);
		ok = BN_bn2binpad(r, out, width) == width &&
		     BN_bn2binpad(ss, out + width, width) == width;
	}
	ECDSA_SIG_free(s);
	return ok;
}

/* Signs input[0, n) with key; the JWS signature into sig (at least 1024 bytes). */
static bool sign_bytes(const struct jose_key *key, const char *input, size_t n, unsigned char *sig,
		       size_t *sig_n)
{
	int i = alg_index(key->alg);
	unsigned char der[1024];
	size_t der_n = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx &&
		  EVP_DigestSignInit_ex(ctx, NULL, algs[i].digest, NULL, NULL, key->priv, NULL) ==
			  1 &&
		  EVP_DigestSign(ctx, der, &der_n, (const unsigned char *)input, n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (ok && algs[i].ec_bytes) {
		ok = ecdsa_raw(der, der_n, algs[i].ec_bytes, sig);
		*sig_n = 2 * (size_t)algs[i].ec_bytes;
	} else if (ok) {
		memcpy(sig, der, der_n);
		*sig_n = der_n;
	}
	return ok;
}

int jose_sign(const struct jose_key *key, const cJSON *claims, char **out)
{
	*out = NULL;
	if (key->priv == NULL)
		return RSD_EINVAL;
	cJSON *h = cJSON_CreateObject();
	cJSON_AddStringToObject(h, "alg", jose_alg_name(key->alg));
	cJSON_AddStringToObject(h, "kid", key->kid);
	cJSON_AddStringToObject(h, "typ", "JWT");
	char *hj = json_print(h), *pj = json_print(claims);
	cJSON_Delete(h);
	int err = RSD_EINTERNAL;
	if (hj && pj) {
		size_t hn = strlen(hj), pn = strlen(pj);
		char *t = rsd_malloc(jose_b64url_len(hn) + jose_b64url_len(pn) +
				     jose_b64url_len(1024) + 3);
		size_t n = jose_b64url_encode((const unsigned char *)hj, hn, t);
		t[n++] = '.';
		n += jose_b64url_encode((const unsigned char *)pj, pn, t + n);
		unsigned char sig[1024];
		size_t sig_n;
		if (sign_bytes(key, t, n, sig, &sig_n)) {
			t[n++] = '.';
			jose_b64url_encode(sig, sig_n, t + n);
			*out = t;
			err = RSD_OK;
		} else {
			free(t);
		}
	}
	free(hj);
	free(pj);
	return err;
}

/* --- keys and JWKs --- */

static char *bio_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	return n > 0 ? rsd_strndup(data, (size_t)n) : NULL;
}

int jose_es256_generate(char **priv_pem, char **pub_pem)
{
	*priv_pem = *pub_pem = NULL;
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pk == NULL)
		return RSD_EINTERNAL;
	BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
	if (a && b && PEM_write_bio_PrivateKey(a, pk, NULL, NULL, 0, NULL, NULL) == 1 &&
	    PEM_write_bio_PUBKEY(b, pk) == 1) {
		*priv_pem = bio_string(a);
		*pub_pem = bio_string(b);
	}
	BIO_free(a);
	BIO_free(b);
	EVP_PKEY_free(pk);
	if (*priv_pem && *pub_pem)
		return RSD_OK;
	free(*priv_pem);
	free(*pub_pem);
	*priv_pem = *pub_pem = NULL;
	return RSD_EINTERNAL;
}

/* Adds name: base64url of bn's big-endian bytes, left-padded to width (0: as is). */
static bool add_bn(cJSON *jwk, const char *name, EVP_PKEY *pk, const char *param, int width)
{
	BIGNUM *bn = NULL;
	if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
		return false;
	int n = BN_num_bytes(bn);
	if (width == 0)
		width = n;
	bool ok = n <= width && width <= 1024;
	if (ok) {
		unsigned char buf[1024];
		char text[1400];
		BN_bn2binpad(bn, buf, width);
		jose_b64url_encode(buf, (size_t)width, text);
		cJSON_AddStringToObject(jwk, name, text);
	}
	BN_free(bn);
	return ok;
}

int jose_key_to_jwk(const struct jose_key *key, cJSON **out)
{
	*out = NULL;
	BIO *b = BIO_new_mem_buf(key->pub_pem, -1);
	EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (pk == NULL)
		return RSD_EINVAL;
	cJSON *jwk = cJSON_CreateObject();
	bool ok;
	if (EVP_PKEY_is_a(pk, "EC")) {
		int width = key->alg == JOSE_ES384 ? 48 : 32;
		cJSON_AddStringToObject(jwk, "kty", "EC");
		cJSON_AddStringToObject(jwk, "crv", width == 48 ? "P-384" : "P-256");
		ok = add_bn(jwk, "x", pk, OSSL_PKEY_PARAM_EC_PUB_X, width) &&
		     add_bn(jwk, "y", pk, OSSL_PKEY_PARAM_EC_PUB_Y, width);
	} else {
		cJSON_AddStringToObject(jwk, "kty", "RSA");
		ok = EVP_PKEY_is_a(pk, "RSA") && add_bn(jwk, "n", pk, OSSL_PKEY_PARAM_RSA_N, 0) &&
		     add_bn(jwk, "e", pk, OSSL_PKEY_PARAM_RSA_E, 0);
	}
	EVP_PKEY_free(pk);
	if (!ok) {
		cJSON_Delete(jwk);
		return RSD_EINVAL;
	}
	cJSON_AddStringToObject(jwk, "kid", key->kid);
	cJSON_AddStringToObject(jwk, "alg", jose_alg_name(key->alg));
	cJSON_AddStringToObject(jwk, "use", "sig");
	*out = jwk;
	return RSD_OK;
}

/* Decodes the base64url member name of jwk into buf (cap bytes); length or -1. */
static long jwk_bytes(const cJSON *jwk, const char *name, unsigned char *buf, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, name);
	if (!cJSON_IsString(v))
		return -1;
	size_t len = strlen(v->valuestring);
	if (len == 0 || len * 3 / 4 + 3 > cap)
		return -1;
	return jose_b64url_decode(v->valuestring, len, buf);
}

/* The PEM of a key built from params of type ("RSA" or "EC"); NULL when OpenSSL refuses. */
static char *pem_from_params(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;
	char *pem = NULL;
	if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1) {
		BIO *b = BIO_new(BIO_s_mem());
		if (b && PEM_write_bio_PUBKEY(b, pk) == 1)
			pem = bio_string(b);
		BIO_free(b);
	}
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	return pem;
}

static char *rsa_pem(const cJSON *jwk)
{
	unsigned char n[1024], e[16];
	long nn = jwk_bytes(jwk, "n", n, sizeof(n)), en = jwk_bytes(jwk, "e", e, sizeof(e));
	if (nn < 1 || en < 1)
		return NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nn, NULL), *be = BN_bin2bn(e, (int)en, NULL);
	if (bn && BN_num_bits(bn) < 2048) { /* RSA below 2048 bits is refused */
		BN_free(bn);
		BN_free(be);
		return NULL;
	}
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	char *pem = NULL;
	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
		pem = pem_from_params("RSA", params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pem;
}

static char *ec_pem(const cJSON *jwk, int width, const char *group)
{
	unsigned char x[64], y[64], point[1 + 2 * 48];
	if (jwk_bytes(jwk, "x", x, sizeof(x)) != width ||
	    jwk_bytes(jwk, "y", y, sizeof(y)) != width)
		return NULL;
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, x, (size_t)width);
	memcpy(point + 1 + width, y, (size_t)width);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
						  1 + 2 * (size_t)width),
		OSSL_PARAM_construct_end(),
	};
	return pem_from_params("EC", params);
}

/* One JWK into ring; false when it is skipped. */
static bool add_jwk(struct jose_ring *r, const cJSON *jwk)
{
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
	const cJSON *alg_j = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
	if (!cJSON_IsString(kid) || !cJSON_IsString(kty) ||
	    (use && !claim_equals(jwk, "use", "sig")))
		return false;
	enum jose_alg alg =
		alg_j ? jose_alg_parse(cJSON_IsString(alg_j) ? alg_j->valuestring : "") : 0;
	if (alg_j && alg == 0)
		return false;
	char *pem = NULL;
	if (strcmp(kty->valuestring, "RSA") == 0) {
		alg = alg ? alg : JOSE_RS256;
		if (alg != JOSE_RS256 && alg != JOSE_RS384 && alg != JOSE_RS512)
			return false;
		pem = rsa_pem(jwk);
	} else if (strcmp(kty->valuestring, "EC") == 0 && cJSON_IsString(crv)) {
		bool p256 = strcmp(crv->valuestring, "P-256") == 0;
		bool p384 = strcmp(crv->valuestring, "P-384") == 0;
		enum jose_alg want = p256 ? JOSE_ES256 : JOSE_ES384;
		if ((!p256 && !p384) || (alg && alg != want))
			return false;
		alg = want;
		pem = ec_pem(jwk, p256 ? 32 : 48, p256 ? "prime256v1" : "secp384r1");
	}
	bool ok = pem && jose_ring_add(r, kid->valuestring, alg, pem, NULL) == RSD_OK;
	free(pem);
	return ok;
}

int jose_ring_add_jwks(struct jose_ring *r, const cJSON *jwks, int *skipped)
{
	*skipped = 0;
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(jwks, "keys");
	if (!cJSON_IsArray(keys))
		return RSD_EINVAL;
	const cJSON *k;
	cJSON_ArrayForEach(k, keys)
	{
		if (!cJSON_IsObject(k) || !add_jwk(r, k))
			(*skipped)++;
	}
	return RSD_OK;
}
