//! Command-line options and what they start: in the master, the listeners
//! (or systemd's) and the worker processes ([`process::master`]); in a
//! worker, PHP and the server ([`process::worker`]). `-t` and
//! `--bench-floor` (with the `bench` feature) run in-process and exit.
//!
//! It may import every other folder; nothing imports it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config;
use crate::error::Error;
use crate::exit_code;
use crate::fcgi::conn::{ConnConfig, Timeouts};
use crate::php::{Engine, EngineConfig, RequestLogs, RequestPolicy};
use crate::process;
use crate::process::master::{MasterConfig, Output, PoolProcs, Reread};
use crate::process::worker::{WorkerSettings, WorkerSpec};
use crate::server::pools::PoolRun;
use crate::server::status::StatusConfig;
use crate::server::{self, ListenAddr, Listener, ServerConfig};

mod config_test;
mod debian_ini;
mod fpm_pools;
mod logging;
mod startup_config;
mod worker_args;

pub use config_test::test_config;
use fpm_pools::{drain_time, pool_logs, run_config_master};
pub use logging::{init_logging, wants_background, InheritedLog, LogFormat};

/// tfpm: a FastCGI server for PHP, with threads instead of processes.
#[derive(Debug, Clone, Parser)]
#[command(name = "tfpm", about, disable_version_flag = true)]
pub struct Cli {
    /// Address to listen on: ADDR:PORT, [IPv6]:PORT, PORT, or /path/to.sock. Repeatable.
    /// Ignored when systemd passes sockets (socket activation).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: Vec<ListenAddr>,

    /// Number of PHP threads.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: u32,

    /// Directory scripts are found in when the web server sends no SCRIPT_FILENAME.
    #[arg(long, value_name = "DIR")]
    pub docroot: Option<PathBuf>,

    /// Look for php.ini in this file or directory.
    #[arg(short = 'c', long = "php-ini", value_name = "PATH")]
    pub php_ini: Option<PathBuf>,

    /// Use no php.ini file.
    #[arg(short = 'n', long = "no-php-ini")]
    pub no_php_ini: bool,

    /// Set an ini entry: -d key=value. Repeatable.
    #[arg(short = 'd', long = "define", value_name = "KEY=VALUE")]
    pub define: Vec<String>,

    /// Stack size of each PHP thread, in MiB (PHP 8.2 has no stack-overflow guard).
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub stack_size: usize,

    /// Requests that may wait for a free PHP thread before connections stall.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub queue: usize,

    /// Hard limit per request, as php-fpm's request_terminate_timeout: 30, 30s, 5m, 1h.
    /// The request ends with a fatal error even inside sleep() or a blocking read. 0 disables it.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "0")]
    pub request_terminate_timeout: Duration,

    /// Apply --request-terminate-timeout to PHP's request shutdown too (shutdown
    /// functions, destructors), as php-fpm's request_terminate_timeout_track_finished.
    #[arg(long)]
    pub request_terminate_timeout_track_finished: bool,

    /// Close a connection that has no request in flight after this long; longer than
    /// nginx's 60 s keepalive_timeout by default, so that nginx closes first. 0 never.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "75s")]
    pub idle_timeout: Duration,

    /// Let several requests share one connection (FCGI_MPXS_CONNS).
    #[arg(long)]
    pub multiplex: bool,

    /// Open connections at most (FCGI_MAX_CONNS); past it, new connections
    /// wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Requests in flight at most (FCGI_MAX_REQS), running or queued; past
    /// it a request gets OVERLOADED. Default: threads + queue.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<usize>,

    /// Close a connection that sends nothing for this long after accept. 0 never.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "10s")]
    pub first_byte_timeout: Duration,

    /// Answer 408 to a request whose PARAMS are not complete this long after
    /// its BEGIN_REQUEST. 0 never.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "30s")]
    pub params_timeout: Duration,

    /// Abort a request whose body stops arriving for this long. 0 never.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "75s")]
    pub stdin_timeout: Duration,

    /// Largest PARAMS stream of one request, in bytes; past it, a 431.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_params_bytes: usize,

    /// Most name-value pairs in one request's PARAMS; past it, a 431.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_params_pairs: usize,

    /// Worker processes, each running its share of the PHP threads. A
    /// worker that crashes costs only its own requests in flight; the
    /// master keeps the sockets open and starts a replacement.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,

    /// How long a graceful stop (SIGQUIT) or reload (SIGUSR2) lets requests
    /// in flight finish, as php-fpm's process_control_timeout.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "60s")]
    pub process_control_timeout: Duration,

    /// Worker crashes within --emergency-restart-interval that trigger an
    /// emergency reload of every worker, as php-fpm's
    /// emergency_restart_threshold. 0 disables it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub emergency_restart_threshold: usize,

    /// The window for --emergency-restart-threshold (php-fpm's
    /// emergency_restart_interval): 60, 60s, 1m.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "60s")]
    pub emergency_restart_interval: Duration,

    /// Benchmark floor: run this script --bench-requests times in-process (no
    /// FastCGI, no I/O), print the time per request as JSON, and exit.
    #[cfg(feature = "bench")]
    #[arg(long, value_name = "SCRIPT")]
    pub bench_floor: Option<PathBuf>,

    /// Requests for --bench-floor.
    #[cfg(feature = "bench")]
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub bench_requests: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR:PORT).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Log format: text, json for log shippers, or fpm (php-fpm's error_log
    /// lines). Default: fpm with a php-fpm config (-y), else text.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, as in RUST_LOG (e.g. info, debug, tfpm=trace).
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub log_level: String,

    /// Answer requests for this URI (SCRIPT_NAME) with --ping-response, as
    /// php-fpm's ping.path: a health check that needs no script.
    #[arg(long, value_name = "URI")]
    pub ping_path: Option<String>,

    /// Answer requests for this URI (SCRIPT_NAME) with the pool's status
    /// page, as php-fpm's pm.status_path (`?json`, `?xml`, `?html`,
    /// `?openmetrics`, `?full`).
    #[arg(long, value_name = "URI")]
    pub status_path: Option<String>,

    /// The text the ping page answers (php-fpm's ping.response).
    #[arg(long, value_name = "TEXT", default_value = "pong")]
    pub ping_response: String,

    /// php-fpm configuration file (php-fpm.conf): run its pools, each with
    /// its own listener, threads (pm.max_children), php values and user.
    /// --listen and --threads then do not apply.
    #[arg(short = 'y', long = "fpm-config", value_name = "FILE")]
    pub fpm_config: Option<PathBuf>,

    /// Stay in the foreground (php-fpm's -F), whatever the config's
    /// `daemonize` says.
    #[arg(short = 'F', long = "nodaemonize")]
    pub nodaemonize: bool,

    /// Go into the background once ready (php-fpm's -D), whatever the
    /// config's `daemonize` says.
    #[arg(short = 'D', long = "daemonize")]
    pub daemonize: bool,

    /// Allow pools to run as root (php-fpm's -R).
    #[arg(short = 'R', long = "allow-to-run-as-root")]
    pub allow_root: bool,

    /// Prefix for relative paths in the php-fpm config (php-fpm's -p).
    #[arg(short = 'p', long = "prefix", value_name = "DIR")]
    pub prefix: Option<PathBuf>,

    /// Write the master's process id here (php-fpm's -g; overrides `pid`).
    #[arg(short = 'g', long = "pid", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Print the PHP version, as php-fpm -v, and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    /// Print the compiled-in modules, as php-fpm -m, and exit.
    #[arg(short = 'm', long = "modules")]
    pub modules: bool,

    /// Print PHP information (phpinfo()), as php-fpm -i, and exit.
    #[arg(short = 'i', long = "info")]
    pub info: bool,

    /// Check the php-fpm configuration given with -y and exit, as `php-fpm -t`:
    /// 0 if it is valid, 78 if not. Twice (`-tt`) also prints the whole
    /// configuration, as php-fpm's "test and dump".
    #[arg(short = 't', long = "test", requires = "fpm_config", action = clap::ArgAction::Count)]
    pub test: u8,

    /// Log to stderr even when the config names an error_log (php-fpm's -O).
    #[arg(short = 'O', long = "force-stderr")]
    pub force_stderr: bool,

    /// Set by the master when it starts a worker (see `process::worker`).
    #[arg(long = "worker-spec", hide = true)]
    pub worker_spec: Option<String>,

    /// Worker mode: `--worker` and its options.
    #[command(flatten)]
    pub worker_mode: worker_args::WorkerArgs,
}

impl Cli {
    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            ini_path: self.php_ini.clone(),
            ignore_ini: self.no_php_ini,
            ini_entries: self.define.iter().map(|d| split_define(d)).collect(),
            locked_ini: Vec::new(),
            threads: self.threads as usize,
            stack_size: self.stack_size.max(1) * 1024 * 1024,
            queue_len: self.share(self.queue),
            policy: RequestPolicy {
                docroot: self.docroot.clone(),
                ping: self
                    .ping_path
                    .clone()
                    .map(|path| (path, self.ping_response.clone())),
                ..RequestPolicy::default()
            },
            terminate_after: Some(self.request_terminate_timeout).filter(|d| !d.is_zero()),
            terminate_track_finished: self.request_terminate_timeout_track_finished,
            scoreboard: None,
            report_fd: None,
            worker: self.worker_mode.script(self.threads),
            max_requests: None,
            scaling: crate::php::scaling::Scaling::Static,
            logs: RequestLogs {
                pool: "www".into(),
                ..RequestLogs::default()
            },
        }
    }

    /// The engine settings of a worker of config pool `pool`: the command
    /// line's, then the pool's values on top. Without `-c`, php.ini is the
    /// one next to the php-fpm config (Debian's layout: /etc/php/8.2/fpm/),
    /// and its conf.d/ gives the opcache settings (see [`debian_ini`]).
    fn pool_engine_config(&self, pool: &PoolRun) -> EngineConfig {
        let mut config = self.engine_config();
        if let Some(dir) = self.debian_ini_dir() {
            config.ini_path = Some(dir.join("php.ini"));
            let mut entries = debian_ini::opcache_entries(&dir.join("conf.d"));
            entries.append(&mut config.ini_entries);
            config.ini_entries = entries;
        }
        config.ini_entries.extend(pool.ini.iter().cloned());
        config.locked_ini = pool.admin_keys.clone();
        config.policy.limit_extensions = pool.limit_extensions.clone();
        config.policy.ping = pool.ping.clone();
        config.terminate_after = pool.terminate_after.or(config.terminate_after);
        config.terminate_track_finished |= pool.terminate_track_finished;
        config.max_requests = pool.max_requests;
        config.scaling = pool.scaling;
        config.worker = pool.worker.clone();
        config
    }

    /// The directory of php-fpm.conf when its php.ini is the one to read:
    /// `-y` without `-c` or `-n`, and a php.ini next to the config
    /// (Debian's layout: /etc/php/8.2/fpm/).
    fn debian_ini_dir(&self) -> Option<&std::path::Path> {
        let dir = self.fpm_config.as_deref()?.parent()?;
        let applies = self.php_ini.is_none() && !self.no_php_ini;
        (applies && dir.join("php.ini").is_file()).then_some(dir)
    }

    fn read_options(&self) -> config::ReadOptions {
        config::ReadOptions {
            prefix: self.prefix.clone(),
            ..config::ReadOptions::default()
        }
    }

    /// This worker process's share of a daemon-wide limit `n`: the
    /// `--workers` of a pool split it between them.
    fn share(&self, n: usize) -> usize {
        n.div_ceil(self.workers.max(1) as usize)
    }

    /// The server settings of a worker with `threads` of its pool's `total`
    /// PHP threads. The connection and request limits hold for the whole
    /// pool, as FCGI_MAX_CONNS and FCGI_MAX_REQS advertise them: each
    /// worker enforces its share.
    fn server_config(&self, threads: usize, total: usize) -> ServerConfig {
        let nonzero = |d: Duration| Some(d).filter(|d| !d.is_zero());
        let advertised = self.max_requests.unwrap_or(total + self.queue);
        let max_requests = match self.max_requests {
            Some(n) => self.share(n),
            None => threads + self.share(self.queue),
        };
        ServerConfig {
            conn: ConnConfig {
                max_reqs: advertised,
                mpxs_conns: self.multiplex,
                max_conns: self.max_connections as usize,
                max_params_bytes: self.max_params_bytes,
                max_params_pairs: self.max_params_pairs,
            },
            conn_slots: self.share(self.max_connections as usize),
            max_requests,
            timeouts: Timeouts {
                first_byte: nonzero(self.first_byte_timeout),
                params: nonzero(self.params_timeout),
                stdin: nonzero(self.stdin_timeout),
                idle: nonzero(self.idle_timeout),
            },
            allowed_clients: None,
            status: None,
            env: Default::default(),
        }
    }
}

/// A time as php-fpm writes it: seconds, or a number with s, m, h or d.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = digits.parse().map_err(|_| format!("invalid time {s:?}"))?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86400,
        _ => return Err(format!("invalid time unit in {s:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// `key=value`, or `key` alone meaning `key=1`, as php -d does.
fn split_define(d: &str) -> (String, String) {
    match d.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), v.to_string()),
        None => (d.trim().to_string(), "1".to_string()),
    }
}

/// A command line tfpm cannot read: `--help` and friends print as clap
/// prints them; anything else starts with php-fpm's `Usage:` line and
/// exits with its code, 64 (EX_USAGE).
pub fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    eprintln!(
        "Usage: tfpm [-n] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]] [--listen ADDR] [--threads N] (tfpm --help lists every option)\n\n{e}"
    );
    std::process::exit(exit_code::USAGE)
}

pub use crate::server::STARTUP;

/// Runs the daemon to completion (the master, or a worker when the master
/// started this process with a `worker` spec); returns the exit code.
pub async fn run(cli: Cli, worker: Option<Result<WorkerSpec, String>>) -> i32 {
    match start(cli, worker).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            e.exit_code()
        }
    }
}

/// What `run` runs; an error it returns is logged there.
async fn start(cli: Cli, worker: Option<Result<WorkerSpec, String>>) -> Result<i32, Error> {
    let (major, minor) = crate::php::php_branch();
    crate::config::ini::use_php_version(major, minor);
    if cli.modules || cli.info || cli.version {
        return Ok(print_info(&cli));
    }
    if cli.test > 0 {
        return match &cli.fpm_config {
            Some(path) => Ok(test_config(&cli, path)),
            None => Err(Error::Usage("-t needs a configuration: -y FILE".into())),
        };
    }
    #[cfg(feature = "bench")]
    if let Some(script) = &cli.bench_floor {
        return bench_floor(&cli, script);
    }
    match worker {
        Some(Ok(spec)) => {
            let settings = worker_settings(&cli, &spec).map_err(Error::Config)?;
            Ok(process::worker::run(spec, settings).await)
        }
        Some(Err(e)) => Err(Error::Os(format!("bad worker spec from the master: {e}"))),
        None => run_master(cli).await,
    }
}

/// What a worker runs: the command line's pool, or its pool of the config.
fn worker_settings(cli: &Cli, spec: &WorkerSpec) -> Result<WorkerSettings, String> {
    let Some(path) = &cli.fpm_config else {
        let mut engine = cli.engine_config();
        worker_args::share_threads(&mut engine, spec.threads, cli.threads as usize);
        return Ok(WorkerSettings {
            engine,
            server: cli.server_config(spec.threads, cli.threads as usize),
            drain: cli.process_control_timeout,
            user: None,
            chdir: None,
            status: cli.status_path.clone().map(|path| StatusConfig {
                path,
                pool: "www".into(),
                pm: config::Pm::Static,
                queue_capacity: cli.queue as u64,
            }),
        });
    };
    let loaded = startup_config::read(cli, path).map_err(|e| e.to_string())?;
    let pools = server::pools::from_config(&loaded, cli.allow_root)?;
    let pool = pools.get(spec.pool).ok_or("the config has changed")?;
    let mut server = cli.server_config(spec.threads, pool.threads);
    server.allowed_clients = pool.allowed_clients.clone();
    let bytes = |s: &String| bytes::Bytes::copy_from_slice(s.as_bytes());
    server.env = std::sync::Arc::new(pool.env.iter().map(|(k, v)| (bytes(k), bytes(v))).collect());
    let mut engine = cli.pool_engine_config(pool);
    engine.logs = pool_logs(cli, &loaded, pool, true)?;
    worker_args::share_threads(&mut engine, spec.threads, pool.threads);
    Ok(WorkerSettings {
        engine,
        server,
        drain: drain_time(cli, &loaded),
        user: pool.user.clone(),
        chdir: pool.chdir.clone(),
        status: pool.status_path.clone().map(|path| StatusConfig {
            path,
            pool: pool.name.clone(),
            pm: pool.scaling.pm(),
            queue_capacity: cli.queue as u64,
        }),
    })
}

/// The master: binds the sockets, then starts and watches the workers.
async fn run_master(cli: Cli) -> Result<i32, Error> {
    if let Some(path) = cli.fpm_config.clone() {
        return run_config_master(&cli, &path).await;
    }
    if cli.workers > cli.threads {
        return Err(Error::Config(format!(
            "--workers {} is more than --threads {}: each worker needs a thread",
            cli.workers, cli.threads
        )));
    }
    let listeners = bind_listeners(&cli.listen).await?;
    let config = MasterConfig {
        process_control_timeout: cli.process_control_timeout,
        emergency_restart_threshold: cli.emergency_restart_threshold,
        emergency_restart_interval: cli.emergency_restart_interval,
    };
    let pool = PoolProcs {
        name: "www".into(),
        threads: cli.threads as usize,
        workers: cli.workers as usize,
        listeners: listeners.into_iter().map(std::sync::Arc::new).collect(),
        output: Output::Inherit,
        lazy: false,
    };
    serve_master(&cli, config, vec![pool], None, cli.pid_file.clone()).await
}

/// Runs the master with its metrics listener, writing the pid file while
/// it runs.
async fn serve_master(
    cli: &Cli,
    config: MasterConfig,
    pools: Vec<PoolProcs>,
    reread: Option<Reread>,
    pid_file: Option<PathBuf>,
) -> Result<i32, Error> {
    let metrics = bind_metrics(cli.metrics_listen).await?;
    // Caught from before READY=1 on: systemd may stop us right after it.
    let signals =
        process::Signals::install().map_err(|e| Error::Os(format!("cannot watch signals: {e}")))?;
    if let Some(path) = &pid_file {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
            Error::CantCreate(format!("cannot write the pid file {}: {e}", path.display()))
        })?;
    }
    let code = process::master::run(config, pools, reread, metrics, signals).await;
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(code)
}

/// The sockets systemd passed (socket activation), or else those of
/// `--listen`.
async fn bind_listeners(addrs: &[ListenAddr]) -> Result<Vec<Listener>, Error> {
    let inherited = process::systemd::activated_listeners()
        .map_err(|e| Error::Config(format!("cannot use the sockets systemd passed: {e}")))?;
    if !inherited.is_empty() {
        for l in &inherited {
            tracing::info!(target: STARTUP, "listening on {} (from systemd)", l.addr());
        }
        return Ok(inherited);
    }
    let mut listeners = Vec::new();
    for addr in addrs {
        match Listener::bind(addr).await {
            Ok(l) => {
                tracing::info!(target: STARTUP, "listening on {}", l.addr());
                listeners.push(l);
            }
            Err(e) => return Err(Error::Config(format!("cannot listen on {addr}: {e}"))),
        }
    }
    Ok(listeners)
}

/// The metrics listener, if `--metrics-listen` asks for one.
async fn bind_metrics(
    addr: Option<std::net::SocketAddr>,
) -> Result<Option<tokio::net::TcpListener>, Error> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            let local = listener.local_addr().unwrap_or(addr);
            tracing::info!("metrics listening on {local}");
            Ok(Some(listener))
        }
        Err(e) => Err(Error::Config(format!(
            "cannot listen for metrics on {addr}: {e}"
        ))),
    }
}

/// `-m` (modules, as `php -m` lists them) or `-i` (phpinfo()): runs a
/// small script on a started engine and prints its output.
fn print_info(cli: &Cli) -> i32 {
    const MODULES: &str = "<?php\n$m = get_loaded_extensions(); usort($m, 'strcasecmp');\n\
        $z = get_loaded_extensions(true); usort($z, 'strcasecmp');\n\
        echo \"[PHP Modules]\\n\", implode(\"\\n\", $m), \"\\n\\n[Zend Modules]\\n\";\n\
        echo $z ? implode(\"\\n\", $z) . \"\\n\" : '', \"\\n\";\n";
    const INFO: &str = "<?php phpinfo();\n";
    // php-fpm -v's lines; the build date is PHP's own, from phpinfo().
    const VERSION: &str = "<?php\nob_start(); phpinfo(INFO_GENERAL);\n\
        preg_match('/Build Date => (.*)/', ob_get_clean(), $m);\n\
        echo 'PHP ', PHP_VERSION, ' (fpm-fcgi) (built: ', $m[1] ?? '?', ') (tfpm ', getenv('TFPM_VERSION'), \")\\n\";\n\
        echo \"Copyright (c) The PHP Group\\nZend Engine v\", zend_version(), \", Copyright (c) Zend Technologies\\n\";\n\
        if (extension_loaded('Zend OPcache')) { echo '    with Zend OPcache v', phpversion('Zend OPcache'), \", Copyright (c), by Zend Technologies\\n\"; }\n";
    let script = std::env::temp_dir().join(format!("tfpm-info-{}.php", std::process::id()));
    let code = match (cli.modules, cli.info) {
        (true, _) => MODULES,
        (_, true) => INFO,
        _ => &VERSION.replace(
            "getenv('TFPM_VERSION')",
            &format!("'{}'", env!("CARGO_PKG_VERSION")),
        ),
    };
    if let Err(e) = std::fs::write(&script, code) {
        eprintln!("tfpm: cannot write {}: {e}", script.display());
        return exit_code::CANT_CREATE;
    }
    let mut config = cli.engine_config();
    config.threads = 0;
    let result = Engine::start(config)
        .map_err(|e| e.to_string())
        .and_then(|engine| {
            let out = engine.output_of(&script).map_err(|e| e.to_string());
            engine.shutdown();
            out
        });
    let _ = std::fs::remove_file(&script);
    match result {
        Ok(out) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
            0
        }
        Err(e) => {
            eprintln!("tfpm: {e}");
            exit_code::SOFTWARE
        }
    }
}

/// `--bench-floor`: the engine's own cost per request.
#[cfg(feature = "bench")]
fn bench_floor(cli: &Cli, script: &std::path::Path) -> Result<i32, Error> {
    let mut config = cli.engine_config();
    config.threads = 0;
    let engine = Engine::start(config).map_err(|e| Error::Software(e.to_string()))?;
    let result = engine.floor(script, cli.bench_requests.max(1));
    engine.shutdown();
    let total = result.map_err(|e| Error::Software(format!("bench floor failed: {e}")))?;
    let per_request = total.as_secs_f64() * 1e6 / cli.bench_requests.max(1) as f64;
    println!(
        r#"{{"requests":{},"seconds":{:.6},"per_request_us":{per_request:.2}}}"#,
        cli.bench_requests,
        total.as_secs_f64()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_php_fpm() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn define_without_value_means_one() {
        assert_eq!(
            split_define("display_errors"),
            ("display_errors".into(), "1".into())
        );
        assert_eq!(
            split_define("memory_limit=256M"),
            ("memory_limit".into(), "256M".into())
        );
        assert_eq!(split_define("a=b=c"), ("a".into(), "b=c".into()));
    }
}
