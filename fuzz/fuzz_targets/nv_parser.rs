//! Fuzz target: `NvParser`, the name-value stream parser, fed arbitrary
//! bytes split at arbitrary points.
//!
//! Input: bytes 0-1 the byte cap (0xFFxx: none), byte 2 the pair cap (0xFF:
//! none), byte 3 how many piece sizes follow (0..=15; 0 means one piece),
//! each next byte a piece size minus one (cycled); the rest is the stream.
//! Checks: no panic; the split does not change the result; memory stays in
//! proportion to the bytes received, whatever lengths the pairs declare; an
//! Ok result, encoded again with `encode_pair`, parses to the same `Params`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tfpm::fcgi::{encode_pair, NvError, NvParser, Params};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let max_total = match head[0] {
        0xFF => usize::MAX,
        _ => usize::from(u16::from_be_bytes([head[0], head[1]])),
    };
    let max_pairs = match head[2] {
        0xFF => usize::MAX,
        n => usize::from(n),
    };
    let count = usize::from(head[3] % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s) + 1).collect();

    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let split = parse(stream, &sizes, max_total, max_pairs);
    let grown = PEAK.load(Relaxed) - before;
    // Pending bytes, the pair list and the folding map: all bounded by the
    // input, never by a declared length (which can be 2^31 - 1).
    assert!(
        grown <= 64 * 1024 + 256 * stream.len(),
        "{grown} bytes allocated for a {}-byte stream",
        stream.len()
    );

    let whole = parse(stream, &[], max_total, max_pairs);
    match (&split, &whole) {
        // A stream over the byte cap fails at once when it comes in one
        // piece; in pieces, an earlier piece may first pass the pair cap.
        (Err(NvError::TooManyPairs), Err(NvError::TooLarge)) => {}
        _ => assert_eq!(split, whole, "the split changed the result"),
    }

    if let Ok(params) = whole {
        let mut again = BytesMut::new();
        for (name, value) in params.iter() {
            encode_pair(name, value, &mut again);
        }
        // Never longer, and never more pairs: duplicates are folded and
        // lengths take their shortest form.
        assert!(again.len() <= stream.len());
        let reparsed = parse(&again, &[], max_total, max_pairs);
        assert_eq!(reparsed, Ok(params), "encode + parse changed the params");
    }
});

/// Parses `stream` fed in pieces of `sizes` (cycled; empty: one piece),
/// stopping at the first error as a connection would.
fn parse(
    stream: &[u8],
    sizes: &[usize],
    max_total: usize,
    max_pairs: usize,
) -> Result<Params, NvError> {
    let mut parser = NvParser::with_limits(max_total, max_pairs);
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).min(rest.len());
        parser.feed(&rest[..size])?;
        rest = &rest[size..];
    }
    parser.finish()
}

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;
