//! [`Client`]: the one type patterns and users go through. Cheap to clone, `Send + Sync`,
//! hiding how many connections and servers stand behind it; applies retry, the circuit
//! breaker, metrics and observers to every command.

mod breaker;
mod builder;
mod cluster_exec;
mod cluster_pipeline;
mod cluster_scan;
#[cfg(test)]
mod command_table_golden;
mod health;
mod metrics;
mod observer;
mod reader_sync;
mod retry;
mod routing;
mod run;
mod shard_pubsub;
mod topology;

use std::sync::Arc;

use crate::cmd::{Cmd, Execute, Pipeline};
use crate::conn::{Transaction, TxOutcome};
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{Pool, PoolStats};
use crate::resp::Value;

use breaker::Breaker;
pub use breaker::{BreakerOptions, BreakerState};
pub use builder::ClientBuilder;
pub use cluster_scan::ClusterScan;
pub use health::{EndpointHealth, Health};
pub use metrics::{error_label, Metrics, MetricsSource, LATENCY_BUCKETS};
pub use observer::{CommandEvent, Observer};
pub use retry::{Backoff, RetryPolicy};
use routing::CommandName;
pub use topology::ReplicaReads;
use topology::{Call, Reads, Shape};

/// Which endpoint a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The primary: every write, and reads when there is no reader.
    Writer,
    /// The reader (a replica): read-only commands, when configured.
    Reader,
}

impl Endpoint {
    /// `writer` or `reader`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Writer => "writer",
            Endpoint::Reader => "reader",
        }
    }
}

/// A client for one server (or a writer + reader pair): pools, retry, circuit breaker,
/// metrics and observers behind the [`Execute`] interface.
///
/// Cloning is cheap (an `Arc`); all clones share pools, breakers and metrics.
///
/// ```no_run
/// use valkit::{Client, Commands};
/// # fn main() -> valkit::Result<()> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// client.set("k", "v")?;
/// let worker = client.clone();
/// let v: Option<String> = std::thread::spawn(move || worker.get("k")).join().unwrap()?;
/// println!("{}", client.metrics_text());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where each attempt of a command goes: standalone, writer/reader or cluster
    /// (`client/topology/`).
    shape: Shape,
    retry: RetryPolicy,
    /// Counted directly by [`Client::run`] (not through the observer list).
    metrics: Arc<Metrics>,
    /// The caller's observers.
    observers: Vec<Arc<dyn Observer>>,
}

/// One endpoint: its pool and its breaker.
pub(crate) struct Target {
    endpoint: Endpoint,
    pool: Pool,
    breaker: Breaker,
}

impl Client {
    /// A client for the server at `url` with default pool, retry and breaker settings.
    pub fn open(url: &str) -> Result<Client> {
        Client::builder().url(url).build()
    }

    /// A client configured from the environment: `VALKEY_URL` (or `VALKEY_HOST`,
    /// `VALKEY_PORT`, ...), and `VALKEY_READER_URL` for an optional reader endpoint.
    pub fn from_env() -> Result<Client> {
        Client::builder().from_env()?.build()
    }

    /// Start configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The counters kept by this client.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// All metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn metrics_text(&self) -> String {
        let gauges = metrics::Gauges {
            endpoints: self.targets().map(|t| t.gauges()).collect(),
        };
        self.shared.metrics.render(&gauges)
    }

    /// Append another component's metrics to [`Client::metrics_text`], e.g. a cache's:
    ///
    /// ```no_run
    /// use valkit::{cache::Cache, Client};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::open("redis://127.0.0.1:6379")?;
    /// let cache: Cache<Client> = Cache::builder(client.clone()).namespace("app").build()?;
    /// client.add_metrics_source(cache.metrics_source()); // holds the cache weakly
    /// print!("{}", client.metrics_text()); // client, pool, breaker and cache metrics
    /// # Ok(()) }
    /// ```
    ///
    /// The source must write complete metric families (`# HELP`, `# TYPE`, samples) with
    /// names no other source uses.
    pub fn add_metrics_source(&self, source: impl Fn(&mut String) + Send + Sync + 'static) {
        self.shared.metrics.add_source(Box::new(source));
    }

    /// Pool statistics of an endpoint (`None` for a reader that is not configured).
    pub fn pool_stats(&self, endpoint: Endpoint) -> Option<PoolStats> {
        self.target(endpoint).map(|t| t.pool.stats())
    }

    /// The circuit breaker state of an endpoint.
    pub fn breaker_state(&self, endpoint: Endpoint) -> Option<BreakerState> {
        self.target(endpoint).map(|t| t.breaker.state())
    }

    /// True when a reader endpoint is configured.
    pub fn has_reader(&self) -> bool {
        self.target(Endpoint::Reader).is_some()
    }

    /// Run an optimistic transaction on the writer: see
    /// [`Connection::transaction`](crate::Connection::transaction).
    /// Not retried (the closure may have side effects); the breaker and metrics apply.
    pub fn transaction<T, K, F>(&self, keys: &[K], build: F) -> Result<TxOutcome<T>>
    where
        T: crate::cmd::FromValue,
        K: AsRef<[u8]>,
        F: FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    {
        let mut build = Some(build);
        match &self.shared.shape {
            Shape::Cluster(_) => {
                let keys: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
                self.cluster_transaction(&keys, |conn| transaction_once(conn, &keys, &mut build))
            }
            Shape::Standalone(t) => {
                self.transaction_on(t, |conn| transaction_once(conn, keys, &mut build))
            }
            Shape::WriterReader(t) => {
                self.transaction_on(t, |conn| transaction_once(conn, keys, &mut build))
            }
        }
    }

    /// A transaction on the writer of a single-server topology: never retried.
    fn transaction_on<P: topology::Topology, T>(
        &self,
        topo: &P,
        attempt: impl FnMut(&crate::conn::Connection) -> Result<T>,
    ) -> Result<T> {
        self.run(
            CommandName::MULTI,
            topo,
            &Call::PRIMARY,
            1,
            || Retry::Never,
            attempt,
        )
    }

    /// Check out a connection from an endpoint's pool for commands that need one
    /// connection (blocking pops in a loop, pub/sub later). Bypasses retry and the breaker.
    pub fn connection(&self, endpoint: Endpoint) -> Result<crate::pool::PooledConnection> {
        match self.target(endpoint) {
            Some(t) => t.pool.get(),
            None => Err(Error::new(
                ErrorKind::Config,
                "no reader endpoint is configured",
            )),
        }
    }

    fn targets(&self) -> impl Iterator<Item = &Target> {
        self.shared.shape.targets()
    }

    fn target(&self, endpoint: Endpoint) -> Option<&Target> {
        self.shared.shape.target(endpoint)
    }

    /// A command on a single-server topology (standalone or writer/reader).
    #[inline]
    fn exec_on<P: topology::Topology>(&self, topo: &P, cmd: &Cmd) -> Result<Value> {
        let name = CommandName::of(cmd);
        let call = Call {
            slot: None,
            reads: Reads::of(name.is_read_only(), cmd.read_from_hint()),
        };
        let retry = || Retry::from_idempotent(name.is_idempotent(cmd));
        self.run(name, topo, &call, 1, retry, |conn| conn.exec(cmd))
    }

    /// `exec_frame` on a single-server topology.
    #[inline]
    fn exec_frame_on<P: topology::Topology>(
        &self,
        topo: &P,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        let name = CommandName::of(cmd);
        let call = Call {
            slot: None,
            reads: Reads::of(name.is_read_only(), cmd.read_from_hint()),
        };
        let retry = || Retry::from_idempotent(name.is_idempotent(cmd));
        self.run(name, topo, &call, 1, retry, |conn| {
            conn.exec_frame(cmd, &mut *read)
        })
    }

    /// A pipeline on a single-server topology, with `attempt` reading the replies.
    fn pipeline_on<P: topology::Topology, T>(
        &self,
        topo: &P,
        pipeline: &Pipeline,
        attempt: impl FnMut(&crate::conn::Connection) -> Result<T>,
    ) -> Result<T> {
        let call = Call {
            slot: None,
            reads: Reads::of(
                routing::pipeline_is_read_only(pipeline),
                routing::pipeline_read_from(pipeline),
            ),
        };
        let retry = || Retry::from_idempotent(routing::pipeline_is_idempotent(pipeline));
        let name = if pipeline.is_atomic() {
            CommandName::MULTI
        } else {
            CommandName::PIPELINE
        };
        self.run(name, topo, &call, pipeline.len(), retry, attempt)
    }
}

/// Run the transaction closure, which may be used once.
fn transaction_once<T, K, F>(
    conn: &crate::conn::Connection,
    keys: &[K],
    build: &mut Option<F>,
) -> Result<TxOutcome<T>>
where
    T: crate::cmd::FromValue,
    K: AsRef<[u8]>,
    F: FnOnce(&Transaction<'_>) -> Result<Pipeline>,
{
    match build.take() {
        Some(f) => conn.transaction(keys, f),
        None => Err(Error::new(
            ErrorKind::Aborted,
            "transaction closure already used",
        )),
    }
}

/// What the retry loop may do for one call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Never run the call twice (transactions: the closure runs once).
    Never,
    /// Retry only when nothing can have been applied.
    Safe,
    /// Also retry after ambiguous failures: running twice is harmless.
    Idempotent,
}

impl Retry {
    fn from_idempotent(idempotent: bool) -> Retry {
        if idempotent {
            Retry::Idempotent
        } else {
            Retry::Safe
        }
    }
}

impl Execute for Client {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        match &self.shared.shape {
            Shape::Standalone(t) => self.exec_on(t, cmd),
            Shape::WriterReader(t) => self.exec_on(t, cmd),
            Shape::Cluster(_) => self.cluster_exec(cmd),
        }
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        let attempt = |conn: &crate::conn::Connection| conn.exec_pipeline(pipeline);
        match &self.shared.shape {
            Shape::Standalone(t) => self.pipeline_on(t, pipeline, attempt),
            Shape::WriterReader(t) => self.pipeline_on(t, pipeline, attempt),
            Shape::Cluster(_) => self.cluster_pipeline(pipeline),
        }
    }

    fn exec_frame(
        &self,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        match &self.shared.shape {
            Shape::Standalone(t) => self.exec_frame_on(t, cmd, read),
            Shape::WriterReader(t) => self.exec_frame_on(t, cmd, read),
            Shape::Cluster(_) => self.cluster_exec_frame(cmd, read),
        }
    }

    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut crate::cmd::BuildReplies<'_>,
    ) -> Option<Result<()>> {
        // Transactions keep their own path; a cluster splits the batch by node.
        if pipeline.is_atomic() {
            return None;
        }
        let attempt = |conn: &crate::conn::Connection| {
            conn.exec_pipeline_replies(pipeline, &mut *build)
                .unwrap_or_else(|| Err(Error::conversion("not read in place")))
        };
        match &self.shared.shape {
            Shape::Standalone(t) => Some(self.pipeline_on(t, pipeline, attempt)),
            Shape::WriterReader(t) => Some(self.pipeline_on(t, pipeline, attempt)),
            Shape::Cluster(_) => self.cluster_pipeline_replies(pipeline, build),
        }
    }
}

impl Target {
    fn gauges(&self) -> metrics::EndpointGauges {
        let s = self.pool.stats();
        let (transitions, rejected) = self.breaker.counters();
        metrics::EndpointGauges {
            endpoint: self.endpoint.name(),
            breaker_state: self.breaker.state().as_gauge(),
            breaker_transitions: transitions,
            breaker_rejected: rejected,
            pool_open: s.open as u64,
            pool_idle: s.idle as u64,
            pool_in_use: s.in_use as u64,
            pool_max: s.max_size as u64,
            pool_waits: s.waits,
            pool_wait_seconds: s.wait_time_total.as_secs_f64(),
            pool_timeouts: s.timeouts,
            pool_created: s.created,
            pool_closed: s.closed,
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("writer", &self.shared.shape.writer().pool.stats())
            .field("reader", &self.pool_stats(Endpoint::Reader))
            .field("retry", &self.shared.retry)
            .finish()
    }
}
