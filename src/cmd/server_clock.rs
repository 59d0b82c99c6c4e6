//! The server's clock, estimated locally: times that several processes compare (cache entry
//! freshness, job enqueue times) must mean the same thing in every process, whatever their
//! own clocks say.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::{cmd, Execute, FromValue};

/// How often the offset to the server clock is measured again.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// Local Unix time in ms.
fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `server_ms ≈ local_ms + offset`, measured with `TIME` (the midpoint of the round trip),
/// at most every 30 s, on whichever caller finds it due (others never wait for it). Until
/// a measurement succeeds the offset is 0 (the local clock); a failed measurement keeps
/// the last offset and is retried 30 s later. A caller that reads the server's time
/// anyway (a script's reply) can record it with [`ServerClock::observe`].
#[derive(Debug, Default)]
pub(crate) struct ServerClock {
    offset_ms: AtomicI64,
    next_sync: Mutex<Option<Instant>>,
}

impl ServerClock {
    /// The server's Unix time in ms, as best known.
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

    /// Record a server time (Unix ms) the caller just read.
    #[allow(dead_code)] // used by the queue (feature `json`)
    pub(crate) fn observe(&self, server_ms: i64) {
        self.offset_ms
            .store(server_ms - local_ms(), Ordering::Relaxed);
    }

    /// The current offset (server minus local), in ms.
    #[allow(dead_code)]
    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    fn sync<E: Execute + ?Sized>(&self, ex: &E) {
        let before = local_ms();
        let Ok(v) = ex.exec(&cmd("TIME")) else { return };
        let after = local_ms();
        if let Ok((s, us)) = <(i64, i64)>::from_value(v) {
            let server = s.saturating_mul(1000).saturating_add(us / 1000);
            self.offset_ms
                .store(server - (before + after) / 2, Ordering::Relaxed);
        }
    }
}
