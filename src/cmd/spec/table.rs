//! The rows of the command table, one per command name, sorted (byte order, upper case):
//! what is not said is the default of its access (`r`: read-only, `i`: idempotent write,
//! `w`: write), first argument the only key, no blocking, no session effect, no secrets,
//! not refused.

use super::{Access, CommandSpec, KeySpec, Refusal, Secrets, Session, SubSpec, Timeout};

const fn row(name: &'static str, access: Access) -> CommandSpec {
    CommandSpec {
        name,
        access,
        keys: FIRST,
        blocking: None,
        session: None,
        secrets: None,
        refusal: None,
        subcommands: &[],
    }
}

const fn r(name: &'static str) -> CommandSpec {
    row(name, Access::ReadOnly)
}

const fn i(name: &'static str) -> CommandSpec {
    row(name, Access::IdempotentWrite)
}

const fn w(name: &'static str) -> CommandSpec {
    row(name, Access::Write)
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | ...]`: idempotent without NX, XX, GET.
const fn set() -> CommandSpec {
    row(
        "SET",
        Access::IdempotentUnless {
            from: 3,
            words: &["NX", "XX", "GET"],
        },
    )
}

impl CommandSpec {
    const fn keys(mut self, keys: KeySpec) -> Self {
        self.keys = keys;
        self
    }

    const fn blocks(mut self, timeout: Timeout) -> Self {
        self.blocking = Some(timeout);
        self
    }

    const fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    const fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    const fn refused(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(refusal);
        self
    }

    const fn subcommands(mut self, subs: &'static [SubSpec]) -> Self {
        self.subcommands = subs;
        self
    }
}

const fn sub(words: &'static [&'static str]) -> SubSpec {
    SubSpec {
        words,
        keys: None,
        session: None,
        secrets: None,
        refusal: None,
    }
}

impl SubSpec {
    const fn keys(mut self, keys: KeySpec) -> Self {
        self.keys = Some(keys);
        self
    }

    const fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    const fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    const fn refused(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(refusal);
        self
    }
}

// Key positions.
const NONE: KeySpec = KeySpec::None;
const FIRST: KeySpec = KeySpec::Fixed { first: 1, last: 1 };
const SECOND: KeySpec = KeySpec::Fixed { first: 2, last: 2 };
const TWO: KeySpec = KeySpec::Fixed { first: 1, last: 2 };
const ALL: KeySpec = KeySpec::Range {
    first: 1,
    step: 1,
    trailing: 0,
};
/// `MSET k v k v ...`
const PAIRS: KeySpec = KeySpec::Range {
    first: 1,
    step: 2,
    trailing: 0,
};
/// `BLPOP k ... timeout`
const ALL_BUT_LAST: KeySpec = KeySpec::Range {
    first: 1,
    step: 1,
    trailing: 1,
};
/// `EVAL script numkeys k ...`, `BLMPOP timeout numkeys k ...`
const NUMKEYS_AT_2: KeySpec = KeySpec::NumKeys { at: 2, extra: 0 };
/// `ZUNION numkeys k ...`
const NUMKEYS_AT_1: KeySpec = KeySpec::NumKeys { at: 1, extra: 0 };
/// `ZUNIONSTORE dest numkeys k ...`
const DEST_AND_NUMKEYS: KeySpec = KeySpec::NumKeys { at: 2, extra: 1 };
const STREAMS: KeySpec = KeySpec::Streams;

// Blocking timeouts.
const LAST_SECONDS: Timeout = Timeout::LastSeconds;
const FIRST_SECONDS: Timeout = Timeout::FirstSeconds;
const XREAD_BLOCK: Timeout = Timeout::Block { group: false };
const XREADGROUP_BLOCK: Timeout = Timeout::Block { group: true };
const WAIT_MILLIS: Timeout = Timeout::Wait;

// Secrets.
/// `AUTH password | AUTH user password`
const AUTH_SECRETS: Secrets = Secrets::From(1);
/// `HELLO [protover [AUTH user password] [SETNAME name]]`
const HELLO_SECRETS: Secrets = Secrets::AfterKeyword {
    from: 2,
    keywords: &[("AUTH", 2)],
};
/// `MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ...]`
const MIGRATE_SECRETS: Secrets = Secrets::AfterKeyword {
    from: 6,
    keywords: &[("AUTH", 1), ("AUTH2", 2)],
};

/// `CONFIG SET` parameters whose values are secrets. `masteruser`/`primaryuser` name a
/// user rather than hold a password, but they travel with the password and are hidden too.
/// `primaryauth`/`primaryuser` are Valkey's names for `masterauth`/`masteruser`.
const CONFIG_SECRETS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "primaryauth",
    "primaryuser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

// Subcommands.
/// `ACL SETUSER name rule...`
const ACL_SUBS: &[SubSpec] = &[sub(&["SETUSER"]).secrets(Secrets::AclRules { from: 3 })];
const CLIENT_SUBS: &[SubSpec] = &[
    sub(&["TRACKING"]).session(Session::Tracking),
    sub(&["REPLY"])
        .session(Session::Other)
        .refused(Refusal::ClientReply),
    sub(&["SETNAME"]).session(Session::Other),
];
/// `CONFIG SET name value [name value ...]`
const CONFIG_SUBS: &[SubSpec] = &[sub(&["SET"]).secrets(Secrets::Pairs {
    from: 2,
    names: CONFIG_SECRETS,
})];
const SENTINEL_SUBS: &[SubSpec] = &[
    // SENTINEL CONFIG SET name value [name value ...]
    sub(&["CONFIG", "SET"]).secrets(Secrets::Pairs {
        from: 3,
        names: &["sentinel-pass", "sentinel-user"],
    }),
    // SENTINEL SET master name value [name value ...]
    sub(&["SET"]).secrets(Secrets::Pairs {
        from: 3,
        names: &["auth-pass", "auth-user"],
    }),
];
/// `MODULE LOAD path [arg ...]`, `MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]`:
/// module arguments are opaque and may hold credentials.
const MODULE_SUBS: &[SubSpec] = &[
    sub(&["LOAD"]).secrets(Secrets::From(3)),
    sub(&["LOADEX"]).secrets(Secrets::From(3)),
];
/// `OBJECT ENCODING key` (`MEMORY USAGE key`, `XINFO STREAM key`): the key is second,
/// except in the keyless `HELP` and `STATS`.
const HELP_STATS_KEYLESS: &[SubSpec] = &[sub(&["HELP"]).keys(NONE), sub(&["STATS"]).keys(NONE)];
/// `XGROUP CREATE key group id`: the key is second, except in `XGROUP HELP`.
const HELP_KEYLESS: &[SubSpec] = &[sub(&["HELP"]).keys(NONE)];

/// The command table (sorted; `PIPELINE` is the client's label for a batch, not a server
/// command). UNSUBSCRIBE and friends are refused too: outside pub/sub mode they still
/// answer once per channel (RESP2) or with pushes (RESP3), not with one reply.
#[rustfmt::skip]
pub(crate) const TABLE: &[CommandSpec] = &[
    w("ACL").keys(NONE).subcommands(ACL_SUBS),
    w("APPEND"),
    w("ASKING").keys(NONE),
    w("AUTH").keys(NONE).session(Session::Other).secrets(AUTH_SECRETS),
    w("BGREWRITEAOF").keys(NONE),
    w("BGSAVE").keys(NONE),
    r("BITCOUNT"),
    w("BITFIELD"),
    w("BITOP"),
    r("BITPOS"),
    w("BLMOVE").keys(TWO).blocks(LAST_SECONDS),
    w("BLMPOP").keys(NUMKEYS_AT_2).blocks(FIRST_SECONDS),
    w("BLPOP").keys(ALL_BUT_LAST).blocks(LAST_SECONDS),
    w("BRPOP").keys(ALL_BUT_LAST).blocks(LAST_SECONDS),
    w("BRPOPLPUSH").keys(TWO).blocks(LAST_SECONDS),
    w("BZMPOP").keys(NUMKEYS_AT_2).blocks(FIRST_SECONDS),
    w("BZPOPMAX").keys(ALL_BUT_LAST).blocks(LAST_SECONDS),
    w("BZPOPMIN").keys(ALL_BUT_LAST).blocks(LAST_SECONDS),
    w("CLIENT").keys(NONE).subcommands(CLIENT_SUBS),
    w("CLUSTER").keys(NONE),
    w("COMMAND").keys(NONE),
    w("CONFIG").keys(NONE).subcommands(CONFIG_SUBS),
    w("COPY").keys(TWO),
    r("DBSIZE").keys(NONE),
    w("DEBUG").keys(NONE),
    w("DECR"),
    w("DECRBY"),
    i("DEL").keys(ALL),
    w("DISCARD").keys(NONE).session(Session::EndTransaction),
    r("DUMP"),
    r("ECHO").keys(NONE),
    w("EVAL").keys(NUMKEYS_AT_2),
    w("EVALSHA").keys(NUMKEYS_AT_2),
    // The *_RO forms are writes here as they were before the table (routing did not know
    // them): marking them read-only would send them to replicas, a change of its own.
    w("EVALSHA_RO").keys(NUMKEYS_AT_2),
    w("EVAL_RO").keys(NUMKEYS_AT_2),
    w("EXEC").keys(NONE).session(Session::EndTransaction),
    r("EXISTS").keys(ALL),
    i("EXPIRE"),
    i("EXPIREAT"),
    r("EXPIRETIME"),
    w("FAILOVER").keys(NONE),
    w("FCALL").keys(NUMKEYS_AT_2),
    w("FCALL_RO").keys(NUMKEYS_AT_2),
    w("FLUSHALL").keys(NONE),
    w("FLUSHDB").keys(NONE),
    w("FUNCTION").keys(NONE),
    w("GEOADD"),
    r("GEODIST"),
    r("GEOHASH"),
    r("GEOPOS"),
    r("GEOSEARCH"),
    w("GEOSEARCHSTORE").keys(TWO),
    r("GET"),
    r("GETBIT"),
    w("GETDEL"),
    w("GETEX"),
    r("GETRANGE"),
    w("GETSET"),
    i("HDEL"),
    w("HELLO").keys(NONE).session(Session::Other).secrets(HELLO_SECRETS),
    r("HEXISTS"),
    r("HGET"),
    r("HGETALL"),
    w("HINCRBY"),
    w("HINCRBYFLOAT"),
    r("HKEYS"),
    r("HLEN"),
    r("HMGET"),
    i("HMSET"),
    r("HRANDFIELD"),
    r("HSCAN"),
    i("HSET"),
    w("HSETNX"),
    r("HSTRLEN"),
    r("HVALS"),
    w("INCR"),
    w("INCRBY"),
    w("INCRBYFLOAT"),
    r("INFO").keys(NONE),
    r("KEYS").keys(NONE),
    r("LASTSAVE").keys(NONE),
    w("LATENCY").keys(NONE),
    w("LCS").keys(TWO),
    r("LINDEX"),
    w("LINSERT"),
    r("LLEN"),
    w("LMOVE").keys(TWO),
    w("LMPOP").keys(NUMKEYS_AT_1),
    w("LOLWUT").keys(NONE),
    w("LPOP"),
    r("LPOS"),
    w("LPUSH"),
    w("LPUSHX"),
    r("LRANGE"),
    w("LREM"),
    w("LSET"),
    w("LTRIM"),
    w("MEMORY").keys(SECOND).subcommands(HELP_STATS_KEYLESS),
    r("MGET").keys(ALL),
    w("MIGRATE").keys(NONE).secrets(MIGRATE_SECRETS),
    w("MODULE").keys(NONE).subcommands(MODULE_SUBS),
    w("MONITOR").keys(NONE).session(Session::Other).refused(Refusal::Monitor),
    w("MOVE"),
    i("MSET").keys(PAIRS),
    w("MSETNX").keys(PAIRS),
    w("MULTI").keys(NONE).session(Session::Multi),
    w("OBJECT").keys(SECOND).subcommands(HELP_STATS_KEYLESS),
    i("PERSIST"),
    i("PEXPIRE"),
    i("PEXPIREAT"),
    r("PEXPIRETIME"),
    w("PFADD"),
    r("PFCOUNT").keys(ALL),
    w("PFMERGE").keys(ALL),
    r("PING").keys(NONE),
    w("PIPELINE"),
    w("PSETEX"),
    w("PSUBSCRIBE").keys(NONE).session(Session::Subscribe).refused(Refusal::PubSub),
    r("PTTL"),
    w("PUBLISH").keys(NONE),
    w("PUBSUB").keys(NONE),
    w("PUNSUBSCRIBE").keys(NONE).refused(Refusal::PubSub),
    w("QUIT").keys(NONE),
    r("RANDOMKEY").keys(NONE),
    w("READONLY").keys(NONE).session(Session::Other),
    w("READWRITE").keys(NONE).session(Session::Other),
    w("RENAME").keys(TWO),
    w("RENAMENX").keys(TWO),
    w("REPLICAOF").keys(NONE),
    w("RESET").keys(NONE).session(Session::Other).refused(Refusal::Reset),
    w("RESTORE"),
    w("ROLE").keys(NONE),
    w("RPOP"),
    w("RPOPLPUSH").keys(TWO),
    w("RPUSH"),
    w("RPUSHX"),
    i("SADD"),
    w("SAVE").keys(NONE),
    r("SCAN").keys(NONE),
    r("SCARD"),
    w("SCRIPT").keys(NONE),
    r("SDIFF").keys(ALL),
    w("SDIFFSTORE").keys(ALL),
    w("SELECT").keys(NONE).session(Session::Select),
    w("SENTINEL").subcommands(SENTINEL_SUBS),
    set(),
    w("SETBIT"),
    w("SETEX"),
    w("SETNX"),
    w("SETRANGE"),
    w("SHUTDOWN").keys(NONE),
    r("SINTER").keys(ALL),
    r("SINTERCARD").keys(NUMKEYS_AT_1),
    w("SINTERSTORE").keys(ALL),
    r("SISMEMBER"),
    w("SLAVEOF").keys(NONE),
    w("SLOWLOG").keys(NONE),
    r("SMEMBERS"),
    r("SMISMEMBER"),
    w("SMOVE").keys(TWO),
    w("SPOP"),
    w("SPUBLISH"), // the shard channel is the key (routed by its slot)
    r("SRANDMEMBER"),
    i("SREM"),
    r("SSCAN"),
    w("SSUBSCRIBE").session(Session::Subscribe).refused(Refusal::PubSub),
    r("STRLEN"),
    w("SUBSCRIBE").keys(NONE).session(Session::Subscribe).refused(Refusal::PubSub),
    r("SUBSTR"),
    r("SUNION").keys(ALL),
    w("SUNIONSTORE").keys(ALL),
    w("SUNSUBSCRIBE").refused(Refusal::PubSub),
    w("SWAPDB").keys(NONE),
    r("TIME").keys(NONE),
    r("TOUCH").keys(ALL),
    r("TTL"),
    r("TYPE"),
    i("UNLINK").keys(ALL),
    w("UNSUBSCRIBE").keys(NONE).refused(Refusal::PubSub),
    w("UNWATCH").keys(NONE).session(Session::Unwatch),
    w("WAIT").keys(NONE).blocks(WAIT_MILLIS),
    w("WAITAOF").keys(NONE).blocks(Timeout::NotReissued),
    w("WATCH").keys(ALL).session(Session::Watch),
    w("XACK"),
    w("XADD"),
    w("XAUTOCLAIM"),
    w("XCLAIM"),
    w("XDEL"),
    w("XGROUP").keys(SECOND).subcommands(HELP_KEYLESS),
    w("XINFO").keys(SECOND).subcommands(HELP_STATS_KEYLESS),
    r("XLEN"),
    r("XPENDING"),
    r("XRANGE"),
    w("XREAD").keys(STREAMS).blocks(XREAD_BLOCK),
    w("XREADGROUP").keys(STREAMS).blocks(XREADGROUP_BLOCK),
    r("XREVRANGE"),
    w("XTRIM"),
    w("ZADD"),
    r("ZCARD"),
    r("ZCOUNT"),
    r("ZDIFF").keys(NUMKEYS_AT_1),
    w("ZDIFFSTORE").keys(DEST_AND_NUMKEYS),
    w("ZINCRBY"),
    r("ZINTER").keys(NUMKEYS_AT_1),
    r("ZINTERCARD").keys(NUMKEYS_AT_1),
    w("ZINTERSTORE").keys(DEST_AND_NUMKEYS),
    r("ZLEXCOUNT"),
    w("ZMPOP").keys(NUMKEYS_AT_1),
    r("ZMSCORE"),
    w("ZPOPMAX"),
    w("ZPOPMIN"),
    r("ZRANDMEMBER"),
    r("ZRANGE"),
    r("ZRANGEBYLEX"),
    r("ZRANGEBYSCORE"),
    w("ZRANGESTORE").keys(TWO),
    r("ZRANK"),
    i("ZREM"),
    w("ZREMRANGEBYLEX"),
    w("ZREMRANGEBYRANK"),
    w("ZREMRANGEBYSCORE"),
    r("ZREVRANGE"),
    r("ZREVRANGEBYLEX"),
    r("ZREVRANGEBYSCORE"),
    r("ZREVRANK"),
    r("ZSCAN"),
    r("ZSCORE"),
    r("ZUNION").keys(NUMKEYS_AT_1),
    w("ZUNIONSTORE").keys(DEST_AND_NUMKEYS),
];
