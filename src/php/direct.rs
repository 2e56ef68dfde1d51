//! Scripts run directly on a PHP thread of their own, with no FastCGI and no
//! I/O: `-i` and `-m` (one run, its output kept), the params worker mode's
//! boot request starts from, and, with the `bench` feature, the engine
//! floor (the same script over and over, output discarded), the cost per
//! request that `bench/run.sh` compares the daemon's against.
#![allow(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "bench")]
use std::time::Instant;

use bytes::Bytes;

use super::ffi;
use super::request::{
    BodyPoll, BodySource, PreparedRequest, Request, RequestPolicy, ResponseSink, SinkGone,
};
use crate::fcgi::Params;

/// Discards output.
#[cfg(feature = "bench")]
struct NullSink;

#[cfg(feature = "bench")]
impl ResponseSink for NullSink {
    fn stdout(&self, _: Bytes) -> Result<(), SinkGone> {
        Ok(())
    }
    fn stderr(&self, _: Bytes) -> Result<(), SinkGone> {
        Ok(())
    }
    fn end(&self, _: u32, _: bool) {}
    fn abandon(&self) -> bool {
        true
    }
}

/// Keeps the output.
#[derive(Default)]
struct Capture(std::sync::Mutex<Vec<u8>>);

impl ResponseSink for Capture {
    fn stdout(&self, data: Bytes) -> Result<(), SinkGone> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(&data);
        Ok(())
    }
    fn stderr(&self, _: Bytes) -> Result<(), SinkGone> {
        Ok(())
    }
    fn end(&self, _: u32, _: bool) {}
    fn abandon(&self) -> bool {
        true
    }
}

/// No body.
pub(super) struct NoBody;

impl BodySource for NoBody {
    fn next_chunk(&mut self, _: Duration) -> BodyPoll {
        BodyPoll::End
    }
}

/// The params nginx's fastcgi.conf would send for a GET of `script`.
fn params(script: &Path) -> Params {
    let pairs = script_params(script);
    let text: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Params::from_text(&text)
}

/// Those params as text pairs (worker mode's boot request adds its own).
pub(super) fn script_params(script: &Path) -> Vec<(String, String)> {
    let file = script.to_string_lossy().into_owned();
    let name = format!(
        "/{}",
        script
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let dir = script
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pairs = [
        ("SCRIPT_FILENAME", file.as_str()),
        ("SCRIPT_NAME", name.as_str()),
        ("REQUEST_URI", name.as_str()),
        ("DOCUMENT_URI", name.as_str()),
        ("DOCUMENT_ROOT", dir.as_str()),
        ("QUERY_STRING", ""),
        ("REQUEST_METHOD", "GET"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "50000"),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("HTTP_HOST", "localhost"),
    ];
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect()
}

/// Runs `script` `requests` times on a fresh PHP thread; returns the total
/// time. PHP must have started (see `Engine::start`).
#[cfg(feature = "bench")]
pub(super) fn run(script: &Path, requests: u64, stack_size: usize) -> std::io::Result<Duration> {
    let script = script.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("php-floor".into())
        .stack_size(stack_size)
        .spawn(move || on_thread(&script, requests))?;
    handle
        .join()
        .map_err(|_| std::io::Error::other("the floor thread panicked"))
}

/// Runs `script` once on a fresh PHP thread and returns what it printed
/// (the body, without the CGI headers): for `-m` and `-i`.
pub(super) fn output_of(script: &Path, stack_size: usize) -> std::io::Result<Vec<u8>> {
    let script = script.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("php-info".into())
        .stack_size(stack_size)
        .spawn(move || capture_on_thread(&script))?;
    let out = handle
        .join()
        .map_err(|_| std::io::Error::other("the info thread panicked"))?;
    let body = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| at + 4);
    Ok(out[body..].to_vec())
}

fn capture_on_thread(script: &Path) -> Vec<u8> {
    let mut handle = ffi::tfpm_thread_handle::default();
    // SAFETY: a fresh thread, after module start-up; fills `handle`.
    unsafe { ffi::tfpm_thread_init(&mut handle) };
    let sink = Arc::new(Capture::default());
    let request = Request {
        params: params(script),
        body: Box::new(NoBody),
        sink: sink.clone(),
        abort: Arc::default(),
        keep_conn: false,
        span: tracing::Span::none(),
        client_ip: None,
    };
    let cgi = super::pool::cgi_settings();
    let mut prepared = PreparedRequest::new(request, &RequestPolicy::default(), &cgi);
    let c_req = prepared.as_c();
    // SAFETY: as in the worker loop: `prepared` outlives the call and this
    // thread was set up by tfpm_thread_init.
    unsafe { ffi::tfpm_execute(&c_req, 1) };
    prepared.ctx.finish();
    drop(prepared);
    // SAFETY: same thread as tfpm_thread_init; no request is running.
    unsafe { ffi::tfpm_thread_shutdown() };
    let out = sink.0.lock().unwrap_or_else(|e| e.into_inner());
    out.clone()
}

#[cfg(feature = "bench")]
fn on_thread(script: &Path, requests: u64) -> Duration {
    let mut handle = ffi::tfpm_thread_handle::default();
    // SAFETY: a fresh thread, after module start-up; fills `handle`.
    unsafe { ffi::tfpm_thread_init(&mut handle) };
    let policy = RequestPolicy::default();
    let cgi = super::pool::cgi_settings();
    let params = params(script);
    let started = Instant::now();
    for seq in 1..=requests {
        let request = Request {
            params: params.clone(),
            body: Box::new(NoBody),
            sink: Arc::new(NullSink),
            abort: Arc::default(),
            keep_conn: true,
            span: tracing::Span::none(),
            client_ip: None,
        };
        let mut prepared = PreparedRequest::new(request, &policy, &cgi);
        let c_req = prepared.as_c();
        // SAFETY: as in the worker loop: `prepared` outlives the call and this
        // thread was set up by tfpm_thread_init.
        unsafe { ffi::tfpm_execute(&c_req, seq) };
        prepared.ctx.finish();
    }
    let elapsed = started.elapsed();
    // SAFETY: same thread as tfpm_thread_init; no request is running.
    unsafe { ffi::tfpm_thread_shutdown() };
    elapsed
}
