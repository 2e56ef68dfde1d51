//! The engine under pressure, through real FastCGI requests: execution
//! timeouts (also inside fibers and while a body trickles in), the hard limit
//! per request and the retirement of a thread that cannot be stopped, signal
//! hygiene, per-request isolation (environment, locale, working directory),
//! fibers calling back into the host, and a fiber stack overflow.

use std::path::Path;
use std::thread;
use std::time::Duration;

use fcgi_tests::cgi::{CgiRequest, CgiResponse};
use fcgi_tests::daemon::{Signal, Tfpm};
use fcgi_tests::fcgi_client::{
    encode_pair, encode_record, encode_stream, FcgiClient, FcgiResponse,
};
use fcgi_tests::launch::Launch;
use fcgi_tests::{docroot, md5_hex, php_has_stack_guard, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// As php.ini-production: errors go to the log (FastCGI stderr), not the page.
const PHP_INI: [&str; 2] = ["display_errors=0", "log_errors=1"];
const WAIT: Duration = Duration::from_secs(30);
/// Turns off PHP 8.3+'s C-stack check, so that runaway recursion overflows
/// the stack as it does on 8.2 (the setting does not exist there).
const NO_STACK_GUARD: [&str; 2] = ["-d", "zend.max_allowed_stack_size=-1"];

fn start(threads: &str, extra: &[&str]) -> Tfpm {
    Launch::new(Path::new(TFPM))
        .threads(threads)
        .args(extra)
        .inis(&PHP_INI)
        .start()
}

fn get(script: &str, query: &str) -> CgiRequest {
    CgiRequest::get(&docroot(), script).query(query)
}

fn send(tfpm: &Tfpm, request: &CgiRequest) -> FcgiResponse {
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    client.send(request, false).unwrap_or_else(|e| {
        panic!(
            "request to {} failed: {e}\n{}",
            request.script_name,
            tfpm.log()
        )
    })
}

fn fetch(tfpm: &Tfpm, script: &str, query: &str) -> (CgiResponse, String) {
    let response = tfpm.fetch(script, query);
    (response.cgi(), response.stderr_text())
}

/// Waits for `text` in the daemon's log (which a thread copies from its stderr).
fn assert_logged(tfpm: &Tfpm, text: &str) {
    let found = poll_until(WAIT, Duration::from_millis(10), || {
        tfpm.log().contains(text).then_some(())
    });
    assert!(found.is_some(), "`{text}` not logged\n{}", tfpm.log());
}

/// A request on each thread must still work: the pool lost no thread.
fn assert_all_threads_serve(tfpm: &Tfpm, threads: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let query = format!("dir={}&n={threads}", dir.path().display());
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, query) = (tfpm.addr(), query.clone());
            thread::spawn(move || {
                let mut client = FcgiClient::connect_tcp(addr).expect("connect");
                client
                    .send(&get("/engine/barrier.php", &query), false)
                    .expect("barrier request")
                    .cgi()
            })
        })
        .collect();
    for handle in handles {
        let response = handle.join().expect("client thread");
        assert_eq!(
            response.text(),
            "all here",
            "not every thread is serving\n{}",
            tfpm.log()
        );
    }
}

#[test]
fn max_execution_time_ends_a_busy_loop_and_the_thread_serves_on() {
    let tfpm = start("1", &[]);
    let (response, stderr) = fetch(&tfpm, "/engine/loop.php", "t=1");
    assert_eq!(response.status, 500, "{stderr}");
    assert!(
        stderr.contains("Maximum execution time of 1 second exceeded"),
        "{stderr}"
    );
    for _ in 0..3 {
        assert_eq!(
            fetch(&tfpm, "/hello.php", "").0.text().trim(),
            "Hello, world!"
        );
    }
}

#[test]
fn max_execution_time_fires_inside_a_running_and_a_suspended_fiber() {
    let tfpm = start("1", &[]);
    for (where_, line) in [("fiber", "line 12"), ("main", "line 18")] {
        let (response, stderr) = fetch(
            &tfpm,
            "/engine/fiber_timeout.php",
            &format!("where={where_}"),
        );
        // The fiber flushed output before the timer fired, so the status was already sent.
        assert_eq!(response.text(), "in fiber\n");
        assert!(
            stderr.contains("Maximum execution time of 1 second exceeded"),
            "{stderr}"
        );
        assert!(stderr.contains(line), "{where_}: {stderr}");
    }
    assert_eq!(
        fetch(&tfpm, "/hello.php", "").0.text().trim(),
        "Hello, world!"
    );
}

#[test]
fn max_input_time_ends_a_request_whose_body_stalls() {
    let tfpm = start("1", &["-d", "max_input_time=1"]);
    let script = docroot().join("engine/slow_body.php");
    let params = [
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_FILENAME", script.to_str().expect("UTF-8")),
        ("SCRIPT_NAME", "/engine/slow_body.php"),
        // multipart: PHP parses it after arming max_input_time (urlencoded is read before).
        ("CONTENT_TYPE", "multipart/form-data; boundary=XyZ"),
        ("CONTENT_LENGTH", "1000"),
    ];
    let mut bytes = encode_record(1, 1, &[0, 1, 0, 0, 0, 0, 0, 0]);
    let pairs: Vec<u8> = params
        .iter()
        .flat_map(|(n, v)| encode_pair(n.as_bytes(), v.as_bytes()))
        .collect();
    bytes.extend(encode_stream(4, 1, &pairs));
    // Ten of the thousand promised bytes, then nothing.
    bytes.extend(encode_record(
        5,
        1,
        b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1234",
    ));
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    std::io::Write::write_all(client.stream(), &bytes).expect("write");
    let response = client.read_response().unwrap_or_else(|e| {
        panic!(
            "no response while the body is still missing: {e}\n{}",
            tfpm.log()
        )
    });
    let stderr = response.stderr_text();
    assert_eq!(response.cgi().status, 500, "{stderr}");
    assert!(
        stderr.contains("Maximum execution time of 1 second exceeded"),
        "{stderr}"
    );
    drop(client);
    assert_eq!(
        fetch(&tfpm, "/hello.php", "").0.text().trim(),
        "Hello, world!"
    );
}

#[test]
fn hard_limit_interrupts_sleep_and_usleep() {
    let tfpm = start("2", &["--request-terminate-timeout", "1"]);
    for how in ["sleep", "usleep"] {
        let (response, stderr) = fetch(&tfpm, "/engine/hang.php", &format!("how={how}"));
        assert!(
            stderr.contains("Request terminated after 1 second (request_terminate_timeout)"),
            "{how}: {stderr}"
        );
        assert_eq!(response.text(), "hanging\n", "{how}");
    }
    assert_logged(&tfpm, "terminating (request_terminate_timeout) thread=php-");
    let log = tfpm.log();
    assert!(
        !log.contains("retiring"),
        "an interruptible thread was retired\n{log}"
    );
    assert_all_threads_serve(&tfpm, 2);
}

/// As in php-fpm, the hard limit ends with the script: PHP's request
/// shutdown (shutdown functions, destructors) runs outside it, and the
/// status page shows the thread `Finishing`, unless
/// request_terminate_timeout_track_finished (here its command-line form).
#[test]
fn the_hard_limit_covers_shutdown_functions_only_when_told_to() {
    let tfpm = start(
        "1",
        &[
            "--request-terminate-timeout",
            "1",
            "--status-path",
            "/status",
        ],
    );
    let (page, finishing) = thread::scope(|s| {
        let page = s.spawn(|| fetch(&tfpm, "/engine/slow_shutdown.php", ""));
        let finishing = poll_until(WAIT, Duration::from_millis(20), || {
            let status = fetch(&tfpm, "/status", "full").0.text();
            status.contains("Finishing").then_some(status)
        });
        (page.join().expect("client"), finishing)
    });
    let (response, stderr) = page;
    assert_eq!(response.text(), "script done\nshutdown done\n", "{stderr}");
    assert!(finishing.is_some(), "never shown as Finishing");
    let flags = [
        "--request-terminate-timeout",
        "1",
        "--request-terminate-timeout-track-finished",
    ];
    let tracking = start("1", &flags);
    let (response, stderr) = fetch(&tracking, "/engine/slow_shutdown.php", "");
    assert_eq!(response.text(), "script done\n", "{stderr}");
    assert!(
        stderr.contains("Request terminated after 1 second"),
        "{stderr}"
    );
}

#[test]
fn a_thread_that_cannot_be_interrupted_is_retired_and_replaced() {
    let tfpm = start("2", &["--request-terminate-timeout", "1"]);
    // PHP retries its poll() after EINTR, so this read cannot be interrupted.
    let (response, _) = fetch(&tfpm, "/engine/hang.php", "how=socket");
    assert_eq!(response.status, 200, "headers were sent before the hang");
    assert_eq!(
        response.text(),
        "hanging\n",
        "the response ended where the script stopped"
    );
    assert_logged(&tfpm, "retiring it and starting a replacement");
    assert_all_threads_serve(&tfpm, 2);
    // Before any output, the client gets a complete error response.
    let (response, _) = fetch(&tfpm, "/engine/hang.php", "how=socket&quiet=1");
    assert_eq!(response.status, 500);
    assert!(
        response.text().contains("request_terminate_timeout"),
        "{}",
        response.text()
    );
    assert_all_threads_serve(&tfpm, 2);
}

#[test]
fn putenv_is_per_request_and_never_leaks() {
    let tfpm = start("2", &[]);
    let addr = tfpm.addr();
    let setter = thread::spawn(move || {
        let mut client = FcgiClient::connect_tcp(addr).expect("connect");
        client
            .send(&get("/engine/env.php", "set=mine&wait=600"), false)
            .expect("request")
            .cgi()
            .text()
    });
    // While the first request holds its value, another thread must not see it.
    let seen = poll_until(WAIT, Duration::from_millis(20), || {
        let (response, _) = fetch(&tfpm, "/engine/env.php", "");
        Some(response.text())
    })
    .expect("a response");
    assert_eq!(
        seen,
        r#"{"getenv":false,"in_all":null,"param":"\/engine\/env.php"}"#
    );
    let mine = setter.join().expect("setter");
    assert_eq!(
        mine,
        r#"{"getenv":"mine","in_all":"mine","param":"\/engine\/env.php"}"#
    );
    for _ in 0..4 {
        let (response, _) = fetch(&tfpm, "/engine/env.php", "");
        assert!(
            response.text().contains(r#""getenv":false"#),
            "{}",
            response.text()
        );
    }
}

#[test]
fn setlocale_is_per_thread_and_undone_after_the_request() {
    let tfpm = start("2", &[]);
    let addr = tfpm.addr();
    let setter = thread::spawn(move || {
        let mut client = FcgiClient::connect_tcp(addr).expect("connect");
        client
            .send(&get("/engine/locale.php", "set=C.UTF-8&wait=600"), false)
            .expect("request")
            .cgi()
            .text()
    });
    let (other, _) = fetch(&tfpm, "/engine/locale.php", "");
    assert!(
        other.text().contains(r#""numeric":"C""#),
        "{}",
        other.text()
    );
    let mine = setter.join().expect("setter");
    assert!(
        mine.contains(r#""set":"C.UTF-8""#) && mine.contains(r#""numeric":"C.UTF-8""#),
        "{mine}"
    );
    for _ in 0..4 {
        let (after, _) = fetch(&tfpm, "/engine/locale.php", "");
        assert!(
            after.text().contains(r#""numeric":"C""#),
            "{}",
            after.text()
        );
    }
}

#[test]
fn the_working_directory_is_the_scripts_own() {
    let tfpm = start("2", &[]);
    let (response, _) = fetch(&tfpm, "/engine/cwd.php", "");
    let dir = docroot().join("engine");
    let expected = format!(
        r#"{{"cwd":"{}","included":"engine"}}"#,
        dir.display().to_string().replace('/', "\\/")
    );
    assert_eq!(response.text(), expected);
}

#[test]
fn child_processes_start_with_no_blocked_signals() {
    let tfpm = start("2", &[]);
    let (response, _) = fetch(&tfpm, "/engine/spawn.php", "");
    let text = response.text();
    let blocked: Vec<&str> = text.lines().filter(|l| l.starts_with("SigBlk:")).collect();
    assert_eq!(blocked.len(), 2, "{text}");
    assert!(
        blocked.iter().all(|l| l.ends_with("0000000000000000")),
        "{text}"
    );
}

#[test]
fn process_wide_pcntl_calls_are_refused_with_a_warning() {
    let tfpm = start("1", &[]);
    let (response, _) = fetch(&tfpm, "/engine/pcntl.php", "");
    let text = response.text();
    for name in ["pcntl_sigprocmask", "pcntl_sigtimedwait", "pcntl_exec"] {
        assert!(
            text.contains(&format!(r#""{name}":false"#)),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!(
                r#""{name}_warning":"{name}(): Not available under tfpm"#
            )),
            "{name}: {text}"
        );
    }
}

#[test]
fn daemon_signals_work_while_every_thread_runs_php() {
    let mut tfpm = start("2", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let query = format!("dir={}&ms=1500", dir.path().display());
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (addr, query) = (tfpm.addr(), query.clone());
            thread::spawn(move || {
                let mut client = FcgiClient::connect_tcp(addr).expect("connect");
                client
                    .send(&get("/engine/busy.php", &query), false)
                    .expect("request")
                    .cgi()
            })
        })
        .collect();
    let started = poll_until(WAIT, Duration::from_millis(5), || {
        let count = std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        (count == 2).then_some(())
    });
    assert!(
        started.is_some(),
        "the busy requests did not start\n{}",
        tfpm.log()
    );
    tfpm.signal(Signal::SIGUSR1);
    tfpm.signal(Signal::SIGUSR2);
    let logged = poll_until(WAIT, Duration::from_millis(10), || {
        let log = tfpm.log();
        (log.contains("error log file re-opened") && log.contains("SIGUSR2")).then_some(())
    });
    assert!(logged.is_some(), "{}", tfpm.log());
    // Graceful stop: the running requests finish first.
    let (status, on_its_own) = tfpm.stop_with(Signal::SIGQUIT);
    assert!(status.success() && on_its_own, "{status}\n{}", tfpm.log());
    for handle in busy {
        let response = handle.join().expect("client");
        assert_eq!((response.status, response.text().as_str()), (200, "done\n"));
    }
}

#[test]
fn ten_thousand_fibers_in_one_request() {
    let tfpm = start("1", &[]);
    let (response, stderr) = fetch(&tfpm, "/engine/fibers.php", "n=10000");
    let n: u64 = 10_000;
    let expected = format!("fibers={n} sum={}\n", 3 * n * (n - 1) / 2);
    assert_eq!(response.text(), expected, "{stderr}");
}

#[test]
fn host_callbacks_work_from_inside_fibers() {
    let tfpm = start("2", &[]);
    let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", "op=echo");
    assert_eq!(r.body.len(), 100_001 + "main done\n".len());
    let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", "op=flush");
    assert!(r.text().starts_with("chunk 0\n") && r.text().ends_with("chunk 49\nmain done\n"));
    let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", "op=header");
    assert_eq!((r.status, r.header("X-From-Fiber")), (201, Some("yes")));
    let body = vec![b'z'; 300_000];
    let post = CgiRequest::post(
        &docroot(),
        "/engine/fiber_ops.php",
        "application/octet-stream",
        &body,
    )
    .query("op=input");
    let r = send(&tfpm, &post).cgi();
    assert_eq!(r.text(), format!("input={}\nmain done\n", md5_hex(&body)));
    let (r, stderr) = fetch(&tfpm, "/engine/fiber_ops.php", "op=warning");
    assert_eq!(r.text(), "after warning\nmain done\n");
    assert!(
        stderr.contains("PHP message: PHP Warning:  warning from a fiber"),
        "{stderr}"
    );
    let (r, stderr) = fetch(&tfpm, "/engine/fiber_ops.php", "op=fatal");
    assert_eq!(r.status, 500);
    assert!(stderr.contains("undefined_function_in_fiber"), "{stderr}");
    let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", "op=exit");
    assert_eq!((r.status, r.text().as_str()), (200, "exiting\n"));
    let (r, stderr) = fetch(&tfpm, "/engine/fiber_ops.php", "op=throw");
    assert_eq!(r.status, 500);
    assert!(stderr.contains("thrown in a fiber"), "{stderr}");
    let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", "op=getenv");
    assert_eq!(r.text(), "script=/engine/fiber_ops.php\nmain done\n");
    assert_eq!(
        fetch(&tfpm, "/hello.php", "").0.text().trim(),
        "Hello, world!"
    );
}

#[test]
fn fiber_stack_size_comes_from_ini_and_callbacks_stay_shallow_on_fiber_stacks() {
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "-d",
        "fiber.stack_size=512K",
        "-d",
        "log_errors=1",
    ];
    let env = [("TFPM_MEASURE_CALLBACK_STACK", "1")];
    let mut tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &env);
    assert_eq!(
        fetch(&tfpm, "/engine/ini.php", "name=fiber.stack_size")
            .0
            .text(),
        "512K"
    );
    for op in ["echo", "flush", "header", "warning", "getenv", "exit"] {
        let (r, _) = fetch(&tfpm, "/engine/fiber_ops.php", &format!("op={op}"));
        assert!(r.status < 500, "{op}: {}", r.text());
    }
    let post = CgiRequest::post(&docroot(), "/engine/fiber_ops.php", "text/plain", b"body")
        .query("op=input");
    assert!(send(&tfpm, &post).cgi().text().starts_with("input="));
    let finish = fetch(&tfpm, "/finish.php", "");
    assert!(finish.0.status < 500);
    let (status, on_its_own) = tfpm.stop_with(Signal::SIGTERM);
    assert!(status.success() && on_its_own);
    let log = tfpm.log();
    let line = log
        .lines()
        .find(|l| l.contains("callback stack use"))
        .unwrap_or_else(|| panic!("{log}"));
    println!("{line}");
    for name in ["write", "flush", "read_body", "log", "finish"] {
        let bytes: usize = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"));
        // Inside a 512 KiB fiber stack, a callback must take a small fraction.
        assert!(
            bytes > 0 && bytes < 32 * 1024,
            "{name} used {bytes} bytes: {line}"
        );
    }
}

/// On PHP 8.2, a fiber's stack overflows into its guard page: tfpm names the
/// cause and the script, and only the worker goes. PHP 8.3+ checks a
/// fiber's stack even with `zend.max_allowed_stack_size=-1` (that setting
/// is for the thread's own stack), so the same script is an `Error` there.
#[test]
fn a_fiber_stack_overflow_is_reported_and_costs_only_its_worker() {
    let tfpm = start("1", &NO_STACK_GUARD);
    if php_has_stack_guard() {
        let (answer, errors) = fetch(&tfpm, "/engine/recurse_fiber.php", "");
        assert_eq!(answer.status, 500, "{errors}");
        assert!(errors.contains("Maximum call stack size"), "{errors}");
        assert_eq!(fetch(&tfpm, "/hello.php", "").0.status, 200);
        assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
        assert!(tfpm.stop().success());
        return;
    }
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    // The worker dies mid-request: the connection closes without a response.
    assert!(client
        .send(&get("/engine/recurse_fiber.php", ""), false)
        .is_err());
    let replaced = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
        let log = tfpm.log();
        (log.contains("worker exited: exited on signal")
            && log.matches("worker ready").count() == 2)
            .then_some(log)
    });
    let log = replaced.unwrap_or_else(|| panic!("no replacement worker\n{}", tfpm.log()));
    assert!(
        log.contains("tfpm: fatal: stack overflow inside a Fiber"),
        "{log}"
    );
    assert!(log.contains("recurse_fiber.php"), "{log}");
    // The master carries on with a new worker.
    assert_eq!(fetch(&tfpm, "/hello.php", "").0.status, 200);
    assert!(tfpm.stop().success());
}

#[test]
fn one_huge_echo_streams_without_a_second_copy() {
    let tfpm = start("1", &["-d", "memory_limit=256M"]);
    assert_eq!(fetch(&tfpm, "/hello.php", "").0.status, 200);
    tfpm.reset_peak();
    let base = tfpm.mem().rss_kib;
    let (response, _) = fetch(&tfpm, "/huge_echo.php", "mb=64");
    assert_eq!(response.body.len(), 64 << 20);
    let peak = tfpm.mem().hwm_kib;
    // PHP's own 64 MiB string is in there; a second whole copy would add 64 MiB more.
    let growth_mib = peak.saturating_sub(base) / 1024;
    assert!(
        growth_mib < 96,
        "RSS grew by {growth_mib} MiB for a 64 MiB echo"
    );
}

#[test]
fn php_value_and_php_admin_value_apply_to_their_request_only() {
    // One thread, so every request below runs on the same interpreter.
    let tfpm = start("1", &[]);
    let ini = |query: &str, param: Option<(&str, &str)>| {
        let mut request = get("/engine/ini_set.php", query);
        if let Some((name, value)) = param {
            request = request.param(name, value);
        }
        send(&tfpm, &request).cgi().text()
    };
    let query = "name=precision&value=3";
    // PHP_VALUE sets a value that the script may still change.
    assert_eq!(ini(query, Some(("PHP_VALUE", "precision=7"))), "set 3");
    // Several lines, several settings.
    let two = ("PHP_VALUE", "precision=7\nmemory_limit=77M");
    let shown = |name: &str, param| {
        let request = get("/engine/ini.php", &format!("name={name}"));
        let request = match param {
            Some((n, v)) => request.param(n, v),
            None => request,
        };
        send(&tfpm, &request).cgi().text()
    };
    assert_eq!(shown("memory_limit", Some(two)), "77M");
    // PHP_ADMIN_VALUE cannot be changed by ini_set().
    assert_eq!(
        ini(query, Some(("PHP_ADMIN_VALUE", "precision=9"))),
        "refused 9"
    );
    // The next request sees the configured value again.
    assert_eq!(ini(query, None), "set 3");
    assert_eq!(shown("precision", None), "14");
    assert_eq!(shown("memory_limit", None), "128M");
    // A setting PHP does not know is named in the daemon's log (php-fpm
    // logs it as an error) and the request runs without it.
    let unknown = ("PHP_VALUE", "no_such_setting=1\nprecision=7");
    assert_eq!(shown("precision", Some(unknown)), "7");
    assert_logged(
        &tfpm,
        "Passing INI directive through FastCGI: unable to set 'no_such_setting'",
    );
}

#[test]
fn php_value_post_max_size_counts_for_the_body() {
    let tfpm = start("1", &[]);
    let form = CgiRequest::post(
        &docroot(),
        "/post.php",
        "application/x-www-form-urlencoded",
        b"a=1&b=2222222222",
    );
    let small = send(&tfpm, &form.clone().param("PHP_VALUE", "post_max_size=8"));
    let big = send(&tfpm, &form);
    assert!(
        !small.cgi().text().contains("2222"),
        "{}",
        small.cgi().text()
    );
    assert!(
        small.stderr_text().contains("POST Content-Length"),
        "{}",
        small.stderr_text()
    );
    assert!(big.cgi().text().contains("2222"), "{}", big.cgi().text());
}

#[test]
fn fpm_get_status_counts_the_pools_requests() {
    let tfpm = start("2", &[]);
    for _ in 0..3 {
        fetch(&tfpm, "/hello.php", "");
    }
    let (status, _) = fetch(&tfpm, "/engine/fpm_status.php", "");
    let text = status.text();
    for field in [
        "\"pool\":\"www\"",
        "\"accepted-conn\":4",
        "\"active-processes\":1",
        "\"idle-processes\":1",
        "\"total-processes\":2",
        "\"process-manager\":\"static\"",
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    // One entry per thread, as php-fpm's per child: this one runs the script.
    let procs = &text[text.find("\"procs\":[").expect("procs")..];
    assert_eq!(procs.matches("\"pid\":").count(), 2, "{procs}");
    assert_eq!(procs.matches("\"state\":\"Running\"").count(), 1, "{procs}");
    assert_eq!(procs.matches("\"state\":\"Idle\"").count(), 1, "{procs}");
    assert!(procs.contains("fpm_status.php"), "{procs}");
}

#[test]
fn the_ping_page_answers_without_a_script() {
    let tfpm = start("1", &["--ping-path", "/ping", "--ping-response", "pong"]);
    // nginx sends the URI as SCRIPT_NAME; no file by that name exists.
    let ping = send(&tfpm, &CgiRequest::get(&docroot(), "/ping"));
    let cgi = ping.cgi();
    assert_eq!((cgi.status, cgi.text().as_str()), (200, "pong"));
    // PHP adds default_charset, as it does under php-fpm.
    assert_eq!(cgi.header("Content-Type"), Some("text/plain;charset=UTF-8"));
    assert_eq!(
        cgi.header("Cache-Control"),
        Some("no-cache, no-store, must-revalidate, max-age=0")
    );
    // HEAD gets the headers only.
    let head = CgiRequest::get(&docroot(), "/ping").param("REQUEST_METHOD", "HEAD");
    let head = send(&tfpm, &head).cgi();
    assert_eq!((head.status, head.text().as_str()), (200, ""));
    // Other URIs are scripts as before.
    assert_eq!(fetch(&tfpm, "/hello.php", "").0.text(), "Hello, world!\n");
    assert!(!tfpm.log().contains("denied"), "{}", tfpm.log());
}

#[test]
fn proc_nice_lasts_for_its_request_only() {
    // One thread, so every request meets the thread that was reniced.
    let tfpm = start("1", &[]);
    let (first, _) = fetch(&tfpm, "/engine/nice.php", "by=5");
    let text = first.text();
    let before: i32 = text[text.find(':').unwrap() + 1..text.find(',').unwrap()]
        .parse()
        .unwrap();
    assert!(
        text.ends_with(&format!(r#""after":{}}}"#, before + 5)),
        "{text}"
    );
    for _ in 0..3 {
        let (next, _) = fetch(&tfpm, "/engine/nice.php", "");
        assert_eq!(
            next.text(),
            format!(r#"{{"before":{before},"after":{before}}}"#)
        );
    }
}

#[test]
fn child_processes_see_the_requests_putenv_changes_and_no_others() {
    // TFPM_B is in the daemon's environment: a child sees it unless the
    // request unset it.
    let mut args = vec!["--listen", "127.0.0.1:0", "--threads", "1"];
    PHP_INI.iter().for_each(|ini| args.extend(["-d", ini]));
    let tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &[("TFPM_B", "from the daemon")]);
    let (changed, _) = fetch(&tfpm, "/engine/putenv_child.php", "set=1");
    let want = r#"[it's a b|unset]"#;
    let text = changed.text();
    for how in [
        "exec",
        "shell_exec",
        "backticks",
        "system",
        "passthru",
        "popen",
        "proc_open",
        "proc_open[]",
    ] {
        assert!(
            text.contains(&format!(r#""{how}":"{want}""#)),
            "{how}: {text}"
        );
    }
    // An environment of proc_open's own replaces everything, as in php-fpm.
    assert!(text.contains(r#""proc_open env":"[unset|own]""#), "{text}");
    // The next request on the same thread: none of it.
    let (plain, _) = fetch(&tfpm, "/engine/putenv_child.php", "");
    assert!(
        plain.text().contains(r#""exec":"[unset|from the daemon]""#),
        "{}",
        plain.text()
    );
}

#[test]
fn a_scripts_umask_does_not_reach_other_threads() {
    let tfpm = start("2", &[]);
    let addr = tfpm.addr();
    let setter = thread::spawn(move || {
        let mut client = FcgiClient::connect_tcp(addr).expect("connect");
        client
            .send(&get("/engine/umask.php", "set=0077&wait=800"), false)
            .expect("request")
            .cgi()
            .text()
    });
    // While the other thread holds umask 0077 (800 ms), every request here
    // sees the daemon's own, and so do the files it creates.
    let (first, _) = fetch(&tfpm, "/engine/umask.php", "");
    let mut answers = 1;
    while !setter.is_finished() {
        let (next, _) = fetch(&tfpm, "/engine/umask.php", "");
        assert_eq!(
            next.text(),
            first.text(),
            "umask changed under a concurrent request"
        );
        answers += 1;
    }
    assert_eq!(setter.join().expect("setter"), "0077");
    assert!(
        answers > 5 && !first.text().starts_with("0077"),
        "{answers}: {}",
        first.text()
    );
}

/// PHP 8.3+ checks the C stack: runaway recursion, in a request or inside a
/// Fiber with a small stack, is an `Error` (a 500), and the same worker and
/// thread serve the next request. PHP 8.2 has no such check: the worker dies
/// and is replaced (the test above and tests/workers.rs).
#[test]
fn runaway_recursion_is_an_error_where_php_checks_the_stack() {
    let tfpm = start("1", &[]);
    let pid = tfpm.worker_pids();
    for script in [
        "/crash/recursion.php",
        "/crash/fiber_overflow.php",
        "/engine/recurse_fiber.php",
    ] {
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        let answer = client.send(&get(script, ""), false);
        if !php_has_stack_guard() {
            assert!(answer.is_err(), "{script} answered on PHP 8.2");
            return;
        }
        let answer = answer.unwrap_or_else(|e| panic!("{script}: {e}\n{}", tfpm.log()));
        let errors = answer.stderr_text();
        assert_eq!(answer.cgi().status, 500, "{script}: {errors}");
        assert!(
            errors.contains("Maximum call stack size") && errors.contains("reached"),
            "{script}: {errors}"
        );
        assert_eq!(
            fetch(&tfpm, "/hello.php", "").0.status,
            200,
            "after {script}"
        );
    }
    assert_eq!(tfpm.worker_pids(), pid, "{}", tfpm.log());
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
    assert!(tfpm.stop().success());
}

/// posix_setrlimit() changes the whole process's limits. A script that
/// lowers RLIMIT_FSIZE and writes past it gets a failed write (EFBIG), not
/// a SIGXFSZ that kills the worker and every request on it, and the limit
/// is back for the next request.
#[test]
fn a_scripts_file_size_limit_costs_only_its_own_writes() {
    let tfpm = start("2", &[]);
    let pid = tfpm.worker_pids();
    let (lowered, errors) = fetch(&tfpm, "/engine/rlimit.php", "lower=1");
    assert_eq!(lowered.status, 200, "{errors}\n{}", tfpm.log());
    let body = lowered.text();
    assert!(body.starts_with("bool(true)\n"), "{body}");
    assert!(!body.contains("written=4096"), "{body}");
    for _ in 0..4 {
        let (after, _) = fetch(&tfpm, "/engine/rlimit.php", "");
        assert_eq!(after.text(), "written=4096\n");
    }
    assert_eq!(tfpm.worker_pids(), pid, "{}", tfpm.log());
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
    assert!(tfpm.stop().success());
}

/// zend.max_allowed_stack_size from a request (as php-src's gh15168.phpt
/// sets it) limits that request's stack, and the next request on the thread
/// has the thread's own limit again: PHP computes the limit once per thread,
/// so tfpm computes it again when the setting differs.
#[test]
fn a_requests_stack_size_setting_limits_that_request_only() {
    let tfpm = start("1", &[]);
    let small =
        get("/engine/deep_json.php", "").param("PHP_VALUE", "zend.max_allowed_stack_size=512K");
    // PHP 8.2 has no such setting (ini_get() is false): nothing changes.
    let limited = match php_has_stack_guard() {
        true => "false 512K\n",
        false => "270002 \n",
    };
    for _ in 0..2 {
        let (answer, errors) = (send(&tfpm, &small).cgi(), tfpm.log());
        assert_eq!(answer.text(), limited, "{errors}");
        let (own, errors) = fetch(&tfpm, "/engine/deep_json.php", "");
        assert!(own.text().starts_with("270002 "), "{}{errors}", own.text());
    }
}

/// A fatal error while a script compiles under zend.multibyte left the
/// scanner's freed copy of the script, and its encoding filter, in the
/// thread's state. The next highlight_string() on that thread freed the
/// copy again and the worker aborted (`zend_mm_heap corrupted`; php-src's
/// highlight tests after Zend/tests/multibyte ones, on 8.4); the next
/// __halt_compiler() ran the filter over freed memory, and
/// __COMPILER_HALT_OFFSET__ pointed a few bytes early (php-src's halt*
/// tests, now and then, in a shuffled run). Each request now starts
/// without them.
#[test]
fn a_compile_error_under_zend_multibyte_leaves_nothing_for_the_next_request() {
    // PHP's own defaults (errors displayed), as for the php-src tests.
    let tfpm = Tfpm::start(
        Path::new(TFPM),
        &["-n", "--listen", "127.0.0.1:0", "--threads", "1"],
    );
    let pid = tfpm.worker_pids();
    // Where the freed copy lands depends on the heap's layout, which the
    // script's name shifts: names of 1 to 16 letters meet it in several.
    let dir = tempfile::tempdir().expect("temp dir");
    let fatal = std::fs::read(docroot().join("engine/redeclare.php")).expect("script");
    for n in 1..=16 {
        let name = format!("/{}.php", "r".repeat(n));
        std::fs::write(dir.path().join(&name[1..]), &fatal).expect("script");
        let request = CgiRequest::get(dir.path(), &name).param(
            "PHP_VALUE",
            "zend.multibyte=1\nzend.script_encoding=ISO-8859-1",
        );
        let shown = send(&tfpm, &request).cgi().text();
        assert!(shown.contains("Cannot redeclare"), "{shown}");
        let (page, errors) = fetch(&tfpm, "/engine/highlight.php", "");
        assert_eq!(page.text(), "highlighted\n", "{errors}{}", tfpm.log());
        let (halt, errors) = fetch(&tfpm, "/engine/halt.php", "");
        assert_eq!(halt.text(), "after the halt\n", "{errors}{}", tfpm.log());
    }
    assert_eq!(tfpm.worker_pids(), pid, "{}", tfpm.log());
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
}

/// Every thread starts processes at once. From PHP 8.3 on, the threads
/// share the internal functions, so a thread found tfpm's own spawner
/// wrapper where the original handler should be, took it for the original,
/// and recursed until its stack overflowed: the worker died.
#[test]
fn every_thread_starts_processes_at_once() {
    let tfpm = start("4", &[]);
    let pid = tfpm.worker_pids();
    thread::scope(|s| {
        let clients: Vec<_> = (0..16)
            .map(|_| s.spawn(|| fetch(&tfpm, "/engine/spawners.php", "").0.text()))
            .collect();
        for client in clients {
            assert_eq!(
                client.join().unwrap(),
                "shell exec proc\n",
                "{}",
                tfpm.log()
            );
        }
    });
    assert_eq!(tfpm.worker_pids(), pid, "{}", tfpm.log());
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
}
