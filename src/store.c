/*
 * store.c — opening the LMDB environment durably, the reader pattern, entity records.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "logger.h"
#include "banned.h"

/* kind u8, deleted u8, version be64, then optionally sub u8 and the owner id's bytes. */
#define ENTITY_REC_BYTES 10

int store_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return RSD_OK;
	case MDB_NOTFOUND: return RSD_ENOTFOUND;
	case MDB_MAP_FULL: return RSD_EFULL;
	default: return RSD_EIO;
	}
}

static int make_dir(const char *path, struct rsd_fail *f)
{
	if (mkdir(path, 0750) != 0 && errno != EEXIST)
		return rsd_failf(f, RSD_EIO, "data_dir", "cannot create %s: %s", path,
				 strerror(errno));
	return RSD_OK;
}

static int open_dbs(struct store *s, MDB_txn *txn)
{
	int rc;
	if ((rc = mdb_dbi_open(txn, "log", MDB_CREATE, &s->log)) ||
	    (rc = mdb_dbi_open(txn, "entities", MDB_CREATE, &s->entities)) ||
	    (rc = mdb_dbi_open(txn, "cursors", MDB_CREATE, &s->cursors)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) ||
	    (rc = mdb_dbi_open(txn, "inventory", MDB_CREATE, &s->inventory)) ||
	    (rc = mdb_dbi_open(txn, "holds", MDB_CREATE, &s->holds)) ||
	    (rc = mdb_dbi_open(txn, "bookings", MDB_CREATE, &s->bookings)) ||
	    (rc = mdb_dbi_open(txn, "idempotency", MDB_CREATE, &s->idempotency)) ||
	    (rc = mdb_dbi_open(txn, "expiry", MDB_CREATE, &s->expiry)) ||
	    (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &s->sessions)) ||
	    (rc = mdb_dbi_open(txn, "refresh", MDB_CREATE, &s->refresh)) ||
	    (rc = mdb_dbi_open(txn, "users", MDB_CREATE, &s->users)))
		return rc;
	return MDB_SUCCESS;
}

/* Settles the node id: stored wins unless the config names a different one (refused). */
static int settle_node_id(struct store *s, MDB_txn *txn, const char *wanted, struct rsd_fail *f)
{
	MDB_val key = {.mv_size = 7, .mv_data = "node_id"}, val;
	int rc = mdb_get(txn, s->meta, &key, &val);
	if (rc == MDB_SUCCESS) {
		if (val.mv_size > NODE_ID_BYTES_MAX)
			return rsd_failf(f, RSD_EIO, "node_id", "stored node id is corrupt");
		memcpy(s->node_id, val.mv_data, val.mv_size);
		s->node_id[val.mv_size] = '\0';
		if (wanted[0] && strcmp(wanted, s->node_id) != 0)
			return rsd_failf(f, RSD_EINVAL, "node_id",
					 "configured node id '%s' differs from the stored '%s'",
					 wanted, s->node_id);
		return RSD_OK;
	}
	if (rc != MDB_NOTFOUND)
		return rsd_failf(f, store_err(rc), "", "reading node id: %s", mdb_strerror(rc));
	if (wanted[0]) {
		snprintf(s->node_id, sizeof(s->node_id), "%s", wanted);
	} else {
		rsd_id_new("n", s->node_id, sizeof(s->node_id));
		s->node_id[9] = '\0'; /* "n" + 8 hex digits is unique enough for a group's nodes */
	}
	val.mv_size = strlen(s->node_id);
	val.mv_data = s->node_id;
	rc = mdb_put(txn, s->meta, &key, &val, 0);
	if (rc)
		return rsd_failf(f, store_err(rc), "", "storing node id: %s", mdb_strerror(rc));
	return RSD_OK;
}

int store_open(struct store *s, const char *dir, uint64_t map_bytes, const char *node_id,
	       struct rsd_fail *f)
{
	memset(s, 0, sizeof(*s));
	char path[4096];
	int err = make_dir(dir, f);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%.4000s/state", dir);
	if ((err = make_dir(path, f)))
		return err;
	int rc;
	MDB_txn *txn = NULL;
	if ((rc = mdb_env_create(&s->env)) || (rc = mdb_env_set_maxdbs(s->env, 16)) ||
	    (rc = mdb_env_set_maxreaders(s->env, 512)) ||
	    (rc = mdb_env_set_mapsize(s->env, (size_t)map_bytes))) {
		err = rsd_failf(f, RSD_EIO, "", "LMDB set-up: %s", mdb_strerror(rc));
		goto fail;
	}
	/* MDB_NOTLS: read transactions belong to our reader structs, not to threads. Nothing
	 * else: every commit is flushed before the writer answers. */
	if ((rc = mdb_env_open(s->env, path, MDB_NOTLS, 0640))) {
		err = rsd_failf(f, RSD_EIO, "data_dir", "cannot open LMDB at %s: %s", path,
				mdb_strerror(rc));
		goto fail;
	}
	int dead = 0;
	mdb_reader_check(s->env, &dead);
	if (dead > 0)
		logger_log(LOGGER_WARN, "cleared %d stale LMDB readers", dead);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn))) {
		err = rsd_failf(f, store_err(rc), "", "LMDB start-up transaction: %s",
				mdb_strerror(rc));
		goto fail;
	}
	if ((rc = open_dbs(s, txn))) {
		err = rsd_failf(f, store_err(rc), "", "opening LMDB databases: %s",
				mdb_strerror(rc));
		goto fail;
	}
	if ((err = settle_node_id(s, txn, node_id, f)))
		goto fail;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		err = rsd_failf(f, store_err(rc), "", "LMDB start-up commit: %s", mdb_strerror(rc));
		goto fail;
	}
	s->map_bytes = map_bytes;
	return RSD_OK;
fail:
	if (txn)
		mdb_txn_abort(txn);
	store_close(s);
	return err;
}

void store_close(struct store *s)
{
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
}

bool store_flags_durable(struct store *s)
{
	unsigned flags = 0;
	if (mdb_env_get_flags(s->env, &flags) != MDB_SUCCESS)
		return false;
	return (flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC | MDB_WRITEMAP)) == 0;
}

uint64_t store_map_used_bytes(struct store *s)
{
	MDB_envinfo info;
	MDB_stat st;
	if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st))
		return 0;
	return (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
}

int store_entity_get(MDB_txn *txn, struct store *s, const char *id, struct entity_rec *out)
{
	MDB_val key = {.mv_size = strlen(id), .mv_data = (void *)id}, val;
	int rc = mdb_get(txn, s->entities, &key, &val);
	if (rc)
		return store_err(rc);
	if (val.mv_size < ENTITY_REC_BYTES ||
	    val.mv_size > ENTITY_REC_BYTES + 1 + ENTITY_ID_BYTES_MAX)
		return RSD_EIO;
	const unsigned char *p = val.mv_data;
	memset(out, 0, sizeof(*out));
	out->kind = p[0];
	out->deleted = p[1] != 0;
	out->version = rsd_get_be64(p + 2);
	if (val.mv_size > ENTITY_REC_BYTES) {
		out->sub = p[ENTITY_REC_BYTES];
		memcpy(out->owner, p + ENTITY_REC_BYTES + 1, val.mv_size - ENTITY_REC_BYTES - 1);
	}
	return RSD_OK;
}

int store_entity_put(MDB_txn *txn, struct store *s, const char *id, const struct entity_rec *rec)
{
	unsigned char buf[ENTITY_REC_BYTES + 1 + ENTITY_ID_BYTES_MAX];
	size_t owner_len = strnlen(rec->owner, ENTITY_ID_BYTES_MAX);
	buf[0] = rec->kind;
	buf[1] = rec->deleted ? 1 : 0;
	rsd_put_be64(buf + 2, rec->version);
	size_t len = ENTITY_REC_BYTES;
	if (rec->sub || owner_len) {
		buf[len++] = rec->sub;
		memcpy(buf + len, rec->owner, owner_len);
		len += owner_len;
	}
	MDB_val key = {.mv_size = strlen(id), .mv_data = (void *)id};
	MDB_val val = {.mv_size = len, .mv_data = buf};
	return store_err(mdb_put(txn, s->entities, &key, &val, 0));
}

MDB_txn *store_reader_begin(struct store_reader *r)
{
	RSD_ASSERT(!r->active);
	int rc = r->txn ? mdb_txn_renew(r->txn)
			: mdb_txn_begin(r->store->env, NULL, MDB_RDONLY, &r->txn);
	if (rc) {
		logger_log(LOGGER_ERROR, "LMDB read transaction: %s", mdb_strerror(rc));
		return NULL;
	}
	r->active = 1;
	return r->txn;
}

void store_reader_end(struct store_reader *r)
{
	if (r->active)
		mdb_txn_reset(r->txn);
	r->active = 0;
}

uint64_t store_last_txnid(struct store *s)
{
	MDB_envinfo info;
	return mdb_env_info(s->env, &info) ? 0 : (uint64_t)info.me_last_txnid;
}

void store_reader_close(struct store_reader *r)
{
	if (r->txn)
		mdb_txn_abort(r->txn);
	r->txn = NULL;
	r->active = 0;
}

static size_t expiry_key(unsigned char *key, uint64_t ms, uint8_t kind, const void *id, size_t len)
{
	RSD_ASSERT(len <= EXPIRY_ID_BYTES_MAX);
	rsd_put_be64(key, ms);
	key[8] = kind;
	memcpy(key + 9, id, len);
	return 9 + len;
}

int store_expiry_add(MDB_txn *txn, struct store *s, uint64_t ms, uint8_t kind, const void *id,
		     size_t len)
{
	unsigned char key[9 + EXPIRY_ID_BYTES_MAX];
	MDB_val k = {.mv_size = expiry_key(key, ms, kind, id, len), .mv_data = key};
	MDB_val v = {.mv_size = 0, .mv_data = ""};
	return store_err(mdb_put(txn, s->expiry, &k, &v, 0));
}

int store_expiry_del(MDB_txn *txn, struct store *s, uint64_t ms, uint8_t kind, const void *id,
		     size_t len)
{
	unsigned char key[9 + EXPIRY_ID_BYTES_MAX];
	MDB_val k = {.mv_size = expiry_key(key, ms, kind, id, len), .mv_data = key};
	int rc = mdb_del(txn, s->expiry, &k, NULL);
	return rc == MDB_NOTFOUND ? RSD_OK : store_err(rc);
}
