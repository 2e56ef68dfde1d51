//! The php-fpm config as this process reads it at start-up: once, and then
//! shared by the log set-up, the choice to go into the background, and the
//! pools of the master (or of a worker). A reload reads the file again
//! (`fpm_pools::reread_config`), and `-t` checks it its own way.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::Cli;
use crate::config::{self, Config, ConfigError};

/// The config at `path`, as read the first time this process asked for it.
pub(super) fn read(cli: &Cli, path: &Path) -> Result<Config, ConfigError> {
    static READ: OnceLock<(PathBuf, Result<Config, ConfigError>)> = OnceLock::new();
    let (first, result) =
        READ.get_or_init(|| (path.to_path_buf(), config::load(path, &cli.read_options())));
    if first == path {
        result.clone()
    } else {
        config::load(path, &cli.read_options())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_file_is_read_once_per_process() {
        let dir = std::env::temp_dir().join(format!("tfpm-startup-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("php-fpm.conf");
        let conf = |pool: &str| {
            format!("[{pool}]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n")
        };
        std::fs::write(&path, conf("first")).unwrap();
        let cli = Cli::parse_from(["tfpm"]);
        let names = |c: Config| c.pools.into_iter().map(|p| p.name).collect::<Vec<_>>();
        assert_eq!(names(read(&cli, &path).unwrap()), ["first"]);
        std::fs::write(&path, conf("second")).unwrap();
        assert_eq!(names(read(&cli, &path).unwrap()), ["first"]);
        // Another file is read as it is now.
        let other = dir.join("other.conf");
        std::fs::write(&other, conf("other")).unwrap();
        assert_eq!(names(read(&cli, &other).unwrap()), ["other"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
