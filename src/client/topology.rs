//! The cluster topology behind a [`Client`]: for every attempt of a command, which node it
//! goes to (from the command's keys, whether it reads, and the previous attempt's error),
//! and what must precede it on that connection (`ASKING`).
//!
//! The rules (see `docs/cluster.md`):
//! - A command goes to the primary of its keys' slot; all its keys must share one slot
//!   (else a client-side `CROSSSLOT` error, nothing sent). Read-only commands may go to a
//!   replica ([`ReplicaReads`]), over connections that sent `READONLY`.
//! - `MOVED slot addr`: the slot map is refreshed (one refresh at a time, however many
//!   threads hit it) and the command is sent to `addr`. `ASK slot addr`: `ASKING` + the
//!   command on `addr`, once, with no map change. At most 5 redirects per command.
//! - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, connection failures: the client's retry policy
//!   (backoff, bounded attempts; a refresh first when a node may be gone), then the typed
//!   error.
//! - Keyless commands: `SCRIPT`, `FUNCTION`, `FLUSHDB`, `FLUSHALL` run on every primary
//!   (first reply returned); `DBSIZE` is summed and `KEYS` concatenated over the primaries;
//!   `SCAN` and anything else keyless goes to the first primary (use
//!   [`Client::scan_cluster`] to scan every primary).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;

use super::breaker::{Breaker, BreakerOptions};
use super::reader_sync::ReaderSync;
use super::retry::{is_availability_failure, RetryPolicy};
use super::routing::CommandName;
use super::{Client, CommandEvent, Endpoint, Retry};
use crate::cluster::{Nodes, Refresher};
use crate::cmd::keys::{slot_of, SlotOf};
use crate::cmd::{cmd, Cmd, Execute, ReadFrom};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result, ServerError, ServerErrorKind};
use crate::pool::PoolOptions;
use crate::resp::Value;

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

/// Where a command may be read from on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// The primary only (writes, and reads pinned to the writer).
    Primary,
    /// A replica, per [`ReplicaReads`].
    Replica,
    /// A replica whose replication link is up ([`ReadFrom::ReaderWhenInSync`]), checked
    /// per replica at most once a second; the primary when none is.
    ReplicaInSync,
}

impl Reads {
    /// For a command (or pipeline) that is `read_only`, with its `.read_from` hint.
    pub(crate) fn of(read_only: bool, hint: Option<ReadFrom>) -> Reads {
        match (read_only, hint) {
            (false, _) | (true, Some(ReadFrom::Writer)) => Reads::Primary,
            (true, Some(ReadFrom::ReaderWhenInSync)) => Reads::ReplicaInSync,
            (true, _) => Reads::Replica,
        }
    }
}

/// The most redirects (MOVED + ASK) one command follows.
pub(crate) const MAX_REDIRECTS: u32 = 5;

/// The cluster: nodes and slot map, per-node breakers, the read policy.
pub(crate) struct ClusterTopology {
    pub(crate) nodes: Arc<Nodes>,
    _refresher: Refresher,
    breakers: RwLock<HashMap<String, Arc<Breaker>>>,
    breaker_options: BreakerOptions,
    replica_reads: ReplicaReads,
    /// Per replica address: whether its replication link is up (for `ReplicaInSync`).
    replica_sync: RwLock<HashMap<String, Arc<ReaderSync>>>,
}

/// The node one attempt goes to.
#[derive(Debug, Clone)]
struct Hop {
    addr: String,
    /// Over a `READONLY` connection (a replica read).
    replica: bool,
    /// `ASKING` first.
    asking: bool,
}

pub(super) fn cross_slot(a: u16, b: u16) -> Error {
    Error::from(ServerError::new(format!(
        "CROSSSLOT keys in request don't hash to the same slot (slots {a} and {b}; checked \
         by the client, nothing was sent): give keys that must be used together a common \
         {{hash tag}}"
    )))
}

pub(super) fn no_owner(slot: u16) -> Error {
    Error::from(ServerError::new(format!(
        "CLUSTERDOWN Hash slot {slot} is not served by any node the client knows"
    )))
}

/// `SCAN` without a hash tag in its pattern would walk one node's keys of a cluster's
/// several: refused with a pointer to the cluster-wide scan, rather than silently partial.
pub(super) fn one_node_scan(c: &Cmd, slot: Option<u16>) -> Result<()> {
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

/// What a keyless command does on a cluster.
enum Keyless {
    /// Run on every primary, return the first reply.
    AllPrimaries,
    /// Run on every primary, add the integer replies.
    Sum,
    /// Run on every primary, concatenate the array replies.
    Concat,
    /// Run on one node.
    One,
}

fn keyless_kind(c: &Cmd) -> Keyless {
    let name = c.name();
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    if is("SCRIPT") || is("FUNCTION") || is("FLUSHDB") || is("FLUSHALL") {
        Keyless::AllPrimaries
    } else if is("DBSIZE") {
        Keyless::Sum
    } else if is("KEYS") {
        Keyless::Concat
    } else {
        Keyless::One
    }
}

/// The fan-out rule of a keyless command, `None` for a command with keys or one that
/// runs on one node.
fn fan_out_kind(c: &Cmd) -> Option<Keyless> {
    if slot_of(c) != SlotOf::Any {
        return None;
    }
    match keyless_kind(c) {
        Keyless::One => None,
        k => Some(k),
    }
}

impl ClusterTopology {
    pub(crate) fn connect(
        seeds: &[crate::config::ConnectionConfig],
        pool: PoolOptions,
        breaker_options: BreakerOptions,
        replica_reads: ReplicaReads,
        refresh_interval: Duration,
    ) -> Result<ClusterTopology> {
        let nodes = Arc::new(Nodes::connect(seeds, pool)?);
        let refresher = Refresher::start(Arc::downgrade(&nodes), refresh_interval)?;
        Ok(ClusterTopology {
            nodes,
            _refresher: refresher,
            breakers: RwLock::new(HashMap::new()),
            breaker_options,
            replica_reads,
            replica_sync: RwLock::new(HashMap::new()),
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

    pub(super) fn breaker(&self, addr: &str) -> Arc<Breaker> {
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

    /// The first node for a command of `slot` (`None`: keyless).
    fn first_hop(&self, slot: Option<u16>, read: Reads) -> Result<Hop> {
        let map = self.nodes.map();
        let shard = match slot {
            Some(s) => map.shard(s).ok_or_else(|| no_owner(s))?,
            None => map
                .shards()
                .first()
                .ok_or_else(|| Error::from(ServerError::new("CLUSTERDOWN no primary known")))?,
        };
        let in_sync: Vec<String>;
        let replicas =
            if read == Reads::ReplicaInSync && self.replica_reads != ReplicaReads::PrimaryOnly {
                in_sync = shard
                    .replicas
                    .iter()
                    .filter(|r| self.replica_in_sync(r))
                    .cloned()
                    .collect();
                &in_sync
            } else {
                &shard.replicas
            };
        let read = read != Reads::Primary;
        let pick = |addr: &String, replica| Hop {
            addr: addr.clone(),
            replica,
            asking: false,
        };
        Ok(match (read, self.replica_reads) {
            (true, ReplicaReads::PreferReplica) if !replicas.is_empty() => {
                pick(&replicas[self.nodes.next_turn() % replicas.len()], true)
            }
            (true, ReplicaReads::RoundRobin) if !replicas.is_empty() => {
                let turn = self.nodes.next_turn() % (replicas.len() + 1);
                if turn == 0 {
                    pick(&shard.primary, false)
                } else {
                    pick(&replicas[turn - 1], true)
                }
            }
            _ => pick(&shard.primary, false),
        })
    }

    /// Run `f` on the right node, following redirects and retrying per `policy`.
    /// Returns the result, the attempts made and whether the last one read from a replica.
    pub(super) fn run<T>(
        &self,
        slot: Option<u16>,
        read: Reads,
        retry: Retry,
        policy: &RetryPolicy,
        on_retry: &mut dyn FnMut(&Error, Duration),
        mut f: impl FnMut(&Connection) -> Result<T>,
    ) -> (Result<T>, u32, bool) {
        let mut next: Option<Hop> = None;
        let mut redirects = 0;
        let mut attempts = 0;
        let mut delay = Duration::ZERO;
        loop {
            let generation = self.nodes.generation();
            let hop = match next.take() {
                Some(h) => h,
                None => match self.first_hop(slot, read) {
                    Ok(h) => h,
                    Err(e) => {
                        // No owner known: refresh and try again within the budget.
                        attempts += 1;
                        if retry != Retry::Never && attempts < policy.attempts {
                            let _ = self.nodes.refresh_after(generation);
                            delay = policy.backoff.delay(attempts, delay, rand::random());
                            on_retry(&e, delay);
                            std::thread::sleep(delay);
                            continue;
                        }
                        return (Err(e), attempts, false);
                    }
                },
            };
            attempts += 1;
            let breaker = self.breaker(&hop.addr);
            let r = breaker.acquire().and_then(|permit| {
                let r = self
                    .nodes
                    .pool(&hop.addr, hop.replica)
                    .and_then(|p| p.get())
                    .and_then(|conn| {
                        if hop.asking {
                            conn.exec(&cmd("ASKING"))?;
                        }
                        let r = f(&conn);
                        if let Err(e) = &r {
                            if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                                conn.close("READONLY: the node is a replica now");
                            }
                        }
                        r
                    });
                let failed = r
                    .as_ref()
                    .err()
                    .is_some_and(|e| is_availability_failure(e) && e.redirect().is_none());
                breaker.record(permit, failed);
                r
            });
            let e = match r {
                Ok(v) => return (Ok(v), attempts, hop.replica),
                Err(e) => e,
            };
            let kind = e.kind();
            if let (Some((_, addr)), true) = (e.redirect(), redirects < MAX_REDIRECTS) {
                redirects += 1;
                attempts -= 1; // a redirect is not a failed attempt
                let ask = kind == ErrorKind::Server(ServerErrorKind::Ask);
                if !ask {
                    // The slot moved for good: learn the new map (one refresh at a time).
                    if let Err(re) = self.nodes.refresh_after(generation) {
                        log::debug!("cluster: refresh after MOVED failed: {re}");
                    }
                }
                next = Some(Hop {
                    addr: addr.to_owned(),
                    replica: false,
                    asking: ask,
                });
                continue;
            }
            let idempotent = retry == Retry::Idempotent;
            if retry != Retry::Never
                && attempts < policy.attempts
                && policy.may_retry(&e, idempotent)
            {
                let node_gone = matches!(
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
                    let _ = self.nodes.refresh_after(generation);
                }
                delay = policy.backoff.delay(attempts, delay, rand::random());
                on_retry(&e, delay);
                std::thread::sleep(delay);
                continue;
            }
            return (Err(e), attempts, hop.replica);
        }
    }
}

pub(super) fn slot_or_cross(s: SlotOf) -> Result<Option<u16>> {
    match s {
        SlotOf::Any => Ok(None),
        SlotOf::Slot(s) => Ok(Some(s)),
        SlotOf::Cross(a, b) => Err(cross_slot(a, b)),
    }
}

impl Client {
    pub(super) fn cluster(&self) -> &ClusterTopology {
        self.shared
            .cluster
            .as_ref()
            .expect("cluster topology present")
    }

    /// Count and observe one cluster call, as `Client::run` does for a single endpoint.
    pub(super) fn observe_cluster(
        &self,
        name: CommandName<'_>,
        replica: bool,
        commands: usize,
        (started, t0): (Option<SystemTime>, Instant),
        attempts: u32,
        error: Option<&Error>,
    ) {
        let endpoint = if replica {
            Endpoint::Reader
        } else {
            Endpoint::Writer
        };
        let duration = t0.elapsed();
        self.shared.metrics.record(name, endpoint, error, duration);
        if let Some(started) = started {
            let label = name.label();
            let event = CommandEvent {
                command: &label,
                endpoint: endpoint.name(),
                commands,
                started,
                duration,
                attempts: attempts.max(1),
                error,
            };
            for o in &self.shared.observers {
                o.on_command(&event);
            }
        }
    }

    pub(super) fn retry_hook<'a>(
        &'a self,
        name: CommandName<'a>,
    ) -> impl FnMut(&Error, Duration) + 'a {
        let observers = &self.shared.observers;
        let metrics = &self.shared.metrics;
        move |e: &Error, delay: Duration| {
            let label = name.label();
            log::debug!("cluster: retrying {label} in {delay:?} after: {e}");
            metrics.count_retry();
            for o in observers {
                o.on_retry(&label, e, delay);
            }
        }
    }

    /// Run one command on the cluster with `f` doing the attempt on a connection.
    pub(super) fn cluster_command<T>(
        &self,
        c: &Cmd,
        mut f: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let name = CommandName::of(c);
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        let topo = self.cluster();
        let slot = match slot_or_cross(slot_of(c)).and_then(|s| one_node_scan(c, s).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                self.observe_cluster(name, false, 1, (started, t0), 0, Some(&e));
                return Err(e);
            }
        };
        let read = Reads::of(name.is_read_only(), c.read_from_hint());
        let retry = Retry::from_idempotent(name.is_idempotent(c));
        let policy = &self.shared.retry;
        let (r, attempts, replica) = topo.run(
            slot,
            read,
            retry,
            policy,
            &mut self.retry_hook(name),
            &mut f,
        );
        self.observe_cluster(name, replica, 1, (started, t0), attempts, r.as_ref().err());
        r
    }

    /// `exec` on a cluster: keyless fan-out commands run on every primary.
    pub(super) fn cluster_exec(&self, c: &Cmd) -> Result<Value> {
        if let Some(kind) = fan_out_kind(c) {
            return self.fan_out(c, kind);
        }
        self.cluster_command(c, |conn| conn.exec(c))
    }

    /// `exec_frame` on a cluster.
    pub(super) fn cluster_exec_frame(
        &self,
        c: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Some(kind) = fan_out_kind(c) {
            let v = self.fan_out(c, kind)?;
            return crate::resp::with_value_frame(&v, read);
        }
        self.cluster_command(c, |conn| conn.exec_frame(c, &mut *read))
    }

    fn primaries(&self) -> Vec<String> {
        self.cluster()
            .nodes
            .map()
            .shards()
            .iter()
            .map(|s| s.primary.clone())
            .collect()
    }

    /// Run a command on one node by address (a primary), with the retry policy.
    fn on_node(&self, addr: &str, c: &Cmd) -> Result<Value> {
        let topo = self.cluster();
        let pool = topo.nodes.pool(addr, false)?;
        let policy = &self.shared.retry;
        let mut attempts = 0;
        let mut delay = Duration::ZERO;
        loop {
            attempts += 1;
            match pool.get().and_then(|conn| conn.exec(c)) {
                Ok(v) => return Ok(v),
                Err(e) if attempts < policy.attempts && e.is_retryable() => {
                    delay = policy.backoff.delay(attempts, delay, rand::random());
                    std::thread::sleep(delay);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fan_out(&self, c: &Cmd, kind: Keyless) -> Result<Value> {
        let name = CommandName::of(c);
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        let primaries = self.primaries();
        let r = (|| {
            let mut replies = Vec::with_capacity(primaries.len());
            for addr in &primaries {
                replies.push(self.on_node(addr, c)?);
            }
            Ok(match kind {
                Keyless::Sum => Value::Int(replies.iter().filter_map(Value::as_int).sum()),
                Keyless::Concat => Value::Array(
                    replies
                        .into_iter()
                        .flat_map(|v| match v {
                            Value::Array(a) | Value::Set(a) => a,
                            other => vec![other],
                        })
                        .collect(),
                ),
                _ => replies
                    .into_iter()
                    .next()
                    .unwrap_or(Value::Simple("OK".into())),
            })
        })();
        self.observe_cluster(name, false, 1, (started, t0), 1, r.as_ref().err());
        r
    }

    /// Every key matching `pattern` (a `SCAN MATCH` glob) on every primary of the
    /// cluster, or of the one server when the client is not a cluster client. Scans in
    /// batches of `COUNT 1000`; keys added or removed during the scan may or may not be
    /// seen (SCAN's own guarantee), keys present throughout are seen at least once.
    pub fn scan_cluster(&self, pattern: &str) -> Result<Vec<Vec<u8>>> {
        let scan = |run: &dyn Fn(&Cmd) -> Result<Value>| -> Result<Vec<Vec<u8>>> {
            let mut out = Vec::new();
            let mut cursor = b"0".to_vec();
            loop {
                let v = run(&cmd("SCAN")
                    .arg(&cursor[..])
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000))?;
                let Value::Array(parts) = v else {
                    return Err(Error::new(ErrorKind::Protocol, "SCAN: not an array"));
                };
                let mut parts = parts.into_iter();
                cursor = parts
                    .next()
                    .and_then(|c| c.as_bytes().map(<[u8]>::to_vec))
                    .ok_or_else(|| Error::new(ErrorKind::Protocol, "SCAN: no cursor"))?;
                if let Some(Value::Array(keys) | Value::Set(keys)) = parts.next() {
                    out.extend(keys.iter().filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)));
                }
                if cursor == b"0" {
                    return Ok(out);
                }
            }
        };
        if self.shared.cluster.is_none() {
            return scan(&|c| self.exec(c));
        }
        let mut out = Vec::new();
        for addr in self.primaries() {
            out.extend(scan(&|c| self.on_node(&addr, c))?);
        }
        Ok(out)
    }

    /// The `host:port` of every primary of the cluster, as the client knows the slot map
    /// now (one per shard, in slot order); empty when the client is not a cluster client.
    pub fn cluster_primaries(&self) -> Vec<String> {
        if self.shared.cluster.is_none() {
            return Vec::new();
        }
        self.primaries()
    }

    /// Run `c` on the cluster node at `addr` (`host:port`, e.g. from
    /// [`Client::cluster_primaries`]), through that node's pool, with the retry policy
    /// for errors that mean nothing was applied; no redirect is followed. For per-node
    /// commands: `SCAN` of one node, `INFO`, `CLUSTER INFO`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the client is not a cluster client; the node's errors.
    pub fn exec_on_node(&self, addr: &str, c: &Cmd) -> Result<Value> {
        if self.shared.cluster.is_none() {
            return Err(Error::config(
                "exec_on_node: this client is not a cluster client",
            ));
        }
        self.on_node(addr, c)
    }

    /// True when this client talks to a Valkey/Redis cluster.
    pub fn is_cluster(&self) -> bool {
        self.shared.cluster.is_some()
    }

    /// How many times the cluster slot map was read from the servers (startup, the
    /// periodic refresh and refreshes after `MOVED` or a lost node); 0 when not a cluster.
    pub fn cluster_refreshes(&self) -> u64 {
        self.shared
            .cluster
            .as_ref()
            .map_or(0, |c| c.nodes.refreshes())
    }

    /// The `host:port` of the primary serving `key`'s slot now (as the client knows it);
    /// `None` when not a cluster client or the slot has no known owner.
    pub fn cluster_node_for(&self, key: &[u8]) -> Option<String> {
        let c = self.shared.cluster.as_ref()?;
        let map = c.nodes.map();
        map.shard(crate::cmd::key_slot(key))
            .map(|s| s.primary.clone())
    }

    /// A transaction on a cluster: on the primary of the watched keys' slot.
    pub(super) fn cluster_transaction<T>(
        &self,
        keys: &[&[u8]],
        mut f: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut slot = SlotOf::Any;
        for k in keys {
            slot = slot.merge(SlotOf::of_key(k));
        }
        let slot = slot_or_cross(slot)?;
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        let (r, attempts, _) = self.cluster().run(
            slot,
            Reads::Primary,
            Retry::Never,
            &self.shared.retry,
            &mut self.retry_hook(CommandName::MULTI),
            &mut f,
        );
        self.observe_cluster(
            CommandName::MULTI,
            false,
            1,
            (started, t0),
            attempts,
            r.as_ref().err(),
        );
        r
    }
}
