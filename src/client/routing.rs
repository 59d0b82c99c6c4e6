//! Which commands are read-only (routable to a reader endpoint) and which are idempotent
//! (safe to resend after an ambiguous failure).

use crate::cmd::{Cmd, Pipeline};

/// Commands that never write, sorted for binary search (upper case).
const READ_ONLY: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EXISTS",
    "EXPIRETIME",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "PEXPIRETIME",
    "PFCOUNT",
    "PING",
    "PTTL",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZINTER",
    "ZINTERCARD",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
];

/// Writes whose repetition leaves the same state and reply (sorted, upper case).
/// `SET` qualifies only without NX/XX/GET (checked separately).
const IDEMPOTENT_WRITES: &[&str] = &[
    "DEL",
    "EXPIRE",
    "EXPIREAT",
    "HDEL",
    "HMSET",
    "HSET",
    "MSET",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "SADD",
    "SREM",
    "UNLINK",
    "ZREM",
];

fn upper(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    (s.len() <= 32).then(|| s.to_ascii_uppercase())
}

/// True when `cmd` never writes, so it may go to a replica.
pub(crate) fn is_read_only(cmd: &Cmd) -> bool {
    let Some(name) = upper(cmd.name()) else {
        return false;
    };
    READ_ONLY.binary_search(&name.as_str()).is_ok()
}

/// True when `cmd` may go to the reader: read-only, and not pinned to the writer.
pub(crate) fn may_read_from_reader(cmd: &Cmd) -> bool {
    cmd.read_from_hint() != Some(crate::cmd::ReadFrom::Writer) && is_read_only(cmd)
}

/// True when running `cmd` twice is the same as running it once.
pub(crate) fn is_idempotent(cmd: &Cmd) -> bool {
    if let Some(hint) = cmd.idempotent_hint() {
        return hint;
    }
    let Some(name) = upper(cmd.name()) else {
        return false;
    };
    if READ_ONLY.binary_search(&name.as_str()).is_ok()
        || IDEMPOTENT_WRITES.binary_search(&name.as_str()).is_ok()
    {
        return true;
    }
    if name == "SET" {
        return !cmd.args().skip(3).any(|a| {
            a.eq_ignore_ascii_case(b"NX")
                || a.eq_ignore_ascii_case(b"XX")
                || a.eq_ignore_ascii_case(b"GET")
        });
    }
    false
}

/// A pipeline is read-only (idempotent) when all its commands are; transactions never
/// go to a reader.
pub(crate) fn pipeline_is_read_only(p: &Pipeline) -> bool {
    !p.is_atomic() && !p.is_empty() && p.commands().iter().all(is_read_only)
}

pub(crate) fn pipeline_is_idempotent(p: &Pipeline) -> bool {
    p.commands().iter().all(is_idempotent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    #[test]
    fn tables_are_sorted() {
        assert!(READ_ONLY.windows(2).all(|w| w[0] < w[1]));
        assert!(IDEMPOTENT_WRITES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn classification() {
        assert!(is_read_only(&cmd("get").arg("k")));
        assert!(may_read_from_reader(&cmd("GET").arg("k")));
        let pinned = cmd("GET").arg("k").read_from(crate::cmd::ReadFrom::Writer);
        assert!(!may_read_from_reader(&pinned));
        assert!(!may_read_from_reader(
            &cmd("SET")
                .arg("k")
                .arg(1)
                .read_from(crate::cmd::ReadFrom::Reader)
        ));
        assert!(!is_read_only(&cmd("SET").arg("k").arg("v")));
        assert!(!is_read_only(&cmd("INCR").arg("k")));
        assert!(is_idempotent(
            &cmd("SET").arg("k").arg("v").arg("EX").arg(10)
        ));
        assert!(!is_idempotent(&cmd("SET").arg("k").arg("v").arg("NX")));
        assert!(!is_idempotent(&cmd("INCR").arg("k")));
        assert!(is_idempotent(&cmd("INCR").arg("k").idempotent(true)));
        assert!(!is_idempotent(&cmd("GET").arg("k").idempotent(false)));
        let p = crate::cmd::pipe()
            .cmd(cmd("GET").arg("a"))
            .cmd(cmd("MGET").arg("b"));
        assert!(pipeline_is_read_only(&p));
        assert!(!pipeline_is_read_only(&p.clone().atomic()));
        assert!(!pipeline_is_read_only(&p.cmd(cmd("DEL").arg("a"))));
    }
}
