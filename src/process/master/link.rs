//! The master's end of each worker's control channel ([`super::super::control`]):
//! the link it writes to, the task that reads what the worker says, the
//! worker's exit, and the metrics summed over the ready workers (for
//! `/metrics`, a pool's status page, and systemd's STATUS line).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::super::control::{self, Message, ToMaster, ToWorker};
use super::super::systemd;
use super::{lock, Event, RETIRE_WAIT};
use crate::server::metrics::{Report, WorkerCounts};

/// The master's end of a worker's channel.
pub(super) struct Link {
    /// The worker's pool (its status page counts that pool only).
    pub(super) pool: usize,
    pub(super) writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Where the answer to the one request in flight goes.
    pub(super) answer: Mutex<Option<oneshot::Sender<Report>>>,
    /// Told when the worker, retired by a reload, no longer accepts.
    pub(super) retired: Mutex<Option<oneshot::Sender<()>>>,
}

impl Link {
    /// Retires the worker (a reload), which passes its kept connections
    /// back when `hand_over`, else closes them: true once it says it no
    /// longer accepts connections, false if it does not say so in time.
    pub(super) async fn retire(&self, hand_over: bool) -> bool {
        let (tx, rx) = oneshot::channel();
        *self.retired.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        if self
            .writer
            .lock()
            .await
            .write_all(&ToWorker::Retire { hand_over }.encode())
            .await
            .is_err()
        {
            return false;
        }
        matches!(tokio::time::timeout(RETIRE_WAIT, rx).await, Ok(Ok(())))
    }

    /// The worker's metrics, or None if it does not answer in time.
    pub(super) async fn metrics(&self) -> Option<Report> {
        let mut writer = self.writer.lock().await;
        let (tx, rx) = oneshot::channel();
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        writer
            .write_all(&ToWorker::MetricsPlease.encode())
            .await
            .ok()?;
        tokio::time::timeout(Duration::from_secs(2), rx)
            .await
            .ok()?
            .ok()
    }
}

/// The links of the ready workers, for the metrics endpoint.
pub(super) type Ready = Arc<Mutex<Vec<(u32, Arc<Link>)>>>;

/// The master's own counter: workers that exited without being asked.
pub(super) type Crashes = Arc<std::sync::atomic::AtomicU64>;

/// Reads a worker's channel ([`control`]): its readiness, its answers, and
/// its requests (the whole pool's metrics, summed, for its status page).
pub(super) async fn read_link(
    rd: OwnedReadHalf,
    link: Arc<Link>,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
    ready: Ready,
) {
    let mut rd = BufReader::new(rd);
    loop {
        let message = match control::read::<ToMaster, _>(&mut rd).await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::debug!(pid, "{e}");
                continue;
            }
            Err(_) => break,
        };
        match message {
            ToMaster::Ready => {
                let _ = events.send(Event::Ready(pid));
            }
            ToMaster::Idle => {
                let _ = events.send(Event::Idle(pid));
            }
            ToMaster::Retired => {
                let tx = link
                    .retired
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
            }
            ToMaster::PoolMetricsPlease => {
                let (ready, link) = (ready.clone(), link.clone());
                tokio::spawn(async move {
                    let body = sum_metrics(ready, None, Some(link.pool)).await;
                    let message = ToWorker::PoolMetrics(Box::new(body)).encode();
                    let _ = link.writer.lock().await.write_all(&message).await;
                });
            }
            ToMaster::Metrics(report) => {
                let answer = link.answer.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(tx) = answer {
                    let _ = tx.send(*report);
                }
            }
        }
    }
}

pub(super) async fn wait_child(
    mut child: tokio::process::Child,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
) {
    match child.wait().await {
        Ok(status) => {
            let _ = events.send(Event::Exited(pid, status));
        }
        Err(e) => tracing::error!(pid, "cannot wait for a worker: {e}"),
    }
}

/// Every ready worker's metrics (of pool `pool` only, if given), summed,
/// with the master's own counts when `crashes` is given.
pub(super) async fn sum_metrics(
    ready: Ready,
    crashes: Option<Crashes>,
    pool: Option<usize>,
) -> Report {
    let links: Vec<Arc<Link>> = lock(&ready)
        .iter()
        .filter(|(_, l)| pool.is_none_or(|p| l.pool == p))
        .map(|(_, l)| l.clone())
        .collect();
    let mut sum = Report::default();
    for link in &links {
        if let Some(report) = link.metrics().await {
            sum.merge(&report);
        }
    }
    if let Some(crashes) = crashes {
        sum.workers = Some(WorkerCounts {
            ready: links.len() as u64,
            crashes: crashes.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    sum
}

/// Keeps systemd's STATUS line up to date with the summed pool counts.
pub(super) async fn report_status(ready: Ready) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut tick = tokio::time::interval(systemd::STATUS_EVERY);
    loop {
        tick.tick().await;
        let all = sum_metrics(ready.clone(), None, None).await.all_pools();
        systemd::notify(&format!(
            "STATUS=threads: {} busy, {} idle; {} queued; {} requests served",
            all.active, all.idle, all.queued, all.accepted
        ));
    }
}
