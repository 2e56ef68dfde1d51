//! Interop with real FastCGI clients from Debian's packages, each on a small
//! real config from `fcgi-tests/interop/`:
//!
//! - HAProxy's `fcgi-app`: GET_VALUES answered, requests multiplexed on one
//!   connection, a client that leaves becomes ABORT_REQUEST;
//! - Apache's mod_proxy_fcgi with `enablereuse=on`, and mod_authnz_fcgi calling
//!   tfpm in the AUTHORIZER role;
//! - lighttpd's mod_fastcgi, over a Unix socket;
//! - Caddy's `php_fastcgi`, with its front-controller routing.
//!
//! Every test starts its own tfpm and server (dropped in that order: server
//! first) and checks statuses and bodies. Over TCP, a tap
//! (`fcgi_tests::tap`) between the two shows what the client put on the
//! wire. The scripts are in `tests/docroot/interop/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::frontends::{Frontend, Kind, Upstream};
use fcgi_tests::http::{self, urlencode, Response};
use fcgi_tests::launch::Launch;
use fcgi_tests::shared::{Diagnose, Lease};
use fcgi_tests::tap::{kind, Seen, Tap};
use fcgi_tests::tempfile::{self, TempDir};
use fcgi_tests::{docroot, md5_hex, poll_until};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const FORM: &str = "application/x-www-form-urlencoded";
/// What echo.php prints for the role: tfpm sets FCGI_ROLE as php-fpm does.
const RESPONDER: &str = r#""role":"RESPONDER""#;

/// A frontend in front of tfpm. Fields drop in order: the frontend first.
struct Stack {
    frontend: Frontend,
    /// Between the two, over TCP.
    tap: Option<Tap>,
    tfpm: Tfpm,
    /// Holds tfpm's Unix socket, and marker files.
    dir: TempDir,
}

impl Stack {
    /// tfpm on 127.0.0.1:0 with `tfpm_args`, and `kind` in front through a tap.
    fn tcp(kind: Kind, tfpm_args: &[&str], root: &Path) -> Lease<Stack> {
        let dir = temp_dir();
        let tfpm = start_tfpm("127.0.0.1:0", tfpm_args);
        let tap = Tap::start(tfpm.addr());
        let frontend = Frontend::start(kind, &Upstream::Tcp(tap.addr()), root);
        Lease::own(Stack {
            frontend,
            tap: Some(tap),
            tfpm,
            dir,
        })
    }

    /// tfpm on a Unix socket, and `kind` in front of it.
    fn unix(kind: Kind, root: &Path) -> Lease<Stack> {
        let dir = temp_dir();
        let socket = dir.path().join("tfpm.sock");
        let tfpm = start_tfpm(socket.to_str().expect("UTF-8 path"), &[]);
        let frontend = Frontend::start(kind, &Upstream::Unix(tfpm.unix_path()), root);
        Lease::own(Stack {
            frontend,
            tap: None,
            tfpm,
            dir,
        })
    }

    fn addr(&self) -> SocketAddr {
        self.frontend.addr()
    }

    fn get(&self, path: &str) -> Response {
        http::get(self.addr(), path)
    }

    fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Response {
        http::post(self.addr(), path, FORM, urlencode(pairs).as_bytes())
    }

    fn tap(&self) -> &Tap {
        self.tap.as_ref().expect("a TCP stack has a tap")
    }

    /// A path for a marker file that a script writes.
    fn marker(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Diagnose for Stack {
    fn diagnose(&self) -> String {
        let records = self.tap.as_ref().map(Tap::records).unwrap_or_default();
        let lines: Vec<String> = records.iter().map(describe).collect();
        format!(
            "{}\n{}\n--- FastCGI records ---\n{}",
            self.tfpm.diagnose(),
            self.frontend.diagnose(),
            lines.join("\n")
        )
    }
}

/// One line per record (connection, direction, type, request id, length) or close.
fn describe(r: &Seen) -> String {
    let arrow = if r.to_app { "->" } else { "<-" };
    let (conn, kind, id, len) = (r.conn, r.kind, r.request_id, r.content.len());
    if kind == kind::CLOSED {
        return format!("c{conn} {arrow} closed");
    }
    format!("c{conn} {arrow} type {kind} id {id} ({len} bytes)")
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("tfpm-interop-")
        .tempdir()
        .expect("temp dir")
}

/// Starts tfpm listening on `listen`, with `args` and PHP errors logged, not displayed.
fn start_tfpm(listen: &str, args: &[&str]) -> Tfpm {
    Launch::new(Path::new(TFPM))
        .listen(listen)
        .threads("8")
        .args(args)
        .inis(&["display_errors=0", "log_errors=1"])
        .start()
}

/// Asserts a 200 whose body contains each of `parts`.
fn assert_ok_with(response: &Response, parts: &[&str]) {
    assert_eq!(response.status, 200, "{}", response.summary());
    let text = response.text();
    for part in parts {
        assert!(text.contains(part), "no {part} in:\n{}", response.summary());
    }
}

/// Asserts `status` with exactly `body`.
fn assert_answer(response: &Response, status: u16, body: &str) {
    let got = (response.status, response.text());
    assert_eq!(got, (status, body.to_string()), "{}", response.summary());
}

/// The JSON fragment echo.php prints for a raw body.
fn body_fields(body: &[u8]) -> String {
    let (len, md5) = (body.len(), md5_hex(body));
    format!(r#""body_len":{len},"body_md5":"{md5}""#)
}

/// Runs `count` GETs of `path` at once; returns the responses and the time they took.
fn concurrent_gets(addr: SocketAddr, path: &str, count: usize) -> (Vec<Response>, Duration) {
    let started = Instant::now();
    let requests: Vec<_> = (0..count)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || http::get(addr, &path))
        })
        .collect();
    let responses = requests
        .into_iter()
        .map(|r| r.join().expect("request thread"))
        .collect();
    (responses, started.elapsed())
}

/// The most requests in flight at once on one connection: a BEGIN_REQUEST
/// opens a request, tfpm's END_REQUEST closes it.
fn most_in_flight(records: &[Seen]) -> usize {
    let mut open: Vec<(usize, u16)> = Vec::new();
    let mut most = 0;
    for r in records {
        match r.kind {
            kind::BEGIN_REQUEST => open.push((r.conn, r.request_id)),
            kind::END_REQUEST => open.retain(|&o| o != (r.conn, r.request_id)),
            _ => {}
        }
        let on_this = open.iter().filter(|(conn, _)| *conn == r.conn).count();
        most = most.max(on_this);
    }
    most
}

/// Whether a GET_VALUES_RESULT from tfpm says FCGI_MPXS_CONNS=1.
fn told_mpxs(records: &[Seen]) -> bool {
    let wanted: &[u8] = b"\x0f\x01FCGI_MPXS_CONNS1";
    let mut answers = records.iter().filter(|r| r.kind == kind::GET_VALUES_RESULT);
    answers.any(|r| r.content.windows(wanted.len()).any(|w| w == wanted))
}

/// Sends the raw `request` and reads until `until` has arrived; dropping the
/// returned stream closes the connection mid-response.
fn start_reading(addr: SocketAddr, request: &str, until: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let timeout = Some(Duration::from_secs(10));
    stream.set_read_timeout(timeout).expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&seen).contains(until) {
        let n = stream.read(&mut buf).expect("read response");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// `Authorization: Basic` value for `user:password`.
fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b));
        let n = n << (8 * (3 - chunk.len()));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 63;
            let padding = i > chunk.len();
            out.push(if padding {
                '='
            } else {
                ALPHABET[sextet as usize] as char
            });
        }
    }
    out
}

#[test]
fn basic_auth_encodes_like_rfc_7617() {
    let aladdin = basic_auth("Aladdin", "open sesame");
    assert_eq!(aladdin, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    assert_eq!(basic_auth("a", "b"), "Basic YTpi");
    assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
}

// ---------------------------------------------------------------- HAProxy

/// HAProxy asks with GET_VALUES, tfpm (with --multiplex) answers
/// FCGI_MPXS_CONNS=1, and concurrent requests share a connection.
#[test]
fn haproxy_multiplexes_requests_on_one_connection() {
    let s = Stack::tcp(Kind::Haproxy, &["--multiplex"], &docroot());
    let r = s.get("/interop/echo.php/extra?x=1");
    let expected = [
        RESPONDER,
        r#""method":"GET""#,
        r#""uri":"/interop/echo.php/extra?x=1""#,
        r#""script":"/interop/echo.php""#,
        r#""path_info":"/extra""#,
        r#""get":{"x":"1"}"#,
    ];
    assert_ok_with(&r, &expected);
    let (responses, took) = concurrent_gets(s.addr(), "/sleep.php?ms=1000", 8);
    for r in &responses {
        assert_answer(r, 200, "slept 1000");
    }
    assert!(
        took < Duration::from_secs(4),
        "8 requests of 1 s took {took:?}"
    );
    let records = s.tap().records();
    let asked = s.tap().records_of(kind::GET_VALUES);
    assert!(!asked.is_empty(), "HAProxy sent no GET_VALUES");
    assert!(told_mpxs(&records), "tfpm did not answer FCGI_MPXS_CONNS=1");
    let begins = s.tap().records_of(kind::BEGIN_REQUEST);
    assert!(begins.iter().all(Seen::keep_conn), "keep-conn: {begins:?}");
    let most = most_in_flight(&records);
    assert!(
        most >= 4,
        "at most {most} requests in flight on one connection"
    );
}

#[test]
fn haproxy_posts_bodies() {
    let s = Stack::tcp(Kind::Haproxy, &["--multiplex"], &docroot());
    let pairs = [("name", "Jörg"), ("sum", "1+2=3&4")];
    let r = s.post_form("/interop/echo.php", &pairs);
    let body = urlencode(&pairs);
    let post = r#""post":{"name":"J\u00f6rg","sum":"1+2=3&4"}"#;
    assert_ok_with(
        &r,
        &[r#""method":"POST""#, post, &body_fields(body.as_bytes())],
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let r = http::post(s.addr(), "/input.php", "application/octet-stream", &big);
    let expected = format!(r#"{{"bytes":{},"md5":"{}"}}"#, big.len(), md5_hex(&big));
    assert_answer(&r, 200, &expected);
}

/// A client that leaves mid-response after sending its whole request:
/// HAProxy has nothing left to send for it and closes the FastCGI
/// connection (no ABORT_REQUEST). The script, which ignores user aborts,
/// sees connection_aborted() and writes its marker.
#[test]
fn haproxy_client_disconnect_aborts_the_script() {
    let s = Stack::tcp(Kind::Haproxy, &["--multiplex"], &docroot());
    let marker = s.marker("aborted");
    let path = format!("/interop/stream.php?marker={}", marker.display());
    let request = format!("GET {path} HTTP/1.1\r\nHost: tfpm\r\n\r\n");
    drop(start_reading(s.addr(), &request, "line 3\n"));
    assert_eq!(wait_for(&marker).as_deref(), Some("aborted"));
    let records = s.tap().records();
    let by_haproxy = records.iter().any(|r| r.to_app && r.kind == kind::CLOSED);
    assert!(by_haproxy, "HAProxy kept the connection");
    assert!(s.tap().records_of(kind::ABORT_REQUEST).is_empty());
    assert_ok_with(&s.get("/hello.php"), &["Hello"]);
}

/// A client that leaves while its request body is still on the way: HAProxy
/// sends ABORT_REQUEST; tfpm tells the script (which sees
/// connection_aborted()) and ends that request with END_REQUEST, while
/// another request on the same connection goes on undisturbed. (Alone on
/// its connection, the aborted request would see HAProxy close the
/// connection right after the ABORT_REQUEST.)
#[test]
fn haproxy_abort_request_spares_the_other_requests() {
    // PHP must not read the body before the script starts.
    let tfpm_args = ["--multiplex", "-d", "enable_post_data_reading=0"];
    let s = Stack::tcp(Kind::Haproxy, &tfpm_args, &docroot());
    let addr = s.addr();
    let slow = std::thread::spawn(move || http::get(addr, "/sleep.php?ms=2000"));
    let begun = || s.tap().records_of(kind::BEGIN_REQUEST).pop();
    let slow_begin = poll_until(Duration::from_secs(5), Duration::from_millis(5), begun);
    let slow_begin = slow_begin.expect("the slow request never reached tfpm");
    let marker = s.marker("aborted");
    drop(start_reading(addr, &unfinished_post(&marker), "line 3\n"));
    assert_eq!(wait_for(&marker).as_deref(), Some("aborted"));
    let aborts = s.tap().records_of(kind::ABORT_REQUEST);
    assert_eq!(aborts.len(), 1, "HAProxy sent {aborts:?}");
    let aborted = (aborts[0].conn, aborts[0].request_id);
    assert_eq!(
        aborted.0, slow_begin.conn,
        "the two requests were not multiplexed"
    );
    let ended = || {
        let ends = s.tap().records_of(kind::END_REQUEST);
        ends.iter()
            .any(|e| (e.conn, e.request_id) == aborted)
            .then_some(())
    };
    let end = poll_until(Duration::from_secs(5), Duration::from_millis(10), ended);
    assert!(
        end.is_some(),
        "no END_REQUEST for the aborted request {aborted:?}"
    );
    let r = slow.join().expect("slow request");
    assert_answer(&r, 200, "slept 2000");
}

/// A POST to stream.php that announces 1 MiB and sends 32 KiB of it: HAProxy
/// holds a body back until its buffer (16 KiB) is full.
fn unfinished_post(marker: &Path) -> String {
    let path = format!("/interop/stream.php?marker={}", marker.display());
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: tfpm\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    head + &"x".repeat(32 * 1024)
}

/// The content of `marker` once a script has written it (10 s at most).
fn wait_for(marker: &Path) -> Option<String> {
    let read = || {
        std::fs::read_to_string(marker)
            .ok()
            .filter(|c| !c.is_empty())
    };
    poll_until(Duration::from_secs(10), Duration::from_millis(20), read)
}

// ----------------------------------------------------------------- Apache

/// enablereuse=on: BEGIN_REQUEST with FCGI_KEEP_CONN, and every request on
/// the one connection. SCRIPT_FILENAME arrives as "proxy:fcgi://host:port/…".
#[test]
fn apache_proxy_fcgi_reuses_its_connection() {
    let s = Stack::tcp(Kind::Apache, &[], &docroot());
    let r = s.get("/interop/echo.php?x=1");
    let uri = r#""uri":"/interop/echo.php?x=1""#;
    assert_ok_with(
        &r,
        &[RESPONDER, r#""method":"GET""#, uri, r#""get":{"x":"1"}"#],
    );
    for i in 0..5 {
        let r = s.get(&format!("/interop/echo.php?i={i}"));
        assert_ok_with(&r, &[&format!(r#""get":{{"i":"{i}"}}"#), &body_fields(b"")]);
    }
    let pairs = [("a", "1"), ("b", "x y")];
    let r = s.post_form("/interop/echo.php", &pairs);
    let body = urlencode(&pairs);
    let post = r#""post":{"a":"1","b":"x y"}"#;
    assert_ok_with(&r, &[post, &body_fields(body.as_bytes())]);
    let r = s.get("/interop/missing.php?what=page");
    assert_answer(&r, 404, "no such thing: page");
    let begins = s.tap().records_of(kind::BEGIN_REQUEST);
    assert_eq!(begins.len(), 8, "{begins:?}");
    assert!(
        begins.iter().all(Seen::keep_conn),
        "enablereuse=on: {begins:?}"
    );
    assert_eq!(
        s.tap().connections(),
        1,
        "the requests did not share a connection"
    );
}

/// mod_authnz_fcgi calls tfpm in the AUTHORIZER role with SCRIPT_FILENAME
/// set to the protected script; the script checks the credentials, and its
/// status decides, as under php-fpm.
#[test]
fn apache_authnz_fcgi_authorizer_decides() {
    let s = Stack::tcp(Kind::Apache, &[], &docroot());
    let private = "/interop/private.php";
    let get_as = |user: &str, password: &str| {
        let auth = basic_auth(user, password);
        let headers = [("Authorization", auth.as_str())];
        http::request(s.addr(), "GET", private, &headers, b"").expect("GET with credentials")
    };
    let r = get_as("alice", "wonderland");
    assert_answer(&r, 200, "private page for alice, checked by AUTHENTICATOR");
    let r = get_as("alice", "guess");
    assert_answer(&r, 401, "access denied for alice");
    assert!(r.header("WWW-Authenticate").is_some(), "{}", r.summary());
    let r = s.get(private);
    assert_eq!(r.status, 401, "no credentials: {}", r.summary());
    // Two authorizer calls (no KEEP_CONN, no STDIN at all) around the
    // responder request; Apache itself answers the one without credentials.
    let records = s.tap().records();
    let begins: Vec<&Seen> = records
        .iter()
        .filter(|r| r.kind == kind::BEGIN_REQUEST)
        .collect();
    let roles: Vec<(Option<u16>, bool)> =
        begins.iter().map(|b| (b.role(), b.keep_conn())).collect();
    assert_eq!(roles, [(Some(2), false), (Some(1), true), (Some(2), false)]);
    let authorizer_conn = begins[0].conn;
    let on_it = records.iter().filter(|r| r.conn == authorizer_conn);
    let stdin = on_it.filter(|r| r.kind == kind::STDIN).count();
    assert_eq!(stdin, 0, "mod_authnz_fcgi sent STDIN");
}

// --------------------------------------------------------------- lighttpd

/// With "broken-scriptfilename", SCRIPT_FILENAME is ".../echo.php/extra":
/// tfpm finds the script and the path info in it.
#[test]
fn lighttpd_fastcgi_over_a_unix_socket() {
    let s = Stack::unix(Kind::Lighttpd, &docroot());
    let r = s.get("/interop/echo.php/extra?x=1");
    let expected = [
        RESPONDER,
        r#""uri":"/interop/echo.php/extra?x=1""#,
        r#""script":"/interop/echo.php""#,
        r#""path_info":"/extra""#,
        r#""get":{"x":"1"}"#,
    ];
    assert_ok_with(&r, &expected);
    let pairs = [("q", "lighttpd"), ("n", "42")];
    let r = s.post_form("/interop/echo.php", &pairs);
    let body = urlencode(&pairs);
    let post = r#""post":{"q":"lighttpd","n":"42"}"#;
    assert_ok_with(&r, &[post, &body_fields(body.as_bytes())]);
    let r = s.get("/interop/missing.php?what=x");
    assert_answer(&r, 404, "no such thing: x");
}

// ------------------------------------------------------------------ Caddy

/// php_fastcgi sends paths that are not files to index.php.
#[test]
fn caddy_php_fastcgi_routes_to_index_php() {
    let root = docroot().join("interop");
    let s = Stack::tcp(Kind::Caddy, &[], &root);
    let r = s.get("/some/route?x=1");
    let routed = [
        RESPONDER,
        r#""uri":"/some/route?x=1""#,
        r#""script":"/index.php""#,
        r#""get":{"x":"1"}"#,
    ];
    assert_ok_with(&r, &routed);
    assert_ok_with(
        &s.get("/"),
        &[r#""method":"GET""#, r#""script":"/index.php""#],
    );
    let pairs = [("from", "caddy")];
    let r = s.post_form("/echo.php", &pairs);
    let body = urlencode(&pairs);
    let posted = [
        r#""method":"POST""#,
        r#""script":"/echo.php""#,
        r#""post":{"from":"caddy"}"#,
        &body_fields(body.as_bytes()),
    ];
    assert_ok_with(&r, &posted);
    assert_ok_with(&s.get("/echo.php"), &[&body_fields(b"")]);
}

#[test]
fn caddy_php_fastcgi_over_a_unix_socket() {
    let root = docroot().join("interop");
    let s = Stack::unix(Kind::Caddy, &root);
    assert_ok_with(&s.get("/echo.php?via=unix"), &[r#""get":{"via":"unix"}"#]);
}
