#!/usr/bin/env bash
# Prints the directory of php-src's source tree for the PHP build in use,
# unpacked from the same Debian source package version as that build and
# cached under /var/cache/tfpm/php-src-<version>/ (never in the repo), for
# the .phpt runner (fcgi-tests/src/phpt). The first call unpacks it: from
# the source package the build fetched, when it is still at hand and its
# checksums match apt's index, else with apt-get source.
#
# Usage: scripts/php-src-tree.sh
# Env:   PHP_CONFIG (else the cached build, via scripts/env.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "php-src-tree: $*" >&2; }
die() { log "$*"; exit 1; }

if [[ -z "${PHP_CONFIG:-}" ]]; then
  . "$here/env.sh"
fi
prefix="$("$PHP_CONFIG" --prefix)"
[[ -f "$prefix/.tfpm-complete" ]] || die "$prefix has no .tfpm-complete (not a finished ffi/build-php.sh build)"
version="$(head -n1 "$prefix/.tfpm-complete")"
branch="$("$PHP_CONFIG" --version | cut -d. -f1,2)"
pkg="php$branch"
cache="/var/cache/tfpm/php-src-${version//[:~]/_}"

if [[ -f "$cache/.complete" ]]; then
  echo "$cache"; exit 0
fi

# The sha256 that apt's (signed) source index gives for file $1 of $version.
apt_sha256() {
  apt-cache showsrc "$pkg" 2>/dev/null | awk -v v="$version" -v f="$1" '
    /^Version:/ { cur = $2 }
    /^Checksums-Sha256:/ { in_sums = 1; next }
    /^[^ ]/ { in_sums = 0 }
    in_sums && cur == v && $3 == f { print $1; exit }'
}

# A .dsc of this version whose files are at hand and match apt's checksums.
local_source() {
  local dsc="${pkg}_${version#*:}.dsc" d f sum want ok
  for d in "${TFPM_PHP_SRC_DIR:-}" /var/tmp/tfpm-php-src.*; do
    [[ -n "$d" && -f "$d/$dsc" ]] || continue
    ok=1
    for f in "$dsc" $(awk '/^Files:/ {s=1; next} /^[^ ]/ {s=0} s {print $3}' "$d/$dsc"); do
      want="$(apt_sha256 "$f")"
      sum="$(sha256sum "$d/$f" 2>/dev/null | cut -d' ' -f1)"
      [[ -n "$want" && "$sum" == "$want" ]] || { ok=0; break; }
    done
    ((ok)) && { echo "$d/$dsc"; return 0; }
  done
  return 1
}

work="$(mktemp -d /var/tmp/tfpm-php-src-tree.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if dsc="$(local_source)"; then
  log "unpacking $dsc (checksums match apt's index)"
  (cd "$work" && dpkg-source -q -x "$dsc" src >"$work/unpack.log" 2>&1) \
    || { cat "$work/unpack.log" >&2; die "dpkg-source -x $dsc failed"; }
else
  log "fetching the source package $pkg=$version"
  (cd "$work" && apt-get source -qq "$pkg=$version" >"$work/unpack.log" 2>&1) \
    || cat "$work/unpack.log" >&2
  src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" | head -n1)"
  [[ -n "$src" ]] || die "cannot get the source of $pkg=$version (deb-src entries? ffi/build-php.sh writes them)"
  mv "$src" "$work/src"
fi
[[ -f "$work/src/run-tests.php" ]] || die "the source of $version has no run-tests.php"
mkdir -p "$(dirname "$cache")"
rm -rf "$cache.tmp"
mv "$work/src" "$cache.tmp"
echo "$version" > "$cache.tmp/.complete"
rm -rf "$cache"; mv "$cache.tmp" "$cache"
log "cached $(find "$cache" -name '*.phpt' | wc -l) tests in $cache"
echo "$cache"
