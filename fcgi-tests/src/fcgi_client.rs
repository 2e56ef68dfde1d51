//! A minimal FastCGI client, written from the FastCGI 1.0 specification.
//!
//! It speaks like nginx: role RESPONDER, request id 1, one request at a time
//! per connection, `FCGI_KEEP_CONN` on request. PARAMS and STDIN are cut into
//! records padded to 8 bytes and closed with an empty record. The request is
//! written from a second thread while the response is read, so a responder
//! that answers before it has read all of STDIN cannot deadlock the test.
//! The record and name-value encoders are public for raw protocol tests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::cgi::{CgiRequest, CgiResponse};

/// Record types (spec §8).
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;
/// Role and flag of BEGIN_REQUEST.
pub const RESPONDER: u16 = 1;
pub const KEEP_CONN: u8 = 1;
/// Largest content of one record.
pub const MAX_CONTENT: usize = 65535;
/// How much of a stream goes into one record (8-aligned, like php-fpm's 0xfff8).
const CHUNK: usize = 0xfff8;
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcgiResponse {
    /// All FCGI_STDOUT content, concatenated.
    pub stdout: Vec<u8>,
    /// All FCGI_STDERR content, concatenated.
    pub stderr: Vec<u8>,
    /// appStatus of FCGI_END_REQUEST.
    pub app_status: u32,
    /// protocolStatus of FCGI_END_REQUEST (0 = REQUEST_COMPLETE).
    pub protocol_status: u8,
}

impl FcgiResponse {
    /// stdout split into CGI headers and body.
    pub fn cgi(&self) -> CgiResponse {
        CgiResponse::parse(&self.stdout)
    }

    /// stderr as text (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One record as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record type.
    pub kind: u8,
    /// Request id.
    pub id: u16,
    /// Content without padding.
    pub content: Vec<u8>,
}

/// A TCP or Unix stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `host:port`, `[v6]:port`, `unix:/path` or `/path`.
    pub fn connect(addr: &str) -> io::Result<Stream> {
        let path = addr.strip_prefix("unix:").unwrap_or(addr);
        if path.starts_with('/') {
            return Ok(Stream::Unix(UnixStream::connect(path)?));
        }
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        Ok(Stream::Tcp(tcp))
    }

    fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }

    /// Sets the read and write timeouts.
    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
            Stream::Unix(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// A FastCGI connection.
pub struct FcgiClient {
    stream: Stream,
    /// The id used for requests (nginx always uses 1).
    pub request_id: u16,
}

impl FcgiClient {
    /// Connects to `host:port`, `[v6]:port`, `unix:/path` or `/path`.
    pub fn connect(addr: &str) -> io::Result<FcgiClient> {
        let stream = Stream::connect(addr)?;
        stream.set_timeouts(Some(IO_TIMEOUT))?;
        Ok(FcgiClient {
            stream,
            request_id: 1,
        })
    }

    /// Connects over TCP.
    pub fn connect_tcp(addr: SocketAddr) -> io::Result<FcgiClient> {
        FcgiClient::connect(&addr.to_string())
    }

    /// Connects over a Unix socket.
    pub fn connect_unix(path: &Path) -> io::Result<FcgiClient> {
        FcgiClient::connect(&path.display().to_string())
    }

    /// The underlying stream, for raw writes and reads.
    pub fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Sends one request and reads until its END_REQUEST.
    pub fn request(
        &mut self,
        params: &[(&str, &str)],
        stdin: &[u8],
        keep_conn: bool,
    ) -> io::Result<FcgiResponse> {
        let bytes = encode_request(self.request_id, params, stdin, keep_conn);
        let mut writer = self.stream.try_clone()?;
        std::thread::scope(|scope| {
            let sent = scope.spawn(move || writer.write_all(&bytes));
            let response = self.read_response();
            // A write error is not reported: a responder may answer and close before reading all of STDIN.
            let _ = sent.join().expect("writer thread panicked");
            response
        })
    }

    /// Sends a [`CgiRequest`] (its params and body).
    pub fn send(&mut self, request: &CgiRequest, keep_conn: bool) -> io::Result<FcgiResponse> {
        let params = request.params();
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.request(&borrowed, &request.body, keep_conn)
    }

    /// Reads records for this request until END_REQUEST.
    pub fn read_response(&mut self) -> io::Result<FcgiResponse> {
        let mut response = FcgiResponse {
            stdout: Vec::new(),
            stderr: Vec::new(),
            app_status: 0,
            protocol_status: 0,
        };
        loop {
            let record = read_record(&mut self.stream)?;
            if record.id != self.request_id {
                return Err(invalid(format!(
                    "record for id {} while waiting for {}",
                    record.id, self.request_id
                )));
            }
            match record.kind {
                STDOUT => response.stdout.extend_from_slice(&record.content),
                STDERR => response.stderr.extend_from_slice(&record.content),
                END_REQUEST => {
                    let body = record.content;
                    if body.len() != 8 {
                        return Err(invalid(format!("END_REQUEST body of {} bytes", body.len())));
                    }
                    response.app_status = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    response.protocol_status = body[4];
                    return Ok(response);
                }
                other => return Err(invalid(format!("unexpected record type {other}"))),
            }
        }
    }

    /// Waits up to `timeout` for the peer to close: Ok(true) on EOF, Ok(false) if still open and silent.
    /// Any data received is an error (nothing may follow END_REQUEST).
    pub fn peer_closed(&mut self, timeout: Duration) -> io::Result<bool> {
        self.stream.set_timeouts(Some(timeout))?;
        let mut byte = [0u8; 1];
        let result = match self.stream.read(&mut byte) {
            Ok(0) => Ok(true),
            Ok(_) => Err(invalid(format!(
                "unexpected byte {:#04x} after END_REQUEST",
                byte[0]
            ))),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(true),
            Err(e) => Err(e),
        };
        self.stream.set_timeouts(Some(IO_TIMEOUT))?;
        result
    }

    /// Asks for management values (FCGI_GET_VALUES) and returns the
    /// name-value pairs of the FCGI_GET_VALUES_RESULT, in its order.
    pub fn get_values(&mut self, names: &[&str]) -> io::Result<Vec<(String, String)>> {
        let body: Vec<u8> = names
            .iter()
            .flat_map(|n| encode_pair(n.as_bytes(), b""))
            .collect();
        self.stream
            .write_all(&encode_record(GET_VALUES, 0, &body))?;
        let record = read_record(&mut self.stream)?;
        if (record.kind, record.id) != (GET_VALUES_RESULT, 0) {
            return Err(invalid(format!("not a GET_VALUES_RESULT: {record:?}")));
        }
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        let pairs = decode_pairs(&record.content)?;
        Ok(pairs.into_iter().map(|(n, v)| (text(n), text(v))).collect())
    }

    /// Writes `bytes` as they are (records built by hand); panics on error.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads records until the END_REQUEST of request `id`: that request's
    /// STDOUT, and every record seen (the END_REQUEST last); panics on error.
    pub fn read_until_end(&mut self, id: u16) -> (Vec<u8>, Vec<Record>) {
        let (mut stdout, mut seen) = (Vec::new(), Vec::new());
        loop {
            let record = read_record(&mut self.stream).expect("a record");
            if record.kind == STDOUT && record.id == id {
                stdout.extend_from_slice(&record.content);
            }
            let done = record.kind == END_REQUEST && record.id == id;
            seen.push(record);
            if done {
                return (stdout, seen);
            }
        }
    }
}

/// The bytes of a whole GET of `script` (under tests/docroot) with `query`,
/// as request `id`, with nginx's params and no body.
pub fn get_request_bytes(id: u16, script: &str, query: &str, keep_conn: bool) -> Vec<u8> {
    let params = get_params(script, query);
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    encode_request(id, &borrowed, b"", keep_conn)
}

/// The params of a GET of `script` (under tests/docroot), as nginx sends them.
pub fn get_params(script: &str, query: &str) -> Vec<(String, String)> {
    CgiRequest::get(&crate::docroot(), script)
        .query(query)
        .params()
}

/// The bytes of a whole request: BEGIN_REQUEST, PARAMS stream, STDIN stream.
pub fn encode_request(id: u16, params: &[(&str, &str)], stdin: &[u8], keep_conn: bool) -> Vec<u8> {
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    let mut out = encode_record(BEGIN_REQUEST, id, &begin_body(RESPONDER, flags));
    let mut pairs = Vec::new();
    for (name, value) in params {
        pairs.extend_from_slice(&encode_pair(name.as_bytes(), value.as_bytes()));
    }
    out.extend_from_slice(&encode_stream(PARAMS, id, &pairs));
    out.extend_from_slice(&encode_stream(STDIN, id, stdin));
    out
}

/// The 8-byte body of BEGIN_REQUEST.
pub fn begin_body(role: u16, flags: u8) -> [u8; 8] {
    let [hi, lo] = role.to_be_bytes();
    [hi, lo, flags, 0, 0, 0, 0, 0]
}

/// `data` as records of at most 0xfff8 bytes, followed by the empty record that ends the stream.
pub fn encode_stream(kind: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / CHUNK * 16 + 16);
    for chunk in data.chunks(CHUNK) {
        out.extend_from_slice(&encode_record(kind, id, chunk));
    }
    out.extend_from_slice(&encode_record(kind, id, &[]));
    out
}

/// One record: 8-byte header, content, padding to a multiple of 8.
pub fn encode_record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    assert!(
        content.len() <= MAX_CONTENT,
        "record content of {} bytes",
        content.len()
    );
    let padding = (8 - content.len() % 8) % 8;
    let [id_hi, id_lo] = id.to_be_bytes();
    let [len_hi, len_lo] = (content.len() as u16).to_be_bytes();
    let mut out = Vec::with_capacity(8 + content.len() + padding);
    out.extend_from_slice(&[1, kind, id_hi, id_lo, len_hi, len_lo, padding as u8, 0]);
    out.extend_from_slice(content);
    out.resize(out.len() + padding, 0);
    out
}

/// One name-value pair: lengths (1 byte below 128, else 4 bytes with the top bit set), name, value.
pub fn encode_pair(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + name.len() + value.len());
    encode_length(&mut out, name.len());
    encode_length(&mut out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

fn encode_length(out: &mut Vec<u8>, len: usize) {
    if len < 128 {
        out.push(len as u8);
    } else {
        let len = u32::try_from(len).expect("pair length fits 31 bits") | 0x8000_0000;
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Decodes a name-value stream (as in GET_VALUES_RESULT).
pub fn decode_pairs(mut data: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let name_len = decode_length(&mut data)?;
        let value_len = decode_length(&mut data)?;
        if data.len() < name_len.saturating_add(value_len) {
            return Err(invalid("truncated name-value pair".into()));
        }
        let (name, rest) = data.split_at(name_len);
        let (value, rest) = rest.split_at(value_len);
        pairs.push((name.to_vec(), value.to_vec()));
        data = rest;
    }
    Ok(pairs)
}

fn decode_length(data: &mut &[u8]) -> io::Result<usize> {
    let first = *data
        .first()
        .ok_or_else(|| invalid("missing length".into()))?;
    if first < 128 {
        *data = &data[1..];
        return Ok(first as usize);
    }
    if data.len() < 4 {
        return Err(invalid("truncated 4-byte length".into()));
    }
    let len = u32::from_be_bytes([first & 0x7f, data[1], data[2], data[3]]);
    *data = &data[4..];
    Ok(len as usize)
}

/// Reads one record (header, content, padding).
pub fn read_record(stream: &mut impl Read) -> io::Result<Record> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header)?;
    if header[0] != 1 {
        return Err(invalid(format!("record version {}", header[0])));
    }
    let id = u16::from_be_bytes([header[2], header[3]]);
    let len = u16::from_be_bytes([header[4], header[5]]) as usize;
    let mut content = vec![0; len + header[6] as usize];
    stream.read_exact(&mut content)?;
    content.truncate(len);
    Ok(Record {
        kind: header[1],
        id,
        content,
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_records_to_eight() {
        let r = encode_record(STDIN, 1, b"abc");
        assert_eq!(r, [1, 5, 0, 1, 0, 3, 5, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0]);
        assert_eq!(encode_record(STDIN, 258, &[]), [1, 5, 1, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn pair_lengths_switch_at_128() {
        assert_eq!(encode_pair(&[b'n'; 127], b"")[..2], [127, 0]);
        let long = encode_pair(&[b'n'; 128], b"v");
        assert_eq!(long[..5], [0x80, 0, 0, 128, 1]);
        let decoded = decode_pairs(&long).unwrap();
        assert_eq!(decoded, vec![(vec![b'n'; 128], b"v".to_vec())]);
    }

    #[test]
    fn streams_end_with_an_empty_record() {
        let data = vec![7u8; CHUNK + 1];
        let mut bytes = &encode_stream(STDIN, 1, &data)[..];
        let lens: Vec<usize> = std::iter::from_fn(|| read_record(&mut bytes).ok())
            .map(|r| r.content.len())
            .collect();
        assert_eq!(lens, [CHUNK, 1, 0]);
    }
}
