//! # valkit
//!
//! A synchronous, dependency-light Valkey/Redis toolkit with its own RESP2/RESP3 client.
//! Blocking I/O all the way down: no async runtime.
//!
//! ```no_run
//! use valkit::{cmd, Commands, Connection, Execute};
//! # fn main() -> valkit::Result<()> {
//! let conn = Connection::open_url("redis://127.0.0.1:6379")?;
//! conn.set("k", "v")?;
//! let v: Option<String> = conn.get("k")?;
//! assert_eq!(v.as_deref(), Some("v"));
//! let pong = conn.exec(&cmd("PING"))?;
//! # let _ = pong; Ok(()) }
//! ```
//!
//! ## Layers
//! The codec ([`Value`], [`Bytes`], [`resp::Frame`]) → commands ([`Cmd`], [`Pipeline`], the
//! [`Execute`] trait) →
//! [`Connection`] (one socket) → [`Pool`] → [`Client`] (reader/writer routing, retry,
//! circuit breaker, metrics, health) → patterns ([`cache`], [`lock`], [`limit`]). Typed helpers ([`Commands`]),
//! [`Script`]s and patterns work on anything that implements [`Execute`]: a connection, a
//! pool or a client.
//!
//! ## Features
//! | feature | default | what it adds | extra dependencies |
//! | --- | --- | --- | --- |
//! | `tls` | yes | `rediss://` / `valkeys://`, [`TlsConfig`] | native-tls |
//! | `json` | yes | serde_json as the cache's default value codec | serde, serde_json |
//! | `testkit` | no | [`testkit`]: throwaway `valkey-server` / `redis-server`, TLS fronts | none |
//!
//! ## Logging
//! Through the `log` crate. `warn`: TLS verification disabled. `debug`: connections opened,
//! connections marked broken (with the reason). Passwords never appear at any level; the
//! `Debug` of a [`Cmd`] redacts the secret arguments of AUTH, HELLO, ACL SETUSER, CONFIG SET,
//! MIGRATE, SENTINEL SET, MODULE LOAD, ... (one table, `cmd/spec`) and truncates long
//! values to 64 bytes, and a server's error reply to such a command is scrubbed of them
//! before it becomes an error or a log line.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod client;
mod cluster;
mod commands;
mod error;
mod script;

mod cmd;
mod config;
mod conn;
mod pool;
pub mod resp;

pub mod admin;

pub mod cache;
pub mod limit;
pub mod lock;
pub mod near;
pub mod pubsub;
#[cfg(feature = "json")]
pub mod queue;
pub mod write_behind;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use client::{
    error_label, Backoff, BreakerOptions, BreakerState, Client, ClientBuilder, ClusterScan,
    CommandEvent, Endpoint, EndpointHealth, Health, Metrics, MetricsSource, Observer, ReplicaReads,
    RetryPolicy, LATENCY_BUCKETS,
};
pub use cmd::{
    cmd, hash_tag, key_slot, pipe, ArgWriter, Blocking, Cmd, Execute, FromValue, Pipeline,
    ReadFrom, ToArgs, LARGE_ARG, SLOTS,
};
pub use commands::{
    Commands, Condition, CopyOptions, ExpireTime, Expiry, GetExExpiry, Info, KeyType, ListEnd,
    ScanIter, ScanOptions, ScoreBound, ScoreUpdate, SetOptions, StreamEntry, StreamTrim,
    TrimStrategy, Ttl, XReadGroupOptions, ZAddOptions, ZRangeBy, ZRangeOptions,
};
pub use config::{Addr, ConnectionConfig, Protocol, Secret, TlsConfig};
pub use conn::{Connection, PeerState, SessionState, Transaction, TxOutcome};
pub use error::{Error, ErrorClass, ErrorKind, Limit, Result, ServerError, ServerErrorKind};
pub use pool::{Pool, PoolOptions, PoolStats, PooledConnection};
pub use resp::{bytes::Bytes, value::Value};
pub use script::{Script, ScriptInvocation};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../docs/client.md")]
#[cfg(doctest)]
pub struct ClientDocDoctests;

#[doc = include_str!("../docs/errors.md")]
#[cfg(doctest)]
pub struct ErrorsDocDoctests;
