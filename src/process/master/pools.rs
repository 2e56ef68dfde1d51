//! A pool as the master runs it: its sockets, its worker processes and
//! their share of its threads, and where their output goes.

use std::sync::Arc;

use super::super::relay;
use crate::server::Listener;

/// One pool: its sockets, and the worker processes that share its threads.
pub struct PoolProcs {
    /// The pool's name, its `[section]`.
    pub name: String,
    /// PHP threads in all, split across the workers.
    pub threads: usize,
    /// Worker processes (K).
    pub workers: usize,
    /// Shared with the pool of the next generation when a reload keeps them.
    pub listeners: Vec<Arc<Listener>>,
    /// What becomes of the workers' stdout and stderr.
    pub output: Output,
    /// Start the workers only once a connection comes (php-fpm's
    /// `pm = ondemand`, which starts no process before a request).
    pub lazy: bool,
}

/// What becomes of a pool's workers' stdout and stderr (where a script's
/// `fwrite(STDERR, …)` goes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// They are the master's (tfpm's command-line mode).
    Inherit,
    /// /dev/null: php-fpm's `catch_workers_output = no`.
    Discard,
    /// Pipes that the master reads into its log: `catch_workers_output = yes`.
    Catch(relay::Style),
}

impl PoolProcs {
    /// Worker `index`'s share of the threads.
    pub(super) fn threads_for(&self, index: usize) -> usize {
        let k = self.workers.max(1);
        (self.threads / k + usize::from(index < self.threads % k)).max(1)
    }
}

/// Closes (removing its file) each listener of `old` that `new` does not keep.
pub(super) fn close_unused(old: &[PoolProcs], new: &[PoolProcs]) {
    let kept = |l: &Arc<Listener>| {
        new.iter()
            .flat_map(|p| &p.listeners)
            .any(|n| Arc::ptr_eq(n, l))
    };
    for l in old.iter().flat_map(|p| &p.listeners).filter(|l| !kept(l)) {
        l.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_split_across_workers() {
        let config = |workers, threads| PoolProcs {
            name: "www".into(),
            workers,
            threads,
            listeners: Vec::new(),
            output: Output::Inherit,
            lazy: false,
        };
        let c = config(3, 8);
        let split: Vec<usize> = (0..3).map(|i| c.threads_for(i)).collect();
        assert_eq!(split, vec![3, 3, 2]);
        assert_eq!(config(1, 8).threads_for(0), 8);
        assert_eq!(config(4, 2).threads_for(3), 1);
    }
}
