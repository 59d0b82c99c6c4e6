//! The lease as this process sees it: a deadline on the monotonic clock and, once known,
//! why it was lost. Shared by a guard and its watchdog.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Why a lease is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseLost {
    /// The deadline passed without a confirmed renewal (no watchdog, or the server could
    /// not be reached in time). The key may still exist on the server for up to the drift
    /// allowance, but this process must not count on it.
    Expired,
    /// The server says the key is gone or holds another owner's token.
    Taken,
}

/// The drift allowance for a lease of `ttl`: 1 % plus 2 ms (clock rate differences between
/// this process and the server, and the time to act on a decision).
pub(crate) fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// The last moment this process may act as the holder, for a lease of `ttl` granted by a
/// request sent at `sent` (the server started counting at or after `sent`).
pub(crate) fn deadline_after(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl.saturating_sub(drift(ttl))
}

/// Leases recorded lost in this process, by [`LeaseLost`] (expired, taken).
static LOST: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Lock leases this process recorded as lost (by a watchdog or a failed renewal) since
/// it started: `(expired, taken)`. A lease that only ran out while nobody renewed it is
/// not counted (nothing observed it).
pub fn leases_lost_total() -> (u64, u64) {
    (
        LOST[LeaseLost::Expired as usize].load(Ordering::Relaxed),
        LOST[LeaseLost::Taken as usize].load(Ordering::Relaxed),
    )
}

/// [`leases_lost_total`] in Prometheus text format: the counter
/// `valkit_lock_leases_lost_total{reason="expired"|"taken"}` (what `ops/alerts.yml`
/// reads). Append it to your `/metrics` output.
///
/// ```
/// let text = valkit::lock::metrics_text();
/// assert!(text.contains("# TYPE valkit_lock_leases_lost_total counter"));
/// ```
pub fn metrics_text() -> String {
    let (expired, taken) = leases_lost_total();
    format!(
        "# HELP valkit_lock_leases_lost_total Lock leases this process lost, by reason.\n\
         # TYPE valkit_lock_leases_lost_total counter\n\
         valkit_lock_leases_lost_total{{reason=\"expired\"}} {expired}\n\
         valkit_lock_leases_lost_total{{reason=\"taken\"}} {taken}\n"
    )
}

pub(crate) struct Lease {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    deadline: Instant,
    lost: Option<LeaseLost>,
}

impl Lease {
    pub(crate) fn new(deadline: Instant) -> Lease {
        Lease {
            state: Mutex::new(State {
                deadline,
                lost: None,
            }),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.state.lock().deadline
    }

    /// A renewal confirmed: move the deadline (never backwards, never after a loss).
    pub(crate) fn renewed(&self, deadline: Instant) {
        let mut s = self.state.lock();
        if s.lost.is_none() && deadline > s.deadline {
            s.deadline = deadline;
        }
    }

    /// Record a loss (the first reason wins); true when this call recorded it.
    pub(crate) fn lose(&self, why: LeaseLost) -> bool {
        let mut s = self.state.lock();
        if s.lost.is_some() {
            return false;
        }
        s.lost = Some(why);
        LOST[why as usize].fetch_add(1, Ordering::Relaxed);
        self.changed.notify_all();
        true
    }

    /// The loss, if known or if the deadline has passed.
    pub(crate) fn lost(&self) -> Option<LeaseLost> {
        let s = self.state.lock();
        s.lost
            .or_else(|| (Instant::now() >= s.deadline).then_some(LeaseLost::Expired))
    }

    /// Wait until the lease is lost (or its deadline passes), at most `timeout`.
    pub(crate) fn wait_lost(&self, timeout: Duration) -> Option<LeaseLost> {
        let until = Instant::now() + timeout;
        let mut s = self.state.lock();
        loop {
            if let Some(why) = s.lost {
                return Some(why);
            }
            let now = Instant::now();
            if now >= s.deadline {
                return Some(LeaseLost::Expired);
            }
            if now >= until {
                return None;
            }
            let wake = s.deadline.min(until);
            self.changed.wait_until(&mut s, wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_keeps_a_drift_allowance() {
        let t0 = Instant::now();
        let d = deadline_after(t0, Duration::from_secs(1));
        assert_eq!(d - t0, Duration::from_millis(988));
    }

    #[test]
    fn a_loss_is_final_and_first_reason_wins() {
        let lease = Lease::new(Instant::now() + Duration::from_secs(60));
        assert_eq!(lease.lost(), None);
        assert!(lease.lose(LeaseLost::Taken));
        assert!(!lease.lose(LeaseLost::Expired));
        lease.renewed(Instant::now() + Duration::from_secs(120));
        assert_eq!(lease.lost(), Some(LeaseLost::Taken));
        assert_eq!(lease.wait_lost(Duration::ZERO), Some(LeaseLost::Taken));
    }

    #[test]
    fn waiting_ends_at_the_deadline() {
        let lease = Lease::new(Instant::now() + Duration::from_millis(30));
        assert_eq!(lease.wait_lost(Duration::from_millis(1)), None);
        let t0 = Instant::now();
        assert_eq!(
            lease.wait_lost(Duration::from_secs(5)),
            Some(LeaseLost::Expired)
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    #[test]
    fn recorded_losses_are_counted_once_per_lease() {
        let (e0, t0) = leases_lost_total();
        let lease = Lease::new(Instant::now() + Duration::from_secs(60));
        assert!(lease.lose(LeaseLost::Taken));
        assert!(!lease.lose(LeaseLost::Expired));
        let other = Lease::new(Instant::now() + Duration::from_secs(60));
        assert!(other.lose(LeaseLost::Expired));
        let (e1, t1) = leases_lost_total();
        // Other tests in this process may lose leases too: at least ours are there.
        assert!(t1 > t0 && e1 > e0, "{e0} {t0} -> {e1} {t1}");
        let text = metrics_text();
        assert!(text.contains("valkit_lock_leases_lost_total{reason=\"taken\"} "));
    }
}
