#![doc = include_str!("../../docs/patterns.md")]

mod aside;
mod batch;
mod codec;
mod entry;
mod error;
mod flight;
mod invalidate;
mod keys;
mod options;
mod refresh;
mod refresher;
mod session;
mod stats;
mod store;
mod write;
mod xprocess;

use std::sync::Arc;
use std::time::Duration;

use crate::cmd::Execute;
use crate::lock::Locks;
use crate::script::Script;

#[cfg(feature = "json")]
pub use codec::JsonCodec;
pub use codec::{BytesCodec, Codec, CodecError, DefaultCodec};
pub use error::{CacheError, CacheErrorKind};
pub use keys::{api_key, stable_hash, user_key, Keyspace};
pub use options::{CacheBuilder, CacheTtl, CrossProcess};
pub use session::{SessionId, SessionStore};
pub use stats::CacheStats;

use crate::cmd::server_clock::ServerClock;
use flight::Flights;
use options::Settings;
use refresher::Refresher;
use stats::Counters;

/// What a loader's error may be: anything that converts into a boxed error (`String`,
/// `&str`, `std::io::Error`, your own error types, [`crate::Error`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The answer of a lookup that distinguishes "no entry" from "known missing".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// A value: from the cache (fresh or stale) or just loaded.
    Found(T),
    /// A tombstone: the origin said "not found" recently, and the loader was not called.
    KnownMissing,
    /// No entry ([`Cache::get`]), or the loader just answered "not found" (a tombstone is
    /// now stored).
    Missing,
}

impl<T> Lookup<T> {
    /// The value, if any.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(v) => Some(v),
            _ => None,
        }
    }

    /// True for [`Lookup::Found`].
    pub fn is_found(&self) -> bool {
        matches!(self, Lookup::Found(_))
    }

    /// True for [`Lookup::KnownMissing`].
    pub fn is_known_missing(&self) -> bool {
        matches!(self, Lookup::KnownMissing)
    }
}

/// A cache over anything that implements [`Execute`] (a [`Client`](crate::Client), a
/// [`Pool`](crate::Pool) or an `Arc<Connection>`): cache-aside with singleflight, stale-while-revalidate,
/// negative caching, XFetch, write-through, batches, tags and invalidation events.
///
/// Cheap to clone (two `Arc`s); all clones share counters, in-flight loads and the
/// refresher threads, which are stopped and joined when the last clone is dropped (or by
/// [`Cache::shutdown`]). See the [module docs](self) for when to use which strategy.
pub struct Cache<E, C = DefaultCodec> {
    core: Arc<Core<E, C>>,
    refresher: Arc<Refresher>,
}

impl<E, C> Clone for Cache<E, C> {
    fn clone(&self) -> Self {
        Cache {
            core: self.core.clone(),
            refresher: self.refresher.clone(),
        }
    }
}

impl<E, C> std::fmt::Debug for Cache<E, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("keyspace", &self.core.ks)
            .field("settings", &self.core.settings)
            .finish()
    }
}

/// Everything a background refresh needs (not the refresher itself: a refresh job must not
/// keep the refresher alive, or dropping the last cache would join from its own thread).
pub(crate) struct Core<E, C> {
    ex: E,
    codec: C,
    ks: Keyspace,
    settings: Settings,
    clock: ServerClock,
    flights: Flights,
    stats: Counters,
    put_tagged: Script,
    invalidate_tag: Script,
    /// Cross-process load locks, in this cache's namespace slot.
    locks: Locks<E>,
}

impl<E, C> Core<E, C> {
    pub(crate) fn new(ex: E, locks: Locks<E>, codec: C, ks: Keyspace, settings: Settings) -> Self {
        Core {
            ex,
            codec,
            ks,
            settings,
            clock: ServerClock::default(),
            flights: Flights::default(),
            stats: Counters::default(),
            put_tagged: Script::new(include_str!("put_tagged.lua")),
            invalidate_tag: Script::new(include_str!("invalidate_tag.lua")),
            locks,
        }
    }
}

impl<E: Execute + Clone + Send + Sync + 'static> Cache<E> {
    /// Start building a cache over `ex` with the default codec.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use valkit::cache::Cache;
    /// use valkit::Connection;
    /// # fn main() -> valkit::Result<()> {
    /// let conn = Arc::new(Connection::open_url("redis://127.0.0.1:6379")?);
    /// let cache = Cache::builder(conn)
    ///     .namespace("shop")
    ///     .version(2)
    ///     .stale_for(Duration::from_secs(30))
    ///     .build()?;
    /// # let _ = cache; Ok(()) }
    /// ```
    pub fn builder(ex: E) -> CacheBuilder<E> {
        CacheBuilder::new(ex)
    }

    /// A cache with default settings in `namespace`.
    pub fn new(ex: E, namespace: &str) -> crate::Result<Cache<E>> {
        Cache::builder(ex).namespace(namespace).build()
    }
}

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    pub(crate) fn from_parts(core: Core<E, C>, refresher: Refresher) -> Self {
        Cache {
            core: Arc::new(core),
            refresher: Arc::new(refresher),
        }
    }

    /// Where this cache's keys live.
    pub fn keyspace(&self) -> &Keyspace {
        &self.core.ks
    }

    /// The executor commands go through.
    pub fn executor(&self) -> &E {
        &self.core.ex
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.core.stats.snapshot()
    }

    /// The counters in Prometheus text format (`valkit_cache_*_total`, labelled with the
    /// namespace), ready to append to the client's metrics.
    pub fn metrics_text(&self) -> String {
        self.stats().prometheus_text(self.core.ks.namespace())
    }

    /// A metrics source for [`Client::add_metrics_source`](crate::Client::add_metrics_source).
    /// It holds only a weak reference, so registering it does not keep the cache (and its
    /// refresher threads) alive after the last clone is dropped; it then writes nothing.
    pub fn metrics_source(&self) -> impl Fn(&mut String) + Send + Sync + 'static {
        let core = Arc::downgrade(&self.core);
        move |out: &mut String| {
            if let Some(core) = core.upgrade() {
                out.push_str(&core.stats.snapshot().prometheus_text(core.ks.namespace()));
            }
        }
    }

    /// Background refreshes queued or running.
    pub fn pending_refreshes(&self) -> usize {
        self.refresher.pending()
    }

    /// Stop the refresher threads for every clone of this cache: queued refreshes are
    /// skipped, running ones finish, the threads are joined. Stale hits afterwards are
    /// still served, but no longer refreshed (counted as dropped refreshes). Also done
    /// when the last clone is dropped.
    pub fn shutdown(&self) {
        self.refresher.shutdown();
    }

    /// Describe one entry (key, TTL, and optionally stale grace, negative TTL and tags),
    /// then read, load or write it.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "shop")?;
    /// let price: u64 = cache
    ///     .entry("price:42", Duration::from_secs(60))
    ///     .stale_for(Duration::from_secs(600))
    ///     .tags(["product:42", "prices"])
    ///     .get_or_load(|| Ok::<_, std::io::Error>(1999))?;
    /// # let _ = price; Ok(()) }
    /// ```
    pub fn entry(&self, key: &str, ttl: impl Into<CacheTtl>) -> Entry<'_, E, C> {
        Entry {
            cache: self,
            key: key.to_owned(),
            ttl: ttl.into(),
            stale_for: self.core.settings.stale_for,
            negative_ttl: self.core.settings.negative_ttl,
            tags: Vec::new(),
        }
    }
}

/// One entry being read, loaded or written: made by [`Cache::entry`].
pub struct Entry<'a, E, C> {
    cache: &'a Cache<E, C>,
    key: String,
    ttl: CacheTtl,
    stale_for: Option<Duration>,
    negative_ttl: Duration,
    tags: Vec<String>,
}

impl<E, C> Entry<'_, E, C> {
    /// Stale-while-revalidate grace for this entry (overrides the cache's setting); zero
    /// turns it off.
    pub fn stale_for(mut self, grace: Duration) -> Self {
        self.stale_for = Some(grace).filter(|g| !g.is_zero());
        self
    }

    /// Tombstone TTL for this entry (overrides the cache's setting).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Tags to record the entry under when it is written (see [`Cache::invalidate_tag`]).
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    fn spec(&self) -> Spec {
        Spec {
            full: self.cache.core.ks.entry(&self.key),
            key: self.key.clone(),
            ttl: self.ttl,
            stale_for: self.stale_for,
            negative_ttl: self.negative_ttl,
            tags: self.tags.clone(),
        }
    }
}

/// An entry's owned description, as background refreshes need it.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    key: String,
    full: String,
    ttl: CacheTtl,
    stale_for: Option<Duration>,
    negative_ttl: Duration,
    tags: Vec<String>,
}
