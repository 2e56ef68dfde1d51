//! The corpus of the differential harness: every request case sent to both
//! php-fpm and tfpm, grouped by the behaviour of issue 5 it pins.
//!
//! A [`Case`] is one or more requests ([`Req`]) that share a cookie jar,
//! run against the daemons of one [`Profile`] (a set of ini settings). A
//! request waits for the one before it, unless it is sent with
//! [`Case::overlap`], which starts it while the previous one still runs (for
//! session locking). `{uniq}` in a target is replaced by a token unique to
//! the case and the daemon, for scripts that leave files behind. The scripts
//! live in `tests/docroot/diff/`; the nginx locations that prefixes such as
//! `/nosplit/` refer to are in `fcgi-tests/diff/locations.conf`.

use std::time::Duration;

use fcgi_tests::http::{escape, urlencode, Multipart};

/// A set of ini settings; each profile gets its own php-fpm and tfpm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// display_errors=0, log_errors=1, cgi.fix_pathinfo=1 (the default).
    Default,
    /// display_errors=1.
    Display,
    /// cgi.fix_pathinfo=0.
    NoPathinfo,
    /// open_basedir limited to the document root and the harness's temp dir.
    Basedir,
    /// enable_post_data_reading=0.
    NoPost,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Display => "display",
            Profile::NoPathinfo => "nopif",
            Profile::Basedir => "basedir",
            Profile::NoPost => "nopost",
        }
    }
}

/// One HTTP request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    /// Path and query, already percent-encoded; may hold `{uniq}`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body with `Transfer-Encoding: chunked` instead of a length.
    pub chunked: bool,
    /// Send an HTTP/1.0 request line.
    pub http10: bool,
}

impl Req {
    pub fn new(method: &'static str, target: &str) -> Req {
        Req {
            method,
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            http10: false,
        }
    }

    pub fn get(target: &str) -> Req {
        Req::new("GET", target)
    }

    pub fn head(target: &str) -> Req {
        Req::new("HEAD", target)
    }

    pub fn post(target: &str) -> Req {
        Req::new("POST", target)
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// A body with its Content-Type (none if `content_type` is empty).
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        if !content_type.is_empty() {
            self = self.header("Content-Type", content_type);
        }
        self.body = body.into();
        self
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(self, pairs: &[(&str, &str)]) -> Req {
        self.body("application/x-www-form-urlencoded", urlencode(pairs))
    }

    /// A `multipart/form-data` body.
    pub fn multipart(self, form: Multipart) -> Req {
        let (content_type, body) = form.finish();
        self.body(&content_type, body)
    }

    pub fn chunked(mut self) -> Req {
        self.chunked = true;
        self
    }

    pub fn http10(mut self) -> Req {
        self.http10 = true;
        self
    }
}

/// When a request of a case starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Once every earlier request has its response.
    AfterPrevious,
    /// This long after the previous request started, without waiting for it.
    Overlap(Duration),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub req: Req,
    pub start: Start,
}

/// One case of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub profile: Profile,
    pub steps: Vec<Step>,
    /// Compare what nginx logged as "FastCGI sent in stderr" too.
    pub stderr: bool,
    /// Compare the order of the response headers too (otherwise sorted by name).
    pub ordered_headers: bool,
}

impl Case {
    pub fn new(name: impl Into<String>, req: Req) -> Case {
        Case {
            name: name.into(),
            profile: Profile::Default,
            steps: vec![Step {
                req,
                start: Start::AfterPrevious,
            }],
            stderr: false,
            ordered_headers: false,
        }
    }

    /// A GET of `target`, named `name`.
    pub fn get(name: impl Into<String>, target: &str) -> Case {
        Case::new(name, Req::get(target))
    }

    /// Then `req`, once the previous responses are in.
    pub fn then(mut self, req: Req) -> Case {
        self.steps.push(Step {
            req,
            start: Start::AfterPrevious,
        });
        self
    }

    /// Then `req`, `ms` after the previous request started.
    pub fn overlap(mut self, ms: u64, req: Req) -> Case {
        self.steps.push(Step {
            req,
            start: Start::Overlap(Duration::from_millis(ms)),
        });
        self
    }

    pub fn on(mut self, profile: Profile) -> Case {
        self.profile = profile;
        self
    }

    pub fn stderr(mut self) -> Case {
        self.stderr = true;
        self
    }

    pub fn ordered_headers(mut self) -> Case {
        self.ordered_headers = true;
        self
    }
}

/// A query string from `pairs` (`?` included), names and values escaped.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

/// The whole corpus.
pub fn all() -> Vec<Case> {
    let groups = [
        paths(),
        cve_2019_11043(),
        server_vars(),
        request_headers(),
        status_and_headers(),
        output(),
        bodies(),
        uploads(),
        sessions(),
        errors(),
        display_profile(),
        lifecycle(),
        refusals(),
        php_value(),
        profiles_misc(),
    ];
    groups.into_iter().flatten().collect()
}

// ---- $_SERVER path variables ---------------------------------------------------

/// URIs served by server.php under cgi.fix_pathinfo=1, one per nginx setup.
const PATHS_PIF: &[&str] = &[
    // The repository's snippet: split, try_files, PATH_INFO.
    "/server.php",
    "/server.php/",
    "/server.php/a/b",
    "/server.php/a%20b/c%2Bd?x=1&y=%C3%A9",
    "/server.php/a/b/../c",
    "/sub/server.php/p/q",
    "/sub//server.php",
    "/%73erver.php",
    "/server.php?a[]=1&a[]=2&b+c=d%2Be",
    "/server.php?",
    "/server.php?plain+words+here",
    "/sub/",
    "/sub/index.php",
    "/sub/index.php/extra",
    // No split: the path info stays in SCRIPT_FILENAME.
    "/nosplit/server.php",
    "/nosplit/server.php/a/b",
    "/nosplit/server.php/a/b/",
    "/nosplit/server.php/",
    "/nosplit/server.php/a%20b?q=1",
    "/nosplit/missing.php/a",
    "/nosplit/server.php/server.php/x",
    // No DOCUMENT_ROOT.
    "/noroot/server.php",
    "/noroot/server.php/a/b",
    // Split with PATH_INFO, no try_files.
    "/splitpi/server.php",
    "/splitpi/server.php/a/b",
    "/splitpi/server.php/a%20b/",
    // Split with PATH_INFO and PATH_TRANSLATED.
    "/splitpt/server.php",
    "/splitpt/server.php/a/b",
    "/splitpt/server.php/hello.php",
    // Apache mod_proxy_fcgi.
    "/apache/server.php",
    "/apache/server.php/a/b",
    "/apache/server.php/a%20b/c",
];

/// URIs served by server.php under cgi.fix_pathinfo=0.
const PATHS_NOPIF: &[&str] = &[
    "/server.php",
    "/server.php/a/b",
    "/sub/server.php/p/q",
    "/sub/",
    "/nosplit/server.php",
    "/nosplit/server.php/a/b",
    "/noroot/server.php/a/b",
    "/splitpi/server.php",
    "/splitpi/server.php/a/b",
    "/splitpt/server.php",
    "/splitpt/server.php/a/b",
    "/splitpt/server.php/hello.php",
    "/apache/server.php",
    "/apache/server.php/a/b",
];

fn paths() -> Vec<Case> {
    let pif = PATHS_PIF
        .iter()
        .map(|uri| Case::get(format!("path {uri}"), uri));
    let nopif = PATHS_NOPIF
        .iter()
        .map(|uri| Case::get(format!("path nopif {uri}"), uri).on(Profile::NoPathinfo));
    let mut cases: Vec<Case> = pif.chain(nopif).collect();
    cases.push(Case::get(
        "path relative include from the script dir",
        "/sub/include.php",
    ));
    cases.push(Case::get("path HEAD server.php", "/server.php/a").then(Req::head("/server.php/a")));
    cases
}

/// The CVE-2019-11043 vectors: a %0a in the path leaves PATH_INFO empty.
fn cve_2019_11043() -> Vec<Case> {
    let long_query = format!("?{}", "Q".repeat(1500));
    let uris = [
        "/splitpi/server.php/%0a".to_string(),
        "/splitpi/server.php/a%0ab".to_string(),
        "/splitpi/server.php/%0a/x".to_string(),
        format!("/splitpi/server.php/PHP%0Ais_the_shittiest_lang.php{long_query}"),
        "/splitpt/server.php/%0a".to_string(),
        "/nosplit/server.php/%0a".to_string(),
        "/server.php/%0a".to_string(),
    ];
    let mut cases = Vec::new();
    for uri in &uris {
        let shown = uri.split('?').next().unwrap_or(uri);
        cases.push(Case::get(format!("cve-2019-11043 {shown}"), uri).stderr());
        cases.push(
            Case::get(format!("cve-2019-11043 nopif {shown}"), uri)
                .on(Profile::NoPathinfo)
                .stderr(),
        );
    }
    // The daemon must still answer normally afterwards, on the same kept connections.
    cases.push(
        Case::get(
            "cve-2019-11043 then a normal request",
            "/splitpi/server.php/%0a?again",
        )
        .then(Req::get("/server.php/after")),
    );
    cases
}

// ---- the rest of $_SERVER -------------------------------------------------------

fn server_vars() -> Vec<Case> {
    let env = |what: &str| format!("/env.php?what={what}");
    vec![
        Case::get("server keys", &env("server_keys")),
        Case::get("server key order", &env("server_order")),
        Case::get("env keys", &env("env_keys")),
        Case::get("getenv keys", &env("getenv_keys")),
        Case::new(
            "getenv of params",
            Req::get(&env("getenv"))
                .header("X-Custom", "custom value")
                .header("Proxy", "http://evil.example:8080"),
        ),
        Case::get("putenv", &env("putenv")).then(Req::get(&env("putenv"))),
        Case::get("putenv over a param", &env("putenv_param")),
        Case::new(
            "query and cookie globals",
            Req::get("/env.php?what=globals&a.b=1&c+d=2&e[=3&f[x][y]=4&g[]=5&g[]=6&empty&=nokey")
                .header("Cookie", "c1=v1; c.2=v2"),
        ),
        Case::get("request time", "/time.php"),
        Case::get("https off", "/vars.php?k=HTTPS,REQUEST_SCHEME"),
        Case::get("https on", "/https/vars.php?k=HTTPS,REQUEST_SCHEME"),
        Case::get(
            "cgi basics",
            "/vars.php?k=FCGI_ROLE,GATEWAY_INTERFACE,REDIRECT_STATUS,SERVER_SOFTWARE,SERVER_NAME,SERVER_ADDR,SERVER_PORT,REMOTE_ADDR,REQUEST_METHOD,SERVER_PROTOCOL",
        ),
        Case::new(
            "HTTP/1.0 request",
            Req::get("/vars.php?k=SERVER_PROTOCOL,HTTP_HOST").http10(),
        ),
        Case::new(
            "content type on a GET",
            Req::get("/vars.php?k=CONTENT_TYPE,CONTENT_LENGTH,HTTP_CONTENT_TYPE,HTTP_CONTENT_LENGTH")
                .header("Content-Type", "text/plain"),
        ),
        Case::get(
            "params given twice",
            "/dup/nothere.php?k=SCRIPT_FILENAME,SCRIPT_NAME,X_TWICE",
        ),
        Case::get(
            "long query string",
            &format!("/vars.php?k=QUERY_STRING&pad={}", "p".repeat(6000)),
        ),
        Case::get("sapi identity", "/sapi.php"),
        Case::get("PHP_BINARY", "/binary.php"),
        Case::get("process state", "/process.php"),
        Case::get("ini_set does not outlive its request", "/ini.php?set[precision]=5&k=precision")
            .then(Req::get("/ini.php?k=precision"))
            .then(Req::get("/ini.php?k=precision"))
            .then(Req::get("/ini.php?k=precision")),
        Case::get("loaded extensions", "/extensions.php"),
        Case::get("ping page", "/fpm-ping"),
        Case::new("ping page, HEAD", Req::head("/fpm-ping")),
        Case::get(".user.ini in the script's directory", "/userini/show.php"),
        Case::get(".user.ini files from the document root down", "/userini/sub/show.php"),
        Case::get(
            "ini defaults",
            "/ini.php?k=display_errors,display_startup_errors,html_errors,log_errors,error_log,error_reporting,output_buffering,output_handler,implicit_flush,max_execution_time,max_input_time,memory_limit,register_argc_argv,variables_order,request_order,default_charset,default_mimetype,expose_php,include_path,open_basedir,doc_root,user_dir,file_uploads,allow_url_fopen,short_open_tag,precision,serialize_precision,zend.assertions,ignore_user_abort,user_ini.filename,user_ini.cache_ttl,auto_prepend_file,enable_post_data_reading,cgi.fix_pathinfo,cgi.discard_path,cgi.rfc2616_headers,cgi.nph,fastcgi.logging,fastcgi.error_header,session.save_handler,session.use_strict_mode,opcache.enable,opcache.enable_cli,opcache.jit,zend.enable_gc,upload_tmp_dir,session.save_path",
        ),
    ]
}

fn request_headers() -> Vec<Case> {
    let vars = "/vars.php?k=HTTP_X_CUSTOM,HTTP_X_DUP,HTTP_X_EMPTY,HTTP_X_UNDER_SCORE,HTTP_USER_AGENT,HTTP_ACCEPT_LANGUAGE,HTTP_X_UTF8";
    let auth = "/vars.php?k=HTTP_AUTHORIZATION,PHP_AUTH_USER,PHP_AUTH_PW,PHP_AUTH_DIGEST,AUTH_TYPE,REMOTE_USER";
    vec![
        Case::new(
            "custom request headers",
            Req::get(vars)
                .header("X-Custom", "a value, with: punctuation")
                .header("X-Empty", "")
                .header("X_Under_Score", "dropped by nginx")
                .header("User-Agent", "diff-harness/1.0")
                .header("Accept-Language", "de-CH, en;q=0.5")
                .header("X-Utf8", "caf\u{e9} \u{263a}"),
        ),
        Case::new(
            "request header given twice",
            Req::get(vars).header("X-Dup", "one").header("X-Dup", "two"),
        ),
        Case::new(
            "long request header",
            Req::get("/vars.php?k=HTTP_X_LONG").header("X-Long", &"L".repeat(6000)),
        ),
        Case::new(
            "httpoxy: HTTP_PROXY dropped",
            Req::get("/vars.php?k=HTTP_PROXY,HTTP_X_CUSTOM")
                .header("Proxy", "http://evil.example:8080")
                .header("X-Custom", "kept"),
        ),
        Case::new(
            "httpoxy: not in $_ENV or getenv()",
            Req::get("/env.php?what=env_keys").header("Proxy", "http://evil.example:8080"),
        )
        .then(Req::get("/env.php?what=getenv_keys").header("Proxy", "http://evil.example:8080")),
        Case::new(
            "basic auth",
            Req::get(auth).header("Authorization", "Basic dXNlcjpwYXNzOndvcmQ="),
        ),
        Case::new(
            "basic auth malformed",
            Req::get(auth).header("Authorization", "Basic !!!notbase64"),
        ),
        Case::new(
            "digest auth",
            Req::get(auth).header(
                "Authorization",
                "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
            ),
        ),
        Case::new(
            "bearer auth",
            Req::get(auth).header("Authorization", "Bearer abc.def.ghi"),
        ),
        Case::new(
            "cookies parsed",
            Req::get("/cookies.php").header(
                "Cookie",
                "a=1; b=2; a=3; x[y]=4; x[z]=5; dot.name=6; sp ace=7; enc=%41%20b; novalue",
            ),
        ),
        Case::new(
            "cookie header given twice",
            Req::get("/cookies.php")
                .header("Cookie", "first=1")
                .header("Cookie", "second=2"),
        ),
        Case::new(
            "getallheaders",
            Req::get("/allheaders.php")
                .header("X-Custom", "custom")
                .header("Accept", "text/html")
                .header("X-Dup", "one")
                .header("X-Dup", "two")
                .header("Proxy", "http://evil.example:8080"),
        ),
        Case::new(
            "getallheaders with a body",
            Req::post("/allheaders.php").form(&[("a", "1")]),
        ),
    ]
}

// ---- status and response headers ---------------------------------------------------

/// A request to respond.php with these query pairs.
fn respond(pairs: &[(&str, &str)]) -> String {
    format!("/respond.php{}", query(pairs))
}

fn status_and_headers() -> Vec<Case> {
    let mut cases = Vec::new();
    for code in [
        "200", "201", "202", "301", "400", "404", "418", "451", "500", "503", "599", "299",
    ] {
        cases.push(Case::get(
            format!("http_response_code({code})"),
            &respond(&[("code", code), ("body", "body text\n")]),
        ));
    }
    let long = format!("X-Long: {}", "v".repeat(3000));
    let lines: &[(&str, &str)] = &[
        ("header HTTP/1.1 404", "HTTP/1.1 404 Not Found"),
        ("header HTTP/1.0 503", "HTTP/1.0 503 Service Unavailable"),
        (
            "header HTTP/1.1 custom reason",
            "HTTP/1.1 299 Custom Reason",
        ),
        ("header HTTP/1.1 no reason", "HTTP/1.1 404"),
        ("header Status: 201", "Status: 201 Created"),
        ("header Status: without reason", "Status: 404"),
        ("header Status: custom", "Status: 418 I'm a teapot"),
        ("header Location", "Location: /elsewhere"),
        (
            "header Location absolute",
            "Location: https://example.com/x?y=1",
        ),
        ("header Content-Type text/plain", "Content-Type: text/plain"),
        ("header Content-Type json", "Content-Type: application/json"),
        (
            "header Content-Type with charset",
            "Content-Type: text/html; charset=ISO-8859-1",
        ),
        ("header Content-Type image", "Content-Type: image/png"),
        ("header without colon", "NoColonHere"),
        ("header with empty value", "X-Empty:"),
        ("header long value", &long),
    ];
    for (name, line) in lines {
        let target = respond(&[("h[]", line), ("body", "body\n"), ("show", "1")]);
        cases.push(Case::get(*name, &target));
    }
    cases.push(
        Case::get(
            "header injection refused",
            &respond(&[("h[]", "X-Bad: a\r\nX-Injected: b"), ("show", "1")]),
        )
        .stderr(),
    );
    cases.extend([
        Case::get(
            "Location with 201 kept",
            &respond(&[("code", "201"), ("h[]", "Location: /new")]),
        ),
        Case::get(
            "Location with explicit 301",
            &respond(&[("h[]", "Location: /moved"), ("hc", "301")]),
        ),
        Case::get(
            "Location after 307",
            &respond(&[("code", "307"), ("h[]", "Location: /temp")]),
        ),
        Case::get(
            "Location after 200 becomes 302",
            &respond(&[("code", "200"), ("h[]", "Location: /x"), ("show", "1")]),
        ),
        Case::new(
            "redirect HEAD",
            Req::head(&respond(&[("h[]", "Location: /x"), ("body", "moved")])),
        ),
        Case::get(
            "several headers of one name",
            &respond(&[
                ("h[]", "X-Multi: 1"),
                ("h[]", "+X-Multi: 2"),
                ("h[]", "+X-Multi: 3"),
                ("h[]", "Link: </a>; rel=preload"),
                ("h[]", "+Link: </b>; rel=preload"),
            ]),
        )
        .ordered_headers(),
        Case::get(
            "header replaces",
            &respond(&[
                ("h[]", "X-R: 1"),
                ("h[]", "X-R: 2"),
                ("h[]", "x-r: 3"),
                ("show", "1"),
            ]),
        ),
        Case::get(
            "Set-Cookie by header()",
            &respond(&[("h[]", "Set-Cookie: a=1"), ("h[]", "+Set-Cookie: b=2")]),
        )
        .ordered_headers(),
        Case::get(
            "header order",
            &respond(&[
                ("h[]", "X-First: 1"),
                ("h[]", "Content-Type: text/plain"),
                ("h[]", "X-Second: 2"),
                ("h[]", "Cache-Control: no-store"),
            ]),
        )
        .ordered_headers(),
        Case::get("many headers", &many_headers(60)),
        Case::get(
            "header_remove one",
            &respond(&[
                ("h[]", "X-A: 1"),
                ("h[]", "X-B: 2"),
                ("rm[]", "X-A"),
                ("show", "1"),
            ]),
        ),
        Case::get(
            "header_remove X-Powered-By",
            &respond(&[("rm[]", "X-Powered-By"), ("body", "x\n")]),
        ),
        Case::get(
            "header_remove all",
            &respond(&[("h[]", "X-A: 1"), ("rm[]", "*"), ("body", "x\n")]),
        ),
        Case::get(
            "header_remove Content-Type",
            &respond(&[("rm[]", "Content-Type"), ("body", "x\n")]),
        ),
        Case::get("default content type", "/hello.php").ordered_headers(),
        Case::get(
            "default_charset empty",
            "/ini.php?set[default_charset]=&k=default_charset",
        ),
        Case::get(
            "default_mimetype text/plain",
            "/ini.php?set[default_mimetype]=text/plain&k=default_mimetype",
        ),
        Case::get("no output at all", "/respond.php"),
        Case::get(
            "Content-Length shorter than the body",
            &respond(&[
                ("h[]", "Content-Length: 3"),
                ("body", "longer than three\n"),
            ]),
        ),
        Case::get(
            "204 drops the body",
            &respond(&[("code", "204"), ("body", "ignored")]),
        ),
        Case::get(
            "304 drops the body",
            &respond(&[("code", "304"), ("body", "ignored")]),
        ),
        Case::get(
            "304 with a Content-Type",
            &respond(&[("code", "304"), ("h[]", "Content-Type: text/plain")]),
        ),
        Case::get(
            "204 by header line",
            &respond(&[("h[]", "HTTP/1.1 204 No Content"), ("body", "ignored")]),
        ),
        Case::new("HEAD hello", Req::head("/hello.php")),
        Case::new(
            "HEAD 404 with body",
            Req::head(&respond(&[("code", "404"), ("body", "not shown")])),
        ),
        Case::new("HEAD big body", Req::head("/big.php?n=200000")),
        Case::get("cookies set", "/cookies.php?op=set").ordered_headers(),
        Case::get("cookies set then sent back", "/cookies.php?op=set")
            .then(Req::get("/cookies.php")),
    ]);
    cases
}

/// respond.php with `n` headers X-H-0 .. X-H-n.
fn many_headers(n: usize) -> String {
    let lines: Vec<String> = (0..n).map(|i| format!("X-H-{i}: value {i}")).collect();
    let pairs: Vec<(&str, &str)> = lines.iter().map(|l| ("h[]", l.as_str())).collect();
    respond(&pairs)
}

// ---- output -----------------------------------------------------------------------

fn output() -> Vec<Case> {
    let modes = [
        "level",
        "headers_sent",
        "header_after_buffered_output",
        "flush",
        "flush_in_buffer",
        "nested",
        "callback",
        "chunk_size",
        "clean",
        "implicit",
        "length",
    ];
    let mut cases: Vec<Case> = modes
        .iter()
        .map(|m| Case::get(format!("output {m}"), &format!("/output.php?mode={m}")))
        .collect();
    cases.extend([
        Case::get(
            "output header after output",
            "/output.php?mode=header_after_output",
        )
        .stderr(),
        Case::new(
            "output ob_gzhandler",
            Req::get("/output.php?mode=gzip").header("Accept-Encoding", "gzip"),
        ),
        Case::get(
            "output ob_gzhandler without Accept-Encoding",
            "/output.php?mode=gzip",
        ),
        Case::new(
            "output zlib.output_compression",
            Req::get("/output.php?mode=zlib").header("Accept-Encoding", "gzip, deflate"),
        ),
    ]);
    for (name, n, piece) in [
        ("empty", 0, 1),
        ("one byte", 1, 1),
        ("8191", 8191, 8192),
        ("8192", 8192, 8192),
        ("65535", 65535, 65535),
        ("65536", 65536, 65536),
        ("65537", 65537, 65537),
        ("1 MiB", 1 << 20, 8192),
        ("3 MiB", 3 << 20, 65536),
        ("tiny writes", 20000, 1),
    ] {
        cases.push(Case::get(
            format!("output size {name}"),
            &format!("/big.php?n={n}&piece={piece}"),
        ));
    }
    cases
}

// ---- request bodies -------------------------------------------------------------------

fn bodies() -> Vec<Case> {
    let form = [
        ("name", "J\u{f6}rg M\u{fc}ller"),
        ("sum", "1+2=3&4"),
        ("empty", ""),
    ];
    let arrays = [
        ("a[]", "1"),
        ("a[]", "2"),
        ("m[x][y]", "z"),
        ("dot.key", "v"),
    ];
    let json = br#"{"a": [1, 2, 3], "b": "text"}"#.to_vec();
    let many: Vec<(String, String)> = (0..1001)
        .map(|i| (format!("v{i}"), i.to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut cases = vec![
        Case::new("urlencoded form", Req::post("/post.php").form(&form)),
        Case::new("urlencoded arrays", Req::post("/post.php").form(&arrays)),
        Case::new(
            "urlencoded with charset",
            Req::post("/post.php").body(
                "application/x-www-form-urlencoded; charset=UTF-8",
                "a=1&b=%C3%A9",
            ),
        ),
        Case::new(
            "urlencoded over max_input_vars",
            Req::post("/post.php?max_input_vars").form(&many),
        )
        .stderr(),
        Case::new(
            "urlencoded empty body",
            Req::post("/post.php").body("application/x-www-form-urlencoded", ""),
        ),
        Case::new(
            "POST without Content-Type",
            Req::post("/post.php").body("", "raw bytes"),
        ),
        Case::new(
            "POST json",
            Req::post("/post.php").body("application/json", json.clone()),
        ),
        Case::new(
            "POST binary 100 KiB",
            Req::post("/post.php").body("application/octet-stream", pattern(100 * 1024)),
        ),
        Case::new(
            "POST 900 KiB under post_max_size",
            Req::post("/post.php").body("application/octet-stream", pattern(900 * 1024)),
        ),
        Case::new(
            "POST over post_max_size octet-stream",
            Req::post("/post.php?over-octet")
                .body("application/octet-stream", pattern(1200 * 1024)),
        )
        .stderr(),
        Case::new(
            "POST over post_max_size urlencoded",
            Req::post("/post.php?over-form").body(
                "application/x-www-form-urlencoded",
                format!("big={}", "b".repeat(1200 * 1024)),
            ),
        )
        .stderr(),
        Case::new(
            "chunked body buffered by nginx",
            Req::post("/post.php").form(&form).chunked(),
        ),
        Case::new(
            "chunked body unbuffered: no CONTENT_LENGTH",
            Req::post("/unbuffered/post.php").form(&form).chunked(),
        ),
        Case::new(
            "chunked octet-stream unbuffered",
            Req::post("/unbuffered/post.php")
                .body("application/octet-stream", pattern(50_000))
                .chunked(),
        ),
        Case::new(
            "unbuffered body with a length",
            Req::post("/unbuffered/post.php").body("application/octet-stream", pattern(300_000)),
        ),
        Case::new("POST HTTP/1.0", Req::post("/post.php").form(&form).http10()),
    ];
    for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        cases.push(Case::new(
            format!("php://input on {method}"),
            Req::new(method, "/post.php").body("application/x-www-form-urlencoded", "k=v&x=y"),
        ));
    }
    cases.push(Case::new(
        "php://input on a custom method",
        Req::new("PROPFIND", "/post.php").body("text/xml", "<propfind/>"),
    ));
    cases
}

/// `len` bytes of a fixed, non-repeating-looking pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn uploads() -> Vec<Case> {
    let upload =
        |name: &str, form: Multipart| Case::new(name, Req::post("/post.php").multipart(form));
    vec![
        upload(
            "multipart fields",
            Multipart::new()
                .field("a", "1")
                .field("b[]", "2")
                .field("b[]", "3"),
        ),
        upload(
            "multipart one file",
            Multipart::new()
                .field("t", "v")
                .file("f", "a.txt", "text/plain", b"file content\n"),
        ),
        upload(
            "multipart file array",
            Multipart::new()
                .file("f[]", "one.txt", "text/plain", b"one")
                .file("f[]", "two.bin", "application/octet-stream", &pattern(5000))
                .file("g[x]", "x.txt", "text/plain", b"x"),
        ),
        upload(
            "multipart file names",
            Multipart::new()
                .file("a", "../../etc/passwd", "text/plain", b"a")
                .file("b", "dir/sub/name.txt", "text/plain", b"b")
                .file("c", "caf\u{e9} \u{263a}.txt", "text/plain", b"c"),
        ),
        upload(
            "upload empty file field (UPLOAD_ERR_NO_FILE)",
            Multipart::new().file("f", "", "application/octet-stream", b""),
        ),
        upload(
            "upload empty file (size 0)",
            Multipart::new().file("f", "empty.txt", "text/plain", b""),
        ),
        upload(
            "upload over upload_max_filesize (UPLOAD_ERR_INI_SIZE)",
            Multipart::new().file(
                "f",
                "big.bin",
                "application/octet-stream",
                &pattern(300 * 1024),
            ),
        ),
        upload(
            "upload over MAX_FILE_SIZE (UPLOAD_ERR_FORM_SIZE)",
            Multipart::new().field("MAX_FILE_SIZE", "100").file(
                "f",
                "small.bin",
                "application/octet-stream",
                &pattern(1000),
            ),
        ),
        upload(
            "upload over max_file_uploads",
            Multipart::new()
                .file("f1", "1.txt", "text/plain", b"1")
                .file("f2", "2.txt", "text/plain", b"2")
                .file("f3", "3.txt", "text/plain", b"3")
                .file("f4", "4.txt", "text/plain", b"4"),
        )
        .stderr(),
        upload(
            "upload over post_max_size",
            Multipart::new().file(
                "f",
                "huge.bin",
                "application/octet-stream",
                &pattern(1200 * 1024),
            ),
        )
        .stderr(),
        Case::new(
            "multipart without boundary",
            Req::post("/post.php?no-boundary").body("multipart/form-data", "--x\r\n\r\n"),
        )
        .stderr(),
        Case::new(
            "multipart unterminated",
            Req::post("/post.php?unterminated").body(
                "multipart/form-data; boundary=zz",
                "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end",
            ),
        )
        .stderr(),
        Case::new(
            "multipart as PUT",
            Req::new("PUT", "/post.php").multipart(Multipart::new().field("a", "1")),
        ),
    ]
}

// ---- sessions ------------------------------------------------------------------------------

fn session(op: &str) -> Req {
    Req::get(&format!("/session.php?op={op}"))
}

fn sessions() -> Vec<Case> {
    let mut cases = vec![
        Case::new("session new", session("state")).ordered_headers(),
        Case::new("session across requests", session("count"))
            .then(session("count"))
            .then(session("count"))
            .then(session("state")),
        Case::new("session regenerate", session("count"))
            .then(session("regenerate"))
            .then(session("count")),
        Case::new("session destroy", session("count"))
            .then(session("destroy"))
            .then(session("state")),
        Case::new("session locking", session("count"))
            .then(session("slow_count&lock={uniq}"))
            .overlap(50, session("count_when_locked&lock={uniq}"))
            .then(session("state")),
        Case::new("session read_and_close", session("count")).then(session("read_and_close")),
        Case::new("session strict mode, known id", session("count")).then(session("strict")),
        Case::new(
            "session strict mode, unknown id",
            session("strict").header("Cookie", "PHPSESSID=unknownsessionid0123456789"),
        ),
        Case::new(
            "session id with illegal characters",
            Req::get("/session.php?op=state&bad-id").header("Cookie", "PHPSESSID=bad!id$"),
        )
        .stderr(),
        Case::new("session cookie params", session("params")).ordered_headers(),
        Case::new("session after output", session("after_output")),
    ];
    for limiter in ["nocache", "private", "private_no_expire", "public", ""] {
        cases.push(Case::get(
            format!("session cache limiter '{limiter}'"),
            &format!("/session.php?op=limiter&limiter={limiter}"),
        ));
    }
    cases
}

// ---- errors -------------------------------------------------------------------------------

fn error(kind: &str) -> String {
    format!("/error.php?kind={kind}")
}

fn errors() -> Vec<Case> {
    let kinds = [
        "warning",
        "notice",
        "deprecated",
        "silenced",
        "reporting_off",
        "handler",
        "undefined_function",
        "exception",
        "exception_handler",
        "user_error",
        "compile_error",
        "parse_error_include",
        "memory",
        "timeout",
        "exit_code",
        "exit_string",
        "error_log",
        "error_log_multi",
        "error_log_newline",
        "error_log_long",
        "display_stderr",
    ];
    let mut cases: Vec<Case> = kinds
        .iter()
        .map(|k| Case::get(format!("error {k}"), &error(k)).stderr())
        .collect();
    for kind in ["undefined_function", "exception", "user_error"] {
        cases.push(
            Case::get(
                format!("error {kind} after output"),
                &format!("{}&out=1", error(kind)),
            )
            .stderr(),
        );
    }
    for kind in ["warning", "undefined_function"] {
        cases.push(
            Case::get(
                format!("error {kind} with display_errors set at runtime"),
                &format!("{}&display=1", error(kind)),
            )
            .stderr(),
        );
    }
    cases.push(Case::get("error parse error in the main script", "/parse_error.php").stderr());
    for to in ["output", "stdout", "stderr"] {
        cases.push(Case::get(format!("php://{to}"), &format!("/stdio.php?to={to}")).stderr());
    }
    cases
}

/// The same errors with display_errors=1 in the ini.
fn display_profile() -> Vec<Case> {
    let mut cases: Vec<Case> = [
        "warning",
        "undefined_function",
        "exception",
        "user_error",
        "memory",
        "exit_code",
    ]
    .iter()
    .map(|k| {
        Case::get(format!("display {k}"), &error(k))
            .on(Profile::Display)
            .stderr()
    })
    .collect();
    cases.push(
        Case::get("display parse error in the main script", "/parse_error.php")
            .on(Profile::Display)
            .stderr(),
    );
    cases.push(
        Case::new(
            "display POST over post_max_size",
            Req::post("/post.php?over").body("application/octet-stream", pattern(1200 * 1024)),
        )
        .on(Profile::Display)
        .stderr(),
    );
    cases.push(
        Case::get(
            "display header after output",
            "/output.php?mode=header_after_output",
        )
        .on(Profile::Display)
        .stderr(),
    );
    cases
}

// ---- request lifecycle: fastcgi_finish_request, shutdown functions, opcache ----------------

fn lifecycle() -> Vec<Case> {
    let mut cases = Vec::new();
    let modes = [
        "basic",
        "headers",
        "buffered",
        "empty",
        "log_after",
        "output_after",
        "shutdown",
    ];
    for mode in modes {
        let case = Case::get(
            format!("fastcgi_finish_request {mode}"),
            &format!("/finish.php?mode={mode}&id={{uniq}}"),
        )
        .then(Req::get("/finish_check.php?id={uniq}"));
        cases.push(if mode == "log_after" {
            case.stderr()
        } else {
            case
        });
    }
    for mode in [
        "order",
        "exit",
        "fatal",
        "header",
        "exception",
        "destructor",
    ] {
        cases.push(
            Case::get(
                format!("shutdown function {mode}"),
                &format!("/shutdown.php?mode={mode}"),
            )
            .stderr(),
        );
    }
    cases.push(
        Case::get("opcache hits", "/hello.php")
            .then(Req::get("/hello.php"))
            .then(Req::get("/hello.php"))
            .then(Req::get("/opcache.php")),
    );
    cases
}

// ---- scripts that must be refused ---------------------------------------------------------

fn refusals() -> Vec<Case> {
    let ext = [
        "/ext/ok.php",
        "/ext/ok.php/extra/path",
        "/ext/readme.txt",
        "/ext/readme.txt/x.php",
        "/ext/page.phtml",
        "/ext/upper.PHP",
        "/ext/plain.phar",
        "/ext/missing.php",
        "/ext/dir/",
        "/ext/dir",
        "/ext/",
    ];
    let mut cases: Vec<Case> = ext
        .iter()
        .map(|uri| Case::get(format!("script {uri}"), uri).stderr())
        .collect();
    cases.push(Case::get("script outside the document root", "/outside.php").stderr());
    cases.push(Case::get("script through a .. segment", "/dotdot.php").stderr());
    cases.push(Case::get("script missing (nginx try_files)", "/missing.php").stderr());
    cases.push(
        Case::get("script /ext/missing.php, HEAD", "/ext/missing.php?get")
            .then(Req::head("/ext/missing.php?head")),
    );
    cases
}

// ---- PHP_VALUE and PHP_ADMIN_VALUE -----------------------------------------------------------
//
// php-fpm applies these to the worker's master values, so they stick to the
// worker for its later requests. So that no other case can see them, each
// setting is one nothing else prints, always given the same value.

fn php_value() -> Vec<Case> {
    let ini = |q: &str| Req::get(&format!("/ini/ini.php?{q}"));
    vec![
        Case::new(
            "PHP_VALUE",
            ini("k=highlight.string").header("X-Php-Value", "highlight.string=#111111"),
        ),
        Case::new(
            "PHP_ADMIN_VALUE cannot be changed by ini_set",
            ini("set[highlight.comment]=%23000000&k=highlight.comment")
                .header("X-Php-Admin-Value", "highlight.comment=#222222"),
        ),
        Case::new(
            "PHP_VALUE can be changed by ini_set",
            ini("set[highlight.html]=%23666666&k=highlight.html")
                .header("X-Php-Value", "highlight.html=#555555"),
        ),
        Case::get(
            "PHP_VALUE with two lines",
            "/ini-multi/ini.php?k=highlight.keyword,highlight.default",
        ),
        Case::new(
            "PHP_VALUE with a system setting",
            ini("k=realpath_cache_ttl").header("X-Php-Value", "realpath_cache_ttl=121"),
        ),
        Case::new(
            "PHP_VALUE malformed",
            ini("k=user_agent").header("X-Php-Value", "this is = not [valid"),
        ),
    ]
}

// ---- the remaining profiles ----------------------------------------------------------------

fn profiles_misc() -> Vec<Case> {
    let form = [("a", "1"), ("b", "2")];
    vec![
        Case::get("basedir script outside", "/outside.php")
            .on(Profile::Basedir)
            .stderr(),
        Case::get("basedir script inside", "/hello.php").on(Profile::Basedir),
        Case::get("basedir path info", "/nosplit/server.php/a/b").on(Profile::Basedir),
        Case::get(
            "basedir file_get_contents outside",
            "/error.php?kind=open_outside",
        )
        .on(Profile::Basedir)
        .stderr(),
        Case::new("nopost urlencoded", Req::post("/post.php").form(&form)).on(Profile::NoPost),
        Case::new(
            "nopost multipart",
            Req::post("/post.php").multipart(Multipart::new().field("a", "1").file(
                "f",
                "a.txt",
                "text/plain",
                b"content",
            )),
        )
        .on(Profile::NoPost),
        Case::new(
            "nopost chunked unbuffered",
            Req::post("/unbuffered/post.php").form(&form).chunked(),
        )
        .on(Profile::NoPost),
        Case::new(
            "nopost over post_max_size",
            Req::post("/post.php?over").body("application/octet-stream", pattern(1200 * 1024)),
        )
        .on(Profile::NoPost)
        .stderr(),
    ]
}
