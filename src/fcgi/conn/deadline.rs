//! A connection's timeouts as data: which one is due next, and when. The
//! caller owns the clock and the timer; this module only computes.

use std::time::{Duration, Instant};

use super::request::Phase;
use super::ConnState;

/// Per-connection timeouts; `None` disables one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to the first record.
    pub first_byte: Option<Duration>,
    /// From BEGIN_REQUEST to the end of its PARAMS stream.
    pub params: Option<Duration>,
    /// Between two STDIN records of a request whose body is still open.
    pub stdin: Option<Duration>,
    /// With no request in flight (keep-alive).
    pub idle: Option<Duration>,
}

/// A timeout that fires, and what it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Nothing arrived after accept: the connection closes.
    FirstByte,
    /// No request after the last one ended: the connection closes.
    Idle,
    /// This request's PARAMS stream did not end in time.
    Params(u16),
    /// This request's body stalled.
    Stdin(u16),
}

impl ConnState {
    /// The first timeout due, and when: first byte or idle while no request
    /// is active, else the earliest request still waiting for the peer.
    pub fn next_deadline(&self, t: &Timeouts) -> Option<(Instant, Expired)> {
        if !self.heard_from {
            return after(self.quiet_since, t.first_byte, Expired::FirstByte);
        }
        if self.requests.is_empty() {
            return after(self.quiet_since, t.idle, Expired::Idle);
        }
        let due = |req: &super::request::Request| match req.phase {
            Phase::Params { since, .. } => after(since, t.params, Expired::Params(req.id)),
            Phase::Body { since } => after(since, t.stdin, Expired::Stdin(req.id)),
            Phase::Running | Phase::Ending(_) => None,
        };
        self.requests
            .iter()
            .filter_map(due)
            .min_by_key(|(at, _)| *at)
    }
}

fn after(since: Instant, limit: Option<Duration>, expired: Expired) -> Option<(Instant, Expired)> {
    limit.map(|d| (since + d, expired))
}
