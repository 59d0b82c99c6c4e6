//! Options of the list commands: [`ListEnd`], and the encoding of blocking timeouts.

use std::time::Duration;

use crate::cmd::{ArgWriter, Blocking, ToArgs};

/// One end of a list, for `LMOVE`, `BLMOVE` and `BLMPOP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListEnd {
    /// `LEFT`: the head.
    Left,
    /// `RIGHT`: the tail.
    Right,
}

impl ToArgs for ListEnd {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(match self {
            ListEnd::Left => b"LEFT",
            ListEnd::Right => b"RIGHT",
        })
    }
}

/// A blocking timeout as the server reads it: decimal seconds with millisecond precision
/// (`0.5`, `2`, `0` for ever). A non-zero timeout under one millisecond is rounded up to
/// `0.001`, because the server would round it down to `0`, which means "block for ever".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeout(pub(crate) Duration);

impl Timeout {
    fn millis(self) -> u128 {
        let ms = self.0.as_millis();
        if ms == 0 && !self.0.is_zero() {
            1
        } else if self.0.subsec_nanos() % 1_000_000 != 0 {
            ms + 1
        } else {
            ms
        }
    }

    /// How long the connection must let the server hold the reply.
    pub(crate) fn blocking(self) -> Blocking {
        if self.0.is_zero() {
            Blocking::Forever
        } else {
            Blocking::For(self.0)
        }
    }
}

impl ToArgs for Timeout {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        let ms = self.millis();
        let text = if ms % 1000 == 0 {
            format!("{}", ms / 1000)
        } else {
            let frac = format!("{:03}", ms % 1000);
            format!("{}.{}", ms / 1000, frac.trim_end_matches('0'))
        };
        out.write(text.as_bytes())
    }
}

/// The list commands (see `define.rs` for the form).
macro_rules! list_commands {
    ($out:ident) => { $out! {
    /// `LPUSH key value...`: the list's length afterwards. Several values are pushed one
    /// after the other, so the last one ends up first.
    fn lpush<K: ToArgs, V: ToArgs>(key: K, values: V) -> u64 { known_cmd!("LPUSH").arg(key).arg(values) }

    /// `RPUSH key value...`: the list's length afterwards.
    fn rpush<K: ToArgs, V: ToArgs>(key: K, values: V) -> u64 { known_cmd!("RPUSH").arg(key).arg(values) }

    /// `LPOP key`: the first element, or `None` for an empty list.
    fn lpop<K: ToArgs>(key: K) -> RV { known_cmd!("LPOP").arg(key) }

    /// `RPOP key`: the last element, or `None` for an empty list.
    fn rpop<K: ToArgs>(key: K) -> RV { known_cmd!("RPOP").arg(key) }

    /// `LRANGE key start stop`: elements at `start..=stop` (negative indexes count from the
    /// end; `0, -1` is the whole list), e.g. as `Vec<String>`.
    fn lrange<K: ToArgs>(key: K, start: i64, stop: i64) -> RV {
        known_cmd!("LRANGE").arg(key).arg(start).arg(stop)
    }

    /// `LINDEX key index`: the element at `index` (negative counts from the end), `None`
    /// when out of range.
    fn lindex<K: ToArgs>(key: K, index: i64) -> RV { known_cmd!("LINDEX").arg(key).arg(index) }

    /// `LSET key index element`: replace the element at `index`; an error when `index` is
    /// out of range or the key does not exist.
    fn lset<K: ToArgs, V: ToArgs>(key: K, index: i64, element: V) -> () {
        known_cmd!("LSET").arg(key).arg(index).arg(element)
    }

    /// `LTRIM key start stop`: keep only the elements at `start..=stop` (a capped list:
    /// `lpush` then `ltrim(key, 0, 99)`).
    fn ltrim<K: ToArgs>(key: K, start: i64, stop: i64) -> () {
        known_cmd!("LTRIM").arg(key).arg(start).arg(stop)
    }

    /// `LLEN key`.
    fn llen<K: ToArgs>(key: K) -> u64 { known_cmd!("LLEN").arg(key) }

    /// `LREM key count element`: remove up to `count` occurrences (from the head when
    /// positive, from the tail when negative, all when 0); returns how many were removed.
    fn lrem<K: ToArgs, V: ToArgs>(key: K, count: i64, element: V) -> u64 {
        known_cmd!("LREM").arg(key).arg(count).arg(element)
    }

    /// `LMOVE source destination from to`: the moved element, `None` when `source` is empty.
    fn lmove<S: ToArgs, D: ToArgs>(source: S, destination: D, from: ListEnd, to: ListEnd) -> RV {
        known_cmd!("LMOVE").arg(source).arg(destination).arg(from).arg(to)
    }

    /// `BLMOVE source destination from to timeout`: like [`lmove`](Commands::lmove), but
    /// waits up to `timeout` for an element; `None` when it timed out. A zero `timeout`
    /// waits for ever.
    fn blmove<S: ToArgs, D: ToArgs>(
        source: S,
        destination: D,
        from: ListEnd,
        to: ListEnd,
        timeout: Duration
    ) -> RV {
        let t = Timeout(timeout);
        known_cmd!("BLMOVE").arg(source).arg(destination).arg(from).arg(to).arg(t).blocking(t.blocking())
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
    /// let job: Option<(String, Vec<u8>)> =
    ///     conn.blpop(&["jobs:high", "jobs:low"], Duration::from_millis(500))?;
    /// match job {
    ///     Some((queue, job)) => println!("{} bytes from {queue}", job.len()),
    ///     None => println!("no job within 0.5 s"),
    /// }
    /// # Ok(()) }
    /// ```
    fn blpop<K: ToArgs>(keys: K, timeout: Duration) -> RV {
        let t = Timeout(timeout);
        known_cmd!("BLPOP").arg(keys).arg(t).blocking(t.blocking())
    }

    /// `BRPOP key... timeout`: like [`blpop`](Commands::blpop), from the tail.
    fn brpop<K: ToArgs>(keys: K, timeout: Duration) -> RV {
        let t = Timeout(timeout);
        known_cmd!("BRPOP").arg(keys).arg(t).blocking(t.blocking())
    }

    /// `BLMPOP timeout numkeys key... LEFT|RIGHT COUNT count` (Redis 7.0+): up to `count`
    /// elements from the first non-empty list, as `(key, elements)`; `None` when it timed
    /// out.
    fn blmpop<K: ToArgs>(timeout: Duration, keys: K, end: ListEnd, count: u64) -> RV {
        let t = Timeout(timeout);
        // numkeys comes first, so write the keys aside to count them.
        let keys = Cmd::new().arg(keys);
        let mut c = known_cmd!("BLMPOP").arg(t).arg(keys.len());
        for k in keys.args() {
            c.add_arg(k);
        }
        c.arg(end).arg("COUNT").arg(count).blocking(t.blocking())
    }
    }};
}
