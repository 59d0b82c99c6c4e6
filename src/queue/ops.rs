//! Push, reserve, ack, nack, extend and reap.

use std::time::{Duration, Instant};

use super::error::{QueueError, QueueErrorKind};
use super::job::{DeadLetter, Job, Priority};
use super::metrics::Counters;
use super::scripts::scripts;
use super::Queue;
use crate::cmd::{cmd, Execute, Pipeline};
use crate::resp::Value;

/// How many envelopes one `LPUSH` of [`Queue::push_many`] carries.
const PUSH_CHUNK: usize = 100;

/// A job taken by [`Queue::reserve`], with its lease. Hand it back with
/// [`Queue::ack`], [`Queue::nack`] or [`Queue::release`]; dropping it unacked leaves the
/// job leased until the lease ends, then it is handed out again.
#[derive(Debug, Clone)]
pub struct Reserved {
    job: Job,
    priority: Priority,
    token: String,
    deadline_ms: u64,
    reserved_at_ms: u64,
    /// The stored bytes (for the dead-letter entry of a job that never parsed).
    raw_len: usize,
}

impl Reserved {
    /// The job (its `attempts` include expired leases).
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The priority it was taken from.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The lease token (unique per reservation).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// When the lease ends, in server milliseconds since the Unix epoch.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// When it was reserved, in server milliseconds since the Unix epoch.
    pub fn reserved_at_ms(&self) -> u64 {
        self.reserved_at_ms
    }

    /// Size of the envelope as stored, in bytes.
    pub fn size(&self) -> usize {
        self.raw_len
    }
}

/// What [`Queue::nack`] did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// It will run again after this delay (it waits in the delayed set; zero: at the tail
    /// of its list), with this many failed attempts recorded.
    Retry {
        /// Failed attempts so far.
        attempts: u32,
        /// The backoff before the next attempt.
        after: Duration,
    },
    /// Its attempts are used up: it is in the dead-letter list.
    DeadLettered,
}

fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX / 4)) as u64
}

impl<E: Execute> Queue<E> {
    fn script_keys(&self) -> &[String; 9] {
        self.inner.keys.all()
    }

    /// Push a job to the tail of its priority's list (`LPUSH`, one round trip). Sets its
    /// `enqueued_at` (server time) if the job has none. The caller keeps the job: on an
    /// error it may push it again (an I/O error leaves open whether it was pushed).
    pub fn push(&self, priority: Priority, job: &Job) -> Result<(), QueueError> {
        let raw = self.stamp(job).encode();
        self.inner.ex.exec(
            &cmd("LPUSH")
                .arg(self.inner.keys.list(priority))
                .arg(&raw[..]),
        )?;
        Counters::add(&self.inner.counters.pushed, 1);
        Ok(())
    }

    /// Push many jobs of one priority in one pipeline (`LPUSH` of 100 envelopes per
    /// command), keeping their order. Returns how many were pushed.
    ///
    /// # Errors
    /// A server error on any chunk is returned after the whole pipeline ran; the chunks
    /// before it were pushed (each `LPUSH` is atomic).
    pub fn push_many(&self, priority: Priority, jobs: &[Job]) -> Result<usize, QueueError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let now = self.inner.clock.now_ms(&self.inner.ex);
        let mut p = Pipeline::new();
        for chunk in jobs.chunks(PUSH_CHUNK) {
            let mut c = cmd("LPUSH").arg(self.inner.keys.list(priority));
            for job in chunk {
                let mut job = job.clone();
                job.set_enqueued_at(now);
                c.add_arg(&job.encode()[..]);
            }
            p.add(c);
        }
        let replies = self.inner.ex.exec_pipeline(&p)?;
        let mut pushed = 0;
        for (reply, chunk) in replies.into_iter().zip(jobs.chunks(PUSH_CHUNK)) {
            if let Value::Error(e) = reply {
                Counters::add(&self.inner.counters.pushed, pushed as u64);
                return Err(QueueError::from(crate::error::Error::from(e)));
            }
            pushed += chunk.len();
        }
        Counters::add(&self.inner.counters.pushed, pushed as u64);
        Ok(pushed)
    }

    /// Push a job that becomes visible after `delay` (server time), in the delayed set;
    /// jobs due at the same millisecond keep their push order. Returns the due time, in
    /// server milliseconds since the Unix epoch.
    pub fn push_delayed(
        &self,
        priority: Priority,
        job: &Job,
        delay: Duration,
    ) -> Result<u64, QueueError> {
        let raw = self.stamp(job).encode();
        let due: i64 = scripts()
            .push_delayed
            .key(&self.script_keys()[..])
            .arg(priority.letter())
            .arg(ms(delay))
            .arg(&raw[..])
            .invoke_as(&self.inner.ex)?;
        Counters::add(&self.inner.counters.pushed, 1);
        Ok(due.max(0) as u64)
    }

    fn stamp(&self, job: &Job) -> Job {
        let mut job = job.clone();
        if job.enqueued_at().is_none() {
            job.set_enqueued_at(self.inner.clock.now_ms(&self.inner.ex));
        }
        job
    }

    /// Take the next job (highest priority first, oldest first), waiting up to `timeout`
    /// for one; `Ok(None)` when none came. The job is leased for the queue's lease time.
    ///
    /// Before popping, the same script moves due delayed jobs to their lists and returns
    /// expired leases. An empty queue is polled (1 ms, doubling up to the poll interval,
    /// never sleeping past a known due time or the timeout). Malformed entries met on the
    /// way are dead-lettered with their decode error, and so are jobs whose leases ran out
    /// too often; neither is returned.
    pub fn reserve(&self, timeout: Duration) -> Result<Option<Reserved>, QueueError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(1);
        let result = loop {
            match self.reserve_once()? {
                Step::Got(r) => break Some(*r),
                Step::Skipped => continue,
                Step::Empty { wait_ms } => {
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    let mut nap = pause.min(deadline - now);
                    if let Some(w) = wait_ms {
                        nap = nap.min(Duration::from_millis(w.max(1)));
                    }
                    std::thread::sleep(nap);
                    pause = (pause * 2).min(self.inner.opts.poll_max);
                }
            }
        };
        self.inner.counters.reserve_took(started.elapsed());
        Ok(result)
    }

    /// One reserve attempt, no waiting.
    pub fn try_reserve(&self) -> Result<Option<Reserved>, QueueError> {
        loop {
            match self.reserve_once()? {
                Step::Got(r) => return Ok(Some(*r)),
                Step::Skipped => continue,
                Step::Empty { .. } => return Ok(None),
            }
        }
    }

    fn reserve_once(&self) -> Result<Step, QueueError> {
        let opts = &self.inner.opts;
        let token = token();
        let (raw, pri, expiries, now, deadline): (Vec<u8>, i64, i64, i64, i64) = scripts()
            .reserve
            .key(&self.script_keys()[..])
            .arg(&token)
            .arg(ms(opts.lease))
            .arg(opts.batch)
            .invoke_as(&self.inner.ex)?;
        self.inner.clock.observe(now);
        let Some(priority) = Priority::from_index(pri) else {
            let wait_ms = (deadline >= 0).then(|| deadline.saturating_sub(now).max(0) as u64);
            return Ok(Step::Empty { wait_ms });
        };
        let deadline_ms = deadline.max(0) as u64;
        let expiries = u32::try_from(expiries.max(0)).unwrap_or(u32::MAX);
        let mut job = match Job::decode(&raw) {
            Ok(job) => job,
            Err(e) => {
                log::warn!(
                    "queue {}: malformed entry dead-lettered: {e}",
                    self.inner.keys.name()
                );
                let dl = DeadLetter::new(
                    None,
                    &e.to_string(),
                    DeadLetter::original_of(&raw),
                    priority,
                    now.max(0) as u64,
                );
                self.settle(&token, "dead", &dl.stored, 0)?;
                Counters::add(&self.inner.counters.malformed, 1);
                Counters::add(&self.inner.counters.dead_lettered, 1);
                return Ok(Step::Skipped);
            }
        };
        job.add_attempts(expiries);
        let reserved = Reserved {
            job,
            priority,
            token,
            deadline_ms,
            reserved_at_ms: now.max(0) as u64,
            raw_len: raw.len(),
        };
        if expiries > 0 && reserved.job.attempts() >= opts.max_attempts {
            let why = format!(
                "lease expired {expiries} time(s): the worker crashed or overran the lease{}",
                reserved
                    .job
                    .last_error()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            );
            self.dead_letter(reserved, &why, now.max(0) as u64)?;
            return Ok(Step::Skipped);
        }
        Counters::add(&self.inner.counters.reserved, 1);
        Ok(Step::Got(Box::new(reserved)))
    }

    fn dead_letter(&self, r: Reserved, error: &str, now: u64) -> Result<(), QueueError> {
        let mut job = r.job;
        let attempts = job.attempts();
        job.failed(error, attempts);
        let dl = DeadLetter::new(Some(job.id()), error, job.to_json(), r.priority, now);
        self.settle(&r.token, "dead", &dl.stored, 0)?;
        Counters::add(&self.inner.counters.dead_lettered, 1);
        Ok(())
    }

    /// Run the nack script; `LeaseLost` when the token is gone.
    fn settle(
        &self,
        token: &str,
        action: &str,
        payload: &[u8],
        delay: u64,
    ) -> Result<(), QueueError> {
        let done: i64 = scripts()
            .nack
            .key(&self.script_keys()[..])
            .arg(token)
            .arg(action)
            .arg(payload)
            .arg(delay)
            .invoke_as(&self.inner.ex)?;
        if done == 1 {
            Ok(())
        } else {
            Counters::add(&self.inner.counters.lease_lost, 1);
            Err(QueueError::new(
                QueueErrorKind::LeaseLost,
                format!("lease {token} is gone (it expired and the job was handed back)"),
            ))
        }
    }

    /// The job is done: remove it for good.
    ///
    /// # Errors
    /// [`QueueErrorKind::LeaseLost`] when the lease expired and the job was handed back
    /// (it will run again, maybe elsewhere: handlers must be idempotent).
    pub fn ack(&self, r: &Reserved) -> Result<(), QueueError> {
        let done: i64 = scripts()
            .ack
            .key(&self.script_keys()[..])
            .arg(&r.token)
            .invoke_as(&self.inner.ex)?;
        if done == 1 {
            Counters::add(&self.inner.counters.acked, 1);
            Ok(())
        } else {
            Counters::add(&self.inner.counters.lease_lost, 1);
            Err(QueueError::new(
                QueueErrorKind::LeaseLost,
                format!("job {}: lease expired before the ack", r.job.id()),
            ))
        }
    }

    /// The attempt failed with `error`: retry after the queue's backoff, or dead-letter
    /// the job when this was its last attempt.
    pub fn nack(&self, r: Reserved, error: &str) -> Result<Nacked, QueueError> {
        let attempts = r.job.attempts().saturating_add(1);
        let after = self.inner.opts.backoff_for(attempts);
        self.nack_after(r, error, after)
    }

    /// As [`Queue::nack`], with this retry delay instead of the backoff.
    pub fn nack_after(
        &self,
        r: Reserved,
        error: &str,
        retry_after: Duration,
    ) -> Result<Nacked, QueueError> {
        let attempts = r.job.attempts().saturating_add(1);
        if attempts >= self.inner.opts.max_attempts {
            let now = self.inner.clock.now_ms(&self.inner.ex);
            let mut r = r;
            r.job.failed(error, attempts);
            self.dead_letter(r, error, now)?;
            return Ok(Nacked::DeadLettered);
        }
        let mut job = r.job.clone();
        job.failed(error, attempts);
        self.settle(&r.token, "retry", &job.encode(), ms(retry_after))?;
        Counters::add(&self.inner.counters.retried, 1);
        Ok(Nacked::Retry {
            attempts,
            after: retry_after,
        })
    }

    /// Give the job back untouched (no attempt counted), to the head of its list: for a
    /// worker that stops before it started the job.
    pub fn release(&self, r: Reserved) -> Result<(), QueueError> {
        self.settle(&r.token, "release", b"", 0)
    }

    /// Extend the lease to `lease` from now (server time), for a job that needs longer.
    ///
    /// # Errors
    /// [`QueueErrorKind::LeaseLost`] when the lease is already gone.
    pub fn extend(&self, r: &mut Reserved, lease: Duration) -> Result<(), QueueError> {
        let deadline: i64 = scripts()
            .extend
            .key(&self.script_keys()[..])
            .arg(&r.token)
            .arg(ms(lease))
            .invoke_as(&self.inner.ex)?;
        if deadline > 0 {
            r.deadline_ms = deadline as u64;
            Ok(())
        } else {
            Counters::add(&self.inner.counters.lease_lost, 1);
            Err(QueueError::new(
                QueueErrorKind::LeaseLost,
                format!("job {}: lease expired before the extension", r.job.id()),
            ))
        }
    }

    /// Return expired leases to their lists and move due delayed jobs, up to the move
    /// limit of each; returns how many leases were returned. Atomic: any number of
    /// reapers may run at once.
    pub fn reap(&self) -> Result<usize, QueueError> {
        let (reaped, _promoted): (i64, i64) = scripts()
            .reap
            .key(&self.script_keys()[..])
            .arg(self.inner.opts.batch)
            .invoke_as(&self.inner.ex)?;
        let reaped = reaped.max(0) as usize;
        Counters::add(&self.inner.counters.reaped, reaped as u64);
        Ok(reaped)
    }

    pub(crate) fn counters(&self) -> &super::metrics::Counters {
        &self.inner.counters
    }
}

enum Step {
    Got(Box<Reserved>),
    /// A malformed or worn-out entry was dead-lettered: try again at once.
    Skipped,
    /// Nothing to take; `wait_ms` until the next delayed job is due, if any.
    Empty {
        wait_ms: Option<u64>,
    },
}
