#!/usr/bin/env bash
# Builds PECL extensions against tfpm's PHP (ZTS), installs each .so into
# the build's extension dir and writes its ini file into the build's scan
# dir, which tfpm and the build's php CLI both read. Debian's binary php-*
# extensions are built for the non-thread-safe PHP and cannot load into
# tfpm's.
#
# Usage: scripts/php-ext.sh [--ini-dir DIR] NAME|SOURCE...
#   NAME       redis apcu igbinary msgpack memcached imagick xdebug pcov,
#              from Debian's source packages
#   SOURCE     a PECL tarball (redis-6.2.0.tgz) or an unpacked source dir
#   --ini-dir  write the ini files there instead of the build's scan dir
#              (load them with PHP_INI_SCAN_DIR=DIR)
# Env:   PHP_CONFIG, TFPM_PHP_VERSION  which PHP build (as scripts/env.sh)
#
# Installed by the Debian package (and in the Docker image) as
# tfpm-php-ext, for the PHP in /usr/lib/tfpm: `tfpm-php-ext redis`, or in a
# Dockerfile FROM tfpm's image, `RUN tfpm-php-ext ./redis-6.2.0.tgz`.
#
# The source comes from the deb-src entries ffi/build-php.sh added (8.2:
# bookworm's, 8.4: trixie's too), newest version first, then older ones
# when the mirror lacks the files.
# A plain PECL tarball also builds by hand:
#   tar xf redis-6.2.0.tgz && cd redis-6.2.0
#   "$(dirname "$PHP_CONFIG")/phpize" && ./configure --with-php-config="$PHP_CONFIG"
#   make && make install
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ini_dir=""
if [[ "${1:-}" == --ini-dir ]]; then
  ini_dir="$2"
  shift 2
fi
[[ $# -gt 0 ]] || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
if [[ -f "$here/env.sh" ]]; then
  . "$here/env.sh"
else
  # Installed (tfpm-php-ext): the PHP of the package.
  PHP_CONFIG="${PHP_CONFIG:-$(command -v tfpm-php-config)}"
  PHP_PREFIX="$("$PHP_CONFIG" --prefix)"
fi
ini_dir="${ini_dir:-$("$PHP_CONFIG" --ini-dir)}"
branch="$("$PHP_CONFIG" --version | cut -d. -f1,2)"
case "$branch" in
  8.2) suite=bookworm ;;
  8.4) suite=trixie ;;
  *) suite="" ;;
esac

log() { echo "php-ext: $*" >&2; }

# Debian's source package of each extension.
source_package() {
  case "$1" in
    redis | apcu | igbinary | msgpack | memcached | imagick | pcov) echo "php-$1" ;;
    xdebug) echo xdebug ;;
    *) log "unknown extension '$1' (known: redis apcu igbinary msgpack memcached imagick xdebug pcov)"; exit 2 ;;
  esac
}

# The libraries an extension links against (Debian's -dev packages).
dev_packages() {
  case "$1" in
    memcached) echo libmemcached-dev zlib1g-dev ;;
    imagick) echo libmagickwand-dev ;;
  esac
}

# What loads it: xdebug is a Zend extension.
directive() {
  case "$1" in
    xdebug) echo zend_extension ;;
    *) echo extension ;;
  esac
}

# configure's flags for an extension, beyond --with-php-config.
configure_flags() {
  case "$1" in
    memcached) echo --disable-memcached-sasl ;;
  esac
}

install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# The versions of source package $1 the deb-src entries list, newest first.
versions() {
  apt-cache showsrc "$1" 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -u -r -V
}

# The directory of the extension's own source in what apt-get source
# unpacked: the one named after the upstream version (PECL packages carry
# package.xml beside it, and some carry a second, older copy), else the
# shallowest with a config.m4.
source_dir() {
  local upstream="${1#*:}"
  upstream="${upstream%%[+-]*}"
  local named
  named="$(find . -mindepth 2 -maxdepth 2 -type d -name "*-$upstream" | head -n1)"
  if [[ -n "$named" && -f "$named/config.m4" ]]; then
    echo "$named"
  else
    find . -mindepth 2 -maxdepth 3 -name config.m4 -printf '%d %h\n' | sort -n | head -n1 | cut -d' ' -f2
  fi
}

# Fetches the source of $1 into the current directory; its path on stdout.
fetch() {
  local pkg="$1" version
  for version in $(versions "$pkg"); do
    if apt-get source --only-source -qq "$pkg=$version" >/dev/null 2>&1; then
      log "$pkg $version"
      source_dir "$version"
      return
    fi
    log "$pkg $version: not on the mirror, trying an older one"
    rm -rf ./*
  done
  log "no version of $pkg could be fetched (are deb-src entries for $suite there? ffi/build-php.sh $branch adds them; or give a PECL tarball)"
  exit 1
}

# The extension's name in a PECL source tree: PHP_NEW_EXTENSION's first
# argument in its config.m4.
ext_name() {
  sed -n 's/.*PHP_NEW_EXTENSION([[:space:]]*\[\{0,1\}\([A-Za-z0-9_]*\).*/\1/p' config.m4 | head -n1
}

# Unpacks or copies source $1 (a tarball or a directory) into the current
# directory; the path of the tree with config.m4 on stdout.
unpack() {
  local src="$1"
  if [[ -d "$src" ]]; then
    cp -a "$src" ./src
  else
    mkdir src && tar -xf "$src" -C src
  fi
  find src -maxdepth 3 -name config.m4 -printf '%d %h\n' | sort -n | head -n1 | cut -d' ' -f2
}

# Xdebug 3.2.0 (bookworm's) under threads, fixed as 3.2.1 and later fix
# it: a thread started after module start-up kept the globals' default
# mode, every mode at once (xdebug.mode ignored: the profiler wrote a file
# each request; Xdebug issue #2144), and a compressed file was closed twice
# (gzclose, then fclose of the same descriptor), which closed whatever
# another thread had opened under that number in between, such as its
# redis socket.
xdebug_320_patch() {
  cat <<'PATCH'
--- a/src/lib/file.c
+++ b/src/lib/file.c
@@ -82,7 +82,8 @@
 
 		file->type = XDEBUG_FILE_TYPE_GZ;
 		file->fp.normal = tmp_file;
-		file->fp.gz = gzdopen(fileno(tmp_file), mode);
+		/* A descriptor of its own: gzclose() closes it, fclose() the file's. */
+		file->fp.gz = gzdopen(dup(fileno(tmp_file)), mode);
 
 		if (!file->fp.gz) {
 			fclose(tmp_file);
--- a/src/lib/lib.c
+++ b/src/lib/lib.c
@@ -23,11 +23,16 @@
 
 extern ZEND_DECLARE_MODULE_GLOBALS(xdebug);
 
+/* The mode MINIT locked in, for the globals of threads started after it
+ * (ZTS): they would otherwise keep the "every mode" default. */
+static int xdebug_locked_mode = 0xFFFFFFFF;
+static int xdebug_locked_mode_from_environment = 0;
+
 void xdebug_init_library_globals(xdebug_library_globals_t *xg)
 {
 	xg->headers               = NULL;
-	xg->mode                  = 0xFFFFFFFF;
-	xg->mode_from_environment = 0;
+	xg->mode                  = xdebug_locked_mode;
+	xg->mode_from_environment = xdebug_locked_mode_from_environment;
 
 	xg->log_file             = 0;
 
@@ -172,6 +177,7 @@
 		comma = strchr(mode_ptr, ',');
 	}
 	errors += !xdebug_lib_set_mode_item(mode_ptr, strlen(mode_ptr));
+	xdebug_locked_mode = XG_LIB(mode);
 
 	return !errors;
 }
@@ -189,6 +195,7 @@
 			xdebug_log_ex(XLOG_CHAN_CONFIG, XLOG_CRIT, "ENVMODE", "Invalid mode '%s' set for 'XDEBUG_MODE' environment variable, fall back to 'xdebug.mode' configuration setting", config);
 		} else {
 			XG_LIB(mode_from_environment) = 1;
+			xdebug_locked_mode_from_environment = 1;
 			return result;
 		}
 	}
PATCH
}

# Ports bookworm's sources of extension $1 (the only ones the mirror has
# for some) to PHP 8.4's API, where they predate it, as their later
# releases did: igbinary 3.2.13 (zend_uintptr_t is gone), apcu 5.1.22 (its
# CFLAGS reached the compiler as one quoted word), redis 5.3.7 (the random
# headers moved to ext/random, php_rand() is gone) and imagick 3.7.0
# (php_strtolower() is gone). A source without the old spelling is left
# as it is.
port_to_84() {
  local files
  case "$1" in
    igbinary) files="$(grep -rl '\bzend_uintptr_t\b' src || true)"
      [[ -z "$files" ]] || sed -i 's/\bzend_uintptr_t\b/uintptr_t/g' $files ;;
    apcu) files="$(grep -l 'ext_shared,, \\\\$(APCU_CFLAGS))' config.m4 || true)"
      [[ -z "$files" ]] || sed -i 's/ext_shared,, \\\\$(APCU_CFLAGS))/ext_shared,, $APCU_CFLAGS)/' config.m4 ;;
    redis) files="$(grep -l 'standard/php_ra\(nd\|ndom\)\.h\|\bphp_rand()' ./*.c || true)"
      [[ -z "$files" ]] || sed -i -e 's|<\(ext/\)\{0,1\}standard/php_rand\.h>|<ext/random/php_random.h>|' \
        -e 's|<standard/php_random\.h>|<ext/random/php_random.h>|' -e '/<ext\/standard\/php_mt_rand\.h>/d' \
        -e 's/\bphp_rand()/php_mt_rand()/g' $files ;;
    imagick) files="$(grep -l '\bphp_strtolower(' ./*.c || true)"
      [[ -z "$files" ]] || sed -i 's/\bphp_strtolower(/zend_str_tolower(/g' $files ;;
  esac
  [[ -z "${files:-}" ]] || log "$1: ported to PHP 8.4's API ($(echo $files | tr '\n' ' '))"
}

# Patches the source in the current directory where a known version of
# extension $1 breaks under tfpm's threads, or predates PHP 8.4.
patch_source() {
  local version
  [[ "$branch" != 8.4 ]] || port_to_84 "$1"
  case "$1" in
    xdebug)
      version="$(sed -n 's/^#define XDEBUG_VERSION *"\(.*\)"/\1/p' php_xdebug.h)"
      [[ "$version" == 3.2.0 ]] || return 0
      xdebug_320_patch | patch -p1 --quiet --forward >&2 \
        || { log "xdebug $version: the thread fixes do not apply"; exit 1; }
      log "xdebug $version: patched for threads (its mode, and a descriptor closed twice)"
      ;;
  esac
}

build_one() {
  local arg="$1" name work dir
  work="$(mktemp -d)"
  if [[ -e "$arg" ]]; then
    arg="$(realpath "$arg")"
    dir="$(cd "$work" && unpack "$arg")"
  else
    # shellcheck disable=SC2046
    install_packages $(dev_packages "$arg")
    dir="$(cd "$work" && fetch "$(source_package "$arg")")"
  fi
  [[ -n "$dir" ]] || { log "$arg: no config.m4 in its source"; exit 1; }
  cd "$work/$dir"
  name="$(ext_name)"
  [[ -n "$name" ]] || { log "$arg: config.m4 names no extension"; exit 1; }
  patch_source "$name"
  "$PHP_PREFIX/bin/phpize" >"$work/phpize.log" 2>&1 || { tail -n 20 "$work/phpize.log" >&2; exit 1; }
  # shellcheck disable=SC2046
  ./configure --with-php-config="$PHP_CONFIG" $(configure_flags "$name") >"$work/configure.log" 2>&1 \
    || { tail -n 30 "$work/configure.log" >&2; exit 1; }
  make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
  make install >"$work/install.log" 2>&1 || { tail -n 20 "$work/install.log" >&2; exit 1; }
  mkdir -p "$ini_dir"
  echo "$(directive "$name")=$name" > "$ini_dir/20-$name.ini"
  cd /; rm -rf "$work"
  log "$name: installed into $("$PHP_CONFIG" --extension-dir), loaded by $ini_dir/20-$name.ini"
}

[[ -n "$suite" ]] || { log "PHP $branch: no Debian release to take extension sources from"; exit 2; }
install_packages build-essential dpkg-dev autoconf libtool pkgconf
for name in "$@"; do
  build_one "$name"
done
