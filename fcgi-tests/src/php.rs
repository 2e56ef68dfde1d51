//! Locating the PHP build that tfpm links against, for php-fpm and the CLI as oracles.
//!
//! `ffi/build-php.sh` installs PHP into
//! `${TFPM_PHP_CACHE:-/var/cache/tfpm/php}/php<version>-<full version>-<key>/`
//! and marks a finished install with `.tfpm-complete`. `PHP_CONFIG`, when set,
//! wins (as it does for `build.rs`): its `--prefix` is the install. Else the
//! build is chosen as `build.rs` chooses it: the most recently finished one of
//! the version `TFPM_PHP_VERSION` names (default 8.4), so that the oracles are
//! the PHP tfpm links against, never a build of another version.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_CACHE: &str = "/var/cache/tfpm/php";
const COMPLETE_MARK: &str = ".tfpm-complete";
/// build.rs's and build-php.sh's default when `TFPM_PHP_VERSION` is unset.
const DEFAULT_PHP_VERSION: &str = "8.4";

/// The install prefix of the PHP build: `$PHP_CONFIG --prefix`, else the
/// latest complete build of the wanted version under the cache. `None` if
/// there is none (yet).
pub fn php_prefix() -> Option<PathBuf> {
    if let Some(php_config) = std::env::var_os("PHP_CONFIG") {
        return prefix_of(Path::new(&php_config));
    }
    let cache = std::env::var_os("TFPM_PHP_CACHE").map(PathBuf::from);
    let version = std::env::var("TFPM_PHP_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PHP_VERSION.to_string());
    latest_complete(
        &cache.unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE)),
        version.trim(),
    )
}

/// The build's PHP version as `(major, minor)`, from its `php-config`.
pub fn php_version() -> (u32, u32) {
    let prefix = php_prefix().expect("a PHP build (ffi/build-php.sh)");
    let output = Command::new(prefix.join("bin/php-config"))
        .arg("--version")
        .output()
        .expect("run php-config --version");
    let text = String::from_utf8_lossy(&output.stdout);
    parse_branch(&text).unwrap_or_else(|| panic!("php-config --version said {text:?}"))
}

/// `"8.4"` for the build's PHP version: the suffix of the lists that differ
/// by version (`fcgi-tests/phpt/EXPECTED-8.4.md`).
pub fn php_branch() -> String {
    let (major, minor) = php_version();
    format!("{major}.{minor}")
}

/// PHP 8.3 and later check the C stack (`zend.max_allowed_stack_size`):
/// runaway recursion throws an `Error` instead of overflowing the stack.
pub fn php_has_stack_guard() -> bool {
    php_version() >= (8, 3)
}

fn parse_branch(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `<prefix>/sbin/php-fpm`, if the build has it.
pub fn php_fpm() -> Option<PathBuf> {
    php_prefix()
        .map(|p| p.join("sbin/php-fpm"))
        .filter(|p| p.is_file())
}

/// `<prefix>/bin/php`, if the build has it.
pub fn php_cli() -> Option<PathBuf> {
    php_prefix()
        .map(|p| p.join("bin/php"))
        .filter(|p| p.is_file())
}

/// What `php-config --prefix` prints.
fn prefix_of(php_config: &Path) -> Option<PathBuf> {
    let output = Command::new(php_config).arg("--prefix").output().ok()?;
    let prefix = String::from_utf8(output.stdout).ok()?;
    let prefix = prefix.trim();
    (output.status.success() && !prefix.is_empty()).then(|| PathBuf::from(prefix))
}

/// The directory under `cache` named `php<version>-…` whose completion mark is
/// the most recent.
fn latest_complete(cache: &Path, version: &str) -> Option<PathBuf> {
    let name_prefix = format!("php{version}-");
    std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&name_prefix))
        })
        .filter_map(|d| {
            let done = std::fs::metadata(d.join(COMPLETE_MARK)).ok()?;
            Some((done.modified().ok(), d))
        })
        .max()
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_branch_of_a_version() {
        assert_eq!(parse_branch("8.4.16\n"), Some((8, 4)));
        assert_eq!(parse_branch("8.2.32"), Some((8, 2)));
        assert_eq!(parse_branch("eight"), None);
    }

    #[test]
    fn finds_only_complete_builds_of_the_version() {
        let cache = tempfile::tempdir().unwrap();
        for (dir, done) in [
            ("php8.2-8.2.36-1-aaaa", false),
            ("php8.2-8.2.32-1-bbbb", true),
            ("php8.4-8.4.16-1-cccc", true),
        ] {
            std::fs::create_dir(cache.path().join(dir)).unwrap();
            if done {
                std::fs::write(cache.path().join(dir).join(COMPLETE_MARK), "").unwrap();
            }
        }
        assert_eq!(
            latest_complete(cache.path(), "8.2"),
            Some(cache.path().join("php8.2-8.2.32-1-bbbb"))
        );
        assert_eq!(
            latest_complete(cache.path(), "8.4"),
            Some(cache.path().join("php8.4-8.4.16-1-cccc"))
        );
        assert_eq!(latest_complete(cache.path(), "8.3"), None);
        assert_eq!(latest_complete(&cache.path().join("missing"), "8.2"), None);
    }
}
