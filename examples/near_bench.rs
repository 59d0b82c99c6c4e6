//! Near cache measurements for `docs/benchmarks.md` ("Near cache"): an L1 hit against a
//! network `GET`, and on a Zipf(0.99) workload over 100,000 keys with a 10,000-entry L1,
//! the hit ratio of the TinyLFU policy against plain LRU of the same size, and the server
//! commands saved.
//!
//! Starts a throwaway Valkey (the test kit). Run:
//! `cargo run --release --example near_bench --features testkit`
//! (`ZIPF_READS=n` to change the measured reads, default 400,000).

use std::time::Instant;

use valkit::near::{NearCache, NearOptions, Policy};
use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Commands, Connection, Execute, Protocol};

const KEYS: usize = 100_000;
const L1: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reads: usize = std::env::var("ZIPF_READS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400_000);
    let server = Server::start(ServerKind::Valkey)?;
    let mut cfg = server.config();
    cfg.protocol = Protocol::Resp3;
    let conn = Connection::open(&cfg)?;
    println!("== valkey ({})", server.url());

    // 1. One hot key: L1 hit against a network GET on the same machine.
    conn.set("hot", "x".repeat(100))?;
    let near = NearCache::open(&cfg, NearOptions::default())?;
    let _ = near.get_bytes(b"hot")?;
    let n_hits = 2_000_000;
    let t = Instant::now();
    for _ in 0..n_hits {
        std::hint::black_box(near.get_bytes(std::hint::black_box(b"hot"))?);
    }
    let hit_ns = t.elapsed().as_nanos() as f64 / n_hits as f64;
    let n_net = 50_000;
    let t = Instant::now();
    for _ in 0..n_net {
        let v: Option<valkit::Bytes> = conn.get("hot")?;
        std::hint::black_box(v);
    }
    let net_ns = t.elapsed().as_nanos() as f64 / n_net as f64;
    println!(
        "L1 hit {hit_ns:.0} ns, network GET {:.1} us: {:.0}x",
        net_ns / 1000.0,
        net_ns / hit_ns
    );
    drop(near);

    // 2. Zipf(0.99) over 100,000 keys, 10,000-entry L1.
    let mut batch = cmd("MSET");
    for i in 0..KEYS {
        batch.add_arg(format!("z:{i}"));
        batch.add_arg(i);
        if (i + 1) % 5_000 == 0 {
            conn.exec(&batch)?;
            batch = cmd("MSET");
        }
    }
    let zipf = Zipf::new(KEYS, 0.99);
    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    let sample: Vec<usize> = (0..reads * 2)
        .map(|_| zipf.sample(next_unit(&mut rng_state)))
        .collect();
    for policy in [Policy::TinyLfu, Policy::Lru] {
        let opts = NearOptions {
            max_entries: L1,
            policy,
            ..NearOptions::default()
        };
        let near = NearCache::open(&cfg, opts)?;
        let (warm, measured) = sample.split_at(reads);
        for &k in warm {
            near.get_bytes(format!("z:{k}").as_bytes())?;
        }
        let before = near.stats();
        let t = Instant::now();
        for &k in measured {
            near.get_bytes(format!("z:{k}").as_bytes())?;
        }
        let took = t.elapsed();
        let s = near.stats();
        let (hits, misses) = (s.hits - before.hits, s.misses - before.misses);
        println!(
            "{policy:?}: hit ratio {:.1}% ({hits} hits, {misses} GETs sent of {} reads: {:.1}% of \
             server commands saved), {} entries, {:.1} MiB, {:.2} s ({:.0} reads/s)",
            100.0 * hits as f64 / (hits + misses) as f64,
            measured.len(),
            100.0 * hits as f64 / measured.len() as f64,
            s.entries,
            s.bytes as f64 / (1 << 20) as f64,
            took.as_secs_f64(),
            measured.len() as f64 / took.as_secs_f64().max(1e-9),
        );
    }
    Ok(())
}

/// xorshift64*, mapped to [0, 1).
fn next_unit(s: &mut u64) -> f64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

/// Ranks 0..n with P(rank k) proportional to 1/(k+1)^s, sampled by inverting the CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}
