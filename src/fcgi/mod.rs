//! The FastCGI 1.0 protocol: records, name-value pairs, the record codec and
//! the per-connection state machine, which owns each request's life from
//! BEGIN_REQUEST to END_REQUEST and the connection's deadlines. Pure
//! protocol: no sockets, no clock (callers pass the time), no PHP.
//!
//! It imports nothing from the rest of the crate.

pub mod codec;
pub mod conn;
pub mod error;
pub mod nv;
pub mod record;

pub use codec::RecordCodec;
pub use conn::{ConnConfig, ConnState, Event, Expired, Timeouts};
pub use error::{FcgiError, ProtocolError};
pub use nv::{encode_pair, NvError, NvParser, Params};
pub use record::{BeginRequest, Out, ProtocolStatus, Record, RecordType, Role};
