//! `fcgi-load`: drives a FastCGI responder (tfpm or php-fpm) straight, with
//! no web server in between. C connections each send requests one after
//! another (FCGI_KEEP_CONN by default); the result is one JSON line with
//! throughput and latency percentiles. `--idle N` instead holds N silent
//! connections open, to measure memory per idle connection.

mod record;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

#[derive(Debug, Parser)]
#[command(name = "fcgi-load", about = "FastCGI load generator")]
struct Cli {
    /// HOST:PORT, [IPv6]:PORT or a Unix socket path.
    #[arg(long)]
    connect: String,
    /// SCRIPT_FILENAME (absolute).
    #[arg(long, default_value = "/dev/null")]
    script: PathBuf,
    #[arg(long, default_value = "")]
    query: String,
    /// Send a body of this many bytes (the method becomes POST).
    #[arg(long, default_value_t = 0)]
    body_bytes: usize,
    #[arg(long, default_value = "application/octet-stream")]
    content_type: String,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many measured requests in all instead.
    #[arg(long)]
    requests: Option<u64>,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// A new connection per request, as nginx without keepalive.
    #[arg(long)]
    no_keep_conn: bool,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Hold this many idle connections instead of sending requests.
    #[arg(long)]
    idle: Option<usize>,
    /// With --idle: seconds to hold them; 0 holds until stdin closes.
    #[arg(long, default_value_t = 0.0)]
    hold: f64,
}

/// A connection to the responder.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

async fn connect(addr: &str) -> std::io::Result<Box<dyn Conn>> {
    if addr.starts_with('/') {
        Ok(Box::new(UnixStream::connect(addr).await?))
    } else {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    }
}

/// The params nginx's fastcgi.conf sends, for this script.
fn params(cli: &Cli) -> Vec<(String, String)> {
    let script = cli.script.display().to_string();
    let name = format!(
        "/{}",
        cli.script
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let root = cli
        .script
        .parent()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    let method = if cli.body_bytes > 0 { "POST" } else { "GET" };
    let uri = if cli.query.is_empty() {
        name.clone()
    } else {
        format!("{name}?{}", cli.query)
    };
    let mut p: Vec<(String, String)> = [
        ("SCRIPT_FILENAME", script.as_str()),
        ("SCRIPT_NAME", &name),
        ("DOCUMENT_URI", &name),
        ("REQUEST_URI", &uri),
        ("DOCUMENT_ROOT", &root),
        ("QUERY_STRING", &cli.query),
        ("REQUEST_METHOD", method),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "fcgi-load"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "40000"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "localhost"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    if cli.body_bytes > 0 {
        p.push(("CONTENT_TYPE".into(), cli.content_type.clone()));
        p.push(("CONTENT_LENGTH".into(), cli.body_bytes.to_string()));
    }
    p
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    stdout_bytes: u64,
    reasons: Vec<String>,
}

impl Tally {
    fn error(&mut self, why: String) {
        self.errors += 1;
        if self.reasons.len() < 5 {
            self.reasons.push(why);
        }
    }
}

/// Shared limits: when measuring starts and when to stop.
struct Plan {
    start: Instant,
    measure_from: Instant,
    stop_at: Option<Instant>,
    remaining: Option<std::sync::atomic::AtomicU64>,
    done: AtomicBool,
}

impl Plan {
    /// Whether one more request should be sent.
    fn go(&self) -> bool {
        if self.done.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(stop) = self.stop_at {
            return Instant::now() < stop;
        }
        true
    }

    /// Counts a measured request; false once the total is reached.
    fn count(&self) -> bool {
        let Some(left) = &self.remaining else {
            return true;
        };
        let before = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        match before {
            Ok(1) | Err(_) => {
                self.done.store(true, Ordering::Relaxed);
                before.is_ok()
            }
            Ok(_) => true,
        }
    }
}

async fn worker(addr: String, request: Arc<Vec<u8>>, keep: bool, plan: Arc<Plan>) -> Tally {
    let mut tally = Tally::default();
    let mut scratch = Vec::with_capacity(65536);
    let mut conn: Option<BufReader<Box<dyn Conn>>> = None;
    while plan.go() {
        if conn.is_none() {
            match connect(&addr).await {
                Ok(c) => conn = Some(BufReader::with_capacity(64 * 1024, c)),
                Err(e) => {
                    tally.error(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected");
        let sent = Instant::now();
        let result = exchange(c, &request, &mut scratch).await;
        let took = sent.elapsed();
        match result {
            Ok(r) if r.status < 500 => {
                if sent >= plan.measure_from && plan.count() {
                    tally
                        .latencies_us
                        .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    tally.stdout_bytes += r.stdout_bytes;
                }
            }
            Ok(r) => tally.error(format!("status {}", r.status)),
            Err(e) => {
                tally.error(format!("io: {e}"));
                conn = None;
            }
        }
        if !keep {
            conn = None;
        }
    }
    tally
}

async fn exchange(
    c: &mut BufReader<Box<dyn Conn>>,
    request: &[u8],
    scratch: &mut Vec<u8>,
) -> std::io::Result<record::Response> {
    c.get_mut().write_all(request).await?;
    record::read_response(c, scratch).await
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

async fn load(cli: Cli) -> i32 {
    let request = Arc::new(record::encode_request(
        &params(&cli),
        &body(cli.body_bytes),
        !cli.no_keep_conn,
    ));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(cli.warmup);
    let plan = Arc::new(Plan {
        start,
        measure_from,
        stop_at: cli
            .requests
            .is_none()
            .then(|| measure_from + Duration::from_secs_f64(cli.duration)),
        remaining: cli.requests.map(std::sync::atomic::AtomicU64::new),
        done: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..cli.concurrency.max(1))
        .map(|_| {
            tokio::spawn(worker(
                cli.connect.clone(),
                request.clone(),
                !cli.no_keep_conn,
                plan.clone(),
            ))
        })
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let tally = t.await.unwrap_or_default();
        all.latencies_us.extend(tally.latencies_us);
        all.errors += tally.errors;
        all.stdout_bytes += tally.stdout_bytes;
        all.reasons.extend(tally.reasons);
    }
    let measured = plan
        .start
        .elapsed()
        .saturating_sub(measure_from - plan.start)
        .as_secs_f64();
    report(&mut all, measured);
    0
}

fn report(all: &mut Tally, seconds: f64) {
    all.latencies_us.sort_unstable();
    let n = all.latencies_us.len();
    let rps = if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    };
    let l = &all.latencies_us;
    println!(
        r#"{{"requests":{n},"errors":{},"seconds":{seconds:.3},"rps":{rps:.1},"p50_ms":{:.3},"p90_ms":{:.3},"p99_ms":{:.3},"max_ms":{:.3},"stdout_bytes":{}}}"#,
        all.errors,
        percentile(l, 50.0),
        percentile(l, 90.0),
        percentile(l, 99.0),
        percentile(l, 100.0),
        all.stdout_bytes
    );
    if all.errors > 0 {
        eprintln!("fcgi-load: {} errors, e.g. {:?}", all.errors, all.reasons);
    }
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"0123456789abcdef"[i % 16]).collect()
}

/// `--idle N`: N silent connections, held open.
async fn idle(cli: &Cli, n: usize) -> i32 {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        match connect(&cli.connect).await {
            Ok(c) => conns.push(c),
            Err(e) => {
                eprintln!("fcgi-load: connect: {e}");
                return 1;
            }
        }
    }
    println!("ready");
    if cli.hold > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(cli.hold)).await;
    } else {
        let mut stdin = tokio::io::stdin();
        let mut sink = [0u8; 64];
        while matches!(stdin.read(&mut sink).await, Ok(k) if k > 0) {}
    }
    drop(conns);
    0
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async {
        match cli.idle {
            Some(n) => idle(&cli, n).await,
            None => load(cli).await,
        }
    });
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn a_request_total_stops_the_plan() {
        let now = Instant::now();
        let plan = Plan {
            start: now,
            measure_from: now,
            stop_at: None,
            remaining: Some(std::sync::atomic::AtomicU64::new(2)),
            done: AtomicBool::new(false),
        };
        assert!(plan.count());
        assert!(plan.count());
        assert!(!plan.go());
        assert!(!plan.count());
    }
}
