//! Management records (GET_VALUES, unknown types) and the connection's
//! advertised limits.

use super::*;

#[test]
fn get_values_before_any_request() {
    let mut conn = single();
    let answers = get_values(
        &mut conn,
        &[b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"],
    );
    assert_eq!(
        answers,
        vec![
            answer("FCGI_MAX_CONNS", "10"),
            answer("FCGI_MAX_REQS", "1"),
            answer("FCGI_MPXS_CONNS", "0"),
        ]
    );
    assert_eq!(conn.active(), 0);
}

#[test]
fn get_values_on_a_multiplexing_connection() {
    let mut conn = multiplexed(50);
    let answers = get_values(&mut conn, &[b"FCGI_MPXS_CONNS", b"FCGI_MAX_REQS"]);
    assert_eq!(
        answers,
        vec![
            answer("FCGI_MPXS_CONNS", "1"),
            answer("FCGI_MAX_REQS", "50")
        ]
    );
}

#[test]
fn get_values_leaves_out_unknown_names() {
    let mut conn = single();
    let answers = get_values(
        &mut conn,
        &[b"FCGI_UNKNOWN", b"FCGI_MPXS_CONNS", b"fcgi_max_conns", b""],
    );
    assert_eq!(answers, vec![answer("FCGI_MPXS_CONNS", "0")]);
    assert!(get_values(&mut conn, &[b"NOPE"]).is_empty());
    assert!(get_values(&mut conn, &[]).is_empty());
}

#[test]
fn get_values_answers_a_repeated_name_once() {
    let mut conn = single();
    let answers = get_values(&mut conn, &[b"FCGI_MAX_REQS", b"FCGI_MAX_REQS"]);
    assert_eq!(answers, vec![answer("FCGI_MAX_REQS", "1")]);
}

#[test]
fn get_values_during_and_between_requests() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    assert_eq!(get_values(&mut conn, &[b"FCGI_MPXS_CONNS"]).len(), 1);
    assert!(conn.is_active(1));
    feed(&mut conn, RecordType::Stdin, 1, b"");
    conn.end(1, now());
    assert_eq!(get_values(&mut conn, &[b"FCGI_MAX_CONNS"]).len(), 1);
    dispatch(&mut conn, 1, Role::Responder);
}

#[test]
fn malformed_get_values_is_an_error() {
    let mut conn = single();
    let error = err(&mut conn, rec(RecordType::GetValues, 0, b"\x0e\x00FCGI"));
    assert_eq!(error, ProtocolError::BadGetValues(NvError::Truncated));
    assert_eq!(
        error.to_string(),
        "malformed GET_VALUES body: name-value stream ends inside a pair"
    );
    let error = err(
        &mut conn,
        rec(RecordType::GetValues, 0, b"\xFF\xFF\xFF\xFF\x00"),
    );
    assert_eq!(error, ProtocolError::BadGetValues(NvError::TooLarge));
}

#[test]
fn other_types_on_the_null_id_get_unknown_type() {
    for byte in 0..=255u8 {
        let kind = RecordType::from_u8(byte);
        if matches!(kind, RecordType::GetValues | RecordType::BeginRequest) {
            continue;
        }
        let mut conn = single();
        let event = feed(&mut conn, kind, 0, b"whatever");
        assert_eq!(event, Some(Event::Reply(Out::UnknownType(byte))), "{kind}");
    }
}

#[test]
fn unknown_types_on_a_request_id_get_unknown_type() {
    let mut conn = single();
    dispatch(&mut conn, 1, Role::Responder);
    for byte in [0u8, 12, 100, 255] {
        for id in [1, 2] {
            let event = feed(&mut conn, RecordType::Other(byte), id, b"x");
            assert_eq!(event, Some(Event::Reply(Out::UnknownType(byte))));
        }
    }
    assert!(conn.is_active(1));
}

#[test]
fn app_only_types_from_the_peer_are_errors() {
    let app_only = [
        RecordType::EndRequest,
        RecordType::Stdout,
        RecordType::Stderr,
        RecordType::GetValuesResult,
        RecordType::UnknownType,
    ];
    for kind in app_only {
        for active in [false, true] {
            let mut conn = single();
            if active {
                dispatch(&mut conn, 1, Role::Responder);
            }
            let error = err(&mut conn, rec(kind, 1, b""));
            assert_eq!(error, ProtocolError::AppOnlyType { kind, id: 1 });
        }
    }
    let error = ProtocolError::AppOnlyType {
        kind: RecordType::Stdout,
        id: 4,
    };
    assert_eq!(
        error.to_string(),
        "STDOUT for request 4, a record type only the application sends"
    );
}

#[test]
fn get_values_on_a_request_id_is_an_error() {
    let mut conn = single();
    let error = err(&mut conn, rec(RecordType::GetValues, 3, b""));
    assert_eq!(error, ProtocolError::ManagementOnRequestId { id: 3 });
}

#[test]
fn config_is_kept() {
    let conn = multiplexed(3);
    assert_eq!(conn.config().max_reqs, 3);
    assert!(conn.config().mpxs_conns);
    assert_eq!(conn.config().max_conns, 7);
}
