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

impl LimiterStats {
    /// The counters in the Prometheus text exposition format, labelled with the limiter's
    /// name and algorithm: `valkit_limit_decisions_total{outcome=...}` (allowed, limited,
    /// cost_exceeds_limit), `valkit_limit_shadowed_total`, `valkit_limit_memo_hits_total`,
    /// `valkit_limit_errors_total`.
    ///
    /// ```
    /// let text = valkit::limit::LimiterStats::default().prometheus_text("api", "gcra");
    /// assert!(text.contains(
    ///     "valkit_limit_decisions_total{limiter=\"api\",algorithm=\"gcra\",outcome=\"limited\"} 0"
    /// ));
    /// ```
    pub fn prometheus_text(&self, limiter: &str, algorithm: &str) -> String {
        use std::fmt::Write;
        let labels = format!(
            "limiter=\"{}\",algorithm=\"{}\"",
            escape_label(limiter),
            escape_label(algorithm)
        );
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP valkit_limit_decisions_total Rate-limiter decisions by outcome."
        );
        let _ = writeln!(out, "# TYPE valkit_limit_decisions_total counter");
        for (outcome, n) in [
            ("allowed", self.allowed),
            ("limited", self.limited),
            ("cost_exceeds_limit", self.cost_exceeds_limit),
        ] {
            let _ = writeln!(
                out,
                "valkit_limit_decisions_total{{{labels},outcome=\"{outcome}\"}} {n}"
            );
        }
        for (name, help, n) in [
            (
                "shadowed_total",
                "Refusals let through by shadow mode.",
                self.shadowed,
            ),
            (
                "memo_hits_total",
                "Limited decisions answered by the local memo without a round trip.",
                self.memo_hits,
            ),
            (
                "errors_total",
                "Checks that failed with an error.",
                self.errors,
            ),
        ] {
            let _ = writeln!(out, "# HELP valkit_limit_{name} {help}");
            let _ = writeln!(out, "# TYPE valkit_limit_{name} counter");
            let _ = writeln!(out, "valkit_limit_{name}{{{labels}}} {n}");
        }
        out
    }
}

/// Escape a Prometheus label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
