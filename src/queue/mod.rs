//! Reliable priority queues with leases, retries, delayed jobs and a dead-letter list,
//! written once against [`Execute`] (a connection, a pool or a client). Needs the `json`
//! feature (on by default): jobs are JSON envelopes.
//!
//! ```no_run
//! use std::time::Duration;
//! use valkit::queue::{Job, Priority, Queue};
//! use valkit::Connection;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::new(Connection::open_url("redis://127.0.0.1:6379")?, "jobs")?;
//! queue.push(Priority::High, &Job::new("email", serde_json::json!({"to": "ada@example.com"})))?;
//! if let Some(job) = queue.reserve(Duration::from_secs(1))? {
//!     println!("{} {}", job.job().kind(), job.job().payload());
//!     queue.ack(&job)?; // or queue.nack(job, "smtp timeout")?
//! }
//! # Ok(()) }
//! ```
//!
//! # How it works
//! * One list per priority, `{name}:high|medium|low`. Producers `LPUSH` JSON envelopes
//!   (`{"id", "type", "payload", ...}`; any language can), consumers take from the other
//!   end: first in, first out within a level, higher levels always first.
//! * [`Queue::reserve`] runs one script that pops the job and records its lease (a random
//!   token, a deadline in server time) in the same step: a job is always in a list, in the
//!   lease table, in the delayed set or in the dead-letter list, never nowhere.
//! * [`Queue::ack`] and [`Queue::nack`] check the token: a worker whose lease ran out (and
//!   whose job was handed back) gets [`QueueErrorKind::LeaseLost`] and changes nothing.
//! * Expired leases are returned by every reserve (before it pops) and by
//!   [`Queue::reap`]; both are single scripts, so two reapers never return a job twice.
//!   An expiry counts as a failed attempt.
//! * A failed job is retried after a backoff (it waits in the delayed set) until it used
//!   up its attempts; then it goes to `{name}:dead-letter` as `{"id", "error",
//!   "original"}`. Entries that are not valid envelopes are dead-lettered the same way,
//!   with the decode error, the moment a reserve meets them.
//! * Delayed jobs wait in a sorted set by due time (server time) and are moved to their
//!   list when due, in due order.
//!
//! Delivery is at least once: a job whose worker dies (or overruns its lease) runs again.
//! Handlers must be idempotent. See `docs/patterns.md`, "Queues and write-behind".

mod base64;
mod error;
mod inspect;
mod job;
mod keys;
mod metrics;
mod ops;
mod options;
mod scripts;
mod worker;

use std::sync::Arc;

use crate::cmd::Execute;

pub use error::{QueueError, QueueErrorKind};
pub use inspect::QueueStats;
pub use job::{DeadLetter, Job, Priority};
pub use keys::QueueKeys;
pub use metrics::QueueMetrics;
pub use ops::{Nacked, Reserved};
pub use options::QueueOptions;
pub use worker::{HandlerError, ShutdownReport, WorkerPool, WorkerPoolBuilder};

use crate::cmd::server_clock::ServerClock;
use metrics::Counters;

/// A reliable priority queue over anything that implements [`Execute`]. Cheap to clone
/// (an `Arc` inside); clones share counters.
pub struct Queue<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    ex: E,
    keys: QueueKeys,
    opts: QueueOptions,
    counters: Counters,
    clock: ServerClock,
}

impl<E> Clone for Queue<E> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Queue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.keys.name())
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl<E: Execute> Queue<E> {
    /// The queue `name` with default [`QueueOptions`].
    ///
    /// # Errors
    /// [`QueueErrorKind::Config`] for an empty name.
    pub fn new(ex: E, name: &str) -> Result<Queue<E>, QueueError> {
        Queue::with_options(ex, name, QueueOptions::default())
    }

    /// The queue `name` with these options. Every handle on the same name (in any process)
    /// sees the same jobs; give them the same options.
    ///
    /// # Errors
    /// [`QueueErrorKind::Config`] for an empty name.
    pub fn with_options(ex: E, name: &str, opts: QueueOptions) -> Result<Queue<E>, QueueError> {
        if name.is_empty() {
            return Err(QueueError::new(QueueErrorKind::Config, "empty queue name"));
        }
        Ok(Queue {
            inner: Arc::new(Inner {
                ex,
                keys: QueueKeys::new(name),
                opts,
                counters: Counters::default(),
                clock: ServerClock::default(),
            }),
        })
    }

    /// The key names.
    pub fn keys(&self) -> &QueueKeys {
        &self.inner.keys
    }

    /// The options.
    pub fn options(&self) -> &QueueOptions {
        &self.inner.opts
    }

    /// What this handle (and its clones) did so far.
    pub fn metrics(&self) -> QueueMetrics {
        self.inner.counters.snapshot()
    }

    /// The executor underneath.
    pub fn executor(&self) -> &E {
        &self.inner.ex
    }
}
