//! A process's metrics as data ([`Report`]): what a worker sends its master
//! on the control channel, and what the master sums over its workers for
//! `/metrics`, a pool's status page, `fpm_get_status()` and systemd. Sums
//! keep each pool apart, add counts and keep the largest high-water mark.
//!
//! On the channel a report is a few lines of decimal numbers:
//!
//! ```text
//! pool <start_time> <max_queued> <max_active> <13 counts> <name>
//! peak <bytes>
//! server <28 counts>
//! workers <ready> <crashes>
//! ```

use std::fmt::Write as _;

use super::{BUCKETS, CLASSES, TIMEOUT_KINDS};
use crate::php::PoolSnapshot;

/// One process's metrics, or several processes' summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Each pool's counters, in the order first seen.
    pub pools: Vec<PoolReport>,
    /// The largest memory peak of a request at its end, in bytes.
    pub memory_peak: u64,
    /// The FastCGI server's own counters.
    pub server: ServerCounts,
    /// The master's own counts, in the master's report only.
    pub workers: Option<WorkerCounts>,
}

/// One pool's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolReport {
    /// The pool's name, its section in php-fpm.conf.
    pub name: String,
    /// Its threads, queue and requests.
    pub counts: PoolSnapshot,
}

/// The server's counters, per process (not per pool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// Responses by HTTP status class: other, 1xx to 5xx.
    pub responses: [u64; CLASSES.len()],
    /// Request durations per bucket (not cumulative), the last one +Inf.
    pub durations: [u64; BUCKETS.len() + 1],
    /// The sum of the request durations, in microseconds.
    pub duration_sum_us: u64,
    /// Timeouts by kind: first byte, idle, params, stdin.
    pub timeouts: [u64; TIMEOUT_KINDS.len()],
    /// FastCGI bytes read from web servers.
    pub bytes_in: u64,
    /// FastCGI bytes written to web servers.
    pub bytes_out: u64,
    /// Kept connections taken over from a retiring worker.
    pub adopted: u64,
}

/// The master's view of its workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Worker processes ready to serve.
    pub ready: u64,
    /// Worker processes that exited without being asked to.
    pub crashes: u64,
}

impl ServerCounts {
    /// Every count, in the order they travel.
    fn fields(&mut self) -> impl Iterator<Item = &mut u64> {
        self.responses
            .iter_mut()
            .chain(&mut self.durations)
            .chain([&mut self.duration_sum_us])
            .chain(&mut self.timeouts)
            .chain([&mut self.bytes_in, &mut self.bytes_out, &mut self.adopted])
    }

    fn add(&mut self, other: &ServerCounts) {
        let mut other = other.clone();
        for (mine, theirs) in self.fields().zip(other.fields()) {
            *mine += *theirs;
        }
    }
}

impl Report {
    /// Adds another process's report: pools by name, counts added, maxima
    /// and the memory peak the larger.
    pub fn merge(&mut self, other: &Report) {
        for theirs in &other.pools {
            match self.pools.iter_mut().find(|p| p.name == theirs.name) {
                Some(mine) => mine.counts.merge(&theirs.counts),
                None => self.pools.push(theirs.clone()),
            }
        }
        self.memory_peak = self.memory_peak.max(other.memory_peak);
        self.server.add(&other.server);
        if let Some(theirs) = other.workers {
            let mine = self.workers.get_or_insert_with(WorkerCounts::default);
            mine.ready += theirs.ready;
            mine.crashes += theirs.crashes;
        }
    }

    /// The counters of pool `name`, if the report has it.
    pub fn pool(&self, name: &str) -> Option<&PoolSnapshot> {
        self.pools
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.counts)
    }

    /// Every pool's counters added up.
    pub fn all_pools(&self) -> PoolSnapshot {
        let mut total = PoolSnapshot::default();
        for pool in &self.pools {
            total.merge(&pool.counts);
        }
        total
    }

    /// The report as it travels on the control channel.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for pool in &self.pools {
            let mut counts = pool.counts;
            let _ = write!(out, "pool {}", counts.start_time);
            for n in pool_fields(&mut counts) {
                let _ = write!(out, " {n}");
            }
            let _ = writeln!(out, " {}", escape(&pool.name));
        }
        let _ = writeln!(out, "peak {}", self.memory_peak);
        out.push_str("server");
        for n in self.server.clone().fields() {
            let _ = write!(out, " {n}");
        }
        out.push('\n');
        if let Some(w) = self.workers {
            let _ = writeln!(out, "workers {} {}", w.ready, w.crashes);
        }
        out
    }

    /// A report from the control channel; None if `text` is not one.
    pub fn decode(text: &str) -> Option<Report> {
        let mut report = Report::default();
        for line in text.lines() {
            let (kind, rest) = line.split_once(' ')?;
            match kind {
                "pool" => report.pools.push(decode_pool(rest)?),
                "peak" => report.memory_peak = rest.parse().ok()?,
                "server" => numbers_into(rest, report.server.fields())?,
                "workers" => {
                    let mut w = WorkerCounts::default();
                    numbers_into(rest, [&mut w.ready, &mut w.crashes].into_iter())?;
                    report.workers = Some(w);
                }
                _ => return None,
            }
        }
        Some(report)
    }
}

/// A pool's counts after its start time, in the order they travel.
fn pool_fields(s: &mut PoolSnapshot) -> [&mut u64; 15] {
    [
        &mut s.max_queued,
        &mut s.max_active,
        &mut s.threads,
        &mut s.accepted,
        &mut s.queued,
        &mut s.queue_capacity,
        &mut s.idle,
        &mut s.active,
        &mut s.max_children_reached,
        &mut s.terminated,
        &mut s.slow,
        &mut s.restarts,
        &mut s.script_boots,
        &mut s.script_requests,
        &mut s.script_busy,
    ]
}

fn decode_pool(rest: &str) -> Option<PoolReport> {
    let mut words = rest.splitn(17, ' ');
    let mut counts = PoolSnapshot {
        start_time: words.next()?.parse().ok()?,
        ..PoolSnapshot::default()
    };
    for field in pool_fields(&mut counts) {
        *field = words.next()?.parse().ok()?;
    }
    let name = unescape(words.next()?)?;
    Some(PoolReport { name, counts })
}

/// Parses exactly as many space-separated numbers as there are fields.
fn numbers_into<'a>(text: &str, mut fields: impl Iterator<Item = &'a mut u64>) -> Option<()> {
    let mut words = text.split(' ');
    for field in fields.by_ref() {
        *field = words.next()?.parse().ok()?;
    }
    words.next().is_none().then_some(())
}

/// A pool name on one line: backslash and newline escaped.
fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, accepted: u64, max_active: u64, start_time: i64) -> PoolReport {
        let counts = PoolSnapshot {
            accepted,
            max_active,
            start_time,
            threads: 4,
            ..PoolSnapshot::default()
        };
        PoolReport {
            name: name.into(),
            counts,
        }
    }

    fn sample() -> Report {
        let mut server = ServerCounts::default();
        server.responses[2] = 7;
        server.durations[12] = 1;
        server.timeouts[3] = 2;
        server.bytes_out = 1 << 40;
        Report {
            pools: vec![
                pool("www", 5, 3, 1_700_000_000),
                pool("odd \\ name\nx", 1, 1, 0),
            ],
            memory_peak: 2 << 20,
            server,
            workers: Some(WorkerCounts {
                ready: 2,
                crashes: 1,
            }),
        }
    }

    #[test]
    fn a_report_travels_unchanged() {
        let report = sample();
        assert_eq!(Report::decode(&report.encode()), Some(report));
        let empty = Report::default();
        assert_eq!(Report::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn a_damaged_report_is_refused() {
        let text = sample().encode();
        for bad in [
            text.replace("peak ", "peek "),
            text.replace("server 0", "server x"),
            text.replace("workers 2 1", "workers 2"),
            text.replace("workers 2 1", "workers 2 1 0"),
            text.replace("odd \\\\ name", "odd \\q name"),
            "pool 1 2\n".to_string(),
            "peak\n".to_string(),
        ] {
            assert_eq!(Report::decode(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn merging_keeps_pools_apart_adds_counts_and_keeps_maxima() {
        let a = Report {
            pools: vec![pool("alpha", 5, 3, 200)],
            memory_peak: 100,
            ..Report::default()
        };
        let mut b = Report {
            pools: vec![pool("alpha", 2, 2, 100), pool("beta", 9, 7, 300)],
            memory_peak: 300,
            ..Report::default()
        };
        b.server.responses[2] = 4;
        let mut sum = Report::default();
        sum.merge(&a);
        sum.merge(&b);
        sum.merge(&b.clone());
        let alpha = sum.pool("alpha").unwrap();
        assert_eq!((alpha.accepted, alpha.max_active), (9, 3));
        assert_eq!((alpha.threads, alpha.start_time), (12, 100));
        let beta = sum.pool("beta").unwrap();
        assert_eq!((beta.accepted, beta.max_active), (18, 7));
        assert_eq!(sum.memory_peak, 300);
        assert_eq!(sum.server.responses[2], 8);
        assert_eq!(sum.all_pools().accepted, 27);
        assert_eq!(sum.workers, None);
    }
}
