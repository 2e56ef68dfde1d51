#!/usr/bin/env bash
# Two tfpm binaries (before and after a change) side by side with php-fpm
# from the same PHP build: hello world straight over FastCGI with kept
# connections, the three servers taking turns within each round. Prints,
# per round and server, req/s, p99 and the CPU time the server's processes
# spent per request; then, per binary, glibc malloc calls and system calls
# per request in the worker process.
#
# Usage: bench/compare.sh BEFORE AFTER [--conns "1 4 32"] [--rounds 3]
#                         [--secs 10] [--threads 8] [--no-counts]
# BEFORE and AFTER are tfpm binaries (build one from another checkout with
# CARGO_TARGET_DIR=... cargo build --release).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

before="$(realpath "$1")"; after="$(realpath "$2")"; shift 2
conns_list="1 4 32"; rounds=3; secs=10; threads=8; counts=yes
while (($#)); do
  case "$1" in
    --conns) conns_list="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --secs) secs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --no-counts) counts=no; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
. ./scripts/env.sh
cargo build --release --locked -q -p fcgi-load
loadgen="$root/target/release/fcgi-load"
hello="$here/www/hello.php"

run="$(mktemp -d /tmp/tfpm-compare.XXXXXX)"
. "$here/lib.sh"
declare -A pid_of
cleanup() { for p in "${pid_of[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT
ini="$run/php.ini"
{ cat "$PHP_PREFIX/etc/php.ini-production"; echo "opcache.enable=1"; } > "$ini"
fpm_conf fpm "$run/php-fpm.sock" "$threads"

start() { # name
  case "$1" in
    before) "$before" --listen "$run/before.sock" --threads "$threads" -c "$ini" --log-level warn 2>>"$run/before.log" & ;;
    after) "$after" --listen "$run/after.sock" --threads "$threads" -c "$ini" --log-level warn 2>>"$run/after.log" & ;;
    php-fpm) "$PHP_PREFIX/sbin/php-fpm" -y "$run/fpm.conf" -c "$ini" -R & ;;
  esac
  pid_of[$1]=$!
  for _ in $(seq 1 200); do [[ -S "$run/$1.sock" ]] && return 0; sleep 0.05; done
  echo "compare: $1 did not start" >&2; exit 1
}
stop() { kill "${pid_of[$1]}" 2>/dev/null || true; wait "${pid_of[$1]}" 2>/dev/null || true; unset "pid_of[$1]"; }

# CPU time (clock ticks, user + system) of a process and its children.
ticks() {
  local all=("$1") p
  while read -r p; do all+=("$p"); done < <(pgrep -P "$1" || true)
  for p in "${all[@]}"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ t += $1 } END { print t }'
}
load() { # server conns seconds
  "$loadgen" --connect "$run/$1.sock" --script "$hello" --concurrency "$2" --duration "$3" --warmup 0 > "$run/lg.json" 2>/dev/null
}

servers=(before after php-fpm)
for s in "${servers[@]}"; do start "$s"; load "$s" 4 1; done
echo "## Hello world over FastCGI, kept connections ($threads threads or children, $(date -u +%F), $(nproc) cores, PHP $("$PHP_CONFIG" --version))"
echo
echo "| connections | round | server | req/s | p99 ms | CPU µs per request |"
echo "|---:|---:|---|---:|---:|---:|"
for conns in $conns_list; do
  for round in $(seq 1 "$rounds"); do
    for s in "${servers[@]}"; do
      t0="$(ticks "${pid_of[$s]}")"
      load "$s" "$conns" "$secs"
      t1="$(ticks "${pid_of[$s]}")"
      python3 -c 'import json,os,sys; d=json.load(open(sys.argv[1])); t=(int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK"); print("| %s | %s | %s | %.0f | %.2f | %.1f |" % (sys.argv[4], sys.argv[5], sys.argv[6], d["rps"], d["p99_ms"], t*1e6/max(d["requests"],1)))' \
        "$run/lg.json" "$t0" "$t1" "$conns" "$round" "$s"
    done
  done
done
for s in "${servers[@]}"; do stop "$s"; done
[[ "$counts" == yes ]] || exit 0

# ---- per request: malloc calls (a perf probe) and system calls (strace) -------
perf probe -q -x "$(ldconfig -p | awk '/libc.so.6 .*x86-64/ { print $NF; exit }')" --add malloc 2>/dev/null || true
echo
echo "| binary | malloc calls per request | system calls per request | of them futex |"
echo "|---|---:|---:|---:|"
for s in before after; do
  start "$s"
  worker="$(pgrep -P "${pid_of[$s]}" | head -1)"
  "$loadgen" --connect "$run/$s.sock" --script "$hello" --concurrency 8 --requests 2000 --warmup 0 >/dev/null 2>&1
  perf stat -e probe_libc:malloc -p "$worker" -o "$run/perf.out" & probe=$!
  sleep 0.5 # perf attaches
  "$loadgen" --connect "$run/$s.sock" --script "$hello" --concurrency 8 --requests 20000 --warmup 0 >/dev/null 2>&1
  kill -INT "$probe"; wait "$probe" || true
  strace -c -f -p "$worker" -o "$run/strace.out" 2>/dev/null & tracer=$!
  sleep 0.5 # strace attaches
  "$loadgen" --connect "$run/$s.sock" --script "$hello" --concurrency 8 --requests 5000 --warmup 0 >/dev/null 2>&1
  kill -INT "$tracer"; wait "$tracer" || true
  mallocs="$(awk '/probe_libc:malloc/ { gsub(",", "", $1); print $1 }' "$run/perf.out")"
  read -r calls futex < <(awk '$NF == "total" { t = $4 } $NF == "futex" { f = $4 } END { print t + 0, f + 0 }' "$run/strace.out")
  awk -v s="$s" -v m="$mallocs" -v c="$calls" -v f="$futex" \
    'BEGIN { printf "| %s | %.1f | %.1f | %.1f |\n", s, m / 20000, c / 5000, f / 5000 }'
  stop "$s"
done
