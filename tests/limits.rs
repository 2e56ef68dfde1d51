//! The daemon's limits and timeouts, through the real daemon: each one, when
//! hit, costs only what it must (the stalled connection, or the one request)
//! and says in the log which limit it was.

use std::io::{ErrorKind, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::{
    begin_body, encode_pair, encode_record, encode_stream, get_params, get_request_bytes,
    read_record, FcgiClient, Record, BEGIN_REQUEST, END_REQUEST, KEEP_CONN, PARAMS, RESPONDER,
    STDIN,
};
use fcgi_tests::launch::Launch;
use fcgi_tests::{docroot, poll_until};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// How often to look again while waiting for something to happen.
const POLL: Duration = Duration::from_millis(20);
/// OVERLOADED, END_REQUEST's protocolStatus 2.
const OVERLOADED: u8 = 2;

fn start(extra: &[&str]) -> Tfpm {
    Launch::new(Path::new(TFPM)).args(extra).start()
}

fn encoded_params(script: &str, query: &str) -> Vec<u8> {
    let mut pairs = Vec::new();
    for (name, value) in get_params(script, query) {
        pairs.extend(encode_pair(name.as_bytes(), value.as_bytes()));
    }
    pairs
}

fn request_bytes(id: u16, script: &str, query: &str) -> Vec<u8> {
    get_request_bytes(id, script, query, true)
}

/// Reads records until END_REQUEST for `id`: (stdout, the END_REQUEST).
fn read_until_end(client: &mut FcgiClient, id: u16) -> (String, Record) {
    let (stdout, mut seen) = client.read_until_end(id);
    let end = seen.pop().expect("END_REQUEST");
    (String::from_utf8_lossy(&stdout).into_owned(), end)
}

fn assert_hello(client: &mut FcgiClient) {
    client.send_raw(&request_bytes(1, "/hello.php", ""));
    let (stdout, _) = read_until_end(client, 1);
    assert!(stdout.ends_with("Hello, world!\n"), "{stdout}");
}

fn wait_for_log(tfpm: &Tfpm, needle: &str) {
    let found = poll_until(Duration::from_secs(10), POLL, || {
        tfpm.log().contains(needle).then_some(())
    });
    assert!(found.is_some(), "no {needle:?} in the log:\n{}", tfpm.log());
}

#[test]
fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
    let tfpm = start(&["--first-byte-timeout", "1"]);
    let mut silent = tfpm.connect();
    let opened = Instant::now();
    assert!(silent.peer_closed(Duration::from_secs(10)).expect("read"));
    assert!(opened.elapsed() >= Duration::from_millis(900));
    wait_for_log(&tfpm, "first-byte timeout");
    // A connection that speaks at once is not affected.
    let mut client = tfpm.connect();
    assert_hello(&mut client);
}

#[test]
fn params_that_never_end_get_a_408_and_the_connection_goes_on() {
    let tfpm = start(&["--params-timeout", "1"]);
    let mut client = tfpm.connect();
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    // Every pair, but never the empty PARAMS record that ends the stream.
    bytes.extend(encode_record(PARAMS, 1, &encoded_params("/hello.php", "")));
    client.send_raw(&bytes);
    let (stdout, _) = read_until_end(&mut client, 1);
    assert!(stdout.starts_with("Status: 408"), "{stdout}");
    wait_for_log(&tfpm, "params timeout");
    // The late end of that stream is skipped; the next request is served.
    client.send_raw(&encode_stream(PARAMS, 1, b""));
    assert_hello(&mut client);
}

#[test]
fn a_body_that_stops_arriving_aborts_only_its_request() {
    let tfpm = start(&["--stdin-timeout", "1"]);
    let mut client = tfpm.connect();
    let mut request = CgiRequest::get(&docroot(), "/input.php").params();
    request.retain(|(name, _)| name != "REQUEST_METHOD" && name != "CONTENT_LENGTH");
    request.push(("REQUEST_METHOD".into(), "POST".into()));
    request.push(("CONTENT_LENGTH".into(), "100".into()));
    let mut pairs = Vec::new();
    for (name, value) in &request {
        pairs.extend(encode_pair(name.as_bytes(), value.as_bytes()));
    }
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    bytes.extend(encode_stream(PARAMS, 1, &pairs));
    bytes.extend(encode_record(STDIN, 1, &[b'x'; 10]));
    client.send_raw(&bytes);
    // The script is told the client is gone; exactly one END_REQUEST ends it.
    let (_, end) = read_until_end(&mut client, 1);
    assert_eq!(end.content[4], 0, "REQUEST_COMPLETE");
    wait_for_log(&tfpm, "stdin timeout");
    assert_hello(&mut client);
}

/// The request sent on `client` gets no answer for 300 ms: its connection
/// waits in the listen backlog, accepted by the kernel but not by tfpm.
fn assert_waiting(client: &mut FcgiClient) {
    client
        .stream()
        .set_timeouts(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let err = client.stream().read(&mut byte).expect_err("no answer yet");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
}

#[test]
fn past_max_connections_new_connections_wait_in_the_backlog() {
    let tfpm = start(&["--max-connections", "1"]);
    let mut first = tfpm.connect();
    assert_hello(&mut first);
    // Accepted by the kernel, not yet by tfpm: the request waits.
    let mut second = tfpm.connect();
    second.send_raw(&request_bytes(1, "/hello.php", ""));
    assert_waiting(&mut second);
    wait_for_log(&tfpm, "max connections reached");
    // The first connection closes: the second is taken and answered in full.
    drop(first);
    second.stream().set_timeouts(None).expect("timeout");
    let (stdout, _) = read_until_end(&mut second, 1);
    assert!(stdout.ends_with("Hello, world!\n"), "{stdout}");
}

/// `--max-connections` holds for the pool, not for each of its worker
/// processes: with two workers and a limit of 2, a third connection waits,
/// and FCGI_MAX_CONNS still says 2.
#[test]
fn max_connections_is_shared_by_the_worker_processes() {
    let tfpm = start(&["--max-connections", "2", "--workers", "2"]);
    let mut first = tfpm.connect();
    assert_hello(&mut first);
    let mut second = tfpm.connect();
    assert_hello(&mut second);
    let mut third = tfpm.connect();
    third.send_raw(&request_bytes(1, "/hello.php", ""));
    assert_waiting(&mut third);
    drop(first);
    third.stream().set_timeouts(None).expect("timeout");
    let (stdout, _) = read_until_end(&mut third, 1);
    assert!(stdout.ends_with("Hello, world!\n"), "{stdout}");
    let values = second.get_values(&["FCGI_MAX_CONNS"]).expect("GET_VALUES");
    assert_eq!(values, [("FCGI_MAX_CONNS".to_string(), "2".to_string())]);
}

#[test]
fn past_max_requests_a_request_gets_overloaded() {
    let tfpm = start(&["--max-requests", "1"]);
    let dir = fcgi_tests::tempfile::tempdir().expect("temp dir");
    let query = format!("n=2&dir={}", dir.path().display());
    let mut busy = tfpm.connect();
    busy.send_raw(&request_bytes(1, "/engine/barrier.php", &query));
    // The script leaves a file once it runs: the one slot is taken.
    let running = poll_until(Duration::from_secs(10), POLL, || {
        (std::fs::read_dir(dir.path()).ok()?.count() > 0).then_some(())
    });
    assert!(running.is_some(), "{}", tfpm.log());
    let mut other = tfpm.connect();
    other.send_raw(&request_bytes(1, "/hello.php", ""));
    let end = read_record(other.stream()).expect("END_REQUEST");
    assert_eq!((end.kind, end.id), (END_REQUEST, 1));
    assert_eq!(end.content[4], OVERLOADED);
    wait_for_log(&tfpm, "max requests");
    // Let the first one finish; then there is room again.
    std::fs::write(dir.path().join("release"), b"").expect("release");
    let (stdout, _) = read_until_end(&mut busy, 1);
    assert!(stdout.ends_with("all here"), "{stdout}");
    assert_hello(&mut other);
}

#[test]
fn too_many_pairs_get_a_431() {
    let tfpm = start(&["--max-params-pairs", "50"]);
    let mut client = tfpm.connect();
    let mut pairs = encoded_params("/hello.php", "");
    for i in 0..60 {
        pairs.extend(encode_pair(format!("HTTP_X_{i}").as_bytes(), b"1"));
    }
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    bytes.extend(encode_stream(PARAMS, 1, &pairs));
    bytes.extend(encode_stream(STDIN, 1, b""));
    client.send_raw(&bytes);
    let (stdout, _) = read_until_end(&mut client, 1);
    assert!(stdout.starts_with("Status: 431"), "{stdout}");
    wait_for_log(&tfpm, "more than 50 name-value pairs");
    assert_hello(&mut client);
}

#[test]
fn a_pair_cut_short_by_the_end_of_params_gets_a_400() {
    let tfpm = start(&[]);
    let mut client = tfpm.connect();
    let mut pairs = encoded_params("/hello.php", "");
    // A pair that declares a 100-byte value, then the stream ends.
    pairs.extend([4, 100]);
    pairs.extend(b"NAME");
    let mut bytes = encode_record(BEGIN_REQUEST, 1, &begin_body(RESPONDER, KEEP_CONN));
    bytes.extend(encode_stream(PARAMS, 1, &pairs));
    bytes.extend(encode_stream(STDIN, 1, b""));
    client.send_raw(&bytes);
    let (stdout, _) = read_until_end(&mut client, 1);
    assert!(stdout.starts_with("Status: 400"), "{stdout}");
    assert_hello(&mut client);
}
