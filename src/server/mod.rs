//! The daemon around the engine: listeners, per-connection tasks, and
//! graceful shutdown on signals.
//!
//! Everything here runs on tokio. PHP itself runs on the engine's own
//! threads; requests reach them through [`crate::php::Pool`].

pub mod conn;
pub mod listener;
mod shutdown;
mod sink;

pub use listener::{ListenAddr, Listener};
pub use shutdown::{wait_for_signal, StopKind};

use std::sync::Arc;

use tokio::sync::watch;

use crate::fcgi::conn::ConnConfig;
use crate::php::Pool;

/// Connection-level settings shared by every connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub conn: ConnConfig,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Option<std::time::Duration>,
}

/// Accepts connections on every listener until `stop` turns true.
pub async fn serve(
    listeners: Vec<Listener>,
    pool: Pool,
    config: ServerConfig,
    stop: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let mut tasks = Vec::new();
    for listener in listeners {
        let (pool, config, stop) = (pool.clone(), config.clone(), stop.clone());
        tasks.push(tokio::spawn(accept_loop(listener, pool, config, stop)));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn accept_loop(
    listener: Listener,
    pool: Pool,
    config: Arc<ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    let (pool, conn, idle) = (pool.clone(), config.conn, config.idle_timeout);
                    tokio::spawn(conn::serve_connection(stream, pool, conn, idle));
                }
                Err(e) => {
                    tracing::warn!(listener = %listener.addr(), "accept failed: {e}");
                    // EMFILE and friends: back off a little instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    listener.cleanup();
}
