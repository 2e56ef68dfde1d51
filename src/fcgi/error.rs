//! The errors that end a connection or a request: `FcgiError` for the
//! connection as a whole (framing, I/O, or a protocol error) and
//! `ProtocolError` for a record that breaks the protocol.

use super::nv::NvError;
use super::record::RecordType;

/// Everything that can end a FastCGI connection.
#[derive(Debug, thiserror::Error)]
pub enum FcgiError {
    /// The peer sent a version other than 1; the framing cannot be trusted.
    #[error("unsupported FastCGI protocol version {0}")]
    UnsupportedVersion(u8),
    /// The stream ended in the middle of a record.
    #[error("connection closed in the middle of a record")]
    TruncatedRecord,
    /// Output that must fit in one record does not.
    #[error("{kind} content of {len} bytes does not fit in one record")]
    ContentTooLong {
        /// The type of the record.
        kind: RecordType,
        /// The content's length in bytes, over 65535.
        len: usize,
    },
    /// The peer broke the protocol (see [`ProtocolError`]).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A record that breaks the protocol; the connection must be closed.
///
/// Exception: after `ParamsTooLarge` or `ParamsTruncated` the framing is
/// intact and the request stays active with its further input ignored, so
/// a caller may instead answer it (e.g. `Status: 431`) and `end` it; see
/// [`ProtocolError::failed_request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A BEGIN_REQUEST body that is not 8 bytes long.
    #[error("BEGIN_REQUEST for request {id} has a {len}-byte body, expected 8")]
    BadBeginBody {
        /// The request id.
        id: u16,
        /// The body's length in bytes.
        len: usize,
    },
    /// A BEGIN_REQUEST on the management id 0.
    #[error("BEGIN_REQUEST on request id 0, which is reserved for management records")]
    BeginOnNullId,
    /// A BEGIN_REQUEST for an id that is still active.
    #[error("BEGIN_REQUEST for request {id}, which is already active")]
    AlreadyActive {
        /// The request id.
        id: u16,
    },
    /// The PARAMS stream grew past [`ConnConfig::max_params_bytes`].
    ///
    /// [`ConnConfig::max_params_bytes`]: super::ConnConfig::max_params_bytes
    #[error("PARAMS for request {id} exceed the limit of {max} bytes")]
    ParamsTooLarge {
        /// The request id.
        id: u16,
        /// The limit in bytes.
        max: usize,
    },
    /// The empty PARAMS record came in the middle of a name-value pair.
    #[error("PARAMS stream for request {id} ends inside a name-value pair")]
    ParamsTruncated {
        /// The request id.
        id: u16,
    },
    /// The PARAMS stream holds more pairs than
    /// [`ConnConfig::max_params_pairs`].
    ///
    /// [`ConnConfig::max_params_pairs`]: super::ConnConfig::max_params_pairs
    #[error("PARAMS for request {id} hold more than {max} name-value pairs")]
    TooManyParams {
        /// The request id.
        id: u16,
        /// The limit on pairs.
        max: usize,
    },
    /// STDIN or DATA before the empty PARAMS record.
    #[error("{kind} for request {id} before its PARAMS stream ended")]
    BeforeParamsEnd {
        /// The type of the early record.
        kind: RecordType,
        /// The request id.
        id: u16,
    },
    /// A non-empty record of a stream after that stream's empty record.
    #[error("{kind} for request {id} after its {kind} stream ended")]
    AfterStreamEnd {
        /// The stream's record type.
        kind: RecordType,
        /// The request id.
        id: u16,
    },
    /// A record type only the application sends (END_REQUEST, STDOUT, ...).
    #[error("{kind} for request {id}, a record type only the application sends")]
    AppOnlyType {
        /// The record's type.
        kind: RecordType,
        /// The request id.
        id: u16,
    },
    /// GET_VALUES on a request id other than 0.
    #[error("GET_VALUES on request {id}; management records use request id 0")]
    ManagementOnRequestId {
        /// The request id it came on.
        id: u16,
    },
    /// A GET_VALUES body that is not a valid list of name-value pairs.
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
