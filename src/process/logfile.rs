//! Log files that SIGUSR1 reopens, as php-fpm reopens its own: after
//! logrotate has moved a file away, the next line goes to a new file at
//! the same path. The error log (`error_log` of a php-fpm config) is one;
//! every file opened here is reopened by [`reopen_all`], and so are the
//! files written by descriptor that [`reopen_in_place`] lists (the access
//! log and the slowlog, which PHP threads and C code write to).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// An append-only log file, shared by the threads that write to it.
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

/// Every log file opened so far, for [`reopen_all`].
static OPEN: Mutex<Vec<Arc<LogFile>>> = Mutex::new(Vec::new());

/// Files written by descriptor, with their paths, for [`reopen_all`].
static IN_PLACE: Mutex<Vec<(PathBuf, Arc<File>)>> = Mutex::new(Vec::new());

/// Lists `file` (opened at `path`, appending) for SIGUSR1: the path is
/// opened again and the new file takes the old one's descriptor number.
pub fn reopen_in_place(path: &Path, file: Arc<File>) {
    IN_PLACE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((path.to_path_buf(), file));
}

impl LogFile {
    /// Opens (creating) `path` for appending, and remembers it for SIGUSR1.
    pub fn open(path: &Path) -> io::Result<Arc<LogFile>> {
        let log = Arc::new(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(append(path)?),
        });
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log.clone());
        Ok(log)
    }

    /// Writes `bytes` with one write, so lines from several threads (and
    /// processes, thanks to O_APPEND) never interleave.
    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(bytes)
    }

    fn reopen(&self) -> io::Result<()> {
        let fresh = append(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// As php-fpm creates its access log: readable by its owner only.
pub fn append_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.create(true).append(true).mode(0o600).open(path)
}

/// Reopens every log file (SIGUSR1); a file that cannot be reopened keeps
/// its old descriptor, and the error is logged.
pub fn reopen_all() {
    let open = OPEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for log in open {
        match log.reopen() {
            Ok(()) => tracing::debug!("reopened {}", log.path.display()),
            Err(e) => tracing::error!("cannot reopen {}: {e}", log.path.display()),
        }
    }
    let in_place = IN_PLACE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (path, file) in in_place {
        use std::os::fd::AsFd;
        let fresh = append_private(&path);
        match fresh.and_then(|f| crate::sys::os::replace_fd(file.as_fd(), f.as_fd())) {
            Ok(()) => tracing::debug!("reopened {}", path.display()),
            Err(e) => tracing::error!("cannot reopen {}: {e}", path.display()),
        }
    }
}

/// The process's log: the error_log file when there is one.
static MAIN: OnceLock<Arc<LogFile>> = OnceLock::new();

/// Where log lines go when there is no error_log file, if not to stderr:
/// a worker whose stderr is a pipe to the master (or /dev/null) logs to
/// the master's stderr, which it inherits as another descriptor.
static STDERR: OnceLock<File> = OnceLock::new();

/// Points this process's stderr at its error_log file, or at /dev/null
/// when it has none: what a daemon does once in the background (php-fpm
/// does the same), so that the terminal it left is let go and stray
/// writes to stderr still land in the log.
pub fn stderr_to_main() -> io::Result<()> {
    use std::os::fd::AsFd;
    let target = match MAIN.get() {
        Some(log) => log
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_clone()?,
        None => OpenOptions::new().write(true).open("/dev/null")?,
    };
    crate::sys::os::replace_stderr(target.as_fd())
}

/// The master's stderr, in a worker whose own stderr was redirected.
pub fn master_stderr() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    STDERR.get().map(|f| f.as_raw_fd())
}

/// Whether the process logs to an error_log file.
pub fn has_main() -> bool {
    MAIN.get().is_some()
}

/// Makes `log` the process's log (before logging starts).
pub fn set_main(log: Arc<LogFile>) {
    let _ = MAIN.set(log);
}

/// Logs to `file` instead of stderr when there is no error_log file.
pub fn set_stderr(file: File) {
    let _ = STDERR.set(file);
}

/// Whether `path` names the process's stderr.
pub fn is_stderr(path: &Path) -> bool {
    ["/dev/stderr", "/proc/self/fd/2", "/dev/fd/2"]
        .iter()
        .any(|alias| path == Path::new(alias))
}

/// For a log file at `path` that names stderr, in a worker whose stderr
/// the master redirected: the master's stderr instead (as php-fpm, whose
/// master opens the log files its children write).
pub fn stderr_instead(path: &Path) -> Option<File> {
    let log = STDERR.get().filter(|_| is_stderr(path))?;
    log.try_clone().ok()
}

/// Writes `bytes` (whole lines) to the process's log, in one write.
pub fn write_main(bytes: &[u8]) -> io::Result<()> {
    if let Some(log) = MAIN.get() {
        return log.write_all(bytes);
    }
    match STDERR.get() {
        Some(mut file) => file.write_all(bytes),
        None => io::stderr().lock().write_all(bytes),
    }
}

/// A writer for tracing: each log line is one [`write_main`].
#[derive(Clone, Copy)]
pub struct MainWriter;

impl Write for MainWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_main(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_follows_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("tfpm-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log");
        let log = LogFile::open(&path).unwrap();
        log.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("error.log.1")).unwrap();
        log.write_all(b"two\n").unwrap();
        reopen_all();
        log.write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("error.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
