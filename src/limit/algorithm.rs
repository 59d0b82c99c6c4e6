//! The five algorithms, their parameters, and how each one's script is called.

use std::time::Duration;

use crate::error::{Error, Result};

/// Largest integer a Lua number (a double) holds exactly: the scripts' arithmetic must stay
/// below it.
const EXACT_LIMIT: u128 = 1 << 53;

/// Which algorithm a [`Limiter`](super::Limiter) runs, with its parameters.
///
/// | algorithm | state per id | exact? | burst at a window edge |
/// | --- | --- | --- | --- |
/// | [`sliding_log`](Algorithm::sliding_log) | one sorted-set member per admitted unit | yes | none: any window of `window` admits at most `limit` |
/// | [`sliding_counter`](Algorithm::sliding_counter) | one string: window start and two counts | no: see its bound | less than `2 × limit` in the worst case |
/// | [`fixed_window`](Algorithm::fixed_window) | one string: window start and count | per aligned window | up to `2 × limit` across a boundary |
/// | [`token_bucket`](Algorithm::token_bucket) | one string: tokens and their time | yes | `capacity`, then the refill rate |
/// | [`gcra`](Algorithm::gcra) | one string: the TAT | yes | `burst + 1`, then the rate |
///
/// ```
/// use std::time::Duration;
/// use valkit::limit::Algorithm;
/// let per_user = Algorithm::token_bucket(100, 100, Duration::from_secs(60));
/// let per_endpoint = Algorithm::sliding_log(20, Duration::from_secs(1));
/// # let _ = (per_user, per_endpoint);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithm {
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SlidingLog {
        limit: u64,
        window_us: u64,
    },
    SlidingCounter {
        limit: u64,
        window_us: u64,
    },
    FixedWindow {
        limit: u64,
        window_us: u64,
    },
    TokenBucket {
        capacity: u64,
        refill: u64,
        per_us: u64,
    },
    Gcra {
        burst: u64,
        interval_us: u64,
    },
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Algorithm {
    /// Sliding-window log: at most `limit` units in any `window`, exactly. Memory grows with
    /// the units admitted in a window: one sorted-set member each, about 31 bytes up to 128
    /// members (a listpack), about 130 bytes beyond (a skiplist).
    pub fn sliding_log(limit: u64, window: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::SlidingLog {
                limit,
                window_us: micros(window),
            },
        }
    }

    /// Sliding-window counter: the current and previous aligned windows' counts, the previous
    /// weighted by its overlap with the sliding window. O(1) memory. Each aligned window
    /// admits at most `limit`; a sliding window of length `window` that ends a fraction `f`
    /// into an aligned window admits at most `limit + f × prev` (fewer than `2 × limit`),
    /// where `prev` is what the previous aligned window admitted.
    pub fn sliding_counter(limit: u64, window: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::SlidingCounter {
                limit,
                window_us: micros(window),
            },
        }
    }

    /// Fixed window: at most `limit` units per window aligned to multiples of `window` on the
    /// server's clock (so every process agrees where windows start).
    pub fn fixed_window(limit: u64, window: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::FixedWindow {
                limit,
                window_us: micros(window),
            },
        }
    }

    /// Token bucket: up to `capacity` units at once, refilled by `refill` units every
    /// `per` (continuously: fractions of a token accrue exactly).
    pub fn token_bucket(capacity: u64, refill: u64, per: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::TokenBucket {
                capacity,
                refill,
                per_us: micros(per),
            },
        }
    }

    /// GCRA: `rate` units per `period`, with `burst` more allowed at once (redis-cell's
    /// `CL.THROTTLE key burst rate period`): limit = `burst + 1`. The emission interval
    /// `period / rate` is kept in whole microseconds (rounded down).
    pub fn gcra(burst: u64, rate: u64, period: Duration) -> Algorithm {
        let interval_us = micros(period).checked_div(rate).unwrap_or(0);
        Algorithm {
            kind: Kind::Gcra { burst, interval_us },
        }
    }

    /// The most units one request may cost (a request costing more is refused outright).
    pub fn limit(&self) -> u64 {
        match self.kind {
            Kind::SlidingLog { limit, .. }
            | Kind::SlidingCounter { limit, .. }
            | Kind::FixedWindow { limit, .. } => limit,
            Kind::TokenBucket { capacity, .. } => capacity,
            Kind::Gcra { burst, .. } => burst.saturating_add(1),
        }
    }

    /// A short name, used in key names and stats: `log`, `counter`, `fixed`, `bucket`, `gcra`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::SlidingLog { .. } => "log",
            Kind::SlidingCounter { .. } => "counter",
            Kind::FixedWindow { .. } => "fixed",
            Kind::TokenBucket { .. } => "bucket",
            Kind::Gcra { .. } => "gcra",
        }
    }

    /// Check the parameters: every value the script computes must be an exact integer in a
    /// Lua number, and every TTL at least a millisecond.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config(format!("limiter {}: {what}", self.name())));
        let (limit, span) = match self.kind {
            Kind::SlidingLog { limit, window_us }
            | Kind::FixedWindow { limit, window_us }
            | Kind::SlidingCounter { limit, window_us } => (limit, window_us),
            Kind::TokenBucket {
                capacity,
                refill,
                per_us,
            } => {
                if refill == 0 {
                    return bad("refill must be at least 1 (a bucket that never refills never forgets its key)");
                }
                if u128::from(refill) * u128::from(per_us) == 0 {
                    return bad("per must be positive");
                }
                (capacity, per_us)
            }
            Kind::Gcra { burst, interval_us } => {
                if interval_us == 0 {
                    return bad("rate must be at least 1 and period / rate at least 1 µs");
                }
                (burst.saturating_add(1), interval_us)
            }
        };
        if limit == 0 {
            return bad("the limit must be at least 1");
        }
        if span < 1_000 && !matches!(self.kind, Kind::Gcra { .. }) {
            return bad("the window must be at least 1 ms");
        }
        // Times are microseconds since the epoch (about 2^51 today); the largest product
        // each script forms must stay below 2^53.
        let largest = u128::from(limit) * u128::from(span) * 2;
        if largest >= EXACT_LIMIT / 4 {
            return bad("limit × window (or capacity × per, or limit × interval) is too large to keep exact; use a smaller unit");
        }
        Ok(())
    }

    /// The script's `ARGV[2..]` (after the cost), before the time override.
    pub(crate) fn params(&self) -> Vec<u64> {
        match self.kind {
            Kind::SlidingLog { limit, window_us }
            | Kind::SlidingCounter { limit, window_us }
            | Kind::FixedWindow { limit, window_us } => vec![limit, window_us],
            Kind::TokenBucket {
                capacity,
                refill,
                per_us,
            } => vec![capacity, refill, per_us],
            Kind::Gcra { burst, interval_us } => vec![burst, interval_us],
        }
    }

    /// The Lua source of this algorithm's script.
    pub(crate) fn source(&self) -> &'static str {
        match self.kind {
            Kind::SlidingLog { .. } => {
                concat!(include_str!("prelude.lua"), include_str!("sliding_log.lua"))
            }
            Kind::SlidingCounter { .. } => concat!(
                include_str!("prelude.lua"),
                include_str!("sliding_counter.lua")
            ),
            Kind::FixedWindow { .. } => concat!(
                include_str!("prelude.lua"),
                include_str!("fixed_window.lua")
            ),
            Kind::TokenBucket { .. } => concat!(
                include_str!("prelude.lua"),
                include_str!("token_bucket.lua")
            ),
            Kind::Gcra { .. } => concat!(include_str!("prelude.lua"), include_str!("gcra.lua")),
        }
    }

    /// True when the script takes a per-request nonce (the log's unique members).
    pub(crate) fn needs_nonce(&self) -> bool {
        matches!(self.kind, Kind::SlidingLog { .. })
    }
}
