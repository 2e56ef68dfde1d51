//! php-fpm's status page (`pm.status_path`), as a pure renderer: the pool's
//! and each process's figures in, the response headers and body out, laid
//! out byte for byte as php-fpm 8.2 or 8.4 writes them in its five formats (plain
//! text, JSON, XML, HTML and OpenMetrics), with or without the per-process
//! part (`full`). Which format a query string asks for is in
//! `status_query`, re-exported here.
//!
//! This module gathers nothing and does no I/O: the caller fills
//! [`PoolStatus`], including each time's offset from UTC (php-fpm prints
//! its dates in its workers' local zone: `/etc/localtime`, or the pool's
//! `env[TZ]`, since they clear their environment), and passes "now", so
//! the output depends on its inputs only.
//!
//! A HEAD gets the headers of [`render_head`] and no body. The caller adds
//! what PHP adds to any response, such as `X-Powered-By` when `expose_php`
//! is on.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::status_escape::{escape_json, escape_json_path, escape_xml};
pub use super::status_query::{parse_query, Dialect, Query};
pub use crate::config::Pm;

/// PHP's `default_charset` when php.ini does not set it.
pub const DEFAULT_CHARSET: &str = "UTF-8";

/// The value of `Expires` on every status response.
const EXPIRES: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
/// The value of `Cache-Control` on every status response.
const CACHE_CONTROL: &str = "no-cache, no-store, must-revalidate, max-age=0";
/// The text format's labels are padded to this width.
const LABEL_WIDTH: usize = 22;
/// The line above each process in the text format.
const TEXT_PROC_RULE: &str = "************************";

/// The pool as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    /// The pool's name (php-fpm keeps 31 bytes of it).
    pub pool: String,
    pub process_manager: Pm,
    /// When the pool started.
    pub start_time: LocalTime,
    /// Requests accepted since the start.
    pub accepted_conn: u64,
    /// Connections waiting in the listen backlog now.
    pub listen_queue: u64,
    pub max_listen_queue: u64,
    /// The listen backlog's size.
    pub listen_queue_len: u64,
    pub idle_processes: u64,
    pub active_processes: u64,
    pub max_active_processes: u64,
    pub max_children_reached: u64,
    pub slow_requests: u64,
    /// "memory peak", which php-fpm shows from PHP 8.4 on; `None` leaves it
    /// out, as php-fpm 8.2 does.
    pub memory_peak: Option<u64>,
    /// Whose php-fpm the page follows where 8.2's and 8.4's differ.
    pub dialect: Dialect,
    /// The pool's worker script, if it has one (tfpm's own fields, after
    /// php-fpm's).
    pub worker_script: Option<WorkerScriptStatus>,
    /// Shown with `full`, in this order.
    pub procs: Vec<ProcStatus>,
}

/// A pool's worker script (worker mode), summed over the pool's workers.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerScriptStatus {
    pub script: String,
    /// Each thread's first boot and every restart.
    pub boots: u64,
    pub requests: u64,
    pub busy_threads: u64,
}

impl PoolStatus {
    /// "total processes": php-fpm adds idle and active.
    pub fn total_processes(&self) -> u64 {
        self.idle_processes + self.active_processes
    }
}

/// One process (for tfpm, one PHP thread) as the `full` status shows it.
///
/// Empty strings print as `-`, as php-fpm prints a field it has not
/// filled. An idle process keeps its last request's method, URI, script
/// and so on, as php-fpm's do. php-fpm cuts its strings to the byte
/// lengths noted; cutting is the caller's business (at a char boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStatus {
    pub pid: u32,
    pub state: ProcState,
    /// When the process started.
    pub start_time: LocalTime,
    /// Requests served, the current one included.
    pub requests: u64,
    /// Idle: how long its last request took. Otherwise: how long the
    /// current one has run so far.
    pub request_duration_us: u64,
    /// At most 15 bytes in php-fpm.
    pub request_method: String,
    /// The script's URI without the query string (php-fpm's
    /// `request_info.request_uri`, at most 127 bytes there).
    pub request_uri: String,
    /// Shown after the URI and a `?` when not empty (at most 511 bytes).
    pub query_string: String,
    pub content_length: u64,
    /// The authenticated user (`REMOTE_USER`, at most 31 bytes).
    pub user: String,
    /// The script's path (`SCRIPT_FILENAME`, at most 255 bytes).
    pub script: String,
    /// The last request's CPU use, in percent of its duration; printed
    /// only while idle (else 0.00).
    pub last_request_cpu: f64,
    /// The last request's peak memory, in bytes; printed only while idle
    /// (else 0).
    pub last_request_memory: u64,
}

/// Where a process is in its request cycle, by php-fpm's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Waiting for a request.
    Idle,
    ReadingHeaders,
    GettingRequestInfo,
    Running,
    Ending,
    Finishing,
}

impl ProcState {
    /// The name the status page prints.
    pub fn name(self) -> &'static str {
        match self {
            ProcState::Idle => "Idle",
            ProcState::ReadingHeaders => "Reading headers",
            ProcState::GettingRequestInfo => "Getting request information",
            ProcState::Running => "Running",
            ProcState::Ending => "Ending",
            ProcState::Finishing => "Finishing",
        }
    }
}

/// A moment, with the local zone's offset from UTC at that moment
/// (`tm_gmtoff` of `localtime()`), which the text and HTML dates show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub time: SystemTime,
    /// Seconds east of UTC.
    pub utc_offset: i32,
}

/// The status page's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Xml,
    Html,
    OpenMetrics,
}

/// A status response: headers in php-fpm's order and spelling, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The status page in `format` (with the processes if `full`), as php-fpm
/// answers a GET at `now`, with PHP's default `default_charset`.
pub fn render(status: &PoolStatus, format: Format, full: bool, now: SystemTime) -> Rendered {
    render_with_charset(status, format, full, now, DEFAULT_CHARSET)
}

/// [`render`] under another `default_charset`, which PHP appends to a
/// `text/*` Content-Type (and an empty one leaves out).
pub fn render_with_charset(
    status: &PoolStatus,
    format: Format,
    full: bool,
    now: SystemTime,
    default_charset: &str,
) -> Rendered {
    let mut headers = cache_headers();
    headers.push(content_type(format, default_charset));
    let now = epoch_secs(now);
    let body = match format {
        Format::Text => text(status, full, now),
        Format::Json => json(status, full, now),
        Format::Xml => xml(status, full, now),
        Format::Html => html(status, full, now),
        Format::OpenMetrics => openmetrics(status, now),
    };
    Rendered { headers, body }
}

/// The answer to a HEAD: php-fpm stops before choosing a format, so PHP
/// adds its default Content-Type (`default_mimetype` and `default_charset`
/// at their defaults), and there is no body.
pub fn render_head() -> Rendered {
    let mut headers = cache_headers();
    let default = format!("text/html; charset={DEFAULT_CHARSET}");
    headers.push(("Content-type".to_string(), default));
    Rendered {
        headers,
        body: String::new(),
    }
}

fn cache_headers() -> Vec<(String, String)> {
    vec![
        ("Expires".to_string(), EXPIRES.to_string()),
        ("Cache-Control".to_string(), CACHE_CONTROL.to_string()),
    ]
}

/// The Content-Type as PHP sends it: for `text/*` it appends the charset
/// and respells the name `Content-type`.
fn content_type(format: Format, charset: &str) -> (String, String) {
    let mime = match format {
        Format::Text => "text/plain",
        Format::Json => "application/json",
        Format::Xml => "text/xml",
        Format::Html => "text/html",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    };
    if mime.starts_with("text/") && !charset.is_empty() {
        let value = format!("{mime};charset={charset}");
        return ("Content-type".to_string(), value);
    }
    ("Content-Type".to_string(), mime.to_string())
}

/// One `name: value` of the page; the formats lay out the same fields.
struct Field {
    name: &'static str,
    value: String,
    /// A string (quoted in JSON), not a number.
    text: bool,
}

fn number(name: &'static str, value: impl ToString) -> Field {
    Field {
        name,
        value: value.to_string(),
        text: false,
    }
}

fn string(name: &'static str, value: impl ToString) -> Field {
    Field {
        name,
        value: value.to_string(),
        text: true,
    }
}

/// How a format prints dates and escapes the request URI.
#[derive(Clone, Copy)]
struct Style {
    /// Local `dd/Mon/yyyy:hh:mm:ss +zzzz`, else seconds since the epoch.
    local_dates: bool,
    escape: fn(&str) -> String,
    /// For the request URI's path (the query string takes `escape`).
    escape_path: fn(&str) -> String,
}

const TEXT_STYLE: Style = Style {
    local_dates: true,
    escape: verbatim,
    escape_path: verbatim,
};
const HTML_STYLE: Style = Style {
    local_dates: true,
    escape: escape_xml,
    escape_path: escape_xml,
};
const XML_STYLE: Style = Style {
    local_dates: false,
    escape: escape_xml,
    escape_path: escape_xml,
};
/// php-fpm 8.4 prints the path as it is and JSON-encodes the query string
/// only; tfpm still escapes what JSON needs, but not `/`.
const JSON_STYLE_84: Style = Style {
    local_dates: false,
    escape: escape_json,
    escape_path: escape_json_path,
};
const JSON_STYLE: Style = Style {
    local_dates: false,
    escape: escape_json,
    escape_path: escape_json,
};

impl Style {
    fn date(self, at: LocalTime) -> Field {
        if self.local_dates {
            string("start time", local_date(at))
        } else {
            number("start time", epoch_secs(at.time))
        }
    }
}

fn pool_fields(s: &PoolStatus, style: Style, now: i64) -> Vec<Field> {
    let mut fields = vec![
        string("pool", &s.pool),
        string("process manager", s.process_manager.name()),
        style.date(s.start_time),
        number("start since", since(s.start_time, now)),
        number("accepted conn", s.accepted_conn),
        number("listen queue", s.listen_queue),
        number("max listen queue", s.max_listen_queue),
        number("listen queue len", s.listen_queue_len),
        number("idle processes", s.idle_processes),
        number("active processes", s.active_processes),
        number("total processes", s.total_processes()),
        number("max active processes", s.max_active_processes),
        number("max children reached", s.max_children_reached),
        number("slow requests", s.slow_requests),
    ];
    if let Some(peak) = s.memory_peak {
        fields.push(number("memory peak", peak));
    }
    if let Some(w) = &s.worker_script {
        fields.extend([
            string("worker script", &w.script),
            number("worker script boots", w.boots),
            number("worker script requests", w.requests),
            number("worker script busy threads", w.busy_threads),
        ]);
    }
    fields
}

fn proc_fields(p: &ProcStatus, style: Style, now: i64) -> Vec<Field> {
    let idle = p.state == ProcState::Idle;
    // php-fpm keeps the CPU share in single precision before printing it.
    let cpu = if idle { p.last_request_cpu as f32 } else { 0.0 };
    vec![
        number("pid", p.pid),
        string("state", p.state.name()),
        style.date(p.start_time),
        number("start since", since(p.start_time, now)),
        number("requests", p.requests),
        number("request duration", p.request_duration_us),
        string("request method", or_dash(&p.request_method)),
        string("request uri", request_uri(p, style)),
        number("content length", p.content_length),
        string("user", or_dash(&p.user)),
        string("script", or_dash(&p.script)),
        number("last request cpu", format!("{:.2}", f64::from(cpu))),
        number(
            "last request memory",
            if idle { p.last_request_memory } else { 0 },
        ),
    ]
}

/// The URI (or `-`), then `?` and the query string if there is one; the
/// two are escaped for the format, the rest of the page is not.
fn request_uri(p: &ProcStatus, style: Style) -> String {
    let mut uri = match p.request_uri.as_str() {
        "" => "-".to_string(),
        u => (style.escape_path)(u),
    };
    if !p.query_string.is_empty() {
        uri.push('?');
        uri.push_str(&(style.escape)(&p.query_string));
    }
    uri
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn text(s: &PoolStatus, full: bool, now: i64) -> String {
    let mut out = text_lines(&pool_fields(s, TEXT_STYLE, now));
    if full {
        for p in &s.procs {
            out.push('\n');
            out.push_str(TEXT_PROC_RULE);
            out.push('\n');
            out.push_str(&text_lines(&proc_fields(p, TEXT_STYLE, now)));
        }
    }
    out
}

fn text_lines(fields: &[Field]) -> String {
    let mut out = String::new();
    for f in fields {
        // The one label the text format capitalises.
        let name = if f.name == "request uri" {
            "request URI"
        } else {
            f.name
        };
        // php-fpm's labels all fit; tfpm's longer ones keep one space.
        let _ = writeln!(out, "{:<LABEL_WIDTH$}{}", format!("{name}: "), f.value);
    }
    out
}

fn json(s: &PoolStatus, full: bool, now: i64) -> String {
    let style = match s.dialect {
        Dialect::Prefix => JSON_STYLE,
        Dialect::Exact => JSON_STYLE_84,
    };
    let mut out = format!("{{{}", json_members(&pool_fields(s, style, now)));
    if full {
        let procs: Vec<String> = s
            .procs
            .iter()
            .map(|p| format!("{{{}}}", json_members(&proc_fields(p, style, now))))
            .collect();
        let _ = write!(out, ", \"processes\":[{}]", procs.join(","));
    }
    out.push('}');
    out
}

fn json_members(fields: &[Field]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|f| match f.text {
            true => format!("\"{}\":\"{}\"", f.name, f.value),
            false => format!("\"{}\":{}", f.name, f.value),
        })
        .collect();
    members.join(",")
}

fn xml(s: &PoolStatus, full: bool, now: i64) -> String {
    let mut out = String::from("<?xml version=\"1.0\" ?>\n<status>\n");
    for f in pool_fields(s, XML_STYLE, now) {
        out.push_str(&xml_element(&f));
        out.push('\n');
    }
    if full {
        out.push_str("<processes>\n");
        for p in &s.procs {
            let elements: String = proc_fields(p, XML_STYLE, now)
                .iter()
                .map(xml_element)
                .collect();
            let _ = writeln!(out, "<process>{elements}</process>");
        }
        out.push_str("</processes>\n");
    }
    out.push_str("</status>");
    out
}

fn xml_element(f: &Field) -> String {
    let tag = f.name.replace(' ', "-");
    format!("<{tag}>{}</{tag}>", f.value)
}

const HTML_HEAD: &str = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \
\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n\
<head><title>PHP-FPM Status Page</title></head>\n\
<body>\n";

fn html(s: &PoolStatus, full: bool, now: i64) -> String {
    let mut out = format!("{HTML_HEAD}<table>\n");
    for f in pool_fields(s, HTML_STYLE, now) {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", f.name, f.value);
    }
    out.push_str("</table>\n");
    if full {
        out.push_str(&html_procs(&s.procs, now));
    }
    out.push_str("</body></html>");
    out
}

/// The process table: a header row, then a row per process.
fn html_procs(procs: &[ProcStatus], now: i64) -> String {
    let names: String = HTML_PROC_COLUMNS
        .iter()
        .map(|name| format!("<th>{name}</th>"))
        .collect();
    let mut out = format!("<table border=\"1\">\n<tr>{names}</tr>\n");
    for p in procs {
        let cells: String = proc_fields(p, HTML_STYLE, now)
            .iter()
            .map(|f| format!("<td>{}</td>", f.value))
            .collect();
        let _ = writeln!(out, "<tr>{cells}</tr>");
    }
    out.push_str("</table>");
    out
}

/// The process table's column names: [`proc_fields`]' names, in order.
const HTML_PROC_COLUMNS: [&str; 13] = [
    "pid",
    "state",
    "start time",
    "start since",
    "requests",
    "request duration",
    "request method",
    "request uri",
    "content length",
    "user",
    "script",
    "last request cpu",
    "last request memory",
];

/// The OpenMetrics families after `phpfpm_up`, in php-fpm's order: name
/// (after `phpfpm_`), type and help.
const FAMILIES: [(&str, &str, &str); 11] = [
    ("start_since", "counter", "The number of seconds since FPM has started."),
    ("accepted_connections", "counter", "The number of requests accepted by the pool."),
    ("listen_queue", "gauge", "The number of requests in the queue of pending connections."),
    ("max_listen_queue", "counter", "The maximum number of requests in the queue of pending connections since FPM has started."),
    ("listen_queue_length", "gauge", "The size of the socket queue of pending connections."),
    ("idle_processes", "gauge", "The number of idle processes."),
    ("active_processes", "gauge", "The number of active processes."),
    ("total_processes", "gauge", "The number of idle + active processes."),
    ("max_active_processes", "counter", "The maximum number of active processes since FPM has started."),
    ("max_children_reached", "counter", "The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand')."),
    ("slow_requests", "counter", "The number of requests that exceeded your 'request_slowlog_timeout' value."),
];

/// The values of [`FAMILIES`], in the same order.
fn family_values(s: &PoolStatus, now: i64) -> [u64; 11] {
    [
        since(s.start_time, now),
        s.accepted_conn,
        s.listen_queue,
        s.max_listen_queue,
        s.listen_queue_len,
        s.idle_processes,
        s.active_processes,
        s.total_processes(),
        s.max_active_processes,
        s.max_children_reached,
        s.slow_requests,
    ]
}

/// php-fpm's OpenMetrics page; it has no per-process part, so `full`
/// changes nothing.
fn openmetrics(s: &PoolStatus, now: i64) -> String {
    let up = format!(
        "Could pool {} using a {} PM on PHP-FPM be reached?",
        s.pool,
        s.process_manager.name()
    );
    let mut out = String::new();
    write_family(&mut out, ("up", "gauge", &up), 1);
    for (family, value) in FAMILIES.into_iter().zip(family_values(s, now)) {
        write_family(&mut out, family, value);
    }
    if let Some(peak) = s.memory_peak {
        let help = "The memory usage peak since FPM has started.";
        write_family(&mut out, ("memory_peak", "gauge", help), peak);
    }
    out.push_str("# EOF\n");
    out
}

fn write_family(out: &mut String, (name, kind, help): (&str, &str, &str), value: u64) {
    let help = format!("# HELP phpfpm_{name} {help}\n");
    let kind = format!("# TYPE phpfpm_{name} {kind}\n");
    // php-fpm writes this one family's TYPE line before its HELP line.
    if name == "listen_queue_length" {
        out.push_str(&kind);
        out.push_str(&help);
    } else {
        out.push_str(&help);
        out.push_str(&kind);
    }
    let _ = writeln!(out, "phpfpm_{name} {value}");
}

/// Whole seconds since the epoch, rounded down (as `time()` counts).
fn epoch_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// "start since": whole seconds from `at` to `now`; 0 if `at` is later
/// (php-fpm would print the negative difference as a huge unsigned number).
fn since(at: LocalTime, now: i64) -> u64 {
    u64::try_from(now - epoch_secs(at.time)).unwrap_or(0)
}

/// `dd/Mon/yyyy:hh:mm:ss +hhmm` in the moment's own offset (strftime's
/// `%d/%b/%Y:%H:%M:%S %z` in the C locale).
fn local_date(at: LocalTime) -> String {
    let local = epoch_secs(at.time) + i64::from(at.utc_offset);
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = super::fpmlog::civil(days);
    let offset_minutes = at.utc_offset.unsigned_abs() / 60;
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} {}{:02}{:02}",
        super::fpmlog::MONTHS[month as usize - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        if at.utc_offset < 0 { '-' } else { '+' },
        offset_minutes / 60,
        offset_minutes % 60,
    )
}

fn verbatim(s: &str) -> String {
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const START: u64 = 1_709_211_909; // 2024-02-29 13:05:09 UTC

    fn at(secs: u64, utc_offset: i32) -> LocalTime {
        LocalTime {
            time: UNIX_EPOCH + Duration::from_secs(secs),
            utc_offset,
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis((START + 100) * 1000 + 999)
    }

    /// An idle process that served a request, the one serving the status
    /// page, and one that never had a request.
    fn pool() -> PoolStatus {
        PoolStatus {
            pool: "www".into(),
            process_manager: Pm::Static,
            start_time: at(START, 3600),
            accepted_conn: 11,
            listen_queue: 1,
            max_listen_queue: 2,
            listen_queue_len: 511,
            idle_processes: 2,
            active_processes: 1,
            max_active_processes: 3,
            max_children_reached: 4,
            slow_requests: 5,
            memory_peak: None,
            dialect: Dialect::Prefix,
            worker_script: None,
            procs: vec![served(), serving(), fresh()],
        }
    }

    fn served() -> ProcStatus {
        ProcStatus {
            pid: 101,
            state: ProcState::Idle,
            start_time: at(START + 10, -12_600),
            requests: 7,
            request_duration_us: 1234,
            request_method: "POST".into(),
            request_uri: "/index.php".into(),
            query_string: "a=1&b=<x>\"é/'".into(),
            content_length: 42,
            user: "bob".into(),
            script: "/srv/index.php".into(),
            last_request_cpu: 12.345,
            last_request_memory: 2_097_152,
        }
    }

    fn serving() -> ProcStatus {
        ProcStatus {
            pid: 102,
            state: ProcState::Running,
            start_time: at(START + 20, 0),
            requests: 3,
            request_duration_us: 5678,
            request_method: "GET".into(),
            request_uri: "/status".into(),
            query_string: "json&full".into(),
            content_length: 0,
            user: String::new(),
            script: "/status".into(),
            last_request_cpu: 50.0,
            last_request_memory: 999,
        }
    }

    fn fresh() -> ProcStatus {
        ProcStatus {
            pid: 103,
            state: ProcState::Idle,
            start_time: at(START + 30, 0),
            requests: 0,
            request_duration_us: 0,
            request_method: String::new(),
            request_uri: String::new(),
            query_string: String::new(),
            content_length: 0,
            user: String::new(),
            script: String::new(),
            last_request_cpu: 0.0,
            last_request_memory: 0,
        }
    }

    fn body(format: Format, full: bool) -> String {
        render(&pool(), format, full, now()).body
    }

    const TEXT: &str = "\
pool:                 www
process manager:      static
start time:           29/Feb/2024:14:05:09 +0100
start since:          100
accepted conn:        11
listen queue:         1
max listen queue:     2
listen queue len:     511
idle processes:       2
active processes:     1
total processes:      3
max active processes: 3
max children reached: 4
slow requests:        5
";

    const TEXT_PROCS: &str = "
************************
pid:                  101
state:                Idle
start time:           29/Feb/2024:09:35:19 -0330
start since:          90
requests:             7
request duration:     1234
request method:       POST
request URI:          /index.php?a=1&b=<x>\"é/'
content length:       42
user:                 bob
script:               /srv/index.php
last request cpu:     12.35
last request memory:  2097152

************************
pid:                  102
state:                Running
start time:           29/Feb/2024:13:05:29 +0000
start since:          80
requests:             3
request duration:     5678
request method:       GET
request URI:          /status?json&full
content length:       0
user:                 -
script:               /status
last request cpu:     0.00
last request memory:  0

************************
pid:                  103
state:                Idle
start time:           29/Feb/2024:13:05:39 +0000
start since:          70
requests:             0
request duration:     0
request method:       -
request URI:          -
content length:       0
user:                 -
script:               -
last request cpu:     0.00
last request memory:  0
";

    #[test]
    fn text_short_and_full() {
        assert_eq!(body(Format::Text, false), TEXT);
        assert_eq!(body(Format::Text, true), format!("{TEXT}{TEXT_PROCS}"));
    }

    const JSON: &str = concat!(
        r#"{"pool":"www","process manager":"static","start time":1709211909,"start since":100,"#,
        r#""accepted conn":11,"listen queue":1,"max listen queue":2,"listen queue len":511,"#,
        r#""idle processes":2,"active processes":1,"total processes":3,"max active processes":3,"#,
        r#""max children reached":4,"slow requests":5"#,
    );

    const JSON_PROCS: &str = concat!(
        r#", "processes":["#,
        r#"{"pid":101,"state":"Idle","start time":1709211919,"start since":90,"requests":7,"#,
        r#""request duration":1234,"request method":"POST","#,
        r#""request uri":"\/index.php?a=1&b=<x>\"\u00e9\/'","content length":42,"user":"bob","#,
        r#""script":"/srv/index.php","last request cpu":12.35,"last request memory":2097152},"#,
        r#"{"pid":102,"state":"Running","start time":1709211929,"start since":80,"requests":3,"#,
        r#""request duration":5678,"request method":"GET","request uri":"\/status?json&full","#,
        r#""content length":0,"user":"-","script":"/status","last request cpu":0.00,"#,
        r#""last request memory":0},"#,
        r#"{"pid":103,"state":"Idle","start time":1709211939,"start since":70,"requests":0,"#,
        r#""request duration":0,"request method":"-","request uri":"-","content length":0,"#,
        r#""user":"-","script":"-","last request cpu":0.00,"last request memory":0}]"#,
    );

    #[test]
    fn json_short_and_full() {
        assert_eq!(body(Format::Json, false), format!("{JSON}}}"));
        assert_eq!(body(Format::Json, true), format!("{JSON}{JSON_PROCS}}}"));
    }

    #[test]
    fn json_full_without_processes() {
        let mut status = pool();
        status.procs.clear();
        let body = render(&status, Format::Json, true, now()).body;
        assert_eq!(body, format!("{JSON}, \"processes\":[]}}"));
    }

    const XML: &str = "\
<?xml version=\"1.0\" ?>
<status>
<pool>www</pool>
<process-manager>static</process-manager>
<start-time>1709211909</start-time>
<start-since>100</start-since>
<accepted-conn>11</accepted-conn>
<listen-queue>1</listen-queue>
<max-listen-queue>2</max-listen-queue>
<listen-queue-len>511</listen-queue-len>
<idle-processes>2</idle-processes>
<active-processes>1</active-processes>
<total-processes>3</total-processes>
<max-active-processes>3</max-active-processes>
<max-children-reached>4</max-children-reached>
<slow-requests>5</slow-requests>
";

    const XML_PROCS: &str = concat!(
        "<processes>\n",
        "<process><pid>101</pid><state>Idle</state><start-time>1709211919</start-time>",
        "<start-since>90</start-since><requests>7</requests><request-duration>1234</request-duration>",
        "<request-method>POST</request-method>",
        "<request-uri>/index.php?a=1&amp;b=&lt;x&gt;&quot;é/'</request-uri>",
        "<content-length>42</content-length><user>bob</user><script>/srv/index.php</script>",
        "<last-request-cpu>12.35</last-request-cpu><last-request-memory>2097152</last-request-memory>",
        "</process>\n",
        "<process><pid>102</pid><state>Running</state><start-time>1709211929</start-time>",
        "<start-since>80</start-since><requests>3</requests><request-duration>5678</request-duration>",
        "<request-method>GET</request-method><request-uri>/status?json&amp;full</request-uri>",
        "<content-length>0</content-length><user>-</user><script>/status</script>",
        "<last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory>",
        "</process>\n",
        "<process><pid>103</pid><state>Idle</state><start-time>1709211939</start-time>",
        "<start-since>70</start-since><requests>0</requests><request-duration>0</request-duration>",
        "<request-method>-</request-method><request-uri>-</request-uri>",
        "<content-length>0</content-length><user>-</user><script>-</script>",
        "<last-request-cpu>0.00</last-request-cpu><last-request-memory>0</last-request-memory>",
        "</process>\n",
        "</processes>\n",
    );

    #[test]
    fn xml_short_and_full() {
        assert_eq!(body(Format::Xml, false), format!("{XML}</status>"));
        assert_eq!(
            body(Format::Xml, true),
            format!("{XML}{XML_PROCS}</status>")
        );
    }

    const HTML: &str = "\
<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">
<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">
<head><title>PHP-FPM Status Page</title></head>
<body>
<table>
<tr><th>pool</th><td>www</td></tr>
<tr><th>process manager</th><td>static</td></tr>
<tr><th>start time</th><td>29/Feb/2024:14:05:09 +0100</td></tr>
<tr><th>start since</th><td>100</td></tr>
<tr><th>accepted conn</th><td>11</td></tr>
<tr><th>listen queue</th><td>1</td></tr>
<tr><th>max listen queue</th><td>2</td></tr>
<tr><th>listen queue len</th><td>511</td></tr>
<tr><th>idle processes</th><td>2</td></tr>
<tr><th>active processes</th><td>1</td></tr>
<tr><th>total processes</th><td>3</td></tr>
<tr><th>max active processes</th><td>3</td></tr>
<tr><th>max children reached</th><td>4</td></tr>
<tr><th>slow requests</th><td>5</td></tr>
</table>
";

    const HTML_PROCS: &str = concat!(
        "<table border=\"1\">\n",
        "<tr><th>pid</th><th>state</th><th>start time</th><th>start since</th><th>requests</th>",
        "<th>request duration</th><th>request method</th><th>request uri</th>",
        "<th>content length</th><th>user</th><th>script</th><th>last request cpu</th>",
        "<th>last request memory</th></tr>\n",
        "<tr><td>101</td><td>Idle</td><td>29/Feb/2024:09:35:19 -0330</td><td>90</td><td>7</td>",
        "<td>1234</td><td>POST</td><td>/index.php?a=1&amp;b=&lt;x&gt;&quot;é/'</td><td>42</td>",
        "<td>bob</td><td>/srv/index.php</td><td>12.35</td><td>2097152</td></tr>\n",
        "<tr><td>102</td><td>Running</td><td>29/Feb/2024:13:05:29 +0000</td><td>80</td><td>3</td>",
        "<td>5678</td><td>GET</td><td>/status?json&amp;full</td><td>0</td>",
        "<td>-</td><td>/status</td><td>0.00</td><td>0</td></tr>\n",
        "<tr><td>103</td><td>Idle</td><td>29/Feb/2024:13:05:39 +0000</td><td>70</td><td>0</td>",
        "<td>0</td><td>-</td><td>-</td><td>0</td>",
        "<td>-</td><td>-</td><td>0.00</td><td>0</td></tr>\n",
        "</table>",
    );

    #[test]
    fn html_short_and_full() {
        let end = "</body></html>";
        assert_eq!(body(Format::Html, false), format!("{HTML}{end}"));
        assert_eq!(body(Format::Html, true), format!("{HTML}{HTML_PROCS}{end}"));
    }

    const OPENMETRICS: &str = "\
# HELP phpfpm_up Could pool www using a static PM on PHP-FPM be reached?
# TYPE phpfpm_up gauge
phpfpm_up 1
# HELP phpfpm_start_since The number of seconds since FPM has started.
# TYPE phpfpm_start_since counter
phpfpm_start_since 100
# HELP phpfpm_accepted_connections The number of requests accepted by the pool.
# TYPE phpfpm_accepted_connections counter
phpfpm_accepted_connections 11
# HELP phpfpm_listen_queue The number of requests in the queue of pending connections.
# TYPE phpfpm_listen_queue gauge
phpfpm_listen_queue 1
# HELP phpfpm_max_listen_queue The maximum number of requests in the queue of pending connections since FPM has started.
# TYPE phpfpm_max_listen_queue counter
phpfpm_max_listen_queue 2
# TYPE phpfpm_listen_queue_length gauge
# HELP phpfpm_listen_queue_length The size of the socket queue of pending connections.
phpfpm_listen_queue_length 511
# HELP phpfpm_idle_processes The number of idle processes.
# TYPE phpfpm_idle_processes gauge
phpfpm_idle_processes 2
# HELP phpfpm_active_processes The number of active processes.
# TYPE phpfpm_active_processes gauge
phpfpm_active_processes 1
# HELP phpfpm_total_processes The number of idle + active processes.
# TYPE phpfpm_total_processes gauge
phpfpm_total_processes 3
# HELP phpfpm_max_active_processes The maximum number of active processes since FPM has started.
# TYPE phpfpm_max_active_processes counter
phpfpm_max_active_processes 3
# HELP phpfpm_max_children_reached The number of times, the process limit has been reached, when pm tries to start more children (works only for pm 'dynamic' and 'ondemand').
# TYPE phpfpm_max_children_reached counter
phpfpm_max_children_reached 4
# HELP phpfpm_slow_requests The number of requests that exceeded your 'request_slowlog_timeout' value.
# TYPE phpfpm_slow_requests counter
phpfpm_slow_requests 5
# EOF
";

    #[test]
    fn openmetrics_ignores_full() {
        assert_eq!(body(Format::OpenMetrics, false), OPENMETRICS);
        assert_eq!(body(Format::OpenMetrics, true), OPENMETRICS);
    }

    fn header_pairs(format: Format) -> Vec<(String, String)> {
        render(&pool(), format, false, now()).headers
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headers_in_php_fpm_order_and_spelling() {
        let expires = ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT");
        let cache = (
            "Cache-Control",
            "no-cache, no-store, must-revalidate, max-age=0",
        );
        let cases = [
            (Format::Text, ("Content-type", "text/plain;charset=UTF-8")),
            (Format::Json, ("Content-Type", "application/json")),
            (Format::Xml, ("Content-type", "text/xml;charset=UTF-8")),
            (Format::Html, ("Content-type", "text/html;charset=UTF-8")),
            (
                Format::OpenMetrics,
                (
                    "Content-Type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            ),
        ];
        for (format, content_type) in cases {
            assert_eq!(header_pairs(format), pairs(&[expires, cache, content_type]));
        }
        let head = render_head();
        let default = ("Content-type", "text/html; charset=UTF-8");
        assert_eq!(head.headers, pairs(&[expires, cache, default]));
        assert_eq!(head.body, "");
    }

    #[test]
    fn content_type_follows_default_charset() {
        let latin = render_with_charset(&pool(), Format::Xml, false, now(), "ISO-8859-1");
        let expected = ("Content-type".into(), "text/xml;charset=ISO-8859-1".into());
        assert_eq!(latin.headers[2], expected);
        let none = render_with_charset(&pool(), Format::Text, false, now(), "");
        assert_eq!(
            none.headers[2],
            ("Content-Type".into(), "text/plain".into())
        );
        let json = render_with_charset(&pool(), Format::Json, false, now(), "");
        assert_eq!(
            json.headers[2],
            ("Content-Type".into(), "application/json".into())
        );
    }

    #[test]
    fn a_worker_script_follows_php_fpms_fields() {
        let status = PoolStatus {
            worker_script: Some(WorkerScriptStatus {
                script: "/srv/app/public/index.php".into(),
                boots: 4,
                requests: 90,
                busy_threads: 1,
            }),
            ..pool()
        };
        let body = |format| render(&status, format, false, now()).body;
        assert!(body(Format::Text).contains(
            "slow requests:        5\nworker script:        /srv/app/public/index.php\n\
             worker script boots:  4\nworker script requests: 90\nworker script busy threads: 1\n"
        ));
        assert!(body(Format::Json).contains(
            r#""slow requests":5,"worker script":"/srv/app/public/index.php","worker script boots":4,"#
        ));
        assert!(body(Format::Xml).contains("<worker-script-requests>90</worker-script-requests>"));
        assert!(!render(&pool(), Format::Text, false, now())
            .body
            .contains("worker"));
    }

    #[test]
    fn php_84_shows_the_memory_peak_in_every_format() {
        let status = PoolStatus {
            memory_peak: Some(2_097_152),
            ..pool()
        };
        let body = |format| render(&status, format, false, now()).body;
        assert!(
            body(Format::Text).contains("slow requests:        5\nmemory peak:          2097152\n")
        );
        assert!(body(Format::Json).contains(r#""slow requests":5,"memory peak":2097152"#));
        assert!(body(Format::Xml)
            .contains("<slow-requests>5</slow-requests>\n<memory-peak>2097152</memory-peak>\n"));
        assert!(body(Format::Html).contains("<tr><th>memory peak</th><td>2097152</td></tr>"));
        assert!(body(Format::OpenMetrics).contains(
            "# HELP phpfpm_memory_peak The memory usage peak since FPM has started.\n\
             # TYPE phpfpm_memory_peak gauge\nphpfpm_memory_peak 2097152\n# EOF\n"
        ));
        assert!(!render(&pool(), Format::Text, false, now())
            .body
            .contains("memory peak"));
    }

    #[test]
    fn dates_in_the_moments_own_offset() {
        assert_eq!(local_date(at(0, 0)), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(local_date(at(0, -1)), "31/Dec/1969:23:59:59 -0000");
        assert_eq!(local_date(at(951_782_400, 0)), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(
            local_date(at(4_102_444_799, 0)),
            "31/Dec/2099:23:59:59 +0000"
        );
        assert_eq!(
            local_date(at(4_107_542_400, 0)),
            "01/Mar/2100:00:00:00 +0000"
        );
        assert_eq!(
            local_date(at(1_700_000_000, 20_700)),
            "15/Nov/2023:03:58:20 +0545"
        );
        assert_eq!(
            local_date(at(1_700_000_000, -36_000)),
            "14/Nov/2023:12:13:20 -1000"
        );
    }

    #[test]
    fn start_since_never_negative() {
        let mut status = pool();
        status.start_time = at(START + 1000, 0);
        assert!(render(&status, Format::Text, false, now())
            .body
            .contains("start since:          0\n"));
    }

    #[test]
    fn cpu_printed_from_single_precision() {
        let mut status = pool();
        status.procs = vec![served()];
        for (cpu, shown) in [
            (0.125, "0.12"),
            (0.375, "0.38"),
            (33.335, "33.33"),
            (100.0, "100.00"),
        ] {
            status.procs[0].last_request_cpu = cpu;
            let body = render(&status, Format::Json, true, now()).body;
            assert!(
                body.contains(&format!("\"last request cpu\":{shown},")),
                "{cpu}: {body}"
            );
        }
    }

    #[test]
    fn only_an_idle_process_shows_cpu_and_memory() {
        let mut status = pool();
        for state in [
            ProcState::ReadingHeaders,
            ProcState::Ending,
            ProcState::Finishing,
        ] {
            status.procs = vec![ProcStatus { state, ..served() }];
            let body = render(&status, Format::Xml, true, now()).body;
            assert!(body.contains(&format!("<state>{}</state>", state.name())));
            assert!(body.contains("<last-request-cpu>0.00</last-request-cpu>"));
            assert!(body.contains("<last-request-memory>0</last-request-memory>"));
        }
    }

    #[test]
    fn json_escapes_the_uri_only() {
        let esc = escape_json("a\"\\/\u{8}\u{c}\n\r\t\u{1}\u{7f}<>&'é€😀");
        assert_eq!(
            esc,
            concat!(
                r#"a\"\\\/\b\f\n\r\t\u0001"#,
                "\u{7f}",
                r#"<>&'\u00e9\u20ac\ud83d\ude00"#
            )
        );
        let mut status = pool();
        status.pool = "a\"b".into();
        status.procs = vec![ProcStatus {
            user: "u\"/".into(),
            script: "/x\"y".into(),
            query_string: String::new(),
            ..served()
        }];
        let body = render(&status, Format::Json, true, now()).body;
        assert!(body.starts_with("{\"pool\":\"a\"b\","));
        assert!(body.contains("\"request uri\":\"\\/index.php\","));
        assert!(body.contains("\"user\":\"u\"/\",\"script\":\"/x\"y\""));
    }

    #[test]
    fn xml_escapes_the_uri_only() {
        let esc = escape_xml("&<>\"'\t\n\r\u{1}\u{1f}\u{7f}\u{fffe}\u{ffff}é");
        assert_eq!(
            esc,
            "&amp;&lt;&gt;&quot;'\t\n\r\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}é"
        );
        let mut status = pool();
        status.procs = vec![ProcStatus {
            request_uri: "/a&b".into(),
            script: "/a&b".into(),
            query_string: String::new(),
            ..served()
        }];
        let body = render(&status, Format::Html, true, now()).body;
        assert!(body.contains("<td>/a&amp;b</td><td>42</td><td>bob</td><td>/a&b</td>"));
    }

    #[test]
    fn query_without_uri_keeps_the_dash() {
        let mut status = pool();
        status.procs = vec![ProcStatus {
            request_uri: String::new(),
            ..serving()
        }];
        let body = render(&status, Format::Text, true, now()).body;
        assert!(body.contains("request URI:          -?json&full\n"));
    }

    #[test]
    fn html_columns_are_the_process_fields() {
        let names: Vec<&str> = proc_fields(&served(), HTML_STYLE, 0)
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, HTML_PROC_COLUMNS);
    }

    #[test]
    fn other_process_managers_and_pool_names() {
        let mut status = pool();
        status.process_manager = Pm::Ondemand;
        status.pool = "api".into();
        let body = render(&status, Format::OpenMetrics, false, now()).body;
        assert!(body.starts_with(
            "# HELP phpfpm_up Could pool api using a ondemand PM on PHP-FPM be reached?\n"
        ));
        status.process_manager = Pm::Dynamic;
        let body = render(&status, Format::Text, false, now()).body;
        assert!(body.contains("process manager:      dynamic\n"));
    }
}
