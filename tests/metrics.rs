//! What an operator sees of requests, through the real daemon: the
//! Prometheus endpoint (`--metrics-listen`), scraped after real FastCGI
//! requests, and the request span (request id, script) on the log lines
//! about a request, PHP's own included.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::{begin_body, BEGIN_REQUEST, KEEP_CONN, PARAMS, RESPONDER, STDIN};
use fcgi_tests::fcgi_client::{encode_pair, encode_record, encode_stream, FcgiClient};
use fcgi_tests::launch::Launch;
use fcgi_tests::tempfile::TempDir;
use fcgi_tests::{docroot, http, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// Errors are logged, not displayed, as in php.ini-production.
const PHP_INI: [&str; 4] = ["-d", "display_errors=0", "-d", "log_errors=1"];

fn start(extra: &[&str]) -> Tfpm {
    Launch::new(Path::new(TFPM))
        .args(&["--metrics-listen", "127.0.0.1:0"])
        .args(&PHP_INI)
        .args(extra)
        .start()
}

fn send(tfpm: &Tfpm, request: &CgiRequest) -> u16 {
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let response = client.send(request, false).expect("request");
    response.cgi().status
}

fn get(script: &str) -> CgiRequest {
    CgiRequest::get(&docroot(), script)
}

/// The body of GET /metrics, checked to be in the text format.
fn scrape(addr: SocketAddr) -> String {
    let response = http::get(addr, "/metrics");
    assert_eq!(response.status, 200, "{}", response.summary());
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = response.text();
    assert_parses(&body);
    body
}

/// Every line is `# HELP`, `# TYPE`, or `name{labels} value` of the family
/// declared last: each family's samples come together, under its `# TYPE`,
/// and no family is declared twice.
fn assert_parses(body: &str) {
    let mut families = HashSet::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(families.insert(name.to_string()), "declared twice: {line}");
            current = name.to_string();
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, value) = sample(line);
        assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| *f == current))
            .unwrap_or(name);
        assert_eq!(family, current, "not under its own # TYPE: {line}");
    }
}

/// `name{labels} value` split into the name and the value.
fn sample(line: &str) -> (&str, &str) {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
    let name = series.split('{').next().unwrap_or_default();
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    assert!(
        !name.is_empty() && name.chars().all(valid),
        "bad name: {line}"
    );
    if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
        assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        for pair in labels[1..labels.len() - 1].split(',') {
            let (key, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
            assert!(key.chars().all(valid), "bad label: {line}");
            assert!(quoted.starts_with('"') && quoted.ends_with('"'), "{line}");
        }
    }
    (name, value)
}

/// The value of the series `series` (name and labels, exactly as exported).
fn value(body: &str, series: &str) -> f64 {
    let line = body
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == series));
    let line = line.unwrap_or_else(|| panic!("no {series} in\n{body}"));
    sample(line).1.parse().expect("a number")
}

/// Scrapes until `series` has `expected`, for counters updated just after a response.
fn wait_for(addr: SocketAddr, series: &str, expected: f64) -> String {
    let found = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let body = scrape(addr);
        (value(&body, series) == expected).then_some(body)
    });
    found.unwrap_or_else(|| panic!("{series} never became {expected}:\n{}", scrape(addr)))
}

#[test]
fn scrape_counts_requests_threads_and_bytes() {
    let tfpm = start(&[]);
    let addr = tfpm.metrics_addr();
    let before = scrape(addr);
    assert_eq!(value(&before, "tfpm_threads_total{pool=\"www\"}"), 2.0);
    assert_eq!(value(&before, "tfpm_responses_total{class=\"2xx\"}"), 0.0);
    assert_eq!(send(&tfpm, &get("/hello.php")), 200);
    assert_eq!(send(&tfpm, &get("/hello.php")), 200);
    assert_eq!(send(&tfpm, &get("/header.php")), 404);
    assert_eq!(send(&tfpm, &get("/no-such-script.php")), 404);
    let body = wait_for(addr, "tfpm_threads_busy{pool=\"www\"}", 0.0);
    assert_eq!(value(&body, "tfpm_threads_idle{pool=\"www\"}"), 2.0);
    assert_eq!(value(&body, "tfpm_queue_depth{pool=\"www\"}"), 0.0);
    assert_eq!(value(&body, "tfpm_responses_total{class=\"2xx\"}"), 2.0);
    assert_eq!(value(&body, "tfpm_responses_total{class=\"4xx\"}"), 2.0);
    assert_eq!(value(&body, "tfpm_responses_total{class=\"5xx\"}"), 0.0);
    assert_eq!(
        value(&body, "tfpm_requests_accepted_total{pool=\"www\"}"),
        4.0
    );
    assert_eq!(value(&body, "tfpm_request_duration_seconds_count"), 4.0);
    let inf = "tfpm_request_duration_seconds_bucket{le=\"+Inf\"}";
    assert_eq!(value(&body, inf), 4.0);
    assert!(value(&body, "tfpm_request_duration_seconds_sum") > 0.0);
    assert!(
        value(&body, "tfpm_fastcgi_read_bytes_total") > 400.0,
        "{body}"
    );
    assert!(
        value(&body, "tfpm_fastcgi_written_bytes_total") > 100.0,
        "{body}"
    );
    assert_eq!(
        value(&body, "tfpm_thread_restarts_total{pool=\"www\"}"),
        0.0
    );
}

#[test]
fn workers_are_summed_and_crashes_counted() {
    let tfpm = start(&["--workers", "2"]);
    let addr = tfpm.metrics_addr();
    for _ in 0..6 {
        assert_eq!(send(&tfpm, &get("/hello.php")), 200);
    }
    let body = wait_for(addr, "tfpm_responses_total{class=\"2xx\"}", 6.0);
    assert_eq!(value(&body, "tfpm_threads_total{pool=\"www\"}"), 2.0);
    assert_eq!(
        value(&body, "tfpm_requests_accepted_total{pool=\"www\"}"),
        6.0
    );
    assert_eq!(value(&body, "tfpm_workers"), 2.0);
    assert_eq!(value(&body, "tfpm_worker_crashes_total"), 0.0);
    let victim = tfpm.worker_pids()[0];
    fcgi_tests::daemon::signal_pid(victim, fcgi_tests::daemon::Signal::SIGKILL);
    wait_for(addr, "tfpm_worker_crashes_total", 1.0);
    let body = wait_for(addr, "tfpm_workers", 2.0);
    // The replacement starts from zero: the dead worker's counts are gone.
    assert_eq!(value(&body, "tfpm_threads_total{pool=\"www\"}"), 2.0);
}

/// With two pools, every pool series is labelled with its own pool's name
/// and counts only that pool's requests; the unlabelled series are the
/// whole daemon's. A maximum over a pool's workers is the largest, not
/// their sum.
#[test]
fn each_pool_has_its_own_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    let pool = |name: &str, ip: &str, threads: u32| {
        format!("[{name}]\nlisten = {ip}:0\npm = static\npm.max_children = {threads}\n")
    };
    let text = format!(
        "[global]\nerror_log = /proc/self/fd/2\n{}{}",
        pool("alpha", "127.0.0.1", 2),
        pool("beta", "127.0.0.2", 3)
    );
    std::fs::write(&conf, text).expect("write the config");
    let conf = conf.to_str().expect("UTF-8 path");
    let args = [
        "-F",
        "-R",
        "-n",
        "--metrics-listen",
        "127.0.0.1:0",
        "--workers",
        "2",
    ];
    let tfpm = Tfpm::start(Path::new(TFPM), &[&args[..], &["-y", conf]].concat());
    let pools = tfpm.tcp_addrs();
    assert_eq!(pools.len(), 2, "{}", tfpm.log());
    assert_eq!(
        pools[0].ip().to_string(),
        "127.0.0.1",
        "alpha first: {pools:?}"
    );
    for _ in 0..3 {
        let mut client = FcgiClient::connect_tcp(pools[0]).expect("connect to alpha");
        let response = client.send(&get("/hello.php"), false).expect("request");
        assert_eq!(response.cgi().status, 200);
    }
    let addr = tfpm.metrics_addr();
    let body = wait_for(addr, "tfpm_requests_accepted_total{pool=\"alpha\"}", 3.0);
    assert_eq!(
        value(&body, "tfpm_requests_accepted_total{pool=\"beta\"}"),
        0.0
    );
    assert_eq!(value(&body, "tfpm_threads_total{pool=\"alpha\"}"), 2.0);
    assert_eq!(value(&body, "tfpm_threads_total{pool=\"beta\"}"), 3.0);
    assert_eq!(value(&body, "tfpm_threads_busy_max{pool=\"alpha\"}"), 1.0);
    assert_eq!(value(&body, "tfpm_threads_busy_max{pool=\"beta\"}"), 0.0);
    assert!(!body.contains("pool=\"www\""), "{body}");
    assert_eq!(value(&body, "tfpm_responses_total{class=\"2xx\"}"), 3.0);
    assert_eq!(value(&body, "tfpm_workers"), 4.0);
}

#[test]
fn only_get_metrics_is_served() {
    let tfpm = start(&[]);
    let addr = tfpm.metrics_addr();
    assert_eq!(http::get(addr, "/").status, 404);
    assert_eq!(http::get(addr, "/metrics/x").status, 404);
    assert_eq!(http::post(addr, "/metrics", "text/plain", b"x").status, 404);
    assert_eq!(http::get(addr, "/metrics?name[]=x").status, 200);
}

/// `/healthz` answers while the master runs; `/readyz` only while a
/// worker is ready and the master is not stopping: during a graceful stop
/// it says 503 at once, while the request in flight still finishes.
#[test]
fn probes_answer_health_and_readiness_until_a_graceful_stop() {
    let tfpm = start(&[]);
    let addr = tfpm.metrics_addr();
    let health = http::get(addr, "/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = http::get(addr, "/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    assert_eq!(http::post(addr, "/readyz", "text/plain", b"x").status, 404);
    let slow = std::thread::spawn({
        let (server, request) = (tfpm.addr(), get("/sleep.php").query("ms=1500"));
        move || {
            let mut client = FcgiClient::connect_tcp(server).expect("connect");
            client.send(&request, false).expect("request").cgi().status
        }
    });
    wait_for(addr, "tfpm_threads_busy{pool=\"www\"}", 1.0);
    tfpm.signal(fcgi_tests::daemon::Signal::SIGQUIT);
    let stopping = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
        let answer = http::get(addr, "/readyz");
        (answer.status == 503).then_some(answer)
    })
    .expect("/readyz says 503 during a graceful stop");
    assert_eq!(stopping.text(), "not ready\n");
    assert_eq!(http::get(addr, "/healthz").status, 200);
    assert_eq!(slow.join().expect("client"), 200);
}

#[test]
fn terminated_requests_and_max_children_are_counted() {
    let tfpm = start(&["--request-terminate-timeout", "1"]);
    let addr = tfpm.metrics_addr();
    let slow = get("/sleep.php").query("ms=3000");
    assert_eq!(send(&tfpm, &slow), 500);
    let body = wait_for(addr, "tfpm_timeouts_total{kind=\"request_terminate\"}", 1.0);
    assert_eq!(value(&body, "tfpm_responses_total{class=\"5xx\"}"), 1.0);
    assert_eq!(value(&body, "tfpm_timeouts_total{kind=\"stdin\"}"), 0.0);
    // Three requests at once on two threads: one waits for a thread.
    let both = [
        get("/sleep.php").query("ms=500"),
        get("/sleep.php").query("ms=500"),
        get("/sleep.php").query("ms=500"),
    ];
    std::thread::scope(|s| {
        for request in &both {
            s.spawn(|| assert_eq!(send(&tfpm, request), 200));
        }
    });
    let body = scrape(addr);
    let reached = value(&body, "tfpm_max_children_reached_total{pool=\"www\"}");
    assert!(reached >= 1.0, "{body}");
}

/// A script with a warning, in a docroot of its own.
fn warning_docroot() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = "<?php\necho $tfpm_undefined_variable;\necho \"done\\n\";\n";
    std::fs::write(dir.path().join("warn.php"), script).expect("write warn.php");
    dir
}

/// The one log line containing `needle`, waiting for it.
fn log_line(tfpm: &Tfpm, needle: &str) -> String {
    let found = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let log = tfpm.log();
        log.lines().find(|l| l.contains(needle)).map(str::to_string)
    });
    found.unwrap_or_else(|| panic!("no log line with {needle:?}:\n{}", tfpm.log()))
}

/// The current span's object (`"span":{...}`) in a JSON log line.
fn span(line: &str) -> &str {
    let key = "\"span\":{";
    let at = line.find(key).unwrap_or_else(|| panic!("no span: {line}")) + key.len();
    let end = line[at..].find('}').expect("the span's end");
    &line[at..at + end]
}

/// The request id in the span of a JSON log line, checked to be a request span.
fn request_id(line: &str) -> u64 {
    let span = span(line);
    assert!(span.contains("\"name\":\"request\""), "{line}");
    let key = "\"request_id\":";
    let at = span
        .find(key)
        .unwrap_or_else(|| panic!("no request_id: {line}"))
        + key.len();
    let digits: String = span[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("request_id: {line}"))
}

#[test]
fn php_warnings_are_logged_with_the_request_id_and_script() {
    let tfpm = start(&["--log-format", "json"]);
    let dir = warning_docroot();
    let request = CgiRequest::get(dir.path(), "/warn.php");
    assert_eq!(send(&tfpm, &get("/hello.php")), 200);
    assert_eq!(send(&tfpm, &request), 200);
    let line = log_line(&tfpm, "Undefined variable $tfpm_undefined_variable");
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert_eq!(request_id(&line), 2, "{line}");
    let script = format!("\"script\":\"{}\"", request.script_filename());
    assert!(span(&line).contains(&script), "no {script} in {line}");
}

#[test]
fn server_timeouts_are_counted_and_logged_in_the_request_span() {
    let tfpm = start(&["--log-format", "json", "--stdin-timeout", "1"]);
    let request = CgiRequest::post(&docroot(), "/input.php", "text/plain", b"0123456789");
    let mut pairs = Vec::new();
    for (name, value) in request.params() {
        pairs.extend(encode_pair(name.as_bytes(), value.as_bytes()));
    }
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    bytes.extend(encode_stream(PARAMS, 1, &pairs));
    // Half the body, then nothing.
    bytes.extend(encode_record(STDIN, 1, b"12345"));
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    client.stream().write_all(&bytes).expect("write");
    let line = log_line(&tfpm, "(stdin timeout)");
    assert_eq!(request_id(&line), 1, "{line}");
    let script = format!("\"script\":\"{}\"", request.script_filename());
    assert!(span(&line).contains(&script), "no {script} in {line}");
    let addr = tfpm.metrics_addr();
    wait_for(addr, "tfpm_timeouts_total{kind=\"stdin\"}", 1.0);
}
