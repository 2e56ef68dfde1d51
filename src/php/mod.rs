//! The safe Rust face of the embedded PHP engine.
//!
//! This module owns everything that touches PHP: process start-up and
//! shutdown on a dedicated `php-main` thread ([`Engine`]), the pool of worker
//! threads that each own one interpreter context ([`Pool`]), and the
//! per-request context that the C shim calls back into ([`Request`]).
//! It is the only module allowed `unsafe` code and FFI calls; each `unsafe`
//! block says why it is sound. For that reason it also holds the two
//! steps outside PHP that need `unsafe`: owning inherited sockets ([`os`]) and
//! the shared-memory [`scoreboard`] a worker process keeps for its master.
//!
//! PHP output and input cross this boundary through two traits,
//! [`ResponseSink`] and [`BodySource`], so this module knows nothing of
//! FastCGI records or sockets.
#![allow(unsafe_code)]

mod callbacks;
mod cgi_env;
mod engine;
mod floor;
mod logs;
pub mod os;
mod pool;
mod request;
pub mod scaling;
pub mod scoreboard;
mod status;
mod sys;
mod watchdog;

pub use engine::{Engine, EngineConfig, EngineError};
pub use logs::{AccessLog, RequestLogs, Slowlog, StderrLog, STDERR_FLUSH};
pub use pool::{Pool, SubmitError};
pub use request::{Abort, BodyPoll, BodySource, Request, RequestPolicy, ResponseSink, SinkGone};
pub use status::Snapshot as PoolSnapshot;
pub use status::{RequestInfo, ThreadStatus};

/// The SAPI name PHP reports (`PHP_SAPI`).
pub fn sapi_name() -> String {
    sys::sapi_name()
}

/// Whether PHP says who it is (`expose_php`): `X-Powered-By: PHP/…`.
pub fn expose_php() -> bool {
    sys::expose_php()
}

/// The PHP version tfpm was built against.
pub fn php_version() -> String {
    sys::php_version()
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
    sys::memory_peak()
}

/// Ends the process at once, without exit handlers or destructors, for when
/// PHP threads are still running and PHP cannot be shut down: library
/// clean-up run under them could crash the process on its way out.
pub fn exit_with_threads_running(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; it touches no Rust or PHP
    // state, so it is sound whatever other threads are doing.
    unsafe { libc::_exit(code) }
}
