//! Whether the reader endpoint is in sync with its primary, for
//! [`ReadFrom::ReaderWhenInSync`](crate::ReadFrom::ReaderWhenInSync): `INFO replication`
//! on the reader, at most once per interval and by one thread at a time; the others use
//! the last answer (at first: not in sync, so reads go to the writer).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cmd::{cmd, Execute};
use crate::pool::Pool;
use crate::resp::Value;

/// How long one answer is trusted.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The last answer and when it was taken.
pub(crate) struct ReaderSync {
    /// Base of `checked_at`.
    epoch: Instant,
    /// Microseconds after `epoch` of the last check, plus one (0: never checked).
    checked_at: AtomicU64,
    in_sync: AtomicBool,
    /// Held by the one thread running a check.
    checking: Mutex<()>,
}

impl ReaderSync {
    pub(crate) fn new() -> ReaderSync {
        ReaderSync {
            epoch: Instant::now(),
            checked_at: AtomicU64::new(0),
            in_sync: AtomicBool::new(false),
            checking: Mutex::new(()),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    fn fresh(&self, now: u64) -> bool {
        let at = self.checked_at.load(Ordering::Acquire);
        at != 0 && now.saturating_sub(at) < CHECK_INTERVAL.as_micros() as u64
    }

    /// True when `reader` was in sync at the last check (checking again when that is
    /// older than [`CHECK_INTERVAL`] and no other thread is checking).
    pub(crate) fn in_sync(&self, reader: &Pool) -> bool {
        let now = self.now();
        if !self.fresh(now) {
            if let Some(_guard) = self.checking.try_lock() {
                if !self.fresh(self.now()) {
                    let ok = check(reader);
                    if ok != self.in_sync.load(Ordering::Relaxed) {
                        log::info!(
                            "reader endpoint {} in sync: reads marked ReaderWhenInSync go to the {}",
                            if ok { "is" } else { "is not" },
                            if ok { "reader" } else { "writer" }
                        );
                    }
                    self.in_sync.store(ok, Ordering::Release);
                    self.checked_at.store(self.now(), Ordering::Release);
                }
            }
        }
        self.in_sync.load(Ordering::Acquire)
    }
}

/// One `INFO replication` on the reader: in sync when it is a primary itself, or a replica
/// whose link is up and which is not loading an initial sync. Any error: not in sync.
fn check(reader: &Pool) -> bool {
    let reply = reader.exec(&cmd("INFO").arg("replication"));
    match reply {
        Ok(Value::Bulk(text)) | Ok(Value::Verbatim { text, .. }) => {
            replication_in_sync(&String::from_utf8_lossy(&text))
        }
        Ok(_) => false,
        Err(e) => {
            log::debug!("reader sync check failed: {e}");
            false
        }
    }
}

/// The rule, on the text of `INFO replication`.
pub(crate) fn replication_in_sync(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim_end().strip_prefix(name)?.strip_prefix(':'))
    };
    match field("role") {
        Some("master") => true,
        Some("slave") => {
            field("master_link_status") == Some("up")
                && field("master_sync_in_progress").map_or(true, |v| v == "0")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::replication_in_sync;

    #[test]
    fn the_rule() {
        assert!(replication_in_sync(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
        ));
        assert!(replication_in_sync(
            "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
        ));
        assert!(!replication_in_sync(
            "role:slave\r\nmaster_link_status:down\r\nmaster_sync_in_progress:0\r\n"
        ));
        assert!(!replication_in_sync(
            "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:1\r\n"
        ));
        assert!(!replication_in_sync(""));
        // `master_link_status` must not match `master_link_status_x`.
        assert!(!replication_in_sync(
            "role:slave\r\nmaster_link_status_x:up\r\n"
        ));
    }
}
