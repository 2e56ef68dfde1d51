#!/usr/bin/env bash
# Worker mode on real framework pages: the apps of tests/apps/ (Symfony 5.4
# and Laravel 8, from Debian's packages) served three ways behind one nginx,
# with the same php.ini (production, opcache on) and the same number of PHP
# threads or children: php-fpm from the same PHP build, tfpm running the
# front controller per request (classic), and tfpm in worker mode (the
# pool's `worker` directive). The page is each app's home page: routing, a
# controller, a template, SQLite, a session. Prints a markdown table
# (req/s, p99 latency, PSS after the run) and writes it to --out FILE.
#
# Usage: bench/worker.sh [--secs N] [--rounds N] [--threads N] [--conns N] [--apps "symfony laravel"] [--dir DIR] [--out FILE]
# Each figure is the median of --rounds runs (each run's figure in brackets),
# the three servers measured in turn within each round.
# The PHP is the one scripts/env.sh picks (TFPM_PHP_VERSION=8.2 for 8.2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

secs=10; rounds=3; threads=4; conns=16; apps="symfony laravel"; out=""; dir=/tmp
while (($#)); do
  case "$1" in
    --secs) secs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;;
    --apps) apps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
. ./scripts/env.sh
cargo build --release --locked -q -p tfpm
tfpm_bin="$root/target/release/tfpm"

# --dir: where the servers' files go (sessions, SQLite, caches, sockets).
run="$(mktemp -d "$dir/tfpm-bench-worker.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
report="$run/report.md"
say() { echo "$*" | tee -a "$report"; }

ini="$run/php.ini"
{
  cat "$PHP_PREFIX/etc/php.ini-production"
  echo "opcache.enable=1"
  echo "memory_limit=256M"
  echo "include_path=.:/usr/share/php"
  # Symfony 5.4 and Laravel 8 on PHP 8.4 raise deprecations (Laravel turns
  # error_reporting up itself): to a file, not into every response's
  # FastCGI stderr, for all three servers alike.
  echo "error_reporting=E_ALL & ~E_DEPRECATED & ~E_STRICT"
  echo "error_log=$run/php-errors.log"
  # wrk sends no cookie, so every request starts a session file; the session
  # GC's scan of thousands of them would decide p99, not the server.
  echo "session.gc_probability=0"
} > "$ini"

# A pool config: name app mode socket var-dir
pool_conf() {
  local name="$1" app="$2" mode="$3" sock="$4" var="$5"
  local front="$root/tests/apps/$app/public/index.php" children="$threads"
  # In worker mode the worker script's threads serve the pages; one more
  # thread is there for other scripts.
  [[ "$mode" == worker ]] && children=1
  fpm_conf "$name" "$sock" "$children" "env[APP_VAR_DIR] = $var"
  if [[ "$mode" == worker ]]; then
    cat >> "$run/$name.conf" <<CONF
worker = $front
worker.num = $threads
worker.env[APP_VAR_DIR] = $var
CONF
  fi
}

# nginx as its usual setup for each: tfpm with kept connections, php-fpm without.
server_block() { # port socket app keep
  local keep="" keep_conn=off
  [[ "$4" == yes ]] && { keep="keepalive 32;"; keep_conn=on; }
  cat <<CONF
    upstream up_$1 { server unix:$2; $keep }
    server {
        listen 127.0.0.1:$1;
        root $root/tests/apps/$3/public;
        location / { try_files \$uri /index.php\$is_args\$args; }
        location ~ \.php\$ {
            include /etc/nginx/fastcgi.conf;
            fastcgi_keep_conn $keep_conn;
            fastcgi_pass up_$1;
        }
    }
CONF
}

modes=(php-fpm classic worker)
port_of() { case "$1" in php-fpm) echo 18281 ;; classic) echo 18282 ;; worker) echo 18283 ;; esac; }

. "$here/lib.sh"

say ""
say "## Framework pages, worker mode ($threads threads or children each, $conns connections, median of $rounds runs of ${secs} s, $(date -u +%F), $(nproc) cores, PHP $("$PHP_CONFIG" --version), opcache on)"
say ""
say "| app | server | req/s (runs) | vs php-fpm | p99 ms (runs) | non-2xx | PSS after, MiB |"
say "|---|---|---:|---:|---:|---:|---:|"
for app in $apps; do
  nginx_conf="$run/nginx-$app.conf"
  {
    echo "daemon off; worker_processes 2; $( [[ $EUID -eq 0 ]] && echo "user root;" )"
    echo "pid $run/nginx-$app.pid; error_log $run/nginx-$app-error.log;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $run/body; fastcgi_temp_path $run/fastcgi;"
    for mode in "${modes[@]}"; do
      server_block "$(port_of "$mode")" "$run/$app-$mode.sock" "$app" "$([[ $mode == php-fpm ]] && echo no || echo yes)"
    done
    echo "}"
  } > "$nginx_conf"
  nginx -p "$run" -c "$nginx_conf" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  # All three up at once, then measured in turn, round after round, so
  # that whatever else the machine does falls on each alike.
  declare -A server_of rps_of p99_of bad_of
  for mode in "${modes[@]}"; do
    sock="$run/$app-$mode.sock"; var="$run/var-$app-$mode"
    rm -rf "$var"; mkdir -p "$var"
    pool_conf "$app-$mode" "$app" "$mode" "$sock" "$var"
    case "$mode" in
      php-fpm) "$PHP_PREFIX/sbin/php-fpm" -y "$run/$app-$mode.conf" -c "$ini" -R & ;;
      *) "$tfpm_bin" -F -R -y "$run/$app-$mode.conf" -c "$ini" --log-level warn 2>>"$run/tfpm.log" & ;;
    esac
    server_of[$mode]=$!
    pids+=("$!")
    for _ in $(seq 1 200); do [[ -S "$sock" ]] && break; sleep 0.05; done
    port="$(port_of "$mode")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")"
    if [[ "$code" != 200 ]]; then
      echo "bench: $app under $mode answered $code" >&2
      tail -n 20 "$run/$app-$mode.log" "$run/tfpm.log" "$run/nginx-$app-error.log" >&2 || true
      exit 1
    fi
    wrk_run "$port" 2 > /dev/null   # warm-up: opcache, the workers' boot
    rps_of[$mode]=""; p99_of[$mode]=""; bad_of[$mode]=0
  done
  for _ in $(seq 1 "$rounds"); do
    for mode in "${modes[@]}"; do
      read -r rps p99 bad < <(wrk_run "$(port_of "$mode")" "$secs")
      rps_of[$mode]+="$rps "; p99_of[$mode]+="$p99 "; bad_of[$mode]=$(( ${bad_of[$mode]} + bad ))
    done
  done
  fpm_rps="$(median ${rps_of[php-fpm]})"
  for mode in "${modes[@]}"; do
    rps="$(median ${rps_of[$mode]})"
    pss="$(pss_tree "${server_of[$mode]}")"
    say "| $app | $mode | $rps (${rps_of[$mode]% }) | $(ratio "$rps" "$fpm_rps") | $(median ${p99_of[$mode]}) (${p99_of[$mode]% }) | ${bad_of[$mode]} | $(awk -v k="$pss" 'BEGIN { printf "%.0f", k / 1024 }') |"
  done
  for mode in "${modes[@]}"; do
    kill "${server_of[$mode]}" 2>/dev/null || true
    wait "${server_of[$mode]}" 2>/dev/null || true
  done
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
done

if [[ -n "$out" ]]; then
  cp "$report" "$out"
  echo "bench: wrote $out" >&2
fi
