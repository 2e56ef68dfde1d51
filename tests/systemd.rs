//! tfpm under systemd, through the real daemon: the `Type=notify` notices
//! on a datagram socket the test binds as `NOTIFY_SOCKET`, and socket
//! activation through `systemd-socket-activate` (from Debian's systemd
//! package, which scripts/install-deps.sh installs), on TCP and on a Unix
//! socket.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{Listener, Tfpm};
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::{docroot, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

/// The next notice on `socket`, waiting up to 10 s.
fn notice(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).expect("a notice within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notifies_ready_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    let env = [("NOTIFY_SOCKET", path.to_str().expect("UTF-8 path"))];
    let args = ["--listen", "127.0.0.1:0", "--threads", "1"];
    let tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &env);
    let ready = notice(&socket);
    let lines: Vec<&str> = ready.lines().collect();
    assert!(lines.contains(&"READY=1"), "{ready}");
    assert!(
        lines.iter().any(|l| l.starts_with("STATUS=ready")),
        "{ready}"
    );
    assert!(
        lines.contains(&format!("MAINPID={}", tfpm.pid()).as_str()),
        "{ready}"
    );
    // The STATUS line is kept up to date with the pool's counts.
    let live = notice(&socket);
    assert!(
        live.starts_with("STATUS=threads: 0 busy, 1 idle; 0 queued;"),
        "{live}"
    );
    let stopped = tfpm.stop();
    assert!(stopped.success(), "{stopped}");
    let stopping = poll_until(Duration::from_secs(10), Duration::ZERO, || {
        let text = notice(&socket);
        text.lines().any(|l| l == "STOPPING=1").then_some(())
    });
    assert!(stopping.is_some(), "no STOPPING=1");
}

/// Waits for a notice with a line that `want` accepts; returns that notice.
fn notice_with(socket: &UnixDatagram, want: impl Fn(&str) -> bool) -> String {
    for _ in 0..20 {
        let text = notice(socket);
        if text.lines().any(&want) {
            return text;
        }
    }
    panic!("no such notice in 20");
}

#[test]
fn notifies_reloading_then_ready_around_a_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    let env = [("NOTIFY_SOCKET", path.to_str().expect("UTF-8 path"))];
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--workers",
        "2",
    ];
    let tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &env);
    notice_with(&socket, |l| l == "READY=1");
    tfpm.signal(fcgi_tests::daemon::Signal::SIGUSR2);
    let reloading = notice_with(&socket, |l| l == "RELOADING=1");
    // systemd 253 and later want the time of the reload with it.
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "{reloading}");
    notice_with(&socket, |l| l == "READY=1");
    // The new workers serve.
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let req = CgiRequest::get(&docroot(), "/hello.php");
    assert_eq!(
        client.send(&req, false).expect("hello").cgi().text(),
        "Hello, world!\n"
    );
    // php-fpm's start lines again, once the old workers no longer accept.
    let log = tfpm.log();
    assert_eq!(
        log.matches("ready to handle connections").count(),
        2,
        "{log}"
    );
}

/// Fails unless `systemd-socket-activate` is installed.
fn assert_can_activate() {
    assert!(
        Path::new(ACTIVATE).exists(),
        "no {ACTIVATE}: install Debian's systemd package (scripts/install-deps.sh does)"
    );
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    probe.local_addr().expect("local addr").port()
}

/// Runs a request on `addr` from another thread, retrying the connection
/// until the activator listens: tfpm itself starts only once it is there.
fn hello_in_background(addr: String) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let connected = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
            FcgiClient::connect(&addr).ok()
        });
        let mut client = connected.expect("the activator listens");
        let request = CgiRequest::get(&docroot(), "/hello.php");
        let response = client.send(&request, false).expect("request");
        response.cgi().text()
    })
}

/// Starts tfpm under `systemd-socket-activate -l listen`, with a first
/// request already waiting, and returns it with that request's body.
fn activate(listen: &str) -> (Tfpm, String) {
    let hello = hello_in_background(listen.to_string());
    let args = [
        "-l",
        listen,
        TFPM,
        "--listen",
        "127.0.0.1:1",
        "--threads",
        "1",
    ];
    let tfpm = Tfpm::start(Path::new(ACTIVATE), &args);
    let body = hello.join().expect("the request thread");
    (tfpm, body)
}

#[test]
fn serves_a_tcp_socket_systemd_passes() {
    assert_can_activate();
    let listen = format!("127.0.0.1:{}", free_port());
    let (tfpm, body) = activate(&listen);
    assert_eq!(body, "Hello, world!\n", "{}", tfpm.log());
    // The passed socket, not --listen.
    let expected = Listener::Tcp(listen.parse().expect("address"));
    assert_eq!(tfpm.listeners(), [expected], "{}", tfpm.log());
    assert!(tfpm.log().contains("(from systemd)"), "{}", tfpm.log());
    let stopped = tfpm.stop();
    assert!(stopped.success(), "{stopped}");
}

#[test]
fn serves_a_unix_socket_systemd_passes_and_leaves_its_file() {
    assert_can_activate();
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("tfpm.sock");
    let listen = path.to_str().expect("UTF-8 path");
    let (tfpm, body) = activate(listen);
    assert_eq!(body, "Hello, world!\n", "{}", tfpm.log());
    assert_eq!(tfpm.unix_path(), path, "{}", tfpm.log());
    let stopped = tfpm.stop();
    assert!(stopped.success(), "{stopped}");
    assert!(path.exists(), "tfpm removed the socket file systemd made");
}

/// With a php-fpm config, a socket systemd passes (tfpm.socket) serves the
/// pool that listens where it does, and one no pool listens on is named in
/// the log and closed.
#[test]
fn a_pool_serves_the_socket_systemd_passes_for_its_listen_address() {
    assert_can_activate();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("www.sock");
    let listen = path.to_str().expect("UTF-8 path").to_string();
    let stray = format!("127.0.0.1:{}", free_port());
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        format!("[global]\nerror_log = /proc/self/fd/2\n[www]\nlisten = {listen}\npm = static\npm.max_children = 1\n"),
    )
    .expect("write the config");
    let hello = hello_in_background(listen.clone());
    let conf = conf.to_str().expect("UTF-8 path");
    let args = [
        "-l", &listen, "-l", &stray, TFPM, "-F", "-R", "-n", "-y", conf,
    ];
    let tfpm = Tfpm::start(Path::new(ACTIVATE), &args);
    let body = hello.join().expect("the request thread");
    assert_eq!(body, "Hello, world!\n", "{}", tfpm.log());
    let log = tfpm.log();
    assert!(
        log.contains(&format!("systemd passed unix:{listen}")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "systemd passed {stray}, but no pool listens there"
        )),
        "{log}"
    );
    let stopped = tfpm.stop();
    assert!(stopped.success(), "{stopped}");
    assert!(path.exists(), "tfpm removed the socket file systemd made");
}
