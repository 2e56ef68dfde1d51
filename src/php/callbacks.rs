//! The `tfpm_rs_*` functions the C shim calls while PHP runs a request.
//!
//! Each one turns `ctx` back into the [`RequestCtx`] that `tfpm_execute` was
//! given, does plain Rust work, and returns a status to C. None of them calls
//! into PHP, and a panic is caught here, never unwound into C: the C side then
//! sees the same result as for a vanished client.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ffi;
use super::logs::RequestEnd;
use super::request::RequestCtx;
use super::status::PoolStats;
use super::status::ThreadStatus;

/// Runs `f` on the request behind `ctx`, or returns `fallback` if `ctx` is
/// NULL or `f` panics.
fn with_ctx<T>(ctx: *mut c_void, fallback: T, f: impl FnOnce(&mut RequestCtx) -> T) -> T {
    if ctx.is_null() {
        return fallback;
    }
    // SAFETY: a non-NULL ctx is the `Box<RequestCtx>` pointer that
    // PreparedRequest::as_c handed to tfpm_execute (or, in worker mode, to
    // frankenphp_handle_request through tfpm_rs_worker_next). It stays alive
    // and is not otherwise borrowed until that call returns (tfpm_rs_worker_done
    // in worker mode), and callbacks run on the same thread, one at a time.
    let ctx = unsafe { &mut *ctx.cast::<RequestCtx>() };
    catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or_else(|_| {
        tracing::error!("panic in a PHP callback; treating the client as gone");
        fallback
    })
}

/// Views `len` bytes at `buf` as a slice (empty for NULL).
fn bytes<'a>(buf: *const c_char, len: usize) -> &'a [u8] {
    if buf.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the shim passes a buffer PHP owns with at least `len` readable
    // bytes, valid for the duration of this callback.
    unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }
}

#[no_mangle]
extern "C" fn tfpm_rs_write(ctx: *mut c_void, buf: *const c_char, len: usize) -> usize {
    with_ctx(ctx, 0, |r| r.write(bytes(buf, len)))
}

#[no_mangle]
extern "C" fn tfpm_rs_flush(ctx: *mut c_void) -> c_int {
    with_ctx(ctx, -1, |r| if r.flush().is_ok() { 0 } else { -1 })
}

#[no_mangle]
extern "C" fn tfpm_rs_read_body(ctx: *mut c_void, buf: *mut c_char, len: usize) -> usize {
    if buf.is_null() || len == 0 {
        return 0;
    }
    // SAFETY: PHP passes a writable buffer of at least `len` bytes that
    // nothing else touches during this call.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    with_ctx(ctx, 0, |r| r.read_body(out))
}

#[no_mangle]
extern "C" fn tfpm_rs_log(ctx: *mut c_void, kind: c_int, msg: *const c_char, len: usize) {
    let text = String::from_utf8_lossy(bytes(msg, len));
    let php = kind != ffi::tfpm_log_kind_TFPM_LOG_SAPI as c_int;
    // With a php-fpm config, PHP's messages go to stderr as a php-fpm
    // child's do (relayed by the master, or dropped); else to tfpm's log.
    let in_our_log = !(php && super::logs::php_message_to_stderr(&text));
    let text = if php {
        format!("PHP message: {text}")
    } else {
        text.into_owned()
    };
    let to_web_server = kind != ffi::tfpm_log_kind_TFPM_LOG_PHP_HOST_ONLY as c_int;
    if ctx.is_null() {
        match (in_our_log, super::logs::extension_hint(&text)) {
            (true, Some(hint)) => tracing::error!(target: "php", "{text} ({hint})"),
            (true, None) => tracing::warn!(target: "php", "{text}"),
            (false, _) => {}
        }
        return;
    }
    with_ctx(ctx, (), |r| {
        match (php, in_our_log) {
            (true, true) => tracing::warn!(target: "php", script = %r.script, "{text}"),
            (false, _) => tracing::warn!(target: "php", script = %r.script, "{text}"),
            (true, false) => {}
        }
        if to_web_server {
            r.log(cut_at(&text, WEB_SERVER_LOG_LIMIT));
        }
    });
}

#[no_mangle]
extern "C" fn tfpm_rs_pool_status(out: *mut ffi::tfpm_pool_status) -> c_int {
    let Some(stats) = PoolStats::current() else {
        return -1;
    };
    if out.is_null() {
        return -1;
    }
    let mut s = stats.snapshot();
    if let Some(all) = super::status::pool_counts() {
        s.accepted = all.accepted;
        s.queued = all.queued;
        s.max_queued = all.max_queued;
        s.idle = all.idle;
        s.active = all.active;
        s.max_active = all.max_active;
        s.max_children_reached = all.max_children_reached;
        s.slow = all.slow;
    }
    let status = ffi::tfpm_pool_status {
        start_time: s.start_time,
        accepted_conn: s.accepted,
        listen_queue: s.queued,
        max_listen_queue: s.max_queued,
        listen_queue_len: s.queue_capacity,
        idle_processes: s.idle,
        active_processes: s.active,
        max_active_processes: s.max_active,
        max_children_reached: s.max_children_reached,
        slow_requests: s.slow,
    };
    // SAFETY: `out` is a non-NULL pointer to a tfpm_pool_status on the
    // caller's stack, valid for this call.
    unsafe { out.write(status) };
    0
}

thread_local! {
    /// What the last `tfpm_rs_pool_procs` on this thread handed out: the
    /// strings it points into live here until the next call.
    static PROCS: std::cell::RefCell<Vec<ThreadStatus>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[no_mangle]
extern "C" fn tfpm_rs_pool_procs(out: *mut ffi::tfpm_proc_status, cap: usize) -> usize {
    // A panic must not unwind into C: it counts as no threads.
    catch_unwind(AssertUnwindSafe(|| pool_procs(out, cap))).unwrap_or(0)
}

fn pool_procs(out: *mut ffi::tfpm_proc_status, cap: usize) -> usize {
    let threads = super::pool::current_threads_status();
    if out.is_null() {
        return threads.len();
    }
    let filled = threads.len().min(cap);
    PROCS.with(|held| {
        let mut held = held.borrow_mut();
        *held = threads;
        for (i, t) in held.iter().take(filled).enumerate() {
            // SAFETY: the caller passes room for `cap` entries and
            // `i < filled <= cap`; each entry is written whole.
            unsafe { out.add(i).write(proc_status(t)) };
        }
    });
    filled
}

/// A thread as the shim's struct; its strings point into `t`.
fn proc_status(t: &ThreadStatus) -> ffi::tfpm_proc_status {
    let since_epoch = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let r = &t.request;
    ffi::tfpm_proc_status {
        pid: i64::from(t.tid),
        running: c_int::from(t.busy),
        start_time: since_epoch(t.started),
        requests: t.requests,
        request_duration_us: t.request_duration.as_micros() as u64,
        request_length: r.content_length,
        method: r.method.as_ptr().cast(),
        method_len: r.method.len(),
        uri: r.uri.as_ptr().cast(),
        uri_len: r.uri.len(),
        query: r.query.as_ptr().cast(),
        query_len: r.query.len(),
        user: r.user.as_ptr().cast(),
        user_len: r.user.len(),
        script: r.script.as_ptr().cast(),
        script_len: r.script.len(),
    }
}

/// The longest log line php-fpm sends the web server (its 1024-byte log
/// buffer, less its own prefix).
const WEB_SERVER_LOG_LIMIT: usize = 1012;

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[no_mangle]
extern "C" fn tfpm_rs_request_end(ctx: *mut c_void, end: *const ffi::tfpm_request_end) {
    if end.is_null() {
        return;
    }
    // SAFETY: the shim passes a pointer to a tfpm_request_end on its stack,
    // valid (with the strings it points to) for this call.
    let end = unsafe { &*end };
    let auth_user = match end.auth_user.is_null() {
        true => &[][..],
        // SAFETY: a NUL-terminated string PHP owns, alive for this call.
        false => unsafe { std::ffi::CStr::from_ptr(end.auth_user) }.to_bytes(),
    };
    let headers = bytes(end.headers, end.headers_len);
    let memory = end.peak_memory;
    with_ctx(ctx, (), |r| {
        r.end = Some(RequestEnd::now(end.status, memory, auth_user, headers));
        // Now, before PHP's request shutdown ends the response: php-fpm
        // writes the line at this point too.
        r.write_access();
        r.abort.script_ended();
    });
}

#[no_mangle]
extern "C" fn tfpm_rs_finish(ctx: *mut c_void) -> c_int {
    with_ctx(ctx, 0, |r| c_int::from(r.finish_request()))
}
