//! A script's `pcntl_fork()`, `pcntl_alarm()` and signal handlers through
//! real FastCGI requests: the child runs the rest of the script as a
//! process of its own, its output joins the parent's response and nothing
//! else of it reaches the daemon; the alarm ends its own request only; and
//! a signal the script sends itself reaches its own handler, not the
//! daemon's.

use std::path::Path;
use std::thread;

use fcgi_tests::cgi::{CgiRequest, CgiResponse};
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::launch::Launch;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

fn start(threads: &str) -> Tfpm {
    Launch::new(Path::new(TFPM))
        .threads(threads)
        .inis(&["display_errors=0", "log_errors=1"])
        .start()
}

fn fetch(tfpm: &Tfpm, script: &str, query: &str) -> (CgiResponse, String) {
    let response = tfpm.fetch(script, query);
    (response.cgi(), response.stderr_text())
}

fn dir_query(dir: &tempfile::TempDir, rest: &str) -> String {
    format!("dir={}&{rest}", dir.path().display())
}

#[test]
fn a_forked_child_runs_the_rest_of_the_script_and_only_its_output_reaches_the_client() {
    let tfpm = start("2");
    let dir = tempfile::tempdir().expect("temp dir");
    let (response, _) = fetch(&tfpm, "/pcntl/child.php", &dir_query(&dir, "code=7"));
    assert_eq!(
        response.text(),
        "before fork\nthe child's output joins the response\nchild exited with 7\nown pid\n\
         the child's shutdown function ran\n",
        "{}",
        tfpm.log()
    );
    assert_eq!(response.header("X-From-Child"), None);
    // More output than a pipe holds, while the parent waits for the child.
    let dir = tempfile::tempdir().expect("temp dir");
    let big = 3 << 20;
    let query = dir_query(&dir, &format!("code=0&big={big}"));
    let (response, _) = fetch(&tfpm, "/pcntl/child.php", &query);
    let text = response.text();
    assert_eq!(text.matches('#').count(), big, "{}", tfpm.log());
    assert!(text.ends_with("child exited with 0\nown pid\nthe child's shutdown function ran\n"));
    // The same thread, and the other one, serve on.
    for _ in 0..4 {
        let (again, _) = fetch(&tfpm, "/hello.php", "");
        assert_eq!(again.text(), "Hello, world!\n");
    }
}

#[test]
fn a_fatal_error_in_the_child_ends_the_child_only_and_is_logged() {
    let tfpm = start("1");
    let dir = tempfile::tempdir().expect("temp dir");
    let (response, _) = fetch(&tfpm, "/pcntl/child.php", &dir_query(&dir, "fatal=1"));
    assert_eq!(
        response.text(),
        "before fork\nthe child's output joins the response\nchild exited with 255\nown pid\n\
         the child's shutdown function ran\n",
        "{}",
        tfpm.log()
    );
    // The child's log line travels on stderr, apart from the response.
    let logged = fcgi_tests::poll_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || {
            tfpm.log()
                .contains("undefined_function_in_the_child")
                .then_some(())
        },
    );
    assert!(logged.is_some(), "{}", tfpm.log());
    let (again, _) = fetch(&tfpm, "/hello.php", "");
    assert_eq!(again.text(), "Hello, world!\n");
}

#[test]
fn the_child_is_a_process_of_its_own_for_signals() {
    let tfpm = start("1");
    // SIGTERM takes its default action in the child, as in a php-fpm
    // worker's child: the daemon's own handlers are not inherited.
    let dir = tempfile::tempdir().expect("temp dir");
    let (response, _) = fetch(&tfpm, "/pcntl/signals.php", &dir_query(&dir, "sig=term"));
    assert_eq!(response.text(), "killed by signal 15\n", "{}", tfpm.log());
    // pcntl_signal(), refused on a thread, works in the child.
    let dir = tempfile::tempdir().expect("temp dir");
    let (response, _) = fetch(&tfpm, "/pcntl/signals.php", &dir_query(&dir, "sig=usr1"));
    assert_eq!(
        response.text(),
        "exited with 3, handled\n",
        "{}",
        tfpm.log()
    );
    let (again, _) = fetch(&tfpm, "/hello.php", "");
    assert_eq!(again.text(), "Hello, world!\n");
}

#[test]
fn children_nobody_waited_for_are_reaped_when_the_request_ends() {
    let tfpm = start("1");
    let (response, _) = fetch(&tfpm, "/pcntl/orphan.php", "fork=1");
    assert_eq!(response.text(), "left a zombie\n", "{}", tfpm.log());
    let (response, _) = fetch(&tfpm, "/pcntl/orphan.php", "");
    assert_eq!(response.text(), "0 zombies\n", "{}", tfpm.log());
}

#[test]
fn an_alarm_ends_its_own_request_and_no_other() {
    let tfpm = start("2");
    // Under php-fpm, SIGALRM ends the worker process with its request;
    // under tfpm it ends the request, and the thread serves on.
    let (response, stderr) = fetch(&tfpm, "/pcntl/alarm.php", "set=1&sleep=20");
    let text = response.text();
    assert!(text.starts_with("previous: 0\n"), "{text}");
    assert!(!text.contains("done"), "{text}");
    assert!(
        stderr.contains("Request terminated by its pcntl_alarm() after 1 second"),
        "{stderr}\n{}",
        tfpm.log()
    );
    // An alarm left set when its request ends is disarmed: the next
    // requests on both threads outlive it.
    let (response, _) = fetch(&tfpm, "/pcntl/alarm.php", "set=1");
    assert_eq!(response.text(), "previous: 0\ndone\n");
    let sleepers: Vec<_> = (0..2)
        .map(|_| {
            let addr = tfpm.addr();
            thread::spawn(move || {
                let mut client = FcgiClient::connect_tcp(addr).expect("connect");
                let request = CgiRequest::get(&docroot(), "/pcntl/alarm.php").query("sleep=1.5");
                client.send(&request, false).expect("request").cgi().text()
            })
        })
        .collect();
    for sleeper in sleepers {
        assert_eq!(sleeper.join().expect("client thread"), "done\n");
    }
    // pcntl_alarm() answers with the time left on the previous alarm, and 0
    // cancels it.
    let (response, _) = fetch(&tfpm, "/pcntl/alarm.php", "set=30&again=0&sleep=1.2");
    assert_eq!(response.text(), "previous: 0\nleft: 30\ndone\n");
}

#[test]
fn a_worker_scripts_handler_forks_and_the_script_serves_on() {
    let script = docroot().join("pcntl/worker.php");
    let tfpm = Launch::new(Path::new(TFPM))
        .threads("1")
        .args(&["--worker", script.to_str().expect("UTF-8 path")])
        .args(&["--worker-threads", "1"])
        .inis(&["display_errors=0", "log_errors=1"])
        .start();
    for n in 1..=3 {
        let (response, _) = fetch(&tfpm, "/pcntl/worker.php", "");
        assert_eq!(
            response.text(),
            format!("the child of request {n}\nrequest {n}: its child exited with 3\n"),
            "{}",
            tfpm.log()
        );
    }
}

#[test]
fn a_signal_the_script_sends_itself_reaches_its_own_handler_only() {
    let tfpm = start("1");
    let (response, _) = fetch(&tfpm, "/pcntl/self_signal.php", "mode=async");
    assert_eq!(
        response.text(),
        "handler before: 0\nhandled 10 from itself\nsent\ndone\n",
        "{}",
        tfpm.log()
    );
    let (response, _) = fetch(&tfpm, "/pcntl/self_signal.php", "mode=dispatch");
    assert_eq!(
        response.text(),
        "handler before: 0\nsent\nhandled 10 from itself\ndone\n"
    );
    // The handlers were the request's: the thread's next one has none.
    let (response, _) = fetch(&tfpm, "/pcntl/self_signal.php", "mode=none");
    assert_eq!(response.text(), "handler before: 0\nfibers switch\n");
    // A fatal error in a handler ends its request; the thread's next
    // request can still switch fibers (handlers run with switching blocked).
    let (response, stderr) = fetch(&tfpm, "/pcntl/self_signal.php", "mode=fatal");
    assert!(
        !response.text().contains("not reached"),
        "{}",
        response.text()
    );
    assert!(stderr.contains("Allowed memory size"), "{stderr}");
    let (response, _) = fetch(&tfpm, "/pcntl/self_signal.php", "mode=none");
    assert_eq!(response.text(), "handler before: 0\nfibers switch\n");
}

#[test]
fn a_time_limit_ends_a_wait_for_a_child() {
    let tfpm = start("1");
    let (response, stderr) = fetch(&tfpm, "/pcntl/wait_timeout.php", "");
    let text = response.text();
    assert!(text.starts_with("the child is up\n"), "{text}");
    assert!(!text.contains("not reached"), "{text}");
    assert!(
        stderr.contains("Maximum execution time of 1 second exceeded"),
        "{stderr}"
    );
    let (again, _) = fetch(&tfpm, "/hello.php", "");
    assert_eq!(again.text(), "Hello, world!\n");
}
