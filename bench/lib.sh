# shellcheck shell=bash
# bench/lib.sh — what the bench scripts share; sourced after each sets T (its temp dir), PIDS
# (the processes it starts), BIN and LOG_TAG. HTTP_TIMEOUT_S: http_get's and http_send's wait.
# NEEDS_TOOLS: the commands the script runs, checked here; unset means "wrk nginx" (bench/run.sh,
# bench/search.sh); bench/booking_pg.sh, bench/booking.sh and bench/auth.sh set their own.
#
# Sign-in: every route above public needs `Authorization: Bearer TOKEN`. A script that writes
# calls auth_add_admin DATA_DIR before its server's first start, starts the server with
# "${AUTH_SERVE_ARGS[@]}", then auth_login PORT: http_send and http_get_auth send the token from
# then on, wrk takes -H "$AUTH_HEADER", the C clients BENCH_AUTH="$BENCH_AUTH" in their
# environment (never exported: measured public requests stay unauthenticated).

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Stops every process the script started (by pid) and anything cleanup_extra names, then
# removes the temp dir.
cleanup() {
	local rc=$? p i
	trap - EXIT INT TERM
	if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for i in $(seq 1 100); do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in ${NEEDS_TOOLS-wrk nginx}; do
	command -v "$tool" >/dev/null || die "$tool missing (make deps-bench)"
done
[ -x "$BIN" ] || die "$BIN missing (make resortd)"

# GET url -> body on stdout (curl when present, else bash /dev/tcp).
http_get() {
	local port=$1 path=$2 wait=${HTTP_TIMEOUT_S:-5}
	if command -v curl >/dev/null; then
		curl -sf --max-time "$wait" "http://127.0.0.1:$port$path"
	else
		exec 9<>"/dev/tcp/127.0.0.1/$port"
		printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&9
		timeout "$wait" cat <&9 | sed '1,/^\r$/d'
		exec 9<&-
	fi
}

# GET url with the bench token (auth_login) -> body on stdout; fails unless the status is 2xx.
http_get_auth() {
	local port=$1 path=$2 wait=${HTTP_TIMEOUT_S:-5}
	if command -v curl >/dev/null; then
		curl -sf --max-time "$wait" ${BENCH_TOKEN:+-H "Authorization: Bearer $BENCH_TOKEN"} \
			"http://127.0.0.1:$port$path"
	else
		http_raw GET "$port" "$path" "" ""
	fi
}

# http_raw METHOD PORT PATH CONTENT_TYPE BODY: one request over bash /dev/tcp (no curl), with
# the bench token when there is one; the body on stdout, fails unless the status is 2xx.
http_raw() {
	local method=$1 port=$2 path=$3 ctype=$4 body=$5 wait=${HTTP_TIMEOUT_S:-5} resp extra=
	[ -z "$BENCH_TOKEN" ] || extra="Authorization: Bearer $BENCH_TOKEN"$'\r\n'
	[ -z "$ctype" ] || extra+="Content-Type: $ctype"$'\r\n'
	exec 9<>"/dev/tcp/127.0.0.1/$port"
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: %d\r\n\r\n%s' \
		"$method" "$path" "$extra" "$(printf %s "$body" | wc -c)" "$body" >&9
	resp=$(timeout "$wait" cat <&9)
	exec 9<&-
	printf '%s' "$resp" | sed '1,/^\r$/d'
	[[ $resp =~ ^HTTP/1\.[01]\ 2[0-9][0-9] ]]
}

# http_send METHOD PORT PATH [JSON]: the response body on stdout; fails (status 1) unless the
# status is 2xx. Sends the bench token once auth_login has one. curl when present, else bash
# /dev/tcp.
http_send() {
	local method=$1 port=$2 path=$3 body=${4-} wait=${HTTP_TIMEOUT_S:-5}
	if command -v curl >/dev/null; then
		curl -sf --max-time "$wait" -X "$method" -H 'Content-Type: application/json' \
			${BENCH_TOKEN:+-H "Authorization: Bearer $BENCH_TOKEN"} \
			${4+--data-binary "$body"} "http://127.0.0.1:$port$path"
	else
		http_raw "$method" "$port" "$path" application/json "$body"
	fi
}

# http_form PORT PATH FORM: POST of an application/x-www-form-urlencoded FORM (already
# encoded), without credentials; the body on stdout, fails unless the status is 2xx.
http_form() {
	local port=$1 path=$2 form=$3 wait=${HTTP_TIMEOUT_S:-5}
	if command -v curl >/dev/null; then
		curl -sf --max-time "$wait" --data-binary "$form" \
			-H 'Content-Type: application/x-www-form-urlencoded' "http://127.0.0.1:$port$path"
	else
		BENCH_TOKEN='' http_raw POST "$port" "$path" application/x-www-form-urlencoded "$form"
	fi
}

# ---------------------------------------------------------------- sign-in
# The local admin every script signs in as; its password is random per run (hex: no form
# encoding needed). AUTH_SERVE_ARGS: serve flags so a run never outlives its token
# (access_ttl_s' largest value, 3600 s; the default is 300 s).
BENCH_USER=bench
BENCH_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# shellcheck disable=SC2034 # used by the scripts that source this file
AUTH_SERVE_ARGS=(--access-ttl-s 3600)
BENCH_TOKEN=
BENCH_AUTH=
AUTH_HEADER=

# auth_user_add DATA_DIR NAME ROLE PASSWORD ITERATIONS [resortd flags...]: `resortd user add`
# into DATA_DIR's store, the password on standard input, hashed with ITERATIONS PBKDF2 rounds
# (what each of its logins costs). Before the server starts (the CLI opens the store itself).
auth_user_add() {
	local dir=$1 name=$2 role=$3 pw=$4 iter=$5
	shift 5
	printf '%s\n' "$pw" | "$BIN" user add "$name" --role "$role" --password-stdin \
		--data-dir "$dir" --password-iterations "$iter" "$@" >/dev/null ||
		die "resortd user add $name failed"
}

# auth_add_admin DATA_DIR [resortd flags...]: the bench admin (1,000 rounds: signing in is setup,
# not what is measured).
auth_add_admin() {
	local dir=$1
	shift
	auth_user_add "$dir" "$BENCH_USER" admin "$BENCH_PASSWORD" 1000 "$@"
}

# json_field NAME: the string member NAME of the JSON on stdin.
json_field() { grep -o "\"$1\": *\"[^\"]*\"" | head -1 | sed 's/.*"\([^"]*\)"$/\1/'; }

# auth_token PORT [USER PASSWORD]: signs in with the password grant, prints the access token.
auth_token() {
	local port=$1 user=${2:-$BENCH_USER} pw=${3:-$BENCH_PASSWORD} tok
	tok=$(http_form "$port" /auth/token "grant_type=password&username=$user&password=$pw" |
		json_field access_token) || true
	[ -n "$tok" ] || die "cannot sign in as $user on :$port (POST /auth/token)"
	printf '%s\n' "$tok"
}

# auth_login PORT: signs the bench admin in; sets BENCH_TOKEN, BENCH_AUTH ("Bearer ...", for
# the C clients) and AUTH_HEADER (for wrk -H).
auth_login() {
	BENCH_TOKEN=$(auth_token "$1") || exit 1
	BENCH_AUTH="Bearer $BENCH_TOKEN"
	# shellcheck disable=SC2034 # used by the scripts that source this file
	AUTH_HEADER="Authorization: $BENCH_AUTH"
}

# A loopback port nobody listens on, below the ephemeral range (so no client socket of
# wrk holds it); probed by connecting, a small race is acceptable.
free_port() {
	local p i lo
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -gt 11000 ] || lo=32768
	for i in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

rss_of() { # "VmRSS VmHWM RssAnon RssFile" in KiB (RssFile: mapped LMDB/SQLite pages, reclaimable)
	awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, h, a, f}' "/proc/$1/status"
}
# put_section FILE NAME SECTION_FILE: replaces the lines from "<!-- NAME:begin" to
# "<!-- NAME:end -->" of FILE with SECTION_FILE (which carries both markers), or appends it.
put_section() {
	local file=$1 name=$2 section=$3
	touch "$file"
	if grep -q "^<!-- $name:begin" "$file"; then
		awk -v name="$name" -v sec="$section" '
			index($0, "<!-- " name ":begin") == 1 { while ((getline l < sec) > 0) print l; skip = 1; next }
			skip && index($0, "<!-- " name ":end -->") == 1 { skip = 0; next }
			!skip { print }' "$file" >"$file.tmp.$$"
	else
		{ cat "$file"; [ -s "$file" ] && echo; cat "$section"; } >"$file.tmp.$$"
	fi
	mv "$file.tmp.$$" "$file"
}

# keep_sections OLD NEW: appends to NEW every "<!-- NAME:begin" ... "<!-- NAME:end -->" section
# of OLD (what another script wrote there), so a script that rewrites the file keeps them.
keep_sections() {
	[ -f "$1" ] || return 0
	awk '/^<!-- [a-z_-]*:begin/ { p = 1; print "" } p { print } /^<!-- [a-z_-]*:end -->/ { p = 0 }' "$1" >>"$2"
}
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# Median and spread (max-min, as % of the median) of numbers on stdin.
med() { sort -g | awk '{a[NR]=$1} END{if(NR==0){print "n/a";exit} if(NR%2)m=a[(NR+1)/2]; else m=(a[NR/2]+a[NR/2+1])/2; print m}'; }
spread() { sort -g | awk '{a[NR]=$1} END{if(NR==0){print "n/a";exit} if(NR%2)m=a[(NR+1)/2]; else m=(a[NR/2]+a[NR/2+1])/2; if(m>0) printf "%.1f", (a[NR]-a[1])*100/m; else print "n/a"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if(b>0) printf "%.2f", a/b; else print "n/a"}'; }

# Columns of the results run_wrk (each script's own) appends to $T/res/KEY.
col() { awk -v c="$2" '{print $c}' "$T/res/$1"; }
sum_col() { awk -v c="$2" '{s+=$c} END{print s+0}' "$T/res/$1"; }

# start_nginx FILE: nginx (2 workers, as Debian runs it) serving $T/nginx/www, the bodies already
# written there; sets NG_PORT and NG_PID once it serves /FILE.
start_nginx() {
	local file=$1 i
	mkdir -p "$T/nginx/tmp"
	chmod 755 "$T" "$T/nginx" "$T/nginx/www"
	chmod 644 "$T/nginx/www/"*
	NG_PORT=$(free_port)
	cat >"$T/nginx/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 2;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
    types { }
    default_type application/json;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $T/nginx/www;
    }
}
NGINX
	nginx -p "$T/nginx" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" &
	NG_PID=$!
	PIDS+=("$NG_PID")
	for i in $(seq 1 100); do
		[ "$(http_get "$NG_PORT" "/$file" 2>/dev/null || true)" = "$(cat "$T/nginx/www/$file")" ] && break
		kill -0 "$NG_PID" 2>/dev/null || { cat "$T/nginx/error.log" >&2; die "nginx exited"; }
		sleep 0.1
	done
	[ "$(http_get "$NG_PORT" "/$file")" = "$(cat "$T/nginx/www/$file")" ] || die "nginx not serving"
}
