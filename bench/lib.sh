# bench/lib.sh — what bench/run.sh and bench/search.sh share; sourced after each sets T (its
# temp dir), PIDS (the processes it starts), BIN and LOG_TAG. HTTP_TIMEOUT_S: http_get's wait.

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

command -v wrk >/dev/null || die "wrk missing (make deps-bench)"
command -v nginx >/dev/null || die "nginx missing (make deps-bench)"
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
