//! The table's own consistency: sorted, no duplicate rows, upper case, every name found in
//! any case, and every name one of the lists it replaced knew (routing's `KNOWN`, the key
//! positions, the session tracker, blocking re-issue, secrets and refusals) present. That
//! each kept its properties is pinned by `client/command_table_golden.rs`.

use super::*;
use crate::cmd::cmd;

/// Every command name one of the old lists knew (routing's `KNOWN`, the key positions,
/// the secrets and refusals, the session tracker, blocking re-issue), plus unknown ones.
pub(crate) const OLD_NAMES: &[&str] = &[
    "ACL",
    "APPEND",
    "ASKING",
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "BITCOUNT",
    "BITFIELD",
    "BITOP",
    "BITPOS",
    "BLMOVE",
    "BLMPOP",
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BZMPOP",
    "BZPOPMAX",
    "BZPOPMIN",
    "CLIENT",
    "CLUSTER",
    "COMMAND",
    "CONFIG",
    "COPY",
    "DBSIZE",
    "DEBUG",
    "DECR",
    "DECRBY",
    "DEL",
    "DISCARD",
    "DUMP",
    "ECHO",
    "EVAL",
    "EVALSHA",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXEC",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "EXPIRETIME",
    "FAILOVER",
    "FCALL",
    "FCALL_RO",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "GEOADD",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GEOSEARCHSTORE",
    "GET",
    "GETBIT",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HELLO",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HINCRBYFLOAT",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HRANDFIELD",
    "HSCAN",
    "HSET",
    "HSETNX",
    "HSTRLEN",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "LCS",
    "LINDEX",
    "LINSERT",
    "LLEN",
    "LMOVE",
    "LMPOP",
    "LOLWUT",
    "LPOP",
    "LPOS",
    "LPUSH",
    "LPUSHX",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MEMORY",
    "MGET",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "MOVE",
    "MSET",
    "MSETNX",
    "MULTI",
    "OBJECT",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PEXPIRETIME",
    "PFADD",
    "PFCOUNT",
    "PFMERGE",
    "PING",
    "PIPELINE",
    "PSETEX",
    "PSUBSCRIBE",
    "PTTL",
    "PUBLISH",
    "PUBSUB",
    "PUNSUBSCRIBE",
    "QUIT",
    "RANDOMKEY",
    "READONLY",
    "READWRITE",
    "RENAME",
    "RENAMENX",
    "REPLICAOF",
    "RESET",
    "RESTORE",
    "ROLE",
    "RPOP",
    "RPOPLPUSH",
    "RPUSH",
    "RPUSHX",
    "SADD",
    "SAVE",
    "SCAN",
    "SCARD",
    "SCRIPT",
    "SDIFF",
    "SDIFFSTORE",
    "SELECT",
    "SENTINEL",
    "SET",
    "SETBIT",
    "SETEX",
    "SETNX",
    "SETRANGE",
    "SHUTDOWN",
    "SINTER",
    "SINTERCARD",
    "SINTERSTORE",
    "SISMEMBER",
    "SLAVEOF",
    "SLOWLOG",
    "SMEMBERS",
    "SMISMEMBER",
    "SMOVE",
    "SPOP",
    "SPUBLISH",
    "SRANDMEMBER",
    "SREM",
    "SSCAN",
    "SSUBSCRIBE",
    "STRLEN",
    "SUBSCRIBE",
    "SUBSTR",
    "SUNION",
    "SUNIONSTORE",
    "SUNSUBSCRIBE",
    "SWAPDB",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "UNLINK",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "WATCH",
    "XACK",
    "XADD",
    "XAUTOCLAIM",
    "XCLAIM",
    "XDEL",
    "XGROUP",
    "XINFO",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREAD",
    "XREADGROUP",
    "XREVRANGE",
    "XTRIM",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZDIFFSTORE",
    "ZINCRBY",
    "ZINTER",
    "ZINTERCARD",
    "ZINTERSTORE",
    "ZLEXCOUNT",
    "ZMPOP",
    "ZMSCORE",
    "ZPOPMAX",
    "ZPOPMIN",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANGESTORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYLEX",
    "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
    "ZUNIONSTORE",
];

#[test]
fn rows_are_sorted_unique_upper_case_and_found_in_any_case() {
    assert!(
        TABLE.windows(2).all(|w| w[0].name < w[1].name),
        "sorted, no duplicates"
    );
    for (k, spec) in TABLE.iter().enumerate() {
        assert_eq!(spec.name, spec.name.to_ascii_uppercase());
        assert_eq!(index_of_name(spec.name.as_bytes()), Some(k), "{spec:?}");
        assert_eq!(index_of_name(spec.name.to_lowercase().as_bytes()), Some(k));
        assert_eq!(index_of(spec.name), k);
        assert_eq!(cmd(&spec.name.to_lowercase()).spec_index(), Some(k));
        for (i, sub) in spec.subcommands.iter().enumerate() {
            assert!(!sub.words.is_empty(), "{spec:?}");
            for w in sub.words {
                assert_eq!(*w, w.to_ascii_uppercase(), "{spec:?}");
            }
            // A row is never shadowed by an earlier, shorter row of the same words.
            for earlier in &spec.subcommands[..i] {
                let prefix = earlier.words.len() <= sub.words.len()
                    && earlier.words.iter().zip(sub.words).all(|(a, b)| a == b);
                assert!(!prefix, "{earlier:?} shadows {sub:?}");
            }
        }
    }
    assert!(
        name::PACKED.windows(2).all(|w| w[0] < w[1]),
        "packed names keep the order"
    );
    for unknown in [
        "", "GE", "GETT", "ZZZ", "_GET", "1", "HGETALLX", "GET ", "g\u{e9}t",
    ] {
        assert_eq!(index_of_name(unknown.as_bytes()), None, "{unknown:?}");
    }
    assert_eq!(index_of_name(&[0xff, b'G']), None);
    assert_eq!(index_of_name(b"GET\0"), None);
    assert_eq!(index_of_name(b"\0"), None);
    assert_eq!(index_of_name(&[b'A'; 40]), None);
    assert_eq!(Cmd::new().spec_index(), None);
    assert_eq!(cmd("my.module").spec_index(), None);
}

#[test]
fn every_name_the_old_lists_knew_has_a_row() {
    assert!(OLD_NAMES.windows(2).all(|w| w[0] < w[1]));
    for name in OLD_NAMES {
        assert!(index_of_name(name.as_bytes()).is_some(), "{name}");
    }
    // And no row the old lists did not know.
    for spec in TABLE {
        assert!(OLD_NAMES.contains(&spec.name), "{spec:?}");
    }
}

#[test]
fn lookup_matches_name_and_subcommands_in_any_case() {
    // The row, and the subcommand row's words, of a command.
    let row = |c: &Cmd| {
        of(c).map(|s| {
            let mut words = vec![s.name];
            words.extend(s.subcommand(c).map_or(&[][..], |sub| sub.words));
            words
        })
    };
    assert_eq!(row(&cmd("auth").arg("pw")).unwrap(), ["AUTH"]);
    assert_eq!(
        row(&cmd("Config").arg("set").arg("x").arg("y")).unwrap(),
        ["CONFIG", "SET"]
    );
    assert_eq!(row(&cmd("CONFIG").arg("GET").arg("x")).unwrap(), ["CONFIG"]);
    assert_eq!(row(&cmd("CONFIG")).unwrap(), ["CONFIG"]);
    assert_eq!(
        row(&cmd("sentinel").arg("config").arg("set")).unwrap(),
        ["SENTINEL", "CONFIG", "SET"]
    );
    assert_eq!(row(&cmd("GET").arg("AUTH")).unwrap(), ["GET"]);
    assert_eq!(secrets(&cmd("GET").arg("AUTH")), None);
    assert_eq!(secrets(&cmd("ACL").arg("LIST")), None);
    assert!(secrets(&cmd("acl").arg("setuser")).is_some());
    assert_eq!(row(&cmd("subscribe").arg("c")).unwrap(), ["SUBSCRIBE"]);
    assert_eq!(
        refusal(&cmd("client").arg("reply")),
        Some(Refusal::ClientReply)
    );
    assert_eq!(refusal(&cmd("client").arg("id")), None);
    assert_eq!(row(&cmd("mymodule.cmd")), None);
    assert_eq!(row(&Cmd::new()), None);
}
