//! The set commands: `SADD`, `SMEMBERS`, `SINTER`, `SPOP`, ... (`SSCAN` is in `scan.rs`).

/// The set commands (see `define.rs` for the form).
macro_rules! set_commands {
    ($out:ident) => { $out! {
    /// `SADD key member...`: how many members are new.
    fn sadd<K: ToArgs, M: ToArgs>(key: K, members: M) -> u64 { known_cmd!("SADD").arg(key).arg(members) }

    /// `SREM key member...`: how many members were removed.
    fn srem<K: ToArgs, M: ToArgs>(key: K, members: M) -> u64 { known_cmd!("SREM").arg(key).arg(members) }

    /// `SMEMBERS key`: all members (empty for a missing key), e.g. as `HashSet<String>`
    /// (from RESP2's array or RESP3's set alike).
    ///
    /// ```no_run
    /// # use std::collections::HashSet;
    /// # use valkit::{Commands, Connection};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// conn.sadd("tags:1", &["rust", "valkey"])?;
    /// conn.sadd("tags:2", &["rust", "go"])?;
    /// let tags: HashSet<String> = conn.smembers("tags:1")?;
    /// let both: Vec<String> = conn.sinter(&["tags:1", "tags:2"])?;
    /// assert_eq!((tags.len(), both), (2, vec!["rust".to_string()]));
    /// # Ok(()) }
    /// ```
    fn smembers<K: ToArgs>(key: K) -> RV { known_cmd!("SMEMBERS").arg(key) }

    /// `SISMEMBER key member`.
    fn sismember<K: ToArgs, M: ToArgs>(key: K, member: M) -> bool {
        known_cmd!("SISMEMBER").arg(key).arg(member)
    }

    /// `SMISMEMBER key member...` (Redis 6.2+): one flag per member, in order.
    fn smismember<K: ToArgs, M: ToArgs>(key: K, members: M) -> Vec<bool> {
        known_cmd!("SMISMEMBER").arg(key).arg(members)
    }

    /// `SCARD key`: the number of members.
    fn scard<K: ToArgs>(key: K) -> u64 { known_cmd!("SCARD").arg(key) }

    /// `SPOP key`: remove and return a random member, `None` when the set is empty.
    fn spop<K: ToArgs>(key: K) -> RV { known_cmd!("SPOP").arg(key) }

    /// `SPOP key count`: remove and return up to `count` random members.
    fn spop_count<K: ToArgs>(key: K, count: u64) -> RV { known_cmd!("SPOP").arg(key).arg(count) }

    /// `SRANDMEMBER key`: a random member (not removed), `None` when the set is empty.
    fn srandmember<K: ToArgs>(key: K) -> RV { known_cmd!("SRANDMEMBER").arg(key) }

    /// `SRANDMEMBER key count`: up to `count` distinct random members; a negative `count`
    /// returns exactly `-count` members, possibly repeated.
    fn srandmember_count<K: ToArgs>(key: K, count: i64) -> RV {
        known_cmd!("SRANDMEMBER").arg(key).arg(count)
    }

    /// `SINTER key...`: the members present in every set.
    fn sinter<K: ToArgs>(keys: K) -> RV { known_cmd!("SINTER").arg(keys) }

    /// `SUNION key...`: the members present in any set.
    fn sunion<K: ToArgs>(keys: K) -> RV { known_cmd!("SUNION").arg(keys) }

    /// `SDIFF key...`: the members of the first set not in any of the others.
    fn sdiff<K: ToArgs>(keys: K) -> RV { known_cmd!("SDIFF").arg(keys) }

    /// `SINTERSTORE destination key...`: store the intersection; returns its size.
    fn sinterstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> u64 {
        known_cmd!("SINTERSTORE").arg(destination).arg(keys)
    }

    /// `SUNIONSTORE destination key...`: store the union; returns its size.
    fn sunionstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> u64 {
        known_cmd!("SUNIONSTORE").arg(destination).arg(keys)
    }

    /// `SDIFFSTORE destination key...`: store the difference; returns its size.
    fn sdiffstore<D: ToArgs, K: ToArgs>(destination: D, keys: K) -> u64 {
        known_cmd!("SDIFFSTORE").arg(destination).arg(keys)
    }
    }};
}
