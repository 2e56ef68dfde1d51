//! Where the daemon's log goes and how it looks: stderr or php-fpm.conf's
//! `error_log`, php-fpm's line format or text or JSON, the level from the
//! command line or the config; and whether to go into the background, which
//! decides where the log goes.

use std::path::PathBuf;

use super::{Cli, STARTUP};
use crate::process;
use crate::{config, server};

/// Logs to stderr, without colours unless stderr is a terminal, or to the
/// php-fpm config's `error_log` file (appending) when it names one. A
/// worker whose stderr the master redirected logs to `stderr` instead: the
/// master's own stderr, passed down.
pub fn init_logging(cli: &Cli, inherited: Option<InheritedLog>) {
    use std::io::IsTerminal;
    let redirected = inherited.as_ref().is_some_and(|i| i.stderr.is_some());
    let to_file = inherited.as_ref().map(|i| i.to_file);
    if let Some(stderr) = inherited.and_then(|i| i.stderr) {
        process::logfile::set_stderr(stderr);
    }
    let (level, file) = config_logging(cli, to_file);
    let filter = match (std::env::var("RUST_LOG"), level) {
        (Ok(filter), _) => filter,
        (Err(_), Some(level)) if cli.log_level == "info" => level.to_string(),
        (Err(_), _) => cli.log_level.clone(),
    };
    let format = cli.log_format.unwrap_or(match cli.fpm_config {
        Some(_) => LogFormat::Fpm,
        None => LogFormat::Text,
    });
    let filter = match format {
        LogFormat::Fpm if !filter.contains("debug") && !filter.contains("trace") => {
            format!("{filter},{STARTUP}=warn")
        }
        _ => filter,
    };
    let colours = file.is_none() && !redirected && std::io::stderr().is_terminal();
    if let Some(file) = file {
        process::logfile::set_main(file);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(|| process::logfile::MainWriter);
    match format {
        LogFormat::Fpm => builder.event_format(server::fpmlog::FpmFormat).init(),
        LogFormat::Text => builder.with_ansi(colours).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// What a worker gets from its master about logging.
pub struct InheritedLog {
    /// The master's stderr, when the worker's own is redirected.
    pub stderr: Option<std::fs::File>,
    /// Whether the master logs to the error_log file.
    pub to_file: bool,
}

/// Whether to go into the background, as php-fpm decides: `-F` never,
/// `-D` always, else the config's `daemonize` (on by default) when one is
/// given, except under systemd (`NOTIFY_SOCKET`). Without a config (the
/// command-line mode) tfpm stays in the foreground unless `-D`.
pub fn wants_background(cli: &Cli) -> bool {
    if cli.nodaemonize || cli.test > 0 || cli.version || cli.modules || cli.info {
        return false;
    }
    if cli.daemonize {
        return true;
    }
    let Some(path) = cli.fpm_config.as_deref() else {
        return false;
    };
    let configured = super::startup_config::read(cli, path).is_ok_and(|c| c.global.daemonize);
    configured && std::env::var_os("NOTIFY_SOCKET").is_none()
}

/// The config's `log_level` (as a tracing filter) and `error_log` file,
/// when tfpm runs a php-fpm config. A config that does not load gives
/// nothing here: its errors are reported on stderr when it is used.
fn config_logging(
    cli: &Cli,
    to_file: Option<bool>,
) -> (
    Option<&'static str>,
    Option<std::sync::Arc<process::logfile::LogFile>>,
) {
    let Some(path) = cli.fpm_config.as_deref().filter(|_| cli.test == 0) else {
        return (None, None);
    };
    let Ok(loaded) = super::startup_config::read(cli, path) else {
        return (None, None);
    };
    let level = match loaded.global.log_level {
        config::LogLevel::Debug => "debug",
        config::LogLevel::Notice => "info",
        config::LogLevel::Warning => "warn",
        config::LogLevel::Error | config::LogLevel::Alert => "error",
    };
    // As php-fpm: the error_log is used when in the background, or when
    // stderr is no terminal and -O is not given; it is opened (created)
    // in any case. A worker does as its master.
    let use_file = to_file.unwrap_or_else(|| {
        use std::io::IsTerminal;
        wants_background(cli) || (!std::io::stderr().is_terminal() && !cli.force_stderr)
    });
    let file = loaded
        .global
        .error_log
        .as_deref()
        .filter(|l| *l != "syslog")
        .and_then(|log| {
            let base = cli
                .prefix
                .clone()
                .or_else(|| path.parent().map(PathBuf::from));
            let log = base.unwrap_or_default().join(log); // an absolute `log` wins
            if process::logfile::stderr_instead(&log).is_some() {
                return None; // a worker: the master's stderr, set above
            }
            let opened = process::logfile::LogFile::open(&log);
            opened
                .map_err(|e| eprintln!("tfpm: cannot open error_log {}: {e}", log.display()))
                .ok()
        })
        .filter(|_| use_file);
    (Some(level), file)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For log shippers: one JSON object per line.
    Json,
    /// As php-fpm writes its error_log: `[27-Nov-2026 08:00:00] NOTICE: ...`.
    Fpm,
}
