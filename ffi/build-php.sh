#!/usr/bin/env bash
# Builds PHP 8.4 (the default) or 8.2 (ZTS, embed, fpm) from Debian's own
# source package, with tfpm's small patches for that version
# (ffi/php-patches/<version>: thread scalability and lifecycle fixes), and
# installs it into a cache outside the clone, keyed by version, flags and
# patches.
#
# Usage: ffi/build-php.sh [8.4|8.2]  # build if needed, print the php-config path
#        ffi/build-php.sh --source 8.4|8.2 DEBIAN-VERSION
#                         # print the directory of that version's unpatched
#                         # source tree (php-src's tests), fetching it if needed
# Env:   TFPM_PHP_VERSION PHP version when no argument is given (default 8.4)
#        TFPM_PHP_CACHE   cache root (default /var/cache/tfpm/php)
#        TFPM_PHP_PREFIX  install into exactly this prefix instead of the
#                         cache (the Debian package's and the Docker image's
#                         /usr/lib/tfpm/php<version>)
#        TFPM_PHP_INI_DIR where this PHP looks for php.ini and conf.d/
#                         (default <prefix>/etc; the package's is /etc/tfpm)
#        TFPM_PHP_JOBS    make -j (default: nproc)
# Needs root on Debian 12 (installs build dependencies with apt-get).
#
# Each version's source comes from the Debian release that ships it: 8.2
# from Debian 12 (bookworm), 8.4 from Debian 13 (trixie). For a release
# other than the machine's, the script adds deb-src entries only, plus an
# apt pin, so that no binary package is ever installed from that release.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${TFPM_PHP_CACHE:-/var/cache/tfpm/php}"
jobs="${TFPM_PHP_JOBS:-$(nproc)}"
source_only=""
if [[ "${1:-}" == --source ]]; then
  [[ $# -eq 3 ]] || { echo "usage: ffi/build-php.sh --source 8.4|8.2 DEBIAN-VERSION" >&2; exit 2; }
  source_only="$3"
  shift
fi
php_version="${1:-${TFPM_PHP_VERSION:-8.4}}"

# The Debian release whose source package is built for each PHP version.
case "$php_version" in
  8.2) suite=bookworm ;;
  8.4) suite=trixie ;;
  *) echo "build-php: unsupported PHP version '$php_version' (choose 8.2 or 8.4)" >&2; exit 2 ;;
esac
src_pkg="php$php_version"
fixed_prefix="${TFPM_PHP_PREFIX:-}"
ini_dir_setting="${TFPM_PHP_INI_DIR:-}"
patch_dir="$here/php-patches/$php_version"

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
  build-essential autoconf bison re2c pkg-config dpkg-dev file patch libtool
  libxml2-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libonig-dev
  libicu-dev libpng-dev libjpeg-dev libwebp-dev libfreetype-dev libzip-dev
  libsodium-dev libgmp-dev libxslt1-dev libpq-dev zlib1g-dev
)

# The fallback when no listed version of the source package downloads (an
# index may list uploads whose files the mirror's pool lacks): one upload per
# PHP version, pinned here with the SHA-256 of its .dsc and of the files that
# .dsc lists (the sums below are the .dsc's own Checksums-Sha256).
pinned_version() {
  case "$php_version" in
    8.4) echo "8.4.16-1" ;;
    *) return 1 ;;
  esac
}

pinned_sums() {
  case "$php_version" in
    8.4) cat <<'SUMS'
9f2172c07beb78b91fe6388c88343c82d38552f3955def7e0706eb09f6311840  php8.4_8.4.16-1.dsc
f66f8f48db34e9e29f7bfd6901178e9cf4a1b163e6e497716dfcb8f88bcfae30  php8.4_8.4.16.orig.tar.xz
17b3a94f2bf7e0a1c2d8b34a6bf3cf046556830b3bb00c91e3c157bc3b164608  php8.4_8.4.16-1.debian.tar.xz
SUMS
    ;;
    *) return 1 ;;
  esac
}

# Where the unpatched source tree of a Debian version is kept (php-src's own
# tests run from it: scripts/php-src-tree.sh, scripts/php-fpm-suite.sh).
source_cache() { echo "$(dirname "$cache_root")/php-src-${1//[:~]/_}"; }

# Keeps a copy of the unpacked, unpatched source tree $1 of Debian version $2.
save_source_tree() {
  local dest; dest="$(source_cache "$2")"
  [[ -f "$dest/.complete" ]] && return 0
  rm -rf "$dest.tmp"
  cp -a "$1" "$dest.tmp"
  echo "$2" > "$dest.tmp/.complete"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
  log "kept the unpatched source tree of $2 in $dest"
}

# tfpm's own patches to this PHP version (ffi/php-patches/<version>/*.patch),
# applied in name order.
patches() { find "$patch_dir" -maxdepth 1 -name '*.patch' 2>/dev/null | sort; }

# The cache key: the configure flags and the patches' contents. The version
# built is part of the directory's name (php8.4-<version>-<key>).
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

# Where the build in prefix $1 looks for php.ini and conf.d/.
ini_dir() { echo "${ini_dir_setting:-$1/etc}"; }

# What a finished build in a fixed prefix was built with: the cache key and
# the ini directory (a cached build's directory name carries the key).
fixed_build_stamp() { echo "$(flags_key) $(ini_dir "$fixed_prefix")"; }

# The build in TFPM_PHP_PREFIX, if it is finished, of this version, and was
# made with these flags, patches and ini directory.
fixed_build() {
  local d="$fixed_prefix"
  [[ -f "$d/.tfpm-complete" && -x "$d/bin/php-config" ]] || return 1
  [[ "$("$d/bin/php-config" --version)" == "$php_version".* ]] || return 1
  [[ "$(cat "$d/.tfpm-stamp" 2>/dev/null)" == "$(fixed_build_stamp)" ]] || return 1
  echo "$d"
}

# The newest finished build of the requested PHP version for these flags and
# patches. A build of another version never qualifies: its directory is named
# after its source package, and its php-config must report this version too.
cached_build() {
  [[ -z "$fixed_prefix" ]] || { fixed_build; return; }
  local key; key="$(flags_key)"
  local d found
  found="$(
    for d in "$cache_root"/"$src_pkg"-*-"$key"; do
      [[ -f "$d/.tfpm-complete" && -x "$d/bin/php-config" ]] || continue
      [[ "$("$d/bin/php-config" --version)" == "$php_version".* ]] || continue
      echo "$(head -n1 "$d/.tfpm-complete") $d"
    done | sort -rV -k1,1 | head -n1 | cut -d' ' -f2-
  )"
  [[ -n "$found" ]] || return 1
  echo "$found"
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

# The deb-src entries for $suite: the machine's own release's in
# tfpm-deb-src.sources, another release's in a file of its own.
deb_src_file() {
  if [[ "$suite" == "$(codename)" ]]; then
    echo /etc/apt/sources.list.d/tfpm-deb-src.sources
  else
    echo "/etc/apt/sources.list.d/tfpm-deb-src-$suite.sources"
  fi
}

# Writes deb-src entries for $suite that mirror the machine's own deb entries
# for its release (same URIs and components; only the type changes, and for
# another release the suites' release name: bookworm-security becomes
# trixie-security).
add_deb_src() {
  local out; out="$(deb_src_file)"
  local rel; rel="$(codename)"
  : > "$out.tmp"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" && "$f" != /etc/apt/sources.list.d/tfpm-deb-src* ]] || continue
    awk -v rel="$rel" -v to="$suite" '
      function flush() {
        if (stanza != "" && isdeb && hasrel) { sub(/Types:[^\n]*/, "Types: deb-src", stanza); printf "%s\n", stanza }
        stanza = ""; isdeb = 0; hasrel = 0
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      {
        if ($1 == "Suites:" && index($0, rel) > 0) { hasrel = 1; if (to != rel) gsub(rel, to) }
        stanza = stanza $0 "\n"
        if ($1 == "Types:" && $0 ~ /[ \t]deb([ \t]|$)/) isdeb = 1
      }
      END { flush() }
    ' "$f" >> "$out.tmp"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk -v rel="$rel" -v to="$suite" '$1 == "deb" && index($0, rel) > 0 {
        $1 = ""; print "Types: deb-src"; line = $0
        # one-line form: deb [opts] URI suite comp...
        n = split(line, a, " "); i = 1
        if (a[i] ~ /^\[/) { while (a[i] !~ /\]$/) i++; i++ }
        s = a[i+1]; if (to != rel) gsub(rel, to, s)
        print "URIs: " a[i]; print "Suites: " s
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
  [[ "$suite" == "$rel" ]] || pin_source_only "$out"
  apt-get update -qq
}

# Forbids binary packages from the suites of another release's deb-src
# entries (priority -1: never installed), so that only sources come from it.
pin_source_only() {
  local list="$1"
  local out="/etc/apt/preferences.d/tfpm-deb-src-$suite"
  {
    echo "# Written by tfpm's ffi/build-php.sh: $suite is listed for source packages"
    echo "# only ($list). Never install a binary package from it."
    awk '$1 == "Suites:" { for (i = 2; i <= NF; i++) print $i }' "$list" | sort -u |
      while read -r s; do printf '\nPackage: *\nPin: release n=%s\nPin-Priority: -1\n' "$s"; done
  } > "$out.tmp"
  if ! cmp -s "$out.tmp" "$out" 2>/dev/null; then
    mv "$out.tmp" "$out"
    log "pinned $suite to source packages only in $out"
  else
    rm -f "$out.tmp"
  fi
}

# The URIs of the deb-src entries for $suite itself (not its -updates or
# -security suites): the mirror whose pool the pinned fallback comes from.
pool_uris() {
  awk -v s="$suite" '
    function flush() { if (hit) print uris; uris = ""; hit = 0 }
    /^[ \t]*$/ { flush(); next }
    $1 == "URIs:" { for (i = 2; i <= NF; i++) uris = uris " " $i }
    $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
    END { flush() }
  ' "$(deb_src_file)" | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# Tries each listed source version, newest first, until one downloads; then
# the version pinned in this script.
fetch_source() {
  local work="$1"
  local versions
  versions="$(apt-cache showsrc "$src_pkg" 2>/dev/null | awk '/^Version:/ {print $2}' | sort -rV | uniq)"
  [[ -n "$versions" ]] || log "no source package $src_pkg listed in apt"
  local v
  for v in $versions; do
    log "fetching $src_pkg=$v"
    rm -rf "$work"; mkdir -p "$work"
    if (cd "$work" && apt-get source -qq "$src_pkg=$v" >&2); then
      echo "$v"; return 0
    fi
    log "version $v did not download, trying the next one"
  done
  if v="$(pinned_version)"; then
    log "=================================================================="
    log "WARNING: no listed version of $src_pkg could be downloaded."
    log "WARNING: falling back to the version pinned in this script: $v"
    log "=================================================================="
    rm -rf "$work"; mkdir -p "$work"
    fetch_pinned_source "$work" "$v" && { echo "$v"; return 0; }
  fi
  log "no version of $src_pkg could be downloaded"; exit 1
}

# Downloads the pinned upload's files from the pool of the mirror that the
# deb-src entries name, checks them against the pinned SHA-256 sums, and
# unpacks the source (dpkg-source applies Debian's own patches, as apt-get
# source does).
fetch_pinned_source() {
  local work="$1" v="$2"
  local uri f
  for uri in $(pool_uris); do
    local ok=1
    while read -r _ f; do
      log "downloading $f from the pool of $uri"
      /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file \
        "$uri/pool/main/p/$src_pkg/$f" "$work/$f" >&2 || { ok=0; break; }
    done < <(pinned_sums)
    ((ok)) || { log "the pool of $uri lacks $f"; continue; }
    if ! (cd "$work" && pinned_sums | sha256sum --check --strict >&2); then
      log "checksum mismatch for $src_pkg $v from $uri: not using it"; continue
    fi
    log "checksums of $src_pkg $v verified against the sums pinned in this script"
    (cd "$work" && dpkg-source -x "$(pinned_sums | awk '$2 ~ /\.dsc$/ {print $2}')" >&2) || exit 1
    return 0
  done
  return 1
}

# Fetches exactly Debian version $2 into $1: from apt, else, for the version
# pinned here, from the mirror's pool with the pinned checksums.
fetch_version() {
  local work="$1" v="$2"
  rm -rf "$work"; mkdir -p "$work"
  log "fetching $src_pkg=$v"
  (cd "$work" && apt-get source -qq "$src_pkg=$v" >&2) && return 0
  if [[ "$v" == "$(pinned_version)" ]]; then
    log "WARNING: $src_pkg=$v did not download from apt; using the pinned files"
    rm -rf "$work"; mkdir -p "$work"
    fetch_pinned_source "$work" "$v" && return 0
  fi
  log "cannot fetch $src_pkg=$v"; exit 1
}

# Prints the directory of Debian version $1's unpatched source tree, fetching
# and caching it first if needed.
source_tree() {
  local v="$1" dest; dest="$(source_cache "$1")"
  if [[ ! -f "$dest/.complete" ]]; then
    add_deb_src
    local work; work="$(mktemp -d /var/tmp/tfpm-php-src.XXXXXX)"
    fetch_version "$work" "$v"
    local srcdir; srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$src_pkg-*" | head -n1)"
    [[ -n "$srcdir" ]] || { log "no source tree in $work"; exit 1; }
    mkdir -p "$(dirname "$dest")"
    save_source_tree "$srcdir" "$v"
    rm -rf "$work"
  fi
  echo "$dest"
}

build() {
  install_build_deps
  add_deb_src
  local work; work="$(mktemp -d /var/tmp/tfpm-php-src.XXXXXX)"
  local version; version="$(fetch_source "$work")"
  local srcdir; srcdir="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "$src_pkg-*" | head -n1)"
  local prefix="${fixed_prefix:-$cache_root/$src_pkg-${version//[:~]/_}-$(flags_key)}"
  local ini; ini="$(ini_dir "$prefix")"
  log "building PHP $version into $prefix (php.ini and conf.d/ in $ini) with $jobs jobs"
  clear_prefix "$prefix"
  mkdir -p "$prefix/etc" "$ini/conf.d"
  save_source_tree "$srcdir" "$version"
  cd "$srcdir"
  apply_patches
  ./buildconf --force >&2
  mapfile -t flags < <(configure_flags)
  CFLAGS="-O2 -g" ./configure --prefix="$prefix" \
    --with-config-file-path="$ini" \
    --with-config-file-scan-dir="$ini/conf.d" \
    "${flags[@]}" >"$work/configure.log" 2>&1 || { tail -n 40 "$work/configure.log" >&2; exit 1; }
  make -j"$jobs" >"$work/make.log" 2>&1 || { tail -n 60 "$work/make.log" >&2; exit 1; }
  make install >"$work/install.log" 2>&1 || { tail -n 40 "$work/install.log" >&2; exit 1; }
  cp php.ini-production "$prefix/etc/php.ini-production"
  cp php.ini-development "$prefix/etc/php.ini-development"
  # opcache is a shared extension up to 8.4; from 8.5 on it is built in, and
  # loading it again fails ("Module "Zend OPcache" is already loaded").
  if [[ -f "$("$prefix/bin/php-config" --extension-dir)/opcache.so" ]]; then
    echo "zend_extension=opcache" > "$ini/conf.d/10-opcache.ini"
  fi
  [[ -z "$fixed_prefix" ]] || fixed_build_stamp > "$prefix/.tfpm-stamp"
  echo "$version" > "$prefix/.tfpm-complete"
  rm -f "$prefix/.tfpm-building"
  cd /; rm -rf "$work"
  echo "$prefix"
}

# Empties the install prefix $1 before a build. A fixed prefix is emptied
# only if it is missing, empty or an earlier build's (it has .tfpm-complete
# or .tfpm-building): a wrong TFPM_PHP_PREFIX must never wipe anything else.
clear_prefix() {
  local d="$1"
  if [[ -n "$fixed_prefix" && -d "$d" && -n "$(ls -A "$d")" ]] \
    && [[ ! -e "$d/.tfpm-complete" && ! -e "$d/.tfpm-building" ]]; then
    log "TFPM_PHP_PREFIX $d is not empty and holds no earlier PHP build of tfpm: not using it"
    exit 1
  fi
  rm -rf "$d"; mkdir -p "$d"; : > "$d/.tfpm-building"
}

# Debian's phpize (from its patches) looks for shtool in /usr/bin and for
# libtool's and pkg-config's m4 files under the prefix's share/aclocal, as
# for a PHP installed in /usr. For this install: the shtool that make
# install put in the build dir, and the system's aclocal dir (libtool and
# pkgconf, installed with the build dependencies). Run on every call, so
# that an install cached before this fix gets it too.
fix_phpize() {
  local phpize="$1/bin/phpize"
  [[ -f "$phpize" ]] || return 0
  sed -i -e 's#^aclocaldir=.*#aclocaldir="/usr/share/aclocal"#' \
    -e 's#php\.m4 /usr/bin/shtool #php.m4 shtool #' "$phpize"
}

main() {
  if [[ -n "$source_only" ]]; then
    source_tree "$source_only"; return
  fi
  local dir
  if dir="$(cached_build)"; then
    log "using cached PHP $php_version in $dir"
  else
    mkdir -p "$cache_root"
    dir="$(build)"
  fi
  fix_phpize "$dir"
  echo "$dir/bin/php-config"
}

main "$@"
