//! Handles the process inherits from its service manager: the listening
//! sockets systemd passes by socket activation (fds 3 and up). Taking
//! ownership of a raw file descriptor is `unsafe`, so that one step lives
//! here; reading `LISTEN_FDS` and `LISTEN_PID` is the server's business.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
const FIRST_FD: RawFd = 3;

/// Whether the inherited descriptors were taken already.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of the `count` descriptors systemd passed, from fd 3 on,
/// and marks them close-on-exec so that programs PHP starts do not inherit
/// them. Only the first call takes anything; later calls, and descriptors
/// that are not open, give nothing.
pub fn take_inherited_fds(count: usize) -> Vec<OwnedFd> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Vec::new();
    }
    let count = RawFd::try_from(count).unwrap_or(0);
    (FIRST_FD..FIRST_FD.saturating_add(count))
        .filter_map(take_fd)
        .collect()
}

fn take_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: fcntl on any integer is sound: a descriptor that is not open
    // gives -1 (EBADF) and nothing else happens.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: as above; it only sets the close-on-exec flag of `fd`.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: `fd` is open (checked above) and, by the socket activation
    // protocol (LISTEN_PID is this process, checked by the caller), was
    // passed to this process for it to own; the TAKEN guard makes sure no
    // other OwnedFd is ever made for it here, so it is closed once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
