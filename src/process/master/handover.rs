//! Kept connections on their way between workers. A retiring worker (a
//! reload, or an idle ondemand worker) passes each of its connections here
//! once it has nothing in flight; the master gives it to a ready worker of
//! the pool that now listens where the connection came from. While the
//! pool has no ready worker the master holds the connection, watching it:
//! a request arriving on it starts a lazy pool's workers, and a peer that
//! closes it lets it go. So no planned retirement closes a connection that
//! the web server may be sending a request on.

use std::os::fd::AsFd;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::{Event, Master};
use crate::server::Listener;
use crate::sys::fdpass::{self, Passed};
use crate::sys::os;

/// A connection the master holds until its pool has a ready worker.
pub(super) struct Held {
    id: u64,
    /// The sockets of the pool it came from.
    from: Vec<Weak<Listener>>,
    conn: Passed,
    watch: tokio::task::AbortHandle,
}

/// Reads the connections a worker passes back, until its channel closes.
pub(super) async fn read_handovers(
    channel: Arc<fdpass::Channel>,
    from: Vec<Weak<Listener>>,
    pid: u32,
    events: mpsc::UnboundedSender<Event>,
) {
    loop {
        match channel.recv().await {
            Ok(Some(conn)) => {
                let from = from.clone();
                let _ = events.send(Event::Offered { from, conn });
            }
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::warn!(pid, "{e}");
            }
            Err(e) => {
                tracing::debug!(pid, "handover channel: {e}");
                return;
            }
        }
    }
}

/// Whether a pool's sockets include one of `from`. A worker's sockets are
/// known by weak references: a stopping master must not keep a socket open
/// (the kernel would queue connections on it that no one will accept).
fn shares(pool: &[Arc<Listener>], from: &[Weak<Listener>]) -> bool {
    pool.iter().any(|l| {
        from.iter()
            .any(|w| std::ptr::eq(Arc::as_ptr(l), w.as_ptr()))
    })
}

impl Master {
    /// The pool (of the current configuration) that listens where `from`
    /// did, if any.
    pub(super) fn successor(&self, from: &[Weak<Listener>]) -> Option<usize> {
        self.pools.iter().position(|p| shares(&p.listeners, from))
    }

    /// A worker passed a connection back: it goes to a ready worker of its
    /// pool, or waits here for one. A connection whose pool is gone closes.
    pub(super) fn offered(&mut self, from: Vec<Weak<Listener>>, conn: Passed) {
        let Some(pool) = self.successor(&from) else {
            tracing::debug!("closing a handed-over connection: its pool is gone");
            return;
        };
        match self.ready_worker(pool) {
            Some(channel) => give(channel, conn),
            None => {
                tracing::debug!("holding a kept connection until its pool has a ready worker");
                self.hold(from, conn);
            }
        }
    }

    /// A ready worker of the current generation in `pool`, taken in turn.
    fn ready_worker(&mut self, pool: usize) -> Option<Arc<fdpass::Channel>> {
        let generation = self.generation;
        let ready: Vec<&super::Proc> = self
            .procs
            .iter()
            .filter(|p| p.ready && !p.stopping && p.generation == generation)
            .filter(|p| self.slots.get(p.index).is_some_and(|s| s.0 == pool))
            .collect();
        if ready.is_empty() {
            return None;
        }
        self.turn = self.turn.wrapping_add(1);
        ready[self.turn % ready.len()].handover.clone()
    }

    fn hold(&mut self, from: Vec<Weak<Listener>>, conn: Passed) {
        self.next_held += 1;
        let id = self.next_held;
        let events = self.events.clone();
        let watched = conn.fd.as_fd().try_clone_to_owned();
        let task = tokio::spawn(async move {
            let Ok(readiness) = watched.and_then(os::Readiness::new) else {
                return;
            };
            if readiness.readable().await.is_ok() {
                let _ = events.send(Event::HeldReadable(id));
            }
        });
        self.held.push(Held {
            id,
            from,
            conn,
            watch: task.abort_handle(),
        });
    }

    /// A held connection has input, or its peer closed it.
    pub(super) fn held_readable(&mut self, id: u64) {
        let Some(at) = self.held.iter().position(|h| h.id == id) else {
            return;
        };
        if fdpass::peer_closed(&self.held[at].conn.fd) {
            self.held.swap_remove(at);
            return;
        }
        let Some(pool) = self.successor(&self.held[at].from) else {
            self.held.swap_remove(at);
            return;
        };
        if self.pools[pool].lazy {
            // A request on a held connection wakes the pool, as one in
            // its backlog does.
            self.wanted(pool, self.generation);
        }
    }

    /// Gives the held connections of `pool` to its ready workers; closes
    /// those whose pool is gone (they have nothing in flight).
    pub(super) fn place_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        let mut wake = Vec::new();
        for h in held {
            match self.successor(&h.from) {
                None => h.watch.abort(),
                Some(pool) => match self.ready_worker(pool) {
                    Some(channel) => {
                        h.watch.abort();
                        give(channel, h.conn);
                    }
                    None if h.watch.is_finished() && fdpass::peer_closed(&h.conn.fd) => {}
                    None => {
                        // Input came while the pool changed hands (a reload
                        // of a lazy pool): it wakes the new one.
                        if h.watch.is_finished() && self.pools[pool].lazy {
                            wake.push(pool);
                        }
                        self.held.push(h);
                    }
                },
            }
        }
        for pool in wake {
            self.wanted(pool, self.generation);
        }
    }
}

impl Master {
    /// Closes every held connection (the master stops).
    pub(super) fn drop_held(&mut self) {
        for h in self.held.drain(..) {
            h.watch.abort();
        }
    }
}

/// Sends a connection to a worker, in a task of its own.
fn give(channel: Arc<fdpass::Channel>, conn: Passed) {
    tokio::spawn(async move {
        if let Err(e) = channel.send(conn).await {
            tracing::warn!("cannot pass a connection to a worker, closing it: {e}");
        }
    });
}
