//! Issue 16: pub/sub on a subscriber connection of its own, against real servers (Valkey
//! and Redis, RESP2 and RESP3): order, patterns, sharded channels, a stop from another
//! thread, resubscription after a server restart, a shared RESP3 connection where
//! messages are never taken as replies, keyspace notifications, cache invalidation events.

mod support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{combos, key, kinds, shared};
use valkit::pubsub::{
    enable_keyspace_events, keyspace_pattern, CacheInvalidation, Event, InvalidationScope,
    KeyspaceEvent, Message, Publish, ShardRouter, ShardSubscriber, SubKind, Subscriber,
    SubscriberOptions,
};
use valkit::testkit::{ClusterOptions, ServerKind, ServerOptions};
use valkit::{cmd, Client, Commands, Connection, ConnectionConfig, Execute, Protocol, Value};

fn config(kind: ServerKind, proto: Protocol) -> ConnectionConfig {
    let mut c = shared(kind).config();
    c.protocol = proto;
    c
}

/// The next message, skipping other events; panics after `within`.
/// Take events for `d`; panic on a message or a connection change.
fn expect_quiet(sub: &Subscriber, d: Duration) {
    let until = Instant::now() + d;
    while let Some(ev) = sub.recv(until.saturating_duration_since(Instant::now())) {
        assert!(
            matches!(ev, Event::Subscribed { .. } | Event::Unsubscribed { .. }),
            "{ev:?}"
        );
    }
}

fn next_message(sub: &Subscriber, within: Duration) -> Message {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no message within {within:?}");
        match sub.recv(left) {
            Some(Event::Message(m)) => return m,
            Some(_) => {}
            None => panic!(
                "no message within {within:?} (stopped: {})",
                sub.is_stopped()
            ),
        }
    }
}

#[test]
fn messages_arrive_in_order_on_every_server_and_protocol() {
    for (kind, proto) in combos() {
        let cfg = config(kind, proto);
        let ch = key(&format!("order:{kind:?}:{proto:?}"));
        let sub = Subscriber::open(&cfg).unwrap();
        assert!(sub.client_id() > 0);
        sub.subscribe(&[&ch]).unwrap();
        let publisher = Connection::open(&cfg).unwrap();
        assert_eq!(publisher.pubsub_numsub(&[&ch]).unwrap()[0].1, 1);
        let n = 500;
        for i in 0..n {
            assert_eq!(publisher.publish(&ch, format!("m{i}")).unwrap(), 1);
        }
        for i in 0..n {
            let m = next_message(&sub, Duration::from_secs(5));
            assert_eq!(m.kind, SubKind::Channel);
            assert_eq!(m.channel_str(), ch);
            assert_eq!(m.payload_str(), format!("m{i}"), "{kind:?} {proto:?}");
        }
        // Unsubscribed: nothing more arrives, and the server agrees.
        sub.unsubscribe(&[&ch]).unwrap();
        assert_eq!(publisher.publish(&ch, "late").unwrap(), 0);
        assert_eq!(publisher.pubsub_numsub(&[&ch]).unwrap()[0].1, 0);
    }
}

#[test]
fn pattern_and_sharded_subscriptions() {
    for (kind, proto) in combos() {
        let cfg = config(kind, proto);
        let base = key(&format!("pat:{kind:?}:{proto:?}"));
        let sub = Subscriber::open(&cfg).unwrap();
        sub.psubscribe(&[format!("{base}:*")]).unwrap();
        let shard = format!("{base}-shard");
        sub.ssubscribe(&[&shard]).unwrap();
        let publisher = Connection::open(&cfg).unwrap();
        publisher.publish(format!("{base}:a"), "1").unwrap();
        publisher.publish(format!("{base}-other"), "no").unwrap();
        assert_eq!(publisher.spublish(&shard, "2").unwrap(), 1);
        publisher.publish(format!("{base}:b"), "3").unwrap();
        let m = next_message(&sub, Duration::from_secs(5));
        assert_eq!(m.kind, SubKind::Pattern);
        assert_eq!(m.pattern.as_deref(), Some(format!("{base}:*").as_bytes()));
        assert_eq!(
            (m.channel_str(), m.payload_str()),
            (format!("{base}:a").into(), "1".into())
        );
        let m = next_message(&sub, Duration::from_secs(5));
        assert_eq!((m.kind, m.payload_str()), (SubKind::Shard, "2".into()));
        let m = next_message(&sub, Duration::from_secs(5));
        assert_eq!((m.kind, m.payload_str()), (SubKind::Pattern, "3".into()));
        sub.punsubscribe(&[format!("{base}:*")]).unwrap();
        sub.sunsubscribe(&[&shard]).unwrap();
        assert_eq!(publisher.spublish(&shard, "x").unwrap(), 0);
    }
}

#[test]
fn a_quiet_channel_does_not_break_the_connection() {
    for kind in kinds() {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let mut cfg = config(kind, proto);
            cfg.read_timeout = Some(Duration::from_millis(200));
            let opts = SubscriberOptions {
                ping_after: Duration::from_millis(100),
                ..SubscriberOptions::default()
            };
            let sub = Subscriber::with_options(&cfg, opts).unwrap();
            let ch = key("quiet");
            sub.subscribe(&[&ch]).unwrap();
            // Several read timeouts and pings of silence.
            expect_quiet(&sub, Duration::from_millis(700));
            assert_eq!(sub.reconnects(), 0, "{kind:?} {proto:?}");
            Connection::open(&cfg).unwrap().publish(&ch, "hi").unwrap();
            assert_eq!(
                next_message(&sub, Duration::from_secs(2)).payload_str(),
                "hi"
            );
            assert_eq!(sub.reconnects(), 0);
        }
    }
}

#[test]
fn stop_from_another_thread_ends_a_blocked_reader_within_100ms() {
    let cfg = config(ServerKind::Valkey, Protocol::Resp3);
    let sub = Arc::new(Subscriber::open(&cfg).unwrap());
    sub.subscribe(&[key("stop")]).unwrap();
    assert!(matches!(
        sub.recv(Duration::from_secs(1)),
        Some(Event::Subscribed { .. })
    ));
    let handle = sub.stop_handle();
    let reader = {
        let sub = Arc::clone(&sub);
        thread::spawn(move || {
            let got = sub.recv(Duration::from_secs(30));
            (got, Instant::now())
        })
    };
    thread::sleep(Duration::from_millis(200));
    let stopped_at = Instant::now();
    handle.stop();
    let (got, returned_at) = reader.join().unwrap();
    assert!(got.is_none(), "{got:?}");
    let took = returned_at.duration_since(stopped_at);
    assert!(took < Duration::from_millis(100), "took {took:?}");
    assert!(sub.is_stopped());
    assert!(sub.subscribe(&["x"]).is_err());
    // `recv` returned None: the reader thread ended and dropped its sender.
}

#[test]
fn resubscribes_after_the_server_restarts_and_reports_the_gap() {
    for kind in kinds() {
        let mut server = ServerOptions::new(kind).start().unwrap();
        for proto in [Protocol::Resp3, Protocol::Resp2] {
            let mut cfg = server.config();
            cfg.protocol = proto;
            cfg.connect_timeout = Duration::from_millis(500);
            let sub = Subscriber::open(&cfg).unwrap();
            sub.subscribe(&["ch:a"]).unwrap();
            sub.psubscribe(&["pat:*"]).unwrap();
            let first_id = sub.client_id();
            server.restart().unwrap();
            let until = Instant::now() + Duration::from_secs(10);
            let (mut lost, mut back) = (false, None);
            while back.is_none() && Instant::now() < until {
                match sub.recv(Duration::from_millis(200)) {
                    Some(Event::Disconnected { reason }) => {
                        assert!(!reason.is_empty());
                        lost = true;
                    }
                    Some(Event::Reconnected { gap, resubscribed }) => {
                        back = Some((gap, resubscribed))
                    }
                    _ => {}
                }
            }
            assert!(lost, "{kind:?} {proto:?}: no Disconnected event");
            let (gap, resubscribed) = back.expect("no Reconnected event");
            assert_eq!(resubscribed, 2);
            assert!(gap < Duration::from_secs(10));
            assert_eq!(sub.reconnects(), 1);
            let publisher = Connection::open(&cfg).unwrap();
            // The resubscription is confirmed asynchronously: wait for both.
            let until = Instant::now() + Duration::from_secs(5);
            while publisher.pubsub_numsub(&["ch:a"]).unwrap()[0].1 == 0
                || publisher.pubsub_numpat().unwrap() == 0
            {
                assert!(Instant::now() < until, "not resubscribed");
                thread::sleep(Duration::from_millis(10));
            }
            assert!(sub.client_id() > 0 && first_id > 0);
            publisher.publish("ch:a", "after").unwrap();
            publisher.publish("pat:1", "p").unwrap();
            let m = next_message(&sub, Duration::from_secs(5));
            assert_eq!(m.payload_str(), "after");
            let m = next_message(&sub, Duration::from_secs(5));
            assert_eq!((m.kind, m.payload_str()), (SubKind::Pattern, "p".into()));
        }
    }
}

#[test]
fn no_message_is_taken_as_a_reply_on_a_shared_resp3_connection() {
    for kind in kinds() {
        let cfg = config(kind, Protocol::Resp3);
        let sub = Arc::new(Subscriber::open(&cfg).unwrap());
        let ch = key("shared");
        sub.subscribe(&[&ch]).unwrap();
        let n = 300;
        let worker = {
            let sub = Arc::clone(&sub);
            thread::spawn(move || {
                for i in 0..n {
                    let v = sub.exec(&cmd("ECHO").arg(format!("reply-{i}"))).unwrap();
                    assert_eq!(v, Value::Bulk(format!("reply-{i}").into()), "reply {i}");
                }
            })
        };
        let publisher = Connection::open(&cfg).unwrap();
        for i in 0..n {
            publisher.publish(&ch, format!("m{i}")).unwrap();
        }
        worker.join().unwrap();
        for i in 0..n {
            assert_eq!(
                next_message(&sub, Duration::from_secs(5)).payload_str(),
                format!("m{i}")
            );
        }
        // On RESP2 the subscriber's connection cannot run ordinary commands.
        let sub2 = Subscriber::open(&config(kind, Protocol::Resp2)).unwrap();
        let e = sub2.exec(&cmd("PING")).unwrap_err();
        assert_eq!(e.kind(), valkit::ErrorKind::Unsupported);
    }
}

#[test]
fn tracking_pushes_on_a_shared_resp3_connection_are_never_replies() {
    for kind in kinds() {
        let cfg = config(kind, Protocol::Resp3);
        let conn = Connection::open(&cfg).unwrap();
        let other = Connection::open(&cfg).unwrap();
        let k = key("tracked");
        conn.exec(&cmd("CLIENT").arg("TRACKING").arg("ON")).unwrap();
        for i in 0..200 {
            other.exec(&cmd("SET").arg(&k).arg(i)).unwrap();
            let v = conn.exec(&cmd("GET").arg(&k)).unwrap();
            assert_eq!(v, Value::Bulk(i.to_string().into()));
        }
        let pushes = conn.take_pushes();
        assert!(!pushes.is_empty());
        assert!(pushes
            .iter()
            .all(|p| matches!(p, Value::Push { kind, .. } if kind == "invalidate")));
    }
}

#[test]
fn keyspace_notifications_are_typed() {
    for kind in kinds() {
        let server = ServerOptions::new(kind).start().unwrap();
        let cfg = server.config();
        let conn = Connection::open(&cfg).unwrap();
        enable_keyspace_events(&conn, "KEA").unwrap();
        let sub = Subscriber::open(&cfg).unwrap();
        sub.psubscribe(&[keyspace_pattern(0, "user:*")]).unwrap();
        conn.exec(&cmd("SET").arg("user:1").arg("a")).unwrap();
        conn.exec(&cmd("SET").arg("other").arg("a")).unwrap();
        conn.exec(&cmd("DEL").arg("user:1")).unwrap();
        let e = KeyspaceEvent::parse(&next_message(&sub, Duration::from_secs(5))).unwrap();
        assert_eq!(
            (e.db, &e.key[..], e.event.as_str()),
            (0, &b"user:1"[..], "set")
        );
        let e = KeyspaceEvent::parse(&next_message(&sub, Duration::from_secs(5))).unwrap();
        assert_eq!(e.event, "del");
        expect_quiet(&sub, Duration::from_millis(100));
    }
}

#[test]
fn the_cache_publishes_invalidations_and_a_listener_reads_them() {
    for kind in kinds() {
        let cfg = config(kind, Protocol::Resp3);
        let ns = key("events-cache");
        let cache =
            valkit::cache::Cache::new(Arc::new(Connection::open(&cfg).unwrap()), &ns).unwrap();
        let sub = Subscriber::open(&cfg).unwrap();
        sub.subscribe(&[cache.keyspace().channel()]).unwrap();
        cache
            .entry("p:1", Duration::from_secs(60))
            .tags(["catalog"])
            .put(&"lamp".to_string())
            .unwrap();
        cache.invalidate("p:1").unwrap();
        cache.invalidate_tag("catalog").unwrap();
        let got: Vec<CacheInvalidation> = (0..2)
            .map(|_| CacheInvalidation::parse(&next_message(&sub, Duration::from_secs(5))).unwrap())
            .collect();
        assert_eq!(got[0].scope, InvalidationScope::Key);
        assert_eq!(got[0].name, "p:1");
        assert_eq!(
            (got[1].scope, got[1].name.as_str()),
            (InvalidationScope::Tag, "catalog")
        );
    }
}

// ---- Sharded pub/sub on a cluster (ShardSubscriber) ----

fn node_conn(port: u16) -> Connection {
    Connection::open(&ConnectionConfig::new("127.0.0.1", port)).unwrap()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// A shard channel (`{prefix-N}`) whose slot the primary at `addr` serves.
fn channel_on(client: &Client, prefix: &str, addr: &str) -> String {
    (0..10_000)
        .map(|i| format!("{{{prefix}-{i}}}"))
        .find(|c| client.cluster_node_for(c.as_bytes()).as_deref() == Some(addr))
        .unwrap_or_else(|| panic!("no channel of {prefix} on {addr}"))
}

/// Take events until `want` messages arrived (bounded by `within`); the messages in
/// arrival order and the other events.
fn take_messages(
    sub: &ShardSubscriber,
    want: usize,
    within: Duration,
) -> (Vec<Message>, Vec<Event>) {
    let until = Instant::now() + within;
    let (mut msgs, mut other) = (Vec::new(), Vec::new());
    while msgs.len() < want {
        let left = until.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{} of {want} messages within {within:?}; events {other:?}",
            msgs.len()
        );
        match sub.recv(left) {
            Some(Event::Message(m)) => msgs.push(m),
            Some(ev) => other.push(ev),
            None => {}
        }
    }
    (msgs, other)
}

/// Each channel's payloads, in arrival order, must be 0, 1, 2, ... (no reordering).
fn assert_in_order(msgs: &[Message], channels: &[String], per_channel: usize) {
    for ch in channels {
        let got: Vec<usize> = msgs
            .iter()
            .filter(|m| m.channel_str() == *ch)
            .map(|m| m.payload_str().parse().unwrap())
            .collect();
        assert_eq!(got, (0..per_channel).collect::<Vec<_>>(), "{ch}");
    }
}

/// The node id (`CLUSTER MYID`) of the node at `port`.
fn node_id(port: u16) -> String {
    node_conn(port).query(&cmd("CLUSTER").arg("MYID")).unwrap()
}

/// Give `slot` (which holds no keys) to the primary at `to`: IMPORTING/MIGRATING, then
/// SETSLOT NODE on every primary, the new owner first.
fn move_slot(primaries: &[u16], slot: u16, from: u16, to: u16) {
    let (from_id, to_id) = (node_id(from), node_id(to));
    let setslot = |port: u16, args: &[&str]| {
        let mut c = cmd("CLUSTER").arg("SETSLOT").arg(slot);
        for a in args {
            c = c.arg(*a);
        }
        node_conn(port).exec(&c).unwrap();
    };
    setslot(to, &["IMPORTING", &from_id]);
    setslot(from, &["MIGRATING", &to_id]);
    setslot(to, &["NODE", &to_id]);
    setslot(from, &["NODE", &to_id]);
    for p in primaries.iter().copied().filter(|p| *p != from && *p != to) {
        setslot(p, &["NODE", &to_id]);
    }
}

/// Publish on `channel` every 100 ms until the subscriber reported the channel moved
/// ([`Event::ShardMoved`]) and then got a message there; bounded. The events seen.
fn publish_until_moved(client: &Client, sub: &ShardSubscriber, channel: &str) -> Vec<Event> {
    let until = Instant::now() + Duration::from_secs(15);
    let mut events = Vec::new();
    let mut moved = false;
    loop {
        assert!(
            Instant::now() < until,
            "no move and message on {channel}: {events:?}"
        );
        let _ = client.spublish(channel, "after");
        while let Some(ev) = sub.recv(Duration::from_millis(100)) {
            match ev {
                Event::Message(m) if m.channel_str() == channel && m.payload_str() == "after" => {
                    if moved {
                        return events;
                    }
                }
                Event::Message(_) => {}
                other => {
                    moved |= matches!(&other, Event::ShardMoved { channel: c, .. } if c[..] == *channel.as_bytes());
                    events.push(other);
                }
            }
        }
    }
}

#[test]
fn shard_subscriber_on_a_cluster_follows_moves_and_failovers() {
    let kind = ServerKind::Valkey;
    let cluster = valkit::testkit::shared_cluster(kind).unwrap();
    let client = Client::builder()
        .cluster(cluster.urls().iter().map(String::as_str))
        .build()
        .unwrap();
    let primaries = client.cluster_primaries();
    assert_eq!(primaries.len(), 3);
    let prefix = key("shard");
    let channels: Vec<String> = primaries
        .iter()
        .map(|a| channel_on(&client, &prefix, a))
        .collect();

    // 0. A plain Subscriber on the wrong node gets the MOVED refusal at once (not a
    // confirmation timeout), and keeps no subscription for it.
    let wrong =
        Subscriber::open(&ConnectionConfig::new("127.0.0.1", port_of(&primaries[0]))).unwrap();
    let t = Instant::now();
    let e = wrong.ssubscribe(&[&channels[2]]).unwrap_err();
    assert!(e.redirect().is_some(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    drop(wrong);

    // 1. A channel on each primary: one connection per node, every message in order.
    let sub = client.shard_subscriber().unwrap();
    sub.ssubscribe(&channels).unwrap();
    assert_eq!(sub.nodes(), {
        let mut p = primaries.clone();
        p.sort();
        p
    });
    for (ch, addr) in channels.iter().zip(&primaries) {
        assert_eq!(sub.node_of(ch).as_deref(), Some(addr.as_str()));
    }
    let refreshes = client.cluster_refreshes();
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        for ch in &channels {
            assert_eq!(client.spublish(ch, i.to_string()).unwrap(), 1, "{ch}");
        }
    }
    let (msgs, _) = take_messages(&sub, n * 3, Duration::from_secs(10));
    eprintln!("{} shard messages over 3 nodes in {:?}", n * 3, t.elapsed());
    assert_in_order(&msgs, &channels, n);
    assert_eq!(
        client.cluster_refreshes(),
        refreshes,
        "SPUBLISH goes to the slot's node directly (no MOVED, no refresh)"
    );

    // 2. The slot of channel 0 migrates to another primary: the old node drops the
    // channel, the subscriber follows it and reports the gap.
    let moved = &channels[0];
    let slot = valkit::key_slot(moved.as_bytes());
    let from = port_of(&primaries[0]);
    let to = port_of(&primaries[1]);
    let ports: Vec<u16> = primaries.iter().map(|a| port_of(a)).collect();
    move_slot(&ports, slot, from, to);
    let events = publish_until_moved(&client, &sub, moved);
    let gap = events
        .iter()
        .find_map(|e| match e {
            Event::ShardMoved { channel, node, gap } if channel[..] == *moved.as_bytes() => {
                assert_eq!(port_of(node), to, "{events:?}");
                Some(*gap)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ShardMoved for {moved}: {events:?}"));
    eprintln!("slot migration: resubscribed at the new owner after {gap:?}");
    assert!(gap < Duration::from_secs(5), "{gap:?}");
    assert_eq!(port_of(&sub.node_of(moved).unwrap()), to);
    assert_eq!(sub.moves(), 1);
    // The other channels were not disturbed; every channel still in order.
    for i in 0..n {
        for ch in &channels {
            client.spublish(ch, i.to_string()).unwrap();
        }
    }
    let (msgs, _) = take_messages(&sub, n * 3, Duration::from_secs(10));
    assert_in_order(&msgs, &channels, n);
    // Give the slot back (keeps the shared cluster's layout for other tests).
    move_slot(&ports, slot, to, from);
    publish_until_moved(&client, &sub, moved);
    assert_eq!(port_of(&sub.node_of(moved).unwrap()), from);

    // 3. CLUSTER FAILOVER on the replica of channel 2's primary: the old primary becomes
    // a replica and drops the channel; the subscriber follows to the promoted node.
    let old = port_of(&primaries[2]);
    let old_id = node_id(old);
    let nodes: String = node_conn(old).query(&cmd("CLUSTER").arg("NODES")).unwrap();
    let replica = nodes
        .lines()
        .find(|l| l.contains("slave") && l.contains(&old_id))
        .map(|l| port_of(l.split(' ').nth(1).unwrap().split('@').next().unwrap()))
        .expect("a replica");
    node_conn(replica)
        .exec(&cmd("CLUSTER").arg("FAILOVER"))
        .unwrap();
    let failed_over = &channels[2];
    let events = publish_until_moved(&client, &sub, failed_over);
    let moved_to = events.iter().find_map(|e| match e {
        Event::ShardMoved { channel, node, gap } if channel[..] == *failed_over.as_bytes() => {
            eprintln!("failover: resubscribed at the promoted replica after {gap:?}");
            Some(port_of(node))
        }
        _ => None,
    });
    assert_eq!(moved_to, Some(replica), "{events:?}");
    assert_eq!(port_of(&sub.node_of(failed_over).unwrap()), replica);
    // Fail back, so the shared cluster keeps its primaries.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if node_conn(old).exec(&cmd("CLUSTER").arg("FAILOVER")).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "fail back");
        thread::sleep(Duration::from_millis(200));
    }
    publish_until_moved(&client, &sub, failed_over);

    // 4. A stop from another thread ends a blocked iterator; dropping joins every thread.
    let handle = sub.stop_handle();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        handle.stop();
    });
    let t = Instant::now();
    for _ in sub.messages() {}
    let waited = t.elapsed();
    stopper.join().unwrap();
    eprintln!("stop from another thread ended the iterator after {waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert!(sub.ssubscribe(&["x"]).is_err());
    let homes: Vec<(u16, String)> = channels
        .iter()
        .map(|c| (port_of(&sub.node_of(c).unwrap()), c.clone()))
        .collect();
    drop(sub);
    // Every node's connection is closed: the servers forget the subscriptions.
    for (port, ch) in homes {
        wait_no_shard_subscribers(port, &ch);
    }
}

/// `PUBSUB SHARDNUMSUB channel` on the node at `port` reaches 0 (bounded: 2 s).
fn wait_no_shard_subscribers(port: u16, channel: &str) {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let v: Vec<Value> = node_conn(port)
            .query(&cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel))
            .unwrap();
        let n = match v.get(1) {
            Some(Value::Int(n)) => *n,
            other => panic!("SHARDNUMSUB: {other:?}"),
        };
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{channel} still has {n} subscribers on {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A router of the test's own: the client's answers, and a token that shows when the
/// subscriber let go of it.
struct CountedRouter {
    client: Client,
    _token: Arc<()>,
}

impl ShardRouter for CountedRouter {
    fn node_for_slot(&self, slot: u16) -> valkit::Result<(String, ConnectionConfig)> {
        self.client.node_for_slot(slot)
    }

    fn refresh(&self) -> valkit::Result<()> {
        ShardRouter::refresh(&self.client)
    }
}

#[test]
fn shard_subscriber_on_a_single_server_client() {
    for kind in kinds() {
        let client = Client::open(&shared(kind).url()).unwrap();
        let token = Arc::new(());
        let sub = ShardSubscriber::new(CountedRouter {
            client: client.clone(),
            _token: Arc::clone(&token),
        })
        .unwrap();
        let ch = key("single-shard");
        sub.ssubscribe(&[&ch]).unwrap();
        assert_eq!(client.spublish(&ch, "1").unwrap(), 1);
        let (msgs, _) = take_messages(&sub, 1, Duration::from_secs(5));
        assert_eq!(msgs[0].kind, SubKind::Shard);
        sub.sunsubscribe(&[&ch]).unwrap();
        assert!(
            sub.nodes().is_empty(),
            "the idle node's subscriber is dropped"
        );
        assert_eq!(client.spublish(&ch, "2").unwrap(), 0);
        sub.ssubscribe(&[&ch]).unwrap();
        assert_eq!(Arc::strong_count(&token), 2);
        drop(sub);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "dropping the subscriber joined its supervisor"
        );
        wait_no_shard_subscribers(shared(kind).port(), &ch);
    }
}

#[test]
fn shard_subscriber_follows_a_killed_primary_to_its_promoted_replica() {
    let mut cluster = ClusterOptions::new(ServerKind::Valkey)
        .node_timeout(Duration::from_millis(1000))
        .start()
        .unwrap();
    let client = Client::builder()
        .cluster(cluster.urls().iter().map(String::as_str))
        .build()
        .unwrap();
    let primaries = client.cluster_primaries();
    let prefix = key("killed");
    let doomed = channel_on(&client, &prefix, &primaries[1]);
    let safe = channel_on(&client, &prefix, &primaries[0]);
    let sub = client.shard_subscriber().unwrap();
    sub.ssubscribe(&[&doomed, &safe]).unwrap();
    client.spublish(&doomed, "before").unwrap();
    let (msgs, _) = take_messages(&sub, 1, Duration::from_secs(5));
    assert_eq!(msgs[0].payload_str(), "before");

    let victim = port_of(&primaries[1]);
    let t = Instant::now();
    for n in cluster.nodes_mut() {
        if n.port() == victim {
            n.server_mut().kill();
        }
    }
    // The other shard keeps working meanwhile.
    client.spublish(&safe, "0").unwrap();
    let (msgs, mut events) = take_messages(&sub, 1, Duration::from_secs(5));
    assert_eq!(msgs[0].channel_str(), safe);
    events.extend(publish_until_moved(&client, &sub, &doomed));
    eprintln!(
        "killed primary: messages flow again after {:?}; events {events:?}",
        t.elapsed()
    );
    let lost = events
        .iter()
        .position(|e| matches!(e, Event::Disconnected { .. }));
    let moved = events
        .iter()
        .position(|e| matches!(e, Event::ShardMoved { .. }));
    assert!(
        lost.is_some() && lost < moved,
        "the loss is reported, then the move: {events:?}"
    );
    let (node, gap) = events
        .iter()
        .find_map(|e| match e {
            Event::ShardMoved { node, gap, .. } => Some((node.clone(), *gap)),
            _ => None,
        })
        .unwrap();
    assert_ne!(port_of(&node), victim);
    assert!(
        gap >= Duration::from_millis(500),
        "the gap covers the election: {gap:?}"
    );
    assert_eq!(sub.node_of(&doomed), Some(node));
    assert!(
        !sub.nodes().iter().any(|n| port_of(n) == victim),
        "the dead node's subscriber is dropped: {:?}",
        sub.nodes()
    );
}

/// A router whose `refresh` waits at a gate (up to 10 s) after saying it was entered.
struct GatedRouter {
    client: Client,
    entered: crossbeam_channel::Sender<()>,
    gate: crossbeam_channel::Receiver<()>,
}

impl ShardRouter for GatedRouter {
    fn node_for_slot(&self, slot: u16) -> valkit::Result<(String, ConnectionConfig)> {
        self.client.node_for_slot(slot)
    }

    fn refresh(&self) -> valkit::Result<()> {
        let _ = self.entered.try_send(());
        let _ = self.gate.recv_timeout(Duration::from_secs(10));
        Ok(())
    }
}

/// A router whose every slot lives on a node nothing listens on, and whose refresh waits
/// at a gate.
struct DeadNodeRouter {
    entered: crossbeam_channel::Sender<()>,
    gate: crossbeam_channel::Receiver<()>,
}

impl ShardRouter for DeadNodeRouter {
    fn node_for_slot(&self, _slot: u16) -> valkit::Result<(String, ConnectionConfig)> {
        Ok(("127.0.0.1:1".into(), ConnectionConfig::new("127.0.0.1", 1)))
    }

    fn refresh(&self) -> valkit::Result<()> {
        let _ = self.entered.try_send(());
        let _ = self.gate.recv_timeout(Duration::from_secs(10));
        Ok(())
    }
}

/// Regression: a subscription whose node could not be reached re-read the slot map (and
/// paused before trying again) while holding the subscriber's state lock, so a slow
/// refresh held up every other caller.
#[test]
fn a_subscription_refreshing_the_map_does_not_hold_up_other_callers() {
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (open_gate, gate) = crossbeam_channel::unbounded();
    let sub = ShardSubscriber::new(DeadNodeRouter {
        entered: entered_tx,
        gate,
    })
    .unwrap();
    let sub = &sub;
    thread::scope(|s| {
        let subscribing = s.spawn(move || sub.ssubscribe(&["nowhere"]));
        entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the subscription refreshes the map after its node refused");
        let (done_tx, done) = crossbeam_channel::bounded(1);
        s.spawn(move || {
            let _ = done_tx.send(sub.nodes().len());
        });
        let r = done.recv_timeout(Duration::from_secs(2));
        // Let every refresh through, so the subscription ends (with its connect error).
        drop(open_gate);
        let e = subscribing.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), valkit::ErrorKind::Connect, "{e}");
        assert!(
            r.is_ok(),
            "a caller waited for another caller's slot-map refresh"
        );
    });
}

/// A router whose every slot lives on a node that accepts connections and never answers
/// (a listener nobody reads from): a handshake there waits out the timeouts.
struct SilentNodeRouter {
    port: u16,
}

impl ShardRouter for SilentNodeRouter {
    fn node_for_slot(&self, _slot: u16) -> valkit::Result<(String, ConnectionConfig)> {
        let mut config = ConnectionConfig::new("127.0.0.1", self.port);
        config.connect_timeout = Duration::from_millis(1500);
        config.read_timeout = Some(Duration::from_millis(1500));
        Ok((format!("127.0.0.1:{}", self.port), config))
    }

    fn refresh(&self) -> valkit::Result<()> {
        Ok(())
    }
}

/// Regression: a subscription connected to its node (a connect timeout and a handshake, at
/// worst) while holding the subscriber's state lock, so a node that was slow to answer held
/// up every other caller.
#[test]
fn a_subscription_connecting_to_a_slow_node_does_not_hold_up_other_callers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sub = ShardSubscriber::new(SilentNodeRouter { port }).unwrap();
    let sub = &sub;
    thread::scope(|s| {
        let subscribing = s.spawn(move || sub.ssubscribe(&["slow"]));
        // Let the subscription reach its handshake.
        thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let nodes = sub.nodes();
        let waited = t.elapsed();
        let e = subscribing.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), valkit::ErrorKind::Timeout, "{e}");
        assert!(nodes.is_empty(), "{nodes:?}");
        assert!(
            waited < Duration::from_millis(500),
            "a caller waited {waited:?} for another caller's connect"
        );
    });
    drop(silent);
}

/// Regression: the supervisor re-read the slot map while holding the subscriber's state
/// lock, so a slow refresh (connect timeouts to a lost node) held up every caller.
#[test]
fn a_slow_slot_map_refresh_does_not_hold_up_callers() {
    let mut server = valkit::testkit::Server::start(ServerKind::Valkey).unwrap();
    let client = Client::open(&server.url()).unwrap();
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (open_gate, gate) = crossbeam_channel::unbounded();
    let sub = ShardSubscriber::new(GatedRouter {
        client,
        entered: entered_tx,
        gate,
    })
    .unwrap();
    sub.ssubscribe(&[key("gated")]).unwrap();
    // The node is lost: the supervisor refreshes the map, and the refresh hangs.
    server.kill();
    entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the supervisor refreshes the map after losing its node");
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let caller = {
        let sub = &sub;
        thread::scope(|s| {
            s.spawn(move || {
                let nodes = sub.nodes();
                let _ = done_tx.send(nodes.len());
            });
            let r = done.recv_timeout(Duration::from_secs(2));
            // Let the refresh finish whatever happened, so the scope can end.
            let _ = open_gate.send(());
            r
        })
    };
    assert!(
        caller.is_ok(),
        "a caller waited for the supervisor's slot-map refresh"
    );
    drop(open_gate);
    drop(sub);
}
