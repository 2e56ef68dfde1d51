//! tfpm run from php-fpm configuration files (`-y`): each pool with its
//! own listener, threads, php values, ping page, limits and user; the pid
//! file; and Debian's own php-fpm.conf and www.conf (from the php8.2-fpm
//! package, which scripts/install-deps.sh installs), run unchanged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{Signal, Tfpm};
use fcgi_tests::fcgi_client::FcgiClient;
use fcgi_tests::{docroot, repo_root, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");

fn who(client: std::io::Result<FcgiClient>) -> String {
    let mut client = client.expect("connect");
    let req = CgiRequest::get(&docroot(), "/pools/who.php");
    client.send(&req, false).expect("who.php").cgi().text()
}

fn field<'a>(json: &'a str, name: &str) -> &'a str {
    let start = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("{name} in {json}"));
    let rest = &json[start + name.len() + 3..];
    rest[..rest.find([',', '}']).unwrap()].trim_matches('"')
}

#[test]
fn each_pool_runs_with_its_own_socket_threads_and_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]
error_log = /proc/self/fd/2
pid = {d}/tfpm.pid

[a]
listen = 127.0.0.1:0
pm = static
pm.max_children = 2
php_value[precision] = 7
php_admin_value[memory_limit] = 32M
ping.path = /ping-a
security.limit_extensions = .php

[b]
listen = {d}/b.sock
listen.mode = 0600
pm = dynamic
pm.max_children = 3
pm.start_servers = 1
pm.min_spare_servers = 1
pm.max_spare_servers = 2
php_flag[display_errors] = on
php_value[precision] = 9
env[GREETING] = hello
env[FROM_HOME] = $HOME
env[SCRIPT_NAME] = /not-this

[closed]
listen = 127.0.0.2:0
pm = static
pm.max_children = 1
listen.allowed_clients = 10.1.2.3
"
        ),
    )
    .unwrap();
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let tcp = tfpm.tcp_addrs();
    assert_eq!(tcp.len(), 2, "{}", tfpm.log());
    let (a, closed) = (tcp[0], tcp[1]);
    let sock = dir.path().join("b.sock");

    let from_a = who(FcgiClient::connect_tcp(a));
    let from_b = who(FcgiClient::connect_unix(&sock));
    assert_eq!(field(&from_a, "precision"), "7", "{from_a}");
    assert_eq!(field(&from_a, "memory_limit"), "32M", "{from_a}");
    assert_eq!(field(&from_b, "precision"), "9", "{from_b}");
    assert_eq!(field(&from_b, "display_errors"), "1", "{from_b}");
    assert_ne!(
        field(&from_a, "pid"),
        field(&from_b, "pid"),
        "one process per pool"
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // env[...] (with $VAR from the master's environment), under the params;
    // clear_env (the default) keeps the rest of the environment out.
    let mut client = FcgiClient::connect_unix(&sock).expect("connect");
    let env = client
        .send(&CgiRequest::get(&docroot(), "/pools/env.php"), false)
        .unwrap();
    let home = std::env::var("HOME")
        .unwrap_or_default()
        .replace('/', "\\/");
    assert_eq!(
        env.cgi().text(),
        format!("{{\"getenv\":\"hello\",\"server\":\"hello\",\"home\":\"{home}\",\"path\":false,\"override\":\"\\/pools\\/env.php\"}}\n")
    );

    // php_admin_value cannot be changed by the script; php_value can.
    let mut client = FcgiClient::connect_tcp(a).expect("connect");
    let set = client
        .send(&CgiRequest::get(&docroot(), "/pools/ini_set.php"), false)
        .unwrap();
    assert_eq!(
        set.cgi().text(),
        "{\"memory_limit\":\"32M\",\"admin_set\":false,\"precision\":\"3\",\"value_set\":\"7\"}\n"
    );

    // Pool a's own ping page and security.limit_extensions.
    let mut client = FcgiClient::connect_tcp(a).expect("connect");
    let ping = client
        .send(&CgiRequest::get(&docroot(), "/ping-a"), false)
        .unwrap();
    assert_eq!(ping.cgi().text(), "pong");
    let mut client = FcgiClient::connect_tcp(a).expect("connect");
    let txt = client
        .send(&CgiRequest::get(&docroot(), "/pools/note.txt"), false)
        .unwrap();
    assert_eq!(
        (txt.cgi().status, txt.cgi().text()),
        (403, "Access denied.\n".to_string())
    );

    // listen.allowed_clients: loopback is not on the list.
    let refused = FcgiClient::connect_tcp(closed)
        .and_then(|mut c| c.send(&CgiRequest::get(&docroot(), "/pools/who.php"), false));
    assert!(refused.is_err(), "{refused:?}");

    let pid_file = dir.path().join("tfpm.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), tfpm.pid().to_string());
    let mut tfpm = tfpm;
    let (status, clean) = tfpm.stop_with(Signal::SIGQUIT);
    assert!(clean && status.success(), "{status:?}\n{}", tfpm.log());
    let log = tfpm.log();
    assert!(
        log.contains("Connection disallowed: IP address '127.0.0."),
        "{log}"
    );
    assert!(!pid_file.exists(), "the pid file is removed at exit");
}

#[test]
fn pm_max_requests_renews_the_thread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        "[global]\nerror_log = /proc/self/fd/2\n[one]\nlisten = 127.0.0.1:0\n\
         pm = static\npm.max_children = 1\npm.max_requests = 3\n",
    )
    .unwrap();
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let threads: Vec<String> = (0..7)
        .map(|_| {
            let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
            let req = CgiRequest::get(&docroot(), "/pools/thread.php");
            client.send(&req, false).expect("thread.php").cgi().text()
        })
        .collect();
    // Three requests per thread, then a fresh one.
    assert!(
        threads[0] == threads[1] && threads[1] == threads[2],
        "{threads:?}"
    );
    assert!(
        threads[3] == threads[4] && threads[4] == threads[5],
        "{threads:?}"
    );
    assert!(
        threads[2] != threads[3] && threads[5] != threads[6] && threads[0] != threads[6],
        "{threads:?}"
    );
}

#[test]
fn sigusr1_reopens_the_error_log_in_master_and_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (conf, log) = (
        dir.path().join("php-fpm.conf"),
        dir.path().join("error.log"),
    );
    let text = format!(
        "[global]\nerror_log = {}\nlog_level = debug\n[one]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n",
        log.display()
    );
    std::fs::write(&conf, text).unwrap();
    let mut child = Command::new(TFPM)
        .args(["-F", "-R", "-y", conf.to_str().unwrap()])
        .spawn()
        .expect("spawn tfpm");
    let has = |path: &Path, what: &str, n: usize| {
        fcgi_tests::poll_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(10),
            || {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                (text.matches(what).count() >= n).then_some(())
            },
        )
        .is_some()
    };
    assert!(
        has(&log, "ready to handle connections", 1),
        "no ready line in the error_log"
    );
    std::fs::rename(&log, dir.path().join("error.log.1")).unwrap();
    fcgi_tests::daemon::signal_pid(child.id(), Signal::SIGUSR1);
    // The master says so as php-fpm does; it and its worker each reopen
    // (their debug lines land in the new file).
    let reopened = has(&log, "error log file re-opened", 1) && has(&log, "reopened", 2);
    fcgi_tests::daemon::signal_pid(child.id(), Signal::SIGTERM);
    let status = child.wait().unwrap();
    let rotated = std::fs::read_to_string(dir.path().join("error.log.1")).unwrap();
    assert!(
        reopened,
        "{}\n{rotated}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(status.success(), "{status:?}");
}

/// Runs `tfpm -F -y /etc/php/8.2/fpm/php-fpm.conf` (Debian's files, not
/// copies) in a private mount namespace, where /run/php and /var/log are
/// empty tmpfs: the paths those files name, free for the test.
#[test]
fn debian_php_fpm_files_run_unchanged() {
    let conf = Path::new("/etc/php/8.2/fpm/php-fpm.conf");
    assert!(
        conf.exists() && Path::new("/etc/php/8.2/fpm/pool.d/www.conf").exists(),
        "install Debian's php8.2-fpm (scripts/install-deps.sh does)"
    );
    let who = repo_root().join("tests/docroot/pools/who.php");
    let script = format!(
        r#"
set -eu
mount -t tmpfs tmpfs /run/php 2>/dev/null || {{ mkdir -p /run/php; mount -t tmpfs tmpfs /run/php; }}
mount -t tmpfs tmpfs /var/log
{TFPM} -F -y {conf} &
master=$!
sock=/run/php/php8.2-fpm.sock
touch /var/log/php8.2-fpm.log
timeout 30 sh -c 'tail -n +1 -F /var/log/php8.2-fpm.log | grep -q "ready to handle connections"' 
echo "socket $(stat -c '%U %G %a' $sock)"
echo "pidfile $(cat /run/php/php8.2-fpm.pid) $master"
echo "workers $(ps -o user= --ppid $master | sort -u | tr '\n' ' ')"
echo "who $(SCRIPT_FILENAME={who} SCRIPT_NAME=/who.php REQUEST_METHOD=GET cgi-fcgi -bind -connect $sock | tail -n 1)"
kill -QUIT $master
wait $master && echo "exit 0" || echo "exit $?"
echo "log $(grep -c 'ready to handle connections' /var/log/php8.2-fpm.log)"
echo "skipped $(grep -o 'never loads: [a-z0-9_, ]*' /var/log/php8.2-fpm.log | head -n1)"
"#,
        conf = conf.display(),
        who = who.display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--fork", "bash", "-c", &script])
        .output()
        .expect("run unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let diag = format!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{diag}");
    let line = |tag: &str| {
        let found = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{tag} ")));
        found
            .unwrap_or_else(|| panic!("no {tag} line\n{diag}"))
            .trim()
            .to_string()
    };
    // www.conf: listen.owner/group www-data; php-fpm's default mode 0660.
    assert_eq!(line("socket"), "www-data www-data 660", "{diag}");
    let pids = line("pidfile");
    let (written, master) = pids.split_once(' ').unwrap();
    assert_eq!(written, master, "php-fpm.conf's pid file names the master");
    // www.conf: user = www-data, for the worker process.
    assert_eq!(line("workers"), "www-data", "{diag}");
    let who = line("who");
    assert_eq!(field(&who, "user"), "www-data", "{diag}");
    // Debian's /etc/php/8.2/fpm/php.ini (production: display_errors off)
    // and conf.d/10-opcache.ini are used.
    assert_eq!(field(&who, "display_errors"), "", "{diag}");
    assert_eq!(field(&who, "opcache"), "true", "{diag}");
    assert_eq!(line("exit"), "0", "{diag}");
    // php-fpm.conf's error_log gets the log.
    assert_eq!(line("log"), "1", "{diag}");
    // It names the extensions Debian's conf.d loads, which tfpm does not.
    let skipped = line("skipped");
    assert!(
        skipped.contains("ctype") && !skipped.contains("opcache"),
        "{diag}"
    );
}

/// `-m`, `-i` and `-v`, next to the same flags of php-fpm from our build.
#[test]
fn module_info_and_version_flags_print_what_php_fpm_prints() {
    let fpm = fcgi_tests::php::php_fpm().expect("php-fpm from our PHP build");
    let out = |bin: &Path, flag: &str| {
        let out = Command::new(bin).arg(flag).output().expect("run");
        assert!(
            out.status.success(),
            "{} {flag}: {:?}",
            bin.display(),
            out.status
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tfpm = Path::new(TFPM);
    assert_eq!(out(tfpm, "-m"), out(&fpm, "-m"));
    let (ours, theirs) = (out(tfpm, "-i"), out(&fpm, "-i"));
    for line in [
        "phpinfo()",
        "Server API => FPM/FastCGI",
        "Thread Safety => enabled",
    ] {
        assert!(ours.contains(line) && theirs.contains(line), "{line}");
    }
    // First line: "PHP 8.2.x (fpm-fcgi) (...)", as scripts parse it.
    let first = |s: String| {
        s.lines()
            .next()
            .unwrap_or_default()
            .split(" (")
            .take(2)
            .collect::<Vec<_>>()
            .join(" (")
    };
    assert_eq!(first(out(tfpm, "-v")), first(out(&fpm, "-v")));
}

/// php-fpm's default `daemonize = yes`: without -F, tfpm returns once its
/// pool is ready, and runs on in the background under the pid file's pid.
#[test]
fn daemonize_returns_once_ready_and_leaves_the_pid_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let conf = dir.path().join("php-fpm.conf");
    let text = format!(
        "[global]\npid = {d}/tfpm.pid\nerror_log = {d}/error.log\n\
         [bg]\nlisten = {d}/bg.sock\npm = static\npm.max_children = 1\n"
    );
    std::fs::write(&conf, text).unwrap();
    let status = Command::new(TFPM)
        .args(["-R", "-y", conf.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run tfpm");
    assert!(status.success(), "{status:?}");
    // Ready when the parent returned: the pid file and the socket are there.
    let pid: u32 = std::fs::read_to_string(dir.path().join("tfpm.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    let answer = who(FcgiClient::connect_unix(&dir.path().join("bg.sock")));
    assert!(answer.contains("\"pid\":"), "{answer}");
    fcgi_tests::daemon::signal_pid(pid, Signal::SIGTERM);
    let gone = fcgi_tests::poll_until(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || (!Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
    );
    let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    assert!(gone.is_some(), "the daemon did not stop\n{log}");
    assert!(log.contains("ready to handle connections"), "{log}");
}

/// `-O` keeps the log on stderr although the config names an error_log,
/// and `-tt` checks a config as `-t` does (php-src's own FPM tests use both).
#[test]
fn force_stderr_and_double_test_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    let log = dir.path().join("error.log");
    let text = format!(
        "[global]\nerror_log = {}\n[o]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n",
        log.display()
    );
    std::fs::write(&conf, text).unwrap();
    let checked = Command::new(TFPM)
        .args(["-tt", "-R", "-y", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    // -tt dumps the configuration as php-fpm does.
    let dump = String::from_utf8_lossy(&checked.stderr);
    assert!(dump.contains("NOTICE: [o]\n"), "{dump}");
    assert!(dump.contains("NOTICE: \tpm.max_children = 1\n"), "{dump}");
    // Tfpm::start waits for the ready line on stderr: it is there with -O.
    let tfpm = Tfpm::start(
        TFPM.as_ref(),
        &["-F", "-O", "-R", "-y", conf.to_str().unwrap()],
    );
    assert!(tfpm.log().contains("ready to handle connections"));
    // The error_log is created all the same, as php-fpm creates it.
    let in_file = std::fs::read_to_string(&log).expect("the error_log exists");
    assert!(
        !in_file.contains("ready to handle connections"),
        "{in_file}"
    );
}

/// SIGUSR2 reads php-fpm.conf again, as php-fpm's reload does: a pool's
/// new values apply, a pool that still listens where it did keeps its
/// socket (same port, never closed), a new pool gets its socket, and a
/// pool taken out loses it.
#[test]
fn a_reload_reads_the_config_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    let sock = dir.path().join("b.sock");
    let write = |precision: u32, with_b: bool| {
        let mut text = format!(
            "[global]\nerror_log = /proc/self/fd/2\n\
             [a]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n\
             php_value[precision] = {precision}\n"
        );
        if with_b {
            text.push_str(&format!(
                "[b]\nlisten = {}\npm = static\npm.max_children = 1\nphp_value[precision] = 5\n",
                sock.display()
            ));
        }
        std::fs::write(&conf, text).unwrap();
    };
    write(7, false);
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let a = tfpm.addr();
    assert_eq!(field(&who(FcgiClient::connect_tcp(a)), "precision"), "7");
    let reload = |done: usize| {
        tfpm.signal(Signal::SIGUSR2);
        let ready = fcgi_tests::poll_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(10),
            || (tfpm.log().matches("ready to handle connections").count() >= done).then_some(()),
        );
        assert!(ready.is_some(), "{}", tfpm.log());
    };

    write(9, true);
    reload(2);
    assert_eq!(field(&who(FcgiClient::connect_tcp(a)), "precision"), "9");
    assert_eq!(
        field(&who(FcgiClient::connect_unix(&sock)), "precision"),
        "5"
    );
    assert!(
        tfpm.log().contains("using inherited socket fd="),
        "{}",
        tfpm.log()
    );

    write(9, false);
    reload(3);
    assert_eq!(field(&who(FcgiClient::connect_tcp(a)), "precision"), "9");
    assert!(!sock.exists(), "pool b's socket is still there");

    // A config that does not load leaves the running pools alone.
    std::fs::write(&conf, "[global]\nbogus = 1\n").unwrap();
    tfpm.signal(Signal::SIGUSR2);
    let failed = fcgi_tests::poll_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(10),
        || tfpm.log().contains("reload failed").then_some(()),
    );
    assert!(failed.is_some(), "{}", tfpm.log());
    assert_eq!(field(&who(FcgiClient::connect_tcp(a)), "precision"), "9");
}

/// `pm = ondemand` starts no process before a request, in php-fpm, and
/// lets idle ones go: a tfpm pool with it gets its worker process at its
/// first connection, and loses it after `pm.process_idle_timeout` without
/// requests, so that many such pools cost nothing while unused.
#[test]
fn an_ondemand_pool_has_a_worker_only_while_it_is_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        "[global]\nerror_log = /proc/self/fd/2\n\
         [busy]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n\
         [idle]\nlisten = 127.0.0.2:0\npm = ondemand\npm.max_children = 2\n\
         pm.process_idle_timeout = 1s\nphp_value[precision] = 4\n",
    )
    .unwrap();
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let tcp = tfpm.tcp_addrs();
    assert_eq!(tcp.len(), 2, "{}", tfpm.log());
    assert_eq!(tfpm.worker_pids().len(), 1, "{}", tfpm.log());
    let first = who(FcgiClient::connect_tcp(tcp[1]));
    assert_eq!(field(&first, "precision"), "4");
    assert_eq!(tfpm.worker_pids().len(), 2, "{}", tfpm.log());
    // Idle: its thread goes after a second, then the worker process.
    let gone = fcgi_tests::poll_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || (tfpm.worker_pids().len() == 1).then_some(()),
    );
    assert!(gone.is_some(), "{}", tfpm.log());
    // The next connection starts a new one.
    let again = who(FcgiClient::connect_tcp(tcp[1]));
    assert_eq!(field(&again, "precision"), "4");
    assert_ne!(field(&again, "pid"), field(&first, "pid"));
}

/// The global `rlimit_files` is the open-file limit of the master and so of
/// every worker, as php-fpm sets it.
#[test]
fn rlimit_files_limits_every_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        "[global]\nerror_log = /proc/self/fd/2\nrlimit_files = 2048\n\
         [www]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 1\n",
    )
    .expect("write the config");
    let args = ["-F", "-R", "-n", "-y", conf.to_str().unwrap()];
    let tfpm = Tfpm::start(TFPM.as_ref(), &args);
    let workers = tfpm.worker_pids();
    assert!(!workers.is_empty(), "{}", tfpm.log());
    let pids = std::iter::once(tfpm.pid()).chain(workers);
    for pid in pids {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
        let open_files = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("Max open files");
        let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
        assert_eq!(numbers, ["2048", "2048"], "pid {pid}: {open_files}");
    }
}
