//! The daemon's own signals: which one asks it to stop and how, and the ones
//! it answers without stopping. They are handled on tokio's signal thread, so
//! they keep working while every PHP thread is busy. (SIGRTMIN is PHP's, for
//! its execution timers; tfpm never touches it.)

use tokio::signal::unix::{signal, SignalKind};

/// How to stop, following php-fpm: SIGQUIT is graceful, SIGTERM and SIGINT are fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    Graceful,
    Fast,
}

/// Waits for SIGQUIT, SIGTERM or SIGINT, answering SIGUSR1 and SIGUSR2 meanwhile.
pub async fn wait_for_signal() -> std::io::Result<StopKind> {
    let mut quit = signal(SignalKind::quit())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    loop {
        tokio::select! {
            _ = quit.recv() => return Ok(StopKind::Graceful),
            _ = term.recv() => return Ok(StopKind::Fast),
            _ = int.recv() => return Ok(StopKind::Fast),
            // php-fpm reopens its log files on SIGUSR1; tfpm logs to stderr.
            _ = usr1.recv() => tracing::info!("SIGUSR1: reopening logs (tfpm logs to stderr: nothing to reopen)"),
            _ = usr2.recv() => tracing::warn!("SIGUSR2: graceful reload is not supported yet; still serving"),
        }
    }
}
