#!/usr/bin/env bash
# bench/auth.sh — the sign-in benchmarks (issue 5); prints a markdown report and puts it in
# bench/results.md between the auth markers (the rest of the file is kept), then KEY=VALUE lines
# (medians) on stdout. Loopback only. Each cell: the median of BENCH_REPS rounds, interleaved.
# Takes about REPS x (16 x BENCH_DURATION + 15) s: ~9 min at the defaults.
#
#  (a) what sign-in costs a request: wrk GET /v1/products/{id} (a public route; a demo product)
#      with and without `Authorization: Bearer` (the bench admin's token) against the same
#      `resortd serve --demo` (default workers), and a control: anonymous with a padding header
#      as long as the Authorization one; the three alternate in every round (the order reversed
#      every other round); -t2 -c64 as bench/run.sh. A signed-in request pays a SHA-256 of its
#      token, a probe of the worker's token cache, a look at LMDB's last transaction id and,
#      when anything was committed since, one LMDB read of its session (the token's ES256
#      verification once per worker). Target: auth costs <= 10 %.
#  (b) the session check in-process (bench/auth_engine.c: BENCH_AUTH_SESSIONS sessions made
#      through the writer, then session_check on random sessions, one read snapshot per check as
#      the workers do; also the whole bearer path auth_bearer, cache hit and cache miss, and
#      auth_sign_access) with 1 and 2 threads, vs a Redis GET of a session key over loopback: Debian redis-server (no
#      persistence, pinned to the last CPU) holding as many keys of the session record's size,
#      redis-benchmark on random keys with 1 client on another core and on the same core
#      (latency) and 50 clients (throughput). Target: in-process checks/s >= 50 x Redis GET/s.
#  (c) POST /auth/token over HTTP (bench/auth_client.c): refreshes/s, each client chaining its
#      own session's refresh tokens (BENCH_AUTH_REFRESH_CLIENTS, "16 64"); local staff logins/s
#      (password grant, BENCH_AUTH_LOGIN_CLIENTS 16) for a user hashed with 600,000 PBKDF2
#      rounds (the default password_iterations) and one hashed with 1,000, so the hash cost shows.
#
# Environment: BENCH_DURATION (s per measurement, 10), BENCH_REPS (rounds, 3), BENCH_RESORTD_BIN
# (./resortd), BENCH_AUTH_SESSIONS (10000), BENCH_AUTH_REFRESH_CLIENTS ("16 64"),
# BENCH_AUTH_LOGIN_CLIENTS (16), BENCH_AUTH_ITERATIONS ("600000 1000").
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BENCH_RESORTD_BIN:-$ROOT/resortd}
DUR=${BENCH_DURATION:-10}
REPS=${BENCH_REPS:-3}
SESSIONS=${BENCH_AUTH_SESSIONS:-10000}
REFRESH_CLIENTS=${BENCH_AUTH_REFRESH_CLIENTS:-16 64}
LOGIN_CLIENTS=${BENCH_AUTH_LOGIN_CLIENTS:-16}
ITERATIONS=${BENCH_AUTH_ITERATIONS:-600000 1000}
# Redis cases: NAME:CLIENTS:CLIENT_CPU (redis-server runs on the last CPU). On this kind of VM a
# loopback round trip between two cores costs ~5 x one on a single core (the idle core's wake-up),
# and the scheduler picks either depending on other load, so both are pinned with taskset and
# measured: cross-core (client on CPU 0) and same-core (Redis's best case for 1 client).
RCPU=$(($(nproc) - 1))
REDIS_CASES="1x:1:0 1s:1:$RCPU 50x:50:0"
OUT=$ROOT/bench/results.md
T=$(mktemp -d "${TMPDIR:-/tmp}/resortd-auth.XXXXXX")
PIDS=()
T_START=$(date +%s)

LOG_TAG=auth
NEEDS_TOOLS="wrk cc pkg-config redis-server redis-benchmark redis-cli taskset"
# shellcheck source=bench/lib.sh
. bench/lib.sh
if [ "$REPS" -lt 1 ] || [ "$DUR" -lt 1 ]; then die "BENCH_REPS and BENCH_DURATION must be >= 1"; fi
ls "$ROOT"/build/release/*.o >/dev/null 2>&1 || die "build/release objects missing (make resortd)"

fmt0() { awk -v v="$1" 'BEGIN{printf "%\047.0f", v}' 2>/dev/null || echo "$1"; }
f2() { awk -v v="$1" 'BEGIN{if(v=="n/a"||v=="") print "n/a"; else printf "%.2f", v}'; }
# kv LINE KEY: the value of KEY=value in a RESULT line.
kv() { awk -v k="$2" '{for(i=1;i<=NF;i++){n=index($i,"="); if(substr($i,1,n-1)==k){print substr($i,n+1); exit}}}' <<<"$1"; }
# vals FILE KEY: KEY of every RESULT line of $T/res/FILE, one per line.
vals() { while read -r l; do kv "$l" "$2"; done <"$T/res/$1"; }
runs() { tr '\n' ' ' | sed 's/ $//'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN{if(v=="n/a"||v==""){print "n/a";exit} ok=(op=="<=")?(v+0<=t+0):(v+0>=t+0); print ok?"PASS":"FAIL"}'; }

# start_rs NAME [serve args...]: resortd on a fresh data dir holding the bench admin (and the
# users auth_user_add put there before); sets RS_PID and RS_PORT.
start_rs() {
	local name=$1
	shift
	mkdir -p "$T/$name"
	[ -d "$T/$name/data" ] || auth_add_admin "$T/$name/data"
	"$BIN" serve --listen 127.0.0.1:0 --data-dir "$T/$name/data" "${AUTH_SERVE_ARGS[@]}" "$@" \
		2>"$T/$name/log" &
	RS_PID=$!
	PIDS+=("$RS_PID")
	RS_PORT=
	for _ in $(seq 1 200); do
		RS_PORT=$(grep -o 'listening on [^ ]* port [0-9]*' "$T/$name/log" 2>/dev/null |
			awk '{print $NF}' | head -1 || true)
		[ -n "$RS_PORT" ] && break
		kill -0 "$RS_PID" 2>/dev/null || { cat "$T/$name/log" >&2; die "resortd $name exited"; }
		sleep 0.1
	done
	[ -n "$RS_PORT" ] || { cat "$T/$name/log" >&2; die "resortd $name did not start"; }
	http_get "$RS_PORT" /readyz >/dev/null || { cat "$T/$name/log" >&2; die "resortd $name not ready"; }
}
# stop PID: stops a process this script started (it stays in PIDS; cleanup skips the dead).
stop() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
}

# run_wrk KEY wrk-args... : appends "rps p99_ms errors load1" to $T/res/KEY.
mkdir -p "$T/res"
WRK_N=0
run_wrk() {
	local key=$1 l
	shift
	WRK_N=$((WRK_N + 1))
	local f="$T/wrk-$WRK_N-$key.txt"
	l=$(load1)
	timeout $((DUR + 30)) wrk --latency --timeout 5s -d"${DUR}s" "$@" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "wrk failed ($key)"; }
	local rps p99 errs
	rps=$(awk '/^Requests\/sec:/{print $2}' "$f")
	p99=$(awk '$1=="99%"{v=$2; if(v~/us$/){sub(/us$/,"",v);v/=1000} else if(v~/ms$/){sub(/ms$/,"",v)} else if(v~/s$/){sub(/s$/,"",v);v*=1000} printf "%.2f", v}' "$f")
	errs=$(awk '/Non-2xx or 3xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
	echo "$rps $p99 $errs $l" >>"$T/res/$key"
	log "$key: $rps req/s, p99 ${p99} ms, errors $errs (load $l)"
}

# ---------------------------------------------------------------- machine, builds
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
NPROC=$(nproc)
TICK=$(getconf CLK_TCK)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $NPROC cores, $CPU; load average $LOAD0; temp $T"
# shellcheck disable=SC2010
OBJS=$(ls "$ROOT"/build/release/*.o | grep -v '/main\.o$')
# shellcheck disable=SC2086,SC2046
cc -O2 -g -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/auth_engine.c \
	$OBJS $(pkg-config --libs lmdb libevent libevent_openssl libevent_pthreads libssl libcrypto \
	libcjson sqlite3) -lpthread -lm -o "$T/auth_engine" ||
	die "auth_engine did not build (build/release out of date? make resortd)"
cc -O2 -g -std=c11 -D_GNU_SOURCE bench/auth_client.c bench/bench_net.c -lm -o "$T/auth_client"
REDIS_VER=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')

# ---------------------------------------------------------------- (a) GET with and without auth
start_rs get --demo
GET_PID=$RS_PID GET_PORT=$RS_PORT
RS_WORKERS=$(grep -o 'workers[ =:]*[0-9]*' "$T/get/log" | head -1 | grep -o '[0-9]*$' || true)
auth_login "$GET_PORT"
PROD=$(http_get "$GET_PORT" '/v1/products?limit=1' | grep -o '"id":"pr_[A-Za-z0-9_-]*"' | head -1 | cut -d'"' -f4)
[ -n "$PROD" ] || die "no demo product (GET /v1/products?limit=1)"
URL="http://127.0.0.1:$GET_PORT/v1/products/$PROD"
ANON_BYTES=$(http_get "$GET_PORT" "/v1/products/$PROD" | wc -c)
AUTH_BYTES=$(http_get_auth "$GET_PORT" "/v1/products/$PROD" | wc -c) ||
	die "GET /v1/products/$PROD with the token failed"
[ "$ANON_BYTES" = "$AUTH_BYTES" ] || log "note: bodies differ: $ANON_BYTES B anonymous, $AUTH_BYTES B signed in"
[ "$(BENCH_TOKEN=not.a.token http_get_auth "$GET_PORT" "/v1/products/$PROD" >/dev/null 2>&1 && echo 2xx)" != 2xx ] ||
	die "a bad token was accepted: the signed-in runs would not measure sign-in"
# The control: an anonymous request as long as the signed-in one (a header resortd ignores of the
# Authorization header's length), so what the bigger request costs shows apart from sign-in.
PAD_HEADER="X-Bench-Pad: $(printf '%*s' $((${#AUTH_HEADER} - 13)) '' | tr ' ' x)"
[ ${#PAD_HEADER} = ${#AUTH_HEADER} ] || die "pad header of ${#PAD_HEADER} B, not ${#AUTH_HEADER}"
log "resortd --demo :$GET_PORT (workers ${RS_WORKERS:-default}); GET /v1/products/$PROD ($ANON_BYTES B); token ${#BENCH_TOKEN} B"
for rep in $(seq 1 "$REPS"); do
	log "(a) GET round $rep/$REPS"
	if [ $((rep % 2)) = 1 ]; then
		run_wrk get_anon -t2 -c64 "$URL"
		run_wrk get_auth -t2 -c64 -H "$AUTH_HEADER" "$URL"
		run_wrk get_pad -t2 -c64 -H "$PAD_HEADER" "$URL"
	else
		run_wrk get_pad -t2 -c64 -H "$PAD_HEADER" "$URL"
		run_wrk get_auth -t2 -c64 -H "$AUTH_HEADER" "$URL"
		run_wrk get_anon -t2 -c64 "$URL"
	fi
done
GET_LOG_401=$(grep -c ' 401 ' "$T/get/log" || true)
stop "$GET_PID"

# ---------------------------------------------------------------- (b) in-process vs Redis
mkdir -p "$T/redis"
REDIS_PORT=$(free_port)
taskset -c "$RCPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize no --dir "$T/redis" --logfile "$T/redis/log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 100); do
	[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null || true)" = PONG ] && break
	kill -0 "$REDIS_PID" 2>/dev/null || { cat "$T/redis/log" >&2; die "redis-server exited"; }
	sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping)" = PONG ] || die "redis-server not answering"

# redis_run NAME: redis-benchmark GET of random session keys for about DUR s (the request count
# from the calibration); appends "rps p50_ms p99_ms max_ms hits misses requests load1".
rb() { # rb CLIENTS CPU N -> the CSV line of the GET (test,rps,avg,min,p50,p95,p99,max in ms)
	timeout $((DUR * 4 + 60)) taskset -c "$2" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$1" \
		-n "$3" -r "$SESSIONS" --csv GET 'session:__rand_int__' | awk 'NR==2{gsub(/"/,""); print}'
}
rcase() { # rcase NAME FIELD(2: clients, 3: client CPU)
	tr ' ' '\n' <<<"$REDIS_CASES" | awk -F: -v n="$1" -v f="$2" '$1==n{print $f}'
}
stat_of() { redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | awk -F: -v k="$1" '$1==k{print $2}'; }
declare -A REDIS_N
redis_run() {
	local name=$1 key=redis_$1 h0 m0 line l
	l=$(load1)
	h0=$(stat_of keyspace_hits)
	m0=$(stat_of keyspace_misses)
	line=$(rb "$(rcase "$name" 2)" "$(rcase "$name" 3)" "${REDIS_N[$name]}") || die "redis-benchmark failed ($key)"
	[ -n "$line" ] || die "redis-benchmark printed nothing ($key)"
	echo "$line" | awk -F, -v h=$(($(stat_of keyspace_hits) - h0)) -v m=$(($(stat_of keyspace_misses) - m0)) \
		-v n="${REDIS_N[$name]}" -v l="$l" '{print $2, $5, $7, $8, h, m, n, l}' >>"$T/res/$key"
	log "$key: $(tail -1 "$T/res/$key") (rps p50 p99 max hits misses requests load)"
}

log "(b) auth_engine calibration: $SESSIONS sessions, session record size"
TMPDIR=$T timeout 300 "$T/auth_engine" 1 "$SESSIONS" check -- 1 >"$T/engine0.txt" 2>"$T/engine0.err" ||
	{ cat "$T/engine0.err" >&2; die "auth_engine failed"; }
SESSION_BYTES=$(kv "$(grep '^SETUP' "$T/engine0.txt")" session_bytes)
[ -n "$SESSION_BYTES" ] && [ "$SESSION_BYTES" -gt 0 ] || die "no session size from auth_engine"
log "Redis $REDIS_VER :$REDIS_PORT: SET $SESSIONS keys session:000000000000.. of $SESSION_BYTES B (a session record's size)"
awk -v n="$SESSIONS" -v b="$SESSION_BYTES" 'BEGIN{
	srand(1); v = ""; for (j = 0; j < b; j++) v = v sprintf("%c", 97 + int(rand() * 26));
	for (i = 0; i < n; i++) { k = sprintf("session:%012d", i);
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
	redis-cli -p "$REDIS_PORT" --pipe >"$T/redis/pipe.txt" 2>&1 || { cat "$T/redis/pipe.txt" >&2; die "redis-cli --pipe failed"; }
[ "$(redis-cli -p "$REDIS_PORT" dbsize)" = "$SESSIONS" ] || die "Redis holds $(redis-cli -p "$REDIS_PORT" dbsize) keys, not $SESSIONS"
for rc in $REDIS_CASES; do # calibration: requests for about DUR s
	name=${rc%%:*}
	rps=$(rb "$(rcase "$name" 2)" "$(rcase "$name" 3)" 50000 | awk -F, '{print $2}')
	REDIS_N[$name]=$(awk -v r="$rps" -v d="$DUR" 'BEGIN{printf "%d", r * d}')
	log "Redis calibration, $name ($(rcase "$name" 2) client(s) on CPU $(rcase "$name" 3)): $rps GET/s -> -n ${REDIS_N[$name]}"
done

for rep in $(seq 1 "$REPS"); do
	log "(b) round $rep/$REPS: in-process (${DUR} s per case and thread count)"
	TMPDIR=$T timeout $((DUR * 6 + 300)) "$T/auth_engine" "$DUR" "$SESSIONS" check bearer bearer_miss sign -- 1 2 \
		>"$T/engine$rep.txt" 2>"$T/engine$rep.err" || { cat "$T/engine$rep.err" >&2; die "auth_engine failed (round $rep)"; }
	cat "$T/engine$rep.err" >&2
	grep '^SETUP' "$T/engine$rep.txt" >>"$T/res/eng_setup"
	for cs in check bearer bearer_miss sign; do
		for th in 1 2; do
			grep "^RESULT case=$cs threads=$th " "$T/engine$rep.txt" | sed "s/\$/ load1=$(load1)/" >>"$T/res/eng_${cs}_$th"
		done
	done
	log "(b) round $rep/$REPS: Redis"
	for rc in $REDIS_CASES; do redis_run "${rc%%:*}"; done
done
stop "$REDIS_PID"

# ---------------------------------------------------------------- (c) refreshes and logins
mkdir -p "$T/tok"
auth_add_admin "$T/tok/data"
for it in $ITERATIONS; do
	log "adding user cost$it (password hashed with $it PBKDF2-SHA256 rounds)"
	auth_user_add "$T/tok/data" "cost$it" staff "$BENCH_PASSWORD" "$it"
done
start_rs tok --password-iterations 600000
TOK_PID=$RS_PID TOK_PORT=$RS_PORT
# client_run KEY MODE CONNS USER: auth_client for DUR s; appends its RESULT line plus the
# server's CPU per success and the load average.
client_run() {
	local key=$1 mode=$2 conns=$3 user=$4 line c0 c1 l
	l=$(load1)
	c0=$(cpu_ticks "$TOK_PID")
	line=$(timeout $((DUR + 120)) "$T/auth_client" "$TOK_PORT" "$mode" "$conns" "$DUR" "$user" "$BENCH_PASSWORD" \
		2>"$T/client-$key.err") || { cat "$T/client-$key.err" >&2; die "auth_client failed ($key)"; }
	c1=$(cpu_ticks "$TOK_PID")
	[ -s "$T/client-$key.err" ] && head -5 "$T/client-$key.err" >&2
	local ok cpu_ms
	ok=$(kv "$line" ok_all) # the server's CPU delta includes the answers finished after DUR
	cpu_ms=$(awk -v c=$((c1 - c0)) -v t="$TICK" -v n="$ok" 'BEGIN{printf "%.3f", (n > 0 ? c * 1000 / t / n : 0)}')
	echo "$line server_cpu_ms_per_op=$cpu_ms load1=$l" >>"$T/res/$key"
	log "$key: $(kv "$line" ok_per_s)/s, p50 $(kv "$line" p50_ms) ms, p99 $(kv "$line" p99_ms) ms, errors $(kv "$line" errors)/$(kv "$line" socket_errors), server ${cpu_ms} ms CPU each (load $l)"
}
for rep in $(seq 1 "$REPS"); do
	for c in $REFRESH_CLIENTS; do
		log "(c) round $rep/$REPS: refresh, $c clients"
		client_run "refresh_$c" refresh "$c" "$BENCH_USER"
	done
	for it in $ITERATIONS; do
		log "(c) round $rep/$REPS: password logins at $it rounds, $LOGIN_CLIENTS clients"
		client_run "login_$it" login "$LOGIN_CLIENTS" "cost$it"
	done
done
stop "$TOK_PID"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T_START))

# ---------------------------------------------------------------- report
A_ANON=$(col get_anon 1 | med)
A_AUTH=$(col get_auth 1 | med)
A_PAD=$(col get_pad 1 | med)
A_PAD_COST=$(awk -v a="$A_ANON" -v b="$A_PAD" 'BEGIN{printf "%.1f", (1 - b / a) * 100}')
A_AUTH_VS_PAD=$(awk -v a="$A_PAD" -v b="$A_AUTH" 'BEGIN{printf "%.1f", (1 - b / a) * 100}')
# The cost of each round (its signed-in run against its anonymous one), then their median.
paste -d' ' "$T/res/get_anon" "$T/res/get_auth" | awk '{printf "%.1f\n", (1 - $5 / $1) * 100}' >"$T/res/get_cost"
A_COST=$(med <"$T/res/get_cost")
A_COST_MED=$(awk -v a="$A_ANON" -v b="$A_AUTH" 'BEGIN{printf "%.1f", (1 - b / a) * 100}')
E1=$(vals eng_check_1 ops_per_s | med)
E2=$(vals eng_check_2 ops_per_s | med)
R1=$(col redis_1x 1 | med)
R1S=$(col redis_1s 1 | med)
R50=$(col redis_50x 1 | med)
RATIO1=$(ratio "$E1" "$R1")
RATIO1S=$(ratio "$E1" "$R1S")
RATIO2=$(ratio "$E2" "$R50")
us() { awk -v v="$1" 'BEGIN{printf "%.0f", v * 1000}'; }
eng_row() { # eng_row CASE THREADS NAME
	local k="eng_$1_$2"
	echo "| $3 | $2 | $(fmt0 "$(vals "$k" ops_per_s | med)") | $(vals "$k" ops_per_s | spread)% | $(fmt0 "$(vals "$k" per_thread_ops_per_s | med)") |" \
		"$(vals "$k" p50_us | med) | $(vals "$k" p99_us | med) | $(vals "$k" p99_us | runs) | $(vals "$k" cpu_us_per_op | med) | $(vals "$k" errors | awk '{s+=$1} END{print s+0}') | $(vals "$k" load1 | runs) |"
}
{
	echo "<!-- auth:begin (bench/auth.sh writes this section) -->"
	echo "# Sign-in: what authentication costs (issue 5)"
	echo
	echo "Run $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ local changes)'),"
	echo "\`BENCH_DURATION=$DUR BENCH_REPS=$REPS bench/auth.sh\` ($ELAPSED s). Machine: $NPROC cores, $CPU, $(uname -r);"
	echo "loopback; **every client runs on the same $NPROC cores as the server.** Cells are the median of $REPS rounds;"
	echo "*spread* = (max-min)/median. Load average (1, 5, 15 min) before: $LOAD0, after: $LOAD1; the 1-min"
	echo "load at the start of each measurement is in the *load* columns (this script's own load reads ~2 on"
	echo "$NPROC cores; more shows other work on the machine)."
	echo "Servers: release \`resortd serve\` (default workers${RS_WORKERS:+ = $RS_WORKERS}, log level info to a file), \`--access-ttl-s 3600\`,"
	echo "a local admin added before the first start (\`resortd user add bench --role admin --password-stdin"
	echo "--password-iterations 1000\`) and signed in with \`POST /auth/token grant_type=password\`."
	echo
	echo "## (a) GET /v1/products/{id} signed in vs anonymous (target: auth costs <= 10 %)"
	echo
	echo "\`wrk -t2 -c64 -d${DUR}s --latency --timeout 5s [-H 'Authorization: Bearer <ES256 JWT, ${#BENCH_TOKEN} B>'] $URL\`"
	echo "against one \`resortd serve --demo\`, the three alternating in each round (order reversed every other"
	echo "round). The control sends \`-H 'X-Bench-Pad: xxx...'\`, a header as long as the Authorization one, anonymously:"
	echo "what the bigger request costs (reading, parsing; wrk's side too) apart from checking it."
	echo "Product $PROD, $ANON_BYTES B (signed in: $AUTH_BYTES B). A bad token was checked to be refused first."
	echo
	echo "| requests | req/s (median) | spread | p99 ms (median) | p99 spread | errors | runs (req/s) | load |"
	echo "|---|---:|---:|---:|---:|---:|---|---|"
	for k in get_anon get_pad get_auth; do
		case $k in get_anon) n='anonymous' ;; get_pad) n="anonymous + ${#PAD_HEADER} B X-Bench-Pad header (control)" ;; *) n='signed in (Bearer)' ;; esac
		echo "| $n | $(fmt0 "$(col $k 1 | med)") | $(col $k 1 | spread)% | $(col $k 2 | med) | $(col $k 2 | spread)% | $(sum_col $k 3) | $(col $k 1 | runs) | $(col $k 4 | runs) |"
	done
	echo
	echo "Cost of signing in = 1 - signed-in/anonymous: **$A_COST_MED %** on the medians; per round $(runs <"$T/res/get_cost") %"
	echo "(median $A_COST %). Of which the bigger request (control vs anonymous): $A_PAD_COST %; the sign-in itself"
	echo "(signed in vs control): $A_AUTH_VS_PAD %. 401s in the server's log: $GET_LOG_401."
	echo
	echo "## (b) Session check in-process vs a Redis GET (target: in-process >= 50 x Redis)"
	echo
	echo "In-process: \`bench/auth_engine.c\` (built like bench/booking_engine.c against build/release/*.o), a fresh"
	echo "durable store per round, $SESSIONS sessions made through the writer (session_cmd_init(SESSION_LOGIN) +"
	echo "writer_run from 64 threads; session record $SESSION_BYTES B), then T threads for ${DUR} s each on random"
	echo "sessions, each check in a snapshot of its own as a worker does per request: store_reader_begin"
	echo "(mdb_txn_renew), the call, store_reader_end (mdb_txn_reset). Latency: every 8th request timed alone"
	echo "with clock_gettime(CLOCK_MONOTONIC) around begin+call+end. CPU us/op: the process's CPU (all threads) / ops."
	echo "- **check** = \`session_check(txn, store, sid, NULL, &lim, now_ms, NULL, NULL, &f)\`;"
	echo "- **bearer (cache hit)** = \`auth_bearer\` with the session's ES256 access token (auth_open over the store;"
	echo "  auth_sign_access), one token cache per thread as per worker, warmed, $(kv "$(head -1 "$T/res/eng_setup")" hit_tokens) tokens with a cache slot each: SHA-256"
	echo "  of the token, cache probe, no session read (nothing is committed meanwhile) — what a signed-in request pays"
	echo "  between writes (a write in between adds the **check** row);"
	echo "- **bearer (cache miss)** = auth_bearer on pairs of tokens sharing a slot, alternately: the ES256 verification"
	echo "  + the check — what a token's first request on a worker pays (${DUR}/3 s per run);"
	echo "- **sign** = auth_sign_access for a session's principal, what every login and refresh pays once (${DUR}/3 s per run)."
	echo
	echo "| case | threads | ops/s (median) | spread | per thread | p50 us | p99 us (median) | p99 runs | CPU us/op | errors | load |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
	for th in 1 2; do eng_row check $th 'check (session_check)'; done
	for th in 1 2; do eng_row bearer $th 'bearer, cache hit (auth_bearer)'; done
	for th in 1 2; do eng_row bearer_miss $th 'bearer, cache miss (ES256 verify)'; done
	for th in 1 2; do eng_row sign $th 'sign an access token (auth_sign_access)'; done
	echo
	echo "Session setup per round: $(vals eng_setup secs | runs) s for $SESSIONS logins in $(vals eng_setup commits | runs) commits."
	echo
	echo "Redis $REDIS_VER (Debian redis-server, \`taskset -c $RCPU redis-server --port P --bind 127.0.0.1 --save '' --appendonly no\`),"
	echo "$SESSIONS keys \`session:000000000000\`..\`session:$(printf '%012d' $((SESSIONS - 1)))\` of $SESSION_BYTES B (a session record's size; SET through"
	echo "\`redis-cli --pipe\`), then \`taskset -c CPU redis-benchmark -h 127.0.0.1 -p P -c C -n N -r $SESSIONS --csv GET"
	echo "'session:__rand_int__'\` (the GET test of \`-t get\`, on the session keys; N from a calibration run: about ${DUR} s;"
	echo "no pipelining; one client thread). Hits/misses: keyspace_hits/_misses deltas of INFO stats. Pinned because"
	echo "on this VM a loopback round trip between two cores costs ~5 x one within a core (waking the idle vCPU), and"
	echo "unpinned the scheduler picks either depending on other load (1-client runs gave 14,000 or 80,000 GET/s)."
	echo
	echo "| Redis clients | client CPU (server: $RCPU) | GET/s (median) | spread | p50 ms | p99 ms (median) | p99 runs | hits / misses (all runs) | load |"
	echo "|---:|---|---:|---:|---:|---:|---|---|---|"
	for rc in $REDIS_CASES; do
		name=${rc%%:*}
		k=redis_$name
		[ "$(rcase "$name" 3)" = "$RCPU" ] && where="$RCPU (same core)" || where="$(rcase "$name" 3) (cross-core)"
		echo "| $(rcase "$name" 2) | $where | $(fmt0 "$(col "$k" 1 | med)") | $(col "$k" 1 | spread)% | $(col "$k" 2 | med) | $(col "$k" 3 | med) | $(col "$k" 3 | runs) | $(sum_col "$k" 5) / $(sum_col "$k" 6) | $(col "$k" 8 | runs) |"
	done
	echo
	echo "| comparison | in-process | Redis | ratio |"
	echo "|---|---:|---:|---:|"
	echo "| checks/s, 1 thread vs GET/s, 1 client cross-core | $(fmt0 "$E1") | $(fmt0 "$R1") | **$RATIO1** |"
	echo "| checks/s, 1 thread vs GET/s, 1 client same core | $(fmt0 "$E1") | $(fmt0 "$R1S") | **$RATIO1S** |"
	echo "| checks/s, 2 threads vs GET/s, 50 clients | $(fmt0 "$E2") | $(fmt0 "$R50") | **$RATIO2** |"
	echo "| p50 / p99, check, 1 thread vs 1 client cross-core | $(vals eng_check_1 p50_us | med) / $(vals eng_check_1 p99_us | med) us | $(us "$(col redis_1x 2 | med)") / $(us "$(col redis_1x 3 | med)") us | |"
	echo "| p50 / p99, check, 1 thread vs 1 client same core | $(vals eng_check_1 p50_us | med) / $(vals eng_check_1 p99_us | med) us | $(us "$(col redis_1s 2 | med)") / $(us "$(col redis_1s 3 | med)") us | |"
	echo "| p50 / p99, signed-in request (bearer hit), 1 thread vs 1 client same core | $(vals eng_bearer_1 p50_us | med) / $(vals eng_bearer_1 p99_us | med) us | $(us "$(col redis_1s 2 | med)") / $(us "$(col redis_1s 3 | med)") us | |"
	echo
	echo "The Redis figure is a bare GET (no decoding of the record, no lifetime check) over loopback on the same"
	echo "machine, its client and server sharing the $NPROC cores (a Redis on another host adds a network round trip);"
	echo "the in-process figure is what the server does per request for a session. redis-benchmark reports latency"
	echo "in steps of about 0.008 ms."
	echo
	echo "## (c) POST /auth/token: refreshes and local staff logins"
	echo
	echo "\`bench/auth_client.c\` (one epoll thread, closed loop, keep-alive connections) against \`resortd serve"
	echo "--password-iterations 600000\` (default workers; a fresh data dir with the admin and the users"
	echo "$(for it in $ITERATIONS; do printf 'cost%s ' "$it"; done | sed 's/ $//'), each added by \`resortd user add NAME --role staff --password-stdin --password-iterations N\`:"
	echo "a login costs the rounds its stored hash was made with)."
	echo "- refresh: each client signs in once (as bench, not counted), then chains grant_type=refresh_token with the"
	echo "  refresh token of each answer: a session read, an ES256 signature, one durable writer commit (batched)."
	echo "- login: grant_type=password as costN: PBKDF2-SHA256 on the server's one hashing thread, then a new session"
	echo "  (durable commit) and an ES256 signature. $LOGIN_CLIENTS clients."
	echo "Counted: 200 answers completed within ${DUR} s; latency: request written to answer read. Server CPU per"
	echo "answer: the server's utime+stime delta (/proc/PID/stat, all threads) over the run and its drain / every 200"
	echo "answer of the run (also those finished after ${DUR} s)."
	echo
	echo "| grant | clients | per s (median) | spread | p50 ms | p99 ms (median) | server CPU ms each | errors | runs (per s) | load |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
	for c in $REFRESH_CLIENTS; do
		k=refresh_$c
		echo "| refresh_token | $c | $(fmt0 "$(vals $k ok_per_s | med)") | $(vals $k ok_per_s | spread)% | $(vals $k p50_ms | med) | $(vals $k p99_ms | med) |" \
			"$(vals $k server_cpu_ms_per_op | med) | $(vals $k errors | awk '{s+=$1} END{print s+0}')/$(vals $k socket_errors | awk '{s+=$1} END{print s+0}') | $(vals $k ok_per_s | runs) | $(vals $k load1 | runs) |"
	done
	for it in $ITERATIONS; do
		k=login_$it
		echo "| password, $(fmt0 "$it") rounds | $LOGIN_CLIENTS | $(vals $k ok_per_s | med) | $(vals $k ok_per_s | spread)% | $(vals $k p50_ms | med) | $(vals $k p99_ms | med) |" \
			"$(vals $k server_cpu_ms_per_op | med) | $(vals $k errors | awk '{s+=$1} END{print s+0}')/$(vals $k socket_errors | awk '{s+=$1} END{print s+0}') | $(vals $k ok_per_s | runs) | $(vals $k load1 | runs) |"
	done
	echo
	echo "Logins at 600,000 rounds: few per run (the count quantizes the rate: 1 login = $(awk -v d="$DUR" 'BEGIN{printf "%.2f", 1 / d}')/s)."
	echo "Client CPU per run: refresh $(for c in $REFRESH_CLIENTS; do vals refresh_$c client_cpu_s | runs; printf '; '; done | sed 's/; $//') s."
	echo
	echo "## Targets"
	echo
	echo "- signed-in GET /v1/products/{id} costs $A_COST_MED % of anonymous requests/s (<= 10 %): $(pf "$A_COST_MED" 10 '<=')"
	echo "- in-process session checks/s / Redis GET/s (>= 50): $RATIO1 (1 thread vs 1 client cross-core): $(pf "$RATIO1" 50 '>='); $RATIO1S (1 thread vs 1 client same core): $(pf "$RATIO1S" 50 '>='); $RATIO2 (2 threads vs 50 clients): $(pf "$RATIO2" 50 '>=')"
	echo "<!-- auth:end -->"
} >"$T/section.md"

put_section "$OUT" auth "$T/section.md"
cat "$T/section.md"
echo
{
	echo "AUTH_GET_ANON_RPS=$A_ANON"
	echo "AUTH_GET_AUTH_RPS=$A_AUTH"
	echo "AUTH_GET_COST_PCT=$A_COST_MED"
	echo "AUTH_GET_COST_PCT_ROUNDS=$(runs <"$T/res/get_cost" | tr ' ' ,)"
	echo "AUTH_GET_PAD_RPS=$A_PAD"
	echo "AUTH_GET_PAD_COST_PCT=$A_PAD_COST"
	echo "AUTH_GET_AUTH_VS_PAD_PCT=$A_AUTH_VS_PAD"
	echo "ENGINE_CHECK_1T_OPS=$E1"
	echo "ENGINE_CHECK_2T_OPS=$E2"
	echo "ENGINE_CHECK_1T_P99_US=$(vals eng_check_1 p99_us | med)"
	echo "ENGINE_BEARER_1T_OPS=$(vals eng_bearer_1 ops_per_s | med)"
	echo "ENGINE_BEARER_2T_OPS=$(vals eng_bearer_2 ops_per_s | med)"
	echo "ENGINE_BEARER_1T_P99_US=$(vals eng_bearer_1 p99_us | med)"
	echo "ENGINE_BEARER_MISS_1T_OPS=$(vals eng_bearer_miss_1 ops_per_s | med)"
	echo "ENGINE_SIGN_1T_OPS=$(vals eng_sign_1 ops_per_s | med)"
	echo "REDIS_GET_1C_CROSS_RPS=$R1"
	echo "REDIS_GET_1C_CROSS_P99_MS=$(col redis_1x 3 | med)"
	echo "REDIS_GET_1C_SAME_RPS=$R1S"
	echo "REDIS_GET_1C_SAME_P99_MS=$(col redis_1s 3 | med)"
	echo "REDIS_GET_50C_RPS=$R50"
	echo "REDIS_GET_50C_P99_MS=$(col redis_50x 3 | med)"
	echo "RATIO_CHECK_REDIS_1_CROSS=$RATIO1"
	echo "RATIO_CHECK_REDIS_1_SAME=$RATIO1S"
	echo "RATIO_CHECK_REDIS_50=$RATIO2"
	for c in $REFRESH_CLIENTS; do echo "REFRESH_${c}C_PER_S=$(vals refresh_$c ok_per_s | med)"; done
	for it in $ITERATIONS; do echo "LOGIN_${it}_PER_S=$(vals login_$it ok_per_s | med)"; done
	echo "TARGET_AUTH_COST_10PCT=$(pf "$A_COST_MED" 10 '<=')"
	echo "TARGET_CHECK_50X_REDIS=$(pf "$RATIO1" 50 '>=')/$(pf "$RATIO1S" 50 '>=')/$(pf "$RATIO2" 50 '>=')"
}
log "saved $OUT (auth section)"
