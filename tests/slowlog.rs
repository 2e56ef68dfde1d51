//! The slowlog (`slowlog`, `request_slowlog_timeout`,
//! `request_slowlog_trace_depth`) of a running tfpm, next to php-fpm's from
//! our PHP build for the same script: a request past the timeout gets an
//! entry with its PHP stack in php-fpm's format, php-fpm's warning, and a
//! count on the status page, and goes on to its normal answer.
//!
//! php-fpm stops the child with ptrace and usually finds it inside usleep(),
//! which it lists as the innermost frame. tfpm's thread writes its own stack
//! at the VM's next interrupt point, once usleep() has returned, so that
//! frame is not there; every other frame must match.

use std::net::SocketAddr;
use std::path::Path;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// Where a pool listens.
#[derive(Clone)]
enum At {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

fn get(at: &At, script: &str) -> (u16, String) {
    let client = match at {
        At::Tcp(addr) => FcgiClient::connect_tcp(*addr),
        At::Unix(path) => FcgiClient::connect_unix(path),
    };
    let mut client = client.expect("connect");
    let response = client.send(&CgiRequest::get(&docroot(), script), false);
    let cgi = response.expect(script).cgi();
    (cgi.status, cgi.text())
}

fn slowlog_lines(path: &Path) -> String {
    format!(
        "slowlog = {}\nrequest_slowlog_timeout = 1\n",
        path.display()
    )
}

/// `[27-Nov-2026 07:45:42]  [pool www] pid 123` as
/// `[DD-Mon-DDDD DD:DD:DD]  [pool www] pid N`.
fn header_shape(line: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(
        MONTHS.contains(&line.get(4..7).unwrap_or_default()),
        "{line}"
    );
    let (head, pid) = line.rsplit_once(" pid ").expect("a pid");
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "{line}");
    let masked: String = head
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect();
    format!("{}Mon{} pid N", &masked[..4], &masked[7..])
}

/// One frame line with its address masked: `[0x…] name() file:line`.
fn frame(line: &str) -> String {
    let (address, rest) = line.split_at(line.find("] ").expect("a frame") + 2);
    assert!(address.starts_with("[0x") && address.len() == 21, "{line}");
    assert!(
        address[3..19].bytes().all(|b| b.is_ascii_hexdigit()),
        "{line}"
    );
    rest.to_string()
}

/// An entry: its header's shape, its script line, its frames.
fn entry(text: &str) -> (String, String, Vec<String>) {
    assert!(
        text.starts_with('\n'),
        "an entry starts with a blank line: {text:?}"
    );
    let mut lines = text[1..].lines();
    let header = header_shape(lines.next().expect("header"));
    let script = lines.next().expect("script_filename").to_string();
    (header, script, lines.map(frame).collect())
}

/// The warning's text after its level, with the pid and time masked.
fn warning(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("executing too slow") && l.contains("[pool www]"))
        .unwrap_or_else(|| panic!("no slow warning in\n{log}"));
    let text = &line[line.find("[pool ").unwrap()..];
    let masked: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect();
    // The pid, of any length (pids wrap around to short ones).
    let Some(at) = masked.find("child D") else {
        return masked;
    };
    let digits = masked[at + 6..].chars().take_while(|&c| c == 'D').count();
    format!("{}child N{}", &masked[..at], &masked[at + 6 + digits..])
}

#[test]
fn slow_requests_are_logged_as_php_fpm_logs_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ours, theirs, short) = (
        dir.path().join("tfpm.slow"),
        dir.path().join("fpm.slow"),
        dir.path().join("short.slow"),
    );
    let fpm = PhpFpm::start(1, &slowlog_lines(&theirs), &[]);
    let conf = dir.path().join("php-fpm.conf");
    let config = format!(
        "[global]\nerror_log = /proc/self/fd/2\n\
         [www]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 2\n\
         pm.status_path = /status\n{}\
         [short]\nlisten = {}/short.sock\npm = static\npm.max_children = 1\n\
         request_slowlog_trace_depth = 2\n{}",
        slowlog_lines(&ours),
        dir.path().display(),
        slowlog_lines(&short)
    );
    std::fs::write(&conf, config).unwrap();
    let tfpm = Tfpm::start(
        TFPM.as_ref(),
        &["-F", "-R", "-n", "-y", conf.to_str().unwrap()],
    );
    let www = At::Tcp(tfpm.addr());
    let targets = [
        At::Tcp(fpm.addr()),
        www.clone(),
        At::Unix(dir.path().join("short.sock")),
    ];

    // The three slow requests at once: about two seconds in all.
    let started = std::time::Instant::now();
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let runs: Vec<_> = targets
            .iter()
            .map(|at| s.spawn(move || get(at, "/slowlog.php")))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    eprintln!("three slow requests in {:?}", started.elapsed());
    for answer in &answers {
        assert_eq!(answer, &(200, "done\n".to_string()), "{}", tfpm.log());
    }

    let script = format!("script_filename = {}/slowlog.php", docroot().display());
    let inc = format!("{}/slowlog_inc.php", docroot().display());
    let main = format!("{}/slowlog.php", docroot().display());
    let expected = vec![
        format!("nap() {inc}:14"),
        format!("run() {inc}:19"),
        format!("start() {inc}:23"),
        format!("[INCLUDE_OR_EVAL]() {main}:4"),
    ];

    let text = std::fs::read_to_string(&ours).unwrap();
    eprintln!("tfpm's slowlog:{text}");
    let (header, script_line, mut frames) = entry(&text);
    assert_eq!(header, "[DD-Mon-DDDD DD:DD:DD]  [pool www] pid N", "{text}");
    assert_eq!(script_line, script);
    // PHP 8.3+ runs the interrupt (where tfpm writes the entry) before it
    // pops the internal function's frame, so usleep() is on top, as in
    // php-fpm's entry when ptrace catches it there.
    let usleep = format!("usleep() {inc}:6");
    if fcgi_tests::php_version() >= (8, 3) {
        assert_eq!(frames.first(), Some(&usleep), "{text}");
        frames.remove(0);
    }
    assert_eq!(frames, expected, "{text}");

    // php-fpm's entry: the same, with usleep() on top when ptrace caught it there.
    let text = std::fs::read_to_string(&theirs).unwrap();
    eprintln!("php-fpm's slowlog:{text}");
    let (fpm_header, fpm_script, mut fpm_frames) = entry(&text);
    assert_eq!(fpm_header, header);
    assert_eq!(fpm_script, script);
    if fpm_frames.first() == Some(&usleep) {
        fpm_frames.remove(0);
    }
    assert_eq!(fpm_frames, expected);

    // request_slowlog_trace_depth.
    let text = std::fs::read_to_string(&short).unwrap();
    let (short_header, _, frames) = entry(&text);
    assert!(short_header.contains("[pool short]"), "{text}");
    let mut deepest = expected.clone();
    if fcgi_tests::php_version() >= (8, 3) {
        deepest.insert(0, usleep.clone());
    }
    assert_eq!(frames, deepest[..2]);

    // php-fpm's warning, word for word but the pid and the time.
    let ours = warning(&tfpm.log());
    assert_eq!(ours, warning(&fpm.log()));
    // (Digits are masked in `ours`, the script's path included.)
    let main_masked: String = main
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect();
    assert!(
        ours.starts_with(&format!(
            "[pool www] child N, script '{main_masked}' (request: \"GET /slowlog.php\") executing too slow (D.DDDDDD sec), logging"
        )),
        "{ours}"
    );

    // The status page counts it (the other pool's request is its own).
    let (status, page) = get(&www, "/status");
    assert_eq!(status, 200);
    assert!(page.contains("slow requests:        1\n"), "{page}");
}
