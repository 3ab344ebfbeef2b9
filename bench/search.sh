#!/usr/bin/env bash
# bench/search.sh — the catalog benchmarks (`make bench` runs it after bench/run.sh); prints a
# markdown report and puts it in bench/results.md between the catalog markers (the rest of the
# file, bench/run.sh's report, is kept). Loopback only. Takes about 4-5 minutes.
#
#  (e) bench/gen_catalog.py: BENCH_CATALOG_N products (100,000), then `resortd import`:
#      products/s, catalog.db and LMDB sizes.
#  (f) search latency, sequential over one keep-alive connection (bench/search_client.c):
#      query sets of 1-3 words, English and Korean, the vocabulary's most common terms and
#      rare ones, each without and with facets=type,resort,attr.view; p50/p99 per set.
#  (g) where a search's time goes: bench/search_explain.c runs the first query of each set
#      in-process on the same catalog.db (tokenizer registered) and times each SQL statement
#      search.c prepared, with its query plan.
#  (h) GET /v1/products/{id} vs nginx serving the same bytes as a static file (wrk).
#  (i) search under load: wrk with a Lua script rotating over the query sets, without and
#      with facets; wrk's latency distribution; with the search cache off (as (f)-(h)), then
#      on a server restarted with the default search cache.
#  (j) VmRSS/VmHWM of the server idle, during each load (sampled) and at the end.
#
# Environment: BENCH_RESORTD_BIN (./resortd), BENCH_CATALOG_N (100000), BENCH_CATALOG_SEED (1),
# BENCH_DURATION (s per wrk run, 10), BENCH_REPS (GET product runs per server, 3),
# BENCH_SEARCH_WRK_REPS (wrk search runs per mix, 2), BENCH_SEARCH_REPS (requests per query
# set, 200), BENCH_SEARCH_ROUNDS (2), BENCH_SEARCH_SET_SECONDS (most time a set may take in the
# sequential test, 3: a slow server gets fewer samples, never a longer run).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BENCH_RESORTD_BIN:-$ROOT/resortd}
N=${BENCH_CATALOG_N:-100000}
SEED=${BENCH_CATALOG_SEED:-1}
DUR=${BENCH_DURATION:-10}
REPS=${BENCH_REPS:-3}
WREPS=${BENCH_SEARCH_WRK_REPS:-2}
SREPS=${BENCH_SEARCH_REPS:-200}
SROUNDS=${BENCH_SEARCH_ROUNDS:-2}
SSECS=${BENCH_SEARCH_SET_SECONDS:-3}
FACETS=type,resort,attr.view
OUT=$ROOT/bench/results.md
T=$(mktemp -d "${TMPDIR:-/tmp}/resortd-search.XXXXXX")
PIDS=()
SAMPLER=
T_START=$(date +%s)

LOG_TAG=search
HTTP_TIMEOUT_S=30
# The resident-set sampler (start_sampler) is stopped with everything else.
cleanup_extra() { [ -z "$SAMPLER" ] || kill -TERM "$SAMPLER" 2>/dev/null || true; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
command -v python3 >/dev/null || die "python3 missing (apt-get install python3): bench/gen_catalog.py needs it"

fmt0() { awk -v v="$1" 'BEGIN{printf "%\047.0f", v}' 2>/dev/null || echo "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Samples VmRSS of pid every 0.2 s into file until stopped (stop_sampler); one at a time.
start_sampler() {
	(while kill -0 "$1" 2>/dev/null; do
		awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, a, f}' "/proc/$1/status" 2>/dev/null || true
		sleep 0.2
	done) >>"$2" &
	SAMPLER=$!
}
stop_sampler() {
	kill -TERM "$SAMPLER" 2>/dev/null || true
	wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=
}
peak() { # peak FILE -> "rss anon file" of the sample with the largest VmRSS
	sort -n -k1,1 "$1" 2>/dev/null | tail -1 | awk 'NF==3{print; ok=1} END{if(!ok) print "0 0 0"}'
}

# run_wrk KEY wrk-args... : appends "rps p50_ms p99_ms errors timeouts non2xx requests" to $T/res/KEY.
mkdir -p "$T/res"
WRK_N=0
to_ms() { awk '{v=$1; if(v~/us$/){sub(/us$/,"",v);v/=1000} else if(v~/ms$/){sub(/ms$/,"",v)} else if(v~/s$/){sub(/s$/,"",v);v*=1000} printf "%.2f", v}'; }
run_wrk() {
	local key=$1
	shift
	WRK_N=$((WRK_N + 1))
	local f="$T/wrk-$WRK_N-$key.txt"
	timeout $((DUR + 60)) wrk --latency -d"${DUR}s" "$@" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "wrk failed ($key)"; }
	local rps p50 p99 errs tmo non2xx reqs
	rps=$(awk '/^Requests\/sec:/{print $2}' "$f")
	p50=$(awk '$1=="50%"{print $2}' "$f" | to_ms)
	p99=$(awk '$1=="99%"{print $2}' "$f" | to_ms)
	[ -n "$p50" ] || p50=n/a
	[ -n "$p99" ] || p99=n/a
	non2xx=$(awk '/Non-2xx or 3xx/{n+=$NF} END{print n+0}' "$f")
	tmo=$(awk '/Socket errors/{gsub(/,/,""); print $NF+0}' "$f")
	[ -n "$tmo" ] || tmo=0
	errs=$(awk '/Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$f")
	reqs=$(awk '/requests in/{print $1}' "$f")
	echo "$rps $p50 $p99 $((errs + non2xx)) $tmo $non2xx $reqs" >>"$T/res/$key"
	log "$key: $rps req/s, p50 $p50 ms, p99 $p99 ms, $reqs requests, errors $((errs + non2xx)) (timeouts $tmo)"
}

# Waits (at most 60 s) until the server answers /healthz quickly twice: a search backlog left
# by wrk's closed connections must not spill into the next measurement.
drain() {
	local i ok=0 t
	command -v curl >/dev/null || { sleep 10; return 0; }
	for i in $(seq 1 300); do
		t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 5 "http://127.0.0.1:$1/healthz" 2>/dev/null || echo 9)
		if awk -v t="$t" 'BEGIN{exit !(t < 0.02)}'; then ok=$((ok + 1)); else ok=0; fi
		[ $ok -ge 2 ] && return 0
		sleep 0.2
	done
	log "warning: server still busy after 60 s"
}

# ---------------------------------------------------------------- machine, tools
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
NPROC=$(nproc)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $NPROC cores, $CPU; load average $LOAD0; temp $T"
cc -O2 -std=c11 -D_GNU_SOURCE bench/search_client.c -lm -o "$T/search_client"
HAVE_EXPLAIN=0
if ls "$ROOT"/build/release/*.o >/dev/null 2>&1; then
	# shellcheck disable=SC2010
	OBJS=$(ls "$ROOT"/build/release/*.o | grep -v '/main\.o$')
	# shellcheck disable=SC2086,SC2046
	if cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude $(pkg-config --cflags libcjson) bench/search_explain.c \
		$OBJS $(pkg-config --libs lmdb libevent libevent_openssl libevent_pthreads libssl \
		libcrypto libcjson sqlite3) -lpthread -lm -o "$T/search_explain" 2>"$T/explain-build.log"; then
		HAVE_EXPLAIN=1
	else
		log "search_explain not built (build/release out of date?), skipping (g)"
	fi
fi

# ---------------------------------------------------------------- (e) generate, import
log "generating $N products (seed $SEED)"
t0=$(now_ms)
python3 bench/gen_catalog.py "$N" "$SEED" >"$T/catalog.json"
GEN_MS=$(($(now_ms) - t0))
JSON_BYTES=$(stat -c %s "$T/catalog.json")
read -r NPROD NPLAN < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(len(d["products"]), len(d["rate_plans"]))' "$T/catalog.json")
log "generated $(mib $((JSON_BYTES / 1024))) MiB in $GEN_MS ms; importing"
mkdir -p "$T/cat"
t0=$(now_ms)
"$BIN" import "$T/catalog.json" --data-dir "$T/cat/data" >"$T/import.out" 2>"$T/import.err" ||
	{ cat "$T/import.out" "$T/import.err" >&2; die "import failed"; }
IMPORT_MS=$(($(now_ms) - t0))
IMPORT_LINE=$(grep '^imported' "$T/import.out" || true)
log "$IMPORT_LINE (wall $IMPORT_MS ms)"
IMPORT_PPS=$(awk -v n="$NPROD" -v ms="$IMPORT_MS" 'BEGIN{printf "%.0f", n*1000/ms}')
DB_BYTES=$(stat -c %s "$T/cat/data/catalog.db")
WAL_BYTES=$(stat -c %s "$T/cat/data/catalog.db-wal" 2>/dev/null || echo 0)
MDB_BYTES=$(stat -c %s "$T/cat/data/state/data.mdb")

# ---------------------------------------------------------------- server
# start_server [args...]: resortd on the imported catalog; sets RS_PID and RS_PORT. (e)-(i) run
# with --search-cache-entries 0, so that they time searches, not the cache of search pages;
# (i) then runs again on a server with the default cache.
mkdir -p "$T/srv"
start_server() {
	"$BIN" serve --listen 127.0.0.1:0 --data-dir "$T/cat/data" "$@" 2>"$T/srv/log" &
	RS_PID=$!
	PIDS+=("$RS_PID")
	RS_PORT=
	for _ in $(seq 1 300); do
		RS_PORT=$(grep -o 'listening on [^ ]* port [0-9]*' "$T/srv/log" 2>/dev/null | awk '{print $NF}' | head -1 || true)
		[ -n "$RS_PORT" ] && break
		kill -0 "$RS_PID" 2>/dev/null || { cat "$T/srv/log" >&2; die "resortd exited"; }
		sleep 0.1
	done
	[ -n "$RS_PORT" ] || { cat "$T/srv/log" >&2; die "resortd did not start"; }
	sleep 1
}
start_server --search-cache-entries 0
read -r IDLE_RSS _ IDLE_ANON IDLE_FILE < <(rss_of "$RS_PID")
log "resortd :$RS_PORT (pid $RS_PID), idle VmRSS $(mib "$IDLE_RSS") MiB"

# ---------------------------------------------------------------- query sets
# Terms come from bench/gen_catalog.py: the heads of EN_VOCAB (room, the, with ...) and
# KO_VOCAB (객실, 바다, 전망 ...) are in most products of their language, the tails in ~1%;
# names add view/grade/bed words (오션뷰 디럭스 트윈, Ocean View Deluxe Twin).
cat >"$T/sets.txt" <<'EOF'
en1_common	room|the|with
en1_rare	porter|bowling|locker
en2	ocean view|garden suite|spa package|breakfast included
en3	ocean view deluxe|mountain view twin|premium spa package|hot spring pass
en_accent	déluxe|café|résidence
ko1_common	객실|바다|전망
ko1	오션뷰|스파|온천|수영장|조식|가든
ko2	오션뷰 디럭스|가든 트윈|조식 패키지|온천 이용권
ko3	오션뷰 디럭스 트윈|마운틴뷰 스위트 조식|프리미엄 스파 패키지
EOF
python3 - "$T/sets.txt" "$FACETS" >"$T/queries.txt" <<'EOF'
import sys, urllib.parse
sets = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if "\t" in l]
print("healthz\t/healthz")
for facets in ("", sys.argv[2]):
    for label, qs in sets:
        for q in qs.split("|"):
            path = "/v1/products?q=" + urllib.parse.quote(q)
            if facets:
                path += "&facets=" + urllib.parse.quote(facets, safe=",")
            print("%s%s\t%s" % (label, "+f" if facets else "", path))
EOF
NSETS=$(cut -f1 "$T/queries.txt" | sort -u | wc -l)

# ---------------------------------------------------------------- (f) sequential latency
log "warm-up: each query set once"
"$T/search_client" "$RS_PORT" "$T/queries.txt" 1 1 60 >/dev/null
log "sequential: $NSETS sets x $SREPS requests in $SROUNDS rounds (at most ${SSECS} s a set)"
: >"$T/rss-seq"
start_sampler "$RS_PID" "$T/rss-seq"
"$T/search_client" "$RS_PORT" "$T/queries.txt" "$SREPS" "$SROUNDS" "$SSECS" >"$T/seq.txt" 2>"$T/seq.err" ||
	{ cat "$T/seq.err" >&2; die "search_client failed"; }
stop_sampler
cat "$T/seq.err" >&2
seqv() { awk -v l="$1" -v k="$2" '$1=="SET" && $2=="label="l {for(i=3;i<=NF;i++){split($i,kv,"="); if(kv[1]==k) print kv[2]}}' "$T/seq.txt"; }

# ---------------------------------------------------------------- (g) in-process breakdown
if [ $HAVE_EXPLAIN -eq 1 ]; then
	log "in-process breakdown (search_explain)"
	while IFS=$'\t' read -r label qs; do
		q=${qs%%|*}
		"$T/search_explain" "$T/cat/data/catalog.db" 3 "q=$q" "facets=$FACETS" >"$T/explain-$label.txt" 2>&1 || true
	done <"$T/sets.txt"
fi
# explain_row LABEL -> "q | total | whole ms | ranked ms | facets ms"
explain_row() {
	local f="$T/explain-$1.txt"
	awk -F'\t' -v l="$1" '$1==l{split($2,a,"|"); printf "%s | ", a[1]}' "$T/sets.txt"
	[ -s "$f" ] || { echo "n/a | n/a | n/a | n/a"; return; }
	awk '
		/^search /{ for(i=1;i<=NF;i++){ if($i=="total") tot=$(i+1); if($i=="ms" && !w) w=$(i-1) } }
		/^  statement [0-9]+:/{ ms=$3; getline sql;
			if (sql ~ /WITH cand AS/ || sql ~ /^  SELECT m\.rid/) rk+=ms;
			else if (sql ~ /WITH (m|seen) AS MATERIALIZED/) fc+=ms }
		END{ printf "%s | %s | %s | %s\n", tot, w, rk+0, fc+0 }' "$f"
}
# The query plans of the q=room search's two statements.
explain_plans() {
	local f="$T/explain-en1_common.txt"
	[ -s "$f" ] || return 0
	awk '/^  statement [0-9]+:/{ ms=$3; getline sql; keep=(sql ~ /WITH (cand|m|seen) AS MATERIALIZED/);
			if (keep) { print ""; print "-- " ms " ms:"; print substr(sql, 3) }
			next }
		/^    / && keep { print }' "$f"
}

# ---------------------------------------------------------------- (h) GET product vs nginx
PID_GET=$(python3 -c '
import sys
print("pr_b%s_%06d" % (sys.argv[1], 1))' "$SEED")
mkdir -p "$T/nginx/www"
http_get "$RS_PORT" "/v1/products/$PID_GET" >"$T/nginx/www/product" || die "GET /v1/products/$PID_GET failed"
PR_BYTES=$(stat -c %s "$T/nginx/www/product")
start_nginx product
log "nginx :$NG_PORT serving /product ($PR_BYTES B, the body of GET /v1/products/$PID_GET)"
: >"$T/rss-get"
for rep in $(seq 1 "$REPS"); do
	log "GET product round $rep/$REPS"
	start_sampler "$RS_PID" "$T/rss-get"
	run_wrk rs_prod -t2 -c64 --timeout 5s "http://127.0.0.1:$RS_PORT/v1/products/$PID_GET"
	stop_sampler
	run_wrk ng_prod -t2 -c64 --timeout 5s "http://127.0.0.1:$NG_PORT/product"
done

# ---------------------------------------------------------------- (i) search under load
for mix in plain facets; do
	{
		echo "-- rotates over the $mix query mix of bench/search.sh; each thread from its own start"
		echo "local paths = {"
		if [ $mix = plain ]; then
			awk -F'\t' '$1 != "healthz" && $1 !~ /\+f$/ {printf "  \"%s\",\n", $2}' "$T/queries.txt"
		else
			awk -F'\t' '$1 ~ /\+f$/ {printf "  \"%s\",\n", $2}' "$T/queries.txt"
		fi
		echo "}"
		echo "local i = 0"
		echo "local n = 0"
		echo "function setup(thread) n = n + 1; thread:set(\"start\", n * 7) end"
		echo "function init(args) i = tonumber(start) or 0 end"
		echo "function request() i = i % #paths + 1; return wrk.format(\"GET\", paths[i]) end"
	} >"$T/search-$mix.lua"
done
: >"$T/rss-search"
for rep in $(seq 1 "$WREPS"); do
	for mix in plain facets; do
		log "search under load ($mix) round $rep/$WREPS"
		drain "$RS_PORT"
		start_sampler "$RS_PID" "$T/rss-search"
		run_wrk "search_$mix" -t2 -c64 --timeout "${DUR}s" -s "$T/search-$mix.lua" "http://127.0.0.1:$RS_PORT"
		stop_sampler
	done
done
drain "$RS_PORT"
read -r END_RSS END_HWM END_ANON END_FILE < <(rss_of "$RS_PID")
kill -TERM "$RS_PID"
wait "$RS_PID" 2>/dev/null || true
log "search under load again, with the default search cache (search_cache_entries = 256)"
start_server
# Unmeasured: every worker fills its cache with the mix's pages once, as a running server has.
for mix in plain facets; do
	wrk -t2 -c64 -d3s --timeout "${DUR}s" -s "$T/search-$mix.lua" "http://127.0.0.1:$RS_PORT" >/dev/null 2>&1 ||
		die "wrk warm-up failed"
done
for rep in $(seq 1 "$WREPS"); do
	for mix in plain facets; do
		log "search under load, cached ($mix) round $rep/$WREPS"
		drain "$RS_PORT"
		run_wrk "search_${mix}_cached" -t2 -c64 --timeout "${DUR}s" -s "$T/search-$mix.lua" "http://127.0.0.1:$RS_PORT"
	done
done
read -r CACHED_RSS CACHED_HWM _ < <(rss_of "$RS_PID")
read -r SEQ_PK SEQ_PK_ANON SEQ_PK_FILE < <(peak "$T/rss-seq")
read -r GET_PK GET_PK_ANON GET_PK_FILE < <(peak "$T/rss-get")
read -r SRCH_PK SRCH_PK_ANON SRCH_PK_FILE < <(peak "$T/rss-search")
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - T_START))

# ---------------------------------------------------------------- report
pf() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN{if(v=="n/a"||v==""){print "n/a";exit} ok=(op=="<")?(v+0<t+0):(v+0>=t+0); print ok?"PASS":"FAIL"}'; }
worst() { # worst p99 over sets matching a regex, "value (set)"
	awk -v re="$1" '$1=="SET"{split($2,l,"="); if(l[2]!~re) next; for(i=3;i<=NF;i++){split($i,kv,"="); if(kv[1]=="p99" && kv[2]+0>m){m=kv[2]+0; s=l[2]}}} END{printf "%.2f (%s)\n", m, s}' "$T/seq.txt"
}
{
	echo "<!-- catalog:begin (bench/search.sh writes this section; bench/run.sh keeps it) -->"
	echo "# resortd catalog benchmarks"
	echo
	echo "Run $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include schema 2>/dev/null || echo ' (+ local changes)'), \`bench/search.sh\` ($ELAPSED s)."
	echo "Machine: $NPROC cores, $CPU, $(uname -r); loopback only; load average $LOAD0 before, $LOAD1"
	echo "after. **Clients run on the same $NPROC cores as the server.** Server: \`resortd serve\` with default"
	echo "workers (one per core) and log level (an access line per request to a file)."
	echo
	echo "## (e) Import (\`bench/gen_catalog.py $N $SEED\`, then \`resortd import\`)"
	echo
	echo "| products | rate plans | JSON | generate | import (wall) | products/s | catalog.db | LMDB data.mdb |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
	echo "| $(fmt0 "$NPROD") | $(fmt0 "$NPLAN") | $(mib $((JSON_BYTES / 1024))) MiB | $(awk -v m="$GEN_MS" 'BEGIN{printf "%.1f", m/1000}') s | $(awk -v m="$IMPORT_MS" 'BEGIN{printf "%.1f", m/1000}') s | $(fmt0 "$IMPORT_PPS") | $(mib $(((DB_BYTES + WAL_BYTES) / 1024))) MiB | $(mib $((MDB_BYTES / 1024))) MiB |"
	echo
	echo "resortd's own line: \`$IMPORT_LINE\`. One run (an import is all-or-nothing, one writer"
	echo "command; it includes projecting every product, rate plan and ${NPLAN}x120 day prices into catalog.db)."
	echo
	echo "## (f) Search latency, sequential (target p99 < 10 ms without facets, < 20 ms with facets)"
	echo
	echo "\`bench/search_client.c\`: one keep-alive connection, one request in flight, $SREPS requests per set"
	echo "(rotating over its queries) in $SROUNDS interleaved rounds, each set capped at ${SSECS} s, so a slow set has"
	echo "fewer samples (**n**; with n < 100 p99 is close to the max). Client-side time, write to last byte;"
	echo "the healthz row is the client + loopback floor. +f = with \`facets=$FACETS\`. *p99 spread* ="
	echo "(max-min)/median of the rounds' p99. matches: \`total\` of the set's first query (from (g))."
	echo
	echo "| set | queries | matches | n | p50 ms | p99 ms | max ms | p99 spread (round p99s) | body B | errors | target |"
	echo "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|"
	for label in $(awk '$1=="SET"{split($2,l,"="); print l[2]}' "$T/seq.txt"); do
		base=${label%+f}
		qs=$(awk -F'\t' -v l="$base" '$1==l{gsub(/\|/, ", ", $2); print $2}' "$T/sets.txt")
		[ "$label" = healthz ] && qs='GET /healthz'
		tot=
		[ -s "$T/explain-$base.txt" ] &&
			tot=$(awk '/^search /{for(i=1;i<=NF;i++) if($i=="total") {print $(i+1); exit}}' "$T/explain-$base.txt")
		rp99=$(seqv "$label" round_p99)
		sp=$(echo "$rp99" | tr ',' '\n' | spread)
		if [ "$label" = healthz ]; then tg=; elif [ "$label" != "$base" ]; then tg="$(pf "$(seqv "$label" p99)" 20 '<') (<20)"; else tg="$(pf "$(seqv "$label" p99)" 10 '<') (<10)"; fi
		echo "| $label | $qs | $tot | $(seqv "$label" n) | $(seqv "$label" p50) | $(seqv "$label" p99) | $(seqv "$label" max) | $sp% ($rp99) | $(seqv "$label" bytes) | $(seqv "$label" errors) | $tg |"
	done
	echo
	if [ $HAVE_EXPLAIN -eq 1 ]; then
		echo "## (g) Where the time goes (in-process, \`bench/search_explain.c\`, median of 3)"
		echo
		echo "The first query of each set with facets, run by search_run() on the same catalog.db with the"
		echo "tokenizer registered (no HTTP): the whole call, the page statement (relevance: \`WITH cand AS"
		echo "MATERIALIZED ...\`) and the facet statement (\`WITH seen AS MATERIALIZED ...\`)."
		echo
		echo "| set | query | matches | search_run ms | page statement ms | facets statement ms |"
		echo "|---|---|---:|---:|---:|---:|"
		while IFS=$'\t' read -r label _; do
			echo "| $label | $(explain_row "$label") |"
		done <"$T/sets.txt"
		echo
		echo "Query plans of the first en1_common query (as EXPLAIN QUERY PLAN prints them):"
		echo
		echo '```'
		explain_plans | sed '1{/^$/d}'
		echo '```'
		echo
	fi
	echo "## (h) GET /v1/products/{id} vs nginx (target resortd >= 0.8 x nginx)"
	echo
	echo "\`wrk -t2 -c64 -d${DUR}s --latency\`, $REPS runs each, interleaved; one product ($PID_GET, $PR_BYTES B,"
	echo "served from the worker's read cache after the first GET); nginx-light $(nginx -v 2>&1 | sed 's/.*nginx\///'),"
	echo "2 workers, the same bytes as a static file, as in (a)."
	echo
	echo "| server | req/s (median) | spread | p99 ms (median) | p99 spread | errors | resortd/nginx | runs (req/s) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|"
	ngm=$(col ng_prod 1 | med)
	for k in rs_prod ng_prod; do
		[ $k = rs_prod ] && sn='resortd (workers=2)' || sn='nginx (2 workers)'
		m=$(col $k 1 | med)
		echo "| $sn | $(fmt0 "$m") | $(col $k 1 | spread)% | $(col $k 3 | med) | $(col $k 3 | spread)% | $(sum_col $k 4) | $(ratio "$m" "$ngm") | $(col $k 1 | tr '\n' ' ' | sed 's/ $//') |"
	done
	echo
	echo "## (i) Search under load (wrk -t2 -c64 -d${DUR}s, Lua rotating over the query sets)"
	echo
	echo "plain = the $(awk -F'\t' '$1!="healthz" && $1!~/\+f$/' "$T/queries.txt" | wc -l) queries of (f) without facets, facets = the same with"
	echo "\`facets=$FACETS\`; $WREPS runs each, interleaved; wrk --timeout ${DUR}s. wrk's latency percentiles cover"
	echo "only requests completed within the run: when few complete, the ones still queued at the end (up to 64)"
	echo "are missing from p99, so the real tail is worse than it says."
	echo
	echo "*search cache off*: every request runs the search (the server of (f)-(h), started with"
	echo "\`--search-cache-entries 0\`); *default*: a server with the default cache, where each worker keeps a"
	echo "page per distinct query until the catalog changes (bookings and holds do not count); 3 s of each mix"
	echo "first, unmeasured, fill the caches as on a server that has been running."
	echo
	echo "| mix | search cache | req/s (median) | p50 ms (median) | p99 ms (median) | p99 spread | completed (per run) | timeouts | other errors | target |"
	echo "|---|---|---:|---:|---:|---:|---|---:|---:|---|"
	for k in search_plain search_facets search_plain_cached search_facets_cached; do
		case $k in *plain*) mix=plain lim=10 ;; *) mix=facets lim=20 ;; esac
		case $k in *cached) cache=default ;; *) cache=off ;; esac
		tg="$(pf "$(col $k 3 | med)" $lim '<') (p99 < $lim)"
		[ "$(sum_col $k 5)" -gt 0 ] && tg="FAIL (timeouts)"
		echo "| $mix | $cache | $(col $k 1 | med) | $(col $k 2 | med) | $(col $k 3 | med) | $(col $k 3 | spread)% | $(col $k 7 | tr '\n' ' ' | sed 's/ $//') | $(sum_col $k 5) | $(($(sum_col $k 4) - $(sum_col $k 5))) | $tg |"
	done
	echo
	echo "## (j) Memory (target < 128 MiB under load)"
	echo
	echo "VmRSS sampled every 0.2 s during each load (the peak sample shown, anon + file). RssFile is pages of"
	echo "the mmap'd LMDB map (data.mdb, $(mib $((MDB_BYTES / 1024))) MiB here) the process touched: page cache, reclaimable;"
	echo "RssAnon is the process's own memory (heap, SQLite page caches)."
	echo
	echo "| when | VmRSS (anon + file) |"
	echo "|---|---:|"
	echo "| idle, after start on the imported catalog | $(mib "$IDLE_RSS") MiB ($(mib "$IDLE_ANON") + $(mib "$IDLE_FILE")) |"
	echo "| peak during the sequential searches | $(mib "$SEQ_PK") MiB ($(mib "$SEQ_PK_ANON") + $(mib "$SEQ_PK_FILE")) |"
	echo "| peak during GET product (wrk) | $(mib "$GET_PK") MiB ($(mib "$GET_PK_ANON") + $(mib "$GET_PK_FILE")) |"
	echo "| peak during search (wrk) | $(mib "$SRCH_PK") MiB ($(mib "$SRCH_PK_ANON") + $(mib "$SRCH_PK_FILE")) |"
	echo "| at the end | $(mib "$END_RSS") MiB ($(mib "$END_ANON") + $(mib "$END_FILE")); VmHWM (peak) $(mib "$END_HWM") MiB |"
	echo "| after the searches with the default search cache (a second server) | $(mib "$CACHED_RSS") MiB; VmHWM (peak) $(mib "$CACHED_HWM") MiB |"
	echo
	echo "## Catalog targets"
	echo
	echo "- search p99 without facets, sequential: worst set $(worst '^(en|ko)[^+]*$') ms (< 10): $(pf "$(worst '^(en|ko)[^+]*$' | cut -d' ' -f1)" 10 '<')"
	echo "- search p99 with facets, sequential: worst set $(worst '\+f$') ms (< 20): $(pf "$(worst '\+f$' | cut -d' ' -f1)" 20 '<')"
	for sfx in "" _cached; do
		[ -z "$sfx" ] && what="search cache off" || what="default search cache"
		a=search_plain$sfx b=search_facets$sfx
		echo "- search p99 under load, $what: plain $(col $a 3 | med) ms, facets $(col $b 3 | med) ms; timeouts $(sum_col $a 5) and $(sum_col $b 5): $( [ "$(sum_col $a 5)$(sum_col $b 5)" = 00 ] && awk -v a="$(col $a 3 | med)" -v b="$(col $b 3 | med)" 'BEGIN{print (a+0<10 && b+0<20) ? "PASS" : "FAIL"}' || echo FAIL)"
	done
	echo "- GET /v1/products/{id} resortd/nginx = $(ratio "$(col rs_prod 1 | med)" "$ngm") (>= 0.8): $(pf "$(ratio "$(col rs_prod 1 | med)" "$ngm")" 0.8 '>=')"
	HWM_MAX=$((END_HWM > CACHED_HWM ? END_HWM : CACHED_HWM))
	echo "- RSS under load = $(mib "$HWM_MAX") MiB VmHWM, the larger of the two servers (< 128 MiB): $(awk -v k="$HWM_MAX" 'BEGIN{print (k < 128*1024) ? "PASS" : "FAIL"}')"
	echo "<!-- catalog:end -->"
} >"$T/section.md"

# Replace the catalog section of results.md (or append it), keeping everything else.
python3 - "$OUT" "$T/section.md" <<'EOF'
import os, re, sys
out, section = sys.argv[1], open(sys.argv[2], encoding="utf-8").read()
old = open(out, encoding="utf-8").read() if os.path.exists(out) else ""
pat = re.compile(r"<!-- catalog:begin.*?<!-- catalog:end -->\n?", re.S)
new = pat.sub(lambda m: section, old, count=1) if pat.search(old) else \
      (old.rstrip("\n") + "\n\n" if old else "") + section
open(out, "w", encoding="utf-8").write(new)
EOF
cat "$T/section.md"
log "saved $OUT (catalog section) in $ELAPSED s"
