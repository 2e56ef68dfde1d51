//! tfpm's Debian package, end to end: built in the builder stage of
//! `docker/Dockerfile` (`packaging/deb/build.sh`), copied out as
//! `scripts/deb.sh` does, and installed with `apt-get install ./tfpm_*.deb`
//! into a clean Debian 12 container (the local base image), which has
//! nothing of tfpm or PHP before. There, tfpm starts with the command line
//! of the package's systemd unit, nginx (Debian's, with its own
//! `snippets/fastcgi-php.conf`) serves a PHP page through the package's
//! socket, `tfpm-php` (the CLI of the same build) sees the same php.ini and
//! extensions, `tfpm-php-ext` builds a PECL extension that both then load,
//! logrotate's SIGUSR1 reopens the log, and `apt-get remove` keeps
//! /etc/tfpm while `apt-get purge` removes it.
//!
//! Needs root and docker; fails without them. The package is built by the
//! same (cached) builder stage as the image of `tests/docker.rs`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fcgi_tests::docker::{assert_available, build_builder, last_lines, run, BUILDER};
use fcgi_tests::{http, poll_until, tempfile};

/// Debian 12, as `scripts/docker-base-images.sh` made it.
const CLEAN: &str = "debian:bookworm-slim";

/// A throw-away container, removed (with `-f`) on drop.
struct Container {
    id: String,
}

impl Container {
    /// Starts a clean Debian 12 container with `deb_dir` at /deb and its
    /// port 80 published on a free loopback port.
    fn clean(deb_dir: &Path) -> Container {
        let mount = format!("{}:/deb:ro", deb_dir.display());
        let out = run(Command::new("docker")
            .args(["run", "-d", "-p", "127.0.0.1::80", "-v", &mount, CLEAN])
            .args(["sleep", "infinity"]));
        Container {
            id: out.trim().to_string(),
        }
    }

    /// Runs `script` with `sh -e` in the container; returns its output,
    /// panicking with it unless the script succeeds.
    fn sh(&self, script: &str) -> String {
        let (ok, out) = self.try_sh(script);
        assert!(ok, "in the container:\n{script}\nfailed:\n{out}");
        out
    }

    /// Runs `script` with `sh -e` in the container: whether it succeeded,
    /// and its standard output and error.
    fn try_sh(&self, script: &str) -> (bool, String) {
        let mut child = Command::new("docker")
            .args(["exec", "-i", &self.id, "sh", "-e"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker exec");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(script.as_bytes())
            .expect("write the script");
        drop(stdin);
        let out = child.wait_with_output().expect("docker exec");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), last_lines(&text))
    }

    /// Where the host reaches the container's port 80.
    fn http_addr(&self) -> SocketAddr {
        let out = run(Command::new("docker").args(["port", &self.id, "80"]));
        let first = out.lines().next().unwrap_or_default();
        first
            .parse()
            .unwrap_or_else(|e| panic!("port 80 of {}: {out:?}: {e}", self.id))
    }

    /// Whether `path` exists in the container.
    fn exists(&self, path: &str) -> bool {
        self.try_sh(&format!("test -e '{path}'")).0
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// Copies the package out of the builder stage into `dir`, as
/// `scripts/deb.sh` does; returns its path.
fn package_into(dir: &Path) -> PathBuf {
    let id = run(Command::new("docker").args(["create", BUILDER]));
    let id = id.trim();
    let copied = Command::new("docker")
        .args(["cp", &format!("{id}:/out/."), &dir.display().to_string()])
        .output();
    let _ = Command::new("docker").args(["rm", id]).output();
    assert!(
        matches!(&copied, Ok(out) if out.status.success()),
        "docker cp: {copied:?}"
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the package dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

/// nginx's site, as a user switching from Debian's php-fpm writes it: only
/// the socket's path changes.
const SITE: &str = r"server {
    listen 80 default_server;
    root /var/www/html;
    index index.php;
    location ~ \.php$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/tfpm/tfpm.sock;
    }
}
";

/// The page: who runs it, with which PHP, ini and extensions.
const PAGE: &str = r#"<?php
echo 'sapi: ', PHP_SAPI, "\n";
echo 'php: ', PHP_VERSION, PHP_ZTS ? ' zts' : ' nts', "\n";
echo 'user: ', posix_getpwuid(posix_geteuid())['name'], "\n";
echo 'ini: ', php_ini_loaded_file(), "\n";
$status = opcache_get_status(false);
echo 'opcache: ', ($status && $status['opcache_enabled']) ? 'on' : 'off', "\n";
echo 'msgpack: ', extension_loaded('msgpack') ? implode(',', msgpack_unpack(msgpack_pack([1, 2]))) : 'no', "\n";
"#;

/// The value of the `name: value` line of a page or a CLI's output.
fn field(text: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{text}"))
        .to_string()
}

/// The page through nginx, once tfpm answers it.
fn page(addr: SocketAddr) -> String {
    let ok = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
        http::request(addr, "GET", "/index.php", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    });
    ok.unwrap_or_else(|| panic!("no 200 from nginx at {addr} within 60 s"))
        .text()
}

/// The value of `key=` in the package's systemd unit, as the container has it.
fn unit_line(c: &Container, key: &str) -> String {
    let unit = c.sh("cat /lib/systemd/system/tfpm.service");
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit:\n{unit}"))
        .to_string()
}

#[test]
fn the_package_installs_serves_through_nginx_and_purges_in_a_clean_container() {
    assert_available(false);
    build_builder();
    let dir = tempfile::tempdir().expect("temp dir");
    let deb = package_into(dir.path());
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("tfpm_") && name.contains("+php8.4.") && name.ends_with("_amd64.deb"),
        "{name}"
    );
    eprintln!("deb: {name}, {} KB", deb.metadata().unwrap().len() / 1024);

    let c = Container::clean(dir.path());
    assert!(!c.exists("/usr/sbin/tfpm") && !c.exists("/etc/tfpm"));
    c.sh(&format!(
        "export DEBIAN_FRONTEND=noninteractive
         apt-get update -qq
         apt-get install -y -qq --no-install-recommends /deb/{name} nginx logrotate >/dev/null"
    ));
    // tfpm finds its PHP where the package put it, never in a build cache.
    let libphp = c.sh("ldd /usr/sbin/tfpm | grep libphp");
    assert!(
        libphp.contains("=> /usr/lib/tfpm/php8.4/lib/libphp.so"),
        "{libphp}"
    );

    // Started as the unit starts it (systemd would make /run/tfpm).
    let check = unit_line(&c, "ExecStartPre");
    c.sh(&format!("{check} 2>&1"));
    let start = unit_line(&c, "ExecStart");
    c.sh("mkdir -p /run/tfpm /var/www/html");
    run(Command::new("docker").args(["exec", "-d", &c.id, "sh", "-c", &start]));
    c.sh(&format!(
        "cat > /etc/nginx/sites-available/default <<'EOF'\n{SITE}EOF\n\
         cat > /var/www/html/index.php <<'EOF'\n{PAGE}EOF\n\
         nginx"
    ));
    let addr = c.http_addr();
    let body = page(addr);
    assert_eq!(field(&body, "sapi"), "fpm-fcgi", "{body}");
    let php = field(&body, "php");
    assert!(php.starts_with("8.4.") && php.ends_with(" zts"), "{body}");
    assert_eq!(field(&body, "user"), "www-data", "{body}");
    assert_eq!(field(&body, "ini"), "/etc/tfpm/php.ini", "{body}");
    assert_eq!(field(&body, "opcache"), "on", "{body}");
    assert_eq!(field(&body, "msgpack"), "no", "{body}");

    // An extension built against the package's PHP, from Debian's source
    // package (deb-src entries like the container's deb ones), loads in the
    // CLI at once and in tfpm after a graceful reload (SIGUSR2).
    let built = c.sh("export DEBIAN_FRONTEND=noninteractive
         sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
           > /etc/apt/sources.list.d/debian-src.sources
         apt-get update -qq
         tfpm-php-ext msgpack 2>&1");
    assert!(built.contains("/etc/tfpm/conf.d/20-msgpack.ini"), "{built}");
    let cli = c.sh(
        "cd /var/www/html && tfpm-php index.php; echo \"config: $(tfpm-php-config --ini-dir)\"",
    );
    assert_eq!(field(&cli, "sapi"), "cli", "{cli}");
    assert_eq!(field(&cli, "ini"), "/etc/tfpm/php.ini", "{cli}");
    assert_eq!(field(&cli, "msgpack"), "1,2", "{cli}");
    assert_eq!(field(&cli, "config"), "/etc/tfpm/conf.d", "{cli}");
    c.sh("kill -USR2 \"$(cat /run/tfpm/tfpm.pid)\"");
    let reloaded = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
        Some(page(addr)).filter(|b| field(b, "msgpack") == "1,2")
    });
    assert!(
        reloaded.is_some(),
        "msgpack never loaded in tfpm:\n{}",
        c.sh("cat /var/log/tfpm/error.log")
    );

    // logrotate's SIGUSR1: the master reopens its log.
    c.sh("logrotate -f /etc/logrotate.d/tfpm");
    assert!(c.exists("/var/log/tfpm/error.log.1"));
    let reopened = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let log = c.try_sh("cat /var/log/tfpm/error.log").1;
        log.contains("error log file re-opened").then_some(log)
    });
    assert!(reopened.is_some(), "tfpm did not reopen its log");

    // A graceful stop, then remove keeps the config and purge removes it.
    c.sh("kill -QUIT \"$(cat /run/tfpm/tfpm.pid)\"");
    let stopped = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        (!c.exists("/run/tfpm/tfpm.pid")).then_some(())
    });
    assert!(stopped.is_some(), "tfpm did not stop on SIGQUIT");
    c.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq tfpm >/dev/null");
    assert!(!c.exists("/usr/sbin/tfpm") && !c.exists("/usr/bin/tfpm-php"));
    assert!(c.exists("/etc/tfpm/php-fpm.conf") && c.exists("/etc/tfpm/pool.d/www.conf"));
    c.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tfpm >/dev/null");
    assert!(!c.exists("/etc/tfpm") && !c.exists("/var/log/tfpm"));
}
