//! One request's life on a connection, as one enum: its PARAMS stream,
//! then its body, then running, then ending; the request is removed (ended)
//! when the application sends its END_REQUEST.

use std::time::Instant;

use crate::fcgi::nv::NvParser;
use crate::fcgi::record::Role;

/// Where a request is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// Its PARAMS stream is arriving, since BEGIN_REQUEST at `since`.
    Params { parser: NvParser, since: Instant },
    /// The application has it and its body is still arriving: `since` is
    /// when the peer last sent STDIN or the application last took some.
    Body { since: Instant },
    /// The application has all its input and runs it.
    Running,
    /// Its further input is ignored until the application ends it.
    Ending(Ending),
}

/// Why a request's input is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Its PARAMS stream was refused; an ABORT_REQUEST is still reported.
    Refused,
    /// ABORT_REQUEST was reported, or the server gave up on it.
    Aborted,
}

/// An active request.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) id: u16,
    pub(super) role: Role,
    /// FCGI_KEEP_CONN: whether the connection stays open after it.
    pub(super) keep_conn: bool,
    pub(super) phase: Phase,
    /// Whether the application got it (its PARAMS stream ended): then the
    /// application sends its END_REQUEST, else the server does.
    pub(super) dispatched: bool,
    /// Whether its DATA stream (FILTER role only) is still open.
    pub(super) data_open: bool,
}

impl Request {
    pub(super) fn new(
        id: u16,
        role: Role,
        keep_conn: bool,
        parser: NvParser,
        now: Instant,
    ) -> Self {
        Request {
            id,
            role,
            keep_conn,
            phase: Phase::Params { parser, since: now },
            dispatched: false,
            data_open: true,
        }
    }

    /// Whether its input is being ignored.
    pub(super) fn ignores_input(&self) -> bool {
        matches!(self.phase, Phase::Ending(_))
    }

    /// Whether it has all the input it will get.
    pub(super) fn input_complete(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Ending(_))
    }

    /// Its input stops: ABORT_REQUEST, or the server gave up on it.
    pub(super) fn abort(&mut self) {
        self.phase = Phase::Ending(Ending::Aborted);
    }

    /// The application took body bytes at `now`: the peer is not late.
    pub(super) fn body_taken(&mut self, now: Instant) {
        if let Phase::Body { since } = &mut self.phase {
            *since = now;
        }
    }
}
