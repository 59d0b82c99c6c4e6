//! [`QueueMetrics`]: what this process did with a queue (counters), beside the server-side
//! depths of [`QueueStats`](super::QueueStats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) pushed: AtomicU64,
    pub(crate) reserved: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) reaped: AtomicU64,
    pub(crate) handler_ok: AtomicU64,
    pub(crate) handler_err: AtomicU64,
    pub(crate) handler_panic: AtomicU64,
    pub(crate) reserve_calls: AtomicU64,
    pub(crate) reserve_micros: AtomicU64,
    pub(crate) reserve_max_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn reserve_took(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.reserve_calls.fetch_add(1, Relaxed);
        self.reserve_micros.fetch_add(us, Relaxed);
        self.reserve_max_micros.fetch_max(us, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> QueueMetrics {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let calls = g(&self.reserve_calls);
        QueueMetrics {
            pushed: g(&self.pushed),
            reserved: g(&self.reserved),
            acked: g(&self.acked),
            retried: g(&self.retried),
            dead_lettered: g(&self.dead_lettered),
            malformed: g(&self.malformed),
            lease_lost: g(&self.lease_lost),
            reaped: g(&self.reaped),
            handler_ok: g(&self.handler_ok),
            handler_err: g(&self.handler_err),
            handler_panic: g(&self.handler_panic),
            reserve_calls: calls,
            reserve_mean: Duration::from_micros(g(&self.reserve_micros) / calls.max(1)),
            reserve_max: Duration::from_micros(g(&self.reserve_max_micros)),
        }
    }
}

/// Counters of one [`Queue`](super::Queue) handle (and its clones) since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueMetrics {
    /// Jobs pushed (immediate and delayed).
    pub pushed: u64,
    /// Jobs reserved (well-formed ones handed to a caller).
    pub reserved: u64,
    /// Jobs acked.
    pub acked: u64,
    /// Jobs given back for another attempt.
    pub retried: u64,
    /// Jobs this handle moved to the dead-letter list (attempts used up, or malformed).
    pub dead_lettered: u64,
    /// Malformed entries found (and dead-lettered) by reserve.
    pub malformed: u64,
    /// Acks, nacks and extensions refused because the lease was gone.
    pub lease_lost: u64,
    /// Expired leases returned by [`Queue::reap`](super::Queue::reap).
    pub reaped: u64,
    /// Worker pool: handler calls that returned `Ok`.
    pub handler_ok: u64,
    /// Worker pool: handler calls that returned `Err`.
    pub handler_err: u64,
    /// Worker pool: handler calls that panicked.
    pub handler_panic: u64,
    /// Calls of [`Queue::reserve`](super::Queue::reserve).
    pub reserve_calls: u64,
    /// Their mean duration (waiting on an empty queue included).
    pub reserve_mean: Duration,
    /// Their longest duration.
    pub reserve_max: Duration,
}
