//! One fixture (daemon, nginx, ...) shared by the tests of a binary that run at the same time.
//!
//! A `static` holding the fixture would never be dropped, and the processes
//! would outlive the test binary. Instead the static holds a [`Weak`]: each
//! test takes a [`Lease`] (an `Arc`), and when the last running test drops its
//! lease the fixture is dropped and its processes stopped. A later test simply
//! starts a new one. A lease dropped while its test panics prints the
//! fixture's diagnostics (logs), so failures come with the daemon's side.

use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};

/// What a fixture prints when a test using it fails.
pub trait Diagnose {
    /// Logs and state worth reading next to a failed assertion.
    fn diagnose(&self) -> String;
}

/// A test's handle on a shared fixture.
pub struct Lease<T: Diagnose> {
    inner: Arc<T>,
}

impl<T: Diagnose> Lease<T> {
    /// Wraps a fixture that is not shared (it dies with the lease).
    pub fn own(fixture: T) -> Lease<T> {
        Lease {
            inner: Arc::new(fixture),
        }
    }
}

impl<T: Diagnose> Deref for Lease<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: Diagnose> Drop for Lease<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.inner.diagnose());
        }
    }
}

/// The fixture in `slot` if a running test still holds it, else a new one from `make`.
///
/// `make` runs under the slot's lock, so concurrent tests wait for one start
/// instead of starting several. A panic in `make` poisons nothing for later tests.
pub fn lease<T: Diagnose>(slot: &Mutex<Weak<T>>, make: impl FnOnce() -> T) -> Lease<T> {
    let mut weak = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(inner) = weak.upgrade() {
        return Lease { inner };
    }
    let inner = Arc::new(make());
    *weak = Arc::downgrade(&inner);
    Lease { inner }
}
