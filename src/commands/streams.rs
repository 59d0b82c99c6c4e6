//! The stream commands: `XADD` (with `MAXLEN`/`MINID` trimming), `XRANGE`, `XREADGROUP`,
//! `XACK`, `XPENDING`, `XCLAIM`, `XAUTOCLAIM`, `XINFO`, ...; [`StreamEntry`],
//! [`StreamTrim`], [`XReadGroupOptions`].

use std::time::Duration;

use crate::cmd::{ArgWriter, Blocking, FromValue, ToArgs};
use crate::error::Result;
use crate::resp::{Frame, Value};

/// One entry of a stream: its id and its field/value pairs, in the order they were added.
///
/// Read from `[id, [field, value, ...]]`; an entry deleted while pending (`XCLAIM` on old
/// servers answers `[id, nil]`) has no fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamEntry {
    /// The id, `<milliseconds>-<sequence>`.
    pub id: String,
    /// The fields and values.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl StreamEntry {
    /// The value of the first field named `field`.
    pub fn get(&self, field: impl AsRef<[u8]>) -> Option<&[u8]> {
        let field = field.as_ref();
        self.fields
            .iter()
            .find(|(f, _)| f.as_slice() == field)
            .map(|(_, v)| v.as_slice())
    }
}

type Raw = (String, Option<Vec<(Vec<u8>, Vec<u8>)>>);

impl FromValue for StreamEntry {
    fn from_value(v: Value) -> Result<StreamEntry> {
        let (id, fields) = Raw::from_value(v)?;
        Ok(StreamEntry {
            id,
            fields: fields.unwrap_or_default(),
        })
    }

    fn from_frame(f: Frame<'_>) -> Result<StreamEntry> {
        let (id, fields) = Raw::from_frame(f)?;
        Ok(StreamEntry {
            id,
            fields: fields.unwrap_or_default(),
        })
    }
}

/// How `XADD` or `XTRIM` trims a stream.
///
/// ```
/// use valkit::StreamTrim;
/// // Keep about the newest 1000 entries (the server may keep a few more, cheaply).
/// let trim = StreamTrim::max_len(1000).approx();
/// # let _ = trim;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamTrim {
    /// `MAXLEN n` or `MINID id`.
    pub strategy: TrimStrategy,
    /// `~`: trim only whole nodes (faster; may keep a few more entries than asked).
    pub approx: bool,
    /// `LIMIT n` (with `approx` only): evict at most this many entries per call.
    pub limit: Option<u64>,
}

/// What a [`StreamTrim`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrimStrategy {
    /// `MAXLEN n`: keep the newest `n` entries.
    MaxLen(u64),
    /// `MINID id`: drop entries with ids lower than `id`.
    MinId(String),
}

impl StreamTrim {
    /// Keep the newest `n` entries (`MAXLEN n`), exactly.
    pub fn max_len(n: u64) -> StreamTrim {
        StreamTrim {
            strategy: TrimStrategy::MaxLen(n),
            approx: false,
            limit: None,
        }
    }

    /// Drop entries with ids below `id` (`MINID id`), exactly.
    pub fn min_id(id: impl Into<String>) -> StreamTrim {
        StreamTrim {
            strategy: TrimStrategy::MinId(id.into()),
            approx: false,
            limit: None,
        }
    }

    /// Trim whole nodes only (`~`).
    pub fn approx(mut self) -> StreamTrim {
        self.approx = true;
        self
    }

    /// Evict at most `n` entries per call (`LIMIT n`; implies `~`).
    pub fn limit(mut self, n: u64) -> StreamTrim {
        self.approx = true;
        self.limit = Some(n);
        self
    }
}

impl ToArgs for StreamTrim {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match &self.strategy {
            TrimStrategy::MaxLen(_) => out.write(b"MAXLEN"),
            TrimStrategy::MinId(_) => out.write(b"MINID"),
        }
        out.write(if self.approx { b"~" } else { b"=" });
        match &self.strategy {
            TrimStrategy::MaxLen(n) => n.write_args(out),
            TrimStrategy::MinId(id) => id.write_args(out),
        }
        if let Some(n) = self.limit {
            ("LIMIT", n).write_args(out);
        }
    }
}

/// Options of `XREADGROUP`: how many entries, how long to wait, and `NOACK`.
///
/// ```
/// use std::time::Duration;
/// use valkit::XReadGroupOptions;
/// let opts = XReadGroupOptions::new().count(10).block(Duration::from_secs(2));
/// assert_eq!(opts.count, Some(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct XReadGroupOptions {
    /// `COUNT n`: at most this many entries per stream.
    pub count: Option<u64>,
    /// `BLOCK ms`: wait up to this long for new entries (`Duration::ZERO` waits for ever);
    /// `None` returns at once.
    pub block: Option<Duration>,
    /// `NOACK`: do not add the entries to the pending list.
    pub noack: bool,
}

impl XReadGroupOptions {
    /// Return at once, every available entry, acknowledged later with `XACK`.
    pub fn new() -> XReadGroupOptions {
        XReadGroupOptions::default()
    }

    /// At most `n` entries per stream.
    pub fn count(mut self, n: u64) -> XReadGroupOptions {
        self.count = Some(n);
        self
    }

    /// Wait up to `d` for entries (`Duration::ZERO`: for ever).
    pub fn block(mut self, d: Duration) -> XReadGroupOptions {
        self.block = Some(d);
        self
    }

    /// Do not track the entries as pending.
    pub fn noack(mut self) -> XReadGroupOptions {
        self.noack = true;
        self
    }

    /// How long the connection must let the server hold the reply.
    pub(crate) fn blocking(&self) -> Blocking {
        match self.block {
            None => Blocking::No,
            Some(d) if d.is_zero() => Blocking::Forever,
            Some(d) => Blocking::For(d),
        }
    }
}

impl ToArgs for XReadGroupOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        if let Some(n) = self.count {
            ("COUNT", n).write_args(out);
        }
        if let Some(d) = self.block {
            // A non-zero wait under 1 ms must not become 0 (for ever).
            let ms = if d.is_zero() {
                0
            } else {
                super::strings::millis(d).max(1)
            };
            ("BLOCK", ms).write_args(out);
        }
        if self.noack {
            out.write(b"NOACK");
        }
    }
}

/// `XREADGROUP ... STREAMS key... id...`: the keys, then one id per key.
pub(crate) fn streams_args<K: ToArgs, I: ToArgs>(
    c: crate::cmd::Cmd,
    keys: K,
    ids: I,
) -> crate::cmd::Cmd {
    c.arg("STREAMS").arg(keys).arg(ids)
}

/// The stream commands (see `define.rs` for the form).
macro_rules! stream_commands {
    ($out:ident) => { $out! {
    /// `XADD key id field value ...`: append an entry (`id` is usually `"*"`, the server
    /// picks one) and return its id.
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, StreamEntry, StreamTrim, XReadGroupOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let id = conn.xadd("orders", "*", &[("sku", "A-1"), ("qty", "2")])?;
    /// conn.xadd_trim("events", "*", ("kind", "login"), &StreamTrim::max_len(10_000).approx())?;
    /// conn.xgroup_create("orders", "billing", "0", true)?;
    /// let batch: Vec<(String, Vec<StreamEntry>)> = conn.xreadgroup(
    ///     "billing", "worker-1", "orders", ">", &XReadGroupOptions::new().count(10),
    /// )?;
    /// for (_stream, entries) in &batch {
    ///     for e in entries {
    ///         println!("{} sku={:?}", e.id, e.get("sku"));
    ///         conn.xack("orders", "billing", &e.id)?;
    ///     }
    /// }
    /// # let _ = id; Ok(()) }
    /// ```
    fn xadd<K: ToArgs, I: ToArgs, F: ToArgs>(key: K, id: I, fields: F) -> String {
        known_cmd!("XADD").arg(key).arg(id).arg(fields)
    }

    /// `XADD key MAXLEN|MINID [=|~] threshold [LIMIT n] id field value ...`: append and
    /// trim in one call; returns the new id.
    fn xadd_trim<K: ToArgs, I: ToArgs, F: ToArgs>(key: K, id: I, fields: F, trim: &StreamTrim) -> String {
        known_cmd!("XADD").arg(key).arg(trim).arg(id).arg(fields)
    }

    /// `XLEN key`: the number of entries.
    fn xlen<K: ToArgs>(key: K) -> u64 { known_cmd!("XLEN").arg(key) }

    /// `XRANGE key start end`: entries with ids in `start..=end` (`-` and `+` for the
    /// ends), oldest first, e.g. as `Vec<StreamEntry>`.
    fn xrange<K: ToArgs, S: ToArgs, E: ToArgs>(key: K, start: S, end: E) -> RV {
        known_cmd!("XRANGE").arg(key).arg(start).arg(end)
    }

    /// `XRANGE key start end COUNT count`: at most `count` entries.
    fn xrange_count<K: ToArgs, S: ToArgs, E: ToArgs>(key: K, start: S, end: E, count: u64) -> RV {
        known_cmd!("XRANGE").arg(key).arg(start).arg(end).arg("COUNT").arg(count)
    }

    /// `XREVRANGE key end start`: entries with ids in `start..=end`, newest first (note
    /// the server's order of the bounds: `end` first).
    fn xrevrange<K: ToArgs, E: ToArgs, S: ToArgs>(key: K, end: E, start: S) -> RV {
        known_cmd!("XREVRANGE").arg(key).arg(end).arg(start)
    }

    /// `XREVRANGE key end start COUNT count`: the newest `count` entries in the range.
    fn xrevrange_count<K: ToArgs, E: ToArgs, S: ToArgs>(key: K, end: E, start: S, count: u64) -> RV {
        known_cmd!("XREVRANGE").arg(key).arg(end).arg(start).arg("COUNT").arg(count)
    }

    /// `XDEL key id...`: how many entries were deleted.
    fn xdel<K: ToArgs, I: ToArgs>(key: K, ids: I) -> u64 { known_cmd!("XDEL").arg(key).arg(ids) }

    /// `XTRIM key MAXLEN|MINID ...`: how many entries were evicted.
    fn xtrim<K: ToArgs>(key: K, trim: &StreamTrim) -> u64 { known_cmd!("XTRIM").arg(key).arg(trim) }

    /// `XGROUP CREATE key group id [MKSTREAM]`: a consumer group reading from after `id`
    /// (`"$"`: only new entries; `"0"`: everything). With `mkstream`, a missing stream is
    /// created empty. An existing group is an error (`BUSYGROUP`).
    fn xgroup_create<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, id: I, mkstream: bool) -> () {
        let c = known_cmd!("XGROUP").arg("CREATE").arg(key).arg(group).arg(id);
        if mkstream { c.arg("MKSTREAM") } else { c }
    }

    /// `XGROUP DESTROY key group`: true when the group existed.
    fn xgroup_destroy<K: ToArgs, G: ToArgs>(key: K, group: G) -> bool {
        known_cmd!("XGROUP").arg("DESTROY").arg(key).arg(group)
    }

    /// `XGROUP SETID key group id`: move the group's last-delivered id.
    fn xgroup_setid<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, id: I) -> () {
        known_cmd!("XGROUP").arg("SETID").arg(key).arg(group).arg(id)
    }

    /// `XGROUP DELCONSUMER key group consumer`: how many pending entries the consumer had.
    fn xgroup_delconsumer<K: ToArgs, G: ToArgs, C: ToArgs>(key: K, group: G, consumer: C) -> u64 {
        known_cmd!("XGROUP").arg("DELCONSUMER").arg(key).arg(group).arg(consumer)
    }

    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...`:
    /// entries for this consumer, per stream (`">"`: new entries; an id: this consumer's
    /// pending entries after it). Read as `Vec<(String, Vec<StreamEntry>)>` or
    /// `HashMap<String, Vec<StreamEntry>>` (RESP2 arrays and RESP3 maps alike), inside an
    /// `Option` when blocking may time out.
    fn xreadgroup<G: ToArgs, C: ToArgs, K: ToArgs, I: ToArgs>(
        group: G,
        consumer: C,
        keys: K,
        ids: I,
        opts: &XReadGroupOptions
    ) -> RV {
        let c = known_cmd!("XREADGROUP").arg("GROUP").arg(group).arg(consumer).arg(opts);
        streams_args(c, keys, ids).blocking(opts.blocking())
    }

    /// `XACK key group id...`: how many entries were acknowledged.
    fn xack<K: ToArgs, G: ToArgs, I: ToArgs>(key: K, group: G, ids: I) -> u64 {
        known_cmd!("XACK").arg(key).arg(group).arg(ids)
    }

    /// `XPENDING key group`: the summary, `(count, lowest id, highest id, [(consumer,
    /// count)])`, e.g. as `(u64, Option<String>, Option<String>, Option<Vec<(String, u64)>>)`.
    fn xpending<K: ToArgs, G: ToArgs>(key: K, group: G) -> RV {
        known_cmd!("XPENDING").arg(key).arg(group)
    }

    /// `XPENDING key group start end count`: pending entries in the id range, each
    /// `(id, consumer, idle milliseconds, deliveries)`, e.g. as
    /// `Vec<(String, String, u64, u64)>`.
    fn xpending_range<K: ToArgs, G: ToArgs, S: ToArgs, E: ToArgs>(key: K, group: G, start: S, end: E, count: u64) -> RV {
        known_cmd!("XPENDING").arg(key).arg(group).arg(start).arg(end).arg(count)
    }

    /// `XCLAIM key group consumer min-idle-ms id...`: take over pending entries idle for
    /// at least `min_idle`; the claimed entries, e.g. as `Vec<StreamEntry>`.
    fn xclaim<K: ToArgs, G: ToArgs, C: ToArgs, I: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, ids: I) -> RV {
        known_cmd!("XCLAIM").arg(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(ids)
    }

    /// `XAUTOCLAIM key group consumer min-idle-ms start COUNT count`: claim up to `count`
    /// entries idle for at least `min_idle`, scanning from `start` (`"0-0"` first): `(next
    /// start, entries, deleted ids)`, e.g. as `(String, Vec<StreamEntry>, Vec<String>)`
    /// (Redis 7.0+ replies with the third element).
    fn xautoclaim<K: ToArgs, G: ToArgs, C: ToArgs, S: ToArgs>(key: K, group: G, consumer: C, min_idle: Duration, start: S, count: u64) -> RV {
        known_cmd!("XAUTOCLAIM").arg(key).arg(group).arg(consumer).arg(millis(min_idle)).arg(start).arg("COUNT").arg(count)
    }

    /// `XINFO STREAM key`: the stream's description as field/value pairs, e.g. read into a
    /// `HashMap<String, Value>`.
    fn xinfo_stream<K: ToArgs>(key: K) -> RV { known_cmd!("XINFO").arg("STREAM").arg(key) }

    /// `XINFO GROUPS key`: one description per group, e.g. `Vec<HashMap<String, Value>>`.
    fn xinfo_groups<K: ToArgs>(key: K) -> RV { known_cmd!("XINFO").arg("GROUPS").arg(key) }

    /// `XINFO CONSUMERS key group`: one description per consumer.
    fn xinfo_consumers<K: ToArgs, G: ToArgs>(key: K, group: G) -> RV {
        known_cmd!("XINFO").arg("CONSUMERS").arg(key).arg(group)
    }
    }};
}
