//! A circuit breaker: closed -> open after N consecutive failures -> half-open after an
//! open period, with a bounded number of probes -> closed on a successful probe.
//!
//! The open period starts short ([`BreakerOptions::min_recovery_timeout`], 1 s) and doubles
//! each time a probe fails, up to [`BreakerOptions::recovery_timeout`] (60 s): a server
//! restart is over in about a second, a long outage is probed at most once a minute. A
//! successful probe closes the circuit and resets the period.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// Breaker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerOptions {
    /// Consecutive failed requests that open the circuit. Default 5. 0 disables the breaker.
    pub failure_threshold: u32,
    /// The longest the circuit stays open before probes are let through (the ceiling of
    /// the doubling open period). Default 60 s.
    pub recovery_timeout: Duration,
    /// The first open period: after the circuit opens, probes are let through this soon;
    /// each failed probe doubles the period, up to [`recovery_timeout`]; a successful
    /// probe resets it. Default 1 s. Set it equal to `recovery_timeout` for a fixed period.
    ///
    /// [`recovery_timeout`]: BreakerOptions::recovery_timeout
    pub min_recovery_timeout: Duration,
    /// Requests let through at once while half-open. Default 1.
    pub half_open_probes: u32,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        BreakerOptions {
            failure_threshold: 5,
            recovery_timeout: Duration::from_secs(60),
            min_recovery_timeout: Duration::from_secs(1),
            half_open_probes: 1,
        }
    }
}

impl BreakerOptions {
    /// A breaker that never opens.
    pub fn disabled() -> BreakerOptions {
        BreakerOptions {
            failure_threshold: 0,
            ..BreakerOptions::default()
        }
    }

    /// Set the failure threshold.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }

    /// Set the recovery timeout (the longest open period).
    pub fn recovery_timeout(mut self, d: Duration) -> Self {
        self.recovery_timeout = d;
        self
    }

    /// Set the first open period (doubled per failed probe, up to the recovery timeout).
    pub fn min_recovery_timeout(mut self, d: Duration) -> Self {
        self.min_recovery_timeout = d;
        self
    }

    /// The open period after `failed_probes` failed probes in a row.
    fn open_period(&self, failed_probes: u32) -> Duration {
        let first = self.min_recovery_timeout.min(self.recovery_timeout);
        first
            .saturating_mul(1u32 << failed_probes.min(31))
            .min(self.recovery_timeout)
    }

    /// Set how many probes may run at once while half-open (at least 1).
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n.max(1);
        self
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[cfg_attr(feature = "json", serde(rename_all = "snake_case"))]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests fail fast with [`ErrorKind::CircuitOpen`].
    Open,
    /// A bounded number of probe requests are let through.
    HalfOpen,
}

impl BreakerState {
    /// A stable lower-case name (`closed`, `open`, `half_open`) for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The numeric value exported as a gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

struct State {
    opened_at: Option<Instant>,
    /// How long the current open period lasts.
    open_for: Duration,
    /// Probes that failed since the circuit last closed.
    failed_probes: u32,
    probes_in_flight: u32,
}

/// The breaker. Shared by all clones of a client (one per endpoint).
///
/// The common case (closed, request succeeded) takes no lock: the state is mirrored in an
/// atomic that only changes under the lock, and the run of consecutive failures is an
/// atomic. Failures, and everything while open or half-open, take the lock.
pub(crate) struct Breaker {
    name: &'static str,
    options: BreakerOptions,
    /// [`BreakerState::as_gauge`] of the current state; written only under `state`'s lock.
    current: AtomicU8,
    /// Failed requests in a row (reset by any success).
    consecutive_failures: AtomicU32,
    state: Mutex<State>,
    /// Transitions into closed, open, half-open.
    transitions: [AtomicU64; 3],
    rejected: AtomicU64,
}

/// Permission to send one request; report its outcome with [`Breaker::record`].
#[must_use]
pub(crate) struct Permit {
    probe: bool,
}

fn from_gauge(v: u8) -> BreakerState {
    match v {
        0 => BreakerState::Closed,
        1 => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

impl Breaker {
    pub(crate) fn new(name: &'static str, options: BreakerOptions) -> Breaker {
        Breaker {
            name,
            options,
            current: AtomicU8::new(BreakerState::Closed.as_gauge()),
            consecutive_failures: AtomicU32::new(0),
            state: Mutex::new(State {
                opened_at: None,
                open_for: Duration::ZERO,
                failed_probes: 0,
                probes_in_flight: 0,
            }),
            transitions: Default::default(),
            rejected: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        from_gauge(self.current.load(Ordering::Acquire))
    }

    /// Transitions so far into (closed, open, half-open), and calls rejected while open.
    pub(crate) fn counters(&self) -> ([u64; 3], u64) {
        (
            [0, 1, 2].map(|i| self.transitions[i].load(Ordering::Relaxed)),
            self.rejected.load(Ordering::Relaxed),
        )
    }

    /// Ask to send a request.
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Permit> {
        if self.options.failure_threshold == 0 || self.state() == BreakerState::Closed {
            return Ok(Permit { probe: false });
        }
        self.acquire_slow()
    }

    #[cold]
    fn acquire_slow(&self) -> Result<Permit> {
        let mut s = self.state.lock();
        match self.state() {
            BreakerState::Closed => Ok(Permit { probe: false }),
            BreakerState::Open => {
                let waited = s.opened_at.map_or(Duration::MAX, |t| t.elapsed());
                if waited >= s.open_for {
                    self.transition(&s, BreakerState::HalfOpen);
                    s.probes_in_flight = 1;
                    Ok(Permit { probe: true })
                } else {
                    let left = s.open_for.saturating_sub(waited);
                    drop(s);
                    self.reject(left)
                }
            }
            BreakerState::HalfOpen => {
                if s.probes_in_flight < self.options.half_open_probes {
                    s.probes_in_flight += 1;
                    Ok(Permit { probe: true })
                } else {
                    drop(s);
                    self.reject(Duration::ZERO)
                }
            }
        }
    }

    fn reject(&self, retry_in: Duration) -> Result<Permit> {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Err(Error::new(
            ErrorKind::CircuitOpen,
            format!(
                "circuit breaker for the {} endpoint is open (next probe in {:?})",
                self.name, retry_in
            ),
        ))
    }

    /// Report the outcome of a request sent under `permit`: `failed` when it failed for
    /// availability reasons (see `retry::is_availability_failure`).
    #[inline]
    pub(crate) fn record(&self, permit: Permit, failed: bool) {
        if self.options.failure_threshold == 0 {
            return;
        }
        if !failed && !permit.probe {
            // The common case: no lock, and no write while the run is already 0.
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        self.record_slow(permit, failed);
    }

    #[cold]
    fn record_slow(&self, permit: Permit, failed: bool) {
        let mut s = self.state.lock();
        if permit.probe {
            s.probes_in_flight = s.probes_in_flight.saturating_sub(1);
        }
        let state = self.state();
        if failed {
            let run = self
                .consecutive_failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_add(1))
                })
                .map_or(u32::MAX, |n| n.saturating_add(1));
            let should_open = match state {
                BreakerState::HalfOpen => permit.probe,
                BreakerState::Closed => run >= self.options.failure_threshold,
                BreakerState::Open => false,
            };
            if should_open {
                if state == BreakerState::HalfOpen {
                    s.failed_probes = s.failed_probes.saturating_add(1);
                }
                s.open_for = self.options.open_period(s.failed_probes);
                s.opened_at = Some(Instant::now());
                self.transition(&s, BreakerState::Open);
            }
        } else {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            if state == BreakerState::HalfOpen && permit.probe {
                self.transition(&s, BreakerState::Closed);
                s.opened_at = None;
                s.failed_probes = 0;
            }
        }
    }

    /// Move to `to`; called with the state lock held (`s` is its guard's contents).
    fn transition(&self, s: &State, to: BreakerState) {
        let from = self.state();
        if from == to {
            return;
        }
        self.current.store(to.as_gauge(), Ordering::Release);
        let i = match to {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.transitions[i].fetch_add(1, Ordering::Relaxed);
        match to {
            BreakerState::Open => log::warn!(
                "circuit breaker ({}): {} -> open for {:?} after {} consecutive failures",
                self.name,
                from.name(),
                s.open_for,
                self.consecutive_failures.load(Ordering::Relaxed)
            ),
            _ => log::info!(
                "circuit breaker ({}): {} -> {}",
                self.name,
                from.name(),
                to.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, recovery: Duration) -> Breaker {
        Breaker::new(
            "test",
            BreakerOptions::default()
                .failure_threshold(threshold)
                .recovery_timeout(recovery)
                .min_recovery_timeout(recovery),
        )
    }

    #[test]
    fn opens_after_n_consecutive_failures() {
        let b = breaker(3, Duration::from_secs(60));
        for _ in 0..2 {
            b.record(b.acquire().unwrap(), true);
        }
        b.record(b.acquire().unwrap(), false); // a success resets the count
        for _ in 0..2 {
            b.record(b.acquire().unwrap(), true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
        let e = b.acquire().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::CircuitOpen);
        assert_eq!(b.counters().1, 1);
    }

    #[test]
    fn half_open_lets_bounded_probes_then_closes_or_reopens() {
        let b = breaker(1, Duration::from_millis(30));
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.acquire().unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.acquire().is_err(), "only one probe at a time");
        b.record(probe, true);
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.acquire().unwrap();
        b.record(probe, false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.counters().0, [1, 2, 2]);
    }

    #[test]
    fn open_period_doubles_per_failed_probe_up_to_the_ceiling() {
        let o = BreakerOptions::default();
        let secs: Vec<u64> = (0..8).map(|n| o.open_period(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(o.open_period(u32::MAX), Duration::from_secs(60));
        let fixed = o.clone().min_recovery_timeout(Duration::from_secs(90));
        assert_eq!(fixed.open_period(0), Duration::from_secs(60), "clamped");
    }

    /// Wait until the breaker lets a probe through; how long that took.
    fn probe_after(b: &Breaker, started: Instant) -> (Permit, Duration) {
        loop {
            if let Ok(p) = b.acquire() {
                return (p, started.elapsed());
            }
            assert!(started.elapsed() < Duration::from_secs(2), "no probe");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn short_first_open_period_doubles_while_probes_fail_and_resets_after_success() {
        let ms = Duration::from_millis;
        let b = Breaker::new(
            "test",
            BreakerOptions::default()
                .failure_threshold(1)
                .min_recovery_timeout(ms(40))
                .recovery_timeout(ms(400)),
        );
        b.record(b.acquire().unwrap(), true);
        let mut opened = Instant::now();
        // Expected open periods: 40, 80, 160, 320, then the 400 ms ceiling.
        for want in [40, 80, 160, 320, 400] {
            let (probe, waited) = probe_after(&b, opened);
            assert!(
                waited >= ms(want) && waited < ms(want) + ms(120),
                "open period {waited:?}, expected {want} ms"
            );
            b.record(probe, true);
            opened = Instant::now();
            assert_eq!(b.state(), BreakerState::Open);
        }
        let (probe, _) = probe_after(&b, opened);
        b.record(probe, false);
        assert_eq!(b.state(), BreakerState::Closed);
        // Opened again: back to the first, short period.
        b.record(b.acquire().unwrap(), true);
        let (_, waited) = probe_after(&b, Instant::now());
        assert!(
            waited < ms(40) + ms(120),
            "reset to the first period: {waited:?}"
        );
    }

    /// Issue 11: while closed, asking and reporting a success take no lock (another
    /// thread holding the breaker's lock does not stop them); failures still count.
    #[test]
    fn the_closed_path_takes_no_lock() {
        let b = std::sync::Arc::new(breaker(2, Duration::from_secs(60)));
        let held = b.state.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = {
            let b = std::sync::Arc::clone(&b);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    b.record(b.acquire().unwrap(), false);
                }
                let _ = tx.send(b.state());
            })
        };
        let got = rx.recv_timeout(Duration::from_secs(5));
        drop(held);
        worker.join().unwrap();
        assert_eq!(
            got,
            Ok(BreakerState::Closed),
            "the closed path waited for the lock"
        );
        b.record(b.acquire().unwrap(), true);
        b.record(b.acquire().unwrap(), false); // resets the run
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.counters().0, [0, 1, 0]);
    }

    #[test]
    fn disabled_never_opens() {
        let b = Breaker::new("test", BreakerOptions::disabled());
        for _ in 0..100 {
            b.record(b.acquire().unwrap(), true);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
