//! End to end through FastCGI clients, without a web server: the real
//! `cgi-fcgi` (libfcgi) and the harness's own client (`fcgi_client`, which
//! also keeps connections open and talks over a Unix socket).
//!
//! One tfpm, listening on 127.0.0.1:0 and on a Unix socket, is shared by the
//! tests that overlap in time; the signal tests start their own.

use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::cgi_fcgi::{self, CgiFcgiOutput};
use fcgi_tests::daemon::{Listener, Signal, Tfpm};
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::http::{escape, urlencode, Multipart};
use fcgi_tests::launch::Launch;
use fcgi_tests::pattern::{self, BigCheck};
use fcgi_tests::shared::{self, Diagnose, Lease};
use fcgi_tests::tempfile::{self, TempDir};
use fcgi_tests::{assert_script_runs_on_after_finish, docroot, md5_hex};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const MIB: usize = 1024 * 1024;
/// Passed as `-d` options. As in php.ini-production, errors are logged (to FCGI_STDERR, as
/// `PHP message: ...`), not displayed; PHP's built-in defaults do the opposite. Bodies may
/// be as large as nginx's 64m limit.
const PHP_INI: [&str; 4] = [
    "display_errors=0",
    "log_errors=1",
    "post_max_size=64M",
    "upload_max_filesize=64M",
];
const URLENCODED: &str = "application/x-www-form-urlencoded";

/// tfpm listening on TCP and on a Unix socket.
struct Daemon {
    tfpm: Tfpm,
    _socket_dir: TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("tfpm-sock-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("tfpm.sock");
        let socket = socket.to_str().expect("UTF-8 path");
        let tfpm = start_tfpm(&[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            socket,
            "--threads",
            "4",
        ]);
        Daemon {
            tfpm,
            _socket_dir: dir,
        }
    }

    /// The TCP listener as `HOST:PORT`, for cgi-fcgi.
    fn tcp(&self) -> String {
        self.tfpm.addr().to_string()
    }

    /// The Unix socket path, for cgi-fcgi.
    fn unix(&self) -> String {
        self.tfpm.unix_path().display().to_string()
    }

    fn cgi_fcgi(&self, request: &CgiRequest) -> CgiFcgiOutput {
        cgi_fcgi::run(&self.tcp(), request)
    }
}

impl Diagnose for Daemon {
    fn diagnose(&self) -> String {
        self.tfpm.diagnose()
    }
}

/// Starts tfpm with `args` plus `-d` for each of [`PHP_INI`].
fn start_tfpm(args: &[&str]) -> Tfpm {
    Launch::bare(Path::new(TFPM))
        .args(args)
        .inis(&PHP_INI)
        .start()
}

fn daemon() -> Lease<Daemon> {
    static SHARED: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());
    shared::lease(&SHARED, Daemon::start)
}

fn get(script: &str) -> CgiRequest {
    CgiRequest::get(&docroot(), script)
}

fn post(script: &str, content_type: &str, body: &[u8]) -> CgiRequest {
    CgiRequest::post(&docroot(), script, content_type, body)
}

/// Asserts a clean run (exit 0 = appStatus 0, as php-fpm always sends) with status 200 and `body`.
fn assert_ok(out: &CgiFcgiOutput, body: &str) {
    let show = || {
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            out.stderr_text()
        )
    };
    assert!(out.status.success(), "{}", show());
    assert_eq!(out.response.status, 200, "{}", show());
    assert_eq!(out.response.text(), body, "{}", show());
}

#[test]
fn hello_world() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/hello.php"));
    assert_ok(&out, "Hello, world!\n");
    let content_type = out.response.header("Content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "{:?}",
        out.response.headers
    );
}

#[test]
fn hello_world_over_unix_socket() {
    let d = daemon();
    assert_ok(
        &cgi_fcgi::run(&d.unix(), &get("/hello.php")),
        "Hello, world!\n",
    );
}

#[test]
fn query_string_fills_get() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/get.php").query("a=1&b=x%20y&list[]=1&list[]=2"));
    assert_ok(&out, r#"{"a":"1","b":"x y","list":["1","2"]}"#);
}

#[test]
fn urlencoded_body_fills_post() {
    let d = daemon();
    let body = urlencode(&[("name", "Jörg Müller"), ("sum", "1+2=3&4"), ("empty", "")]);
    let out = d.cgi_fcgi(&post("/post.php", URLENCODED, body.as_bytes()));
    assert_ok(&out, r#"{"name":"Jörg Müller","sum":"1+2=3&4","empty":""}"#);
}

#[test]
fn cookie_header_fills_cookie() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/cookie.php").header("Cookie", "a=1; b=two%20words"));
    assert_ok(&out, r#"{"a":"1","b":"two words"}"#);
}

#[test]
fn multipart_upload_arrives_intact() {
    let d = daemon();
    let data = pattern::bytes(300_000, 5);
    let (content_type, body) = Multipart::new()
        .field("title", "Über")
        .file("doc", "data.bin", "application/octet-stream", &data)
        .finish();
    let out = d.cgi_fcgi(&post("/upload.php", &content_type, &body));
    let expected = format!(
        concat!(
            r#"{{"files":{{"doc":{{"name":"data.bin","type":"application/octet-stream","size":300000,"error":0,"#,
            r#""uploaded":true,"stored":300000,"md5":"{}"}}}},"post":{{"title":"Über"}}}}"#
        ),
        md5_hex(&data)
    );
    assert_ok(&out, &expected);
}

#[test]
fn header_and_status_code() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/header.php"));
    let status = out.response.header("Status").unwrap_or_default();
    assert!(
        status.starts_with("404"),
        "Status header {status:?} in {:?}",
        out.response.headers
    );
    assert_eq!(out.response.header("X-Tfpm-Test"), Some("yes"));
    assert_eq!(out.response.text(), "nope");
}

#[test]
fn setcookie_sends_each_cookie() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/setcookie.php"));
    assert_ok(&out, "cookies set");
    let cookies = out.response.headers_named("Set-Cookie");
    assert_eq!(cookies.len(), 2, "{:?}", out.response.headers);
    assert!(cookies[0].starts_with("tfpm_first=one"), "{cookies:?}");
    assert!(
        cookies[1].starts_with("tfpm_second=two%20words"),
        "{cookies:?}"
    );
}

#[test]
fn big_response_8_mib() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/big.php").query("mb=8"));
    assert!(
        out.status.success() && out.response.status == 200,
        "{:?} {:?}",
        out.status,
        out.response.headers
    );
    let mut check = BigCheck::new();
    check
        .feed(&out.response.body)
        .expect("body follows big.php's pattern");
    assert_eq!(check.len(), 8 * MIB as u64);
}

#[test]
fn body_through_php_input() {
    let d = daemon();
    let body = pattern::bytes(4 * MIB + 123, 9);
    let out = d.cgi_fcgi(&post("/input.php", "application/octet-stream", &body));
    assert_ok(
        &out,
        &format!(r#"{{"bytes":{},"md5":"{}"}}"#, body.len(), md5_hex(&body)),
    );
}

#[test]
fn fastcgi_finish_request_ends_the_response() {
    let d = daemon();
    let dir = tempfile::tempdir().expect("temp dir");
    let (go, marker) = (dir.path().join("go"), dir.path().join("marker"));
    let query = format!(
        "go={}&marker={}",
        escape(&go.to_string_lossy()),
        escape(&marker.to_string_lossy())
    );
    let started = Instant::now();
    let out = d.cgi_fcgi(&get("/finish.php").query(&query));
    let waited = started.elapsed();
    assert_ok(&out, "before");
    assert!(
        waited < Duration::from_secs(5),
        "cgi-fcgi took {waited:?}: END_REQUEST held until the script ended?"
    );
    assert_script_runs_on_after_finish(&marker, &go);
}

#[test]
fn fatal_error_is_500_with_php_message_on_stderr() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/fatal.php"));
    let status = out.response.header("Status").unwrap_or_default();
    assert!(
        status.starts_with("500"),
        "Status {status:?}; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = out.stderr_text();
    assert!(stderr.contains("PHP message:"), "stderr: {stderr}");
    assert!(
        stderr.contains("tfpm_this_function_does_not_exist"),
        "stderr: {stderr}"
    );
    assert_ok(&d.cgi_fcgi(&get("/hello.php")), "Hello, world!\n");
}

#[test]
fn fatal_errors_leave_the_only_thread_usable() {
    let tfpm = start_tfpm(&["--listen", "127.0.0.1:0", "--threads", "1"]);
    let addr = tfpm.addr().to_string();
    for round in 0..3 {
        let fatal = cgi_fcgi::run(&addr, &get("/fatal.php"));
        assert_eq!(
            fatal.response.status, 500,
            "round {round}: {:?}",
            fatal.response.headers
        );
        let hello = cgi_fcgi::run(&addr, &get("/hello.php"));
        assert_eq!(
            hello.response.text(),
            "Hello, world!\n",
            "round {round}\n{}",
            tfpm.log()
        );
    }
}

#[test]
fn large_params_straddle_records() {
    // cgi-fcgi cuts PARAMS into 8 KiB records, so this 20 KB pair spans three of them.
    let d = daemon();
    let big: String = (0..20_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let request = get("/server.php")
        .query("key=HTTP_X_BIG")
        .header("X-Big", &big);
    let expected = format!(r#"{{"len":20000,"md5":"{}"}}"#, md5_hex(big.as_bytes()));
    assert_ok(&d.cgi_fcgi(&request), &expected);
}

#[test]
fn missing_script_is_404_file_not_found() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/no-such-script.php"));
    let status = out.response.header("Status").unwrap_or_default();
    assert!(
        status.starts_with("404"),
        "Status {status:?} in {:?}",
        out.response.headers
    );
    assert_eq!(out.response.text(), "File not found.\n");
}

#[test]
fn sapi_is_fpm_fcgi_with_zts() {
    let d = daemon();
    let out = d.cgi_fcgi(&get("/sapi.php"));
    let text = out.response.text();
    for field in [
        r#""sapi":"fpm-fcgi""#,
        r#""zts":true"#,
        r#""finish_request":true"#,
        r#""script_name":"/sapi.php""#,
    ] {
        assert!(text.contains(field), "missing {field} in {text}");
    }
}

#[test]
fn fpm_ini_entries_are_registered() {
    let d = daemon();
    let text = d.cgi_fcgi(&get("/sapi.php")).response.text();
    for field in [r#""fastcgi_logging":"1""#, r#""cgi_fix_pathinfo":"1""#] {
        assert!(
            text.contains(field),
            "php-fpm registers this ini entry with this default: missing {field} in {text}"
        );
    }
}

/// Several requests of different kinds, one after another on one kept connection.
fn keep_conn_session(client: &mut FcgiClient) {
    let hello = client.send(&get("/hello.php"), true).expect("hello");
    assert_eq!(
        (hello.protocol_status, hello.cgi().text()),
        (0, "Hello, world!\n".to_string())
    );
    let query = client
        .send(&get("/get.php").query("k=v"), true)
        .expect("get");
    assert_eq!(query.cgi().text(), r#"{"k":"v"}"#);
    let form = client
        .send(&post("/post.php", URLENCODED, b"a=1&b=2"), true)
        .expect("post");
    assert_eq!(form.cgi().text(), r#"{"a":"1","b":"2"}"#);
    let missing = client
        .send(&get("/no-such-script.php"), true)
        .expect("missing");
    assert_eq!(
        (missing.cgi().status, missing.cgi().text()),
        (404, "File not found.\n".to_string())
    );
    let fatal = client.send(&get("/fatal.php"), true).expect("fatal");
    assert_eq!(fatal.cgi().status, 500);
    assert!(
        fatal.stderr_text().contains("PHP message:"),
        "stderr: {}",
        fatal.stderr_text()
    );
    let big = client
        .send(&get("/big.php").query("mb=2"), true)
        .expect("big");
    BigCheck::new()
        .feed(&big.cgi().body)
        .expect("big.php pattern");
    assert_eq!(big.cgi().body.len(), 2 * MIB);
    let last = client.send(&get("/hello.php"), true).expect("hello again");
    assert_eq!(last.cgi().text(), "Hello, world!\n");
    assert!(
        !client
            .peer_closed(Duration::from_millis(200))
            .expect("idle connection"),
        "kept connection was closed"
    );
}

#[test]
fn own_client_keeps_the_connection_over_tcp() {
    let d = daemon();
    let mut client = FcgiClient::connect_tcp(d.tfpm.addr()).expect("connect");
    keep_conn_session(&mut client);
}

#[test]
fn own_client_keeps_the_connection_over_unix_socket() {
    let d = daemon();
    let mut client = FcgiClient::connect_unix(&d.tfpm.unix_path()).expect("connect");
    keep_conn_session(&mut client);
}

#[test]
fn own_client_without_keep_conn_sees_the_close() {
    let d = daemon();
    let mut client = FcgiClient::connect_tcp(d.tfpm.addr()).expect("connect");
    let r = client.send(&get("/hello.php"), false).expect("hello");
    assert_eq!((r.app_status, r.protocol_status), (0, 0));
    assert_eq!(r.cgi().text(), "Hello, world!\n");
    assert!(
        client
            .peer_closed(Duration::from_secs(5))
            .expect("read after END_REQUEST"),
        "connection left open"
    );
}

#[test]
fn log_names_every_listener_without_colours() {
    let d = daemon();
    let listeners = d.tfpm.listeners();
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    assert!(
        matches!(listeners[0], Listener::Tcp(addr) if addr.ip().is_loopback() && addr.port() != 0),
        "{listeners:?}"
    );
    assert!(
        matches!(&listeners[1], Listener::Unix(path) if path.ends_with("tfpm.sock")),
        "{listeners:?}"
    );
    assert!(
        !d.tfpm.log().contains('\x1b'),
        "ANSI escape in a log that is not a terminal"
    );
}

#[test]
fn listens_on_ipv6_and_on_all_addresses() {
    let tfpm = start_tfpm(&["--listen", "[::1]:0", "--listen", "0", "--threads", "2"]);
    let listeners = tfpm.listeners();
    assert!(
        matches!(listeners, [Listener::Tcp(v6), Listener::Tcp(any)]
        if v6.ip().is_loopback() && v6.is_ipv6() && any.ip().is_unspecified()),
        "{listeners:?}"
    );
    let any_port = tfpm.tcp_addrs()[1].port();
    let targets = [
        tfpm.tcp_addrs()[0].to_string(),
        format!("127.0.0.1:{any_port}"),
        format!("[::1]:{any_port}"),
    ];
    for target in targets {
        let mut client =
            FcgiClient::connect(&target).unwrap_or_else(|e| panic!("connect {target}: {e}"));
        let r = client
            .send(&get("/hello.php"), false)
            .unwrap_or_else(|e| panic!("request via {target}: {e}"));
        assert_eq!(r.cgi().text(), "Hello, world!\n", "via {target}");
    }
}

/// Starts a small tfpm, serves one request, sends `signal` and expects a clean exit 0.
fn stops_cleanly_on(signal: Signal) {
    let mut tfpm = start_tfpm(&["--listen", "127.0.0.1:0", "--threads", "2"]);
    let out = cgi_fcgi::run(&tfpm.addr().to_string(), &get("/hello.php"));
    assert_ok(&out, "Hello, world!\n");
    let (status, on_its_own) = tfpm.stop_with(signal);
    assert!(on_its_own, "tfpm ignored {signal} for 10 s\n{}", tfpm.log());
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {signal}\n{}",
        tfpm.log()
    );
}

#[test]
fn sigterm_stops_with_exit_0() {
    stops_cleanly_on(Signal::SIGTERM);
}

#[test]
fn sigint_stops_with_exit_0() {
    stops_cleanly_on(Signal::SIGINT);
}

#[test]
fn sigquit_stops_with_exit_0() {
    stops_cleanly_on(Signal::SIGQUIT);
}

#[test]
fn idle_kept_connections_close_after_the_idle_timeout_but_busy_ones_do_not() {
    let tfpm = start_tfpm(&[
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--idle-timeout",
        "1",
    ]);
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    // A request longer than the idle timeout completes on a kept connection.
    let slow = client
        .send(&get("/sleep.php").query("ms=1500"), true)
        .expect("slow request");
    assert_eq!(slow.cgi().text(), "slept 1500");
    let hello = client
        .send(&get("/hello.php"), true)
        .expect("second request");
    assert_eq!(hello.cgi().text(), "Hello, world!\n");
    // Then, with nothing in flight, tfpm closes it.
    assert!(
        client.peer_closed(Duration::from_secs(10)).expect("read"),
        "{}",
        tfpm.log()
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tfpm = start_tfpm(&[
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--log-format",
        "json",
    ]);
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let fatal = client.send(&get("/fatal.php"), false).expect("request");
    assert_eq!(fatal.cgi().status, 500);
    let logged = fcgi_tests::poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
        tfpm.log().contains("PHP Fatal error").then_some(())
    });
    assert!(logged.is_some(), "{}", tfpm.log());
    for line in tfpm.log().lines() {
        assert!(
            line.starts_with("{\"timestamp\":") && line.ends_with('}'),
            "not a JSON log line: {line}"
        );
    }
}
