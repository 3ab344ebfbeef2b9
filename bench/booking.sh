#!/usr/bin/env bash
# bench/booking.sh — the booking benchmark (issue 4): durable confirmed bookings/s, each a hold
# and a confirm with payment desk, BOOKING_CLIENTS (64) concurrent clients, on
#  (a) spread: uniformly over 1,000 room-nights (10 products x 100 nights from tomorrow);
#  (b) hot:    every booking on one room-night with plenty of capacity;
# measured three ways in the same run, BENCH_REPS rounds interleaved:
#  1. in-process (bench/booking_engine.c): resortd's hold and booking commands through its
#     writer, no HTTP; checks sold == confirmed on every night at the end.
#  2. over HTTP (bench/booking_client.c): the release ./resortd (default workers, log level
#     info) on a fresh data dir; products, rate plans and capacity made through the API;
#     POST /v1/holds then POST /v1/bookings per booking on keep-alive connections; then the
#     same paced open-loop at half the measured peak for p50/p99. At the end GET
#     /v1/inventory must show, per night, sold == the bookings the clients saw confirmed.
#     Every request is signed in as a local admin (bench/lib.sh auth_add_admin, auth_login):
#     the setup through http_send, the clients with BENCH_AUTH.
#  3. PostgreSQL 15 (bench/booking_pg.sh): one booking transaction per booking, pgbench with
#     the same clients, and at half its peak.
# Prints a markdown report and puts it in bench/results.md between the booking markers (the
# rest of the file is kept), then KEY=VALUE lines (medians) on stdout. Loopback only.
# Takes about REPS x (10 x BENCH_DURATION + 15) s: ~6 min at the defaults.
#
# Environment: BENCH_DURATION (s per measurement, 10), BENCH_REPS (rounds, 3), BOOKING_CLIENTS
# (64), BENCH_RESORTD_BIN (./resortd), BENCH_BOOKING_PG (1; 0 skips PostgreSQL),
# BENCH_PG_BIN (see bench/booking_pg.sh), BENCH_MAP_SIZE_MB (resortd's map, 16384: the default
# 1 GiB fills after ~250,000 bookings).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BENCH_RESORTD_BIN:-$ROOT/resortd}
DUR=${BENCH_DURATION:-10}
REPS=${BENCH_REPS:-3}
CLIENTS=${BOOKING_CLIENTS:-64}
WITH_PG=${BENCH_BOOKING_PG:-1}
MAP_MB=${BENCH_MAP_SIZE_MB:-16384}
OUT=$ROOT/bench/results.md
T=$(mktemp -d "${TMPDIR:-/tmp}/resortd-booking.XXXXXX")
PIDS=()
SPREAD_PRODUCTS=10
SPREAD_NIGHTS=100
HOT_OFFSET=30           # the hot nights start this many nights after the first spread night
HOT_CAPACITY=100000     # the API's largest capacity ...
HOT_OVERBOOKING=100000  # ... and overbooking: 200,000 bookable units on each hot night
WARMUP_S=2

LOG_TAG=booking
NEEDS_TOOLS="cc pkg-config"
# shellcheck source=bench/lib.sh
. bench/lib.sh
if [ "$REPS" -lt 1 ] || [ "$DUR" -lt 1 ]; then die "BENCH_REPS and BENCH_DURATION must be >= 1"; fi
ls "$ROOT"/build/release/*.o >/dev/null 2>&1 || die "build/release objects missing (make resortd)"

fmt0() { awk -v v="$1" 'BEGIN{printf "%\047.0f", v}' 2>/dev/null || echo "$1"; }
# kv LINE KEY: the value of KEY=value in a RESULT line.
kv() { awk -v k="$2" '{for(i=1;i<=NF;i++){n=index($i,"="); if(substr($i,1,n-1)==k){print substr($i,n+1); exit}}}' <<<"$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { # metric PORT NAME: the value of a sample of /metrics named exactly NAME
	http_get "$1" /metrics | awk -v n="$2" '$1 == n {printf "%.0f\n", $2; f=1} END{if(!f) print 0}'
}

# ---------------------------------------------------------------- machine, builds
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
NPROC=$(nproc)
TICK=$(getconf CLK_TCK)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
log "machine: $NPROC cores, $CPU; load average $LOAD0; temp $T"
log "$CLIENTS clients, ${DUR} s per measurement, $REPS rounds"
# shellcheck disable=SC2010
OBJS=$(ls "$ROOT"/build/release/*.o | grep -v '/main\.o$')
# shellcheck disable=SC2086,SC2046
cc -O2 -g -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/booking_engine.c \
	$OBJS $(pkg-config --libs lmdb libevent libevent_openssl libevent_pthreads libssl libcrypto \
	libcjson sqlite3) -lpthread -lm -o "$T/booking_engine" ||
	die "booking_engine did not build (build/release out of date? make resortd)"
cc -O2 -g -std=c11 -D_GNU_SOURCE bench/booking_client.c bench/bench_net.c -lm -o "$T/booking_client"

# ---------------------------------------------------------------- resortd and its catalog
mkdir -p "$T/rs" "$T/res" "$T/counts"
for k in eng_spread eng_hot eng_check http_spread http_spread_half http_hot http_hot_half; do : >"$T/res/$k"; done
RS_PORT=$(free_port)
auth_add_admin "$T/rs/data" --map-size-mb "$MAP_MB"
"$BIN" serve --listen "127.0.0.1:$RS_PORT" --data-dir "$T/rs/data" --map-size-mb "$MAP_MB" \
	"${AUTH_SERVE_ARGS[@]}" 2>"$T/rs/log" &
RS_PID=$!
PIDS+=("$RS_PID")
for _ in $(seq 1 100); do
	[ "$(http_get "$RS_PORT" /healthz 2>/dev/null || true)" != "" ] && break
	kill -0 "$RS_PID" 2>/dev/null || { cat "$T/rs/log" >&2; die "resortd exited"; }
	sleep 0.1
done
http_get "$RS_PORT" /readyz >/dev/null || { cat "$T/rs/log" >&2; die "resortd not ready"; }
RS_WORKERS=$(grep -o 'workers[ =:]*[0-9]*' "$T/rs/log" | head -1 | grep -o '[0-9]*$' || true)
auth_login "$RS_PORT"

id_of() { grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4; }
day() { date -u -d "$1 + $2 day" +%F; }
TODAY=$(date +%F) # resortd's "today" is local time, as here
FIRST=$(day "$TODAY" 1)
RESORT=$(http_send POST "$RS_PORT" /v1/resorts \
	'{"name":"Booking Bench Resort","timezone":"Asia/Seoul","currency":"KRW"}' | id_of)
[ -n "$RESORT" ] || die "POST /v1/resorts failed"
# new_product NAME FROM TO CAPACITY [OVERBOOKING]: a room type priced every night of
# [FROM, TO) and CAPACITY units on each; prints its id.
new_product() {
	local id ob=${5:+,\"overbooking\":$5}
	id=$(http_send POST "$RS_PORT" /v1/products \
		"{\"type\":\"room_type\",\"resort_id\":\"$RESORT\",\"name\":\"$1\"}" | id_of)
	[ -n "$id" ] || die "POST /v1/products failed"
	http_send POST "$RS_PORT" "/v1/products/$id/rate-plans" \
		"{\"name\":\"Standard\",\"rules\":[{\"from\":\"$2\",\"to\":\"$3\",\"amount\":250000}]}" \
		>/dev/null || die "POST rate-plans failed"
	http_send PUT "$RS_PORT" "/v1/inventory/$id" \
		"{\"from\":\"$2\",\"to\":\"$3\",\"capacity\":$4$ob}" >/dev/null || die "PUT /v1/inventory failed"
	echo "$id"
}
# Targets: "PRODUCT FROM TO" lines for booking_client.
SPREAD_LAST=$(day "$FIRST" "$SPREAD_NIGHTS")
: >"$T/spread.targets"
for p in $(seq 1 "$SPREAD_PRODUCTS"); do
	id=$(new_product "Bench Room $p" "$FIRST" "$SPREAD_LAST" 100000)
	echo "$id" >>"$T/products"
	for d in $(seq 0 $((SPREAD_NIGHTS - 1))); do
		echo "$id $(day "$FIRST" "$d") $(day "$FIRST" $((d + 1)))"
	done >>"$T/spread.targets"
done
HOT_FIRST=$(day "$FIRST" "$HOT_OFFSET")
HOT_LAST=$(day "$HOT_FIRST" $((2 * REPS)))
HOT_ID=$(new_product "Bench Hot Room" "$HOT_FIRST" "$HOT_LAST" "$HOT_CAPACITY" "$HOT_OVERBOOKING")
echo "$HOT_ID" >>"$T/products"
# Two fresh hot nights per round, one for the peak run and one for the half-rate run, so no
# run can sell out (a 10 s peak run has sold 150,000 of the 200,000 units).
for r in $(seq 1 "$REPS"); do
	echo "$HOT_ID $(day "$HOT_FIRST" $((2 * r - 2))) $(day "$HOT_FIRST" $((2 * r - 1)))" >"$T/hot$r.targets"
	echo "$HOT_ID $(day "$HOT_FIRST" $((2 * r - 1))) $(day "$HOT_FIRST" $((2 * r)))" >"$T/hothalf$r.targets"
done
log "resortd :$RS_PORT: $SPREAD_PRODUCTS x $SPREAD_NIGHTS spread room-nights from $FIRST, hot $HOT_ID from $HOT_FIRST"

# ---------------------------------------------------------------- runs
NCOUNT=0
# http_run KEY TARGETS RATE: booking_client for DUR s; appends its RESULT line plus the
# server's CPU ms per booking and the writer's mean batch to $T/res/KEY.
http_run() {
	local key=$1 targets=$2 rate=$3 line c0 c1 s0 s1 n0 n1
	NCOUNT=$((NCOUNT + 1))
	c0=$(cpu_ticks "$RS_PID")
	s0=$(metric "$RS_PORT" resortd_writer_batch_size_sum)
	n0=$(metric "$RS_PORT" resortd_writer_batch_size_count)
	line=$(BENCH_AUTH=$BENCH_AUTH timeout $((DUR + 90)) "$T/booking_client" "$RS_PORT" "$targets" "$CLIENTS" "$DUR" "$rate" \
		"$T/counts/$NCOUNT" 2>"$T/client-$NCOUNT.err") || { cat "$T/client-$NCOUNT.err" >&2; die "booking_client failed ($key)"; }
	c1=$(cpu_ticks "$RS_PID")
	s1=$(metric "$RS_PORT" resortd_writer_batch_size_sum)
	n1=$(metric "$RS_PORT" resortd_writer_batch_size_count)
	[ -s "$T/client-$NCOUNT.err" ] && head -5 "$T/client-$NCOUNT.err" >&2
	local b cpu_us batch
	b=$(kv "$line" bookings)
	cpu_us=$(awk -v c=$((c1 - c0)) -v t="$TICK" -v b="$b" 'BEGIN{printf "%.0f", (b > 0 ? c * 1e6 / t / b : 0)}')
	batch=$(awk -v s=$((s1 - s0)) -v n=$((n1 - n0)) 'BEGIN{printf "%.1f", (n > 0 ? s / n : 0)}')
	local lag
	lag=$(metric "$RS_PORT" resortd_projector_lag_events)
	echo "$line server_cpu_us_per_booking=$cpu_us mean_batch=$batch commits_per_s=$(((n1 - n0) / DUR)) projector_lag=$lag" >>"$T/res/$key"
	log "$key: $(kv "$line" bookings_per_s) bookings/s, p50 $(kv "$line" p50_ms) ms, p99 $(kv "$line" p99_ms) ms, errors $(kv "$line" errors)/$(kv "$line" socket_errors), server ${cpu_us} us CPU/booking, batch $batch, projector lag $lag events"
}

log "HTTP warm-up ${WARMUP_S} s"
BENCH_AUTH=$BENCH_AUTH "$T/booking_client" "$RS_PORT" "$T/spread.targets" "$CLIENTS" "$WARMUP_S" 0 "$T/counts/warmup" \
	>"$T/warmup.txt" 2>"$T/warmup.err" || { cat "$T/warmup.err" >&2; die "warm-up failed"; }
[ "$(kv "$(cat "$T/warmup.txt")" errors)" = 0 ] || { cat "$T/warmup.err" >&2; die "warm-up had errors"; }

ENGINE_OK=1
for r in $(seq 1 "$REPS"); do
	log "round $r/$REPS: in-process"
	TMPDIR=$T timeout $((DUR * 2 + 120)) "$T/booking_engine" "$DUR" "$CLIENTS" spread hot \
		>"$T/engine$r.txt" 2>"$T/engine$r.err" || { ENGINE_OK=0; log "booking_engine failed (round $r)"; }
	cat "$T/engine$r.err" >&2
	grep '^RESULT case=spread' "$T/engine$r.txt" >>"$T/res/eng_spread" || true
	grep '^RESULT case=hot' "$T/engine$r.txt" >>"$T/res/eng_hot" || true
	grep '^CHECK' "$T/engine$r.txt" >>"$T/res/eng_check" || true

	log "round $r/$REPS: HTTP"
	http_run http_spread "$T/spread.targets" 0
	peak=$(tail -1 "$T/res/http_spread" | awk '{print}' | { read -r l; kv "$l" bookings_per_s; })
	http_run http_spread_half "$T/spread.targets" "$(awk -v p="$peak" 'BEGIN{printf "%d", p / 2}')"
	http_run http_hot "$T/hot$r.targets" 0
	peak=$(tail -1 "$T/res/http_hot" | { read -r l; kv "$l" bookings_per_s; })
	http_run http_hot_half "$T/hothalf$r.targets" "$(awk -v p="$peak" 'BEGIN{printf "%d", p / 2}')"

	if [ "$WITH_PG" = 1 ]; then
		log "round $r/$REPS: PostgreSQL"
		BOOKING_CLIENTS=$CLIENTS BENCH_DURATION=$DUR BENCH_PG_HALF=1 bench/booking_pg.sh \
			>"$T/pg$r.txt" 2>"$T/pg$r.err" || { cat "$T/pg$r.err" >&2; die "bench/booking_pg.sh failed"; }
		grep '^PG_' "$T/pg$r.txt" >"$T/res/pg$r.kv"
		grep 'PG_.*_TPS=\|PG_CHECK' "$T/pg$r.txt" | tr '\n' ' ' | sed 's/^/[booking pg] /' >&2
		echo >&2
	fi
done

# ---------------------------------------------------------------- HTTP check: sold == confirmed
cat "$T"/counts/* | awk '{c[$1 " " $2] += $3} END{for (k in c) print k, c[k]}' | sort >"$T/confirmed.txt"
: >"$T/sold.txt"
while read -r id; do
	http_get_auth "$RS_PORT" "/v1/inventory/$id?from=$FIRST&to=$SPREAD_LAST" |
		grep -o '"date":"[^"]*","capacity":[0-9]*,"sold":[0-9]*,"held":[0-9]*' |
		awk -F'[:,"]+' -v id="$id" '{print id, $3, $7, $9}' >>"$T/sold.txt"
done <"$T/products"
HTTP_CHECK=$(awk 'NR == FNR {c[$1 " " $2] = $3; next}
	{k = $1 " " $2; sold += $3; held += $4; conf += c[k]; if ($3 != c[k] + 0 || $4 != 0) bad++; seen[k] = 1}
	END {for (k in c) if (!(k in seen) && c[k] > 0) bad++
		printf "nights=%d sold=%d confirmed=%d held=%d mismatched=%d %s\n", FNR, sold, conf, held, bad + 0,
			(bad + 0 == 0 && sold == conf) ? "OK" : "FAIL"}' "$T/confirmed.txt" "$T/sold.txt")
log "HTTP check: $HTTP_CHECK"
MAP_USED=$(metric "$RS_PORT" resortd_lmdb_map_used_bytes)
HTTP_BOOKED=$(awk '{s += $3} END{print s + 0}' "$T/confirmed.txt")
MAP_PER_BOOKING=$(awk -v u="$MAP_USED" -v b="$HTTP_BOOKED" 'BEGIN{printf "%.0f", (b > 0 ? u / b : 0)}')
ENG_CHECK=OK
[ "$ENGINE_OK" = 1 ] && [ "$(grep -c 'ok=1$' "$T/res/eng_check" || true)" -eq "$REPS" ] || ENG_CHECK=FAIL
log "in-process check: $ENG_CHECK ($(tr '\n' ';' <"$T/res/eng_check"))"

# ---------------------------------------------------------------- report
# vals KEY FIELD: the field of every RESULT line of $T/res/KEY, one per line.
vals() { while read -r l; do kv "$l" "$2"; done <"$T/res/$1"; }
# pgvals NAME: PG_NAME of every round.
pgvals() { cat "$T"/res/pg*.kv 2>/dev/null | awk -F= -v k="PG_$1" '$1 == k {print $2}'; }
ms() { awk -v v="$1" 'BEGIN{printf "%.2f", v / 1000}'; }
f2() { awk -v v="$1" 'BEGIN{printf "%.2f", v}'; }
runs() { tr '\n' ' ' | sed 's/ $//'; }
pf() { awk -v v="$1" -v t="$2" 'BEGIN{print (v != "n/a" && v + 0 >= t + 0) ? "PASS" : "FAIL"}'; }

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
E_S=$(vals eng_spread bookings_per_s | med)
E_H=$(vals eng_hot bookings_per_s | med)
H_S=$(vals http_spread bookings_per_s | med)
H_H=$(vals http_hot bookings_per_s | med)
if [ "$WITH_PG" = 1 ]; then
	P_S=$(pgvals SPREAD_TPS | med)
	P_H=$(pgvals HOT_TPS | med)
	PG_CHECK=$(pgvals CHECK | sort -u | tr '\n' ' ' | sed 's/ $//')
	PG_VER=$(pgvals VERSION | head -1)
else
	P_S=n/a P_H=n/a PG_CHECK=skipped PG_VER=skipped
fi
R_ES=$(ratio "$E_S" "$P_S")
R_EH=$(ratio "$E_H" "$P_H")
R_HS=$(ratio "$H_S" "$P_S")
R_HH=$(ratio "$H_H" "$P_H")

{
	echo "<!-- booking:begin (bench/booking.sh writes this section) -->"
	echo "# Booking: durable confirmed bookings/s (issue 4)"
	echo
	echo "Run $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ local changes)'),"
	echo "\`BENCH_DURATION=$DUR BENCH_REPS=$REPS bench/booking.sh\`. Machine: $NPROC cores, $CPU; loopback;"
	echo "**every client runs on the same $NPROC cores as the server.** One booking = a hold and its confirm"
	echo "(payment desk), each a durable LMDB commit before its answer; $CLIENTS concurrent clients. Cells are the"
	echo "median of $REPS rounds, interleaved (in-process, HTTP, PostgreSQL in each round); *spread* = (max-min)/median."
	echo "Load average (1, 5, 15 min) before: $LOAD0, after: $LOAD1 (other work on the machine shows there);"
	echo "$(($(date +%s) - T_START)) s in all."
	echo
	echo "- in-process: \`bench/booking_engine.c\`, hold_cmd + booking_cmd through writer_submit from $CLIENTS clients"
	echo "  driven by one thread per core (as the HTTP workers drive the writer: a wake per thread per batch), a"
	echo "  fresh store each round, capacity 2e9 per night; no HTTP, no catalog read (the hold's price is given)."
	echo "- HTTP: \`bench/booking_client.c\` (one epoll thread, $CLIENTS keep-alive connections) against \`resortd serve\`"
	echo "  (default workers${RS_WORKERS:+ = $RS_WORKERS}, log level info to a file), signed in as a local admin (each request"
	echo "  carries its Bearer token: a token-cache probe and a session read): POST /v1/holds, then POST /v1/bookings"
	echo "  {\"hold_id\", \"payment\": {\"method\": \"desk\"}}; latency = hold sent to booking answered. Hot: a fresh night"
	echo "  per run (peak and half-rate), capacity $HOT_CAPACITY + overbooking $HOT_OVERBOOKING."
	echo "- PostgreSQL $PG_VER: \`bench/booking_pg.sh\`, one transaction per booking (SELECT ... FOR UPDATE, UPDATE,"
	echo "  INSERT, COMMIT; fsync and synchronous_commit on), \`pgbench -c $CLIENTS\`; one commit per booking where"
	echo "  resortd does two (hold, confirm)."
	echo
	echo "| case | engine | bookings/s | spread | p50 ms | p99 ms | runs (bookings/s) | / PostgreSQL | target |"
	echo "|---|---|---:|---:|---:|---:|---|---:|---|"
	for c in spread hot; do
		[ $c = spread ] && cn='(a) spread, 1,000 nights' || cn='(b) hot, one night'
		if [ $c = spread ]; then re=$R_ES rh=$R_HS te=5; else re=$R_EH rh=$R_HH te=20; fi
		C=${c^^}
		echo "| $cn | resortd in-process | $(fmt0 "$(vals eng_$c bookings_per_s | med)") | $(vals eng_$c bookings_per_s | spread)% |" \
			"$(ms "$(vals eng_$c p50_us | med)") | $(ms "$(vals eng_$c p99_us | med)") | $(vals eng_$c bookings_per_s | runs) | $re | >= $te: $(pf "$re" $te) |"
		echo "| $cn | resortd HTTP | $(fmt0 "$(vals http_$c bookings_per_s | med)") | $(vals http_$c bookings_per_s | spread)% |" \
			"$(f2 "$(vals http_$c p50_ms | med)") | $(f2 "$(vals http_$c p99_ms | med)") | $(vals http_$c bookings_per_s | runs) | $rh | >= 2: $(pf "$rh" 2) |"
		if [ "$WITH_PG" = 1 ]; then
			echo "| $cn | PostgreSQL | $(fmt0 "$(pgvals ${C}_TPS | med)") | $(pgvals ${C}_TPS | spread)% |" \
				"$(pgvals ${C}_P50_MS | med) | $(pgvals ${C}_P99_MS | med) | $(pgvals ${C}_TPS | runs) | 1 | |"
		fi
	done
	echo
	echo "## Latency at half the peak rate (open loop: arrivals paced at 50% of the round's peak, latency"
	echo "from each arrival's scheduled time, so queueing counts)"
	echo
	echo "| case | engine | offered/s | confirmed/s | p50 ms | p99 ms | p99 runs |"
	echo "|---|---|---:|---:|---:|---:|---|"
	for c in spread hot; do
		[ $c = spread ] && cn='(a) spread' || cn='(b) hot'
		C=${c^^}
		echo "| $cn | resortd HTTP | $(fmt0 "$(vals http_${c}_half offered_per_s | med)") | $(fmt0 "$(vals http_${c}_half bookings_per_s | med)") |" \
			"$(f2 "$(vals http_${c}_half p50_ms | med)") | $(f2 "$(vals http_${c}_half p99_ms | med)") | $(vals http_${c}_half p99_ms | runs) |"
		if [ "$WITH_PG" = 1 ]; then
			echo "| $cn | PostgreSQL (pgbench -R) | $(fmt0 "$(pgvals ${C}_TPS | awk '{print int($1/2)}' | med)") | $(fmt0 "$(pgvals ${C}_HALF_TPS | med)") |" \
				"$(pgvals ${C}_HALF_P50_MS | med) | $(pgvals ${C}_HALF_P99_MS | med) | $(pgvals ${C}_HALF_P99_MS | runs) |"
		fi
	done
	echo
	echo "## Where the time goes"
	echo
	echo "| case | engine | writer commits/s | mean batch (commands) | CPU us per booking | hold / confirm ms (mean or p50) |"
	echo "|---|---|---:|---:|---:|---|"
	for c in spread hot; do
		echo "| $c | in-process | $(fmt0 "$(vals eng_$c commits_per_s | med)") | $(vals eng_$c mean_batch | med) | $(vals eng_$c cpu_us_per_booking | med) (all threads) |" \
			"$(ms "$(vals eng_$c hold_us_mean | med)") / $(ms "$(vals eng_$c confirm_us_mean | med)") (means) |"
		echo "| $c | HTTP | $(fmt0 "$(vals http_$c commits_per_s | med)") | $(vals http_$c mean_batch | med) | $(vals http_$c server_cpu_us_per_booking | med) (server) |" \
			"$(f2 "$(vals http_$c hold_p50_ms | med)") / $(f2 "$(vals http_$c confirm_p50_ms | med)") (p50) |"
	done
	echo
	echo "Client CPU (booking_client, whole closed-loop run): $(vals http_spread client_cpu_s | runs) s spread,"
	echo "$(vals http_hot client_cpu_s | runs) s hot, per ${DUR} s run. Projector lag after each HTTP run (events not yet in"
	echo "catalog.db): $(cat "$T"/res/http_* | while read -r l; do kv "$l" projector_lag; done | runs)."
	echo "LMDB map in use per booking: HTTP $(fmt0 "$MAP_PER_BOOKING") B ($(fmt0 "$MAP_USED") B for $(fmt0 "$HTTP_BOOKED") bookings,"
	echo "map $MAP_MB MiB); in-process $(sed 's/.*map_bytes_per_booking=\([0-9]*\).*/\1/' "$T/res/eng_check" | runs) B per round."
	echo
	echo "## Checks"
	echo
	echo "- in-process, every round: sold == confirmed and held == 0 on every night, bookings documents =="
	echo "  confirmed: **$ENG_CHECK** ($(sed 's/^CHECK //' "$T/res/eng_check" | tr '\n' ';' | sed 's/;$//; s/;/; /g'))"
	echo "- HTTP, all runs with the warm-up: GET /v1/inventory sold == bookings answered 201, per night; held == 0:"
	echo "  **${HTTP_CHECK##* }** (${HTTP_CHECK% *})"
	echo "- HTTP errors (non-201 answers / connections broken mid-booking), all runs: $(cat "$T"/res/http_* | while read -r l; do kv "$l" errors; done | awk '{s+=$1} END{print s+0}') / $(cat "$T"/res/http_* | while read -r l; do kv "$l" socket_errors; done | awk '{s+=$1} END{print s+0}')"
	echo "- PostgreSQL: sum(sold) == count(bookings) == pgbench's transactions: $PG_CHECK"
	echo "<!-- booking:end -->"
} >"$T/section.md"

put_section "$OUT" booking "$T/section.md"
cat "$T/section.md"
echo
{
	echo "BOOKING_CLIENTS=$CLIENTS"
	echo "BOOKING_DURATION_S=$DUR"
	echo "BOOKING_REPS=$REPS"
	echo "ENGINE_SPREAD_BPS=$E_S"
	echo "ENGINE_SPREAD_SPREAD_PCT=$(vals eng_spread bookings_per_s | spread)"
	echo "ENGINE_HOT_BPS=$E_H"
	echo "ENGINE_HOT_SPREAD_PCT=$(vals eng_hot bookings_per_s | spread)"
	echo "HTTP_SPREAD_BPS=$H_S"
	echo "HTTP_SPREAD_SPREAD_PCT=$(vals http_spread bookings_per_s | spread)"
	echo "HTTP_SPREAD_P50_MS=$(vals http_spread p50_ms | med)"
	echo "HTTP_SPREAD_P99_MS=$(vals http_spread p99_ms | med)"
	echo "HTTP_SPREAD_HALF_P50_MS=$(vals http_spread_half p50_ms | med)"
	echo "HTTP_SPREAD_HALF_P99_MS=$(vals http_spread_half p99_ms | med)"
	echo "HTTP_HOT_BPS=$H_H"
	echo "HTTP_HOT_SPREAD_PCT=$(vals http_hot bookings_per_s | spread)"
	echo "HTTP_HOT_P50_MS=$(vals http_hot p50_ms | med)"
	echo "HTTP_HOT_P99_MS=$(vals http_hot p99_ms | med)"
	echo "HTTP_HOT_HALF_P50_MS=$(vals http_hot_half p50_ms | med)"
	echo "HTTP_HOT_HALF_P99_MS=$(vals http_hot_half p99_ms | med)"
	echo "HTTP_MAP_BYTES_PER_BOOKING=$MAP_PER_BOOKING"
	echo "PG_SPREAD_BPS=$P_S"
	echo "PG_HOT_BPS=$P_H"
	echo "RATIO_ENGINE_PG_SPREAD=$R_ES"
	echo "RATIO_ENGINE_PG_HOT=$R_EH"
	echo "RATIO_HTTP_PG_SPREAD=$R_HS"
	echo "RATIO_HTTP_PG_HOT=$R_HH"
	echo "TARGET_ENGINE_SPREAD_5X=$(pf "$R_ES" 5)"
	echo "TARGET_ENGINE_HOT_20X=$(pf "$R_EH" 20)"
	echo "TARGET_HTTP_SPREAD_2X=$(pf "$R_HS" 2)"
	echo "TARGET_HTTP_HOT_2X=$(pf "$R_HH" 2)"
	echo "CHECK_ENGINE=$ENG_CHECK"
	echo "CHECK_HTTP=${HTTP_CHECK##* }"
	echo "CHECK_PG=$PG_CHECK"
}
log "saved $OUT (booking section)"
[ "$ENG_CHECK" = OK ] && [ "${HTTP_CHECK##* }" = OK ] && [ "$PG_CHECK" != FAIL ]
