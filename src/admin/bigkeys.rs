//! A big-key sampler over `SCAN`, bounded in time and rate (what `valkey-cli --bigkeys`
//! does, safe to run on production).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cmd::{cmd, pipe, Execute, FromValue};
use crate::error::{Error, Result};
use crate::resp::Value;

/// How [`big_keys`] walks the keyspace.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BigKeyOptions {
    /// `SCAN ... MATCH pattern` (default: every key).
    pub pattern: Option<String>,
    /// `SCAN ... COUNT n`: keys asked for per round trip (default 100).
    pub batch: u64,
    /// Stop after this long, with [`BigKeyReport::complete`] false (default 60 s).
    pub max_duration: Duration,
    /// At most this many keys a second (default 5,000; 0: no limit). The sampler sleeps
    /// between batches to stay under it, so the server keeps serving everyone else.
    pub max_rate: u64,
    /// Stop after this many keys (default: no limit).
    pub max_keys: Option<u64>,
    /// Also ask `MEMORY USAGE` for every key (one more command per key, in the same
    /// pipeline; default on).
    pub memory_usage: bool,
    /// How many of the biggest keys to keep per type (default 5).
    pub top: usize,
}

impl Default for BigKeyOptions {
    fn default() -> Self {
        BigKeyOptions {
            pattern: None,
            batch: 100,
            max_duration: Duration::from_secs(60),
            max_rate: 5_000,
            max_keys: None,
            memory_usage: true,
            top: 5,
        }
    }
}

impl BigKeyOptions {
    /// The defaults (see the fields).
    pub fn new() -> Self {
        Self::default()
    }
    /// Only keys matching this glob pattern.
    pub fn pattern(mut self, pattern: &str) -> Self {
        self.pattern = Some(pattern.to_owned());
        self
    }
    /// Keys per `SCAN` round trip (at least 1).
    pub fn batch(mut self, n: u64) -> Self {
        self.batch = n.max(1);
        self
    }
    /// Time budget.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }
    /// Keys per second (0: unlimited).
    pub fn max_rate(mut self, keys_per_sec: u64) -> Self {
        self.max_rate = keys_per_sec;
        self
    }
    /// Key budget.
    pub fn max_keys(mut self, n: u64) -> Self {
        self.max_keys = Some(n);
        self
    }
    /// Whether to ask `MEMORY USAGE` per key.
    pub fn memory_usage(mut self, on: bool) -> Self {
        self.memory_usage = on;
        self
    }
    /// Biggest keys kept per type.
    pub fn top(mut self, n: usize) -> Self {
        self.top = n;
        self
    }
}

/// One big key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BigKey {
    /// The key (lossy UTF-8).
    pub key: String,
    /// Its type (`string`, `list`, `hash`, `set`, `zset`, `stream`).
    pub kind: String,
    /// Its size: bytes for a string, elements for an aggregate.
    pub size: u64,
    /// `MEMORY USAGE` (bytes), when asked for.
    pub memory: Option<u64>,
}

impl BigKey {
    /// `bytes` for strings, `items` for aggregates.
    pub fn unit(&self) -> &'static str {
        if self.kind == "string" {
            "bytes"
        } else {
            "items"
        }
    }
}

/// What [`big_keys`] found for one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TypeSummary {
    /// Keys of this type seen.
    pub keys: u64,
    /// Their sizes added up (bytes or elements).
    pub total_size: u64,
    /// Their `MEMORY USAGE` added up (0 when not asked for).
    pub total_memory: u64,
    /// The biggest, biggest first (by size).
    pub biggest: Vec<BigKey>,
}

/// The result of [`big_keys`].
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BigKeyReport {
    /// Keys looked at (a key the scan returned twice counts twice; one deleted meanwhile
    /// not at all).
    pub scanned: u64,
    /// Per type, by type name.
    pub by_type: BTreeMap<String, TypeSummary>,
    /// True when the scan reached the end of the keyspace; false when a budget (time,
    /// keys) stopped it first.
    pub complete: bool,
    /// How long it ran (seconds).
    pub elapsed_secs: f64,
}

/// Progress of a running [`big_keys`], handed to its callback after every batch.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BigKeyProgress {
    /// Keys looked at so far.
    pub scanned: u64,
    /// `DBSIZE` when the scan started (for a percentage; keys come and go).
    pub dbsize: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// Walk the keyspace with `SCAN` and report the biggest keys per type: strings by length
/// (`STRLEN`), lists, hashes, sets, sorted sets and streams by element count, plus
/// `MEMORY USAGE` when [`BigKeyOptions::memory_usage`] is on. Each batch is one `SCAN` and
/// two pipelines (types, then sizes). Bounded by [`BigKeyOptions::max_duration`],
/// [`BigKeyOptions::max_keys`] and paced by [`BigKeyOptions::max_rate`].
///
/// On a cluster, give it one node's connection (each node holds its own keys).
pub fn big_keys<E: Execute + ?Sized>(
    ex: &E,
    opts: &BigKeyOptions,
    progress: &mut dyn FnMut(&BigKeyProgress),
) -> Result<BigKeyReport> {
    let start = Instant::now();
    let deadline = start + opts.max_duration;
    let dbsize = u64::from_value(ex.exec(&cmd("DBSIZE"))?)?;
    let mut report = BigKeyReport::default();
    let mut cursor = b"0".to_vec();
    loop {
        let mut scan = cmd("SCAN").arg(&cursor[..]);
        if let Some(p) = &opts.pattern {
            scan = scan.arg("MATCH").arg(p);
        }
        scan = scan.arg("COUNT").arg(opts.batch.max(1));
        let (next, mut keys): (Vec<u8>, Vec<Vec<u8>>) = FromValue::from_value(ex.exec(&scan)?)?;
        if next.is_empty() || !next.iter().all(u8::is_ascii_digit) {
            return Err(Error::conversion("bad SCAN cursor"));
        }
        let mut truncated = false;
        if let Some(max) = opts.max_keys {
            let room = max.saturating_sub(report.scanned) as usize;
            truncated = keys.len() > room;
            keys.truncate(room);
        }
        measure(ex, &keys, opts, &mut report)?;
        let elapsed = start.elapsed();
        progress(&BigKeyProgress {
            scanned: report.scanned,
            dbsize,
            elapsed,
        });
        if next == b"0" {
            // The last batch, unless the key budget cut it short.
            report.complete = !truncated;
            break;
        }
        cursor = next;
        if opts.max_keys.is_some_and(|m| report.scanned >= m) {
            break;
        }
        // Pace: the keys seen so far may not have taken less than scanned / rate.
        if opts.max_rate > 0 {
            let due = Duration::from_secs_f64(report.scanned as f64 / opts.max_rate as f64);
            if let Some(wait) = due.checked_sub(elapsed) {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(wait.min(left));
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    for s in report.by_type.values_mut() {
        s.biggest
            .sort_by(|a, b| b.size.cmp(&a.size).then(a.key.cmp(&b.key)));
    }
    report.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Types, then sizes (and memory) of one batch, in two pipelines.
fn measure<E: Execute + ?Sized>(
    ex: &E,
    keys: &[Vec<u8>],
    opts: &BigKeyOptions,
    report: &mut BigKeyReport,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut types = pipe();
    for k in keys {
        types.add(cmd("TYPE").arg(&k[..]));
    }
    let types = ex.exec_pipeline(&types)?;
    let mut sizes = pipe();
    let mut kept = Vec::new();
    for (k, t) in keys.iter().zip(types) {
        let kind = match t {
            Value::Simple(s) => s.to_string(),
            other => match String::from_value(other) {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        let size_cmd = match kind.as_str() {
            "string" => "STRLEN",
            "list" => "LLEN",
            "hash" => "HLEN",
            "set" => "SCARD",
            "zset" => "ZCARD",
            "stream" => "XLEN",
            _ => continue, // `none`: deleted since the SCAN; modules' types: skipped
        };
        sizes.add(cmd(size_cmd).arg(&k[..]));
        if opts.memory_usage {
            sizes.add(cmd("MEMORY").arg("USAGE").arg(&k[..]));
        }
        kept.push((k, kind));
    }
    if kept.is_empty() {
        return Ok(());
    }
    let per_key = if opts.memory_usage { 2 } else { 1 };
    let replies = ex.exec_pipeline(&sizes)?;
    for (i, (k, kind)) in kept.into_iter().enumerate() {
        let size = match &replies[i * per_key] {
            Value::Int(n) => (*n).max(0) as u64,
            _ => continue, // a WRONGTYPE: the key changed type between the two pipelines
        };
        let memory = if opts.memory_usage {
            match &replies[i * per_key + 1] {
                Value::Int(n) => Some((*n).max(0) as u64),
                _ => None,
            }
        } else {
            None
        };
        report.scanned += 1;
        let s = report.by_type.entry(kind.clone()).or_default();
        s.keys += 1;
        s.total_size += size;
        s.total_memory += memory.unwrap_or(0);
        let entry = BigKey {
            key: String::from_utf8_lossy(k).into_owned(),
            kind,
            size,
            memory,
        };
        if opts.top == 0 {
            continue;
        }
        if s.biggest.len() < opts.top {
            s.biggest.push(entry);
        } else if let Some((min_i, min)) = s.biggest.iter().enumerate().min_by_key(|(_, b)| b.size)
        {
            if entry.size > min.size {
                s.biggest[min_i] = entry;
            }
        }
    }
    Ok(())
}
