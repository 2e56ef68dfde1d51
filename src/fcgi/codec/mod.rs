//! Framing: `RecordCodec` turns a byte stream into `Record`s (header,
//! content, padding) and turns the application's output (`Out`) into
//! records, splitting and padding streams.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::FcgiError;
use super::nv::{encode_pair, pair_len};
use super::record::{
    padding_for, EndRequestBody, Header, Out, ProtocolStatus, Record, RecordType, FIXED_BODY_LEN,
    HEADER_LEN, MAX_CONTENT_LEN, VERSION_1,
};

/// Content bytes per STDOUT/STDERR record: the largest multiple of 8 that
/// fits in a record, so full records need no padding (php-fpm does the same).
pub const MAX_STREAM_CHUNK: usize = 0xFFF8;

/// Decoder of `Record`s and encoder of `Out` (and of raw `Record`s, for
/// test clients). Holds only the header of a record whose body has not
/// fully arrived, so it never buffers more than one record.
#[derive(Debug, Default)]
pub struct RecordCodec {
    header: Option<Header>,
}

impl RecordCodec {
    /// A codec at the start of a stream.
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
mod tests;
