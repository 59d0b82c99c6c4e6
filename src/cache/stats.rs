//! Counters of one cache, and their Prometheus text rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Live counters (atomics), shared by every clone of a cache.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale_hits: AtomicU64,
    pub negative_hits: AtomicU64,
    pub loads: AtomicU64,
    pub load_errors: AtomicU64,
    pub load_micros: AtomicU64,
    pub coalesced: AtomicU64,
    pub early_refreshes: AtomicU64,
    pub refreshes: AtomicU64,
    pub refresh_errors: AtomicU64,
    pub refreshes_dropped: AtomicU64,
    pub degraded: AtomicU64,
    pub store_errors: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> CacheStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        CacheStats {
            hits: g(&self.hits),
            misses: g(&self.misses),
            stale_hits: g(&self.stale_hits),
            negative_hits: g(&self.negative_hits),
            loads: g(&self.loads),
            load_errors: g(&self.load_errors),
            load_time: Duration::from_micros(g(&self.load_micros)),
            coalesced_waiters: g(&self.coalesced),
            early_refreshes: g(&self.early_refreshes),
            refreshes: g(&self.refreshes),
            refresh_errors: g(&self.refresh_errors),
            refreshes_dropped: g(&self.refreshes_dropped),
            degraded: g(&self.degraded),
            store_errors: g(&self.store_errors),
        }
    }
}

/// A snapshot of a cache's counters (all since the cache was built).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CacheStats {
    /// Fresh entries served.
    pub hits: u64,
    /// Lookups that found no entry (each then loads, or waits for a load).
    pub misses: u64,
    /// Entries served past fresh-until (stale-while-revalidate).
    pub stale_hits: u64,
    /// Tombstones served ("known missing").
    pub negative_hits: u64,
    /// Loader calls, in the foreground and background alike.
    pub loads: u64,
    /// Loader calls that returned an error or panicked.
    pub load_errors: u64,
    /// Total time spent in loaders.
    pub load_time: Duration,
    /// Callers that waited for another caller's load instead of loading (in-process
    /// singleflight, and waits on another process's lock that ended with its value).
    pub coalesced_waiters: u64,
    /// XFetch early refreshes started.
    pub early_refreshes: u64,
    /// Background refreshes run (stale-while-revalidate and XFetch).
    pub refreshes: u64,
    /// Background refreshes that failed (the stale value keeps being served).
    pub refresh_errors: u64,
    /// Background refreshes not started because the refresher queue was full.
    pub refreshes_dropped: u64,
    /// Calls served by the loader directly because the server was unavailable.
    pub degraded: u64,
    /// Writes of loaded values to the server that failed (the value was still returned).
    pub store_errors: u64,
}

impl CacheStats {
    /// The share of lookups answered from the cache: `(hits + stale_hits + negative_hits)
    /// / (that + misses)`, in `0.0..=1.0`; `None` before the first lookup. Degraded calls
    /// (server unavailable) are not lookups.
    ///
    /// ```
    /// let mut s = valkit::cache::CacheStats::default();
    /// assert_eq!(s.hit_ratio(), None);
    /// s.hits = 3;
    /// s.misses = 1;
    /// assert_eq!(s.hit_ratio(), Some(0.75));
    /// ```
    pub fn hit_ratio(&self) -> Option<f64> {
        let served = self.hits + self.stale_hits + self.negative_hits;
        let total = served + self.misses;
        (total > 0).then(|| served as f64 / total as f64)
    }

    /// The counters in the Prometheus text exposition format, each series labelled
    /// `namespace="<namespace>"`.
    ///
    /// ```
    /// let text = valkit::cache::CacheStats::default().prometheus_text("shop");
    /// assert!(text.contains("# TYPE valkit_cache_hits_total counter"));
    /// assert!(text.contains("valkit_cache_hits_total{namespace=\"shop\"} 0"));
    /// ```
    pub fn prometheus_text(&self, namespace: &str) -> String {
        let ns = escape_label(namespace);
        let rows: [(&str, &str, String); 14] = [
            (
                "hits_total",
                "Fresh cache entries served.",
                self.hits.to_string(),
            ),
            (
                "misses_total",
                "Cache lookups that found no entry.",
                self.misses.to_string(),
            ),
            (
                "stale_hits_total",
                "Entries served past fresh-until (stale-while-revalidate).",
                self.stale_hits.to_string(),
            ),
            (
                "negative_hits_total",
                "Tombstones served (known missing).",
                self.negative_hits.to_string(),
            ),
            ("loads_total", "Loader calls.", self.loads.to_string()),
            (
                "load_errors_total",
                "Loader calls that failed or panicked.",
                self.load_errors.to_string(),
            ),
            (
                "load_seconds_total",
                "Time spent in loaders.",
                format!("{:.6}", self.load_time.as_secs_f64()),
            ),
            (
                "coalesced_waiters_total",
                "Callers that waited for another caller's load.",
                self.coalesced_waiters.to_string(),
            ),
            (
                "early_refreshes_total",
                "XFetch probabilistic early refreshes started.",
                self.early_refreshes.to_string(),
            ),
            (
                "refreshes_total",
                "Background refreshes run.",
                self.refreshes.to_string(),
            ),
            (
                "refresh_errors_total",
                "Background refreshes that failed.",
                self.refresh_errors.to_string(),
            ),
            (
                "refreshes_dropped_total",
                "Background refreshes dropped because the queue was full.",
                self.refreshes_dropped.to_string(),
            ),
            (
                "degraded_total",
                "Calls served by the loader because the cache server was unavailable.",
                self.degraded.to_string(),
            ),
            (
                "store_errors_total",
                "Failed writes of loaded values to the cache.",
                self.store_errors.to_string(),
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in rows {
            let _ = writeln!(out, "# HELP valkit_cache_{name} {help}");
            let _ = writeln!(out, "# TYPE valkit_cache_{name} counter");
            let _ = writeln!(out, "valkit_cache_{name}{{namespace=\"{ns}\"}} {value}");
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
