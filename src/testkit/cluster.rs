//! Throwaway Valkey/Redis clusters: N primaries with M replicas each, started from the
//! server binary on free loopback ports and joined from Rust.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::binaries::ServerKind;
use super::server::{Server, ServerOptions};
use super::{free_ports, testkit_error};
use crate::cmd::{cmd, Execute};
use crate::config::ConnectionConfig;
use crate::conn::Connection;
use crate::error::Result;
use crate::resp::Value;

/// How long a new cluster gets to agree (every node `cluster_state:ok`, every replica
/// linked to its primary).
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// How to start a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    kind: ServerKind,
    primaries: usize,
    replicas: usize,
    node_timeout: Duration,
}

impl ClusterOptions {
    /// Defaults: 3 primaries with one replica each, `cluster-node-timeout` 2 s.
    pub fn new(kind: ServerKind) -> ClusterOptions {
        ClusterOptions {
            kind,
            primaries: 3,
            replicas: 1,
            node_timeout: Duration::from_secs(2),
        }
    }

    /// Number of primaries (at least 1; the slots are split evenly between them).
    pub fn primaries(mut self, n: usize) -> Self {
        self.primaries = n.max(1);
        self
    }

    /// Replicas per primary.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// `cluster-node-timeout`: how long a node may be unreachable before it is failed
    /// (and its replica promoted).
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Start the nodes, join them and wait until the cluster is ready.
    pub fn start(self) -> Result<Cluster> {
        Cluster::start_with(self)
    }
}

/// One node of a [`Cluster`].
#[derive(Debug)]
pub struct ClusterNode {
    server: Server,
    cluster_port: u16,
    id: String,
}

impl ClusterNode {
    /// The node's server process.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The node's server process, to kill, pause or restart it.
    pub fn server_mut(&mut self) -> &mut Server {
        &mut self.server
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The cluster bus port (set explicitly: `port + 10000` may not exist).
    pub fn cluster_port(&self) -> u16 {
        self.cluster_port
    }

    /// The node id (`CLUSTER MYID`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A connection to this node (no cluster routing).
    pub fn connect(&self) -> Result<Connection> {
        Connection::open(&self.server.config())
    }
}

/// A Valkey (or Redis) cluster on `127.0.0.1`: by default 3 primaries owning slots
/// 0-5460, 5461-10922, 10923-16383 and one replica each. Nodes `0..primaries` start as
/// primaries, the rest as replicas (node `primaries + i * replicas + j` replicates primary
/// `i`). Dropping it stops every node.
///
/// ```no_run
/// use valkit::testkit::{Cluster, ServerKind};
/// # fn main() -> valkit::Result<()> {
/// let cluster = Cluster::start(ServerKind::Valkey)?;
/// let client = valkit::Client::builder().cluster_url(&cluster.url()).build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    primaries: usize,
}

impl Cluster {
    /// Start a default cluster (see [`ClusterOptions::new`]).
    pub fn start(kind: ServerKind) -> Result<Cluster> {
        ClusterOptions::new(kind).start()
    }

    fn start_with(opts: ClusterOptions) -> Result<Cluster> {
        let total = opts.primaries * (1 + opts.replicas);
        let mut nodes = Vec::with_capacity(total);
        for _ in 0..total {
            let mut last = None;
            // The bus port is chosen here, the client port by the server kit; retry on a
            // bus port taken meanwhile.
            for _ in 0..5 {
                let bus = free_ports(1)[0];
                let started = ServerOptions::new(opts.kind)
                    .arg("cluster-enabled", "yes")
                    .arg("cluster-config-file", "nodes.conf")
                    .arg("cluster-port", bus.to_string())
                    .arg(
                        "cluster-node-timeout",
                        opts.node_timeout.as_millis().to_string(),
                    )
                    .start();
                match started {
                    Ok(server) => {
                        last = None;
                        nodes.push(ClusterNode {
                            server,
                            cluster_port: bus,
                            id: String::new(),
                        });
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        let conns = nodes
            .iter()
            .map(|n| n.connect())
            .collect::<Result<Vec<_>>>()?;
        for (node, conn) in nodes.iter_mut().zip(&conns) {
            node.id = text(&conn.exec(&cmd("CLUSTER").arg("MYID"))?);
        }
        // Slots first (a node with slots is a primary), then the handshake.
        let per = 16384 / opts.primaries;
        for (i, conn) in conns.iter().take(opts.primaries).enumerate() {
            let start = i * per;
            let end = if i + 1 == opts.primaries {
                16383
            } else {
                (i + 1) * per - 1
            };
            conn.exec(&cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(start).arg(end))?;
        }
        let (first_port, first_bus) = (nodes[0].port(), nodes[0].cluster_port);
        for conn in conns.iter().skip(1) {
            conn.exec(
                &cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(first_port)
                    .arg(first_bus),
            )?;
        }
        let deadline = Instant::now() + JOIN_DEADLINE;
        // Every node must know every other before a replica can name its primary.
        wait(deadline, "every node to know every other", || {
            for conn in &conns {
                let nodes_text = text(&conn.exec(&cmd("CLUSTER").arg("NODES"))?);
                let known = nodes_text
                    .lines()
                    .filter(|l| !l.contains("handshake") && !l.trim().is_empty())
                    .count();
                if known < total {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        for r in 0..opts.primaries * opts.replicas {
            let primary = r / opts.replicas.max(1);
            let id = nodes[primary].id.clone();
            conns[opts.primaries + r].exec(&cmd("CLUSTER").arg("REPLICATE").arg(id))?;
        }
        let cluster = Cluster {
            nodes,
            primaries: opts.primaries,
        };
        cluster.wait_ready(deadline)?;
        Ok(cluster)
    }

    /// Wait until every running node says `cluster_state:ok`, every replica's link to its
    /// primary is up, and all nodes agree on the number of primaries with slots.
    pub fn wait_ready(&self, deadline: Instant) -> Result<()> {
        wait(deadline, "cluster_state:ok on every node", || {
            for node in self.nodes.iter().filter(|n| n.server.is_running()) {
                let Ok(conn) = node.connect() else {
                    return Ok(false);
                };
                let info = text(&conn.exec(&cmd("CLUSTER").arg("INFO"))?);
                if !info.contains("cluster_state:ok") {
                    return Ok(false);
                }
                let repl = text(&conn.exec(&cmd("INFO").arg("replication"))?);
                if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                    return Ok(false);
                }
                let nodes_text = text(&conn.exec(&cmd("CLUSTER").arg("NODES"))?);
                let with_slots = nodes_text
                    .lines()
                    .filter(|l| l.contains("master") && !l.contains("fail"))
                    .filter(|l| l.split(' ').count() > 8)
                    .count();
                if with_slots < self.primaries {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// Every node, primaries first (as started: a failover changes roles, see
    /// [`Cluster::primary_ports`]).
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// Every node, to kill or restart one.
    pub fn nodes_mut(&mut self) -> &mut [ClusterNode] {
        &mut self.nodes
    }

    /// The node listening on `port`.
    pub fn node_by_port(&self, port: u16) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.port() == port)
    }

    /// A seed URL (the first running node).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .find(|n| n.server.is_running())
            .unwrap_or(&self.nodes[0])
            .server
            .url()
    }

    /// Seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.server.url()).collect()
    }

    /// A connection configuration for one seed node.
    pub fn config(&self) -> ConnectionConfig {
        self.nodes[0].server.config()
    }

    /// The ports of the nodes that are primaries now (asked of the running nodes).
    pub fn primary_ports(&self) -> Result<Vec<u16>> {
        self.ports_by_role("role:master")
    }

    /// The ports of the nodes that are replicas now.
    pub fn replica_ports(&self) -> Result<Vec<u16>> {
        self.ports_by_role("role:slave")
    }

    fn ports_by_role(&self, role: &str) -> Result<Vec<u16>> {
        let mut out = Vec::new();
        for n in self.nodes.iter().filter(|n| n.server.is_running()) {
            let info = text(&n.connect()?.exec(&cmd("INFO").arg("replication"))?);
            if info.contains(role) {
                out.push(n.port());
            }
        }
        Ok(out)
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Error(e) => e.text().to_owned(),
        other => other
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

fn wait(deadline: Instant, what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let mut last = None;
    loop {
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            let why = last
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Err(testkit_error(format!(
                "cluster: timed out waiting for {what}{why}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One default cluster of `kind` per test process, started on first use (see
/// [`shared`](super::shared) for the cleanup of statics). Give keys a
/// [`unique_prefix`](super::unique_prefix); never kill nodes or move slots of it (start
/// your own [`Cluster`] for that).
pub fn shared_cluster(kind: ServerKind) -> Result<&'static Cluster> {
    static SHARED: [OnceLock<std::result::Result<Cluster, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    SHARED[kind as usize]
        .get_or_init(|| Cluster::start(kind).map_err(|e| e.detail().to_owned()))
        .as_ref()
        .map_err(|d| testkit_error(format!("shared {kind} cluster: {d}")))
}
