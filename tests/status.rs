//! The status page (`pm.status_path`) of a running tfpm, next to php-fpm's
//! from our PHP build on the same requests: the same fields in the same
//! order in every format, and counts that add up across worker processes.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// (headers and body) of one FastCGI request.
fn fetch(addr: SocketAddr, script: &str, query: &str) -> String {
    let mut client = FcgiClient::connect_tcp(addr).expect("connect");
    let req = CgiRequest::get(&docroot(), script).query(query);
    let response = client.send(&req, false).expect("request");
    String::from_utf8_lossy(&response.stdout).into_owned()
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The field names of the text format, in order.
fn text_fields(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.is_empty() && !k.starts_with('*'))
        .collect()
}

/// The keys of the JSON format, in order (top level and per process).
fn json_keys(body: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("\":") {
        let start = rest[..at].rfind('"').unwrap();
        keys.push(rest[start + 1..at].to_string());
        rest = &rest[at + 2..];
    }
    keys
}

fn json_number(body: &str, key: &str) -> u64 {
    json_value(body, key)
}

/// The first value of `key` in a JSON body, parsed as a `T`.
fn json_value<T: std::str::FromStr>(body: &str, key: &str) -> T {
    let at = body
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {body}"));
    let rest = &body[at + key.len() + 3..];
    let value = rest[..rest.find([',', '}']).unwrap()].trim();
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number: {value}"))
}

fn start_tfpm(workers: &str, threads: usize) -> (Tfpm, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = /proc/self/fd/2\n\n[web]\nlisten = 127.0.0.1:0\n\
             pm = static\npm.max_children = {threads}\npm.status_path = /status\n"
        ),
    )
    .unwrap();
    let args = [
        "-F",
        "-R",
        "-d",
        "expose_php=0",
        "--workers",
        workers,
        "-y",
        conf.to_str().unwrap(),
    ];
    (Tfpm::start(TFPM.as_ref(), &args), dir)
}

#[test]
fn the_status_page_has_php_fpm_fields_in_every_format() {
    let fpm = PhpFpm::start(2, "pm.status_path = /status\n", &["expose_php=0"]);
    let (tfpm, _dir) = start_tfpm("1", 2);
    for query in [
        "",
        "json",
        "xml",
        "html",
        "openmetrics",
        "full",
        "json&full",
        "xml&full",
    ] {
        let ours = fetch(tfpm.addr(), "/status", query);
        let theirs = fetch(fpm.addr(), "/status", query);
        let (our_head, their_head) = (
            ours.split("\r\n\r\n").next(),
            theirs.split("\r\n\r\n").next(),
        );
        assert_eq!(our_head, their_head, "headers of ?{query}");
        let shape = |b: &str| match query {
            "" | "full" => text_fields(b),
            q if q.starts_with("json") => json_keys(b),
            _ => b
                .lines()
                .map(|l| l.split(['>', ' ']).next().unwrap_or("").to_string())
                .collect(),
        };
        let (ours, theirs) = (shape(body(&ours)), shape(body(&theirs)));
        if query.contains("full") {
            // php-fpm lists its 2 children; tfpm its 2 threads.
            assert_eq!(ours.len(), theirs.len(), "?{query}: {ours:?}\n{theirs:?}");
        }
        assert_eq!(
            ours.iter().collect::<std::collections::BTreeSet<_>>(),
            theirs.iter().collect::<std::collections::BTreeSet<_>>(),
            "fields of ?{query}"
        );
    }
}

#[test]
fn counts_add_up_across_worker_processes() {
    let (tfpm, _dir) = start_tfpm("2", 4);
    for _ in 0..10 {
        assert_eq!(
            body(&fetch(tfpm.addr(), "/hello.php", "")),
            "Hello, world!\n"
        );
    }
    let json = fetch(tfpm.addr(), "/status", "json");
    let json = body(&json);
    assert!(json.contains("\"pool\":\"web\""), "{json}");
    assert!(json.contains("\"process manager\":\"static\""), "{json}");
    // The ten, and the status request itself, as php-fpm counts it.
    assert_eq!(json_number(json, "accepted conn"), 11, "{json}");
    assert_eq!(json_number(json, "total processes"), 4, "{json}");
    assert_eq!(json_number(json, "idle processes"), 4, "{json}");
    assert_eq!(json_number(json, "active processes"), 0, "{json}");
    // fpm_get_status() reports the whole pool too: the eleven, and itself.
    let php = fetch(tfpm.addr(), "/engine/fpm_status.php", "");
    let php = body(&php);
    assert_eq!(json_number(php, "accepted-conn"), 12, "{php}");
    assert_eq!(json_number(php, "total-processes"), 4, "{php}");
    assert_eq!(json_number(php, "active-processes"), 1, "{php}");
    // ?full lists the threads of the worker that answered: half of them.
    let full = fetch(tfpm.addr(), "/status", "json&full");
    let mut per_field = BTreeMap::new();
    for key in json_keys(body(&full)) {
        *per_field.entry(key).or_insert(0) += 1;
    }
    assert_eq!(per_field.get("script"), Some(&2), "{full}");
}

/// `?full` shows each idle thread's last request: its CPU time over its
/// duration in percent, and its peak memory, as php-fpm does for a child.
#[test]
fn full_shows_the_last_requests_cpu_and_memory() {
    let (tfpm, _dir) = start_tfpm("1", 1);
    assert_eq!(body(&fetch(tfpm.addr(), "/cpu.php", "")), "burnt\n");
    // The response goes out during PHP's request shutdown, so the thread can
    // still be "Finishing" for a moment; like php-fpm, only an idle thread
    // shows its last request's figures.
    let full = fcgi_tests::poll_until(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_millis(10),
        || {
            let full = fetch(tfpm.addr(), "/status", "json&full");
            body(&full).contains("\"state\":\"Idle\"").then_some(full)
        },
    )
    .expect("the thread becomes idle after its request");
    let json = body(&full);
    let number = |key: &str| -> f64 { json_value(json, key) };
    assert!(json.contains("\"script\":\""), "{json}");
    let cpu = number("last request cpu");
    assert!(cpu > 1.0 && cpu <= 101.0, "{json}");
    // Zend's allocator takes memory from the system 2 MiB at a time.
    assert!(number("last request memory") >= 2_097_152.0, "{json}");
}

/// The pool's "total processes" (threads) as the status page counts them.
fn total(addr: SocketAddr) -> u64 {
    json_number(body(&fetch(addr, "/status", "json")), "total processes")
}

fn start_pm(pm_lines: &str) -> (Tfpm, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    let text = format!(
        "[global]\nerror_log = /proc/self/fd/2\n\n[web]\nlisten = 127.0.0.1:0\n\
         pm.status_path = /status\n{pm_lines}"
    );
    std::fs::write(&conf, text).unwrap();
    let args = ["-F", "-R", "-y", conf.to_str().unwrap()];
    (Tfpm::start(TFPM.as_ref(), &args), dir)
}

fn wait_total(addr: SocketAddr, want: u64, tfpm: &Tfpm) {
    wait_field(addr, "total processes", want, tfpm);
}

/// Polls the JSON status page until its field `key` reads `want`.
fn wait_field(addr: SocketAddr, key: &str, want: u64, tfpm: &Tfpm) {
    let read = || json_number(body(&fetch(addr, "/status", "json")), key);
    let reached = fcgi_tests::poll_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(50),
        || (read() == want).then_some(()),
    );
    assert!(
        reached.is_some(),
        "{key} never {want} (now {})\n{}",
        read(),
        tfpm.log()
    );
}

#[test]
fn pm_ondemand_starts_threads_for_requests_and_lets_idle_ones_go() {
    let (tfpm, _dir) =
        start_pm("pm = ondemand\npm.max_children = 3\npm.process_idle_timeout = 1s\n");
    let addr = tfpm.addr();
    assert_eq!(total(addr), 0, "ondemand starts with no thread");
    assert_eq!(body(&fetch(addr, "/hello.php", "")), "Hello, world!\n");
    assert_eq!(total(addr), 1);
    // Idle past pm.process_idle_timeout: the thread leaves.
    wait_total(addr, 0, &tfpm);
    assert_eq!(body(&fetch(addr, "/hello.php", "")), "Hello, world!\n");
}

#[test]
fn pm_dynamic_keeps_spare_threads_between_its_bounds() {
    let (tfpm, _dir) = start_pm(
        "pm = dynamic\npm.max_children = 5\npm.start_servers = 2\n\
         pm.min_spare_servers = 1\npm.max_spare_servers = 2\n",
    );
    let addr = tfpm.addr();
    assert_eq!(total(addr), 2, "pm.start_servers");
    // Three slow requests at once: busy threads, so more start.
    let slow: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || fetch(addr, "/sleep.php", "ms=2500")))
        .collect();
    wait_total(addr, 4, &tfpm); // 3 busy + min_spare_servers idle
    for s in slow {
        assert_eq!(body(&s.join().unwrap()), "slept 2500");
    }
    // All idle again: down to pm.max_spare_servers, one thread a second.
    wait_total(addr, 2, &tfpm);
}

#[test]
fn renewed_threads_keep_the_total_at_max_children() {
    // Debian's www.conf with pm.max_requests set, as many sites run it. A
    // renewed thread once counted twice: "total processes" grew past
    // pm.max_children, and a dynamic pool stopped starting threads.
    let (tfpm, _dir) = start_pm(
        "pm = dynamic\npm.max_children = 2\npm.start_servers = 1\n\
         pm.min_spare_servers = 1\npm.max_spare_servers = 1\npm.max_requests = 2\n",
    );
    let addr = tfpm.addr();
    for _ in 0..10 {
        assert_eq!(body(&fetch(addr, "/hello.php", "")), "Hello, world!\n");
    }
    assert!(total(addr) <= 2, "{} threads", total(addr));
    // Both threads busy at once: the second starts, as pm.max_children allows.
    let slow: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || fetch(addr, "/sleep.php", "ms=2500")))
        .collect();
    // The second thread may start (as a spare) before the second request
    // arrives, so wait for both to be running rather than for the count.
    wait_field(addr, "active processes", 2, &tfpm);
    assert_eq!(total(addr), 2);
    for s in slow {
        assert_eq!(body(&s.join().unwrap()), "slept 2500");
    }
}
