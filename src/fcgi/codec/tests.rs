//! Unit tests of the record codec: framing, padding, output segments.

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
