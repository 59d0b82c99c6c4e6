//! Cache-aside: the read-through path (hit, stale hit, tombstone, miss, degradation), the
//! singleflight around loads, and the public `get_or_load` family.

use std::sync::Arc;

use super::codec::Codec;
use super::error::{is_availability, CacheError, CacheErrorKind};
use super::flight::{Role, Shared};
use super::stats::Counters;
use super::store::Read;
use super::xprocess::LockStep;
use super::{BoxError, Cache, CacheTtl, Core, Entry, Lookup, Spec};
use crate::cmd::Execute;

/// How a hit starts a background refresh (`Cache::refresh_in_background`).
pub(crate) type Background<E, C, F> = fn(&Cache<E, C>, Spec, F, bool);

/// A load's result for the caller that ran it, and for the callers that waited.
pub(crate) struct Loaded<T> {
    pub(crate) lookup: Lookup<T>,
    pub(crate) shared: Shared,
}

impl<E: Execute, C> Core<E, C> {
    /// Turn stored bytes found in the server into a load result.
    pub(crate) fn found<T>(&self, read: Read) -> Result<Option<Loaded<T>>, CacheError>
    where
        C: Codec<T>,
    {
        Ok(Some(match read {
            Read::Fresh { bytes, .. } | Read::Stale(bytes) => Loaded {
                lookup: Lookup::Found(self.decode(&bytes)?),
                shared: Shared::Value(Arc::new(bytes)),
            },
            Read::Tombstone => Loaded {
                lookup: Lookup::KnownMissing,
                shared: Shared::KnownMissing,
            },
            Read::Miss => return Ok(None),
        }))
    }

    /// Load (under the cross-process lock when configured), store unless degraded.
    /// `stale_ok`: a stale entry found under the lock ends the load (false: refreshing it).
    fn load_and_store<T, F>(
        &self,
        spec: &Spec,
        loader: F,
        degraded: bool,
        stale_ok: bool,
    ) -> Result<Loaded<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let guard = if degraded {
            None
        } else {
            match self.lock_step(spec, stale_ok) {
                LockStep::Found(l) => return Ok(l),
                LockStep::Load(guard) => guard,
            }
        };
        let result = self.run_loader(loader).and_then(|(value, delta)| {
            let bytes = if degraded {
                // Not stored, only shared with the waiters: no header times needed (and
                // no clock sync against a server that is down).
                self.encode_unstored(value.as_ref())?
            } else {
                let (bytes, px) = self.build_entry(spec, value.as_ref(), delta)?;
                let stored = if self.stores(value.as_ref()) {
                    self.store(spec, &bytes, px)
                } else {
                    Ok(())
                };
                if let Err(e) = stored {
                    Counters::add(&self.stats.store_errors, 1);
                    log::warn!("storing the loaded value of {} failed: {e}", spec.key);
                }
                bytes
            };
            Ok(match value {
                Some(v) => Loaded {
                    lookup: Lookup::Found(v),
                    shared: Shared::Value(Arc::new(bytes)),
                },
                None => Loaded {
                    lookup: Lookup::Missing,
                    shared: Shared::NotFound,
                },
            })
        });
        if let Some(guard) = guard {
            self.release(spec, guard);
        }
        result
    }

    fn lookup_of_shared<T>(&self, shared: Shared) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
    {
        Ok(match shared {
            Shared::Value(bytes) => Lookup::Found(self.decode(&bytes)?),
            Shared::NotFound => Lookup::Missing,
            Shared::KnownMissing => Lookup::KnownMissing,
        })
    }
}

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// The read-through path shared by `get_or_load` and `lookup_or_load` (with
    /// `background`: refreshes run on the refresher threads) and their borrowing
    /// variants (without: a stale hit refreshes in the caller's thread, XFetch is off).
    pub(crate) fn lookup_spec<T, F>(
        &self,
        spec: Spec,
        accept_tombstone: bool,
        loader: F,
        background: Option<Background<E, C, F>>,
    ) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let core = &*self.core;
        let stats = &core.stats;
        match core.read(&spec.full) {
            Ok(Read::Fresh { header, bytes, now }) => match core.decode(&bytes) {
                Ok(v) => {
                    Counters::add(&stats.hits, 1);
                    if let Some(bg) = background.filter(|_| core.xfetch_due(&header, now)) {
                        bg(self, spec, loader, true);
                    }
                    return Ok(Lookup::Found(v));
                }
                Err(e) => {
                    log::debug!("undecodable entry {}: {e}; reloading", spec.key);
                    Counters::add(&stats.misses, 1);
                }
            },
            Ok(Read::Stale(bytes)) => match core.decode(&bytes) {
                Ok(v) => {
                    Counters::add(&stats.stale_hits, 1);
                    let Some(bg) = background else {
                        // No background refresh for a borrowing loader: this caller
                        // refreshes (one per key), and keeps the stale value on failure.
                        return match self.load_shared(spec, accept_tombstone, loader, false, false)
                        {
                            Ok(l) => Ok(l),
                            Err(e) => {
                                Counters::add(&stats.refresh_errors, 1);
                                log::debug!("refresh failed ({e}); serving the stale value");
                                Ok(Lookup::Found(v))
                            }
                        };
                    };
                    bg(self, spec, loader, false);
                    return Ok(Lookup::Found(v));
                }
                Err(e) => {
                    log::debug!("undecodable entry {}: {e}; reloading", spec.key);
                    Counters::add(&stats.misses, 1);
                }
            },
            Ok(Read::Tombstone) if accept_tombstone => {
                Counters::add(&stats.negative_hits, 1);
                return Ok(Lookup::KnownMissing);
            }
            Ok(Read::Tombstone | Read::Miss) => Counters::add(&stats.misses, 1),
            Err(e) if core.settings.degrade && is_availability(&e) => {
                log::debug!("cache unavailable ({e}); calling the loader directly");
                Counters::add(&stats.degraded, 1);
                return self.load_shared(spec, accept_tombstone, loader, true, true);
            }
            Err(e) => return Err(CacheError::server(e)),
        }
        self.load_shared(spec, accept_tombstone, loader, false, true)
    }

    /// A miss: one load per key per process (singleflight), everyone gets its outcome.
    fn load_shared<T, F>(
        &self,
        spec: Spec,
        accept_tombstone: bool,
        loader: F,
        degraded: bool,
        stale_ok: bool,
    ) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let core = &*self.core;
        if !core.settings.singleflight {
            return core
                .load_and_store(&spec, loader, degraded, stale_ok)
                .map(|l| l.lookup);
        }
        match core.flights.join(&spec.full) {
            Role::Leader(guard) => {
                // A caller that read "miss" just before the previous leader stored its
                // value, and joined just after that flight ended, must not load again:
                // look once more (misses only pay this extra GET).
                if !degraded {
                    if let Ok(read) = core.read(&spec.full) {
                        let usable = match read {
                            Read::Tombstone => accept_tombstone,
                            Read::Miss => false,
                            Read::Stale(_) => stale_ok,
                            Read::Fresh { .. } => true,
                        };
                        if usable {
                            if let Ok(Some(l)) = core.found::<T>(read) {
                                guard.finish(Ok(l.shared.clone()));
                                return Ok(l.lookup);
                            }
                        }
                    }
                }
                let result = core.load_and_store(&spec, loader, degraded, stale_ok);
                guard.finish(match &result {
                    Ok(l) => Ok(l.shared.clone()),
                    Err(e) => Err(e.clone()),
                });
                result.map(|l| l.lookup)
            }
            Role::Waiter(flight) => {
                Counters::add(&core.stats.coalesced, 1);
                core.lookup_of_shared(flight.wait()?)
            }
        }
    }

    /// Cache-aside with the entry's defaults: the cached value, or the loader's (stored
    /// with `ttl`, jittered). Concurrent misses of one key share one loader call; see
    /// [`Entry::get_or_load`].
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn load_name(id: u64) -> std::io::Result<String> { Ok(format!("user {id}")) }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "app")?;
    /// let name: String = cache.get_or_load("user:7", Duration::from_secs(60), || load_name(7))?;
    /// # let _ = name; Ok(()) }
    /// ```
    pub fn get_or_load<T, F, Er>(
        &self,
        key: &str,
        ttl: impl Into<CacheTtl>,
        loader: F,
    ) -> Result<T, CacheError>
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<T, Er> + Send + 'static,
        Er: Into<BoxError>,
    {
        self.entry(key, ttl).get_or_load(loader)
    }

    /// Cache-aside with negative caching: the loader answers `Ok(None)` for "not found",
    /// which stores a tombstone for the negative TTL; until it expires, lookups return
    /// [`Lookup::KnownMissing`] without calling the loader.
    pub fn lookup_or_load<T, F, Er>(
        &self,
        key: &str,
        ttl: impl Into<CacheTtl>,
        loader: F,
    ) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<Option<T>, Er> + Send + 'static,
        Er: Into<BoxError>,
    {
        self.entry(key, ttl).lookup_or_load(loader)
    }

    /// [`get_or_load`](Cache::get_or_load) for a loader that borrows locals (need not be
    /// `Send` or `'static`); see [`Entry::get_or_load_local`] for how stale hits refresh.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "app")?;
    /// let path = String::from("/etc/hostname");
    /// let host: String = cache.get_or_load_local("host", Duration::from_secs(60), || {
    ///     std::fs::read_to_string(&path) // borrows `path`; the error type is inferred
    /// })?;
    /// # let _ = host; Ok(()) }
    /// ```
    pub fn get_or_load_local<T, F, Er>(
        &self,
        key: &str,
        ttl: impl Into<CacheTtl>,
        loader: F,
    ) -> Result<T, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<T, Er>,
        Er: Into<BoxError>,
    {
        self.entry(key, ttl).get_or_load_local(loader)
    }

    /// Read only: [`Lookup::Found`] for a fresh or stale entry, `KnownMissing` for a
    /// tombstone, `Missing` otherwise. Never loads, never refreshes.
    pub fn get<T>(&self, key: &str) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
    {
        let core = &*self.core;
        match core.read(&core.ks.entry(key)).map_err(CacheError::server)? {
            Read::Fresh { bytes, .. } | Read::Stale(bytes) => {
                Ok(Lookup::Found(core.decode(&bytes)?))
            }
            Read::Tombstone => Ok(Lookup::KnownMissing),
            Read::Miss => Ok(Lookup::Missing),
        }
    }

    /// Store `value` under `key` for `ttl` (no tags; see [`Entry::put`]).
    pub fn put<T>(&self, key: &str, ttl: impl Into<CacheTtl>, value: &T) -> Result<(), CacheError>
    where
        C: Codec<T>,
    {
        self.entry(key, ttl).put(value)
    }
}

impl<E, C> Entry<'_, E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// The cached value, or the loader's.
    ///
    /// * Fresh hit: returned at once (with XFetch on, sometimes a background refresh starts).
    /// * Stale hit (past the TTL, within the stale grace): returned at once; one background
    ///   refresh per key runs on the refresher threads. A failed refresh keeps the stale
    ///   value and is counted.
    /// * Miss (or past the stale grace): one caller per key loads, the others wait and get
    ///   the same value or the same error. With cross-process singleflight, one process
    ///   loads while the others wait a bounded time.
    /// * Server unavailable ([`Error::is_unavailable`](crate::Error::is_unavailable):
    ///   connect, I/O, timeout, broken, pool exhausted, circuit open, `LOADING`, ...):
    ///   the loader is called directly (still one per key) and the call is counted as
    ///   degraded, unless degradation is off.
    ///
    /// The loader must be `Send + 'static` because a background refresh runs it on a
    /// refresher thread; for a loader that borrows, use
    /// [`get_or_load_local`](Entry::get_or_load_local).
    ///
    /// # Errors
    /// [`CacheErrorKind::Loader`] / [`LoaderPanicked`](CacheErrorKind::LoaderPanicked) for
    /// everyone that waited for a failed load (never cached); [`CacheErrorKind::Server`]
    /// for server failures not covered by degradation; [`CacheErrorKind::Codec`].
    pub fn get_or_load<T, F, Er>(self, loader: F) -> Result<T, CacheError>
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<T, Er> + Send + 'static,
        Er: Into<BoxError>,
    {
        let spec = self.spec();
        let wrapped = move || loader().map(Some).map_err(Into::into);
        let bg: Background<E, C, _> = Cache::refresh_in_background;
        let found = self.cache.lookup_spec(spec, false, wrapped, Some(bg))?;
        found_or_no_value(&self.key, found)
    }

    /// Like [`get_or_load`](Entry::get_or_load), with negative caching: see
    /// [`Cache::lookup_or_load`].
    pub fn lookup_or_load<T, F, Er>(self, loader: F) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<Option<T>, Er> + Send + 'static,
        Er: Into<BoxError>,
    {
        let spec = self.spec();
        let wrapped = move || loader().map_err(Into::into);
        let bg: Background<E, C, _> = Cache::refresh_in_background;
        self.cache.lookup_spec(spec, true, wrapped, Some(bg))
    }

    /// Like [`get_or_load`](Entry::get_or_load), for a loader that borrows (need not be
    /// `Send` or `'static`): nothing runs it in the background. A stale hit (stale grace)
    /// is refreshed by the caller that sees it (one per key; the stale value is returned
    /// if that load fails), and XFetch early refreshes do not happen.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "app")?;
    /// let dir = std::path::PathBuf::from("/etc/app"); // a local the loader borrows
    /// let motd: String = cache
    ///     .entry("motd", Duration::from_secs(60))
    ///     .get_or_load_local(|| std::fs::read_to_string(dir.join("motd")))?;
    /// # let _ = motd; Ok(()) }
    /// ```
    pub fn get_or_load_local<T, F, Er>(self, loader: F) -> Result<T, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<T, Er>,
        Er: Into<BoxError>,
    {
        let spec = self.spec();
        let wrapped = move || loader().map(Some).map_err(Into::into);
        let found = self.cache.lookup_spec(spec, false, wrapped, None)?;
        found_or_no_value(&self.key, found)
    }

    /// Like [`lookup_or_load`](Entry::lookup_or_load) for a borrowing loader; see
    /// [`get_or_load_local`](Entry::get_or_load_local).
    pub fn lookup_or_load_local<T, F, Er>(self, loader: F) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, Er>,
        Er: Into<BoxError>,
    {
        let spec = self.spec();
        self.cache
            .lookup_spec(spec, true, move || loader().map_err(Into::into), None)
    }

    /// Store `value` (with the entry's tags, atomically recorded in their tag sets).
    pub fn put<T>(self, value: &T) -> Result<(), CacheError>
    where
        C: Codec<T>,
    {
        let spec = self.spec();
        let core = &*self.cache.core;
        let (bytes, px) = core.build_entry(&spec, Some(value), 0)?;
        core.store(&spec, &bytes, px).map_err(CacheError::server)
    }
}

/// The value of a `get_or_load*`; `Missing` only when another caller's `lookup_or_load` for
/// the same key, which this one waited for, answered "not found".
fn found_or_no_value<T>(key: &str, found: Lookup<T>) -> Result<T, CacheError> {
    match found {
        Lookup::Found(v) => Ok(v),
        Lookup::Missing | Lookup::KnownMissing => Err(CacheError::new(
            CacheErrorKind::Loader,
            format!("{key}: the origin has no value (negative cache)"),
            None,
        )),
    }
}
