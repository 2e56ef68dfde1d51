#!/usr/bin/env bash
# Installs the Debian packages that building and testing tfpm need, when
# missing: libclang (bindgen), nginx, cgi-fcgi, curl, wrk, the web servers
# of the interop tests (HAProxy, Apache, lighttpd, Caddy) and the PHP apps of
# tests/apps.rs (DokuWiki, phpLiteAdmin; they pull in Debian's php8.2, which
# tfpm does not use), the Symfony 5.4 (FrameworkBundle, TwigBundle, Twig,
# Doctrine DBAL) and Laravel 8 packages the apps of tests/frameworks.rs are
# built on, Debian's php8.2-fpm (only for its php-fpm.conf and
# www.conf, which tests/fpm_config.rs runs unchanged), redis-server (started
# by tests/extensions.rs for the redis extension), and debootstrap for
# scripts/docker-base-images.sh.
# PHP's own build dependencies are installed by ffi/build-php.sh. Needs root
# on Debian 12.
set -euo pipefail

packages=(clang libclang-dev pkg-config nginx libfcgi-bin curl wrk ca-certificates systemd
  haproxy apache2 lighttpd caddy dokuwiki phpliteadmin php-symfony-framework-bundle
  php-symfony-twig-bundle php-twig php-doctrine-dbal php-laravel-framework php8.2-fpm
  redis-server debootstrap)
# Debian starts these when they are installed; the tests start their own.
services=(nginx haproxy apache2 lighttpd caddy php8.2-fpm redis-server)

# tests/docker.rs needs a Docker client and docker-compose; the engine may
# be the host's (a mounted socket, as in .github/workflows/ci.yml).
command -v docker >/dev/null || packages+=(docker.io)
command -v docker-compose >/dev/null || packages+=(docker-compose)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  # Keep the postinst scripts from starting the services (invoke-rc.d asks
  # policy-rc.d; 101 means "not allowed"). An existing policy is left alone.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
fi
# Whatever started them anyway (an earlier install, systemd), stop them.
for s in "${services[@]}"; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then
    systemctl stop "$s" >/dev/null 2>&1 || true
  elif [[ -x "/etc/init.d/$s" ]] && "/etc/init.d/$s" status >/dev/null 2>&1; then
    "/etc/init.d/$s" stop >/dev/null 2>&1 || true
  fi
done

if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
