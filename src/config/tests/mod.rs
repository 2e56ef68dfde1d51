//! Tests for the config reader: the INI dialect, expansion and value types
//! here; directives and their errors in `values`; includes, php-fpm's
//! checks and Debian's files in `files`.

mod files;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::directives::{self, parse_bool, parse_int, parse_time};
use super::ini::{self, parse_line, Line};
use super::*;

/// A fresh empty directory under the system temp dir.
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tfpm-config-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn opts() -> ReadOptions {
    let env = [("HOME", "/home/u"), ("PORT", "9001"), ("EMPTY", "")];
    ReadOptions {
        prefix: None,
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    }
}

fn line(text: &str) -> Option<Line> {
    parse_line(text, &opts()).unwrap()
}

fn value(text: &str) -> String {
    match line(&format!("k = {text}")) {
        Some(Line::Entry { value, .. }) => value,
        other => panic!("not an entry: {other:?}"),
    }
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = temp_dir();
    load(&write(&dir, "php-fpm.conf", text), &opts())
}

fn pool_text(body: &str) -> Result<Config, ConfigError> {
    load_text(&format!(
        "[www]\nlisten = 9000\npm = static\npm.max_children = 2\n{body}"
    ))
}

fn pool(body: &str) -> Pool {
    pool_text(body).unwrap().pools.remove(0)
}

/// The error's message for a one-file config, with the temp path replaced by `F`.
fn error_of(text: &str) -> String {
    let dir = temp_dir();
    let path = write(&dir, "php-fpm.conf", text);
    let err = load(&path, &opts()).unwrap_err();
    err.to_string().replace(&path.display().to_string(), "F")
}

fn pool_error(body: &str) -> String {
    error_of(&format!(
        "[www]\nlisten = 9000\npm = static\npm.max_children = 2\n{body}"
    ))
}

fn debian() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config/debian")
}

// ---- the INI dialect ----

#[test]
fn blank_and_comment_lines_are_skipped() {
    for text in ["", "   ", "; comment", "  ;x = 1", "# hash comment", "\r"] {
        assert_eq!(line(text), None, "{text:?}");
    }
}

#[test]
fn sections() {
    assert_eq!(line("[www]"), Some(Line::Section("www".into())));
    assert_eq!(line("  [ global ]  "), Some(Line::Section("global".into())));
    assert_eq!(line("[\"my pool\"]"), Some(Line::Section("my pool".into())));
    assert!(parse_line("[www", &opts()).is_err());
}

#[test]
fn entries_and_arrays() {
    let entry = |k: &str, v: &str| {
        Some(Line::Entry {
            key: k.into(),
            value: v.into(),
        })
    };
    let array = |n: &str, k: &str, v: &str| {
        Some(Line::Array {
            name: n.into(),
            key: k.into(),
            value: v.into(),
        })
    };
    assert_eq!(
        line("listen = 127.0.0.1:9000"),
        entry("listen", "127.0.0.1:9000")
    );
    assert_eq!(line("listen=/run/a.sock"), entry("listen", "/run/a.sock"));
    assert_eq!(
        line("pm.max_children =5 ; five"),
        entry("pm.max_children", "5")
    );
    assert_eq!(line("empty ="), entry("empty", ""));
    assert_eq!(
        line("php_value[memory_limit] = 32M"),
        array("php_value", "memory_limit", "32M")
    );
    assert_eq!(
        line("env[PATH] = /usr/bin:/bin"),
        array("env", "PATH", "/usr/bin:/bin")
    );
    assert_eq!(
        line("access.suppress_path[] = /ping"),
        array("access.suppress_path", "", "/ping")
    );
    assert_eq!(
        line("php_flag[ display_errors ] = off"),
        array("php_flag", "display_errors", "")
    );
    assert_eq!(line("a = b = c"), entry("a", "b = c"));
}

#[test]
fn a_line_without_equals_is_an_error() {
    let err = parse_line("listen 9000", &opts()).unwrap_err();
    assert_eq!(err, "value is NULL for a ZEND_INI_PARSER_ENTRY");
    assert!(parse_line("= 3", &opts()).is_err());
    assert!(parse_line("php_value[x = 3", &opts()).is_err());
}

#[test]
fn bare_words_become_zend_booleans() {
    for word in ["yes", "On", "TRUE", "true ; c"] {
        assert_eq!(value(word), "1", "{word}");
    }
    for word in ["no", "Off", "false", "none", "null", "NONE"] {
        assert_eq!(value(word), "", "{word}");
    }
    assert_eq!(value("\"yes\""), "yes");
    assert_eq!(value("yes please"), "yes please");
}

#[test]
fn quoting() {
    assert_eq!(value("\"a ; b\""), "a ; b");
    assert_eq!(value("\"a \\\" b\""), "a \" b");
    assert_eq!(value("\"a\\\\b\""), "a\\b");
    assert_eq!(value("\"C:\\tmp\""), "C:\\tmp");
    assert_eq!(value("'${HOME} ; x'"), "${HOME} ; x");
    assert_eq!(value("\"  padded  \""), "  padded  ");
    assert_eq!(value("\"a\" ; comment"), "a");
    assert_eq!(value("\"a\"\"b\""), "ab");
    assert_eq!(value("pre\"fix\""), "prefix");
    assert!(parse_line("k = \"open", &opts()).is_err());
    assert!(parse_line("k = 'open", &opts()).is_err());
}

#[test]
fn bare_values_stop_at_semicolons_and_keep_inner_blanks() {
    assert_eq!(value("%R - %u %t ; fmt"), "%R - %u %t");
    assert_eq!(value(".php .php5"), ".php .php5");
    assert_eq!(value("Europe/London"), "Europe/London");
}

#[test]
fn error_constants_and_expressions_are_evaluated() {
    assert_eq!(value("E_ALL"), "32767");
    assert_eq!(value("E_ALL & ~E_NOTICE"), "32759");
    assert_eq!(value("E_ALL & ~E_DEPRECATED & ~E_STRICT ; prod"), "22527");
    assert_eq!(value("E_ERROR | E_WARNING"), "3");
    assert_eq!(value("E_ALL ^ E_NOTICE"), "32759");
    assert_eq!(value("E_ERROR | E_WARNING & E_ERROR"), "1");
    assert_eq!(value("E_ERROR | (E_WARNING & E_ERROR)"), "1");
    assert_eq!(value("!0"), "1");
    assert_eq!(value("1|2"), "3");
    // Left alone: plain numbers, unknown names, broken expressions, quotes.
    assert_eq!(value("0660"), "0660");
    assert_eq!(value("E_NOPE"), "E_NOPE");
    assert_eq!(value("files"), "files");
    assert_eq!(value("a|b"), "a|b");
    assert_eq!(value("E_ALL &"), "E_ALL &");
    assert_eq!(value("(E_ALL"), "(E_ALL");
    assert_eq!(value("\"E_ALL\""), "E_ALL");
}

#[test]
fn env_expansion() {
    assert_eq!(value("${HOME}/log"), "/home/u/log");
    assert_eq!(value("\"127.0.0.1:${PORT}\""), "127.0.0.1:9001");
    assert_eq!(value("${MISSING}x"), "x");
    assert_eq!(value("${EMPTY}"), "");
    assert_eq!(value("${HOME}${PORT}"), "/home/u9001");
    assert_eq!(value("$HOME"), "$HOME");
    assert_eq!(value("${open"), "${open");
    assert_eq!(value("\"${HOME}\\\"${PORT}\""), "/home/u\"9001");
    assert!(parse_line("k = \"${open\"", &opts()).is_err());
}

#[test]
fn env_expansion_reads_the_process_environment_by_default() {
    let path = std::env::var("PATH").unwrap_or_default();
    let got = parse_line("k = ${PATH}", &ReadOptions::default()).unwrap();
    assert_eq!(
        got,
        Some(Line::Entry {
            key: "k".into(),
            value: path
        })
    );
}

#[test]
fn wildcards() {
    let m = |p: &str, n: &str| ini::wildcard(p.as_bytes(), n.as_bytes());
    assert!(m("*.conf", "www.conf"));
    assert!(m("*.conf", ".conf"));
    assert!(!m("*.conf", "www.conf.bak"));
    assert!(m("w?w.conf", "www.conf"));
    assert!(!m("w?w.conf", "ww.conf"));
    assert!(m("[a-c]*", "b1"));
    assert!(!m("[a-c]*", "d1"));
    assert!(m("[!a-c]*", "d1"));
    assert!(m("[^a]", "b"));
    assert!(m("x[yz]", "xz"));
    assert!(m("*", ""));
    assert!(m("a*b*c", "aXbYbc"));
    assert!(m("[", "["));
    assert!(m("plain", "plain"));
    assert!(!m("plain", "plainer"));
}

#[test]
fn glob_sorts_skips_dot_files_and_walks_wildcard_directories() {
    let dir = temp_dir();
    for name in [
        "b.conf",
        "a.conf",
        ".hidden.conf",
        "c.txt",
        "d/x.conf",
        "e/x.conf",
    ] {
        write(&dir, name, "");
    }
    std::fs::create_dir_all(dir.join("dir.conf")).unwrap();
    let names = |pattern: &str| -> Vec<String> {
        ini::glob(&dir.join(pattern))
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect()
    };
    assert_eq!(names("*.conf"), ["a.conf", "b.conf", "dir.conf"]);
    assert_eq!(names(".*.conf"), [".hidden.conf"]);
    assert_eq!(names("*/x.conf"), ["d/x.conf", "e/x.conf"]);
    assert_eq!(names("c.txt"), ["c.txt"]);
    assert!(names("none/*.conf").is_empty());
    assert!(names("missing.conf").is_empty());
}

// ---- value types ----

#[test]
fn integers_as_php_fpm_reads_them() {
    assert_eq!(parse_int("5"), Ok(5));
    assert_eq!(parse_int("-1"), Ok(-1));
    assert_eq!(parse_int(""), Ok(0));
    assert_eq!(parse_int("007"), Ok(7));
    assert_eq!(parse_int("99999999999"), Ok(i32::MAX));
    let bad = Err("is not a valid number (greater or equal than zero)".to_string());
    for text in ["5k", "1.5", " 5", "--1", "+1", "0x10"] {
        assert_eq!(parse_int(text), bad, "{text}");
    }
}

#[test]
fn times_as_php_fpm_reads_them() {
    assert_eq!(parse_time("30"), Ok(30));
    assert_eq!(parse_time("30s"), Ok(30));
    assert_eq!(parse_time("2m"), Ok(120));
    assert_eq!(parse_time("1h"), Ok(3600));
    assert_eq!(parse_time("2d"), Ok(172_800));
    assert_eq!(parse_time("s"), Ok(0));
    assert_eq!(parse_time("10x5"), Ok(10));
    assert_eq!(parse_time(""), Err("invalid time value".into()));
    assert_eq!(
        parse_time("10x"),
        Err("unknown suffix used in time value".into())
    );
    assert_eq!(
        parse_time("10S"),
        Err("unknown suffix used in time value".into())
    );
}

#[test]
fn booleans_as_php_fpm_reads_them() {
    for yes in ["1", "yes", "true", "on", "YES"] {
        assert_eq!(parse_bool(yes), Ok(true), "{yes}");
    }
    for no in ["", "0", "no", "none", "false", "off", "Off"] {
        assert_eq!(parse_bool(no), Ok(false), "{no}");
    }
    assert_eq!(parse_bool("2"), Err("invalid boolean value".into()));
}

// ---- directives ----
