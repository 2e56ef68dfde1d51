//! The raw-record client of the conformance suite: it writes arbitrary bytes
//! (whole, or cut into pieces of any size) and reports exactly which records
//! came back and whether the server closed the connection.
//!
//! An [`Observation`] ends at EOF, or once the server has been quiet for a
//! short while after its last record (a few seconds while a response it
//! began has no END_REQUEST yet). [`Observation::summary`] turns it into
//! one short line, the same for any server that behaved the same, which is
//! what the conformance matrix shows and compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::cgi::CgiResponse;
use crate::fcgi_client::{
    decode_pairs, END_REQUEST, GET_VALUES_RESULT, MAX_CONTENT, STDERR, STDOUT, UNKNOWN_TYPE,
};

/// How long a server may take to send its first record.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// Quiet time after a record that ends an observation.
const QUIET: Duration = Duration::from_millis(300);

/// One record as received, with its padding length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub version: u8,
    pub kind: u8,
    pub id: u16,
    pub content: Vec<u8>,
    pub padding: u8,
}

/// Everything the server sent back, and how the connection ended.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub records: Vec<RawRecord>,
    /// The server closed (EOF or reset).
    pub closed: bool,
    /// Bytes that did not form a whole record before EOF.
    pub trailing: usize,
}

/// A connection to a FastCGI server that writes whatever it is given.
pub struct RawConn {
    stream: TcpStream,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(RawConn { stream })
    }

    /// Writes `bytes` in pieces of `piece` bytes (0: all at once). A server
    /// that has closed makes the rest of the write fail; that is not an error
    /// here, since [`RawConn::observe`] reports the close.
    pub fn send(&mut self, bytes: &[u8], piece: usize) {
        let piece = if piece == 0 {
            bytes.len().max(1)
        } else {
            piece
        };
        for chunk in bytes.chunks(piece) {
            if self.stream.write_all(chunk).is_err() {
                return;
            }
        }
    }

    /// Closes our writing side (the server reads EOF), keeping the read side.
    pub fn finish(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Reads records until EOF or until the server has been quiet for a while.
    pub fn observe(&mut self) -> Observation {
        self.observe_quiet(QUIET)
    }

    /// As [`RawConn::observe`], with `quiet` as the time that ends it.
    pub fn observe_quiet(&mut self, quiet: Duration) -> Observation {
        let mut seen = Observation::default();
        let mut buf = Vec::new();
        let mut wait = FIRST_WAIT;
        let mut open = std::collections::BTreeSet::new();
        loop {
            let _ = self.stream.set_read_timeout(Some(wait));
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    seen.closed = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    seen.closed = true;
                    break;
                }
                Err(_) => break, // quiet: still open
            }
            while let Some(record) = take_record(&mut buf) {
                match record.kind {
                    STDOUT | STDERR => open.insert(record.id),
                    END_REQUEST => open.remove(&record.id),
                    _ => false,
                };
                seen.records.push(record);
                // A response under way ends with its END_REQUEST: a busy
                // machine may pause longer than `quiet` before that.
                wait = match open.is_empty() {
                    true => quiet,
                    false => FIRST_WAIT.max(quiet),
                };
            }
        }
        seen.trailing = buf.len();
        seen
    }
}

/// Takes one whole record off the front of `buf`, if there is one.
fn take_record(buf: &mut Vec<u8>) -> Option<RawRecord> {
    let header: [u8; 8] = buf.get(..8)?.try_into().ok()?;
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let padding = header[6];
    let total = 8 + len + usize::from(padding);
    if buf.len() < total {
        return None;
    }
    let record = RawRecord {
        version: header[0],
        kind: header[1],
        id: u16::from_be_bytes([header[2], header[3]]),
        content: buf[8..8 + len].to_vec(),
        padding,
    };
    buf.drain(..total);
    Some(record)
}

impl Observation {
    /// One line: each request's status and body start, its END_REQUEST,
    /// management replies, framing faults, and `open` or `closed`.
    pub fn summary(&self) -> String {
        let mut out = Vec::new();
        let mut stdout: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        let mut stderr_said = Vec::new();
        for r in &self.records {
            match r.kind {
                STDOUT => stdout.entry(r.id).or_default().extend(&r.content),
                STDERR if !stderr_said.contains(&r.id) => {
                    stderr_said.push(r.id);
                    out.push(format!("stderr{}", r.id));
                }
                STDERR => {}
                END_REQUEST => {
                    match stdout.remove(&r.id) {
                        Some(body) if !body.is_empty() => out.push(response_summary(r.id, &body)),
                        _ => {}
                    }
                    out.push(format!("end{}:{}", r.id, end_status(&r.content)));
                }
                GET_VALUES_RESULT => out.push(values_summary(&r.content)),
                UNKNOWN_TYPE => {
                    out.push(format!("unknown_type:{}", r.content.first().unwrap_or(&0)))
                }
                kind => out.push(format!("type{kind}({})", r.id)),
            }
        }
        for (id, body) in stdout.into_iter().filter(|(_, b)| !b.is_empty()) {
            out.push(response_summary(id, &body));
        }
        if self.records.iter().any(|r| !well_framed(r)) {
            out.push("badly-framed".into());
        }
        if self.trailing > 0 {
            out.push(format!("+{}B", self.trailing));
        }
        if out.is_empty() {
            out.push("nothing".into());
        }
        let state = if self.closed { "closed" } else { "open" };
        format!("{} · {state}", out.join(" "))
    }
}

/// Version 1, at most 65535 bytes, and content plus padding a multiple of 8.
fn well_framed(r: &RawRecord) -> bool {
    r.version == 1
        && r.content.len() <= MAX_CONTENT
        && (r.content.len() + usize::from(r.padding)) % 8 == 0
}

/// `1:200"Hello, world!"`: the id, the CGI status and the body's first bytes.
fn response_summary(id: u16, stdout: &[u8]) -> String {
    let cgi = CgiResponse::parse(stdout);
    let status = cgi.status;
    let start: String = String::from_utf8_lossy(&cgi.body)
        .chars()
        .take(24)
        .collect::<String>()
        .trim_end()
        .to_string();
    let mut s = format!("{id}:{status}");
    if !start.is_empty() {
        let _ = write!(s, "{start:?}");
    }
    s
}

fn end_status(body: &[u8]) -> String {
    match body.get(4) {
        Some(0) => "complete".into(),
        Some(1) => "cant_mpx".into(),
        Some(2) => "overloaded".into(),
        Some(3) => "unknown_role".into(),
        Some(n) => format!("status{n}"),
        None => "short".into(),
    }
}

/// `values[FCGI_MAX_CONNS FCGI_MPXS_CONNS=0]`: names, and the multiplexing answer.
fn values_summary(content: &[u8]) -> String {
    let Ok(pairs) = decode_pairs(content) else {
        return "values[malformed]".into();
    };
    let items: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let name = String::from_utf8_lossy(name);
            match name.as_ref() {
                "FCGI_MPXS_CONNS" => format!("{name}={}", String::from_utf8_lossy(value)),
                _ => name.into_owned(),
            }
        })
        .collect();
    format!("values[{}]", items.join(" "))
}
