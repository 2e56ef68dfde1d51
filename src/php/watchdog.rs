//! The watchdog behind php-fpm's `request_terminate_timeout` and
//! `request_slowlog_timeout`.
//!
//! One thread looks at every worker a few times per limit. A script still
//! running past the slowlog timeout is noted once: php-fpm's warning, the
//! pool's slow request count, and word to the thread to write its PHP stack
//! to the slowlog at its next interrupt point (see `tfpm_request_slowlog`),
//! with no signal, so the request goes on undisturbed. A request past the
//! limit is interrupted (see `tfpm_interrupt`): PHP ends it with a fatal
//! error at its next interrupt point, and a blocking system call returns
//! early. A worker still busy with that request a grace period later is stuck
//! in C code that ignores interrupts: it is retired and replaced. Once the
//! script has ended, PHP's request shutdown (shutdown functions,
//! destructors) runs outside both limits, as php-fpm's "Finishing" stage,
//! unless `request_terminate_timeout_track_finished` keeps the hard limit on.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pool::{retire, Shared, Thread};
use super::status::PoolStats;

/// php-fpm's `request_terminate_timeout` and
/// `request_terminate_timeout_track_finished`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Terminate {
    pub(super) after: Duration,
    /// The limit also covers PHP's request shutdown.
    pub(super) track_finished: bool,
}

/// Starts the watchdog, if the pool has a time limit (`terminate`) or a
/// slowlog to watch.
pub(super) fn spawn(
    shared: Arc<Shared>,
    terminate: Option<Terminate>,
) -> std::io::Result<Option<JoinHandle<()>>> {
    let slow = shared.logs.slowlog.as_ref().map(|s| s.after);
    let limits = [terminate.map(|t| t.after), slow];
    let Some(shortest) = limits.into_iter().flatten().min() else {
        return Ok(None);
    };
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    std::thread::Builder::new()
        .name("php-watchdog".into())
        .spawn(move || run(&shared, tick, terminate, slow))
        .map(Some)
}

fn run(shared: &Arc<Shared>, tick: Duration, terminate: Option<Terminate>, slow: Option<Duration>) {
    while !shared.stopping.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        for thread in shared.threads() {
            if let Some(after) = slow {
                slow_check(&thread, shared, after);
            }
            let Some(limit) = terminate else {
                continue;
            };
            if check(&thread, &shared.stats, limit) {
                retire(shared, &thread);
            }
        }
    }
}

/// Notes a script running past `after`, once per request: php-fpm's
/// warning, the slow request count, and the slowlog entry.
fn slow_check(thread: &Thread, shared: &Shared, after: Duration) {
    let mut current = thread.current();
    let Some(started) = current.started else {
        return;
    };
    let ran = started.elapsed();
    if current.slow_logged || current.finishing || ran < after || !thread.running(current.seq) {
        return;
    }
    current.slow_logged = true;
    let _entered = current.span.clone().entered();
    let info = &current.info;
    let (method, uri, query) = (
        String::from_utf8_lossy(&info.method),
        String::from_utf8_lossy(&info.uri),
        String::from_utf8_lossy(&info.query),
    );
    tracing::warn!(
        "[pool {}] child {}, script '{}' (request: \"{} {}{}{}\") executing too slow ({}.{:06} sec), logging",
        shared.logs.pool,
        thread.tid(),
        purified(&current.script),
        cut(&method, 15),
        cut(&uri, 127),
        if query.is_empty() { "" } else { "?" },
        cut(&query, 511),
        ran.as_secs(),
        ran.subsec_micros()
    );
    shared.stats.slow();
    thread.request_slowlog(current.seq);
}

/// A script name as php-fpm logs it: bytes outside printable ASCII as
/// '.', at most 255 of them.
fn purified(script: &str) -> String {
    let dot = |b: &u8| {
        if (b' '..=0x7f).contains(b) {
            *b as char
        } else {
            '.'
        }
    };
    script.as_bytes().iter().take(255).map(dot).collect()
}

/// `s` cut to `max` bytes at a character boundary (php-fpm's fixed fields).
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Interrupts an overdue request; returns true if the worker is stuck.
fn check(thread: &Thread, stats: &PoolStats, terminate: Terminate) -> bool {
    let now = Instant::now();
    let limit = terminate.after;
    let grace = limit.clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut current = thread.current();
    let Some(started) = current.started else {
        return false;
    };
    if current.finishing && !terminate.track_finished && current.interrupted.is_none() {
        return false;
    }
    let _entered = current.span.clone().entered();
    match current.interrupted {
        None if now.duration_since(started) >= limit => {
            tracing::warn!(
                thread = %thread.name,
                script = %current.script,
                "execution timed out ({:.3} sec), terminating (request_terminate_timeout)",
                now.duration_since(started).as_secs_f64()
            );
            thread.interrupt(current.seq, limit);
            current.interrupted = Some(now);
            stats.terminated();
            false
        }
        Some(at) if now.duration_since(at) >= grace => {
            tracing::error!(
                thread = %thread.name,
                script = %current.script,
                "thread did not stop {:.1} sec after being terminated; retiring it and starting a replacement",
                grace.as_secs_f64()
            );
            // The client gets its error now, not when (if) the thread returns.
            if let Some(sink) = current.sink.take() {
                if !sink.abandon() {
                    tracing::warn!(thread = %thread.name, "could not end the stuck request's response");
                }
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_are_purified_as_php_fpm_does() {
        assert_eq!(purified("/srv/a b.php"), "/srv/a b.php");
        assert_eq!(purified("/srv/é\n.php"), "/srv/....php");
        assert_eq!(purified(&"x".repeat(300)).len(), 255);
        assert_eq!(cut("ééé", 3), "é");
    }
}
