//! The daemon's metrics: the server-side counters (responses by status
//! class, request durations, timeouts, FastCGI bytes), a process's
//! [`Report`] of them with its pool's own counters
//! ([`crate::php::PoolSnapshot`]), which travels to the master and is
//! summed there, and the Prometheus text endpoint (`--metrics-listen`) that
//! [`render`]s the sum.
//!
//! The endpoint speaks just enough HTTP/1.1: `GET /metrics` gets a 200 in
//! the text exposition format 0.0.4, `GET /healthz` and `GET /readyz` the
//! probes' answers ([`super::probes`]), anything else a 404, and every
//! connection closes after one answer.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod render;
mod report;

pub use render::render;
pub use report::{PoolReport, Report, ServerCounts, WorkerCounts};

use super::probes;
use crate::php::PoolSnapshot;

/// Upper bounds of the request duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Status class labels; index 0 is for a status outside 100..=599.
const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read.
const MAX_HEAD: usize = 8192;

/// A server-side timeout, by what the peer was late with.
#[derive(Debug, Clone, Copy)]
pub enum TimeoutKind {
    /// Nothing arrived after accept.
    FirstByte = 0,
    /// No request on a kept connection.
    Idle = 1,
    /// A PARAMS stream that did not end in time.
    Params = 2,
    /// A request body that stalled.
    Stdin = 3,
}

const TIMEOUT_KINDS: [&str; 4] = ["first_byte", "idle", "params", "stdin"];

/// The server's counters; one set per process.
struct Counters {
    responses: [AtomicU64; CLASSES.len()],
    /// Per bucket, not cumulative; the last one is +Inf.
    durations: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_us: AtomicU64,
    timeouts: [AtomicU64; TIMEOUT_KINDS.len()],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    adopted: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

static COUNTERS: Counters = Counters {
    responses: [ZERO; CLASSES.len()],
    durations: [ZERO; BUCKETS.len() + 1],
    duration_sum_us: ZERO,
    timeouts: [ZERO; TIMEOUT_KINDS.len()],
    bytes_in: ZERO,
    bytes_out: ZERO,
    adopted: ZERO,
};

/// A response with `status` went out, `elapsed` after its params arrived.
pub fn response(status: u16, elapsed: Duration) {
    response_class(status);
    let secs = elapsed.as_secs_f64();
    let bucket = BUCKETS.iter().position(|&b| secs <= b);
    COUNTERS.durations[bucket.unwrap_or(BUCKETS.len())].fetch_add(1, Ordering::Relaxed);
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    COUNTERS
        .duration_sum_us
        .fetch_add(micros, Ordering::Relaxed);
}

/// A response with `status` went out that PHP never saw (a refusal): it
/// counts by class but not in the durations.
pub fn response_class(status: u16) {
    let class = match status {
        100..=599 => usize::from(status / 100),
        _ => 0,
    };
    COUNTERS.responses[class].fetch_add(1, Ordering::Relaxed);
}

/// A server-side timeout fired.
pub fn timeout(kind: TimeoutKind) {
    COUNTERS.timeouts[kind as usize].fetch_add(1, Ordering::Relaxed);
}

/// FastCGI bytes read from a web server.
pub fn bytes_in(n: usize) {
    COUNTERS.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
}

/// FastCGI bytes written to a web server.
pub fn bytes_out(n: usize) {
    COUNTERS.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
}

/// A worker took over a connection a retiring worker passed on.
pub fn adopted() {
    COUNTERS.adopted.fetch_add(1, Ordering::Relaxed);
}

/// The HTTP status of a CGI response, from the start of its headers: a
/// `Status:` header or an `HTTP/x.y NNN` line, else 302 with a `Location:`,
/// else 200.
pub fn status_of(head: &[u8]) -> u16 {
    let head = match head.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => &head[..end],
        None => head,
    };
    let mut location = false;
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let (name, value) = line.split_once([':', ' ']).unwrap_or((&line, ""));
        if name.eq_ignore_ascii_case("status") || name.starts_with("HTTP/") {
            let code = value.trim_start().split(' ').next().unwrap_or_default();
            if let Ok(code) = code.trim().parse() {
                return code;
            }
        }
        location |= name.eq_ignore_ascii_case("location");
    }
    if location {
        302
    } else {
        200
    }
}

/// This process's report: its pool `name`'s counters, with the server's.
pub fn report(name: &str, pool: &PoolSnapshot) -> Report {
    let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
    let server = ServerCounts {
        responses: COUNTERS.responses.each_ref().map(load),
        durations: COUNTERS.durations.each_ref().map(load),
        duration_sum_us: load(&COUNTERS.duration_sum_us),
        timeouts: COUNTERS.timeouts.each_ref().map(load),
        bytes_in: load(&COUNTERS.bytes_in),
        bytes_out: load(&COUNTERS.bytes_out),
        adopted: load(&COUNTERS.adopted),
    };
    Report {
        pools: vec![PoolReport {
            name: name.to_string(),
            counts: *pool,
        }],
        memory_peak: crate::php::memory_peak(),
        server,
        workers: None,
    }
}

/// Answers scrapers and probes on `listener` for as long as the process
/// runs: `/metrics` with what `render` gives at each scrape (so that a
/// graceful stop can be watched draining), `/healthz`, and `/readyz` as
/// `ready` says.
pub async fn serve<F, Fut, R>(listener: TcpListener, render: F, ready: R)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
    R: Fn() -> bool + Send + Sync + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, render(), ready()));
            }
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, body: impl Future<Output = String>, ready: bool) {
    let Ok(Some(head)) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let response = match route(&head) {
        Some(Route::Metrics) => {
            let body = body.await;
            reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", &body)
        }
        Some(Route::Health) => reply("200 OK", "text/plain", "ok\n"),
        Some(Route::Ready) => {
            let (status, body) = probes::answer(ready);
            reply(status, "text/plain", body)
        }
        None => reply("404 Not Found", "text/plain", "Not found.\n"),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head, up to its blank line; None if the peer closes first.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// What the listener serves.
#[derive(Debug, PartialEq)]
enum Route {
    Metrics,
    Health,
    Ready,
}

/// The route of a `GET` request line (with or without a query); None for
/// any other method or path.
fn route(head: &[u8]) -> Option<Route> {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next(), words.next().unwrap_or_default());
    if method != Some(b"GET") {
        return None;
    }
    match target.split(|&b| b == b'?').next().unwrap_or_default() {
        b"/metrics" => Some(Route::Metrics),
        b"/healthz" => Some(Route::Health),
        b"/readyz" => Some(Route::Ready),
        _ => None,
    }
}

fn reply(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_cgi_headers() {
        assert_eq!(
            status_of(b"Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nx"),
            404
        );
        assert_eq!(
            status_of(b"Content-type: text/html\r\nStatus: 500\r\n\r\n"),
            500
        );
        assert_eq!(status_of(b"HTTP/1.1 418 I'm a teapot\r\n\r\n"), 418);
        assert_eq!(status_of(b"Location: /x\r\n\r\n"), 302);
        assert_eq!(
            status_of(b"Content-type: text/html\r\n\r\nStatus: 500\r\n"),
            200
        );
        assert_eq!(status_of(b""), 200);
    }

    #[test]
    fn only_get_of_the_three_paths_is_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Route::Metrics)
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Route::Metrics)
        );
        assert_eq!(route(b"GET /healthz HTTP/1.1\r\n\r\n"), Some(Route::Health));
        assert_eq!(route(b"GET /readyz HTTP/1.1\r\n\r\n"), Some(Route::Ready));
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn responses_count_by_class_and_duration_bucket() {
        let before = report("www", &PoolSnapshot::default()).server;
        response(200, Duration::from_millis(1));
        response(503, Duration::from_secs(100));
        response_class(0);
        let after = report("www", &PoolSnapshot::default()).server;
        let grew = |a: &[u64], b: &[u64], i: usize| a[i] - b[i];
        assert_eq!(grew(&after.responses, &before.responses, 2), 1);
        assert_eq!(grew(&after.responses, &before.responses, 5), 1);
        assert_eq!(grew(&after.responses, &before.responses, 0), 1);
        assert_eq!(grew(&after.durations, &before.durations, 0), 1);
        assert_eq!(grew(&after.durations, &before.durations, BUCKETS.len()), 1);
        assert!(after.duration_sum_us - before.duration_sum_us >= 100_000_000);
    }
}
