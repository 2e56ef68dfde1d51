//! The FastCGI wire vocabulary: protocol constants, record types, the 8-byte
//! record header, roles, protocol statuses and the fixed-size bodies of
//! BEGIN_REQUEST and END_REQUEST, and `Out`, the records the application
//! sends. Parsing and layout only; framing a byte stream into records is
//! `codec`'s job.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The only protocol version defined by the specification.
pub const VERSION_1: u8 = 1;
/// Length of a record header on the wire.
pub const HEADER_LEN: usize = 8;
/// Largest content length a single record can carry.
pub const MAX_CONTENT_LEN: usize = 65535;
/// BEGIN_REQUEST flag: the web server keeps the connection open afterwards.
pub const KEEP_CONN: u8 = 1;

/// Management variable: how many connections the application accepts.
pub const MAX_CONNS: &str = "FCGI_MAX_CONNS";
/// Management variable: how many requests the application accepts at once.
pub const MAX_REQS: &str = "FCGI_MAX_REQS";
/// Management variable: "1" if the application multiplexes connections.
pub const MPXS_CONNS: &str = "FCGI_MPXS_CONNS";
/// The param that names the request's role (php-fpm sets it).
pub const FCGI_ROLE: &str = "FCGI_ROLE";

/// Length of the BEGIN_REQUEST, END_REQUEST and UNKNOWN_TYPE bodies.
pub const FIXED_BODY_LEN: usize = 8;

/// The type byte of a record. `from_u8` maps 1..=11 to the named variants
/// and everything else (0, 12..=255) to `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// 1: starts a request and names its role.
    BeginRequest,
    /// 2: the web server gives up on a request.
    AbortRequest,
    /// 3: the application's last record for a request.
    EndRequest,
    /// 4: a stream of the request's name-value pairs (the CGI environment).
    Params,
    /// 5: a stream of the request body.
    Stdin,
    /// 6: a stream of the response.
    Stdout,
    /// 7: a stream of error output.
    Stderr,
    /// 8: a stream of extra data for the Filter role.
    Data,
    /// 9: a management query for variables like `FCGI_MAX_CONNS`.
    GetValues,
    /// 10: the answer to GET_VALUES.
    GetValuesResult,
    /// 11: the answer to a management record of a type not known.
    UnknownType,
    /// Any other type byte (0 or 12..=255), kept as it came.
    Other(u8),
}

impl RecordType {
    /// Maps a type byte to its record type.
    pub fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Other(other),
        }
    }

    /// The type byte written on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::BeginRequest => 1,
            Self::AbortRequest => 2,
            Self::EndRequest => 3,
            Self::Params => 4,
            Self::Stdin => 5,
            Self::Stdout => 6,
            Self::Stderr => 7,
            Self::Data => 8,
            Self::GetValues => 9,
            Self::GetValuesResult => 10,
            Self::UnknownType => 11,
            Self::Other(other) => other,
        }
    }

    /// The specification's name without the `FCGI_` prefix, e.g. "BEGIN_REQUEST".
    pub fn name(self) -> Option<&'static str> {
        let name = match self {
            Self::BeginRequest => "BEGIN_REQUEST",
            Self::AbortRequest => "ABORT_REQUEST",
            Self::EndRequest => "END_REQUEST",
            Self::Params => "PARAMS",
            Self::Stdin => "STDIN",
            Self::Stdout => "STDOUT",
            Self::Stderr => "STDERR",
            Self::Data => "DATA",
            Self::GetValues => "GET_VALUES",
            Self::GetValuesResult => "GET_VALUES_RESULT",
            Self::UnknownType => "UNKNOWN_TYPE",
            Self::Other(_) => return None,
        };
        Some(name)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "record type {}", self.as_u8()),
        }
    }
}

/// One decoded record. `content` excludes the padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's type.
    pub kind: RecordType,
    /// The request id the record belongs to; 0 for management records.
    pub request_id: u16,
    /// The content, at most [`MAX_CONTENT_LEN`] bytes.
    pub content: Bytes,
}

impl Record {
    /// A record of `kind` for `request_id` carrying `content`.
    pub fn new(kind: RecordType, request_id: u16, content: impl Into<Bytes>) -> Self {
        let content = content.into();
        Record {
            kind,
            request_id,
            content,
        }
    }
}

/// The 8-byte record header, field by field. `parse` does not validate the
/// version: that is the decoder's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The protocol version; only [`VERSION_1`] is defined.
    pub version: u8,
    /// The record's type.
    pub kind: RecordType,
    /// The request id the record belongs to; 0 for management records.
    pub request_id: u16,
    /// Bytes of content that follow the header.
    pub content_len: u16,
    /// Bytes of padding that follow the content, to be skipped.
    pub padding_len: u8,
}

impl Header {
    /// Reads the header fields (big-endian); the reserved byte is ignored.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Header {
            version: bytes[0],
            kind: RecordType::from_u8(bytes[1]),
            request_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            content_len: u16::from_be_bytes([bytes[4], bytes[5]]),
            padding_len: bytes[6],
        }
    }

    /// Appends the 8 header bytes to `dst`.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(self.version);
        dst.put_u8(self.kind.as_u8());
        dst.put_u16(self.request_id);
        dst.put_u16(self.content_len);
        dst.put_u8(self.padding_len);
        dst.put_u8(0);
    }

    /// Content plus padding: the bytes that follow the header.
    pub fn body_len(&self) -> usize {
        usize::from(self.content_len) + usize::from(self.padding_len)
    }
}

/// Padding that brings `content_len` up to a multiple of 8.
pub fn padding_for(content_len: usize) -> u8 {
    let rest = content_len % 8;
    if rest == 0 {
        0
    } else {
        8 - rest as u8
    }
}

/// The role asked for by BEGIN_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 1: answer a request with a response (what PHP does).
    Responder,
    /// 2: decide whether a request is allowed.
    Authorizer,
    /// 3: like Responder, with a file to filter sent as DATA.
    Filter,
}

impl Role {
    /// Maps the raw role number; `None` for anything but 1, 2, 3.
    pub fn from_u16(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::Responder),
            2 => Some(Self::Authorizer),
            3 => Some(Self::Filter),
            _ => None,
        }
    }

    /// The role number in BEGIN_REQUEST.
    pub fn as_u16(self) -> u16 {
        match self {
            Self::Responder => 1,
            Self::Authorizer => 2,
            Self::Filter => 3,
        }
    }

    /// The value php-fpm puts in the `FCGI_ROLE` variable.
    pub fn name(self) -> &'static str {
        match self {
            Self::Responder => "RESPONDER",
            Self::Authorizer => "AUTHORIZER",
            Self::Filter => "FILTER",
        }
    }
}

/// A fixed-size body had the wrong length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} body is {len} bytes long, expected {FIXED_BODY_LEN}")]
pub struct BodyLenError {
    /// The type of the record whose body it was.
    pub kind: RecordType,
    /// The body's actual length in bytes.
    pub len: usize,
}

/// Checks that `body` is exactly 8 bytes and returns them as an array.
fn fixed_body(kind: RecordType, body: &[u8]) -> Result<&[u8; FIXED_BODY_LEN], BodyLenError> {
    body.try_into().map_err(|_| BodyLenError {
        kind,
        len: body.len(),
    })
}

/// The BEGIN_REQUEST body: `roleB1 roleB0 flags reserved[5]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginRequest {
    /// The raw role number; see [`BeginRequest::role`].
    pub role: u16,
    /// The KEEP_CONN flag: the web server keeps the connection open after
    /// the request; without it the application closes it.
    pub keep_conn: bool,
}

impl BeginRequest {
    /// Parses an 8-byte body. Flag bits other than KEEP_CONN are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, BodyLenError> {
        let body = fixed_body(RecordType::BeginRequest, body)?;
        Ok(BeginRequest {
            role: u16::from_be_bytes([body[0], body[1]]),
            keep_conn: body[2] & KEEP_CONN != 0,
        })
    }

    /// The role, if it is one the specification defines.
    pub fn role(&self) -> Option<Role> {
        Role::from_u16(self.role)
    }

    /// The 8-byte body (as a web server would send it).
    pub fn to_bytes(&self) -> Bytes {
        let mut body = [0u8; FIXED_BODY_LEN];
        body[..2].copy_from_slice(&self.role.to_be_bytes());
        body[2] = if self.keep_conn { KEEP_CONN } else { 0 };
        Bytes::copy_from_slice(&body)
    }
}

/// The `protocolStatus` byte of END_REQUEST.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolStatus {
    /// The request ended normally.
    RequestComplete = 0,
    /// Refused: a second request on a connection that does not multiplex.
    CantMpxConn = 1,
    /// Refused: too many requests already, on the connection or in all.
    Overloaded = 2,
    /// Refused: the role is not one the application plays.
    UnknownRole = 3,
}

impl ProtocolStatus {
    /// Maps the status byte; `None` for anything but 0..=3.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::RequestComplete),
            1 => Some(Self::CantMpxConn),
            2 => Some(Self::Overloaded),
            3 => Some(Self::UnknownRole),
            _ => None,
        }
    }

    /// The status byte written in END_REQUEST.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The END_REQUEST body: `appStatus (u32 BE) protocolStatus reserved[3]`.
/// The status stays raw so that a client can see unknown values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRequestBody {
    /// The application's exit status for the request (tfpm sends 0).
    pub app_status: u32,
    /// The raw [`ProtocolStatus`] byte.
    pub protocol_status: u8,
}

impl EndRequestBody {
    /// Parses an 8-byte body; the reserved bytes are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, BodyLenError> {
        let body = fixed_body(RecordType::EndRequest, body)?;
        Ok(EndRequestBody {
            app_status: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            protocol_status: body[4],
        })
    }

    /// Appends the 8-byte body to `dst`.
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.app_status);
        dst.put_u8(self.protocol_status);
        dst.put_bytes(0, 3);
    }
}

/// A record the application sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Response bytes; empty `data` is the end-of-stream record.
    Stdout {
        /// The request id.
        id: u16,
        /// The bytes, of any length: the encoder splits them into records.
        data: Bytes,
    },
    /// Error bytes; empty `data` is the end-of-stream record.
    Stderr {
        /// The request id.
        id: u16,
        /// The bytes, of any length: the encoder splits them into records.
        data: Bytes,
    },
    /// The end of a request, or the refusal of one.
    EndRequest {
        /// The request id.
        id: u16,
        /// The application's exit status for the request.
        app_status: u32,
        /// Whether the request was served or why it was refused.
        protocol_status: ProtocolStatus,
    },
    /// The answer to GET_VALUES, on request id 0.
    GetValuesResult(Vec<(Bytes, Bytes)>),
    /// The answer to a record type we do not know, on request id 0.
    UnknownType(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_numbers_match_the_spec() {
        let named = [
            (1, RecordType::BeginRequest),
            (2, RecordType::AbortRequest),
            (3, RecordType::EndRequest),
            (4, RecordType::Params),
            (5, RecordType::Stdin),
            (6, RecordType::Stdout),
            (7, RecordType::Stderr),
            (8, RecordType::Data),
            (9, RecordType::GetValues),
            (10, RecordType::GetValuesResult),
            (11, RecordType::UnknownType),
        ];
        for (byte, kind) in named {
            assert_eq!(RecordType::from_u8(byte), kind);
            assert_eq!(kind.as_u8(), byte);
        }
    }

    #[test]
    fn record_type_round_trips_every_byte() {
        for byte in 0..=255u8 {
            let kind = RecordType::from_u8(byte);
            assert_eq!(kind.as_u8(), byte);
            let is_other = matches!(kind, RecordType::Other(_));
            assert_eq!(is_other, !(1..=11).contains(&byte), "byte {byte}");
        }
    }

    #[test]
    fn record_type_display() {
        assert_eq!(RecordType::BeginRequest.to_string(), "BEGIN_REQUEST");
        assert_eq!(RecordType::GetValuesResult.to_string(), "GET_VALUES_RESULT");
        assert_eq!(RecordType::Other(42).to_string(), "record type 42");
        assert_eq!(RecordType::Other(0).name(), None);
    }

    #[test]
    fn header_parse_reads_big_endian_fields() {
        let bytes = [1, 5, 0x12, 0x34, 0xAB, 0xCD, 7, 0xFF];
        let header = Header::parse(&bytes);
        assert_eq!(header.version, 1);
        assert_eq!(header.kind, RecordType::Stdin);
        assert_eq!(header.request_id, 0x1234);
        assert_eq!(header.content_len, 0xABCD);
        assert_eq!(header.padding_len, 7);
        assert_eq!(header.body_len(), 0xABCD + 7);
    }

    #[test]
    fn header_write_round_trips_and_zeroes_reserved() {
        let header = Header {
            version: VERSION_1,
            kind: RecordType::Other(200),
            request_id: 65535,
            content_len: 65535,
            padding_len: 255,
        };
        let mut dst = BytesMut::new();
        header.write(&mut dst);
        assert_eq!(&dst[..], &[1, 200, 0xFF, 0xFF, 0xFF, 0xFF, 255, 0]);
        let bytes: [u8; HEADER_LEN] = dst[..].try_into().unwrap();
        assert_eq!(Header::parse(&bytes), header);
    }

    #[test]
    fn padding_for_aligns_to_eight() {
        assert_eq!(padding_for(0), 0);
        assert_eq!(padding_for(1), 7);
        assert_eq!(padding_for(7), 1);
        assert_eq!(padding_for(8), 0);
        assert_eq!(padding_for(65535), 1);
        for len in 0..100 {
            assert_eq!((len + usize::from(padding_for(len))) % 8, 0);
            assert!(padding_for(len) < 8);
        }
    }

    #[test]
    fn role_numbers() {
        assert_eq!(Role::from_u16(0), None);
        assert_eq!(Role::from_u16(1), Some(Role::Responder));
        assert_eq!(Role::from_u16(2), Some(Role::Authorizer));
        assert_eq!(Role::from_u16(3), Some(Role::Filter));
        assert_eq!(Role::from_u16(4), None);
        assert_eq!(Role::from_u16(0x0101), None);
        for role in [Role::Responder, Role::Authorizer, Role::Filter] {
            assert_eq!(Role::from_u16(role.as_u16()), Some(role));
        }
        assert_eq!(Role::Filter.name(), "FILTER");
    }

    #[test]
    fn begin_request_parses_role_and_keep_conn() {
        let begin = BeginRequest::parse(&[0, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            begin,
            BeginRequest {
                role: 1,
                keep_conn: true
            }
        );
        assert_eq!(begin.role(), Some(Role::Responder));

        let begin = BeginRequest::parse(&[0x01, 0x02, 0, 9, 9, 9, 9, 9]).unwrap();
        assert_eq!(begin.role, 0x0102);
        assert_eq!(begin.role(), None);
        assert!(!begin.keep_conn);
    }

    #[test]
    fn begin_request_ignores_other_flag_bits() {
        let begin = BeginRequest::parse(&[0, 3, 0xFE, 0, 0, 0, 0, 0]).unwrap();
        assert!(!begin.keep_conn);
        let begin = BeginRequest::parse(&[0, 3, 0xFF, 0, 0, 0, 0, 0]).unwrap();
        assert!(begin.keep_conn);
        assert_eq!(begin.role(), Some(Role::Filter));
    }

    #[test]
    fn begin_request_rejects_wrong_lengths() {
        for len in [0, 1, 7, 9, 16] {
            let err = BeginRequest::parse(&vec![0; len]).unwrap_err();
            assert_eq!(err.len, len);
            assert_eq!(err.kind, RecordType::BeginRequest);
        }
        let err = BeginRequest::parse(&[0; 7]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BEGIN_REQUEST body is 7 bytes long, expected 8"
        );
    }

    #[test]
    fn begin_request_to_bytes_round_trips() {
        for keep_conn in [false, true] {
            let begin = BeginRequest { role: 2, keep_conn };
            let body = begin.to_bytes();
            assert_eq!(body.len(), 8);
            assert_eq!(BeginRequest::parse(&body).unwrap(), begin);
        }
    }

    #[test]
    fn protocol_status_numbers() {
        let all = [
            ProtocolStatus::RequestComplete,
            ProtocolStatus::CantMpxConn,
            ProtocolStatus::Overloaded,
            ProtocolStatus::UnknownRole,
        ];
        for (byte, status) in all.into_iter().enumerate() {
            assert_eq!(status.as_u8() as usize, byte);
            assert_eq!(ProtocolStatus::from_u8(byte as u8), Some(status));
        }
        assert_eq!(ProtocolStatus::from_u8(4), None);
    }

    #[test]
    fn end_request_body_round_trips() {
        let body = EndRequestBody {
            app_status: 0xDEADBEEF,
            protocol_status: 2,
        };
        let mut dst = BytesMut::new();
        body.write(&mut dst);
        assert_eq!(&dst[..], &[0xDE, 0xAD, 0xBE, 0xEF, 2, 0, 0, 0]);
        assert_eq!(EndRequestBody::parse(&dst).unwrap(), body);
        assert!(EndRequestBody::parse(&dst[..5]).is_err());
    }

    #[test]
    fn record_new_converts_content() {
        let rec = Record::new(RecordType::Stdin, 3, &b"abc"[..]);
        assert_eq!(rec.content, Bytes::from_static(b"abc"));
        let rec = Record::new(RecordType::Stdin, 3, Vec::from("x"));
        assert_eq!(&rec.content[..], b"x");
    }
}
