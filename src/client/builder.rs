//! [`ClientBuilder`]: endpoints, pool, retry, breaker and observers.

use std::sync::Arc;

use super::breaker::{Breaker, BreakerOptions};
use super::metrics::Metrics;
use super::observer::Observer;
use super::retry::RetryPolicy;
use super::{Client, Endpoint, Shared, Target};
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

    /// Endpoints from the environment: `VALKEY_URL` or `VALKEY_HOST`/`VALKEY_PORT`/... for
    /// the writer, `VALKEY_READER_URL` for the reader.
    pub fn from_env(mut self) -> Result<Self> {
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
        let Some(writer) = self.writer else {
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
        let writer = target(Endpoint::Writer, writer)?;
        let reader = match self.reader.clone() {
            Some(r) => Some(target(Endpoint::Reader, r)?),
            None => None,
        };
        Ok(Client {
            shared: Arc::new(Shared {
                writer,
                reader,
                reader_sync: super::reader_sync::ReaderSync::new(),
                retry: self.retry,
                metrics: Arc::new(Metrics::default()),
                observers: self.observers,
            }),
        })
    }
}
