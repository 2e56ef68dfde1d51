//! How php-fpm reads a directive's value (fpm_conf.c's setters): integers
//! as atoi does, times with their unit suffixes, booleans, log levels,
//! `pm`, `rlimit_core`, syslog facilities, and `$pool`.

use super::directives::{LogLevel, Pm};

/// Replaces `$pool` with the pool's name; an error outside a pool.
pub fn expand_pool(value: &str, pool: Option<&str>) -> Result<String, String> {
    if !value.contains("$pool") {
        return Ok(value.to_string());
    }
    match pool {
        Some(name) => Ok(value.replace("$pool", name)),
        None => Err("Can't use '$pool' when the pool is not defined".to_string()),
    }
}

/// fpm_conf_set_integer: optional leading `-`, then digits, read like atoi.
pub fn parse_int(value: &str) -> Result<i32, String> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a valid number (greater or equal than zero)".to_string());
    }
    Ok(atoi(value))
}

/// C's atoi: leading blanks, a sign, then digits up to the first non-digit.
fn atoi(s: &str) -> i32 {
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |n, b| {
            (n * 10 + i64::from(b - b'0')).min(i64::from(u32::MAX))
        });
    let n = if neg { -n } else { n };
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// fpm_conf_set_time: `N`, `Ns`, `Nm`, `Nh` or `Nd`, in seconds.
pub fn parse_time(value: &str) -> Result<i32, String> {
    let Some(last) = value.chars().last() else {
        return Err("invalid time value".to_string());
    };
    let body = &value[..value.len() - last.len_utf8()];
    let scale = match last {
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        's' => 1,
        '0'..='9' => return Ok(atoi(value)),
        _ => return Err("unknown suffix used in time value".to_string()),
    };
    Ok(atoi(body).saturating_mul(scale))
}

/// fpm_conf_set_boolean, on a value the INI layer already turned `yes/on/true`
/// into `1` and `no/off/false/none` into ``.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "" | "0" | "no" | "none" | "false" | "off" => Ok(false),
        _ => Err("invalid boolean value".to_string()),
    }
}

pub(super) fn parse_log_level(value: &str) -> Result<LogLevel, String> {
    match value.to_ascii_lowercase().as_str() {
        "debug" => Ok(LogLevel::Debug),
        "notice" => Ok(LogLevel::Notice),
        "warning" | "warn" => Ok(LogLevel::Warning),
        "error" => Ok(LogLevel::Error),
        "alert" => Ok(LogLevel::Alert),
        _ => Err("invalid value for 'log_level'".to_string()),
    }
}

pub(super) fn parse_pm(value: &str) -> Result<Pm, String> {
    match value.to_ascii_lowercase().as_str() {
        "static" => Ok(Pm::Static),
        "dynamic" => Ok(Pm::Dynamic),
        "ondemand" => Ok(Pm::Ondemand),
        _ => Err("invalid process manager (static, dynamic or ondemand)".to_string()),
    }
}

pub(super) fn parse_rlimit_core(value: &str) -> Result<i32, String> {
    if value.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    match parse_int(value)? {
        n if n < 0 => Err("must be greater than zero or 'unlimited'".to_string()),
        n => Ok(n),
    }
}

const FACILITIES: &[&str] = &[
    "AUTH", "AUTHPRIV", "CRON", "DAEMON", "FTP", "KERN", "LPR", "MAIL", "NEWS", "SYSLOG", "USER",
    "UUCP", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7",
];

pub(super) fn parse_facility(value: &str) -> Result<(), String> {
    match FACILITIES.iter().any(|f| f.eq_ignore_ascii_case(value)) {
        true => Ok(()),
        false => Err("invalid value".to_string()),
    }
}
