//! The master process. It holds the listening sockets (bound here, or
//! passed by systemd) and never starts PHP: it runs K worker processes
//! (tfpm itself, re-executed with [`WorkerSpec`](super::worker::WorkerSpec) in its environment), each
//! with its share of the PHP threads, and keeps them running.
//!
//! - A worker that dies is logged (signal, core dump, the scripts it was
//!   running, from its scoreboard) and replaced at once. Because the
//!   sockets stay open here, new connections wait in the listen backlog
//!   meanwhile: none is refused. Crashes that come faster than
//!   `emergency_restart_threshold` in `emergency_restart_interval` start an
//!   emergency reload, and replacements then back off.
//! - SIGUSR2 reloads: a new generation of workers starts (re-reading
//!   php.ini); once all are ready, the old ones drain and exit.
//! - SIGQUIT drains every worker (up to `process_control_timeout`);
//!   SIGTERM and SIGINT stop them at once.
//! - `/metrics` sums every ready worker's metrics; systemd hears READY=1,
//!   RELOADING=1, STOPPING=1 and a live STATUS= line from here.

mod exit;
mod handover;
mod link;
mod pools;
mod reload;
mod spawn;

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{relay, systemd, Asked, Signals, StopKind};
use crate::exit_code;
use crate::server::probes::Readiness;
use crate::server::{metrics, Listener};
use crate::sys::os;
use crate::sys::scoreboard;
use exit::{describe, is_crash};
use link::{report_status, sum_metrics, Crashes, Link, Ready};
use pools::close_unused;
pub use pools::{Output, PoolProcs};

/// How the master runs its workers.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// How long a graceful stop or reload lets requests in flight finish.
    pub process_control_timeout: Duration,
    /// Crashes within `emergency_restart_interval` that trigger an
    /// emergency reload; 0 disables it (php-fpm's default).
    pub emergency_restart_threshold: usize,
    /// `emergency_restart_interval`: the window those crashes count in.
    pub emergency_restart_interval: Duration,
}

/// How long a reload waits for an old worker to stop accepting.
const RETIRE_WAIT: Duration = Duration::from_secs(2);

/// Re-reads the configuration for a reload: the master's settings and the
/// pools, each reusing the listener it had (among those given) when it
/// still listens there, and binding the new ones. Err is why the reload
/// cannot go on; the running workers then stay.
pub type Reread = Box<
    dyn Fn(Vec<Arc<Listener>>) -> BoxFuture<Result<(MasterConfig, Vec<PoolProcs>), String>>
        + Send
        + Sync,
>;

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What a reload in progress replaced, for when it is abandoned.
struct Previous {
    config: MasterConfig,
    pools: Vec<PoolProcs>,
    slots: Vec<(usize, usize)>,
}

/// Where a daemonized master tells the parent that waits for it that it
/// is ready (see `os::daemonize`).
static READY_PIPE: Mutex<Option<File>> = Mutex::new(None);

/// Keeps the pipe to the waiting parent, for the first READY.
pub fn report_ready_to(pipe: File) {
    *lock(&READY_PIPE) = Some(pipe);
}

/// What the master hears about its workers.
enum Event {
    Ready(u32),
    Exited(u32, ExitStatus),
    /// A connection waits for lazy pool `.0` of generation `.1`.
    Wanted(usize, u64),
    /// A worker of a lazy pool has been idle for its idle timeout.
    Idle(u32),
    /// A retiring worker passed a connection back (it came through `from`,
    /// its pool's sockets).
    Offered {
        from: Vec<std::sync::Weak<Listener>>,
        conn: crate::sys::fdpass::Passed,
    },
    /// A connection held here has input, or its peer closed it.
    HeldReadable(u64),
}

/// Where the master is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first generation is starting; nothing serves yet.
    Starting,
    /// The workers serve (a lazy pool's wait for a connection).
    Serving,
    /// A reload's new generation (this one) is starting; the old one serves.
    Reloading(u64),
    /// A stop signal came: the workers drain, or stop at once.
    Stopping(StopKind),
}

/// One worker process.
struct Proc {
    index: usize,
    generation: u64,
    pid: u32,
    started: Instant,
    ready: bool,
    /// Asked to stop: its exit is expected.
    stopping: bool,
    board: File,
    link: Arc<Link>,
    /// Where connections are passed to it and back.
    handover: Option<Arc<crate::sys::fdpass::Channel>>,
    /// Its pool's sockets (weak: a stopping master closes its own).
    listeners: Vec<std::sync::Weak<Listener>>,
}

struct Master {
    config: MasterConfig,
    pools: Vec<PoolProcs>,
    reread: Option<Reread>,
    /// The pools a reload in progress replaced.
    previous: Option<Previous>,
    /// Every worker place: (pool, index in the pool); a worker's `index`
    /// is its place here.
    slots: Vec<(usize, usize)>,
    procs: Vec<Proc>,
    generation: u64,
    phase: Phase,
    /// Replacements waiting for their back-off: (when, index).
    respawns: Vec<(Instant, usize)>,
    /// When recent crashes happened, for the emergency threshold.
    faults: VecDeque<Instant>,
    /// Emergency reloads in a row; replacements wait 2^n × 100 ms.
    backoff: u32,
    /// The crash threshold was reached: reload.
    emergency: bool,
    /// Lazy pools waiting for their first connection: (pool, generation,
    /// the task that watches its sockets).
    parked: Vec<(usize, u64, tokio::task::AbortHandle)>,
    last_emergency: Option<Instant>,
    events: mpsc::UnboundedSender<Event>,
    ready: Ready,
    crashes: Crashes,
    /// What `/readyz` needs: the pools that keep workers, and the stop.
    readiness: Arc<Readiness>,
    /// Handed-over connections waiting for a ready worker of their pool.
    held: Vec<handover::Held>,
    next_held: u64,
    /// Turns taken among ready workers for handed-over connections.
    turn: usize,
}

/// Runs the master until a stop signal; returns the process exit code.
pub async fn run(
    config: MasterConfig,
    pools: Vec<PoolProcs>,
    reread: Option<Reread>,
    metrics_listener: Option<TcpListener>,
    mut signals: Signals,
) -> i32 {
    if let Err(e) = share_listeners(&pools) {
        tracing::error!("{e}");
        return exit_code::OS_ERROR;
    }
    let slots = slots_of(&pools);
    let (events, mut rx) = mpsc::unbounded_channel();
    let mut master = Master {
        config,
        pools,
        reread,
        previous: None,
        slots,
        procs: Vec::new(),
        generation: 0,
        phase: Phase::Starting,
        respawns: Vec::new(),
        faults: VecDeque::new(),
        backoff: 0,
        emergency: false,
        parked: Vec::new(),
        last_emergency: None,
        events,
        ready: Ready::default(),
        crashes: Crashes::default(),
        readiness: Arc::default(),
        held: Vec::new(),
        next_held: 0,
        turn: 0,
    };
    master.note_pools();
    if let Some(listener) = metrics_listener {
        serve_metrics(&master, listener);
    }
    if let Err(code) = master.start(&mut rx).await {
        master.stop(StopKind::Fast, &mut rx).await;
        return code;
    }
    let status = tokio::spawn(report_status(master.ready.clone()));
    let kind = master.serve(&mut signals, &mut rx).await;
    master.readiness.stop();
    status.abort();
    systemd::notify("STOPPING=1\nSTATUS=stopping");
    // php-fpm's words for the two ways to stop.
    match kind {
        StopKind::Graceful => tracing::info!("Finishing ..."),
        StopKind::Fast => tracing::info!("Terminating ..."),
    }
    master.stop(kind, &mut rx).await;
    relay::drain_all();
    tracing::info!("exiting, bye-bye!");
    0
}

/// Answers scrapers and probes on the metrics listener (from before the
/// first worker is ready: `/readyz` says 503 until then).
fn serve_metrics(master: &Master, listener: TcpListener) {
    let (ready, crashes) = (master.ready.clone(), master.crashes.clone());
    let (links, readiness) = (master.ready.clone(), master.readiness.clone());
    let render = move || {
        let sum = sum_metrics(ready.clone(), Some(crashes.clone()), None);
        async move { metrics::render(&sum.await) }
    };
    let is_ready = move || {
        let pools: Vec<usize> = lock(&links).iter().map(|(_, l)| l.pool).collect();
        readiness.is_ready(&pools)
    };
    tokio::spawn(metrics::serve(listener, render, is_ready));
}

/// Lets workers inherit the listening sockets.
fn share_listeners(pools: &[PoolProcs]) -> Result<(), String> {
    for l in pools.iter().flat_map(|p| &p.listeners) {
        os::set_inheritable(l.as_fd(), true)
            .map_err(|e| format!("cannot pass {} to workers: {e}", l.addr()))?;
    }
    Ok(())
}

/// Every worker place: (pool, index in the pool).
fn slots_of(pools: &[PoolProcs]) -> Vec<(usize, usize)> {
    pools
        .iter()
        .enumerate()
        .flat_map(|(p, pool)| (0..pool.workers).map(move |i| (p, i)))
        .collect()
}

impl Master {
    /// Tells the probes which pools must have a ready worker.
    fn note_pools(&self) {
        self.readiness.set_pools(self.pools.iter().map(|p| p.lazy));
    }

    /// Starts the first generation and waits until it is ready; Err is the
    /// exit code when a worker cannot start.
    async fn start(&mut self, rx: &mut mpsc::UnboundedReceiver<Event>) -> Result<(), i32> {
        self.generation = 1;
        for index in 0..self.slots.len() {
            if let Err(e) = self.start_slot(index) {
                tracing::error!("cannot start worker {index}: {e}");
                return Err(exit_code::OS_ERROR);
            }
        }
        while self.procs.iter().any(|p| !p.ready) {
            match rx.recv().await {
                Some(Event::Ready(pid)) => self.mark_ready(pid),
                Some(Event::Wanted(pool, generation)) => self.wanted(pool, generation),
                Some(Event::Idle(_) | Event::Offered { .. } | Event::HeldReadable(_)) => {}
                Some(Event::Exited(pid, status)) => {
                    tracing::error!("worker (pid {pid}) failed to start: {}", describe(status));
                    self.procs.retain(|p| p.pid != pid);
                    return Err(exit_code::SOFTWARE);
                }
                None => return Err(exit_code::OS_ERROR),
            }
        }
        let threads: usize = self.pools.iter().map(|p| p.threads).sum();
        tracing::info!(
            target: crate::server::STARTUP,
            pools = self.pools.len(),
            workers = self.slots.len(),
            threads,
            php = %crate::php::php_version(),
            sapi = %crate::php::sapi_name(),
            "every worker is ready"
        );
        log_running();
        if let Some(mut pipe) = lock(&READY_PIPE).take() {
            use std::io::Write;
            let _ = pipe.write_all(b"1");
        }
        self.phase = Phase::Serving;
        systemd::notify(&format!(
            "READY=1\nSTATUS=ready: {} workers, {} PHP threads\nMAINPID={}",
            self.slots.len(),
            threads,
            std::process::id()
        ));
        Ok(())
    }

    /// Supervises until a stop signal, which it returns.
    async fn serve(
        &mut self,
        signals: &mut Signals,
        rx: &mut mpsc::UnboundedReceiver<Event>,
    ) -> StopKind {
        loop {
            let next_respawn = self.respawns.iter().map(|(at, _)| *at).min();
            let respawn_due = async {
                match next_respawn {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                asked = signals.next() => {
                    // What workers wrote before the signal comes first.
                    relay::drain_all();
                    match asked {
                        Asked::Stop(kind) => return kind,
                        Asked::Reload => {
                            tracing::info!("Reloading in progress ...");
                            self.reload("SIGUSR2").await;
                        }
                        Asked::ReopenLogs => self.reopen_logs(),
                    }
                }
                Some(event) = rx.recv() => match event {
                    Event::Ready(pid) => self.mark_ready(pid),
                    Event::Exited(pid, status) => self.exited(pid, status),
                    Event::Wanted(pool, generation) => self.wanted(pool, generation),
                    Event::Idle(pid) => self.idle(pid),
                    Event::Offered { from, conn } => self.offered(from, conn),
                    Event::HeldReadable(id) => self.held_readable(id),
                },
                _ = respawn_due => self.respawn_due(),
            }
            if std::mem::take(&mut self.emergency) {
                self.reload("emergency restart").await;
            }
        }
    }

    /// A connection came for a lazy pool: its workers start.
    fn wanted(&mut self, pool: usize, generation: u64) {
        self.parked.retain(|(p, g, task)| {
            let hit = *p == pool && *g == generation;
            if hit {
                task.abort();
            }
            !hit
        });
        if generation != self.generation {
            return;
        }
        tracing::debug!(pool = %self.pools[pool].name, "a connection came: starting the pool's workers");
        for index in 0..self.slots.len() {
            let running = self
                .procs
                .iter()
                .any(|p| p.index == index && p.generation == generation && !p.stopping);
            if self.slots[index].0 == pool && !running {
                if let Err(e) = self.spawn(index) {
                    tracing::error!("cannot start worker {index}: {e}; retrying in 1s");
                    self.respawns
                        .push((Instant::now() + Duration::from_secs(1), index));
                }
            }
        }
    }

    /// A lazy pool's worker has been idle for its idle timeout: it retires,
    /// and the pool waits for its next connection (php-fpm's ondemand
    /// pools keep no process when there is no traffic).
    fn idle(&mut self, pid: u32) {
        if self.phase != Phase::Serving {
            return;
        }
        let generation = self.generation;
        let Some(p) = self
            .procs
            .iter_mut()
            .find(|p| p.pid == pid && p.generation == generation && !p.stopping)
        else {
            return;
        };
        let index = p.index;
        if !self.pools[self.slots[index].0].lazy {
            return;
        }
        p.stopping = true;
        let link = p.link.clone();
        self.forget_stopping();
        tracing::debug!(
            worker = index,
            pid,
            "idle: retiring the worker until the next connection"
        );
        if let Err(e) = self.start_slot(index) {
            tracing::error!("cannot watch the pool's sockets: {e}; restarting the worker");
            self.schedule_respawn(index, Duration::ZERO);
        }
        // Its kept connections come back here, to wait for the next worker.
        tokio::spawn(async move {
            if !link.retire(true).await {
                signal(pid, libc::SIGQUIT);
            }
        });
    }

    /// Stops watching the sockets of lazy pools of the generations `drop`
    /// picks.
    fn unpark(&mut self, drop: impl Fn(u64) -> bool) {
        self.parked.retain(|(_, g, task)| {
            if drop(*g) {
                task.abort();
            }
            !drop(*g)
        });
    }

    fn mark_ready(&mut self, pid: u32) {
        let Some(p) = self.procs.iter_mut().find(|p| p.pid == pid) else {
            return;
        };
        p.ready = true;
        if !p.stopping {
            lock(&self.ready).push((pid, p.link.clone()));
        }
        self.reload_progress();
        self.place_held();
    }

    fn exited(&mut self, pid: u32, status: ExitStatus) {
        let Some(at) = self.procs.iter().position(|p| p.pid == pid) else {
            return;
        };
        let p = self.procs.swap_remove(at);
        lock(&self.ready).retain(|(other, _)| *other != pid);
        let lived = p.started.elapsed();
        if p.stopping {
            // As php-fpm, which logs its children's ends at debug level
            // while it stops or reloads.
            tracing::debug!(
                worker = p.index,
                pid,
                "worker exited: {} after {lived:.3?}",
                describe(status)
            );
            return;
        }
        self.crashes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scripts = scoreboard::in_flight(&p.board);
        tracing::warn!(
            worker = p.index,
            pid,
            in_flight = ?scripts,
            "worker exited: {} after {:.6} seconds from start",
            describe(status),
            lived.as_secs_f64()
        );
        if self.phase == Phase::Reloading(p.generation) && !p.ready {
            self.abandon_reload();
            return;
        }
        if p.generation != self.generation {
            return;
        }
        let emergency = is_crash(status) && self.fault();
        if emergency {
            self.emergency = true;
        } else {
            // A worker that died starting up (a broken php.ini, say) would
            // die again at once: wait a little between tries.
            let floor = if p.ready {
                Duration::ZERO
            } else {
                Duration::from_secs(1)
            };
            self.schedule_respawn(p.index, floor);
        }
    }

    /// Counts a crash; true when the emergency threshold is reached.
    fn fault(&mut self) -> bool {
        let (threshold, interval) = (
            self.config.emergency_restart_threshold,
            self.config.emergency_restart_interval,
        );
        let now = Instant::now();
        if self.last_emergency.is_some_and(|t| now - t > interval) {
            self.backoff = 0; // a quiet interval ends the back-off
        }
        self.faults.push_back(now);
        while self.faults.front().is_some_and(|t| now - *t > interval) {
            self.faults.pop_front();
        }
        if threshold == 0 || self.faults.len() < threshold {
            return false;
        }
        self.last_emergency = Some(now);
        tracing::error!(
            "failed processes threshold ({threshold} in {} sec) is reached, initiating reload",
            interval.as_secs()
        );
        self.faults.clear();
        self.backoff = (self.backoff + 1).min(7);
        true
    }

    /// Replaces worker `index`, at once or after the back-off.
    fn schedule_respawn(&mut self, index: usize, floor: Duration) {
        let delay = match self.backoff {
            0 => Duration::ZERO,
            n => Duration::from_millis(100 << n),
        }
        .max(floor);
        if !delay.is_zero() {
            tracing::warn!(
                worker = index,
                "crash loop: restarting the worker in {delay:?}"
            );
        }
        self.respawns.push((Instant::now() + delay, index));
        if delay.is_zero() {
            self.respawn_due();
        }
    }

    fn respawn_due(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .respawns
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, i)| *i)
            .collect();
        self.respawns.retain(|(at, _)| *at > now);
        for index in due {
            if let Err(e) = self.spawn(index) {
                tracing::error!("cannot restart worker {index}: {e}; retrying in 1s");
                self.respawns.push((now + Duration::from_secs(1), index));
            }
        }
    }

    /// Stops every worker (drains them for a graceful stop) and waits for
    /// them; those past the deadline are killed.
    async fn stop(&mut self, kind: StopKind, rx: &mut mpsc::UnboundedReceiver<Event>) {
        self.phase = Phase::Stopping(kind);
        let (sig, grace) = match kind {
            StopKind::Graceful => (libc::SIGQUIT, self.config.process_control_timeout),
            StopKind::Fast => (libc::SIGTERM, Duration::ZERO),
        };
        // Held connections are idle: they close now, as a stopping
        // worker's idle connections do.
        self.drop_held();
        // No connection may land in a backlog after the workers' last
        // sweep, to be reset by the close: new TCP attempts are dropped
        // from here on (the client retries, and later finds the socket
        // closed or, under systemd, served again) and Unix socket files go.
        // Each worker sweeps its backlog and closes its copy.
        let mut held: Vec<_> = self
            .pools
            .iter_mut()
            .flat_map(|p| p.listeners.drain(..))
            .collect();
        if let Some(previous) = self.previous.take() {
            held.extend(previous.pools.into_iter().flat_map(|p| p.listeners));
        }
        for l in &held {
            l.refuse_new_connections();
            l.cleanup();
        }
        for p in &mut self.procs {
            p.stopping = true;
            signal(p.pid, sig);
        }
        // Workers need a moment past the drain to shut PHP down.
        let deadline = tokio::time::Instant::now() + grace + Duration::from_secs(3);
        while !self.procs.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Event::Exited(pid, status))) => self.exited(pid, status),
                Ok(Some(
                    Event::Ready(_)
                    | Event::Wanted(..)
                    | Event::Idle(_)
                    | Event::Offered { .. }
                    | Event::HeldReadable(_),
                )) => {}
                Ok(None) | Err(_) => break,
            }
        }
        for p in &self.procs {
            tracing::warn!(
                worker = p.index,
                pid = p.pid,
                "worker did not stop in time: killing it"
            );
            signal(p.pid, libc::SIGKILL);
        }
        // A socket systemd passed outlives us: it takes connections again.
        for l in held {
            l.take_new_connections();
        }
    }
}

/// Waits until one of the sockets (duplicates of a lazy pool's listeners)
/// has a connection waiting; the connection stays for a worker to accept.
async fn wait_for_connection(listeners: Vec<std::os::fd::OwnedFd>) -> std::io::Result<()> {
    let fds = listeners
        .into_iter()
        .map(os::Readiness::new)
        .collect::<std::io::Result<Vec<_>>>()?;
    let waits = fds.iter().map(|fd| Box::pin(fd.readable()));
    let (ready, _, _) = futures_util::future::select_all(waits).await;
    ready
}

/// php-fpm's two lines for a master that is up (after a start or a reload).
fn log_running() {
    tracing::info!("fpm is running, pid {}", std::process::id());
    tracing::info!("ready to handle connections");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn raw(fd: std::os::fd::BorrowedFd<'_>) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn signal(pid: u32, sig: i32) {
    if let Err(e) = os::send_signal(pid, sig) {
        tracing::debug!(pid, "cannot signal a worker: {e}");
    }
}
