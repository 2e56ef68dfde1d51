//! tfpm: a FastCGI responder that runs PHP in a pool of embedded interpreter
//! threads, as a drop-in replacement for php-fpm.
//!
//! Layers, outermost first:
//! - [`server`]: listeners, connections, limits and shutdown (tokio).
//! - [`config`]: php-fpm's configuration files, read into typed settings.
//! - [`fcgi`]: the FastCGI protocol itself, with no I/O policy and no PHP.
//! - [`php`]: the safe Rust face of the embedded engine; the only place with `unsafe`.
//!
//! See ARCHITECTURE.md for how a request travels through them.
//!
//! Only [`config`] and [`fcgi`] are built without the `php` feature (on by default).

#[cfg(feature = "php")]
pub mod cli;
pub mod config;
pub mod fcgi;
#[cfg(feature = "php")]
pub mod php;
#[cfg(feature = "php")]
pub mod server;
