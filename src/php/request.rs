//! One PHP request: what the server hands to a worker thread ([`Request`]),
//! the traits through which output leaves and the body arrives, and the
//! context that lives on the worker's stack while PHP runs ([`RequestCtx`]).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::sys;
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
    /// From another thread, when the request's own thread is stuck: ends the
    /// response with an error, without blocking. Later output is refused.
    /// Returns false if that was not possible right now.
    fn abandon(&self) -> bool;
}

/// What [`BodySource::next_chunk`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPoll {
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
    pub params: Params,
    pub body: Box<dyn BodySource>,
    pub sink: Arc<dyn ResponseSink>,
    /// Set by the server when the client aborts or disconnects.
    pub aborted: Arc<AtomicBool>,
}

/// Settings that shape how a request is mapped onto PHP.
#[derive(Debug, Clone)]
pub struct RequestPolicy {
    /// Used to find the script when the web server sends no SCRIPT_FILENAME.
    pub docroot: Option<std::path::PathBuf>,
    /// php-fpm's `security.limit_extensions`; empty allows everything.
    pub limit_extensions: Vec<String>,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        RequestPolicy {
            docroot: None,
            limit_extensions: vec![".php".into(), ".phar".into()],
        }
    }
}

/// The per-request state the C callbacks reach through `ctx`.
pub(super) struct RequestCtx {
    pub(super) sink: Arc<dyn ResponseSink>,
    body: Option<Box<dyn BodySource>>,
    body_chunk: Bytes,
    aborted: Arc<AtomicBool>,
    pending: BytesMut,
    finished: bool,
    gone: bool,
    wrote_any: bool,
    stderr_used: bool,
    pub(super) script: String,
}

impl RequestCtx {
    fn new(req: Request, script: String) -> Self {
        RequestCtx {
            sink: req.sink,
            body: Some(req.body),
            body_chunk: Bytes::new(),
            aborted: req.aborted,
            pending: BytesMut::new(),
            finished: false,
            gone: false,
            wrote_any: false,
            stderr_used: false,
            script,
        }
    }

    fn check_gone(&mut self) -> bool {
        if !self.gone && self.aborted.load(Ordering::Relaxed) {
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
        let mut line = BytesMut::with_capacity(text.len() + 2);
        if self.stderr_used {
            line.extend_from_slice(b"; ");
        }
        line.extend_from_slice(text.as_bytes());
        self.stderr_used = true;
        if self.sink.stderr(line.freeze()).is_err() {
            self.gone = true;
        }
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
        if !self.gone {
            let _ = self.send_pending();
        }
        self.pending = BytesMut::new();
        self.finished = true;
        self.body = None; // the server may drop the rest of the body
        self.sink.end(0, self.stderr_used);
        true
    }
}

/// The C view of a request plus the storage its pointers point into.
pub(super) struct PreparedRequest {
    pub(super) ctx: Box<RequestCtx>,
    arena: Vec<u8>,
    params: Vec<sys::tfpm_param>,
    fields: Fields,
    content_length: i64,
    disposition: sys::tfpm_disposition,
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
}

/// (name offset, name len, value offset, value len) of one param.
type Span = (usize, usize, usize, usize);

impl PreparedRequest {
    pub(super) fn new(req: Request, policy: &RequestPolicy) -> Self {
        let mut arena = Vec::with_capacity(params_size(&req.params) + 256);
        let spans: Vec<Span> = req
            .params
            .iter()
            .map(|(name, value)| {
                (
                    push_c(&mut arena, name),
                    name.len(),
                    push_c(&mut arena, value),
                    value.len(),
                )
            })
            .collect();
        let script = script_path(&req.params, policy);
        let mut fields = Fields::default();
        let find = |name: &[u8]| find_value(&req.params, &spans, name);
        fields.method = find(b"REQUEST_METHOD");
        fields.query_string = find(b"QUERY_STRING");
        fields.script_name = find(b"SCRIPT_NAME");
        fields.path_info = find(b"PATH_INFO");
        fields.content_type = find(b"CONTENT_TYPE");
        fields.cookie = find(b"HTTP_COOKIE");
        fields.authorization = find(b"HTTP_AUTHORIZATION");
        fields.script_filename = script.as_ref().map(|s| push_c(&mut arena, s.as_bytes()));
        let content_length = content_length(req.params.get(b"CONTENT_LENGTH"));
        let disposition = disposition(script.as_deref(), policy);
        let script_label = script.unwrap_or_default();
        let ctx = Box::new(RequestCtx::new(req, script_label));
        let params = Vec::with_capacity(spans.len());
        let mut prepared = PreparedRequest {
            ctx,
            arena,
            params,
            fields,
            content_length,
            disposition,
        };
        prepared.params = spans.iter().map(|s| prepared.c_param(*s)).collect();
        prepared
    }

    fn ptr(&self, offset: Option<usize>) -> *const libc::c_char {
        match offset {
            Some(o) => self.arena[o..].as_ptr().cast(),
            None => std::ptr::null(),
        }
    }

    fn c_param(&self, (name, name_len, value, value_len): Span) -> sys::tfpm_param {
        sys::tfpm_param {
            name: self.ptr(Some(name)),
            name_len,
            value: self.ptr(Some(value)),
            value_len,
        }
    }

    /// The C struct; valid while `self` is alive and not moved out of.
    pub(super) fn as_c(&mut self) -> sys::tfpm_request {
        let ctx: *mut RequestCtx = &mut *self.ctx;
        sys::tfpm_request {
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
            content_length: self.content_length,
            disposition: self.disposition as i32,
        }
    }

    pub(super) fn disposition(&self) -> sys::tfpm_disposition {
        self.disposition
    }
}

fn params_size(params: &Params) -> usize {
    params.iter().map(|(n, v)| n.len() + v.len() + 2).sum()
}

/// Appends `bytes` and a NUL; returns where they start.
fn push_c(arena: &mut Vec<u8>, bytes: &[u8]) -> usize {
    let start = arena.len();
    arena.extend_from_slice(bytes);
    arena.push(0);
    start
}

fn find_value(params: &Params, spans: &[Span], name: &[u8]) -> Option<usize> {
    params
        .iter()
        .zip(spans)
        .filter(|((n, _), _)| n.as_ref() == name)
        .map(|(_, span)| span.2)
        .last()
}

/// The file to run: SCRIPT_FILENAME, else PATH_TRANSLATED, else docroot + SCRIPT_NAME.
fn script_path(params: &Params, policy: &RequestPolicy) -> Option<String> {
    let text = |name: &[u8]| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if let Some(path) = text(b"SCRIPT_FILENAME").or_else(|| text(b"PATH_TRANSLATED")) {
        return Some(path);
    }
    let root = policy.docroot.as_ref()?;
    let name = text(b"SCRIPT_NAME")?;
    Some(
        root.join(name.trim_start_matches('/'))
            .to_string_lossy()
            .into_owned(),
    )
}

/// What to do with the request. Like php-fpm with cgi.fix_pathinfo=1, a
/// script that is not a regular file is "Primary script unknown" (404).
fn disposition(script: Option<&str>, policy: &RequestPolicy) -> sys::tfpm_disposition {
    let is_file = |path: &str| std::fs::metadata(path).is_ok_and(|m| m.is_file());
    match script {
        None => sys::tfpm_disposition_TFPM_NOT_FOUND,
        Some(path) if !is_file(path) => sys::tfpm_disposition_TFPM_NOT_FOUND,
        Some(path) if !extension_allowed(path, &policy.limit_extensions) => {
            sys::tfpm_disposition_TFPM_DENIED
        }
        Some(_) => sys::tfpm_disposition_TFPM_RUN,
    }
}

fn extension_allowed(path: &str, allowed: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|ext| path.ends_with(ext.as_str()))
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
            script_path(&p, &policy).as_deref(),
            Some("/srv/www/a/b.php")
        );
        let p = params(&[("SCRIPT_FILENAME", "/x.php"), ("SCRIPT_NAME", "/a.php")]);
        assert_eq!(script_path(&p, &policy).as_deref(), Some("/x.php"));
    }

    #[test]
    fn limit_extensions_like_php_fpm() {
        let policy = RequestPolicy::default();
        let dir = std::env::temp_dir().join(format!("tfpm-disp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let php = dir.join("a.php");
        let jpg = dir.join("a.jpg");
        std::fs::write(&php, "<?php").unwrap();
        std::fs::write(&jpg, "").unwrap();
        let (php, jpg) = (php.to_str().unwrap(), jpg.to_str().unwrap());
        assert_eq!(
            disposition(Some(php), &policy),
            sys::tfpm_disposition_TFPM_RUN
        );
        assert_eq!(
            disposition(Some(jpg), &policy),
            sys::tfpm_disposition_TFPM_DENIED
        );
        assert_eq!(
            disposition(Some("/nonexistent/a.php"), &policy),
            sys::tfpm_disposition_TFPM_NOT_FOUND
        );
        assert_eq!(
            disposition(Some(dir.to_str().unwrap()), &policy),
            sys::tfpm_disposition_TFPM_NOT_FOUND
        );
        assert_eq!(
            disposition(None, &policy),
            sys::tfpm_disposition_TFPM_NOT_FOUND
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
