#!/usr/bin/env bash
# Builds PHP 8.2 (ZTS, embed, fpm) from Debian's own source package, with
# tfpm's small patches (ffi/php-patches: thread scalability fixes), and
# installs it into a cache outside the clone, keyed by version, flags and
# patches.
#
# Usage: ffi/build-php.sh            # build if needed, print the php-config path
# Env:   TFPM_PHP_CACHE   cache root (default /var/cache/tfpm/php)
#        TFPM_PHP_JOBS    make -j (default: nproc)
# Needs root on Debian 12 (installs build dependencies with apt-get).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${TFPM_PHP_CACHE:-/var/cache/tfpm/php}"
jobs="${TFPM_PHP_JOBS:-$(nproc)}"
src_pkg="php8.2"

log() { echo "build-php: $*" >&2; }

# The configure flags; the cache key hashes this list, so any change rebuilds.
configure_flags() {
  cat <<'FLAGS'
--enable-embed=shared
--enable-zts
--enable-zend-max-execution-timers
--disable-zend-signals
--enable-fpm
--disable-cgi
--disable-phpdbg
--enable-opcache
--enable-mbstring
--enable-intl
--enable-gd
--with-freetype
--with-jpeg
--with-webp
--with-mysqli=mysqlnd
--with-pdo-mysql=mysqlnd
--with-mysql-sock=/run/mysqld/mysqld.sock
--with-pdo-sqlite
--with-sqlite3
--with-pgsql
--with-pdo-pgsql
--with-openssl
--with-curl
--with-zlib
--with-zip
--with-sodium
--with-gmp
--with-xsl
--enable-soap
--enable-exif
--with-gettext
--enable-calendar
--enable-bcmath
--enable-sockets
--enable-pcntl
--enable-fileinfo
--with-iconv
FLAGS
}

build_deps=(
  build-essential autoconf bison re2c pkg-config dpkg-dev file patch
  libxml2-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libonig-dev
  libicu-dev libpng-dev libjpeg-dev libwebp-dev libfreetype-dev libzip-dev
  libsodium-dev libgmp-dev libxslt1-dev libpq-dev zlib1g-dev
)

# tfpm's own patches to PHP (ffi/php-patches/*.patch), applied in name order.
patches() { find "$here/php-patches" -name '*.patch' 2>/dev/null | sort; }

# The cache key: the configure flags and the patches' contents.
flags_key() {
  { configure_flags; patches | while read -r p; do cat "$p"; done; } | sha256sum | cut -c1-12
}

apply_patches() {
  local p
  for p in $(patches); do
    log "applying $(basename "$p")"
    patch -p1 --forward --quiet < "$p" >&2 || { log "patch $(basename "$p") does not apply to this PHP source"; exit 1; }
  done
}

# A finished build for these flags, whatever its version, is reused as it is.
cached_build() {
  local key; key="$(flags_key)"
  local d
  for d in "$cache_root"/"$src_pkg"-*-"$key"; do
    if [[ -f "$d/.tfpm-complete" && -x "$d/bin/php-config" ]]; then
      echo "$d"; return 0
    fi
  done
  return 1
}

install_build_deps() {
  local missing=()
  local p
  for p in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing build dependencies: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

codename() { . /etc/os-release && echo "${VERSION_CODENAME}"; }

# Writes deb-src entries that mirror the machine's own deb entries for this
# release (same URIs, suites and components; only the type changes).
add_deb_src() {
  local out=/etc/apt/sources.list.d/tfpm-deb-src.sources
  local rel; rel="$(codename)"
  : > "$out.tmp"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" && "$f" != "$out" ]] || continue
    awk -v rel="$rel" '
      function flush() {
        if (stanza != "" && isdeb && hasrel) { sub(/Types:[^\n]*/, "Types: deb-src", stanza); printf "%s\n", stanza }
        stanza = ""; isdeb = 0; hasrel = 0
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      {
        stanza = stanza $0 "\n"
        if ($1 == "Types:" && $0 ~ /[ \t]deb([ \t]|$)/) isdeb = 1
        if ($1 == "Suites:" && index($0, rel) > 0) hasrel = 1
      }
      END { flush() }
    ' "$f" >> "$out.tmp"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk -v rel="$rel" '$1 == "deb" && index($0, rel) > 0 {
        $1 = ""; print "Types: deb-src"; line = $0
        # one-line form: deb [opts] URI suite comp...
        n = split(line, a, " "); i = 1
        if (a[i] ~ /^\[/) { while (a[i] !~ /\]$/) i++; i++ }
        print "URIs: " a[i]; print "Suites: " a[i+1]
        comps = ""; for (j = i + 2; j <= n; j++) comps = comps " " a[j]
        print "Components:" comps; print ""
      }' /etc/apt/sources.list >> "$out.tmp"
  fi
  if ! cmp -s "$out.tmp" "$out" 2>/dev/null; then
    mv "$out.tmp" "$out"
    log "wrote deb-src entries to $out"
  else
    rm -f "$out.tmp"
  fi
  apt-get update -qq
}

# Tries each listed source version, newest first, until one downloads.
fetch_source() {
  local work="$1"
  local versions
  versions="$(apt-cache showsrc "$src_pkg" | awk '/^Version:/ {print $2}' | sort -rV | uniq)"
  [[ -n "$versions" ]] || { log "no source package $src_pkg listed in apt"; exit 1; }
  local v
  for v in $versions; do
    log "fetching $src_pkg=$v"
    rm -rf "$work"; mkdir -p "$work"
    if (cd "$work" && apt-get source -qq "$src_pkg=$v" >&2); then
      echo "$v"; return 0
    fi
    log "version $v did not download, trying the next one"
  done
  log "no version of $src_pkg could be downloaded"; exit 1
}

build() {
  install_build_deps
  add_deb_src
  local work; work="$(mktemp -d /var/tmp/tfpm-php-src.XXXXXX)"
  local version; version="$(fetch_source "$work")"
  local srcdir; srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'php8.2-*' | head -n1)"
  local prefix="$cache_root/$src_pkg-${version//[:~]/_}-$(flags_key)"
  log "building PHP $version into $prefix with $jobs jobs"
  rm -rf "$prefix"; mkdir -p "$prefix/etc/conf.d"
  cd "$srcdir"
  apply_patches
  ./buildconf --force >&2
  mapfile -t flags < <(configure_flags)
  CFLAGS="-O2 -g" ./configure --prefix="$prefix" \
    --with-config-file-path="$prefix/etc" \
    --with-config-file-scan-dir="$prefix/etc/conf.d" \
    "${flags[@]}" >"$work/configure.log" 2>&1 || { tail -n 40 "$work/configure.log" >&2; exit 1; }
  make -j"$jobs" >"$work/make.log" 2>&1 || { tail -n 60 "$work/make.log" >&2; exit 1; }
  make install >"$work/install.log" 2>&1 || { tail -n 40 "$work/install.log" >&2; exit 1; }
  cp php.ini-production "$prefix/etc/php.ini-production"
  cp php.ini-development "$prefix/etc/php.ini-development"
  echo "zend_extension=opcache" > "$prefix/etc/conf.d/10-opcache.ini"
  echo "$version" > "$prefix/.tfpm-complete"
  cd /; rm -rf "$work"
  echo "$prefix"
}

main() {
  local dir
  if dir="$(cached_build)"; then
    log "using cached PHP in $dir"
  else
    mkdir -p "$cache_root"
    dir="$(build)"
  fi
  echo "$dir/bin/php-config"
}

main "$@"
