#!/usr/bin/env bash
# Installs the Debian packages that building and testing tfpm need, when
# missing: libclang (bindgen), nginx, cgi-fcgi, curl and wrk. PHP's own build
# dependencies are installed by ffi/build-php.sh. Needs root on Debian 12.
set -euo pipefail

packages=(clang libclang-dev pkg-config nginx libfcgi-bin curl wrk ca-certificates)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# Debian starts nginx on port 80 when it is installed; the tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi
