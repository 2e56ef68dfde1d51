#!/usr/bin/env bash
# Prints the directory of php-src's source tree for the PHP build in use:
# the same Debian source package version as that build, unpatched, for the
# .phpt runner (fcgi-tests/src/phpt) and scripts/php-fpm-suite.sh. It is
# cached outside the clone (ffi/build-php.sh keeps it when it builds, or
# fetches it here with the same sources and pinned fallback).
#
# Usage: scripts/php-src-tree.sh
# Env:   PHP_CONFIG (else the cached build, via scripts/env.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "php-src-tree: $*" >&2; exit 1; }

if [[ -z "${PHP_CONFIG:-}" ]]; then
  . "$here/env.sh"
fi
prefix="$("$PHP_CONFIG" --prefix)"
[[ -f "$prefix/.tfpm-complete" ]] || die "$prefix has no .tfpm-complete (not a finished ffi/build-php.sh build)"
version="$(head -n1 "$prefix/.tfpm-complete")"
branch="$("$PHP_CONFIG" --version | cut -d. -f1,2)"
tree="$("$here/../ffi/build-php.sh" --source "$branch" "$version")"
[[ -f "$tree/run-tests.php" ]] || die "the source of $version has no run-tests.php"
echo "$tree"
