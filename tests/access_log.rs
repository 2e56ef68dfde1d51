//! The access log (`access.log`, `access.format`, `access.suppress_path`)
//! of a running tfpm, next to php-fpm's from our PHP build: the same
//! requests through both, with a format that uses every token, compared
//! field by field. Only times, pids, durations, memory and CPU may differ,
//! and those must still be well-formed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{Signal, Tfpm};
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// Every token php-fpm 8.2 knows, with every modifier form, one per field.
const FORMAT: &str = "%R|%u|%t|%T|%{%Y-%m-%d}t|%m|%r|%Q|%q|%s|%f|%l|%n|%p|%P|%d|%{seconds}d|\
%{milli}d|%{micro}d|%M|%{bytes}M|%{kilo}M|%{mega}M|%C|%{user}C|%{system}C|%{HTTP_HOST}e|\
%{CONTENT_TYPE}e|%{NOPE}e|%{Content-type}o|%{Content-Type}o|%{X-Tfpm-Test}o|%%";

/// What each field is, for the comparison.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Same,
    Time,
    Pid,
    Seconds,
    Integer,
    Percent,
}

fn kinds() -> Vec<Kind> {
    use Kind::*;
    vec![
        Same, Same, Time, Time, Same, Same, Same, Same, Same, Same, Same, Same, Same, Pid, Pid,
        Seconds, Seconds, Seconds, Integer, Integer, Integer, Integer, Integer, Percent, Percent,
        Percent, Same, Same, Same, Same, Same, Same, Same,
    ]
}

fn requests() -> Vec<CgiRequest> {
    let root = docroot();
    vec![
        CgiRequest::get(&root, "/hello.php").header("Authorization", "Basic YWxpY2U6c2VjcmV0"),
        CgiRequest::get(&root, "/missing.php"),
        CgiRequest::post(
            &root,
            "/post.php",
            "application/x-www-form-urlencoded",
            b"a=1&b=two",
        ),
        CgiRequest::get(&root, "/get.php").query("x=1&y=2"),
        CgiRequest::get(&root, "/header.php"),
        // Suppressed: a GET of a listed path, 2xx, no query, no body.
        CgiRequest::get(&root, "/hello.php").param("SCRIPT_NAME", "/quiet"),
    ]
}

fn pool_lines(log: &Path) -> String {
    format!(
        "access.log = {}\naccess.format = \"{}\"\naccess.suppress_path[] = /quiet\n",
        log.display(),
        FORMAT.replace('"', "\\\"")
    )
}

/// Sends every request, one connection each; returns the statuses seen.
fn send_all(addr: SocketAddr) -> Vec<u16> {
    requests()
        .iter()
        .map(|req| {
            let mut client = FcgiClient::connect_tcp(addr).expect("connect");
            client.send(req, false).expect("request").cgi().status
        })
        .collect()
}

/// The log's lines once it has `n` of them (the line may follow the response).
fn lines(log: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || Instant::now() > deadline {
            // A line too many would come right after: give it the time.
            std::thread::sleep(Duration::from_millis(200));
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return text.lines().map(str::to_string).collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `27/Nov/2026:07:45:41 +0000`.
fn is_time(s: &str) -> bool {
    let shape: String = s
        .chars()
        .map(|c| match c {
            '0'..='9' => 'D',
            'A'..='Z' | 'a'..='z' => 'a',
            c => c,
        })
        .collect();
    shape == "DD/aaa/DDDD:DD:DD:DD +DDDD" || shape == "DD/aaa/DDDD:DD:DD:DD -DDDD"
}

/// A number with `decimals` digits after the point (none: an integer).
fn is_number(s: &str, decimals: usize) -> bool {
    let (whole, fraction) = match decimals {
        0 => (s, ""),
        _ => match s.split_once('.') {
            Some(parts) => parts,
            None => return false,
        },
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() == decimals
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn well_formed(kind: Kind, value: &str) -> bool {
    match kind {
        Kind::Same => true,
        Kind::Time => is_time(value),
        Kind::Pid => is_number(value, 0) && value != "0",
        Kind::Seconds => is_number(value, 3) || is_number(value, 0),
        Kind::Integer => is_number(value, 0),
        Kind::Percent => is_number(value, 2),
    }
}

fn compare(tfpm: &str, fpm: &str) {
    let ours: Vec<&str> = tfpm.split('|').collect();
    let theirs: Vec<&str> = fpm.split('|').collect();
    let kinds = kinds();
    assert_eq!(ours.len(), kinds.len(), "tfpm: {tfpm}");
    assert_eq!(theirs.len(), kinds.len(), "php-fpm: {fpm}");
    for (i, kind) in kinds.iter().enumerate() {
        let (a, b) = (ours[i], theirs[i]);
        if *kind == Kind::Same {
            assert_eq!(a, b, "field {i}\ntfpm:    {tfpm}\nphp-fpm: {fpm}");
        } else {
            assert!(well_formed(*kind, a), "tfpm field {i} {a:?}: {tfpm}");
            assert!(well_formed(*kind, b), "php-fpm field {i} {b:?}: {fpm}");
        }
    }
}

#[test]
fn access_log_lines_match_php_fpm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tfpm_log, fpm_log) = (dir.path().join("tfpm.log"), dir.path().join("fpm.log"));

    let fpm = PhpFpm::start(1, &pool_lines(&fpm_log), &[]);
    let fpm_statuses = send_all(fpm.addr());
    let expected = requests().len() - 1;
    let fpm_lines = lines(&fpm_log, expected);

    let conf = dir.path().join("php-fpm.conf");
    let config = format!(
        "[global]\nerror_log = /proc/self/fd/2\n[www]\nlisten = 127.0.0.1:0\npm = static\n\
         pm.max_children = 1\n{}",
        pool_lines(&tfpm_log)
    );
    std::fs::write(&conf, config).unwrap();
    let tfpm = Tfpm::start(
        TFPM.as_ref(),
        &["-F", "-R", "-n", "-y", conf.to_str().unwrap()],
    );
    let statuses = send_all(tfpm.addr());
    let tfpm_lines = lines(&tfpm_log, expected);

    assert_eq!(statuses, fpm_statuses);
    assert_eq!(statuses, [200, 404, 200, 200, 404, 200]);
    assert_eq!(
        tfpm_lines.len(),
        expected,
        "{tfpm_lines:#?}\n{}",
        tfpm.log()
    );
    assert_eq!(fpm_lines.len(), expected, "{fpm_lines:#?}");
    for (ours, theirs) in tfpm_lines.iter().zip(&fpm_lines) {
        eprintln!("tfpm:    {ours}\nphp-fpm: {theirs}");
        compare(ours, theirs);
    }
    // The requests themselves, as both logged them.
    let user_and_uri: Vec<(&str, &str, &str)> = tfpm_lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[1], f[6], f[9])
        })
        .collect();
    assert_eq!(
        user_and_uri,
        [
            ("alice", "/hello.php", "200"),
            ("", "/missing.php", "404"),
            ("", "/post.php", "200"),
            ("", "/get.php", "200"),
            ("", "/header.php", "404"),
        ]
    );
    let file = std::fs::metadata(&tfpm_log).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(file.permissions().mode() & 0o777, 0o600);

    // logrotate: the file moves away, SIGUSR1, and lines go to a new file.
    let rotated = dir.path().join("tfpm.log.1");
    std::fs::rename(&tfpm_log, &rotated).unwrap();
    tfpm.signal(Signal::SIGUSR1);
    let wanted = format!("reopened {}", tfpm_log.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tfpm.log().contains(&wanted) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let req = CgiRequest::get(&docroot(), "/hello.php");
    assert_eq!(client.send(&req, false).expect("hello").cgi().status, 200);
    assert_eq!(lines(&tfpm_log, 1).len(), 1, "{}", tfpm.log());
    assert_eq!(lines(&rotated, expected).len(), expected);
}

#[test]
fn a_bad_format_stops_start_up_as_in_php_fpm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = /proc/self/fd/2\n[www]\nlisten = 127.0.0.1:0\npm = static\n\
             pm.max_children = 1\naccess.log = {}/a.log\naccess.format = \"%R %x\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(TFPM)
        .args(["-t", "-R", "-y", conf.to_str().unwrap()])
        .output()
        .expect("tfpm -t");
    // Each line begins with php-fpm's time, `[27-Nov-2026 08:00:00] `.
    let text: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| format!("{}\n", l.get(23..).unwrap_or(l)))
        .collect();
    assert_eq!(out.status.code(), Some(78), "{text}");
    assert!(
        text.starts_with(
            "WARNING: Invalid token in the access.format (%x)\n\
             ERROR: [pool www] wrong format for access.format '%R %x'\n"
        ),
        "{text}"
    );
}
