//! Decisions by outcome, per limiter.

use std::sync::atomic::{AtomicU64, Ordering};

use super::decision::Outcome;

/// A snapshot of one limiter's counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimiterStats {
    /// Decisions [`Outcome::Allowed`].
    pub allowed: u64,
    /// Decisions [`Outcome::Limited`] (including those answered by the memo).
    pub limited: u64,
    /// Decisions [`Outcome::CostExceedsLimit`].
    pub cost_exceeds_limit: u64,
    /// Of the refusals above, how many shadow mode let through.
    pub shadowed: u64,
    /// Limited decisions answered from the local memo, without a round trip.
    pub memo_hits: u64,
    /// Checks that failed with an error (no decision).
    pub errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    allowed: AtomicU64,
    limited: AtomicU64,
    cost_exceeds_limit: AtomicU64,
    shadowed: AtomicU64,
    memo_hits: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    pub(crate) fn outcome(&self, outcome: Outcome, shadowed: bool) {
        let c = match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Limited => &self.limited,
            Outcome::CostExceedsLimit => &self.cost_exceeds_limit,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if shadowed {
            self.shadowed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn memo_hit(&self) {
        self.memo_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LimiterStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LimiterStats {
            allowed: r(&self.allowed),
            limited: r(&self.limited),
            cost_exceeds_limit: r(&self.cost_exceeds_limit),
            shadowed: r(&self.shadowed),
            memo_hits: r(&self.memo_hits),
            errors: r(&self.errors),
        }
    }
}
