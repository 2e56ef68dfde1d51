//! One way for the tests to start tfpm: [`Launch`] builds its command line
//! (`--listen 127.0.0.1:0`, the threads and workers, `-d` settings, any
//! other arguments) and starts it as [`Tfpm::start`] does; [`Tfpm::fetch`]
//! sends one GET of a script under `tests/docroot` over FastCGI.

use std::path::{Path, PathBuf};

use crate::cgi::CgiRequest;
use crate::daemon::Tfpm;
use crate::fcgi_client::{FcgiClient, FcgiResponse};

/// A tfpm command line under construction.
#[derive(Debug, Clone)]
pub struct Launch {
    bin: PathBuf,
    args: Vec<String>,
}

impl Launch {
    /// `bin --listen 127.0.0.1:0 --threads 2`, to which the rest is added.
    pub fn new(bin: &Path) -> Launch {
        let args = ["--listen", "127.0.0.1:0", "--threads", "2"];
        Launch {
            bin: bin.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `bin` with no arguments yet: for a test that names its own
    /// listeners, or a `-y` config that does.
    pub fn bare(bin: &Path) -> Launch {
        Launch {
            bin: bin.to_path_buf(),
            args: Vec::new(),
        }
    }

    /// The address to listen on, in place of `127.0.0.1:0` (a Unix socket
    /// path, `[::1]:0`, ...).
    pub fn listen(self, address: &str) -> Launch {
        self.set("--listen", address)
    }

    /// The number of PHP threads (in all).
    pub fn threads(self, n: &str) -> Launch {
        self.set("--threads", n)
    }

    /// The number of worker processes.
    pub fn workers(self, n: &str) -> Launch {
        self.set("--workers", n)
    }

    /// A php.ini setting, `-d key=value`.
    pub fn ini(self, setting: &str) -> Launch {
        self.args(&["-d", setting])
    }

    /// Each of `settings` as `-d`.
    pub fn inis(self, settings: &[&str]) -> Launch {
        settings.iter().fold(self, |launch, s| launch.ini(s))
    }

    /// Any other arguments, in order.
    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Starts it and waits until it is ready (see [`Tfpm::start`]).
    pub fn start(&self) -> Tfpm {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Tfpm::start(&self.bin, &args)
    }

    fn set(mut self, option: &str, value: &str) -> Launch {
        match self.args.iter().position(|a| a == option) {
            Some(at) => self.args[at + 1] = value.to_string(),
            None => self.args.extend([option.to_string(), value.to_string()]),
        }
        self
    }
}

impl Tfpm {
    /// A FastCGI connection to the first TCP address.
    pub fn connect(&self) -> FcgiClient {
        FcgiClient::connect_tcp(self.addr()).expect("connect")
    }

    /// A GET of `script` (under `tests/docroot`) with `query`, on a new
    /// connection to the first TCP address; panics, with the log, if the
    /// request fails.
    pub fn fetch(&self, script: &str, query: &str) -> FcgiResponse {
        let request = CgiRequest::get(&crate::docroot(), script).query(query);
        let mut client = FcgiClient::connect_tcp(self.addr()).expect("connect");
        client
            .send(&request, false)
            .unwrap_or_else(|e| panic!("request to {script} failed: {e}\n{}", self.log()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_given_twice_keep_the_last_value() {
        let launch = Launch::new(Path::new("tfpm"))
            .threads("4")
            .workers("2")
            .threads("8")
            .ini("a=1");
        assert_eq!(
            launch.args,
            [
                "--listen",
                "127.0.0.1:0",
                "--threads",
                "8",
                "--workers",
                "2",
                "-d",
                "a=1"
            ]
        );
    }
}
