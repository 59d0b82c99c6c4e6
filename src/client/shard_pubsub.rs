//! The glue between the cluster client and sharded pub/sub: a [`Client`] tells a
//! [`ShardSubscriber`] which node serves a slot (`pubsub` knows nothing of the client).

use super::Client;
use crate::config::ConnectionConfig;
use crate::error::{Error, ErrorKind, Result, ServerErrorKind};
use crate::pubsub::{ShardRouter, ShardSubscriber, SubscriberOptions};

impl ShardRouter for Client {
    /// A cluster client: the primary of `slot` in its slot map, with the first seed's
    /// settings (password, TLS, timeouts). A single-server client: its writer.
    fn node_for_slot(&self, slot: u16) -> Result<(String, ConnectionConfig)> {
        let Some(cluster) = self.shared.shape.cluster() else {
            let config = self.shared.shape.writer().pool.config().clone();
            return Ok((config.addr.to_string(), config));
        };
        let map = cluster.nodes.map();
        let Some(shard) = map.shard(slot) else {
            return Err(Error::new(
                ErrorKind::Server(ServerErrorKind::ClusterDown),
                format!("no node serves slot {slot} in the cluster's slot map"),
            ));
        };
        let addr = shard.primary.clone();
        let config = cluster.nodes.node_config(&addr, false)?;
        Ok((addr, config))
    }

    /// Re-read the cluster's slot map (nothing on a single-server client).
    fn refresh(&self) -> Result<()> {
        match self.shared.shape.cluster() {
            Some(cluster) => cluster.nodes.refresh_now(),
            None => Ok(()),
        }
    }
}

impl Client {
    /// A [`ShardSubscriber`] for sharded pub/sub (`SSUBSCRIBE`) over this client: on a
    /// cluster each shard channel is subscribed on the node that owns its slot and followed
    /// when the slot moves; on a single server, everything is on that server. Its
    /// connections are its own (outside the pools). See `docs/cluster.md`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use valkit::pubsub::Publish;
    /// use valkit::Client;
    /// # fn main() -> valkit::Result<()> {
    /// let client = Client::from_env()?;
    /// let sub = client.shard_subscriber()?;
    /// sub.ssubscribe(&["prices:{AAPL}"])?;
    /// client.spublish("prices:{AAPL}", "187.2")?;
    /// let event = sub.recv(Duration::from_secs(1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The supervisor thread could not be started.
    pub fn shard_subscriber(&self) -> Result<ShardSubscriber> {
        ShardSubscriber::new(self.clone())
    }

    /// [`Client::shard_subscriber`] with options for every node's subscriber.
    ///
    /// # Errors
    /// As [`ShardSubscriber::with_options`].
    pub fn shard_subscriber_with(&self, opts: SubscriberOptions) -> Result<ShardSubscriber> {
        ShardSubscriber::with_options(self.clone(), opts)
    }
}
