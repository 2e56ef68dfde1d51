//! Where a connection's records go out. Whoever makes records (a PHP
//! thread with a response, the reader with a reply or a refusal) encodes
//! them itself and, when nothing is queued ahead of them, writes them to
//! the socket at once, without blocking; only what the socket does not take
//! then, and everything made while something is queued, goes through the
//! writer task's queue. A response that fits the socket buffer therefore
//! costs no hand-off to another thread.
//!
//! Order: nothing is written directly while the queue holds anything or the
//! writer is writing, so the bytes of each maker leave in the order made.
//! An END_REQUEST's id is marked ended (`ConnState::end`) under the same
//! lock as its bytes are written or queued, before they can reach the peer.

use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::mpsc;

use super::super::metrics;
use super::SharedRef;
use crate::fcgi::codec::encode_segments;
use crate::fcgi::record::{Out, ProtocolStatus};
use crate::php::SinkGone;

/// The most pieces handed to one vectored write.
pub(super) const MAX_IOVECS: usize = 64;

/// Room for record headers made at once (most responses need 3 or 4 of 8
/// or 16 bytes).
const SCRATCH: usize = 1024;

/// Encoded records for the writer task, in order.
pub(super) struct Queued {
    /// Record headers and data, ready to write.
    pub(super) pieces: Vec<Bytes>,
    /// An END_REQUEST among them ends the connection: close after them.
    pub(super) close: bool,
}

/// The connection's output, shared by its reader, its writer task and the
/// sinks of its requests.
pub(crate) struct Outlet {
    gate: Mutex<Gate>,
    tx: mpsc::Sender<Queued>,
    shared: SharedRef,
}

/// What is decided under the outlet's lock.
struct Gate {
    /// The socket, for direct writes; `None` once the writer stopped or
    /// handed the connection over, so nothing is written after that.
    socket: Option<OwnedFd>,
    /// Items in the writer's queue, or being written by it.
    queued: usize,
    /// Where record headers are encoded.
    scratch: BytesMut,
    /// The pieces of a direct write.
    pieces: Vec<Bytes>,
}

/// How a batch of records went.
enum Sent {
    /// All written to the socket.
    Written,
    /// To be queued for the writer (already counted in `queued`).
    Queue(Queued),
}

impl Outlet {
    /// An outlet over `socket` (a duplicate of the connection's descriptor)
    /// and the writer task's queue.
    pub(super) fn new(
        socket: Option<OwnedFd>,
        tx: mpsc::Sender<Queued>,
        shared: SharedRef,
    ) -> Self {
        let gate = Gate {
            socket,
            queued: 0,
            scratch: BytesMut::new(),
            pieces: Vec::with_capacity(8),
        };
        Outlet {
            gate: Mutex::new(gate),
            tx,
            shared,
        }
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends records from a PHP thread, waiting for room in the queue when
    /// the socket is full (backpressure reaches the script).
    pub(crate) fn send_blocking(
        &self,
        records: impl IntoIterator<Item = Out>,
    ) -> Result<(), SinkGone> {
        // The lock is let go before waiting: the writer needs it to count
        // what it wrote.
        let sent = self.sort(&mut self.gate(), records)?;
        match sent {
            Sent::Written => Ok(()),
            Sent::Queue(item) => self.tx.blocking_send(item).map_err(|_| SinkGone),
        }
    }

    /// Sends records from the reader task. Room in the queue is taken
    /// first, so that a cancelled send leaves nothing counted as queued.
    pub(super) async fn send(&self, records: impl IntoIterator<Item = Out>) {
        let Ok(permit) = self.tx.reserve().await else {
            return;
        };
        let sent = self.sort(&mut self.gate(), records);
        if let Ok(Sent::Queue(item)) = sent {
            permit.send(item);
        }
    }

    /// Sends records without ever waiting (the watchdog's way); false, with
    /// nothing sent, when the queue has no room now.
    pub(crate) fn try_send(&self, records: impl IntoIterator<Item = Out>) -> bool {
        let Ok(permit) = self.tx.try_reserve() else {
            return false;
        };
        let sent = self.sort(&mut self.gate(), records);
        match sent {
            Ok(Sent::Written) => true,
            Ok(Sent::Queue(item)) => {
                permit.send(item);
                true
            }
            Err(SinkGone) => false,
        }
    }

    /// Encodes `records` and writes them now if nothing is ahead of them;
    /// what is left becomes one item for the queue.
    fn sort(
        &self,
        gate: &mut Gate,
        records: impl IntoIterator<Item = Out>,
    ) -> Result<Sent, SinkGone> {
        let Gate {
            socket,
            queued,
            scratch,
            pieces,
        } = gate;
        let mut close = false;
        pieces.clear();
        if scratch.capacity() < SCRATCH / 4 {
            // Takes back the memory of headers already written, if all were.
            scratch.reserve(SCRATCH);
        }
        for out in records {
            close |= self.note_end(&out);
            encode_segments(out, scratch, pieces).map_err(|_| SinkGone)?;
        }
        if let (Some(fd), 0) = (socket.as_ref(), *queued) {
            if let Err(e) = write_now(fd, pieces) {
                tracing::debug!("connection write failed: {e}");
                // Nothing more goes to this socket: the writer closes it.
                pieces.clear();
                *socket = None;
                let closing = Queued {
                    pieces: Vec::new(),
                    close: true,
                };
                if self.tx.try_send(closing).is_ok() {
                    *queued += 1;
                }
                return Err(SinkGone);
            }
            if pieces.is_empty() && !close {
                return Ok(Sent::Written);
            }
        }
        *queued += 1;
        Ok(Sent::Queue(Queued {
            pieces: std::mem::replace(pieces, Vec::with_capacity(8)),
            close,
        }))
    }

    /// Before an END_REQUEST goes out, its id becomes inactive, so the peer
    /// may reuse it at once. Returns whether the connection should close
    /// after it.
    fn note_end(&self, out: &Out) -> bool {
        let Out::EndRequest {
            id,
            protocol_status: ProtocolStatus::RequestComplete,
            ..
        } = out
        else {
            // Refusals end ids that never became active, which the peer may
            // already have begun again.
            return false;
        };
        let mut guard = self.shared.lock();
        if guard.requests.remove(id).is_none() {
            return false;
        }
        let close = guard.state.end(*id, Instant::now());
        let wake = guard.reader_waits;
        drop(guard);
        if wake {
            self.shared.ended.notify_waiters();
        }
        close
    }

    /// The writer wrote `items` queued items.
    pub(super) fn written(&self, items: usize) {
        let mut gate = self.gate();
        gate.queued = gate.queued.saturating_sub(items);
    }

    /// The connection ends (the writer stops, or the reader saw the peer
    /// go or break the protocol): nothing more is written directly.
    pub(super) fn close(&self) {
        self.gate().socket = None;
    }

    /// For a handover: stops direct writes if nothing is queued or being
    /// queued; false if something is, and must be written first.
    pub(super) fn close_if_idle(&self) -> bool {
        let mut gate = self.gate();
        if gate.queued > 0 {
            return false;
        }
        gate.socket = None;
        true
    }
}

/// Writes as much of `pieces` as the socket takes now, without blocking,
/// and leaves the rest in `pieces`.
fn write_now(fd: &OwnedFd, pieces: &mut Vec<Bytes>) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(fd);
    let mut first = 0;
    while first < pieces.len() {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = (pieces.len() - first).min(MAX_IOVECS);
        for (slot, piece) in slices.iter_mut().zip(&pieces[first..first + count]) {
            *slot = IoSlice::new(piece);
        }
        let written = match socket.send_vectored_with_flags(&slices[..count], libc::MSG_NOSIGNAL) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        metrics::bytes_out(written);
        first += consume(&mut pieces[first..], written);
    }
    pieces.drain(..first);
    Ok(())
}

/// Advances past `written` bytes of `pieces`; returns how many pieces were
/// written whole.
pub(super) fn consume(pieces: &mut [Bytes], mut written: usize) -> usize {
    let mut whole = 0;
    while written > 0 {
        let len = pieces[whole].len();
        if written >= len {
            written -= len;
            whole += 1;
        } else {
            pieces[whole].advance(written);
            written = 0;
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    use tokio::sync::mpsc::error::TryRecvError;
    use tokio_util::codec::Encoder;

    use super::*;
    use crate::fcgi::codec::RecordCodec;
    use crate::fcgi::conn::{ConnConfig, ConnState};

    /// An outlet on one end of a socket pair (non-blocking, as tokio's
    /// sockets are), with the other end and the writer's queue.
    fn outlet() -> (Arc<Outlet>, UnixStream, mpsc::Receiver<Queued>) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let shared = SharedRef {
            inner: Arc::new(Mutex::new(super::super::Shared {
                state: ConnState::new(ConnConfig::default(), Instant::now()),
                requests: super::super::Requests::default(),
                reader_waits: false,
            })),
            ended: Arc::default(),
        };
        let (tx, rx) = mpsc::channel(4);
        (
            Arc::new(Outlet::new(Some(ours.into()), tx, shared)),
            peer,
            rx,
        )
    }

    /// A whole response, as the server ends one of its own.
    fn response(id: u16, body: &[u8]) -> Vec<Out> {
        super::super::end_records(id, Bytes::copy_from_slice(body)).collect()
    }

    /// What the records are on the wire.
    fn wire(records: Vec<Out>) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for out in records {
            RecordCodec::new().encode(out, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    fn read_exactly(peer: &mut UnixStream, len: usize) -> Vec<u8> {
        let mut got = vec![0; len];
        peer.read_exact(&mut got).unwrap();
        got
    }

    #[test]
    fn a_response_the_socket_takes_is_written_by_the_thread_that_made_it() {
        let (outlet, mut peer, mut rx) = outlet();
        outlet.send_blocking(response(1, b"hello")).unwrap();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        let want = wire(response(1, b"hello"));
        assert_eq!(read_exactly(&mut peer, want.len()), want);
    }

    #[test]
    fn what_the_socket_does_not_take_is_queued_and_so_is_all_after_it() {
        let (outlet, mut peer, mut rx) = outlet();
        // Far more than a socket buffer: the rest waits for the writer.
        let big = vec![b'x'; 4 << 20];
        outlet.send_blocking(response(1, &big)).unwrap();
        let first = rx
            .try_recv()
            .expect("the rest of the big response is queued");
        assert!(!first.pieces.is_empty());
        // While that waits, nothing may overtake it.
        outlet.send_blocking(response(2, b"small")).unwrap();
        let second = rx.try_recv().expect("queued behind the first");
        // The writer's part: read what went out directly, then write the
        // queue in order.
        let mut want = wire(response(1, &big));
        want.extend(wire(response(2, b"small")));
        let reader = std::thread::spawn(move || read_exactly(&mut peer, want.len()) == want);
        let socket = outlet.gate().socket.as_ref().unwrap().try_clone().unwrap();
        for item in [first, second] {
            let mut stream = UnixStream::from(socket.try_clone().unwrap());
            stream.set_nonblocking(false).unwrap();
            for piece in item.pieces {
                std::io::Write::write_all(&mut stream, &piece).unwrap();
            }
        }
        assert!(reader.join().unwrap(), "bytes out of order");
        outlet.written(2);
        assert_eq!(outlet.gate().queued, 0);
    }

    #[test]
    fn a_handover_waits_for_what_is_queued_and_then_nothing_is_written() {
        let (outlet, _peer, mut rx) = outlet();
        let big = vec![b'x'; 4 << 20];
        outlet.send_blocking(response(1, &big)).unwrap();
        assert!(!outlet.close_if_idle(), "the queue still holds output");
        let _ = rx.try_recv().unwrap();
        outlet.written(1);
        assert!(outlet.close_if_idle());
        // Closed: nothing goes to the socket, and a gone writer means a gone client.
        drop(rx);
        assert_eq!(outlet.send_blocking(response(3, b"late")), Err(SinkGone));
    }

    #[test]
    fn an_end_request_ends_the_request_before_its_bytes_leave() {
        let (outlet, _peer, _rx) = outlet();
        let begin = crate::fcgi::record::Record {
            kind: crate::fcgi::record::RecordType::BeginRequest,
            request_id: 1,
            content: Bytes::from_static(&[0, 1, 1, 0, 0, 0, 0, 0]),
        };
        let slot = Arc::new(tokio::sync::Semaphore::new(1))
            .try_acquire_owned()
            .unwrap();
        let entry = super::super::Entry {
            body: None,
            abort: Arc::default(),
            span: tracing::Span::none(),
            _slot: slot,
        };
        let mut shared = outlet.shared.lock();
        shared.state.handle(begin, Instant::now()).unwrap();
        shared.requests.insert(1, entry);
        drop(shared);
        assert!(outlet.shared.lock().state.is_active(1));
        outlet.send_blocking(response(1, b"")).unwrap();
        assert!(!outlet.shared.lock().state.is_active(1));
    }

    #[test]
    fn a_thread_waiting_for_room_in_the_queue_lets_the_writer_count() {
        let (outlet, mut peer, mut rx) = outlet();
        let socket = outlet.gate().socket.as_ref().unwrap().try_clone().unwrap();
        let chunk = vec![b'y'; 1 << 20];
        let total = 20
            * wire(vec![Out::Stdout {
                id: 1,
                data: Bytes::from(chunk.clone()),
            }])
            .len();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        {
            let outlet = outlet.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let data = Bytes::from(chunk.clone());
                    outlet.send_blocking([Out::Stdout { id: 1, data }]).unwrap();
                }
                let _ = done_tx.send(());
            });
        }
        let drained = std::thread::spawn(move || read_exactly(&mut peer, total).len());
        // The writer's part.
        std::thread::spawn(move || {
            let mut stream = UnixStream::from(socket);
            stream.set_nonblocking(false).unwrap();
            while let Some(item) = rx.blocking_recv() {
                for piece in item.pieces {
                    std::io::Write::write_all(&mut stream, &piece).unwrap();
                }
                outlet.written(1);
            }
        });
        // A deadlock between the two fails the test instead of hanging it.
        let waited = done_rx.recv_timeout(std::time::Duration::from_secs(60));
        assert!(
            waited.is_ok(),
            "the maker never finished: it and the writer wait on each other"
        );
        assert_eq!(drained.join().unwrap(), total);
    }

    #[test]
    fn a_failed_write_closes_the_connection() {
        let (outlet, peer, mut rx) = outlet();
        drop(peer);
        assert_eq!(outlet.send_blocking(response(1, b"hello")), Err(SinkGone));
        let item = rx.try_recv().expect("the writer is told to close");
        assert!(item.close && item.pieces.is_empty());
        assert!(
            outlet.gate().socket.is_none(),
            "nothing more is written directly"
        );
    }
}
