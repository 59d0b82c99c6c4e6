//! `MEMORY USAGE / DOCTOR / STATS`, `CONFIG GET / SET`, `LATENCY DOCTOR`.

use std::collections::BTreeMap;

use crate::cmd::{cmd, Execute, FromValue, ToArgs};
use crate::error::Result;
use crate::resp::Value;

/// `MEMORY USAGE key [SAMPLES n]`: bytes the key takes, `None` when it does not exist.
/// `samples` bounds how many elements of an aggregate are looked at (`Some(0)`: all of
/// them, exact but slow on big keys; `None`: the server's default of 5).
pub fn memory_usage<E: Execute + ?Sized, K: ToArgs>(
    ex: &E,
    key: K,
    samples: Option<u64>,
) -> Result<Option<u64>> {
    let mut c = cmd("MEMORY").arg("USAGE").arg(key);
    if let Some(n) = samples {
        c = c.arg("SAMPLES").arg(n);
    }
    Option::<u64>::from_value(ex.exec(&c)?)
}

/// `MEMORY DOCTOR`: the server's own advice, as text.
pub fn memory_doctor<E: Execute + ?Sized>(ex: &E) -> Result<String> {
    String::from_value(ex.exec(&cmd("MEMORY").arg("DOCTOR"))?)
}

/// `LATENCY DOCTOR`: the latency monitor's report, as text (it needs
/// `latency-monitor-threshold` above 0 to have anything to say).
pub fn latency_doctor<E: Execute + ?Sized>(ex: &E) -> Result<String> {
    String::from_value(ex.exec(&cmd("LATENCY").arg("DOCTOR"))?)
}

/// The numbers of `MEMORY STATS`.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MemoryStats {
    /// `peak.allocated`.
    pub peak_allocated: u64,
    /// `total.allocated`.
    pub total_allocated: u64,
    /// `dataset.bytes`: memory for the data itself.
    pub dataset_bytes: u64,
    /// `overhead.total`: everything else (buffers, dictionaries, replication backlog...).
    pub overhead_total: u64,
    /// `keys.count`.
    pub keys_count: u64,
    /// `fragmentation`.
    pub fragmentation: f64,
    /// Every numeric field, nested ones as `db.0.overhead.hashtable.main`.
    pub fields: BTreeMap<String, f64>,
}

/// `MEMORY STATS`.
pub fn memory_stats<E: Execute + ?Sized>(ex: &E) -> Result<MemoryStats> {
    let mut fields = BTreeMap::new();
    flatten("", ex.exec(&cmd("MEMORY").arg("STATS"))?, &mut fields);
    let n = |k: &str| fields.get(k).copied().unwrap_or(0.0);
    Ok(MemoryStats {
        peak_allocated: n("peak.allocated") as u64,
        total_allocated: n("total.allocated") as u64,
        dataset_bytes: n("dataset.bytes") as u64,
        overhead_total: n("overhead.total") as u64,
        keys_count: n("keys.count") as u64,
        fragmentation: n("fragmentation"),
        fields,
    })
}

/// Collect the numeric leaves of a name/value reply (a RESP3 map or a RESP2 flat array).
fn flatten(prefix: &str, v: Value, out: &mut BTreeMap<String, f64>) {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(p) => p,
        Value::Array(items) => {
            let mut it = items.into_iter();
            let mut p = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                p.push((k, v));
            }
            p
        }
        leaf => {
            let n = match leaf {
                Value::Int(i) => Some(i as f64),
                Value::Double(d) => Some(d),
                Value::Bulk(b) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()),
                _ => None,
            };
            if let Some(n) = n {
                out.insert(prefix.to_owned(), n);
            }
            return;
        }
    };
    for (k, v) in pairs {
        let Ok(name) = String::from_value(k) else {
            continue;
        };
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        flatten(&full, v, out);
    }
}

/// `CONFIG GET pattern`: matching parameters and their values (`*` for all).
pub fn config_get<E: Execute + ?Sized>(ex: &E, pattern: &str) -> Result<BTreeMap<String, String>> {
    BTreeMap::from_value(ex.exec(&cmd("CONFIG").arg("GET").arg(pattern))?)
}

/// `CONFIG SET name value`. The change is not written to the config file (run
/// `CONFIG REWRITE` for that, or edit the file).
pub fn config_set<E: Execute + ?Sized>(ex: &E, name: &str, value: &str) -> Result<()> {
    <()>::from_value(ex.exec(&cmd("CONFIG").arg("SET").arg(name).arg(value))?)
}
