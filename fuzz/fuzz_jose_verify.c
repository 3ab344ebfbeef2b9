/*
 * fuzz_jose_verify.c — libFuzzer target for jose_verify, the one path by which resortd
 * trusts a JWT. The input is the token; the ring holds one ES256 and one RS256 public key,
 * made afresh when the process starts, so no input can carry a valid signature: any
 * RSD_OK is a forgery (alg none, algorithm confusion, a parser disagreement) and aborts.
 * Every refusal must be RSD_EINVAL or RSD_ENOTFOUND, leave no claims behind and say why;
 * crashes, sanitizer reports and leaks are findings too.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jose_ring ring;

static char *public_pem(EVP_PKEY *pk)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *text, *out = NULL;
	if (b && PEM_write_bio_PUBKEY(b, pk) == 1) {
		long n = BIO_get_mem_data(b, &text);
		out = n > 0 ? strndup(text, (size_t)n) : NULL;
	}
	BIO_free(b);
	return out;
}

/* The kids match those of the seed corpus, so that mutations reach the signature checks. */
static void ring_init(void)
{
	char *priv, *pub;
	if (jose_es256_generate(&priv, &pub) != RSD_OK ||
	    jose_ring_add(&ring, "es1", JOSE_ES256, pub, NULL) != RSD_OK)
		abort();
	free(priv);
	free(pub);
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	char *rsa_pub = rsa ? public_pem(rsa) : NULL;
	if (rsa_pub == NULL || jose_ring_add(&ring, "rs1", JOSE_RS256, rsa_pub, NULL) != RSD_OK)
		abort();
	free(rsa_pub);
	EVP_PKEY_free(rsa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		ring_init();
		ready = true;
	}
	char *token = malloc(size + 1);
	memcpy(token, data, size);
	token[size] = '\0';
	struct jose_expect e = {.iss = "https://idp.test",
				.aud = "resortd",
				.azp = "resortd",
				.nonce = "n-0S6_WzA2Mj",
				.now_s = 1700000000,
				.leeway_s = 60};
	cJSON *claims = (cJSON *)1;
	struct rsd_fail f;
	memset(&f, 0, sizeof(f));
	int rc = jose_verify(token, &ring, &e, &claims, &f);
	if (rc == RSD_OK || claims != NULL)
		abort();
	if (rc != RSD_EINVAL && rc != RSD_ENOTFOUND)
		abort();
	if (f.detail[0] == '\0' || memchr(f.detail, '\0', sizeof(f.detail)) == NULL)
		abort();
	free(token);
	return 0;
}
