#!/usr/bin/env bash
# bench/booking_pg.sh — the PostgreSQL 15 peer of resortd's booking benchmark (issue 4). Starts a
# private cluster in a temp dir (durable defaults: fsync=on, synchronous_commit=on; a unix socket in
# the temp dir only, no TCP), run as the postgres user when the script runs as root (initdb refuses
# root), and runs pgbench with one booking per transaction:
#   BEGIN; SELECT ... FROM inventory ... FOR UPDATE; UPDATE inventory SET sold = sold + 1,
#   version = version + 1 ...; INSERT INTO bookings ...; COMMIT;
#  (a) spread: a uniformly random row of 1,000 (10 products x 100 days), capacity 2e9 each;
#  (b) hot: every booking on one row, capacity 2e9.
# Bookings/s is pgbench's tps without the initial connection time; p50/p99 come from pgbench's
# per-transaction log (-l). Then checks sum(sold) = count(bookings) = the transactions pgbench
# counted, per case. With BENCH_PG_HALF=1 each case also runs paced at half its measured
# bookings/s (pgbench -R, same clients): p50/p99 then count from each transaction's scheduled
# start, so queueing is included (bench/booking_client.c's open loop measures the same way).
# Prints a markdown block and PG_KEY=value lines (for a wrapper to parse) on stdout, logs on
# stderr. The cluster is stopped and removed on exit. Needs Debian postgresql-15.
#
# Environment: BOOKING_CLIENTS (pgbench -c, 64), BENCH_DURATION (s per case, 10), BENCH_PG_JOBS
# (pgbench -j, the cores, at most the clients), BENCH_PG_PROTOCOL (pgbench -M, prepared),
# BENCH_PG_BIN (/usr/lib/postgresql/15/bin), BENCH_PG_HALF (0).
set -euo pipefail

cd "$(dirname "$0")/.."
PGBIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
BIN=$PGBIN/pgbench # lib.sh checks that BIN is executable
CLIENTS=${BOOKING_CLIENTS:-64}
DUR=${BENCH_DURATION:-10}
NPROC=$(nproc)
JOBS=${BENCH_PG_JOBS:-$((NPROC < CLIENTS ? NPROC : CLIENTS))}
PROTO=${BENCH_PG_PROTOCOL:-prepared}
HALF=${BENCH_PG_HALF:-0}
T=$(mktemp -d "${TMPDIR:-/tmp}/resortd-pg.XXXXXX")
PIDS=()

LOG_TAG=booking-pg
NEEDS_TOOLS= # pgbench and psql come from PGBIN, checked below
# The cluster is stopped with pg_ctl first; the postmaster's pid (in PIDS) is the fallback.
cleanup_extra() {
	[ -f "$T/db/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$T/db" -m fast -w -t 20 stop >/dev/null 2>&1 || true
}
# shellcheck source=bench/lib.sh
. bench/lib.sh
for x in initdb pg_ctl psql; do
	[ -x "$PGBIN/$x" ] || die "$PGBIN/$x missing (apt-get install postgresql-15)"
done
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run PostgreSQL"
	chown postgres: "$T"
	as_pg() { (cd "$T" && runuser -u postgres -- "$@"); }
else
	as_pg() { (cd "$T" && "$@"); }
fi
sql() { "$PGBIN/psql" -h "$T" -p 5432 -U bench -d postgres -X -q -At -F ' ' -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------- cluster
PGVER=$("$PGBIN/postgres" --version | awk '{print $3}')
log "PostgreSQL $PGVER, $NPROC cores, $CLIENTS clients, -j $JOBS, ${DUR} s per case; temp $T"
as_pg "$PGBIN/initdb" -D "$T/db" -U bench --auth=trust -E UTF8 --locale=C >"$T/initdb.log" 2>&1 ||
	{ cat "$T/initdb.log" >&2; die "initdb failed"; }
cat >>"$T/db/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$T'
port = 5432
max_connections = $((CLIENTS + 10 > 100 ? CLIENTS + 10 : 100))
fsync = on
synchronous_commit = on
EOF
as_pg "$PGBIN/pg_ctl" -D "$T/db" -l "$T/pg.log" -w -t 60 start >/dev/null ||
	{ cat "$T/pg.log" >&2; die "PostgreSQL did not start"; }
PIDS+=("$(head -1 "$T/db/postmaster.pid")")
log "settings: $(sql -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
	WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'listen_addresses')")"

# ---------------------------------------------------------------- schema, seed, scripts
sql -f - <<'EOF'
CREATE TABLE inventory (product text, day date, capacity int, sold int, held int, version bigint,
	PRIMARY KEY (product, day));
CREATE TABLE bookings (id bigserial PRIMARY KEY, product text, day date, qty int,
	created timestamptz DEFAULT now());
INSERT INTO inventory SELECT 'room-' || p, date '2025-01-01' + d, 2000000000, 0, 0, 0
	FROM generate_series(0, 9) p, generate_series(0, 99) d;
INSERT INTO inventory VALUES ('hot', date '2025-07-01', 2000000000, 0, 0, 0);
VACUUM ANALYZE;
EOF
# txn PRODUCT DAY (SQL expressions): the booking transaction, as a pgbench script.
txn() {
	cat <<EOF
BEGIN;
SELECT capacity, sold, held, version FROM inventory WHERE product = $1 AND day = $2 FOR UPDATE;
UPDATE inventory SET sold = sold + 1, version = version + 1
	WHERE product = $1 AND day = $2 AND sold + held + 1 <= capacity;
INSERT INTO bookings (product, day, qty) VALUES ($1, $2, 1);
COMMIT;
EOF
}
{
	printf '\\set p random(0, 9)\n\\set d random(0, 99)\n'
	txn "'room-' || CAST(:p AS text)" "date '2025-01-01' + CAST(:d AS int)"
} >"$T/spread.sql"
txn "'hot'" "date '2025-07-01'" >"$T/hot.sql"

# ---------------------------------------------------------------- runs
declare -A R
# run_pg KEY [RATE]: pgbench on $T/KEY.sql (paced at RATE/s when given, results under
# KEY_half); sets R[K_tps], R[K_p50], R[K_p99], R[K_tx], R[K_failed] for K = KEY or KEY_half.
run_pg() {
	local k=$1 rate=${2-} script=$1
	[ -z "$rate" ] || k=${1}_half
	local f="$T/$k.out"
	mkdir -p "$T/log-$k"
	sql -c CHECKPOINT
	log "$k: pgbench -M $PROTO -c $CLIENTS -j $JOBS -T $DUR${rate:+ -R $rate}"
	timeout $((DUR + 120)) "$PGBIN/pgbench" -h "$T" -p 5432 -U bench -n -M "$PROTO" -c "$CLIENTS" \
		-j "$JOBS" -T "$DUR" ${rate:+-R "$rate"} -l --log-prefix="$T/log-$k/tx" -f "$T/$script.sql" \
		postgres >"$f" 2>&1 || { cat "$f" >&2; die "pgbench failed ($k)"; }
	R[${k}_tps]=$(awk '/^tps = .*without initial connection/{printf "%.0f", $3}' "$f")
	R[${k}_tx]=$(awk -F': *' '/number of transactions actually processed/{print $2+0}' "$f")
	R[${k}_failed]=$(awk -F': *' '/number of failed transactions/{print $2+0}' "$f")
	: "${R[${k}_failed]:=0}"
	# Per-transaction log: client, number, latency in us, script, epoch s, us; nearest rank.
	read -r "R[${k}_p50]" "R[${k}_p99]" < <(cat "$T/log-$k"/tx* | awk '$3 ~ /^[0-9]+$/{print $3}' | sort -n |
		awk '{a[NR]=$1} END{if(!NR){print "n/a n/a"; exit}
			n=split("0.50 0.99", qs, " "); for(j=1;j<=n;j++){q=qs[j]; i=int(q*NR); if(i<q*NR)i++; if(i<1)i=1
			printf "%.2f ", a[i]/1000} print ""}')
	log "$k: ${R[${k}_tps]} bookings/s, p50 ${R[${k}_p50]} ms, p99 ${R[${k}_p99]} ms, ${R[${k}_tx]} transactions, ${R[${k}_failed]} failed"
}
half_of() { awk -v t="$1" 'BEGIN{printf "%d", (t > 1 ? t / 2 : 1)}'; }
run_pg spread
[ "$HALF" = 1 ] && run_pg spread "$(half_of "${R[spread_tps]}")"
run_pg hot
[ "$HALF" = 1 ] && run_pg hot "$(half_of "${R[hot_tps]}")"

# ---------------------------------------------------------------- check, report
read -r S_SOLD H_SOLD BOOKED < <(sql -c "SELECT coalesce(sum(sold) FILTER (WHERE product <> 'hot'), 0),
	coalesce(sum(sold) FILTER (WHERE product = 'hot'), 0), (SELECT count(*) FROM bookings) FROM inventory")
CHECK=FAIL
S_TX=$((R[spread_tx] + ${R[spread_half_tx]:-0}))
H_TX=$((R[hot_tx] + ${R[hot_half_tx]:-0}))
[ $((S_SOLD + H_SOLD)) -eq "$BOOKED" ] && [ "$S_SOLD" -eq "$S_TX" ] && [ "$H_SOLD" -eq "$H_TX" ] && CHECK=OK
log "check: sum(sold) $S_SOLD + $H_SOLD, count(bookings) $BOOKED, pgbench $S_TX + $H_TX: $CHECK"

echo "## PostgreSQL $PGVER booking peer (pgbench -M $PROTO -c $CLIENTS -j $JOBS -T $DUR)"
echo
echo "Private cluster, unix socket, fsync=on, synchronous_commit=on; $NPROC cores, client on the same"
echo "machine. One booking: BEGIN; SELECT ... FOR UPDATE; UPDATE inventory; INSERT INTO bookings; COMMIT."
echo "bookings/s = pgbench tps without the initial connection time; p50/p99 from the per-transaction log."
echo
echo "| case | bookings/s | p50 ms | p99 ms | transactions | failed |"
echo "|---|---:|---:|---:|---:|---:|"
KEYS="spread hot"
[ "$HALF" = 1 ] && KEYS="spread spread_half hot hot_half"
for k in $KEYS; do
	case $k in
	spread) name='(a) spread, 1,000 rows' ;;
	hot) name='(b) hot, one row' ;;
	*) name="${k%_half} paced at -R $(half_of "${R[${k%_half}_tps]}") (half)" ;;
	esac
	echo "| $name | ${R[${k}_tps]} | ${R[${k}_p50]} | ${R[${k}_p99]} | ${R[${k}_tx]} | ${R[${k}_failed]} |"
done
echo
echo "Check: sum(sold) = $((S_SOLD + H_SOLD)), count(bookings) = $BOOKED, pgbench transactions = $((S_TX + H_TX)): $CHECK"
echo
printf 'PG_VERSION=%s\nPG_PROTOCOL=%s\nPG_CLIENTS=%s\nPG_DURATION_S=%s\n' "$PGVER" "$PROTO" "$CLIENTS" "$DUR"
for k in $KEYS; do
	K=${k^^}
	printf 'PG_%s_TPS=%s\nPG_%s_P50_MS=%s\nPG_%s_P99_MS=%s\nPG_%s_TX=%s\nPG_%s_FAILED=%s\n' "$K" "${R[${k}_tps]}" \
		"$K" "${R[${k}_p50]}" "$K" "${R[${k}_p99]}" "$K" "${R[${k}_tx]}" "$K" "${R[${k}_failed]}"
done
echo "PG_CHECK=$CHECK"
[ "$CHECK" = OK ]
