//! The buffers a PHP thread lays each request's params out in (the string
//! arena, the offsets, the C array PHP reads) and gathers its output in,
//! kept from one request to the next on the same thread, so that a request
//! allocates none of them; and how params are laid out in the arena.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

use super::ffi;
use crate::fcgi::Params;

/// (name offset, name len, value offset, value len) of one param.
pub(super) type Span = (usize, usize, usize, usize);

/// A buffer that grew past this many bytes (a request with huge params)
/// goes back to the allocator instead of being kept.
const KEEP_BYTES: usize = 64 * 1024;

/// One request's params buffers.
#[derive(Default)]
pub(super) struct Buffers {
    /// The params' names and values, each NUL-terminated.
    pub(super) arena: Vec<u8>,
    /// Where each param sits in `arena`.
    pub(super) spans: Vec<Span>,
    /// The params as PHP reads them, pointing into `arena`.
    pub(super) params: Vec<ffi::tfpm_param>,
}

thread_local! {
    static SPARE: RefCell<Buffers> = RefCell::new(Buffers::default());
    static SPARE_OUTPUT: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// This thread's output buffer, empty. Output handed on from it as
/// `Bytes` shares its memory; once the socket has taken that output, the
/// buffer's next use takes the memory back instead of allocating.
pub(super) fn take_output() -> BytesMut {
    SPARE_OUTPUT.with(|spare| std::mem::take(&mut *spare.borrow_mut()))
}

/// Keeps an output buffer for this thread's next request, unless it grew
/// past [`KEEP_BYTES`].
pub(super) fn give_back_output(mut buf: BytesMut) {
    if buf.capacity() > KEEP_BYTES {
        return;
    }
    buf.clear();
    let _ = SPARE_OUTPUT.try_with(|spare| *spare.borrow_mut() = buf);
}

impl Buffers {
    /// This thread's buffers, empty; new ones the first time.
    pub(super) fn take() -> Buffers {
        SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()))
    }

    /// Keeps them, emptied, for this thread's next request, unless one
    /// grew past [`KEEP_BYTES`].
    pub(super) fn give_back(mut self) {
        let bytes = [
            self.arena.capacity(),
            self.spans.capacity() * std::mem::size_of::<Span>(),
            self.params.capacity() * std::mem::size_of::<ffi::tfpm_param>(),
        ];
        if bytes.iter().any(|&b| b > KEEP_BYTES) {
            return;
        }
        self.arena.clear();
        self.spans.clear();
        self.params.clear();
        // A thread being torn down has no spare to fill: the buffers go.
        let _ = SPARE.try_with(|spare| *spare.borrow_mut() = self);
    }
}

/// The bytes the params take in the arena, NULs included.
pub(super) fn params_size(params: &Params) -> usize {
    params.iter().map(|(n, v)| n.len() + v.len() + 2).sum()
}

/// Appends `bytes` and a NUL; returns where they start.
pub(super) fn push_c(arena: &mut Vec<u8>, bytes: &[u8]) -> usize {
    let start = arena.len();
    arena.extend_from_slice(bytes);
    arena.push(0);
    start
}

/// Where the value of param `name` starts in the arena.
pub(super) fn find_value(arena: &[u8], spans: &[Span], name: &[u8]) -> Option<usize> {
    spans
        .iter()
        .find(|(at, len, _, _)| &arena[*at..*at + *len] == name)
        .map(|span| span.2)
}

/// Applies the path derivation's edits: a new value replaces the param in
/// place, `None` removes it, and a new name is appended.
pub(super) fn apply_edits(
    arena: &mut Vec<u8>,
    spans: &mut Vec<Span>,
    edits: &[(&'static [u8], Option<Bytes>)],
) {
    for (name, value) in edits {
        let at = spans
            .iter()
            .position(|(n, len, _, _)| &arena[*n..*n + *len] == *name);
        match (at, value) {
            (Some(i), Some(v)) => {
                spans[i].2 = push_c(arena, v);
                spans[i].3 = v.len();
            }
            (Some(i), None) => {
                spans.remove(i);
            }
            (None, Some(v)) => {
                let n = push_c(arena, name);
                let value_at = push_c(arena, v);
                spans.push((n, name.len(), value_at, v.len()));
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_its_buffers_back_empty() {
        let mut first = Buffers::take();
        first.arena.extend_from_slice(b"SCRIPT_NAME\0/index.php\0");
        first.spans.push((0, 11, 12, 10));
        let arena = first.arena.as_ptr();
        first.give_back();
        let second = Buffers::take();
        assert!(second.arena.is_empty() && second.spans.is_empty());
        assert_eq!(second.arena.as_ptr(), arena, "the same allocation");
        assert!(Buffers::take().arena.capacity() == 0, "taken: none spare");
    }

    #[test]
    fn a_huge_buffer_is_not_kept() {
        let mut big = Buffers::take();
        big.arena.reserve(KEEP_BYTES + 1);
        big.give_back();
        assert_eq!(Buffers::take().arena.capacity(), 0);
    }

    #[test]
    fn output_memory_comes_back_once_the_output_is_gone() {
        let mut out = take_output();
        out.extend_from_slice(b"Content-type: text/html\r\n\r\nHello");
        let memory = out.as_ptr();
        let sent = out.split().freeze();
        drop(sent); // written to the socket
        give_back_output(out);
        let mut next = take_output();
        assert!(next.is_empty());
        next.extend_from_slice(b"Status: 404");
        assert_eq!(
            next.as_ptr(),
            memory,
            "the same memory, not a new allocation"
        );
        give_back_output(BytesMut::with_capacity(KEEP_BYTES + 1));
        assert_eq!(take_output().capacity(), 0, "a huge buffer is not kept");
    }
}
