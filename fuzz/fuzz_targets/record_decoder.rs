//! Fuzz target: `RecordCodec` as a decoder, fed a byte stream in arbitrary
//! chunks the way `FramedRead` feeds it.
//!
//! Input: byte 0 says how many chunk sizes follow (0..=7; 0 means one piece),
//! each next byte is a chunk size minus one (cycled); the rest is the stream.
//! Checks: no panic; the buffer never holds more than one record plus the
//! last chunk; the chunked decode gives the same records and error as the
//! one-piece decode; every record survives encoding and decoding again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tfpm::fcgi::record::{HEADER_LEN, MAX_CONTENT_LEN};
use tfpm::fcgi::{Record, RecordCodec};
use tokio_util::codec::{Decoder, Encoder};

/// The most one record takes on the wire: header, content, 255 of padding.
const MAX_RECORD: usize = HEADER_LEN + MAX_CONTENT_LEN + 255;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) + 1).collect();

    let (records, error) = decode(stream, &sizes);
    let (whole, whole_error) = decode(stream, &[]);
    assert_eq!(records, whole, "chunking changed the records");
    assert_eq!(error, whole_error, "chunking changed the error");

    for record in records {
        let mut wire = BytesMut::new();
        RecordCodec::new()
            .encode(record.clone(), &mut wire)
            .expect("a decoded record always fits in one record");
        let again = RecordCodec::new().decode_eof(&mut wire).expect("re-decode");
        assert_eq!(again, Some(record), "record changed by encode + decode");
        assert!(wire.is_empty(), "encoder wrote more than one record");
    }
});

/// Decodes `stream` in chunks of `sizes` (cycled; empty: one piece), until
/// the end of stream or the first error, as `FramedRead` does.
fn decode(stream: &[u8], sizes: &[usize]) -> (Vec<Record>, Option<String>) {
    let mut codec = RecordCodec::new();
    let mut buf = BytesMut::new();
    let mut records = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(err) => return (records, Some(err.to_string())),
            }
        }
        assert!(buf.len() < MAX_RECORD, "{} bytes left buffered", buf.len());
        if rest.is_empty() {
            break;
        }
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(record)) => records.push(record),
            Ok(None) => return (records, None),
            Err(err) => return (records, Some(err.to_string())),
        }
    }
}
