//! The errors that stop tfpm from starting or running, each with the exit
//! code it ends the process with ([`crate::exit_code`]). Deeper layers keep
//! their own typed errors; the command line turns them into one of these,
//! and `cli::run` logs it once and exits with its code.

use crate::exit_code;

/// Why tfpm stops.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// php-fpm.conf, a pool, or the command line's settings are wrong; a
    /// listening address cannot be used.
    #[error("{0}")]
    Config(String),
    /// The operating system refused something: a descriptor, a signal
    /// handler, a process.
    #[error("{0}")]
    Os(String),
    /// A file tfpm must create could not be (the pid file, a script).
    #[error("{0}")]
    CantCreate(String),
    /// PHP did not start, or a worker failed as it started.
    #[error("{0}")]
    Software(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit_code::USAGE,
            Error::Config(_) => exit_code::CONFIG,
            Error::Os(_) => exit_code::OS_ERROR,
            Error::CantCreate(_) => exit_code::CANT_CREATE,
            Error::Software(_) => exit_code::SOFTWARE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_ends_with_its_sysexits_code() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 64);
        assert_eq!(Error::Software("x".into()).exit_code(), 70);
        assert_eq!(Error::Os("x".into()).exit_code(), 71);
        assert_eq!(Error::CantCreate("x".into()).exit_code(), 73);
        assert_eq!(Error::Config("x".into()).exit_code(), 78);
        assert_eq!(Error::Config("bad pool".into()).to_string(), "bad pool");
    }
}
