//! Handles a process inherits: the listening sockets systemd passes by
//! socket activation (fds 3 and up), and those a worker gets from its
//! master. Taking ownership of a raw file descriptor, and choosing which
//! descriptors a child inherits, are `unsafe` libc calls, so those steps
//! live here; what the descriptors mean is the server's business.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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
    let count = RawFd::try_from(count).unwrap_or(0);
    let fds: Vec<RawFd> = (FIRST_FD..FIRST_FD.saturating_add(count)).collect();
    take_listed_fds(&fds)
}

/// Takes ownership of the listed inherited descriptors (a worker's, named
/// by its master), marking them close-on-exec, with the same once-only
/// rule as [`take_inherited_fds`]. A descriptor that is not open gives
/// nothing, so the result may be shorter than the list.
pub fn take_listed_fds(fds: &[RawFd]) -> Vec<OwnedFd> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Vec::new();
    }
    fds.iter()
        .copied()
        .filter(|&fd| fd > 2)
        .filter_map(take_fd)
        .collect()
}

/// Sets whether `fd` survives exec, so that a child process started next
/// inherits it (true) or not (false).
pub fn set_inheritable(fd: BorrowedFd<'_>, inheritable: bool) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: `fd` is open for the borrow's lifetime; F_GETFD only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let flags = match inheritable {
        true => flags & !libc::FD_CLOEXEC,
        false => flags | libc::FD_CLOEXEC,
    };
    // SAFETY: as above; F_SETFD only changes the close-on-exec flag.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A descriptor watched for readability by tokio, without reading it: a
/// listening socket with a connection waiting, which someone else accepts.
pub struct Readiness(tokio::io::unix::AsyncFd<OwnedFd>);

impl Readiness {
    /// Must be called within the tokio runtime.
    pub fn new(fd: OwnedFd) -> std::io::Result<Readiness> {
        use tokio::io::{unix::AsyncFd, Interest};
        // SAFETY: the AsyncFd owns `fd`, an open descriptor that stays open
        // and refers to the same file until the AsyncFd drops it.
        let watched = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        watched.map(Readiness).map_err(std::io::Error::from)
    }

    /// Waits until the descriptor is readable.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.0.readable().await.map(|_| ())
    }
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Takes ownership of the log descriptor a worker's master passed (its
/// own stderr, for a worker whose stderr is a pipe), marking it
/// close-on-exec. Only the first call takes anything.
pub fn take_log_fd(fd: RawFd) -> Option<OwnedFd> {
    static LOG_TAKEN: AtomicBool = AtomicBool::new(false);
    if fd <= 2 || LOG_TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    take_fd(fd)
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
    // SAFETY: `fd` is open (checked above) and was passed to this process
    // for it to own: by the socket activation protocol (LISTEN_PID is this
    // process, checked by the caller) or by tfpm's master, which names the
    // worker's descriptors in its environment; the TAKEN guard makes sure no
    // other OwnedFd is ever made for it here (LOG_TAKEN for the log
    // descriptor, which is never among the listed ones), so it is closed once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends signal `sig` to process `pid` (a worker the caller started).
pub fn send_signal(pid: u32, sig: i32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    if pid <= 0 {
        return Err(std::io::Error::other("no such process"));
    }
    // SAFETY: kill has no memory effects; a positive pid names one process.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The time on CLOCK_MONOTONIC, as systemd's MONOTONIC_USEC wants it.
pub fn monotonic() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Asks the kernel to send this process SIGTERM when its parent (the
/// master) dies, so that no worker outlives a killed master. Returns
/// false if the parent is already gone.
pub fn die_with_parent(parent: u32) -> bool {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    // SAFETY: getppid has no preconditions.
    let now = unsafe { libc::getppid() };
    u32::try_from(now).is_ok_and(|p| p == parent)
}

/// A user's ids, from the system's user database (getpwnam_r).
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for the out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, `buf` is as long as we
    // say, and the strings it fills are not kept past it.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// A group's id, from the system's group database (getgrnam_r).
pub fn lookup_group(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: an all-zero group is a valid value for the out-parameter.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in lookup_user.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(grp.gr_gid)
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Drops root for `user` (and its supplementary groups) and `gid`, as
/// php-fpm's `user` and `group` do in a pool's process. Every thread of
/// the process changes (glibc applies set*id to all of them).
pub fn become_user(user: &str, uid: u32, gid: u32) -> std::io::Result<()> {
    let name = std::ffi::CString::new(user).map_err(std::io::Error::other)?;
    // SAFETY: plain system calls on ids and a NUL-terminated name.
    let failed = unsafe {
        libc::setgid(gid) != 0
            || libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setuid(uid) != 0
    };
    if failed {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets this process's limit of open files, soft and hard (php-fpm's
/// `rlimit_files`); the workers it starts inherit it.
pub fn set_open_files_limit(n: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: n as libc::rlim_t,
        rlim_max: n as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given, which lives on this stack.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The TCP header's flags byte, as a socket filter on a TCP socket sees
/// the segment (from its TCP header on).
const TCP_FLAGS_OFFSET: u32 = 13;
const TCP_SYN: u32 = 0x02;
const TCP_ACK: u32 = 0x10;

/// Makes a listening TCP socket drop new connection attempts (segments with
/// SYN and without ACK) while the handshakes already under way complete.
/// A stopping server then sweeps its backlog knowing that no connection can
/// land there after its last accept, to be reset by the close. The socket
/// is shared with every process that holds it, so this is for a whole
/// daemon's stop, never one worker's.
pub fn refuse_new_connections(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut program = [
        op(
            libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
            TCP_FLAGS_OFFSET,
            0,
            0,
        ),
        op(
            libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
            TCP_SYN | TCP_ACK,
            0,
            0,
        ),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, TCP_SYN, 0, 1),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, u32::MAX, 0, 0),
    ];
    let filter = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: setsockopt copies the program, which lives on this stack for
    // the call, into the kernel; `fd` is a socket this process holds open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(filter).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Undoes [`refuse_new_connections`]: the socket takes connections again
/// (a socket that systemd holds on to after this process stops).
pub fn take_new_connections(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let none: libc::c_int = 0;
    // SAFETY: setsockopt reads the int it is given, which lives on this
    // stack; `fd` is a socket this process holds open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            std::ptr::addr_of!(none).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the listen backlog of a listening socket (listen() again, which
/// Linux allows); a negative or zero value means the kernel's maximum.
pub fn set_backlog(fd: BorrowedFd<'_>, backlog: i32) -> std::io::Result<()> {
    let backlog = if backlog <= 0 {
        libc::SOMAXCONN.max(65535)
    } else {
        backlog
    };
    // SAFETY: `fd` is an open socket for the borrow; listen has no memory effects.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The local time zone's offset from UTC at `at`, in seconds east (from
/// localtime_r, which reads TZ and /etc/localtime).
pub fn utc_offset(at: std::time::SystemTime) -> i32 {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: an all-zero tm is a valid value for the out-parameter.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // thread-safe form and keeps no pointer to them.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff as i32
    } else {
        0
    }
}

/// The CPU time the calling thread has used so far: (user, system), from
/// getrusage(RUSAGE_THREAD).
pub fn thread_cpu_time() -> (std::time::Duration, std::time::Duration) {
    // SAFETY: an all-zero rusage is a valid value for the out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable for the call; RUSAGE_THREAD
    // reads the calling thread's counters only.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Default::default();
    }
    let time = |t: libc::timeval| {
        std::time::Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
    };
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// strftime(`format`) of Unix time `at` in the local time zone, as C's
/// strftime writes it into php-fpm's 128-byte buffer (empty when it does
/// not fit, or for a format with a NUL).
pub fn strftime_local(format: &[u8], at: i64) -> Vec<u8> {
    let Ok(format) = std::ffi::CString::new(format) else {
        return Vec::new();
    };
    let secs = at as libc::time_t;
    // SAFETY: an all-zero tm is a valid value for the out-parameter.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r keeps none.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return Vec::new();
    }
    let mut out = [0u8; 128];
    // SAFETY: `out` is writable for its length, `format` is NUL-terminated
    // and `tm` was filled by localtime_r; strftime writes at most out.len()
    // bytes and keeps no pointer.
    let n = unsafe { libc::strftime(out.as_mut_ptr().cast(), out.len(), format.as_ptr(), &tm) };
    out[..n].to_vec()
}

/// Puts `with` under `target`'s descriptor number (dup3), so that whoever
/// writes to that number (C code included) writes to `with` from now on.
pub fn replace_fd(target: BorrowedFd<'_>, with: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: both descriptors are open for their borrows; dup3 atomically
    // closes `target`'s old file and makes its number refer to `with`'s.
    let rc = unsafe { libc::dup3(with.as_raw_fd(), target.as_raw_fd(), libc::O_CLOEXEC) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes stderr (fd 2) refer to `with`'s file; unlike [`replace_fd`], it
/// stays open across exec, as stderr must.
pub fn replace_stderr(with: BorrowedFd<'_>) -> std::io::Result<()> {
    dup_onto(with, libc::STDERR_FILENO)
}

/// dup2: descriptor number `fd` (stdin, stdout or stderr) refers to
/// `with`'s file from now on, and survives exec.
fn dup_onto(with: BorrowedFd<'_>, fd: RawFd) -> std::io::Result<()> {
    // SAFETY: `with` is open for its borrow; dup2 only rebinds `fd`.
    if unsafe { libc::dup2(with.as_raw_fd(), fd) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Goes into the background as php-fpm's `daemonize = yes` does: the
/// process forks; the parent waits until the child reports through a pipe
/// (a byte: ready; end of file: it failed) and exits with 0 or 78; the
/// child starts a new session with stdin and stdout on /dev/null, and gets
/// the pipe's writing end. Must run before any thread exists.
pub fn daemonize() -> std::io::Result<std::fs::File> {
    use std::io::Read;
    let (read_end, write_end) = pipe()?;
    let (read_end, write_end) = (
        std::fs::File::from(read_end),
        std::fs::File::from(write_end),
    );
    // SAFETY: the caller guarantees no other thread exists, so the child
    // starts with a consistent copy of the whole process.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: setsid has no memory effects.
            unsafe { libc::setsid() };
            to_dev_null(&[0, 1])?;
            Ok(write_end)
        }
        _ => {
            drop(write_end);
            let mut byte = [0u8; 1];
            let ready = matches!((&read_end).read(&mut byte), Ok(1));
            // SAFETY: _exit ends the parent at once; it has nothing to flush.
            unsafe { libc::_exit(if ready { 0 } else { crate::exit_code::CONFIG }) }
        }
    }
}

/// Points descriptors `fds` at /dev/null.
fn to_dev_null(fds: &[RawFd]) -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for &fd in fds {
        dup_onto(null.as_fd(), fd)?;
    }
    Ok(())
}

/// Ends the process at once, without exit handlers or destructors, for when
/// PHP threads are still running and PHP cannot be shut down: library
/// clean-up run under them could crash the process on its way out.
pub fn exit_with_threads_running(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; it touches no Rust or PHP
    // state, so it is sound whatever other threads are doing.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_refusing_listener_keeps_its_backlog_and_takes_no_new_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let waiting = TcpStream::connect(addr).unwrap();
        refuse_new_connections(listener.as_fd()).unwrap();
        // The new attempt's SYN is dropped: no handshake, so no connection
        // that a close could reset. (The client would retry for a while.)
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(late.is_err(), "a new connection got through: {late:?}");
        // The one that waited in the backlog is still there to accept.
        let (mut accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), waiting.local_addr().unwrap());
        // It inherits the filter, and its traffic passes.
        std::io::Write::write_all(&mut &waiting, b"ping").unwrap();
        let mut got = [0; 4];
        std::io::Read::read_exact(&mut accepted, &mut got).unwrap();
        assert_eq!(&got, b"ping");
        listener.set_nonblocking(true).unwrap();
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        // Undone, it takes connections again.
        take_new_connections(listener.as_fd()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let again = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), again.local_addr().unwrap());
    }
}
