//! N unpipelined GETs (or N pipelines of 64 SETs) on one connection, for counting client
//! instructions with callgrind (`scripts/bench.sh` runs it; see docs/benchmarks.md).
//!
//! ```text
//! bench_get server                  # start a throwaway Valkey, print its port, run until stdin closes
//! bench_get valkit PORT N           # N GETs with valkit
//! bench_get redis PORT N            # N GETs with the redis crate's sync client
//! bench_get valkit PORT N pipe_set  # N pipelines of 64 SETs of 16 B, replies dropped
//! bench_get redis PORT N pipe_set   # the same with the redis crate
//! bench_get valkit PORT N helper_get      # N GETs through `Commands::get` (typed)
//! bench_get redis PORT N helper_get       # the same with `redis::Commands::get`
//! bench_get valkit PORT N pipe_set_typed  # pipe_set built with `pipe().set(..)`
//! bench_get valkit PORT N pool_get        # N GETs through a `Pool` (checkout + GET + return)
//! bench_get valkit PORT N client_get      # N GETs through a `Client` (breaker, pool, metrics)
//! bench_get valkit PORT N set             # N SETs of 16 B on a `Connection` (raw `Value` reply)
//! bench_get valkit PORT N client_set      # the same through a `Client`
//! bench_get redis PORT N set              # the same with the redis crate's sync client
//! bench_get valkit PORT N pool_get_peek   # pool_get with the socket checked on every checkout
//! bench_get valkit PORT N pool_helper_get # typed GET (`Commands::get`) through a `Pool`
//! bench_get valkit PORT N client_helper_get # typed GET through a `Client`
//! bench_get valkit PORT N pipe_get        # N pipelines of BENCH_DEPTH GETs, raw `Value`s
//! bench_get valkit PORT N pipe_get_typed  # the same into `Vec<Option<Vec<u8>>>` (`query`)
//! bench_get redis PORT N pipe_get         # the same with the redis crate
//! bench_get valkit PORT N get_size        # N GETs of a BENCH_SIZE-byte value (typed)
//! bench_get redis PORT N get_size         # the same with the redis crate
//! bench_get cluster                 # a throwaway 3-primary cluster: print a seed port, run until stdin closes
//! bench_get valkit PORT N cluster_pipe_get        # N pipelines of BENCH_DEPTH GETs over every
//!                                                 # primary, through a cluster `Client`, raw `Value`s
//! bench_get valkit PORT N cluster_pipe_get_typed  # the same into `Vec<Option<Vec<u8>>>` (`query`)
//! bench_get redis PORT N cluster_pipe_get         # the same with the redis crate's `cluster_pipe()`
//! bench_get valkit PORT N cluster_get    # N unpipelined GETs through a cluster `Client` (compare client_get)
//! bench_get valkit PORT N mget_size       # N MGETs of BENCH_DEPTH values of BENCH_SIZE bytes (typed)
//! ```
//! `BENCH_DEPTH` (default 64) sets the depth of the `pipe_*` ops; `BENCH_SIZE` (default 16)
//! the value size of `get_size` (written once, before the loop).
//! The server runs outside valgrind; (instructions at N=2000 - at N=1000) / 1000 is the
//! client's cost per GET (per pipeline), setup cancelled out.

use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let server = valkit::testkit::Server::start(valkit::testkit::ServerKind::Valkey)
                .expect("start valkey");
            let c = valkit::Connection::open(&server.config()).expect("connect");
            valkit::Execute::exec(&c, &valkit::cmd("SET").arg("bench:k16").arg([b'x'; 16]))
                .expect("set");
            println!("{}", server.port());
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        }
        Some("cluster") => {
            let cluster = valkit::testkit::Cluster::start(valkit::testkit::ServerKind::Valkey)
                .expect("start cluster");
            let client = valkit::Client::builder()
                .cluster(cluster.urls().iter().map(String::as_str))
                .build()
                .expect("cluster client");
            let mut load = valkit::pipe();
            for k in cluster_keys(env_usize("BENCH_DEPTH", DEPTH)) {
                load.add(valkit::cmd("SET").arg(k).arg([b'x'; 16]));
            }
            valkit::Execute::exec_pipeline(&client, &load).expect("load");
            println!("{}", cluster.nodes()[0].port());
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        }
        Some(client @ ("valkit" | "redis")) => {
            let port: u16 = args[1].parse().expect("port");
            let n: usize = args[2].parse().expect("count");
            match (client, args.get(3).map_or("get", String::as_str)) {
                ("valkit", "get") => valkit_gets(port, n),
                ("valkit", "helper_get") => valkit_helper_gets(port, n),
                ("redis", "helper_get") => redis_helper_gets(port, n),
                ("redis", "get") => redis_gets(port, n),
                ("valkit", "pipe_set") => valkit_pipe_sets(port, n),
                ("valkit", "pipe_set_typed") => valkit_typed_pipe_sets(port, n),
                ("valkit", "pool_get") => valkit_pool_gets(port, n),
                ("valkit", "client_get") => valkit_client_gets(port, n),
                ("valkit", "set") => valkit_sets(port, n),
                ("valkit", "client_set") => valkit_client_sets(port, n),
                ("redis", "set") => redis_sets(port, n),
                ("redis", "pipe_set") => redis_pipe_sets(port, n),
                ("valkit", "pool_get_peek") => valkit_pool_gets_peek(port, n),
                ("valkit", "pool_helper_get") => valkit_pool_helper_gets(port, n),
                ("valkit", "client_helper_get") => valkit_client_helper_gets(port, n),
                ("valkit", "pipe_get") => valkit_pipe_gets(port, n),
                ("valkit", "pipe_get_typed") => valkit_typed_pipe_gets(port, n),
                ("redis", "pipe_get") => redis_pipe_gets(port, n),
                ("valkit", "get_size") => valkit_sized_gets(port, n),
                ("redis", "get_size") => redis_sized_gets(port, n),
                ("valkit", "cluster_pipe_get") => valkit_cluster_pipe_gets(port, n, false),
                ("valkit", "cluster_pipe_get_typed") => valkit_cluster_pipe_gets(port, n, true),
                ("redis", "cluster_pipe_get") => redis_cluster_pipe_gets(port, n),
                ("valkit", "cluster_get") => valkit_cluster_gets(port, n),
                ("valkit", "mget_size") => valkit_sized_mgets(port, n),
                (_, op) => {
                    eprintln!("unknown op {op}: get | pipe_set");
                    std::process::exit(2);
                }
            }
        }
        _ => {
            eprintln!("usage: bench_get server | bench_get (valkit|redis) PORT N [get|pipe_set]");
            std::process::exit(2);
        }
    }
}

fn valkit_gets(port: u16, n: usize) {
    use valkit::Execute;
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    for _ in 0..n {
        let v = conn
            .exec(&valkit::cmd("GET").arg("bench:k16"))
            .expect("GET");
        assert_eq!(v.as_bytes().map(<[u8]>::len), Some(16));
    }
}

/// GET through a `Pool`: checkout, GET, return, every time (the pool's own `Execute`).
fn valkit_pool_gets(port: u16, n: usize) {
    use valkit::Execute;
    let pool = valkit::Pool::new(
        valkit::ConnectionConfig::new("127.0.0.1", port),
        valkit::PoolOptions::default(),
    )
    .expect("pool");
    for _ in 0..n {
        let v = pool
            .exec(&valkit::cmd("GET").arg("bench:k16"))
            .expect("GET");
        assert_eq!(v.as_bytes().map(<[u8]>::len), Some(16));
    }
}

/// The same GET through a `Client` with default settings: routing, breaker, retry loop,
/// checkout, metrics and observers on top of the pool path above.
fn valkit_client_gets(port: u16, n: usize) {
    use valkit::Execute;
    let client = valkit::Client::builder()
        .config(valkit::ConnectionConfig::new("127.0.0.1", port))
        .build()
        .expect("client");
    for _ in 0..n {
        let v = client
            .exec(&valkit::cmd("GET").arg("bench:k16"))
            .expect("GET");
        assert_eq!(v.as_bytes().map(<[u8]>::len), Some(16));
    }
}

/// SET of a 16-byte value built as the round-trip bench builds it (`cmd("SET")`, the
/// value by reference), raw `Value` reply, on a `Connection`.
fn valkit_sets(port: u16, n: usize) {
    use valkit::Execute;
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    let value = [b'x'; 16];
    for _ in 0..n {
        let v = conn
            .exec(&valkit::cmd("SET").arg("bench:s16").arg(&value[..]))
            .expect("SET");
        assert!(v.as_bytes().is_some());
    }
}

/// The same SET through a `Client` with default settings.
fn valkit_client_sets(port: u16, n: usize) {
    use valkit::Execute;
    let client = valkit::Client::builder()
        .config(valkit::ConnectionConfig::new("127.0.0.1", port))
        .build()
        .expect("client");
    let value = [b'x'; 16];
    for _ in 0..n {
        let v = client
            .exec(&valkit::cmd("SET").arg("bench:s16").arg(&value[..]))
            .expect("SET");
        assert!(v.as_bytes().is_some());
    }
}

/// The same SET with the redis crate (as benches/roundtrip.rs sends it).
fn redis_sets(port: u16, n: usize) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    let value = [b'x'; 16];
    for _ in 0..n {
        let mut k = redis::Cmd::new();
        k.arg(&b"SET"[..]).arg(&b"bench:s16"[..]).arg(&value[..]);
        let v: redis::Value = k.query(&mut conn).expect("SET");
        assert!(matches!(v, redis::Value::Okay));
    }
}

/// GET through the typed helper (`Commands::get` into `Option<Vec<u8>>`): the in-place
/// frame path, no `Value` built.
fn valkit_helper_gets(port: u16, n: usize) {
    use valkit::Commands;
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    for _ in 0..n {
        let v: Option<Vec<u8>> = conn.get("bench:k16").expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(16));
    }
}

/// The same with the redis crate's typed helper.
fn redis_helper_gets(port: u16, n: usize) {
    use redis::Commands;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    for _ in 0..n {
        let v: Option<Vec<u8>> = conn.get("bench:k16").expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(16));
    }
}

fn redis_gets(port: u16, n: usize) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    for _ in 0..n {
        let v: redis::Value = redis::cmd("GET")
            .arg("bench:k16")
            .query(&mut conn)
            .expect("GET");
        assert!(matches!(v, redis::Value::BulkString(ref b) if b.len() == 16));
    }
}

/// Commands per pipeline in the `pipe_*` ops unless `BENCH_DEPTH` says otherwise.
const DEPTH: usize = 64;

/// Built the way a user writes it: a fresh pipeline of fresh commands every time.
fn valkit_pipe_sets(port: u16, n: usize) {
    use valkit::Execute;
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    let value = [b'x'; 16];
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    for _ in 0..n {
        let mut p = valkit::pipe();
        for _ in 0..depth {
            p.add(valkit::cmd("SET").arg("bench:s16").arg(&value[..]));
        }
        let replies = conn.exec_pipeline(&p).expect("pipeline");
        assert_eq!(replies.len(), depth);
    }
}

/// The same pipeline built with the typed builder methods (`pipe().set(..)`), replies
/// checked and dropped with `query::<()>`.
fn valkit_typed_pipe_sets(port: u16, n: usize) {
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    let value = [b'x'; 16];
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    for _ in 0..n {
        let mut p = valkit::pipe();
        for _ in 0..depth {
            p = p.set("bench:s16", &value[..]);
        }
        p.query::<(), _>(&conn).expect("pipeline");
    }
}

fn redis_pipe_sets(port: u16, n: usize) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    let value = [b'x'; 16];
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    for _ in 0..n {
        let mut p = redis::pipe();
        for _ in 0..depth {
            p.cmd("SET").arg("bench:s16").arg(&value[..]);
        }
        let replies: Vec<redis::Value> = p.query(&mut conn).expect("pipeline");
        assert_eq!(replies.len(), depth);
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `pool_get` with the liveness check forced on every checkout (the pool's behaviour
/// before recently used connections skipped it).
fn valkit_pool_gets_peek(port: u16, n: usize) {
    use valkit::Execute;
    let pool = valkit::Pool::new(
        valkit::ConnectionConfig::new("127.0.0.1", port),
        valkit::PoolOptions::default().skip_check_within(std::time::Duration::ZERO),
    )
    .expect("pool");
    for _ in 0..n {
        let v = pool
            .exec(&valkit::cmd("GET").arg("bench:k16"))
            .expect("GET");
        assert_eq!(v.as_bytes().map(<[u8]>::len), Some(16));
    }
}

fn valkit_pool_helper_gets(port: u16, n: usize) {
    use valkit::Commands;
    let pool = valkit::Pool::new(
        valkit::ConnectionConfig::new("127.0.0.1", port),
        valkit::PoolOptions::default(),
    )
    .expect("pool");
    for _ in 0..n {
        let v: Option<Vec<u8>> = Commands::get(&pool, "bench:k16").expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(16));
    }
}

fn valkit_client_helper_gets(port: u16, n: usize) {
    use valkit::Commands;
    let client = valkit::Client::builder()
        .config(valkit::ConnectionConfig::new("127.0.0.1", port))
        .build()
        .expect("client");
    for _ in 0..n {
        let v: Option<Vec<u8>> = client.get("bench:k16").expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(16));
    }
}

/// A pipeline of BENCH_DEPTH GETs, raw replies (`exec_pipeline`).
fn valkit_pipe_gets(port: u16, n: usize) {
    use valkit::Execute;
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    for _ in 0..n {
        let mut p = valkit::pipe();
        for _ in 0..depth {
            p.add(valkit::cmd("GET").arg("bench:k16"));
        }
        let replies = conn.exec_pipeline(&p).expect("pipeline");
        assert_eq!(replies.len(), depth);
    }
}

/// The same pipeline converted by `query` into one `Vec<Option<Vec<u8>>>`.
fn valkit_typed_pipe_gets(port: u16, n: usize) {
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    for _ in 0..n {
        let mut p = valkit::pipe();
        for _ in 0..depth {
            p = p.get("bench:k16");
        }
        let v: Vec<Option<Vec<u8>>> = p.query(&conn).expect("pipeline");
        assert_eq!(v.len(), depth);
    }
}

fn redis_pipe_gets(port: u16, n: usize) {
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    for _ in 0..n {
        let mut p = redis::pipe();
        for _ in 0..depth {
            p.cmd("GET").arg("bench:k16");
        }
        let v: Vec<Option<Vec<u8>>> = p.query(&mut conn).expect("pipeline");
        assert_eq!(v.len(), depth);
    }
}

/// GETs of one BENCH_SIZE-byte value (key `bench:sized:SIZE`), typed into a `Vec<u8>`.
fn valkit_sized_gets(port: u16, n: usize) {
    use valkit::Commands;
    let size = env_usize("BENCH_SIZE", 16);
    let key = format!("bench:sized:{size}");
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    conn.set(&key, vec![b'v'; size]).expect("SET");
    for _ in 0..n {
        let v: Option<Vec<u8>> = conn.get(&key).expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(size));
    }
}

/// One reply of BENCH_DEPTH bulk strings (an array: read through the decoder's buffer,
/// which grows to the reply's size; whether it is kept between calls shows here).
fn valkit_sized_mgets(port: u16, n: usize) {
    use valkit::{Commands, Execute};
    let size = env_usize("BENCH_SIZE", 16);
    let depth = env_usize("BENCH_DEPTH", DEPTH);
    let conn = valkit::Connection::open(&valkit::ConnectionConfig::new("127.0.0.1", port))
        .expect("valkit connect");
    let mut mget = valkit::cmd("MGET");
    for i in 0..depth {
        let key = format!("bench:mget:{size}:{i}");
        conn.exec(&valkit::cmd("SET").arg(&key).arg(vec![b'v'; size]))
            .expect("SET");
        mget = mget.arg(key);
    }
    for _ in 0..n {
        let v: Vec<Option<Vec<u8>>> = conn.query(&mget).expect("MGET");
        assert_eq!(v.len(), depth);
    }
}

fn redis_sized_gets(port: u16, n: usize) {
    use redis::Commands;
    let size = env_usize("BENCH_SIZE", 16);
    let key = format!("bench:sized:{size}");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("redis connect");
    let _: () = conn.set(&key, vec![b'v'; size]).expect("SET");
    for _ in 0..n {
        let v: Option<Vec<u8>> = conn.get(&key).expect("GET");
        assert_eq!(v.map(|v| v.len()), Some(size));
    }
}

/// BENCH_DEPTH keys spread over every slot range (distinct keys, about a third per
/// primary of a 3-primary cluster), 16-byte values set by `bench_get cluster`.
/// A cluster `Client` seeded with the node at `port`.
fn cluster_client(port: u16) -> valkit::Client {
    valkit::Client::builder()
        .cluster(
            [format!("redis://127.0.0.1:{port}")]
                .iter()
                .map(String::as_str),
        )
        .build()
        .expect("cluster client")
}

fn cluster_keys(depth: usize) -> Vec<String> {
    (0..depth).map(|i| format!("bench:c:{i}")).collect()
}

/// A pipeline of BENCH_DEPTH GETs split over the cluster's primaries by a cluster `Client`:
/// raw replies (`exec_pipeline`), or typed (`query` into `Vec<Option<Vec<u8>>>`).
fn valkit_cluster_pipe_gets(port: u16, n: usize, typed: bool) {
    use valkit::Execute;
    let keys = cluster_keys(env_usize("BENCH_DEPTH", DEPTH));
    let client = cluster_client(port);
    for _ in 0..n {
        let mut p = valkit::pipe();
        for k in &keys {
            p = p.get(k);
        }
        if typed {
            let v: Vec<Option<Vec<u8>>> = p.query(&client).expect("pipeline");
            assert!(v.iter().all(|v| v.as_ref().map(Vec::len) == Some(16)));
        } else {
            let v = client.exec_pipeline(&p).expect("pipeline");
            assert!(v.iter().all(|v| v.as_bytes().map(<[u8]>::len) == Some(16)));
        }
    }
}

/// The same with the redis crate's sync `ClusterConnection` and `cluster_pipe()`.
fn redis_cluster_pipe_gets(port: u16, n: usize) {
    let keys = cluster_keys(env_usize("BENCH_DEPTH", DEPTH));
    let mut con = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{port}/")])
        .expect("cluster client")
        .get_connection()
        .expect("cluster connect");
    for _ in 0..n {
        let mut p = redis::cluster::cluster_pipe();
        for k in &keys {
            p.cmd("GET").arg(k);
        }
        let v: Vec<Option<Vec<u8>>> = p.query(&mut con).expect("pipeline");
        assert!(v.iter().all(|v| v.as_ref().map(Vec::len) == Some(16)));
    }
}

/// Unpipelined GETs through a cluster `Client` (routing: the key's slot, the slot map, the
/// node's pool), to set against `client_get` (the same on a single-node `Client`).
fn valkit_cluster_gets(port: u16, n: usize) {
    use valkit::Execute;
    let key = &cluster_keys(1)[0];
    let client = cluster_client(port);
    for _ in 0..n {
        let v = client.exec(&valkit::cmd("GET").arg(key)).expect("GET");
        assert_eq!(v.as_bytes().map(<[u8]>::len), Some(16));
    }
}
