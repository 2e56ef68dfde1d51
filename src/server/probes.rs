//! The HTTP probes of the metrics listener: `/healthz` answers while the
//! master runs, `/readyz` only while every pool that keeps workers has one
//! ready to serve and the master is not stopping (what a load balancer or a
//! Kubernetes readiness probe asks before it sends traffic).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What the master tells the probes: its pools, and whether it stops.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The pools (by index) that must have a ready worker: every pool but
    /// the lazy ones (`ondemand` with no connection yet keeps none).
    pools: Mutex<Vec<usize>>,
    stopping: AtomicBool,
}

impl Readiness {
    /// The pools of the configuration now in force; `lazy[i]` is true for
    /// a pool that starts its workers on its first connection.
    pub fn set_pools(&self, lazy: impl Iterator<Item = bool>) {
        let pools = lazy
            .enumerate()
            .filter(|(_, lazy)| !lazy)
            .map(|(i, _)| i)
            .collect();
        *self.pools.lock().unwrap_or_else(|e| e.into_inner()) = pools;
    }

    /// The master has begun to stop: not ready any more.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether every pool that needs one has a worker among `ready` (the
    /// pools of the workers ready now).
    pub fn is_ready(&self, ready: &[usize]) -> bool {
        if self.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools.iter().all(|p| ready.contains(p))
    }
}

/// A probe's answer: the status line and the body.
pub fn answer(ready: bool) -> (&'static str, &'static str) {
    match ready {
        true => ("200 OK", "ready\n"),
        false => ("503 Service Unavailable", "not ready\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_every_eager_pool_has_a_worker() {
        let r = Readiness::default();
        r.set_pools([false, true, false].into_iter());
        assert!(!r.is_ready(&[]));
        assert!(!r.is_ready(&[0, 0]));
        assert!(r.is_ready(&[2, 0]));
        assert!(r.is_ready(&[0, 1, 2]));
        r.stop();
        assert!(!r.is_ready(&[0, 1, 2]));
    }

    #[test]
    fn only_lazy_pools_are_ready_with_no_worker() {
        let r = Readiness::default();
        r.set_pools([true].into_iter());
        assert!(r.is_ready(&[]));
        assert_eq!(answer(false).0, "503 Service Unavailable");
    }
}
