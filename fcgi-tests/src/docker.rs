//! Docker for the tests that build tfpm's image (`tests/docker.rs`) and its
//! Debian package (`tests/deb.rs`): commands that must succeed, the local
//! base images, and the builder stage of `docker/Dockerfile`, which builds
//! PHP, tfpm and the package.

use std::process::Command;
use std::time::Instant;

use crate::repo_root;

/// The builder stage of `docker/Dockerfile`, under a tag of its own: pruning
/// what a later build replaced then never drops its cache (the PHP build).
pub const BUILDER: &str = "tfpm-builder:local";

/// Fails the test unless `docker` (and `docker-compose`, if `compose`)
/// reach the Docker engine.
pub fn assert_available(compose: bool) {
    let tools: &[&str] = if compose {
        &["docker", "docker-compose"]
    } else {
        &["docker"]
    };
    for tool in tools {
        let found = Command::new(tool).arg("version").output();
        assert!(
            matches!(&found, Ok(out) if out.status.success()),
            "{tool} is missing or cannot reach the Docker engine: {found:?}"
        );
    }
}

/// Runs `cmd` from the repository root; panics with its output unless it
/// succeeds. Returns its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        last_lines(&stdout),
        last_lines(&stderr)
    );
    stdout
}

/// The last lines of a long output, for failure messages.
pub fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Builds the local base images (`scripts/docker-base-images.sh`) and the
/// builder stage, tagged [`BUILDER`]; prints how long each took. A cold
/// build compiles PHP (15 to 25 minutes on 2 cores); later ones hit
/// Docker's layer cache.
pub fn build_builder() {
    let started = Instant::now();
    run(&mut Command::new("scripts/docker-base-images.sh"));
    eprintln!(
        "docker: base images ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    run(Command::new("docker")
        .args(["build", "--force-rm", "--target", "builder"])
        .args(["-t", BUILDER, "-f", "docker/Dockerfile", "."]));
    eprintln!(
        "docker: `docker build --target builder` took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
