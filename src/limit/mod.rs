//! Rate limiters: sliding-window log, sliding-window counter, fixed window, token bucket
//! and GCRA, each one Lua script and one round trip per decision, timed by the server's
//! clock (`TIME` inside the script), so hosts with skewed clocks agree.
//!
//! ```no_run
//! use std::time::Duration;
//! use valkit::limit::{Algorithm, Limiter};
//! use valkit::Connection;
//! # fn main() -> valkit::Result<()> {
//! let conn = Connection::open_url("redis://127.0.0.1:6379")?;
//! // 100 requests per user per minute, refilled continuously.
//! let per_user = Limiter::new("api", Algorithm::token_bucket(100, 100, Duration::from_secs(60)))?;
//! let d = per_user.check(&conn, "user-42")?;
//! if !d.allowed {
//!     // 429 Too Many Requests, with Retry-After
//! }
//! for (name, value) in d.headers() {
//!     println!("{name}: {value}");
//! }
//! # Ok(()) }
//! ```
//!
//! Every limiter takes a cost (units per request; a cost above the limit is refused outright
//! with [`Outcome::CostExceedsLimit`]) and answers one [`Decision`]. Each decision touches one
//! key, `name:{id}:algorithm` (the id is the hash tag, so a cluster spreads ids over slots),
//! and every key carries a TTL: an idle limiter leaves nothing behind. Numbers cross the Lua
//! boundary as decimal integer strings (microseconds, scaled tokens), never as fractional
//! Lua numbers. Which algorithm to pick: `docs/patterns.md`, "Rate limiters".

mod algorithm;
mod clock;
mod decision;
mod memo;
mod stats;

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cmd::Execute;
use crate::error::{Error, Result};
use crate::script::Script;

pub use algorithm::Algorithm;
pub use clock::{Clock, MonotonicClock};
pub use decision::{Decision, Outcome};
pub use stats::LimiterStats;

use memo::Memo;
use stats::Counters;

/// A rate limiter: one algorithm under one name, over any [`Execute`] (a connection, a pool,
/// a client). Cheap to clone (one `Arc`); share one per limit across threads.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    algorithm: Algorithm,
    script: Script,
    shadow: bool,
    memo: Option<Memo>,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

/// Options for a [`Limiter`]; from [`Limiter::builder`].
#[derive(Debug)]
#[must_use]
pub struct LimiterBuilder {
    name: String,
    algorithm: Algorithm,
    shadow: bool,
    memo: usize,
    clock: Option<Arc<dyn Clock>>,
}

impl LimiterBuilder {
    /// Shadow mode: decide and count as usual, but never refuse ([`Decision::allowed`] is
    /// always true; [`Decision::outcome`] and [`LimiterStats::shadowed`] tell what enforcing
    /// would have done). For trying a limit on live traffic. Default: off.
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
        self
    }

    /// Remember up to `capacity` ids found over the limit, and answer them locally until
    /// their retry-after (no round trip). Default: 0 (off).
    ///
    /// The memo assumes only limiters change the keys: deleting a key by hand (to lift a
    /// limit) is seen by this process only after the remembered retry-after.
    pub fn memo(mut self, capacity: usize) -> Self {
        self.memo = capacity;
        self
    }

    /// The clock the memo measures retry-after on. Default: [`MonotonicClock`]. Decisions
    /// never use it: they come from the server's clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Build it.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an empty name, a zero limit, rate
    /// or refill, a window under 1 ms, or parameters too large to keep exact in the script.
    pub fn build(self) -> Result<Limiter> {
        if self.name.is_empty() {
            return Err(Error::config("limiter name must not be empty"));
        }
        self.algorithm.validate()?;
        Ok(Limiter {
            inner: Arc::new(Inner {
                script: Script::new(self.algorithm.source()),
                name: self.name,
                algorithm: self.algorithm,
                shadow: self.shadow,
                memo: (self.memo > 0).then(|| Memo::new(self.memo)),
                clock: self
                    .clock
                    .unwrap_or_else(|| Arc::new(MonotonicClock::new())),
                counters: Counters::default(),
            }),
        })
    }
}

impl Limiter {
    /// A limiter named `name` (the key prefix) running `algorithm`, with default options.
    ///
    /// # Errors
    /// As [`LimiterBuilder::build`].
    pub fn new(name: &str, algorithm: Algorithm) -> Result<Limiter> {
        Limiter::builder(name, algorithm).build()
    }

    /// Start building a limiter with options (shadow mode, memo, clock).
    pub fn builder(name: &str, algorithm: Algorithm) -> LimiterBuilder {
        LimiterBuilder {
            name: name.to_owned(),
            algorithm,
            shadow: false,
            memo: 0,
            clock: None,
        }
    }

    /// Decide one request (cost 1) for `id` (a user, an API key, a client and endpoint).
    ///
    /// # Errors
    /// Connection and server errors; the request was not counted unless the error is
    /// ambiguous (an I/O error after the script was sent).
    pub fn check<E: Execute + ?Sized>(&self, ex: &E, id: &str) -> Result<Decision> {
        self.decide(ex, id, 1, None)
    }

    /// Decide a request costing `cost` units. Cost 0 reports the state without counting.
    /// A cost above [`Algorithm::limit`] is refused with [`Outcome::CostExceedsLimit`].
    ///
    /// # Errors
    /// As [`Limiter::check`].
    pub fn check_n<E: Execute + ?Sized>(&self, ex: &E, id: &str, cost: u64) -> Result<Decision> {
        self.decide(ex, id, cost, None)
    }

    /// Testing hook: decide as if the server's clock read `at` (the script uses it instead
    /// of `TIME`), to replay scripted request times. Key TTLs are still real time, relative
    /// to the scripted one. Not for production use: processes must share the server's clock.
    ///
    /// # Errors
    /// As [`Limiter::check`]; [`ErrorKind::Config`](crate::ErrorKind::Config) for a time
    /// before the Unix epoch.
    pub fn check_at<E: Execute + ?Sized>(
        &self,
        ex: &E,
        id: &str,
        cost: u64,
        at: SystemTime,
    ) -> Result<Decision> {
        let us = at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::config("check_at: a time before the Unix epoch"))?
            .as_micros();
        self.decide(ex, id, cost, Some(us as u64))
    }

    fn decide<E: Execute + ?Sized>(
        &self,
        ex: &E,
        id: &str,
        cost: u64,
        at_us: Option<u64>,
    ) -> Result<Decision> {
        let inner = &*self.inner;
        if let Some(memo) = &inner.memo {
            if let Some(d) = memo.lookup(id, cost, inner.clock.now()) {
                inner.counters.memo_hit();
                return Ok(self.finish(d));
            }
        }
        let mut call = inner.script.key(self.key(id)).arg(cost);
        for p in inner.algorithm.params() {
            call = call.arg(p);
        }
        if inner.algorithm.needs_nonce() {
            call = call.arg(format!("{:016x}", rand::random::<u64>()));
        }
        call = call.arg(at_us.map(|t| t.to_string()).unwrap_or_default());
        let d = match call.invoke(ex).and_then(Decision::from_reply) {
            Ok(d) => d,
            Err(e) => {
                inner.counters.error();
                return Err(e);
            }
        };
        if let Some(memo) = &inner.memo {
            match d.outcome {
                decision::Outcome::Limited => memo.remember(id, cost, &d, inner.clock.now()),
                decision::Outcome::Allowed => memo.forget(id),
                _ => {}
            }
        }
        Ok(self.finish(d))
    }

    /// Count the decision and apply shadow mode.
    fn finish(&self, mut d: Decision) -> Decision {
        let shadowed = self.inner.shadow && !d.allowed;
        self.inner.counters.outcome(d.outcome, shadowed);
        if shadowed {
            d.allowed = true;
        }
        d
    }

    /// The key holding `id`'s state: `name:{id}:algorithm`.
    pub fn key(&self, id: &str) -> String {
        format!(
            "{}:{{{id}}}:{}",
            self.inner.name,
            self.inner.algorithm.name()
        )
    }

    /// The algorithm and its parameters.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// Decisions by outcome since this limiter was built.
    pub fn stats(&self) -> LimiterStats {
        self.inner.counters.snapshot()
    }

    /// The counters in Prometheus text format (see [`LimiterStats::prometheus_text`]).
    pub fn metrics_text(&self) -> String {
        self.stats()
            .prometheus_text(&self.inner.name, self.inner.algorithm.name())
    }

    /// A metrics source for [`Client::add_metrics_source`](crate::Client::add_metrics_source),
    /// holding the limiter weakly (it writes nothing once the last clone is dropped).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use valkit::limit::{Algorithm, Limiter};
    /// # fn main() -> valkit::Result<()> {
    /// let client = valkit::Client::builder().url("redis://127.0.0.1:6379").build()?;
    /// let limiter = Limiter::new("api", Algorithm::gcra(9, 10, Duration::from_secs(1)))?;
    /// client.add_metrics_source(limiter.metrics_source());
    /// # Ok(()) }
    /// ```
    pub fn metrics_source(&self) -> impl Fn(&mut String) + Send + Sync + 'static {
        let inner = Arc::downgrade(&self.inner);
        move |out: &mut String| {
            if let Some(inner) = inner.upgrade() {
                out.push_str(
                    &inner
                        .counters
                        .snapshot()
                        .prometheus_text(&inner.name, inner.algorithm.name()),
                );
            }
        }
    }

    /// Load the script on the server now (e.g. at start-up, to fail fast). Optional: the
    /// first decision loads it anyway.
    ///
    /// # Errors
    /// Connection and server errors.
    pub fn preload<E: Execute + ?Sized>(&self, ex: &E) -> Result<()> {
        self.inner.script.script_load(ex)
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.inner.name)
            .field("algorithm", &self.inner.algorithm)
            .field("shadow", &self.inner.shadow)
            .field("memo", &self.inner.memo.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests;
