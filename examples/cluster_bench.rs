//! Cluster throughput: pipelined GET through valkit's cluster client (typed `query`, as
//! the `redis` crate's row converts too, and raw `Value`s), the `redis` crate's sync
//! cluster connection and `redis-benchmark --cluster` on the same throwaway cluster, and
//! unpipelined GET through the cluster client against a single-node `Client`.
//!
//! Run: `cargo run --release --example cluster_bench --features testkit` (needs
//! `redis-benchmark` on PATH for its row). Results go to `docs/benchmarks.md` by hand.
//!
//! The unpipelined rows are one round trip per GET, so on this kind of 2-vCPU VM they
//! measure where the scheduler put the client and the server (a wake-up across vCPUs costs
//! several times a whole GET; see "Round-trip noise" in docs/benchmarks.md) more than the
//! client. For those rows this process and every server (the cluster's six, the standalone
//! one) are pinned to one CPU (`VALKIT_RT_CPU`, default 0) with `taskset`, as
//! `benches/roundtrip.rs` does, and unpinned again for the pipelined rows (where the
//! nodes working at the same time is the point). `VALKIT_RT_PIN=off` leaves placement to
//! the scheduler everywhere.

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

/// Pipelined GETs through the cluster client, converted by `query` into the same type as
/// the `redis` crate's row (`typed`), or as raw `Value`s (`exec_pipeline`).
fn valkit_pipelined(client: &Client, typed: bool) -> f64 {
    let mut n = 0usize;
    let t = Instant::now();
    for b in 0..BATCHES {
        let mut p = pipe();
        for j in 0..PIPE {
            p.add(cmd("GET").arg(key((b * PIPE + j * 7919) % KEYS)));
        }
        n += if typed {
            let v: Vec<Option<Vec<u8>>> = p.query(client).unwrap();
            v.len()
        } else {
            client.exec_pipeline(&p).unwrap().len()
        };
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

/// Pin this process (all its threads) and `servers` to `cpus` (`taskset -a -p -c`).
fn pin(cpus: &str, servers: &[u32]) -> bool {
    std::iter::once(std::process::id())
        .chain(servers.iter().copied())
        .all(|pid| {
            Command::new("taskset")
                .args(["-a", "-p", "-c", cpus, &pid.to_string()])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// `redis-benchmark --cluster -t get`, one connection per primary (`-c 3`), each with 21
/// requests in flight (`-P 21`): the 64 in flight that valkit's pipeline of 64 has, split
/// over the three primaries. Requests per second.
///
/// Its `-n` must make the run last: redis-benchmark's clock has a fixed ~250 ms in it
/// (session 7: `-n 32000` gave 127,490/s and `-n 320000` 1,274,900/s, the same 251 ms),
/// which is why the earlier `-c 1 -n 32000` row read the same ~127,000/s every round.
/// (With `-c 1` in cluster mode it also talks to one node only.)
fn redis_benchmark(port: u16) -> Option<f64> {
    let out = Command::new("redis-benchmark")
        .args(["--cluster", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "get", "-P", "21", "-c", "3", "-q"])
        .args(["-n", "2000000", "-r", &KEYS.to_string()])
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

    let servers: Vec<u32> = cluster
        .nodes()
        .iter()
        .filter_map(|n| n.server().pid())
        .chain(standalone.pid())
        .collect();
    let pinned = std::env::var("VALKIT_RT_PIN").map_or(true, |m| m != "off");
    let one_cpu = std::env::var("VALKIT_RT_CPU").unwrap_or_else(|_| "0".to_owned());
    let all_cpus = format!("0-{}", std::thread::available_parallelism()?.get() - 1);
    let placement = if pinned {
        format!("pinned to CPU {one_cpu} (client and every server)")
    } else {
        "unpinned".to_owned()
    };

    let (mut v, mut vv, mut r, mut b, mut cs, mut ss) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        v.push(valkit_pipelined(&client, true));
        r.push(redis_rs_pipelined(&mut rcon));
        vv.push(valkit_pipelined(&client, false));
        if let Some(x) = redis_benchmark(cluster.nodes()[0].port()) {
            b.push(x);
        }
        if pinned && !pin(&one_cpu, &servers) {
            return Err("taskset failed (VALKIT_RT_PIN=off runs unpinned)".into());
        }
        cs.push(single(&client));
        ss.push(single(&single_client));
        if pinned && !pin(&all_cpus, &servers) {
            return Err("taskset failed".into());
        }
        eprintln!(
            "round {round}: valkit typed {:.0}/s, redis-rs {:.0}/s ({:.2}x), valkit values \
             {:.0}/s, redis-benchmark {:?}/s, cluster GET {:.0}/s, single-node GET {:.0}/s \
             ({:.2}x)",
            v[round],
            r[round],
            v[round] / r[round],
            vv[round],
            b.last(),
            cs[round],
            ss[round],
            cs[round] / ss[round]
        );
    }
    let median = |mut x: Vec<f64>| {
        x.sort_by(|a, b| a.partial_cmp(b).unwrap());
        x[x.len() / 2]
    };
    let ratios: Vec<f64> = v.iter().zip(&r).map(|(a, b)| a / b).collect();
    let single_ratios: Vec<f64> = cs.iter().zip(&ss).map(|(a, b)| a / b).collect();
    let (v, vv, r, cs, ss) = (best(v), best(vv), best(r), best(cs), best(ss));
    println!("pipelined GET (P={PIPE}, best of {ROUNDS}):");
    println!("  valkit cluster client, typed query  {v:>10.0} GET/s");
    println!("  valkit cluster client, Values       {vv:>10.0} GET/s");
    println!(
        "  redis crate cluster (sync)          {r:>10.0} GET/s   valkit typed = {:.2}x \
         (median of per-round ratios {:.2}x)",
        v / r,
        median(ratios)
    );
    if !b.is_empty() {
        let b = best(b);
        println!(
            "  redis-benchmark --cluster           {b:>10.0} GET/s   valkit = {:.2}x",
            v / b
        );
    }
    println!("unpipelined GET (best of {ROUNDS}; {placement}):");
    println!("  cluster client             {cs:>10.0} GET/s");
    println!(
        "  single-node Client         {ss:>10.0} GET/s   cluster = {:.2}x (median {:.2}x)",
        cs / ss,
        median(single_ratios)
    );
    Ok(())
}
