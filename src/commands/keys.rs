//! Reply types of the key commands: [`Ttl`] and [`KeyType`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{ArgWriter, ToArgs};

use crate::cmd::FromValue;
use crate::error::{Error, Result};
use crate::resp::{Frame, Value};

/// The remaining time to live of a key, from `TTL` or `PTTL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ttl {
    /// The key does not exist (the server's `-2`).
    Missing,
    /// The key exists and never expires (the server's `-1`).
    NoExpiry,
    /// The key expires after this long (seconds for `TTL`, milliseconds for `PTTL`).
    Expires(Duration),
}

impl Ttl {
    /// The remaining time, when the key has one.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Ttl::Expires(d) => Some(d),
            _ => None,
        }
    }

    /// Read a `TTL` (`millis == false`) or `PTTL` (`millis == true`) reply.
    pub(crate) fn from_reply(n: i64, millis: bool) -> Result<Ttl> {
        match n {
            -2 => Ok(Ttl::Missing),
            -1 => Ok(Ttl::NoExpiry),
            n if n >= 0 && millis => Ok(Ttl::Expires(Duration::from_millis(n as u64))),
            n if n >= 0 => Ok(Ttl::Expires(Duration::from_secs(n as u64))),
            n => Err(Error::conversion(format!("unexpected TTL reply {n}"))),
        }
    }
}

/// When a key expires, from `EXPIRETIME` or `PEXPIRETIME` (Redis 7.0+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExpireTime {
    /// The key does not exist (the server's `-2`).
    Missing,
    /// The key exists and never expires (the server's `-1`).
    NoExpiry,
    /// The key expires at this instant (whole seconds for `EXPIRETIME`, milliseconds for
    /// `PEXPIRETIME`).
    At(SystemTime),
}

impl ExpireTime {
    /// Read an `EXPIRETIME` (`millis == false`) or `PEXPIRETIME` reply.
    pub(crate) fn from_reply(n: i64, millis: bool) -> Result<ExpireTime> {
        let at = |d: Duration| {
            UNIX_EPOCH
                .checked_add(d)
                .map(ExpireTime::At)
                .ok_or_else(|| Error::conversion(format!("expire time out of range: {n}")))
        };
        match n {
            -2 => Ok(ExpireTime::Missing),
            -1 => Ok(ExpireTime::NoExpiry),
            n if n >= 0 && millis => at(Duration::from_millis(n as u64)),
            n if n >= 0 => at(Duration::from_secs(n as u64)),
            n => Err(Error::conversion(format!(
                "unexpected EXPIRETIME reply {n}"
            ))),
        }
    }
}

/// Options of `COPY`: another database, and whether to replace an existing destination.
///
/// ```
/// use valkit::CopyOptions;
/// let opts = CopyOptions::new().replace();
/// assert!(opts.replace && opts.db.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CopyOptions {
    /// `DB index`: copy into this database (standalone servers only).
    pub db: Option<u32>,
    /// `REPLACE`: overwrite the destination when it exists (otherwise nothing is copied).
    pub replace: bool,
}

impl CopyOptions {
    /// Same database, do not replace.
    pub fn new() -> CopyOptions {
        CopyOptions::default()
    }

    /// Copy into database `db`.
    pub fn db(mut self, db: u32) -> CopyOptions {
        self.db = Some(db);
        self
    }

    /// Overwrite an existing destination.
    pub fn replace(mut self) -> CopyOptions {
        self.replace = true;
        self
    }
}

impl ToArgs for CopyOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        if let Some(db) = self.db {
            ("DB", db).write_args(out);
        }
        if self.replace {
            out.write(b"REPLACE");
        }
    }
}

/// Seconds (`millis == false`) or milliseconds since the Unix epoch; instants before it
/// count as the epoch.
pub(crate) fn unix_time(t: SystemTime, millis: bool) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if millis {
        super::strings::millis(d)
    } else {
        d.as_secs()
    }
}

/// The type of the value at a key, from `TYPE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// The key does not exist (`none`).
    None,
    /// `string`.
    String,
    /// `list`.
    List,
    /// `set`.
    Set,
    /// `zset`.
    ZSet,
    /// `hash`.
    Hash,
    /// `stream`.
    Stream,
    /// A type this crate does not name (module types, e.g. `ReJSON-RL`).
    Other(String),
}

impl KeyType {
    /// Classify the name `TYPE` answers with.
    pub fn from_name(name: &str) -> KeyType {
        match name {
            "none" => KeyType::None,
            "string" => KeyType::String,
            "list" => KeyType::List,
            "set" => KeyType::Set,
            "zset" => KeyType::ZSet,
            "hash" => KeyType::Hash,
            "stream" => KeyType::Stream,
            other => KeyType::Other(other.to_owned()),
        }
    }

    /// The name as the server spells it (`zset`, `hash`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            KeyType::None => "none",
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Hash => "hash",
            KeyType::Stream => "stream",
            KeyType::Other(s) => s,
        }
    }
}

/// From the name `TYPE` answers with (a simple string).
impl FromValue for KeyType {
    fn from_value(v: Value) -> Result<KeyType> {
        String::from_value(v).map(|name| KeyType::from_name(&name))
    }

    fn from_frame(f: Frame<'_>) -> Result<KeyType> {
        String::from_frame(f).map(|name| KeyType::from_name(&name))
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key commands (see `define.rs` for the form).
macro_rules! key_commands {
    ($out:ident) => { $out! {
    /// `DEL key...`: how many of the keys existed and were removed.
    fn del<K: ToArgs>(keys: K) -> u64 { known_cmd!("DEL").arg(keys) }

    /// `UNLINK key...`: like [`del`](Commands::del), but the memory is reclaimed in the
    /// background.
    fn unlink<K: ToArgs>(keys: K) -> u64 { known_cmd!("UNLINK").arg(keys) }

    /// `EXISTS key...`: how many of the keys exist (a key named twice counts twice).
    fn exists<K: ToArgs>(keys: K) -> u64 { known_cmd!("EXISTS").arg(keys) }

    /// `EXPIRE key seconds`: true when the expiry was set (false for a missing key).
    /// When `ttl` is not a whole number of seconds, `PEXPIRE key milliseconds` is sent
    /// instead, so a sub-second `ttl` never becomes `EXPIRE 0` (which deletes the key).
    fn expire<K: ToArgs>(key: K, ttl: Duration) -> bool {
        if ttl.subsec_nanos() == 0 {
            known_cmd!("EXPIRE").arg(key).arg(ttl.as_secs())
        } else {
            known_cmd!("PEXPIRE").arg(key).arg(millis(ttl))
        }
    }

    /// `PEXPIRE key milliseconds`: true when the expiry was set.
    fn pexpire<K: ToArgs>(key: K, ttl: Duration) -> bool {
        known_cmd!("PEXPIRE").arg(key).arg(millis(ttl))
    }

    /// `TTL key`: the remaining time to live, in whole seconds.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use valkit::{Commands, Connection, Ttl};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// conn.set_ex("k", "v", Duration::from_secs(100))?;
    /// assert!(matches!(conn.ttl("k")?, Ttl::Expires(d) if d <= Duration::from_secs(100)));
    /// assert_eq!(conn.ttl("missing")?, Ttl::Missing);
    /// # Ok(()) }
    /// ```
    fn ttl<K: ToArgs>(key: K) -> Ttl = |n: i64| Ttl::from_reply(n, false); { known_cmd!("TTL").arg(key) }

    /// `PTTL key`: the remaining time to live, in milliseconds.
    fn pttl<K: ToArgs>(key: K) -> Ttl = |n: i64| Ttl::from_reply(n, true); { known_cmd!("PTTL").arg(key) }

    /// `PERSIST key`: true when an expiry was removed.
    fn persist<K: ToArgs>(key: K) -> bool { known_cmd!("PERSIST").arg(key) }

    /// `TYPE key`: the type of the value ([`KeyType::None`] for a missing key).
    fn key_type<K: ToArgs>(key: K) -> KeyType { known_cmd!("TYPE").arg(key) }

    /// `EXPIREAT key unix-seconds`: expire at `at` (whole seconds); true when the expiry
    /// was set. An instant in the past deletes the key.
    fn expire_at<K: ToArgs>(key: K, at: SystemTime) -> bool {
        known_cmd!("EXPIREAT").arg(key).arg(unix_time(at, false))
    }

    /// `PEXPIREAT key unix-milliseconds`: expire at `at` (whole milliseconds).
    fn pexpire_at<K: ToArgs>(key: K, at: SystemTime) -> bool {
        known_cmd!("PEXPIREAT").arg(key).arg(unix_time(at, true))
    }

    /// `EXPIRETIME key` (Redis 7.0+): when the key expires, in whole seconds.
    fn expire_time<K: ToArgs>(key: K) -> ExpireTime = |n: i64| ExpireTime::from_reply(n, false);
    { known_cmd!("EXPIRETIME").arg(key) }

    /// `PEXPIRETIME key` (Redis 7.0+): when the key expires, in milliseconds.
    fn pexpire_time<K: ToArgs>(key: K) -> ExpireTime = |n: i64| ExpireTime::from_reply(n, true);
    { known_cmd!("PEXPIRETIME").arg(key) }

    /// `COPY source destination [DB db] [REPLACE]` (Redis 6.2+): true when the value was
    /// copied (false when the destination exists and `REPLACE` was not given).
    fn copy<S: ToArgs, D: ToArgs>(source: S, destination: D, opts: CopyOptions) -> bool {
        known_cmd!("COPY").arg(source).arg(destination).arg(opts)
    }

    /// `RENAME key newkey`: an error when `key` does not exist.
    fn rename<K: ToArgs, N: ToArgs>(key: K, new_key: N) -> () {
        known_cmd!("RENAME").arg(key).arg(new_key)
    }
    }};
}
