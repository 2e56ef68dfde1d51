//! The operating system's calls that need `unsafe`: owning inherited
//! descriptors, signals, users and limits ([`os`]), passing a live
//! connection from one process to another ([`fdpass`]), and the
//! shared-memory [`scoreboard`] a worker keeps for its master. What the
//! descriptors mean is the server's business; this module only makes the
//! calls sound.
//!
//! It imports nothing from the rest of the crate but its exit codes.
#![allow(unsafe_code)]

pub mod fdpass;
pub mod os;
pub mod scoreboard;
