/*
 * eventlog.c — encoding and walking the event log. No state of its own: the writer owns
 * the next seq, the projector and the replicator own their cursors.
 */
#include "eventlog.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

#define EVENTLOG_FORMAT 1

void eventlog_key(unsigned char key[EVENTLOG_KEY_BYTES], const char *origin, uint64_t seq)
{
	memset(key, 0, EVENTLOG_ORIGIN_BYTES);
	size_t n = strnlen(origin, NODE_ID_BYTES_MAX);
	memcpy(key, origin, n);
	rsd_put_be64(key + EVENTLOG_ORIGIN_BYTES, seq);
}

int eventlog_decode(const MDB_val *key, const MDB_val *val, struct event *ev)
{
	if (key->mv_size != EVENTLOG_KEY_BYTES || val->mv_size < EVENTLOG_HEADER_BYTES)
		return RSD_EIO;
	const unsigned char *k = key->mv_data, *v = val->mv_data;
	if (v[0] != EVENTLOG_FORMAT)
		return RSD_EIO;
	memcpy(ev->origin, k, NODE_ID_BYTES_MAX);
	ev->origin[NODE_ID_BYTES_MAX] = '\0';
	ev->seq = rsd_get_be64(k + EVENTLOG_ORIGIN_BYTES);
	ev->type = rsd_get_be16(v + 1);
	ev->ts_ms = rsd_get_be64(v + 3);
	ev->data = (const char *)v + EVENTLOG_HEADER_BYTES;
	ev->data_len = val->mv_size - EVENTLOG_HEADER_BYTES;
	return RSD_OK;
}

int eventlog_append(MDB_txn *txn, struct store *s, const struct event *ev)
{
	unsigned char key[EVENTLOG_KEY_BYTES];
	eventlog_key(key, ev->origin, ev->seq);
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key};
	MDB_val v = {.mv_size = EVENTLOG_HEADER_BYTES + ev->data_len, .mv_data = NULL};
	/* MDB_RESERVE: write the value straight into the map, without a staging copy. */
	int rc = mdb_put(txn, s->log, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST)
		return RSD_ECONFLICT;
	if (rc)
		return store_err(rc);
	unsigned char *p = v.mv_data;
	p[0] = EVENTLOG_FORMAT;
	rsd_put_be16(p + 1, ev->type);
	rsd_put_be64(p + 3, ev->ts_ms);
	memcpy(p + EVENTLOG_HEADER_BYTES, ev->data, ev->data_len);
	return RSD_OK;
}

int eventlog_head(MDB_txn *txn, struct store *s, const char *origin, uint64_t *seq)
{
	*seq = 0;
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->log, &c);
	if (rc)
		return store_err(rc);
	unsigned char key[EVENTLOG_KEY_BYTES];
	eventlog_key(key, origin, UINT64_MAX);
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	/* The last key of origin is the one just before (origin, max) or before the next origin. */
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_SUCCESS && memcmp(k.mv_data, key, EVENTLOG_KEY_BYTES) == 0)
		goto found;
	rc = mdb_cursor_get(c, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
found:
	if (rc == MDB_SUCCESS && k.mv_size == EVENTLOG_KEY_BYTES &&
	    memcmp(k.mv_data, key, EVENTLOG_ORIGIN_BYTES) == 0)
		*seq = rsd_get_be64((const unsigned char *)k.mv_data + EVENTLOG_ORIGIN_BYTES);
	mdb_cursor_close(c);
	return (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) ? RSD_OK : store_err(rc);
}

int eventlog_read(MDB_txn *txn, struct store *s, const char *origin, uint64_t seq, struct event *ev)
{
	unsigned char key[EVENTLOG_KEY_BYTES];
	eventlog_key(key, origin, seq);
	MDB_val k = {.mv_size = sizeof(key), .mv_data = key}, v;
	int rc = mdb_get(txn, s->log, &k, &v);
	if (rc)
		return store_err(rc);
	return eventlog_decode(&k, &v, ev);
}

int eventlog_iter_open(struct eventlog_iter *it, MDB_txn *txn, struct store *s, const char *origin,
		       uint64_t after)
{
	memset(it, 0, sizeof(*it));
	snprintf(it->origin, sizeof(it->origin), "%s", origin);
	it->after = after;
	return store_err(mdb_cursor_open(txn, s->log, &it->cursor));
}

int eventlog_iter_next(struct eventlog_iter *it, struct event *ev)
{
	MDB_val k, v;
	int rc;
	if (!it->started) {
		unsigned char key[EVENTLOG_KEY_BYTES];
		if (it->after == UINT64_MAX)
			return RSD_ENOTFOUND;
		eventlog_key(key, it->origin, it->after + 1);
		k.mv_size = sizeof(key);
		k.mv_data = key;
		rc = mdb_cursor_get(it->cursor, &k, &v, MDB_SET_RANGE);
		it->started = 1;
	} else {
		rc = mdb_cursor_get(it->cursor, &k, &v, MDB_NEXT);
	}
	if (rc)
		return store_err(rc);
	int err = eventlog_decode(&k, &v, ev);
	if (err)
		return err;
	if (strcmp(ev->origin, it->origin) != 0)
		return RSD_ENOTFOUND;
	return RSD_OK;
}

void eventlog_iter_close(struct eventlog_iter *it)
{
	if (it->cursor)
		mdb_cursor_close(it->cursor);
	it->cursor = NULL;
}

int eventlog_origins(MDB_txn *txn, struct store *s, int (*fn)(const char *origin, void *arg),
		     void *arg)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->log, &c);
	if (rc)
		return store_err(rc);
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == MDB_SUCCESS && ret == 0) {
		if (k.mv_size != EVENTLOG_KEY_BYTES) {
			ret = RSD_EIO;
			break;
		}
		char origin[NODE_ID_BYTES_MAX + 1];
		memcpy(origin, k.mv_data, NODE_ID_BYTES_MAX);
		origin[NODE_ID_BYTES_MAX] = '\0';
		ret = fn(origin, arg);
		if (ret)
			break;
		unsigned char next[EVENTLOG_KEY_BYTES];
		eventlog_key(next, origin, UINT64_MAX);
		k.mv_size = sizeof(next);
		k.mv_data = next;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_SUCCESS && memcmp(k.mv_data, next, EVENTLOG_KEY_BYTES) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (ret)
		return ret;
	return (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) ? RSD_OK : store_err(rc);
}
