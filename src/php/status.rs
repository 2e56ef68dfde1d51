//! The pool's counters, as php-fpm reports them in `fpm_get_status()` (and
//! as the metrics endpoint exports them): requests accepted, threads busy and
//! idle, the queue, the high-water marks, and the watchdog's terminations,
//! slow requests and thread restarts; and each thread's row of the status
//! page ([`ThreadStatus`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Counters shared by the pool's threads and the queue's senders.
pub(super) struct PoolStats {
    started: SystemTime,
    /// pm.max_children.
    threads: usize,
    /// Threads running now (fewer than `threads` with pm dynamic or ondemand).
    live: Arc<AtomicUsize>,
    queue_capacity: usize,
    accepted: AtomicU64,
    busy: Arc<AtomicUsize>,
    max_active: AtomicUsize,
    max_children_reached: AtomicU64,
    queued: AtomicUsize,
    max_queued: AtomicUsize,
    terminated: AtomicU64,
    slow: AtomicU64,
    restarts: AtomicU64,
    /// Worker mode: boots of the worker script, its requests, and its
    /// threads running one now (kept out of the counts above, which are
    /// php-fpm's and describe the pool's other threads).
    script_boots: AtomicU64,
    script_requests: AtomicU64,
    script_busy: AtomicUsize,
}

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Threads in the pool, busy or idle.
    pub threads: u64,
    /// When the pool started, in Unix seconds ("start time").
    pub start_time: i64,
    /// Requests taken since the start ("accepted conn").
    pub accepted: u64,
    /// Requests waiting for a thread now ("listen queue").
    pub queued: u64,
    /// The most requests that waited at once ("max listen queue").
    pub max_queued: u64,
    /// How many requests may wait for a thread ("listen queue len").
    pub queue_capacity: u64,
    /// Threads waiting for a request ("idle processes").
    pub idle: u64,
    /// Threads running a request ("active processes").
    pub active: u64,
    /// The most threads busy at once ("max active processes").
    pub max_active: u64,
    /// Times a request had to wait with every thread the pool may have
    /// busy ("max children reached").
    pub max_children_reached: u64,
    /// Requests ended by request_terminate_timeout.
    pub terminated: u64,
    /// Requests that ran past request_slowlog_timeout.
    pub slow: u64,
    /// Stuck threads retired and replaced.
    pub restarts: u64,
    /// Worker mode: times the worker script started (first boots and
    /// restarts).
    pub script_boots: u64,
    /// Worker mode: requests the worker script took.
    pub script_requests: u64,
    /// Worker mode: its threads running a request now.
    pub script_busy: u64,
}

impl Snapshot {
    /// Adds another process's reading of the same pool: counts add up, the
    /// high-water marks keep the larger, the start is the earlier.
    pub fn merge(&mut self, other: &Snapshot) {
        self.start_time = match (self.start_time, other.start_time) {
            (0, t) | (t, 0) => t,
            (a, b) => a.min(b),
        };
        self.max_queued = self.max_queued.max(other.max_queued);
        self.max_active = self.max_active.max(other.max_active);
        let mut theirs = *other;
        for (mine, theirs) in self.sums().into_iter().zip(theirs.sums()) {
            *mine += *theirs;
        }
    }

    /// The fields that add up across processes.
    fn sums(&mut self) -> [&mut u64; 13] {
        [
            &mut self.threads,
            &mut self.accepted,
            &mut self.queued,
            &mut self.queue_capacity,
            &mut self.idle,
            &mut self.active,
            &mut self.max_children_reached,
            &mut self.terminated,
            &mut self.slow,
            &mut self.restarts,
            &mut self.script_boots,
            &mut self.script_requests,
            &mut self.script_busy,
        ]
    }
}

/// The process's pool, for `fpm_get_status()`; the first engine started.
static CURRENT: OnceLock<Arc<PoolStats>> = OnceLock::new();

/// The whole pool's counts, summed over every worker process by the
/// master: what `fpm_get_status()` reports (as php-fpm's reads every
/// child's slot of its scoreboard), in place of this process's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// [`Snapshot::accepted`], summed.
    pub accepted: u64,
    /// [`Snapshot::queued`], summed.
    pub queued: u64,
    /// [`Snapshot::max_queued`], the largest.
    pub max_queued: u64,
    /// [`Snapshot::idle`], summed.
    pub idle: u64,
    /// [`Snapshot::active`], summed.
    pub active: u64,
    /// [`Snapshot::max_active`], the largest.
    pub max_active: u64,
    /// [`Snapshot::max_children_reached`], summed.
    pub max_children_reached: u64,
    /// [`Snapshot::slow`], summed.
    pub slow: u64,
}

/// Where `fpm_get_status()` gets the whole pool's counts; None when they
/// cannot be had (then it reports this process's).
pub type PoolCountsSource = Box<dyn Fn() -> Option<PoolCounts> + Send + Sync>;

static POOL_COUNTS: OnceLock<PoolCountsSource> = OnceLock::new();

/// Tells `fpm_get_status()` where the whole pool's counts come from (a
/// worker process: its master). Called once; later calls change nothing.
pub fn set_pool_counts_source(source: PoolCountsSource) {
    let _ = POOL_COUNTS.set(source);
}

/// The whole pool's counts, if a source is set and answers.
pub(super) fn pool_counts() -> Option<PoolCounts> {
    let source = POOL_COUNTS.get()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(source)).unwrap_or(None)
}

impl PoolStats {
    pub(super) fn new(
        threads: usize,
        queue_capacity: usize,
        busy: Arc<AtomicUsize>,
        live: Arc<AtomicUsize>,
    ) -> Arc<Self> {
        let stats = Arc::new(PoolStats {
            started: SystemTime::now(),
            threads,
            live,
            queue_capacity,
            accepted: AtomicU64::new(0),
            busy,
            max_active: AtomicUsize::new(0),
            max_children_reached: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            max_queued: AtomicUsize::new(0),
            terminated: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            script_boots: AtomicU64::new(0),
            script_requests: AtomicU64::new(0),
            script_busy: AtomicUsize::new(0),
        });
        let _ = CURRENT.set(stats.clone());
        stats
    }

    /// The process's pool, if an engine runs.
    pub(super) fn current() -> Option<&'static Arc<PoolStats>> {
        CURRENT.get()
    }

    /// A request went into the queue. It waits (php-fpm's "listen queue")
    /// only if no idle thread is there for it; waiting with every thread
    /// the pool may have busy is php-fpm's "max children reached".
    pub(super) fn queued(&self) {
        let now = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        let live = self.live.load(Ordering::Relaxed);
        let waiting = now.saturating_sub(self.idle(live));
        self.max_queued.fetch_max(waiting, Ordering::Relaxed);
        if waiting > 0 && live >= self.threads {
            self.max_children_reached.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn idle(&self, live: usize) -> usize {
        live.saturating_sub(self.busy.load(Ordering::Relaxed))
    }

    /// A request could not be queued after all.
    pub(super) fn unqueued(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// A thread took a request off the queue and starts it.
    pub(super) fn started(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let active = self.busy.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_active.fetch_max(active, Ordering::Relaxed);
    }

    /// A request the daemon answered itself (the status page), which
    /// php-fpm's child counts as accepted like any other.
    pub(super) fn answered_by_daemon(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// The thread is done with its request.
    pub(super) fn finished(&self) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }

    /// The watchdog interrupted a request past its time limit.
    pub(super) fn terminated(&self) {
        self.terminated.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ran past request_slowlog_timeout.
    pub(super) fn slow(&self) {
        self.slow.fetch_add(1, Ordering::Relaxed);
    }

    /// Worker mode: the worker script starts (a thread's first boot or a restart).
    pub(super) fn script_booted(&self) {
        self.script_boots.fetch_add(1, Ordering::Relaxed);
    }

    /// Worker mode: a thread takes a request for the worker script. It
    /// counts as accepted, as php-fpm's "accepted conn" counts every request.
    pub(super) fn script_started(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.script_requests.fetch_add(1, Ordering::Relaxed);
        self.script_busy.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn script_finished(&self) {
        self.script_busy.fetch_sub(1, Ordering::Relaxed);
    }

    /// A stuck thread was retired and replaced.
    pub(super) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let active = self.busy.load(Ordering::Relaxed);
        let live = self.live.load(Ordering::Relaxed);
        let since_epoch = self.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        Snapshot {
            threads: live as u64,
            start_time: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            accepted: self.accepted.load(Ordering::Relaxed),
            queued: self
                .queued
                .load(Ordering::Relaxed)
                .saturating_sub(live.saturating_sub(active)) as u64,
            max_queued: self.max_queued.load(Ordering::Relaxed) as u64,
            queue_capacity: self.queue_capacity as u64,
            idle: live.saturating_sub(active) as u64,
            active: active as u64,
            max_active: self.max_active.load(Ordering::Relaxed) as u64,
            max_children_reached: self.max_children_reached.load(Ordering::Relaxed),
            terminated: self.terminated.load(Ordering::Relaxed),
            slow: self.slow.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            script_boots: self.script_boots.load(Ordering::Relaxed),
            script_requests: self.script_requests.load(Ordering::Relaxed),
            script_busy: self.script_busy.load(Ordering::Relaxed) as u64,
        }
    }
}

/// One PHP thread as the status page shows it (php-fpm's per-process part).
#[derive(Debug, Clone)]
pub struct ThreadStatus {
    /// The thread's id (Linux task id).
    pub tid: u32,
    /// When the thread started ("start time").
    pub started: std::time::SystemTime,
    /// Requests it has taken.
    pub requests: u64,
    /// Running a request now.
    pub busy: bool,
    /// Its script has ended, and PHP's request shutdown runs (php-fpm's
    /// "Finishing").
    pub finishing: bool,
    /// How long the current (or last) request has run.
    pub request_duration: std::time::Duration,
    /// The current (or last) request.
    pub request: RequestInfo,
    /// The last request's CPU time over its duration, in percent (0 while a
    /// request runs, as php-fpm shows it).
    pub last_cpu_percent: f64,
    /// The last request's peak memory in bytes (0 while a request runs).
    pub last_memory: u64,
}

/// What the status page shows of a thread's current or last request: the
/// params' own bytes (shared, not copied: this is taken for every request).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// REQUEST_METHOD.
    pub method: bytes::Bytes,
    /// SCRIPT_NAME, which php-fpm shows as the "request URI".
    pub uri: bytes::Bytes,
    /// QUERY_STRING.
    pub query: bytes::Bytes,
    /// CONTENT_LENGTH; 0 when missing or not a number.
    pub content_length: u64,
    /// REMOTE_USER, the HTTP basic auth user.
    pub user: bytes::Bytes,
    /// The script file PHP runs for it; empty when none was found. Shared
    /// with the request's own context, not copied.
    pub script: std::sync::Arc<str>,
}

impl RequestInfo {
    pub(super) fn of(params: &crate::fcgi::nv::Params) -> RequestInfo {
        let value = |name: &[u8]| params.get(name).cloned().unwrap_or_default();
        let length = params
            .get(b"CONTENT_LENGTH")
            .and_then(|v| std::str::from_utf8(v).ok());
        RequestInfo {
            method: value(b"REQUEST_METHOD"),
            uri: value(b"SCRIPT_NAME"),
            query: value(b"QUERY_STRING"),
            content_length: length.and_then(|v| v.trim().parse().ok()).unwrap_or(0),
            user: value(b"REMOTE_USER"),
            script: NO_SCRIPT.with(Arc::clone),
        }
    }
}

thread_local! {
    /// The script until the request's own is known: one empty string per
    /// thread, where `Arc::from("")` would allocate for every request.
    static NO_SCRIPT: Arc<str> = Arc::from("");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_requests_through_the_pool() {
        let busy = Arc::new(AtomicUsize::new(0));
        let stats = PoolStats::new(2, 10, busy, Arc::new(AtomicUsize::new(2)));
        // Two requests find two idle threads: nobody waits.
        stats.queued();
        stats.queued();
        stats.started();
        stats.started();
        let s = stats.snapshot();
        assert_eq!((s.accepted, s.active, s.idle, s.queued), (2, 2, 0, 0));
        assert_eq!(
            (s.max_active, s.max_queued, s.max_children_reached),
            (2, 0, 0)
        );
        // A third finds both busy: it waits, with the pool at its maximum.
        stats.queued();
        let s = stats.snapshot();
        assert_eq!((s.queued, s.max_queued, s.max_children_reached), (1, 1, 1));
        stats.started();
        stats.finished();
        stats.finished();
        assert_eq!(stats.snapshot().idle, 1);
        stats.terminated();
        stats.restarted();
        stats.slow();
        let s = stats.snapshot();
        assert_eq!((s.threads, s.terminated, s.restarts, s.slow), (2, 1, 1, 1));
    }
}
