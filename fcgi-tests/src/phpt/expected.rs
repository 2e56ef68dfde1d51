//! `fcgi-tests/phpt/EXPECTED-<version>.md`: every test of the scope that does not
//! pass under tfpm, with why. Its table rows are
//! `| test | tfpm | php-fpm | reason |`. A run is checked against it both
//! ways: a test that does not pass must be listed, and a listed test that
//! now passes must leave the list. A row whose tfpm column says `flaky`
//! may go either way (a test that depends on timing under php-fpm too),
//! and may fail the shuffled run as long as both warm runs pass (a test
//! that fails now and then among busy threads, whose cause is not found
//! yet: the reason says so).
//! A regression may only be listed as `by design`, with the reason: a
//! thing a threaded server cannot do the way a process per request does
//! (process-wide signal handlers, for one). A test whose second run cannot
//! pass on any server with a shared opcache, and that does not skip itself
//! on `SKIP_REPEAT`, is listed as `not repeatable`: its first run must pass.
//! Any other regression fails.

use std::collections::BTreeMap;

use super::run::Verdict;
use super::suite::{Report, Row};

/// One listed test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What tfpm does: `fail` (or `skip`, `n/a`), or `flaky`.
    pub tfpm: String,
    pub fpm: String,
    pub reason: String,
}

/// Reads the rows of the file's tables.
pub fn parse(text: &str) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        if cells.len() < 4 || cells[0] == "test" || cells[0].starts_with("---") {
            continue;
        }
        let name = cells[0].trim_matches('`').to_string();
        entries.insert(
            name,
            Entry {
                tfpm: cells[1].to_string(),
                fpm: cells[2].to_string(),
                reason: cells[3..].join(" | "),
            },
        );
    }
    entries
}

impl Entry {
    fn is_flaky(&self) -> bool {
        self.tfpm == "flaky"
    }

    fn is_by_design(&self) -> bool {
        self.tfpm == "by design"
    }

    fn is_not_repeatable(&self) -> bool {
        self.tfpm == "not repeatable"
    }
}

/// The tests listed as `by design`.
pub fn by_design(entries: &BTreeMap<String, Entry>) -> Vec<String> {
    entries
        .iter()
        .filter(|(_, e)| e.is_by_design())
        .map(|(n, _)| n.clone())
        .collect()
}

/// The regressions of `report` that are not listed as `by design`.
pub fn unexplained<'a>(report: &'a Report, entries: &BTreeMap<String, Entry>) -> Vec<&'a Row> {
    report
        .rows
        .iter()
        .filter(|r| r.is_regression() || r.is_crash())
        .filter(|r| {
            !(r.is_regression()
                && !r.is_crash()
                && entries.get(&r.name).is_some_and(|e| allowed(e, r)))
        })
        .collect()
}

/// Whether `entry` explains `row`'s regression.
fn allowed(entry: &Entry, row: &Row) -> bool {
    let first = row.tfpm.first() == Some(&Verdict::Pass);
    let warm = first && row.tfpm.get(1).map_or(true, |v| *v == Verdict::Pass);
    entry.is_by_design() || (entry.is_not_repeatable() && first) || (entry.is_flaky() && warm)
}

/// Whether a row that ran must be listed: any tfpm run did not pass.
fn must_be_listed(row: &Row) -> bool {
    row.not_run.is_none() && !row.skipped_by_both() && !row.tfpm_passes()
}

/// The disagreements between `report` and the listed `entries`, limited to
/// the tests the report ran.
pub fn check(report: &Report, entries: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut problems = Vec::new();
    for row in &report.rows {
        let listed = entries.get(&row.name);
        match (must_be_listed(row), listed) {
            (true, None) => problems.push(format!(
                "{}: tfpm {} (php-fpm {}), not listed in EXPECTED.md",
                row.name,
                row.tfpm_words(),
                row.fpm.as_ref().map_or("-", |v| v.word())
            )),
            (false, Some(entry))
                if entry.tfpm != "flaky" && row.not_run.is_none() && !row.skipped_by_both() =>
            {
                problems.push(format!(
                    "{}: passes under tfpm now; take it out of EXPECTED.md",
                    row.name
                ))
            }
            _ => {}
        }
    }
    problems
}

/// The list as it should be after `report`: rows kept for tests it did not
/// run, reasons kept for tests still listed, a default reason for new ones.
pub fn render(report: &Report, entries: &BTreeMap<String, Entry>) -> String {
    let mut rows: BTreeMap<String, Entry> = entries.clone();
    for row in &report.rows {
        if row.not_run.is_some() {
            continue;
        }
        let kept = entries
            .get(&row.name)
            .filter(|e| e.is_flaky() || e.is_by_design());
        if !must_be_listed(row) {
            if !kept.is_some_and(Entry::is_flaky) {
                rows.remove(&row.name);
            }
            continue;
        }
        let fpm = row.fpm.as_ref().map_or("-", |v| v.word()).to_string();
        let reason = entries
            .get(&row.name)
            .map(|e| e.reason.clone())
            .unwrap_or_else(|| default_reason(row));
        let tfpm = kept.map_or_else(|| row.tfpm_words(), |e| e.tfpm.clone());
        rows.insert(row.name.clone(), Entry { tfpm, fpm, reason });
    }
    let mut out = String::from("| test | tfpm | php-fpm | reason |\n|---|---|---|---|\n");
    for (name, e) in rows {
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} |\n",
            e.tfpm, e.fpm, e.reason
        ));
    }
    out
}

fn default_reason(row: &Row) -> String {
    if row.is_regression() {
        "REGRESSION: passes under php-fpm".to_string()
    } else {
        "fails under php-fpm too".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tfpm: Vec<Verdict>) -> Row {
        Row {
            name: "Zend/tests/halt02.phpt".into(),
            not_run: None,
            fpm: Some(Verdict::Pass),
            tfpm,
            retried: None,
        }
    }

    fn entry(tfpm: &str) -> Entry {
        Entry {
            tfpm: tfpm.into(),
            fpm: "pass".into(),
            reason: "why".into(),
        }
    }

    #[test]
    fn a_flaky_row_explains_only_a_failure_after_both_warm_runs_passed() {
        let fail = || Verdict::Fail("x".into());
        let shuffled = row(vec![Verdict::Pass, Verdict::Pass, fail()]);
        let warm = row(vec![Verdict::Pass, fail(), Verdict::Pass]);
        assert!(allowed(&entry("flaky"), &shuffled));
        assert!(!allowed(&entry("flaky"), &warm));
        assert!(!allowed(&entry("fail"), &shuffled));
        assert!(allowed(&entry("not repeatable"), &warm));
    }
}
