#!/usr/bin/env bash
# Reloads under load, as a deploy does them: nginx in front, wrk POSTing a
# form (nginx never retries a POST), three SIGUSR2 reloads 3 s apart during a
# 12 s run. For tfpm and for php-fpm from the same PHP build, each with and
# without nginx's kept connections (`keepalive` in the upstream, and
# `fastcgi_keep_conn on`). Prints a markdown table: requests, failed
# (non-2xx, as nginx answers 502 for a request its upstream dropped), and the
# lines of nginx's error log about the upstream.
#
# Usage: bench/reload.sh [--reloads N] [--workers N] [--threads N] [--out FILE]
#   --reloads N   reloads during the run, 3 s apart from 3 s on (default 3;
#                 0 gives the same load's rate without any)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

workers=2; threads=8; out=""; reloads=3
while (($#)); do
  case "$1" in
    --reloads) reloads="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
. ./scripts/env.sh
cargo build --release --locked -q -p tfpm
tfpm_bin="$root/target/release/tfpm"

run="$(mktemp -d /tmp/tfpm-reload.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
report="$run/report.md"
say() { echo "$*" | tee -a "$report"; }

mkdir -p "$run/www" "$run/snippets"
cat > "$run/www/post.php" <<'PHP'
<?php
echo json_encode($_POST);
PHP
cat > "$run/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "name=tfpm&n=42"
LUA
ini="$run/php.ini"
{ cat "$PHP_PREFIX/etc/php.ini-production"; echo "opcache.enable=1"; } > "$ini"
ln -s /etc/nginx/snippets/fastcgi-php.conf "$run/snippets/fastcgi-php.conf"

# One nginx per case, so that each error log is its own.
start_nginx() { # name port upstream kept
  local keep="" keep_conn=off d="$run/nginx-$1"
  [[ "$4" == yes ]] && { keep="keepalive 16;"; keep_conn=on; }
  mkdir -p "$d"
  # The snippet includes fastcgi.conf from the main config's directory.
  ln -sf /etc/nginx/fastcgi.conf "$d/fastcgi.conf"
  cat > "$d/nginx.conf" <<CONF
daemon off;
worker_processes 1;
$( [[ $EUID -eq 0 ]] && echo "user root;" )
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/body;
    fastcgi_temp_path $d/fastcgi;
    proxy_temp_path $d/proxy;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream php { server $3; $keep }
    server {
        listen 127.0.0.1:$2;
        root $run/www;
        location ~ \.php\$ { include $run/snippets/fastcgi-php.conf; fastcgi_keep_conn $keep_conn; fastcgi_pass php; }
    }
}
CONF
  nginx -p "$run" -c "$d/nginx.conf" &
  nginx_pid=$!
  pids+=("$nginx_pid")
}

start_server() { # name port
  case "$1" in
    tfpm)
      "$tfpm_bin" --listen "127.0.0.1:$2" --workers "$workers" --threads "$threads" \
        -c "$ini" --log-level warn 2>>"$run/tfpm.log" & ;;
    php-fpm)
      cat > "$run/php-fpm.conf" <<CONF
[global]
error_log = $run/php-fpm.log
daemonize = no
[www]
listen = 127.0.0.1:$2
pm = static
pm.max_children = $((workers * threads))
CONF
      "$PHP_PREFIX/sbin/php-fpm" -y "$run/php-fpm.conf" -c "$ini" -R 2>>"$run/php-fpm.log" & ;;
  esac
  server_pid=$!
  pids+=("$server_pid")
}

wait_http() { # port
  for _ in $(seq 1 400); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' -d a=1 "http://127.0.0.1:$1/post.php")" == 200 ]] && return 0
    sleep 0.05
  done
  echo "reload bench: nothing answers on port $1" >&2; exit 1
}

say ""
say "## $reloads reloads under POST load ($(date -u +%F), $(nproc) cores, PHP $("$PHP_CONFIG" --version); wrk -t2 -c32 -d12s, SIGUSR2 every 3 s from 3 s on; $workers tfpm workers × $threads threads, php-fpm pm.max_children = $((workers * threads)))"
say ""
say "| server | nginx to the server | requests | failed | upstream errors in nginx's log |"
say "|---|---|---:|---:|---:|"
port=18300
for server in tfpm php-fpm; do
  for kept in yes no; do
    port=$((port + 2))
    start_server "$server" "$port"
    start_nginx "$server-$kept" "$((port + 1))" "127.0.0.1:$port" "$kept"
    wait_http "$((port + 1))"
    # Only what nginx logs under the load counts (not the readiness probes).
    log="$run/nginx-$server-$kept/error.log"
    skip=$(wc -l < "$log")
    wrk -t2 -c32 -d12s -s "$run/post.lua" "http://127.0.0.1:$((port + 1))/post.php" > "$run/wrk.out" 2>&1 &
    wrk_pid=$!
    for ((i = 0; i < reloads; i++)); do sleep 3; kill -USR2 "$server_pid"; done
    wait "$wrk_pid" || true
    requests=$(awk '/requests in/ { print $1 }' "$run/wrk.out")
    failed=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$run/wrk.out")
    errors=$(tail -n +"$((skip + 1))" "$log" | grep -c upstream || true)
    label="kept connections"; [[ "$kept" == no ]] && label="a connection per request"
    say "| $server | $label | ${requests:-0} | ${failed:-0} | $errors |"
    kill -QUIT "$nginx_pid" "$server_pid" 2>/dev/null || true
    wait "$nginx_pid" "$server_pid" 2>/dev/null || true
  done
done
[[ -n "$out" ]] && cp "$report" "$out"
exit 0
