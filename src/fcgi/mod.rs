//! The FastCGI 1.0 protocol: records, name-value pairs, the record codec and
//! the per-connection state machine. Pure protocol: no sockets, no PHP.

pub mod codec;
pub mod conn;
pub mod nv;
pub mod record;

pub use codec::{FcgiError, Out, RecordCodec};
pub use conn::{ConnConfig, ConnState, Event, ProtocolError};
pub use nv::{encode_pair, NvError, NvParser, Params};
pub use record::{BeginRequest, ProtocolStatus, Record, RecordType, Role};
