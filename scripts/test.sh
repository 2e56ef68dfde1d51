#!/usr/bin/env bash
# Runs every test: installs what is missing, builds PHP when the cache is
# empty, then lints and runs the whole workspace's tests (unit, FastCGI
# clients, nginx end to end) and fuzzes the protocol layer (scripts/fuzz.sh,
# TFPM_FUZZ_SECONDS per target, default 60).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$(dirname "$here")"

"$here/install-deps.sh"
. "$here/env.sh"
echo "test: PHP from $PHP_PREFIX" >&2

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# A short fuzzing pass over the protocol layer; a crash fails the run.
"$here/fuzz.sh" "${TFPM_FUZZ_SECONDS:-60}" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
