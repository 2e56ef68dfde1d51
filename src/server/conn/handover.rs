//! A connection's side of a handover: when a retiring worker passes a kept
//! connection on, the input it read and did not handle goes with the
//! socket ([`unread`]), and the worker that adopts it reads those bytes
//! before the socket's own ([`Prefixed`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::FramedRead;

use crate::fcgi::codec::RecordCodec;
use crate::fcgi::record::HEADER_LEN;
use crate::sys::fdpass::MAX_BUFFERED;

/// A reader that gives `head` first, then what `inner` reads.
pub(super) struct Prefixed<R> {
    head: Bytes,
    inner: R,
}

impl<R> Prefixed<R> {
    pub(super) fn new(head: Bytes, inner: R) -> Self {
        Prefixed { head, inner }
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Prefixed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.head.has_remaining() {
            let n = self.head.len().min(buf.remaining());
            buf.put_slice(&self.head[..n]);
            self.head.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// The reader stack of a connection: counted, after any adopted input.
pub(super) type Frames<R> = FramedRead<super::Counted<Prefixed<R>>, RecordCodec>;

/// Whether the input read and not handled yet is small enough to travel
/// with the socket.
pub(super) fn fits<R>(frames: &Frames<R>) -> bool {
    let head = frames.get_ref().0.head.len();
    HEADER_LEN + frames.read_buffer().len() + head <= MAX_BUFFERED
}

/// Takes the reader apart: the socket's read half and, in order, every
/// byte read from the connection that no record has been made of yet.
pub(super) fn unread<R>(frames: Frames<R>) -> (R, Vec<u8>) {
    let mut parts = frames.into_parts();
    let mut bytes = parts.codec.take_unread(&mut parts.read_buf);
    let Prefixed { head, inner } = parts.io.0;
    bytes.extend_from_slice(&head);
    (inner, bytes.to_vec())
}
