//! The thread pool on its own, through the library's API: the real engine
//! started in this test process, with no daemon, no FastCGI and no socket.
//! Requests go in with an in-memory sink and a body the test feeds; the
//! pool's counters, its threads' rows, its ondemand scaling, its renewal
//! after `pm.max_requests` and its refusal once closed are checked.
//!
//! PHP starts once per process, so the whole life of one pool is one test.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fcgi_tests::cgi::CgiRequest;
use fcgi_tests::{docroot, poll_until};
use tfpm::fcgi::Params;
use tfpm::php::scaling::Scaling;
use tfpm::php::{
    BodyPoll, BodySource, Engine, EngineConfig, Pool, Request, RequestLogs, RequestPolicy,
    ResponseSink, SinkGone,
};

const WAIT: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(20);

/// The response of one request, and whether it ended.
#[derive(Default)]
struct Capture {
    out: Mutex<Vec<u8>>,
    ended: Mutex<bool>,
}

impl ResponseSink for Capture {
    fn stdout(&self, data: Bytes) -> Result<(), SinkGone> {
        self.out.lock().unwrap().extend_from_slice(&data);
        Ok(())
    }
    fn stderr(&self, _: Bytes) -> Result<(), SinkGone> {
        Ok(())
    }
    fn end(&self, _: u32, _: bool) {
        *self.ended.lock().unwrap() = true;
    }
    fn abandon(&self) -> bool {
        true
    }
}

impl Capture {
    fn body(&self) -> Option<String> {
        if !*self.ended.lock().unwrap() {
            return None;
        }
        let out = self.out.lock().unwrap();
        let text = String::from_utf8_lossy(&out);
        Some(
            text.split_once("\r\n\r\n")
                .map_or("", |(_, b)| b)
                .to_string(),
        )
    }
}

/// A body the test sends piece by piece; dropping the sender ends it.
struct Fed(Receiver<Bytes>);

impl BodySource for Fed {
    fn next_chunk(&mut self, wait: Duration) -> BodyPoll {
        match self.0.recv_timeout(wait) {
            Ok(chunk) => BodyPoll::Chunk(chunk),
            Err(mpsc::RecvTimeoutError::Timeout) => BodyPoll::Pending,
            Err(mpsc::RecvTimeoutError::Disconnected) => BodyPoll::End,
        }
    }
}

/// A GET of `script` under tests/docroot; its output, and the sender of its
/// (empty) body.
fn request(script: &str) -> (Request, Arc<Capture>, Sender<Bytes>) {
    with_params(CgiRequest::get(&docroot(), script).params())
}

/// A POST of `body_len` bytes to input.php, which reads them all before it
/// answers; its output, and the sender of its body.
fn upload(body_len: usize) -> (Request, Arc<Capture>, Sender<Bytes>) {
    let body = vec![b'x'; body_len];
    let post = CgiRequest::post(&docroot(), "/input.php", "application/octet-stream", &body);
    with_params(post.params())
}

fn with_params(pairs: Vec<(String, String)>) -> (Request, Arc<Capture>, Sender<Bytes>) {
    let text: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let sink = Arc::new(Capture::default());
    let (tx, rx) = mpsc::channel();
    let request = Request {
        params: Params::from_text(&text),
        body: Box::new(Fed(rx)),
        sink: sink.clone(),
        abort: Arc::default(),
        keep_conn: false,
        span: tracing::Span::none(),
        client_ip: None,
    };
    (request, sink, tx)
}

fn submit(runtime: &tokio::runtime::Runtime, pool: &Pool, request: Request) {
    let submitted = runtime.block_on(pool.submit(request));
    assert!(submitted.is_ok(), "the pool refused a request");
}

fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll_until(WAIT, TICK, check).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// At most two threads, none at start, each renewed after three requests,
/// an idle one leaving after half a second.
fn config() -> EngineConfig {
    EngineConfig {
        ini_path: None,
        ignore_ini: true,
        ini_entries: vec![("display_errors".into(), "1".into())],
        locked_ini: Vec::new(),
        threads: 2,
        stack_size: 16 << 20,
        queue_len: 8,
        policy: RequestPolicy::default(),
        terminate_after: None,
        terminate_track_finished: false,
        scaling: Scaling::Ondemand {
            idle_timeout: Duration::from_millis(500),
        },
        max_requests: Some(3),
        scoreboard: None,
        logs: RequestLogs {
            pool: "www".into(),
            ..RequestLogs::default()
        },
        report_fd: None,
        worker: None,
    }
}

#[test]
fn one_pools_life_from_no_thread_to_closed() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let engine = Engine::start(config()).expect("PHP starts");
    let pool = engine.pool().clone();
    assert_eq!(
        pool.stats().threads,
        0,
        "ondemand: no thread before a request"
    );

    // Two requests that wait for their bodies hold both threads.
    let (first, first_out, first_body) = upload(3);
    let (second, second_out, second_body) = upload(2);
    submit(&runtime, &pool, first);
    submit(&runtime, &pool, second);
    wait_for("two busy threads", || (pool.busy() == 2).then_some(()));
    let stats = pool.stats();
    assert_eq!((stats.threads, stats.active, stats.idle), (2, 2, 0));
    let rows = pool.threads_status();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|row| row.busy && row.requests == 1),
        "{rows:?}"
    );

    // A third waits in the queue, and says every thread was busy.
    let (third, third_out, _third_body) = request("/hello.php");
    submit(&runtime, &pool, third);
    let stats = pool.stats();
    assert_eq!(stats.queued, 1, "{stats:?}");
    assert!(stats.max_children_reached >= 1, "{stats:?}");

    // Bodies in: all three answer, the third after a thread freed up.
    first_body.send(Bytes::from_static(b"abc")).unwrap();
    second_body.send(Bytes::from_static(b"de")).unwrap();
    let first = wait_for("the first response", || first_out.body());
    assert!(first.contains("\"bytes\":3"), "{first}");
    let second = wait_for("the second response", || second_out.body());
    assert!(second.contains("\"bytes\":2"), "{second}");
    let third = wait_for("the third response", || third_out.body());
    assert_eq!(third, "Hello, world!\n");
    let stats = pool.stats();
    assert_eq!((stats.accepted, stats.max_active, stats.queued), (3, 2, 0));

    // pm.max_requests: a thread that served three requests is replaced.
    let tids = |pool: &Pool| -> Vec<u32> { pool.threads_status().iter().map(|r| r.tid).collect() };
    let before = tids(&pool);
    for _ in 0..4 {
        let (hello, out, _body) = request("/hello.php");
        submit(&runtime, &pool, hello);
        wait_for("a hello response", || out.body());
    }
    wait_for("a renewed thread", || {
        let now = tids(&pool);
        now.iter().any(|tid| !before.contains(tid)).then_some(())
    });
    assert!(pool.threads_status().iter().all(|row| row.requests <= 3));

    // Ondemand: idle threads leave after the idle timeout.
    // (Renewed threads used to count twice: the pool thought itself full
    // with no thread left, and queued requests forever.)
    let left = poll_until(WAIT, TICK, || (pool.stats().threads == 0).then_some(()));
    assert!(
        left.is_some(),
        "{:?} {:?}",
        pool.stats(),
        pool.threads_status()
    );
    assert!(pool.threads_status().is_empty());

    // And the next request starts a thread again.
    let (hello, out, _body) = request("/hello.php");
    submit(&runtime, &pool, hello);
    assert_eq!(
        wait_for("a response after scaling to zero", || out.body()),
        "Hello, world!\n"
    );
    assert_eq!(pool.stats().threads, 1);

    // Closed: a request is handed back, not run.
    pool.close();
    let (late, late_out, _body) = request("/hello.php");
    let refused = runtime.block_on(pool.submit(late));
    assert!(refused.is_err(), "a closed pool took a request");
    assert!(late_out.body().is_none());
    engine.shutdown();
}
