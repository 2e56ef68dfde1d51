//! The daemon's own signals: which one asks it to stop and how, and the ones
//! it answers without stopping. They are handled on tokio's signal thread, so
//! they keep working while every PHP thread is busy. (SIGRTMIN is PHP's, for
//! its execution timers; tfpm never touches it.)

use tokio::signal::unix::{signal, Signal, SignalKind};

/// How to stop, following php-fpm: SIGQUIT is graceful, SIGTERM and SIGINT are fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// SIGQUIT: stop accepting and let requests in flight finish, for at
    /// most `process_control_timeout`.
    Graceful,
    /// SIGTERM or SIGINT: stop without waiting for requests in flight.
    Fast,
}

/// The stop signals, caught from the moment they are installed: a signal
/// that arrives before anyone waits is kept, not fatal.
pub struct Signals {
    quit: Signal,
    term: Signal,
    int: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    /// Catches the signals from now on; must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            quit: signal(SignalKind::quit())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// The next signal that asks for something.
    pub async fn next(&mut self) -> Asked {
        tokio::select! {
            _ = self.quit.recv() => Asked::Stop(StopKind::Graceful),
            _ = self.term.recv() => Asked::Stop(StopKind::Fast),
            _ = self.int.recv() => Asked::Stop(StopKind::Fast),
            _ = self.usr1.recv() => Asked::ReopenLogs,
            _ = self.usr2.recv() => Asked::Reload,
        }
    }

    /// Waits for SIGQUIT, SIGTERM or SIGINT, in a worker process: SIGUSR1
    /// (passed on by the master) reopens the log files; SIGUSR2 is the
    /// master's business and ignored here.
    pub async fn wait(&mut self) -> StopKind {
        loop {
            match self.next().await {
                Asked::Stop(kind) => return kind,
                Asked::ReopenLogs => super::logfile::reopen_all(),
                Asked::Reload => {}
            }
        }
    }
}

/// What a signal asks of the daemon, as php-fpm reads its signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// SIGQUIT (graceful), SIGTERM or SIGINT (fast).
    Stop(StopKind),
    /// SIGUSR1.
    ReopenLogs,
    /// SIGUSR2: new workers with a fresh configuration, then the old ones drain.
    Reload,
}
