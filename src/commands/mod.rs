//! Typed helpers for common commands: the [`Commands`] extension trait, and the same
//! commands as builder methods of [`Pipeline`](crate::Pipeline).
//!
//! Every command is defined once, in the file of its family (`strings.rs`, `keys.rs`,
//! `hashes.rs`, `lists.rs`, `sets.rs`, `zset.rs`, `streams.rs`, `server.rs`; `scan.rs` for
//! the cursor iterators), as the [`Cmd`] it sends and the type of its reply; `define.rs`
//! turns each definition into a method of [`Commands`] and one of `Pipeline`, so the two
//! never disagree. Commands not covered here go through [`cmd`](crate::cmd()) directly.

#[macro_use]
mod define;
#[macro_use]
mod hashes;
#[macro_use]
mod keys;
#[macro_use]
mod lists;
#[macro_use]
mod server;
#[macro_use]
mod sets;
#[macro_use]
mod streams;
#[macro_use]
mod strings;
#[macro_use]
mod zset;

mod info;
mod pipeline;
mod scan;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use crate::cmd::{known_cmd, Cmd, Execute, FromValue, ToArgs};
use crate::error::{Error, Result};

pub use info::Info;
pub use keys::{CopyOptions, ExpireTime, KeyType, Ttl};
pub use lists::ListEnd;
pub(crate) use scan::ScanWalk;
pub use scan::{ScanIter, ScanOptions};
pub use streams::{StreamEntry, StreamTrim, TrimStrategy, XReadGroupOptions};
pub use strings::{Condition, Expiry, GetExExpiry, SetOptions};
pub use zset::{ScoreBound, ScoreUpdate, ZAddOptions, ZRangeBy, ZRangeOptions};

use keys::unix_time;
use lists::Timeout;
use server::time_from_reply;
use streams::streams_args;
use strings::millis;
use zset::zadd_cmd;

/// Run `c` and convert its reply as it lies in the read buffer (no `Value` built).
fn run<T: FromValue, E: Execute + ?Sized>(ex: &E, c: &Cmd) -> Result<T> {
    let mut out = None;
    let mut owned = None;
    ex.exec_frame(c, &mut |f| {
        // A large bulk reply handed over by the connection: converted below, once the
        // connection has let go of it, so that a `Vec<u8>` takes its buffer in place.
        match f.take_owned() {
            Some(b) => owned = Some(b),
            None => out = Some(T::from_frame(f)?),
        }
        Ok(())
    })?;
    if let Some(b) = owned {
        return T::from_value(crate::resp::Value::Bulk(b));
    }
    out.ok_or_else(|| Error::protocol("the reply was never handed over for conversion"))
}

/// Typed helpers for common commands, available on everything that implements [`Execute`]
/// (a connection, a pool, a client; `&T` and `Arc<T>` of those too).
///
/// **Arguments.** Keys, values, fields and members accept anything that is [`ToArgs`]:
/// `&str`, `String`, `&[u8]`, `Vec<u8>`, numbers. Where a method takes several keys (`del`,
/// `mget`, `blpop` ...), pass one key or a collection (`&["a", "b"]`, a `Vec`). The key
/// always comes first; after it, arguments follow the server's order, with one rule that
/// holds across families: the thing addressed inside the key (a field, a member) comes
/// before a number applied to it (`hincr_by(key, field, delta)`,
/// `zincr_by(key, member, delta)`, `zadd(key, &[(member, score)])`).
///
/// **Results.** What the user stored comes back as the type you ask for, like the `redis`
/// crate: values, fields, members, elements (`get`, `hget`, `hgetall`, `lrange`,
/// `smembers`, `zrange`, ...) are generic over any [`FromValue`] type: `Option<String>`,
/// `Option<i64>`, `Vec<u8>`, `HashMap<String, String>`, `Vec<(String, f64)>`, ... Facts the
/// server computes have a fixed type, so they need no annotation: counts and lengths are
/// `u64`, flags `bool`, counters `i64`, scores `f64`, acknowledgements `()`, and a few
/// replies have their own types ([`Ttl`], [`KeyType`], [`Info`], `SystemTime`).
///
/// The conversion reads the reply where it lies in the connection's buffer
/// ([`Execute::exec_frame`]): the bytes are copied once, into the result, whatever its type.
///
/// A server error reply (e.g. `WRONGTYPE`) is an `Err` with
/// [`ErrorKind::Server`](crate::ErrorKind::Server); a reply of an unexpected shape is an
/// `Err` with [`ErrorKind::Conversion`](crate::ErrorKind::Conversion).
///
/// ```no_run
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use valkit::{Commands, Connection};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// conn.set("greeting", "hello")?;
/// let greeting: Option<String> = conn.get("greeting")?;
/// assert_eq!(greeting.as_deref(), Some("hello"));
/// conn.set_ex("session", "data", Duration::from_secs(60))?;
/// assert_eq!(conn.incr("visits")?, 1);
/// let visits: Option<i64> = conn.get("visits")?;
/// conn.hset("user:1", [("name", "Ada"), ("born", "1815")])?;
/// let user: HashMap<String, String> = conn.hgetall("user:1")?;
/// assert_eq!(conn.del(&["greeting", "session", "visits", "user:1"])?, 4);
/// # Ok(()) }
/// ```
pub trait Commands: Execute {
    /// Run any command and convert its reply into `T`, straight from the read buffer (no
    /// intermediate [`Value`](crate::Value); see [`Execute::exec_frame`]). A server error
    /// reply is `Err` with [`ErrorKind::Server`](crate::ErrorKind::Server).
    ///
    /// ```no_run
    /// # use valkit::{cmd, Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let values: Vec<Option<String>> = conn.query(&cmd("MGET").arg("a").arg("b"))?;
    /// let n: i64 = conn.query(&cmd("INCRBY").arg("counter").arg(5))?;
    /// # Ok(()) }
    /// ```
    fn query<T: FromValue>(&self, command: &Cmd) -> Result<T> {
        run(self, command)
    }

    string_commands!(commands_trait);
    key_commands!(commands_trait);
    hash_commands!(commands_trait);
    list_commands!(commands_trait);
    set_commands!(commands_trait);
    zset_commands!(commands_trait);
    server_commands!(commands_trait);
    stream_commands!(commands_trait);

    // ------------------------------------------------------------------- scans

    /// `SCAN` over the whole keyspace, as an iterator that fetches batch after batch; each
    /// key converts into `T` (`String`, `Vec<u8>`, ...).
    ///
    /// A key may be returned more than once (a `SCAN` guarantee); collect into a set when
    /// that matters.
    ///
    /// ```no_run
    /// # use std::collections::HashSet;
    /// # use valkit::{Commands, Connection, ScanOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let keys = conn
    ///     .scan(ScanOptions::new().pattern("session:*").count(500))
    ///     .collect::<valkit::Result<HashSet<String>>>()?;
    /// # Ok(()) }
    /// ```
    fn scan<T: FromValue>(&self, opts: ScanOptions) -> ScanIter<'_, Self, T> {
        ScanIter::new(self, known_cmd!("SCAN"), opts)
    }

    /// `HSCAN key` as an iterator of `(field, value)` pairs, e.g. `(String, String)`.
    /// [`ScanOptions::type_`] does not apply (the server rejects it).
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ScanOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// for pair in conn.hscan::<_, (String, i64)>("stock", ScanOptions::new().pattern("sku:*")) {
    ///     let (sku, count) = pair?;
    ///     println!("{sku}: {count}");
    /// }
    /// # Ok(()) }
    /// ```
    fn hscan<K: ToArgs, T: FromValue>(&self, key: K, opts: ScanOptions) -> ScanIter<'_, Self, T> {
        ScanIter::new(self, known_cmd!("HSCAN").arg(key), opts)
    }

    /// `SSCAN key` as an iterator of members.
    fn sscan<K: ToArgs, T: FromValue>(&self, key: K, opts: ScanOptions) -> ScanIter<'_, Self, T> {
        ScanIter::new(self, known_cmd!("SSCAN").arg(key), opts)
    }

    /// `ZSCAN key` as an iterator of `(member, score)` pairs, e.g. `(String, f64)`.
    fn zscan<K: ToArgs, T: FromValue>(&self, key: K, opts: ScanOptions) -> ScanIter<'_, Self, T> {
        ScanIter::new(self, known_cmd!("ZSCAN").arg(key), opts)
    }
}

impl<E: Execute + ?Sized> Commands for E {}
