//! The whole comparison: every test of a scope against php-fpm from our
//! build (the reference, `pm.max_requests = 1`, so that nothing a request
//! leaves behind reaches the next) and against tfpm, in two phases.
//!
//! 1. **Warm threads.** Each runner has its own tfpm with one thread, so a
//!    test's second run meets the thread that served its first, after every
//!    test the runner ran before. Each test runs once on php-fpm, then twice
//!    on its runner's tfpm.
//! 2. **Shuffled.** One tfpm with several threads, as many runners as
//!    threads, and the tests in a shuffled order: every thread busy, each
//!    test after unrelated ones, on any thread.
//!
//! Tests that name a `--CONFLICTS--` key (or whose directory has a
//! `CONFLICTS` file) run one at a time after the others, as run-tests.php
//! keeps them apart; they are left out of the shuffled phase.
//!
//! A **regression** is a test that passes under php-fpm and does not pass,
//! in any run, under tfpm. A **lost** request (no END_REQUEST: the worker
//! died) counts as a crash, whatever php-fpm did.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::daemon::Tfpm;
use crate::fpm::PhpFpm;

use super::case::{Env, NotRun, Plan};
use super::parse::Phpt;
use super::run::{run, Verdict};

/// The settings run-tests.php gives every test (its `$ini_overwrites`),
/// given to both servers at start-up, plus opcache as a server runs it.
pub const INI: &[&str] = &[
    "output_handler=",
    "open_basedir=",
    "disable_functions=",
    "output_buffering=Off",
    "error_reporting=32767",
    "display_errors=1",
    "display_startup_errors=1",
    "log_errors=0",
    "html_errors=0",
    "track_errors=0",
    "report_memleaks=1",
    "report_zend_debug=0",
    "docref_root=",
    "docref_ext=.html",
    "error_prepend_string=",
    "error_append_string=",
    "auto_prepend_file=",
    "auto_append_file=",
    "ignore_repeated_errors=0",
    "precision=14",
    "serialize_precision=-1",
    "memory_limit=128M",
    "zend_extension=opcache",
    "opcache.enable=1",
    "opcache.fast_shutdown=0",
    "opcache.file_update_protection=0",
    "opcache.revalidate_freq=0",
    "opcache.jit_hot_loop=1",
    "opcache.jit_hot_func=1",
    "opcache.jit_hot_return=1",
    "opcache.jit_hot_side_exit=1",
    "zend.assertions=1",
    "zend.exception_ignore_args=0",
    "zend.exception_string_param_max_len=15",
    "short_open_tag=0",
    "opcache.file_cache=",
    "opcache.file_cache_only=0",
    "opcache.preload_user=root",
    // As run-tests.php for repeated runs: a script's compile-time warnings
    // show again when it comes from the cache.
    "opcache.record_warnings=1",
];

/// The scope of issue 15: the engine, php-src's own tests/, and the
/// extensions a web application leans on. `.ci/run` runs all of it.
pub const FULL_SCOPE: &[&str] = &[
    "Zend/tests",
    "tests",
    "ext/standard/tests",
    "ext/date/tests",
    "ext/json/tests",
    "ext/pcre/tests",
    "ext/session/tests",
    "ext/spl/tests",
    "ext/mbstring/tests",
    "ext/ctype/tests",
    "ext/filter/tests",
    "ext/tokenizer/tests",
    "ext/opcache/tests",
    "ext/pdo_sqlite/tests",
    "ext/sqlite3/tests",
    "ext/reflection/tests",
    "ext/random/tests",
];

/// A quicker subset: the engine and ext/standard.
pub const CI_SCOPE: &[&str] = &["Zend/tests", "ext/standard/tests"];

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The php-src tree the tests run in (they write next to themselves).
    pub src: PathBuf,
    /// Directories under `src` whose `.phpt` files (recursively) are the scope.
    pub dirs: Vec<String>,
    /// The tfpm binary.
    pub tfpm: PathBuf,
    /// The PHP CLI of the same build (TEST_PHP_EXECUTABLE).
    pub php_cli: PathBuf,
    /// Runners of the warm phase, each with its own one-thread tfpm.
    pub runners: usize,
    /// Threads (and runners) of the shuffled phase; 0 skips it.
    pub shuffle_threads: usize,
    /// The limit for one request.
    pub timeout: Duration,
    /// The shuffle's seed.
    pub seed: u64,
    /// Only tests whose name contains one of these (all when empty).
    pub filter: Vec<String>,
    /// Pass SKIP_SLOW_TESTS=1 to the tests.
    pub skip_slow: bool,
    /// Tests run on php-fpm only: those EXPECTED.md lists as `by design`
    /// (they would only show again what the row says).
    pub not_on_tfpm: Vec<String>,
}

/// One test's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// The path under `src`, such as `Zend/tests/bug12345.phpt`.
    pub name: String,
    /// Why it did not run, if it did not.
    pub not_run: Option<NotRun>,
    pub fpm: Option<Verdict>,
    /// The warm runs, then the shuffled one.
    pub tfpm: Vec<Verdict>,
    /// A failed or hung tfpm run that passed when run once more (see [`retry_phase`]).
    pub retried: Option<Verdict>,
}

impl Row {
    fn fpm_passes(&self) -> bool {
        self.fpm == Some(Verdict::Pass)
    }

    /// Whether every tfpm run passed (a repeated run may skip itself, as
    /// a test that cannot run twice does under run-tests.php's --repeat).
    pub fn tfpm_passes(&self) -> bool {
        self.tfpm.first() == Some(&Verdict::Pass)
            && self.tfpm[1..]
                .iter()
                .all(|v| matches!(v, Verdict::Pass | Verdict::Skip(_)))
    }

    /// php-fpm passes it, tfpm does not.
    pub fn is_regression(&self) -> bool {
        self.fpm_passes() && !self.tfpm_passes() && !self.skipped_by_both()
    }

    /// A tfpm run lost its request or hung.
    pub fn is_crash(&self) -> bool {
        self.tfpm.iter().any(|v| matches!(v, Verdict::Lost(_)))
    }

    pub fn is_hang(&self) -> bool {
        self.tfpm.contains(&Verdict::Hang)
    }

    /// Skipped under php-fpm (tfpm then skips or is not asked).
    pub fn skipped_by_both(&self) -> bool {
        matches!(self.fpm, Some(Verdict::Skip(_)))
            && self.tfpm.iter().all(|v| matches!(v, Verdict::Skip(_)))
    }

    /// tfpm's verdicts, as `pass/pass/fail`.
    pub fn tfpm_words(&self) -> String {
        self.tfpm
            .iter()
            .map(Verdict::word)
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The outcome of a whole run.
#[derive(Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    /// tfpm's log lines about workers that died.
    pub worker_deaths: Vec<String>,
    /// Each tfpm's whole log.
    pub logs: Vec<String>,
    pub wall: Duration,
}

/// Every `.phpt` under the scope's directories, sorted, as paths under `src`.
pub fn discover(src: &Path, dirs: &[String], filter: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for dir in dirs {
        walk(&src.join(dir), &mut found);
    }
    let mut names: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(src).ok())
        .map(|p| p.display().to_string())
        .filter(|n| filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str())))
        .collect();
    names.sort();
    names
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else if path.extension().is_some_and(|e| e == "phpt") {
            found.push(path);
        }
    }
}

/// Runs the scope: both phases, then tfpm's logs read for dead workers.
pub fn run_suite(config: &Config) -> Report {
    let started = Instant::now();
    let mut config = config.clone();
    config.src = config.src.canonicalize().unwrap_or(config.src);
    let config = &config;
    let names = discover(&config.src, &config.dirs, &config.filter);
    let env = env(config);
    let mut rows: Vec<Row> = Vec::with_capacity(names.len());
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(names.len());
    for name in &names {
        let plan = Phpt::read(&config.src.join(name))
            .map_err(NotRun::Borked)
            .and_then(|phpt| Plan::new(&phpt, name, &env));
        let (not_run, plan) = match plan {
            Ok(plan) => (None, Some(plan)),
            Err(why) => (Some(why), None),
        };
        rows.push(Row {
            name: name.clone(),
            not_run,
            fpm: None,
            tfpm: Vec::new(),
            retried: None,
        });
        plans.push(plan);
    }
    let rows = Mutex::new(rows);
    let mut deaths = Vec::new();
    let mut logs = Vec::new();
    {
        // Both servers work in the scratch copy of the tree, where tests
        // that name relative paths (session.save_path) expect to be.
        let pool = format!(
            "pm.max_requests = 1\nrequest_terminate_timeout = 300s\nchdir = {}",
            config.src.display()
        );
        let fpm = PhpFpm::start(config.runners.max(1), &pool, &ini_refs());
        let tfpms: Vec<Tfpm> = (0..config.runners.max(1))
            .map(|_| start_tfpm(config, 1))
            .collect();
        let (parallel, serial) = partition(&plans);
        let addrs: Vec<SocketAddr> = tfpms.iter().map(Tfpm::addr).collect();
        warm_phase(config, &plans, &parallel, fpm.addr(), &addrs, &rows);
        warm_phase(config, &plans, &serial, fpm.addr(), &addrs[..1], &rows);
        deaths.extend(tfpms.iter().flat_map(worker_deaths));
        logs.extend(tfpms.iter().map(Tfpm::log));
    }
    if config.shuffle_threads > 0 {
        let tfpm = start_tfpm(config, config.shuffle_threads);
        let mut order = shuffled_order(&plans, &rows.lock().unwrap(), config.seed);
        order.retain(|i| plans[*i].as_ref().is_some_and(|p| p.conflicts.is_empty()));
        shuffle_phase(config, &plans, &order, tfpm.addr(), &rows);
        retry_phase(config, &plans, tfpm.addr(), &rows);
        deaths.extend(worker_deaths(&tfpm));
        logs.push(tfpm.log());
    }
    Report {
        rows: rows.into_inner().unwrap(),
        worker_deaths: deaths,
        logs,
        wall: started.elapsed(),
    }
}

fn env(config: &Config) -> Env {
    let mut params = vec![
        (
            "TEST_PHP_EXECUTABLE".to_string(),
            config.php_cli.display().to_string(),
        ),
        (
            "TEST_PHP_EXECUTABLE_ESCAPED".to_string(),
            format!("'{}'", config.php_cli.display()),
        ),
        ("SKIP_ONLINE_TESTS".to_string(), "1".to_string()),
        ("SKIP_PERF_SENSITIVE".to_string(), "1".to_string()),
        ("NO_INTERACTION".to_string(), "1".to_string()),
        ("TZ".to_string(), "UTC".to_string()),
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
    ];
    if config.skip_slow {
        params.push(("SKIP_SLOW_TESTS".to_string(), "1".to_string()));
    }
    Env { params }
}

fn ini_refs() -> Vec<&'static str> {
    INI.to_vec()
}

fn start_tfpm(config: &Config, threads: usize) -> Tfpm {
    let threads = threads.to_string();
    let timeout = format!("{}s", config.timeout.as_secs().max(1) * 3);
    let mut args = vec![
        "-n",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        &threads,
        "--request-terminate-timeout",
        &timeout,
        "--idle-timeout",
        "0",
    ];
    for setting in INI {
        args.extend(["-d", setting]);
    }
    // Tests whose child processes write relative paths (mail()'s
    // sendmail_path) write them into the scratch copy of the tree.
    Tfpm::start_in(&config.tfpm, &args, &config.src)
}

/// Indexes of the runnable plans: those that may run beside others, and
/// those that must run alone.
fn partition(plans: &[Option<Plan>]) -> (Vec<usize>, Vec<usize>) {
    let mut parallel = Vec::new();
    let mut serial = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        match plan {
            Some(p) if p.conflicts.is_empty() => parallel.push(i),
            Some(_) => serial.push(i),
            None => {}
        }
    }
    (parallel, serial)
}

/// A line on stderr every 1,000 tests taken.
fn progress(phase: &str, taken: usize, total: usize) {
    if taken % 1000 == 0 {
        eprintln!("phpt: {phase} phase, {taken} of {total} tests taken");
    }
}

/// Runs `work(runner, index)` for each index of `order`, on one thread per
/// runner, each taking the next index as it is free.
fn share_out<F>(phase: &str, order: &[usize], runners: usize, work: F)
where
    F: Fn(usize, usize) + Sync,
{
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for runner in 0..runners {
            let (next, work) = (&next, &work);
            scope.spawn(move || loop {
                let taken = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(taken) else {
                    break;
                };
                work(runner, i);
                progress(phase, taken + 1, order.len());
            });
        }
    });
}

/// Runs `order` with one runner per tfpm in `tfpms`: php-fpm once, then
/// the runner's tfpm twice.
fn warm_phase(
    config: &Config,
    plans: &[Option<Plan>],
    order: &[usize],
    fpm: SocketAddr,
    tfpms: &[SocketAddr],
    rows: &Mutex<Vec<Row>>,
) {
    share_out("warm", order, tfpms.len(), |runner, i| {
        let plan = plans[i].as_ref().expect("runnable");
        let reference = run(plan, fpm, config.timeout, false);
        let mut runs = Vec::new();
        if !config.not_on_tfpm.contains(&plan.name) {
            runs.push(run(plan, tfpms[runner], config.timeout, false));
            // The second run only matters if the first one passed.
            if runs[0] == Verdict::Pass {
                runs.push(run(plan, tfpms[runner], config.timeout, true));
            }
        }
        let mut rows = rows.lock().unwrap();
        rows[i].fpm = Some(reference);
        rows[i].tfpm.extend(runs);
    });
}

/// Runs `order` once more on one many-threaded tfpm, every thread busy.
fn shuffle_phase(
    config: &Config,
    plans: &[Option<Plan>],
    order: &[usize],
    tfpm: SocketAddr,
    rows: &Mutex<Vec<Row>>,
) {
    share_out("shuffled", order, config.shuffle_threads, |_, i| {
        let plan = plans[i].as_ref().expect("runnable");
        let verdict = run(plan, tfpm, config.timeout, true);
        rows.lock().unwrap()[i].tfpm.push(verdict);
    });
}

/// Runs once more, on the shuffled phase's tfpm, each test that php-fpm
/// passed and one tfpm run failed or hung (never one that lost its
/// request: a crash counts as it is). A test that passes then keeps the
/// failed verdict in `retried` and counts as passed; the report names it,
/// for a look at what, under load, made it fail once.
fn retry_phase(config: &Config, plans: &[Option<Plan>], tfpm: SocketAddr, rows: &Mutex<Vec<Row>>) {
    let candidates: Vec<usize> = rows
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            plans[*i].is_some()
                && r.fpm_passes()
                && !r.is_crash()
                && r.tfpm
                    .iter()
                    .any(|v| matches!(v, Verdict::Fail(_) | Verdict::Hang))
        })
        .map(|(i, _)| i)
        .collect();
    for i in candidates {
        let plan = plans[i].as_ref().expect("runnable");
        if run(plan, tfpm, config.timeout, true) != Verdict::Pass {
            continue;
        }
        let mut rows = rows.lock().unwrap();
        let row = &mut rows[i];
        for verdict in row
            .tfpm
            .iter_mut()
            .filter(|v| matches!(v, Verdict::Fail(_) | Verdict::Hang))
        {
            row.retried = Some(std::mem::replace(verdict, Verdict::Pass));
        }
        if row.tfpm.len() == 1 {
            row.tfpm.push(Verdict::Pass);
        }
    }
}

/// The tests that passed every warm run on tfpm, in an order shuffled by `seed`.
fn shuffled_order(plans: &[Option<Plan>], rows: &[Row], seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len())
        .filter(|i| plans[*i].is_some() && rows[*i].tfpm_passes())
        .collect();
    let mut state = seed | 1;
    for i in (1..order.len()).rev() {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        order.swap(i, (r % (i as u64 + 1)) as usize);
    }
    order
}

fn worker_deaths(tfpm: &Tfpm) -> Vec<String> {
    tfpm.log()
        .lines()
        .filter(|l| l.contains("worker exited") || l.contains("zend_mm_heap corrupted"))
        .map(str::to_string)
        .collect()
}

/// Counts for the closing figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub tests: usize,
    pub not_applicable: usize,
    pub borked: usize,
    pub skipped: usize,
    pub fpm_passed: usize,
    pub tfpm_passed: usize,
    pub regressions: usize,
    pub crashes: usize,
    pub hangs: usize,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            tests: self.rows.len(),
            ..Totals::default()
        };
        for row in &self.rows {
            match &row.not_run {
                Some(NotRun::NotApplicable(_)) => t.not_applicable += 1,
                Some(NotRun::Borked(_)) => t.borked += 1,
                None => {}
            }
            t.skipped += usize::from(row.skipped_by_both());
            t.fpm_passed += usize::from(row.fpm_passes());
            t.tfpm_passed += usize::from(row.tfpm_passes());
            t.regressions += usize::from(row.is_regression());
            t.crashes += usize::from(row.is_crash());
            t.hangs += usize::from(row.is_hang());
        }
        t
    }

    /// `results.tsv`: name, php-fpm, tfpm's runs, and the note.
    pub fn tsv(&self) -> String {
        let mut out = String::from("test\tphp-fpm\ttfpm\tnote\n");
        for row in &self.rows {
            let fpm = row.fpm.as_ref().map_or("-", Verdict::word);
            let note = match (&row.not_run, row.is_regression()) {
                (Some(NotRun::NotApplicable(why)), _) => format!("n/a: {why}"),
                (Some(NotRun::Borked(why)), _) => format!("borked: {why}"),
                (None, true) => "REGRESSION".to_string(),
                (None, false) => String::new(),
            };
            out.push_str(&format!(
                "{}\t{fpm}\t{}\t{note}\n",
                row.name,
                row.tfpm_words()
            ));
        }
        out
    }

    /// For each regression, what each server answered.
    pub fn regression_outputs(&self) -> BTreeMap<String, String> {
        self.rows
            .iter()
            .filter(|r| r.is_regression() || r.is_crash())
            .map(|r| {
                let runs: Vec<String> = r
                    .tfpm
                    .iter()
                    .map(|v| match v {
                        Verdict::Fail(out) => format!("fail:\n{}", String::from_utf8_lossy(out)),
                        other => format!("{other:?}"),
                    })
                    .collect();
                (r.name.clone(), runs.join("\n----\n"))
            })
            .collect()
    }
}
