//! Cluster throughput: pipelined GET through valkit's cluster client, the `redis` crate's
//! sync cluster connection and `redis-benchmark --cluster` on the same throwaway cluster,
//! and unpipelined GET through the cluster client against a single-node `Client`.
//!
//! Run: `cargo run --release --example cluster_bench --features testkit` (needs
//! `redis-benchmark` on PATH for its row). Results go to `docs/benchmarks.md` by hand.

use std::process::Command;
use std::time::Instant;

use valkit::testkit::{Cluster, Server, ServerKind};
use valkit::{cmd, pipe, Client, Execute};

const KEYS: usize = 10_000;
const PIPE: usize = 64;
const BATCHES: usize = 500; // 32,000 GETs per pipelined run
const SINGLE: usize = 10_000; // unpipelined GETs per run
const ROUNDS: usize = 5;

fn key(i: usize) -> String {
    format!("key:{i:06}")
}

fn best(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(|a, b| b.partial_cmp(a).unwrap());
    runs[0]
}

fn valkit_pipelined(client: &Client) -> f64 {
    let mut n = 0usize;
    let t = Instant::now();
    for b in 0..BATCHES {
        let mut p = pipe();
        for j in 0..PIPE {
            p.add(cmd("GET").arg(key((b * PIPE + j * 7919) % KEYS)));
        }
        n += client.exec_pipeline(&p).unwrap().len();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn redis_rs_pipelined(con: &mut redis::cluster::ClusterConnection) -> f64 {
    let mut n = 0usize;
    let t = Instant::now();
    for b in 0..BATCHES {
        let mut p = redis::cluster::cluster_pipe();
        for j in 0..PIPE {
            p.cmd("GET").arg(key((b * PIPE + j * 7919) % KEYS));
        }
        let v: Vec<Option<Vec<u8>>> = p.query(con).unwrap();
        n += v.len();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn single(client: &Client) -> f64 {
    let t = Instant::now();
    for i in 0..SINGLE {
        let _ = client.exec(&cmd("GET").arg(key(i * 7919 % KEYS))).unwrap();
    }
    SINGLE as f64 / t.elapsed().as_secs_f64()
}

/// `redis-benchmark --cluster -t get -P 64` with one client per node: requests per second.
fn redis_benchmark(port: u16) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args(["--cluster", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "get", "-P", &PIPE.to_string(), "-c", "1", "-q"])
        .args(["-n", &(BATCHES * PIPE).to_string(), "-r", &KEYS.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "GET: 123456.79 requests per second, p50=..." (with \r progress lines before it).
    let line = text.rsplit(['\r', '\n']).find(|l| l.starts_with("GET:"))?;
    line.trim_start_matches("GET:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::start(ServerKind::Valkey)?;
    let client = Client::builder()
        .cluster(cluster.urls().iter().map(String::as_str))
        .build()?;
    let mut load = pipe();
    for i in 0..KEYS {
        load.add(cmd("SET").arg(key(i)).arg("x".repeat(16)));
    }
    client.exec_pipeline(&load)?;
    let mut rcon = redis::cluster::ClusterClient::new(cluster.urls())?.get_connection()?;

    let standalone = Server::start(ServerKind::Valkey)?;
    let single_client = Client::open(&standalone.url())?;
    let mut load = pipe();
    for i in 0..KEYS {
        load.add(cmd("SET").arg(key(i)).arg("x".repeat(16)));
    }
    single_client.exec_pipeline(&load)?;

    let (mut v, mut r, mut b, mut cs, mut ss) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        v.push(valkit_pipelined(&client));
        r.push(redis_rs_pipelined(&mut rcon));
        if let Some(x) = redis_benchmark(cluster.nodes()[0].port()) {
            b.push(x);
        }
        cs.push(single(&client));
        ss.push(single(&single_client));
        eprintln!(
            "round {round}: valkit {:.0}/s, redis-rs {:.0}/s, redis-benchmark {:?}/s, \
             cluster GET {:.0}/s, single-node GET {:.0}/s",
            v[round],
            r[round],
            b.last(),
            cs[round],
            ss[round]
        );
    }
    let (v, r, cs, ss) = (best(v), best(r), best(cs), best(ss));
    println!("pipelined GET (P={PIPE}, best of {ROUNDS}):");
    println!("  valkit cluster client      {v:>10.0} GET/s");
    println!(
        "  redis crate cluster (sync) {r:>10.0} GET/s   valkit = {:.2}x",
        v / r
    );
    if !b.is_empty() {
        let b = best(b);
        println!(
            "  redis-benchmark --cluster  {b:>10.0} GET/s   valkit = {:.2}x",
            v / b
        );
    }
    println!("unpipelined GET (best of {ROUNDS}):");
    println!("  cluster client             {cs:>10.0} GET/s");
    println!(
        "  single-node Client         {ss:>10.0} GET/s   cluster = {:.2}x",
        cs / ss
    );
    Ok(())
}
