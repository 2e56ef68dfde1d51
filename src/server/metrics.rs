//! The daemon's metrics: the server-side counters (responses by status
//! class, request durations, timeouts, FastCGI bytes), and the Prometheus
//! text endpoint (`--metrics-listen`) that exports them with the pool's own
//! counters ([`crate::php::PoolSnapshot`]).
//!
//! The endpoint speaks just enough HTTP/1.1: `GET /metrics` gets a 200 in
//! the text exposition format 0.0.4, `GET /healthz` and `GET /readyz` the
//! probes' answers ([`super::probes`]), anything else a 404, and every
//! connection closes after one answer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    FirstByte = 0,
    Idle = 1,
    Params = 2,
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

/// The metrics of this worker, whose threads serve pool `name`, in the
/// Prometheus text format.
pub fn render(name: &str, pool: &PoolSnapshot) -> String {
    let mut out = String::new();
    render_pool(&mut out, name, pool);
    render_memory_peak(&mut out);
    render_responses(&mut out);
    render_durations(&mut out);
    render_timeouts(&mut out, pool.terminated);
    render_bytes(&mut out);
    out
}

/// The pool's own series: name, type, help, value.
fn pool_series(pool: &PoolSnapshot) -> [(&'static str, &'static str, &'static str, u64); 13] {
    [
        (
            "tfpm_threads_busy",
            "gauge",
            "PHP threads running a request.",
            pool.active,
        ),
        (
            "tfpm_threads_idle",
            "gauge",
            "PHP threads waiting for a request.",
            pool.idle,
        ),
        (
            "tfpm_threads_total",
            "gauge",
            "PHP threads in the pool.",
            pool.threads,
        ),
        (
            "tfpm_queue_depth",
            "gauge",
            "Requests waiting for a free PHP thread.",
            pool.queued,
        ),
        (
            "tfpm_requests_accepted_total",
            "counter",
            "Requests a PHP thread started.",
            pool.accepted,
        ),
        (
            "tfpm_max_children_reached_total",
            "counter",
            "Times a request started with every PHP thread busy.",
            pool.max_children_reached,
        ),
        (
            "tfpm_slow_requests_total",
            "counter",
            "Requests still running after request_slowlog_timeout.",
            pool.slow,
        ),
        (
            "tfpm_thread_restarts_total",
            "counter",
            "Stuck PHP threads retired and replaced.",
            pool.restarts,
        ),
        (
            "tfpm_threads_busy_max",
            "gauge",
            "Most PHP threads busy at once since start.",
            pool.max_active,
        ),
        (
            "tfpm_queue_depth_max",
            "gauge",
            "Most requests waiting at once since start.",
            pool.max_queued,
        ),
        (
            "tfpm_worker_script_boots_total",
            "counter",
            "Times the worker script started (worker mode): each thread's first boot and every restart.",
            pool.script_boots,
        ),
        (
            "tfpm_worker_script_requests_total",
            "counter",
            "Requests served by the worker script (worker mode).",
            pool.script_requests,
        ),
        (
            "tfpm_worker_script_threads_busy",
            "gauge",
            "Worker script threads running a request (worker mode).",
            pool.script_busy,
        ),
    ]
}

fn render_pool(out: &mut String, pool_name: &str, pool: &PoolSnapshot) {
    let label = label_value(pool_name);
    for (name, kind, help, value) in pool_series(pool) {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name}{{pool=\"{label}\"}} {value}");
    }
}

/// A label value as the text format escapes it: backslash, quote, newline.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Whether a series is a maximum (a `_max` gauge, or the memory peak),
/// which several workers' samples combine into by taking the largest.
fn is_maximum(series: &str) -> bool {
    let name = series.split('{').next().unwrap_or(series);
    name.ends_with("_max") || name == "tfpm_memory_peak_bytes"
}

/// php-fpm 8.4's "memory peak" of the status page.
fn render_memory_peak(out: &mut String) {
    let name = "tfpm_memory_peak_bytes";
    family(
        out,
        name,
        "gauge",
        "The largest memory peak of a request at its end (php-fpm's memory peak).",
    );
    let _ = writeln!(out, "{name} {}", crate::php::memory_peak());
}

fn render_bytes(out: &mut String) {
    let series = [
        (
            "tfpm_fastcgi_read_bytes_total",
            "FastCGI bytes read from web servers.",
            &COUNTERS.bytes_in,
        ),
        (
            "tfpm_fastcgi_written_bytes_total",
            "FastCGI bytes written to web servers.",
            &COUNTERS.bytes_out,
        ),
        (
            "tfpm_connections_adopted_total",
            "Kept connections taken over from a retiring worker (a reload, an idle ondemand worker).",
            &COUNTERS.adopted,
        ),
    ];
    for (name, help, n) in series {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_responses(out: &mut String) {
    let name = "tfpm_responses_total";
    family(
        out,
        name,
        "counter",
        "Responses sent, by HTTP status class.",
    );
    for (class, n) in CLASSES.iter().zip(&COUNTERS.responses) {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{class=\"{class}\"}} {n}");
    }
}

fn render_durations(out: &mut String) {
    let name = "tfpm_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from a request's params to its end.",
    );
    let mut count = 0;
    for (i, n) in COUNTERS.durations.iter().enumerate() {
        count += n.load(Ordering::Relaxed);
        let le = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
    }
    let sum = COUNTERS.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
}

fn render_timeouts(out: &mut String, terminated: u64) {
    let name = "tfpm_timeouts_total";
    family(
        out,
        name,
        "counter",
        "Timeouts, by kind: what the peer or the script was late with.",
    );
    for (kind, n) in TIMEOUT_KINDS.iter().zip(&COUNTERS.timeouts) {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(out, "{name}{{kind=\"request_terminate\"}} {terminated}");
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

/// Several processes' metrics as one: samples of the same series (name and
/// labels) are added, or for a maximum the largest is kept; comment lines
/// are kept once, in first-seen order. The pool label keeps the pools
/// apart; series without it are the whole daemon's.
pub fn sum(texts: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, f64> = HashMap::new();
    for line in texts.iter().flat_map(|t| t.lines()) {
        let (key, value) = match line.rsplit_once(' ') {
            Some((key, value)) if !line.starts_with('#') => (key, value.parse::<f64>().ok()),
            _ => (line, None),
        };
        let key = if value.is_some() { key } else { line };
        let value = value.unwrap_or(0.0);
        match values.get_mut(key) {
            Some(v) if is_maximum(key) => *v = v.max(value),
            Some(v) => *v += value,
            None => {
                order.push(key.to_string());
                values.insert(key.to_string(), value);
            }
        }
    }
    let mut out = String::new();
    for key in order {
        if key.starts_with('#') || key.is_empty() {
            let _ = writeln!(out, "{key}");
        } else {
            let v = values[&key];
            let _ = match v.fract() == 0.0 && v.abs() < 1e15 {
                true => writeln!(out, "{key} {}", v as i64),
                false => writeln!(out, "{key} {v}"),
            };
        }
    }
    out
}

/// The master's own series: workers ready, and workers that crashed.
pub fn master_series(workers: usize, crashes: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP tfpm_workers Worker processes ready to serve.");
    let _ = writeln!(out, "# TYPE tfpm_workers gauge\ntfpm_workers {workers}");
    let _ = writeln!(
        out,
        "# HELP tfpm_worker_crashes_total Worker processes that exited without being asked to (replaced at once)."
    );
    let _ = writeln!(
        out,
        "# TYPE tfpm_worker_crashes_total counter\ntfpm_worker_crashes_total {crashes}"
    );
    out
}

/// The total of family `name` in a metrics text, over all its labels
/// (None if it has no sample).
pub fn value(text: &str, name: &str) -> Option<f64> {
    let samples = text.lines().filter_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(labels) => labels.split_once('}')?.1,
            None => rest,
        };
        rest.strip_prefix(' ')?.trim().parse::<f64>().ok()
    });
    samples.fold(None, |sum, v| Some(sum.unwrap_or(0.0) + v))
}

/// The largest sample of `name` in `text` (a gauge that is a maximum over
/// the workers, such as the memory peak), or None if there is none.
pub fn max_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .fold(None, |max, v| Some(max.map_or(v, |m: f64| m.max(v))))
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
    fn sums_workers_series_by_name_and_labels() {
        let a = "# TYPE t counter\nt 2\nr{class=\"2xx\"} 5\nd_sum 0.5\n".to_string();
        let b = "# TYPE t counter\nt 3\nr{class=\"2xx\"} 1\nr{class=\"5xx\"} 1\nd_sum 0.25\n"
            .to_string();
        assert_eq!(
            sum(&[a, b]),
            "# TYPE t counter\nt 5\nr{class=\"2xx\"} 6\nd_sum 0.75\nr{class=\"5xx\"} 1\n"
        );
        assert_eq!(value("t_x 9\nt 5\n", "t"), Some(5.0));
        assert_eq!(value("t{a=\"1\"} 2\nt{a=\"2\"} 3\n", "t"), Some(5.0));
        assert_eq!(value("u 1\n", "t"), None);
        assert_eq!(sum(&[]), "");
    }

    #[test]
    fn maxima_keep_the_largest_and_pools_stay_apart() {
        let a = "t_max{pool=\"a\"} 3\nt{pool=\"a\"} 1\ntfpm_memory_peak_bytes 100\n".to_string();
        let b = "t_max{pool=\"a\"} 2\nt{pool=\"a\"} 1\ntfpm_memory_peak_bytes 300\n".to_string();
        let c = "t_max{pool=\"b\"} 7\nt{pool=\"b\"} 4\n".to_string();
        assert_eq!(
            sum(&[a, b, c]),
            "t_max{pool=\"a\"} 3\nt{pool=\"a\"} 2\ntfpm_memory_peak_bytes 300\n\
             t_max{pool=\"b\"} 7\nt{pool=\"b\"} 4\n"
        );
    }

    #[test]
    fn every_pool_series_carries_the_pools_name() {
        let text = render("al\"pha", &PoolSnapshot::default());
        let pool_lines: Vec<&str> = text.lines().filter(|l| l.contains("pool=")).collect();
        // Ten thread and queue series, three of worker mode.
        assert_eq!(pool_lines.len(), 13, "{text}");
        assert!(
            pool_lines
                .iter()
                .all(|l| l.contains("{pool=\"al\\\"pha\"}")),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        response(200, Duration::from_millis(1));
        response(503, Duration::from_secs(100));
        let mut out = String::new();
        render_durations(&mut out);
        let inf = out.lines().find(|l| l.contains("le=\"+Inf\"")).unwrap();
        let count = out.lines().find(|l| l.contains("_count")).unwrap();
        assert_eq!(inf.rsplit(' ').next(), count.rsplit(' ').next());
        assert!(out.contains("le=\"0.005\"} "));
    }
}
