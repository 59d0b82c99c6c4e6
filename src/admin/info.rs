//! `INFO` as typed sections.

use std::str::FromStr;

use crate::cmd::{cmd, Execute, FromValue};
use crate::commands::Info;
use crate::error::Result;

/// `# Server`: what runs, since when.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ServerSection {
    /// `valkey` or `redis` (from which version field the server reports).
    pub product: String,
    /// `valkey_version` on Valkey, `redis_version` otherwise.
    pub version: String,
    /// `redis_mode` / `server_mode`: `standalone`, `cluster` or `sentinel`.
    pub mode: String,
    /// `os`.
    pub os: String,
    /// `process_id`.
    pub process_id: u64,
    /// `tcp_port`.
    pub tcp_port: u16,
    /// `uptime_in_seconds`.
    pub uptime_secs: u64,
    /// `io_threads_active` (0 or 1; absent on some versions: 0).
    pub io_threads_active: u64,
}

/// `# Clients`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ClientsSection {
    /// `connected_clients`.
    pub connected_clients: u64,
    /// `blocked_clients` (waiting in BLPOP, XREAD BLOCK, ...).
    pub blocked_clients: u64,
    /// `maxclients` (Redis 7+, Valkey), 0 when not reported.
    pub maxclients: u64,
    /// `tracking_clients` (client-side caching), 0 when not reported.
    pub tracking_clients: u64,
}

/// `# Memory`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MemorySection {
    /// `used_memory` (bytes the allocator handed out).
    pub used_memory: u64,
    /// `used_memory_rss` (bytes the OS sees).
    pub used_memory_rss: u64,
    /// `used_memory_peak`.
    pub used_memory_peak: u64,
    /// `maxmemory`; `None` when 0 (no limit).
    pub maxmemory: Option<u64>,
    /// `maxmemory_policy` (`noeviction`, `allkeys-lfu`, ...).
    pub maxmemory_policy: String,
    /// `mem_fragmentation_ratio`.
    pub fragmentation_ratio: f64,
}

impl MemorySection {
    /// `used_memory / maxmemory`, when a limit is set.
    pub fn used_ratio(&self) -> Option<f64> {
        self.maxmemory.map(|m| self.used_memory as f64 / m as f64)
    }
}

/// `# Stats`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StatsSection {
    /// `total_connections_received`.
    pub total_connections_received: u64,
    /// `total_commands_processed`.
    pub total_commands_processed: u64,
    /// `instantaneous_ops_per_sec`.
    pub instantaneous_ops_per_sec: u64,
    /// `rejected_connections` (over `maxclients`).
    pub rejected_connections: u64,
    /// `expired_keys`.
    pub expired_keys: u64,
    /// `evicted_keys` (maxmemory reached).
    pub evicted_keys: u64,
    /// `keyspace_hits`.
    pub keyspace_hits: u64,
    /// `keyspace_misses`.
    pub keyspace_misses: u64,
    /// `total_net_input_bytes`.
    pub total_net_input_bytes: u64,
    /// `total_net_output_bytes`.
    pub total_net_output_bytes: u64,
}

impl StatsSection {
    /// `hits / (hits + misses)` since the server started (or `CONFIG RESETSTAT`); `None`
    /// before any lookup.
    pub fn hit_rate(&self) -> Option<f64> {
        let total = self.keyspace_hits + self.keyspace_misses;
        (total > 0).then(|| self.keyspace_hits as f64 / total as f64)
    }
}

/// `# Replication`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ReplicationSection {
    /// `role`: `master` or `slave`.
    pub role: String,
    /// `connected_slaves`.
    pub connected_replicas: u64,
    /// `master_host` on a replica.
    pub primary_host: Option<String>,
    /// `master_port` on a replica.
    pub primary_port: Option<u16>,
    /// `master_link_status` on a replica (`up` / `down`).
    pub link_status: Option<String>,
    /// `master_repl_offset`.
    pub repl_offset: u64,
}

/// `# Persistence`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct PersistenceSection {
    /// `loading`: the server is loading its dataset (commands get `LOADING`).
    pub loading: bool,
    /// `rdb_changes_since_last_save`.
    pub rdb_changes_since_last_save: u64,
    /// `rdb_bgsave_in_progress`.
    pub rdb_bgsave_in_progress: bool,
    /// `rdb_last_save_time` (Unix seconds).
    pub rdb_last_save_time: u64,
    /// `rdb_last_bgsave_status` (`ok` / `err`).
    pub rdb_last_bgsave_status: String,
    /// `aof_enabled`.
    pub aof_enabled: bool,
    /// `aof_rewrite_in_progress`.
    pub aof_rewrite_in_progress: bool,
    /// `aof_rewrite_scheduled` (waits for a running BGSAVE).
    pub aof_rewrite_scheduled: bool,
    /// `aof_last_bgrewrite_status` (`ok` / `err`).
    pub aof_last_bgrewrite_status: String,
    /// `aof_last_write_status` (`ok` / `err`).
    pub aof_last_write_status: String,
}

/// One line of `# Keyspace`: `db0:keys=10,expires=2,avg_ttl=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyspaceDb {
    /// The database number.
    pub db: u32,
    /// Keys in it.
    pub keys: u64,
    /// Keys with a TTL.
    pub expires: u64,
    /// Average TTL of those (ms; an estimate).
    pub avg_ttl_ms: u64,
}

/// The `INFO` sections an operator reads, typed. Fields a server does not report are
/// zero / empty; [`InfoReport::raw`] keeps every field.
///
/// ```
/// use valkit::admin::InfoReport;
/// use valkit::Info;
/// let raw = Info::parse("# Server\r\nvalkey_version:9.1.0\r\n# Memory\r\nused_memory:100\r\nmaxmemory:400\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n");
/// let report = InfoReport::from_info(raw);
/// assert_eq!(report.server.product, "valkey");
/// assert_eq!(report.memory.used_ratio(), Some(0.25));
/// assert_eq!(report.keyspace[0].keys, 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct InfoReport {
    /// `# Server`.
    pub server: ServerSection,
    /// `# Clients`.
    pub clients: ClientsSection,
    /// `# Memory`.
    pub memory: MemorySection,
    /// `# Stats`.
    pub stats: StatsSection,
    /// `# Replication`.
    pub replication: ReplicationSection,
    /// `# Persistence`.
    pub persistence: PersistenceSection,
    /// `# Keyspace`, by database number.
    pub keyspace: Vec<KeyspaceDb>,
    /// Every field of every section, as the server sent it.
    #[cfg_attr(feature = "json", serde(skip))]
    pub raw: Info,
}

/// The sections [`info`] asks for.
pub(crate) const SECTIONS: [&str; 7] = [
    "server",
    "clients",
    "memory",
    "stats",
    "replication",
    "persistence",
    "keyspace",
];

/// `INFO server clients memory stats replication persistence keyspace`, typed.
pub fn info<E: Execute + ?Sized>(ex: &E) -> Result<InfoReport> {
    let raw = Info::from_value(ex.exec(&cmd("INFO").arg(&SECTIONS[..]))?)?;
    Ok(InfoReport::from_info(raw))
}

fn num<T: FromStr + Default>(info: &Info, section: &str, field: &str) -> T {
    info.get(section, field)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}

fn text(info: &Info, section: &str, field: &str) -> String {
    info.get(section, field).unwrap_or_default().to_owned()
}

fn flag(info: &Info, section: &str, field: &str) -> bool {
    num::<u64>(info, section, field) != 0
}

impl InfoReport {
    /// Type the sections of an already parsed `INFO` reply.
    pub fn from_info(raw: Info) -> InfoReport {
        let i = &raw;
        let (product, version) = match i.get("server", "valkey_version") {
            Some(v) => ("valkey", v.to_owned()),
            None => ("redis", text(i, "server", "redis_version")),
        };
        let mode = i
            .get("server", "server_mode")
            .or_else(|| i.get("server", "redis_mode"))
            .unwrap_or_default()
            .to_owned();
        let maxmemory: u64 = num(i, "memory", "maxmemory");
        let keyspace = i
            .section("keyspace")
            .map(|s| {
                s.iter()
                    .filter_map(|(name, v)| parse_keyspace_line(name, v))
                    .collect()
            })
            .unwrap_or_default();
        InfoReport {
            server: ServerSection {
                product: product.to_owned(),
                version,
                mode,
                os: text(i, "server", "os"),
                process_id: num(i, "server", "process_id"),
                tcp_port: num(i, "server", "tcp_port"),
                uptime_secs: num(i, "server", "uptime_in_seconds"),
                io_threads_active: num(i, "server", "io_threads_active"),
            },
            clients: ClientsSection {
                connected_clients: num(i, "clients", "connected_clients"),
                blocked_clients: num(i, "clients", "blocked_clients"),
                maxclients: num(i, "clients", "maxclients"),
                tracking_clients: num(i, "clients", "tracking_clients"),
            },
            memory: MemorySection {
                used_memory: num(i, "memory", "used_memory"),
                used_memory_rss: num(i, "memory", "used_memory_rss"),
                used_memory_peak: num(i, "memory", "used_memory_peak"),
                maxmemory: (maxmemory > 0).then_some(maxmemory),
                maxmemory_policy: text(i, "memory", "maxmemory_policy"),
                fragmentation_ratio: num(i, "memory", "mem_fragmentation_ratio"),
            },
            stats: StatsSection {
                total_connections_received: num(i, "stats", "total_connections_received"),
                total_commands_processed: num(i, "stats", "total_commands_processed"),
                instantaneous_ops_per_sec: num(i, "stats", "instantaneous_ops_per_sec"),
                rejected_connections: num(i, "stats", "rejected_connections"),
                expired_keys: num(i, "stats", "expired_keys"),
                evicted_keys: num(i, "stats", "evicted_keys"),
                keyspace_hits: num(i, "stats", "keyspace_hits"),
                keyspace_misses: num(i, "stats", "keyspace_misses"),
                total_net_input_bytes: num(i, "stats", "total_net_input_bytes"),
                total_net_output_bytes: num(i, "stats", "total_net_output_bytes"),
            },
            replication: ReplicationSection {
                role: text(i, "replication", "role"),
                connected_replicas: num(i, "replication", "connected_slaves"),
                primary_host: i.get("replication", "master_host").map(str::to_owned),
                primary_port: i
                    .get("replication", "master_port")
                    .and_then(|p| p.parse().ok()),
                link_status: i
                    .get("replication", "master_link_status")
                    .map(str::to_owned),
                repl_offset: num(i, "replication", "master_repl_offset"),
            },
            persistence: PersistenceSection {
                loading: flag(i, "persistence", "loading"),
                rdb_changes_since_last_save: num(i, "persistence", "rdb_changes_since_last_save"),
                rdb_bgsave_in_progress: flag(i, "persistence", "rdb_bgsave_in_progress"),
                rdb_last_save_time: num(i, "persistence", "rdb_last_save_time"),
                rdb_last_bgsave_status: text(i, "persistence", "rdb_last_bgsave_status"),
                aof_enabled: flag(i, "persistence", "aof_enabled"),
                aof_rewrite_in_progress: flag(i, "persistence", "aof_rewrite_in_progress"),
                aof_rewrite_scheduled: flag(i, "persistence", "aof_rewrite_scheduled"),
                aof_last_bgrewrite_status: text(i, "persistence", "aof_last_bgrewrite_status"),
                aof_last_write_status: text(i, "persistence", "aof_last_write_status"),
            },
            keyspace,
            raw,
        }
    }
}

/// `db3` + `keys=10,expires=2,avg_ttl=0`.
fn parse_keyspace_line(name: &str, value: &str) -> Option<KeyspaceDb> {
    let db = name.strip_prefix("db")?.parse().ok()?;
    let mut out = KeyspaceDb {
        db,
        ..KeyspaceDb::default()
    };
    for part in value.split(',') {
        let (k, v) = part.split_once('=')?;
        let v: u64 = v.trim().parse().unwrap_or(0);
        match k {
            "keys" => out.keys = v,
            "expires" => out.expires = v,
            "avg_ttl" => out.avg_ttl_ms = v,
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_lines() {
        let db = parse_keyspace_line("db12", "keys=5,expires=0,avg_ttl=7,subexpiry=0").unwrap();
        assert_eq!((db.db, db.keys, db.expires, db.avg_ttl_ms), (12, 5, 0, 7));
        assert!(parse_keyspace_line("notdb", "keys=1").is_none());
        assert!(parse_keyspace_line("db1", "garbage").is_none());
    }

    #[test]
    fn missing_fields_are_zero_not_errors() {
        let r = InfoReport::from_info(Info::parse("# Server\r\nredis_version:7.0.15\r\n"));
        assert_eq!(r.server.product, "redis");
        assert_eq!(r.memory.maxmemory, None);
        assert_eq!(r.stats.hit_rate(), None);
        assert!(r.keyspace.is_empty());
    }
}
