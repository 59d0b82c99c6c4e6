//! `valkit`: the operator's command-line tool (health, info, stats, bigkeys, slowlog,
//! queues and dead letters, limiters, locks, backup, bench). See `valkit --help` and
//! `docs/operations.md`.
//!
//! Hand-written argument parsing (no dependencies beyond the crate's own). Exit codes:
//! 0 success, 1 the operation failed or found a problem, 2 bad usage.

mod args;
mod bench;
mod ops;
mod out;
mod patterns;

use std::process::ExitCode;

use args::{Args, Failure};
use valkit::{Client, Cmd, Connection, ConnectionConfig, Execute, Pipeline, Value};

pub(crate) const MAIN_HELP: &str = "\
valkit: operate Valkey/Redis servers and valkit's patterns

USAGE:
    valkit [--url URL] [--cluster] [--json] <COMMAND> [ARGS]

COMMANDS:
    health      Is the server up and well? (exit 1 when not)
    info        INFO sections, typed (or raw with --raw)
    stats       Server counters (ops/s, hit rate, evictions) + valkit metrics
    bigkeys     Sample the keyspace for the biggest keys, bounded in time and rate
    slowlog     SLOWLOG get / len / reset
    queue       Queue depths, oldest age, dead letters (list, requeue, purge)
    limit       limit check <limiter> <key>: a rate limiter's state for one key
    lock        lock status <name>: who holds a lock, for how long
    backup      BGSAVE (or BGREWRITEAOF with --aof), waited for to the end
    bench       GET/SET load like redis-benchmark: ops/s and latency percentiles

GLOBAL OPTIONS:
    --url URL   Server URL (redis://, valkey://, rediss://, unix://). Default: the
                environment, as the library reads it (VALKEY_CLUSTER_URL, then
                VALKEY_URL, REDIS_URL, or VALKEY_HOST, VALKEY_PORT, VALKEY_USER,
                VALKEY_PASSWORD, VALKEY_DB, ...)
    --cluster   The server is a Valkey/Redis Cluster: --url (comma-separated seed URLs
                allowed) names seed nodes. queue, limit and lock then route every key
                to the node owning its slot and `queue ls` scans every primary.
                Implied by VALKEY_CLUSTER_URL (comma-separated seeds), and detected
                when the --url server reports cluster_enabled:1. The server commands
                (health, info, stats, bigkeys, slowlog, backup, bench) talk to the one
                node named (the first seed); `health` on a cluster node also checks
                CLUSTER INFO (state, slots assigned and ok), `bench` uses keys of that
                node's slots.
    --json      Machine-readable output on stdout
    -h, --help  Help (also `valkit <COMMAND> --help`)
    --version   Print the version

Exit codes: 0 ok, 1 failed (or unhealthy), 2 bad usage.
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(argv) {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("valkit: {msg}\n(see `valkit --help`)");
            ExitCode::from(2)
        }
        Err(Failure::Help(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("valkit: error: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Global options and the connection they describe.
pub(crate) struct Global {
    pub json: bool,
    url: Option<String>,
    /// `--cluster`: the URL(s) name cluster seed nodes.
    cluster: bool,
}

/// Where the pattern subcommands run: one connection, or a cluster client that routes each
/// key to the node owning its slot.
pub(crate) enum Db {
    /// A single server (or one node, when it is not part of a cluster).
    One(Box<Connection>),
    /// A Valkey/Redis Cluster.
    Cluster(Client),
}

impl Execute for Db {
    fn exec(&self, c: &Cmd) -> valkit::Result<Value> {
        match self {
            Db::One(conn) => conn.exec(c),
            Db::Cluster(client) => client.exec(c),
        }
    }

    fn exec_pipeline(&self, p: &Pipeline) -> valkit::Result<Vec<Value>> {
        match self {
            Db::One(conn) => conn.exec_pipeline(p),
            Db::Cluster(client) => client.exec_pipeline(p),
        }
    }

    fn exec_frame(
        &self,
        c: &Cmd,
        read: &mut dyn FnMut(valkit::resp::Frame<'_>) -> valkit::Result<()>,
    ) -> valkit::Result<()> {
        match self {
            Db::One(conn) => conn.exec_frame(c, read),
            Db::Cluster(client) => client.exec_frame(c, read),
        }
    }
}

impl Global {
    /// The seed URLs of a cluster, when one is configured: `--url` (comma-separated) with
    /// `--cluster`, else `VALKEY_CLUSTER_URL` when no `--url` was given.
    fn cluster_seeds(&self) -> Option<Vec<String>> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match &self.url {
            Some(u) if self.cluster => Some(split(u)),
            Some(_) => None,
            None => {
                let env = std::env::var("VALKEY_CLUSTER_URL").unwrap_or_default();
                let seeds = split(&env);
                (!seeds.is_empty()).then_some(seeds)
            }
        }
    }

    /// The connection configuration of the one node the server commands talk to:
    /// `--url` (its first seed with `--cluster`), else the first of `VALKEY_CLUSTER_URL`,
    /// else the environment (`VALKEY_URL`, ...).
    pub fn config(&self) -> Result<ConnectionConfig, Failure> {
        let cfg = match (self.cluster_seeds(), &self.url) {
            (Some(seeds), _) if !seeds.is_empty() => ConnectionConfig::from_url(&seeds[0]),
            (Some(_), _) => return Err(Failure::Usage("--url names no seed node".into())),
            (None, Some(u)) => ConnectionConfig::from_url(u),
            (None, None) => ConnectionConfig::from_env(),
        };
        cfg.map_err(|e| Failure::Usage(e.to_string()))
    }

    /// One connection, with a clear message when the server cannot be reached.
    pub fn connect(&self) -> Result<Connection, Failure> {
        let cfg = self.config()?;
        Connection::open(&cfg).map_err(|e| connect_failure(&cfg, &e))
    }

    /// What the pattern subcommands (queue, limit, lock) run on: a cluster client when a
    /// cluster is configured (`--cluster`, `VALKEY_CLUSTER_URL`) or the server says it is
    /// a cluster node (`cluster_enabled:1`), else the one connection.
    pub fn patterns_db(&self) -> Result<Db, Failure> {
        let cfg = self.config()?;
        let mut seeds = Vec::new();
        if let Some(urls) = self.cluster_seeds() {
            for u in urls {
                seeds.push(
                    ConnectionConfig::from_url(&u).map_err(|e| Failure::Usage(e.to_string()))?,
                );
            }
        } else if self.cluster {
            seeds.push(cfg.clone());
        } else {
            let conn = Connection::open(&cfg).map_err(|e| connect_failure(&cfg, &e))?;
            if !cluster_enabled(&conn)? {
                return Ok(Db::One(Box::new(conn)));
            }
            seeds.push(cfg.clone());
        }
        let mut b = Client::builder();
        for s in seeds {
            b = b.cluster_config(s);
        }
        let client = b.build().map_err(|e| connect_failure(&cfg, &e))?;
        if !client.is_cluster() {
            return Err(Failure::Failed(format!("{cfg} is not a cluster node")));
        }
        Ok(Db::Cluster(client))
    }
}

/// `INFO cluster` says `cluster_enabled:1`.
pub(crate) fn cluster_enabled(conn: &Connection) -> Result<bool, Failure> {
    let info = <valkit::Info as valkit::FromValue>::from_value(
        conn.exec(&valkit::cmd("INFO").arg("cluster"))?,
    )?;
    Ok(info.get("cluster", "cluster_enabled") == Some("1"))
}

/// Turn a connect error into what an operator can act on (never the password).
pub(crate) fn connect_failure(cfg: &ConnectionConfig, e: &valkit::Error) -> Failure {
    let hint = match e.kind() {
        valkit::ErrorKind::Auth => {
            "check the user and password (--url redis://USER:PASSWORD@HOST:PORT or VALKEY_USER / VALKEY_PASSWORD)"
        }
        valkit::ErrorKind::Connect | valkit::ErrorKind::Timeout | valkit::ErrorKind::Io => {
            "is the server running and reachable? (--url or VALKEY_URL)"
        }
        valkit::ErrorKind::Tls => "check the TLS settings (CA file, server name)",
        _ => "",
    };
    let mut msg = format!("cannot use the server at {cfg}: {e}");
    if !hint.is_empty() {
        msg.push_str("\n  hint: ");
        msg.push_str(hint);
    }
    Failure::Failed(msg)
}

fn run(argv: Vec<String>) -> Result<ExitCode, Failure> {
    let mut a = Args::new(argv);
    let json = a.flag("--json");
    let url = a.value("--url")?;
    let cluster = a.flag("--cluster");
    if a.flag("--version") {
        println!("valkit {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = a.positional() else {
        if a.flag("--help") || a.flag("-h") {
            return Err(Failure::Help(MAIN_HELP.into()));
        }
        return Err(Failure::Usage("no command given".into()));
    };
    let g = Global { json, url, cluster };
    match command.as_str() {
        "help" => Err(Failure::Help(MAIN_HELP.into())),
        "health" => ops::health(&g, a),
        "info" => ops::info(&g, a),
        "stats" => ops::stats(&g, a),
        "bigkeys" => ops::bigkeys(&g, a),
        "slowlog" => ops::slowlog(&g, a),
        "backup" => ops::backup(&g, a),
        "queue" => patterns::queue(&g, a),
        "limit" => patterns::limit(&g, a),
        "lock" => patterns::lock(&g, a),
        "bench" => bench::bench(&g, a),
        other => Err(Failure::Usage(format!("unknown command `{other}`"))),
    }
}
