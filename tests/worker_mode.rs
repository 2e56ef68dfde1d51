//! Worker mode through real nginx: each worker thread boots
//! `tests/docroot/worker/app.php` once and serves requests through
//! `frankenphp_handle_request()`. The app reports what its boot saw (an id
//! that changes when the script starts again) and a counter, so each test
//! can tell whether a request reached the same instance.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{wait_or_kill, Signal, Tfpm};
use fcgi_tests::fcgi_client::{encode_request, FcgiClient};
use fcgi_tests::http::{self, Multipart, Response};
use fcgi_tests::nginx::Nginx;
use fcgi_tests::{docroot, poll_until, tempfile};
use serde_json::Value;

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const APP: &str = "/worker/app.php";

/// tfpm with nginx in front. Fields drop in order: nginx first, then tfpm.
struct Stack {
    nginx: Nginx,
    tfpm: Tfpm,
}

impl Stack {
    /// tfpm in worker mode for app.php with `threads` worker threads (and
    /// one thread for other scripts), plus `extra` options.
    fn start(threads: u32, extra: &[&str]) -> Stack {
        Stack::with_script(&script("app.php"), threads, extra)
    }

    fn with_script(script: &Path, threads: u32, extra: &[&str]) -> Stack {
        Stack::in_site(&docroot(), script, threads, extra)
    }

    /// As [`Stack::with_script`], with nginx serving `root`.
    fn in_site(root: &Path, script: &Path, threads: u32, extra: &[&str]) -> Stack {
        let script = script.to_str().expect("UTF-8 path");
        let threads = threads.to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--worker",
            script,
            "--worker-threads",
            &threads,
            "-d",
            "display_errors=0",
            "-d",
            "log_errors=1",
        ];
        args.extend_from_slice(extra);
        let tfpm = Tfpm::start(Path::new(TFPM), &args);
        let nginx = Nginx::start(&tfpm.addr().to_string(), root, "");
        Stack { nginx, tfpm }
    }

    fn get(&self, query: &str) -> Response {
        http::get(self.nginx.addr(), &format!("{APP}?{query}"))
    }

    /// The app's JSON report for a GET with `query`.
    fn show(&self, query: &str) -> Value {
        json(&self.get(query), self)
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.tfpm.log(), self.nginx.error_log())
    }
}

fn script(name: &str) -> PathBuf {
    docroot().join("worker").join(name)
}

fn json(response: &Response, stack: &Stack) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.summary(),
        stack.logs()
    );
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", response.summary(), stack.logs()))
}

fn boot_id(report: &Value) -> String {
    report["boot"]["id"].as_str().expect("boot id").to_string()
}

#[test]
fn one_instance_serves_on_with_fresh_superglobals_for_each_request() {
    let stack = Stack::start(1, &[]);
    let first = stack.show("a=1");
    assert_eq!(first["count"], 1);
    assert_eq!(first["get"]["a"], "1");
    assert_eq!(
        first["boot"]["worker"], "1",
        "the boot sees FRANKENPHP_WORKER"
    );
    assert_eq!(first["boot"]["getenv"], "1");
    assert_eq!(first["worker_in_server"], false, "requests do not");
    assert_eq!(first["uri"], "/worker/app.php?a=1");

    let form = http::post(
        stack.nginx.addr(),
        &format!("{APP}?b=2"),
        "application/x-www-form-urlencoded",
        b"c=3",
    );
    let second = json(&form, &stack);
    assert_eq!(second["count"], 2, "the same instance");
    assert_eq!(boot_id(&second), boot_id(&first));
    assert_eq!(
        second["get"],
        serde_json::json!({"b": "2"}),
        "no $_GET of the last request"
    );
    assert_eq!(second["post"], serde_json::json!({"c": "3"}));
    assert_eq!(second["request"], serde_json::json!({"b": "2", "c": "3"}));
    assert_eq!(second["method"], "POST");

    let with_cookie = http::request(
        stack.nginx.addr(),
        "GET",
        APP,
        &[("Cookie", "flavour=mint")],
        b"",
    )
    .expect("GET with a cookie");
    let third = json(&with_cookie, &stack);
    assert_eq!(third["cookie"], serde_json::json!({"flavour": "mint"}));
    assert_eq!(third["post"], serde_json::json!([]));
    let fourth = stack.show("");
    assert_eq!(
        fourth["cookie"],
        serde_json::json!([]),
        "no cookie of the last request"
    );
    assert_eq!(fourth["count"], 4);
}

#[test]
fn uploads_are_per_request_and_their_files_are_removed() {
    let stack = Stack::start(1, &[]);
    let (content_type, body) = Multipart::new()
        .file("doc", "note.txt", "text/plain", b"uploaded bytes")
        .finish();
    let upload = http::post(stack.nginx.addr(), APP, &content_type, &body);
    let report = json(&upload, &stack);
    assert_eq!(
        report["files"]["doc"],
        serde_json::json!(["note.txt", 14, "uploaded bytes"])
    );
    let next = stack.show("");
    assert_eq!(next["files"], serde_json::json!([]));
    assert_eq!(next["count"], 2);
}

#[test]
fn status_headers_and_buffers_start_clean_for_each_request() {
    let stack = Stack::start(1, &[]);
    let missing = stack.get("action=status");
    assert_eq!(missing.status, 404, "{}", missing.summary());
    assert_eq!(missing.header("X-Only-Once"), Some("yes"));
    let buffered = stack.get("action=ob");
    assert_eq!(buffered.status, 200);
    assert_eq!(
        buffered.text(),
        "left in a buffer",
        "an unclosed buffer is flushed"
    );
    let next = stack.get("");
    assert_eq!(next.status, 200, "{}", next.summary());
    assert_eq!(next.header("X-Only-Once"), None);
    let report = json(&next, &stack);
    assert_eq!(report["count"], 3);
    assert_eq!(report["status"], 200);
}

#[test]
fn an_uncaught_exception_is_a_500_and_the_same_instance_serves_on() {
    let stack = Stack::start(1, &[]);
    let before = stack.show("");
    let failed = stack.get("action=throw");
    assert_eq!(failed.status, 500, "{}", failed.summary());
    let after = stack.show("");
    assert_eq!(boot_id(&after), boot_id(&before), "no restart");
    assert_eq!(after["count"], 3);
    let logs = stack.logs();
    assert!(
        logs.contains("Uncaught RuntimeException: boom in the handler"),
        "{logs}"
    );
}

#[test]
fn exit_a_fatal_error_or_a_timeout_ends_the_script_and_the_next_request_is_served() {
    let stack = Stack::start(1, &[]);
    let mut last = boot_id(&stack.show(""));
    let exited = stack.get("action=exit");
    assert_eq!(exited.status, 200, "{}", exited.summary());
    assert_eq!(exited.text(), "said goodbye", "the response is delivered");
    for action in ["fatal", "timeout"] {
        let after = stack.show("");
        assert_ne!(
            boot_id(&after),
            last,
            "the script started again before the {action}\n{}",
            stack.logs()
        );
        assert_eq!(after["count"], 1);
        last = boot_id(&after);
        let failed = stack.get(&format!("action={action}"));
        assert_eq!(failed.status, 500, "{action}: {}", failed.summary());
    }
    let after = stack.show("");
    assert_ne!(boot_id(&after), last);
    let logs = stack.logs();
    assert!(logs.contains("ended with exit status 3"), "{logs}");
    assert!(
        logs.contains("Maximum execution time of 1 second exceeded"),
        "{logs}"
    );
    assert!(
        logs.contains("Allowed memory size of 16777216 bytes exhausted"),
        "{logs}"
    );
}

/// What the script wrote to `path`, once it has written something: the file
/// exists, empty, between `file_put_contents()` creating it and writing.
fn written(path: &Path) -> Option<String> {
    poll_until(Duration::from_secs(10), Duration::from_millis(5), || {
        std::fs::read_to_string(path).ok().filter(|s| !s.is_empty())
    })
}

#[test]
fn finish_request_delivers_what_came_before_and_the_handler_runs_on() {
    let stack = Stack::start(1, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let query = format!("action=finish&marker={}", marker.display());
    let response = stack.get(&query);
    assert_eq!(response.text(), "delivered");
    let ran = written(&marker);
    assert_eq!(ran.as_deref(), Some("ran on"));
    assert_eq!(stack.show("")["count"], 2);
}

#[test]
fn fibers_run_inside_the_handler() {
    let stack = Stack::start(1, &[]);
    for _ in 0..3 {
        let response = stack.get("action=fiber");
        assert_eq!(
            response.text(),
            "fiber suspended, fiber returned",
            "{}",
            stack.logs()
        );
    }
    assert_eq!(stack.show("")["count"], 4);
}

#[test]
fn handle_request_outside_worker_mode_or_inside_its_handler_throws() {
    let stack = Stack::start(1, &[]);
    let classic = http::get(stack.nginx.addr(), "/worker/classic.php");
    assert_eq!(
        classic.text(),
        "frankenphp_handle_request() called while not in worker mode"
    );
    let nested = stack.get("action=nested");
    assert_eq!(
        nested.text(),
        "RuntimeException: frankenphp_handle_request() called from its own handler"
    );
}

#[test]
fn max_requests_starts_the_script_again_after_that_many() {
    let stack = Stack::start(
        1,
        &[
            "--worker-max-requests",
            "3",
            "--metrics-listen",
            "127.0.0.1:0",
            "--status-path",
            "/fpm-status",
        ],
    );
    let counts: Vec<u64> = (0..7)
        .map(|_| stack.show("")["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1], "{}", stack.logs());
    let other = http::get(stack.nginx.addr(), "/worker/classic.php");
    assert_eq!(other.status, 200);
    let metrics = http::get(stack.tfpm.metrics_addr(), "/metrics").text();
    let series = |name: &str| {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        line.rsplit(' ').next().expect("value").to_string()
    };
    assert_eq!(series("tfpm_worker_script_boots_total"), "3", "{metrics}");
    assert_eq!(series("tfpm_worker_script_requests_total"), "7");
    assert_eq!(series("tfpm_worker_script_threads_busy"), "0");
    assert_eq!(
        series("tfpm_requests_accepted_total"),
        "8",
        "every request is accepted"
    );
    // The status page shows the same after php-fpm's fields.
    let mut conn = FcgiClient::connect_tcp(stack.tfpm.addr()).expect("connect");
    let page = CgiRequest::get(&docroot(), "/fpm-status");
    let page = conn.send(&page, false).expect("status page").cgi().text();
    let script = script("app.php");
    let want = format!(
        "worker script:        {}\nworker script boots:  3\nworker script requests: 7\n",
        script.display()
    );
    assert!(page.contains(&want), "{page}");
}

#[test]
fn sessions_never_reach_the_next_client_and_a_save_handler_set_at_boot_stays() {
    let dir = tempfile::tempdir().expect("session dir");
    let save_path = format!("session.save_path={}", dir.path().display());
    let stack = Stack::start(1, &["-d", &save_path]);
    let alice = stack.get("action=session&user=alice");
    let alice_report = json(&alice, &stack);
    let cookie = alice
        .header("Set-Cookie")
        .expect("a session cookie")
        .to_string();
    let stranger = json(&stack.get("action=session"), &stack);
    assert_ne!(stranger["id"], alice_report["id"], "no session id leaks");
    assert_eq!(stranger["session"], serde_json::json!([]));
    let id = cookie.split(';').next().expect("name=value");
    let again = http::request(
        stack.nginx.addr(),
        "GET",
        &format!("{APP}?action=session"),
        &[("Cookie", id)],
        b"",
    )
    .expect("GET with the cookie");
    let again = json(&again, &stack);
    assert_eq!(again["id"], alice_report["id"]);
    assert_eq!(
        again["session"],
        serde_json::json!({"user": "alice"}),
        "the session was saved"
    );
    assert_eq!(
        again["writes"], 2,
        "the save handler set at boot wrote both earlier sessions"
    );
}

#[test]
fn a_script_that_cannot_boot_at_start_up_stops_tfpm_with_the_reason() {
    let script = script("boot_fails.php");
    let mut tfpm = std::process::Command::new(TFPM)
        .args(["--listen", "127.0.0.1:0", "--threads", "1", "--worker"])
        .arg(&script)
        .args(["--worker-threads", "2", "--worker-max-failures", "2"])
        .args(["-d", "display_errors=0", "-d", "log_errors=1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tfpm");
    let (status, exited) = wait_or_kill(&mut tfpm, Duration::from_secs(30));
    let mut log = String::new();
    let stderr = tfpm.stderr.as_mut().expect("stderr");
    std::io::Read::read_to_string(stderr, &mut log).expect("read the log");
    assert!(exited && !status.success(), "{status:?}\n{log}");
    assert!(log.contains("the app cannot boot"), "{log}");
    assert!(log.contains("failed to boot 2 time(s) in a row"), "{log}");
}

/// A site in `dir`: a worker script, `index.php`, that boots until a file
/// `broken` appears there, and a classic script, `classic.php`.
fn fragile_site(dir: &Path) -> PathBuf {
    let script = dir.join("index.php");
    let code = "<?php\nif (file_exists(__DIR__ . '/broken')) {\n    \
        throw new LogicException('the app cannot boot');\n}\n\
        while (frankenphp_handle_request(function () { echo 'served'; })) {\n}\n";
    std::fs::write(&script, code).expect("write the script");
    std::fs::write(dir.join("classic.php"), "<?php echo 'classic';").expect("write");
    script
}

#[test]
fn a_script_that_cannot_boot_again_backs_off_and_its_requests_get_a_503() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = fragile_site(dir.path());
    let stack = Stack::in_site(
        dir.path(),
        &script,
        1,
        &["--worker-max-failures", "1", "--worker-max-requests", "1"],
    );
    let first = http::get(stack.nginx.addr(), "/index.php");
    assert_eq!(first.text(), "served", "{}", stack.logs());
    std::fs::write(dir.path().join("broken"), "").expect("break the app");
    // The script ends after each request and boots again, now in vain.
    let refused = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        let response = http::get(stack.nginx.addr(), "/index.php");
        (response.status != 200).then_some(response)
    });
    let refused = refused.unwrap_or_else(|| panic!("never refused\n{}", stack.logs()));
    assert_eq!(refused.status, 503, "{}", refused.summary());
    let other = http::get(stack.nginx.addr(), "/classic.php");
    assert_eq!(other.text(), "classic", "the pool's other scripts run");
    let logs = stack.logs();
    assert!(logs.contains("the app cannot boot"), "{logs}");
    assert!(
        logs.contains("ended before it called frankenphp_handle_request()"),
        "{logs}"
    );
}

#[test]
fn a_reload_whose_script_cannot_boot_keeps_the_running_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = fragile_site(dir.path());
    let stack = Stack::in_site(dir.path(), &script, 1, &["--worker-max-failures", "2"]);
    assert_eq!(http::get(stack.nginx.addr(), "/index.php").text(), "served");
    std::fs::write(dir.path().join("broken"), "").expect("break the app");
    stack.tfpm.signal(Signal::SIGUSR2);
    let abandoned = poll_until(Duration::from_secs(30), Duration::from_millis(20), || {
        stack.tfpm.log().contains("reload abandoned").then_some(())
    });
    assert!(abandoned.is_some(), "{}", stack.logs());
    let logs = stack.logs();
    assert!(logs.contains("failed to boot 2 time(s) in a row"), "{logs}");
    for _ in 0..3 {
        let response = http::get(stack.nginx.addr(), "/index.php");
        assert_eq!(response.text(), "served", "{}", stack.logs());
    }
}

#[test]
fn ten_thousand_requests_on_every_thread_at_once_keep_memory_flat() {
    let stack = Stack::start(4, &[]);
    let addr = stack.tfpm.addr();
    let boots = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|_| s.spawn(move || client_run(addr, 1250)))
            .collect();
        let mut boots: Vec<String> = clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect();
        boots.sort();
        boots.dedup();
        boots
    });
    assert!(
        boots.len() <= 4,
        "at most one boot per thread: {boots:?}\n{}",
        stack.logs()
    );
    assert!(
        !stack.tfpm.log().contains("worker exited"),
        "{}",
        stack.tfpm.log()
    );
}

/// `n` requests on one kept FastCGI connection; the boot ids seen. The
/// memory the script holds must not grow from the 50th request on.
fn client_run(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut conn = FcgiClient::connect_tcp(addr).expect("connect");
    let mut boots = Vec::new();
    let mut baseline = None;
    for i in 0..n {
        let request =
            CgiRequest::get(&docroot(), APP).query(&format!("i={i}&pad={}", "x".repeat(i % 64)));
        let answer = conn.send(&request, true).expect("request");
        let report: Value = serde_json::from_slice(&answer.cgi().body).expect("JSON");
        assert_eq!(report["get"]["i"], i.to_string());
        boots.push(boot_id(&report));
        let memory = report["memory"].as_u64().expect("memory");
        let base = *baseline.get_or_insert(memory);
        if i >= 50 {
            assert!(
                memory <= base + 64 * 1024,
                "memory grew: {base} -> {memory} at request {i}"
            );
        } else {
            baseline = Some(memory.max(base));
        }
    }
    boots
}

#[test]
fn a_reload_lets_requests_in_flight_finish_and_boots_the_app_again() {
    let stack = Stack::start(1, &[]);
    let before = boot_id(&stack.show(""));
    let addr = stack.nginx.addr();
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("in-flight");
    let query = format!("{APP}?action=sleep&ms=500&marker={}", marker.display());
    let slow = std::thread::spawn(move || http::get(addr, &query));
    let in_flight = poll_until(Duration::from_secs(10), Duration::from_millis(5), || {
        marker.exists().then_some(())
    });
    assert!(in_flight.is_some(), "{}", stack.logs());
    stack.tfpm.signal(Signal::SIGUSR2);
    let answered = slow.join().expect("slow client");
    assert_eq!(answered.text(), "slept", "{}", stack.logs());
    let after = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
        let id = boot_id(&stack.show(""));
        (id != before).then_some(id)
    });
    assert!(
        after.is_some(),
        "the app booted again after the reload\n{}",
        stack.logs()
    );
}

/// Three clients that GET `path(i)` (the i-th request) through nginx until
/// `finish` is called; it fails the test if any request failed.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    fn start(addr: SocketAddr, path: fn(usize) -> String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..3)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let (mut served, mut failed) = (0, Vec::new());
                    for i in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let answer = http::get(addr, &path(i));
                        match answer.status {
                            200 => served += 1,
                            _ => failed.push(answer.summary()),
                        }
                    }
                    (served, failed)
                })
            })
            .collect();
        Load { stop, clients }
    }

    fn finish(self, stack: &Stack) {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            let (served, failed) = client.join().expect("client");
            assert!(
                served > 0 && failed.is_empty(),
                "{served} served, failed: {failed:?}\n{}",
                stack.logs()
            );
        }
    }
}

#[test]
fn a_reload_under_load_fails_no_request() {
    let stack = Stack::start(2, &[]);
    let before = boot_id(&stack.show(""));
    let load = Load::start(stack.nginx.addr(), |_| APP.to_string());
    stack.tfpm.signal(Signal::SIGUSR2);
    // Done once the new workers serve: the app booted again.
    let after = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
        let reloaded = stack
            .tfpm
            .log()
            .matches("ready to handle connections")
            .count()
            >= 2;
        let id = boot_id(&stack.show(""));
        (reloaded && id != before).then_some(id)
    });
    assert!(after.is_some(), "no reload\n{}", stack.logs());
    load.finish(&stack);
}

#[test]
fn pool_directives_configure_worker_mode_and_boot_only_environment() {
    let dir = tempfile::tempdir().expect("config dir");
    let conf = dir.path().join("php-fpm.conf");
    let app = script("app.php");
    std::fs::write(
        &conf,
        format!(
            "[global]\nerror_log = /proc/self/fd/2\n\
             [app]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 2\n\
             worker = {}\nworker.num = 1\nworker.max_requests = 2\n\
             worker.env[APP_MODE] = booted\nphp_admin_flag[display_errors] = off\n",
            app.display()
        ),
    )
    .expect("write config");
    let conf = conf.to_str().expect("UTF-8 path");
    let check = std::process::Command::new(TFPM)
        .args(["-t", "-R", "-y", conf])
        .output()
        .expect("tfpm -t");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let tfpm = Tfpm::start(Path::new(TFPM), &["-F", "-R", "-y", conf]);
    let nginx = Nginx::start(&tfpm.addr().to_string(), &docroot(), "");
    let stack = Stack { nginx, tfpm };
    let first = stack.show("");
    assert_eq!(first["boot"]["app_env"], "booted");
    assert_eq!(first["app_env_in_server"], false);
    let counts: Vec<u64> = (0..3)
        .map(|_| stack.show("")["count"].as_u64().expect("count"))
        .collect();
    assert_eq!(counts, [2, 1, 2], "worker.max_requests = 2");
}

#[test]
fn a_client_that_leaves_does_not_end_the_script() {
    let stack = Stack::start(1, &[]);
    let before = stack.show("");
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("linger");
    let query = format!("action=linger&marker={}", marker.display());
    let request = CgiRequest::get(&docroot(), APP).query(&query);
    let params = request.params();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut conn = FcgiClient::connect_tcp(stack.tfpm.addr()).expect("connect");
    conn.stream()
        .write_all(&encode_request(1, &params, b"", false))
        .expect("send");
    let started = poll_until(Duration::from_secs(10), Duration::from_millis(5), || {
        marker.exists().then_some(())
    });
    assert!(started.is_some(), "{}", stack.logs());
    drop(conn);
    let done = marker.with_extension("done");
    let seen = written(&done);
    assert_eq!(
        seen.as_deref(),
        Some("aborted"),
        "connection_aborted() saw it"
    );
    let after = stack.show("");
    assert_eq!(boot_id(&after), boot_id(&before), "the same instance");
    assert_eq!(after["count"], 3);
}

/// Whether opcache caches again: the worker script runs with it, no restart
/// is pending, and a classic script is served from the cache.
fn opcache_caches(stack: &Stack) -> Option<String> {
    let report = json(&stack.get("action=opcache"), stack);
    let classic = http::get(stack.nginx.addr(), "/opcache/status.php?file=status.php").text();
    let cached: Value = serde_json::from_str(&classic).ok()?;
    let caching =
        report["enabled"] == true && report["pending"] == false && cached["cached"] == true;
    caching.then(|| report["boot"].as_str().unwrap_or_default().to_string())
}

/// opcache in worker mode with 2 threads, and the options for its restarts.
fn opcache_stack(extra: &[&str]) -> Stack {
    let mut args = vec!["-d", "zend_extension=opcache", "-d", "opcache.enable=1"];
    args.extend_from_slice(extra);
    Stack::start(2, &args)
}

/// Has opcache restart three times (`restart` asks it to, through nginx,
/// and says what it did) while three clients keep the worker script and a
/// classic script busy: every request answers, and each time the restart
/// runs (it waits for the worker scripts, which end and boot again) and
/// opcache caches again, for them and for classic scripts.
fn restarts_under_load(stack: &Stack, restart: impl Fn(SocketAddr) -> String) {
    let booted = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        opcache_caches(stack)
    });
    let mut booted = booted.unwrap_or_else(|| panic!("opcache never cached\n{}", stack.logs()));
    let addr = stack.nginx.addr();
    let load = Load::start(addr, |i| match i % 2 {
        0 => format!("{APP}?action=opcache"),
        _ => "/worker/classic.php".to_string(),
    });
    for round in 0..3 {
        let said = restart(addr);
        let after = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
            opcache_caches(stack).filter(|boot| *boot != booted)
        });
        booted = after.unwrap_or_else(|| {
            let report = stack.get("action=opcache").text();
            let classic = http::get(addr, "/opcache/status.php?file=status.php").text();
            panic!(
                "round {round} ({said}): caching never resumed (worker {report}, classic {classic})\n{}",
                stack.logs()
            )
        });
    }
    load.finish(stack);
    // A thread whose script booted while the restart was pending serves at
    // most one more request without the cache, then starts again.
    let all_cached = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
        let enabled = |_| json(&stack.get("action=opcache"), stack)["enabled"] == true;
        (0..10).all(enabled).then_some(())
    });
    assert!(
        all_cached.is_some(),
        "a script runs without the cache\n{}",
        stack.logs()
    );
    let log = stack.tfpm.log();
    assert!(log.contains("opcache scheduled a restart"), "{log}");
    assert!(!log.contains("worker exited"), "{}", stack.logs());
}

#[test]
fn opcache_reset_while_worker_threads_run_restarts_the_scripts_and_caching_resumes() {
    let stack = opcache_stack(&[]);
    restarts_under_load(&stack, |addr| {
        let reset = http::get(addr, "/opcache/reset.php");
        assert_eq!(reset.text(), "reset ok", "{}", stack.logs());
        "opcache_reset()".into()
    });
}

#[test]
fn opcache_out_of_memory_while_worker_threads_run_restarts_the_scripts_and_caching_resumes() {
    let stack = opcache_stack(&[
        "-d",
        "opcache.memory_consumption=8",
        "-d",
        "opcache.interned_strings_buffer=1",
        "-d",
        "opcache.file_update_protection=0",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let fill = format!("/opcache/fill.php?dir={}", dir.path().display());
    restarts_under_load(&stack, |addr| {
        let filled = http::get(addr, &fill).text();
        assert!(
            filled.starts_with("restart scheduled"),
            "{filled}\n{}",
            stack.logs()
        );
        filled
    });
}

#[test]
fn request_terminate_timeout_ends_that_request_and_the_script_starts_again() {
    let stack = Stack::start(1, &["--request-terminate-timeout", "1s"]);
    let before = boot_id(&stack.show(""));
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("in-flight");
    let slow = stack.get(&format!(
        "action=sleep&ms=20000&marker={}",
        marker.display()
    ));
    assert_eq!(slow.status, 500, "{}\n{}", slow.summary(), stack.logs());
    let after = stack.show("");
    assert_ne!(boot_id(&after), before, "{}", stack.logs());
    assert_eq!(after["count"], 1);
    let logs = stack.logs();
    assert!(logs.contains("Request terminated after 1 second"), "{logs}");
}

#[test]
fn worker_watch_starts_the_script_again_when_its_code_changes() {
    let site = tempfile::tempdir().expect("site dir");
    let app = site.path().join("app.php");
    std::fs::copy(script("app.php"), &app).expect("copy app.php");
    let dir = site.path().to_str().expect("UTF-8 path");
    let front = app.to_str().expect("UTF-8 path");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--worker",
        front,
        "--worker-threads",
        "1",
        "--worker-watch",
        dir,
    ];
    let tfpm = Tfpm::start(Path::new(TFPM), &args);
    let mut conn = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let mut boot = || {
        let request = CgiRequest::get(site.path(), "/app.php");
        let answer = conn.send(&request, true).expect("request");
        let report: Value = serde_json::from_slice(&answer.cgi().body)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", answer.cgi().text(), tfpm.log()));
        boot_id(&report)
    };
    let before = boot();
    assert_eq!(boot(), before, "no change, no restart");
    std::fs::write(site.path().join("helper.php"), "<?php // new code").expect("write");
    let after = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
        let id = boot();
        (id != before).then_some(id)
    });
    assert!(after.is_some(), "{}", tfpm.log());
    assert!(tfpm.log().contains("files changed under"), "{}", tfpm.log());
}

#[test]
fn handles_opened_at_boot_and_each_requests_body_keep_working() {
    let stack = Stack::start(1, &[]);
    for body in ["first body", "second"] {
        let answer = http::post(
            stack.nginx.addr(),
            &format!("{APP}?action=handles"),
            "text/plain",
            body.as_bytes(),
        );
        assert_eq!(answer.text(), format!("<?php||{body}"), "{}", stack.logs());
    }
}

#[test]
fn ini_set_and_putenv_outlive_their_request_until_the_script_starts_again() {
    let stack = Stack::start(1, &["--worker-max-requests", "3"]);
    assert_eq!(stack.get("action=persist&set=kept").text(), "5 kept");
    assert_eq!(
        stack.get("action=persist").text(),
        "5 kept",
        "as FrankenPHP"
    );
    stack.get("");
    let fresh = stack.get("action=persist").text();
    assert!(
        !fresh.contains("kept"),
        "a new script starts clean: {fresh}"
    );
}

#[test]
fn a_script_that_dies_after_every_request_serves_concurrent_clients() {
    let stack = Stack::start(2, &[]);
    let addr = stack.nginx.addr();
    let answers: Vec<Response> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..10)
            .map(|_| s.spawn(move || http::get(addr, &format!("{APP}?action=die_after"))))
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect()
    });
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}\n{}", answer.summary(), stack.logs());
        assert!(
            answer.text().starts_with("served by "),
            "{}",
            answer.summary()
        );
    }
    let mut boots: Vec<String> = answers.iter().map(|a| a.text()).collect();
    boots.sort();
    boots.dedup();
    assert_eq!(boots.len(), 10, "a new instance for every request");
}
