//! The origin "database": an in-memory table of users with a configurable latency per call
//! and call counters, so the effect of each caching strategy is visible in timings and in
//! `GET /debug/origin`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One row of the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub title: String,
    /// Which write produced this row: 0 for seeded rows, else the write's sequence
    /// number (write-behind) or a counter (write-through). Writes with a lower version
    /// than the stored row are ignored, which makes applying a write idempotent.
    pub version: u64,
}

/// Counters of origin calls.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct OriginCounts {
    /// Single-row reads (`get`).
    pub reads: u64,
    /// Batch reads (`get_many`), each one call whatever the number of ids.
    pub batch_reads: u64,
    /// Rows written (write-through and write-behind).
    pub writes: u64,
    /// Of those, rows written by the write-behind workers.
    pub write_behind_writes: u64,
    /// Full scans (`POST /recompute`).
    pub scans: u64,
}

/// The in-memory origin.
pub struct Origin {
    rows: Mutex<BTreeMap<u64, User>>,
    latency: Duration,
    reads_by_id: Mutex<HashMap<u64, u64>>,
    reads: AtomicU64,
    batch_reads: AtomicU64,
    writes: AtomicU64,
    wb_writes: AtomicU64,
    scans: AtomicU64,
    next_version: AtomicU64,
}

const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const TITLES: [&str; 4] = ["engineer", "manager", "researcher", "operator"];

impl Origin {
    /// Users 1..=`users` exist; every call sleeps `latency` first.
    pub fn new(users: u64, latency: Duration) -> Origin {
        let rows = (1..=users)
            .map(|id| {
                let user = User {
                    id,
                    name: format!("{} {id}", FIRST_NAMES[(id % 8) as usize]),
                    title: TITLES[(id % 4) as usize].to_string(),
                    version: 0,
                };
                (id, user)
            })
            .collect();
        Origin {
            rows: Mutex::new(rows),
            latency,
            reads_by_id: Mutex::new(HashMap::new()),
            reads: AtomicU64::new(0),
            batch_reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            wb_writes: AtomicU64::new(0),
            scans: AtomicU64::new(0),
            next_version: AtomicU64::new(1),
        }
    }

    fn pause(&self) {
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
    }

    /// One row, `None` when it does not exist.
    pub fn get(&self, id: u64) -> Option<User> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        *self.reads_by_id.lock().entry(id).or_insert(0) += 1;
        self.pause();
        self.rows.lock().get(&id).cloned()
    }

    /// Many rows in one call (one latency); missing ids are left out.
    pub fn get_many(&self, ids: &[u64]) -> Vec<User> {
        self.batch_reads.fetch_add(1, Ordering::Relaxed);
        {
            let mut by_id = self.reads_by_id.lock();
            for id in ids {
                *by_id.entry(*id).or_insert(0) += 1;
            }
        }
        self.pause();
        let rows = self.rows.lock();
        ids.iter().filter_map(|id| rows.get(id).cloned()).collect()
    }

    /// Every row (for the recompute job).
    pub fn scan(&self) -> Vec<User> {
        self.scans.fetch_add(1, Ordering::Relaxed);
        self.pause();
        self.rows.lock().values().cloned().collect()
    }

    /// A version for a write-through (write-behind writes carry their sequence number).
    pub fn next_version(&self) -> u64 {
        self.next_version.fetch_add(1, Ordering::Relaxed)
    }

    /// Upsert a row unless the stored one is newer (idempotent, order-safe).
    pub fn put(&self, user: &User, from_write_behind: bool) {
        self.pause();
        let mut rows = self.rows.lock();
        if rows
            .get(&user.id)
            .is_some_and(|old| old.version > user.version)
        {
            return;
        }
        rows.insert(user.id, user.clone());
        self.writes.fetch_add(1, Ordering::Relaxed);
        if from_write_behind {
            self.wb_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Upsert many rows with one latency (a write-behind batch).
    pub fn put_batch(&self, users: &[User]) {
        self.pause();
        let mut rows = self.rows.lock();
        for user in users {
            if rows
                .get(&user.id)
                .is_some_and(|old| old.version > user.version)
            {
                continue;
            }
            rows.insert(user.id, user.clone());
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.wb_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stored row, without latency or counting (for `GET /debug/origin`).
    pub fn peek(&self, id: u64) -> Option<User> {
        self.rows.lock().get(&id).cloned()
    }

    /// Reads (single and batch) that asked for `id`.
    pub fn reads_of(&self, id: u64) -> u64 {
        self.reads_by_id.lock().get(&id).copied().unwrap_or(0)
    }

    /// All counters.
    pub fn counts(&self) -> OriginCounts {
        OriginCounts {
            reads: self.reads.load(Ordering::Relaxed),
            batch_reads: self.batch_reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            write_behind_writes: self.wb_writes.load(Ordering::Relaxed),
            scans: self.scans.load(Ordering::Relaxed),
        }
    }
}
