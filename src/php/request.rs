//! One PHP request: what the server hands to a PHP thread ([`Request`]),
//! the traits through which output leaves and the body arrives, and the
//! context that lives on the worker's stack while PHP runs ([`RequestCtx`]).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::buffers::{self, apply_edits, find_value, params_size, push_c, Buffers, Span};
use super::cgi_env::{self, CgiSettings, RealFiles};
use super::ffi;
use super::logs::{PendingAccess, RequestEnd};
use super::pool::Thread;
use crate::fcgi::Params;

/// Output is sent in chunks of about this size (PHP's writes are coalesced).
const OUT_CHUNK: usize = 32 * 1024;

/// The client is gone; output can no longer be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkGone;

/// Where a request's output goes. The PHP thread's calls block when the
/// client is slow: that is the backpressure.
pub trait ResponseSink: Send + Sync {
    /// Response bytes (CGI headers, then body).
    fn stdout(&self, data: Bytes) -> Result<(), SinkGone>;
    /// Log text for the web server (FastCGI STDERR).
    fn stderr(&self, data: Bytes) -> Result<(), SinkGone>;
    /// The response is complete. Only the first call counts.
    fn end(&self, app_status: u32, stderr_used: bool);
    /// The last of the output, then the end: one write where the sink can.
    fn finish(&self, tail: Bytes, app_status: u32, stderr_used: bool) {
        if !tail.is_empty() {
            let _ = self.stdout(tail);
        }
        self.end(app_status, stderr_used);
    }
    /// From another thread, when the request's own thread is stuck: ends the
    /// response with an error, without blocking. Later output is refused.
    /// Returns false if that was not possible right now.
    fn abandon(&self) -> bool;
}

/// What [`BodySource::next_chunk`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPoll {
    /// The next bytes of the body.
    Chunk(Bytes),
    /// The body is complete (or will never come).
    End,
    /// Nothing arrived within the wait; ask again.
    Pending,
}

/// Where a request's body comes from.
pub trait BodySource: Send {
    /// The next chunk, waiting at most `wait` for it.
    fn next_chunk(&mut self, wait: Duration) -> BodyPoll;
}

/// How long a PHP thread waits for body bytes before it checks its timers.
const BODY_WAIT: Duration = Duration::from_millis(100);

/// `read_body`'s answer when nothing arrived yet (`TFPM_BODY_WAIT` in C).
pub(super) const BODY_PENDING: usize = usize::MAX;

/// A request ready to run: its FastCGI params, body and output.
pub struct Request {
    /// The FastCGI params: the CGI environment the script sees.
    pub params: Params,
    /// The request body (FastCGI STDIN).
    pub body: Box<dyn BodySource>,
    /// Where the response and the web server's log text go.
    pub sink: Arc<dyn ResponseSink>,
    /// Raised by the server when the client aborts or disconnects.
    pub abort: Arc<Abort>,
    /// The web server keeps the connection after this request
    /// (FCGI_KEEP_CONN); php-fpm then answers a repeated
    /// fastcgi_finish_request() with true.
    pub keep_conn: bool,
    /// The tracing span the request's log lines go in (request id, script).
    pub span: tracing::Span,
    /// The web server's address (TCP), for the access log's `%R`.
    pub client_ip: Option<std::net::IpAddr>,
}

/// Tells a request that its client is gone. A script that is running learns
/// it at its next output or interrupt point (a blocking sleep or read is
/// woken): it sees `connection_aborted()`, and ends unless it set
/// `ignore_user_abort`.
#[derive(Default)]
pub struct Abort {
    raised: AtomicBool,
    /// The worker running the request, and its number there, while it runs.
    running: Mutex<Option<(Arc<Thread>, u64)>>,
}

impl Abort {
    /// The client is gone. Only the first call does anything.
    pub fn raise(&self) {
        if self.raised.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some((thread, seq)) = self.lock().as_ref() {
            thread.abort(*seq);
        }
    }

    /// Whether [`Abort::raise`] was called: the client is gone.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Request `seq` on `worker` starts running (called on that worker).
    pub(super) fn attach(&self, thread: Arc<Thread>, seq: u64) {
        *self.lock() = Some((thread.clone(), seq));
        if self.is_raised() {
            // Raised before this point: nobody told the worker yet.
            thread.abort(seq);
        }
    }

    /// The script has ended; PHP's request shutdown runs next.
    pub(super) fn script_ended(&self) {
        if let Some((thread, seq)) = self.lock().as_ref() {
            let mut current = thread.current();
            if current.seq == *seq {
                current.finishing = true;
            }
        }
    }

    /// The request is over; `raise` no longer reaches the worker.
    pub(super) fn detach(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Arc<Thread>, u64)>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Settings that shape how a request is mapped onto PHP.
#[derive(Debug, Clone)]
pub struct RequestPolicy {
    /// Used to find the script when the web server sends no SCRIPT_FILENAME.
    pub docroot: Option<std::path::PathBuf>,
    /// php-fpm's `security.limit_extensions`; empty allows everything.
    pub limit_extensions: Vec<String>,
    /// php-fpm's `ping.path` and `ping.response`: a request for this URI
    /// gets the response text (200, text/plain) instead of a script.
    pub ping: Option<(String, String)>,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            docroot: None,
            limit_extensions: vec![".php".into(), ".phar".into()],
            ping: None,
        }
    }
}

/// The per-request state the C callbacks reach through `ctx`.
pub(super) struct RequestCtx {
    pub(super) sink: Arc<dyn ResponseSink>,
    body: Option<Box<dyn BodySource>>,
    body_chunk: Bytes,
    pub(super) abort: Arc<Abort>,
    keep_conn: bool,
    /// Output not yet handed to the sink; at most one of the two holds
    /// anything, so stdout and stderr leave in the order PHP wrote them,
    /// and log lines in a row share one record, as under php-fpm.
    pending: BytesMut,
    pending_log: BytesMut,
    finished: bool,
    gone: bool,
    wrote_any: bool,
    stderr_used: bool,
    pub(super) script: Arc<str>,
    pub(super) client_ip: Option<std::net::IpAddr>,
    /// What the shim reported as the script ended (for the access log).
    pub(super) end: Option<RequestEnd>,
    /// The request's access log line, until it is written.
    pub(super) access: Option<PendingAccess>,
}

impl RequestCtx {
    /// Writes the request's access log line, once: as the script ends,
    /// or, if its end was never reported, after the request.
    pub(super) fn write_access(&mut self) {
        if let Some(line) = self.access.take() {
            line.write(self.end.as_ref());
        }
    }

    fn new(req: Request, script: Arc<str>) -> Self {
        RequestCtx {
            sink: req.sink,
            body: Some(req.body),
            body_chunk: Bytes::new(),
            abort: req.abort,
            keep_conn: req.keep_conn,
            pending: buffers::take_output(),
            pending_log: BytesMut::new(),
            finished: false,
            gone: false,
            wrote_any: false,
            stderr_used: false,
            script,
            client_ip: req.client_ip,
            end: None,
            access: None,
        }
    }

    fn check_gone(&mut self) -> bool {
        if !self.gone && self.abort.is_raised() {
            self.gone = true;
        }
        self.gone
    }

    /// PHP output. Returns how many bytes were taken (all, or 0 once gone).
    pub(super) fn write(&mut self, data: &[u8]) -> usize {
        if self.finished {
            return data.len(); // after fastcgi_finish_request(): discarded
        }
        if self.check_gone() {
            return 0;
        }
        self.wrote_any = true;
        if self.send_pending_log().is_err() {
            return 0;
        }
        // In chunks, so that one huge echo is never copied whole: memory stays
        // bounded by the connection's output queue.
        for piece in data.chunks(OUT_CHUNK) {
            self.pending.extend_from_slice(piece);
            if self.pending.len() >= OUT_CHUNK && self.send_pending().is_err() {
                return 0;
            }
        }
        data.len()
    }

    fn send_pending_log(&mut self) -> Result<(), SinkGone> {
        if self.pending_log.is_empty() {
            return Ok(());
        }
        let lines = self.pending_log.split().freeze();
        self.sink.stderr(lines).inspect_err(|_| self.gone = true)
    }

    fn send_pending(&mut self) -> Result<(), SinkGone> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.pending.split().freeze();
        self.sink.stdout(chunk).inspect_err(|_| self.gone = true)
    }

    /// `flush()`: pushes buffered output now.
    pub(super) fn flush(&mut self) -> Result<(), SinkGone> {
        if self.finished {
            return Ok(());
        }
        if self.check_gone() {
            return Err(SinkGone);
        }
        self.send_pending_log()?;
        self.send_pending()
    }

    /// Copies body bytes into `buf`: how many, 0 at the end, or
    /// [`BODY_PENDING`] when none came within [`BODY_WAIT`].
    pub(super) fn read_body(&mut self, buf: &mut [u8]) -> usize {
        while self.body_chunk.is_empty() {
            let Some(body) = self.body.as_mut() else {
                return 0;
            };
            match body.next_chunk(BODY_WAIT) {
                BodyPoll::Chunk(chunk) => self.body_chunk = chunk,
                BodyPoll::Pending => return BODY_PENDING,
                BodyPoll::End => {
                    self.body = None;
                    return 0;
                }
            }
        }
        let n = buf.len().min(self.body_chunk.len());
        buf[..n].copy_from_slice(&self.body_chunk.split_to(n));
        n
    }

    /// A log line for the web server's error log, as php-fpm sends it.
    pub(super) fn log(&mut self, text: &str) {
        if self.finished || self.check_gone() {
            return;
        }
        // Output PHP wrote before this line goes first.
        if self.send_pending().is_err() {
            return;
        }
        if self.stderr_used {
            self.pending_log.extend_from_slice(b"; ");
        }
        self.pending_log.extend_from_slice(text.as_bytes());
        self.stderr_used = true;
        if self.pending_log.len() >= OUT_CHUNK {
            let _ = self.send_pending_log();
        }
    }

    /// fastcgi_finish_request(): ends the response. Like php-fpm, true
    /// unless it had already ended on a connection the web server closes.
    pub(super) fn finish_request(&mut self) -> bool {
        self.finish() || self.keep_conn
    }

    /// Ends the response. Returns false if it had already ended.
    pub(super) fn finish(&mut self) -> bool {
        if self.finished {
            return false;
        }
        if !self.wrote_any && !self.check_gone() {
            // PHP never got as far as sending headers (start-up failed).
            self.pending.extend_from_slice(
                b"Status: 500 Internal Server Error\r\nContent-type: text/html\r\n\r\n",
            );
        }
        let mut tail = Bytes::new();
        if !self.gone && self.send_pending_log().is_ok() {
            tail = self.pending.split().freeze();
        }
        self.pending_log = BytesMut::new();
        self.finished = true;
        self.body = None; // the server may drop the rest of the body
        self.sink.finish(tail, 0, self.stderr_used);
        buffers::give_back_output(std::mem::take(&mut self.pending));
        true
    }
}

/// The C view of a request plus the storage its pointers point into.
pub(super) struct PreparedRequest {
    pub(super) ctx: Box<RequestCtx>,
    arena: Vec<u8>,
    params: Vec<ffi::tfpm_param>,
    spans: Vec<Span>,
    fields: Fields,
    content_length: i64,
    disposition: ffi::tfpm_disposition,
    /// `tfpm_request.report_end`: what the shim reports as the script ends.
    pub(super) report_end: i32,
}

/// Offsets into the arena of the request fields PHP needs (NUL-terminated).
#[derive(Default)]
struct Fields {
    method: Option<usize>,
    query_string: Option<usize>,
    script_name: Option<usize>,
    script_filename: Option<usize>,
    path_info: Option<usize>,
    content_type: Option<usize>,
    cookie: Option<usize>,
    authorization: Option<usize>,
    php_value: Option<usize>,
    php_admin_value: Option<usize>,
    ping_path: Option<usize>,
    ping_response: Option<usize>,
}

impl PreparedRequest {
    pub(super) fn new(req: Request, policy: &RequestPolicy, cgi: &CgiSettings) -> Self {
        let derived = cgi_env::derive(&req.params, cgi, &RealFiles);
        let Buffers {
            mut arena,
            mut spans,
            params,
        } = Buffers::take();
        arena.reserve(params_size(&req.params) + 256);
        spans.extend(req.params.iter().map(|(name, value)| {
            (
                push_c(&mut arena, name),
                name.len(),
                push_c(&mut arena, value),
                value.len(),
            )
        }));
        apply_edits(&mut arena, &mut spans, &derived.edits);
        let script = derived
            .script
            .or_else(|| docroot_script(&req.params, policy));
        let find = |name: &[u8]| find_value(&arena, &spans, name);
        let mut fields = Fields {
            method: find(b"REQUEST_METHOD"),
            query_string: find(b"QUERY_STRING"),
            path_info: find(b"PATH_INFO"),
            content_type: find(b"CONTENT_TYPE"),
            cookie: find(b"HTTP_COOKIE"),
            authorization: find(b"HTTP_AUTHORIZATION"),
            php_value: find(b"PHP_VALUE"),
            php_admin_value: find(b"PHP_ADMIN_VALUE"),
            ..Fields::default()
        };
        let ping = policy
            .ping
            .as_ref()
            .filter(|(path, _)| derived.request_uri.as_deref() == Some(path.as_bytes()));
        fields.script_name = derived.request_uri.map(|uri| push_c(&mut arena, &uri));
        fields.script_filename = script.as_ref().map(|s| push_c(&mut arena, s));
        if let Some((path, response)) = ping {
            fields.ping_path = Some(push_c(&mut arena, path.as_bytes()));
            fields.ping_response = Some(push_c(&mut arena, response.as_bytes()));
        }
        let content_length = content_length(req.params.get(b"CONTENT_LENGTH"));
        // The ping page answers before any script is looked for, as in php-fpm.
        let disposition = match ping {
            Some(_) => ffi::tfpm_disposition_TFPM_RUN,
            None => disposition(script.as_deref(), policy),
        };
        let script_label = Arc::from(String::from_utf8_lossy(
            script.as_deref().unwrap_or_default(),
        ));
        let ctx = Box::new(RequestCtx::new(req, script_label));
        let mut prepared = PreparedRequest {
            ctx,
            arena,
            params,
            spans,
            fields,
            content_length,
            disposition,
            report_end: 0,
        };
        let mut params = std::mem::take(&mut prepared.params);
        params.extend(prepared.spans.iter().map(|s| prepared.c_param(*s)));
        prepared.params = params;
        prepared
    }

    /// A string the C side sees, up to its NUL; empty when absent.
    fn text(&self, offset: Option<usize>) -> &[u8] {
        let Some(at) = offset else {
            return &[];
        };
        let rest = &self.arena[at..];
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// REQUEST_METHOD.
    pub(super) fn method(&self) -> &[u8] {
        self.text(self.fields.method)
    }

    /// SCRIPT_NAME after the path derivation: PHP's request URI.
    pub(super) fn request_uri(&self) -> &[u8] {
        self.text(self.fields.script_name)
    }

    pub(super) fn query_string(&self) -> &[u8] {
        self.text(self.fields.query_string)
    }

    /// The script to run; empty when there is none.
    pub(super) fn script_filename(&self) -> &[u8] {
        self.text(self.fields.script_filename)
    }

    /// CONTENT_LENGTH as PHP reads it (0 when absent).
    pub(super) fn content_length(&self) -> u64 {
        self.content_length.max(0) as u64
    }

    /// The value of param `name`, as PHP sees the params.
    pub(super) fn param(&self, name: &[u8]) -> Option<&[u8]> {
        find_value(&self.arena, &self.spans, name).map(|at| self.text(Some(at)))
    }

    fn ptr(&self, offset: Option<usize>) -> *const libc::c_char {
        match offset {
            Some(o) => self.arena[o..].as_ptr().cast(),
            None => std::ptr::null(),
        }
    }

    fn c_param(&self, (name, name_len, value, value_len): Span) -> ffi::tfpm_param {
        ffi::tfpm_param {
            name: self.ptr(Some(name)),
            name_len,
            value: self.ptr(Some(value)),
            value_len,
        }
    }

    /// The C struct; valid while `self` is alive and not moved out of.
    pub(super) fn as_c(&mut self) -> ffi::tfpm_request {
        let ctx: *mut RequestCtx = &mut *self.ctx;
        ffi::tfpm_request {
            ctx: ctx.cast::<c_void>(),
            params: self.params.as_ptr(),
            n_params: self.params.len(),
            method: self.ptr(self.fields.method),
            query_string: self.ptr(self.fields.query_string),
            script_name: self.ptr(self.fields.script_name),
            script_filename: self.ptr(self.fields.script_filename),
            path_info: self.ptr(self.fields.path_info),
            content_type: self.ptr(self.fields.content_type),
            cookie: self.ptr(self.fields.cookie),
            authorization: self.ptr(self.fields.authorization),
            php_value: self.ptr(self.fields.php_value),
            php_admin_value: self.ptr(self.fields.php_admin_value),
            ping_path: self.ptr(self.fields.ping_path),
            ping_response: self.ptr(self.fields.ping_response),
            content_length: self.content_length,
            disposition: self.disposition as i32,
            report_end: self.report_end,
            worker: std::ptr::null_mut(),
        }
    }

    pub(super) fn disposition(&self) -> ffi::tfpm_disposition {
        self.disposition
    }
}

impl Drop for PreparedRequest {
    /// The params buffers go back to the thread for its next request.
    fn drop(&mut self) {
        Buffers {
            arena: std::mem::take(&mut self.arena),
            spans: std::mem::take(&mut self.spans),
            params: std::mem::take(&mut self.params),
        }
        .give_back();
    }
}

/// tfpm's `--docroot`: with no SCRIPT_FILENAME or PATH_TRANSLATED at all,
/// the script is the docroot plus SCRIPT_NAME.
fn docroot_script(params: &Params, policy: &RequestPolicy) -> Option<Bytes> {
    if params.get(b"SCRIPT_FILENAME").is_some() || params.get(b"PATH_TRANSLATED").is_some() {
        return None;
    }
    let root = policy.docroot.as_ref()?;
    let name = params.get(b"SCRIPT_NAME").filter(|v| !v.is_empty())?;
    let name = String::from_utf8_lossy(name);
    let path = root.join(name.trim_start_matches('/'));
    Some(Bytes::from(path.to_string_lossy().into_owned()))
}

/// What to do with the request, in php-fpm's order: no script is "Primary
/// script unknown" (404); a script outside `security.limit_extensions` is
/// denied (403). Whether the file opens is up to PHP.
fn disposition(script: Option<&[u8]>, policy: &RequestPolicy) -> ffi::tfpm_disposition {
    match script {
        None => ffi::tfpm_disposition_TFPM_NOT_FOUND,
        Some(path) if !extension_allowed(path, &policy.limit_extensions) => {
            ffi::tfpm_disposition_TFPM_DENIED
        }
        Some(_) => ffi::tfpm_disposition_TFPM_RUN,
    }
}

fn extension_allowed(path: &[u8], allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|ext| path.ends_with(ext.as_bytes()))
}

/// CONTENT_LENGTH as php-fpm reads it (leading digits); -1 when absent or empty.
fn content_length(value: Option<&Bytes>) -> i64 {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return -1;
    };
    v.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, b| {
            n.saturating_mul(10).saturating_add(i64::from(b - b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_text(pairs)
    }

    #[test]
    fn content_length_reads_leading_digits() {
        assert_eq!(content_length(None), -1);
        assert_eq!(content_length(Some(&Bytes::from_static(b""))), -1);
        assert_eq!(content_length(Some(&Bytes::from_static(b"123"))), 123);
        assert_eq!(content_length(Some(&Bytes::from_static(b"12x"))), 12);
    }

    #[test]
    fn script_falls_back_to_docroot() {
        let policy = RequestPolicy {
            docroot: Some("/srv/www".into()),
            ..Default::default()
        };
        let p = params(&[("SCRIPT_NAME", "/a/b.php")]);
        assert_eq!(
            docroot_script(&p, &policy).as_deref(),
            Some(&b"/srv/www/a/b.php"[..])
        );
        let p = params(&[("SCRIPT_FILENAME", "/x.php"), ("SCRIPT_NAME", "/a.php")]);
        assert_eq!(docroot_script(&p, &policy), None);
    }

    #[test]
    fn limit_extensions_like_php_fpm() {
        let policy = RequestPolicy::default();
        let run = |path: &str| disposition(Some(path.as_bytes()), &policy);
        assert_eq!(run("/srv/a.php"), ffi::tfpm_disposition_TFPM_RUN);
        assert_eq!(run("/srv/a.phar"), ffi::tfpm_disposition_TFPM_RUN);
        assert_eq!(run("/srv/a.jpg"), ffi::tfpm_disposition_TFPM_DENIED);
        assert_eq!(run("/srv/a.php.jpg"), ffi::tfpm_disposition_TFPM_DENIED);
        assert_eq!(
            disposition(None, &policy),
            ffi::tfpm_disposition_TFPM_NOT_FOUND
        );
    }

    #[test]
    fn edits_replace_in_place_remove_and_append() {
        let mut arena = Vec::new();
        let mut spans: Vec<Span> = [("A", "1"), ("B", "2"), ("C", "3")]
            .iter()
            .map(|(n, v)| {
                (
                    push_c(&mut arena, n.as_bytes()),
                    1,
                    push_c(&mut arena, v.as_bytes()),
                    1,
                )
            })
            .collect();
        let edits: [(&'static [u8], Option<Bytes>); 3] = [
            (b"B", Some(Bytes::from_static(b"two"))),
            (b"A", None),
            (b"D", Some(Bytes::from_static(b"4"))),
        ];
        apply_edits(&mut arena, &mut spans, &edits);
        let text = |(n, nl, v, vl): Span| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&arena[n..n + nl]),
                String::from_utf8_lossy(&arena[v..v + vl])
            )
        };
        let all: Vec<String> = spans.iter().map(|s| text(*s)).collect();
        assert_eq!(all, ["B=two", "C=3", "D=4"]);
        assert_eq!(
            find_value(&arena, &spans, b"D").map(|at| arena[at]),
            Some(b'4')
        );
    }

    #[test]
    fn arena_strings_are_nul_terminated() {
        let mut arena = Vec::new();
        let a = push_c(&mut arena, b"abc");
        let b = push_c(&mut arena, b"");
        assert_eq!(&arena[a..a + 4], b"abc\0");
        assert_eq!(arena[b], 0);
    }
}
