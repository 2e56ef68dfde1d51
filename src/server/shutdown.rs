//! Which signal asked the daemon to stop, and how it should stop.

use tokio::signal::unix::{signal, SignalKind};

/// How to stop, following php-fpm: SIGQUIT is graceful, SIGTERM and SIGINT are fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    Graceful,
    Fast,
}

/// Waits for SIGQUIT, SIGTERM or SIGINT.
pub async fn wait_for_signal() -> std::io::Result<StopKind> {
    let mut quit = signal(SignalKind::quit())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let kind = tokio::select! {
        _ = quit.recv() => StopKind::Graceful,
        _ = term.recv() => StopKind::Fast,
        _ = int.recv() => StopKind::Fast,
    };
    Ok(kind)
}
