//! Typed results and typed pipelines against real servers (Valkey 9.1 and Redis 7.0, each in
//! RESP2 and RESP3): the helpers of `Commands` read the same reply into whatever type the
//! caller asks for, the in-place frame path agrees with the `Value` path on every shape,
//! and pipelines (plain and MULTI/EXEC) queue the same commands and convert the batch into
//! a tuple or a `Vec`.
#![cfg(feature = "testkit")]

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use support::each_combo;
use valkit::{
    cmd, pipe, Cmd, Commands, Connection, ErrorKind, Execute, FromValue, KeyType, Protocol,
    ServerErrorKind, ZRangeOptions,
};

/// Run `command` both ways, through the frame path (`query`) and through `exec` +
/// `FromValue::from_value`, and check that they agree (both `Ok` and equal, or both `Err`
/// of the same kind). Returns the frame path's result.
fn both_ways<T: FromValue + PartialEq + std::fmt::Debug>(
    c: &Connection,
    command: &Cmd,
) -> valkit::Result<T> {
    let framed = c.query::<T>(command);
    let valued = c.exec(command).and_then(T::from_value);
    match (&framed, &valued) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{command:?}"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{command:?}: {a} / {b}"),
        _ => panic!("{command:?}: frame path {framed:?}, value path {valued:?}"),
    }
    framed
}

#[test]
fn stored_values_come_back_as_the_type_asked_for() {
    each_combo("typed_values", |c, p, _, _| {
        let n = format!("{p}:n");
        c.set(&n, 41).unwrap();
        let as_int: Option<i64> = c.get(&n).unwrap();
        let as_text: Option<String> = c.get(&n).unwrap();
        let as_bytes: Option<Vec<u8>> = c.get(&n).unwrap();
        let as_float: Option<f64> = c.get(&n).unwrap();
        let as_u8_wide: Option<u16> = c.get(&n).unwrap();
        assert_eq!(as_int, Some(41));
        assert_eq!(as_text.as_deref(), Some("41"));
        assert_eq!(as_bytes.as_deref(), Some(&b"41"[..]));
        assert_eq!(as_float, Some(41.0));
        assert_eq!(as_u8_wide, Some(41));
        let missing: Option<i64> = c.get(format!("{p}:missing")).unwrap();
        assert_eq!(missing, None);
        // A plain (non-Option) target for a missing key is a conversion error, not a default.
        let err = c.get::<_, i64>(format!("{p}:missing")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
        // Text that is not a number.
        c.set(&n, "forty-one").unwrap();
        let err = c.get::<_, Option<i64>>(&n).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
        assert!(err.to_string().contains("forty-one"), "{err}");

        let f = format!("{p}:f");
        c.set(&f, "2.5").unwrap();
        assert_eq!(c.get::<_, Option<f64>>(&f).unwrap(), Some(2.5));
        c.set(&f, "inf").unwrap();
        assert_eq!(c.get::<_, Option<f64>>(&f).unwrap(), Some(f64::INFINITY));

        // Several keys: a Vec or a tuple.
        let a = format!("{p}:a");
        let b = format!("{p}:b");
        c.mset([(&a, "1"), (&b, "2")]).unwrap();
        let v: Vec<Option<i64>> = c.mget([&a, &b, &format!("{p}:none")]).unwrap();
        assert_eq!(v, [Some(1), Some(2), None]);
        let (x, y): (i64, String) = c.mget([&a, &b]).unwrap();
        assert_eq!((x, y.as_str()), (1, "2"));
        // A tuple of the wrong length is a conversion error.
        let err = c.mget::<_, (i64, i64, i64)>([&a, &b]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
    });
}

#[test]
fn hashes_read_into_maps_pairs_and_tuples_in_both_protocols() {
    each_combo("typed_hashes", |c, p, _, _| {
        let h = format!("{p}:h");
        c.hset(&h, [("name", "Ada"), ("born", "1815"), ("score", "9.5")])
            .unwrap();
        let m: HashMap<String, String> = c.hgetall(&h).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["name"], "Ada");
        let b: BTreeMap<String, Vec<u8>> = c.hgetall(&h).unwrap();
        assert_eq!(
            b.keys().collect::<Vec<_>>(),
            ["born", "name", "score"].iter().collect::<Vec<_>>()
        );
        let mut pairs: Vec<(String, String)> = c.hgetall(&h).unwrap();
        pairs.sort();
        assert_eq!(pairs[0], ("born".to_string(), "1815".to_string()));
        // Typed values: a field that is not a number fails the whole conversion.
        let err = c.hgetall::<_, HashMap<String, i64>>(&h).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
        let empty: HashMap<String, String> = c.hgetall(format!("{p}:missing")).unwrap();
        assert!(empty.is_empty());

        let name: Option<String> = c.hget(&h, "name").unwrap();
        let born: Option<u32> = c.hget(&h, "born").unwrap();
        assert_eq!((name.as_deref(), born), (Some("Ada"), Some(1815)));
        let (name, born, score, none): (String, i64, f64, Option<String>) =
            c.hmget(&h, ["name", "born", "score", "zz"]).unwrap();
        assert_eq!((name.as_str(), born, score, none), ("Ada", 1815, 9.5, None));
        let mut fields: Vec<String> = c.hkeys(&h).unwrap();
        fields.sort();
        assert_eq!(fields, ["born", "name", "score"]);

        // The frame path and the Value path agree on every shape.
        let all = cmd("HGETALL").arg(&h);
        both_ways::<HashMap<String, String>>(c, &all).unwrap();
        both_ways::<BTreeMap<String, String>>(c, &all).unwrap();
        both_ways::<Vec<String>>(c, &all).unwrap();
        both_ways::<HashMap<String, i64>>(c, &all).unwrap_err();
        let mut sorted = both_ways::<Vec<(String, String)>>(c, &all).unwrap();
        sorted.sort();
        assert_eq!(sorted.len(), 3);
    });
}

#[test]
fn leaderboard_reads_scores_as_f64_pairs_in_both_protocols() {
    each_combo("typed_board", |c, p, _, proto| {
        let z = format!("{p}:board");
        c.zadd(&z, &[("ann", 310.0), ("bob", 250.0), ("cyd", 420.5)])
            .unwrap();
        assert_eq!(c.zincr_by(&z, "bob", 100.0).unwrap(), 350.0);
        let top: Vec<(String, f64)> = c
            .zrange_withscores(&z, ZRangeOptions::by_index(0, 1).rev())
            .unwrap();
        assert_eq!(
            top,
            [("cyd".to_string(), 420.5), ("bob".to_string(), 350.0)]
        );
        let by_name: HashMap<String, f64> =
            c.zrange_withscores(&z, ZRangeOptions::default()).unwrap();
        assert_eq!(by_name["ann"], 310.0);
        let names: Vec<String> = c.zrange(&z, ZRangeOptions::default()).unwrap();
        assert_eq!(names, ["ann", "bob", "cyd"]);
        assert_eq!(c.zrevrank(&z, "cyd").unwrap(), Some(0));
        assert_eq!(c.zrank(&z, "cyd").unwrap(), Some(2));
        assert_eq!(c.zrank(&z, "nobody").unwrap(), None);

        let with = cmd("ZRANGE").arg(&z).arg(0).arg(-1).arg("WITHSCORES");
        both_ways::<Vec<(String, f64)>>(c, &with).unwrap();
        both_ways::<Vec<(Vec<u8>, String)>>(c, &with).unwrap();
        both_ways::<BTreeMap<String, f64>>(c, &with).unwrap();
        // A list element type reads RESP3's nested pairs, and not RESP2's flat array.
        let v = both_ways::<Vec<Vec<String>>>(c, &with);
        match proto {
            Protocol::Resp2 => assert_eq!(v.unwrap_err().kind(), ErrorKind::Conversion),
            _ => assert_eq!(v.unwrap().len(), 3),
        }
    });
}

#[test]
fn sets_lists_flags_and_key_types_convert() {
    each_combo("typed_misc", |c, p, _, _| {
        let s = format!("{p}:s");
        c.sadd(&s, ["b", "a", "c"]).unwrap();
        let hs: HashSet<String> = c.smembers(&s).unwrap();
        let bs: BTreeSet<String> = c.smembers(&s).unwrap();
        assert_eq!(hs.len(), 3);
        assert_eq!(bs.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        both_ways::<BTreeSet<String>>(c, &cmd("SMEMBERS").arg(&s)).unwrap();
        both_ways::<bool>(c, &cmd("SISMEMBER").arg(&s).arg("a")).unwrap();
        assert!(c.sismember(&s, "a").unwrap());

        let l = format!("{p}:l");
        c.rpush(&l, [1, 2, 3]).unwrap();
        let v: Vec<i64> = c.lrange(&l, 0, -1).unwrap();
        assert_eq!(v, [1, 2, 3]);
        let first: Option<u16> = c.lpop(&l).unwrap();
        assert_eq!(first, Some(1));
        both_ways::<(i64, i64)>(c, &cmd("LRANGE").arg(&l).arg(0).arg(-1)).unwrap();
        both_ways::<(i64,)>(c, &cmd("LRANGE").arg(&l).arg(0).arg(-1)).unwrap_err();

        assert_eq!(c.key_type(&s).unwrap(), KeyType::Set);
        let t: KeyType = c.query(&cmd("TYPE").arg(&l)).unwrap();
        assert_eq!(t, KeyType::List);
        both_ways::<KeyType>(c, &cmd("TYPE").arg(format!("{p}:none"))).unwrap();

        // Scores: a RESP3 double or a RESP2 bulk string, both into f64.
        let z = format!("{p}:z");
        c.zadd(&z, &[("m", 1.5)]).unwrap();
        assert_eq!(
            both_ways::<Option<f64>>(c, &cmd("ZSCORE").arg(&z).arg("m")).unwrap(),
            Some(1.5)
        );
    });
}

#[test]
fn pipelines_take_the_connection_vocabulary_and_convert_the_batch() {
    each_combo("typed_pipe", |c, p, _, _| {
        let a = format!("{p}:a");
        let b = format!("{p}:b");
        let h = format!("{p}:h");
        let (greeting, n, missing, fields): (String, i64, Option<String>, HashMap<String, i64>) =
            pipe()
                .set(&a, "hello")
                .ignore()
                .hset(&h, [("x", 1), ("y", 2)])
                .ignore()
                .get(&a)
                .incr_by(&b, 5)
                .get(format!("{p}:missing"))
                .hgetall(&h)
                .query(c)
                .unwrap();
        assert_eq!((greeting.as_str(), n, missing), ("hello", 5, None));
        assert_eq!(fields["y"], 2);

        // Every reply in a Vec.
        let counts: Vec<i64> = pipe().incr(&b).incr(&b).decr(&b).query(c).unwrap();
        assert_eq!(counts, [6, 7, 6]);
        // `()` only checks for errors.
        pipe()
            .del(&b)
            .ignore()
            .set(&b, 1)
            .query::<(), _>(c)
            .unwrap();

        // Per-command errors: `query` returns the first, `run` gives each its own result,
        // and the other commands ran.
        let batch = pipe().set(&b, 10).lpush(&b, "x").incr(&b);
        let err = batch.query::<Vec<valkit::Value>, _>(c).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        let results = batch.run(c).unwrap();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::WrongType)
        );
        // Both runs set 10, failed the LPUSH and incremented.
        assert_eq!(c.get::<_, Option<i64>>(&b).unwrap(), Some(11));
        // An ignored command's error is still reported by `query`.
        let err = pipe()
            .lpush(&b, "x")
            .ignore()
            .get(&b)
            .query::<(i64,), _>(c)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        // `ignore` on an empty pipeline does nothing; a tuple of the wrong size is a
        // conversion error.
        let (v,): (i64,) = pipe().ignore().get(&b).query(c).unwrap();
        assert_eq!(v, 11);
        let err = pipe().get(&b).get(&b).query::<(i64,), _>(c).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
        // Raw commands and typed ones mix.
        let (raw, typed): (String, i64) = pipe()
            .cmd(cmd("ECHO").arg("raw"))
            .strlen(&a)
            .query(c)
            .unwrap();
        assert_eq!((raw.as_str(), typed), ("raw", 5));
    });
}

#[test]
fn atomic_pipelines_run_as_one_transaction_with_typed_results() {
    each_combo("typed_multi", |c, p, _, proto| {
        let k = format!("{p}:k");
        let l = format!("{p}:l");
        let (old, new, len): (Option<String>, i64, u64) = pipe()
            .atomic()
            .get(&k)
            .set(&k, 1)
            .ignore()
            .incr_by(&k, 41)
            .rpush(&l, ["a", "b"])
            .query(c)
            .unwrap();
        assert_eq!((old, new, len), (None, 42, 2));
        // A runtime error inside EXEC is that command's error; the others were applied.
        let batch = pipe().atomic().incr(&k).lpop(&k).incr(&k);
        let results = batch.run(c).unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[1].as_ref().unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::WrongType)
        );
        assert_eq!(c.get::<_, Option<i64>>(&k).unwrap(), Some(44));
        // A command the server rejects while queueing aborts the whole transaction.
        let err = pipe()
            .atomic()
            .incr(&k)
            .cmd(cmd("SET").arg(&k))
            .query::<Vec<valkit::Value>, _>(c)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::ExecAbort),
            "{proto:?}: {err}"
        );
        assert_eq!(c.get::<_, Option<i64>>(&k).unwrap(), Some(44));
    });
}

/// An `Execute` that only runs commands and pipelines as values: `Pipeline::query` over it
/// converts a `Vec<Value>` (the reference for the in-place path).
struct ValuesOnly<'a>(&'a Connection);

impl Execute for ValuesOnly<'_> {
    fn exec(&self, cmd: &Cmd) -> valkit::Result<valkit::Value> {
        self.0.exec(cmd)
    }
    fn exec_pipeline(&self, p: &valkit::Pipeline) -> valkit::Result<Vec<valkit::Value>> {
        self.0.exec_pipeline(p)
    }
}

/// `query` on `p` read in place (the connection) and through values agree: both `Ok` and
/// equal, or both `Err` of the same kind; and the connection still pairs replies after.
fn pipe_both_ways<T: FromValue + PartialEq + std::fmt::Debug>(
    c: &Connection,
    p: &valkit::Pipeline,
) -> valkit::Result<T> {
    let framed = p.query::<T, _>(c);
    let valued = p.query::<T, _>(&ValuesOnly(c));
    match (&framed, &valued) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{p:?}"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{p:?}: {a} / {b}"),
        _ => panic!("{p:?}: in place {framed:?}, values {valued:?}"),
    }
    let echo: String = c.query(&cmd("ECHO").arg("still in step")).unwrap();
    assert_eq!(echo, "still in step");
    framed
}

/// Issue 11: typed pipelines read each reply in place into its slot of the result (no
/// `Value` per reply), with exactly the value path's rules: errors in order, the first
/// server error winning over a conversion error wherever it is (ignored replies too), flat
/// pairs, large bulk strings, empty pipelines; through a connection, a pool and a client.
#[test]
fn typed_pipelines_read_in_place_agree_with_the_value_path() {
    each_combo("typed_pipe_inplace", |c, p, kind, proto| {
        let (s, l, big) = (format!("{p}:s"), format!("{p}:l"), format!("{p}:big"));
        c.set(&s, "7").unwrap();
        c.rpush(&l, ["x"]).unwrap();
        let large = vec![b'z'; 200 * 1024];
        c.set(&big, &large[..]).unwrap();

        let v: Vec<Option<Vec<u8>>> =
            pipe_both_ways(c, &pipe().get(&s).get(format!("{p}:none")).get(&big)).unwrap();
        assert_eq!(v, vec![Some(b"7".to_vec()), None, Some(large.clone())]);
        let t: (i64, Option<String>, Vec<String>) = pipe_both_ways(
            c,
            &pipe().get(&s).get(format!("{p}:none")).lrange(&l, 0, -1),
        )
        .unwrap();
        assert_eq!(t, (7, None, vec!["x".to_string()]));
        // Flat replies pair up two at a time into a Vec of pairs.
        let pairs: Vec<(String, i64)> =
            pipe_both_ways(c, &pipe().get(&s).get(&s).get(&s).get(&s)).unwrap();
        assert_eq!(pairs, vec![("7".to_string(), 7), ("7".to_string(), 7)]);
        // A conversion error first, a server error later: the server error wins.
        let e = pipe_both_ways::<Vec<i64>>(c, &pipe().lrange(&l, 0, -1).lpush(&s, "x").get(&s))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        // Only a conversion error.
        let e =
            pipe_both_ways::<Vec<i64>>(c, &pipe().get(&s).lrange(&l, 0, -1).get(&s)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        // An ignored reply's error, at the end.
        let e = pipe_both_ways::<(i64,)>(c, &pipe().get(&s).lpush(&s, "x").ignore()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        // (Runs once: INCR is not idempotent.)
        let (n,): (i64,) = pipe().incr(&s).ignore().get(&s).query(c).unwrap();
        assert_eq!(n, 8);
        // Wrong tuple size; empty pipelines.
        let e = pipe_both_ways::<(i64, i64)>(c, &pipe().get(&s)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conversion);
        let none: Vec<i64> = pipe_both_ways(c, &pipe()).unwrap();
        assert!(none.is_empty());
        pipe_both_ways::<()>(c, &pipe()).unwrap();
        pipe_both_ways::<()>(c, &pipe().get(&s).lrange(&l, 0, -1)).unwrap();
        // A long one, in order.
        let mut long = pipe();
        for i in 0..3000 {
            long = long.cmd(cmd("ECHO").arg(i));
        }
        let echoed: Vec<i64> = pipe_both_ways(c, &long).unwrap();
        assert!(echoed.iter().copied().eq(0..3000));

        // The same through a pool and a client (one checkout / one attempt per pipeline).
        let pool = valkit::Pool::new(c.config().clone(), valkit::PoolOptions::new()).unwrap();
        let client = valkit::Client::builder()
            .config(c.config().clone())
            .build()
            .unwrap();
        let batch = pipe().get(&s).get(&big).get(format!("{p}:none"));
        let want = (8i64, large.clone(), None::<String>);
        assert_eq!(
            batch
                .query::<(i64, Vec<u8>, Option<String>), _>(&pool)
                .unwrap(),
            want
        );
        assert_eq!(
            batch
                .query::<(i64, Vec<u8>, Option<String>), _>(&client)
                .unwrap(),
            want
        );
        let bad = pipe().lrange(&l, 0, -1).lpush(&s, "x");
        for e in [
            bad.query::<Vec<i64>, _>(&pool).unwrap_err(),
            bad.query::<Vec<i64>, _>(&client).unwrap_err(),
        ] {
            assert_eq!(
                e.kind(),
                ErrorKind::Server(ServerErrorKind::WrongType),
                "{kind:?} {proto:?}"
            );
        }
        assert_eq!(
            pool.get()
                .unwrap()
                .query::<i64>(&cmd("GET").arg(&s))
                .unwrap(),
            8
        );
        assert_eq!(client.query::<i64>(&cmd("GET").arg(&s)).unwrap(), 8);
    });
}
