/*
 * idempotency.c — Idempotency-Key records in LMDB (see idempotency.h).
 *
 * Key: principal, a NUL, the key. Value: first use ms (be64), state (1 running, 2 done),
 * error (i8), status (be16), fingerprint (32), then three length-prefixed strings (field:
 * u8, detail: be16, location: u8) and the body to the end.
 */
#include "idempotency.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "banned.h"

#define HEAD_BYTES	     (8 + 1 + 1 + 2 + 32)
#define STATE_RUNNING	     1
#define STATE_DONE	     2
#define RECORD_KEY_BYTES_MAX (PRINCIPAL_BYTES_MAX + 1 + IDEMPOTENCY_KEY_BYTES_MAX)

void outcome_release(struct outcome *o)
{
	free(o->body);
	o->body = NULL;
	o->len = 0;
}

void outcome_set(struct outcome *o, int status, const char *body, size_t len)
{
	outcome_release(o);
	o->err = RSD_OK;
	o->status = status;
	o->body = rsd_strndup(body, len);
	o->len = len;
}

int idempotency_key_init(struct idem_key *k, const char *header, const char *principal,
			 const char *method, const char *path, const char *body, size_t len,
			 struct rsd_fail *f)
{
	memset(k, 0, sizeof(*k));
	if (!header)
		return RSD_OK;
	size_t n = strlen(header);
	if (n == 0 || n > IDEMPOTENCY_KEY_BYTES_MAX)
		return rsd_failf(f, RSD_EINVAL, "Idempotency-Key",
				 "the Idempotency-Key header must have 1 to %d characters",
				 IDEMPOTENCY_KEY_BYTES_MAX);
	for (size_t i = 0; i < n; i++)
		if (header[i] < 0x21 || header[i] > 0x7e)
			return rsd_failf(f, RSD_EINVAL, "Idempotency-Key",
					 "the Idempotency-Key header must be printable ASCII"
					 " without spaces");
	k->present = true;
	snprintf(k->principal, sizeof(k->principal), "%s", principal);
	memcpy(k->key, header, n + 1);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	RSD_ASSERT(c != NULL);
	unsigned int out_len = 0;
	RSD_ASSERT(EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		   EVP_DigestUpdate(c, method, strlen(method) + 1) == 1 &&
		   EVP_DigestUpdate(c, path, strlen(path) + 1) == 1 &&
		   (len == 0 || EVP_DigestUpdate(c, body, len) == 1) &&
		   EVP_DigestFinal_ex(c, k->fingerprint, &out_len) == 1);
	EVP_MD_CTX_free(c);
	return RSD_OK;
}

static size_t record_key(const struct idem_key *k, unsigned char *out)
{
	size_t p = strlen(k->principal), n = strlen(k->key);
	memcpy(out, k->principal, p);
	out[p] = '\0';
	memcpy(out + p + 1, k->key, n);
	return p + 1 + n;
}

/* Reads a length-prefixed string at *pos of v (lenbytes 1 or 2) into out. */
static int take_string(const unsigned char *v, size_t size, size_t *pos, int lenbytes, char *out,
		       size_t cap)
{
	if (*pos + (size_t)lenbytes > size)
		return RSD_EIO;
	size_t n = lenbytes == 1 ? v[*pos] : rsd_get_be16(v + *pos);
	*pos += (size_t)lenbytes;
	if (*pos + n > size || n >= cap)
		return RSD_EIO;
	memcpy(out, v + *pos, n);
	out[n] = '\0';
	*pos += n;
	return RSD_OK;
}

static int decode_outcome(const unsigned char *v, size_t size, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->err = (int)(int8_t)v[9];
	o->status = rsd_get_be16(v + 10);
	size_t pos = HEAD_BYTES;
	int err;
	if ((err = take_string(v, size, &pos, 1, o->fail.field, sizeof(o->fail.field))) ||
	    (err = take_string(v, size, &pos, 2, o->fail.detail, sizeof(o->fail.detail))) ||
	    (err = take_string(v, size, &pos, 1, o->location, sizeof(o->location))))
		return err;
	if (pos < size) {
		o->body = rsd_strndup((const char *)v + pos, size - pos);
		o->len = size - pos;
	}
	return RSD_OK;
}

int idempotency_check(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		      bool *replay, struct outcome *out, struct rsd_fail *f)
{
	*replay = false;
	unsigned char key[RECORD_KEY_BYTES_MAX];
	MDB_val mk = {.mv_size = record_key(k, key), .mv_data = key}, mv;
	int rc = mdb_get(txn, s->idempotency, &mk, &mv);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc || mv.mv_size < HEAD_BYTES)
		return rsd_failf(f, RSD_EIO, "", "reading an idempotency record failed");
	const unsigned char *v = mv.mv_data;
	if (rsd_get_be64(v) + (uint64_t)IDEMPOTENCY_TTL_S * 1000 <= now_ms)
		return RSD_OK; /* expired, not swept yet: a new use */
	if (memcmp(v + 12, k->fingerprint, 32) != 0)
		return rsd_failf(f, RSD_EMISMATCH, "Idempotency-Key",
				 "this Idempotency-Key was used for a different request");
	if (v[8] == STATE_RUNNING)
		return rsd_failf(f, RSD_ECONFLICT, "Idempotency-Key",
				 "the first request with this Idempotency-Key is still running");
	if (decode_outcome(v, mv.mv_size, out) != RSD_OK)
		return rsd_failf(f, RSD_EIO, "", "an idempotency record is corrupt");
	*replay = true;
	return RSD_OK;
}

static _Atomic uint64_t replays;

int idempotency_begin(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		      bool *replay, struct outcome *out, struct rsd_fail *f)
{
	*replay = false;
	if (!k->present)
		return RSD_OK;
	outcome_release(out);
	int err = idempotency_check(txn, s, k, now_ms, replay, out, f);
	if (!err && *replay)
		atomic_fetch_add_explicit(&replays, 1, memory_order_relaxed);
	return err;
}

uint64_t idempotency_replays(void)
{
	return atomic_load_explicit(&replays, memory_order_relaxed);
}

static void put_string(unsigned char *buf, size_t *pos, int lenbytes, const char *s)
{
	size_t n = strlen(s);
	if (lenbytes == 1)
		buf[*pos] = (unsigned char)n;
	else
		rsd_put_be16(buf + *pos, (uint16_t)n);
	*pos += (size_t)lenbytes;
	memcpy(buf + *pos, s, n);
	*pos += n;
}

int idempotency_put(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t first_ms,
		    const struct outcome *o)
{
	static const struct outcome none = {0};
	const struct outcome *src = o ? o : &none;
	size_t size = HEAD_BYTES + 1 + strlen(src->fail.field) + 2 + strlen(src->fail.detail) + 1 +
		      strlen(src->location) + src->len;
	unsigned char *buf = rsd_malloc(size);
	rsd_put_be64(buf, first_ms);
	buf[8] = o ? STATE_DONE : STATE_RUNNING;
	buf[9] = (unsigned char)(int8_t)src->err;
	rsd_put_be16(buf + 10, (uint16_t)src->status);
	memcpy(buf + 12, k->fingerprint, 32);
	size_t pos = HEAD_BYTES;
	put_string(buf, &pos, 1, src->fail.field);
	put_string(buf, &pos, 2, src->fail.detail);
	put_string(buf, &pos, 1, src->location);
	if (src->len)
		memcpy(buf + pos, src->body, src->len);
	unsigned char key[RECORD_KEY_BYTES_MAX];
	size_t key_len = record_key(k, key);
	MDB_val mk = {.mv_size = key_len, .mv_data = key}, mv = {.mv_size = size, .mv_data = buf};
	int err = store_err(mdb_put(txn, s->idempotency, &mk, &mv, 0));
	free(buf);
	if (err)
		return err;
	return store_expiry_add(txn, s, first_ms + (uint64_t)IDEMPOTENCY_TTL_S * 1000,
				EXPIRY_IDEMPOTENCY, key, key_len);
}

int idempotency_expire(MDB_txn *txn, struct store *s, const void *id, size_t len, uint64_t ms)
{
	MDB_val mk = {.mv_size = len, .mv_data = (void *)id}, mv;
	int rc = mdb_get(txn, s->idempotency, &mk, &mv);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc || mv.mv_size < HEAD_BYTES)
		return RSD_EIO;
	/* A key reused after it expired has a newer first use: leave that one be. */
	if (rsd_get_be64(mv.mv_data) + (uint64_t)IDEMPOTENCY_TTL_S * 1000 > ms)
		return RSD_OK;
	return store_err(mdb_del(txn, s->idempotency, &mk, NULL));
}

int idempotency_remember(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
			 const struct outcome *o)
{
	return k->present ? idempotency_put(txn, s, k, now_ms, o) : RSD_OK;
}

int idempotency_refuse(MDB_txn *txn, struct store *s, const struct idem_key *k, uint64_t now_ms,
		       struct outcome *o, int err, const struct rsd_fail *f, cJSON *extra)
{
	outcome_release(o);
	o->err = err;
	o->status = 0;
	o->location[0] = '\0';
	o->fail = *f;
	if (extra) {
		o->body = json_print(extra);
		o->len = strlen(o->body);
		cJSON_Delete(extra);
	}
	return idempotency_remember(txn, s, k, now_ms, o);
}

int idempotency_finish(MDB_txn *txn, struct store *s, const char *principal, const char *key,
		       const struct outcome *o)
{
	struct idem_key k = {.present = true};
	snprintf(k.principal, sizeof(k.principal), "%s", principal);
	snprintf(k.key, sizeof(k.key), "%s", key);
	unsigned char rk[RECORD_KEY_BYTES_MAX];
	MDB_val mk = {.mv_size = record_key(&k, rk), .mv_data = rk}, mv;
	int rc = mdb_get(txn, s->idempotency, &mk, &mv);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc || mv.mv_size < HEAD_BYTES)
		return RSD_EIO;
	memcpy(k.fingerprint, (unsigned char *)mv.mv_data + 12, 32);
	return idempotency_put(txn, s, &k, rsd_get_be64(mv.mv_data), o);
}
