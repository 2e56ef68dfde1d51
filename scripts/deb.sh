#!/usr/bin/env bash
# Builds tfpm's Debian package in Docker and copies it into dist/:
# dist/tfpm_<version>+php<php version>_amd64.deb. PHP is built inside the
# image's builder stage where the package installs it (/usr/lib/tfpm/php<v>),
# so no path in the package points into a build cache.
#
# Usage: scripts/deb.sh [8.4|8.2]   (as root on Debian 12, with docker)
# Then:  apt-get install ./dist/tfpm_*.deb
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$(dirname "$here")"
php_version="${1:-8.4}"
tag="tfpm-builder:php$php_version"

"$here/docker-base-images.sh"
docker build --target builder --build-arg PHP_VERSION="$php_version" -t "$tag" -f docker/Dockerfile . >&2
id="$(docker create "$tag")"
trap 'docker rm "$id" >/dev/null' EXIT
mkdir -p dist
docker cp "$id:/out/." dist/ >&2
ls dist/tfpm_*+php"$php_version".*_amd64.deb
