//! Valkey Cluster against a real 3-primary + 3-replica cluster from the test kit: slot
//! routing, the client-side cross-slot check, pipelines split by node, scripts with
//! NOSCRIPT per node, fan-out commands, SCAN over every primary, replica reads that land
//! on replicas, the patterns (cache, lock, limiter, queue) on a cluster, a live slot
//! migration under load, a failover and a killed primary.
#![cfg(all(feature = "testkit", feature = "json"))]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::key;
use valkit::testkit::{Cluster, ClusterOptions};
use valkit::{
    cmd, key_slot, pipe, Backoff, Client, Commands, Connection, ErrorKind, Execute, ReplicaReads,
    RetryPolicy, ScanOptions, Script, ServerErrorKind, Value,
};

fn cluster() -> &'static Cluster {
    support::cluster()
}

fn client() -> Client {
    Client::builder()
        .cluster(cluster().urls().iter().map(String::as_str).take(2))
        .build()
        .unwrap()
}

fn node_conn(port: u16) -> Connection {
    Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port)).unwrap()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// `cmdstat_<name>` calls on the node at `port`.
fn calls(port: u16, name: &str) -> u64 {
    let info: String = node_conn(port)
        .query(&cmd("INFO").arg("commandstats"))
        .unwrap();
    let prefix = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn testkit_cluster_is_ready_with_three_primaries_and_three_replicas() {
    let c = cluster();
    assert_eq!(c.nodes().len(), 6);
    // The cluster is made of the server VALKIT_CLUSTER_KIND asks for (Valkey by default).
    let info: String = node_conn(c.nodes()[0].port())
        .query(&cmd("INFO").arg("server"))
        .unwrap();
    assert_eq!(
        info.contains("valkey_version:"),
        support::cluster_kind() == valkit::testkit::ServerKind::Valkey,
        "{info}"
    );
    assert_eq!(c.primary_ports().unwrap().len(), 3);
    assert_eq!(c.replica_ports().unwrap().len(), 3);
    for n in c.nodes() {
        assert_ne!(
            n.cluster_port(),
            n.port() + 10000,
            "bus port set explicitly"
        );
        assert_eq!(n.id().len(), 40);
    }
}

#[test]
fn keys_land_on_the_primary_of_their_slot_and_every_primary_gets_some() {
    let client = client();
    assert!(client.is_cluster());
    let p = key("routing");
    let mut nodes = HashSet::new();
    for i in 0..200 {
        let k = format!("{p}{i}");
        client.set(&k, i).unwrap();
        let addr = client.cluster_node_for(k.as_bytes()).unwrap();
        // Read straight from that node (no routing): the key is there.
        let v: Option<i64> = node_conn(port_of(&addr)).get(&k).unwrap();
        assert_eq!(
            v,
            Some(i),
            "{k} (slot {}) on {addr}",
            key_slot(k.as_bytes())
        );
        nodes.insert(addr);
    }
    assert_eq!(nodes.len(), 3, "200 keys spread over the 3 primaries");
    for i in 0..200 {
        let v: Option<i64> = client.get(format!("{p}{i}")).unwrap();
        assert_eq!(v, Some(i));
    }
}

#[test]
fn multi_key_commands_need_one_slot_and_fail_before_sending() {
    let client = client();
    let p = key("crossslot");
    let (a, b) = (format!("{p}a"), format!("{p}b-other"));
    assert_ne!(key_slot(a.as_bytes()), key_slot(b.as_bytes()));
    let before = client.metrics().commands_total();
    let e = client.exec(&cmd("MGET").arg(&a).arg(&b)).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::CrossSlot),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was sent"), "{e}");
    assert!(
        client.metrics().commands_total() > before,
        "counted as a failed call"
    );
    // With a hash tag they share a slot.
    let (a, b) = (format!("{{{p}}}a"), format!("{{{p}}}b"));
    client
        .exec(&cmd("MSET").arg(&a).arg(1).arg(&b).arg(2))
        .unwrap();
    let v: Vec<i64> = client.query(&cmd("MGET").arg(&a).arg(&b)).unwrap();
    assert_eq!(v, vec![1, 2]);
    // A transaction across slots is refused; within one slot it runs.
    let tx = pipe()
        .cmd(cmd("SET").arg(format!("{p}x")).arg(1))
        .cmd(cmd("SET").arg(format!("{p}y-elsewhere")).arg(2))
        .atomic();
    if key_slot(format!("{p}x").as_bytes()) != key_slot(format!("{p}y-elsewhere").as_bytes()) {
        let e = client.exec_pipeline(&tx).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::CrossSlot));
    }
    let tx = pipe()
        .cmd(cmd("INCR").arg(&a))
        .cmd(cmd("INCR").arg(&b))
        .atomic();
    let v: (i64, i64) = tx.query(&client).unwrap();
    assert_eq!(v, (2, 3));
}

#[test]
fn pipelines_split_by_node_and_replies_come_back_in_order() {
    let client = client();
    let p = key("pipe");
    let mut w = pipe();
    for i in 0..300 {
        w.add(cmd("SET").arg(format!("{p}{i}")).arg(i));
    }
    let replies = client.exec_pipeline(&w).unwrap();
    assert_eq!(replies.len(), 300);
    let mut r = pipe();
    for i in 0..300 {
        r.add(cmd("GET").arg(format!("{p}{i}")));
        r.add(cmd("PING")); // keyless commands ride along
    }
    let replies = client.exec_pipeline(&r).unwrap();
    for i in 0..300 {
        assert_eq!(
            replies[2 * i].as_bytes(),
            Some(i.to_string().as_bytes()),
            "reply {i}"
        );
    }
    let all: Vec<Option<i64>> = {
        let mut q = pipe();
        for i in 0..300 {
            q.add(cmd("GET").arg(format!("{p}{i}")));
        }
        q.query(&client).unwrap()
    };
    assert_eq!(all, (0..300).map(Some).collect::<Vec<_>>());
}

#[test]
fn scripts_run_on_the_node_of_their_keys_with_noscript_fallback_per_node() {
    let client = client();
    let p = key("script");
    let script =
        Script::new("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])");
    // Flush every primary's script cache (fan-out), then run the script on keys of
    // every node: each node answers NOSCRIPT once and gets EVAL.
    client.exec(&cmd("SCRIPT").arg("FLUSH")).unwrap();
    let mut nodes = HashSet::new();
    for i in 0..30 {
        let k = format!("{p}{i}");
        let v: String = script.key(&k).arg(i).invoke_as(&client).unwrap();
        assert_eq!(v, i.to_string());
        nodes.insert(client.cluster_node_for(k.as_bytes()).unwrap());
    }
    assert_eq!(nodes.len(), 3);
    // SCRIPT LOAD fans out: afterwards every primary knows it.
    let other = Script::new("return 7");
    other.script_load(&client).unwrap();
    for port in cluster().primary_ports().unwrap() {
        let known: Vec<i64> = node_conn(port)
            .query(&cmd("SCRIPT").arg("EXISTS").arg(other.sha1_hex()))
            .unwrap();
        assert_eq!(known, vec![1], "primary {port}");
    }
}

#[test]
fn dbsize_sums_and_scan_cluster_sees_every_primary() {
    let client = client();
    let p = key("scan");
    for i in 0..120 {
        client.set(format!("{p}{i}"), i).unwrap();
    }
    let mut found = client.scan_cluster(&format!("{p}*")).unwrap();
    found.sort();
    found.dedup();
    assert_eq!(found.len(), 120);
    // A plain SCAN would see one node's keys only: refused, typed, nothing sent.
    let e = client
        .scan::<String>(ScanOptions::new().pattern(format!("{p}*")))
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("scan_cluster"), "{e}");
    let e = pipe()
        .cmd(cmd("SCAN").arg(0))
        .query::<Value, _>(&client)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    // With a literal hash tag the scan goes to that slot's node and sees all its keys.
    let tag = key("scan-tag");
    for i in 0..30 {
        client.set(format!("{{{tag}}}:{i}"), i).unwrap();
    }
    let tagged: HashSet<String> = client
        .scan(ScanOptions::new().pattern(format!("{{{tag}}}:*")))
        .collect::<valkit::Result<_>>()
        .unwrap();
    assert_eq!(tagged.len(), 30);
    let total: i64 = client.query(&cmd("DBSIZE")).unwrap();
    let by_node: i64 = cluster()
        .primary_ports()
        .unwrap()
        .into_iter()
        .map(|port| node_conn(port).query::<i64>(&cmd("DBSIZE")).unwrap())
        .sum();
    // Other tests write meanwhile: the two sums are close, and both cover our keys.
    assert!(total >= 120 && by_node >= 120, "{total} {by_node}");
}

#[test]
fn replica_reads_land_on_replicas() {
    let p = key("replica-reads");
    let client = Client::builder()
        .cluster_url(&cluster().url())
        .replica_reads(ReplicaReads::PreferReplica)
        .build()
        .unwrap();
    for i in 0..30 {
        client.set(format!("{p}{i}"), i).unwrap();
    }
    let replicas = cluster().replica_ports().unwrap();
    let primaries = cluster().primary_ports().unwrap();
    // STRLEN: a read no other test uses, so the counts are ours.
    let before_r: u64 = replicas.iter().map(|&p| calls(p, "strlen")).sum();
    let before_p: u64 = primaries.iter().map(|&p| calls(p, "strlen")).sum();
    for i in 0..300 {
        let _: i64 = client
            .query(&cmd("STRLEN").arg(format!("{p}{}", i % 30)))
            .unwrap();
    }
    let on_replicas = replicas.iter().map(|&p| calls(p, "strlen")).sum::<u64>() - before_r;
    let on_primaries = primaries.iter().map(|&p| calls(p, "strlen")).sum::<u64>() - before_p;
    assert_eq!(on_replicas, 300, "every read went to a replica");
    assert_eq!(on_primaries, 0);
    // Writes still go to primaries; a read pinned to the writer too.
    let _: i64 = client
        .query(
            &cmd("STRLEN")
                .arg(format!("{p}0"))
                .read_from(valkit::ReadFrom::Writer),
        )
        .unwrap();
    let on_primaries = primaries.iter().map(|&p| calls(p, "strlen")).sum::<u64>() - before_p;
    assert_eq!(on_primaries, 1);

    // Round robin: primaries and replicas in turn.
    let rr = Client::builder()
        .cluster_url(&cluster().url())
        .replica_reads(ReplicaReads::RoundRobin)
        .build()
        .unwrap();
    let before_r: u64 = replicas.iter().map(|&p| calls(p, "strlen")).sum();
    let before_p: u64 = primaries.iter().map(|&p| calls(p, "strlen")).sum();
    for i in 0..200 {
        let _: i64 = rr
            .query(&cmd("STRLEN").arg(format!("{p}{}", i % 30)))
            .unwrap();
    }
    let r = replicas.iter().map(|&p| calls(p, "strlen")).sum::<u64>() - before_r;
    let q = primaries.iter().map(|&p| calls(p, "strlen")).sum::<u64>() - before_p;
    assert_eq!(r + q, 200);
    assert!((60..=140).contains(&r), "replicas {r}, primaries {q}");
}

#[test]
fn patterns_run_unchanged_on_a_cluster() {
    use valkit::cache::Cache;
    use valkit::limit::{Algorithm, Limiter};
    use valkit::lock::Locks;
    use valkit::queue::{Job, Priority, Queue};

    let client = client();
    let p = key("patterns");

    // Cache: get_or_load, tags, invalidation.
    let cache: Cache<Client> = Cache::builder(client.clone())
        .namespace(&format!("{p}cache"))
        .build()
        .unwrap();
    let loads = Arc::new(AtomicU64::new(0));
    for _ in 0..3 {
        let loads = loads.clone();
        let v: String = cache
            .get_or_load("user:1", Duration::from_secs(60), move || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>("ada".to_owned())
            })
            .unwrap();
        assert_eq!(v, "ada");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    for i in 0..10 {
        cache
            .entry(&format!("price:{i}"), Duration::from_secs(60))
            .tags(["prices"])
            .put(&i)
            .unwrap();
    }
    assert_eq!(cache.invalidate_tag("prices").unwrap(), 10);
    assert!(cache.invalidate("user:1").unwrap());

    // Locks: exclusion, release, fencing.
    let locks = Locks::builder(client.clone())
        .prefix(&format!("{p}lock:"))
        .build();
    let g = locks.acquire("job", Duration::from_secs(5)).unwrap();
    assert!(locks
        .try_acquire("job", Duration::from_secs(5))
        .unwrap()
        .is_none());
    let fence = g.fencing_token();
    g.release().unwrap();
    let g2 = locks
        .try_acquire("job", Duration::from_secs(5))
        .unwrap()
        .expect("free after release");
    assert!(g2.fencing_token() > fence);
    g2.release().unwrap();

    // Limiter: exactly the limit in one window, on keys spread over the cluster.
    let limiter = Limiter::new(
        &format!("{p}rl"),
        Algorithm::fixed_window(5, Duration::from_secs(60)),
    )
    .unwrap();
    for id in ["a", "b", "c", "d"] {
        let allowed = (0..8)
            .filter(|_| limiter.check(&client, id).unwrap().allowed)
            .count();
        assert_eq!(allowed, 5, "id {id}");
    }

    // Queue: push, reserve, ack.
    let queue = Queue::new(client.clone(), &format!("{p}q")).unwrap();
    for i in 0..5 {
        queue
            .push(Priority::High, &Job::new("n", serde_json::json!(i)))
            .unwrap();
    }
    let mut got = Vec::new();
    while let Some(r) = queue.reserve(Duration::from_millis(50)).unwrap() {
        got.push(r.job().payload().as_i64().unwrap());
        queue.ack(&r).unwrap();
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_cache_with_slot_groups_spreads_over_every_shard_and_keeps_tags_and_batches() {
    use std::collections::HashMap;
    use valkit::cache::Cache;

    let client = client();
    let ns = key("cache-groups");
    let cache: Cache<Client> = Cache::builder(client.clone())
        .namespace(&ns)
        .slot_groups(16)
        .build()
        .unwrap();
    let mut nodes = HashSet::new();
    for i in 0..60 {
        let k = format!("item:{i}");
        cache
            .entry(&k, Duration::from_secs(60))
            .tags(["all", if i % 2 == 0 { "even" } else { "odd" }])
            .put(&i)
            .unwrap();
        let full = cache.keyspace().entry(&k);
        nodes.insert(client.cluster_node_for(full.as_bytes()).unwrap());
    }
    assert_eq!(nodes.len(), 3, "one namespace uses every shard");
    // A batch over many slots: one pipeline, split by node.
    let keys: Vec<String> = (0..70).map(|i| format!("item:{i}")).collect();
    let got: Vec<Option<i64>> = cache
        .get_many(&keys, Duration::from_secs(60), |missing: &[String]| {
            assert_eq!(missing.len(), 10, "{missing:?}");
            Ok::<_, String>(
                missing
                    .iter()
                    .map(|k| (k.clone(), -1))
                    .collect::<HashMap<_, _>>(),
            )
        })
        .unwrap();
    assert_eq!(got[..60], (0..60).map(Some).collect::<Vec<_>>()[..]);
    assert_eq!(got[60..], vec![Some(-1); 10][..]);
    // Tags are kept per group and invalidated in every group.
    assert_eq!(cache.invalidate_tag("even").unwrap(), 30);
    let left: Vec<Option<i64>> = cache
        .get_many(
            &keys[..60],
            Duration::from_secs(60),
            |missing: &[String]| {
                assert_eq!(missing.len(), 30);
                Ok::<_, String>(HashMap::new())
            },
        )
        .unwrap();
    assert_eq!(left.iter().filter(|v| v.is_some()).count(), 30);
    // A pattern scans every group, each on the node of its slot: the 30 odd entries, the
    // 10 loaded by the first batch and the 30 tombstones the second batch left.
    assert_eq!(cache.invalidate_pattern("item:*").unwrap(), 70);
    let left = client.scan_cluster(&format!("*{ns}*")).unwrap();
    assert!(
        left.iter()
            .all(|k| String::from_utf8_lossy(k).contains("#tag:")),
        "only tag sets are left"
    );
}

/// Move `slot` from its owner to another primary with SETSLOT IMPORTING/MIGRATING and
/// MIGRATE, in batches, then assign it: the classic live resharding steps.
fn migrate_slot(c: &Cluster, slot: u16, owner: u16, batch_pause: Duration) -> u16 {
    let primaries = c.primary_ports().unwrap();
    let target = primaries.iter().copied().find(|&p| p != owner).unwrap();
    let id = |port: u16| -> String { node_conn(port).query(&cmd("CLUSTER").arg("MYID")).unwrap() };
    let (src, dst) = (node_conn(owner), node_conn(target));
    let (src_id, dst_id) = (id(owner), id(target));
    let _: Value = dst
        .exec(
            &cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("IMPORTING")
                .arg(&src_id),
        )
        .unwrap();
    let _: Value = src
        .exec(
            &cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("MIGRATING")
                .arg(&dst_id),
        )
        .unwrap();
    loop {
        let keys: Vec<Vec<u8>> = src
            .query(&cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(5))
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let mut m = cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(target)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS");
        for k in &keys {
            m = m.arg(&k[..]);
        }
        src.exec(&m).unwrap();
        std::thread::sleep(batch_pause);
    }
    for port in [target, owner] {
        let _: Value = node_conn(port)
            .exec(
                &cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&dst_id),
            )
            .unwrap();
    }
    for port in primaries
        .iter()
        .copied()
        .filter(|p| *p != owner && *p != target)
    {
        let _: Value = node_conn(port)
            .exec(
                &cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&dst_id),
            )
            .unwrap();
    }
    target
}

#[test]
fn live_slot_migration_under_load_from_four_threads_loses_nothing() {
    let c = cluster();
    let client = client();
    let tag = key("migrate");
    let slot = key_slot(tag.as_bytes());
    // Seed the slot with keys so that MIGRATE has work to do while the load runs.
    for i in 0..200 {
        client.set(format!("{{{tag}}}:seed:{i}"), i).unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop, done, tag) =
                (client.clone(), stop.clone(), done.clone(), tag.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && n < 20_000 {
                    let counter = format!("{{{tag}}}:count:{t}");
                    client
                        .incr(&counter)
                        .unwrap_or_else(|e| panic!("INCR: {e}"));
                    let k = format!("{{{tag}}}:k:{t}:{}", n % 50);
                    client.set(&k, n).unwrap_or_else(|e| panic!("SET: {e}"));
                    let v: Option<u64> = client.get(&k).unwrap_or_else(|e| panic!("GET: {e}"));
                    assert_eq!(v, Some(n));
                    n += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                n
            })
        })
        .collect();
    // Let the load start, move the slot, let it run a little on the new owner.
    while done.load(Ordering::SeqCst) < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let refreshes_before = client.cluster_refreshes();
    let from = port_of(&client.cluster_node_for(tag.as_bytes()).unwrap());
    let to = migrate_slot(c, slot, from, Duration::from_millis(5));
    let after = done.load(Ordering::SeqCst);
    while done.load(Ordering::SeqCst) < after + 400 {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    let counts: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (t, n) in counts.iter().enumerate() {
        let v: Option<i64> = client.get(format!("{{{tag}}}:count:{t}")).unwrap();
        let v = v.unwrap();
        assert_eq!(v as u64, *n, "thread {t}: every INCR applied exactly once");
    }
    for i in 0..200 {
        let v: Option<i64> = client.get(format!("{{{tag}}}:seed:{i}")).unwrap();
        assert_eq!(v, Some(i));
    }
    assert_eq!(
        port_of(&client.cluster_node_for(tag.as_bytes()).unwrap()),
        to,
        "the client learned the new owner (was {from})"
    );
    assert!(client.cluster_refreshes() > refreshes_before);
}

#[test]
fn failover_and_a_killed_primary_give_bounded_typed_errors_then_recover() {
    let mut c = ClusterOptions::new(support::cluster_kind())
        .node_timeout(Duration::from_millis(1000))
        .start()
        .unwrap();
    let client = Client::builder()
        .cluster(c.urls().iter().map(String::as_str))
        .retry(RetryPolicy::new(
            4,
            Backoff::Exponential {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(400),
            },
        ))
        .build()
        .unwrap();
    let p = key("failover");
    let k = format!("{p}k");
    client.set(&k, 1).unwrap();
    let primary = port_of(&client.cluster_node_for(k.as_bytes()).unwrap());

    // 1. A manual failover: the replica of k's primary takes over; writes continue.
    let replica = {
        let id: String = node_conn(primary)
            .query(&cmd("CLUSTER").arg("MYID"))
            .unwrap();
        let nodes: String = node_conn(primary)
            .query(&cmd("CLUSTER").arg("NODES"))
            .unwrap();
        let line = nodes
            .lines()
            .find(|l| l.contains("slave") && l.contains(&id))
            .expect("a replica of the primary")
            .to_owned();
        let addr = line.split(' ').nth(1).unwrap();
        port_of(addr.split('@').next().unwrap())
    };
    let _: Value = node_conn(replica)
        .exec(&cmd("CLUSTER").arg("FAILOVER"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut errors = Vec::new();
    let mut i = 1;
    while Instant::now() < deadline {
        match client.incr(&k) {
            Ok(v) => i = v,
            Err(e) => errors.push(e),
        }
        if port_of(&client.cluster_node_for(k.as_bytes()).unwrap()) == replica && i > 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        port_of(&client.cluster_node_for(k.as_bytes()).unwrap()),
        replica,
        "the client follows the promoted replica"
    );
    assert!(
        errors.len() <= 3,
        "a manual failover costs at most a few errors: {errors:?}"
    );
    let v: Option<i64> = client.get(&k).unwrap();
    let v = v.unwrap();
    assert_eq!(v, i, "no acknowledged INCR lost in a coordinated failover");

    // 2. Kill the new primary: bounded typed errors, then its replica (the old primary)
    // is promoted and the client recovers.
    let node = c
        .nodes_mut()
        .iter_mut()
        .find(|n| n.port() == replica)
        .unwrap();
    node.server_mut().kill();
    let t0 = Instant::now();
    let mut failures = 0;
    let recovered = loop {
        let t = Instant::now();
        match client.set(&k, "after") {
            Ok(()) => break Some(t0.elapsed()),
            Err(e) => {
                failures += 1;
                assert!(
                    e.is_unavailable() || e.is_retryable() || e.kind() == ErrorKind::CircuitOpen,
                    "typed availability error: {e:?}"
                );
            }
        }
        assert!(t.elapsed() < Duration::from_secs(15), "one call is bounded");
        if t0.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let recovered = recovered.expect("the replica took over within 30 s");
    eprintln!("killed primary: {failures} failed calls, recovered after {recovered:?}");
    assert_eq!(
        port_of(&client.cluster_node_for(k.as_bytes()).unwrap()),
        primary
    );
    let v: Option<String> = client.get(&k).unwrap();
    assert_eq!(v.as_deref(), Some("after"));
}

/// A transaction sent with a stale slot map: the queued commands get `MOVED`, the server
/// discards the transaction (`EXECABORT`, nothing applied), and the client must follow the
/// redirect and run the whole transaction on the new owner, not report EXECABORT.
#[test]
fn a_transaction_after_its_slot_moved_follows_the_redirect() {
    let c = cluster();
    let client = client();
    let tag = key("moved-multi");
    let slot = key_slot(tag.as_bytes());
    let (a, b) = (format!("{{{tag}}}:a"), format!("{{{tag}}}:b"));
    client.set(&a, 1).unwrap();
    let from = port_of(&client.cluster_node_for(tag.as_bytes()).unwrap());
    let to = migrate_slot(c, slot, from, Duration::ZERO);
    assert_eq!(
        port_of(&client.cluster_node_for(tag.as_bytes()).unwrap()),
        from,
        "the client's map is still stale (the redirect path is what this test covers)"
    );
    let (x, y): (i64, i64) = pipe()
        .atomic()
        .incr(&a)
        .incr_by(&b, 5)
        .query(&client)
        .unwrap_or_else(|e| panic!("a moved transaction: {e}"));
    assert_eq!((x, y), (2, 5));
    let on_new: Option<i64> = node_conn(to).query(&cmd("GET").arg(&a)).unwrap();
    assert_eq!(on_new, Some(2), "applied once, on the new owner");
}

/// A pipeline split over the nodes sends every node's share before reading any; the share
/// of a node that timed out (read only, idempotent) runs again on its own after a backoff,
/// within the retry budget, while the other shares' replies stand.
#[test]
fn a_split_pipeline_runs_again_the_share_of_a_node_that_timed_out() {
    let c = cluster();
    let seeds: Vec<String> = c
        .urls()
        .iter()
        .take(2)
        .map(|u| format!("{u}?read_timeout=100ms"))
        .collect();
    let client = Client::builder()
        .cluster(seeds.iter().map(String::as_str))
        .retry(RetryPolicy::new(
            3,
            Backoff::Constant(Duration::from_millis(400)),
        ))
        .build()
        .unwrap();
    let p = key("split-timeout");
    let mut w = pipe();
    for i in 0..60 {
        w.add(cmd("SET").arg(format!("{p}{i}")).arg(i));
    }
    client.exec_pipeline(&w).unwrap();
    let nodes: HashSet<String> = (0..60)
        .filter_map(|i| client.cluster_node_for(format!("{p}{i}").as_bytes()))
        .collect();
    assert!(nodes.len() >= 2, "the keys span several nodes: {nodes:?}");
    let slow = port_of(&client.cluster_node_for(format!("{p}0").as_bytes()).unwrap());
    let sleeper = std::thread::spawn(move || {
        let _: Value = node_conn(slow)
            .exec(&cmd("DEBUG").arg("SLEEP").arg("0.4"))
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let mut r = pipe();
    for i in 0..60 {
        r.add(cmd("GET").arg(format!("{p}{i}")));
    }
    let got: Vec<Option<i64>> = r
        .query(&client)
        .unwrap_or_else(|e| panic!("the slow node's share was not run again: {e}"));
    let took = t.elapsed();
    sleeper.join().unwrap();
    assert_eq!(got, (0..60).map(Some).collect::<Vec<_>>());
    assert!(
        took >= Duration::from_millis(100),
        "the slow node's share did time out first: {took:?}"
    );
}

/// `ReadFrom::ReaderWhenInSync` on a cluster: a replica whose replication link is down
/// (here: it cannot authenticate to its primary) is skipped for such reads, which go to the
/// primary and see the last write; plain reads still go to the (stale) replica; once the
/// link is back, the hinted reads return to the replica.
#[test]
fn reader_when_in_sync_skips_a_replica_whose_link_is_down() {
    let c = ClusterOptions::new(support::cluster_kind())
        .primaries(1)
        .replicas(1)
        .start()
        .unwrap();
    let client = Client::builder()
        .cluster(c.urls().iter().map(String::as_str).take(1))
        .replica_reads(ReplicaReads::PreferReplica)
        .build()
        .unwrap();
    let primary = c.primary_ports().unwrap()[0];
    let replica = c.replica_ports().unwrap()[0];
    let link = |port: u16| -> String {
        let info: String = node_conn(port)
            .query(&cmd("INFO").arg("replication"))
            .unwrap();
        info.lines()
            .find_map(|l| {
                l.trim_end()
                    .strip_prefix("master_link_status:")
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let wait_link = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while link(replica) != want {
            assert!(Instant::now() < deadline, "replica link never {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let hinted = |k: &str| -> Option<i64> {
        client
            .query(
                &cmd("GET")
                    .arg(k)
                    .read_from(valkit::ReadFrom::ReaderWhenInSync),
            )
            .unwrap()
    };
    wait_link("up");
    client.set("k", 1).unwrap();
    let _: i64 = node_conn(primary)
        .query(&cmd("WAIT").arg(1).arg(2000))
        .unwrap();

    // Break the link: the replica now sends AUTH to a primary that has no password.
    let r = node_conn(replica);
    let _: Value = r
        .exec(
            &cmd("CONFIG")
                .arg("SET")
                .arg("masterauth")
                .arg("not-the-password"),
        )
        .unwrap();
    let _: Value = r
        .exec(&cmd("CLIENT").arg("KILL").arg("TYPE").arg("master"))
        .unwrap();
    wait_link("down");
    client.set("k", 2).unwrap();
    // Let any earlier "in sync" answer expire (answers are trusted for 1 s).
    std::thread::sleep(Duration::from_millis(1100));
    let plain: Option<i64> = client.get("k").unwrap();
    assert_eq!(
        plain,
        Some(1),
        "plain reads go to the replica, which is stale"
    );
    assert_eq!(
        hinted("k"),
        Some(2),
        "the hinted read skipped the stale replica"
    );

    // Repair the link: hinted reads go back to the replica (seen by its command counter).
    let _: Value = r
        .exec(&cmd("CONFIG").arg("SET").arg("masterauth").arg(""))
        .unwrap();
    wait_link("up");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = calls(replica, "get");
        assert_eq!(hinted("k"), Some(2));
        if calls(replica, "get") > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hinted reads never went back to the replica"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client whose typed pipelines go through values (`Execute::exec_pipeline_replies` not
/// overridden): the oracle the in-place path is checked against.
struct ValuesOnly<'a>(&'a Client);

impl Execute for ValuesOnly<'_> {
    fn exec(&self, c: &valkit::Cmd) -> valkit::Result<Value> {
        self.0.exec(c)
    }
    fn exec_pipeline(&self, p: &valkit::Pipeline) -> valkit::Result<Vec<Value>> {
        self.0.exec_pipeline(p)
    }
}

/// Two of the cluster's seed URLs, naming their connections `name` (`CLIENT LIST`).
fn named_seeds(name: &str) -> Vec<String> {
    cluster()
        .urls()
        .iter()
        .take(2)
        .map(|u| format!("{u}?client_name={name}"))
        .collect()
}

/// Close the connections named `name` on the node at `port` (and only those); how many.
fn kill_named_clients(port: u16, name: &str) -> i64 {
    let admin = node_conn(port);
    let list: String = admin.query(&cmd("CLIENT").arg("LIST")).unwrap();
    let mut killed = 0;
    for line in list.lines() {
        if !line.split(' ').any(|f| f == format!("name={name}")) {
            continue;
        }
        let id = line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap();
        let n: i64 = admin
            .query(&cmd("CLIENT").arg("KILL").arg("ID").arg(id))
            .unwrap();
        killed += n;
    }
    killed
}

/// Keys `{prefix}{i}` for `i` in `0..n`, checked to span every primary.
fn spread_keys(client: &Client, prefix: &str, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let nodes: HashSet<String> = keys
        .iter()
        .filter_map(|k| client.cluster_node_for(k.as_bytes()))
        .collect();
    assert_eq!(nodes.len(), 3, "the keys span every primary: {nodes:?}");
    keys
}

/// `query` on a pipeline split over the nodes, read in place and through values, agree:
/// both `Ok` and equal, or both `Err` of the same kind; and every pooled connection still
/// pairs replies with requests afterwards (a split pipeline of ECHO and GET comes back in
/// order).
fn split_both_ways<T: valkit::FromValue + PartialEq + std::fmt::Debug>(
    client: &Client,
    p: &valkit::Pipeline,
    check: &[String],
) -> valkit::Result<T> {
    let framed = p.query::<T, _>(client);
    let valued = p.query::<T, _>(&ValuesOnly(client));
    match (&framed, &valued) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{p:?}"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{p:?}: {a} / {b}"),
        _ => panic!("{p:?}: in place {framed:?}, values {valued:?}"),
    }
    let mut step = pipe();
    for (i, k) in check.iter().enumerate() {
        step = step.cmd(cmd("ECHO").arg(i)).cmd(cmd("STRLEN").arg(k));
    }
    let echoed: Vec<i64> = step.query(client).unwrap();
    for (i, pair) in echoed.chunks(2).enumerate() {
        assert_eq!(pair[0], i as i64, "still in step: {echoed:?}");
    }
    framed
}

/// Issue 15: typed pipelines on a cluster client read each reply in place, from its node's
/// connection, into its slot of the result, with the single-node path's rules (issue 11):
/// replies in the caller's order, the first server error (in order, whichever node it
/// comes from) winning over a conversion error, ignored replies' errors counted, every
/// reply read (the connections stay in step), commands run once.
#[test]
fn typed_split_pipelines_read_in_place_agree_with_the_value_path() {
    let client = client();
    let p = key("typed-split");
    let keys = spread_keys(&client, &p, 12);
    for (i, k) in keys.iter().enumerate() {
        client.set(k, i as i64).unwrap();
    }
    let (l, big) = (format!("{p}:l"), format!("{p}:big"));
    client.rpush(&l, ["x"]).unwrap();
    let large = vec![b'z'; 200 * 1024];
    client.set(&big, &large[..]).unwrap();
    let missing = format!("{p}:none");

    // Every key, a missing one and a large value, in order.
    let mut all = pipe();
    for k in &keys {
        all = all.get(k);
    }
    let all = all.get(&missing).get(&big);
    let v: Vec<Option<Vec<u8>>> = split_both_ways(&client, &all, &keys).unwrap();
    let mut want: Vec<Option<Vec<u8>>> = (0..keys.len())
        .map(|i| Some(i.to_string().into_bytes()))
        .collect();
    want.extend([None, Some(large.clone())]);
    assert_eq!(v, want);
    // Tuples and keyless commands riding along.
    let t: (i64, Option<String>, Vec<String>, String, i64) = split_both_ways(
        &client,
        &pipe()
            .get(&keys[1])
            .get(&missing)
            .lrange(&l, 0, -1)
            .cmd(cmd("ECHO").arg("e"))
            .get(&keys[2]),
        &keys,
    )
    .unwrap();
    assert_eq!(t, (1, None, vec!["x".to_string()], "e".to_string(), 2));
    // Flat replies pair up two at a time.
    let pairs: Vec<(String, i64)> = split_both_ways(
        &client,
        &pipe()
            .get(&keys[0])
            .get(&keys[1])
            .get(&keys[2])
            .get(&keys[3]),
        &keys,
    )
    .unwrap();
    assert_eq!(pairs, vec![("0".into(), 1), ("2".into(), 3)]);
    // A conversion error first, then a server error (the first in order) on another node:
    // the server error wins; a later one does not replace it.
    let wrongtype = |k: &str| cmd("LPUSH").arg(k).arg("x");
    for at in 1..keys.len() {
        let e = split_both_ways::<Vec<i64>>(
            &client,
            &pipe()
                .lrange(&l, 0, -1)
                .get(&keys[0])
                .cmd(wrongtype(&keys[at]))
                .cmd(cmd("INCRBY").arg(&l).arg(1)),
            &keys,
        )
        .unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::WrongType),
            "{at}: {e}"
        );
    }
    // Two server errors of different kinds, on different nodes: the first in order wins,
    // with or without a conversion error before them.
    let not_an_integer = |k: &str| cmd("INCRBY").arg(k).arg("x");
    for at in 1..keys.len() {
        for conversion_first in [false, true] {
            let mut q = pipe();
            if conversion_first {
                q = q.lrange(&l, 0, -1);
            }
            let q = q
                .get(&keys[0])
                .cmd(wrongtype(&keys[at]))
                .cmd(not_an_integer(&keys[(at + 1) % keys.len()]))
                .cmd(not_an_integer(&keys[(at + 2) % keys.len()]));
            let e = split_both_ways::<Vec<i64>>(&client, &q, &keys).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::Server(ServerErrorKind::WrongType),
                "{at} {conversion_first}: {e}"
            );
        }
    }
    // Only a conversion error.
    let e = split_both_ways::<Vec<i64>>(
        &client,
        &pipe().get(&keys[0]).lrange(&l, 0, -1).get(&keys[5]),
        &keys,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conversion);
    // An ignored reply's error, at the end, on another node than the kept reply.
    let other = keys
        .iter()
        .find(|k| {
            client.cluster_node_for(k.as_bytes()) != client.cluster_node_for(keys[0].as_bytes())
        })
        .unwrap();
    let e = split_both_ways::<(i64,)>(
        &client,
        &pipe().get(&keys[0]).cmd(wrongtype(other)).ignore(),
        &keys,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::WrongType));
    // Commands run once (INCR is not idempotent), ignored replies left out.
    let (a, b): (i64, i64) = pipe()
        .incr(&keys[3])
        .ignore()
        .incr(&keys[4])
        .incr(&keys[5])
        .ignore()
        .get(&keys[3])
        .query(&client)
        .unwrap();
    assert_eq!((a, b), (5, 4));
    assert_eq!(client.query::<i64>(&cmd("GET").arg(&keys[5])).unwrap(), 6);
    // Wrong tuple size: every reply still read.
    let e = split_both_ways::<(i64, i64)>(
        &client,
        &pipe().get(&keys[0]).get(&keys[1]).get(&keys[2]),
        &keys,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conversion);
    // A long one, in order, keyless commands between.
    let mut long = pipe();
    for i in 0..3000 {
        long = long.get(&keys[i % keys.len()]).cmd(cmd("ECHO").arg(i));
    }
    let got: Vec<i64> = split_both_ways(&client, &long, &keys).unwrap();
    let want_long: Vec<i64> = (0..3000)
        .flat_map(|i| {
            let k = i % keys.len();
            // keys[3..6] were incremented once above.
            let v = if (3..6).contains(&k) {
                k as i64 + 1
            } else {
                k as i64
            };
            [v, i as i64]
        })
        .collect();
    assert_eq!(got, want_long);
}

/// A split pipeline whose map is stale for one slot (moved to another node under the
/// client's feet): the commands of that slot get MOVED inside their node's share; each is
/// followed on its own, its reply read in place from the new owner, in the caller's order,
/// and a non-idempotent command runs once. Then the same with the slot half-way through a
/// migration (ASK for the keys already moved).
#[test]
fn a_split_pipeline_follows_moved_and_ask_per_command_when_read_in_place() {
    let c = cluster();
    let client = client();
    let p = key("split-moved");
    let keys = spread_keys(&client, &p, 12);
    for (i, k) in keys.iter().enumerate() {
        client.set(k, i as i64).unwrap();
    }
    let tag = key("split-moved-tag");
    let slot = key_slot(tag.as_bytes());
    let (a, b) = (format!("{{{tag}}}:a"), format!("{{{tag}}}:b"));
    client.set(&a, 10).unwrap();
    client.set(&b, 20).unwrap();
    let from = port_of(&client.cluster_node_for(tag.as_bytes()).unwrap());

    // ASK: the slot migrating, `a` already on the importing node, `b` not yet.
    let primaries = c.primary_ports().unwrap();
    let to = primaries.iter().copied().find(|&p| p != from).unwrap();
    let id = |port: u16| -> String { node_conn(port).query(&cmd("CLUSTER").arg("MYID")).unwrap() };
    let setslot = |port: u16, state: &str, node: &str| {
        let _: Value = node_conn(port)
            .exec(&cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(node))
            .unwrap();
    };
    setslot(to, "IMPORTING", &id(from));
    setslot(from, "MIGRATING", &id(to));
    let _: Value = node_conn(from)
        .exec(
            &cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg(&a)
                .arg(0)
                .arg(5000),
        )
        .unwrap();
    let mixed = |first: &str, second: &str| {
        let mut q = pipe();
        for k in &keys[..6] {
            q = q.get(k);
        }
        q = q.incr(first).get(second);
        for k in &keys[6..] {
            q = q.get(k);
        }
        q
    };
    let before = calls(to, "asking");
    let got: Vec<i64> = mixed(&a, &b)
        .query(&client)
        .unwrap_or_else(|e| panic!("ASK inside a split pipeline: {e}"));
    let mut want: Vec<i64> = (0..6).collect();
    want.extend([11, 20]);
    want.extend(6..12);
    assert_eq!(got, want);
    assert!(
        calls(to, "asking") > before,
        "the ASK redirect was followed"
    );

    // MOVED: the migration finished, the client's map still says `from`.
    let _: Value = node_conn(from)
        .exec(
            &cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg(&b)
                .arg(0)
                .arg(5000),
        )
        .unwrap();
    let to_id = id(to);
    let others = primaries.iter().copied().filter(|&p| p != from && p != to);
    for port in [to, from].into_iter().chain(others) {
        setslot(port, "NODE", &to_id);
    }
    assert_eq!(
        port_of(&client.cluster_node_for(tag.as_bytes()).unwrap()),
        from,
        "the client's map is still stale (the redirect path is what this test covers)"
    );
    let got: Vec<i64> = mixed(&b, &a)
        .query(&client)
        .unwrap_or_else(|e| panic!("MOVED inside a split pipeline: {e}"));
    let mut want: Vec<i64> = (0..6).collect();
    want.extend([21, 11]);
    want.extend(6..12);
    assert_eq!(got, want);
    let on_new: Option<i64> = node_conn(to).query(&cmd("GET").arg(&b)).unwrap();
    assert_eq!(on_new, Some(21), "applied once, on the new owner");
    // The value path agrees (and the connections are in step after both).
    let got: Vec<i64> = mixed(&b, &a).query(&ValuesOnly(&client)).unwrap();
    want[6] = 22;
    assert_eq!(got, want);
}

/// A split pipeline read in place whose share fails mid-way on one node (a command there
/// outlives the read timeout; it is not idempotent, so nothing runs again): the typed query
/// fails with the timeout, as the value path does, and every other node's connection is
/// read to its end, so the client's next pipelines pair replies correctly.
#[test]
fn a_split_pipeline_failing_mid_share_fails_whole_and_leaves_connections_in_step() {
    let c = cluster();
    let seeds: Vec<String> = c
        .urls()
        .iter()
        .take(2)
        .map(|u| format!("{u}?read_timeout=150ms"))
        .collect();
    let client = Client::builder()
        .cluster(seeds.iter().map(String::as_str))
        .build()
        .unwrap();
    let p = key("split-midway");
    let keys = spread_keys(&client, &p, 12);
    for (i, k) in keys.iter().enumerate() {
        client.set(k, i as i64).unwrap();
    }
    for through_values in [false, true] {
        // Keyless commands join the first node's share: DEBUG SLEEP sits in the middle of it.
        let mut q = pipe();
        for k in &keys {
            q = q.get(k);
        }
        q = q.cmd(cmd("DEBUG").arg("SLEEP").arg("0.3"));
        for k in &keys {
            q = q.get(k);
        }
        let r = if through_values {
            q.query::<Vec<i64>, _>(&ValuesOnly(&client))
        } else {
            q.query::<Vec<i64>, _>(&client)
        };
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{through_values}: {e}");
        std::thread::sleep(Duration::from_millis(300));
        let mut q = pipe();
        for (i, k) in keys.iter().enumerate() {
            q = q.get(k).cmd(cmd("ECHO").arg(i + 100));
        }
        let got: Vec<i64> = q.query(&client).unwrap();
        let want: Vec<i64> = (0..keys.len())
            .flat_map(|i| [i as i64, i as i64 + 100])
            .collect();
        assert_eq!(got, want, "{through_values}: in step afterwards");
    }
}

/// A split pipeline whose shares all run again if they fail (idempotent, retries left)
/// takes recently returned connections without the socket check, as the single-node
/// client does (`PoolOptions::skip_check_when_resendable`): when a node closed them, the
/// share fails on its connection and runs again (one retry counted) and the caller gets
/// every reply, read in place or through values. A share that must not run twice (INCR)
/// is checked first, so it goes out on a live connection and is applied once.
#[test]
fn split_pipelines_skip_the_socket_check_only_for_shares_that_can_run_again() {
    let name = key("split-unchecked").replace(':', "-");
    let seeds = named_seeds(&name);
    let client = Client::builder()
        .cluster(seeds.iter().map(String::as_str))
        // No maintenance thread (it would notice the closed connections first), and a
        // window no slow machine outlasts between two pipelines.
        .pool(
            valkit::PoolOptions::new()
                .max_idle_time(None)
                .max_lifetime(None)
                .skip_check_when_resendable(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let p = key("split-unchecked");
    let keys = spread_keys(&client, &p, 12);
    for (i, k) in keys.iter().enumerate() {
        client.set(k, i as i64).unwrap();
    }
    let node = port_of(&client.cluster_node_for(keys[0].as_bytes()).unwrap());
    // Close this client's connections on `node` (and only those).
    let kill_ours = || {
        let killed = kill_named_clients(node, &name);
        assert!(killed >= 1, "the client's pooled connection on {node}");
        // Let the FIN reach the client's sockets.
        std::thread::sleep(Duration::from_millis(20));
    };
    let gets = || {
        let mut q = pipe();
        for k in &keys {
            q = q.get(k);
        }
        q
    };
    let want: Vec<i64> = (0..keys.len() as i64).collect();
    for through_values in [false, true] {
        let warm: Vec<i64> = gets().query(&client).unwrap();
        assert_eq!(warm, want);
        kill_ours();
        let before = client.metrics().retries_total();
        let got: Vec<i64> = if through_values {
            gets().query(&ValuesOnly(&client)).unwrap()
        } else {
            gets().query(&client).unwrap()
        };
        assert_eq!(got, want, "{through_values}");
        assert_eq!(
            client.metrics().retries_total(),
            before + 1,
            "{through_values}: the share went out unchecked on the closed connection, then again"
        );
    }
    // Not idempotent: checked, applied once, no retry.
    let warm: Vec<i64> = gets().query(&client).unwrap();
    assert_eq!(warm, want);
    kill_ours();
    let before = client.metrics().retries_total();
    let mut incrs = pipe();
    for k in &keys {
        incrs = incrs.incr(k);
    }
    let got: Vec<i64> = incrs
        .query(&client)
        .unwrap_or_else(|e| panic!("a checked share: {e}"));
    assert_eq!(got, (1..=keys.len() as i64).collect::<Vec<_>>());
    assert_eq!(client.metrics().retries_total(), before, "no retry");
}

/// A single command that may be resent (GET: idempotent, retries left) takes a recently
/// returned connection without the socket check, as on a single server: two system calls
/// per GET instead of five. When the node closed that connection meanwhile, the GET is
/// resent on a checked connection (one retry counted) and the slot map is not refreshed: a
/// connection closed while idle says nothing of the topology. A command that must not run
/// twice (INCR) is checked first: applied once, no retry.
#[test]
fn single_commands_skip_the_socket_check_when_resendable_without_a_map_refresh() {
    let name = key("single-unchecked").replace(':', "-");
    let seeds = named_seeds(&name);
    let client = Client::builder()
        .cluster(seeds.iter().map(String::as_str))
        // No periodic refresh during the test, no maintenance thread (it would notice the
        // closed connection first), and a window no slow machine outlasts.
        .cluster_refresh_interval(Duration::from_secs(3600))
        .pool(
            valkit::PoolOptions::new()
                .max_size(1)
                .max_idle_time(None)
                .max_lifetime(None)
                .skip_check_when_resendable(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let k = key("single-unchecked:k");
    client.set(&k, 7).unwrap();
    let node = port_of(&client.cluster_node_for(k.as_bytes()).unwrap());
    let kill_ours = || {
        let killed = kill_named_clients(node, &name);
        assert_eq!(killed, 1, "the client's one pooled connection on {node}");
        // Let the FIN reach the client's socket, and the last refresh grow older than the
        // client's minimum gap between refreshes (50 ms): a refresh asked for would run.
        std::thread::sleep(Duration::from_millis(100));
    };
    for round in 0..2 {
        let warm: Option<i64> = client.get(&k).unwrap();
        assert_eq!(warm, Some(7));
        kill_ours();
        let (retries, refreshes) = (client.metrics().retries_total(), client.cluster_refreshes());
        let v: Option<i64> = client.get(&k).unwrap();
        assert_eq!(v, Some(7), "round {round}");
        assert_eq!(
            client.metrics().retries_total(),
            retries + 1,
            "round {round}: the GET went out unchecked on the closed connection, then again"
        );
        assert_eq!(
            client.cluster_refreshes(),
            refreshes,
            "round {round}: a connection closed while idle is not a topology change"
        );
    }
    kill_ours();
    let retries = client.metrics().retries_total();
    let n: i64 = client.incr(&k).unwrap();
    assert_eq!(n, 8, "applied once");
    assert_eq!(
        client.metrics().retries_total(),
        retries,
        "checked: no retry"
    );
}

#[test]
fn scan_cluster_iter_walks_every_primary_batch_by_batch_with_the_options() {
    let client = client();
    let p = key("scan-iter");
    let mut on_node = HashSet::new();
    for i in 0..90 {
        let k = format!("{p}s{i}");
        on_node.insert(client.cluster_node_for(k.as_bytes()).unwrap());
        client.set(&k, i).unwrap();
    }
    for i in 0..30 {
        client.hset(format!("{p}h{i}"), ("f", i)).unwrap();
    }
    assert_eq!(on_node.len(), 3, "the keys cover every primary");
    // Small batches: many SCAN round trips per node, one batch held at a time.
    let mut scan =
        client.scan_cluster_iter::<String>(ScanOptions::new().pattern(format!("{p}*")).count(7));
    let first = scan.next().unwrap().unwrap();
    assert!(first.starts_with(&p), "{first}");
    let mut all: HashSet<String> = scan.collect::<valkit::Result<_>>().unwrap();
    all.insert(first);
    assert_eq!(all.len(), 120);
    // The TYPE filter reaches every node.
    let hashes: HashSet<String> = client
        .scan_cluster_iter(ScanOptions::new().pattern(format!("{p}*")).type_("hash"))
        .collect::<valkit::Result<_>>()
        .unwrap();
    assert_eq!(hashes.len(), 30);
    assert!(hashes.iter().all(|k| k.starts_with(&format!("{p}h"))));
    // Nothing matches: the walk ends on every node and yields nothing.
    assert_eq!(
        client
            .scan_cluster_iter::<Vec<u8>>(ScanOptions::new().pattern(format!("{p}none*")))
            .count(),
        0
    );
}

/// Counts the retries the client reports.
struct RetryCount(Arc<AtomicU64>);

impl valkit::Observer for RetryCount {
    fn on_command(&self, _: &valkit::CommandEvent<'_>) {}

    fn on_retry(&self, _: &str, _: &valkit::Error, _: Duration) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Regression: `exec_on_node` (and the fan-out and cluster scan under it) ran its own
/// retry loop: it retried a `MOVED` on the same node after a backoff, never asked the
/// node's circuit breaker, and reported no retries.
#[test]
fn exec_on_node_answers_a_redirect_at_once_and_asks_the_node_breaker() {
    let retries = Arc::new(AtomicU64::new(0));
    let client = Client::builder()
        .cluster(cluster().urls().iter().map(String::as_str).take(2))
        .retry(RetryPolicy::new(
            4,
            Backoff::Constant(Duration::from_millis(300)),
        ))
        .breaker(valkit::BreakerOptions::default().failure_threshold(2))
        .observer(RetryCount(Arc::clone(&retries)))
        .build()
        .unwrap();
    let k = key("on-node");
    let owner = client.cluster_node_for(k.as_bytes()).unwrap();
    let other = client
        .cluster_primaries()
        .into_iter()
        .find(|a| *a != owner)
        .unwrap();
    let t = Instant::now();
    let e = client
        .exec_on_node(&other, &cmd("GET").arg(&k))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::Moved), "{e}");
    assert_eq!(
        retries.load(Ordering::SeqCst),
        0,
        "a redirect is not retried"
    );
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );

    // A node that refuses connections: its breaker opens after two failed attempts, and
    // the call after that is refused without a connect. The failed attempts are retries
    // the observer sees.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let e = client.exec_on_node(&dead, &cmd("PING")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}");
    assert_eq!(
        retries.load(Ordering::SeqCst),
        2,
        "two connect failures were retried"
    );
    let e = client.exec_on_node(&dead, &cmd("PING")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen, "{e}");
}
