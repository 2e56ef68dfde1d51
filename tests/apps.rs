//! Real PHP applications from Debian packages behind nginx + tfpm (issue 5):
//! DokuWiki (`dokuwiki`, flat files) and phpLiteAdmin (`phpliteadmin`,
//! SQLite), each in a short scripted session with a cookie jar
//! (`tests/apps/browser.rs`): pages render, a login sets a cookie, forms post
//! (URL-encoded and multipart) and what they stored shows up on the next
//! page. `scripts/install-deps.sh` installs both packages; the test panics
//! with that hint when one is missing.
//!
//! The installed system is read, never written. Each application gets a temp
//! directory with its own config and data, and its own tfpm (`-n`, the ini
//! settings of [`php_settings`], PHP sessions in the temp dir) and nginx (the
//! repository's `nginx-conf/tfpm-php.conf` plus the application's locations):
//!
//! - DokuWiki is served from `/usr/share/dokuwiki` as installed. Debian's
//!   `inc/preload.php` honours `DOKU_MAIN_CONF` and `DOKU_CONF` when they are
//!   already defined, so an `auto_prepend_file` (an ini setting of tfpm)
//!   defines both as the temp dir's `conf/`: a copy of `/etc/dokuwiki` with our
//!   `local.php` (title, `savedir`), `acl.auth.php` (everyone reads, users
//!   edit and upload) and `users.auth.php` (one user, MD5 password hash).
//!   `savedir` is a copy of `/var/lib/dokuwiki/data`, the pages Debian ships.
//!   That directory is `www-data`'s and private: the test runs as root, as
//!   the other end-to-end tests do.
//! - phpLiteAdmin reads `./phpliteadmin.config.php` from the working directory,
//!   which PHP sets to the script's directory, so `phpliteadmin.php` and its
//!   `languages/` are copied next to our config (password, database directory
//!   in the temp dir).
//!
//! At the end each session asserts that nginx logged no upstream errors and
//! that PHP logged no fatal errors or warnings. `TFPM_APPS_UPSTREAM=php-fpm`
//! runs the same sessions against php-fpm from our PHP build instead, to tell
//! a tfpm bug from an application quirk.

#[path = "apps/browser.rs"]
mod browser;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fpm::PhpFpm;
use fcgi_tests::http::Response;
use fcgi_tests::md5_hex;
use fcgi_tests::nginx::Nginx;
use fcgi_tests::poll_until;
use fcgi_tests::tempfile::{self, TempDir};

use browser::{form, Browser, Upload};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
/// Set to `php-fpm` to run the sessions against php-fpm instead of tfpm.
const UPSTREAM_VAR: &str = "TFPM_APPS_UPSTREAM";
/// php-fpm's children: nginx keeps up to 16 idle connections, each holding one.
const FPM_CHILDREN: usize = 20;
const TFPM_THREADS: &str = "4";

const DOKUWIKI: &str = "/usr/share/dokuwiki";
const DOKUWIKI_ETC: &str = "/etc/dokuwiki";
const DOKUWIKI_DATA: &str = "/var/lib/dokuwiki/data";
/// DokuWiki's internal directories are not for the web (as in its nginx
/// how-to). `^~` so that the PHP regex location does not win for `*.php`.
const DOKUWIKI_NGINX: &str = "
        location ^~ /bin/ { deny all; }
        location ^~ /inc/ { deny all; }
        location ^~ /vendor/ { deny all; }";
const WIKI_USER: &str = "tester";
const WIKI_PASSWORD: &str = "tfpm-wiki-secret";
const WIKI_PAGE: &str = "tfpm:hello";
/// The page text saved through the edit form; `tfpmzebra` is the search word.
const WIKI_TEXT: &str = "===== Hello from tfpm =====\n\
                         Some **bold** text, Grüße aus dem Thread-Pool.\n\n\
                         The search finds tfpmzebra.";

const PHPLITEADMIN: &str = "/usr/share/phpliteadmin";
const PLA_PASSWORD: &str = "tfpm-pla-secret";
/// phpLiteAdmin's cookie names: `$cookie_name` of its defaults plus its version.
const PLA_COOKIE: &str = "pla3412_1_9_8_2";
const PLA_QUERY: &str = "CREATE TABLE fruit(name TEXT, qty INTEGER);\n\
                         INSERT INTO fruit VALUES ('apple', 3), ('pear', 5);\n\
                         SELECT name, qty * 2 AS doubled FROM fruit ORDER BY name;";

/// Lines of a PHP log that fail a session.
const PHP_ERRORS: [&str; 4] = [
    "PHP Fatal error",
    "PHP Parse error",
    "PHP Recoverable fatal error",
    "PHP Warning",
];

/// The FastCGI server behind nginx.
enum Upstream {
    Tfpm(Tfpm),
    PhpFpm(PhpFpm),
}

impl Upstream {
    /// tfpm, or php-fpm when [`UPSTREAM_VAR`] says so, with `-n` and `settings` as `-d`.
    fn start(settings: &[String]) -> Upstream {
        let defines: Vec<&str> = settings.iter().map(String::as_str).collect();
        if std::env::var(UPSTREAM_VAR).is_ok_and(|v| v == "php-fpm") {
            return Upstream::PhpFpm(PhpFpm::start(FPM_CHILDREN, "", &defines));
        }
        let mut args = vec!["-n", "--listen", "127.0.0.1:0", "--threads", TFPM_THREADS];
        defines.iter().for_each(|d| args.extend(["-d", d]));
        Upstream::Tfpm(Tfpm::start(Path::new(TFPM), &args))
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Upstream::Tfpm(tfpm) => tfpm.addr(),
            Upstream::PhpFpm(fpm) => fpm.addr(),
        }
    }

    fn log(&self) -> String {
        match self {
            Upstream::Tfpm(tfpm) => tfpm.log(),
            Upstream::PhpFpm(fpm) => fpm.log(),
        }
    }
}

/// One application: nginx, its upstream and the temp dir. Fields drop in order.
struct Site {
    nginx: Nginx,
    upstream: Upstream,
    dir: TempDir,
    started: Instant,
}

impl Site {
    /// Starts the upstream with `settings` and nginx serving `root` with `locations`.
    fn start(root: &Path, dir: TempDir, settings: &[String], locations: &str) -> Site {
        let upstream = Upstream::start(settings);
        let nginx = Nginx::start(&upstream.addr().to_string(), root, locations);
        Site {
            nginx,
            upstream,
            dir,
            started: Instant::now(),
        }
    }

    fn browser(&self) -> Browser {
        Browser::new(self.nginx.addr())
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Fails on nginx errors other than PHP's stderr and the `deny` rules the
    /// session tries on purpose, and on PHP errors in either log.
    fn assert_clean(&self) {
        let nginx_log = self.nginx.error_log();
        let mut bad = self.nginx.errors();
        bad.retain(|l| !l.contains("access forbidden by rule"));
        assert!(bad.is_empty(), "nginx logged errors:\n{}", bad.join("\n"));
        let logs = format!("{}\n{nginx_log}", self.upstream.log());
        let php: Vec<&str> = logs
            .lines()
            .filter(|l| PHP_ERRORS.iter().any(|e| l.contains(e)))
            .collect();
        assert!(php.is_empty(), "PHP logged errors:\n{}", php.join("\n"));
    }
}

impl Drop for Site {
    /// On a failed assertion, shows what the upstream and nginx logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- upstream log ---\n{}\n--- nginx error.log ---\n{}",
                fcgi_tests::tail(&self.upstream.log(), 16_000),
                fcgi_tests::tail(&self.nginx.error_log(), 16_000)
            );
        } else {
            eprintln!("session took {:?}", self.started.elapsed());
        }
    }
}

/// The ini settings of both applications, as Debian's production php.ini has them.
fn php_settings(dir: &Path) -> Vec<String> {
    let sessions = dir.join("sessions");
    fs::create_dir(&sessions).expect("create sessions dir");
    vec![
        "display_errors=0".into(),
        "log_errors=1".into(),
        "error_reporting=E_ALL & ~E_DEPRECATED & ~E_STRICT".into(),
        format!("session.save_path={}", sessions.display()),
    ]
}

/// Panics with the install hint unless `dir` (from Debian package `package`) exists.
fn require_package(dir: &str, package: &str) {
    assert!(
        Path::new(dir).is_dir(),
        "{dir} missing: install the Debian package {package} (scripts/install-deps.sh)"
    );
}

fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

/// Copies the tree at `from` to `to`, following symbolic links.
fn copy_tree(from: &Path, to: &Path) {
    let meta = fs::metadata(from).unwrap_or_else(|e| panic!("stat {}: {e}", from.display()));
    if !meta.is_dir() {
        fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        return;
    }
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let name = entry.expect("directory entry").file_name();
        copy_tree(&from.join(&name), &to.join(&name));
    }
}

fn write(path: &Path, content: &str) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Asserts a 200 whose body contains each of `needles`; returns the body.
fn assert_page(what: &str, response: &Response, needles: &[&str]) -> String {
    assert_eq!(response.status, 200, "{what}\n{}", response.summary());
    let text = response.text();
    for needle in needles {
        assert!(text.contains(needle), "{what}: no {needle:?} in\n{text}");
    }
    text
}

/// Asserts a redirect (302) and returns it.
fn assert_redirect(what: &str, response: Response) -> Response {
    assert_eq!(response.status, 302, "{what}\n{}", response.summary());
    response
}

// ---------------------------------------------------------------- DokuWiki

/// Writes DokuWiki's config and data into `dir`; returns the ini settings that point it there.
fn dokuwiki_state(dir: &Path) -> Vec<String> {
    let (conf, data) = (dir.join("conf"), dir.join("data"));
    copy_tree(Path::new(DOKUWIKI_ETC), &conf);
    copy_tree(Path::new(DOKUWIKI_DATA), &data);
    // An admin's protected settings would win over ours, `savedir` included.
    let _ = fs::remove_file(conf.join("local.protected.php"));
    write(
        &conf.join("local.php"),
        &format!(
            "<?php\n$conf['title'] = 'tfpm test wiki';\n$conf['lang'] = 'en';\n\
             $conf['savedir'] = '{}';\n$conf['useacl'] = 1;\n$conf['authtype'] = 'authplain';\n\
             $conf['superuser'] = '@admin';\n$conf['dnslookups'] = 0;\n",
            data.display()
        ),
    );
    write(&conf.join("acl.auth.php"), "*\t@ALL\t1\n*\t@user\t8\n");
    let user = format!(
        "{WIKI_USER}:{}:Test User:tester@example.org:user\n",
        md5_hex(WIKI_PASSWORD.as_bytes())
    );
    write(&conf.join("users.auth.php"), &user);
    let prepend = dir.join("prepend.php");
    let conf_dir = format!("{}/", conf.display());
    write(
        &prepend,
        &format!(
            "<?php\ndefine('DOKU_MAIN_CONF', '{conf_dir}');\ndefine('DOKU_CONF', '{conf_dir}');\n"
        ),
    );
    let mut settings = php_settings(dir);
    settings.push(format!("auto_prepend_file={}", prepend.display()));
    settings
}

#[test]
fn dokuwiki_session() {
    require_package(DOKUWIKI, "dokuwiki");
    let dir = temp_dir("tfpm-dokuwiki-");
    let settings = dokuwiki_state(dir.path());
    let site = Site::start(Path::new(DOKUWIKI), dir, &settings, DOKUWIKI_NGINX);
    let mut b = site.browser();
    dokuwiki_pages_render(&mut b);
    dokuwiki_login(&mut b);
    dokuwiki_edit_page(&mut b, &site);
    dokuwiki_upload_media(&mut b, &site);
    dokuwiki_indexer_and_search(&mut b);
    site.assert_clean();
}

/// `/` redirects to the start page, which sets the session cookie; a shipped
/// page renders through the parser; the style sheet compiles; internals are denied.
fn dokuwiki_pages_render(b: &mut Browser) {
    let (at, start) = b.follow_all("/");
    assert_eq!(at, "/doku.php?id=start", "index.php's redirect");
    assert_page(
        "start page",
        &start,
        &[
            "<title>start [tfpm test wiki]</title>",
            "This topic does not exist yet",
        ],
    );
    assert!(
        b.cookie("DokuWiki").is_some(),
        "no session cookie: {:?}",
        b.cookie_names()
    );
    let syntax = b.get("/doku.php?id=wiki:syntax");
    assert_page(
        "wiki:syntax",
        &syntax,
        &[
            "id=\"formatting_syntax\">Formatting Syntax</h1>",
            "<strong>bold</strong>",
        ],
    );
    let css = b.get("/lib/exe/css.php?t=dokuwiki");
    assert_page("css.php", &css, &["#dokuwiki__header"]);
    assert_eq!(
        css.header("Content-Type"),
        Some("text/css; charset=utf-8"),
        "{}",
        css.summary()
    );
    for internal in ["/inc/init.php", "/bin/dwpage.php", "/vendor/autoload.php"] {
        assert_eq!(b.get(internal).status, 403, "{internal} is served");
    }
}

/// A wrong password is refused with 403; the right one redirects with the auth cookie.
fn dokuwiki_login(b: &mut Browser) {
    let page = "/doku.php?id=start&do=login";
    let text = assert_page("login page", &b.get(page), &["id=\"dw__login\""]);
    let login = form(&text, "id=\"dw__login\"");
    let wrong = b.submit(page, &login, &[("u", WIKI_USER), ("p", "wrong")]);
    assert_eq!(wrong.status, 403, "wrong password\n{}", wrong.summary());
    assert!(
        wrong.text().contains("username or password was wrong"),
        "{}",
        wrong.text()
    );
    assert!(auth_cookie(b).is_none(), "auth cookie after a failed login");
    let right = b.submit(page, &login, &[("u", WIKI_USER), ("p", WIKI_PASSWORD)]);
    let right = assert_redirect("login", right);
    assert!(
        auth_cookie(b).is_some(),
        "no auth cookie: {:?}",
        b.cookie_names()
    );
    let (_, home) = b.follow(page, &right);
    assert_page("after login", &home, &["Logged in as", "Test User"]);
}

/// DokuWiki's auth cookie: `DW` and an MD5 of the base path.
fn auth_cookie(b: &Browser) -> Option<&str> {
    let name = b.cookie_names().into_iter().find(|n| n.starts_with("DW"))?;
    b.cookie(name)
}

/// Saves a new page through the edit form (with its CSRF `sectok`) and reads it back.
fn dokuwiki_edit_page(b: &mut Browser, site: &Site) {
    let edit = format!("/doku.php?id={WIKI_PAGE}&do=edit");
    let text = assert_page("edit form", &b.get(&edit), &["id=\"dw__editform\""]);
    let editor = form(&text, "id=\"dw__editform\"");
    let sectok = editor.hidden.iter().find(|(n, _)| n == "sectok");
    assert!(
        sectok.is_some_and(|(_, v)| !v.is_empty()),
        "no sectok: {editor:?}"
    );
    let fields = [
        ("wikitext", WIKI_TEXT),
        ("summary", "written through tfpm"),
        ("do[save]", "1"),
    ];
    let saved = assert_redirect("save", b.submit(&edit, &editor, &fields));
    let (_, page) = b.follow(&edit, &saved);
    let expected = [
        "id=\"hello_from_tfpm\">Hello from tfpm</h2>",
        "<strong>bold</strong>",
        "Grüße aus dem Thread-Pool",
    ];
    assert_page("saved page", &page, &expected);
    let stored = fs::read_to_string(site.path("data/pages/tfpm/hello.txt")).expect("page file");
    assert_eq!(stored.trim_end(), WIKI_TEXT);
    let changes = fs::read_to_string(site.path("data/meta/tfpm/hello.changes")).expect("changes");
    assert!(changes.contains("written through tfpm"), "{changes}");
}

/// Uploads an image through the media manager's multipart form; it is stored
/// and served back by `fetch.php`, byte for byte.
fn dokuwiki_upload_media(b: &mut Browser, site: &Site) {
    let page = "/doku.php?id=start&do=media&ns=wiki&tab_files=upload";
    let text = assert_page("media manager", &b.get(page), &["id=\"dw__upload\""]);
    let uploader = form(&text, "id=\"dw__upload\"");
    let png = fs::read(Path::new(DOKUWIKI).join("lib/tpl/dokuwiki/images/logo.png")).expect("logo");
    let file = Upload {
        field: "upload",
        filename: "logo.png",
        content_type: "image/png",
        data: &png,
    };
    let uploaded = b.upload(page, &uploader, &[("mediaid", "tfpm-logo.png")], &file);
    assert_page("upload", &uploaded, &["Upload successful"]);
    let stored = fs::read(site.path("data/media/wiki/tfpm-logo.png")).expect("stored media");
    assert!(stored == png, "stored media differs from the upload");
    let fetched = b.get("/lib/exe/fetch.php?media=wiki:tfpm-logo.png");
    assert_eq!(fetched.status, 200, "{}", fetched.summary());
    assert_eq!(
        fetched.header("Content-Type"),
        Some("image/png"),
        "{}",
        fetched.summary()
    );
    assert!(fetched.body == png, "fetch.php served other bytes");
}

/// The task runner answers with a 1×1 GIF and indexes the page after the
/// answer; then the search finds the page by a word only it contains.
fn dokuwiki_indexer_and_search(b: &mut Browser) {
    let search = "/doku.php?id=start&do=search&q=tfpmzebra";
    let found = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let gif = b.get(&format!("/lib/exe/taskrunner.php?id={WIKI_PAGE}"));
        assert_eq!(gif.status, 200, "{}", gif.summary());
        assert_eq!(
            gif.header("Content-Type"),
            Some("image/gif"),
            "{}",
            gif.summary()
        );
        assert!(gif.body.starts_with(b"GIF89a"), "{}", gif.summary());
        let results = b.get(search);
        assert_eq!(results.status, 200, "{}", results.summary());
        results
            .text()
            .contains(&format!("title=\"{WIKI_PAGE}\""))
            .then_some(())
    });
    assert!(found.is_some(), "search never found {WIKI_PAGE}");
}

// ------------------------------------------------------------ phpLiteAdmin

/// Copies phpLiteAdmin into `dir/www` with a config of ours; returns the web root.
fn phpliteadmin_state(dir: &Path) -> PathBuf {
    let (www, db) = (dir.join("www"), dir.join("db"));
    fs::create_dir_all(&db).expect("create db dir");
    let installed = Path::new(PHPLITEADMIN);
    copy_tree(&installed.join("languages"), &www.join("languages"));
    copy_tree(
        &installed.join("phpliteadmin.php"),
        &www.join("phpliteadmin.php"),
    );
    let config = format!(
        "<?php\n$password = '{PLA_PASSWORD}';\n$directory = '{}';\n$language = 'en';\n",
        db.display()
    );
    write(&www.join("phpliteadmin.config.php"), &config);
    www
}

#[test]
fn phpliteadmin_session() {
    require_package(PHPLITEADMIN, "phpliteadmin");
    let dir = temp_dir("tfpm-phpliteadmin-");
    let root = phpliteadmin_state(dir.path());
    let settings = php_settings(dir.path());
    let site = Site::start(&root, dir, &settings, "");
    let mut b = site.browser();
    let page = phpliteadmin_login(&mut b);
    phpliteadmin_create_database(&mut b, &site, &page);
    phpliteadmin_query(&mut b);
    phpliteadmin_remembered(&site, &b);
    phpliteadmin_resource(&mut b);
    site.assert_clean();
}

/// The login box renders and sets the session cookie; a wrong password comes
/// back with a warning; the right one sets the remember-me cookies. Returns
/// the page it lands on.
fn phpliteadmin_login(b: &mut Browser) -> (String, String) {
    let page = "/phpliteadmin.php";
    let text = assert_page(
        "login page",
        &b.get(page),
        &["<title>phpLiteAdmin</title>", "id='loginBox'"],
    );
    assert!(
        b.cookie("PHPSESSID").is_some(),
        "no session cookie: {:?}",
        b.cookie_names()
    );
    let login = form(&text, "method='post'");
    let wrong = assert_redirect(
        "wrong password",
        b.submit(page, &login, &[("password", "nope")]),
    );
    let (_, again) = b.follow(page, &wrong);
    assert_page(
        "after a wrong password",
        &again,
        &["Incorrect password", "id='loginBox'"],
    );
    let fields = [("password", PLA_PASSWORD), ("remember", "yes")];
    let right = assert_redirect("login", b.submit(page, &login, &fields));
    for name in [PLA_COOKIE.to_string(), format!("{PLA_COOKIE}_salt")] {
        assert!(
            b.cookie(&name).is_some(),
            "no {name}: {:?}",
            b.cookie_names()
        );
    }
    let (at, home) = b.follow(page, &right);
    let text = assert_page("after login", &home, &["Create New Database"]);
    assert!(!text.contains("id='loginBox'"), "still the login box");
    (at, text)
}

/// Creates a database through the "Create New Database" form.
fn phpliteadmin_create_database(b: &mut Browser, site: &Site, (at, text): &(String, String)) {
    let create = form(text, "name='create_database'");
    let created = b.submit(at, &create, &[("new_dbname", "fruit.sqlite")]);
    assert_page("new database", &created, &["fruit.sqlite"]);
    let file = fs::read(site.path("db/fruit.sqlite")).expect("database file");
    assert!(file.starts_with(b"SQLite format 3\0"), "not an SQLite file");
}

/// Runs a script on the SQL tab; the SELECT's rows come back as a table.
fn phpliteadmin_query(b: &mut Browser) {
    let page = "/phpliteadmin.php?view=sql";
    let text = assert_page("SQL tab", &b.get(page), &["name='queryval'"]);
    let sql = form(&text, "view=sql");
    let fields = [("queryval", PLA_QUERY), ("delimiter", ";"), ("query", "Go")];
    let result = b.submit(page, &sql, &fields);
    let expected = [
        "<td class='td2'>apple</td><td class='td2'>6</td>",
        "<td class='td1'>pear</td><td class='td1'>10</td>",
        "Showing 2 row(s)",
    ];
    assert_page("query result", &result, &expected);
}

/// A new browser holding only the remember-me cookies of `first` is let in (a new session).
fn phpliteadmin_remembered(site: &Site, first: &Browser) {
    let mut b = site.browser();
    for name in [PLA_COOKIE.to_string(), format!("{PLA_COOKIE}_salt")] {
        b.set_cookie(&name, first.cookie(&name).expect("remember-me cookie"));
    }
    let text = assert_page("remembered", &b.get("/phpliteadmin.php"), &["fruit.sqlite"]);
    assert!(
        !text.contains("id='loginBox'"),
        "remember-me cookies not honoured"
    );
    assert!(
        b.cookie("PHPSESSID").is_some(),
        "no new session: {:?}",
        b.cookie_names()
    );
}

/// The style sheet is served with an ETag, and a request with it gets 304.
fn phpliteadmin_resource(b: &mut Browser) {
    let page = "/phpliteadmin.php?resource=css";
    let css = b.get(page);
    assert_eq!(css.status, 200, "{}", css.summary());
    let content_type = css.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/css"), "{}", css.summary());
    let etag = css.header("ETag").expect("ETag").to_string();
    let cached = b.get_with(page, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304, "{}", cached.summary());
    assert!(cached.body.is_empty(), "{}", cached.summary());
}
