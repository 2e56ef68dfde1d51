//! Worker mode: threads that boot the pool's worker script once and then
//! serve many requests from it, through FrankenPHP's
//! `frankenphp_handle_request()` (its PHP side is `ffi/tfpm_worker.c`).
//! This file owns the worker script's settings, the queue of the requests
//! routed to it, and the loop of each thread that runs it: run the script,
//! and when it ends (it asked to, it served `worker.max_requests`, it
//! called `exit`, or a fatal error or a timeout ended it) start it again,
//! with a back-off when it ends before it ever asked for a request. `worker.watch`
//! (`watch.rs`) asks every thread to start the script again by moving the
//! queue's epoch on; opcache's restart asks it of every worker script in
//! the process (`tfpm_rs_opcache_restart`).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cgi_env::CgiSettings;
use super::ffi;
use super::pool::{self, Shared, SubmitError, Thread};
use super::request::{PreparedRequest, Request, ResponseSink, SinkGone};
use super::run::{self, Running};
use crate::fcgi::Params;

/// The longest pause between two failed boots.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long an idle worker script thread waits for a request before it
/// looks whether it must start its script again (`worker.watch`, opcache).
const IDLE_CHECK: Duration = Duration::from_millis(200);
/// How long a script that ended for opcache's restart waits for the other
/// worker scripts of the process to end, before it boots again.
const RESTART_HOLD: Duration = Duration::from_secs(2);

/// opcache restarts scheduled in this process so far.
static OPCACHE_RESTARTS: AtomicU64 = AtomicU64::new(0);
/// Worker scripts running in this process now (all pools).
static SCRIPTS_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// A pool's worker script and how its threads run it.
#[derive(Debug, Clone)]
pub struct WorkerScript {
    /// The script (`worker`): requests whose SCRIPT_FILENAME is this file
    /// (or this file followed by a path info) go to it.
    pub script: PathBuf,
    /// `worker.match`: requests whose DOCUMENT_URI (else SCRIPT_NAME)
    /// starts with this go to it too.
    pub uri_prefix: Option<String>,
    /// `worker.num`: threads that run the script.
    pub threads: usize,
    /// `worker.max_requests`: after this many, `frankenphp_handle_request`
    /// returns false and the script starts again.
    pub max_requests: Option<u64>,
    /// `worker.max_consecutive_failures`: boots in a row that end before
    /// the script asks for a request. At start-up the pool then refuses to
    /// start (unless `watch` is set); later, the requests waiting for it
    /// get a 503 (it keeps trying). None: never.
    pub max_failures: Option<u32>,
    /// `worker.env[NAME]`: in `$_SERVER` and `getenv()` during boot only.
    pub env: Vec<(String, String)>,
    /// `worker.watch`: a directory whose code files, when they change, make
    /// every thread start the script again (for development).
    pub watch: Option<PathBuf>,
}

impl WorkerScript {
    /// Whether a request with these params goes to the worker script.
    pub fn wants(&self, params: &Params) -> bool {
        if let Some(prefix) = &self.uri_prefix {
            let uri = params
                .get(b"DOCUMENT_URI")
                .or_else(|| params.get(b"SCRIPT_NAME"));
            if uri.is_some_and(|u| u.starts_with(prefix.as_bytes())) {
                return true;
            }
        }
        let Some(file) = params.get(b"SCRIPT_FILENAME") else {
            return false;
        };
        let script = self.script.as_os_str().as_encoded_bytes();
        file.starts_with(script) && matches!(file.get(script.len()), None | Some(b'/'))
    }
}

/// The requests waiting for the worker script's threads.
pub(super) struct AppQueue {
    pub(super) script: WorkerScript,
    tx: async_channel::Sender<Request>,
    rx: async_channel::Receiver<Request>,
    /// Bumped to make every thread start the script again.
    epoch: AtomicU64,
    /// How the threads' first boots went, which start-up waits for.
    first_boots: Mutex<FirstBoots>,
    first_boots_changed: Condvar,
}

/// The threads' first boots, as [`AppQueue::wait_booted`] counts them.
#[derive(Debug, Default)]
struct FirstBoots {
    /// Threads whose script asked for a request, or failed as often as
    /// start-up lets it.
    settled: usize,
    /// A thread's script failed `worker.max_consecutive_failures` times.
    gave_up: bool,
}

/// The worker script never reached `frankenphp_handle_request()` at
/// start-up, `failures` times in a row on one thread.
#[derive(Debug, thiserror::Error)]
#[error(
    "worker script {script} failed to boot {failures} time(s) in a row \
     (worker.max_consecutive_failures); the pool does not start"
)]
pub struct BootFailed {
    /// The worker script's path.
    pub script: String,
    /// The failures in a row (`worker.max_consecutive_failures`).
    pub failures: u32,
}

impl AppQueue {
    pub(super) fn new(script: WorkerScript, queue_len: usize) -> AppQueue {
        let (tx, rx) = async_channel::bounded(queue_len.max(1));
        AppQueue {
            script,
            tx,
            rx,
            epoch: AtomicU64::new(0),
            first_boots: Mutex::default(),
            first_boots_changed: Condvar::new(),
        }
    }

    /// Blocks until every thread's script has asked for its first request.
    /// Err once one failed to boot `worker.max_consecutive_failures` times
    /// in a row (without `worker.watch`). With no limit, or with
    /// `worker.watch`, a thread whose first boot failed counts as started:
    /// it keeps trying, and its requests wait.
    pub(super) fn wait_booted(&self) -> Result<(), BootFailed> {
        let boots = self.first_boots.lock().unwrap_or_else(|e| e.into_inner());
        let boots = self
            .first_boots_changed
            .wait_while(boots, |b| b.settled < self.script.threads && !b.gave_up)
            .unwrap_or_else(|e| e.into_inner());
        match boots.gave_up {
            false => Ok(()),
            true => Err(BootFailed {
                script: self.script.script.display().to_string(),
                failures: self.script.max_failures.unwrap_or(0),
            }),
        }
    }

    /// A thread's first boot is settled: its script asked for a request,
    /// or (`gave_up`) failed as often as start-up lets it.
    fn settle(&self, gave_up: bool) {
        let mut boots = self.first_boots.lock().unwrap_or_else(|e| e.into_inner());
        boots.settled += 1;
        boots.gave_up |= gave_up;
        self.first_boots_changed.notify_all();
    }

    /// The failed boots in a row after which start-up gives up: None when
    /// it does not (no limit, or `worker.watch`, for development).
    fn start_up_limit(&self) -> Option<u32> {
        match self.script.watch {
            None => self.script.max_failures,
            Some(_) => None,
        }
    }

    /// Every thread starts the script again: a busy one after its request,
    /// an idle one within [`IDLE_CHECK`].
    pub(super) fn restart_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub(super) fn wants(&self, params: &Params) -> bool {
        self.script.wants(params)
    }

    /// Queues a request, waiting while the queue is full.
    pub(super) async fn send(&self, req: Request) -> Result<(), SubmitError> {
        self.tx
            .send(req)
            .await
            .map_err(|e| SubmitError(e.into_inner()))
    }

    /// No more requests: `frankenphp_handle_request` returns false once
    /// the queued ones are served.
    pub(super) fn close(&self) {
        self.tx.close();
    }

    /// The pool stopped and every queued request was taken.
    pub(super) fn finished(&self) -> bool {
        self.rx.is_closed() && self.rx.is_empty()
    }

    /// The next request, waiting at most `wait`: Ok(None) if none came,
    /// Err once the queue is closed and empty.
    fn recv_within(&self, wait: Duration) -> Result<Option<Request>, async_channel::RecvError> {
        let deadline = Instant::now() + wait;
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut recv = std::pin::pin!(self.rx.recv());
        loop {
            if let Poll::Ready(got) = recv.as_mut().poll(&mut cx) {
                return got.map(Some);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::park_timeout(left);
        }
    }
}

/// Wakes the thread parked in [`AppQueue::recv_within`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The life of a thread that runs the worker script: the script, again and
/// again, until the pool stops.
pub(super) fn serve(shared: &Arc<Shared>, me: &Arc<Thread>) {
    let Some(app) = shared.app.as_ref() else {
        return;
    };
    let cgi = pool::cgi_settings();
    let mut seq = 0u64;
    let mut failures = 0u32;
    let mut settled = false;
    while !pool::is_retired(me) && !app.finished() {
        let mut run = ScriptRun {
            app,
            shared,
            me,
            cgi: &cgi,
            epoch: app.epoch(),
            opcache_restarts: OPCACHE_RESTARTS.load(Ordering::SeqCst),
            seq,
            settled,
            asked: false,
            stopped: false,
            served: 0,
            open: None,
        };
        let status = run.execute();
        seq = run.seq;
        settled = run.settled;
        if let Some(open) = run.open.take() {
            // exit, a fatal error or a timeout in the handler: PHP's
            // shutdown delivered the response; the request is over.
            run::end(open, me, shared);
        }
        if run.stopped {
            break;
        }
        if run.opcache_restarts != OPCACHE_RESTARTS.load(Ordering::SeqCst) {
            hold_for_opcache_restart();
        }
        failures = match run.asked {
            true => {
                ended(&app.script, status, run.served);
                0
            }
            false => {
                failures += 1;
                let limit = app.start_up_limit();
                if !settled && limit.is_none_or(|max| failures >= max) {
                    settled = true;
                    app.settle(limit.is_some());
                }
                failed(app, failures, status)
            }
        };
    }
}

/// The script ended after serving: it starts again at once.
fn ended(script: &WorkerScript, status: i32, served: u64) {
    let path = script.script.display();
    match status {
        0 => tracing::debug!("worker script {path} ended after {served} requests; starting it again"),
        _ => tracing::warn!(
            "worker script {path} ended with exit status {status} after {served} requests; starting it again"
        ),
    }
}

/// The script ended before it asked for a request: a back-off of n² × 100
/// ms (at most 1 s), and past `worker.max_consecutive_failures` the
/// requests waiting for it get a 503. Returns the failures so far.
fn failed(app: &AppQueue, failures: u32, status: i32) -> u32 {
    let path = app.script.script.display();
    let backoff = Duration::from_millis(100 * u64::from(failures).pow(2)).min(MAX_BACKOFF);
    tracing::error!(
        "worker script {path} ended before it called frankenphp_handle_request() \
         (exit status {status}, {failures} time(s) in a row); starting it again in {backoff:?}"
    );
    if app.script.max_failures.is_some_and(|max| failures >= max) {
        refuse_waiting(app);
    }
    std::thread::sleep(backoff);
    failures
}

/// After a script ended for opcache's restart: waits (at most
/// [`RESTART_HOLD`]) until no other worker script of the process runs, so
/// that the restart runs at the next boot and the boots use the new cache.
fn hold_for_opcache_restart() {
    let deadline = Instant::now() + RESTART_HOLD;
    while SCRIPTS_RUNNING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Answers every request waiting for the script with a 503.
fn refuse_waiting(app: &AppQueue) {
    const BODY: &[u8] = b"Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n\
        The worker script fails to start.\n";
    while let Ok(req) = app.rx.try_recv() {
        let _ = req.sink.stdout(Bytes::from_static(BODY));
        req.sink.end(0, false);
    }
}

/// One run of the worker script, from boot to its end; the C side reaches
/// it through `tfpm_request.worker`.
struct ScriptRun<'a> {
    app: &'a AppQueue,
    shared: &'a Arc<Shared>,
    me: &'a Arc<Thread>,
    cgi: &'a CgiSettings,
    /// The queue's epoch when the script started; once it moves on, the
    /// script is asked to stop, and starts again.
    epoch: u64,
    /// OPCACHE_RESTARTS when the script started; the same, for opcache.
    opcache_restarts: u64,
    /// The thread's last request number (the boot takes one too).
    seq: u64,
    /// The thread's first boot is settled ([`AppQueue::wait_booted`]).
    settled: bool,
    /// The script called frankenphp_handle_request() at least once.
    asked: bool,
    /// The pool stops (or the watchdog retired the thread): no restart.
    stopped: bool,
    served: u64,
    /// The request being served, between `next` and `done`.
    open: Option<Box<Running>>,
}

impl ScriptRun<'_> {
    /// Runs the script as one long PHP request; returns its exit status.
    fn execute(&mut self) -> i32 {
        let boot = boot_request(&self.app.script);
        let mut prepared = PreparedRequest::new(boot, &self.shared.policy, self.cgi);
        let mut c_req = prepared.as_c();
        let run: *mut ScriptRun = self;
        c_req.worker = run.cast::<c_void>();
        self.seq += 1;
        let seq = self.seq;
        self.shared.stats.script_booted();
        SCRIPTS_RUNNING.fetch_add(1, Ordering::SeqCst);
        // SAFETY: c_req points into `prepared`, which outlives the call;
        // `worker` points to this ScriptRun, which Rust does not touch
        // until the call returns (only the callbacks below do, on this
        // thread); the thread was set up by tfpm_thread_init. Bailouts are
        // caught inside tfpm_execute.
        let status = unsafe { ffi::tfpm_execute(&c_req, seq) };
        SCRIPTS_RUNNING.fetch_sub(1, Ordering::SeqCst);
        prepared.ctx.finish();
        status
    }

    /// The next request for the script, set up to run; None: stop.
    fn next(&mut self) -> Option<(*const ffi::tfpm_request, u64)> {
        self.asked = true;
        if !self.settled {
            self.settled = true;
            self.app.settle(false);
        }
        if let Some(open) = self.open.take() {
            run::end(open, self.me, self.shared);
        }
        if pool::is_retired(self.me) {
            self.stopped = true;
            return None;
        }
        if (self.app.script.max_requests).is_some_and(|max| self.served >= max) {
            return None;
        }
        let req = loop {
            if self.must_restart() {
                return None;
            }
            match self.app.recv_within(IDLE_CHECK) {
                Ok(Some(req)) => break req,
                Ok(None) => continue,
                Err(_) => {
                    self.stopped = true;
                    return None;
                }
            }
        };
        self.seq += 1;
        let running = run::begin(req, self.seq, self.me, self.shared, self.cgi);
        let c_req: *const ffi::tfpm_request = &running.c_req;
        self.open = Some(running);
        Some((c_req, self.seq))
    }

    /// worker.watch saw a change, or opcache scheduled a restart.
    fn must_restart(&self) -> bool {
        self.app.epoch() != self.epoch
            || OPCACHE_RESTARTS.load(Ordering::SeqCst) != self.opcache_restarts
    }

    /// The request from `next` has ended.
    fn done(&mut self) {
        if let Some(open) = self.open.take() {
            run::end(open, self.me, self.shared);
            self.served += 1;
        }
    }
}

/// The boot request: a GET of the script, as nginx would send it, plus
/// `FRANKENPHP_WORKER=1` and `worker.env` (so that Symfony Runtime and
/// Laravel Octane see the mode).
fn boot_request(script: &WorkerScript) -> Request {
    let mut pairs = super::direct::script_params(&script.script);
    pairs.push(("FRANKENPHP_WORKER".into(), "1".into()));
    pairs.extend(script.env.iter().cloned());
    let text: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Request {
        params: Params::from_text(&text),
        body: Box::new(super::direct::NoBody),
        sink: Arc::new(BootLog {
            script: script.script.display().to_string(),
        }),
        abort: Arc::default(),
        keep_conn: false,
        span: tracing::Span::none(),
        client_ip: None,
    }
}

/// Where the boot request's output goes: PHP's messages to tfpm's log,
/// anything printed nowhere (there is no client).
struct BootLog {
    script: String,
}

impl ResponseSink for BootLog {
    fn stdout(&self, _: Bytes) -> Result<(), SinkGone> {
        Ok(())
    }
    fn stderr(&self, data: Bytes) -> Result<(), SinkGone> {
        let text = String::from_utf8_lossy(&data);
        tracing::warn!(script = %self.script, "worker script: {}", text.trim_end());
        Ok(())
    }
    fn end(&self, _: u32, _: bool) {}
    fn abandon(&self) -> bool {
        true
    }
}

/// Runs `f` on the ScriptRun behind `worker` (see `tfpm_request.worker`).
fn with_run<T>(worker: *mut c_void, fallback: T, f: impl FnOnce(&mut ScriptRun) -> T) -> T {
    if worker.is_null() {
        return fallback;
    }
    // SAFETY: a non-NULL `worker` is the ScriptRun that `execute` handed to
    // tfpm_execute; it lives until that call returns and nothing else
    // borrows it meanwhile (callbacks run on the same thread, one at a time).
    let run = unsafe { &mut *worker.cast::<ScriptRun>() };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(run)));
    caught.unwrap_or_else(|_| {
        tracing::error!("panic in worker mode's callback; the worker script stops");
        fallback
    })
}

#[no_mangle]
extern "C" fn tfpm_rs_worker_next(worker: *mut c_void, seq: *mut u64) -> *const ffi::tfpm_request {
    match with_run(worker, None, |run| run.next()) {
        Some((req, n)) => {
            // SAFETY: the shim passes a pointer to a local u64.
            unsafe { *seq = n };
            req
        }
        None => std::ptr::null(),
    }
}

#[no_mangle]
extern "C" fn tfpm_rs_worker_done(worker: *mut c_void) {
    with_run(worker, (), |run| run.done());
}

#[no_mangle]
extern "C" fn tfpm_rs_worker_stop(worker: *mut c_void) {
    with_run(worker, (), |run| {
        run.asked = true;
        tracing::info!(
            "worker script {}: starting it again, for opcache's restart",
            run.app.script.script.display()
        );
    });
}

/// opcache scheduled a restart, in the request that just ended on this
/// thread (see `ffi/tfpm_worker.c`): every worker script of the process
/// ends after its request and starts again.
#[no_mangle]
extern "C" fn tfpm_rs_opcache_restart() {
    OPCACHE_RESTARTS.fetch_add(1, Ordering::SeqCst);
    tracing::info!(
        "opcache scheduled a restart; the worker scripts start again so that it can run"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(prefix: Option<&str>) -> WorkerScript {
        WorkerScript {
            script: "/srv/app/public/index.php".into(),
            uri_prefix: prefix.map(str::to_string),
            threads: 1,
            max_requests: None,
            max_failures: None,
            env: Vec::new(),
            watch: None,
        }
    }

    #[test]
    fn requests_for_the_script_or_under_it_go_to_the_worker() {
        let s = script(None);
        let with = |file: &str| Params::from_text(&[("SCRIPT_FILENAME", file)]);
        assert!(s.wants(&with("/srv/app/public/index.php")));
        assert!(s.wants(&with("/srv/app/public/index.php/blog/1")));
        assert!(!s.wants(&with("/srv/app/public/index.php5")));
        assert!(!s.wants(&with("/srv/app/public/other.php")));
        assert!(!s.wants(&Params::from_text(&[])));
    }

    #[test]
    fn a_uri_prefix_routes_whatever_the_script() {
        let s = script(Some("/api/"));
        let with = |uri: &str| {
            Params::from_text(&[("SCRIPT_FILENAME", "/srv/x.php"), ("DOCUMENT_URI", uri)])
        };
        assert!(s.wants(&with("/api/users")));
        assert!(!s.wants(&with("/apiary")));
        let by_name = Params::from_text(&[("SCRIPT_NAME", "/api/x")]);
        assert!(s.wants(&by_name));
    }
}
