//! N unpipelined GETs on one connection, for counting client instructions with callgrind
//! (`scripts/bench.sh` runs it; see docs/benchmarks.md).
//!
//! ```text
//! bench_get server              # start a throwaway Valkey, print its port, run until stdin closes
//! bench_get valkit PORT N       # N GETs with valkit
//! bench_get redis PORT N        # N GETs with the redis crate's sync client
//! ```
//! The server runs outside valgrind; (instructions at N=2000 - at N=1000) / 1000 is the
//! client's cost per GET, setup cancelled out.

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
        Some(client @ ("valkit" | "redis")) => {
            let port: u16 = args[1].parse().expect("port");
            let n: usize = args[2].parse().expect("count");
            if client == "valkit" {
                valkit_gets(port, n)
            } else {
                redis_gets(port, n)
            }
        }
        _ => {
            eprintln!("usage: bench_get server | bench_get (valkit|redis) PORT N");
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
