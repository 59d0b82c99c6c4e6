//! Pub/sub: a [`Subscriber`] on a connection of its own, typed [`Publish`] helpers,
//! keyspace notifications and the cache's invalidation events.
//!
//! - [`Subscriber`]: `SUBSCRIBE` / `PSUBSCRIBE` / `SSUBSCRIBE` and their unsubscribes from
//!   any thread, messages through [`Subscriber::recv`] or [`Subscriber::messages`], a
//!   [`StopHandle`] that ends a blocked reader from another thread, automatic
//!   reconnection and resubscription with the gap reported ([`Event::Disconnected`],
//!   [`Event::Reconnected`]). Works on RESP2 and RESP3.
//! - [`ShardSubscriber`]: sharded pub/sub on a cluster, from
//!   [`Client::shard_subscriber`](crate::Client::shard_subscriber): each shard channel on
//!   the node that owns its slot, one merged stream, channels followed when their slot
//!   moves ([`Event::ShardMoved`] reports the gap).
//! - [`Publish`]: `spublish`, `PUBSUB CHANNELS / NUMSUB / NUMPAT` on any
//!   [`Execute`](crate::Execute) (`publish` is in [`Commands`](crate::Commands)).
//! - [`enable_keyspace_events`], [`keyspace_pattern`], [`KeyspaceEvent`]: keyspace
//!   notifications, typed.
//! - [`CacheInvalidation`]: the events a [`Cache`](crate::cache::Cache) publishes.
//!
//! Pushes on an ordinary [`Connection`](crate::Connection) (RESP3, e.g. `CLIENT TRACKING`
//! invalidations) are never returned as replies: they are set aside and taken with
//! [`Connection::take_pushes`](crate::Connection::take_pushes). The near cache
//! ([`crate::near`]) consumes them.
//!
//! Pub/sub is fire-and-forget: a message published while a subscriber is disconnected is
//! lost. The subscriber says when that may have happened; use streams (or re-read
//! state after [`Event::Reconnected`]) when every message matters.

mod events;
mod message;
mod publish;
mod shard;
mod subscriber;

pub use events::{
    enable_keyspace_events, keyevent_channel, keyspace_pattern, CacheInvalidation,
    InvalidationScope, KeyspaceEvent,
};
pub use message::{Event, Message, SubKind};
pub use publish::Publish;
pub use shard::{ShardRouter, ShardSubscriber};
pub use subscriber::{StopHandle, Subscriber, SubscriberOptions};
