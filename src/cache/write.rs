//! Write-through: the origin first, then the cache, with a documented failure rule.

use super::codec::Codec;
use super::error::{CacheError, CacheErrorKind};
use super::{BoxError, Cache, CacheTtl, Entry};
use crate::cmd::{cmd, Execute};

impl<E, C> Entry<'_, E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// Write-through: encode `value`, write it to the origin with `writer`, then store it
    /// in the cache (with the entry's tags).
    ///
    /// Failure rule:
    /// * encoding fails: nothing is written ([`CacheErrorKind::Codec`]);
    /// * the origin write fails: the cache is untouched ([`CacheErrorKind::Origin`], with
    ///   the writer's error as [`CacheError::loader_error`]);
    /// * the cache write fails after the origin succeeded: the entry is deleted (best
    ///   effort) so no reader keeps the old value, and the caller is told:
    ///   [`CacheErrorKind::CacheInvalidated`] when the delete worked,
    ///   [`CacheErrorKind::CacheStale`] when it failed too (the old value may then be
    ///   served until its TTL). The origin write is not undone in either case.
    pub fn put_through<T, W, Er>(self, value: &T, writer: W) -> Result<(), CacheError>
    where
        C: Codec<T>,
        W: FnOnce(&T) -> Result<(), Er>,
        Er: Into<BoxError>,
    {
        let spec = self.spec();
        let core = &*self.cache.core;
        let (bytes, px) = core.build_entry(&spec, Some(value), 0)?;
        if let Err(e) = writer(value) {
            let e: BoxError = e.into();
            return Err(CacheError::new(
                CacheErrorKind::Origin,
                e.to_string(),
                Some(e),
            ));
        }
        let Err(store_err) = core.store(&spec, &bytes, px) else {
            return Ok(());
        };
        log::warn!(
            "write-through of {}: origin written, cache write failed: {store_err}",
            spec.key
        );
        match core.ex.exec(&cmd("UNLINK").arg(&spec.full)) {
            Ok(_) => {
                self.cache.publish("key", &spec.key);
                Err(CacheError::new(
                    CacheErrorKind::CacheInvalidated,
                    format!("{}: {store_err}", spec.key),
                    Some(Box::new(store_err)),
                ))
            }
            Err(del_err) => Err(CacheError::new(
                CacheErrorKind::CacheStale,
                format!(
                    "{}: {store_err}; invalidation failed too: {del_err}",
                    spec.key
                ),
                Some(Box::new(store_err)),
            )),
        }
    }
}

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// Write-through without tags; see [`Entry::put_through`] for the order and failure
    /// rule.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::{Cache, CacheErrorKind}, Connection};
    /// # fn save_to_db(_: &String) -> std::io::Result<()> { Ok(()) }
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "app")?;
    /// let name = "Ada".to_string();
    /// match cache.put_through("user:1", Duration::from_secs(300), &name, save_to_db) {
    ///     Ok(()) => {}
    ///     Err(e) if e.kind() == CacheErrorKind::Origin => return Err(e.into()), // nothing changed
    ///     Err(e) => eprintln!("saved, but the cache was not updated: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn put_through<T, W, Er>(
        &self,
        key: &str,
        ttl: impl Into<CacheTtl>,
        value: &T,
        writer: W,
    ) -> Result<(), CacheError>
    where
        C: Codec<T>,
        W: FnOnce(&T) -> Result<(), Er>,
        Er: Into<BoxError>,
    {
        self.entry(key, ttl).put_through(value, writer)
    }
}
