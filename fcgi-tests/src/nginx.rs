//! Running the Debian nginx in front of tfpm, with a throw-away configuration.
//!
//! [`Nginx::start`] writes a temp directory holding `nginx.conf` (foreground,
//! one worker, every path inside the directory), symlinks `fastcgi.conf`,
//! `fastcgi_params`, `snippets/` and `mime.types` from `/etc/nginx` next to
//! it (nginx resolves `include` relative to the main config's directory),
//! and includes the repository's `nginx-conf/tfpm-php.conf` unchanged. The
//! listen port is a free one found by binding port 0; if nginx loses the race
//! for it, another port is tried. Readiness is a connect poll with a deadline.
//! [`Nginx::error_log`] (or [`Diagnose`]) shows what nginx logged, such as
//! `FastCGI sent in stderr` lines.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::daemon::wait_or_kill;
use crate::shared::Diagnose;

const NGINX_BIN: &str = "/usr/sbin/nginx";
const ETC_NGINX: &str = "/etc/nginx";
const LINKED: [&str; 4] = ["fastcgi.conf", "fastcgi_params", "snippets", "mime.types"];
const TEMP_DIRS: [&str; 5] = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"];
const START_TIMEOUT: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 5;

/// A running nginx. Stopped on drop: SIGQUIT, then SIGTERM, then SIGKILL, 5 s apart.
pub struct Nginx {
    child: Option<Child>,
    dir: TempDir,
    addr: SocketAddr,
}

/// Why one start attempt failed.
enum StartError {
    PortTaken,
    Failed(String),
}

impl Nginx {
    /// Starts nginx proxying PHP to `upstream` (`127.0.0.1:PORT` or `unix:/path`),
    /// serving `docroot`, with `extra_server_conf` appended inside the `server` block.
    pub fn start(upstream: &str, docroot: &Path, extra_server_conf: &str) -> Nginx {
        let bin = nginx_bin();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("tfpm-nginx-")
                .tempdir()
                .expect("temp dir");
            let port = free_port();
            write_config(dir.path(), upstream, docroot, extra_server_conf, port);
            match launch(&bin, dir.path(), port) {
                Ok(child) => {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    return Nginx {
                        child: Some(child),
                        dir,
                        addr,
                    };
                }
                Err(StartError::PortTaken) => last = format!("port {port} taken"),
                Err(StartError::Failed(why)) => panic!("nginx did not start: {why}"),
            }
        }
        panic!("nginx did not start after {PORT_ATTEMPTS} ports: {last}")
    }

    /// The address nginx listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config directory (nginx.conf, logs, temp paths).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The contents of nginx's error.log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The error.log lines of level error or worse, other than PHP's stderr
    /// passed on (`FastCGI sent in stderr`): `upstream prematurely closed
    /// connection`, `upstream sent invalid header` and the like.
    pub fn errors(&self) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| {
                ["[error]", "[crit]", "[alert]", "[emerg]"]
                    .iter()
                    .any(|level| l.contains(level))
            })
            .filter(|l| !l.contains("FastCGI sent in stderr"))
            .map(str::to_string)
            .collect()
    }

    /// The generated nginx.conf.
    pub fn config(&self) -> String {
        fs::read_to_string(self.dir.path().join("nginx.conf")).unwrap_or_default()
    }
}

impl Diagnose for Nginx {
    fn diagnose(&self) -> String {
        format!(
            "--- nginx error.log (tail) ---\n{}",
            crate::tail(&self.error_log(), 16_000)
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        // Graceful, then fast: a SIGKILLed master would leave its worker running.
        let _ = kill(pid, Signal::SIGQUIT);
        if let Ok(Some(_)) = wait_with_deadline(&mut child, Duration::from_secs(5)) {
            return;
        }
        let _ = kill(pid, Signal::SIGTERM);
        wait_or_kill(&mut child, Duration::from_secs(5));
    }
}

/// Waits up to `timeout` for `child` to exit.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait()? {
            Some(status) => return Ok(Some(status)),
            None if Instant::now() >= deadline => return Ok(None),
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The nginx binary: `$NGINX`, else /usr/sbin/nginx. Panics with an install hint if missing.
pub fn nginx_bin() -> PathBuf {
    let bin = std::env::var_os("NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(NGINX_BIN));
    assert!(
        bin.is_file(),
        "nginx not found at {} (apt-get install nginx, or set NGINX=/path/to/nginx)",
        bin.display()
    );
    assert!(Path::new(ETC_NGINX).join("snippets/fastcgi-php.conf").is_file(),
        "{ETC_NGINX}/snippets/fastcgi-php.conf missing: the tests need the Debian nginx package's config files");
    bin
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Spawns nginx and waits until its port accepts connections.
fn launch(bin: &Path, dir: &Path, port: u16) -> Result<Child, StartError> {
    let stderr = fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| StartError::Failed(format!("spawn {}: {e}", bin.display())))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(exit_reason(dir, &format!("exited with {status}")));
        }
        if Instant::now() >= deadline {
            wait_or_kill(&mut child, Duration::ZERO);
            return Err(exit_reason(
                dir,
                &format!("not accepting on {addr} after {START_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Classifies a failed start from nginx's stderr and error log.
fn exit_reason(dir: &Path, what: &str) -> StartError {
    let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let error_log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    if stderr.contains("Address already in use") || error_log.contains("Address already in use") {
        return StartError::PortTaken;
    }
    let config = fs::read_to_string(dir.join("nginx.conf")).unwrap_or_default();
    StartError::Failed(format!(
        "{what}\n--- stderr ---\n{stderr}\n--- error.log ---\n{error_log}\n--- nginx.conf ---\n{config}"
    ))
}

/// Writes nginx.conf, the temp directories and the links to /etc/nginx into `dir`.
fn write_config(dir: &Path, upstream: &str, docroot: &Path, extra: &str, port: u16) {
    for name in LINKED {
        std::os::unix::fs::symlink(Path::new(ETC_NGINX).join(name), dir.join(name))
            .unwrap_or_else(|e| panic!("symlink {name}: {e}"));
    }
    for name in TEMP_DIRS {
        fs::create_dir(dir.join(format!("{name}_temp"))).expect("create temp path");
    }
    let conf = render_config(dir, upstream, docroot, extra, port);
    fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
}

/// The whole nginx.conf.
pub fn render_config(dir: &Path, upstream: &str, docroot: &Path, extra: &str, port: u16) -> String {
    let d = dir.display();
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let snippet = crate::repo_root().join("nginx-conf").join("tfpm-php.conf");
    let temps: String = TEMP_DIRS
        .iter()
        .map(|t| format!("    {t}_temp_path {d}/{t}_temp;\n"))
        .collect();
    format!(
        "daemon off;
master_process on;
worker_processes 1;
{user}pid {d}/nginx.pid;
error_log {d}/error.log notice;
worker_rlimit_nofile 16384;

events {{
    worker_connections 4096;
}}

http {{
    include mime.types;
    default_type application/octet-stream;
    access_log {d}/access.log;
{temps}    client_max_body_size 64m;
    keepalive_requests 100000;

    upstream tfpm {{
        server {upstream};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name localhost;
        root {root};
        index index.php;
        include {snippet};
{extra}
    }}
}}
",
        root = docroot.display(),
        snippet = snippet.display(),
    )
}

/// Whether this process runs as root (nginx then needs `user root;` to read anything we can).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_extra_config_and_stops() {
        let root = tempfile::tempdir().expect("temp dir");
        fs::write(root.path().join("static.txt"), "static\n").expect("write file");
        let extra = "location = /ping { return 200 \"pong\"; }";
        let nginx = Nginx::start("127.0.0.1:9", root.path(), extra);
        assert!(nginx.config().contains("include ") && nginx.config().contains("tfpm-php.conf"));
        assert_eq!(crate::http::get(nginx.addr(), "/ping").text(), "pong");
        assert_eq!(
            crate::http::get(nginx.addr(), "/static.txt").text(),
            "static\n"
        );
        assert_eq!(crate::http::get(nginx.addr(), "/missing.php").status, 404);
        assert_eq!(crate::http::get(nginx.addr(), "/.user.ini").status, 403);
        assert!(
            nginx.error_log().contains("start worker process"),
            "{}",
            nginx.error_log()
        );
    }
}
