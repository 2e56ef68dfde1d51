//! A worker's server around the engine: listeners, per-connection tasks,
//! the worker's limits (connections, requests in flight), the drain of a
//! stopping worker and the handover of its kept connections, the status
//! page and the metrics endpoint. Processes, signals and systemd are
//! [`crate::process`]'s; nothing here imports it.
//!
//! It may import [`crate::fcgi`], [`crate::php`], [`crate::config`] and
//! [`crate::sys`].
//!
//! Everything here runs on tokio. PHP itself runs on the engine's own
//! threads; requests reach them through [`crate::php::Pool`].

pub mod conn;
pub mod fpmlog;
pub mod listener;
pub mod metrics;
pub mod pools;
pub mod probes;
mod sink;
pub mod status;
pub mod status_page;

pub use listener::{ListenAddr, Listener};

/// The log target of tfpm's own start-up lines (sockets, workers), which
/// php-fpm does not print: with the php-fpm log format they show at debug
/// level only, so that the log starts as php-fpm's does.
pub const STARTUP: &str = "tfpm::startup";

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::fcgi::conn::{ConnConfig, Timeouts};
use crate::php::Pool;
use crate::sys::fdpass;

/// How the server stops accepting: how long requests in flight may take,
/// whether to serve the connections still in the listen backlog (yes
/// when the sockets close; no when a reload leaves them to new workers),
/// and whether open connections go to other workers once they have
/// nothing in flight (a reload or a retirement with a successor) or close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// How long requests in flight may take before the server gives up on
    /// the connections still open.
    pub drain: Duration,
    /// Whether connections still waiting in the listen backlog are accepted
    /// and served before the listeners close.
    pub sweep: bool,
    /// Whether idle connections go to another worker, through the master,
    /// instead of closing.
    pub hand_over: bool,
}

/// What a connection does when it has no request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draining {
    /// Serving: it waits for the next request.
    No,
    /// Stopping: it closes (a request already here is served first).
    Close,
    /// Retiring with a successor: it goes to another worker, with any input
    /// read and not handled, through the master.
    HandOver,
}

/// Settings shared by every connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Protocol limits, as advertised for the whole pool.
    pub conn: ConnConfig,
    /// Connections this worker process takes at most (its share of
    /// `conn.max_conns`): past it, new connections wait in the listen
    /// backlog, for this worker or another.
    pub conn_slots: usize,
    /// Requests in flight in this worker process (its share); more get
    /// OVERLOADED.
    pub max_requests: usize,
    /// The connection timeouts (first byte, params, stdin, idle).
    pub timeouts: Timeouts,
    /// php-fpm's `listen.allowed_clients`: TCP clients from elsewhere are
    /// dropped at accept. None lets everyone in.
    pub allowed_clients: Option<Vec<std::net::IpAddr>>,
    /// The pool's status page, answered without PHP.
    pub status: Option<Arc<status::StatusPage>>,
    /// The pool's environment (`env[...]`, `clear_env`): pairs every
    /// request gets under its own params.
    pub env: Arc<Vec<(bytes::Bytes, bytes::Bytes)>>,
}

/// What every connection shares: its settings, the request slots, and
/// whether the server is draining (stopping gracefully).
pub struct ConnContext {
    /// Protocol limits, as advertised for the whole pool.
    pub conn: ConnConfig,
    /// The connection timeouts (first byte, params, stdin, idle).
    pub timeouts: Timeouts,
    requests: Arc<Semaphore>,
    max_requests: usize,
    /// What a connection does once it has no request in flight: changes
    /// when the server drains.
    draining: watch::Receiver<Draining>,
    allowed_clients: Option<Vec<std::net::IpAddr>>,
    status: Option<Arc<status::StatusPage>>,
    env: Arc<Vec<(bytes::Bytes, bytes::Bytes)>>,
}

impl ConnContext {
    /// The context for `config`, with as many request slots as
    /// `config.max_requests`; `draining` tells connections when to stop.
    pub fn new(config: &ServerConfig, draining: watch::Receiver<Draining>) -> Self {
        ConnContext {
            conn: config.conn,
            timeouts: config.timeouts,
            requests: Arc::new(Semaphore::new(config.max_requests)),
            max_requests: config.max_requests,
            draining,
            allowed_clients: config.allowed_clients.clone(),
            status: config.status.clone(),
            env: config.env.clone(),
        }
    }

    /// `params` with the pool's environment under them: a param of the
    /// same name wins, as php-fpm's params win over its environment. Params
    /// are listed newest first, so the environment goes in backwards, for
    /// `getenv()` to list it in the environment's own order, as php-fpm's.
    fn with_env(&self, params: crate::fcgi::nv::Params) -> crate::fcgi::nv::Params {
        if self.env.is_empty() {
            return params;
        }
        let own = params.iter().map(|(k, v)| (k.clone(), v.clone()));
        let all = self.env.iter().rev().cloned().chain(own).collect();
        crate::fcgi::nv::Params::from_pairs(all)
    }

    /// A slot for one more request in flight, if the daemon has one.
    fn request_slot(&self) -> Option<OwnedSemaphorePermit> {
        let slot = self.requests.clone().try_acquire_owned().ok();
        if slot.is_none() {
            tracing::warn!(
                limit = self.max_requests,
                "refusing a request with OVERLOADED: the daemon's limit of requests in flight is reached (max requests)"
            );
        }
        slot
    }
}

/// Accepts connections on every listener, and adopts those the master
/// passes on `handover`, until `stop` holds a [`Stop`] (`not_accepting`
/// fires then), then drains: each connection closes (or is handed over)
/// once it has no request in flight, and this returns when all are gone or
/// the drain time has passed. Returns how many connections were still open.
pub async fn serve(
    listeners: Vec<Listener>,
    pool: Pool,
    config: ServerConfig,
    stop: watch::Receiver<Option<Stop>>,
    not_accepting: oneshot::Sender<()>,
    handover: Option<Arc<fdpass::Channel>>,
) -> usize {
    let (draining_tx, draining) = watch::channel(Draining::No);
    let context = Arc::new(ConnContext::new(&config, draining));
    let conns = Arc::new(ConnSlots::new(config.conn_slots));
    let serving = Serving {
        pool,
        context,
        conns: conns.clone(),
        handover,
    };
    let serving = Arc::new(serving);
    let mut tasks = Vec::new();
    for listener in listeners {
        let (serving, stop) = (serving.clone(), stop.clone());
        tasks.push(tokio::spawn(accept_loop(listener, serving, stop)));
    }
    if serving.handover.is_some() {
        tasks.push(tokio::spawn(adopt_loop(serving.clone(), stop.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
    let (drain, hand_over) = stop
        .borrow()
        .map_or((Duration::ZERO, false), |s| (s.drain, s.hand_over));
    let _ = draining_tx.send(match hand_over && serving.handover.is_some() {
        true => Draining::HandOver,
        false => Draining::Close,
    });
    let _ = not_accepting.send(());
    let open = conns.open();
    if open > 0 {
        tracing::debug!(
            connections = open,
            hand_over,
            "draining: waiting for requests in flight (at most {drain:?})"
        );
    }
    match tokio::time::timeout(drain, conns.all_closed()).await {
        Ok(()) => 0,
        Err(_) => conns.open(),
    }
}

/// Whether `listen.allowed_clients` lets this connection in; php-fpm's
/// message when it does not.
fn allowed(stream: &listener::Stream, context: &ConnContext) -> bool {
    let listener::Stream::Tcp(tcp) = stream else {
        return true;
    };
    let Ok(peer) = tcp.peer_addr() else {
        return false;
    };
    let ok = pools::allowed(context.allowed_clients.as_deref(), peer.ip());
    if !ok {
        tracing::error!(
            "Connection disallowed: IP address '{}' has been dropped.",
            peer.ip()
        );
    }
    ok
}

/// The web server's IP address (None on a Unix socket).
fn peer_ip(stream: &listener::Stream) -> Option<std::net::IpAddr> {
    match stream {
        listener::Stream::Tcp(tcp) => tcp.peer_addr().ok().map(|a| a.ip()),
        listener::Stream::Unix(_) => None,
    }
}

/// The daemon-wide connection limit: one permit per open connection.
struct ConnSlots {
    slots: Arc<Semaphore>,
    max: usize,
    /// Whether the limit was hit and not yet logged as cleared.
    full: AtomicBool,
}

impl ConnSlots {
    fn new(max: usize) -> Self {
        ConnSlots {
            slots: Arc::new(Semaphore::new(max)),
            max,
            full: AtomicBool::new(false),
        }
    }

    /// Waits for a free slot; until one frees up, new connections wait in
    /// the kernel's listen backlog (never refused).
    async fn acquire(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.max,
                "max connections reached: new connections wait in the listen backlog"
            );
        }
        let slot = self.slots.clone().acquire_owned().await;
        self.full.store(false, Ordering::Relaxed);
        slot.expect("the connection semaphore is never closed")
    }

    /// Connections open now.
    fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Waits until every connection has closed.
    async fn all_closed(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(all).await;
    }
}

/// What every connection task of a worker needs.
struct Serving {
    pool: Pool,
    context: Arc<ConnContext>,
    conns: Arc<ConnSlots>,
    /// The channel to the master that connections are handed over and
    /// adopted on (workers of a master have one).
    handover: Option<Arc<fdpass::Channel>>,
}

impl Serving {
    /// Serves a connection in a task of its own, holding its slot; one
    /// handed over at the end goes to the master.
    fn spawn(
        self: &Arc<Self>,
        stream: listener::Stream,
        origin: conn::Origin,
        slot: OwnedSemaphorePermit,
    ) {
        let serving = self.clone();
        let peer = peer_ip(&stream);
        tokio::spawn(async move {
            let (pool, context) = (serving.pool.clone(), serving.context.clone());
            let handed = conn::serve_connection(stream, pool, context, peer, origin).await;
            if let (Some((stream, unread)), Some(channel)) = (handed, &serving.handover) {
                hand_over(channel, stream, unread).await;
            }
            drop(slot);
        });
    }
}

/// Passes a connection with nothing in flight to the master, for a worker
/// of the new generation. If that fails the connection closes, as it
/// would have without a handover.
async fn hand_over(channel: &fdpass::Channel, stream: listener::Stream, unread: Vec<u8>) {
    let ahead = unread.len();
    let sent = match stream.into_passed(unread) {
        Ok(passed) => channel.send(passed).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => tracing::debug!("handed a kept connection over ({ahead} bytes read ahead)"),
        Err(e) => tracing::warn!("cannot hand a connection over, closing it: {e}"),
    }
}

/// Adopts the connections the master passes (from retiring workers) until
/// the server stops accepting.
async fn adopt_loop(serving: Arc<Serving>, mut stop: watch::Receiver<Option<Stop>>) {
    let Some(channel) = serving.handover.clone() else {
        return;
    };
    loop {
        let passed = tokio::select! {
            _ = stop.changed() => return,
            passed = channel.recv() => passed,
        };
        let passed = match passed {
            Ok(Some(passed)) => passed,
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::warn!("{e}");
                continue;
            }
            Err(e) => {
                tracing::warn!("cannot adopt connections any more: {e}");
                return;
            }
        };
        let stream = match listener::Stream::from_passed(passed.fd, passed.kind) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("cannot adopt a connection: {e}");
                continue;
            }
        };
        tracing::debug!(
            "adopted a kept connection ({} bytes read ahead)",
            passed.buffered.len()
        );
        metrics::adopted();
        // An adopted connection takes a slot as an accepted one does; at
        // the limit it waits, unread, as connections in the backlog do.
        let slot = serving.conns.acquire().await;
        let origin = conn::Origin::Adopted(bytes::Bytes::from(passed.buffered));
        serving.spawn(stream, origin, slot);
    }
}

async fn accept_loop(
    listener: Listener,
    serving: Arc<Serving>,
    mut stop: watch::Receiver<Option<Stop>>,
) {
    let (context, conns) = (serving.context.clone(), serving.conns.clone());
    let spawn = |stream, slot| serving.spawn(stream, conn::Origin::Accepted, slot);
    loop {
        let slot = tokio::select! {
            _ = stop.changed() => break,
            slot = conns.acquire() => slot,
        };
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(stream) if !allowed(&stream, &context) => drop((stream, slot)),
                Ok(stream) => spawn(stream, slot),
                Err(e) => {
                    tracing::warn!(listener = %listener.addr(), "accept failed: {e}");
                    // EMFILE and friends: back off a little instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    // Connections already in the backlog are served, not reset by the
    // close (unless the socket lives on: other workers take them).
    if stop.borrow().is_some_and(|s| s.sweep) {
        while let Ok(slot) = conns.slots.clone().try_acquire_owned() {
            let Some(stream) = listener.accept_pending() else {
                break;
            };
            spawn(stream, slot);
        }
    }
    listener.cleanup();
}
