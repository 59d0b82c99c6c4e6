//! The commands added for everyday programs, against real servers (Valkey 9.1 and Redis
//! 7.0, each in RESP2 and RESP3): hashes, lists, sets, sorted sets, key expiry and copy,
//! server introspection, and streams with consumer groups.
#![cfg(feature = "testkit")]

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::each_combo;
use valkit::{
    pipe, Commands, CopyOptions, ErrorKind, ExpireTime, ScanOptions, ScoreBound, StreamEntry,
    StreamTrim, Value, XReadGroupOptions,
};

#[test]
fn hashes_setnx_incr_float_and_hscan() {
    each_combo("fam_hash", |c, p, _, _| {
        let h = format!("{p}:h");
        assert!(c.hsetnx(&h, "a", "1").unwrap());
        assert!(!c.hsetnx(&h, "a", "2").unwrap());
        assert_eq!(
            c.hget::<_, _, Option<String>>(&h, "a").unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(c.hincr_by_float(&h, "f", 1.25).unwrap(), 1.25);
        assert_eq!(c.hincr_by_float(&h, "f", -0.5).unwrap(), 0.75);
        for i in 0..300 {
            c.hset(&h, (format!("k{i}"), i)).unwrap();
        }
        let seen: HashMap<String, i64> = c
            .hscan::<_, (String, i64)>(&h, ScanOptions::new().pattern("k*").count(50))
            .collect::<valkit::Result<_>>()
            .unwrap();
        assert_eq!(seen.len(), 300);
        assert_eq!(seen["k299"], 299);
        // A value that does not convert stops the iterator with that error.
        let mut it = c.hscan::<_, (String, i64)>(&h, ScanOptions::new().pattern("f"));
        assert_eq!(
            it.next().unwrap().unwrap_err().kind(),
            ErrorKind::Conversion
        );
        assert!(it.next().is_none());
    });
}

#[test]
fn lists_index_set_and_trim() {
    each_combo("fam_list", |c, p, _, _| {
        let l = format!("{p}:l");
        c.rpush(&l, ["a", "b", "c", "d", "e"]).unwrap();
        assert_eq!(
            c.lindex::<_, Option<String>>(&l, 1).unwrap().as_deref(),
            Some("b")
        );
        assert_eq!(
            c.lindex::<_, Option<String>>(&l, -1).unwrap().as_deref(),
            Some("e")
        );
        assert_eq!(c.lindex::<_, Option<String>>(&l, 99).unwrap(), None);
        c.lset(&l, 0, "A").unwrap();
        let err = c.lset(&l, 99, "x").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err}");
        // A capped list: push, then keep the newest three.
        c.lpush(&l, "z").unwrap();
        c.ltrim(&l, 0, 2).unwrap();
        assert_eq!(
            c.lrange::<_, Vec<String>>(&l, 0, -1).unwrap(),
            ["z", "A", "b"]
        );
    });
}

#[test]
fn sets_algebra_random_members_and_sscan() {
    each_combo("fam_set", |c, p, _, _| {
        let (a, b, d) = (
            format!("{p}:{{s}}a"),
            format!("{p}:{{s}}b"),
            format!("{p}:{{s}}d"),
        );
        c.sadd(&a, ["1", "2", "3"]).unwrap();
        c.sadd(&b, ["2", "3", "4"]).unwrap();
        let inter: BTreeSet<String> = c.sinter([&a, &b]).unwrap();
        let union: BTreeSet<i64> = c.sunion([&a, &b]).unwrap();
        let diff: Vec<String> = c.sdiff([&a, &b]).unwrap();
        assert_eq!(inter.into_iter().collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(union.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(diff, ["1"]);
        assert_eq!(c.sinterstore(&d, [&a, &b]).unwrap(), 2);
        assert_eq!(c.sunionstore(&d, [&a, &b]).unwrap(), 4);
        assert_eq!(c.sdiffstore(&d, [&b, &a]).unwrap(), 1);
        assert_eq!(c.smembers::<_, Vec<String>>(&d).unwrap(), ["4"]);

        assert_eq!(
            c.smismember(&a, ["1", "9", "3"]).unwrap(),
            [true, false, true]
        );
        let one: Option<String> = c.srandmember(&a).unwrap();
        assert!(one.is_some_and(|m| ["1", "2", "3"].contains(&m.as_str())));
        let two: Vec<String> = c.srandmember_count(&a, 2).unwrap();
        assert_eq!(two.len(), 2);
        let repeated: Vec<String> = c.srandmember_count(&a, -5).unwrap();
        assert_eq!(repeated.len(), 5);
        assert_eq!(c.scard(&a).unwrap(), 3);
        let popped: Option<String> = c.spop(&a).unwrap();
        assert!(popped.is_some());
        let rest: HashSet<String> = c.spop_count(&a, 10).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(c.spop::<_, Option<String>>(&a).unwrap(), None);

        for i in 0..200 {
            c.sadd(&b, i).unwrap();
        }
        let members: HashSet<String> = c
            .sscan(&b, ScanOptions::new().count(40))
            .collect::<valkit::Result<_>>()
            .unwrap();
        // "2", "3" and "4" were there already.
        assert_eq!(members.len(), 200);
    });
}

#[test]
fn sorted_sets_rank_count_and_zscan() {
    each_combo("fam_zset", |c, p, _, _| {
        let z = format!("{p}:z");
        c.zadd(&z, &[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)])
            .unwrap();
        assert_eq!(c.zrank(&z, "a").unwrap(), Some(0));
        assert_eq!(c.zrevrank(&z, "a").unwrap(), Some(3));
        assert_eq!(c.zrevrank(&z, "zz").unwrap(), None);
        assert_eq!(c.zrank(format!("{p}:missing"), "a").unwrap(), None);
        use ScoreBound::*;
        assert_eq!(c.zcount(&z, Inclusive(2.0), PosInf).unwrap(), 3);
        assert_eq!(c.zcount(&z, Exclusive(2.0), Inclusive(4.0)).unwrap(), 2);
        assert_eq!(c.zcount(&z, NegInf, PosInf).unwrap(), 4);
        let all: HashMap<String, f64> = c
            .zscan::<_, (String, f64)>(&z, ScanOptions::new())
            .collect::<valkit::Result<_>>()
            .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all["c"], 3.0);
    });
}

#[test]
fn keys_expire_at_expire_time_and_copy() {
    each_combo("fam_keys", |c, p, _, _| {
        let k = format!("{p}:{{k}}a");
        let k2 = format!("{p}:{{k}}b");
        c.set(&k, "v").unwrap();
        assert_eq!(c.expire_time(&k).unwrap(), ExpireTime::NoExpiry);
        assert_eq!(
            c.expire_time(format!("{p}:missing")).unwrap(),
            ExpireTime::Missing
        );
        let at = UNIX_EPOCH
            + Duration::from_secs(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    + 3600,
            );
        assert!(c.expire_at(&k, at).unwrap());
        assert_eq!(c.expire_time(&k).unwrap(), ExpireTime::At(at));
        let at_ms = at + Duration::from_millis(250);
        assert!(c.pexpire_at(&k, at_ms).unwrap());
        assert_eq!(c.pexpire_time(&k).unwrap(), ExpireTime::At(at_ms));
        assert!(!c.expire_at(format!("{p}:missing"), at).unwrap());

        assert!(c.copy(&k, &k2, CopyOptions::new()).unwrap());
        assert_eq!(
            c.get::<_, Option<String>>(&k2).unwrap().as_deref(),
            Some("v")
        );
        c.set(&k, "w").unwrap();
        assert!(!c.copy(&k, &k2, CopyOptions::new()).unwrap());
        assert!(c.copy(&k, &k2, CopyOptions::new().replace()).unwrap());
        assert_eq!(
            c.get::<_, Option<String>>(&k2).unwrap().as_deref(),
            Some("w")
        );
        // Past instants delete the key.
        assert!(c
            .expire_at(&k2, UNIX_EPOCH + Duration::from_secs(1))
            .unwrap());
        assert_eq!(c.exists(&k2).unwrap(), 0);
    });
}

#[test]
fn server_publish_object_encoding_memory_usage() {
    each_combo("fam_server", |c, p, _, _| {
        assert_eq!(c.publish(format!("{p}:chan"), "hello").unwrap(), 0);
        let n = format!("{p}:n");
        c.set(&n, 12345).unwrap();
        assert_eq!(c.object_encoding(&n).unwrap().as_deref(), Some("int"));
        assert_eq!(c.object_encoding(format!("{p}:missing")).unwrap(), None);
        let used = c.memory_usage(&n).unwrap().expect("key exists");
        assert!(used > 0 && used < 1024, "{used}");
        assert_eq!(c.memory_usage(format!("{p}:missing")).unwrap(), None);
    });
}

#[test]
fn streams_add_trim_range_and_delete() {
    each_combo("fam_stream", |c, p, _, _| {
        let s = format!("{p}:s");
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(
                c.xadd(&s, "*", [("n", i.to_string()), ("tag", "t".into())])
                    .unwrap(),
            );
        }
        assert_eq!(c.xlen(&s).unwrap(), 10);
        let all: Vec<StreamEntry> = c.xrange(&s, "-", "+").unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[3].id, ids[3]);
        assert_eq!(all[3].get("n"), Some(&b"3"[..]));
        assert_eq!(all[3].get("tag"), Some(&b"t"[..]));
        let first2: Vec<StreamEntry> = c.xrange_count(&s, "-", "+", 2).unwrap();
        assert_eq!(
            first2.iter().map(|e| &e.id).collect::<Vec<_>>(),
            [&ids[0], &ids[1]]
        );
        let newest: Vec<(String, Vec<(String, String)>)> =
            c.xrevrange_count(&s, "+", "-", 1).unwrap();
        assert_eq!(newest[0].0, ids[9]);
        assert_eq!(newest[0].1[0], ("n".to_string(), "9".to_string()));
        let back: Vec<StreamEntry> = c.xrevrange(&s, &ids[2], &ids[1]).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].id, ids[2]);

        assert_eq!(c.xdel(&s, [&ids[0], &ids[1]]).unwrap(), 2);
        assert_eq!(c.xtrim(&s, &StreamTrim::max_len(5)).unwrap(), 3);
        assert_eq!(c.xtrim(&s, &StreamTrim::min_id(ids[7].clone())).unwrap(), 2);
        assert_eq!(c.xlen(&s).unwrap(), 3);
        // XADD with trimming keeps the newest two.
        c.xadd_trim(&s, "*", ("n", "x"), &StreamTrim::max_len(2))
            .unwrap();
        assert_eq!(c.xlen(&s).unwrap(), 2);
        c.xadd_trim(
            &s,
            "*",
            ("n", "y"),
            &StreamTrim::max_len(1).approx().limit(100),
        )
        .unwrap();
        assert!(c.xlen(&s).unwrap() >= 1);
        let err = c.xadd(&s, "1-1", ("n", "old")).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err}");
    });
}

/// `XPENDING key group`: count, lowest id, highest id, pending count per consumer.
type PendingSummary = (
    u64,
    Option<String>,
    Option<String>,
    Option<Vec<(String, u64)>>,
);

#[test]
fn streams_consumer_groups_read_ack_pending_claim_info() {
    each_combo("fam_group", |c, p, _, _| {
        let s = format!("{p}:jobs");
        c.xgroup_create(&s, "g", "$", true).unwrap();
        let err = c.xgroup_create(&s, "g", "$", true).unwrap_err();
        assert!(err.to_string().contains("BUSYGROUP"), "{err}");
        let id1 = c.xadd(&s, "*", ("job", "1")).unwrap();
        let id2 = c.xadd(&s, "*", ("job", "2")).unwrap();

        let opts = XReadGroupOptions::new().count(10);
        let got: Vec<(String, Vec<StreamEntry>)> =
            c.xreadgroup("g", "alice", &s, ">", &opts).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, s);
        assert_eq!(
            got[0].1.iter().map(|e| &e.id).collect::<Vec<_>>(),
            [&id1, &id2]
        );
        // Nothing new: a short block times out with nil.
        let none: Option<HashMap<String, Vec<StreamEntry>>> = c
            .xreadgroup(
                "g",
                "alice",
                &s,
                ">",
                &opts.block(Duration::from_millis(50)),
            )
            .unwrap();
        assert_eq!(none, None);

        let (count, low, high, per_consumer): PendingSummary = c.xpending(&s, "g").unwrap();
        assert_eq!(
            (count, low.as_ref(), high.as_ref()),
            (2, Some(&id1), Some(&id2))
        );
        assert_eq!(per_consumer, Some(vec![("alice".to_string(), 2)]));
        let detail: Vec<(String, String, u64, u64)> =
            c.xpending_range(&s, "g", "-", "+", 10).unwrap();
        assert_eq!(detail.len(), 2);
        assert_eq!(
            (detail[0].0.as_str(), detail[0].1.as_str(), detail[0].3),
            (id1.as_str(), "alice", 1)
        );

        assert_eq!(c.xack(&s, "g", &id1).unwrap(), 1);
        assert_eq!(c.xack(&s, "g", &id1).unwrap(), 0);
        // Bob takes over what alice left pending.
        let claimed: Vec<StreamEntry> = c.xclaim(&s, "g", "bob", Duration::ZERO, &id2).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].get("job"), Some(&b"2"[..]));
        let (next, entries, deleted): (String, Vec<StreamEntry>, Vec<String>) = c
            .xautoclaim(&s, "g", "carol", Duration::ZERO, "0-0", 10)
            .unwrap();
        assert_eq!(next, "0-0");
        assert_eq!(entries.iter().map(|e| &e.id).collect::<Vec<_>>(), [&id2]);
        assert!(deleted.is_empty());

        let info: HashMap<String, Value> = c.xinfo_stream(&s).unwrap();
        assert_eq!(info["length"].as_int(), Some(2));
        let groups: Vec<HashMap<String, Value>> = c.xinfo_groups(&s).unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0]["pending"].as_int(), Some(1));
        let consumers: Vec<HashMap<String, Value>> = c.xinfo_consumers(&s, "g").unwrap();
        assert_eq!(consumers.len(), 3);
        c.xgroup_setid(&s, "g", "0").unwrap();
        assert_eq!(c.xgroup_delconsumer(&s, "g", "carol").unwrap(), 1);
        assert!(c.xgroup_destroy(&s, "g").unwrap());
        assert!(!c.xgroup_destroy(&s, "g").unwrap());

        // The same vocabulary in a pipeline.
        let (len, entries): (u64, Vec<StreamEntry>) = pipe()
            .xlen(&s)
            .xrange_count(&s, "-", "+", 1)
            .query(c)
            .unwrap();
        assert_eq!((len, entries[0].id.as_str()), (2, id1.as_str()));
    });
}
