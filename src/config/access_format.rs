//! php-fpm's `access.format`: parsed once, with php-fpm's messages for a
//! format it refuses ([`AccessFormat::parse`]), then rendered into one
//! access log line per request from a [`Record`] ([`AccessFormat::render`]).
//!
//! Tokens: `%%`, `%C` (CPU %, `{total|user|system}`), `%d` (duration,
//! `{seconds|milli|micro}`), `%{NAME}e` (a FastCGI param), `%f` (script),
//! `%l` (content length), `%m` (method), `%M` (peak memory,
//! `{bytes|kilo|mega}`), `%n` (pool), `%{Name}o` (a response header), `%p`
//! and `%P` (the child's and the master's pid), `%q` and `%Q` (query string
//! and its `?`), `%r` (request URI), `%R` (the web server's address), `%s`
//! (status), `%t` and `%T` (when the request began and ended, strftime
//! `{format}`), `%u` (the HTTP basic auth user). The request fields are cut to
//! the sizes of php-fpm's scoreboard, and the line to its 1024-byte buffer.
//!
//! Pure: the caller turns times into text (strftime in the local zone).

use std::time::Duration;

/// php-fpm's format when `access.log` is set and `access.format` is not.
pub const DEFAULT_FORMAT: &str = "%R - %u %t \"%m %r\" %s";

/// php-fpm's line buffer: a longer line is cut to this many bytes.
pub const LINE_LIMIT: usize = 1024;

/// The longest `{...}` modifier php-fpm keeps.
const MODIFIER_LIMIT: usize = 128;

/// The default `%t` and `%T` format (Apache's common log time).
const TIME_FORMAT: &[u8] = b"%d/%b/%Y:%H:%M:%S %z";

/// A parsed `access.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFormat {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Text(Vec<u8>),
    Percent,
    Cpu(CpuPart),
    Duration(Unit),
    Env(Vec<u8>),
    Script,
    ContentLength,
    Method,
    /// Peak memory divided by this.
    Memory(u64),
    Pool,
    Header(Vec<u8>),
    Pid,
    ParentPid,
    Query,
    QueryMark,
    Uri,
    RemoteIp,
    Status,
    /// `%t` (the start) or `%T` (the end), with a strftime format.
    Time {
        end: bool,
        format: Option<Vec<u8>>,
    },
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpuPart {
    Total,
    User,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Milli,
    Micro,
}

/// CPU time a request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent in user mode.
    pub user: Duration,
    /// Time spent in the kernel on the request's behalf.
    pub system: Duration,
}

/// One finished request, as the access log sees it.
pub struct Record<'a> {
    /// The web server's address (`%R`); None on a Unix socket.
    pub remote_ip: Option<String>,
    /// The HTTP basic auth user (`%u`), empty without one.
    pub auth_user: &'a [u8],
    /// The request method (`%m`), e.g. `GET`.
    pub method: &'a [u8],
    /// SCRIPT_NAME as PHP saw it (`%r`).
    pub request_uri: &'a [u8],
    /// QUERY_STRING without its `?` (`%q`), empty without one.
    pub query_string: &'a [u8],
    /// The script (`%f`), empty when none was found.
    pub script_filename: &'a [u8],
    /// CONTENT_LENGTH, the request body's size in bytes (`%l`).
    pub content_length: u64,
    /// The HTTP status of the response (`%s`).
    pub status: i32,
    /// When the request began (`%t`), in Unix seconds.
    pub started: i64,
    /// When the request ended (`%T`), in Unix seconds.
    pub ended: i64,
    /// Wall time from start to end (`%d`).
    pub duration: Duration,
    /// CPU time the request used (`%C`).
    pub cpu: CpuTime,
    /// Peak memory in bytes (PHP's real peak usage).
    pub memory: u64,
    /// The pool's name (`%n`).
    pub pool: &'a str,
    /// The pid of the worker process that ran the request (`%p`).
    pub pid: u32,
    /// The master's pid (`%P`).
    pub parent_pid: u32,
    /// The request's FastCGI param `name` (`%{name}e`).
    pub param: &'a dyn Fn(&[u8]) -> Option<Vec<u8>>,
    /// The response headers as PHP holds them, `Name: value` each (`%o`).
    pub headers: &'a [Vec<u8>],
    /// strftime(format, localtime(t)).
    pub strftime: &'a dyn Fn(&[u8], i64) -> Vec<u8>,
}

impl AccessFormat {
    /// The params the format prints (`%{NAME}e`).
    pub fn param_names(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().filter_map(|item| match item {
            Item::Env(name) => Some(name.as_slice()),
            _ => None,
        })
    }
}

/// A rendered line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The bytes to write, newline included; empty: write nothing.
    pub bytes: Vec<u8>,
    /// The line did not fit in [`LINE_LIMIT`] and was cut.
    pub truncated: bool,
}

impl AccessFormat {
    /// Parses `format`; Err is the warning php-fpm logs for it.
    pub fn parse(format: &str) -> Result<AccessFormat, String> {
        let bytes = format.as_bytes();
        let mut items = Vec::new();
        let mut text = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] != b'%' {
                text.push(bytes[at]);
                at += 1;
                continue;
            }
            let (modifier, letter_at) = modifier(bytes, at + 1)?;
            let Some(&letter) = bytes.get(letter_at) else {
                break; // a lone '%' at the end prints nothing
            };
            if !text.is_empty() {
                items.push(Item::Text(std::mem::take(&mut text)));
            }
            items.push(token(letter, modifier)?);
            at = letter_at + 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text));
        }
        Ok(AccessFormat { items })
    }

    /// Whether any token needs the response headers (`%o`).
    pub fn wants_headers(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Header(_)))
    }

    /// The line for `record`, cut to [`LINE_LIMIT`] bytes as php-fpm cuts it.
    pub fn render(&self, record: &Record) -> Line {
        let mut out = Vec::with_capacity(256);
        let mut truncated = false;
        'items: for item in &self.items {
            if let Item::Text(text) = item {
                for &b in text {
                    if out.len() >= LINE_LIMIT {
                        truncated = true;
                        break 'items;
                    }
                    out.push(b);
                }
                continue;
            }
            if out.len() >= LINE_LIMIT {
                truncated = true;
                break;
            }
            match value(item, record) {
                Value::Byte(b) => out.push(b),
                Value::Text(v) => push_cut(&mut out, &v),
            }
            if out.len() >= LINE_LIMIT {
                truncated = true;
                break;
            }
        }
        if !out.is_empty() {
            out.push(b'\n');
        }
        Line {
            bytes: out,
            truncated,
        }
    }
}

/// The `{...}` modifiers after a '%' at `at` (the last one counts), and
/// where the token letter is.
fn modifier(bytes: &[u8], mut at: usize) -> Result<(Vec<u8>, usize), String> {
    let mut modifier = Vec::new();
    while bytes.get(at) == Some(&b'{') {
        let missing = || "missing closing embrace in the access.format".to_string();
        let close = bytes[at + 1..].iter().position(|&b| b == b'}');
        let end = at + 1 + close.ok_or_else(missing)?;
        if end + 1 >= bytes.len() {
            return Err(missing());
        }
        let inner = &bytes[at + 1..end];
        modifier = inner[..inner.len().min(MODIFIER_LIMIT)].to_vec();
        at = end + 1;
    }
    Ok((modifier, at))
}

/// The item for `%letter` with `modifier` (empty: none).
fn token(letter: u8, modifier: Vec<u8>) -> Result<Item, String> {
    let is = |names: &[&str]| {
        names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(&modifier))
    };
    let plain = |item: Item| match modifier.is_empty() {
        true => Ok(item),
        false => Err(format!(
            "embrace is not allowed for modifier %{}",
            letter as char
        )),
    };
    let allowed = |list: &str| {
        format!(
            "only {list} are allowed as a modifier for %{} ('{}')",
            letter as char,
            String::from_utf8_lossy(&modifier)
        )
    };
    let named = |what: &str| {
        format!(
            "the name of the {what} must be set between embraces for %{}",
            letter as char
        )
    };
    match letter {
        b'%' => plain(Item::Percent),
        b'C' if is(&["", "total"]) => Ok(Item::Cpu(CpuPart::Total)),
        b'C' if is(&["user"]) => Ok(Item::Cpu(CpuPart::User)),
        b'C' if is(&["system"]) => Ok(Item::Cpu(CpuPart::System)),
        b'C' => Err(allowed("'total', 'user' or 'system'")),
        b'd' if is(&["", "seconds"]) => Ok(Item::Duration(Unit::Seconds)),
        b'd' if is(&["milliseconds", "milli", "miliseconds", "mili"]) => {
            Ok(Item::Duration(Unit::Milli))
        }
        b'd' if is(&["microseconds", "micro"]) => Ok(Item::Duration(Unit::Micro)),
        b'd' => Err(allowed(
            "'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds'",
        )),
        b'e' if modifier.is_empty() => Err(named("environment variable")),
        b'e' => Ok(Item::Env(modifier)),
        b'f' => plain(Item::Script),
        b'l' => plain(Item::ContentLength),
        b'm' => plain(Item::Method),
        b'M' if is(&["", "bytes"]) => Ok(Item::Memory(1)),
        b'M' if is(&["kilobytes", "kilo"]) => Ok(Item::Memory(1024)),
        b'M' if is(&["megabytes", "mega"]) => Ok(Item::Memory(1024 * 1024)),
        b'M' => Err(allowed(
            "'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes'",
        )),
        b'n' => plain(Item::Pool),
        b'o' if modifier.is_empty() => Err(named("header")),
        b'o' => Ok(Item::Header(modifier)),
        b'p' => plain(Item::Pid),
        b'P' => plain(Item::ParentPid),
        b'q' => plain(Item::Query),
        b'Q' => plain(Item::QueryMark),
        b'r' => plain(Item::Uri),
        b'R' => plain(Item::RemoteIp),
        b's' => plain(Item::Status),
        b't' | b'T' => Ok(Item::Time {
            end: letter == b'T',
            format: (!modifier.is_empty()).then_some(modifier),
        }),
        b'u' => plain(Item::User),
        _ => Err(format!(
            "Invalid token in the access.format (%{})",
            letter as char
        )),
    }
}

/// What a token prints: one byte stored as is, or text that is cut as
/// php-fpm's snprintf cuts it at the end of the buffer.
enum Value {
    Byte(u8),
    Text(Vec<u8>),
}

fn value(item: &Item, r: &Record) -> Value {
    let text = |s: &[u8]| Value::Text(s.to_vec());
    let or_dash = |s: &[u8]| text(if s.is_empty() { b"-" } else { s });
    let number = |n: &dyn std::fmt::Display| Value::Text(n.to_string().into_bytes());
    match item {
        Item::Text(t) => text(t),
        Item::Percent => Value::Byte(b'%'),
        Item::Cpu(part) => Value::Text(cpu_percent(*part, r).into_bytes()),
        Item::Duration(unit) => Value::Text(duration(*unit, r.duration).into_bytes()),
        Item::Env(name) => match (r.param)(name) {
            Some(v) => text(until_nul(&v)),
            None => text(b"-"),
        },
        Item::Script => or_dash(cut(r.script_filename, 255)),
        Item::ContentLength => number(&r.content_length),
        Item::Method => or_dash(cut(r.method, 15)),
        Item::Memory(unit) => number(&(r.memory / unit)),
        Item::Pool => or_dash(cut(r.pool.as_bytes(), 31)),
        Item::Header(name) => match header(r.headers, name) {
            Some(v) => text(v),
            None => Value::Byte(b'-'),
        },
        Item::Pid => number(&r.pid),
        Item::ParentPid => number(&r.parent_pid),
        Item::Query => text(cut(r.query_string, 511)),
        Item::QueryMark => text(if r.query_string.is_empty() { b"" } else { b"?" }),
        Item::Uri => text(cut(r.request_uri, 127)),
        Item::RemoteIp => text(r.remote_ip.as_deref().unwrap_or("-").as_bytes()),
        Item::Status => number(&r.status),
        Item::Time { end, format } => {
            let at = if *end { r.ended } else { r.started };
            let out = (r.strftime)(format.as_deref().unwrap_or(TIME_FORMAT), at);
            text(until_nul(&out))
        }
        Item::User => text(cut(r.auth_user, 31)),
    }
}

/// Appends `value`; when it reaches the end of the buffer, php-fpm's
/// snprintf keeps one byte less and leaves its NUL in the last place.
fn push_cut(out: &mut Vec<u8>, value: &[u8]) {
    let room = LINE_LIMIT - out.len();
    if value.len() < room {
        out.extend_from_slice(value);
    } else {
        out.extend_from_slice(&value[..room - 1]);
        out.push(0);
    }
}

/// The first `max` bytes of `s` (php-fpm's fixed-size fields).
fn cut(s: &[u8], max: usize) -> &[u8] {
    until_nul(&s[..s.len().min(max)])
}

/// A C string's view of `s`: up to its first NUL.
fn until_nul(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |end| &s[..end])
}

/// The value of header `name` as php-fpm finds it: a header that contains
/// `name` and has ": " right after its first `name.len()` bytes, with
/// something after that.
fn header<'h>(headers: &'h [Vec<u8>], name: &[u8]) -> Option<&'h [u8]> {
    let n = name.len();
    headers.iter().find_map(|h| {
        let found =
            h.len() > n + 2 && h.windows(n).any(|w| w == name) && h[n] == b':' && h[n + 1] == b' ';
        found.then(|| &h[n + 2..])
    })
}

/// `%C`: CPU time over wall time, in percent, with two decimals.
fn cpu_percent(part: CpuPart, r: &Record) -> String {
    let used = match part {
        CpuPart::Total => r.cpu.user + r.cpu.system,
        CpuPart::User => r.cpu.user,
        CpuPart::System => r.cpu.system,
    };
    c_fixed(
        used.as_secs_f64() / micros(r.duration) as f64 * 1e6 * 100.0,
        2,
    )
}

/// `%d` in php-fpm's units, from whole microseconds.
fn duration(unit: Unit, d: Duration) -> String {
    let us = micros(d);
    match unit {
        Unit::Seconds => c_fixed(us as f64 / 1e6, 3),
        Unit::Milli => c_fixed(us as f64 / 1e3, 3),
        Unit::Micro => us.to_string(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// printf's `%.Nf`, including its words for what is not a number.
fn c_fixed(x: f64, digits: usize) -> String {
    match x {
        x if x.is_nan() && x.is_sign_negative() => "-nan".into(),
        x if x.is_nan() => "nan".into(),
        x if x.is_infinite() && x < 0.0 => "-inf".into(),
        x if x.is_infinite() => "inf".into(),
        x => format!("{x:.digits$}"),
    }
}

/// Whether `access.suppress_path` keeps this request out of the log: a GET
/// or HEAD with no query string and no body, a 2xx status, and a request
/// URI that is exactly one of the paths.
pub fn suppressed(paths: &[String], r: &Record) -> bool {
    let method = cut(r.method, 15);
    cut(r.query_string, 511).is_empty()
        && (method == b"GET" || method == b"HEAD")
        && (200..=299).contains(&r.status)
        && r.content_length == 0
        && paths
            .iter()
            .any(|p| p.as_bytes() == cut(r.request_uri, 127))
}

#[cfg(test)]
mod tests;
