//! [`PoolStats`]: a snapshot of a pool's gauges and counters, kept in cheap atomics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of a [`Pool`](super::Pool): gauges (`open`, `idle`, `in_use`, `connecting`)
/// and counters since the pool was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PoolStats {
    /// The configured `max_size`, so that gauges can show how full the pool is.
    pub max_size: usize,
    /// Connections open now: idle plus in use (not counting connects in flight).
    pub open: usize,
    /// Connections idle in the pool now.
    pub idle: usize,
    /// Connections checked out now (including ones being health-checked).
    pub in_use: usize,
    /// Connects in flight now.
    pub connecting: usize,
    /// Checkouts waiting now for a connection to come back (or a connect to be retried).
    pub waiting: usize,
    /// Successful checkouts.
    pub checkouts: u64,
    /// Checkouts that had to wait for a connection to be returned or opened.
    pub waits: u64,
    /// Total time checkouts spent waiting (only the ones counted in `waits`).
    pub wait_time_total: Duration,
    /// Checkouts that gave up with [`ErrorKind::PoolExhausted`](crate::ErrorKind::PoolExhausted).
    pub timeouts: u64,
    /// Connections opened.
    pub created: u64,
    /// Connections closed (broken, dirty and not resettable, reaped, past their lifetime,
    /// or dropped with the pool).
    pub closed: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// `PING`s sent on checkout because the socket could not vouch for a connection.
    pub health_checks: u64,
    /// Connections returned with a changed session and reset (`RESET`) before reuse.
    pub resets: u64,
}

/// The counters behind [`PoolStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub checkouts: AtomicU64,
    pub waits: AtomicU64,
    pub wait_nanos: AtomicU64,
    pub timeouts: AtomicU64,
    pub created: AtomicU64,
    pub closed: AtomicU64,
    pub connect_failures: AtomicU64,
    pub health_checks: AtomicU64,
    pub resets: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_wait(&self, waited: Duration) {
        self.waits.fetch_add(1, Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Relaxed);
    }

    /// Fill the counter fields of a snapshot whose gauges are already set.
    pub(crate) fn fill(&self, s: &mut PoolStats) {
        s.checkouts = self.checkouts.load(Relaxed);
        s.waits = self.waits.load(Relaxed);
        s.wait_time_total = Duration::from_nanos(self.wait_nanos.load(Relaxed));
        s.timeouts = self.timeouts.load(Relaxed);
        s.created = self.created.load(Relaxed);
        s.closed = self.closed.load(Relaxed);
        s.connect_failures = self.connect_failures.load(Relaxed);
        s.health_checks = self.health_checks.load(Relaxed);
        s.resets = self.resets.load(Relaxed);
    }
}
