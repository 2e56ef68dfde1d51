//! Framing: `RecordCodec` turns a byte stream into `Record`s (header,
//! content, padding) and turns the application's output (`Out`) into
//! records, splitting and padding streams. Also owns `FcgiError`, the error
//! type of the codec and of a connection as a whole.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::conn::ProtocolError;
use super::nv::{encode_pair, pair_len};
use super::record::{
    padding_for, EndRequestBody, Header, ProtocolStatus, Record, RecordType, FIXED_BODY_LEN,
    HEADER_LEN, MAX_CONTENT_LEN, VERSION_1,
};

/// Content bytes per STDOUT/STDERR record: the largest multiple of 8 that
/// fits in a record, so full records need no padding (php-fpm does the same).
pub const MAX_STREAM_CHUNK: usize = 0xFFF8;

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
    ContentTooLong { kind: RecordType, len: usize },
    /// The peer broke the protocol (see `conn`).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A record the application sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Response bytes; empty `data` is the end-of-stream record.
    Stdout { id: u16, data: Bytes },
    /// Error bytes; empty `data` is the end-of-stream record.
    Stderr { id: u16, data: Bytes },
    EndRequest {
        id: u16,
        app_status: u32,
        protocol_status: ProtocolStatus,
    },
    /// The answer to GET_VALUES, on request id 0.
    GetValuesResult(Vec<(Bytes, Bytes)>),
    /// The answer to a record type we do not know, on request id 0.
    UnknownType(u8),
}

/// Decoder of `Record`s and encoder of `Out` (and of raw `Record`s, for
/// test clients). Holds only the header of a record whose body has not
/// fully arrived, so it never buffers more than one record.
#[derive(Debug, Default)]
pub struct RecordCodec {
    header: Option<Header>,
}

impl RecordCodec {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives back, undecoded, what this codec has taken from a stream
    /// without returning it as a record (the header of a record whose body
    /// is still coming), followed by `buffer`, the rest of the input read:
    /// the bytes a connection passed to another process carries. `buffer`
    /// is left empty and the codec starts afresh.
    pub fn take_unread(&mut self, buffer: &mut BytesMut) -> BytesMut {
        let mut unread = BytesMut::with_capacity(HEADER_LEN + buffer.len());
        if let Some(header) = self.header.take() {
            header.write(&mut unread);
        }
        unread.extend_from_slice(buffer);
        buffer.clear();
        unread
    }

    /// The header of the current record: remembered, or read from `src`.
    fn take_header(&mut self, src: &mut BytesMut) -> Result<Option<Header>, FcgiError> {
        if let Some(header) = self.header.take() {
            return Ok(Some(header));
        }
        let Some(bytes) = src.first_chunk::<HEADER_LEN>() else {
            src.reserve(HEADER_LEN);
            return Ok(None);
        };
        let header = Header::parse(bytes);
        if header.version != VERSION_1 {
            return Err(FcgiError::UnsupportedVersion(header.version));
        }
        src.advance(HEADER_LEN);
        Ok(Some(header))
    }
}

impl Decoder for RecordCodec {
    type Item = Record;
    type Error = FcgiError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Record>, FcgiError> {
        let Some(header) = self.take_header(src)? else {
            return Ok(None);
        };
        if src.len() < header.body_len() {
            // At most 65535 + 255 bytes: the protocol bounds this reservation.
            src.reserve(header.body_len() - src.len());
            self.header = Some(header);
            return Ok(None);
        }
        let content = src.split_to(usize::from(header.content_len)).freeze();
        src.advance(usize::from(header.padding_len));
        Ok(Some(Record {
            kind: header.kind,
            request_id: header.request_id,
            content,
        }))
    }

    /// Like `decode`, but a partial record left at end of stream is an error.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Record>, FcgiError> {
        match self.decode(src)? {
            Some(record) => Ok(Some(record)),
            None if src.is_empty() && self.header.is_none() => Ok(None),
            None => Err(FcgiError::TruncatedRecord),
        }
    }
}

impl Encoder<Out> for RecordCodec {
    type Error = FcgiError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), FcgiError> {
        match item {
            Out::Stdout { id, data } => put_stream(RecordType::Stdout, id, &data, dst),
            Out::Stderr { id, data } => put_stream(RecordType::Stderr, id, &data, dst),
            Out::EndRequest {
                id,
                app_status,
                protocol_status,
            } => put_end_request(id, app_status, protocol_status, dst),
            Out::GetValuesResult(pairs) => put_get_values_result(&pairs, dst)?,
            Out::UnknownType(kind) => put_unknown_type(kind, dst),
        }
        Ok(())
    }
}

/// Zero bytes for padding.
static PADDING: [u8; 8] = [0; 8];

/// Encodes `item` as a list of pieces to write with one vectored write:
/// headers and small records go into `scratch` (and out as frozen slices),
/// while STDOUT/STDERR data is sliced, never copied. The pieces, joined,
/// are exactly what the [`Encoder`] writes.
pub fn encode_segments(
    item: Out,
    scratch: &mut BytesMut,
    out: &mut Vec<Bytes>,
) -> Result<(), FcgiError> {
    let (kind, id, data) = match item {
        Out::Stdout { id, data } if !data.is_empty() => (RecordType::Stdout, id, data),
        Out::Stderr { id, data } if !data.is_empty() => (RecordType::Stderr, id, data),
        other => {
            RecordCodec::new().encode(other, scratch)?;
            out.push(scratch.split().freeze());
            return Ok(());
        }
    };
    let mut start = 0;
    while start < data.len() {
        let end = (start + MAX_STREAM_CHUNK).min(data.len());
        put_header(kind, id, end - start, scratch);
        out.push(scratch.split().freeze());
        out.push(data.slice(start..end));
        let padding = usize::from(padding_for(end - start));
        if padding > 0 {
            out.push(Bytes::from_static(&PADDING[..padding]));
        }
        start = end;
    }
    Ok(())
}

/// Writes one record as given, padded to 8 (what a web server sends).
impl Encoder<Record> for RecordCodec {
    type Error = FcgiError;

    fn encode(&mut self, item: Record, dst: &mut BytesMut) -> Result<(), FcgiError> {
        if item.content.len() > MAX_CONTENT_LEN {
            return Err(FcgiError::ContentTooLong {
                kind: item.kind,
                len: item.content.len(),
            });
        }
        dst.reserve(record_len(item.content.len()));
        put_record(item.kind, item.request_id, &item.content, dst);
        Ok(())
    }
}

/// Wire size of one record with `content_len` bytes, padded to 8.
fn record_len(content_len: usize) -> usize {
    HEADER_LEN + content_len + usize::from(padding_for(content_len))
}

/// Wire size of a STDOUT/STDERR write of `data_len` bytes.
pub fn stream_len(data_len: usize) -> usize {
    let full = data_len / MAX_STREAM_CHUNK;
    let rest = data_len % MAX_STREAM_CHUNK;
    let last = if rest > 0 || data_len == 0 {
        record_len(rest)
    } else {
        0
    };
    full * record_len(MAX_STREAM_CHUNK) + last
}

/// Header for `content_len` (at most 65535) bytes, padded to 8.
fn put_header(kind: RecordType, id: u16, content_len: usize, dst: &mut BytesMut) {
    let header = Header {
        version: VERSION_1,
        kind,
        request_id: id,
        content_len: u16::try_from(content_len).expect("record content over 65535 bytes"),
        padding_len: padding_for(content_len),
    };
    header.write(dst);
}

/// Header, content and zero padding. `content` must fit in one record.
fn put_record(kind: RecordType, id: u16, content: &[u8], dst: &mut BytesMut) {
    put_header(kind, id, content.len(), dst);
    dst.put_slice(content);
    dst.put_bytes(0, usize::from(padding_for(content.len())));
}

/// Stream data as records of at most `MAX_STREAM_CHUNK` bytes; empty data
/// becomes the single empty end-of-stream record.
fn put_stream(kind: RecordType, id: u16, data: &[u8], dst: &mut BytesMut) {
    dst.reserve(stream_len(data.len()));
    if data.is_empty() {
        put_record(kind, id, data, dst);
    }
    for chunk in data.chunks(MAX_STREAM_CHUNK) {
        put_record(kind, id, chunk, dst);
    }
}

fn put_end_request(id: u16, app_status: u32, status: ProtocolStatus, dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + FIXED_BODY_LEN);
    put_header(RecordType::EndRequest, id, FIXED_BODY_LEN, dst);
    let body = EndRequestBody {
        app_status,
        protocol_status: status.as_u8(),
    };
    body.write(dst);
}

fn put_get_values_result(pairs: &[(Bytes, Bytes)], dst: &mut BytesMut) -> Result<(), FcgiError> {
    let len = pairs.iter().fold(0usize, |sum, (name, value)| {
        sum.saturating_add(pair_len(name, value))
    });
    if len > MAX_CONTENT_LEN {
        let kind = RecordType::GetValuesResult;
        return Err(FcgiError::ContentTooLong { kind, len });
    }
    dst.reserve(record_len(len));
    put_header(RecordType::GetValuesResult, 0, len, dst);
    for (name, value) in pairs {
        encode_pair(name, value, dst);
    }
    dst.put_bytes(0, usize::from(padding_for(len)));
    Ok(())
}

fn put_unknown_type(kind: u8, dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + FIXED_BODY_LEN);
    put_header(RecordType::UnknownType, 0, FIXED_BODY_LEN, dst);
    dst.put_u8(kind);
    dst.put_bytes(0, FIXED_BODY_LEN - 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_input_decodes_again_elsewhere_to_the_same_records() {
        let mut wire = BytesMut::new();
        for (id, len) in [(1u16, 300usize), (2, 5), (1, 0)] {
            put_stream(RecordType::Stdin, id, &vec![id as u8; len], &mut wire);
        }
        let whole = wire.clone();
        // Cut anywhere: what one codec leaves, another reads on from.
        for cut in 0..=whole.len() {
            let mut first = RecordCodec::new();
            let mut buffer = BytesMut::from(&whole[..cut]);
            let mut records = Vec::new();
            while let Some(r) = first.decode(&mut buffer).unwrap() {
                records.push(r);
            }
            let mut rest = first.take_unread(&mut buffer);
            assert!(buffer.is_empty());
            rest.extend_from_slice(&whole[cut..]);
            let mut second = RecordCodec::new();
            while let Some(r) = second.decode_eof(&mut rest).unwrap() {
                records.push(r);
            }
            let ids: Vec<(u16, usize)> = records
                .iter()
                .map(|r| (r.request_id, r.content.len()))
                .collect();
            assert_eq!(ids, [(1, 300), (2, 5), (1, 0)], "cut at {cut}");
        }
    }

    #[test]
    fn segments_join_to_the_encoder_output() {
        let items = || {
            vec![
                Out::Stdout {
                    id: 1,
                    data: Bytes::from(vec![7u8; 200_003]),
                },
                Out::Stdout {
                    id: 1,
                    data: Bytes::new(),
                },
                Out::Stderr {
                    id: 1,
                    data: Bytes::from_static(b"warn"),
                },
                Out::EndRequest {
                    id: 1,
                    app_status: 0,
                    protocol_status: ProtocolStatus::RequestComplete,
                },
                Out::UnknownType(42),
            ]
        };
        let mut expected = BytesMut::new();
        for item in items() {
            RecordCodec::new().encode(item, &mut expected).unwrap();
        }
        let (mut scratch, mut pieces) = (BytesMut::new(), Vec::new());
        for item in items() {
            encode_segments(item, &mut scratch, &mut pieces).unwrap();
        }
        let joined: Vec<u8> = pieces.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, expected.to_vec());
    }
    use crate::fcgi::nv::NvParser;

    /// A record written by hand, with any version and padding.
    fn raw(version: u8, kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
        let len = u16::try_from(content.len()).unwrap();
        let mut out = vec![version, kind];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[padding, 0xEE]);
        out.extend_from_slice(content);
        out.resize(out.len() + usize::from(padding), 0xA5);
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<Record> {
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(bytes);
        let mut records = Vec::new();
        while let Some(record) = codec.decode(&mut src).unwrap() {
            records.push(record);
        }
        assert!(src.is_empty(), "{} bytes left over", src.len());
        assert!(codec.decode_eof(&mut src).unwrap().is_none());
        records
    }

    fn encode_out(item: Out) -> BytesMut {
        let mut dst = BytesMut::new();
        RecordCodec::new().encode(item, &mut dst).unwrap();
        dst
    }

    fn sample_stream() -> (Vec<u8>, Vec<Record>) {
        let parts: [(u8, u16, &[u8], u8); 6] = [
            (1, 1, &[0, 1, 1, 0, 0, 0, 0, 0], 0),
            (4, 1, b"\x04\x03HOSTabc", 7),
            (4, 1, b"", 0),
            (5, 1, b"body bytes", 3),
            (5, 1, b"", 255),
            (9, 0, b"\x0e\x00FCGI_MAX_CONNS", 2),
        ];
        let mut bytes = Vec::new();
        let mut records = Vec::new();
        for (kind, id, content, padding) in parts {
            bytes.extend(raw(1, kind, id, content, padding));
            let kind = RecordType::from_u8(kind);
            records.push(Record::new(kind, id, Bytes::copy_from_slice(content)));
        }
        (bytes, records)
    }

    #[test]
    fn decodes_every_record_type() {
        for kind in 0..=255u8 {
            let bytes = raw(1, kind, 0x0102, b"content", 1);
            let records = decode_all(&bytes);
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].kind, RecordType::from_u8(kind));
            assert_eq!(records[0].request_id, 0x0102);
            assert_eq!(&records[0].content[..], b"content");
        }
    }

    #[test]
    fn decodes_a_multi_record_stream() {
        let (bytes, expected) = sample_stream();
        assert_eq!(decode_all(&bytes), expected);
    }

    #[test]
    fn decodes_byte_by_byte() {
        let (bytes, expected) = sample_stream();
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::new();
        let mut records = Vec::new();
        for byte in bytes {
            src.put_u8(byte);
            while let Some(record) = codec.decode(&mut src).unwrap() {
                records.push(record);
            }
        }
        assert_eq!(records, expected);
        assert!(src.is_empty());
    }

    #[test]
    fn decodes_at_every_two_way_split() {
        let (bytes, expected) = sample_stream();
        for split in 0..=bytes.len() {
            let mut codec = RecordCodec::new();
            let mut src = BytesMut::from(&bytes[..split]);
            let mut records = Vec::new();
            while let Some(record) = codec.decode(&mut src).unwrap() {
                records.push(record);
            }
            src.extend_from_slice(&bytes[split..]);
            while let Some(record) = codec.decode(&mut src).unwrap() {
                records.push(record);
            }
            assert_eq!(records, expected, "split at {split}");
        }
    }

    #[test]
    fn decodes_many_records_in_one_buffer() {
        let mut bytes = Vec::new();
        for i in 0..1000u16 {
            let content = i.to_be_bytes();
            bytes.extend(raw(1, 5, i, &content, (i % 9) as u8));
        }
        let records = decode_all(&bytes);
        assert_eq!(records.len(), 1000);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(usize::from(record.request_id), i);
            assert_eq!(&record.content[..], &(i as u16).to_be_bytes());
        }
    }

    #[test]
    fn leaves_the_next_record_in_the_buffer() {
        let mut bytes = raw(1, 5, 1, b"first", 3);
        let second = raw(1, 5, 1, b"second", 2);
        bytes.extend_from_slice(&second);
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(&bytes[..]);
        let first = codec.decode(&mut src).unwrap().unwrap();
        assert_eq!(&first.content[..], b"first");
        assert_eq!(&src[..], &second[..]);
    }

    #[test]
    fn content_is_a_zero_copy_slice() {
        let bytes = raw(1, 5, 1, b"zero copy please", 0);
        let mut src = BytesMut::from(&bytes[..]);
        let start = src.as_ptr();
        let record = RecordCodec::new().decode(&mut src).unwrap().unwrap();
        assert_eq!(record.content.as_ptr(), start.wrapping_add(HEADER_LEN));
    }

    #[test]
    fn handles_every_padding_length() {
        for padding in 0..=255u8 {
            let mut bytes = raw(1, 6, 7, b"abc", padding);
            bytes.extend(raw(1, 6, 7, b"", padding));
            let records = decode_all(&bytes);
            assert_eq!(records.len(), 2, "padding {padding}");
            assert_eq!(&records[0].content[..], b"abc");
            assert!(records[1].content.is_empty());
        }
    }

    #[test]
    fn handles_padding_split_from_its_record() {
        let bytes = raw(1, 5, 1, b"xy", 200);
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(&bytes[..HEADER_LEN + 2 + 100]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        src.extend_from_slice(&bytes[HEADER_LEN + 2 + 100..]);
        let record = codec.decode(&mut src).unwrap().unwrap();
        assert_eq!(&record.content[..], b"xy");
        assert!(src.is_empty());
    }

    #[test]
    fn decodes_maximum_length_content() {
        let content: Vec<u8> = (0..MAX_CONTENT_LEN).map(|i| (i % 251) as u8).collect();
        let mut bytes = raw(1, 5, 65535, &content, 255);
        bytes.extend(raw(1, 5, 65535, b"", 0));
        let records = decode_all(&bytes);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].content.len(), MAX_CONTENT_LEN);
        assert_eq!(&records[0].content[..], &content[..]);
        assert_eq!(records[0].request_id, 65535);
    }

    #[test]
    fn reserves_room_for_the_rest_of_the_record() {
        let bytes = raw(1, 5, 1, &[1; 1000], 0);
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(&bytes[..HEADER_LEN]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(src.capacity() >= 1000);
        assert!(src.capacity() < 1000 + 4096);
    }

    #[test]
    fn rejects_other_versions() {
        for version in [0u8, 2, 3, 255] {
            let bytes = raw(version, 1, 1, &[0; 8], 0);
            let mut src = BytesMut::from(&bytes[..]);
            let err = RecordCodec::new().decode(&mut src).unwrap_err();
            assert!(matches!(err, FcgiError::UnsupportedVersion(v) if v == version));
        }
        let err = FcgiError::UnsupportedVersion(2);
        assert_eq!(err.to_string(), "unsupported FastCGI protocol version 2");
    }

    #[test]
    fn rejects_a_bad_version_after_good_records() {
        let mut bytes = raw(1, 5, 1, b"ok", 0);
        bytes.extend(raw(9, 5, 1, b"bad", 0));
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(&bytes[..]);
        assert!(codec.decode(&mut src).unwrap().is_some());
        let err = codec.decode(&mut src).unwrap_err();
        assert!(matches!(err, FcgiError::UnsupportedVersion(9)));
    }

    #[test]
    fn version_is_checked_as_soon_as_the_header_is_complete() {
        let bytes = raw(2, 5, 1, &[0; 100], 0);
        let mut src = BytesMut::from(&bytes[..HEADER_LEN]);
        let err = RecordCodec::new().decode(&mut src).unwrap_err();
        assert!(matches!(err, FcgiError::UnsupportedVersion(2)));
    }

    #[test]
    fn eof_inside_a_record_is_an_error() {
        let bytes = raw(1, 5, 1, b"truncated", 3);
        for cut in 1..bytes.len() {
            let mut codec = RecordCodec::new();
            let mut src = BytesMut::from(&bytes[..cut]);
            assert!(codec.decode(&mut src).unwrap().is_none());
            let err = codec.decode_eof(&mut src).unwrap_err();
            assert!(matches!(err, FcgiError::TruncatedRecord), "cut at {cut}");
        }
    }

    #[test]
    fn eof_after_whole_records_is_clean() {
        let bytes = raw(1, 5, 1, b"whole", 3);
        let mut codec = RecordCodec::new();
        let mut src = BytesMut::from(&bytes[..]);
        assert!(codec.decode_eof(&mut src).unwrap().is_some());
        assert!(codec.decode_eof(&mut src).unwrap().is_none());
        let mut empty = BytesMut::new();
        assert!(RecordCodec::new().decode_eof(&mut empty).unwrap().is_none());
    }

    #[test]
    fn io_errors_convert() {
        let err: FcgiError = std::io::Error::other("boom").into();
        assert!(matches!(err, FcgiError::Io(_)));
    }

    #[test]
    fn large_stdout_splits_into_aligned_records() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let id = 3;
        let dst = encode_out(Out::Stdout {
            id,
            data: Bytes::from(data.clone()),
        });
        assert_eq!(dst.len(), stream_len(data.len()));
        let records = decode_all(&dst);
        assert_eq!(records.len(), 4);
        let mut offset = 0;
        let mut joined = Vec::new();
        for record in &records {
            assert_eq!(record.kind, RecordType::Stdout);
            assert_eq!(record.request_id, id);
            assert!(!record.content.is_empty());
            assert!(record.content.len() <= MAX_STREAM_CHUNK);
            joined.extend_from_slice(&record.content);
            // Each record on the wire is a multiple of 8 bytes long.
            let header: &[u8; HEADER_LEN] = dst[offset..offset + 8].try_into().unwrap();
            let header = Header::parse(header);
            assert_eq!(header.body_len() % 8, 0);
            offset += HEADER_LEN + header.body_len();
        }
        assert_eq!(offset, dst.len());
        assert_eq!(joined, data);
    }

    #[test]
    fn stream_chunk_boundaries() {
        for (len, records) in [(1, 1), (8, 1), (65528, 1), (65529, 2), (131056, 2)] {
            let dst = encode_out(Out::Stderr {
                id: 1,
                data: Bytes::from(vec![b'e'; len]),
            });
            assert_eq!(dst.len(), stream_len(len));
            assert_eq!(dst.len() % 8, 0);
            let decoded = decode_all(&dst);
            assert_eq!(decoded.len(), records, "len {len}");
            assert!(decoded.iter().all(|r| r.kind == RecordType::Stderr));
            let total: usize = decoded.iter().map(|r| r.content.len()).sum();
            assert_eq!(total, len);
        }
    }

    #[test]
    fn short_stdout_is_padded() {
        let dst = encode_out(Out::Stdout {
            id: 1,
            data: Bytes::from_static(b"Status: 200\r\n"),
        });
        assert_eq!(&dst[..8], &[1, 6, 0, 1, 0, 13, 3, 0]);
        assert_eq!(&dst[8..21], b"Status: 200\r\n");
        assert_eq!(&dst[21..], &[0, 0, 0]);
    }

    #[test]
    fn empty_stdout_is_one_empty_record() {
        let dst = encode_out(Out::Stdout {
            id: 0x0203,
            data: Bytes::new(),
        });
        assert_eq!(&dst[..], &[1, 6, 2, 3, 0, 0, 0, 0]);
        let dst = encode_out(Out::Stderr {
            id: 1,
            data: Bytes::new(),
        });
        assert_eq!(&dst[..], &[1, 7, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn end_request_layout() {
        let dst = encode_out(Out::EndRequest {
            id: 0x0102,
            app_status: 0x0A0B0C0D,
            protocol_status: ProtocolStatus::Overloaded,
        });
        assert_eq!(
            &dst[..],
            &[1, 3, 1, 2, 0, 8, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D, 2, 0, 0, 0]
        );
        let records = decode_all(&dst);
        let body = EndRequestBody::parse(&records[0].content).unwrap();
        assert_eq!(body.app_status, 0x0A0B0C0D);
        assert_eq!(body.protocol_status, 2);
    }

    #[test]
    fn end_request_statuses() {
        let statuses = [
            ProtocolStatus::RequestComplete,
            ProtocolStatus::CantMpxConn,
            ProtocolStatus::Overloaded,
            ProtocolStatus::UnknownRole,
        ];
        for status in statuses {
            let dst = encode_out(Out::EndRequest {
                id: 1,
                app_status: 0,
                protocol_status: status,
            });
            assert_eq!(dst[12], status as u8);
        }
    }

    #[test]
    fn unknown_type_layout() {
        let dst = encode_out(Out::UnknownType(200));
        assert_eq!(
            &dst[..],
            &[1, 11, 0, 0, 0, 8, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn get_values_result_encoding() {
        let pairs = vec![
            (
                Bytes::from_static(b"FCGI_MAX_CONNS"),
                Bytes::from_static(b"10"),
            ),
            (
                Bytes::from_static(b"FCGI_MPXS_CONNS"),
                Bytes::from_static(b"0"),
            ),
        ];
        let dst = encode_out(Out::GetValuesResult(pairs.clone()));
        let body_len = 2 + 14 + 2 + 2 + 15 + 1;
        assert_eq!(&dst[..8], &[1, 10, 0, 0, 0, body_len, 4, 0]);
        assert_eq!(&dst[8..12], b"\x0e\x02FC");
        assert_eq!(dst.len(), 8 + usize::from(body_len) + 4);
        let records = decode_all(&dst);
        let mut parser = NvParser::new(MAX_CONTENT_LEN);
        parser.feed(&records[0].content).unwrap();
        let params = parser.finish().unwrap();
        assert_eq!(params.get(b"FCGI_MAX_CONNS").unwrap(), &b"10"[..]);
        assert_eq!(params.get(b"FCGI_MPXS_CONNS").unwrap(), &b"0"[..]);
    }

    #[test]
    fn empty_get_values_result() {
        let dst = encode_out(Out::GetValuesResult(Vec::new()));
        assert_eq!(&dst[..], &[1, 10, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn oversized_get_values_result_is_refused() {
        let big = Bytes::from(vec![b'v'; MAX_CONTENT_LEN]);
        let pairs = vec![(Bytes::from_static(b"N"), big)];
        let mut dst = BytesMut::new();
        let err = RecordCodec::new()
            .encode(Out::GetValuesResult(pairs), &mut dst)
            .unwrap_err();
        assert!(matches!(err, FcgiError::ContentTooLong { .. }));
        assert!(dst.is_empty());
    }

    #[test]
    fn raw_records_round_trip() {
        let mut codec = RecordCodec::new();
        let mut dst = BytesMut::new();
        let (_, records) = sample_stream();
        for record in records.clone() {
            codec.encode(record, &mut dst).unwrap();
        }
        assert_eq!(dst.len() % 8, 0);
        assert_eq!(decode_all(&dst), records);
    }

    #[test]
    fn raw_record_of_maximum_length() {
        let record = Record::new(RecordType::Params, 1, vec![b'p'; MAX_CONTENT_LEN]);
        let mut dst = BytesMut::new();
        RecordCodec::new().encode(record.clone(), &mut dst).unwrap();
        assert_eq!(&dst[4..7], &[0xFF, 0xFF, 1]);
        assert_eq!(decode_all(&dst), vec![record]);

        let too_long = Record::new(RecordType::Params, 1, vec![0; MAX_CONTENT_LEN + 1]);
        let err = RecordCodec::new().encode(too_long, &mut dst).unwrap_err();
        assert!(matches!(err, FcgiError::ContentTooLong { len: 65536, .. }));
    }
}
