//! The hash commands: `HSET`, `HGET`, `HGETALL`, `HINCRBY`, ... (`HSCAN` is in `scan.rs`).

/// The hash commands (see `define.rs` for the form).
macro_rules! hash_commands {
    ($out:ident) => { $out! {
    /// `HSET key field value ...`: `pairs` writes field/value pairs: one pair as a tuple
    /// `("field", "value")`, several as `&[("a", "1"), ("b", "2")]` or a map. Returns how
    /// many fields are new (overwritten ones do not count).
    ///
    /// ```no_run
    /// # use std::collections::HashMap;
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// assert_eq!(conn.hset("user:1", [("name", "Ada"), ("lang", "en")])?, 2);
    /// assert_eq!(conn.hset("user:1", ("lang", "fr"))?, 0);
    /// let lang: Option<String> = conn.hget("user:1", "lang")?;
    /// let user: HashMap<String, String> = conn.hgetall("user:1")?;
    /// assert_eq!(lang.as_deref(), Some("fr"));
    /// assert_eq!(user["name"], "Ada");
    /// # Ok(()) }
    /// ```
    fn hset<K: ToArgs, P: ToArgs>(key: K, pairs: P) -> u64 { known_cmd!("HSET").arg(key).arg(pairs) }

    /// `HSETNX key field value`: true when the field was new and is now set, false when it
    /// existed (and was left alone).
    fn hsetnx<K: ToArgs, F: ToArgs, V: ToArgs>(key: K, field: F, value: V) -> bool {
        known_cmd!("HSETNX").arg(key).arg(field).arg(value)
    }

    /// `HGET key field`: the value, `None` when the field (or the key) does not exist.
    fn hget<K: ToArgs, F: ToArgs>(key: K, field: F) -> RV { known_cmd!("HGET").arg(key).arg(field) }

    /// `HMGET key field...`: one entry per field, `None` for missing ones: e.g.
    /// `Vec<Option<String>>`, or a tuple `(Option<String>, Option<i64>)`.
    fn hmget<K: ToArgs, F: ToArgs>(key: K, fields: F) -> RV { known_cmd!("HMGET").arg(key).arg(fields) }

    /// `HGETALL key`: all fields and values (empty for a missing key), e.g. as
    /// `HashMap<String, String>`, `BTreeMap<String, i64>` or `Vec<(String, String)>`, from
    /// RESP2's flat array or RESP3's map alike.
    fn hgetall<K: ToArgs>(key: K) -> RV { known_cmd!("HGETALL").arg(key) }

    /// `HDEL key field...`: how many fields were removed.
    fn hdel<K: ToArgs, F: ToArgs>(key: K, fields: F) -> u64 { known_cmd!("HDEL").arg(key).arg(fields) }

    /// `HEXISTS key field`.
    fn hexists<K: ToArgs, F: ToArgs>(key: K, field: F) -> bool {
        known_cmd!("HEXISTS").arg(key).arg(field)
    }

    /// `HINCRBY key field delta`: the field's value afterwards.
    fn hincr_by<K: ToArgs, F: ToArgs>(key: K, field: F, delta: i64) -> i64 {
        known_cmd!("HINCRBY").arg(key).arg(field).arg(delta)
    }

    /// `HINCRBYFLOAT key field delta`: the field's value afterwards.
    fn hincr_by_float<K: ToArgs, F: ToArgs>(key: K, field: F, delta: f64) -> f64 {
        known_cmd!("HINCRBYFLOAT").arg(key).arg(field).arg(delta)
    }

    /// `HLEN key`: the number of fields.
    fn hlen<K: ToArgs>(key: K) -> u64 { known_cmd!("HLEN").arg(key) }

    /// `HKEYS key`: all field names, e.g. as `Vec<String>`.
    fn hkeys<K: ToArgs>(key: K) -> RV { known_cmd!("HKEYS").arg(key) }

    /// `HVALS key`: all values, e.g. as `Vec<String>`.
    fn hvals<K: ToArgs>(key: K) -> RV { known_cmd!("HVALS").arg(key) }
    }};
}
