//! tfpm: a FastCGI responder that runs PHP in a pool of embedded interpreter
//! threads, as a drop-in replacement for php-fpm.
//!
//! Layers, outermost first:
//! - [`cli`]: the command line; starts the master or a worker.
//! - [`process`]: the master and its worker processes, their messages,
//!   signals, logs and systemd.
//! - [`server`]: listeners, connections, limits, the status page and
//!   metrics (tokio).
//! - [`config`]: php-fpm's configuration files, read into typed settings.
//! - [`fcgi`]: the FastCGI protocol itself, with no I/O policy and no PHP.
//! - [`php`]: the safe Rust face of the embedded engine, with FFI's `unsafe`.
//! - [`sys`]: the operating system's calls that need `unsafe` (descriptors,
//!   signals, users, passing a connection to another process).
//!
//! See ARCHITECTURE.md for how a request travels through them.
//!
//! Only [`config`] and [`fcgi`] are built without the `php` feature (on by default).

#[cfg(feature = "php")]
pub mod cli;
pub mod config;
pub mod error;
pub mod exit_code;
pub mod fcgi;
#[cfg(feature = "php")]
pub mod php;
#[cfg(feature = "php")]
pub mod process;
#[cfg(feature = "php")]
pub mod server;
#[cfg(feature = "php")]
pub mod sys;
