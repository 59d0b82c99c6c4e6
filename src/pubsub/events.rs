//! Typed events carried by pub/sub: keyspace notifications and the cache's invalidations.

use super::message::Message;
use crate::cmd::{cmd, Execute};
use crate::error::Result;
use crate::resp::Bytes;

/// Turn keyspace notifications on: `CONFIG SET notify-keyspace-events <flags>`, e.g.
/// `"KEA"` (keyspace and keyevent channels, all events) or `"Kg$x"` (keyspace channel;
/// generic, string and expiry events). Replaces the server's current flags; the setting is
/// server-wide, and costs CPU on every write, so enable only what you consume.
///
/// # Errors
/// The server's refusal (a bad flag, `CONFIG` renamed or denied by ACL).
pub fn enable_keyspace_events(ex: &impl Execute, flags: &str) -> Result<()> {
    ex.exec(
        &cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(flags),
    )
    .map(drop)
}

/// The pattern to [`psubscribe`](super::Subscriber::psubscribe) to for keyspace events of
/// the keys of database `db` matching the glob `key_pattern`:
/// `__keyspace@<db>__:<key_pattern>`.
pub fn keyspace_pattern(db: u32, key_pattern: &str) -> String {
    format!("__keyspace@{db}__:{key_pattern}")
}

/// The channel to subscribe to for every key that receives `event` (e.g. `expired`) in
/// database `db`: `__keyevent@<db>__:<event>`.
pub fn keyevent_channel(db: u32, event: &str) -> String {
    format!("__keyevent@{db}__:{event}")
}

/// A keyspace notification: `event` happened to `key` in database `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceEvent {
    /// The database number.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// The event name as the server sends it (`set`, `del`, `expired`, `evicted`, `hset`,
    /// `lpush`, ...).
    pub event: String,
}

impl KeyspaceEvent {
    /// Read a message from a `__keyspace@<db>__:<key>` channel (the payload is the event)
    /// or a `__keyevent@<db>__:<event>` channel (the payload is the key). `None` for any
    /// other message.
    pub fn parse(m: &Message) -> Option<KeyspaceEvent> {
        let ch = &m.channel[..];
        let (space, rest) = if let Some(r) = ch.strip_prefix(b"__keyspace@") {
            (true, r)
        } else if let Some(r) = ch.strip_prefix(b"__keyevent@") {
            (false, r)
        } else {
            return None;
        };
        let end = rest.windows(3).position(|w| w == b"__:")?;
        let db: u32 = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        let name = &rest[end + 3..];
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Some(if space {
            KeyspaceEvent {
                db,
                key: Bytes::from(name),
                event: text(&m.payload),
            }
        } else {
            KeyspaceEvent {
                db,
                key: m.payload.clone(),
                event: text(name),
            }
        })
    }
}

/// What a [`Cache`](crate::cache::Cache) invalidation event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidationScope {
    /// One key (`Cache::invalidate`, a write).
    Key,
    /// Every entry written with a tag (`Cache::invalidate_tag`).
    Tag,
    /// Every key matching a glob (`Cache::invalidate_pattern`).
    Pattern,
}

/// An invalidation a [`Cache`](crate::cache::Cache) published on its channel
/// ([`Keyspace::channel`](crate::cache::Keyspace::channel), `valkit:cache:<namespace>`)
/// when [`publish_invalidations`](crate::cache::CacheBuilder::publish_invalidations) is on:
/// the payload is `<scope> <name>`, e.g. `tag catalog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheInvalidation {
    /// What was invalidated.
    pub scope: InvalidationScope,
    /// The key, tag or pattern (the cache's own name for it, without namespace).
    pub name: String,
}

impl CacheInvalidation {
    /// Read an invalidation event; `None` when the payload is not one.
    pub fn parse(m: &Message) -> Option<CacheInvalidation> {
        let text = std::str::from_utf8(&m.payload).ok()?;
        let (scope, name) = text.split_once(' ')?;
        let scope = match scope {
            "key" => InvalidationScope::Key,
            "tag" => InvalidationScope::Tag,
            "pattern" => InvalidationScope::Pattern,
            _ => return None,
        };
        Some(CacheInvalidation {
            scope,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::SubKind;
    use super::*;

    fn msg(ch: &str, payload: &str) -> Message {
        Message {
            kind: SubKind::Pattern,
            channel: Bytes::from(ch),
            pattern: None,
            payload: Bytes::from(payload),
        }
    }

    #[test]
    fn keyspace_and_keyevent() {
        let e = KeyspaceEvent::parse(&msg("__keyspace@3__:user:__:1", "set")).unwrap();
        assert_eq!(
            (e.db, &e.key[..], e.event.as_str()),
            (3, &b"user:__:1"[..], "set")
        );
        let e = KeyspaceEvent::parse(&msg("__keyevent@0__:expired", "k")).unwrap();
        assert_eq!(
            (e.db, &e.key[..], e.event.as_str()),
            (0, &b"k"[..], "expired")
        );
        assert!(KeyspaceEvent::parse(&msg("other", "x")).is_none());
        assert!(KeyspaceEvent::parse(&msg("__keyspace@x__:k", "set")).is_none());
    }

    #[test]
    fn cache_invalidations() {
        let e = CacheInvalidation::parse(&msg("c", "tag catalog")).unwrap();
        assert_eq!(e.scope, InvalidationScope::Tag);
        assert_eq!(e.name, "catalog");
        let e = CacheInvalidation::parse(&msg("c", "key a b")).unwrap();
        assert_eq!((e.scope, e.name.as_str()), (InvalidationScope::Key, "a b"));
        assert!(CacheInvalidation::parse(&msg("c", "flush")).is_none());
    }
}
