//! Real FastCGI clients in front of tfpm: HAProxy, Apache httpd, lighttpd and
//! Caddy, all from Debian's packages (installed by `scripts/install-deps.sh`).
//!
//! [`Frontend::start`] fills in one of the commented configs in
//! `fcgi-tests/interop/` (placeholders such as `@PORT@`), writes it to a temp
//! directory that also holds the server's logs, and runs the server in the
//! foreground on a free port of 127.0.0.1. If the server loses the race for
//! the port, another one is tried. Readiness is a connect poll with a
//! deadline. [`Diagnose`] shows every log of the server; dropping a
//! [`Frontend`] stops it (SIGTERM, then SIGKILL).

use std::ffi::OsString;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::daemon::wait_or_kill;
use crate::nginx::free_port;
use crate::shared::Diagnose;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: usize = 5;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HAProxy's `fcgi-app` (multiplexing, GET_VALUES, ABORT_REQUEST).
    Haproxy,
    /// Apache httpd with mod_proxy_fcgi and mod_authnz_fcgi.
    Apache,
    /// lighttpd's mod_fastcgi.
    Lighttpd,
    /// Caddy's `php_fastcgi`.
    Caddy,
}

/// Where tfpm listens, as the frontend is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A running frontend. Stopped on drop.
pub struct Frontend {
    kind: Kind,
    child: Option<Child>,
    dir: TempDir,
    addr: SocketAddr,
}

/// Why one start attempt failed.
enum StartError {
    PortTaken,
    Failed(String),
}

impl Frontend {
    /// Starts `kind` on a free port, serving `docroot` and passing PHP to `upstream`.
    ///
    /// Apache takes TCP upstreams only: its children run as www-data when the
    /// tests run as root, and mod_authnz_fcgi speaks TCP only.
    pub fn start(kind: Kind, upstream: &Upstream, docroot: &Path) -> Frontend {
        let bin = binary(kind);
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let dir = server_dir(kind);
            let port = free_port();
            let config = render(
                &template(kind),
                &vars(kind, dir.path(), port, upstream, docroot),
            );
            fs::write(dir.path().join(config_name(kind)), config).expect("write config");
            match launch(kind, &bin, dir.path(), port) {
                Ok(child) => {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    return Frontend {
                        kind,
                        child: Some(child),
                        dir,
                        addr,
                    };
                }
                Err(StartError::PortTaken) => last = format!("port {port} taken"),
                Err(StartError::Failed(why)) => panic!("{kind:?} did not start: {why}"),
            }
        }
        panic!("{kind:?} did not start after {PORT_ATTEMPTS} ports: {last}")
    }

    /// The HTTP address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory holding the config and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated config.
    pub fn config(&self) -> String {
        fs::read_to_string(self.dir.path().join(config_name(self.kind))).unwrap_or_default()
    }

    /// Every log the server wrote so far, each under a heading.
    pub fn logs(&self) -> String {
        all_logs(self.kind, self.dir.path())
    }
}

impl Diagnose for Frontend {
    fn diagnose(&self) -> String {
        crate::tail(&self.logs(), 16_000).to_string()
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            wait_or_kill(&mut child, STOP_TIMEOUT);
        }
    }
}

/// The server's binary; panics if the package is missing (the tests never skip).
fn binary(kind: Kind) -> PathBuf {
    let (path, package) = match kind {
        Kind::Haproxy => ("/usr/sbin/haproxy", "haproxy"),
        Kind::Apache => ("/usr/sbin/apache2", "apache2"),
        Kind::Lighttpd => ("/usr/sbin/lighttpd", "lighttpd"),
        Kind::Caddy => ("/usr/bin/caddy", "caddy"),
    };
    assert!(
        Path::new(path).is_file(),
        "{path} not found: run scripts/install-deps.sh (apt-get install {package})"
    );
    PathBuf::from(path)
}

/// The template's file name in `fcgi-tests/interop/`, also the written config's name.
fn config_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Haproxy => "haproxy.cfg",
        Kind::Apache => "apache.conf",
        Kind::Lighttpd => "lighttpd.conf",
        Kind::Caddy => "Caddyfile",
    }
}

/// The logs a server writes into its directory (stderr.log is its stderr).
fn log_names(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Haproxy => &["stderr.log"],
        Kind::Apache => &["stderr.log", "error.log", "access.log"],
        Kind::Lighttpd => &["stderr.log", "error.log", "access.log"],
        Kind::Caddy => &["stderr.log", "caddy.log"],
    }
}

/// The command-line arguments that run the server in the foreground on `config`.
fn args(kind: Kind, config: &Path) -> Vec<OsString> {
    let words: &[&str] = match kind {
        Kind::Haproxy => &["-db", "-f"],
        Kind::Apache => &["-DFOREGROUND", "-f"],
        Kind::Lighttpd => &["-D", "-f"],
        Kind::Caddy => &["run", "--adapter", "caddyfile", "--config"],
    };
    let mut all: Vec<OsString> = words.iter().map(OsString::from).collect();
    all.push(config.as_os_str().to_owned());
    all
}

/// A fresh directory for one server; readable by all, for Apache's www-data children.
fn server_dir(kind: Kind) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let prefix = format!("tfpm-{}-", format!("{kind:?}").to_lowercase());
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

fn template(kind: Kind) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(config_name(kind));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The values of the template's placeholders.
fn vars(
    kind: Kind,
    dir: &Path,
    port: u16,
    upstream: &Upstream,
    docroot: &Path,
) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("DIR", dir.display().to_string()),
        ("PORT", port.to_string()),
        ("DOCROOT", docroot.display().to_string()),
    ];
    match kind {
        Kind::Lighttpd => vars.push(("FCGI_DEST", lighttpd_dest(upstream))),
        _ => vars.push(("UPSTREAM", upstream_text(kind, upstream))),
    }
    vars
}

/// The upstream in HAProxy's, Apache's or Caddy's syntax.
fn upstream_text(kind: Kind, upstream: &Upstream) -> String {
    match (kind, upstream) {
        (_, Upstream::Tcp(addr)) => addr.to_string(),
        (Kind::Apache, Upstream::Unix(path)) => {
            panic!(
                "the Apache frontend takes a TCP upstream, not {}",
                path.display()
            )
        }
        (Kind::Caddy, Upstream::Unix(path)) => format!("unix/{}", path.display()),
        (_, Upstream::Unix(path)) => path.display().to_string(),
    }
}

/// The address part of a lighttpd `fastcgi.server` entry.
fn lighttpd_dest(upstream: &Upstream) -> String {
    match upstream {
        Upstream::Tcp(addr) => {
            format!("\"host\" => \"{}\", \"port\" => {}", addr.ip(), addr.port())
        }
        Upstream::Unix(path) => format!("\"socket\" => \"{}\"", path.display()),
    }
}

/// Replaces each `@NAME@` of `vars`; panics if a placeholder is left.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in vars {
        text = text.replace(&format!("@{name}@"), value);
    }
    if let Some(left) = placeholder_in(&text) {
        panic!("placeholder {left} not filled in:\n{text}");
    }
    text
}

/// The first `@NAME@` (capitals and underscores) in `text`.
fn placeholder_in(text: &str) -> Option<&str> {
    let is_name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        let end = after.find('@')?;
        if is_name(&after[..end]) {
            return Some(&rest[start..start + end + 2]);
        }
        rest = after;
    }
    None
}

/// Spawns the server and waits until its port accepts connections.
fn launch(kind: Kind, bin: &Path, dir: &Path, port: u16) -> Result<Child, StartError> {
    let stderr = fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
    let stdout = stderr.try_clone().expect("clone stderr.log");
    let mut command = Command::new(bin);
    command
        .args(args(kind, &dir.join(config_name(kind))))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if kind == Kind::Caddy {
        // Caddy keeps its state under these; nothing may land in the real home.
        for name in ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] {
            command.env(name, dir);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| StartError::Failed(format!("spawn {}: {e}", bin.display())))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(start_error(kind, dir, &format!("exited with {status}")));
        }
        if Instant::now() >= deadline {
            wait_or_kill(&mut child, Duration::ZERO);
            let what = format!("not accepting on {addr} after {START_TIMEOUT:?}");
            return Err(start_error(kind, dir, &what));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Classifies a failed start from the server's logs.
fn start_error(kind: Kind, dir: &Path, what: &str) -> StartError {
    let logs = all_logs(kind, dir);
    if logs.to_lowercase().contains("address already in use") {
        return StartError::PortTaken;
    }
    let config = fs::read_to_string(dir.join(config_name(kind))).unwrap_or_default();
    StartError::Failed(format!("{what}\n{logs}\n--- config ---\n{config}"))
}

/// Each log of the server under a `--- name ---` heading.
fn all_logs(kind: Kind, dir: &Path) -> String {
    let read = |name: &&str| {
        let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
        format!("--- {kind:?} {name} ---\n{text}")
    };
    log_names(kind)
        .iter()
        .map(read)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_placeholders_and_finds_leftovers() {
        let vars = [("PORT", "80".to_string()), ("DIR", "/d".to_string())];
        assert_eq!(render("a @PORT@ @DIR@/x @PORT@", &vars), "a 80 /d/x 80");
        assert_eq!(placeholder_in("mail user@example.org"), None);
        assert_eq!(placeholder_in("x @a@ @UP_STREAM@ y"), Some("@UP_STREAM@"));
    }

    #[test]
    #[should_panic(expected = "placeholder @DOCROOT@ not filled in")]
    fn render_panics_on_a_leftover() {
        render("root @DOCROOT@", &[]);
    }

    #[test]
    fn every_template_is_filled() {
        let tcp = Upstream::Tcp("127.0.0.1:9000".parse().unwrap());
        for kind in [Kind::Haproxy, Kind::Apache, Kind::Lighttpd, Kind::Caddy] {
            let vars = vars(kind, Path::new("/d"), 8080, &tcp, Path::new("/srv"));
            let text = render(&template(kind), &vars);
            assert!(text.contains("8080") && text.contains("/srv"), "{kind:?}");
        }
    }

    #[test]
    fn upstream_syntax() {
        let unix = Upstream::Unix(PathBuf::from("/run/t.sock"));
        assert_eq!(upstream_text(Kind::Caddy, &unix), "unix//run/t.sock");
        assert_eq!(upstream_text(Kind::Haproxy, &unix), "/run/t.sock");
        assert_eq!(lighttpd_dest(&unix), "\"socket\" => \"/run/t.sock\"");
        let tcp = Upstream::Tcp("127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            lighttpd_dest(&tcp),
            "\"host\" => \"127.0.0.1\", \"port\" => 9000"
        );
    }

    /// Each server starts on its real config (tfpm need not run) and stops on drop.
    #[test]
    fn every_server_starts_and_stops() {
        let root = tempfile::tempdir().expect("temp dir");
        let upstream = Upstream::Tcp("127.0.0.1:9".parse().unwrap());
        for kind in [Kind::Haproxy, Kind::Apache, Kind::Lighttpd, Kind::Caddy] {
            let server = Frontend::start(kind, &upstream, root.path());
            assert!(TcpStream::connect(server.addr()).is_ok(), "{kind:?}");
        }
    }
}
