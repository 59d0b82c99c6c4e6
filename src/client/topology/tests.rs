//! The per-attempt node choice of each topology, without a server (pools that never
//! connect, a fixed slot map).

use std::time::Duration;

use super::*;
use crate::client::breaker::{Breaker, BreakerOptions};
use crate::client::reader_sync::ReaderSync;
use crate::cluster::{Nodes, Shard, SlotMap};
use crate::config::ConnectionConfig;
use crate::error::{ErrorKind, ServerError, ServerErrorKind};
use crate::pool::{Pool, PoolOptions};

/// An endpoint whose pool never connects (port 1 refuses at once if anything tries).
fn target(endpoint: Endpoint) -> Target {
    Target {
        endpoint,
        pool: Pool::new(
            ConnectionConfig::new("127.0.0.1", 1),
            PoolOptions::default(),
        )
        .expect("pool"),
        breaker: Breaker::new(endpoint.name(), BreakerOptions::default()),
    }
}

fn call(slot: Option<u16>, reads: Reads) -> Call {
    Call { slot, reads }
}

fn err(text: &str) -> Error {
    Error::from(ServerError::new(text))
}

fn failed<'p, N>(node: Option<&'p N>, error: &'p Error) -> Option<Previous<'p, N>> {
    Some(Previous {
        node,
        error,
        redirected: false,
    })
}

fn redirected<'p, N>(node: &'p N, error: &'p Error) -> Option<Previous<'p, N>> {
    Some(Previous {
        node: Some(node),
        error,
        redirected: true,
    })
}

#[test]
fn standalone_is_always_the_writer() {
    let t = Standalone {
        writer: target(Endpoint::Writer),
    };
    for reads in [Reads::Primary, Reads::Replica, Reads::ReplicaInSync] {
        let first = t.choose(&call(None, reads), None).expect("node");
        assert!(std::ptr::eq(first, &t.writer));
        assert_eq!(first.endpoint(), Endpoint::Writer);
        assert!(!first.asking());
        // A MOVED on a single server is an ordinary retryable error: same node.
        let moved = err("MOVED 1 127.0.0.1:7000");
        let next = t.choose(&call(None, reads), failed(Some(&first), &moved));
        assert!(std::ptr::eq(next.expect("node"), &t.writer));
    }
    assert_eq!(
        (Standalone::PERMIT_PER_CALL, Standalone::FOLLOWS_REDIRECTS),
        (true, false)
    );
}

#[test]
fn writer_reader_routes_reads_and_keeps_a_retry_on_its_endpoint() {
    let t = WriterReader {
        writer: target(Endpoint::Writer),
        reader: target(Endpoint::Reader),
        sync: ReaderSync::new(),
    };
    let pick = |reads| t.choose(&call(None, reads), None).expect("node");
    assert!(std::ptr::eq(pick(Reads::Primary), &t.writer));
    assert!(std::ptr::eq(pick(Reads::Replica), &t.reader));
    assert_eq!(pick(Reads::Replica).endpoint(), Endpoint::Reader);
    // The reader cannot be asked whether it is in sync (nothing listens): the writer.
    assert!(std::ptr::eq(pick(Reads::ReplicaInSync), &t.writer));
    // A retry stays where the first attempt went, whatever the facts say now.
    let io = Error::new(ErrorKind::Io, "reset");
    let reader = &t.reader;
    let next = t.choose(&call(None, Reads::Primary), failed(Some(&reader), &io));
    assert!(std::ptr::eq(next.expect("node"), &t.reader));
    let writer = &t.writer;
    let next = t.choose(&call(None, Reads::Replica), failed(Some(&writer), &io));
    assert!(std::ptr::eq(next.expect("node"), &t.writer));
    assert_eq!(
        (
            WriterReader::PERMIT_PER_CALL,
            WriterReader::FOLLOWS_REDIRECTS
        ),
        (true, false)
    );
}

/// Slots 0..=8191 on A (no replica), 8192..=16000 on B (replica R); 16001.. unowned.
fn cluster(reads: ReplicaReads) -> ClusterTopology {
    let shards = vec![
        Shard {
            primary: "a:1".into(),
            replicas: vec![],
        },
        Shard {
            primary: "b:1".into(),
            replicas: vec!["r:1".into()],
        },
    ];
    let map = SlotMap::new(shards, &[(0, 8191, 0), (8192, 16000, 1)]);
    ClusterTopology::new(
        Nodes::fixed(map),
        BreakerOptions::default(),
        reads,
        Duration::from_secs(3600),
        (target(Endpoint::Writer), None),
    )
    .expect("topology")
}

#[test]
fn cluster_follows_the_map_then_the_redirects() {
    let t = cluster(ReplicaReads::PrimaryOnly);
    let c = call(Some(9000), Reads::Primary);
    let first = t.choose(&c, None).expect("node");
    assert_eq!(
        (first.addr.as_str(), first.replica, first.asking),
        ("b:1", false, false)
    );
    assert_eq!(first.endpoint(), Endpoint::Writer);

    // MOVED: the named node, no ASKING.
    let moved = err("MOVED 9000 c:1");
    let next = t.choose(&c, redirected(&first, &moved)).expect("node");
    assert_eq!((next.addr.as_str(), next.asking), ("c:1", false));
    assert!(!next.asking());

    // ASK: the named node, ASKING first; once: a failure after it goes back to the map.
    let ask = err("ASK 9000 d:1");
    let asked = t.choose(&c, redirected(&next, &ask)).expect("node");
    assert_eq!((asked.addr.as_str(), asked.asking), ("d:1", true));
    assert!(asked.asking());
    let io = Error::new(ErrorKind::Io, "reset");
    let again = t.choose(&c, failed(Some(&asked), &io)).expect("node");
    assert_eq!((again.addr.as_str(), again.asking), ("b:1", false));

    // A redirect past the budget is retried, not followed: the map decides.
    let over = t.choose(&c, failed(Some(&again), &moved)).expect("node");
    assert_eq!(over.addr, "b:1");

    // Each node its own breaker.
    assert!(!std::ptr::eq(first.breaker(), next.breaker()));
    assert!(std::ptr::eq(first.breaker(), again.breaker()));
    assert_eq!(
        (
            ClusterTopology::PERMIT_PER_CALL,
            ClusterTopology::FOLLOWS_REDIRECTS
        ),
        (false, true)
    );
}

#[test]
fn cluster_reads_replicas_and_reports_unowned_slots() {
    let t = cluster(ReplicaReads::PreferReplica);
    let read = t
        .choose(&call(Some(9000), Reads::Replica), None)
        .expect("node");
    assert_eq!((read.addr.as_str(), read.replica), ("r:1", true));
    assert_eq!(read.endpoint(), Endpoint::Reader);
    // No replica in that shard, or pinned to the primary: the primary.
    let a = t
        .choose(&call(Some(0), Reads::Replica), None)
        .expect("node");
    assert_eq!((a.addr.as_str(), a.replica), ("a:1", false));
    let b = t
        .choose(&call(Some(9000), Reads::Primary), None)
        .expect("node");
    assert_eq!((b.addr.as_str(), b.replica), ("b:1", false));
    // Keyless: the first primary.
    let k = t.choose(&call(None, Reads::Primary), None).expect("node");
    assert_eq!(k.addr, "a:1");
    // An unowned slot: CLUSTERDOWN, which the loop retries after a refresh.
    let e = t
        .choose(&call(Some(16100), Reads::Primary), None)
        .err()
        .expect("no owner");
    assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::ClusterDown));
}
