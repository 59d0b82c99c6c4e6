//! [`QueueOptions`]: leases, attempts, backoff, polling.

use std::time::Duration;

/// How a [`Queue`](super::Queue) behaves. Defaults: a 30 s lease (visibility timeout), 5
/// attempts, backoff 1 s doubling up to 5 min, polling an empty queue every 1..50 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    pub(crate) lease: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) poll_max: Duration,
    pub(crate) batch: usize,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            poll_max: Duration::from_millis(50),
            batch: 100,
        }
    }
}

impl QueueOptions {
    /// The defaults.
    pub fn new() -> QueueOptions {
        QueueOptions::default()
    }

    /// The visibility timeout: how long a reserved job stays invisible to other workers.
    /// A worker that has not acked by then loses the job (it goes back to the queue, its
    /// late ack fails with [`LeaseLost`](super::QueueErrorKind::LeaseLost)). Minimum 1 ms.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How many failed attempts (handler errors, panics, expired leases) a job gets before
    /// it goes to the dead-letter list. Minimum 1.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The retry delay after the n-th failure: `base * 2^(n-1)`, at most `max`. A zero
    /// base retries at once (at the tail of the job's priority list).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// The longest pause between two polls of an empty queue in
    /// [`reserve`](super::Queue::reserve) (polls start at 1 ms and double up to this).
    pub fn poll_interval(mut self, max: Duration) -> Self {
        self.poll_max = max.max(Duration::from_millis(1));
        self
    }

    /// How many due delayed jobs and expired leases one reserve or reap moves at most
    /// (default 100).
    pub fn move_limit(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The default retry delay after `attempts` failures.
    pub(crate) fn backoff_for(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}
