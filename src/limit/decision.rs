//! [`Decision`]: what a limiter answered, and the HTTP headers that carry it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::resp::Value;

/// The verdict of a limiter, before shadow mode is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Admitted; its cost was counted.
    Allowed,
    /// Over the limit now; [`Decision::retry_after`] says when the same cost would pass.
    Limited,
    /// The request costs more than the limit: it can never be admitted, retrying is futile
    /// ([`Decision::retry_after`] is `None`). Nothing was counted.
    CostExceedsLimit,
}

/// A limiter's answer: admitted or not, and enough to fill the `RateLimit-Limit`,
/// `RateLimit-Remaining`, `RateLimit-Reset` and `Retry-After` headers.
///
/// ```
/// # use valkit::limit::Decision;
/// fn respond(d: &Decision) -> u16 {
///     if d.allowed { 200 } else { 429 }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Whether to serve the request. Equal to `outcome == Allowed`, except in shadow mode,
    /// where it is always true.
    pub allowed: bool,
    /// What the limiter decided (in shadow mode: what it would have enforced).
    pub outcome: Outcome,
    /// The most units a window (or the bucket, or GCRA's burst + 1) holds.
    pub limit: u64,
    /// Units that could still be spent right now, after this request.
    pub remaining: u64,
    /// Time until the limiter is back to its full quota, if nothing else arrives.
    pub reset_after: Duration,
    /// For [`Outcome::Limited`]: time until a request of the same cost would be admitted
    /// (if nothing else arrives). `None` when allowed, or when the cost exceeds the limit.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// Parse a script's reply `{outcome, limit, remaining, reset_after_us, retry_after_us}`.
    pub(crate) fn from_reply(v: Value) -> Result<Decision> {
        let items: Vec<i64> = crate::cmd::FromValue::from_value(v)?;
        let [outcome, limit, remaining, reset_us, retry_us] = items[..] else {
            return Err(Error::protocol(format!(
                "limiter script replied {} integers, expected 5",
                items.len()
            )));
        };
        let outcome = match outcome {
            0 => Outcome::Allowed,
            1 => Outcome::Limited,
            2 => Outcome::CostExceedsLimit,
            other => {
                return Err(Error::protocol(format!(
                    "limiter script replied outcome {other}"
                )))
            }
        };
        let us = |n: i64| Duration::from_micros(n.max(0) as u64);
        Ok(Decision {
            allowed: outcome == Outcome::Allowed,
            outcome,
            limit: limit.max(0) as u64,
            remaining: remaining.max(0) as u64,
            reset_after: us(reset_us),
            retry_after: (outcome == Outcome::Limited).then(|| us(retry_us)),
        })
    }

    /// The headers for an HTTP response, seconds rounded up:
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, and `Retry-After` when
    /// limited (absent when allowed, and when the cost can never fit).
    ///
    /// ```
    /// # use valkit::limit::Decision;
    /// # fn show(d: &Decision) {
    /// for (name, value) in d.headers() {
    ///     println!("{name}: {value}");
    /// }
    /// # }
    /// ```
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", ceil_secs(self.reset_after).to_string()),
        ];
        if let Some(retry) = self.retry_after {
            h.push(("Retry-After", ceil_secs(retry).to_string()));
        }
        h
    }

    /// The answer in the shape of redis-cell's `CL.THROTTLE`: `[limited (0/1), limit,
    /// remaining, retry after (s, -1 when allowed or never), reset after (s)]`, seconds
    /// rounded up.
    pub fn throttle_reply(&self) -> [i64; 5] {
        [
            i64::from(self.outcome != Outcome::Allowed),
            self.limit as i64,
            self.remaining as i64,
            self.retry_after.map_or(-1, |d| ceil_secs(d) as i64),
            ceil_secs(self.reset_after) as i64,
        ]
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
