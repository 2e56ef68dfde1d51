//! Starting a worker process: tfpm itself, re-executed with its
//! [`WorkerSpec`] in the environment, the listening sockets, its end of
//! the control channel and its scoreboard; and where its output goes.

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UnixStream;

use super::super::relay;
use super::handover::read_handovers;
use super::link::{read_link, wait_child, Link};
use super::{raw, wait_for_connection, Event, Master, Output, Proc};
use crate::process::worker::WorkerSpec;
use crate::sys::fdpass;
use crate::sys::os;
use crate::sys::scoreboard;

/// The command that starts a worker: this program, with the spec and then
/// the master's own arguments. The environment is passed untouched (the
/// worker drops the service manager's variables itself): changing it here
/// would hand it over sorted.
pub(super) fn worker_command(spec: &WorkerSpec) -> tokio::process::Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--worker-spec")
        .arg(spec.encode())
        .args(std::env::args_os().skip(1))
        .kill_on_drop(false);
    cmd
}

/// A worker's stdout and stderr, as its pool's [`Output`] wants them.
pub(super) struct Stdio {
    /// The worker's stdout and stderr (None: the master's).
    child: Option<(std::process::Stdio, std::process::Stdio)>,
    /// The master's stderr, for the worker's own log lines.
    log: Option<std::os::fd::OwnedFd>,
    /// The read ends of the pipes, for [`relay::relay`].
    relay: Option<(relay::Style, std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
}

impl Stdio {
    pub(super) fn new(output: &Output) -> std::io::Result<Stdio> {
        let log = || std::io::stderr().as_fd().try_clone_to_owned();
        Ok(match output {
            Output::Inherit => Stdio {
                child: None,
                log: None,
                relay: None,
            },
            Output::Discard => Stdio {
                child: Some((std::process::Stdio::null(), std::process::Stdio::null())),
                log: Some(log()?),
                relay: None,
            },
            Output::Catch(style) => {
                let (out_r, out_w) = os::pipe()?;
                let (err_r, err_w) = os::pipe()?;
                Stdio {
                    child: Some((out_w.into(), err_w.into())),
                    log: Some(log()?),
                    relay: Some((style.clone(), out_r, err_r)),
                }
            }
        })
    }

    /// Gives the command the worker's stdout and stderr (once).
    pub(super) fn apply(&mut self, command: &mut tokio::process::Command) {
        if let Some((out, err)) = self.child.take() {
            command.stdout(out).stderr(err);
        }
    }
}

impl Master {
    /// Starts worker `index` of the current generation, or, for a lazy
    /// pool, waits for a connection first.
    pub(super) fn start_slot(&mut self, index: usize) -> std::io::Result<()> {
        let pool = self.slots[index].0;
        if !self.pools[pool].lazy {
            return self.spawn(index);
        }
        let generation = self.generation;
        if self
            .parked
            .iter()
            .any(|(p, g, _)| *p == pool && *g == generation)
        {
            return Ok(());
        }
        let listeners = self.pools[pool]
            .listeners
            .iter()
            .map(|l| l.as_fd().try_clone_to_owned())
            .collect::<std::io::Result<Vec<_>>>()?;
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            if wait_for_connection(listeners).await.is_ok() {
                let _ = events.send(Event::Wanted(pool, generation));
            }
        });
        self.parked.push((pool, generation, task.abort_handle()));
        Ok(())
    }

    /// Starts worker `index` of the current generation.
    pub(super) fn spawn(&mut self, index: usize) -> std::io::Result<()> {
        let (pool_index, in_pool) = self.slots[index];
        let pool = &self.pools[pool_index];
        let threads = pool.threads_for(in_pool);
        let board = scoreboard::create(threads + 16)?;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let (handover, their_handover) = fdpass::pair()?;
        let mut stdio = Stdio::new(&pool.output)?;
        let spec = WorkerSpec {
            index,
            pool: pool_index,
            threads,
            listen: pool.listeners.iter().map(|l| raw(l.as_fd())).collect(),
            channel: raw(theirs.as_fd()),
            handover: Some(raw(their_handover.as_fd())),
            board: raw(board.as_fd()),
            master: std::process::id(),
            log: stdio.log.as_ref().map(|fd| raw(fd.as_fd())),
            log_file: super::super::logfile::has_main(),
        };
        let mut command = worker_command(&spec);
        stdio.apply(&mut command);
        // Inheritable only for this spawn: later workers must not get them.
        let passed: Vec<std::os::fd::BorrowedFd<'_>> =
            [theirs.as_fd(), their_handover.as_fd(), board.as_fd()]
                .into_iter()
                .chain(stdio.log.as_ref().map(|fd| fd.as_fd()))
                .collect();
        for fd in &passed {
            os::set_inheritable(*fd, true)?;
        }
        let spawned = command.spawn();
        os::set_inheritable(board.as_fd(), false)?;
        drop(passed);
        drop((theirs, their_handover));
        let child = spawned?;
        let pid = child.id().unwrap_or(0);
        ours.set_nonblocking(true)?;
        let (rd, wr) = UnixStream::from_std(ours)?.into_split();
        let link = Arc::new(Link {
            pool: pool_index,
            writer: tokio::sync::Mutex::new(wr),
            answer: Mutex::new(None),
            retired: Mutex::new(None),
        });
        let ready = self.ready.clone();
        tokio::spawn(read_link(rd, link.clone(), pid, self.events.clone(), ready));
        tokio::spawn(wait_child(child, pid, self.events.clone()));
        let listeners: Vec<_> = pool.listeners.iter().map(Arc::downgrade).collect();
        let handover = match fdpass::Channel::new(handover) {
            Ok(channel) => Some(Arc::new(channel)),
            Err(e) => {
                tracing::warn!(pid, "no connection handover for this worker: {e}");
                None
            }
        };
        if let Some(channel) = &handover {
            let (from, events) = (listeners.clone(), self.events.clone());
            tokio::spawn(read_handovers(channel.clone(), from, pid, events));
        }
        if let Some((style, out, err)) = stdio.relay {
            tokio::spawn(relay::relay(style, pid, out, err));
        }
        tracing::info!(
            target: crate::server::STARTUP,
            pool = %self.pools[pool_index].name,
            worker = index,
            pid,
            threads,
            generation = self.generation,
            "started worker"
        );
        self.procs.push(Proc {
            index,
            generation: self.generation,
            pid,
            started: Instant::now(),
            ready: false,
            stopping: false,
            board,
            link,
            handover,
            listeners,
        });
        Ok(())
    }
}
