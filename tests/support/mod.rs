//! Shared helpers for the integration tests: which servers and protocols to run against,
//! one shared server per kind per test binary, and unique key names.
#![allow(dead_code)]

use std::sync::Arc;

use valkit::testkit::{self, Cluster, Server, ServerKind};
use valkit::{Client, Connection, Execute, Pool, PoolOptions, Protocol};

/// What a pattern test runs on, whatever the target: one shared type for a connection, a
/// pool and a cluster client.
pub type Exec = Arc<dyn Execute + Send + Sync>;

/// Where a pattern suite runs: one shared single server per kind, or the shared Valkey
/// cluster (3 primaries + 3 replicas) through a cluster [`Client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Single(ServerKind),
    Cluster,
}

impl Target {
    /// A short label for messages and key names: `valkey`, `redis`, `cluster`.
    pub fn label(self) -> &'static str {
        match self {
            Target::Single(kind) => kind.name(),
            Target::Cluster => "cluster",
        }
    }

    /// The server kind behind it (the shared cluster's: [`cluster_kind`]).
    pub fn kind(self) -> ServerKind {
        match self {
            Target::Single(kind) => kind,
            Target::Cluster => cluster_kind(),
        }
    }

    pub fn is_cluster(self) -> bool {
        self == Target::Cluster
    }

    /// A fresh connection on a single server; a fresh cluster client on the cluster.
    pub fn conn(self) -> Exec {
        match self {
            Target::Single(kind) => Arc::new(Connection::open(&shared(kind).config()).unwrap()),
            Target::Cluster => Arc::new(cluster_client()),
        }
    }

    /// A pool of `size` on a single server; a fresh cluster client on the cluster.
    pub fn pool(self, size: usize) -> Exec {
        match self {
            Target::Single(kind) => Arc::new(
                Pool::new(shared(kind).config(), PoolOptions::new().max_size(size)).unwrap(),
            ),
            Target::Cluster => Arc::new(cluster_client()),
        }
    }

    /// What a child process is told to connect to: the server's URL, or `cluster:` and
    /// seed URLs separated by commas (see [`child_exec`]).
    pub fn child_url(self) -> String {
        match self {
            Target::Single(kind) => shared(kind).url(),
            Target::Cluster => format!("cluster:{}", cluster().urls()[..2].join(",")),
        }
    }

    /// A client: on one server, or on the cluster.
    pub fn client(self) -> Client {
        match self {
            Target::Single(kind) => Client::builder()
                .config(shared(kind).config())
                .build()
                .unwrap(),
            Target::Cluster => cluster_client(),
        }
    }
}

/// The executor for a [`Target::child_url`]: a cluster client for `cluster:` seeds,
/// otherwise what `single` makes of the server URL.
pub fn child_exec(url: &str, single: impl FnOnce(&str) -> Exec) -> Exec {
    match url.strip_prefix("cluster:") {
        Some(seeds) => Arc::new(Client::builder().cluster(seeds.split(',')).build().unwrap()),
        None => single(url),
    }
}

/// [`child_exec`] with a plain connection to a single server.
pub fn child_conn(url: &str) -> Exec {
    child_exec(url, |u| Arc::new(Connection::open_url(u).unwrap()))
}

/// Every target: the single servers of [`kinds`], then the shared cluster.
/// `VALKIT_ONLY=cluster` narrows the run to the cluster (`valkey` / `redis` leave it out).
pub fn targets() -> Vec<Target> {
    if std::env::var("VALKIT_ONLY").ok().as_deref() == Some("cluster") {
        return vec![Target::Cluster];
    }
    let mut v: Vec<Target> = kinds().into_iter().map(Target::Single).collect();
    if std::env::var("VALKIT_ONLY").is_err() {
        v.push(Target::Cluster);
    }
    v
}

/// The server the clusters of these tests are made of: Valkey, or Redis with
/// `VALKIT_CLUSTER_KIND=redis` (`scripts/test.sh` runs the cluster suites once more that
/// way, so the cluster client is tested on both servers).
pub fn cluster_kind() -> ServerKind {
    match std::env::var("VALKIT_CLUSTER_KIND").ok().as_deref() {
        None | Some("") | Some("valkey") => ServerKind::Valkey,
        Some("redis") => ServerKind::Redis,
        Some(other) => panic!("VALKIT_CLUSTER_KIND={other}: use valkey or redis"),
    }
}

/// The cluster shared by the tests of this binary ([`cluster_kind`]).
pub fn cluster() -> &'static Cluster {
    match testkit::shared_cluster(cluster_kind()) {
        Ok(c) => c,
        Err(e) => panic!("cannot start the shared cluster: {e}"),
    }
}

/// A client on the shared cluster (seeded with two of its nodes).
pub fn cluster_client() -> Client {
    Client::builder()
        .cluster(cluster().urls().iter().map(String::as_str).take(2))
        .build()
        .unwrap()
}

/// The server kinds every test runs against: both Valkey and Redis. A missing binary is a
/// test failure with instructions, never a silent skip. `VALKIT_ONLY=valkey|redis`
/// narrows the run for local debugging; `VALKIT_ONLY=cluster` (the cluster pass of
/// `scripts/test.sh`) keeps the tests that only run on single servers to Valkey.
pub fn kinds() -> Vec<ServerKind> {
    match std::env::var("VALKIT_ONLY").ok().as_deref() {
        Some("valkey" | "cluster") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    }
}

/// Every (server kind, protocol) pair.
pub fn combos() -> Vec<(ServerKind, Protocol)> {
    kinds()
        .into_iter()
        .flat_map(|k| [(k, Protocol::Resp3), (k, Protocol::Resp2)])
        .collect()
}

/// The server of this kind shared by the tests of this binary.
pub fn shared(kind: ServerKind) -> &'static Server {
    match testkit::shared(kind) {
        Ok(s) => s,
        Err(e) => panic!("cannot start a shared {kind:?} server: {e}"),
    }
}

/// A key name no other test uses.
pub fn key(name: &str) -> String {
    testkit::unique_prefix(name)
}

/// Run `test` once per (server kind, protocol), with a fresh connection and a key prefix
/// no other test (or combination) uses.
pub fn each_combo(name: &str, test: impl Fn(&Connection, &str, ServerKind, Protocol)) {
    for (kind, proto) in combos() {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        let conn = Connection::open(&cfg).unwrap();
        let prefix = key(&format!("{name}:{}:{proto:?}", kind.name()));
        eprintln!("-- {name} on {kind:?} {proto:?}, prefix {prefix}");
        test(&conn, &prefix, kind, proto);
    }
}

/// The names of this process's threads (Linux: `/proc/self/task/*/comm`, 15 bytes at most).
pub fn thread_names() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(n) = std::fs::read_to_string(e.path().join("comm")) {
                out.push(n.trim().to_owned());
            }
        }
    }
    out
}
