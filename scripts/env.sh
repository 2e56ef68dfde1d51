# Sourced by the scripts here: builds PHP if the cache has no build yet and
# exports PHP_CONFIG for cargo (build.rs) and the tests, and PHP_PREFIX.
tfpm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PHP_CONFIG:-}" ]]; then
  PHP_CONFIG="$("$tfpm_root/ffi/build-php.sh")"
fi
export PHP_CONFIG
PHP_PREFIX="$("$PHP_CONFIG" --prefix)"
export PHP_PREFIX
