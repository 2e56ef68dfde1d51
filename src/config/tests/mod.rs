//! Tests for the config reader: the INI dialect, every directive form, includes,
//! expansion, value types, php-fpm's checks and messages, and Debian's files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::directives::{self, parse_bool, parse_int, parse_time};
use super::ini::{self, parse_line, Line};
use super::*;

/// A fresh empty directory under the system temp dir.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tfpm-config-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn opts() -> ReadOptions {
    let env = [("HOME", "/home/u"), ("PORT", "9001"), ("EMPTY", "")];
    ReadOptions {
        prefix: None,
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    }
}

fn line(text: &str) -> Option<Line> {
    parse_line(text, &opts()).unwrap()
}

fn value(text: &str) -> String {
    match line(&format!("k = {text}")) {
        Some(Line::Entry { value, .. }) => value,
        other => panic!("not an entry: {other:?}"),
    }
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = temp_dir();
    load(&write(&dir, "php-fpm.conf", text), &opts())
}

fn pool_text(body: &str) -> Result<Config, ConfigError> {
    load_text(&format!(
        "[www]\nlisten = 9000\npm = static\npm.max_children = 2\n{body}"
    ))
}

fn pool(body: &str) -> Pool {
    pool_text(body).unwrap().pools.remove(0)
}

/// The error's message for a one-file config, with the temp path replaced by `F`.
fn error_of(text: &str) -> String {
    let dir = temp_dir();
    let path = write(&dir, "php-fpm.conf", text);
    let err = load(&path, &opts()).unwrap_err();
    err.to_string().replace(&path.display().to_string(), "F")
}

fn pool_error(body: &str) -> String {
    error_of(&format!(
        "[www]\nlisten = 9000\npm = static\npm.max_children = 2\n{body}"
    ))
}

fn debian() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/debian")
}

// ---- the INI dialect ----

#[test]
fn blank_and_comment_lines_are_skipped() {
    for text in ["", "   ", "; comment", "  ;x = 1", "# hash comment", "\r"] {
        assert_eq!(line(text), None, "{text:?}");
    }
}

#[test]
fn sections() {
    assert_eq!(line("[www]"), Some(Line::Section("www".into())));
    assert_eq!(line("  [ global ]  "), Some(Line::Section("global".into())));
    assert_eq!(line("[\"my pool\"]"), Some(Line::Section("my pool".into())));
    assert!(parse_line("[www", &opts()).is_err());
}

#[test]
fn entries_and_arrays() {
    let entry = |k: &str, v: &str| {
        Some(Line::Entry {
            key: k.into(),
            value: v.into(),
        })
    };
    let array = |n: &str, k: &str, v: &str| {
        Some(Line::Array {
            name: n.into(),
            key: k.into(),
            value: v.into(),
        })
    };
    assert_eq!(
        line("listen = 127.0.0.1:9000"),
        entry("listen", "127.0.0.1:9000")
    );
    assert_eq!(line("listen=/run/a.sock"), entry("listen", "/run/a.sock"));
    assert_eq!(
        line("pm.max_children =5 ; five"),
        entry("pm.max_children", "5")
    );
    assert_eq!(line("empty ="), entry("empty", ""));
    assert_eq!(
        line("php_value[memory_limit] = 32M"),
        array("php_value", "memory_limit", "32M")
    );
    assert_eq!(
        line("env[PATH] = /usr/bin:/bin"),
        array("env", "PATH", "/usr/bin:/bin")
    );
    assert_eq!(
        line("access.suppress_path[] = /ping"),
        array("access.suppress_path", "", "/ping")
    );
    assert_eq!(
        line("php_flag[ display_errors ] = off"),
        array("php_flag", "display_errors", "")
    );
    assert_eq!(line("a = b = c"), entry("a", "b = c"));
}

#[test]
fn a_line_without_equals_is_an_error() {
    let err = parse_line("listen 9000", &opts()).unwrap_err();
    assert_eq!(err, "value is NULL for a ZEND_INI_PARSER_ENTRY");
    assert!(parse_line("= 3", &opts()).is_err());
    assert!(parse_line("php_value[x = 3", &opts()).is_err());
}

#[test]
fn bare_words_become_zend_booleans() {
    for word in ["yes", "On", "TRUE", "true ; c"] {
        assert_eq!(value(word), "1", "{word}");
    }
    for word in ["no", "Off", "false", "none", "null", "NONE"] {
        assert_eq!(value(word), "", "{word}");
    }
    assert_eq!(value("\"yes\""), "yes");
    assert_eq!(value("yes please"), "yes please");
}

#[test]
fn quoting() {
    assert_eq!(value("\"a ; b\""), "a ; b");
    assert_eq!(value("\"a \\\" b\""), "a \" b");
    assert_eq!(value("\"a\\\\b\""), "a\\b");
    assert_eq!(value("\"C:\\tmp\""), "C:\\tmp");
    assert_eq!(value("'${HOME} ; x'"), "${HOME} ; x");
    assert_eq!(value("\"  padded  \""), "  padded  ");
    assert_eq!(value("\"a\" ; comment"), "a");
    assert_eq!(value("\"a\"\"b\""), "ab");
    assert_eq!(value("pre\"fix\""), "prefix");
    assert!(parse_line("k = \"open", &opts()).is_err());
    assert!(parse_line("k = 'open", &opts()).is_err());
}

#[test]
fn bare_values_stop_at_semicolons_and_keep_inner_blanks() {
    assert_eq!(value("%R - %u %t ; fmt"), "%R - %u %t");
    assert_eq!(value(".php .php5"), ".php .php5");
    assert_eq!(value("Europe/London"), "Europe/London");
}

#[test]
fn error_constants_and_expressions_are_evaluated() {
    assert_eq!(value("E_ALL"), "32767");
    assert_eq!(value("E_ALL & ~E_NOTICE"), "32759");
    assert_eq!(value("E_ALL & ~E_DEPRECATED & ~E_STRICT ; prod"), "22527");
    assert_eq!(value("E_ERROR | E_WARNING"), "3");
    assert_eq!(value("E_ALL ^ E_NOTICE"), "32759");
    assert_eq!(value("E_ERROR | E_WARNING & E_ERROR"), "1");
    assert_eq!(value("E_ERROR | (E_WARNING & E_ERROR)"), "1");
    assert_eq!(value("!0"), "1");
    assert_eq!(value("1|2"), "3");
    // Left alone: plain numbers, unknown names, broken expressions, quotes.
    assert_eq!(value("0660"), "0660");
    assert_eq!(value("E_NOPE"), "E_NOPE");
    assert_eq!(value("files"), "files");
    assert_eq!(value("a|b"), "a|b");
    assert_eq!(value("E_ALL &"), "E_ALL &");
    assert_eq!(value("(E_ALL"), "(E_ALL");
    assert_eq!(value("\"E_ALL\""), "E_ALL");
}

#[test]
fn env_expansion() {
    assert_eq!(value("${HOME}/log"), "/home/u/log");
    assert_eq!(value("\"127.0.0.1:${PORT}\""), "127.0.0.1:9001");
    assert_eq!(value("${MISSING}x"), "x");
    assert_eq!(value("${EMPTY}"), "");
    assert_eq!(value("${HOME}${PORT}"), "/home/u9001");
    assert_eq!(value("$HOME"), "$HOME");
    assert_eq!(value("${open"), "${open");
    assert_eq!(value("\"${HOME}\\\"${PORT}\""), "/home/u\"9001");
    assert!(parse_line("k = \"${open\"", &opts()).is_err());
}

#[test]
fn env_expansion_reads_the_process_environment_by_default() {
    let path = std::env::var("PATH").unwrap_or_default();
    let got = parse_line("k = ${PATH}", &ReadOptions::default()).unwrap();
    assert_eq!(
        got,
        Some(Line::Entry {
            key: "k".into(),
            value: path
        })
    );
}

#[test]
fn wildcards() {
    let m = |p: &str, n: &str| ini::wildcard(p.as_bytes(), n.as_bytes());
    assert!(m("*.conf", "www.conf"));
    assert!(m("*.conf", ".conf"));
    assert!(!m("*.conf", "www.conf.bak"));
    assert!(m("w?w.conf", "www.conf"));
    assert!(!m("w?w.conf", "ww.conf"));
    assert!(m("[a-c]*", "b1"));
    assert!(!m("[a-c]*", "d1"));
    assert!(m("[!a-c]*", "d1"));
    assert!(m("[^a]", "b"));
    assert!(m("x[yz]", "xz"));
    assert!(m("*", ""));
    assert!(m("a*b*c", "aXbYbc"));
    assert!(m("[", "["));
    assert!(m("plain", "plain"));
    assert!(!m("plain", "plainer"));
}

#[test]
fn glob_sorts_skips_dot_files_and_walks_wildcard_directories() {
    let dir = temp_dir();
    for name in [
        "b.conf",
        "a.conf",
        ".hidden.conf",
        "c.txt",
        "d/x.conf",
        "e/x.conf",
    ] {
        write(&dir, name, "");
    }
    std::fs::create_dir_all(dir.join("dir.conf")).unwrap();
    let names = |pattern: &str| -> Vec<String> {
        ini::glob(&dir.join(pattern))
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect()
    };
    assert_eq!(names("*.conf"), ["a.conf", "b.conf", "dir.conf"]);
    assert_eq!(names(".*.conf"), [".hidden.conf"]);
    assert_eq!(names("*/x.conf"), ["d/x.conf", "e/x.conf"]);
    assert_eq!(names("c.txt"), ["c.txt"]);
    assert!(names("none/*.conf").is_empty());
    assert!(names("missing.conf").is_empty());
}

// ---- value types ----

#[test]
fn integers_as_php_fpm_reads_them() {
    assert_eq!(parse_int("5"), Ok(5));
    assert_eq!(parse_int("-1"), Ok(-1));
    assert_eq!(parse_int(""), Ok(0));
    assert_eq!(parse_int("007"), Ok(7));
    assert_eq!(parse_int("99999999999"), Ok(i32::MAX));
    let bad = Err("is not a valid number (greater or equal than zero)".to_string());
    for text in ["5k", "1.5", " 5", "--1", "+1", "0x10"] {
        assert_eq!(parse_int(text), bad, "{text}");
    }
}

#[test]
fn times_as_php_fpm_reads_them() {
    assert_eq!(parse_time("30"), Ok(30));
    assert_eq!(parse_time("30s"), Ok(30));
    assert_eq!(parse_time("2m"), Ok(120));
    assert_eq!(parse_time("1h"), Ok(3600));
    assert_eq!(parse_time("2d"), Ok(172_800));
    assert_eq!(parse_time("s"), Ok(0));
    assert_eq!(parse_time("10x5"), Ok(10));
    assert_eq!(parse_time(""), Err("invalid time value".into()));
    assert_eq!(
        parse_time("10x"),
        Err("unknown suffix used in time value".into())
    );
    assert_eq!(
        parse_time("10S"),
        Err("unknown suffix used in time value".into())
    );
}

#[test]
fn booleans_as_php_fpm_reads_them() {
    for yes in ["1", "yes", "true", "on", "YES"] {
        assert_eq!(parse_bool(yes), Ok(true), "{yes}");
    }
    for no in ["", "0", "no", "none", "false", "off", "Off"] {
        assert_eq!(parse_bool(no), Ok(false), "{no}");
    }
    assert_eq!(parse_bool("2"), Err("invalid boolean value".into()));
}

// ---- directives ----

#[test]
fn global_values_and_defaults() {
    let config = load_text(
        "[global]\npid = /run/x.pid\nerror_log = syslog\nlog_level = warn\nlog_limit = 4096\n\
         daemonize = no\nprocess_control_timeout = 10s\nsyslog.ident = fpm\n\
         syslog.facility = LOCAL3\nrlimit_files = 1024\nsystemd_interval = 1m\n\
         [www]\nlisten = 9000\npm = static\npm.max_children = 1\n",
    )
    .unwrap();
    let g = &config.global;
    assert_eq!(g.pid.as_deref(), Some("/run/x.pid"));
    assert_eq!(g.error_log.as_deref(), Some("syslog"));
    assert_eq!(g.log_level, LogLevel::Warning);
    assert_eq!(g.log_limit, 4096);
    assert!(!g.daemonize);
    assert_eq!(g.process_control_timeout, 10);
    assert_eq!(g.rlimit_files, Some(1024));
    // Read, but not honoured: each one says so.
    let unsupported: Vec<&str> = g.unsupported.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        unsupported,
        ["syslog.ident", "syslog.facility", "systemd_interval"]
    );
    let notices: Vec<&str> = config.notices.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(notices.len(), 4, "{notices:?}");
    assert!(
        notices[0].ends_with(":3] error_log = syslog is not supported by tfpm: it logs to stderr instead (under systemd, to the journal)"),
        "{notices:?}"
    );
    assert!(
        notices[1].ends_with(":8] 'syslog.ident' is not supported by tfpm and is ignored"),
        "{notices:?}"
    );

    let d = Global::default();
    assert!(d.daemonize && d.pid.is_none() && d.error_log.is_none());
    assert_eq!((d.log_level, d.log_limit), (LogLevel::Notice, 1024));
}

#[test]
fn pool_values() {
    let p = pool(
        "prefix = /srv\nuser = www-data\ngroup = www-data\nlisten.backlog = 511\n\
         listen.owner = nginx\nlisten.group = nginx\nlisten.mode = 0666\n\
         listen.allowed_clients = 127.0.0.1,::1\npm.max_requests = 500\n\
         pm.process_idle_timeout = 1m\npm.status_path = /status\npm.status_listen = 9001\n\
         ping.path = /ping\nping.response = ok\naccess.log = log/$pool.access.log\n\
         access.format = \"%R - %u %t \\\"%m %r\\\" %s\"\nslowlog = /var/log/$pool.slow\n\
         request_slowlog_timeout = 5s\nrequest_terminate_timeout = 1m\n\
         request_terminate_timeout_track_finished = yes\nchdir = /\n\
         catch_workers_output = yes\ndecorate_workers_output = no\nclear_env = no\n\
         security.limit_extensions = .php .php3  .html\n",
    );
    assert_eq!(p.name, "www");
    assert_eq!(p.prefix.as_deref(), Some("/srv"));
    assert_eq!(p.user.as_deref(), Some("www-data"));
    assert_eq!(p.group.as_deref(), Some("www-data"));
    assert_eq!(p.listen.as_deref(), Some("9000"));
    assert_eq!(p.listen_backlog, 511);
    assert_eq!(p.listen_owner.as_deref(), Some("nginx"));
    assert_eq!(p.listen_group.as_deref(), Some("nginx"));
    assert_eq!(p.listen_mode.as_deref(), Some("0666"));
    assert_eq!(p.listen_allowed_clients.as_deref(), Some("127.0.0.1,::1"));
    assert_eq!((p.pm, p.pm_max_children), (Some(Pm::Static), 2));
    assert_eq!(p.pm_max_requests, 500);
    assert_eq!(p.pm_process_idle_timeout, 60);
    assert_eq!(p.pm_status_path.as_deref(), Some("/status"));
    assert_eq!(p.pm_status_listen.as_deref(), Some("9001"));
    assert_eq!(p.ping_path.as_deref(), Some("/ping"));
    assert_eq!(p.ping_response, "ok");
    assert_eq!(p.access_log.as_deref(), Some("log/www.access.log"));
    assert_eq!(p.access_format.as_deref(), Some("%R - %u %t \"%m %r\" %s"));
    assert_eq!(p.slowlog.as_deref(), Some("/var/log/www.slow"));
    assert_eq!(
        (p.request_slowlog_timeout, p.request_terminate_timeout),
        (5, 60)
    );
    assert!(p.request_terminate_timeout_track_finished);
    assert_eq!(p.chdir.as_deref(), Some("/"));
    assert!(p.catch_workers_output && !p.decorate_workers_output && !p.clear_env);
    assert_eq!(p.security_limit_extensions, [".php", ".php3", ".html"]);
}

#[test]
fn pool_defaults_are_php_fpms() {
    let p = Pool::new("x");
    assert_eq!(p.listen_backlog, -1);
    assert_eq!(p.pm_process_idle_timeout, 10);
    assert_eq!(p.ping_response, "pong");
    assert!(p.clear_env && p.decorate_workers_output && !p.catch_workers_output);
    assert_eq!(p.security_limit_extensions, [".php", ".phar"]);
    assert!(p.pm.is_none() && p.listen.is_none());
    assert!(pool("security.limit_extensions =\n")
        .security_limit_extensions
        .is_empty());
}

#[test]
fn directive_names_are_case_insensitive() {
    let p = pool("PM.Max_Children = 7\nListen.Mode = 0600\n");
    assert_eq!(p.pm_max_children, 7);
    assert_eq!(p.listen_mode.as_deref(), Some("0600"));
}

#[test]
fn later_values_replace_earlier_ones() {
    assert_eq!(pool("listen = 9002\n").listen.as_deref(), Some("9002"));
}

#[test]
fn arrays() {
    let p = pool(
        "php_value[memory_limit] = 32M\nphp_flag[display_errors] = off\n\
         php_admin_value[error_log] = /var/log/$pool.err\nphp_admin_flag[log_errors] = on\n\
         php_value[error_reporting] = E_ALL\n\
         env[PATH] = /usr/bin\nenv[HOSTNAME] = $HOSTNAME\nenv[TMP] = \"${HOME}/tmp\"\n\
         access.suppress_path[] = /ping\naccess.suppress_path[] = /health\n",
    );
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        p.php_values,
        pairs(&[
            ("memory_limit", "32M"),
            ("display_errors", "0"),
            ("error_reporting", "32767")
        ])
    );
    assert_eq!(
        p.php_admin_values,
        pairs(&[("error_log", "/var/log/www.err"), ("log_errors", "1")])
    );
    assert_eq!(
        p.env,
        pairs(&[
            ("PATH", "/usr/bin"),
            ("HOSTNAME", "$HOSTNAME"),
            ("TMP", "/home/u/tmp")
        ])
    );
    assert_eq!(p.access_suppress_paths, ["/ping", "/health"]);
}

#[test]
fn first_declaration_of_an_ini_key_wins() {
    let p = pool("php_value[memory_limit] = 32M\nphp_value[memory_limit] = 64M\nphp_flag[memory_limit] = on\n");
    assert_eq!(
        p.php_values,
        [("memory_limit".to_string(), "32M".to_string())]
    );
}

#[test]
fn pool_substitution() {
    let config = load_text(
        "[alpha]\nlisten = /run/$pool.sock\npm = static\npm.max_children = 1\n\
         [beta]\nlisten = /run/$pool.sock\npm = static\npm.max_children = 1\n\
         slowlog = $pool/$pool\n",
    )
    .unwrap();
    assert_eq!(config.pools[0].listen.as_deref(), Some("/run/alpha.sock"));
    assert_eq!(config.pools[1].listen.as_deref(), Some("/run/beta.sock"));
    assert_eq!(config.pools[1].slowlog.as_deref(), Some("beta/beta"));
}

#[test]
fn pool_substitution_outside_a_pool_is_an_error() {
    assert_eq!(
        error_of("[global]\npid = /run/$pool.pid\n"),
        "ERROR: [F:2] unable to parse value for entry 'pid': Can't use '$pool' when the pool is not defined\n\
         ERROR: failed to load configuration file 'F'"
    );
}

#[test]
fn sections_reopen_case_insensitively_and_global_returns() {
    let config = load_text(
        "[www]\nlisten = 9000\n[global]\nlog_level = debug\n[WWW]\npm = static\n\
         pm.max_children = 3\n[other]\nlisten = 9001\npm = ondemand\npm.max_children = 1\n",
    )
    .unwrap();
    assert_eq!(config.pools.len(), 2);
    assert_eq!(config.pools[0].name, "www");
    assert_eq!(config.pools[0].pm_max_children, 3);
    assert_eq!(config.pools[1].pm, Some(Pm::Ondemand));
    assert_eq!(config.global.log_level, LogLevel::Debug);
}

#[test]
fn entries_before_any_section_are_global() {
    let config =
        load_text("pid = /x.pid\n[www]\nlisten = 1\npm = static\npm.max_children = 1\n").unwrap();
    assert_eq!(config.global.pid.as_deref(), Some("/x.pid"));
}

#[test]
fn every_known_directive_is_accepted() {
    let mut text = String::from("[global]\n");
    for name in directives::global_directives() {
        text.push_str(&format!("{name} = {}\n", sample(name)));
    }
    text.push_str("[www]\n");
    for name in directives::pool_directives() {
        text.push_str(&format!("{name} = {}\n", sample(name)));
    }
    for name in directives::POOL_ARRAYS {
        let key = if *name == "access.suppress_path" {
            ""
        } else {
            "k"
        };
        text.push_str(&format!("{name}[{key}] = {}\n", sample(name)));
    }
    let dir = temp_dir();
    let config = directives::parse(&write(&dir, "all.conf", &text), &opts()).unwrap();
    let unsupported = config
        .notices
        .iter()
        .filter(|n| n.level == Level::Warning)
        .count();
    let total = config.global.unsupported.len() + config.pools[0].unsupported.len();
    assert_eq!(unsupported, total);
    assert_eq!(total, 17); // syslog.*, systemd_interval and the pool-level rlimits among them
}

/// A valid value for a directive of any type.
fn sample(name: &str) -> &'static str {
    match name {
        "log_level" => "notice",
        "pm" => "dynamic",
        "syslog.facility" => "daemon",
        "rlimit_core" => "unlimited",
        "log_buffering"
        | "daemonize"
        | "process.dumpable"
        | "catch_workers_output"
        | "decorate_workers_output"
        | "clear_env"
        | "request_terminate_timeout_track_finished"
        | "php_flag"
        | "php_admin_flag" => "yes",
        "access.suppress_path" => "/ping",
        _ => "1",
    }
}

#[test]
fn unsupported_directives_are_warnings_and_kept() {
    let config = pool_text("chroot = /srv\npm.max_spawn_rate = 64\n").unwrap();
    let p = &config.pools[0];
    assert_eq!(
        p.unsupported,
        [
            ("chroot".to_string(), "/srv".to_string()),
            ("pm.max_spawn_rate".to_string(), "64".to_string())
        ]
    );
    let warning = config.notices[0].to_string();
    assert!(warning.starts_with("WARNING: ["), "{warning}");
    assert!(
        warning.ends_with(":5] [pool www] 'chroot' is not supported by tfpm and is ignored"),
        "{warning}"
    );
}

#[test]
fn unsupported_directives_still_check_their_values() {
    let err = pool_error("rlimit_core = -5\n");
    assert_eq!(
        err.lines().next().unwrap(),
        "ERROR: [F:5] unable to parse value for entry 'rlimit_core': must be greater than zero or 'unlimited'"
    );
}

// ---- parse errors, with php-fpm's text ----

#[test]
fn unknown_entry() {
    assert_eq!(
        pool_error("foo = bar\n"),
        "ERROR: [F:5] unknown entry 'foo'\nERROR: failed to load configuration file 'F'"
    );
    assert!(
        error_of("[global]\nlisten = 9000\n").starts_with("ERROR: [F:2] unknown entry 'listen'")
    );
    assert!(error_of("include_path = x\n").starts_with("ERROR: [F:1] unknown entry 'include_path'"));
}

#[test]
fn errors_carry_file_line_and_directive() {
    let dir = temp_dir();
    let path = write(&dir, "x.conf", "[www]\n\n; c\npm = sometimes\n");
    let err = load(&path, &opts()).unwrap_err();
    assert_eq!(err.file.as_deref(), Some(path.as_path()));
    assert_eq!(err.line, Some(4));
    assert_eq!(err.directive.as_deref(), Some("pm"));
    assert_eq!(err.level, Level::Error);
    assert_eq!(
        err.message,
        "unable to parse value for entry 'pm': invalid process manager (static, dynamic or ondemand)"
    );
    assert_eq!(
        err.located(),
        format!("[{}:4] {}", path.display(), err.message)
    );
}

#[test]
fn bad_values() {
    let first = |body: &str| pool_error(body).lines().next().unwrap().to_string();
    let cases = [
        ("pm.max_children = five\n", "unable to parse value for entry 'pm.max_children': is not a valid number (greater or equal than zero)"),
        ("clear_env = maybe\n", "unable to parse value for entry 'clear_env': invalid boolean value"),
        ("request_terminate_timeout = 5y\n", "unable to parse value for entry 'request_terminate_timeout': unknown suffix used in time value"),
        ("request_terminate_timeout =\n", "unable to parse value for entry 'request_terminate_timeout': invalid time value"),
    ];
    for (body, message) in cases {
        assert_eq!(first(body), format!("ERROR: [F:5] {message}"), "{body}");
    }
    assert_eq!(
        error_of("log_level = loud\n").lines().next().unwrap(),
        "ERROR: [F:1] unable to parse value for entry 'log_level': invalid value for 'log_level'"
    );
    assert_eq!(
        error_of("syslog.facility = nowhere\n")
            .lines()
            .next()
            .unwrap(),
        "ERROR: [F:1] unable to parse value for entry 'syslog.facility': invalid value"
    );
}

#[test]
fn array_errors() {
    let first = |body: &str| pool_error(body).lines().next().unwrap().to_string();
    assert_eq!(
        first("php_value[] = 1\n"),
        "ERROR: [F:5] You must provide a key for field 'php_value'"
    );
    assert_eq!(
        first("access.suppress_path[x] = /a\n"),
        "ERROR: [F:5] Keys provided to field 'access.suppress_path' are ignored"
    );
    assert_eq!(
        first("access.suppress_path[] = a\n"),
        "ERROR: [F:5] Values provided to field 'access.suppress_path' must begin with '/'"
    );
    assert_eq!(first("env[X] =\n"), "ERROR: [F:5] empty value");
    assert_eq!(
        first("foo[x] = 1\n"),
        "ERROR: [F:5] unknown directive 'foo'"
    );
    assert_eq!(
        first("php_flag[display_errors] = sometimes\n"),
        "ERROR: [F:5] error while parsing 'php_flag[display_errors]' : invalid boolean value"
    );
    assert_eq!(
        error_of("[global]\nphp_value[x] = 1\n")
            .lines()
            .next()
            .unwrap(),
        "ERROR: [F:2] Array are not allowed in the global section"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    assert_eq!(
        pool_error("listen 9000\n").lines().next().unwrap(),
        "ERROR: [F:5] value is NULL for a ZEND_INI_PARSER_ENTRY"
    );
    assert!(pool_error("x = \"open\n").starts_with("ERROR: [F:5] syntax error"));
}

#[test]
fn a_missing_file() {
    let err = load(Path::new("/nonexistent/php-fpm.conf"), &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ERROR: failed to open configuration file '/nonexistent/php-fpm.conf': No such file or directory (2)\n\
         ERROR: failed to load configuration file '/nonexistent/php-fpm.conf'"
    );
}

// ---- include ----

#[test]
fn include_globs_in_sorted_order_and_anywhere() {
    let dir = temp_dir();
    write(
        &dir,
        "pool.d/b.conf",
        "[b]\nlisten = 2\npm = static\npm.max_children = 1\n",
    );
    write(
        &dir,
        "pool.d/a.conf",
        "[a]\nlisten = 1\npm = static\npm.max_children = 1\n",
    );
    write(&dir, "pool.d/a.conf.dpkg-old", "garbage\n");
    write(&dir, "extra.conf", "php_value[x] = from-include\n");
    let main = write(
        &dir,
        "php-fpm.conf",
        &format!(
            "[global]\ninclude = {}/pool.d/*.conf\n[a]\ninclude=extra.conf\n",
            dir.display()
        ),
    );
    let config = load(&main, &opts()).unwrap();
    let names: Vec<_> = config.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(config.pools[0].php_values[0].1, "from-include");
}

#[test]
fn relative_includes_use_the_prefix() {
    let dir = temp_dir();
    write(
        &dir,
        "etc/pool.d/www.conf",
        "[www]\nlisten = 1\npm = static\npm.max_children = 1\n",
    );
    let main = write(&dir, "conf/php-fpm.conf", "include = etc/pool.d/*.conf\n");
    let with_prefix = ReadOptions {
        prefix: Some(dir.clone()),
        ..opts()
    };
    assert_eq!(load(&main, &with_prefix).unwrap().pools.len(), 1);
    // Without a prefix, relative to the main file's directory: nothing there.
    let err = load(&main, &opts()).unwrap_err();
    assert!(err.message.starts_with("No pool defined"), "{err}");
}

#[test]
fn an_include_that_matches_nothing_is_a_warning() {
    let dir = temp_dir();
    let main = write(
        &dir,
        "php-fpm.conf",
        "include = /nonexistent/*.conf\n[www]\nlisten = 1\npm = static\npm.max_children = 1\n",
    );
    let config = load(&main, &opts()).unwrap();
    assert_eq!(
        config.notices[0].to_string(),
        format!(
            "WARNING: Nothing matches the include pattern '/nonexistent/*.conf' from {} at line 1.",
            main.display()
        )
    );
}

#[test]
fn errors_in_included_files_name_that_file_and_the_include() {
    let dir = temp_dir();
    let inner = write(&dir, "pool.d/www.conf", "[www]\n\nbogus = 1\n");
    let main = write(&dir, "php-fpm.conf", "[global]\ninclude = pool.d/*.conf\n");
    let err = load(&main, &opts()).unwrap_err();
    assert_eq!(
        (err.file.as_deref(), err.line),
        (Some(inner.as_path()), Some(3))
    );
    assert_eq!(
        err.to_string(),
        format!(
            "ERROR: [{inner}:3] unknown entry 'bogus'\n\
             ERROR: Unable to include {inner} from {main} at line 2\n\
             ERROR: failed to load configuration file '{main}'",
            inner = inner.display(),
            main = main.display()
        )
    );
}

#[test]
fn includes_nest_at_most_five_deep() {
    let dir = temp_dir();
    for i in 1..=5 {
        write(
            &dir,
            &format!("{i}.conf"),
            &format!("include = {}.conf\n", i + 1),
        );
    }
    write(
        &dir,
        "6.conf",
        "[www]\nlisten = 1\npm = static\npm.max_children = 1\n",
    );
    let err = load(&dir.join("1.conf"), &opts()).unwrap_err();
    assert_eq!(
        err.message,
        "failed to include more than 5 files recursively"
    );

    std::fs::write(dir.join("2.conf"), "include = 6.conf\n").unwrap();
    assert_eq!(load(&dir.join("1.conf"), &opts()).unwrap().pools.len(), 1);
}

#[test]
fn a_self_include_stops_at_the_depth_limit() {
    let dir = temp_dir();
    let main = write(&dir, "loop.conf", "include = loop.conf\n");
    let err = load(&main, &opts()).unwrap_err();
    assert_eq!(
        err.message,
        "failed to include more than 5 files recursively"
    );
}

// ---- post-parse checks ----

#[test]
fn no_pool() {
    assert_eq!(
        error_of("[global]\npid = /x\n"),
        "ERROR: No pool defined. at least one pool section must be specified in config file"
    );
}

#[test]
fn pool_checks() {
    let cases = [
        (
            "[www]\npm = static\npm.max_children = 1\n",
            "ALERT: [pool www] no listen address have been defined!",
        ),
        (
            "[www]\nlisten =\npm = static\npm.max_children = 1\n",
            "ALERT: [pool www] no listen address have been defined!",
        ),
        (
            "[www]\nlisten = 1\npm.max_children = 1\n",
            "ALERT: [pool www] the process manager is missing (static, dynamic or ondemand)",
        ),
        (
            "[www]\nlisten = 1\npm = static\n",
            "ALERT: [pool www] pm.max_children must be a positive value",
        ),
        (
            "[www]\nlisten = 1\npm = ondemand\npm.max_children = 1\npm.process_idle_timeout = 0\n",
            "ALERT: [pool www] pm.process_idle_timeout(0s) must be greater than 0s",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(error_of(text), message, "{text}");
    }
}

fn dynamic(spare: &str) -> String {
    format!("[www]\nlisten = 1\npm = dynamic\npm.max_children = 5\n{spare}")
}

#[test]
fn dynamic_spare_checks() {
    let cases = [
        ("pm.max_spare_servers = 3\n", "pm.min_spare_servers(0) must be a positive value"),
        ("pm.min_spare_servers = 1\n", "pm.max_spare_servers(0) must be a positive value"),
        ("pm.min_spare_servers = 1\npm.max_spare_servers = 6\n", "pm.min_spare_servers(1) and pm.max_spare_servers(6) cannot be greater than pm.max_children(5)"),
        ("pm.min_spare_servers = 3\npm.max_spare_servers = 2\n", "pm.max_spare_servers(2) must not be less than pm.min_spare_servers(3)"),
        ("pm.min_spare_servers = 2\npm.max_spare_servers = 3\npm.start_servers = 4\n", "pm.start_servers(4) must not be less than pm.min_spare_servers(2) and not greater than pm.max_spare_servers(3)"),
    ];
    for (spare, message) in cases {
        assert_eq!(
            error_of(&dynamic(spare)),
            format!("ALERT: [pool www] {message}"),
            "{spare}"
        );
    }
}

#[test]
fn dynamic_start_servers_defaults_between_the_spares() {
    let config = load_text(&dynamic(
        "pm.min_spare_servers = 1\npm.max_spare_servers = 4\n",
    ))
    .unwrap();
    assert_eq!(config.pools[0].pm_start_servers, 2);
    assert_eq!(
        config.notices[0].to_string(),
        "NOTICE: [pool www] pm.start_servers is not set. It's been set to 2."
    );
}

#[test]
fn path_checks() {
    let cases = [
        ("pm.status_path = status\n", "the status path 'status' must start with a '/'"),
        ("pm.status_path = /\n", "the status path '/' is not long enough"),
        ("pm.status_path = /st?tus\n", "the status path '/st?tus' must contain only the following characters '[alphanum]/_-.~'"),
        ("ping.path = ping\n", "the ping path 'ping' must start with a '/'"),
        ("ping.path = /ping\nping.response =\n", "the ping response page '' is not long enough"),
        ("chdir = www\n", "the chdir path 'www' must start with a '/'"),
        ("chdir = /nonexistent/dir\n", "the chdir path '/nonexistent/dir' does not exist or is not a directory"),
        ("request_slowlog_timeout = 5\n", "'slowlog' must be specified for use with 'request_slowlog_timeout'"),
        ("slowlog = /s\nrequest_slowlog_timeout = 1m\nrequest_terminate_timeout = 30\n", "'request_slowlog_timeout' (60) can't be greater than 'request_terminate_timeout' (30)"),
    ];
    for (body, message) in cases {
        assert_eq!(
            pool_error(body),
            format!("ERROR: [pool www] {message}"),
            "{body}"
        );
    }
    pool("pm.status_path = /fpm-status_1.~x\nping.path = /ping\n");
    pool("slowlog = /s\nrequest_slowlog_timeout = 10\n");
}

#[test]
fn access_format_checks() {
    assert_eq!(
        pool_error("access.log = /l\naccess.format = \"%R %x\"\n"),
        "WARNING: Invalid token in the access.format (%x)\n\
         ERROR: [pool www] wrong format for access.format '%R %x'"
    );
    assert_eq!(
        pool_error("access.log = /l\naccess.format = \"%{ms}d\"\n"),
        "WARNING: only 'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds' are allowed as a modifier for %d ('ms')\n\
         ERROR: [pool www] wrong format for access.format '%{ms}d'"
    );
    // Without access.log the format is not looked at, as in php-fpm.
    pool("access.format = \"%x\"\n");
    pool("access.log = /l\n");
}

#[test]
fn slowlog_trace_depth() {
    assert_eq!(pool("").request_slowlog_trace_depth, 20);
    let p = pool("slowlog = /s\nrequest_slowlog_trace_depth = 5\n");
    assert_eq!(p.request_slowlog_trace_depth, 5);
    assert_eq!(
        pool_error("request_slowlog_trace_depth = 5\n"),
        "ERROR: [pool www] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'"
    );
    assert_eq!(
        pool_error("slowlog = /s\nrequest_slowlog_trace_depth = -1\n"),
        "ERROR: [pool www] 'request_slowlog_trace_depth' (-1) must be a positive value"
    );
}

#[test]
fn two_pools_may_not_share_a_listen_address() {
    assert_eq!(
        error_of(
            "[a]\nlisten = 9000\npm = static\npm.max_children = 1\n\
             [b]\nlisten = 9000\npm = static\npm.max_children = 1\n"
        ),
        "ERROR: [pool b] unable to set listen address as it's already used in another pool 'a'"
    );
}

#[test]
fn log_limit_minimum() {
    assert_eq!(
        error_of("log_limit = 511\n[www]\nlisten = 1\npm = static\npm.max_children = 1\n"),
        "ERROR: log_limit must be greater than 512"
    );
}

// ---- Debian's php8.2-fpm files ----

/// Debian's php-fpm.conf with its absolute include pointed at the fixtures.
fn debian_main() -> PathBuf {
    let text = std::fs::read_to_string(debian().join("php-fpm.conf")).unwrap();
    let pattern = format!("include={}/pool.d/*.conf", debian().display());
    let text = text.replace("include=/etc/php/8.2/fpm/pool.d/*.conf", &pattern);
    assert!(text.contains(&pattern));
    write(&temp_dir(), "php-fpm.conf", &text)
}

#[test]
fn debian_files_load() {
    let config = load(&debian_main(), &opts()).unwrap();
    let g = &config.global;
    assert_eq!(g.pid.as_deref(), Some("/run/php/php8.2-fpm.pid"));
    assert_eq!(g.error_log.as_deref(), Some("/var/log/php8.2-fpm.log"));
    assert!(g.daemonize);
    assert_eq!(config.pools.len(), 1);
    let p = &config.pools[0];
    assert_eq!(p.name, "www");
    assert_eq!(
        (p.user.as_deref(), p.group.as_deref()),
        (Some("www-data"), Some("www-data"))
    );
    assert_eq!(p.listen.as_deref(), Some("/run/php/php8.2-fpm.sock"));
    assert_eq!(p.listen_owner.as_deref(), Some("www-data"));
    assert_eq!(p.listen_group.as_deref(), Some("www-data"));
    assert_eq!(p.pm, Some(Pm::Dynamic));
    assert_eq!(p.pm_max_children, 5);
    assert_eq!(
        (
            p.pm_start_servers,
            p.pm_min_spare_servers,
            p.pm_max_spare_servers
        ),
        (2, 1, 3)
    );
    assert!(config.notices.is_empty(), "{:?}", config.notices);
}

#[test]
fn debian_main_file_unchanged_reads_up_to_its_missing_include() {
    let path = debian().join("php-fpm.conf");
    let config = directives::parse(&path, &opts()).unwrap();
    assert_eq!(
        config.global.pid.as_deref(),
        Some("/run/php/php8.2-fpm.pid")
    );
    if !Path::new("/etc/php/8.2/fpm/pool.d").is_dir() {
        let warning = &config.notices[0].message;
        assert!(warning
            .starts_with("Nothing matches the include pattern '/etc/php/8.2/fpm/pool.d/*.conf'"));
    }
}

/// Every commented-out example directive in Debian's files (`;key = value`),
/// uncommented, is accepted.
#[test]
fn debian_commented_examples_are_all_accepted() {
    let mut count = 0;
    for name in ["php-fpm.conf", "pool.d/www.conf"] {
        let text = std::fs::read_to_string(debian().join(name)).unwrap();
        let mut out = String::new();
        for raw in text.lines() {
            match example(raw) {
                Some(directive) if directive.starts_with("include") => {}
                Some(directive) => {
                    count += 1;
                    out.push_str(directive);
                }
                None => out.push_str(raw),
            }
            out.push('\n');
        }
        let path = write(&temp_dir(), name, &out);
        directives::parse(&path, &opts()).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(count > 40, "{count}");
}

/// `;key = value` where key looks like a directive, minus the `;`.
fn example(raw: &str) -> Option<&str> {
    let rest = raw.strip_prefix(';')?;
    let key = rest.split('=').next()?.trim_end();
    let plain = |c: char| c.is_ascii_lowercase() || "._[]".contains(c) || c.is_ascii_uppercase();
    let is_directive = rest.contains(" = ") || rest.contains('=') && !rest.contains(' ');
    let ok = !key.is_empty()
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(plain);
    (ok && is_directive).then_some(rest)
}

#[test]
fn read_options_env_map_is_used() {
    let mut env = HashMap::new();
    env.insert("X".to_string(), "y".to_string());
    let opts = ReadOptions {
        prefix: None,
        env: Some(env),
    };
    assert_eq!(ini::parse_value("${X}", &opts), Ok("y".to_string()));
}
