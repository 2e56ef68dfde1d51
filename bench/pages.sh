#!/usr/bin/env bash
# Real pages: WordPress 6.1's home page (theme Twenty Twenty-Three, MariaDB)
# and MediaWiki 1.39's main page (SQLite), from Debian's packages, each
# served by tfpm, by php-fpm from the same PHP build, and by Debian's own
# php8.2-fpm (non-thread-safe), behind one nginx, with the same php.ini
# (production, opcache on) and the same number of threads or children.
# Each server runs in its usual nginx setup: php-fpm over a Unix socket
# with a connection per request, tfpm over a Unix socket with kept
# connections. The bench starts MariaDB itself, in a data directory of its
# own, and installs both sites there. Prints a markdown table (req/s, p99
# latency, PSS after the run) and writes it to --out FILE.
#
# Usage: bench/pages.sh [--secs N] [--rounds N] [--threads N] [--conns N]
#                       [--pages "wordpress mediawiki"] [--dir DIR] [--out FILE]
#                       [--profile DIR]
# Each figure is the median of --rounds runs (each run's figure in
# brackets), the servers measured in turn within each round. --profile
# then runs one more --secs of load on php-fpm and on tfpm under
# `perf record -g` and `perf stat`, and writes to DIR, per page and server,
# the profile (PAGE-SERVER.data), its flat report by symbol (.txt), and the
# counts per request: CPU time, context switches, migrations (.stat).
# The PHP is the one scripts/env.sh picks (TFPM_PHP_VERSION=8.2 for 8.2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

secs=10; rounds=3; threads=4; conns=16; pages="wordpress mediawiki"; out=""; dir=/tmp; profile=""
while (($#)); do
  case "$1" in
    --secs) secs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;;
    --pages) pages="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh
# The sites, their database server, and Debian's php-fpm with the
# extensions they need.
needed=(wordpress wordpress-theme-twentytwentythree mediawiki mariadb-server
  php8.2-fpm php8.2-mysql php8.2-sqlite3 php8.2-intl php8.2-mbstring php8.2-xml)
missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
. ./scripts/env.sh
cargo build --release --locked -q -p tfpm
tfpm_bin="$root/target/release/tfpm"

run="$(mktemp -d "$dir/tfpm-bench-pages.XXXXXX")"
# Debian's WordPress reads its settings from /etc/wordpress/config-NAME.php,
# NAME from the WORDPRESS_CONFIG param.
wp_name="tfpmbench$$"
wp_config="/etc/wordpress/config-$wp_name.php"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$wp_config"
  rm -rf "$run"
}
trap cleanup EXIT
report="$run/report.md"
say() { echo "$*" | tee -a "$report"; }
wait_for() { # path: up to 20 s
  for _ in $(seq 1 400); do [[ -e "$1" ]] && return 0; sleep 0.05; done
  echo "bench: $1 never appeared" >&2; return 1
}

ini="$run/php.ini"
{
  cat "$PHP_PREFIX/etc/php.ini-production"
  echo "opcache.enable=1"
  echo "memory_limit=256M"
  echo "error_log=$run/php-errors.log"
  echo "session.save_path=$run/sessions"
} > "$ini"
mkdir -p "$run/sessions"

# MariaDB, in a data directory of its own, on a socket only.
start_mariadb() {
  mariadb-install-db --no-defaults --user=root --datadir="$run/mysql" \
    --auth-root-authentication-method=normal > "$run/mariadb-install.log" 2>&1
  mariadbd --no-defaults --user=root --datadir="$run/mysql" --socket="$run/mysql.sock" \
    --skip-networking --pid-file="$run/mysql.pid" --log-error="$run/mariadb.log" \
    --innodb-buffer-pool-size=256M &
  pids+=("$!")
  wait_for "$run/mysql.sock"
  mariadb --no-defaults -S "$run/mysql.sock" -u root <<SQL
CREATE DATABASE wordpress;
CREATE USER 'wp'@'localhost' IDENTIFIED BY 'wp';
GRANT ALL ON wordpress.* TO 'wp'@'localhost';
SQL
}

# WordPress: its settings, then the install (the admin user, the first
# post) with the CLI of the same PHP, and the block theme.
setup_wordpress() {
  start_mariadb
  cat > "$wp_config" <<PHP
<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'wp');
define('DB_PASSWORD', 'wp');
define('DB_HOST', 'localhost:$run/mysql.sock');
define('WP_CONTENT_DIR', '/usr/share/wordpress/wp-content');
define('WP_HOME', 'http://' . (\$_SERVER['HTTP_HOST'] ?? '127.0.0.1'));
define('WP_SITEURL', WP_HOME);
define('DISABLE_WP_CRON', true);
\$table_prefix = 'wp_';
PHP
  cat > "$run/wp-install.php" <<PHP
<?php
\$_SERVER['WORDPRESS_CONFIG'] = '$wp_name';
\$_SERVER['HTTP_HOST'] = '127.0.0.1';
define('WP_INSTALLING', true);
require '/usr/share/wordpress/wp-load.php';
require ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install('tfpm bench', 'admin', 'admin@example.com', true, '', 'bench-password');
switch_theme('twentytwentythree');
echo get_option('stylesheet'), "\n";
PHP
  "$PHP_PREFIX/bin/php" -c "$ini" "$run/wp-install.php" > "$run/wp-install.log" 2>&1
  grep -q twentytwentythree "$run/wp-install.log" || { cat "$run/wp-install.log" >&2; exit 1; }
}

# MediaWiki: installed with its own maintenance script, on SQLite; the
# settings file goes to the pools as MW_CONFIG_FILE.
setup_mediawiki() {
  mkdir -p "$run/mw-data" "$run/mw-conf"
  "$PHP_PREFIX/bin/php" -c "$ini" /usr/share/mediawiki/maintenance/install.php \
    --dbtype sqlite --dbpath "$run/mw-data" --dbname wiki --server "http://127.0.0.1" \
    --scriptpath "" --confpath "$run/mw-conf" --pass "bench-password-1234" \
    "Bench Wiki" admin > "$run/mw-install.log" 2>&1 || { tail -20 "$run/mw-install.log" >&2; exit 1; }
  # Any host the bench uses, and the main page at /.
  sed -i 's|^\$wgServer = .*|$wgServer = "http://" . ($_SERVER["HTTP_HOST"] ?? "127.0.0.1");|' \
    "$run/mw-conf/LocalSettings.php"
}

docroot_of() { case "$1" in wordpress) echo /usr/share/wordpress ;; mediawiki) echo /usr/share/mediawiki ;; esac; }
# The page measured: each site's home page.
path_of() { case "$1" in wordpress) echo / ;; mediawiki) echo "/index.php?title=Main_Page" ;; esac; }
# Text that the page must show: the site's own page, not an error.
marker_of() { case "$1" in wordpress) echo "Hello world!" ;; mediawiki) echo "MediaWiki has been installed" ;; esac; }

# A pool config: name page sock
pool_conf() { fpm_conf "$1" "$3" "$threads" "env[MW_CONFIG_FILE] = $run/mw-conf/LocalSettings.php"; }

# nginx as its usual setup for each: tfpm with kept connections, php-fpm without.
server_block() { # port socket page keep
  local keep="" keep_conn=off
  [[ "$4" == yes ]] && { keep="keepalive 32;"; keep_conn=on; }
  cat <<CONF
    upstream up_$1 { server unix:$2; $keep }
    server {
        listen 127.0.0.1:$1;
        root $(docroot_of "$3");
        index index.php;
        location / { try_files \$uri \$uri/ /index.php\$is_args\$args; }
        location ~ \.php\$ {
            include /etc/nginx/fastcgi.conf;
            fastcgi_param WORDPRESS_CONFIG $wp_name;
            fastcgi_keep_conn $keep_conn;
            fastcgi_pass up_$1;
        }
    }
CONF
}

servers=(debian-php-fpm php-fpm tfpm)
port_of() { case "$1" in debian-php-fpm) echo 18291 ;; php-fpm) echo 18292 ;; tfpm) echo 18293 ;; esac; }

start_server() { # server page sock
  local conf="$run/$2-$1.conf"
  pool_conf "$2-$1" "$2" "$3"
  case "$1" in
    debian-php-fpm) PHP_INI_SCAN_DIR=/etc/php/8.2/fpm/conf.d /usr/sbin/php-fpm8.2 -y "$conf" -c "$ini" -R & ;;
    php-fpm) "$PHP_PREFIX/sbin/php-fpm" -y "$conf" -c "$ini" -R & ;;
    tfpm) "$tfpm_bin" -F -R -y "$conf" -c "$ini" --log-level warn 2>>"$run/tfpm.log" & ;;
  esac
}

. "$here/lib.sh"

# perf record and perf stat over a server's processes while wrk loads it.
profile_server() { # page server pid
  local pids out="$profile/$1-$2"
  pids="$( (echo "$3"; pgrep -P "$3" || true) | paste -sd, -)"
  perf record -q -g -o "$out.data" -p "$pids" -- sleep "$secs" 2>/dev/null &
  local rec=$!
  read -r rps _ < <(wrk_run "$(port_of "$2")" "$secs" "$(path_of "$1")")
  wait "$rec" || true
  perf stat -x, -e task-clock,context-switches,cpu-migrations -p "$pids" -o "$out.stat.raw" -- sleep "$secs" &
  local stat=$!
  read -r rps2 _ < <(wrk_run "$(port_of "$2")" "$secs" "$(path_of "$1")")
  wait "$stat" || true
  awk -F, -v n="$(awk -v r="$rps2" -v s="$secs" 'BEGIN { print r * s }')" -v rps="$rps2" '
    $3 == "task-clock" { printf "cpu ms per request: %.2f\n", $1 / n }
    $3 == "context-switches" { printf "context switches per request: %.1f\n", $1 / n }
    $3 == "cpu-migrations" { printf "cpu migrations per request: %.2f\n", $1 / n }
    END { printf "req/s while counted: %s\n", rps }' "$out.stat.raw" > "$out.stat"
  # (awk, not head: head would end the pipe early, and pipefail with it)
  perf report -i "$out.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
    awk '/%/ && !/^#/ && n++ < 60' > "$out.txt"
  echo "bench: profiled $2 on $1 ($rps req/s under perf record): $out.txt, $out.stat" >&2
}

say ""
say "## Real pages ($threads threads or children each, $conns connections, median of $rounds runs of ${secs} s, $(date -u +%F), $(nproc) cores, PHP $("$PHP_CONFIG" --version), opcache on)"
say ""
say "| page | server | req/s (runs) | vs php-fpm | p99 ms (runs) | non-2xx | PSS after, MiB |"
say "|---|---|---:|---:|---:|---:|---:|"
for page in $pages; do
  "setup_$page"
  nginx_conf="$run/nginx-$page.conf"
  {
    echo "daemon off; worker_processes 2; $( [[ $EUID -eq 0 ]] && echo "user root;" )"
    echo "pid $run/nginx-$page.pid; error_log $run/nginx-$page-error.log;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $run/body; fastcgi_temp_path $run/fastcgi;"
    for s in "${servers[@]}"; do
      server_block "$(port_of "$s")" "$run/$page-$s.sock" "$page" "$([[ $s == tfpm ]] && echo yes || echo no)"
    done
    echo "}"
  } > "$nginx_conf"
  nginx -p "$run" -c "$nginx_conf" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  # All up at once, then measured in turn, round after round, so that
  # whatever else the machine does falls on each alike.
  declare -A server_of rps_of p99_of bad_of
  for s in "${servers[@]}"; do
    sock="$run/$page-$s.sock"
    start_server "$s" "$page" "$sock"
    server_of[$s]=$!
    pids+=("$!")
    wait_for "$sock"
    port="$(port_of "$s")"
    code="$(curl -s -o "$run/$page-$s.html" -w '%{http_code}' "http://127.0.0.1:$port$(path_of "$page")")"
    if [[ "$code" != 200 ]] || ! grep -q "$(marker_of "$page")" "$run/$page-$s.html"; then
      echo "bench: $page under $s answered $code, without \"$(marker_of "$page")\"" >&2
      tail -n 20 "$run/$page-$s.log" "$run/tfpm.log" "$run/nginx-$page-error.log" "$run/php-errors.log" >&2 || true
      exit 1
    fi
    wrk_run "$port" 2 "$(path_of "$page")" > /dev/null # warm-up: opcache, caches
    rps_of[$s]=""; p99_of[$s]=""; bad_of[$s]=0
  done
  for _ in $(seq 1 "$rounds"); do
    for s in "${servers[@]}"; do
      read -r rps p99 bad < <(wrk_run "$(port_of "$s")" "$secs" "$(path_of "$page")")
      rps_of[$s]+="$rps "; p99_of[$s]+="$p99 "; bad_of[$s]=$(( ${bad_of[$s]} + bad ))
    done
  done
  fpm_rps="$(median ${rps_of[php-fpm]})"
  for s in "${servers[@]}"; do
    rps="$(median ${rps_of[$s]})"
    pss="$(pss_tree "${server_of[$s]}")"
    say "| $page | $s | $rps (${rps_of[$s]% }) | $(ratio "$rps" "$fpm_rps") | $(median ${p99_of[$s]}) (${p99_of[$s]% }) | ${bad_of[$s]} | $(awk -v k="$pss" 'BEGIN { printf "%.0f", k / 1024 }') |"
  done
  if [[ -n "$profile" ]]; then
    mkdir -p "$profile"
    for s in php-fpm tfpm; do profile_server "$page" "$s" "${server_of[$s]}"; done
  fi
  for s in "${servers[@]}"; do
    kill "${server_of[$s]}" 2>/dev/null || true
    wait "${server_of[$s]}" 2>/dev/null || true
  done
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
done

if [[ -n "$out" ]]; then
  cp "$report" "$out"
  echo "bench: wrote $out" >&2
fi
