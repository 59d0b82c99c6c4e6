//! One drain worker: claim a batch from its partitions, hand it to the origin with
//! retries, settle it (applied and dead-lettered writes leave pending together).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{select, Receiver};

use super::origin::{OriginError, Write};
use super::record;
use super::stats::Counters;
use super::{scripts, Shared};
use crate::cmd::{Execute, FromValue};
use crate::resp::Value;

pub(crate) struct Worker<E> {
    sh: Arc<Shared<E>>,
    /// Partition indexes this worker claims from.
    mine: Vec<usize>,
    wake: Receiver<()>,
    stop: Receiver<()>,
    next: usize,
}

/// The outcome of one claim.
enum Claim {
    /// Records of partition `part` (index into `mine`'s partitions), under `token`.
    Batch {
        part: usize,
        token: String,
        records: Vec<Vec<u8>>,
        retaken: bool,
    },
    /// Nothing now; look again within this long (None: nothing known).
    Idle(Option<Duration>),
}

impl<E: Execute> Worker<E> {
    pub(crate) fn new(
        sh: Arc<Shared<E>>,
        mine: Vec<usize>,
        wake: Receiver<()>,
        stop: Receiver<()>,
    ) -> Worker<E> {
        Worker {
            sh,
            mine,
            wake,
            stop,
            next: 0,
        }
    }

    /// The thread body: the loop, restarted if it ever panics (the claimed batch stays
    /// in flight under its lease and is taken again).
    pub(crate) fn run(mut self) {
        loop {
            let r = catch_unwind(AssertUnwindSafe(|| self.drain_loop()));
            match r {
                Ok(()) => return,
                Err(_) => {
                    log::error!("write-behind worker panicked; restarting it");
                    if self.stopped() {
                        return;
                    }
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.sh.stopping.load(Ordering::SeqCst) && self.sh.flushing.load(Ordering::SeqCst) == 0
            || matches!(
                self.stop.try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            )
    }

    fn drain_loop(&mut self) {
        if self.mine.is_empty() {
            let _ = self.stop.recv();
            return;
        }
        let mut error_pause = Duration::from_millis(10);
        loop {
            if self.is_disconnected() {
                return;
            }
            match self.claim() {
                Ok(Claim::Batch {
                    part,
                    token,
                    records,
                    retaken,
                }) => {
                    error_pause = Duration::from_millis(10);
                    if retaken {
                        Counters::add(&self.sh.counters.retaken, 1);
                    }
                    if !self.process(part, &token, records) {
                        return; // stopping mid-retry: the lease was given up
                    }
                }
                Ok(Claim::Idle(hint)) => {
                    let wait = hint.map_or(self.sh.s.idle_poll, |h| h.min(self.sh.s.idle_poll));
                    if !self.nap(wait.max(Duration::from_millis(1))) {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("write-behind claim failed: {e}");
                    if !self.nap(error_pause) {
                        return;
                    }
                    error_pause = (error_pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn is_disconnected(&self) -> bool {
        matches!(
            self.stop.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// Sleep up to `d`, woken early by a put; false when told to stop.
    fn nap(&self, d: Duration) -> bool {
        select! {
            recv(self.stop) -> _ => false,
            recv(self.wake) -> _ => true,
            default(d) => true,
        }
    }

    fn claim(&mut self) -> crate::Result<Claim> {
        let sh = &*self.sh;
        let token = format!("{:032x}", rand::random::<u128>());
        let mut inv = scripts().claim.prepare_invoke();
        for &p in &self.mine {
            for k in &sh.keys.parts[p] {
                inv = inv.key(k);
            }
        }
        let force = sh.flushing.load(Ordering::SeqCst) > 0 || sh.stopping.load(Ordering::SeqCst);
        self.next = (self.next + 1) % self.mine.len();
        let v: Vec<Value> = FromValue::from_value(
            inv.arg(&token)
                .arg(sh.s.lease.as_millis() as u64)
                .arg(sh.s.batch)
                .arg(sh.s.max_delay.as_millis() as u64)
                .arg(if force { "1" } else { "0" })
                .arg(self.next + 1)
                .invoke(&sh.ex)?,
        )?;
        let mut it = v.into_iter();
        let head: i64 = FromValue::from_value(it.next().unwrap_or(Value::Nil)).unwrap_or(0);
        let second: i64 = FromValue::from_value(it.next().unwrap_or(Value::Nil)).unwrap_or(0);
        if head <= 0 {
            return Ok(Claim::Idle(
                (second >= 0).then(|| Duration::from_millis(second as u64)),
            ));
        }
        let records: Vec<Vec<u8>> = FromValue::from_value(Value::Array(it.collect()))?;
        Ok(Claim::Batch {
            part: self.mine[(head - 1) as usize],
            token,
            records,
            retaken: second == 1,
        })
    }

    /// Hand the batch to the origin (with retries), then settle it. False when the
    /// worker must stop (the batch's lease was given up for another holder).
    fn process(&self, part: usize, token: &str, records: Vec<Vec<u8>>) -> bool {
        let sh = &*self.sh;
        let mut dead: Vec<Vec<u8>> = Vec::new();
        let mut writes: Vec<(Write, usize)> = Vec::with_capacity(records.len());
        for (i, raw) in records.iter().enumerate() {
            match record::parse(raw) {
                Some(w) => writes.push((w, i)),
                None => dead.push(record::dead_entry("unreadable write-behind record", raw)),
            }
        }
        let total = writes.len();
        let mut coalesced = 0u64;
        if sh.s.coalesce {
            let mut last: HashMap<&str, usize> = HashMap::new();
            for (i, (w, _)) in writes.iter().enumerate() {
                last.insert(w.key(), i);
            }
            let keep: Vec<bool> = (0..writes.len())
                .map(|i| last[writes[i].0.key()] == i)
                .collect();
            let mut k = keep.iter();
            writes.retain(|_| *k.next().unwrap_or(&true));
            coalesced = (total - writes.len()) as u64;
        }
        let batch: Vec<Write> = writes.iter().map(|(w, _)| w.clone()).collect();
        let mut applied = batch.len() as u64;
        if !batch.is_empty() {
            match self.write_with_retries(part, token, &batch) {
                Attempted::Ok => {}
                Attempted::Stop => return false,
                Attempted::Failed(err) => {
                    // Isolate: one by one, once each; the failing ones are dead-lettered.
                    applied = 0;
                    for (w, i) in &writes {
                        let one = std::slice::from_ref(w);
                        let r = if batch.len() == 1 {
                            Err(err.clone())
                        } else {
                            self.call_origin(one)
                        };
                        match r {
                            Ok(()) => applied += 1,
                            Err(e) => {
                                Counters::add(
                                    &sh.counters.origin_failures,
                                    u64::from(batch.len() > 1),
                                );
                                dead.push(record::dead_entry(&e, &records[*i]));
                            }
                        }
                    }
                }
            }
        }
        // Counted as settling from before the `done` is sent until the counters below
        // are updated (flush waits for it; the guard also covers an unwinding thread).
        sh.settling.fetch_add(1, Ordering::SeqCst);
        let _settling = Settling(&sh.settling);
        let lease = &sh.keys.parts[part][2];
        let inv = scripts()
            .done
            .key(&sh.keys.parts[part][1])
            .key(lease)
            .key(&sh.keys.pending)
            .key(&sh.keys.dead)
            .arg(token)
            .arg(&dead);
        match inv.invoke_as::<i64, _>(&sh.ex) {
            Ok(n) if n >= 0 => {
                Counters::add(&sh.counters.applied, applied);
                Counters::add(&sh.counters.coalesced, coalesced);
                Counters::add(&sh.counters.dead_lettered, dead.len() as u64);
                sh.counters.batch(records.len() as u64);
            }
            Ok(_) => {
                Counters::add(&sh.counters.lease_lost, 1);
                log::warn!("write-behind: lease of partition {part} lost before settling; another holder re-applies the batch");
            }
            Err(e) => {
                // Unknown whether it settled: if not, the batch is taken again after the
                // lease (at least once).
                log::warn!("write-behind: settling a batch of partition {part} failed: {e}");
            }
        }
        true
    }

    fn call_origin(&self, batch: &[Write]) -> Result<(), String> {
        match catch_unwind(AssertUnwindSafe(|| self.sh.origin.write(batch))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(describe(&e)),
            Err(p) => Err(format!(
                "origin panicked: {}",
                p.downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        }
    }

    fn write_with_retries(&self, part: usize, token: &str, batch: &[Write]) -> Attempted {
        let sh = &*self.sh;
        let lease_key = &sh.keys.parts[part][2];
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| sh.origin.write(batch)));
            let (err, permanent) = match outcome {
                Ok(Ok(())) => return Attempted::Ok,
                Ok(Err(e)) => (describe(&e), e.is_permanent()),
                Err(p) => (
                    format!(
                        "origin panicked: {}",
                        p.downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default()
                    ),
                    false,
                ),
            };
            Counters::add(&sh.counters.origin_failures, 1);
            log::debug!("write-behind: origin attempt {attempt} failed: {err}");
            if permanent || attempt >= sh.s.max_attempts {
                return Attempted::Failed(err);
            }
            let pause = sh.s.backoff_for(attempt);
            // Keep the lease for the pause and the next attempt.
            let keep = (pause + sh.s.lease).as_millis() as u64;
            let _ = scripts()
                .lease
                .key(lease_key)
                .arg(token)
                .arg(keep)
                .invoke(&sh.ex);
            let stop = select! {
                recv(self.stop) -> _ => true,
                default(pause) => false,
            };
            if stop {
                // Give the batch up now so that the next process takes it at once.
                let _ = scripts()
                    .lease
                    .key(lease_key)
                    .arg(token)
                    .arg(0)
                    .invoke(&sh.ex);
                return Attempted::Stop;
            }
        }
    }
}

enum Attempted {
    Ok,
    Failed(String),
    Stop,
}

fn describe(e: &OriginError) -> String {
    if e.is_permanent() {
        format!("permanent: {e}")
    } else {
        e.to_string()
    }
}

/// Ends a worker's "settling" count when the settling is over.
struct Settling<'a>(&'a AtomicUsize);

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
