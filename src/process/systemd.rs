//! systemd integration: readiness and stop notices for `Type=notify`
//! services (`NOTIFY_SOCKET`), and the listening sockets of socket
//! activation (`LISTEN_FDS`, `LISTEN_PID`). Outside systemd both do nothing.

use std::io;
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

use crate::server::Listener;

/// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=...`, one per line) to the
/// service manager, if it asked for notices.
pub fn notify(state: &str) {
    let Ok(socket) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = notify_to(&socket, state) {
        tracing::warn!("cannot notify systemd at {socket}: {e}");
    }
}

/// How often the live STATUS line is refreshed.
pub const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends one datagram to `socket`: a path, or an abstract name after `@`.
fn notify_to(socket: &str, state: &str) -> io::Result<()> {
    let addr = match socket.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(socket)?,
    };
    let sender = UnixDatagram::unbound()?;
    sender.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// The listeners systemd passed by socket activation; empty when it passed
/// none (or passed them to another process).
pub fn activated_listeners() -> io::Result<Vec<Listener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let count = listen_fds(pid.as_deref(), fds.as_deref(), std::process::id());
    let fds = crate::sys::os::take_inherited_fds(count);
    fds.into_iter().map(listener_from).collect()
}

/// How many sockets were passed to the process `me`, by the environment.
fn listen_fds(pid: Option<&str>, fds: Option<&str>, me: u32) -> usize {
    if pid.and_then(|p| p.trim().parse::<u32>().ok()) != Some(me) {
        return 0;
    }
    fds.and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// An inherited listening socket, TCP or Unix.
pub(crate) fn listener_from(fd: OwnedFd) -> io::Result<Listener> {
    let tcp = std::net::TcpListener::from(fd);
    // local_addr only fails with a family that is not IP: a Unix socket.
    if tcp.local_addr().is_ok() {
        tcp.set_nonblocking(true)?;
        return Ok(Listener::Tcp(tokio::net::TcpListener::from_std(tcp)?));
    }
    let unix = std::os::unix::net::UnixListener::from(OwnedFd::from(tcp));
    unix.set_nonblocking(true)?;
    let addr = unix.local_addr()?;
    let path = match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(name)) => PathBuf::from(format!("@{}", String::from_utf8_lossy(name))),
        (None, None) => PathBuf::from("(unnamed)"),
    };
    let listener = tokio::net::UnixListener::from_std(unix)?;
    Ok(Listener::inherited_unix(listener, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_only_for_this_process() {
        assert_eq!(listen_fds(Some("42"), Some("2"), 42), 2);
        assert_eq!(listen_fds(Some("41"), Some("2"), 42), 0);
        assert_eq!(listen_fds(None, Some("2"), 42), 0);
        assert_eq!(listen_fds(Some("42"), None, 42), 0);
        assert_eq!(listen_fds(Some("42"), Some("x"), 42), 0);
    }

    #[test]
    fn notifies_a_path_and_an_abstract_socket() {
        let dir = std::env::temp_dir().join(format!("tfpm-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let by_path = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = by_path.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();

        let name = format!("tfpm-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_socket = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let n = abstract_socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
