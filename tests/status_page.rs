//! tfpm's status page renderer (`tfpm::server::status_page`) against the
//! real php-fpm from the same PHP build, as the oracle.
//!
//! php-fpm runs a static pool of three children with `pm.status_path`,
//! in a time zone with a half-hour offset (`env[TZ]`: its workers clear
//! the rest of their environment, so a TZ of ours would not reach them).
//! Every request goes over one kept-alive FastCGI connection, so one child
//! serves them all and the other two never serve a request: their rows
//! show php-fpm's defaults (`-`, zeros). For each format, with and without
//! `full`, the test asks for `?json&full`, fills a `PoolStatus` from that
//! answer, asks for the format, and renders the same figures as they stand
//! one request later (one more accepted connection, one more request for
//! the serving child, its new query string). The two answers must be equal
//! byte for byte, headers included, except the serving child's "request
//! duration", which php-fpm measures as it answers; "start since" must
//! match for one of the few seconds the two requests can straddle.
//!
//! The idle and active counts need care: on a kept connection php-fpm
//! counts each request as one process more going from idle to active
//! (without the way back), until its master recounts, once a second. So
//! they must match either that count or the master's recount, taken
//! before or during the request.
//!
//! Two more checks: the format and `full` php-fpm picks for odd query
//! strings (prefixes, brackets, encodings) against `parse_query`, and the
//! headers of a HEAD request against `render_head`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::fpm::PhpFpm;
use tfpm::server::status_page::{
    parse_query, render, render_head, Dialect, Format, LocalTime, Pm, PoolStatus, ProcState,
    ProcStatus, Rendered,
};

const STATUS_PATH: &str = "/status";
/// php-fpm's workers run in this zone (a negative offset, not whole
/// hours), so that the text and HTML dates test the offset.
const ZONE: &str = "America/St_Johns";
const CHILDREN: usize = 3;
/// How long the children may take to reach their accept loop.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many seconds apart php-fpm's two answers may be.
const SECONDS_APART: i64 = 3;

/// Every format, with the query string that asks for it.
const FORMATS: [(Format, &str); 5] = [
    (Format::Text, ""),
    (Format::Json, "json"),
    (Format::Xml, "xml"),
    (Format::Html, "html"),
    (Format::OpenMetrics, "openmetrics"),
];

/// php-fpm with the status page, and one kept connection to it.
struct Oracle {
    _fpm: PhpFpm,
    conn: FcgiClient,
}

impl Oracle {
    fn start() -> Oracle {
        let pool = format!("pm.status_path = {STATUS_PATH}\nenv[TZ] = {ZONE}");
        // Without X-Powered-By, php-fpm's headers are exactly the page's.
        let fpm = PhpFpm::start(CHILDREN, &pool, &["expose_php=0"]);
        let conn = connect(fpm.addr());
        let mut oracle = Oracle { _fpm: fpm, conn };
        oracle.wait_children_ready();
        oracle
    }

    fn get(&mut self, query: &str) -> Rendered {
        self.request("GET", query)
    }

    fn request(&mut self, method: &str, query: &str) -> Rendered {
        let params = [
            ("SCRIPT_NAME", STATUS_PATH),
            ("SCRIPT_FILENAME", STATUS_PATH),
            ("REQUEST_URI", STATUS_PATH),
            ("REQUEST_METHOD", method),
            ("QUERY_STRING", query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ];
        let response = self
            .conn
            .request(&params, b"", true)
            .expect("status request");
        let cgi = response.cgi();
        assert_eq!(cgi.status, 200, "{}", response.stderr_text());
        Rendered {
            headers: cgi.headers,
            body: String::from_utf8(cgi.body).expect("UTF-8 status page"),
        }
    }

    /// The full status as php-fpm's JSON gives it.
    fn snapshot(&mut self) -> Snapshot {
        let page = self.get("json&full");
        Snapshot::parse(&page.body)
    }

    /// Polls until every child has reached its accept loop: before that,
    /// php-fpm shows a child with no state at all.
    fn wait_children_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let snapshot = self.snapshot();
            let states: Vec<&str> = snapshot.procs.iter().map(|p| p.str("state")).collect();
            let idle = states.iter().filter(|&&s| s == "Idle").count();
            if states.len() == CHILDREN && idle == CHILDREN - 1 {
                return;
            }
            assert!(Instant::now() < deadline, "children not ready: {states:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn connect(addr: SocketAddr) -> FcgiClient {
    FcgiClient::connect_tcp(addr).expect("connect to php-fpm")
}

#[test]
fn every_format_matches_php_fpm() {
    let mut fpm = Oracle::start();
    let mut failures = Vec::new();
    for (format, word) in FORMATS {
        for full in [false, true] {
            let query = match (word, full) {
                ("", true) => "full".to_string(),
                (w, true) => format!("{w}&full"),
                (w, false) => w.to_string(),
            };
            let before = fpm.snapshot();
            let theirs = fpm.get(&query);
            let statuses = before.one_request_later(&query);
            if let Err(diff) = compare(&statuses, format, full, &theirs, before.now()) {
                failures.push(format!("?{query}: {diff}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Renders each of `statuses` at php-fpm's clock (or a second or two
/// later): one must be php-fpm's answer.
fn compare(
    statuses: &[PoolStatus],
    format: Format,
    full: bool,
    theirs: &Rendered,
    now: i64,
) -> Result<(), String> {
    let expected = mask_duration(&theirs.body, format);
    let mut ours = None;
    for status in statuses {
        for second in now..now + SECONDS_APART {
            let at = UNIX_EPOCH + Duration::from_secs(second as u64);
            let rendered = render(status, format, full, at);
            let body = mask_duration(&rendered.body, format);
            if rendered.headers == theirs.headers && body == expected {
                return Ok(());
            }
            ours.get_or_insert((rendered.headers, body));
        }
    }
    let (headers, body) = ours.expect("at least one second tried");
    Err(format!(
        "php-fpm's headers {:?}\n   ours {headers:?}\n--- php-fpm ---\n{expected}\n--- ours ---\n{body}\n{}",
        theirs.headers,
        first_difference(&expected, &body)
    ))
}

fn first_difference(a: &str, b: &str) -> String {
    if a == b {
        return "the bodies are equal".to_string();
    }
    let at = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    let from = a[..at].rfind('\n').map_or(0, |n| n + 1);
    format!("first difference at byte {at}, after {:?}", &a[from..at])
}

/// The page with every "request duration" value as `*`: php-fpm measures
/// the serving child's as it answers.
fn mask_duration(body: &str, format: Format) -> String {
    match format {
        Format::Text => mask_digits_after(body, "request duration:     "),
        Format::Json => mask_digits_after(body, "\"request duration\":"),
        Format::Xml => mask_digits_after(body, "<request-duration>"),
        Format::Html => mask_html_column(body, 5),
        Format::OpenMetrics => body.to_string(),
    }
}

fn mask_digits_after(body: &str, marker: &str) -> String {
    let mut parts = body.split(marker);
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str(marker);
        out.push('*');
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
    }
    out
}

/// Masks cell `column` of every process row of the HTML table.
fn mask_html_column(body: &str, column: usize) -> String {
    let lines: Vec<String> = body
        .split('\n')
        .map(|line| match line.strip_prefix("<tr><td>") {
            Some(row) => {
                let mut cells: Vec<&str> = row.split("</td><td>").collect();
                if column + 1 < cells.len() {
                    cells[column] = "*";
                }
                format!("<tr><td>{}", cells.join("</td><td>"))
            }
            None => line.to_string(),
        })
        .collect();
    lines.join("\n")
}

#[test]
fn query_strings_pick_what_php_fpm_picks() {
    let queries = [
        "",
        "full",
        "json&full",
        "full&json",
        "j&f",
        "ht",
        "x=1&fu",
        "o",
        "JSON",
        "jsonx&fully",
        "xml&html&json",
        "openmetrics&json",
        "openmetrics&full",
        "%6Ason&%66ull",
        "+json",
        "json[]=1&full[a]=2",
        "json[",
        "[json]",
        "js.on",
        "json%00x",
        "format=json",
        "&&xml&&",
    ];
    let mut fpm = Oracle::start();
    let mut failures = Vec::new();
    for query in queries {
        let page = fpm.get(query);
        let theirs = picked(&page);
        let ours = parse_query(query.as_bytes(), dialect());
        let ours = (ours.format, ours.full || ours.format == Format::OpenMetrics);
        if theirs != ours {
            failures.push(format!("?{query}: php-fpm {theirs:?}, ours {ours:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How php-fpm of the build's PHP version reads the query.
fn dialect() -> Dialect {
    match fcgi_tests::php_version() >= (8, 4) {
        true => Dialect::Exact,
        false => Dialect::Prefix,
    }
}

/// The format php-fpm answered in, and whether it listed the processes
/// (an OpenMetrics page is the same either way: true).
fn picked(page: &Rendered) -> (Format, bool) {
    let content_type = page
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let (format, marker) = match content_type.split(';').next().unwrap_or_default() {
        "text/plain" => (Format::Text, "************************"),
        "application/json" => (Format::Json, "\"processes\":"),
        "text/xml" => (Format::Xml, "<processes>"),
        "text/html" => (Format::Html, "<table border=\"1\">"),
        "application/openmetrics-text" => (Format::OpenMetrics, ""),
        other => panic!("unexpected Content-Type {other:?}"),
    };
    (format, page.body.contains(marker))
}

#[test]
fn head_gets_php_fpm_headers_and_no_body() {
    let mut fpm = Oracle::start();
    for query in ["", "json&full", "xml"] {
        let theirs = fpm.request("HEAD", query);
        assert_eq!(theirs, render_head(), "HEAD ?{query}");
    }
}

/// php-fpm's `?json&full` answer, parsed.
struct Snapshot {
    pool: Json,
    procs: Vec<Json>,
}

impl Snapshot {
    fn parse(body: &str) -> Snapshot {
        let pool = Json::parse(body);
        let procs = match pool.get("processes") {
            Json::Arr(procs) => procs.clone(),
            other => panic!("processes: {other:?}"),
        };
        Snapshot { pool, procs }
    }

    /// php-fpm's clock when it answered.
    fn now(&self) -> i64 {
        self.pool.int("start time") + self.pool.int("start since")
    }

    /// The status as php-fpm may show it while serving the next request
    /// (for `query`) on the same connection, in the same child: one for
    /// each way it may have counted idle and active processes.
    fn one_request_later(&self, query: &str) -> Vec<PoolStatus> {
        let status = self.next_status(query);
        let (idle, active, max) = (
            status.idle_processes,
            status.active_processes,
            status.max_active_processes,
        );
        let counts = [
            // Its own count: one more moved from idle to active.
            (idle.saturating_sub(1), active + 1),
            // The master's recount (only the serving child is active),
            // before the request, which then counts itself.
            (CHILDREN as u64 - 2, 2),
            // The master's recount during the request.
            (CHILDREN as u64 - 1, 1),
        ];
        let maxima = [max.max(active + 1), max.max(2)];
        let mut statuses = Vec::new();
        for (idle_processes, active_processes) in counts {
            for max_active_processes in maxima {
                statuses.push(PoolStatus {
                    idle_processes,
                    active_processes,
                    max_active_processes,
                    ..status.clone()
                });
            }
        }
        statuses
    }

    /// The status one request later, but for the idle and active counts.
    fn next_status(&self, query: &str) -> PoolStatus {
        let p = &self.pool;
        let procs = self.procs.iter().map(|proc| proc_status(proc, query));
        PoolStatus {
            pool: p.str("pool").to_string(),
            process_manager: process_manager(p.str("process manager")),
            start_time: local_time(p.int("start time")),
            accepted_conn: p.uint("accepted conn") + 1,
            listen_queue: p.uint("listen queue"),
            max_listen_queue: p.uint("max listen queue"),
            listen_queue_len: p.uint("listen queue len"),
            idle_processes: p.uint("idle processes"),
            active_processes: p.uint("active processes"),
            max_active_processes: p.uint("max active processes"),
            max_children_reached: p.uint("max children reached"),
            slow_requests: p.uint("slow requests"),
            // php-fpm 8.4's peak; ours is checked in tests/status.rs.
            memory_peak: p.has("memory peak").then(|| p.uint("memory peak")),
            dialect: dialect(),
            worker_script: None, // php-fpm has no worker mode
            procs: procs.collect(),
        }
    }
}

/// One process row; the running one (serving us) is one request on.
fn proc_status(proc: &Json, next_query: &str) -> ProcStatus {
    let state = proc_state(proc.str("state"));
    let running = state == ProcState::Running;
    let (uri, query) = match proc.str("request uri") {
        "-" => ("", ""),
        uri => uri.split_once('?').unwrap_or((uri, "")),
    };
    ProcStatus {
        pid: proc.uint("pid") as u32,
        state,
        start_time: local_time(proc.int("start time")),
        requests: proc.uint("requests") + u64::from(running),
        request_duration_us: proc.uint("request duration"),
        request_method: undash(proc.str("request method")),
        request_uri: uri.to_string(),
        query_string: if running { next_query } else { query }.to_string(),
        content_length: proc.uint("content length"),
        user: undash(proc.str("user")),
        script: undash(proc.str("script")),
        last_request_cpu: proc.float("last request cpu"),
        last_request_memory: proc.uint("last request memory"),
    }
}

fn undash(s: &str) -> String {
    if s == "-" { "" } else { s }.to_string()
}

fn process_manager(name: &str) -> Pm {
    match name {
        "static" => Pm::Static,
        "dynamic" => Pm::Dynamic,
        "ondemand" => Pm::Ondemand,
        other => panic!("process manager {other:?}"),
    }
}

fn proc_state(name: &str) -> ProcState {
    let states = [
        ProcState::Idle,
        ProcState::ReadingHeaders,
        ProcState::GettingRequestInfo,
        ProcState::Running,
        ProcState::Ending,
        ProcState::Finishing,
    ];
    let found = states.into_iter().find(|s| s.name() == name);
    found.unwrap_or_else(|| panic!("state {name:?}"))
}

/// `epoch` with the offset the workers' zone has then, as `date` finds it.
fn local_time(epoch: i64) -> LocalTime {
    let out = Command::new("date")
        .env("TZ", ZONE)
        .arg(format!("--date=@{epoch}"))
        .arg("+%z")
        .output()
        .expect("run date");
    let z = String::from_utf8(out.stdout).expect("date output");
    let z = z.trim();
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let hours: i32 = z[1..3].parse().expect("%z hours");
    let minutes: i32 = z[3..5].parse().expect("%z minutes");
    LocalTime {
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(epoch as u64),
        utc_offset: sign * (hours * 3600 + minutes * 60),
    }
}

/// Just enough JSON for php-fpm's status page: objects, arrays, strings
/// and numbers.
#[derive(Debug, Clone)]
enum Json {
    Obj(Vec<(String, Json)>),
    Arr(Vec<Json>),
    Str(String),
    Num(String),
}

impl Json {
    fn parse(text: &str) -> Json {
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        let value = parse_value(&chars, &mut at);
        skip_space(&chars, &mut at);
        assert_eq!(at, chars.len(), "trailing text in {text}");
        value
    }

    fn get(&self, key: &str) -> &Json {
        let Json::Obj(members) = self else {
            panic!("{key} of a non-object {self:?}")
        };
        let found = members.iter().find(|(k, _)| k == key);
        &found.unwrap_or_else(|| panic!("no {key:?} in {self:?}")).1
    }

    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Json::Str(s) => s,
            other => panic!("{key}: not a string: {other:?}"),
        }
    }

    fn number(&self, key: &str) -> &str {
        match self.get(key) {
            Json::Num(n) => n,
            other => panic!("{key}: not a number: {other:?}"),
        }
    }

    fn int(&self, key: &str) -> i64 {
        self.number(key).parse().expect("integer")
    }

    fn has(&self, key: &str) -> bool {
        matches!(self, Json::Obj(members) if members.iter().any(|(k, _)| k == key))
    }

    fn uint(&self, key: &str) -> u64 {
        self.number(key).parse().expect("unsigned integer")
    }

    fn float(&self, key: &str) -> f64 {
        self.number(key).parse().expect("number")
    }
}

fn skip_space(chars: &[char], at: &mut usize) {
    while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
        *at += 1;
    }
}

fn expect_char(chars: &[char], at: &mut usize, want: char) {
    skip_space(chars, at);
    assert_eq!(chars.get(*at), Some(&want), "at {at}");
    *at += 1;
}

fn parse_value(chars: &[char], at: &mut usize) -> Json {
    skip_space(chars, at);
    match chars.get(*at) {
        Some('{') => Json::Obj(parse_list(chars, at, '}', |c, a| {
            let key = parse_string(c, a);
            expect_char(c, a, ':');
            (key, parse_value(c, a))
        })),
        Some('[') => Json::Arr(parse_list(chars, at, ']', parse_value)),
        Some('"') => Json::Str(parse_string(chars, at)),
        _ => {
            let start = *at;
            while chars
                .get(*at)
                .is_some_and(|c| "+-.eE".contains(*c) || c.is_ascii_digit())
            {
                *at += 1;
            }
            assert!(*at > start, "a value expected at {start}");
            Json::Num(chars[start..*at].iter().collect())
        }
    }
}

/// The items between the opening bracket at `at` and `close`.
fn parse_list<T>(
    chars: &[char],
    at: &mut usize,
    close: char,
    item: impl Fn(&[char], &mut usize) -> T,
) -> Vec<T> {
    *at += 1;
    let mut items = Vec::new();
    skip_space(chars, at);
    if chars.get(*at) == Some(&close) {
        *at += 1;
        return items;
    }
    loop {
        items.push(item(chars, at));
        skip_space(chars, at);
        match chars.get(*at) {
            Some(',') => *at += 1,
            Some(c) if *c == close => {
                *at += 1;
                return items;
            }
            other => panic!("',' or {close:?} expected at {at}, got {other:?}"),
        }
    }
}

fn parse_string(chars: &[char], at: &mut usize) -> String {
    expect_char(chars, at, '"');
    let mut out = String::new();
    let mut units = Vec::new();
    loop {
        let c = *chars.get(*at).expect("unterminated string");
        *at += 1;
        if c == '\\' && chars.get(*at) == Some(&'u') {
            let hex: String = chars[*at + 1..*at + 5].iter().collect();
            units.push(u16::from_str_radix(&hex, 16).expect("\\u escape"));
            *at += 5;
            continue;
        }
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.expect("UTF-16")));
        match c {
            '"' => return out,
            '\\' => {
                let escaped = chars[*at];
                *at += 1;
                out.push(match escaped {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
}
