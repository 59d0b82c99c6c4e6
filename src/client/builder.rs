//! [`ClientBuilder`]: endpoints, pool, retry, breaker and observers.

use std::sync::Arc;

use super::breaker::{Breaker, BreakerOptions};
use super::metrics::Metrics;
use super::observer::Observer;
use super::reader_sync::ReaderSync;
use super::retry::RetryPolicy;
use super::topology::{ClusterTopology, ReplicaReads, Shape, Standalone, WriterReader};
use super::{Client, Endpoint, Shared, Target};
use crate::cluster::Nodes as ClusterNodes;
use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use crate::pool::{Pool, PoolOptions};

/// Configure a [`Client`]: `Client::builder().url(..).reader_url(..).retry(..).build()`.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::{Backoff, BreakerOptions, Client, PoolOptions, RetryPolicy};
/// # fn main() -> valkit::Result<()> {
/// let client = Client::builder()
///     .url("redis://primary:6379")
///     .reader_url("redis://replica:6379")
///     .pool(PoolOptions::default().max_size(20))
///     .retry(RetryPolicy::new(4, Backoff::Exponential {
///         base: Duration::from_millis(20),
///         cap: Duration::from_secs(1),
///     }))
///     .breaker(BreakerOptions::default().failure_threshold(5))
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    writer: Option<ConnectionConfig>,
    reader: Option<ConnectionConfig>,
    pool: PoolOptions,
    retry: RetryPolicy,
    breaker: BreakerOptions,
    observers: Vec<Arc<dyn Observer>>,
    error: Option<Error>,
    cluster: Vec<ConnectionConfig>,
    replica_reads: ReplicaReads,
    cluster_refresh: std::time::Duration,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// Defaults: no endpoint yet, [`PoolOptions::default`], [`RetryPolicy::default`],
    /// [`BreakerOptions::default`].
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            writer: None,
            reader: None,
            pool: PoolOptions::default(),
            retry: RetryPolicy::default(),
            breaker: BreakerOptions::default(),
            observers: Vec::new(),
            error: None,
            cluster: Vec::new(),
            replica_reads: ReplicaReads::PrimaryOnly,
            cluster_refresh: std::time::Duration::from_secs(15),
        }
    }

    /// The writer (primary) endpoint from a URL. A bad URL is reported by `build`.
    pub fn url(mut self, url: &str) -> Self {
        match ConnectionConfig::from_url(url) {
            Ok(c) => self.writer = Some(c),
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// The writer (primary) endpoint.
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.writer = Some(config);
        self
    }

    /// A reader endpoint (a replica) for read-only commands, from a URL.
    pub fn reader_url(mut self, url: &str) -> Self {
        match ConnectionConfig::from_url(url) {
            Ok(c) => self.reader = Some(c),
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// A reader endpoint (a replica) for read-only commands.
    pub fn reader_config(mut self, config: ConnectionConfig) -> Self {
        self.reader = Some(config);
        self
    }

    /// Talk to a Valkey/Redis cluster, discovered from these seed node URLs (tried in
    /// order; one is enough). Settings other than the address (password, TLS, timeouts,
    /// protocol) are taken from the first seed for every node. See `docs/cluster.md`.
    ///
    /// ```no_run
    /// use valkit::{Client, Commands, ReplicaReads};
    /// # fn main() -> valkit::Result<()> {
    /// let client = Client::builder()
    ///     .cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .replica_reads(ReplicaReads::PreferReplica)
    ///     .build()?;
    /// client.set("{user:1}:name", "ada")?; // routed to the primary of the key's slot
    /// # Ok(()) }
    /// ```
    pub fn cluster<'a>(mut self, seeds: impl IntoIterator<Item = &'a str>) -> Self {
        for url in seeds {
            self = self.cluster_url(url);
        }
        self
    }

    /// Add one cluster seed node from a URL (see [`ClientBuilder::cluster`]).
    pub fn cluster_url(mut self, url: &str) -> Self {
        match ConnectionConfig::from_url(url) {
            Ok(c) => self.cluster.push(c),
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// Add one cluster seed node (see [`ClientBuilder::cluster`]).
    pub fn cluster_config(mut self, config: ConnectionConfig) -> Self {
        self.cluster.push(config);
        self
    }

    /// Where read-only commands go on a cluster (default [`ReplicaReads::PrimaryOnly`]).
    pub fn replica_reads(mut self, reads: ReplicaReads) -> Self {
        self.replica_reads = reads;
        self
    }

    /// How often a cluster client re-reads the slot map in the background (default 15 s;
    /// it is also re-read at once after `MOVED` or a lost node).
    pub fn cluster_refresh_interval(mut self, interval: std::time::Duration) -> Self {
        self.cluster_refresh = interval.max(std::time::Duration::from_millis(100));
        self
    }

    /// Endpoints from the environment: `VALKEY_CLUSTER_URL` (comma-separated seed URLs) for
    /// a cluster client; otherwise `VALKEY_URL` or `VALKEY_HOST`/`VALKEY_PORT`/... for the
    /// writer and `VALKEY_READER_URL` for the reader.
    pub fn from_env(mut self) -> Result<Self> {
        if let Ok(urls) = std::env::var("VALKEY_CLUSTER_URL") {
            let urls: Vec<&str> = urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            if !urls.is_empty() {
                for url in urls {
                    self.cluster.push(ConnectionConfig::from_url(url)?);
                }
                return Ok(self);
            }
        }
        self.writer = Some(ConnectionConfig::from_env()?);
        self.reader = ConnectionConfig::reader_from_env()?;
        Ok(self)
    }

    /// Pool settings, used for every endpoint.
    pub fn pool(mut self, options: PoolOptions) -> Self {
        self.pool = options;
        self
    }

    /// The retry policy ([`RetryPolicy::none`] to disable).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Circuit breaker settings (one breaker per endpoint).
    pub fn breaker(mut self, options: BreakerOptions) -> Self {
        self.breaker = options;
        self
    }

    /// Add an observer, called after every command (metrics are always kept too).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Build the client. Pools connect according to [`PoolOptions`].
    ///
    /// # Errors
    /// A bad URL given earlier, no writer endpoint, or a pool that could not be built.
    pub fn build(self) -> Result<Client> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(writer) = self.writer.or_else(|| self.cluster.first().cloned()) else {
            return Err(Error::config(
                "no endpoint: call url(), config() or from_env() on the builder",
            ));
        };
        let target = |endpoint: Endpoint, config: ConnectionConfig| -> Result<Target> {
            Ok(Target {
                endpoint,
                pool: Pool::new(config, self.pool.clone())?,
                breaker: Breaker::new(endpoint.name(), self.breaker.clone()),
            })
        };
        let shape = if !self.cluster.is_empty() {
            // (The cluster is discovered before the writer's pool is built.)
            let nodes = ClusterNodes::connect(&self.cluster, self.pool.clone())?;
            let writer = target(Endpoint::Writer, writer)?;
            let reader = match self.reader.clone() {
                Some(r) => Some(target(Endpoint::Reader, r)?),
                None => None,
            };
            Shape::Cluster(ClusterTopology::new(
                nodes,
                self.breaker.clone(),
                self.replica_reads,
                self.cluster_refresh,
                (writer, reader),
            )?)
        } else {
            let writer = target(Endpoint::Writer, writer)?;
            match self.reader.clone() {
                Some(r) => Shape::WriterReader(WriterReader {
                    writer,
                    reader: target(Endpoint::Reader, r)?,
                    sync: ReaderSync::new(),
                }),
                None => Shape::Standalone(Standalone { writer }),
            }
        };
        Ok(Client {
            shared: Arc::new(Shared {
                shape,
                retry: self.retry,
                metrics: Arc::new(Metrics::default()),
                observers: self.observers,
            }),
        })
    }
}
