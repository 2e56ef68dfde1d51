//! php-fpm's status page (`pm.status_path`), as a pure renderer: the pool's
//! and each process's figures in, the response headers and body out, laid
//! out byte for byte as php-fpm 8.2 or 8.4 writes them in its five formats (plain
//! text, JSON, XML, HTML and OpenMetrics), with or without the per-process
//! part (`full`). Which format a query string asks for is in `query`, re-exported
//! here; each format's layout is in `formats`.
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

use std::time::{SystemTime, UNIX_EPOCH};

mod escape;
mod formats;
mod query;
#[cfg(test)]
mod tests;

pub use crate::config::Pm;
use escape::{escape_json, escape_json_path, escape_xml};
use formats::{html, json, openmetrics, text, xml};
pub use query::{parse_query, Dialect, Query};

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
    /// The pool's `pm` ("process manager").
    pub process_manager: Pm,
    /// When the pool started.
    pub start_time: LocalTime,
    /// Requests accepted since the start.
    pub accepted_conn: u64,
    /// Connections waiting in the listen backlog now.
    pub listen_queue: u64,
    /// The most connections waiting in the listen backlog at once since
    /// the start ("max listen queue").
    pub max_listen_queue: u64,
    /// The listen backlog's size.
    pub listen_queue_len: u64,
    /// Processes waiting for a request now ("idle processes").
    pub idle_processes: u64,
    /// Processes serving a request now ("active processes").
    pub active_processes: u64,
    /// The most processes active at once since the start ("max active
    /// processes").
    pub max_active_processes: u64,
    /// Times a request found every process the pool may have busy ("max
    /// children reached").
    pub max_children_reached: u64,
    /// Requests that ran past `request_slowlog_timeout` ("slow requests").
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
    /// The worker script's path ("worker script").
    pub script: String,
    /// Each thread's first boot and every restart.
    pub boots: u64,
    /// Requests the worker script took ("worker script requests").
    pub requests: u64,
    /// Threads running a request in the worker script now ("worker script
    /// busy threads").
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
    /// The process id (for tfpm, the thread's Linux task id).
    pub pid: u32,
    /// Where the process is in its request cycle.
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
    /// The request body's length in bytes (`CONTENT_LENGTH`).
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
    /// Reading the request's FastCGI records ("Reading headers").
    ReadingHeaders,
    /// Filling in the request's details from its params ("Getting request
    /// information").
    GettingRequestInfo,
    /// Running the script ("Running").
    Running,
    /// "Ending": a stage php-fpm names but never enters.
    Ending,
    /// The script has ended and PHP's request shutdown runs ("Finishing").
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
    /// The moment, on the system clock.
    pub time: SystemTime,
    /// Seconds east of UTC.
    pub utc_offset: i32,
}

/// The status page's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text, when the query asks for no other format.
    Text,
    /// JSON (`?json`).
    Json,
    /// XML (`?xml`).
    Xml,
    /// An HTML table (`?html`).
    Html,
    /// OpenMetrics text, for Prometheus (`?openmetrics`).
    OpenMetrics,
}

/// A status response: headers in php-fpm's order and spelling, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Header names and values, in the order they are sent.
    pub headers: Vec<(String, String)>,
    /// The page; empty for a HEAD.
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
