//! The worker pool: plain OS threads, each with its own PHP interpreter
//! context, taking requests from one bounded queue and running them to the
//! end. A worker that cannot be stopped (see [`super::watchdog`]) is retired
//! and replaced, so the pool never shrinks.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cgi_env::CgiSettings;
use super::ffi;
use super::logs::RequestLogs;
use super::request::{Request, RequestPolicy, ResponseSink};
use super::scaling::{Decision, Scaling};
use super::status::{PoolStats, RequestInfo, Snapshot as PoolSnapshot, ThreadStatus};
use super::watchdog;
use super::worker_mode::{AppQueue, WorkerScript};
use crate::sys::scoreboard::Scoreboard;

/// The queue is closed: the engine is shutting down.
pub struct SubmitError(pub Request);

impl std::fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmitError(queue closed)")
    }
}

/// What the queue carries: a request, or word for one idle thread to leave
/// (the pool is shrinking).
pub(super) enum Job {
    Run(Request),
    Leave,
}

/// The sending side of the request queue; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    queue: async_channel::Sender<Job>,
    busy: Arc<AtomicUsize>,
    stats: Arc<PoolStats>,
    shared: Arc<Shared>,
}

impl Pool {
    /// Queues a request, waiting while the queue is full. A request for
    /// the pool's worker script goes to the threads that run that script.
    pub async fn submit(&self, req: Request) -> Result<(), SubmitError> {
        if let Some(app) = self.shared.app.as_ref().filter(|a| a.wants(&req.params)) {
            return app.send(req).await;
        }
        self.grow_for_one_more();
        self.stats.queued();
        self.queue.send(Job::Run(req)).await.map_err(|e| {
            self.stats.unqueued();
            match e.into_inner() {
                Job::Run(req) => SubmitError(req),
                Job::Leave => unreachable!("submit only sends requests"),
            }
        })
    }

    /// With a scaling `pm`: starts a thread when no idle one is left for
    /// the request about to be queued (up to pm.max_children).
    fn grow_for_one_more(&self) {
        let shared = &self.shared;
        if !shared.scaling.scales() {
            return;
        }
        let live = shared.live.load(Ordering::Relaxed);
        let idle = live.saturating_sub(self.busy.load(Ordering::Relaxed));
        if self.queue.len() < idle || !shared.reserve_thread() {
            return;
        }
        if let Err(e) = spawn_reserved(shared) {
            tracing::error!("cannot start a PHP thread: {e}");
        }
    }

    /// Threads running a request right now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Counts a request that the daemon answered without a thread (the
    /// status page) as accepted, as php-fpm's "accepted conn" does.
    pub fn count_answered_by_daemon(&self) {
        self.stats.answered_by_daemon();
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolSnapshot {
        self.stats.snapshot()
    }

    /// Stops taking requests; queued ones still run.
    pub fn close(&self) {
        self.queue.close();
        if let Some(app) = &self.shared.app {
            app.close();
        }
    }

    /// The pool's worker script, if it has one.
    pub fn worker_script(&self) -> Option<&std::path::Path> {
        self.shared
            .app
            .as_ref()
            .map(|app| app.script.script.as_path())
    }

    /// Every live thread, for the status page's full view.
    pub fn threads_status(&self) -> Vec<ThreadStatus> {
        self.shared.threads_status()
    }
}

/// How the workers run.
pub(super) struct WorkerConfig {
    pub(super) threads: usize,
    pub(super) stack_size: usize,
    pub(super) queue_len: usize,
    pub(super) policy: RequestPolicy,
    /// php-fpm's request_terminate_timeout; None disables it.
    pub(super) terminate_after: Option<Duration>,
    /// php-fpm's request_terminate_timeout_track_finished.
    pub(super) terminate_track_finished: bool,
    /// How the pool scales its threads (`threads` is the most it runs).
    pub(super) scaling: Scaling,
    /// php-fpm's pm.max_requests: a thread that has served this many is
    /// replaced by a fresh one (a new interpreter context).
    pub(super) max_requests: Option<u64>,
    /// Where threads note their running script for the master, if any.
    pub(super) scoreboard: Option<Arc<Scoreboard>>,
    /// The access log and the slowlog.
    pub(super) logs: RequestLogs,
    /// Worker mode: the pool's worker script and its own threads.
    pub(super) app: Option<WorkerScript>,
}

/// What another thread may do to a worker: see `tfpm_thread_handle`.
pub(super) struct ThreadHandle(ffi::tfpm_thread_handle);

// SAFETY: the handle holds a pthread_t and pointers to the worker's own
// globals; they are only used (by tfpm_interrupt) while the worker is known
// to be alive and busy, under its `current` lock.
unsafe impl Send for ThreadHandle {}
// SAFETY: as above; tfpm_interrupt only writes through the pointers.
unsafe impl Sync for ThreadHandle {}

/// The request a worker is running (for the watchdog), or ran last (for
/// the status page).
pub(super) struct Current {
    pub(super) seq: u64,
    /// How long the last request took.
    pub(super) last_duration: Duration,
    /// The last request's CPU percent and peak memory.
    pub(super) last_usage: (f64, u64),
    pub(super) info: RequestInfo,
    pub(super) started: Option<Instant>,
    /// The script it runs, shared with the request's context.
    pub(super) script: Arc<str>,
    pub(super) interrupted: Option<Instant>,
    /// The watchdog noted it past request_slowlog_timeout.
    pub(super) slow_logged: bool,
    /// The script has ended and PHP's request shutdown runs (shutdown
    /// functions, destructors): php-fpm's "Finishing" stage, which
    /// request_terminate_timeout leaves alone unless told to track it.
    pub(super) finishing: bool,
    /// The request's tracing span, for the watchdog's log lines about it.
    pub(super) span: tracing::Span,
    /// The request's output, which the watchdog ends if the thread is stuck.
    pub(super) sink: Option<Arc<dyn ResponseSink>>,
}

impl Default for Current {
    fn default() -> Self {
        Current {
            seq: 0,
            last_duration: Duration::ZERO,
            last_usage: (0.0, 0),
            info: RequestInfo::default(),
            started: None,
            script: Arc::from(""),
            interrupted: None,
            slow_logged: false,
            finishing: false,
            span: tracing::Span::none(),
            sink: None,
        }
    }
}

/// One PHP thread, as the pool and the watchdog see it.
pub(super) struct Thread {
    pub(super) name: String,
    /// It runs the pool's worker script (worker mode), not one script per
    /// request; the pm neither counts nor scales it.
    pub(super) app: bool,
    /// Its number in the pool, which is also its scoreboard slot.
    pub(super) index: usize,
    /// Since when it waits for work (for pm = ondemand).
    pub(super) idle_since: Mutex<Instant>,
    /// Its Linux task id, once running, and when it started.
    tid: std::sync::atomic::AtomicU32,
    born: std::time::SystemTime,
    handle: OnceLock<ThreadHandle>,
    current: Mutex<Current>,
    retired: AtomicBool,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl Thread {
    pub(super) fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self) -> ThreadStatus {
        let current = self.current();
        let (busy, duration, usage) = match current.started {
            Some(start) => (true, start.elapsed(), (0.0, 0)),
            None => (false, current.last_duration, current.last_usage),
        };
        ThreadStatus {
            tid: self.tid.load(Ordering::Relaxed),
            started: self.born,
            requests: current.seq,
            busy,
            finishing: busy && current.finishing,
            request_duration: duration,
            request: current.info.clone(),
            last_cpu_percent: usage.0,
            last_memory: usage.1,
        }
    }

    /// Its Linux task id (0 until it runs).
    pub(super) fn tid(&self) -> u32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// Whether the script of request `seq` is running now (php-fpm's
    /// "executing" stage: not while PHP starts up or shuts down).
    pub(super) fn running(&self, seq: u64) -> bool {
        let Some(handle) = self.handle.get() else {
            return false;
        };
        // SAFETY: the pointer is the worker's own thread-local, alive while
        // the worker is (the caller holds `current` and saw it busy); an
        // aligned volatile read of a u64 the worker writes is only ever stale.
        unsafe { std::ptr::read_volatile(handle.0.running_seq) == seq }
    }

    /// Asks request `seq` to write its PHP stack to the slowlog at its next
    /// interrupt point. The caller holds the `current` lock and has seen
    /// that request running.
    pub(super) fn request_slowlog(&self, seq: u64) {
        let Some(handle) = self.handle.get() else {
            return;
        };
        // SAFETY: as in `interrupt`: the worker and its globals exist.
        unsafe { ffi::tfpm_request_slowlog(&handle.0, seq) };
    }

    /// Asks PHP to end request `seq` with a fatal error. The caller holds the
    /// `current` lock and has seen that request running.
    pub(super) fn interrupt(&self, seq: u64, after: Duration) {
        let Some(handle) = self.handle.get() else {
            return;
        };
        let secs = i64::try_from(after.as_secs()).unwrap_or(i64::MAX);
        // SAFETY: the worker is alive and inside request `seq` (the caller
        // holds `current`, which the worker takes before it ends a request
        // and before it can exit), so its thread and globals exist.
        unsafe { ffi::tfpm_interrupt(&handle.0, seq, secs) };
    }

    /// Tells request `seq` that its client is gone, if it is still running.
    pub(super) fn abort(&self, seq: u64) {
        let current = self.current();
        if current.seq != seq || current.started.is_none() {
            return;
        }
        let Some(handle) = self.handle.get() else {
            return;
        };
        // SAFETY: the worker is alive and inside request `seq` (checked under
        // the `current` lock, which it takes before it ends a request and
        // before it can exit), so its thread and globals exist.
        unsafe { ffi::tfpm_abort(&handle.0, seq) };
    }
}

/// State shared by the workers, the watchdog and the engine.
pub(super) struct Shared {
    rx: async_channel::Receiver<Job>,
    /// For the manager's `Leave` words.
    jobs: async_channel::Sender<Job>,
    scaling: Scaling,
    /// pm.max_children, and the threads running now.
    max: usize,
    live: Arc<AtomicUsize>,
    pub(super) stats: Arc<PoolStats>,
    pub(super) policy: RequestPolicy,
    pub(super) scoreboard: Option<Arc<Scoreboard>>,
    stack_size: usize,
    threads: Mutex<Vec<Arc<Thread>>>,
    next_index: AtomicUsize,
    pub(super) stopping: AtomicBool,
    pub(super) logs: RequestLogs,
    max_requests: Option<u64>,
    /// Worker mode's queue, when the pool has a worker script.
    pub(super) app: Option<Arc<AppQueue>>,
    /// Threads that recycled themselves (pm.max_requests), still to join;
    /// None once the pool stops.
    recycled: Mutex<Option<Vec<JoinHandle<()>>>>,
}

impl Shared {
    /// Every live thread, for the status page and `fpm_get_status()`.
    fn threads_status(&self) -> Vec<ThreadStatus> {
        self.threads().iter().map(|w| w.status()).collect()
    }

    /// The live (not retired) workers.
    pub(super) fn threads(&self) -> Vec<Arc<Thread>> {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn threads_mut(&self) -> MutexGuard<'_, Vec<Arc<Thread>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more thread if the pool may have it (pm.max_children).
    fn reserve_thread(&self) -> bool {
        let next = |live: usize| (live < self.max).then_some(live + 1);
        self.live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next)
            .is_ok()
    }
}

/// The process's pool (the first started), for `fpm_get_status()`.
static CURRENT: std::sync::OnceLock<std::sync::Weak<Shared>> = std::sync::OnceLock::new();

/// Every live thread of the process's pool, as [`Pool::threads_status`].
pub(super) fn current_threads_status() -> Vec<ThreadStatus> {
    let shared = CURRENT.get().and_then(std::sync::Weak::upgrade);
    shared.map_or_else(Vec::new, |s| s.threads_status())
}

/// The PHP threads and their watchdog.
pub(super) struct Workers {
    shared: Arc<Shared>,
    watchdog: Option<JoinHandle<()>>,
    manager: Option<JoinHandle<()>>,
    /// Worker mode's file watcher (`worker.watch`).
    watcher: Option<JoinHandle<()>>,
}

impl Workers {
    /// Blocks until the worker script (if the pool has one) has booted on
    /// every thread of its own, or failed to as often as start-up allows.
    pub(super) fn wait_booted(&self) -> Result<(), super::worker_mode::BootFailed> {
        match &self.shared.app {
            Some(app) => app.wait_booted(),
            None => Ok(()),
        }
    }

    /// Starts the workers. Must run after PHP's module start-up.
    pub(super) fn spawn(config: WorkerConfig) -> std::io::Result<(Pool, Workers)> {
        let (tx, rx) = async_channel::bounded(config.queue_len.max(1));
        let busy = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let stats = PoolStats::new(
            config.threads,
            config.queue_len.max(1),
            busy.clone(),
            live.clone(),
        );
        let shared = Arc::new(Shared {
            rx,
            jobs: tx.clone(),
            scaling: config.scaling,
            max: config.threads,
            live,
            stats,
            policy: config.policy,
            scoreboard: config.scoreboard,
            stack_size: config.stack_size,
            threads: Mutex::new(Vec::new()),
            next_index: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            max_requests: config.max_requests,
            logs: config.logs,
            recycled: Mutex::new(Some(Vec::new())),
            app: config
                .app
                .map(|a| Arc::new(AppQueue::new(a, config.queue_len))),
        });
        let _ = CURRENT.set(Arc::downgrade(&shared));
        for _ in 0..config.scaling.initial(config.threads) {
            spawn_worker(&shared)?;
        }
        for _ in 0..shared.app.as_ref().map_or(0, |a| a.script.threads) {
            spawn_thread(&shared, true)?;
        }
        let watcher = match shared
            .app
            .as_ref()
            .and_then(|a| Some((a.script.watch.clone()?, a)))
        {
            Some((dir, app)) => Some(super::watch::spawn(dir, app.clone())?),
            None => None,
        };
        let terminate = config.terminate_after.map(|after| watchdog::Terminate {
            after,
            track_finished: config.terminate_track_finished,
        });
        let watchdog = watchdog::spawn(shared.clone(), terminate)?;
        let manager = match config.scaling.scales() {
            true => Some(spawn_manager(shared.clone())?),
            false => None,
        };
        let pool = Pool {
            queue: tx,
            busy,
            stats: shared.stats.clone(),
            shared: shared.clone(),
        };
        Ok((
            pool,
            Workers {
                shared,
                watchdog,
                manager,
                watcher,
            },
        ))
    }

    /// Waits for every live worker to finish the queue and exit. Retired
    /// workers are left behind (they may never return).
    pub(super) fn join(self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Some(w) = self.watchdog {
            let _ = w.join();
        }
        if let Some(m) = self.manager {
            m.thread().unpark();
            let _ = m.join();
        }
        if let Some(w) = self.watcher {
            let _ = w.join();
        }
        for thread in self.shared.threads() {
            let handle = thread.join.lock().unwrap_or_else(|e| e.into_inner()).take();
            if handle.is_some_and(|h| h.join().is_err()) {
                tracing::error!(thread = %thread.name, "a PHP thread panicked");
            }
        }
        let recycled = self
            .shared
            .recycled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for handle in recycled.unwrap_or_default() {
            let _ = handle.join();
        }
    }
}

/// Starts one more PHP thread.
pub(super) fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    shared.live.fetch_add(1, Ordering::Relaxed);
    spawn_reserved(shared)
}

/// Starts a PHP thread already counted in `live`.
fn spawn_reserved(shared: &Arc<Shared>) -> std::io::Result<()> {
    let started = spawn_thread(shared, false);
    if started.is_err() {
        shared.live.fetch_sub(1, Ordering::Relaxed);
    }
    started
}

fn spawn_thread(shared: &Arc<Shared>, app: bool) -> std::io::Result<()> {
    let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
    let thread = Arc::new(Thread {
        name: format!("php-{index}"),
        app,
        index,
        idle_since: Mutex::new(Instant::now()),
        tid: std::sync::atomic::AtomicU32::new(0),
        born: std::time::SystemTime::now(),
        handle: OnceLock::new(),
        current: Mutex::new(Current::default()),
        retired: AtomicBool::new(false),
        join: Mutex::new(None),
    });
    let (s, w) = (shared.clone(), thread.clone());
    let join = std::thread::Builder::new()
        .name(thread.name.clone())
        .stack_size(shared.stack_size)
        .spawn(move || thread_main(&s, &w))?;
    *thread.join.lock().unwrap_or_else(|e| e.into_inner()) = Some(join);
    shared.threads_mut().push(thread);
    Ok(())
}

/// Takes a stuck worker out of the pool and starts a replacement. The old
/// thread exits by itself if its request ever ends.
pub(super) fn retire(shared: &Arc<Shared>, thread: &Arc<Thread>) {
    thread.retired.store(true, Ordering::Relaxed);
    shared.stats.restarted();
    shared.threads_mut().retain(|w| !Arc::ptr_eq(w, thread));
    // Detach: joining could wait forever.
    drop(thread.join.lock().unwrap_or_else(|e| e.into_inner()).take());
    // The replacement takes the stuck thread's place in `live`.
    if let Err(e) = spawn_thread(shared, thread.app) {
        if !thread.app {
            shared.live.fetch_sub(1, Ordering::Relaxed);
        }
        tracing::error!("cannot start a replacement PHP thread: {e}");
    }
}

fn thread_main(shared: &Arc<Shared>, me: &Arc<Thread>) {
    let mut handle = ffi::tfpm_thread_handle::default();
    // SAFETY: called once on this fresh thread, after php_module_startup
    // finished (workers are spawned after it); fills `handle` with this
    // thread's identity.
    unsafe { ffi::tfpm_thread_init(&mut handle) };
    let _ = me.handle.set(ThreadHandle(handle));
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    me.tid
        .store(u32::try_from(tid).unwrap_or(0), Ordering::Relaxed);
    match me.app {
        true => super::worker_mode::serve(shared, me),
        false => serve_classic(shared, me),
    }
    // SAFETY: same thread as tfpm_thread_init, and no request is running.
    unsafe { ffi::tfpm_thread_shutdown() };
}

/// One script per request, from the pool's queue.
fn serve_classic(shared: &Arc<Shared>, me: &Arc<Thread>) {
    let cgi = cgi_settings();
    let mut seq = 0u64;
    while !me.retired.load(Ordering::Relaxed) {
        let req = match shared.rx.recv_blocking() {
            Ok(Job::Run(req)) => req,
            Ok(Job::Leave) if leave(shared, me) => break,
            Ok(Job::Leave) => continue,
            Err(_) => break,
        };
        seq += 1;
        let running = super::run::begin(req, seq, me, shared, &cgi);
        // SAFETY: c_req points into `running`, which outlives the call and
        // is not touched by Rust until it returns; this thread was set up by
        // tfpm_thread_init. Bailouts are caught inside tfpm_execute.
        unsafe { ffi::tfpm_execute(&running.c_req, seq) };
        super::run::end(running, me, shared);
        if shared.max_requests.is_some_and(|max| seq >= max) && recycle(shared, me) {
            break;
        }
    }
}

/// Whether `me` should stop taking requests (the watchdog retired it).
pub(super) fn is_retired(me: &Thread) -> bool {
    me.retired.load(Ordering::Relaxed)
}

/// The pool shrinks (pm dynamic or ondemand): this thread leaves, its join
/// handle kept for the pool's shutdown. False when the pool is stopping.
fn leave(shared: &Arc<Shared>, me: &Arc<Thread>) -> bool {
    let mut recycled = shared.recycled.lock().unwrap_or_else(|e| e.into_inner());
    let Some(list) = recycled.as_mut() else {
        return false;
    };
    shared.threads_mut().retain(|w| !Arc::ptr_eq(w, me));
    shared.live.fetch_sub(1, Ordering::Relaxed);
    list.extend(me.join.lock().unwrap_or_else(|e| e.into_inner()).take());
    tracing::debug!(thread = %me.name, "an idle PHP thread leaves (pm)");
    true
}

/// The process manager's thread: once a second, grows or shrinks the pool
/// as `pm` says (see [`super::scaling`]).
fn spawn_manager(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("php-pm".into())
        .spawn(move || {
            while !shared.stopping.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_secs(1));
                if !shared.stopping.load(Ordering::Relaxed) {
                    manage(&shared);
                }
            }
        })
}

fn manage(shared: &Arc<Shared>) {
    let mut threads = shared.threads();
    threads.retain(|w| !w.app);
    let idle: Vec<&Arc<Thread>> = threads
        .iter()
        .filter(|w| w.current().started.is_none())
        .collect();
    let stale = match shared.scaling {
        Scaling::Ondemand { idle_timeout } => idle
            .iter()
            .filter(|w| {
                w.idle_since
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed()
                    >= idle_timeout
            })
            .count(),
        _ => 0,
    };
    match shared
        .scaling
        .decide(threads.len(), idle.len(), stale, shared.max)
    {
        Decision::Keep => {}
        Decision::Grow(n) => {
            for _ in 0..n {
                if !shared.reserve_thread() || spawn_reserved(shared).is_err() {
                    break;
                }
            }
        }
        Decision::Shrink(n) => {
            for _ in 0..n.min(idle.len()) {
                let _ = shared.jobs.try_send(Job::Leave);
            }
        }
    }
}

/// pm.max_requests reached: a fresh thread takes this one's place, and this
/// one leaves (its join handle kept for the pool's shutdown). False when
/// the pool is stopping: the thread then serves on to the end.
fn recycle(shared: &Arc<Shared>, me: &Arc<Thread>) -> bool {
    let mut recycled = shared.recycled.lock().unwrap_or_else(|e| e.into_inner());
    let Some(list) = recycled.as_mut() else {
        return false;
    };
    // The fresh thread takes this one's place in `live`.
    if let Err(e) = spawn_thread(shared, false) {
        tracing::error!("cannot start a fresh PHP thread for pm.max_requests: {e}");
        return false;
    }
    shared.threads_mut().retain(|w| !Arc::ptr_eq(w, me));
    list.extend(me.join.lock().unwrap_or_else(|e| e.into_inner()).take());
    tracing::debug!(thread = %me.name, "pm.max_requests reached: replaced by a fresh thread");
    true
}

/// This thread's cgi.* ini settings; they cannot change between requests.
pub(super) fn cgi_settings() -> CgiSettings {
    // SAFETY: called on a PHP thread after tfpm_thread_init; only reads
    // this thread's ini globals.
    let c = unsafe { ffi::tfpm_cgi_settings_now() };
    let doc_root = (!c.doc_root.is_null()).then(|| {
        // SAFETY: a NUL-terminated string owned by PHP's ini table, which
        // outlives every request.
        let text = unsafe { std::ffi::CStr::from_ptr(c.doc_root) };
        bytes::Bytes::copy_from_slice(text.to_bytes())
    });
    CgiSettings {
        fix_pathinfo: c.fix_pathinfo != 0,
        discard_path: c.discard_path != 0,
        doc_root,
        decode_apache_path_info: super::php_at_least(8, 4),
    }
}
