//! A FastCGI tap: a TCP relay between a web server and tfpm that forwards
//! every byte unchanged and notes each record that passes, so that a test
//! can see what a real client did on the wire: GET_VALUES, KEEP_CONN,
//! several requests in flight on one connection, ABORT_REQUEST.
//!
//! [`Tap::start`] listens on a free port of 127.0.0.1; each accepted
//! connection gets its own connection to the upstream and two relay threads.
//! [`Tap::records`] returns what was seen so far, in the order it was seen.
//! Dropping the tap stops accepting; relayed connections end when either
//! side closes.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// FastCGI record types, as numbered by the specification.
pub mod kind {
    pub use crate::fcgi_client::{
        ABORT_REQUEST, BEGIN_REQUEST, END_REQUEST, GET_VALUES, GET_VALUES_RESULT, PARAMS, STDIN,
        STDOUT,
    };
    /// Not a record: the sender closed (or shut down) its side.
    pub const CLOSED: u8 = 0;
}

const HEADER_LEN: usize = 8;

/// One record seen by the tap, or the end of one direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Which relayed connection (0, 1, ... in accept order).
    pub conn: usize,
    /// True for records from the web server to tfpm, false for tfpm's.
    pub to_app: bool,
    /// The record type, or [`kind::CLOSED`] when this direction ended.
    pub kind: u8,
    pub request_id: u16,
    /// The content (without padding).
    pub content: Vec<u8>,
}

impl Seen {
    /// The role of a BEGIN_REQUEST (1 responder, 2 authorizer, 3 filter).
    pub fn role(&self) -> Option<u16> {
        let is_begin = self.kind == kind::BEGIN_REQUEST && self.content.len() >= 3;
        is_begin.then(|| u16::from_be_bytes([self.content[0], self.content[1]]))
    }

    /// Whether a BEGIN_REQUEST asks to keep the connection (FCGI_KEEP_CONN).
    pub fn keep_conn(&self) -> bool {
        self.kind == kind::BEGIN_REQUEST && self.content.get(2).is_some_and(|f| f & 1 == 1)
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A running tap.
pub struct Tap {
    addr: SocketAddr,
    log: Log,
    stop: Arc<AtomicBool>,
}

impl Tap {
    /// Relays connections made to [`Tap::addr`] to `upstream`.
    pub fn start(upstream: SocketAddr) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tap");
        let addr = listener.local_addr().expect("tap address");
        let log = Log::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_log, accept_stop) = (Arc::clone(&log), Arc::clone(&stop));
        thread::spawn(move || accept_loop(&listener, upstream, &accept_log, &accept_stop));
        Tap { addr, log, stop }
    }

    /// Where the web server should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every record seen so far.
    pub fn records(&self) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The records of type `kind` seen so far.
    pub fn records_of(&self, kind: u8) -> Vec<Seen> {
        let all = self.records();
        all.into_iter().filter(|r| r.kind == kind).collect()
    }

    /// How many relayed connections carried something.
    pub fn connections(&self) -> usize {
        let conns: BTreeSet<usize> = self.records().iter().map(|r| r.conn).collect();
        conns.len()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, log: &Log, stop: &AtomicBool) {
    for (conn, client) in listener.incoming().enumerate() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(upstream) else {
            continue; // the client sees the connection close, as without the tap
        };
        relay(conn, client, server, log);
    }
}

/// Starts the two threads that copy `client` ⇄ `server`.
fn relay(conn: usize, client: TcpStream, server: TcpStream, log: &Log) {
    let pairs = [
        (client.try_clone(), server.try_clone(), true),
        (server.try_clone(), client.try_clone(), false),
    ];
    for (from, to, to_app) in pairs {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let log = Arc::clone(log);
        thread::spawn(move || copy_records(from, to, Direction { conn, to_app }, &log));
    }
}

#[derive(Clone, Copy)]
struct Direction {
    conn: usize,
    to_app: bool,
}

/// Forwards bytes from `from` to `to` until either ends, noting the records.
fn copy_records(mut from: TcpStream, mut to: TcpStream, dir: Direction, log: &Log) {
    let mut pending = Vec::new();
    let mut buf = [0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Noted before forwarding, so a test that saw the effect sees the record.
        pending.extend_from_slice(&buf[..n]);
        note_records(&mut pending, dir, log);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    // Noted before passing the close on, like the records.
    let closed = Seen {
        conn: dir.conn,
        to_app: dir.to_app,
        kind: kind::CLOSED,
        request_id: 0,
        content: Vec::new(),
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(closed);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Takes every complete record off the front of `pending` and logs it.
fn note_records(pending: &mut Vec<u8>, dir: Direction, log: &Log) {
    while let Some((seen, len)) = parse_record(pending, dir) {
        log.lock().unwrap_or_else(|e| e.into_inner()).push(seen);
        pending.drain(..len);
    }
}

/// The first record of `bytes` and its length with padding, if it is complete.
fn parse_record(bytes: &[u8], dir: Direction) -> Option<(Seen, usize)> {
    let header = bytes.get(..HEADER_LEN)?;
    let content_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let total = HEADER_LEN + content_len + usize::from(header[6]);
    if bytes.len() < total {
        return None;
    }
    let seen = Seen {
        conn: dir.conn,
        to_app: dir.to_app,
        kind: header[1],
        request_id: u16::from_be_bytes([header[2], header[3]]),
        content: bytes[HEADER_LEN..HEADER_LEN + content_len].to_vec(),
    };
    Some((seen, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_records_only() {
        let dir = Direction {
            conn: 0,
            to_app: true,
        };
        let begin = [1, 1, 0, 3, 0, 8, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0];
        let (seen, len) = parse_record(&begin, dir).expect("a record");
        assert_eq!(
            (seen.kind, seen.request_id, len),
            (kind::BEGIN_REQUEST, 3, 16)
        );
        assert_eq!((seen.role(), seen.keep_conn()), (Some(2), true));
        assert!(parse_record(&begin[..12], dir).is_none());
        let padded = [1, 6, 0, 1, 0, 2, 6, 0, b'h', b'i', 0, 0, 0, 0, 0, 0];
        assert!(
            parse_record(&padded[..10], dir).is_none(),
            "padding missing"
        );
        let (seen, len) = parse_record(&padded, dir).expect("a record");
        assert_eq!((seen.content.as_slice(), len), (&b"hi"[..], 16));
    }

    #[test]
    fn relays_and_notes_both_directions() {
        let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tap = Tap::start(upstream.local_addr().expect("addr"));
        let mut client = TcpStream::connect(tap.addr()).expect("connect");
        let (mut app, _) = upstream.accept().expect("accept");
        client.write_all(&[1, 2, 0, 7, 0, 0, 0, 0]).expect("send");
        let mut got = [0; 8];
        app.read_exact(&mut got).expect("relayed");
        app.write_all(&[1, 3, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .expect("reply");
        let mut back = [0; 16];
        client.read_exact(&mut back).expect("relayed back");
        let kinds: Vec<(bool, u8, u16)> = tap
            .records()
            .iter()
            .map(|r| (r.to_app, r.kind, r.request_id))
            .collect();
        assert_eq!(
            kinds,
            [
                (true, kind::ABORT_REQUEST, 7),
                (false, kind::END_REQUEST, 7)
            ]
        );
        assert_eq!(tap.connections(), 1);
    }
}
