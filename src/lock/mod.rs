//! Distributed locks: RAII guards, blocking acquire with fast hand-off, a watchdog that
//! tells the holder when the lease is lost, fencing tokens, and [`Redlock`].
//!
//! Written once against [`Execute`], so the same code runs on a
//! [`Connection`](crate::Connection), a [`Pool`](crate::Pool) or a
//! [`Client`](crate::Client); the keys of one lock share a hash tag, so it runs unchanged
//! on Valkey Cluster.
//!
//! ```no_run
//! use std::time::Duration;
//! use valkit::lock::{Locks, Release};
//! use valkit::Pool;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::from_url("redis://127.0.0.1:6379", Default::default())?;
//! let locks = Locks::new(pool);
//! // Wait up to 5 s for the lock; hold it for at most 10 s.
//! let guard = locks.acquire_within("invoice:42", Duration::from_secs(10), Duration::from_secs(5))?;
//! let fence = guard.fencing_token(); // hand it to the resource you write to
//! // ... critical section: check guard.time_left() before each step ...
//! assert_eq!(guard.release()?, Release::Released);
//! # let _ = fence; Ok(()) }
//! ```
//!
//! # How it works
//! * **Acquire** is one `EVALSHA` of `acquire.lua`: `SET lock token NX PX ttl` plus the
//!   fencing token, or, when the lock is held, the holder's remaining TTL (and a mark that
//!   someone waits).
//! * **Release** is compare-and-delete, one command: `DELIFEQ` on servers that have it
//!   (Valkey 9+), the `release.lua` script otherwise, or when the holder knows someone
//!   waits (the script also pushes one item on the lock's wake-up list).
//! * **Waiting** is not polling: a waiter `BLPOP`s the wake-up list, so a release wakes the
//!   longest waiting one within a round trip. The `BLPOP` times out after a jittered slice
//!   (at most [`LocksBuilder::max_poll`], at most the holder's remaining TTL): the safety
//!   net for a wake-up that went missing. While it waits, a waiter holds one connection
//!   of the executor: give blocking acquires a pool or a client, not a connection shared
//!   with other work.
//! * **Extend / reacquire** are compare-and-set of the TTL: `SET … IFEQ … PX` where the
//!   server has it (Valkey 8.1+; used from 9 on, detected together with `DELIFEQ`), the
//!   `extend.lua` script otherwise. Neither recreates an expired key.
//! * Whether the native commands exist is asked once per [`Locks`]
//!   (`COMMAND INFO DELIFEQ`); [`NativeCommands::Never`] forces the scripts.
//!
//! # Fencing tokens and failover
//! Every acquisition returns a token that strictly increases per lock name: `max(last + 1,
//! server time in µs)`, computed in the acquire script. The clock floor is what keeps it
//! monotonic when the last increments are lost: a failover (asynchronous replication), a
//! restart without persistence, the fence key's expiry. **Guaranteed:** on one server,
//! tokens strictly increase. **Across a failover:** tokens issued by the new primary are
//! above every token the old one issued, provided the new primary's clock is not behind
//! the old primary's by more than the time between the old primary's last acquisition and
//! the new one's first (a failover takes seconds; NTP keeps servers within milliseconds).
//! **Not guaranteed:** that only one client holds the lock across a failover (the lock
//! key itself may be lost); the fencing token is what lets the resource reject the stale
//! holder. Nor is anything guaranteed when a server's clock is stepped backwards by more
//! than that margin.
//!
//! # Leases and the watchdog
//! [`LockGuard::deadline`] is the last moment the holder may act: when the acquiring
//! request was sent, plus the TTL, minus 1 % + 2 ms of drift. [`LockGuard::watchdog`]
//! renews the lease every TTL/3 and marks it lost (flag, [`LockGuard::wait_lost`], or a
//! callback) when the server says it is not ours, or when no renewal is confirmed by the
//! deadline: a holder cut off from the server hears it before its TTL ends.

mod backend;
mod error;
mod guard;
mod keys;
mod lease;
mod redlock;
mod watchdog;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::cmd::Execute;

pub use backend::NativeCommands;
pub use error::{LockError, LockErrorKind};
pub use guard::LockGuard;
pub use lease::{leases_lost_total, metrics_text, LeaseLost};
pub use redlock::{Redlock, RedlockBuilder, RedlockGuard};

use backend::{Attempt, Backend};
use guard::Held;
use keys::LockKeys;

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// The lock held our token and was deleted.
    Released,
    /// The lock had already expired: nobody held it.
    Expired,
    /// Someone else holds the lock now (ours expired and was taken); it was left alone.
    TakenByOther,
}

/// Longest lease accepted: about 11.5 days (leases are meant to be short).
const MAX_TTL: Duration = Duration::from_secs(1_000_000);

/// Locks over an executor. Cheap to clone (one `Arc`); all clones share the executor and
/// the detected server capabilities.
pub struct Locks<E> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    backend: Arc<Backend<E>>,
    prefix: String,
    default_wait: Duration,
    max_poll: Duration,
}

impl<E> Clone for Locks<E> {
    fn clone(&self) -> Self {
        Locks {
            inner: self.inner.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Locks<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locks")
            .field("prefix", &self.inner.prefix)
            .field("default_wait", &self.inner.default_wait)
            .field("max_poll", &self.inner.max_poll)
            .finish()
    }
}

/// Settings for [`Locks`]; made by [`Locks::builder`].
#[derive(Debug)]
pub struct LocksBuilder<E> {
    ex: E,
    prefix: String,
    native: NativeCommands,
    default_wait: Duration,
    max_poll: Duration,
}

impl<E: Execute> LocksBuilder<E> {
    /// Key prefix (default `lock:`); a lock named `n` lives at `<prefix>{n}`. A prefix
    /// with its own `{hash tag}` puts all locks in that tag's cluster slot. A prefix that
    /// opens an empty tag (`{}`) would split a lock's keys over slots: acquiring then fails
    /// with [`LockErrorKind::InvalidArgument`].
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Native commands or Lua (default [`NativeCommands::Auto`]).
    pub fn native_commands(mut self, native: NativeCommands) -> Self {
        self.native = native;
        self
    }

    /// How long [`Locks::acquire`] waits (default 10 s).
    pub fn default_wait(mut self, wait: Duration) -> Self {
        self.default_wait = wait;
        self
    }

    /// The longest a waiter blocks before looking at the lock again even without a
    /// wake-up (default 100 ms, jittered down to half of it). The safety net only: a
    /// release wakes a waiter at once.
    pub fn max_poll(mut self, poll: Duration) -> Self {
        self.max_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Build it. Nothing is sent until the first lock operation.
    pub fn build(self) -> Locks<E> {
        Locks {
            inner: Arc::new(Inner {
                backend: Arc::new(Backend::new(self.ex, self.native)),
                prefix: self.prefix,
                default_wait: self.default_wait,
                max_poll: self.max_poll,
            }),
        }
    }
}

fn check_ttl(ttl: Duration) -> Result<(), LockError> {
    if ttl < Duration::from_millis(1) || ttl > MAX_TTL {
        return Err(LockError::invalid(format!(
            "lock TTL {ttl:?} is outside 1 ms ..= {MAX_TTL:?}"
        )));
    }
    Ok(())
}

/// A fresh 128-bit random token, as 32 hex digits.
pub(crate) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl<E: Execute> Locks<E> {
    /// Locks with default settings (prefix `lock:`, native commands when the server has
    /// them, 10 s default wait).
    pub fn new(ex: E) -> Locks<E> {
        Locks::builder(ex).build()
    }

    /// Start configuring locks over `ex`.
    pub fn builder(ex: E) -> LocksBuilder<E> {
        LocksBuilder {
            ex,
            prefix: "lock:".to_owned(),
            native: NativeCommands::Auto,
            default_wait: Duration::from_secs(10),
            max_poll: Duration::from_millis(100),
        }
    }

    /// The executor commands go through.
    pub fn executor(&self) -> &E {
        &self.inner.backend.ex
    }

    /// Whether the native commands are in use (asks the server on first call).
    ///
    /// # Errors
    /// [`Unavailable`](LockErrorKind::Unavailable) when the server cannot be asked.
    pub fn uses_native_commands(&self) -> Result<bool, LockError> {
        Ok(self.inner.backend.native()?)
    }

    /// Take the lock `name` for `ttl` if it is free; `None` when someone holds it. One
    /// round trip.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use valkit::{lock::Locks, Connection};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let locks = Locks::new(Connection::open_url("redis://127.0.0.1:6379")?);
    /// if let Some(guard) = locks.try_acquire("nightly-report", Duration::from_secs(60))? {
    ///     // only one process gets here
    /// #   drop(guard);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`InvalidArgument`](LockErrorKind::InvalidArgument) for an empty name or a TTL
    /// outside 1 ms ..= 11.5 days; [`Unavailable`](LockErrorKind::Unavailable);
    /// [`Server`](LockErrorKind::Server).
    pub fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard<E>>, LockError> {
        check_ttl(ttl)?;
        let keys = LockKeys::new(&self.inner.prefix, name)?;
        let token = new_token();
        let sent = Instant::now();
        match self
            .inner
            .backend
            .attempt(&keys, &token, ttl, Duration::ZERO)?
        {
            Attempt::Acquired { fence, waiters } => {
                Ok(Some(self.guard(keys, token, ttl, fence, waiters, sent)))
            }
            Attempt::Held { .. } => Ok(None),
        }
    }

    /// Take the lock `name` for `ttl`, waiting up to the default wait (10 s unless set
    /// with [`LocksBuilder::default_wait`]).
    ///
    /// # Errors
    /// [`NotAcquired`](LockErrorKind::NotAcquired) when the wait ends; otherwise as
    /// [`try_acquire`](Locks::try_acquire).
    pub fn acquire(&self, name: &str, ttl: Duration) -> Result<LockGuard<E>, LockError> {
        self.acquire_within(name, ttl, self.inner.default_wait)
    }

    /// Take the lock `name` for `ttl`, waiting up to `wait`. A release by the holder wakes
    /// the longest waiting caller within about one round trip; see the module docs.
    ///
    /// # Errors
    /// [`NotAcquired`](LockErrorKind::NotAcquired) when `wait` ends; otherwise as
    /// [`try_acquire`](Locks::try_acquire).
    pub fn acquire_within(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<LockGuard<E>, LockError> {
        check_ttl(ttl)?;
        let keys = LockKeys::new(&self.inner.prefix, name)?;
        let token = new_token();
        let backend = &self.inner.backend;
        let max_poll = self.inner.max_poll;
        let until = Instant::now() + wait;
        // The waiters mark outlives one wait slice comfortably.
        let mark = if wait.is_zero() {
            Duration::ZERO
        } else {
            max_poll * 2 + Duration::from_secs(1)
        };
        loop {
            let sent = Instant::now();
            let held = match backend.attempt(&keys, &token, ttl, mark)? {
                Attempt::Acquired { fence, waiters } => {
                    return Ok(self.guard(keys, token, ttl, fence, waiters, sent));
                }
                Attempt::Held { pttl } => pttl,
            };
            let now = Instant::now();
            if now >= until {
                return Err(LockError::new(
                    LockErrorKind::NotAcquired,
                    format!("{} still held after waiting {wait:?}", keys.lock),
                ));
            }
            // Jittered safety-net slice, never past the holder's TTL or our wait.
            let mut slice = max_poll.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
            if let Some(p) = held {
                slice = slice.min(p + Duration::from_millis(1));
            }
            slice = slice.min(until - now);
            backend.wait_wake(&keys.wake, slice)?;
        }
    }

    fn guard(
        &self,
        keys: LockKeys,
        token: String,
        ttl: Duration,
        fence: u64,
        waiters: bool,
        sent: Instant,
    ) -> LockGuard<E> {
        LockGuard::new(Held {
            backend: self.inner.backend.clone(),
            keys,
            token,
            ttl,
            fence,
            waiters,
            wake_ttl: self.inner.max_poll * 2,
            sent,
        })
    }
}
