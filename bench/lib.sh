# Helpers shared by the bench scripts (sourced, after they set `run`, their
# temp directory, and, for wrk_run, `conns`).

# A php-fpm.conf with one static pool, in $run/NAME.conf (pid and log beside
# it); further pool lines, if any, come as the fourth argument.
fpm_conf() { # name listen children [pool-lines]
  cat > "$run/$1.conf" <<CONF
[global]
pid = $run/$1.pid
error_log = $run/$1.log
daemonize = no
[www]
listen = $2
pm = static
pm.max_children = $3
${4:-}
CONF
}

# PSS (KiB) of a process and its children.
pss_tree() {
  local all=("$1") p
  while read -r p; do all+=("$p"); done < <(pgrep -P "$1" || true)
  for p in "${all[@]}"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
    awk '$1 == "Pss:" { pss += $2 } END { printf "%d\n", pss }'
}

# wrk through nginx on 127.0.0.1:PORT: prints "req/s p99-ms non-2xx".
wrk_run() { # port secs [path]
  wrk -t2 -c"$conns" -d"${2}s" --latency "http://127.0.0.1:$1${3:-/}" > "$run/wrk.out" 2>&1 || true
  awk '/Requests\/sec/ { r = $2 }
       /Non-2xx/ { bad = $NF }
       $1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; p = v }
       END { printf "%.1f %.1f %d\n", r, p, bad }' "$run/wrk.out"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
