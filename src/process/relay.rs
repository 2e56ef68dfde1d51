//! Worker output in the master's log: php-fpm's `catch_workers_output`.
//!
//! A pool that catches its workers' output gets two pipes per worker, its
//! stdout and its stderr; the master reads them here. Each line becomes
//! `[time] WARNING: [pool www] child 123 said into stderr: "the line"`, or
//! the bare line with `decorate_workers_output = no`. A line longer than
//! `log_limit` is cut into lines of that length. With `log_buffering` (the
//! default) each log line is written whole; without it, text is written as
//! it arrives. A worker ends a line it left open by writing [`FLUSH`]: a
//! PHP thread does so after each request, as php-fpm's children do, so a
//! script's last words without a newline still make their own line.
//!
//! [`Stream`] is the pure part (bytes in, log bytes out, unit-tested);
//! [`relay`] feeds it from a worker's pipes, and [`drain_all`] reads what
//! is waiting there before the master logs a line of its own.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use tokio::net::unix::pipe;

use crate::php::STDERR_FLUSH as FLUSH;

/// php-fpm reads a child's pipe 1023 bytes at a time; chunks matter to the
/// unbuffered mode, so tfpm reads the same way.
const CHUNK: usize = 1023;

/// Added to the last line of a worker whose first words came as its pipe
/// closed.
const CLOSED: &[u8] = b", pipe is closed";

/// How a pool's worker output is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// The pool's name, for the `[pool www]` of decorated lines.
    pub pool: String,
    /// `decorate_workers_output`: time, level, pool, pid and quotes.
    pub decorate: bool,
    /// `log_limit`: the longest log line, its newline included.
    pub limit: usize,
    /// `log_buffering`.
    pub buffering: bool,
    /// Times with microseconds (php-fpm does so at `log_level = debug`).
    pub micros: bool,
}

/// One worker's output on its way to the log.
pub struct Stream {
    style: Style,
    pid: u32,
    /// Which pipe the current line came from.
    stdout: bool,
    /// Buffered mode: the log line so far, its prefix included.
    line: Vec<u8>,
    /// Direct mode: bytes already written on the current log line.
    written: usize,
    /// The length of the current line's prefix.
    prefix_len: usize,
    /// How much of [`FLUSH`] ended the previous chunk.
    marker: usize,
    /// The suffix the next finished line gets.
    suffix: &'static [u8],
    /// Log bytes ready to be written.
    out: Vec<u8>,
}

impl Stream {
    /// The output of the worker whose process id is `pid`, for the `child
    /// 123` of decorated lines, written as `style` says.
    pub fn new(style: Style, pid: u32) -> Stream {
        Stream {
            style,
            pid,
            stdout: false,
            line: Vec::new(),
            written: 0,
            prefix_len: 0,
            marker: 0,
            suffix: b"",
            out: Vec::new(),
        }
    }

    /// Takes the log bytes produced so far.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// One chunk read from the worker's stdout or stderr.
    pub fn feed(&mut self, stdout: bool, data: &[u8]) {
        if stdout != self.stdout {
            self.finish();
            self.stdout = stdout;
        }
        let mut start = 0;
        if self.marker > 0 {
            let rest = &FLUSH[self.marker..];
            if data.starts_with(rest) {
                self.finish();
                start = rest.len();
            } else {
                self.append(&FLUSH[..self.marker]);
            }
            self.marker = 0;
        }
        let mut pos = start;
        while pos < data.len() {
            match data[pos] {
                b'\n' => {
                    self.append(&data[start..pos]);
                    self.finish();
                    start = pos + 1;
                }
                0 if data[pos..].starts_with(FLUSH) => {
                    self.append(&data[start..pos]);
                    self.finish();
                    start = pos + FLUSH.len();
                    pos = start;
                    continue;
                }
                0 if FLUSH.starts_with(&data[pos..]) => {
                    // The marker may go on in the next chunk.
                    self.marker = data.len() - pos;
                    self.append_some(&data[start..pos]);
                    return;
                }
                _ => {}
            }
            pos += 1;
        }
        self.append_some(&data[start..]);
    }

    /// The worker's pipe closed; `fresh` when this stream began with the
    /// same read (php-fpm then marks the line `, pipe is closed`).
    pub fn closed(&mut self, fresh: bool) {
        if self.marker > 0 {
            self.append(&FLUSH[..self.marker]);
            self.marker = 0;
        }
        if fresh && self.style.decorate {
            self.suffix = CLOSED;
        }
        self.finish();
        self.suffix = b"";
    }

    fn quote(&self) -> usize {
        usize::from(self.style.decorate)
    }

    fn append_some(&mut self, text: &[u8]) {
        if !text.is_empty() {
            self.append(text);
        }
    }

    /// Adds text to the current line, ending log lines at the limit.
    fn append(&mut self, text: &[u8]) {
        if self.style.buffering {
            self.append_buffered(text);
        } else {
            self.append_direct(text);
        }
    }

    fn append_buffered(&mut self, mut text: &[u8]) {
        loop {
            if self.line.is_empty() {
                self.line = self.prefix();
                self.prefix_len = self.line.len();
            }
            let used = self.line.len() + self.quote();
            if used + text.len() < self.style.limit {
                self.line.extend_from_slice(text);
                return;
            }
            let fits = self.fits(used, self.line.len(), text.len());
            self.line.extend_from_slice(&text[..fits]);
            self.end_line(b"");
            text = &text[fits..];
        }
    }

    fn append_direct(&mut self, mut text: &[u8]) {
        loop {
            if self.written == 0 {
                let prefix = self.prefix();
                self.written = prefix.len();
                self.prefix_len = prefix.len();
                self.out.extend_from_slice(&prefix);
            }
            let used = self.written + self.quote();
            if used + text.len() < self.style.limit {
                self.out.extend_from_slice(text);
                self.written += text.len();
                return;
            }
            let fits = self.fits(used, self.written, text.len());
            self.out.extend_from_slice(&text[..fits]);
            self.written += fits;
            self.end_line(b"");
            text = &text[fits..];
        }
    }

    /// How much of `len` more bytes the current line (`used` bytes with its
    /// closing quote, `line` without) takes before it is cut: what fits
    /// with the newline, possibly nothing, except on a line that holds only
    /// its prefix (at least one byte, so that cutting always moves on).
    fn fits(&self, used: usize, line: usize, len: usize) -> usize {
        let room = self.style.limit.saturating_sub(used + 1);
        match (room, line <= self.prefix_len) {
            (0, true) => 1,
            (room, _) => room.min(len),
        }
    }

    /// Ends the current line (a newline, or a flush marker, came).
    fn finish(&mut self) {
        let open = if self.style.buffering {
            !self.line.is_empty()
        } else {
            self.written > 0
        };
        if open {
            let suffix = self.suffix;
            self.end_line(suffix);
        }
    }

    /// Closes the current log line: the closing quote, the suffix if it
    /// fits within the limit, the newline.
    fn end_line(&mut self, suffix: &[u8]) {
        let mut line = std::mem::take(&mut self.line);
        let len = if self.style.buffering {
            line.len()
        } else {
            self.written
        };
        if self.style.decorate {
            line.push(b'"');
            if len + 1 + suffix.len() < self.style.limit {
                line.extend_from_slice(suffix);
            }
        }
        line.push(b'\n');
        self.out.extend_from_slice(&line);
        self.written = 0;
    }

    /// `[27-Nov-2026 08:00:00] WARNING: [pool www] child 123 said into
    /// stderr: "` when decorating, else nothing.
    fn prefix(&self) -> Vec<u8> {
        if !self.style.decorate {
            return Vec::new();
        }
        let now = SystemTime::now();
        let mut time = crate::server::fpmlog::timestamp(now, crate::sys::os::utc_offset(now));
        if self.style.micros {
            let micros = now
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_micros());
            time.push_str(&format!(".{micros:06}"));
        }
        format!(
            "[{time}] WARNING: [pool {}] child {} said into {}: \"",
            self.style.pool,
            self.pid,
            if self.stdout { "stdout" } else { "stderr" }
        )
        .into_bytes()
    }
}

/// A worker's output on its way: the stream, and second handles on its
/// pipes for [`drain_all`]. Whoever reads the pipes holds its lock, so
/// text is fed in the order it was read.
struct Relay {
    stream: Stream,
    /// (stdout, stderr), read directly by [`drain_all`].
    pipes: (Option<std::fs::File>, Option<std::fs::File>),
}

/// Every worker's relay, for [`drain_all`].
static RELAYS: Mutex<Vec<Weak<Mutex<Relay>>>> = Mutex::new(Vec::new());

/// Logs what every worker has written so far and the master has not read
/// yet: called before the master logs a line of its own about a signal
/// (`Terminating ...`, say), so that a worker's words come before it, as
/// they came first.
pub fn drain_all() {
    let relays: Vec<_> = lock(&RELAYS).iter().filter_map(Weak::upgrade).collect();
    for relay in relays {
        let mut relay = lock(&relay);
        let relay = &mut *relay;
        for (stdout, pipe) in [(true, &mut relay.pipes.0), (false, &mut relay.pipes.1)] {
            let closed = pipe
                .as_ref()
                .is_some_and(|mut file| read_now(&mut file, stdout, &mut relay.stream));
            if closed {
                relay.stream.closed(false);
                *pipe = None;
            }
        }
        write_log(&relay.stream.take());
    }
}

/// Reads what `file` (a non-blocking pipe) holds now into the stream;
/// true when the pipe closed.
fn read_now(file: &mut &std::fs::File, stdout: bool, stream: &mut Stream) -> bool {
    use std::io::Read;
    let mut buf = [0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => stream.feed(stdout, &buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Relays a worker's stdout and stderr pipes into the master's log until
/// both close (the worker exited).
pub async fn relay(style: Style, pid: u32, stdout: OwnedFd, stderr: OwnedFd) {
    let second = |fd: &OwnedFd| fd.try_clone().ok().map(std::fs::File::from);
    let pipes = (second(&stdout), second(&stderr));
    let (out, err) = match (
        pipe::Receiver::from_owned_fd(stdout),
        pipe::Receiver::from_owned_fd(stderr),
    ) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(pid, "cannot read the worker's output: {e}");
            return;
        }
    };
    let shared = Arc::new(Mutex::new(Relay {
        stream: Stream::new(style, pid),
        pipes,
    }));
    {
        let mut all = lock(&RELAYS);
        all.retain(|r| r.strong_count() > 0);
        all.push(Arc::downgrade(&shared));
    }
    let (mut out, mut err) = (Some(out), Some(err));
    let mut fresh = true;
    while out.is_some() || err.is_some() {
        // Stdout first when both hold data: the order php-fpm's event loop
        // reads them in.
        let stdout = tokio::select! {
            biased;
            Ok(()) = readable(&out) => true,
            Ok(()) = readable(&err) => false,
            else => break,
        };
        let pipe = if stdout { &mut out } else { &mut err };
        let mut relay = lock(&shared);
        if let Some(receiver) = pipe.as_ref() {
            if drain(receiver, stdout, &mut relay.stream) {
                relay.stream.closed(fresh);
                *pipe = None;
                if stdout {
                    relay.pipes.0 = None;
                } else {
                    relay.pipes.1 = None;
                }
            }
        }
        fresh = false;
        write_log(&relay.stream.take());
    }
}

async fn readable(pipe: &Option<pipe::Receiver>) -> std::io::Result<()> {
    match pipe {
        Some(p) => p.readable().await,
        None => std::future::pending().await,
    }
}

/// Reads what the pipe holds now into the stream; true when it closed.
fn drain(pipe: &pipe::Receiver, stdout: bool, stream: &mut Stream) -> bool {
    let mut buf = [0u8; CHUNK];
    loop {
        match pipe.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => stream.feed(stdout, &buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!("unable to read what child say: {e}");
                return true;
            }
        }
    }
}

fn write_log(bytes: &[u8]) {
    if !bytes.is_empty() {
        if let Err(e) = super::logfile::write_main(bytes) {
            tracing::debug!("cannot write worker output to the log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(decorate: bool, limit: usize, buffering: bool) -> Style {
        Style {
            pool: "www".into(),
            decorate,
            limit,
            buffering,
            micros: false,
        }
    }

    /// The log lines, each with the time masked.
    fn lines(stream: &mut Stream) -> Vec<String> {
        String::from_utf8(stream.take())
            .unwrap()
            .split_inclusive('\n')
            .map(|l| match l.find("] ") {
                Some(at) if l.starts_with('[') => format!("[T{}", &l[at..]),
                _ => l.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_line_is_decorated() {
        let mut s = Stream::new(style(true, 1024, true), 42);
        s.feed(false, b"hello\nworld");
        assert_eq!(
            lines(&mut s),
            ["[T] WARNING: [pool www] child 42 said into stderr: \"hello\"\n"]
        );
        s.feed(false, FLUSH);
        assert_eq!(
            lines(&mut s),
            ["[T] WARNING: [pool www] child 42 said into stderr: \"world\"\n"]
        );
    }

    #[test]
    fn undecorated_lines_are_bare_and_empty_ones_vanish() {
        for buffering in [true, false] {
            let mut s = Stream::new(style(false, 1024, buffering), 42);
            s.feed(false, b"NOTICE: PHP message: hi\n\nsecond");
            s.feed(false, b" part\n");
            assert_eq!(
                lines(&mut s),
                ["NOTICE: PHP message: hi\n", "second part\n"]
            );
        }
    }

    #[test]
    fn long_lines_are_cut_at_the_limit_in_both_modes() {
        for buffering in [true, false] {
            let mut s = Stream::new(style(true, 100, buffering), 7);
            s.feed(false, &[b'a'; 150]);
            s.feed(false, b"\n");
            let raw = String::from_utf8(s.take()).unwrap();
            let got: Vec<&str> = raw.split_inclusive('\n').collect();
            let (last, full) = got.split_last().unwrap();
            assert!(full.iter().all(|l| l.len() == 100), "{got:?}");
            assert!(last.len() <= 100, "{got:?}");
            let text: String = got.iter().map(|l| l.split('"').nth(1).unwrap()).collect();
            assert_eq!(text, "a".repeat(150), "{got:?}");
        }
    }

    #[test]
    fn undecorated_cut_lines_hold_limit_minus_one_bytes() {
        let mut s = Stream::new(style(false, 512, true), 7);
        s.feed(false, &[b'x'; 1200]);
        s.closed(false);
        let got = lines(&mut s);
        let lens: Vec<usize> = got.iter().map(|l| l.len()).collect();
        assert_eq!(lens, [512, 512, 1200 - 2 * 511 + 1]);
    }

    #[test]
    fn a_flush_marker_split_across_chunks_ends_the_line() {
        let mut s = Stream::new(style(false, 1024, true), 1);
        s.feed(false, b"abc\0fs");
        s.feed(false, b"cf\0def\n");
        assert_eq!(lines(&mut s), ["abc\n", "def\n"]);
        // A NUL that is no marker is kept.
        s.feed(false, b"x\0f");
        s.feed(false, b"oo\n");
        assert_eq!(lines(&mut s), ["x\0foo\n"]);
    }

    #[test]
    fn a_line_that_fills_the_limit_ends_there() {
        // php-fpm's log-bwp-msg-flush-split-fallback: 1023 bytes fill a
        // 1024-byte line; what follows starts the next one.
        let mut s = Stream::new(style(false, 1024, true), 1);
        let mut first = vec![b'a'; 1021];
        first.extend_from_slice(b"\0f");
        s.feed(false, &first);
        s.feed(false, b"abc\0fscf\0");
        let out = s.take();
        let mut want = first.clone();
        want.extend_from_slice(b"\nabc\n");
        assert_eq!(out, want);
    }

    #[test]
    fn switching_pipes_ends_the_line() {
        let mut s = Stream::new(style(true, 1024, true), 5);
        s.feed(true, b"msg 1 - ");
        s.feed(false, b"msg 2 - ");
        s.feed(false, b"msg 3");
        s.closed(false);
        assert_eq!(
            lines(&mut s),
            [
                "[T] WARNING: [pool www] child 5 said into stdout: \"msg 1 - \"\n",
                "[T] WARNING: [pool www] child 5 said into stderr: \"msg 2 - msg 3\"\n",
            ]
        );
    }

    #[test]
    fn first_words_at_close_are_marked() {
        let mut s = Stream::new(style(true, 1024, false), 5);
        s.feed(false, b"bye");
        s.closed(true);
        assert_eq!(
            lines(&mut s),
            ["[T] WARNING: [pool www] child 5 said into stderr: \"bye\", pipe is closed\n"]
        );
    }
}
