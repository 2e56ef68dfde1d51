//! php-src's own php-fpm test suite (sapi/fpm/tests/*.phpt, from the same
//! Debian source version as our PHP build) run against tfpm by
//! `scripts/php-fpm-suite.sh`. `fcgi-tests/fpm-suite/EXPECTED-<version>.md` lists
//! every test of the suite as pass, fail or n/a; the tests that are not n/a
//! run, and this fails when one listed as pass does not pass, when one
//! listed as fail passes (the list is then out of date: move it to pass),
//! or when the suite and the list name different tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Pass,
    Fail,
    NotApplicable,
}

/// The rows of EXPECTED.md's table: `| test | pass/fail/n/a | php-fpm | reason |`.
fn expected(path: &Path) -> BTreeMap<String, (Expect, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let expect = match cells.get(1).copied() {
            Some("pass") => Expect::Pass,
            Some("fail") => Expect::Fail,
            Some("n/a") => Expect::NotApplicable,
            _ => continue, // the header, or another table
        };
        let reason = cells.get(3).copied().unwrap_or("").to_string();
        let previous = rows.insert(cells[0].to_string(), (expect, reason));
        assert!(
            previous.is_none(),
            "{} is listed twice in EXPECTED.md",
            cells[0]
        );
    }
    assert!(!rows.is_empty(), "no test rows in {}", path.display());
    rows
}

/// `PHP_CONFIG`, else the cached build's php-config.
fn php_config() -> PathBuf {
    if let Some(path) = std::env::var_os("PHP_CONFIG") {
        return PathBuf::from(path);
    }
    let prefix = fcgi_tests::php_prefix()
        .expect("no PHP build: set PHP_CONFIG=/path/to/php-config or run ffi/build-php.sh");
    prefix.join("bin/php-config")
}

/// `results.tsv`: name -> (RESULT, reason).
fn results(path: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the suite wrote no {}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let mut f = line.split('\t');
            let name = f.next().unwrap_or_default().to_string();
            let result = f.next().unwrap_or_default().to_string();
            let reason = f.nth(1).unwrap_or_default().to_string();
            (name, (result, reason))
        })
        .collect()
}

#[test]
fn php_src_fpm_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/php-fpm-suite.sh");
    assert!(script.is_file(), "{} is missing", script.display());
    let list_file = root.join(format!(
        "fcgi-tests/fpm-suite/EXPECTED-{}.md",
        fcgi_tests::php_branch()
    ));
    let list = expected(&list_file);

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fpm-suite");
    std::fs::create_dir_all(&work).unwrap();
    let out = work.join("tfpm");
    let to_run = work.join("to-run.txt");
    let names: Vec<&str> = list
        .iter()
        .filter(|(_, (e, _))| *e != Expect::NotApplicable)
        .map(|(n, _)| n.as_str())
        .collect();
    std::fs::write(&to_run, names.join("\n") + "\n").unwrap();

    // Tests that fail mostly wait (3 s per log line the tester expects and
    // does not get), so 4 at a time halves the run on 2 cores, with the
    // same results; TFPM_FPM_SUITE_JOBS sets another number.
    let jobs = std::env::var("TFPM_FPM_SUITE_JOBS").unwrap_or_else(|_| "4".into());
    let started = Instant::now();
    let run = Command::new("bash")
        .arg(&script)
        .args(["--fpm", TFPM, "-j", &jobs, "--out"])
        .arg(&out)
        .arg("--list")
        .arg(&to_run)
        .env("PHP_CONFIG", php_config())
        .output()
        .expect("run scripts/php-fpm-suite.sh");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "scripts/php-fpm-suite.sh failed ({}):\n{stderr}",
        run.status
    );

    let mut problems = Vec::new();
    // The list must name exactly the suite's tests.
    let suite = std::fs::read_to_string(out.join("all-tests.txt")).expect("all-tests.txt");
    let suite: Vec<&str> = suite.lines().collect();
    for name in &suite {
        if !list.contains_key(*name) {
            problems.push(format!(
                "{name}: in the suite but not in EXPECTED.md; add it"
            ));
        }
    }
    for name in list.keys() {
        if !suite.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: in EXPECTED.md but not in the suite; remove it"
            ));
        }
    }

    let got = results(&out.join("results.tsv"));
    let (mut passed, mut failed) = (0, 0);
    for name in &names {
        let (expect, why) = &list[*name];
        let Some((result, reason)) = got.get(*name) else {
            problems.push(format!("{name}: no result"));
            continue;
        };
        // WARN: an XFAIL test that passes.
        let passes = result == "PASS" || result == "WARN";
        if passes {
            passed += 1;
        } else {
            failed += 1;
        }
        match (expect, passes) {
            (Expect::Pass, false) => problems.push(format!(
                "{name}: listed as pass, but {result}: {reason}\n    (output in {})",
                out.join("tests").display()
            )),
            (Expect::Fail, true) => problems.push(format!(
                "{name}: passes now; move it to pass in EXPECTED.md (it said: {why})"
            )),
            _ => {}
        }
    }
    let not_applicable = list.len() - names.len();
    eprintln!(
        "php-fpm suite against tfpm: {passed} passed, {failed} failed, {not_applicable} not applicable; \
         {} tests run in {:.0} s",
        names.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} and the suite disagree:\n  {}",
        list_file.display(),
        problems.join("\n  ")
    );
}
