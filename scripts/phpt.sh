#!/usr/bin/env bash
# Runs php-src's own .phpt tests over FastCGI against php-fpm from our PHP
# build and against tfpm, and reports every regression (a test that passes
# under php-fpm and not under tfpm) and every lost request (fcgi-tests'
# `phpt` runner; see fcgi-tests/src/phpt/suite.rs). The tests come from the
# same Debian source version as the build (scripts/php-src-tree.sh) and run
# in a fresh copy of that tree under target/phpt/src.
#
# Usage: scripts/phpt.sh [--scope ci|full] [--runners N] [--threads N]
#                        [--timeout S] [--seed N] [--slow] [NAME-FILTER]...
#   --scope    full: the scope of issue 15 (Zend, tests/, and 15
#              extensions; the default, and what tests/phpt.rs runs in
#              .ci/run); ci: only Zend/tests and ext/standard/tests
#   --runners  warm-phase runners, each with its own one-thread tfpm (2)
#   --threads  threads of the shuffled phase's tfpm, all kept busy (4)
#   --slow     also run the tests that SKIP_SLOW_TESTS leaves out
# Results (in TFPM_PHPT_OUT, default target/phpt): results.tsv (every
# test), outputs/ (each failed run's output), regressions/, tfpm-N.log, and
# EXPECTED.md (fcgi-tests/phpt/EXPECTED-<version>.md, for the build's PHP
# version, as this run says it should be). Exits non-zero on a regression, a
# lost request, a dead worker, or a disagreement with that list.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0
fi
. "$here/env.sh"
tree="$("$here/php-src-tree.sh")"
cargo build --locked --bin tfpm
cargo build --locked -p fcgi-tests --bin phpt
out="${TFPM_PHPT_OUT:-target/phpt}"
rm -rf "$out/src"
mkdir -p "$out"
cp -a "$tree" "$out/src"
branch="$("$PHP_CONFIG" --version | cut -d. -f1,2)"
bin="${CARGO_TARGET_DIR:-target}/debug"
exec "$bin/phpt" --src "$out/src" --tfpm "$bin/tfpm" \
  --php "$PHP_PREFIX/bin/php" --expected "fcgi-tests/phpt/EXPECTED-$branch.md" --out "$out" "$@"
