//! Running php-fpm from our own PHP build as the oracle tfpm is compared with.
//!
//! [`PhpFpm::start`] writes a throw-away `php-fpm.conf` (foreground, one
//! static pool on a free loopback port, every path inside a temp dir), starts
//! `<prefix>/sbin/php-fpm -F -R` with the same `-n`/`-d` settings tfpm gets,
//! and waits until the port accepts connections. Dropping it stops php-fpm
//! (SIGQUIT, then SIGKILL).

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::daemon::wait_or_kill;
use crate::php::php_fpm;
use crate::shared::Diagnose;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running php-fpm master and its pool.
pub struct PhpFpm {
    child: Option<Child>,
    dir: TempDir,
    addr: SocketAddr,
}

impl PhpFpm {
    /// Starts php-fpm with `children` static workers; `pool_lines` are added
    /// to the pool section and `defines` passed as `-d` settings.
    ///
    /// Panics if the build has no php-fpm or it does not come up.
    pub fn start(children: usize, pool_lines: &str, defines: &[&str]) -> PhpFpm {
        let bin = php_fpm().expect("php-fpm from the PHP build (ffi/build-php.sh)");
        let dir = tempfile::Builder::new()
            .prefix("tfpm-php-fpm-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("php-fpm.conf");
        fs::write(&conf, config(&dir, port, children, pool_lines)).expect("php-fpm.conf");
        let mut cmd = Command::new(bin);
        // What scripts' child processes write to relative paths stays here.
        cmd.current_dir(dir.path());
        cmd.args(["-F", "-R", "-n", "-y"]).arg(&conf);
        for define in defines {
            cmd.args(["-d", define]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn php-fpm");
        let mut fpm = PhpFpm {
            child: Some(child),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        fpm.wait_ready();
        fpm
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What php-fpm logged (its `error_log`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("php-fpm.log")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("php-fpm exited at start ({status})\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("php-fpm not ready in {START_TIMEOUT:?}\n{}", self.log());
    }
}

fn config(dir: &TempDir, port: u16, children: usize, pool_lines: &str) -> String {
    let d = dir.path().display();
    format!(
        "[global]\n\
         pid = {d}/php-fpm.pid\n\
         error_log = {d}/php-fpm.log\n\
         daemonize = no\n\
         [www]\n\
         listen = 127.0.0.1:{port}\n\
         pm = static\n\
         pm.max_children = {children}\n\
         catch_workers_output = yes\n\
         {pool_lines}\n"
    )
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

impl Diagnose for PhpFpm {
    fn diagnose(&self) -> String {
        format!("--- php-fpm log ---\n{}", crate::tail(&self.log(), 8_000))
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGQUIT);
            wait_or_kill(&mut child, STOP_TIMEOUT);
        }
    }
}
