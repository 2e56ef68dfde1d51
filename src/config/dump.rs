//! `php-fpm -tt`'s dump of a checked configuration (fpm_conf.c
//! `fpm_conf_dump`): every `[global]` setting, then every pool's, one line
//! each, in php-fpm's order and spelling, as php-fpm 8.2 on Linux prints
//! them (with its ACL and systemd support, as Debian builds it). Unset
//! strings print `undefined`, booleans `yes`/`no`, most times with an `s`;
//! array entries (`env`, `php_value`, ...) come in php-fpm's order, last
//! declared first, flags among the values (`php_flag` as `php_value`).
//!
//! Values are those of the [`Config`] after [`super::validate::validate`]
//! (which fills in `pm.start_servers` and the trace depth), with the
//! defaults php-fpm's post-processing fills in; directives tfpm keeps only
//! raw (its `unsupported` lists) are read back from there, else printed
//! with php-fpm's Linux default (`events.mechanism = epoll`, rlimits 0).
//! Paths print as written: php-fpm prints them made absolute against its
//! prefix, tfpm resolves them when it uses them.

use super::access_format::DEFAULT_FORMAT;
use super::directives::{expand_pool, parse_bool, parse_int, parse_time};
use super::{Config, Global, LogLevel, Pm, Pool};

/// The lines `php-fpm -tt` logs as NOTICEs for `config`, without their
/// time and level.
pub fn dump(config: &Config) -> Vec<String> {
    let mut lines = global(&config.global);
    for pool in &config.pools {
        lines.extend(pool_lines(pool));
    }
    lines
}

fn global(g: &Global) -> Vec<String> {
    let raw = &g.unsupported;
    let events = unsupported(raw, "events.mechanism").map_or("epoll".into(), str::to_lowercase);
    vec![
        "[global]".into(),
        format!("\tpid = {}", text(&g.pid)),
        format!(
            "\terror_log = {}",
            g.error_log.as_deref().unwrap_or("log/php-fpm.log")
        ),
        format!(
            "\tsyslog.ident = {}",
            unsupported(raw, "syslog.ident").unwrap_or("php-fpm")
        ),
        format!(
            "\tsyslog.facility = {}",
            facility(
                &unsupported(raw, "syslog.facility").map_or("daemon".into(), str::to_lowercase)
            )
        ),
        format!("\tlog_buffering = {}", yes(g.log_buffering)),
        format!("\tlog_level = {}", level(g.log_level)),
        format!("\tlog_limit = {}", g.log_limit),
        format!(
            "\temergency_restart_interval = {}s",
            g.emergency_restart_interval
        ),
        format!(
            "\temergency_restart_threshold = {}",
            g.emergency_restart_threshold
        ),
        format!("\tprocess_control_timeout = {}s", g.process_control_timeout),
        format!("\tprocess.max = {}", int(raw, "process.max", 0)),
        format!("\tprocess.priority = {}", priority(raw)),
        format!("\tdaemonize = {}", yes(g.daemonize)),
        format!("\trlimit_files = {}", g.rlimit_files.unwrap_or(0)),
        format!("\trlimit_core = {}", rlimit_core(raw)),
        format!("\tevents.mechanism = {events}"),
        format!(
            "\tsystemd_interval = {}s",
            unsupported(raw, "systemd_interval").map_or(10, |t| parse_time(t).unwrap_or(10))
        ),
        " ".into(),
    ]
}

fn pool_lines(p: &Pool) -> Vec<String> {
    let mut lines = listen(p);
    lines.extend(pm(p));
    lines.extend(logs(p));
    lines.extend(process(p));
    lines.extend(arrays(p));
    lines.extend(worker(p));
    lines.push(" ".into());
    lines
}

/// From the pool's name to `process.dumpable`.
fn listen(p: &Pool) -> Vec<String> {
    let raw = &p.unsupported;
    let acl = |name| text_of(unsupported(raw, name).map(|v| expand(p, v)));
    vec![
        format!("[{}]", p.name),
        format!("\tprefix = {}", text(&p.prefix)),
        format!("\tuser = {}", text(&p.user)),
        format!("\tgroup = {}", text(&p.group)),
        format!("\tlisten = {}", text(&p.listen)),
        format!("\tlisten.backlog = {}", p.listen_backlog),
        format!("\tlisten.acl_users = {}", acl("listen.acl_users")),
        format!("\tlisten.acl_groups = {}", acl("listen.acl_groups")),
        format!("\tlisten.owner = {}", text(&p.listen_owner)),
        format!("\tlisten.group = {}", text(&p.listen_group)),
        format!("\tlisten.mode = {}", text(&p.listen_mode)),
        format!(
            "\tlisten.allowed_clients = {}",
            text(&p.listen_allowed_clients)
        ),
        format!("\tprocess.priority = {}", priority(raw)),
        format!(
            "\tprocess.dumpable = {}",
            yes(boolean(raw, "process.dumpable"))
        ),
    ]
}

/// `pm` and its settings (the spares are 0 for `ondemand`, as php-fpm sets them).
fn pm(p: &Pool) -> Vec<String> {
    let (name, spares) = match p.pm {
        Some(Pm::Static) => ("static", true),
        Some(Pm::Dynamic) => ("dynamic", true),
        Some(Pm::Ondemand) | None => ("ondemand", false),
    };
    let spare = |n: i32| if spares { n } else { 0 };
    vec![
        format!("\tpm = {name}"),
        format!("\tpm.max_children = {}", p.pm_max_children),
        format!("\tpm.start_servers = {}", spare(p.pm_start_servers)),
        format!("\tpm.min_spare_servers = {}", spare(p.pm_min_spare_servers)),
        format!("\tpm.max_spare_servers = {}", spare(p.pm_max_spare_servers)),
        format!(
            "\tpm.max_spawn_rate = {}",
            int(&p.unsupported, "pm.max_spawn_rate", 32)
        ),
        format!("\tpm.process_idle_timeout = {}", p.pm_process_idle_timeout),
        format!("\tpm.max_requests = {}", p.pm_max_requests),
        format!("\tpm.status_path = {}", text(&p.pm_status_path)),
        format!("\tpm.status_listen = {}", text(&p.pm_status_listen)),
    ]
}

/// The ping page, the access log and the slowlog, with php-fpm's defaults:
/// `ping.response` only with a ping path, `access.format` only with a log.
fn logs(p: &Pool) -> Vec<String> {
    let pinged = p.ping_path.as_deref().is_some_and(|s| !s.is_empty());
    let logged = p.access_log.as_deref().is_some_and(|s| !s.is_empty());
    let format = p.access_format.as_deref();
    let format = format.or(logged.then_some(DEFAULT_FORMAT));
    let mut lines = vec![
        format!("\tping.path = {}", text(&p.ping_path)),
        format!(
            "\tping.response = {}",
            text_of(pinged.then_some(&p.ping_response))
        ),
        format!("\taccess.log = {}", text(&p.access_log)),
        format!("\taccess.format = {}", text_of(format)),
    ];
    for path in p.access_suppress_paths.iter().rev() {
        lines.push(format!("\taccess.suppress_path[] = {path}"));
    }
    lines.push(format!("\tslowlog = {}", text(&p.slowlog)));
    lines
}

/// From `request_slowlog_timeout` to `security.limit_extensions`.
fn process(p: &Pool) -> Vec<String> {
    let raw = &p.unsupported;
    let track = p.request_terminate_timeout_track_finished;
    let chroot = unsupported(raw, "chroot").map(|v| expand(p, v));
    vec![
        format!("\trequest_slowlog_timeout = {}s", p.request_slowlog_timeout),
        format!(
            "\trequest_slowlog_trace_depth = {}",
            p.request_slowlog_trace_depth
        ),
        format!(
            "\trequest_terminate_timeout = {}s",
            p.request_terminate_timeout
        ),
        format!(
            "\trequest_terminate_timeout_track_finished = {}",
            yes(track)
        ),
        format!("\trlimit_files = {}", int(raw, "rlimit_files", 0)),
        format!("\trlimit_core = {}", rlimit_core(raw)),
        format!("\tchroot = {}", text_of(chroot)),
        format!("\tchdir = {}", text(&p.chdir)),
        format!("\tcatch_workers_output = {}", yes(p.catch_workers_output)),
        format!(
            "\tdecorate_workers_output = {}",
            yes(p.decorate_workers_output)
        ),
        format!("\tclear_env = {}", yes(p.clear_env)),
        format!(
            "\tsecurity.limit_extensions = {}",
            p.security_limit_extensions.join(" ")
        ),
    ]
}

/// `env[...]`, `php_value[...]` and `php_admin_value[...]`, each list last
/// entry first (php-fpm prepends to its lists).
fn arrays(p: &Pool) -> Vec<String> {
    let lists = [
        ("env", &p.env),
        ("php_value", &p.php_values),
        ("php_admin_value", &p.php_admin_values),
    ];
    let mut lines = Vec::new();
    for (name, list) in lists {
        let entries = list.iter().rev();
        lines.extend(entries.map(|(k, v)| format!("\t{name}[{k}] = {v}")));
    }
    lines
}

/// tfpm's worker mode directives, after php-fpm's, only in a pool that
/// has a worker script (php-fpm knows none of them).
fn worker(p: &Pool) -> Vec<String> {
    let w = &p.worker;
    let Some(script) = &w.script else {
        return Vec::new();
    };
    let mut lines = vec![
        format!("	worker = {script}"),
        format!("	worker.num = {}", w.num),
        format!("	worker.max_requests = {}", w.max_requests),
        format!(
            "	worker.max_consecutive_failures = {}",
            w.max_consecutive_failures
        ),
        format!("	worker.match = {}", text(&w.uri_prefix)),
        format!("	worker.watch = {}", text(&w.watch)),
    ];
    lines.extend(w.env.iter().map(|(k, v)| format!("	worker.env[{k}] = {v}")));
    lines
}

/// The raw value of a directive tfpm keeps unparsed (the last one set wins).
fn unsupported<'a>(raw: &'a [(String, String)], name: &str) -> Option<&'a str> {
    raw.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn int(raw: &[(String, String)], name: &str, default: i32) -> i32 {
    unsupported(raw, name)
        .and_then(|v| parse_int(v).ok())
        .unwrap_or(default)
}

fn boolean(raw: &[(String, String)], name: &str) -> bool {
    unsupported(raw, name).is_some_and(|v| parse_bool(v).unwrap_or(false))
}

/// `process.priority`: 64 is php-fpm's "unset".
fn priority(raw: &[(String, String)]) -> String {
    match int(raw, "process.priority", 64) {
        64 => "undefined".into(),
        n => n.to_string(),
    }
}

/// `rlimit_core`: `unlimited` is -1.
fn rlimit_core(raw: &[(String, String)]) -> i32 {
    match unsupported(raw, "rlimit_core") {
        Some(v) if v.eq_ignore_ascii_case("unlimited") => -1,
        _ => int(raw, "rlimit_core", 0),
    }
}

fn expand(p: &Pool, value: &str) -> String {
    expand_pool(value, Some(&p.name)).unwrap_or_default()
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("undefined")
}

fn text_of(value: Option<impl AsRef<str>>) -> String {
    value.map_or("undefined".into(), |v| v.as_ref().to_string())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// zlog's level names.
fn level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Debug => "DEBUG",
        LogLevel::Notice => "NOTICE",
        LogLevel::Warning => "WARNING",
        LogLevel::Error => "ERROR",
        LogLevel::Alert => "ALERT",
    }
}

/// A syslog facility's number on Linux (`<syslog.h>`), as php-fpm prints it.
fn facility(name: &str) -> i32 {
    const CODES: &[(&str, i32)] = &[
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
    ];
    let code = match name.to_ascii_lowercase().strip_prefix("local") {
        Some(n) => n.parse::<i32>().map_or(3, |n| 16 + n),
        None => CODES
            .iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
            .map_or(3, |c| c.1),
    };
    code << 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `text` as a config file, read and checked.
    fn checked(text: &str) -> Config {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tfpm-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{n}.conf"));
        std::fs::write(&path, text).unwrap();
        let opts = super::super::ReadOptions {
            env: Some(Default::default()),
            ..Default::default()
        };
        let config = super::super::load(&path, &opts).unwrap();
        let _ = std::fs::remove_file(&path);
        config
    }

    const DEFAULT_GLOBAL: &[&str] = &[
        "[global]",
        "\tpid = undefined",
        "\terror_log = log/php-fpm.log",
        "\tsyslog.ident = php-fpm",
        "\tsyslog.facility = 24",
        "\tlog_buffering = yes",
        "\tlog_level = NOTICE",
        "\tlog_limit = 1024",
        "\temergency_restart_interval = 0s",
        "\temergency_restart_threshold = 0",
        "\tprocess_control_timeout = 0s",
        "\tprocess.max = 0",
        "\tprocess.priority = undefined",
        "\tdaemonize = yes",
        "\trlimit_files = 0",
        "\trlimit_core = 0",
        "\tevents.mechanism = epoll",
        "\tsystemd_interval = 10s",
        " ",
    ];

    #[test]
    fn worker_mode_directives_come_last_and_only_where_set() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let config = checked(&format!(
            "[global]\n[app]\nlisten = 127.0.0.1:9000\npm = static\npm.max_children = 2\n\
             worker = {script}\nworker.num = 3\nworker.env[MODE] = boot\n\
             [plain]\nlisten = 127.0.0.1:9001\npm = static\npm.max_children = 2\n"
        ));
        let lines = dump(&config);
        let at = |line: &str| lines.iter().position(|l| l == line);
        let worker = at(&format!("\tworker = {script}")).expect("the worker line");
        assert_eq!(lines[worker + 1], "\tworker.num = 3");
        assert_eq!(lines[worker + 2], "\tworker.max_requests = 0");
        assert_eq!(lines[worker + 3], "\tworker.max_consecutive_failures = 6");
        assert_eq!(lines[worker + 4], "\tworker.match = undefined");
        assert_eq!(lines[worker + 5], "\tworker.watch = undefined");
        assert_eq!(lines[worker + 6], "\tworker.env[MODE] = boot");
        let plain = at("[plain]").expect("the plain pool");
        assert!(worker < plain, "inside the app pool");
        let worker_lines = lines.iter().filter(|l| l.starts_with("\tworker"));
        assert_eq!(worker_lines.count(), 7, "none in the plain pool");
    }

    #[test]
    fn a_pool_with_arrays_as_php_fpm_dumps_it() {
        let config = checked(
            "[global]\nerror_log = /var/log/fpm.log\npid = /run/fpm.pid\n\
             [unconfined]\nlisten = 127.0.0.1:9000\n\
             access.suppress_path[] = /ping\naccess.suppress_path[] = /health_check.php\n\
             pm = static\npm.max_children = 5\n\
             php_value[error_reporting] = E_ALL\nphp_value[date.timezone] = Europe/London\n\
             php_admin_value[disable_functions] = eval\nphp_flag[display_errors] = On\n\
             php_admin_flag[log_errors] = 1\nenv[A] = 1\nenv[B] = $pool\n",
        );
        let lines = dump(&config);
        assert_eq!(lines[1], "\tpid = /run/fpm.pid");
        assert_eq!(lines[2], "\terror_log = /var/log/fpm.log");
        assert_eq!(&lines[3..DEFAULT_GLOBAL.len()], &DEFAULT_GLOBAL[3..]);
        let expected = [
            "[unconfined]",
            "\tprefix = undefined",
            "\tuser = undefined",
            "\tgroup = undefined",
            "\tlisten = 127.0.0.1:9000",
            "\tlisten.backlog = -1",
            "\tlisten.acl_users = undefined",
            "\tlisten.acl_groups = undefined",
            "\tlisten.owner = undefined",
            "\tlisten.group = undefined",
            "\tlisten.mode = undefined",
            "\tlisten.allowed_clients = undefined",
            "\tprocess.priority = undefined",
            "\tprocess.dumpable = no",
            "\tpm = static",
            "\tpm.max_children = 5",
            "\tpm.start_servers = 0",
            "\tpm.min_spare_servers = 0",
            "\tpm.max_spare_servers = 0",
            "\tpm.max_spawn_rate = 32",
            "\tpm.process_idle_timeout = 10",
            "\tpm.max_requests = 0",
            "\tpm.status_path = undefined",
            "\tpm.status_listen = undefined",
            "\tping.path = undefined",
            "\tping.response = undefined",
            "\taccess.log = undefined",
            "\taccess.format = undefined",
            "\taccess.suppress_path[] = /health_check.php",
            "\taccess.suppress_path[] = /ping",
            "\tslowlog = undefined",
            "\trequest_slowlog_timeout = 0s",
            "\trequest_slowlog_trace_depth = 20",
            "\trequest_terminate_timeout = 0s",
            "\trequest_terminate_timeout_track_finished = no",
            "\trlimit_files = 0",
            "\trlimit_core = 0",
            "\tchroot = undefined",
            "\tchdir = undefined",
            "\tcatch_workers_output = no",
            "\tdecorate_workers_output = yes",
            "\tclear_env = yes",
            "\tsecurity.limit_extensions = .php .phar",
            "\tenv[B] = unconfined",
            "\tenv[A] = 1",
            "\tphp_value[display_errors] = 1",
            "\tphp_value[date.timezone] = Europe/London",
            "\tphp_value[error_reporting] = 32767",
            "\tphp_admin_value[log_errors] = 1",
            "\tphp_admin_value[disable_functions] = eval",
            " ",
        ];
        assert_eq!(&lines[DEFAULT_GLOBAL.len()..], &expected);
    }

    #[test]
    fn defaults_and_values_tfpm_keeps_raw() {
        let config = checked(
            "[global]\nprocess.max = 8\nprocess.priority = -5\nrlimit_core = unlimited\n\
             events.mechanism = POLL\nsyslog.facility = LOCAL1\nlog_level = warning\n\
             daemonize = no\nemergency_restart_interval = 1m\n\
             [www]\nlisten = /run/$pool.sock\npm = dynamic\npm.max_children = 5\n\
             pm.min_spare_servers = 1\npm.max_spare_servers = 3\npm.max_spawn_rate = 64\n\
             ping.path = /ping\naccess.log = /var/log/$pool.access\nchroot = /srv/$pool\n\
             process.dumpable = yes\nrlimit_files = 4096\nlisten.acl_users = www-data\n\
             security.limit_extensions = .php .php7\n\
             [od]\nlisten = 9001\npm = ondemand\npm.max_children = 2\npm.min_spare_servers = 1\n",
        );
        let lines = dump(&config);
        let has = |line: &str| lines.iter().any(|l| l == line);
        for line in [
            "\tsyslog.facility = 136",
            "\tlog_level = WARNING",
            "\temergency_restart_interval = 60s",
            "\tprocess.max = 8",
            "\tprocess.priority = -5",
            "\tdaemonize = no",
            "\trlimit_core = -1",
            "\tevents.mechanism = poll",
            "\tlisten = /run/www.sock",
            "\tlisten.acl_users = www-data",
            "\tprocess.dumpable = yes",
            "\tpm = dynamic",
            "\tpm.start_servers = 2",
            "\tpm.max_spawn_rate = 64",
            "\tping.response = pong",
            "\taccess.log = /var/log/www.access",
            "\taccess.format = %R - %u %t \"%m %r\" %s",
            "\trlimit_files = 4096",
            "\tchroot = /srv/www",
            "\tsecurity.limit_extensions = .php .php7",
            "[od]",
            "\tpm = ondemand",
        ] {
            assert!(has(line), "no {line:?} in {lines:#?}");
        }
        let od = lines.iter().position(|l| l == "[od]").unwrap();
        assert_eq!(lines[od + 16], "\tpm.start_servers = 0");
        assert_eq!(lines[od + 17], "\tpm.min_spare_servers = 0");
        assert_eq!(lines.last().unwrap(), " ");
    }
}
