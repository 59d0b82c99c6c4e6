//! The local over-limit memo: ids known to be limited until their retry-after, answered
//! without a round trip (as Envoy's rate-limit service does with its local cache).
//!
//! It never refuses what the server would admit, as long as only limiters change the keys:
//! a retry-after assumes no other traffic, and other traffic can only push it later.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use super::decision::{Decision, Outcome};

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Clock time the id may be admitted again (for costs >= `cost`).
    until: Duration,
    /// Clock time the limiter is back to full quota.
    reset_at: Duration,
    /// The smallest cost refused: a smaller cost may fit earlier, so it is not answered here.
    cost: u64,
    limit: u64,
    /// What the server said remained (a lower bound while remembered: time only adds).
    remaining: u64,
}

/// A bounded map id -> limited-until. When full, expired entries are dropped first, then
/// nothing new is remembered until some expire (the memo is an optimisation, never needed).
#[derive(Debug)]
pub(crate) struct Memo {
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Memo {
    pub(crate) fn new(capacity: usize) -> Memo {
        Memo {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A limited decision for `id` at clock time `now`, if one is remembered.
    pub(crate) fn lookup(&self, id: &str, cost: u64, now: Duration) -> Option<Decision> {
        let mut entries = self.entries.lock();
        let e = *entries.get(id)?;
        if now >= e.until {
            entries.remove(id);
            return None;
        }
        if cost < e.cost {
            return None;
        }
        let retry = e.until - now;
        Some(Decision {
            allowed: false,
            outcome: Outcome::Limited,
            limit: e.limit,
            remaining: e.remaining,
            reset_after: e.reset_at.saturating_sub(now).max(retry),
            retry_after: Some(retry),
        })
    }

    /// Remember a limited decision made at clock time `now`.
    pub(crate) fn remember(&self, id: &str, cost: u64, d: &Decision, now: Duration) {
        let Some(retry) = d.retry_after else { return };
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.capacity {
                return;
            }
        }
        let cost = entries.get(id).map_or(cost, |e| e.cost.min(cost));
        entries.insert(
            id.to_owned(),
            Entry {
                until: now + retry,
                reset_at: now + d.reset_after,
                cost,
                limit: d.limit,
                remaining: d.remaining,
            },
        );
    }

    /// Forget `id` (it was just admitted: anything remembered is stale).
    pub(crate) fn forget(&self, id: &str) {
        let mut entries = self.entries.lock();
        if !entries.is_empty() {
            entries.remove(id);
        }
    }
}
