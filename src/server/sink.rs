//! The two ends a PHP request sees of its connection: [`FcgiSink`] turns
//! output into FastCGI records for the connection's writer, and [`BodyStream`]
//! hands over STDIN chunks. Both block the PHP thread, never a tokio thread.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::fcgi::codec::Out;
use crate::fcgi::record::ProtocolStatus;
use crate::php::{BodySource, ResponseSink, SinkGone};

/// Sends one request's output to its connection's writer task.
pub struct FcgiSink {
    id: u16,
    tx: mpsc::Sender<Out>,
}

impl FcgiSink {
    pub fn new(id: u16, tx: mpsc::Sender<Out>) -> Self {
        FcgiSink { id, tx }
    }

    fn send(&self, out: Out) -> Result<(), SinkGone> {
        self.tx.blocking_send(out).map_err(|_| SinkGone)
    }
}

impl ResponseSink for FcgiSink {
    fn stdout(&mut self, data: Bytes) -> Result<(), SinkGone> {
        if data.is_empty() {
            return Ok(()); // an empty record would end the stream
        }
        self.send(Out::Stdout { id: self.id, data })
    }

    fn stderr(&mut self, data: Bytes) -> Result<(), SinkGone> {
        if data.is_empty() {
            return Ok(());
        }
        self.send(Out::Stderr { id: self.id, data })
    }

    fn end(&mut self, app_status: u32, stderr_used: bool) {
        let id = self.id;
        let _ = self.send(Out::Stdout {
            id,
            data: Bytes::new(),
        });
        if stderr_used {
            let _ = self.send(Out::Stderr {
                id,
                data: Bytes::new(),
            });
        }
        let _ = self.send(Out::EndRequest {
            id,
            app_status,
            protocol_status: ProtocolStatus::RequestComplete,
        });
    }
}

/// Receives one request's STDIN chunks from the connection's reader task.
pub struct BodyStream {
    rx: mpsc::Receiver<Bytes>,
}

impl BodyStream {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        BodyStream { rx }
    }
}

impl BodySource for BodyStream {
    fn next_chunk(&mut self) -> Option<Bytes> {
        self.rx.blocking_recv()
    }
}
