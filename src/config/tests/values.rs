//! Global and pool directives: values, defaults, arrays, substitution, and
//! the errors php-fpm gives for bad ones.

use super::*;

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
