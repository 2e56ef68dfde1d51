//! A [`Report`] in the Prometheus text exposition format (0.0.4): each
//! family's help and type once, then its samples, one per pool for the
//! pools' series.

use std::fmt::Write as _;

use super::report::Report;
use super::{BUCKETS, CLASSES, TIMEOUT_KINDS};
use crate::php::PoolSnapshot;

/// A pool series: name, type, help, and its value in a pool's counters.
type PoolSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PoolSnapshot) -> u64,
);

/// The pools' own series, each with a `pool` label.
const POOL_SERIES: [PoolSeries; 13] = [
    ("tfpm_threads_busy", "gauge", "PHP threads running a request.", |p| p.active),
    ("tfpm_threads_idle", "gauge", "PHP threads waiting for a request.", |p| p.idle),
    ("tfpm_threads_total", "gauge", "PHP threads in the pool.", |p| p.threads),
    ("tfpm_queue_depth", "gauge", "Requests waiting for a free PHP thread.", |p| p.queued),
    ("tfpm_requests_accepted_total", "counter", "Requests a PHP thread started.", |p| p.accepted),
    (
        "tfpm_max_children_reached_total",
        "counter",
        "Times a request started with every PHP thread busy.",
        |p| p.max_children_reached,
    ),
    (
        "tfpm_slow_requests_total",
        "counter",
        "Requests still running after request_slowlog_timeout.",
        |p| p.slow,
    ),
    (
        "tfpm_thread_restarts_total",
        "counter",
        "Stuck PHP threads retired and replaced.",
        |p| p.restarts,
    ),
    (
        "tfpm_threads_busy_max",
        "gauge",
        "Most PHP threads busy at once since start.",
        |p| p.max_active,
    ),
    (
        "tfpm_queue_depth_max",
        "gauge",
        "Most requests waiting at once since start.",
        |p| p.max_queued,
    ),
    (
        "tfpm_worker_script_boots_total",
        "counter",
        "Times the worker script started (worker mode): each thread's first boot and every restart.",
        |p| p.script_boots,
    ),
    (
        "tfpm_worker_script_requests_total",
        "counter",
        "Requests served by the worker script (worker mode).",
        |p| p.script_requests,
    ),
    (
        "tfpm_worker_script_threads_busy",
        "gauge",
        "Worker script threads running a request (worker mode).",
        |p| p.script_busy,
    ),
];

/// The whole report as a scrape's body.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    render_pools(&mut out, report);
    let name = "tfpm_memory_peak_bytes";
    let help = "The largest memory peak of a request at its end (php-fpm's memory peak).";
    family(&mut out, name, "gauge", help);
    let _ = writeln!(out, "{name} {}", report.memory_peak);
    render_responses(&mut out, report);
    render_durations(&mut out, report);
    render_timeouts(&mut out, report);
    render_bytes(&mut out, report);
    if let Some(workers) = report.workers {
        let help = "Worker processes ready to serve.";
        family(&mut out, "tfpm_workers", "gauge", help);
        let _ = writeln!(out, "tfpm_workers {}", workers.ready);
        let name = "tfpm_worker_crashes_total";
        let help = "Worker processes that exited without being asked to (replaced at once).";
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", workers.crashes);
    }
    out
}

fn render_pools(out: &mut String, report: &Report) {
    for (name, kind, help, value) in POOL_SERIES {
        family(out, name, kind, help);
        for pool in &report.pools {
            let label = label_value(&pool.name);
            let _ = writeln!(out, "{name}{{pool=\"{label}\"}} {}", value(&pool.counts));
        }
    }
}

/// A label value as the text format escapes it: backslash, quote, newline.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_responses(out: &mut String, report: &Report) {
    let name = "tfpm_responses_total";
    let help = "Responses sent, by HTTP status class.";
    family(out, name, "counter", help);
    for (class, n) in CLASSES.iter().zip(report.server.responses) {
        let _ = writeln!(out, "{name}{{class=\"{class}\"}} {n}");
    }
}

fn render_durations(out: &mut String, report: &Report) {
    let name = "tfpm_request_duration_seconds";
    let help = "Time from a request's params to its end.";
    family(out, name, "histogram", help);
    let mut count = 0;
    for (i, n) in report.server.durations.iter().enumerate() {
        count += n;
        let le = BUCKETS.get(i).map_or("+Inf".to_string(), f64::to_string);
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
    }
    let sum = report.server.duration_sum_us as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
}

fn render_timeouts(out: &mut String, report: &Report) {
    let name = "tfpm_timeouts_total";
    let help = "Timeouts, by kind: what the peer or the script was late with.";
    family(out, name, "counter", help);
    for (kind, n) in TIMEOUT_KINDS.iter().zip(report.server.timeouts) {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    let terminated = report.all_pools().terminated;
    let _ = writeln!(out, "{name}{{kind=\"request_terminate\"}} {terminated}");
}

fn render_bytes(out: &mut String, report: &Report) {
    let s = &report.server;
    let series = [
        (
            "tfpm_fastcgi_read_bytes_total",
            "FastCGI bytes read from web servers.",
            s.bytes_in,
        ),
        (
            "tfpm_fastcgi_written_bytes_total",
            "FastCGI bytes written to web servers.",
            s.bytes_out,
        ),
        (
            "tfpm_connections_adopted_total",
            "Kept connections taken over from a retiring worker (a reload, an idle ondemand worker).",
            s.adopted,
        ),
    ];
    for (name, help, n) in series {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::PoolReport;
    use super::*;

    fn pool(name: &str, active: u64) -> PoolReport {
        let counts = PoolSnapshot {
            active,
            ..PoolSnapshot::default()
        };
        PoolReport {
            name: name.into(),
            counts,
        }
    }

    #[test]
    fn every_pool_series_carries_the_pools_name() {
        let report = Report {
            pools: vec![pool("al\"pha", 0)],
            ..Report::default()
        };
        let text = render(&report);
        let pool_lines: Vec<&str> = text.lines().filter(|l| l.contains("pool=")).collect();
        // Ten thread and queue series, three of worker mode.
        assert_eq!(pool_lines.len(), 13, "{text}");
        let labelled = |l: &&str| l.contains("{pool=\"al\\\"pha\"}");
        assert!(pool_lines.iter().all(labelled), "{text}");
    }

    #[test]
    fn each_family_lists_every_pool_under_one_header() {
        let report = Report {
            pools: vec![pool("alpha", 2), pool("beta", 5)],
            ..Report::default()
        };
        let text = render(&report);
        let busy = "tfpm_threads_busy{";
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| l.starts_with(busy)).unwrap();
        assert_eq!(lines[at - 1], "# TYPE tfpm_threads_busy gauge");
        assert_eq!(lines[at], "tfpm_threads_busy{pool=\"alpha\"} 2");
        assert_eq!(lines[at + 1], "tfpm_threads_busy{pool=\"beta\"} 5");
        assert_eq!(text.matches("# TYPE tfpm_threads_busy ").count(), 1);
        assert!(
            !text.contains("tfpm_workers"),
            "a worker's report has no master series"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut report = Report::default();
        report.server.durations[0] = 1;
        report.server.durations[BUCKETS.len()] = 1;
        report.server.duration_sum_us = 1_500_000;
        let text = render(&report);
        let inf = text.lines().find(|l| l.contains("le=\"+Inf\"")).unwrap();
        let count = text.lines().find(|l| l.contains("_count")).unwrap();
        assert_eq!(inf, "tfpm_request_duration_seconds_bucket{le=\"+Inf\"} 2");
        assert_eq!(count, "tfpm_request_duration_seconds_count 2");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(
            text.contains("tfpm_request_duration_seconds_sum 1.5\n"),
            "{text}"
        );
    }
}
