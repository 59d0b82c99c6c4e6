//! Cache-aside: reading an entry, loading it on a miss (singleflight, cross-process lock,
//! degradation), and refreshing it in the background (stale-while-revalidate, XFetch).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::codec::Codec;
use super::entry::{Header, HEADER_LEN};
use super::error::{is_availability, CacheError, CacheErrorKind};
use super::flight::{Role, Shared};
use super::refresher::Scheduled;
use super::stats::Counters;
use super::{BoxError, Cache, CacheTtl, Core, Entry, Lookup, Spec};
use crate::cmd::{cmd, Execute};
use crate::commands::Commands;

/// What a read found.
pub(crate) enum Read {
    /// Before fresh-until. `now` is the server time used for the decision.
    Fresh {
        header: Header,
        bytes: Vec<u8>,
        now: u64,
    },
    /// Past fresh-until, before stale-until (the server drops the key then).
    Stale(Vec<u8>),
    Tombstone,
    Miss,
}

/// A load's result for the caller that ran it, and for the callers that waited.
pub(crate) struct Loaded<T> {
    lookup: Lookup<T>,
    shared: Shared,
}

/// Whether the cross-process lock step found a value or lets us load.
enum LockStep<T> {
    Found(Loaded<T>),
    Load(Option<String>),
}

impl<E: Execute, C> Core<E, C> {
    pub(crate) fn read(&self, full: &str) -> crate::Result<Read> {
        let Some(bytes) = self.ex.get(full)? else {
            return Ok(Read::Miss);
        };
        Ok(self.classify(bytes))
    }

    /// Sort stored bytes into fresh / stale / tombstone; foreign bytes count as a miss.
    pub(crate) fn classify(&self, bytes: Vec<u8>) -> Read {
        let Some((header, _)) = Header::parse(&bytes) else {
            log::debug!("cache entry in an unknown format, treated as a miss");
            return Read::Miss;
        };
        if header.tombstone {
            return Read::Tombstone;
        }
        if header.fresh_until == u64::MAX {
            return Read::Fresh {
                header,
                bytes,
                now: 0,
            };
        }
        let now = self.clock.now_ms(&self.ex);
        // Without a stale grace, the server's PX ends the entry: our estimate of the
        // server clock must not turn the last milliseconds into a "stale" phase.
        if now < header.fresh_until || header.stale_until <= header.fresh_until {
            Read::Fresh { header, bytes, now }
        } else {
            Read::Stale(bytes)
        }
    }

    pub(crate) fn decode<T>(&self, entry: &[u8]) -> Result<T, CacheError>
    where
        C: Codec<T>,
    {
        self.codec
            .decode(&entry[HEADER_LEN.min(entry.len())..])
            .map_err(|e| CacheError::codec("decoding a cached value", e))
    }

    /// `d` scaled by a uniform factor in `1 - jitter ..= 1 + jitter`, in ms (at least 1).
    pub(crate) fn jittered_ms(&self, d: Duration) -> u64 {
        let ms = d.as_millis().min(u128::from(u64::MAX / 4)) as f64;
        let j = self.settings.jitter;
        let scaled = if j > 0.0 {
            ms * rand::thread_rng().gen_range(1.0 - j..=1.0 + j)
        } else {
            ms
        };
        (scaled.round() as u64).max(1)
    }

    /// The stored bytes for `value` (a tombstone for `None`) and the key's PX.
    pub(crate) fn build_entry<T>(
        &self,
        spec: &Spec,
        value: Option<&T>,
        delta_ms: u32,
    ) -> Result<(Vec<u8>, Option<u64>), CacheError>
    where
        C: Codec<T>,
    {
        let Some(value) = value else {
            let ttl = self.jittered_ms(spec.negative_ttl);
            let until = self.clock.now_ms(&self.ex).saturating_add(ttl);
            let header = Header {
                tombstone: true,
                fresh_until: until,
                stale_until: until,
                delta_ms,
            };
            return Ok((header.start(0), Some(ttl)));
        };
        let (header, px) = match spec.ttl {
            CacheTtl::Forever => (
                Header {
                    tombstone: false,
                    fresh_until: u64::MAX,
                    stale_until: u64::MAX,
                    delta_ms,
                },
                None,
            ),
            CacheTtl::After(ttl) => {
                let fresh = self.jittered_ms(ttl);
                let grace = spec.stale_for.map_or(0, |g| g.as_millis() as u64);
                let fresh_until = self.clock.now_ms(&self.ex).saturating_add(fresh);
                (
                    Header {
                        tombstone: false,
                        fresh_until,
                        stale_until: fresh_until.saturating_add(grace),
                        delta_ms,
                    },
                    Some(fresh + grace),
                )
            }
        };
        let mut buf = header.start(64);
        self.codec
            .encode(value, &mut buf)
            .map_err(|e| CacheError::codec("encoding a value", e))?;
        Ok((buf, px))
    }

    /// Entry bytes for a value that is handed to waiters but never stored.
    fn encode_unstored<T>(&self, value: Option<&T>) -> Result<Vec<u8>, CacheError>
    where
        C: Codec<T>,
    {
        let header = Header {
            tombstone: value.is_none(),
            fresh_until: 0,
            stale_until: 0,
            delta_ms: 0,
        };
        let mut buf = header.start(64);
        if let Some(v) = value {
            self.codec
                .encode(v, &mut buf)
                .map_err(|e| CacheError::codec("encoding a value", e))?;
        }
        Ok(buf)
    }

    /// Write an entry: `SET` (with `PX`), or the tag script when it has tags.
    pub(crate) fn store(&self, spec: &Spec, bytes: &[u8], px: Option<u64>) -> crate::Result<()> {
        if spec.tags.is_empty() {
            let mut c = cmd("SET").arg(&spec.full).arg(bytes);
            if let Some(px) = px {
                c = c.arg("PX").arg(px);
            }
            self.ex.exec(&c).map(drop)
        } else {
            let mut inv = self.put_tagged.key(&spec.full);
            for t in &spec.tags {
                inv = inv.key(self.ks.tag(t));
            }
            inv.arg(bytes)
                .arg(px.unwrap_or(0))
                .invoke(&self.ex)
                .map(drop)
        }
    }

    /// Call the loader, catching a panic; count the load and its time.
    pub(crate) fn run_loader<T, F>(&self, loader: F) -> Result<(Option<T>, u32), CacheError>
    where
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(loader));
        let took = started.elapsed();
        Counters::add(&self.stats.loads, 1);
        Counters::add(&self.stats.load_micros, took.as_micros() as u64);
        match result {
            Ok(Ok(v)) => Ok((v, took.as_millis().min(u128::from(u32::MAX)) as u32)),
            Ok(Err(e)) => {
                Counters::add(&self.stats.load_errors, 1);
                Err(CacheError::loader(e))
            }
            Err(panic) => {
                Counters::add(&self.stats.load_errors, 1);
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".into());
                Err(CacheError::new(CacheErrorKind::LoaderPanicked, msg, None))
            }
        }
    }

    /// Turn stored bytes found in the server into a load result.
    fn found<T>(&self, read: Read) -> Result<Option<Loaded<T>>, CacheError>
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

    /// Cross-process singleflight: take the lock, or wait (bounded) for the holder's value.
    fn lock_step<T>(&self, spec: &Spec) -> LockStep<T>
    where
        C: Codec<T>,
    {
        let Some(cp) = self.settings.cross_process else {
            return LockStep::Load(None);
        };
        let lock = self.ks.lock(&spec.key);
        let token = format!("{:032x}", rand::random::<u128>());
        let deadline = Instant::now() + cp.wait;
        loop {
            let set = cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(cp.lock_ttl.as_millis().max(1) as u64);
            match self.ex.exec(&set) {
                Ok(v) if !v.is_nil() => {
                    // Ours. The previous holder may have stored the value just before
                    // releasing: look once more.
                    return match self.read(&spec.full).map(|r| self.found(r)) {
                        Ok(Ok(Some(l))) => {
                            self.release(spec, &token);
                            LockStep::Found(l)
                        }
                        _ => LockStep::Load(Some(token)),
                    };
                }
                Ok(_) => {}
                Err(_) => return LockStep::Load(None),
            }
            if Instant::now() >= deadline {
                log::debug!("cross-process wait for {} timed out; loading", spec.key);
                return LockStep::Load(None);
            }
            std::thread::sleep(cp.poll);
            match self.read(&spec.full).map(|r| self.found(r)) {
                Ok(Ok(Some(l))) => {
                    Counters::add(&self.stats.coalesced, 1);
                    return LockStep::Found(l);
                }
                Ok(Ok(None)) => {}
                // The server failed, or the other process stored something we cannot
                // decode: load ourselves.
                Ok(Err(_)) | Err(_) => return LockStep::Load(None),
            }
        }
    }

    fn release(&self, spec: &Spec, token: &str) {
        let lock = self.ks.lock(&spec.key);
        if let Err(e) = self.unlock.key(lock).arg(token).invoke(&self.ex) {
            log::debug!("releasing the load lock of {} failed: {e}", spec.key);
        }
    }

    /// Load (under the cross-process lock when configured), store unless degraded.
    fn load_and_store<T, F>(
        &self,
        spec: &Spec,
        loader: F,
        degraded: bool,
    ) -> Result<Loaded<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let token = if degraded {
            None
        } else {
            match self.lock_step(spec) {
                LockStep::Found(l) => return Ok(l),
                LockStep::Load(token) => token,
            }
        };
        let result = self.run_loader(loader).and_then(|(value, delta)| {
            let bytes = if degraded {
                // Not stored, only shared with the waiters: no header times needed (and
                // no clock sync against a server that is down).
                self.encode_unstored(value.as_ref())?
            } else {
                let (bytes, px) = self.build_entry(spec, value.as_ref(), delta)?;
                if let Err(e) = self.store(spec, &bytes, px) {
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
        if let Some(token) = token {
            self.release(spec, &token);
        }
        result
    }

    /// A background refresh: load and store; a failure keeps the stale value.
    fn refresh<T, F>(&self, spec: &Spec, loader: F)
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        Counters::add(&self.stats.refreshes, 1);
        let mut token = None;
        if let Some(cp) = self.settings.cross_process {
            // One try: if another process holds the lock, it is refreshing this key.
            let t = format!("{:032x}", rand::random::<u128>());
            let set = cmd("SET")
                .arg(self.ks.lock(&spec.key))
                .arg(&t)
                .arg("NX")
                .arg("PX")
                .arg(cp.lock_ttl.as_millis().max(1) as u64);
            match self.ex.exec(&set) {
                Ok(v) if !v.is_nil() => token = Some(t),
                _ => return,
            }
        }
        let ok = self.run_loader(loader).and_then(|(value, delta)| {
            let (bytes, px) = self.build_entry(spec, value.as_ref(), delta)?;
            self.store(spec, &bytes, px).map_err(CacheError::server)
        });
        if let Err(e) = ok {
            Counters::add(&self.stats.refresh_errors, 1);
            log::debug!("background refresh of {} failed: {e}", spec.key);
        }
        if let Some(t) = token {
            self.release(spec, &t);
        }
    }

    /// XFetch: refresh early with probability growing toward fresh-until.
    fn xfetch_due(&self, header: &Header, now: u64) -> bool {
        let beta = self.settings.xfetch_beta;
        if beta <= 0.0 || header.fresh_until == u64::MAX {
            return false;
        }
        // rand() in (0, 1]: ln is then finite and <= 0.
        let r: f64 = 1.0 - rand::thread_rng().gen::<f64>();
        let gap = f64::from(header.delta_ms) * beta * -r.ln();
        now as f64 + gap >= header.fresh_until as f64
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
    /// The read-through path shared by `get_or_load` and `lookup_or_load`.
    pub(crate) fn lookup_spec<T, F>(
        &self,
        spec: Spec,
        accept_tombstone: bool,
        loader: F,
    ) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<Option<T>, BoxError> + Send + 'static,
    {
        let core = &*self.core;
        let stats = &core.stats;
        match core.read(&spec.full) {
            Ok(Read::Fresh { header, bytes, now }) => match core.decode(&bytes) {
                Ok(v) => {
                    Counters::add(&stats.hits, 1);
                    if core.xfetch_due(&header, now) {
                        self.refresh_in_background(spec, loader, true);
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
                    self.refresh_in_background(spec, loader, false);
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
                return self.load_shared(spec, accept_tombstone, loader, true);
            }
            Err(e) => return Err(CacheError::server(e)),
        }
        self.load_shared(spec, accept_tombstone, loader, false)
    }

    /// A miss: one load per key per process (singleflight), everyone gets its outcome.
    fn load_shared<T, F>(
        &self,
        spec: Spec,
        accept_tombstone: bool,
        loader: F,
        degraded: bool,
    ) -> Result<Lookup<T>, CacheError>
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        let core = &*self.core;
        if !core.settings.singleflight {
            return core
                .load_and_store(&spec, loader, degraded)
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
                            _ => true,
                        };
                        if usable {
                            if let Ok(Some(l)) = core.found::<T>(read) {
                                guard.finish(Ok(l.shared.clone()));
                                return Ok(l.lookup);
                            }
                        }
                    }
                }
                let result = core.load_and_store(&spec, loader, degraded);
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

    fn refresh_in_background<T, F>(&self, spec: Spec, loader: F, early: bool)
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<Option<T>, BoxError> + Send + 'static,
    {
        let core = self.core.clone();
        let full = spec.full.clone();
        let job = Box::new(move || core.refresh(&spec, loader));
        match self.refresher.schedule(&full, job) {
            Scheduled::Queued if early => Counters::add(&self.core.stats.early_refreshes, 1),
            Scheduled::Queued | Scheduled::AlreadyPending => {}
            Scheduled::Dropped => Counters::add(&self.core.stats.refreshes_dropped, 1),
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
    /// * Server unavailable (connect, I/O, timeout, broken, pool exhausted, circuit open):
    ///   the loader is called directly (still one per key) and the call is counted as
    ///   degraded, unless degradation is off.
    ///
    /// The loader must be `Send + 'static` because a background refresh runs it on a
    /// refresher thread.
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
        match self.cache.lookup_spec(spec, false, wrapped)? {
            Lookup::Found(v) => Ok(v),
            // Only when another caller's lookup_or_load for the same key, which we waited
            // for, answered "not found".
            Lookup::Missing | Lookup::KnownMissing => Err(CacheError::new(
                CacheErrorKind::Loader,
                format!("{}: the origin has no value (negative cache)", self.key),
                None,
            )),
        }
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
        self.cache
            .lookup_spec(spec, true, move || loader().map_err(Into::into))
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
