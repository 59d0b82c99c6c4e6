//! Counters of one handle ([`WriteBehindMetrics`]) and the server-side backlog
//! ([`WriteBehindStats`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) batch_max: AtomicU64,
    pub(crate) retaken: AtomicU64,
    pub(crate) origin_failures: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_micros: AtomicU64,
    pub(crate) flush_max_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub(crate) fn batch(&self, n: u64) {
        self.batches.fetch_add(1, Relaxed);
        self.batch_max.fetch_max(n, Relaxed);
    }

    pub(crate) fn flushed(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.flushes.fetch_add(1, Relaxed);
        self.flush_micros.fetch_add(us, Relaxed);
        self.flush_max_micros.fetch_max(us, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriteBehindMetrics {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let batches = g(&self.batches);
        let applied = g(&self.applied) + g(&self.coalesced);
        WriteBehindMetrics {
            accepted: g(&self.accepted),
            rejected_full: g(&self.rejected_full),
            applied: g(&self.applied),
            coalesced: g(&self.coalesced),
            dead_lettered: g(&self.dead_lettered),
            batches,
            batch_mean: if batches == 0 {
                0.0
            } else {
                applied as f64 / batches as f64
            },
            batch_max: g(&self.batch_max),
            retaken_batches: g(&self.retaken),
            origin_failures: g(&self.origin_failures),
            lease_lost: g(&self.lease_lost),
            flushes: g(&self.flushes),
            flush_mean: Duration::from_micros(g(&self.flush_micros) / g(&self.flushes).max(1)),
            flush_max: Duration::from_micros(g(&self.flush_max_micros)),
        }
    }
}

/// What one [`WriteBehind`](super::WriteBehind) handle did since it started.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WriteBehindMetrics {
    /// Puts accepted (cache written, write recorded).
    pub accepted: u64,
    /// Puts refused because the backlog was full.
    pub rejected_full: u64,
    /// Writes this handle's workers applied to the origin.
    pub applied: u64,
    /// Writes skipped because a later write to the same key was in the same batch
    /// (coalescing on).
    pub coalesced: u64,
    /// Writes this handle's workers moved to the dead-letter list.
    pub dead_lettered: u64,
    /// Batches settled.
    pub batches: u64,
    /// Mean writes per batch.
    pub batch_mean: f64,
    /// Largest batch.
    pub batch_max: u64,
    /// Batches taken over from a holder whose lease ran out (a crashed process).
    pub retaken_batches: u64,
    /// Failed origin calls (each retry counts).
    pub origin_failures: u64,
    /// Batches whose lease was lost before they were settled (another holder took them).
    pub lease_lost: u64,
    /// Completed flushes.
    pub flushes: u64,
    /// Their mean duration.
    pub flush_mean: Duration,
    /// Their longest duration.
    pub flush_max: Duration,
}

/// The backlog as the server holds it (all processes), read atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBehindStats {
    /// Accepted writes neither applied nor dead-lettered (the backpressure counter).
    pub pending: u64,
    /// Of those, waiting in partitions.
    pub queued: u64,
    /// Of those, in batches claimed by a worker.
    pub in_flight: u64,
    /// Writes in the dead-letter list.
    pub dead_lettered: u64,
    /// The sequence number of the last accepted write.
    pub last_seq: u64,
    /// Age of the oldest pending write (server time); `None` when nothing is pending.
    pub lag: Option<Duration>,
    /// Lowest pending sequence number.
    pub(crate) low_seq: Option<u64>,
}
