//! Every directive php-fpm 8.2 knows (fpm_conf.c's two tables and its array
//! fields), parsed into [`Global`] and [`Pool`] with php-fpm's defaults, value
//! types (int, time, bool, enums) and messages, plus its post-parse checks.
//!
//! Directives tfpm cannot honour are still parsed and checked (php-fpm would
//! refuse a bad value), kept raw in `unsupported`, and reported as warnings.

use std::path::Path;

use super::ini::{self, Line, ReadOptions, Source};
pub use super::value::{expand_pool, parse_bool, parse_int, parse_time};
use super::value::{parse_facility, parse_log_level, parse_pm, parse_rlimit_core};
use super::{ConfigError, Level, Notice};

/// The type of a directive's value, as fpm_conf.c parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Time,
    Bool,
    LogLevel,
    Pm,
    RlimitCore,
    Facility,
}

/// `(name, kind, honoured by tfpm)` for the `[global]` section.
const GLOBAL: &[(&str, Kind, bool)] = &[
    ("pid", Kind::Str, true),
    ("error_log", Kind::Str, true),
    ("syslog.ident", Kind::Str, false),
    ("syslog.facility", Kind::Facility, false),
    ("log_buffering", Kind::Bool, true),
    ("log_level", Kind::LogLevel, true),
    ("log_limit", Kind::Int, true),
    ("emergency_restart_threshold", Kind::Int, true),
    ("emergency_restart_interval", Kind::Time, true),
    ("process_control_timeout", Kind::Time, true),
    ("process.max", Kind::Int, false),
    ("process.priority", Kind::Int, false),
    ("daemonize", Kind::Bool, true),
    ("rlimit_files", Kind::Int, true),
    ("rlimit_core", Kind::RlimitCore, false),
    ("events.mechanism", Kind::Str, false),
    ("systemd_interval", Kind::Time, false),
];

/// `(name, kind, honoured by tfpm)` for pool sections.
const POOL: &[(&str, Kind, bool)] = &[
    ("prefix", Kind::Str, true),
    ("user", Kind::Str, true),
    ("group", Kind::Str, true),
    ("listen", Kind::Str, true),
    ("listen.backlog", Kind::Int, true),
    ("listen.acl_users", Kind::Str, false),
    ("listen.acl_groups", Kind::Str, false),
    ("listen.owner", Kind::Str, true),
    ("listen.group", Kind::Str, true),
    ("listen.mode", Kind::Str, true),
    ("listen.allowed_clients", Kind::Str, true),
    ("listen.setfib", Kind::Int, false),
    ("process.priority", Kind::Int, false),
    ("process.dumpable", Kind::Bool, false),
    ("pm", Kind::Pm, true),
    ("pm.max_children", Kind::Int, true),
    ("pm.start_servers", Kind::Int, true),
    ("pm.min_spare_servers", Kind::Int, true),
    ("pm.max_spare_servers", Kind::Int, true),
    ("pm.max_spawn_rate", Kind::Int, false),
    ("pm.process_idle_timeout", Kind::Time, true),
    ("pm.max_requests", Kind::Int, true),
    ("pm.status_path", Kind::Str, true),
    ("pm.status_listen", Kind::Str, true),
    ("ping.path", Kind::Str, true),
    ("ping.response", Kind::Str, true),
    ("access.log", Kind::Str, true),
    ("access.format", Kind::Str, true),
    ("slowlog", Kind::Str, true),
    ("request_slowlog_timeout", Kind::Time, true),
    ("request_slowlog_trace_depth", Kind::Int, true),
    ("request_terminate_timeout", Kind::Time, true),
    ("request_terminate_timeout_track_finished", Kind::Bool, true),
    ("rlimit_files", Kind::Int, false),
    ("rlimit_core", Kind::RlimitCore, false),
    ("chroot", Kind::Str, false),
    ("chdir", Kind::Str, true),
    ("catch_workers_output", Kind::Bool, true),
    ("decorate_workers_output", Kind::Bool, true),
    ("clear_env", Kind::Bool, true),
    ("security.limit_extensions", Kind::Str, true),
    ("apparmor_hat", Kind::Str, false),
];

/// The array fields of a pool (`name[key] = value`).
pub const POOL_ARRAYS: &[&str] = &[
    "env",
    "php_value",
    "php_flag",
    "php_admin_value",
    "php_admin_flag",
    "access.suppress_path",
];

/// Names of every `[global]` directive php-fpm knows (`include` aside).
pub fn global_directives() -> impl Iterator<Item = &'static str> {
    GLOBAL.iter().map(|d| d.0)
}

/// Names of every plain pool directive php-fpm knows (arrays aside).
pub fn pool_directives() -> impl Iterator<Item = &'static str> {
    POOL.iter().map(|d| d.0)
}

/// `log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `debug`: everything; log times get microseconds.
    Debug,
    /// `notice`: php-fpm's default.
    Notice,
    /// `warning`.
    Warning,
    /// `error`.
    Error,
    /// `alert`.
    Alert,
}

/// `pm`: how a pool's processes (tfpm: its threads) are managed. The thread
/// pool's form of it, with its settings, is `php::scaling::Scaling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm {
    /// `static`: `pm.max_children` all the time.
    Static,
    /// `dynamic`: between the spare-server bounds, up to `pm.max_children`.
    Dynamic,
    /// `ondemand`: started on demand, stopped after `pm.process_idle_timeout`.
    Ondemand,
}

impl Pm {
    /// php-fpm's word for it, as the status page prints it.
    pub fn name(self) -> &'static str {
        match self {
            Pm::Static => "static",
            Pm::Dynamic => "dynamic",
            Pm::Ondemand => "ondemand",
        }
    }
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(i32),
    Bool(bool),
    LogLevel(LogLevel),
    Pm(Pm),
}

/// The `[global]` section, with php-fpm's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `pid`: the file the master writes its pid to; None: no pid file.
    pub pid: Option<String>,
    /// `None` = php-fpm's default, `log/php-fpm.log` under localstatedir.
    pub error_log: Option<String>,
    /// `log_level`: the least severe message the error log keeps.
    pub log_level: LogLevel,
    /// `log_limit`: the longest log line in bytes; longer ones are cut into
    /// several (512 at least).
    pub log_limit: i32,
    /// `log_buffering`: worker output lines written whole (the default).
    pub log_buffering: bool,
    /// Seconds.
    pub process_control_timeout: i32,
    /// Crashes within `emergency_restart_interval` (seconds) that restart
    /// every worker; 0 = never.
    pub emergency_restart_threshold: i32,
    /// `emergency_restart_interval`: the window, in seconds, for the count
    /// above.
    pub emergency_restart_interval: i32,
    /// `daemonize`: go to the background once started (the default).
    pub daemonize: bool,
    /// `rlimit_files`: the open-file limit (RLIMIT_NOFILE) to set at start;
    /// None: leave it as inherited.
    pub rlimit_files: Option<i32>,
    /// Known directives tfpm does not honour, with their raw values.
    pub unsupported: Vec<(String, String)>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            pid: None,
            error_log: None,
            log_level: LogLevel::Notice,
            log_limit: 1024,
            log_buffering: true,
            process_control_timeout: 0,
            emergency_restart_threshold: 0,
            emergency_restart_interval: 0,
            daemonize: true,
            rlimit_files: None,
            unsupported: Vec::new(),
        }
    }
}

/// A pool section, with php-fpm's defaults. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The section's name, `[name]`.
    pub name: String,
    /// `prefix`: the directory the pool's relative paths are under.
    pub prefix: Option<String>,
    /// `user`: the user (name or uid) the pool's workers run as.
    pub user: Option<String>,
    /// `group`: the group the workers run as; None: the user's own group.
    pub group: Option<String>,
    /// `listen`: the socket, as `address:port`, a port, or a Unix socket path.
    pub listen: Option<String>,
    /// -1 = the kernel's maximum (php-fpm's Linux default).
    pub listen_backlog: i32,
    /// `listen.owner`: the Unix socket's owner; None: the pool's `user`.
    pub listen_owner: Option<String>,
    /// `listen.group`: the Unix socket's group; None: the pool's `group`.
    pub listen_group: Option<String>,
    /// `listen.mode`: the Unix socket's permissions, in octal; None: `0660`.
    pub listen_mode: Option<String>,
    /// `listen.allowed_clients`: the web servers' IP addresses, separated by
    /// commas; None: any client.
    pub listen_allowed_clients: Option<String>,
    /// `pm`; None until set (the pool is then refused).
    pub pm: Option<Pm>,
    /// `pm.max_children`: the most requests served at once (tfpm: threads).
    pub pm_max_children: i32,
    /// `pm.start_servers` (`dynamic`); when 0, validation sets it midway
    /// between the spare bounds.
    pub pm_start_servers: i32,
    /// `pm.min_spare_servers` (`dynamic`): the fewest idle ones kept.
    pub pm_min_spare_servers: i32,
    /// `pm.max_spare_servers` (`dynamic`): the most idle ones kept.
    pub pm_max_spare_servers: i32,
    /// `pm.process_idle_timeout` (`ondemand`): how long an idle one lives.
    pub pm_process_idle_timeout: i32,
    /// `pm.max_requests`: requests served before one is renewed; 0 = never.
    pub pm_max_requests: i32,
    /// `pm.status_path`: the URI of the status page; None: no page.
    pub pm_status_path: Option<String>,
    /// `pm.status_listen`: a second socket for the status and ping pages.
    pub pm_status_listen: Option<String>,
    /// `ping.path`: the URI of the ping page; None: no page.
    pub ping_path: Option<String>,
    /// `ping.response`: the ping page's body (`pong` by default).
    pub ping_response: String,
    /// `access.log`: the access log file; None or empty: no access log.
    pub access_log: Option<String>,
    /// `access.format`; None: [`super::access_format::DEFAULT_FORMAT`].
    pub access_format: Option<String>,
    /// `access.suppress_path[]`: request URIs, each starting with '/', whose
    /// plain successful requests are not logged
    /// ([`super::access_format::suppressed`]).
    pub access_suppress_paths: Vec<String>,
    /// `slowlog`: the file slow requests' PHP backtraces are written to.
    pub slowlog: Option<String>,
    /// `request_slowlog_timeout`: a request running this long gets a
    /// slowlog entry; 0 = off.
    pub request_slowlog_timeout: i32,
    /// Frames in a slowlog entry at most (0 until validated: then 20).
    pub request_slowlog_trace_depth: i32,
    /// `request_terminate_timeout`: a request running this long is killed;
    /// 0 = never.
    pub request_terminate_timeout: i32,
    /// `request_terminate_timeout_track_finished`: the limit above also
    /// covers PHP's request shutdown (shutdown functions, destructors).
    pub request_terminate_timeout_track_finished: bool,
    /// `chdir`: the directory workers change to at start (absolute).
    pub chdir: Option<String>,
    /// `catch_workers_output`: scripts' stdout and stderr go to the error
    /// log (else they are discarded).
    pub catch_workers_output: bool,
    /// `decorate_workers_output`: caught output lines get php-fpm's prefix
    /// (time, level, pool, child pid, stream) and quotes.
    pub decorate_workers_output: bool,
    /// `clear_env`: scripts do not see the process's own environment, only
    /// `env[...]` (the default).
    pub clear_env: bool,
    /// Empty = every extension allowed.
    pub security_limit_extensions: Vec<String>,
    /// `env[NAME]`, in declaration order; values are raw (`$VAR` is the
    /// runtime's to resolve against the master environment).
    pub env: Vec<(String, String)>,
    /// `php_value` and `php_flag` (flags as `"1"`/`"0"`); first declaration wins.
    pub php_values: Vec<(String, String)>,
    /// `php_admin_value` and `php_admin_flag`; first declaration wins.
    pub php_admin_values: Vec<(String, String)>,
    /// Known directives tfpm does not honour, with their raw values.
    pub unsupported: Vec<(String, String)>,
    /// tfpm's worker mode (`worker`, `worker.*`).
    pub worker: super::worker::WorkerDirectives,
}

impl Pool {
    /// A pool with php-fpm's defaults.
    pub fn new(name: &str) -> Self {
        Pool {
            name: name.to_string(),
            prefix: None,
            user: None,
            group: None,
            listen: None,
            listen_backlog: -1,
            listen_owner: None,
            listen_group: None,
            listen_mode: None,
            listen_allowed_clients: None,
            pm: None,
            pm_max_children: 0,
            pm_start_servers: 0,
            pm_min_spare_servers: 0,
            pm_max_spare_servers: 0,
            pm_process_idle_timeout: 10,
            pm_max_requests: 0,
            pm_status_path: None,
            pm_status_listen: None,
            ping_path: None,
            ping_response: "pong".to_string(),
            access_log: None,
            access_format: None,
            access_suppress_paths: Vec::new(),
            slowlog: None,
            request_slowlog_timeout: 0,
            request_slowlog_trace_depth: 0,
            request_terminate_timeout: 0,
            request_terminate_timeout_track_finished: false,
            chdir: None,
            catch_workers_output: false,
            decorate_workers_output: true,
            clear_env: true,
            security_limit_extensions: vec![".php".to_string(), ".phar".to_string()],
            env: Vec::new(),
            php_values: Vec::new(),
            php_admin_values: Vec::new(),
            unsupported: Vec::new(),
            worker: super::worker::WorkerDirectives::default(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `[global]` section.
    pub global: Global,
    /// The pool sections, in file order.
    pub pools: Vec<Pool>,
    /// Warnings and notices php-fpm would log while loading (in order).
    pub notices: Vec<Notice>,
}

/// Reads `path`, applies every line, then runs php-fpm's checks.
pub fn load(path: &Path, opts: &ReadOptions) -> Result<Config, ConfigError> {
    let mut config = parse(path, opts)?;
    super::validate::validate(&mut config)?;
    Ok(config)
}

/// Reads `path` and applies every line, without the post-parse checks.
pub fn parse(path: &Path, opts: &ReadOptions) -> Result<Config, ConfigError> {
    let mut state = State::default();
    let mut notices = Vec::new();
    let read = ini::read(path, opts, &mut notices, &mut |src, line| {
        state.apply(src, line)
    });
    read.map_err(|e| {
        e.then(ConfigError::plain(format!(
            "failed to load configuration file '{}'",
            path.display()
        )))
    })?;
    notices.append(&mut state.notices);
    Ok(Config {
        global: state.global,
        pools: state.pools,
        notices,
    })
}

/// The parse in progress: `current` is the pool being filled, if any.
#[derive(Default)]
struct State {
    global: Global,
    pools: Vec<Pool>,
    current: Option<usize>,
    notices: Vec<Notice>,
}

impl State {
    fn apply(&mut self, src: &Source, line: Line) -> Result<(), ConfigError> {
        match line {
            Line::Section(name) => {
                self.section(&name);
                Ok(())
            }
            Line::Entry { key, value } => self.entry(src, &key, &value),
            Line::Array { name, key, value } => self.array(src, &name, &key, &value),
        }
    }

    fn section(&mut self, name: &str) {
        if name.eq_ignore_ascii_case("global") {
            self.current = None;
            return;
        }
        let found = self
            .pools
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name));
        self.current = Some(found.unwrap_or_else(|| {
            self.pools.push(Pool::new(name));
            self.pools.len() - 1
        }));
    }

    fn pool_name(&self) -> Option<&str> {
        self.current.map(|i| self.pools[i].name.as_str())
    }

    fn entry(&mut self, src: &Source, key: &str, value: &str) -> Result<(), ConfigError> {
        if let Some(i) = self.current.filter(|_| super::worker::is_worker_key(key)) {
            let set = self.pools[i].worker.set(key, value);
            return set.map_err(|why| ConfigError::at(src, Some(key), why));
        }
        let table = if self.current.is_some() { POOL } else { GLOBAL };
        let Some(&(name, kind, honoured)) = table.iter().find(|d| d.0.eq_ignore_ascii_case(key))
        else {
            let msg = format!("unknown entry '{key}'");
            return Err(ConfigError::at(src, Some(key), msg));
        };
        let parsed = parse_value(kind, value, self.pool_name()).map_err(|why| {
            let msg = format!("unable to parse value for entry '{name}': {why}");
            ConfigError::at(src, Some(name), msg)
        })?;
        if name == "error_log" && value.trim() == "syslog" {
            self.notices.push(Notice::new(
                Level::Warning,
                format!(
                    "[{}:{}] error_log = syslog is not supported by tfpm: it logs to stderr \
                     instead (under systemd, to the journal)",
                    src.file.display(),
                    src.line
                ),
            ));
        }
        if honoured {
            self.set(name, parsed);
        } else {
            self.unsupported(src, name, value);
        }
        Ok(())
    }

    fn unsupported(&mut self, src: &Source, name: &str, value: &str) {
        let scope = match self.pool_name() {
            Some(pool) => format!("[pool {pool}] "),
            None => String::new(),
        };
        self.notices.push(Notice::new(
            Level::Warning,
            format!(
                "[{}:{}] {scope}'{name}' is not supported by tfpm and is ignored",
                src.file.display(),
                src.line
            ),
        ));
        let list = match self.current {
            Some(i) => &mut self.pools[i].unsupported,
            None => &mut self.global.unsupported,
        };
        list.push((name.to_string(), value.to_string()));
    }

    fn set(&mut self, name: &str, value: Value) {
        match self.current {
            Some(i) => set_pool(&mut self.pools[i], name, value),
            None => set_global(&mut self.global, name, value),
        }
    }

    fn array(
        &mut self,
        src: &Source,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError::at(src, Some(name), msg));
        if name == "access.suppress_path" {
            if !key.is_empty() {
                return fail("Keys provided to field 'access.suppress_path' are ignored".into());
            }
            if !value.starts_with('/') {
                return fail(
                    "Values provided to field 'access.suppress_path' must begin with '/'".into(),
                );
            }
        } else if key.is_empty() {
            return fail(format!("You must provide a key for field '{name}'"));
        }
        let Some(i) = self.current else {
            return fail("Array are not allowed in the global section".into());
        };
        if name == "env" && value.is_empty() {
            return fail("empty value".into());
        }
        let pool = &mut self.pools[i];
        let expanded = expand_pool(value, Some(&pool.name)).unwrap_or_default();
        let flag = || parse_bool(value).map(|b| if b { "1" } else { "0" }.to_string());
        let (list, parsed) = match name {
            "worker.env" => {
                pool.worker.add_env(key, &expanded);
                return Ok(());
            }
            "env" => (&mut pool.env, Ok(expanded)),
            "php_value" => (&mut pool.php_values, Ok(expanded)),
            "php_admin_value" => (&mut pool.php_admin_values, Ok(expanded)),
            "php_flag" => (&mut pool.php_values, flag()),
            "php_admin_flag" => (&mut pool.php_admin_values, flag()),
            "access.suppress_path" => {
                pool.access_suppress_paths.push(expanded);
                return Ok(());
            }
            _ => return fail(format!("unknown directive '{name}'")),
        };
        match parsed {
            Ok(v) => {
                add(list, key, v);
                Ok(())
            }
            Err(err) => fail(format!("error while parsing '{name}[{key}]' : {err}")),
        }
    }
}

/// Adds a keyed value; php-fpm keeps the first declaration of a key.
fn add(list: &mut Vec<(String, String)>, key: &str, value: String) {
    if !list.iter().any(|(k, _)| k == key) {
        list.push((key.to_string(), value));
    }
}

fn parse_value(kind: Kind, value: &str, pool: Option<&str>) -> Result<Value, String> {
    match kind {
        Kind::Str => expand_pool(value, pool).map(Value::Str),
        Kind::Int => parse_int(value).map(Value::Int),
        Kind::Time => parse_time(value).map(Value::Int),
        Kind::Bool => parse_bool(value).map(Value::Bool),
        Kind::LogLevel => parse_log_level(value).map(Value::LogLevel),
        Kind::Pm => parse_pm(value).map(Value::Pm),
        Kind::RlimitCore => parse_rlimit_core(value).map(Value::Int),
        Kind::Facility => parse_facility(value).map(|_| Value::Str(value.to_string())),
    }
}

fn set_global(g: &mut Global, name: &str, value: Value) {
    match (name, value) {
        ("pid", Value::Str(s)) => g.pid = Some(s),
        ("error_log", Value::Str(s)) => g.error_log = Some(s),
        ("log_level", Value::LogLevel(l)) => g.log_level = l,
        ("log_limit", Value::Int(n)) => g.log_limit = n,
        ("log_buffering", Value::Bool(b)) => g.log_buffering = b,
        ("process_control_timeout", Value::Int(n)) => g.process_control_timeout = n,
        ("daemonize", Value::Bool(b)) => g.daemonize = b,
        ("rlimit_files", Value::Int(n)) => g.rlimit_files = Some(n),
        ("emergency_restart_threshold", Value::Int(n)) => g.emergency_restart_threshold = n,
        ("emergency_restart_interval", Value::Int(n)) => g.emergency_restart_interval = n,
        (name, value) => unreachable!("global directive {name} with {value:?}"),
    }
}

fn set_pool(p: &mut Pool, name: &str, value: Value) {
    match value {
        Value::Str(s) => set_pool_str(p, name, s),
        Value::Int(n) => set_pool_int(p, name, n),
        Value::Bool(b) => set_pool_bool(p, name, b),
        Value::Pm(pm) => p.pm = Some(pm),
        Value::LogLevel(_) => unreachable!("pool directive {name} with a log level"),
    }
}

fn set_pool_str(p: &mut Pool, name: &str, s: String) {
    let field = match name {
        "prefix" => &mut p.prefix,
        "user" => &mut p.user,
        "group" => &mut p.group,
        "listen" => &mut p.listen,
        "listen.owner" => &mut p.listen_owner,
        "listen.group" => &mut p.listen_group,
        "listen.mode" => &mut p.listen_mode,
        "listen.allowed_clients" => &mut p.listen_allowed_clients,
        "pm.status_path" => &mut p.pm_status_path,
        "pm.status_listen" => &mut p.pm_status_listen,
        "ping.path" => &mut p.ping_path,
        "access.log" => &mut p.access_log,
        "access.format" => &mut p.access_format,
        "slowlog" => &mut p.slowlog,
        "chdir" => &mut p.chdir,
        "ping.response" => return p.ping_response = s,
        "security.limit_extensions" => {
            return p.security_limit_extensions = s.split_whitespace().map(str::to_string).collect()
        }
        _ => unreachable!("pool string directive {name}"),
    };
    *field = Some(s);
}

fn set_pool_int(p: &mut Pool, name: &str, n: i32) {
    *match name {
        "listen.backlog" => &mut p.listen_backlog,
        "pm.max_children" => &mut p.pm_max_children,
        "pm.start_servers" => &mut p.pm_start_servers,
        "pm.min_spare_servers" => &mut p.pm_min_spare_servers,
        "pm.max_spare_servers" => &mut p.pm_max_spare_servers,
        "pm.process_idle_timeout" => &mut p.pm_process_idle_timeout,
        "pm.max_requests" => &mut p.pm_max_requests,
        "request_slowlog_timeout" => &mut p.request_slowlog_timeout,
        "request_slowlog_trace_depth" => &mut p.request_slowlog_trace_depth,
        "request_terminate_timeout" => &mut p.request_terminate_timeout,
        _ => unreachable!("pool integer directive {name}"),
    } = n;
}

fn set_pool_bool(p: &mut Pool, name: &str, b: bool) {
    *match name {
        "request_terminate_timeout_track_finished" => {
            &mut p.request_terminate_timeout_track_finished
        }
        "catch_workers_output" => &mut p.catch_workers_output,
        "decorate_workers_output" => &mut p.decorate_workers_output,
        "clear_env" => &mut p.clear_env,
        _ => unreachable!("pool boolean directive {name}"),
    } = b;
}
