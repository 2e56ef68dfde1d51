//! Passing a live connection to another process: its socket travels as
//! SCM_RIGHTS ancillary data on a `SOCK_SEQPACKET` socket pair, with the
//! bytes already read from it that nobody handled yet. One message is one
//! connection, so a message never arrives half.
//!
//! ```text
//! [kind: b'T' (TCP) | b'U' (Unix)] [buffered bytes ...]  + one descriptor
//! ```

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The most bytes a passed connection may carry (unread input beyond
/// this stays with the sender, which serves it first).
pub const MAX_BUFFERED: usize = 64 * 1024;

/// What kind of socket a passed connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// A TCP socket (IPv4 or IPv6).
    Tcp,
    /// A Unix domain socket.
    Unix,
}

/// A connection on its way to another process.
#[derive(Debug)]
pub struct Passed {
    /// The connected socket.
    pub fd: OwnedFd,
    /// What kind of socket `fd` is.
    pub kind: SocketKind,
    /// Input read from the socket and not handled yet: the receiver reads
    /// these before the socket.
    pub buffered: Vec<u8>,
}

/// A socket pair for passing connections, both ends close-on-exec.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a valid array of two ints for socketpair to fill.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both are fresh descriptors owned by no one else.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A whole message must fit in the send buffer.
    for fd in [&pair.0, &pair.1] {
        set_int_option(
            fd.as_raw_fd(),
            libc::SO_SNDBUF,
            4 * MAX_BUFFERED as libc::c_int,
        )?;
    }
    Ok(pair)
}

/// One end of a pair from [`pair`], on the tokio reactor.
pub struct Channel(AsyncFd<OwnedFd>);

impl Channel {
    /// Must be called within the tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Channel> {
        set_nonblocking(fd.as_raw_fd())?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: the AsyncFd owns `fd`, an open descriptor that stays open
        // and refers to the same socket until the AsyncFd drops it.
        let watched = unsafe { AsyncFd::register_with_interest(fd, interest) };
        watched.map(Channel).map_err(io::Error::from)
    }

    /// Sends a connection; the socket is closed here once it is on its way
    /// (the receiver holds its own copy).
    pub async fn send(&self, conn: Passed) -> io::Result<()> {
        if conn.buffered.len() > MAX_BUFFERED {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too much buffered input",
            ));
        }
        let mut message = Vec::with_capacity(1 + conn.buffered.len());
        message.push(match conn.kind {
            SocketKind::Tcp => b'T',
            SocketKind::Unix => b'U',
        });
        message.extend_from_slice(&conn.buffered);
        loop {
            let mut guard = self.0.writable().await?;
            let sent =
                guard.try_io(|fd| send_message(fd.as_raw_fd(), &message, conn.fd.as_raw_fd()));
            match sent {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The next connection; None once the other end is closed. A message
    /// that is not a connection is an `InvalidData` error, and the channel
    /// stays usable.
    pub async fn recv(&self) -> io::Result<Option<Passed>> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| recv_message(fd.as_raw_fd())) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

fn send_message(fd: RawFd, data: &[u8], pass: RawFd) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // u64s keep the control buffer aligned as a cmsghdr must be.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    debug_assert!(space <= size_of::<[u64; 4]>());
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: msg_control points at `space` zeroed, aligned bytes, room for
    // one header and one descriptor, so the first header is in bounds, and
    // CMSG_DATA points inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), pass);
    }
    // SAFETY: msg and everything it points to (iov, data, control) outlive the call.
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv_message(fd: RawFd) -> io::Result<Option<Passed>> {
    let mut data = vec![0u8; 1 + MAX_BUFFERED];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: msg points at buffers that outlive the call, of the sizes given.
    let read = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    let fds = received_fds(&msg);
    if read == 0 && fds.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("passed connection: {why}"),
        )
    };
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(bad("message cut short"));
    }
    let mut fds = fds.into_iter();
    let (Some(fd), None) = (fds.next(), fds.next()) else {
        return Err(bad("not exactly one descriptor"));
    };
    data.truncate(read as usize);
    let kind = match data.first() {
        Some(b'T') => SocketKind::Tcp,
        Some(b'U') => SocketKind::Unix,
        _ => return Err(bad("unknown socket kind")),
    };
    data.remove(0);
    Ok(Some(Passed {
        fd,
        kind,
        buffered: data,
    }))
}

/// The descriptors a received message carries, owned (so that any this
/// side does not want are closed).
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; the CMSG_* macros walk its
    // control buffer within msg_controllen, and each SCM_RIGHTS header holds
    // (cmsg_len - CMSG_LEN(0)) / 4 descriptors that the kernel installed in
    // this process for us to own.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len as usize - header) / size_of::<RawFd>();
                let first = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(first.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}

/// Whether the peer of connection `fd` has closed it (or it failed), with
/// nothing left to read: a held idle connection that is no longer worth
/// passing on. Never blocks.
pub fn peer_closed(fd: &OwnedFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `fd` is open for the borrow; recv writes at most one byte into `byte`.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock,
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL only read and set the flags of an open descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn set_int_option(fd: RawFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid int for the call's duration, its size given.
    let done = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test]
    async fn a_connection_and_its_buffered_bytes_arrive_whole() {
        let (a, b) = pair().unwrap();
        let (a, b) = (Channel::new(a).unwrap(), Channel::new(b).unwrap());
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let buffered = vec![7u8; MAX_BUFFERED];
        a.send(Passed {
            fd: theirs.into(),
            kind: SocketKind::Unix,
            buffered: buffered.clone(),
        })
        .await
        .unwrap();
        let got = b.recv().await.unwrap().expect("a connection");
        assert_eq!(got.kind, SocketKind::Unix);
        assert_eq!(got.buffered, buffered);
        // The passed socket is the same connection.
        let mut passed = std::os::unix::net::UnixStream::from(got.fd);
        ours.write_all(b"ping").unwrap();
        let mut word = [0u8; 4];
        passed.set_nonblocking(false).unwrap();
        passed.read_exact(&mut word).unwrap();
        assert_eq!(&word, b"ping");
        assert!(!peer_closed(&passed.try_clone().unwrap().into()));
        drop(ours);
        assert!(peer_closed(&passed.into()));
    }

    #[tokio::test]
    async fn too_much_is_refused_and_a_closed_end_reads_as_none() {
        let (a, b) = pair().unwrap();
        let (a, b) = (Channel::new(a).unwrap(), Channel::new(b).unwrap());
        let (_ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let too_much = Passed {
            fd: theirs.into(),
            kind: SocketKind::Tcp,
            buffered: vec![0; MAX_BUFFERED + 1],
        };
        assert!(a.send(too_much).await.is_err());
        drop(a);
        assert!(b.recv().await.unwrap().is_none());
    }
}
