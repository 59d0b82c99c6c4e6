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
    KeyspaceEvent, Message, Publish, SubKind, Subscriber, SubscriberOptions,
};
use valkit::testkit::{ServerKind, ServerOptions};
use valkit::{cmd, Commands, Connection, ConnectionConfig, Execute, Protocol, Value};

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
