#!/usr/bin/env bash
# bench/run.sh — the HTTP, writer and memory benchmarks (`make bench`, then bench/search.sh for
# the catalog); prints a markdown report and saves it to bench/results.md, keeping the catalog
# section bench/search.sh wrote there. Loopback only (127.0.0.1). Takes about 4-5 minutes.
#
#  (a) wrk GET /healthz and GET /v1/resorts/{id} against resortd (default workers and
#      --workers 1) and, in the same run, against Debian nginx-light serving static files
#      of the same body bytes; requests/s and p99, median of BENCH_REPS runs plus spread.
#  (b) wrk POST /v1/resorts (1 and 64 connections): durable writes/s and the mean group
#      commit batch from /metrics (resortd_writer_batch_size_sum/_count deltas).
#  (c) bench/bench_writer.c: the writer in-process with 1 and 64 submitters.
#  (d) VmRSS/VmHWM of the servers idle and after the loads.
#
# Environment: BENCH_DURATION (s per wrk run, 10), BENCH_REPS (GET runs per cell, 3),
# BENCH_POST_REPS (2), BENCH_WRITER_SECONDS (5), BENCH_RESORTD_BIN (./resortd).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BENCH_RESORTD_BIN:-$ROOT/resortd}
DUR=${BENCH_DURATION:-10}
REPS=${BENCH_REPS:-3}
POST_REPS=${BENCH_POST_REPS:-2}
WSECS=${BENCH_WRITER_SECONDS:-5}
OUT=$ROOT/bench/results.md
T=$(mktemp -d "${TMPDIR:-/tmp}/resortd-bench.XXXXXX")
PIDS=()

LOG_TAG=bench
# shellcheck source=bench/lib.sh
. bench/lib.sh

# start_resortd NAME [args...]: sets RS_PID and RS_PORT. With RS_ADMIN=1, the bench admin is
# added to its data dir first (auth_add_admin; sign in with auth_login once it listens).
start_resortd() {
	local name=$1
	shift
	mkdir -p "$T/$name"
	[ "${RS_ADMIN:-0}" = 0 ] || auth_add_admin "$T/$name/data"
	"$BIN" serve --listen 127.0.0.1:0 --data-dir "$T/$name/data" "${AUTH_SERVE_ARGS[@]}" "$@" \
		2>"$T/$name/log" &
	RS_PID=$!
	PIDS+=("$RS_PID")
	RS_PORT=
	local i
	for i in $(seq 1 200); do
		RS_PORT=$(grep -o 'listening on [^ ]* port [0-9]*' "$T/$name/log" 2>/dev/null |
			awk '{print $NF}' | head -1 || true)
		[ -n "$RS_PORT" ] && break
		kill -0 "$RS_PID" 2>/dev/null || { cat "$T/$name/log" >&2; die "resortd $name exited"; }
		sleep 0.1
	done
	[ -n "$RS_PORT" ] || { cat "$T/$name/log" >&2; die "resortd $name did not start"; }
}



# run_wrk KEY wrk-args... : runs wrk, appends "rps p99_ms errors" to $T/res/KEY.
mkdir -p "$T/res"
WRK_N=0
run_wrk() {
	local key=$1
	shift
	WRK_N=$((WRK_N + 1))
	local f="$T/wrk-$WRK_N-$key.txt"
	timeout $((DUR + 30)) wrk --latency --timeout 5s -d"${DUR}s" "$@" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "wrk failed ($key)"; }
	local rps p99 errs
	rps=$(awk '/^Requests\/sec:/{print $2}' "$f")
	p99=$(awk '$1=="99%"{v=$2; if(v~/us$/){sub(/us$/,"",v);v/=1000} else if(v~/ms$/){sub(/ms$/,"",v)} else if(v~/s$/){sub(/s$/,"",v);v*=1000} printf "%.2f", v}' "$f")
	errs=$(awk '/Non-2xx or 3xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
	echo "$rps $p99 $errs" >>"$T/res/$key"
	log "$key: $rps req/s, p99 ${p99} ms, errors $errs"
}

# ---------------------------------------------------------------- machine
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
NPROC=$(nproc)
log "machine: $NPROC cores, $CPU; temp $T"

# ---------------------------------------------------------------- (c) in-process writer
log "building bench_writer"
OBJS=$(ls "$ROOT"/build/release/*.o | grep -v '/main\.o$')
# shellcheck disable=SC2086
cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/bench_writer.c \
	$OBJS $(pkg-config --libs lmdb libevent libevent_openssl libevent_pthreads libssl \
	libcrypto libcjson sqlite3) -lpthread -lm -o "$T/bench_writer"
cc -O2 -std=c11 -D_GNU_SOURCE bench/bare_evhttp.c $(pkg-config --cflags --libs libevent) -lpthread \
	-o "$T/bare_evhttp"
log "bench_writer: $WSECS s each for 1 and 64 submitters"
TMPDIR=$T timeout $((WSECS * 4 + 60)) "$T/bench_writer" "$WSECS" 1 64 | tee "$T/writer.txt" >&2

# ---------------------------------------------------------------- servers for GET
start_resortd get2 --demo
R2_PID=$RS_PID R2_PORT=$RS_PORT
start_resortd get1 --demo --workers 1
R1_PID=$RS_PID R1_PORT=$RS_PORT
sleep 1
read -r R2_IDLE_RSS R2_IDLE_HWM R2_IDLE_ANON R2_IDLE_FILE < <(rss_of "$R2_PID")
read -r R1_IDLE_RSS R1_IDLE_HWM R1_IDLE_ANON R1_IDLE_FILE < <(rss_of "$R1_PID")
ID2=$(http_get "$R2_PORT" /v1/resorts | grep -o '"id":"rs_[A-Za-z0-9_-]*"' | head -1 | cut -d'"' -f4)
ID1=$(http_get "$R1_PORT" /v1/resorts | grep -o '"id":"rs_[A-Za-z0-9_-]*"' | head -1 | cut -d'"' -f4)
[ -n "$ID2" ] && [ -n "$ID1" ] || die "no demo resort found"

# nginx serving the same bodies as static files.
mkdir -p "$T/nginx/www"
http_get "$R2_PORT" /healthz >"$T/nginx/www/healthz"
http_get "$R2_PORT" "/v1/resorts/$ID2" >"$T/nginx/www/resort"
HZ_BYTES=$(stat -c %s "$T/nginx/www/healthz")
RS_BYTES=$(stat -c %s "$T/nginx/www/resort")
start_nginx resort
EV_PORT=$(free_port)
"$T/bare_evhttp" "$EV_PORT" 2 "$T/nginx/www/healthz" 2>"$T/bare.log" &
EV_PID=$!
PIDS+=("$EV_PID")
for i in $(seq 1 100); do
	[ "$(http_get "$EV_PORT" /healthz 2>/dev/null || true)" = "$(cat "$T/nginx/www/healthz")" ] && break
	kill -0 "$EV_PID" 2>/dev/null || die "bare_evhttp exited"
	sleep 0.1
done
log "resortd(workers=default) :$R2_PORT  resortd(workers=1) :$R1_PORT  nginx :$NG_PORT  bare evhttp :$EV_PORT"
log "bodies: /healthz $HZ_BYTES B, /v1/resorts/{id} $RS_BYTES B"

# ---------------------------------------------------------------- (a) GET, interleaved
for rep in $(seq 1 "$REPS"); do
	log "GET round $rep/$REPS"
	run_wrk rs2_hz -t2 -c64 "http://127.0.0.1:$R2_PORT/healthz"
	run_wrk ng_hz -t2 -c64 "http://127.0.0.1:$NG_PORT/healthz"
	run_wrk ev_hz -t2 -c64 "http://127.0.0.1:$EV_PORT/healthz"
	run_wrk rs1_hz -t2 -c64 "http://127.0.0.1:$R1_PORT/healthz"
	run_wrk rs2_id -t2 -c64 "http://127.0.0.1:$R2_PORT/v1/resorts/$ID2"
	run_wrk ng_id -t2 -c64 "http://127.0.0.1:$NG_PORT/resort"
	run_wrk rs1_id -t2 -c64 "http://127.0.0.1:$R1_PORT/v1/resorts/$ID1"
done
read -r R2_GET_RSS R2_GET_HWM R2_GET_ANON R2_GET_FILE < <(rss_of "$R2_PID")
read -r R1_GET_RSS R1_GET_HWM R1_GET_ANON R1_GET_FILE < <(rss_of "$R1_PID")
NG_RSS=$(for p in $(grep -l "^PPid:[[:space:]]*$NG_PID\$" /proc/[0-9]*/status 2>/dev/null) "/proc/$NG_PID/status"; do
	awk '/^VmRSS/{print $2}' "$p"; done | awk '{s+=$1} END{print s+0}')

# ---------------------------------------------------------------- (b) POST
# POST /v1/resorts needs an admin since sign-in is enforced: each request carries the bench
# admin's token (so it pays a token-cache probe and a session read besides the write).
RS_ADMIN=1 start_resortd post
RP_PID=$RS_PID RP_PORT=$RS_PORT
auth_login "$RP_PORT"
sleep 1
read -r RP_IDLE_RSS RP_IDLE_HWM RP_IDLE_ANON RP_IDLE_FILE < <(rss_of "$RP_PID")
cat >"$T/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"Bench Resort","timezone":"Asia/Seoul","currency":"KRW","stars":4}'
wrk.headers["Content-Type"] = "application/json"
EOF
metric() { # metric NAME-regex -> sum of matching sample values
	http_get "$RP_PORT" /metrics | awk -v re="$1" '$1 ~ re {s+=$2} END{printf "%.0f\n", s}'
}
post_run() { # post_run KEY wrk-args...
	local key=$1
	shift
	local s0 c0 ok0 all0 s1 c1 ok1 all1
	s0=$(metric '^resortd_writer_batch_size_sum$')
	c0=$(metric '^resortd_writer_batch_size_count$')
	ok0=$(metric '^resortd_http_requests_total[{].*method="POST",status="201"')
	all0=$(metric '^resortd_http_requests_total[{].*method="POST"')
	run_wrk "$key" -s "$T/post.lua" -H "$AUTH_HEADER" "$@" "http://127.0.0.1:$RP_PORT/v1/resorts"
	s1=$(metric '^resortd_writer_batch_size_sum$')
	c1=$(metric '^resortd_writer_batch_size_count$')
	ok1=$(metric '^resortd_http_requests_total[{].*method="POST",status="201"')
	all1=$(metric '^resortd_http_requests_total[{].*method="POST"')
	local secs
	secs=$(awk '/requests in/{v=$4; sub(/,$/,"",v); if(v~/ms$/){sub(/ms$/,"",v);v/=1000} else if(v~/m$/){sub(/m$/,"",v);v*=60} else sub(/s$/,"",v); print v}' "$T/wrk-$WRK_N-$key.txt")
	awk -v ok=$((ok1 - ok0)) -v all=$((all1 - all0)) -v ds=$((s1 - s0)) -v dc=$((c1 - c0)) -v t="$secs" \
		'BEGIN{printf "%.0f %.2f %d %d\n", ok/t, (dc>0?ds/dc:0), all-ok, dc}' >>"$T/res/$key.w"
	log "$key: $(tail -1 "$T/res/$key.w") (writes/s, mean batch, non-201, commits)"
}
for rep in $(seq 1 "$POST_REPS"); do
	log "POST round $rep/$POST_REPS"
	post_run post1 -t1 -c1
	post_run post64 -t2 -c64
done
read -r RP_POST_RSS RP_POST_HWM RP_POST_ANON RP_POST_FILE < <(rss_of "$RP_PID")

# ---------------------------------------------------------------- report
wcol() { awk -v c="$2" '{print $c}' "$T/res/$1.w"; }
wr() { awk -v n="$1" '$1=="RESULT" && $2=="n="n {for(i=3;i<=NF;i++){split($i,kv,"="); if(kv[1]==k) print kv[2]}}' k="$2" "$T/writer.txt"; }
fmt0() { awk -v v="$1" 'BEGIN{printf "%\047.0f", v}' 2>/dev/null || echo "$1"; }

{
	echo "# resortd benchmarks"
	echo
	echo "Run $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ local changes)'), \`make bench\`."
	echo "Machine: $NPROC cores, $CPU, $(uname -r); loopback only. **wrk runs on the same $NPROC cores as the"
	echo "server**, so every HTTP figure is client+server sharing the CPU. Each GET cell is the median of $REPS"
	echo "runs of \`wrk -t2 -c64 -d${DUR}s --latency\`, interleaved across servers; *spread* = (max-min)/median,"
	echo "the machine's noise. nginx: Debian nginx-light $(nginx -v 2>&1 | sed 's/.*nginx\///'), worker_processes 2,"
	echo "access_log off, static files with the same bodies ($HZ_BYTES B and $RS_BYTES B), default_type application/json."
	echo
	echo "## (a) GET: resortd vs nginx (target resortd >= 0.8 x nginx)"
	echo
	echo "| endpoint | server | req/s (median) | spread | p99 ms (median) | p99 spread | errors | resortd/nginx |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for ep in hz id; do
		[ $ep = hz ] && name='GET /healthz' || name='GET /v1/resorts/{id}'
		ngm=$(col ng_$ep 1 | med)
		for srv in rs2 rs1 ng ev; do
			[ -s "$T/res/${srv}_$ep" ] || continue
			case $srv in rs2) sn='resortd (workers=2, default)' ;; rs1) sn='resortd --workers 1' ;; ng) sn='nginx (2 workers)' ;; ev) sn='bare evhttp, 2 threads (peer)' ;; esac
			m=$(col ${srv}_$ep 1 | med)
			r=$(ratio "$m" "$ngm")
			echo "| $name | $sn | $(fmt0 "$m") | $(col ${srv}_$ep 1 | spread)% | $(col ${srv}_$ep 2 | med) | $(col ${srv}_$ep 2 | spread)% | $(sum_col ${srv}_$ep 3) | $r |"
		done
	done
	echo
	echo "bare evhttp = bench/bare_evhttp.c, the libevent evhttp ceiling with resortd's threading (fixed body, no"
	echo "routing/JSON/storage/logging); its ratio column is also vs nginx. resortd logs an access line per request"
	echo "to stderr (default log level info; here a file)."
	echo
	echo "All runs (req/s): $(for k in rs2_hz ng_hz ev_hz rs1_hz rs2_id ng_id rs1_id; do printf '%s=[%s] ' $k "$(col $k 1 | tr '\n' ' ' | sed 's/ $//')"; done)"
	echo
	echo "## (b) POST /v1/resorts over HTTP (durable + projected before 201; target >= 10,000 writes/s at 64 conns)"
	echo
	echo "\`wrk -s post.lua -H 'Authorization: Bearer ...' -d${DUR}s\`, $POST_REPS runs each, fresh server (default workers),"
	echo "signed in as a local admin (the route needs one; each request also checks the token's session). writes/s = 201 responses"
	echo "(from /metrics) / wrk duration; mean batch = delta resortd_writer_batch_size_sum / _count."
	echo "(wrk needs connections >= threads, so 1 connection uses -t1.)"
	echo
	echo "| connections | durable writes/s (median) | spread | mean batch | p99 ms | non-201 | runs (writes/s) |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	for k in post1 post64; do
		[ $k = post1 ] && cn='1 (-t1 -c1)' || cn='64 (-t2 -c64)'
		echo "| $cn | $(fmt0 "$(wcol $k 1 | med)") | $(wcol $k 1 | spread)% | $(wcol $k 2 | med) | $(col $k 2 | med) | $(wcol $k 3 | awk '{s+=$1}END{print s+0}') | $(wcol $k 1 | tr '\n' ' ' | sed 's/ $//') |"
	done
	echo
	echo "## (c) Writer in-process (bench/bench_writer.c, fsync on, ${WSECS} s per run; target 64 >= 20 x 1)"
	echo
	echo "| submitters | durable writes/s | commits/s | mean batch |"
	echo "|---:|---:|---:|---:|"
	for n in 1 64; do
		echo "| $n | $(fmt0 "$(wr $n writes_per_s)") | $(fmt0 "$(wr $n commits_per_s)") | $(wr $n mean_batch) |"
	done
	echo
	echo "Ratio 64/1: **$(ratio "$(wr 64 writes_per_s)" "$(wr 1 writes_per_s)")**"
	echo
	echo "## (d) Memory (target < 32 MiB idle)"
	echo
	echo "VmRSS includes RssFile: pages of the mmap'd LMDB map (and SQLite files) the process has touched,"
	echo "page cache that grows with the data, not heap; RssAnon is the process's own memory."
	echo
	echo "| server | idle VmRSS (anon + file) | VmRSS after load (anon + file) | VmHWM (peak) after load |"
	echo "|---|---:|---:|---:|"
	echo "| resortd workers=2 --demo, GET loads | $(mib "$R2_IDLE_RSS") MiB ($(mib "$R2_IDLE_ANON") + $(mib "$R2_IDLE_FILE")) | $(mib "$R2_GET_RSS") MiB ($(mib "$R2_GET_ANON") + $(mib "$R2_GET_FILE")) | $(mib "$R2_GET_HWM") MiB |"
	echo "| resortd --workers 1 --demo, GET loads | $(mib "$R1_IDLE_RSS") MiB ($(mib "$R1_IDLE_ANON") + $(mib "$R1_IDLE_FILE")) | $(mib "$R1_GET_RSS") MiB ($(mib "$R1_GET_ANON") + $(mib "$R1_GET_FILE")) | $(mib "$R1_GET_HWM") MiB |"
	echo "| resortd workers=2, POST loads ($(fmt0 "$(metric '^resortd_http_requests_total[{].*method="POST",status="201"')") resorts written) | $(mib "$RP_IDLE_RSS") MiB ($(mib "$RP_IDLE_ANON") + $(mib "$RP_IDLE_FILE")) | $(mib "$RP_POST_RSS") MiB ($(mib "$RP_POST_ANON") + $(mib "$RP_POST_FILE")) | $(mib "$RP_POST_HWM") MiB |"
	echo "| nginx master+2 workers, after GET loads | | $(mib "$NG_RSS") MiB | |"
	echo
	echo "## Targets"
	echo
	pf() { awk -v v="$1" -v t="$2" 'BEGIN{print (v+0 >= t+0) ? "PASS" : "FAIL"}'; }
	hz=$(ratio "$(col rs2_hz 1 | med)" "$(col ng_hz 1 | med)")
	id=$(ratio "$(col rs2_id 1 | med)" "$(col ng_id 1 | med)")
	wratio=$(ratio "$(wr 64 writes_per_s)" "$(wr 1 writes_per_s)")
	p64=$(wcol post64 1 | med)
	idle_max=$(printf '%s\n' "$R2_IDLE_RSS" "$R1_IDLE_RSS" "$RP_IDLE_RSS" | sort -n | tail -1)
	echo "- GET /healthz resortd/nginx = $hz (>= 0.8): $(pf "$hz" 0.8)"
	echo "- GET /v1/resorts/{id} resortd/nginx = $id (>= 0.8): $(pf "$id" 0.8)"
	echo "- POST /v1/resorts at 64 connections = $(fmt0 "$p64") durable writes/s (>= 10,000): $(pf "$p64" 10000)"
	echo "- writer in-process 64/1 = $wratio (>= 20): $(pf "$wratio" 20)"
	echo "- idle RSS = $(mib "$idle_max") MiB (< 32 MiB): $(awk -v k="$idle_max" 'BEGIN{print (k < 32*1024) ? "PASS" : "FAIL"}')"
} >"$T/results.md"

# Keep the sections bench/search.sh and bench/booking.sh wrote (between their markers).
keep_sections "$OUT" "$T/results.md"
cp "$T/results.md" "$OUT"
cat "$OUT"
log "saved $OUT"
