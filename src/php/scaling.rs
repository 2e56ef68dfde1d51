//! php-fpm's process manager (`pm`), for threads: how many PHP threads a
//! pool runs, and when it starts or stops them.
//!
//! - `static`: `pm.max_children` threads, always.
//! - `dynamic`: `pm.start_servers` at start; once a second, threads are
//!   started while fewer than `pm.min_spare_servers` are idle, and one
//!   idle thread leaves while more than `pm.max_spare_servers` are.
//! - `ondemand`: none at start; a thread starts when a request finds no
//!   idle one, and leaves after `pm.process_idle_timeout` without work.
//!
//! In both scaling modes a request that finds every thread busy starts a
//! new one at once (up to `pm.max_children`), as php-fpm's ondemand does
//! and its dynamic mode does within a second.

use std::time::Duration;

use crate::config::Pm;

/// How a pool scales its threads: its `pm`, with that manager's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// `static`: every thread runs all the time.
    Static,
    /// `dynamic`: the number of idle threads is kept between two bounds.
    Dynamic {
        /// `pm.start_servers`: threads at start.
        start: usize,
        /// `pm.min_spare_servers`: fewer idle threads than this, more start.
        min_spare: usize,
        /// `pm.max_spare_servers`: more idle threads than this, one leaves.
        max_spare: usize,
    },
    /// `ondemand`: threads start for requests and leave when idle.
    Ondemand {
        /// `pm.process_idle_timeout`: how long a thread may be idle.
        idle_timeout: Duration,
    },
}

impl Scaling {
    /// The `pm` directive's value it comes from.
    pub fn pm(&self) -> Pm {
        match self {
            Scaling::Static => Pm::Static,
            Scaling::Dynamic { .. } => Pm::Dynamic,
            Scaling::Ondemand { .. } => Pm::Ondemand,
        }
    }
}

/// What the manager decides on one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to change.
    Keep,
    /// Start this many threads.
    Grow(usize),
    /// Have this many idle threads leave.
    Shrink(usize),
}

impl Scaling {
    /// Threads to start with, out of `max`.
    pub fn initial(&self, max: usize) -> usize {
        match *self {
            Scaling::Static => max,
            Scaling::Dynamic { start, .. } => start.clamp(1, max),
            Scaling::Ondemand { .. } => 0,
        }
    }

    /// One tick: `live` threads of which `idle` are idle, `stale` of those
    /// idle longer than the ondemand timeout; at most `max` threads.
    pub fn decide(&self, live: usize, idle: usize, stale: usize, max: usize) -> Decision {
        match *self {
            Scaling::Static => Decision::Keep,
            Scaling::Dynamic { min_spare, .. } if idle < min_spare && live < max => {
                Decision::Grow((min_spare - idle).min(max - live))
            }
            Scaling::Dynamic { max_spare, .. } if idle > max_spare => Decision::Shrink(1),
            Scaling::Dynamic { .. } => Decision::Keep,
            Scaling::Ondemand { .. } if stale > 0 => Decision::Shrink(stale),
            Scaling::Ondemand { .. } => Decision::Keep,
        }
    }

    /// Whether threads may leave when idle (any mode but static).
    pub fn scales(&self) -> bool {
        *self != Scaling::Static
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_keeps_spare_threads_between_min_and_max() {
        let pm = Scaling::Dynamic {
            start: 2,
            min_spare: 1,
            max_spare: 3,
        };
        assert_eq!(pm.initial(10), 2);
        assert_eq!(pm.decide(2, 0, 0, 10), Decision::Grow(1));
        assert_eq!(pm.decide(10, 0, 0, 10), Decision::Keep);
        assert_eq!(pm.decide(6, 5, 0, 10), Decision::Shrink(1));
        assert_eq!(pm.decide(4, 2, 0, 10), Decision::Keep);
    }

    #[test]
    fn ondemand_starts_empty_and_lets_stale_threads_go() {
        let pm = Scaling::Ondemand {
            idle_timeout: Duration::from_secs(10),
        };
        assert_eq!(pm.initial(5), 0);
        assert_eq!(pm.decide(3, 2, 1, 5), Decision::Shrink(1));
        assert_eq!(pm.decide(3, 2, 0, 5), Decision::Keep);
        assert_eq!(Scaling::Static.initial(5), 5);
        assert_eq!(Scaling::Static.decide(5, 5, 5, 5), Decision::Keep);
    }
}
