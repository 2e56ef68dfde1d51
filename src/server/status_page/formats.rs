//! The status page's five layouts of the same fields: php-fpm's plain
//! text, JSON, XML, HTML and OpenMetrics.

use std::fmt::Write as _;

use super::*;

pub(super) fn text(s: &PoolStatus, full: bool, now: i64) -> String {
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

pub(super) fn json(s: &PoolStatus, full: bool, now: i64) -> String {
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

pub(super) fn xml(s: &PoolStatus, full: bool, now: i64) -> String {
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

pub(super) fn html(s: &PoolStatus, full: bool, now: i64) -> String {
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
pub(super) const HTML_PROC_COLUMNS: [&str; 13] = [
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
pub(super) fn openmetrics(s: &PoolStatus, now: i64) -> String {
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
