//! What a subscriber receives: messages and events, parsed from RESP2 arrays or RESP3
//! pushes.

use std::time::Duration;

use crate::resp::{Bytes, Value};

/// Which kind of subscription a channel name or message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    /// `SUBSCRIBE` / `PUBLISH`: an exact channel name.
    Channel,
    /// `PSUBSCRIBE`: a glob pattern over channel names.
    Pattern,
    /// `SSUBSCRIBE` / `SPUBLISH`: a sharded channel (served by the node owning its slot).
    Shard,
}

/// One published message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// How the subscriber came to receive it.
    pub kind: SubKind,
    /// The channel it was published on.
    pub channel: Bytes,
    /// The pattern that matched the channel ([`SubKind::Pattern`] only).
    pub pattern: Option<Bytes>,
    /// The message itself.
    pub payload: Bytes,
}

impl Message {
    /// The payload as text (invalid UTF-8 replaced).
    pub fn payload_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.payload)
    }

    /// The channel as text (invalid UTF-8 replaced).
    pub fn channel_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.channel)
    }
}

/// What [`Subscriber::recv`](super::Subscriber::recv) hands out: messages, and the events
/// a caller needs to see to know what it may have missed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A published message.
    Message(Message),
    /// The server confirmed a subscription; `count` is how many subscriptions of this
    /// connection exist now.
    Subscribed {
        /// Which kind of subscription.
        kind: SubKind,
        /// The channel or pattern.
        channel: Bytes,
        /// The connection's subscription count after it.
        count: i64,
    },
    /// The server confirmed an unsubscription.
    Unsubscribed {
        /// Which kind of subscription.
        kind: SubKind,
        /// The channel or pattern.
        channel: Bytes,
        /// The connection's subscription count after it.
        count: i64,
    },
    /// The connection was lost: messages published from now until
    /// [`Event::Reconnected`] are **not** delivered (pub/sub is fire-and-forget).
    Disconnected {
        /// Why (the connection error, never a secret).
        reason: String,
    },
    /// A new connection is open and every subscription was sent again. Anything
    /// published during `gap` was missed: re-read state you keep in sync by messages.
    Reconnected {
        /// From the loss being noticed to the resubscription being written.
        gap: Duration,
        /// How many channels, patterns and shard channels were subscribed again.
        resubscribed: usize,
    },
    /// A shard channel's slot moved to another node (a slot migration or a failover) and
    /// the channel is subscribed there now ([`ShardSubscriber`](super::ShardSubscriber)
    /// only). Anything published on it during `gap` was missed.
    ShardMoved {
        /// The shard channel.
        channel: Bytes,
        /// The `host:port` of the node serving it now.
        node: String,
        /// From the loss being noticed (the old node's `sunsubscribe`, or its connection
        /// lost) to the subscription being written to the new node.
        gap: Duration,
    },
}

/// A frame a subscriber's reader got, sorted.
pub(crate) enum Incoming {
    Event(Event),
    Pong,
    /// A reply the subscriber does not use (e.g. to a command of its own).
    Other,
}

fn bytes_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::Bulk(b) => Some(b.clone()),
        Value::Simple(s) => Some(Bytes::from(s.as_bytes().to_vec())),
        _ => None,
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// Sort a frame read on a subscriber's connection: a RESP3 push or a RESP2 array whose
/// first element names the kind (`message`, `pmessage`, `smessage`, `subscribe`, ...).
pub(crate) fn classify(v: Value) -> Incoming {
    let (kind, data): (Vec<u8>, Vec<Value>) = match v {
        Value::Push { kind, data } => (kind.into_bytes(), data),
        Value::Array(mut items) if !items.is_empty() => {
            let first = items.remove(0);
            match bytes_of(&first) {
                Some(k) => (k.to_vec(), items),
                None => return Incoming::Other,
            }
        }
        Value::Simple(s) if s.as_bytes().eq_ignore_ascii_case(b"PONG") => return Incoming::Pong,
        _ => return Incoming::Other,
    };
    let kind = kind.to_ascii_lowercase();
    let at = |i: usize| data.get(i).and_then(bytes_of);
    let ev = match kind.as_slice() {
        b"pong" => return Incoming::Pong,
        b"message" | b"smessage" => match (at(0), at(1)) {
            (Some(channel), Some(payload)) => Event::Message(Message {
                kind: if kind == b"message" {
                    SubKind::Channel
                } else {
                    SubKind::Shard
                },
                channel,
                pattern: None,
                payload,
            }),
            _ => return Incoming::Other,
        },
        b"pmessage" => match (at(0), at(1), at(2)) {
            (Some(pattern), Some(channel), Some(payload)) => Event::Message(Message {
                kind: SubKind::Pattern,
                channel,
                pattern: Some(pattern),
                payload,
            }),
            _ => return Incoming::Other,
        },
        b"subscribe" | b"psubscribe" | b"ssubscribe" | b"unsubscribe" | b"punsubscribe"
        | b"sunsubscribe" => {
            let sub_kind = match kind.as_slice() {
                b"psubscribe" | b"punsubscribe" => SubKind::Pattern,
                b"ssubscribe" | b"sunsubscribe" => SubKind::Shard,
                _ => SubKind::Channel,
            };
            let channel = at(0).unwrap_or_else(|| Bytes::from(Vec::new()));
            let count = data.get(1).map_or(0, int_of);
            if kind.ends_with(b"unsubscribe") {
                Event::Unsubscribed {
                    kind: sub_kind,
                    channel,
                    count,
                }
            } else {
                Event::Subscribed {
                    kind: sub_kind,
                    channel,
                    count,
                }
            }
        }
        _ => return Incoming::Other,
    };
    Incoming::Event(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::from(s.as_bytes().to_vec()))
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let m = classify(Value::Array(vec![bulk("message"), bulk("c"), bulk("p")]));
        let Incoming::Event(Event::Message(m)) = m else {
            panic!("not a message")
        };
        assert_eq!((&m.channel[..], &m.payload[..]), (&b"c"[..], &b"p"[..]));
        let p = classify(Value::Push {
            kind: "pmessage".into(),
            data: vec![bulk("c*"), bulk("c1"), bulk("x")],
        });
        let Incoming::Event(Event::Message(p)) = p else {
            panic!("not a pmessage")
        };
        assert_eq!(p.kind, SubKind::Pattern);
        assert_eq!(p.pattern.as_deref(), Some(&b"c*"[..]));
        let s = classify(Value::Push {
            kind: "sunsubscribe".into(),
            data: vec![bulk("s"), Value::Int(0)],
        });
        assert!(matches!(
            s,
            Incoming::Event(Event::Unsubscribed {
                kind: SubKind::Shard,
                count: 0,
                ..
            })
        ));
        let pong = classify(Value::Array(vec![bulk("pong"), bulk("")]));
        assert!(matches!(pong, Incoming::Pong));
        assert!(matches!(classify(Value::Int(3)), Incoming::Other));
        assert!(matches!(classify(Value::Array(vec![])), Incoming::Other));
    }
}
