#!/usr/bin/env bash
# A quick side-by-side: wrk through nginx to tfpm and to php-fpm from the same
# PHP build, same php.ini (production, opcache on), same worker count.
# Prints one table. Not the full benchmark suite; a smoke test of speed.
#
# Usage: bench/quick.sh [workers=8] [seconds=10] [connections=32]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
workers="${1:-8}"; secs="${2:-10}"; conns="${3:-32}"

./scripts/install-deps.sh
. ./scripts/env.sh
cargo build --release --locked -q

run="$(mktemp -d /tmp/tfpm-bench.XXXXXX)"
. "$here/lib.sh"
mkdir -p "$run/www" "$run/snippets"
echo '<?php echo "Hello, world!\n";' > "$run/www/hello.php"
ln -s /etc/nginx/fastcgi.conf "$run/fastcgi.conf"
ln -s /etc/nginx/snippets/fastcgi-php.conf "$run/snippets/fastcgi-php.conf"
ini="$run/php.ini"
{ cat "$PHP_PREFIX/etc/php.ini-production"; echo "opcache.enable=1"; } > "$ini"

fpm_conf fpm "$run/fpm.sock" "$workers"

# php-fpm without kept connections, its usual setup: a kept connection holds a
# php-fpm child even while idle.
server_block() { # name port socket
  local keep="" keep_conn=off
  [[ "$1" == tfpm ]] && { keep="keepalive 32;"; keep_conn=on; }
  cat <<CONF
    upstream $1 { server unix:$3; $keep }
    server {
        listen 127.0.0.1:$2;
        root $run/www;
        location ~ \.php(/|\$) { include snippets/fastcgi-php.conf; fastcgi_keep_conn $keep_conn; fastcgi_pass $1; }
    }
CONF
}
cat > "$run/nginx.conf" <<CONF
daemon off;
worker_processes 2;
$( [[ $EUID -eq 0 ]] && echo "user root;" )
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $run/body;
    fastcgi_temp_path $run/fastcgi;
    proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
$(server_block tfpm 18081 "$run/tfpm.sock")
$(server_block fpm 18082 "$run/fpm.sock")
}
CONF

./target/release/tfpm --listen "$run/tfpm.sock" --threads "$workers" -c "$ini" --log-level warn &
tfpm_pid=$!
"$PHP_PREFIX/sbin/php-fpm" -y "$run/fpm.conf" -c "$ini" -R &
fpm_pid=$!
nginx -p "$run" -c "$run/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid $tfpm_pid $fpm_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$run"' EXIT

wait_up() { for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/hello.php" >/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
wait_up 18081; wait_up 18082

rps() { # port
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$1/hello.php" > "$run/wrk.$1"
  local r p99
  r="$(awk '/Requests\/sec/ {print $2}' "$run/wrk.$1")"
  p99="$(awk '$1 == "99%" {print $2}' "$run/wrk.$1")"
  echo "$r $p99"
}
curl -s "http://127.0.0.1:18081/hello.php" >/dev/null
read -r t_rps t_p99 < <(rps 18081)
read -r f_rps f_p99 < <(rps 18082)
printf '\nhello.php through nginx, %s workers, %s connections, %ss each (%s, %s cores)\n' \
  "$workers" "$conns" "$secs" "$(date -u +%F)" "$(nproc)"
printf '%-10s %12s %10s\n' server req/s p99
printf '%-10s %12s %10s\n' tfpm "$t_rps" "$t_p99"
printf '%-10s %12s %10s\n' php-fpm "$f_rps" "$f_p99"
awk -v a="$t_rps" -v b="$f_rps" 'BEGIN { printf "ratio      %12.2fx\n", a / b }'
