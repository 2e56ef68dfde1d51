//! Deterministic byte patterns shared by the test scripts and the tests.
//!
//! `big.php` streams `mb` MiB as 64 KiB chunks; chunk `k` is the 8 characters
//! of `sprintf('%08x', k)` repeated 8192 times. [`BigCheck`] verifies such a
//! stream piece by piece, wherever the pieces are cut, so a 64 MiB body never
//! has to be held. [`bytes`] makes reproducible pseudo-random request bodies.

/// Size of one chunk written by big.php.
pub const CHUNK: usize = 64 * 1024;

/// Chunk `k` of big.php's output.
pub fn big_chunk(k: u64) -> Vec<u8> {
    format!("{k:08x}").repeat(CHUNK / 8).into_bytes()
}

/// The first `len` bytes of big.php's output.
pub fn big_body(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut k = 0;
    while out.len() < len {
        let chunk = big_chunk(k);
        let take = chunk.len().min(len - out.len());
        out.extend_from_slice(&chunk[..take]);
        k += 1;
    }
    out
}

/// Checks a stream against big.php's pattern as it arrives.
#[derive(Debug, Default)]
pub struct BigCheck {
    offset: u64,
    chunk_index: Option<u64>,
    chunk: Vec<u8>,
}

impl BigCheck {
    /// A check at offset 0.
    pub fn new() -> BigCheck {
        BigCheck::default()
    }

    /// Bytes checked so far.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// Whether nothing was checked yet.
    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Checks the next piece; the error names the first wrong offset.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), String> {
        while !piece.is_empty() {
            let k = self.offset / CHUNK as u64;
            if self.chunk_index != Some(k) {
                self.chunk = big_chunk(k);
                self.chunk_index = Some(k);
            }
            let pos = (self.offset % CHUNK as u64) as usize;
            let n = piece.len().min(CHUNK - pos);
            let expected = &self.chunk[pos..pos + n];
            if let Some(i) = piece[..n].iter().zip(expected).position(|(a, b)| a != b) {
                let at = self.offset + i as u64;
                return Err(format!(
                    "byte {at} is {:?}, expected {:?}",
                    piece[i] as char, expected[i] as char
                ));
            }
            self.offset += n as u64;
            piece = &piece[n..];
        }
        Ok(())
    }
}

/// `len` reproducible pseudo-random bytes (a 64-bit LCG seeded by `seed`).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.extend_from_slice(&(state ^ (state >> 29)).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_accepts_any_cut() {
        let body = big_body(3 * CHUNK + 100);
        assert_eq!(&body[CHUNK..CHUNK + 8], b"00000001");
        let mut check = BigCheck::new();
        for piece in body.chunks(7777) {
            check.feed(piece).unwrap();
        }
        assert_eq!(check.len(), body.len() as u64);
    }

    #[test]
    fn check_names_the_bad_offset() {
        let mut body = big_body(CHUNK + 16);
        body[CHUNK + 3] = b'x';
        let err = BigCheck::new().feed(&body).unwrap_err();
        assert!(err.starts_with(&format!("byte {}", CHUNK + 3)), "{err}");
    }

    #[test]
    fn bytes_are_reproducible() {
        assert_eq!(bytes(100, 1), bytes(100, 1));
        assert_ne!(bytes(100, 1), bytes(100, 2));
        assert_eq!(bytes(13, 5).len(), 13);
    }
}
