//! PECL extensions built against tfpm's PHP with `scripts/php-ext.sh`, from
//! Debian's source packages, and used from several threads at once.
//!
//! The extensions are the ones whose source the mirror has for the linked
//! PHP: msgpack, igbinary, apcu, redis (against a redis-server the test
//! starts, from Debian's package) and imagick (with ImageMagick's threads
//! limited to one, `MAGICK_THREAD_LIMIT=1`) on both versions, and on 8.2
//! xdebug too (in its develop and coverage modes, and those only:
//! bookworm's 3.2.0, which php-ext.sh patches, ran every mode on threads
//! started after module start-up, and its profiler closed a descriptor
//! twice, now and then another thread's redis socket; it predates 8.4). On
//! 8.4 they are bookworm's sources too (trixie's are listed in the index
//! but missing from the pool), which php-ext.sh ports to 8.4's API.
//! Their ini files go into a scratch directory that tfpm and the build's
//! CLI read through `PHP_INI_SCAN_DIR`, so no other test sees them.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::php::php_cli;
use fcgi_tests::{docroot, php_prefix, php_version, poll_until, repo_root, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const CLIENTS: usize = 8;
const REQUESTS: usize = 25;

fn extensions() -> &'static [&'static str] {
    match php_version() {
        (8, 2) => &["msgpack", "igbinary", "apcu", "redis", "imagick", "xdebug"],
        _ => &["msgpack", "igbinary", "apcu", "redis", "imagick"],
    }
}

/// redis-server from Debian's package, on a Unix socket in `dir`; killed on drop.
struct RedisServer {
    child: Child,
    socket: PathBuf,
}

impl RedisServer {
    fn start(dir: &Path) -> RedisServer {
        let socket = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-deps.sh installs it)");
        let ready = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
            UnixStream::connect(&socket).ok()
        });
        assert!(
            ready.is_some(),
            "redis-server did not listen on {}",
            socket.display()
        );
        RedisServer { child, socket }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs scripts/php-ext.sh for `names`, writing their ini files into `ini_dir`.
fn build(names: &[&str], ini_dir: &Path) {
    let php_config = php_prefix().expect("a PHP build").join("bin/php-config");
    let out = Command::new(repo_root().join("scripts/php-ext.sh"))
        .arg("--ini-dir")
        .arg(ini_dir)
        .args(names)
        .env("PHP_CONFIG", &php_config)
        .output()
        .expect("run scripts/php-ext.sh");
    assert!(
        out.status.success(),
        "scripts/php-ext.sh {names:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn expected(names: &[&str]) -> String {
    names.iter().map(|n| format!("{n} ok\n")).collect()
}

#[test]
fn pecl_extensions_load_and_work_from_every_thread_at_once() {
    let ini = tempfile::tempdir().expect("ini dir");
    let names = extensions();
    build(names, ini.path());
    let scan = ini.path().to_str().expect("utf-8 path");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "4",
        "-d",
        "apc.enabled=1",
        "-d",
        "xdebug.mode=develop,coverage",
    ];
    let env = [("PHP_INI_SCAN_DIR", scan), ("MAGICK_THREAD_LIMIT", "1")];
    let tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &env);
    let redis = names
        .contains(&"redis")
        .then(|| RedisServer::start(ini.path()));
    let socket = redis.as_ref().map(|r| r.socket.display().to_string());
    let socket = socket.unwrap_or_default();
    let want = expected(names);
    thread::scope(|s| {
        for client in 0..CLIENTS {
            let (tfpm, want, socket) = (&tfpm, &want, &socket);
            s.spawn(move || {
                let mut conn = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
                for i in 0..REQUESTS {
                    let n = (client * REQUESTS + i).to_string();
                    let request = CgiRequest::get(&docroot(), "/ext/roundtrip.php")
                        .query(&format!("n={n}&redis={socket}"));
                    let answer = conn.send(&request, true).expect("request");
                    assert_eq!(&answer.cgi().text(), want, "{}", answer.stderr_text());
                }
            });
        }
    });
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
    // The build's CLI, with the same scan dir, sees the same extensions.
    let cli = Command::new(php_cli().expect("the build's php"))
        .arg("-m")
        .env("PHP_INI_SCAN_DIR", scan)
        .output()
        .expect("php -m");
    let modules = String::from_utf8_lossy(&cli.stdout);
    for name in names {
        assert!(
            modules.lines().any(|m| m == *name),
            "php -m lacks {name}:\n{modules}"
        );
    }
}

/// An extension that cannot load, with php.ini-production's logging
/// (errors logged, start-up errors not displayed): tfpm starts, serves,
/// and its log names the extension and what to do. The log call once came
/// before tfpm's own module existed, and every worker crashed at start-up.
#[test]
fn an_extension_that_cannot_load_is_named_in_the_log_and_costs_nothing_else() {
    let ini = tempfile::tempdir().expect("ini dir");
    let broken = ini.path().join("20-broken.ini");
    std::fs::write(&broken, "extension=/nonexistent/broken.so\n").expect("ini");
    let scan = ini.path().to_str().expect("utf-8 path");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
        "-d",
        "log_errors=1",
        "-d",
        "display_startup_errors=0",
    ];
    let tfpm = Tfpm::start_with_env(Path::new(TFPM), &args, &[("PHP_INI_SCAN_DIR", scan)]);
    let mut conn = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let answer = conn
        .send(&CgiRequest::get(&docroot(), "/hello.php"), false)
        .expect("request");
    assert_eq!(answer.cgi().status, 200, "{}", tfpm.log());
    let log = tfpm.log();
    assert!(
        log.contains("Unable to load dynamic library '/nonexistent/broken.so'")
            && log.contains("rebuild it with scripts/php-ext.sh"),
        "{log}"
    );
    assert!(!log.contains("worker exited"), "{log}");
}
