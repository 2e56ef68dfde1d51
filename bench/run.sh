#!/usr/bin/env bash
# The benchmark: tfpm side by side with php-fpm from the same PHP build (and
# Debian's php8.2-fpm when installed), same php.ini, opcache on, equal worker
# counts. Prints markdown tables with ratios (and writes them to --out FILE).
#
# Usage: bench/run.sh [--quick] [--jit] [--workers N] [--out FILE]
#   --quick    shorter runs (3 s each instead of 10 s) and fewer memory points
#   --jit      opcache's JIT on for both servers (opcache.jit=tracing, 64 MiB)
# The PHP is the one scripts/env.sh picks: TFPM_PHP_VERSION=8.4 for 8.4.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

secs=10; workers=8; out=""; mem_points="8 32 128"; jit=off
while (($#)); do
  case "$1" in
    --quick) secs=3; mem_points="8 32"; shift ;;
    --jit) jit=tracing; shift ;;
    --workers) workers="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
. ./scripts/env.sh
cargo build --release --locked -q -p tfpm -p fcgi-load --features tfpm/bench
tfpm_bin="$root/target/release/tfpm"
loadgen="$root/target/release/fcgi-load"

run="$(mktemp -d /tmp/tfpm-bench.XXXXXX)"
. "$here/lib.sh"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
report="$run/report.md"
say() { echo "$*" | tee -a "$report"; }

# ---- the docroot, php.ini and configs ----------------------------------------
www="$run/www"
cp -r "$here/www" "$www"
"$PHP_PREFIX/bin/php" -n -d extension_dir="$("$PHP_CONFIG" --extension-dir)" "$www/make_app_db.php" "$www/app.db"
ini="$run/php.ini"
{
  cat "$PHP_PREFIX/etc/php.ini-production"
  echo "opcache.enable=1"
  if [[ "$jit" != off ]]; then
    echo "opcache.jit=$jit"
    echo "opcache.jit_buffer_size=64M"
  fi
  echo "memory_limit=256M"
  echo "post_max_size=16M"
  echo "upload_max_filesize=16M"
} > "$ini"
mkdir -p "$run/snippets"
ln -s /etc/nginx/fastcgi.conf "$run/fastcgi.conf"
ln -s /etc/nginx/snippets/fastcgi-php.conf "$run/snippets/fastcgi-php.conf"


# tfpm gets kept connections (nginx-conf/tfpm-php.conf). php-fpm gets its usual
# setup without them: a kept connection holds a php-fpm child even while idle,
# so with more kept connections than children requests stall.
server_block() { # name port socket
  local keep="" keep_conn=off
  [[ "$1" == tfpm ]] && { keep="keepalive 32;"; keep_conn=on; }
  cat <<CONF
    upstream $1 { server unix:$3; $keep }
    server {
        listen 127.0.0.1:$2;
        root $www;
        client_max_body_size 16m;
        location ~ \.php(/|\$) { include snippets/fastcgi-php.conf; fastcgi_keep_conn $keep_conn; fastcgi_pass $1; }
    }
CONF
}

debian_fpm="$(command -v php-fpm8.2 || true)"
servers=(tfpm php-fpm)
[[ -n "$debian_fpm" ]] && servers+=(debian-fpm)
port_of() { case "$1" in tfpm) echo 18181 ;; php-fpm) echo 18182 ;; debian-fpm) echo 18183 ;; esac; }
sock_of() { echo "$run/$1.sock"; }

cat > "$run/nginx.conf" <<CONF
daemon off;
worker_processes 2;
$( [[ $EUID -eq 0 ]] && echo "user root;" )
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $run/body;
    fastcgi_temp_path $run/fastcgi;
    proxy_temp_path $run/proxy;
    uwsgi_temp_path $run/uwsgi;
    scgi_temp_path $run/scgi;
$(for s in "${servers[@]}"; do server_block "${s//-/_}" "$(port_of "$s")" "$(sock_of "$s")"; done)
}
CONF

# ---- starting and stopping the servers --------------------------------------
declare -A pid_of
start_server() { # name workers
  local name="$1" n="$2" sock; sock="$(sock_of "$1")"
  rm -f "$sock"
  case "$name" in
    tfpm) "$tfpm_bin" --listen "$sock" --threads "$n" -c "$ini" --log-level warn 2>>"$run/tfpm.log" & ;;
    php-fpm) fpm_conf php-fpm "$sock" "$n"; "$PHP_PREFIX/sbin/php-fpm" -y "$run/php-fpm.conf" -c "$ini" -R & ;;
    debian-fpm) fpm_conf debian-fpm "$sock" "$n"; "$debian_fpm" -y "$run/debian-fpm.conf" -c "$ini" -R & ;;
  esac
  pid_of[$name]=$!
  pids+=("$!")
  for _ in $(seq 1 200); do [[ -S "$sock" ]] && return 0; sleep 0.05; done
  echo "bench: $name did not start" >&2; exit 1
}
stop_server() { kill "${pid_of[$1]}" 2>/dev/null || true; wait "${pid_of[$1]}" 2>/dev/null || true; }

nginx -p "$run" -c "$run/nginx.conf" &
pids+=("$!")

# ---- measurements -------------------------------------------------------------
# wrk through nginx: "req/s p99" (p99 in ms).
wrk_path() { # port path conns [lua]
  local args=(-t2 -c"$3" -d"${secs}s" --latency)
  [[ -n "${4:-}" ]] && args+=(-s "$4")
  wrk "${args[@]}" "http://127.0.0.1:$1$2" > "$run/wrk.out" 2>&1 || true
  awk '/Requests\/sec/ { r = $2 }
       $1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; p = v }
       END { printf "%.0f %.2f\n", r, p }' "$run/wrk.out"
}

# tfpm-loadgen straight over FastCGI: "req/s p99".
direct_run() { # socket script conns [extra args...]
  local sock="$1" script="$2" conns="$3"; shift 3
  "$loadgen" --connect "$sock" --script "$www/$script" --concurrency "$conns" --duration "$secs" --threads 1 "$@" > "$run/lg.out" 2>/dev/null || true
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.0f %.2f" % (d["rps"], d["p99_ms"]))' "$run/lg.out" 2>/dev/null || echo "0 0"
}

# PSS and RSS (KiB) of a process and its children.
mem_tree() { # pid -> "pss rss"
  local all=("$1") p
  while read -r p; do all+=("$p"); done < <(pgrep -P "$1" || true)
  for p in "${all[@]}"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
    awk '$1 == "Pss:" { pss += $2 } $1 == "Rss:" { rss += $2 } END { printf "%d %d\n", pss, rss }'
}

# ---- throughput scenarios -------------------------------------------------------
upload_lua="$run/upload.lua"
cat > "$upload_lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("u", 10485760)
LUA

scenarios=(
  "hello world|hello.php|32||"
  "50 KiB HTML page|page50k.php|32||"
  "JSON API with computation|json.php|32||"
  "1 MiB response|big1m.php|8||"
  "10 MiB upload|upload.php|4|$upload_lua|--body-bytes 10485760"
  "fiber-heavy script|fibers.php|32||"
  "50 ms sleep, 64 clients|sleep50.php|64||"
  "app page (SQLite + template)|app.php|32||"
)

for s in "${servers[@]}"; do start_server "$s" "$workers"; done
for s in "${servers[@]}"; do curl -sf "http://127.0.0.1:$(port_of "$s")/hello.php" >/dev/null; done

say ""
say "## Throughput ($workers workers each, ${secs} s per run, $(date -u +%F), $(nproc) cores, PHP $("$PHP_CONFIG" --version), JIT $jit)"
say ""
say "| scenario | via | tfpm req/s | php-fpm req/s | ratio | tfpm p99 ms | php-fpm p99 ms | p99 ratio |"
say "|---|---|---:|---:|---:|---:|---:|---:|"
for entry in "${scenarios[@]}"; do
  IFS='|' read -r label script conns lua extra <<< "$entry"
  read -r t_rps t_p99 < <(wrk_path 18181 "/$script" "$conns" "$lua")
  read -r f_rps f_p99 < <(wrk_path 18182 "/$script" "$conns" "$lua")
  say "| $label | nginx + wrk | $t_rps | $f_rps | $(ratio "$t_rps" "$f_rps") | $t_p99 | $f_p99 | $(ratio "$t_p99" "$f_p99") |"
  # shellcheck disable=SC2086
  read -r t_rps t_p99 < <(direct_run "$(sock_of tfpm)" "$script" "$conns" $extra)
  # shellcheck disable=SC2086
  read -r f_rps f_p99 < <(direct_run "$(sock_of php-fpm)" "$script" "$conns" $extra)
  say "| $label | FastCGI, keep-conn | $t_rps | $f_rps | $(ratio "$t_rps" "$f_rps") | $t_p99 | $f_p99 | $(ratio "$t_p99" "$f_p99") |"
done
if [[ -n "$debian_fpm" ]]; then
  read -r d_rps d_p99 < <(wrk_path 18183 "/hello.php" 32)
  say ""
  say "Debian's php8.2-fpm, hello world through nginx: $d_rps req/s, p99 $d_p99 ms."
fi

# ---- the engine's floor and the daemon's cost per request -----------------------
floor_us="$("$tfpm_bin" --bench-floor "$www/hello.php" --bench-requests 50000 -c "$ini" --log-level warn |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["per_request_us"])')"
"$loadgen" --connect "$(sock_of tfpm)" --script "$www/hello.php" --concurrency 1 --duration "$secs" > "$run/lg1.out" 2>/dev/null
one_conn_us="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.2f" % (1e6 / d["rps"]))' "$run/lg1.out")"
# CPU time (user + system, all threads or processes) spent per request under load.
cpu_ticks() { # pid and its children
  local all=("$1") p
  while read -r p; do all+=("$p"); done < <(pgrep -P "$1" || true)
  for p in "${all[@]}"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ t += $1 } END { print t }'
}
cpu_per_request() { # server
  local before after
  before="$(cpu_ticks "${pid_of[$1]}")"
  "$loadgen" --connect "$(sock_of "$1")" --script "$www/hello.php" --concurrency 32 --duration "$secs" --warmup 0 > "$run/cpu.out" 2>/dev/null
  after="$(cpu_ticks "${pid_of[$1]}")"
  python3 -c 'import json,os,sys; d=json.load(open(sys.argv[1])); t=(int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK"); print("%.2f" % (t*1e6/max(d["requests"],1)))' "$run/cpu.out" "$before" "$after"
}
tfpm_cpu_us="$(cpu_per_request tfpm)"
fpm_cpu_us="$(cpu_per_request php-fpm)"
say ""
say "## Cost per request (hello world)"
say ""
say "| measure | µs per request |"
say "|---|---:|"
say "| engine floor: startup, execute, shutdown in-process, no I/O (\`tfpm --bench-floor\`) | $floor_us |"
say "| tfpm over FastCGI, one keep-conn connection, sequential (latency, not CPU) | $one_conn_us |"
say "| tfpm CPU time per request at saturation (32 keep-conn connections): $tfpm_cpu_us µs; over the floor | $(awk -v a="$tfpm_cpu_us" -v b="$floor_us" 'BEGIN { printf "%.0f%%", (a - b) / b * 100 }') |"
say "| php-fpm CPU time per request at saturation (all its processes), for reference | $fpm_cpu_us |"

# ---- memory ---------------------------------------------------------------------
for s in "${servers[@]}"; do stop_server "$s"; done
say ""
say "## Memory (KiB, PSS and RSS summed over the server's processes)"
say ""
say "| workers | server | idle PSS | idle RSS | loaded PSS | loaded RSS |"
say "|---:|---|---:|---:|---:|---:|"
for n in $mem_points; do
  for s in tfpm php-fpm; do
    start_server "$s" "$n"
    curl -sf "http://127.0.0.1:$(port_of "$s")/hello.php" >/dev/null
    read -r ipss irss < <(mem_tree "${pid_of[$s]}")
    "$loadgen" --connect "$(sock_of "$s")" --script "$www/page50k.php" --concurrency "$n" --duration 4 >/dev/null 2>&1 &
    lg=$!
    sleep 3
    read -r lpss lrss < <(mem_tree "${pid_of[$s]}")
    wait "$lg" || true
    say "| $n | $s | $ipss | $irss | $lpss | $lrss |"
    stop_server "$s"
  done
done

# ---- idle connections and a 1 GiB response ---------------------------------------
start_server tfpm "$workers"
tpid="${pid_of[tfpm]}"
# The connections live in the worker process, not in the master: RSS is
# summed over both, and the stream's peak is the worker's.
wpid="$(pgrep -P "$tpid" | head -n1)"
read -r _ before < <(mem_tree "$tpid")
coproc IDLE { "$loadgen" --connect "$(sock_of tfpm)" --script "$www/hello.php" --idle 1000 --hold 0; }
read -r ready <&"${IDLE[0]}"
sleep 1
read -r _ after < <(mem_tree "$tpid")
exec {IDLE[1]}>&-
wait "$IDLE_PID" 2>/dev/null || true
say ""
say "## Connections and streaming (tfpm)"
say ""
say "- 1,000 idle keep-alive connections ($ready): RSS $before → $after KiB, $(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.1f", (b - a) / 1000 }') KiB per connection."
echo 5 > "/proc/$wpid/clear_refs" 2>/dev/null || true
base="$(awk '/VmRSS/ { print $2 }' "/proc/$wpid/status")"
"$loadgen" --connect "$(sock_of tfpm)" --script "$www/stream.php" --query mb=1024 --concurrency 1 --requests 1 --warmup 0 > "$run/stream.out" 2>/dev/null
peak="$(awk '/VmHWM/ { print $2 }' "/proc/$wpid/status")"
say "- A 1 GiB response streamed over FastCGI: the worker's RSS $base KiB before, peak $peak KiB during: growth $(( (peak - base) / 1024 )) MiB ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stdout_bytes"])' "$run/stream.out") bytes read)."
stop_server tfpm

if [[ -n "$out" ]]; then
  cp "$report" "$out"
  echo "bench: wrote $out" >&2
fi
