//! The escaping the status page's formats need, as php-fpm's status page
//! does it: htmlspecialchars for XML and HTML, json_encode's for JSON.

use std::fmt::Write as _;

/// htmlspecialchars as php-fpm calls it for XML and HTML: `&`, `"`, `<`
/// and `>` become entities (`'` stays), and characters XML 1.0 forbids
/// (controls other than tab, LF and CR; U+FFFE, U+FFFF) become U+FFFD.
pub(super) fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A JSON string's inside as PHP's json_encode writes it with default
/// flags: `"`, `\` and `/` escaped, the usual short escapes, every other
/// control and every non-ASCII character as `\u` (lower-case hex, UTF-16).
/// [`escape_json`] without escaping `/`.
pub(super) fn escape_json_path(s: &str) -> String {
    escape_json(s).replace("\\/", "/")
}

pub(super) fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || !c.is_ascii() => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}
