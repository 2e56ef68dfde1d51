//! The FastCGI 1.0 protocol: records, name-value pairs, the record codec and
//! the per-connection state machine. Pure protocol: no sockets, no PHP.

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
