//! The in-process L1: sharded maps bounded by entries and bytes, with a W-TinyLFU-style
//! policy (a small LRU window, a main LRU, and a count-min sketch deciding whether a
//! window victim may displace the main LRU's victim), TTL caps, and pending tickets that
//! keep a read racing its own invalidation from installing the stale value.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::resp::Bytes;

const SHARDS: usize = 16;
const NIL: u32 = u32::MAX;
/// Bytes counted per entry besides its key and value (map slot, node, `Arc` headers).
pub(crate) const ENTRY_OVERHEAD: usize = 96;

/// Which eviction policy the L1 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// W-TinyLFU-style: new entries go to a 1% LRU window; a window victim enters the main
    /// LRU only if the frequency sketch says it is used more than the main victim. Resists
    /// scans and one-hit wonders (the default).
    TinyLfu,
    /// Plain LRU, for comparison.
    Lru,
}

/// A count-min sketch of 4-bit-ish (u8, halved periodically) counters, 4 rows.
struct Sketch {
    rows: [Vec<u8>; 4],
    mask: usize,
    added: u64,
    reset_at: u64,
}

impl Sketch {
    fn new(capacity: usize) -> Sketch {
        let width = (capacity.max(16) * 2).next_power_of_two();
        Sketch {
            rows: [
                vec![0; width],
                vec![0; width],
                vec![0; width],
                vec![0; width],
            ],
            mask: width - 1,
            added: 0,
            reset_at: (capacity.max(16) as u64) * 10,
        }
    }

    fn index(&self, hash: u64, row: usize) -> usize {
        let h = hash
            .wrapping_add((row as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .wrapping_mul(0xff51_afd7_ed55_8ccd);
        ((h ^ (h >> 29)) as usize) & self.mask
    }

    fn increment(&mut self, hash: u64) {
        for row in 0..4 {
            let i = self.index(hash, row);
            if let Some(c) = self.rows[row].get_mut(i) {
                *c = c.saturating_add(1).min(15);
            }
        }
        self.added += 1;
        if self.added >= self.reset_at {
            // Age: halve every counter so that old popularity fades.
            for r in &mut self.rows {
                for c in r.iter_mut() {
                    *c /= 2;
                }
            }
            self.added /= 2;
        }
    }

    fn estimate(&self, hash: u64) -> u8 {
        (0..4)
            .map(|row| {
                self.rows[row]
                    .get(self.index(hash, row))
                    .copied()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0)
    }
}

/// A 64-bit hash of a key (shard choice and sketch).
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h ^ (h >> 31)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    Window,
    Main,
}

struct Node {
    key: Arc<[u8]>,
    value: Bytes,
    hash: u64,
    expires: Instant,
    size: usize,
    region: Region,
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

struct Shard {
    map: HashMap<Arc<[u8]>, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    window: List,
    main: List,
    bytes: usize,
    sketch: Sketch,
    /// Reads in flight: key -> ticket. An invalidation removes the key, so the read that
    /// holds the ticket does not install what it got.
    pending: HashMap<Box<[u8]>, u64>,
    max_entries: usize,
    max_bytes: usize,
    window_max: usize,
}

/// Counters the store keeps.
#[derive(Default)]
pub(crate) struct StoreStats {
    pub(crate) evictions: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) entries: AtomicU64,
}

pub(crate) struct Store {
    shards: Vec<Mutex<Shard>>,
    policy: Policy,
    pub(crate) stats: StoreStats,
    next_ticket: AtomicU64,
}

impl Shard {
    fn node(&self, i: u32) -> Option<&Node> {
        self.nodes.get(i as usize)
    }

    fn node_mut(&mut self, i: u32) -> Option<&mut Node> {
        self.nodes.get_mut(i as usize)
    }

    fn list_mut(&mut self, r: Region) -> &mut List {
        match r {
            Region::Window => &mut self.window,
            Region::Main => &mut self.main,
        }
    }

    fn unlink(&mut self, i: u32) {
        let Some(n) = self.node(i) else { return };
        let (prev, next, region) = (n.prev, n.next, n.region);
        if let Some(p) = self.node_mut(prev) {
            p.next = next;
        }
        if let Some(nx) = self.node_mut(next) {
            nx.prev = prev;
        }
        let l = self.list_mut(region);
        if l.head == i {
            l.head = next;
        }
        if l.tail == i {
            l.tail = prev;
        }
        l.len -= 1;
    }

    fn push_front(&mut self, i: u32, region: Region) {
        let head = self.list_mut(region).head;
        if let Some(n) = self.node_mut(i) {
            n.prev = NIL;
            n.next = head;
            n.region = region;
        }
        if let Some(h) = self.node_mut(head) {
            h.prev = i;
        }
        let l = self.list_mut(region);
        l.head = i;
        if l.tail == NIL {
            l.tail = i;
        }
        l.len += 1;
    }

    fn remove_node(&mut self, i: u32) -> Option<usize> {
        self.unlink(i);
        let n = self.nodes.get_mut(i as usize)?;
        let key = std::mem::replace(&mut n.key, Arc::from(&[][..]));
        n.value = Bytes::from(Vec::new());
        let size = n.size;
        self.map.remove(&key);
        self.bytes -= size;
        self.free.push(i);
        Some(size)
    }

    fn remove_key(&mut self, key: &[u8]) -> bool {
        match self.map.get(key).copied() {
            Some(i) => self.remove_node(i).is_some(),
            None => false,
        }
    }

    fn get(&mut self, key: &[u8], hash: u64, now: Instant) -> Option<Bytes> {
        self.sketch.increment(hash);
        let i = *self.map.get(key)?;
        let n = self.node(i)?;
        if n.expires <= now {
            self.remove_node(i);
            return None;
        }
        let value = n.value.clone();
        let region = n.region;
        if self.window.head != i && self.main.head != i {
            self.unlink(i);
            self.push_front(i, region);
        }
        Some(value)
    }

    /// Insert or replace; returns how many entries were evicted.
    fn insert(
        &mut self,
        key: &[u8],
        hash: u64,
        value: Bytes,
        expires: Instant,
        policy: Policy,
    ) -> u64 {
        let size = key.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_bytes {
            self.remove_key(key);
            return 0;
        }
        if let Some(&i) = self.map.get(key) {
            let old = self.node(i).map_or(0, |n| n.size);
            if let Some(n) = self.node_mut(i) {
                n.value = value;
                n.expires = expires;
                n.size = size;
            }
            self.bytes = self.bytes - old + size;
        } else {
            let key: Arc<[u8]> = Arc::from(key);
            let node = Node {
                key: Arc::clone(&key),
                value,
                hash,
                expires,
                size,
                region: Region::Window,
                prev: NIL,
                next: NIL,
            };
            let i = match self.free.pop() {
                Some(i) => {
                    if let Some(slot) = self.nodes.get_mut(i as usize) {
                        *slot = node;
                    }
                    i
                }
                None => {
                    self.nodes.push(node);
                    (self.nodes.len() - 1) as u32
                }
            };
            self.map.insert(key, i);
            self.bytes += size;
            let region = match policy {
                Policy::TinyLfu => Region::Window,
                Policy::Lru => Region::Main,
            };
            self.push_front(i, region);
        }
        self.rebalance(policy)
    }

    fn rebalance(&mut self, policy: Policy) -> u64 {
        let mut evicted = 0;
        let main_max = self.max_entries.saturating_sub(self.window_max).max(1);
        // Window overflow: its LRU entry is a candidate for the main region.
        while self.window.len > self.window_max {
            let cand = self.window.tail;
            self.unlink(cand);
            if self.main.len < main_max {
                self.push_front(cand, Region::Main);
                continue;
            }
            let victim = self.main.tail;
            let fc = self.node(cand).map_or(0, |n| self.sketch.estimate(n.hash));
            let fv = self
                .node(victim)
                .map_or(0, |n| self.sketch.estimate(n.hash));
            if fc > fv {
                self.remove_node(victim);
                self.push_front(cand, Region::Main);
            } else {
                // Put it back so remove_node can unlink it.
                self.push_front(cand, Region::Window);
                self.remove_node(cand);
            }
            evicted += 1;
        }
        let total = self.window.len + self.main.len;
        let mut over = total.saturating_sub(self.max_entries);
        if policy == Policy::Lru {
            over = self.main.len.saturating_sub(self.max_entries);
        }
        for _ in 0..over {
            let v = if self.main.tail != NIL {
                self.main.tail
            } else {
                self.window.tail
            };
            if v == NIL {
                break;
            }
            self.remove_node(v);
            evicted += 1;
        }
        while self.bytes > self.max_bytes {
            let v = if self.main.tail != NIL {
                self.main.tail
            } else {
                self.window.tail
            };
            if v == NIL {
                break;
            }
            self.remove_node(v);
            evicted += 1;
        }
        evicted
    }

    fn clear(&mut self) {
        self.map.clear();
        self.nodes.clear();
        self.free.clear();
        self.window = List::EMPTY;
        self.main = List::EMPTY;
        self.bytes = 0;
        self.pending.clear();
    }
}

impl Store {
    pub(crate) fn new(max_entries: usize, max_bytes: usize, policy: Policy) -> Store {
        let per = max_entries.div_ceil(SHARDS).max(1);
        let per_bytes = max_bytes.div_ceil(SHARDS).max(1);
        let window_max = match policy {
            Policy::TinyLfu => (per / 100).max(1),
            Policy::Lru => 0,
        };
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    nodes: Vec::new(),
                    free: Vec::new(),
                    window: List::EMPTY,
                    main: List::EMPTY,
                    bytes: 0,
                    sketch: Sketch::new(per),
                    pending: HashMap::new(),
                    max_entries: per,
                    max_bytes: per_bytes,
                    window_max,
                })
            })
            .collect();
        Store {
            shards,
            policy,
            stats: StoreStats::default(),
            next_ticket: AtomicU64::new(1),
        }
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 59) as usize % SHARDS]
    }

    fn account(&self, s: &Shard, before: (usize, usize)) {
        let (b0, e0) = before;
        let (b1, e1) = (s.bytes, s.map.len());
        if b1 >= b0 {
            self.stats
                .bytes
                .fetch_add((b1 - b0) as u64, Ordering::Relaxed);
        } else {
            self.stats
                .bytes
                .fetch_sub((b0 - b1) as u64, Ordering::Relaxed);
        }
        if e1 >= e0 {
            self.stats
                .entries
                .fetch_add((e1 - e0) as u64, Ordering::Relaxed);
        } else {
            self.stats
                .entries
                .fetch_sub((e0 - e1) as u64, Ordering::Relaxed);
        }
    }

    /// The cached value, if present and not past its TTL cap.
    pub(crate) fn get(&self, key: &[u8], now: Instant) -> Option<Bytes> {
        let hash = hash_key(key);
        let mut s = self.shard(hash).lock();
        let before = (s.bytes, s.map.len());
        let v = s.get(key, hash, now);
        if v.is_none() && s.map.len() != before.1 {
            self.account(&s, before);
        }
        v
    }

    /// A read of `key` is about to go to the server.
    pub(crate) fn begin(&self, key: &[u8]) -> u64 {
        let t = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let hash = hash_key(key);
        self.shard(hash).lock().pending.insert(key.into(), t);
        t
    }

    /// The read with `ticket` got `value`: install it unless `key` was invalidated (or the
    /// store flushed) since [`Store::begin`], or `still_valid` says no (checked under the
    /// shard's lock).
    pub(crate) fn finish(
        &self,
        key: &[u8],
        ticket: u64,
        value: Option<Bytes>,
        expires: Instant,
        still_valid: impl FnOnce() -> bool,
    ) -> bool {
        let hash = hash_key(key);
        let mut s = self.shard(hash).lock();
        let ours = s.pending.get(key) == Some(&ticket);
        if ours {
            s.pending.remove(key);
        }
        let Some(value) = value else { return false };
        if !ours || !still_valid() {
            return false;
        }
        let before = (s.bytes, s.map.len());
        let evicted = s.insert(key, hash, value, expires, self.policy);
        self.account(&s, before);
        if evicted > 0 {
            self.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        true
    }

    /// Forget a read in flight that will not finish (an error).
    pub(crate) fn abandon(&self, key: &[u8], ticket: u64) {
        let hash = hash_key(key);
        let mut s = self.shard(hash).lock();
        if s.pending.get(key) == Some(&ticket) {
            s.pending.remove(key);
        }
    }

    /// Drop `key` and any read of it in flight. True when an entry was dropped.
    pub(crate) fn invalidate(&self, key: &[u8]) -> bool {
        let hash = hash_key(key);
        let mut s = self.shard(hash).lock();
        s.pending.remove(key);
        if !s.map.contains_key(key) {
            return false;
        }
        let before = (s.bytes, s.map.len());
        let hit = s.remove_key(key);
        self.account(&s, before);
        hit
    }

    /// Drop everything, including reads in flight.
    pub(crate) fn clear(&self) {
        for sh in &self.shards {
            let mut s = sh.lock();
            let before = (s.bytes, s.map.len());
            s.clear();
            self.account(&s, before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(s: &str) -> Bytes {
        Bytes::from(s)
    }

    #[test]
    fn bounded_by_entries_and_bytes_and_ttl() {
        let far = Instant::now() + Duration::from_secs(60);
        for policy in [Policy::TinyLfu, Policy::Lru] {
            let st = Store::new(64, 1 << 20, policy);
            for i in 0..1000 {
                let k = format!("k{i}");
                let t = st.begin(k.as_bytes());
                st.finish(k.as_bytes(), t, Some(b("v")), far, || true);
            }
            let n = st.stats.entries.load(Ordering::Relaxed);
            assert!(n <= 64 + 16 && n > 0, "{policy:?}: {n}");
            assert!(st.stats.evictions.load(Ordering::Relaxed) >= 900);
            st.clear();
            assert_eq!(st.stats.entries.load(Ordering::Relaxed), 0);
            assert_eq!(st.stats.bytes.load(Ordering::Relaxed), 0);
        }
        let st = Store::new(1000, 16 * (ENTRY_OVERHEAD + 100), Policy::TinyLfu);
        let big = "x".repeat(98);
        for i in 0..100 {
            let k = format!("k{i}");
            let t = st.begin(k.as_bytes());
            st.finish(k.as_bytes(), t, Some(b(&big)), far, || true);
        }
        assert!(st.stats.bytes.load(Ordering::Relaxed) <= 16 * (ENTRY_OVERHEAD as u64 + 100));
        let st = Store::new(10, 1 << 20, Policy::TinyLfu);
        let t = st.begin(b"k");
        st.finish(b"k", t, Some(b("v")), Instant::now(), || true);
        assert_eq!(
            st.get(b"k", Instant::now() + Duration::from_millis(1)),
            None
        );
    }

    #[test]
    fn an_invalidated_read_is_not_installed() {
        let far = Instant::now() + Duration::from_secs(60);
        let st = Store::new(10, 1 << 20, Policy::TinyLfu);
        let t = st.begin(b"k");
        assert!(!st.invalidate(b"k"));
        assert!(!st.finish(b"k", t, Some(b("old")), far, || true));
        assert_eq!(st.get(b"k", Instant::now()), None);
        let t = st.begin(b"k");
        st.clear();
        assert!(!st.finish(b"k", t, Some(b("old")), far, || true));
        let t = st.begin(b"k");
        assert!(st.finish(b"k", t, Some(b("new")), far, || true));
        assert_eq!(st.get(b"k", Instant::now()), Some(b("new")));
        assert!(st.invalidate(b"k"));
        assert_eq!(st.get(b"k", Instant::now()), None);
    }
}
