//! Listen addresses as php-fpm spells them (`127.0.0.1:9000`, `[::1]:9000`,
//! `9000`, `/run/php.sock`) and the sockets bound to them.

use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::sys::fdpass::{Passed, SocketKind};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address and port (`127.0.0.1:9000`, `[::1]:9000`).
    Tcp(SocketAddr),
    /// A bare port: every address, IPv6 and IPv4.
    AnyPort(u16),
    /// The path of a Unix socket (`/run/php.sock`, or `unix:` and a path).
    Unix(PathBuf),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with('/') || s.starts_with("unix:") {
            let path = s.strip_prefix("unix:").unwrap_or(s);
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Ok(port) = s.parse::<u16>() {
            return Ok(ListenAddr::AnyPort(port));
        }
        s.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|_| bad_listen_address(s))
    }
}

/// Why `s` is not a listen address: php-fpm's message for a port that is
/// not 0 to 65535 (`invalid port value '69002'`), else what tfpm accepts.
fn bad_listen_address(s: &str) -> String {
    let port = match s.rsplit_once(':') {
        Some((_, port)) => port,
        None if s.bytes().all(|b| b.is_ascii_digit()) => s,
        None => "0",
    };
    if port.parse::<u16>().is_err() {
        return format!("invalid port value '{port}'");
    }
    format!("invalid listen address {s:?}: expected ADDR:PORT, [IPv6]:PORT, PORT or /path/to.sock")
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::AnyPort(p) => write!(f, "[::]:{p}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl ListenAddr {
    /// The address as a php-fpm config spells it (`9000`, `127.0.0.1:9000`,
    /// `/run/php.sock`), for php-fpm's messages.
    pub fn as_configured(&self) -> String {
        match self {
            ListenAddr::Tcp(a) => a.to_string(),
            ListenAddr::AnyPort(p) => p.to_string(),
            ListenAddr::Unix(p) => p.display().to_string(),
        }
    }
}

/// A bound listening socket.
pub enum Listener {
    /// A TCP socket.
    Tcp(TcpListener),
    /// A Unix socket.
    Unix {
        /// The listening socket.
        listener: UnixListener,
        /// The path of its socket file.
        path: PathBuf,
        /// Whether the socket file is ours to remove at exit (not when
        /// systemd made it, by socket activation).
        owned: bool,
    },
}

impl Listener {
    /// A Unix socket inherited from systemd: its file is left alone at exit.
    pub fn inherited_unix(listener: UnixListener, path: PathBuf) -> Listener {
        Listener::Unix {
            listener,
            path,
            owned: false,
        }
    }

    /// Binds a socket to `addr`. A bare port tries `::` first and falls
    /// back to `0.0.0.0`; a Unix socket replaces a stale file at its path
    /// and gets mode 0660, php-fpm's default `listen.mode`.
    pub async fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::AnyPort(p) => {
                let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, *p));
                match TcpListener::bind(any6).await {
                    Ok(l) => Ok(Listener::Tcp(l)),
                    Err(_) => {
                        tracing::info!("Failed implicitly binding to ::, retrying with 0.0.0.0");
                        Ok(Listener::Tcp(TcpListener::bind(("0.0.0.0", *p)).await?))
                    }
                }
            }
            ListenAddr::Unix(path) => bind_unix(path),
        }
    }

    /// The bound address, with the real port when port 0 was asked for.
    pub fn addr(&self) -> ListenAddr {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => ListenAddr::Tcp(a),
                Err(_) => ListenAddr::AnyPort(0),
            },
            Listener::Unix { path, .. } => ListenAddr::Unix(path.clone()),
        }
    }

    /// Whether this socket is the one `want` asks for (a reload keeps it).
    pub fn serves(&self, want: &ListenAddr) -> bool {
        match (self.addr(), want) {
            (ListenAddr::Tcp(have), ListenAddr::AnyPort(port)) => {
                have.ip().is_unspecified() && have.port() == *port
            }
            // Port 0 took whatever port it was given; the same again.
            (ListenAddr::Tcp(have), ListenAddr::Tcp(want)) if want.port() == 0 => {
                have.ip() == want.ip()
            }
            (have, want) => have == *want,
        }
    }

    /// Waits for the next connection; TCP connections get TCP_NODELAY.
    pub async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Listener::Unix { listener, .. } => Ok(Stream::Unix(listener.accept().await?.0)),
        }
    }

    /// Accepts, without waiting, a connection already in the listen
    /// backlog; None when there is none (or on an error). A stopping server
    /// sweeps the backlog with this before it closes the socket, since the
    /// kernel resets connections left in it.
    pub fn accept_pending(&self) -> Option<Stream> {
        let fd = self.as_fd().try_clone_to_owned().ok()?;
        match self {
            Listener::Tcp(_) => {
                let (s, _) = std::net::TcpListener::from(fd).accept().ok()?;
                s.set_nonblocking(true).ok()?;
                let s = TcpStream::from_std(s).ok()?;
                let _ = s.set_nodelay(true);
                Some(Stream::Tcp(s))
            }
            Listener::Unix { .. } => {
                let (s, _) = std::os::unix::net::UnixListener::from(fd).accept().ok()?;
                s.set_nonblocking(true).ok()?;
                Some(Stream::Unix(UnixStream::from_std(s).ok()?))
            }
        }
    }

    /// For a daemon's stop: a TCP socket stops taking new connections (new
    /// attempts are dropped, and the client retries) while what its backlog
    /// holds stays there to be swept. Unix sockets lose their file instead
    /// ([`Listener::cleanup`]).
    pub fn refuse_new_connections(&self) {
        if let Listener::Tcp(l) = self {
            if let Err(e) = crate::sys::os::refuse_new_connections(l.as_fd()) {
                tracing::warn!(listener = %self.addr(), "cannot hold new connections off while stopping: {e}");
            }
        }
    }

    /// Undoes [`Listener::refuse_new_connections`], for a socket that lives
    /// on after this process (systemd's, by socket activation).
    pub fn take_new_connections(&self) {
        if let Listener::Tcp(l) = self {
            let _ = crate::sys::os::take_new_connections(l.as_fd());
        }
    }

    /// Removes the socket file of a Unix listener.
    pub fn cleanup(&self) {
        if let Listener::Unix {
            path, owned: true, ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_unix(path: &PathBuf) -> io::Result<Listener> {
    // A stale socket from a previous run would make bind fail, as in php-fpm.
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    // php-fpm's default listen.mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(Listener::Unix {
        listener,
        path: path.clone(),
        owned: true,
    })
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix { listener, .. } => listener.as_fd(),
        }
    }
}

/// An accepted connection, TCP or Unix.
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix socket connection.
    Unix(UnixStream),
}

impl Stream {
    /// The connection as a socket to pass to another process, with the
    /// input read from it that nobody handled yet.
    pub fn into_passed(self, buffered: Vec<u8>) -> io::Result<Passed> {
        Ok(match self {
            Stream::Tcp(s) => Passed {
                fd: s.into_std()?.into(),
                kind: SocketKind::Tcp,
                buffered,
            },
            Stream::Unix(s) => Passed {
                fd: s.into_std()?.into(),
                kind: SocketKind::Unix,
                buffered,
            },
        })
    }

    /// A connection another process passed (must run within tokio).
    pub fn from_passed(fd: std::os::fd::OwnedFd, kind: SocketKind) -> io::Result<Stream> {
        Ok(match kind {
            SocketKind::Tcp => {
                let s = std::net::TcpStream::from(fd);
                s.set_nonblocking(true)?;
                Stream::Tcp(TcpStream::from_std(s)?)
            }
            SocketKind::Unix => {
                let s = std::os::unix::net::UnixStream::from(fd);
                s.set_nonblocking(true)?;
                Stream::Unix(UnixStream::from_std(s)?)
            }
        })
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_php_fpm_listen_forms() {
        assert_eq!(
            "127.0.0.1:9000".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:9000".parse(),
            Ok(ListenAddr::Tcp("[::1]:9000".parse().unwrap()))
        );
        assert_eq!("9000".parse(), Ok(ListenAddr::AnyPort(9000)));
        assert_eq!(
            "/run/php.sock".parse(),
            Ok(ListenAddr::Unix("/run/php.sock".into()))
        );
        assert_eq!(
            "unix:/run/php.sock".parse(),
            Ok(ListenAddr::Unix("/run/php.sock".into()))
        );
        assert!("localhost:x".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn out_of_range_ports_as_php_fpm_says() {
        let error = |s: &str| s.parse::<ListenAddr>().unwrap_err();
        assert_eq!(error("127.0.0.1:69002"), "invalid port value '69002'");
        assert_eq!(error("[::1]:65536"), "invalid port value '65536'");
        assert_eq!(error("69002"), "invalid port value '69002'");
        assert_eq!(error("localhost:x"), "invalid port value 'x'");
        assert!(error("localhost:9000").starts_with("invalid listen address"));
    }
}
