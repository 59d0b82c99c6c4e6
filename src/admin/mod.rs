//! Typed administration helpers: what an operator runs with `valkey-cli` (`INFO`,
//! `SLOWLOG`, `MEMORY`, `CLIENT LIST`, `CONFIG`, `--bigkeys`, `BGSAVE`, `LATENCY DOCTOR`),
//! as functions over any [`Execute`](crate::Execute) returning structs.
//!
//! Every helper takes `&impl Execute` (a connection, a pool, a client), so it runs where the
//! application already has one. The `valkit` command-line tool (`src/bin/valkit.rs`) is built
//! on these; `docs/operations.md` says when to reach for which.
//!
//! ```no_run
//! use std::time::Duration;
//! use valkit::admin::{self, BigKeyOptions};
//! use valkit::Connection;
//! # fn main() -> valkit::Result<()> {
//! let conn = Connection::open_url("redis://127.0.0.1:6379")?;
//! let info = admin::info(&conn)?;
//! println!("{} used of {:?}", info.memory.used_memory, info.memory.maxmemory);
//! for entry in admin::slowlog_get(&conn, Some(10))? {
//!     println!("{} µs: {}", entry.duration.as_micros(), entry.args.join(" "));
//! }
//! // Safe on production: at most 1,000 keys a second, for at most 30 s.
//! let opts = BigKeyOptions::new().max_rate(1_000).max_duration(Duration::from_secs(30));
//! let report = admin::big_keys(&conn, &opts, &mut |_| {})?;
//! for (kind, summary) in &report.by_type {
//!     println!("{kind}: {} keys, biggest {:?}", summary.keys, summary.biggest.first());
//! }
//! # Ok(()) }
//! ```
//!
//! Helpers that only read (`info`, `slowlog_get`, `client_list`, `config_get`, `big_keys`,
//! `memory_*`, `latency_doctor`) are safe on a live server; `big_keys` is bounded in time and
//! rate. `slowlog_reset`, `config_set`, `bgsave` and `bgrewriteaof` change server state.

mod bigkeys;
mod clients;
mod info;
mod memory;
mod persist;
#[cfg(feature = "json")]
mod prometheus;
mod slowlog;

pub use bigkeys::{big_keys, BigKey, BigKeyOptions, BigKeyProgress, BigKeyReport, TypeSummary};
pub use clients::{client_list, parse_client_list, ClientInfo};
pub use info::{
    info, ClientsSection, InfoReport, KeyspaceDb, MemorySection, PersistenceSection,
    ReplicationSection, ServerSection, StatsSection,
};
pub use memory::{
    config_get, config_set, latency_doctor, memory_doctor, memory_stats, memory_usage, MemoryStats,
};
pub use persist::{bgrewriteaof, bgsave, persistence_status, BackgroundJob, BackupReport};
#[cfg(feature = "json")]
pub use prometheus::queue_metrics_text;
pub use slowlog::{slowlog_get, slowlog_len, slowlog_reset, SlowlogEntry};
