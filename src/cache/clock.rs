//! The server's clock, estimated locally: entry freshness must mean the same thing in
//! every process, whatever their own clocks say.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::cmd::Execute;
use crate::commands::Commands;

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
/// the last offset and is retried 30 s later.
#[derive(Debug, Default)]
pub(crate) struct ServerClock {
    offset_ms: AtomicI64,
    next_sync: Mutex<Option<Instant>>,
}

impl ServerClock {
    /// The server's Unix time in ms, as best known.
    pub fn now_ms<E: Execute + ?Sized>(&self, ex: &E) -> u64 {
        if let Some(mut next) = self.next_sync.try_lock() {
            if next.map_or(true, |t| Instant::now() >= t) {
                *next = Some(Instant::now() + RESYNC_EVERY);
                drop(next);
                self.sync(ex);
            }
        }
        (local_ms() + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    fn sync<E: Execute + ?Sized>(&self, ex: &E) {
        let before = local_ms();
        let Ok(server) = ex.time() else { return };
        let after = local_ms();
        let server_ms = server
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        self.offset_ms
            .store(server_ms - (before + after) / 2, Ordering::Relaxed);
    }

    /// The current offset (server minus local), in ms.
    #[allow(dead_code)]
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}
