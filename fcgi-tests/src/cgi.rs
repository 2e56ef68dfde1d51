//! The CGI side shared by the FastCGI clients: request params and response parsing.
//!
//! [`CgiRequest`] builds the params nginx would send for a request (what
//! Debian's `fastcgi.conf` sets), so [`crate::fcgi_client`] and
//! [`crate::cgi_fcgi`] see the same request. [`CgiResponse::parse`] splits a
//! responder's stdout into CGI headers and body and works out the status the
//! way nginx does: `Status:` if present, else 302 with `Location:`, else 200.

use std::path::{Path, PathBuf};

/// A request as CGI variables plus a body.
#[derive(Debug, Clone)]
pub struct CgiRequest {
    /// REQUEST_METHOD.
    pub method: String,
    /// DOCUMENT_ROOT; SCRIPT_FILENAME is this plus `script_name`.
    pub docroot: PathBuf,
    /// SCRIPT_NAME (and DOCUMENT_URI), starting with `/`.
    pub script_name: String,
    /// QUERY_STRING, without `?`.
    pub query: String,
    /// CONTENT_TYPE, if any.
    pub content_type: Option<String>,
    /// The request body (FCGI_STDIN); CONTENT_LENGTH is its length.
    pub body: Vec<u8>,
    /// Extra params after the standard ones (a later name wins over an earlier one).
    pub extra: Vec<(String, String)>,
}

impl CgiRequest {
    /// A GET of `script_name` (e.g. `/hello.php`) under `docroot`.
    pub fn get(docroot: &Path, script_name: &str) -> CgiRequest {
        CgiRequest {
            method: "GET".into(),
            docroot: docroot.to_path_buf(),
            script_name: script_name.into(),
            query: String::new(),
            content_type: None,
            body: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// A POST of `body` with `content_type`.
    pub fn post(docroot: &Path, script_name: &str, content_type: &str, body: &[u8]) -> CgiRequest {
        let mut request = CgiRequest::get(docroot, script_name);
        request.method = "POST".into();
        request.content_type = Some(content_type.into());
        request.body = body.to_vec();
        request
    }

    /// Sets QUERY_STRING.
    pub fn query(mut self, query: &str) -> CgiRequest {
        self.query = query.into();
        self
    }

    /// Adds an HTTP request header, as `HTTP_NAME` (upper case, `-` → `_`).
    pub fn header(self, name: &str, value: &str) -> CgiRequest {
        let param = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        self.param(&param, value)
    }

    /// Adds a raw param.
    pub fn param(mut self, name: &str, value: &str) -> CgiRequest {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// SCRIPT_FILENAME.
    pub fn script_filename(&self) -> String {
        format!("{}{}", self.docroot.display(), self.script_name)
    }

    /// The params in the order nginx sends them, extras last.
    pub fn params(&self) -> Vec<(String, String)> {
        let uri = match self.query.as_str() {
            "" => self.script_name.clone(),
            q => format!("{}?{q}", self.script_name),
        };
        let fixed = [
            ("SCRIPT_FILENAME", self.script_filename()),
            ("QUERY_STRING", self.query.clone()),
            ("REQUEST_METHOD", self.method.clone()),
            (
                "CONTENT_TYPE",
                self.content_type.clone().unwrap_or_default(),
            ),
            ("CONTENT_LENGTH", content_length(&self.body)),
            ("SCRIPT_NAME", self.script_name.clone()),
            ("REQUEST_URI", uri),
            ("DOCUMENT_URI", self.script_name.clone()),
            ("DOCUMENT_ROOT", self.docroot.display().to_string()),
            ("SERVER_PROTOCOL", "HTTP/1.1".into()),
            ("REQUEST_SCHEME", "http".into()),
            ("GATEWAY_INTERFACE", "CGI/1.1".into()),
            ("SERVER_SOFTWARE", "fcgi-tests".into()),
            ("REMOTE_ADDR", "127.0.0.1".into()),
            ("REMOTE_PORT", "40000".into()),
            ("SERVER_ADDR", "127.0.0.1".into()),
            ("SERVER_PORT", "80".into()),
            ("SERVER_NAME", "localhost".into()),
            ("REDIRECT_STATUS", "200".into()),
            ("HTTP_HOST", "localhost".into()),
        ];
        let mut params: Vec<(String, String)> =
            fixed.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        params.extend(self.extra.iter().cloned());
        params
    }
}

/// CONTENT_LENGTH as nginx sends it: empty without a body.
fn content_length(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        body.len().to_string()
    }
}

/// A responder's stdout split into CGI headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiResponse {
    /// From `Status:`, else 302 with `Location:`, else 200.
    pub status: u16,
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line.
    pub body: Vec<u8>,
}

impl CgiResponse {
    /// Splits `stdout` at the first blank line (CRLF or LF). Without one, all of it is headers.
    pub fn parse(stdout: &[u8]) -> CgiResponse {
        let (head, body) = split_head(stdout);
        let text = String::from_utf8_lossy(head);
        let headers: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut response = CgiResponse {
            status: 200,
            headers,
            body: body.to_vec(),
        };
        response.status = response.derive_status();
        response
    }

    fn derive_status(&self) -> u16 {
        let code = self
            .header("Status")
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        match code {
            Some(code) => code,
            None if self.header("Location").is_some() => 302,
            None => 200,
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (case-insensitive), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let named = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        named.map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// (head, body) split at the first `\r\n\r\n` or `\n\n`.
fn split_head(stdout: &[u8]) -> (&[u8], &[u8]) {
    let crlf = find(stdout, b"\r\n\r\n").map(|i| (i, 4));
    let lf = find(stdout, b"\n\n").map(|i| (i, 2));
    let first = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match first {
        Some((at, len)) => (&stdout[..at], &stdout[at + len..]),
        None => (stdout, &[]),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_headers_and_body() {
        let r = CgiResponse::parse(
            b"Status: 404 Not Found\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n\r\nmore",
        );
        assert_eq!(r.status, 404);
        assert_eq!(r.headers_named("x-a"), ["1", "2"]);
        assert_eq!(r.body, b"body\r\n\r\nmore");
    }

    #[test]
    fn defaults_to_200_and_302() {
        assert_eq!(
            CgiResponse::parse(b"Content-type: text/html\n\nhi").status,
            200
        );
        assert_eq!(CgiResponse::parse(b"Location: /x\r\n\r\n").status, 302);
    }

    #[test]
    fn builds_nginx_like_params() {
        let r = CgiRequest::post(Path::new("/srv"), "/a.php", "text/plain", b"abc")
            .query("x=1")
            .header("X-Y", "z");
        let p = r.params();
        let get = |k: &str| {
            p.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("SCRIPT_FILENAME"), Some("/srv/a.php"));
        assert_eq!(get("REQUEST_URI"), Some("/a.php?x=1"));
        assert_eq!(get("CONTENT_LENGTH"), Some("3"));
        assert_eq!(get("HTTP_X_Y"), Some("z"));
    }
}
