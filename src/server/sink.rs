//! The two ends a PHP request sees of its connection: [`FcgiSink`] turns
//! output into FastCGI records for the connection's outlet (written by the
//! PHP thread itself when the socket takes them), and [`BodyStream`] hands
//! over STDIN chunks. Both block the PHP thread, never a tokio thread.
//! The sink also reads each response's status off its CGI headers for the
//! metrics.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

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

/// Wakes the PHP thread waiting in [`BodyStream::next_chunk`].
#[derive(Default)]
struct Waker {
    thread: Mutex<Option<Thread>>,
}

impl Waker {
    fn wake(&self) {
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.unpark();
        }
    }
}

/// The connection's end of a request body: sends STDIN chunks to the PHP
/// thread and wakes it. Dropping it ends the body.
pub struct BodySender {
    tx: mpsc::Sender<Bytes>,
    waker: Arc<Waker>,
}

impl BodySender {
    /// Waits for room (backpressure); fails once the script is done with the body.
    pub async fn send(&self, data: Bytes) -> Result<(), ()> {
        self.tx.send(data).await.map_err(|_| ())?;
        self.waker.wake();
        Ok(())
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        self.waker.wake();
    }
}

/// A bounded body channel: the connection's sender and the PHP thread's stream.
pub fn body_channel(capacity: usize) -> (BodySender, BodyStream) {
    let (tx, rx) = mpsc::channel(capacity);
    let waker = Arc::new(Waker::default());
    (
        BodySender {
            tx,
            waker: waker.clone(),
        },
        BodyStream { rx, waker },
    )
}

/// The PHP thread's end of a request body.
pub struct BodyStream {
    rx: mpsc::Receiver<Bytes>,
    waker: Arc<Waker>,
}

impl BodyStream {
    fn poll(&mut self) -> Option<BodyPoll> {
        match self.rx.try_recv() {
            Ok(chunk) => Some(BodyPoll::Chunk(chunk)),
            Err(TryRecvError::Disconnected) => Some(BodyPoll::End),
            Err(TryRecvError::Empty) => None,
        }
    }
}

impl BodySource for BodyStream {
    /// Parks the thread until a chunk arrives, the body ends, or `wait`
    /// passes, so that the shim can check PHP's timers in between.
    fn next_chunk(&mut self, wait: Duration) -> BodyPoll {
        if let Some(found) = self.poll() {
            return found;
        }
        *self.waker.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
        // Checked again after registering, so that a wake-up cannot be lost.
        if let Some(found) = self.poll() {
            return found;
        }
        let deadline = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return BodyPoll::Pending;
            }
            std::thread::park_timeout(deadline - now);
            if let Some(found) = self.poll() {
                return found;
            }
        }
    }
}
