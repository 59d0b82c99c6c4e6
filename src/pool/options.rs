//! [`PoolOptions`]: sizes, timeouts and lifetimes of a [`Pool`](super::Pool).

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How a [`Pool`](super::Pool) sizes, checks and retires its connections.
///
/// Start from [`PoolOptions::new`] (the defaults) and chain the setters; each documents its
/// default.
///
/// ```
/// use std::time::Duration;
/// use valkit::PoolOptions;
///
/// let opts = PoolOptions::new()
///     .max_size(16)
///     .min_idle(2)
///     .checkout_timeout(Duration::from_millis(500))
///     .max_lifetime(None);
/// assert_eq!(opts.max_size, 16);
/// assert_eq!(opts.max_lifetime, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Most connections open at once (idle, in use and being opened). Default 50.
    pub max_size: usize,
    /// Idle connections the background thread keeps open. Default 0.
    pub min_idle: usize,
    /// Longest [`Pool::get`](super::Pool::get) waits for a connection. Default 5 s.
    pub checkout_timeout: Duration,
    /// A connection idle longer than this is checked with a real `PING` on checkout.
    /// Default 30 s.
    pub idle_check_after: Duration,
    /// A connection returned less than this long ago is handed out without looking at its
    /// socket (the look costs three system calls: two to switch the socket to
    /// non-blocking and back, one peek; or a `PING` where the socket cannot tell: Unix
    /// sockets, TLS). Never longer than `idle_check_after`. A server that died within this window of the
    /// connection's last use is noticed by the command instead (an I/O error: the client
    /// retries idempotent commands); one that died earlier never is. `Duration::ZERO`
    /// looks every time. Default `Duration::ZERO` (opt in, e.g. 2 ms, for two system calls
    /// per pooled command instead of five): inside the window, a connection the server or a
    /// proxy closed is handed out, and a non-idempotent command sent on it fails as
    /// *ambiguous* (maybe applied) where a checked connection fails as never sent.
    pub skip_check_within: Duration,
    /// For a call the [`Client`](crate::Client) may resend whatever happens (an idempotent
    /// command, with retries left in its policy): a connection returned less than this
    /// long ago is handed out without looking at its socket, as with `skip_check_within`.
    /// If the server closed it meanwhile, the call fails on it and is resent (after the
    /// retry policy's backoff) on a connection that *was* looked at, so the caller sees
    /// the answer, never the dead connection; other calls (and
    /// [`Pool::get`](super::Pool::get)) keep the check.
    /// Never longer than `idle_check_after`. Default 250 ms; `Duration::ZERO` turns it off.
    pub skip_check_when_resendable: Duration,
    /// Idle connections beyond `min_idle` are closed after this long unused; `None` keeps
    /// them. Default 10 min.
    pub max_idle_time: Option<Duration>,
    /// Connections are closed (when idle or returned) after this long open; `None` keeps
    /// them. Default 30 min.
    pub max_lifetime: Option<Duration>,
    /// Open `max(min_idle, 1)` connections in [`Pool::new`](super::Pool::new) and fail if
    /// that fails. Off by default: the pool is built without touching the network, so a
    /// briefly unreachable server does not stop the application from starting.
    pub connect_on_build: bool,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            max_size: 50,
            min_idle: 0,
            checkout_timeout: Duration::from_secs(5),
            idle_check_after: Duration::from_secs(30),
            skip_check_within: Duration::ZERO,
            skip_check_when_resendable: Duration::from_millis(250),
            max_idle_time: Some(Duration::from_secs(10 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            connect_on_build: false,
        }
    }
}

impl PoolOptions {
    /// The defaults.
    pub fn new() -> PoolOptions {
        PoolOptions::default()
    }

    /// Most connections open at once. Default 50; must be at least 1.
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n;
        self
    }

    /// Idle connections kept open by the background thread. Default 0; at most `max_size`.
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }

    /// Longest [`Pool::get`](super::Pool::get) waits. Default 5 s.
    pub fn checkout_timeout(mut self, t: Duration) -> Self {
        self.checkout_timeout = t;
        self
    }

    /// Idle time after which a checkout first sends `PING`. Default 30 s.
    pub fn idle_check_after(mut self, t: Duration) -> Self {
        self.idle_check_after = t;
        self
    }

    /// Hand out a connection returned less than `t` ago without looking at its socket.
    /// Default `Duration::ZERO`: look at every checkout. See
    /// [`PoolOptions::skip_check_within`](PoolOptions#structfield.skip_check_within).
    pub fn skip_check_within(mut self, t: Duration) -> Self {
        self.skip_check_within = t;
        self
    }

    /// For calls the client may resend (idempotent, retries left), hand out a connection
    /// returned less than `t` ago without looking at its socket. Default 250 ms;
    /// `Duration::ZERO` turns it off. See
    /// [`PoolOptions::skip_check_when_resendable`](PoolOptions#structfield.skip_check_when_resendable).
    pub fn skip_check_when_resendable(mut self, t: Duration) -> Self {
        self.skip_check_when_resendable = t;
        self
    }

    /// Close idle connections (beyond `min_idle`) unused for this long. Default 10 min.
    pub fn max_idle_time(mut self, t: Option<Duration>) -> Self {
        self.max_idle_time = t;
        self
    }

    /// Close connections open for this long. Default 30 min.
    pub fn max_lifetime(mut self, t: Option<Duration>) -> Self {
        self.max_lifetime = t;
        self
    }

    /// Connect while building the pool and fail if that fails. Default off.
    pub fn connect_on_build(mut self, on: bool) -> Self {
        self.connect_on_build = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_size == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "pool max_size must be at least 1",
            ));
        }
        if self.min_idle > self.max_size {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "pool min_idle ({}) is larger than max_size ({})",
                    self.min_idle, self.max_size
                ),
            ));
        }
        let zero = |d: Option<Duration>| d == Some(Duration::ZERO);
        if zero(self.max_idle_time) || zero(self.max_lifetime) {
            return Err(Error::new(
                ErrorKind::Config,
                "pool max_idle_time and max_lifetime must be positive (use None to turn them off)",
            ));
        }
        Ok(())
    }

    /// How often the background thread looks at the idle connections: often enough to
    /// honour the shortest lifetime setting, at least every second while `min_idle` needs
    /// refilling, never more than 40 times a second. `None` when there is nothing to do.
    pub(crate) fn maintenance_period(&self) -> Option<Duration> {
        let shortest = [self.max_idle_time, self.max_lifetime]
            .into_iter()
            .flatten()
            .min();
        let period = match (shortest, self.min_idle) {
            (None, 0) => return None,
            (None, _) => Duration::from_secs(1),
            (Some(d), _) => d / 4,
        };
        Some(period.clamp(Duration::from_millis(25), Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(PoolOptions::new().validate().is_ok());
        assert!(PoolOptions::new().max_size(0).validate().is_err());
        assert!(PoolOptions::new()
            .max_size(2)
            .min_idle(3)
            .validate()
            .is_err());
        let zero = PoolOptions::new().max_idle_time(Some(Duration::ZERO));
        assert_eq!(zero.validate().unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn maintenance_period_is_bounded() {
        let none = PoolOptions::new().max_idle_time(None).max_lifetime(None);
        assert_eq!(none.maintenance_period(), None);
        assert_eq!(
            none.clone().min_idle(1).maintenance_period(),
            Some(Duration::from_secs(1))
        );
        let fast = PoolOptions::new().max_idle_time(Some(Duration::from_millis(200)));
        assert_eq!(fast.maintenance_period(), Some(Duration::from_millis(50)));
        let tiny = PoolOptions::new().max_idle_time(Some(Duration::from_millis(1)));
        assert_eq!(tiny.maintenance_period(), Some(Duration::from_millis(25)));
        assert_eq!(
            PoolOptions::new().maintenance_period(),
            Some(Duration::from_secs(1))
        );
    }
}
