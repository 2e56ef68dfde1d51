#!/usr/bin/env bash
# Runs php-src's own php-fpm test suite (sapi/fpm/tests/*.phpt) against an
# FPM binary: tfpm (the default, target/debug/tfpm, or under
# CARGO_TARGET_DIR) or the reference php-fpm of the cached PHP build. The
# tests are taken from the same Debian source version as that build and
# cached under /var/cache/tfpm/fpm-tests-<version>/ (never in the repo);
# later runs reuse them. They run with the build's own PHP CLI and
# run-tests.php. The result of every test (PASS, FAIL, SKIP,
# BORK, WARN, ...) goes to <out>/results.tsv as
# "name<TAB>RESULT<TAB>seconds<TAB>reason" (the reason, for a test that did
# not pass, is its first error line or its skip reason); the output, diff and
# logs of each test that did not pass go to <out>/tests/, and the names of
# all the suite's tests to <out>/all-tests.txt.
#
# Usage: scripts/php-fpm-suite.sh [--fpm tfpm|php-fpm|PATH] [--out DIR]
#                                 [--list FILE] [-j N] [--timeout SECONDS]
#                                 [NAME ...]
#   --fpm      the binary under test (default tfpm: target/debug/tfpm)
#   --out      where results go (default target/fpm-suite/<label>)
#   --list     run only the tests named in FILE: the first word of each line
#              ('#' starts a comment)
#   NAME       run only these tests (a name is the file name without .phpt)
#   -j N       tests run at once (default 2)
#   --timeout  run-tests.php's limit per test (default 60 s)
# Env: PHP_CONFIG (else the cached build, via scripts/env.sh). The tests run
# in a clean environment; TZ, TEST_FPM_DEBUG (the tester's trace),
# FPM_RUN_RESOURCE_HEAVY_TESTS and SKIP_SLOW_TESTS pass through.
#
# Each test runs alone: in its own copy of the tests directory, its own
# session and its own network namespace (unshare --net, loopback only). The
# suite listens on fixed ports (9008 and up) and its CONFLICTS file forbids
# running two tests in one directory at once, so this is what lets -j run
# them in parallel and beside anything else on the machine. It also keeps a
# failure contained: when the FPM under test writes no pid file,
# tester.inc's signal() runs `kill -SIG 0`, which then ends only that test's
# session. What a test leaves running in its namespace is killed after it.
# The tests that skip themselves as root (Tester::skipIfRoot) run as
# `nobody`; the others as root with TEST_FPM_RUN_AS_ROOT=1, which makes the
# tester pass --allow-to-run-as-root. tester.inc finds the binary through
# TEST_PHP_EXECUTABLE (there is no TEST_FPM_EXECUTABLE in PHP 8.2): it goes
# up two directories from it and takes sbin/php-fpm, so each test directory
# has bin/php (the CLI) and sbin/php-fpm (the binary under test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

log() { echo "php-fpm-suite: $*" >&2; }
die() { log "$*"; exit 1; }

# --- One test (the script runs itself with --one NAME, from xargs) ----------
# Env from the parent: SUITE_WORK, SUITE_CACHE, SUITE_OUT, SUITE_PHP,
# SUITE_RUN_TESTS, SUITE_TIMEOUT.
run_one() {
  local name="$1"
  local d="$SUITE_WORK/t/$name"
  mkdir -p "$d/bin" "$d/sbin" "$d/sapi/fpm"
  ln -s "$SUITE_PHP" "$d/bin/php"
  ln -s "$SUITE_WORK/fpm" "$d/sbin/php-fpm"
  cp -a "$SUITE_CACHE/tests" "$d/sapi/fpm/tests"
  cp -a "$SUITE_CACHE/ext" "$d/ext"
  # run-tests.php writes run-test-info.php beside itself: one copy per test.
  cp "$SUITE_RUN_TESTS" "$d/run-tests.php"
  # A clean environment (the FPM under test inherits it: RUST_LOG, say,
  # would change tfpm's log), plus what the tests read.
  local as=() env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
    TEST_PHP_EXECUTABLE="$d/bin/php" NO_INTERACTION=1)
  local v
  for v in TZ TEST_FPM_DEBUG FPM_RUN_RESOURCE_HEAVY_TESTS SKIP_SLOW_TESTS; do
    if [[ -n "${!v:-}" ]]; then env+=("$v=${!v}"); fi
  done
  if grep -q 'skipIfRoot' "$d/sapi/fpm/tests/$name.phpt"; then
    chown -R nobody:nogroup "$d"
    as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  else
    env+=(TEST_FPM_RUN_AS_ROOT=1)
  fi
  local start=$SECONDS status=0
  # Whatever the test leaves running in its network namespace is killed from
  # inside it, while this shell still holds the namespace: once it is gone,
  # the kernel gives its number to the next test's namespace, and a check
  # from outside would kill that test's processes.
  # shellcheck disable=SC2016
  timeout -k 5 $((SUITE_TIMEOUT + 60)) setsid unshare --net -- bash -c '
      d="$1"; shift
      ip link set lo up || exit 90
      ns="$(readlink /proc/self/ns/net)"
      echo "$ns" > "$d/.netns"
      cd "$d"
      status=0
      "$@" || status=$?
      for p in /proc/[0-9]*; do
        pid="${p#/proc/}"
        [[ "$pid" == "$$" ]] && continue
        [[ "$(readlink "$p/ns/net" 2>/dev/null || true)" == "$ns" ]] && kill -9 "$pid" 2>/dev/null
      done
      exit "$status"' suite "$d" \
    "${as[@]}" env -i "${env[@]}" \
      "$SUITE_PHP" "$d/run-tests.php" -q --no-color --no-progress \
      --set-timeout "$SUITE_TIMEOUT" -p "$d/bin/php" -W "$d/.result" \
      "sapi/fpm/tests/$name.phpt" > "$d/run-tests.log" 2>&1 || status=$?
  local seconds=$((SECONDS - start))
  # After a timeout the shell above is gone: what it left runs on, with
  # the namespace (so its number is still this test's).
  if [[ ( "$status" == 124 || "$status" == 137 ) && -s "$d/.netns" ]]; then
    local ns p
    ns="$(cat "$d/.netns")"
    for p in /proc/[0-9]*; do
      if [[ "$(readlink "$p/ns/net" 2>/dev/null || true)" == "$ns" ]]; then
        kill -9 "${p#/proc/}" 2>/dev/null || true
      fi
    done
  fi
  local result
  result="$(cut -f1 "$d/.result" 2>/dev/null | head -n1 || true)"
  result="${result%PED}"; result="${result%ED}"  # PASSED SKIPPED FAILED BORKED -> PASS ...
  if [[ -z "$result" ]]; then
    # run-tests.php itself ended: a timeout, or a signal to the session.
    result=FAIL
    echo "run-tests.php ended without a result (exit $status; 124 is the timeout, 128+N signal N)" \
      > "$SUITE_OUT/tests/$name.killed"
  fi
  # One line on why it did not pass.
  local reason=""
  case "$result" in
    PASS) ;;
    SKIP) reason="$(sed -n 's/^SKIP .* reason: //p' "$d/run-tests.log" | head -n1 || true)" ;;
    *)
      if [[ -f "$SUITE_OUT/tests/$name.killed" ]]; then
        reason="$(cat "$SUITE_OUT/tests/$name.killed")"
      else
        reason="$(grep -m1 -E '^(ERROR|Unexpected line|Fatal error|Warning|Parse error)' \
          "$d/sapi/fpm/tests/$name.out" 2>/dev/null || true)"
        [[ -n "$reason" ]] || reason="$(grep -m1 -E '^[0-9]+[+-] ' "$d/sapi/fpm/tests/$name.diff" 2>/dev/null || true)"
      fi ;;
  esac
  reason="$(printf '%s' "$reason" | tr '\t\r\n' '   ' | cut -c1-240)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$result" "$seconds" "$reason" > "$SUITE_OUT/results.d/$name"
  if [[ "$result" != PASS ]]; then
    local f
    for f in "$d/sapi/fpm/tests/$name".{out,diff,log}; do
      if [[ -f "$f" ]]; then cp "$f" "$SUITE_OUT/tests/"; fi
    done
    cp "$d/run-tests.log" "$SUITE_OUT/tests/$name.run-tests.log"
  fi
  rm -rf "$d"
  echo "$result $name ($seconds s)"
}

if [[ "${1:-}" == --one ]]; then
  run_one "$2"
  exit 0
fi

# --- Options ----------------------------------------------------------------

fpm="tfpm"
out=""
list=""
jobs=2
timeout=60
names=()
while (($#)); do
  case "$1" in
    --fpm) fpm="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --list) list="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    -j*) jobs="${1#-j}"; shift ;;
    --timeout) timeout="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) names+=("${1%.phpt}"); shift ;;
  esac
done

[[ "$(id -u)" == 0 ]] || die "must run as root (network namespaces, and the tests that switch users)"
for tool in unshare setsid setpriv ip timeout; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done
id nobody >/dev/null 2>&1 || die "there is no user nobody"

if [[ -z "${PHP_CONFIG:-}" ]]; then
  . "$here/env.sh"
fi
PHP_PREFIX="$("$PHP_CONFIG" --prefix)"
php="$PHP_PREFIX/bin/php"
[[ -x "$php" ]] || die "no PHP CLI at $php"
run_tests="$(find "$PHP_PREFIX/lib/php" -name run-tests.php -path '*/build/*' | head -n1)"
[[ -n "$run_tests" ]] || die "no run-tests.php under $PHP_PREFIX/lib/php"
[[ -f "$PHP_PREFIX/.tfpm-complete" ]] || die "$PHP_PREFIX has no .tfpm-complete (not a finished ffi/build-php.sh build)"
version="$(head -n1 "$PHP_PREFIX/.tfpm-complete")"
[[ -n "$version" ]] || die "no version in $PHP_PREFIX/.tfpm-complete"

target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" == /* ]] || target_dir="$root/$target_dir"
case "$fpm" in
  tfpm) binary="$target_dir/debug/tfpm"; label=tfpm ;;
  php-fpm) binary="$PHP_PREFIX/sbin/php-fpm"; label=php-fpm ;;
  *) binary="$(realpath "$fpm")"; label="$(basename "$fpm")" ;;
esac
[[ -x "$binary" ]] || die "the FPM binary $binary does not exist (cargo build?)"
out="${out:-$root/target/fpm-suite/$label}"

cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

# --- The tests, from the same source version as the PHP build -------------

cache="/var/cache/tfpm/fpm-tests-${version//[:~]/_}"

# The suite and the one file of ext/ that a test reads (gh12621.phpt:
# ../../../ext/standard/tests/misc/browscap.ini), copied out of php-src's
# tree of this version (scripts/php-src-tree.sh unpacks and caches it).
copy_tests() {
  local tree; tree="$("$here/php-src-tree.sh")"
  [[ -f "$tree/sapi/fpm/tests/tester.inc" ]] || die "the source of $version has no sapi/fpm/tests/tester.inc"
  rm -rf "$cache.tmp"; mkdir -p "$cache.tmp/ext/standard/tests/misc"
  cp -a "$tree/sapi/fpm/tests" "$cache.tmp/tests"
  cp -a "$tree/ext/standard/tests/misc/browscap.ini" "$cache.tmp/ext/standard/tests/misc/"
  echo "$version" > "$cache.tmp/.complete"
  rm -rf "$cache"; mv "$cache.tmp" "$cache"
  log "cached $(ls "$cache/tests"/*.phpt | wc -l) tests in $cache"
}

[[ -f "$cache/.complete" && -f "$cache/ext/standard/tests/misc/browscap.ini" ]] || copy_tests

# --- Which tests -------------------------------------------------------------

if [[ -n "$list" ]]; then
  [[ -f "$list" ]] || die "no list $list"
  while read -r name _; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    names+=("${name%.phpt}")
  done < "$list"
fi
if ((${#names[@]} == 0)); then
  for f in "$cache/tests"/*.phpt; do names+=("$(basename "$f" .phpt)"); done
fi
for name in "${names[@]}"; do
  [[ -f "$cache/tests/$name.phpt" ]] || die "no test $name in $cache/tests"
done

# --- Run them ------------------------------------------------------------------

work="$(mktemp -d /tmp/tfpm-fpm-suite.XXXXXX)"
cleanup+=("$work")
chmod 755 "$work"   # reached by the pools that switch users, and by nobody
mkdir -m 755 "$work/t"
# A copy, so that a cargo build during the run does not change the binary.
cp "$binary" "$work/fpm"
chmod 755 "$work/fpm"

rm -rf "$out"; mkdir -p "$out/tests" "$out/results.d"
for f in "$cache/tests"/*.phpt; do basename "$f" .phpt; done > "$out/all-tests.txt"
export SUITE_WORK="$work" SUITE_CACHE="$cache" SUITE_OUT="$(realpath "$out")" SUITE_PHP="$php" \
  SUITE_RUN_TESTS="$run_tests" SUITE_TIMEOUT="$timeout"
log "running ${#names[@]} tests against $binary ($label), PHP $version, $jobs at a time"
start=$SECONDS
printf '%s\n' "${names[@]}" \
  | xargs -P "$jobs" -n 1 "$here/php-fpm-suite.sh" --one > "$out/progress.log" 2>&1 || true

{ cat "$out/results.d"/* 2>/dev/null || true; } | sort > "$out/results.tsv"
rm -rf "$out/results.d"
got="$(wc -l < "$out/results.tsv")"
((got == ${#names[@]})) || { tail -n 20 "$out/progress.log" >&2; die "only $got results for ${#names[@]} tests"; }
log "$(awk -F'\t' '{ c[$2]++ } END { for (r in c) printf "%s %d, ", r, c[r] }' "$out/results.tsv")in $((SECONDS - start)) s"
log "results in $out/results.tsv"
