//! The pool's status page (php-fpm's `pm.status_path`), answered by the
//! connection itself, without a PHP thread: it works while every thread is
//! busy. The pool-wide counts are every worker's, summed by the master
//! (asked through a [`PoolMetrics`] source, the worker's link to it); the
//! per-thread rows of `?full` are this worker's threads.
//! [`super::status_page`] renders it as php-fpm does.

use std::time::SystemTime;

use bytes::Bytes;

use super::metrics::{self, Report};
use super::status_page::{
    self, LocalTime, Pm, PoolStatus, ProcState, ProcStatus, WorkerScriptStatus,
};
use crate::fcgi::nv::Params;
use crate::php::{Pool, PoolCounts, ThreadStatus};
use crate::sys::os;

/// Where the page gets the whole pool's metrics (summed over every worker
/// by the master); None when no answer comes in time.
pub type PoolMetrics = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Report>> + Send>>
        + Send
        + Sync,
>;

/// What a pool's status page needs to know before its worker starts.
#[derive(Debug, Clone)]
pub struct StatusConfig {
    /// `pm.status_path`, matched against SCRIPT_NAME.
    pub path: String,
    /// The pool's name, as the page prints it.
    pub pool: String,
    /// The pool's `pm`, as the page prints it.
    pub pm: Pm,
    /// Requests that may wait for a thread (shown as "listen queue len").
    pub queue_capacity: u64,
}

impl StatusConfig {
    /// The page, once the worker's engine and master link exist.
    pub fn serving(self, pool: Pool, pool_metrics: PoolMetrics) -> StatusPage {
        StatusPage {
            config: self,
            started: SystemTime::now(),
            pool,
            pool_metrics,
        }
    }
}

/// A worker's status page.
pub struct StatusPage {
    config: StatusConfig,
    started: SystemTime,
    pool: Pool,
    pool_metrics: PoolMetrics,
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatusPage({})", self.config.path)
    }
}

impl StatusPage {
    /// Whether a request with these params asks for the status page.
    pub fn is_for(&self, params: &Params) -> bool {
        params.get(b"SCRIPT_NAME").map(|v| v.as_ref()) == Some(self.config.path.as_bytes())
    }

    /// The whole CGI response (headers and body) for this request.
    pub async fn answer(&self, params: &Params) -> Bytes {
        let query = status_page::parse_query(
            params.get(b"QUERY_STRING").map_or(&[][..], |q| q),
            status_page::Dialect::of_linked_php(),
        );
        let head = params
            .get(b"REQUEST_METHOD")
            .is_some_and(|m| m.as_ref() == b"HEAD");
        // php-fpm's child counts the status request before it answers it.
        self.pool.count_answered_by_daemon();
        let rendered = match head {
            true => status_page::render_head(),
            false => {
                let status = self.status().await;
                status_page::render(&status, query.format, query.full, SystemTime::now())
            }
        };
        let mut out = String::new();
        // Sent by PHP before any header of the page, as under php-fpm.
        if crate::php::expose_php() {
            out.push_str(&format!(
                "X-Powered-By: PHP/{}\r\n",
                crate::php::php_version()
            ));
        }
        for (name, value) in &rendered.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&rendered.body);
        Bytes::from(out)
    }

    async fn status(&self) -> PoolStatus {
        let own = || metrics::report(&self.config.pool, &self.pool.stats());
        let report = (self.pool_metrics)().await.unwrap_or_else(own);
        let all = report.all_pools();
        let counts = pool_counts(&report);
        PoolStatus {
            pool: self.config.pool.clone(),
            process_manager: self.config.pm,
            start_time: local(self.started),
            accepted_conn: counts.accepted,
            listen_queue: counts.queued,
            max_listen_queue: counts.max_queued,
            listen_queue_len: self.config.queue_capacity,
            idle_processes: counts.idle,
            active_processes: counts.active,
            max_active_processes: counts.max_active,
            max_children_reached: counts.max_children_reached,
            slow_requests: counts.slow,
            dialect: status_page::Dialect::of_linked_php(),
            memory_peak: crate::php::php_at_least(8, 4).then_some(report.memory_peak),
            worker_script: self.pool.worker_script().map(|script| WorkerScriptStatus {
                script: script.display().to_string(),
                boots: all.script_boots,
                requests: all.script_requests,
                busy_threads: all.script_busy,
            }),
            procs: self.pool.threads_status().iter().map(proc_status).collect(),
        }
    }
}

/// The pool-wide counts of a report of one pool, a worker's or summed by
/// the master (the status page's, and `fpm_get_status()`'s).
pub fn pool_counts(report: &Report) -> PoolCounts {
    let all = report.all_pools();
    PoolCounts {
        accepted: all.accepted,
        queued: all.queued,
        max_queued: all.max_queued,
        idle: all.idle,
        active: all.active,
        max_active: all.max_active,
        max_children_reached: all.max_children_reached,
        slow: all.slow,
    }
}

/// A thread as a row of `?full`: its Linux task id stands for php-fpm's
/// child pid; the last request's CPU is the thread's own CPU time.
fn proc_status(t: &ThreadStatus) -> ProcStatus {
    let r = &t.request;
    ProcStatus {
        pid: t.tid,
        state: match (t.busy, t.finishing) {
            (true, false) => ProcState::Running,
            (true, true) => ProcState::Finishing,
            (false, _) => ProcState::Idle,
        },
        start_time: local(t.started),
        requests: t.requests,
        request_duration_us: t.request_duration.as_micros() as u64,
        request_method: cut(&String::from_utf8_lossy(&r.method), 15),
        request_uri: cut(&String::from_utf8_lossy(&r.uri), 127),
        query_string: cut(&String::from_utf8_lossy(&r.query), 511),
        content_length: r.content_length,
        user: cut(&String::from_utf8_lossy(&r.user), 31),
        script: cut(&r.script, 255),
        last_request_cpu: t.last_cpu_percent,
        last_request_memory: t.last_memory,
    }
}

fn local(time: SystemTime) -> LocalTime {
    LocalTime {
        time,
        utc_offset: os::utc_offset(time),
    }
}

/// `s` cut to `max` bytes at a character boundary, as php-fpm's fixed fields.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_at_character_boundaries() {
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("ab", 15), "ab");
    }
}
