//! Typed helpers for common commands: the [`Commands`] extension trait.
//!
//! Every helper builds one [`Cmd`], runs it through [`Execute::exec`] and converts the reply
//! into a fixed Rust type, so no turbofish or type annotation is ever needed. Commands not
//! covered here go through [`cmd`](crate::cmd()) directly.
//!
//! Option structs, reply types and their encodings live in one file per command family
//! (`strings.rs`, `keys.rs`, `scan.rs`, `lists.rs`, `zset.rs`, `info.rs`); the trait itself
//! has to be one trait, so it sits here with its methods grouped by family.

mod info;
mod keys;
mod lists;
mod scan;
mod strings;
mod zset;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{cmd, Cmd, Execute, FromValue, ToArgs};
use crate::error::{Error, Result};

pub use info::Info;
pub use keys::{KeyType, Ttl};
pub use lists::ListEnd;
pub use scan::{ScanIter, ScanOptions};
pub use strings::{Condition, Expiry, GetExExpiry, SetOptions};
pub use zset::{ScoreBound, ScoreUpdate, ZAddOptions, ZRangeBy, ZRangeOptions};

use lists::Timeout;

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
/// Keys, values, fields and members accept anything that is [`ToArgs`]: `&str`, `String`,
/// `&[u8]`, `Vec<u8>`, numbers. Where a method takes several keys (`del`, `mget`, `blpop`
/// ...), pass one key or a collection (`&["a", "b"]`, a `Vec`). Return types are concrete:
/// values are bytes (`Vec<u8>`), absent values are `None`, counts are `u64`.
///
/// A server error reply (e.g. `WRONGTYPE`) is an `Err` with
/// [`ErrorKind::Server`](crate::ErrorKind::Server); a reply of an unexpected shape is an
/// `Err` with [`ErrorKind::Conversion`](crate::ErrorKind::Conversion).
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::{Commands, Connection};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// conn.set("greeting", "hello")?;
/// assert_eq!(conn.get("greeting")?, Some(b"hello".to_vec()));
/// conn.set_ex("session", "data", Duration::from_secs(60))?;
/// assert_eq!(conn.incr("visits")?, 1);
/// assert_eq!(conn.del(&["greeting", "session", "visits"])?, 3);
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

    // ----------------------------------------------------------------- strings

    /// `GET key`: the value, or `None` when the key does not exist.
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// conn.set(b"bin\0key", &b"\r\n\0"[..])?;
    /// assert_eq!(conn.get(b"bin\0key")?.as_deref(), Some(&b"\r\n\0"[..]));
    /// assert_eq!(conn.get("no such key")?, None);
    /// # Ok(()) }
    /// ```
    fn get<K: ToArgs>(&self, key: K) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("GET").arg(key))
    }

    /// `GET key` as UTF-8 text. A value that is not UTF-8 is a conversion error.
    fn get_string<K: ToArgs>(&self, key: K) -> Result<Option<String>> {
        run(self, &cmd("GET").arg(key))
    }

    /// `SET key value`: store the value, dropping any expiry the key had.
    fn set<K: ToArgs, V: ToArgs>(&self, key: K, value: V) -> Result<()> {
        run(self, &cmd("SET").arg(key).arg(value))
    }

    /// `SET key value EX seconds` (or `PX milliseconds` when `ttl` is not whole seconds).
    fn set_ex<K: ToArgs, V: ToArgs>(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        let expiry = if ttl.subsec_nanos() == 0 {
            Expiry::Ex(ttl)
        } else {
            Expiry::Px(ttl)
        };
        run(self, &cmd("SET").arg(key).arg(value).arg(expiry))
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
    fn set_options<K: ToArgs, V: ToArgs>(
        &self,
        key: K,
        value: V,
        opts: &SetOptions,
    ) -> Result<bool> {
        let written: Option<()> = run(self, &cmd("SET").arg(key).arg(value).arg(opts))?;
        Ok(written.is_some())
    }

    /// `SET key value ... GET`: store the value and return the previous one (`None` when
    /// there was none). With `NX`/`XX` (Redis 7.0+), the previous value is returned whether
    /// or not the write happened.
    fn set_get<K: ToArgs, V: ToArgs>(
        &self,
        key: K,
        value: V,
        opts: &SetOptions,
    ) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("SET").arg(key).arg(value).arg(opts).arg("GET"))
    }

    /// `MGET key...`: one entry per key, `None` for missing keys (and for keys holding
    /// another type).
    fn mget<K: ToArgs>(&self, keys: K) -> Result<Vec<Option<Vec<u8>>>> {
        run(self, &cmd("MGET").arg(keys))
    }

    /// `MSET key value ...`: `pairs` is anything writing key/value pairs, e.g.
    /// `&[("a", "1"), ("b", "2")]` or a map.
    fn mset<P: ToArgs>(&self, pairs: P) -> Result<()> {
        run(self, &cmd("MSET").arg(pairs))
    }

    /// `INCR key`: the value after adding 1 (a missing key counts as 0).
    fn incr<K: ToArgs>(&self, key: K) -> Result<i64> {
        run(self, &cmd("INCR").arg(key))
    }

    /// `DECR key`: the value after subtracting 1.
    fn decr<K: ToArgs>(&self, key: K) -> Result<i64> {
        run(self, &cmd("DECR").arg(key))
    }

    /// `INCRBY key delta`: the value after adding `delta`.
    fn incr_by<K: ToArgs>(&self, key: K, delta: i64) -> Result<i64> {
        run(self, &cmd("INCRBY").arg(key).arg(delta))
    }

    /// `DECRBY key delta`: the value after subtracting `delta`.
    fn decr_by<K: ToArgs>(&self, key: K, delta: i64) -> Result<i64> {
        run(self, &cmd("DECRBY").arg(key).arg(delta))
    }

    /// `INCRBYFLOAT key delta`: the value after adding `delta`.
    fn incr_by_float<K: ToArgs>(&self, key: K, delta: f64) -> Result<f64> {
        run(self, &cmd("INCRBYFLOAT").arg(key).arg(delta))
    }

    /// `GETDEL key`: the value, deleting the key.
    fn getdel<K: ToArgs>(&self, key: K) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("GETDEL").arg(key))
    }

    /// `GETEX key EX|PX|EXAT|PXAT|PERSIST`: the value, changing the key's expiry.
    fn getex<K: ToArgs>(&self, key: K, expiry: GetExExpiry) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("GETEX").arg(key).arg(expiry))
    }

    /// `APPEND key value`: the length of the value afterwards.
    fn append<K: ToArgs, V: ToArgs>(&self, key: K, value: V) -> Result<u64> {
        run(self, &cmd("APPEND").arg(key).arg(value))
    }

    /// `STRLEN key`: the length of the value (0 for a missing key).
    fn strlen<K: ToArgs>(&self, key: K) -> Result<u64> {
        run(self, &cmd("STRLEN").arg(key))
    }

    // -------------------------------------------------------------------- keys

    /// `DEL key...`: how many of the keys existed and were removed.
    fn del<K: ToArgs>(&self, keys: K) -> Result<u64> {
        run(self, &cmd("DEL").arg(keys))
    }

    /// `UNLINK key...`: like [`del`](Commands::del), but the memory is reclaimed in the
    /// background.
    fn unlink<K: ToArgs>(&self, keys: K) -> Result<u64> {
        run(self, &cmd("UNLINK").arg(keys))
    }

    /// `EXISTS key...`: how many of the keys exist (a key named twice counts twice).
    fn exists<K: ToArgs>(&self, keys: K) -> Result<u64> {
        run(self, &cmd("EXISTS").arg(keys))
    }

    /// `EXPIRE key seconds`: true when the expiry was set (false for a missing key).
    /// When `ttl` is not a whole number of seconds, `PEXPIRE key milliseconds` is sent
    /// instead, so a sub-second `ttl` never becomes `EXPIRE 0` (which deletes the key).
    fn expire<K: ToArgs>(&self, key: K, ttl: Duration) -> Result<bool> {
        if ttl.subsec_nanos() == 0 {
            run(self, &cmd("EXPIRE").arg(key).arg(ttl.as_secs()))
        } else {
            self.pexpire(key, ttl)
        }
    }

    /// `PEXPIRE key milliseconds`: true when the expiry was set.
    fn pexpire<K: ToArgs>(&self, key: K, ttl: Duration) -> Result<bool> {
        run(self, &cmd("PEXPIRE").arg(key).arg(strings::millis(ttl)))
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
    fn ttl<K: ToArgs>(&self, key: K) -> Result<Ttl> {
        Ttl::from_reply(run(self, &cmd("TTL").arg(key))?, false)
    }

    /// `PTTL key`: the remaining time to live, in milliseconds.
    fn pttl<K: ToArgs>(&self, key: K) -> Result<Ttl> {
        Ttl::from_reply(run(self, &cmd("PTTL").arg(key))?, true)
    }

    /// `PERSIST key`: true when an expiry was removed.
    fn persist<K: ToArgs>(&self, key: K) -> Result<bool> {
        run(self, &cmd("PERSIST").arg(key))
    }

    /// `TYPE key`: the type of the value ([`KeyType::None`] for a missing key).
    fn key_type<K: ToArgs>(&self, key: K) -> Result<KeyType> {
        let name: String = run(self, &cmd("TYPE").arg(key))?;
        Ok(KeyType::from_name(&name))
    }

    /// `RENAME key newkey`: an error when `key` does not exist.
    fn rename<K: ToArgs, N: ToArgs>(&self, key: K, new_key: N) -> Result<()> {
        run(self, &cmd("RENAME").arg(key).arg(new_key))
    }

    /// `SCAN` over the whole keyspace, as an iterator that fetches batch after batch.
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
    ///     .collect::<valkit::Result<HashSet<Vec<u8>>>>()?;
    /// # Ok(()) }
    /// ```
    fn scan(&self, opts: ScanOptions) -> ScanIter<'_, Self> {
        ScanIter::new(self, opts)
    }

    // ------------------------------------------------------------------ hashes

    /// `HSET key field value ...`: `pairs` writes field/value pairs: one pair as a tuple
    /// `("field", "value")`, several as `&[("a", "1"), ("b", "2")]` or a map. Returns how
    /// many fields are new (overwritten ones do not count).
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// assert_eq!(conn.hset("user:1", [("name", "Ada"), ("lang", "en")])?, 2);
    /// assert_eq!(conn.hset("user:1", ("lang", "fr"))?, 0);
    /// assert_eq!(conn.hget("user:1", "lang")?, Some(b"fr".to_vec()));
    /// # Ok(()) }
    /// ```
    fn hset<K: ToArgs, P: ToArgs>(&self, key: K, pairs: P) -> Result<u64> {
        run(self, &cmd("HSET").arg(key).arg(pairs))
    }

    /// `HGET key field`.
    fn hget<K: ToArgs, F: ToArgs>(&self, key: K, field: F) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("HGET").arg(key).arg(field))
    }

    /// `HMGET key field...`: one entry per field, `None` for missing ones.
    fn hmget<K: ToArgs, F: ToArgs>(&self, key: K, fields: F) -> Result<Vec<Option<Vec<u8>>>> {
        run(self, &cmd("HMGET").arg(key).arg(fields))
    }

    /// `HGETALL key`: all fields and values (empty for a missing key).
    fn hgetall<K: ToArgs>(&self, key: K) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        run(self, &cmd("HGETALL").arg(key))
    }

    /// `HDEL key field...`: how many fields were removed.
    fn hdel<K: ToArgs, F: ToArgs>(&self, key: K, fields: F) -> Result<u64> {
        run(self, &cmd("HDEL").arg(key).arg(fields))
    }

    /// `HEXISTS key field`.
    fn hexists<K: ToArgs, F: ToArgs>(&self, key: K, field: F) -> Result<bool> {
        run(self, &cmd("HEXISTS").arg(key).arg(field))
    }

    /// `HINCRBY key field delta`: the field's value afterwards.
    fn hincr_by<K: ToArgs, F: ToArgs>(&self, key: K, field: F, delta: i64) -> Result<i64> {
        run(self, &cmd("HINCRBY").arg(key).arg(field).arg(delta))
    }

    /// `HLEN key`: the number of fields.
    fn hlen<K: ToArgs>(&self, key: K) -> Result<u64> {
        run(self, &cmd("HLEN").arg(key))
    }

    /// `HKEYS key`: all field names.
    fn hkeys<K: ToArgs>(&self, key: K) -> Result<Vec<Vec<u8>>> {
        run(self, &cmd("HKEYS").arg(key))
    }

    /// `HVALS key`: all values.
    fn hvals<K: ToArgs>(&self, key: K) -> Result<Vec<Vec<u8>>> {
        run(self, &cmd("HVALS").arg(key))
    }

    // ------------------------------------------------------------------- lists

    /// `LPUSH key value...`: the list's length afterwards. Several values are pushed one
    /// after the other, so the last one ends up first.
    fn lpush<K: ToArgs, V: ToArgs>(&self, key: K, values: V) -> Result<u64> {
        run(self, &cmd("LPUSH").arg(key).arg(values))
    }

    /// `RPUSH key value...`: the list's length afterwards.
    fn rpush<K: ToArgs, V: ToArgs>(&self, key: K, values: V) -> Result<u64> {
        run(self, &cmd("RPUSH").arg(key).arg(values))
    }

    /// `LPOP key`: the first element, or `None` for an empty list.
    fn lpop<K: ToArgs>(&self, key: K) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("LPOP").arg(key))
    }

    /// `RPOP key`: the last element, or `None` for an empty list.
    fn rpop<K: ToArgs>(&self, key: K) -> Result<Option<Vec<u8>>> {
        run(self, &cmd("RPOP").arg(key))
    }

    /// `LRANGE key start stop`: elements at `start..=stop` (negative indexes count from the
    /// end; `0, -1` is the whole list).
    fn lrange<K: ToArgs>(&self, key: K, start: i64, stop: i64) -> Result<Vec<Vec<u8>>> {
        run(self, &cmd("LRANGE").arg(key).arg(start).arg(stop))
    }

    /// `LLEN key`.
    fn llen<K: ToArgs>(&self, key: K) -> Result<u64> {
        run(self, &cmd("LLEN").arg(key))
    }

    /// `LREM key count element`: remove up to `count` occurrences (from the head when
    /// positive, from the tail when negative, all when 0); returns how many were removed.
    fn lrem<K: ToArgs, V: ToArgs>(&self, key: K, count: i64, element: V) -> Result<u64> {
        run(self, &cmd("LREM").arg(key).arg(count).arg(element))
    }

    /// `LMOVE source destination from to`: the moved element, `None` when `source` is empty.
    fn lmove<S: ToArgs, D: ToArgs>(
        &self,
        source: S,
        destination: D,
        from: ListEnd,
        to: ListEnd,
    ) -> Result<Option<Vec<u8>>> {
        run(
            self,
            &cmd("LMOVE").arg(source).arg(destination).arg(from).arg(to),
        )
    }

    /// `BLMOVE source destination from to timeout`: like [`lmove`](Commands::lmove), but
    /// waits up to `timeout` for an element; `None` when it timed out. A zero `timeout`
    /// waits for ever.
    fn blmove<S: ToArgs, D: ToArgs>(
        &self,
        source: S,
        destination: D,
        from: ListEnd,
        to: ListEnd,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>> {
        let t = Timeout(timeout);
        let c = cmd("BLMOVE")
            .arg(source)
            .arg(destination)
            .arg(from)
            .arg(to)
            .arg(t);
        run(self, &c.blocking(t.blocking()))
    }

    /// `BLPOP key... timeout`: the first element of the first non-empty list, as
    /// `(key, element)`; waits up to `timeout` (for ever when zero) and returns `None` when
    /// it timed out.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// match conn.blpop(&["jobs:high", "jobs:low"], Duration::from_millis(500))? {
    ///     Some((queue, job)) => println!("{} from {}", job.len(), String::from_utf8_lossy(&queue)),
    ///     None => println!("no job within 0.5 s"),
    /// }
    /// # Ok(()) }
    /// ```
    fn blpop<K: ToArgs>(&self, keys: K, timeout: Duration) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let t = Timeout(timeout);
        run(self, &cmd("BLPOP").arg(keys).arg(t).blocking(t.blocking()))
    }

    /// `BRPOP key... timeout`: like [`blpop`](Commands::blpop), from the tail.
    fn brpop<K: ToArgs>(&self, keys: K, timeout: Duration) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let t = Timeout(timeout);
        run(self, &cmd("BRPOP").arg(keys).arg(t).blocking(t.blocking()))
    }

    /// `BLMPOP timeout numkeys key... LEFT|RIGHT COUNT count` (Redis 7.0+): up to `count`
    /// elements from the first non-empty list, as `(key, elements)`; `None` when it timed
    /// out.
    #[allow(clippy::type_complexity)]
    fn blmpop<K: ToArgs>(
        &self,
        timeout: Duration,
        keys: K,
        end: ListEnd,
        count: u64,
    ) -> Result<Option<(Vec<u8>, Vec<Vec<u8>>)>> {
        let t = Timeout(timeout);
        // numkeys comes first, so write the keys aside to count them.
        let keys = Cmd::new().arg(keys);
        let mut c = cmd("BLMPOP").arg(t).arg(keys.len());
        for k in keys.args() {
            c.add_arg(k);
        }
        let c = c.arg(end).arg("COUNT").arg(count);
        run(self, &c.blocking(t.blocking()))
    }

    // -------------------------------------------------------------------- sets

    /// `SADD key member...`: how many members are new.
    fn sadd<K: ToArgs, M: ToArgs>(&self, key: K, members: M) -> Result<u64> {
        run(self, &cmd("SADD").arg(key).arg(members))
    }

    /// `SREM key member...`: how many members were removed.
    fn srem<K: ToArgs, M: ToArgs>(&self, key: K, members: M) -> Result<u64> {
        run(self, &cmd("SREM").arg(key).arg(members))
    }

    /// `SMEMBERS key`: all members (empty for a missing key).
    fn smembers<K: ToArgs>(&self, key: K) -> Result<HashSet<Vec<u8>>> {
        run(self, &cmd("SMEMBERS").arg(key))
    }

    /// `SISMEMBER key member`.
    fn sismember<K: ToArgs, M: ToArgs>(&self, key: K, member: M) -> Result<bool> {
        run(self, &cmd("SISMEMBER").arg(key).arg(member))
    }

    /// `SCARD key`: the number of members.
    fn scard<K: ToArgs>(&self, key: K) -> Result<u64> {
        run(self, &cmd("SCARD").arg(key))
    }

    // ------------------------------------------------------------- sorted sets

    /// `ZADD key score member ...`: `members` are `(member, score)` pairs; returns how many
    /// members are new.
    fn zadd<K: ToArgs, M: ToArgs>(&self, key: K, members: &[(M, f64)]) -> Result<u64> {
        self.zadd_options(key, members, &ZAddOptions::new())
    }

    /// `ZADD key [NX|XX] [GT|LT] [CH] score member ...`: how many members were added (with
    /// `CH`: added or changed).
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ScoreUpdate, ZAddOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// // Keep each player's best score.
    /// let best = ZAddOptions::new().update(ScoreUpdate::Gt).ch();
    /// let changed = conn.zadd_options("scores", &[("ann", 10.0), ("bob", 7.5)], &best)?;
    /// # Ok(()) }
    /// ```
    fn zadd_options<K: ToArgs, M: ToArgs>(
        &self,
        key: K,
        members: &[(M, f64)],
        opts: &ZAddOptions,
    ) -> Result<u64> {
        let mut c = cmd("ZADD").arg(key).arg(opts);
        for (member, score) in members {
            c.add_arg(score).add_arg(member);
        }
        run(self, &c)
    }

    /// `ZINCRBY key delta member`: the member's score afterwards.
    fn zincr_by<K: ToArgs, M: ToArgs>(&self, key: K, delta: f64, member: M) -> Result<f64> {
        run(self, &cmd("ZINCRBY").arg(key).arg(delta).arg(member))
    }

    /// `ZRANGE key ...` (Redis 6.2+ syntax): the members of a range by rank or score, in
    /// either order, optionally a page of it.
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection, ScoreBound, ZRangeOptions};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let top3 = conn.zrange("scores", ZRangeOptions::by_index(0, 2).rev())?;
    /// let passed = conn.zrange(
    ///     "scores",
    ///     ZRangeOptions::by_score(ScoreBound::Inclusive(5.0), ScoreBound::PosInf),
    /// )?;
    /// # Ok(()) }
    /// ```
    fn zrange<K: ToArgs>(&self, key: K, opts: ZRangeOptions) -> Result<Vec<Vec<u8>>> {
        run(self, &cmd("ZRANGE").arg(key).arg(opts))
    }

    /// `ZRANGE key ... WITHSCORES`: like [`zrange`](Commands::zrange), with each member's
    /// score.
    fn zrange_withscores<K: ToArgs>(
        &self,
        key: K,
        opts: ZRangeOptions,
    ) -> Result<Vec<(Vec<u8>, f64)>> {
        zset::parse_with_scores(self.exec(&cmd("ZRANGE").arg(key).arg(opts).arg("WITHSCORES"))?)
    }

    /// `ZREMRANGEBYSCORE key min max`: how many members were removed.
    fn zrem_range_by_score<K: ToArgs>(
        &self,
        key: K,
        min: ScoreBound,
        max: ScoreBound,
    ) -> Result<u64> {
        run(self, &cmd("ZREMRANGEBYSCORE").arg(key).arg(min).arg(max))
    }

    /// `ZCARD key`: the number of members.
    fn zcard<K: ToArgs>(&self, key: K) -> Result<u64> {
        run(self, &cmd("ZCARD").arg(key))
    }

    /// `ZSCORE key member`: the score, `None` when the member (or key) does not exist.
    fn zscore<K: ToArgs, M: ToArgs>(&self, key: K, member: M) -> Result<Option<f64>> {
        run(self, &cmd("ZSCORE").arg(key).arg(member))
    }

    /// `ZREM key member...`: how many members were removed.
    fn zrem<K: ToArgs, M: ToArgs>(&self, key: K, members: M) -> Result<u64> {
        run(self, &cmd("ZREM").arg(key).arg(members))
    }

    // ------------------------------------------------------------------ server

    /// `PING`: succeeds when the server answers.
    fn ping(&self) -> Result<()> {
        run(self, &cmd("PING"))
    }

    /// `PING message`: the server echoes the message.
    fn ping_message<M: ToArgs>(&self, message: M) -> Result<Vec<u8>> {
        run(self, &cmd("PING").arg(message))
    }

    /// `INFO`: the default sections, parsed.
    ///
    /// ```no_run
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let info = conn.info()?;
    /// println!("version {:?}", info.server_version());
    /// println!("clients {:?}", info.get("clients", "connected_clients"));
    /// # Ok(()) }
    /// ```
    fn info(&self) -> Result<Info> {
        run(self, &cmd("INFO"))
    }

    /// `INFO section...`: the named sections (or `all`, `everything`), parsed.
    fn info_sections<S: ToArgs>(&self, sections: S) -> Result<Info> {
        run(self, &cmd("INFO").arg(sections))
    }

    /// `TIME`: the server's clock.
    fn time(&self) -> Result<SystemTime> {
        let (secs, micros): (u64, u64) = run(self, &cmd("TIME"))?;
        if micros >= 1_000_000 {
            return Err(Error::conversion(format!(
                "TIME microseconds out of range: {micros}"
            )));
        }
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
            .ok_or_else(|| Error::conversion(format!("TIME seconds out of range: {secs}")))
    }

    /// `DBSIZE`: the number of keys in the selected database.
    fn dbsize(&self) -> Result<u64> {
        run(self, &cmd("DBSIZE"))
    }

    /// `FLUSHDB`: delete every key of the selected database. Irreversible.
    fn flushdb(&self) -> Result<()> {
        run(self, &cmd("FLUSHDB"))
    }
}

impl<E: Execute + ?Sized> Commands for E {}
