//! What tfpm takes from Debian's php-fpm layout (`-y
//! /etc/php/8.2/fpm/php-fpm.conf`): the `opcache.*` settings of its conf.d/,
//! and nothing of the extensions conf.d/ loads, which Debian builds for its
//! non-thread-safe PHP. The start-up log names those, once.

use std::path::{Path, PathBuf};

/// The scan dir compiled into tfpm's PHP, which it reads in any case.
pub const OWN_SCAN_DIR: &str = env!("TFPM_LINKED_PHP_INI_DIR");

/// The `.ini` files of a conf.d directory, in the order PHP reads them.
fn ini_files(conf_d: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_d)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "ini"));
    files.sort();
    files
}

/// The `key = value` settings of a conf.d directory, in file order.
fn settings(conf_d: &Path) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for text in ini_files(conf_d)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
    {
        for line in text.lines().map(str::trim) {
            if line.starts_with(';') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                entries.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    entries
}

/// The `opcache.*` settings of a conf.d directory, in file order (tfpm's
/// PHP loads opcache itself, from its own scan dir).
pub fn opcache_entries(conf_d: &Path) -> Vec<(String, String)> {
    let mut entries = settings(conf_d);
    entries.retain(|(key, _)| key.starts_with("opcache."));
    entries
}

/// The names of the extensions a conf.d directory loads (`extension=` and
/// `zend_extension=`, with any directory, `.so` and quotes taken off).
pub fn extensions(conf_d: &Path) -> Vec<String> {
    settings(conf_d)
        .into_iter()
        .filter(|(key, _)| key == "extension" || key == "zend_extension")
        .map(|(_, value)| {
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            let file = value.rsplit('/').next().unwrap_or(value);
            file.strip_suffix(".so").unwrap_or(file).to_string()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The start-up notice for the extensions Debian's conf.d/ loads, if any
/// (opcache aside: tfpm's PHP loads its own).
pub fn skipped_notice(conf_d: &Path) -> Option<String> {
    let mut names = extensions(conf_d);
    names.retain(|name| name != "opcache");
    if names.is_empty() {
        return None;
    }
    Some(format!(
        "{} loads extensions built for Debian's non-thread-safe PHP, which tfpm never loads: {}. \
         Those built into tfpm's PHP work as they are (`tfpm -m` lists them); build the others \
         with scripts/php-ext.sh (or tfpm-php-ext), into tfpm's own scan dir {OWN_SCAN_DIR}",
        conf_d.display(),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf_d(files: &[(&str, &str)]) -> fcgi_tests::tempfile::TempDir {
        let dir = fcgi_tests::tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        dir
    }

    #[test]
    fn opcache_settings_and_extension_names_as_debian_writes_them() {
        let dir = conf_d(&[
            ("10-opcache.ini", "; configuration for php opcache module\nzend_extension=opcache.so\nopcache.jit=off\n"),
            ("20-redis.ini", "extension=redis.so\n;extension=igbinary.so\n"),
            ("30-apcu.ini", "extension = \"/usr/lib/php/20220829/apcu.so\"\napc.enabled=1\n"),
            ("README", "extension=ignored.so\n"),
        ]);
        assert_eq!(
            opcache_entries(dir.path()),
            [("opcache.jit".to_string(), "off".to_string())]
        );
        assert_eq!(extensions(dir.path()), ["opcache", "redis", "apcu"]);
        let notice = skipped_notice(dir.path()).expect("a notice");
        assert!(notice.contains("never loads: redis, apcu."), "{notice}");
        assert!(notice.contains(OWN_SCAN_DIR), "{notice}");
    }

    #[test]
    fn no_notice_without_extensions() {
        let dir = conf_d(&[("10-opcache.ini", "opcache.enable=1\n")]);
        assert_eq!(skipped_notice(dir.path()), None);
        assert_eq!(skipped_notice(Path::new("/nonexistent")), None);
    }
}
