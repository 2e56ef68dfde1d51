//! End to end through nginx: HTTP client → nginx → tfpm, over TCP and a Unix socket.
//!
//! nginx runs with the repository's `nginx-conf/tfpm-php.conf` unchanged. One
//! tfpm + nginx pair is shared by the tests that overlap in time (see
//! `fcgi_tests::shared`); tests that measure memory or timing, or need a Unix
//! socket, start their own pair.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::http::{self, escape, urlencode, Multipart, Response};
use fcgi_tests::launch::Launch;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::pattern::{self, BigCheck};
use fcgi_tests::shared::{self, Diagnose, Lease};
use fcgi_tests::tempfile::{self, TempDir};
use fcgi_tests::{assert_script_runs_on_after_finish, docroot, md5_hex, poll_until, repo_root};

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

/// tfpm with nginx in front. Fields drop in order: nginx first, then tfpm.
struct Stack {
    nginx: Nginx,
    tfpm: Tfpm,
    _socket_dir: Option<TempDir>,
}

impl Stack {
    /// tfpm on 127.0.0.1:0 with `threads` PHP threads, nginx upstream over TCP, serving `root`.
    fn tcp(threads: u32, root: &Path) -> Stack {
        let tfpm = start_tfpm(&["--listen", "127.0.0.1:0", "--threads", &threads.to_string()]);
        let nginx = Nginx::start(&tfpm.addr().to_string(), root, "");
        Stack {
            nginx,
            tfpm,
            _socket_dir: None,
        }
    }

    /// tfpm on a Unix socket in a temp dir, nginx upstream `unix:`.
    fn unix() -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("tfpm-sock-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("tfpm.sock");
        let tfpm = start_tfpm(&[
            "--listen",
            socket.to_str().expect("UTF-8 path"),
            "--threads",
            "4",
        ]);
        assert_eq!(
            tfpm.unix_path(),
            socket,
            "logged Unix listener\n{}",
            tfpm.log()
        );
        let nginx = Nginx::start(&format!("unix:{}", socket.display()), &docroot(), "");
        Stack {
            nginx,
            tfpm,
            _socket_dir: Some(dir),
        }
    }

    fn get(&self, path: &str) -> Response {
        http::get(self.nginx.addr(), path)
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Response {
        http::post(self.nginx.addr(), path, content_type, body)
    }
}

impl Diagnose for Stack {
    fn diagnose(&self) -> String {
        format!("{}\n{}", self.tfpm.diagnose(), self.nginx.diagnose())
    }
}

/// Starts tfpm with `args` plus `-d` for each of [`PHP_INI`].
fn start_tfpm(args: &[&str]) -> Tfpm {
    Launch::bare(Path::new(TFPM))
        .args(args)
        .inis(&PHP_INI)
        .start()
}

/// The pair shared by the tests running at the same time.
fn stack() -> Lease<Stack> {
    static SHARED: Mutex<Weak<Stack>> = Mutex::new(Weak::new());
    shared::lease(&SHARED, || Stack::tcp(8, &docroot()))
}

/// Asserts a 200 with exactly `body`.
fn assert_ok(response: &Response, body: &str) {
    assert_eq!(response.status, 200, "{}", response.summary());
    assert_eq!(response.text(), body, "{}", response.summary());
}

/// Fails on nginx error-log lines of level error or worse, other than PHP's stderr
/// (such as `upstream prematurely closed connection` or `upstream sent invalid header`).
fn assert_no_upstream_errors(nginx: &Nginx) {
    let bad = nginx.errors();
    assert!(bad.is_empty(), "nginx logged errors:\n{}", bad.join("\n"));
}

#[test]
fn hello_world() {
    let s = stack();
    let r = s.get("/hello.php");
    assert_ok(&r, "Hello, world!\n");
    let content_type = r.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{}", r.summary());
}

#[test]
fn query_string_fills_get() {
    let s = stack();
    let r = s.get("/get.php?a=1&b=x%20y&list[]=1&list[]=2&u=%C3%A9");
    assert_ok(&r, r#"{"a":"1","b":"x y","list":["1","2"],"u":"é"}"#);
}

#[test]
fn urlencoded_body_fills_post() {
    let s = stack();
    let body = urlencode(&[("name", "Jörg Müller"), ("sum", "1+2=3&4"), ("empty", "")]);
    let r = s.post(
        "/post.php",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    );
    assert_ok(&r, r#"{"name":"Jörg Müller","sum":"1+2=3&4","empty":""}"#);
}

#[test]
fn cookie_header_fills_cookie() {
    let s = stack();
    let headers = [("Cookie", "a=1; b=two%20words")];
    let r = http::request(s.nginx.addr(), "GET", "/cookie.php", &headers, b"")
        .expect("GET /cookie.php");
    assert_ok(&r, r#"{"a":"1","b":"two words"}"#);
}

#[test]
fn multipart_upload_arrives_intact() {
    let s = stack();
    let data = pattern::bytes(1_500_000, 7);
    let (content_type, body) = Multipart::new()
        .field("title", "Über")
        .file("doc", "data.bin", "application/octet-stream", &data)
        .file("note", "note.txt", "text/plain", b"hello\n")
        .finish();
    let r = s.post("/upload.php", &content_type, &body);
    let expected = format!(
        concat!(
            r#"{{"files":{{"doc":{{"name":"data.bin","type":"application/octet-stream","size":1500000,"error":0,"#,
            r#""uploaded":true,"stored":1500000,"md5":"{}"}},"note":{{"name":"note.txt","type":"text/plain","#,
            r#""size":6,"error":0,"uploaded":true,"stored":6,"md5":"{}"}}}},"post":{{"title":"Über"}}}}"#
        ),
        md5_hex(&data),
        md5_hex(b"hello\n"),
    );
    assert_ok(&r, &expected);
}

#[test]
fn header_and_status_code() {
    let s = stack();
    let r = s.get("/header.php");
    assert_eq!(r.status, 404, "{}", r.summary());
    assert_eq!(r.header("X-Tfpm-Test"), Some("yes"), "{}", r.summary());
    assert_eq!(r.text(), "nope");
}

#[test]
fn setcookie_sends_each_cookie() {
    let s = stack();
    let r = s.get("/setcookie.php");
    assert_ok(&r, "cookies set");
    let cookies = r.headers_named("Set-Cookie");
    assert_eq!(cookies.len(), 2, "{}", r.summary());
    assert!(
        cookies[0].starts_with("tfpm_first=one") && cookies[0].contains("HttpOnly"),
        "{cookies:?}"
    );
    assert!(
        cookies[1].starts_with("tfpm_second=two%20words") && cookies[1].contains("SameSite=Lax"),
        "{cookies:?}"
    );
}

#[test]
fn sapi_and_cgi_variables() {
    let s = stack();
    let r = s.get("/sapi.php/extra/path?x=1");
    assert_eq!(r.status, 200, "{}", r.summary());
    let script = docroot().join("sapi.php");
    let expected = [
        r#""sapi":"fpm-fcgi""#.to_string(),
        r#""zts":true"#.into(),
        r#""finish_request":true"#.into(),
        format!(r#""script_filename":"{}""#, script.display()),
        r#""script_name":"/sapi.php""#.into(),
        r#""path_info":"/extra/path""#.into(),
        r#""request_uri":"/sapi.php/extra/path?x=1""#.into(),
        r#""request_method":"GET""#.into(),
        r#""display_errors":"0""#.into(),
    ];
    let text = r.text();
    for field in expected {
        assert!(text.contains(&field), "missing {field} in {text}");
    }
}

#[test]
fn missing_script_is_404_from_nginx() {
    let s = stack();
    let r = s.get("/no-such-script.php");
    assert_eq!(r.status, 404, "{}", r.summary());
}

#[test]
fn streams_64_mib_with_bounded_memory() {
    let s = Lease::own(Stack::tcp(8, &docroot()));
    for _ in 0..4 {
        let warm = s.get("/big.php?mb=1");
        assert_eq!(
            (warm.status, warm.body.len()),
            (200, MIB),
            "{}",
            warm.summary()
        );
    }
    s.tfpm.reset_peak();
    let base = s.tfpm.rss_kib();
    let (mut check, mut error, mut sampled_peak, mut next_sample) =
        (BigCheck::new(), None, base, 0u64);
    let r = http::request_streaming(
        s.nginx.addr(),
        "GET",
        "/big.php?mb=64",
        &[],
        b"",
        &mut |piece| {
            if error.is_none() {
                error = check.feed(piece).err();
            }
            if check.len() >= next_sample {
                sampled_peak = sampled_peak.max(s.tfpm.rss_kib());
                next_sample += MIB as u64;
            }
        },
    )
    .expect("GET /big.php?mb=64");
    let peak = s.tfpm.mem().hwm_kib.max(sampled_peak);
    assert_eq!(r.status, 200, "{}", r.summary());
    assert_eq!(error, None, "64 MiB body differs from big.php's pattern");
    assert_eq!(check.len(), 64 * MIB as u64, "body length");
    assert_no_upstream_errors(&s.nginx);
    let growth = peak.saturating_sub(base);
    eprintln!(
        "tfpm RSS while streaming 64 MiB: base {base} KiB, peak {peak} KiB, growth {growth} KiB"
    );
    assert!(
        growth < 32 * 1024,
        "tfpm RSS grew by {growth} KiB while streaming 64 MiB (base {base} KiB, peak {peak} KiB)"
    );
}

#[test]
fn post_32_mib_through_php_input() {
    let s = Lease::own(Stack::tcp(8, &docroot()));
    let body = pattern::bytes(32 * MIB, 3);
    let warm = s.post("/input.php", "application/octet-stream", &body[..MIB]);
    assert_eq!(warm.status, 200, "{}", warm.summary());
    s.tfpm.reset_peak();
    let base = s.tfpm.rss_kib();
    let r = s.post("/input.php", "application/octet-stream", &body);
    let peak = s.tfpm.mem().hwm_kib;
    assert_ok(
        &r,
        &format!(r#"{{"bytes":{},"md5":"{}"}}"#, body.len(), md5_hex(&body)),
    );
    let growth = peak.saturating_sub(base);
    eprintln!("tfpm RSS while reading a 32 MiB body: base {base} KiB, peak {peak} KiB, growth {growth} KiB");
    assert!(
        growth < 16 * 1024,
        "tfpm RSS grew by {growth} KiB for a 32 MiB request body: buffered?"
    );
}

#[test]
fn fastcgi_finish_request_ends_the_response() {
    let s = stack();
    let dir = tempfile::tempdir().expect("temp dir");
    let (go, marker) = (dir.path().join("go"), dir.path().join("marker"));
    let path = format!(
        "/finish.php?go={}&marker={}",
        escape(&go.to_string_lossy()),
        escape(&marker.to_string_lossy())
    );
    let started = Instant::now();
    let r = s.get(&path);
    let waited = started.elapsed();
    assert_ok(&r, "before");
    assert!(
        waited < Duration::from_secs(5),
        "response took {waited:?}: held until the script ended?"
    );
    assert_script_runs_on_after_finish(&marker, &go);
}

#[test]
fn fatal_error_is_500_and_the_next_request_works() {
    let s = stack();
    let r = s.get("/fatal.php");
    assert_eq!(r.status, 500, "{}", r.summary());
    let logged = poll_until(Duration::from_secs(5), Duration::from_millis(10), || {
        let log = s.nginx.error_log();
        (log.contains("PHP message:") && log.contains("tfpm_this_function_does_not_exist"))
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "no `PHP message:` in nginx's error.log (FastCGI stderr)"
    );
    assert_ok(&s.get("/hello.php"), "Hello, world!\n");
}

#[test]
fn requests_run_in_parallel() {
    let s = Lease::own(Stack::tcp(8, &docroot()));
    let addr = s.nginx.addr();
    let started = Instant::now();
    let handles: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || http::get(addr, "/sleep.php?ms=400")))
        .collect();
    for handle in handles {
        assert_ok(&handle.join().expect("request thread"), "slept 400");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(3200),
        "16 × 400 ms on 8 threads took {elapsed:?}"
    );
}

#[test]
fn two_thousand_concurrent_requests() {
    let s = stack();
    let addr = s.nginx.addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let failures = runtime.block_on(concurrent_gets(addr, 2000, 250));
    assert!(
        failures.is_empty(),
        "{} of 2000 requests failed, first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_no_upstream_errors(&s.nginx);
}

/// GETs `/get.php?i=N` for N in 0..total with at most `in_flight` at once; returns the failures.
async fn concurrent_gets(
    addr: std::net::SocketAddr,
    total: usize,
    in_flight: usize,
) -> Vec<String> {
    let limit = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore");
        tasks.spawn(async move {
            let _permit = permit;
            let path = format!("/get.php?i={i}");
            let request = http::request_async(addr, "GET", &path, &[], b"");
            match tokio::time::timeout(Duration::from_secs(60), request).await {
                Ok(Ok(r)) if r.status == 200 && r.text() == format!(r#"{{"i":"{i}"}}"#) => Ok(()),
                Ok(Ok(r)) => Err(format!("{path}: {}", r.summary())),
                Ok(Err(e)) => Err(format!("{path}: {e}")),
                Err(_) => Err(format!("{path}: no response in 60 s")),
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(failure) = joined.expect("request task") {
            failures.push(failure);
        }
    }
    failures
}

#[test]
fn unix_socket_upstream() {
    let s = Lease::own(Stack::unix());
    assert_ok(&s.get("/hello.php"), "Hello, world!\n");
    let body = urlencode(&[("via", "unix socket"), ("n", "42")]);
    let r = s.post(
        "/post.php",
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    );
    assert_ok(&r, r#"{"via":"unix socket","n":"42"}"#);
    let data = pattern::bytes(3 * MIB, 11);
    let r = s.post("/input.php", "application/octet-stream", &data);
    assert_ok(
        &r,
        &format!(r#"{{"bytes":{},"md5":"{}"}}"#, data.len(), md5_hex(&data)),
    );
    assert_no_upstream_errors(&s.nginx);
}

#[test]
fn examples_demo_site() {
    let s = Lease::own(Stack::tcp(2, &repo_root().join("examples")));
    let index = s.get("/");
    assert_eq!(index.status, 200, "{}", index.summary());
    for link in ["hello.php", "phpinfo.php", "form.php", "fibers.php"] {
        assert!(
            index.text().contains(&format!("href=\"{link}\"")),
            "no link to {link}"
        );
    }
    assert_ok(&s.get("/hello.php"), "Hello, world!\n");
    let info = s.get("/phpinfo.php");
    assert!(
        info.status == 200 && info.text().contains("Server API"),
        "{}",
        info.summary()
    );
    let fibers = s.get("/fibers.php");
    assert_eq!(fibers.status, 200, "{}", fibers.summary());
    assert!(
        fibers
            .text()
            .ends_with("main: fiber A done\nmain: all fibers finished\n"),
        "{}",
        fibers.summary()
    );
    let (content_type, body) = Multipart::new()
        .field("name", "<b>\"Ann\" & co</b>")
        .field("message", "hi")
        .file("attachment", "a<1>.txt", "text/plain", b"12345")
        .finish();
    let form = s.post("/form.php", &content_type, &body);
    let text = form.text();
    assert_eq!(form.status, 200, "{}", form.summary());
    assert!(
        text.contains("&lt;b&gt;&quot;Ann&quot; &amp; co&lt;/b&gt;"),
        "name not escaped: {text}"
    );
    assert!(
        text.contains("a&lt;1&gt;.txt") && text.contains("5 bytes"),
        "file not shown: {text}"
    );
    assert!(!text.contains("<b>\"Ann"), "raw input echoed: {text}");
}

#[test]
fn static_files_and_non_scripts_never_reach_php() {
    let s = Stack::tcp(2, &docroot());
    let text = std::fs::read_to_string(docroot().join("diff/ext/readme.txt")).expect("file");
    let file = s.get("/diff/ext/readme.txt");
    assert_ok(&file, &text);
    // The old upload trick, a non-script with /x.php after it: nginx's
    // try_files answers 404 before cgi.fix_pathinfo could run the file.
    assert_eq!(s.get("/diff/ext/readme.txt/x.php").status, 404);
    assert_eq!(s.get("/diff/ext/missing.php").status, 404);
    // Only this status request has reached a PHP thread.
    let status = s.get("/engine/fpm_status.php");
    assert!(
        status.text().contains("\"accepted-conn\":1,"),
        "{}",
        status.text()
    );
}
