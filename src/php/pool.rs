//! The worker pool: N plain OS threads, each with its own PHP interpreter
//! context, taking requests from one bounded queue and running them to the end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::request::{PreparedRequest, Request, RequestPolicy};
use super::sys;

/// The queue is closed: the engine is shutting down.
pub struct SubmitError(pub Request);

impl std::fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmitError(queue closed)")
    }
}

/// The sending side of the request queue; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    queue: async_channel::Sender<Request>,
    busy: Arc<AtomicUsize>,
    threads: usize,
}

impl Pool {
    /// Queues a request, waiting while the queue is full.
    pub async fn submit(&self, req: Request) -> Result<(), SubmitError> {
        self.queue
            .send(req)
            .await
            .map_err(|e| SubmitError(e.into_inner()))
    }

    /// Requests waiting for a thread.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Threads running a request right now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Stops taking requests; queued ones still run.
    pub fn close(&self) {
        self.queue.close();
    }
}

/// The worker threads and the receiving side of the queue.
pub(super) struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` workers. Must run after PHP's module start-up.
    pub(super) fn spawn(
        threads: usize,
        stack_size: usize,
        queue_len: usize,
        policy: RequestPolicy,
    ) -> std::io::Result<(Pool, Workers)> {
        let (tx, rx) = async_channel::bounded(queue_len.max(1));
        let busy = Arc::new(AtomicUsize::new(0));
        let policy = Arc::new(policy);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (rx, busy, policy) = (rx.clone(), busy.clone(), policy.clone());
            let handle = std::thread::Builder::new()
                .name(format!("php-{i}"))
                .stack_size(stack_size)
                .spawn(move || worker_main(&rx, &busy, &policy))?;
            handles.push(handle);
        }
        let pool = Pool {
            queue: tx,
            busy,
            threads,
        };
        Ok((pool, Workers { handles }))
    }

    /// Waits for every worker to finish the queue and exit.
    pub(super) fn join(self) {
        for h in self.handles {
            if h.join().is_err() {
                tracing::error!("a PHP worker thread panicked");
            }
        }
    }
}

fn worker_main(rx: &async_channel::Receiver<Request>, busy: &AtomicUsize, policy: &RequestPolicy) {
    // SAFETY: called once on this fresh thread, after php_module_startup
    // finished on php-main (Workers::spawn runs after it); allocates this
    // thread's interpreter context.
    unsafe { sys::tfpm_thread_init() };
    while let Ok(req) = rx.recv_blocking() {
        busy.fetch_add(1, Ordering::Relaxed);
        run(req, policy);
        busy.fetch_sub(1, Ordering::Relaxed);
    }
    // SAFETY: same thread as tfpm_thread_init, and no request is running.
    unsafe { sys::tfpm_thread_shutdown() };
}

fn run(req: Request, policy: &RequestPolicy) {
    let mut prepared = PreparedRequest::new(req, policy);
    if prepared.disposition() == sys::tfpm_disposition_TFPM_DENIED {
        let script = prepared.ctx.script.clone();
        tracing::warn!(%script, "access to the script has been denied (see security.limit_extensions)");
    }
    let c_req = prepared.as_c();
    // SAFETY: c_req points into `prepared`, which outlives the call and is not
    // touched by Rust until it returns; this thread was set up by
    // tfpm_thread_init. Bailouts are caught inside tfpm_execute.
    let status = unsafe { sys::tfpm_execute(&c_req) };
    // Normally PHP ended the response in its deactivate hook; make sure.
    prepared.ctx.finish();
    if status == 255 {
        tracing::debug!(script = %prepared.ctx.script, "script ended with a fatal error");
    }
}
