//! The stress suite: a mixed load over every PHP thread, with requests that
//! time out, hit the hard limit, exceed memory_limit, fail fatally, use fibers
//! and vanish mid-request, all at once. The verdict: no crash, every answer
//! right, every thread alive and serving at the end, and nothing unexpected in
//! the log.
//!
//! `TFPM_STRESS_REQUESTS` sets the number of requests: 20,000 by default (CI),
//! 200,000 for the long run (`TFPM_STRESS_REQUESTS=200000 cargo test --release
//! --test stress -- --nocapture`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::{encode_request, FcgiClient, FcgiResponse};
use fcgi_tests::{docroot, md5_hex, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const THREADS: usize = 8;
const CLIENTS: usize = 16;

/// One kind of request in the mix, and how to check its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hello,
    Query,
    FiberFlush,
    Fibers,
    FiberInput,
    MemoryLimit,
    Fatal,
    Vanish,
    Timeout,
    HardLimit,
}

/// Which kind request `i` of `total` is. Timeouts and hard limits each cost a
/// thread a second or two, so a fixed few of them are spread over the run.
fn kind_of(i: usize, total: usize) -> Kind {
    let spread = total / 16;
    if i % spread == spread / 2 {
        return Kind::Timeout;
    }
    if i % spread == spread / 4 {
        return Kind::HardLimit;
    }
    match i % 100 {
        0..=59 => Kind::Hello,
        60..=69 => Kind::Query,
        70..=77 => Kind::FiberFlush,
        78..=82 => Kind::Fibers,
        83..=88 => Kind::FiberInput,
        89..=92 => Kind::MemoryLimit,
        93..=95 => Kind::Fatal,
        _ => Kind::Vanish,
    }
}

fn request(kind: Kind, i: usize) -> CgiRequest {
    let get = |script: &str, query: String| CgiRequest::get(&docroot(), script).query(&query);
    match kind {
        Kind::Hello => get("/hello.php", String::new()),
        Kind::Query => get("/get.php", format!("i={i}")),
        Kind::FiberFlush => get("/engine/fiber_ops.php", "op=flush".into()),
        Kind::Fibers => get("/engine/fibers.php", "n=50".into()),
        Kind::FiberInput => CgiRequest::post(
            &docroot(),
            "/engine/fiber_ops.php",
            "application/octet-stream",
            &body(i),
        )
        .query("op=input"),
        Kind::MemoryLimit => get("/engine/memory.php", String::new()),
        Kind::Fatal => get("/fatal.php", String::new()),
        Kind::Vanish => get("/sleep.php", "ms=20".into()),
        Kind::Timeout => get("/engine/loop.php", "t=1".into()),
        Kind::HardLimit => get("/engine/hang.php", "how=sleep&quiet=1".into()),
    }
}

fn body(i: usize) -> Vec<u8> {
    (0..(i % 5000 + 1)).map(|n| (n * 31 + i) as u8).collect()
}

/// Why the answer to request `i` is wrong, if it is.
fn check(kind: Kind, i: usize, r: &FcgiResponse) -> Result<(), String> {
    let cgi = r.cgi();
    let (text, stderr) = (cgi.text(), r.stderr_text());
    let ok = match kind {
        Kind::Hello => cgi.status == 200 && text == "Hello, world!\n",
        Kind::Query => cgi.status == 200 && text == format!(r#"{{"i":"{i}"}}"#),
        Kind::FiberFlush => {
            text.starts_with("chunk 0\n") && text.ends_with("chunk 49\nmain done\n")
        }
        Kind::Fibers => text == "fibers=50 sum=3675\n",
        Kind::FiberInput => text == format!("input={}\nmain done\n", md5_hex(&body(i))),
        Kind::MemoryLimit => cgi.status == 500 && stderr.contains("Allowed memory size"),
        Kind::Fatal => cgi.status == 500 && stderr.contains("tfpm_this_function_does_not_exist"),
        Kind::Timeout => cgi.status == 500 && stderr.contains("Maximum execution time of 1 second"),
        Kind::HardLimit => {
            cgi.status == 500 && stderr.contains("Request terminated after 2 seconds")
        }
        Kind::Vanish => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "request {i} ({kind:?}): status {}, body {text:?}, stderr {stderr:?}",
            cgi.status
        ))
    }
}

/// Sends a request and closes the connection before the answer.
fn vanish(addr: std::net::SocketAddr, req: &CgiRequest) {
    let mut client = FcgiClient::connect_tcp(addr).expect("connect");
    let params = req.params();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bytes = encode_request(1, &params, &req.body, false);
    let _ = std::io::Write::write_all(client.stream(), &bytes);
}

/// One client: requests `start, start + CLIENTS, ...` over one kept connection.
fn client(
    addr: std::net::SocketAddr,
    start: usize,
    total: usize,
    done: &AtomicUsize,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut conn = FcgiClient::connect_tcp(addr).expect("connect");
    for i in (start..total).step_by(CLIENTS) {
        let kind = kind_of(i, total);
        let req = request(kind, i);
        if kind == Kind::Vanish {
            vanish(addr, &req);
        } else {
            match conn.send(&req, true) {
                Ok(r) => errors.extend(check(kind, i, &r).err()),
                Err(e) => {
                    errors.push(format!("request {i} ({kind:?}): {e}"));
                    conn = FcgiClient::connect_tcp(addr).expect("reconnect");
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    errors
}

fn total_requests() -> usize {
    std::env::var("TFPM_STRESS_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn mixed_load_with_failures_leaves_every_thread_serving() {
    let threads = THREADS.to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        &threads,
        "--request-terminate-timeout",
        "2",
        "-d",
        "display_errors=0",
        "-d",
        "log_errors=1",
        "-d",
        "memory_limit=32M",
    ];
    let tfpm = Tfpm::start(Path::new(TFPM), &args);
    let rss_start = tfpm.rss_kib();
    let total = total_requests();
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, done) = (tfpm.addr(), done.clone());
            thread::spawn(move || client(addr, c, total, &done))
        })
        .collect();
    let errors: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    let elapsed = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} wrong answers, first: {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        tail(&tfpm)
    );
    assert_eq!(done.load(Ordering::Relaxed), total);

    every_thread_serves(&tfpm);
    let log = tfpm.log();
    let unexpected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("panic") || l.contains("fatal:"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected log lines: {unexpected:#?}"
    );
    let rss_end = tfpm.rss_kib();
    let mix: Vec<String> = mix_counts(total)
        .iter()
        .map(|(k, n)| format!("{k:?} {n}"))
        .collect();
    println!(
        "stress: {total} requests in {:.1} s over {CLIENTS} connections and {THREADS} PHP threads; \
         mix: {}; crashes: 0; RSS start {rss_start} KiB, end {rss_end} KiB",
        elapsed.as_secs_f64(),
        mix.join(", ")
    );
    // The daemon is still the same process and stops cleanly.
    assert!(tfpm.stop().success());
}

fn mix_counts(total: usize) -> Vec<(Kind, usize)> {
    let mut counts: Vec<(Kind, usize)> = Vec::new();
    for i in 0..total {
        let kind = kind_of(i, total);
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts
}

/// All THREADS threads run a request at the same moment.
fn every_thread_serves(tfpm: &Tfpm) {
    let dir = tempfile::tempdir().expect("temp dir");
    let query = format!("dir={}&n={THREADS}", dir.path().display());
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (addr, query) = (tfpm.addr(), query.clone());
            thread::spawn(move || {
                let req = CgiRequest::get(&docroot(), "/engine/barrier.php").query(&query);
                FcgiClient::connect_tcp(addr)
                    .expect("connect")
                    .send(&req, false)
                    .expect("barrier")
                    .cgi()
                    .text()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.join().expect("barrier client"),
            "all here",
            "{}",
            tail(tfpm)
        );
    }
}

fn tail(tfpm: &Tfpm) -> String {
    fcgi_tests::tail(&tfpm.log(), 8000).to_string()
}
