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
use crate::fcgi::codec::{encode_segments, FcgiError, Out};
use crate::fcgi::record::ProtocolStatus;

pub(super) async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    mut rx: mpsc::Receiver<Out>,
    shared: SharedRef,
    closing: watch::Sender<bool>,
    mut gone: watch::Receiver<bool>,
) {
    tokio::select! {
        result = write_records(&mut wr, &mut rx, &shared) => {
            if let Err(e) = result {
                tracing::debug!("connection write failed: {e}");
            }
        }
        _ = gone.wait_for(|gone| *gone) => {}
    }
    let _ = wr.shutdown().await;
    let _ = closing.send(true);
    // Dropping rx here makes every PHP thread still writing see a gone client.
}

/// Stop gathering ready records into one write past this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// The most pieces handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Writes queued records, gathering whatever is ready into one vectored
/// write; response bodies go out from PHP's own buffers, uncopied. Returns
/// when a request without FCGI_KEEP_CONN has ended, or the queue closes.
async fn write_records<S: AsyncWrite>(
    wr: &mut WriteHalf<S>,
    rx: &mut mpsc::Receiver<Out>,
    shared: &SharedRef,
) -> Result<(), FcgiError> {
    let mut scratch = BytesMut::new();
    let mut pieces = Vec::with_capacity(MAX_IOVECS);
    while let Some(out) = rx.recv().await {
        let mut close = note_end(&out, shared);
        encode_segments(out, &mut scratch, &mut pieces)?;
        while pieces.iter().map(Bytes::len).sum::<usize>() < BATCH_BYTES {
            let Ok(more) = rx.try_recv() else { break };
            close |= note_end(&more, shared);
            encode_segments(more, &mut scratch, &mut pieces)?;
        }
        write_pieces(wr, &mut pieces).await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
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
    let Some(entry) = guard.requests.remove(id) else {
        return false;
    };
    guard.state.end(*id);
    guard.quiet_since = Instant::now();
    let close = !entry.keep_conn && guard.state.active() == 0;
    drop(guard);
    shared.ended.notify_waiters();
    close
}
