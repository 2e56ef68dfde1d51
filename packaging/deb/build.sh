#!/usr/bin/env bash
# Builds tfpm's Debian package, tfpm_<version>+php<php version>_amd64.deb,
# from a tfpm binary and the PHP it links: PHP built by ffi/build-php.sh
# with TFPM_PHP_PREFIX=/usr/lib/tfpm/php<v> and TFPM_PHP_INI_DIR=/etc/tfpm,
# so that every path compiled into PHP (extension dir, php.ini, conf.d/) is
# where the package puts it. docker/Dockerfile runs this in its builder
# stage; scripts/deb.sh gets the package out of it.
#
# Usage: packaging/deb/build.sh TFPM-BINARY OUT-DIR   (PHP_CONFIG: that PHP)
#
# The package holds:
#   /usr/sbin/tfpm                 the daemon, whose runpath is PHP's lib/
#   /usr/lib/tfpm/php<v>/          libphp, extensions, php, phpize, php-config, headers
#   /usr/bin/tfpm-php, tfpm-phpize, tfpm-php-config, tfpm-php-ext
#   /etc/tfpm/                     php-fpm.conf, pool.d/www.conf, php.ini, conf.d/
#   systemd's tfpm.service and tfpm.socket, and a logrotate file
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$(dirname "$here")")"
[[ $# -eq 2 ]] || { echo "usage: packaging/deb/build.sh TFPM-BINARY OUT-DIR" >&2; exit 2; }
binary="$1" out="$2"
php_config="${PHP_CONFIG:?PHP_CONFIG must name the php-config of the PHP to package}"

log() { echo "deb: $*" >&2; }
die() { log "$*"; exit 1; }

prefix="$("$php_config" --prefix)"
php_version="$("$php_config" --version)"
branch="${php_version%.*}"
[[ "$prefix" == "/usr/lib/tfpm/php$branch" ]] \
  || die "PHP is in $prefix; the package needs it built in /usr/lib/tfpm/php$branch (TFPM_PHP_PREFIX)"
[[ "$("$php_config" --ini-path)" == /etc/tfpm ]] \
  || die "PHP reads php.ini from $("$php_config" --ini-path); the package needs /etc/tfpm (TFPM_PHP_INI_DIR)"
runpath="$(readelf -d "$binary" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p')"
[[ "$runpath" == "$prefix/lib" ]] || die "$binary finds libphp in '$runpath', not $prefix/lib"

tfpm_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
version="$tfpm_version+php$php_version"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Staged where dpkg-shlibdeps expects a package being built, so that it
# takes the package's own libphp for what it is.
stage="$work/debian/tfpm"

# PHP: everything but php-fpm, its config and man pages, and the build's marks.
mkdir -p "$stage$prefix"
cp -a "$prefix/." "$stage$prefix/"
rm -rf "$stage$prefix"/{sbin,php,var,etc/php-fpm.conf.default,etc/php-fpm.d} "$stage$prefix"/.tfpm-*
find "$stage$prefix" -type f \( -name '*.so' -o -path '*/bin/php' \) -exec strip --strip-debug {} +

install -D -m 0755 "$binary" "$stage/usr/sbin/tfpm"
strip --strip-debug "$stage/usr/sbin/tfpm"
mkdir -p "$stage/usr/bin"
for tool in php phpize php-config; do
  ln -s "../lib/tfpm/php$branch/bin/$tool" "$stage/usr/bin/tfpm-$tool"
done
install -m 0755 "$root/scripts/php-ext.sh" "$stage/usr/bin/tfpm-php-ext"

# Config: tfpm's, and PHP's production php.ini, as Debian's php-fpm ships it.
install -D -m 0644 "$here/php-fpm.conf" "$stage/etc/tfpm/php-fpm.conf"
install -D -m 0644 "$here/www.conf" "$stage/etc/tfpm/pool.d/www.conf"
install -D -m 0644 "$prefix/etc/php.ini-production" "$stage/etc/tfpm/php.ini"
mkdir -p "$stage/etc/tfpm/conf.d"
cp -a /etc/tfpm/conf.d/. "$stage/etc/tfpm/conf.d/"
install -D -m 0644 "$here/tfpm.logrotate" "$stage/etc/logrotate.d/tfpm"
install -D -m 0644 "$here/tfpm.service" "$stage/lib/systemd/system/tfpm.service"
install -D -m 0644 "$here/tfpm.socket" "$stage/lib/systemd/system/tfpm.socket"

doc="$stage/usr/share/doc/tfpm"
install -D -m 0644 "$root/README.md" "$doc/README.md"
install -D -m 0644 "$root/docs/extensions.md" "$doc/extensions.md"
mkdir -p "$doc/examples"
cp "$root"/nginx-conf/*.conf "$doc/examples/"
{
  echo "tfpm: MIT License."
  echo
  echo "/usr/lib/tfpm/php$branch holds PHP $php_version, built from Debian's"
  echo "php$branch source package; PHP is under the PHP License, version 3.01:"
  echo
  cat "$prefix/include/php/LICENSE" 2>/dev/null || echo "https://www.php.net/license/3_01.txt"
} > "$doc/copyright"

# The shared libraries the binaries need, as Debian package dependencies.
mkdir -p "$work/debian"
printf 'Source: tfpm\n\nPackage: tfpm\nArchitecture: amd64\n' > "$work/debian/control"
mapfile -t elves < <(find "$stage" -type f \( -name '*.so' -o -path '*/bin/php' -o -path '*/sbin/tfpm' \))
depends="$(cd "$work" && dpkg-shlibdeps -O --ignore-missing-info -l"$stage$prefix/lib" "${elves[@]/#/-e}" 2>"$work/shlibdeps.log" \
  | sed -n 's/^shlibs:Depends=//p')" || { cat "$work/shlibdeps.log" >&2; exit 1; }
[[ -n "$depends" ]] || { cat "$work/shlibdeps.log" >&2; die "dpkg-shlibdeps found no dependencies"; }

mkdir -p "$stage/DEBIAN"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
(cd "$stage" && find etc -type f | sed 's#^#/#' | sort) > "$stage/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: tfpm
Version: $version
Architecture: amd64
Maintainer: tfpm developers <root@localhost>
Installed-Size: $size
Depends: $depends
Recommends: logrotate
Suggests: nginx | httpd
Section: httpd
Priority: optional
Description: PHP FastCGI server with threads, in place of php-fpm
 tfpm serves PHP to nginx (or any FastCGI web server) as php-fpm does, with
 the same config files, but runs PHP on threads in a few worker processes.
 It carries its own thread-safe PHP $php_version, with opcache, under
 /usr/lib/tfpm/php$branch, and that PHP's CLI as tfpm-php.
CONTROL

mkdir -p "$out"
deb="$out/tfpm_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
log "built $deb"
echo "$deb"
