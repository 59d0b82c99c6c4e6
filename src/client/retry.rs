//! Retry with backoff, and the rule for what may be retried.
//!
//! # The retry rule
//! 1. A command is resent when it **cannot have been applied**: the connection could not be
//!    made ([`ErrorKind::Connect`]), the pooled connection was found broken before the write
//!    ([`ErrorKind::Broken`]), or the server answered that it did not run it (`LOADING`,
//!    `TRYAGAIN`, `BUSY`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, `MOVED`, `ASK`).
//! 2. A command whose request **may already have reached the server** (an I/O error or a
//!    timeout after the write: [`Error::is_ambiguous`]) is resent only when it is
//!    idempotent (reads, and writes that give the same result when repeated such as `SET`
//!    without `GET`, `DEL`, `HSET`) or when the caller opted in with
//!    [`RetryPolicy::retry_ambiguous`]. An `INCR` whose reply was lost is never sent twice
//!    by default.
//! 3. Everything else (`WRONGTYPE`, `NOPERM`, syntax errors, auth failures, an open circuit,
//!    an exhausted pool) is returned at once.
//!
//! Every retry loop is bounded by [`RetryPolicy::attempts`].

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Backoff {
    /// The same delay every time.
    Constant(Duration),
    /// `base * 2^(attempt-1)`, capped.
    Exponential {
        /// First delay.
        base: Duration,
        /// Largest delay.
        cap: Duration,
    },
    /// "Full jitter": a uniform random delay in `[0, min(cap, base * 2^(attempt-1))]`.
    ExponentialFullJitter {
        /// First upper bound.
        base: Duration,
        /// Largest upper bound.
        cap: Duration,
    },
    /// "Decorrelated jitter": uniform in `[base, min(cap, previous * 3)]`.
    DecorrelatedJitter {
        /// Smallest delay.
        base: Duration,
        /// Largest delay.
        cap: Duration,
    },
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, given the previous delay (`attempt` starts
    /// at 1 for the first retry). `random` is a uniform sample in `[0, 1)`.
    pub fn delay(&self, attempt: u32, previous: Duration, random: f64) -> Duration {
        let random = random.clamp(0.0, 1.0);
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Exponential { base, cap } => exp(base, cap, attempt),
            Backoff::ExponentialFullJitter { base, cap } => exp(base, cap, attempt).mul_f64(random),
            Backoff::DecorrelatedJitter { base, cap } => {
                let prev = previous.max(base);
                let high = prev.saturating_mul(3).min(cap).max(base);
                base + (high - base).mul_f64(random)
            }
        }
    }
}

fn exp(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let shift = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << shift).min(cap)
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts, the first one included (1 = no retry). Default 3.
    pub attempts: u32,
    /// Delay between attempts. Default: exponential with full jitter, base 10 ms, cap 1 s.
    pub backoff: Backoff,
    /// Also resend non-idempotent commands after an ambiguous failure (I/O error or timeout
    /// after the write). Default false: they may be applied twice.
    pub retry_ambiguous: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Backoff::ExponentialFullJitter {
                base: Duration::from_millis(10),
                cap: Duration::from_secs(1),
            },
            retry_ambiguous: false,
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// `attempts` attempts in total with the given backoff.
    pub fn new(attempts: u32, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            attempts: attempts.max(1),
            backoff,
            retry_ambiguous: false,
        }
    }

    /// Opt in to resending non-idempotent commands after ambiguous failures.
    pub fn retry_ambiguous(mut self, on: bool) -> RetryPolicy {
        self.retry_ambiguous = on;
        self
    }

    /// Whether a command that failed with `err` may be sent again (attempts aside).
    pub fn may_retry(&self, err: &Error, idempotent: bool) -> bool {
        if err.is_retryable() {
            return true;
        }
        err.is_ambiguous() && (idempotent || self.retry_ambiguous)
    }
}

/// Whether an error counts as a failure for the circuit breaker: the endpoint is unusable
/// ([`Error::is_unavailable`], as opposed to a caller mistake such as WRONGTYPE), except
/// `OOM` (a full server still serves reads) and the breaker's own `CircuitOpen`. Rejected
/// credentials and a failed TLS setup count too (they are [`ErrorClass::Internal`]
/// otherwise), so that a wrong password stops a hot reconnect loop.
///
/// [`ErrorClass::Internal`]: crate::ErrorClass::Internal
pub(crate) fn is_availability_failure(err: &Error) -> bool {
    use crate::error::ServerErrorKind as S;
    match err.kind() {
        ErrorKind::Auth | ErrorKind::Tls => true,
        ErrorKind::CircuitOpen | ErrorKind::Server(S::Oom) => false,
        _ => err.is_unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    #[test]
    fn exponential_doubles_and_caps() {
        let b = Backoff::Exponential {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        };
        let d: Vec<_> = (1..=6)
            .map(|a| b.delay(a, Duration::ZERO, 0.5).as_millis())
            .collect();
        assert_eq!(d, [10, 20, 40, 80, 100, 100]);
        assert_eq!(
            b.delay(1000, Duration::ZERO, 0.5),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let full = Backoff::ExponentialFullJitter {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        };
        let dec = Backoff::DecorrelatedJitter {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        };
        let mut prev = Duration::ZERO;
        for i in 0..1000u32 {
            let r = (i as f64 * 0.618_033_988_7) % 1.0;
            let a = i % 8 + 1;
            let f = full.delay(a, prev, r);
            assert!(f <= Duration::from_millis(100));
            assert!(f <= Duration::from_millis(10 << (a - 1)));
            let d = dec.delay(a, prev, r);
            assert!(
                d >= Duration::from_millis(10) && d <= Duration::from_millis(100),
                "{d:?}"
            );
            prev = d;
        }
        assert_eq!(
            Backoff::Constant(Duration::from_millis(7)).delay(5, prev, 0.9),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn the_retry_rule() {
        let p = RetryPolicy::default();
        let connect = Error::new(ErrorKind::Connect, "refused");
        let io = Error::new(ErrorKind::Io, "reset");
        let timeout = Error::new(ErrorKind::Timeout, "slow");
        let loading = Error::from(ServerError::new("LOADING wait"));
        let wrongtype = Error::from(ServerError::new("WRONGTYPE no"));
        assert!(p.may_retry(&connect, false));
        assert!(p.may_retry(&loading, false));
        assert!(
            !p.may_retry(&io, false),
            "non-idempotent after the write: never twice"
        );
        assert!(!p.may_retry(&timeout, false));
        assert!(p.may_retry(&io, true) && p.may_retry(&timeout, true));
        assert!(!p.may_retry(&wrongtype, true));
        assert!(p.clone().retry_ambiguous(true).may_retry(&io, false));
        assert!(!p.may_retry(&Error::new(ErrorKind::Auth, "no"), true));
        assert!(!p.may_retry(&Error::new(ErrorKind::CircuitOpen, "open"), true));
    }

    #[test]
    fn breaker_failures_are_availability_problems_only() {
        assert!(is_availability_failure(&Error::new(
            ErrorKind::Connect,
            "x"
        )));
        assert!(is_availability_failure(&Error::from(ServerError::new(
            "LOADING x"
        ))));
        assert!(!is_availability_failure(&Error::from(ServerError::new(
            "WRONGTYPE x"
        ))));
        assert!(!is_availability_failure(&Error::from(ServerError::new(
            "NOPERM x"
        ))));
        assert!(is_availability_failure(&Error::new(ErrorKind::Auth, "x")));
        let full = Error::from(ServerError::new("ERR max number of clients reached"));
        assert!(
            is_availability_failure(&full),
            "the breaker counts maxclients"
        );
        assert!(
            RetryPolicy::default().may_retry(&full, false),
            "nothing ran: retry"
        );
        assert!(!is_availability_failure(&Error::new(
            ErrorKind::Unsupported,
            "x"
        )));
        assert!(!is_availability_failure(&Error::new(
            ErrorKind::Conversion,
            "x"
        )));
    }

    /// Issue 9, item 6: a reply over a configured limit (or a command refused before
    /// sending) says nothing about the server's health: the breaker does not count it and
    /// retry does not resend it. (Before, limits were protocol errors, which count.)
    #[test]
    fn limits_are_not_availability_failures() {
        use crate::error::Limit;
        let limits = crate::resp::Limits {
            max_depth: 1,
            ..Default::default()
        };
        let decoded = crate::resp::decode(b"*2\r\n*1\r\n:1\r\n", &limits).unwrap_err();
        assert_eq!(decoded.kind(), ErrorKind::Limit);
        assert_eq!(decoded.limit(), Some(Limit::Depth));
        assert!(!is_availability_failure(&decoded));
        let refused = crate::cmd::cmd("SET")
            .arg("k")
            .arg("toolong")
            .check_sendable(3)
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidCommand);
        assert!(!is_availability_failure(&refused));
        let p = RetryPolicy::default();
        assert!(!p.may_retry(&decoded, true) && !p.may_retry(&refused, true));
        // Malformed bytes still count.
        let garbage = crate::resp::decode(b"?\r\n", &crate::resp::Limits::default()).unwrap_err();
        assert!(is_availability_failure(&garbage));
    }
}
