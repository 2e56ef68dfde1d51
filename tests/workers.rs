//! Crash containment, reload and stop: the master holds the sockets and
//! runs worker processes, so a crash costs only the requests in flight in
//! the worker that died, and no connection is ever refused.
//!
//! Each test runs a load of fresh FastCGI connections (one request each)
//! and counts every outcome: answered, refused at connect, lost after
//! connect (the connection broke before the whole answer), or wrong.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{signal_pid, Signal, Tfpm};
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::launch::Launch;
use fcgi_tests::{docroot, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const CLIENTS: usize = 8;

/// What happened to one request of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The right answer, this long after the load started.
    Answered(Duration),
    /// connect() failed.
    Refused,
    /// Connected, but the connection broke before the whole answer.
    Lost,
    /// A whole answer, but not the expected one.
    Wrong,
}

/// Clients sending `hello.php` on fresh connections until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Load {
    /// Starts `CLIENTS` clients; with `until_refused`, each stops at its
    /// first refused connect (the daemon is gone).
    fn start(addr: SocketAddr, until_refused: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let clients = (0..CLIENTS)
            .map(|_| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = one_request(addr, started);
                        outcomes.lock().unwrap().push(outcome);
                        if until_refused && outcome == Outcome::Refused {
                            break;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            clients,
            started,
        }
    }

    fn answered(&self) -> usize {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Answered(_)))
            .count()
    }

    /// Waits until `n` more requests were answered.
    fn wait_answered(&self, n: usize, tfpm: &Tfpm) {
        let target = self.answered() + n;
        let done = poll_until(Duration::from_secs(30), Duration::from_millis(5), || {
            (self.answered() >= target).then_some(())
        });
        assert!(done.is_some(), "the load stalled\n{}", tfpm.log());
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.join().unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

fn one_request(addr: SocketAddr, started: Instant) -> Outcome {
    let Ok(mut client) = FcgiClient::connect_tcp(addr) else {
        return Outcome::Refused;
    };
    let req = CgiRequest::get(&docroot(), "/hello.php");
    match client.send(&req, false) {
        Ok(r) if r.cgi().status == 200 && r.cgi().text() == "Hello, world!\n" => {
            Outcome::Answered(started.elapsed())
        }
        Ok(_) => Outcome::Wrong,
        Err(_) => Outcome::Lost,
    }
}

fn count(outcomes: &[Outcome], kind: Outcome) -> usize {
    outcomes.iter().filter(|o| **o == kind).count()
}

/// How long after `at` the answer rate was back to half the rate before it
/// (in 100 ms windows).
fn recovery(outcomes: &[Outcome], at: Duration) -> Duration {
    let times: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Answered(t) => Some(*t),
            _ => None,
        })
        .collect();
    let window = Duration::from_millis(100);
    let before = times.iter().filter(|t| **t < at).count() as f64;
    let per_window = before / (at.as_secs_f64() / window.as_secs_f64());
    let mut end = at + window;
    while end < at + Duration::from_secs(30) {
        let n = times
            .iter()
            .filter(|t| **t >= end - window && **t < end)
            .count();
        if n as f64 >= per_window / 2.0 {
            return end - at;
        }
        end += Duration::from_millis(10);
    }
    Duration::from_secs(30)
}

/// Every worker starts with PHP 8.3+'s C-stack check off
/// (`zend.max_allowed_stack_size=-1`; 8.2 has none), so that the scripts in
/// `crash/` really crash a worker, as any segfault in an extension would.
fn start(workers: &str, threads: &str, extra: &[&str]) -> Tfpm {
    Launch::new(TFPM.as_ref())
        .workers(workers)
        .threads(threads)
        .ini("zend.max_allowed_stack_size=-1")
        .args(extra)
        .start()
}

/// Waits until the master runs `n` workers, none of them in `gone`.
fn wait_workers(tfpm: &Tfpm, n: usize, gone: &[u32]) -> Vec<u32> {
    let pids = poll_until(Duration::from_secs(10), Duration::from_millis(5), || {
        let pids = tfpm.worker_pids();
        let ready = tfpm.log().matches("worker ready").count();
        (pids.len() == n && !pids.iter().any(|p| gone.contains(p)) && ready > 0).then_some(pids)
    });
    pids.unwrap_or_else(|| panic!("no {n} fresh workers\n{}", tfpm.log()))
}

/// Waits until a line of the log contains every one of `parts`.
fn wait_log_line(tfpm: &Tfpm, parts: &[&str]) -> String {
    let line = poll_until(Duration::from_secs(20), Duration::from_millis(10), || {
        let log = tfpm.log();
        let found = log.lines().find(|l| parts.iter().all(|p| l.contains(p)));
        found.map(str::to_string)
    });
    line.unwrap_or_else(|| panic!("no log line with {parts:?}\n{}", tfpm.log()))
}

/// Waits until the master says again, as php-fpm after a reload, that it
/// is ready: the new workers serve and the old ones no longer accept.
fn wait_reloaded(tfpm: &Tfpm) {
    let done = poll_until(Duration::from_secs(20), Duration::from_millis(10), || {
        (tfpm.log().matches("ready to handle connections").count() >= 2).then_some(())
    });
    done.unwrap_or_else(|| panic!("no reload done\n{}", tfpm.log()))
}

fn hello(tfpm: &Tfpm) -> String {
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let req = CgiRequest::get(&docroot(), "/hello.php");
    client.send(&req, false).expect("hello.php").cgi().text()
}

#[test]
fn a_killed_worker_costs_only_its_requests_in_flight() {
    let tfpm = start("2", "4", &[]);
    let first = wait_workers(&tfpm, 2, &[]);
    let load = Load::start(tfpm.addr(), false);
    load.wait_answered(500, &tfpm);

    let segv_at = load.now();
    signal_pid(first[0], Signal::SIGSEGV);
    wait_log_line(&tfpm, &["worker exited", "SIGSEGV"]);
    let second = wait_workers(&tfpm, 2, &first[..1]);
    load.wait_answered(500, &tfpm);

    let kill_at = load.now();
    let victim = *second.iter().find(|p| **p != first[0]).unwrap();
    signal_pid(victim, Signal::SIGKILL);
    wait_log_line(&tfpm, &["worker exited", "SIGKILL"]);
    wait_workers(&tfpm, 2, &[first[0], victim]);
    load.wait_answered(500, &tfpm);
    let outcomes = load.finish();

    let (refused, lost, wrong) = (
        count(&outcomes, Outcome::Refused),
        count(&outcomes, Outcome::Lost),
        count(&outcomes, Outcome::Wrong),
    );
    let answered = outcomes.len() - refused - lost - wrong;
    let (r1, r2) = (recovery(&outcomes, segv_at), recovery(&outcomes, kill_at));
    eprintln!(
        "two kills under load ({CLIENTS} clients): {answered} answered, {refused} refused, \
         {lost} lost, {wrong} wrong; throughput back {r1:?} after SIGSEGV, {r2:?} after SIGKILL"
    );
    assert_eq!(refused, 0, "connections refused\n{}", tfpm.log());
    assert_eq!(wrong, 0, "wrong answers\n{}", tfpm.log());
    // At most one request per client is in flight in a worker when it dies.
    assert!(lost <= 2 * CLIENTS, "{lost} requests lost\n{}", tfpm.log());
    assert!(r1 <= Duration::from_secs(1) && r2 <= Duration::from_secs(1));
    assert_eq!(hello(&tfpm), "Hello, world!\n");
}

#[test]
fn php_crashes_cost_one_worker_and_name_their_script() {
    let tfpm = start("2", "2", &[]);
    let mut before = wait_workers(&tfpm, 2, &[]);
    // PHP 8.3+ checks a fiber's stack whatever zend.max_allowed_stack_size
    // says: there, only the thread's own stack can overflow.
    let scripts: &[&str] = match fcgi_tests::php_has_stack_guard() {
        true => &["/crash/recursion.php"],
        false => &["/crash/recursion.php", "/crash/fiber_overflow.php"],
    };
    for &script in scripts {
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        let answer = client.send(&CgiRequest::get(&docroot(), script), false);
        assert!(
            answer.is_err(),
            "{script} answered: the worker did not crash"
        );
        let line = wait_log_line(&tfpm, &["worker exited: exited on signal", script]);
        eprintln!("{line}");
        let crashed: Vec<u32> = before
            .iter()
            .copied()
            .filter(|p| !tfpm.worker_pids().contains(p))
            .collect();
        assert_eq!(crashed.len(), 1, "{before:?} -> {:?}", tfpm.worker_pids());
        before = wait_workers(&tfpm, 2, &crashed);
        assert_eq!(hello(&tfpm), "Hello, world!\n");
    }
    assert_eq!(
        tfpm.log()
            .matches("worker exited: exited on signal")
            .count(),
        scripts.len()
    );
}

#[test]
fn a_crash_loop_trips_the_emergency_threshold() {
    let tfpm = start(
        "1",
        "1",
        &[
            "--emergency-restart-threshold",
            "3",
            "--emergency-restart-interval",
            "60s",
        ],
    );
    let mut gone = Vec::new();
    for _ in 0..3 {
        gone.extend(wait_workers(&tfpm, 1, &gone));
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        let _ = client.send(&CgiRequest::get(&docroot(), "/crash/recursion.php"), false);
    }
    wait_log_line(
        &tfpm,
        &["failed processes threshold (3 in 60 sec) is reached, initiating reload"],
    );
    wait_reloaded(&tfpm);
    // The next crash is restarted after a back-off, and then serves again.
    gone.extend(wait_workers(&tfpm, 1, &gone));
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let _ = client.send(&CgiRequest::get(&docroot(), "/crash/recursion.php"), false);
    wait_log_line(&tfpm, &["crash loop: restarting the worker in"]);
    assert_eq!(hello(&tfpm), "Hello, world!\n");
}

#[test]
fn reload_under_load_fails_nothing_and_rereads_php_ini() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ini = dir.path().join("php.ini");
    std::fs::write(&ini, "precision=11\n").unwrap();
    let ini_arg = ini.to_str().unwrap();
    let tfpm = start(
        "2",
        "4",
        &["-c", ini_arg, "--process-control-timeout", "10s"],
    );
    let old = wait_workers(&tfpm, 2, &[]);
    let pid_and_precision = || {
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        let req = CgiRequest::get(&docroot(), "/crash/pid.php");
        client.send(&req, false).expect("pid.php").cgi().text()
    };
    assert!(pid_and_precision().ends_with(" 11\n"));

    let load = Load::start(tfpm.addr(), false);
    load.wait_answered(300, &tfpm);
    std::fs::write(&ini, "precision=13\n").unwrap();
    tfpm.signal(Signal::SIGUSR2);
    wait_reloaded(&tfpm);
    let new = wait_workers(&tfpm, 2, &old);
    load.wait_answered(300, &tfpm);
    let outcomes = load.finish();

    let failed = outcomes.len()
        - outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Answered(_)))
            .count();
    eprintln!(
        "reload under load: {} requests, {failed} failed; workers {old:?} -> {new:?}",
        outcomes.len()
    );
    assert_eq!(failed, 0, "{outcomes:?}\n{}", tfpm.log());
    let answer = pid_and_precision();
    assert!(answer.ends_with(" 13\n"), "php.ini not re-read: {answer:?}");
    let pid: u32 = answer.split(' ').next().unwrap().parse().unwrap();
    assert!(new.contains(&pid), "{pid} is not a new worker: {new:?}");
}

#[test]
fn graceful_stop_under_load_finishes_what_it_accepted() {
    let mut tfpm = start("2", "4", &["--process-control-timeout", "10s"]);
    wait_workers(&tfpm, 2, &[]);
    // A slow request in flight when the stop comes must still be answered.
    let addr = tfpm.addr();
    let slow = std::thread::spawn(move || {
        let mut client = FcgiClient::connect_tcp(addr).expect("connect");
        let req = CgiRequest::get(&docroot(), "/sleep.php").query("ms=1500");
        client.send(&req, false).map(|r| r.cgi().status)
    });
    let load = Load::start(tfpm.addr(), true);
    load.wait_answered(300, &tfpm);
    let (status, clean) = tfpm.stop_with(Signal::SIGQUIT);
    let outcomes = load.finish();
    let (refused, lost, wrong) = (
        count(&outcomes, Outcome::Refused),
        count(&outcomes, Outcome::Lost),
        count(&outcomes, Outcome::Wrong),
    );
    eprintln!(
        "graceful stop under load: {} answered, {lost} lost, {wrong} wrong, then refused",
        outcomes.len() - refused - lost - wrong
    );
    assert!(clean && status.success(), "{status:?}\n{}", tfpm.log());
    assert_eq!(slow.join().unwrap().expect("slow request"), 200);
    assert_eq!((lost, wrong), (0, 0), "{}", tfpm.log());
}

#[test]
fn a_lone_worker_killed_comes_back_without_refusing() {
    let tfpm = start("1", "4", &[]);
    let first = wait_workers(&tfpm, 1, &[]);
    let load = Load::start(tfpm.addr(), false);
    load.wait_answered(300, &tfpm);
    let kill_at = load.now();
    signal_pid(first[0], Signal::SIGKILL);
    wait_workers(&tfpm, 1, &first);
    load.wait_answered(300, &tfpm);
    let outcomes = load.finish();
    let (refused, lost) = (
        count(&outcomes, Outcome::Refused),
        count(&outcomes, Outcome::Lost),
    );
    let back = recovery(&outcomes, kill_at);
    eprintln!(
        "one worker, SIGKILL under load: {refused} refused, {lost} lost, throughput back {back:?}"
    );
    assert_eq!(refused, 0, "{}", tfpm.log());
    assert!(lost <= CLIENTS, "{lost} lost\n{}", tfpm.log());
    assert!(back <= Duration::from_secs(1), "{back:?}\n{}", tfpm.log());
}
