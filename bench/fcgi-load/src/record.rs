//! FastCGI records as a client writes and reads them: the request bytes,
//! built once and reused, and a streaming response reader.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const END_REQUEST: u8 = 3;
const RESPONDER: u16 = 1;
const KEEP_CONN: u8 = 1;
/// STDIN records carry at most this much, as nginx sends them.
const STDIN_CHUNK: usize = 32 * 1024;

/// Appends one record, padded to a multiple of 8.
pub fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    let len = u16::try_from(content.len()).expect("record content fits 16 bits");
    let padding = (8 - content.len() % 8) % 8;
    out.extend_from_slice(&[VERSION, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[padding as u8, 0]);
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0, padding));
}

/// One name-value pair, with 1- or 4-byte lengths.
pub fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// The whole request: BEGIN_REQUEST, PARAMS, STDIN, each stream terminated.
pub fn encode_request(params: &[(String, String)], body: &[u8], keep_conn: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / STDIN_CHUNK * 16 + 1024);
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    let mut begin = RESPONDER.to_be_bytes().to_vec();
    begin.extend_from_slice(&[flags, 0, 0, 0, 0, 0]);
    push_record(&mut out, BEGIN_REQUEST, 1, &begin);
    let mut pairs = Vec::new();
    for (name, value) in params {
        push_pair(&mut pairs, name.as_bytes(), value.as_bytes());
    }
    for chunk in pairs.chunks(65535) {
        push_record(&mut out, PARAMS, 1, chunk);
    }
    push_record(&mut out, PARAMS, 1, &[]);
    for chunk in body.chunks(STDIN_CHUNK) {
        push_record(&mut out, STDIN, 1, chunk);
    }
    push_record(&mut out, STDIN, 1, &[]);
    out
}

/// What a response came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub stdout_bytes: u64,
}

/// Reads one response to its END_REQUEST, keeping only the first bytes of
/// STDOUT (for the status) and counting the rest.
pub async fn read_response<R: AsyncRead + Unpin>(
    rd: &mut R,
    scratch: &mut Vec<u8>,
) -> io::Result<Response> {
    let mut head = Vec::with_capacity(256);
    let mut stdout_bytes = 0u64;
    loop {
        let mut header = [0u8; 8];
        rd.read_exact(&mut header).await?;
        let kind = header[1];
        let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let padding = usize::from(header[6]);
        scratch.resize(len + padding, 0);
        rd.read_exact(scratch).await?;
        match kind {
            STDOUT => {
                stdout_bytes += len as u64;
                let room = 256usize.saturating_sub(head.len());
                head.extend_from_slice(&scratch[..len.min(room)]);
            }
            STDERR => {}
            END_REQUEST => {
                return Ok(Response {
                    status: status_of(&head),
                    stdout_bytes,
                })
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record type {other}"),
                ))
            }
        }
    }
}

/// The CGI status: `Status: NNN`, else 302 with `Location:`, else 200.
pub fn status_of(head: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(head);
    let mut location = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            return value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        }
        location |= name.eq_ignore_ascii_case("location");
    }
    if location {
        302
    } else {
        200
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_padded_to_eight() {
        let mut out = Vec::new();
        push_record(&mut out, STDIN, 1, b"abc");
        assert_eq!(out.len(), 16);
        assert_eq!(&out[..8], &[1, 5, 0, 1, 0, 3, 5, 0]);
    }

    #[test]
    fn long_names_use_four_byte_lengths() {
        let mut out = Vec::new();
        push_pair(&mut out, &[b'n'; 200], b"v");
        assert_eq!(&out[..5], &[0x80, 0, 0, 200, 1]);
    }

    #[test]
    fn status_from_cgi_headers() {
        assert_eq!(status_of(b"Status: 404 Not Found\r\nX: y\r\n\r\nbody"), 404);
        assert_eq!(
            status_of(b"Content-type: text/html\r\n\r\nStatus: 500"),
            200
        );
        assert_eq!(status_of(b"Location: /x\r\n\r\n"), 302);
    }

    #[tokio::test]
    async fn reads_a_response_and_counts_stdout() {
        let mut wire = Vec::new();
        push_record(&mut wire, STDERR, 1, b"warn");
        push_record(&mut wire, STDOUT, 1, b"Status: 201 Created\r\n\r\n");
        push_record(&mut wire, STDOUT, 1, &[b'x'; 1000]);
        push_record(&mut wire, STDOUT, 1, &[]);
        push_record(&mut wire, END_REQUEST, 1, &[0; 8]);
        let mut scratch = Vec::new();
        let response = read_response(&mut wire.as_slice(), &mut scratch)
            .await
            .unwrap();
        assert_eq!(
            response,
            Response {
                status: 201,
                stdout_bytes: 1023
            }
        );
    }

    #[test]
    fn a_request_ends_its_streams() {
        let bytes = encode_request(&[("A".into(), "1".into())], &[b'b'; 70000], true);
        // BEGIN(16) + PARAMS(8+8) + empty PARAMS(8) + 3 STDIN records + empty STDIN.
        assert_eq!(bytes[1], BEGIN_REQUEST);
        assert_eq!(bytes[10], KEEP_CONN);
        assert_eq!(&bytes[bytes.len() - 8..], &[1, 5, 0, 1, 0, 0, 0, 0]);
    }
}
