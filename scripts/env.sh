# Sourced by the scripts here: builds PHP if the cache has no build yet and
# exports PHP_CONFIG for cargo (build.rs) and the tests, and PHP_PREFIX.
tfpm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ffi/build-php.sh [VERSION], one caller at a time per version: a second
# one waits for the first and then finds its build in the cache (started
# at once, it would wipe the install under way).
tfpm_build_php() {
  local cache="${TFPM_PHP_CACHE:-/var/cache/tfpm/php}"
  mkdir -p "$cache"
  flock "$cache/.build-${1:-${TFPM_PHP_VERSION:-8.4}}.lock" "$tfpm_root/ffi/build-php.sh" "$@"
}

if [[ -z "${PHP_CONFIG:-}" ]]; then
  PHP_CONFIG="$(tfpm_build_php)"
fi
export PHP_CONFIG
PHP_PREFIX="$("$PHP_CONFIG" --prefix)"
export PHP_PREFIX
