//! The only client-side time a limiter uses: the over-limit memo's expiry, measured on an
//! injectable monotonic clock. Decisions themselves use the server's `TIME`.

use std::fmt;
use std::time::{Duration, Instant};

/// A monotonic clock: time since an arbitrary origin. Only durations between two readings
/// matter, so a clock offset from another process's (skewed) changes nothing.
///
/// Limiters read it only for the over-limit memo ([`LimiterBuilder::memo`]); inject your own
/// ([`LimiterBuilder::clock`]) to drive the memo in tests.
///
/// [`LimiterBuilder::memo`]: super::LimiterBuilder::memo
/// [`LimiterBuilder::clock`]: super::LimiterBuilder::clock
pub trait Clock: Send + Sync + fmt::Debug {
    /// The time now, since this clock's origin.
    fn now(&self) -> Duration;
}

/// The default [`Clock`]: `std::time::Instant`, from when the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock starting at zero now.
    pub fn new() -> MonotonicClock {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}
