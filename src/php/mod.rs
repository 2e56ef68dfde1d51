//! The safe Rust face of the embedded PHP engine.
//!
//! This module owns everything that touches PHP: process start-up and
//! shutdown on a dedicated `php-main` thread ([`Engine`]), the pool of worker
//! threads that each own one interpreter context ([`Pool`]), and the
//! per-request context that the C shim calls back into ([`Request`]).
//! It is the only module with FFI calls into PHP; the files that make them
//! allow `unsafe` code one by one (as [`crate::sys`] does for the
//! operating system's calls), and each `unsafe` block says why it is sound.
//!
//! PHP output and input cross this boundary through two traits,
//! [`ResponseSink`] and [`BodySource`], so this module knows nothing of
//! FastCGI records or sockets.
//!
//! It may import [`crate::config`] (the `pm` word), [`crate::fcgi`]'s
//! name-value pairs (a request's params) and [`crate::sys`].

mod buffers;
mod callbacks;
mod cgi_env;
mod direct;
mod engine;
mod ffi;
mod logs;
mod pool;
mod request;
mod run;
pub mod scaling;
mod status;
mod watch;
mod watchdog;
mod worker_mode;

pub use engine::{Engine, EngineConfig, EngineError};
pub use logs::{AccessLog, RequestLogs, Slowlog, StderrLog, STDERR_FLUSH};
pub use pool::{Pool, SubmitError};
pub use request::{Abort, BodyPoll, BodySource, Request, RequestPolicy, ResponseSink, SinkGone};
pub use status::Snapshot as PoolSnapshot;
pub use status::{set_pool_counts_source, PoolCounts, PoolCountsSource};
pub use status::{RequestInfo, ThreadStatus};
pub use worker_mode::WorkerScript;

/// The SAPI name PHP reports (`PHP_SAPI`).
pub fn sapi_name() -> String {
    ffi::sapi_name()
}

/// Whether PHP says who it is (`expose_php`): `X-Powered-By: PHP/…`.
pub fn expose_php() -> bool {
    ffi::expose_php()
}

/// The PHP version tfpm was built against.
pub fn php_version() -> String {
    ffi::php_version()
}

/// That version as `(major, minor)`.
pub fn php_branch() -> (u32, u32) {
    let version = php_version();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether that version is `major.minor` or later.
pub fn php_at_least(major: u32, minor: u32) -> bool {
    php_branch() >= (major, minor)
}

/// php-fpm's "memory peak": the largest memory peak (real size) that a
/// thread of this process had at the end of a request.
pub fn memory_peak() -> u64 {
    ffi::memory_peak()
}
