/*
 * inventory.c — counters per (product, day, slot), restrictions, and the staff command
 * that sets them. Invariant kept by every writer-side function here: sold + held never
 * exceeds capacity + overbooking as a result of a take (staff may not lower capacity
 * below it either), and no counter goes below zero.
 *
 * Key: the product id zero-padded to ENTITY_ID_BYTES_MAX + 1 bytes, the day as be32 and
 * the slot as be16, so one product's counters are adjacent and in date order. Day 0
 * (1970-01-01, never bookable: dates are checked to be in this century) holds the
 * product's settings (struct inv_product).
 */
#include "inventory.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "eventlog.h"
#include "json.h"
#include "price.h"
#include "banned.h"

#define KEY_BYTES     (ENTITY_ID_BYTES_MAX + 1 + 4 + 2)
#define DAY_BYTES     32 /* version 8, capacity/sold/held 4 each, 4 x u16, flags 1, pad 3 */
#define PRODUCT_BYTES 12
#define COUNT(a)      (sizeof(a) / sizeof((a)[0]))
#define FIRST_DAY     10957 /* 2000-01-01: earlier dates are refused */

static void make_key(unsigned char key[KEY_BYTES], const char *product, int32_t day, uint16_t slot)
{
	memset(key, 0, ENTITY_ID_BYTES_MAX + 1);
	memcpy(key, product, strnlen(product, ENTITY_ID_BYTES_MAX));
	rsd_put_be32(key + ENTITY_ID_BYTES_MAX + 1, (uint32_t)day);
	rsd_put_be16(key + ENTITY_ID_BYTES_MAX + 5, slot);
}

static void encode_day(const struct inv_day *d, unsigned char *p)
{
	memset(p, 0, DAY_BYTES);
	rsd_put_be64(p, d->version);
	rsd_put_be32(p + 8, d->capacity);
	rsd_put_be32(p + 12, d->sold);
	rsd_put_be32(p + 16, d->held);
	rsd_put_be16(p + 20, d->min_stay);
	rsd_put_be16(p + 22, d->max_stay);
	rsd_put_be16(p + 24, d->min_advance_days);
	rsd_put_be16(p + 26, d->max_advance_days);
	p[28] = d->flags;
}

static void decode_day(const unsigned char *p, struct inv_day *d)
{
	d->version = rsd_get_be64(p);
	d->capacity = rsd_get_be32(p + 8);
	d->sold = rsd_get_be32(p + 12);
	d->held = rsd_get_be32(p + 16);
	d->min_stay = rsd_get_be16(p + 20);
	d->max_stay = rsd_get_be16(p + 22);
	d->min_advance_days = rsd_get_be16(p + 24);
	d->max_advance_days = rsd_get_be16(p + 26);
	d->flags = p[28];
}

int inventory_day_get(MDB_txn *txn, struct store *s, const char *product, int32_t day,
		      uint16_t slot, struct inv_day *out)
{
	unsigned char key[KEY_BYTES];
	make_key(key, product, day, slot);
	MDB_val k = {.mv_size = KEY_BYTES, .mv_data = key}, v;
	memset(out, 0, sizeof(*out));
	int rc = mdb_get(txn, s->inventory, &k, &v);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc || v.mv_size != DAY_BYTES)
		return RSD_EIO;
	decode_day(v.mv_data, out);
	return RSD_OK;
}

static int day_put(MDB_txn *txn, struct store *s, const char *product, int32_t day, uint16_t slot,
		   const struct inv_day *d)
{
	unsigned char key[KEY_BYTES], val[DAY_BYTES];
	make_key(key, product, day, slot);
	encode_day(d, val);
	MDB_val k = {.mv_size = KEY_BYTES, .mv_data = key},
		v = {.mv_size = DAY_BYTES, .mv_data = val};
	return store_err(mdb_put(txn, s->inventory, &k, &v, 0));
}

int inventory_product_get(MDB_txn *txn, struct store *s, const char *product,
			  struct inv_product *out)
{
	unsigned char key[KEY_BYTES];
	make_key(key, product, 0, 0);
	MDB_val k = {.mv_size = KEY_BYTES, .mv_data = key}, v;
	memset(out, 0, sizeof(*out));
	/* Versions start at 1: an ETag "0" would read as no If-Match at all. */
	out->version = 1;
	int rc = mdb_get(txn, s->inventory, &k, &v);
	if (rc == MDB_NOTFOUND)
		return RSD_OK;
	if (rc || v.mv_size != PRODUCT_BYTES)
		return RSD_EIO;
	out->version = rsd_get_be64(v.mv_data);
	out->overbooking = rsd_get_be32((unsigned char *)v.mv_data + 8);
	return RSD_OK;
}

static int product_put(MDB_txn *txn, struct store *s, const char *product,
		       const struct inv_product *p)
{
	unsigned char key[KEY_BYTES], val[PRODUCT_BYTES];
	make_key(key, product, 0, 0);
	rsd_put_be64(val, p->version);
	rsd_put_be32(val + 8, p->overbooking);
	MDB_val k = {.mv_size = KEY_BYTES, .mv_data = key},
		v = {.mv_size = PRODUCT_BYTES, .mv_data = val};
	return store_err(mdb_put(txn, s->inventory, &k, &v, 0));
}

uint32_t inventory_free(const struct inv_day *d, uint32_t overbooking)
{
	uint64_t limit = (uint64_t)d->capacity + overbooking, used = (uint64_t)d->sold + d->held;
	return used >= limit ? 0 : (uint32_t)(limit - used);
}

/* --- the checks a stay must pass --- */

/* Fills why (when wanted) with the reason and, for sold_out, what is left. */
static cJSON *why_new(const char *reason)
{
	cJSON *w = cJSON_CreateObject();
	cJSON_AddStringToObject(w, "reason", reason);
	return w;
}

static void remaining_add(cJSON *why, const char *product, int32_t day, uint32_t available)
{
	cJSON *list = cJSON_GetObjectItem(why, "remaining");
	if (!list)
		list = cJSON_AddArrayToObject(why, "remaining");
	char date[11];
	price_format_date(day, date);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "product_id", product);
	cJSON_AddStringToObject(o, "date", date);
	cJSON_AddNumberToObject(o, "available", available);
	cJSON_AddItemToArray(list, o);
}

/*
 * The restrictions of a stay that do not depend on counts: read from the arrival day's
 * counter (length of stay, advance, closed to arrival), every night (stop-sell) and the
 * departure day (closed to departure). Returns the reason or NULL.
 */
static const char *restriction(const struct inv_day *arrival, const struct inv_day *departure,
			       const struct inv_item *it, int32_t today)
{
	int32_t nights = it->to_day - it->from_day, advance = it->from_day - today;
	if (arrival->flags & INV_CLOSED_TO_ARRIVAL)
		return "closed_to_arrival";
	if (departure->flags & INV_CLOSED_TO_DEPARTURE)
		return "closed_to_departure";
	if (arrival->min_stay && nights < arrival->min_stay)
		return "min_stay";
	if (arrival->max_stay && nights > arrival->max_stay)
		return "max_stay";
	if (advance < 0)
		return "in_the_past";
	if (arrival->min_advance_days && advance < arrival->min_advance_days)
		return "min_advance";
	if (arrival->max_advance_days && advance > arrival->max_advance_days)
		return "max_advance";
	return NULL;
}

static const char *reason_text(const char *reason)
{
	static const struct {
		const char *reason, *text;
	} texts[] = {
		{"closed_to_arrival", "arrival is closed on that day"},
		{"closed_to_departure", "departure is closed on that day"},
		{"min_stay", "the stay is shorter than the minimum for that arrival"},
		{"max_stay", "the stay is longer than the maximum for that arrival"},
		{"in_the_past", "the stay starts in the past"},
		{"min_advance", "the arrival is too soon to book"},
		{"max_advance", "the arrival is too far ahead to book"},
		{"stop_sell", "sales are stopped on a night of the stay"},
		{"sold_out", "not enough left on a night of the stay"},
	};
	for (size_t i = 0; i < COUNT(texts); i++)
		if (strcmp(texts[i].reason, reason) == 0)
			return texts[i].text;
	return reason;
}

/* Checks one item's restrictions (arrival and departure counters). */
static int check_restrictions(MDB_txn *txn, struct store *s, const struct inv_item *it,
			      int32_t today, const char **reason)
{
	struct inv_day arrival, departure;
	int err;
	if ((err = inventory_day_get(txn, s, it->product_id, it->from_day, it->slot, &arrival)) ||
	    (err = inventory_day_get(txn, s, it->product_id, it->to_day, it->slot, &departure)))
		return err;
	*reason = restriction(&arrival, &departure, it, today);
	return RSD_OK;
}

static int fail_with(const char *reason, const struct inv_item *it, int index, cJSON **why,
		     cJSON *w, struct rsd_fail *f)
{
	if (why)
		*why = w ? w : why_new(reason);
	else
		cJSON_Delete(w);
	char field[32];
	snprintf(field, sizeof(field), "items[%d]", index);
	return rsd_failf(f, RSD_ECONFLICT, field, "%s (%.48s)", reason_text(reason),
			 it->product_id);
}

/* Adds held_sign * qty to held and sold_sign * qty to sold (signs -1, 0 or 1) on every day
 * of items[0..n): the one place counters move. RSD_EINTERNAL when one would go below zero
 * (the log and the counters disagree). */
static int add_units(MDB_txn *txn, struct store *s, const struct inv_item *items, int n,
		     int held_sign, int sold_sign, struct rsd_fail *f)
{
	for (int i = 0; i < n; i++) {
		const struct inv_item *it = &items[i];
		for (int32_t day = it->from_day; day < it->to_day; day++) {
			struct inv_day d;
			int err = inventory_day_get(txn, s, it->product_id, day, it->slot, &d);
			if (err)
				return err;
			if ((held_sign < 0 && d.held < it->qty) ||
			    (sold_sign < 0 && d.sold < it->qty))
				return rsd_failf(f, RSD_EINTERNAL, "",
						 "inventory of %.48s on day %d would go below zero",
						 it->product_id, (int)day);
			d.held = (uint32_t)((int64_t)d.held + held_sign * (int64_t)it->qty);
			d.sold = (uint32_t)((int64_t)d.sold + sold_sign * (int64_t)it->qty);
			d.version++;
			if ((err = day_put(txn, s, it->product_id, day, it->slot, &d)))
				return err;
		}
	}
	return RSD_OK;
}

/* Units that items[0..i) of the same request take of item i's product on day at its slot. */
static uint32_t taken_before(const struct inv_item *items, int i, int32_t day)
{
	uint32_t sum = 0;
	for (int j = 0; j < i; j++)
		if (items[j].slot == items[i].slot && day >= items[j].from_day &&
		    day < items[j].to_day && strcmp(items[j].product_id, items[i].product_id) == 0)
			sum += items[j].qty;
	return sum;
}

/* Checks item i of items against the counters, counting what earlier items take. */
static int check_item(MDB_txn *txn, struct store *s, const struct inv_item *items, int i,
		      int32_t today, cJSON **why, struct rsd_fail *f)
{
	const struct inv_item *it = &items[i];
	const char *reason = NULL;
	struct inv_product prod;
	int err;
	if ((err = check_restrictions(txn, s, it, today, &reason)) ||
	    (err = inventory_product_get(txn, s, it->product_id, &prod)))
		return err;
	if (reason)
		return fail_with(reason, it, i, why, NULL, f);
	cJSON *short_of = NULL;
	for (int32_t day = it->from_day; day < it->to_day; day++) {
		struct inv_day d;
		if ((err = inventory_day_get(txn, s, it->product_id, day, it->slot, &d))) {
			cJSON_Delete(short_of);
			return err;
		}
		if (d.flags & INV_STOP_SELL) {
			cJSON_Delete(short_of);
			return fail_with("stop_sell", it, i, why, NULL, f);
		}
		uint32_t available = inventory_free(&d, prod.overbooking);
		uint32_t before = taken_before(items, i, day);
		available = available > before ? available - before : 0;
		if (available < it->qty) {
			if (!short_of)
				short_of = why_new("sold_out");
			remaining_add(short_of, it->product_id, day, available);
		}
	}
	return short_of ? fail_with("sold_out", it, i, why, short_of, f) : RSD_OK;
}

int inventory_take(MDB_txn *txn, struct store *s, const struct inv_item *items, int n,
		   int32_t today, bool as_sold, cJSON **why, struct rsd_fail *f)
{
	if (why)
		*why = NULL;
	/* Every check before any write: a refusal leaves the transaction untouched, so the
	 * caller can still record the refusal (an idempotency key's answer) in it. */
	for (int i = 0; i < n; i++) {
		int err = check_item(txn, s, items, i, today, why, f);
		if (err)
			return err;
	}
	return add_units(txn, s, items, n, as_sold ? 0 : 1, as_sold ? 1 : 0, f);
}

int inventory_move(MDB_txn *txn, struct store *s, const struct inv_item *items, int n,
		   enum inv_move move, struct rsd_fail *f)
{
	switch (move) {
	case INV_RELEASE_HELD: return add_units(txn, s, items, n, -1, 0, f);
	case INV_CONFIRM: return add_units(txn, s, items, n, -1, 1, f);
	case INV_RELEASE_SOLD: return add_units(txn, s, items, n, 0, -1, f);
	}
	return RSD_EINTERNAL;
}

/* --- staff changes --- */

int inventory_parse_slot(const char *s, uint16_t *slot)
{
	if (!s) {
		*slot = 0;
		return RSD_OK;
	}
	if (strlen(s) != 5 || s[2] != ':')
		return RSD_EINVAL;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return RSD_EINVAL;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return RSD_EINVAL;
	*slot = (uint16_t)(h * 60 + m + 1);
	return RSD_OK;
}

void inventory_format_slot(uint16_t slot, char out[6])
{
	if (slot == 0) {
		out[0] = '\0';
		return;
	}
	unsigned minute = (slot - 1u) % 1440u;
	out[0] = (char)('0' + minute / 600);
	out[1] = (char)('0' + minute / 60 % 10);
	out[2] = ':';
	out[3] = (char)('0' + minute % 60 / 10);
	out[4] = (char)('0' + minute % 10);
	out[5] = '\0';
}

int32_t inventory_today(void)
{
	/* The appliance runs in its resort's time zone: "today" is the resort's date. */
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	char date[48];
	snprintf(date, sizeof(date), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday);
	int32_t day = 0;
	price_parse_date(date, &day);
	return day;
}

static const struct json_field set_fields[] = {
	{"from", JSON_STRING, JSON_REQUIRED, 10, 10},
	{"to", JSON_STRING, JSON_REQUIRED, 10, 10},
	{"slot", JSON_STRING, JSON_NULLABLE, 5, 5},
	{"capacity", JSON_INT, 0, 0, CAPACITY_COUNT_MAX},
	{"overbooking", JSON_INT, 0, 0, CAPACITY_COUNT_MAX},
	{"stop_sell", JSON_BOOL, 0, 0, 0},
	{"closed_to_arrival", JSON_BOOL, 0, 0, 0},
	{"closed_to_departure", JSON_BOOL, 0, 0, 0},
	{"min_stay", JSON_INT, JSON_NULLABLE, 1, STAY_NIGHTS_MAX},
	{"max_stay", JSON_INT, JSON_NULLABLE, 1, STAY_NIGHTS_MAX},
	{"min_advance_days", JSON_INT, JSON_NULLABLE, 1, ADVANCE_DAYS_MAX},
	{"max_advance_days", JSON_INT, JSON_NULLABLE, 1, ADVANCE_DAYS_MAX},
};

/* Reads an optional nullable small integer: null clears it (0). */
static void get_u16(const cJSON *obj, const char *name, bool *has, uint16_t *out)
{
	const cJSON *v = cJSON_GetObjectItem(obj, name);
	*has = v != NULL;
	*out = v && cJSON_IsNumber(v) ? (uint16_t)v->valuedouble : 0;
}

static void get_bool(const cJSON *obj, const char *name, bool *has, bool *out)
{
	const cJSON *v = cJSON_GetObjectItem(obj, name);
	*has = v != NULL;
	*out = v && cJSON_IsTrue(v);
}

/* Parses a date member in this century; range checks are the caller's. */
static int get_date(const cJSON *obj, const char *name, int32_t *day, struct rsd_fail *f)
{
	const char *s = json_get_string(obj, name);
	if (!s || price_parse_date(s, day) != RSD_OK || *day < INVENTORY_FIRST_DAY)
		return rsd_failf(f, RSD_EINVAL, name,
				 "'%s' must be a date YYYY-MM-DD from 2000-01-01 on", name);
	return RSD_OK;
}

int inventory_decode_range(const cJSON *obj, int32_t *from, int32_t *to, int32_t max_days,
			   struct rsd_fail *f)
{
	int err;
	if ((err = get_date(obj, "from", from, f)) || (err = get_date(obj, "to", to, f)))
		return err;
	if (*to <= *from || *to - *from > max_days)
		return rsd_failf(f, RSD_EINVAL, "to",
				 "'to' must be after 'from', at most %d days later", (int)max_days);
	return RSD_OK;
}

int inventory_decode_set(const char *product, const char *body, size_t len,
			 struct inventory_set *out, struct rsd_fail *f)
{
	cJSON *obj;
	int err = json_parse_strict(body, len, &obj, f);
	if (err)
		return err;
	memset(out, 0, sizeof(*out));
	snprintf(out->product_id, sizeof(out->product_id), "%s", product);
	if ((err = json_check_object(obj, set_fields, COUNT(set_fields), f)) ||
	    (err = inventory_decode_range(obj, &out->from_day, &out->to_day,
					  INVENTORY_RANGE_DAYS_MAX, f)))
		goto out;
	if (inventory_parse_slot(json_get_string(obj, "slot"), &out->slot) != RSD_OK) {
		err = rsd_failf(f, RSD_EINVAL, "slot", "'slot' must be a time HH:MM");
		goto out;
	}
	const cJSON *v;
	if ((out->has_capacity = (v = cJSON_GetObjectItem(obj, "capacity")) != NULL))
		out->capacity = (uint32_t)v->valuedouble;
	if ((out->has_overbooking = (v = cJSON_GetObjectItem(obj, "overbooking")) != NULL))
		out->overbooking = (uint32_t)v->valuedouble;
	get_bool(obj, "stop_sell", &out->has_stop_sell, &out->stop_sell);
	get_bool(obj, "closed_to_arrival", &out->has_cta, &out->cta);
	get_bool(obj, "closed_to_departure", &out->has_ctd, &out->ctd);
	get_u16(obj, "min_stay", &out->has_min_stay, &out->min_stay);
	get_u16(obj, "max_stay", &out->has_max_stay, &out->max_stay);
	get_u16(obj, "min_advance_days", &out->has_min_advance, &out->min_advance_days);
	get_u16(obj, "max_advance_days", &out->has_max_advance, &out->max_advance_days);
	if (cJSON_GetArraySize(obj) == 2 + (cJSON_GetObjectItem(obj, "slot") != NULL))
		err = rsd_failf(f, RSD_EINVAL, "",
				"nothing to set: name capacity, overbooking or a restriction");
out:
	cJSON_Delete(obj);
	return err;
}

/* Applies set's fields to one counter. */
static void set_day(struct inv_day *d, const struct inventory_set *set)
{
	if (set->has_capacity)
		d->capacity = set->capacity;
	if (set->has_stop_sell)
		d->flags = (uint8_t)((d->flags & ~INV_STOP_SELL) |
				     (set->stop_sell ? INV_STOP_SELL : 0));
	if (set->has_cta)
		d->flags = (uint8_t)((d->flags & ~INV_CLOSED_TO_ARRIVAL) |
				     (set->cta ? INV_CLOSED_TO_ARRIVAL : 0));
	if (set->has_ctd)
		d->flags = (uint8_t)((d->flags & ~INV_CLOSED_TO_DEPARTURE) |
				     (set->ctd ? INV_CLOSED_TO_DEPARTURE : 0));
	if (set->has_min_stay)
		d->min_stay = set->min_stay;
	if (set->has_max_stay)
		d->max_stay = set->max_stay;
	if (set->has_min_advance)
		d->min_advance_days = set->min_advance_days;
	if (set->has_max_advance)
		d->max_advance_days = set->max_advance_days;
	d->version++;
}

static int over_committed(const char *product, int32_t day, struct rsd_fail *f)
{
	char date[11];
	price_format_date(day, date);
	return rsd_failf(f, RSD_ECONFLICT, "capacity",
			 "%.48s has more sold and held on %s than the new capacity allows", product,
			 date);
}

/* A lower overbooking allowance must still cover every day already taken. */
static int check_overbooking(MDB_txn *txn, struct store *s, const struct inventory_set *set,
			     struct rsd_fail *f)
{
	unsigned char key[KEY_BYTES];
	make_key(key, set->product_id, 1, 0);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->inventory, &c);
	if (rc)
		return store_err(rc);
	MDB_val k = {.mv_size = KEY_BYTES, .mv_data = key}, v;
	int err = RSD_OK;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && !err;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != KEY_BYTES || memcmp(k.mv_data, key, ENTITY_ID_BYTES_MAX + 1) != 0)
			break;
		struct inv_day d;
		decode_day(v.mv_data, &d);
		int32_t day =
			(int32_t)rsd_get_be32((unsigned char *)k.mv_data + ENTITY_ID_BYTES_MAX + 1);
		uint16_t slot = rsd_get_be16((unsigned char *)k.mv_data + ENTITY_ID_BYTES_MAX + 5);
		bool in_range = day >= set->from_day && day < set->to_day && slot == set->slot;
		uint32_t capacity = in_range && set->has_capacity ? set->capacity : d.capacity;
		if ((uint64_t)d.sold + d.held > (uint64_t)capacity + set->overbooking)
			err = over_committed(set->product_id, day, f);
	}
	mdb_cursor_close(c);
	if (!err && rc != 0 && rc != MDB_NOTFOUND)
		err = store_err(rc);
	return err;
}

static cJSON *set_event(const struct inventory_set *set, uint64_t version)
{
	char from[11], to[11], slot[6];
	price_format_date(set->from_day, from);
	price_format_date(set->to_day, to);
	inventory_format_slot(set->slot, slot);
	cJSON *e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "product_id", set->product_id);
	cJSON_AddStringToObject(e, "from", from);
	cJSON_AddStringToObject(e, "to", to);
	if (slot[0])
		cJSON_AddStringToObject(e, "slot", slot);
#define ADD_NUM(has, name, val)                                                                    \
	if (set->has)                                                                              \
	cJSON_AddNumberToObject(e, name, (double)(val))
#define ADD_BOOL(has, name, val)                                                                   \
	if (set->has)                                                                              \
	cJSON_AddBoolToObject(e, name, val)
	ADD_NUM(has_capacity, "capacity", set->capacity);
	ADD_NUM(has_overbooking, "overbooking", set->overbooking);
	ADD_BOOL(has_stop_sell, "stop_sell", set->stop_sell);
	ADD_BOOL(has_cta, "closed_to_arrival", set->cta);
	ADD_BOOL(has_ctd, "closed_to_departure", set->ctd);
	ADD_NUM(has_min_stay, "min_stay", set->min_stay);
	ADD_NUM(has_max_stay, "max_stay", set->max_stay);
	ADD_NUM(has_min_advance, "min_advance_days", set->min_advance_days);
	ADD_NUM(has_max_advance, "max_advance_days", set->max_advance_days);
#undef ADD_NUM
#undef ADD_BOOL
	cJSON_AddNumberToObject(e, "version", (double)version);
	return e;
}

static int set_apply(struct writer_txn *wt, struct command *cmd)
{
	struct inventory_cmd *ic = (struct inventory_cmd *)cmd;
	const struct inventory_set *set = &ic->set;
	struct entity_rec rec;
	int err = store_entity_get(wt->txn, wt->store, set->product_id, &rec);
	if (err == RSD_ENOTFOUND || (!err && (rec.kind != ENTITY_PRODUCT || rec.deleted)))
		return rsd_failf(&cmd->fail, RSD_ENOTFOUND, "", "no product with id '%.48s'",
				 set->product_id);
	if (err)
		return err;
	if (rec.sub == PRODUCT_PACKAGE)
		return rsd_failf(&cmd->fail, RSD_ECONFLICT, "",
				 "a package has no inventory of its own: set its components'");
	struct inv_product prod;
	if ((err = inventory_product_get(wt->txn, wt->store, set->product_id, &prod)))
		return err;
	if (ic->if_match && ic->if_match != prod.version)
		return rsd_failf(&cmd->fail, RSD_EPRECONDITION, "",
				 "the inventory changed: its version is %llu",
				 (unsigned long long)prod.version);
	if (set->has_overbooking) {
		prod.overbooking = set->overbooking;
		if ((err = check_overbooking(wt->txn, wt->store, set, &cmd->fail)))
			return err;
	}
	for (int32_t day = set->from_day; day < set->to_day; day++) {
		struct inv_day d;
		if ((err = inventory_day_get(wt->txn, wt->store, set->product_id, day, set->slot,
					     &d)))
			return err;
		set_day(&d, set);
		if ((uint64_t)d.sold + d.held > (uint64_t)d.capacity + prod.overbooking)
			return over_committed(set->product_id, day, &cmd->fail);
		if ((err = day_put(wt->txn, wt->store, set->product_id, day, set->slot, &d)))
			return err;
	}
	prod.version++;
	if ((err = product_put(wt->txn, wt->store, set->product_id, &prod)))
		return err;
	ic->version = prod.version;
	return writer_emit_json(wt, EVENT_INVENTORY_SET, set_event(set, prod.version));
}

void inventory_cmd_init(struct inventory_cmd *ic, const struct inventory_set *set,
			uint64_t if_match)
{
	memset(ic, 0, sizeof(*ic));
	ic->cmd.apply = set_apply;
	ic->set = *set;
	ic->if_match = if_match;
}

/* --- reads --- */

static void add_restriction(cJSON *o, const char *name, uint16_t v)
{
	if (v)
		cJSON_AddNumberToObject(o, name, v);
	else
		cJSON_AddNullToObject(o, name);
}

static cJSON *day_json(int32_t day, const struct inv_day *d, uint32_t overbooking)
{
	char date[11];
	price_format_date(day, date);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "date", date);
	cJSON_AddNumberToObject(o, "capacity", d->capacity);
	cJSON_AddNumberToObject(o, "sold", d->sold);
	cJSON_AddNumberToObject(o, "held", d->held);
	cJSON_AddNumberToObject(o, "available", inventory_free(d, overbooking));
	cJSON_AddBoolToObject(o, "stop_sell", (d->flags & INV_STOP_SELL) != 0);
	cJSON_AddBoolToObject(o, "closed_to_arrival", (d->flags & INV_CLOSED_TO_ARRIVAL) != 0);
	cJSON_AddBoolToObject(o, "closed_to_departure", (d->flags & INV_CLOSED_TO_DEPARTURE) != 0);
	add_restriction(o, "min_stay", d->min_stay);
	add_restriction(o, "max_stay", d->max_stay);
	add_restriction(o, "min_advance_days", d->min_advance_days);
	add_restriction(o, "max_advance_days", d->max_advance_days);
	return o;
}

/* RSD_OK when product is a live product in txn, else RSD_ENOTFOUND (or RSD_EIO). */
static int live_product(MDB_txn *txn, struct store *s, const char *product)
{
	struct entity_rec rec;
	int err = store_entity_get(txn, s, product, &rec);
	if (!err && (rec.kind != ENTITY_PRODUCT || rec.deleted))
		err = RSD_ENOTFOUND;
	return err;
}

int inventory_doc(MDB_txn *txn, struct store *s, const char *product, int32_t from_day,
		  int32_t to_day, uint16_t slot, cJSON **out, uint64_t *version)
{
	struct inv_product prod;
	int err = live_product(txn, s, product);
	if (err)
		return err;
	if ((err = inventory_product_get(txn, s, product, &prod)))
		return err;
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "product_id", product);
	char slot_text[6];
	inventory_format_slot(slot, slot_text);
	if (slot_text[0])
		cJSON_AddStringToObject(doc, "slot", slot_text);
	cJSON_AddNumberToObject(doc, "version", (double)prod.version);
	cJSON_AddNumberToObject(doc, "overbooking", prod.overbooking);
	cJSON *days = cJSON_AddArrayToObject(doc, "days");
	for (int32_t day = from_day; day < to_day; day++) {
		struct inv_day d;
		if ((err = inventory_day_get(txn, s, product, day, slot, &d))) {
			cJSON_Delete(doc);
			return err;
		}
		cJSON_AddItemToArray(days, day_json(day, &d, prod.overbooking));
	}
	*out = doc;
	*version = prod.version;
	return RSD_OK;
}

int inventory_availability(MDB_txn *txn, struct store *s, const struct inv_item *it, int32_t today,
			   cJSON **out)
{
	struct inv_product prod;
	const char *reason = NULL;
	int err;
	if ((err = live_product(txn, s, it->product_id)) ||
	    (err = inventory_product_get(txn, s, it->product_id, &prod)) ||
	    (err = check_restrictions(txn, s, it, today, &reason)))
		return err;
	cJSON *doc = cJSON_CreateObject();
	cJSON *nights = cJSON_CreateArray();
	for (int32_t day = it->from_day; day < it->to_day; day++) {
		struct inv_day d;
		if ((err = inventory_day_get(txn, s, it->product_id, day, it->slot, &d))) {
			cJSON_Delete(doc);
			cJSON_Delete(nights);
			return err;
		}
		uint32_t available =
			d.flags & INV_STOP_SELL ? 0 : inventory_free(&d, prod.overbooking);
		if (!reason && (d.flags & INV_STOP_SELL))
			reason = "stop_sell";
		if (!reason && available < it->qty)
			reason = "sold_out";
		char date[11];
		price_format_date(day, date);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "date", date);
		cJSON_AddNumberToObject(o, "available", available);
		cJSON_AddItemToArray(nights, o);
	}
	char from[11], to[11];
	price_format_date(it->from_day, from);
	price_format_date(it->to_day, to);
	cJSON_AddStringToObject(doc, "product_id", it->product_id);
	cJSON_AddStringToObject(doc, "from", from);
	cJSON_AddStringToObject(doc, "to", to);
	cJSON_AddNumberToObject(doc, "qty", it->qty);
	cJSON_AddBoolToObject(doc, "available", reason == NULL);
	if (reason)
		cJSON_AddStringToObject(doc, "reason", reason);
	else
		cJSON_AddNullToObject(doc, "reason");
	cJSON_AddItemToObject(doc, "nights", nights);
	*out = doc;
	return RSD_OK;
}
