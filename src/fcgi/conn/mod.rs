//! The per-connection protocol state machine: which request ids are active,
//! where each request is in its PARAMS / STDIN / DATA streams, management
//! replies (GET_VALUES, UNKNOWN_TYPE) and refusals (CANT_MPX_CONN,
//! OVERLOADED, UNKNOWN_ROLE). Pure: records in, events out.
//!
//! Every record yields **at most one** event, so [`ConnState::handle`]
//! returns an `Option<Event>` and never allocates for it. Callers can still
//! write `for event in conn.handle(record)? { .. }`.

mod deadline;
mod request;
#[cfg(test)]
mod tests;

use std::time::Instant;

use bytes::Bytes;

pub use super::error::ProtocolError;
use super::nv::{NvError, NvParser, Params};
use super::record::{
    BeginRequest, Out, ProtocolStatus, Record, RecordType, Role, FCGI_ROLE, MAX_CONNS,
    MAX_CONTENT_LEN, MAX_REQS, MPXS_CONNS,
};
pub use deadline::{Expired, Timeouts};
use request::{Ending, Phase, Request};

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
        /// The request id, now active.
        id: u16,
        /// The role asked for.
        role: Role,
        /// FCGI_KEEP_CONN: the connection stays open after this request.
        keep_conn: bool,
    },
    /// The PARAMS stream ended: the request can be dispatched.
    Params {
        /// The request id.
        id: u16,
        /// The name-value pairs, starting with `FCGI_ROLE`.
        params: Params,
    },
    /// A STDIN chunk (never empty) for a dispatched request.
    Stdin {
        /// The request id.
        id: u16,
        /// The chunk of the request body.
        data: Bytes,
    },
    /// The empty STDIN record: end of body.
    StdinEnd {
        /// The request id.
        id: u16,
    },
    /// DATA chunk (never empty) for the FILTER role.
    Data {
        /// The request id.
        id: u16,
        /// The chunk of the DATA stream.
        data: Bytes,
    },
    /// The empty DATA record, FILTER role only.
    DataEnd {
        /// The request id.
        id: u16,
    },
    /// ABORT_REQUEST for an active request (reported once per request).
    Abort {
        /// The request id.
        id: u16,
        /// Whether the application has the request (its PARAMS stream
        /// ended), and so sends its END_REQUEST; if not, the server must.
        dispatched: bool,
    },
    /// A record the server must send back at once (GET_VALUES_RESULT,
    /// UNKNOWN_TYPE, END_REQUEST with CANT_MPX_CONN / OVERLOADED /
    /// UNKNOWN_ROLE). For rejections the id is NOT made active.
    Reply(Out),
}

/// Protocol state of one connection: its active requests, each in its
/// phase (params, body, running, ending), and what its timeouts count from.
#[derive(Debug)]
pub struct ConnState {
    cfg: ConnConfig,
    requests: Vec<Request>,
    /// When the last request ended, or the connection opened.
    quiet_since: Instant,
    /// Whether any record arrived yet.
    heard_from: bool,
}

impl ConnState {
    /// A connection accepted at `now`.
    pub fn new(cfg: ConnConfig, now: Instant) -> Self {
        ConnState {
            cfg,
            requests: Vec::new(),
            quiet_since: now,
            heard_from: false,
        }
    }

    /// A kept connection that served requests elsewhere (another worker
    /// handed it over) and is idle since `now`: its first-byte timeout has
    /// passed.
    pub fn resumed(cfg: ConnConfig, now: Instant) -> Self {
        let mut state = Self::new(cfg, now);
        state.heard_from = true;
        state
    }

    /// The limits the connection was made with.
    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }

    /// Feeds one decoded record, received at `now`; returns at most one
    /// event, or a protocol error after which the connection must be closed.
    ///
    /// Records for inactive ids (other than BEGIN_REQUEST) are skipped, as
    /// is any input for an aborted request and DATA for non-FILTER roles.
    pub fn handle(&mut self, rec: Record, now: Instant) -> Result<Option<Event>, ProtocolError> {
        self.heard_from = true;
        let id = rec.request_id;
        if id == 0 {
            return self.management(rec);
        }
        match rec.kind {
            RecordType::BeginRequest => self.begin(id, &rec.content, now),
            RecordType::AbortRequest => Ok(self.abort(id)),
            RecordType::Params => self.params(id, &rec.content, now),
            RecordType::Stdin | RecordType::Data => self.input(rec, now),
            RecordType::GetValues => Err(ProtocolError::ManagementOnRequestId { id }),
            RecordType::Other(kind) => Ok(Some(Event::Reply(Out::UnknownType(kind)))),
            kind => Err(ProtocolError::AppOnlyType { kind, id }),
        }
    }

    /// The application sent END_REQUEST for `id` at `now`: the id becomes
    /// inactive (call BEFORE the END_REQUEST bytes are written). Returns
    /// whether the connection should close after it: the request did not
    /// ask to keep it (FCGI_KEEP_CONN) and no other is active. Unknown ids
    /// are ignored.
    pub fn end(&mut self, id: u16, now: Instant) -> bool {
        let Some(index) = self.requests.iter().position(|req| req.id == id) else {
            return false;
        };
        let req = self.requests.swap_remove(index);
        self.quiet_since = now;
        !req.keep_conn && self.requests.is_empty()
    }

    /// The server refused request `id` right after its BEGIN_REQUEST (it
    /// answered OVERLOADED itself): the id becomes inactive as if it had
    /// never begun, and the connection's idle time goes on.
    pub fn refuse(&mut self, id: u16) {
        self.requests.retain(|req| req.id != id);
    }

    /// Stops all input for an active request without an event (the server
    /// gave up on it: a timeout, an overload): its further records, ABORT
    /// included, are skipped until the application ends it.
    pub fn cancel(&mut self, id: u16) {
        if let Some(req) = self.find_mut(id) {
            req.abort();
        }
    }

    /// The application took some of request `id`'s body at `now`: while a
    /// script is slow to read, the peer is not the one late.
    pub fn body_taken(&mut self, id: u16, now: Instant) {
        if let Some(req) = self.find_mut(id) {
            req.body_taken(now);
        }
    }

    /// Whether request `id` has all its input: PARAMS and STDIN ended (DATA
    /// is optional), or the rest is being ignored.
    pub fn input_complete(&self, id: u16) -> bool {
        self.find(id).is_some_and(Request::input_complete)
    }

    /// Number of active requests.
    pub fn active(&self) -> usize {
        self.requests.len()
    }

    /// Whether `id` was begun and not yet ended (aborted ones included).
    pub fn is_active(&self, id: u16) -> bool {
        self.find(id).is_some()
    }

    /// Whether request `id` asked to keep the connection (FCGI_KEEP_CONN).
    pub fn keeps_conn(&self, id: u16) -> bool {
        self.find(id).is_some_and(|req| req.keep_conn)
    }

    /// Whether the connection has had a record and has no request active:
    /// it served what it was opened for, and may be closed when draining.
    pub fn is_idle(&self) -> bool {
        self.heard_from && self.requests.is_empty()
    }

    /// The active ids, in no particular order (e.g. to abort them all at EOF).
    pub fn active_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.requests.iter().map(|req| req.id)
    }

    fn find(&self, id: u16) -> Option<&Request> {
        self.requests.iter().find(|req| req.id == id)
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

    fn begin(
        &mut self,
        id: u16,
        body: &[u8],
        now: Instant,
    ) -> Result<Option<Event>, ProtocolError> {
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
        let keep_conn = begin.keep_conn;
        self.requests
            .push(Request::new(id, role, keep_conn, params, now));
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
        if matches!(req.phase, Phase::Ending(Ending::Aborted)) {
            return None;
        }
        req.abort();
        let dispatched = req.dispatched;
        Some(Event::Abort { id, dispatched })
    }

    fn params(
        &mut self,
        id: u16,
        content: &[u8],
        now: Instant,
    ) -> Result<Option<Event>, ProtocolError> {
        let cfg = self.cfg;
        let Some(req) = self.find_mut(id) else {
            return Ok(None);
        };
        // Taken out; a refused stream leaves the request Refused.
        let refused = Phase::Ending(Ending::Refused);
        let (mut parser, since) = match std::mem::replace(&mut req.phase, refused) {
            Phase::Params { parser, since } => (parser, since),
            other => {
                let ignored = matches!(other, Phase::Ending(_));
                req.phase = other;
                let kind = RecordType::Params;
                return match ignored {
                    true => Ok(None),
                    false => Err(ProtocolError::AfterStreamEnd { kind, id }),
                };
            }
        };
        let refuse = |err| params_error(id, &cfg, err);
        if !content.is_empty() {
            parser.feed(content).map_err(refuse)?;
            req.phase = Phase::Params { parser, since };
            return Ok(None);
        }
        let params = parser.finish().map_err(refuse)?;
        req.phase = Phase::Body { since: now };
        req.dispatched = true;
        Ok(Some(Event::Params { id, params }))
    }

    /// A STDIN or DATA record.
    fn input(&mut self, rec: Record, now: Instant) -> Result<Option<Event>, ProtocolError> {
        let (kind, id) = (rec.kind, rec.request_id);
        let Some(req) = self.find_mut(id) else {
            return Ok(None);
        };
        let is_stdin = kind == RecordType::Stdin;
        if req.ignores_input() || (!is_stdin && req.role != Role::Filter) {
            return Ok(None);
        }
        if matches!(req.phase, Phase::Params { .. }) {
            return Err(ProtocolError::BeforeParamsEnd { kind, id });
        }
        let open = match is_stdin {
            true => matches!(req.phase, Phase::Body { .. }),
            false => req.data_open,
        };
        let is_end = rec.content.is_empty();
        if !open {
            // A stray empty record after the end is harmless (php-fpm skips it).
            return match is_end {
                true => Ok(None),
                false => Err(ProtocolError::AfterStreamEnd { kind, id }),
            };
        }
        match (is_stdin, is_end) {
            (true, true) => req.phase = Phase::Running,
            (true, false) => req.phase = Phase::Body { since: now },
            (false, _) => req.data_open = !is_end,
        }
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
