//! What a test expects of its output, and the comparison run-tests.php makes:
//! both sides trimmed and with `\r\n` as `\n`, then `--EXPECT--` compared
//! byte for byte, `--EXPECTF--` turned into a regular expression (its `%`
//! placeholders and `%r…%r` raw parts), and `--EXPECTREGEX--` used as one.
//! Patterns match bytes, not UTF-8, as PCRE without the `u` flag does.

use regex::bytes::{Regex, RegexBuilder};

use super::parse::Phpt;

/// How one test's output is judged.
#[derive(Debug, Clone)]
pub enum Expectation {
    /// `--EXPECT--`: the same bytes.
    Exact(Vec<u8>),
    /// `--EXPECTF--` or `--EXPECTREGEX--`, as one anchored pattern.
    Pattern(Regex),
}

impl Expectation {
    /// The test's expectation; `Err` when its pattern cannot be compiled here
    /// (a PCRE feature the regex crate lacks).
    pub fn of(phpt: &Phpt) -> Result<Expectation, String> {
        let sensitive = phpt.has("WHITESPACE_SENSITIVE");
        if let Some(text) = phpt.section("EXPECT") {
            return Ok(Expectation::Exact(normalize(text, sensitive)));
        }
        let pattern = if let Some(text) = phpt.section("EXPECTF") {
            format_to_regex(&normalize(text, sensitive))
        } else {
            let text = phpt.section("EXPECTREGEX").unwrap_or_default();
            raw_part(&normalize(text, sensitive), false)
        };
        compile(&pattern).map(Expectation::Pattern)
    }

    /// Whether `output` (the response body) is what the test expects.
    pub fn matches(&self, output: &[u8], sensitive: bool) -> bool {
        let output = normalize(output, sensitive);
        match self {
            Expectation::Exact(want) => *want == output,
            Expectation::Pattern(re) => re.is_match(&output),
        }
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("(?s-u)\\A(?:{pattern})\\z"))
        .unicode(false)
        .size_limit(1 << 28)
        .dfa_size_limit(1 << 28)
        .build()
        .map_err(|e| format!("pattern not supported here: {}", first_line(&e.to_string())))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `\r\n` → `\n`, then trimmed (unless `--WHITESPACE_SENSITIVE--`), as run-tests.php.
pub fn normalize(text: &[u8], whitespace_sensitive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\r' && text.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(text[i]);
        i += 1;
    }
    if whitespace_sensitive {
        return out;
    }
    // PHP's trim(): " \t\n\r\0\x0B"
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0 | 0x0b);
    let start = out.iter().position(|b| !ws(b)).unwrap_or(out.len());
    let end = out.iter().rposition(|b| !ws(b)).map_or(start, |p| p + 1);
    out[start..end].to_vec()
}

/// The `%` placeholders of `--EXPECTF--`, as run-tests.php replaces them.
fn placeholder(c: u8) -> Option<&'static str> {
    Some(match c {
        b'e' => "/",
        b's' => r"[^\r\n]+",
        b'S' => r"[^\r\n]*",
        b'a' => ".+",
        b'A' => ".*",
        b'w' => r"\s*",
        b'i' => r"[+-]?\d+",
        b'd' => r"\d+",
        b'x' => "[0-9a-fA-F]+",
        // run-tests.php's (?=\.\d) lookahead, written without one.
        b'f' => r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[Ee][+-]?\d+)?",
        b'c' => ".",
        b'0' => r"\x00",
        _ => return None,
    })
}

/// Turns `--EXPECTF--` text into a pattern: literal text quoted byte by
/// byte, `%r…%r` kept as a group, the other placeholders replaced.
pub fn format_to_regex(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' && i + 1 < text.len() {
            let c = text[i + 1];
            if c == b'r' {
                if let Some(end) = find(&text[i + 2..], b"%r") {
                    let raw = &text[i + 2..i + 2 + end];
                    out.push('(');
                    out.push_str(&raw_part(raw, true));
                    out.push(')');
                    i += 2 + end + 2;
                    continue;
                }
            } else if let Some(re) = placeholder(c) {
                out.push_str(re);
                i += 2;
                continue;
            }
        }
        quote(text[i], &mut out);
        i += 1;
    }
    out
}

/// A `%r…%r` part or an `--EXPECTREGEX--`: PCRE text for the regex crate,
/// where `\<` and `\>` would be word boundaries, not `<` and `>`. In a
/// `%r` part the other placeholders are still replaced (run-tests.php's
/// strtr runs over the whole pattern).
fn raw_part(raw: &[u8], placeholders: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b'<' | b'>')) {
            out.push(raw[i + 1] as char);
            i += 2;
            continue;
        }
        if raw[i] == b'\\' && i + 1 < raw.len() {
            out.push('\\');
            out.push(raw[i + 1] as char);
            i += 2;
            continue;
        }
        if placeholders && raw[i] == b'%' && i + 1 < raw.len() {
            if let Some(re) = placeholder(raw[i + 1]) {
                out.push_str(re);
                i += 2;
                continue;
            }
        }
        if raw[i].is_ascii() {
            out.push(raw[i] as char);
        } else {
            out.push_str(&format!(r"\x{:02X}", raw[i]));
        }
        i += 1;
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One literal byte. Only the regex crate's meta characters are escaped:
/// an escaped `<` or `>` would be a word boundary there.
fn quote(b: u8, out: &mut String) {
    if b"\\.+*?()|[]{}^$#&-~".contains(&b) {
        out.push('\\');
        out.push(b as char);
    } else if b.is_ascii_graphic() || b == b' ' || b == b'\n' || b == b'\t' {
        out.push(b as char);
    } else {
        out.push_str(&format!(r"\x{b:02X}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(expectf: &str, output: &str) -> bool {
        let re = compile(&format_to_regex(expectf.as_bytes())).expect("compiles");
        re.is_match(output.as_bytes())
    }

    #[test]
    fn placeholders_match_as_run_tests_php_says() {
        assert!(matches(
            "Warning: %s in %s on line %d",
            "Warning: x in /a/b.php on line 12"
        ));
        assert!(!matches("line %d", "line x"));
        assert!(matches("%f", "-1.5E+3"));
        assert!(matches("%f", ".5"));
        assert!(!matches("%f", "."));
        assert!(matches("a%Ab", "ab"));
        assert!(!matches("a%ab", "ab"));
        assert!(matches("%x-%i", "fF09-+12"));
        assert!(matches("%s", "anything but a newline"));
        assert!(!matches("%s", "two\nlines"));
        assert!(matches("a%wb", "a \n b"));
    }

    #[test]
    fn raw_parts_are_kept_as_regular_expressions() {
        assert!(matches("int(%r(1|2)%r)", "int(2)"));
        assert!(!matches("int(%r(1|2)%r)", "int(3)"));
        assert!(matches("%r.*%rend", "x\ny end"));
        assert!(matches("%r\\<a\\>%r", "<a>"));
    }

    #[test]
    fn literal_text_is_quoted_byte_for_byte() {
        assert!(matches("a.b*(c)[d]{e}$^|?+\\", "a.b*(c)[d]{e}$^|?+\\"));
        assert!(matches("#0 x->y <a> &~-:", "#0 x->y <a> &~-:"));
        assert!(!matches("a.b", "axb"));
        let re = compile(&format_to_regex("é%d".as_bytes())).unwrap();
        assert!(re.is_match("é7".as_bytes()));
    }

    #[test]
    fn output_is_trimmed_and_line_ends_unified() {
        assert_eq!(normalize(b"\r\n x\r\ny \n\0", false), b"x\ny");
        assert_eq!(normalize(b" x\r\n", true), b" x\n");
    }
}
