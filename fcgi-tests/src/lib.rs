//! End-to-end test harness for tfpm.
//!
//! The integration tests of the root crate (`tests/*.rs`) drive the real
//! `tfpm` binary through real clients. This crate holds the pieces they share:
//!
//! - [`daemon`]: start tfpm, capture its log, wait for readiness, read its memory use, stop it.
//! - [`nginx`]: start nginx in the foreground with a throw-away config that includes
//!   the repository's `nginx-conf/tfpm-php.conf`.
//! - [`frontends`]: start HAProxy, Apache, lighttpd or Caddy in front of tfpm, each
//!   on its commented config in `fcgi-tests/interop/`.
//! - [`tap`]: a relay between a web server and tfpm that notes every FastCGI record.
//! - [`http`]: a tiny HTTP/1.1 client (blocking and tokio) plus form and multipart encoders.
//! - [`fcgi_client`]: a minimal FastCGI client, written from the spec, over TCP or Unix sockets.
//! - [`cgi_fcgi`]: run the real `cgi-fcgi` binary (libfcgi) against a listener.
//! - [`cgi`]: the CGI side shared by the two FastCGI clients: request params and response parsing.
//! - [`shared`]: one daemon per test binary, shared by the tests that overlap in time.
//! - [`pattern`]: the deterministic byte patterns that the test scripts produce and check.
//! - [`php`]: locate the PHP build (php-fpm and the CLI) used as an oracle.
//! - [`phpt`]: php-src's `.phpt` tests over FastCGI, php-fpm against tfpm.
//! - [`raw`]: the raw-record client: arbitrary bytes in, exact records and close state out.
//! - [`fpm`]: run that php-fpm on a throw-away config, to compare tfpm with.
//! - [`docker`]: the local base images and the Dockerfile's builder stage (image and package).
//!
//! Nothing here sleeps to wait for readiness: every wait is a poll with a deadline.

pub mod cgi;
pub mod cgi_fcgi;
pub mod daemon;
pub mod docker;
pub mod fcgi_client;
pub mod fpm;
pub mod frontends;
pub mod http;
pub mod launch;
pub mod nginx;
pub mod pattern;
pub mod php;
pub mod phpt;
pub mod raw;
pub mod shared;
pub mod tap;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use php::{php_branch, php_has_stack_guard, php_prefix, php_version};
/// Re-exported for the integration tests, which depend on this crate only.
pub use tempfile;

/// The repository root (the directory of the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("fcgi-tests lives inside the repository")
        .to_path_buf()
}

/// The PHP scripts used by the tests (`tests/docroot`).
pub fn docroot() -> PathBuf {
    repo_root().join("tests").join("docroot")
}

/// Lower-case hex MD5 of `data`, as PHP's `md5()` prints it.
pub fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", md5::compute(data))
}

/// Polls `check` every `interval` until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// The last `max` bytes of a log, cut at a character boundary, for panic messages.
pub fn tail(log: &str, max: usize) -> &str {
    if log.len() <= max {
        return log;
    }
    let mut start = log.len() - max;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

/// The second half of a `fastcgi_finish_request()` test against
/// `tests/docroot/finish.php`: the script must still be running (no
/// `marker`), and once `go` exists it must finish and write "go" to `marker`.
pub fn assert_script_runs_on_after_finish(marker: &Path, go: &Path) {
    assert!(
        !marker.exists(),
        "the script ended before it was told to go"
    );
    std::fs::write(go, "").expect("write go file");
    let read = || {
        std::fs::read_to_string(marker)
            .ok()
            .filter(|c| !c.is_empty())
    };
    let content = poll_until(Duration::from_secs(10), Duration::from_millis(10), read);
    assert_eq!(
        content.as_deref(),
        Some("go"),
        "marker file after fastcgi_finish_request()"
    );
}
