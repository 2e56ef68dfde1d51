//! How a worker's exit reads in the log, in php-fpm's words, and which
//! exits count as crashes.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::sys::os;

/// Crashes count toward the emergency threshold; php-fpm counts SIGSEGV and
/// SIGBUS, tfpm also the other signals a fault raises (a stack overflow
/// caught by Rust's guard ends in SIGABRT).
pub(super) fn is_crash(status: ExitStatus) -> bool {
    matches!(
        status.signal(),
        Some(libc::SIGSEGV | libc::SIGBUS | libc::SIGABRT | libc::SIGILL | libc::SIGFPE)
    )
}

/// "exited on signal 11 (SIGSEGV - core dumped)", or "exited with code 1",
/// as php-fpm words a child's end.
pub(super) fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(sig) => format!(
            "exited on signal {sig} ({}{})",
            signal_name(sig),
            if status.core_dumped() {
                " - core dumped"
            } else {
                ""
            }
        ),
        None => format!("exited with code {}", status.code().unwrap_or(-1)),
    }
}

pub(super) fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// CLOCK_MONOTONIC in microseconds, for systemd's RELOADING=1 notice.
pub(super) fn monotonic_usec() -> u128 {
    os::monotonic().as_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_described_as_php_fpm_does() {
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            "exited on signal 11 (SIGSEGV - core dumped)"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(9)),
            "exited on signal 9 (SIGKILL)"
        );
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with code 3");
    }
}
