//! The state every handle of one pool shares: idle connections, slot accounting, and the
//! three operations that touch them (connect, vet on checkout, take back on return).

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::failure::{
    busy_backoff, duplicate, is_refused_while_up, is_server_busy, BUSY_BACKOFF_CAP,
};
use super::options::PoolOptions;
use super::stats::{Counters, PoolStats};
use crate::cmd::cmd;
use crate::config::{ConnectionConfig, Protocol};
use crate::conn::{Connection, PeerState, SessionState};
use crate::error::{Error, Result};

/// A connection resting in the pool.
pub(crate) struct Idle {
    /// Boxed: checkout and return move a pointer, not the connection's state.
    pub conn: Box<Connection>,
    /// When it passes `max_lifetime` (`None`: never): fixed at connect, so that checking
    /// it is a comparison, not a subtraction.
    pub expires: Option<Instant>,
    pub since: Instant,
}

pub(crate) struct State {
    /// A stack: the most recently returned connection is reused first (its socket and
    /// buffers are warm), so the ones at the front go idle and get reaped.
    pub idle: Vec<Idle>,
    /// Connections that exist: idle plus checked out.
    pub open: usize,
    /// Connects in flight. A slot is reserved for each (`open + connecting <= max_size`)
    /// and the connect runs without the lock.
    pub connecting: usize,
    /// Checkouts blocked on `available` now.
    pub waiting: usize,
    /// The last connect failure and when it happened, for the exhaustion error's source.
    pub last_connect_error: Option<(Instant, Error)>,
    pub consecutive_failures: u32,
    /// Consecutive connects the server turned away as busy (maxclients reached, ...).
    pub busy_failures: u32,
    /// While the server reports itself busy: no connect attempt starts before this
    /// instant (one attempt per [`busy_backoff`] interval, pool-wide).
    pub connect_not_before: Option<Instant>,
    /// When the server last turned a connect away as busy. A success does not undo it:
    /// connects that were in flight together with the refused one learn nothing about
    /// the room left, so for one backoff cap after a refusal attempts stay one at a time.
    pub last_busy: Option<Instant>,
}

impl State {
    /// The instant before which no connect may start, when that is still ahead of `now`.
    pub(crate) fn connect_gate(&self, now: Instant) -> Option<Instant> {
        self.connect_not_before.filter(|t| *t > now)
    }

    /// A connect that began at `started` succeeded. It shows the server has room again
    /// (the ramp of pauses starts again from its shortest step) only when it began after
    /// the last refusal: a connect in flight together with refused ones was admitted
    /// before the server filled up and says nothing of the room left. (Were the ramp reset
    /// by such a connect, the threads the refusals' gate held would all find the gate open
    /// once it lapsed, and connect at once: a second burst at a full server.)
    pub(crate) fn note_connected(&mut self, started: Instant) {
        self.open += 1;
        self.consecutive_failures = 0;
        if !matches!(self.last_busy, Some(refused) if started <= refused) {
            self.busy_failures = 0;
        }
    }

    /// The server turned a connect away as busy at `now`: no connect starts before the
    /// next step of the ramp, pool-wide.
    pub(crate) fn note_refused_busy(&mut self, now: Instant) {
        self.busy_failures = self.busy_failures.saturating_add(1);
        self.last_busy = Some(now);
        self.connect_not_before = Some(now + busy_backoff(self.busy_failures));
    }

    /// A connect is about to start: while the server reports itself busy, close the gate
    /// for the next interval so that the other threads wait instead of connecting too.
    pub(crate) fn pass_connect_gate(&mut self, now: Instant) {
        if self.busy_failures > 0 {
            self.connect_not_before = Some(now + busy_backoff(self.busy_failures));
        } else if self
            .last_busy
            .is_some_and(|t| now.saturating_duration_since(t) < BUSY_BACKOFF_CAP)
        {
            self.connect_not_before = Some(now + busy_backoff(1));
        }
    }
}

pub(crate) struct Shared {
    pub config: ConnectionConfig,
    pub options: PoolOptions,
    /// How long a returned connection is handed out on what it knows itself (no system
    /// call): `skip_check_within`, at most `idle_check_after`; and the same for a
    /// resendable checkout (the longer of `skip_check_within` and
    /// `skip_check_when_resendable`, at most `idle_check_after`). Found once, from the
    /// options, which never change.
    trust_within: Duration,
    trust_within_resendable: Duration,
    pub state: Mutex<State>,
    /// Signalled when a connection is returned or a slot is freed.
    pub available: Condvar,
    pub counters: Counters,
}

impl Shared {
    pub(crate) fn new(config: ConnectionConfig, options: PoolOptions) -> Shared {
        let trust_within = options.skip_check_within.min(options.idle_check_after);
        let trust_within_resendable = options
            .skip_check_within
            .max(options.skip_check_when_resendable)
            .min(options.idle_check_after);
        Shared {
            config,
            options,
            trust_within,
            trust_within_resendable,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                connecting: 0,
                waiting: 0,
                last_connect_error: None,
                consecutive_failures: 0,
                busy_failures: 0,
                connect_not_before: None,
                last_busy: None,
            }),
            available: Condvar::new(),
            counters: Counters::default(),
        }
    }

    /// Open a connection for a slot the caller already reserved (`connecting += 1`),
    /// finishing by `deadline` at the latest. Runs without the lock.
    pub(crate) fn connect(&self, deadline: Instant) -> Result<Connection> {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        let result = if remaining < self.config.connect_timeout {
            let mut cfg = self.config.clone();
            cfg.connect_timeout = remaining.max(Duration::from_millis(1));
            Connection::open(&cfg)
        } else {
            Connection::open(&self.config)
        };
        let mut st = self.state.lock();
        st.connecting -= 1;
        match result {
            Ok(conn) => {
                // Counters move under the lock with the gauges, so a snapshot taken while
                // nothing else happens always has created - closed == open.
                // A gate a concurrent refusal set stays (see `last_busy`).
                st.note_connected(started);
                Counters::bump(&self.counters.created);
                drop(st);
                log::debug!("pool {}: opened a connection", self.config.addr);
                Ok(conn)
            }
            Err(e) => {
                st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                let n = st.consecutive_failures;
                let now = Instant::now();
                st.last_connect_error = Some((now, duplicate(&e)));
                // Busy: the server said so. A reset or EOF during the handshake while this
                // pool holds working connections says the same thing less politely (a full
                // server's "max number of clients" reply is lost when its close turns into
                // a reset): the server is up and refusing, so space attempts out pool-wide
                // rather than let every waiting thread try on its own schedule.
                if is_server_busy(&e) || (st.open > 0 && is_refused_while_up(&e)) {
                    st.note_refused_busy(now);
                }
                drop(st);
                // The slot is free again: someone waiting may try.
                self.available.notify_one();
                Counters::bump(&self.counters.connect_failures);
                if n >= 2 && n.is_power_of_two() {
                    log::warn!(
                        "pool {}: {n} consecutive connect failures; last: {e}",
                        self.config.addr
                    );
                } else {
                    log::debug!("pool {}: connect failed: {e}", self.config.addr);
                }
                Err(e)
            }
        }
    }

    /// Decide whether an idle connection may be handed out, without a round trip when
    /// the socket can vouch for it. Returns it, or discards it and returns `None`.
    /// `resendable`: the caller will resend the call on a checked connection if this one
    /// turns out dead (see `PoolOptions::skip_check_when_resendable`).
    #[inline(always)]
    pub(crate) fn vet(&self, idle: Idle, now: Instant, resendable: bool) -> Option<Idle> {
        let window = if resendable {
            self.trust_within_resendable
        } else {
            self.trust_within
        };
        // The usual case, decided here: used moments ago, so no system call; what the
        // connection itself knows (broken, unread bytes) is still checked. ("Idle for
        // less than `window`" as `now < since + window`: an addition is cheaper than the
        // subtraction of two instants. A window too large to add falls through to
        // `vet_further`, which subtracts.)
        if !past(idle.expires, now)
            && !window.is_zero()
            && idle.since.checked_add(window).is_some_and(|t| now < t)
            && matches!(
                idle.conn.local_state(),
                PeerState::Open | PeerState::Unknown
            )
        {
            return Some(idle);
        }
        self.vet_further(idle, now, window)
    }

    /// The rest of [`Shared::vet`] (`window`: how long `idle` is trusted without a system
    /// call).
    #[inline(never)]
    fn vet_further(&self, idle: Idle, now: Instant, window: Duration) -> Option<Idle> {
        // (One subtraction serves both comparisons below.)
        let idle_for = now.saturating_duration_since(idle.since);
        let why: Option<String> = if past(idle.expires, now) {
            Some("past max_lifetime".into())
        } else if idle_for < window {
            // Used moments ago: no system call. What the connection itself knows (broken,
            // unread bytes) is still checked. (A PING asked for by `idle_check_after` is
            // never skipped.)
            match idle.conn.local_state() {
                PeerState::Closed => Some("broken".into()),
                PeerState::DataPending => Some("unsolicited bytes arrived while idle".into()),
                PeerState::Open | PeerState::Unknown => None,
            }
        } else {
            match idle.conn.peer_state() {
                PeerState::Closed => Some("closed by the server".into()),
                PeerState::DataPending => Some("unsolicited bytes arrived while idle".into()),
                PeerState::Open if idle_for < self.options.idle_check_after => None,
                PeerState::Open | PeerState::Unknown => {
                    Counters::bump(&self.counters.health_checks);
                    // Bounded like a new connection would be, not by the read timeout.
                    let bound = self.config.connect_timeout;
                    match idle.conn.exec_with_timeout(&cmd("PING"), bound) {
                        Ok(_) => None,
                        Err(e) => Some(format!("PING on checkout failed: {e}")),
                    }
                }
            }
        };
        match why {
            None => Some(idle),
            Some(why) => {
                self.discard(idle.conn, &why);
                None
            }
        }
    }

    /// Take a connection back from its user: reset a changed session, drop a broken or
    /// expired one, keep the rest for the next checkout.
    /// Returns the clock reading it took (for a caller that needs "now" next).
    #[inline(always)]
    pub(crate) fn put_back(&self, conn: Box<Connection>, expires: Option<Instant>) -> Instant {
        // Pushes nobody asked for are dropped here: the next user must not see them.
        let (broken, session) = conn.returned();
        let now = Instant::now();
        if !broken && session.is_clean() && !past(expires, now) {
            // The usual case: healthy, as the handshake left it, not too old.
            self.put_idle_at(conn, expires, now);
        } else {
            self.put_back_changed(conn, expires, now, broken, session);
        }
        now
    }

    /// [`Shared::put_back`] for a connection dropped by its user (no clock reading wanted).
    #[inline(never)]
    pub(crate) fn put_back_dropped(&self, conn: Box<Connection>, expires: Option<Instant>) {
        let _ = self.put_back(conn, expires);
    }

    /// `put_back` of a connection that is broken, has a changed session, or is past
    /// `max_lifetime` (at `now`).
    #[cold]
    fn put_back_changed(
        &self,
        conn: Box<Connection>,
        expires: Option<Instant>,
        now: Instant,
        broken: bool,
        session: SessionState,
    ) {
        let why: Option<String> = if broken {
            Some("broken".into())
        } else if !session.is_clean() {
            if std::thread::panicking() {
                // No blocking I/O while unwinding: drop it rather than RESET it.
                Some("returned with a changed session during a panic".into())
            } else if session.subscribed && conn.protocol() == Protocol::Resp2 {
                // Messages may be in flight, and in RESP2 they look like replies: a RESET
                // could read one as its answer. A new connection is cheaper than doubt.
                Some("returned subscribed on RESP2".into())
            } else {
                match conn.reset_session() {
                    Ok(()) => {
                        Counters::bump(&self.counters.resets);
                        None
                    }
                    Err(e) => Some(format!("session reset failed: {e}")),
                }
            }
        } else if past(expires, now) {
            Some("past max_lifetime".into())
        } else {
            None
        };
        match why {
            Some(why) => self.discard(conn, &why),
            None => self.put_idle_at(conn, expires, now),
        }
    }

    pub(crate) fn put_idle(&self, conn: Box<Connection>, expires: Option<Instant>) {
        self.put_idle_at(conn, expires, Instant::now());
    }

    /// Keep `conn` for the next checkout, idle since `since`.
    #[inline(always)]
    fn put_idle_at(&self, conn: Box<Connection>, expires: Option<Instant>, since: Instant) {
        let idle = Idle {
            conn,
            expires,
            since,
        };
        self.state.lock().idle.push(idle);
        self.available.notify_one();
    }

    /// Close a connection that counts as open and free its slot.
    pub(crate) fn discard(&self, conn: Box<Connection>, why: &str) {
        {
            let mut st = self.state.lock();
            st.open -= 1;
            Counters::bump(&self.counters.closed);
        }
        self.available.notify_one();
        log::debug!("pool {}: closing a connection: {why}", self.config.addr);
        drop(conn);
    }

    /// A connection leaves the pool for good without being closed by it.
    pub(crate) fn forget(&self) {
        self.state.lock().open -= 1;
        self.available.notify_one();
    }

    /// When a connection opened at `created` passes `max_lifetime`.
    pub(crate) fn expiry(&self, created: Instant) -> Option<Instant> {
        self.options
            .max_lifetime
            .and_then(|max| created.checked_add(max))
    }

    /// Close idle connections past `max_idle_time` (keeping `min_idle`), past
    /// `max_lifetime`, or closed by the server, then open connections up to `min_idle`. `stop` is polled between connects.
    pub(crate) fn maintain(&self, stop: &dyn Fn() -> bool) {
        let now = Instant::now();
        let min_idle = self.options.min_idle;
        let mut expired = Vec::new();
        {
            let mut st = self.state.lock();
            let idle = std::mem::take(&mut st.idle);
            let mut remaining = idle.len();
            for c in idle {
                let too_idle = self
                    .options
                    .max_idle_time
                    .is_some_and(|max| now.saturating_duration_since(c.since) >= max);
                // A dead socket is noticed here too, so `idle` stays truthful and
                // `min_idle` is refilled after a server restart without waiting for
                // checkouts to stumble on the corpses (a few system calls each).
                let dead = || {
                    matches!(
                        c.conn.peer_state(),
                        PeerState::Closed | PeerState::DataPending
                    )
                };
                if past(c.expires, now) || (too_idle && remaining > min_idle) || dead() {
                    remaining -= 1;
                    st.open -= 1;
                    Counters::bump(&self.counters.closed);
                    expired.push(c.conn);
                } else {
                    st.idle.push(c);
                }
            }
        }
        if !expired.is_empty() {
            self.available.notify_all();
            log::debug!(
                "pool {}: closing {} idle connections (idle too long, too old, or closed by the server)",
                self.config.addr,
                expired.len()
            );
        }
        // Closing (a shutdown per socket) happens without the lock.
        drop(expired);
        while !stop() {
            {
                let mut st = self.state.lock();
                let room = st.open + st.connecting < self.options.max_size;
                let now = Instant::now();
                if st.idle.len() + st.connecting >= min_idle
                    || !room
                    || st.connect_gate(now).is_some()
                {
                    return;
                }
                st.pass_connect_gate(now);
                st.connecting += 1;
            }
            let deadline = Instant::now() + self.config.connect_timeout;
            match self.connect(deadline) {
                Ok(conn) => self.put_idle(Box::new(conn), self.expiry(Instant::now())),
                Err(_) => return,
            }
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let mut s = PoolStats {
            max_size: self.options.max_size,
            ..PoolStats::default()
        };
        {
            let st = self.state.lock();
            s.open = st.open;
            s.idle = st.idle.len();
            s.in_use = st.open - st.idle.len();
            s.connecting = st.connecting;
            s.waiting = st.waiting;
        }
        self.counters.fill(&mut s);
        s
    }
}

/// True once `expires` (from [`Shared::expiry`]) is reached.
#[inline]
fn past(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_some_and(|t| now >= t)
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let n = st.idle.len();
        if n > 0 {
            log::debug!("pool {}: closing {n} idle connections", self.config.addr);
            self.counters
                .closed
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Regression: a connect admitted in the same burst as twelve refused ones used to reset
    /// the ramp when it completed; once the refusals' gate lapsed (250 ms, as long as the
    /// window `last_busy` keeps attempts one at a time) every waiting thread found the gate
    /// open and connected at once, a second burst at a full server (tests/maxclients.rs saw
    /// 33 connects in 1.5 s where the bound is 32).
    #[test]
    fn a_connect_in_flight_with_refusals_does_not_reset_the_ramp() {
        let shared = Shared::new(ConnectionConfig::new("127.0.0.1", 1), PoolOptions::new());
        let mut st = shared.state.lock();
        let t0 = Instant::now();
        for i in 1..=12 {
            st.note_refused_busy(t0 + ms(i));
        }
        st.note_connected(t0);
        let lapsed = t0 + ms(12) + BUSY_BACKOFF_CAP + ms(10);
        assert!(st.connect_gate(lapsed).is_none(), "the gate lapsed");
        st.pass_connect_gate(lapsed);
        assert_eq!(
            st.connect_gate(lapsed + ms(1)),
            Some(lapsed + BUSY_BACKOFF_CAP),
            "still refusing as far as anyone knows: the next attempt waits a full step"
        );

        // A connect that began after the last refusal and succeeded: room again, the ramp
        // starts over (one attempt at a time for a while, 10 ms apart).
        let later = lapsed + ms(5);
        st.note_connected(later);
        assert_eq!(st.busy_failures, 0);
        let next = later + ms(300);
        st.pass_connect_gate(next);
        assert_eq!(st.connect_gate(next), None, "past the window: no gate");
    }
}
