//! One request on a thread, classic or in worker mode: [`begin`] sets up
//! its status, scoreboard slot, abort hook and access log line, and
//! [`end`] ends its response and makes the thread idle again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cgi_env::CgiSettings;
use super::ffi;
use super::logs::Start;
use super::pool::{Current, Shared, Thread};
use super::request::{PreparedRequest, Request};
use super::status::RequestInfo;

/// A request on its thread: what [`begin`] set up and [`end`] tears down.
pub(super) struct Running {
    pub(super) prepared: PreparedRequest,
    /// The C view of `prepared`, whose pointers stay valid while it lives.
    pub(super) c_req: ffi::tfpm_request,
    abort: Arc<super::request::Abort>,
    start: Start,
    _entered: tracing::span::EnteredSpan,
}

/// Sets up request `seq` on thread `me`: its status, scoreboard slot,
/// abort hook and access log line. Every log line about the request, PHP's
/// own included, carries its span until [`end`].
pub(super) fn begin(
    req: Request,
    seq: u64,
    me: &Arc<Thread>,
    shared: &Shared,
    cgi: &CgiSettings,
) -> Box<Running> {
    match me.app {
        true => shared.stats.script_started(),
        false => shared.stats.started(),
    }
    let span = req.span.clone();
    let entered = span.clone().entered();
    let start = Start::now();
    let mut info = RequestInfo::of(&req.params);
    let mut prepared = PreparedRequest::new(req, &shared.policy, cgi);
    if prepared.disposition() == ffi::tfpm_disposition_TFPM_DENIED {
        let script = &prepared.ctx.script;
        tracing::warn!(%script, "access to the script has been denied (see security.limit_extensions)");
    }
    info.script = prepared.ctx.script.clone();
    *me.current() = Current {
        seq,
        last_duration: Duration::ZERO,
        last_usage: (0.0, 0),
        info,
        started: Some(Instant::now()),
        script: prepared.ctx.script.clone(),
        interrupted: None,
        slow_logged: false,
        finishing: false,
        span,
        sink: Some(prepared.ctx.sink.clone()),
    };
    if let Some(board) = &shared.scoreboard {
        board.enter(me.index, &prepared.ctx.script);
    }
    let abort = prepared.ctx.abort.clone();
    abort.attach(me.clone(), seq);
    // The end is reported always: the status page shows its CPU and memory.
    prepared.report_end = shared
        .logs
        .access
        .as_ref()
        .map_or(1, |log| log.report_end());
    if let Some(log) = &shared.logs.access {
        prepared.ctx.access = Some(log.pending(start, &prepared, me.tid()));
    }
    let c_req = prepared.as_c();
    Box::new(Running {
        prepared,
        c_req,
        abort,
        start,
        _entered: entered,
    })
}

/// The request is over: its response ends (if PHP did not end it), and
/// the thread is idle again.
pub(super) fn end(running: Box<Running>, me: &Arc<Thread>, shared: &Shared) {
    let Running {
        mut prepared,
        abort,
        start,
        ..
    } = *running;
    super::logs::flush_stderr();
    // Normally written as the script ended, and the response ended in
    // PHP's deactivate hook; make sure of both.
    prepared.ctx.write_access();
    prepared.ctx.finish();
    abort.detach();
    if let Some(board) = &shared.scoreboard {
        board.leave(me.index);
    }
    let usage = prepared.ctx.end.as_ref().map(|end| end.usage_since(&start));
    let mut current = me.current();
    current.last_duration = current.started.map(|s| s.elapsed()).unwrap_or_default();
    current.last_usage = usage.unwrap_or((0.0, 0));
    current.started = None;
    current.sink = None;
    current.span = tracing::Span::none();
    drop(current);
    match me.app {
        true => shared.stats.script_finished(),
        false => shared.stats.finished(),
    }
    *me.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
}
