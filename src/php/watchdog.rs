//! The watchdog behind php-fpm's `request_terminate_timeout`.
//!
//! One thread looks at every worker a few times per limit. A request past the
//! limit is interrupted (see `tfpm_interrupt`): PHP ends it with a fatal
//! error at its next interrupt point, and a blocking system call returns
//! early. A worker still busy with that request a grace period later is stuck
//! in C code that ignores interrupts: it is retired and replaced.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pool::{retire, Shared, Worker};
use super::status::PoolStats;

pub(super) fn spawn(shared: Arc<Shared>, limit: Duration) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("php-watchdog".into())
        .spawn(move || run(&shared, limit))
}

fn run(shared: &Arc<Shared>, limit: Duration) {
    let tick = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let grace = limit.clamp(Duration::from_secs(1), Duration::from_secs(10));
    while !shared.stopping.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        for worker in shared.workers() {
            if check(&worker, &shared.stats, limit, grace) {
                retire(shared, &worker);
            }
        }
    }
}

/// Interrupts an overdue request; returns true if the worker is stuck.
fn check(worker: &Worker, stats: &PoolStats, limit: Duration, grace: Duration) -> bool {
    let now = Instant::now();
    let mut current = worker.current();
    let Some(started) = current.started else {
        return false;
    };
    let _entered = current.span.clone().entered();
    match current.interrupted {
        None if now.duration_since(started) >= limit => {
            tracing::warn!(
                thread = %worker.name,
                script = %current.script,
                "execution timed out ({:.3} sec), terminating (request_terminate_timeout)",
                now.duration_since(started).as_secs_f64()
            );
            worker.interrupt(current.seq, limit);
            current.interrupted = Some(now);
            stats.terminated();
            false
        }
        Some(at) if now.duration_since(at) >= grace => {
            tracing::error!(
                thread = %worker.name,
                script = %current.script,
                "thread did not stop {:.1} sec after being terminated; retiring it and starting a replacement",
                grace.as_secs_f64()
            );
            // The client gets its error now, not when (if) the thread returns.
            if let Some(sink) = current.sink.take() {
                if !sink.abandon() {
                    tracing::warn!(thread = %worker.name, "could not end the stuck request's response");
                }
            }
            true
        }
        _ => false,
    }
}
