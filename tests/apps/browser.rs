//! A scripted browser for the application sessions of `tests/apps.rs`: a
//! cookie jar over [`fcgi_tests::http::request`], redirects followed on
//! request, and the few bits of HTML scraping that filling in a form needs.
//!
//! The jar serves one site, so it ignores a cookie's `Path` and `Domain`: it
//! keeps the last value set for each name and drops a cookie whose `Max-Age`
//! is zero or negative (PHP's `setcookie()` always sends `Max-Age` with an
//! expiry in the past). The HTML helpers are string searches, not a parser:
//! enough for the machine-written forms of the applications under test.

use std::net::SocketAddr;

use fcgi_tests::http::{self, urlencode, Multipart, Response};

/// How many redirects [`Browser::follow_all`] follows before it gives up.
const MAX_REDIRECTS: usize = 5;

/// One site's cookies, and the client that sends them.
pub struct Browser {
    addr: SocketAddr,
    cookies: Vec<(String, String)>,
}

impl Browser {
    /// A browser with an empty cookie jar, talking to `addr`.
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            cookies: Vec::new(),
        }
    }

    /// GET `path` with the jar's cookies; stores the cookies of the answer.
    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, &[], b"")
    }

    /// As [`Browser::get`], with extra request headers.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send("GET", path, headers, b"")
    }

    /// POSTs `fields` form-encoded to `path`.
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = urlencode(fields);
        let content_type = [("Content-Type", "application/x-www-form-urlencoded")];
        self.send("POST", path, &content_type, body.as_bytes())
    }

    /// Submits `form`, found on the page at `page`, with its hidden fields and then `fields`.
    pub fn submit(&mut self, page: &str, form: &Form, fields: &[(&str, &str)]) -> Response {
        let all: Vec<(&str, &str)> = form.hidden_fields().chain(fields.iter().copied()).collect();
        self.post_form(&resolve(page, &form.action), &all)
    }

    /// Submits `form` as `multipart/form-data`: its hidden fields, `fields`, then `file`.
    pub fn upload(
        &mut self,
        page: &str,
        form: &Form,
        fields: &[(&str, &str)],
        file: &Upload,
    ) -> Response {
        let all = form.hidden_fields().chain(fields.iter().copied());
        let multipart = all.fold(Multipart::new(), |m, (name, value)| m.field(name, value));
        let multipart = multipart.file(file.field, file.filename, file.content_type, file.data);
        let (content_type, body) = multipart.finish();
        let headers = [("Content-Type", content_type.as_str())];
        self.send("POST", &resolve(page, &form.action), &headers, &body)
    }

    /// GETs the `Location` of a redirect answered to a request for `from`.
    pub fn follow(&mut self, from: &str, redirect: &Response) -> (String, Response) {
        assert!(
            matches!(redirect.status, 301 | 302 | 303 | 307),
            "expected a redirect from {from}\n{}",
            redirect.summary()
        );
        let location = redirect
            .header("Location")
            .unwrap_or_else(|| panic!("redirect without Location\n{}", redirect.summary()));
        let next = resolve(from, location);
        let response = self.get(&next);
        (next, response)
    }

    /// GETs `path` and follows redirects; returns the final path and response.
    pub fn follow_all(&mut self, path: &str) -> (String, Response) {
        let (mut at, mut response) = (path.to_string(), self.get(path));
        for _ in 0..MAX_REDIRECTS {
            if !matches!(response.status, 301 | 302 | 303 | 307) {
                return (at, response);
            }
            (at, response) = self.follow(&at, &response);
        }
        panic!("more than {MAX_REDIRECTS} redirects from {path}")
    }

    /// The value of the cookie called `name`, if the jar has it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        let found = self.cookies.iter().find(|(n, _)| n == name);
        found.map(|(_, value)| value.as_str())
    }

    /// The names of the cookies in the jar.
    pub fn cookie_names(&self) -> Vec<&str> {
        self.cookies.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Puts a cookie in the jar, as if the site had set it.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_string(), value.to_string()));
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let cookie = self.cookie_header();
        let mut all = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let response = http::request(self.addr, method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        for set_cookie in response.headers_named("Set-Cookie") {
            self.store(set_cookie);
        }
        response
    }

    /// The `Cookie` request header for the jar ("" when empty).
    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        pairs.join("; ")
    }

    /// Applies one `Set-Cookie` header value to the jar.
    fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let pair = parts.next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        let name = name.trim();
        self.cookies.retain(|(n, _)| n != name);
        let expired = parts.any(|attribute| {
            let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
            key.trim().eq_ignore_ascii_case("max-age")
                && value.trim().parse::<i64>().is_ok_and(|age| age <= 0)
        });
        if !expired {
            self.cookies
                .push((name.to_string(), value.trim().to_string()));
        }
    }
}

/// The target of `href` as a path on the same site, seen from the page at `base`:
/// an absolute URL loses scheme and host, `?query` replaces the query of `base`,
/// "" is `base`, and any other relative reference is taken from `base`'s directory.
pub fn resolve(base: &str, href: &str) -> String {
    let base_path = base.split('?').next().unwrap_or_default();
    if let Some(rest) = href
        .strip_prefix("http://")
        .or_else(|| href.strip_prefix("https://"))
    {
        return rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string());
    }
    if href.starts_with('/') {
        href.to_string()
    } else if href.is_empty() {
        base.to_string()
    } else if href.starts_with('?') {
        format!("{base_path}{href}")
    } else {
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{href}")
    }
}

/// A file for [`Browser::upload`].
pub struct Upload<'a> {
    /// The name of the form's file field.
    pub field: &'a str,
    /// The file name the browser reports.
    pub filename: &'a str,
    pub content_type: &'a str,
    pub data: &'a [u8],
}

/// A form scraped from a page: where it posts to and its hidden fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute, entities decoded (relative to the page).
    pub action: String,
    /// The `name` and `value` of each `<input type="hidden">`, in order.
    pub hidden: Vec<(String, String)>,
}

impl Form {
    /// The hidden fields as `(name, value)` pairs.
    pub fn hidden_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hidden.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The first form of `html` whose opening tag contains `marker` (such as
/// `id="dw__login"`). Panics, showing the page, if there is none.
pub fn form(html: &str, marker: &str) -> Form {
    let found = html.match_indices("<form").find_map(|(start, _)| {
        let tag_end = start + html[start..].find('>')?;
        html[start..tag_end]
            .contains(marker)
            .then_some((start, tag_end))
    });
    let Some((start, tag_end)) = found else {
        panic!("no <form> with {marker:?} in the page:\n{html}");
    };
    let end = html[tag_end..]
        .find("</form>")
        .map_or(html.len(), |i| tag_end + i);
    let action = attribute(&html[start..=tag_end], "action").unwrap_or_default();
    let hidden = html[tag_end..end]
        .split("<input")
        .skip(1)
        .filter_map(|rest| hidden_field(&rest[..rest.find('>')? + 1]))
        .collect();
    Form { action, hidden }
}

/// The name and value of an `<input>` tag (without its `<input`) if it is a hidden one.
fn hidden_field(tag: &str) -> Option<(String, String)> {
    if !attribute(tag, "type")?.eq_ignore_ascii_case("hidden") {
        return None;
    }
    Some((attribute(tag, "name")?, attribute(tag, "value")?))
}

/// The value of attribute `name` in one HTML tag, quoted with `"` or `'`, entities decoded.
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=");
    let at = tag.find(&needle)? + needle.len();
    let rest = &tag[at..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let end = value.find(quote)?;
    Some(decode_entities(&value[..end]))
}

/// Decodes the character references that applications put in attribute values.
pub fn decode_entities(text: &str) -> String {
    [
        ("&quot;", "\""),
        ("&#039;", "'"),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(text.to_string(), |out, (entity, plain)| {
        out.replace(entity, plain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        let page = "/dir/page.php?a=1";
        assert_eq!(resolve(page, "http://h:8080/x?y=1"), "/x?y=1");
        assert_eq!(resolve(page, "https://h"), "/");
        assert_eq!(resolve(page, "/abs"), "/abs");
        assert_eq!(resolve(page, "?b=2"), "/dir/page.php?b=2");
        assert_eq!(resolve(page, ""), page);
        assert_eq!(resolve(page, "other.php"), "/dir/other.php");
    }

    #[test]
    fn scrapes_hidden_fields_with_either_quote() {
        let html = concat!(
            "<form action='?x=1' method='get'><input type=\"hidden\" name=\"no\" value=\"1\" /></form>",
            "<form id=\"f\" action='?db=a&amp;v=sql' method='post'>",
            "<input type=\"hidden\" name=\"token\" value=\"t&quot;1\" />",
            "<input type='text' name='q'/><input type='hidden' name='login' value='true' />",
            "</form><input type=\"hidden\" name=\"after\" value=\"2\" />",
        );
        let f = form(html, "id=\"f\"");
        assert_eq!(f.action, "?db=a&v=sql");
        let expected = [("token", "t\"1"), ("login", "true")];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(f.hidden, expected);
    }

    #[test]
    fn jar_keeps_the_last_value_and_drops_expired_cookies() {
        let mut b = Browser::new("127.0.0.1:9".parse().unwrap());
        b.store("a=1; path=/; HttpOnly");
        b.store("b=x%20y; expires=Sun, 27 Dec 2037 04:17:28 GMT; Max-Age=2592000");
        b.store("a=2");
        assert_eq!(b.cookie_header(), "b=x%20y; a=2");
        b.store("b=deleted; expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; path=/");
        assert_eq!(b.cookie_names(), ["a"]);
        assert_eq!(b.cookie("a"), Some("2"));
    }
}
