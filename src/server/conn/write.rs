//! The connection's writer task: it sends the records that PHP threads and
//! the reader queue, gathering whatever is ready into one vectored write
//! (response bodies go out from PHP's own buffers, uncopied), and marks
//! each request ended as its END_REQUEST leaves.

use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, watch};

use super::super::metrics;
use super::SharedRef;
use crate::fcgi::codec::encode_segments;
use crate::fcgi::error::FcgiError;
use crate::fcgi::record::{Out, ProtocolStatus};

/// How the writer and the reader tell each other that the connection ends.
pub(super) struct Ends {
    /// The writer closed its side: the reader lingers, then stops.
    pub(super) closing: watch::Sender<bool>,
    /// The reader saw the peer go (or broke off): stop writing.
    pub(super) gone: watch::Receiver<bool>,
    /// The reader hands the connection over: write what is queued, then
    /// give the write half back.
    pub(super) handover: watch::Receiver<bool>,
}

/// Why the writer stopped without an error.
enum Stopped {
    Closing,
    HandOver,
}

/// Writes until the connection closes; returns the write half, untouched,
/// when the reader hands the connection over.
pub(super) async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    mut rx: mpsc::Receiver<Out>,
    shared: SharedRef,
    mut ends: Ends,
) -> Option<WriteHalf<S>> {
    let stopped = tokio::select! {
        result = write_records(&mut wr, &mut rx, &shared, &mut ends.handover) => result,
        _ = ends.gone.wait_for(|gone| *gone) => Ok(Stopped::Closing),
    };
    match stopped {
        Ok(Stopped::HandOver) => return Some(wr),
        Ok(Stopped::Closing) => {}
        Err(e) => tracing::debug!("connection write failed: {e}"),
    }
    let _ = wr.shutdown().await;
    let _ = ends.closing.send(true);
    // Dropping rx here makes every PHP thread still writing see a gone client.
    None
}

/// Stop gathering ready records into one write past this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// The most pieces handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Writes queued records, gathering whatever is ready into one vectored
/// write; response bodies go out from PHP's own buffers, uncopied. Returns
/// when a request without FCGI_KEEP_CONN has ended, or the queue closes,
/// or, once the queue is empty, when the connection is handed over.
async fn write_records<S: AsyncWrite>(
    wr: &mut WriteHalf<S>,
    rx: &mut mpsc::Receiver<Out>,
    shared: &SharedRef,
    handover: &mut watch::Receiver<bool>,
) -> Result<Stopped, FcgiError> {
    let mut scratch = BytesMut::new();
    let mut pieces = Vec::with_capacity(MAX_IOVECS);
    loop {
        let out = tokio::select! {
            biased;
            out = rx.recv() => match out {
                Some(out) => out,
                None => return Ok(Stopped::Closing),
            },
            _ = handover.wait_for(|h| *h) => return Ok(Stopped::HandOver),
        };
        let mut close = note_end(&out, shared);
        encode_segments(out, &mut scratch, &mut pieces)?;
        while pieces.iter().map(Bytes::len).sum::<usize>() < BATCH_BYTES {
            let Ok(more) = rx.try_recv() else { break };
            close |= note_end(&more, shared);
            encode_segments(more, &mut scratch, &mut pieces)?;
        }
        write_pieces(wr, &mut pieces).await?;
        if close {
            return Ok(Stopped::Closing);
        }
    }
}

/// Writes every piece, in order, with as few system calls as it can.
async fn write_pieces<W: AsyncWrite + Unpin>(
    wr: &mut W,
    pieces: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = pieces.len().saturating_sub(first).min(MAX_IOVECS);
        for (slot, piece) in slices.iter_mut().zip(&pieces[first..first + count]) {
            *slot = IoSlice::new(piece);
        }
        let mut written = wr.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        metrics::bytes_out(written);
        while written > 0 {
            let len = pieces[first].len();
            if written >= len {
                written -= len;
                first += 1;
            } else {
                pieces[first].advance(written);
                written = 0;
            }
        }
    }
    pieces.clear();
    Ok(())
}

/// Before an END_REQUEST goes out, its id becomes inactive, so the peer may
/// reuse it at once. Returns whether the connection should close after it.
fn note_end(out: &Out, shared: &SharedRef) -> bool {
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
    let mut guard = shared.lock();
    if guard.requests.remove(id).is_none() {
        return false;
    }
    let close = guard.state.end(*id, Instant::now());
    drop(guard);
    shared.ended.notify_waiters();
    close
}
