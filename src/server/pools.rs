//! Pools as tfpm runs them, read from a php-fpm configuration: for each
//! `[pool]` section, what the master binds (the listen address and its
//! `listen.*` options) and what that pool's worker process runs (threads,
//! ini values, its user, the ping page, limits). Each pool gets its own
//! worker processes, so pools stay apart as php-fpm's do: their own
//! sockets, threads, php.ini values and user.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::access_format::{AccessFormat, DEFAULT_FORMAT};
use crate::config::{Config, Pm, Pool};
use crate::php::scaling::Scaling;
use crate::sys::os;

use super::{ListenAddr, Listener};

/// One pool, ready to run.
#[derive(Debug, Clone)]
pub struct PoolRun {
    /// The pool's name, from its `[section]` header.
    pub name: String,
    /// `listen`: the address the master binds for the pool.
    pub listen: ListenAddr,
    /// `listen.backlog`; zero or negative means the kernel's maximum.
    pub backlog: i32,
    /// `listen.owner` (a uid), for a Unix socket: by default the uid the
    /// worker runs as; None leaves the socket's owner as it is.
    pub socket_owner: Option<u32>,
    /// `listen.group` (a gid), for a Unix socket: by default the gid the
    /// worker runs as; None leaves the socket's group as it is.
    pub socket_group: Option<u32>,
    /// `listen.mode`, for a Unix socket (0660 by default).
    pub socket_mode: u32,
    /// `listen.allowed_clients`: None lets everyone in.
    pub allowed_clients: Option<Vec<IpAddr>>,
    /// `pm.max_children`.
    pub threads: usize,
    /// `pm` with its settings, as the thread pool scales.
    pub scaling: Scaling,
    /// `php_value`/`php_flag`, then `php_admin_value`/`php_admin_flag`.
    pub ini: Vec<(String, String)>,
    /// The names of the admin ones, which scripts cannot change.
    pub admin_keys: Vec<String>,
    /// `security.limit_extensions`: the script extensions PHP may run.
    pub limit_extensions: Vec<String>,
    /// `ping.path` and `ping.response`: the ping page and its body; None
    /// when the pool has no ping page.
    pub ping: Option<(String, String)>,
    /// `pm.status_path`.
    pub status_path: Option<String>,
    /// `pm.status_listen`: a second socket of the pool, for its status and
    /// ping pages (tfpm serves it as the pool's other socket).
    pub status_listen: Option<ListenAddr>,
    /// `pm.max_requests` (None: never renew threads).
    pub max_requests: Option<u64>,
    /// `request_terminate_timeout`: how long a request may run before it is
    /// ended; None: no limit.
    pub terminate_after: Option<Duration>,
    /// `request_terminate_timeout_track_finished`: the limit also covers
    /// PHP's request shutdown (shutdown functions, destructors).
    pub terminate_track_finished: bool,
    /// `user` and `group`: the name and ids the worker switches to.
    pub user: Option<(String, u32, u32)>,
    /// `chdir`: the directory the worker changes to at start; None: it stays
    /// where it is.
    pub chdir: Option<PathBuf>,
    /// What scripts see as their environment (`$_ENV`, `getenv()`, and
    /// under the params in `$_SERVER`): `env[...]`, on top of the
    /// process's own environment when `clear_env = no`.
    pub env: Vec<(String, String)>,
    /// The pool's `prefix`, for its relative paths ([`PoolRun::path`]).
    pub prefix: Option<String>,
    /// `access.log` as written with its `access.format`; None: no access log.
    pub access_log: Option<(String, AccessFormat)>,
    /// `access.suppress_path`: request URIs whose successful GET and HEAD
    /// requests (no query, no body) are left out of the access log.
    pub access_suppress: Vec<String>,
    /// `slowlog` as written, when `request_slowlog_timeout` sets a time,
    /// with that time and `request_slowlog_trace_depth`.
    pub slowlog: Option<(String, Duration, u32)>,
    /// `catch_workers_output`: the master logs what workers write to their
    /// stdout and stderr.
    pub catch_output: bool,
    /// `decorate_workers_output`: caught lines get time, level, pool, pid
    /// and quotes.
    pub decorate_output: bool,
    /// Worker mode (`worker`, `worker.*`): tfpm's own directives.
    pub worker: Option<crate::php::WorkerScript>,
}

/// The pools of a loaded config, with names resolved; Err is php-fpm's
/// message for the first pool that cannot run.
pub fn from_config(config: &Config, allow_root: bool) -> Result<Vec<PoolRun>, String> {
    config
        .pools
        .iter()
        .map(|p| pool_run(p, allow_root))
        .collect()
}

fn pool_run(p: &Pool, allow_root: bool) -> Result<PoolRun, String> {
    let name = &p.name;
    let listen: ListenAddr = p.listen.as_deref().unwrap_or_default().parse()?;
    let user = run_as(p, allow_root)?;
    let socket_owner = match p.listen_owner.as_deref().filter(|s| !s.is_empty()) {
        Some(owner) => {
            Some(user_id(owner).ok_or(format!("[pool {name}] cannot get uid for user '{owner}'"))?)
        }
        None => user.as_ref().map(|u| u.1),
    };
    let socket_group = match p.listen_group.as_deref().filter(|s| !s.is_empty()) {
        Some(group) => Some(
            group_id(group).ok_or(format!("[pool {name}] cannot get gid for group '{group}'"))?,
        ),
        None => user.as_ref().map(|u| u.2),
    };
    let socket_mode = match p.listen_mode.as_deref() {
        Some(mode) => u32::from_str_radix(mode, 8)
            .map_err(|_| format!("[pool {name}] invalid listen.mode '{mode}'"))?,
        None => 0o660,
    };
    let admin_keys = p.php_admin_values.iter().map(|(k, _)| k.clone()).collect();
    let mut ini = p.php_values.clone();
    ini.extend(p.php_admin_values.iter().cloned());
    Ok(PoolRun {
        name: name.clone(),
        listen,
        backlog: p.listen_backlog,
        socket_owner,
        socket_group,
        socket_mode,
        allowed_clients: allowed_clients(p)?,
        threads: p.pm_max_children.max(1) as usize,
        scaling: scaling(p),
        ini,
        admin_keys,
        limit_extensions: p.security_limit_extensions.clone(),
        ping: p
            .ping_path
            .clone()
            .map(|path| (path, p.ping_response.clone())),
        status_path: p.pm_status_path.clone(),
        status_listen: p
            .pm_status_listen
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(str::parse)
            .transpose()?,
        max_requests: (p.pm_max_requests > 0).then_some(p.pm_max_requests as u64),
        terminate_after: seconds(p.request_terminate_timeout),
        terminate_track_finished: p.request_terminate_timeout_track_finished,
        user,
        chdir: p.chdir.clone().map(PathBuf::from),
        env: environment(p, std::env::vars()),
        prefix: p.prefix.clone().filter(|d| !d.is_empty()),
        access_log: access_log(p)?,
        access_suppress: p.access_suppress_paths.clone(),
        slowlog: slowlog(p),
        catch_output: p.catch_workers_output,
        decorate_output: p.decorate_workers_output,
        worker: worker_script(p),
    })
}

/// `access.log` and its format; Err is php-fpm's message for a bad format.
fn access_log(p: &Pool) -> Result<Option<(String, AccessFormat)>, String> {
    let Some(file) = p.access_log.clone().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let format = p.access_format.as_deref().unwrap_or(DEFAULT_FORMAT);
    let parsed = AccessFormat::parse(format).map_err(|e| {
        format!(
            "{e}\n[pool {}] wrong format for access.format '{format}'",
            p.name
        )
    })?;
    Ok(Some((file, parsed)))
}

/// `slowlog` with `request_slowlog_timeout` (both set, as php-fpm needs).
fn slowlog(p: &Pool) -> Option<(String, Duration, u32)> {
    let file = p.slowlog.clone().filter(|s| !s.is_empty())?;
    let after = seconds(p.request_slowlog_timeout)?;
    Some((file, after, p.request_slowlog_trace_depth.max(1) as u32))
}

/// The user a pool's worker runs as. As root, php-fpm wants one (unless
/// `-R`); as anyone else, `user` and `group` are ignored, with a notice.
fn run_as(p: &Pool, allow_root: bool) -> Result<Option<(String, u32, u32)>, String> {
    let name = &p.name;
    let Some(user) = p.user.as_deref().filter(|u| !u.is_empty()) else {
        if os::is_root() && !allow_root {
            return Err(format!(
                "[pool {name}] please specify user and group other than root"
            ));
        }
        return Ok(None);
    };
    if !os::is_root() {
        tracing::info!("[pool {name}] 'user' directive is ignored when FPM is not running as root");
        return Ok(None);
    }
    let (uid, mut gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => os::lookup_user(user)
            .ok_or(format!("[pool {name}] cannot get uid for user '{user}'"))?,
    };
    if let Some(group) = p.group.as_deref().filter(|g| !g.is_empty()) {
        gid = group_id(group).ok_or(format!("[pool {name}] cannot get gid for group '{group}'"))?;
    }
    if uid == 0 && !allow_root {
        return Err(format!(
            "[pool {name}] please specify user and group other than root"
        ));
    }
    Ok(Some((user.to_string(), uid, gid)))
}

fn user_id(name: &str) -> Option<u32> {
    name.parse()
        .ok()
        .or_else(|| os::lookup_user(name).map(|u| u.0))
}

fn group_id(name: &str) -> Option<u32> {
    name.parse().ok().or_else(|| os::lookup_group(name))
}

/// `listen.allowed_clients`: addresses separated by commas.
fn allowed_clients(p: &Pool) -> Result<Option<Vec<IpAddr>>, String> {
    let Some(list) = p
        .listen_allowed_clients
        .as_deref()
        .filter(|l| !l.trim().is_empty())
    else {
        return Ok(None);
    };
    let parse = |a: &str| {
        a.trim().parse::<IpAddr>().map_err(|_| {
            format!(
                "[pool {}] wrong IP address '{}' in listen.allowed_clients",
                p.name,
                a.trim()
            )
        })
    };
    list.split(',')
        .filter(|a| !a.trim().is_empty())
        .map(parse)
        .collect::<Result<_, _>>()
        .map(Some)
}

/// `pm` and its settings, for the thread pool.
fn scaling(p: &Pool) -> Scaling {
    let at_least_one = |n: i32| n.max(1) as usize;
    match p.pm.unwrap_or(Pm::Static) {
        Pm::Static => Scaling::Static,
        Pm::Dynamic => Scaling::Dynamic {
            start: at_least_one(p.pm_start_servers),
            min_spare: at_least_one(p.pm_min_spare_servers),
            max_spare: at_least_one(p.pm_max_spare_servers),
        },
        Pm::Ondemand => Scaling::Ondemand {
            idle_timeout: Duration::from_secs(p.pm_process_idle_timeout.max(1) as u64),
        },
    }
}

/// A pool's environment: the process's own (`vars`) unless `clear_env`,
/// then `env[NAME] = value`, where a value `$VAR` is taken from the
/// process's environment, as php-fpm does.
fn environment(p: &Pool, vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let vars: Vec<(String, String)> = vars.collect();
    let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut env = if p.clear_env {
        Vec::new()
    } else {
        vars.clone()
    };
    for (name, value) in &p.env {
        let value = match value.strip_prefix('$') {
            Some(var) => lookup(var).unwrap_or_default(),
            None => value.clone(),
        };
        env.retain(|(k, _)| k != name);
        env.push((name.clone(), value));
    }
    env
}

fn seconds(n: i32) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(n as u64))
}

impl PoolRun {
    /// A path of the pool's config as php-fpm reads it: relative ones
    /// under the pool's `prefix`, itself under `base` (the global prefix).
    pub fn path(&self, base: &std::path::Path, path: &str) -> PathBuf {
        let dir = match &self.prefix {
            Some(prefix) => base.join(prefix),
            None => base.to_path_buf(),
        };
        dir.join(path)
    }

    /// Binds `addr` with the pool's `listen.*` options.
    pub async fn bind_at(&self, addr: &ListenAddr) -> std::io::Result<Listener> {
        let listener = Listener::bind(addr).await?;
        os::set_backlog(listener.as_fd(), self.backlog)?;
        if let ListenAddr::Unix(path) = addr {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(path, self.socket_owner, self.socket_group)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.socket_mode))?;
        }
        Ok(listener)
    }
}

/// Whether `ip` is on the list (IPv4 clients match their IPv4-mapped form too).
pub fn allowed(list: Option<&[IpAddr]>, ip: IpAddr) -> bool {
    let Some(list) = list else {
        return true;
    };
    let canonical = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    list.contains(&canonical)
}

/// The pool's worker script, if it has one; its threads default to
/// `pm.max_children`.
fn worker_script(p: &Pool) -> Option<crate::php::WorkerScript> {
    let w = &p.worker;
    let threads = if w.num > 0 { w.num } else { p.pm_max_children };
    Some(crate::php::WorkerScript {
        script: PathBuf::from(w.script.as_ref()?),
        uri_prefix: w.uri_prefix.clone(),
        threads: threads.max(1) as usize,
        max_requests: u64::try_from(w.max_requests).ok().filter(|n| *n > 0),
        max_failures: u32::try_from(w.max_consecutive_failures).ok(),
        env: w.env.clone(),
        watch: w.watch.as_ref().map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_clients_as_php_fpm_reads_them() {
        let mut p = Pool::new("www");
        p.listen_allowed_clients = Some("127.0.0.1, ::1".into());
        let list = allowed_clients(&p).unwrap().unwrap();
        assert!(allowed(Some(&list), "127.0.0.1".parse().unwrap()));
        assert!(allowed(Some(&list), "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allowed(Some(&list), "10.0.0.1".parse().unwrap()));
        assert!(allowed(None, "10.0.0.1".parse().unwrap()));
        p.listen_allowed_clients = Some("localhost".into());
        assert!(allowed_clients(&p).is_err());
    }

    #[test]
    fn env_entries_and_clear_env() {
        let mut p = Pool::new("www");
        p.env = vec![("A".into(), "1".into()), ("H".into(), "$HOST".into())];
        let vars = || {
            vec![
                ("HOST".to_string(), "web1".to_string()),
                ("A".into(), "0".into()),
            ]
            .into_iter()
        };
        assert_eq!(
            environment(&p, vars()),
            vec![("A".into(), "1".into()), ("H".into(), "web1".into())]
        );
        p.clear_env = false;
        assert_eq!(
            environment(&p, vars()),
            vec![
                ("HOST".into(), "web1".into()),
                ("A".into(), "1".into()),
                ("H".into(), "web1".into())
            ]
        );
    }

    #[test]
    fn a_pool_runs_with_its_values() {
        let mut p = Pool::new("www");
        p.listen = Some("127.0.0.1:9000".into());
        p.pm_max_children = 5;
        p.php_values = vec![("memory_limit".into(), "64M".into())];
        p.php_admin_values = vec![("log_errors".into(), "1".into())];
        p.request_terminate_timeout = 30;
        p.request_terminate_timeout_track_finished = true;
        p.listen_mode = Some("0666".into());
        let run = pool_run(&p, true).unwrap();
        assert_eq!(run.threads, 5);
        assert_eq!(run.ini.len(), 2);
        assert_eq!(run.terminate_after, Some(Duration::from_secs(30)));
        assert!(run.terminate_track_finished);
        assert_eq!(run.socket_mode, 0o666);
        assert_eq!(run.listen, "127.0.0.1:9000".parse().unwrap());
    }
}
