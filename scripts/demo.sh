#!/usr/bin/env bash
# Builds everything (PHP if not cached, tfpm in release mode) and serves
# examples/ through nginx on http://127.0.0.1:8080/ with tfpm behind it.
# Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

"$here/install-deps.sh"
. "$here/env.sh"
cargo build --release --locked

port="${DEMO_PORT:-8080}"
run="$(mktemp -d /tmp/tfpm-demo.XXXXXX)"
sock="$run/tfpm.sock"
mkdir -p "$run/snippets"
ln -s /etc/nginx/fastcgi.conf "$run/fastcgi.conf"
ln -s /etc/nginx/snippets/fastcgi-php.conf "$run/snippets/fastcgi-php.conf"
cat > "$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
$( [[ $EUID -eq 0 ]] && echo "user root;" )
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log $run/access.log;
    client_body_temp_path $run/body;
    fastcgi_temp_path $run/fastcgi;
    proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
    client_max_body_size 64m;
    upstream tfpm { server unix:$sock; keepalive 16; }
    server {
        listen 127.0.0.1:$port;
        root $root/examples;
        index index.php;
        include $root/nginx-conf/tfpm-php.conf;
    }
}
CONF

./target/release/tfpm --listen "$sock" --threads "${DEMO_THREADS:-4}" -c "$PHP_PREFIX/etc/php.ini-development" &
tfpm_pid=$!
nginx -p "$run" -c "$run/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid $tfpm_pid 2>/dev/null; wait; rm -rf "$run"' EXIT INT TERM
echo "demo: serving $root/examples on http://127.0.0.1:$port/ (Ctrl-C to stop)" >&2
wait -n
