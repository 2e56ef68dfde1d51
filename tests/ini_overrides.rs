//! Per-request and per-pool ini overrides, combined with a script that
//! changes the same setting, against php-fpm from our build (issue 15).
//!
//! Each way to override a setting (none, `PHP_VALUE`, `PHP_ADMIN_VALUE`, a
//! `.user.ini`, a pool's `php_value` and `php_admin_value`) meets each way a
//! script changes it (`ini_set`, `ini_restore`, the setting's own function:
//! `error_reporting()`, `set_include_path()`, `date_default_timezone_set()`,
//! `set_time_limit()`), inside and outside a Fiber. php-fpm runs with
//! `pm.max_requests = 1`, so that its children's habit of keeping a
//! PHP_VALUE for their later requests does not show; tfpm keeps its threads.
//! Every answer must be the same, and after each request a plain one on the
//! same tfpm must see none of it. The `PHP_VALUE` and `.user.ini` requests
//! go through nginx, as a site sends them; the pools are asked directly.
//!
//! The second test is the crash of issue 15: `PHP_VALUE=error_reporting=-1`
//! and a script that calls `error_reporting()` corrupted the thread's heap
//! (the engine freed the PHP_VALUE string as request memory); and a
//! PHP_VALUE of `browscap` with a relative path, which crashed the worker
//! before the request had a working directory (found by tests/phpt.rs).

use std::net::SocketAddr;
use std::path::Path;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::http;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// The settings, each with the value every override gives it.
const OVERRIDES: &[(&str, &str)] = &[
    ("error_reporting", "-1"),
    ("include_path", ".:/tmp/tfpm-override"),
    ("date.timezone", "Europe/Paris"),
    ("max_execution_time", "45"),
];
const HOWS: &[&str] = &["none", "ini_set", "func", "ini_restore"];

/// nginx passes PHP_VALUE and PHP_ADMIN_VALUE from request headers (tests only).
const LOCATIONS: &str = "
location ^~ /overrides/ {
    include fastcgi_params;
    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
    fastcgi_param PHP_VALUE $http_x_php_value if_not_empty;
    fastcgi_param PHP_ADMIN_VALUE $http_x_php_admin_value if_not_empty;
    fastcgi_keep_conn on;
    fastcgi_pass tfpm;
}
";

/// A pool's lines that set every setting with `directive` (php_value, php_admin_value).
fn pool_lines(directive: &str) -> String {
    OVERRIDES
        .iter()
        .map(|(k, v)| format!("{directive}[{k}] = \"{v}\"\n"))
        .collect()
}

/// The same pool for tfpm, in a php-fpm config of its own.
fn tfpm_pool(dir: &Path, name: &str, lines: &str) -> Tfpm {
    let conf = dir.join(format!("{name}.conf"));
    let text = format!(
        "[global]\nerror_log = /proc/self/fd/2\npid = {}/{name}.pid\n\n[www]\nlisten = 127.0.0.1:0\n\
         pm = static\npm.max_children = 1\n{lines}",
        dir.display()
    );
    std::fs::write(&conf, text).expect("write config");
    Tfpm::start(
        TFPM.as_ref(),
        &["-F", "-R", "-n", "-y", conf.to_str().unwrap()],
    )
}

/// One of the two servers: a plain pool behind nginx, and the two pools
/// with php_value and php_admin_value.
struct Side {
    nginx: Nginx,
    plain: SocketAddr,
    value: SocketAddr,
    admin: SocketAddr,
    logs: Box<dyn Fn() -> String>,
}

fn fpm_side() -> (Side, Vec<PhpFpm>) {
    let pool = |lines: String| PhpFpm::start(2, &format!("pm.max_requests = 1\n{lines}"), &[]);
    let fpms = vec![
        pool(String::new()),
        pool(pool_lines("php_value")),
        pool(pool_lines("php_admin_value")),
    ];
    let nginx = Nginx::start(&fpms[0].addr().to_string(), &docroot(), LOCATIONS);
    let side = Side {
        nginx,
        plain: fpms[0].addr(),
        value: fpms[1].addr(),
        admin: fpms[2].addr(),
        logs: Box::new(String::new),
    };
    (side, fpms)
}

fn tfpm_side(dir: &Path) -> Side {
    let tfpms = [
        tfpm_pool(dir, "plain", ""),
        tfpm_pool(dir, "value", &pool_lines("php_value")),
        tfpm_pool(dir, "admin", &pool_lines("php_admin_value")),
    ];
    let nginx = Nginx::start(&tfpms[0].addr().to_string(), &docroot(), LOCATIONS);
    let (plain, value, admin) = (tfpms[0].addr(), tfpms[1].addr(), tfpms[2].addr());
    let tfpms = std::sync::Arc::new(tfpms);
    Side {
        nginx,
        plain,
        value,
        admin,
        logs: Box::new(move || tfpms.iter().map(Tfpm::log).collect::<Vec<_>>().join("\n")),
    }
}

/// The override kinds, and how each request carries it.
#[derive(Debug, Clone, Copy)]
enum Override {
    None,
    PhpValue,
    PhpAdminValue,
    UserIni,
    PoolValue,
    PoolAdmin,
}

const KINDS: &[Override] = &[
    Override::None,
    Override::PhpValue,
    Override::PhpAdminValue,
    Override::UserIni,
    Override::PoolValue,
    Override::PoolAdmin,
];

/// One request with `kind` of override for setting `d` (whose override is
/// `d=value`), running change.php with `query`; the body.
fn ask(side: &Side, kind: Override, query: &str, setting: &str) -> String {
    let nginx = |path: &str, header: Option<(&str, &str)>| {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let target = format!("{path}?{query}");
        let response = http::request(side.nginx.addr(), "GET", &target, &headers, b"")
            .expect("GET through nginx");
        format!("{} {}", response.status, response.text())
    };
    let direct = |addr: SocketAddr| {
        let request = CgiRequest::get(&docroot(), "/overrides/change.php").query(query);
        let mut client = FcgiClient::connect_tcp(addr).expect("connect");
        let response = client.send(&request, false).expect("request").cgi();
        format!(
            "{} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )
    };
    match kind {
        Override::None => nginx("/overrides/change.php", None),
        Override::UserIni => nginx("/overrides/userini/change.php", None),
        Override::PhpValue => nginx("/overrides/change.php", Some(("X-Php-Value", setting))),
        Override::PhpAdminValue => nginx(
            "/overrides/change.php",
            Some(("X-Php-Admin-Value", setting)),
        ),
        Override::PoolValue => direct(side.value),
        Override::PoolAdmin => direct(side.admin),
    }
}

/// The same pool with no request override: where a plain request goes after one of `kind`.
fn plain_of(kind: Override) -> Override {
    match kind {
        Override::PoolValue | Override::PoolAdmin => kind,
        _ => Override::None,
    }
}

fn deaths(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("worker exited") || l.contains("zend_mm_heap") || l.contains("panicked")
        })
        .collect()
}

#[test]
fn overrides_meet_script_changes_as_under_php_fpm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (fpm, _fpms) = fpm_side();
    let tfpm = tfpm_side(dir.path());
    let mut differences = Vec::new();
    let mut cases = 0;
    for &kind in KINDS {
        for (d, value) in OVERRIDES {
            let setting = format!("{d}={value}");
            for how in HOWS {
                for fiber in [0, 1] {
                    let query = format!("d={d}&how={how}&fiber={fiber}");
                    let plain = format!("d={d}&how=none&fiber=0");
                    let after = format!("{kind:?} {query}");
                    for (query, kind) in [(&query, kind), (&plain, plain_of(kind))] {
                        cases += 1;
                        let want = ask(&fpm, kind, query, &setting);
                        let got = ask(&tfpm, kind, query, &setting);
                        assert!(
                            want.starts_with("200 ") && want.ends_with("ok\n"),
                            "php-fpm, {kind:?} {query}: {want}"
                        );
                        if want != got {
                            differences.push(format!("{kind:?} {query} (after {after})\n--- php-fpm\n{want}\n--- tfpm\n{got}"));
                        }
                    }
                }
            }
        }
    }
    let log = (tfpm.logs)();
    assert!(deaths(&log).is_empty(), "tfpm lost a worker:\n{log}");
    assert!(
        differences.is_empty(),
        "{} of {cases} answers differ from php-fpm's:\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}

/// The two lines of issue 15, through nginx, many times on one thread.
#[test]
fn php_value_error_reporting_with_error_reporting_calls_keeps_the_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tfpm = tfpm_side(dir.path());
    let setting = "error_reporting=-1";
    for fiber in [0, 1, 0, 1] {
        for how in ["func", "ini_restore", "ini_set"] {
            let query = format!("d=error_reporting&how={how}&fiber={fiber}");
            let body = ask(&tfpm, Override::PhpValue, &query, setting);
            assert!(
                body.starts_with("200 ") && body.ends_with("ok\n"),
                "{query}: {body}"
            );
            assert!(
                body.contains("restored: ini_get='-1' getter=-1 global='-1'"),
                "{query}: {body}"
            );
        }
    }
    // A setting whose handler resolves a relative path before the request starts.
    let body = ask(
        &tfpm,
        Override::PhpValue,
        "d=error_reporting&how=none",
        "browscap=no-such.ini",
    );
    assert!(
        body.starts_with("200 ") && body.ends_with("ok\n"),
        "relative browscap: {body}"
    );
    let body = ask(&tfpm, Override::None, "d=error_reporting&how=none", setting);
    assert!(
        !body.contains("'-1'"),
        "PHP_VALUE stayed for the next request: {body}"
    );
    let log = (tfpm.logs)();
    assert!(deaths(&log).is_empty(), "tfpm lost a worker:\n{log}");
}

/// disable_functions in PHP_VALUE takes the functions away for its request,
/// as php-fpm does (for good, there), and the next request has them again.
#[test]
fn php_value_disable_functions_lasts_for_its_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tfpm = tfpm_side(dir.path());
    let ask = |header: Option<(&str, &str)>| {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let target = "/overrides/functions.php?f=strlen,str_repeat,exec";
        let response = http::request(tfpm.nginx.addr(), "GET", target, &headers, b"").expect("GET");
        response.text()
    };
    for _ in 0..3 {
        let off = ask(Some(("X-Php-Value", "disable_functions=strlen, exec")));
        assert_eq!(off, "strlen: no\nstr_repeat: yes\nexec: no\n");
        assert_eq!(ask(None), "strlen: yes\nstr_repeat: yes\nexec: yes\n");
    }
    let log = (tfpm.logs)();
    assert!(deaths(&log).is_empty(), "tfpm lost a worker:\n{log}");
}

/// A pattern compiled with JIT by one request is not run with JIT by the
/// next, whose PHP_VALUE turns pcre.jit off (php-src's spl/gh14290).
#[test]
fn php_value_pcre_jit_off_meets_no_jit_compiled_pattern() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tfpm = tfpm_side(dir.path());
    let ask = |php_value: Option<&str>| {
        let mut request = CgiRequest::get(&docroot(), "/overrides/pcre.php");
        if let Some(value) = php_value {
            request = request.param("PHP_VALUE", value);
        }
        let mut client = FcgiClient::connect_tcp(tfpm.plain).expect("connect");
        client.send(&request, false).expect("request").cgi().text()
    };
    for _ in 0..2 {
        assert!(ask(None).starts_with("int(1)"), "with JIT");
        let limited = ask(Some("pcre.jit=0\npcre.backtrack_limit=2"));
        assert!(limited.contains("Backtrack limit exhausted"), "{limited}");
    }
}

/// disable_classes in PHP_VALUE and PHP_ADMIN_VALUE disables the classes for
/// its request, as php-fpm does (for good, there), and the next request on
/// the same thread has them again. The first request compiles a script with
/// a class that extends a disabled one: opcache keeps that script for every
/// thread, so it must not be bound to the request's disabled copy.
#[test]
fn php_value_disable_classes_lasts_for_its_request() {
    let mut args = vec!["--listen", "127.0.0.1:0", "--threads", "1", "-n"];
    for ini in [
        "zend_extension=opcache",
        "opcache.enable=1",
        "opcache.file_update_protection=0",
    ] {
        args.extend(["-d", ini]);
    }
    let tfpm = Tfpm::start(TFPM.as_ref(), &args);
    let ask = |value: Option<&str>, admin: Option<&str>| {
        let mut request =
            CgiRequest::get(&docroot(), "/overrides/classes.php").query("c=ArrayObject,SplStack");
        if let Some(value) = value {
            request = request.param("PHP_VALUE", value);
        }
        if let Some(admin) = admin {
            request = request.param("PHP_ADMIN_VALUE", admin);
        }
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        client.send(&request, false).expect("request").cgi().text()
    };
    let warning =
        |class: &str| format!("warning: {class}() has been disabled for security reasons\n");
    let plain = "ArrayObject: methods\nSplStack: methods\nItems: countable\ndisable_classes: \n";
    for _ in 0..3 {
        let off = ask(Some("disable_classes=ArrayObject"), None);
        let want = format!(
            "{}ArrayObject: no methods\nSplStack: methods\n{}Items: not countable\n\
             disable_classes: ArrayObject\n",
            warning("ArrayObject"),
            warning("Items")
        );
        assert_eq!(off, want);
        assert_eq!(ask(None, None), plain);
        let both = ask(
            Some("disable_classes=ArrayObject"),
            Some("disable_classes=SplStack, ArrayObject"),
        );
        assert!(both.contains(&warning("SplStack")), "{both}");
        assert!(both.contains("Items: not countable"), "{both}");
        assert_eq!(ask(None, None), plain);
    }
    assert!(
        deaths(&tfpm.log()).is_empty(),
        "tfpm lost a worker:\n{}",
        tfpm.log()
    );
}
