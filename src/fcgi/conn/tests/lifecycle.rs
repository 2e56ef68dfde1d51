//! A request's phases and the connection's deadlines, on a clock the tests
//! hold: which timeout is due next, and from when it counts.

use std::time::{Duration, Instant};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn timeouts() -> Timeouts {
    Timeouts {
        first_byte: Some(2 * SEC),
        params: Some(3 * SEC),
        stdin: Some(5 * SEC),
        idle: Some(7 * SEC),
    }
}

/// A connection opened at `t0`, one request at a time.
fn opened(t0: Instant) -> ConnState {
    ConnState::new(ConnConfig::default(), t0)
}

fn at(
    conn: &mut ConnState,
    t: Instant,
    kind: RecordType,
    id: u16,
    content: &[u8],
) -> Option<Event> {
    conn.handle(rec(kind, id, content), t).unwrap()
}

fn begin_at(conn: &mut ConnState, t: Instant, id: u16, keep_conn: bool) {
    let event = conn.handle(begin_rec(id, 1, keep_conn), t).unwrap();
    assert!(matches!(event, Some(Event::Begin { .. })), "{event:?}");
}

fn params_end_at(conn: &mut ConnState, t: Instant, id: u16) {
    let event = at(conn, t, RecordType::Params, id, b"");
    assert!(matches!(event, Some(Event::Params { .. })), "{event:?}");
}

#[test]
fn a_new_connection_waits_for_its_first_byte() {
    let t0 = Instant::now();
    let conn = opened(t0);
    let due = conn.next_deadline(&timeouts());
    assert_eq!(due, Some((t0 + 2 * SEC, Expired::FirstByte)));
    assert!(!conn.is_idle());
}

#[test]
fn a_handed_over_connection_is_idle_not_new() {
    let t0 = Instant::now();
    let conn = ConnState::resumed(ConnConfig::default(), t0);
    let due = conn.next_deadline(&timeouts());
    assert_eq!(due, Some((t0 + 7 * SEC, Expired::Idle)));
    assert!(conn.is_idle());
}

#[test]
fn each_phase_has_its_own_deadline() {
    let t0 = Instant::now();
    let t = timeouts();
    let mut conn = opened(t0);

    begin_at(&mut conn, t0 + SEC, 1, true);
    let params_due = Some((t0 + 4 * SEC, Expired::Params(1)));
    assert_eq!(conn.next_deadline(&t), params_due);
    // More PARAMS do not move it: the whole stream has its limit.
    at(
        &mut conn,
        t0 + 2 * SEC,
        RecordType::Params,
        1,
        &nv(&[(b"A", b"1")]),
    );
    assert_eq!(conn.next_deadline(&t), params_due);

    params_end_at(&mut conn, t0 + 3 * SEC, 1);
    assert!(!conn.input_complete(1));
    let body_due = |since: u32| Some((t0 + since * SEC + 5 * SEC, Expired::Stdin(1)));
    assert_eq!(conn.next_deadline(&t), body_due(3));
    at(&mut conn, t0 + 4 * SEC, RecordType::Stdin, 1, b"body");
    assert_eq!(conn.next_deadline(&t), body_due(4));
    // The script read the chunk later: the peer is timed from then.
    conn.body_taken(1, t0 + 6 * SEC);
    assert_eq!(conn.next_deadline(&t), body_due(6));

    at(&mut conn, t0 + 7 * SEC, RecordType::Stdin, 1, b"");
    assert!(conn.input_complete(1));
    assert_eq!(
        conn.next_deadline(&t),
        None,
        "running: nothing the peer owes"
    );
    conn.body_taken(1, t0 + 8 * SEC);
    assert_eq!(conn.next_deadline(&t), None);

    assert!(!conn.end(1, t0 + 9 * SEC), "FCGI_KEEP_CONN keeps it open");
    assert_eq!(conn.next_deadline(&t), Some((t0 + 16 * SEC, Expired::Idle)));
    assert!(conn.is_idle());
}

#[test]
fn disabled_timeouts_are_never_due() {
    let t0 = Instant::now();
    let none = Timeouts::default();
    let mut conn = opened(t0);
    assert_eq!(conn.next_deadline(&none), None);
    begin_at(&mut conn, t0, 1, true);
    assert_eq!(conn.next_deadline(&none), None);
    params_end_at(&mut conn, t0, 1);
    assert_eq!(conn.next_deadline(&none), None);
    conn.end(1, t0);
    assert_eq!(conn.next_deadline(&none), None);
}

#[test]
fn the_earliest_of_several_requests_is_due_first() {
    let t0 = Instant::now();
    let t = timeouts();
    let mut conn = multiplexed(4);
    begin_at(&mut conn, t0, 1, true);
    params_end_at(&mut conn, t0, 1);
    begin_at(&mut conn, t0 + SEC, 2, true);
    // Request 2's params (1 + 3 s) come before request 1's body (0 + 5 s).
    assert_eq!(
        conn.next_deadline(&t),
        Some((t0 + 4 * SEC, Expired::Params(2)))
    );
    params_end_at(&mut conn, t0 + SEC, 2);
    assert_eq!(
        conn.next_deadline(&t),
        Some((t0 + 5 * SEC, Expired::Stdin(1)))
    );
    at(&mut conn, t0 + 2 * SEC, RecordType::Stdin, 1, b"");
    assert_eq!(
        conn.next_deadline(&t),
        Some((t0 + 6 * SEC, Expired::Stdin(2)))
    );
    // While one request is active, the idle timeout does not run.
    conn.end(2, t0 + 3 * SEC);
    assert_eq!(conn.next_deadline(&t), None);
}

#[test]
fn a_cancelled_or_aborted_request_owes_nothing() {
    let t0 = Instant::now();
    let t = timeouts();
    let mut conn = multiplexed(4);
    begin_at(&mut conn, t0, 1, true);
    begin_at(&mut conn, t0, 2, true);
    params_end_at(&mut conn, t0, 2);
    conn.cancel(1);
    assert!(conn.input_complete(1));
    assert_eq!(
        conn.next_deadline(&t),
        Some((t0 + 5 * SEC, Expired::Stdin(2)))
    );
    at(&mut conn, t0, RecordType::AbortRequest, 2, b"");
    assert_eq!(conn.next_deadline(&t), None);
    assert_eq!(conn.active(), 2, "active until the application ends them");
}

#[test]
fn abort_says_whether_the_application_has_the_request() {
    let t0 = Instant::now();
    let mut conn = multiplexed(4);
    begin_at(&mut conn, t0, 1, true);
    begin_at(&mut conn, t0, 2, true);
    params_end_at(&mut conn, t0, 2);
    let before = at(&mut conn, t0, RecordType::AbortRequest, 1, b"");
    let after = at(&mut conn, t0, RecordType::AbortRequest, 2, b"");
    let abort = |id, dispatched| Some(Event::Abort { id, dispatched });
    assert_eq!(before, abort(1, false), "the server answers it");
    assert_eq!(after, abort(2, true), "the application ends it");
}

#[test]
fn end_says_when_the_connection_closes() {
    let t0 = Instant::now();
    let mut conn = multiplexed(4);
    begin_at(&mut conn, t0, 1, false);
    begin_at(&mut conn, t0, 2, true);
    assert!(!conn.end(1, t0), "another request is still active");
    assert!(
        !conn.end(2, t0),
        "the last one asked to keep the connection"
    );
    begin_at(&mut conn, t0, 3, false);
    assert!(conn.end(3, t0), "no FCGI_KEEP_CONN and nothing else active");
    assert!(!conn.end(3, t0), "an unknown id changes nothing");
}

#[test]
fn a_request_the_server_refuses_leaves_the_idle_time_running() {
    let t0 = Instant::now();
    let t = timeouts();
    let mut conn = opened(t0);
    begin_at(&mut conn, t0, 1, true);
    conn.end(1, t0 + SEC);
    begin_at(&mut conn, t0 + 2 * SEC, 1, true);
    conn.refuse(1);
    assert!(!conn.is_active(1));
    assert_eq!(conn.next_deadline(&t), Some((t0 + 8 * SEC, Expired::Idle)));
    begin_at(&mut conn, t0 + 3 * SEC, 1, true);
}

#[test]
fn a_refused_params_stream_ends_the_body_phase_before_it_starts() {
    let t0 = Instant::now();
    let t = timeouts();
    let mut conn = single();
    begin_at(&mut conn, t0, 1, true);
    let big = vec![0u8; PARAMS_CAP + 1];
    let error = conn
        .handle(rec(RecordType::Params, 1, &big), t0)
        .unwrap_err();
    assert_eq!(error.failed_request(), Some(1));
    assert!(conn.input_complete(1));
    assert_eq!(conn.next_deadline(&t), None, "the server answers it now");
}
