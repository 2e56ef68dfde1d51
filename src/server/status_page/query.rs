//! Which format and detail a status page request asks for: its query string
//! read as php-fpm reads `$_GET` (the dialect of php-fpm 8.2 or 8.4).

use super::Format;

/// How many `name=value` pairs PHP reads from a query string
/// (`max_input_vars`' default); later ones are dropped.
const MAX_INPUT_VARS: usize = 1000;

/// What a query string asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// The format asked for; [`Format::Text`] when none is.
    pub format: Format,
    /// Whether `full` asks for the per-process part.
    pub full: bool,
}

/// How the php-fpm of a PHP version reads the status page's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Up to PHP 8.2: a name matches a word it starts (`?j` is json).
    Prefix,
    /// PHP 8.4: only the whole word counts (`?json`).
    Exact,
}

impl Dialect {
    /// The dialect of the PHP tfpm runs.
    pub fn of_linked_php() -> Dialect {
        match crate::php::php_at_least(8, 4) {
            true => Dialect::Exact,
            false => Dialect::Prefix,
        }
    }
}

/// Reads the query string as php-fpm does: PHP parses it into `$_GET`
/// (splitting on `&`, decoding `%XX` and `+`, turning spaces and dots of
/// a name into `_`, cutting a name at `[` when a `]` follows), then
/// php-fpm asks whether `$_GET` has `html`, `xml`, `json`, `openmetrics`
/// or `full`, as `dialect` says; values, order and repeats do not matter,
/// and names that match no word are ignored. Several formats: html wins,
/// then xml, json, openmetrics; none is text.
pub fn parse_query(query: &[u8], dialect: Dialect) -> Query {
    let names: Vec<Vec<u8>> = query
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .take(MAX_INPUT_VARS)
        .filter_map(|pair| get_name(before_equals(pair)))
        .collect();
    let asked = |word: &str| {
        names.iter().any(|n| match dialect {
            Dialect::Prefix => word.as_bytes().starts_with(n),
            Dialect::Exact => word.as_bytes() == n.as_slice(),
        })
    };
    let format = if asked("html") {
        Format::Html
    } else if asked("xml") {
        Format::Xml
    } else if asked("json") {
        Format::Json
    } else if asked("openmetrics") {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    Query {
        format,
        full: asked("full"),
    }
}

/// A `name=value` pair's name (all of it without `=`).
fn before_equals(pair: &[u8]) -> &[u8] {
    let end = pair.iter().position(|&b| b == b'=').unwrap_or(pair.len());
    &pair[..end]
}

/// The key PHP files a query variable under in `$_GET`, or `None` for a
/// variable it drops (an empty name).
fn get_name(raw: &[u8]) -> Option<Vec<u8>> {
    let mut name = url_decode(raw);
    if let Some(nul) = name.iter().position(|&b| b == 0) {
        name.truncate(nul);
    }
    let start = name.iter().position(|&b| b != b' ').unwrap_or(name.len());
    let name = &name[start..];
    let key = match name.iter().position(|&b| b == b'[') {
        Some(0) => return None,
        Some(open) if name[open..].contains(&b']') => underscored(&name[..open]),
        _ => underscored(name),
    };
    (!key.is_empty()).then_some(key)
}

/// `name` with spaces, dots and brackets as `_`, as PHP mangles names.
fn underscored(name: &[u8]) -> Vec<u8> {
    name.iter()
        .map(|&b| {
            if matches!(b, b' ' | b'.' | b'[') {
                b'_'
            } else {
                b
            }
        })
        .collect()
}

/// Form decoding: `+` is a space, `%XX` a byte; a `%` without two hex
/// digits stays.
fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = s.get(i + 1..i + 3).and_then(hex_byte);
        match (s[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Two hex digits as a byte.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    let value = digit(pair[0])? * 16 + digit(pair[1])?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> (Format, bool) {
        let parsed = parse_query(q.as_bytes(), Dialect::Prefix);
        (parsed.format, parsed.full)
    }

    #[test]
    fn php_84_matches_only_whole_names() {
        let exact = |q: &str| {
            let parsed = parse_query(q.as_bytes(), Dialect::Exact);
            (parsed.format, parsed.full)
        };
        assert_eq!(exact("json&full"), (Format::Json, true));
        assert_eq!(exact("j&f"), (Format::Text, false));
        assert_eq!(exact("x=1&fu"), (Format::Text, false));
        assert_eq!(exact("html=0&xml"), (Format::Html, false));
    }

    #[test]
    fn query_words_in_any_order() {
        assert_eq!(query(""), (Format::Text, false));
        assert_eq!(query("full"), (Format::Text, true));
        assert_eq!(query("json"), (Format::Json, false));
        assert_eq!(query("json&full"), (Format::Json, true));
        assert_eq!(query("full&xml"), (Format::Xml, true));
        assert_eq!(query("html=0&full=no"), (Format::Html, true));
        assert_eq!(query("openmetrics"), (Format::OpenMetrics, false));
        assert_eq!(query("&&json&&"), (Format::Json, false));
    }

    #[test]
    fn query_precedence_html_xml_json_openmetrics() {
        assert_eq!(query("json&xml&html").0, Format::Html);
        assert_eq!(query("openmetrics&json&xml").0, Format::Xml);
        assert_eq!(query("openmetrics&json").0, Format::Json);
    }

    #[test]
    fn query_names_match_as_prefixes() {
        assert_eq!(query("j&f"), (Format::Json, true));
        assert_eq!(query("ht"), (Format::Html, false));
        assert_eq!(query("o"), (Format::OpenMetrics, false));
        assert_eq!(query("x=1"), (Format::Xml, false));
        assert_eq!(query("jsonx&fully"), (Format::Text, false));
        assert_eq!(query("JSON&Full"), (Format::Text, false));
        assert_eq!(query("format=json&detail=full"), (Format::Text, false));
        assert_eq!(query("s"), (Format::Text, false));
    }

    #[test]
    fn query_names_decoded_as_php_does() {
        assert_eq!(query("%6Ason").0, Format::Json);
        assert_eq!(query("+json").0, Format::Json);
        assert_eq!(query("%20%20xml").0, Format::Xml);
        assert_eq!(query("json[]=1").0, Format::Json);
        assert_eq!(query("json[a][b]=1").0, Format::Json);
        assert_eq!(query("json%00zz").0, Format::Json);
        // An unclosed bracket stays in the name, as `_`.
        assert_eq!(query("json[").0, Format::Text);
        assert_eq!(query("[json]").0, Format::Text);
        // A dot or space in a name becomes `_`, so no word matches.
        assert_eq!(query("js.on").0, Format::Text);
        assert_eq!(query("%=json").0, Format::Text);
    }

    #[test]
    fn query_reads_only_the_first_thousand_variables() {
        let mut q = "a&".repeat(MAX_INPUT_VARS - 1);
        q.push_str("json&full");
        assert_eq!(query(&q), (Format::Json, false));
    }
}
