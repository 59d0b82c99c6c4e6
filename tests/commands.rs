//! The typed helpers of `Commands` against real servers: Valkey 9.1 and Redis 7.0, each in
//! RESP2 and RESP3. Every test runs all four combinations on one shared server per kind,
//! under its own key prefix.
#![cfg(feature = "testkit")]

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use support::{each_combo, shared};
use valkit::testkit::ServerKind;
use valkit::{
    cmd, pipe, Commands, Condition, Connection, ErrorKind, Execute, Expiry, GetExExpiry, KeyType,
    ListEnd, Protocol, ScanOptions, ScoreBound, ScoreUpdate, ServerErrorKind, SetOptions, Ttl,
    ZAddOptions, ZRangeOptions,
};

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn ttl_within(ttl: Ttl, low: Duration, high: Duration) -> bool {
    matches!(ttl, Ttl::Expires(d) if d >= low && d <= high)
}

#[test]
fn strings_round_trip() {
    each_combo("strings", |c, p, _, _| {
        let k = format!("{p}:k");
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&k).unwrap(), None);
        c.set(&k, "v1").unwrap();
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&k).unwrap(), Some(bytes("v1")));
        assert_eq!(c.get_string(&k).unwrap(), Some("v1".into()));
        c.set(&k, &b"\xff\xfe"[..]).unwrap();
        assert_eq!(c.get_string(&k).unwrap_err().kind(), ErrorKind::Conversion);

        c.set_ex(&k, "v", Duration::from_secs(100)).unwrap();
        assert!(ttl_within(
            c.ttl(&k).unwrap(),
            Duration::from_secs(98),
            Duration::from_secs(100)
        ));
        c.set_ex(&k, "v", Duration::from_millis(20_500)).unwrap();
        let pttl = c.pttl(&k).unwrap();
        assert!(
            ttl_within(
                pttl,
                Duration::from_millis(18_000),
                Duration::from_millis(20_500)
            ),
            "{pttl:?}"
        );
        c.set(&k, "plain").unwrap();
        assert_eq!(c.ttl(&k).unwrap(), Ttl::NoExpiry);

        // NX / XX report whether the value was written.
        let nx = format!("{p}:nx");
        assert!(c.set_options(&nx, "1", &SetOptions::new().nx()).unwrap());
        assert!(!c.set_options(&nx, "2", &SetOptions::new().nx()).unwrap());
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&nx).unwrap(), Some(bytes("1")));
        let xx = format!("{p}:xx");
        assert!(!c.set_options(&xx, "1", &SetOptions::new().xx()).unwrap());
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&xx).unwrap(), None);
        assert!(c.set_options(&nx, "3", &SetOptions::new().xx()).unwrap());
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&nx).unwrap(), Some(bytes("3")));

        // Every expiry form.
        let e = format!("{p}:exp");
        let opts = SetOptions::new().expiry(Expiry::Ex(Duration::from_secs(50)));
        assert!(c.set_options(&e, "v", &opts).unwrap());
        assert!(ttl_within(
            c.ttl(&e).unwrap(),
            Duration::from_secs(48),
            Duration::from_secs(50)
        ));
        let opts = SetOptions::new().expiry(Expiry::Px(Duration::from_millis(40_000)));
        assert!(c.set_options(&e, "v", &opts).unwrap());
        assert!(ttl_within(
            c.pttl(&e).unwrap(),
            Duration::from_secs(38),
            Duration::from_secs(40)
        ));
        assert!(c
            .set_options(&e, "v2", &SetOptions::new().expiry(Expiry::KeepTtl))
            .unwrap());
        assert!(ttl_within(
            c.pttl(&e).unwrap(),
            Duration::from_secs(38),
            Duration::from_secs(40)
        ));
        let server_now = c.time().unwrap();
        let at = server_now + Duration::from_secs(300);
        assert!(c
            .set_options(&e, "v", &SetOptions::new().expiry(Expiry::ExAt(at)))
            .unwrap());
        assert!(ttl_within(
            c.ttl(&e).unwrap(),
            Duration::from_secs(297),
            Duration::from_secs(300)
        ));
        assert!(c
            .set_options(&e, "v", &SetOptions::new().expiry(Expiry::PxAt(at)))
            .unwrap());
        assert!(ttl_within(
            c.pttl(&e).unwrap(),
            Duration::from_secs(297),
            Duration::from_secs(300)
        ));
        let nx_ex = SetOptions::new()
            .condition(Condition::Nx)
            .expiry(Expiry::Ex(Duration::from_secs(9)));
        assert!(!c.set_options(&e, "v", &nx_ex).unwrap());

        // SET ... GET returns the previous value.
        let g = format!("{p}:get");
        assert_eq!(
            c.set_get::<_, _, Option<Vec<u8>>>(&g, "a", &SetOptions::new())
                .unwrap(),
            None
        );
        assert_eq!(
            c.set_get::<_, _, Option<Vec<u8>>>(&g, "b", &SetOptions::new())
                .unwrap(),
            Some(bytes("a"))
        );
        let with_ttl = SetOptions::new().expiry(Expiry::Ex(Duration::from_secs(60)));
        assert_eq!(
            c.set_get::<_, _, Option<Vec<u8>>>(&g, "c", &with_ttl)
                .unwrap(),
            Some(bytes("b"))
        );
        assert!(ttl_within(
            c.ttl(&g).unwrap(),
            Duration::from_secs(58),
            Duration::from_secs(60)
        ));

        // MSET / MGET.
        let (a, b, missing) = (format!("{p}:a"), format!("{p}:b"), format!("{p}:missing"));
        c.mset([(&a, "1"), (&b, "2")]).unwrap();
        assert_eq!(
            c.mget::<_, Vec<Option<Vec<u8>>>>([&a, &missing, &b])
                .unwrap(),
            [Some(bytes("1")), None, Some(bytes("2"))]
        );
        assert_eq!(
            c.mget::<_, Vec<Option<Vec<u8>>>>(&a).unwrap(),
            [Some(bytes("1"))]
        );

        // Counters.
        let n = format!("{p}:n");
        assert_eq!(c.incr(&n).unwrap(), 1);
        assert_eq!(c.incr_by(&n, 10).unwrap(), 11);
        assert_eq!(c.decr(&n).unwrap(), 10);
        assert_eq!(c.decr_by(&n, 15).unwrap(), -5);
        assert_eq!(c.incr_by_float(&n, 0.5).unwrap(), -4.5);
        assert_eq!(c.incr_by_float(&n, 4.5).unwrap(), 0.0);
        assert_eq!(
            c.incr(&g).unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::Other)
        );

        // GETDEL / GETEX.
        let gd = format!("{p}:gd");
        c.set(&gd, "x").unwrap();
        assert_eq!(
            c.getdel::<_, Option<Vec<u8>>>(&gd).unwrap(),
            Some(bytes("x"))
        );
        assert_eq!(c.getdel::<_, Option<Vec<u8>>>(&gd).unwrap(), None);
        assert_eq!(c.exists(&gd).unwrap(), 0);
        c.set(&gd, "y").unwrap();
        assert_eq!(
            c.getex::<_, Option<Vec<u8>>>(&gd, GetExExpiry::Ex(Duration::from_secs(70)))
                .unwrap(),
            Some(bytes("y"))
        );
        assert!(ttl_within(
            c.ttl(&gd).unwrap(),
            Duration::from_secs(68),
            Duration::from_secs(70)
        ));
        assert_eq!(
            c.getex::<_, Option<Vec<u8>>>(&gd, GetExExpiry::Px(Duration::from_millis(30_000)))
                .unwrap(),
            Some(bytes("y"))
        );
        assert!(ttl_within(
            c.pttl(&gd).unwrap(),
            Duration::from_secs(28),
            Duration::from_secs(30)
        ));
        let at = c.time().unwrap() + Duration::from_secs(500);
        c.getex::<_, Option<Vec<u8>>>(&gd, GetExExpiry::ExAt(at))
            .unwrap();
        assert!(ttl_within(
            c.ttl(&gd).unwrap(),
            Duration::from_secs(497),
            Duration::from_secs(500)
        ));
        c.getex::<_, Option<Vec<u8>>>(&gd, GetExExpiry::PxAt(at))
            .unwrap();
        assert!(ttl_within(
            c.pttl(&gd).unwrap(),
            Duration::from_secs(497),
            Duration::from_secs(500)
        ));
        c.getex::<_, Option<Vec<u8>>>(&gd, GetExExpiry::Persist)
            .unwrap();
        assert_eq!(c.ttl(&gd).unwrap(), Ttl::NoExpiry);
        assert_eq!(
            c.getex::<_, Option<Vec<u8>>>(&missing, GetExExpiry::Persist)
                .unwrap(),
            None
        );

        // APPEND / STRLEN.
        let ap = format!("{p}:ap");
        assert_eq!(c.append(&ap, "ab").unwrap(), 2);
        assert_eq!(c.append(&ap, "cde").unwrap(), 5);
        assert_eq!(c.strlen(&ap).unwrap(), 5);
        assert_eq!(c.strlen(&missing).unwrap(), 0);
    });
}

#[test]
fn keys_round_trip() {
    each_combo("keys", |c, p, _, _| {
        let ks: Vec<String> = (0..4).map(|i| format!("{p}:{i}")).collect();
        for k in &ks {
            c.set(k, "v").unwrap();
        }
        let missing = format!("{p}:missing");
        assert_eq!(c.exists(&ks[..]).unwrap(), 4);
        assert_eq!(c.exists([&ks[0], &ks[0], &missing]).unwrap(), 2);
        assert_eq!(c.del([&ks[0], &missing]).unwrap(), 1);
        assert_eq!(c.unlink(&ks[1..3]).unwrap(), 2);
        assert_eq!(c.exists(&ks[..]).unwrap(), 1);

        let k = &ks[3];
        assert_eq!(c.ttl(&missing).unwrap(), Ttl::Missing);
        assert_eq!(c.pttl(&missing).unwrap(), Ttl::Missing);
        assert_eq!(c.ttl(k).unwrap(), Ttl::NoExpiry);
        assert!(c.expire(k, Duration::from_secs(90)).unwrap());
        assert!(ttl_within(
            c.ttl(k).unwrap(),
            Duration::from_secs(88),
            Duration::from_secs(90)
        ));
        assert!(c.pexpire(k, Duration::from_millis(45_000)).unwrap());
        assert!(ttl_within(
            c.pttl(k).unwrap(),
            Duration::from_secs(43),
            Duration::from_secs(45)
        ));
        assert!(!c.expire(&missing, Duration::from_secs(5)).unwrap());
        assert!(c.persist(k).unwrap());
        assert!(!c.persist(k).unwrap());
        assert_eq!(c.ttl(k).unwrap(), Ttl::NoExpiry);

        // A sub-second part is kept (PEXPIRE), not truncated to EXPIRE 0.
        assert!(c.expire(k, Duration::from_millis(60_500)).unwrap());
        assert!(ttl_within(
            c.pttl(k).unwrap(),
            Duration::from_secs(58),
            Duration::from_millis(60_500)
        ));
        assert!(c.persist(k).unwrap());

        // A short PEXPIRE really expires the key.
        let short = format!("{p}:short");
        c.set(&short, "v").unwrap();
        assert!(c.pexpire(&short, Duration::from_millis(30)).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.exists(&short).unwrap() == 1 {
            assert!(Instant::now() < deadline, "key did not expire");
            std::thread::sleep(Duration::from_millis(10));
        }

        // TYPE of each kind.
        let t = |suffix: &str| format!("{p}:type:{suffix}");
        c.set(t("s"), "v").unwrap();
        c.rpush(t("l"), "v").unwrap();
        c.sadd(t("set"), "v").unwrap();
        c.zadd(t("z"), &[("v", 1.0)]).unwrap();
        c.hset(t("h"), ("f", "v")).unwrap();
        c.exec(&cmd("XADD").arg(t("x")).arg("*").arg("f").arg("v"))
            .unwrap();
        for (suffix, want) in [
            ("s", KeyType::String),
            ("l", KeyType::List),
            ("set", KeyType::Set),
            ("z", KeyType::ZSet),
            ("h", KeyType::Hash),
            ("x", KeyType::Stream),
            ("none", KeyType::None),
        ] {
            assert_eq!(c.key_type(t(suffix)).unwrap(), want, "{suffix}");
        }

        // RENAME.
        let renamed = format!("{p}:renamed");
        c.rename(t("s"), &renamed).unwrap();
        assert_eq!(
            c.get::<_, Option<Vec<u8>>>(&renamed).unwrap(),
            Some(bytes("v"))
        );
        assert_eq!(c.exists(t("s")).unwrap(), 0);
        let err = c.rename(&missing, &renamed).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err}");
    });
}

#[test]
fn scan_finds_exactly_the_keys_under_a_prefix() {
    each_combo("scan", |c, p, _, _| {
        let mut want = HashSet::new();
        let mut batch = pipe();
        for i in 0..150 {
            let k = format!("{p}:item:{i}");
            batch.add(cmd("SET").arg(&k).arg(i));
            want.insert(k.into_bytes());
        }
        for i in 0..7 {
            batch.add(cmd("HSET").arg(format!("{p}:hash:{i}")).arg("f").arg(i));
        }
        batch.query::<(), _>(c).unwrap();
        // A near-miss that MATCH must exclude.
        c.set(format!("{p}x:item:0"), "v").unwrap();

        let pattern = format!("{p}:item:*");
        let mut seen = HashSet::new();
        for k in c.scan::<Vec<u8>>(ScanOptions::new().pattern(&pattern).count(7)) {
            seen.insert(k.unwrap());
        }
        assert_eq!(seen, want);

        // TYPE filter, over all of this prefix.
        let hashes = c
            .scan::<Vec<u8>>(
                ScanOptions::new()
                    .pattern(format!("{p}:*"))
                    .count(13)
                    .type_("hash"),
            )
            .collect::<valkit::Result<HashSet<_>>>()
            .unwrap();
        let want: HashSet<Vec<u8>> = (0..7)
            .map(|i| format!("{p}:hash:{i}").into_bytes())
            .collect();
        assert_eq!(hashes, want);

        // Nothing matches: the iterator still ends.
        let none = c.scan::<Vec<u8>>(
            ScanOptions::new()
                .pattern(format!("{p}:nothing:*"))
                .count(1000),
        );
        assert_eq!(none.count(), 0);
    });
}

#[test]
fn hashes_round_trip() {
    each_combo("hashes", |c, p, _, _| {
        let h = format!("{p}:h");
        assert_eq!(c.hset(&h, ("a", "1")).unwrap(), 1);
        assert_eq!(c.hset(&h, ("a", "one")).unwrap(), 0);
        assert_eq!(c.hset(&h, [("b", "2"), ("c", "3")]).unwrap(), 2);
        let mut m = HashMap::new();
        m.insert("d", "4");
        assert_eq!(c.hset(&h, &m).unwrap(), 1);
        assert_eq!(
            c.hget::<_, _, Option<Vec<u8>>>(&h, "a").unwrap(),
            Some(bytes("one"))
        );
        assert_eq!(c.hget::<_, _, Option<Vec<u8>>>(&h, "zz").unwrap(), None);
        assert_eq!(
            c.hmget::<_, _, Vec<Option<Vec<u8>>>>(&h, ["b", "zz", "c"])
                .unwrap(),
            [Some(bytes("2")), None, Some(bytes("3"))]
        );
        let all = c.hgetall::<_, HashMap<Vec<u8>, Vec<u8>>>(&h).unwrap();
        let want: HashMap<Vec<u8>, Vec<u8>> = [("a", "one"), ("b", "2"), ("c", "3"), ("d", "4")]
            .iter()
            .map(|(k, v)| (bytes(k), bytes(v)))
            .collect();
        assert_eq!(all, want);
        assert!(c
            .hgetall::<_, HashMap<Vec<u8>, Vec<u8>>>(format!("{p}:missing"))
            .unwrap()
            .is_empty());
        assert!(c.hexists(&h, "a").unwrap());
        assert!(!c.hexists(&h, "zz").unwrap());
        assert_eq!(c.hincr_by(&h, "n", 5).unwrap(), 5);
        assert_eq!(c.hincr_by(&h, "n", -7).unwrap(), -2);
        assert_eq!(c.hlen(&h).unwrap(), 5);
        let keys: HashSet<Vec<u8>> = c
            .hkeys::<_, Vec<Vec<u8>>>(&h)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(keys.len(), 5);
        assert!(keys.contains(&bytes("n")));
        let mut vals = c.hvals::<_, Vec<Vec<u8>>>(&h).unwrap();
        vals.sort();
        assert_eq!(
            vals,
            [
                bytes("-2"),
                bytes("2"),
                bytes("3"),
                bytes("4"),
                bytes("one")
            ]
        );
        assert_eq!(c.hdel(&h, ["a", "b", "zz"]).unwrap(), 2);
        assert_eq!(c.hlen(&h).unwrap(), 3);
        // WRONGTYPE surfaces as a typed server error.
        let s = format!("{p}:s");
        c.set(&s, "v").unwrap();
        assert_eq!(
            c.hget::<_, _, Option<Vec<u8>>>(&s, "f").unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::WrongType)
        );
    });
}

#[test]
fn lists_round_trip() {
    each_combo("lists", |c, p, _, _| {
        let l = format!("{p}:l");
        assert_eq!(c.rpush(&l, ["b", "c"]).unwrap(), 2);
        assert_eq!(c.lpush(&l, "a").unwrap(), 3);
        assert_eq!(c.lpush(&l, ["y", "x"]).unwrap(), 5);
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&l, 0, -1).unwrap(),
            [bytes("x"), bytes("y"), bytes("a"), bytes("b"), bytes("c")]
        );
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&l, 1, 2).unwrap(),
            [bytes("y"), bytes("a")]
        );
        assert_eq!(c.llen(&l).unwrap(), 5);
        assert_eq!(c.lpop::<_, Option<Vec<u8>>>(&l).unwrap(), Some(bytes("x")));
        assert_eq!(c.rpop::<_, Option<Vec<u8>>>(&l).unwrap(), Some(bytes("c")));
        c.rpush(&l, ["a", "z", "a"]).unwrap();
        assert_eq!(c.lrem(&l, -1, "a").unwrap(), 1);
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&l, 0, -1).unwrap(),
            [bytes("y"), bytes("a"), bytes("b"), bytes("a"), bytes("z")]
        );
        assert_eq!(c.lrem(&l, 0, "a").unwrap(), 2);
        assert_eq!(c.lrem(&l, 0, "nope").unwrap(), 0);

        let dst = format!("{p}:dst");
        assert_eq!(
            c.lmove::<_, _, Option<Vec<u8>>>(&l, &dst, ListEnd::Left, ListEnd::Right)
                .unwrap(),
            Some(bytes("y"))
        );
        assert_eq!(
            c.lmove::<_, _, Option<Vec<u8>>>(&l, &dst, ListEnd::Right, ListEnd::Left)
                .unwrap(),
            Some(bytes("z"))
        );
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&dst, 0, -1).unwrap(),
            [bytes("z"), bytes("y")]
        );
        let empty = format!("{p}:empty");
        assert_eq!(
            c.lmove::<_, _, Option<Vec<u8>>>(&empty, &dst, ListEnd::Left, ListEnd::Left)
                .unwrap(),
            None
        );
        assert_eq!(c.lpop::<_, Option<Vec<u8>>>(&empty).unwrap(), None);
        assert_eq!(c.rpop::<_, Option<Vec<u8>>>(&empty).unwrap(), None);
        assert_eq!(c.llen(&empty).unwrap(), 0);
        assert!(c
            .lrange::<_, Vec<Vec<u8>>>(&empty, 0, -1)
            .unwrap()
            .is_empty());
    });
}

/// Wait until the client named `name` is blocked in a command on the server.
fn wait_blocked(c: &Connection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list: String =
            valkit::FromValue::from_value(c.exec(&cmd("CLIENT").arg("LIST")).unwrap()).unwrap();
        let blocked = list.lines().any(|line| {
            line.split(' ').any(|f| f == format!("name={name}"))
                && line
                    .split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('b'))
        });
        if blocked {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "client {name} never blocked:\n{list}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A second connection to the same server, named so `CLIENT LIST` can find it.
fn named_conn(kind: ServerKind, proto: Protocol, name: &str) -> Connection {
    let mut cfg = shared(kind).config();
    cfg.protocol = proto;
    cfg.client_name = Some(name.to_owned());
    Connection::open(&cfg).unwrap()
}

fn client_name(prefix: &str, what: &str) -> String {
    // Client names may not contain spaces; prefixes from the test kit have none.
    format!("{}-{what}", prefix.replace([':', ' '], "-"))
}

#[test]
fn blpop_times_out_then_wakes_on_push() {
    each_combo("blpop", |c, p, kind, proto| {
        let (a, b) = (format!("{p}:a"), format!("{p}:b"));
        let started = Instant::now();
        assert_eq!(
            c.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>([&a, &b], Duration::from_millis(300))
                .unwrap(),
            None
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(
            c.brpop::<_, Option<(Vec<u8>, Vec<u8>)>>(&a, Duration::from_millis(50))
                .unwrap(),
            None
        );
        // The connection is still usable after a blocking timeout.
        c.ping().unwrap();

        // Already there: no wait.
        c.rpush(&b, ["1", "2"]).unwrap();
        assert_eq!(
            c.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>([&a, &b], Duration::from_secs(5))
                .unwrap(),
            Some((bytes(&b), bytes("1")))
        );
        assert_eq!(
            c.brpop::<_, Option<(Vec<u8>, Vec<u8>)>>([&a, &b], Duration::from_secs(5))
                .unwrap(),
            Some((bytes(&b), bytes("2")))
        );

        // Pushed from another thread while blocked, including "for ever" (a zero timeout).
        for timeout in [Duration::from_secs(20), Duration::ZERO] {
            let name = client_name(p, "waiter");
            let waiter = named_conn(kind, proto, &name);
            std::thread::scope(|s| {
                let popped =
                    s.spawn(|| waiter.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>([&a, &b], timeout));
                wait_blocked(c, &name);
                c.rpush(&a, "pushed").unwrap();
                let got = popped.join().unwrap().unwrap();
                assert_eq!(got, Some((bytes(&a), bytes("pushed"))));
            });
        }
    });
}

#[test]
fn blmove_and_blmpop() {
    each_combo("blmove", |c, p, kind, proto| {
        let (src, dst) = (format!("{p}:src"), format!("{p}:dst"));
        let started = Instant::now();
        assert_eq!(
            c.blmove::<_, _, Option<Vec<u8>>>(
                &src,
                &dst,
                ListEnd::Left,
                ListEnd::Right,
                Duration::from_millis(200)
            )
            .unwrap(),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        c.rpush(&src, ["a", "b", "c"]).unwrap();
        assert_eq!(
            c.blmove::<_, _, Option<Vec<u8>>>(
                &src,
                &dst,
                ListEnd::Right,
                ListEnd::Left,
                Duration::from_secs(1)
            )
            .unwrap(),
            Some(bytes("c"))
        );
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&dst, 0, -1).unwrap(),
            [bytes("c")]
        );

        // BLMPOP: the first non-empty list, up to COUNT elements.
        let empty = format!("{p}:empty");
        assert_eq!(
            c.blmpop::<_, Option<(Vec<u8>, Vec<Vec<u8>>)>>(
                Duration::from_secs(1),
                [&empty, &src],
                ListEnd::Left,
                5
            )
            .unwrap(),
            Some((bytes(&src), vec![bytes("a"), bytes("b")]))
        );
        let started = Instant::now();
        assert_eq!(
            c.blmpop::<_, Option<(Vec<u8>, Vec<Vec<u8>>)>>(
                Duration::from_millis(200),
                [&empty, &src],
                ListEnd::Right,
                1
            )
            .unwrap(),
            None
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        c.rpush(&empty, ["x", "y", "z"]).unwrap();
        assert_eq!(
            c.blmpop::<_, Option<(Vec<u8>, Vec<Vec<u8>>)>>(
                Duration::from_secs(1),
                &empty,
                ListEnd::Right,
                2
            )
            .unwrap(),
            Some((bytes(&empty), vec![bytes("z"), bytes("y")]))
        );

        // BLMOVE woken by a push from another connection.
        let name = client_name(p, "mover");
        let waiter = named_conn(kind, proto, &name);
        let fresh = format!("{p}:fresh");
        std::thread::scope(|s| {
            let moved = s.spawn(|| {
                waiter.blmove::<_, _, Option<Vec<u8>>>(
                    &fresh,
                    &dst,
                    ListEnd::Left,
                    ListEnd::Left,
                    Duration::from_secs(20),
                )
            });
            wait_blocked(c, &name);
            c.lpush(&fresh, "late").unwrap();
            assert_eq!(moved.join().unwrap().unwrap(), Some(bytes("late")));
        });
        assert_eq!(
            c.lpop::<_, Option<Vec<u8>>>(&dst).unwrap(),
            Some(bytes("late"))
        );
    });
}

#[test]
fn sets_round_trip() {
    each_combo("sets", |c, p, _, _| {
        let s = format!("{p}:s");
        assert_eq!(c.sadd(&s, ["a", "b", "c"]).unwrap(), 3);
        assert_eq!(c.sadd(&s, ["a", "d"]).unwrap(), 1);
        assert_eq!(c.scard(&s).unwrap(), 4);
        assert!(c.sismember(&s, "a").unwrap());
        assert!(!c.sismember(&s, "z").unwrap());
        assert_eq!(c.srem(&s, ["a", "z"]).unwrap(), 1);
        let want: HashSet<Vec<u8>> = ["b", "c", "d"].iter().map(|m| bytes(m)).collect();
        assert_eq!(c.smembers::<_, HashSet<Vec<u8>>>(&s).unwrap(), want);
        assert!(c
            .smembers::<_, HashSet<Vec<u8>>>(format!("{p}:missing"))
            .unwrap()
            .is_empty());
        assert_eq!(c.scard(format!("{p}:missing")).unwrap(), 0);
    });
}

#[test]
fn sorted_sets_round_trip_with_every_range_option() {
    use ScoreBound::*;
    each_combo("zsets", |c, p, _, _| {
        let z = format!("{p}:z");
        let members = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.5)];
        assert_eq!(c.zadd(&z, &members).unwrap(), 5);
        assert_eq!(c.zcard(&z).unwrap(), 5);
        assert_eq!(c.zadd(&z, &[("a", 1.0)]).unwrap(), 0);

        let names = |v: Vec<Vec<u8>>| -> Vec<String> {
            v.into_iter()
                .map(|m| String::from_utf8(m).unwrap())
                .collect()
        };
        let range = |opts: ZRangeOptions| names(c.zrange::<_, Vec<Vec<u8>>>(&z, opts).unwrap());
        assert_eq!(range(ZRangeOptions::default()), ["a", "b", "c", "d", "e"]);
        assert_eq!(range(ZRangeOptions::by_index(1, 2)), ["b", "c"]);
        assert_eq!(range(ZRangeOptions::by_index(-2, -1)), ["d", "e"]);
        assert_eq!(range(ZRangeOptions::by_index(0, 1).rev()), ["e", "d"]);
        assert_eq!(
            range(ZRangeOptions::by_score(Inclusive(2.0), Inclusive(4.0))),
            ["b", "c", "d"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(Exclusive(2.0), Exclusive(4.0))),
            ["c"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(NegInf, Inclusive(2.0))),
            ["a", "b"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(Exclusive(4.0), PosInf)),
            ["e"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(NegInf, PosInf).rev()),
            ["e", "d", "c", "b", "a"]
        );
        assert_eq!(
            range(
                ZRangeOptions::by_score(Inclusive(2.0), PosInf)
                    .rev()
                    .limit(1, 2)
            ),
            ["d", "c"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(NegInf, PosInf).limit(3, -1)),
            ["d", "e"]
        );
        assert_eq!(
            range(ZRangeOptions::by_score(Inclusive(10.0), PosInf)),
            Vec::<String>::new()
        );
        assert!(c
            .zrange::<_, Vec<Vec<u8>>>(&z, ZRangeOptions::by_index(0, 1).limit(0, 1))
            .is_err());

        let with = c
            .zrange_withscores::<_, Vec<(Vec<u8>, f64)>>(
                &z,
                ZRangeOptions::by_score(Inclusive(3.0), PosInf).rev(),
            )
            .unwrap();
        assert_eq!(
            with,
            [(bytes("e"), 5.5), (bytes("d"), 4.0), (bytes("c"), 3.0)]
        );
        let with = c
            .zrange_withscores::<_, Vec<(Vec<u8>, f64)>>(&z, ZRangeOptions::by_index(0, 0))
            .unwrap();
        assert_eq!(with, [(bytes("a"), 1.0)]);
        assert!(c
            .zrange_withscores::<_, Vec<(Vec<u8>, f64)>>(
                format!("{p}:missing"),
                ZRangeOptions::default()
            )
            .unwrap()
            .is_empty());

        assert_eq!(c.zincr_by(&z, "a", 0.25).unwrap(), 1.25);
        assert_eq!(c.zscore(&z, "a").unwrap(), Some(1.25));
        assert_eq!(c.zscore(&z, "zz").unwrap(), None);
        assert_eq!(c.zincr_by(&z, "new", 1.0).unwrap(), 1.0);
        assert_eq!(c.zrem(&z, ["new", "zz"]).unwrap(), 1);

        // ZADD options.
        let o = ZAddOptions::new();
        assert_eq!(
            c.zadd_options(&z, &[("a", 9.0), ("f", 6.0)], &o.condition(Condition::Nx))
                .unwrap(),
            1
        );
        assert_eq!(c.zscore(&z, "a").unwrap(), Some(1.25));
        assert_eq!(
            c.zadd_options(
                &z,
                &[("a", 0.5), ("g", 7.0)],
                &o.condition(Condition::Xx).ch()
            )
            .unwrap(),
            1
        );
        assert_eq!(c.zscore(&z, "g").unwrap(), None);
        assert_eq!(
            c.zadd_options(
                &z,
                &[("a", 0.25), ("b", 3.0)],
                &o.update(ScoreUpdate::Gt).ch()
            )
            .unwrap(),
            1
        );
        assert_eq!(c.zscore(&z, "a").unwrap(), Some(0.5));
        assert_eq!(c.zscore(&z, "b").unwrap(), Some(3.0));
        assert_eq!(
            c.zadd_options(&z, &[("b", 4.0), ("c", 2.5)], &o.update(ScoreUpdate::Lt))
                .unwrap(),
            0
        );
        assert_eq!(c.zscore(&z, "b").unwrap(), Some(3.0));
        assert_eq!(c.zscore(&z, "c").unwrap(), Some(2.5));
        // Infinite scores round-trip.
        c.zadd(&z, &[("inf", f64::INFINITY), ("-inf", f64::NEG_INFINITY)])
            .unwrap();
        assert_eq!(c.zscore(&z, "inf").unwrap(), Some(f64::INFINITY));
        assert_eq!(range(ZRangeOptions::by_index(0, 0)), ["-inf"]);

        // Current scores: -inf, a .5, c 2.5, b 3, d 4, e 5.5, f 6, inf.
        assert_eq!(
            c.zrem_range_by_score(&z, Exclusive(2.5), Inclusive(4.0))
                .unwrap(),
            2
        );
        assert_eq!(
            c.zrem_range_by_score(&z, NegInf, Inclusive(0.5)).unwrap(),
            2
        );
        assert_eq!(
            c.zrem_range_by_score(&z, Inclusive(6.0), PosInf).unwrap(),
            2
        );
        assert_eq!(range(ZRangeOptions::default()), ["c", "e"]);
        assert_eq!(c.zcard(&z).unwrap(), 2);
    });
}

#[test]
fn server_commands() {
    each_combo("server", |c, p, kind, proto| {
        c.ping().unwrap();
        assert_eq!(
            c.ping_message::<_, Vec<u8>>("hi\r\nthere").unwrap(),
            bytes("hi\r\nthere")
        );

        let info = c.info().unwrap();
        assert!(info.section("server").is_some(), "{info:?}");
        let version = match kind {
            ServerKind::Valkey => info.get("server", "valkey_version"),
            _ => info.get("server", "redis_version"),
        };
        assert!(version.is_some(), "{info:?}");
        assert_eq!(info.server_version(), version);
        assert!(info.get("clients", "connected_clients").is_some());
        let only = c.info_sections("memory").unwrap();
        assert!(only.get("memory", "used_memory").is_some());
        assert!(only.section("server").is_none());
        let two = c.info_sections(["server", "clients"]).unwrap();
        assert_eq!(two.sections().len(), 2, "{:?}", two.sections().keys());

        let server = c.time().unwrap();
        let local = SystemTime::now();
        let skew = local
            .duration_since(server)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap();
        assert!(skew < Duration::from_secs(5), "{skew:?}");

        // DBSIZE / FLUSHDB on a database of this test's own (the server is shared).
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        cfg.db = if proto == Protocol::Resp3 { 7 } else { 8 };
        let own = Connection::open(&cfg).unwrap();
        own.flushdb().unwrap();
        assert_eq!(own.dbsize().unwrap(), 0);
        own.mset([(format!("{p}:1"), 1), (format!("{p}:2"), 2)])
            .unwrap();
        assert_eq!(own.dbsize().unwrap(), 2);
        own.flushdb().unwrap();
        assert_eq!(own.dbsize().unwrap(), 0);
        c.set(p, 1).unwrap();
        assert!(c.dbsize().unwrap() >= 1);
    });
}

#[test]
fn binary_safe_keys_and_values() {
    each_combo("binary", |c, p, _, _| {
        let mut k = p.as_bytes().to_vec();
        k.extend_from_slice(b":\r\n\0key\r\n*1\r\n$4\r\nPING\r\n\xff");
        let v: Vec<u8> = b"\0\r\n$-1\r\n+OK\r\n\xff\xfe".to_vec();
        c.set(&k, &v).unwrap();
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&k).unwrap(), Some(v.clone()));
        assert_eq!(c.strlen(&k).unwrap(), v.len() as u64);

        // 1 MiB with every byte value, CR/LF/NUL included.
        let big: Vec<u8> = (0..1024 * 1024)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut bk = k.clone();
        bk.extend_from_slice(b":big");
        c.set(&bk, &big).unwrap();
        assert_eq!(
            c.get::<_, Option<Vec<u8>>>(&bk).unwrap().as_deref(),
            Some(&big[..])
        );
        assert_eq!(
            c.getdel::<_, Option<Vec<u8>>>(&bk)
                .unwrap()
                .map(|b| b.len()),
            Some(big.len())
        );

        // Hash fields, list elements, set and sorted-set members.
        let mut hk = k.clone();
        hk.extend_from_slice(b":h");
        c.hset(&hk, (&b"f\r\n\0"[..], &v)).unwrap();
        assert_eq!(
            c.hget::<_, _, Option<Vec<u8>>>(&hk, &b"f\r\n\0"[..])
                .unwrap(),
            Some(v.clone())
        );
        let all = c.hgetall::<_, HashMap<Vec<u8>, Vec<u8>>>(&hk).unwrap();
        assert_eq!(all.get(&b"f\r\n\0"[..]), Some(&v));
        let mut lk = k.clone();
        lk.extend_from_slice(b":l");
        c.rpush(&lk, [&v[..], &big[..4096]]).unwrap();
        assert_eq!(
            c.lrange::<_, Vec<Vec<u8>>>(&lk, 0, -1).unwrap(),
            [v.clone(), big[..4096].to_vec()]
        );
        let mut sk = k.clone();
        sk.extend_from_slice(b":s");
        c.sadd(&sk, &v).unwrap();
        assert!(c.smembers::<_, HashSet<Vec<u8>>>(&sk).unwrap().contains(&v));
        let mut zk = k.clone();
        zk.extend_from_slice(b":z");
        c.zadd(&zk, &[(&v[..], 1.0)]).unwrap();
        assert_eq!(
            c.zrange_withscores::<_, Vec<(Vec<u8>, f64)>>(&zk, ZRangeOptions::default())
                .unwrap(),
            [(v.clone(), 1.0)]
        );

        // SCAN returns the binary key intact.
        let found: Vec<Vec<u8>> = c
            .scan::<Vec<u8>>(ScanOptions::new().pattern(format!("{p}:*")).count(100))
            .collect::<valkit::Result<_>>()
            .unwrap();
        assert!(found.contains(&k), "{found:?}");
    });
}

#[test]
fn pipeline_of_10000_commands_checks_every_reply() {
    each_combo("pipe10k", |c, p, _, _| {
        let mut batch = pipe();
        for i in 0..5_000 {
            batch.add(cmd("SET").arg(format!("{p}:{i}")).arg(format!("value-{i}")));
            batch.add(cmd("GET").arg(format!("{p}:{i}")));
        }
        assert_eq!(batch.len(), 10_000);
        let replies = batch.run(c).unwrap();
        assert_eq!(replies.len(), 10_000);
        for (i, pair) in replies.chunks(2).enumerate() {
            let set = pair[0].as_ref().unwrap();
            assert_eq!(set.as_bytes(), Some(&b"OK"[..]), "SET #{i}");
            let got = pair[1].as_ref().unwrap();
            assert_eq!(
                got.as_bytes(),
                Some(format!("value-{i}").as_bytes()),
                "GET #{i}"
            );
        }

        let counter = format!("{p}:counter");
        let mut incrs = pipe();
        for _ in 0..10_000 {
            incrs.add(cmd("INCR").arg(&counter));
        }
        let counts: Vec<i64> = incrs.query(c).unwrap();
        assert_eq!(counts, (1..=10_000).collect::<Vec<i64>>());
        assert_eq!(c.get_string(&counter).unwrap().as_deref(), Some("10000"));
    });
}

#[test]
fn pipeline_errors_stay_per_command() {
    each_combo("pipeerr", |c, p, _, _| {
        let k = format!("{p}:k");
        let replies = pipe()
            .cmd(cmd("SET").arg(&k).arg("v"))
            .cmd(cmd("LPUSH").arg(&k).arg("x"))
            .cmd(cmd("INCR").arg(&k))
            .cmd(cmd("GET").arg(&k))
            .run(c)
            .unwrap();
        assert_eq!(replies.len(), 4);
        assert!(replies[0].is_ok());
        let wrong = replies[1].as_ref().unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        assert!(replies[2].is_err());
        assert_eq!(replies[3].as_ref().unwrap().as_bytes(), Some(&b"v"[..]));
        // query() reports the first error; the connection stays usable.
        let err = pipe()
            .cmd(cmd("GET").arg(&k))
            .cmd(cmd("HGET").arg(&k).arg("f"))
            .query::<Vec<Vec<u8>>, _>(c)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
        assert_eq!(c.get::<_, Option<Vec<u8>>>(&k).unwrap(), Some(bytes("v")));
    });
}

#[test]
fn atomic_pipeline_runs_as_multi_exec() {
    each_combo("multi", |c, p, _, _| {
        let (a, l) = (format!("{p}:a"), format!("{p}:l"));
        let (ok, n, got): (String, i64, Vec<u8>) = pipe()
            .atomic()
            .cmd(cmd("SET").arg(&a).arg(41))
            .cmd(cmd("INCR").arg(&a))
            .cmd(cmd("GET").arg(&a))
            .query(c)
            .unwrap();
        assert_eq!((ok.as_str(), n, got), ("OK", 42, bytes("42")));

        // A command failing at run time inside EXEC fails alone; the others are applied.
        let replies = pipe()
            .atomic()
            .cmd(cmd("RPUSH").arg(&l).arg("x"))
            .cmd(cmd("INCR").arg(&l))
            .cmd(cmd("INCR").arg(&a))
            .run(c)
            .unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0].as_ref().unwrap().as_int(), Some(1));
        assert_eq!(
            replies[1].as_ref().unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::WrongType)
        );
        assert_eq!(replies[2].as_ref().unwrap().as_int(), Some(43));

        // A command rejected while queueing aborts the whole transaction.
        let err = pipe()
            .atomic()
            .cmd(cmd("INCR").arg(&a))
            .cmd(cmd("NOSUCHCOMMAND"))
            .run(c)
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err:?}");
        assert_eq!(c.get_string(&a).unwrap().as_deref(), Some("43"));
        c.ping().unwrap();
    });
}

#[test]
fn helpers_work_through_references_and_arcs() {
    each_combo("generic", |c, p, _, _| {
        fn count_keys(ex: &impl Commands, pattern: &str) -> usize {
            ex.scan::<Vec<u8>>(ScanOptions::new().pattern(pattern))
                .count()
        }
        let shared = std::sync::Arc::new(c);
        shared.set(format!("{p}:x"), 1).unwrap();
        let dynamic: &dyn Execute = *shared;
        assert_eq!(dynamic.incr(format!("{p}:x")).unwrap(), 2);
        assert_eq!(count_keys(&shared, &format!("{p}:*")), 1);
    });
}
