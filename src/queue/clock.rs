//! `enqueued_at` in server time without a round trip per push: the offset between the
//! local clock and the server's `TIME`, measured at most every 30 s.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::cmd::{cmd, Execute};

const RESYNC_EVERY: Duration = Duration::from_secs(30);

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `server ms ≈ local ms + offset`; the offset is the midpoint estimate of one `TIME`.
/// Until a measurement succeeds the local clock is used.
#[derive(Debug, Default)]
pub(crate) struct ServerClock {
    offset_ms: AtomicI64,
    next_sync: Mutex<Option<Instant>>,
}

impl ServerClock {
    pub(crate) fn now_ms<E: Execute + ?Sized>(&self, ex: &E) -> u64 {
        if let Some(mut next) = self.next_sync.try_lock() {
            if next.map_or(true, |t| Instant::now() >= t) {
                *next = Some(Instant::now() + RESYNC_EVERY);
                drop(next);
                self.sync(ex);
            }
        }
        (local_ms() + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    /// Record a server time the caller just read (from a script reply).
    pub(crate) fn observe(&self, server_ms: i64) {
        self.offset_ms
            .store(server_ms - local_ms(), Ordering::Relaxed);
    }

    fn sync<E: Execute + ?Sized>(&self, ex: &E) {
        let before = local_ms();
        let Ok(v) = ex.exec(&cmd("TIME")) else { return };
        let after = local_ms();
        let parts: Option<(i64, i64)> = crate::cmd::FromValue::from_value(v).ok();
        if let Some((s, us)) = parts {
            let server = s * 1000 + us / 1000;
            self.offset_ms
                .store(server - (before + after) / 2, Ordering::Relaxed);
        }
    }
}
