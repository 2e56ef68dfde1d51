//! The connection's writer task: it writes what the outlet queued for it
//! (records the socket did not take at once, and whatever was made while
//! something was queued), gathering what is ready into one vectored write.
//! The records come encoded, their END_REQUESTs already noted.

use std::io::IoSlice;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, watch};

use super::super::metrics;
use super::outlet::{consume, Outlet, Queued, MAX_IOVECS};

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
    mut rx: mpsc::Receiver<Queued>,
    outlet: Arc<Outlet>,
    mut ends: Ends,
) -> Option<WriteHalf<S>> {
    let stopped = tokio::select! {
        // A gone peer comes first: nothing queued after it is written.
        biased;
        _ = ends.gone.wait_for(|gone| *gone) => Ok(Stopped::Closing),
        result = write_queued(&mut wr, &mut rx, &outlet, &mut ends.handover) => result,
    };
    match stopped {
        Ok(Stopped::HandOver) => return Some(wr),
        Ok(Stopped::Closing) => {}
        Err(e) => tracing::debug!("connection write failed: {e}"),
    }
    outlet.close();
    let _ = wr.shutdown().await;
    let _ = ends.closing.send(true);
    // Dropping rx here makes every PHP thread still writing see a gone client.
    None
}

/// Stop gathering ready items into one write past this many bytes.
const BATCH_BYTES: usize = 256 * 1024;

/// Writes queued items, gathering whatever is ready into one vectored
/// write. Returns when an item ends the connection, or the queue closes,
/// or, once nothing is queued, when the connection is handed over.
async fn write_queued<S: AsyncWrite>(
    wr: &mut WriteHalf<S>,
    rx: &mut mpsc::Receiver<Queued>,
    outlet: &Outlet,
    handover: &mut watch::Receiver<bool>,
) -> std::io::Result<Stopped> {
    let mut pieces = Vec::with_capacity(MAX_IOVECS);
    loop {
        let item = tokio::select! {
            biased;
            item = rx.recv() => Some(item),
            _ = handover.wait_for(|h| *h) => None,
        };
        let item = match item {
            Some(item) => item,
            None if outlet.close_if_idle() => return Ok(Stopped::HandOver),
            // Something is being queued: it goes out first.
            None => rx.recv().await,
        };
        let Some(mut item) = item else {
            return Ok(Stopped::Closing);
        };
        let mut items = 1;
        let mut close = item.close;
        pieces.append(&mut item.pieces);
        while !close && pieces.iter().map(Bytes::len).sum::<usize>() < BATCH_BYTES {
            let Ok(mut more) = rx.try_recv() else { break };
            items += 1;
            close |= more.close;
            pieces.append(&mut more.pieces);
        }
        write_pieces(wr, &mut pieces).await?;
        outlet.written(items);
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
        let written = wr.write_vectored(&slices[..count]).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        metrics::bytes_out(written);
        first += consume(&mut pieces[first..], written);
    }
    pieces.clear();
    Ok(())
}
