//! `catch_workers_output` and `decorate_workers_output`: what scripts write
//! on the worker's stdout and stderr, and PHP's own messages, relayed into
//! the FPM log, compared line by line with php-fpm's log of the same
//! requests (time and pid masked). With `catch_workers_output = no` the
//! output is dropped, as by php-fpm.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::{docroot, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// Runs pools/output.php (with `long` x's on one line) and checks the body.
fn run_script(addr: SocketAddr, long: usize) {
    let mut client = FcgiClient::connect_tcp(addr).expect("connect");
    let mut req = CgiRequest::get(&docroot(), "/pools/output.php");
    req.query = format!("long={long}");
    let body = client.send(&req, false).expect("output.php").cgi().text();
    assert_eq!(body, "done");
}

/// The relayed lines of a log: those about a child's output, or (bare
/// lines) neither php-fpm's own nor tfpm's (its text format begins with
/// the date), with times and pids masked.
fn relayed(log: &str) -> Vec<String> {
    let own = |l: &str| {
        l.starts_with('[') || (l.len() > 10 && l.as_bytes()[4] == b'-' && l.as_bytes()[10] == b'T')
    };
    log.lines()
        .filter(|l| l.contains(" said into ") || !own(l))
        .map(|l| {
            let l = match l.find("] ") {
                Some(at) if l.starts_with('[') => format!("[TIME{}", &l[at..]),
                _ => l.to_string(),
            };
            match (l.find(" child "), l.find(" said into ")) {
                (Some(a), Some(b)) if a < b => format!("{} child PID{}", &l[..a], &l[b..]),
                _ => l,
            }
        })
        .collect()
}

/// Waits until `log()` holds `n` relayed lines; returns them.
fn wait_relayed(n: usize, log: impl Fn() -> String) -> Vec<String> {
    poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let lines = relayed(&log());
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("fewer than {n} relayed lines in:\n{}", log()))
}

/// tfpm with one static pool of one thread, logging to its stderr (which
/// the harness reads).
fn tfpm(dir: &Path, pool_lines: &str) -> Tfpm {
    let conf = dir.join("php-fpm.conf");
    let text = format!(
        "[global]\nerror_log = /proc/self/fd/2\n[www]\nlisten = 127.0.0.1:0\npm = static\n\
         pm.max_children = 1\n{pool_lines}\n"
    );
    std::fs::write(&conf, text).unwrap();
    Tfpm::start(
        TFPM.as_ref(),
        &["-F", "-R", "-n", "-y", conf.to_str().unwrap()],
    )
}

fn compare(pool_lines: &str, long: usize, expected: usize) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let fpm = PhpFpm::start(1, &format!("catch_workers_output = yes\n{pool_lines}"), &[]);
    run_script(fpm.addr(), long);
    let theirs = wait_relayed(expected, || fpm.log());

    let daemon = tfpm(
        dir.path(),
        &format!("catch_workers_output = yes\n{pool_lines}"),
    );
    run_script(daemon.addr(), long);
    let ours = wait_relayed(expected, || daemon.log());
    assert_eq!(ours, theirs, "tfpm log:\n{}", daemon.log());
    ours
}

#[test]
fn decorated_output_matches_php_fpm() {
    let lines = compare("", 10, 5);
    assert_eq!(
        lines,
        [
            "[TIME] WARNING: [pool www] child PID said into stdout: \"to stdout\"",
            "[TIME] WARNING: [pool www] child PID said into stderr: \"to stderr\"",
            "[TIME] WARNING: [pool www] child PID said into stderr: \"NOTICE: PHP message: a PHP message\"",
            "[TIME] WARNING: [pool www] child PID said into stderr: \"xxxxxxxxxx\"",
            "[TIME] WARNING: [pool www] child PID said into stderr: \"no newline\"",
        ]
    );
}

#[test]
fn long_lines_are_cut_at_log_limit_as_php_fpm_cuts_them() {
    // 3000 x's make 4 lines at the default log_limit (1024).
    let lines = compare("", 3000, 8);
    let xs: String = lines[3..7]
        .iter()
        .map(|l| l.split('"').nth(1).unwrap())
        .collect();
    assert_eq!(xs, "x".repeat(3000));
}

#[test]
fn undecorated_output_is_bare() {
    let lines = compare("decorate_workers_output = no", 10, 5);
    assert_eq!(
        lines,
        [
            "to stdout",
            "to stderr",
            "NOTICE: PHP message: a PHP message",
            "xxxxxxxxxx",
            "no newline",
        ]
    );
}

#[test]
fn without_catch_workers_output_the_output_is_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = tfpm(dir.path(), "");
    run_script(daemon.addr(), 10);
    // A second request: the first one's lines would be in the log by now.
    run_script(daemon.addr(), 10);
    let text = daemon.log();
    assert!(relayed(&text).is_empty(), "{text}");
    assert!(!text.contains("PHP message"), "{text}");
    assert!(text.contains("ready to handle connections"), "{text}");
}
