//! The cluster client's entry points: a command through the cluster topology (the one
//! attempt loop, `client/run.rs`), keyless commands fanned out over the primaries, per-node
//! commands, the cluster-wide scan, transactions on one slot.
//!
//! Keyless commands: `SCRIPT`, `FUNCTION`, `FLUSHDB`, `FLUSHALL` run on every primary
//! (first reply returned); `DBSIZE` is summed and `KEYS` concatenated over the primaries;
//! `SCAN` and anything else keyless goes to the first primary (use
//! [`Client::scan_cluster`] to scan every primary).

use std::time::{Duration, Instant, SystemTime};

use super::retry::is_availability_failure;
use super::routing::CommandName;
use super::topology::{one_node_scan, slot_or_cross, Call, ClusterTopology, Reads};
use super::{Client, CommandEvent, Endpoint, Retry};
use crate::cmd::keys::{slot_of, SlotOf};
use crate::cmd::{Cmd, Execute};
use crate::commands::ScanOptions;
use crate::conn::Connection;
use crate::error::{Error, Result};
use crate::resp::Value;

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

/// The fan-out rule of a command whose keys hash to `slot`: `None` for a command with keys
/// or one that runs on one node.
fn fan_out_kind(c: &Cmd, slot: SlotOf) -> Option<Keyless> {
    if slot != SlotOf::Any {
        return None;
    }
    match keyless_kind(c) {
        Keyless::One => None,
        k => Some(k),
    }
}

impl Client {
    pub(super) fn cluster(&self) -> &ClusterTopology {
        self.shared
            .shape
            .cluster()
            .expect("cluster topology present")
    }

    /// Count and observe one cluster call that did not go through [`Client::run`] (a split
    /// pipeline, a fan-out, a command refused before sending), as `run` would.
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

    /// Log, count and observe a retry of `name` (what [`Client::run`] does for its calls).
    pub(super) fn retry_hook<'a>(
        &'a self,
        name: CommandName<'a>,
    ) -> impl FnMut(&Error, Duration) + 'a {
        move |e: &Error, delay: Duration| self.on_retry(name, e, delay)
    }

    /// Run one command on the cluster with `f` doing the attempt on a connection.
    pub(super) fn cluster_command<T>(
        &self,
        c: &Cmd,
        f: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.cluster_command_in(c, slot_of(c), f)
    }

    /// [`Client::cluster_command`] with the command's slot found already.
    fn cluster_command_in<T>(
        &self,
        c: &Cmd,
        slot: SlotOf,
        f: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let name = CommandName::of(c);
        let slot = match slot_or_cross(slot).and_then(|s| one_node_scan(c, s).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
                self.observe_cluster(name, false, 1, (started, Instant::now()), 0, Some(&e));
                return Err(e);
            }
        };
        let call = Call {
            slot,
            reads: Reads::of(name.is_read_only(), c.read_from_hint()),
        };
        let retry = || Retry::from_idempotent(name.is_idempotent(c));
        self.run(name, self.cluster(), &call, 1, retry, f)
    }

    /// `exec` on a cluster: keyless fan-out commands run on every primary.
    pub(super) fn cluster_exec(&self, c: &Cmd) -> Result<Value> {
        let slot = slot_of(c);
        if let Some(kind) = fan_out_kind(c, slot) {
            return self.fan_out(c, kind);
        }
        self.cluster_command_in(c, slot, |conn| conn.exec(c))
    }

    /// `exec_frame` on a cluster.
    pub(super) fn cluster_exec_frame(
        &self,
        c: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        let slot = slot_of(c);
        if let Some(kind) = fan_out_kind(c, slot) {
            let v = self.fan_out(c, kind)?;
            return crate::resp::with_value_frame(&v, read);
        }
        self.cluster_command_in(c, slot, |conn| conn.exec_frame(c, &mut *read))
    }

    pub(super) fn primaries(&self) -> Vec<String> {
        self.cluster()
            .nodes
            .map()
            .shards()
            .iter()
            .map(|s| s.primary.clone())
            .collect()
    }

    /// Run a command on one node by address (a primary): the node's circuit breaker is asked
    /// on every attempt; errors that mean nothing was applied (and socket failures, for an
    /// idempotent command) are retried per the retry policy, counted and observed as
    /// retries. A redirect is the answer: the call is pinned to `addr`, so resending it
    /// there after a backoff could only be redirected again.
    pub(super) fn on_node(&self, addr: &str, c: &Cmd) -> Result<Value> {
        let topo = self.cluster();
        let pool = topo.nodes.pool(addr, false)?;
        let breaker = topo.breaker(addr);
        let name = CommandName::of(c);
        let policy = &self.shared.retry;
        let mut attempts = 0;
        let mut delay = Duration::ZERO;
        loop {
            attempts += 1;
            let permit = breaker.acquire()?;
            let r = pool.get().and_then(|conn| conn.exec(c));
            let failed = r
                .as_ref()
                .err()
                .is_some_and(|e| is_availability_failure(e) && e.redirect().is_none());
            breaker.record(permit, failed);
            match r {
                Ok(v) => return Ok(v),
                Err(e)
                    if attempts < policy.attempts
                        && e.redirect().is_none()
                        && policy.may_retry(&e, name.is_idempotent(c)) =>
                {
                    delay = policy.backoff.delay(attempts, delay, rand::random());
                    self.on_retry(name, &e, delay);
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
    /// cluster, or of the one server when the client is not a cluster client, collected
    /// into one `Vec` (scanned in batches of `COUNT 1000`). Keys added or removed during
    /// the scan may or may not be seen (SCAN's own guarantee), keys present throughout are
    /// seen at least once. The whole result is held in memory: for a keyspace of unknown
    /// size use [`Client::scan_cluster_iter`], which holds one batch at a time.
    pub fn scan_cluster(&self, pattern: &str) -> Result<Vec<Vec<u8>>> {
        self.scan_cluster_iter(ScanOptions::new().pattern(pattern).count(1000))
            .collect()
    }

    /// The `host:port` of every primary of the cluster, as the client knows the slot map
    /// now (one per shard, in slot order); empty when the client is not a cluster client.
    pub fn cluster_primaries(&self) -> Vec<String> {
        if self.shared.shape.cluster().is_none() {
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
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the client is not a cluster client; the node's errors.
    pub fn exec_on_node(&self, addr: &str, c: &Cmd) -> Result<Value> {
        if self.shared.shape.cluster().is_none() {
            return Err(Error::config(
                "exec_on_node: this client is not a cluster client",
            ));
        }
        self.on_node(addr, c)
    }

    /// True when this client talks to a Valkey/Redis cluster.
    pub fn is_cluster(&self) -> bool {
        self.shared.shape.cluster().is_some()
    }

    /// How many times the cluster slot map was read from the servers (startup, the
    /// periodic refresh and refreshes after `MOVED` or a lost node); 0 when not a cluster.
    pub fn cluster_refreshes(&self) -> u64 {
        self.shared
            .shape
            .cluster()
            .map_or(0, |c| c.nodes.refreshes())
    }

    /// The `host:port` of the primary serving `key`'s slot now (as the client knows it);
    /// `None` when not a cluster client or the slot has no known owner.
    pub fn cluster_node_for(&self, key: &[u8]) -> Option<String> {
        let c = self.shared.shape.cluster()?;
        let map = c.nodes.map();
        map.shard(crate::cmd::key_slot(key))
            .map(|s| s.primary.clone())
    }

    /// A transaction on a cluster: on the primary of the watched keys' slot.
    pub(super) fn cluster_transaction<T>(
        &self,
        keys: &[&[u8]],
        f: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut slot = SlotOf::Any;
        for k in keys {
            slot = slot.merge(SlotOf::of_key(k));
        }
        let call = Call {
            slot: slot_or_cross(slot)?,
            reads: Reads::Primary,
        };
        self.run(
            CommandName::MULTI,
            self.cluster(),
            &call,
            1,
            || Retry::Never,
            f,
        )
    }
}
