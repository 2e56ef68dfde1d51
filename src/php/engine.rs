//! PHP's process-wide life: start-up and shutdown on one dedicated
//! `php-main` thread (TSRM requires both on the same thread), with the
//! worker pool started in between.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use std::time::Duration;

use super::ffi;
use super::pool::{Pool, WorkerConfig, Workers};
use super::request::RequestPolicy;

/// How to start PHP and its threads.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `-c`: php.ini file or directory.
    pub ini_path: Option<PathBuf>,
    /// `-n`: use no php.ini.
    pub ignore_ini: bool,
    /// `-d key=value` entries, highest precedence.
    pub ini_entries: Vec<(String, String)>,
    /// Entries scripts cannot change (php-fpm's php_admin_value).
    pub locked_ini: Vec<String>,
    /// The most PHP threads the pool runs (php-fpm's pm.max_children).
    pub threads: usize,
    /// Stack size of each PHP thread, in bytes.
    pub stack_size: usize,
    /// Requests that may wait for a free thread.
    pub queue_len: usize,
    /// How requests are mapped onto scripts.
    pub policy: RequestPolicy,
    /// php-fpm's request_terminate_timeout: a hard limit per request.
    pub terminate_after: Option<Duration>,
    /// php-fpm's request_terminate_timeout_track_finished: the limit also
    /// covers PHP's request shutdown, after the script's end.
    pub terminate_track_finished: bool,
    /// How the pool scales its threads (php-fpm's `pm`); `threads` is the most.
    pub scaling: super::scaling::Scaling,
    /// php-fpm's pm.max_requests: threads are renewed after this many.
    pub max_requests: Option<u64>,
    /// The worker process's scoreboard, when a master started it.
    pub scoreboard: Option<std::sync::Arc<crate::sys::scoreboard::Scoreboard>>,
    /// The pool's name, access log and slowlog.
    pub logs: super::logs::RequestLogs,
    /// Where crash reports go when stderr is not the log (a worker whose
    /// stderr the master redirected); None: stderr.
    pub report_fd: Option<std::os::fd::RawFd>,
    /// Worker mode: the pool's worker script, run by threads of its own.
    pub worker: Option<super::WorkerScript>,
}

/// PHP failed to start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// PHP's start-up failed; PHP printed why.
    #[error("PHP start-up failed (see the messages above)")]
    Startup,
    /// The OS refused to spawn a thread.
    #[error("cannot start a PHP thread: {0}")]
    Thread(#[from] std::io::Error),
    /// A setting handed to PHP (a path, an ini entry) contains a NUL byte.
    #[error("invalid setting (contains a NUL byte): {0}")]
    Nul(#[from] std::ffi::NulError),
    /// Worker mode: the worker script kept failing before its first request.
    #[error(transparent)]
    WorkerBoot(#[from] super::worker_mode::BootFailed),
}

/// The running engine: php-main plus its workers.
pub struct Engine {
    pool: Pool,
    stack_size: usize,
    stop: mpsc::Sender<()>,
    main: JoinHandle<()>,
}

impl Engine {
    /// Starts PHP and the PHP threads; returns once they are ready.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let stack_size = config.stack_size;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let main = std::thread::Builder::new()
            .name("php-main".into())
            .stack_size(config.stack_size)
            .spawn(move || php_main(config, ready_tx, stop_rx))?;
        match ready_rx.recv() {
            Ok(Ok(pool)) => Ok(Engine {
                pool,
                stack_size,
                stop: stop_tx,
                main,
            }),
            Ok(Err(e)) => {
                let _ = main.join();
                Err(e)
            }
            Err(_) => {
                let _ = main.join();
                Err(EngineError::Startup)
            }
        }
    }

    /// The PHP threads, to submit requests to.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `script` `requests` times on a thread of its own, with no I/O,
    /// and returns the total time: the engine's floor cost per request.
    #[cfg(feature = "bench")]
    pub fn floor(&self, script: &std::path::Path, requests: u64) -> std::io::Result<Duration> {
        super::direct::run(script, requests, self.stack_size)
    }

    /// Runs `script` once, outside any server, and returns its output;
    /// phpinfo() prints plain text there, as `php-fpm -i` shows it.
    pub fn output_of(&self, script: &std::path::Path) -> std::io::Result<Vec<u8>> {
        // SAFETY: sets one field of the SAPI module; no request runs now
        // (output_of is for a started engine with no server).
        unsafe { ffi::tfpm_set_phpinfo_as_text(1) };
        let out = super::direct::output_of(script, self.stack_size);
        // SAFETY: as above; the request is over.
        unsafe { ffi::tfpm_set_phpinfo_as_text(0) };
        out
    }

    /// Lets queued requests finish, stops the threads and shuts PHP down.
    /// Blocks until done.
    pub fn shutdown(self) {
        self.pool.close();
        let _ = self.stop.send(());
        if self.main.join().is_err() {
            tracing::error!("php-main panicked during shutdown");
        }
    }
}

type Ready = mpsc::Sender<Result<Pool, EngineError>>;

fn php_main(config: EngineConfig, ready: Ready, stop: mpsc::Receiver<()>) {
    super::logs::set_stderr_log(config.logs.stderr);
    if let Err(e) = startup(&config) {
        let _ = ready.send(Err(e));
        return;
    }
    let spawned = Workers::spawn(WorkerConfig {
        threads: config.threads,
        stack_size: config.stack_size,
        queue_len: config.queue_len,
        policy: config.policy,
        terminate_after: config.terminate_after,
        terminate_track_finished: config.terminate_track_finished,
        scoreboard: config.scoreboard.clone(),
        logs: config.logs.clone(),
        max_requests: config.max_requests,
        scaling: config.scaling,
        app: config.worker.clone(),
    });
    let (pool, workers) = match spawned {
        Ok(pair) => pair,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return; // PHP stays up; the process is about to exit anyway
        }
    };
    if let Err(e) = workers.wait_booted() {
        pool.close();
        workers.join();
        // SAFETY: same thread as tfpm_startup, and every thread has exited.
        unsafe { ffi::tfpm_shutdown() };
        let _ = ready.send(Err(e.into()));
        return;
    }
    let _ = ready.send(Ok(pool.clone()));
    let _ = stop.recv();
    pool.close();
    workers.join();
    log_callback_stack_use();
    // SAFETY: same thread as tfpm_startup, and every worker has freed its
    // context and exited.
    unsafe { ffi::tfpm_shutdown() };
}

fn startup(config: &EngineConfig) -> Result<(), EngineError> {
    use std::os::fd::AsRawFd;
    let pool = CString::new(config.logs.pool.as_str())?;
    let pm = CString::new(config.scaling.pm().name())?;
    // The file stays open in `config` as long as PHP runs.
    let slowlog = config.logs.slowlog.as_ref();
    let ini_path = config
        .ini_path
        .as_ref()
        .map(|p| CString::new(p.as_os_str().as_encoded_bytes()))
        .transpose()?;
    let entries = CString::new(ini_entries(&config.ini_entries))?;
    let locked: String = config.locked_ini.iter().map(|k| format!("{k}\n")).collect();
    let locked = CString::new(locked)?;
    let exe = std::env::current_exe()
        .ok()
        .map(|p| CString::new(p.as_os_str().as_encoded_bytes()));
    let exe = exe.transpose()?;
    let c_config = ffi::tfpm_startup_config {
        ini_path: ini_path.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        ignore_ini: i32::from(config.ignore_ini),
        ini_entries: entries.as_ptr(),
        executable: exe.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        locked_ini: locked.as_ptr(),
        pool_name: pool.as_ptr(),
        process_manager: pm.as_ptr(),
        expected_threads: i32::try_from(config.threads).unwrap_or(i32::MAX),
        report_fd: config.report_fd.unwrap_or(libc::STDERR_FILENO),
        slowlog_fd: slowlog.map_or(-1, |s| s.file.as_raw_fd()),
        slowlog_depth: slowlog.map_or(20, |s| i32::try_from(s.depth).unwrap_or(i32::MAX)),
        slowlog_micros: slowlog.map_or(0, |s| i32::from(s.micros)),
        worker_mode: i32::from(config.worker.is_some()),
    };
    // SAFETY: called once, on php-main, before any worker exists; the strings
    // outlive the call (the shim copies them).
    let rc = unsafe { ffi::tfpm_startup(&c_config) };
    if rc == 0 {
        Ok(())
    } else {
        Err(EngineError::Startup)
    }
}

/// With TFPM_MEASURE_CALLBACK_STACK=1: how deep the host callbacks went.
fn log_callback_stack_use() {
    let mut deepest = [0usize; ffi::TFPM_STACK_SLOTS as usize];
    // SAFETY: the shim fills at most `deepest.len()` slots of the array.
    let slots = unsafe { ffi::tfpm_callback_stack_use(deepest.as_mut_ptr(), deepest.len()) };
    if slots == 0 {
        return;
    }
    let [write, flush, read_body, log, finish] = deepest;
    tracing::info!(
        write,
        flush,
        read_body,
        log,
        finish,
        "callback stack use in bytes (deepest seen)"
    );
}

/// `-d` entries in php.ini syntax, one per line.
fn ini_entries(entries: &[(String, String)]) -> String {
    entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}
