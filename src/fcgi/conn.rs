//! The per-connection protocol state machine: which request ids are active,
//! where each request is in its PARAMS / STDIN / DATA streams, management
//! replies (GET_VALUES, UNKNOWN_TYPE) and refusals (CANT_MPX_CONN,
//! OVERLOADED, UNKNOWN_ROLE). Pure: records in, events out.
//!
//! Every record yields **at most one** event, so [`ConnState::handle`]
//! returns an `Option<Event>` and never allocates for it. Callers can still
//! write `for event in conn.handle(record)? { .. }`.

use bytes::Bytes;

use super::codec::Out;
use super::nv::{NvError, NvParser, Params};
use super::record::{
    BeginRequest, ProtocolStatus, Record, RecordType, Role, FCGI_ROLE, MAX_CONNS, MAX_CONTENT_LEN,
    MAX_REQS, MPXS_CONNS,
};

/// Limits of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnConfig {
    /// Requests in flight on this connection; more get OVERLOADED.
    /// Also advertised as FCGI_MAX_REQS.
    pub max_reqs: usize,
    /// Whether several requests may be in flight at once (FCGI_MPXS_CONNS).
    pub mpxs_conns: bool,
    /// Only advertised, as FCGI_MAX_CONNS.
    pub max_conns: usize,
    /// Cap on the PARAMS stream of one request, in bytes.
    pub max_params_bytes: usize,
    /// Cap on the number of name-value pairs in one request's PARAMS.
    pub max_params_pairs: usize,
}

impl Default for ConnConfig {
    /// One request at a time, 1 MiB and 10,000 pairs of params.
    fn default() -> Self {
        ConnConfig {
            max_reqs: 1,
            mpxs_conns: false,
            max_conns: 1024,
            max_params_bytes: 1024 * 1024,
            max_params_pairs: 10_000,
        }
    }
}

/// What the connection has to act on after a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request was begun (role accepted). Params are not complete yet.
    Begin {
        id: u16,
        role: Role,
        keep_conn: bool,
    },
    /// The PARAMS stream ended: the request can be dispatched.
    Params { id: u16, params: Params },
    /// A STDIN chunk (never empty) for a dispatched request.
    Stdin { id: u16, data: Bytes },
    /// The empty STDIN record: end of body.
    StdinEnd { id: u16 },
    /// DATA chunk (never empty) for the FILTER role.
    Data { id: u16, data: Bytes },
    /// The empty DATA record, FILTER role only.
    DataEnd { id: u16 },
    /// ABORT_REQUEST for an active request (reported once per request).
    Abort { id: u16 },
    /// A record the server must send back at once (GET_VALUES_RESULT,
    /// UNKNOWN_TYPE, END_REQUEST with CANT_MPX_CONN / OVERLOADED /
    /// UNKNOWN_ROLE). For rejections the id is NOT made active.
    Reply(Out),
}

/// A record that breaks the protocol; the connection must be closed.
///
/// Exception: after `ParamsTooLarge` or `ParamsTruncated` the framing is
/// intact and the request stays active with its further input ignored, so
/// a caller may instead answer it (e.g. `Status: 431`) and `end` it; see
/// [`ProtocolError::failed_request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("BEGIN_REQUEST for request {id} has a {len}-byte body, expected 8")]
    BadBeginBody { id: u16, len: usize },
    #[error("BEGIN_REQUEST on request id 0, which is reserved for management records")]
    BeginOnNullId,
    #[error("BEGIN_REQUEST for request {id}, which is already active")]
    AlreadyActive { id: u16 },
    #[error("PARAMS for request {id} exceed the limit of {max} bytes")]
    ParamsTooLarge { id: u16, max: usize },
    #[error("PARAMS stream for request {id} ends inside a name-value pair")]
    ParamsTruncated { id: u16 },
    #[error("PARAMS for request {id} hold more than {max} name-value pairs")]
    TooManyParams { id: u16, max: usize },
    #[error("{kind} for request {id} before its PARAMS stream ended")]
    BeforeParamsEnd { kind: RecordType, id: u16 },
    #[error("{kind} for request {id} after its {kind} stream ended")]
    AfterStreamEnd { kind: RecordType, id: u16 },
    #[error("{kind} for request {id}, a record type only the application sends")]
    AppOnlyType { kind: RecordType, id: u16 },
    #[error("GET_VALUES on request {id}; management records use request id 0")]
    ManagementOnRequestId { id: u16 },
    #[error("malformed GET_VALUES body: {0}")]
    BadGetValues(NvError),
}

impl ProtocolError {
    /// The request id, for the errors that concern only one request
    /// (`ParamsTooLarge`, `ParamsTruncated`); `None` for the others.
    pub fn failed_request(&self) -> Option<u16> {
        match *self {
            Self::ParamsTooLarge { id, .. }
            | Self::ParamsTruncated { id }
            | Self::TooManyParams { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// An active request.
#[derive(Debug)]
struct Request {
    id: u16,
    role: Role,
    /// `Some` until the empty PARAMS record arrives.
    params: Option<NvParser>,
    stdin_open: bool,
    data_open: bool,
    /// ABORT_REQUEST was reported.
    aborted: bool,
    /// After ABORT_REQUEST or a PARAMS error, input for the request is ignored.
    ignore_input: bool,
}

/// Protocol state of one connection.
#[derive(Debug)]
pub struct ConnState {
    cfg: ConnConfig,
    requests: Vec<Request>,
}

impl ConnState {
    pub fn new(cfg: ConnConfig) -> Self {
        ConnState {
            cfg,
            requests: Vec::new(),
        }
    }

    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }

    /// Feeds one decoded record; returns at most one event, or a protocol
    /// error after which the connection must be closed.
    ///
    /// Records for inactive ids (other than BEGIN_REQUEST) are skipped, as
    /// is any input for an aborted request and DATA for non-FILTER roles.
    pub fn handle(&mut self, rec: Record) -> Result<Option<Event>, ProtocolError> {
        let id = rec.request_id;
        if id == 0 {
            return self.management(rec);
        }
        match rec.kind {
            RecordType::BeginRequest => self.begin(id, &rec.content),
            RecordType::AbortRequest => Ok(self.abort(id)),
            RecordType::Params => self.params(id, &rec.content),
            RecordType::Stdin | RecordType::Data => self.input(rec),
            RecordType::GetValues => Err(ProtocolError::ManagementOnRequestId { id }),
            RecordType::Other(kind) => Ok(Some(Event::Reply(Out::UnknownType(kind)))),
            kind => Err(ProtocolError::AppOnlyType { kind, id }),
        }
    }

    /// The application sent END_REQUEST for `id`: the id becomes inactive
    /// (call BEFORE the END_REQUEST bytes are written). Unknown ids are ignored.
    pub fn end(&mut self, id: u16) {
        if let Some(index) = self.requests.iter().position(|req| req.id == id) {
            self.requests.swap_remove(index);
        }
    }

    /// Stops all input for an active request without an event (the server
    /// gave up on it: a timeout, an overload): its further records, ABORT
    /// included, are skipped until the application ends it.
    pub fn cancel(&mut self, id: u16) {
        if let Some(req) = self.find_mut(id) {
            req.params = None;
            req.aborted = true;
            req.ignore_input = true;
        }
    }

    /// Whether request `id` has all its input: PARAMS and STDIN ended (DATA
    /// is optional), or the rest is being ignored.
    pub fn input_complete(&self, id: u16) -> bool {
        self.requests
            .iter()
            .find(|req| req.id == id)
            .is_some_and(|req| req.ignore_input || (req.params.is_none() && !req.stdin_open))
    }

    /// Number of active requests.
    pub fn active(&self) -> usize {
        self.requests.len()
    }

    pub fn is_active(&self, id: u16) -> bool {
        self.requests.iter().any(|req| req.id == id)
    }

    /// The active ids, in no particular order (e.g. to abort them all at EOF).
    pub fn active_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.requests.iter().map(|req| req.id)
    }

    fn find_mut(&mut self, id: u16) -> Option<&mut Request> {
        self.requests.iter_mut().find(|req| req.id == id)
    }

    /// A record on request id 0.
    fn management(&self, rec: Record) -> Result<Option<Event>, ProtocolError> {
        match rec.kind {
            RecordType::GetValues => self.get_values(&rec.content).map(Some),
            RecordType::BeginRequest => Err(ProtocolError::BeginOnNullId),
            kind => Ok(Some(Event::Reply(Out::UnknownType(kind.as_u8())))),
        }
    }

    /// Answers the known names asked for, in the order asked; drops the rest.
    fn get_values(&self, body: &[u8]) -> Result<Event, ProtocolError> {
        let mut parser = NvParser::new(MAX_CONTENT_LEN);
        parser.feed(body).map_err(ProtocolError::BadGetValues)?;
        let asked = parser.finish().map_err(ProtocolError::BadGetValues)?;
        let answers = asked
            .iter()
            .filter_map(|(name, _)| Some((name.clone(), self.value_of(name)?)))
            .collect();
        Ok(Event::Reply(Out::GetValuesResult(answers)))
    }

    fn value_of(&self, name: &[u8]) -> Option<Bytes> {
        let value = if name == MAX_CONNS.as_bytes() {
            self.cfg.max_conns.to_string()
        } else if name == MAX_REQS.as_bytes() {
            self.cfg.max_reqs.to_string()
        } else if name == MPXS_CONNS.as_bytes() {
            u8::from(self.cfg.mpxs_conns).to_string()
        } else {
            return None;
        };
        Some(Bytes::from(value))
    }

    fn begin(&mut self, id: u16, body: &[u8]) -> Result<Option<Event>, ProtocolError> {
        let begin = BeginRequest::parse(body)
            .map_err(|err| ProtocolError::BadBeginBody { id, len: err.len })?;
        if self.is_active(id) {
            return Err(ProtocolError::AlreadyActive { id });
        }
        let Some(role) = begin.role() else {
            return Ok(Some(refusal(id, ProtocolStatus::UnknownRole)));
        };
        if let Some(status) = self.capacity_refusal() {
            return Ok(Some(refusal(id, status)));
        }
        let mut params =
            NvParser::with_limits(self.cfg.max_params_bytes, self.cfg.max_params_pairs);
        // php-fpm's environment starts with FCGI_ROLE; a sent one overrides it.
        params.push(
            Bytes::from_static(FCGI_ROLE.as_bytes()),
            Bytes::from_static(role.name().as_bytes()),
        );
        self.requests.push(Request {
            id,
            role,
            params: Some(params),
            stdin_open: true,
            data_open: true,
            aborted: false,
            ignore_input: false,
        });
        let keep_conn = begin.keep_conn;
        Ok(Some(Event::Begin {
            id,
            role,
            keep_conn,
        }))
    }

    /// Why one more request cannot be taken now, if it cannot.
    fn capacity_refusal(&self) -> Option<ProtocolStatus> {
        if !self.cfg.mpxs_conns && !self.requests.is_empty() {
            Some(ProtocolStatus::CantMpxConn)
        } else if self.requests.len() >= self.cfg.max_reqs {
            Some(ProtocolStatus::Overloaded)
        } else {
            None
        }
    }

    fn abort(&mut self, id: u16) -> Option<Event> {
        let req = self.find_mut(id)?;
        if req.aborted {
            return None;
        }
        req.aborted = true;
        req.ignore_input = true;
        Some(Event::Abort { id })
    }

    fn params(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, ProtocolError> {
        let cfg = self.cfg;
        let Some(req) = self.find_mut(id) else {
            return Ok(None);
        };
        if req.ignore_input {
            return Ok(None);
        }
        let Some(mut parser) = req.params.take() else {
            let kind = RecordType::Params;
            return Err(ProtocolError::AfterStreamEnd { kind, id });
        };
        let result = if content.is_empty() {
            parser
                .finish()
                .map(|params| Some(Event::Params { id, params }))
        } else {
            let fed = parser.feed(content);
            req.params = Some(parser);
            fed.map(|()| None)
        };
        result.map_err(|err| {
            req.ignore_input = true;
            params_error(id, &cfg, err)
        })
    }

    /// A STDIN or DATA record.
    fn input(&mut self, rec: Record) -> Result<Option<Event>, ProtocolError> {
        let (kind, id) = (rec.kind, rec.request_id);
        let Some(req) = self.find_mut(id) else {
            return Ok(None);
        };
        let is_stdin = kind == RecordType::Stdin;
        if req.ignore_input || (!is_stdin && req.role != Role::Filter) {
            return Ok(None);
        }
        if req.params.is_some() {
            return Err(ProtocolError::BeforeParamsEnd { kind, id });
        }
        let open = if is_stdin {
            &mut req.stdin_open
        } else {
            &mut req.data_open
        };
        let is_end = rec.content.is_empty();
        if !*open {
            // A stray empty record after the end is harmless (php-fpm skips it).
            return match is_end {
                true => Ok(None),
                false => Err(ProtocolError::AfterStreamEnd { kind, id }),
            };
        }
        *open = !is_end;
        Ok(Some(input_event(is_stdin, id, rec.content)))
    }
}

fn refusal(id: u16, protocol_status: ProtocolStatus) -> Event {
    Event::Reply(Out::EndRequest {
        id,
        app_status: 0,
        protocol_status,
    })
}

fn params_error(id: u16, cfg: &ConnConfig, err: NvError) -> ProtocolError {
    match err {
        NvError::TooLarge => ProtocolError::ParamsTooLarge {
            id,
            max: cfg.max_params_bytes,
        },
        NvError::Truncated => ProtocolError::ParamsTruncated { id },
        NvError::TooManyPairs => ProtocolError::TooManyParams {
            id,
            max: cfg.max_params_pairs,
        },
    }
}

fn input_event(is_stdin: bool, id: u16, data: Bytes) -> Event {
    match (is_stdin, data.is_empty()) {
        (true, true) => Event::StdinEnd { id },
        (true, false) => Event::Stdin { id, data },
        (false, true) => Event::DataEnd { id },
        (false, false) => Event::Data { id, data },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcgi::nv::encode_pair;
    use bytes::BytesMut;

    const PARAMS_CAP: usize = 4096;

    fn single() -> ConnState {
        ConnState::new(ConnConfig {
            max_reqs: 1,
            mpxs_conns: false,
            max_conns: 10,
            max_params_bytes: PARAMS_CAP,
            max_params_pairs: 100,
        })
    }

    fn multiplexed(max_reqs: usize) -> ConnState {
        ConnState::new(ConnConfig {
            max_reqs,
            mpxs_conns: true,
            max_conns: 7,
            max_params_bytes: PARAMS_CAP,
            max_params_pairs: 100,
        })
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
        conn.handle(rec(kind, id, content)).unwrap()
    }

    fn begin(conn: &mut ConnState, id: u16, role: Role) {
        let event = conn.handle(begin_rec(id, role.as_u16(), true)).unwrap();
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
        conn.handle(record).unwrap_err()
    }

    #[test]
    fn full_request_sequence() {
        let mut conn = single();
        let event = conn.handle(begin_rec(1, 1, false)).unwrap();
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
        let Some(Event::Params { id: 1, params }) = feed(&mut conn, RecordType::Params, 1, b"")
        else {
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

        conn.end(1);
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
            .handle(Record::new(RecordType::Stdin, 1, content.clone()))
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
                let event = conn.handle(begin_rec(9, role.as_u16(), keep_conn)).unwrap();
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
            let event = conn.handle(begin_rec(5, role, true)).unwrap();
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
        let event = conn.handle(begin_rec(2, 1, true)).unwrap();
        assert_eq!(event, refused(2, ProtocolStatus::CantMpxConn));
        assert!(conn.is_active(1));
        assert!(!conn.is_active(2));
        // The refused id's records are skipped; the first request continues.
        assert_eq!(feed(&mut conn, RecordType::Params, 2, b""), None);
        assert_eq!(feed(&mut conn, RecordType::Stdin, 2, b"x"), None);
        let event = feed(&mut conn, RecordType::Stdin, 1, b"");
        assert_eq!(event, Some(Event::StdinEnd { id: 1 }));
        conn.end(1);
        begin(&mut conn, 2, Role::Responder);
    }

    #[test]
    fn too_many_multiplexed_requests_get_overloaded() {
        let mut conn = multiplexed(2);
        begin(&mut conn, 1, Role::Responder);
        begin(&mut conn, 2, Role::Responder);
        let event = conn.handle(begin_rec(3, 1, true)).unwrap();
        assert_eq!(event, refused(3, ProtocolStatus::Overloaded));
        assert_eq!(conn.active(), 2);
        assert!(!conn.is_active(3));
        conn.end(1);
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
            .handle(rec(RecordType::Params, 1, &nv(&pairs)))
            .unwrap_err();
        assert_eq!(err, ProtocolError::TooManyParams { id: 1, max: 100 });
        assert_eq!(err.failed_request(), Some(1));
        // Its further input is ignored until the caller ends it.
        assert_eq!(feed(&mut conn, RecordType::Params, 1, b""), None);
        conn.end(1);
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
        let mut conn = ConnState::new(ConnConfig {
            max_params_pairs: 1,
            ..*single().config()
        });
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
        conn.end(1);
        begin(&mut conn, 1, Role::Responder);
    }

    #[test]
    fn zero_max_reqs_refuses_everything() {
        let mut conn = multiplexed(0);
        let event = conn.handle(begin_rec(1, 1, true)).unwrap();
        assert_eq!(event, refused(1, ProtocolStatus::Overloaded));
        let mut conn = ConnState::new(ConnConfig {
            max_reqs: 0,
            ..*single().config()
        });
        let event = conn.handle(begin_rec(1, 1, true)).unwrap();
        assert_eq!(event, refused(1, ProtocolStatus::Overloaded));
    }

    #[test]
    fn unknown_role_is_reported_before_capacity() {
        let mut conn = single();
        begin(&mut conn, 1, Role::Responder);
        let event = conn.handle(begin_rec(2, 9, true)).unwrap();
        assert_eq!(event, refused(2, ProtocolStatus::UnknownRole));
    }

    #[test]
    fn multiplexed_requests_interleave() {
        let mut conn = multiplexed(8);
        begin(&mut conn, 1, Role::Responder);
        begin(&mut conn, 2, Role::Responder);
        feed(&mut conn, RecordType::Params, 2, &nv(&[(b"WHO", b"two")]));
        feed(&mut conn, RecordType::Params, 1, &nv(&[(b"WHO", b"one")]));
        let Some(Event::Params { id: 2, params }) = feed(&mut conn, RecordType::Params, 2, b"")
        else {
            panic!("expected params for 2");
        };
        assert_eq!(params.get(b"WHO").unwrap(), &b"two"[..]);
        let event = feed(&mut conn, RecordType::Stdin, 2, b"");
        assert_eq!(event, Some(Event::StdinEnd { id: 2 }));
        let Some(Event::Params { id: 1, params }) = feed(&mut conn, RecordType::Params, 1, b"")
        else {
            panic!("expected params for 1");
        };
        assert_eq!(params.get(b"WHO").unwrap(), &b"one"[..]);
        conn.end(2);
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
            conn.end(1);
            assert_eq!(conn.active(), 0);
        }
    }

    #[test]
    fn end_of_an_unknown_id_is_harmless() {
        let mut conn = single();
        conn.end(42);
        begin(&mut conn, 1, Role::Responder);
        conn.end(2);
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
        conn.end(1);
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
        // An ABORT is still reported once.
        let event = feed(&mut conn, RecordType::AbortRequest, 1, b"");
        assert_eq!(event, Some(Event::Abort { id: 1 }));
        conn.end(1);
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
        assert_eq!(event, Some(Event::Abort { id: 1 }));
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
        conn.end(1);
        dispatch(&mut conn, 1, Role::Responder);
    }

    #[test]
    fn abort_before_params_end_and_with_a_body() {
        let mut conn = single();
        begin(&mut conn, 1, Role::Responder);
        let event = feed(&mut conn, RecordType::AbortRequest, 1, b"ignored body");
        assert_eq!(event, Some(Event::Abort { id: 1 }));
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

    #[test]
    fn config_is_kept() {
        let conn = multiplexed(3);
        assert_eq!(conn.config().max_reqs, 3);
        assert!(conn.config().mpxs_conns);
        assert_eq!(conn.config().max_conns, 7);
    }
}
