//! The two ends a PHP request sees of its connection: [`FcgiSink`] turns
//! output into FastCGI records for the connection's outlet (written by the
//! PHP thread itself when the socket takes them), and [`BodyStream`] hands
//! over STDIN chunks. Both block the PHP thread, never a tokio thread.
//! The sink also reads each response's status off its CGI headers for the
//! metrics.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::conn::Outlet;
use super::metrics;
use crate::fcgi::record::Out;
use crate::fcgi::record::ProtocolStatus;
use crate::php::{BodyPoll, BodySource, ResponseSink, SinkGone};

/// Sends one request's output to its connection.
///
/// Every send happens under `state`'s lock, so once the response has ended
/// (normally, or abandoned by the watchdog) no record for this id can follow
/// the END_REQUEST, even from a thread that was stuck.
pub struct FcgiSink {
    id: u16,
    outlet: Arc<Outlet>,
    state: Mutex<SinkState>,
    /// When the request was handed to PHP.
    started: Instant,
}

#[derive(Default)]
struct SinkState {
    ended: bool,
    wrote: bool,
    /// The HTTP status, from the start of the first STDOUT.
    status: Option<u16>,
}

/// What a client gets when its request's thread had to be abandoned.
const ABANDONED: &[u8] = b"Status: 500 Internal Server Error\r\nContent-type: text/plain\r\n\r\n\
Request terminated (request_terminate_timeout).\n";

impl FcgiSink {
    /// The sink of request `id`, sending to its connection's `outlet`.
    pub fn new(id: u16, outlet: Arc<Outlet>) -> Self {
        FcgiSink {
            id,
            outlet,
            state: Mutex::default(),
            started: Instant::now(),
        }
    }

    /// Counts the response in the metrics, once, as it ends.
    fn count(&self, state: &SinkState, status: u16) {
        if !state.ended {
            metrics::response(state.status.unwrap_or(status), self.started.elapsed());
        }
    }

    fn state(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, state: &SinkState, out: Out) -> Result<(), SinkGone> {
        if state.ended {
            return Err(SinkGone);
        }
        self.outlet.send_blocking([out])
    }

    /// A response's last records: the rest of its output, the ends of its
    /// streams, and its END_REQUEST.
    fn end_records(&self, tail: Bytes, stderr_used: bool, app_status: u32) -> [Option<Out>; 4] {
        let id = self.id;
        [
            (!tail.is_empty()).then_some(Out::Stdout { id, data: tail }),
            Some(Out::Stdout {
                id,
                data: Bytes::new(),
            }),
            stderr_used.then(|| Out::Stderr {
                id,
                data: Bytes::new(),
            }),
            Some(Out::EndRequest {
                id,
                app_status,
                protocol_status: ProtocolStatus::RequestComplete,
            }),
        ]
    }
}

impl ResponseSink for FcgiSink {
    fn stdout(&self, data: Bytes) -> Result<(), SinkGone> {
        if data.is_empty() {
            return Ok(()); // an empty record would end the stream
        }
        let mut state = self.state();
        state.wrote = true;
        if state.status.is_none() {
            state.status = Some(metrics::status_of(&data));
        }
        self.send(&state, Out::Stdout { id: self.id, data })
    }

    fn stderr(&self, data: Bytes) -> Result<(), SinkGone> {
        if data.is_empty() {
            return Ok(());
        }
        let state = self.state();
        self.send(&state, Out::Stderr { id: self.id, data })
    }

    fn end(&self, app_status: u32, stderr_used: bool) {
        self.finish(Bytes::new(), app_status, stderr_used);
    }

    fn finish(&self, tail: Bytes, app_status: u32, stderr_used: bool) {
        let mut state = self.state();
        if state.status.is_none() && !tail.is_empty() {
            state.status = Some(metrics::status_of(&tail));
        }
        self.count(&state, 200);
        if !state.ended {
            state.wrote |= !tail.is_empty();
            let records = self.end_records(tail, stderr_used, app_status);
            let _ = self.outlet.send_blocking(records.into_iter().flatten());
        }
        state.ended = true;
    }

    fn abandon(&self) -> bool {
        let Ok(mut state) = self.state.try_lock() else {
            return false;
        };
        if state.ended {
            return true;
        }
        let tail = match state.wrote {
            true => Bytes::new(),
            false => Bytes::from_static(ABANDONED),
        };
        // try_send: the watchdog never waits on a client. Nothing is sent
        // unless all is, so a later try starts over.
        let records = self.end_records(tail, false, 0);
        if !self.outlet.try_send(records.into_iter().flatten()) {
            return false;
        }
        self.count(&state, 500);
        state.ended = true;
        true
    }
}

/// A request body on its way from the connection to the PHP thread: at
/// most `capacity` chunks waiting (backpressure on the upload), in one
/// allocation shared by both ends.
struct Pipe {
    state: Mutex<PipeState>,
    /// Woken when the PHP thread takes a chunk or lets the body go.
    room: Notify,
    capacity: usize,
}

#[derive(Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    /// The connection's end is gone: the body is complete.
    sent_all: bool,
    /// The PHP thread's end is gone: the script is done with the body.
    taken_all: bool,
    /// The PHP thread, once it has waited for a chunk.
    thread: Option<Thread>,
}

impl Pipe {
    fn state(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn closed(&self) -> bool {
        let state = self.state();
        state.sent_all || state.taken_all
    }

    fn wake_thread(state: MutexGuard<'_, PipeState>) {
        let thread = state.thread.clone();
        drop(state);
        if let Some(thread) = thread {
            thread.unpark();
        }
    }
}

/// The connection's end of a request body. Dropping it ends the body.
pub struct BodySender(Arc<Pipe>);

impl BodySender {
    /// A way to send chunks without holding the sender (which the
    /// connection keeps in its lock); it fails once the sender is dropped.
    pub fn port(&self) -> BodyPort {
        BodyPort(self.0.clone())
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.sent_all = true;
        Pipe::wake_thread(state);
    }
}

/// Sends chunks down a request body (see [`BodySender::port`]).
pub struct BodyPort(Arc<Pipe>);

impl BodyPort {
    /// Waits for room (backpressure); fails once the script is done with
    /// the body, or the body was ended.
    pub async fn send(&self, data: Bytes) -> Result<(), ()> {
        let pipe = &self.0;
        loop {
            let room = pipe.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if pipe.closed() {
                return Err(());
            }
            if pipe.state().chunks.len() < pipe.capacity {
                break;
            }
            room.await;
        }
        // The connection is the only sender: the room is still there.
        let mut state = pipe.state();
        if state.sent_all || state.taken_all {
            return Err(());
        }
        state.chunks.push_back(data);
        Pipe::wake_thread(state);
        Ok(())
    }
}

/// A bounded request body: the connection's sender and the PHP thread's
/// stream.
pub fn body_channel(capacity: usize) -> (BodySender, BodyStream) {
    let pipe = Arc::new(Pipe {
        state: Mutex::default(),
        room: Notify::new(),
        capacity,
    });
    (BodySender(pipe.clone()), BodyStream(pipe))
}

/// The PHP thread's end of a request body. Dropping it tells the
/// connection that the script is done with the body.
pub struct BodyStream(Arc<Pipe>);

impl Drop for BodyStream {
    fn drop(&mut self) {
        self.0.state().taken_all = true;
        self.0.room.notify_waiters();
    }
}

impl BodyStream {
    /// A chunk, or the end; else registers the thread to be woken.
    fn poll(&self) -> Option<BodyPoll> {
        let mut state = self.0.state();
        if let Some(chunk) = state.chunks.pop_front() {
            drop(state);
            self.0.room.notify_one();
            return Some(BodyPoll::Chunk(chunk));
        }
        if state.sent_all {
            return Some(BodyPoll::End);
        }
        if state.thread.is_none() {
            state.thread = Some(std::thread::current());
        }
        None
    }
}

impl BodySource for BodyStream {
    /// Parks the thread until a chunk arrives, the body ends, or `wait`
    /// passes, so that the shim can check PHP's timers in between.
    fn next_chunk(&mut self, wait: Duration) -> BodyPoll {
        let deadline = Instant::now() + wait;
        loop {
            // The thread is registered under the same lock as the check,
            // so a wake-up cannot be lost.
            if let Some(found) = self.poll() {
                return found;
            }
            let now = Instant::now();
            if now >= deadline {
                return BodyPoll::Pending;
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn chunks_arrive_in_order_and_the_body_ends_when_the_sender_goes() {
        let (tx, mut rx) = body_channel(4);
        runtime().block_on(async {
            tx.port().send(Bytes::from_static(b"a")).await.unwrap();
            tx.port().send(Bytes::from_static(b"b")).await.unwrap();
        });
        drop(tx);
        assert_eq!(
            rx.next_chunk(WAIT),
            BodyPoll::Chunk(Bytes::from_static(b"a"))
        );
        assert_eq!(
            rx.next_chunk(WAIT),
            BodyPoll::Chunk(Bytes::from_static(b"b"))
        );
        assert_eq!(rx.next_chunk(WAIT), BodyPoll::End);
    }

    #[test]
    fn nothing_within_the_wait_is_pending() {
        let (_tx, mut rx) = body_channel(4);
        assert_eq!(rx.next_chunk(Duration::from_millis(1)), BodyPoll::Pending);
    }

    #[test]
    fn a_full_pipe_holds_the_sender_until_the_thread_takes_a_chunk() {
        let (tx, mut rx) = body_channel(2);
        let rt = runtime();
        rt.block_on(async {
            for chunk in [b"1", b"2"] {
                tx.port().send(Bytes::from_static(chunk)).await.unwrap();
            }
        });
        let port = tx.port();
        let taker = std::thread::spawn(move || {
            let first = rx.next_chunk(WAIT);
            // The third chunk can only have come in after the first left.
            let rest: Vec<_> = (0..2).map(|_| rx.next_chunk(WAIT)).collect();
            (first, rest)
        });
        rt.block_on(port.send(Bytes::from_static(b"3"))).unwrap();
        let (first, rest) = taker.join().unwrap();
        assert_eq!(first, BodyPoll::Chunk(Bytes::from_static(b"1")));
        assert_eq!(
            rest,
            [b"2", b"3"].map(|c| BodyPoll::Chunk(Bytes::from_static(c)))
        );
    }

    #[test]
    fn a_script_done_with_its_body_fails_the_waiting_sender() {
        let (tx, rx) = body_channel(1);
        let rt = runtime();
        rt.block_on(tx.port().send(Bytes::from_static(b"1")))
            .unwrap();
        let port = tx.port();
        let dropper = std::thread::spawn(move || drop(rx));
        // Full: this waits until the stream goes (if it has not yet), then fails.
        assert_eq!(rt.block_on(port.send(Bytes::from_static(b"2"))), Err(()));
        dropper.join().unwrap();
        assert_eq!(
            rt.block_on(tx.port().send(Bytes::from_static(b"3"))),
            Err(())
        );
    }
}
