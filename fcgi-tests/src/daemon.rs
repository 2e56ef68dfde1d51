//! Starting and stopping the tfpm daemon under test.
//!
//! [`Tfpm::start`] spawns the binary, drains its stderr (and stdout) in
//! threads into a shared log so the pipes never fill, and blocks on the line
//! channel until the daemon logs `ready to handle connections`. On the way it
//! collects the addresses of the `listening on <addr>` lines, and of the
//! `metrics listening on <addr>` line apart from them. Dropping a
//! [`Tfpm`] sends SIGTERM and waits, falling back to SIGKILL after 10 s.

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::shared::Diagnose;

/// How long the daemon may take to log `ready to handle connections`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const READY_MARK: &str = "ready to handle connections";
const LISTEN_MARK: &str = "listening on ";
const METRICS_MARK: &str = "metrics listening on ";

/// One address the daemon said it listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// A TCP listener, as logged (may be an unspecified address such as `0.0.0.0`).
    Tcp(SocketAddr),
    /// A Unix socket listener (`unix:/path` in the log).
    Unix(PathBuf),
    /// Anything else, verbatim, so a format change shows up in assertions.
    Other(String),
}

/// Memory figures of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    /// Resident set size now (VmRSS), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size (VmHWM) since start or the last [`Tfpm::reset_peak`], in KiB.
    pub hwm_kib: u64,
}

/// A running tfpm process. Stopped (SIGTERM, then SIGKILL) on drop.
pub struct Tfpm {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    listeners: Vec<Listener>,
    metrics: Option<SocketAddr>,
}

impl Tfpm {
    /// Spawns `bin` with `args` and waits until it is ready to handle connections.
    ///
    /// Panics, with the captured log, if it exits or is not ready within 30 s.
    pub fn start(bin: &Path, args: &[&str]) -> Tfpm {
        Tfpm::start_with_env(bin, args, &[])
    }

    /// As [`Tfpm::start`], with extra environment variables for the daemon.
    pub fn start_with_env(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Tfpm {
        Tfpm::spawn(bin, args, env, None)
    }

    /// As [`Tfpm::start`], in working directory `cwd` (where a child process
    /// that a script starts, such as mail()'s sendmail, writes relative paths).
    pub fn start_in(bin: &Path, args: &[&str], cwd: &Path) -> Tfpm {
        // A relative path would be taken from `cwd`.
        let bin = std::path::absolute(bin).unwrap_or_else(|_| bin.to_path_buf());
        Tfpm::spawn(&bin, args, &[], Some(cwd))
    }

    fn spawn(bin: &Path, args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Tfpm {
        // With a php-fpm config (-y), the text log format rather than
        // php-fpm's: its `listening on` lines tell where the daemon listens.
        let format: &[&str] = match args.contains(&"-y") && !args.contains(&"--log-format") {
            true => &["--log-format", "text"],
            false => &[],
        };
        let mut command = Command::new(bin);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .args(args)
            .args(format)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain(child.stderr.take().expect("piped stderr"), &log, Some(tx));
        drain(child.stdout.take().expect("piped stdout"), &log, None);
        let mut tfpm = Tfpm {
            child: Some(child),
            log,
            listeners: Vec::new(),
            metrics: None,
        };
        if let Err(why) = tfpm.wait_ready(&rx) {
            let log = tfpm.log();
            drop(tfpm);
            panic!(
                "tfpm did not start ({why}); command: {} {}\n--- tfpm log ---\n{log}",
                bin.display(),
                args.join(" ")
            );
        }
        tfpm
    }

    /// Reads log lines until the ready mark, collecting the listening addresses.
    fn wait_ready(&mut self, lines: &Receiver<String>) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_metrics_listening(&line) {
                        self.metrics = Some(connectable(addr));
                    } else if let Some(listener) = parse_listening(&line) {
                        self.listeners.push(listener);
                    }
                    if line.contains(READY_MARK) {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no `{READY_MARK}` within {START_TIMEOUT:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let child = self.child.as_mut().expect("running");
                    let (status, _) = wait_or_kill(child, Duration::from_secs(5));
                    return Err(format!("stderr closed before `{READY_MARK}`, {status}"));
                }
            }
        }
    }

    /// The first TCP listener, with an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
    pub fn addr(&self) -> SocketAddr {
        self.tcp_addrs().into_iter().next().unwrap_or_else(|| {
            panic!(
                "tfpm logged no TCP listener: {:?}\n{}",
                self.listeners,
                self.log()
            )
        })
    }

    /// Every TCP listener, connectable (unspecified IPs replaced by loopback).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        let tcp = self.listeners.iter().filter_map(|l| match l {
            Listener::Tcp(addr) => Some(connectable(*addr)),
            _ => None,
        });
        tcp.collect()
    }

    /// The first Unix socket listener.
    pub fn unix_path(&self) -> PathBuf {
        let path = self.listeners.iter().find_map(|l| match l {
            Listener::Unix(path) => Some(path.clone()),
            _ => None,
        });
        path.unwrap_or_else(|| panic!("tfpm logged no Unix listener: {:?}", self.listeners))
    }

    /// The metrics endpoint's address (`--metrics-listen`), connectable.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
            .unwrap_or_else(|| panic!("tfpm logged no metrics listener\n{}", self.log()))
    }

    /// All listeners in the order they were logged.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Everything the daemon wrote to stderr and stdout so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Current resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        self.mem().rss_kib
    }

    /// The worker processes the master started, from `/proc` (each
    /// thread's `children` list).
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// Current and peak resident set size of the master and its workers,
    /// added up (the peaks are each process's own).
    pub fn mem(&self) -> Mem {
        let mut total = Mem {
            rss_kib: 0,
            hwm_kib: 0,
        };
        for pid in std::iter::once(self.pid()).chain(self.worker_pids()) {
            let path = format!("/proc/{pid}/status");
            let Ok(status) = std::fs::read_to_string(&path) else {
                continue; // a worker that just exited
            };
            total.rss_kib += status_kib(&status, "VmRSS:");
            total.hwm_kib += status_kib(&status, "VmHWM:");
        }
        total
    }

    /// Resets the peak RSS (VmHWM) of the master and its workers to their
    /// current RSS, by writing 5 to `/proc/PID/clear_refs`.
    pub fn reset_peak(&self) {
        for pid in std::iter::once(self.pid()).chain(self.worker_pids()) {
            let path = format!("/proc/{pid}/clear_refs");
            std::fs::write(&path, "5").unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid() as i32);
        kill(pid, signal).unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    }

    /// Sends `signal` and waits up to 10 s for the exit, then SIGKILLs.
    /// Returns the exit status and whether it exited on its own.
    pub fn stop_with(&mut self, signal: Signal) -> (ExitStatus, bool) {
        let mut child = self.child.take().expect("tfpm already stopped");
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
        wait_or_kill(&mut child, STOP_TIMEOUT)
    }

    /// Graceful stop with SIGTERM; panics with the log unless it exits on its own.
    pub fn stop(mut self) -> ExitStatus {
        let (status, clean) = self.stop_with(Signal::SIGTERM);
        assert!(
            clean,
            "tfpm ignored SIGTERM for {STOP_TIMEOUT:?}\n{}",
            self.log()
        );
        status
    }
}

impl Diagnose for Tfpm {
    fn diagnose(&self) -> String {
        format!(
            "--- tfpm log (tail) ---\n{}",
            crate::tail(&self.log(), 16_000)
        )
    }
}

impl Drop for Tfpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            wait_or_kill(&mut child, STOP_TIMEOUT);
        }
    }
}

/// Sends `signal` to process `pid` (a worker of the daemon, say).
pub fn signal_pid(pid: u32, signal: Signal) {
    let target = Pid::from_raw(pid as i32);
    kill(target, signal).unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

/// The children of process `pid`, from every one of its threads.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Waits for `child` up to `timeout`, then SIGKILLs it. Returns (status, exited on its own).
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> (ExitStatus, bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return (status, true),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    (child.wait().expect("wait after SIGKILL"), false)
}

/// Copies `pipe` line by line into `log`, sending each line to `lines` while someone listens.
/// With `TFPM_TEST_LOG_DIR` set, a file there that gets a copy of the
/// daemon's log as it comes (for a run that hangs before it reports).
fn tee_file() -> Option<std::fs::File> {
    let dir = std::env::var_os("TFPM_TEST_LOG_DIR")?;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tfpm-{}-{n}.log", std::process::id());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::path::Path::new(&dir).join(name))
        .ok()
}

fn drain(
    pipe: impl Read + Send + 'static,
    log: &Arc<Mutex<String>>,
    lines: Option<Sender<String>>,
) {
    let log = Arc::clone(log);
    let mut tee = tee_file();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(file) = &mut tee {
                let _ = std::io::Write::write_all(file, &raw);
            }
            let line = String::from_utf8_lossy(&raw).into_owned();
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&line);
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    });
}

/// The address in a line containing `listening on <addr>`.
pub fn parse_listening(line: &str) -> Option<Listener> {
    let rest = &line[line.find(LISTEN_MARK)? + LISTEN_MARK.len()..];
    // The address ends at white space or at JSON/quoting punctuation.
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '`' | '}'))
        .unwrap_or(rest.len());
    let word = &rest[..end];
    if let Some(path) = word.strip_prefix("unix:") {
        return Some(Listener::Unix(PathBuf::from(path)));
    }
    match word.parse::<SocketAddr>() {
        Ok(addr) => Some(Listener::Tcp(addr)),
        Err(_) => Some(Listener::Other(word.to_string())),
    }
}

/// The address in a line containing `metrics listening on <addr>`.
pub fn parse_metrics_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(METRICS_MARK)? + METRICS_MARK.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '`' | '}'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Replaces an unspecified IP (bound to all addresses) with the loopback of its family.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// The KiB value of a `/proc/PID/status` field such as `VmRSS:`.
fn status_kib(status: &str, field: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(field));
    let value = line.and_then(|l| l[field.len()..].split_whitespace().next());
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_lines() {
        let tcp = parse_listening("2024-01-01T00:00:00Z  INFO tfpm: listening on 127.0.0.1:43125");
        assert_eq!(tcp, Some(Listener::Tcp("127.0.0.1:43125".parse().unwrap())));
        let v6 = parse_listening("listening on [::1]:9000 (threads=8)");
        assert_eq!(v6, Some(Listener::Tcp("[::1]:9000".parse().unwrap())));
        let unix = parse_listening("INFO listening on unix:/tmp/x.sock");
        assert_eq!(unix, Some(Listener::Unix(PathBuf::from("/tmp/x.sock"))));
        assert_eq!(parse_listening("ready to handle connections"), None);
        let metrics = "INFO tfpm::cli: metrics listening on 127.0.0.1:9100";
        assert_eq!(
            parse_metrics_listening(metrics),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(parse_metrics_listening("listening on 127.0.0.1:9000"), None);
    }

    #[test]
    fn start_collects_listeners_and_drop_stops() {
        let script = "echo 'x listening on 127.0.0.1:5' >&2; echo 'listening on unix:/tmp/s' >&2; \
                      echo 'metrics listening on 0.0.0.0:7' >&2; \
                      echo 'ready to handle connections' >&2; exec sleep 30";
        let tfpm = Tfpm::start(Path::new("/bin/sh"), &["-c", script]);
        assert_eq!(tfpm.addr(), "127.0.0.1:5".parse().unwrap());
        assert_eq!(tfpm.listeners().len(), 2);
        assert_eq!(tfpm.metrics_addr(), "127.0.0.1:7".parse().unwrap());
        assert_eq!(tfpm.unix_path(), PathBuf::from("/tmp/s"));
        assert!(tfpm.log().contains("ready to handle connections"));
        assert!(tfpm.mem().rss_kib > 0);
        let started = Instant::now();
        drop(tfpm);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM did not stop sleep"
        );
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn failed_start_panics_with_the_log() {
        Tfpm::start(Path::new("/bin/sh"), &["-c", "echo boom >&2; exit 3"]);
    }

    #[test]
    fn unspecified_becomes_loopback() {
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(connectable(any), "127.0.0.1:9000".parse().unwrap());
        let any6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(connectable(any6), "[::1]:9000".parse().unwrap());
    }

    #[test]
    fn reads_status_fields() {
        let status = "Name:\ttfpm\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), 10240);
        assert_eq!(status_kib(status, "VmHWM:"), 20480);
    }
}
