//! The command line's worker mode options (`--worker` and friends), the
//! equivalents of the pool directives `worker`, `worker.num`,
//! `worker.max_requests`, `worker.max_consecutive_failures` and
//! `worker.match`.

use std::path::PathBuf;

use clap::Args;

use crate::php::{EngineConfig, WorkerScript};

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Worker mode: each worker thread boots this script once and serves
    /// the requests for it through frankenphp_handle_request() (as
    /// FrankenPHP does). Requests for other scripts run as usual.
    #[arg(long = "worker", value_name = "SCRIPT")]
    pub worker_script: Option<PathBuf>,

    /// Threads that run the worker script (default: --threads), on top of
    /// the threads for other scripts.
    #[arg(long = "worker-threads", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub worker_threads: Option<u32>,

    /// Requests a worker script serves before it starts again. 0: no limit.
    #[arg(long = "worker-max-requests", value_name = "N", default_value_t = 0)]
    pub worker_max_requests: u64,

    /// Failed boots in a row (the script ends before it asks for a
    /// request) after which tfpm does not start (or a reload is abandoned),
    /// and, once it served, its requests get a 503 while it keeps trying.
    /// -1: never.
    #[arg(
        long = "worker-max-failures",
        value_name = "N",
        default_value_t = 6,
        allow_negative_numbers = true
    )]
    pub worker_max_failures: i64,

    /// Also route requests whose URI starts with this prefix to the worker script.
    #[arg(long = "worker-match", value_name = "PREFIX")]
    pub worker_match: Option<String>,

    /// Development: start the worker script again when a code file under
    /// this directory changes (.php, .twig, .yaml, .env, ...).
    #[arg(long = "worker-watch", value_name = "DIR")]
    pub worker_watch: Option<PathBuf>,
}

impl WorkerArgs {
    /// The worker script these options describe, with `threads` PHP threads
    /// by default; None without `--worker`.
    pub fn script(&self, threads: u32) -> Option<WorkerScript> {
        let script = self.worker_script.clone()?;
        let script = std::path::absolute(&script).unwrap_or(script);
        Some(WorkerScript {
            script,
            uri_prefix: self.worker_match.clone(),
            threads: self.worker_threads.unwrap_or(threads) as usize,
            max_requests: Some(self.worker_max_requests).filter(|n| *n > 0),
            max_failures: u32::try_from(self.worker_max_failures).ok(),
            env: Vec::new(),
            watch: self.worker_watch.clone(),
        })
    }
}

/// A worker process's share of its pool's worker script threads: as its
/// share of the pool's other threads (`threads` of `total`), at least one.
pub fn share_threads(engine: &mut EngineConfig, threads: usize, total: usize) {
    if let Some(worker) = engine.worker.as_mut() {
        worker.threads = (worker.threads * threads).div_ceil(total.max(1)).max(1);
    }
}
