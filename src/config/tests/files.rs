//! Includes, php-fpm's whole-config checks, and Debian's own files.

use super::*;

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
