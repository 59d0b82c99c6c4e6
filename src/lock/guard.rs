//! [`LockGuard`]: a held lock. Releases on drop; `release(self)` says how it ended.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::Backend;
use super::keys::LockKeys;
use super::lease::{deadline_after, Lease, LeaseLost};
use super::watchdog::{Renewal, Watchdog};
use super::{LockError, LockErrorKind, Release};
use crate::cmd::Execute;

/// A held lock, made by [`Locks::acquire`](super::Locks::acquire) and friends.
///
/// The token (128 random bits) lives only here: the guard is not `Clone`, so exactly one
/// owner can release or extend the lock. Dropping the guard stops its watchdog, then
/// releases the lock (best effort: a failure is logged at `debug`); use
/// [`release`](LockGuard::release) to see the outcome.
pub struct LockGuard<E: Execute> {
    backend: Arc<Backend<E>>,
    /// Boxed: keeps the guard small enough to move around cheaply.
    keys: Box<LockKeys>,
    token: Arc<str>,
    ttl: Duration,
    fence: u64,
    /// Someone waits (known at acquisition or learned since): release through the script
    /// that wakes them. Shared with the watchdog.
    waiters: Arc<AtomicBool>,
    wake_ttl: Duration,
    lease: Arc<Lease>,
    watchdog: Option<Watchdog>,
    done: bool,
}

/// What a guard is made of.
pub(crate) struct Held<E> {
    pub(crate) backend: Arc<Backend<E>>,
    pub(crate) keys: LockKeys,
    pub(crate) token: String,
    pub(crate) ttl: Duration,
    pub(crate) fence: u64,
    pub(crate) waiters: bool,
    pub(crate) wake_ttl: Duration,
    /// When the acquiring request was sent.
    pub(crate) sent: Instant,
}

impl<E: Execute> LockGuard<E> {
    pub(crate) fn new(h: Held<E>) -> LockGuard<E> {
        LockGuard {
            lease: Arc::new(Lease::new(deadline_after(h.sent, h.ttl))),
            backend: h.backend,
            keys: Box::new(h.keys),
            token: h.token.into(),
            ttl: h.ttl,
            fence: h.fence,
            waiters: Arc::new(AtomicBool::new(h.waiters)),
            wake_ttl: h.wake_ttl,
            watchdog: None,
            done: false,
        }
    }

    /// The fencing token of this acquisition: strictly greater than every token issued
    /// before for this lock name (see the module docs for the failover guarantee). Pass it
    /// to the protected resource, which rejects anything older than the newest it saw.
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// The server key holding the lock.
    pub fn key(&self) -> &str {
        &self.keys.lock
    }

    /// The lease this lock was taken with.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The last moment (monotonic clock) this process may act as the holder: when the
    /// acquiring (or last confirmed extending) request was sent, plus the lease, minus a
    /// drift allowance of 1 % + 2 ms. The server's key lives at least this long unless
    /// someone deletes it. A watchdog moves it forward with each renewal.
    pub fn deadline(&self) -> Instant {
        self.lease.deadline()
    }

    /// Time left before [`deadline`](LockGuard::deadline) (zero once passed).
    pub fn time_left(&self) -> Duration {
        self.deadline().saturating_duration_since(Instant::now())
    }

    /// Whether the lease is known to be lost: the watchdog was told so by the server, or
    /// the deadline passed. No round trip; see [`is_owned`](LockGuard::is_owned) to ask.
    pub fn lease_lost(&self) -> Option<LeaseLost> {
        self.lease.lost()
    }

    /// Block until the lease is lost (or its deadline passes), at most `timeout`.
    pub fn wait_lost(&self, timeout: Duration) -> Option<LeaseLost> {
        self.lease.wait_lost(timeout)
    }

    /// Ask the server whether the lock still holds our token (one `GET`).
    ///
    /// # Errors
    /// [`Unavailable`](LockErrorKind::Unavailable) or [`Server`](LockErrorKind::Server).
    pub fn is_owned(&self) -> Result<bool, LockError> {
        self.backend.owns(&self.keys.lock, &self.token)
    }

    /// The lease left on the server, or `None` when the lock is no longer ours.
    ///
    /// # Errors
    /// [`Unavailable`](LockErrorKind::Unavailable) or [`Server`](LockErrorKind::Server).
    pub fn remaining_ttl(&self) -> Result<Option<Duration>, LockError> {
        self.backend.remaining(&self.keys.lock, &self.token)
    }

    /// Add `by` to the lease, only while the lock holds our token (an expired lock is
    /// never resurrected). The new lease is what this process counts as left
    /// ([`time_left`](LockGuard::time_left) plus the drift allowance) plus `by`, so it
    /// never ends later than asked. One `SET … IFEQ … PX` (or the extend script). With a
    /// watchdog running, its next renewal sets the lease back to the TTL.
    ///
    /// # Errors
    /// [`LeaseLost`](LockErrorKind::LeaseLost) when the lock is gone or someone else's.
    pub fn extend(&mut self, by: Duration) -> Result<(), LockError> {
        let left = self.time_left();
        let lease = if left.is_zero() {
            by
        } else {
            left + super::lease::drift(self.ttl) + by
        };
        self.set_lease(lease)
    }

    /// Reset the lease to the full TTL the lock was taken with, only while the lock holds
    /// our token.
    ///
    /// # Errors
    /// [`LeaseLost`](LockErrorKind::LeaseLost) when the lock is gone or someone else's.
    pub fn reacquire(&mut self) -> Result<(), LockError> {
        self.set_lease(self.ttl)
    }

    fn set_lease(&mut self, lease: Duration) -> Result<(), LockError> {
        let sent = Instant::now();
        if self
            .backend
            .set_lease(&self.keys.lock, &self.token, lease, &self.waiters)?
        {
            self.lease.renewed(deadline_after(sent, lease));
            Ok(())
        } else {
            self.lease.lose(LeaseLost::Taken);
            Err(LockError::new(
                LockErrorKind::LeaseLost,
                format!("{} is no longer held by this guard", self.keys.lock),
            ))
        }
    }

    /// Stop the watchdog, then release the lock if it still holds our token, and say how
    /// it ended.
    ///
    /// # Errors
    /// [`Unavailable`](LockErrorKind::Unavailable) or [`Server`](LockErrorKind::Server):
    /// the lock may still be held until its TTL ends.
    pub fn release(mut self) -> Result<Release, LockError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Release, LockError> {
        if let Some(mut w) = self.watchdog.take() {
            w.stop();
        }
        self.done = true;
        self.backend
            .release(&self.keys, &self.token, &self.waiters, self.wake_ttl)
    }
}

impl<E: Execute + Send + Sync + 'static> LockGuard<E> {
    /// Start a watchdog: named background threads that reset the lease to the full TTL
    /// every TTL/3 while the guard lives, stop before the guard releases (never renewing
    /// a released lock), and mark the lease lost when the server says the lock is not ours
    /// or no renewal is confirmed by the [`deadline`](LockGuard::deadline) (so an
    /// unreachable server is reported no later than the TTL). Ask
    /// [`lease_lost`](LockGuard::lease_lost), block on
    /// [`wait_lost`](LockGuard::wait_lost), or use
    /// [`watchdog_with`](LockGuard::watchdog_with) for a callback.
    ///
    /// # Errors
    /// [`Watchdog`](LockErrorKind::Watchdog) when a thread cannot be spawned (the guard is
    /// dropped, releasing the lock).
    pub fn watchdog(self) -> Result<LockGuard<E>, LockError> {
        self.start(None)
    }

    /// [`watchdog`](LockGuard::watchdog) with a callback, run once on the watchdog thread
    /// when the lease is lost. Keep it short (set a flag, send on a channel).
    ///
    /// # Errors
    /// As for [`watchdog`](LockGuard::watchdog).
    pub fn watchdog_with(
        self,
        on_lost: impl FnOnce(LeaseLost) + Send + 'static,
    ) -> Result<LockGuard<E>, LockError> {
        self.start(Some(Box::new(on_lost)))
    }

    fn start(
        mut self,
        on_lost: Option<super::watchdog::OnLost>,
    ) -> Result<LockGuard<E>, LockError> {
        if self.watchdog.is_some() {
            return Ok(self);
        }
        let renewal = Renewal {
            backend: self.backend.clone(),
            key: self.keys.lock.clone(),
            token: self.token.clone(),
            ttl: self.ttl,
            waiters: self.waiters.clone(),
        };
        match Watchdog::start(renewal, self.lease.clone(), on_lost) {
            Ok(w) => {
                self.watchdog = Some(w);
                Ok(self)
            }
            Err(e) => Err(LockError::new(
                LockErrorKind::Watchdog,
                format!("cannot spawn the watchdog thread: {e}"),
            )),
        }
    }
}

impl<E: Execute> Drop for LockGuard<E> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match self.finish() {
            Ok(Release::Released) => {}
            Ok(other) => log::debug!("lock {} on drop: {other:?}", self.keys.lock),
            Err(e) => log::debug!("releasing lock {} on drop failed: {e}", self.keys.lock),
        }
    }
}

impl<E: Execute> fmt::Debug for LockGuard<E> {
    /// The key, fence and deadline; never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.keys.lock)
            .field("fencing_token", &self.fence)
            .field("ttl", &self.ttl)
            .field("time_left", &self.time_left())
            .field("watchdog", &self.watchdog.is_some())
            .finish()
    }
}
