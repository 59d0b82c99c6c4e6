//! Entry primitives: read and classify stored bytes, build entries (header, jittered TTL,
//! payload), write them (plain `SET` or the tag script), and run loaders.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::Rng;

use super::codec::Codec;
use super::entry::{Header, HEADER_LEN};
use super::error::{CacheError, CacheErrorKind};
use super::stats::Counters;
use super::{BoxError, CacheTtl, Core, Spec};
use crate::cmd::{cmd, Execute};

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

impl<E: Execute, C> Core<E, C> {
    pub(crate) fn read(&self, full: &str) -> crate::Result<Read> {
        let get = cmd("GET").arg(full).read_from(self.settings.read_from);
        let Some(bytes) = crate::cmd::FromValue::from_value(self.ex.exec(&get)?)? else {
            return Ok(Read::Miss);
        };
        Ok(self.classify(bytes))
    }

    /// Sort stored bytes into fresh / stale / tombstone; foreign bytes count as a miss.
    pub(crate) fn classify(&self, bytes: Vec<u8>) -> Read {
        if self.settings.plain {
            // The value alone: fresh until the key's PX removes it.
            let header = Header {
                tombstone: false,
                fresh_until: u64::MAX,
                stale_until: u64::MAX,
                delta_ms: 0,
            };
            return Read::Fresh {
                header,
                bytes,
                now: 0,
            };
        }
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
        let payload = if self.settings.plain {
            entry
        } else {
            &entry[HEADER_LEN.min(entry.len())..]
        };
        self.codec
            .decode(payload)
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
        if self.settings.plain {
            return self.build_plain(spec, value);
        }
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

    /// A plain entry: the codec's bytes, `PX` the jittered TTL. For `None` (nothing is
    /// stored: see [`Core::stores`]) empty bytes.
    fn build_plain<T>(
        &self,
        spec: &Spec,
        value: Option<&T>,
    ) -> Result<(Vec<u8>, Option<u64>), CacheError>
    where
        C: Codec<T>,
    {
        if spec.stale_for.is_some() {
            return Err(CacheError::new(
                CacheErrorKind::InvalidInput,
                format!(
                    "{}: a plain cache has no entry header, so no stale grace",
                    spec.key
                ),
                None,
            ));
        }
        let mut buf = Vec::with_capacity(64);
        if let Some(v) = value {
            self.codec
                .encode(v, &mut buf)
                .map_err(|e| CacheError::codec("encoding a value", e))?;
        }
        let px = match spec.ttl {
            CacheTtl::Forever => None,
            CacheTtl::After(ttl) => Some(self.jittered_ms(ttl)),
        };
        Ok((buf, px))
    }

    /// Whether a load's outcome is written: always, except "not found" in a plain cache
    /// (it has no tombstones).
    pub(crate) fn stores<T>(&self, value: Option<&T>) -> bool {
        value.is_some() || !self.settings.plain
    }

    /// Entry bytes for a value that is handed to waiters but never stored.
    pub(crate) fn encode_unstored<T>(&self, value: Option<&T>) -> Result<Vec<u8>, CacheError>
    where
        C: Codec<T>,
    {
        let header = Header {
            tombstone: value.is_none(),
            fresh_until: 0,
            stale_until: 0,
            delta_ms: 0,
        };
        let mut buf = if self.settings.plain {
            Vec::with_capacity(64)
        } else {
            header.start(64)
        };
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
                inv = inv.key(self.ks.tag_for(t, &spec.key));
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
}
