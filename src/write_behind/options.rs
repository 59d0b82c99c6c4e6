//! [`WriteBehindBuilder`]: every knob, with its default.

use std::sync::Arc;
use std::time::Duration;

use super::error::{WriteBehindError, WriteBehindErrorKind};
use super::origin::Origin;
use super::WriteBehind;
use crate::cmd::Execute;

/// What [`WriteBehind::put`] does when the backlog (accepted writes not yet applied or
/// dead-lettered, over all processes) is at its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Fail at once with [`WriteBehindErrorKind::Full`].
    Reject,
    /// Retry for up to this long (polling), then fail with
    /// [`WriteBehindErrorKind::Full`].
    Block(Duration),
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) partitions: usize,
    pub(crate) batch: usize,
    pub(crate) max_delay: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) lease: Duration,
    pub(crate) coalesce: bool,
    pub(crate) backlog_limit: u64,
    pub(crate) when_full: Backpressure,
    pub(crate) cache_ttl: Option<Duration>,
    pub(crate) idle_poll: Duration,
    pub(crate) group_commit: bool,
    pub(crate) thread_name: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            workers: 2,
            partitions: 16,
            batch: 100,
            max_delay: Duration::from_millis(20),
            max_attempts: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            coalesce: false,
            backlog_limit: 1_000_000,
            when_full: Backpressure::Block(Duration::from_secs(5)),
            cache_ttl: None,
            idle_poll: Duration::from_millis(50),
            group_commit: true,
            thread_name: None,
        }
    }
}

impl Settings {
    pub(crate) fn backoff_for(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}

/// Builds a [`WriteBehind`]; see [`WriteBehind::builder`].
pub struct WriteBehindBuilder<E> {
    pub(crate) ex: E,
    pub(crate) name: String,
    pub(crate) origin: Option<Arc<dyn Origin>>,
    pub(crate) s: Settings,
}

impl<E> std::fmt::Debug for WriteBehindBuilder<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehindBuilder")
            .field("name", &self.name)
            .field("settings", &self.s)
            .finish()
    }
}

impl<E: Execute + Send + Sync + 'static> WriteBehindBuilder<E> {
    /// The origin writer (required).
    pub fn origin(mut self, origin: impl Origin) -> Self {
        self.origin = Some(Arc::new(origin));
        self
    }

    /// Worker threads draining to the origin in this process (default 2; 0 for a
    /// put-only handle whose writes other processes drain).
    pub fn workers(mut self, n: usize) -> Self {
        self.s.workers = n.min(256);
        self
    }

    /// Partitions (default 16): keys are spread over them by hash, each is drained in
    /// order by one holder at a time. All handles on one name must use the same number.
    pub fn partitions(mut self, n: usize) -> Self {
        self.s.partitions = n.clamp(1, 1024);
        self
    }

    /// Largest batch handed to the origin (default 100, at most 1,000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.s.batch = n.clamp(1, 1_000);
        self
    }

    /// How long a partial batch may wait for more writes (default 20 ms).
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.s.max_delay = d;
        self
    }

    /// Origin attempts per batch before its writes are tried one by one and the failing
    /// ones dead-lettered (default 5). A permanent error skips the remaining attempts.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.s.max_attempts = n.max(1);
        self
    }

    /// Retry delay after the n-th failure: `base * 2^(n-1)`, at most `max` (default
    /// 100 ms, 10 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.s.backoff_base = base;
        self.s.backoff_max = max.max(base);
        self
    }

    /// How long a claimed batch stays with its worker before another process may take it
    /// over (default 30 s; extended before every origin attempt). Make it longer than
    /// the slowest origin call.
    pub fn lease(mut self, d: Duration) -> Self {
        self.s.lease = d.max(Duration::from_millis(10));
        self
    }

    /// Coalesce writes to one key inside a batch: only the last is sent to the origin
    /// (default off: every write is sent, in order).
    pub fn coalesce(mut self, on: bool) -> Self {
        self.s.coalesce = on;
        self
    }

    /// The backlog bound (default 1,000,000 writes; 0: none) and what a put does at it
    /// (default: block up to 5 s).
    pub fn backlog_limit(mut self, limit: u64, when_full: Backpressure) -> Self {
        self.s.backlog_limit = limit;
        self.s.when_full = when_full;
        self
    }

    /// TTL of the cache entries written by [`WriteBehind::put`] (default none).
    pub fn cache_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.s.cache_ttl = ttl;
        self
    }

    /// How often an idle worker looks for writes from other processes (default 50 ms;
    /// writes put through this handle wake a worker at once).
    pub fn idle_poll(mut self, d: Duration) -> Self {
        self.s.idle_poll = d.max(Duration::from_millis(1));
        self
    }

    /// Group commit (default on): puts from concurrent threads are handed to one
    /// committer thread and recorded together, up to 64 per script call, so the server
    /// runs one script per group instead of one per put. Each put still returns only
    /// after the server recorded it. Off: every put runs its own script.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.s.group_commit = on;
        self
    }

    /// The thread name stem: threads are `valkit-wb-<stem>-<n>` and
    /// `valkit-wb-<stem>-commit` (default: the write-behind's name).
    pub fn thread_name(mut self, stem: &str) -> Self {
        self.s.thread_name = Some(stem.to_owned());
        self
    }

    /// Start the workers.
    ///
    /// # Errors
    /// [`WriteBehindErrorKind::Config`] without an origin, with an empty name, or when a
    /// thread cannot be spawned.
    pub fn start(self) -> Result<WriteBehind<E>, WriteBehindError> {
        if self.name.is_empty() {
            return Err(WriteBehindError::new(
                WriteBehindErrorKind::Config,
                "empty write-behind name",
            ));
        }
        let Some(origin) = self.origin else {
            return Err(WriteBehindError::new(
                WriteBehindErrorKind::Config,
                "no origin: call .origin(..) before .start()",
            ));
        };
        WriteBehind::start(self.ex, &self.name, origin, self.s)
    }
}
