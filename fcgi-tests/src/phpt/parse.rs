//! A `.phpt` file as php-src's `run-tests.php` reads it: `--NAME--` lines
//! open sections, the text up to the next one is the section's content, and
//! a script section ends early at a `===DONE===` line. The `*_EXTERNAL`
//! sections are read from their files, `--FILEEOF--` loses its last line
//! break, and a test with no script or no expectation is borked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sections run-tests.php accepts; any other name borks the test.
const ALLOWED: &[&str] = &[
    "EXPECT",
    "EXPECTF",
    "EXPECTREGEX",
    "EXPECTREGEX_EXTERNAL",
    "EXPECT_EXTERNAL",
    "EXPECTF_EXTERNAL",
    "EXPECTHEADERS",
    "POST",
    "POST_RAW",
    "GZIP_POST",
    "DEFLATE_POST",
    "PUT",
    "GET",
    "COOKIE",
    "ARGS",
    "FILE",
    "FILEEOF",
    "FILE_EXTERNAL",
    "REDIRECTTEST",
    "CAPTURE_STDIO",
    "STDIN",
    "CGI",
    "PHPDBG",
    "INI",
    "ENV",
    "EXTENSIONS",
    "SKIPIF",
    "XFAIL",
    "XLEAK",
    "CLEAN",
    "CREDITS",
    "DESCRIPTION",
    "CONFLICTS",
    "WHITESPACE_SENSITIVE",
    "FLAKY",
];

/// One parsed test file.
#[derive(Debug, Clone)]
pub struct Phpt {
    /// The `.phpt` file.
    pub path: PathBuf,
    sections: BTreeMap<String, Vec<u8>>,
}

impl Phpt {
    /// Reads and checks `path`; `Err` says why run-tests.php would call it borked.
    pub fn read(path: &Path) -> Result<Phpt, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let mut phpt = Phpt {
            path: path.to_path_buf(),
            sections: split(&bytes)?,
        };
        phpt.resolve()?;
        Ok(phpt)
    }

    /// The section's text, if the test has it.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections.get(name).map(Vec::as_slice)
    }

    /// The section as (lossy) UTF-8 text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.section(name)
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// Whether the test has the section at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.sections.contains_key(name)
    }

    /// Whether the section is there and not empty.
    pub fn not_empty(&self, name: &str) -> bool {
        self.section(name).is_some_and(|s| !s.is_empty())
    }

    /// The test's directory.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The file name without `.phpt`.
    pub fn stem(&self) -> String {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        name.strip_suffix(".phpt").unwrap_or(&name).to_string()
    }

    /// The `--CONFLICTS--` keys, and the directory's `CONFLICTS` file's.
    pub fn conflicts(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .text("CONFLICTS")
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if let Ok(text) = std::fs::read_to_string(self.dir().join("CONFLICTS")) {
            keys.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        keys
    }

    /// FILEEOF and the `*_EXTERNAL` sections, then the checks run-tests.php makes.
    fn resolve(&mut self) -> Result<(), String> {
        if self.has("REDIRECTTEST") {
            return Ok(());
        }
        let scripts = ["FILE", "FILEEOF", "FILE_EXTERNAL"]
            .iter()
            .filter(|s| self.has(s))
            .count();
        if !self.has("PHPDBG") && scripts != 1 {
            return Err("missing section --FILE--".into());
        }
        if let Some(mut text) = self.sections.remove("FILEEOF") {
            while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                text.pop();
            }
            self.sections.insert("FILE".into(), text);
        }
        for prefix in ["FILE", "EXPECT", "EXPECTF", "EXPECTREGEX"] {
            let key = format!("{prefix}_EXTERNAL");
            if let Some(name) = self.text(&key) {
                let file = self.dir().join(name.replace("..", "").trim());
                let text = std::fs::read(&file)
                    .map_err(|e| format!("could not load --{key}-- {}: {e}", file.display()))?;
                self.sections.insert(prefix.into(), text);
            }
        }
        let expects = ["EXPECT", "EXPECTF", "EXPECTREGEX"]
            .iter()
            .filter(|s| self.has(s))
            .count();
        if expects != 1 {
            return Err("missing section --EXPECT--, --EXPECTF-- or --EXPECTREGEX--".into());
        }
        Ok(())
    }
}

/// Splits the file into its sections, as run-tests.php's readFile().
fn split(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut lines = bytes.split_inclusive(|b| *b == b'\n');
    match lines.next() {
        Some(first) if first.starts_with(b"--TEST--") => {}
        Some(_) => return Err("tests must start with --TEST--".into()),
        None => return Err("empty test".into()),
    }
    let mut sections = BTreeMap::new();
    let mut current = "TEST".to_string();
    sections.insert(current.clone(), Vec::new());
    let mut script = false;
    let mut done = false;
    for line in lines {
        if let Some(name) = section_name(line) {
            if sections.get(&name).is_some_and(|s: &Vec<u8>| !s.is_empty()) {
                return Err(format!("duplicated {name} section"));
            }
            if !ALLOWED.contains(&name.as_str()) {
                return Err(format!("Unknown section \"{name}\""));
            }
            script = matches!(name.as_str(), "FILE" | "FILEEOF" | "FILE_EXTERNAL");
            done = false;
            sections.insert(name.clone(), Vec::new());
            current = name;
            continue;
        }
        if !done {
            sections
                .get_mut(&current)
                .expect("current section")
                .extend_from_slice(line);
        }
        if script && is_done_line(line) {
            done = true;
        }
    }
    Ok(sections)
}

/// `--NAME--` at the start of a line (`^--([_A-Z]+)--`).
fn section_name(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"--")?;
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'_')
        .count();
    if len == 0 || !rest[len..].starts_with(b"--") {
        return None;
    }
    Some(String::from_utf8_lossy(&rest[..len]).into_owned())
}

/// `^===DONE===\s*$`.
fn is_done_line(line: &[u8]) -> bool {
    line.strip_prefix(b"===DONE===")
        .is_some_and(|rest| rest.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
        split(text.as_bytes())
    }

    #[test]
    fn sections_split_at_their_headers() {
        let s = parse("--TEST--\nname\n--FILE--\n<?php echo 1;\n--EXPECT--\n1\n").unwrap();
        assert_eq!(s["TEST"], b"name\n");
        assert_eq!(s["FILE"], b"<?php echo 1;\n");
        assert_eq!(s["EXPECT"], b"1\n");
    }

    #[test]
    fn the_script_ends_at_done() {
        let s = parse("--TEST--\nx\n--FILE--\n<?php\n===DONE===\nignored\n--EXPECT--\n").unwrap();
        assert_eq!(s["FILE"], b"<?php\n===DONE===\n");
    }

    #[test]
    fn unknown_and_duplicated_sections_bork() {
        assert!(parse("--TEST--\nx\n--NOPE--\n").is_err());
        assert!(parse("--TEST--\nx\n--FILE--\na\n--FILE--\nb\n").is_err());
        assert!(parse("--FILE--\n").is_err());
    }

    #[test]
    fn a_header_needs_its_closing_dashes() {
        assert_eq!(section_name(b"--FILE--\n").as_deref(), Some("FILE"));
        assert_eq!(section_name(b"--FILE\n"), None);
        assert_eq!(section_name(b"--file--\n"), None);
    }
}
