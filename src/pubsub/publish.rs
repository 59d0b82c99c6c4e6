//! Publishing and introspection, over any [`Execute`].

use crate::cmd::{cmd, Execute, FromValue, ToArgs};
use crate::error::Result;
use crate::resp::{Bytes, Value};

/// Typed `SPUBLISH` and `PUBSUB` helpers for anything that runs commands (a connection, a
/// pool, a client). `PUBLISH` is [`Commands::publish`](crate::Commands::publish).
///
/// ```no_run
/// use valkit::pubsub::Publish;
/// use valkit::{Commands, Connection};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// let receivers = conn.publish("events:user:created", "{\"id\":42}")?;
/// println!("{receivers} subscribers got it; channels: {:?}", conn.pubsub_channels(Some("events:*"))?);
/// # Ok(()) }
/// ```
pub trait Publish: Execute {
    /// `SPUBLISH shardchannel payload` (Valkey 7+ / Redis 7+): how many subscribers of the
    /// shard received it.
    fn spublish<C: ToArgs, P: ToArgs>(&self, channel: C, payload: P) -> Result<u64> {
        u64::from_value(self.exec(&cmd("SPUBLISH").arg(channel).arg(payload))?)
    }

    /// `PUBSUB CHANNELS [pattern]`: the channels with at least one subscriber.
    fn pubsub_channels(&self, pattern: Option<&str>) -> Result<Vec<Bytes>> {
        let mut c = cmd("PUBSUB").arg("CHANNELS");
        if let Some(p) = pattern {
            c.add_arg(p);
        }
        Vec::<Bytes>::from_value(self.exec(&c)?)
    }

    /// `PUBSUB NUMSUB channel...`: each channel with its subscriber count.
    fn pubsub_numsub<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<Vec<(Bytes, u64)>> {
        let mut c = cmd("PUBSUB").arg("NUMSUB");
        for ch in channels {
            c.add_arg(ch.as_ref());
        }
        let v = self.exec(&c)?;
        let flat = match v {
            Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(k), Some(n)) = (it.next(), it.next()) {
            out.push((Bytes::from_value(k)?, u64::from_value(n)?));
        }
        Ok(out)
    }

    /// `PUBSUB NUMPAT`: how many pattern subscriptions exist on the server.
    fn pubsub_numpat(&self) -> Result<u64> {
        u64::from_value(self.exec(&cmd("PUBSUB").arg("NUMPAT"))?)
    }
}

impl<E: Execute + ?Sized> Publish for E {}
