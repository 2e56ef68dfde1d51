//! The daemon's own signals: which one asks it to stop and how, and the ones
//! it answers without stopping. They are handled on tokio's signal thread, so
//! they keep working while every PHP thread is busy. (SIGRTMIN is PHP's, for
//! its execution timers; tfpm never touches it.)

use tokio::signal::unix::{signal, Signal, SignalKind};

/// How to stop, following php-fpm: SIGQUIT is graceful, SIGTERM and SIGINT are fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    Graceful,
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

    /// Waits for SIGQUIT, SIGTERM or SIGINT, answering SIGUSR1 and SIGUSR2 meanwhile.
    pub async fn wait(&mut self) -> StopKind {
        loop {
            tokio::select! {
                _ = self.quit.recv() => return StopKind::Graceful,
                _ = self.term.recv() => return StopKind::Fast,
                _ = self.int.recv() => return StopKind::Fast,
                // php-fpm reopens its log files on SIGUSR1; tfpm logs to stderr.
                _ = self.usr1.recv() => tracing::info!("SIGUSR1: reopening logs (tfpm logs to stderr: nothing to reopen)"),
                _ = self.usr2.recv() => tracing::warn!("SIGUSR2: graceful reload is not supported yet; still serving"),
            }
        }
    }
}

/// Waits for SIGQUIT, SIGTERM or SIGINT, answering SIGUSR1 and SIGUSR2 meanwhile.
pub async fn wait_for_signal() -> std::io::Result<StopKind> {
    Ok(Signals::install()?.wait().await)
}
