//! Valkey Cluster topology: which node owns which slot, a pool per node, and the refresh
//! of that knowledge (periodic, and on demand with one refresh at a time).
//!
//! This layer knows nodes and slots; the client layer (`client/topology/cluster.rs`)
//! decides, for every attempt of a command, which node it goes to and follows redirects.

mod addr_map;
mod discovery;

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::cmd::SLOTS;
use crate::config::{Addr, ConnectionConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{Pool, PoolOptions};

pub(crate) use addr_map::AddrMap;
pub(crate) use discovery::parse_shards;

/// One shard: a primary and its replicas, as `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) primary: String,
    pub(crate) replicas: Vec<String>,
}

/// The slot map: for each of the 16384 slots, the shard that serves it.
#[derive(Debug, Clone)]
pub(crate) struct SlotMap {
    owner: Vec<u16>,
    shards: Vec<Shard>,
    /// Each shard's primary pool, filled on first use by [`Nodes::primary_pool`]: a
    /// command routed by this map takes its pool without hashing the address. (The pool
    /// `Nodes::pool` gives for that address: pools are never replaced.)
    primary_pools: Vec<OnceLock<Pool>>,
    /// A value the layer above keeps per shard primary for the life of this map, filled on
    /// first use by [`SlotMap::primary_local`] (the client's per-node breaker: found
    /// without hashing the address on every command).
    primary_locals: Vec<OnceLock<Arc<dyn Any + Send + Sync>>>,
}

const NO_OWNER: u16 = u16::MAX;

impl SlotMap {
    /// A map from `(start, end, shard)` ranges.
    pub(crate) fn new(shards: Vec<Shard>, ranges: &[(u16, u16, usize)]) -> SlotMap {
        let mut owner = vec![NO_OWNER; usize::from(SLOTS)];
        for &(start, end, shard) in ranges {
            for s in start..=end.min(SLOTS - 1) {
                owner[usize::from(s)] = shard as u16;
            }
        }
        let primary_pools = shards.iter().map(|_| OnceLock::new()).collect();
        let primary_locals = shards.iter().map(|_| OnceLock::new()).collect();
        SlotMap {
            owner,
            shards,
            primary_pools,
            primary_locals,
        }
    }

    /// The value kept for the primary of `shard` (one type per map: the client's per-node
    /// breaker), made by `make` on first use. The same value `make` returns for that
    /// address is expected (a cache, not a new identity).
    pub(crate) fn primary_local<T: Any + Send + Sync>(
        &self,
        shard: usize,
        make: impl FnOnce() -> Arc<T>,
    ) -> Arc<T> {
        let Some(cell) = self.primary_locals.get(shard) else {
            return make();
        };
        if let Some(kept) = cell.get() {
            if let Ok(v) = Arc::clone(kept).downcast::<T>() {
                return v;
            }
            // Another type kept here: not cached for this one.
            return make();
        }
        let v = make();
        // (Another thread may have set it first: the same value, by the contract above.)
        let _ = cell.set(Arc::clone(&v) as Arc<dyn Any + Send + Sync>);
        v
    }

    /// The shard serving `slot`, if any.
    /// The index in [`SlotMap::shards`] of the shard that owns `slot`.
    pub(crate) fn shard_index(&self, slot: u16) -> Option<usize> {
        let i = usize::from(*self.owner.get(usize::from(slot))?);
        (i < self.shards.len()).then_some(i)
    }

    pub(crate) fn shard(&self, slot: u16) -> Option<&Shard> {
        let i = *self.owner.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// Every shard (that owns at least one slot).
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Slots with no owner.
    pub(crate) fn uncovered(&self) -> usize {
        self.owner.iter().filter(|&&o| o == NO_OWNER).count()
    }
}

/// The smallest time between two on-demand refreshes.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(50);

/// The nodes of one cluster: slot map, a pool per node (two for a node that serves
/// replica reads: its `READONLY` connections are kept apart), and the refresher thread.
pub(crate) struct Nodes {
    base: ConnectionConfig,
    pool_options: PoolOptions,
    seeds: Vec<String>,
    map: RwLock<Arc<SlotMap>>,
    generation: AtomicU64,
    refresh: Mutex<Option<Instant>>,
    /// Pools by address: `[0]` plain connections, `[1]` `READONLY` ones (replica reads).
    pools: [RwLock<AddrMap<Pool>>; 2],
    refreshes: AtomicU64,
    round_robin: AtomicUsize,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("seeds", &self.seeds)
            .field("shards", &self.map.read().shards)
            .finish()
    }
}

fn addr_of(config: &ConnectionConfig) -> Result<String> {
    match &config.addr {
        Addr::Tcp { host, port } => Ok(format!("{host}:{port}")),
        Addr::Unix(_) => Err(Error::config(
            "a cluster seed must be a TCP address (host:port), not a Unix socket",
        )),
    }
}

fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

impl Nodes {
    /// Discover the cluster from `seeds` (tried in order until one answers).
    pub(crate) fn connect(seeds: &[ConnectionConfig], pool_options: PoolOptions) -> Result<Nodes> {
        let Some(base) = seeds.first().cloned() else {
            return Err(Error::config("a cluster needs at least one seed node"));
        };
        let seeds = seeds.iter().map(addr_of).collect::<Result<Vec<_>>>()?;
        let nodes = Nodes::unconnected(base, pool_options, seeds, SlotMap::new(Vec::new(), &[]));
        nodes.refresh_now()?;
        Ok(nodes)
    }

    /// Nodes with a fixed slot map and nothing connected (unit tests of the node choice).
    #[cfg(test)]
    pub(crate) fn fixed(map: SlotMap) -> Nodes {
        let nodes = Nodes::unconnected(
            ConnectionConfig::new("127.0.0.1", 1),
            PoolOptions::default(),
            Vec::new(),
            map,
        );
        nodes.generation.store(1, Ordering::SeqCst);
        nodes
    }

    /// Nodes with `map` as their slot map (generation 0), no pool opened yet.
    fn unconnected(
        base: ConnectionConfig,
        pool_options: PoolOptions,
        seeds: Vec<String>,
        map: SlotMap,
    ) -> Nodes {
        Nodes {
            base,
            pool_options,
            seeds,
            map: RwLock::new(Arc::new(map)),
            generation: AtomicU64::new(0),
            refresh: Mutex::new(None),
            pools: [
                RwLock::new(AddrMap::default()),
                RwLock::new(AddrMap::default()),
            ],
            refreshes: AtomicU64::new(0),
            round_robin: AtomicUsize::new(0),
        }
    }

    /// The current slot map.
    pub(crate) fn map(&self) -> Arc<SlotMap> {
        self.map.read().clone()
    }

    /// Bumped by every completed refresh.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many refreshes ran (periodic and on demand).
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// True when the nodes' pools may hand a resendable call's first attempt an unchecked
    /// connection (`PoolOptions::skip_check_when_resendable` is not zero).
    pub(crate) fn trusts_resendable(&self) -> bool {
        !self.pool_options.skip_check_when_resendable.is_zero()
    }

    /// A rotating counter for round-robin choices.
    pub(crate) fn next_turn(&self) -> usize {
        self.round_robin.fetch_add(1, Ordering::Relaxed)
    }

    /// The pool of `addr` (`read_only`: connections that sent `READONLY`), made on first use.
    pub(crate) fn pool(&self, addr: &str, read_only: bool) -> Result<Pool> {
        let map = &self.pools[usize::from(read_only)];
        if let Some(p) = map.read().get(addr) {
            return Ok(p.clone());
        }
        let mut pools = map.write();
        if let Some(p) = pools.get(addr) {
            return Ok(p.clone());
        }
        let config = self.node_config(addr, read_only)?;
        let pool = Pool::new(config, self.pool_options.clone())?;
        pools.insert(addr.to_owned(), pool.clone());
        Ok(pool)
    }

    /// The connection settings of the node at `addr` (`host:port`): the first seed's,
    /// with the address replaced (`read_only`: send `READONLY` in the handshake).
    /// The pool of the primary of `map.shards()[shard]` (`map`: a map of these nodes), from
    /// the map's own cache after its first use.
    pub(crate) fn primary_pool(&self, map: &SlotMap, shard: usize) -> Result<Pool> {
        if let Some(pool) = map.primary_pools.get(shard).and_then(OnceLock::get) {
            return Ok(pool.clone());
        }
        let Some(primary) = map.shards.get(shard) else {
            return Err(Error::new(ErrorKind::Protocol, "cluster: no such shard"));
        };
        let pool = self.pool(&primary.primary, false)?;
        // (Another thread may have set it first: the same pool.)
        let _ = map.primary_pools[shard].set(pool.clone());
        Ok(pool)
    }

    pub(crate) fn node_config(&self, addr: &str, read_only: bool) -> Result<ConnectionConfig> {
        let Some((host, port)) = split_addr(addr) else {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("cluster: not a host:port address: {addr:?}"),
            ));
        };
        let mut config = self.base.clone();
        // TLS settings (and the server name checked) stay those of the seed: a redirect
        // never downgrades TLS.
        config.addr = Addr::Tcp {
            host: host.to_owned(),
            port,
        };
        config.cluster_read_only = read_only;
        Ok(config)
    }

    /// Refresh unless another thread refreshed since `seen` (the generation the caller
    /// read before its failed attempt): however many threads hit MOVED at once, one
    /// refresh runs and the others wait for it.
    pub(crate) fn refresh_after(&self, seen: u64) -> Result<()> {
        let mut last = self.refresh.lock();
        if self.generation() != seen {
            return Ok(());
        }
        if let Some(at) = *last {
            if at.elapsed() < MIN_REFRESH_GAP {
                return Ok(());
            }
        }
        let r = self.discover();
        *last = Some(Instant::now());
        r
    }

    /// Refresh now (the periodic refresher, and startup).
    pub(crate) fn refresh_now(&self) -> Result<()> {
        let mut last = self.refresh.lock();
        let r = self.discover();
        *last = Some(Instant::now());
        r
    }

    /// Ask the known primaries, then the seeds, until one answers with a full map.
    fn discover(&self) -> Result<()> {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let map = self.map();
        let mut candidates: Vec<String> = map
            .shards()
            .iter()
            .flat_map(|s| std::iter::once(s.primary.clone()).chain(s.replicas.clone()))
            .collect();
        for s in &self.seeds {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        let mut last = None;
        let mut best: Option<SlotMap> = None;
        for addr in candidates {
            match self.ask(&addr) {
                Ok(m) if m.uncovered() == 0 => {
                    best = Some(m);
                    break;
                }
                Ok(m) => {
                    if best
                        .as_ref()
                        .map_or(true, |b| m.uncovered() < b.uncovered())
                    {
                        best = Some(m);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        match best {
            Some(m) => {
                *self.map.write() = Arc::new(m);
                self.generation.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            None => Err(last.unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Connect,
                    "cluster: no node answered CLUSTER SHARDS",
                )
            })),
        }
    }

    fn ask(&self, addr: &str) -> Result<SlotMap> {
        use crate::cmd::{cmd, Execute};
        let pool = self.pool(addr, false)?;
        let conn = pool.get()?;
        match conn.exec(&cmd("CLUSTER").arg("SHARDS")) {
            Ok(v) => parse_shards(&v),
            Err(e) if e.kind() == ErrorKind::Server(crate::ServerErrorKind::Other) => {
                // Before Redis 7: CLUSTER SLOTS.
                let v = conn.exec(&cmd("CLUSTER").arg("SLOTS"))?;
                discovery::parse_slots(&v)
            }
            Err(e) => Err(e),
        }
    }
}

/// A background thread that refreshes the slot map every `interval`; stopped and joined
/// on drop.
pub(crate) struct Refresher {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Refresher {
    pub(crate) fn start(nodes: Weak<Nodes>, interval: Duration) -> Result<Refresher> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("valkit-cluster".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(nodes) = nodes.upgrade() else { return };
                if let Err(e) = nodes.refresh_now() {
                    log::warn!("cluster: periodic slot map refresh failed: {e}");
                }
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start a thread: {e}")))?;
        Ok(Refresher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_local_is_made_once_per_shard_and_map() {
        let shard = |p: &str| Shard {
            primary: p.into(),
            replicas: vec![],
        };
        let map = SlotMap::new(
            vec![shard("a:1"), shard("b:2")],
            &[(0, 99, 0), (100, 199, 1)],
        );
        let made = AtomicUsize::new(0);
        let make = |v: u32| {
            made.fetch_add(1, Ordering::Relaxed);
            Arc::new(v)
        };
        let a = map.primary_local(0, || make(10));
        let again = map.primary_local(0, || make(11));
        assert!(Arc::ptr_eq(&a, &again), "kept, not made again");
        assert_eq!(*map.primary_local(1, || make(20)), 20, "per shard");
        assert_eq!(made.load(Ordering::Relaxed), 2);
        // Another type, or a shard the map does not have: made each time, never wrong.
        assert_eq!(*map.primary_local(0, || Arc::new("other")), "other");
        assert_eq!(*map.primary_local(9, || make(90)), 90);
        // A new map (a refresh) starts empty.
        let fresh = SlotMap::new(vec![shard("a:1")], &[(0, 99, 0)]);
        assert_eq!(*fresh.primary_local(0, || make(12)), 12);
    }

    #[test]
    fn slot_map_lookup() {
        let shards = vec![
            Shard {
                primary: "a:1".into(),
                replicas: vec![],
            },
            Shard {
                primary: "b:2".into(),
                replicas: vec!["c:3".into()],
            },
        ];
        let m = SlotMap::new(shards, &[(0, 100, 0), (101, 16383, 1)]);
        assert_eq!(m.shard(0).unwrap().primary, "a:1");
        assert_eq!(m.shard(100).unwrap().primary, "a:1");
        assert_eq!(m.shard(101).unwrap().primary, "b:2");
        assert_eq!(m.uncovered(), 0);
        assert_eq!(split_addr("127.0.0.1:7000"), Some(("127.0.0.1", 7000)));
        assert_eq!(split_addr("[::1]:7000"), Some(("::1", 7000)));
        assert_eq!(split_addr("nope"), None);
    }
}
