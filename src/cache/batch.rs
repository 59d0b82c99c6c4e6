//! Batches: `get_many` (one MGET, one loader call, one write-back pipeline) and `warm`.

use std::collections::HashMap;

use super::codec::Codec;
use super::error::{is_availability, CacheError};
use super::stats::Counters;
use super::store::Read;
use super::{BoxError, Cache, CacheTtl, Core, Spec};
use crate::cmd::{cmd, Execute, Pipeline};

impl<E: Execute, C> Core<E, C> {
    fn batch_spec(&self, key: &str, ttl: CacheTtl) -> Spec {
        Spec {
            full: self.ks.entry(key),
            key: key.to_owned(),
            ttl,
            stale_for: self.settings.stale_for,
            negative_ttl: self.settings.negative_ttl,
            tags: Vec::new(),
        }
    }

    /// Encode `values` (a tombstone where `None`) and write them in one pipeline.
    fn write_batch<'k, T, I>(&self, ttl: CacheTtl, items: I, delta: u32) -> Result<(), CacheError>
    where
        C: Codec<T>,
        T: 'k,
        I: IntoIterator<Item = (&'k str, Option<&'k T>)>,
    {
        let mut p = Pipeline::new();
        for (key, value) in items {
            if !self.stores(value) {
                continue;
            }
            let spec = self.batch_spec(key, ttl);
            let (bytes, px) = self.build_entry(&spec, value, delta)?;
            let mut c = cmd("SET").arg(&spec.full).arg(bytes);
            if let Some(px) = px {
                c = c.arg("PX").arg(px);
            }
            p.add(c);
        }
        if p.is_empty() {
            return Ok(());
        }
        let failed = match self.ex.exec_pipeline(&p) {
            Ok(replies) => replies
                .iter()
                .filter(|v| matches!(v, crate::resp::Value::Error(_)))
                .count(),
            Err(e) => {
                log::warn!("writing a batch of {} entries failed: {e}", p.len());
                p.len()
            }
        };
        Counters::add(&self.stats.store_errors, failed as u64);
        Ok(())
    }
}

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// Many keys at once: one `MGET`; the keys that are missing or stale go to **one**
    /// loader call (which returns the values it found, by key); the loaded values, and
    /// tombstones for the keys the loader did not return, are written back in one
    /// pipeline. The result is in the order of `keys`, `None` for "not found" (loaded or
    /// tombstoned).
    ///
    /// Stale entries count as misses here (reloaded synchronously in the batch), and there
    /// is no singleflight across batches. When the server is unavailable and degradation is
    /// on, every key goes to the loader and nothing is stored.
    ///
    /// ```no_run
    /// # use std::{collections::HashMap, sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "app")?;
    /// let ids = ["user:1", "user:2", "user:3"];
    /// let names: Vec<Option<String>> = cache.get_many(&ids, Duration::from_secs(60), |missing| {
    ///     // one query for all the missing ones
    ///     Ok::<_, std::io::Error>(missing.iter().map(|k| (k.clone(), k.to_uppercase())).collect())
    /// })?;
    /// # let _ = names; Ok(()) }
    /// ```
    pub fn get_many<T, K, F, Er>(
        &self,
        keys: &[K],
        ttl: impl Into<CacheTtl>,
        loader: F,
    ) -> Result<Vec<Option<T>>, CacheError>
    where
        C: Codec<T>,
        K: AsRef<str>,
        F: FnOnce(&[String]) -> Result<HashMap<String, T>, Er>,
        Er: Into<BoxError>,
    {
        let ttl = ttl.into();
        let core = &*self.core;
        let mut out: Vec<Option<T>> = keys.iter().map(|_| None).collect();
        if keys.is_empty() {
            return Ok(out);
        }
        let mut mget = cmd("MGET").read_from(core.settings.read_from);
        // With slot groups the entries may live in different slots: one GET each, in one
        // pipeline (a cluster client splits it by node).
        let mut gets = crate::cmd::Pipeline::new();
        let grouped = core.ks.slot_groups() > 1;
        for k in keys {
            let full = core.ks.entry(k.as_ref());
            if grouped {
                gets.add(cmd("GET").arg(&full).read_from(core.settings.read_from));
            } else {
                mget.add_arg(full);
            }
        }
        let mut missing = Vec::new();
        let mut degraded = false;
        let fetched = if grouped {
            gets.query(&core.ex)
        } else {
            core.ex
                .exec(&mget)
                .and_then(crate::cmd::FromValue::from_value)
        };
        match fetched {
            Ok(values) => {
                let values: Vec<Option<Vec<u8>>> = values;
                for (i, v) in values.into_iter().enumerate().take(keys.len()) {
                    match v.map(|b| core.classify(b)) {
                        Some(Read::Fresh { bytes, .. }) => match core.decode(&bytes) {
                            Ok(v) => {
                                Counters::add(&core.stats.hits, 1);
                                out[i] = Some(v);
                            }
                            Err(_) => missing.push(i),
                        },
                        Some(Read::Tombstone) => Counters::add(&core.stats.negative_hits, 1),
                        _ => missing.push(i),
                    }
                }
            }
            Err(e) if core.settings.degrade && is_availability(&e) => {
                Counters::add(&core.stats.degraded, 1);
                degraded = true;
                missing = (0..keys.len()).collect();
            }
            Err(e) => return Err(CacheError::server(e)),
        }
        if missing.is_empty() {
            return Ok(out);
        }
        Counters::add(&core.stats.misses, missing.len() as u64);
        let names: Vec<String> = missing
            .iter()
            .map(|&i| keys[i].as_ref().to_owned())
            .collect();
        let (loaded, delta) = core.run_loader(|| loader(&names).map(Some).map_err(Into::into))?;
        let mut loaded = loaded.unwrap_or_default();
        let values: Vec<Option<T>> = names.iter().map(|n| loaded.remove(n)).collect();
        if !degraded {
            core.write_batch(
                ttl,
                names
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(Option::as_ref)),
                delta,
            )?;
        }
        for (i, v) in missing.into_iter().zip(values) {
            out[i] = v;
        }
        Ok(out)
    }

    /// Warm the cache: call `loader` once with all `keys` and write what it returns in one
    /// pipeline (keys it does not return are left alone). Returns how many entries were
    /// written.
    pub fn warm<T, K, F, Er>(
        &self,
        keys: &[K],
        ttl: impl Into<CacheTtl>,
        loader: F,
    ) -> Result<usize, CacheError>
    where
        C: Codec<T>,
        K: AsRef<str>,
        F: FnOnce(&[String]) -> Result<HashMap<String, T>, Er>,
        Er: Into<BoxError>,
    {
        let ttl = ttl.into();
        let core = &*self.core;
        let names: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
        let (loaded, delta) = core.run_loader(|| loader(&names).map(Some).map_err(Into::into))?;
        let loaded = loaded.unwrap_or_default();
        let before = core.stats.snapshot().store_errors;
        core.write_batch(
            ttl,
            loaded.iter().map(|(k, v)| (k.as_str(), Some(v))),
            delta,
        )?;
        let failed = core.stats.snapshot().store_errors - before;
        Ok(loaded.len().saturating_sub(failed as usize))
    }
}
