# Sourced by the scripts here: builds PHP if the cache has no build yet and
# exports PHP_CONFIG for cargo (build.rs) and the tests.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${PHP_CONFIG:-}" ]]; then
  PHP_CONFIG="$("$root/ffi/build-php.sh")"
fi
export PHP_CONFIG
PHP_PREFIX="$("$PHP_CONFIG" --prefix)"
export PHP_PREFIX
