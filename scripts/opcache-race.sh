#!/usr/bin/env bash
# The opcache restart race under load (PHP patch 0003): runs tests/opcache.rs's
# reset-and-invalidate test RUNS times (default 200) while three busy loops
# keep the cores loaded, and counts the runs that fail. Prints one line:
# "opcache race: PHP <version>: <passed>/<runs> passed".
#
# Usage: scripts/opcache-race.sh [RUNS]
# Env:   PHP_CONFIG or TFPM_PHP_VERSION (which PHP; via scripts/env.sh),
#        CARGO_TARGET_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$(dirname "$here")"
runs="${1:-200}"

. "$here/env.sh"
bin="$(cargo test --locked -p tfpm --test opcache --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*opcache-[^"]*\)".*/\1/p' | tail -n1)"
[[ -x "$bin" ]] || { echo "opcache-race: cannot build tests/opcache.rs" >&2; exit 1; }

busy=()
trap 'kill "${busy[@]}" 2>/dev/null || true' EXIT
for _ in 1 2 3; do
  (while :; do :; done) &
  busy+=($!)
done

failed=0
for ((i = 1; i <= runs; i++)); do
  if ! "$bin" --exact reset_and_invalidate_are_safe_while_every_thread_runs_scripts \
      >"${TMPDIR:-/tmp}/opcache-race.log" 2>&1; then
    failed=$((failed + 1))
    echo "opcache-race: run $i failed:" >&2
    grep -m3 -E "panicked|corrupted|Segmentation|signal" "${TMPDIR:-/tmp}/opcache-race.log" >&2 || true
  fi
done
echo "opcache race: PHP $("$PHP_CONFIG" --version): $((runs - failed))/$runs passed"
((failed == 0))
