//! A `.phpt` test turned into FastCGI requests, as php-src's run-tests.php
//! turns it into a CGI run: the script file next to the test, `--INI--` as
//! `PHP_VALUE`, `--GET--`, `--POST--`, `--POST_RAW--`, `--PUT--`,
//! `--COOKIE--` and `--ENV--` as params and body, and `--SKIPIF--`,
//! `--CLEAN--` as scripts of their own. Sections that only mean something to
//! the command line make the test not applicable here.

use std::path::{Path, PathBuf};

use super::expect::Expectation;
use super::parse::Phpt;

/// Sections that only the CLI (or phpdbg) can honour, with why.
const CLI_ONLY: &[(&str, &str)] = &[
    ("ARGS", "--ARGS-- passes command-line arguments"),
    ("STDIN", "--STDIN-- feeds the CLI's standard input"),
    (
        "CAPTURE_STDIO",
        "--CAPTURE_STDIO-- captures the CLI's standard streams",
    ),
    ("PHPDBG", "--PHPDBG-- runs under phpdbg"),
    (
        "REDIRECTTEST",
        "--REDIRECTTEST-- runs another directory's tests",
    ),
    ("GZIP_POST", "--GZIP_POST-- sends a compressed body"),
    ("DEFLATE_POST", "--DEFLATE_POST-- sends a compressed body"),
];

/// One script to request: its file, params and body.
#[derive(Debug, Clone)]
pub struct Script {
    pub file: PathBuf,
    pub source: Vec<u8>,
    pub params: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Everything needed to run one test against one server.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub main: Script,
    pub skipif: Option<Script>,
    pub clean: Option<Script>,
    pub expect: Expectation,
    pub headers: Vec<(String, String)>,
    pub whitespace_sensitive: bool,
    pub xfail: bool,
    pub flaky: bool,
    pub conflicts: Vec<String>,
}

/// The params every request gets: what run-tests.php puts in the environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub params: Vec<(String, String)>,
}

/// Why a test does not become a plan.
#[derive(Debug, Clone)]
pub enum NotRun {
    /// run-tests.php would not run it either (a broken file).
    Borked(String),
    /// It needs something a FastCGI server cannot give.
    NotApplicable(String),
}

impl Plan {
    /// The plan for `phpt`, named `name` (its path under the source tree).
    pub fn new(phpt: &Phpt, name: &str, env: &Env) -> Result<Plan, NotRun> {
        for (section, why) in CLI_ONLY {
            if phpt.has(section) {
                return Err(NotRun::NotApplicable((*why).into()));
            }
        }
        let expect = Expectation::of(phpt).map_err(NotRun::NotApplicable)?;
        let dir = phpt.dir();
        let stem = phpt.stem();
        let pwd = dir.display().to_string();
        let mut params = base_params(env);
        params.extend(env_section(phpt, &pwd));
        let ini = phpt.text("INI").map(|t| ini_text(&t, &pwd));
        let mut main = script(
            dir,
            &stem,
            "php",
            phpt.section("FILE").unwrap_or_default(),
            params.clone(),
        );
        if let Some(ini) = &ini {
            main.params.push(("PHP_VALUE".into(), ini.clone()));
        }
        request_from_sections(phpt, &mut main)?;
        let skipif = skip_script(phpt, dir, &stem, &params);
        let clean = phpt
            .section("CLEAN")
            .filter(|s| !s.is_empty())
            .map(|s| script(dir, &stem, "clean.php", s, params.clone()));
        Ok(Plan {
            name: name.to_string(),
            main,
            skipif,
            clean,
            expect,
            headers: expected_headers(phpt),
            whitespace_sensitive: phpt.has("WHITESPACE_SENSITIVE"),
            xfail: phpt.has("XFAIL"),
            flaky: phpt.has("FLAKY"),
            conflicts: phpt.conflicts(),
        })
    }
}

fn script(
    dir: &Path,
    stem: &str,
    ext: &str,
    source: &[u8],
    params: Vec<(String, String)>,
) -> Script {
    Script {
        file: dir.join(format!("{stem}.{ext}")),
        source: source.to_vec(),
        params,
        body: Vec::new(),
    }
}

fn base_params(env: &Env) -> Vec<(String, String)> {
    let mut params = vec![
        ("REDIRECT_STATUS".to_string(), "1".to_string()),
        ("REQUEST_METHOD".to_string(), "GET".to_string()),
        ("QUERY_STRING".to_string(), String::new()),
        ("SERVER_PROTOCOL".to_string(), "HTTP/1.1".to_string()),
        ("GATEWAY_INTERFACE".to_string(), "CGI/1.1".to_string()),
    ];
    params.extend(env.params.iter().cloned());
    params
}

/// `--ENV--` lines (`NAME=value`), with `{PWD}` as the test's directory.
fn env_section(phpt: &Phpt, pwd: &str) -> Vec<(String, String)> {
    let text = phpt.text("ENV").unwrap_or_default().replace("{PWD}", pwd);
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// `--INI--` as one PHP_VALUE: `{PWD}` and `{TMP}` replaced, lines kept.
fn ini_text(text: &str, pwd: &str) -> String {
    let tmp = std::env::temp_dir().display().to_string();
    text.replace("{PWD}", pwd)
        .replace("{TMP}", &tmp)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The request the test describes: method, query, cookie and body.
fn request_from_sections(phpt: &Phpt, main: &mut Script) -> Result<(), NotRun> {
    let set = |params: &mut Vec<(String, String)>, k: &str, v: String| {
        params.retain(|(n, _)| n != k);
        params.push((k.to_string(), v));
    };
    if let Some(get) = phpt.text("GET").filter(|g| !g.is_empty()) {
        set(
            &mut main.params,
            "QUERY_STRING",
            get.trim_end_matches(['\r', '\n']).to_string(),
        );
    }
    if let Some(cookie) = phpt.text("COOKIE").filter(|c| !c.is_empty()) {
        set(&mut main.params, "HTTP_COOKIE", cookie.trim().to_string());
    }
    let raw = phpt
        .section("POST_RAW")
        .map(|r| ("POST", r))
        .or_else(|| phpt.section("PUT").map(|r| ("PUT", r)))
        .filter(|(_, r)| !r.is_empty());
    if let Some((method, raw)) = raw {
        let (content_type, body) = raw_request(raw);
        set(&mut main.params, "REQUEST_METHOD", method.into());
        if let Some(ct) = content_type {
            set(&mut main.params, "CONTENT_TYPE", ct);
        }
        set(&mut main.params, "CONTENT_LENGTH", body.len().to_string());
        main.body = body;
    } else if let Some(post) = phpt.section("POST").filter(|p| !p.is_empty()) {
        let body = trim_bytes(post).to_vec();
        set(&mut main.params, "REQUEST_METHOD", "POST".into());
        set(
            &mut main.params,
            "CONTENT_TYPE",
            "application/x-www-form-urlencoded".into(),
        );
        set(&mut main.params, "CONTENT_LENGTH", body.len().to_string());
        main.body = body;
    }
    Ok(())
}

/// `--POST_RAW--` / `--PUT--`: the first `Content-Type:` line gives the
/// type, the other lines are the body, joined with `\n` (each keeps its
/// `\r`), as run-tests.php builds it.
fn raw_request(raw: &[u8]) -> (Option<String>, Vec<u8>) {
    let text = trim_bytes(raw);
    let mut content_type = None;
    let mut body: Vec<&[u8]> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        if content_type.is_none()
            && line.len() >= 13
            && line[..13].eq_ignore_ascii_case(b"content-type:")
        {
            let value: Vec<u8> = line[13..].iter().copied().filter(|b| *b != b'\r').collect();
            content_type = Some(String::from_utf8_lossy(&value).trim().to_string());
            continue;
        }
        body.push(line);
    }
    (content_type, body.join(&b"\n"[..]))
}

fn trim_bytes(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &text[start..end]
}

/// `--SKIPIF--`, with a check of `--EXTENSIONS--` put first.
fn skip_script(phpt: &Phpt, dir: &Path, stem: &str, params: &[(String, String)]) -> Option<Script> {
    let extensions: Vec<String> = phpt
        .text("EXTENSIONS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let skipif = phpt.section("SKIPIF").filter(|s| !s.is_empty());
    if extensions.is_empty() && skipif.is_none() {
        return None;
    }
    let mut source = Vec::new();
    if !extensions.is_empty() {
        let list: Vec<String> = extensions.iter().map(|e| format!("'{e}'")).collect();
        source.extend_from_slice(
            format!(
                "<?php foreach ([{}] as $e) {{ if (!extension_loaded($e) && !($e === 'opcache' && function_exists('opcache_get_status'))) {{ die(\"skip Required extension missing: $e\"); }} }} ?>",
                list.join(", ")
            )
            .as_bytes(),
        );
    }
    source.extend_from_slice(skipif.unwrap_or_default());
    Some(script(dir, stem, "skip.php", &source, params.to_vec()))
}

/// `--EXPECTHEADERS--`: `Name: value` lines that the response must carry.
fn expected_headers(phpt: &Phpt) -> Vec<(String, String)> {
    phpt.text("EXPECTHEADERS")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_post_takes_its_content_type_from_the_first_line() {
        let (ct, body) =
            raw_request(b"Content-Type: multipart/form-data; boundary=x\r\n--x\r\nhi\r\n--x--\r\n");
        assert_eq!(ct.as_deref(), Some("multipart/form-data; boundary=x"));
        assert_eq!(body, b"--x\r\nhi\r\n--x--");
    }

    #[test]
    fn ini_lines_get_their_placeholders() {
        let text = ini_text("a={PWD}/x\n\n b=1 \n", "/t");
        assert_eq!(text, "a=/t/x\nb=1");
    }
}
