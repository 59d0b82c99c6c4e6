//! Invalidation: one key, a tag (atomically, by Lua), a pattern (SCAN + UNLINK), and the
//! events published for each.

use super::error::CacheError;
use super::Cache;
use crate::cmd::{cmd, Execute};
use crate::commands::{Commands, ScanOptions};

/// Keys deleted per `UNLINK` when invalidating by pattern.
const UNLINK_BATCH: usize = 500;

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    /// Delete the entry of `key` (value or tombstone). True when it existed.
    pub fn invalidate(&self, key: &str) -> Result<bool, CacheError> {
        let n: u64 = crate::cmd::FromValue::from_value(
            self.core
                .ex
                .exec(&cmd("UNLINK").arg(self.core.ks.entry(key)))
                .map_err(CacheError::server)?,
        )
        .map_err(CacheError::server)?;
        self.publish("key", key);
        Ok(n > 0)
    }

    /// Delete every entry written with `tag`, and the tag set, in one atomic script.
    /// Returns how many entries were deleted. A write with the same tag that races this
    /// call lands entirely before (and is deleted) or entirely after (and is recorded in
    /// the new tag set): no entry is left outside its tag set.
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use valkit::{cache::Cache, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cache = Cache::new(Arc::new(Connection::open_url("redis://127.0.0.1:6379")?), "shop")?;
    /// cache.entry("product:1", Duration::from_secs(60)).tags(["catalog"]).put(&"lamp".to_string())?;
    /// cache.entry("product:2", Duration::from_secs(60)).tags(["catalog"]).put(&"desk".to_string())?;
    /// assert_eq!(cache.invalidate_tag("catalog")?, 2);
    /// # Ok(()) }
    /// ```
    pub fn invalidate_tag(&self, tag: &str) -> Result<u64, CacheError> {
        let mut n = 0u64;
        // One tag set per slot group (one, unless the cache spreads over slots).
        for set in self.core.ks.tag_sets(tag) {
            n += self
                .core
                .invalidate_tag
                .key(set)
                .invoke_as::<u64, _>(&self.core.ex)
                .map_err(CacheError::server)?;
        }
        self.publish("tag", tag);
        Ok(n)
    }

    /// Delete every entry whose key matches the glob `pattern` (e.g. `user:*`), with
    /// `SCAN MATCH` and `UNLINK` in batches: never `KEYS`, so the server is never blocked
    /// for long. Not atomic: entries written during the scan may survive. Returns how many
    /// entries were deleted.
    pub fn invalidate_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        let ex = &self.core.ex;
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(UNLINK_BATCH);
        let mut deleted = 0u64;
        let unlink = |batch: &mut Vec<Vec<u8>>| -> Result<u64, CacheError> {
            if batch.is_empty() {
                return Ok(0);
            }
            let n = ex.unlink(&batch[..]).map_err(CacheError::server)?;
            batch.clear();
            Ok(n)
        };
        // One scan per slot group: on a cluster, a pattern with a literal hash tag is
        // scanned on the node of that tag's slot.
        for group_pattern in self.core.ks.entry_patterns(pattern) {
            let opts = ScanOptions::new().pattern(group_pattern).count(1000);
            for key in ex.scan(opts) {
                batch.push(key.map_err(CacheError::server)?);
                if batch.len() >= UNLINK_BATCH {
                    deleted += unlink(&mut batch)?;
                }
            }
            // Keys of one group share a slot: never UNLINK two groups together.
            deleted += unlink(&mut batch)?;
        }
        self.publish("pattern", pattern);
        Ok(deleted)
    }

    /// Best effort: `PUBLISH <channel> "<kind> <name>"`, e.g. `key user:1`, `tag catalog`,
    /// `pattern user:*`. Subscribers (e.g. near caches) drop what they hold for it.
    pub(crate) fn publish(&self, kind: &str, name: &str) {
        if !self.core.settings.publish {
            return;
        }
        let c = cmd("PUBLISH")
            .arg(self.core.ks.channel())
            .arg(format!("{kind} {name}"));
        if let Err(e) = self.core.ex.exec(&c) {
            log::debug!("publishing the invalidation of {kind} {name} failed: {e}");
        }
    }
}
