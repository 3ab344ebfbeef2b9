/*
 * booking_engine.c — in-process booking benchmark (issue 4): resortd's core hold and
 * booking commands through the real writer, without HTTP or the catalog read model.
 *
 * Opens a fresh, durable store in a temp directory (store_open never sets the unsafe LMDB
 * flags; checked with store_flags_durable), starts the writer without a projector, makes
 * the product entity records (what PUT /v1/inventory and POST /v1/holds check) and sets
 * capacity with inventory_cmd:
 *   spread: 10 products x 100 nights (tomorrow on) = 1,000 room-nights;
 *   hot:    1 product, 1 night.
 * Capacity is 2,000,000,000 per night, as in the PostgreSQL peer (bench/booking_pg.sh), so
 * nothing sells out; it is set in-process, past the HTTP API's cap of 100,000.
 * Then for each case, N clients loop for a fixed time, driven by one thread per core
 * (BOOKING_DRIVERS overrides) as resortd's HTTP workers drive the writer: a hold (one item,
 * one night, qty 1, a hand-built struct hold_request with a frozen amount and a guest, as booking_http.c
 * builds after hold_decode and hold_price) through writer_submit, then a booking with payment
 * desk decoded by booking_decode from the JSON body POST /v1/bookings takes and prepared
 * from a read snapshot of the hold (booking_cmd_prepare, as booking_http.c does), through
 * writer_submit. A command's done call comes after the batch's commit is durable, so a
 * counted booking is a durable confirmed booking: two durable commands (hold, confirm) each.
 * At the end, in one read transaction: every night's sold equals the bookings confirmed on
 * it, held is 0, and the bookings database holds as many documents as were confirmed.
 *
 * Usage: booking_engine SECONDS CLIENTS CASE...     (CASE: spread | hot)
 * Output: a human line per case on stderr, and on stdout one machine line per case:
 *   RESULT case=<c> clients=<n> drivers=<d> secs=<s> bookings=<b> bookings_per_s=<x> p50_us=<> p99_us=<>
 *     hold_us_mean=<> confirm_us_mean=<> commits_per_s=<> mean_batch=<> cpu_us_per_booking=<>
 *     disk_kib_per_booking=<> refused=<r> errors=<e>
 * (cpu: the whole process, all threads; disk: write_bytes of /proc/self/io, what the
 * commits' writes and flushes sent to storage).
 * and CHECK nights=<n> sold=<s> confirmed=<c> bookings_db=<d> held=<h> mismatched=<m>
 *   map_bytes_per_booking=<LMDB map in use / bookings> ok=<0|1>.
 * Exit status 0 only when the check holds and no command failed.
 *
 * Build (bench/booking.sh does this):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/booking_engine.c
 *      (every build/release object except main.o) $(pkg-config --libs lmdb libevent ...)
 *      -lpthread -lm
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "booking.h"
#include "catalog.h"
#include "hold.h"
#include "inventory.h"
#include "rsd.h"
#include "store.h"
#include "writer.h"

#define CLIENTS_MAX	 1024
#define DRIVERS_MAX	 64
#define SPREAD_PRODUCTS	 10
#define SPREAD_NIGHTS	 100
#define NIGHTS		 (SPREAD_PRODUCTS * SPREAD_NIGHTS + 1) /* the last one is hot */
#define HOT_NIGHT_OFFSET 30
#define NIGHT_CAPACITY	 2000000000u
#define NIGHT_AMOUNT	 250000 /* KRW, one night */
#define MAP_BYTES	 (8ULL * 1024 * 1024 * 1024)
#define HOLD_TTL_MS	 600000 /* the default hold_ttl_s */

enum bench_case { CASE_SPREAD, CASE_HOT };

/* One bookable room-night: a counter and the bookings confirmed on it. */
struct night {
	char product_id[ENTITY_ID_BYTES_MAX + 1];
	int32_t day;
	_Atomic uint64_t confirmed;
};

static struct night nights[NIGHTS];
static struct writer *writer;
static struct store *store;
static atomic_bool stop_flag;

static double now_s(void)
{
	return (double)rsd_mono_ns() / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* --- setup: the product records and capacity --- */

struct product_cmd {
	struct command cmd;
	const char *id;
};

static int product_apply(struct writer_txn *wt, struct command *cmd)
{
	struct product_cmd *pc = (struct product_cmd *)cmd;
	struct entity_rec rec = {.kind = ENTITY_PRODUCT, .sub = PRODUCT_ROOM_TYPE, .version = 1};
	return store_entity_put(wt->txn, wt->store, pc->id, &rec);
}

static int setup_product(const char *id, int32_t from_day, int32_t to_day)
{
	struct product_cmd pc = {.cmd.apply = product_apply, .id = id};
	int err = writer_run(writer, &pc.cmd);
	if (err) {
		fprintf(stderr, "booking_engine: product %s: %s\n", id, rsd_strerror(err));
		return err;
	}
	struct inventory_set set = {.from_day = from_day,
				    .to_day = to_day,
				    .has_capacity = true,
				    .capacity = NIGHT_CAPACITY};
	snprintf(set.product_id, sizeof(set.product_id), "%s", id);
	struct inventory_cmd ic;
	inventory_cmd_init(&ic, &set, 0);
	if ((err = writer_run(writer, &ic.cmd)))
		fprintf(stderr, "booking_engine: inventory of %s: %s: %s\n", id, rsd_strerror(err),
			ic.cmd.fail.detail);
	return err;
}

/* --- the load --- */

/*
 * The clients are driven the way resortd's HTTP workers drive the writer: a few threads,
 * one per core, each with its share of the clients in flight. A command's done call (on
 * the writer thread) pushes its client onto its driver's completion stack and wakes the
 * driver only if it sleeps, so a batch costs the writer a wake per driver, not one per
 * client. 64 client threads on 2 cores measured the scheduler more than the engine: the
 * writer spent a fifth of its time in futex wakes.
 */
struct driver;

/* One client: a booking at a time, hold then confirm. */
struct client {
	struct driver *drv;
	struct client *next_done; /* the driver's completion stack */
	struct night *nt;
	bool booking; /* the command in flight: the hold (false) or the booking */
	bool idle;    /* stopped: nothing in flight */
	uint64_t t0, t1;
	struct hold_cmd hc;
	struct booking_cmd bc;
};

struct driver {
	pthread_t tid;
	enum bench_case which;
	uint64_t rng;
	struct client *clients;
	int n_clients;
	_Atomic(struct client *) done_head;
	_Atomic uint32_t sleeping; /* futex word: 1 while the driver waits */
	uint64_t bookings, refused, errors;
	int last_error;
	char last_detail[RSD_DETAIL_BYTES_MAX];
	uint64_t hold_ns, confirm_ns;
	uint32_t *lat_us; /* one per booking, hold start to confirm */
	size_t n_lat, cap_lat;
	struct store_reader reader; /* the hold read for booking_cmd_prepare */
};

static void lat_push(struct driver *d, uint64_t ns)
{
	if (d->n_lat == d->cap_lat) {
		d->cap_lat = d->cap_lat ? d->cap_lat * 2 : 4096;
		d->lat_us = rsd_realloc(d->lat_us, d->cap_lat * sizeof(*d->lat_us));
	}
	uint64_t us = ns / 1000;
	d->lat_us[d->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void fail_note(struct driver *d, int err, const struct rsd_fail *f)
{
	d->errors++;
	d->last_error = err;
	snprintf(d->last_detail, sizeof(d->last_detail), "%s", f->detail);
}

/* On the writer thread: hands the client back to its driver. */
static void client_done(struct command *cmd)
{
	struct client *c = cmd->arg;
	struct driver *d = c->drv;
	struct client *head = atomic_load(&d->done_head);
	do
		c->next_done = head;
	while (!atomic_compare_exchange_weak(&d->done_head, &head, c));
	if (atomic_exchange(&d->sleeping, 0) == 1)
		syscall(SYS_futex, (uint32_t *)&d->sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Queues cmd for c; false when the writer refuses it for good (c is then idle). */
static bool submit(struct client *c, struct command *cmd)
{
	cmd->done = client_done;
	cmd->arg = c;
	int err;
	while ((err = writer_submit(writer, cmd)) == RSD_EBUSY)
		usleep(100);
	if (err) {
		fail_note(c->drv, err, &cmd->fail);
		c->idle = true;
	}
	return err == RSD_OK;
}

static void start_hold(struct client *c)
{
	static const struct idem_key no_key; /* no Idempotency-Key, as most requests */
	struct driver *d = c->drv;
	c->nt = d->which == CASE_HOT ? &nights[NIGHTS - 1]
				     : &nights[xorshift(&d->rng) % (NIGHTS - 1)];
	c->booking = false;
	c->t0 = rsd_mono_ns();
	struct hold_request req;
	memset(&req, 0, sizeof(req));
	struct hold_item *it = &req.items[0];
	snprintf(it->inv.product_id, sizeof(it->inv.product_id), "%s", c->nt->product_id);
	it->inv.from_day = c->nt->day;
	it->inv.to_day = c->nt->day + 1;
	it->inv.qty = 1;
	it->amount = NIGHT_AMOUNT;
	it->free_cancel_days = 0;
	it->cancel_fee_percent = 100;
	req.n = 1;
	memcpy(req.currency, "KRW", 4);
	req.total = NIGHT_AMOUNT;
	req.guest = cJSON_CreateObject();
	cJSON_AddStringToObject(req.guest, "name", "Bench Guest");
	cJSON_AddStringToObject(req.guest, "email", "guest@example.com");
	hold_cmd_init(&c->hc, &req, &no_key, "bench", HOLD_TTL_MS);
	if (!submit(c, &c->hc.cmd))
		hold_cmd_release(&c->hc);
}

/* Errors after which a client stops: the store is full or failing, the writer stopping, or
 * too many of them (as the old one-thread-per-client loop did). */
static bool give_up(const struct driver *d)
{
	return d->last_error == RSD_EFULL || d->last_error == RSD_EIO ||
	       d->last_error == RSD_ESHUTDOWN || d->errors > 1000;
}

/* The hold is decided: a refusal ends this booking, a hold goes on to its confirm. */
static void hold_done(struct client *c, bool stopping)
{
	static const struct idem_key no_key;
	static const struct principal bench = {.sub = "bench", .role = ROLE_GUEST};
	struct driver *d = c->drv;
	struct hold_cmd *hc = &c->hc;
	int err = hc->cmd.result;
	if (err || hc->out.err) {
		if (!err && hc->out.err == RSD_ECONFLICT)
			d->refused++;
		else
			fail_note(d, err ? err : hc->out.err, err ? &hc->cmd.fail : &hc->out.fail);
		hold_cmd_release(hc);
		if (stopping || give_up(d))
			c->idle = true;
		else
			start_hold(c);
		return;
	}
	/* Location is "/v1/holds/<id>". */
	const char *hold_id = strrchr(hc->out.location, '/');
	char body[160];
	int len = snprintf(body, sizeof(body),
			   "{\"hold_id\":\"%s\",\"payment\":{\"method\":\"desk\"}}",
			   hold_id ? hold_id + 1 : "");
	hold_cmd_release(hc);
	c->t1 = rsd_mono_ns();
	d->hold_ns += c->t1 - c->t0;
	c->booking = true;
	struct rsd_fail f = {0};
	if ((err = booking_decode(body, (size_t)len, &c->bc, &f))) {
		fail_note(d, err, &f);
		booking_cmd_release(&c->bc);
		c->idle = true;
		return;
	}
	booking_cmd_init(&c->bc, &no_key, &bench);
	/* As POST /v1/bookings does: the booking built from a read snapshot of the hold. */
	booking_cmd_prepare(&c->bc, d->reader.store, store_reader_begin(&d->reader));
	store_reader_end(&d->reader);
	if (!submit(c, &c->bc.cmd))
		booking_cmd_release(&c->bc);
}

static void booking_done(struct client *c, bool stopping)
{
	struct driver *d = c->drv;
	struct booking_cmd *bc = &c->bc;
	int err = bc->cmd.result;
	if (err || bc->out.err || bc->out.status != 201) {
		fail_note(d,
			  err	       ? err
			  : bc->out.err ? bc->out.err
					: RSD_EINTERNAL,
			  err ? &bc->cmd.fail : &bc->out.fail);
	} else {
		uint64_t t2 = rsd_mono_ns();
		d->confirm_ns += t2 - c->t1;
		d->bookings++;
		atomic_fetch_add_explicit(&c->nt->confirmed, 1, memory_order_relaxed);
		lat_push(d, t2 - c->t0);
	}
	booking_cmd_release(bc);
	if (stopping || give_up(d))
		c->idle = true;
	else
		start_hold(c);
}

/* Takes the completion stack, oldest first; waits while it is empty. */
static struct client *take_done(struct driver *d)
{
	for (;;) {
		struct client *list = atomic_exchange(&d->done_head, NULL);
		if (list) {
			struct client *fifo = NULL;
			while (list) {
				struct client *next = list->next_done;
				list->next_done = fifo;
				fifo = list;
				list = next;
			}
			return fifo;
		}
		atomic_store(&d->sleeping, 1);
		if (atomic_load(&d->done_head)) {
			atomic_store(&d->sleeping, 0);
			continue;
		}
		syscall(SYS_futex, (uint32_t *)&d->sleeping, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	}
}

static void *drive(void *arg)
{
	struct driver *d = arg;
	int busy = 0;
	for (int i = 0; i < d->n_clients; i++) {
		d->clients[i] = (struct client){.drv = d};
		start_hold(&d->clients[i]);
		busy += !d->clients[i].idle;
	}
	while (busy > 0) {
		bool stopping = atomic_load_explicit(&stop_flag, memory_order_relaxed);
		for (struct client *c = take_done(d), *next; c; c = next) {
			next = c->next_done;
			if (c->booking)
				booking_done(c, stopping);
			else
				hold_done(c, stopping);
			busy -= c->idle;
		}
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Bytes this process has caused to be written to storage (/proc/self/io), 0 if unknown. */
static uint64_t disk_write_bytes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	unsigned long long v = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* The q-quantile of sorted v[0..n) by nearest rank; 0 when empty. */
static uint32_t nearest_rank(const uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(q * (double)n + 0.999999);
	return v[(i < 1 ? 1 : i > n ? n : i) - 1];
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Runs n clients on case which for secs; prints its RESULT line (unless quiet). */
static int run_case(enum bench_case which, int n, double secs, bool quiet, uint64_t *errors)
{
	static struct driver drv[DRIVERS_MAX];
	const char *env = getenv("BOOKING_DRIVERS");
	long cpus = env && *env ? atol(env) : sysconf(_SC_NPROCESSORS_ONLN);
	int nd = cpus < 1 ? 1 : cpus > DRIVERS_MAX ? DRIVERS_MAX : (int)cpus;
	if (nd > n)
		nd = n;
	struct writer_stats before, after;
	atomic_store(&stop_flag, false);
	writer_stats_get(writer, &before);
	uint64_t disk0 = disk_write_bytes();
	double cpu0 = cpu_s(), t0 = now_s();
	for (int i = 0; i < nd; i++) {
		int share = n / nd + (i < n % nd);
		drv[i] = (struct driver){.which = which,
					 .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1),
					 .n_clients = share,
					 .clients = rsd_calloc((size_t)share, sizeof(struct client)),
					 .reader.store = store};
		if (pthread_create(&drv[i].tid, NULL, drive, &drv[i]) != 0) {
			fprintf(stderr, "booking_engine: pthread_create failed\n");
			atomic_store(&stop_flag, true);
			for (int j = 0; j < i; j++)
				pthread_join(drv[j].tid, NULL);
			return -1;
		}
	}
	while (now_s() - t0 < secs)
		usleep(20000);
	atomic_store(&stop_flag, true);
	for (int i = 0; i < nd; i++) {
		pthread_join(drv[i].tid, NULL);
		store_reader_close(&drv[i].reader);
		free(drv[i].clients);
	}
	double elapsed = now_s() - t0, cpu = cpu_s() - cpu0;
	uint64_t disk = disk_write_bytes() - disk0;
	writer_stats_get(writer, &after);

	uint64_t bookings = 0, refused = 0, errs = 0, hold_ns = 0, confirm_ns = 0;
	size_t n_lat = 0;
	for (int i = 0; i < nd; i++) {
		bookings += drv[i].bookings;
		refused += drv[i].refused;
		errs += drv[i].errors;
		hold_ns += drv[i].hold_ns;
		confirm_ns += drv[i].confirm_ns;
		n_lat += drv[i].n_lat;
		if (drv[i].errors)
			fprintf(stderr, "booking_engine: driver %d: %llu errors, last %s: %s\n", i,
				(unsigned long long)drv[i].errors, rsd_strerror(drv[i].last_error),
				drv[i].last_detail);
	}
	uint32_t *all = rsd_malloc((n_lat ? n_lat : 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < nd; i++) {
		memcpy(all + k, drv[i].lat_us, drv[i].n_lat * sizeof(*all));
		k += drv[i].n_lat;
		free(drv[i].lat_us);
	}
	qsort(all, n_lat, sizeof(*all), cmp_u32);
	uint32_t p50 = nearest_rank(all, n_lat, 0.50), p99 = nearest_rank(all, n_lat, 0.99);
	free(all);
	uint64_t commits = after.commits - before.commits;
	uint64_t commands = after.batch_sum - before.batch_sum;
	double rate = (double)bookings / elapsed;
	*errors += errs;
	if (quiet)
		return 0;
	const char *name = which == CASE_HOT ? "hot" : "spread";
	fprintf(stderr,
		"booking_engine: %-6s %d clients on %d threads: %.0f bookings/s, p50 %u us, p99 %u us,"
		" hold %.0f us,"
		" confirm %.0f us (means), %.0f commits/s, mean batch %.1f, %.1f us CPU/booking,"
		" %.1f KiB written/booking\n",
		name, n, nd, rate, p50, p99, bookings ? (double)hold_ns / 1e3 / (double)bookings : 0,
		bookings ? (double)confirm_ns / 1e3 / (double)bookings : 0,
		(double)commits / elapsed, commits ? (double)commands / (double)commits : 0,
		bookings ? cpu * 1e6 / (double)bookings : 0,
		bookings ? (double)disk / 1024 / (double)bookings : 0);
	printf("RESULT case=%s clients=%d drivers=%d secs=%.2f bookings=%llu bookings_per_s=%.0f p50_us=%u"
	       " p99_us=%u hold_us_mean=%.0f confirm_us_mean=%.0f commits_per_s=%.0f "
	       "mean_batch=%.2f"
	       " cpu_us_per_booking=%.1f disk_kib_per_booking=%.1f refused=%llu errors=%llu\n",
	       name, n, nd, elapsed, (unsigned long long)bookings, rate, p50, p99,
	       bookings ? (double)hold_ns / 1e3 / (double)bookings : 0,
	       bookings ? (double)confirm_ns / 1e3 / (double)bookings : 0,
	       (double)commits / elapsed, commits ? (double)commands / (double)commits : 0,
	       bookings ? cpu * 1e6 / (double)bookings : 0,
	       bookings ? (double)disk / 1024 / (double)bookings : 0, (unsigned long long)refused,
	       (unsigned long long)errs);
	fflush(stdout);
	return 0;
}

/* sold == confirmed and held == 0 on every night; bookings documents == confirmed. */
static bool check(struct store *s)
{
	MDB_txn *txn;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0) {
		fprintf(stderr, "booking_engine: check: cannot begin a read transaction\n");
		return false;
	}
	uint64_t sold = 0, confirmed = 0, held = 0, mismatched = 0;
	for (int i = 0; i < NIGHTS; i++) {
		struct inv_day d;
		uint64_t c = atomic_load(&nights[i].confirmed);
		if (inventory_day_get(txn, s, nights[i].product_id, nights[i].day, 0, &d) !=
		    RSD_OK) {
			mismatched++;
			continue;
		}
		sold += d.sold;
		held += d.held;
		confirmed += c;
		if (d.sold != c || d.held != 0) {
			if (mismatched < 5)
				fprintf(stderr,
					"booking_engine: %s day %d: sold %u held %u, confirmed "
					"%llu\n",
					nights[i].product_id, (int)nights[i].day, d.sold, d.held,
					(unsigned long long)c);
			mismatched++;
		}
	}
	MDB_stat st;
	uint64_t docs = mdb_stat(txn, s->bookings, &st) == 0 ? st.ms_entries : 0;
	mdb_txn_abort(txn);
	bool ok = mismatched == 0 && docs == confirmed && sold == confirmed;
	uint64_t used = store_map_used_bytes(s);
	printf("CHECK nights=%d sold=%llu confirmed=%llu bookings_db=%llu held=%llu mismatched=%llu"
	       " map_bytes_per_booking=%.0f ok=%d\n",
	       NIGHTS, (unsigned long long)sold, (unsigned long long)confirmed,
	       (unsigned long long)docs, (unsigned long long)held, (unsigned long long)mismatched,
	       confirmed ? (double)used / (double)confirmed : 0, ok);
	return ok;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 0;
	int n = argc > 2 ? atoi(argv[2]) : 0;
	if (argc < 4 || secs <= 0 || secs > 600 || n < 1 || n > CLIENTS_MAX) {
		fprintf(stderr, "usage: %s SECONDS(0..600] CLIENTS(1..%d) spread|hot ...\n",
			argv[0], CLIENTS_MAX);
		return 2;
	}
	enum bench_case cases[8];
	int nc = 0;
	for (int i = 3; i < argc && nc < 8; i++) {
		if (strcmp(argv[i], "spread") == 0)
			cases[nc++] = CASE_SPREAD;
		else if (strcmp(argv[i], "hot") == 0)
			cases[nc++] = CASE_HOT;
		else {
			fprintf(stderr, "booking_engine: unknown case '%s'\n", argv[i]);
			return 2;
		}
	}

	const char *tmp = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/booking_engine.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "booking_engine: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	struct store s;
	struct rsd_fail f = {0};
	int rc = 1;
	uint64_t errors = 0;
	if (store_open(&s, dir, MAP_BYTES, "", &f) != RSD_OK) {
		fprintf(stderr, "booking_engine: store_open: %s\n", f.detail);
		goto out_dir;
	}
	if (!store_flags_durable(&s)) {
		fprintf(stderr, "booking_engine: store is not durable; refusing to benchmark\n");
		goto out_store;
	}
	store = &s;
	if (writer_start(&writer, &s, NULL, NULL) != RSD_OK) {
		fprintf(stderr, "booking_engine: writer_start failed\n");
		goto out_store;
	}

	int32_t first = inventory_today() + 1;
	for (int p = 0; p < SPREAD_PRODUCTS; p++) {
		char id[ENTITY_ID_BYTES_MAX + 1];
		snprintf(id, sizeof(id), "pr_bench_room_%02d", p);
		if (setup_product(id, first, first + SPREAD_NIGHTS))
			goto out_writer;
		for (int d = 0; d < SPREAD_NIGHTS; d++) {
			struct night *nt = &nights[p * SPREAD_NIGHTS + d];
			snprintf(nt->product_id, sizeof(nt->product_id), "%s", id);
			nt->day = first + d;
		}
	}
	struct night *hot = &nights[NIGHTS - 1];
	snprintf(hot->product_id, sizeof(hot->product_id), "pr_bench_hot");
	hot->day = first + HOT_NIGHT_OFFSET;
	if (setup_product(hot->product_id, hot->day, hot->day + 1))
		goto out_writer;

	fprintf(stderr, "booking_engine: dir %s, %d clients, %.1f s per case, fsync on\n", dir, n,
		secs);
	/* Warm-up: grow the data file and fault in the map before measuring. */
	run_case(CASE_SPREAD, n, secs < 1 ? secs : 1.0, true, &errors);
	for (int i = 0; i < nc; i++)
		if (run_case(cases[i], n, secs, false, &errors))
			goto out_writer;
	writer_free(writer); /* drains the queue: every counter final */
	writer = NULL;
	rc = check(&s) && errors == 0 ? 0 : 1;
out_writer:
	writer_free(writer);
out_store:
	store_close(&s);
out_dir:
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
