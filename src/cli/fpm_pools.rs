//! The pools of a php-fpm config as the master runs them: their sockets
//! (kept across a reload where they still fit), their workers' output and
//! logs, and the master's settings; re-read for each reload.

use std::path::PathBuf;
use std::time::Duration;

use super::{serve_master, Cli, STARTUP};
use crate::config;
use crate::error::Error;
use crate::exit_code;
use crate::php::{AccessLog, RequestLogs, Slowlog, StderrLog};
use crate::process;
use crate::process::master::{MasterConfig, Output, PoolProcs, Reread};
use crate::server::pools::PoolRun;
use crate::server::{self, Listener};

/// A pool's access log and slowlog, their files opened (created if need
/// be, 0600, appending) as php-fpm's master opens them; Err is php-fpm's
/// message. A worker opens them before it leaves root, and `keep`s them
/// for SIGUSR1 to reopen.
pub(super) fn pool_logs(
    cli: &Cli,
    loaded: &config::Config,
    pool: &PoolRun,
    keep: bool,
) -> Result<RequestLogs, String> {
    let base = cli
        .prefix
        .clone()
        .or_else(|| {
            cli.fpm_config
                .as_deref()
                .and_then(std::path::Path::parent)
                .map(PathBuf::from)
        })
        .unwrap_or_default();
    let open = |file: &str| {
        let path = pool.path(&base, file);
        if let Some(stderr) = process::logfile::stderr_instead(&path) {
            return Ok(std::sync::Arc::new(stderr));
        }
        let opened = process::logfile::append_private(&path).map(std::sync::Arc::new);
        if let (Ok(file), true) = (&opened, keep) {
            process::logfile::reopen_in_place(&path, file.clone());
        }
        opened.map_err(|e| (path, e))
    };
    let access = match &pool.access_log {
        Some((file, format)) => Some(std::sync::Arc::new(AccessLog {
            file: open(file).map_err(|(path, e)| {
                format!("failed to open access log ({}): {e}", path.display())
            })?,
            format: format.clone(),
            suppress: pool.access_suppress.clone(),
            pool: pool.name.clone(),
        })),
        None => None,
    };
    let slowlog = match &pool.slowlog {
        Some((file, after, depth)) => Some(Slowlog {
            file: open(file).map_err(|(path, e)| {
                format!("Unable to create or open slowlog({}): {e}", path.display())
            })?,
            after: *after,
            depth: *depth,
            micros: loaded.global.log_level == config::LogLevel::Debug,
        }),
        None => None,
    };
    Ok(RequestLogs {
        pool: pool.name.clone(),
        access,
        slowlog,
        stderr: Some(StderrLog {
            limit: loaded.global.log_limit.max(1) as usize,
            level: loaded.global.log_level <= config::LogLevel::Notice,
            flush: pool.catch_output,
        }),
    })
}

/// `process_control_timeout` from the config when set, else the command line's.
pub(super) fn drain_time(cli: &Cli, loaded: &config::Config) -> Duration {
    match loaded.global.process_control_timeout {
        n if n > 0 => Duration::from_secs(n as u64),
        _ => cli.process_control_timeout,
    }
}

/// The master of a php-fpm config: one pool of workers per section.
pub(super) async fn run_config_master(cli: &Cli, path: &std::path::Path) -> Result<i32, Error> {
    let loaded = match super::startup_config::read(cli, path) {
        Ok(loaded) => loaded,
        Err(e) => {
            // As php-fpm prints it, its own lines on stderr.
            eprintln!("{e}\nERROR: FPM initialization failed");
            return Ok(exit_code::CONFIG);
        }
    };
    if let Some(n) = loaded.global.rlimit_files.filter(|&n| n > 0) {
        if let Err(e) = crate::sys::os::set_open_files_limit(n as u64) {
            return Err(Error::Config(format!(
                "failed to set rlimit_files for this pool. Please check your system limits or \
                 decrease rlimit_files. setrlimit(RLIMIT_NOFILE, {n}): {e}\n\
                 ERROR: FPM initialization failed"
            )));
        }
    }
    // Sockets systemd passed (tfpm.socket) serve the pools that listen
    // where they do; the pools' other addresses are bound as usual.
    let activated: Vec<std::sync::Arc<Listener>> = match process::systemd::activated_listeners() {
        Ok(listeners) => listeners
            .into_iter()
            .inspect(|l| tracing::info!(target: STARTUP, "systemd passed {}", l.addr()))
            .map(std::sync::Arc::new)
            .collect(),
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot use the sockets systemd passed: {e}\nERROR: FPM initialization failed"
            )));
        }
    };
    if let Some(notice) = cli
        .debian_ini_dir()
        .and_then(|dir| super::debian_ini::skipped_notice(&dir.join("conf.d")))
    {
        tracing::warn!("{notice}");
    }
    let passed = activated.clone();
    let (master, pools) = match config_pools(cli, &loaded, activated).await {
        Ok(plan) => plan,
        Err(e) => {
            return Err(Error::Config(format!(
                "{e}\nERROR: FPM initialization failed"
            )));
        }
    };
    for unused in passed.iter().filter(|l| {
        !pools
            .iter()
            .any(|p| p.listeners.iter().any(|m| std::sync::Arc::ptr_eq(l, m)))
    }) {
        tracing::warn!(
            "systemd passed {}, but no pool listens there: it is closed",
            unused.addr()
        );
    }
    // A relative `pid` is under the prefix (-p), as php-fpm has it, or
    // else next to the config, as tfpm's error_log.
    let base = cli
        .prefix
        .clone()
        .or_else(|| path.parent().map(PathBuf::from));
    let pid_file = cli.pid_file.clone().or(loaded
        .global
        .pid
        .as_ref()
        .map(|pid| base.unwrap_or_default().join(pid)));
    let reread = reread_config(cli.clone(), path.to_path_buf());
    serve_master(cli, master, pools, Some(reread), pid_file).await
}

/// How a reload reads the php-fpm config again (see [`config_pools`]).
fn reread_config(cli: Cli, path: PathBuf) -> Reread {
    let cli = std::sync::Arc::new(cli);
    Box::new(move |held| {
        let (cli, path) = (cli.clone(), path.clone());
        Box::pin(async move {
            let loaded = config::load(&path, &cli.read_options()).map_err(|e| e.to_string())?;
            config_pools(&cli, &loaded, held).await
        })
    })
}

/// The master's settings and pools of a loaded config, after logging its
/// notices. A pool that listens where one of the `held` sockets does
/// keeps it (a reload); the others are bound. Err is php-fpm's message.
async fn config_pools(
    cli: &Cli,
    loaded: &config::Config,
    held: Vec<std::sync::Arc<Listener>>,
) -> Result<(MasterConfig, Vec<PoolProcs>), String> {
    for notice in &loaded.notices {
        match notice.level {
            config::Level::Notice => tracing::info!("{}", notice.message),
            config::Level::Warning => tracing::warn!("{}", notice.message),
            config::Level::Error | config::Level::Alert => tracing::error!("{}", notice.message),
        }
    }
    let runs = server::pools::from_config(loaded, cli.allow_root)?;
    if let Some(e) = runs
        .iter()
        .find_map(|run| pool_logs(cli, loaded, run, false).err())
    {
        return Err(e);
    }
    let mut pools = Vec::new();
    for run in &runs {
        let mut listeners = Vec::new();
        for addr in std::iter::once(&run.listen).chain(&run.status_listen) {
            let listener = match held.iter().find(|l| l.serves(addr)) {
                Some(kept) => kept.clone(),
                None => std::sync::Arc::new(run.bind_at(addr).await.map_err(|e| {
                    format!(
                        "unable to bind listening socket for address '{}': {}",
                        addr.as_configured(),
                        os_error(&e)
                    )
                })?),
            };
            tracing::info!(target: STARTUP, pool = %run.name, pm = run.scaling.pm().name(), threads = run.threads, "listening on {}", listener.addr());
            listeners.push(listener);
        }
        pools.push(PoolProcs {
            name: run.name.clone(),
            threads: run.threads,
            workers: cli.workers as usize,
            listeners,
            output: worker_output(&loaded.global, run),
            lazy: run.scaling.pm() == config::Pm::Ondemand,
        });
    }
    let master = MasterConfig {
        process_control_timeout: drain_time(cli, loaded),
        emergency_restart_threshold: match loaded.global.emergency_restart_threshold {
            n if n > 0 => n as usize,
            _ => cli.emergency_restart_threshold,
        },
        emergency_restart_interval: match loaded.global.emergency_restart_interval {
            n if n > 0 => Duration::from_secs(n as u64),
            _ => cli.emergency_restart_interval,
        },
    };
    Ok((master, pools))
}

/// An error as php-fpm words a failed system call: `Address already in
/// use (98)`.
fn os_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.find(" (os error")) {
        (Some(code), Some(at)) => format!("{} ({code})", &text[..at]),
        _ => text,
    }
}

/// What becomes of a config pool's worker output: relayed into the log
/// with `catch_workers_output`, else thrown away, as php-fpm does.
fn worker_output(global: &config::Global, run: &PoolRun) -> Output {
    if !run.catch_output {
        return Output::Discard;
    }
    Output::Catch(process::relay::Style {
        pool: run.name.clone(),
        // php-fpm writes no prefix when its log level hides warnings.
        decorate: run.decorate_output && global.log_level <= config::LogLevel::Warning,
        limit: global.log_limit.max(1) as usize,
        buffering: global.log_buffering,
        micros: global.log_level == config::LogLevel::Debug,
    })
}
