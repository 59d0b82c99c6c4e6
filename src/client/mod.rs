//! [`Client`]: the one type patterns and users go through. Cheap to clone, `Send + Sync`,
//! hiding how many connections and servers stand behind it; applies retry, the circuit
//! breaker, metrics and observers to every command.

mod breaker;
mod builder;
mod cluster_pipeline;
#[cfg(test)]
mod command_table_golden;
mod health;
mod metrics;
mod observer;
mod reader_sync;
mod retry;
mod routing;
mod shard_pubsub;
mod topology;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::cmd::{Cmd, Execute, Pipeline, ReadFrom};
use crate::conn::{Connection, Transaction, TxOutcome};
use crate::error::{Error, ErrorKind, Result, ServerErrorKind};
use crate::pool::{Pool, PoolStats};
use crate::resp::Value;

use breaker::Breaker;
pub use breaker::{BreakerOptions, BreakerState};
pub use builder::ClientBuilder;
pub use health::{EndpointHealth, Health};
pub use metrics::{error_label, Metrics, MetricsSource, LATENCY_BUCKETS};
pub use observer::{CommandEvent, Observer};
pub use retry::{Backoff, RetryPolicy};
use routing::CommandName;
pub use topology::ReplicaReads;

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
    writer: Target,
    reader: Option<Target>,
    /// Whether the reader is in sync, for [`ReadFrom::ReaderWhenInSync`].
    reader_sync: reader_sync::ReaderSync,
    retry: RetryPolicy,
    /// Counted directly by [`Client::run`] (not through the observer list).
    metrics: Arc<Metrics>,
    /// The caller's observers.
    observers: Vec<Arc<dyn Observer>>,
    /// A cluster client's topology (`client/topology.rs`): when set, every command is
    /// routed by it and `writer` is only the first seed node's pool.
    cluster: Option<topology::ClusterTopology>,
}

/// One endpoint: its pool and its breaker.
struct Target {
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
        self.shared.reader.is_some()
    }

    /// Run an optimistic transaction on the writer: see [`Connection::transaction`].
    /// Not retried (the closure may have side effects); the breaker and metrics apply.
    pub fn transaction<T, K, F>(&self, keys: &[K], build: F) -> Result<TxOutcome<T>>
    where
        T: crate::cmd::FromValue,
        K: AsRef<[u8]>,
        F: FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    {
        let mut build = Some(build);
        if self.shared.cluster.is_some() {
            let keys: Vec<&[u8]> = keys.iter().map(AsRef::as_ref).collect();
            return self.cluster_transaction(&keys, |conn| match build.take() {
                Some(f) => conn.transaction(&keys, f),
                None => Err(Error::new(
                    ErrorKind::Aborted,
                    "transaction closure already used",
                )),
            });
        }
        self.run(
            CommandName::MULTI,
            &self.shared.writer,
            1,
            || Retry::Never,
            |conn| match build.take() {
                Some(f) => conn.transaction(keys, f),
                None => Err(Error::new(
                    ErrorKind::Aborted,
                    "transaction closure already used",
                )),
            },
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
        std::iter::once(&self.shared.writer).chain(self.shared.reader.as_ref())
    }

    fn target(&self, endpoint: Endpoint) -> Option<&Target> {
        match endpoint {
            Endpoint::Writer => Some(&self.shared.writer),
            Endpoint::Reader => self.shared.reader.as_ref(),
        }
    }

    /// The endpoint for a call: the reader for read-only calls the hint lets go there
    /// (none: [`ReadFrom::Reader`]), the writer for everything else.
    fn route(&self, read_only: bool, hint: Option<ReadFrom>) -> &Target {
        match (&self.shared.reader, read_only, hint) {
            (Some(r), true, None | Some(ReadFrom::Reader)) => r,
            (Some(r), true, Some(ReadFrom::ReaderWhenInSync))
                if self.shared.reader_sync.in_sync(&r.pool) =>
            {
                r
            }
            _ => &self.shared.writer,
        }
    }

    /// The one path every command takes: breaker, checkout, attempt, retry, record, observe.
    ///
    /// For a command the client knows by name, with no observer installed, it allocates
    /// nothing and takes no lock of its own (the pool's aside), and reads the clock twice.
    fn run<T>(
        &self,
        name: CommandName<'_>,
        target: &Target,
        commands: usize,
        // What the retry loop may do: asked only after a failure (classifying a command
        // costs instructions every call would pay).
        retry: impl Fn() -> Retry,
        mut attempt_fn: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let observed = !self.shared.observers.is_empty();
        let started = observed.then(SystemTime::now);
        let t0 = Instant::now();
        let mut attempts = 0;
        // When the last connection went back to the pool (its clock reading ends the call).
        let mut returned = None;
        let result = match target.breaker.acquire() {
            Err(e) => Err(e),
            Ok(permit) => {
                let policy = &self.shared.retry;
                let mut delay = std::time::Duration::ZERO;
                // A call that will be resent whatever happens (idempotent, retries left)
                // may take a recently returned connection unchecked on its first attempt:
                // if the server closed it meanwhile, the resend below goes out on a checked
                // connection (PoolOptions::skip_check_when_resendable).
                let mut unchecked = policy.attempts > 1
                    && target.pool.trusts_resendable()
                    && retry() == Retry::Idempotent;
                let result = loop {
                    attempts += 1;
                    // The first attempt's checkout starts at `t0` (one clock read less).
                    let start = if attempts == 1 { t0 } else { Instant::now() };
                    let r = target.pool.get_since(start, unchecked).and_then(|conn| {
                        let r = attempt_fn(&conn);
                        if let Err(e) = &r {
                            if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                                // The endpoint became a replica (failover): this connection
                                // points at the wrong server; never reuse it.
                                conn.close("READONLY: the endpoint is a replica now");
                            }
                        }
                        returned = Some(conn.release());
                        r
                    });
                    match r {
                        Ok(v) => break Ok(v),
                        Err(e)
                            if attempts < policy.attempts
                                && match retry() {
                                    Retry::Never => false,
                                    r => policy.may_retry(&e, r == Retry::Idempotent),
                                } =>
                        {
                            // Resends look at the socket: a dead connection costs one
                            // attempt at most. (The backoff stays: resending at once changes
                            // how an outage is seen, see tests/availability.rs.)
                            unchecked = false;
                            delay = policy.backoff.delay(attempts, delay, rand::random::<f64>());
                            let label = name.label();
                            log::debug!("retrying {label} in {delay:?} after: {e}");
                            self.shared.metrics.count_retry();
                            for o in &self.shared.observers {
                                o.on_retry(&label, &e, delay);
                            }
                            std::thread::sleep(delay);
                        }
                        Err(e) => break Err(e),
                    }
                };
                let failed = result
                    .as_ref()
                    .err()
                    .is_some_and(retry::is_availability_failure);
                target.breaker.record(permit, failed);
                result
            }
        };
        let duration = match returned {
            Some(end) => end.saturating_duration_since(t0),
            None => t0.elapsed(),
        };
        let error = result.as_ref().err();
        self.shared
            .metrics
            .record(name, target.endpoint, error, duration);
        if let Some(started) = started {
            let label = name.label();
            let event = CommandEvent {
                command: &label,
                endpoint: target.endpoint.name(),
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
        result
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
        if self.shared.cluster.is_some() {
            return self.cluster_exec(cmd);
        }
        let name = CommandName::of(cmd);
        let target = self.route(name.is_read_only(), cmd.read_from_hint());
        let retry = || Retry::from_idempotent(name.is_idempotent(cmd));
        self.run(name, target, 1, retry, |conn| conn.exec(cmd))
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        if self.shared.cluster.is_some() {
            return self.cluster_pipeline(pipeline);
        }
        let target = self.route(
            routing::pipeline_is_read_only(pipeline),
            routing::pipeline_read_from(pipeline),
        );
        let retry = || Retry::from_idempotent(routing::pipeline_is_idempotent(pipeline));
        let name = if pipeline.is_atomic() {
            CommandName::MULTI
        } else {
            CommandName::PIPELINE
        };
        self.run(name, target, pipeline.len(), retry, |conn| {
            conn.exec_pipeline(pipeline)
        })
    }

    fn exec_frame(
        &self,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        if self.shared.cluster.is_some() {
            return self.cluster_exec_frame(cmd, read);
        }
        let name = CommandName::of(cmd);
        let target = self.route(name.is_read_only(), cmd.read_from_hint());
        let retry = || Retry::from_idempotent(name.is_idempotent(cmd));
        self.run(name, target, 1, retry, |conn| {
            conn.exec_frame(cmd, &mut *read)
        })
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
        if self.shared.cluster.is_some() {
            return self.cluster_pipeline_replies(pipeline, build);
        }
        let target = self.route(
            routing::pipeline_is_read_only(pipeline),
            routing::pipeline_read_from(pipeline),
        );
        let retry = || Retry::from_idempotent(routing::pipeline_is_idempotent(pipeline));
        Some(self.run(
            CommandName::PIPELINE,
            target,
            pipeline.len(),
            retry,
            |conn| {
                conn.exec_pipeline_replies(pipeline, &mut *build)
                    .unwrap_or_else(|| Err(Error::conversion("not read in place")))
            },
        ))
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
            .field("writer", &self.shared.writer.pool.stats())
            .field(
                "reader",
                &self.shared.reader.as_ref().map(|r| r.pool.stats()),
            )
            .field("retry", &self.shared.retry)
            .finish()
    }
}
