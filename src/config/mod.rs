//! The php-fpm configuration: reading `php-fpm.conf` (and what it includes)
//! into a typed [`Config`], with php-fpm's defaults, checks and messages.
//!
//! - [`ini`]: the INI dialect (lines, quoting, comments, `${ENV}`, `include=` globs).
//! - [`access_format`]: `access.format`, parsed and rendered as php-fpm does.
//! - [`directives`]: every directive php-fpm knows, typed values, `$pool`,
//!   and the post-parse validation php-fpm does.
//! - [`dump`](mod@dump): a checked config as `php-fpm -tt` prints it.
//! - [`worker`]: tfpm's own worker mode directives (`worker`, `worker.*`).
//!
//! Errors carry the file, line and directive and print like php-fpm's
//! (`ERROR: [/etc/php/8.2/fpm/pool.d/www.conf:12] unknown entry 'foo'`).
//! Directives tfpm accepts but cannot honour come back as warnings in
//! [`Config::notices`], never as errors. Nothing here depends on PHP.
//!
//! It imports nothing from the rest of the crate.

pub mod access_format;
pub mod directives;
pub mod dump;
pub mod ini;
#[cfg(test)]
mod tests;
pub mod validate;
mod value;
pub mod worker;

use std::fmt;
use std::path::Path;

pub use directives::{Config, Global, LogLevel, Pm, Pool};
pub use dump::dump;
pub use ini::ReadOptions;

/// A zlog level, as php-fpm prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `NOTICE`: for information, e.g. a default filled in.
    Notice,
    /// `WARNING`: e.g. a directive tfpm accepts but ignores.
    Warning,
    /// `ERROR`: most config errors.
    Error,
    /// `ALERT`: php-fpm's post-parse checks of a pool.
    Alert,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Alert => "ALERT",
        })
    }
}

/// A message that is not an error: unsupported directives, includes that
/// match nothing, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// How php-fpm would log it.
    pub level: Level,
    /// The text, without the level.
    pub message: String,
}

impl Notice {
    /// A notice at `level`.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Notice {
            level,
            message: message.into(),
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.level, self.message)
    }
}

/// A config error: where (when php-fpm says where), which directive, and
/// php-fpm's message. `context` holds the follow-up lines php-fpm prints
/// (`Unable to include ... from ... at line N`), innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The level of its first line: ERROR unless made otherwise.
    pub level: Level,
    /// The file the faulty line is in; None when php-fpm names no place.
    pub file: Option<std::path::PathBuf>,
    /// The faulty line's number (from 1), with `file`.
    pub line: Option<usize>,
    /// The directive the error is about, when there is one.
    pub directive: Option<String>,
    /// php-fpm's message, without the level and place.
    pub message: String,
    /// The lines printed after the message, each as `ERROR: line`.
    pub context: Vec<String>,
}

impl ConfigError {
    /// An error with no position (post-parse checks, I/O).
    pub fn plain(message: impl Into<String>) -> Self {
        ConfigError {
            level: Level::Error,
            file: None,
            line: None,
            directive: None,
            message: message.into(),
            context: Vec::new(),
        }
    }

    /// An error at a line of a file.
    pub fn at(src: &ini::Source, directive: Option<&str>, message: impl Into<String>) -> Self {
        ConfigError {
            file: Some(src.file.clone()),
            line: Some(src.line),
            directive: directive.map(str::to_string),
            ..ConfigError::plain(message)
        }
    }

    /// A post-parse check failure, which php-fpm logs as ALERT.
    pub fn alert(message: impl Into<String>) -> Self {
        ConfigError {
            level: Level::Alert,
            ..ConfigError::plain(message)
        }
    }

    /// Adds the next line php-fpm prints after this one.
    pub fn then(mut self, next: ConfigError) -> Self {
        self.context.push(next.message);
        self
    }

    /// The message with its `[file:line] ` part, without the level.
    pub fn located(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("[{}:{}] {}", file.display(), line, self.message),
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.level, self.located())?;
        for line in &self.context {
            write!(f, "\nERROR: {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks a php-fpm config file, as `php-fpm -y path` does.
pub fn load(path: &Path, opts: &ReadOptions) -> Result<Config, ConfigError> {
    directives::load(path, opts)
}
