//! The FastCGI protocol through the real daemon, record by record: management
//! records between requests, rejections, ABORT_REQUEST, oversized params and
//! protocol errors, each answered as the spec says while the connection (or
//! at least every other connection) goes on working.

use std::path::Path;
use std::time::{Duration, Instant};

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::{
    begin_body, encode_pair, encode_record, encode_stream, get_params, get_request_bytes,
    read_record, FcgiClient, ABORT_REQUEST, BEGIN_REQUEST, END_REQUEST, KEEP_CONN, PARAMS,
    RESPONDER, STDIN, UNKNOWN_TYPE,
};
use fcgi_tests::launch::Launch;
use fcgi_tests::poll_until;

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// How often to look again while waiting for something to happen.
const POLL: Duration = Duration::from_millis(20);

fn start() -> Tfpm {
    Launch::new(Path::new(TFPM)).start()
}

fn get_values(client: &mut FcgiClient) -> Vec<(String, String)> {
    let names = [
        "FCGI_MAX_CONNS",
        "FCGI_MAX_REQS",
        "FCGI_MPXS_CONNS",
        "FCGI_NOT_A_THING",
    ];
    client.get_values(&names).expect("GET_VALUES_RESULT")
}

#[test]
fn get_values_before_and_between_requests_on_a_kept_connection() {
    let tfpm = start();
    let mut client = tfpm.connect();
    for _ in 0..2 {
        let values = get_values(&mut client);
        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"],
            "unknown names are left out"
        );
        assert!(values.contains(&("FCGI_MPXS_CONNS".into(), "0".into())));
        client.send_raw(&get_request_bytes(1, "/hello.php", "", true));
        let (stdout, _) = client.read_until_end(1);
        assert!(String::from_utf8_lossy(&stdout).ends_with("Hello, world!\n"));
    }
    assert!(
        !client
            .peer_closed(Duration::from_millis(200))
            .expect("read"),
        "the kept connection closed"
    );
}

#[test]
fn an_unknown_management_type_gets_unknown_type_and_the_connection_goes_on() {
    let tfpm = start();
    let mut client = tfpm.connect();
    client.send_raw(&encode_record(99, 0, b""));
    let record = read_record(client.stream()).expect("UNKNOWN_TYPE");
    assert_eq!((record.kind, record.id), (UNKNOWN_TYPE, 0));
    assert_eq!(record.content, [99, 0, 0, 0, 0, 0, 0, 0]);
    client.send_raw(&get_request_bytes(1, "/hello.php", "", true));
    let (stdout, _) = client.read_until_end(1);
    assert!(String::from_utf8_lossy(&stdout).ends_with("Hello, world!\n"));
}

#[test]
fn unknown_role_and_a_second_request_are_rejected_without_harm() {
    let tfpm = start();
    let mut client = tfpm.connect();
    // An unknown role: END_REQUEST with FCGI_UNKNOWN_ROLE (3), nothing else.
    client.send_raw(&encode_record(BEGIN_REQUEST, 5, &begin_body(9, KEEP_CONN)));
    let record = read_record(client.stream()).expect("END_REQUEST");
    assert_eq!(
        (record.kind, record.id, record.content[4]),
        (END_REQUEST, 5, 3)
    );
    // A second request while one runs, on a connection that does not
    // multiplex: FCGI_CANT_MPX_CONN (1) for it, and the first completes.
    let mut bytes = get_request_bytes(1, "/sleep.php", "ms=200", true);
    bytes.extend(encode_record(
        BEGIN_REQUEST,
        2,
        &begin_body(RESPONDER, KEEP_CONN),
    ));
    client.send_raw(&bytes);
    let (stdout, seen) = client.read_until_end(1);
    let rejected = seen
        .iter()
        .find(|r| r.id == 2)
        .expect("an answer for request 2");
    assert_eq!((rejected.kind, rejected.content[4]), (END_REQUEST, 1));
    assert!(String::from_utf8_lossy(&stdout).ends_with("slept 200"));
}

#[test]
fn abort_request_gets_exactly_one_end_request() {
    let tfpm = start();
    let mut client = tfpm.connect();
    let mut bytes = get_request_bytes(1, "/sleep.php", "ms=300", true);
    bytes.extend(encode_record(ABORT_REQUEST, 1, b""));
    client.send_raw(&bytes);
    let (_, seen) = client.read_until_end(1);
    assert_eq!(seen.iter().filter(|r| r.kind == END_REQUEST).count(), 1);
    // Nothing follows it, and the connection serves the next request.
    assert!(!client
        .peer_closed(Duration::from_millis(500))
        .expect("nothing after END_REQUEST"));
    client.send_raw(&get_request_bytes(1, "/hello.php", "", true));
    let (stdout, _) = client.read_until_end(1);
    assert!(String::from_utf8_lossy(&stdout).ends_with("Hello, world!\n"));
}

/// Starts abort_wait.php, waits until it runs, then lets `abort` end the
/// client side; returns what the script noted.
fn abort_while_sleeping(ignore: bool, abort: impl FnOnce(FcgiClient)) -> String {
    let tfpm = start();
    let dir = fcgi_tests::tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let query = format!("ignore={}&marker={}", u8::from(ignore), marker.display());
    let mut client = tfpm.connect();
    client.send_raw(&get_request_bytes(1, "/abort_wait.php", &query, true));
    let started = poll_until(Duration::from_secs(10), POLL, || {
        std::fs::read_to_string(&marker)
            .ok()
            .filter(|s| !s.is_empty())
    });
    assert!(started.is_some(), "{}", tfpm.log());
    let asked = Instant::now();
    abort(client);
    // The script sleeps 30 s: only the abort can end it this early.
    let done = poll_until(Duration::from_secs(10), POLL, || {
        let noted = std::fs::read_to_string(&marker).ok()?;
        noted.contains("shutdown").then_some(noted)
    });
    let noted = done.unwrap_or_else(|| panic!("the abort did not wake the script\n{}", tfpm.log()));
    assert!(asked.elapsed() < Duration::from_secs(10));
    noted
}

#[test]
fn abort_request_wakes_a_sleeping_script_and_ends_it() {
    let noted = abort_while_sleeping(false, |mut client| {
        client.send_raw(&encode_record(ABORT_REQUEST, 1, b""));
        let (_, seen) = client.read_until_end(1);
        assert_eq!(seen.iter().filter(|r| r.kind == END_REQUEST).count(), 1);
    });
    assert_eq!(noted, "started\nshutdown aborted=1\n");
}

#[test]
fn with_ignore_user_abort_the_script_sees_the_abort_and_runs_on() {
    let noted = abort_while_sleeping(true, |mut client| {
        client.send_raw(&encode_record(ABORT_REQUEST, 1, b""));
        client.read_until_end(1);
    });
    assert_eq!(
        noted,
        "started\nwoke early=1 aborted=1\nshutdown aborted=1\n"
    );
}

#[test]
fn a_web_server_hanging_up_aborts_its_sleeping_script() {
    let noted = abort_while_sleeping(false, drop);
    assert_eq!(noted, "started\nshutdown aborted=1\n");
}

#[test]
fn oversized_params_get_a_431_and_the_connection_stays_usable() {
    let tfpm = start();
    let mut client = tfpm.connect();
    let big = "x".repeat(1100 * 1024);
    let mut pairs = Vec::new();
    for (name, value) in get_params("/hello.php", "") {
        pairs.extend(encode_pair(name.as_bytes(), value.as_bytes()));
    }
    pairs.extend(encode_pair(b"HTTP_X_HUGE", big.as_bytes()));
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    bytes.extend(encode_stream(PARAMS, 1, &pairs));
    bytes.extend(encode_stream(STDIN, 1, b""));
    client.send_raw(&bytes);
    let (stdout, _) = client.read_until_end(1);
    assert!(
        String::from_utf8_lossy(&stdout).starts_with("Status: 431"),
        "{}",
        String::from_utf8_lossy(&stdout)
    );
    client.send_raw(&get_request_bytes(1, "/hello.php", "", true));
    let (stdout, _) = client.read_until_end(1);
    assert!(String::from_utf8_lossy(&stdout).ends_with("Hello, world!\n"));
}

#[test]
fn a_protocol_error_closes_only_its_own_connection() {
    let tfpm = start();
    let mut bad = tfpm.connect();
    let mut good = tfpm.connect();
    // FastCGI version 2 does not exist: the framing can't be trusted.
    bad.send_raw(&[2, BEGIN_REQUEST, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    assert!(
        bad.peer_closed(Duration::from_secs(10)).expect("read"),
        "the bad connection stayed open"
    );
    good.send_raw(&get_request_bytes(1, "/hello.php", "", true));
    let (stdout, _) = good.read_until_end(1);
    assert!(String::from_utf8_lossy(&stdout).ends_with("Hello, world!\n"));
    let log = tfpm.log();
    assert!(log.contains("closing connection"), "{log}");
}
