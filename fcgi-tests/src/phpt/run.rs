//! One test against one server: its skip check, its script and its clean-up,
//! each a FastCGI request, and the verdict on the answer. A request that
//! gets no END_REQUEST is told apart: past the time limit it hung; a
//! connection that closed or reset first lost its worker (a crash).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::fcgi_client::{FcgiClient, FcgiResponse};

use super::case::{Plan, Script};
use super::expect::normalize;

/// How much of a failed run's output is kept for the report.
const KEEP: usize = 64 * 1024;

/// What one run of a test came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The output is what the test expects.
    Pass,
    /// It is not; the response body, for the report.
    Fail(Vec<u8>),
    /// `--SKIPIF--` (or a missing extension) said skip, with the reason.
    Skip(String),
    /// No answer within the time limit.
    Hang,
    /// The connection ended before END_REQUEST: the server lost the request.
    Lost(String),
}

impl Verdict {
    /// A short word for reports.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Skip(_) => "skip",
            Verdict::Hang => "hang",
            Verdict::Lost(_) => "lost",
        }
    }
}

/// The FastCGI answer to one script, or how it went wrong.
enum Answer {
    Got(FcgiResponse),
    Hang,
    Lost(String),
}

/// Runs `plan` on the server at `addr`: skip check, script, clean-up.
/// `timeout` bounds each request. A `repeat` run tells the test so
/// (`SKIP_REPEAT=1`, as run-tests.php's `--repeat`), and a test that cannot
/// run twice skips itself.
pub fn run(plan: &Plan, addr: SocketAddr, timeout: Duration, repeat: bool) -> Verdict {
    if repeat {
        let mut plan = plan.clone();
        for script in [
            Some(&mut plan.main),
            plan.skipif.as_mut(),
            plan.clean.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            script.params.push(("SKIP_REPEAT".into(), "1".into()));
        }
        return run_once(&plan, addr, timeout);
    }
    run_once(plan, addr, timeout)
}

fn run_once(plan: &Plan, addr: SocketAddr, timeout: Duration) -> Verdict {
    if let Some(skipif) = &plan.skipif {
        match request(skipif, addr, timeout) {
            Answer::Got(response) => {
                let said = normalize(&body(&response.stdout), false);
                if starts_with_ci(&said, b"skip") {
                    return Verdict::Skip(reason(&said[4..]));
                }
            }
            Answer::Hang => return Verdict::Hang,
            Answer::Lost(why) => return Verdict::Lost(format!("in --SKIPIF--: {why}")),
        }
    }
    let verdict = match request(&plan.main, addr, timeout) {
        Answer::Got(response) => judge(plan, &response),
        Answer::Hang => Verdict::Hang,
        Answer::Lost(why) => Verdict::Lost(why),
    };
    if let Some(clean) = &plan.clean {
        if let Answer::Lost(why) = request(clean, addr, timeout) {
            if verdict == Verdict::Pass {
                return Verdict::Lost(format!("in --CLEAN--: {why}"));
            }
        }
    }
    verdict
}

fn judge(plan: &Plan, response: &FcgiResponse) -> Verdict {
    let (headers, body) = split(&response.stdout);
    let matches = plan.expect.matches(body, plan.whitespace_sensitive)
        && plan
            .headers
            .iter()
            .all(|(name, value)| has_header(headers, name, value));
    match matches {
        true => Verdict::Pass,
        false => Verdict::Fail(body[..body.len().min(KEEP)].to_vec()),
    }
}

fn request(script: &Script, addr: SocketAddr, timeout: Duration) -> Answer {
    if let Err(e) = std::fs::write(&script.file, &script.source) {
        return Answer::Lost(format!("cannot write {}: {e}", script.file.display()));
    }
    let mut params = script.params.clone();
    let file = script.file.display().to_string();
    let dir = script
        .file
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let name = script
        .file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for (k, v) in [
        ("SCRIPT_FILENAME", file.clone()),
        ("PATH_TRANSLATED", file),
        ("SCRIPT_NAME", format!("/{name}")),
        ("REQUEST_URI", format!("/{name}")),
        ("DOCUMENT_ROOT", dir),
    ] {
        if !params.iter().any(|(n, _)| n == k) {
            params.push((k.to_string(), v));
        }
    }
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let outcome = FcgiClient::connect_tcp(addr).and_then(|mut client| {
        client.stream().set_timeouts(Some(timeout))?;
        client.request(&borrowed, &script.body, false)
    });
    let answer = match outcome {
        Ok(response) => Answer::Got(response),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Answer::Hang
        }
        Err(e) => Answer::Lost(e.to_string()),
    };
    let _ = std::fs::remove_file(&script.file);
    answer
}

/// Splits a CGI response into its header block and body.
fn split(stdout: &[u8]) -> (&[u8], &[u8]) {
    for (sep, len) in [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)] {
        if let Some(at) = stdout.windows(len).position(|w| w == sep) {
            return (&stdout[..at], &stdout[at + len..]);
        }
    }
    (&[], stdout)
}

/// The body of a response (what follows the CGI headers).
pub fn body(stdout: &[u8]) -> Vec<u8> {
    split(stdout).1.to_vec()
}

fn has_header(headers: &[u8], name: &str, value: &str) -> bool {
    String::from_utf8_lossy(headers).lines().any(|line| {
        line.split_once(':')
            .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn reason(rest: &[u8]) -> String {
    let text = String::from_utf8_lossy(rest);
    text.trim().lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_splits_at_its_blank_line() {
        let (h, b) = split(b"Content-type: text/html\r\n\r\nbody\r\n\r\nmore");
        assert_eq!(h, b"Content-type: text/html");
        assert_eq!(b, b"body\r\n\r\nmore");
        assert!(has_header(h, "content-type", "text/html"));
        assert!(!has_header(h, "content-type", "text/plain"));
    }
}
