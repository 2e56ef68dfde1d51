#!/usr/bin/env bash
# Fuzzes the FastCGI protocol layer: runs each cargo-fuzz target in fuzz/
# for SECONDS (default 60) under AddressSanitizer, starting from its
# committed corpus (fuzz/corpus/<target>, left untouched: new inputs go to a
# scratch directory). Fails if any target crashes, leaks, times out or goes
# over its memory limits; the failing input is kept in fuzz/artifacts/.
# Ends with one line per target: executions, time and crashes.
# Usage: scripts/fuzz.sh [SECONDS]. Stable Rust is enough: RUSTC_BOOTSTRAP=1
# lets cargo-fuzz pass its nightly-only flags.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$(dirname "$here")"

seconds="${1:-60}"
targets=(record_decoder nv_parser conn_state)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
cargo fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
summary=()
for target in "${targets[@]}"; do
  echo "fuzz: running $target for $seconds s" >&2
  mkdir "$scratch/$target"
  log="$scratch/$target.log"
  start=$SECONDS
  rc=0
  # libFuzzer adds new inputs to the first directory only.
  cargo fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  elapsed=$((SECONDS - start))
  execs="$(awk '/^stat::number_of_executed_units:/ { n = $NF } END { print n + 0 }' "$log")"
  crashes=0
  if ((rc != 0)); then
    crashes=1
    status=1
    # From the panic or sanitizer report on, without stack frames.
    report="$(awk '/panicked at|==ERROR/ { on = 1 } on' "$log" | grep -v -E '^ +(#[0-9]+ |at )' || true)"
    if [[ -n "$report" ]]; then echo "$report" >&2; else tail -n 40 "$log" >&2; fi
  fi
  summary+=("fuzz: $target $execs execs in $elapsed s, $crashes crashes")
done
printf '%s\n' "${summary[@]}"
exit "$status"
