//! `tfpm -t -y FILE` and `-tt`: checks a php-fpm config as `php-fpm -t`
//! does (the parse, the post-processing, the users and groups it names)
//! and prints php-fpm's log lines, and at `-tt` the whole configuration.

use super::Cli;
use crate::config;
use crate::server;

/// `-t -y FILE` (`-tt`: test and dump): checks a php-fpm config as
/// `php-fpm -t` does and prints its log lines on stderr, with their time
/// (`[27-Nov-2026 08:00:00] NOTICE: ...`); returns php-fpm's exit code
/// (0, or 78 = EX_CONFIG).
pub fn test_config(cli: &Cli, path: &std::path::Path) -> i32 {
    let (lines, passed) = check_fpm_config(cli, path);
    let now = std::time::SystemTime::now();
    let time = server::fpmlog::timestamp(now, crate::sys::os::utc_offset(now));
    for line in lines {
        eprintln!("[{time}] {line}");
    }
    if passed {
        0
    } else {
        crate::exit_code::CONFIG
    }
}

/// What `php-fpm -t` logs for the config at `path`, and whether it passes,
/// in php-fpm's order: the parse; the post-processing (a pool without
/// `user` when root without -R, then tfpm's validation), which fails with
/// "failed to post process the configuration"; fpm_unix_test_config (each
/// pool's `user`, `group`, `listen.owner` and `listen.group` must exist,
/// when not all digits); then, at `-tt`, the dump; then the success line.
/// As php-fpm, what follows the parse is logged only at the config's
/// `log_level` or above. Refusing to run a pool as root is for the start.
fn check_fpm_config(cli: &Cli, path: &std::path::Path) -> (Vec<config::Notice>, bool) {
    use crate::sys::os;
    use config::{ConfigError, Level, LogLevel, Notice};

    /// The ALERT php-fpm's post-processing gives a pool without `user`.
    fn user_defined(pool: &config::Pool) -> Result<(), ConfigError> {
        match pool.user {
            Some(_) => Ok(()),
            None => Err(ConfigError::alert(format!(
                "[pool {}] user has not been defined",
                pool.name
            ))),
        }
    }

    /// fpm_unix_test_config; `listen.*` failures are SYSERRORs, with errno.
    fn names_exist(pool: &config::Pool) -> Result<(), ConfigError> {
        let names = [
            (&pool.user, "user", false),
            (&pool.group, "group", false),
            (&pool.listen_owner, "user", true),
            (&pool.listen_group, "group", true),
        ];
        for (name, what, sys) in names {
            let is_id = |n: &&str| n.bytes().all(|b| b.is_ascii_digit());
            let Some(name) = name.as_deref().filter(|n| !is_id(n)) else {
                continue;
            };
            let (found, id) = match what {
                "user" => (os::lookup_user(name).is_some(), "uid"),
                _ => (os::lookup_group(name).is_some(), "gid"),
            };
            let errno = std::io::Error::last_os_error();
            if found {
                continue;
            }
            let mut message = format!("[pool {}] cannot get {id} for {what} '{name}'", pool.name);
            if sys {
                let text = errno.to_string(); // "No such file or directory (os error 2)"
                let text = text.split(" (os error").next().unwrap_or_default();
                let code = errno.raw_os_error().unwrap_or(0);
                message.push_str(&format!(": {text} ({code})"));
            }
            return Err(ConfigError::plain(message));
        }
        Ok(())
    }

    /// An error's lines, then php-fpm's last one.
    fn failed(e: ConfigError) -> Vec<Notice> {
        let mut lines = vec![Notice::new(e.level, e.located())];
        let context = e.context.iter().map(|l| Notice::new(Level::Error, l));
        lines.extend(context);
        lines.push(Notice::new(Level::Error, "FPM initialization failed"));
        lines
    }

    /// At `-tt` the dump (with -F/-D and -g applied, as tfpm runs), then
    /// the success line (php-fpm's ends with a blank line).
    fn passed(cli: &Cli, path: &std::path::Path, mut config: config::Config) -> Vec<Notice> {
        if cli.nodaemonize || cli.daemonize {
            config.global.daemonize = cli.daemonize;
        }
        if let Some(pid) = &cli.pid_file {
            config.global.pid = Some(pid.display().to_string());
        }
        let mut lines = Vec::new();
        if cli.test > 1 {
            let dump = config::dump(&config).into_iter();
            lines.extend(dump.map(|line| Notice::new(Level::Notice, line)));
        }
        let done = format!("configuration file {} test is successful\n", path.display());
        lines.push(Notice::new(Level::Notice, done));
        lines
    }

    let mut parsed = match config::directives::parse(path, &cli.read_options()) {
        Ok(parsed) => parsed,
        Err(e) => return (failed(e), false),
    };
    let mut lines = std::mem::take(&mut parsed.notices);
    let at_least = parsed.global.log_level;
    let root_rule = os::is_root() && !cli.allow_root;
    let post = parsed
        .pools
        .iter()
        .filter(|_| root_rule)
        .try_for_each(user_defined);
    let checked = post
        .and_then(|()| config::validate::validate(&mut parsed))
        .map_err(|e| {
            e.then(ConfigError::plain(
                "failed to post process the configuration",
            ))
        })
        .and_then(|()| parsed.pools.iter().try_for_each(names_exist));
    let mut logged = std::mem::take(&mut parsed.notices);
    let ok = checked.is_ok();
    logged.extend(match checked {
        Ok(()) => passed(cli, path, parsed),
        Err(e) => failed(e),
    });
    let level = |n: &Notice| match n.level {
        Level::Notice => LogLevel::Notice,
        Level::Warning => LogLevel::Warning,
        Level::Error => LogLevel::Error,
        Level::Alert => LogLevel::Alert,
    };
    lines.extend(logged.into_iter().filter(|n| level(n) >= at_least));
    (lines, ok)
}
