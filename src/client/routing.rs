//! Which commands are read-only (routable to a reader endpoint) and which are idempotent
//! (safe to resend after an ambiguous failure), and the table of command names the client
//! knows: a command's name is looked up there once per call ([`CommandName::of`], no
//! allocation), and its position is also its slot in the per-command metrics counters.

use std::borrow::Cow;

use crate::cmd::{Cmd, Pipeline, ReadFrom};

/// What the client needs to know about a command name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Never writes: may go to a replica, and may be resent.
    ReadOnly,
    /// Writes, but repeating it leaves the same state and reply.
    IdempotentWrite,
    /// Anything else (`SET` qualifies as idempotent only without NX/XX/GET, checked
    /// separately).
    Write,
}

/// One known command name (upper case).
#[derive(Debug)]
pub(crate) struct Known {
    pub(crate) name: &'static str,
    kind: Kind,
}

const fn r(name: &'static str) -> Known {
    Known {
        name,
        kind: Kind::ReadOnly,
    }
}

const fn i(name: &'static str) -> Known {
    Known {
        name,
        kind: Kind::IdempotentWrite,
    }
}

const fn w(name: &'static str) -> Known {
    Known {
        name,
        kind: Kind::Write,
    }
}

/// Every command name the client counts on its own (sorted, upper case; `PIPELINE` is the
/// client's label for a batch). A name not here is still routed and counted, on a slower
/// path (see `Metrics`): it is a write, not idempotent unless declared.
pub(crate) const KNOWN: &[Known] = &[
    w("APPEND"),
    w("AUTH"),
    r("BITCOUNT"),
    w("BITFIELD"),
    w("BITOP"),
    r("BITPOS"),
    w("BLMOVE"),
    w("BLMPOP"),
    w("BLPOP"),
    w("BRPOP"),
    w("BRPOPLPUSH"),
    w("BZMPOP"),
    w("BZPOPMAX"),
    w("BZPOPMIN"),
    w("CLIENT"),
    w("CONFIG"),
    w("COPY"),
    r("DBSIZE"),
    w("DECR"),
    w("DECRBY"),
    i("DEL"),
    w("DISCARD"),
    r("DUMP"),
    r("ECHO"),
    w("EVAL"),
    w("EVALSHA"),
    w("EXEC"),
    r("EXISTS"),
    i("EXPIRE"),
    i("EXPIREAT"),
    r("EXPIRETIME"),
    w("FCALL"),
    w("FLUSHALL"),
    w("FLUSHDB"),
    w("FUNCTION"),
    w("GEOADD"),
    r("GEODIST"),
    r("GEOHASH"),
    r("GEOPOS"),
    r("GEOSEARCH"),
    r("GET"),
    r("GETBIT"),
    w("GETDEL"),
    w("GETEX"),
    r("GETRANGE"),
    w("GETSET"),
    i("HDEL"),
    w("HELLO"),
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
    r("INFO"),
    r("KEYS"),
    r("LASTSAVE"),
    r("LINDEX"),
    w("LINSERT"),
    r("LLEN"),
    w("LMOVE"),
    w("LMPOP"),
    w("LPOP"),
    r("LPOS"),
    w("LPUSH"),
    w("LPUSHX"),
    r("LRANGE"),
    w("LREM"),
    w("LSET"),
    w("LTRIM"),
    r("MGET"),
    w("MOVE"),
    i("MSET"),
    w("MSETNX"),
    w("MULTI"),
    w("OBJECT"),
    i("PERSIST"),
    i("PEXPIRE"),
    i("PEXPIREAT"),
    r("PEXPIRETIME"),
    w("PFADD"),
    r("PFCOUNT"),
    w("PFMERGE"),
    r("PING"),
    w("PIPELINE"),
    w("PSETEX"),
    r("PTTL"),
    w("PUBLISH"),
    r("RANDOMKEY"),
    w("RENAME"),
    w("RENAMENX"),
    w("RESTORE"),
    w("RPOP"),
    w("RPOPLPUSH"),
    w("RPUSH"),
    w("RPUSHX"),
    i("SADD"),
    r("SCAN"),
    r("SCARD"),
    w("SCRIPT"),
    r("SDIFF"),
    w("SDIFFSTORE"),
    w("SELECT"),
    w("SET"),
    w("SETBIT"),
    w("SETEX"),
    w("SETNX"),
    w("SETRANGE"),
    r("SINTER"),
    r("SINTERCARD"),
    w("SINTERSTORE"),
    r("SISMEMBER"),
    r("SMEMBERS"),
    r("SMISMEMBER"),
    w("SMOVE"),
    w("SPOP"),
    r("SRANDMEMBER"),
    i("SREM"),
    r("SSCAN"),
    r("STRLEN"),
    r("SUBSTR"),
    r("SUNION"),
    w("SUNIONSTORE"),
    r("TIME"),
    r("TOUCH"),
    r("TTL"),
    r("TYPE"),
    i("UNLINK"),
    w("UNWATCH"),
    w("WAIT"),
    w("WATCH"),
    w("XACK"),
    w("XADD"),
    w("XAUTOCLAIM"),
    w("XCLAIM"),
    w("XDEL"),
    w("XGROUP"),
    r("XLEN"),
    r("XPENDING"),
    r("XRANGE"),
    w("XREAD"),
    w("XREADGROUP"),
    r("XREVRANGE"),
    w("XTRIM"),
    w("ZADD"),
    r("ZCARD"),
    r("ZCOUNT"),
    r("ZDIFF"),
    w("ZINCRBY"),
    r("ZINTER"),
    r("ZINTERCARD"),
    w("ZINTERSTORE"),
    r("ZLEXCOUNT"),
    w("ZMPOP"),
    r("ZMSCORE"),
    w("ZPOPMAX"),
    w("ZPOPMIN"),
    r("ZRANDMEMBER"),
    r("ZRANGE"),
    r("ZRANGEBYLEX"),
    r("ZRANGEBYSCORE"),
    w("ZRANGESTORE"),
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
    r("ZUNION"),
    w("ZUNIONSTORE"),
];

/// The longest name in [`KNOWN`]: longer names are not looked up.
const MAX_KNOWN_LEN: usize = max_len();

const fn max_len() -> usize {
    let mut max = 0;
    let mut k = 0;
    while k < KNOWN.len() {
        if KNOWN[k].name.len() > max {
            max = KNOWN[k].name.len();
        }
        k += 1;
    }
    max
}

/// The row of `name` in [`KNOWN`]; a compile-time error when missing.
const fn index_of(name: &str) -> usize {
    let mut k = 0;
    while k < KNOWN.len() {
        let (a, b) = (KNOWN[k].name.as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return k;
            }
        }
        k += 1;
    }
    panic!("not a known command name")
}

/// Every name of [`KNOWN`] packed into one `u128` (see [`pack`]), in the same order: a
/// lookup hashes and compares integers, not strings.
const PACKED: [u128; KNOWN.len()] = packed();

const _: () = assert!(MAX_KNOWN_LEN <= 16, "names are packed into 16 bytes");

const fn packed() -> [u128; KNOWN.len()] {
    let mut out = [0; KNOWN.len()];
    let mut k = 0;
    while k < KNOWN.len() {
        let name = KNOWN[k].name.as_bytes();
        let mut key = 0u128;
        let mut j = 0;
        while j < 16 {
            let b = if j < name.len() { name[j] } else { 0 };
            key = (key << 8) | b as u128;
            j += 1;
        }
        out[k] = key;
        k += 1;
    }
    out
}

/// A name of 1 to 16 bytes, upper-cased, as a big-endian `u128` padded with zero bytes:
/// packed names order as the names do. `None` for other lengths and for names holding a
/// zero byte (which would pack like a shorter name).
#[inline]
fn pack(name: &[u8]) -> Option<u128> {
    if name.is_empty() || name.len() > 16 {
        return None;
    }
    let mut key = 0u128;
    for &b in name {
        if b == 0 {
            return None;
        }
        key = (key << 8) | u128::from(b.to_ascii_uppercase());
    }
    Some(key << (8 * (16 - name.len())))
}

/// Slots of the open-addressing table over [`PACKED`] (a power of two, under half full).
const SLOTS: usize = 512;

const _: () = assert!(KNOWN.len() * 2 < SLOTS && KNOWN.len() < u16::MAX as usize);

/// Row + 1 of [`KNOWN`] at each slot (0: empty), placed by [`slot`] with linear probing:
/// a lookup is one multiplication and, almost always, one or two probes.
const TABLE: [u16; SLOTS] = table();

/// Where a packed name's probe sequence starts.
#[inline]
const fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

const fn table() -> [u16; SLOTS] {
    let mut t = [0u16; SLOTS];
    let mut k = 0;
    while k < KNOWN.len() {
        let mut s = slot(PACKED[k]);
        while t[s] != 0 {
            s = (s + 1) % SLOTS;
        }
        t[s] = (k + 1) as u16;
        k += 1;
    }
    t
}

/// The row of a command name (any case) in [`KNOWN`], without allocating.
#[inline]
pub(crate) fn lookup(name: &[u8]) -> Option<usize> {
    if name.len() > MAX_KNOWN_LEN {
        return None;
    }
    let key = pack(name)?;
    let mut s = slot(key);
    loop {
        let row = usize::from(TABLE[s]);
        if row == 0 {
            return None;
        }
        if PACKED[row - 1] == key {
            return Some(row - 1);
        }
        s = (s + 1) % SLOTS;
    }
}

/// A command's name as the client reports it (metrics, observers, logs): its row in
/// [`KNOWN`], or the name as sent when the table does not know it. Found once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandName<'a> {
    /// A row of [`KNOWN`].
    Known(usize),
    /// A name the table does not know, as sent.
    Other(&'a [u8]),
}

impl<'a> CommandName<'a> {
    /// A batch of commands (not a transaction).
    pub(crate) const PIPELINE: CommandName<'static> = CommandName::Known(index_of("PIPELINE"));
    /// A transaction (`MULTI` ... `EXEC`).
    pub(crate) const MULTI: CommandName<'static> = CommandName::Known(index_of("MULTI"));

    /// The name of `cmd`.
    #[inline]
    pub(crate) fn of(cmd: &'a Cmd) -> CommandName<'a> {
        let name = cmd.name();
        match lookup(name) {
            Some(k) => CommandName::Known(k),
            None => CommandName::Other(name),
        }
    }

    /// The upper-case label: the table's name, or the first 32 bytes of an unknown name
    /// (invalid UTF-8 replaced), upper-cased (allocates, for unknown names only).
    pub(crate) fn label(self) -> Cow<'static, str> {
        match self {
            CommandName::Known(k) => Cow::Borrowed(KNOWN[k].name),
            CommandName::Other(name) => {
                let name = &name[..name.len().min(32)];
                Cow::Owned(String::from_utf8_lossy(name).to_ascii_uppercase())
            }
        }
    }

    fn kind(self) -> Option<Kind> {
        match self {
            CommandName::Known(k) => Some(KNOWN[k].kind),
            CommandName::Other(_) => None,
        }
    }

    /// True when the command never writes, so it may go to a replica.
    #[inline]
    pub(crate) fn is_read_only(self) -> bool {
        self.kind() == Some(Kind::ReadOnly)
    }

    /// True when running `cmd` (named `self`) twice is the same as running it once.
    pub(crate) fn is_idempotent(self, cmd: &Cmd) -> bool {
        if let Some(hint) = cmd.idempotent_hint() {
            return hint;
        }
        match self.kind() {
            Some(Kind::ReadOnly | Kind::IdempotentWrite) => true,
            Some(Kind::Write) if self == CommandName::Known(index_of("SET")) => {
                !cmd.args().skip(3).any(|a| {
                    a.eq_ignore_ascii_case(b"NX")
                        || a.eq_ignore_ascii_case(b"XX")
                        || a.eq_ignore_ascii_case(b"GET")
                })
            }
            _ => false,
        }
    }
}

/// True when `cmd` never writes, so it may go to a replica.
pub(crate) fn is_read_only(cmd: &Cmd) -> bool {
    CommandName::of(cmd).is_read_only()
}

/// True when `cmd` may go to the reader: read-only, and not pinned to the writer (the
/// rule `Client::exec` applies with the name it already looked up).
#[cfg(test)]
pub(crate) fn may_read_from_reader(cmd: &Cmd) -> bool {
    reader_allowed(cmd) && is_read_only(cmd)
}

/// False when the command asks to be read from the writer ([`Cmd::read_from`]).
#[cfg(test)]
fn reader_allowed(cmd: &Cmd) -> bool {
    cmd.read_from_hint() != Some(crate::cmd::ReadFrom::Writer)
}

/// The strictest hint among a pipeline's commands (writer, then reader when in sync,
/// then reader): one command pinned to the writer sends the whole batch there.
pub(crate) fn pipeline_read_from(p: &Pipeline) -> Option<ReadFrom> {
    let mut out = None;
    for hint in p.commands().iter().filter_map(Cmd::read_from_hint) {
        match hint {
            ReadFrom::Writer => return Some(ReadFrom::Writer),
            ReadFrom::ReaderWhenInSync => out = Some(hint),
            ReadFrom::Reader => out = out.or(Some(hint)),
        }
    }
    out
}

/// True when running `cmd` twice is the same as running it once.
pub(crate) fn is_idempotent(cmd: &Cmd) -> bool {
    CommandName::of(cmd).is_idempotent(cmd)
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
    fn the_table_is_sorted_upper_case_and_found_in_any_case() {
        assert!(KNOWN.windows(2).all(|w| w[0].name < w[1].name));
        for (k, known) in KNOWN.iter().enumerate() {
            assert_eq!(known.name, known.name.to_ascii_uppercase());
            assert_eq!(lookup(known.name.as_bytes()), Some(k), "{known:?}");
            assert_eq!(lookup(known.name.to_lowercase().as_bytes()), Some(k));
        }
        for unknown in [
            "", "GE", "GETT", "ZZZ", "_GET", "1", "HGETALLX", "GET ", "g\u{e9}t",
        ] {
            assert_eq!(lookup(unknown.as_bytes()), None, "{unknown:?}");
        }
        assert_eq!(lookup(&[0xff, b'G']), None);
        assert_eq!(lookup(b"GET\0"), None);
        assert_eq!(lookup(b"\0"), None);
        assert!(
            PACKED.windows(2).all(|w| w[0] < w[1]),
            "packed names keep the order"
        );
        assert_eq!(lookup(&[b'A'; 40]), None);
        assert_eq!(CommandName::PIPELINE.label(), "PIPELINE");
        assert_eq!(CommandName::MULTI.label(), "MULTI");
        let odd = cmd("my.Module\u{e9}");
        assert_eq!(
            CommandName::of(&odd),
            CommandName::Other("my.Module\u{e9}".as_bytes())
        );
        assert_eq!(CommandName::of(&odd).label(), "MY.MODULE\u{e9}");
        assert_eq!(CommandName::of(&cmd("hGetAll")).label(), "HGETALL");
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
        assert!(is_idempotent(&cmd("del").arg("k")) && !is_read_only(&cmd("DEL").arg("k")));
        assert!(is_idempotent(&cmd("set").arg("k").arg("v")));
        assert!(!is_idempotent(&cmd("set").arg("k").arg("v").arg("get")));
        assert!(!is_idempotent(&cmd("LPUSH").arg("k").arg("v")));
        assert!(!is_idempotent(&cmd("MYCMD").arg("k")) && !is_read_only(&cmd("MYCMD")));
        let p = crate::cmd::pipe()
            .cmd(cmd("GET").arg("a"))
            .cmd(cmd("MGET").arg("b"));
        assert!(pipeline_is_read_only(&p));
        assert!(!pipeline_is_read_only(&p.clone().atomic()));
        assert!(!pipeline_is_read_only(&p.cmd(cmd("DEL").arg("a"))));
    }
}
