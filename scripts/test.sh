#!/usr/bin/env bash
# Runs every test: installs what is missing, builds PHP 8.4 and 8.2 when the
# cache has no build of them yet, then lints and runs the whole workspace's
# tests (unit, FastCGI clients, nginx end to end, Docker) on PHP 8.4, the
# default, PHP 8.2's share of them (TFPM_82_TESTS: the engine and PHP's
# patched bugs, the thread pool, differential, opcache, ini, worker,
# handover, pcntl, status page, slowlog, nginx, php-fpm suite, PECL
# extension, framework app and php-src .phpt tests, built into
# target/php8.2),
# and fuzzes the protocol layer (scripts/fuzz.sh, TFPM_FUZZ_SECONDS per
# target, default 60). Every part runs even when an earlier one failed; the
# run fails if any did.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$(dirname "$here")"

"$here/install-deps.sh"
. "$here/env.sh"
php82_config="$(tfpm_build_php 8.2)"
echo "test: PHP from $PHP_PREFIX, and 8.2 from $("$php82_config" --prefix)" >&2

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?

# PHP 8.2, still built until its end of support: the tests nearest the
# engine and php-fpm's behaviour, with php-src's own .phpt tests.
tests_82=(${TFPM_82_TESTS:-engine engine_patches thread_pool differential opcache ini_overrides workers handover worker_mode pcntl fpm_suite phpt extensions status status_page slowlog cgi_fcgi nginx frameworks})
echo "test: PHP 8.2: ${tests_82[*]}" >&2
PHP_CONFIG="$php82_config" CARGO_TARGET_DIR=target/php8.2 \
  cargo test --locked --no-fail-fast -p tfpm "${tests_82[@]/#/--test=}" 2>&1 | tee -a "$log" || status=$?

# A short fuzzing pass over the protocol layer; a crash fails the run.
"$here/fuzz.sh" "${TFPM_FUZZ_SECONDS:-60}" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
