//! `valkit bench`: GET/SET load in the manner of redis-benchmark.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use valkit::{cmd, pipe, Connection, Execute};

use crate::args::{Args, Failure};
use crate::out::{self, Progress};
use crate::Global;

const BENCH_HELP: &str = "\
valkit bench: GET/SET throughput and latency, comparable with redis-benchmark

USAGE: valkit bench [--tests set,get] [--requests N] [--threads N] [--pipeline N]
                    [--size BYTES] [--keyspace N] [--max-time DURATION]

Each thread has its own connection and sends its share of --requests (default 100000)
per test, --pipeline commands per round trip (default 1). Keys are
`valkit-bench:key:<n>` with n random below --keyspace (default 1: one key, like
redis-benchmark without -r); values are --size bytes (default 3). A test stops early
after --max-time (default 60s). Prints requests per second and latency percentiles
(a pipelined command's latency is its batch's round trip), like
`redis-benchmark -t set,get -n N -c THREADS -P PIPELINE -d SIZE -r KEYSPACE`.
The keys are deleted at the end. On a cluster node the keys carry a hash tag of a slot
that node serves (`valkit-bench:{TAG}:key:<n>`): the bench measures that one node.
";

/// Most requests per test (their latencies are kept for exact percentiles: 400 MB).
const MAX_REQUESTS: u64 = 100_000_000;
/// Largest value for SET (each thread holds a copy).
const MAX_SIZE: u64 = 16 << 20;

struct Result1 {
    test: String,
    done: u64,
    elapsed: Duration,
    lat_us: Vec<u32>,
}

pub(crate) fn bench(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(BENCH_HELP)?;
    let tests: Vec<String> = a
        .value("--tests")?
        .unwrap_or_else(|| "set,get".into())
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let requests = a.number("--requests")?.unwrap_or(100_000).max(1);
    if requests > MAX_REQUESTS {
        // Every request's latency is kept (4 bytes each) for exact percentiles.
        return Err(Failure::Usage(format!(
            "bench: --requests {requests} is over {MAX_REQUESTS}; run several shorter benches"
        )));
    }
    let threads = a.number("--threads")?.unwrap_or(8).clamp(1, 1024);
    let pipeline = a.number("--pipeline")?.unwrap_or(1).clamp(1, 10_000);
    let size = a.number("--size")?.unwrap_or(3);
    if size > MAX_SIZE {
        return Err(Failure::Usage(format!(
            "bench: --size {size} is over {MAX_SIZE} bytes (each thread holds a copy)"
        )));
    }
    let size = size as usize;
    let keyspace = a.number("--keyspace")?.unwrap_or(1).max(1);
    let max_time = a.duration("--max-time")?.unwrap_or(Duration::from_secs(60));
    a.finish()?;
    for t in &tests {
        if t != "set" && t != "get" {
            return Err(Failure::Usage(format!(
                "bench: unknown test `{t}` (set, get)"
            )));
        }
    }
    let cfg = g.config()?;
    // Connect every thread's connection first: a down server fails here, cleanly.
    let mut conns = Vec::new();
    for _ in 0..threads {
        conns.push(Arc::new(
            Connection::open(&cfg).map_err(|e| crate::connect_failure(&cfg, &e))?,
        ));
    }
    let prefix = key_prefix(&conns[0])?;
    let value = vec![b'x'; size];
    let mut results = Vec::new();
    for test in &tests {
        results.push(run_test(
            test, &conns, &prefix, requests, pipeline, keyspace, &value, max_time, g.json,
        )?);
    }
    // Clean up the keys (bounded: the keyspace the run used).
    let mut p = pipe();
    for n in 0..keyspace.min(1_000_000) {
        p.add(cmd("UNLINK").arg(bench_key(&prefix, keyspace, n)));
        if p.len() >= 1000 {
            conns[0].exec_pipeline(&p)?;
            p.clear();
        }
    }
    if !p.is_empty() {
        conns[0].exec_pipeline(&p)?;
    }
    if g.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| {
                let s = summary(&r.lat_us);
                json!({
                    "test": r.test.to_ascii_uppercase(), "requests": r.done,
                    "seconds": r.elapsed.as_secs_f64(),
                    "ops_per_sec": r.done as f64 / r.elapsed.as_secs_f64().max(1e-9),
                    "threads": threads, "pipeline": pipeline, "size": size,
                    "latency_ms": {"avg": s[0], "min": s[1], "p50": s[2], "p95": s[3], "p99": s[4], "max": s[5]},
                })
            })
            .collect();
        out::json(&json!(v));
    } else {
        for r in &results {
            let s = summary(&r.lat_us);
            println!("====== {} ======", r.test.to_ascii_uppercase());
            println!(
                "  {} requests completed in {:.2} seconds",
                r.done,
                r.elapsed.as_secs_f64()
            );
            println!("  {threads} parallel clients (threads)");
            println!("  {size} bytes payload");
            println!("  pipeline {pipeline}, keyspace {keyspace}\n");
            println!("Summary:");
            println!(
                "  throughput summary: {:.2} requests per second",
                r.done as f64 / r.elapsed.as_secs_f64().max(1e-9)
            );
            println!("  latency summary (msec):");
            println!(
                "  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "avg", "min", "p50", "p95", "p99", "max"
            );
            println!(
                "  {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}\n",
                s[0], s[1], s[2], s[3], s[4], s[5]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_key(prefix: &str, keyspace: u64, n: u64) -> String {
    if keyspace == 1 {
        format!("{prefix}key")
    } else {
        format!("{prefix}key:{n}")
    }
}

/// `valkit-bench:` on a single server; on a cluster node `valkit-bench:{TAG}:` with a tag
/// whose slot this node serves (from `CLUSTER MYID` and `CLUSTER SLOTS`), so every key
/// stays on the node benched.
fn key_prefix(conn: &Connection) -> Result<String, Failure> {
    if !crate::cluster_enabled(conn)? {
        return Ok("valkit-bench:".into());
    }
    let me: String = valkit::FromValue::from_value(conn.exec(&cmd("CLUSTER").arg("MYID"))?)?;
    let mut ranges = Vec::new();
    if let valkit::Value::Array(entries) = conn.exec(&cmd("CLUSTER").arg("SLOTS"))? {
        for e in entries {
            let valkit::Value::Array(parts) = e else {
                continue;
            };
            let (Some(valkit::Value::Int(lo)), Some(valkit::Value::Int(hi))) =
                (parts.first(), parts.get(1))
            else {
                continue;
            };
            let primary_id = match parts.get(2) {
                Some(valkit::Value::Array(node)) => node.get(2).and_then(|v| v.as_bytes()),
                _ => None,
            };
            if primary_id == Some(me.as_bytes()) {
                ranges.push((*lo, *hi));
            }
        }
    }
    let owned = |slot: u16| {
        ranges
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&i64::from(slot)))
    };
    (0..100_000)
        .map(|i| format!("b{i}"))
        .find(|tag| owned(valkit::key_slot(tag.as_bytes())))
        .map(|tag| format!("valkit-bench:{{{tag}}}:"))
        .ok_or_else(|| {
            Failure::Failed(
                "bench: this cluster node serves no slot (a replica?): bench a primary".into(),
            )
        })
}

#[allow(clippy::too_many_arguments)]
fn run_test(
    test: &str,
    conns: &[Arc<Connection>],
    prefix: &str,
    requests: u64,
    pipeline: u64,
    keyspace: u64,
    value: &[u8],
    max_time: Duration,
    json: bool,
) -> Result<Result1, Failure> {
    let threads = conns.len() as u64;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + max_time;
    let mut handles = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        let share = requests / threads + u64::from((i as u64) < requests % threads);
        let (conn, done, stop) = (conn.clone(), done.clone(), stop.clone());
        let value = value.to_vec();
        let prefix = prefix.to_owned();
        let set = test == "set";
        let h = std::thread::Builder::new()
            .name(format!("valkit-bench-{i}"))
            .spawn(move || -> valkit::Result<Vec<u32>> {
                let mut lat = Vec::with_capacity(share as usize);
                let mut sent = 0;
                let mut rng = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut next_key = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    bench_key(&prefix, keyspace, rng % keyspace)
                };
                let mut p = pipe();
                while sent < share && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let n = pipeline.min(share - sent);
                    let t = Instant::now();
                    if n == 1 {
                        let c = if set {
                            cmd("SET").arg(next_key()).arg(&value[..])
                        } else {
                            cmd("GET").arg(next_key())
                        };
                        conn.exec(&c)?;
                    } else {
                        p.clear();
                        for _ in 0..n {
                            p.add(if set {
                                cmd("SET").arg(next_key()).arg(&value[..])
                            } else {
                                cmd("GET").arg(next_key())
                            });
                        }
                        for r in conn.exec_pipeline(&p)? {
                            if let valkit::Value::Error(e) = r {
                                return Err(valkit::Error::new(
                                    valkit::ErrorKind::Server(e.kind()),
                                    e.text().to_owned(),
                                ));
                            }
                        }
                    }
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    lat.extend(std::iter::repeat(us).take(n as usize));
                    sent += n;
                    done.fetch_add(n, Ordering::Relaxed);
                }
                Ok(lat)
            })
            .map_err(|e| Failure::Failed(format!("cannot start a bench thread: {e}")))?;
        handles.push(h);
    }
    let mut progress = Progress::new(json);
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let n = done.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        progress.show(&format!(
            "{}: {n}/{requests} ({:.0} ops/s)",
            test.to_ascii_uppercase(),
            n as f64 / secs
        ));
    }
    progress.clear();
    let elapsed = start.elapsed();
    let mut lat_us = Vec::with_capacity(requests as usize);
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(l)) => lat_us.extend(l),
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                first_err.get_or_insert(Failure::Failed(format!("bench {test}: {e}")));
            }
            Err(_) => {
                first_err
                    .get_or_insert(Failure::Failed(format!("bench {test}: a thread panicked")));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(Result1 {
        test: test.to_owned(),
        done: lat_us.len() as u64,
        elapsed,
        lat_us,
    })
}

/// avg, min, p50, p95, p99, max in milliseconds.
fn summary(lat_us: &[u32]) -> [f64; 6] {
    if lat_us.is_empty() {
        return [0.0; 6];
    }
    let mut v = lat_us.to_vec();
    v.sort_unstable();
    let pct =
        |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    let avg = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0;
    [
        avg,
        v[0] as f64 / 1000.0,
        pct(0.50),
        pct(0.95),
        pct(0.99),
        v[v.len() - 1] as f64 / 1000.0,
    ]
}
