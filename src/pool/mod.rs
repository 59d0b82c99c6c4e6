//! A thread-safe pool of connections to one server.
//!
//! # Checkout
//! [`Pool::get`] takes the most recently returned idle connection, or opens a new one when
//! fewer than `max_size` exist, or waits (on a condition variable, up to the checkout
//! timeout) for one to come back. Connects run outside the pool's lock, in a reserved
//! slot, so a slow connect never holds up other checkouts. Giving up yields
//! [`ErrorKind::PoolExhausted`](crate::ErrorKind::PoolExhausted) whose [`source`](std::error::Error::source) is the connect
//! failure, when connecting failed. Failures that waiting cannot fix (wrong password,
//! bad configuration, TLS setup, a rejected handshake command) are returned at once, and
//! so is a failed connect while the pool has no open connection at all (the server looks
//! down: the caller gets the [`ErrorKind::Connect`](crate::ErrorKind::Connect) or
//! [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error at once instead of waiting out the
//! checkout timeout; the client's retry policy and circuit breaker decide what next).
//!
//! A server that answers a connect with a retryable condition (`ERR max number of clients
//! reached`, [`ServerErrorKind::MaxClients`](crate::ServerErrorKind::MaxClients)) is up but
//! busy: the checkout keeps waiting for a returned connection until its timeout, and the
//! pool spaces its connect attempts out (10 ms doubling to 250 ms between attempts,
//! pool-wide, whatever the number of waiting threads) instead of opening socket after
//! socket. A connect reset or closed during the handshake while the pool holds open
//! connections counts the same (the server is up; its "max clients" reply was lost to the
//! reset); with nothing open it fails the checkout at once, as for a server that is down.
//!
//! # Liveness without a round trip
//! Before handing out an idle connection the pool looks at its socket (a non-blocking
//! peek, a few system calls): closed by the server or holding unsolicited bytes means it
//! is closed and the next one is tried. Only when the socket cannot tell (Unix sockets,
//! TLS) or the connection sat idle longer than `idle_check_after` does the pool send a
//! `PING` first. A server restart therefore never hands out a dead connection, and the
//! normal checkout costs no round trip.
//!
//! # Return
//! Dropping the [`PooledConnection`] returns it: broken ones are closed; one whose session
//! changed (left in MULTI or WATCH, subscribed, another database, tracking on, ...) is
//! reset with `RESET` plus the handshake in one round trip, or closed if that fails, if
//! it is dropped while its thread panics, or if it is subscribed on RESP2 (where messages
//! in flight are indistinguishable from replies).
//!
//! # Maintenance
//! A background thread named `valkit-pool-reaper` closes connections idle longer than
//! `max_idle_time` (keeping `min_idle`) or open longer than `max_lifetime`, and opens
//! connections up to `min_idle`. It holds no strong reference to the pool and is stopped
//! when the last [`Pool`] handle is dropped.

mod failure;
mod options;
mod pooled;
mod reaper;
mod shared;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd::{Cmd, Execute, Pipeline};
use crate::config::ConnectionConfig;
use crate::error::Result;
use crate::resp::Value;

pub use options::PoolOptions;
pub use pooled::PooledConnection;
pub use stats::PoolStats;

use failure::{exhausted, is_fatal, is_server_busy};
use reaper::Reaper;
use shared::{Idle, Shared};
use stats::Counters;

/// Longest pause between connect attempts inside one checkout.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// A pool of connections to one server. Cheap to clone (all clones share the pool),
/// `Send + Sync`.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::{cmd, ConnectionConfig, Execute, Pool, PoolOptions};
///
/// # fn main() -> valkit::Result<()> {
/// let config = ConnectionConfig::from_url("redis://127.0.0.1:6379")?;
/// let pool = Pool::new(config, PoolOptions::new().max_size(8))?;
///
/// // Check a connection out; it goes back when `conn` is dropped.
/// let conn = pool.get()?;
/// conn.exec(&cmd("SET").arg("greeting").arg("hello"))?;
/// drop(conn);
///
/// // Or run a command on the pool directly (checkout, run, return).
/// let v = pool.exec(&cmd("GET").arg("greeting"))?;
/// assert_eq!(v.as_bytes(), Some(&b"hello"[..]));
///
/// let s = pool.stats();
/// println!("{} open, {} idle, {} waits", s.open, s.idle, s.waits);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    handle: Arc<Handle>,
}

/// Owned by the `Pool` clones only (not by checked-out connections): when the last clone
/// goes, the maintenance thread is stopped.
struct Handle {
    shared: Arc<Shared>,
    _reaper: Option<Reaper>,
}

impl Pool {
    /// Build a pool for `config`.
    ///
    /// Does no I/O unless [`PoolOptions::connect_on_build`] is set; `min_idle`
    /// connections are opened by the background thread.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for invalid options; with `connect_on_build`, the connect
    /// error; [`ErrorKind::Io`](crate::ErrorKind::Io) if the maintenance thread cannot be started.
    pub fn new(config: ConnectionConfig, options: PoolOptions) -> Result<Pool> {
        options.validate()?;
        let period = options.maintenance_period();
        let shared = Arc::new(Shared::new(config, options));
        if shared.options.connect_on_build {
            for _ in 0..shared.options.min_idle.max(1) {
                shared.state.lock().connecting += 1;
                let deadline = Instant::now() + shared.config.connect_timeout;
                let conn = shared.connect(deadline)?;
                shared.put_idle(Box::new(conn), shared.expiry(Instant::now()));
            }
        }
        let reaper = match period {
            Some(p) => Some(Reaper::spawn(Arc::downgrade(&shared), p)?),
            None => None,
        };
        Ok(Pool {
            handle: Arc::new(Handle {
                shared,
                _reaper: reaper,
            }),
        })
    }

    /// Parse `url` (see [`ConnectionConfig::from_url`]) and build a pool with `options`.
    ///
    /// # Errors
    /// As [`ConnectionConfig::from_url`] and [`Pool::new`].
    pub fn from_url(url: &str, options: PoolOptions) -> Result<Pool> {
        Pool::new(ConnectionConfig::from_url(url)?, options)
    }

    /// Check out a connection, waiting up to the configured checkout timeout.
    ///
    /// # Errors
    /// [`ErrorKind::PoolExhausted`](crate::ErrorKind::PoolExhausted) when none became available in time (its source is the
    /// last connect failure, if connecting failed while other connections were open, or
    /// while the server reported itself busy, e.g. at `maxclients`);
    /// the connect error itself ([`ErrorKind::Connect`](crate::ErrorKind::Connect) or
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)) at once when the pool has no open
    /// connection and connecting fails; [`ErrorKind::Auth`](crate::ErrorKind::Auth),
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), [`ErrorKind::Tls`](crate::ErrorKind::Tls) or a server error at once when connecting
    /// failed in a way waiting cannot fix.
    pub fn get(&self) -> Result<PooledConnection> {
        self.get_timeout(self.handle.shared.options.checkout_timeout)
    }

    /// Run a WATCH transaction on one connection checked out for it: see
    /// [`Connection::transaction`](crate::Connection::transaction). The connection goes
    /// back to the pool afterwards (unwatched, or reset if the session changed).
    ///
    /// ```no_run
    /// use valkit::{pipe, Commands, Pool, PoolOptions, TxOutcome};
    /// # fn main() -> valkit::Result<()> {
    /// let pool = Pool::from_url("redis://127.0.0.1:6379", PoolOptions::new())?;
    /// let outcome: TxOutcome<Vec<i64>> = pool.transaction(&["stock"], |tx| {
    ///     let left: Option<i64> = tx.get("stock")?;
    ///     Ok(if left.unwrap_or(0) > 0 { pipe().decr("stock") } else { pipe() })
    /// })?;
    /// # let _ = outcome; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::get`], then as [`Connection::transaction`](crate::Connection::transaction).
    pub fn transaction<T, K, F>(&self, keys: &[K], build: F) -> Result<crate::conn::TxOutcome<T>>
    where
        T: crate::cmd::FromValue,
        K: AsRef<[u8]>,
        F: FnOnce(&crate::conn::Transaction<'_>) -> Result<Pipeline>,
    {
        self.get()?.transaction(keys, build)
    }

    /// Like [`Pool::get`] with another timeout.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use valkit::{ErrorKind, Pool, PoolOptions};
    /// # fn main() -> valkit::Result<()> {
    /// let pool = Pool::from_url("redis://127.0.0.1:6379", PoolOptions::new())?;
    /// match pool.get_timeout(Duration::from_millis(50)) {
    ///     Ok(conn) => { /* use it */ }
    ///     Err(e) if e.kind() == ErrorKind::PoolExhausted => { /* shed load */ }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection> {
        self.checkout(timeout, Instant::now(), false)
    }

    /// [`Pool::get`] for a caller that read the clock a moment ago (the client's command
    /// path): `start` stands for "now", saving a clock read. `resendable`: the caller
    /// resends the call on a checked connection if this one turns out dead
    /// ([`PoolOptions::skip_check_when_resendable`](PoolOptions#structfield.skip_check_when_resendable)).
    pub(crate) fn get_since(&self, start: Instant, resendable: bool) -> Result<PooledConnection> {
        self.checkout(
            self.handle.shared.options.checkout_timeout,
            start,
            resendable,
        )
    }

    /// True when a resendable checkout may skip the socket check (the window is not zero).
    pub(crate) fn trusts_resendable(&self) -> bool {
        !self
            .handle
            .shared
            .options
            .skip_check_when_resendable
            .is_zero()
    }

    fn checkout(
        &self,
        timeout: Duration,
        start: Instant,
        resendable: bool,
    ) -> Result<PooledConnection> {
        let shared = &self.handle.shared;
        let mut st = shared.state.lock();
        // The usual case: an idle connection passes its check. The clock read at the
        // start serves the look, and no deadline is needed.
        if let Some(idle) = st.idle.pop() {
            drop(st);
            if let Some(idle) = shared.vet(idle, start, resendable) {
                return Ok(self.hand_out(idle.conn, idle.expires, start, false));
            }
            st = shared.state.lock();
        }
        self.checkout_slow(st, timeout, start, resendable)
    }

    /// The rest of a checkout: try the other idle connections, connect, or wait, until
    /// the deadline. `st` is the pool's locked state.
    #[cold]
    fn checkout_slow<'p>(
        &'p self,
        mut st: parking_lot::MutexGuard<'p, shared::State>,
        timeout: Duration,
        start: Instant,
        resendable: bool,
    ) -> Result<PooledConnection> {
        let shared = &self.handle.shared;
        // A timeout too large to add means "a very long time", not an overflow panic.
        let deadline = start
            .checked_add(timeout)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        let mut waited = false;
        let mut own_error = None;
        let mut backoff = Duration::from_millis(5);
        loop {
            if let Some(idle) = st.idle.pop() {
                drop(st);
                if let Some(idle) = shared.vet(idle, Instant::now(), resendable) {
                    return Ok(self.hand_out(idle.conn, idle.expires, start, waited));
                }
                st = shared.state.lock();
                continue;
            }
            if st.open + st.connecting < shared.options.max_size {
                let now = Instant::now();
                if let Some(gate) = st.connect_gate(now) {
                    // The server turned a connect away as busy (maxclients reached):
                    // wait for a connection to come back, or for the next attempt's turn.
                    if now >= deadline {
                        break;
                    }
                    waited = true;
                    st.waiting += 1;
                    let _ = shared.available.wait_until(&mut st, gate.min(deadline));
                    st.waiting -= 1;
                    continue;
                }
                st.pass_connect_gate(now);
                st.connecting += 1;
                drop(st);
                match shared.connect(deadline) {
                    Ok(conn) => {
                        return Ok(self.hand_out(
                            Box::new(conn),
                            shared.expiry(Instant::now()),
                            start,
                            waited,
                        ))
                    }
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => own_error = Some(e),
                }
                st = shared.state.lock();
                // Nothing open and the connect failed: as far as anyone can tell the server
                // is down, and waiting out the checkout timeout would only hold the caller
                // (and every other thread) hostage. Return the connect error itself
                // (retryable); the client's retry policy and breaker take it from there.
                // A server that answered "busy" is up, though: keep waiting (gated).
                if st.open == 0 && !own_error.as_ref().is_some_and(is_server_busy) {
                    if let Some(e) = own_error.take() {
                        return Err(e);
                    }
                }
                // Pause before the next attempt, unless a connection comes back first.
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                waited = true;
                st.waiting += 1;
                let _ = shared
                    .available
                    .wait_until(&mut st, (now + backoff).min(deadline));
                st.waiting -= 1;
                backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
                continue;
            }
            if Instant::now() >= deadline {
                break;
            }
            waited = true;
            st.waiting += 1;
            let _ = shared.available.wait_until(&mut st, deadline);
            st.waiting -= 1;
        }
        // Someone else's connect failure during this checkout explains it too.
        let others = st
            .last_connect_error
            .as_ref()
            .filter(|(at, _)| *at >= start)
            .map(|(_, e)| failure::duplicate(e));
        drop(st);
        Counters::bump(&shared.counters.timeouts);
        if waited {
            shared.counters.add_wait(start.elapsed());
        }
        Err(exhausted(
            timeout,
            shared.options.max_size,
            own_error.or(others),
        ))
    }

    /// An idle connection if one is ready now: never waits and never connects.
    pub fn try_get(&self) -> Option<PooledConnection> {
        let shared = &self.handle.shared;
        let start = Instant::now();
        loop {
            let idle: Idle = shared.state.lock().idle.pop()?;
            if let Some(idle) = shared.vet(idle, Instant::now(), false) {
                return Some(self.hand_out(idle.conn, idle.expires, start, false));
            }
        }
    }

    /// Gauges and counters; see [`PoolStats`].
    pub fn stats(&self) -> PoolStats {
        self.handle.shared.stats()
    }

    /// The configuration connections are opened with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.handle.shared.config
    }

    /// The options this pool was built with.
    pub fn options(&self) -> &PoolOptions {
        &self.handle.shared.options
    }

    fn hand_out(
        &self,
        conn: Box<crate::conn::Connection>,
        expires: Option<Instant>,
        start: Instant,
        waited: bool,
    ) -> PooledConnection {
        let shared = &self.handle.shared;
        Counters::bump(&shared.counters.checkouts);
        if waited {
            shared.counters.add_wait(start.elapsed());
        }
        PooledConnection::new(conn, expires, Arc::clone(shared))
    }
}

/// Checkout, run, return. A connection that breaks while running is closed, not retried:
/// whether a failed command may be resent is the caller's (or the client's retry
/// policy's) decision.
impl Execute for Pool {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.get()?.exec(cmd)
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        self.get()?.exec_pipeline(pipeline)
    }

    fn exec_frame(
        &self,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        self.get()?.exec_frame(cmd, read)
    }

    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut crate::cmd::BuildReplies<'_>,
    ) -> Option<Result<()>> {
        if pipeline.is_atomic() {
            return None;
        }
        Some(self.get().and_then(|c| {
            c.exec_pipeline_replies(pipeline, build)
                .unwrap_or_else(|| Err(crate::error::Error::conversion("not read in place")))
        }))
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("Pool")
            .field("addr", &shared.config.addr)
            .field("max_size", &shared.options.max_size)
            .field("stats", &shared.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn pool_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Pool>();
        fn check_conn<T: Send + Sync>() {}
        check_conn::<PooledConnection>();
    }

    #[test]
    fn invalid_options_are_config_errors() {
        let cfg = ConnectionConfig::new("127.0.0.1", 1);
        let err = Pool::new(cfg, PoolOptions::new().max_size(0)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn building_does_no_io_and_a_dead_server_fails_fast() {
        // Nothing listens on port 1 of loopback.
        let cfg = ConnectionConfig::new("127.0.0.1", 1);
        let pool = Pool::new(cfg, PoolOptions::new()).unwrap();
        assert_eq!(pool.stats().connect_failures, 0, "building did no I/O");
        let t = Instant::now();
        let err = pool.get_timeout(Duration::from_secs(5)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        let s = pool.stats();
        assert_eq!((s.timeouts, s.open, s.connecting), (0, 0, 0));
        assert_eq!(s.connect_failures, 1, "{s:?}");
    }
}
