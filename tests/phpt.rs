//! php-src's own `.phpt` tests through tfpm (issue 15): the whole scope
//! (`FULL_SCOPE`: Zend, tests/ and 15 extensions, about 12,000 tests, some
//! 4 minutes on 2 cores), from the same Debian source as our PHP build.
//! Each runs on php-fpm from that build (`pm.max_requests = 1`), twice on a
//! one-thread tfpm, then once more shuffled across a four-thread tfpm with
//! every thread busy (`fcgi_tests::phpt::suite`).
//!
//! It fails on any regression (a test php-fpm passes and tfpm does not, in
//! any run) that `fcgi-tests/phpt/EXPECTED-<version>.md` does not explain, any lost
//! request or dead worker, and any disagreement with that list.
//! `scripts/phpt.sh` runs the same outside cargo. `TFPM_PHPT_SEED` fixes the
//! shuffle; `TFPM_PHPT_SCOPE=ci` runs only `CI_SCOPE` (Zend/tests and
//! ext/standard/tests: `scripts/test.sh` does so for PHP 8.2); results go to
//! `$CARGO_TARGET_TMPDIR/phpt/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fcgi_tests::phpt::expected;
use fcgi_tests::phpt::suite::{run_suite, Config, CI_SCOPE, FULL_SCOPE};
use fcgi_tests::{php_branch, php_prefix, repo_root};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

/// The cached source tree, copied where the tests may write next to themselves.
fn source_tree(work: &Path) -> PathBuf {
    let script = repo_root().join("scripts/php-src-tree.sh");
    let out = Command::new(&script)
        .output()
        .expect("run scripts/php-src-tree.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let copy = work.join("src");
    let _ = std::fs::remove_dir_all(&copy);
    let status = Command::new("cp")
        .arg("-a")
        .arg(&tree)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "copy {} to {}",
        tree.display(),
        copy.display()
    );
    copy
}

fn scope() -> &'static [&'static str] {
    match std::env::var("TFPM_PHPT_SCOPE").as_deref() {
        Ok("ci") => CI_SCOPE,
        Ok("full") | Err(_) => FULL_SCOPE,
        Ok(other) => panic!("TFPM_PHPT_SCOPE={other}: choose ci or full"),
    }
}

fn seed() -> u64 {
    std::env::var("TFPM_PHPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        })
}

#[test]
fn php_src_tests_pass_under_tfpm_wherever_they_pass_under_php_fpm() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("phpt");
    std::fs::create_dir_all(&work).expect("work dir");
    let prefix = php_prefix().expect("a PHP build (ffi/build-php.sh)");
    let listed_file = repo_root().join(format!("fcgi-tests/phpt/EXPECTED-{}.md", php_branch()));
    let listed = expected::parse(
        &std::fs::read_to_string(&listed_file)
            .unwrap_or_else(|e| panic!("{}: {e}", listed_file.display())),
    );
    let config = Config {
        src: source_tree(&work),
        dirs: scope().iter().map(|d| d.to_string()).collect(),
        tfpm: PathBuf::from(TFPM),
        php_cli: prefix.join("bin/php"),
        runners: 2,
        shuffle_threads: 4,
        timeout: Duration::from_secs(60),
        seed: seed(),
        filter: Vec::new(),
        skip_slow: true,
        not_on_tfpm: expected::by_design(&listed),
    };
    let report = run_suite(&config);
    std::fs::write(work.join("results.tsv"), report.tsv()).expect("results.tsv");
    std::fs::write(work.join("EXPECTED.md"), expected::render(&report, &listed))
        .expect("EXPECTED.md");
    let t = report.totals();
    for row in report.rows.iter().filter(|r| r.retried.is_some()) {
        let once = row.retried.as_ref().map_or("-", |v| v.word());
        println!("phpt: passed when run again: {} (once: {once})", row.name);
    }
    println!(
        "phpt (seed {}): {t:?} in {:.0?}; results in {}",
        config.seed,
        report.wall,
        work.display()
    );
    let unexplained: Vec<&str> = expected::unexplained(&report, &listed)
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let outputs = report.regression_outputs();
    let regressions: Vec<String> = unexplained
        .iter()
        .map(|name| format!("{name}:\n{}", fcgi_tests::tail(&outputs[*name], 1500)))
        .collect();
    assert!(
        regressions.is_empty(),
        "regressions or lost requests:\n{}",
        regressions.join("\n\n")
    );
    assert!(
        report.worker_deaths.is_empty(),
        "workers died:\n{}",
        report.worker_deaths.join("\n")
    );
    let problems = expected::check(&report, &listed);
    assert!(
        problems.is_empty(),
        "{} is out of date ({} in {} says what it should be):\n{}",
        listed_file.display(),
        problems.len(),
        work.join("EXPECTED.md").display(),
        problems.join("\n")
    );
    let least = if scope() == CI_SCOPE { 4_000 } else { 10_000 };
    assert!(t.tfpm_passed > least, "too few tests passed: {t:?}");
}
