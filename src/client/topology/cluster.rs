//! The cluster topology: for every attempt of a command, which node it goes to (from the
//! command's slot, whether it reads, and the previous attempt's error), and what must
//! precede it on that connection (`ASKING`).
//!
//! The rules (see `docs/cluster.md`):
//! - A command goes to the primary of its keys' slot; all its keys must share one slot
//!   (else a client-side `CROSSSLOT` error, nothing sent). Read-only commands may go to a
//!   replica ([`ReplicaReads`]), over connections that sent `READONLY`.
//! - `MOVED slot addr`: the slot map is refreshed (one refresh at a time, however many
//!   threads hit it) and the command is sent to `addr`. `ASK slot addr`: `ASKING` + the
//!   command on `addr`, once, with no map change. At most 5 redirects per command (the
//!   attempt loop counts them, `client/run.rs`).
//! - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, connection failures: the client's retry policy
//!   (backoff, bounded attempts; a refresh first when a node may be gone), then the typed
//!   error.
//! - Each node has its own circuit breaker, asked on every attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::{Call, Node, Previous, Reads, Topology};
use crate::client::breaker::{Breaker, BreakerOptions};
use crate::client::reader_sync::ReaderSync;
use crate::client::retry::RetryPolicy;
use crate::client::run::{attempt_loop, Tally};
use crate::client::{Endpoint, Retry, Target};
use crate::cluster::{AddrMap, Nodes, Refresher, SlotMap};
use crate::cmd::keys::SlotOf;
use crate::cmd::Cmd;
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result, ServerError, ServerErrorKind};
use crate::pool::PooledConnection;

/// Where read-only commands go on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReplicaReads {
    /// Every command goes to the primary of its slot (the default): reads see every
    /// acknowledged write.
    #[default]
    PrimaryOnly,
    /// Reads go to a replica of the slot's shard (in turn, when there are several), the
    /// primary when it has none. Replication is asynchronous: a read may miss a write
    /// acknowledged a moment ago.
    PreferReplica,
    /// Reads go to the primary and its replicas in turn.
    RoundRobin,
}

/// The cluster: nodes and slot map, per-node breakers, the read policy.
pub(crate) struct ClusterTopology {
    pub(crate) nodes: Arc<Nodes>,
    _refresher: Refresher,
    breakers: RwLock<AddrMap<Arc<Breaker>>>,
    breaker_options: BreakerOptions,
    replica_reads: ReplicaReads,
    /// Per replica address: whether its replication link is up (for `ReplicaInSync`).
    replica_sync: RwLock<AddrMap<Arc<ReaderSync>>>,
    /// The writer endpoint as configured (the first seed, or `url()`): its own pool and
    /// breaker, which `Client::pool_stats`, `health` and `connection` report; commands
    /// never use it.
    pub(crate) seed: Target,
    /// A reader endpoint configured besides the cluster (reported, never used).
    pub(crate) reader: Option<Target>,
}

/// The node one attempt goes to.
pub(crate) struct Hop<'t> {
    nodes: &'t Nodes,
    pub(super) addr: HopAddr,
    breaker: Arc<Breaker>,
    /// Over a `READONLY` connection (a replica read).
    pub(super) replica: bool,
    /// `ASKING` first.
    pub(super) asking: bool,
}

/// The address of a hop: a node of the slot map snapshot it was chosen from (the snapshot
/// held, no copy of the address: routing a command allocates nothing), or the one a
/// redirect named.
pub(crate) enum HopAddr {
    /// The primary (`None`) or a replica of `map.shards()[shard]`.
    Map {
        map: Arc<SlotMap>,
        shard: usize,
        replica: Option<usize>,
    },
    /// Named by a redirect.
    Given(String),
}

impl HopAddr {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            HopAddr::Map {
                map,
                shard,
                replica,
            } => {
                let shard = &map.shards()[*shard];
                match replica {
                    None => &shard.primary,
                    Some(r) => &shard.replicas[*r],
                }
            }
            HopAddr::Given(addr) => addr,
        }
    }
}

impl std::fmt::Debug for HopAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for HopAddr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Node for Hop<'_> {
    fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn checkout(&self, start: Instant, unchecked: bool) -> Result<PooledConnection> {
        let pool = match &self.addr {
            // A primary of the map: its pool from the map's cache (no address hashed).
            HopAddr::Map {
                map,
                shard,
                replica: None,
            } => self.nodes.primary_pool(map, *shard)?,
            _ => self.nodes.pool(self.addr.as_str(), self.replica)?,
        };
        pool.get_since(start, unchecked)
    }

    /// As on a single server: a resendable call's first attempt may take a recently
    /// returned connection unchecked. If the node closed it meanwhile, the attempt loop
    /// resends on a checked connection without refreshing the slot map (a stale connection
    /// says nothing about the topology; a node that is really gone fails the checked
    /// attempt, and that failure refreshes).
    fn trusts_resendable(&self) -> bool {
        self.nodes.trusts_resendable()
    }

    fn endpoint(&self) -> Endpoint {
        if self.replica {
            Endpoint::Reader
        } else {
            Endpoint::Writer
        }
    }

    fn asking(&self) -> bool {
        self.asking
    }
}

impl Topology for ClusterTopology {
    type Node<'t> = Hop<'t>;

    const PERMIT_PER_CALL: bool = false;
    const FOLLOWS_REDIRECTS: bool = true;

    fn epoch(&self) -> u64 {
        self.nodes.generation()
    }

    /// A redirect goes where the error says (`ASKING` first for `ASK`); anything else to
    /// the node the slot map names now.
    fn choose<'t>(
        &'t self,
        call: &Call,
        previous: Option<Previous<'_, Hop<'t>>>,
    ) -> Result<Hop<'t>> {
        if let Some(Previous {
            error: e,
            redirected: true,
            ..
        }) = previous
        {
            if let Some((_, addr)) = e.redirect() {
                let ask = e.kind() == ErrorKind::Server(ServerErrorKind::Ask);
                return Ok(Hop {
                    nodes: &self.nodes,
                    addr: HopAddr::Given(addr.to_owned()),
                    breaker: self.breaker(addr),
                    replica: false,
                    asking: ask,
                });
            }
        }
        self.first_hop(call.slot, call.reads)
    }

    /// `MOVED`: learn the new map (one refresh at a time). A retry after a failure that
    /// may mean a node is gone, or after no owner was known: refresh first.
    fn before_next(&self, failed: Option<&Hop<'_>>, error: &Error, redirected: bool, epoch: u64) {
        let kind = error.kind();
        if redirected {
            if kind != ErrorKind::Server(ServerErrorKind::Ask) {
                if let Err(re) = self.nodes.refresh_after(epoch) {
                    log::debug!("cluster: refresh after MOVED failed: {re}");
                }
            }
            return;
        }
        let node_gone = failed.is_none()
            || matches!(
                kind,
                ErrorKind::Connect
                    | ErrorKind::Broken
                    | ErrorKind::Io
                    | ErrorKind::Timeout
                    | ErrorKind::CircuitOpen
                    | ErrorKind::Server(
                        ServerErrorKind::ClusterDown
                            | ServerErrorKind::ReadOnly
                            | ServerErrorKind::MasterDown
                    )
            );
        if node_gone {
            let _ = self.nodes.refresh_after(epoch);
        }
    }
}

pub(crate) fn cross_slot(a: u16, b: u16) -> Error {
    Error::from(ServerError::new(format!(
        "CROSSSLOT keys in request don't hash to the same slot (slots {a} and {b}; checked \
         by the client, nothing was sent): give keys that must be used together a common \
         {{hash tag}}"
    )))
}

pub(crate) fn no_owner(slot: u16) -> Error {
    Error::from(ServerError::new(format!(
        "CLUSTERDOWN Hash slot {slot} is not served by any node the client knows"
    )))
}

/// `SCAN` without a hash tag in its pattern would walk one node's keys of a cluster's
/// several: refused with a pointer to the cluster-wide scan, rather than silently partial.
pub(crate) fn one_node_scan(c: &Cmd, slot: Option<u16>) -> Result<()> {
    if slot.is_none() && c.name().eq_ignore_ascii_case(b"SCAN") {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "SCAN on a cluster client would cover one node's keys only: use \
             Client::scan_cluster (every primary), a MATCH pattern with a literal {hash tag} \
             (the node of that slot), or a Connection to one node. Nothing was sent",
        ));
    }
    Ok(())
}

pub(crate) fn slot_or_cross(s: SlotOf) -> Result<Option<u16>> {
    match s {
        SlotOf::Any => Ok(None),
        SlotOf::Slot(s) => Ok(Some(s)),
        SlotOf::Cross(a, b) => Err(cross_slot(a, b)),
    }
}

impl ClusterTopology {
    /// The topology over discovered `nodes`, with its refresh thread started.
    pub(crate) fn new(
        nodes: Nodes,
        breaker_options: BreakerOptions,
        replica_reads: ReplicaReads,
        refresh_interval: Duration,
        (seed, reader): (Target, Option<Target>),
    ) -> Result<ClusterTopology> {
        let nodes = Arc::new(nodes);
        let refresher = Refresher::start(Arc::downgrade(&nodes), refresh_interval)?;
        Ok(ClusterTopology {
            nodes,
            _refresher: refresher,
            breakers: RwLock::new(AddrMap::default()),
            breaker_options,
            replica_reads,
            replica_sync: RwLock::new(AddrMap::default()),
            seed,
            reader,
        })
    }

    /// Whether the replica at `addr` was in sync at its last check (see [`ReaderSync`]).
    fn replica_in_sync(&self, addr: &str) -> bool {
        // (The read guard must be gone before the write lock is taken.)
        let known = self.replica_sync.read().get(addr).cloned();
        let sync = match known {
            Some(s) => s,
            None => self
                .replica_sync
                .write()
                .entry(addr.to_owned())
                .or_insert_with(|| Arc::new(ReaderSync::new()))
                .clone(),
        };
        match self.nodes.pool(addr, true) {
            Ok(pool) => sync.in_sync(&pool),
            Err(_) => false,
        }
    }

    /// The breaker of the node at `addr`, made on first use.
    pub(crate) fn breaker(&self, addr: &str) -> Arc<Breaker> {
        if let Some(x) = self.breakers.read().get(addr) {
            return x.clone();
        }
        let mut b = self.breakers.write();
        if let Some(x) = b.get(addr) {
            return x.clone();
        }
        let x = Arc::new(Breaker::new("cluster-node", self.breaker_options.clone()));
        b.insert(addr.to_owned(), x.clone());
        x
    }

    /// The node for a command of `slot` (`None`: keyless) from the slot map.
    fn first_hop(&self, slot: Option<u16>, read: Reads) -> Result<Hop<'_>> {
        let map = self.nodes.map();
        let shard = match slot {
            Some(s) => map.shard_index(s).ok_or_else(|| no_owner(s))?,
            None if map.shards().is_empty() => {
                return Err(Error::from(ServerError::new(
                    "CLUSTERDOWN no primary known",
                )))
            }
            None => 0,
        };
        let replicas = &map.shards()[shard].replicas;
        // The replicas a read may go to, by index (all of them unless only those in sync).
        let in_sync: Option<Vec<usize>> =
            if read == Reads::ReplicaInSync && self.replica_reads != ReplicaReads::PrimaryOnly {
                Some(
                    (0..replicas.len())
                        .filter(|&r| self.replica_in_sync(&replicas[r]))
                        .collect(),
                )
            } else {
                None
            };
        let count = in_sync.as_ref().map_or(replicas.len(), Vec::len);
        let nth = |k: usize| in_sync.as_ref().map_or(k, |v| v[k]);
        let read = read != Reads::Primary;
        let replica = match (read, self.replica_reads) {
            (true, ReplicaReads::PreferReplica) if count > 0 => {
                Some(nth(self.nodes.next_turn() % count))
            }
            (true, ReplicaReads::RoundRobin) if count > 0 => {
                match self.nodes.next_turn() % (count + 1) {
                    0 => None,
                    turn => Some(nth(turn - 1)),
                }
            }
            _ => None,
        };
        let breaker = match replica {
            // A primary's breaker is kept in the map (no address hashed per command).
            None => map.primary_local(shard, || self.breaker(&map.shards()[shard].primary)),
            Some(r) => self.breaker(&replicas[r]),
        };
        let addr = HopAddr::Map {
            map,
            shard,
            replica,
        };
        Ok(Hop {
            nodes: &self.nodes,
            breaker,
            addr,
            replica: replica.is_some(),
            asking: false,
        })
    }

    /// Run `f` on the right node through the client's one attempt loop, following
    /// redirects and retrying per `policy`, without metrics or observers (the caller
    /// counts the call). Returns the result, the attempts made and whether the last one
    /// read from a replica. (The split pipeline's entry point.)
    pub(crate) fn run<T>(
        &self,
        slot: Option<u16>,
        read: Reads,
        retry: Retry,
        policy: &RetryPolicy,
        on_retry: &mut dyn FnMut(&Error, Duration),
        f: impl FnMut(&Connection) -> Result<T>,
    ) -> (Result<T>, u32, bool) {
        let call = Call { slot, reads: read };
        let mut tally = Tally::NEW;
        let r = attempt_loop(
            self,
            &call,
            Instant::now(),
            policy,
            || retry,
            on_retry,
            f,
            &mut tally,
        );
        (r, tally.attempts, tally.endpoint == Endpoint::Reader)
    }
}
