//! Fuzz target: `ConnState`, the per-connection state machine, fed random
//! record sequences and "the application ended request X" calls.
//!
//! Input: 3 bytes of config (multiplexing, max_reqs 0..=4, small params
//! caps), then operations of a few bytes each (see `next_op`). Request ids
//! come from {0, 1, 2, 3, 65535}. Checks, against a model of the active
//! requests: no panic; never more active requests than allowed; Begin only
//! for an id not active before; a refusal never makes the id active; the
//! PARAMS outcome is a plain `NvParser`'s on the same bytes, plus FCGI_ROLE;
//! Params once per request, input only after it; no event for an id not
//! begun; an Abort says whether Params was reported. After every step the
//! next deadline names an active request, or, with none active, the
//! connection itself. A protocol error that is not per-request ends the
//! run (the connection would close).
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tfpm::fcgi::record::{FCGI_ROLE, KEEP_CONN, MAX_CONNS, MAX_REQS, MPXS_CONNS};
use tfpm::fcgi::{
    encode_pair, ConnConfig, ConnState, Event, Expired, NvError, NvParser, Out, Params,
    ProtocolError, Record, RecordType, Role, Timeouts,
};

const IDS: [u16; 5] = [0, 1, 2, 3, 65535];
const BYTE_CAPS: [usize; 4] = [0, 16, 200, 4096];
const PAIR_CAPS: [usize; 4] = [0, 1, 3, 10_000];

/// One step of the connection's life.
enum Op {
    Record(Record),
    End(u16),
}

/// What the model knows of an active request.
struct Model {
    role: Role,
    /// Fed the same PARAMS bytes as the state machine, until the stream ends.
    params: Option<NvParser>,
    params_done: bool,
    stdin_done: bool,
    data_done: bool,
    /// Its PARAMS failed: no more input events expected.
    failed: bool,
    /// Aborted: no more events at all expected.
    aborted: bool,
}

/// What a plain parser made of one PARAMS record: `Some` params at the end.
type ParamsOutcome = Result<Option<Params>, NvError>;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let cfg = ConnConfig {
        mpxs_conns: data[0] & 1 == 1,
        max_reqs: usize::from(data[0] >> 1) % 5,
        max_conns: usize::from(data[1]),
        max_params_bytes: BYTE_CAPS[usize::from(data[1] % 4)],
        max_params_pairs: PAIR_CAPS[usize::from(data[2] % 4)],
    };
    let limit = if cfg.mpxs_conns {
        cfg.max_reqs
    } else {
        cfg.max_reqs.min(1)
    };
    let mut now = Instant::now();
    let mut conn = ConnState::new(cfg, now);
    let mut model: HashMap<u16, Model> = HashMap::new();
    let mut input = Input(&data[3..]);

    while let Some(op) = next_op(&mut input) {
        now += Duration::from_millis(1);
        let rec = match op {
            Op::End(id) => {
                conn.end(id, now);
                model.remove(&id);
                continue;
            }
            Op::Record(rec) => rec,
        };
        let (kind, id) = (rec.kind, rec.request_id);
        let was_active = conn.is_active(id);
        let expected = match model.get_mut(&id) {
            Some(req) if kind == RecordType::Params && !req.failed && !req.aborted => {
                reference_params(req, &rec.content)
            }
            _ => None,
        };
        let result = conn.handle(rec, now);
        if let Some(expected) = expected {
            check_params(&result, expected, model[&id].role);
        }
        match result {
            Ok(Some(event)) => check_event(&event, kind, id, was_active, &cfg, &mut model),
            Ok(None) => {}
            Err(err) => match err.failed_request() {
                Some(failed) => {
                    assert_eq!(failed, id, "{err} names another request");
                    assert_eq!(kind, RecordType::Params, "{err} from a {kind} record");
                    model.get_mut(&id).expect("failed request is active").failed = true;
                }
                None => return,
            },
        }
        assert!(
            conn.active() <= limit,
            "{} active, limit {limit}",
            conn.active()
        );
        let mut ids: Vec<u16> = conn.active_ids().collect();
        let mut expected: Vec<u16> = model.keys().copied().collect();
        ids.sort_unstable();
        expected.sort_unstable();
        assert_eq!(ids, expected, "active ids differ from the model");
        check_deadline(&conn, &ids);
    }
});

/// Feeds a PARAMS record to the model's own parser; `None` if the stream
/// already ended (the state machine must then fail the connection).
fn reference_params(req: &mut Model, content: &[u8]) -> Option<ParamsOutcome> {
    let mut parser = req.params.take()?;
    if content.is_empty() {
        return Some(parser.finish().map(Some));
    }
    let fed = parser.feed(content);
    req.params = Some(parser);
    Some(fed.map(|()| None))
}

/// The state machine must agree with the plain parser: same error kind, or
/// the same params with FCGI_ROLE first (a sent FCGI_ROLE overrides it).
fn check_params(got: &Result<Option<Event>, ProtocolError>, expected: ParamsOutcome, role: Role) {
    match (got, &expected) {
        (Ok(None), Ok(None)) => {}
        (Ok(Some(Event::Params { params, .. })), Ok(Some(sent))) => {
            let mut pairs = vec![(
                Bytes::from_static(FCGI_ROLE.as_bytes()),
                Bytes::from_static(role.name().as_bytes()),
            )];
            pairs.extend(sent.iter().map(|(n, v)| (n.clone(), v.clone())));
            assert_eq!(*params, Params::from_pairs(pairs), "params differ");
        }
        (Err(ProtocolError::ParamsTooLarge { .. }), Err(NvError::TooLarge))
        | (Err(ProtocolError::ParamsTruncated { .. }), Err(NvError::Truncated))
        | (Err(ProtocolError::TooManyParams { .. }), Err(NvError::TooManyPairs)) => {}
        _ => panic!("PARAMS: state machine gave {got:?}, a plain NvParser {expected:?}"),
    }
}

/// Checks one event against the record that caused it and the model.
fn check_event(
    event: &Event,
    kind: RecordType,
    id: u16,
    was_active: bool,
    cfg: &ConnConfig,
    model: &mut HashMap<u16, Model>,
) {
    if let Event::Begin { id: got, role, .. } = *event {
        assert_eq!((kind, got), (RecordType::BeginRequest, id));
        assert!(!was_active && id != 0, "Begin for {id}, active or null");
        let params = NvParser::with_limits(cfg.max_params_bytes, cfg.max_params_pairs);
        let req = Model {
            role,
            params: Some(params),
            params_done: false,
            stdin_done: false,
            data_done: false,
            failed: false,
            aborted: false,
        };
        model.insert(id, req);
        return;
    }
    if let Event::Reply(out) = event {
        check_reply(out, kind, id, cfg, model);
        return;
    }
    let req = model.get_mut(&id).expect("event for a request not begun");
    assert!(!req.aborted, "event after Abort: {event:?}");
    let is_abort = matches!(event, Event::Abort { .. });
    assert!(
        is_abort || !req.failed,
        "input event after a PARAMS error: {event:?}"
    );
    match event {
        Event::Params { id: got, .. } => {
            assert_eq!((kind, *got), (RecordType::Params, id));
            assert!(!req.params_done, "second Params for {id}");
            req.params_done = true;
        }
        Event::Stdin { id: got, data } | Event::Data { id: got, data } => {
            assert_eq!(*got, id);
            assert!(!data.is_empty(), "empty input chunk");
            check_input(req, kind, false);
        }
        Event::StdinEnd { id: got } | Event::DataEnd { id: got } => {
            assert_eq!(*got, id);
            check_input(req, kind, true);
        }
        Event::Abort { id: got, dispatched } => {
            assert_eq!((kind, *got), (RecordType::AbortRequest, id));
            assert_eq!(*dispatched, req.params_done, "Abort's dispatched flag");
            req.aborted = true;
        }
        Event::Begin { .. } | Event::Reply(_) => unreachable!(),
    }
}

/// The next deadline concerns an active request, or the connection when
/// none is active; it is never before the connection opened.
fn check_deadline(conn: &ConnState, active: &[u16]) {
    let second = Some(Duration::from_secs(1));
    let t = Timeouts {
        first_byte: second,
        params: second,
        stdin: second,
        idle: second,
    };
    match conn.next_deadline(&t).map(|(_, expired)| expired) {
        Some(Expired::Params(id) | Expired::Stdin(id)) => {
            assert!(active.contains(&id), "deadline for inactive {id}")
        }
        Some(Expired::FirstByte | Expired::Idle) => {
            assert!(active.is_empty(), "connection deadline with {active:?} active")
        }
        None => assert!(!active.is_empty(), "no deadline on an empty connection"),
    }
}

/// A STDIN or DATA event: only after Params, and not after its stream ended.
fn check_input(req: &mut Model, kind: RecordType, end: bool) {
    assert!(req.params_done, "{kind} before Params");
    let done = match kind {
        RecordType::Stdin => &mut req.stdin_done,
        RecordType::Data => {
            assert_eq!(req.role, Role::Filter, "DATA for a non-FILTER role");
            &mut req.data_done
        }
        other => panic!("input event from a {other} record"),
    };
    assert!(!*done, "{kind} after its end");
    *done = end;
}

/// A record to send back at once: refusals leave the id inactive.
fn check_reply(
    out: &Out,
    kind: RecordType,
    id: u16,
    cfg: &ConnConfig,
    model: &HashMap<u16, Model>,
) {
    match out {
        Out::EndRequest { id: got, .. } => {
            assert_eq!((kind, *got), (RecordType::BeginRequest, id));
            assert!(!model.contains_key(&id), "refusal of an active id");
        }
        Out::GetValuesResult(pairs) => {
            assert_eq!((kind, id), (RecordType::GetValues, 0));
            for (name, value) in pairs {
                let expected = match &name[..] {
                    n if n == MAX_CONNS.as_bytes() => cfg.max_conns.to_string(),
                    n if n == MAX_REQS.as_bytes() => cfg.max_reqs.to_string(),
                    n if n == MPXS_CONNS.as_bytes() => u8::from(cfg.mpxs_conns).to_string(),
                    n => panic!("answered unknown name {n:?}"),
                };
                assert_eq!(&value[..], expected.as_bytes());
            }
        }
        Out::UnknownType(byte) => {
            assert_eq!(*byte, kind.as_u8());
            let known = !matches!(kind, RecordType::Other(_));
            assert!(id == 0 || !known, "UNKNOWN_TYPE for {kind} on request {id}");
        }
        Out::Stdout { .. } | Out::Stderr { .. } => panic!("output from the state machine"),
    }
}

/// The unread rest of the fuzz input; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn id(&mut self) -> u16 {
        IDS[usize::from(self.byte()) % IDS.len()]
    }

    /// A length byte, then up to that many bytes.
    fn bytes(&mut self) -> Bytes {
        let len = usize::from(self.byte()).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Bytes::copy_from_slice(taken)
    }
}

/// Decodes the next operation: an opcode byte, then its arguments.
fn next_op(input: &mut Input) -> Option<Op> {
    if input.0.is_empty() {
        return None;
    }
    let op = input.byte();
    let id = input.id();
    let rec = |kind, content| Some(Op::Record(Record::new(kind, id, content)));
    match op % 9 {
        0 => {
            // A well-formed BEGIN_REQUEST body with a role 0..=4.
            let role = u16::from(input.byte() % 5);
            let flags = input.byte() & (KEEP_CONN | 0x80);
            let mut body = [0u8; 8];
            body[..2].copy_from_slice(&role.to_be_bytes());
            body[2] = flags;
            rec(RecordType::BeginRequest, Bytes::copy_from_slice(&body))
        }
        1 => rec(RecordType::Params, input.bytes()),
        2 => rec(RecordType::Params, Bytes::new()),
        3 => {
            // One well-formed pair as a PARAMS record.
            let (name, value) = (input.bytes(), input.bytes());
            let mut content = BytesMut::new();
            encode_pair(&name, &value, &mut content);
            rec(RecordType::Params, content.freeze())
        }
        4 => rec(RecordType::Stdin, input.bytes()),
        5 => rec(RecordType::Data, input.bytes()),
        6 => rec(RecordType::AbortRequest, Bytes::new()),
        7 => Some(Op::End(id)),
        _ => {
            // Any record type byte, known or not, with any content.
            let kind = RecordType::from_u8(input.byte());
            rec(kind, input.bytes())
        }
    }
}
