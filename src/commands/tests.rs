//! Encoding tests: each helper's exact arguments, recorded by a fake [`Execute`], and reply
//! parsing of canned RESP2/RESP3 shapes. Behaviour against real servers is tested in
//! `tests/commands.rs`.

use std::time::{Duration, UNIX_EPOCH};

use std::collections::{HashMap, HashSet};

use super::*;
use crate::cmd::recorder::Recorder;
use crate::cmd::Blocking;
use crate::error::ErrorKind;
use crate::resp::Value;

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().into())
}

fn ok() -> Value {
    Value::Simple("OK".into())
}

#[test]
fn string_commands_encode() {
    let r = Recorder::replying(std::iter::repeat(ok()).take(8));
    r.set("k", "v").unwrap();
    assert_eq!(r.last(), "SET k v");
    r.set_ex("k", "v", Duration::from_secs(10)).unwrap();
    assert_eq!(r.last(), "SET k v EX 10");
    r.set_ex("k", "v", Duration::from_millis(1500)).unwrap();
    assert_eq!(r.last(), "SET k v PX 1500");
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let cases = [
        (SetOptions::new().nx(), "SET k v NX"),
        (
            SetOptions::new()
                .xx()
                .expiry(Expiry::Ex(Duration::from_millis(2500))),
            "SET k v XX EX 2",
        ),
        (
            SetOptions::new().expiry(Expiry::ExAt(at)),
            "SET k v EXAT 1700000000",
        ),
        (
            SetOptions::new().expiry(Expiry::PxAt(at)),
            "SET k v PXAT 1700000000123",
        ),
        (SetOptions::new().expiry(Expiry::KeepTtl), "SET k v KEEPTTL"),
    ];
    for (opts, want) in cases {
        assert!(r.set_options("k", "v", &opts).unwrap());
        assert_eq!(r.last(), want);
    }
    // A nil reply means the condition kept the value from being written.
    assert!(!r.set_options("k", "v", &SetOptions::new().nx()).unwrap());

    let r = Recorder::replying([bulk("old"), Value::Nil]);
    let old: Option<Vec<u8>> = r
        .set_get(
            "k",
            "new",
            &SetOptions::new().expiry(Expiry::Px(Duration::from_millis(5))),
        )
        .unwrap();
    assert_eq!(old, Some(b"old".to_vec()));
    assert_eq!(r.last(), "SET k new PX 5 GET");
    let old: Option<String> = r.set_get("k", "v", &SetOptions::new()).unwrap();
    assert_eq!(old, None);

    let r = Recorder::replying([Value::Array(vec![bulk("1"), Value::Nil])]);
    let got: Vec<Option<Vec<u8>>> = r.mget(["a", "b"]).unwrap();
    assert_eq!(got, vec![Some(b"1".to_vec()), None]);
    assert_eq!(r.last(), "MGET a b");
    let r = Recorder::replying([ok()]);
    r.mset([("a", 1), ("b", 2)]).unwrap();
    assert_eq!(r.last(), "MSET a 1 b 2");

    let r = Recorder::replying([
        Value::Int(1),
        Value::Int(-1),
        Value::Int(5),
        Value::Int(0),
        bulk("1.5"),
        Value::Double(2.5),
    ]);
    assert_eq!(r.incr("n").unwrap(), 1);
    assert_eq!(r.decr("n").unwrap(), -1);
    assert_eq!(r.incr_by("n", 5).unwrap(), 5);
    assert_eq!(r.decr_by("n", 5).unwrap(), 0);
    assert_eq!(r.incr_by_float("f", 1.5).unwrap(), 1.5);
    assert_eq!(r.incr_by_float("f", 1.0).unwrap(), 2.5);
    assert_eq!(
        r.sent()[2..5]
            .iter()
            .map(|a| a.join(" "))
            .collect::<Vec<_>>(),
        ["INCRBY n 5", "DECRBY n 5", "INCRBYFLOAT f 1.5"]
    );

    let r = Recorder::default();
    let cases = [
        (GetExExpiry::Ex(Duration::from_secs(3)), "GETEX k EX 3"),
        (GetExExpiry::Px(Duration::from_millis(30)), "GETEX k PX 30"),
        (GetExExpiry::ExAt(at), "GETEX k EXAT 1700000000"),
        (GetExExpiry::PxAt(at), "GETEX k PXAT 1700000000123"),
        (GetExExpiry::Persist, "GETEX k PERSIST"),
    ];
    for (e, want) in cases {
        assert_eq!(r.getex::<_, Option<String>>("k", e).unwrap(), None);
        assert_eq!(r.last(), want);
    }
    assert_eq!(r.getdel::<_, Option<String>>("k").unwrap(), None);
    assert_eq!(r.last(), "GETDEL k");
}

#[test]
fn key_commands_encode_and_parse() {
    let r = Recorder::replying([
        Value::Int(2),
        Value::Int(1),
        Value::Int(3),
        Value::Int(1),
        Value::Int(0),
    ]);
    assert_eq!(r.del(["a", "b"]).unwrap(), 2);
    assert_eq!(r.unlink("a").unwrap(), 1);
    assert_eq!(r.exists(vec!["a", "a", "b"]).unwrap(), 3);
    assert!(r.expire("a", Duration::from_secs(10)).unwrap());
    assert!(!r.expire("a", Duration::from_millis(10_900)).unwrap());
    assert_eq!(
        r.sent().iter().map(|a| a.join(" ")).collect::<Vec<_>>(),
        [
            "DEL a b",
            "UNLINK a",
            "EXISTS a a b",
            "EXPIRE a 10",
            "PEXPIRE a 10900"
        ]
    );

    let r = Recorder::replying([
        Value::Int(-2),
        Value::Int(-1),
        Value::Int(42),
        Value::Int(1500),
        Value::Int(-7),
    ]);
    assert_eq!(r.ttl("k").unwrap(), Ttl::Missing);
    assert_eq!(r.ttl("k").unwrap(), Ttl::NoExpiry);
    assert_eq!(r.ttl("k").unwrap(), Ttl::Expires(Duration::from_secs(42)));
    assert_eq!(
        r.pttl("k").unwrap(),
        Ttl::Expires(Duration::from_millis(1500))
    );
    assert_eq!(r.last(), "PTTL k");
    assert_eq!(r.pttl("k").unwrap_err().kind(), ErrorKind::Conversion);

    let r = Recorder::replying([
        Value::Simple("zset".into()),
        Value::Simple("none".into()),
        Value::Simple("ReJSON-RL".into()),
    ]);
    assert_eq!(r.key_type("k").unwrap(), KeyType::ZSet);
    assert_eq!(r.key_type("k").unwrap(), KeyType::None);
    assert_eq!(r.key_type("k").unwrap(), KeyType::Other("ReJSON-RL".into()));
    assert_eq!(KeyType::ZSet.to_string(), "zset");
}

fn scan_reply(cursor: &str, keys: &[&str]) -> Value {
    Value::Array(vec![
        bulk(cursor),
        Value::Array(keys.iter().map(|k| bulk(k)).collect()),
    ])
}

#[test]
fn scan_follows_the_cursor_until_zero() {
    let r = Recorder::replying([
        scan_reply("17", &["a", "b"]),
        scan_reply("5", &[]),
        scan_reply("0", &["c"]),
    ]);
    let keys: Vec<Vec<u8>> = r
        .scan(ScanOptions::new().pattern("p:*").count(2).type_("string"))
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(keys, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(
        r.sent().iter().map(|a| a.join(" ")).collect::<Vec<_>>(),
        [
            "SCAN 0 MATCH p:* COUNT 2 TYPE string",
            "SCAN 17 MATCH p:* COUNT 2 TYPE string",
            "SCAN 5 MATCH p:* COUNT 2 TYPE string",
        ]
    );
    let r = Recorder::replying([scan_reply("0", &[])]);
    assert_eq!(r.scan::<Vec<u8>>(ScanOptions::new()).count(), 0);
    assert_eq!(r.last(), "SCAN 0");
}

#[test]
fn scan_is_fused_after_an_error() {
    let r = Recorder::replying([
        scan_reply("3", &["a"]),
        Value::Error(crate::ServerError::new("ERR boom")),
        scan_reply("0", &["never"]),
    ]);
    let mut it = r.scan::<String>(ScanOptions::new());
    assert_eq!(it.next().unwrap().unwrap(), "a");
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    assert!(it.next().is_none());
    assert_eq!(r.sent().len(), 2);

    // A malformed reply is an error too.
    let r = Recorder::replying([Value::Array(vec![bulk("x"), Value::Array(vec![])])]);
    let mut it = r.scan::<Vec<u8>>(ScanOptions::new());
    assert_eq!(
        it.next().unwrap().unwrap_err().kind(),
        ErrorKind::Conversion
    );
    assert!(it.next().is_none());
}

#[test]
fn hash_commands_encode_and_parse_both_protocols() {
    let r = Recorder::replying([Value::Int(1), Value::Int(2)]);
    assert_eq!(r.hset("h", ("f", 1)).unwrap(), 1);
    assert_eq!(r.last(), "HSET h f 1");
    assert_eq!(r.hset("h", [("a", "1"), ("b", "2")]).unwrap(), 2);
    assert_eq!(r.last(), "HSET h a 1 b 2");

    let resp2 = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
    let resp3 = Value::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]);
    for reply in [resp2, resp3] {
        let r = Recorder::replying([reply]);
        let all: HashMap<Vec<u8>, Vec<u8>> = r.hgetall("h").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&b"b".to_vec()], b"2");
    }

    let r = Recorder::replying([
        Value::Array(vec![Value::Nil, bulk("x")]),
        Value::Int(1),
        Value::Int(0),
        Value::Bool(true),
        Value::Int(7),
    ]);
    let got: Vec<Option<Vec<u8>>> = r.hmget("h", ("a", "b")).unwrap();
    assert_eq!(got, [None, Some(b"x".to_vec())]);
    assert_eq!(r.hdel("h", ["a"]).unwrap(), 1);
    assert!(!r.hexists("h", "a").unwrap());
    assert!(r.hexists("h", "a").unwrap());
    assert_eq!(r.hincr_by("h", "n", -3).unwrap(), 7);
    assert_eq!(r.last(), "HINCRBY h n -3");
}

#[test]
fn blocking_timeouts_are_decimal_seconds() {
    let r = Recorder::default();
    let cases = [
        (
            Duration::from_millis(500),
            "0.5",
            Blocking::For(Duration::from_millis(500)),
        ),
        (
            Duration::from_secs(2),
            "2",
            Blocking::For(Duration::from_secs(2)),
        ),
        (
            Duration::from_millis(1250),
            "1.25",
            Blocking::For(Duration::from_millis(1250)),
        ),
        (
            Duration::from_micros(10),
            "0.001",
            Blocking::For(Duration::from_micros(10)),
        ),
        (
            Duration::from_micros(1500),
            "0.002",
            Blocking::For(Duration::from_micros(1500)),
        ),
        (Duration::ZERO, "0", Blocking::Forever),
    ];
    for (d, text, blocking) in cases {
        assert_eq!(
            r.blpop::<_, Option<(String, String)>>(["a", "b"], d)
                .unwrap(),
            None
        );
        assert_eq!(r.last(), format!("BLPOP a b {text}"));
        assert_eq!(r.last_blocking(), blocking);
    }
    let popped: Option<(String, String)> = r.brpop("a", Duration::from_millis(100)).unwrap();
    assert_eq!(popped, None);
    assert_eq!(r.last(), "BRPOP a 0.1");

    assert_eq!(
        r.blmove::<_, _, Option<String>>(
            "s",
            "d",
            ListEnd::Right,
            ListEnd::Left,
            Duration::from_millis(10)
        )
        .unwrap(),
        None
    );
    assert_eq!(r.last(), "BLMOVE s d RIGHT LEFT 0.01");
    assert_eq!(r.last_blocking(), Blocking::For(Duration::from_millis(10)));

    assert_eq!(
        r.blmpop::<_, Option<(String, Vec<String>)>>(
            Duration::from_secs(1),
            ["x", "y", "z"],
            ListEnd::Left,
            3
        )
        .unwrap(),
        None
    );
    assert_eq!(r.last(), "BLMPOP 1 3 x y z LEFT COUNT 3");

    let r = Recorder::replying([
        Value::Array(vec![bulk("a"), bulk("v")]),
        Value::Array(vec![bulk("y"), Value::Array(vec![bulk("1"), bulk("2")])]),
    ]);
    assert_eq!(
        r.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>("a", Duration::from_secs(1))
            .unwrap(),
        Some((b"a".to_vec(), b"v".to_vec()))
    );
    assert_eq!(
        r.blmpop::<_, Option<(Vec<u8>, Vec<Vec<u8>>)>>(Duration::ZERO, "y", ListEnd::Right, 2)
            .unwrap(),
        Some((b"y".to_vec(), vec![b"1".to_vec(), b"2".to_vec()]))
    );
    assert_eq!(r.last_blocking(), Blocking::Forever);
}

#[test]
fn list_commands_encode() {
    let r = Recorder::replying([Value::Int(2), Value::Int(3), Value::Int(1)]);
    assert_eq!(r.lpush("l", ["a", "b"]).unwrap(), 2);
    assert_eq!(r.rpush("l", "c").unwrap(), 3);
    assert_eq!(r.lrem("l", -2, "a").unwrap(), 1);
    let moved: Option<Vec<u8>> = r.lmove("a", "b", ListEnd::Left, ListEnd::Right).unwrap();
    assert_eq!(moved, None);
    assert_eq!(
        r.lrange::<_, Vec<String>>("l", 0, -1).unwrap_err().kind(),
        ErrorKind::Conversion
    );
    assert_eq!(
        r.sent().iter().map(|a| a.join(" ")).collect::<Vec<_>>(),
        [
            "LPUSH l a b",
            "RPUSH l c",
            "LREM l -2 a",
            "LMOVE a b LEFT RIGHT",
            "LRANGE l 0 -1"
        ]
    );
}

#[test]
fn sets_accept_resp3_sets_and_resp2_arrays() {
    for reply in [
        Value::Set(vec![bulk("a"), bulk("b")]),
        Value::Array(vec![bulk("a"), bulk("b")]),
    ] {
        let r = Recorder::replying([reply]);
        let m: HashSet<Vec<u8>> = r.smembers("s").unwrap();
        assert!(m.contains(&b"a"[..]) && m.contains(&b"b"[..]) && m.len() == 2);
    }
}

#[test]
fn zadd_writes_score_before_member_and_options_first() {
    let r = Recorder::default();
    let _ = r.zadd("z", &[("a", 1.5), ("b", f64::NEG_INFINITY)]);
    assert_eq!(r.last(), "ZADD z 1.5 a -inf b");
    let opts = ZAddOptions::new()
        .condition(Condition::Xx)
        .update(ScoreUpdate::Lt)
        .ch();
    let _ = r.zadd_options("z", &[(b"m".to_vec(), 2.0)], &opts);
    assert_eq!(r.last(), "ZADD z XX LT CH 2 m");
    let _ = r.zadd_options(
        "z",
        &[("m", 2.0)],
        &ZAddOptions::new().condition(Condition::Nx),
    );
    assert_eq!(r.last(), "ZADD z NX 2 m");
}

#[test]
fn zrange_encodes_every_variant() {
    use ScoreBound::*;
    let r = Recorder::replying(std::iter::repeat(Value::Array(vec![])).take(20));
    let cases = [
        (ZRangeOptions::default(), "ZRANGE z 0 -1"),
        (ZRangeOptions::by_index(1, 3).rev(), "ZRANGE z 1 3 REV"),
        (
            ZRangeOptions::by_score(Inclusive(1.0), Exclusive(2.5)),
            "ZRANGE z 1 (2.5 BYSCORE",
        ),
        (
            ZRangeOptions::by_score(NegInf, PosInf).limit(2, 5),
            "ZRANGE z -inf +inf BYSCORE LIMIT 2 5",
        ),
        (
            ZRangeOptions::by_score(Exclusive(1.0), Inclusive(9.0))
                .rev()
                .limit(0, -1),
            "ZRANGE z 9 (1 BYSCORE REV LIMIT 0 -1",
        ),
    ];
    for (opts, want) in cases {
        r.zrange::<_, Vec<String>>("z", opts).unwrap();
        assert_eq!(r.last(), want);
        r.zrange_withscores::<_, Vec<(String, f64)>>("z", opts)
            .unwrap();
        assert_eq!(r.last(), format!("{want} WITHSCORES"));
    }
    let _ = r.zrem_range_by_score("z", Exclusive(f64::NEG_INFINITY), Inclusive(3.0));
    assert_eq!(r.last(), "ZREMRANGEBYSCORE z (-inf 3");
}

#[test]
fn withscores_parses_resp2_flat_and_resp3_pairs() {
    let want = vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.5)];
    let resp2 = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2.5")]);
    let resp3 = Value::Array(vec![
        Value::Array(vec![bulk("a"), Value::Double(1.0)]),
        Value::Array(vec![bulk("b"), Value::Double(2.5)]),
    ]);
    for reply in [resp2, resp3] {
        let r = Recorder::replying([reply]);
        let got: Vec<(Vec<u8>, f64)> = r.zrange_withscores("z", ZRangeOptions::default()).unwrap();
        assert_eq!(got, want);
    }
    let r = Recorder::replying([Value::Array(vec![bulk("a")])]);
    assert!(r
        .zrange_withscores::<_, Vec<(String, f64)>>("z", ZRangeOptions::default())
        .is_err());
    let r = Recorder::replying([Value::Array(vec![])]);
    assert!(r
        .zrange_withscores::<_, Vec<(String, f64)>>("z", ZRangeOptions::default())
        .unwrap()
        .is_empty());
}

#[test]
fn zscore_and_zincrby_read_bulk_and_double() {
    let r = Recorder::replying([bulk("3.5"), Value::Double(4.0), Value::Nil, bulk("inf")]);
    assert_eq!(r.zincr_by("z", "m", 1.5).unwrap(), 3.5);
    assert_eq!(r.last(), "ZINCRBY z 1.5 m");
    assert_eq!(r.zscore("z", "m").unwrap(), Some(4.0));
    assert_eq!(r.zscore("z", "x").unwrap(), None);
    assert_eq!(r.zscore("z", "m").unwrap(), Some(f64::INFINITY));
}

#[test]
fn server_commands() {
    let text = "# Server\r\nredis_version:7.0.15\r\nvalkey_version:9.1.0\r\n\r\n# Clients\r\nconnected_clients:3\r\n";
    let r = Recorder::replying([
        Value::Simple("PONG".into()),
        Value::Bulk(text.into()),
        Value::Verbatim {
            format: "txt".into(),
            text: text.into(),
        },
        Value::Array(vec![bulk("1700000000"), bulk("250000")]),
        Value::Int(12),
        Value::Array(vec![bulk("1"), bulk("1000000")]),
    ]);
    r.ping().unwrap();
    let info = r.info().unwrap();
    assert_eq!(info.get("Server", "redis_version"), Some("7.0.15"));
    assert_eq!(info.server_version(), Some("9.1.0"));
    assert_eq!(info.get("clients", "connected_clients"), Some("3"));
    assert_eq!(info.section("server").map(|s| s.len()), Some(2));
    assert_eq!(r.info_sections(["server", "clients"]).unwrap(), info);
    assert_eq!(r.last(), "INFO server clients");
    assert_eq!(
        r.time().unwrap(),
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
    );
    assert_eq!(r.dbsize().unwrap(), 12);
    assert!(r.time().is_err());
}

#[test]
fn info_parse_edge_cases() {
    let info = Info::parse("loose:1\n# Empty\n#Weird  \nnot a field\nx:a:b\n");
    assert_eq!(info.get("", "loose"), Some("1"));
    assert!(info.section("empty").unwrap().is_empty());
    assert_eq!(info.get("weird", "x"), Some("a:b"));
    assert_eq!(info.field("x"), Some("a:b"));
    assert_eq!(info.get("missing", "x"), None);
}

#[test]
fn server_errors_pass_through() {
    let r = Recorder::replying([Value::Error(crate::ServerError::new(
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    ))]);
    let e = r.get::<_, Option<String>>("k").unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(crate::ServerErrorKind::WrongType)
    );
}

#[test]
fn works_through_dyn_and_references() {
    let r = Recorder::replying([ok(), ok()]);
    let dynamic: &dyn Execute = &r;
    dynamic.set("a", "b").unwrap();
    (&&r).set("a", "b").unwrap();
    assert_eq!(r.sent().len(), 2);
}

#[test]
fn new_commands_encode() {
    let r = Recorder::default();
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let _ = r.expire_at("k", at);
    assert_eq!(r.last(), "EXPIREAT k 1700000000");
    let _ = r.pexpire_at("k", at);
    assert_eq!(r.last(), "PEXPIREAT k 1700000000123");
    let _ = r.copy("a", "b", CopyOptions::new().db(2).replace());
    assert_eq!(r.last(), "COPY a b DB 2 REPLACE");
    let _ = r.zincr_by("z", "m", 2.5);
    assert_eq!(r.last(), "ZINCRBY z 2.5 m");
    let _ = r.hincr_by_float("h", "f", -0.5);
    assert_eq!(r.last(), "HINCRBYFLOAT h f -0.5");
    let _ = r.zcount("z", ScoreBound::Exclusive(1.0), ScoreBound::PosInf);
    assert_eq!(r.last(), "ZCOUNT z (1 +inf");
    let _ = r.object_encoding("k");
    assert_eq!(r.last(), "OBJECT ENCODING k");
    let _ = r.memory_usage("k");
    assert_eq!(r.last(), "MEMORY USAGE k");

    let cases = [
        (StreamTrim::max_len(10), "XTRIM s MAXLEN = 10"),
        (StreamTrim::max_len(10).approx(), "XTRIM s MAXLEN ~ 10"),
        (
            StreamTrim::min_id("5-0").limit(7),
            "XTRIM s MINID ~ 5-0 LIMIT 7",
        ),
    ];
    for (trim, want) in cases {
        let _ = r.xtrim("s", &trim);
        assert_eq!(r.last(), want);
    }
    let _ = r.xadd_trim("s", "*", ("f", "v"), &StreamTrim::max_len(3));
    assert_eq!(r.last(), "XADD s MAXLEN = 3 * f v");
    let _ = r.xgroup_create("s", "g", "$", true);
    assert_eq!(r.last(), "XGROUP CREATE s g $ MKSTREAM");
    let _ = r.xgroup_create("s", "g", "0", false);
    assert_eq!(r.last(), "XGROUP CREATE s g 0");

    // BLOCK: milliseconds, never 0 for a non-zero wait, and the connection is told.
    let opts = XReadGroupOptions::new()
        .count(5)
        .block(Duration::from_micros(10))
        .noack();
    let _ = r.xreadgroup::<_, _, _, _, Option<Value>>("g", "c", ["a", "b"], [">", ">"], &opts);
    assert_eq!(
        r.last(),
        "XREADGROUP GROUP g c COUNT 5 BLOCK 1 NOACK STREAMS a b > >"
    );
    assert_eq!(r.last_blocking(), Blocking::For(Duration::from_micros(10)));
    let _ = r.xreadgroup::<_, _, _, _, Option<Value>>(
        "g",
        "c",
        "a",
        "0",
        &XReadGroupOptions::new().block(Duration::ZERO),
    );
    assert_eq!(r.last(), "XREADGROUP GROUP g c BLOCK 0 STREAMS a 0");
    assert_eq!(r.last_blocking(), Blocking::Forever);
    let _ =
        r.xreadgroup::<_, _, _, _, Option<Value>>("g", "c", "a", ">", &XReadGroupOptions::new());
    assert_eq!(r.last_blocking(), Blocking::No);
    let _ = r.xautoclaim::<_, _, _, _, Value>("s", "g", "c", Duration::from_secs(2), "0-0", 10);
    assert_eq!(r.last(), "XAUTOCLAIM s g c 2000 0-0 COUNT 10");
}

#[test]
fn expire_time_and_stream_entries_parse() {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let r = Recorder::replying([
        Value::Int(-2),
        Value::Int(-1),
        Value::Int(1_700_000_000),
        Value::Int(1_700_000_000_000),
        Value::Int(-3),
    ]);
    assert_eq!(r.expire_time("k").unwrap(), ExpireTime::Missing);
    assert_eq!(r.expire_time("k").unwrap(), ExpireTime::NoExpiry);
    assert_eq!(r.expire_time("k").unwrap(), ExpireTime::At(at));
    assert_eq!(r.pexpire_time("k").unwrap(), ExpireTime::At(at));
    assert_eq!(
        r.expire_time("k").unwrap_err().kind(),
        ErrorKind::Conversion
    );

    let entry = |id: &str, fields: Option<&[&str]>| {
        Value::Array(vec![
            bulk(id),
            fields.map_or(Value::Nil, |f| {
                Value::Array(f.iter().map(|s| bulk(s)).collect())
            }),
        ])
    };
    let r = Recorder::replying([Value::Array(vec![
        entry("1-0", Some(&["a", "1", "b", "2"])),
        entry("2-0", None),
    ])]);
    let got: Vec<StreamEntry> = r.xrange("s", "-", "+").unwrap();
    assert_eq!(got[0].id, "1-0");
    assert_eq!(got[0].get("b"), Some(&b"2"[..]));
    assert_eq!(got[0].get("c"), None);
    assert!(got[1].fields.is_empty());
    // An odd field list is a conversion error.
    let r = Recorder::replying([Value::Array(vec![entry("1-0", Some(&["a"]))])]);
    assert_eq!(
        r.xrange::<_, _, _, Vec<StreamEntry>>("s", "-", "+")
            .unwrap_err()
            .kind(),
        ErrorKind::Conversion
    );
}

#[test]
fn pipelines_queue_the_same_commands_as_the_trait() {
    let p = crate::cmd::pipe()
        .set("a", 1)
        .ignore()
        .ignore()
        .hincr_by("h", "f", 2)
        .zincr_by("z", "m", 1.5)
        .blpop("q", Duration::from_millis(250));
    let sent: Vec<String> = p
        .commands()
        .iter()
        .map(|c| {
            c.args()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        sent,
        [
            "SET a 1",
            "HINCRBY h f 2",
            "ZINCRBY z 1.5 m",
            "BLPOP q 0.25"
        ]
    );
    assert_eq!(p.blocking_mode(), Blocking::For(Duration::from_millis(250)));
    // The replies `query` keeps: all but the SET's (ignored twice, counted once).
    let r = Recorder::replying([ok(), Value::Int(2), bulk("1.5"), Value::Nil]);
    let got: (i64, f64, Option<(String, String)>) = p.query(&r).unwrap();
    assert_eq!(got, (2, 1.5, None));
    let r = Recorder::replying([ok(), Value::Int(2), bulk("1.5"), Value::Nil]);
    assert_eq!(p.run(&r).unwrap().len(), 4);
    // `clear` forgets the ignored positions too.
    let mut p = p;
    p.clear();
    let p = p.get("k");
    let r = Recorder::replying([bulk("v")]);
    assert_eq!(p.query::<(String,), _>(&r).unwrap().0, "v");
}
