//! Options for the string commands: [`SetOptions`], [`Expiry`], [`Condition`], [`GetExExpiry`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{ArgWriter, ToArgs};

/// When a key set by `SET` expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// `EX seconds`: expire after this long, in whole seconds (a fraction is dropped).
    Ex(Duration),
    /// `PX milliseconds`: expire after this long, in whole milliseconds.
    Px(Duration),
    /// `EXAT unix-seconds`: expire at this instant (whole seconds).
    ExAt(SystemTime),
    /// `PXAT unix-milliseconds`: expire at this instant (whole milliseconds).
    PxAt(SystemTime),
    /// `KEEPTTL`: keep the key's current time to live.
    KeepTtl,
}

/// Whether `SET` (or `ZADD`) may create or overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `NX`: only when the key (or member) does not exist yet.
    Nx,
    /// `XX`: only when the key (or member) already exists.
    Xx,
}

/// Options of `SET`: an expiry and a condition.
///
/// ```
/// use std::time::Duration;
/// use valkit::{Condition, Expiry, SetOptions};
/// let opts = SetOptions::new()
///     .expiry(Expiry::Px(Duration::from_millis(1500)))
///     .condition(Condition::Nx);
/// assert_eq!(opts.get_condition(), Some(Condition::Nx));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SetOptions {
    /// When the key expires; `None` clears any previous expiry (plain `SET`).
    pub expiry: Option<Expiry>,
    /// Write only if the key does (`Xx`) or does not (`Nx`) exist.
    pub condition: Option<Condition>,
}

impl SetOptions {
    /// No expiry, no condition: a plain `SET`.
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// Set the expiry.
    pub fn expiry(mut self, expiry: Expiry) -> SetOptions {
        self.expiry = Some(expiry);
        self
    }

    /// Set the condition.
    pub fn condition(mut self, condition: Condition) -> SetOptions {
        self.condition = Some(condition);
        self
    }

    /// Shorthand for `.condition(Condition::Nx)`.
    pub fn nx(self) -> SetOptions {
        self.condition(Condition::Nx)
    }

    /// Shorthand for `.condition(Condition::Xx)`.
    pub fn xx(self) -> SetOptions {
        self.condition(Condition::Xx)
    }

    /// The expiry, if any.
    pub fn get_expiry(&self) -> Option<Expiry> {
        self.expiry
    }

    /// The condition, if any.
    pub fn get_condition(&self) -> Option<Condition> {
        self.condition
    }
}

impl ToArgs for Expiry {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match *self {
            Expiry::Ex(d) => ("EX", d.as_secs()).write_args(out),
            Expiry::Px(d) => ("PX", millis(d)).write_args(out),
            Expiry::ExAt(t) => ("EXAT", unix(t).as_secs()).write_args(out),
            Expiry::PxAt(t) => ("PXAT", millis(unix(t))).write_args(out),
            Expiry::KeepTtl => out.write(b"KEEPTTL"),
        }
    }
}

impl ToArgs for Condition {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(match self {
            Condition::Nx => b"NX",
            Condition::Xx => b"XX",
        })
    }
}

impl ToArgs for SetOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        self.condition.write_args(out);
        self.expiry.write_args(out);
    }
}

/// The expiry change `GETEX` makes while reading a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetExExpiry {
    /// `EX seconds` (whole seconds).
    Ex(Duration),
    /// `PX milliseconds`.
    Px(Duration),
    /// `EXAT unix-seconds`.
    ExAt(SystemTime),
    /// `PXAT unix-milliseconds`.
    PxAt(SystemTime),
    /// `PERSIST`: remove the expiry.
    Persist,
}

impl ToArgs for GetExExpiry {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match *self {
            GetExExpiry::Ex(d) => Expiry::Ex(d).write_args(out),
            GetExExpiry::Px(d) => Expiry::Px(d).write_args(out),
            GetExExpiry::ExAt(t) => Expiry::ExAt(t).write_args(out),
            GetExExpiry::PxAt(t) => Expiry::PxAt(t).write_args(out),
            GetExExpiry::Persist => out.write(b"PERSIST"),
        }
    }
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Time since the Unix epoch; instants before it count as the epoch.
fn unix(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// The string commands (see `define.rs` for the form).
macro_rules! string_commands {
    ($out:ident) => {
        $out! {
        /// `GET key`: the value, `None` when the key does not exist. Read it as any
        /// [`FromValue`] type: `Option<String>`, `Option<Vec<u8>>`, `Option<i64>`, ...
        ///
        /// ```no_run
        /// # use valkit::{Commands, Connection};
        /// # fn main() -> valkit::Result<()> {
        /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
        /// conn.set("visits", 41)?;
        /// conn.set(b"bin\0key", &b"\r\n\0"[..])?;
        /// let n: Option<i64> = conn.get("visits")?;
        /// let raw: Option<Vec<u8>> = conn.get(b"bin\0key")?;
        /// let missing: Option<String> = conn.get("no such key")?;
        /// assert_eq!((n, raw.as_deref(), missing), (Some(41), Some(&b"\r\n\0"[..]), None));
        /// # Ok(()) }
        /// ```
        fn get<K: ToArgs>(key: K) -> RV { known_cmd!("GET").arg(key) }

        /// `GET key` as UTF-8 text: shorthand for `get::<_, Option<String>>`. A value that is
        /// not UTF-8 is a conversion error.
        fn get_string<K: ToArgs>(key: K) -> Option<String> { known_cmd!("GET").arg(key) }

        /// `SET key value`: store the value, dropping any expiry the key had.
        fn set<K: ToArgs, V: ToArgs>(key: K, value: V) -> () { known_cmd!("SET").arg(key).arg(value) }

        /// `SET key value EX seconds` (or `PX milliseconds` when `ttl` is not whole seconds).
        fn set_ex<K: ToArgs, V: ToArgs>(key: K, value: V, ttl: Duration) -> () {
            let expiry = if ttl.subsec_nanos() == 0 { Expiry::Ex(ttl) } else { Expiry::Px(ttl) };
            known_cmd!("SET").arg(key).arg(value).arg(expiry)
        }

        /// `SET key value [NX|XX] [EX|PX|EXAT|PXAT|KEEPTTL]`: true when the value was written,
        /// false when the `NX`/`XX` condition kept it from being written.
        ///
        /// ```no_run
        /// # use std::time::Duration;
        /// # use valkit::{Commands, Connection, Expiry, SetOptions};
        /// # fn main() -> valkit::Result<()> {
        /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
        /// let opts = SetOptions::new().nx().expiry(Expiry::Ex(Duration::from_secs(30)));
        /// if conn.set_options("lock:report", "worker-1", &opts)? {
        ///     // we hold the lock for 30 s
        /// }
        /// # Ok(()) }
        /// ```
        fn set_options<K: ToArgs, V: ToArgs>(key: K, value: V, opts: &SetOptions) -> bool
            = |written: Option<()>| Ok(written.is_some());
        { known_cmd!("SET").arg(key).arg(value).arg(opts) }

        /// `SET key value ... GET`: store the value and return the previous one (`None` when
        /// there was none). With `NX`/`XX` (Redis 7.0+), the previous value is returned whether
        /// or not the write happened.
        fn set_get<K: ToArgs, V: ToArgs>(key: K, value: V, opts: &SetOptions) -> RV {
            known_cmd!("SET").arg(key).arg(value).arg(opts).arg("GET")
        }

        /// `MGET key...`: one entry per key, `None` for missing keys (and for keys holding
        /// another type): e.g. `Vec<Option<String>>`.
        fn mget<K: ToArgs>(keys: K) -> RV { known_cmd!("MGET").arg(keys) }

        /// `MSET key value ...`: `pairs` is anything writing key/value pairs, e.g.
        /// `&[("a", "1"), ("b", "2")]` or a map.
        fn mset<P: ToArgs>(pairs: P) -> () { known_cmd!("MSET").arg(pairs) }

        /// `INCR key`: the value after adding 1 (a missing key counts as 0).
        fn incr<K: ToArgs>(key: K) -> i64 { known_cmd!("INCR").arg(key) }

        /// `DECR key`: the value after subtracting 1.
        fn decr<K: ToArgs>(key: K) -> i64 { known_cmd!("DECR").arg(key) }

        /// `INCRBY key delta`: the value after adding `delta`.
        fn incr_by<K: ToArgs>(key: K, delta: i64) -> i64 { known_cmd!("INCRBY").arg(key).arg(delta) }

        /// `DECRBY key delta`: the value after subtracting `delta`.
        fn decr_by<K: ToArgs>(key: K, delta: i64) -> i64 { known_cmd!("DECRBY").arg(key).arg(delta) }

        /// `INCRBYFLOAT key delta`: the value after adding `delta`.
        fn incr_by_float<K: ToArgs>(key: K, delta: f64) -> f64 {
            known_cmd!("INCRBYFLOAT").arg(key).arg(delta)
        }

        /// `GETDEL key`: the value, deleting the key.
        fn getdel<K: ToArgs>(key: K) -> RV { known_cmd!("GETDEL").arg(key) }

        /// `GETEX key EX|PX|EXAT|PXAT|PERSIST`: the value, changing the key's expiry.
        fn getex<K: ToArgs>(key: K, expiry: GetExExpiry) -> RV { known_cmd!("GETEX").arg(key).arg(expiry) }

        /// `APPEND key value`: the length of the value afterwards.
        fn append<K: ToArgs, V: ToArgs>(key: K, value: V) -> u64 {
            known_cmd!("APPEND").arg(key).arg(value)
        }

        /// `STRLEN key`: the length of the value (0 for a missing key).
        fn strlen<K: ToArgs>(key: K) -> u64 { known_cmd!("STRLEN").arg(key) }
        }
    };
}
