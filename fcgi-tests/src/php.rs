//! Locating the PHP build that tfpm links against, for php-fpm and the CLI as oracles.
//!
//! `ffi/build-php.sh` installs PHP into `${TFPM_PHP_CACHE:-/var/cache/tfpm/php}/<key>/`
//! and marks a finished install with `.tfpm-complete`. `PHP_CONFIG`, when set,
//! wins (as it does for `build.rs`): its `--prefix` is the install.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_CACHE: &str = "/var/cache/tfpm/php";
const COMPLETE_MARK: &str = ".tfpm-complete";

/// The install prefix of the PHP build: `$PHP_CONFIG --prefix`, else the first
/// complete build under the cache. `None` if there is none (yet).
pub fn php_prefix() -> Option<PathBuf> {
    if let Some(php_config) = std::env::var_os("PHP_CONFIG") {
        return prefix_of(Path::new(&php_config));
    }
    let cache = std::env::var_os("TFPM_PHP_CACHE").map(PathBuf::from);
    first_complete(&cache.unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE)))
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

/// The first directory (by name) under `cache` holding the completion mark.
fn first_complete(cache: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    dirs.sort();
    dirs.into_iter().find(|d| d.join(COMPLETE_MARK).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_complete_builds() {
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir(cache.path().join("a-partial")).unwrap();
        std::fs::create_dir(cache.path().join("b-done")).unwrap();
        std::fs::write(cache.path().join("b-done").join(COMPLETE_MARK), "").unwrap();
        assert_eq!(
            first_complete(cache.path()),
            Some(cache.path().join("b-done"))
        );
        assert_eq!(first_complete(&cache.path().join("missing")), None);
    }
}
