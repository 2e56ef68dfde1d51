//! A pool's request logs: php-fpm's `access.log` and `slowlog`, and PHP's
//! own messages as php-fpm's children write them on their stderr.
//!
//! The access log has one line per request in the pool's `access.format`
//! ([`crate::config::access_format`]), with one write() on a file the
//! worker process opened once, appending. What the line needs of the
//! request is taken before the script runs ([`PendingAccess`]); the line is
//! written where php-fpm writes it: after the script, before PHP's request
//! shutdown (and so before the response ends), when the shim calls
//! `tfpm_rs_request_end` ([`RequestEnd`]: status, peak memory, response
//! headers, auth user, duration, CPU).

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::request::PreparedRequest;
use crate::config::access_format::{self, AccessFormat, CpuTime, Record, LINE_LIMIT};
use crate::sys::os;

/// The logs of the pool an engine runs.
#[derive(Debug, Clone, Default)]
pub struct RequestLogs {
    /// The pool's name (`%n`, the slowlog's entries and warnings).
    pub pool: String,
    /// The access log; None: `access.log` unset.
    pub access: Option<Arc<AccessLog>>,
    /// The slowlog; None: off.
    pub slowlog: Option<Slowlog>,
    /// Where PHP's messages go besides the web server (None: tfpm's log).
    pub stderr: Option<StderrLog>,
}

/// PHP's messages (with the `error_log` ini setting unset) written as
/// php-fpm's children write them: `NOTICE: PHP message: …` on the
/// process's stderr, which the master relays into its log with
/// `catch_workers_output` (else stderr is /dev/null, and they go to the
/// web server only, as with php-fpm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StderrLog {
    /// `log_limit`: a longer line is cut, ending in `...`.
    pub limit: usize,
    /// The `NOTICE: ` level word (php-fpm leaves it out when its
    /// `log_level` hides notices).
    pub level: bool,
    /// End every request with the relay's flush marker, so that what a
    /// script left without a newline makes its own line.
    pub flush: bool,
}

/// What a worker writes on its stderr to end a pending line: php-fpm's
/// children write the same six bytes, NUL included, after each request.
pub const STDERR_FLUSH: &[u8] = b"\0fscf\0";

/// This process's [`StderrLog`]: one pool per worker process.
static STDERR_LOG: std::sync::OnceLock<StderrLog> = std::sync::OnceLock::new();

/// Sets where PHP's messages go (once, as the engine starts).
pub(super) fn set_stderr_log(log: Option<StderrLog>) {
    if let Some(log) = log {
        let _ = STDERR_LOG.set(log);
    }
}

/// Writes PHP's message `text` to stderr, as a php-fpm child does; false
/// when PHP's messages go to tfpm's own log instead.
pub(super) fn php_message_to_stderr(text: &str) -> bool {
    let Some(log) = STDERR_LOG.get() else {
        return false;
    };
    let line = stderr_line(log, text);
    let _ = std::io::stderr().lock().write_all(&line);
    true
}

/// What to do about an extension PHP could not load at start-up, judged
/// from PHP's message; None for any other message.
pub(super) fn extension_hint(text: &str) -> Option<&'static str> {
    if !text.contains("PHP Startup:") {
        return None;
    }
    if text.contains(",NTS") {
        return Some(
            "built for a non-thread-safe PHP, such as Debian's php-* packages; rebuild it with scripts/php-ext.sh",
        );
    }
    let other_build = text.contains("Unable to initialize module")
        || text.contains("Unable to load dynamic library");
    other_build.then_some("not built for this PHP; rebuild it with scripts/php-ext.sh")
}

/// `NOTICE: PHP message: text\n`, cut to `limit - 1` bytes ending in `...`
/// when longer (php-fpm's children do the same).
fn stderr_line(log: &StderrLog, text: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(text.len() + 24);
    if log.level {
        line.extend_from_slice(b"NOTICE: ");
    }
    line.extend_from_slice(b"PHP message: ");
    line.extend_from_slice(text.as_bytes());
    if line.len() >= log.limit {
        let max = log.limit.saturating_sub(1).max(3);
        line.truncate(max);
        line[max - 3..].copy_from_slice(b"...");
    }
    line.push(b'\n');
    line
}

/// After a request: ends whatever line the script left open on stderr.
pub(super) fn flush_stderr() {
    if STDERR_LOG.get().is_some_and(|log| log.flush) {
        let _ = std::io::stderr().lock().write_all(STDERR_FLUSH);
    }
}

/// `slowlog` and `request_slowlog_timeout`: a request still running after
/// `after` writes its PHP stack to `file` (see `ffi/tfpm_slowlog.c`).
#[derive(Debug, Clone)]
pub struct Slowlog {
    /// Opened (appending) by the worker process before it left root.
    pub file: Arc<File>,
    /// `request_slowlog_timeout`: how long a request runs before its entry.
    pub after: std::time::Duration,
    /// `request_slowlog_trace_depth`: frames per entry at most.
    pub depth: u32,
    /// Entry times with microseconds (php-fpm does so at log_level debug).
    pub micros: bool,
}

/// A pool's access log, as the engine gets it.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Opened (appending) by the worker process before it left root.
    pub file: Arc<File>,
    /// `access.format`, parsed.
    pub format: AccessFormat,
    /// `access.suppress_path`.
    pub suppress: Vec<String>,
    /// The pool's name (`%n`).
    pub pool: String,
}

/// When a request began, for its line and the status page.
#[derive(Clone, Copy)]
pub(super) struct Start {
    wall: SystemTime,
    at: Instant,
    cpu: CpuTime,
}

impl Start {
    pub(super) fn now() -> Start {
        Start {
            wall: SystemTime::now(),
            at: Instant::now(),
            cpu: cpu_now(),
        }
    }
}

/// A request as its script ended (see `tfpm_request_end`).
pub(super) struct RequestEnd {
    wall: SystemTime,
    at: Instant,
    cpu: CpuTime,
    pub(super) status: i32,
    pub(super) memory: u64,
    pub(super) auth_user: Vec<u8>,
    pub(super) headers: Vec<Vec<u8>>,
}

impl RequestEnd {
    /// The end, now, with what the shim read.
    pub(super) fn now(status: i32, memory: u64, auth_user: &[u8], headers: &[u8]) -> RequestEnd {
        RequestEnd {
            wall: SystemTime::now(),
            at: Instant::now(),
            cpu: cpu_now(),
            status,
            memory,
            auth_user: auth_user.to_vec(),
            headers: headers
                .split(|&b| b == b'\n')
                .filter(|h| !h.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }
}

impl RequestEnd {
    /// php-fpm's "last request cpu" (CPU time over wall time, in percent)
    /// and "last request memory" (the peak, in bytes) of the request that
    /// began at `start`.
    pub(super) fn usage_since(&self, start: &Start) -> (f64, u64) {
        let wall = self.at.saturating_duration_since(start.at).as_secs_f64();
        let cpu = (self.cpu.user + self.cpu.system)
            .saturating_sub(start.cpu.user + start.cpu.system)
            .as_secs_f64();
        let percent = if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 };
        (percent, self.memory)
    }
}

fn cpu_now() -> CpuTime {
    let (user, system) = os::thread_cpu_time();
    CpuTime { user, system }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `%R`: the web server's address as php-fpm prints it (IPv4-mapped
/// addresses as IPv4).
fn remote_ip(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|ip| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4).to_string(),
        v4 => v4.to_string(),
    })
}

impl AccessLog {
    /// What the shim should report at the request's end (`report_end`).
    pub(super) fn report_end(&self) -> i32 {
        if self.format.wants_headers() {
            2
        } else {
            1
        }
    }

    fn write(&self, record: &Record) {
        if access_format::suppressed(&self.suppress, record) {
            return;
        }
        let line = self.format.render(record);
        if line.truncated {
            tracing::info!(
                "the log buffer is full ({LINE_LIMIT}). The access log request has been truncated."
            );
        }
        if !line.bytes.is_empty() {
            // One write(), as php-fpm: lines from threads never interleave.
            let _ = (&*self.file).write(&line.bytes);
        }
    }

    /// What the line of request `req`, run by thread `tid`, needs of it:
    /// taken before the script runs, so that the line can be written as
    /// the script ends (before PHP's request shutdown and the response's
    /// end, as php-fpm writes it).
    pub(super) fn pending(
        self: &Arc<Self>,
        start: Start,
        req: &PreparedRequest,
        tid: u32,
    ) -> PendingAccess {
        let params = self
            .format
            .param_names()
            .map(|name| (name.to_vec(), req.param(name).map(<[u8]>::to_vec)))
            .collect();
        PendingAccess {
            log: self.clone(),
            start,
            tid,
            remote_ip: remote_ip(req.ctx.client_ip),
            method: req.method().to_vec(),
            request_uri: req.request_uri().to_vec(),
            query_string: req.query_string().to_vec(),
            script_filename: req.script_filename().to_vec(),
            content_length: req.content_length(),
            params,
        }
    }
}

/// A request's access log line, waiting for the request's end.
pub(super) struct PendingAccess {
    log: Arc<AccessLog>,
    start: Start,
    tid: u32,
    remote_ip: Option<String>,
    method: Vec<u8>,
    request_uri: Vec<u8>,
    query_string: Vec<u8>,
    script_filename: Vec<u8>,
    content_length: u64,
    /// The params the format prints, with their values.
    params: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl PendingAccess {
    /// Writes the line, with what the shim reported as the script ended.
    pub(super) fn write(self, end: Option<&RequestEnd>) {
        let fallback;
        let end = match end {
            Some(end) => end,
            None => {
                fallback = RequestEnd::now(500, 0, b"", b"");
                &fallback
            }
        };
        let (start, log) = (&self.start, &*self.log);
        let param = |name: &[u8]| {
            let found = self.params.iter().find(|(n, _)| n == name);
            found.and_then(|(_, v)| v.clone())
        };
        let strftime = |format: &[u8], at: i64| os::strftime_local(format, at);
        let used = |a: std::time::Duration, b: std::time::Duration| a.saturating_sub(b);
        let record = Record {
            remote_ip: self.remote_ip.clone(),
            auth_user: &end.auth_user,
            method: &self.method,
            request_uri: &self.request_uri,
            query_string: &self.query_string,
            script_filename: &self.script_filename,
            content_length: self.content_length,
            status: end.status,
            started: unix(start.wall),
            ended: unix(end.wall),
            duration: end.at.saturating_duration_since(start.at),
            cpu: CpuTime {
                user: used(end.cpu.user, start.cpu.user),
                system: used(end.cpu.system, start.cpu.system),
            },
            memory: end.memory,
            pool: &log.pool,
            pid: self.tid,
            parent_pid: std::os::unix::process::parent_id(),
            param: &param,
            headers: &end.headers,
            strftime: &strftime,
        };
        log.write(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_that_cannot_load_get_a_hint() {
        let nts = "PHP Warning:  PHP Startup: Unable to load dynamic library 'redis.so' \
            (... Module compiled with build ID=API20220829,NTS\nPHP compiled with build ID=API20220829,TS)";
        assert!(extension_hint(nts).unwrap().contains("non-thread-safe"));
        let api = "PHP Warning:  PHP Startup: msgpack: Unable to initialize module\nModule compiled with module API=20240924";
        assert!(extension_hint(api)
            .unwrap()
            .contains("not built for this PHP"));
        assert_eq!(extension_hint("PHP Warning:  Undefined variable $x"), None);
    }

    #[test]
    fn remote_addresses_as_php_fpm_prints_them() {
        let ip = |s: &str| remote_ip(Some(s.parse().unwrap()));
        assert_eq!(ip("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(ip("::ffff:10.0.0.7").as_deref(), Some("10.0.0.7"));
        assert_eq!(ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(remote_ip(None), None);
    }

    #[test]
    fn the_end_splits_the_headers_php_holds() {
        let end = RequestEnd::now(404, 7, b"bob", b"X-A: 1\nContent-type: text/html\n");
        assert_eq!(
            end.headers,
            [b"X-A: 1".to_vec(), b"Content-type: text/html".to_vec()]
        );
        assert_eq!(
            (end.status, end.memory, &end.auth_user[..]),
            (404, 7, &b"bob"[..])
        );
    }

    #[test]
    fn times_and_cpu_come_from_the_system() {
        // 2023-11-14 22:13:20 UTC, in whatever zone this runs: the year is sure.
        assert_eq!(os::strftime_local(b"%Y", 1_700_000_000), b"2023");
        assert_eq!(os::strftime_local(&[b'x'; 200], 0), b"");
        let before = cpu_now();
        let mut n = 0u64;
        for i in 0..2_000_000u64 {
            n = n.wrapping_add(i * i);
        }
        assert!(n > 0);
        let after = cpu_now();
        assert!(after.user + after.system >= before.user + before.system);
    }
}
