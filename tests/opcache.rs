//! opcache under threads: it caches (opcache_get_status() shows hits), and
//! opcache_reset() and opcache_invalidate() are safe while every thread is
//! running scripts that the reset throws away and a library file that is
//! being rewritten: a known crash class of ZTS builds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::Tfpm;
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::{docroot, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const SCRIPTS: [&str; 3] = ["status.php", "work.php", "reset.php"];
/// Requests per worker client in the stress test.
const ROUNDS: u64 = 400;
const CLIENTS: u64 = 4;

/// A docroot of our own: the test rewrites lib.php in it.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for script in SCRIPTS {
        let from = docroot().join("opcache").join(script);
        std::fs::copy(&from, dir.path().join(script)).expect("copy script");
    }
    write_lib(dir.path(), 1);
    dir
}

/// Replaces lib.php atomically (a reader sees the old file or the new one).
fn write_lib(dir: &Path, version: u64) {
    let text = format!(
        "<?php\n\
         class OpcacheStressShape {{\n\
             public function __construct(private int $n) {{}}\n\
             public function area(): int {{ return $this->n * $this->n; }}\n\
         }}\n\
         function opcache_stress_version(): int {{ return {version}; }}\n"
    );
    let tmp = dir.join(format!("lib.php.{version}"));
    std::fs::write(&tmp, text).expect("write lib");
    std::fs::rename(&tmp, dir.join("lib.php")).expect("rename lib");
}

const INI: [&str; 7] = [
    "zend_extension=opcache",
    "opcache.enable=1",
    "opcache.validate_timestamps=1",
    "opcache.revalidate_freq=0",
    // The test writes its scripts just before it runs them.
    "opcache.file_update_protection=0",
    "display_errors=1",
    "html_errors=0",
];

fn start() -> Server {
    if std::env::var("TFPM_OPCACHE_UPSTREAM").as_deref() == Ok("php-fpm") {
        return Server::PhpFpm(fcgi_tests::fpm::PhpFpm::start(4, "", &INI));
    }
    let mut args = vec!["--listen", "127.0.0.1:0", "--threads", "4", "-n"];
    INI.iter().for_each(|ini| args.extend(["-d", ini]));
    Server::Tfpm(Tfpm::start(Path::new(TFPM), &args))
}

/// The server under test: tfpm, or php-fpm with `TFPM_OPCACHE_UPSTREAM=php-fpm`
/// to compare.
enum Server {
    Tfpm(Tfpm),
    PhpFpm(fcgi_tests::fpm::PhpFpm),
}

impl Server {
    fn addr(&self) -> std::net::SocketAddr {
        match self {
            Server::Tfpm(t) => t.addr(),
            Server::PhpFpm(f) => f.addr(),
        }
    }

    fn log(&self) -> String {
        match self {
            Server::Tfpm(t) => t.log(),
            Server::PhpFpm(f) => f.log(),
        }
    }
}

fn get(server: &Server, root: &Path, script: &str, query: &str) -> String {
    let mut client = FcgiClient::connect_tcp(server.addr()).expect("connect");
    let request = CgiRequest::get(root, script).query(query);
    let response = client
        .send(&request, false)
        .unwrap_or_else(|e| panic!("{script}?{query}: {e}\n{}", server.log()));
    response.cgi().text()
}

#[test]
fn opcache_caches_scripts_under_threads() {
    let tfpm = start();
    let site = site();
    for n in 0..20 {
        let line = get(&tfpm, site.path(), "/work.php", &format!("n={n}"));
        assert_eq!(line, format!("n={n} area={} version=1\n", n * n));
    }
    let status = get(&tfpm, site.path(), "/status.php", "file=work.php");
    assert!(status.contains("\"enabled\":true"), "{status}");
    assert!(status.contains("\"cached\":true"), "{status}");
    let hits: u64 = status
        .split("\"hits\":")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no hits in {status}"));
    assert!(hits >= 15, "{status}");
}

#[test]
fn reset_and_invalidate_are_safe_while_every_thread_runs_scripts() {
    let tfpm = Arc::new(start());
    let site = Arc::new(site());
    let latest = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (tfpm, site, latest) = (tfpm.clone(), site.clone(), latest.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let n = c * 1000 + round;
                    let line = get(&tfpm, site.path(), "/work.php", &format!("n={n}"));
                    check_line(&line, n, latest.load(Ordering::SeqCst));
                }
            })
        })
        .collect();
    let chaos = {
        let (tfpm, site, latest, done) = (tfpm.clone(), site.clone(), latest.clone(), done.clone());
        std::thread::spawn(move || {
            let mut resets = 0;
            while !done.load(Ordering::SeqCst) {
                let version = latest.load(Ordering::SeqCst) + 1;
                write_lib(site.path(), version);
                latest.store(version, Ordering::SeqCst);
                let what = if resets % 2 == 0 {
                    "reset"
                } else {
                    "invalidate"
                };
                let answer = get(&tfpm, site.path(), "/reset.php", &format!("what={what}"));
                // Both may say no: opcache_invalidate() to a script not
                // cached (yet), opcache_reset() while a restart is pending.
                let fine = [format!("{what} ok"), format!("{what} refused")];
                assert!(fine.contains(&answer), "{answer}\n{}", tfpm.log());
                resets += 1;
            }
            resets
        })
    };
    let started = Instant::now();
    for worker in workers {
        worker.join().expect("a client failed");
    }
    done.store(true, Ordering::SeqCst);
    let resets = chaos.join().expect("the reset loop failed");
    eprintln!(
        "opcache: {} requests, {resets} resets and invalidations, in {:?}",
        CLIENTS * ROUNDS,
        started.elapsed()
    );
    assert!(resets > 10, "too few resets to mean anything: {resets}");
    // Still serving, with the newest library.
    let version = latest.load(Ordering::SeqCst);
    let line = get(&tfpm, site.path(), "/work.php", "n=3");
    check_line(&line, 3, version);
    assert!(
        !tfpm.log().contains("Segmentation") && !tfpm.log().contains("PHP Fatal"),
        "{}",
        tfpm.log()
    );
}

/// `n=N area=N² version=V` with V a version that was written.
fn check_line(line: &str, n: u64, latest: u64) {
    let prefix = format!("n={n} area={} version=", n * n);
    let version: u64 = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("unexpected answer {line:?} for n={n}"));
    assert!(
        (1..=latest + 1).contains(&version),
        "version {version} > {latest}"
    );
}

/// `opcache.protect_memory` in a PHP_VALUE would leave opcache's shared
/// memory read-only for the other threads (and the thread's next request),
/// whose next compile then faults: tfpm takes it per pool only.
#[test]
fn php_value_protect_memory_does_not_reach_other_requests() {
    let site = site();
    let mut args = vec!["--listen", "127.0.0.1:0", "--threads", "1", "-n"];
    INI.iter().for_each(|ini| args.extend(["-d", ini]));
    let tfpm = Tfpm::start(Path::new(TFPM), &args);
    for n in 0..4 {
        // A new script each time, so each request compiles into shared memory.
        let script = format!("fresh{n}.php");
        std::fs::write(
            site.path().join(&script),
            format!("<?php echo 'fresh {n}';"),
        )
        .expect("script");
        let mut request = CgiRequest::get(site.path(), &format!("/{script}"));
        if n % 2 == 0 {
            request = request.param("PHP_VALUE", "opcache.protect_memory=1");
        }
        let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
        let response = client
            .send(&request, false)
            .unwrap_or_else(|e| panic!("request {n}: {e}\n{}", tfpm.log()));
        assert_eq!(response.cgi().text(), format!("fresh {n}"));
    }
    assert!(!tfpm.log().contains("worker exited"), "{}", tfpm.log());
}
