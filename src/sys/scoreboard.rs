//! The scoreboard: one small shared-memory file per worker process, where
//! each PHP thread writes the script it is running. The master reads it
//! after the worker dies, to log which scripts were in flight when it
//! crashed (a segfault leaves no other trace of them).
//!
//! It is an anonymous memory file (`memfd`) that the master creates and the
//! worker inherits. The worker maps it; the master only reads it with
//! `pread`, once the worker is gone. Each thread owns one fixed-size slot:
//! a 4-byte length (0 when idle) followed by the script's path, cut to fit.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per thread slot: the length word, then the path.
const SLOT: usize = 512;
const LEN: usize = 4;

/// A worker's view of its scoreboard: the mapped file.
pub struct Scoreboard {
    map: *mut u8,
    slots: usize,
    _file: File,
}

// SAFETY: the mapping lives as long as the Scoreboard; every write goes to
// one thread's own slot (see `enter`), and the length word is atomic.
unsafe impl Send for Scoreboard {}
// SAFETY: as above.
unsafe impl Sync for Scoreboard {}

/// Creates a scoreboard file for a worker with `slots` threads, for the
/// master; the worker gets the descriptor and calls [`Scoreboard::map`].
pub fn create(slots: usize) -> io::Result<File> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create only
    // reads it and returns a new descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"tfpm-scoreboard".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by no one else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len((slots.max(1) * SLOT) as u64)?;
    Ok(file)
}

/// The scripts a dead worker's threads were running, read from its file.
pub fn in_flight(file: &File) -> Vec<String> {
    let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut all = vec![0u8; len];
    if file.read_exact_at(&mut all, 0).is_err() {
        return Vec::new();
    }
    all.chunks_exact(SLOT).filter_map(slot_script).collect()
}

fn slot_script(slot: &[u8]) -> Option<String> {
    let n = u32::from_ne_bytes(slot[..LEN].try_into().ok()?) as usize;
    let path = slot.get(LEN..LEN + n).filter(|p| !p.is_empty())?;
    Some(String::from_utf8_lossy(path).into_owned())
}

impl std::fmt::Debug for Scoreboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scoreboard({} slots)", self.slots)
    }
}

impl Scoreboard {
    /// Maps an inherited scoreboard file, in the worker.
    pub fn map(file: File) -> io::Result<Scoreboard> {
        let len = file.metadata()?.len() as usize;
        if len < SLOT {
            return Err(io::Error::other("the scoreboard file is too small"));
        }
        // SAFETY: maps `len` bytes of a file we hold open, shared, with no
        // address hint; the result is checked for MAP_FAILED.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Scoreboard {
            map: map.cast(),
            slots: len / SLOT,
            _file: file,
        })
    }

    /// Records that thread `index` runs `script`. Each thread passes its
    /// own index, so no two threads write one slot (past the slot count,
    /// indexes wrap: a retired thread's slot may be shared, at worst
    /// naming a finished script).
    pub fn enter(&self, index: usize, script: &str) {
        let slot = self.slot(index);
        let bytes = &script.as_bytes()[..script.len().min(SLOT - LEN)];
        self.len_word(slot).store(0, Ordering::Relaxed);
        // SAFETY: `slot` is in bounds of the mapping (see `slot`), the copy
        // stays inside it (at most SLOT - LEN bytes after the length word),
        // and the source is a live slice that cannot overlap shared memory.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.add(slot + LEN), bytes.len())
        };
        self.len_word(slot)
            .store(bytes.len() as u32, Ordering::Release);
    }

    /// Records that thread `index` is idle.
    pub fn leave(&self, index: usize) {
        self.len_word(self.slot(index)).store(0, Ordering::Release);
    }

    fn slot(&self, index: usize) -> usize {
        (index % self.slots) * SLOT
    }

    fn len_word(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: `slot` is a multiple of SLOT inside the mapping, which is
        // page-aligned, so the word is aligned, in bounds and lives as long
        // as `self`; other processes only read it.
        unsafe { AtomicU32::from_ptr(self.map.add(slot).cast()) }
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference
        // into it outlives `self`.
        unsafe { libc::munmap(self.map.cast(), self.slots * SLOT) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_reads_what_threads_wrote() {
        let file = create(3).unwrap();
        let board = Scoreboard::map(file.try_clone().unwrap()).unwrap();
        board.enter(0, "/srv/a.php");
        board.enter(2, "/srv/c.php");
        board.enter(1, "/srv/b.php");
        board.leave(1);
        assert_eq!(in_flight(&file), vec!["/srv/a.php", "/srv/c.php"]);
        let long = "x".repeat(2000);
        board.enter(3, &long); // wraps to slot 0, cut to fit
        assert_eq!(in_flight(&file)[0].len(), SLOT - LEN);
    }
}
