//! A worker process: what the master starts to run PHP. It inherits the
//! listening sockets, a channel to the master and its scoreboard, all named
//! on its command line (`--worker-spec`, [`WorkerSpec`]). It starts
//! the PHP engine with its share of the threads, tells the master it is
//! ready, serves until SIGQUIT (drain), SIGTERM or SIGINT (fast), or until
//! the master is gone, and answers the master's requests for its metrics.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use super::control::{self, MasterLink, ToMaster, ToWorker};
use super::{systemd, Signals, StopKind};
use crate::exit_code;
use crate::php::{Engine, EngineConfig, Pool};
use crate::server::{metrics, Listener, ServerConfig, Stop};
use crate::sys::fdpass;
use crate::sys::scoreboard::Scoreboard;

/// What the master passes a worker, encoded in one environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    /// Which of the master's workers this is (0-based; kept by replacements).
    pub index: usize,
    /// Which pool it runs (the config's pool sections, in order; 0 without one).
    pub pool: usize,
    /// How many PHP threads it runs.
    pub threads: usize,
    /// The inherited listening sockets.
    pub listen: Vec<RawFd>,
    /// One end of a socket pair with the master.
    pub channel: RawFd,
    /// One end of the socket pair that connections are handed over on.
    pub handover: Option<RawFd>,
    /// The scoreboard file.
    pub board: RawFd,
    /// The master's process id.
    pub master: u32,
    /// Where the worker logs instead of its stderr (the master's stderr),
    /// when the master redirected the worker's stdout and stderr.
    pub log: Option<RawFd>,
    /// Whether the master logs to its error_log file (the worker then does).
    pub log_file: bool,
}

impl WorkerSpec {
    /// `index=0 threads=4 listen=5,6 channel=7 board=8`.
    pub fn encode(&self) -> String {
        let listen: Vec<String> = self.listen.iter().map(|fd| fd.to_string()).collect();
        let mut text = format!(
            "index={} pool={} threads={} listen={} channel={} board={} master={}",
            self.index,
            self.pool,
            self.threads,
            listen.join(","),
            self.channel,
            self.board,
            self.master
        );
        if let Some(fd) = self.handover {
            text.push_str(&format!(" handover={fd}"));
        }
        if let Some(fd) = self.log {
            text.push_str(&format!(" log={fd}"));
        }
        if self.log_file {
            text.push_str(" logfile=1");
        }
        text
    }

    /// The spec from its command-line form ([`WorkerSpec::encode`]'s);
    /// Err names what is wrong with it.
    pub fn decode(text: &str) -> Result<WorkerSpec, String> {
        let mut spec = WorkerSpec {
            index: 0,
            pool: 0,
            threads: 0,
            listen: Vec::new(),
            channel: -1,
            handover: None,
            board: -1,
            master: 0,
            log: None,
            log_file: false,
        };
        for field in text.split_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or(format!("bad field {field:?}"))?;
            let number = |v: &str| v.parse().map_err(|_| format!("bad number in {field:?}"));
            match key {
                "index" => spec.index = number(value)?,
                "pool" => spec.pool = number(value)?,
                "threads" => spec.threads = number(value)?,
                "channel" => spec.channel = number(value)? as RawFd,
                "board" => spec.board = number(value)? as RawFd,
                "master" => spec.master = number(value)? as u32,
                "log" => spec.log = Some(number(value)? as RawFd),
                "handover" => spec.handover = Some(number(value)? as RawFd),
                "logfile" => spec.log_file = value == "1",
                "listen" => {
                    for fd in value.split(',').filter(|v| !v.is_empty()) {
                        spec.listen.push(number(fd)? as RawFd);
                    }
                }
                _ => return Err(format!("unknown field {key:?}")),
            }
        }
        if spec.threads == 0 || spec.channel < 0 || spec.board < 0 || spec.listen.is_empty() {
            return Err(format!("incomplete worker spec {text:?}"));
        }
        Ok(spec)
    }

    /// The spec this process was started with (`--worker-spec`), if it is
    /// a worker. The master passes it on the command line and leaves the
    /// environment alone, so that scripts see it in its own order (as
    /// php-fpm's children do with `clear_env = no`); the service manager's
    /// variables, meant for the master, are removed here, before any thread
    /// starts.
    pub fn from_cli(text: Option<&str>) -> Option<Result<WorkerSpec, String>> {
        let spec = WorkerSpec::decode(text?);
        for name in [
            "NOTIFY_SOCKET",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        ] {
            std::env::remove_var(name);
        }
        Some(spec)
    }

    /// The log descriptor the master passed, owned (once).
    pub fn take_log(&self) -> Option<File> {
        let fd = crate::sys::os::take_log_fd(self.log?)?;
        Some(File::from(fd))
    }
}

/// The descriptors a worker inherited, owned.
struct Inherited {
    listeners: Vec<Listener>,
    channel: UnixStream,
    handover: Option<OwnedFd>,
    board: File,
}

fn take_inherited(spec: &WorkerSpec) -> std::io::Result<Inherited> {
    let mut wanted = spec.listen.clone();
    wanted.extend([spec.channel, spec.board]);
    wanted.extend(spec.handover);
    let mut fds = crate::sys::os::take_listed_fds(&wanted);
    let mut take = |fd: RawFd| -> std::io::Result<OwnedFd> {
        let at = fds.iter().position(|f| f.as_raw_fd() == fd);
        at.map(|at| fds.swap_remove(at))
            .ok_or_else(|| std::io::Error::other(format!("descriptor {fd} was not inherited")))
    };
    let channel = std::os::unix::net::UnixStream::from(take(spec.channel)?);
    channel.set_nonblocking(true)?;
    let board = File::from(take(spec.board)?);
    let handover = spec.handover.map(&mut take).transpose()?;
    let mut listeners = Vec::new();
    for fd in &spec.listen {
        listeners.push(systemd::listener_from(take(*fd)?)?);
    }
    Ok(Inherited {
        listeners,
        channel: UnixStream::from_std(channel)?,
        handover,
        board,
    })
}

/// How a worker serves: its engine and server settings, and how long a
/// graceful stop may wait for requests in flight.
pub struct WorkerSettings {
    /// The PHP engine: threads, ini, the pool's PHP settings.
    pub engine: EngineConfig,
    /// The FastCGI server: connections, limits, timeouts, pages.
    pub server: ServerConfig,
    /// How long a graceful stop waits for requests in flight.
    pub drain: Duration,
    /// The pool's `user` (name, uid, gid), switched to before PHP starts.
    pub user: Option<(String, u32, u32)>,
    /// The pool's `chdir`.
    pub chdir: Option<std::path::PathBuf>,
    /// The pool's status page (`pm.status_path`), if it has one.
    pub status: Option<crate::server::status::StatusConfig>,
}

/// Runs a worker to completion; returns the process exit code.
pub async fn run(spec: WorkerSpec, mut settings: WorkerSettings) -> i32 {
    if !crate::sys::os::die_with_parent(spec.master) {
        tracing::error!(
            "worker {}: the master is gone before the worker started",
            spec.index
        );
        return exit_code::OS_ERROR;
    }
    let inherited = match take_inherited(&spec) {
        Ok(inherited) => inherited,
        Err(e) => {
            tracing::error!("worker {}: {e}", spec.index);
            return exit_code::OS_ERROR;
        }
    };
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::error!("cannot watch signals: {e}");
            return exit_code::OS_ERROR;
        }
    };
    match Scoreboard::map(inherited.board) {
        Ok(board) => settings.engine.scoreboard = Some(Arc::new(board)),
        Err(e) => tracing::warn!("no scoreboard, crashes will not name their scripts: {e}"),
    }
    if let Err(e) = become_pool_user(&settings) {
        tracing::error!("worker {}: {e}", spec.index);
        return exit_code::CONFIG;
    }
    settings.engine.threads = spec.threads;
    let scaling = settings.engine.scaling;
    let pool_name = settings.engine.logs.pool.clone();
    // A crash report is worth reading even when scripts' stderr is not.
    settings.engine.report_fd = super::logfile::master_stderr();
    std::panic::set_hook(Box::new(|info| tracing::error!("worker panic: {info}")));
    let engine = match Engine::start(settings.engine) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!("{e}");
            return exit_code::SOFTWARE;
        }
    };
    tracing::info!(
        target: crate::server::STARTUP,
        worker = spec.index,
        pid = std::process::id(),
        threads = spec.threads,
        "worker ready"
    );
    let (gone_tx, gone) = oneshot::channel();
    let (rd, wr) = inherited.channel.into_split();
    let link = Arc::new(MasterLink::new(wr));
    let (retire_tx, retire) = oneshot::channel();
    tokio::spawn(answer_master(
        rd,
        link.clone(),
        (pool_name, engine.pool().clone()),
        gone_tx,
        retire_tx,
    ));
    // fpm_get_status() reports the whole pool, as the status page does.
    let asking = link.clone();
    let runtime = tokio::runtime::Handle::current();
    crate::php::set_pool_counts_source(Box::new(move || {
        // On a PHP thread, outside the runtime: blocking here is allowed.
        let report = runtime.block_on(asking.pool_metrics())?;
        Some(crate::server::status::pool_counts(&report))
    }));
    if let Some(page) = settings.status.take() {
        let asking = link.clone();
        let pool_metrics: crate::server::status::PoolMetrics = Arc::new(move || {
            let link = asking.clone();
            Box::pin(async move { link.pool_metrics().await })
        });
        let page = page.serving(engine.pool().clone(), pool_metrics);
        settings.server.status = Some(Arc::new(page));
    }
    let (stop_tx, stop_rx) = watch::channel(None);
    let (not_accepting_tx, not_accepting) = oneshot::channel();
    let pool = engine.pool().clone();
    let handover = match inherited.handover.map(fdpass::Channel::new).transpose() {
        Ok(channel) => channel.map(Arc::new),
        Err(e) => {
            tracing::warn!("no connection handover: {e}");
            None
        }
    };
    let serving = tokio::spawn(crate::server::serve(
        inherited.listeners,
        pool,
        settings.server,
        stop_rx,
        not_accepting_tx,
        handover,
    ));
    if let crate::php::scaling::Scaling::Ondemand { idle_timeout } = scaling {
        tokio::spawn(report_idle(
            engine.pool().clone(),
            link.clone(),
            idle_timeout,
        ));
    }
    // A reload (or, for an idle ondemand pool, the master) retires the
    // worker: the sockets live on, so it leaves its backlog to others.
    let (kind, sweep, hand_over) = tokio::select! {
        kind = signals.wait() => (kind, true, false),
        Ok(hand_over) = retire => (StopKind::Graceful, false, hand_over),
        _ = gone => {
            tracing::warn!("the master is gone: stopping gracefully");
            (StopKind::Graceful, true, false)
        }
    };
    let drain = match kind {
        StopKind::Graceful => settings.drain,
        StopKind::Fast => Duration::ZERO,
    };
    let _ = stop_tx.send(Some(Stop {
        drain,
        sweep,
        hand_over,
    }));
    if !sweep {
        let _ = not_accepting.await;
        let _ = link.send(&ToMaster::Retired).await;
    }
    let left = serving.await.unwrap_or(0);
    if left > 0 {
        tracing::warn!(connections = left, "stopping with requests still in flight");
    }
    stop_engine(engine, if left == 0 { kind } else { StopKind::Fast }).await
}

/// The pool's `chdir` and `user`, as a php-fpm child applies them.
fn become_pool_user(settings: &WorkerSettings) -> Result<(), String> {
    if let Some(dir) = &settings.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| format!("chdir({}) failed: {e}", dir.display()))?;
    }
    if let Some((name, uid, gid)) = &settings.user {
        crate::sys::os::become_user(name, *uid, *gid)
            .map_err(|e| format!("cannot become user '{name}' ({uid}:{gid}): {e}"))?;
    }
    Ok(())
}

/// Tells the master this worker is ready, then reads the channel until the
/// master closes it (then `gone` fires): its requests (its metrics; after
/// a reload, to retire: `retire` fires) and its answers (the pool's
/// metrics, to [`MasterLink::pool_metrics`]).
async fn answer_master(
    rd: OwnedReadHalf,
    link: Arc<MasterLink>,
    (name, pool): (String, Pool),
    gone: oneshot::Sender<()>,
    retire: oneshot::Sender<bool>,
) {
    let mut retire = Some(retire);
    let mut rd = BufReader::new(rd);
    let mut alive = link.send(&ToMaster::Ready).await.is_ok();
    while alive {
        let message = match control::read::<ToWorker, _>(&mut rd).await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::debug!("{e}");
                continue;
            }
            Err(_) => break,
        };
        alive = match message {
            ToWorker::MetricsPlease => {
                let report = metrics::report(&name, &pool.stats());
                link.send(&ToMaster::Metrics(Box::new(report)))
                    .await
                    .is_ok()
            }
            ToWorker::PoolMetrics(report) => {
                let answer = link.answer.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(tx) = answer {
                    let _ = tx.send(*report);
                }
                true
            }
            ToWorker::Retire { hand_over } => {
                if let Some(tx) = retire.take() {
                    let _ = tx.send(hand_over);
                }
                true
            }
        };
    }
    let _ = gone.send(());
}

/// An ondemand pool's worker with no thread left and no request for
/// `idle_timeout` (php-fpm's `pm.process_idle_timeout`) tells the master,
/// which retires it and waits for the next connection before it starts
/// another: an ondemand pool with no traffic keeps no process, as in
/// php-fpm.
async fn report_idle(pool: Pool, link: Arc<MasterLink>, idle_timeout: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle_timeout));
    // Since when the pool has been quiet, and its request count then.
    let mut quiet: Option<(tokio::time::Instant, u64)> = None;
    loop {
        tick.tick().await;
        let now = pool.stats();
        let still = now.threads == 0 && now.queued == 0;
        quiet = match quiet {
            Some((since, accepted)) if still && accepted == now.accepted => {
                if since.elapsed() >= idle_timeout {
                    let _ = link.send(&ToMaster::Idle).await;
                    return;
                }
                Some((since, accepted))
            }
            _ if still => Some((tokio::time::Instant::now(), now.accepted)),
            _ => None,
        };
    }
}

/// Lets running requests finish (long for a graceful stop, briefly for a
/// fast one), then shuts PHP down. Threads stuck past the deadline are
/// left to the process exit.
pub async fn stop_engine(engine: Engine, kind: StopKind) -> i32 {
    let deadline = match kind {
        StopKind::Graceful => Duration::from_secs(60),
        StopKind::Fast => Duration::from_secs(2),
    };
    let pool = engine.pool().clone();
    pool.close();
    let join = tokio::task::spawn_blocking(move || engine.shutdown());
    match tokio::time::timeout(deadline, join).await {
        Ok(_) => {
            tracing::debug!("worker exiting");
            0
        }
        Err(_) => {
            tracing::warn!(
                busy = pool.busy(),
                "requests still running after {deadline:?}; exiting without PHP shutdown"
            );
            // Exit handlers (OpenSSL's, for one) must not run under live PHP threads.
            crate::sys::os::exit_with_threads_running(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trip() {
        let spec = WorkerSpec {
            index: 2,
            pool: 1,
            threads: 4,
            listen: vec![5, 6],
            channel: 7,
            handover: None,
            board: 8,
            master: 99,
            log: None,
            log_file: false,
        };
        assert_eq!(
            spec.encode(),
            "index=2 pool=1 threads=4 listen=5,6 channel=7 board=8 master=99"
        );
        assert_eq!(WorkerSpec::decode(&spec.encode()), Ok(spec.clone()));
        let logged = WorkerSpec {
            handover: Some(10),
            log: Some(9),
            log_file: true,
            ..spec
        };
        assert!(logged.encode().ends_with(" handover=10 log=9 logfile=1"));
        assert_eq!(WorkerSpec::decode(&logged.encode()), Ok(logged));
        assert!(WorkerSpec::decode("index=1 threads=2 channel=3 board=4").is_err());
        assert!(WorkerSpec::decode("index=x").is_err());
        assert!(WorkerSpec::decode("color=red").is_err());
    }
}
