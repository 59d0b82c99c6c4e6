//! Valkey Cluster: the test kit's cluster, slot routing, redirects, pipelines, scripts,
//! replica reads, patterns on a cluster, live slot migration, failover.

mod support;

use std::time::Instant;

use valkit::testkit::{shared_cluster, Cluster, ServerKind};

fn cluster() -> &'static Cluster {
    match shared_cluster(ServerKind::Valkey) {
        Ok(c) => c,
        Err(e) => panic!("cannot start the shared cluster: {e}"),
    }
}

#[test]
fn testkit_cluster_is_ready_with_three_primaries_and_three_replicas() {
    let t0 = Instant::now();
    let c = cluster();
    eprintln!("cluster ready in {:?}", t0.elapsed());
    assert_eq!(c.nodes().len(), 6);
    assert_eq!(c.primary_ports().unwrap().len(), 3);
    assert_eq!(c.replica_ports().unwrap().len(), 3);
}
