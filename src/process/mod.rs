//! Process supervision: the master that holds the sockets and keeps the
//! worker processes running ([`master`]), a worker's own life ([`worker`]),
//! the typed messages between them ([`control`]), workers' output relayed
//! into the master's log ([`relay`]), the log files SIGUSR1 reopens
//! ([`logfile`]), signals, and systemd's notices and sockets ([`systemd`]).
//!
//! It may import [`crate::server`] (a worker serves connections with it),
//! [`crate::php`] and [`crate::sys`]; the server imports nothing from here.

pub mod control;
pub mod logfile;
pub mod master;
pub mod relay;
mod shutdown;
pub mod systemd;
pub mod worker;

pub use shutdown::{Asked, Signals, StopKind};
