//! php-fpm's checks of a parsed configuration (`fpm_conf_post_process`
//! and friends), in its order and with its messages: limits, the dynamic
//! process manager's numbers, paths, the slowlog, unique listen addresses
//! and access log formats.

use std::path::PathBuf;

use super::access_format::{AccessFormat, DEFAULT_FORMAT};
use super::directives::{Config, Pm, Pool};
use super::{ConfigError, Level, Notice};

/// php-fpm's post-parse checks (fpm_conf_post_process and friends), in its order.
pub fn validate(config: &mut Config) -> Result<(), ConfigError> {
    if config.global.log_limit < 512 {
        return Err(ConfigError::plain("log_limit must be greater than 512"));
    }
    if config.pools.is_empty() {
        return Err(ConfigError::plain(
            "No pool defined. at least one pool section must be specified in config file",
        ));
    }
    for pool in &mut config.pools {
        validate_pool(pool, &mut config.notices)?;
    }
    unique_listen(&config.pools)?;
    config.pools.iter().try_for_each(access_format)
}

/// A pool with `access.log` has a format php-fpm accepts (the default when
/// none is set).
fn access_format(p: &Pool) -> Result<(), ConfigError> {
    if p.access_log.as_deref().unwrap_or("").is_empty() {
        return Ok(());
    }
    let format = p.access_format.as_deref().unwrap_or(DEFAULT_FORMAT);
    AccessFormat::parse(format).map(drop).map_err(|why| {
        let wrong = format!(
            "[pool {}] wrong format for access.format '{format}'",
            p.name
        );
        ConfigError {
            level: Level::Warning,
            ..ConfigError::plain(why)
        }
        .then(ConfigError::plain(wrong))
    })
}

fn validate_pool(p: &mut Pool, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
    let name = p.name.clone();
    let alert = |msg: String| Err(ConfigError::alert(format!("[pool {name}] {msg}")));
    if p.listen.as_deref().unwrap_or("").is_empty() {
        return alert("no listen address have been defined!".into());
    }
    let Some(pm) = p.pm else {
        return alert("the process manager is missing (static, dynamic or ondemand)".into());
    };
    if p.pm_max_children < 1 {
        return alert("pm.max_children must be a positive value".into());
    }
    p.worker.check(&name).map_err(ConfigError::alert)?;
    match pm {
        Pm::Dynamic => dynamic(p, notices)?,
        Pm::Ondemand if p.pm_process_idle_timeout < 1 => {
            return alert(format!(
                "pm.process_idle_timeout({}s) must be greater than 0s",
                p.pm_process_idle_timeout
            ))
        }
        _ => {}
    }
    paths(p)?;
    slowlog(p)?;
    trace_depth(p)
}

/// `request_slowlog_trace_depth`: needs `slowlog`, positive; 20 by default.
fn trace_depth(p: &mut Pool) -> Result<(), ConfigError> {
    let error = |msg: String| Err(ConfigError::plain(format!("[pool {}] {msg}", p.name)));
    let depth = p.request_slowlog_trace_depth;
    if depth == 0 {
        p.request_slowlog_trace_depth = 20;
        return Ok(());
    }
    if p.slowlog.as_deref().unwrap_or("").is_empty() {
        return error(
            "'slowlog' must be specified for use with 'request_slowlog_trace_depth'".into(),
        );
    }
    if depth < 0 {
        return error(format!(
            "'request_slowlog_trace_depth' ({depth}) must be a positive value"
        ));
    }
    Ok(())
}

fn dynamic(p: &mut Pool, notices: &mut Vec<Notice>) -> Result<(), ConfigError> {
    let (min, max, children) = (
        p.pm_min_spare_servers,
        p.pm_max_spare_servers,
        p.pm_max_children,
    );
    let name = p.name.clone();
    let alert = |msg: String| Err(ConfigError::alert(format!("[pool {name}] {msg}")));
    if min <= 0 {
        return alert(format!(
            "pm.min_spare_servers({min}) must be a positive value"
        ));
    }
    if max <= 0 {
        return alert(format!(
            "pm.max_spare_servers({max}) must be a positive value"
        ));
    }
    if min > children || max > children {
        return alert(format!("pm.min_spare_servers({min}) and pm.max_spare_servers({max}) cannot be greater than pm.max_children({children})"));
    }
    if max < min {
        return alert(format!(
            "pm.max_spare_servers({max}) must not be less than pm.min_spare_servers({min})"
        ));
    }
    let start = p.pm_start_servers;
    if start <= 0 {
        p.pm_start_servers = min + (max - min) / 2;
        let msg = format!(
            "[pool {name}] pm.start_servers is not set. It's been set to {}.",
            p.pm_start_servers
        );
        notices.push(Notice::new(Level::Notice, msg));
    } else if start < min || start > max {
        return alert(format!("pm.start_servers({start}) must not be less than pm.min_spare_servers({min}) and not greater than pm.max_spare_servers({max})"));
    }
    Ok(())
}

/// `pm.status_path`, `ping.path`, `ping.response` and `chdir`.
fn paths(p: &Pool) -> Result<(), ConfigError> {
    let error = |msg: String| Err(ConfigError::plain(format!("[pool {}] {msg}", p.name)));
    for (what, path) in [("status", &p.pm_status_path), ("ping", &p.ping_path)] {
        let Some(path) = path else { continue };
        if !path.starts_with('/') {
            return error(format!("the {what} path '{path}' must start with a '/'"));
        }
        if path.len() < 2 {
            return error(format!("the {what} path '{path}' is not long enough"));
        }
        if !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        {
            return error(format!(
                "the {what} path '{path}' must contain only the following characters '[alphanum]/_-.~'"
            ));
        }
    }
    if p.ping_path.is_some() && p.ping_response.is_empty() {
        return error("the ping response page '' is not long enough".into());
    }
    if let Some(dir) = &p.chdir {
        if !dir.starts_with('/') {
            return error(format!("the chdir path '{dir}' must start with a '/'"));
        }
        if !PathBuf::from(dir).is_dir() {
            return error(format!(
                "the chdir path '{dir}' does not exist or is not a directory"
            ));
        }
    }
    Ok(())
}

fn slowlog(p: &Pool) -> Result<(), ConfigError> {
    let error = |msg: String| Err(ConfigError::plain(format!("[pool {}] {msg}", p.name)));
    if p.request_slowlog_timeout <= 0 {
        return Ok(());
    }
    if p.slowlog.as_deref().unwrap_or("").is_empty() {
        return error("'slowlog' must be specified for use with 'request_slowlog_timeout'".into());
    }
    let (slow, term) = (p.request_slowlog_timeout, p.request_terminate_timeout);
    if term > 0 && slow > term {
        return error(format!(
            "'request_slowlog_timeout' ({slow}) can't be greater than 'request_terminate_timeout' ({term})"
        ));
    }
    Ok(())
}

fn unique_listen(pools: &[Pool]) -> Result<(), ConfigError> {
    for (i, first) in pools.iter().enumerate() {
        for later in &pools[i + 1..] {
            if first.listen.is_some() && first.listen == later.listen {
                return Err(ConfigError::plain(format!(
                    "[pool {}] unable to set listen address as it's already used in another pool '{}'",
                    later.name, first.name
                )));
            }
        }
    }
    Ok(())
}
