//! Settings: [`CacheTtl`], [`CrossProcess`] and the [`CacheBuilder`].

use std::time::Duration;

use super::codec::DefaultCodec;
use super::keys::Keyspace;
use super::refresher::Refresher;
use super::{Cache, Core};
use crate::cmd::{Execute, ReadFrom};
use crate::error::{Error, ErrorKind, Result};
use crate::lock::Locks;

/// How long an entry stays fresh. There is no default: every write names one, and
/// [`CacheTtl::Forever`] is the explicit way to store without expiry.
///
/// A `Duration` converts into [`CacheTtl::After`], so `Duration::from_secs(60)` can be
/// passed wherever a `CacheTtl` is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTtl {
    /// Fresh for this long (jittered), then stale for the stale grace (if any), then gone.
    After(Duration),
    /// Never expires (no jitter, no stale phase). Use sparingly: only invalidation or
    /// eviction removes it.
    Forever,
}

impl From<Duration> for CacheTtl {
    fn from(d: Duration) -> CacheTtl {
        CacheTtl::After(d)
    }
}

/// Cross-process singleflight: before loading, a process takes the entry's load lock (a
/// [`crate::lock`] lock at [`Keyspace::lock`]); the other processes wait for it at most
/// `wait` (a release wakes them at once), read the value the holder stored, or load
/// themselves when the wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossProcess {
    /// How long the lock lives if its holder dies (keep it above the slowest load).
    pub lock_ttl: Duration,
    /// How long a process waits for another's load before loading itself.
    pub wait: Duration,
    /// The longest a waiting process blocks before looking at the lock again without a
    /// wake-up (the safety net; a release wakes waiters at once). With a single shared
    /// connection as the executor, this also bounds how long a waiter holds it.
    pub poll: Duration,
}

impl Default for CrossProcess {
    fn default() -> Self {
        CrossProcess {
            lock_ttl: Duration::from_secs(5),
            wait: Duration::from_secs(2),
            poll: Duration::from_millis(10),
        }
    }
}

/// The settings of a [`Cache`]; see each [`CacheBuilder`] method for its default.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub jitter: f64,
    pub stale_for: Option<Duration>,
    pub negative_ttl: Duration,
    pub xfetch_beta: f64,
    pub singleflight: bool,
    pub cross_process: Option<CrossProcess>,
    pub degrade: bool,
    pub publish: bool,
    pub read_from: ReadFrom,
    pub plain: bool,
}

/// Builds a [`Cache`]: `Cache::builder(executor).namespace("shop").version(2).build()`.
pub struct CacheBuilder<E, C = DefaultCodec> {
    ex: E,
    codec: C,
    namespace: String,
    version: u32,
    slot_groups: u16,
    settings: Settings,
    refresh_threads: usize,
    refresh_queue: usize,
}

impl<E: Execute + Clone + Send + Sync + 'static> CacheBuilder<E, DefaultCodec> {
    pub(crate) fn new(ex: E) -> Self {
        CacheBuilder {
            ex,
            codec: DefaultCodec::default(),
            namespace: "cache".into(),
            version: 1,
            slot_groups: 1,
            settings: Settings {
                jitter: 0.1,
                stale_for: None,
                negative_ttl: Duration::from_secs(30),
                xfetch_beta: 0.0,
                singleflight: true,
                cross_process: None,
                degrade: true,
                publish: true,
                read_from: ReadFrom::Writer,
                plain: false,
            },
            refresh_threads: 2,
            refresh_queue: 1024,
        }
    }
}

impl<E: Execute + Clone + Send + Sync + 'static, C: Send + Sync + 'static> CacheBuilder<E, C> {
    /// The namespace (default `cache`): the hash tag of every key; see [`Keyspace`]. It
    /// must not be empty ([`build`](Self::build) refuses it: `{}` is no hash tag, so on a
    /// cluster an entry, its tag sets and its lock would land in different slots).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// The version segment (default 1). Bumping it hides every entry written before.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Spread the namespace's entries over this many hash tags (default 1: one slot), so
    /// that on Valkey Cluster one cache uses every shard; see
    /// [`Keyspace::with_slot_groups`] and `docs/cluster.md`. 16 is a good value on a
    /// cluster; on a single server, more groups only cost more round trips for tag and
    /// pattern invalidation.
    pub fn slot_groups(mut self, groups: u16) -> Self {
        self.slot_groups = groups;
        self
    }

    /// Store values with another codec (default `JsonCodec` with the
    /// `json` feature).
    pub fn codec<C2: Send + Sync + 'static>(self, codec: C2) -> CacheBuilder<E, C2> {
        CacheBuilder {
            ex: self.ex,
            codec,
            namespace: self.namespace,
            version: self.version,
            slot_groups: self.slot_groups,
            settings: self.settings,
            refresh_threads: self.refresh_threads,
            refresh_queue: self.refresh_queue,
        }
    }

    /// TTL jitter as a fraction (default 0.1: each TTL is multiplied by a uniform factor in
    /// 0.9..=1.1), so entries written together do not expire together. 0 turns it off;
    /// values are clamped to 0..=0.9.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.settings.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 0.9)
        } else {
            0.0
        };
        self
    }

    /// Stale-while-revalidate (default off): keep entries this long past their fresh TTL;
    /// a hit in that window returns the stale value at once and refreshes it in the
    /// background (one refresh per key). Per entry: [`Entry::stale_for`](super::Entry::stale_for).
    pub fn stale_for(mut self, grace: Duration) -> Self {
        self.settings.stale_for = Some(grace).filter(|g| !g.is_zero());
        self
    }

    /// TTL of tombstones written when a loader answers "not found" (default 30 s; jittered
    /// like every TTL). Per entry: [`Entry::negative_ttl`](super::Entry::negative_ttl).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// XFetch probabilistic early refresh (default off, i.e. beta 0). With beta > 0, a fresh
    /// hit starts a background refresh when `now - delta * beta * ln(rand()) >= fresh_until`
    /// (Vattani et al., VLDB 2015), `delta` being how long the last load took: slow loads
    /// refresh earlier. Beta 1 is the paper's recommended default; above 1 refreshes earlier.
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.settings.xfetch_beta = if beta.is_finite() { beta.max(0.0) } else { 0.0 };
        self
    }

    /// In-process singleflight (default on): concurrent misses of one key share one load.
    pub fn singleflight(mut self, on: bool) -> Self {
        self.settings.singleflight = on;
        self
    }

    /// Cross-process singleflight (default off); see [`CrossProcess`].
    pub fn cross_process(mut self, opts: CrossProcess) -> Self {
        self.settings.cross_process = Some(opts);
        self
    }

    /// Graceful degradation (default on): when the server is unavailable
    /// ([`Error::is_unavailable`](crate::Error::is_unavailable): connect, I/O, timeout,
    /// broken connection, pool exhausted, circuit open, `LOADING`, `MASTERDOWN`, ...),
    /// `get_or_load` calls the
    /// loader directly, does not store, and counts a degraded call. Off: those failures
    /// are returned as [`CacheErrorKind::Server`](super::CacheErrorKind::Server).
    pub fn degrade(mut self, on: bool) -> Self {
        self.settings.degrade = on;
        self
    }

    /// Publish an event on [`Keyspace::channel`] for every invalidation (default on).
    pub fn publish_invalidations(mut self, on: bool) -> Self {
        self.settings.publish = on;
        self
    }

    /// Where cache reads (`GET`, `MGET`) go when the executor has a reader endpoint
    /// (default [`ReadFrom::Writer`]). A replica that lags, or is still doing its initial
    /// sync, answers "miss" for entries just written: with the writer, a value stored is
    /// read back at once, and tombstones and stale entries are seen. Choose
    /// [`ReadFrom::Reader`] to take read load off the primary when the replicas keep up
    /// (a lagging replica then costs extra loads, never wrong values), or
    /// [`ReadFrom::ReaderWhenInSync`] to use the reader only while its replication link is
    /// up and no initial sync runs (checked once a second). Writes always go to the
    /// writer.
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.settings.read_from = read_from;
        self
    }

    /// Plain entries (default off): store each value exactly as the codec wrote it, with
    /// no header, so other services and languages can read and write the same keys (a
    /// JSON document with `JsonCodec`). Without the header there is no fresh-until, load
    /// time or tombstone, so:
    /// * stale-while-revalidate and XFetch are refused by [`build`](CacheBuilder::build)
    ///   (and a per-entry `stale_for` by the write, as [`CacheErrorKind::InvalidInput`](super::CacheErrorKind::InvalidInput));
    /// * negative caching stores nothing: a loader's "not found" is returned as
    ///   `Lookup::Missing` and the next lookup asks the loader again;
    /// * expiry is the key's own `PX` (the jittered TTL).
    ///
    /// Singleflight, cross-process singleflight, tags, batches, write-through and
    /// degradation work as usual.
    pub fn plain(mut self, on: bool) -> Self {
        self.settings.plain = on;
        self
    }

    /// Background refresher threads (default 2) and their queue length (default 1024;
    /// refreshes beyond it are dropped and counted).
    pub fn refreshers(mut self, threads: usize, queue: usize) -> Self {
        self.refresh_threads = threads.max(1);
        self.refresh_queue = queue.max(1);
        self
    }

    /// Start the refresher threads and build the cache.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when a thread cannot be spawned, when the namespace is empty,
    /// or when a plain cache asks for stale-while-revalidate or XFetch (they need the
    /// entry header).
    pub fn build(self) -> Result<Cache<E, C>> {
        if self.namespace.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "the cache namespace is empty: it is the hash tag of every key, and `{}` is \
                 no tag (on a cluster an entry, its tag sets and its lock would land in \
                 different slots)",
            ));
        }
        if self.settings.plain
            && (self.settings.stale_for.is_some() || self.settings.xfetch_beta > 0.0)
        {
            return Err(Error::new(
                ErrorKind::Config,
                "a plain cache stores no entry header: stale-while-revalidate and XFetch are \
                 not available (turn them off, or keep the header)",
            ));
        }
        let ks = Keyspace::new(&self.namespace, self.version).with_slot_groups(self.slot_groups);
        let poll = self
            .settings
            .cross_process
            .map_or(Duration::from_millis(10), |cp| cp.poll);
        let locks = Locks::builder(self.ex.clone())
            .prefix(&ks.lock_prefix())
            .max_poll(poll)
            .build();
        let refresher = Refresher::start(ks.namespace(), self.refresh_threads, self.refresh_queue)
            .map_err(|e| {
                Error::new(ErrorKind::Config, "cannot start cache refresher threads").with_source(e)
            })?;
        Ok(Cache::from_parts(
            Core::new(self.ex.clone(), locks, self.codec, ks, self.settings),
            refresher,
        ))
    }
}
