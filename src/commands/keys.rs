//! Reply types of the key commands: [`Ttl`] and [`KeyType`].

use std::time::Duration;

use crate::error::{Error, Result};

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

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
