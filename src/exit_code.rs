//! The process exit codes tfpm uses, as `sysexits.h` names them (php-fpm
//! exits 78 on a bad configuration too). 0 is a clean exit.

/// The command line is wrong (php-fpm's, too).
pub const USAGE: i32 = 64;
/// An internal error: PHP did not start, a worker failed as it started.
pub const SOFTWARE: i32 = 70;
/// The operating system refused something: a socket, a descriptor, a
/// signal handler, a process.
pub const OS_ERROR: i32 = 71;
/// A file tfpm must create could not be (the pid file, the socket).
pub const CANT_CREATE: i32 = 73;
/// The configuration is wrong: php-fpm.conf, a pool, the user to run as.
pub const CONFIG: i32 = 78;
