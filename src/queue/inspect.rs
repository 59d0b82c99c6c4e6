//! Inspection: depths, the oldest waiting job, the dead-letter list (read, requeue, purge).

use std::time::Duration;

use super::error::QueueError;
use super::job::{DeadLetter, Job, Priority};
use super::scripts::scripts;
use super::Queue;
use crate::cmd::{cmd, Execute, FromValue};

/// A consistent snapshot of a queue's depths, read in one script.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Waiting jobs per priority: high, medium, low.
    pub waiting: [u64; 3],
    /// Leased jobs (reserved, not yet acked, nacked or reaped).
    pub in_flight: u64,
    /// Jobs scheduled for later (delayed pushes and retries waiting out their backoff).
    pub delayed: u64,
    /// Entries in the dead-letter list.
    pub dead_lettered: u64,
    /// Age of the oldest waiting job (server time minus its `enqueued_at`), over all
    /// priorities; `None` when no job waits or none carries `enqueued_at`.
    pub oldest_age: Option<Duration>,
}

impl QueueStats {
    /// Waiting jobs of one priority.
    pub fn len(&self, p: Priority) -> u64 {
        self.waiting[p.index()]
    }

    /// Waiting jobs of all priorities.
    pub fn waiting_total(&self) -> u64 {
        self.waiting.iter().sum()
    }

    /// True when nothing waits, runs, or is scheduled (dead letters aside).
    pub fn is_idle(&self) -> bool {
        self.waiting_total() == 0 && self.in_flight == 0 && self.delayed == 0
    }
}

impl<E: Execute> Queue<E> {
    /// Depths per priority, in flight, delayed, dead-lettered, and the oldest job's age.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let v = scripts()
            .stats
            .key(&self.inner.keys.all()[..])
            .invoke(&self.inner.ex)?;
        // Flat reply of 10: regroup it for the tuple conversions (at most 5 per tuple).
        let items = Vec::<crate::resp::Value>::from_value(v)?;
        let mut it = items.into_iter();
        let mut head = Vec::new();
        for _ in 0..7 {
            head.push(it.next().unwrap_or(crate::resp::Value::Nil));
        }
        let nums: Vec<i64> = FromValue::from_value(crate::resp::Value::Array(head))?;
        let tails: Vec<Option<Vec<u8>>> =
            FromValue::from_value(crate::resp::Value::Array(it.collect()))?;
        let n = |i: usize| nums.get(i).copied().unwrap_or(0).max(0) as u64;
        let now = nums.get(6).copied().unwrap_or(0);
        let oldest = tails
            .iter()
            .flatten()
            .filter_map(|raw| Job::decode(raw).ok()?.enqueued_at())
            .min();
        Ok(QueueStats {
            waiting: [n(0), n(1), n(2)],
            in_flight: n(3),
            delayed: n(4),
            dead_lettered: n(5),
            oldest_age: oldest
                .map(|t| Duration::from_millis((now.max(0) as u64).saturating_sub(t))),
        })
    }

    /// Up to `count` dead-letter entries from `start` (0 = the newest).
    pub fn dead_letters(&self, start: usize, count: usize) -> Result<Vec<DeadLetter>, QueueError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let end = start.saturating_add(count) - 1;
        let raw: Vec<Vec<u8>> = FromValue::from_value(
            self.inner.ex.exec(
                &cmd("LRANGE")
                    .arg(self.inner.keys.dead_letter())
                    .arg(start)
                    .arg(end),
            )?,
        )?;
        Ok(raw.into_iter().map(DeadLetter::decode).collect())
    }

    /// Put a dead-lettered job back on its priority's list with its attempts reset (its
    /// last error kept). Atomic per entry: `Ok(false)` when the entry is no longer there
    /// (already requeued or purged) or holds no valid job (it stays dead; see
    /// [`DeadLetter::job`]).
    pub fn requeue_dead(&self, dead: &DeadLetter) -> Result<bool, QueueError> {
        let Some(mut job) = dead.job() else {
            return Ok(false);
        };
        job.reset_attempts();
        let done: i64 = scripts()
            .requeue
            .key(&self.inner.keys.all()[..])
            .arg(&dead.stored[..])
            .arg(dead.priority().letter())
            .arg(&job.encode()[..])
            .invoke_as(&self.inner.ex)?;
        Ok(done == 1)
    }

    /// Requeue up to `max` dead letters (oldest first); returns how many went back.
    pub fn requeue_all_dead(&self, max: usize) -> Result<usize, QueueError> {
        let total: i64 = FromValue::from_value(
            self.inner
                .ex
                .exec(&cmd("LLEN").arg(self.inner.keys.dead_letter()))?,
        )?;
        let take = (total.max(0) as usize).min(max);
        if take == 0 {
            return Ok(0);
        }
        let mut entries = self.dead_letters(total as usize - take, take)?;
        entries.reverse();
        let mut n = 0;
        for d in &entries {
            if self.requeue_dead(d)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Delete every dead letter; returns how many there were.
    pub fn purge_dead(&self) -> Result<u64, QueueError> {
        let n: i64 = scripts()
            .purge
            .key(&self.inner.keys.all()[..])
            .invoke_as(&self.inner.ex)?;
        Ok(n.max(0) as u64)
    }
}
