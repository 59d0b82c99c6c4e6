//! Where a command goes: the [`Topology`] behind a [`Client`](super::Client) chooses, for
//! every attempt of a call, the node it goes to (its pool, its breaker, its endpoint label,
//! whether `ASKING` must precede), from the call's facts ([`Call`]: slot, where it may be
//! read from) and the previous attempt ([`Previous`]). The one attempt loop
//! (`client/run.rs`) drives every topology the same way: breaker, checkout, attempt, retry
//! classification, backoff, redirect budget, metrics, observers.
//!
//! Three implementations, one file each:
//! - [`Standalone`]: one server; every attempt goes to the writer.
//! - [`WriterReader`]: a primary and a replica endpoint; read-only calls go to the reader
//!   (per their `ReadFrom` hint), the rest to the writer; a retry stays on its endpoint.
//! - [`ClusterTopology`]: the slot map, per-node breakers, replica reads, `MOVED`/`ASK`.

mod cluster;
mod standalone;
#[cfg(test)]
mod tests;
mod writer_reader;

use std::time::Instant;

use super::breaker::Breaker;
use super::{Endpoint, Target};
use crate::cmd::ReadFrom;
use crate::error::{Error, Result};
use crate::pool::PooledConnection;

pub use cluster::ReplicaReads;
pub(crate) use cluster::{cross_slot, no_owner, one_node_scan, slot_or_cross, ClusterTopology};
pub(crate) use standalone::Standalone;
pub(crate) use writer_reader::WriterReader;

/// The most redirects (MOVED + ASK) one call follows.
pub(crate) const MAX_REDIRECTS: u32 = 5;

/// What the node choice reads about a call, found once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    /// The slot of its keys (`None`: keyless, or a topology without slots, which never
    /// looks).
    pub(crate) slot: Option<u16>,
    /// Where it may be read from.
    pub(crate) reads: Reads,
}

impl Call {
    /// A call for the primary (writer), with no slot: transactions on one server.
    pub(crate) const PRIMARY: Call = Call {
        slot: None,
        reads: Reads::Primary,
    };
}

/// Where a call may be read from (the writer/reader split and the cluster's replica reads
/// read the same fact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    /// The primary only (writes, and reads pinned to the writer).
    Primary,
    /// A replica (the reader endpoint; a cluster replica per [`ReplicaReads`]).
    Replica,
    /// A replica whose replication link is up ([`ReadFrom::ReaderWhenInSync`]), checked
    /// at most once a second; the primary when none is.
    ReplicaInSync,
}

impl Reads {
    /// For a command (or pipeline) that is `read_only`, with its `.read_from` hint.
    #[inline]
    pub(crate) fn of(read_only: bool, hint: Option<ReadFrom>) -> Reads {
        match (read_only, hint) {
            (false, _) | (true, Some(ReadFrom::Writer)) => Reads::Primary,
            (true, Some(ReadFrom::ReaderWhenInSync)) => Reads::ReplicaInSync,
            (true, _) => Reads::Replica,
        }
    }
}

/// The previous attempt of a call, as the next node choice sees it.
pub(crate) struct Previous<'p, N> {
    /// The node it went to (`None`: no node could be chosen).
    pub(crate) node: Option<&'p N>,
    /// How it failed.
    pub(crate) error: &'p Error,
    /// True when the loop follows `error` as a redirect (`MOVED`/`ASK` within
    /// [`MAX_REDIRECTS`], for a topology that follows them): the error names the node.
    /// False: a retry after a backoff.
    pub(crate) redirected: bool,
}

/// The node one attempt goes to.
pub(crate) trait Node {
    /// Its circuit breaker.
    fn breaker(&self) -> &Breaker;
    /// A connection from its pool: `start` stands for "now", `unchecked` skips the socket
    /// check ([`Pool::get_since`](crate::pool::Pool)).
    fn checkout(&self, start: Instant, unchecked: bool) -> Result<PooledConnection>;
    /// True when its pool may hand a resendable call's first attempt an unchecked
    /// connection (`PoolOptions::skip_check_when_resendable`).
    fn trusts_resendable(&self) -> bool;
    /// The label metrics and observers report: [`Endpoint::Reader`] for a replica.
    fn endpoint(&self) -> Endpoint;
    /// True when `ASKING` must precede the command on the connection.
    fn asking(&self) -> bool;
}

/// Where each attempt of a call goes.
pub(crate) trait Topology {
    /// The node one attempt goes to.
    type Node<'t>: Node
    where
        Self: 't;

    /// True when one breaker permit covers every attempt of a call: the topology sends a
    /// retry to the node of the previous attempt, so the call never changes breaker. False:
    /// every attempt asks its node's breaker.
    const PERMIT_PER_CALL: bool;

    /// True when `MOVED`/`ASK` send the next attempt elsewhere at once (no backoff, not an
    /// attempt, at most [`MAX_REDIRECTS`]), and are not breaker failures. False: they are
    /// ordinary retryable errors.
    const FOLLOWS_REDIRECTS: bool;

    /// A token read before each choice and handed back to [`Topology::before_next`] (the
    /// cluster's slot map generation, so a refresh another thread finished since is not
    /// run again).
    #[inline]
    fn epoch(&self) -> u64 {
        0
    }

    /// The node for the next attempt: from the call's facts on the first attempt
    /// (`previous` is `None`), from the previous attempt's node and error after.
    fn choose<'t>(
        &'t self,
        call: &Call,
        previous: Option<Previous<'_, Self::Node<'t>>>,
    ) -> Result<Self::Node<'t>>;

    /// After a failed attempt that will be followed by another (`redirected`: at once, as a
    /// redirect; else after a backoff): the cluster refreshes its map here. `failed` is
    /// `None` when no node could be chosen. Not called after an unchecked connection failed
    /// on its socket (closed while idle, not a sign the node is gone).
    #[inline]
    fn before_next(
        &self,
        _failed: Option<&Self::Node<'_>>,
        _error: &Error,
        _redirected: bool,
        _epoch: u64,
    ) {
    }
}

/// A configured endpoint is a node of the standalone and writer/reader topologies.
impl Node for &Target {
    #[inline]
    fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    #[inline]
    fn checkout(&self, start: Instant, unchecked: bool) -> Result<PooledConnection> {
        self.pool.get_since(start, unchecked)
    }

    #[inline]
    fn trusts_resendable(&self) -> bool {
        self.pool.trusts_resendable()
    }

    #[inline]
    fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    #[inline]
    fn asking(&self) -> bool {
        false
    }
}

/// The topology of a client: one of the three.
pub(crate) enum Shape {
    /// One server.
    Standalone(Standalone),
    /// A writer and a reader endpoint.
    WriterReader(WriterReader),
    /// A cluster.
    Cluster(ClusterTopology),
}

impl Shape {
    /// The configured endpoint `endpoint` (a cluster client's writer is its first seed's
    /// own pool, which commands do not use).
    pub(crate) fn target(&self, endpoint: Endpoint) -> Option<&Target> {
        match (self, endpoint) {
            (_, Endpoint::Writer) => Some(self.writer()),
            (Shape::Standalone(_), Endpoint::Reader) => None,
            (Shape::WriterReader(s), Endpoint::Reader) => Some(&s.reader),
            (Shape::Cluster(c), Endpoint::Reader) => c.reader.as_ref(),
        }
    }

    /// The writer endpoint (there always is one).
    pub(crate) fn writer(&self) -> &Target {
        match self {
            Shape::Standalone(s) => &s.writer,
            Shape::WriterReader(s) => &s.writer,
            Shape::Cluster(c) => &c.seed,
        }
    }

    /// The configured endpoints, writer first.
    pub(crate) fn targets(&self) -> impl Iterator<Item = &Target> {
        [Endpoint::Writer, Endpoint::Reader]
            .into_iter()
            .filter_map(|e| self.target(e))
    }

    /// The cluster topology, if this is one.
    pub(crate) fn cluster(&self) -> Option<&ClusterTopology> {
        match self {
            Shape::Cluster(c) => Some(c),
            _ => None,
        }
    }
}
