//! php-fpm's INI dialect: one line at a time, as `fpm_conf_load_ini_file` feeds
//! the Zend INI scanner.
//!
//! A line is a `[section]`, a `key = value`, a `name[key] = value` array entry,
//! a comment (`;` or `#`) or blank. Values: `"double quoted"` (with `${ENV}`
//! expansion and `\"` escapes), `'single quoted'` (literal), or bare text cut
//! at `;` with `${ENV}` expanded; a bare `yes/on/true` is `"1"` and a bare
//! `no/off/false/none/null` is `""`; bare error-level constants and
//! expressions on them (`E_ALL & ~E_NOTICE`) are evaluated, as the Zend
//! scanner does (`|`, `&`, `^` left to right, unary `~` and `!`, parentheses).
//! `include = glob` is handled here: the
//! pattern is made absolute against the prefix, matched with glob(3)'s `*`,
//! `?` and `[...]` (sorted, directories and dot files skipped), and each file is
//! read in place, at most 5 files deep. `$pool` is left to [`super::directives`],
//! which knows the current pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{ConfigError, Level, Notice};

/// One meaningful line of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `[name]`.
    Section(String),
    /// `key = value`.
    Entry {
        /// The directive's name.
        key: String,
        /// The value, unquoted and with `${ENV}` expanded.
        value: String,
    },
    /// `name[key] = value` (`key` is empty for `name[]`).
    Array {
        /// The array's name, e.g. `env` or `php_value`.
        name: String,
        /// What is between the brackets.
        key: String,
        /// The value, unquoted and with `${ENV}` expanded.
        value: String,
    },
}

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file, as it was opened (the main path or an include's match).
    pub file: PathBuf,
    /// The line number, from 1.
    pub line: usize,
}

/// How to read: where relative includes point and where `${ENV}` comes from.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Relative `include` patterns are resolved against this; without it,
    /// against the directory of the main config file.
    pub prefix: Option<PathBuf>,
    /// The variables `${NAME}` expands from; `None` reads the process environment.
    pub env: Option<HashMap<String, String>>,
}

impl ReadOptions {
    fn var(&self, name: &str) -> String {
        match &self.env {
            Some(map) => map.get(name).cloned().unwrap_or_default(),
            None => std::env::var(name).unwrap_or_default(),
        }
    }
}

/// php-fpm stops after this many nested files.
const MAX_DEPTH: usize = 5;

/// Reads `path` and its includes, handing every line to `sink` in order.
/// Warnings (an include that matches nothing) go to `notices`.
pub fn read<F>(
    path: &Path,
    opts: &ReadOptions,
    notices: &mut Vec<Notice>,
    sink: &mut F,
) -> Result<(), ConfigError>
where
    F: FnMut(&Source, Line) -> Result<(), ConfigError>,
{
    let base = match &opts.prefix {
        Some(p) => p.clone(),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut reader = Reader {
        opts,
        base,
        notices,
        depth: 0,
    };
    reader.file(path, sink)
}

struct Reader<'a> {
    opts: &'a ReadOptions,
    base: PathBuf,
    notices: &'a mut Vec<Notice>,
    depth: usize,
}

impl Reader<'_> {
    fn file<F>(&mut self, path: &Path, sink: &mut F) -> Result<(), ConfigError>
    where
        F: FnMut(&Source, Line) -> Result<(), ConfigError>,
    {
        let text = std::fs::read(path).map_err(|e| {
            ConfigError::plain(format!(
                "failed to open configuration file '{}': {} ({})",
                path.display(),
                describe(&e),
                e.raw_os_error().unwrap_or(0)
            ))
        })?;
        if self.depth >= MAX_DEPTH {
            return Err(ConfigError::plain(
                "failed to include more than 5 files recursively",
            ));
        }
        self.depth += 1;
        let text = String::from_utf8_lossy(&text);
        for (i, raw) in text.split('\n').enumerate() {
            let src = Source {
                file: path.to_path_buf(),
                line: i + 1,
            };
            let line = parse_line(raw, self.opts).map_err(|m| ConfigError::at(&src, None, m))?;
            match line {
                Some(Line::Entry { key, value }) if key == "include" => {
                    self.include(&value, &src, sink)?
                }
                Some(line) => sink(&src, line)?,
                None => {}
            }
        }
        self.depth -= 1;
        Ok(())
    }

    fn include<F>(&mut self, pattern: &str, src: &Source, sink: &mut F) -> Result<(), ConfigError>
    where
        F: FnMut(&Source, Line) -> Result<(), ConfigError>,
    {
        let full = if pattern.starts_with('/') {
            PathBuf::from(pattern)
        } else {
            self.base.join(pattern)
        };
        let files = glob(&full);
        if files.is_empty() {
            self.notices.push(Notice::new(
                Level::Warning,
                format!(
                    "Nothing matches the include pattern '{}' from {} at line {}.",
                    full.display(),
                    src.file.display(),
                    src.line
                ),
            ));
            return Ok(());
        }
        for file in files.into_iter().filter(|f| !f.is_dir()) {
            if let Err(e) = self.file(&file, sink) {
                let again = ConfigError::plain(format!(
                    "Unable to include {} from {} at line {}",
                    file.display(),
                    src.file.display(),
                    src.line
                ));
                return Err(e.then(again));
            }
        }
        Ok(())
    }
}

fn describe(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses one line; `Ok(None)` for blank and comment lines. The error is the
/// message without the `[file:line]` part.
pub fn parse_line(raw: &str, opts: &ReadOptions) -> Result<Option<Line>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix('[') {
        return section(rest).map(Some);
    }
    let Some(eq) = line.find('=') else {
        return Err("value is NULL for a ZEND_INI_PARSER_ENTRY".to_string());
    };
    let value = parse_value(&line[eq + 1..], opts)?;
    let name = line[..eq].trim();
    if name.is_empty() {
        return Err("syntax error, unexpected '='".to_string());
    }
    Ok(Some(entry(name, value)?))
}

fn section(rest: &str) -> Result<Line, String> {
    let Some(end) = rest.find(']') else {
        return Err("syntax error, unexpected end of line, expecting ']'".to_string());
    };
    let name = unquote(rest[..end].trim());
    Ok(Line::Section(name.to_string()))
}

fn entry(name: &str, value: String) -> Result<Line, String> {
    let Some(open) = name.find('[') else {
        return Ok(Line::Entry {
            key: name.to_string(),
            value,
        });
    };
    if !name.ends_with(']') {
        return Err(format!("syntax error in '{name}', expecting ']'"));
    }
    let key = unquote(name[open + 1..name.len() - 1].trim());
    Ok(Line::Array {
        name: name[..open].trim_end().to_string(),
        key: key.to_string(),
        value,
    })
}

fn unquote(s: &str) -> &str {
    let quoted = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if quoted {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// A value: pieces of quoted and bare text, glued together, up to a comment.
pub fn parse_value(text: &str, opts: &ReadOptions) -> Result<String, String> {
    let text = text.trim();
    if let Some(word) = bare_word(text) {
        return Ok(word.to_string());
    }
    if let Some(number) = expression(text.split(';').next().unwrap_or("")) {
        return Ok(number.to_string());
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = match c {
            '"' => double_quoted(&rest[1..], opts, &mut out)?,
            '\'' => single_quoted(&rest[1..], &mut out)?,
            ';' => break,
            _ => bare(rest, opts, &mut out),
        };
    }
    Ok(out)
}

/// A whole value that is one of the Zend INI boolean/null words.
fn bare_word(text: &str) -> Option<&'static str> {
    let word = text.split(';').next().unwrap_or("").trim();
    match word.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Some("1"),
        "no" | "off" | "false" | "none" | "null" => Some(""),
        _ => None,
    }
}

fn double_quoted<'a>(s: &'a str, opts: &ReadOptions, out: &mut String) -> Result<&'a str, String> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok(&s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, q @ ('"' | '\\'))) => out.push(q),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '$' if s[i..].starts_with("${") => {
                let end = env_end(&s[i..])?;
                out.push_str(&opts.var(&s[i + 2..i + end - 1]));
                for _ in s[i + 1..i + end].chars() {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    Err("syntax error, unexpected end of line, expecting '\"'".to_string())
}

fn single_quoted<'a>(s: &'a str, out: &mut String) -> Result<&'a str, String> {
    match s.find('\'') {
        Some(end) => {
            out.push_str(&s[..end]);
            Ok(&s[end + 1..])
        }
        None => Err("syntax error, unexpected end of line, expecting '''".to_string()),
    }
}

/// Bare text up to the next quote or comment; trailing blanks dropped before a
/// comment or the end.
fn bare<'a>(s: &'a str, opts: &ReadOptions, out: &mut String) -> &'a str {
    let stop = s.find(['"', '\'', ';']).unwrap_or(s.len());
    let (piece, rest) = s.split_at(stop);
    let piece = if rest.is_empty() || rest.starts_with(';') {
        piece.trim_end()
    } else {
        piece
    };
    out.push_str(&expand_env(piece, opts));
    rest
}

/// Length of a `${NAME}` reference at the start of `s`, closing brace included.
fn env_end(s: &str) -> Result<usize, String> {
    match s.find('}') {
        Some(end) => Ok(end + 1),
        None => Err("syntax error, unexpected end of line, expecting '}'".to_string()),
    }
}

/// Expands `${NAME}` in bare text; an unclosed `${` is kept as is.
pub fn expand_env(s: &str, opts: &ReadOptions) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Ok(end) = env_end(&rest[start..]) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&opts.var(&rest[start + 2..start + end - 1]));
        rest = &rest[start + end..];
    }
    out.push_str(rest);
    out
}

/// glob(3) on an absolute pattern: sorted matches, empty when nothing matches.
pub fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for part in pattern.components().skip(1) {
        let part = part.as_os_str().to_string_lossy();
        found = found
            .iter()
            .flat_map(|dir| step(dir, &part))
            .collect::<Vec<_>>();
    }
    found.sort();
    found
}

fn step(dir: &Path, part: &str) -> Vec<PathBuf> {
    if !part.contains(['*', '?', '[']) {
        let path = dir.join(part);
        return if path.exists() { vec![path] } else { vec![] };
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') || part.starts_with('.'))
        .filter(|n| wildcard(part.as_bytes(), n.as_bytes()))
        .collect();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// fnmatch-style matching of one path component: `*`, `?` and `[...]`/`[!...]`.
pub fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| wildcard(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && wildcard(&pat[1..], &name[1..]),
        Some(b'[') => match (class(&pat[1..]), name.first()) {
            (Some((set, negate, len)), Some(&c)) => {
                in_class(set, c) != negate && wildcard(&pat[len + 1..], &name[1..])
            }
            (None, Some(&c)) => c == b'[' && wildcard(&pat[1..], &name[1..]),
            _ => false,
        },
        Some(&p) => name.first() == Some(&p) && wildcard(&pat[1..], &name[1..]),
    }
}

/// A `[...]` class after the `[`: its members, whether negated, and how many
/// pattern bytes it used (closing `]` included).
fn class(pat: &[u8]) -> Option<(&[u8], bool, usize)> {
    let negate = matches!(pat.first(), Some(b'!' | b'^'));
    let start = usize::from(negate);
    let close = pat.iter().skip(start + 1).position(|&b| b == b']')? + start + 1;
    Some((&pat[start..close], negate, close + 1))
}

fn in_class(set: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            if (set[i]..=set[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// `E_ALL` of PHP 8.2; from 8.4 on it no longer has `E_STRICT` (2048).
const E_ALL_82: i64 = 32767;

/// `E_ALL` of the PHP tfpm runs ([`use_php_version`]).
static E_ALL: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(E_ALL_82);

/// Evaluates `E_ALL` as PHP `major.minor` does: set once at start-up, from
/// the PHP tfpm is linked against, before any config is read.
pub fn use_php_version(major: u32, minor: u32) {
    E_ALL.store(e_all_of(major, minor), std::sync::atomic::Ordering::Relaxed);
}

fn e_all_of(major: u32, minor: u32) -> i64 {
    match (major, minor) >= (8, 4) {
        true => E_ALL_82 & !2048,
        false => E_ALL_82,
    }
}

/// PHP's error-level constants, the ones php.ini values use (`E_ALL` is
/// [`E_ALL`]'s).
const CONSTANTS: &[(&str, i64)] = &[
    ("E_ERROR", 1),
    ("E_WARNING", 2),
    ("E_PARSE", 4),
    ("E_NOTICE", 8),
    ("E_CORE_ERROR", 16),
    ("E_CORE_WARNING", 32),
    ("E_COMPILE_ERROR", 64),
    ("E_COMPILE_WARNING", 128),
    ("E_USER_ERROR", 256),
    ("E_USER_WARNING", 512),
    ("E_USER_NOTICE", 1024),
    ("E_STRICT", 2048),
    ("E_RECOVERABLE_ERROR", 4096),
    ("E_DEPRECATED", 8192),
    ("E_USER_DEPRECATED", 16384),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Num(i64),
    Op(u8),
}

/// The value of a bare value that is a known constant or an expression with
/// operators; `None` leaves the text as it is (numbers alone stay text, so
/// `0660` keeps its leading zero).
pub fn expression(text: &str) -> Option<i64> {
    let tokens = tokenize(text)?;
    let has_op = tokens.iter().any(|t| matches!(t, Token::Op(_)));
    let lone_constant = tokens.len() == 1 && !text.trim().starts_with(|c: char| c.is_ascii_digit());
    if !has_op && !lone_constant {
        return None;
    }
    let mut pos = 0;
    let value = binary(&tokens, &mut pos)?;
    (pos == tokens.len()).then_some(value)
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b"|&^~!()".contains(&c) {
            tokens.push(Token::Op(c));
            i += 1;
        } else {
            let len = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            tokens.push(Token::Num(atom(&text[i..i + len])?));
            i += len;
        }
    }
    Some(tokens)
}

fn atom(word: &str) -> Option<i64> {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse().ok();
    }
    if word == "E_ALL" {
        return Some(E_ALL.load(std::sync::atomic::Ordering::Relaxed));
    }
    CONSTANTS
        .iter()
        .find(|(name, _)| *name == word)
        .map(|c| c.1)
}

fn binary(tokens: &[Token], pos: &mut usize) -> Option<i64> {
    let mut left = unary(tokens, pos)?;
    while let Some(Token::Op(op @ (b'|' | b'&' | b'^'))) = tokens.get(*pos) {
        *pos += 1;
        let right = unary(tokens, pos)?;
        left = match op {
            b'|' => left | right,
            b'&' => left & right,
            _ => left ^ right,
        };
    }
    Some(left)
}

fn unary(tokens: &[Token], pos: &mut usize) -> Option<i64> {
    let token = *tokens.get(*pos)?;
    *pos += 1;
    match token {
        Token::Num(n) => Some(n),
        Token::Op(b'~') => unary(tokens, pos).map(|n| !n),
        Token::Op(b'!') => unary(tokens, pos).map(|n| i64::from(n == 0)),
        Token::Op(b'(') => {
            let inner = binary(tokens, pos)?;
            (tokens.get(*pos) == Some(&Token::Op(b')'))).then(|| *pos += 1)?;
            Some(inner)
        }
        Token::Op(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::e_all_of;

    #[test]
    fn e_all_lost_e_strict_in_php_84() {
        assert_eq!(e_all_of(8, 2), 32767);
        assert_eq!(e_all_of(8, 4), 30719);
    }
}
