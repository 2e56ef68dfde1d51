//! Sending one request of the corpus through nginx and writing down what came
//! back, in a form that can be compared between php-fpm and tfpm.
//!
//! The client writes the request itself (so that a case controls framing:
//! chunked bodies, HTTP/1.0, duplicate headers) with `Connection: close`,
//! reads to EOF, and keeps the status line with its reason phrase. Each
//! request carries its own `Host` name: nginx writes it into every error-log
//! record, which is how the records are told apart between cases; the
//! transcripts mask it back to `localhost`. A transcript is plain text: per request the request line,
//! the status line, the headers (`Date` dropped, sorted by name unless the
//! case compares their order) and the body, then the nginx error-log records
//! of the case. [`Masks`] replace what differs by nature (the nginx port,
//! temp paths, session ids); [`diff`] shows where two transcripts part.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fcgi_tests::http;
use fcgi_tests::md5_hex;

use crate::corpus::Req;

const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause after the first chunk of a chunked body, so that nginx starts
/// the request before the body is complete (and cannot know its length).
const CHUNK_PAUSE: Duration = Duration::from_millis(100);
/// Bodies longer than this are shown as length, md5 and their start.
const BODY_SHOWN: usize = 4096;
/// Cookies whose values are session ids, masked in transcripts.
const SESSION_COOKIES: [&str; 2] = ["PHPSESSID=", "DIFFSESS="];
/// The one `Expires` value that does not depend on the clock (session.cache_limiter=nocache).
const FIXED_EXPIRES: &str = "Thu, 19 Nov 1981 08:52:00 GMT";

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The whole status line, e.g. `HTTP/1.1 404 Not Found`.
    pub status_line: String,
    /// Header fields in the order received.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Every value of the header `name` (case-insensitive).
    pub fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_string();
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request of a case and what came of it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request line (`GET /x.php HTTP/1.1`).
    pub request_line: String,
    /// The Host header sent, unique to this request.
    pub host: String,
    pub reply: Result<Reply, String>,
}

/// Sends `req` (with `target` resolved, `host` as its Host header and
/// `cookie` as a Cookie header if not empty).
pub fn send(addr: SocketAddr, req: &Req, target: &str, host: &str, cookie: &str) -> Exchange {
    let version = if req.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let request_line = format!("{} {target} {version}", req.method);
    let (first, rest) = request_bytes(req, &request_line, host, cookie);
    let reply = exchange(addr, &first, &rest).and_then(|bytes| parse(&bytes, req.method));
    Exchange {
        request_line,
        host: host.to_string(),
        reply,
    }
}

/// The bytes of the request: head and body, in two parts when the body is
/// chunked (the head with the first chunk, then the rest).
fn request_bytes(req: &Req, request_line: &str, host: &str, cookie: &str) -> (Vec<u8>, Vec<u8>) {
    let mut head = format!("{request_line}\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in &req.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !cookie.is_empty() {
        let _ = write!(head, "Cookie: {cookie}\r\n");
    }
    let mut chunks = Vec::new();
    if req.chunked {
        head.push_str("Transfer-Encoding: chunked\r\n");
        chunks = chunk(&req.body);
    } else if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
        let _ = write!(head, "Content-Length: {}\r\n", req.body.len());
    }
    head.push_str("\r\n");
    let mut first = head.into_bytes();
    if !req.chunked {
        first.extend_from_slice(&req.body);
        return (first, Vec::new());
    }
    first.extend_from_slice(&chunks.remove(0));
    (first, chunks.concat())
}

/// `body` in the chunked transfer coding, in pieces of up to 1000 bytes,
/// the last piece being the terminating zero-length chunk.
fn chunk(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for piece in body.chunks(1000) {
        let mut encoded = format!("{:x}\r\n", piece.len()).into_bytes();
        encoded.extend_from_slice(piece);
        encoded.extend_from_slice(b"\r\n");
        out.push(encoded);
    }
    out.push(b"0\r\n\r\n".to_vec());
    out
}

/// Writes `first`, then (after a pause, if there is any) `rest`, and reads
/// until nginx closes the connection.
fn exchange(addr: SocketAddr, first: &[u8], rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
    stream.write_all(first).map_err(|e| format!("write: {e}"))?;
    if !rest.is_empty() {
        std::thread::sleep(CHUNK_PAUSE);
        // nginx may have answered and closed already: that answer is what counts.
        let _ = stream.write_all(rest);
    }
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read: {e} (after {} bytes)", bytes.len()))?;
    Ok(bytes)
}

/// Parses a complete response, keeping the status line.
fn parse(bytes: &[u8], method: &str) -> Result<Reply, String> {
    let line_end = bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| format!("no status line in {} bytes", bytes.len()))?;
    let status_line = String::from_utf8_lossy(&bytes[..line_end]).into_owned();
    let parsed = http::parse_response(bytes, method).map_err(|e| format!("bad response: {e}"))?;
    Ok(Reply {
        status_line,
        headers: parsed.headers,
        body: parsed.body,
    })
}

/// Text replacements for what differs between the two stacks by nature.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    pairs: Vec<(String, String)>,
}

impl Masks {
    /// Replace `from` with `to` everywhere (longest first is the caller's business).
    pub fn add(&mut self, from: impl Into<String>, to: &str) {
        let from = from.into();
        if !from.is_empty() {
            self.pairs.push((from, to.to_string()));
        }
    }

    /// `text` with every mask applied, session ids included.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.pairs {
            out = out.replace(from.as_str(), to);
        }
        mask_session_ids(&out)
    }
}

/// Replaces the value after each `PHPSESSID=`-like name with `<sid>`.
fn mask_session_ids(text: &str) -> String {
    let mut out = text.to_string();
    for name in SESSION_COOKIES {
        let mut from = 0;
        while let Some(found) = out[from..].find(name) {
            let start = from + found + name.len();
            let len = out[start..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b',' || *b == b'-')
                .count();
            out.replace_range(start..start + len, "<sid>");
            from = start + "<sid>".len();
        }
    }
    out
}

/// Writes one exchange into `out`.
pub fn render_exchange(out: &mut String, exchange: &Exchange, ordered_headers: bool) {
    let _ = writeln!(out, ">>> {}", exchange.request_line);
    match &exchange.reply {
        Err(e) => {
            let _ = writeln!(out, "(no response: {e})");
        }
        Ok(reply) => render_reply(out, reply, ordered_headers),
    }
}

fn render_reply(out: &mut String, reply: &Reply, ordered_headers: bool) {
    let _ = writeln!(out, "{}", reply.status_line);
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("Date"))
        .map(|(name, value)| (name.clone(), header_value(name, value)))
        .collect();
    if !ordered_headers {
        headers.sort_by_key(|(name, _)| name.to_ascii_lowercase());
    }
    for (name, value) in headers {
        let _ = writeln!(out, "{name}: {value}");
    }
    out.push('\n');
    out.push_str(&body_text(&reply.body));
    if !reply.body.is_empty() && !reply.body.ends_with(b"\n") {
        out.push_str("\n(no newline at end of body)\n");
    }
}

/// A header value with clock-dependent dates masked.
fn header_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("Expires") && value != FIXED_EXPIRES {
        return "<a date>".to_string();
    }
    value.to_string()
}

/// The body as text: control bytes escaped, long bodies summarised.
fn body_text(body: &[u8]) -> String {
    let shown = &body[..body.len().min(BODY_SHOWN)];
    let mut text = String::new();
    for c in String::from_utf8_lossy(shown).chars() {
        match c {
            '\n' | '\t' => text.push(c),
            c if c.is_control() => {
                let _ = write!(text, "\\x{:02x}", c as u32);
            }
            c => text.push(c),
        }
    }
    if body.len() > BODY_SHOWN {
        let _ = write!(
            text,
            "\n(... {} bytes in all, md5 {})\n",
            body.len(),
            md5_hex(body)
        );
    }
    text
}

/// A line diff of `left` (php-fpm) and `right` (tfpm): `-` lines are only in
/// `left`, `+` lines only in `right`, with up to two lines of context.
pub fn diff(left: &str, right: &str) -> String {
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    let ops = edit_script(&a, &b);
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let mut out = String::new();
    let mut skipped = false;
    for (i, op) in ops.iter().enumerate() {
        let near = (i.saturating_sub(2)..(i + 3).min(ops.len())).any(|j| changed[j]);
        if !near {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("  ...\n");
            skipped = false;
        }
        let _ = match op {
            Op::Same(line) => writeln!(out, "  {line}"),
            Op::Left(line) => writeln!(out, "- {line}"),
            Op::Right(line) => writeln!(out, "+ {line}"),
        };
    }
    out
}

enum Op<'a> {
    Same(&'a str),
    Left(&'a str),
    Right(&'a str),
}

/// The shortest edit script between two line lists (longest common subsequence).
fn edit_script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Left(a[i]));
            i += 1;
        } else {
            ops.push(Op::Right(b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_session_ids() {
        let text = "Set-Cookie: PHPSESSID=abc123,-x; path=/\nDIFFSESS=zz";
        assert_eq!(
            mask_session_ids(text),
            "Set-Cookie: PHPSESSID=<sid>; path=/\nDIFFSESS=<sid>"
        );
    }

    #[test]
    fn diffs_lines() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
        assert_eq!(diff("same\n", "same\n"), "");
    }

    #[test]
    fn chunks_bodies() {
        assert_eq!(chunk(b"abc").concat(), b"3\r\nabc\r\n0\r\n\r\n");
    }
}
