//! tfpm in Docker, end to end: builds the local base images
//! (`scripts/docker-base-images.sh`) and the image (`docker/Dockerfile`)
//! through `docker/docker-compose.yml`, starts nginx in front of tfpm, and
//! checks the PHP page through nginx, the php CLI and the Debian package
//! the image installs, the health check, and the `scale`
//! profile with three replicas. Prints the build times, the image size and
//! the time from `up` to the first 200 on stderr.
//!
//! Needs root, docker and docker-compose (v1); fails without them. A cold
//! run builds PHP inside the image (15 to 25 minutes on 2 cores); later runs
//! hit Docker's layer cache and rebuild only what changed (tfpm itself when
//! src/ or ffi/ did, about 2 minutes). The builder stage is tagged, and the
//! untagged images earlier builds left are pruned. One test, so one compose
//! project at a time, which a guard always takes down with its volumes and
//! network.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use fcgi_tests::docker::{assert_available, build_builder, run};
use fcgi_tests::{http, poll_until, repo_root};

const COMPOSE_FILE: &str = "docker/docker-compose.yml";
const IMAGE: &str = "tfpm:local";
/// Untagged images built on the local base images: earlier builds of ours.
const PRUNE: &str = "label=tfpm.base-hash";
const REPLICAS: usize = 3;

/// One compose project, taken down (containers, network, volumes) on drop.
struct Project {
    name: String,
}

impl Project {
    /// `docker-compose -f docker/docker-compose.yml -p NAME [--profile scale] ARGS`.
    fn compose(&self, scale: bool, args: &[&str]) -> String {
        let mut cmd = Command::new("docker-compose");
        cmd.args(["-f", COMPOSE_FILE, "-p", &self.name]);
        if scale {
            cmd.args(["--profile", "scale"]);
        }
        run(cmd.args(args))
    }

    /// The ids of the running containers of `service`.
    fn containers(&self, scale: bool, service: &str) -> Vec<String> {
        let out = self.compose(scale, &["ps", "-q", service]);
        out.split_whitespace().map(str::to_string).collect()
    }

    /// Where the host reaches port 80 of `service`.
    fn http_addr(&self, scale: bool, service: &str) -> SocketAddr {
        let out = self.compose(scale, &["port", service, "80"]);
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("port of {service}: {out:?}: {e}"))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let status = Command::new("docker-compose")
            .current_dir(repo_root())
            .args(["-f", COMPOSE_FILE, "-p", &self.name, "--profile", "scale"])
            .args(["down", "-v", "--remove-orphans", "--timeout", "10"])
            .output();
        if !matches!(&status, Ok(out) if out.status.success()) {
            eprintln!("docker: `down` of project {} failed: {status:?}", self.name);
        }
    }
}

/// Polls GET `path` until nginx answers 200, for up to `timeout`.
fn first_ok(addr: SocketAddr, path: &str, timeout: Duration) -> Option<http::Response> {
    poll_until(timeout, Duration::from_millis(50), || {
        http::request(addr, "GET", path, &[], b"")
            .ok()
            .filter(|r| r.status == 200)
    })
}

/// Checks the demo page (docker/www/index.php) for `n`; returns the host name it printed.
fn check_page(response: &http::Response, n: u64) -> String {
    let body = response.text();
    let field = |name: &str| -> String {
        let prefix = format!("{name}: ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{body}"))
            .to_string()
    };
    assert_eq!(field("sapi"), "fpm-fcgi", "{body}");
    let php = field("php");
    assert!(php.starts_with("8.4.") && php.ends_with(" zts"), "{body}");
    assert_eq!(field("opcache"), "on", "{body}");
    let squares: u64 = (1..=n).map(|i| i * i).sum();
    assert_eq!(
        field(&format!("sum of squares 1..{n}")),
        squares.to_string(),
        "{body}"
    );
    field("host")
}

/// What is left of project `name`: its containers, networks and volumes.
fn leftovers(name: &str) -> String {
    let label = format!("label=com.docker.compose.project={name}");
    let mut left = String::new();
    for kind in ["container", "network", "volume"] {
        let mut cmd = Command::new("docker");
        cmd.args([kind, "ls", "-q", "--filter", &label]);
        if kind == "container" {
            cmd.arg("--all");
        }
        left += &run(&mut cmd);
    }
    left
}

/// The health status Docker reports for a container.
fn health(id: &str) -> String {
    let out =
        run(Command::new("docker").args(["inspect", "--format", "{{.State.Health.Status}}", id]));
    out.trim().to_string()
}

#[test]
fn compose_serves_php_through_nginx() {
    assert_available(true);
    build_builder();
    let project = Project {
        name: format!("tfpmtest{}", std::process::id()),
    };
    let started = Instant::now();
    project.compose(false, &["build", "--force-rm"]);
    eprintln!(
        "docker: `docker-compose build` took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run(Command::new("docker").args(["image", "prune", "--force", "--filter", PRUNE]));
    let size =
        run(Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", IMAGE]));
    let size: u64 = size.trim().parse().expect("image size in bytes");
    eprintln!("docker: image {IMAGE} is {:.1} MB", size as f64 / 1e6);

    // Up, then the first 200 from nginx.
    let started = Instant::now();
    project.compose(false, &["up", "-d"]);
    let addr = project.http_addr(false, "nginx");
    let n = 1000 + u64::from(std::process::id() % 1000);
    let path = format!("/index.php?n={n}");
    let response = first_ok(addr, &path, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no 200 from nginx at {addr} within 60 s"));
    let first_200 = started.elapsed();
    eprintln!(
        "docker: `up -d` to the first 200 took {} ms",
        first_200.as_millis()
    );
    let tfpm = project.containers(false, "tfpm");
    assert_eq!(tfpm.len(), 1, "{tfpm:?}");
    // The container's host name is the start of its id.
    let host = check_page(&response, n);
    assert!(tfpm[0].starts_with(&host), "{host} is not {tfpm:?}");
    // The php CLI of the same build, with the same php.ini, in the container
    // (composer, bin/console and cron jobs run it).
    let exec = |args: &[&str]| run(Command::new("docker").args(["exec", &tfpm[0]]).args(args));
    let cli = exec(&[
        "tfpm-php",
        "-r",
        "echo PHP_VERSION, PHP_ZTS ? ' zts ' : ' nts ', php_ini_loaded_file();",
    ]);
    assert!(
        cli.starts_with("8.4.") && cli.ends_with(" zts /etc/tfpm/php.ini"),
        "{cli}"
    );
    // The image is tfpm's Debian package, installed.
    let installed = exec(&["dpkg-query", "-W", "-f", "${Status} ${Version}", "tfpm"]);
    assert!(
        installed.starts_with("install ok installed ") && installed.contains("+php8.4."),
        "{installed}"
    );
    // A missing script is nginx's 404, through the repository's location block.
    let missing = http::get(addr, "/missing.php");
    assert_eq!(missing.status, 404, "{}", missing.summary());

    // The health check (the ping page over FastCGI) turns the container healthy.
    let status = poll_until(Duration::from_secs(60), Duration::from_millis(200), || {
        let status = health(&tfpm[0]);
        (status != "starting").then_some(status)
    });
    assert_eq!(status.as_deref(), Some("healthy"), "health of {}", tfpm[0]);
    eprintln!(
        "docker: tfpm healthy {:.1} s after `up`",
        started.elapsed().as_secs_f64()
    );

    // The scale profile: replicas over TCP, all behind one nginx.
    let scale = format!("tfpm-scaled={REPLICAS}");
    project.compose(true, &["up", "-d", "--scale", &scale]);
    let replicas = project.containers(true, "tfpm-scaled");
    assert_eq!(replicas.len(), REPLICAS, "{replicas:?}");
    let addr = project.http_addr(true, "nginx-scaled");
    first_ok(addr, &path, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no 200 from nginx-scaled at {addr} within 60 s"));
    let mut hosts = std::collections::BTreeSet::new();
    for _ in 0..(10 * REPLICAS) {
        let response = http::get(addr, &path);
        assert_eq!(response.status, 200, "{}", response.summary());
        let host = check_page(&response, n);
        assert!(
            replicas.iter().any(|id| id.starts_with(&host)),
            "{host} is none of {replicas:?}"
        );
        hosts.insert(host);
    }
    assert!(hosts.len() > 1, "every request reached {hosts:?}");
    eprintln!(
        "docker: {} requests reached {} of {REPLICAS} replicas",
        10 * REPLICAS,
        hosts.len()
    );

    // Down, and nothing of the project is left.
    let name = project.name.clone();
    drop(project);
    let left = leftovers(&name);
    assert!(left.trim().is_empty(), "left behind: {left}");
}
