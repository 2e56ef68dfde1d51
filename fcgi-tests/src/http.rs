//! A tiny HTTP/1.1 client for talking to nginx, blocking and async.
//!
//! Every request is sent with `Connection: close`. Responses are read with
//! `Content-Length`, chunked transfer coding, or until EOF. The blocking
//! [`request_streaming`] hands the body to a callback chunk by chunk, so a
//! test can check a 64 MiB body (and sample the daemon's memory) while it
//! flows. The async [`request_async`] reads to EOF and parses with the same
//! code. [`urlencode`] and [`Multipart`] build request bodies.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read and write timeout of the blocking client.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of the pieces handed to a streaming callback.
const PIECE: usize = 64 * 1024;

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (empty for a streamed response).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (case-insensitive), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let named = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        named.map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and the start of the body, for assertion messages.
    pub fn summary(&self) -> String {
        let headers: String = self
            .headers
            .iter()
            .map(|(n, v)| format!("  {n}: {v}\n"))
            .collect();
        let text = self.text();
        let body: String = text.chars().take(2000).collect();
        format!(
            "HTTP {}\n{headers}  ({} body bytes)\n{body}",
            self.status,
            self.body.len()
        )
    }
}

/// Sends one request and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut collected = Vec::new();
    let mut response = request_streaming(addr, method, path, headers, body, &mut |piece| {
        collected.extend_from_slice(piece)
    })?;
    response.body = collected;
    Ok(response)
}

/// Sends one request; the body is passed to `on_piece` as it arrives (and not kept).
pub fn request_streaming(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    on_piece: &mut dyn FnMut(&[u8]),
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(&head(addr, method, path, headers, body.len()))?;
    stream.write_all(body)?;
    let mut reader = BufReader::with_capacity(PIECE, stream);
    read_response(&mut reader, method, on_piece)
}

/// GET `path`; panics on I/O errors.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"").unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// POST `body` with `content_type` to `path`; panics on I/O errors.
pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Response {
    let headers = [("Content-Type", content_type)];
    request(addr, "POST", path, &headers, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// The async form of [`request`], for many requests in flight at once.
pub async fn request_async(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(&head(addr, method, path, headers, body.len()))
        .await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw, method)
}

/// Parses a complete raw response (head and body).
pub fn parse_response(raw: &[u8], method: &str) -> io::Result<Response> {
    let mut collected = Vec::new();
    let mut reader = raw;
    let mut response = read_response(&mut reader, method, &mut |p| collected.extend_from_slice(p))?;
    response.body = collected;
    Ok(response)
}

/// The request line and headers, ending with the blank line.
fn head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body_len: usize,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads a status line, headers and the body (passed to `on_piece`).
fn read_response(
    reader: &mut impl BufRead,
    method: &str,
    on_piece: &mut dyn FnMut(&[u8]),
) -> io::Result<Response> {
    let status_line = read_line(reader)?;
    let status = parse_status(&status_line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" || status / 100 == 1 || status == 204 || status == 304 {
        return Ok(response);
    }
    let chunked = response
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        read_chunked(reader, on_piece)?;
    } else if let Some(len) = response.header("Content-Length") {
        let len = len
            .parse::<u64>()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        read_exact_pieces(reader, len, on_piece)?;
    } else {
        read_to_eof(reader, on_piece)?;
    }
    Ok(response)
}

/// "HTTP/1.1 200 OK" → 200.
fn parse_status(line: &str) -> io::Result<u16> {
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or_default();
    let code = words.next().and_then(|c| c.parse().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") => Ok(code),
        _ => Err(bad(format!("bad status line {line:?}"))),
    }
}

/// Decodes a chunked body; trailers are read and dropped.
fn read_chunked(reader: &mut impl BufRead, on_piece: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    loop {
        let line = read_line(reader)?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_hex, 16)
            .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {}
            return Ok(());
        }
        read_exact_pieces(reader, size, on_piece)?;
        if !read_line(reader)?.is_empty() {
            return Err(bad("chunk not followed by CRLF".into()));
        }
    }
}

/// Passes exactly `len` bytes to `on_piece`.
fn read_exact_pieces(
    reader: &mut impl BufRead,
    mut len: u64,
    on_piece: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let mut buf = vec![0; PIECE];
    while len > 0 {
        let want = len.min(PIECE as u64) as usize;
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body short by {len} bytes"),
            ));
        }
        on_piece(&buf[..n]);
        len -= n as u64;
    }
    Ok(())
}

/// Passes everything up to EOF to `on_piece`.
fn read_to_eof(reader: &mut impl BufRead, on_piece: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0; PIECE];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(()),
            n => on_piece(&buf[..n]),
        }
    }
}

/// One line without its CRLF (or LF). EOF before a line end is an error.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut raw = Vec::new();
    reader.read_until(b'\n', &mut raw)?;
    if raw.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    raw.pop();
    if raw.last() == Some(&b'\r') {
        raw.pop();
    }
    String::from_utf8(raw).map_err(|_| bad("non-UTF-8 line".into()))
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// `application/x-www-form-urlencoded` encoding of `pairs` (spaces as `+`).
pub fn urlencode(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    encoded.join("&")
}

/// Percent-encodes everything but ASCII letters, digits and `-._*`; space becomes `+`.
pub fn escape(text: &str) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A `multipart/form-data` body under construction.
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    /// An empty form with a fixed boundary.
    pub fn new() -> Multipart {
        Multipart {
            boundary: "tfpm-test-boundary-5e1f0c2a9b".to_string(),
            body: Vec::new(),
        }
    }

    /// Adds a plain form field.
    pub fn field(mut self, name: &str, value: &str) -> Multipart {
        self.part(
            &format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
            value.as_bytes(),
        );
        self
    }

    /// Adds a file field.
    pub fn file(
        mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        data: &[u8],
    ) -> Multipart {
        let headers = format!(
            "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n"
        );
        self.part(&headers, data);
        self
    }

    fn part(&mut self, headers: &str, data: &[u8]) {
        self.body
            .extend_from_slice(format!("--{}\r\n{headers}\r\n", self.boundary).as_bytes());
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The `Content-Type` header value and the finished body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        let r = parse_response(raw, "GET").unwrap();
        assert_eq!(
            (r.status, r.header("x-a"), r.body.as_slice()),
            (200, Some("b"), &b"hello"[..])
        );
    }

    #[test]
    fn parses_chunked_body_with_trailer() {
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nT: v\r\n\r\n";
        let r = parse_response(raw, "GET").unwrap();
        assert_eq!((r.status, r.text()), (404, "hello!".to_string()));
    }

    #[test]
    fn reads_to_eof_without_length() {
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nrest", "GET").unwrap();
        assert_eq!(r.body, b"rest");
    }

    #[test]
    fn short_body_is_an_error() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "GET").is_err());
    }

    #[test]
    fn encodes_forms() {
        assert_eq!(
            urlencode(&[("a b", "c&d=é"), ("x", "")]),
            "a+b=c%26d%3D%C3%A9&x="
        );
    }

    #[test]
    fn builds_multipart() {
        let (ctype, body) = Multipart::new()
            .field("t", "v")
            .file("f", "a.txt", "text/plain", b"xy")
            .finish();
        assert!(ctype.starts_with("multipart/form-data; boundary="));
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("name=\"t\"\r\n\r\nv\r\n"));
        assert!(text.contains("filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nxy\r\n"));
        assert!(text.ends_with("--\r\n"));
    }
}
