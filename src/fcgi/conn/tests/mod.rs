//! Unit tests of the connection state machine: requests from BEGIN_REQUEST
//! to END_REQUEST, refusals and protocol errors. Management records are in
//! `management`, phases and deadlines in `lifecycle`.

mod lifecycle;
mod management;

use std::time::Instant;

use bytes::BytesMut;

use super::*;
use crate::fcgi::nv::encode_pair;

const PARAMS_CAP: usize = 4096;

/// The clock, where a test does not care about time.
fn now() -> Instant {
    Instant::now()
}

fn single() -> ConnState {
    let cfg = ConnConfig {
        max_reqs: 1,
        mpxs_conns: false,
        max_conns: 10,
        max_params_bytes: PARAMS_CAP,
        max_params_pairs: 100,
    };
    ConnState::new(cfg, now())
}

fn multiplexed(max_reqs: usize) -> ConnState {
    let cfg = ConnConfig {
        max_reqs,
        mpxs_conns: true,
        max_conns: 7,
        max_params_bytes: PARAMS_CAP,
        max_params_pairs: 100,
    };
    ConnState::new(cfg, now())
}

fn rec(kind: RecordType, id: u16, content: &[u8]) -> Record {
    Record::new(kind, id, Bytes::copy_from_slice(content))
}

fn begin_rec(id: u16, role: u16, keep_conn: bool) -> Record {
    let body = BeginRequest { role, keep_conn }.to_bytes();
    Record::new(RecordType::BeginRequest, id, body)
}

fn nv(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    for (name, value) in pairs {
        encode_pair(name, value, &mut dst);
    }
    dst.to_vec()
}

fn feed(conn: &mut ConnState, kind: RecordType, id: u16, content: &[u8]) -> Option<Event> {
    conn.handle(rec(kind, id, content), now()).unwrap()
}

fn begin(conn: &mut ConnState, id: u16, role: Role) {
    let event = conn
        .handle(begin_rec(id, role.as_u16(), true), now())
        .unwrap();
    let expected = Event::Begin {
        id,
        role,
        keep_conn: true,
    };
    assert_eq!(event, Some(expected));
}

/// Begins `id` and ends its PARAMS stream with one pair.
fn dispatch(conn: &mut ConnState, id: u16, role: Role) {
    begin(conn, id, role);
    assert_eq!(
        feed(conn, RecordType::Params, id, &nv(&[(b"A", b"1")])),
        None
    );
    let event = feed(conn, RecordType::Params, id, b"");
    assert!(matches!(event, Some(Event::Params { id: got, .. }) if got == id));
}

fn refused(id: u16, protocol_status: ProtocolStatus) -> Option<Event> {
    Some(Event::Reply(Out::EndRequest {
        id,
        app_status: 0,
        protocol_status,
    }))
}

fn get_values(conn: &mut ConnState, names: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (*n, &b""[..])).collect();
    let event = feed(conn, RecordType::GetValues, 0, &nv(&pairs));
    let Some(Event::Reply(Out::GetValuesResult(answers))) = event else {
        panic!("expected GET_VALUES_RESULT, got {event:?}");
    };
    answers
        .into_iter()
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

fn answer(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
    (name.as_bytes().to_vec(), value.as_bytes().to_vec())
}

fn err(conn: &mut ConnState, record: Record) -> ProtocolError {
    conn.handle(record, now()).unwrap_err()
}

#[test]
fn full_request_sequence() {
    let mut conn = single();
    let event = conn.handle(begin_rec(1, 1, false), now()).unwrap();
    assert_eq!(
        event,
        Some(Event::Begin {
            id: 1,
            role: Role::Responder,
            keep_conn: false
        })
    );
    assert!(conn.is_active(1));
    assert_eq!(conn.active(), 1);

    let stream = nv(&[
        (b"SCRIPT_FILENAME", b"/srv/index.php"),
        (b"REQUEST_METHOD", b"POST"),
    ]);
    let (first, second) = stream.split_at(20);
    assert_eq!(feed(&mut conn, RecordType::Params, 1, first), None);
    assert_eq!(feed(&mut conn, RecordType::Params, 1, second), None);
    let Some(Event::Params { id: 1, params }) = feed(&mut conn, RecordType::Params, 1, b"") else {
        panic!("expected params");
    };
    assert_eq!(params.get(b"REQUEST_METHOD").unwrap(), &b"POST"[..]);
    assert_eq!(
        params.get(b"SCRIPT_FILENAME").unwrap(),
        &b"/srv/index.php"[..]
    );

    let event = feed(&mut conn, RecordType::Stdin, 1, b"a=1");
    assert_eq!(
        event,
        Some(Event::Stdin {
            id: 1,
            data: Bytes::from_static(b"a=1")
        })
    );
    let event = feed(&mut conn, RecordType::Stdin, 1, b"&b=2");
    assert!(matches!(event, Some(Event::Stdin { id: 1, .. })));
    let event = feed(&mut conn, RecordType::Stdin, 1, b"");
    assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
    // Stray empty STDIN after the end is ignored.
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b""), None);

    conn.end(1, now());
    assert!(!conn.is_active(1));
    assert_eq!(conn.active(), 0);
    // Trailing records for the ended id are skipped.
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b"late"), None);
}

#[test]
fn stdin_chunk_is_the_record_content() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    let content = Bytes::from_static(b"shared");
    let event = conn
        .handle(Record::new(RecordType::Stdin, 1, content.clone()), now())
        .unwrap();
    let Some(Event::Stdin { data, .. }) = event else {
        panic!("expected stdin");
    };
    assert_eq!(data.as_ptr(), content.as_ptr());
}

#[test]
fn begin_reports_every_role_and_keep_conn() {
    for role in [Role::Responder, Role::Authorizer, Role::Filter] {
        for keep_conn in [false, true] {
            let mut conn = single();
            let event = conn
                .handle(begin_rec(9, role.as_u16(), keep_conn), now())
                .unwrap();
            let expected = Event::Begin {
                id: 9,
                role,
                keep_conn,
            };
            assert_eq!(event, Some(expected));
        }
    }
}

#[test]
fn unknown_role_is_refused_without_activating() {
    for role in [0u16, 4, 0x0100, 0xFFFF] {
        let mut conn = single();
        let event = conn.handle(begin_rec(5, role, true), now()).unwrap();
        assert_eq!(event, refused(5, ProtocolStatus::UnknownRole));
        assert!(!conn.is_active(5));
        assert_eq!(conn.active(), 0);
        assert_eq!(feed(&mut conn, RecordType::Params, 5, b"\x01\x01ab"), None);
        assert_eq!(feed(&mut conn, RecordType::Params, 5, b""), None);
        assert_eq!(feed(&mut conn, RecordType::Stdin, 5, b""), None);
        begin(&mut conn, 5, Role::Responder);
    }
}

#[test]
fn begin_with_bad_body_length_is_an_error() {
    for len in [0, 1, 7, 9, 100] {
        let mut conn = single();
        let error = err(&mut conn, rec(RecordType::BeginRequest, 1, &vec![0; len]));
        assert_eq!(error, ProtocolError::BadBeginBody { id: 1, len });
        assert_eq!(conn.active(), 0);
    }
    let error = ProtocolError::BadBeginBody { id: 1, len: 0 };
    assert_eq!(
        error.to_string(),
        "BEGIN_REQUEST for request 1 has a 0-byte body, expected 8"
    );
}

#[test]
fn begin_on_the_null_id_is_an_error() {
    let mut conn = single();
    let error = err(&mut conn, begin_rec(0, 1, true));
    assert_eq!(error, ProtocolError::BeginOnNullId);
    assert!(error.to_string().contains("request id 0"));
}

#[test]
fn begin_for_an_active_id_is_an_error() {
    let mut conn = multiplexed(4);
    begin(&mut conn, 1, Role::Responder);
    let error = err(&mut conn, begin_rec(1, 1, true));
    assert_eq!(error, ProtocolError::AlreadyActive { id: 1 });
    assert_eq!(
        error.to_string(),
        "BEGIN_REQUEST for request 1, which is already active"
    );
    // Also on a non-multiplexed connection: the error wins over CANT_MPX_CONN.
    let mut conn = single();
    dispatch(&mut conn, 3, Role::Responder);
    assert_eq!(
        err(&mut conn, begin_rec(3, 1, false)),
        ProtocolError::AlreadyActive { id: 3 }
    );
}

#[test]
fn second_request_on_a_single_connection_gets_cant_mpx_conn() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    let event = conn.handle(begin_rec(2, 1, true), now()).unwrap();
    assert_eq!(event, refused(2, ProtocolStatus::CantMpxConn));
    assert!(conn.is_active(1));
    assert!(!conn.is_active(2));
    // The refused id's records are skipped; the first request continues.
    assert_eq!(feed(&mut conn, RecordType::Params, 2, b""), None);
    assert_eq!(feed(&mut conn, RecordType::Stdin, 2, b"x"), None);
    let event = feed(&mut conn, RecordType::Stdin, 1, b"");
    assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
    conn.end(1, now());
    begin(&mut conn, 2, Role::Responder);
}

#[test]
fn too_many_multiplexed_requests_get_overloaded() {
    let mut conn = multiplexed(2);
    begin(&mut conn, 1, Role::Responder);
    begin(&mut conn, 2, Role::Responder);
    let event = conn.handle(begin_rec(3, 1, true), now()).unwrap();
    assert_eq!(event, refused(3, ProtocolStatus::Overloaded));
    assert_eq!(conn.active(), 2);
    assert!(!conn.is_active(3));
    conn.end(1, now());
    begin(&mut conn, 3, Role::Responder);
    assert_eq!(conn.active(), 2);
}

#[test]
fn too_many_pairs_fail_only_that_request() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let names: Vec<String> = (0..101).map(|i| format!("N{i}")).collect();
    let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect();
    let err = conn
        .handle(rec(RecordType::Params, 1, &nv(&pairs)), now())
        .unwrap_err();
    assert_eq!(err, ProtocolError::TooManyParams { id: 1, max: 100 });
    assert_eq!(err.failed_request(), Some(1));
    // Its further input is ignored until the caller ends it.
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b""), None);
    conn.end(1, now());
    begin(&mut conn, 1, Role::Responder);
}

#[test]
fn input_is_complete_once_params_and_stdin_ended() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    assert!(!conn.input_complete(1));
    feed(&mut conn, RecordType::Params, 1, b"");
    assert!(!conn.input_complete(1));
    feed(&mut conn, RecordType::Stdin, 1, b"");
    assert!(conn.input_complete(1));
    assert!(!conn.input_complete(2));
}

#[test]
fn the_role_does_not_count_against_the_pair_cap() {
    let cfg = ConnConfig {
        max_params_pairs: 1,
        ..*single().config()
    };
    let mut conn = ConnState::new(cfg, now());
    begin(&mut conn, 1, Role::Responder);
    assert_eq!(
        feed(&mut conn, RecordType::Params, 1, &nv(&[(b"A", b"B")])),
        None
    );
    let event = feed(&mut conn, RecordType::Params, 1, b"");
    assert!(matches!(event, Some(Event::Params { .. })), "{event:?}");
}

#[test]
fn a_cancelled_request_gets_no_more_events() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    conn.cancel(1);
    assert_eq!(
        feed(&mut conn, RecordType::Params, 1, &nv(&[(b"A", b"1")])),
        None
    );
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b""), None);
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b"x"), None);
    assert_eq!(feed(&mut conn, RecordType::AbortRequest, 1, b""), None);
    assert!(conn.is_active(1));
    conn.end(1, now());
    begin(&mut conn, 1, Role::Responder);
}

#[test]
fn zero_max_reqs_refuses_everything() {
    let mut conn = multiplexed(0);
    let event = conn.handle(begin_rec(1, 1, true), now()).unwrap();
    assert_eq!(event, refused(1, ProtocolStatus::Overloaded));
    let cfg = ConnConfig {
        max_reqs: 0,
        ..*single().config()
    };
    let mut conn = ConnState::new(cfg, now());
    let event = conn.handle(begin_rec(1, 1, true), now()).unwrap();
    assert_eq!(event, refused(1, ProtocolStatus::Overloaded));
}

#[test]
fn unknown_role_is_reported_before_capacity() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let event = conn.handle(begin_rec(2, 9, true), now()).unwrap();
    assert_eq!(event, refused(2, ProtocolStatus::UnknownRole));
}

#[test]
fn multiplexed_requests_interleave() {
    let mut conn = multiplexed(8);
    begin(&mut conn, 1, Role::Responder);
    begin(&mut conn, 2, Role::Responder);
    feed(&mut conn, RecordType::Params, 2, &nv(&[(b"WHO", b"two")]));
    feed(&mut conn, RecordType::Params, 1, &nv(&[(b"WHO", b"one")]));
    let Some(Event::Params { id: 2, params }) = feed(&mut conn, RecordType::Params, 2, b"") else {
        panic!("expected params for 2");
    };
    assert_eq!(params.get(b"WHO").unwrap(), &b"two"[..]);
    let event = feed(&mut conn, RecordType::Stdin, 2, b"");
    assert_eq!(event, Some(Event::StdinEnd { id: 2 }));
    let Some(Event::Params { id: 1, params }) = feed(&mut conn, RecordType::Params, 1, b"") else {
        panic!("expected params for 1");
    };
    assert_eq!(params.get(b"WHO").unwrap(), &b"one"[..]);
    conn.end(2, now());
    assert!(conn.is_active(1));
    let event = feed(&mut conn, RecordType::Stdin, 1, b"body");
    assert!(matches!(event, Some(Event::Stdin { id: 1, .. })));
    let mut ids: Vec<u16> = conn.active_ids().collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1]);
}

#[test]
fn id_can_be_reused_after_end() {
    let mut conn = single();
    for _ in 0..3 {
        dispatch(&mut conn, 1, Role::Responder);
        assert_eq!(
            feed(&mut conn, RecordType::Stdin, 1, b""),
            Some(Event::StdinEnd { id: 1 })
        );
        conn.end(1, now());
        assert_eq!(conn.active(), 0);
    }
}

#[test]
fn end_of_an_unknown_id_is_harmless() {
    let mut conn = single();
    conn.end(42, now());
    begin(&mut conn, 1, Role::Responder);
    conn.end(2, now());
    assert!(conn.is_active(1));
}

#[test]
fn records_for_inactive_ids_are_skipped() {
    let mut conn = single();
    for kind in [
        RecordType::Params,
        RecordType::Stdin,
        RecordType::Data,
        RecordType::AbortRequest,
    ] {
        assert_eq!(feed(&mut conn, kind, 7, b"payload"), None, "{kind}");
        assert_eq!(feed(&mut conn, kind, 7, b""), None, "{kind}");
    }
    assert_eq!(conn.active(), 0);
    // Garbage PARAMS for an inactive id are not parsed.
    assert_eq!(feed(&mut conn, RecordType::Params, 7, b"\xFF"), None);
}

#[test]
fn params_over_the_cap_are_an_error() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let value = vec![b'v'; 3000];
    let stream = nv(&[(b"BIG", &value)]);
    assert_eq!(feed(&mut conn, RecordType::Params, 1, &stream), None);
    let error = err(&mut conn, rec(RecordType::Params, 1, &stream));
    let expected = ProtocolError::ParamsTooLarge {
        id: 1,
        max: PARAMS_CAP,
    };
    assert_eq!(error, expected);
    assert_eq!(
        error.to_string(),
        "PARAMS for request 1 exceed the limit of 4096 bytes"
    );
}

#[test]
fn after_a_params_error_the_request_can_be_answered_and_ended() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let big = vec![0u8; PARAMS_CAP + 1];
    let error = err(&mut conn, rec(RecordType::Params, 1, &big));
    assert_eq!(error.failed_request(), Some(1));
    // The request stays active; its further input is ignored.
    assert!(conn.is_active(1));
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b"more"), None);
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b""), None);
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b"body"), None);
    // An ABORT is still reported once; the server answers the request.
    let event = feed(&mut conn, RecordType::AbortRequest, 1, b"");
    let abort = Event::Abort {
        id: 1,
        dispatched: false,
    };
    assert_eq!(event, Some(abort));
    conn.end(1, now());
    dispatch(&mut conn, 1, Role::Responder);
}

#[test]
fn failed_request_only_for_request_scoped_errors() {
    let truncated = ProtocolError::ParamsTruncated { id: 5 };
    assert_eq!(truncated.failed_request(), Some(5));
    assert_eq!(ProtocolError::BeginOnNullId.failed_request(), None);
    let active = ProtocolError::AlreadyActive { id: 1 };
    assert_eq!(active.failed_request(), None);
}

#[test]
fn params_declaring_a_huge_pair_fail_at_once() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let error = err(
        &mut conn,
        rec(RecordType::Params, 1, b"\x7F\xFF\xFF\xFF\xFF"),
    );
    assert!(matches!(error, ProtocolError::ParamsTooLarge { id: 1, .. }));
}

#[test]
fn truncated_params_are_an_error() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    feed(&mut conn, RecordType::Params, 1, b"\x04\x05HOS");
    let error = err(&mut conn, rec(RecordType::Params, 1, b""));
    assert_eq!(error, ProtocolError::ParamsTruncated { id: 1 });
}

#[test]
fn params_keep_last_duplicate() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let stream = nv(&[(b"X", b"first"), (b"Y", b"y"), (b"X", b"last")]);
    feed(&mut conn, RecordType::Params, 1, &stream);
    let Some(Event::Params { params, .. }) = feed(&mut conn, RecordType::Params, 1, b"") else {
        panic!("expected params");
    };
    assert_eq!(params.get(b"X").unwrap(), &b"last"[..]);
    assert_eq!(params.len(), 3, "FCGI_ROLE, X, Y");
}

#[test]
fn params_start_with_the_role_as_in_php_fpm() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Authorizer);
    let event = feed(&mut conn, RecordType::Params, 1, b"");
    let role = Params::from_text(&[("FCGI_ROLE", "AUTHORIZER")]);
    assert_eq!(
        event,
        Some(Event::Params {
            id: 1,
            params: role
        })
    );
}

#[test]
fn params_after_their_end_are_an_error() {
    for content in [&b"\x01\x01ab"[..], b""] {
        let mut conn = single();
        dispatch(&mut conn, 1, Role::Responder);
        let error = err(&mut conn, rec(RecordType::Params, 1, content));
        let kind = RecordType::Params;
        assert_eq!(error, ProtocolError::AfterStreamEnd { kind, id: 1 });
        assert_eq!(
            error.to_string(),
            "PARAMS for request 1 after its PARAMS stream ended"
        );
    }
}

#[test]
fn stdin_before_params_end_is_an_error() {
    for content in [&b"body"[..], b""] {
        let mut conn = single();
        begin(&mut conn, 1, Role::Responder);
        let error = err(&mut conn, rec(RecordType::Stdin, 1, content));
        let kind = RecordType::Stdin;
        assert_eq!(error, ProtocolError::BeforeParamsEnd { kind, id: 1 });
        assert_eq!(
            error.to_string(),
            "STDIN for request 1 before its PARAMS stream ended"
        );
    }
}

#[test]
fn stdin_after_its_end_is_an_error() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    feed(&mut conn, RecordType::Stdin, 1, b"");
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b""), None);
    let error = err(&mut conn, rec(RecordType::Stdin, 1, b"more"));
    let kind = RecordType::Stdin;
    assert_eq!(error, ProtocolError::AfterStreamEnd { kind, id: 1 });
    assert_eq!(
        error.to_string(),
        "STDIN for request 1 after its STDIN stream ended"
    );
}

#[test]
fn abort_of_an_active_request() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    let event = feed(&mut conn, RecordType::AbortRequest, 1, b"");
    let abort = Event::Abort {
        id: 1,
        dispatched: true,
    };
    assert_eq!(event, Some(abort));
    assert!(conn.is_active(1));
    // Reported once; later input for the request is ignored.
    assert_eq!(feed(&mut conn, RecordType::AbortRequest, 1, b""), None);
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b"x"), None);
    assert_eq!(feed(&mut conn, RecordType::Stdin, 1, b""), None);
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b"x"), None);
    // Still active until the application ends it.
    assert_eq!(
        err(&mut conn, begin_rec(1, 1, true)),
        ProtocolError::AlreadyActive { id: 1 }
    );
    conn.end(1, now());
    dispatch(&mut conn, 1, Role::Responder);
}

#[test]
fn abort_before_params_end_and_with_a_body() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Responder);
    let event = feed(&mut conn, RecordType::AbortRequest, 1, b"ignored body");
    let abort = Event::Abort {
        id: 1,
        dispatched: false,
    };
    assert_eq!(event, Some(abort));
    assert_eq!(feed(&mut conn, RecordType::Params, 1, b""), None);
}

#[test]
fn filter_role_streams_data() {
    let mut conn = single();
    begin(&mut conn, 1, Role::Filter);
    let error = err(&mut conn, rec(RecordType::Data, 1, b"early"));
    let kind = RecordType::Data;
    assert_eq!(error, ProtocolError::BeforeParamsEnd { kind, id: 1 });

    let mut conn = single();
    dispatch(&mut conn, 1, Role::Filter);
    let event = feed(&mut conn, RecordType::Stdin, 1, b"");
    assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
    let event = feed(&mut conn, RecordType::Data, 1, b"file");
    assert_eq!(
        event,
        Some(Event::Data {
            id: 1,
            data: Bytes::from_static(b"file")
        })
    );
    let event = feed(&mut conn, RecordType::Data, 1, b"");
    assert_eq!(event, Some(Event::DataEnd { id: 1 }));
    assert_eq!(feed(&mut conn, RecordType::Data, 1, b""), None);
    let error = err(&mut conn, rec(RecordType::Data, 1, b"late"));
    assert_eq!(error, ProtocolError::AfterStreamEnd { kind, id: 1 });
}

#[test]
fn filter_data_may_precede_stdin_end() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Filter);
    let event = feed(&mut conn, RecordType::Data, 1, b"d");
    assert!(matches!(event, Some(Event::Data { id: 1, .. })));
    let event = feed(&mut conn, RecordType::Stdin, 1, b"s");
    assert!(matches!(event, Some(Event::Stdin { id: 1, .. })));
}

#[test]
fn data_for_other_roles_is_skipped() {
    for role in [Role::Responder, Role::Authorizer] {
        let mut conn = single();
        dispatch(&mut conn, 1, role);
        assert_eq!(feed(&mut conn, RecordType::Data, 1, b"ignored"), None);
        assert_eq!(feed(&mut conn, RecordType::Data, 1, b""), None);
        let event = feed(&mut conn, RecordType::Stdin, 1, b"");
        assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
    }
}

#[test]
fn authorizer_request_sequence() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Authorizer);
    let event = feed(&mut conn, RecordType::Stdin, 1, b"");
    assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
}
