//! `phpt`: runs php-src's `.phpt` tests over FastCGI against php-fpm from
//! our build and against tfpm, and reports regressions (see
//! `fcgi_tests::phpt::suite`). `scripts/phpt.sh` builds what it needs and
//! calls it; run it as `scripts/phpt.sh --help` for the options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use fcgi_tests::phpt::expected;
use fcgi_tests::phpt::run::Verdict;
use fcgi_tests::phpt::suite::{run_suite, Config, CI_SCOPE, FULL_SCOPE};

const USAGE: &str = "usage: phpt --src DIR --tfpm PATH --php PATH [--scope ci|full] [--dir D]...
           [--runners N] [--threads N] [--timeout S] [--seed N] [--slow]
           [--out DIR] [--expected FILE] [NAME-FILTER]...";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1).collect()) {
        Ok((config, out, expected_file)) => report(&config, &out, expected_file),
        Err(why) => {
            eprintln!("phpt: {why}\n{USAGE}");
            ExitCode::from(64)
        }
    }
}

fn parse(args: Vec<String>) -> Result<(Config, PathBuf, Option<PathBuf>), String> {
    let mut config = Config {
        src: PathBuf::new(),
        dirs: Vec::new(),
        tfpm: PathBuf::new(),
        php_cli: PathBuf::new(),
        runners: 2,
        shuffle_threads: 4,
        timeout: Duration::from_secs(60),
        seed: 1,
        filter: Vec::new(),
        skip_slow: true,
        not_on_tfpm: Vec::new(),
    };
    let mut out = PathBuf::from("target/phpt");
    let mut expected_file = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--src" => config.src = value()?.into(),
            "--tfpm" => config.tfpm = value()?.into(),
            "--php" => config.php_cli = value()?.into(),
            "--scope" => {
                let scope = match value()?.as_str() {
                    "ci" => CI_SCOPE,
                    "full" => FULL_SCOPE,
                    other => return Err(format!("unknown scope {other}")),
                };
                config.dirs.extend(scope.iter().map(|d| d.to_string()));
            }
            "--dir" => config.dirs.push(value()?),
            "--runners" => config.runners = number(&value()?)?,
            "--threads" => config.shuffle_threads = number(&value()?)?,
            "--timeout" => config.timeout = Duration::from_secs(number(&value()?)? as u64),
            "--seed" => config.seed = number(&value()?)? as u64,
            "--slow" => config.skip_slow = false,
            "--out" => out = value()?.into(),
            "--expected" => expected_file = Some(value()?.into()),
            "-h" | "--help" => return Err("help".into()),
            filter if !filter.starts_with('-') => config.filter.push(filter.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if config.dirs.is_empty() {
        config.dirs.extend(FULL_SCOPE.iter().map(|d| d.to_string()));
    }
    for (what, path) in [
        ("--src", &config.src),
        ("--tfpm", &config.tfpm),
        ("--php", &config.php_cli),
    ] {
        if !path.exists() {
            return Err(format!("{what} {} does not exist", path.display()));
        }
    }
    Ok((config, out, expected_file))
}

fn number(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

fn report(config: &Config, out: &Path, expected_file: Option<PathBuf>) -> ExitCode {
    let listed = expected_file
        .as_ref()
        .map(|f| expected::parse(&std::fs::read_to_string(f).unwrap_or_default()))
        .unwrap_or_default();
    let mut config = config.clone();
    config.not_on_tfpm = expected::by_design(&listed);
    let report = run_suite(&config);
    let t = report.totals();
    let _ = std::fs::remove_dir_all(out.join("outputs"));
    std::fs::create_dir_all(out.join("regressions")).expect("output directory");
    std::fs::write(out.join("results.tsv"), report.tsv()).expect("results.tsv");
    for (name, text) in report.regression_outputs() {
        let file = out.join("regressions").join(name.replace('/', "__"));
        std::fs::write(file, text).expect("regression output");
    }
    std::fs::create_dir_all(out.join("outputs")).expect("output directory");
    for row in &report.rows {
        let runs = std::iter::once(("php-fpm", row.fpm.as_ref()))
            .chain(row.tfpm.iter().map(|v| ("tfpm", Some(v))));
        for (i, (server, verdict)) in runs.enumerate() {
            if let Some(Verdict::Fail(body)) = verdict {
                let file = out
                    .join("outputs")
                    .join(format!("{}.{i}.{server}", row.name.replace('/', "__")));
                std::fs::write(file, body).expect("output");
            }
        }
    }
    for (i, log) in report.logs.iter().enumerate() {
        std::fs::write(out.join(format!("tfpm-{i}.log")), log).expect("tfpm log");
    }
    std::fs::write(out.join("EXPECTED.md"), expected::render(&report, &listed))
        .expect("EXPECTED.md");
    println!(
        "phpt: {} tests in {:.0?}: {} n/a, {} borked, {} skipped; php-fpm passed {}, tfpm passed {} \
         (every run); {} regressions, {} crashes, {} hangs; {} worker deaths in tfpm's logs",
        t.tests, report.wall, t.not_applicable, t.borked, t.skipped, t.fpm_passed, t.tfpm_passed,
        t.regressions, t.crashes, t.hangs, report.worker_deaths.len()
    );
    for line in &report.worker_deaths {
        println!("  {line}");
    }
    for row in report.rows.iter().filter(|r| r.retried.is_some()) {
        let once = row.retried.as_ref().map_or("-", Verdict::word);
        println!("  passed when run again: {} (once: {once})", row.name);
    }
    let unexplained = expected::unexplained(&report, &listed);
    for row in report
        .rows
        .iter()
        .filter(|r| r.is_regression() || r.is_crash())
    {
        let by_design = !unexplained.iter().any(|u| u.name == row.name);
        let note = if by_design {
            " (listed as by design)"
        } else {
            ""
        };
        println!(
            "  regression: {} (php-fpm {}, tfpm {}){note}",
            row.name,
            row.fpm.as_ref().map_or("-", Verdict::word),
            row.tfpm_words()
        );
    }
    let problems = expected_file
        .map(|_| expected::check(&report, &listed))
        .unwrap_or_default();
    for p in &problems {
        println!("  EXPECTED.md: {p}");
    }
    println!("phpt: results in {}", out.display());
    let clean = unexplained.is_empty() && report.worker_deaths.is_empty() && problems.is_empty();
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
