//! Reloads behind nginx's kept connections. A retiring worker passes each
//! kept connection, once it has nothing in flight, through the master to a
//! worker of the new generation, with any input it had read and not
//! handled; so a reload never closes a connection nginx may be sending a
//! request on. Each load test counts what clients saw (every request must
//! succeed, POSTs included, which nginx never retries) and what nginx
//! logged about its upstream (nothing).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::daemon::{Signal, Tfpm};
use fcgi_tests::fcgi_client::{encode_request, FcgiClient};
use fcgi_tests::nginx::Nginx;
use fcgi_tests::{docroot, http, poll_until, tempfile};

const TFPM: &str = env!("CARGO_BIN_EXE_tfpm");
const CLIENTS: usize = 8;
const FORM: &[u8] = b"name=tfpm&n=42";
const ECHOED: &str = r#"{"name":"tfpm","n":"42"}"#;

/// Clients through nginx until stopped, each in turn POSTing a form and
/// GETting a page; each outcome that is not the right answer is kept, with
/// what it was.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<usize>>,
    failures: Arc<Mutex<Vec<String>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(nginx: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(Mutex::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..CLIENTS)
            .map(|_| {
                let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut post = true;
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = if post {
                            post_form(nginx)
                        } else {
                            get_page(nginx)
                        };
                        post = !post;
                        match outcome {
                            Ok(()) => *answered.lock().unwrap() += 1,
                            Err(why) => failures.lock().unwrap().push(why),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            failures,
            clients,
        }
    }

    /// Waits until `n` more requests were answered.
    fn wait_answered(&self, n: usize, tfpm: &Tfpm) {
        let target = *self.answered.lock().unwrap() + n;
        let done = poll_until(Duration::from_secs(60), Duration::from_millis(5), || {
            (*self.answered.lock().unwrap() >= target).then_some(())
        });
        assert!(done.is_some(), "the load stalled\n{}", tfpm.log());
    }

    /// Stops the clients: (answered, failures).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.join().unwrap();
        }
        let answered = *self.answered.lock().unwrap();
        let failures = self.failures.lock().unwrap().clone();
        (answered, failures)
    }
}

fn post_form(nginx: SocketAddr) -> Result<(), String> {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    match http::request(nginx, "POST", "/post.php", &headers, FORM) {
        Ok(r) if r.status == 200 && r.text() == ECHOED => Ok(()),
        Ok(r) => Err(r.summary()),
        Err(e) => Err(format!("I/O: {e}")),
    }
}

fn get_page(nginx: SocketAddr) -> Result<(), String> {
    match http::request(nginx, "GET", "/hello.php", &[], b"") {
        Ok(r) if r.status == 200 && r.text() == "Hello, world!\n" => Ok(()),
        Ok(r) => Err(r.summary()),
        Err(e) => Err(format!("I/O: {e}")),
    }
}

/// nginx's error-log lines about its upstream (a broken pipe, a reset, an
/// early close): each is a request that met a closing connection.
fn upstream_errors(nginx: &Nginx) -> Vec<String> {
    let log = nginx.error_log();
    log.lines()
        .filter(|l| l.contains("upstream"))
        .map(str::to_string)
        .collect()
}

/// SIGUSR2, then waits until the master says for the `n`th time that it
/// is ready (the first is the start).
fn reload(tfpm: &Tfpm, n: usize) {
    tfpm.signal(Signal::SIGUSR2);
    let done = poll_until(Duration::from_secs(30), Duration::from_millis(10), || {
        (tfpm.log().matches("ready to handle connections").count() >= n).then_some(())
    });
    done.unwrap_or_else(|| panic!("reload {n} did not finish\n{}", tfpm.log()));
}

/// A series of the master's summed metrics.
fn metric(tfpm: &Tfpm, name: &str) -> f64 {
    let text = http::get(tfpm.metrics_addr(), "/metrics").text();
    let line = text.lines().find(|l| l.split(' ').next() == Some(name));
    let value = line.and_then(|l| l.rsplit(' ').next());
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// What `/crash/pid.php` answers through nginx: (worker pid, precision).
fn pid_and_precision(nginx: &Nginx) -> (u32, String) {
    let text = http::get(nginx.addr(), "/crash/pid.php").text();
    let (pid, precision) = text.trim().split_once(' ').expect("pid precision");
    (pid.parse().expect("a pid"), precision.to_string())
}

fn check_no_failures(
    what: &str,
    tfpm: &Tfpm,
    nginx: &Nginx,
    (answered, failures): (usize, Vec<String>),
) {
    let errors = upstream_errors(nginx);
    eprintln!(
        "{what}: {} requests, {} failed, {} upstream errors in nginx's log",
        answered + failures.len(),
        failures.len(),
        errors.len()
    );
    assert!(
        failures.is_empty() && errors.is_empty(),
        "failures: {:?}\nnginx: {errors:#?}\n{}",
        &failures[..failures.len().min(5)],
        tfpm.log()
    );
}

/// A GET request with FCGI_KEEP_CONN, as the bytes nginx would send.
fn kept_request(request: &CgiRequest) -> Vec<u8> {
    let params = request.params();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    encode_request(1, &params, b"", true)
}

fn write_ini(path: &Path, precision: u32) {
    std::fs::write(path, format!("precision={precision}\n")).unwrap();
}

#[test]
fn three_reloads_under_post_and_get_load_through_nginx_fail_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ini = dir.path().join("php.ini");
    write_ini(&ini, 11);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--threads",
        "8",
        "--metrics-listen",
        "127.0.0.1:0",
        "-c",
        ini.to_str().unwrap(),
    ];
    let tfpm = Tfpm::start(TFPM.as_ref(), &args);
    let nginx = Nginx::start(&tfpm.addr().to_string(), &docroot(), "");
    assert_eq!(pid_and_precision(&nginx).1, "11");

    let load = Load::start(nginx.addr());
    load.wait_answered(300, &tfpm);
    for (n, precision) in [(2, 12), (3, 13), (4, 14)] {
        write_ini(&ini, precision);
        reload(&tfpm, n);
        load.wait_answered(300, &tfpm);
    }
    check_no_failures(
        "3 reloads under POST and GET load",
        &tfpm,
        &nginx,
        load.finish(),
    );
    assert_eq!(
        pid_and_precision(&nginx).1,
        "14",
        "php.ini was not read again"
    );
    // The connections nginx kept went on in the new workers.
    assert!(
        metric(&tfpm, "tfpm_connections_adopted_total") >= 1.0,
        "{}",
        tfpm.log()
    );
}

#[test]
fn a_connection_handed_over_mid_request_keeps_the_bytes_read_ahead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let go = dir.path().join("go");
    // At debug level the log says what became of the connection.
    let tfpm = Tfpm::start_with_env(
        TFPM.as_ref(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        &[("RUST_LOG", "debug,tfpm::php=info")],
    );
    let old = tfpm.worker_pids();
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let query = format!("file={}", go.display());
    let first = CgiRequest::get(&docroot(), "/wait_file.php").query(&query);
    let second = CgiRequest::get(&docroot(), "/crash/pid.php");
    let (first, second) = (kept_request(&first), kept_request(&second));
    // The first request, and 13 bytes of the next in the same write: the
    // worker reads the header of its BEGIN_REQUEST and part of the body.
    let mut ahead = first.clone();
    ahead.extend_from_slice(&second[..13]);
    use std::io::Write;
    client.stream().write_all(&ahead).unwrap();

    // A reload while the first request is in flight: the old worker
    // retires, and hands the connection over once the request has ended.
    reload(&tfpm, 2);
    std::fs::write(&go, "").unwrap();
    let answer = client
        .read_response()
        .expect("the first answer")
        .cgi()
        .text();
    let served_by: u32 = answer.trim().parse().expect("a pid");
    assert_eq!(
        vec![served_by],
        old,
        "the first request ran in the old worker"
    );

    client.stream().write_all(&second[13..]).unwrap();
    let answer = client
        .read_response()
        .unwrap_or_else(|e| panic!("the second answer: {e}\n{}", tfpm.log()))
        .cgi()
        .text();
    let adopted_by: u32 = answer.split(' ').next().unwrap().parse().expect("a pid");
    // Both workers say so (their lines may reach the log after the answer).
    for line in [
        "handed a kept connection over (13 bytes read ahead)",
        "adopted a kept connection (13 bytes read ahead)",
    ] {
        let said = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
            tfpm.log().contains(line).then_some(())
        });
        assert!(said.is_some(), "no {line:?} in\n{}", tfpm.log());
    }
    assert!(
        !old.contains(&adopted_by),
        "{adopted_by} is an old worker\n{}",
        tfpm.log()
    );
    // The same connection goes on.
    let third = CgiRequest::get(&docroot(), "/crash/pid.php");
    let answer = client
        .send(&third, true)
        .expect("the third answer")
        .cgi()
        .text();
    assert!(answer.starts_with(&format!("{adopted_by} ")), "{answer}");
}

#[test]
fn pm_max_requests_renewing_threads_under_load_fails_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        "[global]\nerror_log = /proc/self/fd/2\n\
         [www]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = 4\npm.max_requests = 3\n",
    )
    .unwrap();
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let nginx = Nginx::start(&tfpm.addr().to_string(), &docroot(), "");
    let load = Load::start(nginx.addr());
    load.wait_answered(1000, &tfpm);
    check_no_failures(
        "pm.max_requests = 3 under POST and GET load",
        &tfpm,
        &nginx,
        load.finish(),
    );
}

#[test]
fn a_reload_that_changes_the_pools_fails_nothing_on_the_pool_that_stays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    let sock = dir.path().join("b.sock");
    let write = |children: u32, with_b: bool| {
        let mut text = format!(
            "[global]\nerror_log = /proc/self/fd/2\n\
             [a]\nlisten = 127.0.0.1:0\npm = static\npm.max_children = {children}\n"
        );
        if with_b {
            text.push_str(&format!(
                "[b]\nlisten = {}\npm = static\npm.max_children = 1\n",
                sock.display()
            ));
        }
        std::fs::write(&conf, text).unwrap();
    };
    write(4, true);
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let nginx = Nginx::start(&tfpm.addr().to_string(), &docroot(), "");
    let load = Load::start(nginx.addr());
    load.wait_answered(300, &tfpm);

    // Pool b has a request in flight on a kept connection when a reload
    // removes it: the request finishes, then the connection closes.
    let go = dir.path().join("go");
    let mut b = FcgiClient::connect_unix(&sock).expect("connect to pool b");
    let query = format!("file={}", go.display());
    let waiting = CgiRequest::get(&docroot(), "/wait_file.php").query(&query);
    use std::io::Write;
    b.stream().write_all(&kept_request(&waiting)).unwrap();

    write(6, false);
    reload(&tfpm, 2);
    load.wait_answered(300, &tfpm);
    std::fs::write(&go, "").unwrap();
    let answer = b.read_response().expect("pool b's request finishes");
    assert!(
        answer.cgi().text().trim().parse::<u32>().is_ok(),
        "{}",
        answer.cgi().text()
    );
    assert!(
        b.peer_closed(Duration::from_secs(10)).unwrap(),
        "pool b's connection stays open"
    );

    write(4, false);
    reload(&tfpm, 3);
    load.wait_answered(300, &tfpm);
    check_no_failures(
        "reloads that change the pools",
        &tfpm,
        &nginx,
        load.finish(),
    );
}

#[test]
fn an_idle_ondemand_worker_leaves_its_kept_connection_to_the_next_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("php-fpm.conf");
    std::fs::write(
        &conf,
        "[global]\nerror_log = /proc/self/fd/2\n\
         [idle]\nlisten = 127.0.0.1:0\npm = ondemand\npm.max_children = 2\n\
         pm.process_idle_timeout = 1s\n",
    )
    .unwrap();
    let tfpm = Tfpm::start(TFPM.as_ref(), &["-F", "-R", "-y", conf.to_str().unwrap()]);
    let mut client = FcgiClient::connect_tcp(tfpm.addr()).expect("connect");
    let pid = CgiRequest::get(&docroot(), "/crash/pid.php");
    let first = client
        .send(&pid, true)
        .expect("the first answer")
        .cgi()
        .text();
    // Idle: the worker retires; the master holds the kept connection.
    let gone = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
        tfpm.worker_pids().is_empty().then_some(())
    });
    assert!(gone.is_some(), "the idle worker stays\n{}", tfpm.log());
    // A request on it starts a worker, which is given the connection.
    let again = client
        .send(&pid, true)
        .expect("the kept connection still serves")
        .cgi()
        .text();
    assert_ne!(
        first.split(' ').next(),
        again.split(' ').next(),
        "{first} {again}"
    );
}
