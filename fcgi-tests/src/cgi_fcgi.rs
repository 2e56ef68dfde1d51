//! Running the real `cgi-fcgi` client (Debian package `libfcgi-bin`).
//!
//! `cgi-fcgi -bind -connect ADDR` sends its whole environment as PARAMS and
//! CONTENT_LENGTH bytes of its stdin as STDIN, writes the responder's STDOUT
//! to its stdout and STDERR to its stderr, and exits with END_REQUEST's
//! appStatus. The environment is cleared first, so the responder sees only
//! the CGI variables of the [`CgiRequest`]. A run is killed after 60 s so a
//! hung responder fails the test instead of hanging it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cgi::{CgiRequest, CgiResponse};
use crate::daemon::wait_or_kill;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one `cgi-fcgi` run produced.
#[derive(Debug, Clone)]
pub struct CgiFcgiOutput {
    /// The exit status (appStatus of END_REQUEST, or a libfcgi error code).
    pub status: ExitStatus,
    /// Its stdout: the responder's FCGI_STDOUT.
    pub stdout: Vec<u8>,
    /// Its stderr: the responder's FCGI_STDERR plus cgi-fcgi's own errors.
    pub stderr: Vec<u8>,
    /// stdout split into CGI headers and body.
    pub response: CgiResponse,
}

impl CgiFcgiOutput {
    /// stderr as text (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The `cgi-fcgi` binary: `$CGI_FCGI`, else the first on PATH. Panics with an install hint.
pub fn cgi_fcgi_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CGI_FCGI") {
        return PathBuf::from(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("cgi-fcgi"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("cgi-fcgi not found on PATH (apt-get install libfcgi-bin, or set CGI_FCGI)")
    })
}

/// Runs `cgi-fcgi -bind -connect <connect>` for `request`.
/// `connect` is `HOST:PORT` or a Unix socket path.
pub fn run(connect: &str, request: &CgiRequest) -> CgiFcgiOutput {
    let mut child = Command::new(cgi_fcgi_bin())
        .args(["-bind", "-connect", connect])
        .env_clear()
        .envs(request.params())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn cgi-fcgi: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let body = request.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let (status, exited) = wait_or_kill(&mut child, RUN_TIMEOUT);
    let _ = writer.join();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    assert!(
        exited,
        "cgi-fcgi did not finish within {RUN_TIMEOUT:?} for {} (killed)",
        request.script_name
    );
    let response = CgiResponse::parse(&stdout);
    CgiFcgiOutput {
        status,
        stdout,
        stderr,
        response,
    }
}

/// Reads a pipe to EOF in a thread.
fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}
