//! Write-behind: [`WriteBehind::put`] writes the cache and records the write durably in
//! Valkey in one round trip; worker threads drain the records in batches to your
//! [`Origin`], retry with backoff, and dead-letter what keeps failing.
//!
//! ```no_run
//! use valkit::write_behind::{OriginError, Write, WriteBehind};
//! use valkit::Client;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let wb = WriteBehind::builder(Client::open("redis://127.0.0.1:6379")?, "profiles")
//!     .origin(|batch: &[Write]| {
//!         for w in batch {
//!             // UPDATE profiles SET data = $2 WHERE id = $1 AND seq < $3 (idempotent)
//!             let _ = (w.key(), w.value(), w.seq());
//!         }
//!         Ok::<(), OriginError>(())
//!     })
//!     .start()?;
//! wb.put("user:1", b"{\"name\":\"Ada\"}")?; // cache written, write recorded: accepted
//! assert_eq!(wb.get("user:1")?, Some(b"{\"name\":\"Ada\"}".to_vec()));
//! wb.flush(std::time::Duration::from_secs(5))?; // everything accepted so far is applied
//! wb.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(()) }
//! ```
//!
//! # What "nothing lost" means here
//! A write is **accepted** when `put` returns `Ok`: the cache entry and the record are
//! then both in Valkey (one script, one round trip). From then on every accepted write is
//! in exactly one of three places: **pending** (in a partition list, or in a batch a
//! worker holds under a lease), **applied** (the origin returned `Ok` for its batch and
//! the batch was settled), or **dead-lettered** (with the origin's error). Settling a
//! batch moves all its writes out of pending in one script. The server-side `pending`
//! counter (also the backpressure bound) always equals the pending writes.
//!
//! * A worker thread that panics (in the origin or elsewhere) is restarted; its batch
//!   stays claimed and is retried.
//! * A process that dies (SIGKILL) loses nothing: its claimed batches are taken over,
//!   whole and in order, by any process once their lease (server time) runs out.
//! * A Valkey restart loses nothing only with `appendonly yes` and `appendfsync always`
//!   (with `everysec`, up to about a second of accepted writes). A failover to a replica
//!   can lose acknowledged writes (asynchronous replication); no client can prevent that.
//! * Delivery to the origin is **at least once**: a batch applied just before a crash is
//!   applied again by the process that takes it over. Make the origin write idempotent;
//!   [`Write::seq`] orders writes to a key ("set if seq > stored seq").
//! * Per-key order: a key always maps to the same partition; a partition is drained by
//!   one holder at a time, batch after batch, in acceptance order. After a batch failed
//!   `max_attempts` times its writes are tried one by one and the failing ones are
//!   dead-lettered, so a later write to a key may reach the origin while an earlier one
//!   sits in the dead-letter list.
//!
//! Keys: `{name}:c:<key>` (the cache entries), `{name}:p:<i>`, `{name}:f:<i>`,
//! `{name}:l:<i>` (partition, in-flight batch, lease), `{name}:seq`, `{name}:pending`,
//! `{name}:dead`: one hash tag, so one write-behind lives in one cluster slot (use
//! several names to spread load).

mod commit;
mod error;
mod options;
mod origin;
mod record;
mod stats;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::cmd::{cmd, Execute, FromValue};
use crate::script::Script;

pub use error::{WriteBehindError, WriteBehindErrorKind};
pub use options::{Backpressure, WriteBehindBuilder};
pub use origin::{BoxError, Origin, OriginError, Write};
pub use record::DeadWrite;
pub use stats::{WriteBehindMetrics, WriteBehindStats};

use options::Settings;
use stats::Counters;

pub(crate) struct Scripts {
    pub(crate) put: Script,
    pub(crate) claim: Script,
    pub(crate) done: Script,
    pub(crate) lease: Script,
    pub(crate) stats: Script,
    pub(crate) purge: Script,
}

pub(crate) fn scripts() -> &'static Scripts {
    static S: OnceLock<Scripts> = OnceLock::new();
    S.get_or_init(|| Scripts {
        put: Script::new(include_str!("put.lua")),
        claim: Script::new(include_str!("claim.lua")),
        done: Script::new(include_str!("done.lua")),
        lease: Script::new(include_str!("lease.lua")),
        stats: Script::new(include_str!("stats.lua")),
        purge: Script::new(include_str!("purge.lua")),
    })
}

/// Key names of one write-behind.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    tag: String,
    pub(crate) seq: String,
    pub(crate) pending: String,
    pub(crate) dead: String,
    /// Per partition: list, in-flight list, lease.
    pub(crate) parts: Vec<[String; 3]>,
}

impl Keys {
    fn new(name: &str, partitions: usize) -> Keys {
        let name: String = name
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        let tag = format!("{{{name}}}");
        Keys {
            seq: format!("{tag}:seq"),
            pending: format!("{tag}:pending"),
            dead: format!("{tag}:dead"),
            parts: (0..partitions)
                .map(|i| {
                    [
                        format!("{tag}:p:{i}"),
                        format!("{tag}:f:{i}"),
                        format!("{tag}:l:{i}"),
                    ]
                })
                .collect(),
            tag,
        }
    }

    fn cache(&self, key: &str) -> String {
        format!("{}:c:{key}", self.tag)
    }

    /// FNV-1a of the key, modulo the partitions: the same key, the same partition.
    fn partition(&self, key: &str) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % self.parts.len() as u64) as usize
    }
}

/// State the workers share with the handle.
pub(crate) struct Shared<E> {
    pub(crate) ex: E,
    pub(crate) keys: Keys,
    pub(crate) s: Settings,
    pub(crate) origin: Arc<dyn Origin>,
    pub(crate) counters: Counters,
    pub(crate) stopping: AtomicBool,
    /// Flushes in progress: while > 0, workers take partial batches at once.
    pub(crate) flushing: AtomicUsize,
    /// Batches whose settling (the `done` script, then this handle's counters) a worker
    /// has started and not finished: `flush` waits for 0 so that `metrics()` after it
    /// counts what it flushed.
    pub(crate) settling: AtomicUsize,
    pub(crate) wake: Vec<Sender<()>>,
    /// Group commit: puts go to the committer thread (None: each put runs its own script).
    pub(crate) commit: Option<Sender<commit::PutRequest>>,
}

/// A write-behind over anything that implements [`Execute`]; see the module docs.
pub struct WriteBehind<E> {
    shared: Arc<Shared<E>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Dropped to stop the workers (their `select!` sees the disconnect).
    stop_tx: Mutex<Option<Sender<()>>>,
}

impl<E> std::fmt::Debug for WriteBehind<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("keys", &self.shared.keys.tag)
            .field("settings", &self.shared.s)
            .finish()
    }
}

/// What [`WriteBehind::shutdown`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Everything accepted before the shutdown reached the origin or the dead-letter list.
    pub drained: bool,
    /// Pending writes (all processes) when the workers stopped: durable in Valkey, drained
    /// by the next process that starts workers on this name.
    pub pending: u64,
}

impl<E: Execute + Send + Sync + 'static> WriteBehind<E> {
    /// Start building a write-behind named `name` over `ex`.
    pub fn builder(ex: E, name: &str) -> WriteBehindBuilder<E> {
        WriteBehindBuilder {
            ex,
            name: name.to_owned(),
            origin: None,
            s: Settings::default(),
        }
    }

    fn start(
        ex: E,
        name: &str,
        origin: Arc<dyn Origin>,
        s: Settings,
    ) -> Result<WriteBehind<E>, WriteBehindError> {
        let stem = s.thread_name.clone().unwrap_or_else(|| name.to_owned());
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let mut wakes = Vec::new();
        let mut wake_rx: Vec<Receiver<()>> = Vec::new();
        for _ in 0..s.workers {
            let (tx, rx) = bounded(1);
            wakes.push(tx);
            wake_rx.push(rx);
        }
        let (commit_tx, commit_rx) = if s.group_commit {
            let (tx, rx) = bounded::<commit::PutRequest>(4096);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            ex,
            keys: Keys::new(name, s.partitions),
            s,
            origin,
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
            flushing: AtomicUsize::new(0),
            settling: AtomicUsize::new(0),
            wake: wakes,
            commit: commit_tx,
        });
        let wb = WriteBehind {
            shared: shared.clone(),
            threads: Mutex::new(Vec::new()),
            stop_tx: Mutex::new(Some(stop_tx)),
        };
        if let Some(rx) = commit_rx {
            let (sh, stop) = (shared.clone(), stop_rx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("valkit-wb-{stem}-commit"))
                .spawn(move || commit::committer(sh, rx, stop));
            match spawned {
                Ok(h) => wb.threads.lock().push(h),
                Err(e) => {
                    return Err(WriteBehindError::new(
                        WriteBehindErrorKind::Config,
                        format!("cannot spawn the write-behind committer: {e}"),
                    ));
                }
            }
        }
        let n = shared.s.workers;
        for (w, wake) in wake_rx.into_iter().enumerate() {
            let mine: Vec<usize> = (0..shared.s.partitions).filter(|p| p % n == w).collect();
            let ctx = worker::Worker::new(shared.clone(), mine, wake, stop_rx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("valkit-wb-{stem}-{w}"))
                .spawn(move || ctx.run());
            match spawned {
                Ok(h) => wb.threads.lock().push(h),
                Err(e) => {
                    wb.stop();
                    return Err(WriteBehindError::new(
                        WriteBehindErrorKind::Config,
                        format!("cannot spawn a write-behind worker: {e}"),
                    ));
                }
            }
        }
        Ok(wb)
    }

    /// Write `value` to the cache under `key` and record the write for the origin, in one
    /// round trip. `Ok(seq)` means accepted (see the module docs); the write's sequence
    /// number is returned. The caller keeps `value`: a refused write (backlog full, shut
    /// down, server error) was not accepted and may be put again.
    ///
    /// # Errors
    /// [`WriteBehindErrorKind::Full`] at the backlog bound (after blocking, if so
    /// configured), [`WriteBehindErrorKind::ShutDown`] after shutdown,
    /// [`WriteBehindErrorKind::Server`] when the server fails.
    pub fn put(&self, key: &str, value: &[u8]) -> Result<u64, WriteBehindError> {
        if self.shared.stopping.load(Ordering::Relaxed) {
            return Err(WriteBehindError::new(
                WriteBehindErrorKind::ShutDown,
                "put after shutdown",
            ));
        }
        let sh = &*self.shared;
        let p = sh.keys.partition(key);
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let seq = self.put_once(key, value)?;
            if seq > 0 {
                Counters::add(&sh.counters.accepted, 1);
                if let Some(tx) = sh.wake.get(p % sh.wake.len().max(1)) {
                    let _ = tx.try_send(());
                }
                return Ok(seq as u64);
            }
            let waited = started.elapsed();
            match sh.s.when_full {
                Backpressure::Block(limit) if waited < limit => {
                    std::thread::sleep(pause.min(limit - waited));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                _ => {
                    Counters::add(&sh.counters.rejected_full, 1);
                    return Err(WriteBehindError::new(
                        WriteBehindErrorKind::Full,
                        format!(
                            "backlog at its bound of {} writes (waited {waited:?})",
                            sh.s.backlog_limit
                        ),
                    ));
                }
            }
        }
    }

    /// One attempt: through the committer (group commit) or a script of its own.
    fn put_once(&self, key: &str, value: &[u8]) -> Result<i64, WriteBehindError> {
        let sh = &*self.shared;
        let Some(tx) = &sh.commit else {
            let seqs = commit::put_group(sh, &[(key, value)])?;
            return Ok(seqs.first().copied().unwrap_or(-1));
        };
        let shut = || WriteBehindError::new(WriteBehindErrorKind::ShutDown, "put during shutdown");
        let (reply, answer) = bounded(1);
        tx.send(commit::PutRequest {
            key: key.to_owned(),
            value: value.to_vec(),
            reply,
        })
        .map_err(|_| shut())?;
        answer.recv().map_err(|_| shut())?
    }

    /// Read the cache entry of `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, WriteBehindError> {
        let v = self
            .shared
            .ex
            .exec(&cmd("GET").arg(self.shared.keys.cache(key)))?;
        Ok(FromValue::from_value(v)?)
    }

    /// Wait until every write accepted before this call (by any process) was applied to
    /// the origin or dead-lettered. Workers take partial batches at once meanwhile. When
    /// it returns, [`WriteBehind::metrics`] counts every batch this handle's workers settled.
    ///
    /// # Errors
    /// [`WriteBehindErrorKind::Timeout`] when that did not happen within `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), WriteBehindError> {
        let started = Instant::now();
        let target = self.stats_until(started, timeout)?.last_seq;
        let sh = &*self.shared;
        sh.flushing.fetch_add(1, Ordering::SeqCst);
        let _undo = FlushGuard(&sh.flushing);
        for tx in &sh.wake {
            let _ = tx.try_send(());
        }
        let mut pause = Duration::from_millis(1);
        loop {
            let st = self.stats_until(started, timeout)?;
            // Settled on the server, and counted here: a worker of this handle that sent
            // the `done` of one of those batches has updated its counters.
            if st.low_seq.map_or(true, |low| low > target)
                && sh.settling.load(Ordering::SeqCst) == 0
            {
                sh.counters.flushed(started.elapsed());
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(WriteBehindError::new(
                    WriteBehindErrorKind::Timeout,
                    format!(
                        "flush: {} writes still pending after {timeout:?} (lag {:?})",
                        st.pending, st.lag
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// [`WriteBehind::stats`], retrying errors that say the command did not run (a server
    /// still loading its data after a restart, a failover in progress) until `timeout`
    /// from `started`.
    fn stats_until(
        &self,
        started: Instant,
        timeout: Duration,
    ) -> Result<WriteBehindStats, WriteBehindError> {
        let mut pause = Duration::from_millis(5);
        loop {
            match self.stats() {
                Err(e)
                    if e.server_error().is_some_and(|s| s.is_retryable())
                        && started.elapsed() < timeout =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Refuse new puts, flush for up to `deadline`, then stop and join the workers.
    /// Whatever is still pending stays in Valkey for the next process.
    pub fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport, WriteBehindError> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let drained = self.flush(deadline).is_ok();
        self.stop();
        let pending = self.stats()?.pending;
        Ok(ShutdownReport { drained, pending })
    }

    /// The backlog as the server holds it.
    pub fn stats(&self) -> Result<WriteBehindStats, WriteBehindError> {
        let sh = &*self.shared;
        let mut inv = scripts()
            .stats
            .key(&sh.keys.pending)
            .key(&sh.keys.dead)
            .key(&sh.keys.seq);
        for part in &sh.keys.parts {
            inv = inv.key(&part[0]).key(&part[1]);
        }
        let v: Vec<i64> = inv.invoke_as(&sh.ex)?;
        let g = |i: usize| v.get(i).copied().unwrap_or(-1);
        let now = g(3);
        let oldest = g(6);
        Ok(WriteBehindStats {
            pending: g(0).max(0) as u64,
            dead_lettered: g(1).max(0) as u64,
            last_seq: g(2).max(0) as u64,
            queued: g(4).max(0) as u64,
            in_flight: g(5).max(0) as u64,
            lag: (oldest >= 0).then(|| Duration::from_millis((now - oldest).max(0) as u64)),
            low_seq: (g(7) >= 0).then(|| g(7) as u64),
        })
    }

    /// What this handle did so far.
    pub fn metrics(&self) -> WriteBehindMetrics {
        self.shared.counters.snapshot()
    }

    /// Up to `count` dead-lettered writes from `start` (0 = the newest).
    pub fn dead_letters(
        &self,
        start: usize,
        count: usize,
    ) -> Result<Vec<DeadWrite>, WriteBehindError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let raw: Vec<Vec<u8>> = FromValue::from_value(
            self.shared.ex.exec(
                &cmd("LRANGE")
                    .arg(&self.shared.keys.dead)
                    .arg(start)
                    .arg(start.saturating_add(count) - 1),
            )?,
        )?;
        Ok(raw.iter().map(|e| DeadWrite::decode(e)).collect())
    }

    /// Delete every dead-lettered write (atomically); returns how many there were.
    pub fn purge_dead(&self) -> Result<u64, WriteBehindError> {
        let n: i64 = scripts()
            .purge
            .key(&self.shared.keys.dead)
            .invoke_as(&self.shared.ex)?;
        Ok(n.max(0) as u64)
    }

    /// The executor underneath.
    pub fn executor(&self) -> &E {
        &self.shared.ex
    }

    /// Stop the workers (a batch being retried gives up its lease, so another process can
    /// take it at once) and join them.
    fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        drop(self.stop_tx.lock().take());
        let threads = std::mem::take(&mut *self.threads.lock());
        for h in threads {
            let _ = h.join();
        }
    }
}

impl<E> Drop for WriteBehind<E> {
    /// Stops and joins the workers without draining: pending writes stay in Valkey.
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        drop(self.stop_tx.lock().take());
        for h in std::mem::take(&mut *self.threads.lock()) {
            let _ = h.join();
        }
    }
}

struct FlushGuard<'a>(&'a AtomicUsize);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
