//! Two real-framework apps, each served three ways behind its own nginx and
//! compared (issue 18): php-fpm from our PHP build (the oracle), tfpm running
//! the front controller per request (classic), and tfpm in worker mode (the
//! pool's `worker` directive: one worker thread boots the app once and serves
//! every request through `frankenphp_handle_request()`).
//!
//! The apps, built on Debian's packages under /usr/share/php (Debian's
//! autoloaders, no Composer), are `tests/apps/symfony/` (Symfony 5.4:
//! MicroKernelTrait, FrameworkBundle, a Twig template, Doctrine DBAL on
//! SQLite, a PHP-native session) and `tests/apps/laravel/` (Laravel 8:
//! routing, a controller, Blade, Eloquent on SQLite, a file session,
//! encrypted cookies, CSRF). Each front controller runs classic or worker
//! (`$_SERVER['FRANKENPHP_WORKER']`); its home page shows a boot id (new
//! each time the app boots), how many requests that instance served, the
//! session's visit counter and the notes in the database. Everything an app
//! writes (cache, compiled views, sessions, the SQLite file) goes to the
//! var dir each stack gets (`APP_VAR_DIR`: `env[...]`, and `worker.env[...]`
//! for the worker's boot).
//!
//! One scripted session per stack, two clients with cookie jars: pages,
//! a form post with its redirect and flash message, a second client, an
//! empty note (422), for Laravel a post without the CSRF token (419), a
//! route parameter, a 404. Each answer is written down (status, a few
//! headers, Set-Cookie without values and lifetimes, the body with the
//! boot id, the served count, timestamps and the CSRF token masked, the
//! nginx address taken out of `Location` and the body), and tfpm's
//! transcripts, classic and worker, must equal php-fpm's. On top of that: a session cookie is set,
//! the visit counter counts per client (a new client starts from 1: no
//! session leaks in worker mode), and the boot id changes with every request
//! under php-fpm and classic tfpm but stays the same in worker mode, where
//! the served count grows.

#[allow(dead_code)]
#[path = "apps/browser.rs"]
mod browser;

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::http::Response;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::repo_root;
use fcgi_tests::tempfile::{self, TempDir};

use browser::{form, Browser};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// php-fpm's children; the session is sequential, so nginx needs few.
const FPM_CHILDREN: usize = 4;
/// Threads of a tfpm pool (in worker mode, for the scripts other than the worker's).
const TFPM_THREADS: usize = 2;
/// The ini settings of all three (Debian's production php.ini has these).
const INI: [&str; 4] = [
    "display_errors=0",
    "log_errors=1",
    "error_reporting=E_ALL & ~E_DEPRECATED & ~E_STRICT",
    "include_path=.:/usr/share/php",
];
/// Every path that is not a file goes to the front controller.
const LOCATIONS: &str = "
        location / { try_files $uri /index.php$is_args$args; }";
/// Lines of a log that fail a session.
const LOG_ERRORS: [&str; 7] = [
    "PHP Fatal error",
    "PHP Parse error",
    "PHP Recoverable fatal error",
    "PHP Warning",
    "[critical]",
    "production.ERROR",
    "production.CRITICAL",
];
/// The note the session posts: markup, to see it escaped, and non-ASCII.
const NOTE: &str = "Grüße <from> the thread pool & co";

/// One of the two apps.
struct App {
    name: &'static str,
    /// The Debian package whose files it needs (for the install hint).
    package: &'static str,
    /// A directory of that package.
    installed: &'static str,
    session_cookie: &'static str,
    /// Whether its forms carry a CSRF token (`_token`).
    csrf: bool,
}

const SYMFONY: App = App {
    name: "symfony",
    package: "php-symfony-framework-bundle",
    installed: "/usr/share/php/Symfony/Bundle/FrameworkBundle",
    session_cookie: "SYMFONY_SESSION",
    csrf: false,
};

const LARAVEL: App = App {
    name: "laravel",
    package: "php-laravel-framework",
    installed: "/usr/share/php/Illuminate/Foundation",
    session_cookie: "laravel_session",
    csrf: true,
};

impl App {
    fn root(&self) -> PathBuf {
        repo_root()
            .join("tests/apps")
            .join(self.name)
            .join("public")
    }

    fn front_controller(&self) -> PathBuf {
        self.root().join("index.php")
    }
}

/// How the app is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    PhpFpm,
    Classic,
    Worker,
}

/// The FastCGI server behind nginx.
enum Upstream {
    PhpFpm(PhpFpm),
    Tfpm(Tfpm),
}

impl Upstream {
    fn addr(&self) -> SocketAddr {
        match self {
            Upstream::PhpFpm(fpm) => fpm.addr(),
            Upstream::Tfpm(tfpm) => tfpm.addr(),
        }
    }

    fn log(&self) -> String {
        match self {
            Upstream::PhpFpm(fpm) => fpm.log(),
            Upstream::Tfpm(tfpm) => tfpm.log(),
        }
    }
}

/// nginx, its upstream and the temp dir (config and the app's var dir).
/// Fields drop in order.
struct Site {
    nginx: Nginx,
    upstream: Upstream,
    mode: Mode,
    _dir: TempDir,
}

impl Site {
    fn start(app: &App, mode: Mode) -> Site {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tfpm-{}-{mode:?}-", app.name))
            .tempdir()
            .expect("temp dir");
        let var = dir.path().join("var");
        fs::create_dir(&var).expect("create var dir");
        let var = var.display().to_string();
        let upstream = match mode {
            Mode::PhpFpm => {
                let pool = format!("env[APP_VAR_DIR] = {var}\n");
                Upstream::PhpFpm(PhpFpm::start(FPM_CHILDREN, &pool, &INI))
            }
            Mode::Classic => {
                Upstream::Tfpm(tfpm(dir.path(), &format!("env[APP_VAR_DIR] = {var}\n")))
            }
            Mode::Worker => {
                let pool = format!(
                    "env[APP_VAR_DIR] = {var}\nworker = {}\nworker.num = 1\n\
                     worker.env[APP_VAR_DIR] = {var}\n",
                    app.front_controller().display()
                );
                Upstream::Tfpm(tfpm(dir.path(), &pool))
            }
        };
        let nginx = Nginx::start(&upstream.addr().to_string(), &app.root(), LOCATIONS);
        Site {
            nginx,
            upstream,
            mode,
            _dir: dir,
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(self.nginx.addr())
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.upstream.log(), self.nginx.error_log())
    }

    /// Fails on nginx errors other than PHP's stderr, and on PHP or app errors.
    fn assert_clean(&self) {
        let bad = self.nginx.errors();
        assert!(
            bad.is_empty(),
            "{:?}: nginx logged errors:\n{}",
            self.mode,
            bad.join("\n")
        );
        let logs = self.logs();
        let errors: Vec<&str> = logs
            .lines()
            .filter(|l| LOG_ERRORS.iter().any(|e| l.contains(e)))
            .collect();
        assert!(
            errors.is_empty(),
            "{:?}: errors logged:\n{}",
            self.mode,
            errors.join("\n")
        );
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {:?}: upstream log and nginx error.log ---\n{}",
                self.mode,
                fcgi_tests::tail(&self.logs(), 16_000)
            );
        }
    }
}

/// tfpm on a php-fpm config of its own: one pool with `lines`.
fn tfpm(dir: &Path, lines: &str) -> Tfpm {
    let conf = dir.join("php-fpm.conf");
    let text = format!(
        "[global]\nerror_log = /proc/self/fd/2\n\n[app]\nlisten = 127.0.0.1:0\n\
         pm = static\npm.max_children = {TFPM_THREADS}\n{lines}"
    );
    fs::write(&conf, text).expect("write php-fpm.conf");
    let conf = conf.to_str().expect("UTF-8 path");
    let mut args = vec!["-F", "-R", "-n", "-y", conf];
    INI.iter().for_each(|d| args.extend(["-d", d]));
    Tfpm::start(Path::new(TFPM), &args)
}

/// What one session saw: the transcript compared across modes, and what
/// each view of the home page said about the app instance.
struct Session {
    /// `http://127.0.0.1:PORT` of this site's nginx, taken out of bodies.
    origin: String,
    transcript: String,
    /// (boot id, served count) of each home page, in order.
    instances: Vec<(String, u64)>,
}

impl Session {
    /// Writes down `response` to `label`'s request, masked, and returns its body.
    fn note(&mut self, label: &str, response: &Response) -> String {
        let text = response.text();
        let _ = writeln!(self.transcript, "== {label}: {}", response.status);
        for name in ["Content-Type", "Cache-Control"] {
            if let Some(value) = response.header(name) {
                let _ = writeln!(self.transcript, "{name}: {value}");
            }
        }
        if let Some(location) = response.header("Location") {
            let path = browser::resolve("/", location);
            let _ = writeln!(self.transcript, "Location: {path}");
        }
        let mut cookies: Vec<String> = response
            .headers_named("Set-Cookie")
            .into_iter()
            .map(cookie_shape)
            .collect();
        cookies.sort();
        for cookie in cookies {
            let _ = writeln!(self.transcript, "Set-Cookie: {cookie}");
        }
        let body = text.replace(&self.origin, "http://nginx");
        let _ = writeln!(self.transcript, "{}", mask(&body));
        text
    }

    /// A home page: notes it, checks the visit counter, records the instance.
    fn home(&mut self, label: &str, response: &Response, visits: u64) -> String {
        assert_eq!(response.status, 200, "{label}\n{}", response.summary());
        let text = self.note(label, response);
        assert_eq!(
            field(&text, "visits"),
            visits.to_string(),
            "{label}: visits\n{text}"
        );
        let served = field(&text, "served").parse().expect("served count");
        self.instances.push((field(&text, "boot"), served));
        text
    }
}

/// A `Set-Cookie` value without the cookie's value, expiry date and max age.
fn cookie_shape(set_cookie: &str) -> String {
    let mut parts = set_cookie.split(';').map(str::trim);
    let name = parts
        .next()
        .unwrap_or_default()
        .split('=')
        .next()
        .unwrap_or_default();
    let attributes: Vec<&str> = parts
        .filter(|a| !a.to_ascii_lowercase().starts_with("expires="))
        .map(|a| match a.split_once('=') {
            // Counted from the expiry date: one second less across a tick.
            Some((key, _)) if key.eq_ignore_ascii_case("max-age") => "Max-Age=…",
            _ => a,
        })
        .collect();
    format!("{name}=…; {}", attributes.join("; "))
}

/// The text of `<dd id="{id}">…</dd>`.
fn field(html: &str, id: &str) -> String {
    let open = format!("<dd id=\"{id}\">");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in\n{html}"))
        + open.len();
    let end = start + html[start..].find("</dd>").expect("</dd>");
    html[start..end].to_string()
}

/// `html` with what differs by nature masked: the boot id, the served count,
/// timestamps and CSRF tokens.
fn mask(html: &str) -> String {
    let html = mask_between(html, "<dd id=\"boot\">", "</dd>");
    let html = mask_between(&html, "<dd id=\"served\">", "</dd>");
    let html = mask_between(&html, "<time>", "</time>");
    mask_between(&html, "name=\"_token\" value=\"", "\"")
}

/// Replaces the text between each `open` and the next `close` with `…`.
fn mask_between(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(open) {
        let from = at + open.len();
        let Some(len) = rest[from..].find(close) else {
            break;
        };
        out.push_str(&rest[..from]);
        out.push('…');
        rest = &rest[from + len..];
    }
    out.push_str(rest);
    out
}

/// Submits the note form of the home page `page` with `body`.
fn post_note(b: &mut Browser, page: &str, body: &str) -> Response {
    let note_form = form(page, "method=\"post\"");
    b.submit("/", &note_form, &[("body", body)])
}

/// The scripted session against one site.
fn run_session(app: &App, site: &Site) -> Session {
    let mut s = Session {
        origin: format!("http://{}", site.nginx.addr()),
        transcript: String::new(),
        instances: Vec::new(),
    };
    let mut alice = site.browser();
    let first = alice.get("/");
    s.home("alice's first visit", &first, 1);
    let cookie = alice.cookie(app.session_cookie).map(str::to_string);
    assert!(
        cookie.is_some(),
        "{:?}: no {} cookie: {:?}\n{}",
        site.mode,
        app.session_cookie,
        alice.cookie_names(),
        first.summary()
    );
    let page = s.home("alice again", &alice.get("/"), 2);

    let saved = post_note(&mut alice, &page, NOTE);
    s.note("alice posts a note", &saved);
    assert_eq!(
        saved.status,
        302,
        "{:?}: the post redirects\n{}",
        site.mode,
        saved.summary()
    );
    let (at, listed) = alice.follow("/notes", &saved);
    assert_eq!(at, "/", "{:?}: redirected to the list", site.mode);
    let listed = s.home("alice follows the redirect", &listed, 3);
    assert!(
        listed.contains("Saved note #1."),
        "{:?}: no flash message\n{listed}",
        site.mode
    );
    let escaped = "Grüße &lt;from&gt; the thread pool &amp; co";
    assert!(
        listed.contains(escaped),
        "{:?}: the note, escaped\n{listed}",
        site.mode
    );

    let mut bob = site.browser();
    let theirs = s.home("bob's first visit (no cookie)", &bob.get("/"), 1);
    assert!(
        theirs.contains(escaped),
        "{:?}: bob sees the note\n{theirs}",
        site.mode
    );
    assert!(
        !theirs.contains("Saved note"),
        "{:?}: alice's flash reached bob\n{theirs}",
        site.mode
    );
    let bobs_cookie = bob.cookie(app.session_cookie).map(str::to_string);
    assert!(
        bobs_cookie.is_some() && bobs_cookie != cookie,
        "{:?}: bob's own session",
        site.mode
    );
    s.home("bob again", &bob.get("/"), 2);

    let back = s.home("alice comes back", &alice.get("/"), 4);
    assert!(
        !back.contains("Saved note"),
        "{:?}: the flash is shown once\n{back}",
        site.mode
    );

    let empty = post_note(&mut bob, &theirs, "  ");
    s.note("bob posts an empty note", &empty);
    assert_eq!(empty.status, 422, "{:?}\n{}", site.mode, empty.summary());
    if app.csrf {
        let forged = bob.post_form("/notes", &[("body", "no token")]);
        s.note("bob posts without the CSRF token", &forged);
        assert_eq!(forged.status, 419, "{:?}\n{}", site.mode, forged.summary());
    }

    let hello = alice.get("/hello/%3Cb%3E%20%26%20%C3%BC");
    s.note("a route parameter", &hello);
    assert_eq!(hello.status, 200, "{:?}\n{}", site.mode, hello.summary());
    assert!(
        hello.text().contains("<h1>Hello, &lt;b&gt; &amp; ü!</h1>"),
        "{}",
        hello.text()
    );
    let missing = alice.get("/no/such/page");
    s.note("a page that does not exist", &missing);
    assert_eq!(
        missing.status,
        404,
        "{:?}\n{}",
        site.mode,
        missing.summary()
    );
    s.home("alice's last visit", &alice.get("/"), 5);
    s
}

/// Boot ids and served counts: a new instance for every request, or one that serves them all.
fn assert_instances(mode: Mode, instances: &[(String, u64)]) {
    let mut ids: Vec<&str> = instances.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let counts: Vec<u64> = instances.iter().map(|(_, served)| *served).collect();
    if mode == Mode::Worker {
        assert_eq!(
            ids.len(),
            1,
            "worker mode boots the app once: {instances:?}"
        );
        assert!(
            counts.windows(2).all(|w| w[0] < w[1]),
            "one instance serves on: {instances:?}"
        );
    } else {
        assert_eq!(
            ids.len(),
            instances.len(),
            "{mode:?} boots for every request: {instances:?}"
        );
        assert!(counts.iter().all(|&c| c == 1), "{mode:?}: {instances:?}");
    }
}

/// Serves `app` three ways and compares tfpm's transcripts with php-fpm's.
fn three_ways(app: &App) {
    assert!(
        Path::new(app.installed).is_dir(),
        "{} missing: install the Debian package {} (scripts/install-deps.sh)",
        app.installed,
        app.package
    );
    let mut oracle = None;
    for mode in [Mode::PhpFpm, Mode::Classic, Mode::Worker] {
        let started = Instant::now();
        let site = Site::start(app, mode);
        let session = run_session(app, &site);
        assert_instances(mode, &session.instances);
        site.assert_clean();
        eprintln!("{} {mode:?}: {:?}", app.name, started.elapsed());
        match &oracle {
            None => oracle = Some(session.transcript),
            Some(expected) => assert_same(app, mode, expected, &session.transcript, &site),
        }
    }
}

/// Fails with the first differing line of the two transcripts.
fn assert_same(app: &App, mode: Mode, expected: &str, actual: &str, site: &Site) {
    if expected == actual {
        return;
    }
    let (ours, theirs): (Vec<&str>, Vec<&str>) =
        (actual.lines().collect(), expected.lines().collect());
    let at = ours
        .iter()
        .zip(&theirs)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    panic!(
        "{} {mode:?} differs from php-fpm at line {}:\n  php-fpm: {:?}\n  tfpm:    {:?}\n\
         --- php-fpm ---\n{expected}\n--- tfpm ---\n{actual}\n{}",
        app.name,
        at + 1,
        theirs.get(at),
        ours.get(at),
        fcgi_tests::tail(&site.logs(), 8_000)
    );
}

#[test]
fn symfony_under_php_fpm_classic_tfpm_and_worker_mode() {
    three_ways(&SYMFONY);
}

#[test]
fn laravel_under_php_fpm_classic_tfpm_and_worker_mode() {
    three_ways(&LARAVEL);
}
